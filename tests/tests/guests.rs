//! Guest listeners (no account): guest passes, what guests may and may not do, closed
//! rooms, rate limits and the connection cap, and guest media through the real SFU.

use futures_util::SinkExt;
use ruang_client::media::ruang_media;
use ruang_client::media::{MediaOptions, MediaSession};
use ruang_client::{ApiClient, RoomSession, SessionOptions};
use ruang_media::device::Source;
use ruang_media::signal::speech_like;
use ruang_proto::{ErrorCode, RoomKind, ServerMessage};
use ruang_tests::media::{device, forcing_tone, listener_opts};
use ruang_tests::ws::{next_msg, next_reply, Ws};
use ruang_tests::{each_backend, Backend, TestServer, WAIT};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// `POST /v1/rooms/{room}/guest` with an optional body: (status, JSON body).
async fn guest_pass(srv: &TestServer, room: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(format!("{}/v1/rooms/{room}/guest", srv.url));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

async fn pass_token(srv: &TestServer, room: &str) -> String {
    let (status, body) = guest_pass(srv, room, None).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["expires_in_secs"], 60);
    body["token"].as_str().unwrap().to_owned()
}

fn code_of(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// Opens the room's WebSocket and sends `hello` with `token`; returns the first reply.
async fn hello(srv: &TestServer, room: &str, token: &str) -> (Ws, ServerMessage) {
    let url = srv.anon().ws_url(room).to_string();
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let msg = json!({"type":"hello","protocol":1,"token":token});
    ws.send(Message::Text(msg.to_string().into()))
        .await
        .unwrap();
    let reply = next_msg(&mut ws).await;
    (ws, reply)
}

async fn send(ws: &mut Ws, msg: Value) {
    ws.send(Message::Text(msg.to_string().into()))
        .await
        .unwrap();
}

fn assert_error(m: ServerMessage, want: ErrorCode, want_fatal: bool) {
    match m {
        ServerMessage::Error { code, fatal, .. } => {
            assert_eq!((code, fatal), (want, want_fatal));
        }
        other => panic!("expected {want:?}, got {other:?}"),
    }
}

/// The room's listener count as a member sees it over HTTP.
async fn listeners(c: &ApiClient, room: &str) -> u32 {
    c.room(room, None).await.unwrap().listener_count
}

async fn wait_listeners(c: &ApiClient, room: &str, n: u32) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while listeners(c, room).await != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "listener count never became {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn guest_in_open_room(b: Backend) {
    let srv = TestServer::start(b).await;
    let maya = srv.admin("maya").await;
    let room = maya.create_room("Open", RoomKind::Open).await.unwrap();
    let room = room.id.as_str().to_owned();
    let host = srv.join(&maya, &room).await;

    let token = pass_token(&srv, &room).await;
    assert!(token.starts_with("guest_"), "{token}");
    let (mut ws, welcome) = hello(&srv, &room, &token).await;
    let guest = match welcome {
        ServerMessage::Welcome {
            you, room: snap, ..
        } => {
            assert!(you.as_str().starts_with("guest-"), "{you:?}");
            assert_eq!(snap.you.user.id, you);
            assert_eq!(snap.you.role, ruang_proto::Role::Listener);
            assert_eq!(snap.stage.len(), 1, "the guest sees the stage");
            assert!(snap.audience.is_empty(), "guests are not listed");
            assert_eq!(snap.counts.listeners, 1, "but counted");
            you
        }
        other => panic!("{other:?}"),
    };
    // Counted for everyone, listed for no one.
    wait_listeners(&maya, &room, 1).await;
    assert_eq!(srv.metric("ruang_guests_connected").await, 1.0);
    let seen = host
        .wait_for(WAIT, |s| {
            s.room
                .room
                .as_ref()
                .is_some_and(|r| r.counts.listeners == 1)
        })
        .await
        .expect("the host sees the guest counted");
    assert!(seen.room.room.unwrap().audience.is_empty());

    // Listen-only, whatever the guest sends.
    for (i, msg) in [
        json!({"type":"raise_hand"}),
        json!({"type":"accept_invite"}),
        json!({"type":"set_muted","muted":false}),
        json!({"type":"end_room"}),
        json!({"type":"invite_to_speak","user":guest.as_str()}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut msg = msg;
        msg["req"] = json!(i + 1);
        send(&mut ws, msg).await;
        assert_error(next_reply(&mut ws).await, ErrorCode::Forbidden, false);
    }
    // Nobody can put a guest on stage or act on them.
    let code = |r: Result<(), ruang_client::ClientError>| r.unwrap_err().code();
    let invalid = Some(ErrorCode::InvalidTarget);
    assert_eq!(code(host.invite_to_speak(&guest).await), invalid);
    assert_eq!(code(host.make_moderator(&guest).await), invalid);
    assert_eq!(code(host.mute(&guest).await), invalid);
    assert_eq!(code(host.remove(&guest).await), invalid);
    // Still connected and still served: a sync answers with a snapshot.
    send(&mut ws, json!({"type":"sync"})).await;
    assert!(matches!(
        next_reply(&mut ws).await,
        ServerMessage::Snapshot { .. }
    ));

    // A pass works once.
    let (_ws2, reply) = hello(&srv, &room, &token).await;
    assert_error(reply, ErrorCode::Unauthorized, true);
    // A pass is for its room only.
    let other = maya.create_room("Other", RoomKind::Open).await.unwrap();
    let pass = pass_token(&srv, &room).await;
    let (_ws3, reply) = hello(&srv, other.id.as_str(), &pass).await;
    assert_error(reply, ErrorCode::Unauthorized, true);

    // The guest leaves: no grace period, the count drops at once.
    drop(ws);
    wait_listeners(&maya, &room, 0).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while srv.metric("ruang_guests_connected").await != 0.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "guest slot not freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Social rooms can be heard by link too; unknown rooms cannot.
    let social = maya.create_room("Social", RoomKind::Social).await.unwrap();
    let (status, _) = guest_pass(&srv, social.id.as_str(), None).await;
    assert_eq!(status, 201);
    let (status, body) = guest_pass(&srv, "nosuchroom", None).await;
    assert_eq!((status, code_of(&body)), (404, "not_found"));
    let huge = "r".repeat(5000);
    let (status, body) = guest_pass(&srv, &huge, None).await;
    assert_eq!((status, code_of(&body)), (404, "not_found"));
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/rooms/{room}/guest", srv.url))
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
}
each_backend!(
    guest_listens_to_an_open_room_and_can_do_nothing_else,
    guest_in_open_room
);

async fn guest_in_closed_room(b: Backend) {
    let srv = TestServer::start(b).await;
    let maya = srv.admin("maya").await;
    let room = maya.create_room("Closed", RoomKind::Closed).await.unwrap();
    let id = room.id.as_str().to_owned();
    let link_token = room.link.split("?t=").nth(1).unwrap().to_owned();
    let _host = srv.join(&maya, &id).await;

    let (status, body) = guest_pass(&srv, &id, None).await;
    assert_eq!((status, code_of(&body)), (403, "room_closed"));
    let (status, body) = guest_pass(&srv, &id, Some(json!({"link_token":"0123abcd"}))).await;
    assert_eq!((status, code_of(&body)), (403, "room_closed"));

    let (status, body) = guest_pass(&srv, &id, Some(json!({ "link_token": link_token }))).await;
    assert_eq!(status, 201, "{body}");
    let (_ws, welcome) = hello(&srv, &id, body["token"].as_str().unwrap()).await;
    assert!(
        matches!(welcome, ServerMessage::Welcome { .. }),
        "{welcome:?}"
    );
    wait_listeners(&maya, &id, 1).await;
}
each_backend!(
    guest_needs_the_link_token_of_a_closed_room,
    guest_in_closed_room
);

async fn guest_limits(b: Backend) {
    let srv = TestServer::start_with(b, |c| {
        c.guest_joins_per_minute = 3;
        c.max_guests = 1;
    })
    .await;
    let maya = srv.admin("maya").await;
    let room = maya.create_room("Busy", RoomKind::Open).await.unwrap();
    let room = room.id.as_str().to_owned();
    let _host = srv.join(&maya, &room).await;

    // Two passes while nobody listens; the cap is enforced again when connecting.
    let p1 = pass_token(&srv, &room).await;
    let p2 = pass_token(&srv, &room).await;
    let (ws1, welcome) = hello(&srv, &room, &p1).await;
    assert!(matches!(welcome, ServerMessage::Welcome { .. }));
    let (_ws2, reply) = hello(&srv, &room, &p2).await;
    assert_error(reply, ErrorCode::RateLimited, true);
    // Full: no pass while the one guest listens.
    let (status, body) = guest_pass(&srv, &room, None).await;
    assert_eq!((status, code_of(&body)), (429, "rate_limited"));
    // The guest leaves: a slot frees up (the refusal above did not count as a pass).
    drop(ws1);
    wait_listeners(&maya, &room, 0).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, _) = guest_pass(&srv, &room, None).await;
        if status == 201 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Three passes from this address this minute: the fourth is refused.
    let (status, body) = guest_pass(&srv, &room, None).await;
    assert_eq!((status, code_of(&body)), (429, "rate_limited"));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("address"),
        "{body}"
    );
    // Members are not affected.
    let budi = srv.member(&maya, "budi").await;
    let _b = srv.join(&budi, &room).await;
}
each_backend!(guests_are_rate_limited_and_capped, guest_limits);

