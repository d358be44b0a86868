package org.ruang.app

import android.app.Activity
import android.app.AlertDialog
import android.content.Context
import android.content.Intent
import android.os.Bundle
import android.view.Gravity
import android.view.MotionEvent
import android.view.View
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.RadioButton
import android.widget.RadioGroup
import android.widget.ScrollView
import android.widget.TextView
import org.ruang.app.presenter.DeepLink
import org.ruang.app.presenter.DeepLinks
import org.ruang.app.presenter.HallwayPresenter
import org.ruang.app.presenter.HallwayScreenState
import org.ruang.app.presenter.RoomCard
import org.ruang.core.HallwayListener
import org.ruang.core.HallwayWatch
import org.ruang.core.RoomKind
import org.ruang.core.RoomSummary
import org.ruang.core.RuangException

/** Live rooms as cards, refreshed live (core watch) and by pulling down or the refresh button. */
class HallwayActivity : Activity() {
    private lateinit var list: LinearLayout
    private lateinit var status: TextView
    private lateinit var currentRoom: TextView
    private var watch: HallwayWatch? = null
    /** Bumped in onStop so a late watch callback does not render into a stopped screen. */
    private var watchGeneration = 0

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val root = vertical().apply { setBackgroundColor(Palette.BACKGROUND) }

        val bar = horizontal().apply { setPadding(dp(16), dp(12), dp(8), dp(4)) }
        bar.addView(label("Hallway", 24f, bold = true), weighted())
        bar.addView(button("Refresh") { refresh() })
        bar.addView(button("⋯") { v -> menu(v) })
        root.addView(bar, matchWrap())

        currentRoom = label("", 15f, bold = true, color = Palette.ACCENT).apply {
            setPadding(dp(16), dp(8), dp(16), dp(8))
            visibility = View.GONE
            setOnClickListener { openCurrentRoom() }
        }
        root.addView(currentRoom, matchWrap())

        status = label("", 14f, color = Palette.MUTED_TEXT).apply {
            setPadding(dp(16), dp(4), dp(16), dp(4))
            gravity = Gravity.CENTER_HORIZONTAL
        }
        root.addView(status, matchWrap())

        list = vertical(12)
        val scroll = PullToRefreshScrollView(this) { refresh() }.apply { addView(list) }
        root.addView(scroll, LinearLayout.LayoutParams(LinearLayout.LayoutParams.MATCH_PARENT, 0, 1f))

