package org.ruang.app

import android.app.Activity
import android.app.AlertDialog
import android.content.Context
import android.graphics.Color
import android.graphics.Typeface
import android.graphics.drawable.GradientDrawable
import android.view.Gravity
import android.view.View
import android.view.ViewGroup
import android.widget.Button
import android.widget.LinearLayout
import android.widget.TextView
import android.widget.Toast
import org.ruang.core.RuangException
import kotlin.math.roundToInt

// Screens are built in code with framework Views (no XML layouts, no R class).

object Palette {
    const val BACKGROUND = 0xFFF2EFE4.toInt() // warm paper, Clubhouse-like
    const val CARD = Color.WHITE
    const val TEXT = 0xFF1E1E1E.toInt()
    const val MUTED_TEXT = 0xFF6E6A60.toInt()
    const val ACCENT = 0xFF2E7D5B.toInt()
    const val DANGER = 0xFFC62828.toInt()
    const val BANNER = 0xFFFFF3C4.toInt()
}

fun Context.dp(v: Int): Int = (v * resources.displayMetrics.density).roundToInt()
fun Context.dpf(v: Float): Float = v * resources.displayMetrics.density

fun Context.label(text: String = "", sizeSp: Float = 16f, bold: Boolean = false, color: Int = Palette.TEXT): TextView =
    TextView(this).apply {
        this.text = text
        textSize = sizeSp
        setTextColor(color)
        if (bold) typeface = Typeface.DEFAULT_BOLD
    }

fun Context.button(text: String, onClick: (View) -> Unit): Button =
    Button(this).apply {
        this.text = text
        setAllCaps(false)
        setOnClickListener(onClick)
    }

fun Context.vertical(padding: Int = 0): LinearLayout = LinearLayout(this).apply {
    orientation = LinearLayout.VERTICAL
    setPadding(dp(padding), dp(padding), dp(padding), dp(padding))
}

fun Context.horizontal(): LinearLayout = LinearLayout(this).apply {
    orientation = LinearLayout.HORIZONTAL
    gravity = Gravity.CENTER_VERTICAL
}

fun Context.rounded(color: Int, radiusDp: Int = 16): GradientDrawable = GradientDrawable().apply {
    setColor(color)
    cornerRadius = dpf(radiusDp.toFloat())
}

fun matchWrap(): LinearLayout.LayoutParams =
    LinearLayout.LayoutParams(ViewGroup.LayoutParams.MATCH_PARENT, ViewGroup.LayoutParams.WRAP_CONTENT)

fun weighted(): LinearLayout.LayoutParams =
    LinearLayout.LayoutParams(0, ViewGroup.LayoutParams.WRAP_CONTENT, 1f)

fun Activity.toast(text: String) = Toast.makeText(this, text, Toast.LENGTH_SHORT).show()

fun Activity.alert(title: String, message: String, onOk: (() -> Unit)? = null) {
    if (isFinishing) return
    AlertDialog.Builder(this)
        .setTitle(title)
        .setMessage(message)
        .setPositiveButton(android.R.string.ok) { _, _ -> onOk?.invoke() }
        .setOnCancelListener { onOk?.invoke() }
        .show()
}

/** A sentence for an error from the core. */
fun errorText(e: Throwable): String = when (e) {
    is RuangException.Network -> "Can't reach the server. Check your connection and try again."
    is RuangException.Unauthorized -> "Your session has expired. Please sign in again."
    is RuangException.Forbidden -> when (e.code) {
        "hands_disabled" -> "The moderators turned raised hands off."
        "room_closed" -> "This room is closed. You need its link to join."
        "removed_from_room" -> "A moderator removed you from this room."
        "last_moderator" -> "A room needs a moderator on stage."
        "rate_limited" -> "Too many attempts. Wait a moment and try again."
        else -> e.detail.ifBlank { "That is not allowed." }
    }
    is RuangException.NotFound -> when (e.code) {
        "room_ended" -> "This room has ended."
        else -> e.detail.ifBlank { "Not found." }
    }
    is RuangException.InvalidInput -> when (e.code) {
        "invalid_invite" -> "That invite code is not valid or was already used."
        "handle_taken" -> "That handle is taken. Try another one."
        "invalid_handle" -> "Handles use letters, digits and underscores."
        else -> e.detail.ifBlank { "Please check what you entered." }
    }
    is RuangException.Server -> "The server had a problem. Try again later."
    is UnsatisfiedLinkError -> "The Ruang core library is missing from this build."
    else -> e.message ?: e.toString()
}
