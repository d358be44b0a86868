package org.ruang.app.robo

import android.app.Notification
import android.app.NotificationManager
import android.content.Context
import android.content.Intent
import android.content.pm.ServiceInfo
import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.Paint
import android.graphics.Typeface
import android.media.AudioManager
import android.media.session.PlaybackState
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertTrue
import org.junit.Test
import org.robolectric.Robolectric
import org.robolectric.Shadows.shadowOf
import org.robolectric.android.controller.ServiceController
import org.ruang.app.Palette
import org.ruang.app.RoomService
import org.ruang.core.Role

class ServiceTest : LiveTest() {
    private fun startedService(): ServiceController<RoomService> {
        val intent = waitFor("RoomService started") {
            var i: Intent? = shadowOf(app).nextStartedService
            while (i != null && i.component?.className != RoomService::class.java.name) i = shadowOf(app).nextStartedService
            i
        }
        assertEquals(RoomService.ACTION_START, intent.action)
        return Robolectric.buildService(RoomService::class.java, intent).create().startCommand(0, 1)
    }

    private fun notification(s: RoomService): Notification =
        shadowOf(s.getSystemService(Context.NOTIFICATION_SERVICE) as NotificationManager).getNotification(RoomService.NOTIFICATION_ID)
            ?: shadowOf(s).lastForegroundNotification

    private fun Notification.text() = extras.getCharSequence(Notification.EXTRA_TEXT)?.toString().orEmpty()
    private fun Notification.title() = extras.getCharSequence(Notification.EXTRA_TITLE)?.toString().orEmpty()

    /** The notification as text, and drawn as a card for the contact sheet. */
    private fun saveNotification(name: String, n: Notification) {
        val actions = n.actions?.map { it.title.toString() } ?: emptyList()
        Shots.text(name, "title: ${n.title()}\ntext: ${n.text()}\nactions: ${actions.joinToString(", ")}\n" +
            "ongoing: ${n.flags and Notification.FLAG_ONGOING_EVENT != 0}\nchannel: ${n.channelId}\n")
        val d = app.resources.displayMetrics.density
        val w = (411 * d).toInt()
        val h = (140 * d).toInt()
        val bmp = Bitmap.createBitmap(w, h, Bitmap.Config.ARGB_8888)
        val c = Canvas(bmp)
        c.drawColor(0xFF2B2623.toInt())
        val card = Paint(Paint.ANTI_ALIAS_FLAG).apply { color = Palette.LIGHT.surface }
        c.drawRoundRect(12 * d, 12 * d, w - 12 * d, h - 12 * d, 20 * d, 20 * d, card)
        val p = Paint(Paint.ANTI_ALIAS_FLAG).apply { color = Palette.LIGHT.onSurface; textSize = 16 * d; typeface = Typeface.DEFAULT_BOLD }
        c.drawText("Ruang · " + n.title(), 28 * d, 44 * d, p)
        p.typeface = Typeface.DEFAULT; p.color = Palette.LIGHT.onSurfaceVariant; p.textSize = 14 * d
        c.drawText(n.text(), 28 * d, 70 * d, p)
        p.color = Palette.LIGHT.primary; p.typeface = Typeface.DEFAULT_BOLD
        var x = 28 * d
        for (a in actions) { c.drawText(a.uppercase(), x, 106 * d, p); x += p.measureText(a.uppercase()) + 28 * d }
        Shots.assertNotBlank(name, bmp)
        Shots.write(name, bmp)
    }

    @Test
    fun `background listening - foreground service types, notification names the speaker, Mute and Leave, media session, audio focus`() {
        signIn("tari", "Tari")
        val (mod, room) = moderatorWithRoom("Night radio", name = "Maya Sari")
        val rc = openRoom(room)
        val sc = startedService()
        val s = sc.get()
        assertEquals(ServiceInfo.FOREGROUND_SERVICE_TYPE_MEDIA_PLAYBACK, s.foregroundServiceType)

        // The moderator talks (real audio through the server): the notification names her.
        mod.speak(speech)
        mod.room!!.setMuted(false)
        val talking = waitFor("notification names the speaker", 30_000) { notification(s).takeIf { it.text() == "Maya Sari is speaking" } }
        assertEquals("Night radio", talking.title())
        assertEquals(listOf("Leave"), talking.actions.map { it.title.toString() })
        saveNotification("17-notification-listener", talking)

        // Leaving the room screen keeps the room (and the service).
        rc.pause().stop().destroy()
        idle()
        assertEquals(room.id, app.rooms.roomId)
        mod.states.await("still in the room") { st -> st.audience.any { it.user.id == myId() } }

        // Media session: playing; audio focus loss pauses it (volume 0), gain resumes.
        val session = s.mediaSession ?: error("no media session")
        assertTrue(session.isActive)
        waitUntil("playing") { s.playbackState == PlaybackState.STATE_PLAYING }
        val audio = s.getSystemService(Context.AUDIO_SERVICE) as AudioManager
        val focus = assertNotNull(shadowOf(audio).lastAudioFocusRequest).let { shadowOf(audio).lastAudioFocusRequest!! }
        val listener = focus.listener ?: error("no focus listener")
        listener.onAudioFocusChange(AudioManager.AUDIOFOCUS_LOSS_TRANSIENT)
        idle()
        assertEquals(PlaybackState.STATE_PAUSED, s.playbackState)
        listener.onAudioFocusChange(AudioManager.AUDIOFOCUS_GAIN)
        idle()
        assertEquals(PlaybackState.STATE_PLAYING, s.playbackState)

        // On stage: the microphone type joins, and the notification offers Mute.
        mod.room!!.inviteToSpeak(myId())
        waitUntil("invited") { app.rooms.state?.invitedToSpeak == true }
        app.rooms.command({ it.acceptInvite() })
        waitUntil("on stage") { app.rooms.state?.me?.role == Role.SPEAKER }
        app.rooms.command({ it.setMuted(false) })
        val onStage = waitFor("Mute in the notification") { notification(s).takeIf { n -> n.actions.any { it.title == "Mute" } } }
        saveNotification("18-notification-speaker", onStage)
        waitUntil("microphone type") { s.foregroundServiceType and ServiceInfo.FOREGROUND_SERVICE_TYPE_MICROPHONE != 0 }
        assertTrue(s.foregroundServiceType and ServiceInfo.FOREGROUND_SERVICE_TYPE_MEDIA_PLAYBACK != 0)

        // Mute from the notification.
        sc.withIntent(Intent(app, RoomService::class.java).setAction(RoomService.ACTION_MUTE)).startCommand(0, 2)
        mod.states.await("muted from the notification") { st -> st.stage.any { it.user.id == myId() && it.muted } }
        waitFor("Unmute offered") { notification(s).takeIf { n -> n.actions.any { it.title == "Unmute" } } }

        // Leave from the notification.
        sc.withIntent(Intent(app, RoomService::class.java).setAction(RoomService.ACTION_LEAVE)).startCommand(0, 3)
        idle()
        mod.states.await("left from the notification") { st -> st.stage.none { it.user.id == myId() } && st.audience.none { it.user.id == myId() } }
        assertEquals(null, app.rooms.roomId)
        assertTrue(shadowOf(s).isStoppedBySelf)
    }
}
