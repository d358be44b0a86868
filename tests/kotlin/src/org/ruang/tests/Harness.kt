package org.ruang.tests

import org.ruang.core.ClientConfig
import org.ruang.core.RoomListener
import org.ruang.core.RoomViewState
import org.ruang.core.RuangClient
import java.io.File
import java.net.HttpURLConnection
import java.net.ServerSocket
import java.net.URL
import java.nio.file.Files
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit

/** A real `ruang serve` on a free port with a fresh data directory. */
class TestServer : AutoCloseable {
    val port: Int = ServerSocket(0).use { it.localPort }
    val url = "http://127.0.0.1:$port"
    private val data: File = Files.createTempDirectory("ruang-kt").toFile()
    private val process: Process
    val adminInvite: String

    init {
        val bin = System.getenv("RUANG_BIN") ?: error("set RUANG_BIN to the ruang binary")
        process = ProcessBuilder(bin, "serve", "--addr", "127.0.0.1:$port", "--data", data.path)
            .redirectErrorStream(true)
            .start()
        val out = process.inputStream.bufferedReader()
        var code: String? = null
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30)
        while (code == null && System.nanoTime() < deadline) {
            val line = out.readLine() ?: break
            if (line.startsWith("Admin invite code:")) code = line.substringAfter(": ").trim()
        }
        adminInvite = code ?: error("the server did not print its admin invite")
        // Keep draining the output so the server never blocks on a full pipe.
        Thread {
            try {
                out.forEachLine { }
            } catch (_: java.io.IOException) {
                // The server was stopped.
            }
        }.apply { isDaemon = true }.start()
        waitHealthy()
    }

    private fun waitHealthy() {
        repeat(100) {
            try {
                val c = URL("$url/healthz").openConnection() as HttpURLConnection
                if (c.responseCode == 200) return
            } catch (_: Exception) {
            }
            Thread.sleep(100)
        }
        error("server not healthy")
    }

    fun client(): RuangClient = RuangClient(
        ClientConfig(
            serverUrl = url,
            dataDir = Files.createTempDirectory("ruang-client").toString(),
            userAgent = "ruang-kotlin-tests",
            persistSession = true,
        ),
    )

    override fun close() {
        process.destroy()
        process.waitFor(10, TimeUnit.SECONDS)
        data.deleteRecursively()
    }
}

/** Collects every state a room listener is given, and waits for one that matches. */
class StateRecorder : RoomListener {
    val states = LinkedBlockingQueue<RoomViewState>()
    @Volatile var latest: RoomViewState? = null
    @Volatile var threads = mutableSetOf<String>()

    override fun onState(state: RoomViewState) {
        synchronized(this) { threads.add(Thread.currentThread().name) }
        latest = state
        states.put(state)
    }

    fun await(what: String, timeoutMs: Long = 10_000, pred: (RoomViewState) -> Boolean): RoomViewState {
        latest?.let { if (pred(it)) return it }
        val deadline = System.currentTimeMillis() + timeoutMs
        while (true) {
            val left = deadline - System.currentTimeMillis()
            if (left <= 0) error("timed out waiting for: $what (last state: $latest)")
            val s = states.poll(left, TimeUnit.MILLISECONDS) ?: continue
            if (pred(s)) return s
        }
    }
}
