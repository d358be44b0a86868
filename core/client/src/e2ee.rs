//! This device's part in an end-to-end encrypted room (docs/protocol.md §15).
//!
//! A [`KeyAgent`] runs beside a room session. It asks to be added to the room's MLS group
//! (a key package to the moderators), joins from the welcome, follows every commit the server
//! relays, and hands each epoch's media key to the audio engine ([`KeyAgent::attach`]).
//!
//! On a moderator's device it also commits:
//! - it creates the group when the room is new (the first commit claims epoch 1; a second
//!   moderator that raced it asks to be added instead);
//! - it adds the devices that ask (batched for 300 ms);
//! - it removes members the server says departed: at once when a moderator removed them,
//!   batched for listeners who left (64 or 30 s, [`RekeyPolicy`]);
//! - it rekeys when the stage changes.
//!
//! One moderator commits: the first on stage whose device is in the group. The others step in
//! when a due commit has waited [`FALLBACK_COMMITTER_DELAY`]. The server takes one commit
//! per epoch; a commit that lost the race is discarded and the winner processed.
//!
//! The server only orders and relays: the keys live here and in the audio engine.

use crate::media::E2eeKeySink;
use crate::session::{ConnectionState, SessionState};
use crate::{ApiClient, RoomSession};
use base64::Engine as _;
use ruang_e2ee::{Change, Device, EpochKey, Processed, RekeyPolicy, RoomGroup};
use ruang_proto::{ErrorCode, MlsCommitRequest, MlsState, Role, UserId};
use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a due commit waits for the designated committer before another moderator's
/// device makes it (the designated one may be gone or stuck).
pub const FALLBACK_COMMITTER_DELAY: Duration = Duration::from_secs(3);
/// After a failed request, the next attempt waits this long.
const RETRY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum E2eePhase {
    /// Starting, or the room is not known yet.
    Starting,
    /// The room is not encrypted: the agent has stopped.
    NotEncrypted,
    /// Asked to be added; waiting for a moderator's device to add this one.
    Waiting,
    /// In the group: media is keyed.
    Member,
    /// Taken out of the group: keeps no key for what follows.
    Removed,
    /// The room session ended.
    Ended,
}

/// What an app shows about encryption (current value first, then updates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct E2eeStatus {
    pub phase: E2eePhase,
    /// The group epoch this device is at.
    pub epoch: Option<u64>,
    /// Twelve digits members compare out of band: the same epoch gives the same code on every
    /// member's device.
    pub safety_code: Option<String>,
    /// Devices in the group.
    pub members: u32,
    /// This device's identity fingerprint.
    pub fingerprint: String,
    /// Commits of this device the server took.
    pub commits: u64,
    /// The last problem met (a welcome that did not open, a commit that did not apply).
    pub last_error: Option<String>,
}

#[derive(Default)]
struct Keys {
    current: Option<EpochKey>,
    sinks: Vec<E2eeKeySink>,
}

/// The running agent; dropping it stops it.
pub struct KeyAgent {
    status: watch::Receiver<E2eeStatus>,
    keys: Arc<Mutex<Keys>>,
    guest: Arc<GuestKey>,
    task: tokio::task::JoinHandle<()>,
}

/// The room's guest key, once a moderator asked for a guest link on this device.
#[derive(Default)]
struct GuestKey {
    key: Mutex<Option<[u8; ruang_e2ee::GUEST_KEY_LEN]>>,
    wake: tokio::sync::Notify,
}

impl KeyAgent {
    /// Starts the agent for `session`'s room with this device's identity. In a plain room it
    /// stops at once ([`E2eePhase::NotEncrypted`]).
    pub fn start(session: &RoomSession, api: ApiClient, device: Device) -> KeyAgent {
        let (tx, rx) = watch::channel(E2eeStatus {
            phase: E2eePhase::Starting,
            epoch: None,
            safety_code: None,
            members: 0,
            fingerprint: device.fingerprint(),
            commits: 0,
            last_error: None,
        });
        let keys = Arc::new(Mutex::new(Keys::default()));
        let guest = Arc::new(GuestKey::default());
        let room = session
            .state()
            .room
            .room
            .as_ref()
            .map(|r| r.id.as_str().to_owned())
            .unwrap_or_default();
        let agent = Agent {
            session: session.clone(),
            api,
            me: session.me().clone(),
            room,
            device,
            group: None,
            policy: RekeyPolicy::default(),
            noted: HashSet::new(),
            consumed: HashSet::new(),
            stage: None,
            due_since: None,
            key_package_sent: false,
            welcome_tried: None,
            create_tried: false,
            retry_at: None,
            started: Instant::now(),
            status: tx,
            keys: keys.clone(),
            guest: guest.clone(),
            guest_published: None,
        };
        KeyAgent {
            status: rx,
            keys,
            guest,
            task: tokio::spawn(agent.run()),
        }
    }

