package org.ruang.app.robo

import android.content.Intent
import android.media.MediaPlayer
import android.media.PlaybackParams
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Before
import org.junit.Test
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import org.robolectric.annotation.Implementation
import org.robolectric.annotation.Implements
import org.robolectric.shadow.api.Shadow
import org.robolectric.shadows.ShadowMediaPlayer
import org.robolectric.shadows.ShadowToast
import org.robolectric.shadows.util.DataSource
import org.ruang.app.ProfileActivity
import org.ruang.app.ReplayActivity
import org.ruang.app.RoomActivity
import org.ruang.core.RoomKind
import org.ruang.core.RuangClient
import org.ruang.core.RuangException
import java.net.HttpURLConnection
import java.net.URL

/**
 * Robolectric's MediaPlayer shadow keeps no playback params: this one records the speed the
 * app hands to `setPlaybackParams` (everything else is Robolectric's shadow).
 */
@Implements(MediaPlayer::class)
class SpeedRecordingMediaPlayer : ShadowMediaPlayer() {
    var speeds = mutableListOf<Float>()

    @Implementation
    protected fun setPlaybackParams(params: PlaybackParams) {
        speeds += params.speed
    }
}

/**
 * A plain BluetoothDevice. Creating a MediaPlayer registers it with the audio service, which
 * Robolectric answers with a proxy of IAudioService; building that proxy initialises
 * BluetoothDevice, and Robolectric's own BluetoothDevice shadow refers to a class
 * (`BluetoothDevice.BluetoothAddress`) its SDK 35 runtime jar does not have. Nothing here uses
 * Bluetooth.
 */
@Implements(android.bluetooth.BluetoothDevice::class)
class PlainBluetoothDevice

/**
 * Recorded rooms, clips, replays and safety inside the room (issue 16), against the real
 * server through the real core.
 */
@Config(shadows = [SpeedRecordingMediaPlayer::class, PlainBluetoothDevice::class])
class RecordingTest : LiveTest() {
    /** The app's own account as a second client (to check the server side of what the app did). */
    private fun myClient(): RuangClient = Live.client().also { it.restoreSession(MemoryTokens.token!!) }

    @Before
    fun media() {
        // Robolectric's player needs to be told what a data source is: a replay of 60 s.
        ShadowMediaPlayer.setMediaInfoProvider { ShadowMediaPlayer.MediaInfo(60_000, 0) }
    }

    /** GETs [url]; returns the status and the first bytes of the body. */
    private fun fetch(url: String): Pair<Int, ByteArray> {
        val c = URL(url).openConnection() as HttpURLConnection
        c.connectTimeout = 5_000
        c.readTimeout = 30_000
        val code = c.responseCode
        val body = if (code in 200..299) c.inputStream.use { it.readNBytes(64 * 1024) } else ByteArray(0)
        return code to body
    }

    private fun toast(prefix: String) =
        waitFor("a toast starting \"$prefix\"") { ShadowToast.getTextOfLatestToast()?.takeIf { it.startsWith(prefix) } }

