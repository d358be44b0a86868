package org.ruang.app.robo

import android.content.res.Configuration
import android.graphics.Bitmap
import android.graphics.Canvas
import android.os.Bundle
import android.view.View
import android.widget.TextView
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.robolectric.Robolectric
import org.robolectric.RuntimeEnvironment
import org.ruang.app.HallwayActivity
import org.ruang.app.MissingCoreActivity
import org.ruang.app.Palette
import org.ruang.app.RoomActivity
import org.ruang.app.StageView
import org.ruang.app.WelcomeActivity
import org.ruang.app.errorText
import org.ruang.app.isCoreMissing
import org.ruang.app.presenter.Tile
import org.ruang.core.Role

class AppTest : LiveTest() {
    @Test
    fun `a missing core library shows one clear screen, whatever the error looks like`() {
        val first = UnsatisfiedLinkError("Unable to load library 'ruang_ffi'")
        val later = NoClassDefFoundError("Could not initialize class org.ruang.core.UniffiLib")
        val init = ExceptionInInitializerError(first)
        for (e in listOf<Throwable>(first, later, init, RuntimeException("wrapped", later))) {
            assertTrue("$e", isCoreMissing(e))
            assertEquals(MissingCoreActivity.MESSAGE, errorText(e))
        }
        assertTrue(!isCoreMissing(NoClassDefFoundError("com/example/Other")))
        assertTrue(!isCoreMissing(IllegalStateException("x")))

        // Two core calls failing the way a phone without the library fails: one screen.
        val w = launch(WelcomeActivity::class.java).get()
        var called = false
        app.background({ throw first }) { called = true }
        app.background({ throw later }) { called = true }
        idle()
        val intent = waitFor("the missing-core screen") { nextAppActivity(MissingCoreActivity::class.java) }
        assertEquals(null, nextAppActivity(MissingCoreActivity::class.java))
        assertTrue("the callers are not told twice", !called)
        assertTrue(app.coreMissing)
        val m = track(Robolectric.buildActivity(MissingCoreActivity::class.java, intent).setup()).get()
        m.waitText(MissingCoreActivity.TITLE)
        Shots.all("19-missing-core", m) { Robolectric.buildActivity(MissingCoreActivity::class.java, intent).setup() }
        assertTrue(!w.hasText("Could not initialize class"))
    }

    @Test
    fun `avatar colours are well spread for similar ids`() {
        val stage = StageView(app, compact = false)
        stage.tiles = (1..4).map { i ->
            Tile(userId = "u$i", name = "User $i", handle = "u$i", initials = "U$i", moderator = false, muted = false,
                speaking = false, level = 0f, me = false, followedBySpeakers = false, role = Role.SPEAKER)
        }
        val w = 1080
        stage.measure(View.MeasureSpec.makeMeasureSpec(w, View.MeasureSpec.EXACTLY), View.MeasureSpec.makeMeasureSpec(0, View.MeasureSpec.UNSPECIFIED))
        stage.layout(0, 0, w, stage.measuredHeight)
        val bmp = Bitmap.createBitmap(w, stage.measuredHeight, Bitmap.Config.ARGB_8888)
        stage.draw(Canvas(bmp))
        // The avatar centres: 3 columns; the 4th tile starts row 2.
        val cw = w / 3f
        val radius = cw * 0.31f
        val cy0 = radius + 10 * app.resources.displayMetrics.density
        val centres = listOf(cw / 2 to cy0, cw * 1.5f to cy0, cw * 2.5f to cy0, cw / 2 to cy0 + cw * 0.62f + 50 * app.resources.displayMetrics.density)
        // Sample just inside the circle, off the initials.
        val colours = centres.map { (x, y) -> bmp.getPixel(x.toInt(), (y + radius * 0.75f).toInt()) }
        assertTrue("u1..u4 -> ${colours.map { Integer.toHexString(it) }}", colours.toSet().size >= 3)
    }

