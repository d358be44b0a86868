//! Pure analysis for `ruang bench latency`: the probe signal, per-burst delay by
//! cross-correlation on a shared sample timeline, windowed correlation ("intelligibility"),
//! percentiles and playout frame shares. No I/O and no clock: unit-tested on synthetic input.

use ruang_client::media::ruang_media::analysis::best_alignment;
use ruang_client::media::ruang_media::JitterStats;

/// Samples per second (every buffer is 48 kHz mono).
pub const SR: usize = 48_000;
/// A probe burst starts every 503 ms of the input: not a multiple of the 10 ms device period
/// or the 20 ms codec frame, so successive bursts fall on every phase of both.
pub const BURST_PERIOD: usize = SR * 503 / 1000;
/// Length of a probe burst (a windowed chirp).
pub const BURST_LEN: usize = SR * 40 / 1000;
/// Reference taken around a burst for the delay search (the chirp plus the speech after it).
pub const BURST_REF: usize = SR * 60 / 1000;
/// Intelligibility windows: 250 ms, from 100 ms after a burst (so no chirp is inside).
pub const WINDOW_OFFSET: usize = SR / 10;
pub const WINDOW_LEN: usize = SR / 4;
/// A burst counts as found when its best correlation reaches this.
pub const BURST_MIN_CORRELATION: f64 = 0.6;
/// A window counts as intelligible when its correlation reaches this.
pub const INTELLIGIBLE: f64 = 0.8;

/// The speaker's input: a cyclic signal indexed by the global sample clock
/// (`sample(g) = signal[g mod len]`).
#[derive(Debug, Clone)]
pub struct Input {
    pub signal: std::sync::Arc<[i16]>,
    /// Where each burst starts within one cycle of `signal`.
    pub bursts: std::sync::Arc<[usize]>,
}

impl Input {
    /// Speech normalised to −26 dBFS RMS plus a distinct chirp every [`BURST_PERIOD`]
    /// samples, `seconds` long. The speech is the continuous speech-like signal of the media
    /// tests (`seed` picks it), or real sentences (the bundled demo clips, repeated from an
    /// offset chosen by `seed`) with their pauses.
    pub fn probe(seconds: usize, seed: u64, kind: Speech) -> Input {
        let len = seconds.max(1) * SR;
        let speech: Vec<f32> = match kind {
            Speech::Synthetic => speech_like(len, seed),
            Speech::Demo => {
                let clip = speech_clip();
                let offset = (seed as usize).wrapping_mul(7_919) % clip.len();
                (0..len)
                    .map(|i| f32::from(clip[(offset + i) % clip.len()]) / 32768.0)
                    .collect()
            }
        };
        Input::from_speech(speech, true)
    }

    /// A recorded clip (48 kHz mono) as the cycle, from its start, normalised like
    /// [`Input::probe`]; with `probes`, the chirps are added too. Without them the input is
    /// the clip alone (for perceptual measures), and there are no bursts to time.
    pub fn from_clip(clip: &[i16], probes: bool) -> Input {
        Input::from_speech(
            clip.iter().map(|&s| f32::from(s) / 32768.0).collect(),
            probes,
        )
    }

    fn from_speech(mut speech: Vec<f32>, probes: bool) -> Input {
        let len = speech.len().max(1);
        speech.resize(len, 0.0);
        let rms = (speech.iter().map(|s| s * s).sum::<f32>() / len as f32).sqrt();
        let gain = if rms > 0.0 { 0.05 / rms } else { 0.0 };
        for s in &mut speech {
            *s *= gain;
        }
        // Every burst keeps its speech window clear before the next one (or the cycle's end).
        let bursts: Vec<usize> = (0..len)
            .step_by(BURST_PERIOD)
            .filter(|b| probes && b + WINDOW_OFFSET + WINDOW_LEN + SR / 20 <= len)
            .collect();
        for (k, &start) in bursts.iter().enumerate() {
            let chirp = chirp(k);
            for (i, c) in chirp.iter().enumerate() {
                if let Some(s) = speech.get_mut(start + i) {
                    *s += c;
                }
            }
        }
        let signal: Vec<i16> = speech
            .iter()
            .map(|s| (s.clamp(-1.0, 1.0) * 32767.0) as i16)
            .collect();
        Input {
            signal: signal.into(),
            bursts: bursts.into(),
        }
    }

