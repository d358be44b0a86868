package org.ruang.app

import android.app.Activity
import android.os.Build
import android.os.Bundle
import android.view.Gravity
import android.widget.LinearLayout
import android.widget.ScrollView

/**
 * The one screen shown when the core's native library cannot load: the APK was built without
 * libruang_ffi.so for this phone's ABI (for example an APK built where there is no NDK). Every
 * core call fails the same way then (UnsatisfiedLinkError once, NoClassDefFoundError after),
 * so the app stops here instead of showing a different error on each tap.
 */
class MissingCoreActivity : Activity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val c = colors
        val root = vertical(Space.XL).apply {
            setBackgroundColor(c.background)
            gravity = Gravity.CENTER
        }
        root.addView(emptyState("⚠", TITLE, MESSAGE), matchWrap())
        val abis = Build.SUPPORTED_ABIS?.joinToString(", ").orEmpty().ifEmpty { "unknown" }
        root.addView(card().apply {
            addView(label("Details", TypeScale.LABEL, color = c.onSurface, medium = true))
            addView(label("This phone runs: $abis\nThe app needs libruang_ffi.so built for one of these.",
                TypeScale.BODY, color = c.onSurfaceVariant).apply { setPadding(0, dp(Space.XS), 0, 0) })
        }, matchWrap().margins(this, t = Space.L))
        root.addView(button("Close Ruang", ButtonStyle.FILLED, large = true) { finishAffinity() },
            matchWrap().margins(this, t = Space.XL))
        setContentView(ScrollView(this).apply {
            isFillViewport = true
            setBackgroundColor(c.background)
            addView(root, LinearLayout.LayoutParams(LinearLayout.LayoutParams.MATCH_PARENT, LinearLayout.LayoutParams.MATCH_PARENT))
        })
    }

    companion object {
        const val TITLE = "This build lacks the core for this phone"
        const val MESSAGE = "This copy of Ruang was built without its audio core for this phone's processor, " +
            "so it can't sign in or join rooms. Install a build made for this phone."
    }
}
