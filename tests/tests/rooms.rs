//! Rooms end to end: hallway per kind, the stage flow over real WebSockets, moderator-only
//! actions, removal, room end, reconnect-and-resume and server restart.

use ruang_client::session::{ConnectionState, SessionState};
use ruang_client::ClientError;
use ruang_proto::{CloseReason, ErrorCode, Role, RoomKind, UserId};
use ruang_tests::{each_backend, Backend, TestServer, WAIT};

fn role_of(s: &SessionState, user: &UserId) -> Option<Role> {
    s.room.participant(user).map(|p| p.role)
}

fn code(r: Result<(), ClientError>) -> Option<ErrorCode> {
    r.unwrap_err().code()
}

async fn hallway_per_kind(b: Backend) {
    let srv = TestServer::start(b).await;
    let admin = srv.admin("root").await;
    let host = srv.member(&admin, "host").await;
    let fan = srv.member(&admin, "fan").await;
    let other = srv.member(&admin, "other").await;
    fan.follow("host").await.unwrap();

    let open = admin
        .create_room("Open talk", RoomKind::Open)
        .await
        .unwrap();
    let social = host
        .create_room("Host's friends", RoomKind::Social)
        .await
        .unwrap();
    let closed = host
        .create_room("Closed circle", RoomKind::Closed)
        .await
        .unwrap();
    assert!(
        closed.link.contains("?t="),
        "the closed link carries its key"
    );

    let ids = |rooms: Vec<ruang_proto::RoomSummary>| -> Vec<String> {
        rooms.into_iter().map(|r| r.id.0).collect()
    };
    // The fan follows the host: the social room is visible and first.
    let fan_view = ids(fan.hallway().await.unwrap());
    assert_eq!(fan_view, vec![social.id.0.clone(), open.id.0.clone()]);
    // Someone else sees only the open room.
    assert_eq!(ids(other.hallway().await.unwrap()), vec![open.id.0.clone()]);
    // The host sees their own rooms.
    let host_view = ids(host.hallway().await.unwrap());
    assert!(host_view.contains(&closed.id.0) && host_view.contains(&social.id.0));

    // Closed: no access without the link token, in with it, and then it is in the hallway.
    assert_eq!(
        other
            .room(closed.id.as_str(), None)
            .await
            .unwrap_err()
            .code(),
        Some(ErrorCode::NotFound)
    );
    let _host_session = srv.join(&host, closed.id.as_str()).await;
    let refused = srv.try_join(&other, closed.id.as_str(), None).await;
    assert_eq!(
        refused.err().and_then(|e| e.code()),
        Some(ErrorCode::RoomClosed)
    );
    let token = closed.link.split("?t=").nth(1).unwrap();
    let s = srv
        .try_join(&other, closed.id.as_str(), Some(token))
        .await
        .expect("the link lets you in");
    assert_eq!(s.state().room.my_role(), Some(Role::Listener));
    assert!(ids(other.hallway().await.unwrap()).contains(&closed.id.0));

    // A moderator can let a member in by handle.
    host.grant_access(closed.id.as_str(), "fan").await.unwrap();
    assert!(ids(fan.hallway().await.unwrap()).contains(&closed.id.0));
    assert_eq!(
        other
            .grant_access(closed.id.as_str(), "root")
            .await
            .unwrap_err()
            .code(),
        Some(ErrorCode::Forbidden)
    );

    // Bigger rooms come first among the rest.
    let _l = srv.join(&admin, social.id.as_str()).await;
    let _m = srv.join(&fan, open.id.as_str()).await;
    let rooms = admin.hallway().await.unwrap();
    assert_eq!(rooms[0].listener_count + rooms[0].speaker_count, 2);
}
each_backend!(hallway_shows_rooms_by_kind, hallway_per_kind);

