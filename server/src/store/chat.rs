//! Reactions and chat settings of live rooms, and the follow lookup of followers-only chat.

use super::{Result, Store};
use ruang_proto::{ChatMode, ChatSettings, RoomId, UserId};
use sqlx::Row;

impl Store {
    /// The stored reactions switch and chat settings of a room (defaults if it is unknown).
    pub async fn room_chat_settings(&self, room: &RoomId) -> Result<(bool, ChatSettings)> {
        let row = sqlx::query(
            "SELECT reactions_enabled, chat_mode, chat_slow_seconds FROM rooms WHERE id = $1",
        )
        .bind(room.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok((true, ChatSettings::default()));
        };
        let mode: String = row.try_get("chat_mode")?;
        let slow: i64 = row.try_get("chat_slow_seconds")?;
        Ok((
            row.try_get::<i64, _>("reactions_enabled")? != 0,
            ChatSettings {
                mode: ChatMode::parse(&mode).unwrap_or_default(),
                slow_seconds: slow.clamp(0, u32::MAX as i64) as u32,
            },
        ))
    }

    /// Whether `user` follows at least one of `candidates`.
    pub async fn follows_any(&self, user: &UserId, candidates: &[UserId]) -> Result<bool> {
        if candidates.is_empty() {
            return Ok(false);
        }
        let rows = sqlx::query("SELECT followee_id FROM follows WHERE follower_id = $1")
            .bind(user.as_str())
            .fetch_all(&self.pool)
            .await?;
        for r in rows {
            let followee: String = r.try_get("followee_id")?;
            if candidates.iter().any(|c| c.0 == followee) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The `UPDATE` of one settings change, inside the change's transaction.
pub(super) async fn apply_chat_change(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    room: &str,
    change: &crate::rooms::rules::Persist,
) -> Result<()> {
    use crate::rooms::rules::Persist;
    match change {
        Persist::ReactionsEnabled(enabled) => {
            sqlx::query("UPDATE rooms SET reactions_enabled = $1 WHERE id = $2")
                .bind(*enabled as i64)
                .bind(room)
                .execute(&mut **tx)
                .await?;
        }
        Persist::ChatSettings(s) => {
            sqlx::query("UPDATE rooms SET chat_mode = $1, chat_slow_seconds = $2 WHERE id = $3")
                .bind(s.mode.as_str())
                .bind(s.slow_seconds as i64)
                .bind(room)
                .execute(&mut **tx)
                .await?;
        }
        _ => {}
    }
    Ok(())
}
