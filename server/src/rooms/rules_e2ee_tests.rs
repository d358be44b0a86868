//! Encrypted rooms in the room rules (pure): who may send key packages and commits, and who
//! is told what.

use super::*;

use super::tests::{events_for, room, uid};
use ruang_proto::MlsCommitRequest;

fn encrypted() -> RoomRules {
    let mut r = room();
    r.mls = Some(super::super::mls::MlsRelay::default());
    r.join_guest(uid("guest-1")).unwrap();
    r
}

fn commit(epoch: u64, added: &[&str], removed: &[&str]) -> MlsCommitRequest {
    MlsCommitRequest {
        epoch,
        commit: "Y29tbWl0".into(),
        welcome: (!added.is_empty()).then(|| "d2VsY29tZQ==".into()),
        added: added.iter().map(|u| uid(u)).collect(),
        removed: removed.iter().map(|u| uid(u)).collect(),
    }
}

#[test]
fn key_packages_go_to_moderators_only() {
    let mut r = encrypted();
    let kp = ClientMessage::MlsKeyPackage {
        key_package: "a2V5".into(),
    };
    let fx = r.apply(&uid("a"), &kp).unwrap();
    let told = RoomEvent::MlsKeyPackage {
        user: uid("a"),
        key_package: "a2V5".into(),
    };
    assert_eq!(events_for(&fx, "mod"), [told]);
    assert!(events_for(&fx, "b").is_empty() && events_for(&fx, "a").is_empty());
    assert_eq!(
        r.snapshot_for(&uid("mod"))
            .unwrap()
            .e2ee
            .unwrap()
            .pending
            .len(),
        1
    );
    assert!(r
        .snapshot_for(&uid("b"))
        .unwrap()
        .e2ee
        .unwrap()
        .pending
        .is_empty());
    // Guests are not in the group; plain rooms have none.
    assert_eq!(r.apply(&uid("guest-1"), &kp), Err(ErrorCode::Forbidden));
    assert_eq!(room().apply(&uid("a"), &kp), Err(ErrorCode::BadRequest));
    assert_eq!(room().snapshot_for(&uid("a")).unwrap().e2ee, None);
    // Leaving takes the waiting package away.
    r.leave(&uid("a"), false);
    assert!(r
        .snapshot_for(&uid("mod"))
        .unwrap()
        .e2ee
        .unwrap()
        .pending
        .is_empty());
}

#[test]
fn commits_are_taken_in_order_from_moderators_and_welcomes_reach_the_added() {
    let mut r = encrypted();
    assert_eq!(
        r.mls_commit(&uid("a"), &commit(0, &["b"], &[]))
            .map(|x| x.0),
        Err(ErrorCode::Forbidden)
    );
    let (epoch, fx) = r
        .mls_commit(&uid("mod"), &commit(0, &["a", "gone"], &[]))
        .unwrap();
    assert_eq!(epoch, 1);
    let announced = RoomEvent::MlsCommit {
        epoch: 1,
        by: uid("mod"),
        added: vec![uid("a"), uid("gone")],
        removed: vec![],
    };
    assert_eq!(events_for(&fx, "b"), std::slice::from_ref(&announced));
    assert_eq!(
        events_for(&fx, "a"),
        [announced, RoomEvent::MlsWelcome { epoch: 1 }],
        "the added member is told to fetch its welcome"
    );
    assert_eq!(
        r.mls_commit(&uid("mod"), &commit(0, &[], &["a"]))
            .map(|x| x.0),
        Err(ErrorCode::StaleEpoch)
    );
    assert_eq!(r.snapshot_for(&uid("b")).unwrap().e2ee.unwrap().epoch, 1);
    // Never recorded, never clipped.
    assert_eq!(
        r.apply(
            &uid("mod"),
            &ClientMessage::SetRecording { recording: true }
        ),
        Err(ErrorCode::Encrypted)
    );
    assert!(!r.may_clip(&uid("mod")));
    // Not in plain rooms.
    assert_eq!(
        room()
            .mls_commit(&uid("mod"), &commit(0, &[], &[]))
            .map(|x| x.0),
        Err(ErrorCode::BadRequest)
    );
}

#[test]
fn moderators_are_told_who_must_leave_the_group() {
    let mut r = encrypted();
    r.mls_commit(&uid("mod"), &commit(0, &["a", "b"], &[]))
        .unwrap();
    let mls = |r: &RoomRules, who: &str| r.snapshot_for(&uid(who)).unwrap().e2ee.unwrap();
    // A leave: the moderators learn the group still holds a.
    let fx = r.leave(&uid("a"), true);
    let left = RoomEvent::MlsDeparted {
        user: uid("a"),
        removed: false,
    };
    assert!(events_for(&fx, "mod").contains(&left));
    assert!(!events_for(&fx, "b").contains(&left), "moderators only");
    // Back before a commit removed them: nothing to remove.
    let (fx, _) = r.join(super::tests::user("a"), false).unwrap();
    assert!(events_for(&fx, "mod").contains(&RoomEvent::MlsReturned { user: uid("a") }));
    assert!(mls(&r, "mod").departed.is_empty());
    // A removal is marked as such (the committer rekeys at once).
    let fx = r
        .apply(&uid("mod"), &ClientMessage::Remove { user: uid("b") })
        .unwrap();
    assert!(events_for(&fx, "mod").contains(&RoomEvent::MlsDeparted {
        user: uid("b"),
        removed: true,
    }));
    assert_eq!(mls(&r, "mod").departed.len(), 1);
    assert!(mls(&r, "a").departed.is_empty());
    // The commit that removes b clears it; someone never in the group is never departed.
    r.mls_commit(&uid("mod"), &commit(1, &[], &["b"])).unwrap();
    assert!(mls(&r, "mod").departed.is_empty());
    r.join(super::tests::user("c"), false).unwrap();
    let fx = r.leave(&uid("c"), false);
    assert!(!events_for(&fx, "mod")
        .iter()
        .any(|e| matches!(e, RoomEvent::MlsDeparted { .. })));
}
