package org.ruang.app.presenter

import org.junit.jupiter.api.Test
import kotlin.test.assertEquals
import kotlin.test.assertTrue

class SafetyPresenterTest {
    @Test
    fun reasonsAreTheServersList() {
        assertEquals(
            listOf("spam", "harassment", "hate", "sexual", "violence", "impersonation", "other"),
            SafetyPresenter.reasons.map { it.wire },
        )
        assertTrue(SafetyPresenter.reasons.all { it.label.isNotBlank() })
    }

    @Test
    fun blockActionsFollowTheState() {
        val a = SafetyPresenter.actions("Maya Sari", blocked = false)
        assertEquals("Block", a.blockLabel)
        assertEquals("Block Maya Sari", a.blockDescription)
        assertEquals("Report Maya Sari", a.reportDescription)
        val b = SafetyPresenter.actions("Maya Sari", blocked = true)
        assertEquals("Unblock", b.blockLabel)
        assertEquals("Unblock Maya Sari", b.blockDescription)
        assertTrue(SafetyPresenter.blockMessage("Maya").contains("aren't told"))
    }

    @Test
    fun reportSentencesAndDetails() {
        assertEquals("Thanks. The admins will look at it", SafetyPresenter.reportedToast(false))
        assertTrue(SafetyPresenter.reportedToast(true).contains("already"))
        assertEquals("loud", SafetyPresenter.details("  loud \n"))
        val long = "é".repeat(1200)
        assertEquals(1000, SafetyPresenter.details(long).length)
        val emoji = "😀".repeat(1001)
        val cut = SafetyPresenter.details(emoji)
        assertEquals(1000, cut.codePointCount(0, cut.length))
        assertEquals("Report \u201cLoud room\u201d", SafetyPresenter.reportRoomTitle("Loud room"))
    }
}
