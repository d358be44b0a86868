//! Invite codes and links as people type and paste them, and room links from chat apps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ruang_client::api::parse_room_link;
use ruang_proto::normalize_invite_code;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let code = normalize_invite_code(text);
    assert_eq!(normalize_invite_code(&code), code);
    assert!(!code.chars().any(|c| c.is_whitespace() || c == '-'));
    if let Some((id, _token)) = parse_room_link(text) {
        assert!(!id.is_empty());
    }
});
