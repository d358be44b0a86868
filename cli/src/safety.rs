//! Moderation verbs: `block`, `unblock`, `blocks`, `report`, and `admin ...` for admins.

use crate::account::{authed, printable};
use crate::Remote;
use anyhow::{anyhow, Result};
use clap::Subcommand;
use ruang_proto::{ReportKind, ReportReason, ReportRequest, ReportStatus, RoomId};

/// Prints one line; a closed pipe ends the program quietly.
macro_rules! emit {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        if let Err(e) = writeln!(out, $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

#[derive(Subcommand)]
pub enum ReportTarget {
    /// Report a member.
    Member { handle: String },
    /// Report a room (the server keeps who was on stage and the time into the room).
    Room { room: String },
    /// Report a chat message of a room.
    Message { room: String, message: String },
}

#[derive(Subcommand)]
pub enum AdminAction {
    /// Reports, newest first: id, kind, reason, target, reporter (and count).
    Reports {
        /// open, resolved or dismissed.
        #[arg(long, default_value = "open")]
        status: String,
        /// member, room or message.
        #[arg(long)]
        kind: Option<String>,
    },
    /// Close a report as resolved (or --dismiss).
    Resolve {
        id: String,
        #[arg(long)]
        dismiss: bool,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Ban a member: sessions and unused invites revoked, out of every live room.
    Ban {
        handle: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Lift a ban.
    Unban { handle: String },
    /// Revoke a member's unused invites (with --subtree, of everyone below them too).
    RevokeInvites {
        handle: String,
        #[arg(long)]
        subtree: bool,
    },
    /// The audit log, newest first.
    Audit,
    /// One member as admins see them.
    Member { handle: String },
}

pub async fn block(remote: &Remote, handle: &str, on: bool) -> Result<()> {
    let c = authed(remote)?;
    let handle = handle.trim_start_matches('@');
    if on {
        c.block(handle).await?;
    } else {
        c.unblock(handle).await?;
    }
    Ok(())
}

pub async fn blocks(remote: &Remote) -> Result<()> {
    let c = authed(remote)?;
    let mut cursor = None;
    loop {
        let page = c.blocks(cursor.as_deref(), Some(100)).await?;
        for u in page.users {
            emit!("{}", u.handle);
        }
        match page.next_cursor {
            Some(n) => cursor = Some(n),
            None => return Ok(()),
        }
    }
}

pub async fn report(
    remote: &Remote,
    target: ReportTarget,
    reason: &str,
    details: String,
) -> Result<()> {
    let c = authed(remote)?;
    let reason = ReportReason::parse(reason).ok_or_else(|| {
        anyhow!("--reason is one of spam, harassment, hate, sexual, violence, impersonation, other")
    })?;
    let (kind, handle, room, message) = match target {
        ReportTarget::Member { handle } => (
            ReportKind::Member,
            Some(handle.trim_start_matches('@').to_owned()),
            None,
            None,
        ),
        ReportTarget::Room { room } => (ReportKind::Room, None, Some(RoomId(room)), None),
        ReportTarget::Message { room, message } => {
            (ReportKind::Message, None, Some(RoomId(room)), Some(message))
        }
    };
    let receipt = c
        .report(&ReportRequest {
            kind,
            handle,
            room,
            message,
            reason,
            details,
        })
        .await?;
    emit!("{}", receipt.id);
    Ok(())
}

pub async fn admin(remote: &Remote, action: AdminAction) -> Result<()> {
    let c = authed(remote)?;
    match action {
        AdminAction::Reports { status, kind } => {
            let status = ReportStatus::parse(&status)
                .ok_or_else(|| anyhow!("--status is open, resolved or dismissed"))?;
            let kind = kind
                .map(|k| {
                    ReportKind::parse(&k)
                        .ok_or_else(|| anyhow!("--kind is member, room or message"))
                })
                .transpose()?;
            let mut cursor = None;
            loop {
                let page = c.admin_reports(status, kind, cursor.as_deref()).await?;
                for r in page.reports {
                    let target = match r.kind {
                        ReportKind::Member => r
                            .target_user
                            .map(|u| format!("@{}", u.handle))
                            .unwrap_or_default(),
                        ReportKind::Room => r.target_room.map(|r| r.0).unwrap_or_default(),
                        ReportKind::Message => format!(
                            "{}/{}",
                            r.target_room.map(|r| r.0).unwrap_or_default(),
                            r.target_message.unwrap_or_default()
                        ),
                    };
                    emit!(
                        "{}\t{}\t{}\t{}\t@{}\t{}\t{}",
                        r.id,
                        r.kind.as_str(),
                        r.reason.as_str(),
                        printable(&target, false),
                        r.reporter.handle,
                        r.count,
                        printable(&r.details, false)
                    );
                }
                match page.next_cursor {
                    Some(n) => cursor = Some(n),
                    None => break,
                }
            }
        }
        AdminAction::Resolve { id, dismiss, note } => {
            let status = if dismiss {
                ReportStatus::Dismissed
            } else {
                ReportStatus::Resolved
            };
            c.admin_resolve(&id, &ruang_proto::ResolveReportRequest { status, note })
                .await?;
        }
        AdminAction::Ban { handle, reason } => {
            let o = c.admin_ban(handle.trim_start_matches('@'), &reason).await?;
            emit!(
                "banned: {} sessions revoked, {} invites revoked, out of {} rooms ({} ended)",
                o.sessions_revoked,
                o.invites_revoked,
                o.rooms_left,
                o.rooms_ended
            );
        }
        AdminAction::Unban { handle } => c.admin_unban(handle.trim_start_matches('@')).await?,
        AdminAction::RevokeInvites { handle, subtree } => {
            let o = c
                .admin_revoke_invites(handle.trim_start_matches('@'), subtree)
                .await?;
            emit!("{}", o.revoked);
        }
        AdminAction::Audit => {
            let mut cursor = None;
            loop {
                let page = c.admin_audit(cursor.as_deref()).await?;
                for e in page.entries {
                    emit!(
                        "{}\t@{}\t{}\t{}\t{}",
                        e.created_at,
                        e.actor.handle,
                        e.action,
                        printable(&e.target, false),
                        printable(&e.details, false)
                    );
                }
                match page.next_cursor {
                    Some(n) => cursor = Some(n),
                    None => break,
                }
            }
        }
        AdminAction::Member { handle } => {
            let m = c.admin_member(handle.trim_start_matches('@')).await?;
            emit!(
                "@{}\t{}",
                m.profile.handle,
                printable(&m.profile.name, false)
            );
            match m.banned_at {
                Some(at) => emit!(
                    "banned at {at}: {}",
                    printable(m.ban_reason.as_deref().unwrap_or(""), false)
                ),
                None => emit!("not banned"),
            }
            emit!("unused invites: {}", m.unused_invites);
            emit!("reports about them: {}", m.reports.len());
        }
    }
    Ok(())
}
