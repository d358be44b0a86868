//! The media side of `ruang load`: every WebRTC peer (speakers and listeners) of the run, as
//! str0m (sans-IO) state machines driven by ONE thread. Each peer has its own UDP socket (the
//! server tells peers apart by their address); the thread waits on all of them at once with
//! `epoll(7)` (work per wake-up is per ready socket, not per peer), feeds what arrives to the
//! peer that owns the socket, and fires str0m's timers from a min-heap. Listeners run str0m
//! in RTP mode: packets are decrypted (SRTP) and counted, never decoded. Speakers send real
//! Opus frames; the send time of each frame is remembered by a hash of its payload (the SFU
//! forwards payloads unchanged). The forwarding delay is from that send time to the
//! kernel's receive timestamp of the listener's datagram (`SO_TIMESTAMPNS`), so time the
//! datagram waited for this loop to read it is not counted as the server's.

use anyhow::{anyhow, Context, Result};
use rand::Rng;
use ruang_media::codec::{Encoded, EncoderConfig, OpusEncoder};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime};
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
    /// From now on, frames sent belong to a new phase (e.g. a join storm); the listeners
    /// that exist now (the `cohort`: listener indexes below it) are watched during it.
    Phase,
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
    /// Phases after the first ([`Cmd::Phase`]), in order.
    pub phases: Vec<PhaseFigures>,
}

/// What the listeners that existed when a phase began got of the frames sent during it.
#[derive(Clone)]
pub struct PhaseFigures {
    /// Listeners watched (those that existed when the phase began).
    pub cohort: usize,
    /// Frames the speakers sent during the phase.
    pub frames_sent: u64,
    /// Of those, copies the cohort received (distinct frames per listener).
    pub received: u64,
    delays: Vec<u64>,
}

impl PhaseFigures {
    /// Frames the cohort should have received (every listener hears every speaker).
    pub fn expected(&self) -> u64 {
        self.frames_sent * self.cohort as u64
    }
    pub fn delay_ms(&self, q: f64) -> Option<f64> {
        histogram_quantile_ms(&self.delays, q)
    }
}

impl Figures {
    /// The `q` quantile (0..=1) of the forwarding delay, in milliseconds.
    pub fn delay_ms(&self, q: f64) -> Option<f64> {
        histogram_quantile_ms(&self.delays, q)
    }
}

fn histogram_quantile_ms(delays: &[u64], q: f64) -> Option<f64> {
    let total: u64 = delays.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (i, n) in delays.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some((i as u64 * BUCKET_US + BUCKET_US / 2) as f64 / 1000.0);
        }
    }
    None
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

    /// Starts a new measured phase (see [`Cmd::Phase`]).
    pub fn phase(&self) -> Result<()> {
        self.send(Cmd::Phase)
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
    /// Payload hash → (speaker peer, frame number, send instant, phase).
    sent: HashMap<u64, (usize, u64, Instant, usize)>,
    /// Phases begun with [`Cmd::Phase`] (phase k + 1 is `phases[k]`).
    phases: Vec<PhaseFigures>,
    /// Peers' next timeouts; an entry is current only if it equals the peer's `timeout`.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    epoll: libc::c_int,
    /// Kernel receive time of the datagram being handled.
    rx_at: Option<Instant>,
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
    // SAFETY: plain system call; the descriptor is closed when the loop ends.
    let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    let mut st = State {
        peers: Vec::new(),
        listeners: Vec::new(),
        sent: HashMap::new(),
        phases: Vec::new(),
        timers: BinaryHeap::new(),
        epoll,
        rx_at: None,
        delays: vec![0; (MAX_DELAY_US / BUCKET_US) as usize + 1],
        unmatched: 0,
        packets_sent: 0,
        live,
        local_ip,
        buf: vec![0u8; 2048],
    };
    // Token 0 is the waker; peer i is token i + 1.
    st.watch(wake.as_raw_fd(), 0);
    let mut events: Vec<libc::epoll_event> = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut next_frame = Instant::now();
    let mut last_prune = Instant::now();
    let mut pcm = vec![0i16; 960];
    let mut opus = vec![0u8; 1500];
    let mut rng = rand::thread_rng();
    let figures = loop {
        // Commands.
        let mut drop_wake = [0u8; 64];
        while wake.recv_from(&mut drop_wake).is_ok() {}
        let mut stop = false;
        loop {
            match commands.try_recv() {
                Ok(Cmd::Stop) | Err(mpsc::TryRecvError::Disconnected) => {
                    stop = true;
                    break;
                }
                Ok(Cmd::NewPeer {
                    speaker,
                    slots,
                    hello,
                    reply,
                }) => {
                    let r = st.new_peer(speaker, slots, hello);
                    let _ = reply.send(r);
                }
                Ok(Cmd::Answer { peer, sdp, reply }) => {
                    let r = st.accept(peer, &sdp);
                    let _ = reply.send(r);
                }
                Ok(Cmd::Phase) => {
                    st.phases.push(PhaseFigures {
                        cohort: st.listeners.len(),
                        frames_sent: 0,
                        received: 0,
                        delays: vec![0; (MAX_DELAY_US / BUCKET_US) as usize + 1],
                    });
                }
                Err(mpsc::TryRecvError::Empty) => break,
            }
        }
        if stop {
            let listeners = std::mem::take(&mut st.listeners);
            break Figures {
                listeners,
                packets_sent: st.packets_sent,
                delays: std::mem::take(&mut st.delays),
                unmatched: st.unmatched,
                phases: std::mem::take(&mut st.phases),
            };
        }

        // Timers.
        let now = Instant::now();
        st.timeouts(now);

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
                let phase = st.phases.len();
                if let Some(ph) = st.phases.last_mut() {
                    ph.frames_sent += 1;
                }
                st.sent
                    .insert(payload_key(&data), (i, sp.frames, sent_at, phase));
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
                .retain(|_, (_, _, t, _)| now.duration_since(*t) < SENT_KEEP);
        }

        // Wait for packets or the next timer.
        let mut wake_at = next_frame;
        if let Some(Reverse((t, _))) = st.timers.peek() {
            wake_at = wake_at.min(*t);
        }
        let wait = wake_at.saturating_duration_since(Instant::now());
        let ms = (wait.as_micros().div_ceil(1000) as i32).min(20);
        // SAFETY: `events` is a valid, writable array of `events.len()` entries.
        let n = unsafe { libc::epoll_wait(st.epoll, events.as_mut_ptr(), events.len() as i32, ms) };
        for e in events.iter().take(n.max(0) as usize) {
            let token = e.u64 as usize;
            if token > 0 {
                st.receive(token - 1);
            }
        }
    };
    // SAFETY: closing the descriptor this loop created.
    unsafe { libc::close(st.epoll) };
    figures
}

