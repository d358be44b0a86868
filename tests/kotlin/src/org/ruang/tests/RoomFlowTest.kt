package org.ruang.tests

import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.ruang.core.AudioConfig
import org.ruang.core.ConnectionStatus
import org.ruang.core.Role
import org.ruang.core.RoomKind
import org.ruang.core.RuangException
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import java.io.File

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class RoomFlowTest {
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
    fun `sign up, share invites, raise hand, invite, accept, move back, end`() {
        val moder = server.client()
        val me = moder.signup(server.adminInvite, "moder", "Moder Ator")
        assertTrue(me.isAdmin)
        val codes = moder.invites()
        assertEquals(5, codes.size)
        val ann = server.client()
        ann.signup(codes[0].code, "ann", "Ann")
        val bob = server.client()
        // The share link works as well as the bare code.
        bob.signup(codes[1].link, "bob", "Bob")
        assertEquals("moder", bob.profile("bob").invitedBy?.handle)

        val room = moder.createRoom("Kotlin room", RoomKind.OPEN)
        val modStates = StateRecorder()
        val modRoom = moder.joinRoom(room.id, null, modStates)
        // The listener gets the current state first.
        val first = modStates.await("first state") { true }
        assertEquals(ConnectionStatus.Connected, first.connection)
        assertEquals(Role.MODERATOR, first.me?.role)

        val annStates = StateRecorder()
        val annRoom = ann.joinRoom(room.id, null, annStates)
        val bobStates = StateRecorder()
        val bobRoom = bob.joinRoom(room.id, null, bobStates)
        val annId = annRoom.myUserId()
        assertEquals(Role.LISTENER, annStates.await("joined") { it.me != null }.me?.role)

        annRoom.raiseHand()
        val queued = modStates.await("hand in the queue") { it.hands.size == 1 }
        assertEquals("ann", queued.hands[0].participant.user.handle)
        annStates.await("own hand up") { it.handRaised }

        modRoom.inviteToSpeak(annId)
        annStates.await("invited") { it.invitedToSpeak }
        annRoom.acceptInvite()
        annStates.await("on stage") { it.me?.role == Role.SPEAKER }
        bobStates.await("sees the speaker") { s -> s.stage.any { it.user.id == annId && it.role == Role.SPEAKER } }

        // Wrong-role actions give the typed exception.
        val refused = assertFailsWith<RuangException.Forbidden> { bobRoom.inviteToSpeak(annId) }
        assertEquals("forbidden", refused.code)
        val notOnStage = assertFailsWith<RuangException.Forbidden> { bobRoom.setMuted(false) }
        assertEquals("not_on_stage", notOnStage.code)

        annRoom.setMuted(false)
        bobStates.await("speaker unmuted") { s -> s.stage.any { it.user.id == annId && !it.muted } }

        // Real audio: Ann's client plays a WAV as its microphone; Bob's client plays what
        // the server forwards, with levels and a speaking indicator for Ann.
        val wav = speechLikeWav(seconds = 4)
        val recording = File.createTempFile("bob", ".wav")
        bobRoom.startAudio(AudioConfig(micWav = null, recordWav = recording.path, capture = false))
        annRoom.startAudio(AudioConfig(micWav = wav.path, recordWav = null, capture = true))
        bobStates.await("Ann shown speaking") { s -> s.stage.any { it.user.id == annId && it.speaking && it.level > 0f } }
        val deadline = System.currentTimeMillis() + 15_000
        var stats = bobRoom.audioStats()
        while ((stats?.framesWithAudio ?: 0u) < 50u && System.currentTimeMillis() < deadline) {
            Thread.sleep(100)
            stats = bobRoom.audioStats()
        }
        assertNotNull(stats)
        assertTrue(stats.framesWithAudio >= 50u, "Bob played Ann's audio: $stats")
        assertTrue(stats.packetsReceived > 0u)
        assertTrue(assertNotNull(annRoom.audioStats()).packetsSent > 0u)
        bobRoom.setOutputVolume(0.5f)
        annRoom.stopAudio()
        bobRoom.stopAudio()
        assertTrue(peak(recording) > 1000, "the recording has sound in it")

        modRoom.moveToAudience(annId)
        annStates.await("back in the audience") { it.me?.role == Role.LISTENER }
        bobStates.await("sees her in the audience") { s -> s.stage.none { it.user.id == annId } }

        // The room ends when its moderator leaves.
        modRoom.leave()
        val ended = annStates.await("room ended") { it.connection is ConnectionStatus.Ended }
        assertEquals(ConnectionStatus.Ended("room_ended"), ended.connection)
        assertTrue(ended.ended)
        // Callbacks arrive on core threads, never the caller's.
        val caller = Thread.currentThread().name
        assertTrue(annStates.threads.none { it == caller }, "threads: ${annStates.threads}")
        bobRoom.state()
    }
}

/** A 48 kHz mono WAV with a voice-like sound: a 220 Hz buzz in syllable-long bursts. */
fun speechLikeWav(seconds: Int): File {
    val rate = 48_000
    val n = rate * seconds
    val pcm = java.nio.ByteBuffer.allocate(n * 2).order(java.nio.ByteOrder.LITTLE_ENDIAN)
    for (i in 0 until n) {
        val t = i.toDouble() / rate
        val syllable = if ((t * 4).toInt() % 4 == 3) 0.0 else Math.sin(Math.PI * ((t * 4) % 1.0))
        val buzz = Math.sin(2 * Math.PI * 220 * t) + 0.5 * Math.sin(2 * Math.PI * 440 * t) + 0.25 * Math.sin(2 * Math.PI * 880 * t)
        pcm.putShort((9000 * syllable * buzz).toInt().coerceIn(-32767, 32767).toShort())
    }
    val f = File.createTempFile("speech", ".wav")
    val header = java.nio.ByteBuffer.allocate(44).order(java.nio.ByteOrder.LITTLE_ENDIAN)
    header.put("RIFF".toByteArray()).putInt(36 + n * 2).put("WAVE".toByteArray())
    header.put("fmt ".toByteArray()).putInt(16).putShort(1).putShort(1).putInt(rate).putInt(rate * 2).putShort(2).putShort(16)
    header.put("data".toByteArray()).putInt(n * 2)
    f.writeBytes(header.array() + pcm.array())
    return f
}

/** Largest absolute sample of a 16-bit WAV. */
fun peak(wav: File): Int {
    val b = java.nio.ByteBuffer.wrap(wav.readBytes()).order(java.nio.ByteOrder.LITTLE_ENDIAN)
    var max = 0
    var i = 44
    while (i + 1 < b.limit()) {
        max = maxOf(max, Math.abs(b.getShort(i).toInt()))
        i += 2
    }
    return max
}
