package org.ruang.app.presenter

import org.junit.jupiter.api.Test
import kotlin.test.assertEquals
import kotlin.test.assertNull

class PushPresenterTest {
    private val host = "ruang.example"

    @Test
    fun eachKindGetsATitleAndItsTarget() {
        val started = PushPresenter.present("n1", "event_started", "“Jazz night” is live now", "https://ruang.example/r/r7kq", host)!!
        assertEquals("Live now", started.title)
        assertEquals("“Jazz night” is live now", started.text)
        assertEquals(DeepLink.Room("r7kq", null), started.target)
        assertEquals("ruang-n1", started.tag)
        val soon = PushPresenter.present("n2", "event_starting", "“Jazz night” starts soon", "https://ruang.example/e/e2m", host)!!
        assertEquals("Starting soon", soon.title)
        assertEquals(DeepLink.Event("e2m"), soon.target)
        val follow = PushPresenter.present("n3", "followed_you", "Maya Sari followed you", "ruang://u/maya", host)!!
        assertEquals(DeepLink.Profile("maya"), follow.target)
        assertEquals("Invited to speak", PushPresenter.title("invited_to_speak"))
    }

    @Test
    fun unknownKindsForeignLinksAndJunk() {
        val future = PushPresenter.present("n4", "something_new", "A new kind", "https://ruang.example/", host)!!
        assertEquals("Ruang", future.title)
        assertEquals(DeepLink.None, future.target)
        // A link to another host opens nothing but the app.
        assertEquals(DeepLink.None, PushPresenter.present("n5", "room_started", "x", "https://evil.example/r/abc", host)!!.target)
        assertNull(PushPresenter.present("n6", "room_started", "  \n ", "https://ruang.example/r/a", host))
        val long = PushPresenter.present("../../etc", "room_started", "a".repeat(1000) + "\n\nb", "", host)!!
        assertEquals(PushPresenter.MAX_TEXT, long.text.length)
        assertEquals("ruang-etc", long.tag)
    }
}
