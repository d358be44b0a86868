package org.ruang.app

import android.app.Activity
import android.content.Context
import android.content.Intent
import android.os.Bundle
import android.view.Gravity
import android.view.MotionEvent
import android.view.View
import android.widget.Button
import android.widget.EditText
import android.widget.FrameLayout
import android.widget.ProgressBar
import android.view.ViewGroup
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import org.ruang.app.presenter.DeepLink
import org.ruang.app.presenter.DeepLinks
import org.ruang.app.presenter.E2eePresenter
import org.ruang.app.presenter.HallwayPresenter
import org.ruang.app.presenter.HallwayScreenState
import org.ruang.app.presenter.RoomCard
import org.ruang.app.presenter.UpcomingCard
import org.ruang.app.presenter.UpcomingPresenter
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
    private lateinit var empty: LinearLayout
    private lateinit var progress: ProgressBar
    private lateinit var startButton: Button
    /** The start-a-room dialog while it shows. */
    var startDialog: android.app.Dialog? = null
        private set
    /** The start dialog's "End-to-end encrypted" switch (tests). */
    var startE2eeSwitch: android.widget.Switch? = null
        private set
    private lateinit var bellButton: Button
    private lateinit var bellBadge: TextView
    private var watch: HallwayWatch? = null
    /** Bumped in onStop so a late watch callback does not render into a stopped screen. */
    private var watchGeneration = 0
    /** The last live rooms shown, and the scheduled rooms below them ("Upcoming"). */
    private var lastRooms: HallwayScreenState? = null
    private var upcoming: List<UpcomingCard> = emptyList()

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val c = colors
        val root = vertical().apply { setBackgroundColor(c.background) }

        val bar = horizontal().apply { setPadding(dp(Space.L), dp(Space.M), dp(Space.S), dp(Space.S)) }
        val titles = vertical()
        titles.addView(label("Hallway", TypeScale.HEADLINE, bold = true, color = c.onSurface))
        titles.addView(label("Live now", TypeScale.BODY, color = c.onSurfaceVariant))
        bar.addView(titles, weighted())
        bar.addView(iconButton("🔍", "Search") { startActivity(SearchActivity.open(this)) })
        // The bell, with the unread count on it.
        val bell = FrameLayout(this)
        bellButton = iconButton("🔔", "Notifications") { startActivity(NotificationsActivity.open(this)) }
        bell.addView(bellButton, FrameLayout.LayoutParams(dp(48), dp(48)))
        bellBadge = label("", TypeScale.CAPTION, color = c.onPrimary, medium = true).apply {
            background = rounded(c.primary, 100)
            setPadding(dp(5), 0, dp(5), 0)
            gravity = Gravity.CENTER
            minWidth = dp(18)
            visibility = View.GONE
            importantForAccessibility = View.IMPORTANT_FOR_ACCESSIBILITY_NO
        }
        bell.addView(bellBadge, FrameLayout.LayoutParams(FrameLayout.LayoutParams.WRAP_CONTENT, FrameLayout.LayoutParams.WRAP_CONTENT).apply {
            gravity = Gravity.TOP or Gravity.END
            topMargin = dp(2)
        })
        bar.addView(bell, LinearLayout.LayoutParams(dp(48), dp(48)))
        bar.addView(iconButton("⟳", "Refresh") { refresh() })
        bar.addView(iconButton("⋮", "More options") { v -> menu(v) })
        root.addView(bar, matchWrap())

        currentRoom = label("", TypeScale.BODY_LARGE, color = c.onPrimaryContainer, medium = true).apply {
            background = ripple(rounded(c.primaryContainer, 16), 16, c.onPrimaryContainer)
            setPadding(dp(Space.L), dp(Space.M), dp(Space.L), dp(Space.M))
            minHeight = dp(56)
            gravity = Gravity.CENTER_VERTICAL
            visibility = View.GONE
            isClickable = true
            setOnClickListener { openCurrentRoom() }
        }
        root.addView(currentRoom, matchWrap().margins(this, l = Space.L, r = Space.L, b = Space.S))

        status = label("", TypeScale.BODY, color = c.onSurfaceVariant).apply {
            setPadding(dp(Space.L), dp(Space.XS), dp(Space.L), dp(Space.XS))
            gravity = Gravity.CENTER_HORIZONTAL
            visibility = View.GONE
        }
        root.addView(status, matchWrap())

        list = vertical().apply { setPadding(dp(Space.L), dp(Space.S), dp(Space.L), dp(96)) }
        empty = emptyState("🎙", "Looking for live rooms…", "Rooms your friends start show up here.")
        progress = ProgressBar(this).apply { isIndeterminate = true }
        list.addView(empty, matchWrap().margins(this, t = Space.XXL))
        empty.addView(progress, LinearLayout.LayoutParams(dp(40), dp(40)).apply {
            gravity = Gravity.CENTER_HORIZONTAL; topMargin = dp(Space.L)
        })
        val scroll = PullToRefreshScrollView(this) { refresh() }.apply {
            addView(list)
            isFillViewport = true
        }
        val frame = FrameLayout(this)
        frame.addView(scroll, FrameLayout.LayoutParams(FrameLayout.LayoutParams.MATCH_PARENT, FrameLayout.LayoutParams.MATCH_PARENT))
        startButton = button("＋  Start a room", ButtonStyle.FILLED, large = true) { startRoomDialog() }.apply {
            elevation = dpf(6f)
        }
        frame.addView(startButton, FrameLayout.LayoutParams(FrameLayout.LayoutParams.WRAP_CONTENT, FrameLayout.LayoutParams.WRAP_CONTENT).apply {
            gravity = Gravity.BOTTOM or Gravity.CENTER_HORIZONTAL
            bottomMargin = dp(Space.XL)
        })
        root.addView(frame, LinearLayout.LayoutParams(LinearLayout.LayoutParams.MATCH_PARENT, 0, 1f))
        setContentView(root)
    }

    override fun onStart() {
        super.onStart()
        val current = ruang.rooms.state
        if (ruang.rooms.roomId != null) {
            currentRoom.text = "▶  Back to ${current?.title?.ifBlank { null } ?: "your room"}"
            currentRoom.visibility = View.VISIBLE
        } else {
            currentRoom.visibility = View.GONE
        }
        startWatching()
        loadUpcoming()
        loadUnread()
        // Signed in: register with the user's UnifiedPush distributor (once per process).
        UnifiedPush.ensure(ruang)
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
        status.visibility = View.VISIBLE
        ruang.background({ it.hallway() }) { r ->
            r.onSuccess { render(HallwayPresenter.present(it)) }
            r.onFailure { onError(it) }
        }
        loadUpcoming()
    }

    /** How many notifications are unread: a count on the bell. */
    private fun loadUnread() {
        ruang.background({ it.notifications(null, 1u).unread }) { r ->
            val label = r.getOrNull()?.let { org.ruang.app.presenter.NotificationsPresenter.unreadLabel(it.toLong()) }
            bellBadge.text = label ?: ""
            bellBadge.visibility = if (label == null) View.GONE else View.VISIBLE
            bellButton.contentDescription = if (label == null) "Notifications" else "Notifications, $label unread"
        }
    }

    /** Scheduled rooms, followed hosts first (the server's order). */
    private fun loadUpcoming() {
        ruang.background({ it.upcomingEvents() }) { r ->
            r.onSuccess {
                upcoming = UpcomingPresenter.present(it)
                lastRooms?.let { rooms -> render(rooms) }
            }
            // The live rooms matter more; an error there is shown by the watch.
        }
    }

    private fun toggleNotify(c: UpcomingCard) {
        ruang.background({ it.notifyEvent(c.eventId, !c.notifyMe) }) { r ->
            r.onSuccess { e ->
                val updated = UpcomingPresenter.card(e)
                upcoming = upcoming.map { if (it.eventId == updated.eventId) updated else it }
                lastRooms?.let { rooms -> render(rooms) }
            }
            r.onFailure { e ->
                status.text = errorText(e)
                status.visibility = View.VISIBLE
            }
        }
    }

    private fun onError(e: Throwable) {
        if (e is RuangException.Unauthorized) {
            startActivity(Intent(this, WelcomeActivity::class.java))
            finish()
            return
        }
        status.text = errorText(e)
        status.visibility = View.VISIBLE
        if (list.childCount <= 1) {
            setEmpty("⚡", "Can't load the hallway", errorText(e), loading = false)
        }
    }

    private fun setEmpty(glyph: String, title: String, body: String, loading: Boolean) {
        list.removeAllViews()
        empty = emptyState(glyph, title, body)
        if (loading) empty.addView(progress.also { (it.parent as? ViewGroup)?.removeView(it) },
            LinearLayout.LayoutParams(dp(40), dp(40)).apply { gravity = Gravity.CENTER_HORIZONTAL; topMargin = dp(Space.L) })
        list.addView(empty, matchWrap().margins(this, t = Space.XXL))
    }

    private fun render(s: HallwayScreenState) {
        lastRooms = s
        status.text = ""
        status.visibility = View.GONE
        if (s.cards.isEmpty()) {
            setEmpty("🎙", "No live rooms right now", "Start one and your friends will see it here.", loading = false)
        } else {
            list.removeAllViews()
            for (card in s.cards) list.addView(cardView(card), matchWrap().margins(this, b = Space.M))
        }
        if (upcoming.isNotEmpty()) {
            list.addView(label("Upcoming", TypeScale.TITLE, bold = true, color = colors.onSurface).apply {
                setPadding(0, dp(Space.L), 0, dp(Space.S))
            }, matchWrap())
            for (c in upcoming) list.addView(upcomingView(c), matchWrap().margins(this, b = Space.M))
        }
    }

    private fun upcomingView(c: UpcomingCard): View {
        val col = colors
        val v = card(Space.L).apply {
            background = ripple(rounded(col.surface, 20, if (col.dark) null else col.outline), 20, col.onSurface)
            contentDescription = "${c.title}. ${c.whenLine}. ${c.hostsLine}"
            isClickable = true
            setOnClickListener { startActivity(EventActivity.open(this@HallwayActivity, c.eventId)) }
        }
        v.addView(label("🗓 ${c.whenLine}", TypeScale.CAPTION, color = col.primary, medium = true), matchWrap())
        v.addView(label(c.title, TypeScale.TITLE, color = col.onSurface).apply {
            typeface = MEDIUM
            ellipsizeEnd(2)
            setPadding(0, dp(Space.XS), 0, dp(Space.S))
        }, matchWrap())
        val people = horizontal()
        people.addView(avatar(c.host.initials, c.host.userId, 32, photoHash = c.host.avatar), LinearLayout.LayoutParams(dp(32), dp(32)))
        people.addView(label(c.hostsLine, TypeScale.BODY, color = col.onSurface).apply {
            ellipsizeEnd(1)
            setPadding(dp(Space.S), 0, 0, 0)
        }, weighted())
        v.addView(people, matchWrap())
        val bottom = horizontal().apply { setPadding(0, dp(Space.S), 0, 0) }
        bottom.addView(label(c.interestedLine ?: "", TypeScale.BODY, color = col.onSurfaceVariant), weighted())
        bottom.addView(button(c.notifyLabel, if (c.notifyMe) ButtonStyle.TEXT else ButtonStyle.TONAL) { toggleNotify(c) }.apply {
            contentDescription = (if (c.notifyMe) "Stop notifying me about " else "Notify me about ") + c.title
        })
        v.addView(bottom, matchWrap())
        return v
    }

    private fun cardView(c: RoomCard): View {
        val col = colors
        val v = card(Space.L).apply {
            background = ripple(rounded(col.surface, 20, if (col.dark) null else col.outline), 20, col.onSurface)
            isClickable = true
            contentDescription = "${c.title}. ${c.speakersLine}. ${c.countsLine}" + (c.kindLabel?.let { ". $it room" } ?: "") +
                (if (c.encrypted) ". ${E2eePresenter.BADGE}" else "")
        }
        val top = horizontal().apply { gravity = Gravity.CENTER_VERTICAL }
        top.addView(label("● LIVE", TypeScale.CAPTION, color = col.speaking, medium = true), weighted())
        if (c.encrypted) {
            top.addView(chip("${E2eePresenter.LOCK} Encrypted", col.primaryContainer, col.onPrimaryContainer).apply {
                contentDescription = E2eePresenter.BADGE
            }, wrap().margins(this, r = Space.XS))
        }
        c.kindLabel?.let { top.addView(chip(it)) }
        v.addView(top, matchWrap())
        v.addView(label(c.title, TypeScale.TITLE_LARGE, color = col.onSurface).apply {
            typeface = MEDIUM
            ellipsizeEnd(2)
            setPadding(0, dp(Space.XS), 0, dp(Space.M))
        }, matchWrap())
        val people = horizontal()
        if (c.speakers.isNotEmpty()) {
            // Overlapping faces of who is on stage.
            val faces = FrameLayout(this)
            // The first speaker on top, the others tucked behind to the right.
            c.speakers.take(3).withIndex().reversed().forEach { (i, sp) ->
                faces.addView(avatar(sp.initials, sp.userId, 40, ring = col.surface, photoHash = sp.avatar),
                    FrameLayout.LayoutParams(dp(40), dp(40)).apply { leftMargin = dp(26 * i) })
            }
            people.addView(faces, LinearLayout.LayoutParams(dp(40 + 26 * (minOf(3, c.speakers.size) - 1)), dp(40)))
        }
        people.addView(label(c.speakersLine, TypeScale.BODY_LARGE, color = col.onSurface).apply {
            ellipsizeEnd(2)
            setPadding(dp(if (c.speakers.isNotEmpty()) Space.M else 0), 0, 0, 0)
        }, weighted())
        v.addView(people, matchWrap())
        val bottom = horizontal().apply { setPadding(0, dp(Space.M), 0, 0) }
        bottom.addView(label("🎧 ${c.countsLine}", TypeScale.BODY, color = col.onSurfaceVariant), weighted())
        bottom.addView(button("Share", ButtonStyle.TEXT) { share(c.link) }.apply { contentDescription = "Share ${c.title}" })
        v.addView(bottom, matchWrap())
        c.followedLine?.let { v.addView(label(it, TypeScale.BODY, color = col.primary)) }
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

    /** The dialog that starts a room: a title and the kind, as three selectable cards. */
    private fun startRoomDialog() {
        val c = colors
        val d = android.app.Dialog(this)
        d.requestWindowFeature(android.view.Window.FEATURE_NO_TITLE)
        val box = vertical(Space.XL).apply { background = rounded(c.surface, 28) }
        box.addView(label("Start a room", TypeScale.TITLE_LARGE, color = c.onSurface), matchWrap().margins(this, b = Space.L))
        val title = field("What do you want to talk about?", ID_ROOM_TITLE)
        box.addView(title, matchWrap().margins(this, b = Space.L))
        val kinds = listOf(
            Triple(RoomKind.OPEN, "Open", "Anyone can join"),
            Triple(RoomKind.SOCIAL, "Social", "People you follow"),
            Triple(RoomKind.CLOSED, "Closed", "Only people with the link"),
        )
        var chosen = RoomKind.OPEN
        val rows = ArrayList<LinearLayout>()
        var paintE2ee: () -> Unit = {}
        fun paint() {
            kinds.forEachIndexed { i, (kind, _, _) ->
                val on = kind == chosen
                rows[i].isSelected = on
                rows[i].background = ripple(rounded(if (on) c.primaryContainer else c.surface, 16, if (on) c.primary else c.outline), 16, c.onSurface)
            }
            paintE2ee()
        }
        for ((kind, name, detail) in kinds) {
            val row = vertical().apply {
                setPadding(dp(Space.L), dp(Space.M), dp(Space.L), dp(Space.M))
                minimumHeight = dp(56)
                isClickable = true
                contentDescription = "$name room: $detail"
                addView(label(name, TypeScale.BODY_LARGE, color = c.onSurface, medium = true))
                addView(label(detail, TypeScale.BODY, color = c.onSurfaceVariant))
                setOnClickListener { chosen = kind; paint() }
            }
            rows += row
            box.addView(row, matchWrap().margins(this, b = Space.S))
        }
        // End-to-end encryption: closed rooms only (E2eePresenter decides; the server agrees).
        val e2eeRow = horizontal().apply { gravity = Gravity.CENTER_VERTICAL; setPadding(dp(Space.XS), dp(Space.S), 0, 0) }
        val e2eeTexts = vertical()
        e2eeTexts.addView(label("${E2eePresenter.LOCK}  ${E2eePresenter.BADGE}", TypeScale.BODY_LARGE, color = c.onSurface, medium = true))
        val e2eeHint = label("", TypeScale.BODY, color = c.onSurfaceVariant)
        e2eeTexts.addView(e2eeHint)
        e2eeRow.addView(e2eeTexts, weighted())
        val e2eeSwitch = android.widget.Switch(this).apply {
            contentDescription = E2eePresenter.BADGE
            minHeight = dp(48)
        }
        e2eeRow.addView(e2eeSwitch, wrap().margins(this, l = Space.S))
        box.addView(e2eeRow, matchWrap())
        paintE2ee = {
            e2eeSwitch.isChecked = E2eePresenter.switchAfterKind(chosen, e2eeSwitch.isChecked)
            e2eeSwitch.isEnabled = E2eePresenter.allowed(chosen)
            e2eeHint.text = E2eePresenter.switchHint(chosen)
            e2eeTexts.alpha = if (e2eeSwitch.isEnabled) 1f else 0.6f
        }
        paint()
        startE2eeSwitch = e2eeSwitch
        val buttons = horizontal().apply { gravity = Gravity.END or Gravity.CENTER_VERTICAL; setPadding(0, dp(Space.L), 0, 0) }
        buttons.addView(button("Cancel", ButtonStyle.TEXT) { d.dismiss() })
        buttons.addView(button("Let's go", ButtonStyle.FILLED) {
            d.dismiss()
            createRoom(title.text.toString().trim(), chosen, e2eeSwitch.isChecked && E2eePresenter.allowed(chosen))
        }, wrap().margins(this, l = Space.S))
        box.addView(buttons, matchWrap())
        d.setContentView(box)
        d.window?.setBackgroundDrawable(android.graphics.drawable.ColorDrawable(android.graphics.Color.TRANSPARENT))
        d.window?.setLayout(dp(340).coerceAtMost(resources.displayMetrics.widthPixels - dp(32)), ViewGroup.LayoutParams.WRAP_CONTENT)
        d.show()
        startDialog = d
    }

    private fun createRoom(title: String, kind: RoomKind, e2ee: Boolean) {
        if (title.isEmpty()) return toast("Give the room a title")
        val start = {
            status.text = "Starting the room…"
            ruang.background({ it.createRoom(title, kind, e2ee) }) { r ->
                r.onSuccess { s ->
                    status.text = ""
                    val token = (DeepLinks.parse(s.link) as? DeepLink.Room)?.linkToken
                    startActivity(RoomActivity.open(this, s.id, token, s.link))
                }
                r.onFailure { onError(it) }
            }
        }
        if (ruang.rooms.roomId != null) {
            dialog("Start a new room?", "You will leave the room you are in.", "Start", "Cancel") {
                ruang.rooms.leave(quietly = true) { start() }
            }
        } else {
            start()
        }
    }

    private fun menu(@Suppress("UNUSED_PARAMETER") anchor: View) {
        val p = ruang.profile
        sheet(
            p?.let { displayNameOf(it.name, it.handle) } ?: "Ruang",
            p?.let { "@${it.handle}" },
            p?.let { avatar(org.ruang.app.presenter.initials(it.name, it.handle), it.id, 48, photoHash = it.avatar) },
            listOf(
                SheetAction("My profile") { p?.let { startActivity(ProfileActivity.open(this, it.handle)) } },
                SheetAction("My invites") { showInvites() },
                SheetAction("Sign out", danger = true) {
                    ruang.signOut {
                        startActivity(Intent(this, WelcomeActivity::class.java))
                        finish()
                    }
                },
            ),
        )
    }

    private fun displayNameOf(name: String, handle: String) = org.ruang.app.presenter.displayName(name, handle)

    private fun showInvites() {
        ruang.background({ it.invites() }) { r ->
            r.onFailure { onError(it) }
            r.onSuccess { invites ->
                if (invites.isEmpty()) return@onSuccess alert("Invites", "You have no invites left.")
                sheet("Share an invite", "Each code lets one friend in.", null,
                    invites.map { inv -> SheetAction(inv.code) { share(inv.link) } })
            }
        }
    }

    companion object {
        const val WATCH_INTERVAL_MS = 5000u
        const val ID_ROOM_TITLE = 0x7f0a0101
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
