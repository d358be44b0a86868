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
    fun eventAndProfileLinks() {
        assertEquals(DeepLink.Event("e2mK9"), DeepLinks.parse("https://ruang.example/e/e2mK9", host))
        assertEquals(DeepLink.Event("e2mK9"), DeepLinks.parse("ruang://e/e2mK9"))
        assertEquals(DeepLink.Profile("maya_sari"), DeepLinks.parse("ruang://u/maya_sari", host))
        // No /u/ page on the web: only the app's scheme names a profile.
        assertEquals(DeepLink.None, DeepLinks.parse("https://ruang.example/u/maya", host))
        assertEquals(DeepLink.None, DeepLinks.parse("https://evil.example/e/e2mK9", host))
        assertEquals(DeepLink.None, DeepLinks.parse("ruang://u/no-dash", host))
        assertEquals(DeepLink.None, DeepLinks.parse("ruang://e/a%20b", host))
        assertEquals(LinkDecision.OpenEvent("x"), DeepLinks.decide(DeepLink.Event("x"), "room", true))
        assertEquals(LinkDecision.OpenProfile("m"), DeepLinks.decide(DeepLink.Profile("m"), null, true))
        assertEquals("https://ruang.example/e/x", DeepLinks.eventLink("https://ruang.example/", "x"))
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
