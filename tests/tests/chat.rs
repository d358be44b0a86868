//! Reactions and the room chat end to end: real server, real WebSockets (the core client for
//! members, raw sockets for guests and floods), SQLite and PostgreSQL.

use futures_util::{SinkExt, StreamExt};
use ruang_client::{ApiClient, ClientError, ConnectionState, RoomSession};
use ruang_proto::{
    ChatMode, ChatSettings, ErrorCode, Reaction, RoomEvent, RoomKind, ServerMessage, UserId,
};
use ruang_tests::ws::{next_msg, next_reply, Ws};
use ruang_tests::{each_backend, Backend, TestServer, WAIT};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Instant;
use tokio_tungstenite::tungstenite::Message;

async fn start(b: Backend) -> TestServer {
    TestServer::start_with(b, |c| c.guest_joins_per_minute = 1000).await
}

/// A guest on the room's WebSocket: (socket, guest id).
async fn guest(srv: &TestServer, room: &str) -> (Ws, UserId) {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/rooms/{room}/guest", srv.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let body: Value = resp.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    let url = srv.anon().ws_url(room).to_string();
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    send(&mut ws, json!({"type":"hello","protocol":1,"token":token})).await;
    match next_msg(&mut ws).await {
        ServerMessage::Welcome { you, .. } => (ws, you),
        other => panic!("{other:?}"),
    }
}

async fn send(ws: &mut Ws, msg: Value) {
    ws.send(Message::Text(msg.to_string().into()))
        .await
        .unwrap();
}

fn code(r: Result<(), ClientError>) -> Option<ErrorCode> {
    r.err().and_then(|e| e.code())
}

/// Host "maya" with an open room, and members "adi" and "budi" in it.
async fn room_with_people(
    srv: &TestServer,
) -> (
    String,
    ApiClient,
    RoomSession,
    ApiClient,
    RoomSession,
    RoomSession,
) {
    let maya = srv.admin("maya").await;
    let adi = srv.member(&maya, "adi").await;
    let budi = srv.member(&maya, "budi").await;
    let room = maya.create_room("Chat", RoomKind::Open).await.unwrap();
    let room = room.id.as_str().to_owned();
    let host = srv.join(&maya, &room).await;
    let a = srv.join(&adi, &room).await;
    let b = srv.join(&budi, &room).await;
    (room, maya, host, adi, a, b)
}

/// Waits until `s` holds a chat message with `text`.
async fn sees_chat(s: &RoomSession, text: &str) -> ruang_proto::ChatMessage {
    let st = s
        .wait_for(WAIT, |st| {
            st.room
                .room
                .as_ref()
                .is_some_and(|r| r.chat_recent.iter().any(|m| m.text == text))
        })
        .await
        .unwrap_or_else(|st| panic!("never saw {text:?}: {:?}", st.room.room));
    let r = st.room.room.unwrap();
    r.chat_recent.into_iter().find(|m| m.text == text).unwrap()
}

/// Reads a raw socket until `done` holds for the reaction totals seen, or `WAIT` passes.
/// Returns (totals per (reaction, target), number of `reactions` deltas).
async fn read_bursts(
    ws: &mut Ws,
    done: impl Fn(&HashMap<(Reaction, Option<UserId>), u32>) -> bool,
) -> (HashMap<(Reaction, Option<UserId>), u32>, usize) {
    let mut totals = HashMap::new();
    let mut events = 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done(&totals) {
        let m = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("bursts never complete: {totals:?}"))
            .unwrap()
            .unwrap();
        let Message::Text(t) = m else { continue };
        if let ServerMessage::Delta {
            event: RoomEvent::Reactions { bursts },
            ..
        } = serde_json::from_str(&t).unwrap()
        {
            events += 1;
            for b in bursts {
                *totals.entry((b.reaction, b.to)).or_insert(0) += b.count;
            }
        }
    }
    (totals, events)
}

