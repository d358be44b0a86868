package org.ruang.app.presenter

import org.ruang.core.RoomKind
import org.ruang.core.RoomSummary

/** One room card in the hallway. */
data class RoomCard(
    val roomId: String,
    val title: String,
    val kindLabel: String?,
    /** "Ana, Budi and 3 others" — the people on stage. */
    val speakersLine: String,
    /** Avatars for the first speakers. */
    val speakerInitials: List<String>,
    /** The first speakers' faces (id for the avatar colour, initials). */
    val speakers: List<Face>,
    /** "3 on stage · 120 listening". */
    val countsLine: String,
    /** "2 speakers you follow", or null. */
    val followedLine: String?,
    val link: String,
    /** End-to-end encrypted: the card shows a lock. */
    val encrypted: Boolean = false,
)

/** One face on a card: the avatar colour comes from the user id. */
data class Face(val userId: String, val name: String, val initials: String, val avatar: String? = null)

data class HallwayScreenState(
    val cards: List<RoomCard>,
    /** Shown instead of the list when it is empty. */
    val emptyText: String?,
)

object HallwayPresenter {
    const val EMPTY = "No live rooms right now. Start one!"

    fun present(rooms: List<RoomSummary>): HallwayScreenState {
        val cards = rooms.map(::card)
        return HallwayScreenState(cards, if (cards.isEmpty()) EMPTY else null)
    }

    fun card(r: RoomSummary): RoomCard {
        val names = r.speakers.map { displayName(it.name, it.handle) }
        val speakerCount = maxOf(r.speakerCount.toLong(), names.size.toLong())
        // The summary carries the first speakers; say how many more there are.
        val speakersLine = when {
            names.isEmpty() -> "Nobody on stage yet"
            speakerCount > names.size -> {
                val rest = speakerCount - names.size
                names.joinToString(", ") + " and $rest other" + if (rest == 1L) "" else "s"
            }
            else -> joinNames(names, max = 3)
        }
        val followed = r.followedSpeakers.toLong()
        return RoomCard(
            roomId = r.id,
            title = r.title.ifBlank { "Untitled room" },
            kindLabel = when (r.kind) {
                RoomKind.OPEN -> null
                RoomKind.SOCIAL -> "Social"
                RoomKind.CLOSED -> "Closed"
            },
            speakersLine = speakersLine,
            speakerInitials = r.speakers.take(3).map { initials(it.name, it.handle) },
            speakers = r.speakers.take(3).map { face(it) },
            countsLine = RoomPresenter.countsLine(speakerCount, r.listenerCount.toLong()),
            followedLine = when (followed) {
                0L -> null
                1L -> "1 speaker you follow"
                else -> "$followed speakers you follow"
            },
            link = r.link,
            encrypted = r.e2ee,
        )
    }
}

/** The face of a person from the core's summary (photo hash included). */
fun face(u: org.ruang.core.UserSummary): Face =
    Face(u.id, displayName(u.name, u.handle), initials(u.name, u.handle), u.avatar)
