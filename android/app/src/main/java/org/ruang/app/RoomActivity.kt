package org.ruang.app

import android.Manifest
import android.app.Activity
import android.app.Dialog
import android.graphics.drawable.GradientDrawable
import android.content.Context
import android.content.Intent
import android.content.pm.PackageManager
import android.os.Build
import android.os.Bundle
import android.view.View
import android.widget.Button
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import org.ruang.app.presenter.AudiencePager
import org.ruang.app.presenter.ChatPresenter
import org.ruang.app.presenter.DeepLink
import org.ruang.app.presenter.DeepLinks
import org.ruang.app.presenter.E2eePresenter
import org.ruang.app.presenter.LinkDecision
import org.ruang.app.presenter.ModeratorAction
import org.ruang.app.presenter.PermissionFlow
import org.ruang.app.presenter.RoomPresenter
import org.ruang.app.presenter.RoomMenuItem
import org.ruang.app.presenter.RoomScreenState
import org.ruang.app.presenter.SafetyPresenter
import org.ruang.app.presenter.Section
import org.ruang.app.presenter.Tile
import org.ruang.app.presenter.displayName
import org.ruang.core.ChatViewState
import org.ruang.core.E2eeInfo
import org.ruang.core.ReactionBurstView
import org.ruang.core.Role
import org.ruang.core.RoomViewState
import org.ruang.core.reactionChoices
import org.ruang.core.RuangException

/**
 * The room screen: stage grid, listener sections, raise hand, mute, leave quietly, share, the
 * invite-to-speak dialog and the moderator menus. It renders RoomPresenter's state and forwards
 * taps; the room itself lives in RoomController, so rotation, process death (re-join from the
 * saved room id) and coming back from the background all restore from the core's state.
 * singleTask: links arrive in onNewIntent.
 */
class RoomActivity : Activity() {
    private lateinit var titleView: TextView
    private lateinit var countsView: TextView
    /** "● REC" while the room is recorded. */
    lateinit var recordingBadge: TextView
        private set
    private lateinit var banner: TextView
    private lateinit var stage: StageView
    private lateinit var handsBox: LinearLayout
    private lateinit var followedHeader: TextView
    private lateinit var followed: StageView
    private lateinit var othersHeader: TextView
    private lateinit var others: StageView
    private lateinit var moreView: TextView
    private lateinit var scroll: ScrollView
    private lateinit var handButton: Button
    private lateinit var muteButton: Button
    private lateinit var modButton: Button

    /** The room this screen shows (survives rotation and process death). */
    private var roomId: String? = null
    private var linkToken: String? = null
    private var link: String? = null

    private var last: RoomViewState? = null
    private var inviteDialog: Dialog? = null
    /** The dialogs and sheets on screen (tests look at them; rotation dismisses them). */
    var menuDialog: Dialog? = null
        private set
    var switchDialog: Dialog? = null
        private set
    var endedDialog: Dialog? = null
        private set
    private var handShownRaised: Boolean? = null
    private lateinit var stageHeader: TextView
    private lateinit var leaveButton: Button
    private var endedShown = false
    /** Asked for the microphone in this screen already (don't loop on refusal). */
    private var micAsked = false
    private var afterMic: ((Boolean) -> Unit)? = null
    private var afterNotifications: (() -> Unit)? = null
    /** "Show all N listeners": the audience pages loaded so far. */
    private val pager = AudiencePager()

    private val observer = RoomController.Observer { render(it) }

    // ----- end-to-end encryption -----
    /** "🔒 End-to-end encrypted" in the stage header (encrypted rooms). */
    lateinit var e2eeBadge: TextView
        private set
    /** The sheet the badge opens (null when closed). */
    var e2eeDialog: Dialog? = null
        private set
    private var e2eeContent: LinearLayout? = null
    private val e2eeObserver: (E2eeInfo) -> Unit = { renderE2ee(it) }

    private fun renderE2ee(info: E2eeInfo) {
        if (roomId == null || ruang.rooms.roomId != roomId) return
        val badge = E2eePresenter.badge(info)
        e2eeBadge.visibility = if (badge != null) View.VISIBLE else View.GONE
        if (badge != null) {
            e2eeBadge.text = badge.label
            e2eeBadge.contentDescription = badge.description
        }
        val content = e2eeContent
        if (e2eeDialog?.isShowing == true && content != null) fillE2eeSheet(content, info)
    }

    /** The badge's sheet: what the encryption means, the safety code, this device. */
    private fun showE2eeSheet() {
        val info = ruang.rooms.e2ee ?: return
        val c = colors
        val d = Dialog(this)
        d.requestWindowFeature(android.view.Window.FEATURE_NO_TITLE)
        val box = vertical().apply {
            background = GradientDrawable().apply {
                setColor(c.surface)
                val r = dpf(28f)
                cornerRadii = floatArrayOf(r, r, r, r, 0f, 0f, 0f, 0f)
            }
            setPadding(dp(Space.XL), dp(Space.M), dp(Space.XL), dp(Space.L))
        }
        box.addView(View(this).apply { background = rounded(c.outline, 2) },
            LinearLayout.LayoutParams(dp(32), dp(4)).apply { gravity = android.view.Gravity.CENTER_HORIZONTAL; bottomMargin = dp(Space.L) })
        val content = vertical()
        box.addView(ScrollView(this).apply { addView(content) }, matchWrap())
        val actions = horizontal().apply { gravity = android.view.Gravity.END; setPadding(0, dp(Space.M), 0, 0) }
        actions.addView(button("Done", ButtonStyle.FILLED) { d.dismiss() })
        box.addView(actions, matchWrap())
        fillE2eeSheet(content, info)
        d.setContentView(box)
        d.window?.let { w ->
            w.setBackgroundDrawable(android.graphics.drawable.ColorDrawable(android.graphics.Color.TRANSPARENT))
            w.setGravity(android.view.Gravity.BOTTOM)
            w.setLayout(android.view.ViewGroup.LayoutParams.MATCH_PARENT, android.view.ViewGroup.LayoutParams.WRAP_CONTENT)
        }
        d.setOnDismissListener { if (e2eeDialog === d) { e2eeDialog = null; e2eeContent = null } }
        e2eeContent = content
        e2eeDialog = d
        if (!isFinishing) d.show()
    }