async fn members_and_guests_share_chat_and_reactions_on(b: Backend) {
    let srv = start(b).await;
    let (room, _maya, host, _adi, a, bud) = room_with_people(&srv).await;
    let (mut g, _gid) = guest(&srv, &room).await;
    let maya_id = host.me().clone();

    a.send_chat("  hi all, notes at https://ruang.example/n?x=1.  ")
        .await
        .unwrap();
    let m = sees_chat(&host, "hi all, notes at https://ruang.example/n?x=1.").await;
    assert_eq!(m.author.handle, "adi");
    assert_eq!(m.links.len(), 1);
    assert_eq!(m.links[0].url, "https://ruang.example/n?x=1");
    let chars: Vec<char> = m.text.chars().collect();
    let shown: String = chars[m.links[0].start as usize..m.links[0].end as usize]
        .iter()
        .collect();
    assert_eq!(shown, m.links[0].url);
    sees_chat(&bud, &m.text).await;
    // The guest reads it too.
    loop {
        if let ServerMessage::Delta {
            event: RoomEvent::ChatMessage { message },
            ..
        } = next_msg(&mut g).await
        {
            assert_eq!(message, m);
            break;
        }
    }
    // Markup is plain text: kept as typed, never interpreted.
    bud.send_chat("<img src=x onerror=alert(1)>").await.unwrap();
    sees_chat(&a, "<img src=x onerror=alert(1)>").await;

    // Guests read only.
    send(&mut g, json!({"type":"send_chat","text":"hello?","req":1})).await;
    match next_reply(&mut g).await {
        ServerMessage::Error { req, code, .. } => {
            assert_eq!((req, code), (Some(1), ErrorCode::Forbidden))
        }
        other => panic!("{other:?}"),
    }
    // Bad text: a clear error.
    assert_eq!(
        code(a.send_chat(" \n ").await),
        Some(ErrorCode::InvalidField)
    );
    assert_eq!(
        code(a.send_chat(&"x".repeat(501)).await),
        Some(ErrorCode::InvalidField)
    );

    // Reactions from a guest and members, one aimed at the host: everyone gets bursts.
    for _ in 0..3 {
        send(&mut g, json!({"type":"react","reaction":"clap"})).await;
    }
    for _ in 0..2 {
        a.react(Reaction::PlusOne, Some(maya_id.clone()))
            .await
            .unwrap();
    }
    bud.react(Reaction::Heart, None).await.unwrap();
    let want = [
        ((Reaction::Clap, None), 3),
        ((Reaction::PlusOne, Some(maya_id.clone())), 2),
        ((Reaction::Heart, None), 1),
    ];
    let (totals, _) = read_bursts(&mut g, |t| {
        want.iter()
            .all(|(k, n)| t.get(k).copied().unwrap_or(0) >= *n)
    })
    .await;
    assert_eq!(totals, HashMap::from(want.clone()));
    // Members see them through the core client.
    let st = host
        .wait_for(WAIT, |s| s.room.reaction_bursts > 0)
        .await
        .unwrap();
    assert!(!st.room.reactions.is_empty());
    // A reaction aimed at a listener is refused.
    send(
        &mut g,
        json!({"type":"react","reaction":"fire","to":a.me().as_str(),"req":2}),
    )
    .await;
    match next_reply(&mut g).await {
        ServerMessage::Error { code, .. } => assert_eq!(code, ErrorCode::InvalidTarget),
        other => panic!("{other:?}"),
    }

    // History: the latest page, oldest first, and paging back by id.
    for i in 0..3 {
        host.send_chat(&format!("m{i}")).await.unwrap();
    }
    let (page, more) = a.chat_history(None, 2).await.unwrap();
    assert_eq!(
        page.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["m1", "m2"]
    );
    assert!(more);
    let (older, _) = a.chat_history(Some(page[0].id), 100).await.unwrap();
    assert_eq!(older.len(), 3);
    assert_eq!(older[0].author.handle, "adi");
}
each_backend!(
    members_and_guests_share_chat_and_reactions,
    members_and_guests_share_chat_and_reactions_on
);

