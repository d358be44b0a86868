package org.ruang.app.robo

import android.content.Intent
import android.net.Uri
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.robolectric.shadows.ShadowToast
import org.ruang.app.RoomActivity
import org.ruang.app.WelcomeActivity
import org.ruang.core.RoomKind

class DeepLinkTest : LiveTest() {
    private fun view(link: String) = Intent(Intent.ACTION_VIEW, Uri.parse(link)).setClass(app, RoomActivity::class.java)

    /** Signed in as a person made elsewhere: the app restores the session from its token. */
    private fun signedInElsewhere(base: String, name: String): Person {
        val p = person(base, name)
        MemoryTokens.token = p.token
        return p
    }

    @Test
    fun `https room link, cold start, signed in - joins the room`() {
        val me = signedInElsewhere("nina", "Nina")
        val (mod, room) = moderatorWithRoom("Link room")
        val r = launch(RoomActivity::class.java, view("${Live.url}/r/${room.id}")).get()
        r.waitText("Link room")
        mod.states.await("joined from the link") { s -> s.audience.any { it.user.id == me.id } }
        assertEquals(room.id, app.rooms.roomId)
    }

    @Test
    fun `closed room link with its token, and the ruang scheme`() {
        val me = signedInElsewhere("oki", "Oki")
        val (mod, room) = moderatorWithRoom("Closed circle", RoomKind.CLOSED)
        assertTrue(room.link, room.link.contains("?t="))
        val token = linkToken(room.link)!!
        val rc = launch(RoomActivity::class.java, view("${Live.url}/r/${room.id}?t=$token"))
        rc.get().waitText("Closed circle")
        mod.states.await("joined the closed room") { s -> s.audience.any { it.user.id == me.id } }
        rc.get().click("Leave quietly")
        mod.states.await("left") { s -> s.audience.none { it.user.id == me.id } }

        val (mod2, room2) = moderatorWithRoom("Scheme room")
        launch(RoomActivity::class.java, view("ruang://r/${room2.id}")).get().waitText("Scheme room")
        mod2.states.await("joined from ruang://") { s -> s.audience.any { it.user.id == me.id } }
    }

    @Test
    fun `a link to another room asks before switching (warm)`() {
        val me = signedInElsewhere("putu", "Putu")
        val (mod1, room1) = moderatorWithRoom("First room")
        val (mod2, room2) = moderatorWithRoom("Second room", name = "Rina Wati")
        val rc = launch(RoomActivity::class.java, view("${Live.url}/r/${room1.id}"))
        val r = rc.get()
        r.waitText("First room")
        mod1.states.await("in room 1") { s -> s.audience.any { it.user.id == me.id } }
        // The app is running (singleTask): the link arrives in onNewIntent.
        rc.newIntent(view("${Live.url}/r/${room2.id}"))
        r.waitText("Switch rooms?")
        Shots.all("16-room-switch-ask", r) { darkRoom().also { c ->
            c.newIntent(view("${Live.url}/r/${room2.id}"))
            c.get().waitText("Switch rooms?")
        } }
        assertEquals(room1.id, app.rooms.roomId)
        r.click("Switch")
        r.waitText("Second room")
        mod2.states.await("in room 2") { s -> s.audience.any { it.user.id == me.id } }
        mod1.states.await("left room 1") { s -> s.audience.none { it.user.id == me.id } }
        assertEquals(room2.id, app.rooms.roomId)
    }

    @Test
    fun `invite link signed out opens sign-up with the code, signed in says so`() {
        val code = Live.invite()
        val r = launch(RoomActivity::class.java, view("${Live.url}/i/$code")).get()
        val w = track(follow(r, WelcomeActivity::class.java)).get()
        assertEquals(code, w.field(WelcomeActivity.ID_INVITE).text.toString())
        assertTrue(r.isFinishing)

        signedInElsewhere("rudi", "Rudi")
        val r2 = launch(RoomActivity::class.java, view("ruang://i/$code")).get()
        waitFor("toast") { ShadowToast.getTextOfLatestToast()?.takeIf { it.contains("already in") } }
        assertTrue(r2.isFinishing)
    }

    @Test
    fun `a room link while signed out comes back to the room after sign-up`() {
        val (mod, room) = moderatorWithRoom("After sign-up")
        val r = launch(RoomActivity::class.java, view("${Live.url}/r/${room.id}")).get()
        val w = track(follow(r, WelcomeActivity::class.java)).get()
        w.type(WelcomeActivity.ID_SERVER, Live.url)
        w.type(WelcomeActivity.ID_INVITE, Live.invite())
        w.type(WelcomeActivity.ID_HANDLE, Live.handle("sari"))
        w.type(WelcomeActivity.ID_NAME, "Sari")
        w.click("Join Ruang")
        val room2 = track(follow(w, RoomActivity::class.java)).get()
        room2.waitText("After sign-up")
        mod.states.await("joined after sign-up") { s -> s.audience.any { it.user.id == app.profile?.id } }
    }
}
