package org.ruang.app

import android.app.Notification
import android.app.NotificationChannel
import android.app.NotificationManager
import android.app.PendingIntent
import android.app.Service
import android.content.Context
import android.content.Intent
import android.graphics.drawable.Icon
import android.media.AudioAttributes
import android.media.AudioFocusRequest
import android.media.AudioManager
import android.media.MediaMetadata
import android.media.session.MediaSession
import android.media.session.PlaybackState
import android.net.ConnectivityManager
import android.net.LinkProperties
import android.net.Network
import android.os.IBinder
import org.ruang.app.presenter.AudioFocusPolicy
import org.ruang.app.presenter.MuteAction
import org.ruang.app.presenter.NetworkSwitchPolicy
import org.ruang.app.presenter.NotificationContent
import org.ruang.app.presenter.NotificationModel
import org.ruang.core.ConnectionStatus
import org.ruang.core.Role
import org.ruang.core.RoomViewState

/**
 * Keeps the room alive with the screen off. Foreground service of type mediaPlayback while
 * listening; the microphone type is added only while on stage. Shows the ongoing notification
 * (room title, who is speaking, Mute/Unmute on stage, Leave; a tap opens the room), runs a
 * MediaSession for lock screen / headset / Bluetooth buttons, and handles audio focus.
 */
class RoomService : Service() {
    private val app get() = application as RuangApp
    private lateinit var audio: AudioManager
    private lateinit var notifications: NotificationManager
    private var session: MediaSession? = null
    /** The playback state last given to the media session (PlaybackState.STATE_*). */
    var playbackState: Int = PlaybackState.STATE_NONE
        private set

    /** The media session (lock screen, headset and Bluetooth buttons); null once destroyed. */
    val mediaSession: MediaSession? get() = session

    private var foreground = false
    private var micInForeground = false
    private var focusRequest: AudioFocusRequest? = null
    private var focusForStage: Boolean? = null
    private var focus = AudioFocusPolicy.State()
    /** Playback paused from the lock screen / headset (listeners). */
    private var pausedByUser = false

    private val observer = RoomController.Observer { render(it) }

    private var connectivity: ConnectivityManager? = null
    private val networkSwitch = NetworkSwitchPolicy()
    /** Tells the core when the phone moves to another network (a new address): it reconnects
     *  and moves audio to a new transport without leaving the room. Runs on a binder thread;
     *  the core call runs on the core thread. */
    private val networkCallback = object : ConnectivityManager.NetworkCallback() {
        override fun onAvailable(network: Network) {
            val switched = synchronized(networkSwitch) { networkSwitch.onAvailable(network.toString()) }
            if (switched) app.rooms.command({ it.networkChanged() })
        }

        override fun onLinkPropertiesChanged(network: Network, lp: LinkProperties) {
            val addresses = lp.linkAddresses.map { it.address.hostAddress ?: "" }.toSet()
            val switched = synchronized(networkSwitch) {
                networkSwitch.onAddresses(network.toString(), addresses)
            }
            if (switched) app.rooms.command({ it.networkChanged() })
        }
    }

    override fun onBind(intent: Intent?): IBinder? = null

    override fun onCreate() {
        super.onCreate()
        audio = getSystemService(Context.AUDIO_SERVICE) as AudioManager
        notifications = getSystemService(Context.NOTIFICATION_SERVICE) as NotificationManager
        notifications.createNotificationChannel(
            NotificationChannel(CHANNEL, "Live room", NotificationManager.IMPORTANCE_LOW).apply {
                description = "The room you are listening to"
                setShowBadge(false)
            }
        )
        session = MediaSession(this, "Ruang").apply {
            setCallback(object : MediaSession.Callback() {
                override fun onPlay() = resumeOrUnmute()
                override fun onPause() = pauseOrMute()
                override fun onStop() = leave()
            })
            isActive = true
        }
        app.rooms.observe(observer)
        connectivity = (getSystemService(Context.CONNECTIVITY_SERVICE) as? ConnectivityManager)?.also {
            runCatching { it.registerDefaultNetworkCallback(networkCallback) }
        }
    }

