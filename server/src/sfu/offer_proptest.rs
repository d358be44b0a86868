//! Property tests of what the SFU does with a client's SDP offer (outside input: any member
//! can send any text as `media_offer`): arbitrary text, offers built from real SDP lines in
//! any order, and mutated valid offers are answered or refused with an error, never a panic;
//! valid offers of every allowed shape are answered, and every answer passes the strict
//! reader of `answer::problems`.

use super::answer::{finish, problems, str0m_tests::OFFER};
use super::engine::negotiate;
use super::offer::{inspect, MAX_SLOTS};
use proptest::prelude::*;
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use str0m::config::{CryptoProvider, DtlsCert};

fn crypto() -> &'static (Arc<CryptoProvider>, DtlsCert) {
    static CRYPTO: OnceLock<(Arc<CryptoProvider>, DtlsCert)> = OnceLock::new();
    CRYPTO.get_or_init(|| {
        let provider = Arc::new(str0m::crypto::from_feature_flags());
        let cert = provider.dtls_provider.generate_certificate().unwrap();
        (provider, cert)
    })
}

/// Runs the SFU's whole offer path; returns the answer, checked, if the offer was accepted.
fn negotiate_text(sdp: &str) -> Option<String> {
    let (provider, cert) = crypto();
    let local = "127.0.0.1:8443".parse().unwrap();
    match negotiate(sdp, provider, cert, local, Some(local), Instant::now()) {
        Ok(n) => {
            let p = problems(&n.answer);
            assert!(p.is_empty(), "{p:?} in\n{}", n.answer);
            assert_eq!(n.slots.len(), n.shape.slots.len());
            Some(n.answer)
        }
        Err(e) => {
            assert!(!e.is_empty());
            None
        }
    }
}

const FINGERPRINT: &str = "a=fingerprint:sha-256 9D:2F:8A:37:5E:7A:53:A1:0F:2C:9B:6D:11:8E:0C:4A:FB:36:21:90:7D:5A:C3:E8:42:16:B9:70:DE:55:03:6C";

/// A valid offer: an optional microphone and `slots` recvonly m-lines, with these mids and
/// this Opus payload type.
fn offer(mic: bool, slots: usize, mids: &[String], pt: u8) -> String {
    let n = usize::from(mic) + slots;
    let mids: Vec<&str> = mids.iter().take(n).map(String::as_str).collect();
    let mut s = format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE {}\r\n",
        mids.join(" ")
    );
    for (i, mid) in mids.iter().enumerate() {
        let dir = if mic && i == 0 {
            "sendonly"
        } else {
            "recvonly"
        };
        s.push_str(&format!(
            "m=audio 9 UDP/TLS/RTP/SAVPF {pt}\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\n\
             a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n{FINGERPRINT}\r\na=setup:actpass\r\na=mid:{mid}\r\n\
             a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na={dir}\r\na=rtcp-mux\r\n\
             a=rtpmap:{pt} opus/48000/2\r\na=rtcp-fb:{pt} nack\r\na=fmtp:{pt} minptime=10;useinbandfec=1\r\n"
        ));
    }
    s
}

/// SDP lines a hostile or broken client might send, valid and not.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(OFFER.lines().map(str::to_owned).collect::<Vec<_>>()),
        prop::sample::select(vec![
            "m=video 9 UDP/TLS/RTP/SAVPF 96".to_owned(),
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel".to_owned(),
            "m=audio 0 UDP/TLS/RTP/SAVPF 111".to_owned(),
            "m=audio".to_owned(),
            "m=".to_owned(),
            "a=mid:".to_owned(),
            "a=rtpmap:111".to_owned(),
            "a=rtpmap:999999999999 opus/48000/2".to_owned(),
            "a=candidate:1 1 udp 1 10.0.0.1 1 typ host".to_owned(),
            "a=ssrc:4294967295 cname:x".to_owned(),
            "a=ssrc-group:FID 1 2".to_owned(),
            "a=extmap:15 urn:ietf:params:rtp-hdrext:sdes:mid".to_owned(),
            "a=simulcast:send 1;2".to_owned(),
            "a=rid:1 send".to_owned(),
            "a=setup:active".to_owned(),
            "a=sendrecv".to_owned(),
            "a=inactive".to_owned(),
        ]),
        "[a-z]=[ -~]{0,40}",
        "m=audio [0-9]{1,6} [A-Z/]{0,20} [0-9 ]{0,12}",
        "a=(mid|rtpmap|fmtp|extmap|ssrc|rtcp-fb|group|msid):[ -~]{0,30}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_is_refused_not_a_panic(text in any::<String>()) {
        prop_assert!(negotiate_text(&text).is_none());
        let _ = inspect(&text);
        let _ = finish(&text);
    }

    #[test]
    fn offers_of_real_lines_in_any_order_never_panic(
        lines in prop::collection::vec(line(), 0..40),
        crlf in any::<bool>(),
    ) {
        let sep = if crlf { "\r\n" } else { "\n" };
        let text = format!("v=0{sep}{}{sep}", lines.join(sep));
        negotiate_text(&text);
    }

    #[test]
    fn mutated_valid_offers_never_panic(
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..4), 1..6),
    ) {
        let mut bytes = OFFER.as_bytes().to_vec();
        for (i, b, op) in edits {
            let n = bytes.len();
            if n == 0 {
                break;
            }
            match op {
                0 => bytes[i % n] = b,
                1 => bytes.insert(i % (n + 1), b),
                2 => { bytes.remove(i % n); }
                _ => bytes.truncate(i % (n + 1)),
            }
        }
        negotiate_text(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn valid_offers_of_every_shape_are_answered(
        mic in any::<bool>(),
        slots in 0usize..=MAX_SLOTS,
        mids in prop::collection::hash_set("[a-z0-9]{1,16}", MAX_SLOTS + 1),
        pt in prop_oneof![Just(111u8), 96u8..=127],
    ) {
        prop_assume!(mic || slots > 0);
        let mids: Vec<String> = mids.into_iter().collect();
        let text = offer(mic, slots, &mids, pt);
        let answer = negotiate_text(&text);
        prop_assert!(answer.is_some(), "refused:\n{}", text);
        let answer = answer.unwrap();
        prop_assert_eq!(answer.matches("m=audio").count(), usize::from(mic) + slots);
        prop_assert_eq!(answer.matches("a=ssrc:").count() / 2, slots);
    }

    #[test]
    fn finishing_is_idempotent(text in any::<String>()) {
        let once = finish(&text);
        prop_assert_eq!(finish(&once), once);
    }
}

/// More slots than allowed are refused.
#[test]
fn too_many_slots_are_refused() {
    let mids: Vec<String> = (0..=MAX_SLOTS + 1).map(|i| i.to_string()).collect();
    assert!(negotiate_text(&offer(false, MAX_SLOTS + 1, &mids, 111)).is_none());
}
