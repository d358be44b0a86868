//! Short-Time Objective Intelligibility (STOI; Taal, Hendriks, Heusdens, Jensen, "An
//! Algorithm for Intelligibility Prediction of Time–Frequency Weighted Noisy Speech", IEEE
//! TASLP 19(7), 2011), written from the paper for the benchmark's "is it intelligible" figure.
//!
//! Both signals are resampled to 10 kHz, frames where the clean signal is more than 40 dB
//! below its loudest frame are removed from both, and the envelopes of 15 one-third-octave
//! bands (150 Hz to ~4.3 kHz) are compared over 384 ms segments: the degraded envelope is
//! scaled to the clean one's energy and clipped at −15 dB SDR, then correlated. STOI is the
//! mean correlation, 0..1 (higher is more intelligible). It is an estimate made for noisy and
//! time–frequency-processed speech; losses concealed by a codec are the kind of damage it
//! sees (gaps and smeared envelopes), but it is no listening test.

use rustfft::{num_complex::Complex, FftPlanner};

const FS: f64 = 10_000.0;
const FRAME: usize = 256;
const HOP: usize = FRAME / 2;
const NFFT: usize = 512;
const BANDS: usize = 15;
const LOWEST_CENTRE_HZ: f64 = 150.0;
/// Frames per segment: 30 × 12.8 ms = 384 ms.
const SEGMENT: usize = 30;
/// Lower bound of the signal-to-distortion ratio after clipping.
const BETA_DB: f64 = -15.0;
/// Frames this far below the loudest clean frame are silence.
const DYNAMIC_RANGE_DB: f64 = 40.0;

/// STOI of `degraded` against `clean`, both 48 kHz mono and time-aligned (same length is
/// used: the shorter of the two). `None` when there is too little speech to form one segment.
pub fn stoi(clean: &[i16], degraded: &[i16]) -> Option<f64> {
    let n = clean.len().min(degraded.len());
    let x = resample_to_10k(&clean[..n]);
    let y = resample_to_10k(&degraded[..n]);
    if x.iter().all(|v| v.abs() < 1e-5) {
        return None;
    }
    let (x, y) = remove_silent_frames(&x, &y);
    let bands = band_edges();
    let x_env = band_envelopes(&x, &bands);
    let y_env = band_envelopes(&y, &bands);
    let frames = x_env.len();
    if frames < SEGMENT {
        return None;
    }
    let clip = 1.0 + 10f64.powf(-BETA_DB / 20.0);
    let mut sum = 0.0;
    let mut count = 0usize;
    for end in SEGMENT..=frames {
        for b in 0..BANDS {
            let xs: Vec<f64> = (end - SEGMENT..end).map(|m| x_env[m][b]).collect();
            let ys: Vec<f64> = (end - SEGMENT..end).map(|m| y_env[m][b]).collect();
            let ex = xs.iter().map(|v| v * v).sum::<f64>().sqrt();
            let ey = ys.iter().map(|v| v * v).sum::<f64>().sqrt();
            let scale = if ey > 0.0 { ex / ey } else { 0.0 };
            let yc: Vec<f64> = ys
                .iter()
                .zip(&xs)
                .map(|(y, x)| (y * scale).min(x * clip))
                .collect();
            sum += correlation(&xs, &yc);
            count += 1;
        }
    }
    Some(sum / count as f64)
}

fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let ma = a.iter().sum::<f64>() / n;
    let mb = b.iter().sum::<f64>() / n;
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (x - ma, y - mb);
        ab += dx * dy;
        aa += dx * dx;
        bb += dy * dy;
    }
    let denom = (aa * bb).sqrt();
    if denom > 0.0 {
        ab / denom
    } else {
        0.0
    }
}

/// 48 kHz → 10 kHz with a Hann-windowed sinc low-pass at 4.6 kHz (below the new Nyquist).
fn resample_to_10k(input: &[i16]) -> Vec<f64> {
    const RATIO: f64 = 48_000.0 / FS;
    const HALF: isize = 96;
    let cutoff = 4_600.0 / 48_000.0;
    let out_len = (input.len() as f64 / RATIO) as usize;
    let mut out = Vec::with_capacity(out_len);
    for n in 0..out_len {
        let centre = n as f64 * RATIO;
        let first = (centre.floor() as isize - HALF).max(0);
        let last = (centre.floor() as isize + HALF).min(input.len() as isize - 1);
        let mut acc = 0.0;
        for k in first..=last {
            let t = k as f64 - centre;
            let sinc = if t == 0.0 {
                2.0 * cutoff
            } else {
                (2.0 * std::f64::consts::PI * cutoff * t).sin() / (std::f64::consts::PI * t)
            };
            let w = 0.5 + 0.5 * (std::f64::consts::PI * t / (HALF as f64 + 1.0)).cos();
            acc += f64::from(input[k as usize]) / 32768.0 * sinc * w;
        }
        out.push(acc);
    }
    out
}

fn hann() -> Vec<f64> {
    // The "periodic" window of the reference implementation: N + 2 points without the ends.
    (1..=FRAME)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / (FRAME + 1) as f64).cos())
        .collect()
}

