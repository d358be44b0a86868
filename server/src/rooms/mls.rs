//! The MLS relay of an end-to-end encrypted room (pure: no I/O, tested directly).
//!
//! The server cannot read MLS messages and does not try to. It keeps the **order**: commits
//! are taken one per epoch, the first that names the current epoch, so every device merges
//! the same sequence (RFC 9420 §14 leaves this to the "Delivery Service"). It routes: key
//! packages go to the moderators (whose devices commit), commits to everyone, welcomes to the
//! devices a commit added. What it keeps is what devices fetch: the last [`KEEP_COMMITS`]
//! commits, the latest welcome per member and the waiting key packages. None of it is
//! written to storage, and none of it lets the server derive a key (key packages hold
//! public keys; commits and welcomes are encrypted to the members).

use ruang_proto::{
    ErrorCode, MlsCommit, MlsCommitRequest, MlsDeparture, MlsGuestKey, MlsKeyPackage, MlsState,
    UserId,
};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

/// Commits kept for devices catching up (a reconnect after missing a few). A device further
/// behind asks to be added again (a new key package).
pub const KEEP_COMMITS: usize = 64;
/// Base64 sizes accepted. A key package is about 300 bytes; a commit or welcome of a
/// 2,000-member room about 160 KB and 340 KB (docs/benchmarks.md, "Encrypted rooms").
pub const MAX_KEY_PACKAGE: usize = 8 * 1024;
pub const MAX_HANDSHAKE: usize = 2 * 1024 * 1024;
/// Members a single commit may name as added or removed.
pub const MAX_NAMED: usize = 4096;
/// A guest envelope (base64 of 12 + 16 + 16 bytes, with room to spare).
pub const MAX_GUEST_ENVELOPE: usize = 128;
/// Guest envelopes kept: the current epoch's and the one before (frames in flight).
pub const KEEP_GUEST_KEYS: usize = 2;

#[derive(Debug, Default, Clone)]
pub struct MlsRelay {
    epoch: u64,
    /// Latest key package of each member waiting to be added, in arrival order.
    pending: indexmap::IndexMap<UserId, String>,
    commits: VecDeque<Arc<MlsCommit>>,
    welcomes: HashMap<UserId, (u64, Arc<str>)>,
    /// Who the group holds, as the commits name them (the committer, the added, minus the
    /// removed): the server cannot read the group, so it keeps what committers say.
    members: HashSet<UserId>,
    /// Members who left the room and are still in the group (value: removed by a
    /// moderator), in order; the committer removes them.
    departed: indexmap::IndexMap<UserId, bool>,
    guest_keys: VecDeque<MlsGuestKey>,
}

fn base64_ok(s: &str, max: usize) -> bool {
    use base64::Engine as _;
    !s.is_empty()
        && s.len() <= max
        && base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .is_ok()
}

impl MlsRelay {
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// A member's device asks to be added: kept (replacing its earlier one) until a commit
    /// adds the member or the member leaves.
    pub fn key_package(&mut self, user: &UserId, key_package: &str) -> Result<(), ErrorCode> {
        if !base64_ok(key_package, MAX_KEY_PACKAGE) {
            return Err(ErrorCode::InvalidField);
        }
        self.pending.insert(user.clone(), key_package.to_owned());
        Ok(())
    }

    /// Takes `req` if it was built on the current epoch: the epoch advances, the members it
    /// adds stop waiting and get its welcome. Returns the commit as relayed.
    pub fn commit(
        &mut self,
        by: &UserId,
        req: &MlsCommitRequest,
    ) -> Result<Arc<MlsCommit>, ErrorCode> {
        if !base64_ok(&req.commit, MAX_HANDSHAKE)
            || req
                .welcome
                .as_deref()
                .is_some_and(|w| !base64_ok(w, MAX_HANDSHAKE))
            || req.added.len() + req.removed.len() > MAX_NAMED
            || (req.welcome.is_some() && req.added.is_empty())
        {
            return Err(ErrorCode::InvalidField);
        }
        if req.epoch != self.epoch {
            return Err(ErrorCode::StaleEpoch);
        }
        self.epoch += 1;
        let commit = Arc::new(MlsCommit {
            epoch: self.epoch,
            by: by.clone(),
            commit: req.commit.clone(),
            added: req.added.clone(),
            removed: req.removed.clone(),
        });
        self.commits.push_back(commit.clone());
        if self.commits.len() > KEEP_COMMITS {
            self.commits.pop_front();
        }
        self.members.insert(by.clone());
        for user in &req.added {
            self.pending.shift_remove(user);
            self.members.insert(user.clone());
            self.departed.shift_remove(user);
        }
        if let Some(welcome) = &req.welcome {
            let welcome: Arc<str> = welcome.as_str().into();
            for user in &req.added {
                self.welcomes
                    .insert(user.clone(), (self.epoch, welcome.clone()));
            }
        }
        for user in &req.removed {
            self.welcomes.remove(user);
            self.members.remove(user);
            self.departed.shift_remove(user);
        }
        Ok(commit)
    }

