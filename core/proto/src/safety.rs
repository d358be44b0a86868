//! Moderation and safety: blocks, reports, bans and the admin API (`docs/protocol.md` §12).

use crate::api::{Profile, UserSummary};
use crate::ids::{RoomId, UserId};
use serde::{Deserialize, Serialize};

/// What a report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    Member,
    Room,
    Message,
}

impl ReportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Member => "member",
            ReportKind::Room => "room",
            ReportKind::Message => "message",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "member" => Some(ReportKind::Member),
            "room" => Some(ReportKind::Room),
            "message" => Some(ReportKind::Message),
            _ => None,
        }
    }
}

/// Why something is reported (a fixed list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportReason {
    Spam,
    Harassment,
    Hate,
    Sexual,
    Violence,
    Impersonation,
    Other,
}

impl ReportReason {
    pub const ALL: [ReportReason; 7] = [
        ReportReason::Spam,
        ReportReason::Harassment,
        ReportReason::Hate,
        ReportReason::Sexual,
        ReportReason::Violence,
        ReportReason::Impersonation,
        ReportReason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportReason::Spam => "spam",
            ReportReason::Harassment => "harassment",
            ReportReason::Hate => "hate",
            ReportReason::Sexual => "sexual",
            ReportReason::Violence => "violence",
            ReportReason::Impersonation => "impersonation",
            ReportReason::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Longest `details` of a report, in characters.
pub const MAX_REPORT_DETAILS: usize = 1000;

/// `POST /v1/reports`. `handle` for a member, `room` for a room, `room` + `message` for a
/// message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRequest {
    pub kind: ReportKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub reason: ReportReason,
    #[serde(default)]
    pub details: String,
}

/// Answer to `POST /v1/reports`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportReceipt {
    pub id: String,
    /// True when it joined an open report of the same reporter about the same target.
    pub coalesced: bool,
}

/// Someone on a room's stage when it was reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageEvidence {
    pub id: UserId,
    pub handle: String,
    pub role: crate::api::Role,
}

/// What the server captured when the report was made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportEvidence {
    /// Room and message reports: the room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_title: Option<String>,
    /// Room reports: its moderators (hosts) at report time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<UserSummary>,
    /// Room reports: everyone on stage at report time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stage: Vec<StageEvidence>,
    /// Room reports: milliseconds since the room started (points into a recording).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_time_ms: Option<i64>,
    /// Whether the room was live (on this cluster) when reported.
    #[serde(default)]
    pub live: bool,
    /// Member reports: the member's name and bio as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bio: Option<String>,
    /// Message reports: the message text and its author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_author: Option<UserSummary>,
}

/// Whether a report is still to be looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    Open,
    Resolved,
    Dismissed,
}

impl ReportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportStatus::Open => "open",
            ReportStatus::Resolved => "resolved",
            ReportStatus::Dismissed => "dismissed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(ReportStatus::Open),
            "resolved" => Some(ReportStatus::Resolved),
            "dismissed" => Some(ReportStatus::Dismissed),
            _ => None,
        }
    }
}

/// A report as admins see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub id: String,
    pub kind: ReportKind,
    pub reporter: UserSummary,
    /// The member reported (member reports) or the message's author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_user: Option<UserSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_room: Option<RoomId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_message: Option<String>,
    pub reason: ReportReason,
    pub details: String,
    pub evidence: ReportEvidence,
    pub status: ReportStatus,
    /// How many times this reporter filed it (duplicates coalesce).
    pub count: i64,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<UserSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution_note: Option<String>,
}

/// `GET /v1/admin/reports`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportPage {
    pub reports: Vec<Report>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `POST /v1/admin/reports/{id}/resolve`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolveReportRequest {
    /// `resolved` or `dismissed`.
    pub status: ReportStatus,
    #[serde(default)]
    pub note: String,
}

/// `POST /v1/admin/members/{handle}/ban`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BanRequest {
    #[serde(default)]
    pub reason: String,
}

/// What a ban did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BanOutcome {
    pub sessions_revoked: u64,
    pub invites_revoked: u64,
    /// Live rooms (on this cluster) they were taken out of.
    pub rooms_left: u32,
    /// Of those, rooms that ended because they were the last moderator.
    pub rooms_ended: u32,
}

/// `POST /v1/admin/members/{handle}/revoke-invites`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RevokeInvitesRequest {
    /// Also every member they invited, and whom those invited, and so on.
    #[serde(default)]
    pub subtree: bool,
}

/// Answer to revoke-invites.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RevokeInvitesOutcome {
    pub revoked: u64,
}

/// `GET /v1/admin/members/{handle}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminMember {
    pub profile: Profile,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banned_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ban_reason: Option<String>,
    pub unused_invites: i64,
    /// Reports about this member (any status), newest first.
    pub reports: Vec<Report>,
}

/// One entry of the admin audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: String,
    pub actor: UserSummary,
    /// `ban`, `unban`, `revoke_invites`, `resolve_report`, `dismiss_report`, `console_sign_in`.
    pub action: String,
    /// What it was done to (a handle or a report id).
    pub target: String,
    /// Free text (a reason, a note, counts).
    pub details: String,
    pub created_at: i64,
}

/// `GET /v1/admin/audit`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip() {
        for r in ReportReason::ALL {
            assert_eq!(ReportReason::parse(r.as_str()), Some(r));
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.as_str()));
        }
        assert_eq!(ReportReason::parse("rude"), None);
        let req: ReportRequest =
            serde_json::from_str(r#"{"kind":"member","handle":"bob","reason":"spam"}"#).unwrap();
        assert_eq!(req.kind, ReportKind::Member);
        assert_eq!(req.details, "");
        assert!(serde_json::from_str::<ReportRequest>(
            r#"{"kind":"member","handle":"bob","reason":"rude"}"#
        )
        .is_err());
    }
}
