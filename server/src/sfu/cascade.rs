//! Cluster mode's media cascade: one room's members served by the SFUs of many nodes.
//!
//! A member's media is served by the node their WebSocket reached. For a room another node
//! owns, that node is an **edge** of the room ([`EdgeRoom`]):
//! - its members' microphones go **up** to the owner, once per packet;
//! - the owner alone decides what is audible (its rules' audible set, as on one node); it
//!   forwards audible audio to its own members and sends it **down** once to every edge that
//!   subscribed to the room (one stream per speaker, not per listener);
//! - each edge hands what comes down to its shards, which fan it out to their members with
//!   the same loudest-N forwarding as on one node.
//!
//! Between nodes: UDP datagrams on each node's cascade port (advertised in its heartbeat),
//! each authenticated with HMAC-SHA-256 (cluster key, 16-byte tag) and dropped unless its
//! send time is within [`MAX_AGE_MS`] and its RTP time is newer than the speaker's last one
//! (so nothing can be replayed). Edges subscribe every second; a subscription lapses after
//! three seconds, and an edge follows the room to its new owner after a takeover by itself.

use super::{forward::PeerId, MediaRoom, Relayed, Sfu};
use crate::cluster::auth::NodeKey;
use crate::cluster::Cluster;
use crate::rooms::registry::Dispatch;
use crate::rooms::rules::Outgoing;
use crate::rooms::{LiveRoom, Registry};
use crate::store::now_ms;
use ruang_proto::{RoomId, UserId};
use rustc_hash::FxHashMap as HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc};

/// Packets shards may have waiting for the cascade task.
pub const QUEUE: usize = 4096;
/// A datagram older (or newer) than this is dropped: audio is worthless after it anyway.
const MAX_AGE_MS: i64 = 2_000;
/// How often an edge (re)subscribes to its rooms' owners.
const SUBSCRIBE_EVERY: Duration = Duration::from_secs(1);
/// A subscription not renewed for this long lapses.
const SUBSCRIPTION_TTL: Duration = Duration::from_secs(3);
/// A remote speaker not heard from for this long is forgotten (its id and RTP time).
const SPEAKER_TTL: Duration = Duration::from_secs(30);

const MAGIC: &[u8; 4] = b"RGC1";
const TAG: usize = 16;

/// One Opus packet as nodes pass it.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// The speaker's RTP time (48 kHz, extended: only grows).
    pub rtp_time: u64,
    pub audio_level: Option<i8>,
    pub voice_activity: Option<bool>,
    pub payload: Arc<[u8]>,
}

/// What shards hand the cascade task.
pub enum Outbound {
    /// Audible audio of a room this node owns, from a member served here: for the edges.
    Owned {
        room: Arc<LiveRoom>,
        speaker: Arc<UserId>,
        audio: Audio,
    },
    /// A microphone packet of a member served here, in a room another node owns: for the
    /// owner to judge.
    Up {
        room: Arc<EdgeRoom>,
        speaker: Arc<UserId>,
        audio: Audio,
    },
}

/// A room another node owns, with members whose media this node serves.
pub struct EdgeRoom {
    pub id: RoomId,
    /// Levels never come from here (the owner sends them); "media ended" does.
    tx: broadcast::Sender<Dispatch>,
    /// The owner's cascade address, looked up every second.
    owner: RwLock<Option<SocketAddr>>,
}

impl EdgeRoom {
    pub fn send(&self, out: Outgoing) {
        let _ = self.tx.send(Arc::new(out));
    }

    /// Output for this node's bridged connections of the room.
    pub fn subscribe(&self) -> broadcast::Receiver<Dispatch> {
        self.tx.subscribe()
    }

    fn owner(&self) -> Option<SocketAddr> {
        *self.owner.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// The edge rooms of this node, kept while a bridged connection holds them.
#[derive(Default)]
pub struct EdgeRooms {
    rooms: Mutex<std::collections::HashMap<RoomId, Arc<EdgeRoom>>>,
    /// Wakes the cascade task when a room is new here: it finds the owner and subscribes
    /// at once, before the member's media is even connected.
    fresh: tokio::sync::Notify,
}

impl EdgeRooms {
    /// The edge room `id` (made on first use). Hold the `Arc` while serving media in it.
    pub fn get_or_make(&self, id: &RoomId) -> Arc<EdgeRoom> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = rooms.get(id) {
            return r.clone();
        }
        let room = Arc::new(EdgeRoom {
            id: id.clone(),
            tx: broadcast::channel(256).0,
            owner: RwLock::new(None),
        });
        rooms.insert(id.clone(), room.clone());
        self.fresh.notify_one();
        room
    }

    fn get(&self, id: &str) -> Option<Arc<EdgeRoom>> {
        self.rooms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&RoomId(id.to_owned()))
            .cloned()
    }

