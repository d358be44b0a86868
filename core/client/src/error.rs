use ruang_proto::{CloseReason, ErrorCode};

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error.
    #[error("{}: {message}", code.as_str())]
    Api {
        status: u16,
        code: ErrorCode,
        message: String,
    },
    /// The server could not be reached or the connection dropped.
    #[error("network: {0}")]
    Network(String),
    /// The server said something this client does not understand.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The room session is over.
    #[error("the room session is closed ({0:?})")]
    Closed(Option<CloseReason>),
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl ClientError {
    /// The server's error code, if this is a server answer.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl From<reqwest::Error> for ClientError {
    fn from(e: reqwest::Error) -> Self {
        ClientError::Network(e.to_string())
    }
}
