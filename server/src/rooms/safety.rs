//! What blocks mean for rooms. Pure: the callers bring the block lists.
//!
//! - A member blocked by one of a room's moderators cannot join it (whatever the kind,
//!   with or without a closed room's link).
//! - When someone becomes a moderator of a room (joins as one, or is made one), the
//!   members they blocked who are in the room as listeners or speakers are taken out
//!   quietly. A blocked member who is a moderator there stays (moderators of one room
//!   are peers; either may leave).
//! - A member's hallway, search and profile room lists leave out rooms where someone
//!   they blocked is on stage, and rooms moderated by someone who blocked them (they
//!   could not join those), unless they are inside the room already.

use super::hallway::RoomView;
use ruang_proto::{Role, UserId};
use std::collections::HashSet;

/// The viewer's blocks both ways.
#[derive(Debug, Default, Clone)]
pub struct Blocks {
    /// People the viewer blocked.
    pub blocked: HashSet<UserId>,
    /// People who blocked the viewer.
    pub blockers: HashSet<UserId>,
}

impl Blocks {
    pub fn is_empty(&self) -> bool {
        self.blocked.is_empty() && self.blockers.is_empty()
    }
}

/// Whether a room drops out of the viewer's lists because of blocks.
pub fn hidden(view: &RoomView, blocks: &Blocks) -> bool {
    if view.viewer_inside {
        return false;
    }
    view.stage.iter().any(|(u, role)| {
        blocks.blocked.contains(&u.id)
            || (*role == Role::Moderator && blocks.blockers.contains(&u.id))
    })
}

/// Whether a member who was blocked by `blockers` may not join a room moderated by
/// `moderators`.
pub fn join_refused(moderators: &[UserId], blockers: &HashSet<UserId>) -> bool {
    moderators.iter().any(|m| blockers.contains(m))
}

/// Who leaves quietly when `moderator` (who blocked `blocked`) moderates a room where
/// `present` are (with their roles): every blocked non-moderator.
pub fn to_expel(
    moderator: &UserId,
    blocked: &HashSet<UserId>,
    present: &[(UserId, Role)],
) -> Vec<UserId> {
    present
        .iter()
        .filter(|(u, role)| u != moderator && *role != Role::Moderator && blocked.contains(u))
        .map(|(u, _)| u.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruang_proto::{RoomId, RoomKind, UserSummary};

    fn u(id: &str) -> UserSummary {
        UserSummary {
            id: UserId::from(id),
            handle: id.into(),
            name: id.into(),
            avatar: None,
        }
    }

    fn view(stage: &[(&str, Role)], inside: bool) -> RoomView {
        RoomView {
            id: RoomId::from("r"),
            title: "r".into(),
            kind: RoomKind::Open,
            created_by: UserId::from(stage[0].0),
            created_at: 0,
            link_token: String::new(),
            stage: stage.iter().map(|(id, r)| (u(id), *r)).collect(),
            listener_count: 3,
            viewer_inside: inside,
            viewer_removed: false,
            recording: false,
            clips: false,
            e2ee: false,
        }
    }

    fn set(ids: &[&str]) -> HashSet<UserId> {
        ids.iter().map(|i| UserId::from(*i)).collect()
    }

    #[test]
    fn rooms_with_blocked_people_on_stage_are_hidden() {
        let blocks = Blocks {
            blocked: set(&["bob"]),
            blockers: set(&["carl"]),
        };
        // Bob hosting or speaking: hidden from the blocker.
        assert!(hidden(&view(&[("bob", Role::Moderator)], false), &blocks));
        assert!(hidden(
            &view(&[("ann", Role::Moderator), ("bob", Role::Speaker)], false),
            &blocks
        ));
        // Carl (who blocked the viewer) moderates: hidden; Carl only speaking: shown.
        assert!(hidden(&view(&[("carl", Role::Moderator)], false), &blocks));
        assert!(!hidden(
            &view(&[("ann", Role::Moderator), ("carl", Role::Speaker)], false),
            &blocks
        ));
        // Nobody blocked on stage, or the viewer is inside already: shown.
        assert!(!hidden(&view(&[("ann", Role::Moderator)], false), &blocks));
        assert!(!hidden(&view(&[("bob", Role::Moderator)], true), &blocks));
        assert!(!hidden(
            &view(&[("bob", Role::Moderator)], false),
            &Blocks::default()
        ));
    }

    #[test]
    fn joins_refused_only_by_a_blocking_moderator() {
        assert!(join_refused(
            &[UserId::from("ann"), UserId::from("bob")],
            &set(&["bob"])
        ));
        assert!(!join_refused(&[UserId::from("ann")], &set(&["bob"])));
        assert!(!join_refused(&[], &set(&["bob"])));
    }

    #[test]
    fn a_new_moderator_takes_out_blocked_listeners_and_speakers_only() {
        let present = vec![
            (UserId::from("ann"), Role::Moderator),
            (UserId::from("bob"), Role::Listener),
            (UserId::from("carl"), Role::Speaker),
            (UserId::from("dora"), Role::Moderator),
            (UserId::from("eve"), Role::Listener),
        ];
        let gone = to_expel(
            &UserId::from("ann"),
            &set(&["bob", "carl", "dora"]),
            &present,
        );
        assert_eq!(gone, vec![UserId::from("bob"), UserId::from("carl")]);
        assert!(to_expel(&UserId::from("ann"), &HashSet::new(), &present).is_empty());
    }
}
