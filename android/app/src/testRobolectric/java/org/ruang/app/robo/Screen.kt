package org.ruang.app.robo

import android.app.Activity
import android.app.Dialog
import android.content.Intent
import android.os.Looper
import android.view.View
import android.view.ViewGroup
import android.widget.TextView
import org.robolectric.Robolectric
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.android.controller.ActivityController
import org.robolectric.shadows.ShadowDialog
import org.ruang.app.RuangApp
import org.ruang.app.TokenStore

/** In-memory session store (Robolectric has no AndroidKeyStore); survives "process death". */
object MemoryTokens : TokenStore {
    @Volatile var token: String? = null
    override fun save(token: String) { this.token = token }
    override fun load(): String? = token
    override fun hasToken(): Boolean = token != null
    override fun clear() { token = null }
}

/** In-memory device identities (the production store needs AndroidKeyStore); survives "process death". */
object MemoryIdentities : org.ruang.app.IdentityStore {
    val kept = java.util.concurrent.ConcurrentHashMap<String, ByteArray>()
    override fun load(userId: String): ByteArray? = kept[userId]
    override fun save(userId: String, identity: ByteArray) { kept[userId] = identity }
}

val app: RuangApp get() = RuntimeEnvironment.getApplication() as RuangApp

/** The app, pointed at the live server, signed out, with the in-memory token store. */
fun freshApp(): RuangApp {
    MemoryTokens.token = null
    ShadowDialog.reset()
    val a = app
    a.installTokenStore(MemoryTokens)
    a.installIdentityStore(MemoryIdentities)
    a.serverUrl = Live.url
    return a
}

fun idle() = shadowOf(Looper.getMainLooper()).idle()

/** Polls (idling the main looper) until [f] gives non-null or the deadline passes. */
fun <T : Any> waitFor(what: String, timeoutMs: Long = 30_000, f: () -> T?): T = waitFor({ what }, timeoutMs, f)

/** As [waitFor], with the description made at the timeout (so it can show the screen then). */
fun <T : Any> waitFor(what: () -> String, timeoutMs: Long = 30_000, f: () -> T?): T {
    val deadline = System.currentTimeMillis() + timeoutMs
    var last: Throwable? = null
    while (true) {
        idle()
        try {
            f()?.let { return it }
        } catch (e: Throwable) {
            last = e
        }
        if (System.currentTimeMillis() > deadline) {
            throw AssertionError("timed out waiting for: ${what()}" + (last?.let { " (last error: $it)" } ?: ""), last)
        }
        Thread.sleep(25)
    }
}

fun waitUntil(what: String, timeoutMs: Long = 30_000, f: () -> Boolean) {
    waitFor(what, timeoutMs) { if (f()) true else null }
}

fun views(root: View): Sequence<View> = sequence {
    yield(root)
    if (root is ViewGroup) for (i in 0 until root.childCount) yieldAll(views(root.getChildAt(i)))
}

fun shown(v: View): Boolean {
    var x: View? = v
    while (x != null) {
        if (x.visibility != View.VISIBLE) return false
        x = x.parent as? View
    }
    return true
}

/** Every visible text on [root] (TextViews and content descriptions). */
fun texts(root: View): List<String> = views(root).filter { shown(it) }.flatMap { v ->
    listOfNotNull((v as? TextView)?.text?.toString()?.takeIf { it.isNotEmpty() }, v.contentDescription?.toString())
}.toList()

fun Activity.root(): View = window.decorView

/** The dialogs showing now (ours are framework Dialogs). */
fun dialogs(): List<Dialog> = ShadowDialog.getShownDialogs().filter { it.isShowing }

/** The activity a dialog was made for (its context wraps the activity). */
fun Dialog.activity(): Activity? {
    ownerActivity?.let { return it }
    var c: android.content.Context? = context
    while (c is android.content.ContextWrapper) {
        if (c is Activity) return c
        c = c.baseContext
    }
    return null
}

fun dialogsOf(a: Activity): List<Dialog> = dialogs().filter { it.activity() === a }

/** All visible texts: the activity and its showing dialogs. */
fun Activity.allTexts(): List<String> = texts(root()) + dialogsOf(this).flatMap { texts(it.window!!.decorView) }

fun Activity.hasText(t: String): Boolean = allTexts().any { it.contains(t) }

fun Activity.waitText(t: String, timeoutMs: Long = 30_000): String =
    waitFor({ "'$t' on ${javaClass.simpleName} (showing at the timeout: ${allTexts().take(40)})" }, timeoutMs) { allTexts().firstOrNull { it.contains(t) } }

/** A visible, clickable view whose text or content description contains [t] (dialogs first). */
fun Activity.findClickable(t: String): View? {
    val roots = dialogsOf(this).map { it.window!!.decorView } + root()
    for (r in roots) {
        val v = views(r).firstOrNull { v ->
            shown(v) && v.isClickable && v.isEnabled &&
                (((v as? TextView)?.text?.toString()?.contains(t) == true) || v.contentDescription?.toString()?.contains(t) == true)
        }
        if (v != null) return v
    }
    return null
}

fun Activity.click(t: String) {
    val v = waitFor("clickable '$t' (showing: ${allTexts().take(40)})") { findClickable(t) }
    v.performClick()
    idle()
}

fun Activity.field(id: Int): TextView = findViewById<TextView>(id)!!

fun Activity.type(id: Int, text: String) {
    field(id).setText(text)
}

/** The activity [from] started last, built and set up (what the system would do). */
fun <T : Activity> follow(from: Activity, cls: Class<T>, timeoutMs: Long = 30_000): ActivityController<T> {
    val intent = waitFor("${from.javaClass.simpleName} starts ${cls.simpleName}", timeoutMs) {
        var i: Intent? = shadowOf(from).nextStartedActivity
        while (i != null && i.component?.className != cls.name) i = shadowOf(from).nextStartedActivity
        i
    }
    return Robolectric.buildActivity(cls, intent).setup()
}

/** The next intent started from the application context (services, MissingCoreActivity). */
fun nextAppActivity(cls: Class<*>): Intent? {
    var i = shadowOf(app).nextStartedActivity
    while (i != null && i.component?.className != cls.name) i = shadowOf(app).nextStartedActivity
    return i
}
