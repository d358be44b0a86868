//! The room as this client knows it: a snapshot, then every delta applied in order.
//! Pure: fed with server messages, tested directly.

use ruang_proto::{
    HandEntry, Participant, ReactionBurst, Role, RoomEvent, RoomSnapshot, ServerMessage, UserId,
};
use std::collections::HashMap;

/// The current state of one room session, as an app shows it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RoomState {
    pub room: Option<RoomSnapshot>,
    /// Last applied sequence number.
    pub seq: u64,
    /// Speaking levels of people on stage (0.0–1.0), from `levels` deltas.
    pub levels: HashMap<UserId, f32>,
    pub ended: bool,
    pub removed: bool,
    /// How many times the server said it dropped this connection's media (`media_closed`):
    /// a change means "offer again".
    pub media_closed: u64,
    /// The latest burst of reactions (`reactions` delta) and how many bursts came so far:
    /// a change of the count means "animate these".
    pub reactions: Vec<ReactionBurst>,
    pub reaction_bursts: u64,
    /// Encrypted rooms: the epoch of the latest welcome addressed to us (`mls_welcome`), and
    /// how many came (a change means "fetch the welcome", even for an epoch seen before).
    pub mls_welcome: Option<u64>,
    pub mls_welcomes: u64,
}

/// How many chat messages the client keeps in `chat_recent` (older ones: `chat_history`).
pub const CLIENT_CHAT_KEEP: usize = 200;

impl RoomState {
    pub fn you(&self) -> Option<&Participant> {
        self.room.as_ref().map(|r| &r.you)
    }

    pub fn my_role(&self) -> Option<Role> {
        self.you().map(|p| p.role)
    }

    pub fn participant(&self, user: &UserId) -> Option<&Participant> {
        let r = self.room.as_ref()?;
        r.stage
            .iter()
            .chain(r.audience.iter())
            .find(|p| p.user.id == *user)
    }

    pub fn hands(&self) -> &[HandEntry] {
        self.room
            .as_ref()
            .map(|r| r.hands.as_slice())
            .unwrap_or(&[])
    }
}

/// What applying a message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// State changed.
    Changed,
    /// Not a state message (ok, error, pong, …).
    Ignored,
    /// A delta was missing: ask for a snapshot (`sync`).
    NeedSync,
}

#[derive(Debug, Default)]
pub struct RoomStore {
    state: RoomState,
}

impl RoomStore {
    pub fn state(&self) -> &RoomState {
        &self.state
    }

    /// The server accepted our `decline_invite`. It tells only the moderators
    /// (`invite_declined`), so the invitee clears its own pending invitation here.
    pub fn invite_declined(&mut self) -> Applied {
        match self.state.room.as_mut() {
            Some(room) if room.invited_to_speak => {
                room.invited_to_speak = false;
                Applied::Changed
            }
            _ => Applied::Ignored,
        }
    }

    pub fn apply(&mut self, msg: &ServerMessage) -> Applied {
        match msg {
            ServerMessage::Welcome { seq, room, .. } | ServerMessage::Snapshot { seq, room } => {
                self.state.room = Some(room.clone());
                self.state.seq = *seq;
                self.state
                    .levels
                    .retain(|u, _| room.stage.iter().any(|p| p.user.id == *u));
                Applied::Changed
            }
            ServerMessage::Delta { seq, event } => {
                if self.state.room.is_none() {
                    return Applied::NeedSync;
                }
                if *seq <= self.state.seq {
                    return Applied::Ignored;
                }
                if *seq != self.state.seq + 1 {
                    return Applied::NeedSync;
                }
                self.state.seq = *seq;
                self.apply_event(event);
                Applied::Changed
            }
            ServerMessage::MediaClosed { .. } => {
                self.state.media_closed += 1;
                Applied::Changed
            }
            _ => Applied::Ignored,
        }
    }

