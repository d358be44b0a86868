package org.ruang.app

import android.app.Activity
import android.app.Dialog
import android.content.Context
import android.content.res.ColorStateList
import android.content.res.Configuration
import android.graphics.Bitmap
import android.graphics.BitmapShader
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.ColorFilter
import android.graphics.Matrix
import android.graphics.Paint
import android.graphics.PixelFormat
import android.graphics.Shader
import android.graphics.Typeface
import android.graphics.drawable.ColorDrawable
import android.graphics.drawable.Drawable
import android.graphics.drawable.GradientDrawable
import android.graphics.drawable.RippleDrawable
import android.text.InputType
import android.text.TextUtils
import android.view.Gravity
import android.view.View
import android.view.ViewGroup
import android.view.Window
import android.widget.Button
import android.widget.EditText
import android.widget.FrameLayout
import android.widget.LinearLayout
import android.widget.TextView
import android.widget.Toast
import org.ruang.app.presenter.Avatars
import org.ruang.core.RuangException
import kotlin.math.roundToInt

// The design system, in code (framework Views only, no XML layouts, no R class): a warm
// palette with a dark variant, Material 3's type scale and sizes (48 dp touch targets, pill
// buttons, 12-28 dp corners), ripples, avatar circles. Screens take everything from here.

/** One theme's colours. Text/background pairs meet WCAG AA (4.5:1; 3:1 for large text). */
class Colors(
    val background: Int,
    val surface: Int,
    val surfaceVariant: Int,
    val onSurface: Int,
    val onSurfaceVariant: Int,
    val outline: Int,
    val primary: Int,
    val onPrimary: Int,
    val primaryContainer: Int,
    val onPrimaryContainer: Int,
    val speaking: Int,
    val error: Int,
    val onError: Int,
    val banner: Int,
    val onBanner: Int,
    val scrim: Int,
    val dark: Boolean,
)

object Palette {
    val LIGHT = Colors(
        background = 0xFFFBF5EE.toInt(),
        surface = 0xFFFFFFFF.toInt(),
        surfaceVariant = 0xFFF3E6D8.toInt(),
        onSurface = 0xFF201A16.toInt(),
        onSurfaceVariant = 0xFF574B42.toInt(),
        outline = 0xFFD8C7B8.toInt(),
        primary = 0xFFA3441D.toInt(),
        onPrimary = 0xFFFFFFFF.toInt(),
        primaryContainer = 0xFFFFDBCC.toInt(),
        onPrimaryContainer = 0xFF3A0B00.toInt(),
        speaking = 0xFF1F7A52.toInt(),
        error = 0xFFB3261E.toInt(),
        onError = 0xFFFFFFFF.toInt(),
        banner = 0xFFFFEFC2.toInt(),
        onBanner = 0xFF3D2E00.toInt(),
        scrim = 0x66000000,
        dark = false,
    )
    val DARK = Colors(
        background = 0xFF17120F.toInt(),
        surface = 0xFF221B17.toInt(),
        surfaceVariant = 0xFF322822.toInt(),
        onSurface = 0xFFF0E0D6.toInt(),
        onSurfaceVariant = 0xFFD6C3B6.toInt(),
        outline = 0xFF54463D.toInt(),
        primary = 0xFFFFB596.toInt(),
        onPrimary = 0xFF561F00.toInt(),
        primaryContainer = 0xFF7A2F0E.toInt(),
        onPrimaryContainer = 0xFFFFDBCC.toInt(),
        speaking = 0xFF7DD8AE.toInt(),
        error = 0xFFF2B8B5.toInt(),
        onError = 0xFF601410.toInt(),
        banner = 0xFF4A3A0A.toInt(),
        onBanner = 0xFFFFE7A3.toInt(),
        scrim = 0x99000000.toInt(),
        dark = true,
    )

