//! Hardening against adversarial clients and faults (docs/reliability.md): slow and
//! abundant connections, revoked sessions on live sockets, removal from closed rooms,
//! guest-seat exhaustion, restarts that must keep mute state, limits on rooms and hallway
//! size, hostile text, concurrent guessing, and WebSocket frames before `hello`.

use futures_util::{SinkExt, StreamExt};
use ruang_client::session::{ConnectionState, SessionState};
use ruang_proto::{CloseReason, ErrorCode, RoomKind, ServerMessage};
use ruang_tests::ws::{next_msg, Ws};
use ruang_tests::{each_backend, Backend, TestServer, WAIT};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// Reads what the server sends until it closes the socket (or `WAIT` passes: None).
async fn read_until_closed(s: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(WAIT, s.read(&mut chunk)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&buf).into_owned()),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn slow_client(srv: &TestServer) -> TcpStream {
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    // Headers that never finish.
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    s
}

async fn slow_clients_cannot_exhaust(b: Backend) {
    let srv = TestServer::start_with(b, |c| {
        c.max_connections = 40;
        c.max_connections_per_ip = 0;
        c.header_timeout = Duration::from_secs(1);
    })
    .await;
    let mut slow = Vec::new();
    for _ in 0..40 {
        slow.push(slow_client(&srv).await);
    }
    // Past the cap: a polite refusal, not a hang or a reset.
    let mut extra = slow_client(&srv).await;
    let answer = read_until_closed(&mut extra).await.expect("answered");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: "), "{answer}");
    assert!(answer.contains("\"unavailable\""), "{answer}");
    // The half-sent requests are dropped by the header timeout...
    for s in &mut slow {
        assert!(
            read_until_closed(s).await.is_some(),
            "a request whose headers never finish is closed"
        );
    }
    // ...and everyone else is served again.
    let health = reqwest::get(format!("{}/healthz", srv.url)).await.unwrap();
    assert_eq!(health.status(), 200);
    // Only the metrics request itself stays counted (closed sockets give their slot back).
    let deadline = tokio::time::Instant::now() + WAIT;
    while srv.metric("ruang_connections_open").await != 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "slots not given back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
each_backend!(
    slow_clients_cannot_exhaust_the_server,
    slow_clients_cannot_exhaust
);

async fn per_address_cap(b: Backend) {
    let srv = TestServer::start_with(b, |c| c.max_connections_per_ip = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(slow_client(&srv).await);
    }
    let mut extra = slow_client(&srv).await;
    let answer = read_until_closed(&mut extra).await.expect("answered");
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.contains("retry-after: "), "{answer}");
    drop(held);
    // Slots come back as connections close.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(r) = reqwest::get(format!("{}/healthz", srv.url)).await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "slots never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
each_backend!(connections_are_capped_per_address, per_address_cap);

async fn shutdown_with_half_sent_request(b: Backend) {
    let mut srv = TestServer::start_with(b, |c| c.header_timeout = Duration::from_secs(300)).await;
    let _stuck = slow_client(&srv).await;
    // Give the server a moment to accept it, then stop: it must finish anyway.
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::time::timeout(Duration::from_secs(30), srv.stop())
        .await
        .expect("shutdown finishes although a request is half-sent");
}
each_backend!(
    shutdown_finishes_with_a_half_sent_request,
    shutdown_with_half_sent_request
);

fn closed_with(s: &SessionState) -> Option<CloseReason> {
    match &s.connection {
        ConnectionState::Ended { reason, .. } => *reason,
        _ => None,
    }
}

async fn logout_closes_sockets(b: Backend) {
    let srv = TestServer::start(b).await;
    let admin = srv.admin("root").await;
    let room = admin.create_room("Live", RoomKind::Open).await.unwrap();
    let session = srv.join(&admin, room.id.as_str()).await;
    // A second device of the same account in another room, and one logout-all.
    let ann = srv.member(&admin, "ann").await;
    let bob = srv.member(&admin, "bob").await;
    let ann_room = ann.create_room("Ann's", RoomKind::Open).await.unwrap();
    let ann_session = srv.join(&ann, ann_room.id.as_str()).await;
    let bob_session = srv.join(&bob, ann_room.id.as_str()).await;

    admin.logout_all().await.unwrap();
    let s = session
        .wait_for(WAIT, |s| closed_with(s).is_some())
        .await
        .expect("the live socket closes at once");
    assert_eq!(closed_with(&s), Some(CloseReason::SessionRevoked));
    // A moderator command on the old socket no longer works.
    assert!(session.end_room().await.is_err());

    // Logging out one session closes that session's sockets only.
    bob.logout().await.unwrap();
    let s = bob_session
        .wait_for(WAIT, |s| closed_with(s).is_some())
        .await
        .expect("closed");
    assert_eq!(closed_with(&s), Some(CloseReason::SessionRevoked));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(matches!(
        ann_session.state().connection,
        ConnectionState::Connected
    ));
    ann_session.set_muted(true).await.unwrap();
}
each_backend!(logout_closes_live_sockets, logout_closes_sockets);

async fn guest_pass(srv: &TestServer, room: &str, from: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/rooms/{room}/guest", srv.url))
        .header("x-forwarded-for", from)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

async fn hello_from(srv: &TestServer, room: &str, token: &str, from: &str) -> (Ws, ServerMessage) {
    let mut req = srv
        .anon()
        .ws_url(room)
        .to_string()
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("x-forwarded-for", from.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let msg = json!({"type":"hello","protocol":1,"token":token});
    ws.send(Message::Text(msg.to_string().into()))
        .await
        .unwrap();
    let reply = next_msg(&mut ws).await;
    (ws, reply)
}

async fn removed_member_loses_access(b: Backend) {
    let srv = TestServer::start_with(b, |c| c.trust_forwarded_for = true).await;
    let admin = srv.admin("root").await;
    let ann = srv.member(&admin, "ann").await;
    let room = admin.create_room("Circle", RoomKind::Closed).await.unwrap();
    let old_token = room.link.split("?t=").nth(1).unwrap().to_owned();
    let host = srv.join(&admin, room.id.as_str()).await;
    let ann_session = srv
        .try_join(&ann, room.id.as_str(), Some(&old_token))
        .await
        .unwrap();
    let ann_id = ann_session.me().clone();
    host.wait_for(WAIT, |s| s.room.participant(&ann_id).is_some())
        .await
        .unwrap();
    assert!(ann.hallway().await.unwrap().iter().any(|r| r.id == room.id));

    host.remove(&ann_id).await.unwrap();
    // Gone from their hallway, with its link.
    let hallway = ann.hallway().await.unwrap();
    assert!(hallway.iter().all(|r| r.id != room.id), "{hallway:?}");
    // The old link no longer makes a guest pass (the key was replaced)...
    let (status, body) = guest_pass(
        &srv,
        room.id.as_str(),
        "10.7.0.1",
        json!({"link_token": old_token}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("room_closed"))
    );
    // ...while the members who may share the room get the new link, which works.
    let fresh = admin.room(room.id.as_str(), None).await.unwrap();
    let new_token = fresh.link.split("?t=").nth(1).unwrap().to_owned();
    assert_ne!(new_token, old_token);
    let (status, _) = guest_pass(
        &srv,
        room.id.as_str(),
        "10.7.0.2",
        json!({"link_token": new_token}),
    )
    .await;
    assert_eq!(status, 201);
    // And the change survives a restart.
    drop(host);
    drop(ann_session);
    let mut srv = srv;
    srv.restart().await;
    let (status, _) = guest_pass(
        &srv,
        room.id.as_str(),
        "10.7.0.3",
        json!({"link_token": old_token}),
    )
    .await;
    assert_eq!(status, 403);
    let hallway = ann.hallway().await.unwrap();
    assert!(hallway.iter().all(|r| r.id != room.id));
}
each_backend!(
    removed_member_loses_access_to_a_closed_room,
    removed_member_loses_access
);

async fn guest_seats_are_fair(b: Backend) {
    let srv = TestServer::start_with(b, |c| {
        c.trust_forwarded_for = true;
        c.max_guests = 20;
    })
    .await;
    let admin = srv.admin("root").await;
    let room = admin.create_room("Open", RoomKind::Open).await.unwrap();
    let _host = srv.join(&admin, room.id.as_str()).await;
    // Passes fetched from many addresses and never used take nothing from anyone.
    for i in 0..60 {
        let (status, body) =
            guest_pass(&srv, room.id.as_str(), &format!("10.8.{i}.1"), json!({})).await;
        assert_eq!(status, 201, "pass {i}: {body}");
    }
    let (status, body) = guest_pass(&srv, room.id.as_str(), "10.9.9.9", json!({})).await;
    assert_eq!(status, 201, "a new visitor still gets in: {body}");
    let token = body["token"].as_str().unwrap().to_owned();
    let (_ws, reply) = hello_from(&srv, room.id.as_str(), &token, "10.9.9.9").await;
    assert!(matches!(reply, ServerMessage::Welcome { .. }), "{reply:?}");

    // One address (one /64 for IPv6) holds at most a tenth of the seats.
    let mut seats = Vec::new();
    for i in 0..2 {
        let from = format!("2001:db8:5::{i}");
        let (_, body) = guest_pass(&srv, room.id.as_str(), &from, json!({})).await;
        let (ws, reply) = hello_from(
            &srv,
            room.id.as_str(),
            body["token"].as_str().unwrap(),
            &from,
        )
        .await;
        assert!(matches!(reply, ServerMessage::Welcome { .. }), "{reply:?}");
        seats.push(ws);
    }
    let from = "2001:db8:5::99";
    let (_, body) = guest_pass(&srv, room.id.as_str(), from, json!({})).await;
    let (_ws, reply) = hello_from(
        &srv,
        room.id.as_str(),
        body["token"].as_str().unwrap(),
        from,
    )
    .await;
    assert!(
        matches!(
            reply,
            ServerMessage::Error {
                code: ErrorCode::RateLimited,
                fatal: true,
                ..
            }
        ),
        "{reply:?}"
    );
}
each_backend!(
    guest_seats_cannot_be_exhausted_by_unused_passes,
    guest_seats_are_fair
);

async fn mute_survives_restart(b: Backend) {
    let mut srv = TestServer::start(b).await;
    let admin = srv.admin("root").await;
    let ann = srv.member(&admin, "ann").await;
    let room = admin.create_room("Mute", RoomKind::Open).await.unwrap();
    let host = srv.join(&admin, room.id.as_str()).await;
    let ann_s = srv.join(&ann, room.id.as_str()).await;
    let ann_id = ann_s.me().clone();
    host.wait_for(WAIT, |s| s.room.participant(&ann_id).is_some())
        .await
        .unwrap();
    host.invite_to_speak(&ann_id).await.unwrap();
    ann_s
        .wait_for(WAIT, |s| {
            s.room.room.as_ref().is_some_and(|r| r.invited_to_speak)
        })
        .await
        .unwrap();
    ann_s.accept_invite().await.unwrap();
    ann_s.set_muted(false).await.unwrap();
    // The moderator mutes themself; the speaker stays unmuted.
    host.set_muted(true).await.unwrap();
    host.set_hands_enabled(false).await.unwrap();
    let host_id = host.me().clone();
    srv.restart().await;

    let back = host
        .wait_for(WAIT * 2, |s| {
            matches!(s.connection, ConnectionState::Connected)
                && s.room.participant(&host_id).is_some()
        })
        .await
        .expect("the host reconnects");
    assert!(
        back.room.participant(&host_id).unwrap().muted,
        "a muted moderator comes back muted"
    );
    let ann_back = back.room.participant(&ann_id).expect("ann kept her place");
    assert!(!ann_back.muted, "an unmuted speaker comes back unmuted");
    assert!(
        !back.room.room.as_ref().unwrap().hands_enabled,
        "hands off survives"
    );
}
each_backend!(mute_state_survives_a_restart, mute_survives_restart);

async fn creator_wait_survives_restart(b: Backend) {
    let mut srv = TestServer::start_with(b, |c| {
        c.rejoin_grace = Duration::from_millis(500);
        c.first_join_grace = Duration::from_secs(600);
    })
    .await;
    let admin = srv.admin("root").await;
    let ann = srv.member(&admin, "ann").await;
    // Created over HTTP; the creator has not connected yet.
    let room = admin.create_room("Soon", RoomKind::Open).await.unwrap();
    srv.restart().await;
    // Well past the rejoin grace (several registry ticks): still waiting for its host.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let hallway = ann.hallway().await.unwrap();
    assert!(hallway.iter().any(|r| r.id == room.id), "{hallway:?}");
    srv.join(&admin, room.id.as_str()).await;
}
each_backend!(
    a_new_room_keeps_waiting_for_its_host_across_a_restart,
    creator_wait_survives_restart
);

async fn room_limits_and_paging(b: Backend) {
    let srv = TestServer::start_with(b, |c| c.max_live_rooms_per_member = 2).await;
    let admin = srv.admin("root").await;
    let ann = srv.member(&admin, "ann").await;
    ann.create_room("One", RoomKind::Open).await.unwrap();
    ann.create_room("Two", RoomKind::Open).await.unwrap();
    let err = ann.create_room("Three", RoomKind::Open).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::LimitReached));

    // Admins are not limited; the hallway comes in pages.
    for i in 0..118 {
        admin
            .create_room(&format!("Room {i}"), RoomKind::Open)
            .await
            .unwrap();
    }
    let http = reqwest::Client::new();
    let token = ann.token().unwrap();
    let first = http
        .get(format!("{}/v1/rooms", srv.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let mut cursor = first
        .headers()
        .get("x-next-cursor")
        .map(|v| v.to_str().unwrap().to_owned());
    let page: Vec<Value> = first.json().await.unwrap();
    assert_eq!(page.len(), 50, "a page by default");
    let mut seen: Vec<String> = page
        .iter()
        .map(|r| r["id"].as_str().unwrap().into())
        .collect();
    while let Some(c) = cursor {
        let r = http
            .get(format!("{}/v1/rooms?limit=100&cursor={c}", srv.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        cursor = r
            .headers()
            .get("x-next-cursor")
            .map(|v| v.to_str().unwrap().to_owned());
        let page: Vec<Value> = r.json().await.unwrap();
        seen.extend(page.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 120, "every room once over the pages");
    let bad = http
        .get(format!("{}/v1/rooms?limit=5000", srv.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}
each_backend!(
    live_rooms_per_member_are_limited_and_the_hallway_is_paged,
    room_limits_and_paging
);

async fn hostile_text(b: Backend) {
    let srv = TestServer::start(b).await;
    let admin = srv.admin("root").await;
    let http = reqwest::Client::new();
    let token = admin.token().unwrap();
    for (path, method, body) in [
        ("/v1/me", "PATCH", json!({"name": "a\u{0}b"})),
        ("/v1/me", "PATCH", json!({"bio": "nul \u{0} here"})),
        ("/v1/me", "PATCH", json!({"bio": "\u{1b}[2J\u{1b}[31mred"})),
        ("/v1/me", "PATCH", json!({"name": "\u{200B}"})),
        ("/v1/me", "PATCH", json!({"name": "\u{202E}nimda"})),
        (
            "/v1/rooms",
            "POST",
            json!({"title": "x\u{0}y", "kind": "open"}),
        ),
        (
            "/v1/rooms",
            "POST",
            json!({"title": "\u{2066}\u{200B}", "kind": "open"}),
        ),
    ] {
        let req = match method {
            "PATCH" => http.patch(format!("{}{path}", srv.url)),
            _ => http.post(format!("{}{path}", srv.url)),
        };
        let r = req.bearer_auth(token).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (400, Some("invalid_field")),
            "{body}"
        );
    }
    // Nothing was written; a multi-line bio in any script is fine.
    let me = admin.me().await.unwrap();
    assert_eq!(me.name, "ROOT");
    let r = http
        .patch(format!("{}/v1/me", srv.url))
        .bearer_auth(token)
        .json(&json!({"bio": "Hosts Monday talks.\nBahasa & English 🎙️"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
each_backend!(hostile_text_is_refused_cleanly, hostile_text);

async fn concurrent_guesses(b: Backend) {
    let srv = TestServer::start_with(b, |c| c.auth_failures_per_minute = 10).await;
    let http = reqwest::Client::new();
    let tries = (0..60).map(|i| {
        let http = http.clone();
        let url = format!("{}/v1/invites/WRONGCODE{i:04}ABCDEFGH", srv.url);
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    });
    let statuses = futures_util::future::join_all(tries).await;
    let wrong = statuses.iter().filter(|&&s| s == 400).count();
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    assert!(wrong <= 10, "at most the limit is checked: {statuses:?}");
    assert_eq!(wrong + limited, 60);
    // Handle lookups count misses the same way.
    let srv = TestServer::start_with(b, |c| c.auth_failures_per_minute = 3).await;
    let admin = srv.admin("root").await;
    for i in 0..3 {
        let e = admin.profile(&format!("nobody{i}")).await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::NotFound));
    }
    let e = admin.profile("nobody9").await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::RateLimited));
}
each_backend!(concurrent_guesses_stay_within_the_limit, concurrent_guesses);

async fn frames_before_hello(b: Backend) {
    let srv = TestServer::start(b).await;
    let admin = srv.admin("root").await;
    let room = admin.create_room("Junk", RoomKind::Open).await.unwrap();
    let url = admin.ws_url(room.id.as_str()).to_string();
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    for _ in 0..50 {
        if ws
            .send(Message::Binary(vec![0u8; 64].into()))
            .await
            .is_err()
        {
            break;
        }
    }
    // A few answers, then the connection is closed: no hello, no service.
    let mut answers = 0;
    let mut fatal = false;
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                answers += 1;
                if let Ok(ServerMessage::Error { fatal: true, .. }) = serde_json::from_str(&t) {
                    fatal = true;
                }
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_))) | Ok(None) => break,
            Err(_) => panic!("the connection stayed open"),
        }
    }
    assert!(fatal, "told why");
    assert!(answers <= 9, "{answers} answers to 50 junk frames");

    // After hello, a flood of binary frames is cut off too.
    let session_url = url.clone();
    let (mut ws, _) = tokio_tungstenite::connect_async(&session_url)
        .await
        .unwrap();
    let hello = json!({"type":"hello","protocol":1,"token":admin.token().unwrap()});
    ws.send(Message::Text(hello.to_string().into()))
        .await
        .unwrap();
    assert!(matches!(
        next_msg(&mut ws).await,
        ServerMessage::Welcome { .. }
    ));
    let mut sent = 0;
    for _ in 0..3000 {
        if ws
            .send(Message::Binary(vec![1u8; 16].into()))
            .await
            .is_err()
        {
            break;
        }
        sent += 1;
    }
    let mut replies = 0;
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Text(_)))) => replies += 1,
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_))) | Ok(None) => break,
            Err(_) => panic!("a flood of {sent} frames did not end the connection"),
        }
    }
    assert!(replies < 200, "{replies} replies to {sent} junk frames");
}
each_backend!(
    junk_frames_before_and_after_hello_are_bounded,
    frames_before_hello
);

