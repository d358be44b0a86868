//! Property tests of the parsers that take outside input in `ruang-proto`: the signalling
//! JSON (what a WebSocket peer sends) and invite-code normalisation (what a person types or
//! pastes). Arbitrary and mutated input never panics; valid messages round-trip.
//!
//! Case counts keep the whole file to a few seconds in a debug build.

use proptest::prelude::*;
use ruang_proto::{
    normalize_invite_code, ClientEnvelope, ClientMessage, CloseReason, ErrorCode, RoomEvent,
    ServerMessage, UserId,
};

/// Messages as clients and servers really send them (the mutation seeds).
const VALID: &[&str] = &[
    r#"{"type":"hello","protocol":1,"token":"abc","link_token":"0123456789abcdef01234567"}"#,
    r#"{"type":"raise_hand","req":1}"#,
    r#"{"type":"set_muted","muted":true,"req":2}"#,
    r#"{"type":"invite_to_speak","user":"m4ya7k2qxw3d","req":3}"#,
    r#"{"type":"leave","quiet":true}"#,
    r#"{"type":"audience","cursor":50,"limit":50,"req":4}"#,
    r#"{"type":"media_offer","req":5,"sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}"#,
    r#"{"type":"ping"}"#,
    r#"{"type":"ok","req":7}"#,
    r#"{"type":"error","req":5,"code":"bad_request","message":"no","fatal":false}"#,
    r#"{"type":"delta","seq":41,"event":{"kind":"levels","levels":[{"user":"m4ya7k2qxw3d","level":0.42}]}}"#,
    r#"{"type":"closing","reason":"room_ended"}"#,
    r#"{"type":"media_answer","req":5,"sdp":"v=0\r\n"}"#,
];

/// Decodes `bytes` every way a peer's frame is decoded; only errors, never a panic.
fn decode_all(bytes: &[u8]) {
    let _ = serde_json::from_slice::<ClientEnvelope>(bytes);
    let _ = serde_json::from_slice::<ServerMessage>(bytes);
    let _ = serde_json::from_slice::<RoomEvent>(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = serde_json::from_str::<ClientEnvelope>(text);
        let _ = serde_json::from_str::<ServerMessage>(text);
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // JSON-significant bytes more often than uniform bytes would give them.
    let byte = prop_oneof![
        any::<u8>(),
        prop::sample::select(b"{}[]\":,\\0123456789-eEtrufalsn ".to_vec()),
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Duplicate(a, b)),
    ]
}

fn mutate(mut v: Vec<u8>, ms: &[Mutation]) -> Vec<u8> {
    for m in ms {
        let n = v.len().max(1);
        match *m {
            Mutation::Flip(i, b) if !v.is_empty() => v[i % n] = b,
            Mutation::Insert(i, b) => v.insert(i % (v.len() + 1), b),
            Mutation::Remove(i) if !v.is_empty() => {
                v.remove(i % n);
            }
            Mutation::Truncate(i) => v.truncate(i % (v.len() + 1)),
            Mutation::Duplicate(a, b) if !v.is_empty() => {
                let (a, b) = (a % n, b % n);
                let (lo, hi) = (a.min(b), a.max(b));
                let piece: Vec<u8> = v[lo..hi].to_vec();
                v.splice(hi..hi, piece);
            }
            _ => {}
        }
    }
    v
}

fn user() -> impl Strategy<Value = UserId> {
    any::<String>().prop_map(UserId)
}

fn client_message() -> impl Strategy<Value = ClientMessage> {
    prop_oneof![
        (any::<u32>(), any::<String>(), any::<Option<String>>()).prop_map(
            |(protocol, token, link_token)| ClientMessage::Hello {
                protocol,
                token,
                link_token
            }
        ),
        Just(ClientMessage::RaiseHand),
        Just(ClientMessage::LowerHand),
        Just(ClientMessage::AcceptInvite),
        Just(ClientMessage::DeclineInvite),
        any::<bool>().prop_map(|muted| ClientMessage::SetMuted { muted }),
        Just(ClientMessage::LeaveStage),
        user().prop_map(|user| ClientMessage::InviteToSpeak { user }),
        user().prop_map(|user| ClientMessage::MoveToAudience { user }),
        user().prop_map(|user| ClientMessage::Mute { user }),
        user().prop_map(|user| ClientMessage::MakeModerator { user }),
        user().prop_map(|user| ClientMessage::Remove { user }),
        any::<bool>().prop_map(|enabled| ClientMessage::SetHandsEnabled { enabled }),
        Just(ClientMessage::EndRoom),
        any::<bool>().prop_map(|quiet| ClientMessage::Leave { quiet }),
        Just(ClientMessage::Sync),
        any::<String>().prop_map(|sdp| ClientMessage::MediaOffer { sdp }),
        (any::<u32>(), any::<u32>())
            .prop_map(|(cursor, limit)| ClientMessage::Audience { cursor, limit }),
        Just(ClientMessage::Ping),
    ]
}

