//! When the room's committer rekeys: at once for what must not wait (a removal, a change on
//! stage), in batches for audience churn, so a room of 2,000 listeners does not start a new
//! epoch on every leave. Pure: times are passed in (milliseconds).

use std::collections::BTreeSet;

/// Something that changes who should hold the room's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A member's device joined the room (its key package is waiting to be added).
    Joined(String),
    /// A listener left: they should stop being able to decrypt, but a short delay is
    /// acceptable (the server no longer forwards to them either).
    Left(String),
    /// A moderator removed someone: rekey now.
    Removed(String),
    /// Someone came on or left the stage: rekey now (new epoch, fresh keys for the speakers).
    StageChanged,
}

#[derive(Debug, Clone)]
pub struct RekeyPolicy {
    /// Joins wait at most this long, so a burst of joiners shares one commit.
    pub join_window_ms: i64,
    /// Leaves wait at most this long…
    pub leave_window_ms: i64,
    /// …or until this many are pending.
    pub leave_batch: usize,
    adds: BTreeSet<String>,
    removes: BTreeSet<String>,
    urgent: bool,
    oldest_join: Option<i64>,
    oldest_leave: Option<i64>,
}

impl Default for RekeyPolicy {
    fn default() -> Self {
        RekeyPolicy::new(300, 30_000, 64)
    }
}

impl RekeyPolicy {
    pub fn new(join_window_ms: i64, leave_window_ms: i64, leave_batch: usize) -> Self {
        RekeyPolicy {
            join_window_ms,
            leave_window_ms,
            leave_batch,
            adds: BTreeSet::new(),
            removes: BTreeSet::new(),
            urgent: false,
            oldest_join: None,
            oldest_leave: None,
        }
    }

    pub fn note(&mut self, change: Change, now: i64) {
        match change {
            Change::Joined(user) => {
                // Back before their leave was committed: nothing to do for either.
                if !self.removes.remove(&user) {
                    self.adds.insert(user);
                    self.oldest_join.get_or_insert(now);
                }
            }
            Change::Left(user) => {
                if !self.adds.remove(&user) {
                    self.removes.insert(user);
                    self.oldest_leave.get_or_insert(now);
                }
            }
            Change::Removed(user) => {
                self.adds.remove(&user);
                self.removes.insert(user);
                self.urgent = true;
            }
            Change::StageChanged => self.urgent = true,
        }
        if self.adds.is_empty() {
            self.oldest_join = None;
        }
        if self.removes.is_empty() {
            self.oldest_leave = None;
        }
    }

    /// When [`due`](Self::due) turns true without further changes (for the caller's timer).
    pub fn next_deadline(&self) -> Option<i64> {
        if self.urgent {
            return Some(i64::MIN);
        }
        let join = self.oldest_join.map(|t| t + self.join_window_ms);
        let leave = self.oldest_leave.map(|t| t + self.leave_window_ms);
        match (join, leave) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn due(&self, now: i64) -> bool {
        self.urgent
            || self.removes.len() >= self.leave_batch
            || self.next_deadline().is_some_and(|d| now >= d)
    }

    /// Everything pending goes into one commit: `(adds, removes)`.
    pub fn take(&mut self) -> (Vec<String>, Vec<String>) {
        self.urgent = false;
        self.oldest_join = None;
        self.oldest_leave = None;
        (
            std::mem::take(&mut self.adds).into_iter().collect(),
            std::mem::take(&mut self.removes).into_iter().collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> String {
        s.to_string()
    }

    #[test]
    fn joins_are_batched_within_the_join_window() {
        let mut p = RekeyPolicy::new(300, 30_000, 64);
        p.note(Change::Joined(u("a")), 1_000);
        p.note(Change::Joined(u("b")), 1_200);
        assert!(!p.due(1_299));
        assert!(p.due(1_300));
        assert_eq!(p.take(), (vec![u("a"), u("b")], vec![]));
        assert!(!p.due(10_000));
        assert_eq!(p.next_deadline(), None);
    }

    #[test]
    fn leaves_wait_for_the_window_or_the_batch() {
        let mut p = RekeyPolicy::new(300, 30_000, 3);
        p.note(Change::Left(u("a")), 0);
        p.note(Change::Left(u("b")), 10);
        assert!(!p.due(29_999));
        assert!(p.due(30_000));
        p.note(Change::Left(u("c")), 20);
        assert!(p.due(21), "a full batch is due at once");
        assert_eq!(p.take().1, vec![u("a"), u("b"), u("c")]);
    }

    #[test]
    fn removals_and_stage_changes_are_due_at_once_and_carry_the_pending_churn() {
        let mut p = RekeyPolicy::default();
        p.note(Change::Left(u("l")), 0);
        p.note(Change::Joined(u("j")), 0);
        p.note(Change::Removed(u("troll")), 5);
        assert!(p.due(5));
        assert_eq!(p.take(), (vec![u("j")], vec![u("l"), u("troll")]));
        p.note(Change::StageChanged, 6);
        assert!(p.due(6));
        assert_eq!(p.take(), (vec![], vec![]));
        assert!(!p.due(7));
    }

    #[test]
    fn a_quick_leave_and_return_cancel_out() {
        let mut p = RekeyPolicy::default();
        p.note(Change::Joined(u("a")), 0);
        p.note(Change::Left(u("a")), 1);
        assert_eq!(p.next_deadline(), None);
        p.note(Change::Left(u("b")), 2);
        p.note(Change::Joined(u("b")), 3);
        assert_eq!(p.next_deadline(), None);
        assert_eq!(p.take(), (vec![], vec![]));
    }
}
