package org.ruang.app

import android.app.Activity
import android.app.Dialog
import android.content.Context
import android.content.Intent
import android.media.AudioAttributes
import android.media.MediaPlayer
import android.media.PlaybackParams
import android.os.Build
import android.os.Bundle
import android.os.Handler
import android.os.Looper
import android.view.Gravity
import android.view.View
import android.widget.Button
import android.widget.LinearLayout
import android.widget.SeekBar
import android.widget.TextView
import org.ruang.app.presenter.ReplayPresenter
import org.ruang.app.presenter.ReplayScreen
import org.ruang.core.ReplayView
import org.ruang.core.RuangException

/**
 * A recorded room's replay: title, date and length, a seek bar with "12:05 / 45:30", play and
 * pause, 1× / 1.5× / 2×, the speaker timeline (tap a speaker to jump there) and the chat at
 * its offsets; the host can delete it. Plays the server's Ogg Opus file with MediaPlayer,
 * streamed over HTTP(S) (Android 10+ plays Ogg Opus; older phones get a plain message and the
 * web page). Paused in onStop: listening in the background is for live rooms.
 */
class ReplayActivity : Activity() {
    private lateinit var column: LinearLayout
    private var roomId = ""
    private var linkToken: String? = null

    /** What the screen shows (tests). */
    var replay: ReplayView? = null
        private set
    var screen: ReplayScreen? = null
        private set
    /** The player, once the replay loaded (tests look at its data source). */
    var player: MediaPlayer? = null
        private set
    var prepared = false
        private set
    /** The speed chosen; applied to the player while it plays. */
    var speed = 1f
        private set
    var deleteDialog: Dialog? = null
        private set
    /** Set when the phone could not play the file. */
    var playError: String? = null
        private set

    private var playing = false
    private var positionMs = 0L
    private var seeking = false
    private lateinit var positionView: TextView
    private lateinit var seekBar: SeekBar
    private lateinit var playButton: Button
    private lateinit var speedButton: Button
    private val timelineViews = ArrayList<TextView>()
    private lateinit var chatBox: LinearLayout
    private var shownChat = -1
    private var shownChapter: Int? = -1
    private val ticker = Handler(Looper.getMainLooper())
    private val tick = object : Runnable {
        override fun run() {
            val p = player
            if (p != null && prepared && !seeking) positionMs = p.currentPosition.toLong()
            update()
            if (playing) ticker.postDelayed(this, TICK_MS)
        }
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        column = scaffold("Replay")
        roomId = intent.getStringExtra(EXTRA_ROOM_ID) ?: ""
        linkToken = intent.getStringExtra(EXTRA_LINK_TOKEN)
        positionMs = savedInstanceState?.getLong(STATE_POSITION) ?: 0L
        speed = savedInstanceState?.getFloat(STATE_SPEED) ?: 1f
        if (roomId.isEmpty()) {
            column.addView(statusLine("That link doesn't lead to a replay."), matchWrap())
            return
        }
        column.addView(statusLine("Loading…"), matchWrap())
        ruang.restoreSession { s ->
            s.onFailure { e ->
                if (e is RuangException.Unauthorized) {
                    startActivity(Intent(this, WelcomeActivity::class.java)); finish()
                } else {
                    showError(e)
                }
            }
            s.onSuccess { load(0) }
        }
    }

    /**
     * Fetches the replay. Opened as the room ended, the server answers `replay_not_ready`
     * (a Server error) while it mixes: the screen says so and asks again every second.
     */
    private fun load(attempt: Int) {
        ruang.background({ it.replay(roomId, linkToken) }) { r ->
            if (isFinishing || isDestroyed) return@background
            r.onSuccess { render(it) }
            r.onFailure { e ->
                val waiting = intent.getBooleanExtra(EXTRA_PREPARING, false) &&
                    e is RuangException.Server && attempt < PREPARING_TRIES
                if (waiting) {
                    if (attempt == 0) {
                        column.removeAllViews()
                        column.addView(statusLine("Preparing the replay…"), matchWrap())
                    }
                    ruang.main.postDelayed({ if (!isDestroyed) load(attempt + 1) }, PREPARING_EVERY_MS)
                } else {
                    showError(e)
                }
            }
        }
    }

    override fun onSaveInstanceState(outState: Bundle) {
        super.onSaveInstanceState(outState)
        outState.putLong(STATE_POSITION, positionMs)
        outState.putFloat(STATE_SPEED, speed)
    }

    override fun onStop() {
        // No background listening for replays: pause when the screen goes away.
        if (playing) pause()
        super.onStop()
    }

    override fun onDestroy() {
        ticker.removeCallbacks(tick)
        player?.release()
        player = null
        deleteDialog?.dismiss()
        super.onDestroy()
    }

