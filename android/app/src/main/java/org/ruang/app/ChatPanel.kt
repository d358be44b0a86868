package org.ruang.app

import android.content.Context
import android.text.SpannableString
import android.text.Spanned
import android.text.method.LinkMovementMethod
import android.text.style.StyleSpan
import android.text.style.URLSpan
import android.view.Gravity
import android.view.View
import android.view.inputmethod.EditorInfo
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.TextView
import org.ruang.app.presenter.ChatLine
import org.ruang.app.presenter.ChatPresenter
import org.ruang.app.presenter.ChatScreenState

/**
 * The room's reaction bar and chat: reactions anyone may send, the latest messages (text
 * only, links as URL spans built from the server's ranges), and a send box for members.
 * Renders [ChatScreenState]; every tap goes to a callback.
 */
class ChatPanel(context: Context, reactions: List<Pair<String, String>>) : LinearLayout(context) {
    var onReact: (String) -> Unit = {}
    var onSend: (String) -> Unit = {}
    var onLineLongPress: (ChatLine) -> Unit = {}
    var onSettings: () -> Unit = {}

    private val c = context.colors
    /** Two rows of four, so every button keeps 48 dp on a 360 dp screen. */
    val reactionBar: LinearLayout = context.vertical()
    private val header = context.horizontal()
    private val settingsButton = context.iconButton("⚙", "Chat settings") { onSettings() }
    private val lines = context.vertical()
    private val note = context.label("", TypeScale.BODY, color = c.onSurfaceVariant)
    private val sendRow = context.horizontal()
    val input: EditText = context.field("Say something", View.generateViewId()).apply {
        imeOptions = EditorInfo.IME_ACTION_SEND
        filters = arrayOf(android.text.InputFilter.LengthFilter(ChatPresenter.MAX_CHARS))
        setOnEditorActionListener { _, action, _ -> if (action == EditorInfo.IME_ACTION_SEND) { send(); true } else false }
    }
    private val sendButton = context.button("Send", ButtonStyle.FILLED) { send() }

    init {
        orientation = VERTICAL
        for (row in reactions.chunked(4)) {
            val line = context.horizontal()
            for ((name, emoji) in row) {
                line.addView(context.button(emoji, ButtonStyle.TONAL) { onReact(name) }.apply {
                    contentDescription = "React " + name.replace('_', ' ')
                    minWidth = context.dp(48)
                    minimumWidth = context.dp(48)
                    setPadding(0, 0, 0, 0)
                }, weighted().margins(context, l = Space.XS / 2, r = Space.XS / 2, b = Space.XS))
            }
            reactionBar.addView(line, matchWrap())
        }
        addView(reactionBar, matchWrap().margins(context, b = Space.S))
        header.addView(context.label("Chat", TypeScale.LABEL, color = c.onSurfaceVariant, medium = true).apply {
            gravity = Gravity.CENTER_VERTICAL
            setPadding(context.dp(Space.S), 0, 0, 0)
        }, weighted())
        header.addView(settingsButton)
        addView(header, matchWrap())
        addView(lines, matchWrap())
        note.setPadding(context.dp(Space.S), context.dp(Space.XS), context.dp(Space.S), context.dp(Space.XS))
        addView(note, matchWrap())
        sendRow.addView(input, weighted())
        sendRow.addView(sendButton, wrap().margins(context, l = Space.S))
        addView(sendRow, matchWrap().margins(context, t = Space.S))
    }

    private fun send() {
        val text = input.text.toString()
        val problem = ChatPresenter.problem(text)
        if (problem != null) {
            input.error = problem
            return
        }
        onSend(text.trim())
        input.setText("")
    }

    /** The latest lines shown (older ones stay in the core's history). */
    private val shownMax = 30

    fun render(st: ChatScreenState) {
        reactionBar.visibility = if (st.reactionsEnabled) View.VISIBLE else View.GONE
        settingsButton.visibility = if (st.moderator) View.VISIBLE else View.GONE
        lines.removeAllViews()
        for (line in st.lines.takeLast(shownMax)) lines.addView(lineView(line), matchWrap())
        note.text = st.note ?: ""
        note.visibility = if (st.note == null) View.GONE else View.VISIBLE
        sendRow.visibility = if (st.canPost) View.VISIBLE else View.GONE
    }

    private fun lineView(line: ChatLine): TextView {
        val who = line.author + "  "
        val text = SpannableString(who + line.text)
        text.setSpan(StyleSpan(android.graphics.Typeface.BOLD), 0, line.author.length, Spanned.SPAN_EXCLUSIVE_EXCLUSIVE)
        for (l in line.links) {
            text.setSpan(URLSpan(l.url), who.length + l.start, who.length + l.end, Spanned.SPAN_EXCLUSIVE_EXCLUSIVE)
        }
        return context.label("", TypeScale.BODY, color = c.onSurface).apply {
            setText(text, TextView.BufferType.SPANNABLE)
            tag = line.id
            setLinkTextColor(c.primary)
            if (line.links.isNotEmpty()) movementMethod = LinkMovementMethod.getInstance()
            setPadding(context.dp(Space.S), context.dp(Space.XS), context.dp(Space.S), context.dp(Space.XS))
            contentDescription = "${line.author}: ${line.text}"
            // Long-press: report someone else's message, delete one you may delete.
            if (line.canDelete || !line.mine) {
                minHeight = context.dp(48)
                gravity = Gravity.CENTER_VERTICAL
                setOnLongClickListener { onLineLongPress(line); true }
            }
        }
    }
}
