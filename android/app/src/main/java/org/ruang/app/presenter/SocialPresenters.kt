package org.ruang.app.presenter

import org.ruang.core.NotificationItem
import org.ruang.core.Profile
import org.ruang.core.SearchResults
import org.ruang.core.UserSummary
import java.net.URI

/** The profile screen. */
data class ProfileScreen(
    val face: Face,
    val name: String,
    val handle: String,
    val bio: String?,
    /** Up to three links: (what to show, the https URL to open). */
    val links: List<Pair<String, String>>,
    val followersLine: String,
    val followingLine: String,
    /** "Invited by Maya Sari", null for the first members. */
    val invitedBy: String?,
    val invitedByHandle: String?,
    val isMe: Boolean,
    val following: Boolean,
    /** "Follow" or "Following". */
    val followLabel: String,
    val hostingNow: List<RoomCard>,
    val upcoming: List<UpcomingCard>,
)

object ProfilePresenter {
    fun present(p: Profile, myId: String?): ProfileScreen {
        val name = displayName(p.name, p.handle)
        return ProfileScreen(
            face = Face(p.id, name, initials(p.name, p.handle), p.avatar),
            name = name,
            handle = "@" + p.handle,
            bio = p.bio.trim().ifEmpty { null },
            links = p.links.mapNotNull(::link).take(3),
            followersLine = count(p.followers, "follower", "followers"),
            followingLine = count(p.following, "following", "following"),
            invitedBy = p.invitedBy?.let { "Invited by " + displayName(it.name, it.handle) },
            invitedByHandle = p.invitedBy?.handle,
            isMe = p.id == myId,
            following = p.followedByYou,
            followLabel = if (p.followedByYou) "Following" else "Follow",
            hostingNow = p.hostingNow.map(HallwayPresenter::card),
            upcoming = UpcomingPresenter.present(p.upcoming),
        )
    }

    fun count(n: Long, one: String, many: String): String = compactCount(n) + " " + if (n == 1L) one else many

    /** Only https links are shown (and opened); shown without the scheme: "maya.example/talks". */
    fun link(url: String): Pair<String, String>? {
        val u = try {
            URI(url.trim())
        } catch (e: Exception) {
            return null
        }
        if (u.scheme?.lowercase() != "https" || u.host.isNullOrEmpty()) return null
        val shown = (u.host + (u.rawPath ?: "")).trimEnd('/')
        return (if (shown.length > 40) shown.take(39) + "…" else shown) to u.toString()
    }
}

/** One row of the notifications screen. */
data class NotificationRow(
    val id: String,
    val text: String,
    /** "now", "5m", "3h", "2d", "8 Dec". */
    val age: String,
    val unread: Boolean,
    val face: Face?,
    /** A glyph for rows without a person. */
    val glyph: String,
    val target: DeepLink,
    val createdAt: Long,
)

object NotificationsPresenter {
    private val DAY = java.time.format.DateTimeFormatter.ofPattern("d MMM", java.util.Locale.US)

    fun row(n: NotificationItem, now: Long, publicHost: String?): NotificationRow = NotificationRow(
        id = n.id,
        text = n.text.trim().ifEmpty { PushPresenter.title(n.kind) },
        age = age(now, n.createdAt),
        unread = !n.read,
        face = n.actor?.let(::face),
        glyph = when (n.kind) {
            "event_scheduled", "event_starting", "event_changed", "event_cancelled" -> "🗓"
            "room_started", "event_started" -> "🎙"
            "invited_to_speak" -> "✋"
            else -> "🔔"
        },
        target = DeepLinks.parse(n.link, publicHost),
        createdAt = n.createdAt,
    )

    /** Appends a page to the rows shown, dropping repeats (a notification in two pages). */
    fun merge(shown: List<NotificationRow>, page: List<NotificationRow>): List<NotificationRow> {
        val seen = shown.mapTo(HashSet()) { it.id }
        return shown + page.filter { seen.add(it.id) }
    }

    /** Where to move the read marker after showing [rows]: the newest shown, or null. */
    fun readUpTo(rows: List<NotificationRow>, marker: Long): Long? =
        rows.maxOfOrNull { it.createdAt }?.takeIf { it > marker }

    fun age(now: Long, at: Long): String {
        val s = (now - at) / 1000
        return when {
            s < 60 -> "now"
            s < 3600 -> "${s / 60}m"
            s < 86_400 -> "${s / 3600}h"
            s < 7 * 86_400 -> "${s / 86_400}d"
            else -> DAY.format(java.time.Instant.ofEpochMilli(at).atZone(java.time.ZoneId.systemDefault()))
        }
    }

    fun unreadLabel(unread: Long): String? = if (unread <= 0) null else if (unread > 99) "99+" else unread.toString()
}

/** The search screen. */
data class SearchScreen(
    val people: List<Face>,
    val peopleHandles: List<String>,
    val rooms: List<RoomCard>,
    val events: List<UpcomingCard>,
    /** "Nothing found for “x”", or null when something was found. */
    val emptyText: String?,
)

object SearchPresenter {
    const val MAX_QUERY = 100

    /** The query to send, or null when it has no word to search for (nothing is sent). */
    fun query(input: String): String? {
        val q = input.trim().take(MAX_QUERY)
        return if (q.any { it.isLetterOrDigit() }) q else null
    }

    fun present(q: String, r: SearchResults): SearchScreen {
        val events = r.events.map(UpcomingPresenter::card)
        val empty = r.people.isEmpty() && r.rooms.isEmpty() && events.isEmpty()
        return SearchScreen(
            people = r.people.map(::face),
            peopleHandles = r.people.map(UserSummary::handle),
            rooms = r.rooms.map(HallwayPresenter::card),
            events = events,
            emptyText = if (empty) "Nothing found for “${q.trim()}”" else null,
        )
    }
}