        root.addView(button("＋ Start a room") { startRoomDialog() }, matchWrap().apply {
            setMargins(dp(16), dp(8), dp(16), dp(16))
        })
        setContentView(root)
    }

    override fun onStart() {
        super.onStart()
        val current = ruang.rooms.state
        if (ruang.rooms.roomId != null) {
            currentRoom.text = "▶ Back to ${current?.title?.ifBlank { null } ?: "your room"}"
            currentRoom.visibility = View.VISIBLE
        } else {
            currentRoom.visibility = View.GONE
        }
        startWatching()
    }

    override fun onStop() {
        stopWatching()
        super.onStop()
    }

    private fun startWatching() {
        val gen = ++watchGeneration
        val listener = object : HallwayListener {
            // Called on a core thread.
            override fun onHallway(rooms: List<RoomSummary>) {
                ruang.main.post { if (gen == watchGeneration) render(HallwayPresenter.present(rooms)) }
            }

            override fun onError(error: RuangException) {
                ruang.main.post { if (gen == watchGeneration) onError(error) }
            }
        }
        ruang.background({ it.watchHallway(listener, WATCH_INTERVAL_MS) }) { r ->
            r.onSuccess { w -> if (gen == watchGeneration) watch = w else stopQuietly(w) }
            r.onFailure { onError(it) }
        }
    }

    private fun stopWatching() {
        watchGeneration++
        watch?.let { stopQuietly(it) }
        watch = null
    }

    private fun stopQuietly(w: HallwayWatch) {
        ruang.executor.execute {
            w.stop()
            w.close()
        }
    }

    private fun refresh() {
        status.text = "Refreshing…"
        ruang.background({ it.hallway() }) { r ->
            r.onSuccess { render(HallwayPresenter.present(it)) }
            r.onFailure { onError(it) }
        }
    }

    private fun onError(e: Throwable) {
        if (e is RuangException.Unauthorized) {
            startActivity(Intent(this, WelcomeActivity::class.java))
            finish()
            return
        }
        status.text = errorText(e)
    }

    private fun render(s: HallwayScreenState) {
        status.text = s.emptyText ?: ""
        list.removeAllViews()
        for (card in s.cards) list.addView(cardView(card), matchWrap().apply { bottomMargin = dp(12) })
    }

    private fun cardView(c: RoomCard): View {
        val v = vertical(16).apply { background = rounded(Palette.CARD) }
        val top = horizontal()
        top.addView(label(c.title, 18f, bold = true), weighted())
        c.kindLabel?.let { top.addView(label(it, 12f, color = Palette.MUTED_TEXT)) }
        v.addView(top, matchWrap())
        if (c.speakerInitials.isNotEmpty()) {
            v.addView(label(c.speakerInitials.joinToString("  ") { "($it)" }, 14f, bold = true, color = Palette.ACCENT))
        }
        v.addView(label(c.speakersLine, 15f))
        v.addView(label(c.countsLine, 13f, color = Palette.MUTED_TEXT))
        c.followedLine?.let { v.addView(label(it, 13f, color = Palette.ACCENT)) }
        val actions = horizontal()
        actions.addView(button("Share") { share(c.link) })
        v.addView(actions)
        v.setOnClickListener { open(c) }
        return v
    }

    private fun open(c: RoomCard) {
        val token = (DeepLinks.parse(c.link) as? DeepLink.Room)?.linkToken
        startActivity(RoomActivity.open(this, c.roomId, token, c.link))
    }

    private fun openCurrentRoom() {
        val id = ruang.rooms.roomId ?: return
        startActivity(RoomActivity.open(this, id, ruang.rooms.linkToken, ruang.rooms.shareLink))
    }

    private fun share(link: String) {
        val send = Intent(Intent.ACTION_SEND).setType("text/plain").putExtra(Intent.EXTRA_TEXT, link)
        startActivity(Intent.createChooser(send, "Share room link"))
    }

    private fun startRoomDialog() {
        val box = vertical(20)
        val title = EditText(this).apply { hint = "What do you want to talk about?"; setSingleLine(true) }
        box.addView(title, matchWrap())
        val kinds = RadioGroup(this)
        val labels = listOf(
            RoomKind.OPEN to "Open — anyone can join",
            RoomKind.SOCIAL to "Social — people you follow",
            RoomKind.CLOSED to "Closed — only people with the link",
        )
        labels.forEachIndexed { i, (_, text) ->
            kinds.addView(RadioButton(this).apply { id = 100 + i; this.text = text })
        }
        kinds.check(100)
        box.addView(kinds, matchWrap())
        AlertDialog.Builder(this)
            .setTitle("Start a room")
            .setView(box)
            .setPositiveButton("Let's go") { _, _ ->
                val kind = labels.getOrNull(kinds.checkedRadioButtonId - 100)?.first ?: RoomKind.OPEN
                createRoom(title.text.toString().trim(), kind)
            }
            .setNegativeButton(android.R.string.cancel, null)
            .show()
    }

    private fun createRoom(title: String, kind: RoomKind) {
        if (title.isEmpty()) return toast("Give the room a title")
        val start = {
            status.text = "Starting the room…"
            ruang.background({ it.createRoom(title, kind) }) { r ->
                r.onSuccess { s ->
                    status.text = ""
                    val token = (DeepLinks.parse(s.link) as? DeepLink.Room)?.linkToken
                    startActivity(RoomActivity.open(this, s.id, token, s.link))
                }
                r.onFailure { onError(it) }
            }
        }
        if (ruang.rooms.roomId != null) {
            AlertDialog.Builder(this)
                .setMessage("Leave the room you are in and start a new one?")
                .setPositiveButton("Start") { _, _ -> ruang.rooms.leave(quietly = true) { start() } }
                .setNegativeButton(android.R.string.cancel, null)
                .show()
        } else {
            start()
        }
    }

    private fun menu(anchor: View) {
        val popup = android.widget.PopupMenu(this, anchor)
        popup.menu.add(0, 1, 0, "My invites")
        popup.menu.add(0, 2, 1, "Sign out")
        popup.setOnMenuItemClickListener { item ->
            when (item.itemId) {
                1 -> showInvites()
                2 -> ruang.signOut {
                    startActivity(Intent(this, WelcomeActivity::class.java))
                    finish()
                }
            }
            true
        }
        popup.show()
    }

    private fun showInvites() {
        ruang.background({ it.invites() }) { r ->
            r.onFailure { onError(it) }
            r.onSuccess { invites ->
                if (invites.isEmpty()) return@onSuccess alert("Invites", "You have no invites left.")
                AlertDialog.Builder(this)
                    .setTitle("Share an invite")
                    .setItems(invites.map { it.code }.toTypedArray()) { _, i -> share(invites[i].link) }
                    .show()
            }
        }
    }

    companion object {
        const val WATCH_INTERVAL_MS = 5000u
    }
}

/**
 * A ScrollView that calls [onRefresh] when pulled down past a threshold while at the top (the
 * framework has no SwipeRefreshLayout). It only observes touches; scrolling is unchanged.
 */
class PullToRefreshScrollView(context: Context, private val onRefresh: () -> Unit) : ScrollView(context) {
    private var startY = -1f
    private val threshold = context.dp(96)

    override fun dispatchTouchEvent(ev: MotionEvent): Boolean {
        when (ev.actionMasked) {
            MotionEvent.ACTION_DOWN -> startY = if (scrollY == 0) ev.y else -1f
            MotionEvent.ACTION_MOVE -> if (scrollY != 0) startY = -1f
            MotionEvent.ACTION_UP -> {
                if (startY >= 0f && scrollY == 0 && ev.y - startY > threshold) onRefresh()
                startY = -1f
            }
            MotionEvent.ACTION_CANCEL -> startY = -1f
        }
        return super.dispatchTouchEvent(ev)
    }
}
