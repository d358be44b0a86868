package org.ruang.app.robo

import android.view.View
import android.widget.EditText
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test
import org.ruang.app.HallwayActivity
import org.ruang.app.RoomActivity
import org.ruang.app.presenter.E2eePresenter
import org.ruang.core.E2eePhase
import org.ruang.core.RoomKind
import org.ruang.core.RuangClient
import org.ruang.core.RuangException
import org.ruang.core.deviceFingerprint

/**
 * End-to-end encrypted rooms (issue 17) against the real server, with the real core's key
 * agents: the host is a `ruang bot speak` process (its device makes the room's MLS group and
 * adds the others), the app joins as a member, and the codes on both sides are compared.
 */
class E2eeTest : LiveTest() {
    private fun myClient(): RuangClient = Live.client().also { it.restoreSession(MemoryTokens.token!!) }

    /** The bot's "encrypted room: epoch N, D devices, safety code …" lines: epoch -> (devices, code). */
    private fun botEpochs(bot: Bot): Map<Long, Pair<Int, String>> = bot.log.readLines().mapNotNull { line ->
        Regex("""encrypted room: epoch (\d+), (\d+) devices, safety code ((\d{4} ){2}\d{4})""").find(line)
            ?.let { m -> m.groupValues[1].toLong() to (m.groupValues[2].toInt() to m.groupValues[3]) }
    }.toMap()

    @Test
    fun `a member waits, is added by the host's device, shows the host's safety code and hears the host`() {
        val me = signIn("eko", "Eko Prasetyo")
        val hostHandle = Live.handle("sari")
        val hostToken = Live.cli("signup", "--invite", Live.invite(), "--handle", hostHandle, "--name", "Sari Wulandari")
        val roomId = Live.cli("room", "create", "--title", "Sealed circle", "--kind", "closed", "--e2ee", token = hostToken)
            .lines().last().trim()
        Live.cli("room", "grant", roomId, "--handle", me.handle, token = hostToken)

        // The hallway: the granted closed room, with its lock.
        val hc = launch(HallwayActivity::class.java)
        val h = hc.get()
        h.waitText("Sealed circle")
        h.waitText("${E2eePresenter.LOCK} Encrypted")
        Shots.all("71-hallway-e2ee", h) { darkHallway() }
        h.click("Sealed circle")
        val rc = track(follow(h, RoomActivity::class.java))
        val r = rc.get()
        r.waitText("Sealed circle")

        // No moderator's device yet: the app's device asked to be added and waits.
        waitUntil("the lock badge shows") { r.e2eeBadge.visibility == View.VISIBLE }
        val waiting = waitFor("waiting to be added") { app.rooms.e2ee?.takeIf { it.phase == E2eePhase.WAITING } }
        assertTrue(waiting.encrypted)
        assertNull(waiting.safetyCode)
        // The fingerprint is the kept identity's (the store the app encrypts with its Keystore key).
        val kept = MemoryIdentities.load(me.id)!!
        assertEquals(deviceFingerprint(kept), waiting.fingerprint)
        assertEquals(app.deviceFingerprint, waiting.fingerprint)
        r.e2eeBadge.performClick()
        idle()
        r.waitText(E2eePresenter.WAITING)
        r.waitText("This device: ${waiting.fingerprint}")
        r.waitText("cannot listen to it")
        Shots.save(r, "72-room-e2ee-waiting-light-411x891")

        // The host's device (the bot) makes the group and adds the app's device.
        val host = bot("bot", "speak", "--room", roomId, "--wav", speech.path, "--loop", "--seconds", "120", token = hostToken)
        val member = waitFor({ "the app's device is added (bot: ${host.log.readText()})" }, 60_000) {
            app.rooms.e2ee?.takeIf { it.phase == E2eePhase.MEMBER }
        }
        val epoch = member.epoch!!.toLong()
        val (devices, hostCode) = waitFor({ "the host prints epoch $epoch (bot: ${host.log.readText()})" }) { botEpochs(host)[epoch] }
        assertEquals(2, devices)
        assertEquals(2u, member.members)
        assertEquals("the same epoch, the same code on the host's device and the app's", hostCode, member.safetyCode)

        // The open sheet followed: the code in large digits, the epoch and the devices.
        r.waitText(hostCode)
        r.waitText("Epoch $epoch · 2 devices")
        r.waitText(E2eePresenter.CAPTION)
        assertFalse(r.hasText(E2eePresenter.WAITING))
        Shots.all("73-room-e2ee-sheet", r) {
            darkRoom().also { c ->
                waitUntil("the dark screen's badge") { c.get().e2eeBadge.visibility == View.VISIBLE }
                c.get().e2eeBadge.performClick()
                idle()
            }
        }
        r.click("Done")
        assertNull(r.e2eeDialog)

        // The host's encrypted audio opens in the app's engine (keyed through the FFI's agent).
        val stats = waitFor({ "encrypted audio decrypts (stats: ${app.rooms.room?.audioStats()})" }, 60_000) {
            app.rooms.room?.audioStats()?.takeIf { it.framesDecrypted >= 150uL && it.framesWithAudio >= 100uL }
        }
        assertTrue("frames that did not open: $stats", stats.framesUndecryptable <= 10uL)
        r.waitText("Sari Wulandari, moderator, speaking")
        Shots.all("74-room-e2ee-badge", r) { darkRoom() }

        // A third device (a member through the core's FFI, as the app) is added: a new epoch
        // and a new code, the same on all three.
        val budi = person("budi", "Budi Santoso")
        Live.cli("room", "grant", roomId, "--handle", budi.profile.handle, token = hostToken)
        val budiRoom = budi.join(roomId)
        val three = waitFor("three devices in the group", 60_000) {
            app.rooms.e2ee?.takeIf { it.phase == E2eePhase.MEMBER && it.members == 3u }
        }
        val next = three.epoch!!.toLong()
        assertTrue(next > epoch)
        assertNotEquals(hostCode, three.safetyCode)
        val (devicesNow, hostCodeNow) = waitFor("the host prints epoch $next") { botEpochs(host)[next] }
        assertEquals(3, devicesNow)
        assertEquals(hostCodeNow, three.safetyCode)
        val budiInfo = waitFor("budi's device at epoch $next") { budiRoom.e2eeInfo().takeIf { it.epoch?.toLong() == next } }
        assertEquals(hostCodeNow, budiInfo.safetyCode)
        r.e2eeBadge.performClick()
        r.waitText(hostCodeNow)
        r.waitText("Epoch $next · 3 devices")
        r.click("Done")
        Shots.text("73-host-bot", host.log.readText())
        // Other tests share the server: the host ends the room.
        Live.cli("room", "end", roomId, token = hostToken)
        waitUntil("the room ended for the app") { app.rooms.roomId == null }
    }

