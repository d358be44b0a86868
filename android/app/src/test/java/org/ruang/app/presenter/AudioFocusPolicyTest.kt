package org.ruang.app.presenter

import org.junit.jupiter.api.Test
import org.ruang.app.presenter.AudioFocusPolicy.Change
import org.ruang.app.presenter.AudioFocusPolicy.State
import kotlin.test.assertEquals
import kotlin.test.assertNull

class AudioFocusPolicyTest {
    @Test
    fun aCallPausesAndMutesThenResumes() {
        val lost = AudioFocusPolicy.onChange(Change.LOSS_TRANSIENT, State(), onStage = true, muted = false)
        assertEquals(0f, lost.volume)
        assertEquals(true, lost.mute)
        val back = AudioFocusPolicy.onChange(Change.GAIN, lost.state, onStage = true, muted = true)
        assertEquals(1f, back.volume)
        assertEquals(false, back.mute)
        assertEquals(State(), back.state)
    }

    @Test
    fun aMuteTheUserChoseStays() {
        val lost = AudioFocusPolicy.onChange(Change.LOSS_TRANSIENT, State(), onStage = true, muted = true)
        assertNull(lost.mute)
        assertNull(AudioFocusPolicy.onChange(Change.GAIN, lost.state, onStage = true, muted = true).mute)
    }

    @Test
    fun listenersOnlyPauseAndDuck() {
        val lost = AudioFocusPolicy.onChange(Change.LOSS, State(), onStage = false, muted = true)
        assertEquals(0f, lost.volume)
        assertNull(lost.mute)
        assertEquals(AudioFocusPolicy.DUCK_VOLUME, AudioFocusPolicy.onChange(Change.LOSS_TRANSIENT_CAN_DUCK, State(), false, true).volume)
        assertEquals(Change.LOSS_TRANSIENT, AudioFocusPolicy.fromPlatform(-2))
        assertEquals(Change.GAIN, AudioFocusPolicy.fromPlatform(1))
        assertNull(AudioFocusPolicy.fromPlatform(0))
    }
}
