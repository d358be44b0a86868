//! Live rooms in memory: each room's rules behind a short lock, a broadcast channel that
//! carries the rules' output to the room's connections, and an ordered writer that
//! persists changes. Nothing here holds a lock across an await.

use super::hallway::RoomView;
use super::rules::chat::{ChatContext, ChatEntry};
use super::rules::{Effects, Member, Outgoing, Persist, RoomRules};
use crate::store::{new_link_token, now_ms, LoadedRoom, Store, StoredRoom};
use ruang_proto::{
    ChatMessage, ClientMessage, CloseReason, ErrorCode, Participant, Role, RoomId, RoomSnapshot,
    UserId, UserSummary,
};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{broadcast, mpsc, oneshot};

/// What a room's connections receive. Each connection filters for itself.
pub type Dispatch = Arc<Outgoing>;

const ROOM_CHANNEL: usize = 1024;

/// Who may be heard in a room right now (on stage, not muted), read by the SFU for every
/// packet. Updated under the room lock after each change, before the change is answered or
/// broadcast, so a demoted or muted speaker is silent from the next packet on.
#[derive(Default)]
pub struct AudibleSet {
    version: AtomicU64,
    users: RwLock<HashSet<UserId>>,
}

impl AudibleSet {
    /// Grows by one at every change; compare it to skip re-reading the set.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub fn contains(&self, user: &UserId) -> bool {
        self.users
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(user)
    }

    fn update(&self, rules: &RoomRules) {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        let now: HashSet<&UserId> = rules.audible_users().collect();
        if now.len() != users.len() || !now.iter().all(|u| users.contains(*u)) {
            *users = now.into_iter().cloned().collect();
            self.version.fetch_add(1, Ordering::Release);
        }
    }
}

struct RoomInner {
    rules: RoomRules,
    /// The open connection of each member (a second one replaces the first).
    conns: HashMap<UserId, u64>,
}

pub struct LiveRoom {
    pub id: RoomId,
    /// Cluster mode: the fencing token this node got when it took the room; its writes land
    /// only while the database still holds it. None on a single node.
    pub fence: Option<i64>,
    /// The key of a closed room's shared link; replaced when someone is removed, so an old
    /// link (and a guest pass made with it) no longer lets them back in.
    link_token: RwLock<String>,
    inner: Mutex<RoomInner>,
    audible: AudibleSet,
    tx: broadcast::Sender<Dispatch>,
    persist: mpsc::UnboundedSender<PersistJob>,
    /// Where the SFU hands the audio of a recorded room (or one that allows clips).
    pub recorder: crate::replay::Recorder,
}

enum PersistJob {
    Op(RoomId, Option<i64>, Persist),
    /// Answers once every job before it is done: true if all of those since the previous
    /// `Flush` were written.
    Flush(oneshot::Sender<bool>),
}

/// A change answered only once it is durable: resolves to true when it was written.
pub type Durable = oneshot::Receiver<bool>;

/// Members invited to speak while away, with the moderator who invited each.
pub type InvitedAway = Vec<(UserId, UserId)>;

/// A joined connection's starting point.
pub struct Joined {
    pub snapshot: RoomSnapshot,
    pub events: broadcast::Receiver<Dispatch>,
    pub resumed: bool,
}

impl LiveRoom {
    fn lock(&self) -> std::sync::MutexGuard<'_, RoomInner> {
        // A panic while holding the lock must not take every later request down with it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends the rules' output to the connections and their writes to the writer; returns
    /// a receiver that resolves once those writes are done (None when there were none).
    fn dispatch(&self, fx: Effects) -> Option<Durable> {
        for out in fx.out {
            let _ = self.tx.send(Arc::new(out));
        }
        if fx.persist.is_empty() {
            return None;
        }
        for p in fx.persist {
            let _ = self
                .persist
                .send(PersistJob::Op(self.id.clone(), self.fence, p));
        }
        let (tx, rx) = oneshot::channel();
        let _ = self.persist.send(PersistJob::Flush(tx));
        Some(rx)
    }

