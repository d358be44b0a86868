package org.ruang.app.robo

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test
import org.robolectric.shadows.ShadowToast
import org.ruang.app.ProfileActivity
import org.ruang.core.RoomKind
import org.ruang.core.RuangClient
import org.ruang.core.RuangException

/** Block and report from a profile (docs/safety.md), against the real server. */
class SafetyTest : LiveTest() {
    /** The app's own account as a second client (to check the server side of what the app did). */
    private fun myClient(): RuangClient = Live.client().also { it.restoreSession(MemoryTokens.token!!) }

    @Test
    fun `a profile reports with a reason and blocks, and the server enforces the block`() {
        signIn("tari", "Tari Wulan")
        val bayu = person("bayu", "Bayu Pratama")
        val pc = launch(ProfileActivity::class.java, ProfileActivity.open(app, bayu.profile.handle))
        val p = pc.get()
        p.waitText("Bayu Pratama")
        Shots.save(p, "60-profile-safety-light-411x891")

        // Report: the reason picker, then a thank-you; the server has it.
        p.click("Report Bayu Pratama")
        p.waitText("Harassment or bullying")
        p.waitText("Only the admins see reports.")
        Shots.save(p, "61-profile-report-reasons-light-411x891")
        p.click("Harassment or bullying")
        waitFor("the thank-you") { ShadowToast.getTextOfLatestToast()?.takeIf { it.startsWith("Thanks") } }
        // The same report again from the app's account joins the open one.
        assertTrue("the app's report is on the server", myClient().reportMember(bayu.profile.handle, "harassment", ""))

        // Block: confirm, then the server refuses Bayu following and hides Tari's room from him.
        bayu.client.follow(app.profile!!.handle)
        val mine = myClient().createRoom("Tari's room", RoomKind.OPEN)
        assertTrue(bayu.client.hallway().any { it.id == mine.id })
        p.click("Block Bayu Pratama")
        p.waitText("Block Bayu Pratama?")
        p.waitText("They aren't told.")
        Shots.save(p, "62-profile-block-confirm-light-411x891")
        p.click("Block")
        waitFor("the block toast") { ShadowToast.getTextOfLatestToast()?.takeIf { it == "You blocked Bayu Pratama" } }
        p.waitText("Unblock")
        assertEquals(listOf(bayu.profile.handle), myClient().blocked())
        assertEquals("the follow went with the block", 0L, myClient().me().followers)
        try {
            bayu.client.follow(app.profile!!.handle)
            fail("a blocked member cannot follow")
        } catch (e: RuangException.Forbidden) {
            // expected
        }
        assertTrue("a room of the blocker is gone from his hallway", bayu.client.hallway().none { it.id == mine.id })
        Shots.save(p, "63-profile-blocked-light-411x891")

        // Unblock from the same button.
        p.click("Unblock Bayu Pratama")
        waitFor("the unblock toast") { ShadowToast.getTextOfLatestToast()?.takeIf { it == "You unblocked Bayu Pratama" } }
        assertTrue(myClient().blocked().isEmpty())
        assertTrue(bayu.client.hallway().any { it.id == mine.id })
        // The room was only made for the hallway check: end it, so later tests start from an
        // empty hallway (an unjoined room would otherwise live until its first-join grace ends).
        val me = Recorder()
        val joined = myClient().joinRoom(mine.id, null, me)
        me.await("the app's account in its room") { it.me != null }
        joined.endRoom()
        joined.close()
        waitUntil("the room ended") { bayu.client.hallway().none { it.id == mine.id } }
    }
}
