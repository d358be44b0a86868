//! End-to-end encrypted rooms through the real server (issue 17, the server's part): the
//! room option, and the MLS relay. Real MLS groups (`ruang-e2ee`, the clients' code) are
//! driven only by what the server relays: key packages reach the moderators, one commit is
//! taken per epoch, welcomes reach the members they add. The members then agree on the
//! epoch, the safety code and the media key (an SFrame frame from one decrypts at another),
//! and a removed member is left behind: the room and the relay refuse it, and a frame sent
//! after the removal does not decrypt with the key it kept.

use base64::Engine as _;
use ruang_client::e2ee::{E2eePhase, E2eeStatus, KeyAgent};
use ruang_client::media::ruang_media;
use ruang_client::media::{MediaOptions, MediaSession};
use ruang_client::{ApiClient, ClientError, RoomSession};
use ruang_e2ee::{Device, MediaCrypto, Processed, RoomGroup};
use ruang_media::device::{Source, VirtualDevice};
use ruang_media::signal::speech_like;
use ruang_proto::{CreateRoomRequest, ErrorCode, MlsCommitRequest, MlsState, RoomKind};
use ruang_tests::media::{chunked_correlation, device, listener_opts};
use ruang_tests::{Backend, TestServer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(20);
const SR: usize = 48_000;

/// Everything this test binary's server and clients log, at every level of the project's
/// crates: searched for key material.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = logs.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("ruang_server=trace,ruang_client=trace,ruang_e2ee=trace,info")
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .try_init();
        logs
    })
    .clone()
}

