package org.ruang.app.presenter

import org.ruang.core.ConnectionStatus
import org.ruang.core.Role
import org.ruang.core.RoomViewState

/** The ongoing notification of the room service. */
data class NotificationModel(
    val title: String,
    val text: String,
    /** Mute/Unmute action: only on stage. */
    val muteAction: MuteAction?,
    /** Leave is always offered. */
    val leaveLabel: String,
    /** True while the microphone is part of the foreground service (on stage). */
    val onStage: Boolean,
)

enum class MuteAction(val label: String) { MUTE("Mute"), UNMUTE("Unmute") }

object NotificationContent {
    fun from(s: RoomViewState): NotificationModel {
        val me = s.me
        val onStage = me != null && me.role != Role.LISTENER
        val title = s.title.ifBlank { "Ruang room" }
        val text = when (val c = s.connection) {
            is ConnectionStatus.Connecting -> "Connecting…"
            is ConnectionStatus.Reconnecting -> "Reconnecting…"
            is ConnectionStatus.Ended -> RoomPresenter.endedMessage(s) ?: "The room is over."
            is ConnectionStatus.Connected -> speakingText(s)
        }
        val ended = s.connection is ConnectionStatus.Ended || s.ended || s.removed
        return NotificationModel(
            title = title,
            text = text,
            muteAction = when {
                !onStage || ended -> null
                me.muted -> MuteAction.UNMUTE
                else -> MuteAction.MUTE
            },
            leaveLabel = "Leave",
            onStage = onStage && !ended,
        )
    }

    /** "Ana is speaking", "Ana and Budi are speaking", or the room's counts when it is quiet. */
    fun speakingText(s: RoomViewState): String {
        val speaking = s.stage.filter { it.speaking && !it.muted }
            .sortedByDescending { it.level }
            .map { displayName(it.user.name, it.user.handle) }
        return when {
            speaking.isEmpty() -> RoomPresenter.countsLine(s.counts.speakers.toLong(), s.counts.listeners.toLong())
            speaking.size == 1 -> "${speaking[0]} is speaking"
            else -> "${joinNames(speaking)} are speaking"
        }
    }
}