    /// Joins (or resumes) `user` on connection `conn`.
    pub fn join(
        &self,
        user: UserSummary,
        followed_by_speakers: bool,
        conn: u64,
    ) -> Result<Joined, ErrorCode> {
        let mut inner = self.lock();
        let id = user.id.clone();
        let (fx, resumed) = inner.rules.join(user, followed_by_speakers)?;
        if inner.conns.insert(id.clone(), conn).is_some() {
            // Sent before this connection subscribes, so only the old one sees it.
            let _ = self.tx.send(Arc::new(Outgoing::Close {
                user: id.clone(),
                reason: CloseReason::Replaced,
            }));
        }
        // Subscribe after sending the join itself: the snapshot already holds it.
        self.audible.update(&inner.rules);
        // The join itself is soft until the next write: a listener who joined is not
        // confirmed anything beyond the snapshot.
        let _ = self.dispatch(fx);
        let events = self.tx.subscribe();
        let snapshot = inner.rules.snapshot_for(&id).ok_or(ErrorCode::NotInRoom)?;
        Ok(Joined {
            snapshot,
            events,
            resumed,
        })
    }

    /// Joins a guest (see `RoomRules::join_guest`) on connection `conn`.
    pub fn join_guest(&self, id: UserId, conn: u64) -> Result<Joined, ErrorCode> {
        let mut inner = self.lock();
        inner.rules.join_guest(id.clone())?;
        inner.conns.insert(id.clone(), conn);
        let events = self.tx.subscribe();
        let snapshot = inner.rules.snapshot_for(&id).ok_or(ErrorCode::NotInRoom)?;
        Ok(Joined {
            snapshot,
            events,
            resumed: false,
        })
    }

    /// Applies a room command. The returned [`Durable`] (if any) resolves once the change
    /// is written: callers confirm the command only then. The list holds the members it
    /// invited to speak while they had no connection, with the moderator who did (see
    /// [`Effects::invited_away`]).
    pub fn command(
        &self,
        user: &UserId,
        msg: &ClientMessage,
    ) -> Result<(Option<Durable>, InvitedAway), ErrorCode> {
        let mut inner = self.lock();
        let hands_before = inner.rules.hands_snapshot();
        let mut fx = match msg {
            ClientMessage::Leave { quiet } => {
                let fx = inner.rules.leave(user, *quiet);
                // Gone for good: forget the connection (guests never come back by id).
                inner.conns.remove(user);
                fx
            }
            _ => inner.rules.apply(user, msg)?,
        };
        if matches!(msg, ClientMessage::Remove { .. })
            && inner.rules.kind == ruang_proto::RoomKind::Closed
        {
            let token = new_link_token();
            *self.link_token.write().unwrap_or_else(|e| e.into_inner()) = token.clone();
            fx.persist.push(Persist::LinkToken(token));
        }
        note_hands(&inner.rules, hands_before, &mut fx);
        self.audible.update(&inner.rules);
        self.recorder.set(inner.rules.recording, inner.rules.clips);
        let away = std::mem::take(&mut fx.invited_away);
        Ok((self.dispatch(fx), away))
    }

    /// Sets recording and clips without announcing it: at creation (before anyone is in)
    /// and when a stored room comes back after a restart.
    pub fn set_media_options(&self, recording: bool, clips: bool) {
        let mut inner = self.lock();
        inner.rules.recording = recording;
        inner.rules.clips = clips;
        self.recorder.set(recording, clips);
    }

    /// Makes the room end-to-end encrypted: at creation, and when a stored one comes back
    /// (its MLS relay starts empty; the members' devices rebuild the group).
    pub fn set_e2ee(&self) {
        let mut inner = self.lock();
        if inner.rules.mls.is_none() {
            inner.rules.mls = Some(super::mls::MlsRelay::default());
        }
    }

    /// A moderator's MLS commit: the new epoch once taken (everyone is told at once; the
    /// relay is not stored, so nothing waits for a write).
    pub fn mls_commit(
        &self,
        user: &UserId,
        req: &ruang_proto::MlsCommitRequest,
    ) -> Result<u64, ErrorCode> {
        let mut inner = self.lock();
        let (epoch, fx) = inner.rules.mls_commit(user, req)?;
        drop(inner);
        let _ = self.dispatch(fx);
        Ok(epoch)
    }

