//! Recording and clips in the room rules (pure).

use super::*;

use super::tests::{events_for, room, uid};

#[test]
fn only_moderators_switch_recording_and_everyone_is_told() {
    let mut r = room();
    let on = ClientMessage::SetRecording { recording: true };
    assert_eq!(r.apply(&uid("a"), &on), Err(ErrorCode::Forbidden));
    assert!(!r.recording);
    let fx = r.apply(&uid("mod"), &on).unwrap();
    for viewer in ["mod", "a", "b"] {
        assert_eq!(
            events_for(&fx, viewer),
            [RoomEvent::Recording {
                recording: true,
                by: uid("mod")
            }]
        );
    }
    assert_eq!(fx.persist, [Persist::Recording(true)]);
    assert!(r.snapshot_for(&uid("b")).unwrap().recording);
    // Again: nothing to tell, nothing to store.
    assert_eq!(r.apply(&uid("mod"), &on).unwrap(), Effects::default());
    // Stopping is allowed, and announced too.
    let fx = r
        .apply(
            &uid("mod"),
            &ClientMessage::SetRecording { recording: false },
        )
        .unwrap();
    assert_eq!(
        events_for(&fx, "a"),
        [RoomEvent::Recording {
            recording: false,
            by: uid("mod")
        }]
    );
    assert!(!r.snapshot_for(&uid("a")).unwrap().recording);
}

#[test]
fn an_invitation_to_speak_says_the_room_is_recorded() {
    let mut r = room();
    let invite = |r: &mut RoomRules, who: &str| {
        let fx = r
            .apply(
                &uid("mod"),
                &ClientMessage::InviteToSpeak { user: uid(who) },
            )
            .unwrap();
        match &events_for(&fx, who)[..] {
            [RoomEvent::InvitedToSpeak { recording, .. }] => *recording,
            other => panic!("{other:?}"),
        }
    };
    assert!(!invite(&mut r, "a"));
    r.apply(
        &uid("mod"),
        &ClientMessage::SetRecording { recording: true },
    )
    .unwrap();
    assert!(invite(&mut r, "b"));
}

#[test]
fn who_may_clip() {
    let mut r = room();
    r.join_guest(uid("guest-1")).unwrap();
    // Neither recorded nor clips: nobody.
    assert!(!r.may_clip(&uid("mod")));
    // Clips allowed: moderators only.
    r.clips = true;
    assert!(r.may_clip(&uid("mod")));
    assert!(!r.may_clip(&uid("a")));
    // Recorded: anyone in the room, never a guest or an outsider.
    r.recording = true;
    assert!(r.may_clip(&uid("a")));
    assert!(!r.may_clip(&uid("guest-1")));
    assert!(!r.may_clip(&uid("stranger")));
    r.end();
    assert!(!r.may_clip(&uid("mod")), "not after the end");
}
