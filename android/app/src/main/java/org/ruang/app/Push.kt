package org.ruang.app

import android.app.Notification
import android.app.NotificationChannel
import android.app.NotificationManager
import android.app.PendingIntent
import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import android.content.SharedPreferences
import android.net.Uri
import org.json.JSONObject
import org.ruang.app.presenter.DeepLink
import org.ruang.app.presenter.PushModel
import org.ruang.app.presenter.PushPresenter
import org.ruang.app.presenter.WebPush
import java.security.SecureRandom
import java.util.Base64

/**
 * UnifiedPush, the connector side, in the app's own code (no AndroidX, no library): the
 * Android broadcast protocol of https://unifiedpush.org/developers/spec/android/.
 *
 * - [register] sends `org.unifiedpush.android.distributor.REGISTER` to the distributor the
 *   user has (ntfy and others), with a random `token` that names this registration, our
 *   `application` id and the BYTES_MESSAGE feature (our pushes are binary: encrypted).
 * - The distributor answers [UnifiedPushReceiver] with `NEW_ENDPOINT` (the URL the server
 *   must POST to), then delivers `MESSAGE`s; `UNREGISTERED` and `REGISTRATION_FAILED` end it.
 * - The endpoint goes to the server with the app's own RFC 8291 keys
 *   (`POST /v1/push/subscriptions`), so the server encrypts each push (aes128gcm, Web Push)
 *   and the distributor carries only ciphertext. The app decrypts ([WebPush]) and shows it.
 *
 * The keys (a P-256 pair and a 16-byte auth secret) live in app-private preferences: the
 * Android Keystore can only do ECDH from API 31, and minSdk is 26.
 */
object UnifiedPush {
    const val ACTION_REGISTER = "org.unifiedpush.android.distributor.REGISTER"
    const val ACTION_UNREGISTER = "org.unifiedpush.android.distributor.UNREGISTER"
    const val ACTION_MESSAGE_ACK = "org.unifiedpush.android.distributor.MESSAGE_ACK"
    const val ACTION_NEW_ENDPOINT = "org.unifiedpush.android.connector.NEW_ENDPOINT"
    const val ACTION_MESSAGE = "org.unifiedpush.android.connector.MESSAGE"
    const val ACTION_UNREGISTERED = "org.unifiedpush.android.connector.UNREGISTERED"
    const val ACTION_REGISTRATION_FAILED = "org.unifiedpush.android.connector.REGISTRATION_FAILED"
    const val EXTRA_TOKEN = "token"
    const val EXTRA_APPLICATION = "application"
    const val EXTRA_MESSAGE = "message"
    const val EXTRA_BYTES_MESSAGE = "bytesMessage"
    const val EXTRA_ENDPOINT = "endpoint"
    const val EXTRA_FEATURES = "features"
    const val EXTRA_ID = "id"
    const val FEATURE_BYTES_MESSAGE = "org.unifiedpush.android.distributor.feature.BYTES_MESSAGE"

    const val CHANNEL = "social"
    private const val PREFS = "unifiedpush"
    private const val K_TOKEN = "token"
    private const val K_DISTRIBUTOR = "distributor"
    private const val K_ENDPOINT = "endpoint"
    private const val K_SENT = "sent_to_server"
    private const val K_PRIVATE = "private_pkcs8"
    private const val K_PUBLIC = "public"
    private const val K_AUTH = "auth"

    private val b64 = Base64.getUrlEncoder().withoutPadding()

    fun prefs(c: Context): SharedPreferences = c.applicationContext.getSharedPreferences(PREFS, Context.MODE_PRIVATE)

    /** Package names of the installed distributors (apps that take REGISTER), ours excluded. */
    fun distributors(c: Context): List<String> =
        c.packageManager.queryBroadcastReceivers(Intent(ACTION_REGISTER), 0)
            .mapNotNull { it.activityInfo?.packageName }
            .filter { it != c.packageName }
            .distinct()

    /** The registration's token (random, made once; a distributor must echo it). */
    fun token(c: Context): String {
        val p = prefs(c)
        p.getString(K_TOKEN, null)?.let { return it }
        val t = ByteArray(24).also { SecureRandom().nextBytes(it) }.let(b64::encodeToString)
        p.edit().putString(K_TOKEN, t).commit()
        return t
    }

