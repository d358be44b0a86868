//! What the client offers: Opus 48000/2 on payload type 111 with in-band FEC, NACK feedback,
//! RFC 2198 RED (`red/48000/2` on payload type 63, fmtp `111/111`, as browsers offer it),
//! the RFC 6464 audio-level and the MID header extensions; one `sendonly` m-line for the
//! microphone followed by `slots` `recvonly` m-lines. Plus small SDP helpers.

use webrtc::peer_connection::{configure_nack, configure_rtcp_reports, MediaEngine, Registry};
use webrtc::peer_connection::{
    RTCConfiguration, RTCConfigurationBuilder, RTCIceServer, SettingEngine, SettingEngineBuilder,
};

use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};

/// Payload type of Opus in every offer.
pub const OPUS_PAYLOAD_TYPE: u8 = 111;
/// Payload type of RED (RFC 2198) wrapping Opus in every offer (browsers use 63 too).
pub const RED_PAYLOAD_TYPE: u8 = 63;
/// fmtp line of the Opus codec.
pub const OPUS_FMTP: &str = "minptime=10;useinbandfec=1";
/// RFC 6464 client-to-mixer audio level.
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
/// RFC 8843 MID, so the receiver can tell the bundled m-lines apart.
pub const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
/// Default number of `recvonly` slots: the SFU forwards at most this many speakers at once.
pub const DEFAULT_SLOTS: usize = 4;

/// The Opus codec as we negotiate it.
pub fn opus_codec() -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: opus_rtp_codec(),
        payload_type: OPUS_PAYLOAD_TYPE,
    }
}

pub(crate) fn opus_rtp_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "audio/opus".to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: OPUS_FMTP.to_owned(),
        rtcp_feedback: vec![RTCPFeedback {
            typ: "nack".to_owned(),
            parameter: String::new(),
        }],
    }
}

/// RED (RFC 2198) over Opus: `red/48000/2` with fmtp `111/111`.
pub fn red_codec() -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: "audio/red".to_owned(),
            clock_rate: 48_000,
            channels: 2,
            sdp_fmtp_line: format!("{OPUS_PAYLOAD_TYPE}/{OPUS_PAYLOAD_TYPE}"),
            rtcp_feedback: vec![],
        },
        payload_type: RED_PAYLOAD_TYPE,
    }
}

/// The payload type an SDP maps RED over Opus to (`a=rtpmap:PT red/48000/2`, first m-line
/// that has it), if the answer kept it.
pub fn red_payload_type(sdp: &str) -> Option<u8> {
    sdp.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("a=rtpmap:")?;
        let (pt, codec) = rest.split_once(' ')?;
        let codec = codec.trim().to_ascii_lowercase();
        if codec.starts_with("red/48000") {
            pt.parse().ok()
        } else {
            None
        }
    })
}

/// A media engine with only Opus (and RED over it) and our two header extensions, and the interceptors we
/// want (NACK generator and responder, sender and receiver reports). No TWCC, no video.
pub fn media_engine() -> webrtc::error::Result<(MediaEngine, Registry)> {
    let mut me = MediaEngine::default();
    me.register_codec(opus_codec(), RtpCodecKind::Audio)?;
    me.register_codec(red_codec(), RtpCodecKind::Audio)?;
    for uri in [AUDIO_LEVEL_URI, MID_URI] {
        me.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: uri.to_owned(),
            },
            RtpCodecKind::Audio,
            None,
        )?;
    }
    let registry = configure_nack(Registry::new(), &mut me);
    let registry = configure_rtcp_reports(registry);
    Ok((me, registry))
}

/// No STUN or TURN: the server is ICE-lite with a host candidate.
pub fn configuration(ice_servers: &[ruang_proto::IceServer]) -> RTCConfiguration {
    let servers: Vec<RTCIceServer> = ice_servers
        .iter()
        .filter_map(|s| {
            let urls: Vec<String> = s
                .urls
                .iter()
                .filter(|u| relays_over_udp(u))
                .cloned()
                .collect();
            (!urls.is_empty()).then(|| RTCIceServer {
                urls,
                username: s.username.clone(),
                credential: s.credential.clone(),
            })
        })
        .collect();
    RTCConfigurationBuilder::new()
        .with_ice_servers(servers)
        .build()
}