    pub fn status(&self) -> E2eeStatus {
        self.status.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<E2eeStatus> {
        self.status.clone()
    }

    /// Waits until `pred` holds for the status, or `timeout` passes (then the last status).
    pub async fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&E2eeStatus) -> bool,
    ) -> Result<E2eeStatus, E2eeStatus> {
        let mut rx = self.status.clone();
        let found = match tokio::time::timeout(timeout, rx.wait_for(|s| pred(s))).await {
            Ok(Ok(s)) => Some(s.clone()),
            _ => None,
        };
        found.ok_or_else(|| self.status())
    }

    /// Feeds a media session's engine: the current epoch key now, every new one after.
    pub fn attach(&self, sink: E2eeKeySink) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(key) = keys.current {
            sink.install(key);
        }
        keys.sinks.push(sink);
    }

    /// A moderator's device: the link browser guests open to hear the room, `room_link`
    /// (the room's `link`, with its `?t=` token for a closed room) with the guest key in its
    /// fragment, which browsers never send to a server. From now on this device seals every
    /// epoch's key with it for the guests (§15.6). Anyone holding the link can listen.
    pub fn guest_link(&self, room_link: &str) -> String {
        use base64::Engine as _;
        let mut key = self.guest.key.lock().unwrap_or_else(|e| e.into_inner());
        let k = *key.get_or_insert_with(ruang_e2ee::new_guest_key);
        drop(key);
        self.guest.wake.notify_one();
        let fragment = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(k);
        let base = room_link.split('#').next().unwrap_or(room_link);
        format!("{base}#k={fragment}")
    }

    /// The current epoch's media key (tests and benchmarks check what it opens).
    pub fn epoch_key(&self) -> Option<EpochKey> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).current
    }
}

impl Drop for KeyAgent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("base64 from the server: {e}"))
}

struct Agent {
    session: RoomSession,
    api: ApiClient,
    me: UserId,
    room: String,
    device: Device,
    group: Option<RoomGroup>,
    /// When to commit (times in ms since `started`).
    policy: RekeyPolicy,
    /// Users whose waiting key package or departure the policy has been told of.
    noted: HashSet<(UserId, u8)>,
    /// Key packages this device's commits took: the room's list may still show them until
    /// the server's `mls_commit` event arrives (the commit's answer comes first).
    consumed: HashSet<String>,
    /// The stage as last seen (a change rekeys).
    stage: Option<BTreeSet<UserId>>,
    due_since: Option<Instant>,
    /// A key package went out on this connection.
    key_package_sent: bool,
    /// The count of welcome notices (`RoomState::mls_welcomes`) last acted on.
    welcome_tried: Option<u64>,
    create_tried: bool,
    retry_at: Option<Instant>,
    started: Instant,
    status: watch::Sender<E2eeStatus>,
    keys: Arc<Mutex<Keys>>,
    guest: Arc<GuestKey>,
    /// The epoch whose guest envelope went out last.
    guest_published: Option<u64>,
}

