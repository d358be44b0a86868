package org.ruang.app.robo

import android.Manifest
import android.app.Activity
import android.content.Intent
import org.junit.After
import org.junit.AfterClass
import org.junit.Before
import org.junit.runner.RunWith
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import org.robolectric.annotation.GraphicsMode
import org.robolectric.android.controller.ActivityController
import org.ruang.app.HallwayActivity
import org.ruang.app.RoomActivity
import org.ruang.app.StageView
import org.ruang.core.AudioConfig
import org.ruang.core.Profile
import org.ruang.core.Role
import org.ruang.core.RoomKind
import org.ruang.core.RoomSummary
import java.io.File

/**
 * Base of the UI tests: Robolectric (SDK 35, native graphics, a 411x891 dp phone) with the
 * app's real manifest, resources and Application, the real core through JNA and the real
 * server ([Live]). Cleans up the rooms and helpers each test made.
 */
@RunWith(RobolectricTestRunner::class)
@Config(sdk = [35], qualifiers = "w411dp-h891dp-xhdpi")
@GraphicsMode(GraphicsMode.Mode.NATIVE)
abstract class LiveTest {
    private val people = mutableListOf<Person>()
    private val bots = mutableListOf<Bot>()
    private val controllers = mutableListOf<ActivityController<out Activity>>()
    val speech: File by lazy { speechLikeWav(6) }

    @Before
    fun start() {
        freshApp()
        shadowOf(app).grantPermissions(Manifest.permission.RECORD_AUDIO, Manifest.permission.POST_NOTIFICATIONS)
        // The core has no platform audio device on the JVM: the app's microphone is a WAV
        // played by the core's virtual device (everything after it is the real path).
        app.rooms.audioConfig = { capture -> AudioConfig(micWav = speech.path, recordWav = null, capture = capture) }
    }

    @After
    fun stop() {
        runCatching {
            if (app.rooms.state?.me?.role == Role.MODERATOR) app.rooms.command({ it.endRoom() })
            app.rooms.leave(quietly = true) {}
        }
        for (c in controllers.reversed()) runCatching { c.pause().stop().destroy() }
        for (b in bots) b.close()
        for (p in people) {
            runCatching { if (p.states.latest?.me?.role == Role.MODERATOR) p.room?.endRoom() }
            p.leave()
            runCatching { p.client.close() }
        }
        // Let the app's core thread finish leaving before the next test's app starts.
        runCatching { app.executor.submit {}.get() }
        idle()
    }

    fun person(base: String, name: String): Person = Live.person(base, name).also { people += it }

    fun bot(vararg args: String, token: String): Bot = Live.bot(*args, token = token).also { bots += it }

    fun <T : Activity> track(c: ActivityController<T>): ActivityController<T> = c.also { controllers += it }

    fun <T : Activity> launch(cls: Class<T>, intent: Intent? = null): ActivityController<T> =
        track(Robolectric.buildActivity(cls, intent ?: Intent(app, cls)).setup())

    /** Signs the app in through its own sign-up path (a fresh invite from the admin). */
    fun signIn(base: String, name: String): Profile {
        val handle = Live.handle(base)
        var result: Result<Profile>? = null
        app.signUp(Live.invite(), handle, name) { result = it }
        return waitFor("sign-up of $handle") { result }.getOrThrow()
    }

    /** A helper moderator with a live room, joined (on stage). */
    fun moderatorWithRoom(title: String, kind: RoomKind = RoomKind.OPEN, name: String = "Maya Sari"): Pair<Person, RoomSummary> {
        val mod = person("mod", name)
        val room = mod.client.createRoom(title, kind)
        mod.join(room.id, linkToken(room.link))
        return mod to room
    }

    fun linkToken(link: String): String? = link.substringAfter("?t=", "").ifEmpty { null }

    fun openRoom(room: RoomSummary): ActivityController<RoomActivity> {
        val c = launch(RoomActivity::class.java, RoomActivity.open(app, room.id, linkToken(room.link), room.link))
        c.get().waitText(room.title)
        waitUntil("the app joined ${room.id}") { app.rooms.state?.me != null }
        return c
    }

    fun myId(): String = app.profile!!.id

    fun stageView(a: Activity, index: Int = 0): StageView =
        views(a.root()).filterIsInstance<StageView>().toList()[index]

    /** A second room screen for the dark screenshots: the app already holds the room. */
    fun darkRoom(): ActivityController<RoomActivity> {
        val id = app.rooms.roomId!!
        return Robolectric.buildActivity(RoomActivity::class.java, RoomActivity.open(app, id, app.rooms.linkToken, app.rooms.shareLink)).setup()
    }

    fun darkHallway(): ActivityController<HallwayActivity> =
        Robolectric.buildActivity(HallwayActivity::class.java, Intent(app, HallwayActivity::class.java)).setup()

    companion object {
        @JvmStatic
        @AfterClass
        fun sheet() {
            Shots.contactSheet()
        }
    }
}
