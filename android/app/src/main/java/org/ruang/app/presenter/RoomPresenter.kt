package org.ruang.app.presenter

import org.ruang.core.ConnectionStatus
import org.ruang.core.ParticipantView
import org.ruang.core.Role
import org.ruang.core.RoomKind
import org.ruang.core.RoomViewState

/** One avatar on the stage or in an audience section. */
data class Tile(
    val userId: String,
    val name: String,
    val handle: String,
    val initials: String,
    val moderator: Boolean,
    /** On stage and muted: the muted mark. */
    val muted: Boolean,
    val speaking: Boolean,
    /** 0.0–1.0, drives the animated speaking ring (0 when muted or silent). */
    val level: Float,
    val me: Boolean,
    val followedBySpeakers: Boolean,
    val role: Role,
    /** A raised hand: your own, or anyone's in the queue a moderator sees. */
    val handRaised: Boolean = false,
    /** Content hash of their photo; none: the initials are drawn. */
    val avatar: String? = null,
)

/** A listener section: "Followed by the speakers" or "Others in the room". */
data class Section(
    val title: String,
    /** How many people the section holds in the whole room (may exceed [people]). */
    val count: Long,
    val people: List<Tile>,
) {
    /** People in the room but not loaded (big rooms): shown as "+N more". */
    val more: Long get() = (count - people.size).coerceAtLeast(0)
    val header: String get() = if (count > 0) "$title · ${compactCount(count)}" else title
}

data class HandButton(
    val visible: Boolean,
    val enabled: Boolean,
    /** The toggle is on: your hand is up. */
    val raised: Boolean,
    val label: String,
)

data class MuteButton(val visible: Boolean, val muted: Boolean, val label: String)

/** The moderator's hand queue. */
data class HandRow(val tile: Tile, val invited: Boolean, val actionLabel: String)

/** What a moderator can do to someone from their menu. */
enum class ModeratorAction(val label: String) {
    INVITE_TO_SPEAK("Invite to speak"),
    MOVE_TO_AUDIENCE("Move to audience"),
    MUTE("Mute"),
    MAKE_MODERATOR("Make moderator"),
    REMOVE("Remove from room"),
}

/** Everything the room screen renders; built from the core's [RoomViewState] only. */
data class RoomScreenState(
    val roomId: String,
    val title: String,
    val kindLabel: String?,
    /** "Connecting…", "Reconnecting…", or null when connected. */
    val banner: String?,
    val stage: List<Tile>,
    val followed: Section,
    val others: Section,
    val countsLine: String,
    val hand: HandButton,
    val mute: MuteButton,
    val showInviteDialog: Boolean,
    val moderator: Boolean,
    val onStage: Boolean,
    val handsEnabled: Boolean,
    val hands: List<HandRow>,
    /** Set when the room is over for you: the message to show before closing the screen. */
    val endedMessage: String?,
    /** The room is being recorded: the top bar shows [RoomPresenter.RECORDING_BADGE]. */
    val recording: Boolean = false,
    /** A "Clip" action is offered (anyone in a recorded room; moderators where clips are on). */
    val canClip: Boolean = false,
    /** The invitation-to-speak dialog's text (it says when the room is recorded). */
    val inviteMessage: String = "",
)

/** The room menu's rows (everyone gets one; moderators get their settings in it too). */
enum class RoomMenuItem(val label: String, val danger: Boolean = false) {
    HANDS_OFF("Turn raised hands off"),
    HANDS_ON("Turn raised hands on"),
    START_RECORDING("Start recording"),
    STOP_RECORDING("Stop recording"),
    CLIP("Clip the last 30 seconds"),
    LEAVE_STAGE("Leave the stage"),
    REPORT_ROOM("Report room"),
    END_ROOM("End the room", danger = true),
}

object RoomPresenter {

    fun present(s: RoomViewState): RoomScreenState {
        val me = s.me
        val myId = me?.user?.id
        val myRole = me?.role ?: Role.LISTENER
        val onStage = myRole != Role.LISTENER
        val moderator = myRole == Role.MODERATOR
        val ended = endedMessage(s)

        val stage = s.stage.map { tile(it, myId) }
        // Hands shown on the audience tiles: the queue (moderators see it) and your own.
        val hands = s.hands.map { it.participant.user.id }.toMutableSet()
        if (s.handRaised && myId != null) hands += myId
        fun listener(p: ParticipantView) = tile(p, myId).let { t -> if (t.userId in hands) t.copy(handRaised = true) else t }
        val followedPeople = s.audience.filter { it.followedBySpeakers }.map(::listener)
        val otherPeople = s.audience.filter { !it.followedBySpeakers }.map(::listener)
        // Counts are coalesced by the server (a few per second) and may lag the lists: never
        // show fewer than the people on screen.
        val listeners = maxOf(s.counts.listeners.toLong(), s.audience.size.toLong())
        val speakers = maxOf(s.counts.speakers.toLong(), s.stage.size.toLong())
        // The room only sends the first listeners; the total comes from the counts. Who of the
        // rest the speakers follow is unknown, so they are counted among the others.
        val othersCount = maxOf(listeners - followedPeople.size, otherPeople.size.toLong())

        val hand = when {
            onStage || ended != null -> HandButton(false, false, false, "Raise hand")
            !s.handsEnabled -> HandButton(true, false, false, "Hands are off")
            s.handRaised -> HandButton(true, true, true, "Lower hand")
            else -> HandButton(true, true, false, "Raise hand")
        }
        val muted = me?.muted ?: true
        val mute = MuteButton(
            visible = onStage && ended == null,
            muted = muted,
            label = if (muted) "Unmute" else "Mute",
        )

        return RoomScreenState(
            roomId = s.roomId,
            title = s.title.ifBlank { "Room" },
            kindLabel = when (s.kind) {
                RoomKind.SOCIAL -> "Social"
                RoomKind.CLOSED -> "Closed"
                RoomKind.OPEN, null -> null
            },
            banner = banner(s.connection),
            stage = stage,
            followed = Section("Followed by the speakers", followedPeople.size.toLong(), followedPeople),
            others = Section("Others in the room", othersCount, otherPeople),
            countsLine = countsLine(speakers, listeners),
            hand = hand,
            mute = mute,
            showInviteDialog = s.invitedToSpeak && myRole == Role.LISTENER && ended == null,
            moderator = moderator,
            onStage = onStage,
            handsEnabled = s.handsEnabled,
            hands = if (moderator) {
                s.hands.map {
                    HandRow(tile(it.participant, myId), it.invited, if (it.invited) "Invited" else "Invite")
                }
            } else {
                emptyList()
            },
            endedMessage = ended,
            recording = s.recording,
            canClip = ended == null && (s.recording || (s.clips && moderator)),
            inviteMessage = inviteMessage(s.title.ifBlank { "Room" }, s.recording),
        )
    }

