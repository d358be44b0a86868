use super::super::{Outgoing, Persist, RoomRules};
use super::*;

use super::super::tests::uid;

/// "mod" hosts; "a" and "b" listen; "guest-1" is a guest.
fn room() -> RoomRules {
    let mut r = super::super::tests::room();
    r.join_guest(uid("guest-1")).unwrap();
    r
}

fn at(now: i64) -> ChatContext {
    ChatContext {
        now,
        follows_host: false,
    }
}

fn say(r: &mut RoomRules, who: &str, text: &str, now: i64) -> Result<Effects, ErrorCode> {
    r.apply_chat(
        &uid(who),
        &ClientMessage::SendChat { text: text.into() },
        at(now),
    )
}

fn react(
    r: &mut RoomRules,
    who: &str,
    reaction: Reaction,
    to: Option<&str>,
) -> Result<Effects, ErrorCode> {
    r.apply_chat(
        &uid(who),
        &ClientMessage::React {
            reaction,
            to: to.map(uid),
        },
        at(0),
    )
}

fn settings(r: &mut RoomRules, who: &str, mode: ChatMode, slow: u32) -> Result<Effects, ErrorCode> {
    r.apply_chat(
        &uid(who),
        &ClientMessage::SetChatSettings {
            settings: ChatSettings {
                mode,
                slow_seconds: slow,
            },
        },
        at(0),
    )
}

fn only_event(fx: &Effects) -> &RoomEvent {
    match &fx.out[..] {
        [Outgoing::Event {
            to: Audience::All,
            event,
        }] => event,
        other => panic!("expected one event to all, got {other:?}"),
    }
}

#[test]
fn reactions_are_coalesced_per_window_and_target() {
    let mut r = room();
    for _ in 0..40 {
        react(&mut r, "a", Reaction::Clap, None).unwrap();
    }
    for _ in 0..7 {
        react(&mut r, "guest-1", Reaction::Clap, None).unwrap();
    }
    for _ in 0..3 {
        react(&mut r, "b", Reaction::PlusOne, Some("mod")).unwrap();
    }
    // Nothing goes out per tap: one event when the window is taken.
    let fx = r.take_reactions(1_000).expect("a burst");
    let RoomEvent::Reactions { bursts } = only_event(&fx) else {
        panic!("not reactions");
    };
    assert_eq!(
        bursts,
        &vec![
            ReactionBurst {
                reaction: Reaction::Clap,
                to: None,
                count: 47
            },
            ReactionBurst {
                reaction: Reaction::PlusOne,
                to: Some(uid("mod")),
                count: 3
            },
        ]
    );
    // Counted once: the next take has nothing.
    assert!(r.take_reactions(2_000).is_none());
    // A new reaction inside the window waits for the window to end.
    react(&mut r, "a", Reaction::Fire, None).unwrap();
    assert!(r.take_reactions(1_000 + REACTION_WINDOW_MS - 1).is_none());
    assert!(r.take_reactions(1_000 + REACTION_WINDOW_MS).is_some());
}

#[test]
fn reaction_targets_must_be_on_stage() {
    let mut r = room();
    assert_eq!(
        react(&mut r, "a", Reaction::Heart, Some("b")),
        Err(ErrorCode::InvalidTarget)
    );
    assert_eq!(
        react(&mut r, "a", Reaction::Heart, Some("nobody")),
        Err(ErrorCode::TargetNotInRoom)
    );
    assert_eq!(
        react(&mut r, "stranger", Reaction::Heart, None),
        Err(ErrorCode::NotInRoom)
    );
}

#[test]
fn moderators_switch_reactions_off_and_on() {
    let mut r = room();
    react(&mut r, "a", Reaction::Clap, None).unwrap();
    let off = ClientMessage::SetReactionsEnabled { enabled: false };
    assert_eq!(
        r.apply_chat(&uid("a"), &off, at(0)),
        Err(ErrorCode::Forbidden)
    );
    assert_eq!(
        r.apply_chat(&uid("guest-1"), &off, at(0)),
        Err(ErrorCode::Forbidden)
    );
    let fx = r.apply_chat(&uid("mod"), &off, at(0)).unwrap();
    assert_eq!(
        only_event(&fx),
        &RoomEvent::ReactionsEnabled { enabled: false }
    );
    assert_eq!(fx.persist, vec![Persist::ReactionsEnabled(false)]);
    // Pending taps are dropped, new ones refused, and the snapshot says so.
    assert!(r.take_reactions(1_000).is_none());
    assert_eq!(
        react(&mut r, "guest-1", Reaction::Clap, None),
        Err(ErrorCode::ReactionsDisabled)
    );
    assert!(!r.snapshot_for(&uid("a")).unwrap().reactions_enabled);
    // Again: no change, no event, no write.
    assert_eq!(
        r.apply_chat(&uid("mod"), &off, at(0)).unwrap(),
        Effects::default()
    );
    let on = ClientMessage::SetReactionsEnabled { enabled: true };
    r.apply_chat(&uid("mod"), &on, at(0)).unwrap();
    react(&mut r, "guest-1", Reaction::Clap, None).unwrap();
}