    /// The rooms some connection still holds (the others are forgotten).
    fn live(&self) -> Vec<Arc<EdgeRoom>> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms.retain(|_, r| Arc::strong_count(r) > 1);
        rooms.values().cloned().collect()
    }
}

// ----- wire format -----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Up = 1,
    Down = 2,
    Subscribe = 3,
}

/// One datagram between nodes, decoded.
#[derive(Debug, PartialEq)]
struct Datagram<'a> {
    kind: Kind,
    sent_at: i64,
    room: &'a str,
    speaker: &'a str,
    rtp_time: u64,
    audio_level: Option<i8>,
    voice_activity: Option<bool>,
    payload: &'a [u8],
}

/// `MAGIC, kind, sent_at (i64 BE), room len + room, speaker len + speaker, rtp_time (u64 BE),
/// level, flags (bit 0: level present, bit 1: voice activity present, bit 2: its value),
/// payload, then the 16-byte HMAC tag over everything before it.`
fn encode(key: &NodeKey, d: &Datagram, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(MAGIC);
    out.push(d.kind as u8);
    out.extend_from_slice(&d.sent_at.to_be_bytes());
    out.push(d.room.len() as u8);
    out.extend_from_slice(d.room.as_bytes());
    out.push(d.speaker.len() as u8);
    out.extend_from_slice(d.speaker.as_bytes());
    out.extend_from_slice(&d.rtp_time.to_be_bytes());
    out.push(d.audio_level.unwrap_or(0) as u8);
    let mut flags = 0u8;
    if d.audio_level.is_some() {
        flags |= 1;
    }
    if let Some(v) = d.voice_activity {
        flags |= 2 | ((v as u8) << 2);
    }
    out.push(flags);
    out.extend_from_slice(d.payload);
    let tag = key.tag(out);
    out.extend_from_slice(&tag[..TAG]);
}

/// Checks the tag and parses; None for anything malformed or not ours.
fn decode<'a>(key: &NodeKey, data: &'a [u8]) -> Option<Datagram<'a>> {
    if data.len() < MAGIC.len() + 1 + 8 + 1 + 1 + 8 + 2 + TAG || !data.starts_with(MAGIC) {
        return None;
    }
    let (body, tag) = data.split_at(data.len() - TAG);
    if !key.verify_tag(body, tag) {
        return None;
    }
    let mut at = MAGIC.len();
    let kind = match body[at] {
        1 => Kind::Up,
        2 => Kind::Down,
        3 => Kind::Subscribe,
        _ => return None,
    };
    at += 1;
    let sent_at = i64::from_be_bytes(body.get(at..at + 8)?.try_into().ok()?);
    at += 8;
    let text = |at: &mut usize| -> Option<&'a str> {
        let len = *body.get(*at)? as usize;
        let s = std::str::from_utf8(body.get(*at + 1..*at + 1 + len)?).ok()?;
        *at += 1 + len;
        Some(s)
    };
    let room = text(&mut at)?;
    let speaker = text(&mut at)?;
    let rtp_time = u64::from_be_bytes(body.get(at..at + 8)?.try_into().ok()?);
    at += 8;
    let level = *body.get(at)? as i8;
    let flags = *body.get(at + 1)?;
    at += 2;
    Some(Datagram {
        kind,
        sent_at,
        room,
        speaker,
        rtp_time,
        audio_level: (flags & 1 != 0).then_some(level),
        voice_activity: (flags & 2 != 0).then_some(flags & 4 != 0),
        payload: body.get(at..)?,
    })
}

// ----- the task -----