    /// A moderator's device sealed `epoch`'s key for guests: kept (replacing an envelope of
    /// the same epoch) if the epoch is the current one or the one before.
    pub fn guest_key(&mut self, epoch: u64, envelope: &str) -> Result<MlsGuestKey, ErrorCode> {
        if !base64_ok(envelope, MAX_GUEST_ENVELOPE) {
            return Err(ErrorCode::InvalidField);
        }
        if epoch == 0 || epoch > self.epoch || epoch + 1 < self.epoch {
            return Err(ErrorCode::StaleEpoch);
        }
        let key = MlsGuestKey {
            epoch,
            envelope: envelope.to_owned(),
        };
        self.guest_keys.retain(|k| k.epoch != epoch);
        self.guest_keys.push_back(key.clone());
        self.guest_keys.make_contiguous().sort_by_key(|k| k.epoch);
        while self.guest_keys.len() > KEEP_GUEST_KEYS {
            self.guest_keys.pop_front();
        }
        Ok(key)
    }

    /// The commit that started `epoch`, while it is kept.
    pub fn commit_at(&self, epoch: u64) -> Option<Arc<MlsCommit>> {
        let oldest = self.commits.front()?.epoch;
        let i = usize::try_from(epoch.checked_sub(oldest)?).ok()?;
        self.commits.get(i).cloned()
    }

    /// The latest welcome for `user`'s device.
    pub fn welcome_for(&self, user: &UserId) -> Option<(u64, Arc<str>)> {
        self.welcomes.get(user).cloned()
    }

    /// `user` left the room (`removed`: by a moderator): nothing of theirs waits any more.
    /// True when they are in the group, now departed (the moderators are told).
    pub fn left(&mut self, user: &UserId, removed: bool) -> bool {
        self.pending.shift_remove(user);
        self.welcomes.remove(user);
        if !self.members.contains(user) {
            return false;
        }
        let was = self.departed.insert(user.clone(), removed);
        was != Some(removed)
    }

    /// `user` is back in the room. True when they had departed and no commit removed them
    /// yet (the moderators are told; the device may still hold the group).
    pub fn returned(&mut self, user: &UserId) -> bool {
        self.departed
            .shift_remove(user)
            .is_some_and(|removed| !removed)
    }

