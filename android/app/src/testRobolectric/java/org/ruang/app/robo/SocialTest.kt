package org.ruang.app.robo

import android.content.Intent
import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.net.Uri
import android.view.View
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertTrue
import org.junit.Test
import org.robolectric.Robolectric
import org.ruang.app.AvatarDrawable
import org.ruang.app.EventActivity
import org.ruang.app.NotificationsActivity
import org.ruang.app.Photos
import org.ruang.app.ProfileActivity
import org.ruang.app.RoomActivity
import org.ruang.app.SearchActivity
import org.ruang.app.presenter.Avatars
import org.ruang.core.RoomKind
import org.ruang.core.Role
import org.ruang.core.RuangClient
import java.io.File
import java.io.FileOutputStream

/** Faces, profiles, the notification feed, search and event links, against the real server. */
class SocialTest : LiveTest() {
    /** A 256×256 PNG: orange with a big blue disc in the middle (easy to find in a picture). */
    private fun photoFile(): File {
        val bmp = Bitmap.createBitmap(256, 256, Bitmap.Config.ARGB_8888)
        val c = Canvas(bmp)
        c.drawColor(Color.rgb(240, 140, 30))
        c.drawCircle(128f, 128f, 90f, Paint().apply { color = Color.rgb(30, 60, 220); isAntiAlias = true })
        val f = File.createTempFile("photo", ".png", File(System.getProperty("ruang.tmp") ?: System.getProperty("java.io.tmpdir")))
        FileOutputStream(f).use { bmp.compress(Bitmap.CompressFormat.PNG, 100, it) }
        return f
    }

    private fun withPhoto(p: Person, bio: String? = null, vararg links: String) {
        val args = mutableListOf("profile", "set", "--avatar", photoFile().path)
        bio?.let { args += listOf("--bio", it) }
        for (l in links) args += listOf("--link", l)
        Live.cli(*args.toTypedArray(), token = p.token)
    }

    /** The app's own account as a second client (to check the server side of what the app did). */
    private fun myClient(): RuangClient = Live.client().also { it.restoreSession(MemoryTokens.token!!) }

    private fun tomorrow(at: String = "19:00") =
        java.time.LocalDate.now(java.time.ZoneId.of("Asia/Jakarta")).plusDays(1).toString() + "T" + at

    private fun photoViews(root: View): List<AvatarDrawable> =
        views(root).mapNotNull { it.background as? AvatarDrawable }.toList()

    @Test
    fun `a profile shows the photo, bio, links, invited by and rooms, and follows`() {
        Photos.clearMemory()
        signIn("rina", "Rina Putri")
        val maya = person("maya", "Maya Sari")
        withPhoto(maya, "Cooks and talks about food", "https://maya.example/recipes", "https://video.example/maya")
        val room = maya.client.createRoom("Maya's kitchen", RoomKind.OPEN)
        maya.join(room.id)
        val event = maya.client.createEvent("Cooking Q&A", tomorrow(), "Asia/Jakarta", "", RoomKind.OPEN, emptyList())
        try {
            val pc = launch(ProfileActivity::class.java, ProfileActivity.open(app, maya.profile.handle))
            val p = pc.get()
            p.waitText("Maya Sari")
            p.waitText("@${maya.profile.handle}")
            p.waitText("Cooks and talks about food")
            p.waitText("maya.example/recipes")
            p.waitText("video.example/maya")
            p.waitText("Invited by Ruang Admin")
            p.waitText("Hosting now")
            p.waitText("Maya's kitchen")
            p.waitText("Cooking Q&A")
            p.waitText("0 followers")
            // The photo: fetched once off the main thread, then drawn in the circle.
            val hash = maya.client.me().avatar!!
            val url = Avatars.url(Live.url, hash, Avatars.PROFILE)!!
            waitUntil("the profile photo loaded") { Photos.cached(url) != null && photoViews(p.root()).any { it.photo != null } }
            val face = views(p.root()).first { (it.background as? AvatarDrawable)?.photo != null }
            val bmp = Bitmap.createBitmap(face.width, face.height, Bitmap.Config.ARGB_8888)
            face.draw(Canvas(bmp))
            val mid = bmp.getPixel(face.width / 2, face.height / 2)
            assertTrue("the photo's blue disc in the middle: ${Integer.toHexString(mid)}",
                Color.blue(mid) > 150 && Color.red(mid) < 100)
            val corner = bmp.getPixel(2, 2)
            assertEquals("outside the circle is transparent", 0, Color.alpha(corner))
            Shots.all("20-profile", p) {
                Robolectric.buildActivity(ProfileActivity::class.java, ProfileActivity.open(app, maya.profile.handle)).setup()
                    .also { it.get().waitText("Cooking Q&A") }
            }
            // On disk too: a second process start (memory gone) reads it from cacheDir.
            assertTrue(File(app.cacheDir, "avatars/$hash-512.jpg").isFile)

            p.click("Follow Maya Sari")
            p.waitText("Following")
            p.waitText("1 follower")
            waitUntil("the server has the follow") { maya.client.me().followers == 1L }
            p.click("1 follower: show them")
            waitUntil("the follower list shows the app's user") { p.hasText("Rina Putri") }
            Shots.save(p, "21-profile-followers-light-411x891")
            dialogsOf(p).forEach { it.dismiss() }
            p.click("Unfollow Maya Sari")
            waitUntil("unfollowed on the server") { maya.client.me().followers == 0L }
            p.waitText("0 followers")

            // A handle that does not exist: a sentence, no crash.
            val none = launch(ProfileActivity::class.java, ProfileActivity.open(app, "no_such_person_x")).get()
            none.waitText("No one has that handle.")
            val junk = launch(ProfileActivity::class.java, Intent(Intent.ACTION_VIEW, Uri.parse("ruang://u/../../x")).setClass(app, ProfileActivity::class.java)).get()
            junk.waitText("doesn't lead to a profile")
        } finally {
            runCatching { maya.client.cancelEvent(event.id) }
        }
    }

