//! Checks the shape of a client's SDP offer before str0m negotiates it (pure text parsing):
//! audio m-lines only, Opus offered on each, at most one sending m-line (the microphone),
//! and the `recvonly` m-lines (the slots the server forwards speakers on), in order.

/// What the offer asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferShape {
    /// Mid of the `sendonly`/`sendrecv` m-line (the microphone), if any.
    pub mic: Option<String>,
    /// Mids of the `recvonly` m-lines, in offer order.
    pub slots: Vec<String>,
}

/// Most `recvonly` m-lines an offer may have.
pub const MAX_SLOTS: usize = 16;

pub fn inspect(sdp: &str) -> Result<OfferShape, String> {
    let mut sections: Vec<Vec<&str>> = Vec::new();
    for line in sdp.lines().map(str::trim) {
        if line.starts_with("m=") {
            sections.push(vec![line]);
        } else if let Some(s) = sections.last_mut() {
            s.push(line);
        }
    }
    if sections.is_empty() {
        return Err("the offer has no m-lines".into());
    }
    let mut shape = OfferShape {
        mic: None,
        slots: Vec::new(),
    };
    for (i, lines) in sections.iter().enumerate() {
        let mut m = lines[0][2..].split_whitespace();
        let kind = m.next().unwrap_or("");
        let port = m.next().unwrap_or("");
        if kind != "audio" {
            return Err(format!(
                "m-line {i} is {kind:?}: only audio m-lines are accepted"
            ));
        }
        if port == "0" {
            continue; // rejected / stopped m-line
        }
        let attr = |name: &str| {
            lines
                .iter()
                .find_map(|l| l.strip_prefix("a=").and_then(|a| a.strip_prefix(name)))
        };
        let Some(mid) = attr("mid:").map(str::trim) else {
            return Err(format!("m-line {i} has no a=mid"));
        };
        if mid.is_empty() || mid.len() > 16 {
            return Err(format!("m-line {i}: a=mid must be 1 to 16 characters"));
        }
        let opus = lines.iter().any(|l| {
            l.strip_prefix("a=rtpmap:")
                .and_then(|r| r.split_whitespace().nth(1))
                .is_some_and(|c| c.to_ascii_lowercase().starts_with("opus/48000"))
        });
        if !opus {
            return Err(format!(
                "m-line {i} (mid {mid}) does not offer opus/48000/2"
            ));
        }
        let dir = ["sendonly", "recvonly", "sendrecv", "inactive"]
            .into_iter()
            .find(|d| lines.iter().any(|l| l.strip_prefix("a=") == Some(*d)))
            .unwrap_or("sendrecv");
        match dir {
            "sendonly" | "sendrecv" => {
                if shape.mic.is_some() {
                    return Err("at most one sendonly (microphone) m-line is accepted".into());
                }
                shape.mic = Some(mid.to_owned());
            }
            "recvonly" => shape.slots.push(mid.to_owned()),
            _ => {}
        }
    }
    if shape.slots.len() > MAX_SLOTS {
        return Err(format!("at most {MAX_SLOTS} recvonly m-lines are accepted"));
    }
    if shape.mic.is_none() && shape.slots.is_empty() {
        return Err("the offer neither sends nor receives audio".into());
    }
    Ok(shape)
}

/// Whether the m-line `mid` of an offer asks for generic NACK feedback on its Opus payload
/// type (`a=rtcp-fb:PT nack` or `a=rtcp-fb:* nack`; `nack pli` is another thing).
pub fn offers_opus_nack(sdp: &str, mid: &str) -> bool {
    let mut in_section = false;
    let mut section: Vec<&str> = Vec::new();
    for line in sdp.lines().map(str::trim) {
        if line.starts_with("m=") {
            if in_section {
                break;
            }
            section.clear();
        }
        section.push(line);
        if line.strip_prefix("a=mid:").map(str::trim) == Some(mid) {
            in_section = true;
        }
    }
    if !in_section {
        return false;
    }
    let opus: Vec<&str> = section
        .iter()
        .filter_map(|l| {
            let (pt, codec) = l.strip_prefix("a=rtpmap:")?.split_once(' ')?;
            codec
                .to_ascii_lowercase()
                .starts_with("opus/48000")
                .then_some(pt)
        })
        .collect();
    section.iter().any(|l| {
        l.strip_prefix("a=rtcp-fb:")
            .and_then(|r| r.split_once(' '))
            .is_some_and(|(pt, fb)| fb.trim() == "nack" && (pt == "*" || opus.contains(&pt)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nack_is_read_from_the_mic_section_only() {
        let o = offer(&[("0", "sendonly"), ("1", "recvonly")]);
        assert!(offers_opus_nack(&o, "0"));
        assert!(offers_opus_nack(&o, "1"));
        assert!(!offers_opus_nack(&o, "9"), "no such m-line");
        let without = o.replacen("a=rtcp-fb:111 nack\r\n", "a=rtcp-fb:111 nack pli\r\n", 1);
        assert!(!offers_opus_nack(&without, "0"));
        assert!(offers_opus_nack(&without, "1"));
        let star = without.replacen("a=rtcp-fb:111 nack pli", "a=rtcp-fb:* nack", 1);
        assert!(offers_opus_nack(&star, "0"));
        let other_pt = o.replacen("a=rtcp-fb:111 nack", "a=rtcp-fb:9 nack", 1);
        assert!(!offers_opus_nack(&other_pt, "0"));
    }

    fn section(mid: &str, dir: &str) -> String {
        format!(
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:{mid}\r\na={dir}\r\n\
             a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
             a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=rtcp-fb:111 nack\r\n"
        )
    }

    fn offer(sections: &[(&str, &str)]) -> String {
        let mut s =
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n".to_owned();
        for (mid, dir) in sections {
            s.push_str(&section(mid, dir));
        }
        s
    }

    #[test]
    fn mic_and_slots() {
        let shape = inspect(&offer(&[
            ("0", "sendonly"),
            ("1", "recvonly"),
            ("2", "recvonly"),
        ]))
        .unwrap();
        assert_eq!(shape.mic.as_deref(), Some("0"));
        assert_eq!(shape.slots, vec!["1", "2"]);
        // A listen-only browser: no microphone m-line.
        let shape = inspect(&offer(&[("a", "recvonly")])).unwrap();
        assert_eq!(shape.mic, None);
        assert_eq!(shape.slots, vec!["a"]);
        // sendrecv counts as the microphone.
        let shape = inspect(&offer(&[("m", "sendrecv")])).unwrap();
        assert_eq!(shape.mic.as_deref(), Some("m"));
    }

    #[test]
    fn refused_shapes() {
        assert!(inspect("").is_err());
        assert!(inspect("v=0\r\n").is_err());
        assert!(inspect(&offer(&[("0", "sendonly"), ("1", "sendonly")])).is_err());
        assert!(inspect(&offer(&[("0", "inactive")])).is_err());
        let video = offer(&[("0", "sendonly")]).replace("m=audio", "m=video");
        assert!(inspect(&video).is_err());
        let pcmu = offer(&[("0", "sendonly")]).replace("opus/48000/2", "PCMU/8000");
        assert!(inspect(&pcmu).is_err());
        let no_mid = offer(&[("0", "sendonly")]).replace("a=mid:0\r\n", "");
        assert!(inspect(&no_mid).is_err());
        let many: Vec<(String, &str)> = (0..17).map(|i| (i.to_string(), "recvonly")).collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(m, d)| (m.as_str(), *d)).collect();
        assert!(inspect(&offer(&many)).is_err());
    }
}
