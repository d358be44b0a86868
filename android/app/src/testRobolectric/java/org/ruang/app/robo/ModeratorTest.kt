package org.ruang.app.robo

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.ruang.app.RoomActivity
import org.ruang.core.ConnectionStatus
import org.ruang.core.Role
import org.ruang.core.RoomKind
import org.ruang.core.RoomSummary

class ModeratorTest : LiveTest() {
    @Test
    fun `as moderator - hand queue, invite a bot to speak, mute it, make it moderator, remove it`() {
        signIn("kartika", "Kartika Sari")
        var created: Result<RoomSummary>? = null
        app.background({ it.createRoom("Design critique", RoomKind.OPEN) }) { created = it }
        val room = waitFor("room created") { created }.getOrThrow()
        val r = openRoom(room).get()
        waitUntil("moderator") { app.rooms.state?.me?.role == Role.MODERATOR }

        val guest = person("lukas", "Lukas Hartono")
        guest.join(room.id)
        val other = person("mega", "Mega Rahayu")
        other.join(room.id)
        guest.room!!.raiseHand()
        r.waitText("Raised hands · 1")
        r.waitText("Lukas Hartono, hand raised")
        Shots.all("13-room-moderator-hands", r) { darkRoom() }

        // Invite from the queue; the guest accepts; the stage shows them.
        r.click("Invite Lukas Hartono")
        guest.states.await("invited by the app's user") { it.invitedToSpeak }
        r.waitText("Invited")
        guest.room!!.acceptInvite()
        guest.room!!.setMuted(false)
        r.waitText("Lukas Hartono", 20_000)
        waitUntil("guest on stage in the app") { app.rooms.state?.stage?.any { it.user.id == guest.id } == true }

        // The person menu on the guest's tile.
        fun menu() {
            val stage = stageView(r)
            val tile = waitFor("guest tile") { stage.tiles.firstOrNull { it.userId == guest.id } }
            stage.onTap!!.invoke(tile)
            idle()
            r.waitText("Move to audience")
        }
        menu()
        Shots.all("14-room-moderator-menu", r) { darkRoom().also { c ->
            val s = stageView(c.get())
            s.onTap!!.invoke(waitFor("tile") { s.tiles.firstOrNull { it.userId == guest.id } })
            idle()
        } }
        r.click("Mute")
        guest.states.await("muted by the moderator") { it.me?.muted == true }

        menu()
        r.click("Make moderator")
        guest.states.await("made moderator") { it.me?.role == Role.MODERATOR }
        r.waitText("Lukas Hartono, moderator")

        menu()
        r.click("Remove from room")
        r.waitText("Remove Lukas Hartono?")
        r.click("Remove")
        guest.states.await("removed", 20_000) { it.removed || it.connection is ConnectionStatus.Ended }
        waitUntil("gone from the app's stage") { app.rooms.state?.stage?.none { it.user.id == guest.id } == true }
        assertTrue(other.states.await("others see it") { s -> s.stage.none { it.user.id == guest.id } }.stage.isNotEmpty())

        // The room menu (moderators): raised hands off, seen by the listener.
        r.click("Room settings")
        r.waitText("Turn raised hands off")
        Shots.all("15-room-moderator-room-menu", r)
        r.click("Turn raised hands off")
        other.states.await("hands off") { !it.handsEnabled }
        assertEquals(RoomActivity::class.java, r.javaClass)
    }
}
