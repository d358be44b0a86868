package org.ruang.app

import android.Manifest
import android.content.Intent
import android.content.pm.PackageManager
import org.ruang.app.presenter.DeepLinks
import org.ruang.core.AudioConfig
import org.ruang.core.ChatListener
import org.ruang.core.ChatViewState
import org.ruang.core.ReactionBurstView
import org.ruang.core.ConnectionStatus
import org.ruang.core.E2eeInfo
import org.ruang.core.E2eeListener
import org.ruang.core.Role
import org.ruang.core.Room
import org.ruang.core.RoomListener
import org.ruang.core.RoomViewState

/**
 * The room you are in, shared by RoomActivity and RoomService (which outlive each other).
 * Everything here runs on the main thread; core calls go to the app's executor.
 */
class RoomController(private val app: RuangApp) {
    fun interface Observer {
        fun onRoomState(state: RoomViewState)
    }

    // ----- reactions and chat -----

    /** Receives the room's chat (current first, then changes) and each reaction burst. */
    interface ChatObserver {
        fun onChat(chat: ChatViewState)
        fun onReactions(bursts: List<ReactionBurstView>)
    }

    /** The latest chat of the current room (null before the first). */
    var chat: ChatViewState? = null
        private set
    private val chatObservers = LinkedHashSet<ChatObserver>()

    fun observeChat(o: ChatObserver) {
        chatObservers.add(o)
        chat?.let { o.onChat(it) }
    }

    fun unobserveChat(o: ChatObserver) {
        chatObservers.remove(o)
    }

    private fun listenChat(joined: Room, gen: Int) {
        val listener = object : ChatListener {
            // Called on a core thread: hop to the main thread.
            override fun onChat(chat: ChatViewState) {
                app.main.post {
                    if (gen == generation) {
                        this@RoomController.chat = chat
                        for (o in chatObservers.toList()) o.onChat(chat)
                    }
                }
            }

            override fun onReactions(bursts: List<ReactionBurstView>) {
                app.main.post { if (gen == generation) for (o in chatObservers.toList()) o.onReactions(bursts) }
            }
        }
        app.executor.execute { runCatching { joined.setChatListener(listener) } }
    }

    // ----- end-to-end encryption -----

    /** The room's encryption status (null before the first; `encrypted` false in a plain room). */
    var e2ee: E2eeInfo? = null
        private set
    private val e2eeObservers = LinkedHashSet<(E2eeInfo) -> Unit>()

    /** Gets the current status at once (when known), then every change, on the main thread. */
    fun observeE2ee(o: (E2eeInfo) -> Unit) {
        e2eeObservers.add(o)
        e2ee?.let { o(it) }
    }

    fun unobserveE2ee(o: (E2eeInfo) -> Unit) {
        e2eeObservers.remove(o)
    }

    private fun listenE2ee(joined: Room, gen: Int) {
        val listener = object : E2eeListener {
            // Called on a core thread: hop to the main thread.
            override fun onE2ee(info: E2eeInfo) {
                app.main.post {
                    if (gen == generation) {
                        e2ee = info
                        for (o in e2eeObservers.toList()) o(info)
                    }
                }
            }
        }
        app.executor.execute { runCatching { joined.setE2eeListener(listener) } }
    }

    var room: Room? = null
        private set
    var roomId: String? = null
        private set
    var linkToken: String? = null
        private set
    /** The link to share for this room. */
    var shareLink: String? = null
        private set
    /** The latest state from the core. */
    var state: RoomViewState? = null
        private set

    /**
     * The audio device configuration for the room: the platform device (Oboe on Android).
     * Tests on the JVM, where the core has no platform device, point it at a WAV file played
     * as the microphone (the core's virtual device); the rest of the path stays the real one.
     */
    var audioConfig: (capture: Boolean) -> AudioConfig = { capture ->
        AudioConfig(micWav = null, recordWav = null, capture = capture)
    }

    /** Why audio last failed to start (null when it runs or was never started). */
    var audioError: String? = null
        private set

    private val observers = LinkedHashSet<Observer>()
    /** Bumped on every join/leave so callbacks of an older room are dropped. */
    private var generation = 0
    /** Whether audio runs with the microphone open; null = not started. */
    private var capture: Boolean? = null

    fun observe(o: Observer) {
        observers.add(o)
    }

    fun unobserve(o: Observer) {
        observers.remove(o)
    }