    private fun fillE2eeSheet(content: LinearLayout, info: E2eeInfo) {
        val c = colors
        val sheet = E2eePresenter.sheet(info)
        content.removeAllViews()
        content.addView(label("${E2eePresenter.LOCK}  ${sheet.title}", TypeScale.TITLE_LARGE, color = c.onSurface, medium = true),
            matchWrap().margins(this, b = Space.M))
        for (p in sheet.points) {
            val row = horizontal().apply { gravity = android.view.Gravity.TOP }
            row.addView(label("•", TypeScale.BODY_LARGE, color = c.primary, medium = true).apply { setPadding(0, 0, dp(Space.S), 0) })
            row.addView(label(p, TypeScale.BODY, color = c.onSurfaceVariant), weighted())
            content.addView(row, matchWrap().margins(this, b = Space.S))
        }
        sheet.status?.let { status ->
            content.addView(label(status, TypeScale.BODY_LARGE, color = c.onBanner, medium = true).apply {
                background = rounded(c.banner, 16)
                setPadding(dp(Space.L), dp(Space.M), dp(Space.L), dp(Space.M))
            }, matchWrap().margins(this, t = Space.M))
        }
        sheet.code?.let { code ->
            val card = vertical(Space.L).apply {
                background = rounded(c.surfaceVariant, 20)
                gravity = android.view.Gravity.CENTER_HORIZONTAL
            }
            card.addView(label("Safety code", TypeScale.LABEL, color = c.onSurfaceVariant, medium = true))
            card.addView(label(code, 32f, color = c.onSurface, bold = true).apply {
                typeface = android.graphics.Typeface.create(android.graphics.Typeface.MONOSPACE, android.graphics.Typeface.BOLD)
                gravity = android.view.Gravity.CENTER
                maxLines = 1
                contentDescription = sheet.codeSpoken
                setPadding(0, dp(Space.XS), 0, dp(Space.XS))
            }, matchWrap())
            sheet.codeDetail?.let { card.addView(label(it, TypeScale.BODY, color = c.onSurfaceVariant)) }
            content.addView(card, matchWrap().margins(this, t = Space.M))
            sheet.codeCaption?.let {
                content.addView(label(it, TypeScale.BODY, color = c.onSurface), matchWrap().margins(this, t = Space.S))
            }
        }
        sheet.fingerprint?.let {
            content.addView(label(it, TypeScale.CAPTION, color = c.onSurfaceVariant).apply {
                typeface = android.graphics.Typeface.MONOSPACE
            }, matchWrap().margins(this, t = Space.M))
        }
    }

    // ----- reactions and chat -----
    lateinit var chatPanel: ChatPanel
        private set
    lateinit var reactionsView: ReactionsView
        private set
    private val chatObserver = object : RoomController.ChatObserver {
        override fun onChat(chat: ChatViewState) {
            chatPanel.render(ChatPresenter.present(chat, last?.me))
        }

        override fun onReactions(bursts: List<ReactionBurstView>) {
            reactionsView.show(ChatPresenter.floaters(bursts))
        }
    }

    private fun buildChat(): ChatPanel {
        val choices = reactionChoices().map { it.reaction to it.emoji }
        return ChatPanel(this, choices).apply {
            onReact = { name -> ruang.rooms.command({ it.react(name, null) }, ::report) }
            onSend = { text -> ruang.rooms.command({ it.sendChat(text) }, ::report) }
            onSettings = { chatSettingsMenu() }
            onLineLongPress = { line ->
                val rows = ArrayList<SheetAction>()
                if (!line.mine) rows += SheetAction("Report message") { reportMessage(line.id, line.author) }
                if (line.canDelete) {
                    rows += SheetAction("Delete message", danger = true) {
                        ruang.rooms.command({ it.deleteChat(line.id.toULong()) }, ::report)
                    }
                }
                menuDialog = sheet(line.author, line.text, null, rows)
            }
        }
    }

    private fun reportMessage(messageId: Long, author: String) {
        val id = roomId ?: return
        menuDialog = reportReasonSheet(SafetyPresenter.reportMessageTitle(author)) { c, reason ->
            c.reportMessage(id, messageId.toULong(), reason, "")
        }
    }