    /** This install's receiving keys, made on first use. */
    fun keys(c: Context): WebPush.Keys {
        val p = prefs(c)
        val d = Base64.getUrlDecoder()
        runCatching {
            val priv = p.getString(K_PRIVATE, null)
            val pub = p.getString(K_PUBLIC, null)
            val auth = p.getString(K_AUTH, null)
            if (priv != null && pub != null && auth != null) return WebPush.keysFrom(d.decode(priv), d.decode(pub), d.decode(auth))
        }
        val k = WebPush.newKeys()
        p.edit().putString(K_PRIVATE, b64.encodeToString(k.privateEncoded)).putString(K_PUBLIC, k.p256dh)
            .putString(K_AUTH, k.authB64).commit()
        return k
    }

    fun endpoint(c: Context): String? = prefs(c).getString(K_ENDPOINT, null)

    /** Signed out: the endpoint must be given to the server again at the next sign-in. */
    fun forgetSent(c: Context) {
        prefs(c).edit().putBoolean(K_SENT, false).apply()
        registeredThisProcess = false
    }

    /**
     * Registers with the user's distributor: the one used before if still installed, else the
     * only one, else the first (a chooser is for later). Returns the distributor, or null when
     * there is none (push then simply stays off; the feed still works).
     */
    fun register(c: Context): String? {
        val all = distributors(c)
        val saved = prefs(c).getString(K_DISTRIBUTOR, null)
        val chosen = saved?.takeIf { it in all } ?: all.firstOrNull() ?: return null
        keys(c)
        prefs(c).edit().putString(K_DISTRIBUTOR, chosen).apply()
        c.sendBroadcast(
            Intent(ACTION_REGISTER).setPackage(chosen)
                .putExtra(EXTRA_TOKEN, token(c))
                .putExtra(EXTRA_APPLICATION, c.packageName)
                .putExtra(EXTRA_MESSAGE, "Ruang: live rooms and people you follow")
                .putStringArrayListExtra(EXTRA_FEATURES, arrayListOf(FEATURE_BYTES_MESSAGE))
        )
        return chosen
    }

    /** Registers once per process after sign-in, and sends a known endpoint again if the server lacks it. */
    @Volatile var registeredThisProcess = false
    fun ensure(app: RuangApp) {
        if (registeredThisProcess) return
        registeredThisProcess = true
        register(app)
        if (endpoint(app) != null && !prefs(app).getBoolean(K_SENT, false)) sendEndpoint(app) {}
    }

    /** Gives the endpoint and our keys to the server (when signed in); [done] on the main thread. */
    fun sendEndpoint(app: RuangApp, done: (Result<Unit>) -> Unit) {
        val endpoint = endpoint(app) ?: return done(Result.failure(IllegalStateException("no endpoint")))
        val k = keys(app)
        signedIn(app, { it.addPushEndpoint(endpoint, k.p256dh, k.authB64) }) { r ->
            if (r.isSuccess) prefs(app).edit().putBoolean(K_SENT, true).apply()
            done(r)
        }
    }

    /** Runs [work] signed in (a broadcast may wake a process that has not restored its session). */
    private fun signedIn(app: RuangApp, work: (org.ruang.core.RuangClient) -> Unit, done: (Result<Unit>) -> Unit) {
        app.restoreSession { r ->
            if (r.isFailure) done(Result.failure(r.exceptionOrNull()!!)) else app.background(work, done)
        }
    }

    internal fun onNewEndpoint(app: RuangApp, endpoint: String, done: () -> Unit) {
        val old = endpoint(app)
        prefs(app).edit().putString(K_ENDPOINT, endpoint).putBoolean(K_SENT, false).commit()
        sendEndpoint(app) { r ->
            // The distributor moved us: the old endpoint is dead, tell the server.
            if (r.isSuccess && old != null && old != endpoint) {
                signedIn(app, { it.removePushEndpoint(old) }) { done() }
            } else {
                done()
            }
        }
    }

    internal fun onUnregistered(app: RuangApp, done: () -> Unit) {
        val old = endpoint(app)
        prefs(app).edit().remove(K_ENDPOINT).remove(K_DISTRIBUTOR).putBoolean(K_SENT, false).commit()
        if (old == null) return done()
        signedIn(app, { it.removePushEndpoint(old) }) { done() }
    }

