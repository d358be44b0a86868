//! Moderation and safety end to end (docs/safety.md): blocks, reports, bans, invite
//! revocation and the admin console, against the real server on SQLite and PostgreSQL.

use ruang_client::{ApiClient, ClientError, ConnectionState, RoomSession};
use ruang_proto::{
    CloseReason, CreateEventRequest, ErrorCode, ReportKind, ReportReason, ReportRequest,
    ReportStatus, ResolveReportRequest, Role, RoomId, RoomKind,
};
use ruang_tests::{each_backend, Backend, TestServer};
use std::time::Duration;

/// Upper bound for anything to happen; never a measured duration.
const PATIENCE: Duration = Duration::from_secs(30);

fn code(e: ClientError) -> Option<ErrorCode> {
    e.code()
}

fn err_code<T: std::fmt::Debug>(r: Result<T, ClientError>) -> ErrorCode {
    match r {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(e) => code(e).unwrap_or_else(|| panic!("no error code")),
    }
}

async fn ended(session: &RoomSession) -> ConnectionState {
    session
        .wait_for(PATIENCE, |s| {
            matches!(s.connection, ConnectionState::Ended { .. })
        })
        .await
        .unwrap_or_else(|s| panic!("the session did not end: {s:#?}"))
        .connection
}

/// Waits until `moderator`'s view of the room has (or no longer has) `user`.
async fn sees(moderator: &RoomSession, user: &ruang_proto::UserId, present: bool) {
    moderator
        .wait_for(PATIENCE, |s| {
            s.room.room.as_ref().is_some_and(|r| {
                let inside = r.stage.iter().any(|p| p.user.id == *user)
                    || r.audience.iter().any(|p| p.user.id == *user);
                inside == present
            })
        })
        .await
        .unwrap_or_else(|s| panic!("{user} present={present} never seen: {s:#?}"));
}

async fn room(c: &ApiClient, title: &str, kind: RoomKind) -> ruang_proto::RoomSummary {
    c.create_room(title, kind).await.expect("room created")
}

fn link_token(summary: &ruang_proto::RoomSummary) -> String {
    summary
        .link
        .split("?t=")
        .nth(1)
        .expect("a closed room's link")
        .to_owned()
}

/// RFC 3339 (UTC) one day from now.
fn tomorrow() -> String {
    let ms = ruang_server::store::now_ms() + 86_400_000;
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:00Z",
        rem / 3600,
        rem % 3600 / 60
    )
}