    override fun onStartCommand(intent: Intent?, flags: Int, startId: Int): Int {
        val state = app.rooms.state
        // Always go foreground first: the service was started with startForegroundService.
        goForeground(state)
        when (intent?.action) {
            ACTION_MUTE -> app.rooms.command({ it.setMuted(true) })
            ACTION_UNMUTE -> app.rooms.command({ it.setMuted(false) })
            ACTION_LEAVE -> {
                leave()
                return START_NOT_STICKY
            }
        }
        if (app.rooms.roomId == null) {
            stopSelfNow()
            return START_NOT_STICKY
        }
        state?.let { render(it) }
        return START_NOT_STICKY
    }

    override fun onDestroy() {
        app.rooms.unobserve(observer)
        connectivity?.let { runCatching { it.unregisterNetworkCallback(networkCallback) } }
        connectivity = null
        abandonFocus()
        session?.release()
        session = null
        super.onDestroy()
    }

    private fun render(s: RoomViewState) {
        if (s.connection is ConnectionStatus.Ended) {
            stopSelfNow()
            return
        }
        val model = NotificationContent.from(s)
        requestFocus(model.onStage)
        session?.setMetadata(
            MediaMetadata.Builder()
                .putString(MediaMetadata.METADATA_KEY_TITLE, model.title)
                .putString(MediaMetadata.METADATA_KEY_ARTIST, model.text)
                .build()
        )
        updatePlaybackState()
        val wantMic = model.onStage && app.rooms.micGranted()
        if (!foreground || wantMic != micInForeground) {
            goForeground(s)
        } else {
            notifications.notify(NOTIFICATION_ID, build(model))
        }
    }

    private fun goForeground(s: RoomViewState?) {
        val model = s?.let { NotificationContent.from(it) } ?: NotificationModel(
            title = "Ruang",
            text = "Joining the room…",
            muteAction = null,
            leaveLabel = "Leave",
            onStage = false,
        )
        val wantMic = model.onStage && app.rooms.micGranted()
        val n = build(model)
        try {
            Compat.startForeground(this, NOTIFICATION_ID, n, microphone = wantMic)
            micInForeground = wantMic
        } catch (e: RuntimeException) {
            // The microphone type is refused when the app is not visible (Android 14): keep
            // playing as media; the next visible moment adds it.
            Compat.startForeground(this, NOTIFICATION_ID, n, microphone = false)
            micInForeground = false
        }
        foreground = true
    }

    private fun build(m: NotificationModel): Notification {
        val roomId = app.rooms.roomId
        val open = PendingIntent.getActivity(
            this, 0,
            Intent(this, RoomActivity::class.java)
                .putExtra(RoomActivity.EXTRA_ROOM_ID, roomId)
                .addFlags(Intent.FLAG_ACTIVITY_SINGLE_TOP),
            PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_UPDATE_CURRENT,
        )
        val builder = Notification.Builder(this, CHANNEL)
            .setSmallIcon(android.R.drawable.ic_btn_speak_now)
            .setContentTitle(m.title)
            .setContentText(m.text)
            .setContentIntent(open)
            .setOngoing(true)
            .setOnlyAlertOnce(true)
            .setShowWhen(false)
            .setCategory(Notification.CATEGORY_SERVICE)
            .setVisibility(Notification.VISIBILITY_PUBLIC)
        var actions = 0
        m.muteAction?.let { a ->
            val (action, icon) = when (a) {
                MuteAction.MUTE -> ACTION_MUTE to android.R.drawable.ic_lock_silent_mode
                MuteAction.UNMUTE -> ACTION_UNMUTE to android.R.drawable.ic_btn_speak_now
            }
            builder.addAction(action(action, icon, a.label))
            actions++
        }
        builder.addAction(action(ACTION_LEAVE, android.R.drawable.ic_menu_close_clear_cancel, m.leaveLabel))
        actions++
        val style = Notification.MediaStyle().setShowActionsInCompactView(*IntArray(actions) { it })
        session?.let { style.setMediaSession(it.sessionToken) }
        builder.setStyle(style)
        return Compat.showImmediately(builder).build()
    }

    private fun action(action: String, icon: Int, label: String): Notification.Action {
        val pi = PendingIntent.getService(
            this, action.hashCode(),
            Intent(this, RoomService::class.java).setAction(action),
            PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_UPDATE_CURRENT,
        )
        return Notification.Action.Builder(Icon.createWithResource(this, icon), label, pi).build()
    }

    // ---- audio focus and routing ---------------------------------------------------------