    @Test
    fun `rotation and a process-like restart return to the same room with the same role`() {
        signIn("umar", "Umar")
        val (mod, room) = moderatorWithRoom("Late night", name = "Maya Sari")
        val rc = openRoom(room)
        mod.room!!.inviteToSpeak(myId())
        rc.get().waitText("Join the stage?")
        rc.get().click("Join the stage")
        mod.states.await("speaker") { s -> s.stage.any { it.user.id == myId() } }
        rc.get().waitText("Unmute")

        // Rotation: the activity is destroyed and recreated.
        val before = rc.get()
        val landscape = Configuration(app.resources.configuration).apply { orientation = Configuration.ORIENTATION_LANDSCAPE }
        RuntimeEnvironment.setQualifiers("+land")
        rc.configurationChange(landscape)
        val after = rc.get()
        assertTrue("recreated", before !== after)
        after.waitText("Late night")
        after.waitText("Unmute")
        Shots.save(after, "20-room-speaker-landscape", 891, 411)
        RuntimeEnvironment.setQualifiers("+port")
        assertEquals(Role.SPEAKER, app.rooms.state?.me?.role)

        // Process death: the saved state is all that is left; a new activity re-joins from it.
        val saved = Bundle()
        rc.saveInstanceState(saved)
        rc.pause().stop().destroy()
        // The process dies: the core's room goes away without a goodbye.
        app.rooms.abandon()
        app.executor.submit {}.get()
        val again = track(Robolectric.buildActivity(RoomActivity::class.java).setup(saved)).get()
        again.waitText("Late night")
        waitUntil("re-joined") { app.rooms.state?.me != null }
        again.waitText("Unmute")
        assertEquals(Role.SPEAKER, app.rooms.state?.me?.role)
        mod.states.await("back on stage") { s -> s.stage.any { it.user.id == myId() && it.role == Role.SPEAKER } }
    }

    @Test
    fun `accessibility - actionable views are described, and text at font scale 1_3 is not clipped`() {
        signIn("vina", "Vina")
        val (mod, room) = moderatorWithRoom("Accessible room", name = "Maya Sari")
        person("wayan", "Wayan").join(room.id)
        val checks = mutableListOf<String>()
        fun checkLaidOut(name: String, root: View) {
            for (v in views(root).filter { shown(it) && (it.isClickable || it.isLongClickable) }) {
                val described = !v.contentDescription.isNullOrBlank() || !(v as? TextView)?.text.isNullOrBlank()
                if (!described && v !is android.widget.EditText && v.javaClass.name.startsWith("android.widget.ScrollView").not() && v !is StageView) {
                    checks += "$name: ${v.javaClass.simpleName} ${v.id} has no label"
                }
                if (v.width > 0 && (v.width < dp(48) - 1 || v.height < dp(48) - 1) && v !is android.widget.EditText) {
                    checks += "$name: ${v.javaClass.simpleName} '${(v as? TextView)?.text ?: v.contentDescription}' is ${v.width}x${v.height} px, under 48 dp"
                }
            }
            // Nothing sticks out of the screen sideways (a row too wide for its text).
            for (v in views(root).filter { shown(it) && it.width > 0 && (it is TextView || it.isClickable) }) {
                var x = 0
                var p: View? = v
                while (p != null && p !== root) {
                    x += p.left - (if (p !== v) p.scrollX else 0)
                    p = p.parent as? View
                }
                if (x < -1 || x + v.width > root.width + 1) {
                    checks += "$name: '${(v as? TextView)?.text ?: v.contentDescription}' sticks out of the screen ($x..${x + v.width} of ${root.width} px)"
                }
            }
            for (t in views(root).filterIsInstance<TextView>().filter { shown(it) && it.text.isNotEmpty() && it.width > 0 }) {
                val layout = t.layout ?: continue
                val room = t.height - t.compoundPaddingTop - t.compoundPaddingBottom
                val need = layout.getLineBottom(minOf(t.lineCount, t.maxLines) - 1)
                val ellipsized = (0 until t.lineCount).any { layout.getEllipsisCount(it) > 0 }
                if (need > room + 1 && !ellipsized) checks += "$name: '${t.text}' is clipped ($need > $room px)"
            }
        }

        fun check(name: String, a: android.app.Activity) {
            val d = app.resources.displayMetrics.density
            for ((w, h) in Shots.sizes) {
                val root = a.root()
                root.measure(View.MeasureSpec.makeMeasureSpec((w * d).toInt(), View.MeasureSpec.EXACTLY),
                    View.MeasureSpec.makeMeasureSpec((h * d).toInt(), View.MeasureSpec.EXACTLY))
                root.layout(0, 0, (w * d).toInt(), (h * d).toInt())
                checkLaidOut("$name ${w}x$h", root)
            }
        }

        RuntimeEnvironment.setFontScale(1.3f)
        try {
            val w = track(Robolectric.buildActivity(WelcomeActivity::class.java).setup()).get()
            idle()
            check("welcome", w)
            Shots.save(w, "21-welcome-font130-light-411x891")
            Shots.save(w, "21-welcome-font130-light-360x640", 360, 640)
            val h = launch(HallwayActivity::class.java).get()
            h.waitText("Accessible room", 30_000)
            check("hallway", h)
            Shots.save(h, "22-hallway-font130-light-360x640", 360, 640)
            val r = openRoom(room).get()
            r.waitText("Wayan")
            check("room", r)
            Shots.save(r, "23-room-font130-light-360x640", 360, 640)
            assertTrue(stageView(r).contentDescription.contains("Maya Sari, moderator"))
        } finally {
            RuntimeEnvironment.setFontScale(1f)
        }
        assertTrue(checks.joinToString("\n"), checks.isEmpty())
        mod.states.await("the app is in the room") { s -> s.audience.any { it.user.id == myId() } }
    }