/// A speaker of another node, as this node knows them: the id its shards use, and the
/// newest RTP time seen (older packets are duplicates or replays).
struct Remote {
    peer: PeerId,
    /// Their name, shared by every packet of theirs handed to the shards.
    speaker: Arc<UserId>,
    last_rtp: u64,
    seen: Instant,
}

/// Counters for `/metrics`.
#[derive(Default, Debug)]
pub struct CascadeMetrics {
    pub datagrams_sent: std::sync::atomic::AtomicU64,
    pub datagrams_received: std::sync::atomic::AtomicU64,
    /// Refused: bad tag, malformed, too old, replayed, or from a speaker the owner does not
    /// let be heard.
    pub datagrams_refused: std::sync::atomic::AtomicU64,
    /// Edge subscriptions to rooms this node owns, now.
    pub subscriptions: std::sync::atomic::AtomicI64,
}

pub struct Cascade {
    socket: UdpSocket,
    key: NodeKey,
    cluster: Cluster,
    registry: Arc<Registry>,
    sfu: Sfu,
    edges: Arc<EdgeRooms>,
    metrics: Arc<CascadeMetrics>,
    /// Owner side: who subscribed to each room, until when.
    subscribers: HashMap<RoomId, Vec<(SocketAddr, Instant)>>,
    /// By room, then speaker (looked up with the datagram's text: no allocation per packet).
    remotes: HashMap<String, HashMap<String, Remote>>,
    buf: Vec<u8>,
}

impl Cascade {
    /// Binds the cascade socket on `ip` (any port): returns the task and its address.
    pub fn bind(
        ip: std::net::IpAddr,
        cluster: Cluster,
        registry: Arc<Registry>,
        sfu: Sfu,
        edges: Arc<EdgeRooms>,
        metrics: Arc<CascadeMetrics>,
    ) -> anyhow::Result<(Cascade, SocketAddr)> {
        let std = std::net::UdpSocket::bind(SocketAddr::new(ip, 0))?;
        std.set_nonblocking(true)?;
        super::udp::enlarge_buffers(std::os::fd::AsRawFd::as_raw_fd(&std));
        let socket = UdpSocket::from_std(std)?;
        let addr = socket.local_addr()?;
        Ok((
            Cascade {
                socket,
                key: cluster.key().clone(),
                cluster,
                registry,
                sfu,
                edges,
                metrics,
                subscribers: HashMap::default(),
                remotes: HashMap::default(),
                buf: Vec::with_capacity(1500),
            },
            addr,
        ))
    }

