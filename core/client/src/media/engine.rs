//! The engine: moves audio between the device rings and the transport on a short tick.
//!
//! It runs on its own thread (`ruang-audio`), not on the async runtime, raised to the highest
//! priority the platform allows (`ruang_media::rt`: `SCHED_FIFO`, else nice −19 — Android's
//! audio priority), so that a busy machine (a CPU hog, a phone rendering a feed) cannot delay a
//! tick the way it delays a runtime task: the webrtc stack, signalling and everything else
//! stay on the runtime at normal priority. The thread sleeps to absolute deadlines; a late tick
//! is caught up by the next (the rings and the playout queue absorb it). Encoded packets go
//! to a small runtime task that writes them to the current transport (`send_task`).
//!
//! - capture: every whole 20 ms frame in the capture ring → [`SendPipeline`] (muted unless
//!   sending is allowed) → RTP with the RFC 6464 level on the current transport; the
//!   encoder's loss hint follows what the server reports (`loss.rs`, read from an atomic),
//!   and so does the RED redundancy when the answer negotiated RED (RFC 2198: 0, 1 or 2
//!   earlier frames in each packet, `ruang_media::red::redundancy_for_loss`);
//! - receive: packets from every `recvonly` track → [`ReceivePipeline`] keyed by SSRC (RED
//!   packets through `push_red`: the redundant copies fill holes before PLC would);
//! - playback: whenever the playback ring holds less than the playout target, one mixed
//!   20 ms frame is pulled and written, so the device clock paces playout. The target starts
//!   at `playout_ms` and grows on device underruns (the engine was late), then shrinks back.
//!
//! The device threads only ever touch the lock-free rings; this thread owns the pipelines.

use super::loss::LossFeedback;
use super::sdp::OPUS_PAYLOAD_TYPE;
use super::transport::{IncomingRtp, Transport};
use super::{MediaStats, SlotStats};
use ruang_media::device::{CaptureStream, PlaybackStream};
use ruang_media::red::{redundancy_for_loss, RedEncoder};
use ruang_media::{
    JitterStats, PlayoutTarget, ReceivePipeline, RtpPacket, SendPipeline, SpeakerId, FRAME_SAMPLES,
    MAX_ADJUSTED_SAMPLES,
};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Ceiling of the adaptive playout queue (it grows on device underruns; see
/// `ruang_media::PlayoutTarget`).
const PLAYOUT_MAX_MS: u32 = 100;
use tokio::sync::{mpsc, watch};

/// State shared between the engine task, the controller and the API handle.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Local mute: immediate, no packet leaves while set.
    pub local_muted: AtomicBool,
    /// Allowed by the room (on stage and not muted on the server), or forced.
    pub allowed: AtomicBool,
    /// Output attenuation in thousandths: 0 plays at full volume, 1000 is silent.
    /// (Stored as attenuation so the default, 0, means full volume.)
    pub attenuation_milli: std::sync::atomic::AtomicU32,
    /// Reported loss of our stream and the smoothed encoder hint, written by the transport's
    /// RTCP observer (webrtc driver task), only loaded here.
    pub loss: Arc<LossFeedback>,
    pub stats: Mutex<MediaStats>,
    /// Generation of the last transport negotiated successfully.
    pub negotiated: AtomicU64,
    /// Written by `send_task`.
    pub packets_sent: AtomicU64,
    /// Of those, sent as RED (RFC 2198).
    pub red_packets_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub send_errors: AtomicU64,
}

/// One encoded packet on its way from the engine thread to the transport.
pub(crate) struct OutgoingRtp {
    pub transport: Arc<Transport>,
    pub seq: u16,
    pub ts: u32,
    pub marker: bool,
    pub audio_level: u8,
    pub voice: bool,
    /// `payload` is a RED payload (sent on the negotiated RED payload type).
    pub red: bool,
    pub len: usize,
    pub payload: [u8; ruang_media::codec::MAX_PACKET],
}

/// Packets queued between the engine thread and `send_task` (a second of audio).
pub(crate) const OUTGOING_QUEUE: usize = 50;

/// Frees what the engine thread hands back (received packets), on the runtime.
pub(crate) async fn trash_task(mut rx: mpsc::Receiver<IncomingRtp>) {
    while let Some(p) = rx.recv().await {
        drop(p);
    }
}

