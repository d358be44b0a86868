//! The media side of `ruang load`: every WebRTC peer (speakers and listeners) of the run, as
//! str0m (sans-IO) state machines driven by ONE thread. Each peer has its own UDP socket (the
//! server tells peers apart by their address); the thread waits on all of them at once with
//! `poll(2)`, feeds what arrives to the peer that owns the socket, and fires str0m's timers.
//! Listeners run str0m in RTP mode: packets are decrypted (SRTP) and counted, never decoded.
//! Speakers send real Opus frames; the send instant of each frame is remembered by a hash of
//! its payload (the SFU forwards payloads unchanged), which gives the forwarding delay.

use anyhow::{anyhow, Context, Result};
use rand::Rng;
use ruang_media::codec::{Encoded, EncoderConfig, OpusEncoder};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::Ssrc;
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::sync::oneshot;

/// Width of one bucket of the forwarding-delay histogram.
const BUCKET_US: u64 = 50;
/// Delays above this land in the last bucket.
const MAX_DELAY_US: u64 = 5_000_000;
/// How long a sent frame's instant is kept for matching.
const SENT_KEEP: Duration = Duration::from_secs(10);

pub enum Cmd {
    /// A new peer: returns its id and its SDP offer.
    NewPeer {
        speaker: bool,
        slots: usize,
        /// When the listener's signalling began (`hello`), for the join time.
        hello: Instant,
        reply: oneshot::Sender<Result<(usize, String)>>,
    },
    /// The server's answer to a peer's offer.
    Answer {
        peer: usize,
        sdp: String,
        reply: oneshot::Sender<Result<()>>,
    },
    /// End the loop and return the figures.
    Stop,
}

/// Live counters the progress line reads while the loop runs.
#[derive(Default)]
pub struct Live {
    pub listeners_with_audio: AtomicU64,
    pub packets_received: AtomicU64,
    pub packets_sent: AtomicU64,
    pub peers_connected: AtomicU64,
    pub peers_failed: AtomicU64,
}

/// Sequence tracking of one incoming RTP stream (one slot).
#[derive(Default, Clone)]
struct SeqTrack {
    first: u64,
    max: u64,
    /// Bit i: sequence number `max - i` was seen.
    window: u128,
    received: u64,
    duplicates: u64,
}

impl SeqTrack {
    fn add(&mut self, seq: u64) {
        if self.received == 0 && self.window == 0 {
            self.first = seq;
            self.max = seq;
            self.window = 1;
            self.received = 1;
            return;
        }
        if seq > self.max {
            let shift = seq - self.max;
            self.window = if shift >= 128 {
                0
            } else {
                self.window << shift
            };
            self.window |= 1;
            self.max = seq;
            self.received += 1;
        } else {
            let d = self.max - seq;
            if d < 128 && self.window & (1u128 << d) != 0 {
                self.duplicates += 1;
            } else {
                if d < 128 {
                    self.window |= 1u128 << d;
                }
                if seq < self.first {
                    self.first = seq;
                }
                self.received += 1;
            }
        }
    }

    fn expected(&self) -> u64 {
        if self.received == 0 {
            0
        } else {
            self.max - self.first + 1
        }
    }
}

/// What one listener got.
#[derive(Default, Clone)]
pub struct ListenerFigures {
    pub hello: Option<Instant>,
    pub first_packet: Option<Instant>,
    /// By the RTP sequence numbers of the server's slot streams: what the server sent and
    /// this listener did not get (the SFU numbers a slot's packets itself, so a packet lost
    /// on its way from the speaker to the server leaves no gap here).
    streams: Vec<(Ssrc, SeqTrack)>,
    /// By each speaker's frame numbers (recognised by payload): end to end, speaker to
    /// listener.
    frames: Vec<(usize, SeqTrack)>,
}