/// A STUN URL, or a TURN URL over UDP (the only TURN transport the stack has).
pub fn relays_over_udp(url: &str) -> bool {
    let transport = url
        .split_once('?')
        .map(|(_, q)| q)
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("transport=")));
    (url.starts_with("turn:") && transport.is_none_or(|t| t.eq_ignore_ascii_case("udp")))
        || url.starts_with("stun:")
}

/// Pause between two ICE connectivity checks while connecting.
///
/// The server is ICE-lite with one candidate, so the client (controlling) finds the pair with
/// its first check and nominates it with the next one. At the crate's default pace (200 ms)
/// that alone costs 400 ms before DTLS can start; RFC 8445 §14.2 allows a pace (Ta) down to
/// 5 ms, browsers use about 50 ms. 20 ms puts the nomination one round trip plus 20 ms after
/// the answer.
pub const ICE_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(20);
/// Checks per pair before it is given up: 75 × 20 ms keeps the crate's default patience of
/// about 1.5 s for slow or lossy first round trips (mobile networks).
pub const ICE_MAX_BINDING_REQUESTS: u16 = 75;

/// How long a working pair through a TURN relay waits before it may be chosen, in case a
/// direct one (the server's UDP or TCP candidate) works too. The stack's default (2 s,
/// inherited from pion) made every relayed join take over 2 s; a direct pair answers within
/// one round trip, so a few round trips of a mobile network are enough.
pub const RELAY_ACCEPTANCE_MIN_WAIT: std::time::Duration = std::time::Duration::from_millis(300);

/// Transport settings: fast ICE checks while connecting (see [`ICE_CHECK_INTERVAL`]), and a
/// short wait before settling for a relay ([`RELAY_ACCEPTANCE_MIN_WAIT`]).
pub fn setting_engine() -> SettingEngine {
    SettingEngineBuilder::new()
        .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), Some(ICE_MAX_BINDING_REQUESTS))
        .with_relay_acceptance_min_wait(Some(RELAY_ACCEPTANCE_MIN_WAIT))
        .build()
}

/// A passive TCP candidate taken out of a description (see [`split_passive_tcp`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpCandidate {
    /// `candidate:…` (the attribute value, as `addIceCandidate` takes it).
    pub candidate: String,
    pub mid: Option<String>,
    pub mline_index: u16,
}

/// `sdp` without its passive ICE-TCP candidate lines, and those candidates once each (with
/// the first m-line that had them): the stack connects to a passive candidate only when it
/// is added on its own. Line endings are kept.
pub fn split_passive_tcp(sdp: &str) -> (String, Vec<TcpCandidate>) {
    let mut out = String::with_capacity(sdp.len());
    let mut found: Vec<TcpCandidate> = Vec::new();
    let mut mline: Option<u16> = None;
    let mut mid: Option<String> = None;
    for line in sdp.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\r', '\n']);
        if bare.starts_with("m=") {
            mline = Some(mline.map_or(0, |i| i + 1));
            mid = None;
        } else if let Some(m) = bare.strip_prefix("a=mid:") {
            mid = Some(m.to_owned());
            // Candidates seen before this m-line's mid get it.
            for c in found.iter_mut() {
                if Some(c.mline_index) == mline && c.mid.is_none() {
                    c.mid = mid.clone();
                }
            }
        }
        if let Some(value) = bare.strip_prefix("a=") {
            let fields: Vec<&str> = value.split_whitespace().collect();
            let passive_tcp = value.starts_with("candidate:")
                && fields.get(2).is_some_and(|p| p.eq_ignore_ascii_case("tcp"))
                && fields
                    .windows(2)
                    .any(|w| w[0] == "tcptype" && w[1] == "passive");
            if passive_tcp {
                if !found.iter().any(|c| c.candidate == value) {
                    found.push(TcpCandidate {
                        candidate: value.to_owned(),
                        mid: mid.clone(),
                        mline_index: mline.unwrap_or(0),
                    });
                }
                continue;
            }
        }
        out.push_str(line);
    }
    (out, found)
}

