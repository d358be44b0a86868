package org.ruang.app.presenter

import org.ruang.core.ConnectionStatus
import org.ruang.core.Counts
import org.ruang.core.HandView
import org.ruang.core.ParticipantView
import org.ruang.core.Role
import org.ruang.core.RoomKind
import org.ruang.core.RoomSummary
import org.ruang.core.RoomViewState
import org.ruang.core.UserSummary

// Builders for the core's records (plain data classes: no native library is loaded).

fun user(id: String, name: String = id.replaceFirstChar { it.uppercase() }, handle: String = id) =
    UserSummary(id, handle, name)

fun person(
    id: String,
    role: Role = Role.LISTENER,
    name: String = id.replaceFirstChar { it.uppercase() },
    muted: Boolean = false,
    followed: Boolean = false,
    level: Float = 0f,
) = ParticipantView(user(id, name), role, muted, followed, level, level > 0.05f)

fun roomState(
    me: ParticipantView?,
    stage: List<ParticipantView> = listOfNotNull(me?.takeIf { it.role != Role.LISTENER }),
    audience: List<ParticipantView> = listOfNotNull(me?.takeIf { it.role == Role.LISTENER }),
    listeners: Int = audience.size,
    handsEnabled: Boolean = true,
    handRaised: Boolean = false,
    invited: Boolean = false,
    hands: List<HandView> = emptyList(),
    connection: ConnectionStatus = ConnectionStatus.Connected,
    ended: Boolean = false,
    removed: Boolean = false,
    recording: Boolean = false,
    clips: Boolean = false,
    title: String = "Morning chat",
    kind: RoomKind? = RoomKind.OPEN,
) = RoomViewState(
    connection = connection,
    roomId = "room1",
    title = title,
    kind = kind,
    handsEnabled = handsEnabled,
    stage = stage,
    audience = audience,
    counts = Counts(stage.size.toUInt(), listeners.toUInt(), hands.size.toUInt()),
    me = me,
    handRaised = handRaised,
    invitedToSpeak = invited,
    hands = hands,
    ended = ended,
    removed = removed,
    recording = recording,
    clips = clips,
)

fun summary(
    id: String = "r1",
    title: String = "Jazz",
    speakers: List<UserSummary> = listOf(user("ana", "Ana Putri"), user("budi", "Budi")),
    speakerCount: Int = speakers.size,
    listeners: Int = 10,
    followed: Int = 0,
    kind: RoomKind = RoomKind.OPEN,
    e2ee: Boolean = false,
) = RoomSummary(id, title, kind, speakers, speakerCount.toUInt(), listeners.toUInt(), followed.toUInt(), "https://ruang.example/r/$id", e2ee)
