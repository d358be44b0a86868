package org.ruang.app.robo

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.ruang.core.Role
import java.io.File

class RoomTest : LiveTest() {
    @Test
    fun `as a listener - stage and audience fill, the ring follows a talking bot, raise hand, invited, on stage with audio, mute, moved back, leave quietly`() {
        signIn("dewi", "Dewi Lestari")
        val (mod, room) = moderatorWithRoom("Startup stories", name = "Maya Sari")
        val rc = openRoom(room)
        val r = rc.get()
        r.waitText("Maya Sari, moderator")
        // Server state: the moderator sees the app's user in the audience.
        mod.states.await("app user in the audience") { s -> s.audience.any { it.user.id == myId() } }

        // The audience fills as others join.
        val listeners = listOf(person("eka", "Eka Wijaya"), person("fajar", "Fajar Nugroho"), person("gita", "Gita Anjani"))
        for (l in listeners) l.join(room.id)
        for (l in listeners) r.waitText(l.profile.name)

        // A `ruang bot speak` process talks: the moderator invites it up, its ring lights.
        val botName = "Bima Bot"
        val botHandle = Live.handle("bima")
        val botToken = Live.cli("signup", "--invite", Live.invite(), "--handle", botHandle, "--name", botName)
        val speaker = bot("bot", "speak", "--room", room.id, "--wav", speech.path, "--loop", "--seconds", "120", token = botToken)
        val hand = mod.states.await("the bot raises its hand", 30_000) { s -> s.hands.any { it.participant.user.handle == botHandle } }
        val botId = hand.hands.first { it.participant.user.handle == botHandle }.participant.user.id
        mod.room!!.inviteToSpeak(botId)
        r.waitText("$botName, speaking", 30_000)
        waitUntil("the stage announces the speaker") { stageView(r).lastAnnouncement == "$botName is speaking" }
        Shots.all("08-room-listener", r) { darkRoom() }

        // Raise hand; the moderator sees it in the queue.
        r.click("Raise hand")
        mod.states.await("the app's hand in the queue") { s -> s.hands.any { it.participant.user.id == myId() } }
        r.waitText("Lower hand")
        r.waitText("Dewi Lestari, hand raised")
        Shots.all("09-room-hand-raised", r) { darkRoom() }
        Shots.assertDiffer("08-room-listener-light-411x891", "09-room-hand-raised-light-411x891")

        // Stop the bot so only the app's audio reaches the recording below.
        speaker.close()
        runCatching { mod.room!!.moveToAudience(botId) }
        mod.states.await("bot gone from the stage", 30_000) { s -> s.stage.none { it.user.id == botId } }

        // The moderator invites; the app shows the invitation; accept: on stage.
        mod.room!!.inviteToSpeak(myId())
        r.waitText("Join the stage?")
        Shots.all("10-room-invitation", r) { darkRoom() }
        r.click("Join the stage")
        mod.states.await("the app's user on stage") { s -> s.stage.any { it.user.id == myId() && it.role == Role.SPEAKER } }
        r.waitText("Unmute")

        // Unmute: the app's microphone (a WAV on the core's virtual device) reaches a
        // `ruang bot listen` recording through the real server.
        val recording = File(System.getProperty("ruang.tmp"), "app-audio-${System.nanoTime()}.wav")
        val listenToken = Live.cli("signup", "--invite", Live.invite(), "--handle", Live.handle("ear"), "--name", "Ear Bot")
        val ear = bot("bot", "listen", "--room", room.id, "--record", recording.path, "--seconds", "8", token = listenToken)
        r.click("Unmute")
        mod.states.await("unmuted on the server") { s -> s.stage.any { it.user.id == myId() && !it.muted } }
        r.waitText("Mute")
        mod.states.await("the app's user heard speaking", 30_000) { s -> s.stage.any { it.user.id == myId() && it.speaking } }
        Shots.all("11-room-speaker", r) { darkRoom() }
        Shots.assertDiffer("08-room-listener-light-411x891", "11-room-speaker-light-411x891")
        assertEquals("bot listen exit", 0, ear.waitExit(60_000))
        assertTrue("the recording holds the app's voice (peak ${peak(recording)})", peak(recording) > 1000)

        // Mute.
        r.click("Mute")
        mod.states.await("muted on the server") { s -> s.stage.any { it.user.id == myId() && it.muted } }
        r.waitText("Unmute")

        // Moved back to the audience by the moderator.
        mod.room!!.moveToAudience(myId())
        r.waitText("Raise hand")
        assertEquals(Role.LISTENER, waitFor("listener again") { app.rooms.state?.me?.role?.takeIf { it == Role.LISTENER } })

        // Leave quietly: the screen closes and the server no longer has the user in the room.
        r.click("Leave quietly")
        assertTrue(r.isFinishing)
        mod.states.await("the app's user left") { s -> s.audience.none { it.user.id == myId() } && s.stage.none { it.user.id == myId() } }
        assertEquals(null, app.rooms.roomId)
    }

    @Test
    fun `the room ends while open`() {
        signIn("hadi", "Hadi")
        val (mod, room) = moderatorWithRoom("Short one", name = "Maya Sari")
        val r = openRoom(room).get()
        mod.room!!.endRoom()
        r.waitText("This room has ended.")
        Shots.all("12-room-ended", r)
        assertEquals(null, app.rooms.roomId)
        r.click("Back to the hallway")
        assertTrue(r.isFinishing)
        assertTrue(mod.client.hallway().none { it.id == room.id })
    }
}
