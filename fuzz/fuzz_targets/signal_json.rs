//! The signalling JSON a WebSocket peer sends (and what a client reads from a server).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ruang_proto::{ClientEnvelope, RoomEvent, ServerMessage};

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = serde_json::from_slice::<ClientEnvelope>(data) {
        // What decodes must encode and decode to the same message.
        let text = serde_json::to_string(&env).expect("encodes");
        let back: ClientEnvelope = serde_json::from_str(&text).expect("decodes again");
        assert_eq!(back, env);
    }
    let _ = serde_json::from_slice::<ServerMessage>(data);
    let _ = serde_json::from_slice::<RoomEvent>(data);
});
