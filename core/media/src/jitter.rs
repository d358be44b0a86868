//! Per-speaker adaptive jitter buffer (sans-IO).
//!
//! Packets go in with [`JitterBuffer::push`] as they arrive from the network; every 20 ms the
//! playout clock calls [`JitterBuffer::pop`] and gets one decision for the next frame. The buffer
//! never decodes: it tells the caller which payload to decode, or to recover / conceal.
//!
//! Design (close to WebRTC NetEq, simplified):
//! - Packets are ordered by extended (unwrapped) RTP sequence number; every packet is one 20 ms
//!   frame, so the buffer level in frames is `newest_seq - next_seq + 1`.
//! - Target delay = a high quantile of the packets' relative transit delay over a sliding window
//!   (plus one frame for the playout-clock phase). It starts low for fast first audio, grows as
//!   soon as jitter shows up and falls back once the jittery packets leave the window.
//! - The level is steered towards the target: one frame is discarded when the buffer is
//!   persistently a frame too deep, a concealment frame is inserted (without consuming a packet)
//!   when it is persistently a frame too shallow. This also absorbs sender/receiver clock drift.
//!   Both are time-scale changes the listener would hear inside a word, so they wait for a
//!   quiet play position ([`JitterBuffer::set_quiet`]: the caller's last decoded frame of this
//!   speaker was silence or low-energy, i.e. a pause or an unvoiced stretch). Only a buffer far
//!   too deep ([`FAR_TOO_DEEP_FRAMES`]) is shortened in the middle of speech; a buffer running
//!   dry conceals as it must.
//! - A missing frame whose successor has arrived is recovered from the successor's in-band FEC;
//!   with a longer hole it is concealed (PLC). When nothing at all is buffered the frame is
//!   concealed without advancing (the packet may just be late), and after a few such frames the
//!   buffer drains and waits for the next talk spurt (DTX silence, speaker muted).
//! - Storage is a fixed ring of `capacity` slots of [`MAX_PAYLOAD`] bytes, allocated once.
//! - Besides the level in whole frames, the buffer measures its *slack*: how long the packet
//!   played by each `pop` had already been waiting (the minimum over the last 50–100 pops, 0
//!   for a frame that had to be recovered or concealed). Slack above a frame's worth is caught
//!   by the level control; slack of 10–20 ms is invisible to it, and is what the caller can
//!   remove by playing out earlier ([`JitterBuffer::playout_slack_ms`],
//!   [`JitterBuffer::advance_playout`]).

use crate::{FRAME_MS, FRAME_TS};

/// Largest payload the buffer stores (one MTU); larger packets are rejected.
pub const MAX_PAYLOAD: usize = 1500;

/// RTP clock ticks per millisecond (Opus always uses a 48 kHz RTP clock).
const TS_PER_MS: i64 = 48;
/// Forward sequence jump still treated as loss rather than a new stream (RFC 3550 A.1).
const MAX_DROPOUT: i64 = 3000;
/// Forward timestamp gap still treated as DTX silence rather than a restarted stream (60 s).
const MAX_TS_GAP: i64 = 60 * 1000 * TS_PER_MS;
/// Minimum number of delay samples before the measured target replaces the initial one.
const MIN_DELAY_SAMPLES: usize = 16;
/// Pops per slack bucket; the slack is the minimum of the previous and the current bucket.
const SLACK_BUCKET: u32 = 150;
/// Frames above the target at which the level is cut even in loud speech (the delay is then
/// audibly long; a jitter spike that calmed down).
pub const FAR_TOO_DEEP_FRAMES: f32 = 4.0;
/// Frames after a talk spurt starts before a frame may be inserted to deepen the buffer.
const SPURT_SETTLE_FRAMES: u32 = 50;

/// One received RTP packet carrying one 20 ms Opus frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub seq: u16,
    pub ts: u32,
    pub payload: &'a [u8],
    /// Local receive time in milliseconds on the same clock as `pop(now_ms)`.
    pub arrival_ms: u64,
}

/// What to play for the next 20 ms frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Playout<'a> {
    /// Decode this payload normally.
    Received(&'a [u8]),
    /// The frame was lost but the next packet has arrived: decode this payload (the *next*
    /// packet) in FEC mode to recover the lost frame. The next packet stays buffered.
    Recover(&'a [u8]),
    /// No data for this frame: run the decoder's packet loss concealment.
    Conceal,
    /// Nothing to play (not started yet, or drained after silence): output silence.
    Empty,
}

/// What happened to a pushed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    Stored,
    /// Same sequence number already buffered (or just played).
    Duplicate,
    /// Its frame was already played, recovered or concealed.
    Late,
    /// Empty or larger than [`MAX_PAYLOAD`].
    Invalid,
    /// Far outside the current stream; kept as a candidate new stream (RFC 3550 probation).
    Probation,
}

/// Tuning knobs. The defaults suit 20 ms Opus voice.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JitterConfig {
    /// Slots (frames) of storage; bounds the maximum buffering (64 × 20 ms = 1.28 s).
    pub capacity: usize,
    /// Lower bound of the target delay.
    pub min_delay_ms: u32,
    /// Target before enough packets have been measured: low for fast first audio.
    pub initial_delay_ms: u32,
    /// Upper bound of the target delay.
    pub max_delay_ms: u32,
    /// Number of recent packets whose delays define the target.
    pub window: usize,
    /// Quantile of the relative delay the target must cover (0.95 = 5 % may arrive late).
    pub quantile: f32,
    /// Concealed frames played on underrun before the buffer drains and waits for new packets.
    pub max_underrun_frames: u32,
    /// Minimum number of frames between two level corrections (discard / insert).
    pub adjust_interval_frames: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            capacity: 64,
            min_delay_ms: 20,
            initial_delay_ms: 40,
            max_delay_ms: 500,
            window: 200,
            quantile: 0.95,
            max_underrun_frames: 5,
            adjust_interval_frames: 10,
        }
    }
}

/// Counters for benchmarks and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets offered to `push`.
    pub pushed: u64,
    /// Frames played from their own packet.
    pub received: u64,
    /// Frames recovered from the next packet's FEC.
    pub recovered: u64,
    /// Frames played from a redundant copy (RFC 2198 RED) that filled the hole their own
    /// packet left ([`JitterBuffer::push_redundant`]).
    pub redundant: u64,
    /// Lost frames concealed (a later packet had arrived).
    pub concealed: u64,
    /// Frames concealed because nothing was buffered (late packet, end of talk spurt).
    pub underruns: u64,
    /// Concealed frames inserted on purpose to deepen the buffer.
    pub expanded: u64,
    /// `pop` calls that returned [`Playout::Empty`].
    pub empty: u64,
    /// Packets dropped because their frame had already been played or concealed.
    pub late: u64,
    /// Duplicate packets dropped.
    pub duplicates: u64,
    /// Buffered packets thrown away: level reduction, overflow, resynchronisation.
    pub discarded: u64,
    /// Packets rejected as empty or oversized.
    pub invalid: u64,
    /// Times the buffer restarted on a new stream (sequence or timestamp discontinuity).
    pub resyncs: u64,
}

impl JitterStats {
    /// Frames the playout produced from real data or a loss decision.
    pub fn frames_played(&self) -> u64 {
        self.received + self.redundant + self.recovered + self.concealed
    }

    /// Adds `other`'s counters to these (totals over several buffers).
    pub fn add(&mut self, other: &JitterStats) {
        *self = self.combine(other, u64::saturating_add);
    }

    /// What the counters grew by since `before` (a snapshot of the same buffer).
    pub fn since(&self, before: &JitterStats) -> JitterStats {
        self.combine(before, u64::saturating_sub)
    }