/// The id an SDP maps `uri` to (`a=extmap:ID[/direction] URI`), from the first m-line that
/// has it. With BUNDLE every m-line must use the same id for the same extension.
pub fn extmap_id(sdp: &str, uri: &str) -> Option<u8> {
    sdp.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("a=extmap:")?;
        let (id, tail) = rest.split_once(' ')?;
        let id = id.split('/').next()?;
        let found = tail.split_whitespace().next()? == uri;
        if found {
            id.parse().ok()
        } else {
            None
        }
    })
}

/// One m-line of an SDP, as far as this client cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MLine {
    pub kind: String,
    pub mid: Option<String>,
    /// `sendrecv`, `sendonly`, `recvonly` or `inactive` (`sendrecv` when absent).
    pub direction: String,
    /// Payload types listed on the m-line.
    pub payload_types: Vec<u8>,
    /// `a=ssrc:` ids declared in the section (first occurrence of each).
    pub ssrcs: Vec<u32>,
    pub candidates: usize,
}

/// Splits an SDP into its m-lines.
pub fn mlines(sdp: &str) -> Vec<MLine> {
    let mut out: Vec<MLine> = Vec::new();
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            let mut parts = m.split_whitespace();
            let kind = parts.next().unwrap_or_default().to_owned();
            let payload_types = parts.skip(2).filter_map(|p| p.parse().ok()).collect();
            out.push(MLine {
                kind,
                mid: None,
                direction: "sendrecv".into(),
                payload_types,
                ssrcs: Vec::new(),
                candidates: 0,
            });
            continue;
        }
        let Some(cur) = out.last_mut() else { continue };
        if let Some(mid) = line.strip_prefix("a=mid:") {
            cur.mid = Some(mid.to_owned());
        } else if let Some(ssrc) = line.strip_prefix("a=ssrc:") {
            if let Some(id) = ssrc.split_whitespace().next().and_then(|s| s.parse().ok()) {
                if !cur.ssrcs.contains(&id) {
                    cur.ssrcs.push(id);
                }
            }
        } else if line.starts_with("a=candidate:") {
            cur.candidates += 1;
        } else if let Some(d) = line.strip_prefix("a=") {
            if matches!(d, "sendrecv" | "sendonly" | "recvonly" | "inactive") {
                cur.direction = d.to_owned();
            }
        }
    }
    out
}

