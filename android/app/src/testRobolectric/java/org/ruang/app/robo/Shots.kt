package org.ruang.app.robo

import android.app.Activity
import android.app.Dialog
import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.graphics.Typeface
import android.view.Gravity
import android.view.View
import android.view.ViewGroup
import org.robolectric.RuntimeEnvironment
import org.robolectric.android.controller.ActivityController
import java.io.File
import java.io.FileOutputStream
import java.util.Arrays

/**
 * Screenshots of whole screens (the activity's window plus its showing dialogs, drawn with
 * Robolectric's native graphics) into tests/android/output/, in light and dark theme on a
 * phone (411x891 dp) and a small phone (360x640 dp). Fails on a blank picture; keeps a
 * fingerprint of each so tests can assert that two states render differently.
 */
object Shots {
    val dir = File(System.getProperty("ruang.shots") ?: "build/shots").apply { mkdirs() }
    val sizes = listOf(411 to 891, 360 to 640)
    /** name (state + variant) -> pixel fingerprint. */
    val fingerprints = LinkedHashMap<String, Int>()

    private fun density() = RuntimeEnvironment.getApplication().resources.displayMetrics.density

    /**
     * Saves [name] in light and dark at both sizes: light from [current] as it is, dark from a
     * second screen [dark] builds after the theme is switched (the same state: the room, the
     * session and the hallway live in the app, not in the activity). Without [dark], light only.
     */
    fun all(name: String, current: Activity, dark: (() -> ActivityController<out Activity>)? = null) {
        idle()
        for ((w, h) in sizes) save(current, "$name-light-${w}x$h", w, h)
        if (dark == null) return
        RuntimeEnvironment.setQualifiers("+night")
        try {
            val c = dark()
            idle()
            for ((w, h) in sizes) save(c.get(), "$name-dark-${w}x$h", w, h)
            for (d in dialogsOf(c.get())) d.dismiss()
            c.pause().stop().destroy()
        } finally {
            RuntimeEnvironment.setQualifiers("+notnight")
        }
        assertDiffer("$name-light-411x891", "$name-dark-411x891")
    }

    /** One picture of [a] as it is now, at [wDp] x [hDp]. */
    fun save(a: Activity, name: String, wDp: Int = 411, hDp: Int = 891): Bitmap {
        val bmp = render(a, wDp, hDp)
        assertNotBlank(name, bmp)
        write(name, bmp)
        return bmp
    }

    fun render(a: Activity, wDp: Int, hDp: Int): Bitmap {
        val d = density()
        val w = (wDp * d).toInt()
        val h = (hDp * d).toInt()
        val bmp = Bitmap.createBitmap(w, h, Bitmap.Config.ARGB_8888)
        val canvas = Canvas(bmp)
        val decor = a.window.decorView
        layoutExactly(decor, w, h)
        canvas.drawColor(windowColor(a))
        decor.draw(canvas)
        for (dlg in dialogsOf(a)) drawDialog(canvas, dlg, w, h)
        // Put the window back at the configured size for the test's next steps.
        val dm = a.resources.displayMetrics
        layoutExactly(decor, dm.widthPixels, dm.heightPixels)
        return bmp
    }

    private fun windowColor(a: Activity): Int = org.ruang.app.Palette.let { if ((a.resources.configuration.uiMode and 0x30) == 0x20) it.DARK.background else it.LIGHT.background }

    private fun layoutExactly(v: View, w: Int, h: Int) {
        v.measure(View.MeasureSpec.makeMeasureSpec(w, View.MeasureSpec.EXACTLY), View.MeasureSpec.makeMeasureSpec(h, View.MeasureSpec.EXACTLY))
        v.layout(0, 0, w, h)
    }

    private fun drawDialog(canvas: Canvas, dlg: Dialog, w: Int, h: Int) {
        val win = dlg.window ?: return
        val decor = win.decorView
        val lp = win.attributes
        canvas.drawColor(0x80000000.toInt())
        val margin = (16 * density()).toInt()
        val widthSpec = when {
            lp.width == ViewGroup.LayoutParams.MATCH_PARENT -> View.MeasureSpec.makeMeasureSpec(w, View.MeasureSpec.EXACTLY)
            lp.width > 0 -> View.MeasureSpec.makeMeasureSpec(minOf(lp.width, w - 2 * margin), View.MeasureSpec.EXACTLY)
            else -> View.MeasureSpec.makeMeasureSpec(w - 2 * margin, View.MeasureSpec.AT_MOST)
        }
        decor.measure(widthSpec, View.MeasureSpec.makeMeasureSpec(h - 2 * margin, View.MeasureSpec.AT_MOST))
        val dw = decor.measuredWidth
        val dh = decor.measuredHeight
        decor.layout(0, 0, dw, dh)
        val left = (w - dw) / 2f
        val top = if ((lp.gravity and Gravity.VERTICAL_GRAVITY_MASK) == Gravity.BOTTOM) (h - dh).toFloat() else (h - dh) / 2f
        canvas.save()
        canvas.translate(left, top)
        decor.draw(canvas)
        canvas.restore()
    }

