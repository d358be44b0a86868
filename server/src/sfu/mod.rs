//! The audio SFU: WebRTC (ICE-lite, DTLS-SRTP) built on str0m (sans-IO), driven by a few
//! **shards**: each is one loop on a dedicated thread that owns one UDP socket (its own
//! port) and the `Rtc` of every peer it serves (never a task or thread per peer). A member
//! joining a room's media goes to the shard with the fewest members and stays there while
//! their connection lives, so a new offer (ICE restart) replaces their old peer there. A speaker's audio enters at their shard, which forwards it to its own
//! listeners and relays it once (one `Arc` payload, no copy) to the other shards for theirs:
//! one room's listeners are spread over every core.
//!
//! - `offer.rs`: checks the shape of a client's SDP offer (pure).
//! - `answer.rs`: finishes str0m's SDP answer (candidates in every m-line, end of
//!   candidates, no trickle).
//! - `forward.rs`: the forwarding decisions (audible filter, loudest N with hysteresis,
//!   slot assignment, per-slot RTP clocks, level smoothing), pure and unit-tested.
//! - `engine.rs`: a shard's loop: socket, `Rtc`s, commands from signalling and relayed
//!   audio, `levels` events for its own speakers.
//! - `udp.rs`: batched `recvmmsg` / `sendmmsg`, socket buffers, STUN username lookup.
//! - `tcp.rs`: ICE-TCP (a passive TCP candidate) for clients whose UDP is blocked.
//!
//! Signalling connections talk to the loop through [`Sfu`]: `offer` (answer comes back on a
//! oneshot) and `remove`.

pub mod answer;
pub mod cascade;
pub(crate) mod engine;
pub mod forward;
pub mod offer;
#[cfg(test)]
mod offer_proptest;
pub mod red;
pub mod tcp;
pub mod turn;
pub mod udp;

use crate::rooms::LiveRoom;
use anyhow::Context;
use ruang_proto::{RoomId, UserId};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
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
    /// Forwarding threads (shards), each on its own UDP port: `bind`'s port and the next
    /// ones when it is not 0. 0: one per available core, at most [`MAX_SHARDS`].
    pub threads: usize,
    /// Cluster mode: where shards hand audio bound for other nodes (see [`cascade`]).
    pub cascade: Option<mpsc::Sender<cascade::Outbound>>,
    /// ICE-TCP ([`tcp`]): the TCP port every shard shares, on `bind`'s address. `Some(0)`:
    /// the first shard's UDP port number if free, else any; `None`: no TCP candidate.
    pub tcp_port: Option<u16>,
    /// A copy of every payload the SFU forwards for rooms this node owns ([`MediaTap`]).
    pub tap: Option<MediaTap>,
}

/// What the SFU can see of a forwarded packet: the speaker and the RTP payload after SRTP
/// (in an encrypted room, SFrame ciphertext).
#[derive(Debug, Clone)]
pub struct TappedPayload {
    pub speaker: Arc<ruang_proto::UserId>,
    pub payload: Arc<[u8]>,
}

/// A diagnostics tap on the forwarding path (tests show with it what the operator of the
/// server could capture). Bounded and never waited on: when full, packets are not copied.
pub type MediaTap = mpsc::Sender<TappedPayload>;

/// Relayed packets a shard may have waiting (beyond that, they are dropped like a full
/// network queue would).
const RELAY_QUEUE: usize = 1024;

/// Most forwarding threads started by default.
pub const MAX_SHARDS: usize = 8;

/// The shard count for `threads` (0: one per core, at most [`MAX_SHARDS`]).
pub fn shard_count(threads: usize) -> usize {
    if threads > 0 {
        return threads.min(64);
    }
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, MAX_SHARDS)
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
    /// Packets relayed from one shard to another.
    pub packets_relayed: AtomicU64,
    /// Relayed packets dropped: the receiving shard's queue was full, or they waited there
    /// longer than audio is worth playing.
    pub packets_relay_dropped: AtomicU64,
    /// Times RED wrapping was switched on or off for a receiver slot (`red.rs`).
    pub red_switches: AtomicU64,
    /// RTCP NACKs sent to speakers for lost packets of their microphone stream.
    pub nacks_sent: AtomicU64,
    /// ICE-TCP connections open now, datagrams received on them, and datagrams dropped
    /// because a connection was too far behind.
    pub tcp_connections: AtomicI64,
    pub tcp_packets_received: AtomicU64,
    pub tcp_packets_dropped: AtomicU64,
}

