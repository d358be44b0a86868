//! Which live rooms a member sees, in which order. Pure.

use ruang_proto::{Role, RoomId, RoomKind, RoomSummary, UserId, UserSummary};
use std::collections::HashSet;

/// A live room as the hallway needs it (also passed between cluster nodes).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RoomView {
    pub id: RoomId,
    pub title: String,
    pub kind: RoomKind,
    pub created_by: UserId,
    pub created_at: i64,
    pub link_token: String,
    /// Moderators and speakers, in stage order.
    pub stage: Vec<(UserSummary, Role)>,
    pub listener_count: u32,
    /// Whether the viewer is in the room now.
    pub viewer_inside: bool,
    /// Whether a moderator removed the viewer from this room (it is gone from their hallway).
    pub viewer_removed: bool,
    #[serde(default)]
    pub recording: bool,
    #[serde(default)]
    pub clips: bool,
    #[serde(default)]
    pub e2ee: bool,
}

/// Speakers listed by name in a hallway card; `speaker_count` has the total.
pub const CARD_SPEAKERS: usize = 8;

/// What the viewer brings: who they follow and which closed rooms they were let into.
pub struct Viewer<'a> {
    pub id: &'a UserId,
    pub follows: &'a HashSet<UserId>,
    pub access: &'a HashSet<RoomId>,
}

impl RoomView {
    pub fn visible_to(&self, v: &Viewer) -> bool {
        if self.viewer_removed {
            return false;
        }
        if self.viewer_inside || self.created_by == *v.id {
            return true;
        }
        match self.kind {
            RoomKind::Open => true,
            RoomKind::Social => self
                .stage
                .iter()
                .any(|(u, r)| *r == Role::Moderator && v.follows.contains(&u.id)),
            RoomKind::Closed => v.access.contains(&self.id),
        }
    }

    pub fn summary(&self, v: &Viewer, public_url: &str) -> RoomSummary {
        let mut speakers: Vec<&(UserSummary, Role)> = self.stage.iter().collect();
        // Moderators first, stage order otherwise (stable sort).
        speakers.sort_by_key(|(_, r)| *r != Role::Moderator);
        let followed = self
            .stage
            .iter()
            .filter(|(u, _)| v.follows.contains(&u.id))
            .count() as u32;
        let link = match self.kind {
            RoomKind::Closed => format!("{public_url}/r/{}?t={}", self.id, self.link_token),
            _ => format!("{public_url}/r/{}", self.id),
        };
        RoomSummary {
            id: self.id.clone(),
            title: self.title.clone(),
            kind: self.kind,
            speakers: speakers
                .into_iter()
                .take(CARD_SPEAKERS)
                .map(|(u, _)| u.clone())
                .collect(),
            speaker_count: self.stage.len() as u32,
            listener_count: self.listener_count,
            followed_speakers: followed,
            link,
            created_at: self.created_at,
            recording: self.recording,
            clips: self.clips,
            e2ee: self.e2ee,
        }
    }
}

/// The viewer's hallway: visible rooms, those with speakers they follow first, then by size,
/// then newest.
pub fn hallway(rooms: &[RoomView], v: &Viewer, public_url: &str) -> Vec<RoomSummary> {
    let mut out: Vec<RoomSummary> = rooms
        .iter()
        .filter(|r| r.visible_to(v))
        .map(|r| r.summary(v, public_url))
        .collect();
    out.sort_by(|a, b| {
        (b.followed_speakers > 0)
            .cmp(&(a.followed_speakers > 0))
            .then(b.followed_speakers.cmp(&a.followed_speakers))
            .then((b.speaker_count + b.listener_count).cmp(&(a.speaker_count + a.listener_count)))
            .then(b.created_at.cmp(&a.created_at))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(id: &str) -> UserSummary {
        UserSummary {
            id: UserId::from(id),
            handle: id.into(),
            name: id.into(),
            avatar: None,
        }
    }

    fn view(id: &str, kind: RoomKind, mods: &[&str], listeners: u32) -> RoomView {
        RoomView {
            id: RoomId::from(id),
            title: id.into(),
            kind,
            created_by: UserId::from(mods[0]),
            created_at: 0,
            link_token: "tok".into(),
            stage: mods.iter().map(|m| (u(m), Role::Moderator)).collect(),
            listener_count: listeners,
            viewer_removed: false,
            recording: false,
            clips: false,
            e2ee: false,
            viewer_inside: false,
        }
    }

    #[test]
    fn visibility_per_kind_and_order() {
        let rooms = vec![
            view("open_small", RoomKind::Open, &["x"], 1),
            view("open_big", RoomKind::Open, &["y"], 100),
            view("social_followed", RoomKind::Social, &["friend"], 0),
            view("social_other", RoomKind::Social, &["stranger"], 500),
            view("closed", RoomKind::Closed, &["z"], 3),
            view("closed_granted", RoomKind::Closed, &["z"], 3),
        ];
        let me = UserId::from("me");
        let follows: HashSet<UserId> = [UserId::from("friend")].into();
        let access: HashSet<RoomId> = [RoomId::from("closed_granted")].into();
        let v = Viewer {
            id: &me,
            follows: &follows,
            access: &access,
        };
        let ids: Vec<String> = hallway(&rooms, &v, "http://h")
            .into_iter()
            .map(|r| r.id.0)
            .collect();
        assert_eq!(
            ids,
            [
                "social_followed",
                "open_big",
                "closed_granted",
                "open_small"
            ]
        );
    }

    #[test]
    fn closed_link_carries_token_and_inside_sees_room() {
        let mut r = view("c", RoomKind::Closed, &["z"], 0);
        let me = UserId::from("me");
        let none = HashSet::new();
        let no_rooms = HashSet::new();
        let v = Viewer {
            id: &me,
            follows: &none,
            access: &no_rooms,
        };
        assert!(!r.visible_to(&v));
        r.viewer_inside = true;
        assert!(r.visible_to(&v));
        assert_eq!(r.summary(&v, "http://h").link, "http://h/r/c?t=tok");
    }
}
