//! Property tests of the bots' WAV reader (`ruang bot speak --wav FILE` reads whatever file it
//! is given): arbitrary bytes, RIFF headers with arbitrary fields and mutated valid files give
//! an error or samples, never a panic; a file we write reads back exactly.

use proptest::prelude::*;
use ruang_media::wav::{read_wav_reader, write_wav_writer};
use std::io::Cursor;

/// A RIFF/WAVE file with the given `fmt ` fields and `data`.
#[allow(clippy::too_many_arguments)]
fn riff(
    format: u16,
    channels: u16,
    rate: u32,
    byte_rate: u32,
    block_align: u16,
    bits: u16,
    fmt_extra: &[u8],
    data: &[u8],
    data_len: Option<u32>,
) -> Vec<u8> {
    let mut fmt = Vec::new();
    fmt.extend_from_slice(&format.to_le_bytes());
    fmt.extend_from_slice(&channels.to_le_bytes());
    fmt.extend_from_slice(&rate.to_le_bytes());
    fmt.extend_from_slice(&byte_rate.to_le_bytes());
    fmt.extend_from_slice(&block_align.to_le_bytes());
    fmt.extend_from_slice(&bits.to_le_bytes());
    fmt.extend_from_slice(fmt_extra);
    let mut body = b"WAVE".to_vec();
    body.extend_from_slice(b"fmt ");
    body.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
    body.extend_from_slice(&fmt);
    body.extend_from_slice(b"data");
    body.extend_from_slice(&data_len.unwrap_or(data.len() as u32).to_le_bytes());
    body.extend_from_slice(data);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

fn read(bytes: &[u8]) {
    if let Ok(samples) = read_wav_reader(Cursor::new(bytes)) {
        // Whatever was accepted is bounded by what the reader allows (no runaway resampling).
        assert!(
            samples.len() <= bytes.len().max(1) * 48 * 8,
            "{} samples",
            samples.len()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        read(&bytes);
    }

    #[test]
    fn arbitrary_headers_never_panic(
        format in prop_oneof![Just(1u16), Just(3u16), Just(0xFFFEu16), any::<u16>()],
        channels in prop_oneof![0u16..4, any::<u16>()],
        rate in prop_oneof![Just(48_000u32), Just(16_000u32), 0u32..10, any::<u32>()],
        byte_rate in any::<u32>(),
        block_align in prop_oneof![0u16..16, any::<u16>()],
        bits in prop_oneof![Just(8u16), Just(16u16), Just(24u16), Just(32u16), 0u16..70, any::<u16>()],
        fmt_extra in prop::collection::vec(any::<u8>(), 0..30),
        data in prop::collection::vec(any::<u8>(), 0..256),
        data_len in any::<Option<u32>>(),
    ) {
        read(&riff(format, channels, rate, byte_rate, block_align, bits, &fmt_extra, &data, data_len));
    }

    /// Headers a WAV library accepts (consistent block align and byte rate) with any rate,
    /// channel count and size: tiny rates must not blow up the resampler.
    #[test]
    fn consistent_headers_with_any_rate_never_panic(
        float in any::<bool>(),
        channels in 1u16..9,
        bits in prop::sample::select(vec![8u16, 16, 24, 32]),
        rate in prop_oneof![1u32..1_000, 1_000u32..200_000, any::<u32>()],
        data in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let (format, bits) = if float { (3, 32) } else { (1, bits) };
        let block_align = channels * bits / 8;
        let byte_rate = rate.wrapping_mul(u32::from(block_align));
        let whole = data.len() / usize::from(block_align) * usize::from(block_align);
        read(&riff(format, channels, rate, byte_rate, block_align, bits, &[], &data[..whole], None));
    }

    #[test]
    fn mutated_valid_files_never_panic(
        samples in prop::collection::vec(any::<i16>(), 0..64),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<Option<usize>>(),
    ) {
        let mut buf = Cursor::new(Vec::new());
        write_wav_writer(&mut buf, &samples).unwrap();
        let mut bytes = buf.into_inner();
        for (i, b) in edits {
            let n = bytes.len();
            bytes[i % n] = b;
        }
        if let Some(c) = cut {
            let n = bytes.len();
            bytes.truncate(c % (n + 1));
        }
        read(&bytes);
    }

    #[test]
    fn our_files_read_back_exactly(samples in prop::collection::vec(any::<i16>(), 0..2_000)) {
        let mut buf = Cursor::new(Vec::new());
        write_wav_writer(&mut buf, &samples).unwrap();
        let back = read_wav_reader(Cursor::new(buf.into_inner())).unwrap();
        prop_assert_eq!(back, samples);
    }
}
