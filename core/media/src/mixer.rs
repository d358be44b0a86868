//! Mixes several speakers' frames into one with a soft limiter.
//!
//! The limiter is a peak-following gain: when a sample would exceed the threshold the gain
//! drops at once to exactly what keeps it at the threshold (no look-ahead, so no added
//! latency), is held for a few milliseconds so it does not pump within a pitch period, then
//! recovers smoothly. The waveform is scaled, not clipped, so loud overlaps get quieter instead
//! of distorted, and the output can never exceed the threshold. A signal that stays below the
//! threshold passes bit-exactly.

use crate::{FRAME_SAMPLES, SAMPLE_RATE};

/// Default limiter ceiling: −1 dBFS keeps some headroom for resampling in the OS mixer.
pub const DEFAULT_THRESHOLD: f32 = 0.891;

/// Frame mixer with limiter. Allocation-free after construction.
#[derive(Debug, Clone)]
pub struct Mixer {
    acc: Vec<f32>,
    frame_len: usize,
    threshold: f32,
    /// f64 so the slow release keeps creeping up where f32 would get stuck just below 1.0.
    gain: f64,
    /// Per-sample recovery coefficient towards unity gain.
    release: f64,
    /// Samples the gain is held after touching the ceiling: longer than half a period of the
    /// lowest voice pitch, so the gain doesn't rise between two peaks of one wave.
    hold: u32,
    hold_left: u32,
    sources: usize,
}

impl Default for Mixer {
    fn default() -> Self {
        Self::new(FRAME_SAMPLES)
    }
}

impl Mixer {
    /// A mixer for frames of `frame_len` samples, limiter at −1 dBFS with 100 ms release.
    pub fn new(frame_len: usize) -> Self {
        Self::with_limiter(frame_len, DEFAULT_THRESHOLD, 100.0)
    }

    pub fn with_limiter(frame_len: usize, threshold: f32, release_ms: f32) -> Self {
        let release_samples = (release_ms.max(1.0) / 1000.0) * SAMPLE_RATE as f32;
        Self {
            acc: vec![0.0; frame_len],
            frame_len,
            threshold: threshold.clamp(0.01, 1.0),
            gain: 1.0,
            release: 1.0 - (-1.0 / f64::from(release_samples)).exp(),
            hold: SAMPLE_RATE / 100,
            hold_left: 0,
            sources: 0,
        }
    }

    pub fn frame_len(&self) -> usize {
        self.frame_len
    }

    /// Current limiter gain (1.0 = not limiting).
    pub fn gain(&self) -> f32 {
        self.gain as f32
    }

    /// Number of sources added since the last `begin`.
    pub fn sources(&self) -> usize {
        self.sources
    }

    /// Starts a new output frame.
    pub fn begin(&mut self) {
        self.acc.fill(0.0);
        self.sources = 0;
    }

    /// Adds one speaker's frame (shorter frames are zero-extended, longer ones cut).
    pub fn add_i16(&mut self, frame: &[i16]) {
        for (a, &s) in self.acc.iter_mut().zip(frame) {
            *a += f32::from(s) / 32768.0;
        }
        self.sources += 1;
    }

    pub fn add_f32(&mut self, frame: &[f32]) {
        for (a, &s) in self.acc.iter_mut().zip(frame) {
            *a += s;
        }
        self.sources += 1;
    }

    /// Limits the mix and writes it out as float samples.
    pub fn finish_f32(&mut self, out: &mut [f32]) {
        self.limit();
        for (o, &a) in out.iter_mut().zip(&self.acc) {
            *o = a;
        }
    }

