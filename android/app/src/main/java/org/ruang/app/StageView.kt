package org.ruang.app

import android.content.Context
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.graphics.Typeface
import android.text.TextPaint
import android.text.TextUtils
import android.view.GestureDetector
import android.view.MotionEvent
import android.view.View
import org.ruang.app.presenter.Tile
import kotlin.math.abs
import kotlin.math.ceil
import kotlin.math.max
import kotlin.math.min

/**
 * A custom-drawn grid of people: photo (or initials) avatar, name, moderator badge, muted mark and an
 * animated speaking ring driven by the audio levels (a soft wave that grows with the level,
 * Telegram voice-chat style). [compact] draws the smaller audience grid.
 */
class StageView(context: Context, private val compact: Boolean) : View(context) {
    var tiles: List<Tile> = emptyList()
        set(value) {
            val relayout = value.size != field.size
            field = value
            contentDescription = value.joinToString(", ") { t ->
                t.name + (if (t.moderator) ", moderator" else "") + (if (t.muted) ", muted" else "") +
                    (if (t.speaking) ", speaking" else "") + (if (t.handRaised) ", hand raised" else "")
            }
            if (relayout) requestLayout()
            isFocusable = value.isNotEmpty()
            // Start loading photos now, not at the first draw (off-screen tiles too).
            for (t in value) photoFor(t)
            invalidate()
        }

    /** Long-press on a person (the moderator menu). */
    var onLongPress: ((Tile, View) -> Unit)? = null
    var onTap: ((Tile) -> Unit)? = null

    private val columns get() = if (compact) 4 else 3
    /** The ring level shown, easing towards each tile's level. */
    private val shown = HashMap<String, Float>()
    private var phase = 0f

    private val avatarPaint = Paint(Paint.ANTI_ALIAS_FLAG)
    private val ringPaint = Paint(Paint.ANTI_ALIAS_FLAG).apply { style = Paint.Style.STROKE }
    private val wavePaint = Paint(Paint.ANTI_ALIAS_FLAG)
    private val initialsPaint = TextPaint(Paint.ANTI_ALIAS_FLAG).apply {
        color = Color.WHITE
        typeface = Typeface.DEFAULT_BOLD
        textAlign = Paint.Align.CENTER
    }
    private val namePaint = TextPaint(Paint.ANTI_ALIAS_FLAG).apply {
        color = context.colors.onSurface
        textAlign = Paint.Align.CENTER
    }
    private val badgePaint = Paint(Paint.ANTI_ALIAS_FLAG)
    private val markPaint = Paint(Paint.ANTI_ALIAS_FLAG).apply {
        color = Color.WHITE
        style = Paint.Style.STROKE
        strokeCap = Paint.Cap.ROUND
    }

    private val gestures = GestureDetector(context, object : GestureDetector.SimpleOnGestureListener() {
        override fun onDown(e: MotionEvent): Boolean = tileAt(e.x, e.y) != null

        override fun onSingleTapUp(e: MotionEvent): Boolean {
            val t = tileAt(e.x, e.y) ?: return false
            onTap?.invoke(t)
            return true
        }

        override fun onLongPress(e: MotionEvent) {
            val t = tileAt(e.x, e.y) ?: return
            performHapticFeedback(android.view.HapticFeedbackConstants.LONG_PRESS)
            onLongPress?.invoke(t, this@StageView)
        }
    })

    override fun onTouchEvent(event: MotionEvent): Boolean = gestures.onTouchEvent(event) || super.onTouchEvent(event)

    private fun cellWidth(): Float = (width - paddingLeft - paddingRight).toFloat() / columns
    /** The avatar, the ring's room above it, and one line of name under it. */
    private fun cellHeight(cellWidth: Float): Float =
        cellWidth * 2f * (if (compact) 0.28f else 0.31f) + context.dpf(if (compact) 44f else 50f)

    override fun onMeasure(widthMeasureSpec: Int, heightMeasureSpec: Int) {
        val w = MeasureSpec.getSize(widthMeasureSpec)
        val rows = ceil(tiles.size / columns.toFloat()).toInt()
        val cw = (w - paddingLeft - paddingRight).toFloat() / columns
        val h = (rows * cellHeight(cw)).toInt() + paddingTop + paddingBottom
        setMeasuredDimension(w, resolveSize(h, heightMeasureSpec))
    }

    /** The centre of [userId]'s avatar in this view's coordinates (reaction floaters), or null. */
    fun tileCenter(userId: String): android.graphics.PointF? {
        val i = tiles.indexOfFirst { it.userId == userId }
        val cw = cellWidth()
        if (i < 0 || cw <= 0f) return null
        val ch = cellHeight(cw)
        return android.graphics.PointF(paddingLeft + (i % columns + 0.5f) * cw, paddingTop + (i / columns) * ch + ch * 0.4f)
    }

    fun tileAt(x: Float, y: Float): Tile? {
        val cw = cellWidth()
        if (cw <= 0f) return null
        val col = ((x - paddingLeft) / cw).toInt()
        val row = ((y - paddingTop) / cellHeight(cw)).toInt()
        if (col !in 0 until columns || row < 0) return null
        return tiles.getOrNull(row * columns + col)
    }

