package org.ruang.app.presenter

import org.junit.jupiter.api.Test
import org.ruang.core.E2eeInfo
import org.ruang.core.E2eePhase
import org.ruang.core.RoomKind
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue

class E2eePresenterTest {
    private fun info(
        phase: E2eePhase,
        epoch: ULong? = null,
        code: String? = null,
        members: UInt = 0u,
        encrypted: Boolean = true,
    ) = E2eeInfo(encrypted, phase, epoch, code, members, if (encrypted) "1a2b 3c4d 5e6f 7a8b 9c0d" else null, null)

    @Test
    fun plainRoomsHaveNoBadge() {
        assertNull(E2eePresenter.badge(null))
        assertNull(E2eePresenter.badge(info(E2eePhase.NOT_ENCRYPTED, encrypted = false)))
    }

    @Test
    fun theBadgeShowsFromTheStartAndSaysWhenKeysAreReady() {
        val waiting = assertNotNull(E2eePresenter.badge(info(E2eePhase.WAITING)))
        assertEquals("🔒  End-to-end encrypted", waiting.label)
        assertFalse(waiting.ready)
        assertTrue(waiting.description.contains("Waiting"))
        val member = assertNotNull(E2eePresenter.badge(info(E2eePhase.MEMBER, 2uL, "0123 4567 8901", 2u)))
        assertTrue(member.ready)
        assertEquals("End-to-end encrypted. Show the safety code", member.description)
    }

    @Test
    fun aMembersSheetShowsTheCodeEpochDevicesAndFingerprint() {
        val s = E2eePresenter.sheet(info(E2eePhase.MEMBER, 3uL, "0123 4567 8901", 2u))
        assertEquals("0123 4567 8901", s.code)
        assertEquals("Safety code 0 1 2 3, 4 5 6 7, 8 9 0 1", s.codeSpoken)
        assertEquals(E2eePresenter.CAPTION, s.codeCaption)
        assertEquals("Epoch 3 · 2 devices", s.codeDetail)
        assertEquals("This device: 1a2b 3c4d 5e6f 7a8b 9c0d", s.fingerprint)
        assertNull(s.status)
        // What it means: audio the server cannot hear, no recordings, speaking activity visible.
        assertTrue(s.points.any { it.contains("cannot listen") })
        assertTrue(s.points.any { it.contains("No recording") && it.contains("replays") && it.contains("clips") })
        assertTrue(s.points.any { it.contains("chat") && it.contains("not end-to-end encrypted") })
        assertTrue(s.points.any { it.contains("when each person speaks") })
    }

    @Test
    fun beforeBeingAddedTheSheetWaitsAndShowsNoCode() {
        // A code from an earlier epoch is never shown while the device is not a member.
        val s = E2eePresenter.sheet(info(E2eePhase.WAITING, 1uL, "0123 4567 8901", 1u))
        assertEquals(E2eePresenter.WAITING, s.status)
        assertNull(s.code)
        assertNull(s.codeCaption)
        assertNull(s.codeDetail)
        assertEquals("This device: 1a2b 3c4d 5e6f 7a8b 9c0d", s.fingerprint)
        assertEquals(E2eePresenter.STARTING, E2eePresenter.sheet(info(E2eePhase.STARTING)).status)
        assertEquals(E2eePresenter.REMOVED, E2eePresenter.sheet(info(E2eePhase.REMOVED, 4uL, "1111 2222 3333", 2u)).status)
        assertNull(E2eePresenter.sheet(info(E2eePhase.REMOVED, 4uL, "1111 2222 3333", 2u)).code)
    }

    @Test
    fun codesAreGroupedAndFoundInABotsLine() {
        assertEquals("0123 4567 8901", E2eePresenter.formatCode("012345678901"))
        assertEquals("Epoch 1 · 1 device", E2eePresenter.detail(1uL, 1u))
        assertEquals(
            "0042 1337 9000",
            E2eePresenter.codeIn("encrypted room: epoch 2, 2 devices, safety code 0042 1337 9000"),
        )
        assertNull(E2eePresenter.codeIn("encrypted room: waiting to be added"))
    }

    @Test
    fun theCreateSwitchIsForClosedRoomsOnly() {
        assertTrue(E2eePresenter.allowed(RoomKind.CLOSED))
        assertFalse(E2eePresenter.allowed(RoomKind.OPEN))
        assertFalse(E2eePresenter.allowed(RoomKind.SOCIAL))
        assertTrue(E2eePresenter.switchAfterKind(RoomKind.CLOSED, true))
        assertFalse(E2eePresenter.switchAfterKind(RoomKind.OPEN, true), "leaving closed turns it off")
        assertFalse(E2eePresenter.switchAfterKind(RoomKind.CLOSED, false))
        assertEquals("Only for closed rooms.", E2eePresenter.switchHint(RoomKind.SOCIAL))
    }

    @Test
    fun anEncryptedRoomsMenuHasNoRecordingOrClips() {
        val all = listOf(RoomMenuItem.HANDS_OFF, RoomMenuItem.START_RECORDING, RoomMenuItem.CLIP, RoomMenuItem.REPORT_ROOM, RoomMenuItem.END_ROOM)
        assertEquals(all, E2eePresenter.roomMenu(all, null))
        assertEquals(all, E2eePresenter.roomMenu(all, info(E2eePhase.NOT_ENCRYPTED, encrypted = false)))
        assertEquals(
            listOf(RoomMenuItem.HANDS_OFF, RoomMenuItem.REPORT_ROOM, RoomMenuItem.END_ROOM),
            E2eePresenter.roomMenu(all, info(E2eePhase.WAITING)),
        )
    }

    @Test
    fun encryptedRoomsCarryALockInTheHallway() {
        assertTrue(HallwayPresenter.card(summary(kind = RoomKind.CLOSED, e2ee = true)).encrypted)
        assertFalse(HallwayPresenter.card(summary(kind = RoomKind.CLOSED)).encrypted)
    }
}
