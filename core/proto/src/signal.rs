//! Signalling messages over the room WebSocket (`GET /v1/rooms/{id}/ws`).
//!
//! Client → server: a [`ClientEnvelope`]: the message plus an optional `req` number that the
//! server echoes in its `ok`/`error` answer. Server → client: [`ServerMessage`].
//! After `welcome`, every `delta` carries a per-connection sequence number that grows by one;
//! a client that sees a gap sends `sync` and gets a fresh `snapshot`.

use crate::api::{Role, RoomKind, UserSummary};
use crate::chat::{ChatMessage, ChatSettings, Reaction, ReactionBurst};
use crate::error::ErrorCode;
use crate::ids::{RoomId, UserId};
use serde::{Deserialize, Serialize};

/// A message from the client, with an optional request number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientEnvelope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub req: Option<u64>,
    #[serde(flatten)]
    pub msg: ClientMessage,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// First message on a connection.
    Hello {
        protocol: u32,
        token: String,
        /// The room link token (`?t=` of a closed room's link), if the client has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        link_token: Option<String>,
    },
    RaiseHand,
    LowerHand,
    AcceptInvite,
    DeclineInvite,
    /// Mute or unmute oneself (speakers and moderators).
    SetMuted {
        muted: bool,
    },
    /// A speaker steps down to the audience by themselves.
    LeaveStage,
    InviteToSpeak {
        user: UserId,
    },
    MoveToAudience {
        user: UserId,
    },
    /// Mutes a speaker; the speaker may unmute.
    Mute {
        user: UserId,
    },
    MakeModerator {
        user: UserId,
    },
    /// Removes someone, who cannot rejoin this room.
    Remove {
        user: UserId,
    },
    SetHandsEnabled {
        enabled: bool,
    },
    /// Moderators: start or stop recording the room (everyone is told with `recording`).
    SetRecording {
        recording: bool,
    },
    EndRoom,
    /// Leaves the room; `quiet` tells no one.
    Leave {
        #[serde(default)]
        quiet: bool,
    },
    /// Asks for a fresh snapshot.
    Sync,
    /// Starts (or restarts) the audio transport: a WebRTC SDP offer with one `sendonly`
    /// audio m-line for the microphone (optional) and `recvonly` audio m-lines, one per
    /// speaker the server may forward at once. Answered by `media_answer`.
    MediaOffer {
        sdp: String,
    },
    /// One page of the audience (listeners) in the order they joined it.
    Audience {
        /// Position to start from (0 for the first page); `next` of the previous page.
        #[serde(default)]
        cursor: u32,
        #[serde(default = "default_page")]
        limit: u32,
    },
    Ping,
    // ----- reactions and chat (see `chat.rs`) -----
    /// Encrypted rooms: this device's MLS key package (base64), to be added to the group by a
    /// moderator's device. Replaces the member's earlier one.
    MlsKeyPackage {
        key_package: String,
    },
    /// Moderators of an encrypted room: the epoch's media key sealed with the guest key of
    /// the room's guest link (§15.6), for browser guests. The server cannot open it.
    MlsGuestKey {
        epoch: u64,
        /// base64: 12-byte nonce, AES-128-GCM ciphertext of the base key, 16-byte tag.
        envelope: String,
    },
    /// Sends a reaction (anyone in the room, guests too), optionally aimed at someone on
    /// stage. Coalesced into `reactions` bursts; never answered unless refused.
    React {
        reaction: Reaction,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<UserId>,
    },
    /// Moderators: reactions on or off.
    SetReactionsEnabled {
        enabled: bool,
    },
    /// Posts a chat message (members; not guests).
    SendChat {
        text: String,
    },
    /// One page of chat history: the messages before `before` (an id; absent for the
    /// latest), oldest first. Answered by `chat_history`.
    ChatHistory {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<u64>,
        #[serde(default = "default_chat_page")]
        limit: u32,
    },
    /// Moderators (or the author): deletes a chat message.
    DeleteChat {
        id: u64,
    },
    /// Moderators: who may post, and slow mode.
    SetChatSettings {
        settings: ChatSettings,
    },
}

fn default_page() -> u32 {
    50
}

fn default_chat_page() -> u32 {
    crate::chat::DEFAULT_CHAT_PAGE
}

fn yes() -> bool {
    true
}

