//! Blocks, reports, bans, the admin audit log and admin console sessions.

use super::{hash_token, new_id, new_token, now_ms, page_of, summary, Result, Store, StoreError};
use ruang_proto::{
    AuditEntry, Report, ReportEvidence, ReportKind, ReportReason, ReportStatus, RoomId, UserId,
    UserSummary,
};
use sqlx::any::AnyRow;
use sqlx::Row;

/// A report to file.
#[derive(Debug, Clone)]
pub struct NewReport {
    pub reporter: UserId,
    pub kind: ReportKind,
    pub target_key: String,
    pub target_user: Option<UserId>,
    pub target_room: Option<RoomId>,
    pub target_message: Option<String>,
    pub reason: ReportReason,
    pub details: String,
    pub evidence: ReportEvidence,
}

/// What filing a report did.
#[derive(Debug, Clone, PartialEq)]
pub enum Filed {
    New(String),
    /// Joined the reporter's open report on the same target.
    Coalesced(String),
    /// The reporter filed too many new reports in the last hour.
    Limited,
}

/// Report columns with the reporter (`r_`), the target member (`t_`) and who resolved it (`s_`).
const REPORT_SELECT: &str = "SELECT p.id AS id, p.kind AS kind, p.target_room AS target_room,
        p.target_message AS target_message, p.reason AS reason, p.details AS details,
        p.evidence AS evidence, p.status AS status, p.count AS count, p.created_at AS created_at,
        p.updated_at AS updated_at, p.resolution_note AS resolution_note,
        r.id AS r_id, r.handle AS r_handle, r.name AS r_name, r.avatar AS r_avatar,
        t.id AS t_id, t.handle AS t_handle, t.name AS t_name, t.avatar AS t_avatar,
        s.id AS s_id, s.handle AS s_handle, s.name AS s_name, s.avatar AS s_avatar
    FROM reports p JOIN users r ON r.id = p.reporter_id
    LEFT JOIN users t ON t.id = p.target_user
    LEFT JOIN users s ON s.id = p.resolved_by";

fn optional_summary(row: &AnyRow, prefix: &str) -> Result<Option<UserSummary>> {
    Ok(
        match row.try_get::<Option<String>, _>(format!("{prefix}id").as_str())? {
            Some(_) => Some(summary(row, prefix)?),
            None => None,
        },
    )
}

fn report_row(row: &AnyRow) -> Result<Report> {
    let kind: String = row.try_get("kind")?;
    let reason: String = row.try_get("reason")?;
    let status: String = row.try_get("status")?;
    let evidence: String = row.try_get("evidence")?;
    Ok(Report {
        id: row.try_get("id")?,
        kind: ReportKind::parse(&kind).unwrap_or(ReportKind::Member),
        reporter: summary(row, "r_")?,
        target_user: optional_summary(row, "t_")?,
        target_room: row.try_get::<Option<String>, _>("target_room")?.map(RoomId),
        target_message: row.try_get("target_message")?,
        reason: ReportReason::parse(&reason).unwrap_or(ReportReason::Other),
        details: row.try_get("details")?,
        evidence: serde_json::from_str(&evidence).unwrap_or_default(),
        status: ReportStatus::parse(&status).unwrap_or(ReportStatus::Open),
        count: row.try_get("count")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        resolved_by: optional_summary(row, "s_")?,
        resolution_note: row.try_get("resolution_note")?,
    })
}

/// `MILLIS.ID` of a row (the cursor of newest-first pages).
impl Store {
    // ----- blocks -----

