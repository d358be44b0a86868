//! Creating notifications: per-kind preferences and rate limits (so a busy follow graph
//! cannot flood anyone), the event reminders, and the one line each one shows.

use super::push::Pusher;
use super::AppState;
use crate::store::{now_ms, NewNotification, NotificationRow, Store};
use ruang_proto::{Notification, NotificationKind, UserId};
use std::sync::Arc;

/// What creating a notification needs: storage, push delivery, the links' base.
#[derive(Clone)]
pub struct Notifier {
    pub store: Store,
    pub pusher: Arc<Pusher>,
    pub public_url: String,
}

/// Window of the rate limits.
pub const WINDOW_MS: i64 = 60 * 60 * 1000;

/// Most notifications of one kind one member gets per hour.
pub fn hourly_cap(kind: NotificationKind) -> u32 {
    match kind {
        // A member followed by a crowd sees "X followed you" for the first few only.
        NotificationKind::FollowedYou => 20,
        // Following many hosts must not mean a ping per minute.
        NotificationKind::RoomStarted | NotificationKind::EventScheduled => 10,
        NotificationKind::InviteeJoined => 20,
        // Moderators of a busy room cannot ping someone who left more than a few times.
        NotificationKind::InvitedToSpeak => 10,
        // About events one asked to hear about: rarely many, keep them.
        NotificationKind::EventStarting
        | NotificationKind::EventStarted
        | NotificationKind::EventChanged
        | NotificationKind::EventCancelled => 30,
    }
}

/// Whether a notification is created: not muted by the member, not a repeat of one in the
/// last hour (same kind, actor, room and event), and under the kind's hourly cap.
pub fn admit(kind: NotificationKind, muted: bool, recent_of_kind: u32, repeat: bool) -> bool {
    !muted && !repeat && recent_of_kind < hourly_cap(kind)
}

/// Creates the notifications in the background (a host with many followers does not
/// make their request wait). The order within the list is kept.
pub fn send(state: &AppState, list: Vec<NewNotification>) {
    if list.is_empty() {
        return;
    }
    let notifier = Notifier {
        store: state.store.clone(),
        pusher: state.pusher.clone(),
        public_url: state.public_url.clone(),
    };
    tokio::spawn(async move {
        for n in list {
            if let Err(e) = deliver(&notifier, &n).await {
                tracing::warn!(error = %e, kind = n.kind, "notification not stored");
            }
        }
    });
}

/// Stores one notification if the rules admit it and pushes it to the member's endpoints;
/// returns whether it was stored.
pub async fn deliver(notifier: &Notifier, n: &NewNotification) -> crate::store::Result<bool> {
    let store = &notifier.store;
    let Some(kind) = NotificationKind::parse(n.kind) else {
        return Ok(false);
    };
    if n.actor.as_ref() == Some(&n.user) {
        return Ok(false);
    }
    // Nothing a blocked member does reaches the member who blocked them.
    if let Some(actor) = &n.actor {
        if store.is_blocked(&n.user, actor).await? {
            return Ok(false);
        }
    }
    let settings = store.notification_settings(&n.user).await?;
    let muted = settings.muted_kinds.iter().any(|k| k == n.kind);
    if muted {
        return Ok(false);
    }
    let stored = store
        .insert_notification_if(n, now_ms() - WINDOW_MS, |recent, repeat| {
            admit(kind, muted, recent, repeat)
        })
        .await?;
    let Some(id) = stored else {
        tracing::debug!(kind = n.kind, user = %n.user, "notification held back by the rate limit");
        return Ok(false);
    };
    let row = store.notification(&id).await?;
    let (text, link) = describe(&notifier.public_url, kind, &row);
    let wire = Notification {
        id: row.id,
        kind,
        actor: row.actor,
        room_id: row.room,
        event_id: row.event,
        text,
        link,
        created_at: row.created_at,
        read: false,
    };
    if quiet_now(now_ms(), settings.quiet, &settings.time_zone) {
        tracing::debug!(user = %n.user, "quiet hours: not pushed");
        return Ok(true);
    }
    for outcome in notifier.pusher.push_to(&n.user, &wire).await {
        if let super::push::Outcome::Failed(why) = outcome {
            tracing::debug!(%why, "push not delivered");
        }
    }
    Ok(true)
}

