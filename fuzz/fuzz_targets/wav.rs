//! The bots' WAV reader (`ruang bot speak --wav FILE`): samples or an error, never a panic,
//! and never a runaway allocation from a tiny file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ruang_media::wav::read_wav_reader;

fuzz_target!(|data: &[u8]| {
    if let Ok(samples) = read_wav_reader(std::io::Cursor::new(data)) {
        assert!(samples.len() <= data.len().max(1) * 48 * 8);
    }
});