/// A STUN or TURN server a client may use to reach the SFU (what `RTCIceServer` takes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `turn:HOST:PORT?transport=udp|tcp`, `turns:HOST:PORT?transport=tcp`, `stun:HOST:PORT`.
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub credential: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Answer to `hello`: who you are and the room as it is now.
    Welcome {
        protocol: u32,
        you: UserId,
        seq: u64,
        room: RoomSnapshot,
        /// TURN (and STUN) servers for media, with credentials valid for a limited time
        /// (the server's TURN REST secret); absent when the server has none configured.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ice_servers: Vec<IceServer>,
    },
    /// A fresh full state, after `sync` or when the server resynchronises the client.
    Snapshot {
        seq: u64,
        room: RoomSnapshot,
    },
    /// One change, in order.
    Delta {
        seq: u64,
        event: RoomEvent,
    },
    /// Success of a request that had a `req` number.
    Ok {
        req: u64,
    },
    /// A refused or malformed message; the connection stays open unless `fatal`.
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        req: Option<u64>,
        code: ErrorCode,
        message: String,
        #[serde(default)]
        fatal: bool,
    },
    /// Answer to `audience`.
    AudiencePage {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        req: Option<u64>,
        participants: Vec<Participant>,
        /// Cursor of the next page, absent at the end.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<u32>,
        total: u32,
    },
    Pong,
    /// Answer to `media_offer`: the server's SDP answer (ICE-lite, one host candidate).
    MediaAnswer {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        req: Option<u64>,
        sdp: String,
    },
    /// The server dropped this connection's media peer (the client's ICE consent checks
    /// stopped, or its transport failed). The room connection stays; send a new
    /// `media_offer` to listen and speak again.
    MediaClosed {
        reason: String,
    },
    /// The server closes this connection; `reason` says why.
    Closing {
        reason: CloseReason,
    },
    /// Answer to `chat_history`: oldest first; `more` says older messages remain.
    ChatHistory {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        req: Option<u64>,
        messages: Vec<ChatMessage>,
        more: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The room ended: do not reconnect.
    RoomEnded,
    /// You were removed: do not reconnect.
    Removed,
    /// You left.
    Left,
    /// The same account joined this room from another connection.
    Replaced,
    /// The server is shutting down: reconnect with backoff.
    ServerShutdown,
    /// The session was logged out or revoked: sign in again; do not reconnect with it.
    SessionRevoked,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::RoomEnded => "room_ended",
            CloseReason::Removed => "removed",
            CloseReason::Left => "left",
            CloseReason::Replaced => "replaced",
            CloseReason::ServerShutdown => "server_shutdown",
            CloseReason::SessionRevoked => "session_revoked",
        }
    }
}

/// Someone in the room as others see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub user: UserSummary,
    pub role: Role,
    /// On stage: muted (no audio is forwarded).
    pub muted: bool,
    /// Whether someone on stage follows this person (the "followed by the speakers" section).
    pub followed_by_speakers: bool,
}

/// The whole room as one viewer may see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomSnapshot {
    pub id: RoomId,
    pub title: String,
    pub kind: RoomKind,
    pub hands_enabled: bool,
    /// Moderators and speakers, in the order they came on stage.
    pub stage: Vec<Participant>,
    /// The first listeners (up to the server's sample size, 50) in audience order.
    /// The rest are paged with `audience`.
    pub audience: Vec<Participant>,
    pub counts: Counts,
    /// The viewer.
    pub you: Participant,
    /// Whether the viewer's hand is up.
    pub your_hand_raised: bool,
    /// Whether the viewer has a pending invitation to speak.
    pub invited_to_speak: bool,
    /// The hand queue in order; only moderators see it (empty for others).
    pub hands: Vec<HandEntry>,
    // ----- reactions and chat -----
    #[serde(default = "yes")]
    pub reactions_enabled: bool,
    #[serde(default)]
    pub chat: ChatSettings,
    /// The latest chat messages (up to 50), oldest first; older ones with `chat_history`.
    #[serde(default)]
    pub chat_recent: Vec<ChatMessage>,
    /// Whether older messages than `chat_recent` remain.
    #[serde(default)]
    pub chat_more: bool,
    /// The room is being recorded: what listeners hear goes into a replay.
    #[serde(default)]
    pub recording: bool,
    /// Clips of the last 30 s may be taken (the server keeps that much audio).
    #[serde(default)]
    pub clips: bool,
    /// End-to-end encrypted (§15): the MLS group's state as the server orders it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2ee: Option<MlsState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Counts {
    pub speakers: u32,
    pub listeners: u32,
    /// Raised hands (0 for non-moderators).
    pub hands: u32,
}

/// One raised hand in the moderators' queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandEntry {
    pub participant: Participant,
    /// A moderator has invited this person and the answer is pending.
    pub invited: bool,
}

/// Why someone left the viewer's view of the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftReason {
    /// Left the room; clients may show it.
    Left,
    /// Removed by a moderator.
    Removed,
    /// Silently out of view: left quietly, lost the connection for good, or moved beyond
    /// the audience sample. Clients show nothing.
    Hidden,
}

