package org.ruang.app.robo

import android.app.NotificationManager
import android.content.ComponentName
import android.content.Context
import android.content.Intent
import android.content.IntentFilter
import android.content.pm.ActivityInfo
import android.content.pm.ApplicationInfo
import android.content.pm.PackageInfo
import com.sun.net.httpserver.HttpServer
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertTrue
import org.junit.Test
import org.robolectric.Robolectric
import org.robolectric.Shadows.shadowOf
import org.ruang.app.HallwayActivity
import org.ruang.app.ProfileActivity
import org.ruang.app.RoomActivity
import org.ruang.app.UnifiedPush
import org.ruang.core.RoomKind
import java.net.HttpURLConnection
import java.net.InetSocketAddress
import java.net.URL
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit

/**
 * UnifiedPush end to end: the app registers with a distributor (a fake one installed in the
 * test's package manager), the distributor's endpoint (an HTTP server in this test, on
 * loopback: the test server runs with --push-allow-http-for-tests) reaches the real server,
 * the real server encrypts real notifications to it, and the bodies it POSTs are handed to
 * the app's receiver as the distributor would; the app decrypts them and posts notifications
 * that open the person or the room.
 */
class PushTest : LiveTest() {
    private val distributor = "org.example.distributor"

    private fun installDistributor() {
        val pm = shadowOf(app.packageManager)
        pm.installPackage(PackageInfo().apply {
            packageName = distributor
            applicationInfo = ApplicationInfo().apply { packageName = distributor }
        })
        val receiver = ComponentName(distributor, "$distributor.RegisterReceiver")
        pm.addOrUpdateReceiver(ActivityInfo().apply {
            packageName = distributor
            name = receiver.className
            applicationInfo = ApplicationInfo().apply { packageName = distributor }
            exported = true
        })
        pm.addIntentFilterForReceiver(receiver, IntentFilter(UnifiedPush.ACTION_REGISTER))
    }