    /// Global indices of the bursts starting in `[g0, g1)`, in order.
    pub fn bursts_in(&self, g0: u64, g1: u64) -> Vec<u64> {
        let len = self.signal.len() as u64;
        let mut out = Vec::new();
        let mut cycle = g0 / len * len;
        while cycle < g1 {
            out.extend(
                self.bursts
                    .iter()
                    .map(|&b| cycle + b as u64)
                    .filter(|g| (g0..g1).contains(g)),
            );
            cycle += len;
        }
        out
    }

    pub fn sample(&self, g: u64) -> i16 {
        self.signal[(g % self.signal.len() as u64) as usize]
    }

    /// `len` input samples from global index `g` (wrapping around the cycle).
    pub fn window(&self, g: u64, len: usize) -> Vec<i16> {
        (0..len as u64).map(|i| self.sample(g + i)).collect()
    }
}

/// A Hann-windowed linear chirp; `k` varies its band and direction so neighbouring bursts
/// differ (a delay search that overshoots by one period finds a poor match, not a false one).
fn chirp(k: usize) -> Vec<f32> {
    let lo = 350.0 + 150.0 * (k % 4) as f32;
    let hi = 2_200.0 + 400.0 * (k % 3) as f32;
    let (f0, f1) = if k % 2 == 1 { (hi, lo) } else { (lo, hi) };
    let dur = BURST_LEN as f32 / SR as f32;
    let pi = std::f32::consts::PI;
    (0..BURST_LEN)
        .map(|i| {
            let t = i as f32 / SR as f32;
            let phase = 2.0 * pi * (f0 * t + (f1 - f0) * t * t / (2.0 * dur));
            let w = 0.5 - 0.5 * (2.0 * pi * i as f32 / (BURST_LEN - 1) as f32).cos();
            0.35 * w * phase.sin()
        })
        .collect()
}

/// Which speech the benchmark's speaker plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Speech {
    Synthetic,
    Demo,
}

pub use ruang_client::media::ruang_media::signal::speech_like_f32 as speech_like;

/// The two demo voices one after the other, each followed by 300 ms of silence, at 48 kHz:
/// real (synthetic) speech with pauses, for the delay probes and the STOI figure.
pub fn speech_clip() -> Vec<i16> {
    let mut out = Vec::new();
    for clip in [crate::serve::CLIP_A, crate::serve::CLIP_B] {
        out.extend(
            ruang_media::wav::read_wav_reader(clip).expect("the bundled demo clips are valid WAV"),
        );
        out.extend(std::iter::repeat_n(0, SR * 3 / 10));
    }
    out
}

/// What a listener's device played, on the global sample clock: `samples[i]` was played at
/// global index `start + i`.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    pub start: u64,
    pub samples: Vec<i16>,
}

/// Delay of one burst or window: output index − input index on the shared clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Delay {
    /// Global index of the input sample where the reference starts.
    pub at: u64,
    pub samples: i64,
    pub correlation: f64,
}

impl Delay {
    pub fn ms(&self) -> f64 {
        self.samples as f64 * 1000.0 / SR as f64
    }
}

/// Searches the recording for `reference` (input from global index `at`), delayed by
/// `min..=max` samples. `None` when the recording does not cover the whole search range.
pub fn find_delay(
    reference: &[i16],
    at: u64,
    rec: &Recording,
    min: i64,
    max: i64,
) -> Option<Delay> {
    let from = at as i64 + min - rec.start as i64;
    let to = at as i64 + max + reference.len() as i64 - rec.start as i64;
    if from < 0 || to > rec.samples.len() as i64 || min > max {
        return None;
    }
    let out = &rec.samples[from as usize..to as usize];
    let a = best_alignment(reference, out, 0, (max - min) as isize);
    Some(Delay {
        at,
        samples: min + a.lag as i64,
        correlation: a.correlation,
    })
}