    private fun chatSettingsMenu() {
        val chat = ruang.rooms.chat ?: return
        val actions = ChatPresenter.settingChoices(chat).map { choice ->
            SheetAction((if (choice.current) "✓  " else "") + choice.label) {
                ruang.rooms.command({ it.setChatSettings(choice.mode, choice.slowSeconds) }, ::report)
            }
        } + SheetAction(if (chat.reactionsEnabled) "Turn reactions off" else "Turn reactions on") {
            ruang.rooms.command({ it.setReactionsEnabled(!chat.reactionsEnabled) }, ::report)
        }
        menuDialog = sheet("Chat and reactions", null, null, actions)
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        buildUi()
        if (savedInstanceState != null) {
            roomId = savedInstanceState.getString(EXTRA_ROOM_ID)
            linkToken = savedInstanceState.getString(EXTRA_LINK_TOKEN)
            link = savedInstanceState.getString(EXTRA_LINK)
            micAsked = savedInstanceState.getBoolean(STATE_MIC_ASKED)
            roomId?.let { id -> open(id, linkToken, link) }
        } else {
            handle(intent)
        }
    }

    override fun onNewIntent(intent: Intent) {
        super.onNewIntent(intent)
        setIntent(intent)
        handle(intent)
    }

    override fun onSaveInstanceState(outState: Bundle) {
        super.onSaveInstanceState(outState)
        outState.putString(EXTRA_ROOM_ID, roomId)
        outState.putString(EXTRA_LINK_TOKEN, linkToken)
        outState.putString(EXTRA_LINK, link)
        outState.putBoolean(STATE_MIC_ASKED, micAsked)
    }

    override fun onStart() {
        super.onStart()
        ruang.rooms.observe(observer)
        ruang.rooms.observeChat(chatObserver)
        ruang.rooms.observeE2ee(e2eeObserver)
        val rooms = ruang.rooms
        if (roomId != null && rooms.roomId == roomId) rooms.state?.let { render(it) }
        // Left from the notification while this screen was hidden.
        if (roomId != null && rooms.roomId == null && rooms.state == null && last != null) finishToHallway()
    }

    override fun onStop() {
        ruang.rooms.unobserve(observer)
        ruang.rooms.unobserveChat(chatObserver)
        ruang.rooms.unobserveE2ee(e2eeObserver)
        super.onStop()
    }

    override fun onDestroy() {
        // Rotation recreates the screen, and render() shows what is still pending again.
        for (d in listOf(inviteDialog, menuDialog, switchDialog, endedDialog, e2eeDialog)) d?.dismiss()
        super.onDestroy()
    }

    @Deprecated("Deprecated in Java")
    override fun onBackPressed() {
        // Back keeps listening in the background (the notification stays); the hallway shows
        // a "back to your room" bar.
        finishToHallway()
    }

    // ---- intents and links ---------------------------------------------------------------

    private fun handle(intent: Intent) {
        val fromLink = intent.action == Intent.ACTION_VIEW && intent.data != null
        val target: DeepLink = if (fromLink) {
            DeepLinks.parse(intent.dataString, ruang.publicHost)
        } else {
            intent.getStringExtra(EXTRA_ROOM_ID)?.let { DeepLink.Room(it, intent.getStringExtra(EXTRA_LINK_TOKEN)) }
                ?: DeepLink.None
        }
        val shareLink = if (fromLink) intent.dataString else intent.getStringExtra(EXTRA_LINK)
        ruang.restoreSession { r ->
            r.onFailure { e ->
                if (e is RuangException.Unauthorized) {
                    // Sign up first (an invite link fills in the code), then come back.
                    when (target) {
                        is DeepLink.Invite -> startActivity(WelcomeActivity.forInvite(this, target.code))
                        else -> startActivity(
                            shareLink?.let { WelcomeActivity.forPendingLink(this, it) }
                                ?: Intent(this, WelcomeActivity::class.java)
                        )
                    }
                    finish()
                } else {
                    alert("Can't open the room", errorText(e)) { if (roomId == null) finishToHallway() }
                }
            }
            r.onSuccess { decide(target, shareLink) }
        }
    }

    private fun decide(target: DeepLink, shareLink: String?) {
        when (val d = DeepLinks.decide(target, ruang.rooms.roomId, signedIn = true)) {
            is LinkDecision.OpenRoom -> open(d.roomId, d.linkToken, shareLink)
            is LinkDecision.ShowCurrent -> {
                roomId = d.roomId
                ruang.rooms.state?.let { render(it) }
            }
            is LinkDecision.AskToSwitch -> {
                val current = ruang.rooms.state?.title?.ifBlank { null } ?: "this room"
                switchDialog = dialog(
                    "Switch rooms?",
                    "You are in \"$current\". Leave it and join the other room?",
                    positive = "Switch",
                    negative = "Stay",
                ) {
                    ruang.rooms.leave(quietly = true) { open(d.toRoomId, d.linkToken, shareLink) }
                }
            }
            is LinkDecision.Invite -> {
                toast("You're already in — share your own invites from the hallway.")
                if (roomId == null) finishToHallway()
            }
            // Not a room: the event's or the person's own screen, over whatever room this is.
            is LinkDecision.OpenEvent -> {
                startActivity(EventActivity.open(this, d.eventId))
                if (roomId == null) finish()
            }
            is LinkDecision.OpenProfile -> {
                startActivity(ProfileActivity.open(this, d.handle))
                if (roomId == null) finish()
            }
            LinkDecision.Ignore -> {
                if (roomId == null) {
                    toast("That link doesn't lead to a room.")
                    finishToHallway()
                }
            }
        }
    }

