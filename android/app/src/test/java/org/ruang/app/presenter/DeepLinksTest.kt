package org.ruang.app.presenter

import org.junit.jupiter.api.Test
import kotlin.test.assertEquals

class DeepLinksTest {
    private val host = "ruang.example"

    @Test
    fun roomLinks() {
        assertEquals(DeepLink.Room("abc", null), DeepLinks.parse("https://ruang.example/r/abc", host))
        assertEquals(DeepLink.Room("abc", "k1"), DeepLinks.parse("https://ruang.example/r/abc?t=k1", host))
        assertEquals(DeepLink.Room("abc", "k1"), DeepLinks.parse("ruang://r/abc?t=k1", host))
        // A PUBLIC_URL with a path prefix, and no host check when the host is unknown.
        assertEquals(DeepLink.Room("r-9_x", null), DeepLinks.parse("https://other.example/ruang/r/r-9_x/"))
    }

    @Test
    fun inviteLinks() {
        assertEquals(DeepLink.Invite("abcdefgh"), DeepLinks.parse("https://ruang.example/i/ABCD-efgh", host))
        assertEquals(DeepLink.Invite("abcd"), DeepLinks.parse("ruang://i/abcd"))
        assertEquals("abcdefgh", DeepLinks.inviteCodeFrom(" ABCD-EFGH "))
        assertEquals("abcdefgh", DeepLinks.inviteCodeFrom("https://ruang.example/i/abcd-efgh?utm=x", host))
    }

    @Test
    fun everythingElseIsNone() {
        for (l in listOf(
            null, "", "not a link", "https://evil.example/r/abc", "https://ruang.example/x/abc",
            "https://ruang.example/r/", "ftp://ruang.example/r/abc", "https://ruang.example/r/a%20b",
            "ruang://x/abc", "https://ruang.example/",
        )) {
            assertEquals(DeepLink.None, DeepLinks.parse(l, host), "link: $l")
        }
    }

    @Test
    fun linkWhileInAnotherRoomAsksFirst() {
        val room = DeepLink.Room("b", "t")
        assertEquals(LinkDecision.OpenRoom("b", "t"), DeepLinks.decide(room, null, true))
        assertEquals(LinkDecision.ShowCurrent("b"), DeepLinks.decide(room, "b", true))
        assertEquals(LinkDecision.AskToSwitch("a", "b", "t"), DeepLinks.decide(room, "a", true))
        assertEquals(LinkDecision.Invite("c", false), DeepLinks.decide(DeepLink.Invite("c"), null, false))
        assertEquals(LinkDecision.Ignore, DeepLinks.decide(DeepLink.None, "a", true))
    }

    @Test
    fun shareLinksAndHosts() {
        assertEquals("https://ruang.example/r/abc", DeepLinks.roomLink("https://ruang.example/", "abc", null))
        assertEquals("https://ruang.example/r/abc?t=k", DeepLinks.roomLink("https://ruang.example", "abc", "k"))
        assertEquals("ruang.example", DeepLinks.hostOf("https://Ruang.Example:8443/x"))
        assertEquals(null, DeepLinks.hostOf("::"))
    }
}
