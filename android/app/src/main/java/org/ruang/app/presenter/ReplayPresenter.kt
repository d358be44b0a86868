package org.ruang.app.presenter

import org.ruang.core.ReplayChapterView
import org.ruang.core.ReplayChatLine
import org.ruang.core.ReplayView
import java.text.SimpleDateFormat
import java.util.Date
import java.util.Locale
import java.util.TimeZone

/** One speaker chapter of the timeline: where it starts, as a row to tap. */
data class TimelineRow(val index: Int, val name: String, val startMs: Long, val startLabel: String)

/** A replay's chat message, with when it was said. */
data class ReplayChatRow(val id: Long, val author: String, val text: String, val offsetMs: Long, val offsetLabel: String)

/** The replay screen's fixed parts. */
data class ReplayScreen(
    val title: String,
    /** "Hosted by Ana · 7 Dec 2026 · 45:30". */
    val subtitle: String,
    val durationMs: Long,
    val timeline: List<TimelineRow>,
    val chat: List<ReplayChatRow>,
    /** Only the host deletes a replay. */
    val canDelete: Boolean,
)

/**
 * The replay player's logic, without Android: the clock labels, which chapter a position is
 * in, the speed steps, and which chat messages have been said by a position. ReplayActivity
 * drives a MediaPlayer with it.
 */
object ReplayPresenter {
    /** The speeds the speed button cycles through. */
    val speeds: List<Float> = listOf(1f, 1.5f, 2f)

    fun present(r: ReplayView, myId: String?, zone: TimeZone = TimeZone.getDefault()): ReplayScreen {
        val duration = r.durationMs.toLong()
        val date = SimpleDateFormat("d MMM yyyy", Locale.ENGLISH).apply { timeZone = zone }.format(Date(r.roomCreatedAt))
        return ReplayScreen(
            title = r.title.ifBlank { "Room" },
            subtitle = "Hosted by ${displayName(r.host.name, r.host.handle)} · $date · ${clock(duration)}",
            durationMs = duration,
            timeline = r.chapters.mapIndexed { i, c -> TimelineRow(i, c.name, c.startMs.toLong(), clock(c.startMs.toLong(), duration)) },
            chat = r.chat.map(::chatRow),
            canDelete = myId != null && myId == r.host.id,
        )
    }

    private fun chatRow(m: ReplayChatLine) = ReplayChatRow(
        m.id.toLong(), displayName(m.author.name, m.author.handle), m.text, m.offsetMs.toLong(), clock(m.offsetMs.toLong()),
    )

    /**
     * "m:ss", or "h:mm:ss" from an hour on. With [of], the format of the longer of the two, so
     * "0:05" becomes "00:05" in a replay of ten minutes or more and the labels line up.
     */
    fun clock(ms: Long, of: Long = ms): String {
        val s = (maxOf(ms, 0L) / 1000)
        val h = s / 3600
        val m = (s % 3600) / 60
        val sec = s % 60
        val longest = maxOf(of, ms) / 1000
        return when {
            longest >= 3600 -> String.format(Locale.ROOT, "%d:%02d:%02d", h, m, sec)
            longest >= 600 -> String.format(Locale.ROOT, "%02d:%02d", m, sec)
            else -> String.format(Locale.ROOT, "%d:%02d", m, sec)
        }
    }

    /** "12:05 / 45:30". */
    fun position(positionMs: Long, durationMs: Long): String =
        "${clock(positionMs.coerceIn(0, maxOf(durationMs, 0)), durationMs)} / ${clock(durationMs)}"

    /** The chapter playing at [positionMs]: the last one started by then (null before the first). */
    fun chapterAt(chapters: List<ReplayChapterView>, positionMs: Long): Int? {
        var found: Int? = null
        for ((i, c) in chapters.withIndex()) {
            if (c.startMs.toLong() <= positionMs) found = i else break
        }
        return found
    }

    /** The speed after [current]: 1× → 1.5× → 2× → 1×. A speed not in the list goes back to 1×. */
    fun nextSpeed(current: Float): Float {
        val i = speeds.indexOfFirst { kotlin.math.abs(it - current) < 0.01f }
        return if (i < 0) speeds[0] else speeds[(i + 1) % speeds.size]
    }

    /** "1×", "1.5×", "2×". */
    fun speedLabel(speed: Float): String =
        if (speed == speed.toInt().toFloat()) "${speed.toInt()}×" else "${speed}×"

    /** The chat said by [positionMs] (offsets are from the recording's start). */
    fun chatUpTo(chat: List<ReplayChatRow>, positionMs: Long): List<ReplayChatRow> = chat.filter { it.offsetMs <= positionMs }

    /** A seek bar's 0..[steps] progress for a position. */
    fun progress(positionMs: Long, durationMs: Long, steps: Int = 1000): Int =
        if (durationMs <= 0) 0 else ((positionMs.coerceIn(0, durationMs) * steps) / durationMs).toInt()

    /** The position a seek bar's progress stands for. */
    fun positionOf(progress: Int, durationMs: Long, steps: Int = 1000): Long =
        if (steps <= 0) 0 else (progress.coerceIn(0, steps).toLong() * durationMs) / steps

    /** What the screen says when the phone cannot play the file (Ogg Opus needs Android 10). */
    fun cannotPlay(sdk: Int): String =
        if (sdk < 29) {
            "This phone can't play the replay's audio (Ogg Opus needs Android 10 or newer). Open it in the browser instead."
        } else {
            "The replay's audio couldn't be played. Check the connection, or open it in the browser."
        }

    /** The line under a host's replay list entry: "7 Dec 2026 · 45:30". */
    fun listLine(r: ReplayView, zone: TimeZone = TimeZone.getDefault()): String {
        val date = SimpleDateFormat("d MMM yyyy", Locale.ENGLISH).apply { timeZone = zone }.format(Date(r.roomCreatedAt))
        return "$date · ${clock(r.durationMs.toLong())}"
    }

    const val DELETE_TITLE = "Delete this replay?"
    const val DELETE_MESSAGE = "The recording and its listing are gone for everyone. This can't be undone."
}