/// Fails if any of `secrets` (byte strings: handshakes, key packages, their base64) appears
/// in what was logged.
fn assert_not_logged(secrets: &[&[u8]]) {
    let logs = captured_logs();
    let logs = logs.lock().unwrap();
    assert!(!logs.is_empty(), "the capture works");
    for secret in secrets {
        assert!(
            !logs.windows(secret.len()).any(|w| w == *secret),
            "key material in the logs"
        );
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64 from the server")
}

fn code_of<T: std::fmt::Debug>(r: Result<T, ClientError>) -> ErrorCode {
    match r {
        Err(ClientError::Api { code, .. }) => code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn request(title: &str, kind: RoomKind, record: bool) -> CreateRoomRequest {
    CreateRoomRequest {
        title: title.into(),
        kind,
        record,
        clips: false,
        e2ee: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_agree_on_keys_through_the_relay_and_a_removed_member_is_left_behind() {
    let logs = captured_logs();
    let ts = TestServer::start(Backend::Sqlite).await;
    let maya = ts.admin("maya").await;
    let budi = ts.member(&maya, "budi").await;
    let citra = ts.member(&maya, "citra").await;

    // The option: closed rooms only, and never recorded by the server.
    let open = maya
        .create_room_with(&request("Open", RoomKind::Open, false))
        .await;
    assert_eq!(code_of(open), ErrorCode::InvalidField);
    let recorded = maya
        .create_room_with(&request("Taped", RoomKind::Closed, true))
        .await;
    assert_eq!(code_of(recorded), ErrorCode::Encrypted);
    let summary = maya
        .create_room_with(&request("Sealed", RoomKind::Closed, false))
        .await
        .expect("an encrypted closed room");
    assert!(summary.e2ee);
    let room = summary.id.as_str().to_owned();
    maya.grant_access(&room, "budi").await.unwrap();
    maya.grant_access(&room, "citra").await.unwrap();

    let m = ts.join(&maya, &room).await;
    let b = ts.join(&budi, &room).await;
    let c = ts.join(&citra, &room).await;
    let maya_id = m.me().clone();
    let budi_id = b.me().clone();
    let citra_id = c.me().clone();
    assert_eq!(
        m.state().room.room.unwrap().e2ee,
        Some(MlsState::default()),
        "everyone is told the room is encrypted, at epoch 0"
    );
    // The server never records it, and no one may clip it.
    assert_eq!(code_of(m.set_recording(true).await), ErrorCode::Encrypted);
    assert_eq!(code_of(maya.clip(&room).await), ErrorCode::Forbidden);

    // Devices: the host's creates the group; the others ask to be added.
    let maya_dev = Device::new(maya_id.as_str()).unwrap();
    let budi_dev = Device::new(budi_id.as_str()).unwrap();
    let citra_dev = Device::new(citra_id.as_str()).unwrap();
    let mut maya_group = RoomGroup::create(&maya_dev, &room).unwrap();
    b.send_key_package(b64(&budi_dev.key_package().unwrap()))
        .await
        .unwrap();
    c.send_key_package(b64(&citra_dev.key_package().unwrap()))
        .await
        .unwrap();
    assert_eq!(
        code_of(b.send_key_package("not base64!".into()).await),
        ErrorCode::InvalidField
    );
    let st = m
        .wait_for(PATIENCE, |s| {
            s.room
                .room
                .as_ref()
                .and_then(|r| r.e2ee.as_ref())
                .is_some_and(|e| e.pending.len() == 2)
        })
        .await
        .expect("the moderator sees both key packages");
    assert!(
        b.state()
            .room
            .room
            .unwrap()
            .e2ee
            .unwrap()
            .pending
            .is_empty(),
        "only moderators see who waits"
    );
    let pending = st.room.room.unwrap().e2ee.unwrap().pending;
    let adds: Vec<(String, Vec<u8>)> = pending
        .iter()
        .map(|k| (k.user.as_str().to_owned(), unb64(&k.key_package)))
        .collect();

    // Only a moderator commits.
    let hs = maya_group.commit(&maya_dev, &adds, &[]).unwrap();
    let add_both = MlsCommitRequest {
        epoch: 0,
        commit: b64(&hs.commit),
        welcome: hs.welcome.as_deref().map(b64),
        added: vec![budi_id.clone(), citra_id.clone()],
        removed: vec![],
    };
    assert_eq!(
        code_of(budi.mls_commit(&room, &add_both).await),
        ErrorCode::Forbidden
    );
    assert_eq!(maya.mls_commit(&room, &add_both).await.unwrap(), 1);
    assert_eq!(maya_group.confirm(&maya_dev).unwrap(), 1);
    // The same epoch again: someone else's commit was taken first.
    assert_eq!(
        code_of(maya.mls_commit(&room, &add_both).await),
        ErrorCode::StaleEpoch
    );

    // The added devices are told, fetch their welcome and join.
    let mut groups = Vec::new();
    for (session, client, dev) in [(&b, &budi, &budi_dev), (&c, &citra, &citra_dev)] {
        session
            .wait_for(PATIENCE, |s| s.room.mls_welcome == Some(1))
            .await
            .expect("mls_welcome");
        let w = client.mls_welcome(&room).await.unwrap();
        assert_eq!(w.epoch, 1);
        groups.push(RoomGroup::join(dev, &unb64(&w.welcome)).unwrap());
    }
    let (mut budi_group, citra_group) = (groups.remove(0), groups.remove(0));
    for g in [&budi_group, &citra_group] {
        assert_eq!(g.epoch(), 1);
        assert_eq!(g.safety_code(), maya_group.safety_code());
    }
    let maya_key = maya_group.epoch_key(&maya_dev).unwrap();
    let mut maya_media = MediaCrypto::new();
    maya_media.install_key(&maya_key).unwrap();
    let mut budi_media = MediaCrypto::new();
    budi_media.install(&budi_group, &budi_dev).unwrap();
    let mut citra_media = MediaCrypto::new();
    citra_media.install(&citra_group, &citra_dev).unwrap();
    let opus = [0x78u8, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07];
    let (mut sealed, mut opened) = (Vec::new(), Vec::new());
    maya_media.encrypt(&opus, &mut sealed).unwrap();
    assert_ne!(&sealed[..], &opus[..]);
    budi_media.decrypt(&sealed, &mut opened).unwrap();
    assert_eq!(opened, opus, "budi hears maya");
    citra_media.decrypt(&sealed, &mut opened).unwrap();
    assert_eq!(opened, opus, "citra hears maya");

    // Citra is removed from the room, then from the group.
    m.remove(&citra_id).await.unwrap();
    let hs = maya_group
        .commit(&maya_dev, &[], &[citra_id.as_str().to_owned()])
        .unwrap();
    let epoch = maya
        .mls_commit(
            &room,
            &MlsCommitRequest {
                epoch: 1,
                commit: b64(&hs.commit),
                welcome: None,
                added: vec![],
                removed: vec![citra_id.clone()],
            },
        )
        .await
        .unwrap();
    assert_eq!(epoch, 2);
    maya_group.confirm(&maya_dev).unwrap();
    // Budi is told, fetches the commit and follows.
    b.wait_for(PATIENCE, |s| {
        s.room
            .room
            .as_ref()
            .and_then(|r| r.e2ee.as_ref())
            .is_some_and(|e| e.epoch == 2)
    })
    .await
    .expect("mls_commit reaches the members");
    let relayed = budi.mls_commit_at(&room, 2).await.unwrap();
    assert_eq!(
        (relayed.by.clone(), relayed.removed.clone()),
        (maya_id.clone(), vec![citra_id.clone()])
    );
    assert_eq!(
        budi_group
            .process(&budi_dev, &unb64(&relayed.commit))
            .unwrap(),
        Processed::Epoch(2)
    );
    assert_eq!(budi_group.safety_code(), maya_group.safety_code());
    budi_media.install(&budi_group, &budi_dev).unwrap();
    // The relay refuses the removed member.
    assert_eq!(
        code_of(citra.mls_commit_at(&room, 2).await),
        ErrorCode::NotInRoom
    );
    // After the removal: budi decrypts maya's frame, citra's old key does not.
    maya_media
        .install_key(&maya_group.epoch_key(&maya_dev).unwrap())
        .unwrap();
    maya_media.encrypt(&opus, &mut sealed).unwrap();
    budi_media.decrypt(&sealed, &mut opened).unwrap();
    assert_eq!(opened, opus);
    assert!(
        citra_media.decrypt(&sealed, &mut opened).is_err(),
        "the removed member's keys open nothing sent after its removal"
    );

    // What the server keeps on disk has none of it: the database files (and everything else
    // in its data directory) hold no key package and no commit, raw or base64.
    let mut stored = Vec::new();
    let mut dirs = vec![ts.dir.path().to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                stored.extend_from_slice(&bytes);
            }
        }
    }
    assert!(stored.len() > 10_000, "the database is there");
    let key_package = unb64(&pending[0].key_package);
    for needle in [
        &hs.commit[hs.commit.len() - 48..],
        &key_package[key_package.len() - 48..],
        &b64(&hs.commit).as_bytes()[..48],
        &pending[0].key_package.as_bytes()[..48],
    ] {
        assert!(
            !stored.windows(needle.len()).any(|w| w == needle),
            "handshakes and key packages are never written"
        );
    }
    // Nor logged, by the server or the clients, at any level.
    assert!(logs.lock().unwrap().len() > 1_000, "the server logged");
    assert_not_logged(&[
        &hs.commit[hs.commit.len() - 48..],
        &key_package[key_package.len() - 48..],
        &b64(&hs.commit).as_bytes()[..48],
        &pending[0].key_package.as_bytes()[..48],
    ]);
}

/// A member of an encrypted room with its device's key agent.
struct Member {
    session: RoomSession,
    agent: KeyAgent,
}

async fn enter(ts: &TestServer, client: &ApiClient, room: &str) -> Member {
    let session = ts.join(client, room).await;
    let device = Device::new(session.me().as_str()).unwrap();
    let agent = KeyAgent::start(&session, client.clone(), device);
    Member { session, agent }
}

async fn at_epoch(m: &Member, epoch: u64) -> E2eeStatus {
    m.agent
        .wait_for(PATIENCE, |s| {
            s.phase == E2eePhase::Member && s.epoch.is_some_and(|e| e >= epoch)
        })
        .await
        .unwrap_or_else(|s| panic!("not in the group at epoch {epoch}: {s:?}"))
}

/// Waits until every one of `members` is in the group at the same epoch with `devices`
/// devices, and checks they all show the same safety code. Returns the host's status.
async fn settled(members: &[&Member], devices: u32) -> E2eeStatus {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let all: Vec<E2eeStatus> = members.iter().map(|m| m.agent.status()).collect();
        let same = all.iter().all(|s| {
            s.phase == E2eePhase::Member && s.epoch == all[0].epoch && s.members == devices
        });
        if same {
            for s in &all {
                assert_eq!(s.safety_code, all[0].safety_code, "one epoch, one code");
            }
            return all[0].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the devices did not agree: {all:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts listen-only media keyed by `m`'s agent.
async fn listen(m: &Member) -> (VirtualDevice, MediaSession) {
    let mut dev = device(Source::Silence);
    let media = MediaSession::start(&m.session, &mut dev, listener_opts())
        .await
        .expect("listener media starts");
    m.agent.attach(
        media
            .e2ee_keys()
            .expect("an encrypted room's media is encrypted"),
    );
    (dev, media)
}

/// Opens the SFrame payloads the SFU forwarded (a RED packet: its primary block) with
/// `crypto`, in order: the Opus frames it could open, and how many it could not.
fn open_tapped(tapped: &[Arc<[u8]>], crypto: &mut MediaCrypto) -> (Vec<Vec<u8>>, usize) {
    let mut frames = Vec::new();
    let mut refused = 0;
    let mut out = Vec::new();
    for payload in tapped {
        let primary = ruang_media::red::parse(payload)
            .ok()
            .map(|red| red.primary.payload.to_vec());
        if crypto.decrypt(payload, &mut out).is_ok()
            || primary.is_some_and(|p| crypto.decrypt(&p, &mut out).is_ok())
        {
            frames.push(out.clone());
        } else {
            refused += 1;
        }
    }
    (frames, refused)
}

/// Decodes packets as Opus, in order (a packet that does not decode gives silence).
fn decode(packets: &[Vec<u8>]) -> (Vec<i16>, usize) {
    let mut decoder = ruang_media::codec::OpusDecoder::new().unwrap();
    let mut pcm = Vec::new();
    let mut failed = 0;
    let mut frame = vec![0i16; ruang_media::FRAME_SAMPLES];
    for p in packets {
        if decoder.decode(p, &mut frame).is_err() {
            failed += 1;
            frame.fill(0);
        }
        pcm.extend_from_slice(&frame);
    }
    (pcm, failed)
}

fn drain(
    tap: &mut tokio::sync::mpsc::Receiver<ruang_server::sfu::TappedPayload>,
) -> Vec<Arc<[u8]>> {
    let mut out = Vec::new();
    while let Ok(t) = tap.try_recv() {
        out.push(t.payload);
    }
    out
}

/// The clients' own key agents through the real server and SFU: the host's device makes the
/// group and adds the members who ask; everyone reaches the same epoch and safety code; the
/// members hear the host's speech; what the SFU forwards is ciphertext that does not decode
/// as the speech; a removed member's last key opens nothing sent after its removal, while
/// the one who stays keeps hearing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_hear_each_other_and_the_server_forwards_only_ciphertext() {
    let _logs = captured_logs();
    let (tap_tx, mut tap) = tokio::sync::mpsc::channel(50_000);
    let ts = TestServer::start_with(Backend::Sqlite, |c| c.media_tap = Some(tap_tx)).await;
    let maya = ts.admin("maya").await;
    let budi = ts.member(&maya, "budi").await;
    let citra = ts.member(&maya, "citra").await;
    let room = maya
        .create_room_with(&request("Sealed", RoomKind::Closed, false))
        .await
        .expect("an encrypted room")
        .id
        .as_str()
        .to_owned();
    maya.grant_access(&room, "budi").await.unwrap();
    maya.grant_access(&room, "citra").await.unwrap();

    let host = enter(&ts, &maya, &room).await;
    let b = enter(&ts, &budi, &room).await;
    let c = enter(&ts, &citra, &room).await;
    let now = settled(&[&host, &b, &c], 3).await;
    let first = host.agent.status();
    // Settled means settled: nothing waits, so no further epoch (a committer that re-added
    // members its own commit had taken would rekey here).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(host.agent.status().epoch, now.epoch, "no needless rekey");
    assert!(first.commits >= 1, "the host's device made the group");
    assert_eq!(b.agent.status().commits, 0, "listeners never commit");

    let (mut budi_dev, budi_media) = listen(&b).await;
    let (mut citra_dev, citra_media) = listen(&c).await;
    let reference = speech_like(SR * 4, 17);
    let go = Arc::new(AtomicBool::new(false));
    // The reference, then more speech to go on with after a removal.
    let mut speech = reference.clone();
    speech.extend(speech_like(SR * 20, 23));
    let mut mic = device(Source::gated(speech, false, go.clone()));
    let host_media = MediaSession::start(&host.session, &mut mic, MediaOptions::default())
        .await
        .expect("the host's media starts");
    host.agent.attach(host_media.e2ee_keys().unwrap());
    drain(&mut tap);
    go.store(true, Ordering::Release);

    for m in [&budi_media, &citra_media] {
        m.wait_for(PATIENCE, |s| s.frames_with_audio >= 190)
            .await
            .unwrap_or_else(|s| panic!("encrypted audio did not arrive: {s:#?}"));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Citra's ears (her media stops here; budi's listens on and is checked at the end).
    citra_media.stop().await;
    assert_hears(&reference, citra_dev.take_recording(), "citra");
    let stats = budi_media.stats().e2ee.expect("encrypted media");
    assert!(stats.frames_decrypted >= 190, "{stats:?}");
    let sent = host_media.stats().e2ee.expect("encrypted media");
    assert!(sent.frames_encrypted >= 190, "{sent:?}");

    // The SFU's view: ciphertext. Decoded as Opus it is not the speech; opened with the
    // group's key (which the server never had) it is.
    let tapped = drain(&mut tap);
    assert!(tapped.len() >= 190, "the tap saw the forwarded packets");
    let (raw_pcm, _) = decode(&tapped.iter().map(|p| p.to_vec()).collect::<Vec<_>>());
    let raw = chunked_correlation(&reference, &raw_pcm);
    assert!(
        raw.iter().all(|&c| c < 0.5),
        "what the server forwards does not decode into the speech: {raw:.3?}"
    );
    let mut group_key = MediaCrypto::new();
    group_key
        .install_key(&host.agent.epoch_key().unwrap())
        .unwrap();
    let (frames, refused) = open_tapped(&tapped, &mut group_key);
    assert!(refused <= 2, "{refused} forwarded frames did not open");
    let (opened_pcm, failed) = decode(&frames);
    assert_eq!(failed, 0, "every opened frame is Opus");
    let opened = chunked_correlation(&reference, &opened_pcm);
    assert!(
        opened.iter().filter(|&&c| c >= 0.9).count() + 2 >= opened.len(),
        "opened with the group's key it is the speech: {opened:.3?}"
    );

    // A guest link: the host's device seals the epoch's key with the key in the link's
    // fragment; the server relays the envelope to everyone in the room (guests included),
    // and the fragment's key opens it into the key that opens the forwarded frames.
    let link = host
        .agent
        .guest_link(&format!("http://ruang.test/r/{room}?t=abc"));
    let (page, fragment) = link.split_once("#k=").expect("the key is in the fragment");
    assert_eq!(page, format!("http://ruang.test/r/{room}?t=abc"));
    let guest_key: [u8; 16] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(fragment)
        .unwrap()
        .try_into()
        .unwrap();
    let st = b
        .session
        .wait_for(PATIENCE, |s| {
            s.room
                .room
                .as_ref()
                .and_then(|r| r.e2ee.as_ref())
                .is_some_and(|e| e.guest_keys.iter().any(|k| Some(k.epoch) == now.epoch))
        })
        .await
        .unwrap_or_else(|s| {
            panic!(
                "the guest envelope is relayed: {:?} {:?}",
                s.room.room.and_then(|r| r.e2ee),
                host.agent.status()
            )
        });
    let sealed = st.room.room.unwrap().e2ee.unwrap().guest_keys;
    let envelope = unb64(&sealed.last().unwrap().envelope);
    let opened_key =
        ruang_e2ee::open_guest_envelope(&envelope, &guest_key, &room, now.epoch.unwrap())
            .expect("the link's key opens the envelope");
    let mut guest = MediaCrypto::new();
    guest.install_key(&opened_key).unwrap();
    let (frames, _) = open_tapped(&tapped, &mut guest);
    assert!(
        frames.len() + 2 >= tapped.len(),
        "a guest opens what members open"
    );
    assert!(
        ruang_e2ee::open_guest_envelope(&envelope, &[7u8; 16], &room, now.epoch.unwrap()).is_err(),
        "another key opens nothing"
    );

    // Citra is removed. Her device keeps its last key; the host's device rekeys at once.
    let citra_key = c.agent.epoch_key().unwrap();
    let citra_id = c.session.me().clone();
    let before = host.agent.status().epoch.unwrap();
    host.session.remove(&citra_id).await.unwrap();
    at_epoch(&host, before + 1).await;
    let after = settled(&[&host, &b], 2).await;
    assert_ne!(
        after.safety_code, now.safety_code,
        "a new epoch, a new code"
    );
    // The host talks on; frames in flight from before the new epoch settle first.
    let decrypted = budi_media.stats().e2ee.unwrap().frames_decrypted;
    tokio::time::sleep(Duration::from_millis(500)).await;
    drain(&mut tap);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = drain(&mut tap);
    assert!(later.len() >= 50, "the host still speaks: {}", later.len());
    let mut removed_key = MediaCrypto::new();
    removed_key.install_key(&citra_key).unwrap();
    let (opened_by_citra, _) = open_tapped(&later, &mut removed_key);
    assert!(
        opened_by_citra.is_empty(),
        "the removed member's key opens nothing sent after the removal"
    );
    let mut new_key = MediaCrypto::new();
    new_key
        .install_key(&host.agent.epoch_key().unwrap())
        .unwrap();
    let (opened_now, refused) = open_tapped(&later, &mut new_key);
    assert!(
        opened_now.len() + 2 >= later.len(),
        "the members' new key opens it ({refused} refused)"
    );
    budi_media
        .wait_for(PATIENCE, |s| {
            s.e2ee.is_some_and(|e| e.frames_decrypted >= decrypted + 50)
        })
        .await
        .expect("budi still hears the host");
    host_media.stop().await;
    budi_media.stop().await;
    assert_hears(&reference, budi_dev.take_recording(), "budi");

    // Budi comes on stage: a new epoch at once (fresh keys for the speakers), and the host
    // hears him through it.
    let on_stage_from = b.agent.status().epoch.unwrap();
    ruang_tests::invite_up(&host.session, &b.session).await;
    b.session.set_muted(false).await.unwrap();
    at_epoch(&b, on_stage_from + 1).await;
    let stage = settled(&[&host, &b], 2).await;
    assert!(
        stage.epoch > Some(on_stage_from),
        "the stage change rekeyed"
    );
    let his = speech_like(SR * 4, 31);
    let go = Arc::new(AtomicBool::new(false));
    let mut budi_mic = device(Source::gated(his.clone(), false, go.clone()));
    let budi_says = MediaSession::start(&b.session, &mut budi_mic, MediaOptions::default())
        .await
        .expect("budi's media starts");
    b.agent.attach(budi_says.e2ee_keys().unwrap());
    let mut host_ears = device(Source::Silence);
    let host_hears = MediaSession::start(&host.session, &mut host_ears, listener_opts())
        .await
        .expect("the host listens");
    host.agent.attach(host_hears.e2ee_keys().unwrap());
    go.store(true, Ordering::Release);
    host_hears
        .wait_for(PATIENCE, |s| s.frames_with_audio >= 190)
        .await
        .unwrap_or_else(|s| panic!("budi's encrypted audio did not reach the host: {s:#?}"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    budi_says.stop().await;
    host_hears.stop().await;
    assert_hears(&his, host_ears.take_recording(), "the host");
}

fn assert_hears(reference: &[i16], heard: Vec<i16>, who: &str) {
    let chunks = chunked_correlation(reference, &heard);
    let good = chunks.iter().filter(|&&c| c >= 0.9).count();
    assert!(
        good + 2 >= chunks.len(),
        "{who} hears the host through the encrypted path: {chunks:.3?}"
    );
}

/// The relay lives in the room's memory: after a server restart it starts again at epoch 0.
/// The devices notice, the host's makes the group anew, the member's asks to be added again,
/// and they agree again (same epoch, same safety code).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_server_restart_the_devices_make_the_group_again() {
    let mut ts = TestServer::start(Backend::Sqlite).await;
    let maya = ts.admin("maya").await;
    let budi = ts.member(&maya, "budi").await;
    let room = maya
        .create_room_with(&request("Sealed", RoomKind::Closed, false))
        .await
        .unwrap()
        .id
        .as_str()
        .to_owned();
    maya.grant_access(&room, "budi").await.unwrap();
    let host = enter(&ts, &maya, &room).await;
    let b = enter(&ts, &budi, &room).await;
    let before = settled(&[&host, &b], 2).await;
    let host_commits = host.agent.status().commits;

    ts.restart().await;
    // Both reconnect; the host's device commits a new group (a commit of its own), and the
    // two agree on it.
    host.agent
        .wait_for(PATIENCE, |s| s.commits > host_commits && s.members == 2)
        .await
        .unwrap_or_else(|s| panic!("the host's device made the group again: {s:?}"));
    let after = settled(&[&host, &b], 2).await;
    assert_ne!(
        after.safety_code, before.safety_code,
        "a new group, new keys"
    );
}