    /// The commit that started `epoch`, for a member of this encrypted room.
    pub fn mls_commit_at(
        &self,
        user: &UserId,
        epoch: u64,
    ) -> Result<Option<Arc<ruang_proto::MlsCommit>>, ErrorCode> {
        let inner = self.lock();
        Ok(inner.rules.mls_for(user)?.commit_at(epoch))
    }

    /// The latest welcome for `user`'s device.
    pub fn mls_welcome(&self, user: &UserId) -> Result<Option<(u64, Arc<str>)>, ErrorCode> {
        let inner = self.lock();
        Ok(inner.rules.mls_for(user)?.welcome_for(user))
    }

    /// `(recording, clips)` now.
    pub fn media_options(&self) -> (bool, bool) {
        let inner = self.lock();
        (inner.rules.recording, inner.rules.clips)
    }

    /// Whether `user` may clip the last 30 s (see `RoomRules::may_clip`).
    pub fn may_clip(&self, user: &UserId) -> bool {
        self.lock().rules.may_clip(user)
    }

    /// The display name of a member in the room (their id when they are not in it).
    pub fn display_name(&self, user: &UserId) -> String {
        self.lock()
            .rules
            .member(user)
            .map(|m| m.user.name.clone())
            .unwrap_or_else(|| user.to_string())
    }

