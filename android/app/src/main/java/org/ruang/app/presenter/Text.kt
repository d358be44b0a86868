package org.ruang.app.presenter

// Small text helpers shared by the presenters. Plain Kotlin: no android.* here.

/** Up to two letters for an avatar: "Ana Putri" → "AP", "budi" → "B", "" + handle "x1" → "X". */
fun initials(name: String, handle: String = ""): String {
    val words = name.trim().split(Regex("\\s+")).filter { w -> w.any { it.isLetterOrDigit() } }
    val source = if (words.isEmpty()) {
        listOf(handle.trim().trimStart('@')).filter { it.isNotEmpty() }
    } else {
        words
    }
    if (source.isEmpty()) return "?"
    val letters = if (source.size == 1) {
        listOf(source[0].first { it.isLetterOrDigit() })
    } else {
        listOf(source.first().first { it.isLetterOrDigit() }, source.last().first { it.isLetterOrDigit() })
    }
    return letters.joinToString("").uppercase()
}

/** The name to show: the display name, or the handle when the name is blank. */
fun displayName(name: String, handle: String): String =
    name.trim().ifEmpty { handle.trim().trimStart('@').ifEmpty { "Someone" } }

/** Counts the way room lists show them: 999, 1.2K, 12K, 1.2M. */
fun compactCount(n: Long): String = when {
    n < 0 -> "0"
    n < 1_000 -> n.toString()
    n < 10_000 -> oneDecimal(n / 100) + "K"
    n < 1_000_000 -> (n / 1_000).toString() + "K"
    n < 10_000_000 -> oneDecimal(n / 100_000) + "M"
    else -> (n / 1_000_000).toString() + "M"
}

private fun oneDecimal(tenths: Long): String =
    if (tenths % 10 == 0L) (tenths / 10).toString() else "${tenths / 10}.${tenths % 10}"

/** "Ana", "Ana and Budi", "Ana, Budi and Citra", "Ana, Budi and 3 others". */
fun joinNames(names: List<String>, max: Int = 2): String = when {
    names.isEmpty() -> ""
    names.size == 1 -> names[0]
    names.size <= max + 1 -> names.dropLast(1).joinToString(", ") + " and " + names.last()
    else -> {
        val rest = names.size - max
        names.take(max).joinToString(", ") + " and $rest other" + if (rest == 1) "" else "s"
    }
}
