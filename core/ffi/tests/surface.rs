//! The FFI surface driven from Rust, as Kotlin would: blocking calls from a plain thread,
//! listener traits implemented here, against the real server.

mod common;

use common::server;
use ruang_ffi::{ConnectionStatus, RoomKind, RoomListener, RoomViewState, RuangClient, RuangError};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn client(url: &str) -> Arc<RuangClient> {
    common::client(url, true)
}

#[derive(Clone)]
struct Recorder {
    tx: Arc<Mutex<mpsc::Sender<RoomViewState>>>,
}

impl RoomListener for Recorder {
    fn on_state(&self, state: RoomViewState) {
        let _ = self.tx.lock().unwrap().send(state);
    }
}

fn recorder() -> (Arc<Recorder>, mpsc::Receiver<RoomViewState>) {
    let (tx, rx) = mpsc::channel();
    (
        Arc::new(Recorder {
            tx: Arc::new(Mutex::new(tx)),
        }),
        rx,
    )
}

fn await_state(
    rx: &mpsc::Receiver<RoomViewState>,
    what: &str,
    pred: impl Fn(&RoomViewState) -> bool,
) -> RoomViewState {
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if let Ok(s) = rx.recv_timeout(left) {
            if pred(&s) {
                return s;
            }
        }
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn the_surface_runs_a_room() {
    let (url, code, _dir, _rt) = server();
    let moder = client(&url);
    let me = moder
        .signup(code.clone(), "moder".into(), "Moder".into())
        .unwrap();
    assert!(me.is_admin);
    let codes = moder.invites().unwrap();
    let ann = client(&url);
    ann.signup(codes[0].link.clone(), "ann".into(), "Ann".into())
        .unwrap();

    // A saved session restores in a new client (persisted in data_dir).
    let token = ann.session_token().unwrap();
    let again = client(&url);
    assert_eq!(again.restore_session(Some(token)).unwrap().handle, "ann");

    let room = moder
        .create_room("FFI room".into(), RoomKind::Open, false)
        .unwrap();
    let (mod_listener, mod_rx) = recorder();
    let mod_room = moder
        .join_room(room.id.clone(), None, mod_listener)
        .unwrap();
    // Current value first.
    let first = mod_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(first.connection, ConnectionStatus::Connected);

    let (ann_listener, ann_rx) = recorder();
    let ann_room = ann.join_room(room.id.clone(), None, ann_listener).unwrap();
    let ann_id = ann_room.my_user_id();
    ann_room.raise_hand().unwrap();
    await_state(&mod_rx, "hand queued", |s| s.hands.len() == 1);
    mod_room.invite_to_speak(ann_id.clone()).unwrap();
    await_state(&ann_rx, "invited", |s| s.invited_to_speak);
    ann_room.accept_invite().unwrap();
    await_state(&ann_rx, "on stage", |s| {
        s.me.as_ref()
            .is_some_and(|m| m.role == ruang_ffi::Role::Speaker)
    });

    // Recording: a moderator starts it, everyone's state says so; listeners may not.
    assert!(!await_state(&ann_rx, "before recording", |_| true).recording);
    mod_room.set_recording(true).unwrap();
    await_state(&ann_rx, "recording on", |s| s.recording);
    await_state(&mod_rx, "the moderator sees it too", |s| s.recording);
    // Nobody spoke: no clip (not_found), and no replay while the room is live.
    assert!(matches!(
        ann.clip(room.id.clone()),
        Err(RuangError::NotFound { .. })
    ));
    assert!(matches!(
        ann.replay(room.id.clone(), None),
        Err(RuangError::Server { .. })
    ));
    // A chat message reported by id: the second report joins the first.
    mod_room.send_chat("spam spam".into()).unwrap();
    let msg = (0..100)
        .find_map(|_| {
            let page = ann_room.chat_history(None, 10).ok()?;
            let m = page.messages.into_iter().find(|m| m.text == "spam spam");
            if m.is_none() {
                std::thread::sleep(Duration::from_millis(50));
            }
            m
        })
        .expect("the message arrives");
    assert!(!ann
        .report_message(room.id.clone(), msg.id, "spam".into(), String::new())
        .unwrap());
    assert!(ann
        .report_message(room.id.clone(), msg.id, "spam".into(), String::new())
        .unwrap());
    assert!(matches!(
        ann.report_message(room.id.clone(), msg.id, "nonsense".into(), String::new()),
        Err(RuangError::InvalidInput { .. })
    ));
    mod_room.set_recording(false).unwrap();
    await_state(&ann_rx, "recording off", |s| !s.recording);
    assert!(ann.user_replays("moder".into()).unwrap().is_empty());

    // A wrong-role action maps to the small error enum with the server's code.
    match ann_room.remove(mod_room.my_user_id()) {
        Err(RuangError::Forbidden { code, .. }) => assert_eq!(code, "forbidden"),
        other => panic!("expected forbidden, got {other:?}"),
    }
    // A bad invite code too.
    match client(&url).signup("nope".into(), "zed".into(), "Zed".into()) {
        Err(RuangError::InvalidInput { code, .. }) => assert_eq!(code, "invalid_invite"),
        other => panic!("expected invalid_invite, got {other:?}"),
    }

    mod_room.leave().unwrap();
    let ended = await_state(&ann_rx, "ended", |s| {
        matches!(s.connection, ConnectionStatus::Ended { .. })
    });
    assert_eq!(
        ended.connection,
        ConnectionStatus::Ended {
            reason: "room_ended".into()
        }
    );
}
