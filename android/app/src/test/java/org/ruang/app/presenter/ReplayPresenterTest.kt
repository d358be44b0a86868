package org.ruang.app.presenter

import org.junit.jupiter.api.Test
import org.ruang.core.ReplayChapterView
import org.ruang.core.ReplayChatLine
import org.ruang.core.ReplayView
import org.ruang.core.Role
import org.ruang.core.RoomKind
import java.util.TimeZone
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue

class ReplayPresenterTest {
    private val chapters = listOf(
        ReplayChapterView(0uL, "Ana"),
        ReplayChapterView(65_000uL, "Budi"),
        ReplayChapterView(725_000uL, "Ana"),
    )

    private fun replay(hostId: String = "ana", durationMs: Long = 2_730_000) = ReplayView(
        roomId = "r1", title = "Jazz night", kind = RoomKind.OPEN, host = user(hostId, "Ana Putri"),
        roomCreatedAt = 1_796_650_000_000, createdAt = 1_796_653_000_000, durationMs = durationMs.toULong(), bytes = 1000uL,
        audioUrl = "https://ruang.example/media/replays/r1.ogg", link = "https://ruang.example/r/r1",
        speakers = emptyList(), chapters = chapters,
        chat = listOf(
            ReplayChatLine(1uL, user("budi", "Budi"), "hello", 4_000uL),
            ReplayChatLine(2uL, user("cici", "Cici"), "nice", 70_000uL),
        ),
    )

    @Test
    fun clockLabels() {
        assertEquals("0:05", ReplayPresenter.clock(5_400))
        assertEquals("12:05 / 45:30", ReplayPresenter.position(725_000, 2_730_000))
        // Short positions take the longer label's width.
        assertEquals("00:05 / 45:30", ReplayPresenter.position(5_000, 2_730_000))
        assertEquals("1:00:01", ReplayPresenter.clock(3_601_000))
        assertEquals("0:00:09 / 1:00:01", ReplayPresenter.position(9_000, 3_601_000))
        // Out of range positions are clamped.
        assertEquals("0:30 / 0:30", ReplayPresenter.position(40_000, 30_000))
        assertEquals("0:00 / 0:30", ReplayPresenter.position(-5, 30_000))
    }

    @Test
    fun chapterAtAPosition() {
        assertEquals(0, ReplayPresenter.chapterAt(chapters, 0))
        assertEquals(0, ReplayPresenter.chapterAt(chapters, 64_999))
        assertEquals(1, ReplayPresenter.chapterAt(chapters, 65_000))
        assertEquals(2, ReplayPresenter.chapterAt(chapters, 2_000_000))
        assertNull(ReplayPresenter.chapterAt(listOf(ReplayChapterView(3_000uL, "Ana")), 1_000))
        assertNull(ReplayPresenter.chapterAt(emptyList(), 1_000))
    }

    @Test
    fun speedCycles() {
        assertEquals(1.5f, ReplayPresenter.nextSpeed(1f))
        assertEquals(2f, ReplayPresenter.nextSpeed(1.5f))
        assertEquals(1f, ReplayPresenter.nextSpeed(2f))
        assertEquals(1f, ReplayPresenter.nextSpeed(0.75f))
        assertEquals(listOf("1×", "1.5×", "2×"), ReplayPresenter.speeds.map(ReplayPresenter::speedLabel))
    }

    @Test
    fun seekBarMapsBothWays() {
        assertEquals(500, ReplayPresenter.progress(30_000, 60_000))
        assertEquals(30_000, ReplayPresenter.positionOf(500, 60_000))
        assertEquals(0, ReplayPresenter.progress(10, 0))
        assertEquals(1000, ReplayPresenter.progress(90_000, 60_000))
    }

    @Test
    fun screenTimelineChatAndDelete() {
        val utc = TimeZone.getTimeZone("UTC")
        val s = ReplayPresenter.present(replay(), "ana", utc)
        assertEquals("Jazz night", s.title)
        assertEquals("Hosted by Ana Putri · 7 Dec 2026 · 45:30", s.subtitle)
        assertEquals(listOf("Ana", "Budi", "Ana"), s.timeline.map { it.name })
        assertEquals(listOf("00:00", "01:05", "12:05"), s.timeline.map { it.startLabel })
        assertEquals(65_000, s.timeline[1].startMs)
        assertTrue(s.canDelete)
        assertFalse(ReplayPresenter.present(replay(), "budi", utc).canDelete)
        assertFalse(ReplayPresenter.present(replay(), null, utc).canDelete)
        assertEquals(listOf("hello"), ReplayPresenter.chatUpTo(s.chat, 10_000).map { it.text })
        assertEquals(2, ReplayPresenter.chatUpTo(s.chat, 70_000).size)
        assertEquals("0:04", s.chat[0].offsetLabel)
        assertEquals("Budi", s.chat[0].author)
        assertEquals("7 Dec 2026 · 45:30", ReplayPresenter.listLine(replay(), utc))
    }

    @Test
    fun olderPhonesAreToldWhy() {
        assertTrue(ReplayPresenter.cannotPlay(28).contains("Android 10"))
        assertFalse(ReplayPresenter.cannotPlay(34).contains("Android 10"))
    }
}

class RecordingPresenterTest {
    @Test
    fun recordingBadgeInviteTextAndMenus() {
        val listener = person("me")
        val rec = RoomPresenter.present(roomState(listener, recording = true, invited = true))
        assertTrue(rec.recording)
        assertTrue(rec.inviteMessage.endsWith("This room is being recorded. What you say will be in the replay."))
        assertTrue(rec.canClip, "anyone may clip a recorded room")
        val plain = RoomPresenter.present(roomState(listener, invited = true))
        assertFalse(plain.recording)
        assertFalse(plain.inviteMessage.contains("recorded"))
        assertFalse(plain.canClip)
        // Clips without recording: moderators only.
        assertFalse(RoomPresenter.present(roomState(listener, clips = true)).canClip)
        val mod = person("me", Role.MODERATOR)
        assertTrue(RoomPresenter.present(roomState(mod, clips = true)).canClip)

        assertEquals(listOf(RoomMenuItem.CLIP, RoomMenuItem.REPORT_ROOM), RoomPresenter.roomMenu(roomState(listener, recording = true)))
        assertEquals(listOf(RoomMenuItem.REPORT_ROOM), RoomPresenter.roomMenu(roomState(listener)))
        assertEquals(
            listOf(RoomMenuItem.HANDS_OFF, RoomMenuItem.START_RECORDING, RoomMenuItem.LEAVE_STAGE, RoomMenuItem.REPORT_ROOM, RoomMenuItem.END_ROOM),
            RoomPresenter.roomMenu(roomState(mod)),
        )
        assertEquals(RoomMenuItem.STOP_RECORDING, RoomPresenter.roomMenu(roomState(mod, recording = true))[1])
        assertEquals("Stop recording", RoomMenuItem.STOP_RECORDING.label)
    }
}
