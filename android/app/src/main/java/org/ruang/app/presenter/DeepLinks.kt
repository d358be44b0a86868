package org.ruang.app.presenter

import java.net.URI
import java.net.URLDecoder

/** Where a link opened in the app leads. */
sealed class DeepLink {
    data class Room(val roomId: String, val linkToken: String?) : DeepLink()
    data class Invite(val code: String) : DeepLink()
    /** A scheduled room: `PUBLIC_URL/e/ID`, `ruang://e/ID`. */
    data class Event(val eventId: String) : DeepLink()
    /** A profile: `ruang://u/HANDLE` (what "followed you" notifications link to). */
    data class Profile(val handle: String) : DeepLink()
    object None : DeepLink()
}

/** What to do with a link, given the room you are in. */
sealed class LinkDecision {
    /** Not in a room (or not this one): open it. */
    data class OpenRoom(val roomId: String, val linkToken: String?) : LinkDecision()
    /** Already in this room: just show it. */
    data class ShowCurrent(val roomId: String) : LinkDecision()
    /** In another room: ask before leaving it. */
    data class AskToSwitch(val fromRoomId: String, val toRoomId: String, val linkToken: String?) : LinkDecision()
    /** Signed in already: an invite link has nothing to do but can be shown. */
    data class Invite(val code: String, val signedIn: Boolean) : LinkDecision()
    /** An event or a profile: shown on its own screen, whatever room you are in. */
    data class OpenEvent(val eventId: String) : LinkDecision()
    data class OpenProfile(val handle: String) : LinkDecision()
    object Ignore : LinkDecision()
}

/**
 * Parses `PUBLIC_URL/r/ROOM[?t=KEY]`, `PUBLIC_URL/i/CODE`, `PUBLIC_URL/e/EVENT` and the
 * `ruang://r/ROOM`, `ruang://i/CODE`, `ruang://e/EVENT`, `ruang://u/HANDLE` fallback scheme (the same links the core's `parseLink` accepts).
 * With [publicHost] set, https links for other hosts are ignored. A PUBLIC_URL with a path
 * prefix (https://host/ruang/r/ROOM) works: the last two segments decide.
 */
object DeepLinks {
    const val SCHEME = "ruang"
    private val ID = Regex("^[A-Za-z0-9_-]{1,128}$")
    private val HANDLE = Regex("^[A-Za-z0-9_]{1,32}$")

    fun parse(link: String?, publicHost: String? = null): DeepLink {
        val text = link?.trim().orEmpty()
        if (text.isEmpty()) return DeepLink.None
        val uri = try {
            URI(text)
        } catch (e: Exception) {
            return DeepLink.None
        }
        val scheme = uri.scheme?.lowercase() ?: return DeepLink.None
        val segments: List<String> = when (scheme) {
            SCHEME -> listOfNotNull(uri.host ?: uri.authority) + pathSegments(uri)
            "https", "http" -> {
                val host = uri.host?.lowercase() ?: return DeepLink.None
                if (publicHost != null && host != publicHost.lowercase()) return DeepLink.None
                pathSegments(uri)
            }
            else -> return DeepLink.None
        }
        if (segments.size < 2) return DeepLink.None
        val kind = segments[segments.size - 2]
        val value = segments.last()
        return when (kind) {
            "r" -> if (ID.matches(value)) DeepLink.Room(value, query(uri, "t")) else DeepLink.None
            "i" -> normalizeInviteCode(value).let { if (it.isEmpty()) DeepLink.None else DeepLink.Invite(it) }
            "e" -> if (ID.matches(value)) DeepLink.Event(value) else DeepLink.None
            // Profiles only by the app's own scheme: the server has no /u/ page.
            "u" -> if (scheme == SCHEME && HANDLE.matches(value)) DeepLink.Profile(value) else DeepLink.None
            else -> DeepLink.None
        }
    }

    /** The invite code typed or pasted on the Welcome screen: a bare code or an invite link. */
    fun inviteCodeFrom(input: String, publicHost: String? = null): String {
        return when (val l = parse(input, publicHost)) {
            is DeepLink.Invite -> l.code
            else -> normalizeInviteCode(input)
        }
    }

    /** As the core does it: the part after the last `/i/`, no spaces or dashes, lower case. */
    fun normalizeInviteCode(input: String): String {
        val tail = input.trim().substringAfterLast("/i/").substringBefore('?').substringBefore('#')
        return tail.filter { !it.isWhitespace() && it != '-' }.lowercase()
    }

    fun decide(link: DeepLink, currentRoomId: String?, signedIn: Boolean): LinkDecision = when (link) {
        is DeepLink.Room -> when (currentRoomId) {
            null -> LinkDecision.OpenRoom(link.roomId, link.linkToken)
            link.roomId -> LinkDecision.ShowCurrent(link.roomId)
            else -> LinkDecision.AskToSwitch(currentRoomId, link.roomId, link.linkToken)
        }
        is DeepLink.Invite -> LinkDecision.Invite(link.code, signedIn)
        is DeepLink.Event -> LinkDecision.OpenEvent(link.eventId)
        is DeepLink.Profile -> LinkDecision.OpenProfile(link.handle)
        DeepLink.None -> LinkDecision.Ignore
    }

    /** The event link to share: `PUBLIC_URL/e/ID`. */
    fun eventLink(publicUrl: String, eventId: String): String = publicUrl.trimEnd('/') + "/e/" + eventId

    /** The link to share for a room: `PUBLIC_URL/r/ROOM`, with `?t=KEY` for closed rooms. */
    fun roomLink(publicUrl: String, roomId: String, linkToken: String?): String {
        val base = publicUrl.trimEnd('/')
        return if (linkToken.isNullOrEmpty()) "$base/r/$roomId" else "$base/r/$roomId?t=$linkToken"
    }

    /** The host of a server URL ("https://ruang.example:8443/x" → "ruang.example"). */
    fun hostOf(serverUrl: String): String? = try {
        URI(serverUrl.trim()).host?.lowercase()
    } catch (e: Exception) {
        null
    }

    private fun pathSegments(uri: URI): List<String> =
        (uri.rawPath ?: "").split('/').filter { it.isNotEmpty() }.map { decode(it) }

    private fun query(uri: URI, name: String): String? =
        (uri.rawQuery ?: return null).split('&')
            .map { it.split('=', limit = 2) }
            .firstOrNull { it[0] == name && it.size == 2 && it[1].isNotEmpty() }
            ?.let { decode(it[1]) }

    private fun decode(s: String): String = try {
        URLDecoder.decode(s, "UTF-8")
    } catch (e: Exception) {
        s
    }
}
