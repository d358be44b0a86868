//! Photos, profile links, follower lists, scheduled rooms (events) and notifications.

use super::{now_ms, summary, Result, Store, StoreError, StoredRoom};
use ruang_proto::{RoomId, RoomKind, UserId, UserSummary};
use sqlx::any::AnyRow;
use sqlx::Row;

/// A scheduled room as stored, with what the viewer needs.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: String,
    pub host: UserSummary,
    pub cohosts: Vec<UserSummary>,
    pub title: String,
    pub description: String,
    pub kind: RoomKind,
    pub starts_at: i64,
    pub time_zone: String,
    pub created_at: i64,
    pub cancelled: bool,
    pub room_id: Option<RoomId>,
    /// Members who asked to be notified.
    pub interested: u32,
    /// Whether the viewer asked to be notified.
    pub notify_me: bool,
}

/// A notification to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    pub user: UserId,
    pub kind: &'static str,
    pub actor: Option<UserId>,
    pub room: Option<RoomId>,
    pub event: Option<String>,
}

/// A stored notification with its actor.
#[derive(Debug, Clone)]
pub struct NotificationRow {
    pub id: String,
    pub kind: String,
    pub actor: Option<UserSummary>,
    pub room: Option<RoomId>,
    pub event: Option<String>,
    pub event_title: Option<String>,
    /// The title of the room (`room`), when it has one.
    pub room_title: Option<String>,
    pub created_at: i64,
}

/// A member's notification settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotificationSettingsRow {
    pub read_up_to: i64,
    pub muted_kinds: Vec<String>,
    /// Quiet hours: (start, end) in minutes after local midnight.
    pub quiet: Option<(i64, i64)>,
    /// Zone of the quiet hours (empty reads as UTC).
    pub time_zone: String,
}

const NOTIFICATION_SELECT: &str = "SELECT n.id AS n_id, n.kind AS kind, n.room_id AS room_id,
        n.event_id AS event_id, n.created_at AS at, e.title AS event_title,
        r.title AS room_title, u.id AS id, u.handle AS handle, u.name AS name, u.avatar AS avatar
     FROM notifications n LEFT JOIN users u ON u.id = n.actor_id
          LEFT JOIN events e ON e.id = n.event_id
          LEFT JOIN rooms r ON r.id = n.room_id";

fn notification_row(r: &AnyRow) -> Result<NotificationRow> {
    let actor = match r.try_get::<Option<String>, _>("id")? {
        Some(_) => Some(summary(r, "")?),
        None => None,
    };
    Ok(NotificationRow {
        id: r.try_get("n_id")?,
        kind: r.try_get("kind")?,
        actor,
        room: r.try_get::<Option<String>, _>("room_id")?.map(RoomId),
        event: r.try_get("event_id")?,
        event_title: r.try_get("event_title")?,
        room_title: r.try_get("room_title")?,
        created_at: r.try_get("at")?,
    })
}

/// A push endpoint of a member with its RFC 8291 keys (base64url as sent).
#[derive(Debug, Clone, PartialEq)]
pub struct PushSubscription {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

const EVENT_COLUMNS: &str = "e.id AS e_id, e.title AS title, e.description AS description, e.kind AS kind,
    e.starts_at AS starts_at, e.time_zone AS time_zone, e.created_at AS created_at,
    e.cancelled_at AS cancelled_at, e.room_id AS room_id,
    u.id AS id, u.handle AS handle, u.name AS name, u.avatar AS avatar,
    (SELECT COUNT(*) FROM event_subscriptions s WHERE s.event_id = e.id) AS interested,
    (SELECT COUNT(*) FROM event_subscriptions s WHERE s.event_id = e.id AND s.user_id = $1) AS mine";

/// A page cursor `MILLIS.ID` (newest first lists).
pub fn parse_cursor(s: &str) -> Option<(i64, String)> {
    let (t, id) = s.split_once('.')?;
    let t = t.parse().ok()?;
    (!id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| (t, id.to_owned()))
}

impl Store {
    // ----- photos and links -----

