//! Live audio end to end: the real server with its SFU, real clients (`MediaSession`, the
//! `webrtc` crate) with virtual audio devices, over loopback UDP.
//!
//! Nothing here measures time: waits have generous upper bounds, and audio is compared by
//! cross-correlation after alignment.

use ruang_client::media::ruang_media;
use ruang_client::media::{MediaOptions, MediaSession, MediaStats};
use ruang_client::{ApiClient, RoomSession};
use ruang_media::device::{Source, VirtualDevice};
use ruang_proto::RoomKind;
use ruang_tests::media::{chunked_correlation, device, forcing_tone, listener_opts};
use ruang_tests::replay::tone_share;
use ruang_tests::{Backend, TestServer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Upper bound for anything to happen; never a measured duration.
const PATIENCE: Duration = Duration::from_secs(40);
const SR: usize = 48_000;

use ruang_media::signal::speech_like;

/// Members `names` (signed up by `admin`) join `room` and start listen-only media.
async fn listening(
    ts: &TestServer,
    admin: &ApiClient,
    room: &str,
    names: &[&str],
) -> Vec<(RoomSession, VirtualDevice, MediaSession)> {
    let mut out = Vec::new();
    for name in names {
        let member = ts.member(admin, name).await;
        let session = ts.join(&member, room).await;
        let mut dev = device(Source::Silence);
        let media = MediaSession::start(&session, &mut dev, listener_opts())
            .await
            .expect("listener media starts");
        out.push((session, dev, media));
    }
    out
}

const DROPPED_NOT_ON_STAGE: &str = "ruang_sfu_packets_dropped_not_on_stage_total";

/// The SFU dropped (nearly) every one of the `sent` packets since the metric read `before`.
async fn assert_sfu_dropped(ts: &TestServer, before: f64, sent: u64, what: &str) {
    let dropped = ts.metric(DROPPED_NOT_ON_STAGE).await - before;
    assert!(
        dropped + 5.0 >= sent as f64,
        "the SFU dropped {what} ({dropped} dropped, {sent} sent)"
    );
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

    let listeners = listening(&ts, &maya, &room, &["budi", "citra", "dewi"]).await;

    // The speaker's WAV file, streamed through the virtual microphone.
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("speech.wav");
    ruang_media::wav::write_wav(&wav, &speech_like(SR * 4, 11)).unwrap();
    let reference = ruang_media::wav::read_wav(&wav).unwrap();
    let go = Arc::new(AtomicBool::new(false));
    let mut mic = device(Source::gated(reference.clone(), false, go.clone()));
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
    // The listeners offered first and went one to each of the three forwarding threads; the
    // speaker shares the first one's: its audio reached the two others by relay.
    assert_eq!(ts.metric("ruang_sfu_threads").await, 3.0);
    let relayed = ts.metric("ruang_sfu_packets_relayed_total").await;
    assert!(
        relayed >= 2.0 * 190.0,
        "the speaker's audio was relayed to the two other threads: {relayed}"
    );
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
    let (_sneaky_dev, sneaky_media) = forcing_tone(&sneaky).await;
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
    // The two counters are read at different instants (the moderator's is published each
    // engine tick), so a packet or two in flight is allowed; the forcing listener had sent
    // 100+ packets before the moderator began, so any leak of its audio is far beyond this.
    let from_mod = mod_media.stats().packets_sent;
    assert!(
        heard.packets_received <= from_mod + 5,
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

// ---------------------------------------------------------------------------------------
// Stage changes heard from the audience: several speakers, demotion, mute, leaving.
// ---------------------------------------------------------------------------------------

fn peak(x: &[i16]) -> i32 {
    x.iter().map(|&s| i32::from(s).abs()).max().unwrap_or(0)
}

/// The last `ms` of a recording.
fn tail(rec: &[i16], ms: usize) -> &[i16] {
    let n = SR * ms / 1000;
    assert!(rec.len() >= n, "recording too short: {} samples", rec.len());
    &rec[rec.len() - n..]
}

/// The moderator invites `speaker` up; it accepts and unmutes.
async fn bring_on_stage(moderator: &RoomSession, speaker: &RoomSession) {
    ruang_tests::invite_up(moderator, speaker).await;
    speaker.set_muted(false).await.expect("unmute");
    speaker
        .wait_for(PATIENCE, |s| s.room.you().is_some_and(|p| !p.muted))
        .await
        .expect("unmuted");
}

/// 20 ms frames a listener may still play from a speaker after the audio stopped at the
/// source (a moderator's `ok`, a local mute): packets already in flight (≤ 100 ms on
/// loopback), what the jitter buffer held at that moment, the concealment frames it plays
/// before draining (`max_underrun_frames`), the playback ring, and one frame of rounding.
fn drain_allowance(listener_at_stop: &MediaStats) -> u64 {
    let opts = listener_opts();
    let buffered = listener_at_stop
        .slots
        .iter()
        .map(|s| s.buffered_ms)
        .max()
        .unwrap_or(0);
    let in_flight_ms = 100;
    u64::from((in_flight_ms + buffered) / 20)
        + u64::from(opts.receive.jitter.max_underrun_frames)
        + u64::from(opts.playout_ms.div_ceil(20))
        + 1
}

/// Waits until `clock` (a speaker that keeps capturing) has moved `frames` more 20 ms frames
/// than at `from`: a way to let audio time pass that never measures wall-clock time.
async fn frames_later(clock: &MediaSession, from: u64, frames: u64) {
    clock
        .wait_for(PATIENCE, |s| s.frames_captured >= from + frames)
        .await
        .unwrap_or_else(|s| panic!("the speaker's device stalled: {s:#?}"));
}

/// After audio stopped at the source (`at_stop`, the listener's stats then): the listener's
/// `frames_with_audio` grows by at most the drain allowance, then not at all for the next
/// second, while it keeps playing (silence); its recording's last 800 ms are digital silence.
/// `clock` is any session whose device keeps capturing. Stops the listener.
async fn assert_goes_silent(
    what: &str,
    listener: MediaSession,
    mut dev: VirtualDevice,
    at_stop: MediaStats,
    clock: &MediaSession,
) {
    let allowance = drain_allowance(&at_stop);
    let start = clock.stats().frames_captured;
    // One second of the speaker's audio: longer than any allowance (≤ 500 ms jitter target).
    frames_later(clock, start, 50).await;
    let settled = listener.stats();
    eprintln!(
        "{what}: {} frames drained (allowance {allowance})",
        settled.frames_with_audio - at_stop.frames_with_audio
    );
    assert!(
        settled.frames_with_audio <= at_stop.frames_with_audio + allowance,
        "{what}: at most {allowance} frames drain after the stop ({} → {}): {settled:#?}",
        at_stop.frames_with_audio,
        settled.frames_with_audio
    );
    frames_later(clock, start, 100).await;
    let later = listener.stats();
    listener.stop().await;
    assert_eq!(
        later.frames_with_audio, settled.frames_with_audio,
        "{what}: nothing more is heard once drained: {later:#?}"
    );
    assert!(
        later.frames_played >= settled.frames_played + 25,
        "{what}: the listener kept playing (silence): {later:#?}"
    );
    let rec = dev.take_recording();
    let end = tail(&rec, 800);
    assert!(
        peak(end) <= 16,
        "{what}: the last 800 ms of the listener's recording are silent (peak {})",
        peak(end)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_speakers_at_once_are_both_heard() {
    let ts = TestServer::start(Backend::Sqlite).await;
    let maya = ts.admin("maya").await;
    let room = room_with(&maya).await;
    let host = ts.join(&maya, &room).await;
    let budi = ts.member(&maya, "budi").await;
    let citra = ts.member(&maya, "citra").await;
    let guest = ts.join(&budi, &room).await;
    bring_on_stage(&host, &guest).await;
    let ear = ts.join(&citra, &room).await;
    let mut ear_dev = device(Source::Silence);
    let ear_media = MediaSession::start(&ear, &mut ear_dev, listener_opts())
        .await
        .expect("listener media");

    // Two distinct signals at once: 440 Hz from the host, 1 kHz from the guest.
    let mut host_dev = device(Source::sine(440.0, 0.25));
    let host_media = MediaSession::start(&host, &mut host_dev, MediaOptions::default())
        .await
        .expect("host media");
    let mut guest_dev = device(Source::sine(1_000.0, 0.25));
    let guest_media = MediaSession::start(&guest, &mut guest_dev, MediaOptions::default())
        .await
        .expect("guest media");

    // Both streams arrive, each on its own slot, for 2 s at least.
    let heard = ear_media
        .wait_for(PATIENCE, |s| {
            s.slots.len() >= 2 && s.slots.iter().filter(|x| x.packets >= 100).count() >= 2
        })
        .await
        .unwrap_or_else(|s| panic!("both speakers did not arrive: {s:#?}"));
    assert_eq!(heard.slots.len(), 2, "{heard:#?}");
    ear_media.stop().await;
    host_media.stop().await;
    guest_media.stop().await;

    // The last second, in two 500 ms windows (220 and 500 periods of the tones): both tones
    // carry a clear share of the energy, and together nearly all of it (the mix is the sum).
    let rec = ear_dev.take_recording();
    for (i, w) in tail(&rec, 1_000).chunks_exact(SR / 2).enumerate() {
        let (low, high) = (tone_share(w, 440.0), tone_share(w, 1_000.0));
        eprintln!("window {i}: 440 Hz {low:.3}, 1 kHz {high:.3}");
        assert!(
            low >= 0.25 && high >= 0.25 && low + high >= 0.8,
            "window {i}: both speakers in the mix (440 Hz share {low:.3}, 1 kHz share {high:.3})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speaker_moved_to_the_audience_stops_being_heard() {
    let ts = TestServer::start(Backend::Sqlite).await;
    let maya = ts.admin("maya").await;
    let room = room_with(&maya).await;
    let host = ts.join(&maya, &room).await;
    let budi = ts.member(&maya, "budi").await;
    let citra = ts.member(&maya, "citra").await;
    let speaker = ts.join(&budi, &room).await;
    bring_on_stage(&host, &speaker).await;
    let ear = ts.join(&citra, &room).await;
    let mut ear_dev = device(Source::Silence);
    let ear_media = MediaSession::start(&ear, &mut ear_dev, listener_opts())
        .await
        .expect("listener media");
    // The speaker's client keeps sending whatever the room says: only the server can
    // silence it.
    let (_mic, mic_media) = forcing_tone(&speaker).await;
    ear_media
        .wait_for(PATIENCE, |s| s.frames_with_audio >= 50)
        .await
        .unwrap_or_else(|s| panic!("the speaker is heard first: {s:#?}"));

    let dropped_before = ts.metric(DROPPED_NOT_ON_STAGE).await;
    host.move_to_audience(speaker.me())
        .await
        .expect("move_to_audience is acknowledged");
    // The `ok` goes out after the SFU's audible set changed: from here on nothing is forwarded.
    let at_ack = ear_media.stats();
    let sent_at_ack = mic_media.stats().packets_sent;
    assert_goes_silent(
        "moved to the audience",
        ear_media,
        ear_dev,
        at_ack,
        &mic_media,
    )
    .await;

    // The client went on sending the whole time; the server dropped all of it.
    let sent = mic_media.stats().packets_sent - sent_at_ack;
    assert!(sent >= 90, "the speaker kept sending: {sent} packets");
    assert_sfu_dropped(&ts, dropped_before, sent, "what the demoted speaker sent").await;
    mic_media.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mute_silences_at_once_locally_and_by_a_moderator() {
    let ts = TestServer::start(Backend::Sqlite).await;
    let maya = ts.admin("maya").await;
    let room = room_with(&maya).await;
    let host = ts.join(&maya, &room).await;
    let budi = ts.member(&maya, "budi").await;
    let speaker = ts.join(&budi, &room).await;
    bring_on_stage(&host, &speaker).await;
    // Two listeners: one for the local mute, one for the moderator's mute (a stopped
    // listener hands its recording over).
    let mut ears = listening(&ts, &maya, &room, &["citra", "dewi"]).await;
    let (_mic, mic_media) = forcing_tone(&speaker).await;
    let (_s2, dev2, ear2) = ears.pop().unwrap();
    let (_s1, dev1, ear1) = ears.pop().unwrap();
    for ear in [&ear1, &ear2] {
        ear.wait_for(PATIENCE, |s| s.frames_with_audio >= 50)
            .await
            .unwrap_or_else(|s| panic!("the speaker is heard first: {s:#?}"));
    }

    // 1. Local mute: no packet leaves from the next frame on; the first listener goes silent.
    mic_media.set_muted(true);
    let at_mute = ear1.stats();
    let sent = mic_media.stats().packets_sent;
    assert_goes_silent("local mute", ear1, dev1, at_mute, &mic_media).await;
    assert!(
        mic_media.stats().packets_sent <= sent + 1,
        "nothing sent while locally muted: {:#?}",
        mic_media.stats()
    );

    // Unmuted: heard again.
    mic_media.set_muted(false);
    let before = ear2.stats().frames_with_audio;
    ear2.wait_for(PATIENCE, |s| s.frames_with_audio >= before + 25)
        .await
        .unwrap_or_else(|s| panic!("heard again after unmuting: {s:#?}"));

    // 2. A moderator mutes the speaker. Its client keeps sending (force_send): the server
    // drops it from the `ok` on.
    let dropped_before = ts.metric(DROPPED_NOT_ON_STAGE).await;
    host.mute(speaker.me()).await.expect("mute is acknowledged");
    let at_ack = ear2.stats();
    let sent_at_ack = mic_media.stats().packets_sent;
    assert_goes_silent("muted by a moderator", ear2, dev2, at_ack, &mic_media).await;
    let sent = mic_media.stats().packets_sent - sent_at_ack;
    assert!(sent >= 90, "the muted client kept sending: {sent} packets");
    assert_sfu_dropped(&ts, dropped_before, sent, "the muted speaker's audio").await;
    mic_media.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speaker_who_leaves_is_removed_from_every_mix() {
    let ts = TestServer::start(Backend::Sqlite).await;
    let maya = ts.admin("maya").await;
    let room = room_with(&maya).await;
    let host = ts.join(&maya, &room).await;
    let budi = ts.member(&maya, "budi").await;
    let guest = ts.join(&budi, &room).await;
    bring_on_stage(&host, &guest).await;
    let ears = listening(&ts, &maya, &room, &["citra", "dewi"]).await;
    // The host (440 Hz) stays; the guest (1 kHz) leaves.
    let mut host_dev = device(Source::sine(440.0, 0.25));
    let host_media = MediaSession::start(&host, &mut host_dev, MediaOptions::default())
        .await
        .expect("host media");
    let mut guest_dev = device(Source::sine(1_000.0, 0.25));
    let guest_media = MediaSession::start(&guest, &mut guest_dev, MediaOptions::default())
        .await
        .expect("guest media");
    for (_, _, m) in &ears {
        m.wait_for(PATIENCE, |s| {
            s.slots.iter().filter(|x| x.packets >= 50).count() >= 2
        })
        .await
        .unwrap_or_else(|s| panic!("both speakers heard first: {s:#?}"));
    }

    guest.leave(false).await.expect("leave is acknowledged");
    // The guest's slot stops receiving on every listener; the host's keeps going. (The
    // guest's client is not even stopped yet: the server dropped its peer.)
    let at_leave: Vec<MediaStats> = ears.iter().map(|(_, _, m)| m.stats()).collect();
    let start = host_media.stats().frames_captured;
    frames_later(&host_media, start, 50).await;
    let settled: Vec<MediaStats> = ears.iter().map(|(_, _, m)| m.stats()).collect();
    frames_later(&host_media, start, 100).await;
    for (i, (_, _, m)) in ears.iter().enumerate() {
        let later = m.stats();
        let packets = |s: &MediaStats, ssrc: u32| {
            s.slots
                .iter()
                .find(|x| x.ssrc == ssrc)
                .map_or(0, |x| x.packets)
        };
        let growing: Vec<u64> = at_leave[i]
            .slots
            .iter()
            .map(|x| packets(&later, x.ssrc) - packets(&settled[i], x.ssrc))
            .collect();
        assert_eq!(
            growing.iter().filter(|&&n| n >= 25).count(),
            1,
            "listener {i}: exactly one stream (the host's) still arrives, per slot {growing:?}: {later:#?}"
        );
    }
    guest_media.stop().await;

    // The last 800 ms of every listener's recording: the host's tone only (352 and 800
    // periods of the tones in the window).
    for (session, mut dev, m) in ears {
        m.stop().await;
        let rec = dev.take_recording();
        let w = tail(&rec, 800);
        let (low, high) = (tone_share(w, 440.0), tone_share(w, 1_000.0));
        eprintln!("after the leave: 440 Hz {low:.3}, 1 kHz {high:.3}");
        assert!(
            high < 0.01 && low >= 0.8,
            "the guest is gone from the mix, the host is not (440 Hz {low:.3}, 1 kHz {high:.3})"
        );
        drop(session);
    }
    host_media.stop().await;
}