/// Tells the browsers that asked about event `e` from its page (no account, so no feed, no
/// preferences: just the push). After it started or was cancelled there is nothing more to
/// say: their subscriptions are dropped.
pub async fn push_event_to_browsers(
    notifier: &Notifier,
    e: &crate::store::StoredEvent,
    kind: NotificationKind,
    room: Option<ruang_proto::RoomId>,
) -> crate::store::Result<usize> {
    let subs = notifier.store.event_web_pushes(&e.id).await?;
    if !subs.is_empty() {
        // As it is now (a change names the new title).
        let fresh = notifier.store.event(&UserId(String::new()), &e.id).await;
        let e = fresh.as_ref().unwrap_or(e);
        let row = NotificationRow {
            id: crate::store::new_id(),
            kind: kind.as_str().to_owned(),
            actor: Some(e.host.clone()),
            room: room.clone(),
            event: Some(e.id.clone()),
            event_title: Some(e.title.clone()),
            room_title: None,
            created_at: now_ms(),
        };
        let (text, link) = describe(&notifier.public_url, kind, &row);
        let wire = Notification {
            id: row.id,
            kind,
            actor: row.actor,
            room_id: row.room,
            event_id: row.event,
            text,
            link,
            created_at: row.created_at,
            read: false,
        };
        for outcome in notifier.pusher.push_to_all(&subs, &wire).await {
            if let super::push::Outcome::Failed(why) = outcome {
                tracing::debug!(%why, "browser push not delivered");
            }
        }
    }
    if matches!(
        kind,
        NotificationKind::EventStarted | NotificationKind::EventCancelled
    ) {
        notifier.store.clear_event_web_push(&e.id).await?;
    }
    Ok(subs.len())
}

/// [`push_event_to_browsers`] in the background (the request does not wait for it).
pub fn send_event_to_browsers(
    state: &AppState,
    e: &crate::store::StoredEvent,
    kind: NotificationKind,
    room: Option<ruang_proto::RoomId>,
) {
    let notifier = Notifier {
        store: state.store.clone(),
        pusher: state.pusher.clone(),
        public_url: state.public_url.clone(),
    };
    let e = e.clone();
    tokio::spawn(async move {
        if let Err(err) = push_event_to_browsers(&notifier, &e, kind, room).await {
            tracing::warn!(error = %err, "browser pushes for an event");
        }
    });
}

/// Whether `now` falls in the quiet hours `(start, end)` (minutes after local midnight in
/// `tz`; `start > end` spans midnight).
pub fn quiet_now(now_ms: i64, quiet: Option<(i64, i64)>, tz: &str) -> bool {
    let Some((start, end)) = quiet else {
        return false;
    };
    let zone = super::social::time_zone(tz).unwrap_or(jiff::tz::TimeZone::UTC);
    let Ok(t) = jiff::Timestamp::from_millisecond(now_ms) else {
        return false;
    };
    let z = t.to_zoned(zone);
    let m = i64::from(z.hour()) * 60 + i64::from(z.minute());
    if start < end {
        (start..end).contains(&m)
    } else {
        m >= start || m < end
    }
}

/// Sends "starts soon" for events starting within `lead` that have not had it; returns
/// how many events were due.
pub async fn remind(notifier: &Notifier, lead_ms: i64) -> crate::store::Result<usize> {
    let store = &notifier.store;
    let due = store.take_due_reminders(now_ms() + lead_ms).await?;
    for id in &due {
        let e = store.event(&UserId(String::new()), id).await?;
        let mut to: Vec<UserId> = store.event_subscribers(id).await?;
        // The host's co-hosts need the reminder too.
        to.extend(e.cohosts.iter().map(|c| c.id.clone()));
        to.sort_by(|a, b| a.0.cmp(&b.0));
        to.dedup();
        for u in to {
            deliver(
                notifier,
                &NewNotification {
                    user: u,
                    kind: NotificationKind::EventStarting.as_str(),
                    actor: Some(e.host.id.clone()),
                    room: None,
                    event: Some(id.clone()),
                },
            )
            .await?;
        }
        push_event_to_browsers(notifier, &e, NotificationKind::EventStarting, None).await?;
    }
    Ok(due.len())
}

