//! Error codes shared by HTTP responses and signalling `error` messages.

use serde::{Deserialize, Serialize};

/// Machine-readable error code. New codes may be added; clients treat unknown ones as `internal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    #[error("the request is malformed")]
    BadRequest,
    #[error("the body is not valid JSON for this request")]
    InvalidJson,
    #[error("the request or message is too large")]
    PayloadTooLarge,
    #[error("invalid handle")]
    InvalidHandle,
    #[error("handle already taken")]
    HandleTaken,
    #[error("invalid field")]
    InvalidField,
    #[error("unknown, used or revoked invite code")]
    InvalidInvite,
    #[error("missing, unknown or revoked session token")]
    Unauthorized,
    #[error("not allowed")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("too many failed attempts; try again later")]
    RateLimited,
    #[error("unsupported protocol version")]
    UnsupportedProtocol,
    #[error("unknown message type")]
    UnknownMessage,
    #[error("expected a hello message first")]
    HelloRequired,
    #[error("you are not in this room")]
    NotInRoom,
    #[error("that person is not in this room")]
    TargetNotInRoom,
    #[error("the room has ended")]
    RoomEnded,
    #[error("you were removed from this room")]
    RemovedFromRoom,
    #[error("this room needs an invite or its link")]
    RoomClosed,
    #[error("hand raising is switched off in this room")]
    HandsDisabled,
    #[error("only listeners can do this")]
    NotAListener,
    #[error("only people on stage can do this")]
    NotOnStage,
    #[error("there is no invitation to speak")]
    NoInvite,
    #[error("the room would have no moderator left")]
    LastModerator,
    #[error("not possible for that person")]
    InvalidTarget,
    #[error("internal server error")]
    Internal,
    #[error("the server is busy; try again shortly")]
    Unavailable,
    #[error("a limit on how many you may have was reached")]
    LimitReached,
    #[error("reactions are switched off in this room")]
    ReactionsDisabled,
    #[error("the chat is switched off in this room")]
    ChatDisabled,
    #[error("the chat is for members who follow the hosts")]
    ChatFollowersOnly,
    #[error("slow mode: wait before sending another message")]
    SlowMode,
    #[error("the replay is not ready: the room is still live or being mixed")]
    ReplayNotReady,
    #[error("another commit was taken for this epoch: process it, then commit again")]
    StaleEpoch,
    #[error("the room is end-to-end encrypted: the server cannot record or clip it")]
    Encrypted,
}

impl ErrorCode {
    /// HTTP status used when this code is returned over HTTP.
    pub fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            BadRequest | InvalidJson | InvalidHandle | InvalidField | UnsupportedProtocol
            | UnknownMessage | HelloRequired => 400,
            PayloadTooLarge => 413,
            InvalidInvite => 400,
            HandleTaken => 409,
            Unauthorized => 401,
            Forbidden | RemovedFromRoom | RoomClosed | HandsDisabled | NotAListener
            | NotOnStage | NoInvite | LastModerator | InvalidTarget | NotInRoom => 403,
            NotFound | TargetNotInRoom => 404,
            MethodNotAllowed => 405,
            RoomEnded => 410,
            RateLimited => 429,
            Internal => 500,
            Unavailable => 503,
            LimitReached => 403,
            ReactionsDisabled | ChatDisabled | ChatFollowersOnly => 403,
            SlowMode => 429,
            ReplayNotReady => 409,
            StaleEpoch | Encrypted => 409,
        }
    }

    pub fn as_str(self) -> &'static str {
        // serde gives the snake_case name; this avoids allocating for logs and metrics.
        use ErrorCode::*;
        match self {
            BadRequest => "bad_request",
            InvalidJson => "invalid_json",
            PayloadTooLarge => "payload_too_large",
            InvalidHandle => "invalid_handle",
            HandleTaken => "handle_taken",
            InvalidField => "invalid_field",
            InvalidInvite => "invalid_invite",
            Unauthorized => "unauthorized",
            Forbidden => "forbidden",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            RateLimited => "rate_limited",
            UnsupportedProtocol => "unsupported_protocol",
            UnknownMessage => "unknown_message",
            HelloRequired => "hello_required",
            NotInRoom => "not_in_room",
            TargetNotInRoom => "target_not_in_room",
            RoomEnded => "room_ended",
            RemovedFromRoom => "removed_from_room",
            RoomClosed => "room_closed",
            HandsDisabled => "hands_disabled",
            NotAListener => "not_a_listener",
            NotOnStage => "not_on_stage",
            NoInvite => "no_invite",
            LastModerator => "last_moderator",
            InvalidTarget => "invalid_target",
            Internal => "internal",
            Unavailable => "unavailable",
            LimitReached => "limit_reached",
            ReactionsDisabled => "reactions_disabled",
            ChatDisabled => "chat_disabled",
            ChatFollowersOnly => "chat_followers_only",
            SlowMode => "slow_mode",
            ReplayNotReady => "replay_not_ready",
            StaleEpoch => "stale_epoch",
            Encrypted => "encrypted",
        }
    }
}

/// `{"error":{"code":"...","message":"..."}}`, the body of every HTTP error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_matches_serde() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::InvalidInvite,
            ErrorCode::HandsDisabled,
            ErrorCode::LastModerator,
            ErrorCode::RemovedFromRoom,
            ErrorCode::Internal,
            ErrorCode::Unavailable,
            ErrorCode::LimitReached,
            ErrorCode::ReactionsDisabled,
            ErrorCode::ChatDisabled,
            ErrorCode::ChatFollowersOnly,
            ErrorCode::SlowMode,
            ErrorCode::ReplayNotReady,
            ErrorCode::StaleEpoch,
            ErrorCode::Encrypted,
        ] {
            assert_eq!(
                serde_json::to_string(&code).unwrap(),
                format!("\"{}\"", code.as_str())
            );
        }
    }
}
