package org.ruang.app

import android.content.Context
import android.graphics.Canvas
import android.graphics.Paint
import android.view.View

/** The wordmark's companion: three overlapping voices (circles) in the warm palette. */
class BrandMark(context: Context) : View(context) {
    private val paint = Paint(Paint.ANTI_ALIAS_FLAG)

    init {
        importantForAccessibility = IMPORTANT_FOR_ACCESSIBILITY_NO
    }

    override fun onDraw(canvas: Canvas) {
        val c = context.colors
        val r = height / 2f
        val fills = intArrayOf(c.primary, Palette.AVATARS[0], Palette.AVATARS[5])
        val step = (width - 2 * r) / 2f
        for (i in 2 downTo 0) {
            paint.color = fills[i]
            paint.alpha = if (i == 0) 255 else 210
            canvas.drawCircle(r + i * step, r, r * if (i == 0) 1f else 0.86f, paint)
        }
    }
}
