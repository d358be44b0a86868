package org.ruang.app.presenter

import org.ruang.core.Role

/**
 * When to ask for which permission, and what happens on a refusal. Notifications (API 33+)
 * are asked when you start listening (the service's notification keeps you in control with
 * the screen off); the microphone only when you go on stage. Nothing is asked up front.
 */
object PermissionFlow {
    const val POST_NOTIFICATIONS = "android.permission.POST_NOTIFICATIONS"
    const val RECORD_AUDIO = "android.permission.RECORD_AUDIO"
    /** Build.VERSION_CODES.TIRAMISU. */
    const val NOTIFICATIONS_RUNTIME_SDK = 33

    sealed class Decision {
        object Proceed : Decision()
        data class Ask(val permission: String, val rationale: String) : Decision()
    }

    /** What to do after a refusal. */
    sealed class Outcome {
        /** Keep listening; tell the user once what they lose. */
        data class ListenWithoutNotification(val explanation: String) : Outcome()
        /** Not on stage yet: decline the invite (or lower the hand) and stay a listener. */
        data class StayListener(val explanation: String) : Outcome()
        /** Already on stage (e.g. a moderator who started the room): leave the stage. */
        data class LeaveStage(val explanation: String) : Outcome()
        /** The last moderator cannot leave the stage: stay on it, muted. */
        data class StayMuted(val explanation: String) : Outcome()
    }

    const val NOTIFICATIONS_RATIONALE =
        "Ruang shows a notification while you listen, so you can mute or leave with the screen off."
    const val MIC_RATIONALE = "Ruang needs the microphone so the room can hear you on stage."
    const val NO_NOTIFICATIONS =
        "You can keep listening. Without notifications Android shows no controls for the room: " +
            "come back to the app to leave."
    const val NO_MIC = "Without the microphone you cannot speak on stage. You stay a listener; " +
        "allow the microphone in the system settings to speak later."
    const val NO_MIC_MODERATOR = "Without the microphone you stay on stage muted, so the room keeps " +
        "its moderator. Allow the microphone in the system settings to speak."

    /** Starting to listen (joining a room): notifications on 33+, never the microphone. */
    fun beforeListening(sdkInt: Int, notificationsGranted: Boolean, askedBefore: Boolean): Decision = when {
        sdkInt < NOTIFICATIONS_RUNTIME_SDK -> Decision.Proceed
        notificationsGranted -> Decision.Proceed
        // Asked once and refused: do not nag on every room.
        askedBefore -> Decision.Proceed
        else -> Decision.Ask(POST_NOTIFICATIONS, NOTIFICATIONS_RATIONALE)
    }

    /** Going on stage (accepting an invite, or joining as a moderator). */
    fun beforeStage(micGranted: Boolean): Decision =
        if (micGranted) Decision.Proceed else Decision.Ask(RECORD_AUDIO, MIC_RATIONALE)

    fun notificationsRefused(): Outcome = Outcome.ListenWithoutNotification(NO_NOTIFICATIONS)

    /**
     * The microphone was refused. [role] is your role now: a listener who was invited stays a
     * listener; a speaker leaves the stage; a moderator stays on stage muted when they are the
     * last moderator (the server would end or refuse otherwise), else leaves the stage.
     */
    fun micRefused(role: Role, otherModerators: Int): Outcome = when (role) {
        Role.LISTENER -> Outcome.StayListener(NO_MIC)
        Role.SPEAKER -> Outcome.LeaveStage(NO_MIC)
        Role.MODERATOR -> if (otherModerators > 0) Outcome.LeaveStage(NO_MIC) else Outcome.StayMuted(NO_MIC_MODERATOR)
    }
}