    @Test
    fun `stage tiles show photos and their sheet follows`() {
        Photos.clearMemory()
        signIn("sari", "Sari")
        // The room shows the summary people had when they joined: the photo comes first.
        val mod = person("mod", "Dewi Lestari")
        withPhoto(mod)
        val room2 = mod.client.createRoom("Faces on stage", RoomKind.OPEN)
        mod.join(room2.id)
        val rc = openRoom(room2)
        val r = rc.get()
        val stage = stageView(r)
        waitUntil("the stage tile has the photo") { stage.tiles.any { it.avatar != null } && Photos.cached(Avatars.url(Live.url, stage.tiles.first { it.avatar != null }.avatar)!!) != null }
        idle()
        Shots.all("22-stage-photos", r) { darkRoom() }
        // Tap Dewi's tile: the sheet offers her profile and following her.
        val tile = stage.tiles.first { it.name == "Dewi Lestari" }
        stage.onTap!!.invoke(tile)
        r.click("Follow Dewi Lestari")
        waitUntil("followed from the stage") { mod.client.me().followers == 1L }
        stage.onTap!!.invoke(tile)
        r.waitText("Unfollow Dewi Lestari")
        r.click("View profile")
        val profile = follow(r, ProfileActivity::class.java)
        profile.get().waitText("Dewi Lestari")
        profile.get().waitText("Following")
        track(profile)
    }

    @Test
    fun `the notification feed pages, marks read and opens the room`() {
        val me = signIn("tono", "Tono")
        val maya = person("maya", "Maya Sari")
        withPhoto(maya)
        val fans = (1..3).map { person("fan", "Fan Number $it") }
        val mine = myClient()
        mine.follow(maya.profile.handle)
        for (f in fans) f.client.follow(me.handle)
        val room = maya.client.createRoom("Maya goes live", RoomKind.OPEN)
        maya.join(room.id)
        waitUntil("4 notifications on the server") { mine.notifications(null, 10u).notifications.size >= 4 }
        assertEquals(4u, mine.notifications(null, 10u).unread)
        // The hallway's bell shows the count.
        val h = launch(org.ruang.app.HallwayActivity::class.java).get()
        h.waitText("Notifications, 4 unread")
        Shots.save(h, "23a-hallway-unread-light-411x891")
        assertTrue(h.findClickable("Notifications, 4 unread") != null)

        val nc = launch(NotificationsActivity::class.java,
            NotificationsActivity.open(app).putExtra(NotificationsActivity.EXTRA_PAGE_SIZE, 3))
        val n = nc.get()
        n.waitText("Maya Sari started a room")
        n.waitText("Fan Number 3 followed you")
        assertFalse("one page of 3 first", n.hasText("Fan Number 1 followed you"))
        n.waitText("Unread: Maya Sari started a room")
        Shots.all("23-notifications", n) {
            Robolectric.buildActivity(NotificationsActivity::class.java, NotificationsActivity.open(app)).setup()
                .also { it.get().waitText("Maya Sari started a room") }
        }
        n.click("Show older")
        n.waitText("Fan Number 1 followed you")
        // Shown: the read marker moved to the newest; the server says nothing is unread.
        waitUntil("all read on the server") { mine.notifications(null, 10u).unread == 0u }
        assertTrue(n.markedUpTo > 0)

        // Back in the hallway: nothing unread.
        val h2 = launch(org.ruang.app.HallwayActivity::class.java).get()
        waitUntil("the bell without a count") { h2.hasText("Notifications") && !h2.hasText("unread") }
        n.click("Maya Sari started a room")
        val rc = track(follow(n, RoomActivity::class.java))
        rc.get().waitText("Maya goes live")
        maya.states.await("the app joined from the notification") { s -> s.audience.any { it.user.id == me.id } }
    }

