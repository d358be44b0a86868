//! The link pages' query strings and path tokens (`/r/ID?t=TOKEN&listen=1`, `/i/CODE`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ruang_server::service::{plausible, query_value};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for key in ["t", "listen", ""] {
        if let Some(v) = query_value(Some(text), key) {
            assert!(!v.contains('&'));
        }
    }
    if plausible(text, 64) {
        assert!(text.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
    let _ = plausible(&ruang_proto::normalize_invite_code(text), 64);
});