impl ListenerFigures {
    /// Frames received (distinct), end to end.
    pub fn received(&self) -> u64 {
        self.frames.iter().map(|(_, s)| s.received).sum()
    }
    /// Frames the speakers sent from this listener's first frame to its last.
    pub fn expected(&self) -> u64 {
        self.frames.iter().map(|(_, s)| s.expected()).sum()
    }
    pub fn duplicates(&self) -> u64 {
        self.frames.iter().map(|(_, s)| s.duplicates).sum()
    }
    /// Slot packets (server → listener): expected by sequence number, and received.
    pub fn slot_packets(&self) -> (u64, u64) {
        let e = self.streams.iter().map(|(_, s)| s.expected()).sum();
        let r = self.streams.iter().map(|(_, s)| s.received).sum();
        (e, r)
    }
    /// Hello to first packet.
    pub fn join(&self) -> Option<Duration> {
        Some(self.first_packet? - self.hello?)
    }
}

/// The run's media figures, returned by [`MediaLoop::stop`].
pub struct Figures {
    pub listeners: Vec<ListenerFigures>,
    pub packets_sent: u64,
    /// Forwarding delays (send → receive), histogram of `BUCKET_US` buckets.
    delays: Vec<u64>,
    /// Received packets whose payload matched no sent frame.
    pub unmatched: u64,
}

impl Figures {
    /// The `q` quantile (0..=1) of the forwarding delay, in milliseconds.
    pub fn delay_ms(&self, q: f64) -> Option<f64> {
        let total: u64 = self.delays.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, n) in self.delays.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some((i as u64 * BUCKET_US + BUCKET_US / 2) as f64 / 1000.0);
            }
        }
        None
    }
}

struct Speaker {
    mid: Mid,
    pt: Option<Pt>,
    encoder: OpusEncoder,
    rtp: u64,
    phase: f32,
    /// Frames sent so far (the frame number).
    frames: u64,
}

struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    pending: Option<SdpPendingOffer>,
    timeout: Instant,
    connected: bool,
    dead: bool,
    speaker: Option<Speaker>,
    listener: Option<usize>,
}

/// Handle to the media thread.
pub struct MediaLoop {
    commands: mpsc::Sender<Cmd>,
    waker: UdpSocket,
    wake_addr: SocketAddr,
    thread: Option<std::thread::JoinHandle<Figures>>,
    pub live: Arc<Live>,
}

impl MediaLoop {
    /// Starts the thread; peers bind their sockets on `local_ip` (the address that reaches the
    /// server).
    pub fn start(local_ip: IpAddr) -> Result<MediaLoop> {
        let (tx, rx) = mpsc::channel();
        let wake = UdpSocket::bind((IpAddr::from([127, 0, 0, 1]), 0)).context("waker socket")?;
        wake.set_nonblocking(true)?;
        let wake_addr = wake.local_addr()?;
        let waker = UdpSocket::bind((IpAddr::from([127, 0, 0, 1]), 0)).context("waker socket")?;
        let live = Arc::new(Live::default());
        let thread_live = live.clone();
        let thread = std::thread::Builder::new()
            .name("load-media".into())
            .spawn(move || run(rx, wake, local_ip, thread_live))
            .context("media thread")?;
        Ok(MediaLoop {
            commands: tx,
            waker,
            wake_addr,
            thread: Some(thread),
            live,
        })
    }

    fn send(&self, cmd: Cmd) -> Result<()> {
        self.commands
            .send(cmd)
            .map_err(|_| anyhow!("the media loop has stopped"))?;
        let _ = self.waker.send_to(&[1], self.wake_addr);
        Ok(())
    }

    /// A new peer and its SDP offer.
    pub async fn new_peer(
        &self,
        speaker: bool,
        slots: usize,
        hello: Instant,
    ) -> Result<(usize, String)> {
        let (reply, rx) = oneshot::channel();
        self.send(Cmd::NewPeer {
            speaker,
            slots,
            hello,
            reply,
        })?;
        rx.await
            .map_err(|_| anyhow!("the media loop has stopped"))?
    }