/// One change to the room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RoomEvent {
    /// Someone entered the viewer's view (stage or audience sample). Upsert by user id.
    ParticipantJoined {
        participant: Participant,
    },
    /// Role or mute changed. Upsert by user id; the role says stage or audience.
    ParticipantUpdated {
        participant: Participant,
    },
    ParticipantLeft {
        user: UserId,
        reason: LeftReason,
    },
    /// Moderators and the raiser: a hand went up (appended to the queue).
    HandRaised {
        entry: HandEntry,
    },
    /// Moderators and the raiser: a hand went down or was answered.
    HandLowered {
        user: UserId,
    },
    /// Moderators: an invitation to speak was sent.
    InviteSent {
        user: UserId,
        by: UserId,
    },
    /// Moderators: the invitee declined.
    InviteDeclined {
        user: UserId,
    },
    /// Only the invitee: a moderator invites you to speak. Answer with `accept_invite`
    /// or `decline_invite`.
    InvitedToSpeak {
        by: UserSummary,
        /// The room is being recorded: clients say so before the invitee accepts.
        #[serde(default)]
        recording: bool,
    },
    Counts {
        counts: Counts,
    },
    HandsEnabled {
        enabled: bool,
    },
    /// Speaking levels of people on stage, a few times a second (0.0–1.0).
    Levels {
        levels: Vec<SpeakerLevel>,
    },
    /// The room ended. The connection closes after this.
    Ended,
    /// Only the removed person. The connection closes after this.
    YouWereRemoved {
        by: UserId,
    },
    // ----- reactions and chat -----
    /// The reactions sent during one short window (about 250 ms), totalled per
    /// (reaction, target).
    Reactions {
        bursts: Vec<ReactionBurst>,
    },
    ReactionsEnabled {
        enabled: bool,
    },
    ChatMessage {
        message: ChatMessage,
    },
    /// A chat message was deleted: drop it.
    ChatDeleted {
        id: u64,
    },
    ChatSettings {
        settings: ChatSettings,
    },
    /// Everyone: recording started (`true`) or stopped, by moderator `by`.
    Recording {
        recording: bool,
        by: UserId,
    },
    /// Moderators of an encrypted room: a member's device asks to be added to the group.
    MlsKeyPackage {
        user: UserId,
        key_package: String,
    },
    /// Everyone in an encrypted room: the commit that starts `epoch` was taken; fetch it
    /// (`GET /v1/rooms/{id}/mls/commits/{epoch}`) and process it.
    MlsCommit {
        epoch: u64,
        by: UserId,
        added: Vec<UserId>,
        removed: Vec<UserId>,
    },
    /// To the devices a commit added: fetch the welcome (`GET /v1/rooms/{id}/mls/welcome`).
    MlsWelcome {
        epoch: u64,
    },
    /// Moderators of an encrypted room: a member of the group left the room (`removed`: a
    /// moderator removed them). Their device still holds the key until a commit removes it.
    MlsDeparted {
        user: UserId,
        removed: bool,
    },
    /// Moderators: a departed member of the group is back before a commit removed them.
    MlsReturned {
        user: UserId,
    },
    /// Everyone (guests too): a moderator's device sealed an epoch's key for the holders of
    /// the guest link (§15.6).
    MlsGuestKey {
        key: MlsGuestKey,
    },
}

/// An encrypted room's MLS group, as the server orders it (it relays handshakes it cannot
/// read).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MlsState {
    /// The epoch of the last commit taken (0: the group as its creator made it).
    pub epoch: u64,
    /// Moderators only: devices waiting to be added (latest key package per member).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<MlsKeyPackage>,
    /// Moderators only: members the group still holds who are no longer in the room, to be
    /// removed by the next commit (at once for `removed`, batched for leaves).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub departed: Vec<MlsDeparture>,
    /// The latest epochs' keys sealed for guest-link holders (oldest first, at most two).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guest_keys: Vec<MlsGuestKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MlsGuestKey {
    pub epoch: u64,
    /// base64 (§15.6).
    pub envelope: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MlsDeparture {
    pub user: UserId,
    /// A moderator removed them (rekey now), rather than a leave (may be batched).
    pub removed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MlsKeyPackage {
    pub user: UserId,
    /// The MLS key package, base64.
    pub key_package: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeakerLevel {
    pub user: UserId,
    pub level: f32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_is_flat() {
        let e: ClientEnvelope =
            serde_json::from_str(r#"{"type":"invite_to_speak","user":"u1","req":7}"#).unwrap();
        assert_eq!(e.req, Some(7));
        assert_eq!(
            e.msg,
            ClientMessage::InviteToSpeak {
                user: UserId::from("u1")
            }
        );
        let e: ClientEnvelope = serde_json::from_str(r#"{"type":"raise_hand"}"#).unwrap();
        assert_eq!(e.msg, ClientMessage::RaiseHand);
        let s = serde_json::to_string(&ClientEnvelope {
            req: None,
            msg: ClientMessage::Leave { quiet: true },
        })
        .unwrap();
        assert_eq!(s, r#"{"type":"leave","quiet":true}"#);
    }

    #[test]
    fn unknown_type_is_an_error() {
        assert!(serde_json::from_str::<ClientEnvelope>(r#"{"type":"fly"}"#).is_err());
        assert!(serde_json::from_str::<ClientEnvelope>(r#"{"type":"mute"}"#).is_err());
    }

    #[test]
    fn delta_shape() {
        let m = ServerMessage::Delta {
            seq: 3,
            event: RoomEvent::HandsEnabled { enabled: false },
        };
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"type":"delta","seq":3,"event":{"kind":"hands_enabled","enabled":false}}"#
        );
    }
}