async fn stage_flow(b: Backend) {
    let srv = TestServer::start(b).await;
    let moder = srv.admin("mod").await;
    let ann = srv.member(&moder, "ann").await;
    let bob = srv.member(&moder, "bob").await;
    let room = moder.create_room("Stage", RoomKind::Open).await.unwrap();
    let rid = room.id.as_str();

    let m = srv.join(&moder, rid).await;
    let a = srv.join(&ann, rid).await;
    let bs = srv.join(&bob, rid).await;
    let ann_id = a.me().clone();
    let bob_id = bs.me().clone();
    assert_eq!(m.state().room.my_role(), Some(Role::Moderator));
    assert_eq!(a.state().room.my_role(), Some(Role::Listener));
    m.wait_for(WAIT, |s| s.room.participant(&bob_id).is_some())
        .await
        .expect("moderator sees both listeners");

    // Hand up: the moderator sees the queue; the other listener does not.
    a.raise_hand().await.unwrap();
    let st = m
        .wait_for(WAIT, |s| s.room.hands().len() == 1)
        .await
        .expect("hand in the queue");
    assert_eq!(st.room.hands()[0].participant.user.id, ann_id);
    a.wait_for(WAIT, |s| s.room.room.as_ref().unwrap().your_hand_raised)
        .await
        .unwrap();
    assert!(bs.state().room.hands().is_empty());

    // Listeners cannot do moderator things, or speak.
    assert_eq!(
        code(bs.invite_to_speak(&bob_id).await),
        Some(ErrorCode::Forbidden)
    );
    assert_eq!(code(bs.mute(m.me()).await), Some(ErrorCode::Forbidden));
    assert_eq!(code(bs.remove(&ann_id).await), Some(ErrorCode::Forbidden));
    assert_eq!(
        code(bs.make_moderator(&bob_id).await),
        Some(ErrorCode::Forbidden)
    );
    assert_eq!(
        code(bs.move_to_audience(m.me()).await),
        Some(ErrorCode::Forbidden)
    );
    assert_eq!(
        code(bs.set_hands_enabled(false).await),
        Some(ErrorCode::Forbidden)
    );
    assert_eq!(code(bs.end_room().await), Some(ErrorCode::Forbidden));
    assert_eq!(code(bs.set_muted(false).await), Some(ErrorCode::NotOnStage));
    assert_eq!(code(bs.accept_invite().await), Some(ErrorCode::NoInvite));

    // Invite → accept → speaker, seen by everyone.
    m.invite_to_speak(&ann_id).await.unwrap();
    a.wait_for(WAIT, |s| s.room.room.as_ref().unwrap().invited_to_speak)
        .await
        .expect("invitation arrives");
    m.wait_for(WAIT, |s| s.room.hands().first().is_some_and(|h| h.invited))
        .await
        .unwrap();
    a.accept_invite().await.unwrap();
    for s in [&m, &a, &bs] {
        s.wait_for(WAIT, |st| role_of(st, &ann_id) == Some(Role::Speaker))
            .await
            .expect("everyone sees the new speaker");
    }
    m.wait_for(WAIT, |s| s.room.hands().is_empty())
        .await
        .unwrap();
    // A speaker joins muted, unmutes; the moderator mutes; a speaker still cannot moderate.
    a.set_muted(false).await.unwrap();
    bs.wait_for(WAIT, |s| {
        s.room.participant(&ann_id).is_some_and(|p| !p.muted)
    })
    .await
    .unwrap();
    m.mute(&ann_id).await.unwrap();
    a.wait_for(WAIT, |s| s.room.you().is_some_and(|p| p.muted))
        .await
        .unwrap();
    assert_eq!(code(a.remove(&bob_id).await), Some(ErrorCode::Forbidden));

    // Back to the audience.
    m.move_to_audience(&ann_id).await.unwrap();
    for s in [&m, &a, &bs] {
        s.wait_for(WAIT, |st| role_of(st, &ann_id) == Some(Role::Listener))
            .await
            .expect("everyone sees the speaker back in the audience");
    }

    // Decline path and hands switched off.
    m.invite_to_speak(&bob_id).await.unwrap();
    bs.wait_for(WAIT, |s| s.room.room.as_ref().unwrap().invited_to_speak)
        .await
        .unwrap();
    bs.decline_invite().await.unwrap();
    assert_eq!(role_of(&bs.state(), &bob_id), Some(Role::Listener));
    m.set_hands_enabled(false).await.unwrap();
    bs.wait_for(WAIT, |s| !s.room.room.as_ref().unwrap().hands_enabled)
        .await
        .unwrap();
    assert_eq!(code(bs.raise_hand().await), Some(ErrorCode::HandsDisabled));

    // Make moderator: the new moderator can act.
    m.make_moderator(&ann_id).await.unwrap();
    a.wait_for(WAIT, |s| s.room.my_role() == Some(Role::Moderator))
        .await
        .unwrap();
    a.set_hands_enabled(true).await.unwrap();

    // Removal: bob is out and cannot come back.
    a.remove(&bob_id).await.unwrap();
    let st = bs
        .wait_for(WAIT, |s| {
            matches!(s.connection, ConnectionState::Ended { .. })
        })
        .await
        .expect("removed session ends");
    assert_eq!(
        st.connection,
        ConnectionState::Ended {
            reason: Some(CloseReason::Removed),
            error: None
        }
    );
    m.wait_for(WAIT, |s| s.room.participant(&bob_id).is_none())
        .await
        .unwrap();
    let again = srv.try_join(&bob, rid, None).await;
    assert_eq!(
        again.err().and_then(|e| e.code()),
        Some(ErrorCode::RemovedFromRoom)
    );

    // The room ends when its last moderator leaves.
    a.leave(false).await.unwrap();
    m.wait_for(WAIT, |s| s.room.participant(&ann_id).is_none())
        .await
        .unwrap();
    m.leave(false).await.unwrap();
    assert!(
        moder.hallway().await.unwrap().is_empty(),
        "ended rooms leave the hallway"
    );
    let late = srv.try_join(&ann, rid, None).await;
    assert_eq!(late.err().and_then(|e| e.code()), Some(ErrorCode::NotFound));
}
each_backend!(stage_flow_works_end_to_end, stage_flow);