async fn blocks(b: Backend) {
    let srv = TestServer::start(b).await;
    let root = srv.admin("root").await;
    let ann = srv.member(&root, "ann").await;
    let bob = srv.member(&root, "bob").await;
    let cat = srv.member(&root, "cat").await;
    let dan = srv.member(&root, "dan").await;
    let bob_id = bob.me().await.unwrap().id;

    // Follows either way go with the block; neither can follow the other while it holds.
    bob.follow("ann").await.unwrap();
    ann.follow("bob").await.unwrap();
    ann.block("bob").await.unwrap();
    ann.block("bob").await.expect("blocking twice is fine");
    let a = ann.profile("ann").await.unwrap();
    assert_eq!((a.followers, a.following), (0, 0), "follows removed");
    assert_eq!(err_code(bob.follow("ann").await), ErrorCode::Forbidden);
    assert_eq!(err_code(ann.follow("bob").await), ErrorCode::Forbidden);
    assert_eq!(err_code(ann.block("ann").await), ErrorCode::InvalidTarget);
    assert_eq!(
        err_code(ann.block("nobody_here").await),
        ErrorCode::NotFound
    );

    // The block list pages, newest first.
    ann.block("dan").await.unwrap();
    let p1 = ann.blocks(None, Some(1)).await.unwrap();
    assert_eq!(p1.users.len(), 1);
    let p2 = ann
        .blocks(p1.next_cursor.as_deref(), Some(1))
        .await
        .unwrap();
    let mut all: Vec<String> = p1
        .users
        .iter()
        .chain(&p2.users)
        .map(|u| u.handle.clone())
        .collect();
    all.sort();
    assert_eq!(all, ["bob", "dan"]);
    assert!(p2.next_cursor.is_none());
    ann.unblock("dan").await.unwrap();
    assert_eq!(ann.blocks(None, None).await.unwrap().users.len(), 1);

    // Rooms Ann moderates are closed to Bob, at the WebSocket and over HTTP, with or
    // without a closed room's link; refused like a room that is not there.
    let open = room(&ann, "Ann open", RoomKind::Open).await;
    let host = srv.join(&ann, open.id.as_str()).await;
    let refused = srv.try_join(&bob, open.id.as_str(), None).await;
    assert_eq!(refused.err().and_then(code), Some(ErrorCode::NotFound));
    assert_eq!(
        err_code(bob.room(open.id.as_str(), None).await),
        ErrorCode::NotFound
    );
    let closed = room(&ann, "Ann closed", RoomKind::Closed).await;
    let token = link_token(&closed);
    let _closed_host = srv.join(&ann, closed.id.as_str()).await;
    let refused = srv.try_join(&bob, closed.id.as_str(), Some(&token)).await;
    assert_eq!(refused.err().and_then(code), Some(ErrorCode::NotFound));
    assert_eq!(
        err_code(bob.room(closed.id.as_str(), Some(&token)).await),
        ErrorCode::NotFound
    );
    // Others still get in with the link.
    let cat_in = srv
        .try_join(&cat, closed.id.as_str(), Some(&token))
        .await
        .expect("cat joins with the link");
    cat_in.leave(true).await.unwrap();
    // Bob's hallway leaves out the rooms he cannot join.
    assert!(!bob.hallway().await.unwrap().iter().any(|r| r.id == open.id));

    // Bob hosts a room: hidden from Ann's hallway, search and Bob's profile as she sees it;
    // visible to Cat.
    let bobs = room(&bob, "Bobs quiz night", RoomKind::Open).await;
    let bob_host = srv.join(&bob, bobs.id.as_str()).await;
    assert!(!ann.hallway().await.unwrap().iter().any(|r| r.id == bobs.id));
    assert!(cat.hallway().await.unwrap().iter().any(|r| r.id == bobs.id));
    assert!(ann.search("quiz").await.unwrap().rooms.is_empty());
    assert_eq!(cat.search("quiz").await.unwrap().rooms.len(), 1);
    assert!(ann.profile("bob").await.unwrap().hosting_now.is_empty());
    assert_eq!(cat.profile("bob").await.unwrap().hosting_now.len(), 1);

    // Ann may walk into Bob's room, but Bob cannot invite her to speak; Cat he can.
    let ann_in_bobs = srv.join(&ann, bobs.id.as_str()).await;
    let cat_in_bobs = srv.join(&cat, bobs.id.as_str()).await;
    sees(&bob_host, ann_in_bobs.me(), true).await;
    assert_eq!(
        bob_host
            .invite_to_speak(ann_in_bobs.me())
            .await
            .err()
            .and_then(code),
        Some(ErrorCode::Forbidden)
    );
    bob_host
        .invite_to_speak(cat_in_bobs.me())
        .await
        .expect("cat can be invited");

    // Bob cannot make Ann a co-host of his event (refused like an unknown handle).
    let event = |cohosts: Vec<String>| CreateEventRequest {
        title: "Bob's show".into(),
        description: String::new(),
        starts_at: tomorrow(),
        time_zone: None,
        kind: RoomKind::Open,
        cohosts,
    };
    assert_eq!(
        err_code(bob.create_event(&event(vec!["ann".into()])).await),
        ErrorCode::NotFound
    );
    bob.create_event(&event(vec!["cat".into()]))
        .await
        .expect("cat can co-host");

    // Becoming a moderator where the blocked member listens takes them out quietly.
    let cats = room(&cat, "Cat's room", RoomKind::Open).await;
    let cat_host = srv.join(&cat, cats.id.as_str()).await;
    let bob_listens = srv.join(&bob, cats.id.as_str()).await;
    let ann_listens = srv.join(&ann, cats.id.as_str()).await;
    sees(&cat_host, &bob_id, true).await;
    sees(&cat_host, ann_listens.me(), true).await;
    cat_host.invite_to_speak(ann_listens.me()).await.unwrap();
    ann_listens
        .wait_for(PATIENCE, |s| {
            s.room.room.as_ref().is_some_and(|r| r.invited_to_speak)
        })
        .await
        .unwrap();
    ann_listens.accept_invite().await.unwrap();
    cat_host.make_moderator(ann_listens.me()).await.unwrap();
    assert!(matches!(
        ended(&bob_listens).await,
        ConnectionState::Ended {
            reason: Some(CloseReason::Left),
            ..
        }
    ));
    sees(&cat_host, &bob_id, false).await;
    let refused = srv.try_join(&bob, cats.id.as_str(), None).await;
    assert_eq!(refused.err().and_then(code), Some(ErrorCode::NotFound));

    // Blocking someone who listens in a room one moderates takes them out at once.
    let dan_in = srv.join(&dan, open.id.as_str()).await;
    sees(&host, dan_in.me(), true).await;
    ann.block("dan").await.unwrap();
    ended(&dan_in).await;
    sees(&host, dan_in.me(), false).await;

    // An unblock opens the door again (the refused link left no access behind).
    ann.unblock("bob").await.unwrap();
    assert!(
        !bob.hallway()
            .await
            .unwrap()
            .iter()
            .any(|r| r.id == closed.id),
        "the refused link granted nothing"
    );
    let back = srv
        .try_join(&bob, open.id.as_str(), None)
        .await
        .expect("bob joins after the unblock");
    back.leave(true).await.unwrap();
    bob.follow("ann").await.expect("follow after the unblock");
}
each_backend!(
    blocks_refuse_joins_links_follows_invites_cohosts_and_hide_rooms,
    blocks
);