impl State {
    fn new_peer(&mut self, speaker: bool, slots: usize, hello: Instant) -> Result<(usize, String)> {
        let socket = UdpSocket::bind((self.local_ip, 0)).context("binding a UDP socket")?;
        socket.set_nonblocking(true)?;
        let local = socket.local_addr()?;
        let on: libc::c_int = 1;
        // SAFETY: setsockopt with a c_int value of the right length.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            );
        }
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
        let id = self.peers.len() - 1;
        self.watch(self.peers[id].socket.as_raw_fd(), id as u64 + 1);
        self.timers.push(Reverse((self.peers[id].timeout, id)));
        Ok((id, offer.to_sdp_string()))
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
        self.timers.push(Reverse((p.timeout, id)));
        self.drain(id);
        Ok(())
    }

    /// Adds `fd` to the epoll set with `token`.
    fn watch(&self, fd: libc::c_int, token: u64) {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: a valid epoll descriptor, socket descriptor and event.
        unsafe { libc::epoll_ctl(self.epoll, libc::EPOLL_CTL_ADD, fd, &mut ev) };
    }

    /// Fires the due timers (each peer's latest timeout only).
    fn timeouts(&mut self, now: Instant) {
        while let Some(&Reverse((t, id))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let p = &mut self.peers[id];
            if p.dead || p.timeout != t {
                continue;
            }
            // Whatever str0m asks for next is a change, so it gets a heap entry.
            p.timeout = now + Duration::from_secs(86_400);
            let _ = p.rtc.handle_input(Input::Timeout(now));
            self.drain(id);
        }
        if self.timers.len() > 4 * self.peers.len() + 64 {
            self.timers = self
                .peers
                .iter()
                .enumerate()
                .filter(|(_, p)| !p.dead)
                .map(|(i, p)| Reverse((p.timeout, i)))
                .collect();
        }
    }

    /// Reads everything the peer's socket holds, each datagram with the kernel's receive
    /// time.
    fn receive(&mut self, id: usize) {
        loop {
            let fd = self.peers[id].socket.as_raw_fd();
            let Some((n, source, kernel_time)) = recv_timestamped(fd, &mut self.buf) else {
                return;
            };
            let p = &mut self.peers[id];
            if p.dead {
                continue;
            }
            let now = Instant::now();
            // The kernel's receive time, as an `Instant` (what str0m stamps the packet with).
            let at = kernel_time
                .and_then(|k| SystemTime::now().duration_since(k).ok())
                .and_then(|ago| now.checked_sub(ago))
                .unwrap_or(now);
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
            self.rx_at = Some(at.min(now));
            self.drain(id);
            self.rx_at = None;
        }
    }

    /// Everything str0m wants done for one peer, until its next timeout.
    fn drain(&mut self, id: usize) {
        loop {
            let p = &mut self.peers[id];
            match p.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    if t != p.timeout {
                        p.timeout = t;
                        self.timers.push(Reverse((t, id)));
                    }
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
                    let at = self.rx_at.unwrap_or(pkt.timestamp);
                    let f = &mut self.listeners[l];
                    match self.sent.get(&payload_key(&pkt.payload)) {
                        Some(&(speaker, frame, sent, phase)) => {
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
                            let before = f.frames[idx].1.received;
                            f.frames[idx].1.add(frame);
                            let new = f.frames[idx].1.received > before;
                            if let Some(ph) =
                                phase.checked_sub(1).and_then(|k| self.phases.get_mut(k))
                            {
                                if l < ph.cohort && new {
                                    ph.received += 1;
                                    ph.delays[b] += 1;
                                }
                            }
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

/// One datagram from a non-blocking socket with its kernel receive time (`SO_TIMESTAMPNS`):
/// (length, source, time), or `None` when the socket is empty.
fn recv_timestamped(
    fd: libc::c_int,
    buf: &mut [u8],
) -> Option<(usize, SocketAddr, Option<SystemTime>)> {
    // SAFETY: zeroed sockaddr_storage / msghdr are valid initial values; every pointer
    // stored in `msg` points to a live local of the right size for the call.
    unsafe {
        let mut name: libc::sockaddr_storage = std::mem::zeroed();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = [0u64; 8];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT);
        if n < 0 {
            return None;
        }
        let Some(source) = ruang_server::sfu::udp::from_storage(&name) else {
            return Some((0, SocketAddr::from(([0, 0, 0, 0], 0)), None));
        };
        let mut time = None;
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::timespec>());
                time = Some(
                    SystemTime::UNIX_EPOCH + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32),
                );
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        Some((n as usize, source, time))
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
