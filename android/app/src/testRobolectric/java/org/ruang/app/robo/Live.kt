package org.ruang.app.robo

import org.ruang.core.AudioConfig
import org.ruang.core.ClientConfig
import org.ruang.core.Profile
import org.ruang.core.Room
import org.ruang.core.RoomListener
import org.ruang.core.RoomViewState
import org.ruang.core.RuangClient
import java.io.File
import java.net.HttpURLConnection
import java.net.ServerSocket
import java.net.URL
import java.nio.file.Files
import java.util.concurrent.TimeUnit

/**
 * The real server for the whole run: `ruang serve` on a free port with a fresh data
 * directory (started on first use, stopped at JVM exit), and an admin account (the first
 * invite) that mints an invite for every new user.
 */
object Live {
    val bin: String = System.getProperty("ruang.bin") ?: error("-Druang.bin=PATH/ruang is needed")
    private val tmp = File(System.getProperty("ruang.tmp") ?: System.getProperty("java.io.tmpdir"))

    val port: Int
    val url: String
    val data: File
    private val process: Process
    val firstInvite: String
    val admin: RuangClient
    private var counter = 0

    init {
        port = ServerSocket(0).use { it.localPort }
        url = "http://127.0.0.1:$port"
        data = Files.createTempDirectory(tmp.toPath(), "serve").toFile()
        process = ProcessBuilder(
            bin, "serve", "--addr", "127.0.0.1:$port", "--data", data.path, "--rtc-port", "0",
            "--public-url", url, "--auth-failures-per-minute", "10000", "--push-allow-http-for-tests",
        ).redirectErrorStream(true).redirectOutput(File(data, "serve.log")).start()
        Runtime.getRuntime().addShutdownHook(Thread {
            process.destroy()
            process.waitFor(5, TimeUnit.SECONDS)
        })
        val inviteFile = File(data, "first-invite.txt")
        val deadline = System.currentTimeMillis() + 60_000
        while (!(inviteFile.exists() && inviteFile.readText().isNotBlank() && healthy())) {
            check(process.isAlive) { "ruang serve exited: " + File(data, "serve.log").readText() }
            check(System.currentTimeMillis() < deadline) { "ruang serve did not start" }
            Thread.sleep(100)
        }
        firstInvite = inviteFile.readText().trim()
        admin = client()
        admin.signup(firstInvite, "admin", "Ruang Admin")
    }

    private fun healthy(): Boolean = try {
        (URL("$url/healthz").openConnection() as HttpURLConnection).let { it.connectTimeout = 500; it.responseCode == 200 }
    } catch (e: Exception) {
        false
    }

    fun client(): RuangClient = RuangClient(
        ClientConfig(
            serverUrl = url,
            dataDir = Files.createTempDirectory(tmp.toPath(), "client").toString(),
            userAgent = "ruang-robolectric-helper",
            persistSession = false,
        ),
    )

    @Synchronized
    fun invite(): String = admin.createInvite().code

    /** A unique handle for this run. */
    @Synchronized
    fun handle(base: String): String = "${base}_${++counter}"

    /** Another participant, played by the core's Rust client in this JVM. */
    fun person(base: String, name: String): Person {
        val c = client()
        val p = c.signup(invite(), handle(base), name)
        return Person(c, p, c.sessionToken()!!)
    }

    /** Runs a `ruang` CLI verb against the server; returns stdout (fails on a non-zero exit). */
    fun cli(vararg args: String, token: String? = null): String {
        val cmd = listOf(bin) + args.toList() + listOf("--server", url) + (token?.let { listOf("--token", it) } ?: emptyList())
        val p = ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.PIPE).start()
        val out = p.inputStream.bufferedReader().readText()
        val err = p.errorStream.bufferedReader().readText()
        check(p.waitFor(60, TimeUnit.SECONDS)) { "ruang ${args.joinToString(" ")} hung" }
        check(p.exitValue() == 0) { "ruang ${args.joinToString(" ")} failed: $err" }
        return out.trim()
    }

    /** Starts a `ruang` CLI process (a bot); stopped by [Bot.close]. */
    fun bot(vararg args: String, token: String): Bot {
        val log = File.createTempFile("bot", ".log", tmp)
        val cmd = listOf(bin) + args.toList() + listOf("--server", url, "--token", token)
        return Bot(ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log).start(), log)
    }
}

class Bot(val process: Process, val log: File) : AutoCloseable {
    fun waitExit(timeoutMs: Long): Int {
        check(process.waitFor(timeoutMs, TimeUnit.MILLISECONDS)) { "bot still running: ${log.readText()}" }
        return process.exitValue()
    }

    override fun close() {
        if (process.isAlive) {
            process.destroy()
            process.waitFor(5, TimeUnit.SECONDS)
        }
    }
}

/** A participant played by the Rust client in this JVM. */
class Person(val client: RuangClient, val profile: Profile, val token: String) {
    val id: String get() = profile.id
    var room: Room? = null
    val states = Recorder()

    fun join(roomId: String, linkToken: String? = null): Room {
        val r = client.joinRoom(roomId, linkToken, states)
        room = r
        states.await("$id joined") { it.me != null }
        return r
    }

    fun speak(wav: File) {
        room!!.startAudio(AudioConfig(micWav = wav.path, recordWav = null, capture = true))
    }

    fun leave() {
        room?.let {
            runCatching { it.stopAudio() }
            runCatching { it.leaveQuietly() }
            it.close()
        }
        room = null
    }
}

/** Collects a helper's room states and waits for one that matches (polling with a deadline). */
class Recorder : RoomListener {
    @Volatile var latest: RoomViewState? = null

    override fun onState(state: RoomViewState) {
        latest = state
    }

    fun await(what: String, timeoutMs: Long = 20_000, pred: (RoomViewState) -> Boolean): RoomViewState {
        val deadline = System.currentTimeMillis() + timeoutMs
        while (true) {
            latest?.let { if (pred(it)) return it }
            if (System.currentTimeMillis() > deadline) error("timed out waiting for: $what (last state: $latest)")
            Thread.sleep(30)
        }
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
    val f = File.createTempFile("speech", ".wav", File(System.getProperty("ruang.tmp") ?: System.getProperty("java.io.tmpdir")))
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
