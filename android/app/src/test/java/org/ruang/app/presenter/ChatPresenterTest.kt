package org.ruang.app.presenter

import org.junit.jupiter.api.Test
import org.ruang.core.ChatLink
import org.ruang.core.ChatMessageView
import org.ruang.core.ChatMode
import org.ruang.core.ChatViewState
import org.ruang.core.ParticipantView
import org.ruang.core.ReactionBurstView
import org.ruang.core.Role
import org.ruang.core.UserSummary
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue

class ChatPresenterTest {
    private fun user(id: String, name: String = id.uppercase()) = UserSummary(id, id, name, null)

    private fun me(id: String, role: Role) = ParticipantView(user(id), role, role != Role.MODERATOR, false, 0f, false)

    private fun msg(id: Long, author: String, text: String, links: List<ChatLink> = emptyList()) =
        ChatMessageView(id.toULong(), user(author), text, 1_765_090_000_000L + id, links)

    private fun chat(
        messages: List<ChatMessageView> = emptyList(),
        mode: ChatMode = ChatMode.EVERYONE,
        slow: UInt = 0u,
        reactions: Boolean = true,
    ) = ChatViewState(mode, slow, reactions, messages, false)

    @Test
    fun linkOffsetsInCodePointsBecomeUtf16RangesOverTheSameText() {
        // An emoji before the link is two UTF-16 units but one code point.
        val text = "🎙️ slides https://example.org/s ok"
        val start = text.codePointCount(0, text.indexOf("https"))
        val end = start + "https://example.org/s".length
        val line = ChatPresenter.line(msg(1, "adi", text, listOf(ChatLink(start.toUInt(), end.toUInt(), "https://example.org/s"))), "me", false)
        val l = line.links.single()
        assertEquals("https://example.org/s", text.substring(l.start, l.end))
    }

    @Test
    fun unsafeOrOutOfRangeLinksAreNeverLinks() {
        assertNull(ChatPresenter.utf16Range("javascript:alert(1)", 0, 19, "javascript:alert(1)"))
        assertNull(ChatPresenter.utf16Range("short", 0, 40, "https://x.example"))
        assertNull(ChatPresenter.utf16Range("short", 3, 3, "https://x.example"))
    }

    @Test
    fun guestsReadOnlyMembersPostModeratorsDeleteAnything() {
        val c = chat(listOf(msg(1, "adi", "hi"), msg(2, "budi", "yo")))
        val guest = ChatPresenter.present(c, null)
        assertFalse(guest.canPost)
        assertEquals("Guests read the chat; members write in it.", guest.note)
        assertTrue(guest.lines.none { it.canDelete })

        val adi = ChatPresenter.present(c, me("adi", Role.LISTENER))
        assertTrue(adi.canPost)
        assertNull(adi.note)
        assertEquals(listOf(true, false), adi.lines.map { it.canDelete })
        assertFalse(adi.moderator)

        val mod = ChatPresenter.present(c, me("maya", Role.MODERATOR))
        assertTrue(mod.moderator)
        assertEquals(listOf(true, true), mod.lines.map { it.canDelete })
    }

    @Test
    fun offFollowersAndSlowModeExplainThemselves() {
        val listener = me("adi", Role.LISTENER)
        val off = ChatPresenter.present(chat(mode = ChatMode.OFF), listener)
        assertFalse(off.canPost)
        assertEquals("The hosts switched the chat off.", off.note)
        // Moderators still post when the chat is off, and see no note.
        val modOff = ChatPresenter.present(chat(mode = ChatMode.OFF), me("maya", Role.MODERATOR))
        assertTrue(modOff.canPost)
        assertNull(modOff.note)
        assertEquals("Only people who follow a host can write.", ChatPresenter.present(chat(mode = ChatMode.FOLLOWERS), listener).note)
        assertEquals("Slow mode: one message every 30 s.", ChatPresenter.present(chat(slow = 30u), listener).note)
        assertFalse(ChatPresenter.present(chat(reactions = false), listener).reactionsEnabled)
    }

    @Test
    fun sendBoxChecksWhatTheServerWouldRefuse() {
        assertEquals("Write something first.", ChatPresenter.problem("   "))
        assertEquals("At most 500 characters.", ChatPresenter.problem("é".repeat(501)))
        assertNull(ChatPresenter.problem("🎉".repeat(500)))
        assertEquals("Line breaks and control characters can't be sent.", ChatPresenter.problem("a\nb"))
        assertNull(ChatPresenter.problem("  fine  "))
    }

    @Test
    fun burstsBecomeOneFloaterEachWithTheirCount() {
        val f = ChatPresenter.floaters(listOf(
            ReactionBurstView("clap", "👏", null, 212u),
            ReactionBurstView("plus_one", "+1", "maya", 1u),
        ))
        assertEquals(listOf("👏 ×212", "+1"), f.map { it.label })
        assertEquals(listOf(null, "maya"), f.map { it.targetUserId })
    }

    @Test
    fun settingsMenuMarksTheCurrentModeAndTogglesSlowMode() {
        val choices = ChatPresenter.settingChoices(chat(mode = ChatMode.FOLLOWERS))
        assertEquals(listOf(false, true, false, false), choices.map { it.current })
        assertEquals(30u, choices.last().slowSeconds)
        assertEquals(0u, ChatPresenter.settingChoices(chat(slow = 30u)).last().slowSeconds)
    }
}
