package org.ruang.app.presenter

import org.junit.jupiter.api.Test
import org.ruang.core.ConnectionStatus
import org.ruang.core.Role
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue

class NotificationContentTest {
    private val mod = person("mod", Role.MODERATOR, name = "Maya")
    private val ana = person("ana", Role.SPEAKER, name = "Ana", level = 0.4f)
    private val budi = person("budi", Role.SPEAKER, name = "Budi", level = 0.8f)

    @Test
    fun titleIsTheRoomAndTextSaysWhoSpeaks() {
        val n = NotificationContent.from(roomState(person("me"), stage = listOf(mod, ana), listeners = 5))
        assertEquals("Morning chat", n.title)
        assertEquals("Ana is speaking", n.text)
        val two = NotificationContent.from(roomState(person("me"), stage = listOf(mod, ana, budi)))
        assertEquals("Budi and Ana are speaking", two.text)
        val quiet = NotificationContent.from(roomState(person("me"), stage = listOf(mod), listeners = 5))
        assertEquals("1 on stage · 5 listening", quiet.text)
    }

    @Test
    fun listenersGetLeaveOnly() {
        val n = NotificationContent.from(roomState(person("me"), stage = listOf(mod)))
        assertNull(n.muteAction)
        assertEquals("Leave", n.leaveLabel)
        assertFalse(n.onStage)
    }

    @Test
    fun speakersGetMuteOrUnmute() {
        val s = NotificationContent.from(roomState(ana, stage = listOf(mod, ana)))
        assertEquals(MuteAction.MUTE, s.muteAction)
        assertTrue(s.onStage)
        val m = person("ana", Role.SPEAKER, muted = true)
        assertEquals(MuteAction.UNMUTE, NotificationContent.from(roomState(m, stage = listOf(mod, m))).muteAction)
    }

    @Test
    fun connectionStatesAndEnd() {
        val r = NotificationContent.from(roomState(ana, stage = listOf(ana), connection = ConnectionStatus.Reconnecting(1u)))
        assertEquals("Reconnecting…", r.text)
        val e = NotificationContent.from(roomState(ana, stage = listOf(ana), connection = ConnectionStatus.Ended("room_ended")))
        assertEquals("This room has ended.", e.text)
        assertNull(e.muteAction)
        assertFalse(e.onStage)
    }
}