    /// Sets (or clears) a member's photo; returns the previous hash.
    pub async fn set_avatar(&self, user: &UserId, hash: Option<&str>) -> Result<Option<String>> {
        let mut tx = self.write_tx().await?;
        let old: Option<String> = sqlx::query("SELECT avatar FROM users WHERE id = $1")
            .bind(user.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?
            .try_get("avatar")?;
        sqlx::query("UPDATE users SET avatar = $1 WHERE id = $2")
            .bind(hash)
            .bind(user.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(old)
    }

    /// Whether any member still shows the photo with this hash.
    pub async fn avatar_in_use(&self, hash: &str) -> Result<bool> {
        Ok(
            sqlx::query("SELECT 1 AS one FROM users WHERE avatar = $1 LIMIT 1")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    pub async fn set_links(&self, user: &UserId, links: &[String]) -> Result<()> {
        let json = serde_json::to_string(links).unwrap_or_else(|_| "[]".into());
        sqlx::query("UPDATE users SET links = $1 WHERE id = $2")
            .bind(json)
            .bind(user.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// One page of `user`'s followers (or of those they follow), newest first.
    pub async fn follow_page(
        &self,
        user: &UserId,
        followers: bool,
        cursor: Option<(i64, String)>,
        limit: usize,
    ) -> Result<(Vec<UserSummary>, Option<String>)> {
        let (me, other) = if followers {
            ("followee_id", "follower_id")
        } else {
            ("follower_id", "followee_id")
        };
        let (t, id) = cursor.unwrap_or((i64::MAX, String::new()));
        let sql = format!(
            "SELECT u.id AS id, u.handle AS handle, u.name AS name, u.avatar AS avatar, f.created_at AS at
             FROM follows f JOIN users u ON u.id = f.{other}
             WHERE f.{me} = $1 AND (f.created_at < $2 OR (f.created_at = $2 AND u.id > $3))
             ORDER BY f.created_at DESC, u.id LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(user.as_str())
            .bind(t)
            .bind(id)
            .bind(limit as i64 + 1)
            .fetch_all(&self.pool)
            .await?;
        super::page_of(&rows, limit, "at", |r| summary(r, ""))
    }

    /// People `user` invited who have signed up (the invite tree's next level).
    pub async fn invitees(&self, user: &UserId) -> Result<Vec<UserSummary>> {
        let rows = sqlx::query(
            "SELECT id, handle, name, avatar FROM users WHERE invited_by = $1 ORDER BY created_at, id LIMIT 100",
        )
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(summary(r, "")?)).collect()
    }

    /// Who invited `user`, if anyone.
    pub async fn inviter_of(&self, user: &UserId) -> Result<Option<UserId>> {
        let row = sqlx::query("SELECT invited_by FROM users WHERE id = $1")
            .bind(user.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => r.try_get::<Option<String>, _>("invited_by")?.map(UserId),
            None => None,
        })
    }

    /// Everyone who follows `user`.
    pub async fn followers(&self, user: &UserId) -> Result<Vec<UserId>> {
        let rows = sqlx::query("SELECT follower_id FROM follows WHERE followee_id = $1")
            .bind(user.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(UserId(r.try_get("follower_id")?)))
            .collect()
    }

    // ----- events -----

    pub async fn create_event(&self, e: &StoredEvent) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO events (id, host_id, title, description, kind, starts_at, time_zone, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(&e.id)
        .bind(e.host.id.as_str())
        .bind(&e.title)
        .bind(&e.description)
        .bind(e.kind.as_str())
        .bind(e.starts_at)
        .bind(&e.time_zone)
        .bind(e.created_at)
        .execute(&mut *tx)
        .await?;
        for (i, c) in e.cohosts.iter().enumerate() {
            sqlx::query(
                "INSERT INTO event_cohosts (event_id, user_id, position) VALUES ($1, $2, $3)",
            )
            .bind(&e.id)
            .bind(c.id.as_str())
            .bind(i as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn event_from_row(&self, row: &AnyRow) -> Result<StoredEvent> {
        let id: String = row.try_get("e_id")?;
        let kind: String = row.try_get("kind")?;
        let cohosts = sqlx::query(
            "SELECT u.id AS id, u.handle AS handle, u.name AS name, u.avatar AS avatar
             FROM event_cohosts c JOIN users u ON u.id = c.user_id
             WHERE c.event_id = $1 ORDER BY c.position",
        )
        .bind(&id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| summary(r, ""))
        .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(StoredEvent {
            id,
            host: summary(row, "")?,
            cohosts,
            title: row.try_get("title")?,
            description: row.try_get("description")?,
            kind: RoomKind::parse(&kind).unwrap_or(RoomKind::Closed),
            starts_at: row.try_get("starts_at")?,
            time_zone: row.try_get("time_zone")?,
            created_at: row.try_get("created_at")?,
            cancelled: row.try_get::<Option<i64>, _>("cancelled_at")?.is_some(),
            room_id: row.try_get::<Option<String>, _>("room_id")?.map(RoomId),
            interested: row.try_get::<i64, _>("interested")? as u32,
            notify_me: row.try_get::<i64, _>("mine")? > 0,
        })
    }

    pub async fn event(&self, viewer: &UserId, id: &str) -> Result<StoredEvent> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events e JOIN users u ON u.id = e.host_id WHERE e.id = $2"
        );
        let row = sqlx::query(&sql)
            .bind(viewer.as_str())
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        self.event_from_row(&row).await
    }

    /// Events not cancelled and not started, starting after `since`, soonest first; only
    /// those hosted or co-hosted by `of` when given.
    pub async fn upcoming_events(
        &self,
        viewer: &UserId,
        since: i64,
        of: Option<&UserId>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        let filter = if of.is_some() {
            "AND (e.host_id = $4 OR EXISTS (SELECT 1 FROM event_cohosts c WHERE c.event_id = e.id AND c.user_id = $4))"
        } else {
            "AND $4 = $4"
        };
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events e JOIN users u ON u.id = e.host_id
             WHERE e.cancelled_at IS NULL AND e.room_id IS NULL AND e.starts_at >= $2 {filter}
             ORDER BY e.starts_at, e.id LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(viewer.as_str())
            .bind(since)
            .bind(limit as i64)
            .bind(of.map(|u| u.as_str()).unwrap_or(""))
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.event_from_row(r).await?);
        }
        Ok(out)
    }

    /// Changes an event (not cancelled, not started). `None` leaves a field as it is.
    #[allow(clippy::too_many_arguments)]
    pub async fn update_event(
        &self,
        id: &str,
        title: Option<&str>,
        description: Option<&str>,
        starts_at: Option<(i64, &str)>,
        cohosts: Option<&[UserId]>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let live = sqlx::query(
            "SELECT 1 AS one FROM events WHERE id = $1 AND cancelled_at IS NULL AND room_id IS NULL",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if live.is_none() {
            return Err(StoreError::NotFound);
        }
        let now = now_ms();
        if let Some(t) = title {
            sqlx::query("UPDATE events SET title = $1, updated_at = $2 WHERE id = $3")
                .bind(t)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(d) = description {
            sqlx::query("UPDATE events SET description = $1, updated_at = $2 WHERE id = $3")
                .bind(d)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some((at, tz)) = starts_at {
            // A new time gets its reminder again.
            sqlx::query(
                "UPDATE events SET starts_at = $1, time_zone = $2, reminded = 0, updated_at = $3 WHERE id = $4",
            )
            .bind(at)
            .bind(tz)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(cohosts) = cohosts {
            sqlx::query("DELETE FROM event_cohosts WHERE event_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            for (i, c) in cohosts.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO event_cohosts (event_id, user_id, position) VALUES ($1, $2, $3)",
                )
                .bind(id)
                .bind(c.as_str())
                .bind(i as i64)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Cancels an event that is neither cancelled nor started.
    pub async fn cancel_event(&self, id: &str) -> Result<()> {
        let r = sqlx::query(
            "UPDATE events SET cancelled_at = $1 WHERE id = $2 AND cancelled_at IS NULL AND room_id IS NULL",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    pub async fn set_event_subscription(&self, event: &str, user: &UserId, on: bool) -> Result<()> {
        if on {
            sqlx::query(
                "INSERT INTO event_subscriptions (event_id, user_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(event)
            .bind(user.as_str())
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        } else {
            sqlx::query("DELETE FROM event_subscriptions WHERE event_id = $1 AND user_id = $2")
                .bind(event)
                .bind(user.as_str())
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    pub async fn event_subscribers(&self, event: &str) -> Result<Vec<UserId>> {
        let rows = sqlx::query("SELECT user_id FROM event_subscriptions WHERE event_id = $1")
            .bind(event)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(UserId(r.try_get("user_id")?)))
            .collect()
    }

    /// Starts the event's room: stores the room (creator as moderator) and its co-hosts,
    /// and links the event to it, all or nothing. Fails with `NotFound` if the event was
    /// cancelled or already started.
    pub async fn start_event(
        &self,
        event: &str,
        room: &StoredRoom,
        cohosts: &[UserId],
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        super::insert_room(&mut tx, room).await?;
        for c in cohosts {
            sqlx::query("INSERT INTO room_cohosts (room_id, user_id) VALUES ($1, $2)")
                .bind(room.id.as_str())
                .bind(c.as_str())
                .execute(&mut *tx)
                .await?;
        }
        let linked = sqlx::query(
            "UPDATE events SET room_id = $1 WHERE id = $2 AND cancelled_at IS NULL AND room_id IS NULL",
        )
        .bind(room.id.as_str())
        .bind(event)
        .execute(&mut *tx)
        .await?;
        if linked.rows_affected() != 1 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    /// Co-hosts (moderators-to-be) of a live room.
    pub async fn room_cohosts(&self, room: &RoomId) -> Result<Vec<UserId>> {
        let rows = sqlx::query("SELECT user_id FROM room_cohosts WHERE room_id = $1")
            .bind(room.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(UserId(r.try_get("user_id")?)))
            .collect()
    }

    /// Events starting by `until` whose reminder is not sent yet (not cancelled, not
    /// started): marks them reminded and returns their ids.
    pub async fn take_due_reminders(&self, until: i64) -> Result<Vec<String>> {
        let mut tx = self.write_tx().await?;
        let rows = sqlx::query(
            "SELECT id FROM events WHERE reminded = 0 AND cancelled_at IS NULL AND room_id IS NULL AND starts_at <= $1",
        )
        .bind(until)
        .fetch_all(&mut *tx)
        .await?;
        let candidates: Vec<String> = rows
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<std::result::Result<_, _>>()?;
        // Only the ones this call flips: with several nodes looking at once (cluster mode),
        // the second one's update finds them reminded already and sends nothing.
        let mut ids = Vec::with_capacity(candidates.len());
        for id in candidates {
            let flipped =
                sqlx::query("UPDATE events SET reminded = 1 WHERE id = $1 AND reminded = 0")
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            if flipped == 1 {
                ids.push(id);
            }
        }
        tx.commit().await?;
        Ok(ids)
    }

    // ----- notifications -----

    /// Stores notification `n` if `admit(recent, repeat)` says so, where `recent` counts
    /// `n.user`'s notifications of the same kind since `since` and `repeat` says one of them
    /// had the same actor, room and event. Count and insert are one transaction, serialized
    /// per member, so concurrent deliveries (or several nodes) cannot pass a cap together.
    /// Returns the new notification's id, or None when held back.
    pub async fn insert_notification_if(
        &self,
        n: &NewNotification,
        since: i64,
        admit: impl FnOnce(u32, bool) -> bool,
    ) -> Result<Option<String>> {
        let mut tx = self.write_tx().await?;
        if !self.is_sqlite {
            // SQLite's write transaction already excludes every other writer.
            sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
                .bind(n.user.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        }
        let rows = sqlx::query(
            "SELECT actor_id, room_id, event_id FROM notifications
             WHERE user_id = $1 AND kind = $2 AND created_at >= $3",
        )
        .bind(n.user.as_str())
        .bind(n.kind)
        .bind(since)
        .fetch_all(&mut *tx)
        .await?;
        let mut same = false;
        for r in &rows {
            let actor: Option<String> = r.try_get("actor_id")?;
            let room: Option<String> = r.try_get("room_id")?;
            let event: Option<String> = r.try_get("event_id")?;
            if actor.as_deref() == n.actor.as_ref().map(|a| a.as_str())
                && room.as_deref() == n.room.as_ref().map(|r| r.as_str())
                && event == n.event
            {
                same = true;
            }
        }
        if !admit(rows.len() as u32, same) {
            return Ok(None);
        }
        let id = super::new_id();
        sqlx::query(
            "INSERT INTO notifications (id, user_id, kind, actor_id, room_id, event_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(n.user.as_str())
        .bind(n.kind)
        .bind(n.actor.as_ref().map(|a| a.as_str().to_owned()))
        .bind(n.room.as_ref().map(|r| r.as_str().to_owned()))
        .bind(n.event.clone())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// One page of `user`'s notifications, newest first.
    pub async fn notifications_page(
        &self,
        user: &UserId,
        cursor: Option<(i64, String)>,
        limit: usize,
    ) -> Result<(Vec<NotificationRow>, Option<String>)> {
        let (t, id) = cursor.unwrap_or((i64::MAX, String::new()));
        let rows = sqlx::query(&format!(
            "{NOTIFICATION_SELECT}
             WHERE n.user_id = $1 AND (n.created_at < $2 OR (n.created_at = $2 AND n.id > $3))
             ORDER BY n.created_at DESC, n.id LIMIT $4"
        ))
        .bind(user.as_str())
        .bind(t)
        .bind(id)
        .bind(limit as i64 + 1)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        let mut next = None;
        for (i, r) in rows.iter().enumerate() {
            if i == limit {
                let last = &out[i - 1];
                let last: &NotificationRow = last;
                next = Some(format!("{}.{}", last.created_at, last.id));
                break;
            }
            out.push(notification_row(r)?);
        }
        Ok((out, next))
    }

    pub async fn unread_notifications(&self, user: &UserId, read_up_to: i64) -> Result<i64> {
        Ok(sqlx::query(
            "SELECT COUNT(*) AS n FROM notifications WHERE user_id = $1 AND created_at > $2",
        )
        .bind(user.as_str())
        .bind(read_up_to)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?)
    }

    pub async fn notification_settings(&self, user: &UserId) -> Result<NotificationSettingsRow> {
        let row = sqlx::query(
            "SELECT read_up_to, muted_kinds, quiet_start, quiet_end, time_zone FROM notification_settings WHERE user_id = $1",
        )
        .bind(user.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else {
            return Ok(NotificationSettingsRow::default());
        };
        Ok(NotificationSettingsRow {
            read_up_to: r.try_get("read_up_to")?,
            muted_kinds: serde_json::from_str(&r.try_get::<String, _>("muted_kinds")?)
                .unwrap_or_default(),
            quiet: r
                .try_get::<Option<i64>, _>("quiet_start")?
                .zip(r.try_get::<Option<i64>, _>("quiet_end")?),
            time_zone: r.try_get("time_zone")?,
        })
    }

    /// Writes the settings whole (read marker included).
    pub async fn set_notification_settings(
        &self,
        user: &UserId,
        s: &NotificationSettingsRow,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO notification_settings (user_id, read_up_to, muted_kinds, quiet_start, quiet_end, time_zone)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (user_id) DO UPDATE SET read_up_to = excluded.read_up_to,
                muted_kinds = excluded.muted_kinds, quiet_start = excluded.quiet_start,
                quiet_end = excluded.quiet_end, time_zone = excluded.time_zone",
        )
        .bind(user.as_str())
        .bind(s.read_up_to)
        .bind(serde_json::to_string(&s.muted_kinds).unwrap_or_else(|_| "[]".into()))
        .bind(s.quiet.map(|q| q.0))
        .bind(s.quiet.map(|q| q.1))
        .bind(if s.time_zone.is_empty() {
            "UTC"
        } else {
            s.time_zone.as_str()
        })
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn notification(&self, id: &str) -> Result<NotificationRow> {
        let row = sqlx::query(&format!("{NOTIFICATION_SELECT} WHERE n.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        notification_row(&row)
    }

    // ----- push -----

    /// A server secret by name, created with `make` the first time (the first writer wins
    /// when several nodes start at once).
    pub async fn secret_or_insert(
        &self,
        name: &str,
        make: impl FnOnce() -> String,
    ) -> Result<String> {
        sqlx::query(
            "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(make())
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query("SELECT value FROM server_secrets WHERE name = $1")
                .bind(name)
                .fetch_one(&self.pool)
                .await?
                .try_get("value")?,
        )
    }

    /// Adds (or moves to `user`) a push endpoint.
    pub async fn add_push_subscription(&self, user: &UserId, s: &PushSubscription) -> Result<()> {
        sqlx::query(
            "INSERT INTO push_subscriptions (endpoint, user_id, p256dh, auth, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (endpoint) DO UPDATE SET user_id = excluded.user_id, p256dh = excluded.p256dh,
                auth = excluded.auth, created_at = excluded.created_at",
        )
        .bind(&s.endpoint)
        .bind(user.as_str())
        .bind(&s.p256dh)
        .bind(&s.auth)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes an endpoint: the member's own (`Some(user)`), or any (the push service said
    /// it is gone). Returns whether one was removed.
    pub async fn remove_push_subscription(
        &self,
        user: Option<&UserId>,
        endpoint: &str,
    ) -> Result<bool> {
        let r = match user {
            Some(u) => {
                sqlx::query("DELETE FROM push_subscriptions WHERE endpoint = $1 AND user_id = $2")
                    .bind(endpoint)
                    .bind(u.as_str())
                    .execute(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("DELETE FROM push_subscriptions WHERE endpoint = $1")
                    .bind(endpoint)
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(r.rows_affected() > 0)
    }

    pub async fn push_subscriptions(&self, user: &UserId) -> Result<Vec<PushSubscription>> {
        let rows = sqlx::query(
            "SELECT endpoint, p256dh, auth FROM push_subscriptions WHERE user_id = $1 ORDER BY created_at, endpoint",
        )
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PushSubscription {
                    endpoint: r.try_get("endpoint")?,
                    p256dh: r.try_get("p256dh")?,
                    auth: r.try_get("auth")?,
                })
            })
            .collect()
    }

    // ----- browsers' "Notify me" on /e/ pages (no account) -----

    /// Adds (or renews the keys of) a browser's subscription to one event.
    pub async fn add_event_web_push(&self, event: &str, s: &PushSubscription) -> Result<()> {
        sqlx::query(
            "INSERT INTO event_web_push (event_id, endpoint, p256dh, auth, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (event_id, endpoint) DO UPDATE SET p256dh = excluded.p256dh, auth = excluded.auth",
        )
        .bind(event)
        .bind(&s.endpoint)
        .bind(&s.p256dh)
        .bind(&s.auth)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes a browser's subscription to `event`, or (None) the endpoint everywhere (the
    /// push service said it is gone). Returns whether one was removed.
    pub async fn remove_event_web_push(&self, event: Option<&str>, endpoint: &str) -> Result<bool> {
        let r = match event {
            Some(e) => {
                sqlx::query("DELETE FROM event_web_push WHERE event_id = $1 AND endpoint = $2")
                    .bind(e)
                    .bind(endpoint)
                    .execute(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("DELETE FROM event_web_push WHERE endpoint = $1")
                    .bind(endpoint)
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(r.rows_affected() > 0)
    }

    /// Forgets every browser subscription of `event` (it started or was cancelled).
    pub async fn clear_event_web_push(&self, event: &str) -> Result<()> {
        sqlx::query("DELETE FROM event_web_push WHERE event_id = $1")
            .bind(event)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn event_web_pushes(&self, event: &str) -> Result<Vec<PushSubscription>> {
        let rows = sqlx::query(
            "SELECT endpoint, p256dh, auth FROM event_web_push WHERE event_id = $1 ORDER BY created_at, endpoint",
        )
        .bind(event)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PushSubscription {
                    endpoint: r.try_get("endpoint")?,
                    p256dh: r.try_get("p256dh")?,
                    auth: r.try_get("auth")?,
                })
            })
            .collect()
    }

    pub async fn count_event_web_push(&self, event: &str) -> Result<i64> {
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM event_web_push WHERE event_id = $1")
                .bind(event)
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?,
        )
    }
}
