package org.ruang.app

import android.app.Activity
import android.content.Context
import android.content.Intent
import android.os.Bundle
import android.view.Gravity
import android.view.View
import android.widget.FrameLayout
import android.widget.LinearLayout
import org.ruang.app.presenter.DeepLink
import org.ruang.app.presenter.NotificationRow
import org.ruang.app.presenter.NotificationsPresenter
import org.ruang.core.NotificationPage

/**
 * The notification feed (`GET /v1/notifications`), newest first, a page at a time ("Show
 * older"). Unread rows are marked until the screen has been shown; then the read marker moves
 * to the newest one seen. A tap opens the room, the event or the person.
 */
class NotificationsActivity : Activity() {
    private lateinit var column: LinearLayout
    private lateinit var list: LinearLayout
    private var rows: List<NotificationRow> = emptyList()
    private var next: String? = null
    private var marker = 0L
    /** What the server last confirmed as read (tests). */
    @Volatile var markedUpTo = 0L
        private set

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        column = scaffold("Notifications")
        list = vertical()
        column.addView(list, matchWrap())
        list.addView(statusLine("Loading…"), matchWrap())
        ruang.restoreSession { r ->
            r.onFailure { e ->
                list.removeAllViews()
                list.addView(statusLine(errorText(e)), matchWrap())
            }
            r.onSuccess { load(null) }
        }
    }

    private fun load(cursor: String?) {
        val size = intent.getIntExtra(EXTRA_PAGE_SIZE, PAGE).coerceIn(1, 100).toUInt()
        ruang.background({ it.notifications(cursor, size) }) { r ->
            r.onSuccess { page -> add(page, first = cursor == null) }
            r.onFailure { e ->
                if (cursor == null) {
                    list.removeAllViews()
                    list.addView(statusLine(errorText(e)), matchWrap())
                } else {
                    toast(errorText(e))
                }
            }
        }
    }

    private fun add(page: NotificationPage, first: Boolean) {
        val now = System.currentTimeMillis()
        val fresh = page.notifications.map { NotificationsPresenter.row(it, now, ruang.publicHost) }
        rows = if (first) fresh else NotificationsPresenter.merge(rows, fresh)
        next = page.nextCursor
        if (first) marker = page.readUpTo
        render()
        // Shown: everything up to the newest is read now (the dots stay until the next visit).
        NotificationsPresenter.readUpTo(rows, marker)?.let { upTo ->
            marker = upTo
            ruang.background({ it.markNotificationsRead(upTo) }) { r -> if (r.isSuccess) markedUpTo = upTo }
        }
    }

    private fun render() {
        list.removeAllViews()
        if (rows.isEmpty()) {
            list.addView(emptyState("🔔", "Nothing yet", "When people you follow start or schedule rooms, you'll see it here."), matchWrap())
            return
        }
        for (row in rows) list.addView(rowView(row), matchWrap())
        next?.let { cursor ->
            list.addView(button("Show older", ButtonStyle.TONAL) { b -> b.isEnabled = false; load(cursor) },
                wrap().margins(this, t = Space.M).apply { gravity = Gravity.CENTER_HORIZONTAL })
        }
    }

    private fun rowView(n: NotificationRow): View {
        val c = colors
        val row = horizontal().apply {
            setPadding(dp(Space.S), dp(Space.M), dp(Space.S), dp(Space.M))
            background = ripple(if (n.unread) rounded(c.primaryContainer and 0x66FFFFFF, 12) else null, 12, c.onSurface)
            isClickable = true
            contentDescription = (if (n.unread) "Unread: " else "") + n.text + ", " + n.age
            setOnClickListener { open(n) }
        }
        val face = n.face
        if (face != null) {
            row.addView(avatar(face.initials, face.userId, 44, photoHash = face.avatar))
        } else {
            row.addView(FrameLayout(this).apply {
                background = rounded(c.surfaceVariant, 100)
                addView(label(n.glyph, 20f).apply { gravity = Gravity.CENTER },
                    FrameLayout.LayoutParams(FrameLayout.LayoutParams.MATCH_PARENT, FrameLayout.LayoutParams.MATCH_PARENT))
            }, LinearLayout.LayoutParams(dp(44), dp(44)))
        }
        row.addView(label(n.text, TypeScale.BODY_LARGE, color = c.onSurface, medium = n.unread).apply {
            setPadding(dp(Space.M), 0, dp(Space.S), 0)
            ellipsizeEnd(3)
        }, weighted())
        row.addView(label(n.age, TypeScale.CAPTION, color = c.onSurfaceVariant))
        return row
    }

    private fun open(n: NotificationRow) {
        val link = rows.firstOrNull { it.id == n.id } ?: return
        when (val t = link.target) {
            is DeepLink.Room -> startActivity(RoomActivity.open(this, t.roomId, t.linkToken, null))
            is DeepLink.Event -> startActivity(EventActivity.open(this, t.eventId))
            is DeepLink.Profile -> startActivity(ProfileActivity.open(this, t.handle))
            else -> Unit
        }
    }

    companion object {
        const val PAGE = 30
        /** Rows per page (tests use a small one to see the paging). */
        const val EXTRA_PAGE_SIZE = "org.ruang.app.PAGE_SIZE"

        fun open(context: Context): Intent = Intent(context, NotificationsActivity::class.java)
    }
}