/// The room a media peer belongs to: one this node runs (its rules decide who is audible),
/// or, in cluster mode, one another node owns, whose audio this node receives from the
/// owner and fans out to its own members (an **edge** of the room).
#[derive(Clone)]
pub enum MediaRoom {
    Owned(Arc<LiveRoom>),
    Edge(Arc<cascade::EdgeRoom>),
}

impl MediaRoom {
    pub fn id(&self) -> &RoomId {
        match self {
            MediaRoom::Owned(r) => &r.id,
            MediaRoom::Edge(r) => &r.id,
        }
    }

    /// Output for the room's connections on this node (levels, media ended).
    pub fn send(&self, out: crate::rooms::rules::Outgoing) {
        match self {
            MediaRoom::Owned(r) => r.send(out),
            MediaRoom::Edge(r) => r.send(out),
        }
    }

    fn ended(&self) -> bool {
        match self {
            MediaRoom::Owned(r) => r.ended(),
            MediaRoom::Edge(_) => false,
        }
    }
}

pub(crate) enum Command {
    Offer {
        room: MediaRoom,
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
    /// A speaker of another shard stopped being audible or left.
    RelayGone {
        room: RoomId,
        peer: forward::PeerId,
    },
    /// An ICE-TCP connection whose first frame (`first`) named one of the shard's peers.
    TcpStream {
        stream: std::net::TcpStream,
        remote: SocketAddr,
        first: Vec<u8>,
    },
    Shutdown,
}

/// One audio packet as shards pass it to each other: what forwarding needs, the payload
/// shared.
#[derive(Clone)]
pub(crate) struct Relayed {
    pub room: MediaRoom,
    pub from: forward::PeerId,
    /// Audio that came from another node (cluster): the speaker, so the node serving them
    /// does not send them their own voice, and the owner reports their level.
    pub speaker: Option<Arc<UserId>>,
    pub audio_level: Option<i8>,
    pub voice_activity: Option<bool>,
    pub rtp_time: u64,
    pub network_time: Instant,
    pub payload: Arc<[u8]>,
}

/// Handle to the SFU's shards. Cheap to clone.
#[derive(Clone)]
pub struct Sfu {
    shards: Arc<[Shard]>,
    ids: Arc<AtomicU64>,
    assignments: Arc<std::sync::Mutex<Assignments>>,
    metrics: Arc<SfuMetrics>,
    /// The passive ICE-TCP candidate's address, when ICE-TCP is on.
    tcp: Option<SocketAddr>,
}

/// Which shard serves each member's media in each room (taken only at offers and removals,
/// never on the media path).
#[derive(Debug)]
pub struct Assignments {
    /// (room, member) → (shard, the connection that last offered).
    members: std::collections::HashMap<(RoomId, UserId), (usize, u64)>,
    /// Members per shard.
    load: Vec<usize>,
}

impl Assignments {
    pub fn new(shards: usize) -> Self {
        Assignments {
            members: Default::default(),
            load: vec![0; shards.max(1)],
        }
    }

    /// The shard for an offer of `user`'s connection `conn` in `room`: the one already
    /// serving them, else the least loaded (lowest index on ties).
    pub fn offer(&mut self, room: &RoomId, user: &UserId, conn: u64) -> usize {
        let key = (room.clone(), user.clone());
        if let Some((shard, c)) = self.members.get_mut(&key) {
            *c = conn;
            return *shard;
        }
        let shard = (0..self.load.len())
            .min_by_key(|&i| (self.load[i], i))
            .unwrap_or(0);
        self.load[shard] += 1;
        self.members.insert(key, (shard, conn));
        shard
    }