    /// The closed-room link key in force now.
    pub fn link_token(&self) -> String {
        self.link_token
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether `candidate` is the room's link key (compared in constant time).
    pub fn link_matches(&self, candidate: &str) -> bool {
        let key = self.link_token.read().unwrap_or_else(|e| e.into_inner());
        let (a, b) = (key.as_bytes(), candidate.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
    }

    /// The connection `conn` of `user` closed; they have `grace_ms` to come back.
    pub fn disconnected(&self, user: &UserId, conn: u64, grace_ms: i64) {
        let mut inner = self.lock();
        if inner.conns.get(user) == Some(&conn) {
            inner.conns.remove(user);
            if inner.rules.is_guest(user) {
                inner.rules.guest_left(user);
            } else {
                inner.rules.disconnected(user, now_ms() + grace_ms);
            }
        }
    }

    pub fn snapshot_for(&self, user: &UserId) -> Option<RoomSnapshot> {
        self.lock().rules.snapshot_for(user)
    }

    pub fn audience_page(&self, cursor: u32, limit: u32) -> (Vec<Participant>, Option<u32>, u32) {
        self.lock().rules.audience_page(cursor, limit)
    }

    pub fn role_of(&self, user: &UserId) -> Option<Role> {
        self.lock().rules.role_of(user)
    }

    pub fn is_removed(&self, user: &UserId) -> bool {
        self.lock().rules.is_removed(user)
    }

    pub fn participant_count(&self) -> usize {
        self.lock().rules.participant_count()
    }

    pub fn guest_count(&self) -> usize {
        self.lock().rules.guest_count()
    }

    pub fn ended(&self) -> bool {
        self.lock().rules.ended
    }

    pub fn stage_ids(&self) -> Vec<UserId> {
        self.lock()
            .rules
            .stage()
            .map(|m| m.user.id.clone())
            .collect()
    }

    pub fn created_by(&self) -> UserId {
        self.lock().rules.created_by.clone()
    }

    pub fn kind(&self) -> ruang_proto::RoomKind {
        self.lock().rules.kind
    }

    /// Whether `user`'s audio may be forwarded right now (on stage and not muted).
    pub fn audible(&self, user: &UserId) -> bool {
        self.lock().rules.audible(user)
    }

    /// The same, without the room lock: for the SFU's per-packet check.
    pub fn audible_set(&self) -> &AudibleSet {
        &self.audible
    }

    pub fn view_for(&self, viewer: &UserId) -> RoomView {
        let inner = self.lock();
        let r = &inner.rules;
        RoomView {
            id: r.id.clone(),
            title: r.title.clone(),
            kind: r.kind,
            created_by: r.created_by.clone(),
            created_at: r.created_at,
            link_token: self.link_token(),
            stage: r.stage().map(|m| (m.user.clone(), m.role)).collect(),
            listener_count: r.counts(false).listeners,
            viewer_inside: r.member(viewer).is_some(),
            viewer_removed: r.is_removed(viewer),
            recording: r.recording,
            clips: r.clips,
            e2ee: r.mls.is_some(),
        }
    }

    /// Sends raw output to this room's connections (used for levels and shutdown).
    pub fn send(&self, out: Outgoing) {
        let _ = self.tx.send(Arc::new(out));
    }

    // ----- safety: blocks, bans, reports (docs/safety.md) -----

    /// The room's moderators now.
    pub fn moderator_ids(&self) -> Vec<UserId> {
        self.lock().rules.moderators()
    }

    /// Which of `users` are in the room (not guests), with their roles.
    pub fn present(&self, users: &HashSet<UserId>) -> Vec<(UserId, Role)> {
        let inner = self.lock();
        users
            .iter()
            .filter_map(|u| inner.rules.role_of(u).map(|r| (u.clone(), r)))
            .collect()
    }

    /// Takes `user` out of the room quietly (nobody is told; their connection closes as
    /// if they left). The room ends if they were its last moderator. Returns the write to
    /// wait for and their connection id (to close their media), or None if not here.
    pub fn expel(&self, user: &UserId) -> Option<(Option<Durable>, Option<u64>)> {
        let mut inner = self.lock();
        inner.rules.member(user)?;
        let hands_before = inner.rules.hands_snapshot();
        let mut fx = inner.rules.leave(user, true);
        let conn = inner.conns.remove(user);
        note_hands(&inner.rules, hands_before, &mut fx);
        self.audible.update(&inner.rules);
        Some((self.dispatch(fx), conn))
    }

    /// The text and author of chat message `msg` of this room, for a report's evidence:
    /// any message the room still keeps in memory, even one a moderator deleted.
    pub fn message_evidence(&self, msg: &str) -> Option<MessageEvidence> {
        let id: u64 = msg.trim_start_matches('#').parse().ok()?;
        let entry = self.chat_message(id)?;
        Some(MessageEvidence {
            author: entry.message.author,
            text: entry.message.text,
        })
    }

    fn tick(&self, now: i64) {
        let mut inner = self.lock();
        let hands_before = inner.rules.hands_snapshot();
        let mut fx = inner.rules.expire(now);
        note_hands(&inner.rules, hands_before, &mut fx);
        self.audible.update(&inner.rules);
        let _ = self.dispatch(fx);
        if let Some(fx) = inner.rules.take_counts() {
            let _ = self.dispatch(fx);
        }
        if let Some(fx) = inner.rules.take_reactions(now) {
            let _ = self.dispatch(fx);
        }
    }

    // ----- reactions and chat -----

    /// Applies a reactions or chat command (see `rules::chat`). `follows_host`: whether
    /// `user` follows one of the moderators (needed when
    /// [`LiveRoom::chat_needs_follow_check`]).
    pub fn chat_command(
        &self,
        user: &UserId,
        msg: &ClientMessage,
        follows_host: bool,
    ) -> Result<Option<Durable>, ErrorCode> {
        let mut inner = self.lock();
        let ctx = ChatContext {
            now: now_ms(),
            follows_host,
        };
        let fx = inner.rules.apply_chat(user, msg, ctx)?;
        Ok(self.dispatch(fx))
    }

    pub fn chat_needs_follow_check(&self, user: &UserId) -> bool {
        self.lock().rules.chat_needs_follow_check(user)
    }

    pub fn moderators(&self) -> Vec<UserId> {
        self.lock().rules.moderators()
    }

    /// One page of chat history (see `RoomRules::chat_history`).
    pub fn chat_history(&self, before: Option<u64>, limit: u32) -> (Vec<ChatMessage>, bool) {
        self.lock().rules.chat_history(before, limit)
    }

    /// Changes whenever a chat message is posted or deleted.
    pub fn chat_revision(&self) -> u64 {
        self.lock().rules.chat_revision()
    }

    /// The room's whole kept chat, oldest first (for recordings).
    pub fn chat_log(&self) -> Vec<ChatMessage> {
        self.lock().rules.chat_log()
    }

    /// One kept chat message by id, deleted or not (for reports).
    pub fn chat_message(&self, id: u64) -> Option<ChatEntry> {
        self.lock().rules.chat_message(id).cloned()
    }
}

/// A chat message as a report keeps it (see [`LiveRoom::message_evidence`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MessageEvidence {
    pub author: UserSummary,
    pub text: String,
}

/// Records the hand queue when `rules` changed it (compared with `before`), unless the
/// room ended (its row is closed then).
fn note_hands(rules: &RoomRules, before: Vec<(UserId, bool)>, fx: &mut Effects) {
    let after = rules.hands_snapshot();
    if after != before && !rules.ended {
        fx.persist.push(Persist::Hands(after));
    }
}

pub struct RegistryConfig {
    pub rejoin_grace_ms: i64,
    /// How long a new room waits for its creator's first connection.
    pub first_join_grace_ms: i64,
    pub audience_sample: usize,
}

pub struct Registry {
    rooms: RwLock<HashMap<RoomId, Arc<LiveRoom>>>,
    persist: mpsc::UnboundedSender<PersistJob>,
    config: RegistryConfig,
    next_conn: AtomicU64,
}

impl Registry {
    /// Starts the registry with the rooms that were live when the server stopped, and the
    /// writer task that persists room changes in order.
    pub fn start(store: Store, loaded: Vec<LoadedRoom>, config: RegistryConfig) -> Arc<Registry> {
        let (persist, rx) = mpsc::unbounded_channel();
        let (lost_tx, mut lost_rx) = mpsc::unbounded_channel::<RoomId>();
        tokio::spawn(persist_loop(store, rx, lost_tx));
        let registry = Arc::new(Registry {
            rooms: RwLock::new(HashMap::new()),
            persist,
            config,
            next_conn: AtomicU64::new(1),
        });
        // A room whose write was fenced out belongs to another node now: let it go here.
        let weak = Arc::downgrade(&registry);
        tokio::spawn(async move {
            while let Some(id) = lost_rx.recv().await {
                let Some(registry) = weak.upgrade() else {
                    break;
                };
                if registry.release(&id) {
                    tracing::warn!(room = %id, "another node owns this room now; its connections move there");
                }
            }
        });
        for l in loaded {
            registry.restore(l, None);
        }
        registry
    }