async fn reaction_floods_are_coalesced_and_bounded_on(b: Backend) {
    let srv = start(b).await;
    let maya = srv.admin("maya").await;
    let room = maya.create_room("Flood", RoomKind::Open).await.unwrap();
    let room = room.id.as_str().to_owned();
    let _host = srv.join(&maya, &room).await;
    let (mut observer, _) = guest(&srv, &room).await;

    // 20 connections tap 10 times each (within each one's budget), as fast as they can.
    const PEOPLE: usize = 20;
    const TAPS: u32 = 10;
    let mut guests = Vec::new();
    for _ in 0..PEOPLE {
        guests.push(guest(&srv, &room).await.0);
    }
    let started = Instant::now();
    let tappers = guests.into_iter().map(|mut ws| {
        tokio::spawn(async move {
            for _ in 0..TAPS {
                send(&mut ws, json!({"type":"react","reaction":"fire"})).await;
            }
            ws
        })
    });
    let mut guests = Vec::new();
    for t in tappers {
        guests.push(t.await.unwrap());
    }
    let total = PEOPLE as u32 * TAPS;
    let (totals, events) = read_bursts(&mut observer, |t| {
        t.get(&(Reaction::Fire, None)).copied().unwrap_or(0) >= total
    })
    .await;
    let elapsed = started.elapsed().as_millis() as usize;
    // Every tap counted exactly once, in a few events, not one per tap.
    assert_eq!(totals, HashMap::from([((Reaction::Fire, None), total)]));
    assert!(
        events <= elapsed / 250 + 2,
        "{events} burst events in {elapsed} ms"
    );
    assert!(
        events < total as usize / 10,
        "{events} events for {total} taps"
    );

    // One connection floods: the excess is dropped, it is told (not once per reaction), and
    // it stays connected.
    let mut flooder = guest(&srv, &room).await.0;
    let flood_start = Instant::now();
    for i in 0..300 {
        send(
            &mut flooder,
            json!({"type":"react","reaction":"laugh","req":1000 + i}),
        )
        .await;
    }
    send(&mut flooder, json!({"type":"ping"})).await;
    let mut limited = 0;
    let mut oks = 0;
    loop {
        match next_msg(&mut flooder).await {
            ServerMessage::Pong => break,
            ServerMessage::Error { code, .. } => {
                assert_eq!(code, ErrorCode::RateLimited);
                limited += 1;
            }
            ServerMessage::Ok { .. } => oks += 1,
            _ => {}
        }
    }
    let flood_secs = flood_start.elapsed().as_secs_f64();
    assert!(limited >= 1, "the flooder is told");
    assert!(
        limited as f64 <= flood_secs.ceil() + 1.0,
        "{limited} rate_limited errors in {flood_secs:.2} s"
    );
    assert!(oks >= 10, "the budget is let through: {oks}");
    assert!(
        (oks as f64) <= 10.0 + 5.0 * flood_secs + 1.0,
        "{oks} accepted in {flood_secs:.2} s"
    );
    // Everyone sees exactly the accepted ones, no more.
    let (totals, _) = read_bursts(&mut observer, |t| {
        t.get(&(Reaction::Laugh, None)).copied().unwrap_or(0) >= oks
    })
    .await;
    assert_eq!(totals.get(&(Reaction::Laugh, None)), Some(&oks));
    // Still connected and served.
    send(&mut flooder, json!({"type":"ping"})).await;
    assert_eq!(next_reply(&mut flooder).await, ServerMessage::Pong);
}
each_backend!(
    reaction_floods_are_coalesced_and_bounded,
    reaction_floods_are_coalesced_and_bounded_on
);