    /// `user`'s connection `conn` left `room`'s media: the shard that served it (the
    /// assignment is kept if a newer connection took over).
    pub fn remove(&mut self, room: &RoomId, user: &UserId, conn: u64) -> Option<usize> {
        let key = (room.clone(), user.clone());
        let &(shard, c) = self.members.get(&key)?;
        if c == conn {
            self.members.remove(&key);
            self.load[shard] = self.load[shard].saturating_sub(1);
        }
        Some(shard)
    }
}

struct Shard {
    tx: mpsc::UnboundedSender<Command>,
    /// The shard's relay queue (shards hold each other's only weakly; this keeps it open),
    /// also where audio from other nodes comes in.
    relay_in: mpsc::Sender<Relayed>,
    addr: SocketAddr,
}

const OFFER_TIMEOUT: Duration = Duration::from_secs(5);

impl Sfu {
    /// Binds one UDP socket per shard and starts each shard's loop on its own thread.
    pub fn start(config: SfuConfig) -> anyhow::Result<Sfu> {
        let count = shard_count(config.threads);
        let metrics = Arc::new(SfuMetrics::default());
        let provider = Arc::new(str0m::crypto::from_feature_flags());
        let cert = provider
            .dtls_provider
            .generate_certificate()
            .ok_or_else(|| anyhow::anyhow!("could not generate the DTLS certificate"))?;
        let ids = Arc::new(AtomicU64::new(1));
        let mut sockets = Vec::with_capacity(count);
        for i in 0..count {
            let mut bind = config.bind;
            if bind.port() != 0 {
                let port = usize::from(bind.port()) + i;
                let port = u16::try_from(port)
                    .map_err(|_| anyhow::anyhow!("RTC port {port} is out of range"))?;
                bind.set_port(port);
            }
            let socket = UdpSocket::bind(bind)
                .with_context(|| format!("binding the RTC UDP socket {bind}"))?;
            socket.set_nonblocking(true)?;
            let granted = udp::enlarge_buffers(socket.as_raw_fd());
            tracing::debug!(shard = i, receive_buffer = granted, "RTC socket buffers");
            let bound = socket.local_addr()?;
            let ip = match config.public_ip {
                Some(ip) => ip,
                None if bound.ip().is_unspecified() => guess_local_ip(bound.ip()),
                None => bound.ip(),
            };
            sockets.push((socket, bound, SocketAddr::new(ip, bound.port())));
        }
        let routes = Arc::new(tcp::Routes::default());
        let tcp_listener = match config.tcp_port {
            None => None,
            Some(port) => {
                let first = sockets[0].1;
                let listener = if port == 0 {
                    std::net::TcpListener::bind(first)
                        .or_else(|_| std::net::TcpListener::bind(SocketAddr::new(first.ip(), 0)))
                } else {
                    std::net::TcpListener::bind(SocketAddr::new(first.ip(), port))
                }
                .with_context(|| format!("binding the ICE-TCP listener (port {port})"))?;
                listener.set_nonblocking(true)?;
                let bound = listener.local_addr()?;
                let candidate = SocketAddr::new(sockets[0].2.ip(), bound.port());
                tracing::info!(%bound, %candidate, "SFU listening (ICE-TCP)");
                Some((listener, candidate))
            }
        };
        let tcp_candidate = tcp_listener.as_ref().map(|(_, c)| *c);
        let channels: Vec<_> = (0..count).map(|_| mpsc::unbounded_channel()).collect();
        let senders: Vec<mpsc::UnboundedSender<Command>> =
            channels.iter().map(|(tx, _)| tx.clone()).collect();
        let relays: Vec<_> = (0..count)
            .map(|_| mpsc::channel::<Relayed>(RELAY_QUEUE))
            .collect();
        let relay_senders: Vec<mpsc::Sender<Relayed>> =
            relays.iter().map(|(tx, _)| tx.clone()).collect();
        let mut shards = Vec::with_capacity(count);
        for (i, (((socket, bound, addr), (tx, rx)), (relay_tx, relay_rx))) in
            sockets.into_iter().zip(channels).zip(relays).enumerate()
        {
            let others = |j: &usize| *j != i;
            let bus = engine::Bus {
                shard: i,
                control: (0..count)
                    .filter(others)
                    .map(|j| senders[j].downgrade())
                    .collect(),
                relay: (0..count)
                    .filter(others)
                    .map(|j| relay_senders[j].downgrade())
                    .collect(),
                cascade: config.cascade.clone(),
                tap: config.tap.clone(),
                tcp: tcp_candidate.map(|candidate| tcp::ShardTcp {
                    candidate,
                    routes: routes.clone(),
                }),
            };
            let engine = engine::Engine::new(
                addr,
                config.forward_limit,
                metrics.clone(),
                provider.clone(),
                cert.clone(),
                ids.clone(),
                bus,
            )?;
            std::thread::Builder::new()
                .name(format!("ruang-sfu-{i}"))
                .spawn(move || {
                    // Forwarding before the HTTP side and whatever else runs on the host.
                    let priority = ruang_media::rt::raise_network_thread();
                    tracing::debug!(shard = i, %priority, "SFU thread priority");
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
                    rt.block_on(engine.run(socket, rx, relay_rx));
                })
                .context("starting an SFU thread")?;
            tracing::info!(%bound, candidate = %addr, shard = i, "SFU listening (UDP)");
            shards.push(Shard {
                tx,
                relay_in: relay_tx,
                addr,
            });
        }
        if let Some((listener, _)) = tcp_listener {
            let weak = senders.iter().map(|s| s.downgrade()).collect();
            std::thread::Builder::new()
                .name("ruang-sfu-tcp".into())
                .spawn(move || {
                    ruang_media::rt::raise_network_thread();
                    match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt.block_on(tcp::accept(listener, routes, weak)),
                        Err(e) => tracing::error!(error = %e, "ICE-TCP runtime did not start"),
                    }
                })
                .context("starting the ICE-TCP thread")?;
        }
        drop(senders);
        drop(relay_senders);
        Ok(Sfu {
            tcp: tcp_candidate,
            ids,
            assignments: Arc::new(std::sync::Mutex::new(Assignments::new(shards.len()))),
            shards: shards.into(),
            metrics,
        })
    }

