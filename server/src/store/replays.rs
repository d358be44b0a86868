//! Recorded rooms, replays and clips.

use super::{now_ms, stored_room, summary, Result, Store, StoredRoom};
use ruang_proto::{RoomId, UserId, UserSummary};
use sqlx::any::AnyRow;
use sqlx::Row;

/// A replay as stored, with its room and host.
#[derive(Debug, Clone)]
pub struct ReplayRow {
    pub room: StoredRoom,
    pub host: UserSummary,
    pub created_at: i64,
    pub duration_ms: i64,
    pub bytes: i64,
    /// JSON: `{"speakers": [...], "chapters": [...], "chat": [...]}`.
    pub meta: String,
}

/// A clip as stored, with its room's title.
#[derive(Debug, Clone)]
pub struct ClipRow {
    pub id: String,
    pub room_id: RoomId,
    pub room_title: String,
    pub created_by: UserSummary,
    pub created_at: i64,
    pub duration_ms: i64,
}

const REPLAY_COLUMNS: &str = "r.id AS rid, r.title AS title, r.kind AS kind, r.created_by AS created_by,
    r.link_token AS link_token, r.hands_enabled AS hands_enabled, r.created_at AS created_at,
    u.id AS id, u.handle AS handle, u.name AS name, u.avatar AS avatar,
    p.created_at AS replay_created_at, p.duration_ms AS duration_ms, p.bytes AS bytes, p.meta AS meta";

fn replay_row(row: &AnyRow) -> Result<ReplayRow> {
    Ok(ReplayRow {
        room: stored_room(row, "rid")?,
        host: summary(row, "")?,
        created_at: row.try_get("replay_created_at")?,
        duration_ms: row.try_get("duration_ms")?,
        bytes: row.try_get("bytes")?,
        meta: row.try_get("meta")?,
    })
}

impl Store {
    /// Stores whether `room` is recorded and allows clips.
    pub async fn set_room_media(&self, room: &RoomId, recording: bool, clips: bool) -> Result<()> {
        sqlx::query(
            "INSERT INTO room_recording (room_id, recording, clips) VALUES ($1, $2, $3)
             ON CONFLICT (room_id) DO UPDATE SET recording = excluded.recording, clips = excluded.clips",
        )
        .bind(room.as_str())
        .bind(recording as i64)
        .bind(clips as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks `room` end-to-end encrypted (at creation; never undone).
    pub async fn set_room_e2ee(&self, room: &RoomId) -> Result<()> {
        sqlx::query("INSERT INTO room_e2ee (room_id) VALUES ($1) ON CONFLICT (room_id) DO NOTHING")
            .bind(room.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether `room` is end-to-end encrypted.
    pub async fn room_e2ee(&self, room: &RoomId) -> Result<bool> {
        Ok(
            sqlx::query("SELECT room_id FROM room_e2ee WHERE room_id = $1")
                .bind(room.as_str())
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    /// `(recording, clips)` of `room` (false, false when never set).
    pub async fn room_media(&self, room: &RoomId) -> Result<(bool, bool)> {
        let row = sqlx::query("SELECT recording, clips FROM room_recording WHERE room_id = $1")
            .bind(room.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => (
                r.try_get::<i64, _>("recording")? != 0,
                r.try_get::<i64, _>("clips")? != 0,
            ),
            None => (false, false),
        })
    }

    /// Whether `room` was ever recorded.
    pub async fn was_recorded(&self, room: &RoomId) -> Result<bool> {
        Ok(self.room_media(room).await?.0)
    }

    pub async fn insert_replay(
        &self,
        room: &RoomId,
        host: &UserId,
        duration_ms: i64,
        bytes: i64,
        meta: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO replays (room_id, host_id, created_at, duration_ms, bytes, meta) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (room_id) DO UPDATE SET created_at = excluded.created_at, duration_ms = excluded.duration_ms,
                 bytes = excluded.bytes, meta = excluded.meta",
        )
        .bind(room.as_str())
        .bind(host.as_str())
        .bind(now_ms())
        .bind(duration_ms)
        .bind(bytes)
        .bind(meta)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn replay(&self, room: &RoomId) -> Result<Option<ReplayRow>> {
        let row = sqlx::query(&format!(
            "SELECT {REPLAY_COLUMNS} FROM replays p JOIN rooms r ON r.id = p.room_id
             JOIN users u ON u.id = p.host_id WHERE p.room_id = $1"
        ))
        .bind(room.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(replay_row).transpose()
    }

    /// Deletes a replay's row; true if there was one.
    pub async fn delete_replay(&self, room: &RoomId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM replays WHERE room_id = $1")
            .bind(room.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The replays of rooms `host` created, newest first.
    pub async fn replays_by_host(&self, host: &UserId, limit: i64) -> Result<Vec<ReplayRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {REPLAY_COLUMNS} FROM replays p JOIN rooms r ON r.id = p.room_id
             JOIN users u ON u.id = p.host_id WHERE p.host_id = $1
             ORDER BY p.created_at DESC, p.room_id LIMIT $2"
        ))
        .bind(host.as_str())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(replay_row).collect()
    }

    pub async fn insert_clip(
        &self,
        id: &str,
        room: &RoomId,
        by: &UserId,
        duration_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO clips (id, room_id, created_by, created_at, duration_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(room.as_str())
        .bind(by.as_str())
        .bind(now_ms())
        .bind(duration_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn clip(&self, id: &str) -> Result<Option<ClipRow>> {
        let row = sqlx::query(
            "SELECT c.id AS cid, c.room_id AS room_id, r.title AS title, c.created_at AS created_at,
                    c.duration_ms AS duration_ms, u.id AS id, u.handle AS handle, u.name AS name, u.avatar AS avatar
             FROM clips c JOIN rooms r ON r.id = c.room_id JOIN users u ON u.id = c.created_by
             WHERE c.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(ClipRow {
            id: row.try_get("cid")?,
            room_id: RoomId(row.try_get("room_id")?),
            room_title: row.try_get("title")?,
            created_by: summary(&row, "")?,
            created_at: row.try_get("created_at")?,
            duration_ms: row.try_get("duration_ms")?,
        }))
    }
}