    @Test
    fun `a listener sees the recording, is told before speaking, clips, and reports and blocks from the room`() {
        val me = signIn("rina", "Rina Ayu")
        val (mod, room) = moderatorWithRoom("Recorded talk", name = "Maya Sari")
        mod.room!!.setRecording(true)
        mod.states.await("recording on") { it.recording }
        mod.speak(speech)
        val rc = openRoom(room)
        val r = rc.get()
        r.waitText("Maya Sari, moderator")
        waitUntil("the REC badge shows") { r.recordingBadge.visibility == android.view.View.VISIBLE }
        assertEquals("● REC", r.recordingBadge.text.toString())
        Shots.all("64-room-recording", r) { darkRoom() }

        // Invited to speak: the dialog says the room is recorded before accepting.
        mod.room!!.inviteToSpeak(myId())
        r.waitText("This room is being recorded. What you say will be in the replay.")
        Shots.save(r, "65-room-invite-recorded-light-411x891")
        r.click("Not now")
        // The server tells only the moderators; the app's core clears its own invitation.
        waitUntil("the invitation is gone from the app's state") { app.rooms.state?.invitedToSpeak == false }
        idle()
        assertFalse("the dialog does not come back", r.hasText("Join the stage?"))

        // Clip (anyone may, in a recorded room): the share sheet gets the /c/ link, which the
        // server serves, and the clip's file is Ogg.
        r.click("Room menu")
        r.waitText("Clip the last 30 seconds")
        r.waitText("Report room")
        Shots.save(r, "66-room-menu-listener-light-411x891")
        shadowOf(r).clearNextStartedActivities()
        r.click("Clip the last 30 seconds")
        val chooser = waitFor("the share sheet", 30_000) { idle(); shadowOf(r).nextStartedActivity }
        val sent = chooser.getParcelableExtra(Intent.EXTRA_INTENT, Intent::class.java)!!
        val clipUrl = sent.getStringExtra(Intent.EXTRA_TEXT)!!
        assertEquals(r.lastClipUrl, clipUrl)
        assertTrue(clipUrl, clipUrl.startsWith("${Live.url}/c/"))
        val (pageCode, page) = fetch(clipUrl)
        assertEquals(200, pageCode)
        assertTrue(String(page).contains("<audio"))
        val (fileCode, file) = fetch("${Live.url}/media/clips/${clipUrl.substringAfterLast('/')}.ogg")
        assertEquals(200, fileCode)
        assertEquals("OggS", String(file.copyOfRange(0, 4)))

        // Report the room from the menu.
        r.click("Room menu")
        r.click("Report room")
        r.waitText("Only the admins see reports.")
        r.click("Spam")
        toast("Thanks")
        assertTrue("the app's room report is on the server", myClient().reportRoom(room.id, "spam", ""))

        // Report a message: long-press it in the chat.
        mod.room!!.sendChat("Buy followers at my shop")
        r.waitText("Buy followers at my shop")
        val line = views(r.chatPanel).filterIsInstance<android.widget.TextView>().first { it.text.contains("Buy followers") }
        assertTrue(line.performLongClick())
        r.waitText("Report message")
        r.click("Report message")
        r.waitText("Report Maya Sari's message")
        r.click("Spam")
        toast("Thanks")
        val messageId = (line.tag as Long)
        val reports = Live.cli("admin", "reports", "--kind", "message", token = Live.admin.sessionToken())
        assertTrue(reports, reports.lines().any { it.contains("${room.id}/$messageId") && it.contains("@${me.handle}") })

        // The person sheet: report and block the moderator.
        stageView(r).onTap!!(stageView(r).tiles.first { it.name == "Maya Sari" })
        r.waitText("Report Maya Sari")
        r.waitText("Block Maya Sari")
        Shots.save(r, "67-room-person-sheet-safety-light-411x891")
        r.click("Report Maya Sari")
        r.waitText("Harassment or bullying")
        r.click("Harassment or bullying")
        toast("Thanks")
        assertTrue("the app's member report is on the server", myClient().reportMember(mod.profile.handle, "harassment", ""))
        stageView(r).onTap!!(stageView(r).tiles.first { it.name == "Maya Sari" })
        r.click("Block Maya Sari")
        r.waitText("They aren't told.")
        r.click("Block")
        toast("You blocked Maya Sari")
        assertEquals(listOf(mod.profile.handle), myClient().blocked())
        try {
            mod.client.follow(me.handle)
            fail("a blocked member cannot follow")
        } catch (e: RuangException.Forbidden) {
            // expected
        }

        // The moderator ends the recorded room: "Room over" offers the replay, whose screen
        // waits while the server mixes it, then shows it.
        myClient().unblock(mod.profile.handle)
        mod.room!!.endRoom()
        r.waitText("It was recorded: the replay will be ready in a moment.", 30_000)
        shadowOf(r).clearNextStartedActivities()
        r.click("Play the replay")
        val replay = track(follow(r, ReplayActivity::class.java))
        assertTrue(replay.get().intent.getBooleanExtra(ReplayActivity.EXTRA_PREPARING, false))
        // The screen asks again every second (delayed posts: the test moves the main clock).
        waitFor("the replay once mixed", 60_000) {
            shadowOf(android.os.Looper.getMainLooper()).idleFor(java.time.Duration.ofMillis(500))
            replay.get().allTexts().firstOrNull { it.contains("Maya Sari") }
        }
        replay.get().waitText("Recorded talk")
        assertFalse(replay.get().hasText("Preparing the replay"))
    }

