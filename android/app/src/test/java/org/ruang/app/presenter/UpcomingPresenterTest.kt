package org.ruang.app.presenter

import org.junit.jupiter.api.Test
import org.ruang.core.EventSummary
import kotlin.test.assertEquals
import kotlin.test.assertNull

class UpcomingPresenterTest {
    private fun event(
        status: String = "scheduled",
        notifyMe: Boolean = false,
        interested: UInt = 0u,
        cohosts: List<String> = emptyList(),
    ) = EventSummary(
        "e1", "Jazz night", "Standards", user("maya", "Maya Sari"), cohosts.map { user(it) },
        1_796_733_600_000, "2026-12-08T19:00:00+07:00", "Asia/Jakarta", status, null,
        notifyMe, interested, "https://ruang.example/e/e1",
    )

    @Test
    fun timeInTheHostsZoneHostsAndNotifyState() {
        val c = UpcomingPresenter.card(event(cohosts = listOf("budi", "citra", "dewi"), interested = 12u))
        assertEquals("Tue 8 Dec · 19:00 (Asia/Jakarta)", c.whenLine)
        assertEquals("Maya Sari with Budi, Citra and Dewi", c.hostsLine)
        assertEquals("MS", c.host.initials)
        assertEquals(UpcomingPresenter.NOTIFY, c.notifyLabel)
        assertEquals("12 want to be notified", c.interestedLine)
        val on = UpcomingPresenter.card(event(notifyMe = true, interested = 1u))
        assertEquals(UpcomingPresenter.NOTIFYING, on.notifyLabel)
        assertEquals("1 wants to be notified", on.interestedLine)
        assertNull(UpcomingPresenter.card(event()).interestedLine)
        assertEquals("Maya Sari", UpcomingPresenter.card(event()).hostsLine)
    }

    @Test
    fun onlyScheduledEventsAreUpcomingAndBadTimesShowAsSent() {
        val cards = UpcomingPresenter.present(listOf(event(), event(status = "cancelled"), event(status = "live")))
        assertEquals(1, cards.size)
        assertEquals("garbage (UTC)".substringBefore(" "), UpcomingPresenter.whenLine("garbage", "UTC"))
    }
}