    /** Opens [id]: attaches to it when the controller is already in it, else joins it. */
    private fun open(id: String, token: String?, shareLink: String?) {
        roomId = id
        linkToken = token
        link = shareLink
        last = null
        endedShown = false
        pager.sync(id)
        if (ruang.rooms.roomId == id) {
            ruang.rooms.state?.let { render(it) }
            return
        }
        beforeListening {
            banner.text = "Joining…"
            banner.visibility = View.VISIBLE
            ruang.restoreSession { s ->
                s.onFailure { e -> alert("Can't join", errorText(e)) { finishToHallway() } }
                s.onSuccess {
                    ruang.rooms.join(id, token, shareLink) { r ->
                        r.onFailure { e ->
                            if (e is RuangException.NotFound) offerReplay(id, token, e) else alert("Can't join", errorText(e)) { finishToHallway() }
                        }
                    }
                }
            }
        }
    }

    /** The room is over (or never was): when it left a replay, offer to play it. */
    private fun offerReplay(id: String, token: String?, joinError: Throwable) {
        ruang.background({ it.replay(id, token) }) { r ->
            if (isFinishing) return@background
            r.onSuccess { replay ->
                endedDialog = dialog("This room has ended", "\u201c${replay.title}\u201d was recorded. You can listen to the replay.",
                    positive = "Play the replay", negative = "Back to the hallway", onNegative = { finishToHallway() }) {
                    startActivity(ReplayActivity.open(this, id, token))
                    finish()
                }
            }
            r.onFailure { alert("Can't join", errorText(joinError)) { finishToHallway() } }
        }
    }

    // ---- permissions ---------------------------------------------------------------------

    private fun granted(permission: String) = checkSelfPermission(permission) == PackageManager.PERMISSION_GRANTED

    private fun beforeListening(then: () -> Unit) {
        val asked = ruang.settings.getBoolean(RuangApp.KEY_ASKED_NOTIFICATIONS, false)
        when (val d = PermissionFlow.beforeListening(Build.VERSION.SDK_INT, granted(PermissionFlow.POST_NOTIFICATIONS), asked)) {
            PermissionFlow.Decision.Proceed -> then()
            is PermissionFlow.Decision.Ask -> {
                ruang.settings.edit().putBoolean(RuangApp.KEY_ASKED_NOTIFICATIONS, true).apply()
                afterNotifications = then
                requestPermissions(arrayOf(d.permission), REQUEST_NOTIFICATIONS)
            }
        }
    }

    /** Going on stage: the microphone, asked now and only now. */
    private fun beforeStage(then: (Boolean) -> Unit) {
        when (val d = PermissionFlow.beforeStage(granted(Manifest.permission.RECORD_AUDIO))) {
            PermissionFlow.Decision.Proceed -> then(true)
            is PermissionFlow.Decision.Ask -> {
                micAsked = true
                afterMic = then
                requestPermissions(arrayOf(d.permission), REQUEST_MIC)
            }
        }
    }

    override fun onRequestPermissionsResult(requestCode: Int, permissions: Array<out String>, grantResults: IntArray) {
        super.onRequestPermissionsResult(requestCode, permissions, grantResults)
        val ok = grantResults.isNotEmpty() && grantResults[0] == PackageManager.PERMISSION_GRANTED
        when (requestCode) {
            REQUEST_NOTIFICATIONS -> {
                if (!ok) {
                    val o = PermissionFlow.notificationsRefused() as PermissionFlow.Outcome.ListenWithoutNotification
                    toast(o.explanation)
                }
                afterNotifications?.invoke()
                afterNotifications = null
            }
            REQUEST_MIC -> {
                afterMic?.invoke(ok)
                afterMic = null
            }
        }
    }

    /** The microphone was refused: degrade as PermissionFlow says. */
    private fun micRefused(s: RoomViewState) {
        val role = s.me?.role ?: Role.LISTENER
        val otherMods = s.stage.count { it.role == Role.MODERATOR && it.user.id != s.me?.user?.id }
        when (val o = PermissionFlow.micRefused(role, otherMods)) {
            is PermissionFlow.Outcome.StayListener -> {
                ruang.rooms.command({ it.declineInvite() })
                alert("Staying a listener", o.explanation)
            }
            is PermissionFlow.Outcome.LeaveStage -> {
                ruang.rooms.command({ it.leaveStage() })
                alert("Back in the audience", o.explanation)
            }
            is PermissionFlow.Outcome.StayMuted -> {
                ruang.rooms.command({ it.setMuted(true) })
                alert("Muted", o.explanation)
            }
            is PermissionFlow.Outcome.ListenWithoutNotification -> toast(o.explanation)
        }
    }

    private fun micReady() {
        ruang.rooms.updateAudio()
        RoomService.refresh(this)
    }

    // ---- rendering -----------------------------------------------------------------------