    /// The state a snapshot shows: waiting key packages to moderators only.
    pub fn view(&self, moderator: bool) -> MlsState {
        MlsState {
            epoch: self.epoch,
            pending: if moderator {
                self.pending
                    .iter()
                    .map(|(user, kp)| MlsKeyPackage {
                        user: user.clone(),
                        key_package: kp.clone(),
                    })
                    .collect()
            } else {
                Vec::new()
            },
            guest_keys: self.guest_keys.iter().cloned().collect(),
            departed: if moderator {
                self.departed
                    .iter()
                    .map(|(user, removed)| MlsDeparture {
                        user: user.clone(),
                        removed: *removed,
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> UserId {
        UserId::from(s)
    }

    fn commit(epoch: u64, added: &[&str]) -> MlsCommitRequest {
        MlsCommitRequest {
            epoch,
            commit: "Y29tbWl0".into(),
            welcome: (!added.is_empty()).then(|| "d2VsY29tZQ==".into()),
            added: added.iter().map(|a| u(a)).collect(),
            removed: vec![],
        }
    }

    #[test]
    fn one_commit_per_epoch_in_order() {
        let mut r = MlsRelay::default();
        let first = r.commit(&u("mod1"), &commit(0, &[])).unwrap();
        assert_eq!(first.epoch, 1);
        // A second moderator built on epoch 0 too: refused, it must process the winner.
        assert_eq!(
            r.commit(&u("mod2"), &commit(0, &[])),
            Err(ErrorCode::StaleEpoch)
        );
        // Nor may anyone skip ahead.
        assert_eq!(
            r.commit(&u("mod2"), &commit(5, &[])),
            Err(ErrorCode::StaleEpoch)
        );
        assert_eq!(r.commit(&u("mod2"), &commit(1, &[])).unwrap().epoch, 2);
        assert_eq!(r.epoch(), 2);
        assert_eq!(r.commit_at(1).unwrap().by, u("mod1"));
        assert_eq!(r.commit_at(2).unwrap().by, u("mod2"));
        assert!(r.commit_at(0).is_none() && r.commit_at(3).is_none());
    }

    #[test]
    fn key_packages_wait_until_added_and_welcomes_reach_the_added() {
        let mut r = MlsRelay::default();
        r.key_package(&u("budi"), "a2V5MQ==").unwrap();
        r.key_package(&u("citra"), "a2V5Mg==").unwrap();
        r.key_package(&u("budi"), "a2V5Mw==").unwrap(); // a newer one replaces it
        let pending = r.view(true).pending;
        assert_eq!(pending.len(), 2);
        assert_eq!(pending[0].key_package, "a2V5Mw==");
        assert!(r.view(false).pending.is_empty(), "only moderators see them");

        r.commit(&u("mod"), &commit(0, &["budi"])).unwrap();
        assert_eq!(r.view(true).pending.len(), 1, "budi is in; citra waits");
        assert_eq!(r.welcome_for(&u("budi")).unwrap().0, 1);
        assert!(r.welcome_for(&u("citra")).is_none());
        assert!(
            !r.left(&u("citra"), false),
            "not in the group: nothing to remove"
        );
        assert!(r.view(true).pending.is_empty());
    }

    #[test]
    fn members_who_leave_are_departed_until_a_commit_removes_them() {
        let mut r = MlsRelay::default();
        r.commit(&u("mod"), &commit(0, &["budi", "citra", "dewi"]))
            .unwrap();
        assert!(r.left(&u("budi"), false));
        assert!(r.left(&u("citra"), true));
        assert!(!r.left(&u("stranger"), false));
        assert!(!r.left(&u("citra"), true), "told once");
        let view = r.view(true);
        assert_eq!(
            view.departed,
            vec![
                MlsDeparture {
                    user: u("budi"),
                    removed: false
                },
                MlsDeparture {
                    user: u("citra"),
                    removed: true
                }
            ]
        );
        assert!(r.view(false).departed.is_empty(), "only moderators see it");
        // Budi is back before any commit: nothing to remove. Citra was removed: stays.
        assert!(r.returned(&u("budi")));
        assert!(!r.returned(&u("dewi")), "never left");
        let mut removal = commit(1, &[]);
        removal.removed = vec![u("citra")];
        r.commit(&u("mod"), &removal).unwrap();
        assert!(r.view(true).departed.is_empty());
        assert!(!r.left(&u("citra"), false), "no longer in the group");
        // The committer is a member too.
        assert!(r.left(&u("mod"), false));
    }

    #[test]
    fn malformed_handshakes_are_refused_and_change_nothing() {
        let mut r = MlsRelay::default();
        assert_eq!(
            r.key_package(&u("a"), "not base64!"),
            Err(ErrorCode::InvalidField)
        );
        assert_eq!(r.key_package(&u("a"), ""), Err(ErrorCode::InvalidField));
        let big = "A".repeat(MAX_KEY_PACKAGE + 4);
        assert_eq!(r.key_package(&u("a"), &big), Err(ErrorCode::InvalidField));
        let mut bad = commit(0, &[]);
        bad.commit = "%%%".into();
        assert_eq!(r.commit(&u("m"), &bad), Err(ErrorCode::InvalidField));
        let mut orphan_welcome = commit(0, &[]);
        orphan_welcome.welcome = Some("d2VsY29tZQ==".into());
        assert_eq!(
            r.commit(&u("m"), &orphan_welcome),
            Err(ErrorCode::InvalidField)
        );
        assert_eq!(r.epoch(), 0);
        assert!(r.view(true).pending.is_empty());
    }

    #[test]
    fn guest_envelopes_of_the_last_two_epochs_are_kept_for_everyone() {
        let mut r = MlsRelay::default();
        assert_eq!(
            r.guest_key(1, "ZW52"),
            Err(ErrorCode::StaleEpoch),
            "no epoch yet"
        );
        for e in 0..3 {
            r.commit(&u("m"), &commit(e, &[])).unwrap();
        }
        assert_eq!(r.guest_key(3, "not base64!"), Err(ErrorCode::InvalidField));
        assert_eq!(
            r.guest_key(3, &"A".repeat(MAX_GUEST_ENVELOPE + 4)),
            Err(ErrorCode::InvalidField)
        );
        assert_eq!(
            r.guest_key(4, "ZW52"),
            Err(ErrorCode::StaleEpoch),
            "not yet"
        );
        assert_eq!(
            r.guest_key(1, "ZW52"),
            Err(ErrorCode::StaleEpoch),
            "too old"
        );
        r.guest_key(3, "ZW52").unwrap();
        r.guest_key(2, "ZW52").unwrap();
        r.guest_key(3, "bmV3").unwrap();
        let kept = r.view(false).guest_keys;
        assert_eq!(
            kept.iter()
                .map(|k| (k.epoch, k.envelope.as_str()))
                .collect::<Vec<_>>(),
            [(2, "ZW52"), (3, "bmV3")]
        );
        r.commit(&u("m"), &commit(3, &[])).unwrap();
        r.guest_key(4, "ZW52").unwrap();
        assert_eq!(r.view(true).guest_keys.len(), KEEP_GUEST_KEYS);
        assert_eq!(r.view(true).guest_keys[0].epoch, 3);
    }

    #[test]
    fn only_the_last_commits_are_kept() {
        let mut r = MlsRelay::default();
        for e in 0..(KEEP_COMMITS as u64 + 10) {
            r.commit(&u("m"), &commit(e, &[])).unwrap();
        }
        assert!(r.commit_at(10).is_none());
        assert_eq!(r.commit_at(11).unwrap().epoch, 11);
        assert_eq!(r.commit_at(r.epoch()).unwrap().epoch, r.epoch());
    }
}
