package org.ruang.app.presenter

import org.junit.jupiter.api.Test
import org.ruang.app.presenter.PermissionFlow.Decision
import org.ruang.app.presenter.PermissionFlow.Outcome
import org.ruang.core.Role
import kotlin.test.assertEquals
import kotlin.test.assertTrue

class PermissionFlowTest {
    @Test
    fun notificationsAskedOnlyOn33PlusWhenListeningStarts() {
        assertEquals(Decision.Proceed, PermissionFlow.beforeListening(32, false, false))
        assertEquals(Decision.Proceed, PermissionFlow.beforeListening(33, true, false))
        val ask = PermissionFlow.beforeListening(34, false, false)
        assertEquals(PermissionFlow.POST_NOTIFICATIONS, (ask as Decision.Ask).permission)
        // Refused once: listening goes on without asking again.
        assertEquals(Decision.Proceed, PermissionFlow.beforeListening(34, false, true))
        assertTrue(PermissionFlow.notificationsRefused() is Outcome.ListenWithoutNotification)
    }

    @Test
    fun microphoneOnlyWhenGoingOnStage() {
        assertEquals(Decision.Proceed, PermissionFlow.beforeStage(true))
        assertEquals(PermissionFlow.RECORD_AUDIO, (PermissionFlow.beforeStage(false) as Decision.Ask).permission)
    }

    @Test
    fun refusingTheMicrophoneDegradesGracefully() {
        assertTrue(PermissionFlow.micRefused(Role.LISTENER, 0) is Outcome.StayListener)
        assertTrue(PermissionFlow.micRefused(Role.SPEAKER, 1) is Outcome.LeaveStage)
        assertTrue(PermissionFlow.micRefused(Role.MODERATOR, 1) is Outcome.LeaveStage)
        assertTrue(PermissionFlow.micRefused(Role.MODERATOR, 0) is Outcome.StayMuted)
    }
}
