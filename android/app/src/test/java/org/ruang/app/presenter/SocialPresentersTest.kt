package org.ruang.app.presenter

import org.junit.jupiter.api.Test
import org.ruang.core.EventSummary
import org.ruang.core.NotificationItem
import org.ruang.core.Profile
import org.ruang.core.SearchResults
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue

class SocialPresentersTest {
    private val hash = "0123456789abcdef0123456789abcdef"

    private fun event(id: String, status: String = "scheduled") = EventSummary(
        id, "Jazz night", "", user("omar", "Omar Said"), emptyList(), 0L, "2026-12-08T19:00:00+07:00",
        "Asia/Jakarta", status, null, false, 3u, "https://ruang.example/e/$id",
    )

    @Test
    fun avatarUrlsAreContentAddressedAndChecked() {
        assertEquals("https://ruang.example/media/avatars/$hash-128.jpg", Avatars.url("https://ruang.example/", hash))
        assertEquals("https://ruang.example/media/avatars/$hash-512.jpg", Avatars.url("https://ruang.example", hash, Avatars.PROFILE))
        for (bad in listOf(null, "", "../../etc/passwd", "ABCDEF0123456789", "0123", "$hash/x")) {
            assertNull(Avatars.url("https://ruang.example", bad), "hash $bad")
        }
        assertNull(Avatars.url("https://ruang.example", hash, 64))
        assertEquals("$hash-128.jpg", Avatars.cacheName("https://ruang.example/media/avatars/$hash-128.jpg"))
        assertNull(Avatars.cacheName("https://ruang.example/media/avatars/../x-128.jpg"))
    }

    @Test
    fun profileScreen() {
        val p = Profile(
            "u1", "maya", "Maya Sari", "  Jazz and data  ", user("ann", "Ann Lee"), false, 1234, 1, true,
            avatar = hash,
            links = listOf("https://maya.example/talks/", "javascript:alert(1)", "http://plain.example", "https://b.example", "https://c.example"),
            hostingNow = listOf(summary("r9", "Late jazz")),
            upcoming = listOf(event("e1"), event("e2", "cancelled")),
        )
        val s = ProfilePresenter.present(p, myId = "u2")
        assertEquals("Maya Sari", s.name)
        assertEquals("@maya", s.handle)
        assertEquals("Jazz and data", s.bio)
        assertEquals(hash, s.face.avatar)
        assertEquals(listOf("maya.example/talks", "b.example", "c.example"), s.links.map { it.first })
        assertEquals("https://maya.example/talks/", s.links[0].second)
        assertEquals("1.2K followers", s.followersLine)
        assertEquals("1 following", s.followingLine)
        assertEquals("Invited by Ann Lee", s.invitedBy)
        assertEquals("ann", s.invitedByHandle)
        assertFalse(s.isMe)
        assertEquals("Following", s.followLabel)
        assertEquals(listOf("Late jazz"), s.hostingNow.map { it.title })
        assertEquals(listOf("e1"), s.upcoming.map { it.eventId }, "cancelled events are not upcoming")
        val me = ProfilePresenter.present(p.copy(followedByYou = false, invitedBy = null, bio = "", followers = 1), "u1")
        assertTrue(me.isMe)
        assertNull(me.invitedBy)
        assertNull(me.bio)
        assertEquals("Follow", me.followLabel)
        assertEquals("1 follower", me.followersLine)
    }

    @Test
    fun notificationRows() {
        val now = 1_800_000_000_000L
        val n = NotificationItem("n1", "invited_to_speak", user("maya", "Maya Sari").copy(avatar = hash), "r7", null,
            "Maya Sari invited you to speak in “Jazz”", "https://ruang.example/r/r7", now - 5 * 60_000, false)
        val row = NotificationsPresenter.row(n, now, "ruang.example")
        assertEquals("5m", row.age)
        assertTrue(row.unread)
        assertEquals(DeepLink.Room("r7", null), row.target)
        assertEquals(hash, row.face!!.avatar)
        assertEquals("✋", row.glyph)
        val old = NotificationsPresenter.row(n.copy(id = "n2", actor = null, read = true, kind = "event_changed",
            link = "https://ruang.example/e/e1", createdAt = now - 3 * 3600_000), now, "ruang.example")
        assertEquals("3h", old.age)
        assertFalse(old.unread)
        assertEquals(DeepLink.Event("e1"), old.target)
        assertEquals("now", NotificationsPresenter.age(now, now + 5000), "a clock a little behind the server's")
        assertEquals("2d", NotificationsPresenter.age(now, now - 2 * 86_400_000L - 1))
        val merged = NotificationsPresenter.merge(listOf(row), listOf(row, old))
        assertEquals(listOf("n1", "n2"), merged.map { it.id })
        assertEquals(row.createdAt, NotificationsPresenter.readUpTo(merged, 0))
        assertNull(NotificationsPresenter.readUpTo(merged, row.createdAt), "the marker never moves back")
        assertNull(NotificationsPresenter.readUpTo(emptyList(), 0))
        assertEquals("99+", NotificationsPresenter.unreadLabel(150))
        assertNull(NotificationsPresenter.unreadLabel(0))
    }

    @Test
    fun search() {
        assertNull(SearchPresenter.query("  _-!  "))
        assertEquals("maya", SearchPresenter.query("  maya "))
        assertEquals(100, SearchPresenter.query("a".repeat(300))!!.length)
        val r = SearchResults(listOf(user("maya", "Maya Sari")), listOf(summary("r1", "Maya's room")), listOf(event("e1", "live")))
        val s = SearchPresenter.present("maya", r)
        assertEquals(listOf("Maya Sari"), s.people.map { it.name })
        assertEquals(listOf("maya"), s.peopleHandles)
        assertEquals(listOf("Maya's room"), s.rooms.map { it.title })
        assertEquals(listOf("e1"), s.events.map { it.eventId }, "live events are found too")
        assertNull(s.emptyText)
        assertEquals("Nothing found for “zz”", SearchPresenter.present(" zz ", SearchResults(emptyList(), emptyList(), emptyList())).emptyText)
    }
}
