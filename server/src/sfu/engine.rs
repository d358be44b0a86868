//! One SFU shard's loop: one UDP socket, the str0m `Rtc` of every peer the shard serves,
//! one task on the shard's thread.
//!
//! Each turn waits for the first of: a command (signalling, or audio relayed by another
//! shard), datagrams, the earliest peer timeout (a min-heap, not a scan of every peer) or
//! the levels timer. Datagrams are read in batches (`recvmmsg`); each goes to its peer, found
//! by source address, or for a new address by the ICE username of its STUN request. The
//! peer's outputs are drained at once; what it transmits is queued and sent in batches
//! (`sendmmsg`) before the loop waits again. Audio from a peer's microphone m-line goes
//! through the room's [`RoomForwarder`], which says which local receivers and slots get a
//! copy; the payload is one shared `Arc<[u8]>` for every copy. Audible audio is also
//! relayed once to the other shards, which forward it to their own receivers.

use super::forward::{Forward, ForwardConfig, PeerId, RoomForwarder, Verdict};
use super::red::{RedControl, RED_DISTANCES};
use super::tcp::{self, ShardTcp, TcpIn, TcpOut};
use super::udp::{self, RecvBatch, SendBatch};
use super::{answer, cascade, offer, Command, MediaRoom, Relayed, SfuMetrics};
use crate::rooms::rules::{Audience, Outgoing};
use ruang_proto::{RoomEvent, RoomId, SpeakerLevel, UserId};
use rustc_hash::FxHashMap as HashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::change::SdpOffer;
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::format::Codec;
use str0m::media::{Frequency, MediaData, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::rtp::{Extension, ExtensionMap};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// How often `levels` events are considered.
const LEVELS_EVERY: Duration = Duration::from_millis(250);
/// Longest sleep when no peer has anything to do.
const IDLE: Duration = Duration::from_millis(500);
/// A peer's timer that never fires (set while its due timer is being handled).
const NEVER: Duration = Duration::from_secs(3600 * 24 * 365);
/// A speaker of another shard heard from no longer than this is still in the room's forwarder.
const REMOTE_SPEAKER_KEEP: Duration = Duration::from_secs(5);

struct Peer {
    room: RoomId,
    user: UserId,
    /// The same id, shared (handed to the recorder with each packet without allocating).
    shared_user: Arc<UserId>,
    conn: u64,
    rtc: Rtc,
    /// The client's microphone m-line (we receive on it).
    mic: Option<Mid>,
    /// The client's recvonly m-lines (we send on them) with their Opus payload type.
    slots: Vec<(Mid, Pt)>,
    /// RED wrapping of each slot that negotiated RED (same order as `slots`; `None`: plain
    /// Opus only).
    red: Vec<Option<RedControl>>,
    /// Round trip from the last receiver report that carried one.
    rtt: Option<Duration>,
    /// NACKs for the microphone stream: negotiated (`a=rtcp-fb:… nack` on the mic m-line),
    /// and whether they are on now (`None`: not applied yet, the stream is not known).
    mic_nack_negotiated: bool,
    mic_nack: Option<bool>,
    /// NACKs str0m sent for the microphone stream so far (its ingress statistics).
    nacks_sent: u64,
    timeout: Instant,
    /// The client closed its transport (str0m's `Event::Closed`).
    closed_by_client: bool,
    /// Our ICE username fragment (STUN requests for this peer carry it).
    ufrag: String,
    /// ICE-TCP connections of this peer (by remote address).
    tcp: Vec<SocketAddr>,
}

/// One ICE-TCP connection a shard serves.
struct TcpConn {
    peer: PeerId,
    out: Arc<TcpOut>,
}

struct RoomState {
    live: MediaRoom,
    fwd: RoomForwarder,
    audible_version: Option<u64>,
    /// Users of the room's peers, kept one levels round after a peer left (to report 0).
    users: HashMap<PeerId, UserId>,
    /// Speakers served by other shards whose audio arrives relayed, and when last heard.
    remote: HashMap<PeerId, Instant>,
}

/// The other shards of the SFU, for relaying audio (weak: the loops end when the `Sfu`
/// handle is dropped).
pub(crate) struct Bus {
    pub shard: usize,
    /// The other shards' command queues (a speaker stopped being audible).
    pub control: Vec<mpsc::WeakUnboundedSender<Command>>,
    /// The other shards' bounded queues of relayed audio.
    pub relay: Vec<mpsc::WeakSender<Relayed>>,
    /// Cluster mode: audio for other nodes (the owner's audible audio for the room's edges,
    /// an edge's microphones for the owner).
    pub cascade: Option<mpsc::Sender<cascade::Outbound>>,
    /// ICE-TCP: the candidate every shard advertises and the routes the acceptor reads.
    pub tcp: Option<ShardTcp>,
    /// Diagnostics: a copy of what is forwarded (`SfuConfig::tap`).
    pub tap: Option<super::MediaTap>,
}

/// Relayed audio that waited longer than this in a busy shard's queue is dropped: a listener's
/// jitter buffer would throw it away anyway.
const RELAY_STALE: Duration = Duration::from_millis(250);

/// The SFU asks a speaker to resend lost packets (RTCP NACK; the client answers from its
/// send history) only while the round trip leaves time for the resend to fill the hole
/// before str0m's reorder hold releases the packets after it (3 packets, 100 ms at most:
/// about 40 ms after the gap shows, of which NACK polling takes up to 33 ms).
pub(crate) const NACK_MAX_RTT: Duration = Duration::from_millis(25);

pub(crate) struct Engine {
    local: SocketAddr,
    provider: Arc<CryptoProvider>,
    cert: DtlsCert,
    fwd_config: ForwardConfig,
    metrics: Arc<SfuMetrics>,
    peers: HashMap<PeerId, Peer>,
    by_addr: HashMap<SocketAddr, PeerId>,
    by_ufrag: HashMap<String, PeerId>,
    rooms: HashMap<RoomId, RoomState>,
    /// Peer ids, unique across shards (relayed audio names its sender).
    ids: Arc<AtomicU64>,
    start: Instant,
    /// Peers' next timeouts; an entry is current only if it equals the peer's `timeout`.
    timers: BinaryHeap<Reverse<(Instant, PeerId)>>,
    bus: Bus,
    /// Reused buffers of the forwarding path.
    forwards: Vec<Forward>,
    dirty: Vec<PeerId>,
    /// Peers given a packet to send (driven until it is out).
    dirty_tx: Vec<PeerId>,
    out: SendBatch,
    fd: RawFd,
    /// ICE-TCP: the candidate, the routes to keep up to date, the open connections and the
    /// queue their tasks feed.
    tcp: Option<ShardTcp>,
    tcp_conns: HashMap<SocketAddr, TcpConn>,
    tcp_tx: mpsc::Sender<TcpIn>,
    tcp_rx: Option<mpsc::Receiver<TcpIn>>,
}

/// Datagrams from ICE-TCP connections waiting for the shard's loop.
const TCP_QUEUE: usize = 1024;

impl Engine {
    pub(crate) fn new(
        local: SocketAddr,
        forward_limit: usize,
        metrics: Arc<SfuMetrics>,
        provider: Arc<CryptoProvider>,
        cert: DtlsCert,
        ids: Arc<AtomicU64>,
        mut bus: Bus,
    ) -> anyhow::Result<Engine> {
        let tcp = bus.tcp.take();
        let (tcp_tx, tcp_rx) = mpsc::channel(TCP_QUEUE);
        Ok(Engine {
            tcp,
            tcp_conns: HashMap::default(),
            tcp_tx,
            tcp_rx: Some(tcp_rx),
            local,
            provider,
            cert,
            fwd_config: ForwardConfig {
                forward_limit: forward_limit.max(1),
                ..ForwardConfig::default()
            },
            metrics,
            peers: HashMap::default(),
            by_addr: HashMap::default(),
            by_ufrag: HashMap::default(),
            rooms: HashMap::default(),
            ids,
            start: Instant::now(),
            timers: BinaryHeap::new(),
            bus,
            forwards: Vec::with_capacity(64),
            dirty: Vec::with_capacity(64),
            dirty_tx: Vec::with_capacity(1024),
            out: SendBatch::default(),
            fd: -1,
        })
    }

    fn now_ms(&self, now: Instant) -> i64 {
        now.duration_since(self.start).as_millis() as i64
    }

    pub(crate) async fn run(
        mut self,
        socket: std::net::UdpSocket,
        mut rx: mpsc::UnboundedReceiver<Command>,
        mut relay_rx: mpsc::Receiver<Relayed>,
    ) {
        let socket = match UdpSocket::from_std(socket) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "SFU socket unusable");
                return;
            }
        };
        self.fd = socket.as_raw_fd();
        let Some(mut tcp_rx) = self.tcp_rx.take() else {
            return;
        };
        let mut batch = RecvBatch::default();
        let mut next_levels = Instant::now() + LEVELS_EVERY;
        loop {
            self.out.flush(self.fd);
            let deadline = self
                .timers
                .peek()
                .map(|Reverse((t, _))| *t)
                .unwrap_or_else(|| Instant::now() + IDLE)
                .min(next_levels);
            enum Wake {
                Cmd(Option<Command>),
                Relay(Option<Relayed>),
                Readable(std::io::Result<()>),
                Tcp(Option<TcpIn>),
                Timer,
            }
            let wake = tokio::select! {
                cmd = rx.recv() => Wake::Cmd(cmd),
                r = relay_rx.recv() => Wake::Relay(r),
                r = socket.readable() => Wake::Readable(r),
                t = tcp_rx.recv() => Wake::Tcp(t),
                _ = tokio::time::sleep_until(deadline.into()) => Wake::Timer,
            };
            match wake {
                Wake::Cmd(None) | Wake::Cmd(Some(Command::Shutdown)) => break,
                Wake::Cmd(Some(cmd)) => self.command(cmd, Instant::now()),
                // Both queues close when the `Sfu` handle is dropped.
                Wake::Relay(None) => break,
                Wake::Relay(Some(first)) => {
                    // Take what else is queued before waiting again.
                    let now = Instant::now();
                    self.relayed(first, now);
                    for _ in 0..64 {
                        match relay_rx.try_recv() {
                            Ok(r) => self.relayed(r, now),
                            Err(_) => break,
                        }
                    }
                    self.drive_dirty(now);
                }
                Wake::Readable(Ok(())) => {
                    // Drain the socket, a batch per system call, a bounded number of batches
                    // per turn so commands and timers are not starved.
                    for _ in 0..8 {
                        let fd = self.fd;
                        let got = socket.try_io(Interest::READABLE, || batch.recv(fd));
                        let n = match got {
                            Ok(n) => n,
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                            // ICMP errors from gone clients surface here; keep going.
                            Err(e) => {
                                tracing::debug!(error = %e, "SFU socket receive");
                                break;
                            }
                        };
                        let now = Instant::now();
                        for i in 0..n {
                            if let Some((data, source)) = batch.get(i) {
                                self.receive(data, source, now);
                            }
                        }
                        if n < udp::BATCH {
                            break;
                        }
                    }
                }
                Wake::Readable(Err(e)) => tracing::debug!(error = %e, "SFU socket readiness"),
                Wake::Tcp(first) => {
                    // Take what else is queued (a bounded number, so commands and timers are
                    // not starved); only take one more when it will be handled.
                    let now = Instant::now();
                    let mut next = first;
                    let mut budget = 64;
                    while let Some(TcpIn { remote, data }) = next.take() {
                        match data {
                            Some(d) => self.receive_tcp(&d, remote, now),
                            None => self.tcp_closed(remote),
                        }
                        budget -= 1;
                        if budget > 0 {
                            next = tcp_rx.try_recv().ok();
                        }
                    }
                }
                Wake::Timer => {}
            }
            let now = Instant::now();
            self.timeouts(now);
            if now >= next_levels {
                self.levels(now);
                next_levels = now + LEVELS_EVERY;
            }
        }
        self.stop();
    }

    fn stop(&mut self) {
        self.out.flush(self.fd);
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for id in ids {
            self.remove_peer(id);
        }
        tracing::debug!(shard = self.bus.shard, "SFU shard stopped");
    }

    fn command(&mut self, cmd: Command, now: Instant) {
        match cmd {
            Command::Offer {
                room,
                user,
                conn,
                sdp,
                reply,
            } => {
                let result = self.add_peer(room, user, conn, &sdp, now);
                match &result {
                    Ok(_) => self.metrics.offers_accepted.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        tracing::debug!(error = %e, "media offer refused");
                        self.metrics.offers_refused.fetch_add(1, Ordering::Relaxed)
                    }
                };
                let answer = result.map(|(id, answer)| {
                    self.dirty.push(id);
                    answer
                });
                let _ = reply.send(answer);
                self.drive_dirty(now);
            }
            Command::Remove { room, user, conn } => {
                let id = self
                    .peers
                    .iter()
                    .find(|(_, p)| p.room == room && p.user == user && p.conn == conn)
                    .map(|(id, _)| *id);
                if let Some(id) = id {
                    self.remove_peer(id);
                }
            }
            Command::RelayGone { room, peer } => {
                if let Some(state) = self.rooms.get_mut(&room) {
                    if state.remote.remove(&peer).is_some() {
                        state.fwd.remove_peer(peer);
                    }
                }
            }
            Command::TcpStream {
                stream,
                remote,
                first,
            } => self.tcp_connected(stream, remote, &first, now),
            Command::Shutdown => {}
        }
    }

    /// A routed ICE-TCP connection: served if its first frame still names a peer here.
    fn tcp_connected(
        &mut self,
        stream: std::net::TcpStream,
        remote: SocketAddr,
        first: &[u8],
        now: Instant,
    ) {
        let Some(&id) = udp::stun_local_ufrag(first).and_then(|u| self.by_ufrag.get(u)) else {
            return;
        };
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if peer.tcp.len() >= tcp::MAX_PER_PEER || self.tcp_conns.contains_key(&remote) {
            return;
        }
        let out = match tcp::serve(stream, remote, self.tcp_tx.clone()) {
            Ok(out) => out,
            Err(e) => {
                tracing::debug!(error = %e, "ICE-TCP connection unusable");
                return;
            }
        };
        peer.tcp.push(remote);
        self.tcp_conns.insert(remote, TcpConn { peer: id, out });
        self.metrics.tcp_connections.fetch_add(1, Ordering::Relaxed);
        self.receive_tcp(first, remote, now);
    }

    fn tcp_closed(&mut self, remote: SocketAddr) {
        if let Some(conn) = self.tcp_conns.remove(&remote) {
            self.metrics.tcp_connections.fetch_sub(1, Ordering::Relaxed);
            if let Some(peer) = self.peers.get_mut(&conn.peer) {
                peer.tcp.retain(|r| *r != remote);
            }
        }
    }

    /// A datagram from an ICE-TCP connection: to its peer.
    fn receive_tcp(&mut self, data: &[u8], source: SocketAddr, now: Instant) {
        let (Some(tcp), Some(conn)) = (&self.tcp, self.tcp_conns.get(&source)) else {
            return;
        };
        let Ok(contents) = data.try_into() else {
            return;
        };
        let id = conn.peer;
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Tcp,
                source,
                destination: tcp.candidate,
                contents,
            },
        );
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if !peer.rtc.accepts(&input) {
            return;
        }
        self.metrics
            .tcp_packets_received
            .fetch_add(1, Ordering::Relaxed);
        if let Err(e) = peer.rtc.handle_input(input) {
            tracing::debug!(peer = id, error = %e, "peer input failed");
            peer.rtc.disconnect();
        }
        self.dirty.push(id);
        self.drive_dirty(now);
    }

    fn add_peer(
        &mut self,
        room: MediaRoom,
        user: UserId,
        conn: u64,
        sdp: &str,
        now: Instant,
    ) -> Result<(PeerId, String), String> {
        let Negotiated {
            mut rtc,
            shape,
            slots,
            red,
            mic_nack: mic_nack_negotiated,
            answer,
        } = negotiate(
            sdp,
            &self.provider,
            &self.cert,
            self.local,
            self.tcp.as_ref().map(|t| t.candidate),
            now,
        )?;
        // One peer per member and room: a new offer (ICE restart) replaces the old peer.
        let old: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.room == *room.id() && p.user == user)
            .map(|(id, _)| *id)
            .collect();
        for id in old {
            self.remove_peer(id);
        }
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
        let fwd_config = self.fwd_config.clone();
        let state = self
            .rooms
            .entry(room.id().clone())
            .or_insert_with(|| RoomState {
                live: room.clone(),
                fwd: RoomForwarder::new(fwd_config),
                audible_version: None,
                users: HashMap::default(),
                remote: HashMap::default(),
            });
        state.live = room.clone();
        state.fwd.add_peer(id, slots.len());
        state.users.insert(id, user.clone());
        state.audible_version = None; // re-read for the new peer
        tracing::debug!(room = %room.id(), user = %user, peer = id, mic = shape.mic.is_some(), slots = slots.len(), "media peer added");
        self.peers.insert(
            id,
            Peer {
                room: room.id().clone(),
                shared_user: Arc::new(user.clone()),
                user,
                conn,
                rtc,
                mic: shape.mic.as_deref().map(Mid::from),
                slots,
                red,
                rtt: None,
                mic_nack_negotiated,
                mic_nack: None,
                nacks_sent: 0,
                timeout: now,
                closed_by_client: false,
                ufrag: ufrag.clone(),
                tcp: Vec::new(),
            },
        );
        if let Some(tcp) = &self.tcp {
            tcp.routes.insert(&ufrag, self.bus.shard);
        }
        self.by_ufrag.insert(ufrag, id);
        self.timers.push(Reverse((now, id)));
        self.metrics.peers.fetch_add(1, Ordering::Relaxed);
        Ok((id, answer))
    }

    /// A peer died on its own (not removed by its connection): drop it and tell its
    /// connection, so the client knows to offer again.
    fn peer_lost(&mut self, id: PeerId, reason: &'static str) {
        if let Some(peer) = self.peers.get(&id) {
            if let Some(room) = self.rooms.get(&peer.room) {
                room.live.send(crate::rooms::rules::Outgoing::MediaEnded {
                    user: peer.user.clone(),
                    conn: peer.conn,
                    reason,
                });
            }
        }
        self.remove_peer(id);
    }

    fn remove_peer(&mut self, id: PeerId) {
        let Some(peer) = self.peers.remove(&id) else {
            return;
        };
        self.metrics.peers.fetch_sub(1, Ordering::Relaxed);
        self.by_addr.retain(|_, p| *p != id);
        self.by_ufrag.remove(&peer.ufrag);
        if let Some(tcp) = &self.tcp {
            tcp.routes.remove(&peer.ufrag);
        }
        for remote in &peer.tcp {
            if let Some(conn) = self.tcp_conns.remove(remote) {
                conn.out.close();
                self.metrics.tcp_connections.fetch_sub(1, Ordering::Relaxed);
            }
        }
        if let Some(room) = self.rooms.get_mut(&peer.room) {
            if room.fwd.audible(id) {
                relay_gone(&self.bus, &peer.room, id);
            }
            room.fwd.remove_peer(id);
        }
        tracing::debug!(room = %peer.room, user = %peer.user, peer = id, "media peer removed");
    }

    fn receive(&mut self, data: &[u8], source: SocketAddr, now: Instant) {
        let Ok(contents) = data.try_into() else {
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local,
                contents,
            },
        );
        let cached = self
            .by_addr
            .get(&source)
            .copied()
            .filter(|id| self.peers.get(id).is_some_and(|p| p.rtc.accepts(&input)));
        // A new address starts with a STUN request naming our ICE username fragment.
        let id = cached.or_else(|| {
            let id = *self.by_ufrag.get(udp::stun_local_ufrag(data)?)?;
            self.peers.get(&id)?.rtc.accepts(&input).then_some(id)
        });
        let Some(id) = id else {
            return;
        };
        if cached.is_none() {
            self.by_addr.insert(source, id);
        }
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if let Err(e) = peer.rtc.handle_input(input) {
            tracing::debug!(peer = id, error = %e, "peer input failed");
            peer.rtc.disconnect();
        }
        self.dirty.push(id);
        self.drive_dirty(now);
    }

    /// Fires the timers that are due (each peer's latest timeout only).
    fn timeouts(&mut self, now: Instant) {
        while let Some(&Reverse((t, id))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(peer) = self.peers.get_mut(&id) else {
                continue;
            };
            if peer.timeout != t {
                continue; // superseded by a later `Output::Timeout`
            }
            // Whatever str0m asks for next is a change, so it gets a heap entry.
            peer.timeout = now + NEVER;
            if let Err(e) = peer.rtc.handle_input(Input::Timeout(now)) {
                tracing::debug!(peer = id, error = %e, "peer timeout failed");
                peer.rtc.disconnect();
            }
            self.dirty.push(id);
        }
        self.drive_dirty(now);
        // Superseded entries pile up when timeouts move often: rebuild from the peers.
        if self.timers.len() > 4 * self.peers.len() + 64 {
            self.timers = self
                .peers
                .iter()
                .map(|(id, p)| Reverse((p.timeout, *id)))
                .collect();
        }
    }

    /// Drains the outputs of every peer that got input or media.
    fn drive_dirty(&mut self, now: Instant) {
        loop {
            if let Some(id) = self.dirty_tx.pop() {
                self.drive(id, now, true);
            } else if let Some(id) = self.dirty.pop() {
                self.drive(id, now, false);
            } else {
                return;
            }
        }
    }

    /// Handles a peer's outputs until its next timeout, or, with `until_transmit` (a peer
    /// that was just given one packet to send), until that packet is out: asking str0m for
    /// its next timeout costs as much as the send itself, and the peer's timer entry stays
    /// valid (an early wake-up is harmless).
    fn drive(&mut self, id: PeerId, now: Instant, until_transmit: bool) {
        loop {
            let Some(peer) = self.peers.get_mut(&id) else {
                return;
            };
            if !peer.rtc.is_alive() {
                self.peer_lost(id, "media_timeout");
                return;
            }
            let output = match peer.rtc.poll_output() {
                Ok(o) => o,
                Err(e) => {
                    tracing::debug!(peer = id, error = %e, "peer failed");
                    self.peer_lost(id, "media_failed");
                    return;
                }
            };
            match output {
                Output::Timeout(t) => {
                    if peer.closed_by_client {
                        self.peer_lost(id, "media_closed");
                        return;
                    }
                    if t != peer.timeout {
                        peer.timeout = t;
                        self.timers.push(Reverse((t, id)));
                    }
                    return;
                }
                Output::Transmit(t) if t.proto == Protocol::Tcp => {
                    // A connection too far behind drops the packet, like UDP would.
                    if let Some(conn) = self.tcp_conns.get(&t.destination) {
                        if !conn.out.push(&t.contents) {
                            self.metrics
                                .tcp_packets_dropped
                                .fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if until_transmit {
                        return;
                    }
                }
                Output::Transmit(t) => {
                    // UDP: a full send buffer drops the datagram, like the network would.
                    self.out.push(self.fd, t.destination, &t.contents);
                    if until_transmit {
                        return;
                    }
                }
                Output::Event(Event::MediaData(data)) => self.media(id, data, now),
                Output::Event(Event::MediaIngressStats(stats)) => {
                    if Some(stats.mid) == peer.mic && stats.nacks > peer.nacks_sent {
                        let new = stats.nacks - peer.nacks_sent;
                        peer.nacks_sent = stats.nacks;
                        self.metrics.nacks_sent.fetch_add(new, Ordering::Relaxed);
                    }
                }
                Output::Event(Event::MediaEgressStats(stats)) => {
                    if stats.rtt.is_some() {
                        peer.rtt = stats.rtt;
                        apply_mic_nack(peer);
                    }
                    // A receiver's loss report on one of its slots: RED on or off for it.
                    let Some(i) = peer.slots.iter().position(|(mid, _)| *mid == stats.mid) else {
                        continue;
                    };
                    let (Some(Some(ctl)), Some(loss)) = (peer.red.get_mut(i), stats.loss) else {
                        continue;
                    };
                    let was = ctl.on();
                    let on = ctl.report(loss);
                    if on != was {
                        peer.rtc.direct_api().set_red_send(stats.mid, on);
                        self.metrics.red_switches.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Output::Event(Event::IceConnectionStateChange(
                    IceConnectionState::Disconnected,
                )) => {
                    // ICE-lite: the client stopped its consent checks (str0m prunes the pair 15 s
                    // after the last binding request; docs/protocol.md §8.4). It may offer again.
                    self.peer_lost(id, "media_timeout");
                    return;
                }
                Output::Event(Event::Closed) => {
                    // The client closed its side (DTLS close_notify); drop the peer once the
                    // closing output is drained.
                    peer.closed_by_client = true;
                }
                Output::Event(_) => {}
            }
        }
    }

    /// Audio from `from`: forwarded to the local receivers and slots the room's forwarder
    /// picks, and relayed once to the other shards when audible.
    fn media(&mut self, from: PeerId, data: MediaData, now: Instant) {
        let now_ms = self.now_ms(now);
        let Some(peer) = self.peers.get_mut(&from) else {
            return;
        };
        if peer.mic != Some(data.mid) {
            return;
        }
        if peer.mic_nack.is_none() {
            // The microphone stream exists now: NACKs on if the round trip allows.
            apply_mic_nack(peer);
        }
        self.metrics
            .packets_received
            .fetch_add(1, Ordering::Relaxed);
        // Cluster only: the speaker's name travels with their audio between nodes.
        let speaker_name = self.bus.cascade.is_some().then(|| peer.shared_user.clone());
        let shared_user = peer.shared_user.clone();
        let Some(room) = self.rooms.get_mut(&peer.room) else {
            return;
        };
        let rtp_time = data.time.numer();
        if let (MediaRoom::Edge(edge), Some(speaker)) = (&room.live, &speaker_name) {
            // Another node owns the room: it alone decides what is audible. The microphone
            // goes up to it; what it forwards comes back down for the listeners here.
            if let Some(tx) = &self.bus.cascade {
                let up = cascade::Outbound::Up {
                    room: edge.clone(),
                    speaker: speaker.clone(),
                    audio: cascade::Audio {
                        rtp_time,
                        audio_level: data.ext_vals.audio_level,
                        voice_activity: data.ext_vals.voice_activity,
                        payload: data.data,
                    },
                };
                if tx.try_send(up).is_err() {
                    self.metrics
                        .packets_relay_dropped
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            return;
        }
        refresh_audible(room, &self.peers, &self.bus);
        let level = data.ext_vals.audio_level.map(|l| l.unsigned_abs().min(127));
        let verdict = room
            .fwd
            .on_packet(from, level, rtp_time, now_ms, &mut self.forwards);
        if verdict == Verdict::NotAudible {
            self.metrics
                .packets_dropped_not_on_stage
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        let relayed = Relayed {
            room: room.live.clone(),
            from,
            speaker: None,
            audio_level: data.ext_vals.audio_level,
            voice_activity: data.ext_vals.voice_activity,
            rtp_time,
            network_time: data.network_time,
            payload: data.data,
        };
        if let Some(tap) = &self.bus.tap {
            let _ = tap.try_send(super::TappedPayload {
                speaker: shared_user.clone(),
                payload: relayed.payload.clone(),
            });
        }
        // Recorded rooms: what listeners hear (audible, after the checks above) is recorded.
        if let MediaRoom::Owned(live) = &relayed.room {
            live.recorder.offer(
                &shared_user,
                relayed.network_time,
                rtp_time,
                &relayed.payload,
            );
        }
        for other in &self.bus.relay {
            if let Some(tx) = other.upgrade() {
                let counter = match tx.try_send(relayed.clone()) {
                    Ok(()) => &self.metrics.packets_relayed,
                    Err(_) => &self.metrics.packets_relay_dropped,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Cluster: the room's edges get it once each (the cascade task fans it out).
        if let (Some(tx), MediaRoom::Owned(live), Some(speaker)) =
            (&self.bus.cascade, &relayed.room, speaker_name)
        {
            let down = cascade::Outbound::Owned {
                room: live.clone(),
                speaker,
                audio: cascade::Audio {
                    rtp_time,
                    audio_level: relayed.audio_level,
                    voice_activity: relayed.voice_activity,
                    payload: relayed.payload.clone(),
                },
            };
            if tx.try_send(down).is_err() {
                self.metrics
                    .packets_relay_dropped
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        self.write_forwards(&relayed);
    }

    /// Audio another shard received from one of its audible speakers (the caller drives the
    /// peers it wrote to).
    fn relayed(&mut self, relayed: Relayed, now: Instant) {
        if now.saturating_duration_since(relayed.network_time) > RELAY_STALE {
            self.metrics
                .packets_relay_dropped
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        let now_ms = self.now_ms(now);
        // Audio of another node's speaker in a room this node owns: the first shard reports
        // its level to the room, even with no member of its own there.
        let report_level = relayed.speaker.is_some()
            && self.bus.shard == 0
            && matches!(relayed.room, MediaRoom::Owned(_));
        if report_level && !self.rooms.contains_key(relayed.room.id()) {
            self.rooms.insert(
                relayed.room.id().clone(),
                RoomState {
                    live: relayed.room.clone(),
                    fwd: RoomForwarder::new(self.fwd_config.clone()),
                    audible_version: None,
                    users: HashMap::default(),
                    remote: HashMap::default(),
                },
            );
        }
        let Some(room) = self.rooms.get_mut(relayed.room.id()) else {
            return; // nobody in this room on this shard
        };
        if let (true, Some(user)) = (report_level, &relayed.speaker) {
            room.users
                .entry(relayed.from)
                .or_insert_with(|| (**user).clone());
        }
        if !room.fwd.has_peer(relayed.from) {
            room.fwd.add_peer(relayed.from, 0);
            room.fwd.set_audible(relayed.from, true);
        }
        room.remote.insert(relayed.from, now);
        let level = relayed.audio_level.map(|l| l.unsigned_abs().min(127));
        room.fwd.on_packet(
            relayed.from,
            level,
            relayed.rtp_time,
            now_ms,
            &mut self.forwards,
        );
        if let Some(speaker) = &relayed.speaker {
            // Never a speaker's own voice back to them (they may be served here).
            let peers = &self.peers;
            self.forwards
                .retain(|f| peers.get(&f.to).is_none_or(|p| p.user != **speaker));
        }
        self.write_forwards(&relayed);
    }

    /// Writes `self.forwards` (one copy per local receiver slot) and sends them.
    fn write_forwards(&mut self, packet: &Relayed) {
        let mut written = 0;
        for i in 0..self.forwards.len() {
            let f = self.forwards[i];
            let Some(rx) = self.peers.get_mut(&f.to) else {
                continue;
            };
            let Some(&(mid, pt)) = rx.slots.get(f.slot) else {
                continue;
            };
            let Some(mut writer) = rx.rtc.writer(mid) else {
                continue;
            };
            if let Some(l) = packet.audio_level {
                writer = writer.audio_level(l, packet.voice_activity.unwrap_or(l > -127));
            }
            let time = MediaTime::new(f.rtp_time, Frequency::FORTY_EIGHT_KHZ);
            match writer.write(pt, packet.network_time, time, packet.payload.clone()) {
                Ok(()) => {
                    written += 1;
                    self.dirty_tx.push(f.to);
                }
                Err(e) => tracing::debug!(peer = f.to, error = %e, "write failed"),
            }
        }
        if written > 0 {
            self.metrics
                .packets_forwarded
                .fetch_add(written, Ordering::Relaxed);
        }
    }

    /// Sends each room's `levels` changes; drops the peers of rooms that ended.
    fn levels(&mut self, now: Instant) {
        let now_ms = self.now_ms(now);
        let mut ended = Vec::new();
        for (id, room) in &mut self.rooms {
            if room.live.ended() {
                ended.push(id.clone());
                continue;
            }
            refresh_audible(room, &self.peers, &self.bus);
            // Speakers of other shards that stopped sending (their shard says when they
            // stop being audible; this covers a shard that could not).
            let fwd = &mut room.fwd;
            room.remote.retain(|p, seen| {
                let keep = now.duration_since(*seen) < REMOTE_SPEAKER_KEEP;
                if !keep {
                    fwd.remove_peer(*p);
                }
                keep
            });
            let due = room.fwd.levels_due(now_ms);
            let levels: Vec<SpeakerLevel> = due
                .iter()
                .filter_map(|(p, level)| {
                    Some(SpeakerLevel {
                        user: room.users.get(p)?.clone(),
                        level: *level,
                    })
                })
                .collect();
            // Users of peers that are gone and whose level is no longer pending.
            let fwd = &room.fwd;
            room.users
                .retain(|p, _| self.peers.contains_key(p) || fwd.level(*p) > 0.0);
            // An edge's clients hear levels from the owner, through their bridged connection.
            if !levels.is_empty() && matches!(room.live, MediaRoom::Owned(_)) {
                room.live.send(Outgoing::Event {
                    to: Audience::All,
                    event: RoomEvent::Levels { levels },
                });
            }
        }
        for room in ended {
            let ids: Vec<PeerId> = self
                .peers
                .iter()
                .filter(|(_, p)| p.room == room)
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                self.remove_peer(id);
            }
            self.rooms.remove(&room);
        }
        self.rooms
            .retain(|_, r| r.fwd.peers().count() > r.remote.len() || !r.users.is_empty());
    }
}

/// A negotiated offer: the peer's `Rtc`, what the offer asked for, the slots' (mid, payload
/// type) and the finished SDP answer.
pub(crate) struct Negotiated {
    pub rtc: Rtc,
    pub shape: offer::OfferShape,
    pub slots: Vec<(Mid, Pt)>,
    /// Per slot: RED negotiated (its wrapping control), or plain Opus only.
    pub red: Vec<Option<RedControl>>,
    /// The microphone m-line negotiated NACK feedback for Opus.
    pub mic_nack: bool,
    pub answer: String,
}

/// Everything the SFU does with a client's SDP text, without touching any peer or socket:
/// the shape check, str0m's parse and negotiation, the slots' payload types, the answer.
/// Any offer text gives an answer or an error, never a panic (`offer_proptest.rs`).
pub(crate) fn negotiate(
    sdp: &str,
    provider: &Arc<CryptoProvider>,
    cert: &DtlsCert,
    local: SocketAddr,
    tcp: Option<SocketAddr>,
    now: Instant,
) -> Result<Negotiated, String> {
    let shape = offer::inspect(sdp)?;
    let parsed = SdpOffer::from_sdp_string(sdp).map_err(|e| format!("bad SDP: {e}"))?;
    // Only the header extensions forwarding uses: the speaker's level (loudest-N, `levels`)
    // and the MID. No transport-wide congestion control for audio: it would make every
    // listener send feedback the SFU has no use for, and register every packet sent.
    let mut exts = ExtensionMap::empty();
    exts.set(1, Extension::AudioLevel);
    exts.set(4, Extension::RtpMid);
    let mut rtc = Rtc::builder()
        .set_ice_lite(true)
        .set_crypto_provider(provider.clone())
        .set_dtls_cert(cert.clone())
        .set_extension_map(exts)
        // Every write is one packet, sent at once; audio is not retransmitted (no NACK:
        // str0m 0.25 resends only through RTX and marks Opus packets not nackable).
        .set_send_buffer_audio(4)
        .clear_codecs()
        // RED (RFC 2198) with clients that offer it: unwrapped on receive, and sent to a
        // receiver while its loss asks for it (`red.rs`).
        .enable_opus(true, true)
        .set_red_distances(&RED_DISTANCES)
        // Egress statistics carry each receiver's reported loss (RED on/off).
        .set_stats_interval(Some(Duration::from_secs(1)))
        // Forward soon after a loss: the clients' jitter buffers and FEC deal with gaps.
        .set_reordering_size_audio(3)
        .set_reordering_timeout_audio(Some(Duration::from_millis(100)))
        .build(now);
    let candidate =
        Candidate::host(local, "udp").map_err(|e| format!("bad local candidate: {e}"))?;
    rtc.add_local_candidate(candidate);
    // ICE-TCP: a passive candidate (the client connects; lower priority than UDP).
    if let Some(tcp) = tcp {
        let candidate = Candidate::builder()
            .tcp()
            .host(tcp)
            .tcptype(TcpType::Passive)
            .build()
            .map_err(|e| format!("bad local TCP candidate: {e}"))?;
        rtc.add_local_candidate(candidate);
    }
    let answer = rtc
        .sdp_api()
        .accept_offer(parsed)
        .map_err(|e| format!("offer not accepted: {e}"))?;
    let mut slots = Vec::with_capacity(shape.slots.len());
    let mut red = Vec::with_capacity(shape.slots.len());
    for mid in &shape.slots {
        let mid = Mid::from(mid.as_str());
        let opus = rtc.writer(mid).and_then(|w| {
            w.payload_params()
                .find(|p| p.spec().codec == Codec::Opus)
                .map(|p| (p.pt(), p.red().is_some()))
        });
        let Some((pt, with_red)) = opus else {
            return Err(format!("no opus on recvonly m-line {mid}"));
        };
        slots.push((mid, pt));
        red.push(with_red.then(RedControl::default));
    }
    let mic_nack = shape
        .mic
        .as_deref()
        .is_some_and(|mid| offer::offers_opus_nack(sdp, mid));
    let answer = answer::finish(&answer.to_sdp_string());
    // The microphone m-line asks the client for resends (`apply_mic_nack`).
    let answer = match (mic_nack, shape.mic.as_deref()) {
        (true, Some(mic)) => answer::with_nack(&answer, mic),
        _ => answer,
    };
    Ok(Negotiated {
        rtc,
        shape,
        slots,
        red,
        mic_nack,
        answer,
    })
}

/// NACKs for a peer's microphone stream on while its round trip leaves room for a resend
/// ([`NACK_MAX_RTT`]; unknown counts as room), off otherwise. str0m sends none for a stream
/// without RTX unless told (audio has no RTX; the client resends the packet itself).
fn apply_mic_nack(peer: &mut Peer) {
    let Some(mic) = peer.mic else {
        return;
    };
    let want = peer.mic_nack_negotiated && peer.rtt.is_none_or(|r| r <= NACK_MAX_RTT);
    if peer.mic_nack == Some(want) {
        return;
    }
    if let Some(stream) = peer.rtc.direct_api().stream_rx_by_mid(mic, None) {
        stream.suppress_nack(!want);
        peer.mic_nack = Some(want);
    }
}

/// Re-reads who is audible when the room's set changed since the last look (one atomic
/// load per packet otherwise). Only this shard's peers: speakers of other shards are
/// audible while their shard relays them. A local speaker who stops being audible is
/// announced to the other shards, which free its slots at once.
fn refresh_audible(room: &mut RoomState, peers: &HashMap<PeerId, Peer>, bus: &Bus) {
    // An edge's own peers are never forwarded here (the owner decides; see `media`).
    let MediaRoom::Owned(live) = &room.live else {
        return;
    };
    let set = live.audible_set();
    let version = set.version();
    if room.audible_version == Some(version) {
        return;
    }
    room.audible_version = Some(version);
    let ids: Vec<PeerId> = room.fwd.peers().collect();
    for id in ids {
        let Some(p) = peers.get(&id) else {
            continue;
        };
        let audible = set.contains(&p.user);
        if !audible && room.fwd.audible(id) {
            relay_gone(bus, &live.id, id);
        }
        room.fwd.set_audible(id, audible);
    }
}

/// Tells the other shards that `peer` of `room` is no longer audible (or gone).
fn relay_gone(bus: &Bus, room: &RoomId, peer: PeerId) {
    for other in &bus.control {
        if let Some(tx) = other.upgrade() {
            let _ = tx.send(Command::RelayGone {
                room: room.clone(),
                peer,
            });
        }
    }
}