    /// `blocker` blocks `blocked`: follows either way are removed in the same transaction.
    pub async fn block(&self, blocker: &UserId, blocked: &UserId) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(blocker.as_str())
        .bind(blocked.as_str())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM follows WHERE (follower_id = $1 AND followee_id = $2) OR (follower_id = $2 AND followee_id = $1)",
        )
        .bind(blocker.as_str())
        .bind(blocked.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn unblock(&self, blocker: &UserId, blocked: &UserId) -> Result<()> {
        sqlx::query("DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2")
            .bind(blocker.as_str())
            .bind(blocked.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether `blocker` blocked `blocked`.
    pub async fn is_blocked(&self, blocker: &UserId, blocked: &UserId) -> Result<bool> {
        let row =
            sqlx::query("SELECT 1 AS one FROM blocks WHERE blocker_id = $1 AND blocked_id = $2")
                .bind(blocker.as_str())
                .bind(blocked.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.is_some())
    }

    /// The people `user` blocked.
    pub async fn blocked_by(&self, user: &UserId) -> Result<Vec<UserId>> {
        sqlx::query("SELECT blocked_id FROM blocks WHERE blocker_id = $1")
            .bind(user.as_str())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok(UserId(r.try_get("blocked_id")?)))
            .collect()
    }

    /// The people who blocked `user`.
    pub async fn blockers_of(&self, user: &UserId) -> Result<Vec<UserId>> {
        sqlx::query("SELECT blocker_id FROM blocks WHERE blocked_id = $1")
            .bind(user.as_str())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok(UserId(r.try_get("blocker_id")?)))
            .collect()
    }

    /// One page of the people `blocker` blocked, newest first.
    pub async fn block_page(
        &self,
        blocker: &UserId,
        cursor: Option<(i64, String)>,
        limit: usize,
    ) -> Result<(Vec<UserSummary>, Option<String>)> {
        let (t, id) = cursor.unwrap_or((i64::MAX, String::new()));
        let rows = sqlx::query(
            "SELECT u.id AS id, u.handle AS handle, u.name AS name, u.avatar AS avatar, b.created_at AS at
             FROM blocks b JOIN users u ON u.id = b.blocked_id
             WHERE b.blocker_id = $1 AND (b.created_at < $2 OR (b.created_at = $2 AND u.id > $3))
             ORDER BY b.created_at DESC, u.id LIMIT $4",
        )
        .bind(blocker.as_str())
        .bind(t)
        .bind(id)
        .bind(limit as i64 + 1)
        .fetch_all(&self.pool)
        .await?;
        page_of(&rows, limit, "at", |r| summary(r, ""))
    }

    // ----- reports -----

    /// Files a report, or adds to the reporter's open one on the same target. At most
    /// `per_hour` new reports per reporter per hour.
    pub async fn file_report(&self, r: &NewReport, per_hour: i64) -> Result<Filed> {
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        let open = sqlx::query(
            "SELECT id FROM reports WHERE reporter_id = $1 AND target_key = $2 AND status = 'open'",
        )
        .bind(r.reporter.as_str())
        .bind(&r.target_key)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = open {
            let id: String = row.try_get("id")?;
            // The newest reason and details win; the first evidence is kept.
            sqlx::query(
                "UPDATE reports SET count = count + 1, updated_at = $1, reason = $2,
                 details = CASE WHEN $3 = '' THEN details ELSE $3 END WHERE id = $4",
            )
            .bind(now)
            .bind(r.reason.as_str())
            .bind(&r.details)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(Filed::Coalesced(id));
        }
        let recent: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM reports WHERE reporter_id = $1 AND created_at > $2",
        )
        .bind(r.reporter.as_str())
        .bind(now - 3_600_000)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        if recent >= per_hour {
            return Ok(Filed::Limited);
        }
        let id = new_id();
        sqlx::query(
            "INSERT INTO reports (id, reporter_id, kind, target_key, target_user, target_room, target_message,
                                  reason, details, evidence, status, count, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'open', 1, $11, $11)",
        )
        .bind(&id)
        .bind(r.reporter.as_str())
        .bind(r.kind.as_str())
        .bind(&r.target_key)
        .bind(r.target_user.as_ref().map(|u| u.as_str().to_owned()))
        .bind(r.target_room.as_ref().map(|u| u.as_str().to_owned()))
        .bind(r.target_message.clone())
        .bind(r.reason.as_str())
        .bind(&r.details)
        .bind(serde_json::to_string(&r.evidence).unwrap_or_else(|_| "{}".into()))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Filed::New(id))
    }

    /// Reports with `status` (and `kind` if given), newest first.
    pub async fn report_page(
        &self,
        status: ReportStatus,
        kind: Option<ReportKind>,
        cursor: Option<(i64, String)>,
        limit: usize,
    ) -> Result<(Vec<Report>, Option<String>)> {
        let (t, id) = cursor.unwrap_or((i64::MAX, String::new()));
        let sql = format!(
            "{REPORT_SELECT} WHERE p.status = $1 AND ($2 = '' OR p.kind = $2)
             AND (p.created_at < $3 OR (p.created_at = $3 AND p.id > $4))
             ORDER BY p.created_at DESC, p.id LIMIT $5"
        );
        let rows = sqlx::query(&sql)
            .bind(status.as_str())
            .bind(kind.map(|k| k.as_str()).unwrap_or(""))
            .bind(t)
            .bind(id)
            .bind(limit as i64 + 1)
            .fetch_all(&self.pool)
            .await?;
        page_of(&rows, limit, "created_at", report_row)
    }

    pub async fn report(&self, id: &str) -> Result<Report> {
        let row = sqlx::query(&format!("{REPORT_SELECT} WHERE p.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        report_row(&row)
    }

    /// Reports about `user` (as the member reported or a message's author), newest first.
    pub async fn reports_about(&self, user: &UserId, limit: usize) -> Result<Vec<Report>> {
        sqlx::query(&format!(
            "{REPORT_SELECT} WHERE p.target_user = $1 ORDER BY p.created_at DESC, p.id LIMIT $2"
        ))
        .bind(user.as_str())
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(report_row)
        .collect()
    }

    /// Closes an open report; NotFound if there is no open report with this id.
    pub async fn resolve_report(
        &self,
        id: &str,
        status: ReportStatus,
        by: &UserId,
        note: &str,
    ) -> Result<()> {
        let r = sqlx::query(
            "UPDATE reports SET status = $1, resolved_by = $2, resolved_at = $3, resolution_note = $4, updated_at = $3
             WHERE id = $5 AND status = 'open'",
        )
        .bind(status.as_str())
        .bind(by.as_str())
        .bind(now_ms())
        .bind(note)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    // ----- bans and invites -----

    /// Bans `user`: marks them, revokes every session (remembering which, for an unban)
    /// and every unused invite, in one transaction. Returns (sessions, invites) revoked.
    pub async fn ban(&self, user: &UserId, reason: &str) -> Result<(u64, u64)> {
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        let marked = sqlx::query("UPDATE users SET banned_at = $1, ban_reason = $2 WHERE id = $3")
            .bind(now)
            .bind(reason)
            .bind(user.as_str())
            .execute(&mut *tx)
            .await?;
        if marked.rows_affected() != 1 {
            return Err(StoreError::NotFound);
        }
        let sessions = sqlx::query(
            "UPDATE sessions SET revoked_at = $1, ban_revoked = 1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let invites = sqlx::query(
            "UPDATE invites SET revoked_at = $1 WHERE owner_id = $2 AND used_by IS NULL AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok((sessions, invites))
    }

    /// Lifts a ban: the sessions the ban revoked work again (revoked invites stay revoked).
    /// False if they were not banned.
    pub async fn unban(&self, user: &UserId) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        let r = sqlx::query(
            "UPDATE users SET banned_at = NULL, ban_reason = NULL WHERE id = $1 AND banned_at IS NOT NULL",
        )
        .bind(user.as_str())
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE sessions SET revoked_at = NULL, ban_revoked = 0 WHERE user_id = $1 AND ban_revoked = 1",
        )
        .bind(user.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// (banned_at, reason) of a member.
    pub async fn ban_state(&self, user: &UserId) -> Result<(Option<i64>, Option<String>)> {
        let row = sqlx::query("SELECT banned_at, ban_reason FROM users WHERE id = $1")
            .bind(user.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok((row.try_get("banned_at")?, row.try_get("ban_reason")?))
    }

    /// Revokes the unused invites of `user`, or (`subtree`) of `user` and everyone below
    /// them in the invite tree. Returns how many.
    pub async fn revoke_invites_of(&self, user: &UserId, subtree: bool) -> Result<u64> {
        let sql = if subtree {
            "WITH RECURSIVE tree(id) AS (
                 SELECT id FROM users WHERE id = $2
                 UNION SELECT u.id FROM users u JOIN tree t ON u.invited_by = t.id
             )
             UPDATE invites SET revoked_at = $1
             WHERE owner_id IN (SELECT id FROM tree) AND used_by IS NULL AND revoked_at IS NULL"
        } else {
            "UPDATE invites SET revoked_at = $1 WHERE owner_id = $2 AND used_by IS NULL AND revoked_at IS NULL"
        };
        let r = sqlx::query(sql)
            .bind(now_ms())
            .bind(user.as_str())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    pub async fn unused_invite_count(&self, user: &UserId) -> Result<i64> {
        Ok(sqlx::query(
            "SELECT COUNT(*) AS n FROM invites WHERE owner_id = $1 AND used_by IS NULL AND revoked_at IS NULL",
        )
        .bind(user.as_str())
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?)
    }

    // ----- audit log -----

    pub async fn audit(
        &self,
        actor: &UserId,
        action: &str,
        target: &str,
        details: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO admin_audit (id, actor_id, action, target, details, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(new_id())
        .bind(actor.as_str())
        .bind(action)
        .bind(target)
        .bind(details)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The audit log, newest first.
    pub async fn audit_page(
        &self,
        cursor: Option<(i64, String)>,
        limit: usize,
    ) -> Result<(Vec<AuditEntry>, Option<String>)> {
        let (t, id) = cursor.unwrap_or((i64::MAX, String::new()));
        let rows = sqlx::query(
            "SELECT a.id AS id, a.action AS action, a.target AS target, a.details AS details, a.created_at AS created_at,
                    u.id AS u_id, u.handle AS u_handle, u.name AS u_name, u.avatar AS u_avatar
             FROM admin_audit a JOIN users u ON u.id = a.actor_id
             WHERE a.created_at < $1 OR (a.created_at = $1 AND a.id > $2)
             ORDER BY a.created_at DESC, a.id LIMIT $3",
        )
        .bind(t)
        .bind(id)
        .bind(limit as i64 + 1)
        .fetch_all(&self.pool)
        .await?;
        page_of(&rows, limit, "created_at", |r| {
            Ok::<_, sqlx::Error>(AuditEntry {
                id: r.try_get("id")?,
                actor: summary(r, "u_")?,
                action: r.try_get("action")?,
                target: r.try_get("target")?,
                details: r.try_get("details")?,
                created_at: r.try_get("created_at")?,
            })
        })
    }

    // ----- admin console sessions -----

    /// Opens a console session for `user`: returns (cookie value, CSRF token).
    pub async fn create_admin_session(
        &self,
        user: &UserId,
        ttl_ms: i64,
    ) -> Result<(String, String)> {
        let cookie = new_token();
        let csrf = new_token();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO admin_sessions (cookie_hash, user_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(hash_token(&cookie))
        .bind(user.as_str())
        .bind(&csrf)
        .bind(now)
        .bind(now + ttl_ms)
        .execute(&self.pool)
        .await?;
        Ok((cookie, csrf))
    }

    /// The admin behind a console cookie and the session's CSRF token: None when the
    /// cookie is unknown or expired, or its member is no longer an unbanned admin.
    pub async fn admin_session(&self, cookie: &str) -> Result<Option<(UserSummary, String)>> {
        let row = sqlx::query(
            "SELECT u.id AS id, u.handle AS handle, u.name AS name, u.avatar AS avatar, a.csrf AS csrf
             FROM admin_sessions a JOIN users u ON u.id = a.user_id
             WHERE a.cookie_hash = $1 AND a.expires_at > $2 AND u.is_admin = 1 AND u.banned_at IS NULL",
        )
        .bind(hash_token(cookie))
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(Some((summary(&r, "")?, r.try_get("csrf")?))),
            None => Ok(None),
        }
    }

    pub async fn end_admin_session(&self, cookie: &str) -> Result<()> {
        sqlx::query("DELETE FROM admin_sessions WHERE cookie_hash = $1")
            .bind(hash_token(cookie))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends every console session of `user` (a ban).
    pub async fn end_admin_sessions_of(&self, user: &UserId) -> Result<()> {
        sqlx::query("DELETE FROM admin_sessions WHERE user_id = $1")
            .bind(user.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
