package org.ruang.app.presenter

import org.junit.jupiter.api.Test
import kotlin.test.assertEquals
import kotlin.test.assertTrue

class AvatarsTest {
    @Test
    fun `the same id always gets the same colour`() {
        assertEquals(Avatars.index("u_8f3a", 12), Avatars.index("u_8f3a", 12))
        for (i in 0 until 1000) assertTrue(Avatars.index("id$i", 12) in 0 until 12)
    }

    @Test
    fun `ids that differ in one character spread over the palette`() {
        val colours = (1..4).map { Avatars.index("u$it", 12) }
        // String.hashCode() % 360 gave hues 108-111 here: one colour for all four.
        assertTrue(colours.toSet().size >= 3, "u1..u4 -> $colours")
        val twelve = (1..12).map { Avatars.index("user-$it", 12) }.toSet()
        assertTrue(twelve.size >= 7, "user-1..user-12 use ${twelve.size} colours")
        // Neighbouring ids rarely share a colour.
        val same = (0 until 200).count { Avatars.index("a$it", 12) == Avatars.index("a${it + 1}", 12) }
        assertTrue(same < 40, "$same of 200 neighbours share a colour")
    }

    @Test
    fun `colours are used evenly`() {
        val counts = IntArray(12)
        for (i in 0 until 12_000) counts[Avatars.index("01J${i.toString(36)}X", 12)]++
        for (c in counts) assertTrue(c in 700..1300, "uneven buckets: ${counts.toList()}")
    }
}
