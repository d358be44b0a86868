//! Opus encoder/decoder wrappers with the settings Ruang uses for voice.

use crate::{FRAME_SAMPLES, SAMPLE_RATE};
use opus::{Application, Bitrate, Channels};

/// Largest Opus packet we ever produce or accept (fits one Ethernet MTU).
pub const MAX_PACKET: usize = 1500;

/// Errors from the codec layer.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
    #[error("frame must be {expected} samples, got {got}")]
    FrameSize { expected: usize, got: usize },
    #[error("decoder produced {got} samples, expected {expected}")]
    ShortDecode { expected: usize, got: usize },
    #[error("empty packet")]
    EmptyPacket,
}

/// Encoder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderConfig {
    /// Target bitrate in bit/s.
    pub bitrate: i32,
    /// In-band FEC (LBRR): each packet also carries a coarse copy of the previous frame.
    pub fec: bool,
    /// Discontinuous transmission: silence produces tiny packets that need not be sent.
    pub dtx: bool,
    /// Expected packet loss in percent; Opus only emits FEC when this is above 0.
    pub packet_loss_perc: i32,
    /// 0..=10, CPU/quality trade-off.
    pub complexity: i32,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self {
            bitrate: 32_000,
            fec: true,
            dtx: true,
            packet_loss_perc: 10,
            complexity: 9,
        }
    }
}

/// Result of encoding one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoded {
    /// A packet of this many bytes was written to the output buffer.
    Packet(usize),
    /// DTX: the frame is silence and nothing needs to be transmitted.
    Silence,
}

/// Opus encoder for 48 kHz mono 20 ms frames, VOIP application.
pub struct OpusEncoder {
    inner: opus::Encoder,
    config: EncoderConfig,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder")
            .field("config", &self.config)
            .finish()
    }
}

impl OpusEncoder {
    pub fn new(config: EncoderConfig) -> Result<Self, CodecError> {
        let mut inner = opus::Encoder::new(SAMPLE_RATE, Channels::Mono, Application::Voip)?;
        inner.set_bitrate(Bitrate::Bits(config.bitrate))?;
        inner.set_inband_fec(config.fec)?;
        inner.set_dtx(config.dtx)?;
        inner.set_packet_loss_perc(config.packet_loss_perc)?;
        inner.set_complexity(config.complexity)?;
        Ok(Self { inner, config })
    }

    pub fn config(&self) -> EncoderConfig {
        self.config
    }

    /// Updates the loss hint (e.g. from RTCP receiver reports); more loss → stronger FEC.
    pub fn set_packet_loss_perc(&mut self, perc: i32) -> Result<(), CodecError> {
        let perc = perc.clamp(0, 100);
        self.inner.set_packet_loss_perc(perc)?;
        self.config.packet_loss_perc = perc;
        Ok(())
    }

    pub fn set_bitrate(&mut self, bitrate: i32) -> Result<(), CodecError> {
        self.inner.set_bitrate(Bitrate::Bits(bitrate))?;
        self.config.bitrate = bitrate;
        Ok(())
    }

    /// Encodes one 960-sample frame into `out` (use at least [`MAX_PACKET`] bytes).
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<Encoded, CodecError> {
        check_frame(pcm.len())?;
        let n = self.inner.encode(pcm, out)?;
        // libopus documents that packets of 2 bytes or less are DTX and need not be sent.
        if n <= 2 {
            Ok(Encoded::Silence)
        } else {
            Ok(Encoded::Packet(n))
        }
    }

    /// Encodes one 960-sample frame and returns the packet's length whatever it is (for
    /// files, where even a 1-byte silence packet is written: there is no DTX in a file).
    pub fn encode_always(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        check_frame(pcm.len())?;
        Ok(self.inner.encode(pcm, out)?)
    }

    /// Clears the encoder state, e.g. when the user is promoted to the stage again.
    pub fn reset(&mut self) -> Result<(), CodecError> {
        self.inner.reset_state()?;
        Ok(())
    }

    /// The encoder's look-ahead in samples (an Ogg Opus file's pre-skip, RFC 7845).
    pub fn lookahead(&mut self) -> Result<u16, CodecError> {
        let n = self.inner.get_lookahead()?;
        Ok(u16::try_from(n.max(0)).unwrap_or(u16::MAX))
    }
}

/// Opus decoder for 48 kHz mono; every call produces exactly one 960-sample frame.
pub struct OpusDecoder {
    inner: opus::Decoder,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder").finish_non_exhaustive()
    }
}

impl OpusDecoder {
    pub fn new() -> Result<Self, CodecError> {
        Ok(Self {
            inner: opus::Decoder::new(SAMPLE_RATE, Channels::Mono)?,
        })
    }