    /**
     * Avatar fills: twelve hues at similar depth, each with white initials at 4.5:1 or more.
     * A user's colour is Avatars.index(id) into this list.
     */
    val AVATARS = intArrayOf(
        0xFFB23A48.toInt(), 0xFFB4501A.toInt(), 0xFF8A6100.toInt(), 0xFF56701A.toInt(),
        0xFF2A7A52.toInt(), 0xFF0F6E68.toInt(), 0xFF2562A0.toInt(), 0xFF4848B0.toInt(),
        0xFF6A43B8.toInt(), 0xFF8E2A6A.toInt(), 0xFF7D5435.toInt(), 0xFF36637F.toInt(),
    )

    fun avatarColor(id: String): Int = AVATARS[Avatars.index(id, AVATARS.size)]
}

/** Material 3 type scale (sp). */
object TypeScale {
    const val DISPLAY = 36f
    const val HEADLINE = 28f
    const val TITLE_LARGE = 22f
    const val TITLE = 18f
    const val BODY_LARGE = 16f
    const val BODY = 14f
    const val LABEL = 14f
    const val CAPTION = 12f
}

/** Spacing steps (dp). */
object Space {
    const val XS = 4
    const val S = 8
    const val M = 12
    const val L = 16
    const val XL = 24
    const val XXL = 32
}

val Context.colors: Colors
    get() = if ((resources.configuration.uiMode and Configuration.UI_MODE_NIGHT_MASK) == Configuration.UI_MODE_NIGHT_YES) {
        Palette.DARK
    } else {
        Palette.LIGHT
    }

fun Context.dp(v: Int): Int = (v * resources.displayMetrics.density).roundToInt()
fun Context.dpf(v: Float): Float = v * resources.displayMetrics.density

val MEDIUM: Typeface = Typeface.create("sans-serif-medium", Typeface.NORMAL)

fun Context.label(
    text: String = "",
    sizeSp: Float = TypeScale.BODY_LARGE,
    bold: Boolean = false,
    color: Int = colors.onSurface,
    medium: Boolean = false,
): TextView = TextView(this).apply {
    this.text = text
    textSize = sizeSp
    setTextColor(color)
    typeface = when {
        bold -> Typeface.DEFAULT_BOLD
        medium -> MEDIUM
        else -> Typeface.DEFAULT
    }
    setLineSpacing(0f, 1.15f)
}

enum class ButtonStyle { FILLED, TONAL, OUTLINED, TEXT, DANGER }

fun Context.rounded(color: Int, radiusDp: Int = 16, strokeColor: Int? = null): GradientDrawable = GradientDrawable().apply {
    setColor(color)
    cornerRadius = dpf(radiusDp.toFloat())
    strokeColor?.let { setStroke(dp(1), it) }
}

/** A ripple over [content] (or a bounded ripple with no fill when [content] is null). */
fun Context.ripple(content: Drawable?, radiusDp: Int = 100, onColor: Int = colors.onSurface): RippleDrawable {
    val mask = rounded(Color.WHITE, radiusDp)
    val rippleColor = (onColor and 0x00FFFFFF) or 0x33000000
    return RippleDrawable(ColorStateList.valueOf(rippleColor), content, mask)
}

/** A pill button: 48 dp touch target (40 dp visible for compact ones), ripple, sentence case. */
fun Context.button(text: String, style: ButtonStyle = ButtonStyle.TONAL, large: Boolean = false, onClick: (View) -> Unit): Button =
    Button(this).apply {
        this.text = text
        setAllCaps(false)
        stateListAnimator = null
        textSize = if (large) TypeScale.BODY_LARGE else TypeScale.LABEL
        typeface = MEDIUM
        minHeight = dp(if (large) 56 else 48)
        minimumHeight = minHeight
        minWidth = dp(48)
        minimumWidth = minWidth
        gravity = Gravity.CENTER
        setPadding(dp(if (large) 28 else 20), 0, dp(if (large) 28 else 20), 0)
        applyStyle(this, style)
        setOnClickListener(onClick)
    }