    private fun showError(e: Throwable) {
        column.removeAllViews()
        val text = if (e is RuangException.NotFound) "This replay isn't there any more." else errorText(e)
        column.addView(statusLine(text), matchWrap())
    }

    private fun render(r: ReplayView) {
        replay = r
        val s = ReplayPresenter.present(r, ruang.profile?.id)
        screen = s
        val c = colors
        column.removeAllViews()
        column.addView(label(s.title, TypeScale.HEADLINE, bold = true, color = c.onSurface).apply { setPadding(0, dp(Space.S), 0, 0) }, matchWrap())
        column.addView(label(s.subtitle, TypeScale.BODY, color = c.onSurfaceVariant).apply { setPadding(0, dp(Space.XS), 0, dp(Space.M)) }, matchWrap())

        val playerCard = card(Space.L)
        seekBar = SeekBar(this).apply {
            max = SEEK_STEPS
            contentDescription = "Position in the replay"
            setOnSeekBarChangeListener(object : SeekBar.OnSeekBarChangeListener {
                override fun onProgressChanged(bar: SeekBar, progress: Int, fromUser: Boolean) {
                    if (fromUser) {
                        positionMs = ReplayPresenter.positionOf(progress, s.durationMs, SEEK_STEPS)
                        update()
                    }
                }
                override fun onStartTrackingTouch(bar: SeekBar) { seeking = true }
                override fun onStopTrackingTouch(bar: SeekBar) { seeking = false; seekTo(positionMs) }
            })
        }
        playerCard.addView(seekBar, matchWrap())
        positionView = label("", TypeScale.BODY, color = c.onSurfaceVariant).apply { gravity = Gravity.END; setPadding(0, dp(Space.XS), dp(Space.S), 0) }
        playerCard.addView(positionView, matchWrap())
        val controls = horizontal().apply { gravity = Gravity.CENTER_VERTICAL; setPadding(0, dp(Space.S), 0, 0) }
        playButton = button("▶  Play", ButtonStyle.FILLED, large = true) { if (playing) pause() else play() }
        controls.addView(playButton, wrap())
        controls.addView(View(this), LinearLayout.LayoutParams(0, 0, 1f))
        speedButton = button(ReplayPresenter.speedLabel(speed), ButtonStyle.TONAL, large = true) { cycleSpeed() }
        controls.addView(speedButton, wrap())
        playerCard.addView(controls, matchWrap())
        column.addView(playerCard, matchWrap())

        timelineViews.clear()
        if (s.timeline.isNotEmpty()) {
            column.addView(sectionTitle("Speakers"), matchWrap())
            for (row in s.timeline) {
                val v = label("${row.startLabel}   ${row.name}", TypeScale.BODY_LARGE, color = c.onSurface).apply {
                    minHeight = dp(48)
                    gravity = Gravity.CENTER_VERTICAL
                    setPadding(dp(Space.M), 0, dp(Space.M), 0)
                    background = ripple(null, 12, c.onSurface)
                    isClickable = true
                    contentDescription = "${row.name} from ${row.startLabel}: play from here"
                    setOnClickListener { seekTo(row.startMs); if (!playing) play() }
                }
                timelineViews += v
                column.addView(v, matchWrap())
            }
        }
        chatBox = vertical()
        if (s.chat.isNotEmpty()) {
            column.addView(sectionTitle("Chat"), matchWrap())
            column.addView(chatBox, matchWrap())
        }
        if (s.canDelete) {
            column.addView(button("Delete replay", ButtonStyle.DANGER) { confirmDelete() }, wrap().margins(this, t = Space.XL))
        }
        shownChat = -1
        shownChapter = -1
        startPlayer(r.audioUrl)
        update()
    }

    private fun startPlayer(url: String) {
        val p = MediaPlayer()
        player = p
        prepared = false
        try {
            p.setAudioAttributes(AudioAttributes.Builder().setUsage(AudioAttributes.USAGE_MEDIA).setContentType(AudioAttributes.CONTENT_TYPE_SPEECH).build())
            p.setOnPreparedListener {
                prepared = true
                if (positionMs > 0) p.seekTo(positionMs.toInt())
                update()
            }
            p.setOnCompletionListener {
                playing = false
                positionMs = screen?.durationMs ?: positionMs
                update()
            }
            p.setOnErrorListener { _, _, _ -> cannotPlay(); true }
            p.setDataSource(url)
            p.prepareAsync()
        } catch (e: Exception) {
            cannotPlay()
        }
    }

    private fun cannotPlay() {
        playing = false
        prepared = false
        val text = ReplayPresenter.cannotPlay(Build.VERSION.SDK_INT)
        playError = text
        playButton.isEnabled = false
        speedButton.isEnabled = false
        val link = replay?.link
        dialog("Can't play the replay", text, positive = if (link != null) "Open in the browser" else "OK", negative = if (link != null) "Close" else null) {
            link?.let { openWeb(it) }
        }
        update()
    }