    fn apply_event(&mut self, event: &RoomEvent) {
        let st = &mut self.state;
        let Some(room) = st.room.as_mut() else { return };
        match event {
            RoomEvent::ParticipantJoined { participant }
            | RoomEvent::ParticipantUpdated { participant } => {
                upsert(room, participant.clone());
                if participant.user.id == room.you.user.id {
                    let was_listener = room.you.role == Role::Listener;
                    room.you = participant.clone();
                    if was_listener && participant.role.on_stage() {
                        room.invited_to_speak = false;
                        room.your_hand_raised = false;
                    }
                }
                for h in room.hands.iter_mut() {
                    if h.participant.user.id == participant.user.id {
                        h.participant = participant.clone();
                    }
                }
                if participant.role.on_stage() {
                    room.hands
                        .retain(|h| h.participant.user.id != participant.user.id);
                }
            }
            RoomEvent::ParticipantLeft { user, .. } => {
                room.stage.retain(|p| p.user.id != *user);
                room.audience.retain(|p| p.user.id != *user);
                room.hands.retain(|h| h.participant.user.id != *user);
                st.levels.remove(user);
            }
            RoomEvent::HandRaised { entry } => {
                if entry.participant.user.id == room.you.user.id {
                    room.your_hand_raised = true;
                }
                if room.you.role == Role::Moderator
                    && !room
                        .hands
                        .iter()
                        .any(|h| h.participant.user.id == entry.participant.user.id)
                {
                    room.hands.push(entry.clone());
                }
            }
            RoomEvent::HandLowered { user } => {
                if *user == room.you.user.id {
                    room.your_hand_raised = false;
                }
                room.hands.retain(|h| h.participant.user.id != *user);
            }
            RoomEvent::InviteSent { user, .. } => {
                for h in room
                    .hands
                    .iter_mut()
                    .filter(|h| h.participant.user.id == *user)
                {
                    h.invited = true;
                }
            }
            RoomEvent::InviteDeclined { user } => {
                for h in room
                    .hands
                    .iter_mut()
                    .filter(|h| h.participant.user.id == *user)
                {
                    h.invited = false;
                }
            }
            RoomEvent::InvitedToSpeak { .. } => room.invited_to_speak = true,
            RoomEvent::Counts { counts } => room.counts = *counts,
            RoomEvent::HandsEnabled { enabled } => room.hands_enabled = *enabled,
            RoomEvent::Levels { levels } => {
                for l in levels {
                    st.levels.insert(l.user.clone(), l.level);
                }
            }
            RoomEvent::Ended => st.ended = true,
            RoomEvent::YouWereRemoved { .. } => st.removed = true,
            // ----- reactions and chat -----
            RoomEvent::Reactions { bursts } => {
                st.reactions = bursts.clone();
                st.reaction_bursts += 1;
            }
            RoomEvent::ReactionsEnabled { enabled } => room.reactions_enabled = *enabled,
            RoomEvent::ChatMessage { message } => {
                if !room.chat_recent.iter().any(|m| m.id == message.id) {
                    room.chat_recent.push(message.clone());
                }
                if room.chat_recent.len() > CLIENT_CHAT_KEEP {
                    let extra = room.chat_recent.len() - CLIENT_CHAT_KEEP;
                    room.chat_recent.drain(..extra);
                    room.chat_more = true;
                }
            }
            RoomEvent::ChatDeleted { id } => room.chat_recent.retain(|m| m.id != *id),
            RoomEvent::ChatSettings { settings } => room.chat = *settings,
            RoomEvent::Recording { recording, .. } => room.recording = *recording,
            RoomEvent::MlsKeyPackage { user, key_package } => {
                if let Some(mls) = room.e2ee.as_mut() {
                    mls.pending.retain(|k| k.user != *user);
                    mls.pending.push(ruang_proto::MlsKeyPackage {
                        user: user.clone(),
                        key_package: key_package.clone(),
                    });
                }
            }
            RoomEvent::MlsCommit {
                epoch,
                added,
                removed,
                ..
            } => {
                if let Some(mls) = room.e2ee.as_mut() {
                    mls.epoch = *epoch;
                    mls.pending.retain(|k| !added.contains(&k.user));
                    mls.departed
                        .retain(|d| !added.contains(&d.user) && !removed.contains(&d.user));
                }
            }
            RoomEvent::MlsDeparted { user, removed } => {
                if let Some(mls) = room.e2ee.as_mut() {
                    mls.pending.retain(|k| k.user != *user);
                    mls.departed.retain(|d| d.user != *user);
                    mls.departed.push(ruang_proto::MlsDeparture {
                        user: user.clone(),
                        removed: *removed,
                    });
                }
            }
            RoomEvent::MlsGuestKey { key } => {
                if let Some(mls) = room.e2ee.as_mut() {
                    mls.guest_keys.retain(|k| k.epoch != key.epoch);
                    mls.guest_keys.push(key.clone());
                    mls.guest_keys.sort_by_key(|k| k.epoch);
                    let extra = mls.guest_keys.len().saturating_sub(2);
                    mls.guest_keys.drain(..extra);
                }
            }
            RoomEvent::MlsReturned { user } => {
                if let Some(mls) = room.e2ee.as_mut() {
                    mls.departed.retain(|d| d.user != *user);
                }
            }
            RoomEvent::MlsWelcome { epoch } => {
                st.mls_welcome = Some(*epoch);
                st.mls_welcomes += 1;
            }
        }
    }
}