fun Context.applyStyle(b: TextView, style: ButtonStyle) {
    val c = colors
    val (fill, fg, stroke) = when (style) {
        ButtonStyle.FILLED -> Triple(c.primary, c.onPrimary, null)
        ButtonStyle.TONAL -> Triple(c.primaryContainer, c.onPrimaryContainer, null)
        ButtonStyle.OUTLINED -> Triple(Color.TRANSPARENT, c.primary, c.outline)
        ButtonStyle.TEXT -> Triple(Color.TRANSPARENT, c.primary, null)
        ButtonStyle.DANGER -> Triple(c.error, c.onError, null)
    }
    b.setTextColor(ColorStateList(
        arrayOf(intArrayOf(-android.R.attr.state_enabled), intArrayOf()),
        intArrayOf((fg and 0x00FFFFFF) or 0x61000000, fg),
    ))
    b.background = ripple(rounded(fill, 100, stroke), 100, fg)
}

/** A round 48 dp icon button with a text glyph and a content description. */
fun Context.iconButton(glyph: String, description: String, onClick: (View) -> Unit): Button =
    Button(this).apply {
        text = glyph
        contentDescription = description
        setAllCaps(false)
        stateListAnimator = null
        textSize = 20f
        setTextColor(colors.onSurface)
        gravity = Gravity.CENTER
        setPadding(0, 0, 0, 0)
        minWidth = dp(48); minimumWidth = dp(48); minHeight = dp(48); minimumHeight = dp(48)
        background = ripple(null, 100, colors.onSurface)
        setOnClickListener(onClick)
        layoutParams = LinearLayout.LayoutParams(dp(48), dp(48))
    }

/** A small rounded label (room kind, counts). */
fun Context.chip(text: String, fill: Int = colors.surfaceVariant, fg: Int = colors.onSurfaceVariant): TextView =
    label(text, TypeScale.CAPTION, color = fg, medium = true).apply {
        background = rounded(fill, 8)
        setPadding(dp(10), dp(4), dp(10), dp(4))
    }

/** A rounded text field with a visible label (hint) and a 56 dp height. */
fun Context.field(hint: String, fieldId: Int): EditText = EditText(this).apply {
    id = fieldId
    this.hint = hint
    setSingleLine(true)
    textSize = TypeScale.BODY_LARGE
    setTextColor(colors.onSurface)
    setHintTextColor(colors.onSurfaceVariant)
    minHeight = dp(56)
    setPadding(dp(16), dp(12), dp(16), dp(12))
    background = rounded(colors.surface, 12, colors.outline)
    inputType = InputType.TYPE_CLASS_TEXT
    contentDescription = hint
}

fun Context.vertical(padding: Int = 0): LinearLayout = LinearLayout(this).apply {
    orientation = LinearLayout.VERTICAL
    setPadding(dp(padding), dp(padding), dp(padding), dp(padding))
}

fun Context.horizontal(): LinearLayout = LinearLayout(this).apply {
    orientation = LinearLayout.HORIZONTAL
    gravity = Gravity.CENTER_VERTICAL
}

/** A card: surface colour, 20 dp corners, a hairline outline. */
fun Context.card(padding: Int = Space.L): LinearLayout = vertical(padding).apply {
    background = rounded(colors.surface, 20, if (colors.dark) null else colors.outline)
}

fun matchWrap(): LinearLayout.LayoutParams =
    LinearLayout.LayoutParams(ViewGroup.LayoutParams.MATCH_PARENT, ViewGroup.LayoutParams.WRAP_CONTENT)

fun wrap(): LinearLayout.LayoutParams =
    LinearLayout.LayoutParams(ViewGroup.LayoutParams.WRAP_CONTENT, ViewGroup.LayoutParams.WRAP_CONTENT)

fun weighted(): LinearLayout.LayoutParams =
    LinearLayout.LayoutParams(0, ViewGroup.LayoutParams.WRAP_CONTENT, 1f)

fun LinearLayout.LayoutParams.margins(ctx: Context, l: Int = 0, t: Int = 0, r: Int = 0, b: Int = 0) = apply {
    setMargins(ctx.dp(l), ctx.dp(t), ctx.dp(r), ctx.dp(b))
}

