//! Media helpers shared by the end-to-end tests: real-time virtual devices and the
//! "client that sends whatever the room says" the server must be able to silence.

use ruang_client::media::ruang_media::device::{Pacing, Source, VirtualConfig, VirtualDevice};
use ruang_client::media::{MediaOptions, MediaSession};
use ruang_client::RoomSession;

/// A virtual device paced in real time (10 ms ticks) that records up to two minutes.
pub fn device(source: Source) -> VirtualDevice {
    VirtualDevice::new(
        VirtualConfig {
            pacing: Pacing::Realtime { tick_ms: 10 },
            record_capacity: 48_000 * 120,
        },
        source,
    )
}

/// Listen-only media options with a 40 ms playout queue: the tests check what is heard, in a
/// debug build on a loaded 2-core machine, where the 10 ms default would start with device
/// underruns until the adaptive target has grown (latency is `ruang bench latency`'s job).
pub fn listener_opts() -> MediaOptions {
    MediaOptions {
        capture: false,
        playout_ms: 40,
        ..MediaOptions::default()
    }
}

/// Media for `session` whose client sends a 1 kHz tone whatever the room allows (a modified
/// client): only the server can keep it from being heard. Keep the device alive.
pub async fn forcing_tone(session: &RoomSession) -> (VirtualDevice, MediaSession) {
    let mut dev = device(Source::sine(1_000.0, 0.3));
    let media = MediaSession::start(
        session,
        &mut dev,
        MediaOptions {
            force_send: true,
            ..MediaOptions::default()
        },
    )
    .await
    .expect("media of a client that sends regardless");
    (dev, media)
}

const SR: usize = 48_000;

/// Correlation of each 250 ms chunk of `reference` with `output` after aligning that chunk
/// (around the best lag of the whole signal). Chunks are aligned separately because the
/// adaptive jitter buffer may drop or insert a 20 ms frame to follow the network, which
/// shifts everything after it by one frame.
pub fn chunked_correlation(reference: &[i16], output: &[i16]) -> Vec<f64> {
    use ruang_client::media::ruang_media::analysis::best_alignment;
    let max_lag = output.len().saturating_sub(SR) as isize;
    let global = best_alignment(reference, output, 0, max_lag.max(1));
    eprintln!("whole-signal alignment: {global:?}");
    let chunk = SR / 4;
    let slack = (SR / 10) as isize;
    reference
        .chunks_exact(chunk)
        .enumerate()
        .map(|(i, part)| {
            let base = global.lag + (i * chunk) as isize;
            best_alignment(part, output, base - slack, base + slack).correlation
        })
        .collect()
}