    /// Limits the mix and writes it out as 16-bit samples.
    pub fn finish_i16(&mut self, out: &mut [i16]) {
        self.limit();
        for (o, &a) in out.iter_mut().zip(&self.acc) {
            // Exact for inputs that came from i16 and were not limited.
            *o = (a * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
        }
    }

    /// Convenience: mixes all `frames` into `out` in one call.
    pub fn mix_i16(&mut self, frames: &[&[i16]], out: &mut [i16]) {
        self.begin();
        for f in frames {
            self.add_i16(f);
        }
        self.finish_i16(out);
    }

    fn limit(&mut self) {
        let threshold = f64::from(self.threshold);
        let release = self.release;
        let mut gain = self.gain;
        let mut hold_left = self.hold_left;
        for a in &mut self.acc {
            if hold_left > 0 {
                hold_left -= 1;
            } else if gain < 1.0 {
                gain += (1.0 - gain) * release;
                if gain > 0.999_999 {
                    gain = 1.0;
                }
            }
            let level = f64::from(a.abs());
            if level * gain > threshold {
                gain = threshold / level;
                hold_left = self.hold;
            } else if gain < 1.0 && level * gain > threshold * 0.9 {
                // Still loud: keep holding rather than creeping back into the ceiling.
                hold_left = self.hold;
            }
            *a = (f64::from(*a) * gain) as f32;
        }
        self.gain = gain;
        self.hold_left = hold_left;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{sine, speech_like};

    #[test]
    fn single_quiet_speaker_passes_unchanged() {
        let mut m = Mixer::default();
        let input = speech_like(FRAME_SAMPLES * 10, 3);
        for frame in input.chunks(FRAME_SAMPLES) {
            let mut out = [0i16; FRAME_SAMPLES];
            m.mix_i16(&[frame], &mut out);
            assert_eq!(&out[..], frame);
        }
        assert_eq!(m.gain(), 1.0);
    }

    #[test]
    fn sum_of_two_quiet_speakers_is_exact() {
        let a = sine(200.0, 0.2, FRAME_SAMPLES);
        let b = sine(330.0, 0.2, FRAME_SAMPLES);
        let mut out = [0i16; FRAME_SAMPLES];
        Mixer::default().mix_i16(&[&a, &b], &mut out);
        for i in 0..FRAME_SAMPLES {
            assert_eq!(out[i], a[i] + b[i]);
        }
    }

    #[test]
    fn limiter_never_exceeds_threshold() {
        let mut m = Mixer::default();
        let speakers: Vec<Vec<i16>> = (0..6)
            .map(|k| sine(150.0 + 70.0 * k as f32, 0.9, FRAME_SAMPLES * 50))
            .collect();
        let limit = (DEFAULT_THRESHOLD * 32768.0).ceil() as i16;
        let mut out = [0i16; FRAME_SAMPLES];
        let mut loudest = 0i16;
        for f in 0..50 {
            let r = f * FRAME_SAMPLES..(f + 1) * FRAME_SAMPLES;
            let frames: Vec<&[i16]> = speakers.iter().map(|s| &s[r.clone()]).collect();
            m.mix_i16(&frames, &mut out);
            loudest = loudest.max(out.iter().map(|s| s.saturating_abs()).max().unwrap());
        }
        assert!(loudest <= limit, "{loudest} > {limit}");
        assert!(
            loudest > limit - 400,
            "limiter is far too aggressive: {loudest}"
        );
        assert!(m.gain() < 0.5);
    }

    #[test]
    fn limiter_scales_instead_of_clipping() {
        // A 2× overloaded sine must come out as a (smaller) sine, not a square wave: clipping
        // would produce long runs of samples pinned at the ceiling.
        let mut m = Mixer::default();
        let loud: Vec<f32> = sine(100.0, 1.0, FRAME_SAMPLES * 20)
            .iter()
            .map(|&s| 2.0 * f32::from(s) / 32768.0)
            .collect();
        let mut out = vec![0.0f32; FRAME_SAMPLES];
        for f in 0..20 {
            m.begin();
            m.add_f32(&loud[f * FRAME_SAMPLES..(f + 1) * FRAME_SAMPLES]);
            m.finish_f32(&mut out);
        }
        let mut run = 0;
        let mut longest_run = 0;
        for s in &out {
            run = if s.abs() >= DEFAULT_THRESHOLD - 1e-5 {
                run + 1
            } else {
                0
            };
            longest_run = longest_run.max(run);
        }
        assert!(
            longest_run <= 2,
            "{longest_run} samples in a row at the ceiling"
        );
        let peak = out.iter().fold(0.0f32, |p, s| p.max(s.abs()));
        assert!(peak <= DEFAULT_THRESHOLD + 1e-6);
        assert!(peak > 0.8);
        // The shape is kept: the output is a scaled copy of the input.
        let input = &loud[19 * FRAME_SAMPLES..];
        let r = crate::analysis::correlation_at(input, &out, 0);
        assert!(r > 0.9999, "correlation {r}");
    }

    #[test]
    fn gain_recovers_after_a_burst() {
        let mut m = Mixer::default();
        let loud = sine(300.0, 0.9, FRAME_SAMPLES);
        let mut out = [0i16; FRAME_SAMPLES];
        m.mix_i16(&[&loud, &loud], &mut out);
        assert!(m.gain() < 0.6);
        let quiet = sine(300.0, 0.1, FRAME_SAMPLES);
        for _ in 0..100 {
            m.mix_i16(&[&quiet], &mut out);
        }
        assert_eq!(m.gain(), 1.0);
        assert_eq!(out, quiet.as_slice());
    }

    #[test]
    fn empty_mix_is_silence() {
        let mut out = [7i16; FRAME_SAMPLES];
        Mixer::default().mix_i16(&[], &mut out);
        assert!(out.iter().all(|&s| s == 0));
    }
}
