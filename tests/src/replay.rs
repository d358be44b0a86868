//! Finding a known signal in a replay or clip (the recorder places audio on a 20 ms grid by
//! arrival time, so the offset is found first, then checked chunk by chunk).

use ruang_client::media::ruang_media::analysis::{best_alignment, rms};

const SR: usize = 48_000;

/// RMS of each 20 ms frame.
pub fn envelope(x: &[i16]) -> Vec<f64> {
    x.chunks(960).map(rms).collect()
}

/// Pearson correlation of two equally long series.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    if n == 0 {
        return 0.0;
    }
    let (a, b) = (&a[..n], &b[..n]);
    let (ma, mb) = (
        a.iter().sum::<f64>() / n as f64,
        b.iter().sum::<f64>() / n as f64,
    );
    let (mut num, mut da, mut db) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        num += (x - ma) * (y - mb);
        da += (x - ma).powi(2);
        db += (y - mb).powi(2);
    }
    num / (da * db).sqrt().max(1e-12)
}

/// Where `part` starts in `output` (samples): the best match of the 20 ms energy
/// envelopes, refined on the waveform within ±20 ms. With the envelope correlation there.
pub fn locate(part: &[i16], output: &[i16]) -> (isize, f64) {
    let (a, b) = (envelope(part), envelope(output));
    let mut best = (0usize, f64::NEG_INFINITY);
    for k in 0..=b.len().saturating_sub(a.len()) {
        let c = pearson(&a, &b[k..(k + a.len()).min(b.len())]);
        if c > best.1 {
            best = (k, c);
        }
    }
    let coarse = (best.0 * 960) as isize;
    let head = &part[..part.len().min(SR / 4)];
    (
        best_alignment(head, output, (coarse - 960).max(0), coarse + 960).lag,
        best.1,
    )
}

/// Correlation of each 250 ms chunk of `part` (starting at `lag` in `output`) with the
/// output, each aligned within ±40 ms; with each chunk's RMS in the reference.
pub fn chunk_correlations(part: &[i16], output: &[i16], lag: isize) -> Vec<(f64, f64)> {
    let chunk = SR / 4;
    let slack = (SR * 40 / 1000) as isize;
    part.chunks_exact(chunk)
        .enumerate()
        .map(|(i, c)| {
            let base = lag + (i * chunk) as isize;
            if base - slack < 0 || (base as usize) + chunk > output.len() {
                return (0.0, rms(c));
            }
            (
                best_alignment(c, output, base - slack, base + slack).correlation,
                rms(c),
            )
        })
        .collect()
}

/// Share of `x`'s energy at `freq` (Goertzel): 1.0 for a pure sine at `freq`, 0.5 each for
/// two equally loud sines, ~0 without it. Windows are whole numbers of the test tones'
/// periods so a tone does not leak into the other's bin.
pub fn tone_share(x: &[i16], freq: f64) -> f64 {
    let n = x.len() as f64;
    let w = 2.0 * std::f64::consts::PI * freq / SR as f64;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2, mut energy) = (0.0f64, 0.0f64, 0.0f64);
    for &v in x {
        let v = f64::from(v) / 32768.0;
        energy += v * v;
        let s0 = v + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    if energy <= 0.0 {
        return 0.0;
    }
    2.0 * (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (n * energy)
}
