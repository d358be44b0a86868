package org.ruang.app.presenter

import org.junit.jupiter.api.Test
import org.ruang.core.RoomKind
import kotlin.test.assertEquals
import kotlin.test.assertNull

class HallwayPresenterTest {
    @Test
    fun cardsShowTitleSpeakersAndCounts() {
        val s = HallwayPresenter.present(listOf(summary(listeners = 1200, followed = 1)))
        val c = s.cards.single()
        assertEquals("Jazz", c.title)
        assertEquals("Ana Putri and Budi", c.speakersLine)
        assertEquals(listOf("AP", "B"), c.speakerInitials)
        assertEquals("2 on stage · 1.2K listening", c.countsLine)
        assertEquals("1 speaker you follow", c.followedLine)
        assertEquals("https://ruang.example/r/r1", c.link)
        assertNull(c.kindLabel)
        assertNull(s.emptyText)
    }

    @Test
    fun moreSpeakersThanListedAreCounted() {
        val c = HallwayPresenter.card(summary(speakerCount = 7, kind = RoomKind.SOCIAL, followed = 3))
        assertEquals("Ana Putri, Budi and 5 others", c.speakersLine)
        assertEquals("7 on stage · 10 listening", c.countsLine)
        assertEquals("Social", c.kindLabel)
        assertEquals("3 speakers you follow", c.followedLine)
    }

    @Test
    fun emptyHallwayAndEmptyStage() {
        assertEquals(HallwayPresenter.EMPTY, HallwayPresenter.present(emptyList()).emptyText)
        val c = HallwayPresenter.card(summary(title = "", speakers = emptyList(), kind = RoomKind.CLOSED))
        assertEquals("Untitled room", c.title)
        assertEquals("Nobody on stage yet", c.speakersLine)
        assertEquals("Closed", c.kindLabel)
    }
}