    private fun buildUi() {
        val c = colors
        val root = vertical().apply { setBackgroundColor(c.background) }

        val bar = horizontal().apply { setPadding(dp(Space.XS), dp(Space.S), dp(Space.XS), dp(Space.XS)) }
        bar.addView(iconButton("⌄", "Back to the hallway, keep listening") { finishToHallway() })
        val titles = vertical().apply { setPadding(dp(Space.XS), 0, 0, 0) }
        titleView = label("", TypeScale.TITLE, color = c.onSurface).apply { typeface = MEDIUM; ellipsizeEnd(2) }
        countsView = label("", TypeScale.BODY, color = c.onSurfaceVariant)
        titles.addView(titleView)
        titles.addView(countsView)
        bar.addView(titles, weighted())
        recordingBadge = label(RoomPresenter.RECORDING_BADGE, TypeScale.LABEL, color = c.onPrimary, medium = true).apply {
            background = rounded(c.error, 12)
            setPadding(dp(Space.S), dp(Space.XS), dp(Space.S), dp(Space.XS))
            contentDescription = "This room is being recorded"
            visibility = View.GONE
        }
        bar.addView(recordingBadge, wrap().margins(this, r = Space.XS).apply { gravity = android.view.Gravity.CENTER_VERTICAL })
        bar.addView(iconButton("↗", "Share the room link") { share() })
        modButton = iconButton("⋮", "Room menu") { v -> roomMenu(v) }
        bar.addView(modButton)
        root.addView(bar, matchWrap())

        banner = label("", TypeScale.BODY, color = c.onBanner, medium = true).apply {
            background = rounded(c.banner, 12)
            setPadding(dp(Space.L), dp(Space.S), dp(Space.L), dp(Space.S))
            visibility = View.GONE
        }
        root.addView(banner, matchWrap().margins(this, l = Space.L, r = Space.L, b = Space.S))

        val content = vertical().apply { setPadding(dp(Space.M), dp(Space.XS), dp(Space.M), dp(Space.L)) }
        // The stage: a card of its own, the audience below it on the page.
        val stageCard = card(Space.M)
        stageHeader = sectionHeader().apply { text = "On stage"; setPadding(dp(Space.XS), 0, 0, dp(Space.S)) }
        val stageTop = horizontal().apply { gravity = android.view.Gravity.CENTER_VERTICAL }
        stageTop.addView(stageHeader, weighted())
        // Encrypted rooms: a lock pill (32 dp drawn, 48 dp to touch) that opens the safety code.
        e2eeBadge = label("${E2eePresenter.LOCK}  ${E2eePresenter.BADGE}", TypeScale.CAPTION, color = c.onPrimaryContainer, medium = true).apply {
            background = ripple(android.graphics.drawable.InsetDrawable(rounded(c.primaryContainer, 16), 0, dp(8), 0, dp(8)), 16, c.onPrimaryContainer)
            gravity = android.view.Gravity.CENTER
            minHeight = dp(48)
            setPadding(dp(Space.M), 0, dp(Space.M), 0)
            isClickable = true
            isFocusable = true
            contentDescription = E2eePresenter.BADGE
            visibility = View.GONE
            setOnClickListener { showE2eeSheet() }
        }
        stageTop.addView(e2eeBadge, wrap().margins(this, b = Space.XS))
        stageCard.addView(stageTop, matchWrap())
        stage = StageView(this, compact = false).apply { onLongPress = { t, v -> personMenu(t, v) }; onTap = { t -> personMenu(t, this) } }
        // Reactions float over the stage (over the tile they were aimed at).
        reactionsView = ReactionsView(this).apply { locate = { id -> stage.tileCenter(id) } }
        val stageFrame = android.widget.FrameLayout(this)
        stageFrame.addView(stage, android.widget.FrameLayout.LayoutParams(-1, -2))
        stageFrame.addView(reactionsView, android.widget.FrameLayout.LayoutParams(-1, -1))
        stageCard.addView(stageFrame, matchWrap())
        content.addView(stageCard, matchWrap())
        chatPanel = buildChat()
        content.addView(card(Space.M).apply { addView(chatPanel, matchWrap()) }, matchWrap().margins(this, t = Space.M))
        handsBox = vertical()
        content.addView(handsBox, matchWrap())
        followedHeader = sectionHeader()
        followed = StageView(this, compact = true).apply { onLongPress = { t, v -> personMenu(t, v) }; onTap = { t -> personMenu(t, this) } }
        othersHeader = sectionHeader()
        others = StageView(this, compact = true).apply { onLongPress = { t, v -> personMenu(t, v) }; onTap = { t -> personMenu(t, this) } }
        moreView = label("", TypeScale.LABEL, color = c.primary, medium = true).apply {
            minHeight = dp(48)
            gravity = android.view.Gravity.CENTER_VERTICAL
            setPadding(dp(Space.S), 0, dp(Space.S), 0)
            background = ripple(null, 12, c.primary)
            setOnClickListener { loadAudience(pager.request()) }
        }
        content.addView(followedHeader, matchWrap())
        content.addView(followed, matchWrap())
        content.addView(othersHeader, matchWrap())
        content.addView(others, matchWrap())
        content.addView(moreView, matchWrap())
        scroll = ScrollView(this).apply { addView(content) }
        // At the end of the list, the next audience page (once "Show all" was tapped).
        scroll.setOnScrollChangeListener { _, _, _, _, _ ->
            if (!scroll.canScrollVertically(1)) loadAudience(pager.requestOnScrollEnd())
        }
        root.addView(scroll, LinearLayout.LayoutParams(LinearLayout.LayoutParams.MATCH_PARENT, 0, 1f))

        // The bottom bar: leave quietly, mute, and the large raise-hand button.
        val bottom = BottomBar(this).apply {
            setPadding(dp(Space.L), dp(Space.M), dp(Space.L), dp(Space.L))
            background = GradientDrawable().apply {
                setColor(c.surface)
                val r = dpf(24f)
                cornerRadii = floatArrayOf(r, r, r, r, 0f, 0f, 0f, 0f)
            }
            elevation = dpf(8f)
        }
        leaveButton = button("✌  Leave quietly", ButtonStyle.OUTLINED) { leave(quietly = true) }
            .apply { contentDescription = "Leave quietly" }
        bottom.addView(leaveButton, wrap())
        // A spacer (a bare View would take the whole height when wrapping).
        bottom.addView(View(this), LinearLayout.LayoutParams(0, 0, 1f))
        muteButton = button("Mute", ButtonStyle.TONAL, large = true) { toggleMute() }
        bottom.addView(muteButton, wrap().margins(this, l = Space.S))
        handButton = button("✋  Raise hand", ButtonStyle.FILLED, large = true) { toggleHand() }
        bottom.addView(handButton, wrap().margins(this, l = Space.S))
        bottom.leave = leaveButton
        root.addView(bottom, matchWrap())
        setContentView(root)
    }

