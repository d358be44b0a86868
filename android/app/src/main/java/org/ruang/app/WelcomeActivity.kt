package org.ruang.app

import android.app.Activity
import android.content.Context
import android.content.Intent
import android.os.Bundle
import android.text.InputType
import android.view.View
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import org.ruang.app.presenter.DeepLinks
import org.ruang.core.RuangException

/**
 * The launcher. Restores the session if there is one (then goes to the hallway, or to the room
 * link that opened the app); otherwise sign-up with an invite code or invite link.
 */
class WelcomeActivity : Activity() {
    private lateinit var form: View
    private lateinit var status: TextView
    private lateinit var server: EditText
    private lateinit var invite: EditText
    private lateinit var inviter: TextView
    private lateinit var handle: EditText
    private lateinit var name: EditText
    private var busy = false

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        buildUi()
        intent.getStringExtra(EXTRA_INVITE_CODE)?.let { invite.setText(it) }
        if (savedInstanceState == null && intent.getStringExtra(EXTRA_INVITE_CODE) == null) {
            tryRestore()
        } else {
            showForm(null)
        }
    }

    override fun onNewIntent(intent: Intent) {
        super.onNewIntent(intent)
        setIntent(intent)
        intent.getStringExtra(EXTRA_INVITE_CODE)?.let { invite.setText(it) }
    }

    private fun buildUi() {
        val c = colors
        val root = vertical(Space.XL).apply { setBackgroundColor(c.background) }

        // Brand: a mark of three overlapping voices and the wordmark.
        val brand = horizontal().apply { setPadding(0, dp(Space.L), 0, dp(Space.XL)) }
        brand.addView(BrandMark(this), LinearLayout.LayoutParams(dp(56), dp(40)))
        brand.addView(label("Ruang", TypeScale.HEADLINE, bold = true, color = c.onSurface).apply {
            setPadding(dp(Space.M), 0, 0, 0)
        })
        root.addView(brand)
        root.addView(label("Live audio rooms with the people you like.", TypeScale.DISPLAY * 0.83f, color = c.onSurface).apply {
            typeface = MEDIUM
            setLineSpacing(0f, 1.05f)
        }, matchWrap())
        root.addView(label("Drop in, listen, raise your hand to talk. Invite only for now.", TypeScale.BODY_LARGE,
            color = c.onSurfaceVariant).apply { setPadding(0, dp(Space.M), 0, 0) }, matchWrap())
        status = label("", TypeScale.BODY, color = c.onSurfaceVariant).apply {
            setPadding(0, dp(Space.XL), 0, dp(Space.M))
            id = ID_STATUS
        }
        root.addView(status, matchWrap())

        val f = card(Space.L)
        invite = field("Invite code or invite link", ID_INVITE)
        inviter = label("", TypeScale.BODY, color = c.primary, medium = true).apply {
            setPadding(dp(Space.XS), dp(Space.S), 0, 0)
            id = ID_INVITER
            visibility = View.GONE
        }
        handle = field("Handle (letters, digits, _)", ID_HANDLE)
        name = field("Your name", ID_NAME)
        server = field("Server address", ID_SERVER).apply {
            inputType = InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_VARIATION_URI
            setText(ruang.serverUrl)
        }
        f.addView(label("Your invite", TypeScale.LABEL, color = c.onSurface, medium = true), matchWrap().margins(this, b = Space.S))
        val inviteRow = horizontal()
        inviteRow.addView(invite, weighted())
        inviteRow.addView(button("Check", ButtonStyle.TONAL) { checkInvite() }.apply {
            contentDescription = "Check invite"
        }, wrap().margins(this, l = Space.S))
        f.addView(inviteRow, matchWrap())
        f.addView(inviter, matchWrap())
        f.addView(label("About you", TypeScale.LABEL, color = c.onSurface, medium = true), matchWrap().margins(this, t = Space.L, b = Space.S))
        f.addView(handle, matchWrap())
        f.addView(name, matchWrap().margins(this, t = Space.S))
        f.addView(button("Join Ruang", ButtonStyle.FILLED, large = true) { signUp() }, matchWrap().margins(this, t = Space.L))
        root.addView(f, matchWrap())
        root.addView(label("Server (the operator's address)", TypeScale.CAPTION, color = c.onSurfaceVariant).apply {
            setPadding(dp(Space.XS), dp(Space.XL), 0, dp(Space.S))
        }, matchWrap())
        root.addView(server, matchWrap())
        form = f
        setContentView(ScrollView(this).apply {
            isFillViewport = true
            isVerticalScrollBarEnabled = false
            setBackgroundColor(c.background)
            addView(root)
        })
    }

    private fun applyServer() {
        val url = server.text.toString().trim()
        if (url.isNotEmpty()) ruang.serverUrl = url
    }

    private fun tryRestore() {
        if (!ruang.tokens.hasToken()) return showForm(null)
        form.visibility = View.GONE
        status.text = "Signing in…"
        ruang.restoreSession { r ->
            r.onSuccess { goOn() }
            r.onFailure { e ->
                if (e is RuangException.Unauthorized) {
                    showForm("Please sign in again.")
                } else {
                    status.text = errorText(e)
                    form.visibility = View.GONE
                    status.setOnClickListener { status.setOnClickListener(null); tryRestore() }
                    status.append("\nTap to retry.")
                }
            }
        }
    }

    private fun showForm(message: String?) {
        form.visibility = View.VISIBLE
        status.text = message ?: "Enter the invite code a friend sent you, or paste their invite link."
    }

    private fun checkInvite() {
        applyServer()
        val code = DeepLinks.inviteCodeFrom(invite.text.toString(), ruang.publicHost)
        if (code.isEmpty()) return toast("Enter an invite code first")
        ruang.background({ it.checkInvite(code) }) { r ->
            inviter.visibility = View.VISIBLE
            inviter.setTextColor(if (r.isSuccess) colors.primary else colors.error)
            inviter.text = r.fold(
                { u -> if (u != null) "Invited by ${u.name.ifBlank { u.handle }}" else "This code is valid." },
                { errorText(it) },
            )
        }
    }

    private fun signUp() {
        if (busy) return
        applyServer()
        val code = DeepLinks.inviteCodeFrom(invite.text.toString(), ruang.publicHost)
        val h = handle.text.toString().trim().trimStart('@')
        val n = name.text.toString().trim()
        if (code.isEmpty() || h.isEmpty()) return toast("An invite code and a handle are needed")
        busy = true
        status.setTextColor(colors.onSurfaceVariant)
        status.text = "Creating your account…"
        ruang.signUp(code, h, n.ifEmpty { h }) { r ->
            busy = false
            r.onSuccess { goOn() }
            r.onFailure {
                status.setTextColor(colors.error)
                status.text = errorText(it)
            }
        }
    }

    /** Signed in: the room link that opened the app, or the hallway. */
    private fun goOn() {
        val pending = intent.getStringExtra(EXTRA_PENDING_LINK)
        startActivity(Intent(this, HallwayActivity::class.java))
        if (pending != null) {
            startActivity(Intent(this, RoomActivity::class.java).setAction(Intent.ACTION_VIEW).setData(android.net.Uri.parse(pending)))
        }
        finish()
    }

    companion object {
        const val EXTRA_INVITE_CODE = "org.ruang.app.INVITE_CODE"
        /** A room link to open once signed in. */
        const val EXTRA_PENDING_LINK = "org.ruang.app.PENDING_LINK"

        const val ID_STATUS = 0x7f0a0001
        const val ID_INVITE = 0x7f0a0002
        const val ID_INVITER = 0x7f0a0003
        const val ID_HANDLE = 0x7f0a0004
        const val ID_NAME = 0x7f0a0005
        const val ID_SERVER = 0x7f0a0006

        fun forInvite(context: Context, code: String) =
            Intent(context, WelcomeActivity::class.java).putExtra(EXTRA_INVITE_CODE, code)

        fun forPendingLink(context: Context, link: String) =
            Intent(context, WelcomeActivity::class.java).putExtra(EXTRA_PENDING_LINK, link)
    }
}