#[test]
fn chat_messages_go_to_everyone_with_links() {
    let mut r = room();
    let fx = say(&mut r, "a", "  see https://ruang.example/x. <b>hi</b>  ", 5).unwrap();
    let RoomEvent::ChatMessage { message } = only_event(&fx) else {
        panic!("not a chat message");
    };
    assert_eq!(message.id, 1);
    assert_eq!(message.author.id, uid("a"));
    assert_eq!(message.text, "see https://ruang.example/x. <b>hi</b>");
    assert_eq!(message.at, 5);
    assert_eq!(message.links.len(), 1);
    assert_eq!(message.links[0].url, "https://ruang.example/x");
    assert!(fx.persist.is_empty(), "chat is never stored");
    // The guest sees it in a snapshot too.
    let snap = r.snapshot_for(&uid("guest-1")).unwrap();
    assert_eq!(snap.chat_recent.len(), 1);
    assert!(!snap.chat_more);
    // Bad text: a clear error, nothing kept.
    for bad in ["   ", "a\u{0}b", &"x".repeat(501)] {
        assert_eq!(say(&mut r, "b", bad, 6), Err(ErrorCode::InvalidField));
    }
    assert_eq!(r.chat_log().len(), 1);
}

#[test]
fn guests_read_only_and_strangers_refused() {
    let mut r = room();
    assert_eq!(say(&mut r, "guest-1", "hi", 0), Err(ErrorCode::Forbidden));
    assert_eq!(say(&mut r, "stranger", "hi", 0), Err(ErrorCode::NotInRoom));
    say(&mut r, "a", "hi", 0).unwrap();
    let del = ClientMessage::DeleteChat { id: 1 };
    assert_eq!(
        r.apply_chat(&uid("guest-1"), &del, at(0)),
        Err(ErrorCode::Forbidden)
    );
    assert_eq!(
        settings(&mut r, "guest-1", ChatMode::Off, 0),
        Err(ErrorCode::Forbidden)
    );
}

#[test]
fn delete_removes_from_history_and_log_but_keeps_evidence() {
    let mut r = room();
    say(&mut r, "a", "one", 0).unwrap();
    say(&mut r, "b", "two", 0).unwrap();
    let del = ClientMessage::DeleteChat { id: 1 };
    // Another listener cannot delete a's message.
    assert_eq!(
        r.apply_chat(&uid("b"), &del, at(0)),
        Err(ErrorCode::Forbidden)
    );
    let fx = r.apply_chat(&uid("mod"), &del, at(0)).unwrap();
    assert_eq!(only_event(&fx), &RoomEvent::ChatDeleted { id: 1 });
    assert_eq!(
        r.apply_chat(&uid("mod"), &del, at(0)),
        Err(ErrorCode::NotFound)
    );
    let texts: Vec<String> = r.chat_log().into_iter().map(|m| m.text).collect();
    assert_eq!(texts, vec!["two"]);
    assert_eq!(r.chat_history(None, 50).0.len(), 1);
    let kept = r.chat_message(1).unwrap();
    assert_eq!(kept.message.text, "one");
    assert_eq!(kept.deleted_by, Some(uid("mod")));
    // Authors may delete their own.
    r.apply_chat(&uid("b"), &ClientMessage::DeleteChat { id: 2 }, at(0))
        .unwrap();
    assert!(r.chat_log().is_empty());
}

#[test]
fn chat_off_leaves_moderators_only() {
    let mut r = room();
    assert_eq!(
        settings(&mut r, "a", ChatMode::Off, 0),
        Err(ErrorCode::Forbidden)
    );
    let fx = settings(&mut r, "mod", ChatMode::Off, 0).unwrap();
    assert_eq!(
        fx.persist,
        vec![Persist::ChatSettings(ChatSettings {
            mode: ChatMode::Off,
            slow_seconds: 0
        })]
    );
    assert_eq!(say(&mut r, "a", "hi", 0), Err(ErrorCode::ChatDisabled));
    say(&mut r, "mod", "announcement", 0).unwrap();
    assert_eq!(r.snapshot_for(&uid("a")).unwrap().chat.mode, ChatMode::Off);
    settings(&mut r, "mod", ChatMode::Everyone, 0).unwrap();
    say(&mut r, "a", "hi", 0).unwrap();
}