fn server_message() -> impl Strategy<Value = ServerMessage> {
    let code = prop::sample::select(vec![
        ErrorCode::BadRequest,
        ErrorCode::InvalidJson,
        ErrorCode::PayloadTooLarge,
        ErrorCode::Forbidden,
        ErrorCode::HelloRequired,
        ErrorCode::UnknownMessage,
        ErrorCode::RoomEnded,
    ]);
    let reason = prop::sample::select(vec![
        CloseReason::RoomEnded,
        CloseReason::Removed,
        CloseReason::Left,
        CloseReason::Replaced,
        CloseReason::ServerShutdown,
    ]);
    prop_oneof![
        any::<u64>().prop_map(|req| ServerMessage::Ok { req }),
        (any::<Option<u64>>(), code, any::<String>(), any::<bool>()).prop_map(
            |(req, code, message, fatal)| ServerMessage::Error {
                req,
                code,
                message,
                fatal
            }
        ),
        Just(ServerMessage::Pong),
        (any::<Option<u64>>(), any::<String>())
            .prop_map(|(req, sdp)| ServerMessage::MediaAnswer { req, sdp }),
        reason.prop_map(|reason| ServerMessage::Closing { reason }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        decode_all(&bytes);
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        decode_all(text.as_bytes());
    }

    #[test]
    fn json_shaped_text_never_panics(text in r#"\{("[a-z_]{1,8}":(-?[0-9]{1,25}|"[a-z_ ]{0,10}"|true|null|\[\]|\{\}|1e999),?){0,6}\}"#) {
        decode_all(text.as_bytes());
    }

    #[test]
    fn mutated_valid_messages_never_panic(
        seed in prop::sample::select(VALID),
        ms in prop::collection::vec(mutation(), 1..8),
    ) {
        decode_all(&mutate(seed.as_bytes().to_vec(), &ms));
    }

    #[test]
    fn client_messages_round_trip(req in any::<Option<u64>>(), msg in client_message()) {
        let env = ClientEnvelope { req, msg };
        let text = serde_json::to_string(&env).unwrap();
        let back: ClientEnvelope = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back, env);
    }

    #[test]
    fn server_messages_round_trip(msg in server_message()) {
        let text = serde_json::to_string(&msg).unwrap();
        let back: ServerMessage = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back, msg);
    }

    #[test]
    fn invite_codes_normalise_to_a_fixed_point(input in any::<String>()) {
        let code = normalize_invite_code(&input);
        prop_assert!(!code.chars().any(|c| c.is_whitespace() || c == '-'));
        prop_assert!(!code.contains('?') && !code.contains('#'));
        prop_assert_eq!(normalize_invite_code(&code), code.clone());
    }

    #[test]
    fn invite_codes_survive_how_people_paste_them(
        code in "[a-z0-9]{4,24}",
        dashes in prop::collection::vec(any::<bool>(), 24),
        upper in any::<bool>(),
        host in "[a-z]{1,10}\\.[a-z]{2,3}",
        query in "(\\?[a-z=&0-9]{0,10})?(#[a-z]{0,5})?",
        space in "[ \t\n]{0,3}",
    ) {
        // Typed with dashes every few characters, maybe in capitals, with stray spaces.
        let mut typed = String::new();
        for (i, c) in code.chars().enumerate() {
            if i > 0 && dashes[i % dashes.len()] {
                typed.push('-');
            }
            typed.push(if upper { c.to_ascii_uppercase() } else { c });
        }
        let typed = format!("{space}{typed}{space}");
        prop_assert_eq!(normalize_invite_code(&typed), code.clone());
        // Pasted as a whole link.
        let link = format!("{space}https://{host}/i/{typed}{query}{space}");
        prop_assert_eq!(normalize_invite_code(&link), code);
    }
}
