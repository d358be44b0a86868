//! One small public error enum, mapped from the client's rich errors.

use ruang_client::ClientError;
use ruang_proto::ErrorCode;

#[derive(Debug, Clone, PartialEq, thiserror::Error, uniffi::Error)]
pub enum RuangError {
    /// The server could not be reached, or the connection dropped.
    #[error("network: {detail}")]
    Network { detail: String },
    /// Missing, unknown or revoked session.
    #[error("unauthorized: {detail}")]
    Unauthorized { detail: String },
    /// Not allowed (wrong role, removed, closed room, rate limited, …). `code` is the
    /// server's error code, e.g. `forbidden`, `hands_disabled`.
    #[error("forbidden ({code}): {detail}")]
    Forbidden { code: String, detail: String },
    #[error("not found ({code}): {detail}")]
    NotFound { code: String, detail: String },
    /// Bad input: invalid invite code, handle, title, link…
    #[error("invalid input ({code}): {detail}")]
    InvalidInput { code: String, detail: String },
    #[error("server: {detail}")]
    Server { detail: String },
}

impl From<ClientError> for RuangError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Api { code, message, .. } => {
                let c = code.as_str().to_owned();
                match code {
                    ErrorCode::Unauthorized => RuangError::Unauthorized { detail: message },
                    ErrorCode::NotFound | ErrorCode::TargetNotInRoom | ErrorCode::RoomEnded => {
                        RuangError::NotFound {
                            code: c,
                            detail: message,
                        }
                    }
                    ErrorCode::BadRequest
                    | ErrorCode::InvalidJson
                    | ErrorCode::PayloadTooLarge
                    | ErrorCode::InvalidHandle
                    | ErrorCode::HandleTaken
                    | ErrorCode::InvalidField
                    | ErrorCode::InvalidInvite
                    | ErrorCode::UnknownMessage
                    | ErrorCode::HelloRequired
                    | ErrorCode::UnsupportedProtocol
                    | ErrorCode::MethodNotAllowed => RuangError::InvalidInput {
                        code: c,
                        detail: message,
                    },
                    ErrorCode::Internal | ErrorCode::Unavailable => {
                        RuangError::Server { detail: message }
                    }
                    // Not yet (the room is live or its replay being mixed): try again later.
                    ErrorCode::ReplayNotReady => RuangError::Server { detail: message },
                    ErrorCode::Forbidden
                    | ErrorCode::RateLimited
                    | ErrorCode::NotInRoom
                    | ErrorCode::RemovedFromRoom
                    | ErrorCode::RoomClosed
                    | ErrorCode::HandsDisabled
                    | ErrorCode::NotAListener
                    | ErrorCode::NotOnStage
                    | ErrorCode::NoInvite
                    | ErrorCode::LastModerator
                    | ErrorCode::InvalidTarget
                    | ErrorCode::LimitReached
                    | ErrorCode::ReactionsDisabled
                    | ErrorCode::ChatDisabled
                    | ErrorCode::ChatFollowersOnly
                    | ErrorCode::SlowMode
                    // Encrypted rooms: not recordable; a commit another device beat.
                    | ErrorCode::Encrypted
                    | ErrorCode::StaleEpoch => RuangError::Forbidden {
                        code: c,
                        detail: message,
                    },
                }
            }
            ClientError::Network(message) => RuangError::Network { detail: message },
            ClientError::Closed(reason) => RuangError::Network {
                detail: format!("the room session is closed ({reason:?})"),
            },
            ClientError::Protocol(message) => RuangError::Server { detail: message },
            ClientError::InvalidInput(message) => RuangError::InvalidInput {
                code: "invalid_input".into(),
                detail: message,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_codes_to_the_small_enum() {
        let api = |code| ClientError::Api {
            status: 400,
            code,
            message: "m".into(),
        };
        assert!(matches!(
            RuangError::from(api(ErrorCode::InvalidInvite)),
            RuangError::InvalidInput { code, .. } if code == "invalid_invite"
        ));
        assert!(matches!(
            RuangError::from(api(ErrorCode::HandsDisabled)),
            RuangError::Forbidden { code, .. } if code == "hands_disabled"
        ));
        assert!(matches!(
            RuangError::from(api(ErrorCode::Unauthorized)),
            RuangError::Unauthorized { .. }
        ));
        assert!(matches!(
            RuangError::from(ClientError::Network("x".into())),
            RuangError::Network { .. }
        ));
    }
}
