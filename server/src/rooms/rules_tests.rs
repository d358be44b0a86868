use super::*;

pub(super) fn user(id: &str) -> UserSummary {
    UserSummary {
        id: UserId::from(id),
        handle: id.to_owned(),
        name: id.to_uppercase(),
        avatar: None,
    }
}

pub(super) fn uid(id: &str) -> UserId {
    UserId::from(id)
}

/// A room created by "mod" with listeners "a" and "b".
pub(super) fn room() -> RoomRules {
    let mut r = RoomRules::new(
        RoomId::from("r1"),
        "Talk".into(),
        RoomKind::Open,
        user("mod"),
        0,
    );
    r.join(user("a"), false).unwrap();
    r.join(user("b"), false).unwrap();
    r
}

pub(super) fn events_for(fx: &Effects, viewer: &str) -> Vec<RoomEvent> {
    fx.out
        .iter()
        .filter_map(|o| match o {
            Outgoing::Event { to, event } if to.includes(&uid(viewer)) => Some(event.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn creator_is_unmuted_moderator_and_joiners_listen() {
    let r = room();
    assert_eq!(r.role_of(&uid("mod")), Some(Role::Moderator));
    assert!(r.audible(&uid("mod")));
    assert_eq!(r.role_of(&uid("a")), Some(Role::Listener));
    assert!(!r.audible(&uid("a")));
    let snap = r.snapshot_for(&uid("a")).unwrap();
    assert_eq!(snap.stage.len(), 1);
    assert_eq!(snap.audience.len(), 2);
    assert_eq!(snap.counts.listeners, 2);
}

#[test]
fn full_hand_raise_invite_accept_and_back() {
    let mut r = room();
    let fx = r.apply(&uid("a"), &ClientMessage::RaiseHand).unwrap();
    // Moderators and the raiser hear about the hand, nobody else.
    assert!(matches!(
        events_for(&fx, "mod")[..],
        [RoomEvent::HandRaised { .. }]
    ));
    assert!(matches!(
        events_for(&fx, "a")[..],
        [RoomEvent::HandRaised { .. }]
    ));
    assert!(events_for(&fx, "b").is_empty());
    assert_eq!(r.hand_queue().len(), 1);
    assert!(r.snapshot_for(&uid("b")).unwrap().hands.is_empty());

    let fx = r
        .apply(
            &uid("mod"),
            &ClientMessage::InviteToSpeak { user: uid("a") },
        )
        .unwrap();
    assert!(matches!(
        events_for(&fx, "a")[..],
        [RoomEvent::InvitedToSpeak { .. }]
    ));
    assert!(r.hand_queue()[0].invited);
    assert_eq!(r.role_of(&uid("a")), Some(Role::Listener), "needs consent");

    let fx = r.apply(&uid("a"), &ClientMessage::AcceptInvite).unwrap();
    assert_eq!(r.role_of(&uid("a")), Some(Role::Speaker));
    assert!(r.hand_queue().is_empty());
    assert!(fx.persist.contains(&Persist::Participant {
        user: uid("a"),
        role: Role::Speaker,
        muted: true,
    }));
    // Joins the stage muted; may unmute, and the mute state is persisted.
    assert!(!r.audible(&uid("a")));
    let fx = r
        .apply(&uid("a"), &ClientMessage::SetMuted { muted: false })
        .unwrap();
    assert!(r.audible(&uid("a")));
    assert_eq!(
        fx.persist,
        vec![Persist::Muted {
            user: uid("a"),
            muted: false
        }]
    );

    let fx = r
        .apply(
            &uid("mod"),
            &ClientMessage::MoveToAudience { user: uid("a") },
        )
        .unwrap();
    assert_eq!(r.role_of(&uid("a")), Some(Role::Listener));
    assert!(!r.audible(&uid("a")), "a demoted speaker is never heard");
    assert!(events_for(&fx, "b")
        .iter()
        .any(|e| matches!(e, RoomEvent::ParticipantUpdated { participant } if participant.role == Role::Listener)));
}

#[test]
fn accept_without_invite_is_refused() {
    let mut r = room();
    assert_eq!(
        r.apply(&uid("a"), &ClientMessage::AcceptInvite),
        Err(ErrorCode::NoInvite)
    );
    assert_eq!(r.role_of(&uid("a")), Some(Role::Listener));
}

#[test]
fn decline_lowers_hand_and_tells_moderators() {
    let mut r = room();
    r.apply(&uid("a"), &ClientMessage::RaiseHand).unwrap();
    r.apply(
        &uid("mod"),
        &ClientMessage::InviteToSpeak { user: uid("a") },
    )
    .unwrap();
    let fx = r.apply(&uid("a"), &ClientMessage::DeclineInvite).unwrap();
    assert!(events_for(&fx, "mod")
        .iter()
        .any(|e| matches!(e, RoomEvent::InviteDeclined { .. })));
    assert!(r.hand_queue().is_empty());
    assert_eq!(r.role_of(&uid("a")), Some(Role::Listener));
    assert_eq!(
        r.apply(&uid("a"), &ClientMessage::AcceptInvite),
        Err(ErrorCode::NoInvite)
    );
}

#[test]
fn moderator_only_actions_are_refused_for_others() {
    let mut r = room();
    let cmds = [
        ClientMessage::InviteToSpeak { user: uid("b") },
        ClientMessage::MoveToAudience { user: uid("mod") },
        ClientMessage::Mute { user: uid("mod") },
        ClientMessage::MakeModerator { user: uid("a") },
        ClientMessage::Remove { user: uid("b") },
        ClientMessage::SetHandsEnabled { enabled: false },
        ClientMessage::EndRoom,
    ];
    for cmd in &cmds {
        assert_eq!(
            r.apply(&uid("a"), cmd),
            Err(ErrorCode::Forbidden),
            "{cmd:?}"
        );
    }
    // A speaker is not a moderator either.
    r.apply(
        &uid("mod"),
        &ClientMessage::InviteToSpeak { user: uid("a") },
    )
    .unwrap();
    r.apply(&uid("a"), &ClientMessage::AcceptInvite).unwrap();
    for cmd in &cmds {
        assert_eq!(
            r.apply(&uid("a"), cmd),
            Err(ErrorCode::Forbidden),
            "{cmd:?}"
        );
    }
    assert!(!r.ended);
    assert_eq!(
        r.apply(&uid("zed"), &ClientMessage::RaiseHand),
        Err(ErrorCode::NotInRoom)
    );
}

#[test]
fn listeners_cannot_unmute_or_leave_stage() {
    let mut r = room();
    assert_eq!(
        r.apply(&uid("a"), &ClientMessage::SetMuted { muted: false }),
        Err(ErrorCode::NotOnStage)
    );
    assert!(!r.audible(&uid("a")));
    assert_eq!(
        r.apply(&uid("a"), &ClientMessage::LeaveStage),
        Err(ErrorCode::NotOnStage)
    );
}

#[test]
fn moderator_mute_and_speaker_unmute() {
    let mut r = room();
    r.apply(
        &uid("mod"),
        &ClientMessage::InviteToSpeak { user: uid("a") },
    )
    .unwrap();
    r.apply(&uid("a"), &ClientMessage::AcceptInvite).unwrap();
    r.apply(&uid("a"), &ClientMessage::SetMuted { muted: false })
        .unwrap();
    r.apply(&uid("mod"), &ClientMessage::Mute { user: uid("a") })
        .unwrap();
    assert!(!r.audible(&uid("a")));
    r.apply(&uid("a"), &ClientMessage::SetMuted { muted: false })
        .unwrap();
    assert!(r.audible(&uid("a")));
    // Muting a listener makes no sense.
    assert_eq!(
        r.apply(&uid("mod"), &ClientMessage::Mute { user: uid("b") }),
        Err(ErrorCode::InvalidTarget)
    );
}

#[test]
fn hands_can_be_switched_off() {
    let mut r = room();
    r.apply(&uid("a"), &ClientMessage::RaiseHand).unwrap();
    let fx = r
        .apply(
            &uid("mod"),
            &ClientMessage::SetHandsEnabled { enabled: false },
        )
        .unwrap();
    assert!(events_for(&fx, "b").contains(&RoomEvent::HandsEnabled { enabled: false }));
    assert!(r.hand_queue().is_empty(), "switching off clears the queue");
    assert_eq!(
        r.apply(&uid("b"), &ClientMessage::RaiseHand),
        Err(ErrorCode::HandsDisabled)
    );
    // Moderators can still invite directly.
    r.apply(
        &uid("mod"),
        &ClientMessage::InviteToSpeak { user: uid("b") },
    )
    .unwrap();
    r.apply(&uid("b"), &ClientMessage::AcceptInvite).unwrap();
    assert_eq!(r.role_of(&uid("b")), Some(Role::Speaker));
}

#[test]
fn hand_queue_keeps_order() {
    let mut r = room();
    r.join(user("c"), false).unwrap();
    for who in ["b", "c", "a"] {
        r.apply(&uid(who), &ClientMessage::RaiseHand).unwrap();
    }
    let order: Vec<_> = r
        .hand_queue()
        .into_iter()
        .map(|h| h.participant.user.handle)
        .collect();
    assert_eq!(order, ["b", "c", "a"]);
    r.apply(&uid("c"), &ClientMessage::LowerHand).unwrap();
    let snap = r.snapshot_for(&uid("mod")).unwrap();
    assert_eq!(snap.hands.len(), 2);
    assert_eq!(snap.counts.hands, 2);
    assert_eq!(r.snapshot_for(&uid("a")).unwrap().counts.hands, 0);
}

#[test]
fn removed_people_cannot_rejoin() {
    let mut r = room();
    let fx = r
        .apply(&uid("mod"), &ClientMessage::Remove { user: uid("a") })
        .unwrap();
    assert!(events_for(&fx, "a").contains(&RoomEvent::YouWereRemoved { by: uid("mod") }));
    assert!(events_for(&fx, "b").contains(&RoomEvent::ParticipantLeft {
        user: uid("a"),
        reason: LeftReason::Removed
    }));
    assert!(fx.out.contains(&Outgoing::Close {
        user: uid("a"),
        reason: CloseReason::Removed
    }));
    assert_eq!(
        fx.persist,
        vec![Persist::Removed {
            user: uid("a"),
            by: uid("mod")
        }],
        "removal is one write"
    );
    assert_eq!(r.role_of(&uid("a")), None);
    assert_eq!(
        r.join(user("a"), false).unwrap_err(),
        ErrorCode::RemovedFromRoom
    );
    // Nobody removes the creator or themselves.
    r.apply(
        &uid("mod"),
        &ClientMessage::MakeModerator { user: uid("b") },
    )
    .unwrap();
    assert_eq!(
        r.apply(&uid("b"), &ClientMessage::Remove { user: uid("mod") }),
        Err(ErrorCode::InvalidTarget)
    );
    assert_eq!(
        r.apply(&uid("b"), &ClientMessage::Remove { user: uid("b") }),
        Err(ErrorCode::InvalidTarget)
    );
}

#[test]
fn room_ends_when_last_moderator_leaves() {
    let mut r = room();
    r.apply(
        &uid("mod"),
        &ClientMessage::MakeModerator { user: uid("a") },
    )
    .unwrap();
    r.leave(&uid("mod"), false);
    assert!(!r.ended, "another moderator remains");
    let fx = r.leave(&uid("a"), false);
    assert!(r.ended);
    assert!(events_for(&fx, "b").contains(&RoomEvent::Ended));
    assert!(fx.persist.contains(&Persist::Ended));
    assert_eq!(r.join(user("z"), false).unwrap_err(), ErrorCode::RoomEnded);
    assert_eq!(
        r.apply(&uid("b"), &ClientMessage::RaiseHand),
        Err(ErrorCode::RoomEnded)
    );
}

#[test]
fn moderator_ends_room() {
    let mut r = room();
    let fx = r.apply(&uid("mod"), &ClientMessage::EndRoom).unwrap();
    assert!(r.ended);
    assert!(fx.out.contains(&Outgoing::CloseAll(CloseReason::RoomEnded)));
}

#[test]
fn last_moderator_cannot_step_down() {
    let mut r = room();
    assert_eq!(
        r.apply(&uid("mod"), &ClientMessage::LeaveStage),
        Err(ErrorCode::LastModerator)
    );
    assert_eq!(
        r.apply(
            &uid("mod"),
            &ClientMessage::MoveToAudience { user: uid("mod") }
        ),
        Err(ErrorCode::LastModerator)
    );
}

#[test]
fn quiet_leave_is_hidden() {
    let mut r = room();
    let fx = r.leave(&uid("a"), true);
    assert!(events_for(&fx, "b").contains(&RoomEvent::ParticipantLeft {
        user: uid("a"),
        reason: LeftReason::Hidden
    }));
    let fx = r.leave(&uid("b"), false);
    assert!(
        events_for(&fx, "mod").contains(&RoomEvent::ParticipantLeft {
            user: uid("b"),
            reason: LeftReason::Left
        })
    );
}

#[test]
fn made_moderator_gets_resync_and_powers() {
    let mut r = room();
    let fx = r
        .apply(
            &uid("mod"),
            &ClientMessage::MakeModerator { user: uid("a") },
        )
        .unwrap();
    assert!(fx.out.contains(&Outgoing::Resync(uid("a"))));
    assert_eq!(r.role_of(&uid("a")), Some(Role::Moderator));
    r.apply(&uid("a"), &ClientMessage::InviteToSpeak { user: uid("b") })
        .unwrap();
}

#[test]
fn big_rooms_send_joins_only_for_the_visible_sample() {
    let mut r = RoomRules::new(
        RoomId::from("r"),
        "Big".into(),
        RoomKind::Open,
        user("mod"),
        0,
    )
    .with_audience_sample(3);
    let mut announced = 0;
    for i in 0..10 {
        let (fx, resumed) = r.join(user(&format!("l{i}")), false).unwrap();
        assert!(!resumed);
        announced += events_for(&fx, "mod").len();
    }
    assert_eq!(announced, 3, "only the first three joins are broadcast");
    let snap = r.snapshot_for(&uid("l9")).unwrap();
    assert_eq!(snap.audience.len(), 3);
    assert_eq!(snap.counts.listeners, 10);

    // A visible listener leaves: the next one slides into view.
    let fx = r.leave(&uid("l1"), false);
    let seen = events_for(&fx, "mod");
    assert!(seen.contains(&RoomEvent::ParticipantLeft {
        user: uid("l1"),
        reason: LeftReason::Left
    }));
    assert!(seen
        .iter()
        .any(|e| matches!(e, RoomEvent::ParticipantJoined { participant } if participant.user.id == uid("l3"))));
    // A hidden listener leaves: nobody is told.
    let fx = r.leave(&uid("l8"), false);
    assert!(events_for(&fx, "mod").is_empty());

    let (page, next, total) = r.audience_page(0, 4);
    assert_eq!(total, 8);
    assert_eq!(page.len(), 4);
    assert_eq!(next, Some(4));
    let (page, next, _) = r.audience_page(4, 4);
    assert_eq!(page.len(), 4);
    assert_eq!(next, None);
}

#[test]
fn counts_are_coalesced() {
    let mut r = room();
    assert!(r.take_counts().is_some());
    assert!(r.take_counts().is_none(), "nothing changed");
    r.join(user("c"), false).unwrap();
    r.join(user("d"), false).unwrap();
    let fx = r.take_counts().unwrap();
    let for_a = events_for(&fx, "a");
    assert_eq!(
        for_a,
        vec![RoomEvent::Counts {
            counts: Counts {
                speakers: 1,
                listeners: 4,
                hands: 0
            }
        }]
    );
}

#[test]
fn disconnect_keeps_role_within_grace_then_expires() {
    let mut r = room();
    r.apply(
        &uid("mod"),
        &ClientMessage::InviteToSpeak { user: uid("a") },
    )
    .unwrap();
    r.apply(&uid("a"), &ClientMessage::AcceptInvite).unwrap();
    r.disconnected(&uid("a"), 11_000);
    assert!(r.expire(5_000).out.is_empty());
    let (_, resumed) = r.join(user("a"), false).unwrap();
    assert!(resumed);
    assert_eq!(r.role_of(&uid("a")), Some(Role::Speaker));
    r.disconnected(&uid("a"), 20_000);
    let fx = r.expire(20_000);
    assert!(!fx.out.is_empty());
    assert_eq!(r.role_of(&uid("a")), None);
    // The last moderator timing out ends the room.
    r.disconnected(&uid("mod"), 30_000);
    r.expire(40_000);
    assert!(r.ended);
}

#[test]
fn restored_room_keeps_roles() {
    let base = RoomRules::new(
        RoomId::from("r"),
        "T".into(),
        RoomKind::Closed,
        user("mod"),
        0,
    );
    let r = base.restore(
        vec![
            Member::new(user("mod"), Role::Moderator),
            Member::new(user("s"), Role::Speaker),
            Member::new(user("l"), Role::Listener),
        ],
        [uid("x")],
        100,
    );
    assert_eq!(r.role_of(&uid("s")), Some(Role::Speaker));
    assert!(r.is_removed(&uid("x")));
    assert_eq!(r.member(&uid("l")).unwrap().absent_until, Some(100));
    assert!(r.has_moderator());
}

#[test]
fn guests_are_counted_listeners_that_can_do_nothing_else() {
    let mut r = room();
    let g = uid("guest-abc");
    r.join_guest(g.clone()).unwrap();
    assert_eq!(r.counts(false).listeners, 3);
    // Not listed by name, never audible, but sees the room.
    let snap = r.snapshot_for(&g).unwrap();
    assert_eq!(snap.audience.len(), 2);
    assert_eq!(snap.you.role, Role::Listener);
    assert_eq!(snap.you.user.name, "Guest");
    assert!(!r.audible(&g));
    // Counts reach guests.
    let fx = r.take_counts().unwrap();
    assert!(matches!(
        events_for(&fx, "guest-abc")[..],
        [RoomEvent::Counts { .. }]
    ));
    for msg in [
        ClientMessage::RaiseHand,
        ClientMessage::AcceptInvite,
        ClientMessage::SetMuted { muted: false },
        ClientMessage::EndRoom,
    ] {
        assert_eq!(r.apply(&g, &msg), Err(ErrorCode::Forbidden), "{msg:?}");
    }
    // Moderators cannot put a guest on stage or act on them.
    for msg in [
        ClientMessage::InviteToSpeak { user: g.clone() },
        ClientMessage::MakeModerator { user: g.clone() },
        ClientMessage::Mute { user: g.clone() },
        ClientMessage::Remove { user: g.clone() },
    ] {
        assert_eq!(
            r.apply(&uid("mod"), &msg),
            Err(ErrorCode::InvalidTarget),
            "{msg:?}"
        );
    }
    assert_eq!(r.role_of(&g), None);
    r.guest_left(&g);
    assert_eq!(r.counts(false).listeners, 2);
    assert!(r.snapshot_for(&g).is_none());
}

#[test]
fn event_cohosts_join_as_muted_moderators() {
    let mut r = room();
    r.cohosts.insert(UserId("co".into()));
    let (fx, resumed) = r.join(user("co"), false).unwrap();
    assert!(!resumed);
    assert_eq!(r.role_of(&UserId("co".into())), Some(Role::Moderator));
    assert!(r.member(&UserId("co".into())).unwrap().muted);
    assert!(!r.audible(&UserId("co".into())), "muted until they unmute");
    assert!(fx.persist.iter().any(|p| matches!(
        p,
        Persist::Participant {
            role: Role::Moderator,
            muted: true,
            ..
        }
    )));
    // Anyone else still joins as a listener.
    r.join(user("bob"), false).unwrap();
    assert_eq!(r.role_of(&UserId("bob".into())), Some(Role::Listener));
    // A co-host can moderate: invite bob to speak.
    r.apply(
        &UserId("co".into()),
        &ClientMessage::InviteToSpeak { user: uid("a") },
    )
    .unwrap();
}

#[test]
fn inviting_someone_away_is_told_and_the_invitation_outlives_the_grace() {
    let mut r = room();
    // Connected: no "invited away" effect (the room tells them).
    let fx = r
        .apply(
            &uid("mod"),
            &ClientMessage::InviteToSpeak { user: uid("b") },
        )
        .unwrap();
    assert!(fx.invited_away.is_empty());
    // "a" lost the connection (grace until t=1000): the service must notify them.
    r.disconnected(&uid("a"), 1000);
    let fx = r
        .apply(
            &uid("mod"),
            &ClientMessage::InviteToSpeak { user: uid("a") },
        )
        .unwrap();
    assert_eq!(fx.invited_away, vec![(uid("a"), uid("mod"))]);
    // Inviting again while it is pending says nothing new.
    let fx = r
        .apply(
            &uid("mod"),
            &ClientMessage::InviteToSpeak { user: uid("a") },
        )
        .unwrap();
    assert!(fx.invited_away.is_empty());
    // The grace ends: "a" is out of the room, but the invitation waits for them.
    let _ = r.expire(1000);
    assert_eq!(r.role_of(&uid("a")), None);
    r.join(user("a"), false).unwrap();
    assert!(r.snapshot_for(&uid("a")).unwrap().invited_to_speak);
    r.apply(&uid("a"), &ClientMessage::AcceptInvite).unwrap();
    assert_eq!(r.role_of(&uid("a")), Some(Role::Speaker));
    // Someone who leaves on purpose takes nothing along.
    r.disconnected(&uid("b"), 2000);
    let _ = r.leave(&uid("b"), true);
    r.join(user("b"), false).unwrap();
    assert!(!r.snapshot_for(&uid("b")).unwrap().invited_to_speak);
}
