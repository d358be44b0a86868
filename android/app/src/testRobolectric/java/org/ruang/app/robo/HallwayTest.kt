package org.ruang.app.robo

import android.os.SystemClock
import android.view.MotionEvent
import android.widget.EditText
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.ruang.app.HallwayActivity
import org.ruang.app.PullToRefreshScrollView
import org.ruang.app.RoomActivity
import org.ruang.core.RoomKind
import org.ruang.core.Role
import org.ruang.core.RuangException

class HallwayTest : LiveTest() {
    @Test
    fun `rooms appear and disappear as they start and end elsewhere, pull to refresh`() {
        signIn("hana", "Hana")
        // Before the core's first answer: the loading state (the core thread is held busy
        // for the picture, so the answer cannot come first).
        val hold = java.util.concurrent.CountDownLatch(1)
        app.executor.execute { hold.await() }
        val h = launch(HallwayActivity::class.java).get()
        Shots.save(h, "05a-hallway-loading-light-411x891")
        Shots.save(h, "05a-hallway-loading-light-360x640", 360, 640)
        assertTrue(h.hasText("Looking for live rooms"))
        hold.countDown()
        h.waitText("No live rooms right now")
        Shots.all("05-hallway-empty", h) { darkHallway() }
        Shots.assertDiffer("05a-hallway-loading-light-411x891", "05-hallway-empty-light-411x891")

        val (mod, room) = moderatorWithRoom("Morning coffee ☕", name = "Maya Sari")
        val guest = person("budi", "Budi Santoso")
        guest.join(room.id)
        guest.room!!.raiseHand()
        mod.states.await("hand") { it.hands.isNotEmpty() }
        mod.room!!.inviteToSpeak(guest.id)
        guest.states.await("invited") { it.invitedToSpeak }
        guest.room!!.acceptInvite()
        val listener = person("citra", "Citra Dewi")
        listener.join(room.id)
        val (mod2, room2) = moderatorWithRoom("Indie music Friday", name = "Rizky Pratama")
        // The watch brings them in without a tap.
        h.waitText("Morning coffee", 30_000)
        h.waitText("Indie music Friday", 30_000)
        h.waitText("Maya Sari")
        waitFor("counts on the card") { h.allTexts().firstOrNull { it.contains("2 on stage") && it.contains("1 listening") } }
        Shots.all("06-hallway-full", h) { darkHallway().also { it.get().waitText("Indie music Friday") } }
        Shots.assertDiffer("05-hallway-empty-light-411x891", "06-hallway-full-light-411x891")

        // Ended elsewhere: the card goes away.
        mod2.room!!.endRoom()
        waitUntil("the ended room leaves the hallway", 30_000) { !h.hasText("Indie music Friday") }
        assertTrue(mod.client.hallway().none { it.id == room2.id })

        // Pull to refresh: a drag down from the top of the list.
        val scroll = views(h.root()).filterIsInstance<PullToRefreshScrollView>().first()
        val t = SystemClock.uptimeMillis()
        scroll.dispatchTouchEvent(MotionEvent.obtain(t, t, MotionEvent.ACTION_DOWN, 200f, 10f, 0))
        scroll.dispatchTouchEvent(MotionEvent.obtain(t, t + 50, MotionEvent.ACTION_MOVE, 200f, 600f, 0))
        scroll.dispatchTouchEvent(MotionEvent.obtain(t, t + 100, MotionEvent.ACTION_UP, 200f, 600f, 0))
        assertTrue("a pull shows that it refreshes", h.hasText("Refreshing…"))
        waitUntil("refreshed") { !h.hasText("Refreshing…") && h.hasText("Morning coffee") }
    }

