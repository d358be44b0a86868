/// What can go wrong; every variant is recoverable by dropping the input.
#[derive(Debug, thiserror::Error)]
pub enum E2eeError {
    /// Bytes that do not parse as the expected MLS message.
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    /// A handshake message MLS refused (wrong epoch, bad signature, not for this group…).
    #[error("handshake refused: {0}")]
    Refused(String),
    /// A key package whose credential names someone else than the member it was sent for.
    #[error("key package of {found:?} offered as {expected:?}")]
    WrongIdentity { expected: String, found: String },
    /// This device is no longer in the group (it was removed).
    #[error("not a member of the group any more")]
    NotMember,
    /// A media frame that does not decrypt: unknown key id, old epoch, replay, forgery.
    #[error("frame dropped: {0}")]
    Frame(&'static str),
    /// A frame already received (a replay, or the RED copy of a frame that arrived).
    #[error("frame already received")]
    Replayed,
    /// An internal failure of the crypto provider.
    #[error("crypto: {0}")]
    Crypto(String),
}

pub(crate) fn crypto<E: std::fmt::Debug>(e: E) -> E2eeError {
    E2eeError::Crypto(format!("{e:?}"))
}

pub(crate) fn refused<E: std::fmt::Debug>(e: E) -> E2eeError {
    E2eeError::Refused(format!("{e:?}"))
}
