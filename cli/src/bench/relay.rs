//! Packet impairment between one client and the server: a UDP relay on loopback that drops
//! and delays datagrams with a seeded RNG, and a [`Signaller`] that points the client at it by
//! rewriting the host candidate of the server's SDP answer. Nothing in the client or server
//! changes: the client runs its ICE checks against the relay, the server (ICE-lite) learns the
//! relay's address from them.
//!
//! Only RTP and RTCP datagrams (first byte 128–191, RFC 7983) are impaired; STUN and DTLS pass
//! untouched, so the handshake is the same in every condition and only the media suffers.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ruang_client::media::Signaller;
use ruang_client::{ClientError, RoomSession};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::task::JoinSet;

/// What happens to each RTP/RTCP datagram, independently, in each direction.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Impairment {
    /// Probability of dropping it.
    pub loss: f64,
    /// Extra delay drawn uniformly from `0..=2·jitter_ms` (mean `jitter_ms`; reorders).
    pub jitter_ms: u32,
}

impl Impairment {
    pub fn is_none(&self) -> bool {
        self.loss <= 0.0 && self.jitter_ms == 0
    }
}

/// Datagram counters of a relay (both directions).
#[derive(Debug, Default)]
pub struct RelayStats {
    pub media: AtomicU64,
    pub dropped: AtomicU64,
}

fn is_rtp_or_rtcp(d: &[u8]) -> bool {
    d.first().is_some_and(|b| (128..=191).contains(b))
}