    @Test
    fun `search finds people, rooms and scheduled rooms`() {
        signIn("umar", "Umar")
        val k = person("kirana", "Kirana Wulandari")
        withPhoto(k)
        val room = k.client.createRoom("Kirana's poetry hour", RoomKind.OPEN)
        k.join(room.id)
        val event = k.client.createEvent("Poetry slam with Kirana", tomorrow("20:00"), "Asia/Jakarta", "Bring a poem", RoomKind.OPEN, emptyList())
        try {
            val sc = launch(SearchActivity::class.java, SearchActivity.open(app))
            val s = sc.get()
            s.click("Search")
            assertTrue("nothing sent for an empty query", s.shown == null)
            s.type(SearchActivity.ID_QUERY, "kirana")
            s.click("Search")
            s.waitText("Kirana Wulandari")
            s.waitText("Live rooms")
            s.waitText("Kirana's poetry hour")
            s.waitText("Scheduled rooms")
            s.waitText("Poetry slam with Kirana")
            Shots.all("24-search", s) {
                Robolectric.buildActivity(SearchActivity::class.java, SearchActivity.open(app).putExtra(SearchActivity.EXTRA_QUERY, "kirana")).setup()
                    .also { it.get().waitText("Poetry slam with Kirana") }
            }
            s.type(SearchActivity.ID_QUERY, "zzqx nothing")
            s.click("Search")
            s.waitText("Nothing found for “zzqx nothing”")
            s.type(SearchActivity.ID_QUERY, "kirana")
            s.click("Search")
            s.click("Kirana Wulandari, @")
            val p = track(follow(s, ProfileActivity::class.java))
            p.get().waitText("Kirana's poetry hour")
        } finally {
            runCatching { k.client.cancelEvent(event.id) }
        }
    }

    @Test
    fun `an event link opens the event, notify me, and the host starts it`() {
        val me = signIn("vina", "Vina")
        val omar = person("omar", "Omar Said")
        val theirs = omar.client.createEvent("Omar's jazz night", tomorrow(), "Asia/Jakarta", "Standards and requests", RoomKind.OPEN, emptyList())
        val mine = myClient().createEvent("Vina's book club", tomorrow("10:00"), "Asia/Jakarta", "", RoomKind.SOCIAL, listOf(omar.profile.handle))
        try {
            // Someone else's event from its https link: details and Notify me, no Start.
            val ec = launch(EventActivity::class.java,
                Intent(Intent.ACTION_VIEW, Uri.parse("${Live.url}/e/${theirs.id}")).setClass(app, EventActivity::class.java))
            val e = ec.get()
            e.waitText("Omar's jazz night")
            e.waitText("Standards and requests")
            e.waitText("(Asia/Jakarta)")
            assertFalse(e.hasText("Start the room"))
            Shots.all("25-event", e) {
                Robolectric.buildActivity(EventActivity::class.java, EventActivity.open(app, theirs.id)).setup()
                    .also { it.get().waitText("Omar's jazz night") }
            }
            e.click("Notify me about Omar's jazz night")
            e.waitText("✓ Notifying you")
            waitUntil("the host sees one interested") { omar.client.event(theirs.id).interested == 1u }

            // A bad id: a sentence, no crash.
            val bad = launch(EventActivity::class.java, Intent(Intent.ACTION_VIEW, Uri.parse("ruang://e/nope_nope")).setClass(app, EventActivity::class.java)).get()
            bad.waitText("doesn't exist")

            // Your own event from ruang://e/ID: Start the room; co-host Omar becomes a moderator.
            val oc = launch(EventActivity::class.java,
                Intent(Intent.ACTION_VIEW, Uri.parse("ruang://e/${mine.id}")).setClass(app, EventActivity::class.java))
            val o = oc.get()
            o.waitText("Vina's book club")
            o.waitText("Start the room")
            Shots.save(o, "26-event-host-light-411x891")
            o.click("Start the room")
            val rc = track(follow(o, RoomActivity::class.java))
            rc.get().waitText("Vina's book club")
            val state = waitFor("in the event's room as its moderator") { app.rooms.state?.takeIf { it.me?.role == Role.MODERATOR } }
            assertEquals(me.id, state.stage.first().user.id)
            assertEquals("live", omar.client.event(mine.id).status)
            assertNotNull(omar.client.event(mine.id).roomId)
        } finally {
            runCatching { omar.client.cancelEvent(theirs.id) }
        }
    }
}