    pub async fn run(
        mut self,
        mut from_shards: mpsc::Receiver<Outbound>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut recv = vec![0u8; 2048];
        let mut tick = tokio::time::interval(SUBSCRIBE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                out = from_shards.recv() => match out {
                    Some(out) => self.outbound(out).await,
                    None => break,
                },
                got = self.socket.recv_from(&mut recv) => {
                    if let Ok((n, from)) = got {
                        self.inbound(&recv[..n], from).await;
                    }
                }
                _ = tick.tick() => self.every_second().await,
                _ = self.edges.fresh.notified() => self.every_second().await,
                _ = stop.changed() => break,
            }
        }
    }

    async fn send(&mut self, to: SocketAddr, d: &Datagram<'_>) {
        encode(&self.key, d, &mut self.buf);
        if self.socket.send_to(&self.buf, to).await.is_ok() {
            self.metrics.datagrams_sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Audible audio of a room this node owns goes down to each subscribed edge.
    async fn down(&mut self, room: &RoomId, speaker: &UserId, audio: &Audio) {
        let now = Instant::now();
        let targets: Vec<SocketAddr> = match self.subscribers.get_mut(room) {
            Some(subs) => {
                subs.retain(|(_, until)| *until > now);
                subs.iter().map(|(a, _)| *a).collect()
            }
            None => return,
        };
        let d = Datagram {
            kind: Kind::Down,
            sent_at: now_ms(),
            room: room.as_str(),
            speaker: speaker.as_str(),
            rtp_time: audio.rtp_time,
            audio_level: audio.audio_level,
            voice_activity: audio.voice_activity,
            payload: &audio.payload,
        };
        for to in targets {
            self.send(to, &d).await;
        }
    }

    async fn outbound(&mut self, out: Outbound) {
        match out {
            Outbound::Owned {
                room,
                speaker,
                audio,
            } => self.down(&room.id, &speaker, &audio).await,
            Outbound::Up {
                room,
                speaker,
                audio,
            } => {
                let Some(owner) = room.owner() else { return };
                let d = Datagram {
                    kind: Kind::Up,
                    sent_at: now_ms(),
                    room: room.id.as_str(),
                    speaker: speaker.as_str(),
                    rtp_time: audio.rtp_time,
                    audio_level: audio.audio_level,
                    voice_activity: audio.voice_activity,
                    payload: &audio.payload,
                };
                self.send(owner, &d).await;
            }
        }
    }

    fn refuse(&self) {
        self.metrics
            .datagrams_refused
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The id shards use for a speaker of another node, if this packet is newer than the
    /// last one of theirs (duplicates and replays are not).
    fn remote_peer(
        &mut self,
        room: &str,
        speaker: &str,
        rtp_time: u64,
    ) -> Option<(PeerId, Arc<UserId>)> {
        let now = Instant::now();
        if let Some(r) = self.remotes.get_mut(room).and_then(|m| m.get_mut(speaker)) {
            if rtp_time <= r.last_rtp {
                return None;
            }
            r.last_rtp = rtp_time;
            r.seen = now;
            return Some((r.peer, r.speaker.clone()));
        }
        let peer = self.sfu.next_peer_id();
        let name = Arc::new(UserId(speaker.to_owned()));
        self.remotes.entry(room.to_owned()).or_default().insert(
            speaker.to_owned(),
            Remote {
                peer,
                speaker: name.clone(),
                last_rtp: rtp_time,
                seen: now,
            },
        );
        Some((peer, name))
    }

    async fn inbound(&mut self, data: &[u8], from: SocketAddr) {
        self.metrics
            .datagrams_received
            .fetch_add(1, Ordering::Relaxed);
        let Some(d) = decode(&self.key, data) else {
            return self.refuse();
        };
        if (now_ms() - d.sent_at).abs() > MAX_AGE_MS {
            return self.refuse();
        }
        match d.kind {
            Kind::Subscribe => {
                let room = RoomId(d.room.to_owned());
                if self.registry.get(&room).is_none() {
                    return; // not ours (any more): the edge looks the owner up again
                }
                let until = Instant::now() + SUBSCRIPTION_TTL;
                let subs = self.subscribers.entry(room).or_default();
                match subs.iter_mut().find(|(a, _)| *a == from) {
                    Some(s) => s.1 = until,
                    None => subs.push((from, until)),
                }
            }
            Kind::Up => {
                // The owner's rule, in one place: only audible stage members are heard.
                let room_id = RoomId(d.room.to_owned());
                let Some(live) = self.registry.get(&room_id) else {
                    return self.refuse();
                };
                let speaker = UserId(d.speaker.to_owned());
                if !live.audible_set().contains(&speaker) {
                    self.sfu
                        .metrics()
                        .packets_dropped_not_on_stage
                        .fetch_add(1, Ordering::Relaxed);
                    return;
                }
                let Some((peer, name)) = self.remote_peer(d.room, d.speaker, d.rtp_time) else {
                    return self.refuse();
                };
                let audio = Audio {
                    rtp_time: d.rtp_time,
                    audio_level: d.audio_level,
                    voice_activity: d.voice_activity,
                    payload: Arc::from(d.payload),
                };
                // Recorded rooms: the owner records every node's audible speakers.
                live.recorder
                    .offer(&name, Instant::now(), audio.rtp_time, &audio.payload);
                self.sfu.inject(Relayed {
                    room: MediaRoom::Owned(live),
                    from: peer,
                    speaker: Some(name),
                    audio_level: audio.audio_level,
                    voice_activity: audio.voice_activity,
                    rtp_time: audio.rtp_time,
                    network_time: Instant::now(),
                    payload: audio.payload.clone(),
                });
                self.down(&room_id, &speaker, &audio).await;
            }
            Kind::Down => {
                let Some(edge) = self.edges.get(d.room) else {
                    return; // nobody here listens any more
                };
                if edge.owner() != Some(from) {
                    return self.refuse();
                }
                let Some((peer, name)) = self.remote_peer(d.room, d.speaker, d.rtp_time) else {
                    return self.refuse();
                };
                self.sfu.inject(Relayed {
                    room: MediaRoom::Edge(edge),
                    from: peer,
                    speaker: Some(name),
                    audio_level: d.audio_level,
                    voice_activity: d.voice_activity,
                    rtp_time: d.rtp_time,
                    network_time: Instant::now(),
                    payload: Arc::from(d.payload),
                });
            }
        }
    }

    /// Edges: find each room's owner (it may have changed) and subscribe. Owners: lapse old
    /// subscriptions. Both: forget speakers long silent.
    async fn every_second(&mut self) {
        let now = Instant::now();
        for room in self.edges.live() {
            let owner = match self.cluster.owner(&room.id).await {
                Ok(Some(o)) if o.node != self.cluster.node_id() => {
                    match self.cluster.node(&o.node).await {
                        Ok(Some(n)) => n.cascade.as_deref().and_then(|a| a.parse().ok()),
                        _ => None,
                    }
                }
                _ => None,
            };
            *room.owner.write().unwrap_or_else(|e| e.into_inner()) = owner;
            if let Some(to) = owner {
                let d = Datagram {
                    kind: Kind::Subscribe,
                    sent_at: now_ms(),
                    room: room.id.as_str(),
                    speaker: "",
                    rtp_time: 0,
                    audio_level: None,
                    voice_activity: None,
                    payload: &[],
                };
                self.send(to, &d).await;
            }
        }
        self.subscribers.retain(|_, subs| {
            subs.retain(|(_, until)| *until > now);
            !subs.is_empty()
        });
        self.metrics.subscriptions.store(
            self.subscribers.values().map(|s| s.len() as i64).sum(),
            Ordering::Relaxed,
        );
        self.remotes.retain(|_, speakers| {
            speakers.retain(|_, r| now.duration_since(r.seen) < SPEAKER_TTL);
            !speakers.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(payload: &[u8]) -> Datagram<'_> {
        Datagram {
            kind: Kind::Up,
            sent_at: 1_765_000_000_000,
            room: "r7kq2m5xv3na",
            speaker: "u12345",
            rtp_time: 48_000 * 60,
            audio_level: Some(-30),
            voice_activity: Some(true),
            payload,
        }
    }

    #[test]
    fn datagrams_round_trip_and_any_change_is_refused() {
        let key = NodeKey::from_bytes([3; 32]);
        let payload = [0xFCu8, 1, 2, 3, 4, 5];
        let mut buf = Vec::new();
        encode(&key, &sample(&payload), &mut buf);
        assert_eq!(decode(&key, &buf), Some(sample(&payload)));
        // Every single bit flipped anywhere: refused, never a panic.
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[i] ^= 1 << bit;
                assert_eq!(decode(&key, &bad), None, "byte {i} bit {bit}");
            }
        }
        // Another cluster's key, truncations, garbage.
        assert_eq!(decode(&NodeKey::from_bytes([4; 32]), &buf), None);
        for n in 0..buf.len() {
            assert_eq!(decode(&key, &buf[..n]), None);
        }
        assert_eq!(
            decode(&key, b"RGC1 not a datagram at all, just words"),
            None
        );
    }

    #[test]
    fn levels_and_voice_activity_survive_absent_or_present() {
        let key = NodeKey::from_bytes([3; 32]);
        let mut buf = Vec::new();
        for (level, vad) in [(None, None), (Some(-127), Some(false)), (Some(0), None)] {
            let d = Datagram {
                audio_level: level,
                voice_activity: vad,
                ..sample(&[1])
            };
            encode(&key, &d, &mut buf);
            assert_eq!(decode(&key, &buf), Some(d));
        }
    }

    #[test]
    fn malformed_lengths_are_refused_even_with_a_valid_tag() {
        // A node with the key that sends nonsense (a bug) must not crash the receiver.
        let key = NodeKey::from_bytes([3; 32]);
        let mut body = MAGIC.to_vec();
        body.push(2);
        body.extend_from_slice(&0i64.to_be_bytes());
        body.push(200); // room length past the end
        body.extend_from_slice(&[b'a'; 20]);
        let tag = key.tag(&body);
        body.extend_from_slice(&tag[..TAG]);
        assert_eq!(decode(&key, &body), None);
    }
}
