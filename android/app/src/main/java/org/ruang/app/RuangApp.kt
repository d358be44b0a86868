package org.ruang.app

import android.app.Application
import android.content.Context
import android.content.Intent
import android.content.SharedPreferences
import android.content.pm.PackageManager
import android.os.Build
import android.os.Handler
import android.os.Looper
import org.ruang.app.presenter.DeepLinks
import org.ruang.core.ClientConfig
import org.ruang.core.Profile
import org.ruang.core.RuangClient
import org.ruang.core.RuangException
import org.ruang.core.newDeviceIdentity
import java.io.File
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/**
 * Holds the core client, the session and the current room for the whole process. Core calls
 * block, so they all run on one background thread ([executor]); results come back to the main
 * thread through [main].
 */
class RuangApp : Application() {
    val executor: ExecutorService = Executors.newSingleThreadExecutor { r ->
        Thread(r, "ruang-core").apply { isDaemon = true }
    }
    val main = Handler(Looper.getMainLooper())

    lateinit var tokens: TokenStore
        private set
    lateinit var identities: IdentityStore
        private set

    /** The core's native library failed to load (this build lacks it for this phone). */
    var coreMissing = false
        private set
    lateinit var settings: SharedPreferences
        private set
    lateinit var rooms: RoomController
        private set

    /** Created and used on [executor] only. */
    private var client: RuangClient? = null

    /** The signed-in profile (main thread). */
    var profile: Profile? = null
        private set

    override fun onCreate() {
        super.onCreate()
        tokens = KeystoreTokenStore(this)
        identities = KeystoreIdentityStore(this)
        settings = getSharedPreferences("settings", Context.MODE_PRIVATE)
        rooms = RoomController(this)
    }

    /** Replaces the token store (tests: Robolectric has no AndroidKeyStore). */
    fun installTokenStore(store: TokenStore) {
        tokens = store
    }

    /** Replaces the device identity store (tests: Robolectric has no AndroidKeyStore). */
    fun installIdentityStore(store: IdentityStore) {
        identities = store
    }

    /** The client and account [useDeviceIdentity] last handed an identity to (core thread). */
    private var identityOn: Pair<RuangClient, String>? = null

    /** This device's identity fingerprint for the signed-in account (null before a room needed it). */
    @Volatile var deviceFingerprint: String? = null
        private set

    /**
     * Core thread: gives the client this device's identity for encrypted rooms, for [userId]:
     * the kept one, else a new one, kept encrypted by [identities]. If it cannot be kept (no
     * Keystore), it still serves this process.
     */
    fun useDeviceIdentity(c: RuangClient, userId: String) {
        if (identityOn?.let { it.first === c && it.second == userId } == true) return
        val kept = runCatching { identities.load(userId) }.getOrNull()
        deviceFingerprint = kept?.let { runCatching { c.setDeviceIdentity(it) }.getOrNull() }
            ?: newDeviceIdentity().let { fresh ->
                runCatching { identities.save(userId, fresh) }
                c.setDeviceIdentity(fresh)
            }
        identityOn = c to userId
    }

    /** From the manifest meta-data set by the build (ruang.serverUrl). */
    @Suppress("DEPRECATION")
    val defaultServerUrl: String
        get() = try {
            packageManager.getApplicationInfo(packageName, PackageManager.GET_META_DATA)
                .metaData?.getString(META_SERVER_URL)
        } catch (e: PackageManager.NameNotFoundException) {
            null
        } ?: "https://ruang.example"

    var serverUrl: String
        get() = settings.getString(KEY_SERVER_URL, null) ?: defaultServerUrl
        set(value) {
            val url = value.trim().trimEnd('/')
            if (url == serverUrl) return
            settings.edit().putString(KEY_SERVER_URL, url).apply()
            profile = null
            executor.execute {
                client?.close()
                client = null
            }
        }

    val publicHost: String? get() = DeepLinks.hostOf(serverUrl)

    /** Runs [work] with the client on the core thread; [done] gets the result on the main thread. */
    fun <T> background(work: (RuangClient) -> T, done: (Result<T>) -> Unit) {
        val url = serverUrl
        executor.execute {
            val result = try {
                Result.success(work(clientFor(url)))
            } catch (e: Throwable) {
                // LinkageErrors too: a missing core library shows up as UnsatisfiedLinkError
                // once, then as NoClassDefFoundError on every later call.
                Result.failure(e)
            }
            main.post {
                if (isCoreMissing(result.exceptionOrNull())) onCoreMissing() else done(result)
            }
        }
    }

    /** One screen says it, whatever asked the core first. */
    private fun onCoreMissing() {
        if (coreMissing) return
        coreMissing = true
        startActivity(
            Intent(this, MissingCoreActivity::class.java)
                .addFlags(Intent.FLAG_ACTIVITY_NEW_TASK or Intent.FLAG_ACTIVITY_CLEAR_TASK)
        )
    }

    private fun clientFor(url: String): RuangClient {
        client?.let { return it }
        val config = ClientConfig(
            serverUrl = url,
            dataDir = File(filesDir, "core").path,
            userAgent = "Ruang-Android/0.1 (Android ${Build.VERSION.RELEASE}; API ${Build.VERSION.SDK_INT})",
            // The token is kept by TokenStore, encrypted with a Keystore key.
            persistSession = false,
        )
        return RuangClient(config).also { client = it }
    }

    /** Signs in with the stored token once per process; fails with Unauthorized without one. */
    fun restoreSession(done: (Result<Profile>) -> Unit) {
        profile?.let {
            done(Result.success(it))
            return
        }
        background({ c ->
            val token = tokens.load() ?: throw RuangException.Unauthorized("not signed in")
            c.restoreSession(token)
        }) { r ->
            r.onSuccess { profile = it }
            if (r.exceptionOrNull() is RuangException.Unauthorized) tokens.clear()
            done(r)
        }
    }

    fun signUp(invite: String, handle: String, name: String, done: (Result<Profile>) -> Unit) {
        background({ c ->
            val p = c.signup(invite, handle, name)
            c.sessionToken()?.let { tokens.save(it) }
            p
        }) { r ->
            r.onSuccess { profile = it }
            done(r)
        }
    }

    fun signOut(done: () -> Unit) {
        rooms.leave(quietly = true) {}
        profile = null
        // This phone's pushes belong to the account: the server forgets the endpoint, and the
        // next sign-in registers it again (for whoever signs in).
        val endpoint = UnifiedPush.endpoint(this)
        UnifiedPush.forgetSent(this)
        background({ c ->
            endpoint?.let { e -> runCatching { c.removePushEndpoint(e) } }
            tokens.clear()
            runCatching { c.logout() }
        }) { done() }
    }

    companion object {
        const val META_SERVER_URL = "org.ruang.DEFAULT_SERVER_URL"
        const val KEY_SERVER_URL = "server_url"
        const val KEY_ASKED_NOTIFICATIONS = "asked_notifications"
    }
}

val Context.ruang: RuangApp get() = applicationContext as RuangApp
