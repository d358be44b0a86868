//! Live audio end to end: the real server with its SFU, real clients (`MediaSession`, the
//! `webrtc` crate) with virtual audio devices, over loopback UDP.
//!
//! Nothing here measures time: waits have generous upper bounds, and audio is compared by
//! cross-correlation after alignment.

use ruang_client::media::ruang_media;
use ruang_client::media::{MediaOptions, MediaSession};
use ruang_client::{ApiClient, RoomSession};
use ruang_media::analysis::best_alignment;
use ruang_media::device::{Pacing, Source, VirtualConfig, VirtualDevice};
use ruang_proto::RoomKind;
use ruang_tests::{Backend, TestServer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Upper bound for anything to happen; never a measured duration.
const PATIENCE: Duration = Duration::from_secs(40);
const SR: usize = 48_000;

/// Speech-like test signal: a glottal pulse train with gliding pitch through two formant
/// resonators, syllabic envelope (the recipe of `ruang_media`'s own tests).
fn speech_like(len: usize, seed: u64) -> Vec<i16> {
    let mut state = seed;
    let mut rnd = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
    };
    let sr = SR as f32;
    let pi = std::f32::consts::PI;
    let resonate = |x: f32, freq: f32, bw: f32, y1: f32, y2: f32| {
        let r = (-pi * bw / sr).exp();
        let c = 2.0 * r * (2.0 * pi * freq / sr).cos();
        let y = x + c * y1 - r * r * y2;
        (y, y, y1)
    };
    let mut out = Vec::with_capacity(len);
    let (mut phase, mut a1, mut a2, mut b1, mut b2) = (0.0f32, 0.0, 0.0, 0.0, 0.0);
    let syllable = (sr * 0.18) as usize;
    let (mut f1, mut f2, mut pitch_base) = (500.0, 1500.0, 120.0);
    for i in 0..len {
        if i % syllable == 0 {
            f1 = 300.0 + rnd() * 500.0;
            f2 = 900.0 + rnd() * 1500.0;
            pitch_base = 100.0 + rnd() * 80.0;
        }
        let t = i as f32 / sr;
        let pitch = pitch_base * (1.0 + 0.08 * (2.0 * pi * 3.0 * t).sin());
        phase += pitch / sr;
        let excitation = if phase >= 1.0 {
            phase -= 1.0;
            1.0
        } else {
            0.0
        } + 0.02 * (rnd() - 0.5);
        let (y1, na1, na2) = resonate(excitation, f1, 80.0, a1, a2);
        a1 = na1;
        a2 = na2;
        let (y2, nb1, nb2) = resonate(excitation, f2, 120.0, b1, b2);
        b1 = nb1;
        b2 = nb2;
        let pos = (i % syllable) as f32 / syllable as f32;
        let envelope = (pi * pos).sin().powf(0.7);
        let v = (y1 + 0.6 * y2) * envelope * 0.03;
        out.push((v.clamp(-1.0, 1.0) * 32767.0) as i16);
    }
    out
}

