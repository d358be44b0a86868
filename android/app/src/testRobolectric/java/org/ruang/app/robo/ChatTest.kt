package org.ruang.app.robo

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.ruang.app.RoomActivity
import org.ruang.core.ChatMode

/**
 * Reactions and the room chat on the room screen, against the real server through the real
 * core: messages from another member appear (links as URL spans), the app posts from its send
 * box, its reactions come back as a burst that floats over the stage, and a moderator's
 * "chat off" hides the send box.
 */
class ChatTest : LiveTest() {
    @Test
    fun `chat and reactions on the room screen`() {
        signIn("vina", "Vina")
        val (mod, room) = moderatorWithRoom("Chatty room", name = "Maya Sari")
        val rc = openRoom(room)
        val r: RoomActivity = rc.get()
        r.waitText("Maya Sari")

        mod.room!!.sendChat("Welcome! Notes at https://example.org/notes")
        r.waitText("Welcome! Notes at https://example.org/notes")
        val line = views(r.chatPanel).filterIsInstance<android.widget.TextView>()
            .first { it.text.contains("Welcome!") }
        val spans = (line.text as android.text.Spanned).getSpans(0, line.text.length, android.text.style.URLSpan::class.java)
        assertEquals(listOf("https://example.org/notes"), spans.map { it.url })
        val start = (line.text as android.text.Spanned).getSpanStart(spans[0])
        assertEquals("https://example.org/notes", line.text.substring(start, start + "https://example.org/notes".length))

        // The app posts from its send box.
        r.chatPanel.input.setText("Hello from the app")
        r.click("Send")
        waitUntil("the moderator sees the app's message") {
            mod.room!!.chatHistory(null, 50u).messages.any { it.text == "Hello from the app" }
        }
        r.waitText("Hello from the app")

        // A reaction from the app comes back to everyone as a burst, floating over the stage.
        r.click("React clap")
        r.click("React clap")
        waitFor("a floater on screen", 10_000) { idle(); r.reactionsView.active.firstOrNull() }
        assertTrue(r.reactionsView.active.any { it.label.startsWith("👏") })
        Shots.save(r, "40-room-chat-and-reactions")

        // The moderator turns the chat off: the send box goes, a note says why.
        mod.room!!.setChatSettings(ChatMode.OFF, 0u)
        r.waitText("The hosts switched the chat off.")
        assertEquals(android.view.View.GONE, r.chatPanel.input.parent.let { (it as android.view.View).visibility })
        Shots.save(r, "41-room-chat-off")
    }
}