    fn assignments(&self) -> std::sync::MutexGuard<'_, Assignments> {
        self.assignments
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The address of the first shard (clients are told their shard's in the answer).
    pub fn addr(&self) -> SocketAddr {
        self.shards[0].addr
    }

    /// The passive ICE-TCP candidate's address (every shard shares it), when on.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp
    }

    /// Every shard's address (the answer's host candidate of the members it serves).
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.shards.iter().map(|s| s.addr).collect()
    }

    pub fn metrics(&self) -> &SfuMetrics {
        &self.metrics
    }

    /// Forwarding threads.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Datagrams the kernel dropped because a shard's receive queue was full (Linux
    /// `/proc/net/udp*`, summed over the shards' ports; 0 where unavailable).
    pub fn socket_drops(&self) -> u64 {
        let ports: Vec<u16> = self.shards.iter().map(|s| s.addr.port()).collect();
        ["/proc/net/udp", "/proc/net/udp6"]
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .map(|table| udp::drops_for_ports(&table, &ports))
            .sum()
    }

    /// Negotiates `sdp` for `user`'s connection `conn` in `room`, replacing any peer the
    /// user had in that room. Returns the SDP answer, or why the offer was refused.
    pub async fn offer(
        &self,
        room: MediaRoom,
        user: UserId,
        conn: u64,
        sdp: String,
    ) -> Result<String, String> {
        let (reply, rx) = oneshot::channel();
        let shard = self.assignments().offer(room.id(), &user, conn);
        self.shards[shard]
            .tx
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
        let Some(shard) = self.assignments().remove(room, user, conn) else {
            return;
        };
        let _ = self.shards[shard].tx.send(Command::Remove {
            room: room.clone(),
            user: user.clone(),
            conn,
        });
    }

    /// Hands audio that arrived from another node to every shard (each forwards it to its
    /// own members of the room). False if a shard's queue was full.
    pub(crate) fn inject(&self, packet: Relayed) -> bool {
        let mut all = true;
        for s in self.shards.iter() {
            let counter = match s.relay_in.try_send(packet.clone()) {
                Ok(()) => &self.metrics.packets_relayed,
                Err(_) => {
                    all = false;
                    &self.metrics.packets_relay_dropped
                }
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        all
    }

    /// A peer id no shard uses (for speakers of other nodes).
    pub(crate) fn next_peer_id(&self) -> forward::PeerId {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Stops the loop (every peer is dropped).
    pub fn shutdown(&self) {
        for s in self.shards.iter() {
            let _ = s.tx.send(Command::Shutdown);
        }
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
    engine::negotiate(sdp, provider, cert, local, None, std::time::Instant::now()).map(|n| n.answer)
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

#[cfg(test)]
mod assignment_tests {
    use super::Assignments;
    use ruang_proto::{RoomId, UserId};

    #[test]
    fn members_spread_over_shards_and_stay_on_theirs() {
        let mut a = Assignments::new(3);
        let room = RoomId::from("r");
        let users: Vec<UserId> = ["a", "b", "c", "d"].into_iter().map(UserId::from).collect();
        let shards: Vec<usize> = users.iter().map(|u| a.offer(&room, u, 1)).collect();
        assert_eq!(shards, [0, 1, 2, 0]);
        // An ICE restart (new offer, same or new connection) stays on the same shard.
        assert_eq!(a.offer(&room, &users[1], 2), 1);
        // The old connection's removal does not free the newer one's place ...
        assert_eq!(a.remove(&room, &users[1], 1), Some(1));
        assert_eq!(a.offer(&room, &users[1], 3), 1);
        // ... the current one's does, and the freed shard is the next one filled.
        assert_eq!(a.remove(&room, &users[1], 3), Some(1));
        assert_eq!(a.remove(&room, &users[1], 3), None);
        assert_eq!(a.offer(&room, &UserId::from("e"), 1), 1);
        // The same member in another room is another assignment (loads are now 2, 1, 1).
        assert_eq!(a.offer(&RoomId::from("s"), &users[0], 1), 1);
    }
}
