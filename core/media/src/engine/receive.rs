use crate::codec::{packet_has_fec, CodecError, OpusDecoder};
use crate::jitter::{JitterBuffer, JitterConfig, JitterStats, Playout, PushOutcome, RtpPacket};
use crate::level::{AudioLevel, LevelMeter, VoiceActivity};
use crate::mixer::Mixer;
use crate::FRAME_SAMPLES;

/// Identifies a remote speaker (e.g. the RTP SSRC or a participant index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpeakerId(pub u32);

#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("too many speakers (limit {0})")]
    TooManySpeakers(usize),
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// Receive-side settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReceiveConfig {
    pub jitter: JitterConfig,
    pub vad: VoiceActivity,
    /// Upper bound on simultaneously tracked speakers (the SFU forwards only a few).
    pub max_speakers: usize,
    /// Shorten the output by 10 ms when every speaker's packets have been waiting long
    /// enough ([`ReceivePipeline::trim`]).
    pub trim: bool,
}

/// Room `out` needs in [`ReceivePipeline::trim`]: a frame plus the longest lead-in.
pub const MAX_ADJUSTED_SAMPLES: usize = FRAME_SAMPLES + TRIM_MARGIN_MS as usize * 48;

/// Shortens a 20 ms frame by 5 ms to `max_cut` samples (at most 15 ms) in place and returns
/// its new length. The cut is the lag at which the frame best resembles itself (a whole number of pitch periods for voiced
/// speech or a tone), and the frame is cross-faded from its start into the part after the
/// cut: it starts where the previous frame ended, ends where the next one begins, and a
/// periodic signal keeps its phase (no click, no beat). No allocation.
pub fn shorten_frame(frame: &mut [i16], max_cut: usize) -> usize {
    let (lag, _) = best_cut(frame, max_cut);
    cross_fade_cut(frame, lag)
}

/// The cut [`shorten_frame`] would make and how alike the frame is to itself at that lag
/// (normalised correlation, 1.0 = perfectly periodic).
pub fn best_cut(frame: &[i16], max_cut: usize) -> (usize, f32) {
    let n = frame.len();
    let min_lag = n / 4;
    let max_lag = max_cut.clamp(min_lag, n * 3 / 4);
    let mut best = (max_lag, f32::MIN);
    for lag in min_lag..=max_lag {
        let (mut xy, mut xx, mut yy) = (0f32, 0f32, 0f32);
        for i in 0..n - lag {
            let (x, y) = (f32::from(frame[i]), f32::from(frame[i + lag]));
            xy += x * y;
            xx += x * x;
            yy += y * y;
        }
        let c = if xx > 0.0 && yy > 0.0 {
            xy / (xx * yy).sqrt()
        } else {
            0.0
        };
        // Prefer the longer cut on ties (silence): it removes more delay.
        if c >= best.1 {
            best = (lag, c);
        }
    }
    best
}

/// A cheap estimate of [`best_cut`]'s correlation: every 4th sample, every 4th lag (a sixteenth
/// of the work). Only a gate: a frame that passes is searched exactly.
fn rough_periodicity(frame: &[i16], max_cut: usize) -> f32 {
    let n = frame.len();
    let min_lag = n / 4;
    let max_lag = max_cut.clamp(min_lag, n * 3 / 4);
    let mut best = f32::MIN;
    for lag in (min_lag..=max_lag).step_by(4) {
        let (mut xy, mut xx, mut yy) = (0f32, 0f32, 0f32);
        for i in (0..n - lag).step_by(4) {
            let (x, y) = (f32::from(frame[i]), f32::from(frame[i + lag]));
            xy += x * y;
            xx += x * x;
            yy += y * y;
        }
        if xx > 0.0 && yy > 0.0 {
            best = best.max(xy / (xx * yy).sqrt());
        }
    }
    best
}

fn cross_fade_cut(frame: &mut [i16], lag: usize) -> usize {
    let n = frame.len();
    let len = n - lag;
    for i in 0..len {
        let w = (i as f32 + 0.5) / len as f32;
        let mixed = f32::from(frame[i]) * (1.0 - w) + f32::from(frame[i + lag]) * w;
        frame[i] = mixed.round() as i16;
    }
    len
}

/// Slack needed (on top of the margin) before the output is shortened.
pub const TRIM_MS: u32 = 5;
/// Slack that must remain after a trim: arrival noise the 1–2 s slack window may not show.
pub const TRIM_MARGIN_MS: u32 = 5;
/// Frames between two trims (each trim changes every speaker's slack; let it be re-measured).
const TRIM_INTERVAL_FRAMES: u32 = 10;
/// A trim waits this long for a quiet frame (3 s: speech pauses far more often); after
/// that it may shorten a voiced frame, but only a strongly periodic one
/// ([`ACCELERATE_MIN_CORRELATION`]), by whole pitch periods with a cross-fade — the
/// accelerate of WebRTC's NetEq — so continuous speech does not keep a long delay forever.
const TRIM_QUIET_WAIT_FRAMES: u32 = 150;
pub const ACCELERATE_MIN_CORRELATION: f32 = 0.9;

