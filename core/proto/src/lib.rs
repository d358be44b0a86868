//! Wire types shared by the Ruang server and every client.
//!
//! Nothing here does I/O: these are the exact shapes documented in `docs/protocol.md`.

pub mod api;
pub mod chat;
pub mod error;
pub mod ids;
pub mod safety;
pub mod signal;

pub use api::*;
pub use chat::*;
pub use error::{ApiErrorBody, ErrorCode, ErrorDetail};
pub use ids::{RoomId, UserId};
pub use safety::*;
pub use signal::*;

/// Version of the signalling protocol, sent in `hello` and echoed in `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Handles: 3–20 characters of `[a-z0-9_]`.
pub fn validate_handle(handle: &str) -> Result<(), &'static str> {
    let len = handle.chars().count();
    if !(3..=20).contains(&len) {
        return Err("a handle has 3 to 20 characters");
    }
    if !handle
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err("a handle uses only a-z, 0-9 and _");
    }
    Ok(())
}

/// Normalises a typed or pasted invite code: case-insensitive, spaces and dashes ignored.
/// Also accepts a whole invite link (`…/i/CODE`).
pub fn normalize_invite_code(input: &str) -> String {
    // Cleaned and lowercased first, so that the link prefix is found however it was typed
    // ("/I/") and the result is a fixed point (a prop test found "/I/" → "/i/" → "").
    let cleaned: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(|c| c.to_lowercase())
        .collect();
    let tail = cleaned.rsplit("/i/").next().unwrap_or("");
    tail.split(['?', '#']).next().unwrap_or("").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles() {
        assert!(validate_handle("ann").is_ok());
        assert!(validate_handle("a_b_9").is_ok());
        assert!(validate_handle("ab").is_err());
        assert!(validate_handle("Ann").is_err());
        assert!(validate_handle("a-b").is_err());
        assert!(validate_handle(&"a".repeat(21)).is_err());
        assert!(validate_handle("añn").is_err());
    }

    #[test]
    fn invite_codes_normalise() {
        assert_eq!(normalize_invite_code(" ABCD-efgh "), "abcdefgh");
        assert_eq!(
            normalize_invite_code("HTTPS://RUANG.EXAMPLE/I/ABCD-EFGH"),
            "abcdefgh"
        );
        for odd in ["/I/", "/ i/", "/i-/x", "a/I/b"] {
            let once = normalize_invite_code(odd);
            assert_eq!(normalize_invite_code(&once), once, "{odd:?}");
        }
        assert_eq!(
            normalize_invite_code("https://ruang.example/i/abcd-EFGH?x=1"),
            "abcdefgh"
        );
    }
}