/// Correlation of each 250 ms chunk of `reference` with `output` after aligning that chunk
/// (around the best lag of the whole signal). Chunks are aligned separately because the
/// adaptive jitter buffer may drop or insert a 20 ms frame to follow the network, which
/// shifts everything after it by one frame.
fn chunked_correlation(reference: &[i16], output: &[i16]) -> Vec<f64> {
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

/// Silence until `go`, then `data` once: nothing is lost while the transport comes up.
fn gated(data: Vec<i16>, go: Arc<AtomicBool>) -> Source {
    let mut pos = 0;
    Source::generator(move |out| {
        for s in out.iter_mut() {
            *s = if go.load(Ordering::Acquire) && pos < data.len() {
                pos += 1;
                data[pos - 1]
            } else {
                0
            };
        }
    })
}

fn device(source: Source) -> VirtualDevice {
    VirtualDevice::new(
        VirtualConfig {
            pacing: Pacing::Realtime { tick_ms: 10 },
            record_capacity: SR * 120,
        },
        source,
    )
}

fn listener_opts() -> MediaOptions {
    MediaOptions {
        capture: false,
        ..MediaOptions::default()
    }
}

async fn room_with(admin: &ApiClient) -> String {
    admin
        .create_room("Media", RoomKind::Open)
        .await
        .expect("room created")
        .id
        .as_str()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_speaker_reaches_three_listeners() {
    let ts = TestServer::start(Backend::Sqlite).await;
    let maya = ts.admin("maya").await;
    let room = room_with(&maya).await;
    let speaker = ts.join(&maya, &room).await;

    let mut listeners: Vec<(RoomSession, VirtualDevice, MediaSession)> = Vec::new();
    for name in ["budi", "citra", "dewi"] {
        let c = ts.member(&maya, name).await;
        let session = ts.join(&c, &room).await;
        let mut dev = device(Source::Silence);
        let media = MediaSession::start(&session, &mut dev, listener_opts())
            .await
            .expect("listener media starts");
        listeners.push((session, dev, media));
    }

    // The speaker's WAV file, streamed through the virtual microphone.
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("speech.wav");
    ruang_media::wav::write_wav(&wav, &speech_like(SR * 4, 11)).unwrap();
    let reference = ruang_media::wav::read_wav(&wav).unwrap();
    let go = Arc::new(AtomicBool::new(false));
    let mut mic = device(gated(reference.clone(), go.clone()));
    let media = MediaSession::start(&speaker, &mut mic, MediaOptions::default())
        .await
        .expect("speaker media starts");
    assert!(
        media.stats().send_allowed,
        "a moderator is on stage, unmuted"
    );
    go.store(true, Ordering::Release);

    // 4 s = 200 frames; wait until every listener has played (nearly) all of it.
    for (_, _, m) in &listeners {
        m.wait_for(PATIENCE, |s| s.frames_with_audio >= 190)
            .await
            .unwrap_or_else(|s| panic!("audio did not arrive: {s:#?}"));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = media.stats();
    media.stop().await;
    assert!(sent.packets_sent >= 190, "{sent:#?}");

    for (session, mut dev, m) in listeners {
        let stats = m.stats();
        m.stop().await;
        let rec = dev.take_recording();
        assert!(stats.packets_received >= 190, "{stats:#?}");
        assert_eq!(stats.packets_sent, 0, "listeners send nothing");
        let chunks = chunked_correlation(&reference, &rec);
        eprintln!("chunk correlations: {chunks:.3?}");
        let good = chunks.iter().filter(|&&c| c >= 0.9).count();
        assert!(
            good + 2 >= chunks.len(),
            "listener hears the speaker (correlation >= 0.9 after alignment in all but the \
             chunks where the jitter buffer adapted): {chunks:.3?}, {} samples, {stats:#?}",
            rec.len()
        );
        drop(session);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_are_never_heard_and_media_follows_a_reconnect() {
    let ts = TestServer::start(Backend::Sqlite).await;
    let maya = ts.admin("maya").await;
    let room = room_with(&maya).await;
    let moderator = ts.join(&maya, &room).await;
    let budi = ts.member(&maya, "budi").await;
    let citra = ts.member(&maya, "citra").await;
    let sneaky = ts.join(&budi, &room).await;
    let ear = ts.join(&citra, &room).await;

    let mut ear_dev = device(Source::Silence);
    let ear_media = MediaSession::start(&ear, &mut ear_dev, listener_opts())
        .await
        .expect("listener media");

    // A listener whose client sends anyway: the server must drop every packet.
    let mut sneaky_dev = device(Source::sine(1_000.0, 0.3));
    let sneaky_media = MediaSession::start(
        &sneaky,
        &mut sneaky_dev,
        MediaOptions {
            force_send: true,
            ..MediaOptions::default()
        },
    )
    .await
    .expect("forcing listener media");
    sneaky_media
        .wait_for(PATIENCE, |s| s.packets_sent >= 100)
        .await
        .expect("the forcing listener sends");

    // Positive control: the moderator speaks; once that is heard, nothing else was.
    let mut mod_dev = device(Source::samples(speech_like(SR * 60, 5), false));
    let mod_media = MediaSession::start(&moderator, &mut mod_dev, MediaOptions::default())
        .await
        .expect("moderator media");
    let heard = ear_media
        .wait_for(PATIENCE, |s| s.frames_with_audio >= 25)
        .await
        .expect("the moderator is heard");
    assert_eq!(heard.slots.len(), 1, "one stream forwarded: {heard:#?}");
    let from_mod = mod_media.stats().packets_sent;
    assert!(
        heard.packets_received <= from_mod,
        "the listener received only the moderator's packets ({} received, {from_mod} sent by the moderator): {heard:#?}",
        heard.packets_received
    );
    assert_eq!(
        mod_media.stats().packets_received,
        0,
        "the moderator hears nobody (own audio is never sent back)"
    );
    sneaky_media.stop().await;

    // The moderator's network drops: the session reconnects and media renegotiates.
    moderator.simulate_network_loss().await;
    let after = mod_media
        .wait_for(PATIENCE, |s| s.transport_generation >= 2 && s.connected)
        .await
        .unwrap_or_else(|s| panic!("no renegotiation: {s:#?}"));
    assert!(after.renegotiations >= 1);
    let before = ear_media.stats().packets_received;
    ear_media
        .wait_for(PATIENCE, |s| s.packets_received >= before + 50)
        .await
        .unwrap_or_else(|s| panic!("audio did not resume after the reconnect: {s:#?}"));

    // Muted by the server's rules (moderator mutes himself): nothing leaves the client.
    moderator.set_muted(true).await.expect("mute");
    let muted = mod_media
        .wait_for(PATIENCE, |s| !s.send_allowed)
        .await
        .expect("room mute stops sending");
    let s = mod_media
        .wait_for(PATIENCE, |s| {
            s.frames_captured >= muted.frames_captured + 25
        })
        .await
        .unwrap();
    assert!(s.packets_sent <= muted.packets_sent + 1, "{s:#?}");

    mod_media.stop().await;
    ear_media.stop().await;
}
