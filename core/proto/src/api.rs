//! HTTP request and response bodies (`/v1/...`).

use crate::ids::{RoomId, UserId};
use serde::{Deserialize, Serialize};

/// What a room is visible to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    /// In everyone's hallway.
    #[default]
    Open,
    /// In the hallway of people who follow one of its moderators.
    Social,
    /// Only for people with the room's link or an invite from a moderator.
    Closed,
}

impl RoomKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomKind::Open => "open",
            RoomKind::Social => "social",
            RoomKind::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(RoomKind::Open),
            "social" => Some(RoomKind::Social),
            "closed" => Some(RoomKind::Closed),
            _ => None,
        }
    }
}

/// Role of a participant in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Moderator,
    Speaker,
    Listener,
}

impl Role {
    /// Moderators and speakers are on stage; only they are ever heard.
    pub fn on_stage(self) -> bool {
        matches!(self, Role::Moderator | Role::Speaker)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Moderator => "moderator",
            Role::Speaker => "speaker",
            Role::Listener => "listener",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "moderator" => Some(Role::Moderator),
            "speaker" => Some(Role::Speaker),
            "listener" => Some(Role::Listener),
            _ => None,
        }
    }
}

/// The short form of a person, embedded in rooms and lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSummary {
    pub id: UserId,
    pub handle: String,
    pub name: String,
}

/// `POST /v1/signup`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignupRequest {
    pub invite: String,
    pub handle: String,
    pub name: String,
}

/// Answer to `POST /v1/signup`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionResponse {
    pub token: String,
    pub user: Profile,
}

/// A member's profile. `invited_by` is the "nominated by" line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub id: UserId,
    pub handle: String,
    pub name: String,
    pub bio: String,
    pub invited_by: Option<UserSummary>,
    pub is_admin: bool,
    pub followers: i64,
    pub following: i64,
    /// Whether the caller follows this person (false on one's own profile).
    pub followed_by_you: bool,
    pub created_at: i64,
}

/// `PATCH /v1/me`: fields left out stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProfileUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bio: Option<String>,
}

/// One unused invite code of the caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invite {
    pub code: String,
    /// `PUBLIC_URL/i/CODE`, to share.
    pub link: String,
    pub created_at: i64,
}

/// `GET /v1/invites/{code}`: who is inviting, shown on the welcome screen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InviteCheck {
    pub code: String,
    pub invited_by: Option<UserSummary>,
}

/// `POST /v1/rooms`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateRoomRequest {
    pub title: String,
    #[serde(default)]
    pub kind: RoomKind,
}

/// A live room as shown in the hallway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomSummary {
    pub id: RoomId,
    pub title: String,
    pub kind: RoomKind,
    /// Moderators and speakers, moderators first.
    pub speakers: Vec<UserSummary>,
    pub speaker_count: u32,
    pub listener_count: u32,
    /// How many of the speakers the caller follows (hallway order uses it).
    pub followed_speakers: u32,
    /// `PUBLIC_URL/r/ROOM`, with `?t=TOKEN` for closed rooms when the caller may share it.
    pub link: String,
    pub created_at: i64,
}

/// `POST /v1/rooms/{id}/access`: a moderator lets someone into a closed room.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrantAccessRequest {
    pub handle: String,
}

/// `GET /healthz`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub version: String,
}
