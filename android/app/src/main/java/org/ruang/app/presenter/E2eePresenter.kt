package org.ruang.app.presenter

import org.ruang.core.E2eeInfo
import org.ruang.core.E2eePhase
import org.ruang.core.RoomKind

/** The lock badge in the room's stage header (encrypted rooms only). */
data class E2eeBadge(val label: String, val description: String, val ready: Boolean)

/** The sheet the badge opens. */
data class E2eeSheet(
    val title: String,
    /** What end-to-end encryption means here, one point a line. */
    val points: List<String>,
    /** Where this device is, when it is not yet (or no longer) in the group. */
    val status: String?,
    /** The safety code in three groups of four digits (members only). */
    val code: String?,
    /** The code for screen readers: digits spoken one by one, groups apart. */
    val codeSpoken: String?,
    val codeCaption: String?,
    /** "Epoch 3 · 2 devices". */
    val codeDetail: String?,
    /** "This device: 1a2b 3c4d …". */
    val fingerprint: String?,
)

/** Encrypted rooms on screen: the badge, its sheet, the hallway lock, the create-room switch. */
object E2eePresenter {
    const val BADGE = "End-to-end encrypted"
    const val LOCK = "🔒"
    const val TITLE = "End-to-end encrypted"
    const val CAPTION = "Compare this code with others in the room: the same code means the same keys."
    const val WAITING = "Waiting for a moderator's device to add you…"
    const val STARTING = "Setting up encryption on this device…"
    const val REMOVED = "This device no longer holds the room's keys."
    const val ENDED = "The room has ended."
    val POINTS = listOf(
        "The server forwards the audio but cannot listen to it: only the devices of the people in the room hold the keys.",
        "No recording on the server, no replays and no clips.",
        "The server still sees who is in the room and when each person speaks, not what they say.",
        "The chat and reactions are not end-to-end encrypted.",
    )

    /** The badge, or null in a plain room (or before the room is known). */
    fun badge(info: E2eeInfo?): E2eeBadge? {
        if (info == null || !info.encrypted) return null
        val ready = info.phase == E2eePhase.MEMBER
        return E2eeBadge(
            label = "$LOCK  $BADGE",
            description = "$BADGE. " + if (ready) "Show the safety code" else "Waiting for the keys",
            ready = ready,
        )
    }

    fun sheet(info: E2eeInfo): E2eeSheet {
        val member = info.phase == E2eePhase.MEMBER
        val code = info.safetyCode?.takeIf { member }?.let(::formatCode)
        val status = when (info.phase) {
            E2eePhase.MEMBER, E2eePhase.NOT_ENCRYPTED -> null
            E2eePhase.STARTING -> STARTING
            E2eePhase.WAITING -> WAITING
            E2eePhase.REMOVED -> REMOVED
            E2eePhase.ENDED -> ENDED
        }
        return E2eeSheet(
            title = TITLE,
            points = POINTS,
            status = status,
            code = code,
            codeSpoken = code?.let(::spoken),
            codeCaption = if (code != null) CAPTION else null,
            codeDetail = if (member) detail(info.epoch, info.members) else null,
            fingerprint = info.fingerprint?.let { "This device: $it" },
        )
    }

    /** "Epoch 3 · 2 devices". */
    fun detail(epoch: ULong?, devices: UInt): String =
        listOfNotNull(epoch?.let { "Epoch $it" }, if (devices == 1u) "1 device" else "$devices devices").joinToString(" · ")

    /** The digits of a safety code in groups of four ("012345678901" -> "0123 4567 8901"). */
    fun formatCode(raw: String): String = raw.filter { it.isDigit() }.chunked(4).joinToString(" ")

    private fun spoken(code: String): String =
        "Safety code " + code.split(' ').joinToString(", ") { group -> group.toList().joinToString(" ") }

    /** The line a bot or another client prints ("… safety code 0123 4567 8901"): its code. */
    fun codeIn(line: String): String? =
        Regex("""safety code ((\d{4} ){2}\d{4})""").find(line)?.groupValues?.get(1)

    /**
     * The room menu of an encrypted room: no recording and no clips (the server never has
     * the audio, and refuses them); the rest as [RoomPresenter.roomMenu] made it.
     */
    fun roomMenu(items: List<RoomMenuItem>, info: E2eeInfo?): List<RoomMenuItem> =
        if (info?.encrypted != true) items
        else items.filter { it != RoomMenuItem.START_RECORDING && it != RoomMenuItem.STOP_RECORDING && it != RoomMenuItem.CLIP }

    // ----- the hallway and the create-room dialog -----

    /** Whether a room of [kind] may be end-to-end encrypted (the server takes closed rooms only). */
    fun allowed(kind: RoomKind): Boolean = kind == RoomKind.CLOSED

    /** The switch after the kind changed: it stays on only for a closed room. */
    fun switchAfterKind(kind: RoomKind, on: Boolean): Boolean = on && allowed(kind)

    /** The line under the switch. */
    fun switchHint(kind: RoomKind): String =
        if (allowed(kind)) "Only the devices in the room hold the keys. No recording, replays or clips."
        else "Only for closed rooms."
}
