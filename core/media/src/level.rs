//! Frame levels: RMS/peak, RFC 6464 audio level, UI loudness and voice activity.

/// RFC 6464 level of digital silence (−127 dBov and below).
pub const SILENCE_LEVEL: u8 = 127;

/// Level measurements of one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioLevel {
    /// RMS relative to full scale, 0.0..=1.0.
    pub rms: f32,
    /// Largest absolute sample relative to full scale, 0.0..=1.0.
    pub peak: f32,
    /// RFC 6464 audio level: 0..=127, in −dBov (0 = loudest, 127 = silence).
    pub rfc6464: u8,
}

impl AudioLevel {
    pub const SILENCE: AudioLevel = AudioLevel {
        rms: 0.0,
        peak: 0.0,
        rfc6464: SILENCE_LEVEL,
    };

    /// Measures a frame of 16-bit PCM.
    pub fn of_i16(samples: &[i16]) -> Self {
        if samples.is_empty() {
            return Self::SILENCE;
        }
        let mut sum_sq = 0.0f64;
        let mut peak = 0i32;
        for &s in samples {
            let v = i32::from(s);
            sum_sq += f64::from(v * v);
            peak = peak.max(v.abs());
        }
        let mean_sq = sum_sq / samples.len() as f64 / (32768.0 * 32768.0);
        Self::from_parts(mean_sq, peak as f32 / 32768.0)
    }

    /// Measures a frame of float PCM (full scale ±1.0).
    pub fn of_f32(samples: &[f32]) -> Self {
        if samples.is_empty() {
            return Self::SILENCE;
        }
        let mut sum_sq = 0.0f64;
        let mut peak = 0.0f32;
        for &s in samples {
            sum_sq += f64::from(s) * f64::from(s);
            peak = peak.max(s.abs());
        }
        Self::from_parts(sum_sq / samples.len() as f64, peak.min(1.0))
    }

    fn from_parts(mean_sq: f64, peak: f32) -> Self {
        let mean_sq = mean_sq.min(1.0);
        Self {
            rms: mean_sq.sqrt() as f32,
            peak,
            rfc6464: mean_square_to_rfc6464(mean_sq),
        }
    }

    /// Loudness for UI meters, see [`rfc6464_to_loudness`].
    pub fn loudness(&self) -> f32 {
        rfc6464_to_loudness(self.rfc6464)
    }

    /// RMS in dBFS (a full-scale square wave is 0 dB, a full-scale sine −3 dB).
    pub fn rms_dbfs(&self) -> f32 {
        -f32::from(self.rfc6464)
    }
}

/// RFC 6464 level from a mean square relative to full scale, as WebRTC computes it:
/// dBov = 10·log10(mean_square), clamped to 0..=127 and negated.
pub fn mean_square_to_rfc6464(mean_sq: f64) -> u8 {
    if mean_sq <= 0.0 {
        return SILENCE_LEVEL;
    }
    let dbov = 10.0 * mean_sq.log10();
    (-dbov).round().clamp(0.0, f64::from(SILENCE_LEVEL)) as u8
}

/// Range of the UI meter: levels quieter than −60 dBov read as 0.
pub const LOUDNESS_RANGE_DB: f32 = 60.0;

/// Maps an RFC 6464 level to 0.0..=1.0 for a UI meter, linear in decibels (perceptually even):
/// 0 dBov → 1.0, −30 dBov → 0.5, −60 dBov and below → 0.0.
pub fn rfc6464_to_loudness(level: u8) -> f32 {
    (1.0 - f32::from(level.min(SILENCE_LEVEL)) / LOUDNESS_RANGE_DB).clamp(0.0, 1.0)
}

/// Inverse of [`rfc6464_to_loudness`] (for tests and synthetic level sources).
pub fn loudness_to_rfc6464(loudness: f32) -> u8 {
    if loudness <= 0.0 {
        return SILENCE_LEVEL;
    }
    ((1.0 - loudness.min(1.0)) * LOUDNESS_RANGE_DB).round() as u8
}

/// Voice activity from frame levels: active as soon as a frame is louder than the threshold,
/// and held for a hangover so the gaps between words don't flap the indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoiceActivity {
    /// Frames at or below this RFC 6464 level (i.e. louder) count as voice.
    pub threshold: u8,
    /// Frames the flag stays on after the last loud frame.
    pub hangover_frames: u32,
    remaining: u32,
}

impl Default for VoiceActivity {
    fn default() -> Self {
        // −45 dBov sits well above a quiet room's noise floor and below soft speech;
        // 15 frames = 300 ms spans pauses between words.
        Self::new(45, 15)
    }
}

impl VoiceActivity {
    pub fn new(threshold: u8, hangover_frames: u32) -> Self {
        Self {
            threshold,
            hangover_frames,
            remaining: 0,
        }
    }