/** A circle with initials in the user's colour, or their photo once it has loaded. */
class AvatarDrawable(private val initials: String, userId: String, private val ring: Int? = null, private val ringWidth: Float = 0f) : Drawable() {
    private val fill = Paint(Paint.ANTI_ALIAS_FLAG).apply { color = Palette.avatarColor(userId) }
    private val ringPaint = Paint(Paint.ANTI_ALIAS_FLAG).apply { style = Paint.Style.STROKE }
    private val text = Paint(Paint.ANTI_ALIAS_FLAG).apply {
        color = Color.WHITE
        typeface = Typeface.DEFAULT_BOLD
        textAlign = Paint.Align.CENTER
    }
    private val photoPaint = Paint(Paint.ANTI_ALIAS_FLAG or Paint.FILTER_BITMAP_FLAG)

    /** The photo drawn instead of the initials (null: the initials). */
    var photo: Bitmap? = null
        set(value) {
            field = value
            invalidateSelf()
        }

    override fun draw(canvas: Canvas) {
        val b = bounds
        val r = minOf(b.width(), b.height()) / 2f
        val cx = b.exactCenterX()
        val cy = b.exactCenterY()
        if (ring != null && ringWidth > 0f) {
            ringPaint.color = ring
            ringPaint.strokeWidth = ringWidth
            canvas.drawCircle(cx, cy, r - ringWidth / 2f, ringPaint)
        }
        val p = photo
        if (p != null) {
            drawPhoto(canvas, p, cx, cy, r - ringWidth, photoPaint)
            return
        }
        canvas.drawCircle(cx, cy, r - ringWidth, fill)
        text.textSize = r * 0.78f
        canvas.drawText(initials, cx, cy - (text.descent() + text.ascent()) / 2f, text)
    }

    override fun setAlpha(alpha: Int) { fill.alpha = alpha; photoPaint.alpha = alpha }
    override fun setColorFilter(colorFilter: ColorFilter?) { fill.colorFilter = colorFilter }
    @Deprecated("Deprecated in Java")
    override fun getOpacity(): Int = PixelFormat.TRANSLUCENT
}

/** Draws [photo] as a circle of radius [r] around (cx, cy), scaled to fill it. */
fun drawPhoto(canvas: Canvas, photo: Bitmap, cx: Float, cy: Float, r: Float, paint: Paint) {
    val shader = BitmapShader(photo, Shader.TileMode.CLAMP, Shader.TileMode.CLAMP)
    val scale = 2f * r / minOf(photo.width, photo.height)
    val m = Matrix()
    m.setScale(scale, scale)
    m.postTranslate(cx - photo.width * scale / 2f, cy - photo.height * scale / 2f)
    shader.setLocalMatrix(m)
    paint.shader = shader
    canvas.drawCircle(cx, cy, r, paint)
    paint.shader = null
}

/**
 * A person's avatar: initials in their colour at once, their photo ([photoHash], the content
 * hash the server gives) as soon as it is loaded (from memory at once, else off the main thread).
 */
fun Context.avatar(initials: String, userId: String, sizeDp: Int, ring: Int? = null, photoHash: String? = null, photoSize: Int = Avatars.TILE): View = View(this).apply {
    val d = AvatarDrawable(initials, userId, ring, if (ring != null) dpf(2f) else 0f)
    background = d
    layoutParams = LinearLayout.LayoutParams(dp(sizeDp), dp(sizeDp))
    importantForAccessibility = View.IMPORTANT_FOR_ACCESSIBILITY_NO
    Avatars.url(ruang.serverUrl, photoHash, photoSize)?.let { url ->
        tag = url
        Photos.load(this@avatar, url) { bmp -> if (bmp != null && tag == url) d.photo = bmp }
    }
}

fun Activity.toast(text: String) = Toast.makeText(this, text, Toast.LENGTH_SHORT).show()

/**
 * A dialog in the app's style (rounded surface card): title, message, up to two buttons.
 * [negative] null means a single button. Returned shown.
 */