    /// Brings back a stored live room (after a restart, or taken over from another node
    /// with the fencing token `fence`): roles, mute, removals, hands; everyone has the
    /// rejoin grace to come back.
    pub fn restore(&self, l: LoadedRoom, fence: Option<i64>) -> Arc<LiveRoom> {
        let deadline = now_ms() + self.config.rejoin_grace_ms;
        let members = l
            .participants
            .into_iter()
            .map(|(u, role, muted)| {
                let mut m = Member::new(u, role);
                m.muted = muted;
                m
            })
            .collect();
        let creator = l.creator.id.clone();
        let mut rules = self
            .new_rules(&l.room, l.creator)
            .restore(members, l.removed, deadline)
            .restore_hands(l.hands)
            .restore_chat_settings(l.chat.0, l.chat.1);
        rules.hands_enabled = l.room.hands_enabled;
        rules.cohosts = l.cohosts.into_iter().collect();
        if l.e2ee {
            // The relay starts empty: the members' devices rebuild the group (a moderator's
            // device creates it again and adds the others' new key packages).
            rules.mls = Some(super::mls::MlsRelay::default());
        }
        // A new room keeps its wait for the creator's first connection across a restart.
        let first_join_until = l.room.created_at + self.config.first_join_grace_ms;
        if first_join_until > deadline && rules.member(&creator).is_some() {
            rules.disconnected(&creator, first_join_until);
        }
        let room = self.insert(l.room.link_token.clone(), rules, fence);
        // A crash can leave a room without moderators (its end never written): end it now.
        {
            let mut inner = room.lock();
            if !inner.rules.has_moderator() {
                let fx = inner.rules.end();
                let _ = room.dispatch(fx);
            }
            room.audible.update(&inner.rules);
        }
        room
    }

    /// Lets go of a room this node no longer owns (cluster: the lease was lost or handed
    /// over): it leaves the map and its connections are told to reconnect, which brings
    /// them to the new owner. Nothing is written. True if the room was here.
    pub fn release(&self, id: &RoomId) -> bool {
        let room = self
            .rooms
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        match room {
            Some(room) => {
                room.send(Outgoing::CloseAll(CloseReason::ServerShutdown));
                true
            }
            None => false,
        }
    }

