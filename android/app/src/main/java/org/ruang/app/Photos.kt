package org.ruang.app

import android.content.Context
import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.os.Handler
import android.os.Looper
import android.util.LruCache
import org.ruang.app.presenter.Avatars
import java.io.ByteArrayOutputStream
import java.io.File
import java.net.HttpURLConnection
import java.net.URL
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/**
 * Profile photos: a memory LRU (a few MB of decoded bitmaps) over a disk cache under
 * cacheDir/avatars, filled from the server off the main thread (two loader threads). URLs are
 * content-hashed (a new photo has a new URL), so nothing is ever revalidated or stale; the
 * system may clear cacheDir whenever it likes. A photo that cannot be had (network, a
 * server error, bytes that do not decode) gives null and the initials stay.
 */
object Photos {
    private const val MAX_BYTES = 1 shl 20
    private const val RETRY_AFTER_MS = 60_000L

    private val memory = object : LruCache<String, Bitmap>(maxOf(4 shl 20, (Runtime.getRuntime().maxMemory() / 32).toInt())) {
        override fun sizeOf(key: String, value: Bitmap): Int = value.byteCount
    }
    private val waiting = HashMap<String, MutableList<(Bitmap?) -> Unit>>()
    /** URLs that failed lately: not asked again for a minute. */
    private val failed = HashMap<String, Long>()
    private val main = Handler(Looper.getMainLooper())
    private val loaders: ExecutorService = Executors.newFixedThreadPool(2) { r ->
        Thread(r, "ruang-photos").apply { isDaemon = true; priority = Thread.NORM_PRIORITY - 1 }
    }

    /** Counters for tests: photos fetched from the network and read from disk. */
    @Volatile var fetched = 0
        private set
    @Volatile var fromDisk = 0
        private set

    /** The photo if it is in memory now (main thread; never blocks). */
    fun cached(url: String): Bitmap? = memory.get(url)

    /** Gets [url]'s photo; [done] runs on the main thread (at once when in memory). */
    fun load(context: Context, url: String, done: (Bitmap?) -> Unit) {
        memory.get(url)?.let { return done(it) }
        val name = Avatars.cacheName(url) ?: return done(null)
        synchronized(this) {
            failed[url]?.let { t -> if (System.currentTimeMillis() - t < RETRY_AFTER_MS) return done(null) }
            waiting[url]?.let { it += done; return }
            waiting[url] = mutableListOf(done)
        }
        val dir = File(context.applicationContext.cacheDir, "avatars")
        loaders.execute {
            val bmp = try {
                read(dir, name, url)
            } catch (e: Throwable) {
                null
            }
            val callbacks = synchronized(this) {
                if (bmp == null) failed[url] = System.currentTimeMillis() else failed.remove(url)
                waiting.remove(url).orEmpty()
            }
            main.post {
                bmp?.let { memory.put(url, it) }
                for (c in callbacks) c(bmp)
            }
        }
    }

    /** Forgets the memory cache and the failures (tests; a low-memory callback). */
    fun clearMemory() {
        memory.evictAll()
        synchronized(this) { failed.clear() }
    }

    private fun read(dir: File, name: String, url: String): Bitmap? {
        val file = File(dir, name)
        if (file.isFile) {
            BitmapFactory.decodeFile(file.path)?.let { fromDisk++; return it }
            file.delete()
        }
        val bytes = fetch(url) ?: return null
        val bmp = BitmapFactory.decodeByteArray(bytes, 0, bytes.size) ?: return null
        fetched++
        dir.mkdirs()
        val tmp = File(dir, "$name.${Thread.currentThread().id}.tmp")
        runCatching {
            tmp.writeBytes(bytes)
            if (!tmp.renameTo(file)) tmp.delete()
        }.onFailure { tmp.delete() }
        return bmp
    }

    private fun fetch(url: String): ByteArray? {
        val c = URL(url).openConnection() as HttpURLConnection
        try {
            c.connectTimeout = 10_000
            c.readTimeout = 15_000
            c.instanceFollowRedirects = false
            if (c.responseCode != 200) return null
            val out = ByteArrayOutputStream()
            val buf = ByteArray(16 * 1024)
            c.inputStream.use { input ->
                while (true) {
                    val n = input.read(buf)
                    if (n < 0) break
                    out.write(buf, 0, n)
                    if (out.size() > MAX_BYTES) return null
                }
            }
            return out.toByteArray()
        } finally {
            c.disconnect()
        }
    }
}
