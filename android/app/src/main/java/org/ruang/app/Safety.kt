package org.ruang.app

import android.app.Activity
import android.app.Dialog
import org.ruang.app.presenter.SafetyPresenter
import org.ruang.core.RuangClient

// The block confirmation and the report reason picker (docs/safety.md), shared by the
// profile, the person sheet in a room, the room menu and the chat.

/**
 * The reason picker: picking a reason files the report with [file] (on the core thread) and
 * says what happened. Returns the sheet.
 */
fun Activity.reportReasonSheet(title: String, file: (RuangClient, String) -> Boolean): Dialog {
    val rows = SafetyPresenter.reasons.map { reason ->
        SheetAction(reason.label) {
            ruang.background({ file(it, reason.wire) }) { r ->
                r.onSuccess { coalesced -> toast(SafetyPresenter.reportedToast(coalesced)) }
                r.onFailure { e -> toast(errorText(e)) }
            }
        }
    }
    return sheet(title, "Only the admins see reports.", null, rows)
}

/** "Block NAME?": on confirming, blocks [handle] on the server, then [onBlocked]. */
fun Activity.confirmBlock(name: String, handle: String, onBlocked: () -> Unit): Dialog =
    dialog(SafetyPresenter.blockTitle(name), SafetyPresenter.blockMessage(name), "Block", negative = "Cancel") {
        ruang.background({ it.block(handle) }) { r ->
            r.onSuccess { toast(SafetyPresenter.blockedToast(name)); onBlocked() }
            r.onFailure { e -> toast(errorText(e)) }
        }
    }
