package org.ruang.app.presenter

import org.junit.jupiter.api.Test
import org.ruang.core.ConnectionStatus
import org.ruang.core.HandView
import org.ruang.core.Role
import org.ruang.core.RoomKind
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue

class RoomPresenterTest {
    private val mod = person("mod", Role.MODERATOR, name = "Maya Sari")
    private val speaker = person("ana", Role.SPEAKER, name = "Ana Putri", level = 0.6f)

    @Test
    fun stageTilesCarryInitialsBadgesMutedAndLevels() {
        val muted = person("budi", Role.SPEAKER, name = "Budi", muted = true, level = 0.9f)
        val s = RoomPresenter.present(roomState(me = person("me"), stage = listOf(mod, speaker, muted)))
        assertEquals(listOf("MS", "AP", "B"), s.stage.map { it.initials })
        assertEquals(listOf(true, false, false), s.stage.map { it.moderator })
        assertEquals(listOf(false, false, true), s.stage.map { it.muted })
        assertEquals(0.6f, s.stage[1].level)
        assertTrue(s.stage[1].speaking)
        // A muted speaker never shows the ring, whatever the level says.
        assertEquals(0f, s.stage[2].level)
        assertFalse(s.stage[2].speaking)
    }

    @Test
    fun countsNeverShowFewerPeopleThanTheListsWhileTheyCatchUp() {
        val me = person("me")
        val audience = listOf(me, person("c"), person("d"))
        val s = RoomPresenter.present(roomState(me, stage = listOf(mod), audience = audience, listeners = 0))
        assertEquals("1 on stage · 3 listening", s.countsLine)
    }

    @Test
    fun listenersSplitIntoFollowedAndOthersWithCountsForBigRooms() {
        val me = person("me")
        val audience = listOf(me, person("c", followed = true), person("d"), person("e", followed = true))
        val s = RoomPresenter.present(roomState(me, stage = listOf(mod), audience = audience, listeners = 1500))
        assertEquals(listOf("c", "e"), s.followed.people.map { it.userId })
        assertEquals(2L, s.followed.count)
        assertEquals(listOf("me", "d"), s.others.people.map { it.userId })
        assertEquals(1498L, s.others.count)
        assertEquals(1496L, s.others.more)
        assertEquals("Others in the room · 1.4K", s.others.header)
        assertEquals("1 on stage · 1.5K listening", s.countsLine)
        assertTrue(s.others.people.first().me)
    }

    @Test
    fun raisedHandsShowOnAudienceTiles() {
        val me = person("me")
        val other = person("h1")
        val mine = RoomPresenter.present(roomState(me, stage = listOf(mod), audience = listOf(me, other), handRaised = true))
        assertTrue(mine.others.people.first { it.me }.handRaised)
        assertFalse(mine.others.people.first { !it.me }.handRaised)
        // A moderator sees the queue's hands on the tiles.
        val modView = RoomPresenter.present(
            roomState(mod, stage = listOf(mod), audience = listOf(other, me), hands = listOf(HandView(other, false)))
        )
        assertTrue(modView.others.people.first { it.userId == "h1" }.handRaised)
        assertFalse(modView.others.people.first { it.userId == "me" }.handRaised)
    }

    @Test
    fun raiseHandButtonStates() {
        val me = person("me")
        val up = RoomPresenter.present(roomState(me, stage = listOf(mod)))
        assertEquals(HandButton(true, true, false, "Raise hand"), up.hand)
        val raised = RoomPresenter.present(roomState(me, stage = listOf(mod), handRaised = true))
        assertTrue(raised.hand.raised)
        assertEquals("Lower hand", raised.hand.label)
        val off = RoomPresenter.present(roomState(me, stage = listOf(mod), handsEnabled = false))
        assertTrue(off.hand.visible)
        assertFalse(off.hand.enabled)
        assertEquals("Hands are off", off.hand.label)
        val onStage = RoomPresenter.present(roomState(speaker, stage = listOf(mod, speaker)))
        assertFalse(onStage.hand.visible)
    }

    @Test
    fun muteButtonOnlyOnStage() {
        val listener = RoomPresenter.present(roomState(person("me"), stage = listOf(mod)))
        assertFalse(listener.mute.visible)
        assertFalse(listener.onStage)
        val s = RoomPresenter.present(roomState(speaker, stage = listOf(mod, speaker)))
        assertTrue(s.mute.visible)
        assertEquals("Mute", s.mute.label)
        val m = person("ana", Role.SPEAKER, muted = true)
        assertEquals("Unmute", RoomPresenter.present(roomState(m, stage = listOf(mod, m))).mute.label)
    }

