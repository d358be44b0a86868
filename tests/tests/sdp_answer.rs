//! The SFU's SDP answer as a strict stack reads it, through the real server: every live
//! m-line carries the server's host candidate and `a=end-of-candidates`, nothing announces
//! trickle ICE (the server is ICE-lite and never trickles), RTCP is muxed, and each slot is
//! answered `sendonly` with its SSRC; RED is answered where offered and NACK on the microphone
//! m-line only (protocol.md §8.5). That real clients connect with this answer is shown by
//! the media tests (`media.rs`, the `webrtc` crate) and the browser tests (Chromium).

use ruang_proto::RoomKind;
use ruang_server::sfu::answer::problems;
use ruang_tests::{Backend, TestServer};

const FINGERPRINT: &str = "a=fingerprint:sha-256 9D:2F:8A:37:5E:7A:53:A1:0F:2C:9B:6D:11:8E:0C:4A:FB:36:21:90:7D:5A:C3:E8:42:16:B9:70:DE:55:03:6C";

/// What a browser offers: a microphone and `slots` recvonly m-lines, bundled, trickle-capable.
fn browser_offer(slots: usize) -> String {
    let mids: Vec<String> = (0..=slots).map(|i| i.to_string()).collect();
    let mut s = format!(
        "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
         a=group:BUNDLE {}\r\na=msid-semantic: WMS\r\n",
        mids.join(" ")
    );
    for mid in &mids {
        let dir = if mid == "0" { "sendonly" } else { "recvonly" };
        s.push_str(&format!(
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
             a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=ice-options:trickle\r\n\
             {FINGERPRINT}\r\na=setup:actpass\r\na=mid:{mid}\r\n\
             a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na={dir}\r\na=rtcp-mux\r\n\
             a=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 nack\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"
        ));
        if dir == "sendonly" {
            s.push_str("a=ssrc:1001 cname:soak\r\n");
        }
    }
    s
}

#[tokio::test]
async fn every_m_line_has_the_candidate_and_no_trickle() {
    let srv = TestServer::start(Backend::Sqlite).await;
    let admin = srv.admin("root").await;
    let room = admin.create_room("SDP", RoomKind::Open).await.unwrap();
    let session = srv.join(&admin, room.id.as_str()).await;
    let answer = session
        .media_offer(browser_offer(4))
        .await
        .expect("the offer is answered");
    eprintln!("{answer}");
    assert_eq!(problems(&answer), Vec::<String>::new(), "{answer}");
    assert!(answer.contains("a=ice-lite\r\n"));
    assert!(!answer.contains("trickle"));

    let sections: Vec<&str> = answer.split("\r\nm=").skip(1).collect();
    assert_eq!(sections.len(), 5);
    let candidates: Vec<Vec<&str>> = sections
        .iter()
        .map(|s| {
            s.lines()
                .filter(|l| l.starts_with("a=candidate:"))
                .collect()
        })
        .collect();
    for (i, (s, c)) in sections.iter().zip(&candidates).enumerate() {
        // The same two host candidates everywhere: the SFU's UDP port, and its passive
        // ICE-TCP candidate (for clients whose UDP is blocked), which ranks below UDP.
        assert_eq!(c, &candidates[0], "m-line {i}");
        assert_eq!(c.len(), 2, "m-line {i}");
        let fields: Vec<Vec<&str>> = c.iter().map(|l| l.split_whitespace().collect()).collect();
        let udp = fields
            .iter()
            .find(|f| f[2].eq_ignore_ascii_case("udp"))
            .expect("a UDP candidate");
        let tcp = fields
            .iter()
            .find(|f| f[2].eq_ignore_ascii_case("tcp"))
            .expect("a TCP candidate");
        assert_eq!(udp[6..8], ["typ", "host"]);
        assert_eq!(tcp[6..10], ["typ", "host", "tcptype", "passive"]);
        let prio = |f: &Vec<&str>| f[3].parse::<u32>().unwrap();
        assert!(prio(udp) > prio(tcp), "UDP is preferred: {c:?}");
        assert_eq!(udp[4], tcp[4], "the same address");
        assert!(s.contains("a=rtcp-mux\r\n"), "m-line {i} muxes RTCP");
        if i == 0 {
            assert!(s.contains("a=recvonly\r\n"), "the microphone is received");
        } else {
            assert!(s.contains("a=sendonly\r\n"), "slot {i} is sent");
            assert!(
                s.lines().any(|l| l.starts_with("a=ssrc:")),
                "slot {i} lists its SSRC"
            );
        }
    }
    let ssrcs: std::collections::HashSet<&str> = sections[1..]
        .iter()
        .filter_map(|s| s.lines().find_map(|l| l.strip_prefix("a=ssrc:")))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(ssrcs.len(), 4, "one SSRC per slot");
}

/// The browser offer with RED (RFC 2198) on every m-line, as Chrome offers it.
fn offer_with_red(slots: usize) -> String {
    browser_offer(slots)
        .replace(
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111 63\r\n",
        )
        .replace(
            "a=fmtp:111 minptime=10;useinbandfec=1\r\n",
            "a=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n",
        )
}

#[tokio::test]
async fn red_is_answered_where_offered_and_nack_only_on_the_microphone() {
    let srv = TestServer::start(Backend::Sqlite).await;
    let admin = srv.admin("root").await;
    let room = admin.create_room("RED", RoomKind::Open).await.unwrap();
    let session = srv.join(&admin, room.id.as_str()).await;
    let answer = session
        .media_offer(offer_with_red(2))
        .await
        .expect("the offer is answered");
    eprintln!("{answer}");
    assert_eq!(problems(&answer), Vec::<String>::new(), "{answer}");
    let sections: Vec<&str> = answer.split("\r\nm=").skip(1).collect();
    assert_eq!(sections.len(), 3);
    for (i, s) in sections.iter().enumerate() {
        let has = |line: &str| s.lines().any(|l| l == line);
        assert!(has("a=rtpmap:63 red/48000/2"), "m-line {i}: {s}");
        assert!(has("a=fmtp:63 111/111"), "m-line {i}: {s}");
        let nack = has("a=rtcp-fb:111 nack");
        assert_eq!(
            nack,
            i == 0,
            "NACK on the microphone m-line only (m-line {i})"
        );
    }
    // Without RED in the offer there is none in the answer (plain Opus only).
    let session = srv.join(&admin, room.id.as_str()).await;
    let plain = session
        .media_offer(browser_offer(2))
        .await
        .expect("the offer is answered");
    assert!(!plain.contains("red/48000"), "{plain}");
    assert_eq!(plain.matches("a=rtcp-fb:111 nack").count(), 1, "{plain}");
}
