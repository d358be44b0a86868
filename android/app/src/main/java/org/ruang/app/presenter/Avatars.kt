package org.ruang.app.presenter

/**
 * Which avatar colour a user gets: a stable, well-spread index into a curated palette.
 * The id's UTF-8 bytes go through FNV-1a (32 bit) and then murmur3's finalizer, so ids that
 * differ in one character ("u1", "u2", …) land on unrelated colours (String.hashCode() % 360
 * put them on neighbouring hues: four tiles came out the same olive).
 */
object Avatars {
    fun hash(id: String): Int {
        var h = 0x811C9DC5.toInt()
        for (b in id.toByteArray(Charsets.UTF_8)) {
            h = h xor (b.toInt() and 0xFF)
            h *= 0x01000193
        }
        // murmur3 fmix32: every input bit affects every output bit.
        h = h xor (h ushr 16)
        h *= 0x85EBCA6B.toInt()
        h = h xor (h ushr 13)
        h *= 0xC2B2AE35.toInt()
        h = h xor (h ushr 16)
        return h
    }

    /** An index in 0 until [paletteSize]. */
    fun index(id: String, paletteSize: Int): Int {
        require(paletteSize > 0)
        return ((hash(id).toLong() and 0xFFFFFFFFL) % paletteSize).toInt()
    }
}
