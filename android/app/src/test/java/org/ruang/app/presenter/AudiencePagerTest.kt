package org.ruang.app.presenter

import org.junit.jupiter.api.Test
import org.ruang.core.AudiencePage
import org.ruang.core.Role
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue

class AudiencePagerTest {
    private val mod = person("mod", Role.MODERATOR)
    private val me = person("me")
    private val sample = listOf(me, person("a", followed = true), person("b"))
    private val state = roomState(me, stage = listOf(mod), audience = sample, listeners = 120)

    private fun pager() = AudiencePager().apply { sync("room1") }
    private fun people(vararg ids: String) = ids.map { person(it) }
    private fun others(p: AudiencePager) = p.others(state, RoomPresenter.present(state).others)

    @Test
    fun showAllRowBeforePagingAndNoneForSmallRooms() {
        val p = pager()
        val base = RoomPresenter.present(state).others
        assertEquals(AudienceFooter("Show all 120 listeners", true), p.footer(base, 120))
        val small = roomState(me, stage = listOf(mod), audience = sample)
        assertNull(p.footer(RoomPresenter.present(small).others, 3))
        assertFalse(p.started)
    }

    @Test
    fun firstTapRequestsTheFirstPageOfFiftyAndShowsLoading() {
        val p = pager()
        val req = assertNotNull(p.request())
        assertEquals(0u, req.cursor)
        assertEquals(50u, req.limit)
        assertEquals("room1", req.roomId)
        assertTrue(p.loading)
        assertEquals(AudienceFooter("Loading listeners…", false), p.footer(others(p), 120))
        // No second request while one is in flight, by tap or by scrolling.
        assertNull(p.request())
        assertNull(p.requestOnScrollEnd())
    }

    @Test
    fun pagesAppendDeduplicatedAgainstTheSampleTheStageAndEachOther() {
        val p = pager()
        val r1 = p.request()!!
        assertTrue(p.onPage(r1, AudiencePage(listOf(me, person("a"), person("b"), person("c"), person("d")), 5u, 120u)))
        assertEquals(listOf("me", "b", "c", "d"), others(p).people.map { it.userId })
        assertEquals(AudienceFooter("Load more · 115 not shown", true), p.footer(others(p), 120))
        val r2 = p.requestOnScrollEnd()!!
        assertEquals(5u, r2.cursor)
        // Overlapping page (someone left, the list shifted) and someone now on stage.
        val onStage = person("e", Role.SPEAKER)
        p.onPage(r2, AudiencePage(listOf(person("d"), onStage, person("f")), null, 120u))
        val shown = others(p)
        assertEquals(listOf("me", "b", "c", "d", "f"), shown.people.map { it.userId })
        assertEquals(shown.people.size, shown.people.map { it.userId }.toSet().size)
        assertTrue(shown.people.first().me)
        assertEquals(119L, shown.count)
        // Last page: no footer, no more requests.
        assertFalse(p.hasMore)
        assertNull(p.footer(shown, 120))
        assertNull(p.request())
        assertNull(p.requestOnScrollEnd())
    }

    @Test
    fun countGrowsWhenMoreArePagedThanTheCountsSaid() {
        val small = roomState(me, stage = listOf(mod), audience = listOf(me), listeners = 2)
        val p = pager()
        p.onPage(p.request()!!, AudiencePage(people("x", "y", "z"), null, 4u))
        val s = p.others(small, RoomPresenter.present(small).others)
        assertEquals(4L, s.count)
        assertEquals(0L, s.more)
    }

    @Test
    fun scrollingDoesNotStartPagingOrRetryAfterAnError() {
        val p = pager()
        assertNull(p.requestOnScrollEnd())
        val r = p.request()!!
        assertTrue(p.onError(r))
        assertEquals(AudienceFooter("Couldn't load listeners · Tap to retry", true), p.footer(others(p), 120))
        assertNull(p.requestOnScrollEnd())
        assertEquals(0u, p.request()!!.cursor)
    }

    @Test
    fun aNonAdvancingCursorEndsPaging() {
        val p = pager()
        val r = p.request()!!
        p.onPage(r, AudiencePage(people("c"), 0u, 120u))
        assertFalse(p.hasMore)
    }

    @Test
    fun anotherRoomResetsAndDropsLatePages() {
        val p = pager()
        val r1 = p.request()!!
        p.onPage(r1, AudiencePage(people("c"), 1u, 120u))
        val late = p.request()!!
        p.sync("room2")
        assertFalse(p.started)
        assertFalse(p.loading)
        assertEquals(0, p.loadedCount)
        assertFalse(p.onPage(late, AudiencePage(people("d"), 2u, 120u)))
        assertFalse(p.onError(late))
        assertEquals(0, p.loadedCount)
        assertEquals(0u, p.request()!!.cursor)
        // Same room again: nothing changes.
        p.sync("room2")
        assertTrue(p.loading)
        // Pages loaded for one room are never shown on another room's state.
        val q = pager()
        q.onPage(q.request()!!, AudiencePage(people("c"), null, 120u))
        q.sync("room2")
        assertEquals(RoomPresenter.present(state).others, q.others(state, RoomPresenter.present(state).others))
    }

    @Test
    fun noRoomNoRequest() {
        assertNull(AudiencePager().request())
    }
}