/// Writes the engine's packets to their transport, on the async runtime, and hands the
/// buffers back (`recycle`) so a steady stream allocates nothing. Mute is checked once more
/// right before a packet leaves.
pub(crate) async fn send_task(
    mut rx: mpsc::Receiver<Box<OutgoingRtp>>,
    recycle: mpsc::Sender<Box<OutgoingRtp>>,
    shared: Arc<Shared>,
) {
    while let Some(p) = rx.recv().await {
        if !shared.may_send() {
            let _ = recycle.try_send(p);
            continue;
        }
        let packet = ruang_media::OutgoingPacket {
            seq: p.seq,
            ts: p.ts,
            marker: p.marker,
            payload: &p.payload[..p.len],
            audio_level: p.audio_level,
            voice: p.voice,
        };
        match p.transport.send(&packet, p.red).await {
            Ok(()) => {
                shared.packets_sent.fetch_add(1, Ordering::Relaxed);
                if p.red {
                    shared.red_packets_sent.fetch_add(1, Ordering::Relaxed);
                }
                shared.bytes_sent.fetch_add(p.len as u64, Ordering::Relaxed);
            }
            Err(_) => {
                shared.send_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        let _ = recycle.try_send(p);
    }
}

impl Shared {
    pub fn may_send(&self) -> bool {
        self.allowed.load(Ordering::Acquire) && !self.local_muted.load(Ordering::Acquire)
    }

    pub fn update(&self, f: impl FnOnce(&mut MediaStats)) {
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut s);
    }
}

pub(crate) struct Engine {
    pub shared: Arc<Shared>,
    pub send: Option<(SendPipeline, CaptureStream)>,
    pub receive: ReceivePipeline,
    pub playback: Option<PlaybackStream>,
    pub incoming: mpsc::Receiver<IncomingRtp>,
    pub outgoing: mpsc::Sender<Box<OutgoingRtp>>,
    pub recycled: mpsc::Receiver<Box<OutgoingRtp>>,
    /// Received packets go back to the runtime to be freed there (see `run`).
    pub trash: mpsc::Sender<IncomingRtp>,
    pub transport: watch::Receiver<Option<Arc<Transport>>>,
    pub stop: watch::Receiver<bool>,
    pub tick: Duration,
    pub playout_ms: u32,
    pub min_loss_hint: u8,
    /// Earlier frames in each RED packet: `None` follows the reported loss.
    pub red_redundancy: Option<usize>,
    /// End-to-end encryption (an encrypted room): frames are sealed before RTP and opened
    /// before the jitter buffer.
    pub e2ee: Option<super::e2ee::EngineCrypto>,
}

impl Engine {
    /// Runs until `stop` is set; call on the engine's own thread.
    pub fn run(mut self) {
        let priority = ruang_media::rt::raise_current_thread(ruang_media::rt::ENGINE_RT_PRIORITY);
        let start = Instant::now();
        let mut next_tick = start;
        let mut frame = vec![0i16; FRAME_SAMPLES];
        let mut out = vec![0i16; MAX_ADJUSTED_SAMPLES];
        let mut generation = 0u64;
        let mut slots: Vec<SlotStats> = Vec::new();
        // Jitter statistics of speakers already forgotten (renegotiation).
        let mut retired = JitterStats::default();
        let mut local = MediaStats::default();
        let mut playout_target = PlayoutTarget::new(self.playout_ms, PLAYOUT_MAX_MS);
        // The last frames sent, for RED (fixed storage).
        let mut red = RedEncoder::new(OPUS_PAYLOAD_TYPE);
        local.engine_priority = priority.to_string();
        loop {
            next_tick += self.tick;
            let now = Instant::now();
            if next_tick > now {
                std::thread::sleep(next_tick - now);
            } else {
                // Late (the machine was busy): this tick catches up; do not burst after it.
                local.engine_late_ticks += 1;
                next_tick = now;
            }
            if *self.stop.borrow() {
                break;
            }
            let now_ms = start.elapsed().as_millis() as u64;
            let transport = self.transport.borrow().clone();

            // A new transport: forget the speakers of the old one.
            let current = transport.as_ref().map(|t| t.generation()).unwrap_or(0);
            if current != generation {
                for slot in slots.drain(..) {
                    if let Some(st) = self.receive.speaker(SpeakerId(slot.ssrc)) {
                        retired.add(&st.jitter);
                    }
                    self.receive.remove_speaker(SpeakerId(slot.ssrc));
                }
                generation = current;
                local.transport_generation = current;
                red.reset();
            }

            if let Some(e) = &mut self.e2ee {
                e.take_keys();
            }

            // Network → jitter buffers.
            let red_pt = transport.as_ref().and_then(|t| t.red_payload_type());
            while let Ok(pkt) = self.incoming.try_recv() {
                if pkt.generation != generation {
                    continue;
                }
                local.packets_received += 1;
                let idx = match slots.iter().position(|s| s.ssrc == pkt.ssrc) {
                    Some(i) => i,
                    None => {
                        slots.push(SlotStats {
                            ssrc: pkt.ssrc,
                            ..SlotStats::default()
                        });
                        slots.len() - 1
                    }
                };
                let slot = &mut slots[idx];
                slot.packets += 1;
                if let Some((level, voice)) = pkt.audio_level {
                    slot.rtp_level = Some(level);
                    slot.rtp_voice = voice;
                    slot.rtp_level_packets += 1;
                    slot.rtp_loudest = Some(slot.rtp_loudest.map_or(level, |l| l.min(level)));
                }
                let arrival_ms = pkt.arrival.saturating_duration_since(start).as_millis() as u64;
                let rtp = RtpPacket {
                    seq: pkt.seq,
                    ts: pkt.ts,
                    payload: &pkt.payload,
                    arrival_ms,
                };
                let is_red = red_pt == Some(pkt.payload_type);
                if is_red {
                    local.red_packets_received += 1;
                }
                let pushed = match &mut self.e2ee {
                    Some(e) => e.push(&mut self.receive, SpeakerId(pkt.ssrc), rtp, is_red),
                    None if is_red => self.receive.push_red(SpeakerId(pkt.ssrc), rtp),
                    None => self.receive.push(SpeakerId(pkt.ssrc), rtp),
                };
                if let Err(e) = pushed {
                    tracing::debug!(error = %e, "receive pipeline refused a packet");
                }
                // The payload was allocated by a runtime thread: freeing it here would take
                // that thread's allocator arena lock, which a preempted runtime thread may
                // hold (a priority inversion on a busy machine). The runtime frees it.
                let _ = self.trash.try_send(pkt);
            }

            // Microphone → network.
            let loss_hint = match self.shared.loss.hint() {
                Some(h) => Some(h.max(self.min_loss_hint)),
                None if self.min_loss_hint > 0 => Some(self.min_loss_hint),
                None => None,
            };
            // RED only where the answer negotiated it; its depth follows the reported loss
            // (one frame until the first report: the path is not known yet).
            let redundancy = match red_pt {
                Some(_) => self.red_redundancy.unwrap_or_else(|| {
                    self.shared
                        .loss
                        .hint()
                        .map_or(1, |h| redundancy_for_loss(f32::from(h)))
                }),
                None => 0,
            };
            local.red_redundancy = redundancy as u8;
            if let Some((send, capture)) = &mut self.send {
                if let Some(hint) = loss_hint {
                    let hint = i32::from(hint);
                    if send.encoder_mut().config().packet_loss_perc != hint {
                        if let Err(e) = send.encoder_mut().set_packet_loss_perc(hint) {
                            tracing::debug!(error = %e, "setting the loss hint failed");
                        }
                    }
                }
                while capture.read_frame(&mut frame) {
                    local.frames_captured += 1;
                    let may_send = self.shared.may_send() && transport.is_some();
                    send.set_muted(!may_send);
                    match send.process(&frame) {
                        Ok(Some(packet)) => {
                            // Checked again right before the packet leaves: mute is immediate.
                            if !self.shared.may_send() {
                                continue;
                            }
                            // In an encrypted room only ciphertext leaves (nothing before
                            // the first key).
                            let frame_payload = match &mut self.e2ee {
                                Some(e) => match e.seal(packet.payload) {
                                    Some(sealed) => sealed,
                                    None => continue,
                                },
                                None => packet.payload,
                            };
                            if let Some(t) = &transport {
                                let mut out = self.recycled.try_recv().unwrap_or_else(|_| {
                                    Box::new(OutgoingRtp {
                                        transport: t.clone(),
                                        seq: 0,
                                        ts: 0,
                                        marker: false,
                                        audio_level: 127,
                                        voice: false,
                                        red: false,
                                        len: 0,
                                        payload: [0; ruang_media::codec::MAX_PACKET],
                                    })
                                });
                                out.transport.clone_from(t);
                                out.seq = packet.seq;
                                out.ts = packet.ts;
                                out.marker = packet.marker;
                                out.audio_level = packet.audio_level;
                                out.voice = packet.voice;
                                let packed = if redundancy > 0 {
                                    red.encode(
                                        packet.seq,
                                        packet.ts,
                                        frame_payload,
                                        redundancy,
                                        &mut out.payload,
                                    )
                                } else {
                                    red.remember(packet.seq, packet.ts, frame_payload);
                                    None
                                };
                                out.red = packed.is_some();
                                out.len = packed.unwrap_or(frame_payload.len());
                                if !out.red {
                                    out.payload[..out.len].copy_from_slice(frame_payload);
                                }
                                if self.outgoing.try_send(out).is_err() {
                                    // The runtime is far behind: drop rather than wait.
                                    self.shared.send_errors.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                        Ok(None) => {}
                        Err(e) => tracing::warn!(error = %e, "encoding failed"),
                    }
                }
                local.capture_overruns = capture.overruns();
                local.send_level = send.level().loudness();
                local.loss_hint_percent = send.encoder_mut().config().packet_loss_perc as u8;
            } else {
                local.loss_hint_percent = loss_hint.unwrap_or(0);
            }
            local.reported_loss_percent = self.shared.loss.reported();
            local.loss_reports = self.shared.loss.reports();

            // Jitter buffers → mix → speaker, paced by how much the device has consumed.
            if let Some(playback) = &mut self.playback {
                let target_ms = playout_target.update(playback.underruns());
                let target = (target_ms as usize * FRAME_SAMPLES).div_ceil(20);
                while playback.queued() < target && playback.free() >= MAX_ADJUSTED_SAMPLES {
                    let info = self.receive.pull(now_ms, &mut out[..FRAME_SAMPLES]);
                    // Usually the whole frame; 10 ms less when the playout runs later than
                    // the packets need, a few ms of silence more before a talk spurt that
                    // starts barely in time (see `ReceivePipeline::trim`).
                    let len = self.receive.trim(&mut out);
                    let attenuation = self.shared.attenuation_milli.load(Ordering::Relaxed);
                    if attenuation > 0 {
                        let gain = 1000u32.saturating_sub(attenuation) as i32;
                        for s in out[..len].iter_mut() {
                            *s = ((*s as i32 * gain) / 1000) as i16;
                        }
                    }
                    if !playback.write_frame(&out[..len]) {
                        break;
                    }
                    local.frames_played += 1;
                    if info.sources > 0 {
                        local.frames_with_audio += 1;
                    }
                }
                local.playback_underruns = playback.underruns();
                local.playout_target_ms = playout_target.target_ms();
            }

            // Publish.
            let mut playout = retired;
            for slot in &mut slots {
                if let Some(st) = self.receive.speaker(SpeakerId(slot.ssrc)) {
                    playout.add(&st.jitter);
                    slot.jitter = st.jitter;
                    slot.level = st.level.loudness();
                    slot.voice_active = st.voice_active;
                    slot.playing = st.playing;
                    slot.buffered_ms = st.buffered_ms;
                    slot.fec_recovered = st.fec_recovered;
                }
            }
            local.playout = playout;
            local.playout_trims = self.receive.trims();
            local.playout_accelerates = self.receive.accelerates();
            local.playout_lead_ins = self.receive.lead_ins();
            local.send_allowed = self.shared.may_send();
            local.slots.clone_from(&slots);
            if let Some(t) = &transport {
                local.packets_dropped = t.dropped();
                local.connected =
                    t.state() == webrtc::peer_connection::RTCPeerConnectionState::Connected;
            } else {
                local.connected = false;
            }
            local.packets_sent = self.shared.packets_sent.load(Ordering::Relaxed);
            local.red_packets_sent = self.shared.red_packets_sent.load(Ordering::Relaxed);
            local.bytes_sent = self.shared.bytes_sent.load(Ordering::Relaxed);
            local.send_errors = self.shared.send_errors.load(Ordering::Relaxed);
            if let Some(e) = &self.e2ee {
                local.e2ee = Some(e.counters);
            }
            self.shared.update(|s| {
                let renegotiations = s.renegotiations;
                s.clone_from(&local);
                s.renegotiations = renegotiations;
            });
        }
    }
}