    /** Listeners play as media; speakers as voice communication on the chosen headset. */
    private fun requestFocus(onStage: Boolean) {
        if (focusForStage == onStage) return
        focusRequest?.let { audio.abandonAudioFocusRequest(it) }
        val attributes = AudioAttributes.Builder()
            .setUsage(if (onStage) AudioAttributes.USAGE_VOICE_COMMUNICATION else AudioAttributes.USAGE_MEDIA)
            .setContentType(AudioAttributes.CONTENT_TYPE_SPEECH)
            .build()
        val request = AudioFocusRequest.Builder(AudioManager.AUDIOFOCUS_GAIN)
            .setAudioAttributes(attributes)
            .setWillPauseWhenDucked(false)
            .setOnAudioFocusChangeListener({ onFocusChange(it) }, app.main)
            .build()
        focusRequest = request
        focusForStage = onStage
        audio.requestAudioFocus(request)
        try {
            if (onStage) {
                audio.mode = AudioManager.MODE_IN_COMMUNICATION
                Compat.routeForStage(audio)
            } else {
                Compat.clearStageRoute(audio)
                audio.mode = AudioManager.MODE_NORMAL
            }
        } catch (e: SecurityException) {
            // BLUETOOTH_CONNECT not granted: stay on the default route.
        }
    }

    private fun abandonFocus() {
        focusRequest?.let { audio.abandonAudioFocusRequest(it) }
        focusRequest = null
        if (focusForStage == true) {
            runCatching { Compat.clearStageRoute(audio) }
            audio.mode = AudioManager.MODE_NORMAL
        }
        focusForStage = null
    }

    private fun onFocusChange(value: Int) {
        val change = AudioFocusPolicy.fromPlatform(value) ?: return
        val me = app.rooms.state?.me
        val onStage = me != null && me.role != Role.LISTENER
        val effect = AudioFocusPolicy.onChange(change, focus, onStage, me?.muted ?: true)
        focus = effect.state
        effect.volume?.let { if (!pausedByUser || it == 0f) app.rooms.setVolume(it) }
        effect.mute?.let { m -> app.rooms.command({ it.setMuted(m) }) }
        updatePlaybackState()
    }

    // ---- media buttons -------------------------------------------------------------------

    private fun onStage(): Boolean = app.rooms.state?.me?.let { it.role != Role.LISTENER } ?: false

    /** Play / headset button: listeners resume playback; speakers unmute. */
    private fun resumeOrUnmute() {
        if (onStage()) {
            app.rooms.command({ it.setMuted(false) })
        } else {
            pausedByUser = false
            app.rooms.setVolume(1f)
        }
        updatePlaybackState()
    }

    /** Pause / headset button: listeners pause playback (the room goes on); speakers mute. */
    private fun pauseOrMute() {
        if (onStage()) {
            app.rooms.command({ it.setMuted(true) })
        } else {
            pausedByUser = true
            app.rooms.setVolume(0f)
        }
        updatePlaybackState()
    }

    private fun updatePlaybackState() {
        val me = app.rooms.state?.me
        val playing = if (me != null && me.role != Role.LISTENER) !me.muted else !pausedByUser && !focus.paused
        playbackState = if (playing) PlaybackState.STATE_PLAYING else PlaybackState.STATE_PAUSED
        session?.setPlaybackState(
            PlaybackState.Builder()
                .setActions(
                    PlaybackState.ACTION_PLAY or PlaybackState.ACTION_PAUSE or
                        PlaybackState.ACTION_PLAY_PAUSE or PlaybackState.ACTION_STOP
                )
                .setState(playbackState, 0L, 1f)
                .build()
        )
    }

    private fun leave() {
        app.rooms.leave(quietly = false) {}
        stopSelfNow()
    }

    private fun stopSelfNow() {
        stopForeground(STOP_FOREGROUND_REMOVE)
        foreground = false
        stopSelf()
    }

    companion object {
        const val CHANNEL = "room"
        const val NOTIFICATION_ID = 1
        const val ACTION_START = "org.ruang.app.action.START"
        const val ACTION_REFRESH = "org.ruang.app.action.REFRESH"
        const val ACTION_MUTE = "org.ruang.app.action.MUTE"
        const val ACTION_UNMUTE = "org.ruang.app.action.UNMUTE"
        const val ACTION_LEAVE = "org.ruang.app.action.LEAVE"

        /** Re-evaluates the service types (e.g. the microphone was just granted), app visible. */
        fun refresh(context: Context) {
            context.startService(Intent(context, RoomService::class.java).setAction(ACTION_REFRESH))
        }
    }
}
