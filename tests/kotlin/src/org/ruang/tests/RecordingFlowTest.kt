package org.ruang.tests

import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.ruang.core.AudioConfig
import org.ruang.core.RoomKind
import org.ruang.core.RuangException
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertTrue

/** Recording, clips, replays and message reports through the bindings (issue 16). */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class RecordingFlowTest {
    private lateinit var server: TestServer

    @BeforeAll
    fun start() {
        server = TestServer()
    }

    @AfterAll
    fun stop() {
        server.close()
    }

    @Test
    fun `record, decline the recorded invitation, clip, report a message, replay, delete`() {
        val moder = server.client()
        moder.signup(server.adminInvite, "host", "Host Person")
        val ann = server.client()
        ann.signup(moder.invites()[0].code, "ann", "Ann")

        val room = moder.createRoom("Recorded in Kotlin", RoomKind.OPEN)
        val modStates = StateRecorder()
        val modRoom = moder.joinRoom(room.id, null, modStates)
        modStates.await("joined") { it.me != null }
        val annStates = StateRecorder()
        val annRoom = ann.joinRoom(room.id, null, annStates)
        assertFalse(annStates.await("joined") { it.me != null }.recording)

        // A moderator starts recording; the listener's state says so.
        modRoom.setRecording(true)
        annStates.await("recording on") { it.recording }
        modRoom.startAudio(AudioConfig(micWav = speechLikeWav(seconds = 4).path, recordWav = null, capture = true))

        // Invited and declined: the server tells only the moderators, the core clears it.
        modRoom.inviteToSpeak(annRoom.myUserId())
        annStates.await("invited") { it.invitedToSpeak }
        annRoom.declineInvite()
        annStates.await("the invitation is gone") { !it.invitedToSpeak }

        // Anyone in a recorded room clips the last 30 s (once someone was heard).
        Thread.sleep(3_000)
        val clip = ann.clip(room.id)
        assertTrue(clip.url.startsWith("${server.url}/c/"), clip.url)
        assertTrue(clip.durationMs > 0uL)

        // A chat message reported by id; the second report joins the first.
        modRoom.sendChat("a message to report")
        val msg = (0 until 100).firstNotNullOf { _ ->
            annRoom.chatHistory(null, 10u).messages.firstOrNull { it.text == "a message to report" }
                .also { if (it == null) Thread.sleep(50) }
        }
        assertFalse(ann.reportMessage(room.id, msg.id, "spam", ""))
        assertTrue(ann.reportMessage(room.id, msg.id, "spam", ""))

        // The room ends; its replay is listed on the host's profile with the host's chapter.
        modRoom.stopAudio()
        modRoom.endRoom()
        val replay = (0 until 600).firstNotNullOf { _ ->
            runCatching { ann.replay(room.id, null) }.getOrNull().also { if (it == null) Thread.sleep(100) }
        }
        assertEquals("Recorded in Kotlin", replay.title)
        assertTrue(replay.audioUrl.startsWith("${server.url}/media/replays/${room.id}.ogg"), replay.audioUrl)
        assertTrue(replay.durationMs > 0uL)
        assertTrue(replay.chapters.any { it.name == "Host Person" }, "${replay.chapters}")
        assertEquals(listOf("a message to report"), replay.chat.map { it.text })
        assertEquals(listOf(room.id), ann.userReplays("host").map { it.roomId })

        // Only the host deletes it.
        assertFailsWith<RuangException.Forbidden> { ann.deleteReplay(room.id) }
        moder.deleteReplay(room.id)
        assertFailsWith<RuangException.NotFound> { ann.replay(room.id, null) }
        assertTrue(ann.userReplays("host").isEmpty())
        annRoom.close()
        modRoom.close()
    }
}
