package org.ruang.app

import android.app.Activity
import android.content.Context
import android.content.Intent
import android.os.Bundle
import android.view.Gravity
import android.widget.LinearLayout
import org.ruang.app.presenter.DeepLink
import org.ruang.app.presenter.DeepLinks
import org.ruang.app.presenter.UpcomingCard
import org.ruang.app.presenter.UpcomingPresenter
import org.ruang.core.EventSummary
import org.ruang.core.RuangException

/**
 * A scheduled room (opened from `PUBLIC_URL/e/ID`, `ruang://e/ID`, a notification, search or
 * a profile): when (in the host's zone), what, who; "Notify me"; the host starts it (its
 * co-hosts become moderators) or cancels it; anyone joins it once it is live.
 */
class EventActivity : Activity() {
    private lateinit var column: LinearLayout
    private var eventId = ""
    var shown: EventSummary? = null
        private set

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        column = scaffold("Scheduled room")
        handle(intent)
    }

    override fun onNewIntent(intent: Intent) {
        super.onNewIntent(intent)
        setIntent(intent)
        handle(intent)
    }

    private fun handle(intent: Intent) {
        val fromLink = intent.action == Intent.ACTION_VIEW && intent.data != null
        eventId = intent.getStringExtra(EXTRA_EVENT_ID)
            ?: (DeepLinks.parse(intent.dataString, ruang.publicHost) as? DeepLink.Event)?.eventId
            ?: ""
        column.removeAllViews()
        if (eventId.isEmpty()) {
            column.addView(statusLine("That link doesn't lead to a scheduled room."), matchWrap())
            return
        }
        column.addView(statusLine("Loading…"), matchWrap())
        ruang.restoreSession { r ->
            r.onFailure { e ->
                if (e is RuangException.Unauthorized) {
                    // Sign up first; the link opens again afterwards.
                    val link = if (fromLink) intent.dataString!! else DeepLinks.eventLink(ruang.serverUrl, eventId)
                    startActivity(WelcomeActivity.forPendingLink(this, link))
                    finish()
                } else {
                    showError(e)
                }
            }
            r.onSuccess { load() }
        }
    }

    private fun load() {
        ruang.background({ it.event(eventId) }) { r ->
            r.onSuccess { render(it) }
            r.onFailure { showError(it) }
        }
    }

    private fun showError(e: Throwable) {
        column.removeAllViews()
        column.addView(statusLine(if (e is RuangException.NotFound) "This scheduled room doesn't exist." else errorText(e)), matchWrap())
    }

    private fun render(e: EventSummary) {
        shown = e
        val card: UpcomingCard = UpcomingPresenter.card(e)
        val c = colors
        column.removeAllViews()
        val status = when (e.status) {
            "live" -> "● LIVE NOW"
            "ended" -> "This room has ended"
            "cancelled" -> "Cancelled"
            else -> "🗓 ${card.whenLine}"
        }
        column.addView(label(status, TypeScale.BODY_LARGE, medium = true,
            color = when (e.status) { "live" -> c.speaking; "cancelled" -> c.error; else -> c.primary }).apply {
            setPadding(0, dp(Space.M), 0, dp(Space.S))
        }, matchWrap())
        column.addView(label(card.title, TypeScale.HEADLINE, bold = true, color = c.onSurface), matchWrap())
        if (e.status != "scheduled") {
            column.addView(label(card.whenLine, TypeScale.BODY, color = c.onSurfaceVariant), matchWrap())
        }
        val hosts = horizontal().apply { setPadding(0, dp(Space.L), 0, dp(Space.S)) }
        hosts.addView(avatar(card.host.initials, card.host.userId, 40, photoHash = card.host.avatar))
        hosts.addView(label(card.hostsLine, TypeScale.BODY_LARGE, color = c.onSurface).apply {
            setPadding(dp(Space.M), 0, 0, 0)
            isClickable = true
            setOnClickListener { startActivity(ProfileActivity.open(this@EventActivity, e.host.handle)) }
        }, weighted())
        column.addView(hosts, matchWrap())
        if (e.description.isNotBlank()) {
            column.addView(label(e.description.trim(), TypeScale.BODY_LARGE, color = c.onSurface).apply {
                setPadding(0, dp(Space.S), 0, dp(Space.S))
            }, matchWrap())
        }
        card.interestedLine?.let { column.addView(label(it, TypeScale.BODY, color = c.onSurfaceVariant), matchWrap()) }

        val buttons = vertical().apply { gravity = Gravity.CENTER_HORIZONTAL; setPadding(0, dp(Space.XL), 0, 0) }
        val isHost = e.host.id == ruang.profile?.id
        when (e.status) {
            "scheduled" -> {
                if (isHost) {
                    buttons.addView(button("▶  Start the room", ButtonStyle.FILLED, large = true) { start() }, matchWrap())
                }
                buttons.addView(button(card.notifyLabel, if (e.notifyMe) ButtonStyle.OUTLINED else ButtonStyle.TONAL, large = !isHost) { toggleNotify(e) }.apply {
                    contentDescription = (if (e.notifyMe) "Stop notifying me about " else "Notify me about ") + card.title
                }, matchWrap().margins(this, t = Space.S))
                if (isHost) {
                    buttons.addView(button("Cancel this room", ButtonStyle.TEXT) {
                        dialog("Cancel “${card.title}”?", "Everyone who asked to be notified is told.", "Cancel room", "Keep it") { cancel() }
                    }, matchWrap().margins(this, t = Space.S))
                }
            }
            "live" -> e.roomId?.let { room ->
                buttons.addView(button("🎧  Join the room", ButtonStyle.FILLED, large = true) {
                    startActivity(RoomActivity.open(this, room, null, null))
                }, matchWrap())
            }
        }
        buttons.addView(button("Share", ButtonStyle.TEXT) {
            val send = Intent(Intent.ACTION_SEND).setType("text/plain").putExtra(Intent.EXTRA_TEXT, e.link)
            startActivity(Intent.createChooser(send, "Share the scheduled room"))
        }, matchWrap().margins(this, t = Space.S))
        column.addView(buttons, matchWrap())
    }

    private fun toggleNotify(e: EventSummary) {
        ruang.background({ it.notifyEvent(e.id, !e.notifyMe) }) { r ->
            r.onSuccess { render(it) }
            r.onFailure { toast(errorText(it)) }
        }
    }

    private fun start() {
        val go = {
            ruang.background({ it.startEvent(eventId) }) { r ->
                r.onSuccess { room ->
                    val token = (DeepLinks.parse(room.link) as? DeepLink.Room)?.linkToken
                    startActivity(RoomActivity.open(this, room.id, token, room.link))
                    finish()
                }
                r.onFailure { toast(errorText(it)) }
            }
        }
        if (ruang.rooms.roomId != null) {
            dialog("Start the room?", "You will leave the room you are in.", "Start", "Cancel") {
                ruang.rooms.leave(quietly = true) { go() }
            }
        } else {
            go()
        }
    }

    private fun cancel() {
        ruang.background({ it.cancelEvent(eventId) }) { r ->
            r.onSuccess { load() }
            r.onFailure { toast(errorText(it)) }
        }
    }

    companion object {
        const val EXTRA_EVENT_ID = "org.ruang.app.EVENT_ID"

        fun open(context: Context, eventId: String): Intent =
            Intent(context, EventActivity::class.java).putExtra(EXTRA_EVENT_ID, eventId)
    }
}
