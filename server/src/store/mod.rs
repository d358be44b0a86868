//! Persistence with sqlx over SQLite (embedded, WAL) or PostgreSQL, same migrations.
//! Every multi-step change runs in one transaction.

mod chat;
mod replays;
mod safety;
mod search;
mod secrets;
mod social;

pub use replays::{ClipRow, ReplayRow};
pub use safety::{Filed, NewReport};
pub use search::{words as search_words, SearchHits};
pub use secrets::{hash_token, new_id, new_invite_code, new_link_token, new_token};
pub use social::{
    parse_cursor, NewNotification, NotificationRow, NotificationSettingsRow, PushSubscription,
    StoredEvent,
};

use crate::rooms::rules::Persist;
use ruang_proto::{Invite, InviteCheck, Profile, Role, RoomId, RoomKind, UserId, UserSummary};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::time::{SystemTime, UNIX_EPOCH};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("handle already taken")]
    HandleTaken,
    #[error("invalid invite code")]
    InvalidInvite,
    #[error("not found")]
    NotFound,
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Cluster mode: another node took the room over (its fencing token is newer).
    #[error("the room is owned by another node now")]
    Fenced,
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T> = std::result::Result<T, StoreError>;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The signed-in user behind a token.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user: UserSummary,
    pub is_admin: bool,
    pub token_hash: String,
}

/// A room as stored.
#[derive(Debug, Clone)]
pub struct StoredRoom {
    pub id: RoomId,
    pub title: String,
    pub kind: RoomKind,
    pub created_by: UserId,
    pub link_token: String,
    pub hands_enabled: bool,
    pub created_at: i64,
}

/// A live room with its people, loaded at start.
#[derive(Debug, Clone)]
pub struct LoadedRoom {
    pub room: StoredRoom,
    pub creator: UserSummary,
    /// Everyone in the room: who, role, muted.
    pub participants: Vec<(UserSummary, Role, bool)>,
    pub removed: Vec<UserId>,
    /// Co-hosts of the event it was started from (they join as moderators).
    pub cohosts: Vec<UserId>,
    /// Raised hands in order, with whether an invite to speak is pending.
    pub hands: Vec<(UserId, bool)>,
    /// Reactions on or off, and the chat settings.
    pub chat: (bool, ruang_proto::ChatSettings),
    /// End-to-end encrypted.
    pub e2ee: bool,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    is_sqlite: bool,
}

fn summary(row: &AnyRow, prefix: &str) -> std::result::Result<UserSummary, sqlx::Error> {
    Ok(UserSummary {
        id: UserId(row.try_get(format!("{prefix}id").as_str())?),
        handle: row.try_get(format!("{prefix}handle").as_str())?,
        name: row.try_get(format!("{prefix}name").as_str())?,
        avatar: row.try_get(format!("{prefix}avatar").as_str())?,
    })
}

