//! WAV helpers: read any PCM/float WAV into 48 kHz mono i16, write 48 kHz mono i16.

use crate::SAMPLE_RATE;
use std::io::{Read, Seek, Write};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("wav: {0}")]
    Hound(#[from] hound::Error),
    #[error("unsupported wav format: {0}")]
    Unsupported(String),
}

/// Lowest and highest sample rates [`read_wav`] accepts.
pub const MIN_RATE: u32 = 1_000;
pub const MAX_RATE: u32 = 768_000;

/// Reads a WAV file as 48 kHz mono 16-bit PCM (downmixed and resampled if needed).
pub fn read_wav(path: impl AsRef<Path>) -> Result<Vec<i16>, WavError> {
    read_wav_from(hound::WavReader::open(path)?)
}

/// Like [`read_wav`] from any reader.
pub fn read_wav_reader<R: Read>(reader: R) -> Result<Vec<i16>, WavError> {
    read_wav_from(hound::WavReader::new(reader)?)
}

fn read_wav_from<R: Read>(reader: hound::WavReader<R>) -> Result<Vec<i16>, WavError> {
    let spec = reader.spec();
    let channels = usize::from(spec.channels);
    // Rates outside what audio files use are refused: resampling 1 Hz "audio" to 48 kHz would
    // turn a few bytes into gigabytes.
    if channels == 0 || !(MIN_RATE..=MAX_RATE).contains(&spec.sample_rate) {
        return Err(WavError::Unsupported(format!("{spec:?}")));
    }
    // Everything goes through f32 in −1.0..1.0 so all bit depths are treated alike.
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.into_samples::<f32>().collect::<Result<_, _>>()?,
        hound::SampleFormat::Int => {
            if spec.bits_per_sample == 0 || spec.bits_per_sample > 32 {
                return Err(WavError::Unsupported(format!("{spec:?}")));
            }
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()?
        }
    };
    let mono: Vec<f32> = samples
        .chunks(channels)
        .map(|c| c.iter().sum::<f32>() / c.len() as f32)
        .collect();
    let resampled = resample_linear(&mono, spec.sample_rate, SAMPLE_RATE);
    Ok(resampled.iter().map(|&s| f32_to_i16(s)).collect())
}

/// Writes 48 kHz mono 16-bit PCM to a WAV file.
pub fn write_wav(path: impl AsRef<Path>, samples: &[i16]) -> Result<(), WavError> {
    let mut w = hound::WavWriter::create(path, spec())?;
    write_all(&mut w, samples)?;
    w.finalize()?;
    Ok(())
}

/// Like [`write_wav`] into any seekable writer.
pub fn write_wav_writer<W: Write + Seek>(writer: W, samples: &[i16]) -> Result<(), WavError> {
    let mut w = hound::WavWriter::new(writer, spec())?;
    write_all(&mut w, samples)?;
    w.finalize()?;
    Ok(())
}

fn write_all<W: Write + Seek>(
    w: &mut hound::WavWriter<W>,
    samples: &[i16],
) -> Result<(), WavError> {
    let mut w16 = w.get_i16_writer(samples.len() as u32);
    for &s in samples {
        w16.write_sample(s);
    }
    w16.flush()?;
    Ok(())
}

fn spec() -> hound::WavSpec {
    hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    }
}

/// Linear-interpolation resampler. Good enough for test and bot material (speech recorded at
/// 16/24/44.1 kHz); not meant for music-grade conversion.
pub fn resample_linear(input: &[f32], from_rate: u32, to_rate: u32) -> Vec<f32> {
    if from_rate == to_rate || input.is_empty() {
        return input.to_vec();
    }
    let out_len = (input.len() as u64 * u64::from(to_rate) / u64::from(from_rate)) as usize;
    let step = f64::from(from_rate) / f64::from(to_rate);
    (0..out_len)
        .map(|i| {
            let pos = i as f64 * step;
            let idx = pos as usize;
            let frac = (pos - idx as f64) as f32;
            let a = input[idx.min(input.len() - 1)];
            let b = input[(idx + 1).min(input.len() - 1)];
            a + (b - a) * frac
        })
        .collect()
}

fn f32_to_i16(s: f32) -> i16 {
    (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::best_alignment;
    use crate::testutil::sine;
    use std::io::Cursor;

    #[test]
    fn round_trip_48k_mono_is_exact() {
        let x = sine(440.0, 0.5, 4800);
        let mut buf = Cursor::new(Vec::new());
        write_wav_writer(&mut buf, &x).unwrap();
        let y = read_wav_reader(Cursor::new(buf.into_inner())).unwrap();
        assert_eq!(x, y);
    }

    #[test]
    fn stereo_16k_is_downmixed_and_resampled() {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut buf = Cursor::new(Vec::new());
        {
            let mut w = hound::WavWriter::new(&mut buf, spec).unwrap();
            for i in 0..16_000 {
                let v = (0.5
                    * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 16_000.0).sin()
                    * 32767.0) as i16;
                // Left carries the tone, right is silent: the downmix halves it.
                w.write_sample(v).unwrap();
                w.write_sample(0i16).unwrap();
            }
            w.finalize().unwrap();
        }
        let y = read_wav_reader(Cursor::new(buf.into_inner())).unwrap();
        assert_eq!(y.len(), 48_000);
        let reference = sine(440.0, 0.25, 48_000);
        let a = best_alignment(&reference, &y, -10, 10);
        assert!(a.lag.abs() <= 2, "lag {}", a.lag);
        assert!(a.correlation > 0.999, "{}", a.correlation);
    }

    #[test]
    fn float_wav_is_read() {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 48_000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut buf = Cursor::new(Vec::new());
        {
            let mut w = hound::WavWriter::new(&mut buf, spec).unwrap();
            for v in [0.0f32, 0.5, -0.5, 1.5] {
                w.write_sample(v).unwrap();
            }
            w.finalize().unwrap();
        }
        let y = read_wav_reader(Cursor::new(buf.into_inner())).unwrap();
        assert_eq!(y, vec![0, 16384, -16384, 32767]);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(read_wav_reader(Cursor::new(b"not a wav file".to_vec())).is_err());
        assert!(read_wav("/nonexistent/file.wav").is_err());
    }

    #[test]
    fn resampler_lengths() {
        assert_eq!(resample_linear(&[0.0; 441], 44_100, 48_000).len(), 480);
        assert_eq!(resample_linear(&[1.0, 2.0], 48_000, 48_000), vec![1.0, 2.0]);
        assert!(resample_linear(&[], 8_000, 48_000).is_empty());
    }
}
