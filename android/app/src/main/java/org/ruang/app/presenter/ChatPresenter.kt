package org.ruang.app.presenter

import org.ruang.core.ChatMessageView
import org.ruang.core.ChatMode
import org.ruang.core.ChatViewState
import org.ruang.core.ParticipantView
import org.ruang.core.ReactionBurstView
import org.ruang.core.Role

/** A link inside a chat line, as UTF-16 indices into [ChatLine.text] (ready for spans). */
data class LinkRange(val start: Int, val end: Int, val url: String)

/** One chat message as the chat sheet shows it. */
data class ChatLine(
    val id: Long,
    val author: String,
    val handle: String,
    val text: String,
    val links: List<LinkRange>,
    val mine: Boolean,
    /** Moderators delete any message, authors their own. */
    val canDelete: Boolean,
)

/** Everything the reaction bar and the chat sheet render. */
data class ChatScreenState(
    val lines: List<ChatLine>,
    /** Older messages exist (a "Show earlier" row). */
    val more: Boolean,
    val canPost: Boolean,
    /** Why one cannot post, or the slow-mode hint; null when there is nothing to say. */
    val note: String?,
    val reactionsEnabled: Boolean,
    val moderator: Boolean,
)

/** One floating reaction to animate: over [targetUserId]'s tile, or the stage when null. */
data class Floater(val emoji: String, val label: String, val targetUserId: String?)

/** A moderator's choice in the chat settings menu. */
data class ChatSettingChoice(val label: String, val mode: ChatMode, val slowSeconds: UInt, val current: Boolean)

object ChatPresenter {
    const val MAX_CHARS = 500

    /** Builds the chat sheet's state; `me` is the viewer (null for a guest or before joining). */
    fun present(chat: ChatViewState, me: ParticipantView?): ChatScreenState {
        val moderator = me?.role == Role.MODERATOR
        val myId = me?.user?.id
        val note = when {
            me == null -> "Guests read the chat; members write in it."
            moderator -> null
            chat.mode == ChatMode.OFF -> "The hosts switched the chat off."
            chat.mode == ChatMode.FOLLOWERS -> "Only people who follow a host can write."
            chat.slowSeconds > 0u -> "Slow mode: one message every ${chat.slowSeconds} s."
            else -> null
        }
        return ChatScreenState(
            lines = chat.messages.map { line(it, myId, moderator) },
            more = chat.more,
            canPost = me != null && (moderator || chat.mode != ChatMode.OFF),
            note = note,
            reactionsEnabled = chat.reactionsEnabled,
            moderator = moderator,
        )
    }

    fun line(m: ChatMessageView, myId: String?, moderator: Boolean): ChatLine {
        val mine = myId != null && m.author.id == myId
        return ChatLine(
            id = m.id.toLong(),
            author = m.author.name,
            handle = m.author.handle,
            text = m.text,
            links = m.links.mapNotNull { l -> utf16Range(m.text, l.start.toInt(), l.end.toInt(), l.url) },
            mine = mine,
            canDelete = moderator || mine,
        )
    }

    /**
     * The server's link offsets are code points; Kotlin strings index UTF-16 units. Null for a
     * span outside the text or a URL that is not http(s) (never rendered as a link).
     */
    fun utf16Range(text: String, start: Int, end: Int, url: String): LinkRange? {
        val points = text.codePointCount(0, text.length)
        if (start < 0 || end <= start || end > points) return null
        if (!(url.startsWith("https://", ignoreCase = true) || url.startsWith("http://", ignoreCase = true))) return null
        val s = text.offsetByCodePoints(0, start)
        val e = text.offsetByCodePoints(s, end - start)
        return LinkRange(s, e, url)
    }

    /** What a send box checks before sending (the server checks again): null when fine. */
    fun problem(text: String): String? {
        val t = text.trim()
        return when {
            t.isEmpty() -> "Write something first."
            t.codePointCount(0, t.length) > MAX_CHARS -> "At most $MAX_CHARS characters."
            t.any { Character.isISOControl(it) } -> "Line breaks and control characters can't be sent."
            else -> null
        }
    }

    /** One floater per burst entry, labelled with its count when more than one. */
    fun floaters(bursts: List<ReactionBurstView>): List<Floater> =
        bursts.filter { it.count > 0u }.map { b ->
            Floater(b.emoji, if (b.count > 1u) "${b.emoji} ×${b.count}" else b.emoji, b.to)
        }

    /** The moderator's chat settings menu: who may write, and slow mode. */
    fun settingChoices(chat: ChatViewState): List<ChatSettingChoice> {
        val slow = chat.slowSeconds
        return listOf(
            ChatSettingChoice("Everyone can chat", ChatMode.EVERYONE, slow, chat.mode == ChatMode.EVERYONE),
            ChatSettingChoice("Only people who follow a host", ChatMode.FOLLOWERS, slow, chat.mode == ChatMode.FOLLOWERS),
            ChatSettingChoice("Turn the chat off", ChatMode.OFF, slow, chat.mode == ChatMode.OFF),
            if (slow > 0u) {
                ChatSettingChoice("Slow mode off", chat.mode, 0u, false)
            } else {
                ChatSettingChoice("Slow mode: 30 s between messages", chat.mode, 30u, false)
            },
        )
    }
}