    /** The distributor's push server: records what the Ruang server POSTs. */
    private class Endpoint : AutoCloseable {
        val bodies = LinkedBlockingQueue<Pair<Map<String, String>, ByteArray>>()
        private val server = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0).apply {
            createContext("/up/") { ex ->
                val headers = ex.requestHeaders.entries.associate { it.key.lowercase() to it.value.joinToString(",") }
                bodies.add(headers to ex.requestBody.readBytes())
                ex.sendResponseHeaders(201, -1)
                ex.close()
            }
            start()
        }
        val url = "http://127.0.0.1:${server.address.port}/up/app-${System.nanoTime()}"
        fun next(): Pair<Map<String, String>, ByteArray> =
            bodies.poll(30, TimeUnit.SECONDS) ?: error("the server pushed nothing to the endpoint")
        override fun close() = server.stop(0)
    }

    private fun serverEndpoints(token: String): String {
        val c = URL("${Live.url}/v1/push/subscriptions").openConnection() as HttpURLConnection
        c.setRequestProperty("Authorization", "Bearer $token")
        return c.inputStream.bufferedReader().readText()
    }

    private fun deliver(action: String, extras: Intent.() -> Unit) {
        app.sendBroadcast(Intent(action).setPackage(app.packageName).apply(extras))
        idle()
    }

    private fun notifications() = shadowOf(app.getSystemService(Context.NOTIFICATION_SERVICE) as NotificationManager).allNotifications

    @Test
    fun `registers, sends the endpoint, decrypts pushes, notifications open the person and the room`() {
        UnifiedPush.prefs(app).edit().clear().commit()
        UnifiedPush.registeredThisProcess = false
        installDistributor()
        val me = signIn("wulan", "Wulan")
        val token = MemoryTokens.token!!
        Endpoint().use { endpoint ->
            // The hallway registers with the distributor once signed in.
            val h = launch(HallwayActivity::class.java).get()
            h.waitText("Hallway")
            val register = waitFor("REGISTER sent to the distributor") {
                shadowOf(app).broadcastIntents.lastOrNull { it.action == UnifiedPush.ACTION_REGISTER }
            }
            assertEquals(distributor, register.`package`)
            assertEquals(app.packageName, register.getStringExtra(UnifiedPush.EXTRA_APPLICATION))
            assertTrue(register.getStringArrayListExtra(UnifiedPush.EXTRA_FEATURES)!!.contains(UnifiedPush.FEATURE_BYTES_MESSAGE))
            val upToken = register.getStringExtra(UnifiedPush.EXTRA_TOKEN)!!
            assertTrue(upToken.length >= 16)

            // A NEW_ENDPOINT with another token (another app, a forgery) is ignored.
            deliver(UnifiedPush.ACTION_NEW_ENDPOINT) {
                putExtra(UnifiedPush.EXTRA_TOKEN, "not-ours"); putExtra(UnifiedPush.EXTRA_ENDPOINT, "http://127.0.0.1:9/evil")
            }
            // The distributor's answer: the endpoint goes to the server with the app's keys.
            deliver(UnifiedPush.ACTION_NEW_ENDPOINT) {
                putExtra(UnifiedPush.EXTRA_TOKEN, upToken); putExtra(UnifiedPush.EXTRA_ENDPOINT, endpoint.url)
            }
            waitUntil("the server has the endpoint") { serverEndpoints(token).contains(endpoint.url) }
            assertFalse(serverEndpoints(token).contains("evil"))

            // Someone follows Wulan: the server pushes "followed you", encrypted.
            val fan = person("fan", "Citra Lestari")
            fan.client.follow(me.handle)
            val (headers, body) = endpoint.next()
            assertEquals("aes128gcm", headers["content-encoding"])
            assertTrue(headers["authorization"]!!.startsWith("vapid t="))
            assertFalse("ciphertext only", String(body, Charsets.ISO_8859_1).contains("followed"))
            deliver(UnifiedPush.ACTION_MESSAGE) {
                putExtra(UnifiedPush.EXTRA_TOKEN, upToken); putExtra(UnifiedPush.EXTRA_BYTES_MESSAGE, body); putExtra(UnifiedPush.EXTRA_ID, "m1")
            }
            val followed = waitFor("the follow notification") { notifications().firstOrNull { it.extras.getCharSequence("android.title")?.toString() == "New follower" } }
            assertEquals("Citra Lestari followed you", followed.extras.getCharSequence("android.text").toString())
            val open = shadowOf(followed.contentIntent).savedIntent
            assertEquals(ProfileActivity::class.java.name, open.component!!.className)
            assertEquals("ruang://u/${fan.profile.handle}", open.dataString)
            val ack = shadowOf(app).broadcastIntents.last { it.action == UnifiedPush.ACTION_MESSAGE_ACK }
            assertEquals(distributor, ack.`package`)
            assertEquals("m1", ack.getStringExtra(UnifiedPush.EXTRA_ID))
            // The tap: the profile of who followed.
            val p = track(Robolectric.buildActivity(ProfileActivity::class.java, open).setup())
            p.get().waitText("Citra Lestari")

            // Forged, tampered and foreign messages post nothing.
            val before = notifications().size
            val tampered = body.copyOf().also { it[it.size - 5] = (it[it.size - 5].toInt() xor 0x40).toByte() }
            for (bad in listOf(tampered, ByteArray(0), ByteArray(100) { 1 })) {
                deliver(UnifiedPush.ACTION_MESSAGE) { putExtra(UnifiedPush.EXTRA_TOKEN, upToken); putExtra(UnifiedPush.EXTRA_BYTES_MESSAGE, bad) }
            }
            deliver(UnifiedPush.ACTION_MESSAGE) { putExtra(UnifiedPush.EXTRA_TOKEN, "not-ours"); putExtra(UnifiedPush.EXTRA_BYTES_MESSAGE, body) }
            deliver(UnifiedPush.ACTION_MESSAGE) { putExtra(UnifiedPush.EXTRA_TOKEN, upToken) }
            assertEquals(before, notifications().size)

            // Wulan follows a host who starts a room: "started a room", and a tap joins it.
            val host = person("host", "Budi Santoso")
            myFollow(host.profile.handle)
            endpoint.bodies.clear()
            val room = host.client.createRoom("Push to join", RoomKind.OPEN)
            host.join(room.id)
            var live: android.app.Notification? = null
            while (live == null) {
                val (_, b) = endpoint.next()
                deliver(UnifiedPush.ACTION_MESSAGE) { putExtra(UnifiedPush.EXTRA_TOKEN, upToken); putExtra(UnifiedPush.EXTRA_BYTES_MESSAGE, b) }
                live = notifications().firstOrNull { it.extras.getCharSequence("android.title")?.toString() == "Live now" }
            }
            assertEquals("Budi Santoso started a room", live.extras.getCharSequence("android.text").toString())
            val join = shadowOf(live.contentIntent).savedIntent
            assertEquals(RoomActivity::class.java.name, join.component!!.className)
            assertEquals("${Live.url}/r/${room.id}", join.dataString)
            val rc = track(Robolectric.buildActivity(RoomActivity::class.java, join).setup())
            rc.get().waitText("Push to join")
            host.states.await("joined from the push") { s -> s.audience.any { it.user.id == me.id } }

            // The distributor unregisters the app: the server forgets the endpoint.
            deliver(UnifiedPush.ACTION_UNREGISTERED) { putExtra(UnifiedPush.EXTRA_TOKEN, upToken) }
            waitUntil("the endpoint removed on the server") { !serverEndpoints(token).contains(endpoint.url) }
            assertNotNull(UnifiedPush.token(app))
        }
    }

    private fun myFollow(handle: String) {
        Live.client().also { it.restoreSession(MemoryTokens.token!!) }.follow(handle)
    }
}
