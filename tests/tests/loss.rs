//! Loss resilience end to end: RED (RFC 2198) between the real client and the real SFU, with
//! random loss injected by the impairment relay of `ruang bench latency` (it drops RTP/RTCP
//! datagrams between one client and the server; STUN/DTLS pass).
//!
//! - SFU → listener: the SFU wraps what it forwards in RED for a listener whose receiver
//!   reports show loss and stops for one whose reports are clean; the lossy listener's jitter
//!   buffer fills the holes from the redundant copies (counted as `redundant`) and it hears
//!   the speaker.
//! - Speaker → SFU: the speaker's redundancy follows the loss the SFU reports on its uplink;
//!   str0m rebuilds the lost frames from it, so the SFU forwards nearly every frame although
//!   a fifth of the datagrams never reached it.
//!
//! Nothing here measures time: waits have generous upper bounds.

use ruang_client::media::ruang_media;
use ruang_client::media::{MediaOptions, MediaSession, MediaStats, Signaller};
use ruang_media::analysis::best_alignment;
use ruang_media::device::Source;
use ruang_media::signal::speech_like;
use ruang_proto::RoomKind;
use ruang_tests::media::{device, listener_opts};
use ruang_tests::relay::{ImpairedSignaller, Impairment};
use ruang_tests::{Backend, TestServer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(60);
const SR: usize = 48_000;

/// Share of 250 ms chunks of `reference` found in `output` with correlation ≥ 0.8, each chunk
/// aligned on its own around the best lag of the whole signal. One concealed 20 ms frame or
/// one playout adjustment inside a chunk takes it to about 0.8–0.9 (seen on a busy machine
/// with RED rebuilding all but one frame in 250), while a chunk missing several frames, as
/// at 20 % loss without redundancy, falls well below 0.8.
fn heard_share(reference: &[i16], output: &[i16]) -> f64 {
    let max_lag = output.len().saturating_sub(SR) as isize;
    let global = best_alignment(reference, output, 0, max_lag.max(1));
    let chunk = SR / 4;
    let slack = (SR / 10) as isize;
    // Only the chunks the recording reaches: the listener stops recording a little before
    // the speaker's last frame, which is not a loss.
    let chunks: Vec<f64> = reference
        .chunks_exact(chunk)
        .enumerate()
        .map(|(i, part)| (global.lag + (i * chunk) as isize, part))
        .take_while(|(base, _)| base + slack + chunk as isize <= output.len() as isize)
        .map(|(base, part)| best_alignment(part, output, base - slack, base + slack).correlation)
        .collect();
    eprintln!("alignment {global:?}; chunk correlations {chunks:.2?}");
    chunks.iter().filter(|&&c| c >= 0.8).count() as f64 / chunks.len() as f64
}

fn lossy(loss: f64) -> Impairment {
    Impairment { loss, jitter_ms: 0 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn red_fills_a_lossy_listeners_holes_and_stays_off_for_a_clean_one() {
    let ts = TestServer::start(Backend::Sqlite).await;
    let maya = ts.admin("maya").await;
    let room = maya
        .create_room("Loss", RoomKind::Open)
        .await
        .expect("room")
        .id
        .as_str()
        .to_owned();
    let speaker = ts.join(&maya, &room).await;

    // A listener behind 20 % random loss (both directions), and a clean one.
    let budi = ts.member(&maya, "budi").await;
    let lossy_session = ts.join(&budi, &room).await;
    let sig = Arc::new(ImpairedSignaller::new(lossy_session.clone(), lossy(0.2), 7));
    let mut lossy_dev = device(Source::Silence);
    let lossy_media = MediaSession::start_with(
        sig.clone() as Arc<dyn Signaller>,
        &mut lossy_dev,
        listener_opts(),
    )
    .await
    .expect("lossy listener media");
    let citra = ts.member(&maya, "citra").await;
    let clean_session = ts.join(&citra, &room).await;
    let mut clean_dev = device(Source::Silence);
    let clean_media = MediaSession::start(&clean_session, &mut clean_dev, listener_opts())
        .await
        .expect("clean listener media");

    // 12 s of continuous speech-like signal.
    let reference = speech_like(SR * 12, 3);
    let go = Arc::new(AtomicBool::new(false));
    let mut mic = device(Source::gated(reference.clone(), false, go.clone()));
    let media = MediaSession::start(&speaker, &mut mic, MediaOptions::default())
        .await
        .expect("speaker media");
    go.store(true, Ordering::Release);

    // Once the clean listener's RED stopped (no RED packet over 50 frames), the lossy one
    // still gets RED packets over the same span.
    let mut last = (clean_media.stats(), lossy_media.stats());
    loop {
        let from = last.0.frames_played;
        let now = clean_media
            .wait_for(PATIENCE, |s| s.frames_played >= from + 50)
            .await
            .expect("the clean listener keeps playing");
        let lossy_now = lossy_media.stats();
        if now.red_packets_received == last.0.red_packets_received && now.packets_received > 100 {
            assert!(
                lossy_now.red_packets_received > last.1.red_packets_received,
                "the lossy listener gets RED while the clean one does not: {lossy_now:#?}"
            );
            break;
        }
        assert!(
            now.packets_received < 12 * 50,
            "RED never stopped for the clean listener: {now:#?}"
        );
        last = (now, lossy_now);
    }
    assert!(ts.metric("ruang_sfu_red_switches_total").await >= 1.0);

    let lossy_stats: MediaStats = lossy_media
        .wait_for(PATIENCE, |s| s.frames_with_audio >= 12 * 50 - 20)
        .await
        .unwrap_or_else(|s| panic!("the lossy listener did not hear it all: {s:#?}"));
    clean_media
        .wait_for(PATIENCE, |s| s.frames_with_audio >= 12 * 50 - 20)
        .await
        .unwrap_or_else(|s| panic!("the clean listener did not hear it all: {s:#?}"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    media.stop().await;
    let lossy_stats = MediaStats {
        playout: lossy_media.stats().playout,
        ..lossy_stats
    };
    lossy_media.stop().await;
    clean_media.stop().await;

    // The relay really lost about a fifth of the media datagrams.
    let dropped = sig.stats.dropped.load(Ordering::Relaxed);
    let relayed = sig.stats.media.load(Ordering::Relaxed);
    assert!(
        dropped * 100 >= relayed * 14,
        "{dropped} of {relayed} dropped"
    );
    let p = lossy_stats.playout;
    eprintln!("lossy listener playout: {p:?}");
    // Most lost frames were rebuilt from RED copies: real data for ≥ 97 % of the frames.
    assert!(p.redundant >= 60, "redundant copies played: {p:?}");
    let real = p.received + p.redundant;
    let played = real + p.recovered + p.concealed;
    assert!(real * 100 >= played * 97, "{p:?}");
    assert!(
        lossy_stats.red_packets_received * 2 > lossy_stats.packets_received,
        "{lossy_stats:#?}"
    );
    // And the audio is the speaker's (chunks where the jitter buffer moved the playout by a
    // frame score lower; a loaded 2-core machine running three of these at once adds some).
    let share = heard_share(&reference, &lossy_dev.take_recording());
    assert!(share >= 0.85, "heard {share:.2} of the chunks");
    let clean = heard_share(&reference, &clean_dev.take_recording());
    assert!(clean >= 0.85, "heard {clean:.2} of the chunks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_speakers_red_makes_up_for_uplink_loss() {
    let ts = TestServer::start(Backend::Sqlite).await;
    let maya = ts.admin("maya").await;
    let room = maya
        .create_room("Uplink", RoomKind::Open)
        .await
        .expect("room")
        .id
        .as_str()
        .to_owned();
    let speaker = ts.join(&maya, &room).await;
    let budi = ts.member(&maya, "budi").await;
    let listener = ts.join(&budi, &room).await;
    let mut dev = device(Source::Silence);
    let listen = MediaSession::start(&listener, &mut dev, listener_opts())
        .await
        .expect("listener media");

    // The speaker (a moderator, on stage) behind 20 % loss.
    let reference = speech_like(SR * 12, 9);
    let go = Arc::new(AtomicBool::new(false));
    let mut mic = device(Source::gated(reference.clone(), false, go.clone()));
    let sig = Arc::new(ImpairedSignaller::new(speaker.clone(), lossy(0.2), 11));
    let media = MediaSession::start_with(
        sig.clone() as Arc<dyn Signaller>,
        &mut mic,
        MediaOptions {
            force_send: true,
            ..MediaOptions::default()
        },
    )
    .await
    .expect("speaker media");
    go.store(true, Ordering::Release);

    // The SFU's reports raise the speaker's redundancy to two frames.
    let start = media
        .wait_for(PATIENCE, |s| s.red_redundancy == 2 && s.loss_reports >= 1)
        .await
        .unwrap_or_else(|s| panic!("redundancy did not follow the loss: {s:#?}"));
    let before = ts.metric("ruang_sfu_packets_received_total").await;
    let dropped_before = sig.stats.dropped.load(Ordering::Relaxed);
    let relayed_before = sig.stats.media.load(Ordering::Relaxed);
    let end = media
        .wait_for(PATIENCE, |s| s.packets_sent >= start.packets_sent + 250)
        .await
        .unwrap_or_else(|s| panic!("the speaker stopped sending: {s:#?}"));
    let received = ts.metric("ruang_sfu_packets_received_total").await - before;
    let dropped = sig.stats.dropped.load(Ordering::Relaxed) - dropped_before;
    let relayed = sig.stats.media.load(Ordering::Relaxed) - relayed_before;
    listen
        .wait_for(PATIENCE, |s| s.frames_with_audio >= 12 * 50 - 30)
        .await
        .unwrap_or_else(|s| panic!("the listener did not hear it: {s:#?}"));
    media.stop().await;
    listen.stop().await;

    let sent = end.packets_sent - start.packets_sent;
    assert!(
        dropped * 100 >= relayed * 14,
        "{dropped} of {relayed} dropped"
    );
    assert_eq!(
        end.red_packets_sent - start.red_packets_sent,
        sent,
        "every packet went as RED: {end:#?}"
    );
    // About a fifth of the speaker's packets never reached the SFU, yet it forwarded (nearly)
    // every frame over the same span: str0m rebuilt the lost ones from the redundancy of the
    // next packets (a frame is lost only with the two after it, ~1 % at 20 % loss).
    eprintln!(
        "{sent} sent, {received} frames out of str0m, {dropped} of {relayed} datagrams dropped"
    );
    assert!(
        received >= sent as f64 * 0.96,
        "the SFU got {received} frames of {sent} sent"
    );
    let share = heard_share(&reference, &dev.take_recording());
    assert!(share >= 0.85, "heard {share:.2} of the chunks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sfu_asks_a_speaker_to_resend_what_the_uplink_lost() {
    let ts = TestServer::start(Backend::Sqlite).await;
    let maya = ts.admin("maya").await;
    let room = maya
        .create_room("Nack", RoomKind::Open)
        .await
        .expect("room")
        .id
        .as_str()
        .to_owned();
    let speaker = ts.join(&maya, &room).await;

    // The speaker behind 10 % loss, without RED: only retransmissions can fill the holes.
    let reference = speech_like(SR * 8, 5);
    let go = Arc::new(AtomicBool::new(false));
    let mut mic = device(Source::gated(reference.clone(), false, go.clone()));
    let sig = Arc::new(ImpairedSignaller::new(speaker.clone(), lossy(0.1), 21));
    let media = MediaSession::start_with(
        sig.clone() as Arc<dyn Signaller>,
        &mut mic,
        MediaOptions {
            force_send: true,
            red_redundancy: Some(0),
            ..MediaOptions::default()
        },
    )
    .await
    .expect("speaker media");
    let before = ts.metric("ruang_sfu_packets_received_total").await;
    go.store(true, Ordering::Release);
    let sent = media
        .wait_for(PATIENCE, |s| s.packets_sent >= 8 * 50)
        .await
        .unwrap_or_else(|s| panic!("the speaker stopped sending: {s:#?}"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = ts.metric("ruang_sfu_packets_received_total").await - before;
    let nacks = ts.metric("ruang_sfu_nacks_sent_total").await;
    media.stop().await;

    let dropped = sig.stats.dropped.load(Ordering::Relaxed);
    let relayed = sig.stats.media.load(Ordering::Relaxed);
    eprintln!(
        "{} sent, {received} frames out of str0m, {nacks} NACKs, {dropped} of {relayed} datagrams dropped",
        sent.packets_sent
    );
    assert_eq!(sent.red_packets_sent, 0);
    assert!(
        dropped * 100 >= relayed * 6,
        "{dropped} of {relayed} dropped"
    );
    assert!(nacks >= 10.0, "the SFU sent {nacks} NACKs");
    // A tenth of the datagrams was lost (resends too), yet nearly every frame got through.
    assert!(
        received >= sent.packets_sent as f64 * 0.97,
        "the SFU got {received} frames of {} sent",
        sent.packets_sent
    );
}
