//! Records and enums Kotlin sees, converted from the wire types.

use ruang_client::session::{ConnectionState, SessionState};
use ruang_proto as proto;

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum RoomKind {
    Open,
    Social,
    Closed,
}

impl From<proto::RoomKind> for RoomKind {
    fn from(k: proto::RoomKind) -> Self {
        match k {
            proto::RoomKind::Open => RoomKind::Open,
            proto::RoomKind::Social => RoomKind::Social,
            proto::RoomKind::Closed => RoomKind::Closed,
        }
    }
}

impl From<RoomKind> for proto::RoomKind {
    fn from(k: RoomKind) -> Self {
        match k {
            RoomKind::Open => proto::RoomKind::Open,
            RoomKind::Social => proto::RoomKind::Social,
            RoomKind::Closed => proto::RoomKind::Closed,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Role {
    Moderator,
    Speaker,
    Listener,
}

impl From<proto::Role> for Role {
    fn from(r: proto::Role) -> Self {
        match r {
            proto::Role::Moderator => Role::Moderator,
            proto::Role::Speaker => Role::Speaker,
            proto::Role::Listener => Role::Listener,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct UserSummary {
    pub id: String,
    pub handle: String,
    pub name: String,
    /// Content hash of their photo (none without one): the image is
    /// `SERVER/media/avatars/HASH-128.jpg` (tiles) or `-512.jpg` (profiles), never changing.
    #[uniffi(default = None)]
    pub avatar: Option<String>,
}

impl From<proto::UserSummary> for UserSummary {
    fn from(u: proto::UserSummary) -> Self {
        UserSummary {
            id: u.id.0,
            handle: u.handle,
            name: u.name,
            avatar: u.avatar,
        }
    }
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Profile {
    pub id: String,
    pub handle: String,
    pub name: String,
    pub bio: String,
    /// "Nominated by".
    pub invited_by: Option<UserSummary>,
    pub is_admin: bool,
    pub followers: i64,
    pub following: i64,
    pub followed_by_you: bool,
    /// Content hash of their photo (see [`UserSummary::avatar`]).
    #[uniffi(default = None)]
    pub avatar: Option<String>,
    /// Up to three `https://` links.
    #[uniffi(default = [])]
    pub links: Vec<String>,
    /// Live rooms they host now (that you may see).
    #[uniffi(default = [])]
    pub hosting_now: Vec<RoomSummary>,
    /// Their scheduled rooms, soonest first.
    #[uniffi(default = [])]
    pub upcoming: Vec<EventSummary>,
}

impl From<proto::Profile> for Profile {
    fn from(p: proto::Profile) -> Self {
        Profile {
            id: p.id.0,
            handle: p.handle,
            name: p.name,
            bio: p.bio,
            invited_by: p.invited_by.map(Into::into),
            is_admin: p.is_admin,
            followers: p.followers,
            following: p.following,
            followed_by_you: p.followed_by_you,
            avatar: p.avatar,
            links: p.links,
            hosting_now: p.hosting_now.into_iter().map(Into::into).collect(),
            upcoming: p.upcoming.into_iter().map(Into::into).collect(),
        }
    }
}

/// One entry of the notification feed (`GET /v1/notifications`).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct NotificationItem {
    pub id: String,
    /// `followed_you`, `room_started`, `event_scheduled`, `event_starting`,
    /// `event_started`, `event_changed`, `event_cancelled`, `invitee_joined`,
    /// `invited_to_speak` (kinds a newer server adds come through as they are).
    pub kind: String,
    pub actor: Option<UserSummary>,
    pub room_id: Option<String>,
    pub event_id: Option<String>,
    /// The line to show.
    pub text: String,
    /// Where a tap leads: `…/r/ROOM`, `…/e/EVENT` or `ruang://u/HANDLE`.
    pub link: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub read: bool,
}

impl From<proto::Notification> for NotificationItem {
    fn from(n: proto::Notification) -> Self {
        NotificationItem {
            id: n.id,
            kind: n.kind.as_str().to_owned(),
            actor: n.actor.map(Into::into),
            room_id: n.room_id.map(|r| r.0),
            event_id: n.event_id,
            text: n.text,
            link: n.link,
            created_at: n.created_at,
            read: n.read,
        }
    }
}

/// A page of the feed, newest first.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct NotificationPage {
    pub notifications: Vec<NotificationItem>,
    /// Unread in all pages.
    pub unread: u32,
    /// The read marker (Unix ms, 0 at first).
    pub read_up_to: i64,
    /// Pass to get the next (older) page; none on the last.
    pub next_cursor: Option<String>,
}

/// A page of a follower or following list.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct UserPage {
    pub users: Vec<UserSummary>,
    pub next_cursor: Option<String>,
}

/// What `search` found.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SearchResults {
    pub people: Vec<UserSummary>,
    pub rooms: Vec<RoomSummary>,
    pub events: Vec<EventSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Invite {
    pub code: String,
    /// The link to share: `PUBLIC_URL/i/CODE`.
    pub link: String,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct RoomSummary {
    pub id: String,
    pub title: String,
    pub kind: RoomKind,
    pub speakers: Vec<UserSummary>,
    pub speaker_count: u32,
    pub listener_count: u32,
    pub followed_speakers: u32,
    /// The room link to share (with its key for closed rooms).
    pub link: String,
    /// End-to-end encrypted: the server forwards audio it cannot decrypt.
    #[uniffi(default = false)]
    pub e2ee: bool,
}

impl From<proto::RoomSummary> for RoomSummary {
    fn from(r: proto::RoomSummary) -> Self {
        RoomSummary {
            id: r.id.0,
            title: r.title,
            kind: r.kind.into(),
            speakers: r.speakers.into_iter().map(Into::into).collect(),
            speaker_count: r.speaker_count,
            listener_count: r.listener_count,
            followed_speakers: r.followed_speakers,
            link: r.link,
            e2ee: r.e2ee,
        }
    }
}

/// What a link opened in the app points at.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum LinkTarget {
    Room {
        room_id: String,
        link_token: Option<String>,
    },
    Invite {
        code: String,
    },
    Unknown,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ParticipantView {
    pub user: UserSummary,
    pub role: Role,
    pub muted: bool,
    pub followed_by_speakers: bool,
    /// Speaking level 0.0–1.0 (from the server's levels, a few times a second).
    pub level: f32,
    pub speaking: bool,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct HandView {
    pub participant: ParticipantView,
    pub invited: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ConnectionStatus {
    Connecting,
    Connected,
    Reconnecting {
        attempt: u32,
    },
    /// Over: `reason` is `left`, `removed`, `room_ended`, `replaced`, or the server's error
    /// code when it refused.
    Ended {
        reason: String,
    },
}

impl From<&ConnectionState> for ConnectionStatus {
    fn from(c: &ConnectionState) -> Self {
        match c {
            ConnectionState::Connecting => ConnectionStatus::Connecting,
            ConnectionState::Connected => ConnectionStatus::Connected,
            ConnectionState::Reconnecting { attempt } => {
                ConnectionStatus::Reconnecting { attempt: *attempt }
            }
            ConnectionState::Ended { reason, error } => ConnectionStatus::Ended {
                reason: match (reason, error) {
                    (Some(r), _) => r.as_str().to_owned(),
                    (None, Some(code)) => code.as_str().to_owned(),
                    (None, None) => "closed".into(),
                },
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct Counts {
    pub speakers: u32,
    pub listeners: u32,
    pub hands: u32,
}

/// Everything a room screen shows.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct RoomViewState {
    pub connection: ConnectionStatus,
    pub room_id: String,
    pub title: String,
    pub kind: Option<RoomKind>,
    pub hands_enabled: bool,
    pub stage: Vec<ParticipantView>,
    /// The first listeners; page the rest with `Room.audiencePage`.
    pub audience: Vec<ParticipantView>,
    pub counts: Counts,
    pub me: Option<ParticipantView>,
    pub hand_raised: bool,
    pub invited_to_speak: bool,
    /// The hand queue (moderators only).
    pub hands: Vec<HandView>,
    pub ended: bool,
    pub removed: bool,
    /// The room is being recorded: what is said goes into a replay (show it).
    #[uniffi(default = false)]
    pub recording: bool,
    /// Clips of the last 30 s may be taken (moderators; everyone in a recorded room).
    #[uniffi(default = false)]
    pub clips: bool,
}

/// A level above this counts as speaking for the ring.
const SPEAKING: f32 = 0.05;

impl RoomViewState {
    pub fn from_session(room_id: &str, s: &SessionState) -> Self {
        let level_of = |p: &proto::Participant| {
            s.room
                .levels
                .get(&p.user.id)
                .copied()
                .filter(|_| p.role.on_stage() && !p.muted)
                .unwrap_or(0.0)
        };
        let view = |p: &proto::Participant| {
            let level = level_of(p);
            ParticipantView {
                user: p.user.clone().into(),
                role: p.role.into(),
                muted: p.muted,
                followed_by_speakers: p.followed_by_speakers,
                level,
                speaking: level > SPEAKING,
            }
        };
        let r = s.room.room.as_ref();
        RoomViewState {
            connection: (&s.connection).into(),
            room_id: room_id.to_owned(),
            title: r.map(|r| r.title.clone()).unwrap_or_default(),
            kind: r.map(|r| r.kind.into()),
            hands_enabled: r.is_some_and(|r| r.hands_enabled),
            stage: r
                .map(|r| r.stage.iter().map(view).collect())
                .unwrap_or_default(),
            audience: r
                .map(|r| r.audience.iter().map(view).collect())
                .unwrap_or_default(),
            counts: r
                .map(|r| Counts {
                    speakers: r.counts.speakers,
                    listeners: r.counts.listeners,
                    hands: r.counts.hands,
                })
                .unwrap_or(Counts {
                    speakers: 0,
                    listeners: 0,
                    hands: 0,
                }),
            me: r.map(|r| view(&r.you)),
            hand_raised: r.is_some_and(|r| r.your_hand_raised),
            invited_to_speak: r.is_some_and(|r| r.invited_to_speak),
            hands: r
                .map(|r| {
                    r.hands
                        .iter()
                        .map(|h| HandView {
                            participant: view(&h.participant),
                            invited: h.invited,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            ended: s.room.ended,
            removed: s.room.removed,
            recording: r.is_some_and(|r| r.recording),
            clips: r.is_some_and(|r| r.clips),
        }
    }
}

/// A scheduled room, as the hallway's "Upcoming" section shows it.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct EventSummary {
    pub id: String,
    pub title: String,
    pub description: String,
    pub host: UserSummary,
    pub cohosts: Vec<UserSummary>,
    /// Unix milliseconds.
    pub starts_at: i64,
    /// RFC 3339 in the event's own zone (`2026-12-08T19:00:00+07:00`).
    pub starts_at_local: String,
    pub time_zone: String,
    /// `scheduled`, `live`, `ended` or `cancelled`.
    pub status: String,
    pub room_id: Option<String>,
    pub notify_me: bool,
    pub interested: u32,
    /// `PUBLIC_URL/e/ID`.
    pub link: String,
}

impl From<proto::Event> for EventSummary {
    fn from(e: proto::Event) -> Self {
        EventSummary {
            status: match e.status {
                proto::EventStatus::Scheduled => "scheduled",
                proto::EventStatus::Live => "live",
                proto::EventStatus::Ended => "ended",
                proto::EventStatus::Cancelled => "cancelled",
            }
            .to_owned(),
            id: e.id,
            title: e.title,
            description: e.description,
            host: e.host.into(),
            cohosts: e.cohosts.into_iter().map(Into::into).collect(),
            starts_at: e.starts_at,
            starts_at_local: e.starts_at_local,
            time_zone: e.time_zone,
            room_id: e.room_id.map(|r| r.0),
            notify_me: e.notify_me,
            interested: e.interested,
            link: e.link,
        }
    }
}

/// One stretch of one speaker's voice in a replay (ms from the replay's start).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReplaySpanView {
    pub user_id: String,
    pub name: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// Where a speaker starts talking in a replay.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReplayChapterView {
    pub start_ms: u64,
    pub name: String,
}

/// A chat message of a replay, at its offset into the recording.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReplayChatLine {
    pub id: u64,
    pub author: UserSummary,
    pub text: String,
    pub offset_ms: u64,
}

/// A recorded room's replay (docs/protocol.md §14.2).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReplayView {
    /// The room's id (one replay per room).
    pub room_id: String,
    pub title: String,
    pub kind: RoomKind,
    pub host: UserSummary,
    /// Unix ms.
    pub room_created_at: i64,
    pub created_at: i64,
    pub duration_ms: u64,
    pub bytes: u64,
    /// The Ogg Opus file (HTTP(S), Range-capable; `?t=` for closed rooms).
    pub audio_url: String,
    /// The `/r/ROOM` page that plays it.
    pub link: String,
    pub speakers: Vec<ReplaySpanView>,
    pub chapters: Vec<ReplayChapterView>,
    /// The chat as it was recorded, oldest first (empty when nobody wrote).
    pub chat: Vec<ReplayChatLine>,
}

impl From<proto::Replay> for ReplayView {
    fn from(r: proto::Replay) -> Self {
        ReplayView {
            room_id: r.id.0,
            title: r.title,
            kind: r.kind.into(),
            host: r.host.into(),
            room_created_at: r.room_created_at,
            created_at: r.created_at,
            duration_ms: r.duration_ms,
            bytes: r.bytes,
            audio_url: r.url,
            link: r.link,
            speakers: r
                .speakers
                .into_iter()
                .map(|s| ReplaySpanView {
                    user_id: s.user.0,
                    name: s.name,
                    start_ms: s.start_ms,
                    end_ms: s.end_ms,
                })
                .collect(),
            chapters: r
                .chapters
                .into_iter()
                .map(|c| ReplayChapterView {
                    start_ms: c.start_ms,
                    name: c.name,
                })
                .collect(),
            chat: r.chat.iter().filter_map(replay_chat_line).collect(),
        }
    }
}

/// One recorded chat message (`{id, author, text, links, at, offset_ms}`); a message
/// that does not have that shape is left out rather than failing the whole replay.
fn replay_chat_line(v: &serde_json::Value) -> Option<ReplayChatLine> {
    #[derive(serde::Deserialize)]
    struct Line {
        id: u64,
        author: proto::UserSummary,
        text: String,
        #[serde(default)]
        offset_ms: u64,
    }
    let l: Line = serde_json::from_value(v.clone()).ok()?;
    Some(ReplayChatLine {
        id: l.id,
        author: l.author.into(),
        text: l.text,
        offset_ms: l.offset_ms,
    })
}

/// A clip of the last 30 s of a live room.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ClipView {
    pub id: String,
    /// `PUBLIC_URL/c/CLIP`: the page to share.
    pub url: String,
    /// The Ogg Opus file.
    pub file: String,
    pub duration_ms: u64,
}

impl From<proto::Clip> for ClipView {
    fn from(c: proto::Clip) -> Self {
        ClipView {
            id: c.id,
            url: c.url,
            file: c.file,
            duration_ms: c.duration_ms,
        }
    }
}

#[cfg(test)]
mod replay_tests {
    use super::*;

    #[test]
    fn a_replay_converts_with_its_chat_at_offsets() {
        let json = serde_json::json!({
            "id": "room1", "title": "Jazz", "kind": "open",
            "host": {"id": "u1", "handle": "ana", "name": "Ana"},
            "room_created_at": 1000, "created_at": 2000, "duration_ms": 65000, "bytes": 4096,
            "url": "https://ruang.example/media/replays/room1.ogg",
            "link": "https://ruang.example/r/room1",
            "speakers": [{"user": "u1", "name": "Ana", "start_ms": 0, "end_ms": 30000},
                         {"user": "u2", "name": "Budi", "start_ms": 31000, "end_ms": 65000}],
            "chapters": [{"start_ms": 0, "name": "Ana"}, {"start_ms": 31000, "name": "Budi"}],
            "chat": [
                {"id": 3, "author": {"id": "u2", "handle": "budi", "name": "Budi"},
                 "text": "hello", "links": [], "at": 5000, "offset_ms": 4000},
                {"id": "not a number", "text": "broken"}
            ]
        });
        let r: proto::Replay = serde_json::from_value(json).unwrap();
        let v = ReplayView::from(r);
        assert_eq!(v.room_id, "room1");
        assert_eq!(v.audio_url, "https://ruang.example/media/replays/room1.ogg");
        assert_eq!(v.duration_ms, 65000);
        assert_eq!(v.chapters[1].name, "Budi");
        assert_eq!(v.chapters[1].start_ms, 31000);
        assert_eq!(v.speakers[1].user_id, "u2");
        // The malformed message is left out, the good one keeps its offset.
        assert_eq!(
            v.chat,
            vec![ReplayChatLine {
                id: 3,
                author: UserSummary {
                    id: "u2".into(),
                    handle: "budi".into(),
                    name: "Budi".into(),
                    avatar: None
                },
                text: "hello".into(),
                offset_ms: 4000,
            }]
        );
    }
}