    /// Decodes a received packet.
    pub fn decode(&mut self, packet: &[u8], out: &mut [i16]) -> Result<(), CodecError> {
        if packet.is_empty() {
            return Err(CodecError::EmptyPacket);
        }
        self.run(packet, out, false)
    }

    /// Recovers the frame *before* `next_packet` from the FEC data carried in `next_packet`.
    /// If that packet has no FEC data, libopus falls back to concealment.
    pub fn decode_fec(&mut self, next_packet: &[u8], out: &mut [i16]) -> Result<(), CodecError> {
        if next_packet.is_empty() {
            return Err(CodecError::EmptyPacket);
        }
        self.run(next_packet, out, true)
    }

    /// Packet loss concealment: synthesises a frame from the decoder's history.
    pub fn conceal(&mut self, out: &mut [i16]) -> Result<(), CodecError> {
        self.run(&[], out, false)
    }

    pub fn reset(&mut self) -> Result<(), CodecError> {
        self.inner.reset_state()?;
        Ok(())
    }

    fn run(&mut self, packet: &[u8], out: &mut [i16], fec: bool) -> Result<(), CodecError> {
        check_frame(out.len())?;
        let n = self.inner.decode(packet, out, fec)?;
        if n != FRAME_SAMPLES {
            return Err(CodecError::ShortDecode {
                expected: FRAME_SAMPLES,
                got: n,
            });
        }
        Ok(())
    }
}

/// Whether an Opus packet carries in-band FEC (LBRR) data for the previous frame.
pub fn packet_has_fec(packet: &[u8]) -> bool {
    if packet.is_empty() {
        return false;
    }
    // SAFETY: the pointer and length describe a valid, live slice; the function only reads it.
    let r = unsafe { opusic_sys::opus_packet_has_lbrr(packet.as_ptr(), packet.len() as i32) };
    r == 1
}