    fun write(name: String, bmp: Bitmap) {
        val px = IntArray(bmp.width * bmp.height)
        bmp.getPixels(px, 0, bmp.width, 0, 0, bmp.width, bmp.height)
        fingerprints[name] = Arrays.hashCode(px)
        FileOutputStream(File(dir, "$name.png")).use { bmp.compress(Bitmap.CompressFormat.PNG, 100, it) }
    }

    fun assertNotBlank(name: String, bmp: Bitmap) {
        val counts = HashMap<Int, Int>()
        var n = 0
        for (y in 0 until bmp.height step 4) for (x in 0 until bmp.width step 4) {
            counts.merge(bmp.getPixel(x, y), 1, Int::plus)
            n++
        }
        val top = counts.values.maxOrNull() ?: 0
        if (counts.size < 3 || top > n * 0.995) throw AssertionError("screenshot $name is blank (${counts.size} colours)")
    }

    /** Fails when two states that must differ rendered the same pixels. */
    fun assertDiffer(a: String, b: String) {
        val fa = fingerprints[a] ?: throw AssertionError("no screenshot $a")
        val fb = fingerprints[b] ?: throw AssertionError("no screenshot $b")
        if (fa == fb) throw AssertionError("screenshots $a and $b are identical")
    }

    /** Text content (the notification) written next to the pictures. */
    fun text(name: String, content: String) {
        File(dir, "$name.txt").writeText(content)
    }

    /**
     * One contact sheet of every picture in the folder (light then dark, phone size first),
     * with its name under each thumbnail.
     */
    fun contactSheet() {
        val files = dir.listFiles { f -> f.name.endsWith(".png") && f.name != "contact-sheet.png" }!!
            .sortedWith(compareBy({ !it.name.contains("-light-") }, { !it.name.contains("411x891") }, { it.name }))
        if (files.isEmpty()) return
        val cols = 8
        val thumbW = 240
        val thumbH = 520
        val labelH = 44
        val pad = 16
        val rows = (files.size + cols - 1) / cols
        val sheet = Bitmap.createBitmap(pad + cols * (thumbW + pad), pad + rows * (thumbH + labelH + pad) + 60, Bitmap.Config.ARGB_8888)
        val c = Canvas(sheet)
        c.drawColor(0xFF3A332E.toInt())
        val title = Paint(Paint.ANTI_ALIAS_FLAG).apply { color = Color.WHITE; textSize = 32f; typeface = Typeface.DEFAULT_BOLD }
        c.drawText("Ruang Android — every screen (Robolectric, real core, real server): ${files.size} pictures", pad.toFloat(), 44f, title)
        val text = Paint(Paint.ANTI_ALIAS_FLAG).apply { color = 0xFFEDE0D4.toInt(); textSize = 15f }
        val paint = Paint(Paint.FILTER_BITMAP_FLAG or Paint.ANTI_ALIAS_FLAG)
        files.forEachIndexed { i, f ->
            val x = pad + (i % cols) * (thumbW + pad)
            val y = 60 + pad + (i / cols) * (thumbH + labelH + pad)
            val opts = BitmapFactory.Options().apply { inSampleSize = 2 }
            val b = BitmapFactory.decodeFile(f.path, opts) ?: return@forEachIndexed
            val scale = minOf(thumbW / b.width.toFloat(), thumbH / b.height.toFloat())
            val dw = (b.width * scale).toInt()
            val dh = (b.height * scale).toInt()
            c.drawBitmap(b, null, android.graphics.Rect(x, y, x + dw, y + dh), paint)
            b.recycle()
            val label = f.name.removeSuffix(".png")
            c.drawText(label.take(34), x.toFloat(), (y + thumbH + 18).toFloat(), text)
            if (label.length > 34) c.drawText(label.drop(34).take(34), x.toFloat(), (y + thumbH + 36).toFloat(), text)
        }
        FileOutputStream(File(dir, "contact-sheet.png")).use { sheet.compress(Bitmap.CompressFormat.PNG, 100, it) }
    }
}