async fn end_room_and_leave_quietly(b: Backend) {
    let srv = TestServer::start(b).await;
    let moder = srv.admin("mod").await;
    let ann = srv.member(&moder, "ann").await;
    let room = moder.create_room("Short", RoomKind::Open).await.unwrap();
    let m = srv.join(&moder, room.id.as_str()).await;
    let a = srv.join(&ann, room.id.as_str()).await;
    let ann_id = a.me().clone();
    m.wait_for(WAIT, |s| s.room.participant(&ann_id).is_some())
        .await
        .unwrap();
    a.leave(true).await.unwrap();
    m.wait_for(WAIT, |s| s.room.participant(&ann_id).is_none())
        .await
        .expect("a quiet leave still updates the list");
    let a = srv.join(&ann, room.id.as_str()).await;
    m.end_room().await.unwrap();
    let st = a
        .wait_for(WAIT, |s| {
            matches!(s.connection, ConnectionState::Ended { .. })
        })
        .await
        .unwrap();
    assert!(st.room.ended);
    assert_eq!(
        st.connection,
        ConnectionState::Ended {
            reason: Some(CloseReason::RoomEnded),
            error: None
        }
    );
}
each_backend!(
    moderator_ends_room_and_quiet_leave,
    end_room_and_leave_quietly
);

