//! Finishes the SDP answer str0m writes so that it says exactly what the server does
//! (pure text processing; str0m has no setting for these):
//!
//! - str0m puts the local candidate only in the first m-line. A stack that follows the SDP
//!   rules strictly (RFC 8839 §5.1: each media description has its own candidates unless it
//!   is bundled and not the first) may never start ICE on the others, so **every** m-line that
//!   is not rejected (port 0) gets the server's candidate(s);
//! - each such m-line ends its candidates with `a=end-of-candidates` (the server gathers
//!   nothing later: it is ICE-lite with host candidates only: UDP, and passive TCP);
//! - `a=ice-options:trickle` is removed: the server never trickles;
//! - with [`with_nack`], the microphone m-line gets `a=rtcp-fb:PT nack` on its Opus payload
//!   type (str0m has no per-m-line setting, and on the `recvonly` slots NACKs would only
//!   make listeners send feedback the SFU cannot answer: str0m resends only through RTX).
//!
//! Every other line is kept as str0m wrote it, in order.

/// The answer `sdp` with candidates in every live m-line, `a=end-of-candidates` after them and
/// no `trickle` ICE option. Lines end with CRLF.
pub fn finish(sdp: &str) -> String {
    let lines: Vec<&str> = sdp.lines().map(|l| l.trim_end_matches('\r')).collect();
    let candidates: Vec<&str> = {
        let mut seen: Vec<&str> = Vec::new();
        for l in &lines {
            if l.starts_with("a=candidate:") && !seen.contains(l) {
                seen.push(l);
            }
        }
        seen
    };
    let mut out = String::with_capacity(sdp.len() + 256);
    let push = |out: &mut String, l: &str| {
        out.push_str(l);
        out.push_str("\r\n");
    };
    let mut i = 0;
    // Session part: everything before the first m-line.
    while i < lines.len() && !lines[i].starts_with("m=") {
        if !is_dropped(lines[i]) && !lines[i].is_empty() {
            push(&mut out, lines[i]);
        }
        i += 1;
    }
    while i < lines.len() {
        let m_line = lines[i];
        let end = lines[i + 1..]
            .iter()
            .position(|l| l.starts_with("m="))
            .map_or(lines.len(), |p| i + 1 + p);
        let body = &lines[i + 1..end];
        let rejected = m_line.split_whitespace().nth(1) == Some("0");
        push(&mut out, m_line);
        // The candidates go right after the connection line (or first thing when there is none).
        let insert_after = body.iter().position(|l| l.starts_with("c="));
        let mut inserted = rejected;
        if insert_after.is_none() && !inserted {
            push_candidates(&mut out, &candidates);
            inserted = true;
        }
        for (j, l) in body.iter().enumerate() {
            if l.starts_with("a=candidate:") || is_dropped(l) || l.is_empty() {
                continue;
            }
            push(&mut out, l);
            if !inserted && Some(j) == insert_after {
                push_candidates(&mut out, &candidates);
                inserted = true;
            }
        }
        i = end;
    }
    out
}

/// The answer with `a=rtcp-fb:PT nack` added after the Opus `a=rtpmap` of the m-line `mid`
/// (if it is not there already). Lines end with CRLF.
pub fn with_nack(sdp: &str, mid: &str) -> String {
    let lines: Vec<&str> = sdp.lines().map(|l| l.trim_end_matches('\r')).collect();
    let mut out = String::with_capacity(sdp.len() + 32);
    let mut start = 0;
    while start < lines.len() {
        let end = lines[start + 1..]
            .iter()
            .position(|l| l.starts_with("m="))
            .map_or(lines.len(), |p| start + 1 + p);
        let section = &lines[start..end];
        let ours = lines[start].starts_with("m=")
            && section
                .iter()
                .any(|l| l.strip_prefix("a=mid:") == Some(mid));
        let opus_pt = section.iter().find_map(|l| {
            let (pt, codec) = l.strip_prefix("a=rtpmap:")?.split_once(' ')?;
            codec
                .to_ascii_lowercase()
                .starts_with("opus/48000")
                .then_some(pt)
        });
        let nack = opus_pt.map(|pt| format!("a=rtcp-fb:{pt} nack"));
        let missing = ours
            && nack
                .as_ref()
                .is_some_and(|n| !section.contains(&n.as_str()));
        for l in section {
            out.push_str(l);
            out.push_str("\r\n");
            if missing && opus_pt.is_some_and(|pt| l.starts_with(&format!("a=rtpmap:{pt} "))) {
                out.push_str(nack.as_deref().unwrap_or_default());
                out.push_str("\r\n");
            }
        }
        start = end;
    }
    out
}

