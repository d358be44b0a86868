package org.ruang.app.presenter

/** One report reason: the wire value and what the picker shows. */
data class ReportReason(val wire: String, val label: String)

/** The block and report actions of a profile (or a participant sheet), as the screen shows them. */
data class SafetyActions(
    val blockLabel: String,
    val blockDescription: String,
    val reportLabel: String,
    val reportDescription: String,
)

/**
 * Blocks and reports (docs/safety.md): labels, the confirmation text, the reason list and
 * the sentences shown after each action. Plain Kotlin; the server enforces everything.
 */
object SafetyPresenter {
    /** The server's fixed list, in the order the picker shows it. */
    val reasons: List<ReportReason> = listOf(
        ReportReason("spam", "Spam"),
        ReportReason("harassment", "Harassment or bullying"),
        ReportReason("hate", "Hate speech"),
        ReportReason("sexual", "Sexual content"),
        ReportReason("violence", "Violence or threats"),
        ReportReason("impersonation", "Pretending to be someone else"),
        ReportReason("other", "Something else"),
    )

    /** Longest details a report may carry (the server's limit). */
    const val MAX_DETAILS = 1000

    fun actions(name: String, blocked: Boolean): SafetyActions = SafetyActions(
        blockLabel = if (blocked) "Unblock" else "Block",
        blockDescription = (if (blocked) "Unblock " else "Block ") + name,
        reportLabel = "Report",
        reportDescription = "Report $name",
    )

    fun blockTitle(name: String): String = "Block $name?"

    fun blockMessage(name: String): String =
        "$name won't be able to join rooms you host, follow you or invite you to speak, " +
            "and you won't see rooms where they speak. They aren't told."

    fun blockedToast(name: String): String = "You blocked $name"

    fun unblockedToast(name: String): String = "You unblocked $name"

    fun reportTitle(name: String): String = "Report $name"

    fun reportMessageTitle(author: String): String = "Report $author's message"

    fun reportRoomTitle(title: String): String = "Report \u201c$title\u201d"

    /** The sentence after a report: a repeat joins the open one. */
    fun reportedToast(coalesced: Boolean): String =
        if (coalesced) "You reported this already; the admins have it" else "Thanks. The admins will look at it"

    /** Details cut to what the server takes (trimmed, at most [MAX_DETAILS] characters). */
    fun details(input: String): String {
        val t = input.trim()
        return if (t.codePointCount(0, t.length) <= MAX_DETAILS) t else t.substring(0, t.offsetByCodePoints(0, MAX_DETAILS))
    }
}