/// Results of one listener over the measured span.
#[derive(Debug, Clone, Default)]
pub struct ListenerAnalysis {
    /// Every burst in the span (found or not).
    pub bursts: Vec<Delay>,
    /// Correlation of every 250 ms speech window in the span.
    pub windows: Vec<f64>,
    /// STOI of every [`STOI_CHUNK`] of the span, each aligned on its own.
    pub stoi: Vec<f64>,
}

impl ListenerAnalysis {
    pub fn found(&self) -> impl Iterator<Item = &Delay> {
        self.bursts
            .iter()
            .filter(|d| d.correlation >= BURST_MIN_CORRELATION)
    }
}

/// Length of the pieces the STOI figure is computed on (each is aligned separately, so that a
/// jitter buffer moving the playout by a frame shifts only the pieces after it).
pub const STOI_CHUNK: usize = 2 * SR;

/// Analyses the bursts starting in `[g0, g1)` and their speech windows. Delays are searched in
/// `0..=max_delay` samples; each window around the delay of its own burst (± `slack`), or the
/// median delay when that burst was not found.
pub fn analyze(
    input: &Input,
    rec: &Recording,
    g0: u64,
    g1: u64,
    max_delay: i64,
    slack: i64,
) -> ListenerAnalysis {
    let bursts = input.bursts_in(g0, g1);
    let mut out = ListenerAnalysis::default();
    for &g in &bursts {
        let reference = input.window(g, BURST_REF);
        if let Some(d) = find_delay(&reference, g, rec, 0, max_delay) {
            out.bursts.push(d);
        }
    }
    let found: Vec<f64> = out.found().map(|d| d.samples as f64).collect();
    let Some(median) = percentile(&found, 50.0) else {
        return out;
    };
    for &g in &bursts {
        let around = out
            .bursts
            .iter()
            .find(|d| d.at == g && d.correlation >= BURST_MIN_CORRELATION)
            .map_or(median as i64, |d| d.samples);
        let at = g + WINDOW_OFFSET as u64;
        let reference = input.window(at, WINDOW_LEN);
        let (lo, hi) = ((around - slack).max(0), around + slack);
        if let Some(d) = find_delay(&reference, at, rec, lo, hi) {
            out.windows.push(d.correlation.max(0.0));
        }
    }
    let mut at = g0;
    while at + STOI_CHUNK as u64 <= g1 {
        let end = at + STOI_CHUNK as u64;
        let inside: Vec<f64> = out
            .found()
            .filter(|d| (at..end).contains(&d.at))
            .map(|d| d.samples as f64)
            .collect();
        let around = percentile(&inside, 50.0).unwrap_or(median) as i64;
        let reference = input.window(at, STOI_CHUNK);
        let (lo, hi) = ((around - slack).max(0), around + slack);
        if let Some(d) = find_delay(&reference, at, rec, lo, hi) {
            let from = (at as i64 + d.samples - rec.start as i64) as usize;
            if let Some(s) = super::stoi::stoi(&reference, &rec.samples[from..from + STOI_CHUNK]) {
                out.stoi.push(s);
            }
        }
        at = end;
    }
    out
}

/// Nearest-rank percentile (`p` in 0..=100) of unsorted values; `None` when empty.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// Share of the 20 ms frames a listener's jitter buffers played, by how they were made.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FrameShares {
    pub total: u64,
    /// Decoded from their own packet.
    pub received: f64,
    /// Played from a later packet's RED (RFC 2198) copy of it.
    pub redundant: f64,
    /// Rebuilt from the next packet's in-band FEC.
    pub recovered: f64,
    /// Lost (a later packet had arrived): Opus PLC.
    pub concealed: f64,
    /// No data at all: buffer ran dry (`underruns`) or a frame inserted to deepen the buffer
    /// (`expanded`); also PLC output, but not tied to one lost packet.
    pub missing: f64,
}

