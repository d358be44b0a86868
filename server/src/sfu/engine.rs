//! The SFU loop: one UDP socket, every peer's str0m `Rtc`, one task on the SFU thread.
//!
//! Each turn waits for the first of: a command from signalling, a datagram, the earliest
//! peer timeout or the levels timer. A datagram goes to the peer that `accepts` it (cached
//! by source address); the peer's outputs are drained at once (transmits, events). Audio
//! from a peer's microphone m-line goes through the room's [`RoomForwarder`], which says
//! which receivers and slots get a copy; the payload is shared (`Arc<[u8]>`), not copied.

use super::forward::{Forward, ForwardConfig, PeerId, RoomForwarder, Verdict};
use super::{answer, offer, Command, SfuMetrics};
use crate::rooms::rules::{Audience, Outgoing};
use crate::rooms::LiveRoom;
use ruang_proto::{RoomEvent, RoomId, SpeakerLevel, UserId};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::change::SdpOffer;
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::format::Codec;
use str0m::media::{Frequency, MediaData, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// How often `levels` events are considered.
const LEVELS_EVERY: Duration = Duration::from_millis(250);
/// Longest sleep when no peer has anything to do.
const IDLE: Duration = Duration::from_millis(500);

struct Peer {
    room: RoomId,
    user: UserId,
    conn: u64,
    rtc: Rtc,
    /// The client's microphone m-line (we receive on it).
    mic: Option<Mid>,
    /// The client's recvonly m-lines (we send on them) with their Opus payload type.
    slots: Vec<(Mid, Pt)>,
    timeout: Instant,
    /// The client closed its transport (str0m's `Event::Closed`).
    closed_by_client: bool,
}

struct RoomState {
    live: Arc<LiveRoom>,
    fwd: RoomForwarder,
    audible_version: Option<u64>,
    /// Users of the room's peers, kept one levels round after a peer left (to report 0).
    users: HashMap<PeerId, UserId>,
}

pub(crate) struct Engine {
    local: SocketAddr,
    provider: Arc<CryptoProvider>,
    cert: DtlsCert,
    fwd_config: ForwardConfig,
    metrics: Arc<SfuMetrics>,
    peers: HashMap<PeerId, Peer>,
    by_addr: HashMap<SocketAddr, PeerId>,
    rooms: HashMap<RoomId, RoomState>,
    next_id: PeerId,
    start: Instant,
    /// Reused buffers of the forwarding path.
    forwards: Vec<Forward>,
    dirty: Vec<PeerId>,
}

impl Engine {
    pub(crate) fn new(
        local: SocketAddr,
        forward_limit: usize,
        metrics: Arc<SfuMetrics>,
    ) -> anyhow::Result<Engine> {
        let provider = Arc::new(str0m::crypto::from_feature_flags());
        let cert = provider
            .dtls_provider
            .generate_certificate()
            .ok_or_else(|| anyhow::anyhow!("could not generate the DTLS certificate"))?;
        Ok(Engine {
            local,
            provider,
            cert,
            fwd_config: ForwardConfig {
                forward_limit: forward_limit.max(1),
                ..ForwardConfig::default()
            },
            metrics,
            peers: HashMap::new(),
            by_addr: HashMap::new(),
            rooms: HashMap::new(),
            next_id: 1,
            start: Instant::now(),
            forwards: Vec::with_capacity(64),
            dirty: Vec::with_capacity(64),
        })
    }

    fn now_ms(&self, now: Instant) -> i64 {
        now.duration_since(self.start).as_millis() as i64
    }

    pub(crate) async fn run(
        mut self,
        socket: std::net::UdpSocket,
        mut rx: mpsc::UnboundedReceiver<Command>,
    ) {
        let socket = match UdpSocket::from_std(socket) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "SFU socket unusable");
                return;
            }
        };
        let mut buf = vec![0u8; 2048];
        let mut next_levels = Instant::now() + LEVELS_EVERY;
        loop {
            let deadline = self
                .peers
                .values()
                .map(|p| p.timeout)
                .min()
                .unwrap_or_else(|| Instant::now() + IDLE)
                .min(next_levels);
            enum Wake {
                Cmd(Option<Command>),
                Packet(std::io::Result<(usize, SocketAddr)>),
                Timer,
            }
            let wake = tokio::select! {
                cmd = rx.recv() => Wake::Cmd(cmd),
                r = socket.recv_from(&mut buf) => Wake::Packet(r),
                _ = tokio::time::sleep_until(deadline.into()) => Wake::Timer,
            };
            let now = Instant::now();
            match wake {
                Wake::Cmd(None) | Wake::Cmd(Some(Command::Shutdown)) => break,
                Wake::Cmd(Some(cmd)) => self.command(cmd, now, &socket),
                Wake::Packet(Ok((n, source))) => self.receive(&buf[..n], source, now, &socket),
                // ICMP errors from gone clients surface here on some systems; keep going.
                Wake::Packet(Err(e)) => tracing::debug!(error = %e, "SFU socket receive"),
                Wake::Timer => {}
            }
            self.timeouts(now, &socket);
            if now >= next_levels {
                self.levels(now);
                next_levels = now + LEVELS_EVERY;
            }
        }
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for id in ids {
            self.remove_peer(id);
        }
        tracing::info!("SFU stopped");
    }

    fn command(&mut self, cmd: Command, now: Instant, socket: &UdpSocket) {
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
                self.drive_dirty(now, socket);
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
            Command::Shutdown => {}
        }
    }

    fn add_peer(
        &mut self,
        room: Arc<LiveRoom>,
        user: UserId,
        conn: u64,
        sdp: &str,
        now: Instant,
    ) -> Result<(PeerId, String), String> {
        let Negotiated {
            rtc,
            shape,
            slots,
            answer,
        } = negotiate(sdp, &self.provider, &self.cert, self.local, now)?;
        // One peer per member and room: a new offer (ICE restart) replaces the old peer.
        let old: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.room == room.id && p.user == user)
            .map(|(id, _)| *id)
            .collect();
        for id in old {
            self.remove_peer(id);
        }
        let id = self.next_id;
        self.next_id += 1;
        let fwd_config = self.fwd_config.clone();
        let state = self
            .rooms
            .entry(room.id.clone())
            .or_insert_with(|| RoomState {
                live: room.clone(),
                fwd: RoomForwarder::new(fwd_config),
                audible_version: None,
                users: HashMap::new(),
            });
        state.live = room.clone();
        state.fwd.add_peer(id, slots.len());
        state.users.insert(id, user.clone());
        state.audible_version = None; // re-read for the new peer
        tracing::debug!(room = %room.id, user = %user, peer = id, mic = shape.mic.is_some(), slots = slots.len(), "media peer added");
        self.peers.insert(
            id,
            Peer {
                room: room.id.clone(),
                user,
                conn,
                rtc,
                mic: shape.mic.as_deref().map(Mid::from),
                slots,
                timeout: now,
                closed_by_client: false,
            },
        );
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
        if let Some(room) = self.rooms.get_mut(&peer.room) {
            room.fwd.remove_peer(id);
        }
        tracing::debug!(room = %peer.room, user = %peer.user, peer = id, "media peer removed");
    }

    fn receive(&mut self, data: &[u8], source: SocketAddr, now: Instant, socket: &UdpSocket) {
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
        let id = cached.or_else(|| {
            self.peers
                .iter()
                .find(|(_, p)| p.rtc.accepts(&input))
                .map(|(id, _)| *id)
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
        self.drive_dirty(now, socket);
    }

    fn timeouts(&mut self, now: Instant, socket: &UdpSocket) {
        for (id, peer) in &mut self.peers {
            if peer.timeout <= now {
                if let Err(e) = peer.rtc.handle_input(Input::Timeout(now)) {
                    tracing::debug!(peer = id, error = %e, "peer timeout failed");
                    peer.rtc.disconnect();
                }
                self.dirty.push(*id);
            }
        }
        self.drive_dirty(now, socket);
    }

    /// Drains the outputs of every peer that got input or media.
    fn drive_dirty(&mut self, now: Instant, socket: &UdpSocket) {
        while let Some(id) = self.dirty.pop() {
            self.drive(id, now, socket);
        }
    }

    fn drive(&mut self, id: PeerId, now: Instant, socket: &UdpSocket) {
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
                    peer.timeout = t;
                    return;
                }
                Output::Transmit(t) => {
                    // UDP: a full send buffer drops the datagram, like the network would.
                    let _ = socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(Event::MediaData(data)) => self.media(id, data, now),
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

    /// Audio from `from`: forwarded to the receivers and slots the room's forwarder picks.
    fn media(&mut self, from: PeerId, data: MediaData, now: Instant) {
        let now_ms = self.now_ms(now);
        let Some(peer) = self.peers.get(&from) else {
            return;
        };
        if peer.mic != Some(data.mid) {
            return;
        }
        self.metrics
            .packets_received
            .fetch_add(1, Ordering::Relaxed);
        let Some(room) = self.rooms.get_mut(&peer.room) else {
            return;
        };
        refresh_audible(room, &self.peers);
        let level = data.ext_vals.audio_level.map(|l| l.unsigned_abs().min(127));
        let verdict =
            room.fwd
                .on_packet(from, level, data.time.numer(), now_ms, &mut self.forwards);
        if verdict == Verdict::NotAudible {
            self.metrics
                .packets_dropped_not_on_stage
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        for f in &self.forwards {
            let Some(rx) = self.peers.get_mut(&f.to) else {
                continue;
            };
            let Some(&(mid, pt)) = rx.slots.get(f.slot) else {
                continue;
            };
            let Some(mut writer) = rx.rtc.writer(mid) else {
                continue;
            };
            if let Some(l) = data.ext_vals.audio_level {
                writer = writer.audio_level(l, data.ext_vals.voice_activity.unwrap_or(l > -127));
            }
            let time = MediaTime::new(f.rtp_time, Frequency::FORTY_EIGHT_KHZ);
            match writer.write(pt, data.network_time, time, data.data.clone()) {
                Ok(()) => {
                    self.metrics
                        .packets_forwarded
                        .fetch_add(1, Ordering::Relaxed);
                    self.dirty.push(f.to);
                }
                Err(e) => tracing::debug!(peer = f.to, error = %e, "write failed"),
            }
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
            refresh_audible(room, &self.peers);
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
            if !levels.is_empty() {
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
            .retain(|_, r| !r.fwd.is_empty() || !r.users.is_empty());
    }
}

/// A negotiated offer: the peer's `Rtc`, what the offer asked for, the slots' (mid, payload
/// type) and the finished SDP answer.
pub(crate) struct Negotiated {
    pub rtc: Rtc,
    pub shape: offer::OfferShape,
    pub slots: Vec<(Mid, Pt)>,
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
    now: Instant,
) -> Result<Negotiated, String> {
    let shape = offer::inspect(sdp)?;
    let parsed = SdpOffer::from_sdp_string(sdp).map_err(|e| format!("bad SDP: {e}"))?;
    let mut rtc = Rtc::builder()
        .set_ice_lite(true)
        .set_crypto_provider(provider.clone())
        .set_dtls_cert(cert.clone())
        .clear_codecs()
        .enable_opus(true, false)
        // Forward soon after a loss: the clients' jitter buffers and FEC deal with gaps.
        .set_reordering_size_audio(3)
        .set_reordering_timeout_audio(Some(Duration::from_millis(100)))
        .build(now);
    let candidate =
        Candidate::host(local, "udp").map_err(|e| format!("bad local candidate: {e}"))?;
    rtc.add_local_candidate(candidate);
    let answer = rtc
        .sdp_api()
        .accept_offer(parsed)
        .map_err(|e| format!("offer not accepted: {e}"))?;
    let mut slots = Vec::with_capacity(shape.slots.len());
    for mid in &shape.slots {
        let mid = Mid::from(mid.as_str());
        let pt = rtc.writer(mid).and_then(|w| {
            w.payload_params()
                .find(|p| p.spec().codec == Codec::Opus)
                .map(|p| p.pt())
        });
        let Some(pt) = pt else {
            return Err(format!("no opus on recvonly m-line {mid}"));
        };
        slots.push((mid, pt));
    }
    Ok(Negotiated {
        rtc,
        shape,
        slots,
        answer: answer::finish(&answer.to_sdp_string()),
    })
}

/// Re-reads who is audible when the room's set changed since the last look (one atomic
/// load per packet otherwise).
fn refresh_audible(room: &mut RoomState, peers: &HashMap<PeerId, Peer>) {
    let set = room.live.audible_set();
    let version = set.version();
    if room.audible_version == Some(version) {
        return;
    }
    room.audible_version = Some(version);
    let ids: Vec<PeerId> = room.fwd.peers().collect();
    for id in ids {
        let audible = peers.get(&id).is_some_and(|p| set.contains(&p.user));
        room.fwd.set_audible(id, audible);
    }
}
