//! Encrypted rooms through the FFI surface, as Kotlin drives it: blocking calls from plain
//! threads, listeners implemented here, the real server and SFU, the core's key agents.

mod common;

use common::server;
use ruang_ffi::{
    device_fingerprint, new_device_identity, AudioConfig, E2eeInfo, E2eeListener, E2eePhase, Room,
    RoomKind, RoomListener, RoomViewState, RuangClient, RuangError,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn client(url: &str) -> Arc<RuangClient> {
    common::client(url, false)
}

struct Ignore;
impl RoomListener for Ignore {
    fn on_state(&self, _: RoomViewState) {}
}

/// Every e2ee status the listener was given, in order.
#[derive(Default)]
struct Infos(Mutex<Vec<E2eeInfo>>);
impl E2eeListener for Infos {
    fn on_e2ee(&self, info: E2eeInfo) {
        self.0.lock().unwrap().push(info);
    }
}
impl Infos {
    fn all(&self) -> Vec<E2eeInfo> {
        self.0.lock().unwrap().clone()
    }
}

fn wait<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(30));
    }
}

/// A voice-like WAV (48 kHz mono): a 220 Hz buzz in syllable-long bursts.
fn speech_wav(dir: &std::path::Path, seconds: usize) -> String {
    let rate = 48_000;
    let samples: Vec<i16> = (0..rate * seconds)
        .map(|i| {
            let t = i as f64 / rate as f64;
            let syllable = if ((t * 4.0) as i64) % 4 == 3 {
                0.0
            } else {
                (std::f64::consts::PI * ((t * 4.0) % 1.0)).sin()
            };
            let buzz = (2.0 * std::f64::consts::PI * 220.0 * t).sin()
                + 0.5 * (2.0 * std::f64::consts::PI * 440.0 * t).sin();
            (9000.0 * syllable * buzz) as i16
        })
        .collect();
    let path = dir.join("speech.wav");
    ruang_client::media::ruang_media::wav::write_wav(&path, &samples).unwrap();
    path.to_string_lossy().into_owned()
}

fn member(room: &Room, devices: u32) -> Option<E2eeInfo> {
    let i = room.e2ee_info();
    (i.phase == E2eePhase::Member && i.members == devices).then_some(i)
}

fn decrypted(room: &Room) -> u64 {
    room.audio_stats().map_or(0, |s| s.frames_decrypted)
}

#[test]
fn an_encrypted_room_keys_every_media_session_the_surface_starts() {
    let (url, code, dir, _rt) = server();
    let moder = client(&url);
    moder.signup(code, "moder".into(), "Moder".into()).unwrap();
    let ann = client(&url);
    let invite = moder.invites().unwrap().remove(0).code;
    ann.signup(invite, "ann".into(), "Ann".into()).unwrap();

    // Encryption is for closed rooms only.
    match moder.create_room("Open".into(), RoomKind::Open, true) {
        Err(RuangError::InvalidInput { code, .. }) => assert_eq!(code, "invalid_field"),
        other => panic!("expected invalid_field, got {other:?}"),
    }
    let room = moder
        .create_room("Sealed".into(), RoomKind::Closed, true)
        .unwrap();
    assert!(room.e2ee);
    let token = room.link.split("?t=").nth(1).map(str::to_owned);

    // The identities the app keeps; the fingerprint the surface reports is theirs.
    let mod_identity = new_device_identity().unwrap();
    let fp = moder.set_device_identity(mod_identity.clone()).unwrap();
    assert_eq!(fp, device_fingerprint(mod_identity).unwrap());
    assert!(matches!(
        ann.set_device_identity(b"{}".to_vec()),
        Err(RuangError::InvalidInput { code, .. }) if code == "device_identity"
    ));
    let ann_identity = new_device_identity().unwrap();
    let ann_fp = ann.set_device_identity(ann_identity).unwrap();

    let mod_room = moder
        .join_room(room.id.clone(), token.clone(), Arc::new(Ignore))
        .unwrap();
    let mod_infos = Arc::new(Infos::default());
    mod_room.set_e2ee_listener(mod_infos.clone()).unwrap();
    let first = wait("the first status", 5, || mod_infos.all().first().cloned());
    assert!(first.encrypted);
    assert_eq!(first.fingerprint.as_deref(), Some(fp.as_str()));
    // The moderator's device makes the group alone.
    wait("the moderator's group", 20, || member(&mod_room, 1));

    let ann_room = ann
        .join_room(room.id.clone(), token, Arc::new(Ignore))
        .unwrap();
    let ann_infos = Arc::new(Infos::default());
    ann_room.set_e2ee_listener(ann_infos.clone()).unwrap();
    let ann_now = wait("ann is added", 20, || member(&ann_room, 2));
    assert_eq!(ann_now.fingerprint.as_deref(), Some(ann_fp.as_str()));
    let mod_now = wait("the moderator at ann's epoch", 20, || {
        member(&mod_room, 2).filter(|i| i.epoch == ann_now.epoch)
    });
    assert_eq!(
        mod_now.safety_code, ann_now.safety_code,
        "one epoch, one code"
    );
    assert_eq!(
        ann_now.safety_code.as_deref().map(|c| c.len()),
        Some(14),
        "{ann_now:?}"
    );
    // The listener saw the way there: not a member first, then a member.
    let seen = ann_infos.all();
    assert!(
        seen.iter().any(|i| i.phase != E2eePhase::Member),
        "{seen:?}"
    );
    assert_eq!(seen.last().map(|i| i.phase), Some(E2eePhase::Member));

    // Audio: the moderator speaks; ann's engine opens it, and again after a restart.
    let wav = speech_wav(dir.path(), 30);
    mod_room
        .start_audio(AudioConfig {
            mic_wav: Some(wav.clone()),
            record_wav: None,
            capture: true,
        })
        .unwrap();
    let listen = AudioConfig {
        mic_wav: Some(wav),
        record_wav: None,
        capture: false,
    };
    ann_room.start_audio(listen.clone()).unwrap();
    wait("ann decrypts the moderator", 30, || {
        (decrypted(&ann_room) >= 100).then_some(())
    });
    let sent = mod_room.audio_stats().unwrap();
    assert!(sent.frames_encrypted >= 100, "{sent:?}");
    ann_room.start_audio(listen).unwrap(); // a restart: a new media session, new counters
    assert!(
        decrypted(&ann_room) < 100,
        "the counters are the new session's"
    );
    wait("ann decrypts after the restart", 30, || {
        (decrypted(&ann_room) >= 100).then_some(())
    });
    let s = ann_room.audio_stats().unwrap();
    assert!(s.frames_with_audio >= 50, "{s:?}");
    assert!(s.frames_undecryptable <= 10, "{s:?}");
    ann_room.stop_audio().unwrap();
    mod_room.stop_audio().unwrap();

    // A plain room: one "not encrypted" value, no agent.
    let plain = moder
        .create_room("Plain".into(), RoomKind::Open, false)
        .unwrap();
    assert!(!plain.e2ee);
    mod_room.leave().unwrap();
    let plain_room = moder
        .join_room(plain.id.clone(), None, Arc::new(Ignore))
        .unwrap();
    let infos = Arc::new(Infos::default());
    plain_room.set_e2ee_listener(infos.clone()).unwrap();
    let got = infos.all();
    assert_eq!(got.len(), 1);
    assert!(!got[0].encrypted);
    assert_eq!(got[0].phase, E2eePhase::NotEncrypted);
    assert!(!plain_room.e2ee_info().encrypted);
    plain_room.leave().unwrap();
}