impl Default for ReceiveConfig {
    fn default() -> Self {
        Self {
            jitter: JitterConfig::default(),
            vad: VoiceActivity::default(),
            max_speakers: 16,
            trim: true,
        }
    }
}

/// Snapshot of one speaker for the UI and for statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeakerState {
    pub id: SpeakerId,
    /// Level of the last frame played for this speaker.
    pub level: AudioLevel,
    pub voice_active: bool,
    /// Playing out (false while buffering or after draining at the end of a talk spurt).
    pub playing: bool,
    pub jitter: JitterStats,
    pub target_delay_ms: u32,
    pub buffered_ms: u32,
    pub jitter_ms: f64,
    /// Recover decisions where the next packet really carried FEC data.
    pub fec_recovered: u64,
    /// Recover decisions where it did not (the decoder concealed instead).
    pub fec_missing: u64,
    /// Packets the decoder rejected (concealed instead).
    pub decode_errors: u64,
}

/// Result of one [`ReceivePipeline::pull`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PullInfo {
    /// Speakers that contributed audio to this frame.
    pub sources: usize,
}

#[derive(Debug)]
struct Speaker {
    id: SpeakerId,
    jitter: JitterBuffer,
    decoder: OpusDecoder,
    meter: LevelMeter,
    fec_recovered: u64,
    fec_missing: u64,
    decode_errors: u64,
    /// The last frame played for this speaker was quiet (see `QUIET_MEAN_SQUARE`).
    quiet: bool,
}

/// A decoded frame whose mean square is below this (about −40 dBFS RMS) is quiet: a pause, an
/// unvoiced stretch or a fade. Time-scale changes (the jitter buffer's level corrections, the
/// pipeline's trims) happen only there, where they cannot be heard.
pub const QUIET_MEAN_SQUARE: f32 = 328.0 * 328.0;

fn mean_square(pcm: &[i16]) -> f32 {
    pcm.iter()
        .map(|&s| f32::from(s) * f32::from(s))
        .sum::<f32>()
        / pcm.len().max(1) as f32
}

/// Per-speaker jitter buffers and decoders, mixed into one 20 ms output frame per pull.
#[derive(Debug)]
pub struct ReceivePipeline {
    config: ReceiveConfig,
    speakers: Vec<Speaker>,
    mixer: Mixer,
    pcm: Vec<i16>,
    frames_since_trim: u32,
    trim_waited: u32,
    trims: u64,
    accelerates: u64,
    /// Silence to play before the frame just pulled, in samples (see `adjust`).
    lead_in: usize,
    lead_ins: u64,
}

impl Default for ReceivePipeline {
    fn default() -> Self {
        Self::new(ReceiveConfig::default())
    }
}

impl ReceivePipeline {
    pub fn new(config: ReceiveConfig) -> Self {
        Self {
            speakers: Vec::with_capacity(config.max_speakers),
            config,
            mixer: Mixer::default(),
            pcm: vec![0; FRAME_SAMPLES],
            frames_since_trim: 0,
            trim_waited: 0,
            trims: 0,
            accelerates: 0,
            lead_in: 0,
            lead_ins: 0,
        }
    }

    /// Hands an arriving packet to its speaker's jitter buffer; the first packet of a new
    /// speaker sets up its decoder (the only allocation on this path).
    pub fn push(
        &mut self,
        speaker: SpeakerId,
        packet: RtpPacket<'_>,
    ) -> Result<PushOutcome, ReceiveError> {
        let idx = self.speaker_index(speaker)?;
        Ok(self.speakers[idx].jitter.push(packet))
    }

    /// A frame carried as a redundant copy in a later packet (RED), already taken out of it
    /// (the end-to-end encrypted path decrypts each block first). See
    /// [`JitterBuffer::push_redundant`].
    pub fn push_redundant(
        &mut self,
        speaker: SpeakerId,
        packet: RtpPacket<'_>,
    ) -> Result<PushOutcome, ReceiveError> {
        let idx = self.speaker_index(speaker)?;
        Ok(self.speakers[idx].jitter.push_redundant(packet))
    }