#[test]
fn followers_only_uses_the_follow_check() {
    let mut r = room();
    settings(&mut r, "mod", ChatMode::Followers, 0).unwrap();
    assert!(r.chat_needs_follow_check(&uid("a")));
    assert!(!r.chat_needs_follow_check(&uid("mod")));
    assert_eq!(say(&mut r, "a", "hi", 0), Err(ErrorCode::ChatFollowersOnly));
    let follower = ChatContext {
        now: 0,
        follows_host: true,
    };
    r.apply_chat(
        &uid("a"),
        &ClientMessage::SendChat { text: "hi".into() },
        follower,
    )
    .unwrap();
    say(&mut r, "mod", "hosts always may", 0).unwrap();
}

#[test]
fn slow_mode_spaces_members_but_not_moderators() {
    let mut r = room();
    assert_eq!(
        settings(&mut r, "mod", ChatMode::Everyone, MAX_SLOW_MODE_SECONDS + 1),
        Err(ErrorCode::InvalidField)
    );
    settings(&mut r, "mod", ChatMode::Everyone, 10).unwrap();
    say(&mut r, "a", "1", 1_000).unwrap();
    assert_eq!(say(&mut r, "a", "2", 10_999), Err(ErrorCode::SlowMode));
    // Others are not held back by a's wait.
    say(&mut r, "b", "1", 2_000).unwrap();
    say(&mut r, "a", "2", 11_000).unwrap();
    for i in 0..3 {
        say(&mut r, "mod", &format!("m{i}"), 11_000).unwrap();
    }
}

#[test]
fn a_flood_from_one_member_is_rate_limited_alone() {
    let mut r = room();
    let mut sent = 0;
    let mut limited = 0;
    for i in 0..20 {
        match say(&mut r, "a", &format!("spam {i}"), 1_000) {
            Ok(_) => sent += 1,
            Err(ErrorCode::RateLimited) => limited += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(sent, CHAT_BURST as usize);
    assert_eq!(limited, 20 - CHAT_BURST as usize);
    say(&mut r, "b", "still here", 1_000).unwrap();
    // The budget comes back with time.
    say(
        &mut r,
        "a",
        "later",
        1_000 + (1000.0 / CHAT_PER_SECOND) as i64,
    )
    .unwrap();
}

#[test]
fn history_pages_back_by_id() {
    let mut r = room();
    for i in 0..120 {
        // Three members so the flood limit does not interfere.
        let who = ["a", "b", "mod"][i % 3];
        say(&mut r, who, &format!("m{i}"), i as i64 * 10_000).unwrap();
    }
    let snap = r.snapshot_for(&uid("a")).unwrap();
    assert_eq!(snap.chat_recent.len(), CHAT_SNAPSHOT);
    assert!(snap.chat_more);
    assert_eq!(snap.chat_recent.last().unwrap().text, "m119");
    let oldest = snap.chat_recent[0].id;
    let (page, more) = r.chat_history(Some(oldest), 60);
    assert_eq!(page.len(), 60);
    assert!(more);
    assert_eq!(page.last().unwrap().id, oldest - 1);
    assert!(page.windows(2).all(|w| w[0].id < w[1].id));
    let (rest, more) = r.chat_history(Some(page[0].id), 100);
    assert_eq!(rest.len(), 10);
    assert!(!more);
    assert_eq!(rest[0].text, "m0");
    // The whole log, with times, for recordings.
    let log = r.chat_log();
    assert_eq!(log.len(), 120);
    assert_eq!(log[5].at, 50_000);
}

#[test]
fn reaction_limiter_drops_and_tells_once_per_window() {
    let mut l = ReactionLimiter::new(0);
    let allowed = (0..100)
        .filter(|_| l.check(0) == ReactionVerdict::Allow)
        .count();
    assert_eq!(allowed, REACTION_BURST as usize);
    // Still t=0: the next refusals were already told.
    assert_eq!(l.check(0), ReactionVerdict::Drop);
    // Tokens come back at the refill rate, and a refusal after a new window is told again.
    let later = REACTION_NOTICE_MS;
    let mut verdicts = Vec::new();
    for _ in 0..10 {
        verdicts.push(l.check(later));
    }
    assert_eq!(
        verdicts
            .iter()
            .filter(|v| **v == ReactionVerdict::Allow)
            .count(),
        REACTIONS_PER_SECOND as usize
    );
    assert_eq!(
        verdicts
            .iter()
            .filter(|v| **v == ReactionVerdict::DropAndTell)
            .count(),
        1
    );
}