    fun join(id: String, token: String?, link: String?, done: (Result<Unit>) -> Unit) {
        val gen = ++generation
        roomId = id
        linkToken = token
        shareLink = link ?: DeepLinks.roomLink(app.serverUrl, id, token)
        state = null
        capture = null
        e2ee = null
        // Encrypted rooms: the core keys audio with this device's identity for the account.
        val user = app.profile?.id
        val listener = object : RoomListener {
            // Called on a core thread: hop to the main thread.
            override fun onState(state: RoomViewState) {
                app.main.post { if (gen == generation) publish(state) }
            }
        }
        app.background({ c ->
            user?.let { app.useDeviceIdentity(c, it) }
            c.joinRoom(id, token, listener)
        }) { r ->
            r.onSuccess { joined ->
                if (gen != generation) {
                    // Left (or switched) while joining.
                    app.executor.execute {
                        runCatching { joined.leaveQuietly() }
                        joined.close()
                    }
                    return@onSuccess
                }
                room = joined
                listenChat(joined, gen)
                listenE2ee(joined, gen)
                app.startForegroundService(Intent(app, RoomService::class.java).setAction(RoomService.ACTION_START))
                state?.let { updateAudio(it) }
            }
            r.onFailure {
                if (gen == generation) {
                    roomId = null
                    state = null
                }
            }
            done(r.map { })
        }
    }

    private fun publish(s: RoomViewState) {
        state = s
        if (s.connection is ConnectionStatus.Ended) {
            release()
        } else {
            updateAudio(s)
        }
        for (o in observers.toList()) o.onRoomState(s)
    }

    fun micGranted(): Boolean =
        app.checkSelfPermission(Manifest.permission.RECORD_AUDIO) == PackageManager.PERMISSION_GRANTED

    /** Starts audio, or restarts it when the microphone should open or close (stage changes). */
    fun updateAudio(s: RoomViewState? = state) {
        val r = room ?: return
        if (s == null || s.connection is ConnectionStatus.Ended) return
        val onStage = s.me?.role?.let { it != Role.LISTENER } ?: false
        val want = onStage && micGranted()
        if (capture == want) return
        capture = want
        val config = audioConfig(want)
        app.executor.execute {
            val error = runCatching { r.startAudio(config) }.exceptionOrNull()
            app.main.post { audioError = error?.let { errorText(it) } }
        }
    }

    fun setVolume(volume: Float) {
        val r = room ?: return
        app.executor.execute { r.setOutputVolume(volume) }
    }

    /** Runs a room command on the core thread; errors come back to [done] on the main thread. */
    fun command(work: (Room) -> Unit, done: (Result<Unit>) -> Unit = {}) {
        val r = room ?: return done(Result.failure(IllegalStateException("not in a room")))
        app.background({ work(r) }, done)
    }

    /** Runs a room query on the core thread; the result comes back to [done] on the main thread. */
    fun <T> query(work: (Room) -> T, done: (Result<T>) -> Unit) {
        val r = room ?: return done(Result.failure(IllegalStateException("not in a room")))
        app.background({ work(r) }, done)
    }

    /** Forgets the current room and everything about it; returns it for closing. */
    private fun forget(): Room? {
        val r = room
        generation++
        room = null
        roomId = null
        linkToken = null
        shareLink = null
        state = null
        capture = null
        chat = null
        e2ee = null
        return r
    }

    fun leave(quietly: Boolean, done: () -> Unit) {
        val r = forget()
        app.stopService(Intent(app, RoomService::class.java))
        if (r == null) {
            done()
            return
        }
        app.executor.execute {
            runCatching { r.stopAudio() }
            runCatching { if (quietly) r.leaveQuietly() else r.leave() }
            r.close()
            app.main.post(done)
        }
    }

    /**
     * Drops the room without telling the server, as a killed process does: the server keeps
     * the seat and the role for its rejoin grace, and the next join (from the saved room id)
     * gets them back. Used to simulate process death on the JVM.
     */
    fun abandon() {
        val r = forget()
        if (r != null) {
            app.executor.execute {
                runCatching { r.stopAudio() }
                r.close()
            }
        }
    }

    /** The room ended for us (ended, removed, replaced): free it but keep the last state to show. */
    private fun release() {
        val r = room ?: return
        room = null
        roomId = null
        capture = null
        app.executor.execute {
            runCatching { r.stopAudio() }
            r.close()
        }
    }
}