fn push_candidates(out: &mut String, candidates: &[&str]) {
    for c in candidates {
        out.push_str(c);
        out.push_str("\r\n");
    }
    out.push_str("a=end-of-candidates\r\n");
}

/// Lines `finish` removes (and writes again itself where they belong).
fn is_dropped(line: &str) -> bool {
    line == "a=end-of-candidates"
        || line
            .strip_prefix("a=ice-options:")
            .is_some_and(|opts| opts.split_whitespace().any(|o| o == "trickle"))
}

/// What a strict reader finds wrong with an answer: every live m-line must carry at least one
/// candidate and `a=end-of-candidates`, and no line may announce trickle ICE. Used by the
/// tests (unit and end-to-end).
pub fn problems(sdp: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut sections: Vec<Vec<&str>> = Vec::new();
    for l in sdp.lines().map(|l| l.trim_end_matches('\r')) {
        if l.starts_with("a=ice-options:") && l.contains("trickle") {
            problems.push(format!("announces trickle ICE: {l}"));
        }
        if l.starts_with("m=") {
            sections.push(vec![l]);
        } else if let Some(s) = sections.last_mut() {
            s.push(l);
        }
    }
    if sections.is_empty() {
        problems.push("no m-line".into());
    }
    for (i, s) in sections.iter().enumerate() {
        if s[0].split_whitespace().nth(1) == Some("0") {
            continue;
        }
        let cands = s.iter().filter(|l| l.starts_with("a=candidate:")).count();
        if cands == 0 {
            problems.push(format!("m-line {i} has no candidate"));
        }
        match s.iter().position(|l| *l == "a=end-of-candidates") {
            None => problems.push(format!("m-line {i} has no a=end-of-candidates")),
            Some(end) => {
                if s[end..].iter().any(|l| l.starts_with("a=candidate:")) {
                    problems.push(format!("m-line {i} has a candidate after its end"));
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of what str0m 0.25 writes (candidate in the first m-line only, trickle).
    const STR0M: &str = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
        a=group:BUNDLE 0 1 2\r\na=msid-semantic: WMS\r\na=ice-lite\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n\
        a=candidate:1 1 udp 2130706175 127.0.0.1 8443 typ host\r\n\
        a=ice-ufrag:u\r\na=ice-pwd:p\r\na=ice-options:trickle\r\na=setup:passive\r\na=mid:0\r\na=recvonly\r\n\
        a=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n\
        a=ice-ufrag:u\r\na=ice-pwd:p\r\na=ice-options:trickle\r\na=setup:passive\r\na=mid:1\r\na=sendonly\r\n\
        a=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=ssrc:1234 cname:x\r\n\
        m=audio 0 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\na=inactive\r\n";

    #[test]
    fn nack_goes_on_the_named_m_line_only_and_once() {
        let out = with_nack(STR0M, "0");
        assert_eq!(out.matches("a=rtcp-fb:111 nack").count(), 1, "{out}");
        assert!(out.contains("a=mid:0\r\na=recvonly\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 nack\r\n"));
        assert_eq!(with_nack(&out, "0"), out, "idempotent");
        // Nothing else changed.
        assert_eq!(
            out.replace("a=rtcp-fb:111 nack\r\n", ""),
            with_nack(STR0M, "nope")
        );
        assert_eq!(
            with_nack(STR0M, "nope").lines().count(),
            STR0M.lines().count()
        );
    }

    #[test]
    fn str0m_output_has_the_problems_and_finish_fixes_them() {
        let before = problems(STR0M);
        assert!(before
            .iter()
            .any(|p| p.contains("m-line 1 has no candidate")));
        assert!(before.iter().any(|p| p.contains("end-of-candidates")));
        assert!(before.iter().any(|p| p.contains("trickle")));
        let after = finish(STR0M);
        assert_eq!(problems(&after), Vec::<String>::new(), "{after}");
        // Nothing else changed: the same lines in the same order, less the removed ones.
        let kept: Vec<&str> = after
            .lines()
            .filter(|l| !l.starts_with("a=candidate:") && *l != "a=end-of-candidates")
            .collect();
        let want: Vec<&str> = STR0M
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.starts_with("a=candidate:") && !l.contains("trickle"))
            .collect();
        assert_eq!(kept, want);
        // Candidate right after c=, once per live m-line; the rejected one gets none.
        assert_eq!(after.matches("a=candidate:").count(), 2);
        assert_eq!(after.matches("a=end-of-candidates").count(), 2);
        assert!(after.contains(
            "c=IN IP4 0.0.0.0\r\na=candidate:1 1 udp 2130706175 127.0.0.1 8443 typ host\r\na=end-of-candidates\r\n"
        ));
        assert!(after.ends_with("a=inactive\r\n"));
        // Idempotent.
        assert_eq!(finish(&after), after);
    }
}

/// The same, with the answer str0m really writes for a browser-like offer.
#[cfg(test)]
pub(crate) mod str0m_tests {
    use super::*;
    use std::time::Instant;
    use str0m::change::SdpOffer;
    use str0m::{Candidate, Rtc};

    pub(crate) const OFFER: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        a=group:BUNDLE 0 1 2\r\na=msid-semantic: WMS\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
        a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=ice-options:trickle\r\n\
        a=fingerprint:sha-256 9D:2F:8A:37:5E:7A:53:A1:0F:2C:9B:6D:11:8E:0C:4A:FB:36:21:90:7D:5A:C3:E8:42:16:B9:70:DE:55:03:6C\r\n\
        a=setup:actpass\r\na=mid:0\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
        a=sendonly\r\na=msid:- mic\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 nack\r\n\
        a=fmtp:111 minptime=10;useinbandfec=1\r\na=ssrc:1001 cname:c\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
        a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=ice-options:trickle\r\n\
        a=fingerprint:sha-256 9D:2F:8A:37:5E:7A:53:A1:0F:2C:9B:6D:11:8E:0C:4A:FB:36:21:90:7D:5A:C3:E8:42:16:B9:70:DE:55:03:6C\r\n\
        a=setup:actpass\r\na=mid:1\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
        a=recvonly\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 nack\r\n\
        a=fmtp:111 minptime=10;useinbandfec=1\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
        a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=ice-options:trickle\r\n\
        a=fingerprint:sha-256 9D:2F:8A:37:5E:7A:53:A1:0F:2C:9B:6D:11:8E:0C:4A:FB:36:21:90:7D:5A:C3:E8:42:16:B9:70:DE:55:03:6C\r\n\
        a=setup:actpass\r\na=mid:2\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
        a=recvonly\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 nack\r\n\
        a=fmtp:111 minptime=10;useinbandfec=1\r\n";

    fn raw_answer() -> String {
        let provider = std::sync::Arc::new(str0m::crypto::from_feature_flags());
        let mut rtc = Rtc::builder()
            .set_ice_lite(true)
            .set_crypto_provider(provider)
            .clear_codecs()
            .enable_opus(true, false)
            .build(Instant::now());
        rtc.add_local_candidate(Candidate::host("127.0.0.1:8443".parse().unwrap(), "udp").unwrap());
        let offer = SdpOffer::from_sdp_string(OFFER).unwrap();
        rtc.sdp_api().accept_offer(offer).unwrap().to_sdp_string()
    }

    #[test]
    fn the_real_answer_is_finished() {
        let raw = raw_answer();
        assert!(!problems(&raw).is_empty(), "str0m fixed it itself:\n{raw}");
        let done = finish(&raw);
        assert_eq!(problems(&done), Vec::<String>::new(), "{done}");
        // str0m parses its finished answer again (a client stack would).
        str0m::change::SdpAnswer::from_sdp_string(&done).expect("valid SDP");
        // The recvonly slots are answered sendonly, each with its SSRC; RTCP is muxed.
        let sections: Vec<&str> = done.split("m=audio").skip(1).collect();
        assert_eq!(sections.len(), 3);
        for s in &sections {
            assert!(s.contains("a=rtcp-mux\r\n"), "{s}");
        }
        assert!(sections[0].contains("a=recvonly"), "{}", sections[0]);
        for s in &sections[1..] {
            assert!(s.contains("a=sendonly"), "{s}");
            assert!(s.contains("a=ssrc:"), "{s}");
        }
        eprintln!("{done}");
    }
}