impl FrameShares {
    pub fn from_stats(s: &JitterStats) -> FrameShares {
        let missing = s.underruns + s.expanded;
        let total = s.received + s.redundant + s.recovered + s.concealed + missing;
        let share = |n: u64| {
            if total == 0 {
                0.0
            } else {
                n as f64 / total as f64
            }
        };
        FrameShares {
            total,
            received: share(s.received),
            redundant: share(s.redundant),
            recovered: share(s.recovered),
            concealed: share(s.concealed),
            missing: share(missing),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic "network path": the input delayed by 52 ms, then by 72 ms (a jitter buffer
    /// that inserted one 20 ms frame), with half a second right after the switch replaced by
    /// silence (a long loss: one burst and one window) and mild deterministic noise everywhere.
    #[test]
    fn finds_burst_delays_and_intelligible_windows_on_a_shared_clock() {
        let input = Input::probe(8, 7, Speech::Demo);
        let start: u64 = 1_000_000; // the recording starts late on the global clock
        let (g0, g1) = (start + SR as u64 / 2, start + 5 * SR as u64);
        let bursts = input.bursts_in(g0, g1);
        assert_eq!(bursts.len(), 9, "{bursts:?}");
        assert!(bursts.windows(2).all(|w| w[1] > w[0]));
        let b5 = bursts[4];
        // After the 5th burst's speech window has come out (output clock), before the 6th.
        let switch = b5 + 52 * 48 + (WINDOW_OFFSET + WINDOW_LEN) as u64 + 1_000;
        let silence = switch..switch + 24_000;
        let mut noise = 12_345u32;
        let samples: Vec<i16> = (0..SR as u64 * 6)
            .map(|i| {
                let g = start + i;
                let delay = if g < switch { 52 * 48 } else { 72 * 48 };
                noise = noise.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let n = ((noise >> 16) as i32 % 200) - 100;
                if silence.contains(&g) {
                    0
                } else {
                    (i32::from(input.sample(g - delay)) + n).clamp(-32768, 32767) as i16
                }
            })
            .collect();
        let rec = Recording { start, samples };
        let a = analyze(&input, &rec, g0, g1, (SR / 2) as i64, (SR / 20) as i64);

        assert_eq!(a.bursts.len(), 9, "{:?}", a.bursts);
        let found: Vec<&Delay> = a.found().collect();
        // The 6th burst falls inside the silence.
        assert_eq!(found.len(), 8, "{:?}", a.bursts);
        assert!(found.iter().all(|d| d.at != bursts[5]));
        for d in &found {
            let expected = if d.at <= b5 { 52.0 } else { 72.0 };
            assert!((d.ms() - expected).abs() < 0.05, "{d:?}");
            assert!(d.correlation > 0.95, "{d:?}");
        }
        let ms: Vec<f64> = found.iter().map(|d| d.ms()).collect();
        assert_eq!(percentile(&ms, 50.0), Some(52.0));
        assert_eq!(percentile(&ms, 99.0), Some(72.0));
        // Every window is clean except the one inside the silence, and one that falls in a
        // pause of the speech (noise alone correlates poorly; a waveform measure's limit).
        assert_eq!(a.windows.len(), 9);
        assert_eq!(a.windows[5], 0.0, "{:?}", a.windows);
        let good = a.windows.iter().filter(|&&c| c >= INTELLIGIBLE).count();
        assert_eq!(good, 7, "{:?}", a.windows);
        // STOI over two 2 s pieces: the first is the input with mild noise, the second holds
        // the half second of silence.
        assert_eq!(a.stoi.len(), 2, "{:?}", a.stoi);
        assert!(a.stoi[0] > 0.95, "{:?}", a.stoi);
        assert!(a.stoi[1] < a.stoi[0] - 0.05, "{:?}", a.stoi);
    }

    #[test]
    fn percentiles_and_frame_shares() {
        let v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 95.0), Some(95.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[], 50.0), None);

        let before = JitterStats {
            received: 10,
            empty: 7,
            ..JitterStats::default()
        };
        let after = JitterStats {
            received: 90,
            recovered: 10,
            concealed: 5,
            underruns: 3,
            expanded: 2,
            empty: 9,
            ..JitterStats::default()
        };
        let s = FrameShares::from_stats(&after.since(&before));
        assert_eq!(s.total, 100);
        assert_eq!(
            (s.received, s.recovered, s.concealed, s.missing),
            (0.8, 0.1, 0.05, 0.05)
        );
        assert_eq!(FrameShares::from_stats(&JitterStats::default()).total, 0);
    }
}