/// Checks that an offer has the shape the server expects: audio only, one `sendonly`
/// m-line first, then `slots` `recvonly` m-lines, Opus on 111 everywhere.
pub fn check_offer(sdp: &str, slots: usize) -> Result<(), String> {
    let m = mlines(sdp);
    if m.len() != slots + 1 {
        return Err(format!("{} m-lines, expected {}", m.len(), slots + 1));
    }
    for (i, line) in m.iter().enumerate() {
        let want = if i == 0 { "sendonly" } else { "recvonly" };
        if line.kind != "audio" {
            return Err(format!("m-line {i} is {}", line.kind));
        }
        if line.direction != want {
            return Err(format!("m-line {i} is {}, expected {want}", line.direction));
        }
        if !line.payload_types.contains(&OPUS_PAYLOAD_TYPE) {
            return Err(format!("m-line {i} lacks payload type {OPUS_PAYLOAD_TYPE}"));
        }
    }
    if extmap_id(sdp, AUDIO_LEVEL_URI).is_none() {
        return Err("no audio-level extension".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = "v=0\r\n\
o=- 1 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=ice-lite\r\n\
a=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
a=mid:0\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=extmap:3/recvonly urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=recvonly\r\n\
a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 9\r\n\
a=mid:1\r\n\
a=sendonly\r\n\
a=ssrc:1234 cname:x\r\n\
a=ssrc:1234 msid:a b\r\n";

    #[test]
    fn extmap_ids_are_found_with_and_without_direction() {
        assert_eq!(extmap_id(ANSWER, AUDIO_LEVEL_URI), Some(1));
        assert_eq!(extmap_id(ANSWER, MID_URI), Some(3));
        assert_eq!(extmap_id(ANSWER, "urn:nope"), None);
    }

    #[test]
    fn mlines_are_split_with_directions_ssrcs_and_candidates() {
        let m = mlines(ANSWER);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].mid.as_deref(), Some("0"));
        assert_eq!(m[0].direction, "recvonly");
        assert_eq!(m[0].candidates, 1);
        assert_eq!(m[0].payload_types, vec![111]);
        assert_eq!(m[1].direction, "sendonly");
        assert_eq!(m[1].ssrcs, vec![1234]);
        assert_eq!(m[1].payload_types, vec![111, 9]);
    }

    #[test]
    fn check_offer_rejects_wrong_shapes() {
        assert!(
            check_offer(ANSWER, 1).is_err(),
            "first line is not sendonly"
        );
        assert!(check_offer(ANSWER, 4).unwrap_err().contains("m-lines"));
    }

    #[test]
    fn red_payload_type_is_read_from_the_rtpmap() {
        assert_eq!(red_payload_type(ANSWER), None);
        let with_red = ANSWER.replace(
            "a=mid:1\r\n",
            "a=mid:1\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n",
        );
        assert_eq!(red_payload_type(&with_red), Some(63));
        assert_eq!(red_payload_type("a=rtpmap:x red/48000/2"), None);
    }

    #[test]
    fn the_media_engine_registers() {
        media_engine().expect("opus and extensions register");
        assert_eq!(opus_codec().payload_type, 111);
        assert_eq!(opus_codec().rtp_codec.sdp_fmtp_line, OPUS_FMTP);
    }

    #[test]
    fn passive_tcp_candidates_are_taken_out_once_with_their_m_line() {
        let udp = "a=candidate:1 1 udp 2130706175 10.0.0.1 8443 typ host";
        let tcp = "a=candidate:2 1 tcp 1677724415 10.0.0.1 8443 typ host tcptype passive";
        let active = "a=candidate:3 1 tcp 1 10.0.0.1 9 typ host tcptype active";
        let sdp = format!(
            "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n{udp}\r\n{tcp}\r\na=mid:0\r\n\
             m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\n{udp}\r\n{tcp}\r\n{active}\r\n"
        );
        let (rest, found) = split_passive_tcp(&sdp);
        assert_eq!(
            found,
            vec![TcpCandidate {
                candidate: tcp.trim_start_matches("a=").to_owned(),
                mid: Some("0".into()),
                mline_index: 0,
            }]
        );
        assert!(!rest.contains("tcptype passive"), "{rest}");
        assert_eq!(rest.matches(udp).count(), 2, "UDP candidates stay: {rest}");
        assert!(rest.contains(active), "only passive TCP is taken");
        assert!(rest.ends_with("\r\n") && !rest.contains("\r\n\r\n"));
        // Nothing to take: the text is unchanged.
        let plain = format!("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n{udp}\r\n");
        assert_eq!(split_passive_tcp(&plain), (plain.clone(), vec![]));
    }

    #[test]
    fn only_turn_over_udp_and_stun_reach_the_stack() {
        assert!(relays_over_udp("turn:t.example:3478"));
        assert!(relays_over_udp("turn:t.example:3478?transport=udp"));
        assert!(relays_over_udp("stun:t.example:3478"));
        assert!(!relays_over_udp("turn:t.example:3478?transport=tcp"));
        assert!(!relays_over_udp("turns:t.example:443?transport=tcp"));
        let servers = [ruang_proto::IceServer {
            urls: vec![
                "turn:t.example:3478?transport=udp".into(),
                "turns:t.example:443?transport=tcp".into(),
            ],
            username: "1:u".into(),
            credential: "c".into(),
        }];
        let cfg = configuration(&servers);
        assert_eq!(cfg.ice_servers().len(), 1);
        assert_eq!(
            cfg.ice_servers()[0].urls,
            ["turn:t.example:3478?transport=udp"]
        );
    }
}
