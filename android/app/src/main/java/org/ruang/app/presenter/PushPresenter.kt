package org.ruang.app.presenter

/** A push the app shows as a system notification. */
data class PushModel(
    val title: String,
    val text: String,
    /** What a tap opens (a room, an event or a profile link; else the hallway). */
    val target: DeepLink,
    /** The link itself, as the server sent it. */
    val link: String,
    /** One notification per server notification id: a repeat replaces, never stacks. */
    val tag: String,
)

/**
 * Turns a decrypted push (the server's Notification JSON, docs/protocol.md §10.4, already
 * parsed into its fields) into what the notification shows. Kinds this app does not know
 * still show their text under a neutral title; a push without text shows nothing.
 */
object PushPresenter {
    const val MAX_TEXT = 300

    fun title(kind: String): String = when (kind) {
        "followed_you" -> "New follower"
        "room_started", "event_started" -> "Live now"
        "event_scheduled" -> "New scheduled room"
        "event_starting" -> "Starting soon"
        "event_changed" -> "Scheduled room changed"
        "event_cancelled" -> "Scheduled room cancelled"
        "invitee_joined" -> "Your invite was used"
        "invited_to_speak" -> "Invited to speak"
        else -> "Ruang"
    }

    fun present(id: String, kind: String, text: String, link: String, publicHost: String?): PushModel? {
        val line = text.trim().replace(Regex("\\s+"), " ")
        if (line.isEmpty()) return null
        return PushModel(
            title = title(kind),
            text = if (line.length > MAX_TEXT) line.take(MAX_TEXT - 1) + "…" else line,
            target = DeepLinks.parse(link, publicHost),
            link = link,
            tag = "ruang-" + id.filter { it.isLetterOrDigit() || it == '-' || it == '_' }.take(64).ifEmpty { "push" },
        )
    }
}