/// Puts `p` where its role says, keeping its place when it stays in the same list.
fn upsert(room: &mut RoomSnapshot, p: Participant) {
    let (target, other) = if p.role.on_stage() {
        (&mut room.stage, &mut room.audience)
    } else {
        (&mut room.audience, &mut room.stage)
    };
    other.retain(|x| x.user.id != p.user.id);
    match target.iter_mut().find(|x| x.user.id == p.user.id) {
        Some(slot) => *slot = p,
        None => target.push(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruang_proto::{Counts, LeftReason, RoomId, RoomKind, UserSummary};

    fn p(id: &str, role: Role) -> Participant {
        Participant {
            user: UserSummary {
                id: UserId::from(id),
                handle: id.into(),
                name: id.into(),
                avatar: None,
            },
            role,
            muted: role != Role::Moderator,
            followed_by_speakers: false,
        }
    }

    fn welcome(you: Participant) -> ServerMessage {
        ServerMessage::Welcome {
            protocol: 1,
            you: you.user.id.clone(),
            seq: 0,
            room: RoomSnapshot {
                id: RoomId::from("r"),
                title: "t".into(),
                kind: RoomKind::Open,
                hands_enabled: true,
                stage: vec![p("mod", Role::Moderator)],
                audience: vec![you.clone()],
                counts: Counts::default(),
                you,
                your_hand_raised: false,
                invited_to_speak: false,
                hands: vec![],
                reactions_enabled: true,
                chat: Default::default(),
                chat_recent: vec![],
                chat_more: false,
                recording: false,
                clips: false,
                e2ee: None,
            },
            ice_servers: vec![],
        }
    }

    fn delta(seq: u64, event: RoomEvent) -> ServerMessage {
        ServerMessage::Delta { seq, event }
    }

    #[test]
    fn applies_in_order_and_detects_gaps() {
        let mut s = RoomStore::default();
        assert_eq!(
            s.apply(&delta(1, RoomEvent::Ended)),
            Applied::NeedSync,
            "no snapshot yet"
        );
        s.apply(&welcome(p("me", Role::Listener)));
        let joined = RoomEvent::ParticipantJoined {
            participant: p("x", Role::Listener),
        };
        assert_eq!(s.apply(&delta(1, joined.clone())), Applied::Changed);
        assert_eq!(s.apply(&delta(1, joined)), Applied::Ignored, "duplicate");
        assert_eq!(s.state().room.as_ref().unwrap().audience.len(), 2);
        assert_eq!(
            s.apply(&delta(3, RoomEvent::HandsEnabled { enabled: false })),
            Applied::NeedSync
        );
        assert!(
            s.state().room.as_ref().unwrap().hands_enabled,
            "gap not applied"
        );
    }

    #[test]
    fn a_declined_invitation_is_cleared_locally() {
        let mut s = RoomStore::default();
        assert_eq!(s.invite_declined(), Applied::Ignored);
        s.apply(&welcome(p("me", Role::Listener)));
        s.apply(&delta(
            1,
            RoomEvent::InvitedToSpeak {
                by: p("mod", Role::Moderator).user,
                recording: true,
            },
        ));
        assert!(s.state().room.as_ref().unwrap().invited_to_speak);
        assert_eq!(s.invite_declined(), Applied::Changed);
        assert!(!s.state().room.as_ref().unwrap().invited_to_speak);
        assert_eq!(s.invite_declined(), Applied::Ignored);
        assert_eq!(s.state().my_role(), Some(Role::Listener));
    }

    #[test]
    fn invite_accept_moves_me_to_stage() {
        let mut s = RoomStore::default();
        s.apply(&welcome(p("me", Role::Listener)));
        let me = p("me", Role::Listener);
        s.apply(&delta(
            1,
            RoomEvent::HandRaised {
                entry: HandEntry {
                    participant: me.clone(),
                    invited: false,
                },
            },
        ));
        assert!(s.state().room.as_ref().unwrap().your_hand_raised);
        assert!(
            s.state().hands().is_empty(),
            "only moderators keep the queue"
        );
        s.apply(&delta(
            2,
            RoomEvent::InvitedToSpeak {
                by: p("mod", Role::Moderator).user,
                recording: false,
            },
        ));
        assert!(s.state().room.as_ref().unwrap().invited_to_speak);
        s.apply(&delta(
            3,
            RoomEvent::HandLowered {
                user: UserId::from("me"),
            },
        ));
        s.apply(&delta(
            4,
            RoomEvent::ParticipantUpdated {
                participant: p("me", Role::Speaker),
            },
        ));
        let st = s.state();
        assert_eq!(st.my_role(), Some(Role::Speaker));
        let room = st.room.as_ref().unwrap();
        assert!(!room.invited_to_speak && !room.your_hand_raised);
        assert_eq!(room.stage.len(), 2);
        assert!(room.audience.is_empty());
        s.apply(&delta(
            5,
            RoomEvent::ParticipantLeft {
                user: UserId::from("mod"),
                reason: LeftReason::Left,
            },
        ));
        assert_eq!(s.state().room.as_ref().unwrap().stage.len(), 1);
        s.apply(&delta(6, RoomEvent::Ended));
        assert!(s.state().ended);
    }

    #[test]
    fn moderator_keeps_hand_queue() {
        let mut s = RoomStore::default();
        s.apply(&welcome(p("me", Role::Moderator)));
        let entry = HandEntry {
            participant: p("a", Role::Listener),
            invited: false,
        };
        s.apply(&delta(1, RoomEvent::HandRaised { entry }));
        s.apply(&delta(
            2,
            RoomEvent::InviteSent {
                user: UserId::from("a"),
                by: UserId::from("me"),
            },
        ));
        assert!(s.state().hands()[0].invited);
        s.apply(&delta(
            3,
            RoomEvent::ParticipantUpdated {
                participant: p("a", Role::Speaker),
            },
        ));
        assert!(s.state().hands().is_empty());
    }

    #[test]
    fn chat_and_reactions_apply_to_the_snapshot() {
        use ruang_proto::{ChatMessage, ChatMode, ChatSettings, Reaction, ReactionBurst};
        let mut s = RoomStore::default();
        s.apply(&welcome(p("me", Role::Listener)));
        let msg = |id: u64| ChatMessage {
            id,
            author: p("a", Role::Listener).user,
            text: format!("m{id}"),
            at: id as i64,
            links: vec![],
        };
        for id in 1..=3 {
            s.apply(&delta(id, RoomEvent::ChatMessage { message: msg(id) }));
        }
        s.apply(&delta(4, RoomEvent::ChatDeleted { id: 2 }));
        let room = s.state().room.clone().unwrap();
        let ids: Vec<u64> = room.chat_recent.iter().map(|m| m.id).collect();
        assert_eq!(ids, vec![1, 3]);
        let settings = ChatSettings {
            mode: ChatMode::Off,
            slow_seconds: 5,
        };
        s.apply(&delta(5, RoomEvent::ChatSettings { settings }));
        s.apply(&delta(6, RoomEvent::ReactionsEnabled { enabled: false }));
        let burst = ReactionBurst {
            reaction: Reaction::Clap,
            to: None,
            count: 9,
        };
        s.apply(&delta(
            7,
            RoomEvent::Reactions {
                bursts: vec![burst.clone()],
            },
        ));
        let st = s.state();
        let room = st.room.as_ref().unwrap();
        assert_eq!(room.chat, settings);
        assert!(!room.reactions_enabled);
        assert_eq!(st.reactions, vec![burst]);
        assert_eq!(st.reaction_bursts, 1);
        // The client keeps a bounded list and says older ones exist.
        for id in 8..(8 + CLIENT_CHAT_KEEP as u64) {
            s.apply(&delta(id, RoomEvent::ChatMessage { message: msg(id) }));
        }
        let room = s.state().room.clone().unwrap();
        assert_eq!(room.chat_recent.len(), CLIENT_CHAT_KEEP);
        assert!(room.chat_more);
    }
}