    private fun sectionHeader() = label("", TypeScale.LABEL, color = colors.onSurfaceVariant, medium = true).apply {
        setPadding(dp(Space.S), dp(Space.L), dp(Space.S), dp(Space.XS))
    }

    private fun render(s: RoomViewState) {
        if (s.roomId != roomId) return
        val roleBefore = last?.me?.role
        last = s
        if (s.me?.role != roleBefore) ruang.rooms.chat?.let { chatObserver.onChat(it) }
        val st = RoomPresenter.present(s)
        titleView.text = st.title + (st.kindLabel?.let { " · $it" } ?: "")
        countsView.text = st.countsLine
        banner.text = st.banner ?: ""
        banner.visibility = if (st.banner != null) View.VISIBLE else View.GONE

        stage.tiles = st.stage
        renderSection(st.followed, followedHeader, followed)
        pager.sync(s.roomId)
        val othersSection = pager.others(s, st.others)
        renderSection(othersSection, othersHeader, others)
        val footer = pager.footer(othersSection, s.counts.listeners.toLong())
        moreView.text = footer?.label ?: ""
        moreView.isEnabled = footer?.tappable == true
        moreView.visibility = if (footer != null) View.VISIBLE else View.GONE
        renderHands(st)

        handButton.visibility = if (st.hand.visible) View.VISIBLE else View.GONE
        handButton.isEnabled = st.hand.enabled
        handButton.text = "✋  " + st.hand.label
        handButton.contentDescription = st.hand.label
        if (st.hand.raised != handShownRaised) {
            handShownRaised = st.hand.raised
            applyStyle(handButton, if (st.hand.raised) ButtonStyle.TONAL else ButtonStyle.FILLED)
            // A small wave of the hand when it goes up.
            if (st.hand.raised) {
                handButton.animate().cancel()
                handButton.scaleX = 0.92f; handButton.scaleY = 0.92f
                handButton.animate().scaleX(1f).scaleY(1f).setDuration(220).start()
            }
        }
        stageHeader.text = "On stage · ${st.stage.size}"
        stage.announceSpeakers(st.stage)
        muteButton.visibility = if (st.mute.visible) View.VISIBLE else View.GONE
        muteButton.text = (if (st.mute.label == "Unmute") "🔇  " else "🎙  ") + st.mute.label
        muteButton.contentDescription = st.mute.label
        recordingBadge.visibility = if (st.recording) View.VISIBLE else View.GONE
        modButton.contentDescription = if (st.moderator) "Room settings" else "Room menu"

        renderInvite(st)
        if (st.onStage && !ruang.rooms.micGranted() && !micAsked && st.endedMessage == null) {
            beforeStage { ok -> if (ok) micReady() else last?.let { micRefused(it) } }
        }
        if (st.endedMessage != null && !endedShown) {
            endedShown = true
            inviteDialog?.dismiss()
            val id = roomId
            endedDialog = if (st.recording && id != null) {
                // Recorded: the replay is being mixed now; its screen waits for it.
                dialog("Room over", st.endedMessage + "\n\nIt was recorded: the replay will be ready in a moment.",
                    positive = "Play the replay", negative = "Back to the hallway", cancelable = true,
                    onNegative = { finishToHallway() }) {
                    startActivity(ReplayActivity.open(this, id, linkToken, preparing = true))
                    finish()
                }
            } else {
                dialog("Room over", st.endedMessage, "Back to the hallway", cancelable = true,
                    onNegative = { finishToHallway() }) { finishToHallway() }
            }
        }
    }

    private fun renderSection(section: Section, header: TextView, view: StageView) {
        val show = section.people.isNotEmpty()
        header.visibility = if (show) View.VISIBLE else View.GONE
        view.visibility = if (show) View.VISIBLE else View.GONE
        header.text = section.header
        view.tiles = section.people
    }

    private fun renderHands(st: RoomScreenState) {
        handsBox.removeAllViews()
        if (st.hands.isEmpty()) return
        val c = colors
        handsBox.addView(sectionHeader().apply { text = "Raised hands · ${st.hands.size}" })
        val box = card(Space.S)
        for (h in st.hands) {
            val row = horizontal().apply { setPadding(dp(Space.S), dp(Space.XS), dp(Space.XS), dp(Space.XS)) }
            row.addView(avatar(h.tile.initials, h.tile.userId, 40, photoHash = h.tile.avatar))
            row.addView(label("✋ ${h.tile.name}", TypeScale.BODY_LARGE, color = c.onSurface).apply {
                setPadding(dp(Space.M), 0, 0, 0)
                ellipsizeEnd()
            }, weighted())
            row.addView(button(h.actionLabel, if (h.invited) ButtonStyle.OUTLINED else ButtonStyle.FILLED) {
                ruang.rooms.command({ it.inviteToSpeak(h.tile.userId) }, ::report)
            }.apply {
                isEnabled = !h.invited
                contentDescription = "${h.actionLabel} ${h.tile.name}"
            })
            box.addView(row, matchWrap())
        }
        handsBox.addView(box, matchWrap())
    }