async fn reports(b: Backend) {
    let srv = TestServer::start(b).await;
    let root = srv.admin("root").await;
    let ann = srv.member(&root, "ann").await;
    let bob = srv.member(&root, "bob").await;
    let cat = srv.member(&root, "cat").await;
    ann.update_profile(&ruang_proto::ProfileUpdate {
        bio: Some("I host rooms".into()),
        ..Default::default()
    })
    .await
    .unwrap();

    // A room with Ann hosting and Cat speaking.
    let r = room(&ann, "Loud room", RoomKind::Open).await;
    let host = srv.join(&ann, r.id.as_str()).await;
    let speaker = srv.join(&cat, r.id.as_str()).await;
    sees(&host, speaker.me(), true).await;
    ruang_tests::invite_up(&host, &speaker).await;
    host.wait_for(PATIENCE, |s| {
        s.room.room.as_ref().is_some_and(|r| r.stage.len() == 2)
    })
    .await
    .unwrap();

    let room_report = |details: &str| ReportRequest {
        kind: ReportKind::Room,
        handle: None,
        room: Some(r.id.clone()),
        message: None,
        reason: ReportReason::Harassment,
        details: details.into(),
    };
    let first = bob
        .report(&room_report("they shout at people"))
        .await
        .unwrap();
    assert!(!first.coalesced);
    let again = bob.report(&room_report("")).await.unwrap();
    assert!(again.coalesced);
    assert_eq!(again.id, first.id);

    let member = bob
        .report(&ReportRequest {
            kind: ReportKind::Member,
            handle: Some("@ann".into()),
            room: None,
            message: None,
            reason: ReportReason::Impersonation,
            details: String::new(),
        })
        .await
        .unwrap();
    // Messages are looked up in the room's chat: unknown ones are not found.
    let msg = bob
        .report(&ReportRequest {
            kind: ReportKind::Message,
            handle: None,
            room: Some(r.id.clone()),
            message: Some("m1".into()),
            reason: ReportReason::Spam,
            details: String::new(),
        })
        .await;
    assert_eq!(err_code(msg), ErrorCode::NotFound);
    // A real message: Cat posts, the host deletes it, Bob (in the audience) reports it. The
    // report keeps the text and the author although the message is gone from the chat.
    let bob_in = srv.join(&bob, r.id.as_str()).await;
    speaker
        .send_chat("buy followers at spam.example")
        .await
        .unwrap();
    let posted = host
        .wait_for(PATIENCE, |s| {
            s.room.room.as_ref().is_some_and(|r| {
                r.chat_recent
                    .iter()
                    .any(|m| m.text == "buy followers at spam.example")
            })
        })
        .await
        .unwrap();
    let posted = posted
        .room
        .room
        .unwrap()
        .chat_recent
        .into_iter()
        .find(|m| m.text == "buy followers at spam.example")
        .unwrap();
    host.delete_chat(posted.id).await.unwrap();
    bob_in
        .wait_for(PATIENCE, |s| {
            s.room
                .room
                .as_ref()
                .is_some_and(|r| r.chat_recent.is_empty())
        })
        .await
        .unwrap();
    let message_report = bob
        .report(&ReportRequest {
            kind: ReportKind::Message,
            handle: None,
            room: Some(r.id.clone()),
            message: Some(posted.id.to_string()),
            reason: ReportReason::Spam,
            details: String::new(),
        })
        .await
        .unwrap();
    assert!(!message_report.coalesced);
    // Bad input: clear errors, nothing stored.
    let mut long = room_report(&"x".repeat(1001));
    long.kind = ReportKind::Room;
    assert_eq!(err_code(bob.report(&long).await), ErrorCode::InvalidField);
    let me_myself = ReportRequest {
        kind: ReportKind::Member,
        handle: Some("bob".into()),
        room: None,
        message: None,
        reason: ReportReason::Other,
        details: String::new(),
    };
    assert_eq!(
        err_code(bob.report(&me_myself).await),
        ErrorCode::InvalidTarget
    );
    let raw = reqwest::Client::new()
        .post(format!("{}/v1/reports", srv.url))
        .bearer_auth(bob.token().unwrap())
        .body(r#"{"kind":"member","handle":"ann","reason":"rude"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let missing = ReportRequest {
        kind: ReportKind::Room,
        handle: None,
        room: Some(RoomId::from("nosuchroom")),
        message: None,
        reason: ReportReason::Other,
        details: String::new(),
    };
    assert_eq!(err_code(bob.report(&missing).await), ErrorCode::NotFound);

    // Only admins read reports.
    assert_eq!(
        err_code(bob.admin_reports(ReportStatus::Open, None, None).await),
        ErrorCode::Forbidden
    );
    let open = root
        .admin_reports(ReportStatus::Open, Some(ReportKind::Room), None)
        .await
        .unwrap();
    assert_eq!(open.reports.len(), 1);
    let rep = &open.reports[0];
    assert_eq!(rep.id, first.id);
    assert_eq!(rep.count, 2);
    assert_eq!(
        rep.details, "they shout at people",
        "an empty repeat keeps the details"
    );
    assert_eq!(rep.reporter.handle, "bob");
    let ev = &rep.evidence;
    assert_eq!(ev.room.as_ref(), Some(&r.id));
    assert_eq!(ev.room_title.as_deref(), Some("Loud room"));
    assert!(ev.live);
    assert!(ev.room_time_ms.is_some_and(|t| t >= 0));
    assert_eq!(
        ev.hosts
            .iter()
            .map(|h| h.handle.as_str())
            .collect::<Vec<_>>(),
        ["ann"]
    );
    let mut stage: Vec<(&str, Role)> = ev
        .stage
        .iter()
        .map(|s| (s.handle.as_str(), s.role))
        .collect();
    stage.sort_by_key(|s| s.0);
    assert_eq!(stage, [("ann", Role::Moderator), ("cat", Role::Speaker)]);
    let members = root
        .admin_reports(ReportStatus::Open, Some(ReportKind::Member), None)
        .await
        .unwrap();
    assert_eq!(members.reports.len(), 1);
    assert_eq!(members.reports[0].id, member.id);
    assert_eq!(
        members.reports[0].evidence.bio.as_deref(),
        Some("I host rooms")
    );
    assert_eq!(
        members.reports[0]
            .target_user
            .as_ref()
            .map(|u| u.handle.as_str()),
        Some("ann")
    );
    let messages = root
        .admin_reports(ReportStatus::Open, Some(ReportKind::Message), None)
        .await
        .unwrap();
    assert_eq!(messages.reports.len(), 1);
    let m = &messages.reports[0];
    assert_eq!(m.id, message_report.id);
    assert_eq!(
        m.evidence.message_text.as_deref(),
        Some("buy followers at spam.example")
    );
    assert_eq!(
        m.evidence
            .message_author
            .as_ref()
            .map(|u| u.handle.as_str()),
        Some("cat")
    );
    assert_eq!(
        m.target_user.as_ref().map(|u| u.handle.as_str()),
        Some("cat")
    );
    assert_eq!(
        m.target_message.as_deref(),
        Some(posted.id.to_string().as_str())
    );
    let about_ann = root.admin_member("ann").await.unwrap();
    assert_eq!(about_ann.reports.len(), 1);

    // Resolving: the report leaves the open list, the audit log has it.
    let done = root
        .admin_resolve(
            &first.id,
            &ResolveReportRequest {
                status: ReportStatus::Resolved,
                note: "talked to the host".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(done.status, ReportStatus::Resolved);
    assert_eq!(done.resolution_note.as_deref(), Some("talked to the host"));
    assert_eq!(
        err_code(
            root.admin_resolve(
                &first.id,
                &ResolveReportRequest {
                    status: ReportStatus::Dismissed,
                    note: String::new(),
                },
            )
            .await
        ),
        ErrorCode::NotFound,
        "only open reports are resolved"
    );
    assert!(root
        .admin_reports(ReportStatus::Open, Some(ReportKind::Room), None)
        .await
        .unwrap()
        .reports
        .is_empty());
    let audit = root.admin_audit(None).await.unwrap();
    assert!(audit
        .entries
        .iter()
        .any(|e| e.action == "resolve_report" && e.target == first.id && e.actor.handle == "root"));
    // A new report on a resolved target opens a new one.
    let fresh = bob.report(&room_report("again")).await.unwrap();
    assert!(!fresh.coalesced);
    assert_ne!(fresh.id, first.id);

    // A flood: new reports past the hourly budget are refused; duplicates stay harmless.
    let mut filed = 4; // room (resolved), member, message, room again
    let mut limited = false;
    for i in 0..12 {
        let target = room(&root, &format!("Target {i}"), RoomKind::Open).await;
        let res = bob
            .report(&ReportRequest {
                kind: ReportKind::Room,
                handle: None,
                room: Some(target.id.clone()),
                message: None,
                reason: ReportReason::Spam,
                details: String::new(),
            })
            .await;
        match res {
            Ok(_) => filed += 1,
            Err(e) => {
                assert_eq!(code(e), Some(ErrorCode::RateLimited));
                limited = true;
                break;
            }
        }
    }
    assert!(limited, "the flood was limited");
    assert_eq!(filed, ruang_server::service::REPORTS_PER_HOUR);
    // Another member is not affected by Bob's budget.
    cat.report(&room_report("me too"))
        .await
        .expect("cat reports");
}
each_backend!(reports_keep_evidence_coalesce_and_are_rate_limited, reports);

async fn subtree(b: Backend) {
    let srv = TestServer::start(b).await;
    let root = srv.admin("root").await;
    let ann = srv.member(&root, "ann").await;
    let bob = srv.member(&ann, "bob").await;
    let _cat = srv.member(&ann, "cat").await;
    let dan = srv.member(&bob, "dan").await;
    let eve = srv.member(&root, "eve").await;
    let count = |c: ApiClient| async move { c.invites().await.unwrap().len() };
    let in_tree = count(ann.clone()).await
        + count(bob.clone()).await
        + count(_cat.clone()).await
        + count(dan.clone()).await;
    assert!(in_tree > 0);
    let eve_before = count(eve.clone()).await;
    let root_before = count(root.clone()).await;
    // Members cannot do it.
    assert_eq!(
        err_code(ann.admin_revoke_invites("bob", true).await),
        ErrorCode::Forbidden
    );
    let out = root.admin_revoke_invites("ann", true).await.unwrap();
    assert_eq!(out.revoked as usize, in_tree);
    for c in [&ann, &bob, &_cat, &dan] {
        assert!(c.invites().await.unwrap().is_empty());
    }
    assert_eq!(count(eve.clone()).await, eve_before, "outside the subtree");
    assert_eq!(count(root.clone()).await, root_before, "above the subtree");
    // Just one member's.
    let out = root.admin_revoke_invites("eve", false).await.unwrap();
    assert_eq!(out.revoked as usize, eve_before);
    assert_eq!(count(root.clone()).await, root_before);
    let audit = root.admin_audit(None).await.unwrap();
    assert_eq!(
        audit
            .entries
            .iter()
            .filter(|e| e.action == "revoke_invites")
            .count(),
        2
    );
}
each_backend!(
    invite_subtree_revocation_revokes_exactly_the_subtree,
    subtree
);

async fn bans(b: Backend) {
    // Every refused token counts as a failed attempt from this address: room for them all.
    let srv = TestServer::start_with(b, |c| c.auth_failures_per_minute = 1000).await;
    let root = srv.admin("root").await;
    let ann = srv.member(&root, "ann").await;
    let bob = srv.member(&root, "bob").await;
    let bob_codes: Vec<String> = bob
        .invites()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.code)
        .collect();
    assert!(!bob_codes.is_empty());

    // Bob hosts a room alone (it must end) and listens in Ann's (he must leave it).
    let bobs = room(&bob, "Bob's", RoomKind::Open).await;
    let bob_host = srv.join(&bob, bobs.id.as_str()).await;
    let ann_in_bobs = srv.join(&ann, bobs.id.as_str()).await;
    let anns = room(&ann, "Ann's", RoomKind::Open).await;
    let ann_host = srv.join(&ann, anns.id.as_str()).await;
    let bob_listens = srv.join(&bob, anns.id.as_str()).await;
    sees(&ann_host, bob_listens.me(), true).await;

    assert_eq!(
        err_code(ann.admin_ban("bob", "").await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        err_code(root.admin_ban("root", "").await),
        ErrorCode::InvalidTarget
    );
    let out = root.admin_ban("bob", "spam rooms").await.unwrap();
    assert!(out.sessions_revoked >= 1);
    assert_eq!(out.invites_revoked as usize, bob_codes.len());
    assert_eq!((out.rooms_left, out.rooms_ended), (2, 1));

    // His sessions close; his room ended for everyone in it; he left Ann's.
    assert!(matches!(
        ended(&bob_listens).await,
        ConnectionState::Ended {
            reason: Some(CloseReason::SessionRevoked | CloseReason::Left),
            ..
        }
    ));
    ended(&bob_host).await;
    assert!(matches!(
        ended(&ann_in_bobs).await,
        ConnectionState::Ended {
            reason: Some(CloseReason::RoomEnded),
            ..
        }
    ));
    sees(&ann_host, bob_listens.me(), false).await;
    assert!(!ann.hallway().await.unwrap().iter().any(|r| r.id == bobs.id));

    // Every path with his token is refused.
    assert_eq!(err_code(bob.me().await), ErrorCode::Unauthorized);
    assert_eq!(err_code(bob.hallway().await), ErrorCode::Unauthorized);
    assert_eq!(
        err_code(bob.create_room("x", RoomKind::Open).await),
        ErrorCode::Unauthorized
    );
    assert_eq!(
        err_code(bob.room(anns.id.as_str(), None).await),
        ErrorCode::Unauthorized
    );
    assert_eq!(err_code(bob.follow("ann").await), ErrorCode::Unauthorized);
    assert_eq!(err_code(bob.invites().await), ErrorCode::Unauthorized);
    assert_eq!(err_code(bob.search("ann").await), ErrorCode::Unauthorized);
    assert_eq!(
        err_code(bob.notifications(None, None).await),
        ErrorCode::Unauthorized
    );
    assert_eq!(err_code(bob.events().await), ErrorCode::Unauthorized);
    assert_eq!(err_code(bob.block("ann").await), ErrorCode::Unauthorized);
    assert_eq!(
        err_code(
            bob.report(&ReportRequest {
                kind: ReportKind::Member,
                handle: Some("ann".into()),
                room: None,
                message: None,
                reason: ReportReason::Other,
                details: String::new(),
            })
            .await
        ),
        ErrorCode::Unauthorized
    );
    assert_eq!(
        err_code(bob.set_avatar(vec![1, 2, 3]).await),
        ErrorCode::Unauthorized
    );
    // The WebSocket (what the /r/ page does with a member token in the browser).
    let refused = srv.try_join(&bob, anns.id.as_str(), None).await;
    assert_eq!(refused.err().and_then(code), Some(ErrorCode::Unauthorized));
    // His old invite codes are dead.
    for c in &bob_codes {
        assert_eq!(
            err_code(srv.anon().check_invite(c).await),
            ErrorCode::InvalidInvite
        );
        let mut fresh = srv.anon();
        assert_eq!(
            err_code(fresh.signup(c, "bobs_friend", "Friend").await),
            ErrorCode::InvalidInvite
        );
    }
    // The admin console does not take his token either.
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/admin/sign-in", srv.url))
        .header("origin", &srv.url)
        .form(&[("token", bob.token().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    let audit = root.admin_audit(None).await.unwrap();
    let entry = audit
        .entries
        .iter()
        .find(|e| e.action == "ban")
        .expect("the ban is audited");
    assert_eq!(entry.target, "bob");
    assert_eq!(entry.actor.handle, "root");
    assert!(entry.details.contains("spam rooms"));
    let state = root.admin_member("bob").await.unwrap();
    assert!(state.banned_at.is_some());
    assert_eq!(state.ban_reason.as_deref(), Some("spam rooms"));

    // An unban gives his sessions back; his invites stay revoked.
    root.admin_unban("bob").await.unwrap();
    assert_eq!(bob.me().await.unwrap().handle, "bob");
    assert!(bob.invites().await.unwrap().is_empty());
    assert_eq!(
        err_code(root.admin_unban("bob").await),
        ErrorCode::InvalidTarget
    );
    let audit = root.admin_audit(None).await.unwrap();
    assert!(audit
        .entries
        .iter()
        .any(|e| e.action == "unban" && e.target == "bob"));
    let again = srv.join(&bob, anns.id.as_str()).await;
    again.leave(true).await.unwrap();
}
each_backend!(
    banned_member_is_refused_everywhere_and_leaves_every_room,
    bans
);

/// A console client: no redirects followed, cookies by hand.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

async fn console(b: Backend) {
    let srv = TestServer::start(b).await;
    let root = srv.admin("root").await;
    let ann = srv.member(&root, "ann").await;
    let bob = srv.member(&root, "bob").await;
    bob.update_profile(&ruang_proto::ProfileUpdate {
        name: Some("<script>alert(1)</script>".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    ann.report(&ReportRequest {
        kind: ReportKind::Member,
        handle: Some("bob".into()),
        room: None,
        message: None,
        reason: ReportReason::Spam,
        details: "<img src=x onerror=alert(2)>".into(),
    })
    .await
    .unwrap();
    let web = browser();
    let url = |p: &str| format!("{}{p}", srv.url);

    // Signed out: the sign-in form, strict CSP, no script anywhere.
    let resp = web.get(url("/admin")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe"));
    let page = resp.text().await.unwrap();
    assert!(page.contains("action=\"/admin/sign-in\""));
    assert!(!page.contains("<script"));

    // Sign-in: from elsewhere refused; a member's token refused; an admin's accepted.
    let sign_in = |token: String, origin: Option<String>| {
        let mut req = web.post(url("/admin/sign-in")).form(&[("token", token)]);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    let r = sign_in(root.token().unwrap().into(), None).await.unwrap();
    assert_eq!(r.status(), 403, "no Origin");
    let r = sign_in(
        root.token().unwrap().into(),
        Some("https://evil.example".into()),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403, "another origin");
    let r = sign_in(ann.token().unwrap().into(), Some(srv.url.clone()))
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "not an admin");
    assert!(r.headers().get("set-cookie").is_none());
    let r = sign_in(root.token().unwrap().into(), Some(srv.url.clone()))
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.starts_with("ruang_admin="));
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(set.contains(flag), "{flag} in {set}");
    }
    assert!(!set.contains("Secure"), "plain http: no Secure flag");
    let cookie = set.split(';').next().unwrap().to_owned();

    // A console page with the session cookie.
    let page_of = |path: &'static str| {
        let req = web.get(url(path)).header("cookie", cookie.clone());
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    // The reports page, escaped.
    let page = page_of("/admin").await;
    assert!(page.contains("spam"));
    assert!(page.contains("&lt;img src=x onerror=alert(2)&gt;"));
    assert!(!page.contains("<img"));
    let csrf = csrf_of(&page);
    let member_page = page_of("/admin/members/bob").await;
    assert!(member_page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!member_page.contains("<script"));
    assert!(member_page.contains("action=\"/admin/members/bob/ban\""));

    // Ban by form: without the CSRF token, with a wrong one, or from another origin: 403.
    let ban = |form: Vec<(&'static str, String)>, origin: &str, cookie: Option<&str>| {
        let mut req = web
            .post(url("/admin/members/bob/ban"))
            .header("origin", origin)
            .form(&form);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send()
    };
    let reason = ("reason", "spam".to_owned());
    let r = ban(vec![reason.clone()], &srv.url, Some(&cookie))
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "CSRF missing");
    let r = ban(
        vec![reason.clone(), ("csrf", "0".repeat(csrf.len()))],
        &srv.url,
        Some(&cookie),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403, "CSRF wrong");
    let r = ban(
        vec![reason.clone(), ("csrf", csrf.clone())],
        "https://evil.example",
        Some(&cookie),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403, "cross-origin");
    let r = ban(vec![reason.clone(), ("csrf", csrf.clone())], &srv.url, None)
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "no session");
    assert_eq!(
        bob.me().await.unwrap().handle,
        "bob",
        "nothing happened yet"
    );
    let r = ban(
        vec![reason, ("csrf", csrf.clone())],
        &srv.url,
        Some(&cookie),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(err_code(bob.me().await), ErrorCode::Unauthorized);

    // The audit log shows it (and the sign-in).
    let audit = page_of("/admin/audit").await;
    assert!(audit.contains("<td>ban</td><td>bob</td>"), "{audit}");
    assert!(audit.contains("console_sign_in"));

    // Resolve the report by form.
    let report_id = root
        .admin_reports(ReportStatus::Open, None, None)
        .await
        .unwrap()
        .reports[0]
        .id
        .clone();
    let r = web
        .post(url(&format!("/admin/reports/{report_id}")))
        .header("origin", &srv.url)
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("status", "dismissed"),
            ("note", "dup"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(root
        .admin_reports(ReportStatus::Open, None, None)
        .await
        .unwrap()
        .reports
        .is_empty());

    // Sign out: the cookie no longer works.
    let r = web
        .post(url("/admin/sign-out"))
        .header("origin", &srv.url)
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let page = page_of("/admin/audit").await;
    assert!(page.contains("action=\"/admin/sign-in\""));
    let r = web
        .post(url("/admin/members/ann/ban"))
        .header("origin", &srv.url)
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a signed-out cookie changes nothing");
    assert_eq!(ann.me().await.unwrap().handle, "ann");
}
each_backend!(admin_console_sign_in_csrf_ban_audit_over_http, console);

/// Behind https the cookie is Secure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_console_cookie_is_secure_behind_https() {
    let srv = TestServer::start_with(Backend::Sqlite, |c| {
        c.public_url = Some("https://ruang.example".into())
    })
    .await;
    // The API still answers on the loopback address.
    let root = {
        let mut c = ApiClient::new(&format!("http://{}", srv.addr)).unwrap();
        c.signup(&srv.first_invite, "root", "Root").await.unwrap();
        c
    };
    let r = browser()
        .post(format!("http://{}/admin/sign-in", srv.addr))
        .header("origin", "https://ruang.example")
        .form(&[("token", root.token().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap();
    assert!(set.contains("; Secure"), "{set}");
}

async fn banned_media(b: Backend) {
    use ruang_client::media::ruang_media::device::Source;
    use ruang_client::media::MediaSession;
    use ruang_tests::media::{device, forcing_tone, listener_opts};
    let srv = TestServer::start(b).await;
    let root = srv.admin("root").await;
    let bob = srv.member(&root, "bob").await;
    let cat = srv.member(&root, "cat").await;
    let r = room(&root, "Media", RoomKind::Open).await;
    let host = srv.join(&root, r.id.as_str()).await;
    let speaker = srv.join(&bob, r.id.as_str()).await;
    sees(&host, speaker.me(), true).await;
    ruang_tests::invite_up(&host, &speaker).await;
    speaker.set_muted(false).await.unwrap();
    let ear = srv.join(&cat, r.id.as_str()).await;
    let mut ear_dev = device(Source::Silence);
    let ear_media = MediaSession::start(&ear, &mut ear_dev, listener_opts())
        .await
        .expect("listener media");
    // Bob's client would keep sending whatever happens: only the server can stop it.
    let (_mic, mic_media) = forcing_tone(&speaker).await;
    ear_media
        .wait_for(PATIENCE, |s| s.frames_with_audio >= 50)
        .await
        .unwrap_or_else(|s| panic!("bob is heard first: {s:#?}"));
    assert_eq!(srv.metric("ruang_sfu_peers").await, 2.0);

    root.admin_ban("bob", "").await.unwrap();
    // His media peer is closed on the server.
    let until = std::time::Instant::now() + PATIENCE;
    while srv.metric("ruang_sfu_peers").await != 1.0 {
        assert!(
            std::time::Instant::now() < until,
            "bob's media peer was not closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // After what was in flight drains, the listener hears nothing more while it keeps
    // playing (its own playback is the clock; no wall-clock time is measured).
    let drained = ear_media.stats();
    ear_media
        .wait_for(PATIENCE, |s| s.frames_played >= drained.frames_played + 50)
        .await
        .unwrap();
    let settled = ear_media.stats();
    ear_media
        .wait_for(PATIENCE, |s| s.frames_played >= settled.frames_played + 75)
        .await
        .unwrap();
    let later = ear_media.stats();
    assert_eq!(
        later.frames_with_audio, settled.frames_with_audio,
        "nothing of bob is heard after the ban: {later:#?}"
    );
    ear_media.stop().await;
    mic_media.stop().await;
}
each_backend!(banned_speaker_media_stops, banned_media);
