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
    /// Content hash of the member's photo, absent when they have none. The image URLs are
    /// [`avatar_path`]`(hash, size)` on the server (immutable: a new photo has a new hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
}

/// Edge of the small square photo used on stage tiles and hallway cards, in pixels.
pub const AVATAR_TILE: u32 = 128;
/// Edge of the large square photo on profiles and link previews, in pixels.
pub const AVATAR_PROFILE: u32 = 512;

/// Path (relative to the server's base URL) of a photo: `/media/avatars/HASH-SIZE.jpg`,
/// SIZE being [`AVATAR_TILE`] or [`AVATAR_PROFILE`].
pub fn avatar_path(hash: &str, size: u32) -> String {
    format!("/media/avatars/{hash}-{size}.jpg")
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
    /// Photo content hash (see [`UserSummary::avatar`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    /// Up to three `http(s)` links the member chose to show.
    #[serde(default)]
    pub links: Vec<String>,
    /// Live rooms this person hosts now (moderator), as the caller may see them.
    #[serde(default)]
    pub hosting_now: Vec<RoomSummary>,
    /// Their scheduled rooms still to come (host or co-host), soonest first.
    #[serde(default)]
    pub upcoming: Vec<Event>,
}

/// `PATCH /v1/me`: fields left out stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProfileUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bio: Option<String>,
    /// Replaces all links (at most three `http://` or `https://` URLs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<Vec<String>>,
}

/// One page of a member list (`GET /v1/users/{handle}/followers`, `/following`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserPage {
    pub users: Vec<UserSummary>,
    /// Pass as `?cursor=` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A scheduled room ("event").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub title: String,
    pub description: String,
    /// Kind of the room it becomes.
    pub kind: RoomKind,
    pub host: UserSummary,
    pub cohosts: Vec<UserSummary>,
    /// Start, Unix milliseconds.
    pub starts_at: i64,
    /// The start as RFC 3339 in the event's own time zone (`2026-12-08T19:00:00+07:00`).
    pub starts_at_local: String,
    /// IANA time zone name the host scheduled in (`Asia/Jakarta`, `UTC`).
    pub time_zone: String,
    /// `scheduled`, `live` (the room was started and is live), `ended` or `cancelled`.
    pub status: EventStatus,
    /// The room started from it, once started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<RoomId>,
    /// Whether the caller asked to be notified.
    pub notify_me: bool,
    /// How many members asked to be notified.
    pub interested: u32,
    /// `PUBLIC_URL/e/ID`, to share (`PUBLIC_URL/e/ID.ics` is the calendar file).
    pub link: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    Scheduled,
    Live,
    Ended,
    Cancelled,
}

/// `POST /v1/events`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateEventRequest {
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// RFC 3339 with an offset (`2026-12-08T12:00:00Z`), or a local date-time without one
    /// (`2026-12-08T19:00`) read in `time_zone`.
    pub starts_at: String,
    /// IANA time zone name; `UTC` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub kind: RoomKind,
    /// Handles of up to 5 co-hosts (moderators of the room once started).
    #[serde(default)]
    pub cohosts: Vec<String>,
}

/// `PATCH /v1/events/{id}`: fields left out stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateEventRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohosts: Option<Vec<String>>,
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
    /// Record the room from the start (everyone in it is told; see `docs/protocol.md`).
    #[serde(default)]
    pub record: bool,
    /// Let the host clip the last 30 s even when the room is not recorded (everyone is told).
    #[serde(default)]
    pub clips: bool,
    /// End-to-end encrypted (closed rooms only; never recorded or clipped): the members'
    /// devices agree on the media keys with MLS, relayed by the server (`docs/protocol.md` §15).
    #[serde(default)]
    pub e2ee: bool,
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
    /// The room is being recorded (a replay will exist after it ends).
    #[serde(default)]
    pub recording: bool,
    /// Clips of the last 30 s may be taken (the server keeps that much audio in memory).
    #[serde(default)]
    pub clips: bool,
    /// End-to-end encrypted: the server forwards audio it cannot decrypt.
    #[serde(default)]
    pub e2ee: bool,
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

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// Someone followed you (`actor`).
    FollowedYou,
    /// Someone you follow (`actor`) started a room (`room_id`).
    RoomStarted,
    /// Someone you follow (`actor`) scheduled a room (`event_id`).
    EventScheduled,
    /// An event you asked to be notified about starts within minutes.
    EventStarting,
    /// An event you asked about started: its room (`room_id`) is live.
    EventStarted,
    /// An event you asked about changed (title, time or co-hosts).
    EventChanged,
    /// An event you asked about was cancelled.
    EventCancelled,
    /// Someone you invited (`actor`) joined Ruang.
    InviteeJoined,
    /// A moderator (`actor`) invited you to speak in a room (`room_id`) you had left.
    InvitedToSpeak,
}

