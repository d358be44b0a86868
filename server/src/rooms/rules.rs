//! Stage rules of one room, as a plain state machine: commands in, events and
//! persistence changes out. No I/O, no clocks (time is passed in), tested directly.

use indexmap::IndexMap;
use ruang_proto::{
    ClientMessage, CloseReason, Counts, ErrorCode, HandEntry, LeftReason, Participant, Role,
    RoomEvent, RoomId, RoomKind, RoomSnapshot, UserId, UserSummary,
};
use std::collections::HashSet;

#[path = "chat.rs"]
pub mod chat;

/// How many listeners every viewer sees by name; the rest are counted and paged.
pub const DEFAULT_AUDIENCE_SAMPLE: usize = 50;
/// Largest page of the audience list.
pub const MAX_AUDIENCE_PAGE: u32 = 100;

/// Who receives an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Audience {
    All,
    Users(Vec<UserId>),
}

impl Audience {
    pub fn includes(&self, user: &UserId) -> bool {
        match self {
            Audience::All => true,
            Audience::Users(users) => users.contains(user),
        }
    }
}

/// What the rules ask the connection layer to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    Event {
        to: Audience,
        event: RoomEvent,
    },
    /// Send this user a fresh snapshot (their view changed wholesale, e.g. made moderator).
    Resync(UserId),
    /// Close this user's connection with a reason.
    Close {
        user: UserId,
        reason: CloseReason,
    },
    /// Close every connection (after `Ended`).
    CloseAll(CloseReason),
    /// The media peer of `user`'s connection `conn` is gone (timed out or failed).
    MediaEnded {
        user: UserId,
        conn: u64,
        reason: &'static str,
    },
}

/// What the rules ask the store to record, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Persist {
    Participant {
        user: UserId,
        role: Role,
        muted: bool,
    },
    /// Muted or unmuted on stage (survives a restart: a muted speaker stays muted).
    Muted {
        user: UserId,
        muted: bool,
    },
    ParticipantGone {
        user: UserId,
    },
    /// Out of the room and barred from it, in one write.
    Removed {
        user: UserId,
        by: UserId,
    },
    HandsEnabled(bool),
    /// The raised hands in order, with whether an invite is pending (written by the registry
    /// whenever the queue changed, so a room taken over by another node keeps it).
    Hands(Vec<(UserId, bool)>),
    /// A new key for the closed room's link (set by the registry after a removal).
    LinkToken(String),
    /// Recording switched on or off.
    Recording(bool),
    Ended,
    // ----- reactions and chat -----
    ReactionsEnabled(bool),
    ChatSettings(ruang_proto::ChatSettings),
}

#[derive(Debug, Default, PartialEq)]
pub struct Effects {
    pub out: Vec<Outgoing>,
    pub persist: Vec<Persist>,
    /// Members invited to speak while they had no open connection (they closed the app or
    /// lost the network): `(member, moderator)`. The service tells them with a notification.
    pub invited_away: Vec<(UserId, UserId)>,
}

impl Effects {
    fn event(&mut self, to: Audience, event: RoomEvent) {
        self.out.push(Outgoing::Event { to, event });
    }
}

/// A person in the room.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub user: UserSummary,
    pub role: Role,
    pub muted: bool,
    pub followed_by_speakers: bool,
    /// Set while no connection is open: when the member is dropped if they do not return.
    pub absent_until: Option<i64>,
}

impl Member {
    pub fn new(user: UserSummary, role: Role) -> Self {
        Member {
            user,
            role,
            muted: role != Role::Moderator,
            followed_by_speakers: false,
            absent_until: None,
        }
    }