fn check_frame(len: usize) -> Result<(), CodecError> {
    if len != FRAME_SAMPLES {
        return Err(CodecError::FrameSize {
            expected: FRAME_SAMPLES,
            got: len,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{best_alignment, correlation_at, rms};
    use crate::testutil::speech_like;

    fn encode_all(input: &[i16], config: EncoderConfig) -> Vec<Vec<u8>> {
        let mut enc = OpusEncoder::new(config).unwrap();
        let mut buf = [0u8; MAX_PACKET];
        input
            .chunks(FRAME_SAMPLES)
            .map(|f| match enc.encode(f, &mut buf).unwrap() {
                Encoded::Packet(n) => buf[..n].to_vec(),
                Encoded::Silence => Vec::new(),
            })
            .collect()
    }

    /// Decodes `packets`, treating indices in `lost` as lost: recovered from the next
    /// packet's FEC if `use_fec`, concealed otherwise.
    fn decode_all(packets: &[Vec<u8>], lost: &[usize], use_fec: bool) -> Vec<i16> {
        let mut dec = OpusDecoder::new().unwrap();
        let mut out = Vec::new();
        let mut frame = [0i16; FRAME_SAMPLES];
        for (i, p) in packets.iter().enumerate() {
            if lost.contains(&i) {
                if use_fec && i + 1 < packets.len() && !lost.contains(&(i + 1)) {
                    dec.decode_fec(&packets[i + 1], &mut frame).unwrap();
                } else {
                    dec.conceal(&mut frame).unwrap();
                }
            } else {
                dec.decode(p, &mut frame).unwrap();
            }
            out.extend_from_slice(&frame);
        }
        out
    }

    /// Codec delay (encoder look-ahead + decoder) found by aligning a clean decode.
    fn codec_lag(input: &[i16], output: &[i16]) -> isize {
        let a = best_alignment(input, output, 0, 1_000);
        assert!(
            a.correlation > 0.9,
            "clean decode correlation {}",
            a.correlation
        );
        a.lag
    }

    /// Correlation between input frame `k` and the aligned output.
    fn frame_correlation(input: &[i16], output: &[i16], k: usize, lag: isize) -> f64 {
        let r = k * FRAME_SAMPLES..(k + 1) * FRAME_SAMPLES;
        let shifted = &output[(r.start as isize + lag) as usize..];
        correlation_at(&input[r], shifted, 0)
    }

    #[test]
    fn round_trip_preserves_speech() {
        let input = speech_like(FRAME_SAMPLES * 100, 11);
        let packets = encode_all(&input, EncoderConfig::default());
        assert!(packets.iter().all(|p| !p.is_empty() && p.len() < 200));
        let mean = packets.iter().map(Vec::len).sum::<usize>() / packets.len();
        // ~32 kbit/s is 80 bytes per 20 ms frame.
        assert!((40..=120).contains(&mean), "mean packet {mean} bytes");
        let output = decode_all(&packets, &[], false);
        codec_lag(&input, &output);
    }

    #[test]
    fn fec_recovers_lost_frames() {
        let input = speech_like(FRAME_SAMPLES * 150, 12);
        let packets = encode_all(&input, EncoderConfig::default());
        let with_fec = packets.iter().filter(|p| packet_has_fec(p)).count();
        // LBRR only covers frames the encoder judged active, so syllable onsets lack it.
        assert!(
            with_fec * 10 >= packets.len() * 7,
            "{with_fec} packets with FEC"
        );
        let clean = decode_all(&packets, &[], false);
        let lag = codec_lag(&input, &clean);

        // Isolated losses spread over the signal, every one in voiced sound.
        let lost: Vec<usize> = (30..140)
            .step_by(7)
            .filter(|&k| rms(&input[k * FRAME_SAMPLES..(k + 1) * FRAME_SAMPLES]) > 0.02)
            .collect();
        assert!(lost.len() >= 10);
        let fec = decode_all(&packets, &lost, true);
        let plc = decode_all(&packets, &lost, false);
        let mean = |out: &[i16]| {
            lost.iter()
                .map(|&k| frame_correlation(&input, out, k, lag))
                .sum::<f64>()
                / lost.len() as f64
        };
        let (fec_r, plc_r) = (mean(&fec), mean(&plc));
        assert!(
            fec_r >= 0.8,
            "FEC frames correlate {fec_r:.3} with the original"
        );
        assert!(
            fec_r > plc_r + 0.1,
            "FEC {fec_r:.3} not better than PLC {plc_r:.3}"
        );
        // The whole signal with recovered frames still matches the original.
        let whole = correlation_at(&input, &fec, lag);
        assert!(whole >= 0.9, "whole-signal correlation {whole:.3}");
    }

    #[test]
    fn plc_continues_then_fades() {
        let input = speech_like(FRAME_SAMPLES * 40, 13);
        let packets = encode_all(&input, EncoderConfig::default());
        let mut dec = OpusDecoder::new().unwrap();
        let mut frame = [0i16; FRAME_SAMPLES];
        for p in &packets[..30] {
            dec.decode(p, &mut frame).unwrap();
        }
        let last = rms(&frame);
        dec.conceal(&mut frame).unwrap();
        let first_plc = rms(&frame);
        assert!(
            first_plc > last * 0.1,
            "PLC output {first_plc} vs speech {last}"
        );
        for _ in 0..20 {
            dec.conceal(&mut frame).unwrap();
        }
        assert!(rms(&frame) < first_plc * 0.5, "PLC does not fade out");
        // Decoding resumes normally after concealment.
        dec.decode(&packets[30], &mut frame).unwrap();
    }

    #[test]
    fn dtx_skips_silence() {
        let mut enc = OpusEncoder::new(EncoderConfig::default()).unwrap();
        let mut buf = [0u8; MAX_PACKET];
        let silence = [0i16; FRAME_SAMPLES];
        let skipped = (0..50)
            .filter(|_| enc.encode(&silence, &mut buf).unwrap() == Encoded::Silence)
            .count();
        assert!(skipped >= 30, "only {skipped} of 50 silent frames were DTX");
        let mut no_dtx = OpusEncoder::new(EncoderConfig {
            dtx: false,
            ..EncoderConfig::default()
        })
        .unwrap();
        assert!((0..50).all(|_| no_dtx.encode(&silence, &mut buf).unwrap() != Encoded::Silence));
    }

    #[test]
    fn settings_and_errors() {
        let mut enc = OpusEncoder::new(EncoderConfig::default()).unwrap();
        enc.set_packet_loss_perc(250).unwrap();
        assert_eq!(enc.config().packet_loss_perc, 100);
        enc.set_bitrate(24_000).unwrap();
        assert_eq!(enc.config().bitrate, 24_000);
        enc.reset().unwrap();
        let mut buf = [0u8; MAX_PACKET];
        assert!(matches!(
            enc.encode(&[0; 480], &mut buf),
            Err(CodecError::FrameSize { got: 480, .. })
        ));
        let mut dec = OpusDecoder::new().unwrap();
        let mut out = [0i16; FRAME_SAMPLES];
        assert!(matches!(
            dec.decode(&[], &mut out),
            Err(CodecError::EmptyPacket)
        ));
        assert!(matches!(
            dec.decode_fec(&[], &mut out),
            Err(CodecError::EmptyPacket)
        ));
        // Code-3 packet announcing 0 frames is malformed.
        assert!(dec.decode(&[0x03, 0x00], &mut out).is_err());
        assert!(matches!(
            dec.conceal(&mut out[..100]),
            Err(CodecError::FrameSize { .. })
        ));
        assert!(!packet_has_fec(&[]));
        dec.reset().unwrap();
    }
}