    @Test
    fun `the start dialog's encryption switch is for closed rooms and makes an encrypted room`() {
        signIn("fitri", "Fitri Handayani")
        // The server refuses encryption for other kinds.
        try {
            myClient().createRoom("Open and sealed?", RoomKind.OPEN, true)
            fail("an open room cannot be encrypted")
        } catch (e: RuangException.InvalidInput) {
            assertEquals("invalid_field", e.code)
        }

        val h = launch(HallwayActivity::class.java).get()
        h.click("Start a room")
        val d = waitFor("the start dialog") { h.startDialog?.takeIf { it.isShowing } }
        val sw = h.startE2eeSwitch!!
        assertFalse("off for an open room", sw.isEnabled)
        assertFalse(sw.isChecked)
        h.waitText("Only for closed rooms.")
        val title = "Fitri's sealed room"
        views(d.window!!.decorView).filterIsInstance<EditText>().first().setText(title)
        h.click("Closed room")
        assertTrue(sw.isEnabled)
        sw.performClick()
        assertTrue(sw.isChecked)
        h.waitText("Only the devices in the room hold the keys.")
        // Another kind turns it off; back to closed it is off until switched on again.
        h.click("Social room")
        assertFalse(sw.isChecked)
        assertFalse(sw.isEnabled)
        h.click("Closed room")
        assertFalse(sw.isChecked)
        sw.performClick()
        Shots.all("75-hallway-start-room-e2ee", h) {
            darkHallway().also { dc ->
                dc.get().click("Start a room")
                views(dc.get().startDialog!!.window!!.decorView).filterIsInstance<EditText>().first().setText(title)
                dc.get().click("Closed room")
                dc.get().startE2eeSwitch!!.performClick()
            }
        }
        h.click("Let's go")
        val rc = track(follow(h, RoomActivity::class.java))
        val r = rc.get()
        r.waitText(title)
        // The app is the host: its own device makes the group (epoch 1, one device).
        val info = waitFor("the app's device made the group", 60_000) {
            app.rooms.e2ee?.takeIf { it.phase == E2eePhase.MEMBER }
        }
        assertTrue(info.encrypted)
        assertEquals(1u, info.members)
        assertEquals(RoomKind.CLOSED, app.rooms.state?.kind)
        waitUntil("the lock badge shows") { r.e2eeBadge.visibility == View.VISIBLE }
        // Encrypted rooms are not recorded: the menu does not offer it, and the server refuses.
        r.click("Room settings")
        r.waitText("End the room")
        assertFalse(r.hasText("Start recording"))
        assertFalse(r.hasText("Clip the last 30 seconds"))
        for (dlg in dialogsOf(r)) dlg.dismiss()
        idle()
        val refused = runCatching { app.rooms.room!!.setRecording(true) }.exceptionOrNull()
        assertTrue("recording refused: $refused", refused is RuangException.Forbidden)
    }
}