    /// Feeds one frame's RFC 6464 level; returns whether voice is active.
    pub fn update(&mut self, level: u8) -> bool {
        if level <= self.threshold {
            self.remaining = self.hangover_frames + 1;
        } else {
            self.remaining = self.remaining.saturating_sub(1);
        }
        self.remaining > 0
    }

    pub fn is_active(&self) -> bool {
        self.remaining > 0
    }

    pub fn reset(&mut self) {
        self.remaining = 0;
    }
}

/// Per-stream meter: the latest frame level plus the voice-activity flag.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LevelMeter {
    last: AudioLevel,
    vad: VoiceActivity,
}

impl Default for LevelMeter {
    fn default() -> Self {
        Self::new(VoiceActivity::default())
    }
}

impl LevelMeter {
    pub fn new(vad: VoiceActivity) -> Self {
        Self {
            last: AudioLevel::SILENCE,
            vad,
        }
    }

    pub fn update_i16(&mut self, frame: &[i16]) -> AudioLevel {
        self.record(AudioLevel::of_i16(frame))
    }

    pub fn update_f32(&mut self, frame: &[f32]) -> AudioLevel {
        self.record(AudioLevel::of_f32(frame))
    }

    /// Feeds a level known from elsewhere, e.g. an RFC 6464 header extension.
    pub fn record(&mut self, level: AudioLevel) -> AudioLevel {
        self.last = level;
        self.vad.update(level.rfc6464);
        level
    }

    pub fn level(&self) -> AudioLevel {
        self.last
    }

    pub fn voice_active(&self) -> bool {
        self.vad.is_active()
    }

    pub fn reset(&mut self) {
        self.last = AudioLevel::SILENCE;
        self.vad.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::sine;

    #[test]
    fn silence_is_127() {
        let l = AudioLevel::of_i16(&[0; 960]);
        assert_eq!(l.rfc6464, 127);
        assert_eq!(l.peak, 0.0);
        assert_eq!(l.loudness(), 0.0);
        assert_eq!(AudioLevel::of_i16(&[]).rfc6464, 127);
    }

    #[test]
    fn full_scale_square_is_0_dbov() {
        let frame: Vec<i16> = (0..960)
            .map(|i| if i % 2 == 0 { 32767 } else { -32768 })
            .collect();
        let l = AudioLevel::of_i16(&frame);
        assert_eq!(l.rfc6464, 0);
        assert!(l.peak > 0.999);
        assert_eq!(l.loudness(), 1.0);
    }

    #[test]
    fn sine_levels_match_theory() {
        // A sine of amplitude A has RMS A/√2: full scale → −3 dBov, half scale → −9 dBov.
        let full = sine(1000.0, 1.0, 960);
        let l = AudioLevel::of_i16(&full);
        assert_eq!(l.rfc6464, 3);
        assert!((l.rms - std::f32::consts::FRAC_1_SQRT_2).abs() < 0.01);
        let half = sine(1000.0, 0.5, 960);
        assert_eq!(AudioLevel::of_i16(&half).rfc6464, 9);
        // −40 dBFS amplitude → −43 dBov.
        let quiet = sine(440.0, 0.01, 960);
        assert_eq!(AudioLevel::of_i16(&quiet).rfc6464, 43);
        let f: Vec<f32> = half.iter().map(|&s| f32::from(s) / 32768.0).collect();
        assert_eq!(AudioLevel::of_f32(&f).rfc6464, 9);
        assert!((AudioLevel::of_f32(&f).peak - 0.5).abs() < 0.001);
    }

    #[test]
    fn loudness_mapping_round_trips() {
        assert_eq!(rfc6464_to_loudness(0), 1.0);
        assert_eq!(rfc6464_to_loudness(30), 0.5);
        assert_eq!(rfc6464_to_loudness(60), 0.0);
        assert_eq!(rfc6464_to_loudness(127), 0.0);
        for level in 0..60u8 {
            assert_eq!(loudness_to_rfc6464(rfc6464_to_loudness(level)), level);
        }
        assert_eq!(loudness_to_rfc6464(0.0), 127);
    }

    #[test]
    fn vad_hangover() {
        let mut vad = VoiceActivity::new(45, 3);
        assert!(!vad.update(127));
        assert!(vad.update(20));
        // Three quiet frames keep it on, the fourth turns it off.
        assert!(vad.update(90));
        assert!(vad.update(90));
        assert!(vad.update(90));
        assert!(!vad.update(90));
        // Exactly at the threshold counts as voice.
        assert!(vad.update(45));
        assert!(!VoiceActivity::new(45, 0).update(46));
    }

    #[test]
    fn meter_tracks_last_frame() {
        let mut m = LevelMeter::default();
        assert!(!m.voice_active());
        m.update_i16(&sine(300.0, 0.3, 960));
        assert!(m.voice_active());
        assert_eq!(m.level().rfc6464, 13);
        m.reset();
        assert_eq!(m.level(), AudioLevel::SILENCE);
    }
}
