package org.ruang.app.presenter

import org.ruang.core.AudiencePage
import org.ruang.core.ParticipantView
import org.ruang.core.Role
import org.ruang.core.RoomViewState

/** The row under the audience sections: what it says, and whether a tap loads (more) listeners. */
data class AudienceFooter(val label: String, val tappable: Boolean)

/**
 * Paging through a big room's audience. The room state only carries the first listeners (the
 * sample); "Show all N listeners" pages the rest with `Room.audiencePage`. This class holds the
 * paging state only — the screen makes the (blocking) call on the core thread and hands the
 * page back here on the main thread. Plain Kotlin: no android.* here.
 */
class AudiencePager(private val pageSize: UInt = PAGE_SIZE) {
    /** One page to load; answer with [onPage] or [onError]. */
    data class Request(val roomId: String, val cursor: UInt, val limit: UInt, val generation: Int)

    /** The room whose audience is paged; another room resets everything. */
    var roomId: String? = null
        private set
    /** The user asked to see everyone (the first page was requested). */
    var started = false
        private set
    var loading = false
        private set
    /** The last page request failed: the footer offers a retry. */
    var failed = false
        private set

    /** Bumped on every reset so pages of an older room are dropped. */
    private var generation = 0
    /** The cursor of the next page; null once the last page came. */
    private var next: UInt? = 0u
    /** Paged listeners in server order, by user id (a later page's copy replaces an earlier one). */
    private val loaded = LinkedHashMap<String, ParticipantView>()

    val loadedCount: Int get() = loaded.size
    val hasMore: Boolean get() = next != null

    /** Follows the room on screen: another room (or none) drops everything loaded. */
    fun sync(roomId: String?) {
        if (roomId == this.roomId) return
        this.roomId = roomId
        generation++
        loaded.clear()
        started = false
        loading = false
        failed = false
        next = 0u
    }

    /** A tap on the footer: the page to load, or null (no room, already loading, nothing left). */
    fun request(): Request? {
        val id = roomId ?: return null
        val cursor = next ?: return null
        if (loading) return null
        started = true
        loading = true
        failed = false
        return Request(id, cursor, pageSize, generation)
    }

    /** Scrolled to the end: the next page, but only once the user asked for everyone and not after an error. */
    fun requestOnScrollEnd(): Request? = if (started && !failed) request() else null

    /** A page arrived. False when it belongs to a room no longer shown (then it is dropped). */
    fun onPage(req: Request, page: AudiencePage): Boolean {
        if (req.generation != generation || req.roomId != roomId) return false
        loading = false
        for (p in page.participants) loaded[p.user.id] = p
        // A cursor that does not move forward would loop: treat it as the end.
        next = page.next?.takeIf { it > req.cursor }
        return true
    }

    /** The page request failed. False when it belongs to a room no longer shown. */
    fun onError(req: Request): Boolean {
        if (req.generation != generation || req.roomId != roomId) return false
        loading = false
        failed = true
        return true
    }

    /**
     * The "Others in the room" section with the paged listeners appended: deduplicated by user id
     * against the sample (both sections), the stage and each other; people who went on stage
     * since their page came are left out.
     */
    fun others(state: RoomViewState, base: Section): Section {
        if (loaded.isEmpty() || state.roomId != roomId) return base
        val myId = state.me?.user?.id
        val seen = HashSet<String>()
        for (p in state.audience) seen.add(p.user.id)
        for (p in state.stage) seen.add(p.user.id)
        val extra = loaded.values
            .filter { it.role == Role.LISTENER && seen.add(it.user.id) }
            .map { RoomPresenter.tile(it, myId) }
        if (extra.isEmpty()) return base
        val people = base.people + extra
        return base.copy(count = maxOf(base.count, people.size.toLong()), people = people)
    }

    /** The footer row under [others] (as returned by [others]), or null for none. */
    fun footer(others: Section, listeners: Long): AudienceFooter? {
        val notShown = others.more
        return when {
            loading -> AudienceFooter("Loading listeners…", false)
            failed -> AudienceFooter("Couldn't load listeners · Tap to retry", true)
            !started -> if (notShown > 0) AudienceFooter("Show all ${compactCount(listeners)} listeners", true) else null
            next != null -> AudienceFooter(
                if (notShown > 0) "Load more · ${compactCount(notShown)} not shown" else "Load more",
                true,
            )
            else -> null
        }
    }

    companion object {
        const val PAGE_SIZE: UInt = 50u
    }
}