    override fun onDraw(canvas: Canvas) {
        super.onDraw(canvas)
        val cw = cellWidth()
        if (cw <= 0f) return
        val ch = cellHeight(cw)
        val radius = cw * if (compact) 0.28f else 0.31f
        initialsPaint.textSize = radius * 0.8f
        namePaint.textSize = context.dpf(if (compact) 12f else 13f)
        ringPaint.strokeWidth = context.dpf(3f)
        markPaint.strokeWidth = context.dpf(2f)
        phase = (phase + 0.12f) % 6.2832f
        var animating = false

        tiles.forEachIndexed { i, t ->
            val cx = paddingLeft + cw * (i % columns) + cw / 2f
            val top = paddingTop + ch * (i / columns)
            val cy = top + radius + context.dpf(10f)

            // Ease the ring towards the level (fast up, slower down).
            val target = if (t.speaking) t.level else 0f
            val current = shown[t.userId] ?: 0f
            val next = current + (target - current) * if (target > current) 0.45f else 0.15f
            shown[t.userId] = if (abs(next - target) < 0.005f) target else next
            if (shown[t.userId] != target || next > 0f) animating = true
            val level = shown[t.userId] ?: 0f

            if (level > 0.01f) {
                // The wave: a translucent disc that breathes with the level, then a solid ring.
                val wobble = 1f + 0.04f * kotlin.math.sin(phase + i)
                wavePaint.color = context.colors.speaking
                wavePaint.alpha = (60 + 80 * level).toInt().coerceAtMost(140)
                canvas.drawCircle(cx, cy, (radius + context.dpf(4f) + level * context.dpf(10f)) * wobble, wavePaint)
                ringPaint.color = context.colors.speaking
                canvas.drawCircle(cx, cy, radius + context.dpf(2.5f), ringPaint)
            }

            val photo = photoFor(t)
            if (photo != null) {
                drawPhoto(canvas, photo, cx, cy, radius, photoPaint)
            } else {
                avatarPaint.color = colorFor(t.userId)
                canvas.drawCircle(cx, cy, radius, avatarPaint)
                val textY = cy - (initialsPaint.descent() + initialsPaint.ascent()) / 2f
                canvas.drawText(t.initials, cx, textY, initialsPaint)
            }

            val badge = radius * 0.36f
            if (t.moderator) {
                // Moderator: a green star badge, bottom left.
                val bx = cx - radius * 0.75f
                val by = cy + radius * 0.75f
                badgePaint.color = context.colors.primary
                canvas.drawCircle(bx, by, badge, badgePaint)
                val star = TextPaint(initialsPaint).apply { textSize = badge * 1.3f }
                canvas.drawText("★", bx, by - (star.descent() + star.ascent()) / 2f, star)
            }
            if (t.muted) {
                // Muted: a red disc with a slashed mic line, bottom right.
                val bx = cx + radius * 0.75f
                val by = cy + radius * 0.75f
                badgePaint.color = context.colors.error
                canvas.drawCircle(bx, by, badge, badgePaint)
                val d = badge * 0.5f
                canvas.drawLine(bx - d, by - d, bx + d, by + d, markPaint)
                canvas.drawLine(bx, by - d * 0.9f, bx, by + d * 0.2f, markPaint)
            }

            // Your own tile: the first name is enough to find yourself.
            if (t.handRaised) {
                // A raised hand, top right, that gently bobs.
                val bx = cx + radius * 0.78f
                val by = cy - radius * 0.78f + context.dpf(2f) * kotlin.math.sin(phase * 2f + i)
                badgePaint.color = context.colors.surface
                canvas.drawCircle(bx, by, badge * 1.15f, badgePaint)
                val hand = TextPaint(initialsPaint).apply { textSize = badge * 1.4f }
                canvas.drawText("✋", bx, by - (hand.descent() + hand.ascent()) / 2f, hand)
                animating = true
            }

            val name = if (t.me) "${t.name.trim().substringBefore(' ')} (you)" else t.name
            val fitted = TextUtils.ellipsize(name, namePaint, cw - context.dpf(8f), TextUtils.TruncateAt.END)
            namePaint.typeface = if (t.speaking) Typeface.DEFAULT_BOLD else Typeface.DEFAULT
            canvas.drawText(fitted.toString(), cx, cy + radius + context.dpf(20f), namePaint)
        }
        shown.keys.retainAll(tiles.map { it.userId }.toSet())
        if (animating) postInvalidateOnAnimation()
    }

    private fun colorFor(id: String): Int = Palette.avatarColor(id)

    private val photoPaint = Paint(Paint.ANTI_ALIAS_FLAG or Paint.FILTER_BITMAP_FLAG)
    /** Photos asked for and not in memory yet (one request each; a redraw when they come). */
    private val loading = HashSet<String>()

    /** The tile's photo when it is in memory; else starts loading it and gives null (initials). */
    private fun photoFor(t: Tile): android.graphics.Bitmap? {
        val url = org.ruang.app.presenter.Avatars.url(context.ruang.serverUrl, t.avatar) ?: return null
        Photos.cached(url)?.let { return it }
        if (loading.add(url)) {
            Photos.load(context, url) { bmp ->
                loading.remove(url)
                if (bmp != null) invalidate()
            }
        }
        return null
    }

    /** What the stage last announced to accessibility services ("Ana is speaking"). */
    var lastAnnouncement: String? = null
        private set
    private var speakingNames: List<String> = emptyList()

    /** Announces who starts speaking (TalkBack), once per change of speakers. */
    fun announceSpeakers(stage: List<Tile>) {
        val names = stage.filter { it.speaking }.map { it.name }
        if (names == speakingNames) return
        speakingNames = names
        if (names.isEmpty()) return
        val text = if (names.size == 1) "${names[0]} is speaking" else names.joinToString(", ") + " are speaking"
        lastAnnouncement = text
        announceForAccessibility(text)
    }
}