/// A running relay; stops when dropped.
pub struct Relay {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Decides the fate of one datagram: `None` = drop, else the delay.
fn fate(d: &[u8], imp: Impairment, rng: &mut StdRng, stats: &RelayStats) -> Option<Duration> {
    if !is_rtp_or_rtcp(d) || imp.is_none() {
        return Some(Duration::ZERO);
    }
    stats.media.fetch_add(1, Ordering::Relaxed);
    if imp.loss > 0.0 && rng.gen_bool(imp.loss.min(1.0)) {
        stats.dropped.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    if imp.jitter_ms == 0 {
        return Some(Duration::ZERO);
    }
    let us = rng.gen_range(0..=u64::from(imp.jitter_ms) * 2_000);
    Some(Duration::from_micros(us))
}

async fn send_later(sock: Arc<UdpSocket>, buf: Vec<u8>, to: Option<SocketAddr>, delay: Duration) {
    tokio::time::sleep(delay).await;
    let _ = match to {
        Some(to) => sock.send_to(&buf, to).await,
        None => sock.send(&buf).await,
    };
}

impl Relay {
    /// Listens on 127.0.0.1 and forwards to `upstream`; one upstream socket per client
    /// address, so the server sees one 5-tuple per client candidate.
    pub async fn start(
        upstream: SocketAddr,
        imp: Impairment,
        seed: u64,
        stats: Arc<RelayStats>,
    ) -> std::io::Result<Relay> {
        let listen = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let addr = listen.local_addr()?;
        let task = tokio::spawn(async move {
            let mut up_rng = StdRng::seed_from_u64(seed);
            let mut peers: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
            let mut tasks = JoinSet::new();
            let mut buf = vec![0u8; 2048];
            let mut next_seed = seed;
            loop {
                let Ok((n, from)) = listen.recv_from(&mut buf).await else {
                    return;
                };
                let up = match peers.get(&from) {
                    Some(s) => s.clone(),
                    None => {
                        let bind = if upstream.ip().is_loopback() {
                            "127.0.0.1:0"
                        } else {
                            "0.0.0.0:0"
                        };
                        let Ok(sock) = UdpSocket::bind(bind).await else {
                            continue;
                        };
                        if sock.connect(upstream).await.is_err() {
                            continue;
                        }
                        let sock = Arc::new(sock);
                        peers.insert(from, sock.clone());
                        // Server → client, with its own RNG stream.
                        next_seed = next_seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
                        let (down, back, st) = (sock.clone(), listen.clone(), stats.clone());
                        let mut rng = StdRng::seed_from_u64(next_seed);
                        tasks.spawn(async move {
                            let mut buf = vec![0u8; 2048];
                            while let Ok(n) = down.recv(&mut buf).await {
                                match fate(&buf[..n], imp, &mut rng, &st) {
                                    // Undelayed datagrams go out in order, right away.
                                    Some(d) if d.is_zero() => {
                                        let _ = back.send_to(&buf[..n], from).await;
                                    }
                                    Some(d) => {
                                        let b = buf[..n].to_vec();
                                        tokio::spawn(send_later(back.clone(), b, Some(from), d));
                                    }
                                    None => {}
                                }
                            }
                        });
                        sock
                    }
                };
                match fate(&buf[..n], imp, &mut up_rng, &stats) {
                    Some(d) if d.is_zero() => {
                        let _ = up.send(&buf[..n]).await;
                    }
                    Some(d) => {
                        tokio::spawn(send_later(up, buf[..n].to_vec(), None, d));
                    }
                    None => {}
                }
            }
        });
        Ok(Relay { addr, task })
    }
}

/// The UDP host candidate of an SDP (`a=candidate:F C udp P IP PORT typ host`).
pub fn host_candidate(sdp: &str) -> Option<SocketAddr> {
    sdp.lines().find_map(|l| {
        let t: Vec<&str> = l
            .trim()
            .strip_prefix("a=candidate:")?
            .split_whitespace()
            .collect();
        if t.len() < 6 || !t[2].eq_ignore_ascii_case("udp") {
            return None;
        }
        format!("{}:{}", t[4], t[5]).parse().ok()
    })
}

/// Replaces the address of every UDP candidate with `to`.
pub fn rewrite_candidates(sdp: &str, to: SocketAddr) -> String {
    let mut out = String::with_capacity(sdp.len() + 32);
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let ending = &line[body.len()..];
        match body.strip_prefix("a=candidate:") {
            Some(rest) => {
                let mut t: Vec<String> = rest.split_whitespace().map(str::to_owned).collect();
                if t.len() >= 6 && t[2].eq_ignore_ascii_case("udp") {
                    t[4] = to.ip().to_string();
                    t[5] = to.port().to_string();
                }
                out.push_str("a=candidate:");
                out.push_str(&t.join(" "));
            }
            None => out.push_str(body),
        }
        out.push_str(ending);
    }
    out
}

/// Carries the offer over the room session and, when impairing, points the answer's
/// candidate at a fresh relay (kept alive as long as this signaller).
pub struct ImpairedSignaller {
    pub session: RoomSession,
    pub impairment: Impairment,
    pub seed: u64,
    pub stats: Arc<RelayStats>,
    relays: Mutex<Vec<Relay>>,
    /// When the first offer was handed over (ICE gathering done) and its answer came back.
    pub offered: Mutex<Option<(Instant, Instant)>>,
}

impl ImpairedSignaller {
    pub fn new(session: RoomSession, impairment: Impairment, seed: u64) -> ImpairedSignaller {
        ImpairedSignaller {
            session,
            impairment,
            seed,
            stats: Arc::new(RelayStats::default()),
            relays: Mutex::new(Vec::new()),
            offered: Mutex::new(None),
        }
    }
}

#[async_trait::async_trait]
impl Signaller for ImpairedSignaller {
    async fn media_offer(&self, sdp: String) -> Result<String, ClientError> {
        let offered = Instant::now();
        let answer = self.session.media_offer(sdp).await?;
        self.offered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert((offered, Instant::now()));
        if self.impairment.is_none() {
            return Ok(answer);
        }
        let server = host_candidate(&answer)
            .ok_or_else(|| ClientError::Protocol("no UDP host candidate in the answer".into()))?;
        let relay = Relay::start(server, self.impairment, self.seed, self.stats.clone())
            .await
            .map_err(|e| ClientError::Protocol(format!("impairment relay: {e}")))?;
        let answer = rewrite_candidates(&answer, relay.addr);
        self.relays
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(relay);
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_the_answer_candidate() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
                   a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\na=mid:0\r\n";
        assert_eq!(
            host_candidate(sdp),
            Some("127.0.0.1:40000".parse().unwrap())
        );
        let out = rewrite_candidates(sdp, "127.0.0.1:5555".parse().unwrap());
        assert_eq!(
            out,
            "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
             a=candidate:1 1 udp 2130706431 127.0.0.1 5555 typ host\r\na=mid:0\r\n"
        );
        assert!(is_rtp_or_rtcp(&[0x80, 0x6f]) && !is_rtp_or_rtcp(&[0x00, 0x01]));
        assert!(!is_rtp_or_rtcp(&[22, 254]));
    }
}