fun Activity.dialog(
    title: String,
    message: String,
    positive: String,
    negative: String? = null,
    cancelable: Boolean = true,
    onNegative: (() -> Unit)? = null,
    onPositive: () -> Unit,
): Dialog {
    val d = Dialog(this)
    d.requestWindowFeature(Window.FEATURE_NO_TITLE)
    val c = colors
    val box = vertical(Space.XL).apply { background = rounded(c.surface, 28) }
    box.addView(label(title, TypeScale.TITLE_LARGE, color = c.onSurface).apply { setPadding(0, 0, 0, dp(Space.M)) }, matchWrap())
    box.addView(label(message, TypeScale.BODY, color = c.onSurfaceVariant), matchWrap())
    val row = horizontal().apply { gravity = Gravity.END or Gravity.CENTER_VERTICAL; setPadding(0, dp(Space.XL), 0, 0) }
    if (negative != null) {
        row.addView(button(negative, ButtonStyle.TEXT) { d.dismiss(); onNegative?.invoke() })
    }
    row.addView(button(positive, ButtonStyle.FILLED) { d.dismiss(); onPositive() }, wrap().margins(this, l = Space.S))
    box.addView(row, matchWrap())
    d.setContentView(box)
    d.setCancelable(cancelable)
    if (cancelable && onNegative != null) d.setOnCancelListener { onNegative() }
    d.window?.setBackgroundDrawable(ColorDrawable(Color.TRANSPARENT))
    d.window?.setLayout(dp(320).coerceAtMost(resources.displayMetrics.widthPixels - dp(32)), ViewGroup.LayoutParams.WRAP_CONTENT)
    if (!isFinishing) d.show()
    return d
}

fun Activity.alert(title: String, message: String, onOk: (() -> Unit)? = null) {
    if (isFinishing) return
    dialog(title, message, "OK", negative = null, cancelable = true, onNegative = onOk) { onOk?.invoke() }
}

/** One row of an action sheet. */
class SheetAction(val label: String, val danger: Boolean = false, val run: () -> Unit)

/**
 * A bottom sheet of actions (the moderator menus): optional header view, then 56 dp rows.
 */
fun Activity.sheet(title: String, subtitle: String?, header: View?, actions: List<SheetAction>): Dialog {
    val d = Dialog(this)
    d.requestWindowFeature(Window.FEATURE_NO_TITLE)
    val c = colors
    val box = vertical().apply {
        background = GradientDrawable().apply {
            setColor(c.surface)
            val r = dpf(28f)
            cornerRadii = floatArrayOf(r, r, r, r, 0f, 0f, 0f, 0f)
        }
        setPadding(0, dp(Space.M), 0, dp(Space.L))
    }
    // The drag handle.
    box.addView(View(this).apply { background = rounded(c.outline, 2) },
        LinearLayout.LayoutParams(dp(32), dp(4)).apply { gravity = Gravity.CENTER_HORIZONTAL; bottomMargin = dp(Space.L) })
    val head = horizontal().apply { setPadding(dp(Space.XL), 0, dp(Space.XL), dp(Space.M)) }
    header?.let { head.addView(it); (it.layoutParams as? LinearLayout.LayoutParams)?.rightMargin = dp(Space.L) }
    val titles = vertical()
    titles.addView(label(title, TypeScale.TITLE, color = c.onSurface, medium = true))
    subtitle?.let { titles.addView(label(it, TypeScale.BODY, color = c.onSurfaceVariant)) }
    head.addView(titles, weighted())
    box.addView(head, matchWrap())
    // Long lists (followers) scroll inside the sheet; short ones are unchanged.
    val rows = vertical()
    box.addView(android.widget.ScrollView(this).apply { addView(rows) }, matchWrap())
    for (a in actions) {
        rows.addView(label(a.label, TypeScale.BODY_LARGE, color = if (a.danger) c.error else c.onSurface).apply {
            gravity = Gravity.CENTER_VERTICAL
            minHeight = dp(56)
            setPadding(dp(Space.XL), 0, dp(Space.XL), 0)
            background = ripple(null, 0, c.onSurface)
            isClickable = true
            isFocusable = true
            contentDescription = a.label
            setOnClickListener { d.dismiss(); a.run() }
        }, matchWrap())
    }
    d.setContentView(box)
    d.window?.let { w ->
        w.setBackgroundDrawable(ColorDrawable(Color.TRANSPARENT))
        w.setGravity(Gravity.BOTTOM)
        w.setLayout(ViewGroup.LayoutParams.MATCH_PARENT, ViewGroup.LayoutParams.WRAP_CONTENT)
    }
    if (!isFinishing) d.show()
    return d
}

