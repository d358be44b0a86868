package org.ruang.app.presenter

/**
 * What the room service does when audio focus changes (a phone call, another app playing).
 * Mirrors AudioManager's AUDIOFOCUS_* values without depending on android.*.
 */
object AudioFocusPolicy {
    enum class Change { GAIN, LOSS, LOSS_TRANSIENT, LOSS_TRANSIENT_CAN_DUCK }

    /** The state the policy keeps between changes. */
    data class State(
        /** Playback paused by us (volume 0). */
        val paused: Boolean = false,
        /** We muted the microphone for the interruption and must unmute after. */
        val mutedByUs: Boolean = false,
    )

    data class Effect(
        /** New output volume, or null to leave it. */
        val volume: Float?,
        /** true = mute, false = unmute, null = leave the microphone alone. */
        val mute: Boolean?,
        val state: State,
    )

    const val DUCK_VOLUME = 0.3f

    fun onChange(change: Change, state: State, onStage: Boolean, muted: Boolean): Effect = when (change) {
        Change.LOSS, Change.LOSS_TRANSIENT -> {
            val muteNow = onStage && !muted
            Effect(
                volume = 0f,
                mute = if (muteNow) true else null,
                state = State(paused = true, mutedByUs = state.mutedByUs || muteNow),
            )
        }
        Change.LOSS_TRANSIENT_CAN_DUCK -> Effect(DUCK_VOLUME, null, state)
        Change.GAIN -> Effect(
            volume = 1f,
            // Unmute only what we muted ourselves; a mute the user chose stays.
            mute = if (state.mutedByUs && onStage) false else null,
            state = State(),
        )
    }

    /** Maps AudioManager.AUDIOFOCUS_* (1, -1, -2, -3). */
    fun fromPlatform(value: Int): Change? = when (value) {
        1, 2, 3, 4 -> Change.GAIN
        -1 -> Change.LOSS
        -2 -> Change.LOSS_TRANSIENT
        -3 -> Change.LOSS_TRANSIENT_CAN_DUCK
        else -> null
    }
}