    pub async fn answer(&self, peer: usize, sdp: String) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.send(Cmd::Answer { peer, sdp, reply })?;
        rx.await
            .map_err(|_| anyhow!("the media loop has stopped"))?
    }

    /// Stops the loop and returns what it measured.
    pub fn stop(mut self) -> Result<Figures> {
        self.send(Cmd::Stop)?;
        self.thread
            .take()
            .expect("stopped once")
            .join()
            .map_err(|_| anyhow!("the media loop panicked"))
    }
}

struct State {
    peers: Vec<Peer>,
    listeners: Vec<ListenerFigures>,
    /// Payload hash → (speaker peer, frame number, send instant).
    sent: HashMap<u64, (usize, u64, Instant)>,
    delays: Vec<u64>,
    unmatched: u64,
    packets_sent: u64,
    live: Arc<Live>,
    local_ip: IpAddr,
    buf: Vec<u8>,
}

fn payload_key(data: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    h.finish()
}

fn run(
    commands: mpsc::Receiver<Cmd>,
    wake: UdpSocket,
    local_ip: IpAddr,
    live: Arc<Live>,
) -> Figures {
    let mut st = State {
        peers: Vec::new(),
        listeners: Vec::new(),
        sent: HashMap::new(),
        delays: vec![0; (MAX_DELAY_US / BUCKET_US) as usize + 1],
        unmatched: 0,
        packets_sent: 0,
        live,
        local_ip,
        buf: vec![0u8; 2048],
    };
    let mut fds: Vec<libc::pollfd> = vec![libc::pollfd {
        fd: wake.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    let mut next_frame = Instant::now();
    let mut last_prune = Instant::now();
    let mut pcm = vec![0i16; 960];
    let mut opus = vec![0u8; 1500];
    let mut rng = rand::thread_rng();
    loop {
        // Commands.
        let mut drop_wake = [0u8; 64];
        while wake.recv_from(&mut drop_wake).is_ok() {}
        loop {
            match commands.try_recv() {
                Ok(Cmd::Stop) | Err(mpsc::TryRecvError::Disconnected) => {
                    let listeners = std::mem::take(&mut st.listeners);
                    return Figures {
                        listeners,
                        packets_sent: st.packets_sent,
                        delays: st.delays,
                        unmatched: st.unmatched,
                    };
                }
                Ok(Cmd::NewPeer {
                    speaker,
                    slots,
                    hello,
                    reply,
                }) => {
                    let r = st.new_peer(speaker, slots, hello);
                    if let Ok((id, _)) = &r {
                        fds.push(libc::pollfd {
                            fd: st.peers[*id].socket.as_raw_fd(),
                            events: libc::POLLIN,
                            revents: 0,
                        });
                    }
                    let _ = reply.send(r);
                }
                Ok(Cmd::Answer { peer, sdp, reply }) => {
                    let r = st.accept(peer, &sdp);
                    let _ = reply.send(r);
                }
                Err(mpsc::TryRecvError::Empty) => break,
            }
        }

        // Timers.
        let now = Instant::now();
        for i in 0..st.peers.len() {
            if !st.peers[i].dead && now >= st.peers[i].timeout {
                let _ = st.peers[i].rtc.handle_input(Input::Timeout(now));
                st.drain(i);
            }
        }

        // Speakers: one Opus frame every 20 ms.
        if now >= next_frame {
            next_frame += Duration::from_millis(20);
            if next_frame < now {
                next_frame = now + Duration::from_millis(20);
            }
            for i in 0..st.peers.len() {
                let p = &mut st.peers[i];
                if p.dead || !p.connected {
                    continue;
                }
                let Some(sp) = p.speaker.as_mut() else {
                    continue;
                };
                let Some(pt) = sp.pt else { continue };
                // A tone with noise: real speech-like Opus frames, each one different.
                for s in pcm.iter_mut() {
                    sp.phase += 2.0 * std::f32::consts::PI * 220.0 / 48_000.0;
                    let v = sp.phase.sin() * 6000.0 + rng.gen_range(-1500.0..1500.0);
                    *s = v as i16;
                }
                sp.phase %= 2.0 * std::f32::consts::PI;
                let n = match sp.encoder.encode(&pcm, &mut opus) {
                    Ok(Encoded::Packet(n)) => n,
                    _ => continue,
                };
                let data = opus[..n].to_vec();
                let sent_at = Instant::now();
                st.sent.insert(payload_key(&data), (i, sp.frames, sent_at));
                sp.frames += 1;
                let time = MediaTime::new(sp.rtp, Frequency::FORTY_EIGHT_KHZ);
                sp.rtp += 960;
                let mid = sp.mid;
                if let Some(w) = p.rtc.writer(mid) {
                    if w.audio_level(-20, true)
                        .write(pt, sent_at, time, data)
                        .is_ok()
                    {
                        st.packets_sent += 1;
                        st.live.packets_sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                st.drain(i);
            }
        }
        if now.duration_since(last_prune) > Duration::from_secs(1) {
            last_prune = now;
            st.sent
                .retain(|_, (_, _, t)| now.duration_since(*t) < SENT_KEEP);
        }

        // Wait for packets or the next timer.
        let mut wake_at = next_frame;
        for p in &st.peers {
            if !p.dead && p.timeout < wake_at {
                wake_at = p.timeout;
            }
        }
        let wait = wake_at.saturating_duration_since(Instant::now());
        let ms = (wait.as_micros().div_ceil(1000) as i32).min(20);
        for f in fds.iter_mut() {
            f.revents = 0;
        }
        // SAFETY: `fds` is a valid array of pollfd for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n <= 0 {
            continue;
        }
        for (k, f) in fds.iter().enumerate().skip(1) {
            if f.revents & libc::POLLIN != 0 {
                st.receive(k - 1);
            }
        }
    }
}

impl State {
    fn new_peer(&mut self, speaker: bool, slots: usize, hello: Instant) -> Result<(usize, String)> {
        let socket = UdpSocket::bind((self.local_ip, 0)).context("binding a UDP socket")?;
        socket.set_nonblocking(true)?;
        let local = socket.local_addr()?;
        let mut rtc = Rtc::builder()
            .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
            .clear_codecs()
            .enable_opus(true, false)
            .set_rtp_mode(!speaker)
            .build(Instant::now());
        rtc.add_local_candidate(
            Candidate::host(local, "udp").map_err(|e| anyhow!("local candidate: {e}"))?,
        );
        let mut api = rtc.sdp_api();
        let mic =
            speaker.then(|| api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None));
        if !speaker {
            for _ in 0..slots.max(1) {
                api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
            }
        }
        let (offer, pending) = api.apply().ok_or_else(|| anyhow!("no offer"))?;
        let listener = (!speaker).then(|| {
            self.listeners.push(ListenerFigures {
                hello: Some(hello),
                ..Default::default()
            });
            self.listeners.len() - 1
        });
        let speaker = match mic {
            Some(mid) => Some(Speaker {
                mid,
                pt: None,
                encoder: OpusEncoder::new(EncoderConfig {
                    dtx: false,
                    complexity: 5,
                    ..EncoderConfig::default()
                })
                .map_err(|e| anyhow!("opus encoder: {e:?}"))?,
                rtp: 0,
                phase: 0.0,
                frames: 0,
            }),
            None => None,
        };
        self.peers.push(Peer {
            rtc,
            socket,
            local,
            pending: Some(pending),
            timeout: Instant::now(),
            connected: false,
            dead: false,
            speaker,
            listener,
        });
        Ok((self.peers.len() - 1, offer.to_sdp_string()))
    }

    fn accept(&mut self, id: usize, sdp: &str) -> Result<()> {
        let p = self
            .peers
            .get_mut(id)
            .ok_or_else(|| anyhow!("no peer {id}"))?;
        let pending = p
            .pending
            .take()
            .ok_or_else(|| anyhow!("peer {id} already answered"))?;
        let answer = SdpAnswer::from_sdp_string(sdp).map_err(|e| anyhow!("bad answer: {e}"))?;
        p.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| anyhow!("answer refused: {e}"))?;
        if let Some(sp) = p.speaker.as_mut() {
            let mid = sp.mid;
            sp.pt = p.rtc.writer(mid).and_then(|w| {
                w.payload_params()
                    .find(|pp| pp.spec().codec == Codec::Opus)
                    .map(|pp| pp.pt())
            });
        }
        p.timeout = Instant::now();
        self.drain(id);
        Ok(())
    }

    /// Reads everything the peer's socket holds.
    fn receive(&mut self, id: usize) {
        loop {
            let p = &mut self.peers[id];
            let (n, source) = match p.socket.recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(_) => return,
            };
            if p.dead {
                continue;
            }
            let now = Instant::now();
            let Ok(contents) = self.buf[..n].try_into() else {
                continue;
            };
            let input = Input::Receive(
                now,
                Receive {
                    proto: Protocol::Udp,
                    source,
                    destination: p.local,
                    contents,
                },
            );
            if p.rtc.handle_input(input).is_err() {
                continue;
            }
            self.drain(id);
        }
    }

    /// Everything str0m wants done for one peer, until its next timeout.
    fn drain(&mut self, id: usize) {
        loop {
            let p = &mut self.peers[id];
            match p.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    p.timeout = t;
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    let _ = p.socket.send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(Event::Connected)) => {
                    p.connected = true;
                    self.live.peers_connected.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Output::Event(Event::IceConnectionStateChange(
                    IceConnectionState::Disconnected,
                ))) => {
                    p.dead = true;
                    self.live.peers_failed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Ok(Output::Event(Event::RtpPacket(pkt))) => {
                    let Some(l) = p.listener else { continue };
                    let at = pkt.timestamp;
                    let f = &mut self.listeners[l];
                    match self.sent.get(&payload_key(&pkt.payload)) {
                        Some(&(speaker, frame, sent)) => {
                            let us = at.saturating_duration_since(sent).as_micros() as u64;
                            let b = (us.min(MAX_DELAY_US) / BUCKET_US) as usize;
                            self.delays[b] += 1;
                            let idx = match f.frames.iter().position(|(s, _)| *s == speaker) {
                                Some(i) => i,
                                None => {
                                    f.frames.push((speaker, SeqTrack::default()));
                                    f.frames.len() - 1
                                }
                            };
                            f.frames[idx].1.add(frame);
                        }
                        None => self.unmatched += 1,
                    }
                    if f.first_packet.is_none() {
                        f.first_packet = Some(at);
                        self.live
                            .listeners_with_audio
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    let ssrc = pkt.header.ssrc;
                    let seq: u64 = *pkt.seq_no;
                    let idx = match f.streams.iter().position(|(s, _)| *s == ssrc) {
                        Some(i) => i,
                        None => {
                            f.streams.push((ssrc, SeqTrack::default()));
                            f.streams.len() - 1
                        }
                    };
                    f.streams[idx].1.add(seq);
                    self.live.packets_received.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Output::Event(_)) => {}
                Err(_) => {
                    p.dead = true;
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_tracking_counts_gaps_and_duplicates() {
        let mut t = SeqTrack::default();
        for s in [10, 11, 13, 12, 12, 16, 14] {
            t.add(s);
        }
        assert_eq!(t.expected(), 7); // 10..=16
        assert_eq!(t.received, 6); // 15 lost
        assert_eq!(t.duplicates, 1);
    }
}