impl Agent {
    async fn run(mut self) {
        let mut rx = self.session.subscribe();
        loop {
            let st = rx.borrow_and_update().clone();
            if let ConnectionState::Ended { .. } = st.connection {
                self.status.send_modify(|s| s.phase = E2eePhase::Ended);
                break;
            }
            match st.room.room.as_ref().map(|r| r.e2ee.clone()) {
                None => {}
                Some(None) => {
                    self.status
                        .send_modify(|s| s.phase = E2eePhase::NotEncrypted);
                    break;
                }
                Some(Some(mls)) => {
                    if st.connection != ConnectionState::Connected {
                        // The server may have dropped what waited for this connection.
                        self.key_package_sent = false;
                    } else if self.retry_at.is_none_or(|t| Instant::now() >= t) {
                        self.retry_at = None;
                        if let Err(e) = self.step(&st, &mls).await {
                            tracing::debug!(error = %e, "e2ee step failed; trying again");
                            self.status.send_modify(|s| s.last_error = Some(e));
                            self.retry_at = Some(Instant::now() + RETRY);
                        }
                        self.publish();
                    }
                }
            }
            let wake = self.next_wake();
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { break },
                _ = tokio::time::sleep_until(wake.into()) => {}
                _ = self.guest.wake.notified() => {}
            }
        }
    }

    fn now_ms(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    fn next_wake(&self) -> Instant {
        let mut wake = Instant::now() + Duration::from_secs(3600);
        if let Some(t) = self.retry_at {
            wake = wake.min(t);
        }
        if self.group.is_some() {
            if let Some(d) = self.policy.next_deadline() {
                let at = self.started + Duration::from_millis(d.max(0) as u64);
                wake = wake.min(at);
            }
            if let Some(since) = self.due_since {
                wake = wake.min(since + FALLBACK_COMMITTER_DELAY);
            }
        }
        wake
    }

    async fn step(&mut self, st: &SessionState, mls: &MlsState) -> Result<(), String> {
        let moderator = st.room.my_role() == Some(Role::Moderator);
        if let Some(epoch) = self.group.as_ref().map(RoomGroup::epoch) {
            if mls.epoch < epoch {
                // Either the room's state has not yet caught up with this device's own commit
                // (its answer comes before the event), or the relay started over (it lives in
                // the room's memory: a restart or failover begins again at epoch 0). The
                // server says which.
                match self.api.mls_commit_at(&self.room, epoch).await {
                    Ok(_) => return Ok(()),
                    Err(e) if e.code() == Some(ErrorCode::NotFound) => {
                        self.leave_group(
                            E2eePhase::Waiting,
                            "the server's relay started over".into(),
                        );
                        self.create_tried = false;
                        self.guest_published = None;
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
        if self.group.is_none() {
            self.get_in(st, mls, moderator).await?;
        }
        if self.group.is_some() {
            self.catch_up(mls.epoch).await?;
        }
        if self.group.is_some() && moderator {
            self.commit_if_due(st, mls).await?;
            self.seal_for_guests().await?;
        }
        Ok(())
    }

    /// A guest link was made on this device: each epoch's key goes out sealed with it.
    async fn seal_for_guests(&mut self) -> Result<(), String> {
        let guest_key = *self.guest.key.lock().unwrap_or_else(|e| e.into_inner());
        let (Some(guest_key), Some(group)) = (guest_key, self.group.as_ref()) else {
            return Ok(());
        };
        let epoch = group.epoch();
        if self.guest_published == Some(epoch) {
            return Ok(());
        }
        let key = group.epoch_key(&self.device).map_err(|e| e.to_string())?;
        let envelope =
            ruang_e2ee::seal_for_guests(&key, &guest_key, &self.room).map_err(|e| e.to_string())?;
        self.session
            .send_guest_key(epoch, b64(&envelope))
            .await
            .map_err(|e| e.to_string())?;
        self.guest_published = Some(epoch);
        Ok(())
    }

    /// Not in the group: create it (a moderator in a new room), join from a welcome, or ask.
    async fn get_in(
        &mut self,
        st: &SessionState,
        mls: &MlsState,
        moderator: bool,
    ) -> Result<(), String> {
        if mls.epoch == 0 && moderator && !self.create_tried {
            self.create_tried = true;
            let mut group =
                RoomGroup::create(&self.device, &self.room).map_err(|e| e.to_string())?;
            let (adds, added) = self.acceptable_adds(mls);
            let hs = group
                .commit(&self.device, &adds, &[])
                .map_err(|e| e.to_string())?;
            let req = MlsCommitRequest {
                epoch: 0,
                commit: b64(&hs.commit),
                welcome: hs.welcome.as_deref().map(b64),
                added,
                removed: vec![],
            };
            match self.api.mls_commit(&self.room, &req).await {
                Ok(_) => {
                    group.confirm(&self.device).map_err(|e| e.to_string())?;
                    self.consumed.extend(
                        mls.pending
                            .iter()
                            .filter(|kp| req.added.contains(&kp.user))
                            .map(|kp| kp.key_package.clone()),
                    );
                    self.group = Some(group);
                    self.committed();
                    return Ok(());
                }
                // Another moderator's device made the group first: ask it to add this one.
                Err(e) if e.code() == Some(ErrorCode::StaleEpoch) => {}
                Err(e) => {
                    self.create_tried = false;
                    return Err(e.to_string());
                }
            }
        }
        if st.room.mls_welcomes > 0 && self.welcome_tried != Some(st.room.mls_welcomes) {
            let seen = st.room.mls_welcomes;
            let welcome = match self.api.mls_welcome(&self.room).await {
                Ok(w) => Some(w),
                // An old notice (the relay started over since): nothing to fetch.
                Err(e) if e.code() == Some(ErrorCode::NotFound) => None,
                Err(e) => return Err(e.to_string()),
            };
            self.welcome_tried = Some(seen);
            if let Some(welcome) = welcome {
                match RoomGroup::join(&self.device, &unb64(&welcome.welcome)?) {
                    Ok(group) => {
                        self.group = Some(group);
                        return Ok(());
                    }
                    Err(e) => {
                        // A welcome for an older key package (this device restarted): ask again.
                        self.status
                            .send_modify(|s| s.last_error = Some(format!("welcome: {e}")));
                        self.key_package_sent = false;
                    }
                }
            }
        }
        if !self.key_package_sent {
            let kp = self.device.key_package().map_err(|e| e.to_string())?;
            self.session
                .send_key_package(b64(&kp))
                .await
                .map_err(|e| e.to_string())?;
            self.key_package_sent = true;
            self.status.send_modify(|s| s.phase = E2eePhase::Waiting);
        }
        Ok(())
    }

    /// Follows the commits the server took, up to `target`.
    async fn catch_up(&mut self, target: u64) -> Result<(), String> {
        while let Some(group) = self.group.as_mut() {
            let next = group.epoch() + 1;
            if next > target {
                break;
            }
            let commit = match self.api.mls_commit_at(&self.room, next).await {
                Ok(c) => c,
                Err(e) if e.code() == Some(ErrorCode::NotFound) => {
                    // Too far behind (the server keeps the last 64): be added again.
                    self.leave_group(E2eePhase::Waiting, "too far behind the group".into());
                    return Ok(());
                }
                Err(e) => return Err(e.to_string()),
            };
            match group.process(&self.device, &unb64(&commit.commit)?) {
                Ok(Processed::Epoch(_)) => {}
                Ok(Processed::Removed) => {
                    self.leave_group(E2eePhase::Removed, "removed from the group".into());
                    return Ok(());
                }
                Err(e) => {
                    self.leave_group(E2eePhase::Waiting, format!("commit {next}: {e}"));
                    return Ok(());
                }
            }
            // Someone else's commit carried what was waiting.
            self.reset_policy();
        }
        Ok(())
    }

    fn leave_group(&mut self, phase: E2eePhase, why: String) {
        if let Some(group) = self.group.take() {
            if let Err(e) = group.forget(&self.device) {
                tracing::debug!(error = %e, "forgetting the old group");
            }
        }
        self.key_package_sent = false;
        self.status.send_modify(|s| {
            s.phase = phase;
            s.last_error = Some(why);
        });
    }

    /// The waiting key packages a commit can take: (user, bytes) and the users, leaving out
    /// this device's own and any that would not validate.
    fn acceptable_adds(&self, mls: &MlsState) -> (Vec<(String, Vec<u8>)>, Vec<UserId>) {
        let mut adds = Vec::new();
        let mut users = Vec::new();
        for kp in &mls.pending {
            if kp.user == self.me || self.consumed.contains(&kp.key_package) {
                continue;
            }
            let Ok(bytes) = unb64(&kp.key_package) else {
                continue;
            };
            match self.device.check_key_package(&bytes, kp.user.as_str()) {
                Ok(()) => {
                    adds.push((kp.user.as_str().to_owned(), bytes));
                    users.push(kp.user.clone());
                }
                Err(e) => tracing::debug!(user = %kp.user, error = %e, "key package left out"),
            }
        }
        (adds, users)
    }

    fn reset_policy(&mut self) {
        self.policy = RekeyPolicy::default();
        self.noted.clear();
        self.due_since = None;
    }

    fn committed(&mut self) {
        self.reset_policy();
        self.status.send_modify(|s| s.commits += 1);
    }

    /// A moderator's device: commits what is due (joins, departures, a stage change).
    async fn commit_if_due(&mut self, st: &SessionState, mls: &MlsState) -> Result<(), String> {
        let Some(room) = st.room.room.as_ref() else {
            return Ok(());
        };
        let now = self.now_ms();
        self.consumed
            .retain(|c| mls.pending.iter().any(|kp| kp.key_package == *c));
        let Some(group) = self.group.as_ref() else {
            return Ok(());
        };
        let in_group: HashSet<String> = group.members().into_iter().map(|m| m.user).collect();
        for kp in &mls.pending {
            if kp.user != self.me
                && !self.consumed.contains(&kp.key_package)
                && self.noted.insert((kp.user.clone(), 0))
            {
                self.policy
                    .note(Change::Joined(kp.user.as_str().to_owned()), now);
            }
        }
        // The group no longer holds someone already removed (the room's list may lag).
        let departed: Vec<&ruang_proto::MlsDeparture> = mls
            .departed
            .iter()
            .filter(|d| d.user != self.me && in_group.contains(d.user.as_str()))
            .collect();
        for d in &departed {
            if self.noted.insert((d.user.clone(), 1 + u8::from(d.removed))) {
                let user = d.user.as_str().to_owned();
                let change = if d.removed {
                    Change::Removed(user)
                } else {
                    Change::Left(user)
                };
                self.policy.note(change, now);
            }
        }
        let stage: BTreeSet<UserId> = room.stage.iter().map(|p| p.user.id.clone()).collect();
        if self.stage.as_ref().is_some_and(|s| *s != stage) {
            self.policy.note(Change::StageChanged, now);
        }
        self.stage = Some(stage);
        if !self.policy.due(now) {
            self.due_since = None;
            return Ok(());
        }
        let since = *self.due_since.get_or_insert_with(Instant::now);
        let designated = room
            .stage
            .iter()
            .find(|p| p.role == Role::Moderator && in_group.contains(p.user.id.as_str()))
            .is_none_or(|p| p.user.id == self.me);
        if !designated && since.elapsed() < FALLBACK_COMMITTER_DELAY {
            return Ok(());
        }

        let (adds, added) = self.acceptable_adds(mls);
        let mut removes: Vec<String> = departed
            .iter()
            .map(|d| d.user.as_str().to_owned())
            .collect();
        // A member asking again (its device lost the group): its old leaf goes in the same
        // commit that adds the new one.
        for (user, _) in &adds {
            if in_group.contains(user) {
                removes.push(user.clone());
            }
        }
        let removed: Vec<UserId> = departed.iter().map(|d| d.user.clone()).collect();
        let taken: Vec<String> = mls
            .pending
            .iter()
            .filter(|kp| added.contains(&kp.user))
            .map(|kp| kp.key_package.clone())
            .collect();
        let Some(group) = self.group.as_mut() else {
            return Ok(());
        };
        let epoch = group.epoch();
        let hs = group
            .commit(&self.device, &adds, &removes)
            .map_err(|e| e.to_string())?;
        let req = MlsCommitRequest {
            epoch,
            commit: b64(&hs.commit),
            welcome: hs.welcome.as_deref().map(b64),
            added,
            removed,
        };
        match self.api.mls_commit(&self.room, &req).await {
            Ok(_) => {
                group.confirm(&self.device).map_err(|e| e.to_string())?;
                self.consumed.extend(taken);
                self.committed();
                Ok(())
            }
            Err(e) => {
                // Lost the race (the winner is processed next), or not sent: either way this
                // commit is forgotten. A commit the server did take although the answer was
                // lost cannot be processed by its own author: catch_up then asks to be added
                // again.
                group.discard(&self.device).map_err(|e| e.to_string())?;
                if e.code() == Some(ErrorCode::StaleEpoch) {
                    Ok(())
                } else {
                    Err(e.to_string())
                }
            }
        }
    }

    /// Shows the group's state, and hands a new epoch's key to the media engines.
    fn publish(&mut self) {
        let Some(group) = self.group.as_ref() else {
            return;
        };
        let epoch = group.epoch();
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.current.is_none_or(|k| k.epoch != epoch) {
            match group.epoch_key(&self.device) {
                Ok(key) => {
                    keys.current = Some(key);
                    // Media sessions that ended (a restart makes a new one) are let go.
                    keys.sinks.retain(E2eeKeySink::is_live);
                    for sink in &keys.sinks {
                        if !sink.install(key) {
                            tracing::warn!(epoch, "the media engine has not taken earlier keys");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "no media key for the epoch"),
            }
        }
        drop(keys);
        let code = group.safety_code();
        let members = u32::try_from(group.members().len()).unwrap_or(u32::MAX);
        self.status.send_if_modified(|s| {
            let changed = s.phase != E2eePhase::Member
                || s.epoch != Some(epoch)
                || s.members != members
                || s.safety_code.as_deref() != Some(code.as_str());
            s.phase = E2eePhase::Member;
            s.epoch = Some(epoch);
            s.members = members;
            s.safety_code = Some(code.clone());
            changed
        });
    }
}
