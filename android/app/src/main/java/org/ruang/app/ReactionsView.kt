package org.ruang.app

import android.content.Context
import android.graphics.Canvas
import android.graphics.Paint
import android.graphics.PointF
import android.os.SystemClock
import android.view.View
import org.ruang.app.presenter.Floater

/**
 * Floating reactions over the stage: each burst's emoji (with its count) rises and fades over
 * the tile it was aimed at, or somewhere over the stage. Custom-drawn (no animation
 * libraries); it draws nothing and takes no touches when idle, so it can sit on top of the
 * stage.
 */
class ReactionsView(context: Context) : View(context) {
    /** One floater on screen: where it started and when. */
    data class Active(val label: String, val x: Float, val y: Float, val startedAt: Long)

    /** Time source (tests step it). */
    var clock: () -> Long = { SystemClock.uptimeMillis() }
    /** Where a user's tile is, in this view's coordinates (null: anywhere over the stage). */
    var locate: (String) -> PointF? = { null }

    private val floating = ArrayList<Active>()
    private var seed = 0
    private val paint = Paint(Paint.ANTI_ALIAS_FLAG).apply {
        textSize = context.dpf(24f)
        textAlign = Paint.Align.CENTER
    }

    init {
        isClickable = false
        importantForAccessibility = IMPORTANT_FOR_ACCESSIBILITY_NO
    }

    /** The floaters on screen now. */
    val active: List<Active> get() = floating.toList()

    fun show(floaters: List<Floater>) {
        val now = clock()
        for (f in floaters) {
            val at = f.targetUserId?.let(locate)
            // Untargeted ones spread over the width in a fixed, varied pattern.
            val x = at?.x ?: (width * (0.15f + 0.7f * ((seed++ * 37) % 100) / 100f))
            val y = at?.y ?: (height * 0.6f)
            floating.add(Active(f.label, x, y, now))
        }
        while (floating.size > MAX) floating.removeAt(0)
        postInvalidateOnAnimation()
    }

    override fun onDraw(canvas: Canvas) {
        super.onDraw(canvas)
        val now = clock()
        floating.removeAll { now - it.startedAt >= DURATION_MS }
        val rise = context.dpf(72f)
        for (f in floating) {
            val t = ((now - f.startedAt).toFloat() / DURATION_MS).coerceIn(0f, 1f)
            paint.alpha = (255 * (1f - t * t)).toInt()
            canvas.drawText(f.label, f.x, f.y - rise * t, paint)
        }
        if (floating.isNotEmpty()) postInvalidateOnAnimation()
    }

    companion object {
        const val DURATION_MS = 1800L
        /** At most this many at once (a big burst shows as one emoji with its count). */
        const val MAX = 24
    }
}