/// The line a notification shows and where a tap leads.
pub fn describe(public_url: &str, kind: NotificationKind, n: &NotificationRow) -> (String, String) {
    let who = n
        .actor
        .as_ref()
        .map(|a| a.name.clone())
        .unwrap_or_else(|| "Someone".into());
    let event = n.event_title.clone().unwrap_or_else(|| "an event".into());
    let profile = n
        .actor
        .as_ref()
        .map(|a| format!("ruang://u/{}", a.handle))
        .unwrap_or_else(|| public_url.to_owned());
    let room_link = n
        .room
        .as_ref()
        .map(|r| format!("{public_url}/r/{r}"))
        .unwrap_or_else(|| public_url.to_owned());
    let event_link = n
        .event
        .as_ref()
        .map(|e| format!("{public_url}/e/{e}"))
        .unwrap_or_else(|| public_url.to_owned());
    match kind {
        NotificationKind::FollowedYou => (format!("{who} followed you"), profile),
        NotificationKind::RoomStarted => (format!("{who} started a room"), room_link),
        NotificationKind::EventScheduled => (format!("{who} scheduled “{event}”"), event_link),
        NotificationKind::EventStarting => (format!("“{event}” starts soon"), event_link),
        NotificationKind::EventStarted => (format!("“{event}” is live now"), room_link),
        NotificationKind::EventChanged => (format!("“{event}” was changed"), event_link),
        NotificationKind::EventCancelled => (format!("“{event}” was cancelled"), event_link),
        NotificationKind::InviteeJoined => {
            (format!("{who}, whom you invited, joined Ruang"), profile)
        }
        NotificationKind::InvitedToSpeak => match &n.room_title {
            Some(t) if !t.is_empty() => (format!("{who} invited you to speak in “{t}”"), room_link),
            _ => (format!("{who} invited you to speak"), room_link),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_in_the_members_zone() {
        // 2026-12-08T15:30:00Z is 22:30 in Jakarta and 00:30 (next day) in Tokyo.
        let t = super::super::social::parse_start("2026-12-08T15:30:00Z", "UTC").unwrap();
        let night = Some((22 * 60, 7 * 60));
        assert!(quiet_now(t, night, "Asia/Jakarta"));
        assert!(quiet_now(t, night, "Asia/Tokyo"), "after midnight");
        assert!(!quiet_now(t, night, "UTC"), "15:30 in UTC");
        assert!(!quiet_now(t, None, "Asia/Jakarta"));
        let afternoon = Some((13 * 60, 16 * 60));
        assert!(quiet_now(t, afternoon, "UTC"));
        assert!(!quiet_now(t, afternoon, "Asia/Jakarta"));
        assert!(
            !quiet_now(t + 30 * 60_000, afternoon, "UTC"),
            "the end is exclusive"
        );
        assert_eq!(super::super::social::parse_hhmm("07:05"), Some(425));
        for bad in ["7:05", "24:00", "12:60", "ab:cd", "", "12-00"] {
            assert_eq!(super::super::social::parse_hhmm(bad), None, "{bad}");
        }
    }

    #[test]
    fn muted_repeated_and_over_the_cap_are_held_back() {
        assert!(admit(NotificationKind::FollowedYou, false, 0, false));
        assert!(!admit(NotificationKind::FollowedYou, true, 0, false));
        assert!(!admit(NotificationKind::FollowedYou, false, 0, true));
        assert!(admit(NotificationKind::RoomStarted, false, 9, false));
        assert!(!admit(NotificationKind::RoomStarted, false, 10, false));
        assert!(admit(NotificationKind::EventCancelled, false, 10, false));
    }
}