    /**
     * A push body: decrypted with our keys, parsed (the server's Notification JSON), shown.
     * Returns what was posted, or null for anything that is not a valid push for us.
     */
    fun onMessage(app: RuangApp, body: ByteArray): PushModel? {
        val plain = try {
            WebPush.decrypt(body, keys(app))
        } catch (e: Exception) {
            return null
        }
        val json = try {
            JSONObject(String(plain, Charsets.UTF_8))
        } catch (e: Exception) {
            return null
        }
        val model = PushPresenter.present(
            id = json.optString("id"),
            kind = json.optString("kind"),
            text = json.optString("text"),
            link = json.optString("link"),
            publicHost = app.publicHost,
        ) ?: return null
        post(app, model)
        return model
    }

    /** What a tap on a push opens. */
    fun intentFor(c: Context, m: PushModel): Intent {
        val cls = when (m.target) {
            is DeepLink.Room -> RoomActivity::class.java
            is DeepLink.Event -> EventActivity::class.java
            is DeepLink.Profile -> ProfileActivity::class.java
            else -> return Intent(c, HallwayActivity::class.java).addFlags(Intent.FLAG_ACTIVITY_NEW_TASK)
        }
        return Intent(Intent.ACTION_VIEW, Uri.parse(m.link)).setClass(c, cls).addFlags(Intent.FLAG_ACTIVITY_NEW_TASK)
    }

    fun post(c: Context, m: PushModel) {
        val nm = c.getSystemService(Context.NOTIFICATION_SERVICE) as NotificationManager
        nm.createNotificationChannel(
            NotificationChannel(CHANNEL, "Rooms and people", NotificationManager.IMPORTANCE_DEFAULT).apply {
                description = "Rooms starting, scheduled rooms, new followers, invitations to speak"
            }
        )
        val open = PendingIntent.getActivity(
            c, m.tag.hashCode(), intentFor(c, m),
            PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_UPDATE_CURRENT,
        )
        val n = Notification.Builder(c, CHANNEL)
            .setSmallIcon(android.R.drawable.stat_notify_chat)
            .setContentTitle(m.title)
            .setContentText(m.text)
            .setStyle(Notification.BigTextStyle().bigText(m.text))
            .setContentIntent(open)
            .setAutoCancel(true)
            .setCategory(Notification.CATEGORY_SOCIAL)
            .build()
        // One per server notification: a redelivery replaces it.
        nm.notify(m.tag, 0, n)
    }
}

/**
 * The manifest-declared receiver of the distributor's broadcasts. Exported (distributors are
 * other apps), so it trusts nothing: a broadcast without our registration's token is dropped,
 * and a message must decrypt with this install's keys (AES-GCM authenticates it).
 */
class UnifiedPushReceiver : BroadcastReceiver() {
    override fun onReceive(context: Context, intent: Intent) {
        val app = context.applicationContext as? RuangApp ?: return
        val token = runCatching { intent.getStringExtra(UnifiedPush.EXTRA_TOKEN) }.getOrNull()
        if (token == null || token != UnifiedPush.prefs(app).getString("token", null)) return
        when (intent.action) {
            UnifiedPush.ACTION_NEW_ENDPOINT -> {
                val endpoint = intent.getStringExtra(UnifiedPush.EXTRA_ENDPOINT)?.trim()
                if (endpoint.isNullOrEmpty() || endpoint.length > 1000) return
                val pending: PendingResult? = goAsync()
                UnifiedPush.onNewEndpoint(app, endpoint) { pending?.finish() }
            }
            UnifiedPush.ACTION_MESSAGE -> {
                val body = runCatching { intent.getByteArrayExtra(UnifiedPush.EXTRA_BYTES_MESSAGE) }.getOrNull() ?: return
                if (body.size > 8192) return
                UnifiedPush.onMessage(app, body)
                intent.getStringExtra(UnifiedPush.EXTRA_ID)?.let { id ->
                    val distributor = UnifiedPush.prefs(app).getString("distributor", null) ?: return@let
                    app.sendBroadcast(
                        Intent(UnifiedPush.ACTION_MESSAGE_ACK).setPackage(distributor)
                            .putExtra(UnifiedPush.EXTRA_TOKEN, token).putExtra(UnifiedPush.EXTRA_ID, id)
                    )
                }
            }
            UnifiedPush.ACTION_UNREGISTERED -> {
                val pending: PendingResult? = goAsync()
                UnifiedPush.onUnregistered(app) { pending?.finish() }
            }
            UnifiedPush.ACTION_REGISTRATION_FAILED -> {
                UnifiedPush.prefs(app).edit().remove("distributor").apply()
            }
        }
    }
}