    @Test
    fun inviteDialogShownToAnInvitedListener() {
        val me = person("me")
        assertTrue(RoomPresenter.present(roomState(me, stage = listOf(mod), invited = true)).showInviteDialog)
        assertFalse(RoomPresenter.present(roomState(me, stage = listOf(mod))).showInviteDialog)
        val ended = roomState(me, stage = listOf(mod), invited = true, connection = ConnectionStatus.Ended("room_ended"))
        assertFalse(RoomPresenter.present(ended).showInviteDialog)
    }

    @Test
    fun moderatorMenuDependsOnTheTargetRole() {
        val listener = person("l")
        assertEquals(
            listOf(ModeratorAction.INVITE_TO_SPEAK, ModeratorAction.MAKE_MODERATOR, ModeratorAction.REMOVE),
            RoomPresenter.actionsFor(mod, listener),
        )
        assertEquals(
            listOf(
                ModeratorAction.MOVE_TO_AUDIENCE, ModeratorAction.MUTE,
                ModeratorAction.MAKE_MODERATOR, ModeratorAction.REMOVE,
            ),
            RoomPresenter.actionsFor(mod, speaker),
        )
        val mutedMod = person("m2", Role.MODERATOR, muted = true)
        assertEquals(
            listOf(ModeratorAction.MOVE_TO_AUDIENCE, ModeratorAction.REMOVE),
            RoomPresenter.actionsFor(mod, mutedMod),
        )
        // Not a moderator, or yourself: no menu.
        assertEquals(emptyList(), RoomPresenter.actionsFor(speaker, listener))
        assertEquals(emptyList(), RoomPresenter.actionsFor(mod, mod))
        assertEquals(emptyList(), RoomPresenter.actionsFor(null, listener))
    }

    @Test
    fun moderatorsSeeTheHandQueue() {
        val hands = listOf(HandView(person("h1"), false), HandView(person("h2"), true))
        val s = RoomPresenter.present(roomState(mod, stage = listOf(mod), hands = hands))
        assertTrue(s.moderator)
        assertEquals(listOf("Invite", "Invited"), s.hands.map { it.actionLabel })
        val asSpeaker = RoomPresenter.present(roomState(speaker, stage = listOf(mod, speaker), hands = hands))
        assertEquals(emptyList(), asSpeaker.hands)
    }

    @Test
    fun connectionBannersAndEndings() {
        val me = person("me")
        assertEquals("Connecting…", RoomPresenter.present(roomState(me, connection = ConnectionStatus.Connecting)).banner)
        assertEquals(
            "Reconnecting… (attempt 3)",
            RoomPresenter.present(roomState(me, connection = ConnectionStatus.Reconnecting(3u))).banner,
        )
        val ok = RoomPresenter.present(roomState(me))
        assertNull(ok.banner)
        assertNull(ok.endedMessage)
        assertEquals(
            "This room has ended.",
            RoomPresenter.present(roomState(me, connection = ConnectionStatus.Ended("room_ended"))).endedMessage,
        )
        assertEquals(
            "A moderator removed you from this room.",
            RoomPresenter.present(roomState(me, removed = true, connection = ConnectionStatus.Ended("removed"))).endedMessage,
        )
        val over = RoomPresenter.present(roomState(me, connection = ConnectionStatus.Ended("left")))
        assertFalse(over.hand.visible)
    }

    @Test
    fun kindLabelsAndTitle() {
        val me = person("me")
        assertEquals("Closed", RoomPresenter.present(roomState(me, kind = RoomKind.CLOSED)).kindLabel)
        assertNull(RoomPresenter.present(roomState(me, kind = RoomKind.OPEN)).kindLabel)
        assertEquals("Room", RoomPresenter.present(roomState(me, title = " ")).title)
    }

    @Test
    fun findsParticipantsAnywhere() {
        val h = person("h")
        val s = roomState(mod, stage = listOf(mod, speaker), audience = listOf(person("x")), hands = listOf(HandView(h, false)))
        assertEquals(speaker, RoomPresenter.find(s, "ana"))
        assertEquals("x", RoomPresenter.find(s, "x")?.user?.id)
        assertEquals(h, RoomPresenter.find(s, "h"))
        assertNull(RoomPresenter.find(s, "nobody"))
    }
}