    pub fn participant(&self) -> Participant {
        Participant {
            user: self.user.clone(),
            role: self.role,
            muted: self.muted,
            followed_by_speakers: self.followed_by_speakers,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RoomRules {
    pub id: RoomId,
    pub title: String,
    pub kind: RoomKind,
    pub created_by: UserId,
    pub created_at: i64,
    pub hands_enabled: bool,
    pub ended: bool,
    /// Recorded: what listeners hear goes into a replay (everyone is told).
    pub recording: bool,
    /// Clips of the last 30 s allowed without recording (set at creation).
    pub clips: bool,
    /// End-to-end encrypted (set at creation): the MLS relay (`mls.rs`). Never recorded or
    /// clipped.
    pub mls: Option<super::mls::MlsRelay>,
    /// Moderators and speakers, in the order they came on stage.
    stage: IndexMap<UserId, Member>,
    /// Listeners, in the order they joined the audience.
    audience: IndexMap<UserId, Member>,
    /// Raised hands in order; the value says whether an invite is pending.
    hands: IndexMap<UserId, bool>,
    /// Pending invitations to speak.
    invited: HashSet<UserId>,
    removed: HashSet<UserId>,
    /// Guests: listen-only visitors without an account (the browser page). Counted as
    /// listeners, never listed, never persisted, never moved on stage.
    guests: HashSet<UserId>,
    /// Co-hosts of the event the room was started from: they join as moderators.
    pub cohosts: HashSet<UserId>,
    audience_sample: usize,
    counts_dirty: bool,
    /// Reactions and the chat (see `chat.rs`).
    chat: chat::RoomChat,
}

impl RoomRules {
    pub fn new(
        id: RoomId,
        title: String,
        kind: RoomKind,
        creator: UserSummary,
        created_at: i64,
    ) -> Self {
        let mut room = RoomRules {
            id,
            title,
            kind,
            created_by: creator.id.clone(),
            created_at,
            hands_enabled: true,
            ended: false,
            recording: false,
            clips: false,
            mls: None,
            stage: IndexMap::new(),
            audience: IndexMap::new(),
            hands: IndexMap::new(),
            invited: HashSet::new(),
            removed: HashSet::new(),
            guests: HashSet::new(),
            cohosts: HashSet::new(),
            audience_sample: DEFAULT_AUDIENCE_SAMPLE,
            counts_dirty: true,
            chat: chat::RoomChat::default(),
        };
        room.stage
            .insert(creator.id.clone(), Member::new(creator, Role::Moderator));
        room
    }

    /// Rebuilds a room from storage after a restart: everyone starts absent and has until
    /// `deadline` to come back with the same role.
    pub fn restore(
        mut self,
        members: Vec<Member>,
        removed: impl IntoIterator<Item = UserId>,
        deadline: i64,
    ) -> Self {
        self.stage.clear();
        for mut m in members {
            m.absent_until = Some(deadline);
            if m.role.on_stage() {
                self.stage.insert(m.user.id.clone(), m);
            } else {
                self.audience.insert(m.user.id.clone(), m);
            }
        }
        self.removed.extend(removed);
        self
    }

    /// Puts back a stored hand queue (after [`RoomRules::restore`]); hands of people no
    /// longer in the audience are dropped.
    pub fn restore_hands(mut self, hands: impl IntoIterator<Item = (UserId, bool)>) -> Self {
        for (user, invited) in hands {
            if self.audience.contains_key(&user) {
                self.hands.insert(user, invited);
            }
        }
        self
    }

    /// The hand queue as stored: who, in order, and whether an invite is pending.
    pub fn hands_snapshot(&self) -> Vec<(UserId, bool)> {
        self.hands.iter().map(|(u, i)| (u.clone(), *i)).collect()
    }

    pub fn with_audience_sample(mut self, n: usize) -> Self {
        self.audience_sample = n.max(1);
        self
    }

    // ----- queries -----

    pub fn member(&self, user: &UserId) -> Option<&Member> {
        self.stage.get(user).or_else(|| self.audience.get(user))
    }

    pub fn role_of(&self, user: &UserId) -> Option<Role> {
        self.member(user).map(|m| m.role)
    }

    pub fn is_removed(&self, user: &UserId) -> bool {
        self.removed.contains(user)
    }

    pub fn stage(&self) -> impl Iterator<Item = &Member> {
        self.stage.values()
    }

    pub fn moderators(&self) -> Vec<UserId> {
        self.stage
            .values()
            .filter(|m| m.role == Role::Moderator)
            .map(|m| m.user.id.clone())
            .collect()
    }

    /// Users whose audio the SFU may forward: on stage and not muted.
    pub fn audible(&self, user: &UserId) -> bool {
        !self.ended && self.stage.get(user).is_some_and(|m| !m.muted)
    }

    /// Everyone [`Self::audible`] (none once the room ended).
    pub fn audible_users(&self) -> impl Iterator<Item = &UserId> {
        self.stage
            .values()
            .filter(move |m| !self.ended && !m.muted)
            .map(|m| &m.user.id)
    }

    pub fn counts(&self, for_moderator: bool) -> Counts {
        Counts {
            speakers: self.stage.len() as u32,
            listeners: (self.audience.len() + self.guests.len()) as u32,
            hands: if for_moderator {
                self.hands.len() as u32
            } else {
                0
            },
        }
    }

    pub fn participant_count(&self) -> usize {
        self.stage.len() + self.audience.len() + self.guests.len()
    }

    pub fn is_guest(&self, user: &UserId) -> bool {
        self.guests.contains(user)
    }

    pub fn guest_count(&self) -> usize {
        self.guests.len()
    }

    pub fn hand_queue(&self) -> Vec<HandEntry> {
        self.hands
            .iter()
            .filter_map(|(id, invited)| {
                self.audience.get(id).map(|m| HandEntry {
                    participant: m.participant(),
                    invited: *invited,
                })
            })
            .collect()
    }

    /// The room as `viewer` may see it.
    pub fn snapshot_for(&self, viewer: &UserId) -> Option<RoomSnapshot> {
        let guest;
        let you = match self.member(viewer) {
            Some(m) => m,
            None if self.guests.contains(viewer) => {
                guest = Member::new(guest_summary(viewer), Role::Listener);
                &guest
            }
            None => return None,
        };
        let is_mod = you.role == Role::Moderator;
        let (chat_recent, chat_more) = self.chat_recent();
        Some(RoomSnapshot {
            id: self.id.clone(),
            title: self.title.clone(),
            kind: self.kind,
            hands_enabled: self.hands_enabled,
            stage: self.stage.values().map(Member::participant).collect(),
            audience: self
                .audience
                .values()
                .take(self.audience_sample)
                .map(Member::participant)
                .collect(),
            counts: self.counts(is_mod),
            you: you.participant(),
            your_hand_raised: self.hands.contains_key(viewer),
            invited_to_speak: self.invited.contains(viewer),
            hands: if is_mod {
                self.hand_queue()
            } else {
                Vec::new()
            },
            reactions_enabled: self.chat.reactions_enabled,
            chat: self.chat.settings,
            chat_recent,
            chat_more,
            recording: self.recording,
            clips: self.clips,
            e2ee: self.mls.as_ref().map(|m| m.view(is_mod)),
        })
    }

    /// One page of listeners: (participants, next cursor, total).
    pub fn audience_page(&self, cursor: u32, limit: u32) -> (Vec<Participant>, Option<u32>, u32) {
        let limit = limit.clamp(1, MAX_AUDIENCE_PAGE) as usize;
        let start = cursor as usize;
        let page: Vec<Participant> = self
            .audience
            .values()
            .skip(start)
            .take(limit)
            .map(Member::participant)
            .collect();
        let end = start + page.len();
        let total = self.audience.len();
        let next = (end < total).then_some(end as u32);
        (page, next, total as u32)
    }

    /// Counts events (one for moderators with the hand count, one for everyone else) if
    /// anything changed since the last call. Sent on a timer so a big room does not send
    /// one message per join to everyone.
    pub fn take_counts(&mut self) -> Option<Effects> {
        if !self.counts_dirty || self.ended {
            return None;
        }
        self.counts_dirty = false;
        let mods = self.moderators();
        let others: Vec<UserId> = self
            .stage
            .keys()
            .chain(self.audience.keys())
            .chain(self.guests.iter())
            .filter(|u| !mods.contains(u))
            .cloned()
            .collect();
        let mut fx = Effects::default();
        fx.event(
            Audience::Users(mods),
            RoomEvent::Counts {
                counts: self.counts(true),
            },
        );
        if !others.is_empty() {
            fx.event(
                Audience::Users(others),
                RoomEvent::Counts {
                    counts: self.counts(false),
                },
            );
        }
        Some(fx)
    }

    fn mods_and(&self, user: &UserId) -> Audience {
        let mut to = self.moderators();
        if !to.contains(user) {
            to.push(user.clone());
        }
        Audience::Users(to)
    }

    // ----- membership -----

    /// Someone opens a connection. Returns whether they were already in (resumed).
    pub fn join(
        &mut self,
        user: UserSummary,
        followed_by_speakers: bool,
    ) -> Result<(Effects, bool), ErrorCode> {
        if self.ended {
            return Err(ErrorCode::RoomEnded);
        }
        if self.removed.contains(&user.id) {
            return Err(ErrorCode::RemovedFromRoom);
        }
        let mut fx = Effects::default();
        if let Some(m) = self
            .stage
            .get_mut(&user.id)
            .or_else(|| self.audience.get_mut(&user.id))
        {
            m.absent_until = None;
            return Ok((fx, true));
        }
        let mut m = Member::new(user, Role::Listener);
        m.followed_by_speakers = followed_by_speakers;
        let id = m.user.id.clone();
        if self.mls.as_mut().is_some_and(|mls| mls.returned(&id)) {
            fx.event(
                Audience::Users(self.moderators()),
                RoomEvent::MlsReturned { user: id.clone() },
            );
        }
        if self.cohosts.contains(&id) {
            // A co-host of the event comes straight onto the stage as a moderator, muted.
            m.role = Role::Moderator;
            let p = m.participant();
            self.stage.insert(id.clone(), m);
            fx.event(
                Audience::All,
                RoomEvent::ParticipantJoined { participant: p },
            );
            fx.persist.push(Persist::Participant {
                user: id,
                role: Role::Moderator,
                muted: true,
            });
            self.counts_dirty = true;
            return Ok((fx, false));
        }
        let p = m.participant();
        self.audience.insert(id.clone(), m);
        if self.audience.len() <= self.audience_sample {
            fx.event(
                Audience::All,
                RoomEvent::ParticipantJoined { participant: p },
            );
        }
        fx.persist.push(Persist::Participant {
            user: id,
            role: Role::Listener,
            muted: true,
        });
        self.counts_dirty = true;
        Ok((fx, false))
    }

    /// A guest opens a connection: counted, but announced to no one (no list entry).
    pub fn join_guest(&mut self, id: UserId) -> Result<(), ErrorCode> {
        if self.ended {
            return Err(ErrorCode::RoomEnded);
        }
        self.guests.insert(id);
        self.counts_dirty = true;
        Ok(())
    }

    /// A guest's connection closed: guests have no grace period and no place to keep.
    pub fn guest_left(&mut self, id: &UserId) {
        if self.guests.remove(id) {
            self.counts_dirty = true;
        }
    }

    /// The member has no open connection; they keep their place and role until `deadline`.
    pub fn disconnected(&mut self, user: &UserId, deadline: i64) {
        if let Some(m) = self
            .stage
            .get_mut(user)
            .or_else(|| self.audience.get_mut(user))
        {
            m.absent_until = Some(deadline);
        }
    }

    /// Whether a restored room can go on: someone must be left to moderate it.
    pub fn has_moderator(&self) -> bool {
        self.stage.values().any(|m| m.role == Role::Moderator)
    }

    /// Drops members whose absence deadline has passed.
    pub fn expire(&mut self, now: i64) -> Effects {
        let gone: Vec<UserId> = self
            .stage
            .values()
            .chain(self.audience.values())
            .filter(|m| m.absent_until.is_some_and(|t| now >= t))
            .map(|m| m.user.id.clone())
            .collect();
        let mut fx = Effects::default();
        for user in gone {
            if self.ended {
                break;
            }
            // A pending invitation outlives the grace period: the member may come back
            // later (from the "invited you to speak" notification) and accept it then.
            let invited = self.invited.contains(&user);
            let more = self.leave(&user, true);
            if invited && !self.ended {
                self.invited.insert(user);
            }
            fx.out.extend(more.out);
            fx.persist.extend(more.persist);
        }
        fx
    }

    /// Takes `user` out of the room and tells viewers who could see them.
    fn take_out(&mut self, user: &UserId, reason: LeftReason, fx: &mut Effects) -> Option<Member> {
        self.invited.remove(user);
        if let Some(mls) = &mut self.mls {
            let removed = reason == LeftReason::Removed;
            if mls.left(user, removed) {
                let mut mods = self.moderators();
                mods.retain(|m| m != user);
                fx.event(
                    Audience::Users(mods),
                    RoomEvent::MlsDeparted {
                        user: user.clone(),
                        removed,
                    },
                );
            }
        }
        if self.hands.shift_remove(user).is_some() {
            fx.event(
                self.mods_and(user),
                RoomEvent::HandLowered { user: user.clone() },
            );
        }
        let member = if let Some(m) = self.stage.shift_remove(user) {
            fx.event(
                Audience::All,
                RoomEvent::ParticipantLeft {
                    user: user.clone(),
                    reason,
                },
            );
            m
        } else {
            let pos = self.audience.get_index_of(user)?;
            let m = self.audience.shift_remove_index(pos)?.1;
            self.announce_audience_removal(pos, user, reason, fx);
            m
        };
        self.counts_dirty = true;
        Some(member)
    }

    /// An audience member at `pos` is gone from the audience list: viewers who could see
    /// them are told, and the next listener moves into the visible sample.
    fn announce_audience_removal(
        &mut self,
        pos: usize,
        user: &UserId,
        reason: LeftReason,
        fx: &mut Effects,
    ) {
        if pos >= self.audience_sample {
            return;
        }
        fx.event(
            Audience::All,
            RoomEvent::ParticipantLeft {
                user: user.clone(),
                reason,
            },
        );
        if let Some((_, next)) = self.audience.get_index(self.audience_sample - 1) {
            fx.event(
                Audience::All,
                RoomEvent::ParticipantJoined {
                    participant: next.participant(),
                },
            );
        }
    }

    /// `user` leaves; `quiet` tells no one. The room ends when its last moderator leaves.
    pub fn leave(&mut self, user: &UserId, quiet: bool) -> Effects {
        let mut fx = Effects::default();
        let reason = if quiet {
            LeftReason::Hidden
        } else {
            LeftReason::Left
        };
        if self.guests.remove(user) {
            self.counts_dirty = true;
            fx.out.push(Outgoing::Close {
                user: user.clone(),
                reason: CloseReason::Left,
            });
            return fx;
        }
        let Some(member) = self.take_out(user, reason, &mut fx) else {
            return fx;
        };
        fx.out.push(Outgoing::Close {
            user: user.clone(),
            reason: CloseReason::Left,
        });
        fx.persist
            .push(Persist::ParticipantGone { user: user.clone() });
        if member.role == Role::Moderator && self.moderators().is_empty() {
            let end = self.end();
            fx.out.extend(end.out);
            fx.persist.extend(end.persist);
        }
        fx
    }

    /// Ends the room for everyone.
    pub fn end(&mut self) -> Effects {
        let mut fx = Effects::default();
        if self.ended {
            return fx;
        }
        self.ended = true;
        fx.event(Audience::All, RoomEvent::Ended);
        fx.out.push(Outgoing::CloseAll(CloseReason::RoomEnded));
        fx.persist.push(Persist::Ended);
        fx
    }

    // ----- stage moves -----

    /// Moves a listener onto the stage with `role`.
    fn promote(&mut self, user: &UserId, role: Role, fx: &mut Effects) {
        let Some(pos) = self.audience.get_index_of(user) else {
            return;
        };
        let (_, mut m) = self.audience.shift_remove_index(pos).expect("index exists");
        self.invited.remove(user);
        if self.hands.shift_remove(user).is_some() {
            fx.event(
                self.mods_and(user),
                RoomEvent::HandLowered { user: user.clone() },
            );
        }
        m.role = role;
        m.muted = true;
        let p = m.participant();
        self.stage.insert(user.clone(), m);
        // The stage entry replaces the audience entry by upsert; only the listener who
        // slides into the sample needs announcing.
        if pos < self.audience_sample {
            if let Some((_, next)) = self.audience.get_index(self.audience_sample - 1) {
                fx.event(
                    Audience::All,
                    RoomEvent::ParticipantJoined {
                        participant: next.participant(),
                    },
                );
            }
        }
        fx.event(
            Audience::All,
            RoomEvent::ParticipantUpdated { participant: p },
        );
        fx.persist.push(Persist::Participant {
            user: user.clone(),
            role,
            muted: true,
        });
        self.counts_dirty = true;
    }

    /// Moves someone from the stage to the end of the audience.
    fn demote(&mut self, user: &UserId, fx: &mut Effects) {
        let Some(mut m) = self.stage.shift_remove(user) else {
            return;
        };
        m.role = Role::Listener;
        m.muted = true;
        let p = m.participant();
        self.audience.insert(user.clone(), m);
        if self.audience.len() <= self.audience_sample {
            fx.event(
                Audience::All,
                RoomEvent::ParticipantUpdated { participant: p },
            );
        } else {
            fx.event(
                Audience::All,
                RoomEvent::ParticipantLeft {
                    user: user.clone(),
                    reason: LeftReason::Hidden,
                },
            );
            // The demoted person still needs their own new role.
            fx.event(
                Audience::Users(vec![user.clone()]),
                RoomEvent::ParticipantUpdated { participant: p },
            );
        }
        fx.out.push(Outgoing::Resync(user.clone()));
        fx.persist.push(Persist::Participant {
            user: user.clone(),
            role: Role::Listener,
            muted: true,
        });
        self.counts_dirty = true;
    }

    // ----- commands -----

    /// Applies one room command from `actor`. Connection-level messages (hello, sync,
    /// audience, ping) are handled by the caller.
    pub fn apply(&mut self, actor: &UserId, msg: &ClientMessage) -> Result<Effects, ErrorCode> {
        if self.ended {
            return Err(ErrorCode::RoomEnded);
        }
        if self.guests.contains(actor) {
            // Guests listen only: hands, invitations and the stage need an account.
            return match msg {
                ClientMessage::Leave { .. } => Ok(self.leave(actor, true)),
                _ => Err(ErrorCode::Forbidden),
            };
        }
        let role = self.role_of(actor).ok_or(ErrorCode::NotInRoom)?;
        let is_mod = role == Role::Moderator;
        let require_mod = || {
            if is_mod {
                Ok(())
            } else {
                Err(ErrorCode::Forbidden)
            }
        };
        let mut fx = Effects::default();
        match msg {
            ClientMessage::RaiseHand => {
                if role != Role::Listener {
                    return Err(ErrorCode::NotAListener);
                }
                if !self.hands_enabled {
                    return Err(ErrorCode::HandsDisabled);
                }
                if !self.hands.contains_key(actor) {
                    let invited = self.invited.contains(actor);
                    self.hands.insert(actor.clone(), invited);
                    let entry = HandEntry {
                        participant: self.audience[actor].participant(),
                        invited,
                    };
                    fx.event(self.mods_and(actor), RoomEvent::HandRaised { entry });
                    self.counts_dirty = true;
                }
            }
            ClientMessage::LowerHand => {
                if self.hands.shift_remove(actor).is_some() {
                    fx.event(
                        self.mods_and(actor),
                        RoomEvent::HandLowered {
                            user: actor.clone(),
                        },
                    );
                    self.counts_dirty = true;
                }
            }
            ClientMessage::InviteToSpeak { user } => {
                require_mod()?;
                self.target_in_audience(user)?;
                if self.invited.insert(user.clone()) {
                    if let Some(invited) = self.hands.get_mut(user) {
                        *invited = true;
                    }
                    let by = self.stage[actor].user.clone();
                    if self.audience[user].absent_until.is_some() {
                        fx.invited_away.push((user.clone(), actor.clone()));
                    }
                    fx.event(
                        Audience::Users(vec![user.clone()]),
                        RoomEvent::InvitedToSpeak {
                            by,
                            recording: self.recording,
                        },
                    );
                    fx.event(
                        Audience::Users(self.moderators()),
                        RoomEvent::InviteSent {
                            user: user.clone(),
                            by: actor.clone(),
                        },
                    );
                }
            }
            ClientMessage::AcceptInvite => {
                if !self.invited.contains(actor) {
                    return Err(ErrorCode::NoInvite);
                }
                self.promote(actor, Role::Speaker, &mut fx);
            }
            ClientMessage::DeclineInvite => {
                if !self.invited.remove(actor) {
                    return Err(ErrorCode::NoInvite);
                }
                if self.hands.shift_remove(actor).is_some() {
                    fx.event(
                        self.mods_and(actor),
                        RoomEvent::HandLowered {
                            user: actor.clone(),
                        },
                    );
                    self.counts_dirty = true;
                }
                fx.event(
                    Audience::Users(self.moderators()),
                    RoomEvent::InviteDeclined {
                        user: actor.clone(),
                    },
                );
            }
            ClientMessage::SetMuted { muted } => {
                let m = self.stage.get_mut(actor).ok_or(ErrorCode::NotOnStage)?;
                if m.muted != *muted {
                    m.muted = *muted;
                    let participant = m.participant();
                    fx.event(Audience::All, RoomEvent::ParticipantUpdated { participant });
                    fx.persist.push(Persist::Muted {
                        user: actor.clone(),
                        muted: *muted,
                    });
                }
            }
            ClientMessage::LeaveStage => {
                if !role.on_stage() {
                    return Err(ErrorCode::NotOnStage);
                }
                self.check_not_last_moderator(actor)?;
                self.demote(actor, &mut fx);
            }
            ClientMessage::MoveToAudience { user } => {
                require_mod()?;
                self.target_on_stage(user)?;
                self.check_not_last_moderator(user)?;
                self.demote(user, &mut fx);
            }
            ClientMessage::Mute { user } => {
                require_mod()?;
                self.target_on_stage(user)?;
                let m = self.stage.get_mut(user).expect("checked");
                if !m.muted {
                    m.muted = true;
                    let participant = m.participant();
                    fx.event(Audience::All, RoomEvent::ParticipantUpdated { participant });
                    fx.persist.push(Persist::Muted {
                        user: user.clone(),
                        muted: true,
                    });
                }
            }
            ClientMessage::MakeModerator { user } => {
                require_mod()?;
                self.target_not_guest(user)?;
                match self.role_of(user) {
                    None => return Err(ErrorCode::TargetNotInRoom),
                    Some(Role::Moderator) => {}
                    Some(Role::Listener) => self.promote(user, Role::Moderator, &mut fx),
                    Some(Role::Speaker) => {
                        let m = self.stage.get_mut(user).expect("on stage");
                        m.role = Role::Moderator;
                        let participant = m.participant();
                        fx.event(Audience::All, RoomEvent::ParticipantUpdated { participant });
                        fx.persist.push(Persist::Participant {
                            user: user.clone(),
                            role: Role::Moderator,
                            muted: m.muted,
                        });
                    }
                }
                // A new moderator now sees the hand queue: give them the full picture.
                fx.out.push(Outgoing::Resync(user.clone()));
            }
            ClientMessage::Remove { user } => {
                require_mod()?;
                if user == actor || *user == self.created_by {
                    return Err(ErrorCode::InvalidTarget);
                }
                self.target_not_guest(user)?;
                if self.member(user).is_none() {
                    return Err(ErrorCode::TargetNotInRoom);
                }
                self.take_out(user, LeftReason::Removed, &mut fx);
                self.removed.insert(user.clone());
                fx.event(
                    Audience::Users(vec![user.clone()]),
                    RoomEvent::YouWereRemoved { by: actor.clone() },
                );
                fx.out.push(Outgoing::Close {
                    user: user.clone(),
                    reason: CloseReason::Removed,
                });
                fx.persist.push(Persist::Removed {
                    user: user.clone(),
                    by: actor.clone(),
                });
            }
            ClientMessage::SetHandsEnabled { enabled } => {
                require_mod()?;
                if self.hands_enabled != *enabled {
                    self.hands_enabled = *enabled;
                    fx.event(Audience::All, RoomEvent::HandsEnabled { enabled: *enabled });
                    if !enabled {
                        for (user, _) in std::mem::take(&mut self.hands) {
                            fx.event(self.mods_and(&user), RoomEvent::HandLowered { user });
                        }
                        self.counts_dirty = true;
                    }
                    fx.persist.push(Persist::HandsEnabled(*enabled));
                }
            }
            ClientMessage::SetRecording { recording } => {
                require_mod()?;
                if self.mls.is_some() && *recording {
                    return Err(ErrorCode::Encrypted);
                }
                self.set_recording(actor, *recording, &mut fx);
            }
            ClientMessage::MlsKeyPackage { key_package } => {
                let mls = self.mls.as_mut().ok_or(ErrorCode::BadRequest)?;
                mls.key_package(actor, key_package)?;
                fx.event(
                    Audience::Users(self.moderators()),
                    RoomEvent::MlsKeyPackage {
                        user: actor.clone(),
                        key_package: key_package.clone(),
                    },
                );
            }
            ClientMessage::MlsGuestKey { epoch, envelope } => {
                require_mod()?;
                let mls = self.mls.as_mut().ok_or(ErrorCode::BadRequest)?;
                let key = mls.guest_key(*epoch, envelope)?;
                fx.event(Audience::All, RoomEvent::MlsGuestKey { key });
            }
            ClientMessage::EndRoom => {
                require_mod()?;
                return Ok(self.end());
            }
            ClientMessage::Leave { quiet } => return Ok(self.leave(actor, *quiet)),
            ClientMessage::Hello { .. }
            | ClientMessage::MediaOffer { .. }
            | ClientMessage::Sync
            | ClientMessage::Audience { .. }
            | ClientMessage::Ping => return Err(ErrorCode::BadRequest),
            // Reactions and chat need the time: `apply_chat`.
            ClientMessage::React { .. }
            | ClientMessage::SetReactionsEnabled { .. }
            | ClientMessage::SendChat { .. }
            | ClientMessage::ChatHistory { .. }
            | ClientMessage::DeleteChat { .. }
            | ClientMessage::SetChatSettings { .. } => return Err(ErrorCode::BadRequest),
        }
        Ok(fx)
    }

    /// Recording on or off, announced to everyone (never silently) and stored.
    fn set_recording(&mut self, actor: &UserId, recording: bool, fx: &mut Effects) {
        if self.recording == recording {
            return;
        }
        self.recording = recording;
        fx.event(
            Audience::All,
            RoomEvent::Recording {
                recording,
                by: actor.clone(),
            },
        );
        fx.persist.push(Persist::Recording(recording));
    }

    /// A moderator's MLS commit (encrypted rooms): taken if built on the current epoch, then
    /// announced to everyone, and its welcome to the members it adds who are here.
    pub fn mls_commit(
        &mut self,
        actor: &UserId,
        req: &ruang_proto::MlsCommitRequest,
    ) -> Result<(u64, Effects), ErrorCode> {
        if self.ended {
            return Err(ErrorCode::RoomEnded);
        }
        if self.role_of(actor) != Some(Role::Moderator) {
            return Err(ErrorCode::Forbidden);
        }
        let mls = self.mls.as_mut().ok_or(ErrorCode::BadRequest)?;
        let commit = mls.commit(actor, req)?;
        let mut fx = Effects::default();
        fx.event(
            Audience::All,
            RoomEvent::MlsCommit {
                epoch: commit.epoch,
                by: actor.clone(),
                added: commit.added.clone(),
                removed: commit.removed.clone(),
            },
        );
        // Added while they were leaving: the group holds them, so they are departed at once
        // (the next commit removes them).
        let away: Vec<UserId> = commit
            .added
            .iter()
            .filter(|u| self.member(u).is_none())
            .cloned()
            .collect();
        let mods = self.moderators();
        if let Some(mls) = self.mls.as_mut() {
            for user in away {
                if mls.left(&user, false) {
                    fx.event(
                        Audience::Users(mods.clone()),
                        RoomEvent::MlsDeparted {
                            user,
                            removed: false,
                        },
                    );
                }
            }
        }
        if req.welcome.is_some() {
            let here: Vec<UserId> = commit
                .added
                .iter()
                .filter(|u| self.member(u).is_some())
                .cloned()
                .collect();
            if !here.is_empty() {
                fx.event(
                    Audience::Users(here),
                    RoomEvent::MlsWelcome {
                        epoch: commit.epoch,
                    },
                );
            }
        }
        Ok((commit.epoch, fx))
    }

    /// The commit that started `epoch` and the caller's welcome, for members of an encrypted
    /// room (guests are not in its group).
    pub fn mls_for(&self, user: &UserId) -> Result<&super::mls::MlsRelay, ErrorCode> {
        let mls = self.mls.as_ref().ok_or(ErrorCode::NotFound)?;
        if self.member(user).is_none() {
            return Err(ErrorCode::NotInRoom);
        }
        Ok(mls)
    }

    /// Whether `user` may clip the last 30 s: anyone in a recorded room, or a moderator of
    /// a room created with clips on. Guests never. Never in an encrypted room.
    pub fn may_clip(&self, user: &UserId) -> bool {
        if self.ended || self.guests.contains(user) || self.mls.is_some() {
            return false;
        }
        match self.role_of(user) {
            None => false,
            Some(_) if self.recording => true,
            Some(role) => self.clips && role == Role::Moderator,
        }
    }

    /// Guests are in the room but can never be the target of a stage command.
    fn target_not_guest(&self, user: &UserId) -> Result<(), ErrorCode> {
        if self.guests.contains(user) {
            Err(ErrorCode::InvalidTarget)
        } else {
            Ok(())
        }
    }

    fn target_in_audience(&self, user: &UserId) -> Result<(), ErrorCode> {
        self.target_not_guest(user)?;
        if self.audience.contains_key(user) {
            Ok(())
        } else if self.stage.contains_key(user) {
            Err(ErrorCode::InvalidTarget)
        } else {
            Err(ErrorCode::TargetNotInRoom)
        }
    }

    fn target_on_stage(&self, user: &UserId) -> Result<(), ErrorCode> {
        self.target_not_guest(user)?;
        if self.stage.contains_key(user) {
            Ok(())
        } else if self.audience.contains_key(user) {
            Err(ErrorCode::InvalidTarget)
        } else {
            Err(ErrorCode::TargetNotInRoom)
        }
    }

    fn check_not_last_moderator(&self, user: &UserId) -> Result<(), ErrorCode> {
        let mods = self.moderators();
        if mods.len() == 1 && mods[0] == *user {
            Err(ErrorCode::LastModerator)
        } else {
            Ok(())
        }
    }
}

/// Guest ids start with this; member ids never contain `-`, so they cannot collide.
pub const GUEST_ID_PREFIX: &str = "guest-";

/// How a guest appears to themselves (`you` in their snapshot).
pub fn guest_summary(id: &UserId) -> UserSummary {
    UserSummary {
        id: id.clone(),
        handle: String::new(),
        name: "Guest".into(),
        avatar: None,
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "rules_recording_tests.rs"]
mod recording_tests;

#[cfg(test)]
#[path = "rules_e2ee_tests.rs"]
mod e2ee_tests;
