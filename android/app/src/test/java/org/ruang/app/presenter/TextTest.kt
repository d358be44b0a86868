package org.ruang.app.presenter

import org.junit.jupiter.api.Test
import kotlin.test.assertEquals

class TextTest {
    @Test
    fun initialsFromNamesAndHandles() {
        assertEquals("AP", initials("Ana Putri"))
        assertEquals("AS", initials("  ana  maria sari "))
        assertEquals("B", initials("budi"))
        assertEquals("X", initials("", "@x1"))
        assertEquals("?", initials("", ""))
        assertEquals("É", initials("élodie"))
    }

    @Test
    fun compactCounts() {
        assertEquals("999", compactCount(999))
        assertEquals("1K", compactCount(1_000))
        assertEquals("1.2K", compactCount(1_250))
        assertEquals("12K", compactCount(12_999))
        assertEquals("1.5M", compactCount(1_500_000))
        assertEquals("25M", compactCount(25_000_000))
    }

    @Test
    fun namesJoinLikeASentence() {
        assertEquals("", joinNames(emptyList()))
        assertEquals("Ana", joinNames(listOf("Ana")))
        assertEquals("Ana and Budi", joinNames(listOf("Ana", "Budi")))
        assertEquals("Ana, Budi and Citra", joinNames(listOf("Ana", "Budi", "Citra")))
        assertEquals("Ana, Budi and 2 others", joinNames(listOf("Ana", "Budi", "Citra", "Dewi")))
        assertEquals("Ana", displayName(" Ana ", "ana"))
        assertEquals("ana", displayName("", "@ana"))
    }
}
