//! Recorded rooms, replays and clips end to end: the real server and SFU, real WebRTC
//! clients with virtual devices, SQLite and PostgreSQL.
//!
//! The replay's audio is checked against what the speaker sent (correlation after
//! alignment); muted speakers and listeners whose modified clients send anyway must never
//! be in it. Nothing here measures time: waits have generous upper bounds.

use ruang_client::media::ruang_media;
use ruang_client::media::{MediaOptions, MediaSession};
use ruang_client::{ApiClient, ClientError};
use ruang_media::analysis::rms;
use ruang_media::device::Source;
use ruang_media::signal::speech_like;
use ruang_proto::{CreateRoomRequest, ErrorCode, Replay, RoomKind};
use ruang_server::replay::mix::decode_ogg_opus;
use ruang_tests::media::{device, forcing_tone};
use ruang_tests::replay::tone_share;
use ruang_tests::{backends, Backend, TestServer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(40);
const SR: usize = 48_000;

async fn create(c: &ApiClient, kind: RoomKind, record: bool, clips: bool) -> String {
    c.create_room_with(&CreateRoomRequest {
        title: "Recorded".into(),
        kind,
        record,
        clips,
        e2ee: false,
    })
    .await
    .expect("room created")
    .id
    .as_str()
    .to_owned()
}

fn code_of(e: ClientError) -> ErrorCode {
    match e {
        ClientError::Api { code, .. } => code,
        other => panic!("not an API error: {other:?}"),
    }
}

/// Polls until the replay is made (the mix runs when the room ends).
async fn wait_replay(c: &ApiClient, room: &str, key: Option<&str>) -> Replay {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match c.replay(room, key).await {
            Ok(r) => return r,
            Err(e) if tokio::time::Instant::now() < deadline => {
                let code = code_of(e);
                assert!(
                    matches!(code, ErrorCode::ReplayNotReady | ErrorCode::NotFound),
                    "{code:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("no replay: {e}"),
        }
    }
}

/// Correlations of the chunks of `part` at `lag` in `output` (see `ruang_tests::replay`).
fn chunk_correlations(part: &[i16], output: &[i16], lag: isize) -> Vec<f64> {
    ruang_tests::replay::chunk_correlations(part, output, lag)
        .into_iter()
        .map(|(c, _)| c)
        .collect()
}

fn locate(part: &[i16], output: &[i16]) -> isize {
    ruang_tests::replay::locate(part, output).0
}

async fn recorded_room_holds_the_speaker_and_never_the_muted_or_listeners(backend: Backend) {
    let ts = TestServer::start(backend).await;
    let maya = ts.admin("maya").await;
    let room = create(&maya, RoomKind::Open, true, false).await;
    let moderator = ts.join(&maya, &room).await;
    let snap = moderator.state().room.room.expect("snapshot");
    assert!(snap.recording, "the snapshot says the room is recorded");

    let budi = ts.member(&maya, "budi").await;
    let citra = ts.member(&maya, "citra").await;
    let budi_s = ts.join(&budi, &room).await;
    let citra_s = ts.join(&citra, &room).await;
    // Budi is invited up (told it is recorded), then muted by the moderator.
    assert!(
        ruang_tests::invite_up(&moderator, &budi_s).await,
        "the invitation says the room is recorded"
    );
    moderator.mute(budi_s.me()).await.ok(); // already muted on arrival: a no-op is fine
                                            // Both modified clients send a 1 kHz tone whatever the room allows.
    let (_bd, budi_media) = forcing_tone(&budi_s).await;
    let (_cd, citra_media) = forcing_tone(&citra_s).await;
    for m in [&budi_media, &citra_media] {
        m.wait_for(PATIENCE, |s| s.packets_sent >= 50)
            .await
            .expect("the modified client sends");
    }

    // Maya: 2 s of speech, 3 s of silence (the tones go on), 2 s of speech.
    let a = speech_like(SR * 2, 3);
    let b = speech_like(SR * 2, 4);
    let mut reference = a.clone();
    reference.extend(std::iter::repeat_n(0i16, SR * 3));
    reference.extend(&b);
    let go = Arc::new(AtomicBool::new(false));
    let mut mic = device(Source::gated(reference.clone(), false, go.clone()));
    let media = MediaSession::start(&moderator, &mut mic, MediaOptions::default())
        .await
        .expect("speaker media");
    go.store(true, Ordering::Release);
    // 7 s of capture plus a little: every frame went out.
    media
        .wait_for(PATIENCE, |s| s.frames_captured >= 7 * 50 + 25)
        .await
        .expect("the speaker's device runs");

    // A clip now holds Maya's last seconds (anyone in a recorded room may clip; Citra is a
    // listener).
    let clip = citra
        .clip(&room)
        .await
        .expect("a listener clips a recorded room");
    assert!(clip.url.ends_with(&format!("/c/{}", clip.id)));
    let clip_bytes = reqwest::get(&clip.file)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let (clip_pcm, _) = decode_ogg_opus(&clip_bytes).expect("the clip decodes");
    let at = locate(&b, &clip_pcm);
    let cc = chunk_correlations(&b, &clip_pcm, at);
    eprintln!("clip: Maya's last 2 s at {at}: {cc:.2?}");
    assert!(
        cc.iter().filter(|&&c| c >= 0.85).count() + 1 >= cc.len(),
        "the clip holds Maya's last 2 s: {cc:.2?}"
    );

    // A chat message while recording goes into the replay; a deleted one does not.
    citra_s.send_chat("great point, Maya").await.expect("chat");
    budi_s
        .send_chat("this one gets deleted")
        .await
        .expect("chat");
    let seen = moderator
        .wait_for(PATIENCE, |s| {
            s.room
                .room
                .as_ref()
                .is_some_and(|r| r.chat_recent.len() >= 2)
        })
        .await
        .expect("the moderator sees the chat");
    let doomed = seen
        .room
        .room
        .unwrap()
        .chat_recent
        .into_iter()
        .find(|m| m.text == "this one gets deleted")
        .unwrap();
    moderator.delete_chat(doomed.id).await.expect("delete");
    // The recorder reads the chat on its 250 ms tick (see §14.2): let it see the deletion.
    tokio::time::sleep(Duration::from_secs(1)).await;

    media.stop().await;
    budi_media.stop().await;
    citra_media.stop().await;
    // Listening to a replay is not allowed while live.
    assert_eq!(
        code_of(maya.replay(&room, None).await.unwrap_err()),
        ErrorCode::ReplayNotReady
    );
    moderator.end_room().await.expect("end");
    let replay = wait_replay(&maya, &room, None).await;
    assert!(
        replay.speakers.iter().all(|s| s.name == "MAYA"),
        "only Maya spoke: {:?}",
        replay.speakers
    );
    assert!(replay.chapters.iter().any(|c| c.name == "MAYA"));
    assert_eq!(replay.chat.len(), 1, "{:?}", replay.chat);
    let said = &replay.chat[0];
    assert_eq!(said["text"], "great point, Maya");
    assert_eq!(said["author"]["handle"], "citra");
    let offset = said["offset_ms"].as_i64().expect("offset_ms");
    assert!(
        (0..60_000).contains(&offset),
        "timed from the recording's start: {offset}"
    );
    let bytes = maya.download_replay(&room, None).await.expect("download");
    assert_eq!(bytes.len() as u64, replay.bytes);
    let (pcm, tags) = decode_ogg_opus(&bytes).expect("the replay decodes");
    assert!(tags.iter().any(|t| t == "CHAPTER001NAME=MAYA"), "{tags:?}");
    assert!(
        tags.iter().any(|t| t.starts_with("CHAPTER001=00:00:0")),
        "{tags:?}"
    );

    // Where Maya's first part sits in the replay, then each part chunk by chunk.
    let first = locate(&a, &pcm);
    eprintln!("replay: Maya at {first}, {} samples", pcm.len());
    let ca = chunk_correlations(&a, &pcm, first);
    let cb = chunk_correlations(&b, &pcm, first + (SR * 5) as isize);
    eprintln!("chunk correlations: {ca:.2?} {cb:.2?}");
    let good = ca.iter().chain(&cb).filter(|&&c| c >= 0.85).count();
    assert!(
        good + 2 >= ca.len() + cb.len(),
        "Maya's voice is in the replay"
    );
    // The 3 s between: the muted speaker and the listener "spoke" all along; silence.
    let gap_start = first as usize + SR * 2 + SR / 4;
    let gap = &pcm[gap_start..gap_start + SR * 5 / 2];
    assert!(
        rms(gap) < 0.001,
        "silence between Maya's parts: rms {}",
        rms(gap)
    );
    assert!(rms(&pcm[first as usize..first as usize + SR * 2]) > 0.01);
    assert!(
        tone_share(&pcm, 1_000.0) < 0.01,
        "the forced 1 kHz tone is nowhere in the replay"
    );
    assert!(
        ts.metric("ruang_sfu_packets_dropped_not_on_stage_total")
            .await
            >= 100.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_room_replay_is_the_speakers_audio_only() {
    for b in backends() {
        recorded_room_holds_the_speaker_and_never_the_muted_or_listeners(b).await;
    }
}

async fn access_range_and_delete(backend: Backend) {
    let ts = TestServer::start(backend).await;
    let maya = ts.admin("maya").await;
    let budi = ts.member(&maya, "budi").await;
    let dewi = ts.member(&maya, "dewi").await;
    let room = create(&maya, RoomKind::Closed, true, false).await;
    let key = maya.room(&room, None).await.unwrap().link;
    let key = key
        .split("?t=")
        .nth(1)
        .expect("closed link has its key")
        .to_owned();
    maya.grant_access(&room, "budi").await.unwrap();
    let moderator = ts.join(&maya, &room).await;
    let mut mic = device(Source::samples(speech_like(SR * 2, 9), false));
    let media = MediaSession::start(&moderator, &mut mic, MediaOptions::default())
        .await
        .unwrap();
    media
        .wait_for(PATIENCE, |s| s.packets_sent >= 80)
        .await
        .expect("speaks");
    media.stop().await;
    moderator.end_room().await.unwrap();
    let replay = wait_replay(&maya, &room, None).await;
    assert!(
        replay.url.contains("?t="),
        "closed rooms' file URL carries the key"
    );

    // Closed: the host, members let in, and the link's key; nobody else.
    budi.replay(&room, None)
        .await
        .expect("a member let in sees it");
    assert_eq!(
        code_of(dewi.replay(&room, None).await.unwrap_err()),
        ErrorCode::NotFound
    );
    assert_eq!(
        code_of(dewi.download_replay(&room, None).await.unwrap_err()),
        ErrorCode::NotFound
    );
    assert!(dewi.user_replays("maya").await.unwrap().is_empty());
    assert_eq!(budi.user_replays("maya").await.unwrap().len(), 1);
    assert_eq!(
        maya.user_replays("maya").await.unwrap()[0].id.as_str(),
        room
    );
    ts.anon()
        .replay(&room, Some(&key))
        .await
        .expect("the link's key opens it");
    assert_eq!(
        code_of(ts.anon().replay(&room, Some("0000")).await.unwrap_err()),
        ErrorCode::NotFound
    );
    // The /r/ page plays it with the key, and hides it without.
    let page = reqwest::get(format!("{}/r/{room}?t={key}", ts.url))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("<audio id=\"player\""), "{html}");
    assert!(html.contains("data-start-ms=\""), "{html}");
    assert!(html.contains("replay.js"));
    let hidden = reqwest::get(format!("{}/r/{room}", ts.url)).await.unwrap();
    assert_eq!(hidden.status(), 404);

    // Range requests, well-formed and not.
    let http = reqwest::Client::new();
    let file = format!("{}/media/replays/{room}.ogg?t={key}", ts.url);
    let get = |range: Option<&str>| {
        let mut r = http.get(&file);
        if let Some(v) = range {
            r = r.header("range", v);
        }
        r.send()
    };
    let whole = get(None).await.unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    let whole = whole.bytes().await.unwrap();
    assert_eq!(whole.len() as u64, replay.bytes);
    let part = get(Some("bytes=10-109")).await.unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 10-109/{}", whole.len()).as_str()
    );
    assert_eq!(part.bytes().await.unwrap(), whole.slice(10..110));
    let tail = get(Some("bytes=-20")).await.unwrap();
    assert_eq!(tail.status(), 206);
    assert_eq!(tail.bytes().await.unwrap(), whole.slice(whole.len() - 20..));
    let past = get(Some(&format!("bytes={}-", whole.len()))).await.unwrap();
    assert_eq!(past.status(), 416);
    assert_eq!(
        past.headers()["content-range"],
        format!("bytes */{}", whole.len()).as_str()
    );
    for junk in [
        "bytes=abc",
        "bytes=9-2",
        "bytes=0-1,4-5",
        "pages=1-2",
        "bytes=--1",
        "bytes=0-x",
    ] {
        let r = get(Some(junk)).await.unwrap();
        assert_eq!(r.status(), 200, "{junk:?}");
        assert_eq!(r.bytes().await.unwrap().len(), whole.len());
    }

    // Delete: not by a member let in; by the host, then it is gone everywhere.
    assert_eq!(
        code_of(budi.delete_replay(&room).await.unwrap_err()),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code_of(dewi.delete_replay(&room).await.unwrap_err()),
        ErrorCode::NotFound
    );
    maya.delete_replay(&room)
        .await
        .expect("the host deletes it");
    assert_eq!(
        code_of(maya.replay(&room, None).await.unwrap_err()),
        ErrorCode::NotFound
    );
    assert_eq!(get(None).await.unwrap().status(), 404);
    let on_disk = ts
        .dir
        .path()
        .join("media/replays")
        .join(format!("{room}.ogg"));
    assert!(!on_disk.exists(), "the file is gone");
    assert!(maya.user_replays("maya").await.unwrap().is_empty());
    let ended = reqwest::get(format!("{}/r/{room}?t={key}", ts.url))
        .await
        .unwrap();
    assert_eq!(ended.status(), 410, "back to the has-ended page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_access_ranges_and_delete() {
    for b in backends() {
        access_range_and_delete(b).await;
    }
}

async fn clips_and_recording_commands(backend: Backend) {
    let ts = TestServer::start(backend).await;
    let maya = ts.admin("maya").await;
    let budi = ts.member(&maya, "budi").await;
    // Clips allowed, not recorded: the host may clip, a listener may not.
    let room = create(&maya, RoomKind::Open, false, true).await;
    let summary = maya.room(&room, None).await.unwrap();
    assert!(summary.clips && !summary.recording);
    let moderator = ts.join(&maya, &room).await;
    let listener = ts.join(&budi, &room).await;
    assert!(
        listener.state().room.room.unwrap().clips,
        "everyone is told"
    );
    let mut mic = device(Source::samples(speech_like(SR * 3, 2), true));
    let media = MediaSession::start(&moderator, &mut mic, MediaOptions::default())
        .await
        .unwrap();
    media
        .wait_for(PATIENCE, |s| s.packets_sent >= 60)
        .await
        .expect("speaks");
    assert_eq!(
        code_of(budi.clip(&room).await.unwrap_err()),
        ErrorCode::Forbidden
    );
    let clip = maya.clip(&room).await.expect("the host clips");
    let page = reqwest::get(&clip.url).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("media-src 'self'"));
    let html = page.text().await.unwrap();
    assert!(html.contains("og:audio") && html.contains("<audio id=\"player\""));
    let (pcm, _) = decode_ogg_opus(
        &reqwest::get(&clip.file)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(rms(&pcm) > 0.01, "the clip has the host's voice");
    // Rate limit: three a minute per member.
    maya.clip(&room).await.unwrap();
    maya.clip(&room).await.unwrap();
    assert_eq!(
        code_of(maya.clip(&room).await.unwrap_err()),
        ErrorCode::RateLimited
    );
    assert_eq!(
        reqwest::get(format!("{}/c/nope", ts.url))
            .await
            .unwrap()
            .status(),
        404
    );

    // Recording started live by the moderator: announced to everyone; not by a listener.
    assert_eq!(
        code_of(listener.set_recording(true).await.unwrap_err()),
        ErrorCode::Forbidden
    );
    moderator
        .set_recording(true)
        .await
        .expect("start recording");
    listener
        .wait_for(PATIENCE, |s| {
            s.room.room.as_ref().is_some_and(|r| r.recording)
        })
        .await
        .expect("the listener is told");
    assert!(maya.room(&room, None).await.unwrap().recording);
    // A plain room without clips: even the host cannot clip it.
    let plain = create(&maya, RoomKind::Open, false, false).await;
    let _plain_s = ts.join(&maya, &plain).await;
    assert_eq!(
        code_of(maya.clip(&plain).await.unwrap_err()),
        ErrorCode::Forbidden
    );
    media.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clips_rate_limits_and_live_recording() {
    for b in backends() {
        clips_and_recording_commands(b).await;
    }
}