/// One page of keyset-paged rows (the queries ask for `limit + 1`, newest first by the
/// `at` column then by `id`): the first `limit` rows mapped, and the cursor `AT.ID` of the
/// last of them when there are more.
fn page_of<T, E>(
    rows: &[AnyRow],
    limit: usize,
    at: &str,
    map: impl Fn(&AnyRow) -> std::result::Result<T, E>,
) -> Result<(Vec<T>, Option<String>)>
where
    StoreError: From<E>,
{
    let next = match rows
        .get(limit..)
        .filter(|more| !more.is_empty() && limit > 0)
    {
        Some(_) => {
            let last = &rows[limit - 1];
            Some(format!(
                "{}.{}",
                last.try_get::<i64, _>(at)?,
                last.try_get::<String, _>("id")?
            ))
        }
        None => None,
    };
    let mut out = Vec::with_capacity(rows.len().min(limit));
    for r in rows.iter().take(limit) {
        out.push(map(r)?);
    }
    Ok((out, next))
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `url`
    /// (`sqlite://PATH` or `postgres://…`).
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let is_sqlite = url.starts_with("sqlite:");
        let url = if is_sqlite && !url.contains("mode=") {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}mode=rwc")
        } else {
            url.to_owned()
        };
        let mut options = AnyPoolOptions::new().max_connections(if is_sqlite { 4 } else { 10 });
        if is_sqlite {
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL lets readers run while one writer writes; the busy timeout makes a
                    // second writer wait instead of failing.
                    sqlx::query("PRAGMA journal_mode = WAL")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA busy_timeout = 5000")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA foreign_keys = ON")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA synchronous = NORMAL")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(&url).await?;
        MIGRATOR.run(&pool).await?;
        search::prepare(&pool, is_sqlite).await?;
        Ok(Store { pool, is_sqlite })
    }

    /// A transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so the busy timeout applies instead of a lock-upgrade failure.
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(if self.is_sqlite {
            self.pool.begin_with("BEGIN IMMEDIATE").await?
        } else {
            self.pool.begin().await?
        })
    }

    pub fn is_sqlite(&self) -> bool {
        self.is_sqlite
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    // ----- accounts and invites -----

    /// On a fresh database, creates the one-time admin invite and returns it.
    pub async fn ensure_first_invite(&self) -> Result<Option<String>> {
        let mut tx = self.write_tx().await?;
        let users: i64 = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        let admin_invites: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM invites WHERE grants_admin = 1")
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
        if users > 0 || admin_invites > 0 {
            return Ok(None);
        }
        let code = new_invite_code();
        sqlx::query("INSERT INTO invites (code, owner_id, grants_admin, created_at) VALUES ($1, NULL, 1, $2)")
            .bind(&code)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(code))
    }

    /// Creates an account from an invite: user, their own invite codes and a session, all or
    /// nothing. Returns (token, user id).
    pub async fn signup(
        &self,
        code: &str,
        handle: &str,
        name: &str,
        invites_per_user: u32,
    ) -> Result<(String, UserId)> {
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        let invite = sqlx::query(
            "SELECT owner_id, grants_admin FROM invites WHERE code = $1 AND used_by IS NULL AND revoked_at IS NULL",
        )
        .bind(code)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::InvalidInvite)?;
        let inviter: Option<String> = invite.try_get("owner_id")?;
        let is_admin: i64 = invite.try_get("grants_admin")?;
        let id = UserId(new_id());
        let inserted = sqlx::query(
            "INSERT INTO users (id, handle, name, bio, invited_by, is_admin, created_at) VALUES ($1, $2, $3, '', $4, $5, $6)",
        )
        .bind(id.as_str())
        .bind(handle)
        .bind(name)
        .bind(inviter)
        .bind(is_admin)
        .bind(now)
        .execute(&mut *tx)
        .await;
        if let Err(sqlx::Error::Database(e)) = &inserted {
            if e.is_unique_violation() {
                return Err(StoreError::HandleTaken);
            }
        }
        inserted?;
        // The guard on used_by makes a concurrent second use of the same code fail here.
        let used = sqlx::query(
            "UPDATE invites SET used_by = $1, used_at = $2 WHERE code = $3 AND used_by IS NULL AND revoked_at IS NULL",
        )
        .bind(id.as_str())
        .bind(now)
        .bind(code)
        .execute(&mut *tx)
        .await?;
        if used.rows_affected() != 1 {
            return Err(StoreError::InvalidInvite);
        }
        for _ in 0..invites_per_user {
            sqlx::query("INSERT INTO invites (code, owner_id, grants_admin, created_at) VALUES ($1, $2, 0, $3)")
                .bind(new_invite_code())
                .bind(id.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        let token = new_token();
        sqlx::query("INSERT INTO sessions (token_hash, user_id, created_at) VALUES ($1, $2, $3)")
            .bind(hash_token(&token))
            .bind(id.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((token, id))
    }

    pub async fn check_invite(&self, code: &str) -> Result<InviteCheck> {
        let row = sqlx::query(
            "SELECT i.code AS code, u.id AS u_id, u.handle AS u_handle, u.name AS u_name, u.avatar AS u_avatar
             FROM invites i LEFT JOIN users u ON u.id = i.owner_id
             WHERE i.code = $1 AND i.used_by IS NULL AND i.revoked_at IS NULL",
        )
        .bind(code)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::InvalidInvite)?;
        let invited_by = match row.try_get::<Option<String>, _>("u_id")? {
            Some(_) => Some(summary(&row, "u_")?),
            None => None,
        };
        Ok(InviteCheck {
            code: row.try_get("code")?,
            invited_by,
        })
    }

    pub async fn user_for_token(&self, token: &str) -> Result<Option<AuthUser>> {
        let hash = hash_token(token);
        let row = sqlx::query(
            "SELECT u.id AS id, u.handle AS handle, u.name AS name, u.avatar AS avatar, u.is_admin AS is_admin
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND u.banned_at IS NULL",
        )
        .bind(&hash)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(None),
            Some(row) => Ok(Some(AuthUser {
                user: summary(&row, "")?,
                is_admin: row.try_get::<i64, _>("is_admin")? == 1,
                token_hash: hash,
            })),
        }
    }

    /// Whether the session with this token hash is still valid.
    pub async fn session_valid(&self, token_hash: &str) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 AS one FROM sessions WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    pub async fn revoke_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(token_hash)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn revoke_all_sessions(&self, user: &UserId) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(user.as_str())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    pub async fn unused_invites(&self, owner: &UserId, public_url: &str) -> Result<Vec<Invite>> {
        let rows = sqlx::query(
            "SELECT code, created_at FROM invites WHERE owner_id = $1 AND used_by IS NULL AND revoked_at IS NULL ORDER BY created_at, code",
        )
        .bind(owner.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let code: String = r.try_get("code")?;
                Ok(Invite {
                    link: format!("{public_url}/i/{code}"),
                    code,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Revokes one of the owner's unused codes.
    pub async fn revoke_invite(&self, owner: &UserId, code: &str) -> Result<()> {
        let r = sqlx::query(
            "UPDATE invites SET revoked_at = $1 WHERE code = $2 AND owner_id = $3 AND used_by IS NULL AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(code)
        .bind(owner.as_str())
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    /// Mints a new code for `owner` (admins only; checked by the caller).
    pub async fn create_invite(&self, owner: &UserId) -> Result<String> {
        let code = new_invite_code();
        sqlx::query(
            "INSERT INTO invites (code, owner_id, grants_admin, created_at) VALUES ($1, $2, 0, $3)",
        )
        .bind(&code)
        .bind(owner.as_str())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(code)
    }

    // ----- profiles and follows -----

    pub async fn user_by_handle(&self, handle: &str) -> Result<UserSummary> {
        let row = sqlx::query("SELECT id, handle, name, avatar FROM users WHERE handle = $1")
            .bind(handle)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(summary(&row, "")?)
    }

    pub async fn profile(&self, viewer: &UserId, user: &UserId) -> Result<Profile> {
        let row = sqlx::query(
            "SELECT u.id AS id, u.handle AS handle, u.name AS name, u.bio AS bio, u.is_admin AS is_admin,
                    u.created_at AS created_at, u.avatar AS avatar, u.links AS links,
                    i.id AS i_id, i.handle AS i_handle, i.name AS i_name, i.avatar AS i_avatar,
                    (SELECT COUNT(*) FROM follows f WHERE f.followee_id = u.id) AS followers,
                    (SELECT COUNT(*) FROM follows f WHERE f.follower_id = u.id) AS following,
                    (SELECT COUNT(*) FROM follows f WHERE f.follower_id = $1 AND f.followee_id = u.id) AS by_you
             FROM users u LEFT JOIN users i ON i.id = u.invited_by
             WHERE u.id = $2",
        )
        .bind(viewer.as_str())
        .bind(user.as_str())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        let invited_by = match row.try_get::<Option<String>, _>("i_id")? {
            Some(_) => Some(summary(&row, "i_")?),
            None => None,
        };
        Ok(Profile {
            id: UserId(row.try_get("id")?),
            handle: row.try_get("handle")?,
            name: row.try_get("name")?,
            bio: row.try_get("bio")?,
            invited_by,
            is_admin: row.try_get::<i64, _>("is_admin")? == 1,
            followers: row.try_get("followers")?,
            following: row.try_get("following")?,
            followed_by_you: row.try_get::<i64, _>("by_you")? > 0,
            created_at: row.try_get("created_at")?,
            avatar: row.try_get("avatar")?,
            links: serde_json::from_str(&row.try_get::<String, _>("links")?).unwrap_or_default(),
            hosting_now: Vec::new(),
            upcoming: Vec::new(),
        })
    }

    pub async fn update_profile(
        &self,
        user: &UserId,
        name: Option<&str>,
        bio: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        if let Some(name) = name {
            sqlx::query("UPDATE users SET name = $1 WHERE id = $2")
                .bind(name)
                .bind(user.as_str())
                .execute(&mut *tx)
                .await?;
        }
        if let Some(bio) = bio {
            sqlx::query("UPDATE users SET bio = $1 WHERE id = $2")
                .bind(bio)
                .bind(user.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn follow(&self, follower: &UserId, followee: &UserId) -> Result<()> {
        sqlx::query(
            "INSERT INTO follows (follower_id, followee_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(follower.as_str())
        .bind(followee.as_str())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn unfollow(&self, follower: &UserId, followee: &UserId) -> Result<()> {
        sqlx::query("DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2")
            .bind(follower.as_str())
            .bind(followee.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Everyone `user` follows.
    pub async fn followees(&self, user: &UserId) -> Result<Vec<UserId>> {
        let rows = sqlx::query("SELECT followee_id FROM follows WHERE follower_id = $1")
            .bind(user.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(UserId(r.try_get("followee_id")?)))
            .collect()
    }

    /// Whether any of `candidates` follows `user`.
    pub async fn followed_by_any(&self, user: &UserId, candidates: &[UserId]) -> Result<bool> {
        if candidates.is_empty() {
            return Ok(false);
        }
        let rows = sqlx::query("SELECT follower_id FROM follows WHERE followee_id = $1")
            .bind(user.as_str())
            .fetch_all(&self.pool)
            .await?;
        for r in rows {
            let follower: String = r.try_get("follower_id")?;
            if candidates.iter().any(|c| c.0 == follower) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    // ----- rooms -----

    /// Stores a new room with its creator as moderator.
    pub async fn create_room(&self, room: &StoredRoom) -> Result<()> {
        let mut tx = self.write_tx().await?;
        insert_room(&mut tx, room).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Writes one change of a live room, in one transaction. With a `fence` (cluster mode)
    /// the change lands only while the room's `owner_fence` is still that token: a node that
    /// lost the room to another gets [`StoreError::Fenced`] and writes nothing.
    pub async fn apply_room_change(
        &self,
        room: &RoomId,
        fence: Option<i64>,
        change: &Persist,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        if let Some(fence) = fence {
            let held = sqlx::query(
                "UPDATE rooms SET owner_fence = owner_fence WHERE id = $1 AND owner_fence = $2",
            )
            .bind(room.as_str())
            .bind(fence)
            .execute(&mut *tx)
            .await?;
            if held.rows_affected() == 0 {
                return Err(StoreError::Fenced);
            }
        }
        let r = room.as_str();
        match change {
            Persist::Participant { user, role, muted } => {
                sqlx::query(
                    "INSERT INTO room_participants (room_id, user_id, role, joined_at, muted) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (room_id, user_id) DO UPDATE SET role = excluded.role, muted = excluded.muted",
                )
                .bind(r)
                .bind(user.as_str())
                .bind(role.as_str())
                .bind(now_ms())
                .bind(*muted as i64)
                .execute(&mut *tx)
                .await?;
            }
            Persist::Muted { user, muted } => {
                sqlx::query(
                    "UPDATE room_participants SET muted = $1 WHERE room_id = $2 AND user_id = $3",
                )
                .bind(*muted as i64)
                .bind(r)
                .bind(user.as_str())
                .execute(&mut *tx)
                .await?;
            }
            Persist::ParticipantGone { user } => {
                sqlx::query("DELETE FROM room_participants WHERE room_id = $1 AND user_id = $2")
                    .bind(r)
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            Persist::Removed { user, by } => {
                sqlx::query("DELETE FROM room_participants WHERE room_id = $1 AND user_id = $2")
                    .bind(r)
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await?;
                // A closed room they were let into is closed to them again.
                sqlx::query("DELETE FROM room_access WHERE room_id = $1 AND user_id = $2")
                    .bind(r)
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO room_removals (room_id, user_id, removed_by, removed_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(r)
                .bind(user.as_str())
                .bind(by.as_str())
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            }
            Persist::HandsEnabled(enabled) => {
                sqlx::query("UPDATE rooms SET hands_enabled = $1 WHERE id = $2")
                    .bind(*enabled as i64)
                    .bind(r)
                    .execute(&mut *tx)
                    .await?;
            }
            Persist::Hands(queue) => {
                let json = serde_json::to_string(queue).unwrap_or_else(|_| "[]".into());
                sqlx::query("UPDATE rooms SET hands = $1 WHERE id = $2")
                    .bind(json)
                    .bind(r)
                    .execute(&mut *tx)
                    .await?;
            }
            Persist::LinkToken(token) => {
                sqlx::query("UPDATE rooms SET link_token = $1 WHERE id = $2")
                    .bind(token)
                    .bind(r)
                    .execute(&mut *tx)
                    .await?;
            }
            Persist::ReactionsEnabled(_) | Persist::ChatSettings(_) => {
                chat::apply_chat_change(&mut tx, r, change).await?;
            }
            Persist::Recording(on) => {
                sqlx::query(
                    "INSERT INTO room_recording (room_id, recording, clips) VALUES ($1, $2, 0)
                     ON CONFLICT (room_id) DO UPDATE SET recording = excluded.recording",
                )
                .bind(r)
                .bind(*on as i64)
                .execute(&mut *tx)
                .await?;
            }
            Persist::Ended => {
                sqlx::query("UPDATE rooms SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL")
                    .bind(now_ms())
                    .bind(r)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM room_participants WHERE room_id = $1")
                    .bind(r)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Cluster mode: takes the next fencing token of a live room (None if it ended). The
    /// caller holds the room's lease; from now on only writes with this token land.
    pub async fn next_room_fence(&self, room: &RoomId) -> Result<Option<i64>> {
        let row = sqlx::query(
            "UPDATE rooms SET owner_fence = owner_fence + 1 WHERE id = $1 AND ended_at IS NULL RETURNING owner_fence",
        )
        .bind(room.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("owner_fence")?),
            None => None,
        })
    }

    /// Live rooms `user` created (the per-member limit, cluster-wide).
    pub async fn live_rooms_created_by(&self, user: &UserId) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM rooms WHERE created_by = $1 AND ended_at IS NULL",
        )
        .bind(user.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }

    /// Ids of the rooms not ended.
    pub async fn live_room_ids(&self) -> Result<Vec<RoomId>> {
        sqlx::query("SELECT id FROM rooms WHERE ended_at IS NULL ORDER BY created_at")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok(RoomId(r.try_get("id")?)))
            .collect()
    }

    pub async fn grant_access(&self, room: &RoomId, user: &UserId) -> Result<()> {
        sqlx::query(
            "INSERT INTO room_access (room_id, user_id, granted_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(room.as_str())
        .bind(user.as_str())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn has_access(&self, room: &RoomId, user: &UserId) -> Result<bool> {
        let row =
            sqlx::query("SELECT 1 AS one FROM room_access WHERE room_id = $1 AND user_id = $2")
                .bind(room.as_str())
                .bind(user.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.is_some())
    }

    /// Closed rooms `user` was let into.
    pub async fn accessible_rooms(&self, user: &UserId) -> Result<Vec<RoomId>> {
        let rows = sqlx::query("SELECT room_id FROM room_access WHERE user_id = $1")
            .bind(user.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(RoomId(r.try_get("room_id")?)))
            .collect()
    }

    /// A stored room, live or ended: `(room, ended)`. For the room page of ended rooms.
    pub async fn room_record(&self, id: &RoomId) -> Result<Option<(StoredRoom, bool)>> {
        let row = sqlx::query(
            "SELECT id, title, kind, created_by, link_token, hands_enabled, created_at, ended_at
             FROM rooms WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let ended: Option<i64> = row.try_get("ended_at")?;
        Ok(Some((stored_room(&row, "id")?, ended.is_some())))
    }

    /// Rooms not ended, with their people, for the restart.
    pub async fn live_rooms(&self) -> Result<Vec<LoadedRoom>> {
        let mut out = Vec::new();
        for id in self.live_room_ids().await? {
            if let Some(room) = self.load_live_room(&id).await? {
                out.push(room);
            }
        }
        Ok(out)
    }

    /// One room not ended, with its people and hand queue (a restart, or a node taking it
    /// over in cluster mode); None if it ended.
    pub async fn load_live_room(&self, id: &RoomId) -> Result<Option<LoadedRoom>> {
        let row = sqlx::query(
            "SELECT r.id AS rid, r.title AS title, r.kind AS kind, r.created_by AS created_by, r.link_token AS link_token,
                    r.hands_enabled AS hands_enabled, r.created_at AS created_at, r.hands AS hands,
                    u.id AS id, u.handle AS handle, u.name AS name, u.avatar AS avatar
             FROM rooms r JOIN users u ON u.id = r.created_by WHERE r.id = $1 AND r.ended_at IS NULL",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let room = stored_room(&row, "rid")?;
        let people = sqlx::query(
            "SELECT u.id AS id, u.handle AS handle, u.name AS name, u.avatar AS avatar, p.role AS role, p.muted AS muted
             FROM room_participants p JOIN users u ON u.id = p.user_id
             WHERE p.room_id = $1 ORDER BY p.joined_at, u.id",
        )
        .bind(room.id.as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut participants = Vec::new();
        for p in &people {
            let role: String = p.try_get("role")?;
            let muted: i64 = p.try_get("muted")?;
            participants.push((
                summary(p, "")?,
                Role::parse(&role).unwrap_or(Role::Listener),
                muted != 0,
            ));
        }
        let removed = sqlx::query("SELECT user_id FROM room_removals WHERE room_id = $1")
            .bind(room.id.as_str())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok(UserId(r.try_get("user_id")?)))
            .collect::<Result<Vec<_>>>()?;
        let cohosts = self.room_cohosts(&room.id).await?;
        let hands: String = row.try_get("hands")?;
        // A queue that cannot be read is dropped, not fatal: people raise their hand again.
        let hands = serde_json::from_str(&hands).unwrap_or_default();
        let chat = self.room_chat_settings(&room.id).await?;
        let e2ee = self.room_e2ee(&room.id).await?;
        Ok(Some(LoadedRoom {
            e2ee,
            creator: summary(&row, "")?,
            room,
            participants,
            removed,
            cohosts,
            hands,
            chat,
        }))
    }
}

#[cfg(test)]
mod tests;

/// A `rooms` row (its id in column `id_column`) as a [`StoredRoom`].
fn stored_room(row: &AnyRow, id_column: &str) -> Result<StoredRoom> {
    let kind: String = row.try_get("kind")?;
    Ok(StoredRoom {
        id: RoomId(row.try_get(id_column)?),
        title: row.try_get("title")?,
        kind: RoomKind::parse(&kind).unwrap_or(RoomKind::Closed),
        created_by: UserId(row.try_get("created_by")?),
        link_token: row.try_get("link_token")?,
        hands_enabled: row.try_get::<i64, _>("hands_enabled")? == 1,
        created_at: row.try_get("created_at")?,
    })
}

/// Inserts `room` with its creator as moderator, inside `tx` (a plain room, or one started
/// from an event, whose co-hosts the caller adds in the same transaction).
async fn insert_room(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    room: &StoredRoom,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO rooms (id, title, kind, created_by, link_token, hands_enabled, created_at) VALUES ($1, $2, $3, $4, $5, 1, $6)",
    )
    .bind(room.id.as_str())
    .bind(&room.title)
    .bind(room.kind.as_str())
    .bind(room.created_by.as_str())
    .bind(&room.link_token)
    .bind(room.created_at)
    .execute(&mut **tx)
    .await?;
    sqlx::query("INSERT INTO room_participants (room_id, user_id, role, joined_at, muted) VALUES ($1, $2, 'moderator', $3, 0)")
        .bind(room.id.as_str())
        .bind(room.created_by.as_str())
        .bind(room.created_at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
