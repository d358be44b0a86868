package org.ruang.tests

import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.ruang.core.HallwayListener
import org.ruang.core.LinkTarget
import org.ruang.core.RoomKind
import org.ruang.core.RoomSummary
import org.ruang.core.RuangClient
import org.ruang.core.RuangException
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertTrue

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class AccountTest {
    private lateinit var server: TestServer
    private lateinit var admin: RuangClient

    @BeforeAll
    fun start() {
        server = TestServer()
        admin = server.client()
        admin.signup(server.adminInvite, "root", "Root")
    }

    @AfterAll
    fun stop() {
        server.close()
    }

    /** A fresh invite code (the admin mints them). */
    private fun invite(): String = admin.createInvite().code

    @Test
    fun `a bad invite code gives the typed exception`() {
        val c = server.client()
        val e = assertFailsWith<RuangException.InvalidInput> { c.signup("not-a-real-code", "nobody", "No Body") }
        assertEquals("invalid_invite", e.code)
        val bad = assertFailsWith<RuangException.InvalidInput> { c.signup(server.adminInvite, "X!", "x") }
        assertEquals("invalid_handle", bad.code)
        assertFailsWith<RuangException.Unauthorized> { c.me() }
    }

    @Test
    fun `links parse and sessions restore`() {
        val c = server.client()
        assertEquals(
            LinkTarget.Room("abc123", "key"),
            c.parseLink("https://ruang.example/r/abc123?t=key"),
        )
        assertEquals(LinkTarget.Invite("abcdefgh"), c.parseLink("ruang://i/ABCD-EFGH"))
        assertEquals(LinkTarget.Unknown, c.parseLink("https://elsewhere.example/x"))

        val owner = server.client()
        val admin = owner.signup(invite(), "keeper", "Keeper")
        val token = assertNotNull(owner.sessionToken())
        val again = server.client()
        assertEquals(admin.id, again.restoreSession(token).id)
        again.logout()
        assertFailsWith<RuangException.Unauthorized> { server.client().restoreSession(token) }
    }

    @Test
    fun `hallway listener gets the list first, then changes`() {
        val host = server.client()
        val code = invite()
        host.signup(code, "hallhost", "Hall Host")
        val lists = LinkedBlockingQueue<List<RoomSummary>>()
        val watch = host.watchHallway(object : HallwayListener {
            override fun onHallway(rooms: List<RoomSummary>) {
                lists.put(rooms)
            }

            override fun onError(error: RuangException) {}
        }, 250u)
        val first = assertNotNull(lists.poll(10, TimeUnit.SECONDS))
        val created = host.createRoom("Hallway room", RoomKind.OPEN)
        var seen = false
        val deadline = System.currentTimeMillis() + 10_000
        while (!seen && System.currentTimeMillis() < deadline) {
            val next = lists.poll(1, TimeUnit.SECONDS) ?: continue
            seen = next.any { it.id == created.id }
        }
        assertTrue(seen, "the new room appears (first list had ${first.size})")
        watch.stop()
    }
}