    @Test
    fun `palette contrast meets WCAG AA in both themes`() {
        fun lum(c: Int): Double {
            fun ch(v: Int): Double = (v / 255.0).let { if (it <= 0.03928) it / 12.92 else Math.pow((it + 0.055) / 1.055, 2.4) }
            return 0.2126 * ch((c shr 16) and 0xFF) + 0.7152 * ch((c shr 8) and 0xFF) + 0.0722 * ch(c and 0xFF)
        }
        fun ratio(a: Int, b: Int): Double {
            val (l1, l2) = lum(a) to lum(b)
            return (maxOf(l1, l2) + 0.05) / (minOf(l1, l2) + 0.05)
        }
        val bad = mutableListOf<String>()
        for ((theme, c) in listOf("light" to Palette.LIGHT, "dark" to Palette.DARK)) {
            // Text: 4.5:1.
            val text = listOf(
                "onSurface/background" to (c.onSurface to c.background),
                "onSurface/surface" to (c.onSurface to c.surface),
                "onSurfaceVariant/background" to (c.onSurfaceVariant to c.background),
                "onSurfaceVariant/surface" to (c.onSurfaceVariant to c.surface),
                "onPrimary/primary" to (c.onPrimary to c.primary),
                "onPrimaryContainer/primaryContainer" to (c.onPrimaryContainer to c.primaryContainer),
                "primary/surface (text buttons)" to (c.primary to c.surface),
                "primary/background" to (c.primary to c.background),
                "error/surface" to (c.error to c.surface),
                "onError/error" to (c.onError to c.error),
                "onBanner/banner" to (c.onBanner to c.banner),
                "speaking/surface (LIVE label)" to (c.speaking to c.surface),
            )
            for ((name, pair) in text) {
                val r = ratio(pair.first, pair.second)
                if (r < 4.5) bad += "$theme $name: ${"%.2f".format(r)}"
            }
            // Non-text (the speaking ring against the card): 3:1.
            if (ratio(c.speaking, c.surface) < 3.0) bad += "$theme speaking ring"
        }
        // White initials on every avatar colour: large bold text, 3:1 (AA large); we hold 4.5.
        for (a in Palette.AVATARS) {
            val r = ratio(android.graphics.Color.WHITE, a)
            if (r < 4.5) bad += "avatar ${Integer.toHexString(a)}: ${"%.2f".format(r)}"
        }
        assertTrue(bad.joinToString("\n"), bad.isEmpty())
    }

    private fun dp(v: Int) = (v * app.resources.displayMetrics.density).toInt()
}
