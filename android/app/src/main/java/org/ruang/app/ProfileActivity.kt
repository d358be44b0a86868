package org.ruang.app

import android.app.Activity
import android.app.Dialog
import android.content.Context
import android.content.Intent
import android.os.Bundle
import android.view.Gravity
import android.widget.Button
import android.widget.LinearLayout
import org.ruang.app.presenter.DeepLink
import org.ruang.app.presenter.DeepLinks
import org.ruang.app.presenter.ProfilePresenter
import org.ruang.app.presenter.ProfileScreen
import org.ruang.app.presenter.ReplayPresenter
import org.ruang.app.presenter.SafetyPresenter
import org.ruang.app.presenter.face
import org.ruang.core.Profile
import org.ruang.core.ReplayView
import org.ruang.core.RuangException

/**
 * A person: photo, name, handle, bio, links, follower / following counts (tap for the
 * lists), who invited them, the rooms they host now and next; follow or unfollow. Opened
 * from stage tiles, search, notifications and `ruang://u/HANDLE` links.
 */
class ProfileActivity : Activity() {
    private lateinit var column: LinearLayout
    private var handle: String = ""
    var shown: ProfileScreen? = null
        private set
    /** The follower / following list while it shows (tests). */
    var listDialog: Dialog? = null
        private set
    /** The replays of rooms they hosted that you may see (null until loaded). */
    var replays: List<ReplayView>? = null
        private set
    private var lastProfile: Profile? = null
    /** Whether this member was blocked from here (the server keeps the block). */
    var blocked = false
        private set

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        column = scaffold("Profile")
        handle = intent.getStringExtra(EXTRA_HANDLE)
            ?: (DeepLinks.parse(intent.dataString, ruang.publicHost) as? DeepLink.Profile)?.handle
            ?: ""
        if (handle.isEmpty()) {
            column.addView(statusLine("That link doesn't lead to a profile."), matchWrap())
            return
        }
        column.addView(statusLine("Loading…"), matchWrap())
        load()
    }

    private fun load() {
        ruang.restoreSession { r ->
            r.onFailure { e -> signInFirst(e) }
            r.onSuccess {
                ruang.background({ it.profile(handle) }) { p ->
                    p.onSuccess { render(it); loadReplays() }
                    p.onFailure { e -> showError(e) }
                }
            }
        }
    }

    private fun loadReplays() {
        ruang.background({ it.userReplays(handle) }) { r ->
            if (isFinishing) return@background
            // A failure leaves the section out: the profile itself loaded.
            r.onSuccess { list -> replays = list; lastProfile?.let { render(it) } }
        }
    }

    private fun signInFirst(e: Throwable) {
        if (e is RuangException.Unauthorized) {
            startActivity(Intent(this, WelcomeActivity::class.java))
            finish()
        } else {
            showError(e)
        }
    }

    private fun showError(e: Throwable) {
        column.removeAllViews()
        column.addView(statusLine(if (e is RuangException.NotFound) "No one has that handle." else errorText(e)), matchWrap())
    }

    private fun render(p: Profile) {
        val s = ProfilePresenter.present(p, ruang.profile?.id)
        shown = s
        lastProfile = p
        val c = colors
        column.removeAllViews()
        val head = vertical().apply { gravity = Gravity.CENTER_HORIZONTAL; setPadding(0, dp(Space.M), 0, dp(Space.M)) }
        head.addView(bigFace(s.face), LinearLayout.LayoutParams(dp(96), dp(96)))
        head.addView(label(s.name, TypeScale.HEADLINE, bold = true, color = c.onSurface).apply {
            gravity = Gravity.CENTER; setPadding(0, dp(Space.M), 0, 0)
        }, matchWrap())
        head.addView(label(s.handle, TypeScale.BODY_LARGE, color = c.onSurfaceVariant).apply { gravity = Gravity.CENTER }, matchWrap())
        val counts = horizontal().apply { gravity = Gravity.CENTER; setPadding(0, dp(Space.S), 0, 0) }
        counts.addView(button(s.followersLine, ButtonStyle.TEXT) { showList(following = false) }.apply {
            contentDescription = "${s.followersLine}: show them"
        })
        counts.addView(button(s.followingLine, ButtonStyle.TEXT) { showList(following = true) }.apply {
            contentDescription = "${s.followingLine}: show them"
        })
        head.addView(counts, matchWrap())
        if (!s.isMe) {
            head.addView(followButton(s), wrap().margins(this, t = Space.S))
            head.addView(safetyRow(s), wrap().margins(this, t = Space.XS))
        }
        column.addView(head, matchWrap())
        s.bio?.let { column.addView(label(it, TypeScale.BODY_LARGE, color = c.onSurface).apply { setPadding(0, dp(Space.S), 0, dp(Space.S)) }, matchWrap()) }
        for ((text, url) in s.links) {
            column.addView(label("🔗 $text", TypeScale.BODY_LARGE, color = c.primary).apply {
                minHeight = dp(48); gravity = Gravity.CENTER_VERTICAL
                isClickable = true
                background = ripple(null, 8, c.primary)
                contentDescription = "Link: $text"
                setOnClickListener { openWeb(url) }
            }, matchWrap())
        }
        s.invitedBy?.let { line ->
            column.addView(label("🌱 $line", TypeScale.BODY, color = c.onSurfaceVariant).apply {
                minHeight = dp(48); gravity = Gravity.CENTER_VERTICAL
                isClickable = true
                background = ripple(null, 8, c.onSurface)
                setOnClickListener { s.invitedByHandle?.let { h -> startActivity(open(this@ProfileActivity, h)) } }
            }, matchWrap())
        }
        if (s.hostingNow.isNotEmpty()) {
            column.addView(sectionTitle("Hosting now"), matchWrap())
            for (r in s.hostingNow) column.addView(roomRow(r), matchWrap().margins(this, b = Space.S))
        }
        if (s.upcoming.isNotEmpty()) {
            column.addView(sectionTitle("Upcoming"), matchWrap())
            for (e in s.upcoming) column.addView(eventRow(e), matchWrap().margins(this, b = Space.S))
        }
        replays?.takeIf { it.isNotEmpty() }?.let { list ->
            column.addView(sectionTitle("Replays"), matchWrap())
            for (r in list) column.addView(replayRow(r), matchWrap().margins(this, b = Space.S))
        }
        if (s.hostingNow.isEmpty() && s.upcoming.isEmpty() && replays.isNullOrEmpty()) {
            column.addView(label("No rooms live or scheduled.", TypeScale.BODY, color = c.onSurfaceVariant).apply {
                setPadding(0, dp(Space.L), 0, 0)
            }, matchWrap())
        }
    }

    /** A replay: ▶, its title, date and length; opens the replay screen. */
    private fun replayRow(r: ReplayView): LinearLayout {
        val c = colors
        val row = horizontal().apply {
            setPadding(dp(Space.S), dp(Space.S), dp(Space.S), dp(Space.S))
            minimumHeight = dp(56)
            background = ripple(rounded(c.surfaceVariant, 16), 16, c.onSurface)
            isClickable = true
            contentDescription = "Play the replay of ${r.title}"
            setOnClickListener { startActivity(ReplayActivity.open(this@ProfileActivity, r.roomId, null)) }
        }
        row.addView(label("▶", TypeScale.TITLE, color = c.primary).apply { setPadding(dp(Space.S), 0, dp(Space.M), 0) })
        val texts = vertical()
        texts.addView(label(r.title.ifBlank { "Room" }, TypeScale.BODY_LARGE, color = c.onSurface, medium = true).ellipsizeEnd())
        texts.addView(label(ReplayPresenter.listLine(r), TypeScale.BODY, color = c.onSurfaceVariant).ellipsizeEnd())
        row.addView(texts, weighted())
        return row
    }

    private fun followButton(s: ProfileScreen): Button =
        button(s.followLabel, if (s.following) ButtonStyle.OUTLINED else ButtonStyle.FILLED) { b ->
            b.isEnabled = false
            ruang.background({ if (s.following) it.unfollow(handle) else it.follow(handle) }) { r ->
                r.onSuccess { render(it) }
                r.onFailure { e -> b.isEnabled = true; toast(errorText(e)) }
            }
        }.apply { contentDescription = (if (s.following) "Unfollow " else "Follow ") + s.name }

    /** Block / Report (docs/safety.md): the server enforces the block; the reason picker is a sheet. */
    private fun safetyRow(s: ProfileScreen): LinearLayout {
        val a = SafetyPresenter.actions(s.name, blocked)
        val row = horizontal().apply { gravity = Gravity.CENTER }
        row.addView(button(a.blockLabel, ButtonStyle.TEXT) { toggleBlock(s) }.apply { contentDescription = a.blockDescription })
        row.addView(button(a.reportLabel, ButtonStyle.TEXT) { reportSheet(s) }.apply { contentDescription = a.reportDescription })
        return row
    }

    private fun toggleBlock(s: ProfileScreen) {
        if (blocked) {
            ruang.background({ it.unblock(handle) }) { r ->
                r.onSuccess { blocked = false; toast(SafetyPresenter.unblockedToast(s.name)); load() }
                r.onFailure { e -> toast(errorText(e)) }
            }
            return
        }
        confirmBlock(s.name, handle) { blocked = true; load() }
    }

    /** The reason picker; picking one files the report. */
    private fun reportSheet(s: ProfileScreen) {
        listDialog = reportReasonSheet(SafetyPresenter.reportTitle(s.name)) { c, reason -> c.reportMember(handle, reason, "") }
    }

    /** Followers or following, 50 at a time ("More" loads the next page). */
    private fun showList(following: Boolean, cursor: String? = null, before: List<org.ruang.core.UserSummary> = emptyList()) {
        ruang.background({ it.followList(handle, following, cursor) }) { r ->
            r.onFailure { e -> toast(errorText(e)) }
            r.onSuccess { page ->
                if (isFinishing) return@onSuccess
                val users = before + page.users
                val title = if (following) "Following" else "Followers"
                if (users.isEmpty()) return@onSuccess alert(title, if (following) "Not following anyone yet." else "No followers yet.")
                val rows = users.map { u ->
                    val f = face(u)
                    SheetAction("${f.name}  @${u.handle}") { startActivity(open(this, u.handle)) }
                }.toMutableList()
                page.nextCursor?.let { next -> rows += SheetAction("More…") { showList(following, next, users) } }
                listDialog = sheet(title, shown?.name, null, rows)
            }
        }
    }

    companion object {
        const val EXTRA_HANDLE = "org.ruang.app.HANDLE"

        fun open(context: Context, handle: String): Intent =
            Intent(context, ProfileActivity::class.java).putExtra(EXTRA_HANDLE, handle)

    }
}