/// Drops the frames where the clean signal is silent, from both signals, and rebuilds them
/// by overlap-add.
fn remove_silent_frames(x: &[f64], y: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let w = hann();
    let starts: Vec<usize> = (0..x.len().saturating_sub(FRAME - 1))
        .step_by(HOP)
        .collect();
    let energy_db: Vec<f64> = starts
        .iter()
        .map(|&s| {
            let e = (0..FRAME)
                .map(|i| (x[s + i] * w[i]).powi(2))
                .sum::<f64>()
                .sqrt();
            20.0 * (e + f64::EPSILON).log10()
        })
        .collect();
    let max = energy_db.iter().copied().fold(f64::MIN, f64::max);
    let kept: Vec<usize> = starts
        .iter()
        .zip(&energy_db)
        .filter(|(_, &e)| e > max - DYNAMIC_RANGE_DB)
        .map(|(&s, _)| s)
        .collect();
    let len = if kept.is_empty() {
        0
    } else {
        (kept.len() - 1) * HOP + FRAME
    };
    let mut xs = vec![0.0; len];
    let mut ys = vec![0.0; len];
    for (j, &s) in kept.iter().enumerate() {
        for i in 0..FRAME {
            xs[j * HOP + i] += x[s + i] * w[i];
            ys[j * HOP + i] += y[s + i] * w[i];
        }
    }
    (xs, ys)
}

/// FFT bin ranges of the one-third-octave bands.
fn band_edges() -> Vec<(usize, usize)> {
    let bin_hz = FS / NFFT as f64;
    let bins: Vec<f64> = (0..=NFFT / 2).map(|k| k as f64 * bin_hz).collect();
    let nearest = |f: f64| {
        bins.iter()
            .enumerate()
            .min_by(|a, b| (a.1 - f).abs().total_cmp(&(b.1 - f).abs()))
            .map_or(0, |(i, _)| i)
    };
    (0..BANDS)
        .map(|b| {
            let centre = LOWEST_CENTRE_HZ * 2f64.powf(b as f64 / 3.0);
            let lo = nearest(centre * 2f64.powf(-1.0 / 6.0));
            let hi = nearest(centre * 2f64.powf(1.0 / 6.0));
            (lo, hi)
        })
        .collect()
}

/// Per frame, the magnitude of each band: sqrt of the summed power of its bins.
fn band_envelopes(x: &[f64], bands: &[(usize, usize)]) -> Vec<[f64; BANDS]> {
    let w = hann();
    let fft = FftPlanner::<f64>::new().plan_fft_forward(NFFT);
    let mut buf = vec![Complex::new(0.0, 0.0); NFFT];
    let mut out = Vec::new();
    let mut start = 0;
    while start + FRAME <= x.len() {
        buf.iter_mut().for_each(|c| *c = Complex::new(0.0, 0.0));
        for i in 0..FRAME {
            buf[i].re = x[start + i] * w[i];
        }
        fft.process(&mut buf);
        let mut env = [0.0; BANDS];
        for (b, &(lo, hi)) in bands.iter().enumerate() {
            env[b] = buf[lo..hi].iter().map(|c| c.norm_sqr()).sum::<f64>().sqrt();
        }
        out.push(env);
        start += HOP;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruang_client::media::ruang_media::signal::Rng;

    /// Three seconds of the bundled speech (the demo clips), 48 kHz.
    fn speech() -> Vec<i16> {
        super::super::analysis::speech_clip()[..48_000 * 3].to_vec()
    }

    fn with_noise(x: &[i16], snr_db: f64, seed: u64) -> Vec<i16> {
        let power = x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64;
        let sigma = (power / 10f64.powf(snr_db / 10.0)).sqrt();
        let mut rng = Rng::new(seed);
        x.iter()
            .map(|&s| {
                // Sum of 12 uniforms: close enough to Gaussian, unit variance.
                let g: f64 = (0..12).map(|_| f64::from(rng.next_f32())).sum::<f64>() - 6.0;
                (f64::from(s) + g * sigma).clamp(-32768.0, 32767.0) as i16
            })
            .collect()
    }

    #[test]
    fn identical_speech_scores_one() {
        let x = speech();
        let s = stoi(&x, &x).unwrap();
        assert!((s - 1.0).abs() < 1e-9, "{s}");
        // Scaling does not matter (the degraded envelope is normalised).
        let half: Vec<i16> = x.iter().map(|s| s / 2).collect();
        assert!(stoi(&x, &half).unwrap() > 0.99);
    }

    #[test]
    fn more_noise_scores_lower_and_noise_alone_sits_at_the_floor() {
        let x = speech();
        let s20 = stoi(&x, &with_noise(&x, 20.0, 1)).unwrap();
        let s5 = stoi(&x, &with_noise(&x, 5.0, 2)).unwrap();
        let s_5 = stoi(&x, &with_noise(&x, -5.0, 3)).unwrap();
        assert!(s20 > s5 && s5 > s_5, "{s20} {s5} {s_5}");
        assert!(s20 > 0.9, "{s20}");
        let mut rng = Rng::new(4);
        let noise: Vec<i16> = (0..x.len())
            .map(|_| ((rng.next_f32() - 0.5) * 6000.0) as i16)
            .collect();
        let s_noise = stoi(&x, &noise).unwrap();
        // STOI has a floor well above 0 (the clipping step lets the noise envelope follow the
        // speech a little); unrelated noise stays at it, below noisy speech.
        assert!(s_noise < 0.5 && s_noise < s_5, "{s_noise} vs {s_5}");
        eprintln!("STOI: 20 dB {s20:.3}, 5 dB {s5:.3}, -5 dB {s_5:.3}, noise {s_noise:.3}");
    }

    #[test]
    fn gaps_lower_the_score() {
        let x = speech();
        // Every fifth 20 ms frame zeroed: 20 % loss with no concealment at all.
        let mut gappy = x.clone();
        for (i, s) in gappy.iter_mut().enumerate() {
            if (i / 960) % 5 == 2 {
                *s = 0;
            }
        }
        let s = stoi(&x, &gappy).unwrap();
        eprintln!("STOI with 20 % of frames zeroed: {s:.3}");
        assert!(s < 0.95 && s > 0.3, "{s}");
    }

    #[test]
    fn silence_only_has_no_score() {
        assert_eq!(stoi(&[0; 4_800], &[0; 4_800]), None);
    }
}
