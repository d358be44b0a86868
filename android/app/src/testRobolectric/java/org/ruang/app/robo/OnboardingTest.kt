package org.ruang.app.robo

import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Test
import org.robolectric.Robolectric
import org.ruang.app.HallwayActivity
import org.ruang.app.WelcomeActivity
import org.ruang.app.WelcomeActivity.Companion.ID_HANDLE
import org.ruang.app.WelcomeActivity.Companion.ID_INVITE
import org.ruang.app.WelcomeActivity.Companion.ID_INVITER
import org.ruang.app.WelcomeActivity.Companion.ID_NAME
import org.ruang.app.WelcomeActivity.Companion.ID_SERVER

class OnboardingTest : LiveTest() {
    private fun welcome() = launch(WelcomeActivity::class.java)

    /** A second Welcome screen in the dark theme with the same fields filled in. */
    private fun darkWelcome(invite: String = "", server: String = Live.url, check: Boolean = false) = {
        val c = Robolectric.buildActivity(WelcomeActivity::class.java).setup()
        c.get().type(ID_SERVER, server)
        c.get().type(ID_INVITE, invite)
        if (check) {
            val before = c.get().field(ID_INVITER).text.toString()
            c.get().click("Check invite")
            waitUntil("dark welcome checked") { c.get().field(ID_INVITER).text.toString().let { it.isNotEmpty() && it != before } }
        }
        c
    }

    @Test
    fun `a pasted invite link is checked, signs up and opens the hallway, the code is used up`() {
        val w = welcome().get()
        w.waitText("Enter the invite code a friend sent you")
        w.type(ID_SERVER, Live.url)
        Shots.all("01-welcome", w, darkWelcome())

        val code = Live.invite()
        val link = "${Live.url}/i/$code"
        w.type(ID_INVITE, link)
        w.click("Check invite")
        w.waitText("Invited by Ruang Admin")
        Shots.all("02-welcome-invite-checked", w, darkWelcome(link, check = true))
        Shots.assertDiffer("01-welcome-light-411x891", "02-welcome-invite-checked-light-411x891")

        val handle = Live.handle("nadia")
        w.type(ID_HANDLE, handle)
        w.type(ID_NAME, "Nadia Putri")
        w.click("Join Ruang")
        val hallway = follow(w, HallwayActivity::class.java)
        track(hallway)
        hallway.get().waitText("Hallway")
        assertTrue(w.isFinishing)
        // Server state: the account exists, was invited by the admin, and the code is spent.
        val p = Live.admin.profile(handle)
        assertEquals("Nadia Putri", p.name)
        assertEquals("admin", p.invitedBy?.handle)
        assertFalse(Live.admin.invites().any { it.code == code })
        assertEquals(p.id, app.profile?.id)
        assertTrue(MemoryTokens.hasToken())
    }

    @Test
    fun `a bare invite code signs up`() {
        val w = welcome().get()
        w.type(ID_SERVER, Live.url)
        val code = Live.invite()
        w.type(ID_INVITE, code.uppercase().chunked(4).joinToString("-"))
        w.type(ID_HANDLE, Live.handle("omar"))
        w.type(ID_NAME, "Omar")
        w.click("Join Ruang")
        track(follow(w, HallwayActivity::class.java))
        assertEquals("Omar", Live.admin.profile(app.profile!!.handle).name)
    }

    @Test
    fun `an unknown code and a used code are refused with a clear sentence`() {
        val w = welcome().get()
        w.type(ID_SERVER, Live.url)
        w.type(ID_INVITE, "zzzzzzzzzz")
        w.click("Check invite")
        w.waitText("not valid or was already used")
        Shots.all("03-welcome-unknown-code", w, darkWelcome("zzzzzzzzzz", check = true))

        // A code someone already used.
        val used = Live.invite()
        Live.client().signup(used, Live.handle("early"), "Early Bird")
        w.type(ID_INVITE, used)
        w.field(ID_INVITER).text = ""
        w.click("Check invite")
        w.waitText("not valid or was already used")
        // Signing up with it fails too, and nothing is created.
        val handle = Live.handle("late")
        w.type(ID_HANDLE, handle)
        w.click("Join Ruang")
        waitFor("sign-up refused") { w.allTexts().count { it.contains("not valid or was already used") }.takeIf { it >= 2 } }
        assertTrue(runCatching { Live.admin.profile(handle) }.isFailure)
        assertFalse(MemoryTokens.hasToken())
    }

    @Test
    fun `server unreachable says so`() {
        val w = welcome().get()
        w.type(ID_SERVER, "http://127.0.0.1:9")
        w.type(ID_INVITE, "abcdefgh")
        w.click("Check invite")
        w.waitText("Can't reach the server")
        Shots.all("04-welcome-unreachable", w, darkWelcome("abcdefgh", server = "http://127.0.0.1:9", check = true))
    }
}