/** A centred empty / error / loading state: a soft disc with a glyph, a title and a line. */
fun Context.emptyState(glyph: String, title: String, body: String): LinearLayout = vertical(Space.XL).apply {
    gravity = Gravity.CENTER_HORIZONTAL
    val c = colors
    addView(FrameLayout(this@emptyState).apply {
        background = rounded(c.primaryContainer, 100)
        addView(label(glyph, 40f, color = c.onPrimaryContainer).apply { gravity = Gravity.CENTER },
            FrameLayout.LayoutParams(ViewGroup.LayoutParams.MATCH_PARENT, ViewGroup.LayoutParams.MATCH_PARENT))
        importantForAccessibility = View.IMPORTANT_FOR_ACCESSIBILITY_NO
    }, LinearLayout.LayoutParams(dp(96), dp(96)).apply { bottomMargin = dp(Space.XL) })
    addView(label(title, TypeScale.TITLE_LARGE, color = c.onSurface).apply { gravity = Gravity.CENTER }, matchWrap())
    addView(label(body, TypeScale.BODY, color = c.onSurfaceVariant).apply {
        gravity = Gravity.CENTER
        setPadding(0, dp(Space.S), 0, 0)
    }, matchWrap())
}

fun TextView.ellipsizeEnd(lines: Int = 1) = apply {
    maxLines = lines
    ellipsize = TextUtils.TruncateAt.END
}

/** True when [e] (or anything in its cause chain) says the core's native library could not load. */
fun isCoreMissing(e: Throwable?): Boolean {
    var t = e
    var depth = 0
    while (t != null && depth < 10) {
        when (t) {
            is UnsatisfiedLinkError -> return true
            is NoClassDefFoundError -> if (t.message.orEmpty().contains("org.ruang.core") || t.message.orEmpty().contains("org/ruang/core") ||
                t.message.orEmpty().contains("com.sun.jna") || t.message.orEmpty().contains("com/sun/jna")) return true
            is ExceptionInInitializerError -> if (isCoreMissing(t.cause) || t.stackTrace.any { it.className.startsWith("org.ruang.core") }) return true
        }
        t = t.cause
        depth++
    }
    return false
}

/** A sentence for an error from the core. */
fun errorText(e: Throwable): String = when {
    isCoreMissing(e) -> MissingCoreActivity.MESSAGE
    e is RuangException.Network -> "Can't reach the server. Check your connection and try again."
    e is RuangException.Unauthorized -> "Your session has expired. Please sign in again."
    e is RuangException.Forbidden -> when (e.code) {
        "hands_disabled" -> "The moderators turned raised hands off."
        "room_closed" -> "This room is closed. You need its link to join."
        "removed_from_room" -> "A moderator removed you from this room."
        "last_moderator" -> "A room needs a moderator on stage."
        "rate_limited" -> "Too many attempts. Wait a moment and try again."
        else -> e.detail.ifBlank { "That is not allowed." }
    }
    e is RuangException.NotFound -> when (e.code) {
        "room_ended" -> "This room has ended."
        "invite_not_found", "invalid_invite" -> "That invite code is not valid or was already used."
        else -> e.detail.ifBlank { "Not found." }
    }
    e is RuangException.InvalidInput -> when (e.code) {
        "invalid_invite" -> "That invite code is not valid or was already used."
        "handle_taken" -> "That handle is taken. Try another one."
        "invalid_handle" -> "Handles use letters, digits and underscores."
        else -> e.detail.ifBlank { "Please check what you entered." }
    }
    e is RuangException.Server -> "The server had a problem. Try again later."
    else -> e.message ?: e.toString()
}