    @Test
    fun `upcoming rooms show in the host's time zone and notify me reaches the server`() {
        signIn("lena", "Lena")
        val host = person("omar", "Omar Said")
        val co = person("putri", "Putri Ayu")
        // Tomorrow at 19:00 in Jakarta, as the host typed it.
        val day = java.time.LocalDate.now(java.time.ZoneId.of("Asia/Jakarta")).plusDays(1)
        val event = host.client.createEvent(
            "Jazz standards night", "${day}T19:00", "Asia/Jakarta", "Bring requests",
            RoomKind.OPEN, listOf(co.profile.handle),
        )
        try {
            val h = launch(HallwayActivity::class.java).get()
            h.waitText("Upcoming", 30_000)
            h.waitText("Jazz standards night")
            val expected = java.time.format.DateTimeFormatter.ofPattern("EEE d MMM", java.util.Locale.US).format(day)
            h.waitText("$expected · 19:00 (Asia/Jakarta)")
            h.waitText("Omar Said with Putri Ayu")
            Shots.all("08-hallway-upcoming", h) { darkHallway().also { it.get().waitText("Jazz standards night") } }
            h.click("Notify me about Jazz standards night")
            h.waitText("✓ Notifying you")
            h.waitText("1 wants to be notified")
            waitUntil("the server has the subscription") {
                host.client.upcomingEvents().first { it.id == event.id }.interested == 1u
            }
            Shots.save(h, "08a-hallway-upcoming-notified-light-411x891")
            Shots.assertDiffer("08-hallway-upcoming-light-411x891", "08a-hallway-upcoming-notified-light-411x891")
            // And off again.
            h.click("Stop notifying me about Jazz standards night")
            waitUntil("unsubscribed") { host.client.upcomingEvents().first { it.id == event.id }.interested == 0u }
        } finally {
            // Other tests share the server: leave no upcoming room behind.
            runCatching { host.client.cancelEvent(event.id) }
        }
    }

    @Test
    fun `start a room of each kind`() {
        val me = signIn("ines", "Ines")
        val friend = person("joko", "Joko")
        for ((kind, label) in listOf(RoomKind.OPEN to "Open", RoomKind.SOCIAL to "Social", RoomKind.CLOSED to "Closed")) {
            val hc = launch(HallwayActivity::class.java)
            val h = hc.get()
            h.click("Start a room")
            val d = waitFor("the start dialog") { h.startDialog?.takeIf { it.isShowing } }
            val title = "Ines talks ${label.lowercase()}"
            views(d.window!!.decorView).filterIsInstance<EditText>().first().setText(title)
            h.click("$label room")
            if (kind == RoomKind.CLOSED) {
                Shots.all("07-hallway-start-room", h) {
                    darkHallway().also { dc ->
                        dc.get().click("Start a room")
                        views(dc.get().startDialog!!.window!!.decorView).filterIsInstance<EditText>().first().setText(title)
                        dc.get().click("$label room")
                    }
                }
            }
            h.click("Let's go")
            val rc = track(follow(h, RoomActivity::class.java))
            rc.get().waitText(title)
            val state = waitFor("in the new room as moderator") { app.rooms.state?.takeIf { it.me?.role == Role.MODERATOR } }
            assertEquals(kind, state.kind)
            // Server state, seen by someone else.
            when (kind) {
                RoomKind.OPEN -> waitUntil("listed for others") { friend.client.hallway().any { it.id == state.roomId } }
                RoomKind.SOCIAL -> Unit
                RoomKind.CLOSED -> {
                    val refused = runCatching { friend.client.joinRoom(state.roomId, null, Recorder()) }.exceptionOrNull()
                    assertTrue("closed without the link: $refused", refused is RuangException.Forbidden)
                    val link = app.rooms.shareLink!!
                    assertTrue(link, link.contains("?t="))
                    friend.join(state.roomId, linkToken(link))
                    friend.leave()
                }
            }
            assertEquals(me.id, state.stage.first().user.id)
            app.rooms.command({ it.endRoom() })
            waitUntil("room ended") { app.rooms.roomId == null }
            rc.pause().stop().destroy()
            hc.pause().stop().destroy()
            idle()
        }
    }
}