    /// Like [`Self::push`] for an RFC 2198 RED payload: the primary block goes in as the
    /// packet itself, and each redundant block (an earlier frame) fills the hole its own
    /// packet left, if that frame is still to be played ([`JitterBuffer::push_redundant`]).
    /// A malformed RED payload counts as an invalid packet. No allocation.
    pub fn push_red(
        &mut self,
        speaker: SpeakerId,
        packet: RtpPacket<'_>,
    ) -> Result<PushOutcome, ReceiveError> {
        let idx = self.speaker_index(speaker)?;
        let jitter = &mut self.speakers[idx].jitter;
        let Ok(red) = crate::red::parse(packet.payload) else {
            return Ok(jitter.push(RtpPacket {
                payload: &[],
                ..packet
            }));
        };
        let outcome = jitter.push(RtpPacket {
            payload: red.primary.payload,
            ..packet
        });
        for (seq, ts, payload) in red.redundant_with_seq(packet.seq, packet.ts) {
            jitter.push_redundant(RtpPacket {
                seq,
                ts,
                payload,
                arrival_ms: packet.arrival_ms,
            });
        }
        Ok(outcome)
    }

    fn speaker_index(&mut self, speaker: SpeakerId) -> Result<usize, ReceiveError> {
        if let Some(i) = self.speakers.iter().position(|s| s.id == speaker) {
            return Ok(i);
        }
        if self.speakers.len() >= self.config.max_speakers {
            return Err(ReceiveError::TooManySpeakers(self.config.max_speakers));
        }
        self.speakers.push(Speaker {
            id: speaker,
            jitter: JitterBuffer::new(self.config.jitter),
            decoder: OpusDecoder::new()?,
            meter: LevelMeter::new(self.config.vad),
            fec_recovered: 0,
            fec_missing: 0,
            decode_errors: 0,
            quiet: true,
        });
        Ok(self.speakers.len() - 1)
    }

    /// Produces the next 20 ms of mixed audio into `out` (960 samples). Call once per frame on
    /// the playout clock. Decode failures are concealed per speaker, never fatal.
    pub fn pull(&mut self, now_ms: u64, out: &mut [i16]) -> PullInfo {
        self.mixer.begin();
        let pcm = &mut self.pcm;
        for sp in &mut self.speakers {
            sp.jitter.set_quiet(sp.quiet);
            let result = match sp.jitter.pop(now_ms) {
                Playout::Empty => {
                    sp.meter.record(AudioLevel::SILENCE);
                    sp.quiet = true;
                    continue;
                }
                Playout::Received(payload) => sp.decoder.decode(payload, pcm),
                Playout::Recover(next) => {
                    if packet_has_fec(next) {
                        sp.fec_recovered += 1;
                    } else {
                        sp.fec_missing += 1;
                    }
                    sp.decoder.decode_fec(next, pcm)
                }
                Playout::Conceal => sp.decoder.conceal(pcm),
            };
            if result.is_err() {
                sp.decode_errors += 1;
                if sp.decoder.conceal(pcm).is_err() {
                    pcm.fill(0);
                }
            }
            sp.quiet = mean_square(pcm) < QUIET_MEAN_SQUARE;
            sp.meter.update_i16(pcm);
            self.mixer.add_i16(pcm);
        }
        // A talk spurt that starts out of silence with its first packet barely in time would
        // make every later packet of the spurt that is a little later an underrun (and the
        // concealed frame a permanent 20 ms more delay). Start it a little later instead:
        // silence before it costs nothing.
        let mut lead_in_ms = 0;
        for sp in &mut self.speakers {
            if let Some(w) = sp.jitter.take_start_wait() {
                lead_in_ms = lead_in_ms.max(TRIM_MARGIN_MS.saturating_sub(w));
            }
        }
        let others_playing = self
            .speakers
            .iter()
            .filter(|s| s.jitter.is_playing())
            .count()
            > 1;
        if lead_in_ms > 0 && !others_playing {
            self.lead_in = lead_in_ms as usize * FRAME_SAMPLES / 20;
        }
        let sources = self.mixer.sources();
        self.mixer.finish_i16(out);
        PullInfo { sources }
    }

    /// How much earlier the mix could be played without any speaker's frame missing its
    /// packet: the smallest [`JitterBuffer::playout_slack_ms`] of the speakers playing.
    /// `None` when nobody plays or a speaker has not been measured long enough.
    pub fn playout_slack_ms(&self) -> Option<u32> {
        let mut slack: Option<u32> = None;
        for sp in self.speakers.iter().filter(|s| s.jitter.is_playing()) {
            let s = sp.jitter.playout_slack_ms()?;
            slack = Some(slack.map_or(s, |m| m.min(s)));
        }
        slack
    }