async fn stuck_reader(b: Backend) {
    let srv = TestServer::start_with(b, |c| {
        c.rejoin_grace = Duration::from_millis(500);
        c.invites_per_user = 30;
    })
    .await;
    let admin = srv.admin("root").await;
    let room = admin.create_room("Readers", RoomKind::Open).await.unwrap();
    let host = srv.join(&admin, room.id.as_str()).await;
    // A full audience makes every snapshot a few kilobytes.
    let mut audience = Vec::new();
    for i in 0..20 {
        let m = srv.member(&admin, &format!("listener{i:02}")).await;
        audience.push(srv.join(&m, room.id.as_str()).await);
    }
    let ann = srv.member(&admin, "ann").await;

    // Ann's client stops reading: a socket with a tiny receive buffer that is never read.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(2048).unwrap();
    let stream = sock.connect(srv.addr).await.unwrap();
    let url = ann.ws_url(room.id.as_str()).to_string();
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    let hello = json!({"type":"hello","protocol":1,"token":ann.token().unwrap()});
    ws.send(Message::Text(hello.to_string().into()))
        .await
        .unwrap();
    assert!(matches!(
        next_msg(&mut ws).await,
        ServerMessage::Welcome { .. }
    ));
    let ann_id = host
        .wait_for(WAIT, |s| {
            s.room.room.as_ref().is_some_and(|r| r.audience.len() == 21)
        })
        .await
        .unwrap()
        .room
        .room
        .unwrap()
        .audience[20]
        .user
        .id
        .clone();
    // Ask for snapshot after snapshot (within the rate limit) and read none of them.
    for _ in 0..100 {
        let sent = tokio::time::timeout(
            Duration::from_secs(1),
            ws.send(Message::Text(r#"{"type":"sync"}"#.into())),
        )
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    // The server gives up on the stuck connection; after the grace period Ann is gone.
    host.wait_for(Duration::from_secs(40), |s| {
        s.room.participant(&ann_id).is_none()
    })
    .await
    .expect("a client that stopped reading is dropped");
    drop(ws);
}
each_backend!(a_client_that_stops_reading_is_dropped, stuck_reader);

async fn media_loss_is_told(b: Backend) {
    use ruang_client::media::{ruang_media::device::Source, MediaSession};
    let srv = TestServer::start(b).await;
    let admin = srv.admin("root").await;
    let ann = srv.member(&admin, "ann").await;
    let room = admin.create_room("Media", RoomKind::Open).await.unwrap();
    let _host = srv.join(&admin, room.id.as_str()).await;
    let session = srv.join(&ann, room.id.as_str()).await;
    let mut dev = ruang_tests::media::device(Source::Silence);
    let media = MediaSession::start(&session, &mut dev, ruang_tests::media::listener_opts())
        .await
        .expect("media starts");
    // The client's media goes away while its room connection stays: the server's peer
    // stops getting consent checks and is dropped, and the connection is told so.
    media.stop().await;
    let st = session
        .wait_for(Duration::from_secs(40), |s| s.room.media_closed > 0)
        .await
        .expect("media_closed arrives on the WebSocket");
    assert!(matches!(st.connection, ConnectionState::Connected));
}
each_backend!(
    the_client_is_told_when_its_media_peer_is_dropped,
    media_loss_is_told
);

async fn closed_room_pages_tell_nothing(b: Backend) {
    let srv = TestServer::start(b).await;
    let admin = srv.admin("root").await;
    let room = admin.create_room("Secret", RoomKind::Closed).await.unwrap();
    let _host = srv.join(&admin, room.id.as_str()).await;
    let page = |id: String| {
        let url = format!("{}/r/{id}", srv.url);
        async move {
            let r = reqwest::get(url).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    // A live closed room without its key and an id that never existed: the same answer,
    // after the same work (one database lookup each), so neither content nor timing tells
    // which closed rooms are live.
    let before = srv.metric("ruang_room_page_lookups_total").await;
    let live = page(room.id.0.clone()).await;
    let after_live = srv.metric("ruang_room_page_lookups_total").await;
    let unknown = page("zzzzzzzzzzzz".into()).await;
    let after_unknown = srv.metric("ruang_room_page_lookups_total").await;
    assert_eq!(live, unknown);
    assert_eq!(live.0, 404);
    assert_eq!(after_live - before, 1.0);
    assert_eq!(after_unknown - after_live, 1.0);
}
each_backend!(
    closed_room_pages_do_the_same_work_as_unknown_ids,
    closed_room_pages_tell_nothing
);