    @Test
    fun `a host records from the menu, a bot speaks, the replay plays at speed from the profile and is deleted`() {
        val me = signIn("hana", "Hana Putri")
        val room = myClient().createRoom("Recorded by the app", RoomKind.OPEN)
        val rc = openRoom(room)
        val r = rc.get()
        waitUntil("the app moderates its room") { app.rooms.state?.me?.role == org.ruang.core.Role.MODERATOR }
        val listener = person("lia", "Lia Kusuma")
        listener.join(room.id)

        // Start recording from the room menu: the listener is told.
        r.click("Room settings")
        r.click("Start recording")
        listener.states.await("the listener sees the recording") { it.recording }
        waitUntil("the REC badge shows") { r.recordingBadge.visibility == android.view.View.VISIBLE }

        // A `ruang bot speak` process raises its hand; the app invites it from the hand queue.
        val botName = "Bima Bot"
        val botHandle = Live.handle("bima")
        val botToken = Live.cli("signup", "--invite", Live.invite(), "--handle", botHandle, "--name", botName)
        val speaker = bot("bot", "speak", "--room", room.id, "--wav", speech.path, "--loop", "--seconds", "60", token = botToken)
        r.waitText("Invite $botName", 30_000)
        r.click("Invite $botName")
        r.waitText("$botName, speaking", 30_000)
        listener.states.await("the bot on stage") { s -> s.stage.any { it.user.handle == botHandle } }
        listener.room!!.sendChat("Great talk")
        Thread.sleep(4_000) // let the bot be heard for a few seconds

        // The host ends the room from the menu; the replay is mixed.
        r.click("Room settings")
        r.click("End the room")
        r.click("End room")
        listener.states.await("the room ended", 30_000) { it.ended }
        speaker.close()
        val replay = waitFor("the replay is ready", 60_000) {
            try {
                myClient().replay(room.id, null)
            } catch (e: RuangException.Server) {
                null // replay_not_ready: still being mixed
            }
        }
        assertTrue(replay.chapters.any { it.name == botName })
        assertEquals(listOf("Great talk"), replay.chat.map { it.text })

        // A room link to the ended room offers the replay.
        rc.pause().stop()
        val again = launch(RoomActivity::class.java, RoomActivity.open(app, room.id, null, room.link)).get()
        again.waitText("Play the replay")
        again.click("Play the replay")
        val fromLink = follow(again, ReplayActivity::class.java)
        fromLink.get().waitText("Recorded by the app")
        fromLink.pause().stop().destroy()

        // The host's profile lists it; the replay screen plays the server's file.
        val pc = launch(ProfileActivity::class.java, ProfileActivity.open(app, me.handle))
        val p = pc.get()
        p.waitText("Replays")
        p.click("Play the replay of Recorded by the app")
        val replayController = track(follow(p, ReplayActivity::class.java))
        val a = replayController.get()
        a.waitText(botName)
        waitUntil("the player is prepared") { idle(); a.prepared }
        val player = a.player!!
        val shadow = Shadow.extract<SpeedRecordingMediaPlayer>(player)
        assertEquals(DataSource.toDataSource(replay.audioUrl), shadow.dataSource)
        assertTrue(replay.audioUrl, replay.audioUrl.startsWith("${Live.url}/media/replays/${room.id}.ogg"))
        val (code, bytes) = fetch(replay.audioUrl)
        assertEquals(200, code)
        assertEquals("OggS", String(bytes.copyOfRange(0, 4)))
        Shots.all("68-replay", a)

        a.click("Play")
        waitUntil("playing") { idle(); player.isPlaying }
        a.click("Speed 1×")
        a.waitText("1.5×")
        a.click("Speed 1.5×")
        a.waitText("2×")
        assertEquals(listOf(1f, 1.5f, 2f), shadow.speeds)
        // Tapping the bot's chapter seeks there (from wherever playback had got to).
        val chapter = replay.chapters.indexOfFirst { it.name == botName }
        val target = replay.chapters[chapter].startMs.toInt()
        player.seekTo(target + 2_500)
        idle()
        assertEquals(target + 2_500, shadow.currentPositionRaw)
        a.timelineRow(chapter).performClick()
        idle()
        assertEquals(target, shadow.currentPositionRaw)
        // The chat recorded with the replay is on the screen's list, by its offset.
        a.waitText("Chat")
        assertEquals(listOf("Great talk"), a.screen!!.chat.map { it.text })
        assertEquals("Lia Kusuma", a.screen!!.chat[0].author)
        Shots.save(a, "69-replay-speed-light-411x891")

        // Delete (the host only): confirm, and the server no longer has it.
        a.click("Delete replay")
        a.waitText("Delete this replay?")
        Shots.save(a, "70-replay-delete-light-411x891")
        a.click("Delete")
        toast("Replay deleted")
        val other = listener.client
        try {
            other.replay(room.id, null)
            fail("the replay is gone")
        } catch (e: RuangException.NotFound) {
            // expected
        }
        assertTrue(other.userReplays(me.handle).isEmpty())
        assertTrue("the replay screen closed", a.isFinishing)
    }
}