    /// Call after [`ReceivePipeline::pull`] with its frame in `out[..FRAME_SAMPLES]` (`out`
    /// must have room for [`MAX_ADJUSTED_SAMPLES`]); returns how many samples of `out` to
    /// play. Usually the frame as it is. When a talk spurt starts out of silence with its
    /// first packet less than [`TRIM_MARGIN_MS`] in time, the frame is moved back behind that
    /// much silence (a lead-in). When every playing speaker's packets have been waiting at
    /// least [`TRIM_MS`] + [`TRIM_MARGIN_MS`] (the playout runs later than the network needs,
    /// by less than the whole frame the jitter buffers' level control works in), the frame is
    /// shortened by 5–15 ms, never by more than the slack less the margin ([`shorten_frame`]),
    /// so that everything after it plays that much earlier. It waits for a quiet frame (a pause
    /// between words, [`QUIET_MEAN_SQUARE`]) however long that takes. No allocation.
    pub fn trim(&mut self, out: &mut [i16]) -> usize {
        let lead = std::mem::take(&mut self.lead_in);
        if lead > 0 {
            out.copy_within(..FRAME_SAMPLES, lead);
            out[..lead].fill(0);
            self.lead_ins += 1;
            return FRAME_SAMPLES + lead;
        }
        let out = &mut out[..FRAME_SAMPLES];
        self.frames_since_trim = self.frames_since_trim.saturating_add(1);
        let eligible = self.config.trim
            && self.frames_since_trim >= TRIM_INTERVAL_FRAMES
            && self
                .playout_slack_ms()
                .is_some_and(|s| s >= TRIM_MS + TRIM_MARGIN_MS);
        if !eligible {
            self.trim_waited = 0;
            return out.len();
        }
        self.trim_waited = self.trim_waited.saturating_add(1);
        // Cut at most down to the margin: slack − margin ms.
        let slack = self.playout_slack_ms().unwrap_or(0);
        let max_cut = slack.saturating_sub(TRIM_MARGIN_MS) as usize * FRAME_SAMPLES / 20;
        // In a quiet frame (a pause between words) any cut is inaudible. Inside speech only
        // after a long wait, and only a strongly periodic frame (accelerate).
        let loud = mean_square(out) >= QUIET_MEAN_SQUARE;
        // Inside speech: only after the wait, only every 5th frame, and only a frame the
        // rough check finds periodic (the exact search costs ~0.5 M multiply-adds).
        if loud
            && (self.trim_waited < TRIM_QUIET_WAIT_FRAMES
                || !self.trim_waited.is_multiple_of(5)
                || rough_periodicity(out, max_cut) < ACCELERATE_MIN_CORRELATION - 0.1)
        {
            return out.len();
        }
        let (lag, correlation) = best_cut(out, max_cut);
        if loud {
            if correlation < ACCELERATE_MIN_CORRELATION {
                return out.len();
            }
            self.accelerates += 1;
        }
        let len = cross_fade_cut(out, lag);
        let cut_ms = ((out.len() - len) * 20 / FRAME_SAMPLES) as u32;
        for sp in &mut self.speakers {
            sp.jitter.advance_playout(cut_ms);
        }
        self.frames_since_trim = 0;
        self.trim_waited = 0;
        self.trims += 1;
        len
    }

    /// Talk spurts started behind a lead-in of silence so far.
    pub fn lead_ins(&self) -> u64 {
        self.lead_ins
    }

    /// Of the trims, those made inside speech (a periodic frame after a long wait for a
    /// quiet one).
    pub fn accelerates(&self) -> u64 {
        self.accelerates
    }

    /// Frames shortened by [`ReceivePipeline::trim`] so far.
    pub fn trims(&self) -> u64 {
        self.trims
    }

    /// Forgets a speaker (left the stage or the room).
    pub fn remove_speaker(&mut self, id: SpeakerId) -> bool {
        let before = self.speakers.len();
        self.speakers.retain(|s| s.id != id);
        self.speakers.len() != before
    }

    pub fn speaker(&self, id: SpeakerId) -> Option<SpeakerState> {
        self.speakers.iter().find(|s| s.id == id).map(state)
    }

    pub fn speakers(&self) -> impl Iterator<Item = SpeakerState> + '_ {
        self.speakers.iter().map(state)
    }

    /// Current limiter gain of the mix (1.0 = not limiting).
    pub fn limiter_gain(&self) -> f32 {
        self.mixer.gain()
    }
}

fn state(s: &Speaker) -> SpeakerState {
    SpeakerState {
        id: s.id,
        level: s.meter.level(),
        voice_active: s.meter.voice_active(),
        playing: s.jitter.is_playing(),
        jitter: s.jitter.stats(),
        target_delay_ms: s.jitter.target_delay_ms(),
        buffered_ms: s.jitter.buffered_ms(),
        jitter_ms: s.jitter.jitter_ms(),
        fec_recovered: s.fec_recovered,
        fec_missing: s.fec_missing,
        decode_errors: s.decode_errors,
    }
}