async fn a_chat_flood_is_limited_for_its_sender_only_on(b: Backend) {
    let srv = start(b).await;
    let (_room, _maya, host, _adi, a, bud) = room_with_people(&srv).await;
    let mut sent = 0;
    let mut limited = 0;
    for i in 0..30 {
        match code(a.send_chat(&format!("spam {i}")).await) {
            None => sent += 1,
            Some(ErrorCode::RateLimited) => limited += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!(limited >= 20, "{sent} sent, {limited} limited");
    assert!(sent >= 5);
    // Another member is unaffected, and the flooder stays connected.
    bud.send_chat("budi is fine").await.unwrap();
    sees_chat(&host, "budi is fine").await;
    assert_eq!(a.state().connection, ConnectionState::Connected);
    // Past the connection's general message budget of this second, it is served again.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(a.audience_page(0, 1).await.is_ok());
}
each_backend!(
    a_chat_flood_is_limited_for_its_sender_only,
    a_chat_flood_is_limited_for_its_sender_only_on
);

async fn moderators_control_chat_and_reactions_and_it_survives_restart_on(b: Backend) {
    let mut srv = start(b).await;
    let (room, maya, host, adi, a, bud) = room_with_people(&srv).await;
    let (mut g, _) = guest(&srv, &room).await;

    // Non-moderators cannot change anything.
    let followers = ChatSettings {
        mode: ChatMode::Followers,
        slow_seconds: 30,
    };
    assert_eq!(
        code(a.set_chat_settings(followers).await),
        Some(ErrorCode::Forbidden)
    );
    assert_eq!(
        code(a.set_reactions_enabled(false).await),
        Some(ErrorCode::Forbidden)
    );
    send(
        &mut g,
        json!({"type":"set_chat_settings","settings":{"mode":"off","slow_seconds":0},"req":5}),
    )
    .await;
    match next_reply(&mut g).await {
        ServerMessage::Error { code, .. } => assert_eq!(code, ErrorCode::Forbidden),
        other => panic!("{other:?}"),
    }

    // Delete: a listener cannot delete someone else's message; a moderator can.
    bud.send_chat("something rude").await.unwrap();
    let rude = sees_chat(&a, "something rude").await;
    assert_eq!(
        code(a.delete_chat(rude.id).await),
        Some(ErrorCode::Forbidden)
    );
    host.delete_chat(rude.id).await.unwrap();
    a.wait_for(WAIT, |s| {
        s.room
            .room
            .as_ref()
            .is_some_and(|r| r.chat_recent.iter().all(|m| m.id != rude.id))
    })
    .await
    .expect("gone for everyone");
    let (page, _) = bud.chat_history(None, 50).await.unwrap();
    assert!(page.iter().all(|m| m.id != rude.id), "gone from history");

    // Off: only moderators post.
    host.set_chat_settings(ChatSettings {
        mode: ChatMode::Off,
        slow_seconds: 0,
    })
    .await
    .unwrap();
    assert_eq!(code(a.send_chat("hi").await), Some(ErrorCode::ChatDisabled));
    host.send_chat("chat is paused").await.unwrap();

    // Followers only, with slow mode: checked against the follow graph on the server.
    host.set_chat_settings(followers).await.unwrap();
    a.wait_for(WAIT, |s| {
        s.room.room.as_ref().is_some_and(|r| r.chat == followers)
    })
    .await
    .expect("everyone sees the settings");
    assert_eq!(
        code(a.send_chat("let me in").await),
        Some(ErrorCode::ChatFollowersOnly)
    );
    adi.follow("maya").await.unwrap();
    a.send_chat("I follow maya now").await.unwrap();
    assert_eq!(
        code(a.send_chat("and again").await),
        Some(ErrorCode::SlowMode)
    );
    // Moderators are exempt from slow mode.
    host.send_chat("one").await.unwrap();
    host.send_chat("two").await.unwrap();

    // Reactions off.
    host.set_reactions_enabled(false).await.unwrap();
    send(&mut g, json!({"type":"react","reaction":"clap","req":9})).await;
    match next_reply(&mut g).await {
        ServerMessage::Error { req, code, .. } => {
            assert_eq!((req, code), (Some(9), ErrorCode::ReactionsDisabled))
        }
        other => panic!("{other:?}"),
    }
    drop((g, a, bud, host));

    // A restart brings the room back with its settings (the chat itself is gone).
    srv.restart().await;
    let host = srv.join(&maya, &room).await;
    let snap = host.state().room.room.unwrap();
    assert!(!snap.reactions_enabled);
    assert_eq!(snap.chat, followers);
}
each_backend!(
    moderators_control_chat_and_reactions_and_it_survives_restart,
    moderators_control_chat_and_reactions_and_it_survives_restart_on
);
