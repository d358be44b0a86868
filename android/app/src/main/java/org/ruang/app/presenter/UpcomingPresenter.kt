package org.ruang.app.presenter

import org.ruang.core.EventSummary
import java.time.OffsetDateTime
import java.time.format.DateTimeFormatter
import java.util.Locale

/** One scheduled room in the hallway's "Upcoming" section. */
data class UpcomingCard(
    val eventId: String,
    val title: String,
    /** "Tue 8 Dec · 19:00 (Asia/Jakarta)": the time in the zone the host scheduled in. */
    val whenLine: String,
    /** "Maya Sari with Budi". */
    val hostsLine: String,
    /** The host's face. */
    val host: Face,
    val notifyMe: Boolean,
    /** "🔔 Notify me" or "✓ Notifying you". */
    val notifyLabel: String,
    /** "12 want to be notified", or null for none. */
    val interestedLine: String?,
    val link: String,
    /** Live now (search shows live events too). */
    val live: Boolean = false,
    /** The room of a live event. */
    val roomId: String? = null,
    /** `scheduled`, `live`, `ended` or `cancelled`. */
    val status: String = "scheduled",
)

object UpcomingPresenter {
    const val NOTIFY = "🔔 Notify me"
    const val NOTIFYING = "✓ Notifying you"
    private val FORMAT = DateTimeFormatter.ofPattern("EEE d MMM · HH:mm", Locale.US)

    /** Scheduled rooms only (live, ended and cancelled ones are not "upcoming"), in the server's order. */
    fun present(events: List<EventSummary>): List<UpcomingCard> =
        events.filter { it.status == "scheduled" }.map(::card)

    fun whenLine(startsAtLocal: String, timeZone: String): String = try {
        FORMAT.format(OffsetDateTime.parse(startsAtLocal)) + " ($timeZone)"
    } catch (e: Exception) {
        startsAtLocal
    }

    fun card(e: EventSummary): UpcomingCard {
        val host = displayName(e.host.name, e.host.handle)
        val others = e.cohosts.map { displayName(it.name, it.handle) }
        return UpcomingCard(
            eventId = e.id,
            title = e.title.ifBlank { "Untitled room" },
            whenLine = whenLine(e.startsAtLocal, e.timeZone),
            hostsLine = if (others.isEmpty()) host else "$host with ${joinNames(others, max = 2)}",
            host = face(e.host),
            notifyMe = e.notifyMe,
            notifyLabel = if (e.notifyMe) NOTIFYING else NOTIFY,
            interestedLine = when (val n = e.interested.toLong()) {
                0L -> null
                1L -> "1 wants to be notified"
                else -> "$n want to be notified"
            },
            link = e.link,
            live = e.status == "live",
            roomId = e.roomId,
            status = e.status,
        )
    }
}
