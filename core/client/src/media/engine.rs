//! The engine task: moves audio between the device rings and the transport on a short tick.
//!
//! - capture: every whole 20 ms frame in the capture ring → [`SendPipeline`] (muted unless
//!   sending is allowed) → RTP with the RFC 6464 level on the current transport; the
//!   encoder's loss hint follows what the server reports (`loss.rs`, read from an atomic);
//! - receive: packets from every `recvonly` track → [`ReceivePipeline`] keyed by SSRC;
//! - playback: whenever the playback ring holds less than the playout target, one mixed
//!   20 ms frame is pulled and written, so the device clock paces playout. The target starts
//!   at `playout_ms` and grows on device underruns (the engine was late), then shrinks back.
//!
//! The device threads only ever touch the lock-free rings; this task owns the pipelines.

use super::loss::LossFeedback;
use super::transport::{IncomingRtp, Transport};
use super::{MediaStats, SlotStats};
use ruang_media::device::{CaptureStream, PlaybackStream};
use ruang_media::{
    JitterStats, PlayoutTarget, ReceivePipeline, RtpPacket, SendPipeline, SpeakerId, FRAME_SAMPLES,
    MAX_ADJUSTED_SAMPLES,
};
use std::sync::atomic::{AtomicBool, Ordering};
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
    pub transport: watch::Receiver<Option<Arc<Transport>>>,
    pub stop: watch::Receiver<bool>,
    pub tick: Duration,
    pub playout_ms: u32,
}

impl Engine {
    pub async fn run(mut self) {
        let start = Instant::now();
        let mut ticker = tokio::time::interval(self.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut frame = vec![0i16; FRAME_SAMPLES];
        let mut out = vec![0i16; MAX_ADJUSTED_SAMPLES];
        let mut generation = 0u64;
        let mut slots: Vec<SlotStats> = Vec::new();
        // Jitter statistics of speakers already forgotten (renegotiation).
        let mut retired = JitterStats::default();
        let mut local = MediaStats::default();
        let mut playout_target = PlayoutTarget::new(self.playout_ms, PLAYOUT_MAX_MS);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = self.stop.changed() => break,
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
            }

            // Network → jitter buffers.
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
                if let Err(e) = self.receive.push(SpeakerId(pkt.ssrc), rtp) {
                    tracing::debug!(error = %e, "receive pipeline refused a packet");
                }
            }

            // Microphone → network.
            let loss_hint = self.shared.loss.hint();
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
                            if let Some(t) = &transport {
                                match t.send(&packet).await {
                                    Ok(()) => {
                                        local.packets_sent += 1;
                                        local.bytes_sent += packet.payload.len() as u64;
                                    }
                                    Err(_) => local.send_errors += 1,
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
            self.shared.update(|s| {
                let renegotiations = s.renegotiations;
                s.clone_from(&local);
                s.renegotiations = renegotiations;
            });
        }
    }
}
