//! Signal comparison for tests and the latency benchmark: normalised cross-correlation with a
//! best-lag search ("does the output contain the input, and how delayed?").

/// A PCM sample type the analysis accepts.
pub trait Sample: Copy {
    fn to_f64(self) -> f64;
}

impl Sample for i16 {
    fn to_f64(self) -> f64 {
        f64::from(self) / 32768.0
    }
}

impl Sample for f32 {
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

/// Result of a lag search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Alignment {
    /// Samples by which `output` lags `reference`: `output[i + lag] ≈ reference[i]`.
    pub lag: isize,
    /// Normalised correlation coefficient over the overlap at that lag, −1.0..=1.0.
    pub correlation: f64,
}

impl Alignment {
    /// The lag in milliseconds at 48 kHz.
    pub fn lag_ms(&self) -> f64 {
        self.lag as f64 / f64::from(crate::SAMPLE_RATE) * 1000.0
    }
}

/// Normalised correlation of `reference[i]` with `output[i + lag]` over their overlap.
/// Returns 0.0 if the overlap is empty or either side is silent there.
pub fn correlation_at<A: Sample, B: Sample>(reference: &[A], output: &[B], lag: isize) -> f64 {
    let (start, end) = overlap(reference.len(), output.len(), lag);
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for i in start..end {
        let a = reference[i].to_f64();
        let b = output[(i as isize + lag) as usize].to_f64();
        ab += a * b;
        aa += a * a;
        bb += b * b;
    }
    if aa <= 0.0 || bb <= 0.0 {
        return 0.0;
    }
    ab / (aa * bb).sqrt()
}

/// Searches `min_lag..=max_lag` for the lag with the highest normalised correlation.
///
/// Long signals with wide lag ranges are searched coarsely on a decimated copy first and then
/// refined at full rate around the best coarse lag, which keeps benchmark-sized inputs fast.
pub fn best_alignment<A: Sample, B: Sample>(
    reference: &[A],
    output: &[B],
    min_lag: isize,
    max_lag: isize,
) -> Alignment {
    assert!(min_lag <= max_lag, "empty lag range");
    let lags = (max_lag - min_lag + 1) as usize;
    let work = lags.saturating_mul(reference.len().min(output.len()));
    const MAX_WORK: usize = 40_000_000;
    if work <= MAX_WORK {
        return search(reference, output, min_lag, max_lag);
    }
    let factor = work.div_ceil(MAX_WORK).clamp(2, 64);
    let a = decimate(reference, factor);
    let b = decimate(output, factor);
    let f = factor as isize;
    let coarse = search(&a, &b, min_lag.div_euclid(f), max_lag.div_euclid(f) + 1);
    let center = coarse.lag * f;
    search(
        reference,
        output,
        (center - 2 * f).max(min_lag),
        (center + 2 * f).min(max_lag),
    )
}

fn search<A: Sample, B: Sample>(
    reference: &[A],
    output: &[B],
    min: isize,
    max: isize,
) -> Alignment {
    let mut best = Alignment {
        lag: min,
        correlation: f64::NEG_INFINITY,
    };
    for lag in min..=max {
        let c = correlation_at(reference, output, lag);
        if c > best.correlation {
            best = Alignment {
                lag,
                correlation: c,
            };
        }
    }
    best
}

/// Averages blocks of `factor` samples (a crude low-pass plus downsample).
fn decimate<S: Sample>(x: &[S], factor: usize) -> Vec<f32> {
    x.chunks(factor)
        .map(|c| (c.iter().map(|s| s.to_f64()).sum::<f64>() / c.len() as f64) as f32)
        .collect()
}

/// Index range `i` of `reference` where `i + lag` is inside `output`.
fn overlap(ref_len: usize, out_len: usize, lag: isize) -> (usize, usize) {
    let start = (-lag).max(0) as usize;
    let end_by_out = out_len as isize - lag;
    let end = (ref_len as isize).min(end_by_out).max(0) as usize;
    (start.min(end), end)
}

/// Root-mean-square of a signal relative to full scale.
pub fn rms<S: Sample>(x: &[S]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    (x.iter().map(|s| s.to_f64().powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{speech_like, Rng};

    #[test]
    fn finds_known_delay() {
        let x = speech_like(9600, 1);
        let mut y = vec![0i16; 137];
        y.extend_from_slice(&x);
        let a = best_alignment(&x, &y, -500, 500);
        assert_eq!(a.lag, 137);
        assert!(a.correlation > 0.999);
        assert!((a.lag_ms() - 137.0 / 48.0).abs() < 1e-9);
    }

    #[test]
    fn finds_negative_lag_and_scaled_copy() {
        let x = speech_like(9600, 2);
        let y: Vec<f32> = x[40..]
            .iter()
            .map(|&s| 0.5 * f32::from(s) / 32768.0)
            .collect();
        let a = best_alignment(&x, &y, -100, 100);
        assert!((correlation_at(&x, &y, -40) - a.correlation).abs() < 1e-12);
        let inverted: Vec<f32> = y.iter().map(|s| -s).collect();
        assert!(correlation_at(&x, &inverted, -40) < -0.999);
        assert_eq!(a.lag, -40);
        assert!(a.correlation > 0.999);
    }

    #[test]
    fn noise_does_not_correlate() {
        let mut rng = Rng::new(9);
        let x = speech_like(9600, 3);
        let n: Vec<i16> = (0..9600)
            .map(|_| ((rng.next_f32() - 0.5) * 20000.0) as i16)
            .collect();
        assert!(best_alignment(&x, &n, 0, 200).correlation < 0.2);
        assert_eq!(correlation_at(&x, &[0i16; 100], 0), 0.0);
        assert_eq!(correlation_at(&x, &n, 20_000), 0.0);
    }

    #[test]
    fn coarse_search_on_long_signals() {
        let x = speech_like(48_000 * 4, 4);
        let mut y = vec![0i16; 4_321];
        y.extend_from_slice(&x);
        let a = best_alignment(&x, &y, 0, 24_000);
        assert_eq!(a.lag, 4_321);
        assert!(a.correlation > 0.999);
    }
}
