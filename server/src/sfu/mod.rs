//! The audio SFU: WebRTC (ICE-lite, DTLS-SRTP) on one UDP port for every peer, built on
//! str0m (sans-IO) and driven by ONE loop on a dedicated thread that owns the socket and
//! every peer's `Rtc` (never a task or thread per peer).
//!
//! - `offer.rs`: checks the shape of a client's SDP offer (pure).
//! - `answer.rs`: finishes str0m's SDP answer (candidates in every m-line, end of
//!   candidates, no trickle).
//! - `forward.rs`: the forwarding decisions (audible filter, loudest N with hysteresis,
//!   slot assignment, per-slot RTP clocks, level smoothing), pure and unit-tested.
//! - `engine.rs`: the loop: socket, `Rtc`s, commands from signalling, `levels` events.
//!
//! Signalling connections talk to the loop through [`Sfu`]: `offer` (answer comes back on a
//! oneshot) and `remove`.

pub mod answer;
pub(crate) mod engine;
pub mod forward;
pub mod offer;
#[cfg(test)]
mod offer_proptest;

use crate::rooms::LiveRoom;
use anyhow::Context;
use ruang_proto::{RoomId, UserId};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How the SFU is set up (from [`crate::Config`]).
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// UDP address to bind (port 0: any free port).
    pub bind: SocketAddr,
    /// Address put in the answer's host candidate, when clients must reach another
    /// address than the bound one (NAT, 0.0.0.0 bind). The port is always the bound one.
    pub public_ip: Option<IpAddr>,
    /// Most speakers forwarded to one client at once.
    pub forward_limit: usize,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct SfuMetrics {
    pub packets_received: AtomicU64,
    pub packets_forwarded: AtomicU64,
    pub packets_dropped_not_on_stage: AtomicU64,
    pub offers_accepted: AtomicU64,
    pub offers_refused: AtomicU64,
    pub peers: AtomicI64,
}

pub(crate) enum Command {
    Offer {
        room: Arc<LiveRoom>,
        user: UserId,
        conn: u64,
        sdp: String,
        reply: oneshot::Sender<Result<String, String>>,
    },
    Remove {
        room: RoomId,
        user: UserId,
        conn: u64,
    },
    Shutdown,
}

/// Handle to the SFU loop. Cheap to clone.
#[derive(Clone)]
pub struct Sfu {
    tx: mpsc::UnboundedSender<Command>,
    addr: SocketAddr,
    metrics: Arc<SfuMetrics>,
}

const OFFER_TIMEOUT: Duration = Duration::from_secs(5);

impl Sfu {
    /// Binds the UDP socket and starts the loop on its own thread.
    pub fn start(config: SfuConfig) -> anyhow::Result<Sfu> {
        let socket = UdpSocket::bind(config.bind)
            .with_context(|| format!("binding the RTC UDP socket {}", config.bind))?;
        socket.set_nonblocking(true)?;
        let bound = socket.local_addr()?;
        let ip = match config.public_ip {
            Some(ip) => ip,
            None if bound.ip().is_unspecified() => guess_local_ip(bound.ip()),
            None => bound.ip(),
        };
        let addr = SocketAddr::new(ip, bound.port());
        let metrics = Arc::new(SfuMetrics::default());
        let (tx, rx) = mpsc::unbounded_channel();
        let engine = engine::Engine::new(addr, config.forward_limit, metrics.clone())?;
        std::thread::Builder::new()
            .name("ruang-sfu".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "SFU runtime did not start");
                        return;
                    }
                };
                rt.block_on(engine.run(socket, rx));
            })
            .context("starting the SFU thread")?;
        tracing::info!(%bound, candidate = %addr, "SFU listening (UDP)");
        Ok(Sfu { tx, addr, metrics })
    }

    /// The address clients send media to (the answer's host candidate).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn metrics(&self) -> &SfuMetrics {
        &self.metrics
    }

    /// Negotiates `sdp` for `user`'s connection `conn` in `room`, replacing any peer the
    /// user had in that room. Returns the SDP answer, or why the offer was refused.
    pub async fn offer(
        &self,
        room: Arc<LiveRoom>,
        user: UserId,
        conn: u64,
        sdp: String,
    ) -> Result<String, String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Offer {
                room,
                user,
                conn,
                sdp,
                reply,
            })
            .map_err(|_| "the media server is not running".to_owned())?;
        match tokio::time::timeout(OFFER_TIMEOUT, rx).await {
            Ok(Ok(r)) => r,
            _ => Err("the media server did not answer".to_owned()),
        }
    }

    /// Drops the peer of `user`'s connection `conn` (no-op if it was replaced since).
    pub fn remove(&self, room: &RoomId, user: &UserId, conn: u64) {
        let _ = self.tx.send(Command::Remove {
            room: room.clone(),
            user: user.clone(),
            conn,
        });
    }

    /// Stops the loop (every peer is dropped).
    pub fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown);
    }
}

/// The SFU's whole offer path (shape check, str0m negotiation, finished answer) on a
/// throwaway peer, without a socket: the SDP answer, or why the offer is refused. For the
/// fuzz targets (`fuzz/`) and tests; never panics, whatever the text.
pub fn answer_offer(sdp: &str) -> Result<String, String> {
    use std::sync::OnceLock;
    static CRYPTO: OnceLock<Option<(Arc<str0m::config::CryptoProvider>, str0m::config::DtlsCert)>> =
        OnceLock::new();
    let Some((provider, cert)) = CRYPTO.get_or_init(|| {
        let provider = Arc::new(str0m::crypto::from_feature_flags());
        let cert = provider.dtls_provider.generate_certificate()?;
        Some((provider, cert))
    }) else {
        return Err("no DTLS certificate".into());
    };
    let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8443);
    engine::negotiate(sdp, provider, cert, local, std::time::Instant::now()).map(|n| n.answer)
}

impl SfuMetrics {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// The address of the interface that routes to the internet (no packet is sent), for a
/// socket bound to 0.0.0.0 without `--rtc-public-ip`; loopback when there is none.
fn guess_local_ip(unspecified: IpAddr) -> IpAddr {
    let probe = || -> std::io::Result<IpAddr> {
        let (bind, target) = if unspecified.is_ipv6() {
            ("[::]:0", "[2001:4860:4860::8888]:53")
        } else {
            ("0.0.0.0:0", "8.8.8.8:53")
        };
        let s = UdpSocket::bind(bind)?;
        s.connect(target)?;
        Ok(s.local_addr()?.ip())
    };
    match probe() {
        Ok(ip) if !ip.is_unspecified() => {
            tracing::warn!(%ip, "RTC socket bound to an unspecified address: advertising {ip}; set --rtc-public-ip to choose");
            ip
        }
        _ => {
            tracing::warn!("no route found: advertising 127.0.0.1 for media; set --rtc-public-ip");
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        }
    }
}
