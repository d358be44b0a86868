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

    const val TILE = 128
    const val PROFILE = 512
    private val HASH = Regex("^[0-9a-f]{16,64}$")

    /**
     * The photo URL for a content hash (docs/protocol.md §10.1): `SERVER/media/avatars/HASH-SIZE.jpg`.
     * A new photo has a new hash, so a URL never changes content and a cache never goes stale.
     * Null for a missing or malformed hash (the initials are drawn instead).
     */
    fun url(serverUrl: String, hash: String?, size: Int = TILE): String? {
        if (hash == null || !HASH.matches(hash)) return null
        if (size != TILE && size != PROFILE) return null
        return serverUrl.trim().trimEnd('/') + "/media/avatars/" + hash + "-" + size + ".jpg"
    }

    /** A file name for the disk cache: the URL's hash and size only, nothing from outside. */
    fun cacheName(url: String): String? =
        Regex("/media/avatars/([0-9a-f]{16,64})-(128|512)\\.jpg$").find(url)?.let { it.groupValues[1] + "-" + it.groupValues[2] + ".jpg" }
}