    /// Ids of the rooms live here.
    pub fn ids(&self) -> Vec<RoomId> {
        self.rooms
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    fn new_rules(&self, room: &StoredRoom, creator: UserSummary) -> RoomRules {
        RoomRules::new(
            room.id.clone(),
            room.title.clone(),
            room.kind,
            creator,
            room.created_at,
        )
        .with_audience_sample(self.config.audience_sample)
    }

    fn insert(&self, link_token: String, rules: RoomRules, fence: Option<i64>) -> Arc<LiveRoom> {
        let (tx, _) = broadcast::channel(ROOM_CHANNEL);
        let room = Arc::new(LiveRoom {
            id: rules.id.clone(),
            fence,
            link_token: RwLock::new(link_token),
            audible: AudibleSet::default(),
            inner: Mutex::new(RoomInner {
                rules,
                conns: HashMap::new(),
            }),
            tx,
            persist: self.persist.clone(),
            recorder: crate::replay::Recorder::default(),
        });
        room.audible.update(&room.lock().rules);
        self.rooms
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(room.id.clone(), room.clone());
        room
    }

    /// Adds a room already stored by the caller.
    pub fn add_room(
        &self,
        room: &StoredRoom,
        creator: UserSummary,
        fence: Option<i64>,
    ) -> Arc<LiveRoom> {
        self.add_room_with_cohosts(room, creator, Vec::new(), fence)
    }

    /// Adds a room started from an event: its co-hosts join as moderators.
    pub fn add_room_with_cohosts(
        &self,
        room: &StoredRoom,
        creator: UserSummary,
        cohosts: Vec<UserId>,
        fence: Option<i64>,
    ) -> Arc<LiveRoom> {
        let mut rules = self.new_rules(room, creator);
        rules.cohosts = cohosts.into_iter().collect();
        // The creator opened the room over HTTP and has not connected yet: give them time
        // (a room nobody ever hosts still ends, so it does not linger in hallways).
        let wait = self
            .config
            .first_join_grace_ms
            .max(self.config.rejoin_grace_ms);
        rules.disconnected(&room.created_by, now_ms() + wait);
        self.insert(room.link_token.clone(), rules, fence)
    }

    pub fn get(&self, id: &RoomId) -> Option<Arc<LiveRoom>> {
        let room = self
            .rooms
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()?;
        (!room.ended()).then_some(room)
    }

    pub fn all(&self) -> Vec<Arc<LiveRoom>> {
        self.rooms
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|r| !r.ended())
            .cloned()
            .collect()
    }

    pub fn rejoin_grace_ms(&self) -> i64 {
        self.config.rejoin_grace_ms
    }

    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Periodic work: expire people gone past the grace period, send coalesced counts,
    /// forget ended rooms.
    pub fn tick(&self) {
        let now = now_ms();
        let rooms: Vec<Arc<LiveRoom>> = self
            .rooms
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for room in &rooms {
            room.tick(now);
        }
        self.rooms
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, r| !r.ended());
    }

    /// Tells every connection the server is going away.
    pub fn shutdown(&self) {
        for room in self.all() {
            room.send(Outgoing::CloseAll(CloseReason::ServerShutdown));
        }
    }

    /// Waits until every change so far is written.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.persist.send(PersistJob::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

async fn persist_loop(
    store: Store,
    mut rx: mpsc::UnboundedReceiver<PersistJob>,
    lost: mpsc::UnboundedSender<RoomId>,
) {
    let mut all_written = true;
    while let Some(job) = rx.recv().await {
        let (room, fence, op) = match job {
            PersistJob::Flush(done) => {
                let _ = done.send(std::mem::replace(&mut all_written, true));
                continue;
            }
            PersistJob::Op(room, fence, op) => (room, fence, op),
        };
        match store.apply_room_change(&room, fence, &op).await {
            Ok(()) => {}
            Err(crate::store::StoreError::Fenced) => {
                all_written = false;
                let _ = lost.send(room);
            }
            Err(e) => {
                all_written = false;
                tracing::error!(room = %room, ?op, error = %e, "could not persist a room change");
            }
        }
    }
}
