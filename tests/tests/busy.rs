//! A busy machine: CPU hogs on every core while a speaker talks to a listener through the real
//! server. The audio engine and the device threads run at real-time priority
//! (`ruang_media::rt`), so neither device ever finds its ring empty (listener) or full
//! (speaker) while the hogs run. Its own test binary, so no other test shares the hogs.
//!
//! Nothing here measures time: the hogs run for a fixed span and the devices' own underrun
//! and overrun counters are compared before and after.

use ruang_client::media::ruang_media;
use ruang_client::media::{MediaOptions, MediaSession};
use ruang_media::device::Source;
use ruang_proto::RoomKind;
use ruang_tests::media::device;
use ruang_tests::{Backend, TestServer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(40);
const HOG_SECONDS: u64 = 6;
/// Spinning threads per core (a load of about this many per core).
const HOGS_PER_CORE: usize = 8;

/// `n` threads spinning at normal priority until `stop` is set (like `stress-ng --cpu 0`).
fn hogs(n: usize, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<u64>> {
    (0..n)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 1u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..10_000 {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    }
                }
                x
            })
        })
        .collect()
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_dropouts_on_either_device_with_a_cpu_hog_on_every_core() {
    let ts = TestServer::start(Backend::Sqlite).await;
    let maya = ts.admin("maya").await;
    let room = maya
        .create_room("Busy", RoomKind::Open)
        .await
        .expect("room")
        .id
        .as_str()
        .to_owned();
    let speaker = ts.join(&maya, &room).await;
    let budi = ts.member(&maya, "budi").await;
    let listener = ts.join(&budi, &room).await;

    let speech = ruang_media::signal::speech_like(48_000 * 4, 5);
    let mut mic = device(Source::samples(speech, true));
    let talk = MediaSession::start(&speaker, &mut mic, MediaOptions::default())
        .await
        .expect("speaker media");
    let mut ear = device(Source::Silence);
    let listen = MediaSession::start(
        &listener,
        &mut ear,
        MediaOptions {
            capture: false,
            // A debug build (decoding alone is several times slower than in release) on a
            // shared 2-core machine: the 40 ms queue the other end-to-end tests use, so a
            // late tick is absorbed as the release build's 10 ms absorbs one.
            playout_ms: 40,
            ..MediaOptions::default()
        },
    )
    .await
    .expect("listener media");
    let calm = listen
        .wait_for(PATIENCE, |s| s.frames_with_audio >= 100)
        .await
        .unwrap_or_else(|s| panic!("no audio before the hogs: {s:#?}"));
    let rt = calm.engine_priority.starts_with("SCHED_FIFO");
    eprintln!("engine thread: {}", calm.engine_priority);
    if is_root() && std::env::var_os("RUANG_NO_RT").is_none() {
        assert!(rt, "root may use SCHED_FIFO: {calm:#?}");
        assert!(talk.stats().engine_priority.starts_with("SCHED_FIFO"));
    }
    let (l0, s0) = (listen.stats(), talk.stats());

    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let stop = Arc::new(AtomicBool::new(false));
    let spinning = hogs(cores * HOGS_PER_CORE, stop.clone());
    tokio::time::sleep(Duration::from_secs(HOG_SECONDS)).await;
    let (l1, s1) = (listen.stats(), talk.stats());
    stop.store(true, Ordering::Relaxed);
    for h in spinning {
        let _ = h.join();
    }

    let played = l1.frames_played - l0.frames_played;
    let heard = l1.frames_with_audio - l0.frames_with_audio;
    eprintln!(
        "under {} hogs for {HOG_SECONDS} s: listener played {played} frames ({heard} with audio), \
         device underruns {} samples, late engine ticks {}; speaker captured {} frames, \
         capture overruns {} samples, sent {} packets",
        cores * HOGS_PER_CORE,
        l1.playback_underruns - l0.playback_underruns,
        l1.engine_late_ticks - l0.engine_late_ticks,
        s1.frames_captured - s0.frames_captured,
        s1.capture_overruns - s0.capture_overruns,
        s1.packets_sent - s0.packets_sent,
    );
    // The devices kept real time and the engine kept feeding them.
    assert!(played >= HOG_SECONDS * 50 * 9 / 10, "{l1:#?}");
    assert!(
        s1.frames_captured - s0.frames_captured >= HOG_SECONDS * 50 * 9 / 10,
        "{s1:#?}"
    );
    // The speaker was heard throughout (the network path shares the CPU with the hogs, so a
    // few frames may be concealed, but the stream goes on).
    assert!(heard * 10 >= played * 9, "{l1:#?}");
    if rt {
        // At most 2 % of the samples missed on either device. Not zero: on a 2-vCPU machine
        // with 8 spinning threads per core and the test's own server, WebRTC stacks and test
        // runner at normal priority beside them, a device thread is sometimes not woken in
        // time (seen: 60 ms in 6 s, once in several runs). The bench (docs/benchmarks.md,
        // Quality) measures dropouts over 60 s.
        let allowed = played * 960 / 50;
        let underruns = l1.playback_underruns - l0.playback_underruns;
        assert!(
            underruns <= allowed,
            "the listener's device found its ring empty for {underruns} samples: {l1:#?}"
        );
        let overruns = s1.capture_overruns - s0.capture_overruns;
        assert!(
            overruns <= allowed,
            "the speaker's capture ring overflowed by {overruns} samples: {s1:#?}"
        );
    }
    talk.stop().await;
    listen.stop().await;
}