async fn reconnect_and_restart(b: Backend) {
    let mut srv = TestServer::start(b).await;
    let moder = srv.admin("mod").await;
    let ann = srv.member(&moder, "ann").await;
    let room = moder.create_room("Sturdy", RoomKind::Closed).await.unwrap();
    let rid = room.id.as_str();
    let token = room.link.split("?t=").nth(1).unwrap().to_owned();
    let m = srv.join(&moder, rid).await;
    let a = srv.try_join(&ann, rid, Some(&token)).await.unwrap();
    let ann_id = a.me().clone();
    m.invite_to_speak(&ann_id).await.unwrap();
    a.wait_for(WAIT, |s| s.room.room.as_ref().unwrap().invited_to_speak)
        .await
        .unwrap();
    a.accept_invite().await.unwrap();
    a.wait_for(WAIT, |s| s.room.my_role() == Some(Role::Speaker))
        .await
        .unwrap();

    // The network drops: the session reconnects by itself and keeps the role.
    let mut seen = a.subscribe();
    a.simulate_network_loss().await;
    seen.wait_for(|s| matches!(s.connection, ConnectionState::Reconnecting { .. }))
        .await
        .unwrap();
    let st = a
        .wait_for(WAIT, |s| s.connection == ConnectionState::Connected)
        .await
        .expect("reconnects");
    assert_eq!(st.room.my_role(), Some(Role::Speaker));
    a.set_muted(false).await.unwrap();

    // The server restarts: accounts, invites, the room and roles survive, and both
    // sessions come back by themselves.
    let invites_before = moder.invites().await.unwrap();
    srv.restart().await;
    for s in [&m, &a] {
        s.wait_for(WAIT, |st| {
            matches!(st.connection, ConnectionState::Reconnecting { .. })
                || st.connection == ConnectionState::Connected
        })
        .await
        .unwrap();
    }
    let st = a
        .wait_for(WAIT, |s| {
            s.connection == ConnectionState::Connected && s.room.my_role() == Some(Role::Speaker)
        })
        .await
        .expect("speaker resumes after restart");
    assert_eq!(role_of(&st, m.me()), Some(Role::Moderator));
    m.wait_for(WAIT, |s| s.connection == ConnectionState::Connected)
        .await
        .unwrap();
    assert_eq!(moder.invites().await.unwrap(), invites_before);
    assert_eq!(ann.me().await.unwrap().handle, "ann");
    let hall = ann.hallway().await.unwrap();
    assert_eq!(
        hall.len(),
        1,
        "the closed room is still live and still ann's"
    );
    // Moderation still works on the restored room.
    m.move_to_audience(&ann_id).await.unwrap();
    a.wait_for(WAIT, |s| s.room.my_role() == Some(Role::Listener))
        .await
        .unwrap();
    srv.stop().await;
}
each_backend!(reconnect_and_restart_keep_roles, reconnect_and_restart);

async fn big_room_pages_audience(b: Backend) {
    let srv = TestServer::start_with(b, |c| c.audience_sample = 3).await;
    let moder = srv.admin("mod").await;
    let room = moder.create_room("Big", RoomKind::Open).await.unwrap();
    let m = srv.join(&moder, room.id.as_str()).await;
    let mut sessions = Vec::new();
    let mut inviter = moder.clone();
    for i in 0..7 {
        let member = srv.member(&inviter, &format!("listener{i}")).await;
        sessions.push(srv.join(&member, room.id.as_str()).await);
        if i % 4 == 3 {
            inviter = member;
        }
    }
    let st = m
        .wait_for(WAIT, |s| {
            s.room.room.as_ref().unwrap().counts.listeners == 7
        })
        .await
        .expect("counts arrive");
    assert_eq!(
        st.room.room.as_ref().unwrap().audience.len(),
        3,
        "only the sample is sent"
    );
    let (page, next, total) = m.audience_page(0, 5).await.unwrap();
    assert_eq!((page.len(), next, total), (5, Some(5), 7));
    let (page, next, _) = m.audience_page(5, 5).await.unwrap();
    assert_eq!((page.len(), next), (2, None));
}
each_backend!(
    big_rooms_send_counts_and_page_the_audience,
    big_room_pages_audience
);

async fn absent_hosts(b: Backend) {
    let srv = TestServer::start_with(b, |c| {
        c.rejoin_grace = std::time::Duration::from_millis(300);
        c.first_join_grace = std::time::Duration::from_secs(600);
    })
    .await;
    let moder = srv.admin("mod").await;
    let room = moder
        .create_room("Waiting for host", RoomKind::Open)
        .await
        .unwrap();
    // Longer than the rejoin grace: a new room waits for its creator's first connection.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(moder.hallway().await.unwrap().len(), 1);
    let m = srv.join(&moder, room.id.as_str()).await;
    // The host's connection goes away for good: after the grace the room ends.
    drop(m);
    let mut ended = false;
    for _ in 0..100 {
        if moder.hallway().await.unwrap().is_empty() {
            ended = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ended, "a room whose last moderator is gone for good ends");
}
each_backend!(rooms_wait_for_hosts_and_end_without_them, absent_hosts);