    const val RECORDING_BADGE = "● REC"
    const val RECORDED_NOTICE = "This room is being recorded. What you say will be in the replay."

    fun inviteMessage(title: String, recording: Boolean): String =
        "The moderators invited you to speak in \"$title\"." + if (recording) "\n\n$RECORDED_NOTICE" else ""

    /** The room menu for the viewer of [s], in order. */
    fun roomMenu(s: RoomViewState): List<RoomMenuItem> {
        val moderator = s.me?.role == Role.MODERATOR
        val st = present(s)
        val items = ArrayList<RoomMenuItem>()
        if (moderator) {
            items += if (s.handsEnabled) RoomMenuItem.HANDS_OFF else RoomMenuItem.HANDS_ON
            items += if (s.recording) RoomMenuItem.STOP_RECORDING else RoomMenuItem.START_RECORDING
        }
        if (st.canClip) items += RoomMenuItem.CLIP
        if (moderator) items += RoomMenuItem.LEAVE_STAGE
        items += RoomMenuItem.REPORT_ROOM
        if (moderator) items += RoomMenuItem.END_ROOM
        return items
    }

    /** The moderator menu for [target], as seen by [me]; empty for non-moderators and yourself. */
    fun actionsFor(me: ParticipantView?, target: ParticipantView): List<ModeratorAction> {
        if (me == null || me.role != Role.MODERATOR || me.user.id == target.user.id) return emptyList()
        return when (target.role) {
            Role.LISTENER -> listOf(
                ModeratorAction.INVITE_TO_SPEAK,
                ModeratorAction.MAKE_MODERATOR,
                ModeratorAction.REMOVE,
            )
            Role.SPEAKER -> listOfNotNull(
                ModeratorAction.MOVE_TO_AUDIENCE,
                ModeratorAction.MUTE.takeIf { !target.muted },
                ModeratorAction.MAKE_MODERATOR,
                ModeratorAction.REMOVE,
            )
            Role.MODERATOR -> listOfNotNull(
                ModeratorAction.MOVE_TO_AUDIENCE,
                ModeratorAction.MUTE.takeIf { !target.muted },
                ModeratorAction.REMOVE,
            )
        }
    }

    /** Finds a participant by id anywhere in the state (stage, audience, hand queue). */
    fun find(s: RoomViewState, userId: String): ParticipantView? =
        s.stage.firstOrNull { it.user.id == userId }
            ?: s.audience.firstOrNull { it.user.id == userId }
            ?: s.hands.firstOrNull { it.participant.user.id == userId }?.participant

    fun tile(p: ParticipantView, myId: String?): Tile {
        val onStage = p.role != Role.LISTENER
        val level = if (onStage && !p.muted && p.speaking) p.level.coerceIn(0f, 1f) else 0f
        return Tile(
            userId = p.user.id,
            name = displayName(p.user.name, p.user.handle),
            handle = p.user.handle,
            initials = initials(p.user.name, p.user.handle),
            moderator = p.role == Role.MODERATOR,
            muted = onStage && p.muted,
            speaking = level > 0f,
            level = level,
            me = p.user.id == myId,
            followedBySpeakers = p.followedBySpeakers,
            role = p.role,
            avatar = p.user.avatar,
        )
    }

    fun banner(c: ConnectionStatus): String? = when (c) {
        is ConnectionStatus.Connecting -> "Connecting…"
        is ConnectionStatus.Connected -> null
        is ConnectionStatus.Reconnecting -> "Reconnecting… (attempt ${c.attempt})"
        is ConnectionStatus.Ended -> null
    }

    fun endedMessage(s: RoomViewState): String? {
        val reason = (s.connection as? ConnectionStatus.Ended)?.reason
        return when {
            s.removed || reason == "removed" || reason == "removed_from_room" ->
                "A moderator removed you from this room."
            reason == "room_ended" || s.ended -> "This room has ended."
            reason == "left" -> "You left the room."
            reason == "replaced" -> "You joined this room on another device."
            reason != null -> "Disconnected from the room ($reason)."
            else -> null
        }
    }

    fun countsLine(speakers: Long, listeners: Long): String =
        "${compactCount(speakers)} on stage · ${compactCount(listeners)} listening"
}