/// A guest hears the host through the SFU with the reference client's media stack; a
/// guest whose client sends audio anyway is never forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_hears_the_stage_and_is_never_heard() {
    let srv = TestServer::start(Backend::Sqlite).await;
    let maya = srv.admin("maya").await;
    let room = maya.create_room("Media", RoomKind::Open).await.unwrap();
    let room = room.id.as_str().to_owned();
    let host = srv.join(&maya, &room).await;
    let budi = srv.member(&maya, "budi").await;
    let member = srv.join(&budi, &room).await;

    let join_guest = |token: String| {
        RoomSession::join(srv.anon().ws_url(&room), token, SessionOptions::default())
    };
    let guest = join_guest(pass_token(&srv, &room).await)
        .await
        .expect("guest joins");
    let sneaky = join_guest(pass_token(&srv, &room).await)
        .await
        .expect("second guest joins");

    let mut guest_dev = device(Source::Silence);
    let guest_media = MediaSession::start(&guest, &mut guest_dev, listener_opts())
        .await
        .expect("guest media");
    let mut member_dev = device(Source::Silence);
    let member_media = MediaSession::start(&member, &mut member_dev, listener_opts())
        .await
        .expect("member media");
    let (_sneaky_dev, sneaky_media) = forcing_tone(&sneaky).await;
    sneaky_media
        .wait_for(WAIT * 4, |s| s.packets_sent >= 100)
        .await
        .expect("the forcing guest sends");

    let mut host_dev = device(Source::samples(speech_like(48_000 * 60, 7), false));
    let host_media = MediaSession::start(&host, &mut host_dev, MediaOptions::default())
        .await
        .expect("host media");
    guest_media
        .wait_for(WAIT * 4, |s| s.frames_with_audio >= 50)
        .await
        .unwrap_or_else(|s| panic!("the guest does not hear the host: {s:#?}"));
    let heard = member_media
        .wait_for(WAIT * 4, |s| s.frames_with_audio >= 50)
        .await
        .unwrap_or_else(|s| panic!("the member does not hear the host: {s:#?}"));
    // The host's counter moves just after its packet leaves: read it a moment later, so a
    // packet counted by the member is counted by the host too.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let from_host = host_media.stats().packets_sent;
    assert_eq!(heard.slots.len(), 1, "one stream forwarded: {heard:#?}");
    assert!(
        heard.packets_received <= from_host,
        "only the host's packets reach the member ({} received, {from_host} sent by the host)",
        heard.packets_received
    );
    assert_eq!(
        host_media.stats().packets_received,
        0,
        "nobody else is heard"
    );
    for m in [sneaky_media, guest_media, member_media, host_media] {
        m.stop().await;
    }
}