    fn combine(&self, o: &JitterStats, f: fn(u64, u64) -> u64) -> JitterStats {
        JitterStats {
            pushed: f(self.pushed, o.pushed),
            received: f(self.received, o.received),
            recovered: f(self.recovered, o.recovered),
            redundant: f(self.redundant, o.redundant),
            concealed: f(self.concealed, o.concealed),
            underruns: f(self.underruns, o.underruns),
            expanded: f(self.expanded, o.expanded),
            empty: f(self.empty, o.empty),
            late: f(self.late, o.late),
            duplicates: f(self.duplicates, o.duplicates),
            discarded: f(self.discarded, o.discarded),
            invalid: f(self.invalid, o.invalid),
            resyncs: f(self.resyncs, o.resyncs),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    ext_seq: i64,
    ts: u32,
    len: usize,
    arrival_ms: u64,
    occupied: bool,
    /// Filled from a later packet's redundancy, not from its own packet.
    redundant: bool,
}

const EMPTY_SLOT: Slot = Slot {
    ext_seq: -1,
    ts: 0,
    len: 0,
    arrival_ms: 0,
    occupied: false,
    redundant: false,
};

/// Running minimum of the playout slack over one to two buckets of pops.
#[derive(Debug, Clone, Copy)]
struct Slack {
    current: u32,
    count: u32,
    previous: Option<u32>,
}

impl Slack {
    const NONE: Slack = Slack {
        current: u32::MAX,
        count: 0,
        previous: None,
    };

    fn note(&mut self, ms: u32) {
        self.current = self.current.min(ms);
        self.count += 1;
        if self.count == SLACK_BUCKET {
            self.previous = Some(self.current);
            self.current = u32::MAX;
            self.count = 0;
        }
    }

    fn value(&self) -> Option<u32> {
        self.previous.map(|p| p.min(self.current))
    }

    fn advance(&mut self, ms: u32) {
        self.previous = self.previous.map(|p| p.saturating_sub(ms));
        if self.current != u32::MAX {
            self.current = self.current.saturating_sub(ms);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing buffered. `expected` is where the previous stream stopped, so older packets
    /// arriving after a drain are recognised as late.
    Idle {
        expected: Option<i64>,
    },
    /// Collecting packets until the target delay is buffered; `since_ms` is the first arrival.
    Buffering {
        since_ms: u64,
    },
    Playing,
}

/// Adaptive jitter buffer for one speaker. See the module docs.
#[derive(Debug)]
pub struct JitterBuffer {
    config: JitterConfig,
    slots: Vec<Slot>,
    data: Vec<u8>,
    state: State,
    /// Buffering: lowest buffered sequence. Playing: the next frame to play.
    next_ext: i64,
    /// Highest extended sequence number seen in the current stream.
    newest_ext: Option<i64>,
    newest_seq: u16,
    /// Timestamp unwrapping reference (the newest packet's timestamp).
    ts_ref: u32,
    ts_ref_ext: i64,
    /// RFC 3550 probation: a far-away sequence that would start a new stream if followed.
    probation_seq: Option<u16>,
    underrun_run: u32,
    since_adjust: u32,
    level_ema: f32,
    // Delay statistics: transit = arrival (in RTP ticks) − extended timestamp.
    transits: Vec<i64>,
    transit_pos: usize,
    transit_len: usize,
    scratch: Vec<i64>,
    last_transit: Option<i64>,
    jitter_ticks: f64,
    /// Target from the delay statistics alone.
    base_target_ms: u32,
    /// Frames played since the last loss or underrun (saturating).
    frames_since_loss: u32,
    /// Deepest redundancy seen (RED: how many packets back a copy reached, at most 2): a
    /// loss of that many frames in a row is rebuilt if the packet after it is in time.
    red_depth: u32,
    /// Newest sequence number when a copy was last offered: the depth counts only while
    /// copies keep coming (within `window` packets).
    red_seen_at: Option<i64>,
    /// While buffering after a drain: where the previous stream stopped (redundant copies of
    /// frames before it were played or given up already).
    floor: Option<i64>,
    /// `frames_since_loss` before the current underrun run, restored if it turns out to be
    /// the end of a talk spurt rather than a loss.
    frames_since_loss_saved: u32,
    /// Timestamp of the last frame played from its own packet (DTX gap detection).
    last_played_ts: Option<u32>,
    /// Set when playing (re)starts; the first frame played records how long it waited.
    starting: bool,
    start_wait: Option<u32>,
    slack: Slack,
    /// Level corrections are inaudible at the play position (see [`JitterBuffer::set_quiet`]).
    quiet: bool,
    /// Frames played since playing (re)started, and whether a frame was inserted since.
    spurt_frames: u32,
    spurt_expanded: bool,
    stats: JitterStats,
}

impl Default for JitterBuffer {
    fn default() -> Self {
        Self::new(JitterConfig::default())
    }
}

impl JitterBuffer {
    pub fn new(config: JitterConfig) -> Self {
        let capacity = config.capacity.max(4);
        let window = config.window.max(8);
        let config = JitterConfig {
            capacity,
            window,
            ..config
        };
        Self {
            slots: vec![EMPTY_SLOT; capacity],
            data: vec![0; capacity * MAX_PAYLOAD],
            state: State::Idle { expected: None },
            next_ext: 0,
            newest_ext: None,
            newest_seq: 0,
            ts_ref: 0,
            ts_ref_ext: 0,
            probation_seq: None,
            underrun_run: 0,
            since_adjust: 0,
            level_ema: 0.0,
            transits: vec![0; window],
            transit_pos: 0,
            transit_len: 0,
            scratch: Vec::with_capacity(window),
            last_transit: None,
            jitter_ticks: 0.0,
            base_target_ms: config
                .initial_delay_ms
                .clamp(config.min_delay_ms, config.max_delay_ms),
            frames_since_loss: u32::MAX,
            red_depth: 0,
            red_seen_at: None,
            floor: None,
            frames_since_loss_saved: u32::MAX,
            last_played_ts: None,
            starting: false,
            start_wait: None,
            slack: Slack::NONE,
            quiet: true,
            spurt_frames: 0,
            spurt_expanded: false,
            stats: JitterStats::default(),
            config,
        }
    }

    /// Whether the audio at the play position is quiet (silence, unvoiced or low-energy): the
    /// caller's last decoded frame of this speaker. Level corrections (a frame dropped or
    /// inserted) wait for `true`; the default, for callers that do not know, is `true`.
    pub fn set_quiet(&mut self, quiet: bool) {
        self.quiet = quiet;
    }

    pub fn config(&self) -> &JitterConfig {
        &self.config
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Current target delay.
    ///
    /// While losses are being seen, one frame is added: FEC recovery needs the packet after
    /// the lost one to be buffered already when the lost frame is due. With RED copies
    /// reaching two packets back, two frames: two lost in a row come back with the third.
    pub fn target_delay_ms(&self) -> u32 {
        let fec_margin = if (self.frames_since_loss as usize) < self.config.window {
            FRAME_MS * self.red_depth_now().clamp(1, 2)
        } else {
            0
        };
        (self.base_target_ms + fec_margin).min(self.config.max_delay_ms)
    }

    /// [`Self::red_depth`] while copies keep coming, else 0.
    fn red_depth_now(&self) -> u32 {
        let recent = match (self.red_seen_at, self.newest_ext) {
            (Some(at), Some(newest)) => newest - at < self.config.window as i64,
            _ => false,
        };
        if recent {
            self.red_depth
        } else {
            0
        }
    }

    /// RFC 3550 interarrival jitter estimate in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        self.jitter_ticks / TS_PER_MS as f64
    }

    /// Audio currently buffered (including holes that will be recovered or concealed).
    pub fn buffered_ms(&self) -> u32 {
        self.level_frames() as u32 * FRAME_MS
    }

    /// True while frames are being played out (not idle, not still buffering).
    pub fn is_playing(&self) -> bool {
        self.state == State::Playing
    }

    /// How much earlier, in milliseconds, frames could have been played over the last 50–100
    /// pops without any of them missing its packet: the shortest time a played packet had been
    /// waiting (0 if a frame was recovered or concealed), less the frame of margin kept while
    /// losses are seen (FEC recovery needs the *next* packet in time). `None` until a full
    /// bucket of pops has been measured since playing (re)started.
    pub fn playout_slack_ms(&self) -> Option<u32> {
        if self.state != State::Playing {
            return None;
        }
        let margin = self.target_delay_ms() - self.base_target_ms.min(self.target_delay_ms());
        self.slack.value().map(|s| s.saturating_sub(margin))
    }

    /// After playing (re)started (first talk spurt, or after a drain): how long the first
    /// frame's packet had waited when it was played. Returned once.
    pub fn take_start_wait(&mut self) -> Option<u32> {
        self.start_wait.take()
    }

    /// Tells the buffer that the caller now pops `ms` earlier than before (it shortened its
    /// output), so every packet will wait that much less: the measured slack shrinks with it.
    pub fn advance_playout(&mut self, ms: u32) {
        self.slack.advance(ms);
    }

    /// Drops all buffered packets and forgets the stream; counters and the learned target stay.
    pub fn reset(&mut self) {
        self.flush();
        self.slack = Slack::NONE;
        self.state = State::Idle { expected: None };
        self.newest_ext = None;
        self.probation_seq = None;
        self.last_transit = None;
        self.transit_len = 0;
        self.transit_pos = 0;
    }

    /// Stores an arriving packet.
    pub fn push(&mut self, packet: RtpPacket<'_>) -> PushOutcome {
        self.stats.pushed += 1;
        if packet.payload.is_empty() || packet.payload.len() > MAX_PAYLOAD {
            self.stats.invalid += 1;
            return PushOutcome::Invalid;
        }
        let Some(newest) = self.newest_ext else {
            self.start_stream(packet);
            return self.store(packet, (1 << 32) + i64::from(packet.seq));
        };

        let delta = i64::from(packet.seq.wrapping_sub(self.newest_seq) as i16);
        let ext = newest + delta;
        let ts_delta = i64::from(packet.ts.wrapping_sub(self.ts_ref) as i32);
        let far_seq = delta > MAX_DROPOUT || delta < -(self.config.capacity as i64);
        // Backwards or huge forward timestamp moves mean the sender restarted its stream; a
        // forward gap is DTX silence (RTP time kept running while nothing was sent).
        let ts_restart = (delta > 0 && ts_delta < (delta - 1) * i64::from(FRAME_TS))
            || ts_delta.abs() > MAX_TS_GAP;
        if far_seq || ts_restart {
            if far_seq && self.probation_seq != Some(packet.seq) {
                self.probation_seq = Some(packet.seq.wrapping_add(1));
                return PushOutcome::Probation;
            }
            self.stats.resyncs += 1;
            self.reset();
            self.start_stream(packet);
            return self.store(packet, (1 << 32) + i64::from(packet.seq));
        }
        self.probation_seq = None;
        self.store(packet, ext)
    }

    fn start_stream(&mut self, packet: RtpPacket<'_>) {
        self.newest_seq = packet.seq;
        self.ts_ref = packet.ts;
        self.ts_ref_ext = 1 << 32;
        self.last_transit = None;
        self.transit_len = 0;
        self.transit_pos = 0;
    }

    fn store(&mut self, packet: RtpPacket<'_>, ext: i64) -> PushOutcome {
        let slot_i = self.slot_index(ext);
        let slot = self.slots[slot_i];
        if slot.occupied && slot.ext_seq == ext {
            self.stats.duplicates += 1;
            return PushOutcome::Duplicate;
        }

        // Late packets still feed the delay statistics: they are exactly the ones that tell us
        // the target is too small.
        self.record_delay(packet, ext);

        match self.state {
            State::Playing if ext < self.next_ext => {
                self.stats.late += 1;
                return PushOutcome::Late;
            }
            State::Idle {
                expected: Some(expected),
            } if ext < expected => {
                self.stats.late += 1;
                return PushOutcome::Late;
            }
            State::Idle { expected } => {
                self.state = State::Buffering {
                    since_ms: packet.arrival_ms,
                };
                self.floor = expected;
                self.next_ext = ext;
            }
            State::Buffering { .. } if ext < self.next_ext => {
                let newest = self.newest_ext.unwrap_or(ext);
                if newest - ext >= self.config.capacity as i64 {
                    self.stats.late += 1;
                    return PushOutcome::Late;
                }
                self.next_ext = ext;
            }
            _ => {}
        }

        // A packet too far ahead of the play position to fit (a long outage while the stream
        // kept going): everything before it is stale, so play on from this packet.
        if ext - self.next_ext >= self.config.capacity as i64 {
            self.flush();
            self.next_ext = ext;
        }

        if self.newest_ext.is_none_or(|n| ext > n) {
            self.newest_ext = Some(ext);
            self.newest_seq = packet.seq;
        }
        let slot_i = self.slot_index(ext);
        let start = slot_i * MAX_PAYLOAD;
        self.data[start..start + packet.payload.len()].copy_from_slice(packet.payload);
        self.slots[slot_i] = Slot {
            ext_seq: ext,
            ts: packet.ts,
            len: packet.payload.len(),
            arrival_ms: packet.arrival_ms,
            occupied: true,
            redundant: false,
        };
        PushOutcome::Stored
    }

    /// Stores a redundant copy of an earlier frame (RFC 2198 RED: a block of a later
    /// packet; `seq`/`ts` are the frame's own, `arrival_ms` the carrier's arrival). It only
    /// fills a hole: a frame of the current stream, behind the newest packet, not played yet
    /// and not buffered. It does not count as a pushed packet and does not feed the delay
    /// statistics (it arrived with a later packet, not late). [`PushOutcome::Stored`] when it
    /// filled a hole.
    pub fn push_redundant(&mut self, packet: RtpPacket<'_>) -> PushOutcome {
        if packet.payload.is_empty() || packet.payload.len() > MAX_PAYLOAD {
            return PushOutcome::Invalid;
        }
        let Some(newest) = self.newest_ext else {
            return PushOutcome::Late;
        };
        let delta = i64::from(packet.seq.wrapping_sub(self.newest_seq) as i16);
        if delta >= 0 || -delta >= self.config.capacity as i64 {
            // Redundancy is always older than the packet that carried it, which is stored.
            return PushOutcome::Late;
        }
        let ext = newest + delta;
        let back = (-delta).min(2) as u32;
        self.red_depth = if self.red_depth_now() > 0 {
            self.red_depth.max(back)
        } else {
            back
        };
        self.red_seen_at = Some(newest);
        // Playing: only frames still to come. Buffering (a talk spurt starting): also the
        // frames just before the first packet that arrived — its own first packets, lost —
        // but nothing from before the previous stream stopped.
        let fits = match self.state {
            State::Playing => ext >= self.next_ext,
            State::Buffering { .. } => self.floor.is_none_or(|f| ext >= f),
            State::Idle { .. } => false,
        };
        if !fits {
            return PushOutcome::Late;
        }
        if self.is_present(ext) {
            return PushOutcome::Duplicate;
        }
        if ext < self.next_ext {
            self.next_ext = ext;
        }
        let slot_i = self.slot_index(ext);
        let start = slot_i * MAX_PAYLOAD;
        self.data[start..start + packet.payload.len()].copy_from_slice(packet.payload);
        self.slots[slot_i] = Slot {
            ext_seq: ext,
            ts: packet.ts,
            len: packet.payload.len(),
            arrival_ms: packet.arrival_ms,
            occupied: true,
            redundant: true,
        };
        PushOutcome::Stored
    }

    fn record_delay(&mut self, packet: RtpPacket<'_>, ext: i64) {
        let ts_ext = self.ts_ref_ext + i64::from(packet.ts.wrapping_sub(self.ts_ref) as i32);
        if self.newest_ext.is_none_or(|n| ext >= n) {
            self.ts_ref = packet.ts;
            self.ts_ref_ext = ts_ext;
        }
        let transit = packet.arrival_ms as i64 * TS_PER_MS - ts_ext;
        if let Some(last) = self.last_transit {
            // RFC 3550 section 6.4.1 estimator, kept for reporting.
            let d = (transit - last).abs() as f64;
            self.jitter_ticks += (d - self.jitter_ticks) / 16.0;
        }
        self.last_transit = Some(transit);
        self.transits[self.transit_pos] = transit;
        self.transit_pos = (self.transit_pos + 1) % self.transits.len();
        self.transit_len = (self.transit_len + 1).min(self.transits.len());
        self.update_target();
    }

    fn update_target(&mut self) {
        let n = self.transit_len;
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.transits[..n]);
        let min = self.scratch.iter().copied().min().unwrap_or(0);
        let k = ((n - 1) as f32 * self.config.quantile.clamp(0.0, 1.0)).round() as usize;
        let (_, q, _) = self.scratch.select_nth_unstable(k);
        let quantile_ms = ((*q - min) as f64 / TS_PER_MS as f64).ceil() as u32;
        // One extra frame: a packet can arrive just after the playout tick that wanted it.
        let mut target = quantile_ms + FRAME_MS;
        if n < MIN_DELAY_SAMPLES {
            target = target.max(self.config.initial_delay_ms);
        }
        self.base_target_ms = target.clamp(self.config.min_delay_ms, self.config.max_delay_ms);
    }

    /// Decides what to play for the next frame. Call once per 20 ms of playout.
    pub fn pop(&mut self, now_ms: u64) -> Playout<'_> {
        match self.state {
            State::Idle { .. } => {
                self.stats.empty += 1;
                return Playout::Empty;
            }
            State::Buffering { since_ms } => {
                let level_ms = self.level_frames() as u64 * u64::from(FRAME_MS);
                let target = u64::from(self.target_delay_ms());
                // Start once the target is buffered, or once the first packet has waited the
                // target less the frame it holds for the playout clock's phase (a packet
                // that has waited that long covers the jitter; waiting for the next pop too
                // would put the whole talk spurt 20 ms later).
                let wait = target.saturating_sub(u64::from(FRAME_MS));
                if level_ms < target && now_ms < since_ms + wait {
                    self.stats.empty += 1;
                    return Playout::Empty;
                }
                self.state = State::Playing;
                self.slack = Slack::NONE;
                self.starting = true;
                self.spurt_frames = 0;
                self.spurt_expanded = false;
                self.underrun_run = 0;
                self.since_adjust = 0;
                self.level_ema = self.level_frames() as f32;
            }
            State::Playing => {}
        }

        let level = self.level_frames() as f32;
        self.level_ema += (level - self.level_ema) / 8.0;
        self.since_adjust = self.since_adjust.saturating_add(1);
        self.spurt_frames = self.spurt_frames.saturating_add(1);
        self.frames_since_loss = self.frames_since_loss.saturating_add(1);
        let desired = self.target_delay_ms() as f32 / FRAME_MS as f32;
        let may_adjust = self.since_adjust >= self.config.adjust_interval_frames;

        if self.is_present(self.next_ext) {
            self.end_underrun_run();
            let too_deep = self.level_ema >= desired + 1.0 && level >= 2.0;
            let far_too_deep = self.level_ema >= desired + FAR_TOO_DEEP_FRAMES;
            if may_adjust && too_deep && (self.quiet || far_too_deep) {
                // Persistently a frame too deep (jitter calmed down, or the sender's clock is
                // faster than ours): drop one frame to cut the delay.
                self.discard_slot(self.next_ext);
                self.next_ext += 1;
                self.level_ema -= 1.0;
                self.since_adjust = 0;
                return self.play_missing_or_present(now_ms);
            }
            // The start of a talk spurt already chose its depth (see `Buffering`): no frame is
            // inserted in its first second, and at most one per spurt after that — a buffer
            // that really runs dry conceals anyway.
            let may_expand = self.spurt_frames >= SPURT_SETTLE_FRAMES && !self.spurt_expanded;
            if may_adjust && may_expand && self.quiet && self.level_ema <= desired - 1.0 {
                self.spurt_expanded = true;
                // Persistently a frame too shallow (more jitter, or a slower sender clock):
                // stretch by one concealed frame without consuming a packet.
                self.level_ema += 1.0;
                self.since_adjust = 0;
                self.stats.expanded += 1;
                self.slack.note(0);
                return Playout::Conceal;
            }
        }
        self.play_missing_or_present(now_ms)
    }

    fn play_missing_or_present(&mut self, now_ms: u64) -> Playout<'_> {
        let next = self.next_ext;
        if self.is_present(next) {
            self.end_underrun_run();
            self.next_ext += 1;
            let slot_i = self.slot_index(next);
            if self.slots[slot_i].redundant {
                self.stats.redundant += 1;
                // Rebuilt, so it was lost: keep the loss margin.
                self.frames_since_loss = 0;
            } else {
                self.stats.received += 1;
            }
            self.slots[slot_i].occupied = false;
            self.last_played_ts = Some(self.slots[slot_i].ts);
            let waited = now_ms.saturating_sub(self.slots[slot_i].arrival_ms);
            let waited = waited.min(u64::from(u32::MAX - 1)) as u32;
            self.slack.note(waited);
            if std::mem::take(&mut self.starting) {
                self.start_wait = Some(waited);
            }
            return Playout::Received(self.payload(slot_i));
        }
        let later_buffered = self.newest_ext.is_some_and(|n| n > next);
        if later_buffered {
            // A hole: this frame's own packet was not there in time.
            self.slack.note(0);
            self.underrun_run = 0;
            self.next_ext += 1;
            self.frames_since_loss = 0;
            if self.is_present(next + 1) {
                self.stats.recovered += 1;
                return Playout::Recover(self.payload(self.slot_index(next + 1)));
            }
            self.stats.concealed += 1;
            return Playout::Conceal;
        }
        // Nothing buffered: the packet may only be late, so conceal without advancing.
        self.underrun_run += 1;
        if self.underrun_run == 1 {
            self.frames_since_loss_saved = self.frames_since_loss;
        }
        self.frames_since_loss = 0;
        if self.underrun_run > self.config.max_underrun_frames {
            // It was the end of a talk spurt, not a loss: don't keep the FEC margin for it.
            self.frames_since_loss = self
                .frames_since_loss_saved
                .saturating_add(self.underrun_run);
            self.state = State::Idle {
                expected: Some(next),
            };
            self.stats.empty += 1;
            return Playout::Empty;
        }
        self.stats.underruns += 1;
        Playout::Conceal
    }

    /// The packet for the play position is here after concealed frames. If its timestamp
    /// skips ahead of the last frame played, the sender was in DTX (silence, nothing sent),
    /// so nothing was lost: the loss margin is not kept for it.
    fn end_underrun_run(&mut self) {
        if self.underrun_run > 0 {
            let ts = self.slots[self.slot_index(self.next_ext)].ts;
            let skipped = self
                .last_played_ts
                .is_some_and(|last| ts.wrapping_sub(last) as i32 > FRAME_TS as i32);
            if skipped {
                self.frames_since_loss = self
                    .frames_since_loss_saved
                    .saturating_add(self.underrun_run);
            }
        }
        self.underrun_run = 0;
    }

    /// Frames from the play position to the newest packet, holes included.
    fn level_frames(&self) -> usize {
        match (self.state, self.newest_ext) {
            (State::Idle { .. }, _) | (_, None) => 0,
            (_, Some(newest)) if newest >= self.next_ext => (newest - self.next_ext + 1) as usize,
            _ => 0,
        }
    }

    fn slot_index(&self, ext: i64) -> usize {
        ext.rem_euclid(self.config.capacity as i64) as usize
    }

    fn is_present(&self, ext: i64) -> bool {
        let s = &self.slots[self.slot_index(ext)];
        s.occupied && s.ext_seq == ext
    }

    fn payload(&self, slot_i: usize) -> &[u8] {
        let start = slot_i * MAX_PAYLOAD;
        &self.data[start..start + self.slots[slot_i].len]
    }

    fn discard_slot(&mut self, ext: i64) {
        let i = self.slot_index(ext);
        if self.slots[i].occupied && self.slots[i].ext_seq == ext {
            self.slots[i].occupied = false;
            self.stats.discarded += 1;
        }
    }

    fn flush(&mut self) {
        for slot in &mut self.slots {
            if slot.occupied {
                slot.occupied = false;
                self.stats.discarded += 1;
            }
        }
    }

    /// RTP timestamp of the frame that will be played next, if it is buffered.
    pub fn next_timestamp(&self) -> Option<u32> {
        if self.state == (State::Idle { expected: None }) || !self.is_present(self.next_ext) {
            return None;
        }
        Some(self.slots[self.slot_index(self.next_ext)].ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{alloc_count, Rng};

    /// Compact view of a playout decision: the sequence number a payload belongs to.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Out {
        R(u16),
        F(u16),
        C,
        E,
    }
    use Out::*;

    fn payload(seq: u16) -> [u8; 3] {
        [seq as u8, (seq >> 8) as u8, 0x5A]
    }

    fn seq_of(p: &[u8]) -> u16 {
        u16::from(p[0]) | (u16::from(p[1]) << 8)
    }

    fn pkt(seq: u16, ts: u32, arrival_ms: u64, buf: &[u8; 3]) -> RtpPacket<'_> {
        RtpPacket {
            seq,
            ts,
            payload: buf,
            arrival_ms,
        }
    }

    fn pop(jb: &mut JitterBuffer, now: u64) -> Out {
        match jb.pop(now) {
            Playout::Received(p) => R(seq_of(p)),
            Playout::Recover(p) => F(seq_of(p)),
            Playout::Conceal => C,
            Playout::Empty => E,
        }
    }

    /// A packet as sent: sequence number, timestamp and arrival time.
    #[derive(Debug, Clone, Copy)]
    struct Sent {
        seq: u16,
        ts: u32,
        arrival: u64,
    }

    /// Regular stream: frame `i` sent at 20·i ms, arriving `delay(i)` ms later.
    fn stream(seq0: u16, ts0: u32, n: usize, delay: impl Fn(usize) -> u64) -> Vec<Sent> {
        (0..n)
            .map(|i| Sent {
                seq: seq0.wrapping_add(i as u16),
                ts: ts0.wrapping_add(i as u32 * FRAME_TS),
                arrival: i as u64 * 20 + delay(i),
            })
            .collect()
    }

    /// Delivers `packets` in arrival order and pops every 20 ms from `first_pop`.
    fn run(jb: &mut JitterBuffer, packets: &[Sent], first_pop: u64, pops: usize) -> Vec<Out> {
        let mut order: Vec<Sent> = packets.to_vec();
        order.sort_by_key(|p| p.arrival);
        let mut next = 0;
        let mut out = Vec::with_capacity(pops);
        for k in 0..pops {
            let now = first_pop + 20 * k as u64;
            while next < order.len() && order[next].arrival <= now {
                let p = order[next];
                let buf = payload(p.seq);
                jb.push(pkt(p.seq, p.ts, p.arrival, &buf));
                next += 1;
            }
            out.push(pop(jb, now));
        }
        out
    }

    /// Fixed 40 ms target and no level corrections: decisions are exactly predictable.
    fn fixed() -> JitterBuffer {
        JitterBuffer::new(JitterConfig {
            min_delay_ms: 40,
            initial_delay_ms: 40,
            max_delay_ms: 40,
            adjust_interval_frames: u32::MAX,
            ..JitterConfig::default()
        })
    }

    fn received(out: &[Out]) -> Vec<u16> {
        out.iter()
            .filter_map(|o| if let R(s) = o { Some(*s) } else { None })
            .collect()
    }

    fn without(packets: Vec<Sent>, lost: &[u16]) -> Vec<Sent> {
        packets
            .into_iter()
            .filter(|p| !lost.contains(&p.seq))
            .collect()
    }

    #[test]
    fn redundant_copies_fill_holes_only() {
        // A fixed 60 ms target: packet 7 (arriving at 141 ms) is there before frame 5 is due.
        let mut jb = JitterBuffer::new(JitterConfig {
            min_delay_ms: 60,
            initial_delay_ms: 60,
            max_delay_ms: 60,
            adjust_interval_frames: u32::MAX,
            ..JitterConfig::default()
        });
        // 0..=4 arrive; 5 and 6 are lost; 7 carries 5 and 6 as redundancy (RED depth 2).
        let packets = without(stream(0, 0, 12, |_| 1), &[5, 6]);
        let mut order = packets.clone();
        order.sort_by_key(|p| p.arrival);
        let mut out = Vec::new();
        let mut next = 0;
        for k in 0..15 {
            let now = 20 * k as u64;
            while next < order.len() && order[next].arrival <= now {
                let p = order[next];
                let buf = payload(p.seq);
                assert_eq!(
                    jb.push(pkt(p.seq, p.ts, p.arrival, &buf)),
                    PushOutcome::Stored
                );
                if p.seq == 7 {
                    for back in [1u16, 2] {
                        let s = p.seq - back;
                        let buf = payload(s);
                        let copy = pkt(s, s as u32 * FRAME_TS, p.arrival, &buf);
                        assert_eq!(jb.push_redundant(copy), PushOutcome::Stored, "{s}");
                    }
                    // A copy of a frame that is buffered, one already played, one ahead of
                    // the newest packet: nothing is stored.
                    let b4 = payload(4);
                    let b2 = payload(2);
                    let b9 = payload(9);
                    assert_eq!(
                        jb.push_redundant(pkt(6, 6 * FRAME_TS, p.arrival, &b4)),
                        PushOutcome::Duplicate
                    );
                    assert_eq!(
                        jb.push_redundant(pkt(2, 2 * FRAME_TS, p.arrival, &b2)),
                        PushOutcome::Late
                    );
                    assert_eq!(
                        jb.push_redundant(pkt(9, 9 * FRAME_TS, p.arrival, &b9)),
                        PushOutcome::Late
                    );
                    let empty = RtpPacket {
                        seq: 3,
                        ts: 3 * FRAME_TS,
                        payload: &[],
                        arrival_ms: p.arrival,
                    };
                    assert_eq!(jb.push_redundant(empty), PushOutcome::Invalid);
                }
                next += 1;
            }
            out.push(pop(&mut jb, now));
        }
        // Every frame plays from real data, 5 and 6 from their copies (with their own payload).
        assert_eq!(received(&out), (0..12).collect::<Vec<u16>>(), "{out:?}");
        let s = jb.stats();
        assert_eq!(s.redundant, 2, "{s:?}");
        assert_eq!(s.received, 10);
        assert_eq!(s.concealed + s.recovered + s.duplicates, 0, "{s:?}");
        assert_eq!(s.pushed, 10, "copies are not counted as pushed packets");
        // Nothing to fill before any packet arrived.
        let mut fresh = fixed();
        let b = payload(1);
        assert_eq!(fresh.push_redundant(pkt(1, 960, 0, &b)), PushOutcome::Late);
    }

    #[test]
    fn a_talk_spurt_whose_first_packet_was_lost_starts_from_its_copy() {
        let mut jb = fixed();
        // A first spurt 0..=4, played out and drained (the sender went quiet: DTX).
        let first = stream(0, 0, 5, |_| 1);
        let out = run(&mut jb, &first, 0, 16);
        assert_eq!(received(&out), vec![0, 1, 2, 3, 4]);
        assert!(!jb.is_playing());
        // The next spurt starts at seq 5 (ts far ahead); 5 is lost, 6 carries copies of 5 and
        // of 4 (from before the pause, already played).
        let ts5 = 40 * FRAME_TS;
        let b6 = payload(6);
        assert_eq!(
            jb.push(pkt(6, ts5 + FRAME_TS, 400, &b6)),
            PushOutcome::Stored
        );
        let b4 = payload(4);
        assert_eq!(
            jb.push_redundant(pkt(4, 4 * FRAME_TS, 400, &b4)),
            PushOutcome::Late
        );
        let b5 = payload(5);
        assert_eq!(
            jb.push_redundant(pkt(5, ts5, 400, &b5)),
            PushOutcome::Stored
        );
        let b7 = payload(7);
        jb.push(pkt(7, ts5 + 2 * FRAME_TS, 420, &b7));
        let mut out = Vec::new();
        for k in 0..4 {
            out.push(pop(&mut jb, 420 + 20 * k));
        }
        assert_eq!(received(&out), vec![5, 6, 7], "{out:?}");
        assert_eq!(jb.stats().redundant, 1);
    }

    #[test]
    fn copies_two_packets_back_keep_two_frames_of_margin_under_loss() {
        let mut jb = JitterBuffer::default();
        let packets = stream(0, 0, 100, |_| 1);
        run(&mut jb, &packets, 0, 90);
        let base = jb.target_delay_ms();
        // A loss rebuilt from a copy one packet back: one frame of margin.
        let mut jb1 = JitterBuffer::default();
        let lost = without(stream(0, 0, 100, |_| 1), &[50]);
        let mut order = lost.clone();
        order.sort_by_key(|p| p.arrival);
        for (k, p) in order.iter().enumerate() {
            let b = payload(p.seq);
            jb1.push(pkt(p.seq, p.ts, p.arrival, &b));
            if p.seq == 51 {
                let c = payload(50);
                jb1.push_redundant(pkt(50, 50 * FRAME_TS, p.arrival, &c));
            }
            let _ = k;
            pop(&mut jb1, p.arrival + 19);
        }
        assert_eq!(jb1.stats().redundant, 1, "{:?}", jb1.stats());
        assert_eq!(jb1.target_delay_ms(), base + FRAME_MS);
        // Copies two back (RED depth 2): two frames.
        let b = payload(52);
        jb1.push_redundant(pkt(97, 97 * FRAME_TS, 2000, &b));
        assert_eq!(jb1.target_delay_ms(), base + 2 * FRAME_MS);
        // Once copies stop coming (the sender turned RED off), one frame again.
        for s in 100..=(100 + jb1.config().window as u16) {
            let b = payload(s);
            jb1.push(pkt(
                s,
                s as u32 * FRAME_TS,
                2000 + 20 * u64::from(s - 99),
                &b,
            ));
        }
        assert_eq!(jb1.target_delay_ms(), base + FRAME_MS);
    }

    #[test]
    fn empty_until_started() {
        let mut jb = JitterBuffer::default();
        assert_eq!(pop(&mut jb, 0), E);
        assert_eq!(jb.stats().empty, 1);
        assert_eq!(jb.buffered_ms(), 0);
        assert_eq!(jb.target_delay_ms(), 40);
        assert!(!jb.is_playing());
    }

    #[test]
    fn steady_stream_starts_fast_and_settles_low() {
        let mut jb = JitterBuffer::default();
        let packets = stream(100, 5000, 200, |_| 5);
        let out = run(&mut jb, &packets, 10, 190);
        // Packet 0 arrives at 5 ms; the first frame plays as soon as 40 ms are buffered,
        // i.e. at the pop at 30 ms (25 ms after the first packet arrived).
        assert_eq!(&out[..3], &[E, R(100), R(101)]);
        let got = received(&out);
        assert!(got.windows(2).all(|w| w[1] > w[0]), "out of order: {got:?}");
        let s = jb.stats();
        assert_eq!(
            s.concealed + s.recovered + s.underruns + s.expanded + s.late,
            0
        );
        // Without jitter the target falls to the 20 ms minimum and one frame is dropped once
        // to get there.
        assert_eq!(jb.target_delay_ms(), 20);
        assert_eq!(s.discarded, 1);
        assert!(jb.buffered_ms() <= 20);
        assert_eq!(jb.next_timestamp(), None);
    }

    #[test]
    fn level_corrections_wait_for_a_quiet_play_position() {
        // The same steady stream as above wants one frame dropped once the target has fallen
        // to 20 ms; while the speaker is loud it is kept, and dropped at the first quiet frame.
        let packets = stream(100, 5000, 200, |_| 5);
        let mut jb = JitterBuffer::default();
        jb.set_quiet(false);
        let out = run(&mut jb, &packets, 10, 120);
        assert_eq!(
            jb.stats().discarded,
            0,
            "cut inside speech: {:?}",
            jb.stats()
        );
        assert_eq!(
            received(&out).len(),
            out.iter().filter(|o| **o != E).count()
        );
        jb.set_quiet(true);
        let rest: Vec<Sent> = packets[120..].to_vec();
        run(&mut jb, &rest, 10 + 20 * 120, 20);
        assert_eq!(jb.stats().discarded, 1);

        // Too shallow (jitter grew): a concealed frame is inserted only while quiet.
        let jumpy = |i: usize| {
            if i >= 60 && i.is_multiple_of(5) {
                45
            } else {
                2
            }
        };
        let packets = stream(0, 0, 200, jumpy);
        let mut loud = JitterBuffer::default();
        loud.set_quiet(false);
        run(&mut loud, &packets, 5, 190);
        let mut quiet = JitterBuffer::default();
        run(&mut quiet, &packets, 5, 190);
        assert_eq!(loud.stats().expanded, 0, "{:?}", loud.stats());
        assert_eq!(
            quiet.stats().expanded,
            1,
            "one per talk spurt: {:?}",
            quiet.stats()
        );

        // Far too deep (a spike that calmed down) is cut even in speech.
        let spike = |i: usize| {
            if i < 30 {
                200 - (i as u64 * 6).min(200)
            } else {
                2
            }
        };
        let packets = stream(0, 0, 300, spike);
        let mut jb = JitterBuffer::default();
        jb.set_quiet(false);
        run(&mut jb, &packets, 5, 290);
        assert!(jb.buffered_ms() <= jb.target_delay_ms() + FAR_TOO_DEEP_FRAMES as u32 * 20);
    }

    #[test]
    fn slack_is_how_long_played_packets_waited() {
        let mut jb = JitterBuffer::default();
        assert_eq!(jb.playout_slack_ms(), None);
        // Packets arrive 5 ms after their send time, pops are 5 ms later still (at 10 + 20k):
        // once settled at one frame, every packet has waited exactly 5 ms when it is played.
        let packets = stream(100, 5000, 200, |_| 5);
        run(&mut jb, &packets, 10, 190);
        assert_eq!(jb.playout_slack_ms(), Some(5));
        // The caller shortened its output by 3 ms: packets will wait 3 ms less.
        jb.advance_playout(3);
        assert_eq!(jb.playout_slack_ms(), Some(2));
        jb.advance_playout(10);
        assert_eq!(jb.playout_slack_ms(), Some(0));
    }

    #[test]
    fn slack_is_the_minimum_and_a_loss_counts_as_none() {
        let b = SLACK_BUCKET as usize;
        let mut jb = JitterBuffer::default();
        // Every 7th packet is 12 ms later than the others: the slack is set by those. The
        // target (12 ms of jitter + one frame for the phase) keeps two frames buffered, so
        // they wait 19 - 14 + 20 = 25 ms, and the others 37 ms.
        let packets = stream(0, 0, 4 * b, |i| if i % 7 == 3 { 14 } else { 2 });
        run(&mut jb, &packets, 19, 3 * b);
        assert_eq!(jb.target_delay_ms(), 32);
        assert_eq!(jb.playout_slack_ms(), Some(25));

        // A lost packet (recovered from FEC or concealed) leaves no slack at all, until
        // it has left both buckets.
        let mut jb = JitterBuffer::default();
        let lost = without(stream(0, 0, 6 * b, |_| 2), &[(2 * b + b / 2) as u16]);
        run(&mut jb, &lost, 19, 3 * b);
        assert_eq!(jb.playout_slack_ms(), Some(0));
        // Long after the loss the slack is back. Packets wait a frame longer (37 ms): after a
        // loss the buffer took a frame of margin so that the next packet (with the FEC) is
        // there in time; once no loss has been seen for a while the margin leaves the
        // target, and the extra frame shows as slack (a trim may take it back).
        let mut jb = JitterBuffer::default();
        run(&mut jb, &lost, 19, 5 * b + b / 2);
        assert_eq!(jb.target_delay_ms(), 20);
        assert_eq!(jb.playout_slack_ms(), Some(37));
    }

    #[test]
    fn reordering_is_undone() {
        let mut jb = fixed();
        // Odd packets overtake even ones by a few milliseconds.
        let packets = stream(0, 0, 100, |i| if i % 2 == 0 { 9 } else { 2 });
        let out = run(&mut jb, &packets, 15, 100);
        let got = received(&out);
        assert_eq!(got, (0..got.len() as u16).collect::<Vec<_>>());
        assert!(got.len() >= 95);
        assert_eq!(jb.stats().late, 0);
        assert_eq!(jb.stats().concealed, 0);
    }

    #[test]
    fn duplicates_are_dropped() {
        let mut jb = fixed();
        let mut packets = stream(0, 0, 60, |_| 5);
        packets.extend(stream(0, 0, 60, |_| 12));
        let out = run(&mut jb, &packets, 10, 62);
        let got = received(&out);
        assert_eq!(got, (0..got.len() as u16).collect::<Vec<_>>());
        // Duplicates of frames already played are late; those still buffered are duplicates.
        let s = jb.stats();
        assert_eq!(s.duplicates + s.late, 60);
        assert!(s.duplicates > 0);
    }

    #[test]
    fn single_loss_is_recovered_from_next_packet() {
        let mut jb = fixed();
        let packets = without(stream(0, 0, 60, |_| 5), &[30]);
        let out = run(&mut jb, &packets, 10, 60);
        let i = out.iter().position(|o| *o == R(29)).unwrap();
        assert_eq!(&out[i..i + 4], &[R(29), F(31), R(31), R(32)]);
        assert_eq!(jb.stats().recovered, 1);
        assert_eq!(jb.stats().concealed, 0);
    }

    #[test]
    fn burst_loss_is_concealed_then_recovered() {
        let mut jb = fixed();
        let packets = without(stream(0, 0, 80, |_| 5), &[30, 31, 32]);
        let out = run(&mut jb, &packets, 10, 80);
        let i = out.iter().position(|o| *o == R(29)).unwrap();
        // Two frames of underrun (the packets might only be late), then once 33 is in the
        // holes are known losses: 30 and 31 concealed, 32 recovered from 33's FEC.
        assert_eq!(&out[i..i + 8], &[R(29), C, C, C, C, F(33), R(33), R(34)]);
        let s = jb.stats();
        assert_eq!((s.underruns, s.concealed, s.recovered), (2, 2, 1));
    }

    #[test]
    fn sequence_wraps_around() {
        let mut jb = fixed();
        let packets = without(stream(65_500, u32::MAX - 960 * 10, 100, |_| 5), &[65_535]);
        let out = run(&mut jb, &packets, 10, 100);
        let i = out.iter().position(|o| *o == R(65_534)).unwrap();
        assert_eq!(&out[i..i + 4], &[R(65_534), F(0), R(0), R(1)]);
        let got = received(&out);
        assert!(got.len() >= 95);
        assert_eq!(jb.stats().resyncs, 0);
        assert_eq!(jb.stats().late, 0);
    }

    #[test]
    fn late_packet_is_dropped() {
        let mut jb = fixed();
        let packets = stream(0, 0, 60, |i| if i == 20 { 150 } else { 5 });
        let out = run(&mut jb, &packets, 10, 60);
        assert!(out.contains(&F(21)));
        assert!(!out.contains(&R(20)));
        assert_eq!(jb.stats().late, 1);
        assert_eq!(jb.stats().recovered, 1);
    }

    #[test]
    fn late_packet_within_underrun_still_plays() {
        // The whole stream stalls for 30 ms: the buffer conceals without skipping, so the
        // delayed packets are played, not dropped.
        let mut jb = fixed();
        let packets = stream(0, 0, 60, |i| if (20..23).contains(&i) { 45 } else { 5 });
        let out = run(&mut jb, &packets, 10, 60);
        let got = received(&out);
        assert!((18..25).all(|s| got.contains(&s)));
        assert_eq!(jb.stats().late, 0);
        assert!(jb.stats().underruns >= 1);
    }

    #[test]
    fn dtx_gap_drains_and_resumes_without_resync() {
        let mut jb = fixed();
        let mut packets = stream(0, 0, 20, |_| 5);
        // Two seconds of silence: the sequence continues, timestamps and time jump ahead.
        for mut p in stream(20, 20 * 960, 20, |_| 5) {
            p.ts = p.ts.wrapping_add(100 * 960);
            p.arrival += 2_000;
            packets.push(p);
        }
        let out = run(&mut jb, &packets, 10, 160);
        let got = received(&out);
        assert_eq!(got, (0..40).collect::<Vec<_>>());
        let i = out.iter().position(|o| *o == R(19)).unwrap();
        // Five concealed frames fade the end of the spurt, then silence until it resumes.
        assert_eq!(&out[i + 1..i + 8], &[C, C, C, C, C, E, E]);
        let s = jb.stats();
        assert_eq!(s.resyncs, 0);
        // Five frames at the end of each of the two spurts.
        assert_eq!(s.underruns, 10);
        assert_eq!(s.concealed, 0);
    }

    #[test]
    fn short_dtx_gap_is_not_a_loss() {
        // The sender paused for three frames (DTX: nothing sent; shorter than the five
        // concealed frames before draining), then speech resumes with the next sequence
        // number and a timestamp three frames ahead.
        let mut jb = JitterBuffer::default();
        let mut packets = stream(0, 0, 300, |_| 5);
        for mut p in stream(300, 300 * 960, 300, |_| 5) {
            p.ts = p.ts.wrapping_add(3 * 960);
            p.arrival += 6_000 + 60;
            packets.push(p);
        }
        run(&mut jb, &packets, 10, 450);
        assert!(jb.stats().underruns >= 2, "{:?}", jb.stats());
        assert_eq!(jb.stats().concealed + jb.stats().recovered, 0);
        // No loss margin (it would deepen the buffer by a frame for the next four seconds).
        assert_eq!(jb.target_delay_ms(), 20);

        // The same gap without the timestamp jump is a stall of the network (every packet
        // after it late): the buffer deepens.
        let mut jb = JitterBuffer::default();
        let mut packets = stream(0, 0, 300, |_| 5);
        for mut p in stream(300, 300 * 960, 300, |_| 5) {
            p.arrival += 6_000 + 60;
            packets.push(p);
        }
        run(&mut jb, &packets, 10, 450);
        assert!(jb.target_delay_ms() >= 40, "{}", jb.target_delay_ms());
    }

    #[test]
    fn restarted_speaker_resyncs_after_probation() {
        let mut jb = fixed();
        let mut packets = stream(500, 1_000, 30, |_| 5);
        for mut p in stream(40_000, 77_777, 30, |_| 5) {
            p.arrival += 30 * 20;
            packets.push(p);
        }
        let out = run(&mut jb, &packets, 10, 70);
        let got = received(&out);
        // The first packet of the new stream is on probation and not played.
        assert!(got.contains(&529));
        assert!(!got.contains(&40_000));
        assert!((40_001..40_030).all(|s| got.contains(&s)));
        assert_eq!(jb.stats().resyncs, 1);
    }

    #[test]
    fn timestamp_going_backwards_resyncs() {
        let mut jb = fixed();
        let mut packets = stream(0, 9_000_000, 30, |_| 5);
        // Sequence continues but timestamps restart: a restarted sender reusing its counter.
        for mut p in stream(30, 0, 30, |_| 5) {
            p.arrival += 30 * 20;
            packets.push(p);
        }
        let out = run(&mut jb, &packets, 10, 70);
        let got = received(&out);
        assert!((30..60).all(|s| got.contains(&s)));
        assert_eq!(jb.stats().resyncs, 1);
    }

    #[test]
    fn long_outage_resumes_from_new_packets() {
        let mut jb = fixed();
        let packets = without(stream(0, 0, 300, |_| 5), &(50..150).collect::<Vec<_>>());
        let out = run(&mut jb, &packets, 10, 300);
        let got = received(&out);
        assert!((150..290).all(|s| got.contains(&s)));
        let s = jb.stats();
        assert_eq!(s.resyncs, 0);
        assert_eq!(s.late, 0);
        assert!(out.contains(&E));
    }

    #[test]
    fn packet_beyond_capacity_jumps_ahead() {
        let mut jb = fixed();
        for seq in 0..5u16 {
            let b = payload(seq);
            jb.push(pkt(seq, u32::from(seq) * 960, 0, &b));
        }
        assert_eq!(pop(&mut jb, 100), R(0));
        let b = payload(200);
        assert_eq!(jb.push(pkt(200, 200 * 960, 100, &b)), PushOutcome::Stored);
        assert_eq!(jb.stats().discarded, 4);
        assert_eq!(pop(&mut jb, 120), R(200));
    }

    #[test]
    fn invalid_payloads_are_rejected() {
        let mut jb = JitterBuffer::default();
        let big = [0u8; MAX_PAYLOAD + 1];
        let p = RtpPacket {
            seq: 1,
            ts: 0,
            payload: &big,
            arrival_ms: 0,
        };
        assert_eq!(jb.push(p), PushOutcome::Invalid);
        assert_eq!(
            jb.push(RtpPacket { payload: &[], ..p }),
            PushOutcome::Invalid
        );
        assert_eq!(jb.stats().invalid, 2);
        assert_eq!(pop(&mut jb, 0), E);
    }

    /// Sender clock `ppm` parts per million off ours: the buffer must neither grow without
    /// bound nor run dry.
    fn drift(ppm: i64) -> (JitterBuffer, Vec<Out>) {
        let mut jb = JitterBuffer::default();
        let n = 3_000;
        let packets: Vec<Sent> = (0..n)
            .map(|i| Sent {
                seq: i as u16,
                ts: i as u32 * FRAME_TS,
                arrival: (i as i64 * 20 * (1_000_000 + ppm) / 1_000_000) as u64 + 5,
            })
            .collect();
        let out = run(&mut jb, &packets, 10, n);
        (jb, out)
    }

    #[test]
    fn faster_sender_clock_is_absorbed_by_dropping() {
        // Sender 0.5 % fast: 15 extra frames per minute.
        let (jb, out) = drift(-5_000);
        let s = jb.stats();
        assert!(s.discarded >= 10, "{s:?}");
        assert!(
            jb.buffered_ms() <= 80,
            "buffer grew to {} ms",
            jb.buffered_ms()
        );
        assert!(jb.target_delay_ms() <= 60);
        assert_eq!(s.late + s.concealed, 0);
        assert!(received(&out).windows(2).all(|w| w[1] > w[0]));
    }

    #[test]
    fn slower_sender_clock_is_absorbed_by_stretching() {
        let (jb, out) = drift(5_000);
        let s = jb.stats();
        assert!(s.expanded + s.underruns >= 10, "{s:?}");
        assert!(s.expanded + s.underruns <= 25, "{s:?}");
        assert!(jb.buffered_ms() <= 80);
        assert_eq!(s.late, 0);
        assert!(received(&out).len() >= 2_900);
    }

    #[test]
    fn target_adapts_to_jitter_and_back() {
        let mut jb = JitterBuffer::default();
        let mut rng = Rng::new(7);
        let calm = 500; // 10 s
        let jittery = 1_000; // 20 s
        let delays: Vec<u64> = (0..calm + jittery + 1_500)
            .map(|i| {
                if (calm..calm + jittery).contains(&i) {
                    5 + (rng.next_f32() * 100.0) as u64
                } else {
                    5
                }
            })
            .collect();
        let packets = stream(0, 0, delays.len(), |i| delays[i]);
        let mut order = packets.clone();
        order.sort_by_key(|p| p.arrival);
        let mut next = 0;
        let mut targets = Vec::new();
        let mut late_in_jitter = 0;
        for k in 0..delays.len() {
            let now = 10 + 20 * k as u64;
            while next < order.len() && order[next].arrival <= now {
                let p = order[next];
                let buf = payload(p.seq);
                if jb.push(pkt(p.seq, p.ts, p.arrival, &buf)) == PushOutcome::Late {
                    late_in_jitter += 1;
                }
                next += 1;
            }
            pop(&mut jb, now);
            targets.push(jb.target_delay_ms());
        }
        assert!(targets[calm - 1] <= 40, "calm target {}", targets[calm - 1]);
        let peak = targets[calm + 200..calm + jittery]
            .iter()
            .copied()
            .min()
            .unwrap();
        assert!((80..=160).contains(&peak), "jitter target {peak}");
        // Roughly the configured 5 % may be late while jitter is high.
        assert!(
            late_in_jitter <= jittery / 10,
            "{late_in_jitter} late packets"
        );
        let end = *targets.last().unwrap();
        assert!(end <= 40, "target did not drain: {end}");
        assert!(
            jb.buffered_ms() <= 60,
            "buffer did not drain: {}",
            jb.buffered_ms()
        );
        assert!(jb.jitter_ms() < 2.0);
    }

    #[test]
    fn steady_state_does_not_allocate() {
        let mut jb = JitterBuffer::default();
        let warmup = stream(0, 0, 300, |i| 5 + (i % 7) as u64 * 3);
        run(&mut jb, &warmup, 10, 300);
        let before = alloc_count::allocations();
        let b = payload(1);
        for i in 300..1_300u64 {
            jb.push(pkt(i as u16, i as u32 * 960, i * 20 + 5 + (i % 7) * 3, &b));
            let _ = jb.pop(i * 20 + 10);
        }
        assert_eq!(alloc_count::allocations(), before);
    }
}
