//! SDP offers as the SFU handles them (`media_offer`): an answer or an error, never a panic,
//! and every answer passes the strict reader.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ruang_server::sfu::answer::{finish, problems};
use ruang_server::sfu::{answer_offer, offer::inspect};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = inspect(text);
    if let Ok(answer) = answer_offer(text) {
        assert!(problems(&answer).is_empty(), "{answer}");
    }
    let once = finish(text);
    assert_eq!(finish(&once), once);
});
