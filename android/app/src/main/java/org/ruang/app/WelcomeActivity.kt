package org.ruang.app

import android.app.Activity
import android.content.Context
import android.content.Intent
import android.os.Bundle
import android.text.InputType
import android.view.View
import android.widget.EditText
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
        val root = vertical(24).apply { setBackgroundColor(Palette.BACKGROUND) }
        root.addView(label("Ruang", 32f, bold = true))
        root.addView(label("Live audio rooms. Invite only for now.", 16f, color = Palette.MUTED_TEXT))
        status = label("", 15f, color = Palette.MUTED_TEXT).apply { setPadding(0, dp(16), 0, dp(8)) }
        root.addView(status)

        val f = vertical()
        invite = field("Invite code or invite link")
        inviter = label("", 14f, color = Palette.ACCENT)
        handle = field("Handle (letters, digits, _)")
        name = field("Your name")
        server = field("Server").apply {
            inputType = InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_VARIATION_URI
            setText(ruang.serverUrl)
        }
        f.addView(invite, matchWrap())
        f.addView(button("Check invite") { checkInvite() })
        f.addView(inviter)
        f.addView(handle, matchWrap())
        f.addView(name, matchWrap())
        f.addView(button("Join Ruang") { signUp() }, matchWrap())
        f.addView(label("Server (the operator's address)", 13f, color = Palette.MUTED_TEXT).apply {
            setPadding(0, dp(24), 0, 0)
        })
        f.addView(server, matchWrap())
        form = f
        root.addView(f, matchWrap())
        setContentView(ScrollView(this).apply {
            isFillViewport = true
            setBackgroundColor(Palette.BACKGROUND)
            addView(root)
        })
    }

    private fun field(hint: String) = EditText(this).apply {
        this.hint = hint
        setSingleLine(true)
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
        status.text = message ?: "Enter the invite code a friend sent you, or open their invite link."
    }

    private fun checkInvite() {
        applyServer()
        val code = DeepLinks.inviteCodeFrom(invite.text.toString(), ruang.publicHost)
        if (code.isEmpty()) return toast("Enter an invite code first")
        ruang.background({ it.checkInvite(code) }) { r ->
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
        status.text = "Creating your account…"
        ruang.signUp(code, h, n.ifEmpty { h }) { r ->
            busy = false
            r.onSuccess { goOn() }
            r.onFailure { status.text = errorText(it) }
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

        fun forInvite(context: Context, code: String) =
            Intent(context, WelcomeActivity::class.java).putExtra(EXTRA_INVITE_CODE, code)

        fun forPendingLink(context: Context, link: String) =
            Intent(context, WelcomeActivity::class.java).putExtra(EXTRA_PENDING_LINK, link)
    }
}
