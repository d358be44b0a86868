package org.ruang.app

import android.app.Activity
import android.content.Intent
import android.net.Uri
import android.view.Gravity
import android.view.View
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import org.ruang.app.presenter.Avatars
import org.ruang.app.presenter.DeepLink
import org.ruang.app.presenter.DeepLinks
import org.ruang.app.presenter.Face
import org.ruang.app.presenter.RoomCard
import org.ruang.app.presenter.UpcomingCard

// Building blocks of the social screens (profile, notifications, search, event): a top bar
// with a back button over a scrolling column, rows of people, rooms and events.

/** A screen: top bar (back, [title]) over a scrolling column, which is returned. */
fun Activity.scaffold(title: String, actions: List<View> = emptyList()): LinearLayout {
    val c = colors
    val root = vertical().apply { setBackgroundColor(c.background) }
    val bar = horizontal().apply { setPadding(dp(Space.XS), dp(Space.S), dp(Space.S), dp(Space.S)) }
    bar.addView(iconButton("←", "Back") { finish() })
    bar.addView(label(title, TypeScale.TITLE_LARGE, color = c.onSurface, medium = true).apply {
        setPadding(dp(Space.S), 0, 0, 0)
        ellipsizeEnd()
    }, weighted())
    for (a in actions) bar.addView(a)
    root.addView(bar, matchWrap())
    val column = vertical().apply { setPadding(dp(Space.L), dp(Space.S), dp(Space.L), dp(Space.XXL)) }
    root.addView(ScrollView(this).apply { addView(column); isFillViewport = true },
        LinearLayout.LayoutParams(LinearLayout.LayoutParams.MATCH_PARENT, 0, 1f))
    setContentView(root)
    return column
}

fun Activity.sectionTitle(text: String): TextView =
    label(text, TypeScale.TITLE, bold = true, color = colors.onSurface).apply { setPadding(0, dp(Space.L), 0, dp(Space.S)) }

/** A person: face, name, a second line; taps open [onClick]. */
fun Activity.personRow(face: Face, second: String, onClick: () -> Unit): View {
    val c = colors
    val row = horizontal().apply {
        setPadding(dp(Space.S), dp(Space.S), dp(Space.S), dp(Space.S))
        minimumHeight = dp(56)
        background = ripple(null, 12, c.onSurface)
        isClickable = true
        contentDescription = "${face.name}, $second"
        setOnClickListener { onClick() }
    }
    row.addView(avatar(face.initials, face.userId, 44, photoHash = face.avatar))
    val texts = vertical().apply { setPadding(dp(Space.M), 0, 0, 0) }
    texts.addView(label(face.name, TypeScale.BODY_LARGE, color = c.onSurface, medium = true).ellipsizeEnd())
    texts.addView(label(second, TypeScale.BODY, color = c.onSurfaceVariant).ellipsizeEnd())
    row.addView(texts, weighted())
    return row
}

/** A live room, compact: "● LIVE", title, who is on stage. */
fun Activity.roomRow(card: RoomCard): View {
    val c = colors
    val v = card(Space.M).apply {
        background = ripple(rounded(c.surface, 16, if (c.dark) null else c.outline), 16, c.onSurface)
        isClickable = true
        contentDescription = "${card.title}. ${card.speakersLine}. ${card.countsLine}"
        setOnClickListener {
            val token = (DeepLinks.parse(card.link) as? DeepLink.Room)?.linkToken
            startActivity(RoomActivity.open(this@roomRow, card.roomId, token, card.link))
        }
    }
    v.addView(label("● LIVE · ${card.countsLine}", TypeScale.CAPTION, color = c.speaking, medium = true))
    v.addView(label(card.title, TypeScale.TITLE, color = c.onSurface).apply { typeface = MEDIUM; ellipsizeEnd(2) })
    v.addView(label(card.speakersLine, TypeScale.BODY, color = c.onSurfaceVariant).ellipsizeEnd())
    return v
}

/** A scheduled room, compact: when, title, hosts; taps open the event screen. */
fun Activity.eventRow(card: UpcomingCard, live: Boolean = false): View {
    val c = colors
    val v = card(Space.M).apply {
        background = ripple(rounded(c.surface, 16, if (c.dark) null else c.outline), 16, c.onSurface)
        isClickable = true
        contentDescription = "${card.title}. ${card.whenLine}. ${card.hostsLine}"
        setOnClickListener { startActivity(EventActivity.open(this@eventRow, card.eventId)) }
    }
    v.addView(label(if (live) "● LIVE NOW" else "🗓 ${card.whenLine}", TypeScale.CAPTION,
        color = if (live) c.speaking else c.primary, medium = true))
    v.addView(label(card.title, TypeScale.TITLE, color = c.onSurface).apply { typeface = MEDIUM; ellipsizeEnd(2) })
    val people = horizontal().apply { setPadding(0, dp(Space.XS), 0, 0) }
    people.addView(avatar(card.host.initials, card.host.userId, 24, photoHash = card.host.avatar))
    people.addView(label(card.hostsLine, TypeScale.BODY, color = c.onSurfaceVariant).apply {
        setPadding(dp(Space.S), 0, 0, 0); ellipsizeEnd()
    }, weighted())
    v.addView(people, matchWrap())
    return v
}

/** A big profile photo (the 512-pixel one) or the initials. */
fun Activity.bigFace(face: Face, sizeDp: Int = 96): View =
    avatar(face.initials, face.userId, sizeDp, photoHash = face.avatar, photoSize = Avatars.PROFILE)

/** Opens an https link in the browser (profiles' links). */
fun Activity.openWeb(url: String) {
    runCatching { startActivity(Intent(Intent.ACTION_VIEW, Uri.parse(url)).addCategory(Intent.CATEGORY_BROWSABLE)) }
        .onFailure { toast("No app can open that link") }
}

/** A centred line for loading and errors in a scaffold's column. */
fun Activity.statusLine(text: String): TextView =
    label(text, TypeScale.BODY, color = colors.onSurfaceVariant).apply {
        gravity = Gravity.CENTER_HORIZONTAL
        setPadding(0, dp(Space.XL), 0, dp(Space.XL))
    }