    private fun renderInvite(st: RoomScreenState) {
        if (!st.showInviteDialog) {
            inviteDialog?.dismiss()
            inviteDialog = null
            return
        }
        if (inviteDialog?.isShowing == true) return
        inviteDialog = dialog(
            "Join the stage?",
            st.inviteMessage,
            positive = "Join the stage",
            negative = "Not now",
            cancelable = false,
            onNegative = { ruang.rooms.command({ it.declineInvite() }, ::report) },
        ) { acceptInvite() }
    }

    private fun acceptInvite() {
        beforeStage { ok ->
            if (ok) {
                ruang.rooms.command({ it.acceptInvite() }) { r ->
                    report(r)
                    micReady()
                }
            } else {
                last?.let { micRefused(it) }
            }
        }
    }

    // ---- actions -------------------------------------------------------------------------

    /** Loads one audience page on the core thread (AudiencePager decides which, and merges it). */
    private fun loadAudience(req: AudiencePager.Request?) {
        if (req == null) return
        last?.let { render(it) } // "Loading listeners…"
        ruang.rooms.query({ it.audiencePage(req.cursor, req.limit) }) { r ->
            val current = r.fold({ pager.onPage(req, it) }, { pager.onError(req) })
            if (current) last?.let { render(it) }
        }
    }

    private fun report(r: Result<Unit>) {
        r.exceptionOrNull()?.let { toast(errorText(it)) }
    }

    private fun toggleHand() {
        val s = last ?: return
        ruang.rooms.command({ if (s.handRaised) it.lowerHand() else it.raiseHand() }, ::report)
    }

    private fun toggleMute() {
        val muted = last?.me?.muted ?: return
        if (muted && !ruang.rooms.micGranted()) {
            beforeStage { ok -> if (ok) { micReady(); ruang.rooms.command({ it.setMuted(false) }, ::report) } }
            return
        }
        ruang.rooms.command({ it.setMuted(!muted) }, ::report)
    }

    private fun leave(quietly: Boolean) {
        ruang.rooms.leave(quietly) {}
        finishToHallway()
    }

    private fun share() {
        val l = link ?: roomId?.let { DeepLinks.roomLink(ruang.serverUrl, it, linkToken) } ?: return
        val send = Intent(Intent.ACTION_SEND).setType("text/plain")
            .putExtra(Intent.EXTRA_SUBJECT, last?.title ?: "Ruang room")
            .putExtra(Intent.EXTRA_TEXT, l)
        startActivity(Intent.createChooser(send, "Share room link"))
    }

    /**
     * The sheet on a person (tap or long-press): their profile, follow or unfollow (their
     * profile is fetched first, so the sheet says which), and a moderator's actions.
     */
    private fun personMenu(t: Tile, @Suppress("UNUSED_PARAMETER") anchor: View) {
        val s = last ?: return
        val target = RoomPresenter.find(s, t.userId) ?: return
        val actions = RoomPresenter.actionsFor(s.me, target)
        val role = when (target.role) {
            Role.MODERATOR -> "Moderator"
            Role.SPEAKER -> "Speaker"
            Role.LISTENER -> "Listener"
        }
        ruang.background({ it.profile(t.handle) }) { r ->
            if (isFinishing) return@background
            val profile = r.getOrNull()
            val rows = ArrayList<SheetAction>()
            rows += SheetAction("View profile") { startActivity(ProfileActivity.open(this, t.handle)) }
            if (profile != null && !t.me) {
                rows += if (profile.followedByYou) {
                    SheetAction("Unfollow ${t.name}") { follow(t.handle, false) }
                } else {
                    SheetAction("Follow ${t.name}") { follow(t.handle, true) }
                }
            }
            if (!t.me) {
                rows += SheetAction("Report ${t.name}") {
                    menuDialog = reportReasonSheet(SafetyPresenter.reportTitle(t.name)) { c, reason -> c.reportMember(t.handle, reason, "") }
                }
                rows += SheetAction("Block ${t.name}", danger = true) {
                    // The server does the rest (docs/safety.md): out of rooms you moderate,
                    // follows gone, no invitations to speak from them.
                    menuDialog = confirmBlock(t.name, t.handle) {}
                }
            }
            rows += actions.map { a ->
                SheetAction(a.label, danger = a == ModeratorAction.REMOVE) {
                    if (a == ModeratorAction.REMOVE) {
                        dialog("Remove ${t.name}?", "They leave the room and can't come back.", "Remove", "Cancel") {
                            moderate(a, t.userId)
                        }
                    } else {
                        moderate(a, t.userId)
                    }
                }
            }
            menuDialog = sheet(t.name, "@${t.handle} · $role", avatar(t.initials, t.userId, 48, photoHash = t.avatar), rows)
        }
    }

    private fun follow(handle: String, on: Boolean) {
        ruang.background({ if (on) it.follow(handle) else it.unfollow(handle) }) { r ->
            r.onSuccess { p -> toast(if (on) "Following ${displayName(p.name, p.handle)}" else "Unfollowed ${displayName(p.name, p.handle)}") }
            r.onFailure { e -> toast(errorText(e)) }
        }
    }