    fun play() {
        val p = player ?: return
        if (!prepared) return toast("Still loading the audio…")
        p.start()
        playing = true
        applySpeed()
        ticker.removeCallbacks(tick)
        ticker.post(tick)
        update()
    }

    fun pause() {
        val p = player
        if (p != null && prepared) {
            p.pause()
            positionMs = p.currentPosition.toLong()
        }
        playing = false
        update()
    }

    fun seekTo(ms: Long) {
        positionMs = ms.coerceIn(0, screen?.durationMs ?: ms)
        val p = player
        if (p != null && prepared) p.seekTo(positionMs.toInt())
        update()
    }

    private fun cycleSpeed() {
        speed = ReplayPresenter.nextSpeed(speed)
        speedButton.text = ReplayPresenter.speedLabel(speed)
        speedButton.contentDescription = "Speed ${ReplayPresenter.speedLabel(speed)}"
        applySpeed()
    }

    /** Speed goes to the player only while it plays (a non-zero speed starts a paused player). */
    private fun applySpeed() {
        val p = player ?: return
        if (!playing || !prepared) return
        try {
            p.playbackParams = PlaybackParams().setSpeed(speed)
        } catch (e: Exception) {
            toast("This phone can't change the speed")
        }
    }

    private fun confirmDelete() {
        deleteDialog = dialog(ReplayPresenter.DELETE_TITLE, ReplayPresenter.DELETE_MESSAGE, "Delete", negative = "Cancel") {
            ruang.background({ it.deleteReplay(roomId) }) { r ->
                r.onSuccess { toast("Replay deleted"); finish() }
                r.onFailure { e -> toast(errorText(e)) }
            }
        }
    }

    private fun update() {
        val s = screen ?: return
        positionView.text = ReplayPresenter.position(positionMs, s.durationMs)
        if (!seeking) seekBar.progress = ReplayPresenter.progress(positionMs, s.durationMs, SEEK_STEPS)
        playButton.text = if (playing) "❚❚  Pause" else "▶  Play"
        playButton.contentDescription = if (playing) "Pause" else "Play"
        speedButton.contentDescription = "Speed ${ReplayPresenter.speedLabel(speed)}"
        val chapter = replay?.let { ReplayPresenter.chapterAt(it.chapters, positionMs) }
        if (chapter != shownChapter) {
            shownChapter = chapter
            val c = colors
            for ((i, v) in timelineViews.withIndex()) {
                val current = i == chapter
                v.setTextColor(if (current) c.primary else c.onSurface)
                v.typeface = if (current) MEDIUM else android.graphics.Typeface.DEFAULT
                v.isSelected = current
            }
        }
        val said = ReplayPresenter.chatUpTo(s.chat, positionMs)
        if (said.size != shownChat) {
            shownChat = said.size
            chatBox.removeAllViews()
            val c = colors
            if (said.isEmpty()) {
                chatBox.addView(label("Messages appear here as the replay reaches them.", TypeScale.BODY, color = c.onSurfaceVariant), matchWrap())
            }
            for (m in said) {
                chatBox.addView(label("${m.offsetLabel}  ${m.author}: ${m.text}", TypeScale.BODY, color = c.onSurface).apply {
                    setPadding(dp(Space.S), dp(Space.XS), dp(Space.S), dp(Space.XS))
                    tag = m.id
                }, matchWrap())
            }
        }
    }

    /** The speaker timeline's rows (tests tap them). */
    fun timelineRow(index: Int): TextView = timelineViews[index]

    companion object {
        const val EXTRA_ROOM_ID = "org.ruang.app.REPLAY_ROOM_ID"
        const val EXTRA_LINK_TOKEN = "org.ruang.app.REPLAY_LINK_TOKEN"
        private const val STATE_POSITION = "position"
        private const val STATE_SPEED = "speed"
        private const val SEEK_STEPS = 1000
        private const val TICK_MS = 250L

        const val EXTRA_PREPARING = "org.ruang.app.REPLAY_PREPARING"
        /** How long the screen waits for a replay that is being mixed (the room just ended). */
        private const val PREPARING_TRIES = 90
        private const val PREPARING_EVERY_MS = 1000L

        /** [preparing]: the room has just ended, so "not ready yet" means wait, not fail. */
        fun open(context: Context, roomId: String, linkToken: String?, preparing: Boolean = false): Intent =
            Intent(context, ReplayActivity::class.java)
                .putExtra(EXTRA_ROOM_ID, roomId)
                .putExtra(EXTRA_LINK_TOKEN, linkToken)
                .putExtra(EXTRA_PREPARING, preparing)
    }
}
