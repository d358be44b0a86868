//! Deterministic test signals for tests, bots and benchmarks: a speech-like signal that
//! codecs and concealment cannot fake with a pure tone, and the seeded RNG behind it.

use crate::SAMPLE_RATE;

/// Speech-like signal: a glottal pulse train with a gliding pitch, shaped by two resonant
/// formant filters whose frequencies change per "syllable", with syllabic amplitude
/// modulation. Rich in harmonics and non-stationary, so codec tests are not fooled by a
/// pure tone that any concealment could extrapolate.
pub fn speech_like_f32(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let sr = SAMPLE_RATE as f32;
    let mut out = Vec::with_capacity(len);
    let mut phase = 0.0f32;
    // Two-pole resonator state per formant.
    let (mut a1, mut a2, mut b1, mut b2) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
    let syllable = (sr * 0.18) as usize;
    let mut f1 = 500.0;
    let mut f2 = 1500.0;
    let mut pitch_base = 120.0;
    for i in 0..len {
        if i % syllable == 0 {
            f1 = 300.0 + rng.next_f32() * 500.0;
            f2 = 900.0 + rng.next_f32() * 1500.0;
            pitch_base = 100.0 + rng.next_f32() * 80.0;
        }
        let t = i as f32 / sr;
        let pitch = pitch_base * (1.0 + 0.08 * (2.0 * std::f32::consts::PI * 3.0 * t).sin());
        phase += pitch / sr;
        let excitation = if phase >= 1.0 {
            phase -= 1.0;
            1.0
        } else {
            0.0
        } + 0.02 * (rng.next_f32() - 0.5);
        let (y1, na1, na2) = resonate(excitation, f1, 80.0, a1, a2, sr);
        a1 = na1;
        a2 = na2;
        let (y2, nb1, nb2) = resonate(excitation, f2, 120.0, b1, b2, sr);
        b1 = nb1;
        b2 = nb2;
        let pos = (i % syllable) as f32 / syllable as f32;
        let envelope = (std::f32::consts::PI * pos).sin().powf(0.7);
        out.push((y1 + 0.6 * y2) * envelope);
    }
    out
}

fn resonate(x: f32, freq: f32, bw: f32, y1: f32, y2: f32, sr: f32) -> (f32, f32, f32) {
    let r = (-std::f32::consts::PI * bw / sr).exp();
    let c = 2.0 * r * (2.0 * std::f32::consts::PI * freq / sr).cos();
    let y = x + c * y1 - r * r * y2;
    (y, y, y1)
}

/// [`speech_like_f32`] as 16-bit samples at about -26 dBFS RMS.
pub fn speech_like(len: usize, seed: u64) -> Vec<i16> {
    speech_like_f32(len, seed)
        .into_iter()
        .map(|x| ((x * 0.03).clamp(-1.0, 1.0) * 32767.0) as i16)
        .collect()
}

/// SplitMix64: tiny, seeded, identical on every platform.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f32) -> bool {
        self.next_f32() < p
    }
}