    private fun moderate(a: ModeratorAction, userId: String) {
        ruang.rooms.command({ r ->
            when (a) {
                ModeratorAction.INVITE_TO_SPEAK -> r.inviteToSpeak(userId)
                ModeratorAction.MOVE_TO_AUDIENCE -> r.moveToAudience(userId)
                ModeratorAction.MUTE -> r.mute(userId)
                ModeratorAction.MAKE_MODERATOR -> r.makeModerator(userId)
                ModeratorAction.REMOVE -> r.remove(userId)
            }
        }, ::report)
    }

    /** The room menu: everyone's (clip, report), with the moderators' settings. */
    private fun roomMenu(@Suppress("UNUSED_PARAMETER") anchor: View) {
        val s = last ?: return
        val rows = E2eePresenter.roomMenu(RoomPresenter.roomMenu(s), ruang.rooms.e2ee).map { item ->
            SheetAction(item.label, danger = item.danger) {
                when (item) {
                    RoomMenuItem.HANDS_OFF, RoomMenuItem.HANDS_ON ->
                        ruang.rooms.command({ it.setHandsEnabled(item == RoomMenuItem.HANDS_ON) }, ::report)
                    RoomMenuItem.START_RECORDING, RoomMenuItem.STOP_RECORDING ->
                        ruang.rooms.command({ it.setRecording(item == RoomMenuItem.START_RECORDING) }, ::report)
                    RoomMenuItem.CLIP -> clip()
                    RoomMenuItem.LEAVE_STAGE -> ruang.rooms.command({ it.leaveStage() }, ::report)
                    RoomMenuItem.REPORT_ROOM -> {
                        val id = s.roomId
                        menuDialog = reportReasonSheet(SafetyPresenter.reportRoomTitle(s.title.ifBlank { "this room" })) { c, reason ->
                            c.reportRoom(id, reason, "")
                        }
                    }
                    RoomMenuItem.END_ROOM ->
                        dialog("End the room?", "Everyone leaves and the room closes.", "End room", "Cancel") {
                            ruang.rooms.command({ it.endRoom() }, ::report)
                        }
                }
            }
        }
        menuDialog = sheet(s.title.ifBlank { "This room" }, if (s.me?.role == Role.MODERATOR) "Room settings" else null, null, rows)
    }

    /** The clip link of the last shared clip (tests). */
    var lastClipUrl: String? = null
        private set

    /** Clips the last 30 s and opens the share sheet with the clip's page. */
    private fun clip() {
        val id = roomId ?: return
        toast("Clipping the last 30 seconds…")
        ruang.background({ it.clip(id) }) { r ->
            r.onSuccess { c ->
                lastClipUrl = c.url
                val send = Intent(Intent.ACTION_SEND).setType("text/plain")
                    .putExtra(Intent.EXTRA_SUBJECT, "A clip from ${last?.title ?: "a Ruang room"}")
                    .putExtra(Intent.EXTRA_TEXT, c.url)
                startActivity(Intent.createChooser(send, "Share the clip"))
            }
            r.onFailure { e ->
                val text = if (e is RuangException.NotFound) "Nobody spoke in the last 30 seconds: nothing to clip." else "Couldn't clip: ${errorText(e)}"
                alert("No clip", text)
            }
        }
    }

    private fun finishToHallway() {
        if (isTaskRoot) startActivity(Intent(this, HallwayActivity::class.java))
        finish()
    }

    companion object {
        const val EXTRA_ROOM_ID = "org.ruang.app.ROOM_ID"
        const val EXTRA_LINK_TOKEN = "org.ruang.app.LINK_TOKEN"
        const val EXTRA_LINK = "org.ruang.app.LINK"
        private const val STATE_MIC_ASKED = "mic_asked"
        private const val REQUEST_NOTIFICATIONS = 1
        private const val REQUEST_MIC = 2

        fun open(context: Context, roomId: String, linkToken: String?, link: String?): Intent =
            Intent(context, RoomActivity::class.java)
                .putExtra(EXTRA_ROOM_ID, roomId)
                .putExtra(EXTRA_LINK_TOKEN, linkToken)
                .putExtra(EXTRA_LINK, link)
    }
}

/**
 * The room's bottom bar. When the buttons' labels do not fit side by side (a small phone with
 * large text), "Leave quietly" becomes "Leave" (its content description stays the full label).
 */
class BottomBar(context: Context) : LinearLayout(context) {
    var leave: TextView? = null

    init {
        orientation = HORIZONTAL
        gravity = android.view.Gravity.CENTER_VERTICAL
    }

    override fun onMeasure(widthMeasureSpec: Int, heightMeasureSpec: Int) {
        val l = leave
        if (l != null && MeasureSpec.getMode(widthMeasureSpec) != MeasureSpec.UNSPECIFIED) {
            val available = MeasureSpec.getSize(widthMeasureSpec) - paddingLeft - paddingRight
            var need = 0f
            for (i in 0 until childCount) {
                val c = getChildAt(i) as? TextView ?: continue
                if (c.visibility == View.GONE) continue
                val lp = c.layoutParams as LayoutParams
                val text = if (c === l) LONG else c.text.toString()
                need += c.paint.measureText(text) + c.totalPaddingLeft + c.totalPaddingRight + lp.leftMargin + lp.rightMargin
            }
            val label = if (need <= available) LONG else SHORT
            if (l.text.toString() != label) l.text = label
        }
        super.onMeasure(widthMeasureSpec, heightMeasureSpec)
    }

    private companion object {
        const val LONG = "✌  Leave quietly"
        const val SHORT = "✌  Leave"
    }
}