impl NotificationKind {
    pub const ALL: [NotificationKind; 9] = [
        NotificationKind::FollowedYou,
        NotificationKind::RoomStarted,
        NotificationKind::EventScheduled,
        NotificationKind::EventStarting,
        NotificationKind::EventStarted,
        NotificationKind::EventChanged,
        NotificationKind::EventCancelled,
        NotificationKind::InviteeJoined,
        NotificationKind::InvitedToSpeak,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::FollowedYou => "followed_you",
            NotificationKind::RoomStarted => "room_started",
            NotificationKind::EventScheduled => "event_scheduled",
            NotificationKind::EventStarting => "event_starting",
            NotificationKind::EventStarted => "event_started",
            NotificationKind::EventChanged => "event_changed",
            NotificationKind::EventCancelled => "event_cancelled",
            NotificationKind::InviteeJoined => "invitee_joined",
            NotificationKind::InvitedToSpeak => "invited_to_speak",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One entry of `GET /v1/notifications`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub id: String,
    pub kind: NotificationKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<UserSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<RoomId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// One line to show, in English.
    pub text: String,
    /// Where a tap leads: the room (`PUBLIC_URL/r/ID`), the event (`/e/ID`) or the actor's
    /// profile (`ruang://u/HANDLE`).
    pub link: String,
    pub created_at: i64,
    /// At or before the read marker.
    pub read: bool,
}

/// `GET /v1/notifications`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationPage {
    /// Newest first.
    pub notifications: Vec<Notification>,
    /// How many are newer than the read marker (all pages).
    pub unread: u32,
    /// The read marker: everything created at or before it is read.
    pub read_up_to: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `POST /v1/notifications/read`: moves the read marker forward (never back).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MarkReadRequest {
    /// `created_at` of the newest notification read.
    pub up_to: i64,
}

/// `GET`/`PUT /v1/notifications/settings`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NotificationSettings {
    /// Kinds the member does not want; none of these are created for them.
    #[serde(default)]
    pub muted_kinds: Vec<NotificationKind>,
    /// Pushes are held back between these local times (the feed still gets everything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
    /// IANA zone of the quiet hours; `UTC` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// Local wall-clock times `HH:MM`; `start` after `end` spans midnight (`22:00`–`07:00`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QuietHours {
    pub start: String,
    pub end: String,
}

/// `GET /v1/search?q=…`: each list best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResults {
    /// By handle and name; people the caller follows first.
    pub people: Vec<UserSummary>,
    /// Live rooms the caller may see, by title; rooms with people they follow first.
    pub rooms: Vec<RoomSummary>,
    /// Events by title and description, not cancelled or ended; live first, then those of
    /// hosts the caller follows.
    pub events: Vec<Event>,
}

/// `GET /v1/push/key`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushKey {
    /// The server's VAPID public key: an uncompressed P-256 point, base64url without
    /// padding (a browser's `applicationServerKey`).
    pub vapid_public_key: String,
}

/// `POST /v1/push/subscriptions`: the shape of a browser's `PushSubscription.toJSON()`;
/// UnifiedPush apps send their distributor's endpoint and their own keys the same way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushSubscriptionRequest {
    pub endpoint: String,
    pub keys: PushKeys,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushKeys {
    /// The receiver's P-256 public key, uncompressed, base64url.
    pub p256dh: String,
    /// The 16-byte authentication secret, base64url.
    pub auth: String,
}

/// One stretch of one speaker's voice in a replay (milliseconds from the replay's start).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplaySpan {
    pub user: UserId,
    pub name: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// A chapter of a replay: where a speaker starts talking (also in the file's OpusTags as
/// `CHAPTERnnn` / `CHAPTERnnnNAME`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayChapter {
    pub start_ms: u64,
    pub name: String,
}

/// `GET /v1/rooms/{id}/replay`: a recorded room's replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replay {
    /// The room's id (one replay per room).
    pub id: RoomId,
    pub title: String,
    pub kind: RoomKind,
    pub host: UserSummary,
    /// When the room was created, and when the replay was made (Unix ms).
    pub room_created_at: i64,
    pub created_at: i64,
    pub duration_ms: u64,
    /// Size of the Ogg Opus file in bytes.
    pub bytes: u64,
    /// The Ogg Opus file (`PUBLIC_URL/media/replays/ID.ogg`, with `?t=TOKEN` for closed rooms).
    pub url: String,
    /// The `/r/ROOM` page that plays it.
    pub link: String,
    /// Who spoke when, in time order.
    pub speakers: Vec<ReplaySpan>,
    pub chapters: Vec<ReplayChapter>,
    /// The room's chat as it was recorded (JSON messages; empty when chat was off).
    #[serde(default)]
    pub chat: Vec<serde_json::Value>,
}

/// `POST /v1/rooms/{id}/clips`: a clip of the last 30 s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clip {
    pub id: String,
    /// `PUBLIC_URL/c/CLIP`, a page that plays it.
    pub url: String,
    /// The Ogg Opus file.
    pub file: String,
    pub duration_ms: u64,
}

/// `POST /v1/rooms/{id}/mls/commits`: a moderator's MLS commit for the room's group, taken
/// only if the group is still at `epoch` (the epoch the commit was built on).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlsCommitRequest {
    pub epoch: u64,
    /// The MLS commit message, base64 (standard alphabet).
    pub commit: String,
    /// The welcome for the devices the commit adds, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub welcome: Option<String>,
    /// Whom the commit adds (they get `mls_welcome`) and removes: what the committer says; the
    /// server cannot read the commit.
    #[serde(default)]
    pub added: Vec<UserId>,
    #[serde(default)]
    pub removed: Vec<UserId>,
}

/// A commit as the server relays it (`GET /v1/rooms/{id}/mls/commits/{epoch}`): the one
/// that started `epoch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlsCommit {
    pub epoch: u64,
    pub by: UserId,
    pub commit: String,
    #[serde(default)]
    pub added: Vec<UserId>,
    #[serde(default)]
    pub removed: Vec<UserId>,
}

/// `GET /v1/rooms/{id}/mls/welcome`: the latest welcome for the caller's device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlsWelcome {
    pub epoch: u64,
    pub welcome: String,
}
