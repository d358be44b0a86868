//! Limits guessing: failed invite codes and tokens are counted per client address (one /64
//! for IPv6) in a one-minute window; past the limit the address gets `rate_limited` until
//! the window ends.
//!
//! An attempt is counted when it starts, not when it fails: `check` reserves one of the
//! window's tries and a success gives it back. So many guesses sent at once cannot all pass
//! the check before the first failure is recorded.

use ruang_proto::ErrorCode;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::listener::limit_key;
use super::ApiError;

const WINDOW: Duration = Duration::from_secs(60);

struct Window {
    start: Instant,
    failures: u32,
    /// Attempts started and not finished yet.
    pending: u32,
}

pub struct RateLimiter {
    limit: u32,
    windows: Mutex<HashMap<IpAddr, Window>>,
    /// Cluster mode: where failures go to be announced to the other nodes, whose limiters
    /// count them too (one window per address across the cluster, not one per node).
    share: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<IpAddr>>,
}

/// One attempt in progress. Dropped without [`Attempt::fail`], it was a success and its
/// reservation is given back.
#[must_use = "an attempt counts as failed only through fail()"]
pub struct Attempt<'a> {
    limiter: &'a RateLimiter,
    key: IpAddr,
    failed: bool,
}

impl Attempt<'_> {
    /// The attempt failed: it counts against the address for the rest of the window.
    pub fn fail(mut self) {
        self.failed = true;
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        let mut map = self.limiter.lock();
        if let Some(w) = map.get_mut(&self.key) {
            w.pending = w.pending.saturating_sub(1);
            if self.failed {
                if w.start.elapsed() >= WINDOW {
                    w.start = Instant::now();
                    w.failures = 0;
                }
                w.failures += 1;
                if let Some(share) = self.limiter.share.get() {
                    let _ = share.send(self.key);
                }
            }
        }
    }
}

/// `key`'s window, started afresh if the last one is over.
fn current_window(map: &mut HashMap<IpAddr, Window>, key: IpAddr) -> &mut Window {
    if map.len() > 100_000 {
        // Bound memory under a spray of addresses: drop finished windows.
        map.retain(|_, w| w.pending > 0 || w.start.elapsed() < WINDOW);
    }
    let w = map.entry(key).or_insert(Window {
        start: Instant::now(),
        failures: 0,
        pending: 0,
    });
    if w.start.elapsed() >= WINDOW {
        w.start = Instant::now();
        w.failures = 0;
    }
    w
}

impl RateLimiter {
    pub fn new(limit_per_minute: u32) -> Self {
        RateLimiter {
            limit: limit_per_minute.max(1),
            windows: Mutex::new(HashMap::new()),
            share: std::sync::OnceLock::new(),
        }
    }

    /// Cluster mode: this limiter's failures are sent to `to` (for the other nodes).
    pub fn share_failures(&self, to: tokio::sync::mpsc::UnboundedSender<IpAddr>) {
        let _ = self.share.set(to);
    }

    /// A failure another node saw from `key` (already an address key, see `limit_key`).
    pub fn count_remote_failure(&self, key: IpAddr) {
        let mut map = self.lock();
        current_window(&mut map, limit_key(key)).failures += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Window>> {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts an attempt from `ip`, or refuses an address that used up its window
    /// (failures plus attempts still in flight).
    pub fn check(&self, ip: IpAddr) -> Result<Attempt<'_>, ApiError> {
        let key = limit_key(ip);
        let mut map = self.lock();
        let w = current_window(&mut map, key);
        if w.failures + w.pending >= self.limit {
            return Err(ApiError::new(
                ErrorCode::RateLimited,
                "too many failed attempts from this address; try again in a minute",
            ));
        }
        w.pending += 1;
        Ok(Attempt {
            limiter: self,
            key,
            failed: false,
        })
    }

    /// Counts one failure at once (for checks that have no async step in between).
    pub fn fail(&self, ip: IpAddr) {
        if let Ok(a) = self.check(ip) {
            a.fail();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_limit_per_address() {
        let rl = RateLimiter::new(3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            rl.check(a).unwrap().fail();
        }
        assert_eq!(rl.check(a).err().unwrap().code, ErrorCode::RateLimited);
        assert!(rl.check(b).is_ok());
    }

    #[test]
    fn successes_do_not_count() {
        let rl = RateLimiter::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..10 {
            drop(rl.check(a).unwrap());
        }
        assert!(rl.check(a).is_ok());
    }

    #[test]
    fn attempts_in_flight_count_before_they_fail() {
        // Concurrent guesses: all started, none finished yet.
        let rl = RateLimiter::new(3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let in_flight: Vec<_> = (0..3).map(|_| rl.check(a).unwrap()).collect();
        assert!(rl.check(a).is_err(), "a fourth concurrent attempt passed");
        for t in in_flight {
            t.fail();
        }
        assert!(rl.check(a).is_err());
    }

    #[test]
    fn one_ipv6_slash_64_shares_a_budget() {
        let rl = RateLimiter::new(2);
        rl.check("2001:db8::1".parse().unwrap()).unwrap().fail();
        rl.check("2001:db8::2:3".parse().unwrap()).unwrap().fail();
        assert!(rl.check("2001:db8::ffff".parse().unwrap()).is_err());
        assert!(rl.check("2001:db8:0:1::1".parse().unwrap()).is_ok());
    }

    #[test]
    fn failures_seen_by_other_nodes_count_here() {
        let rl = RateLimiter::new(3);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        rl.share_failures(tx);
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        rl.check(a).unwrap().fail();
        // Shared under the address's key (its /64).
        assert_eq!(rx.try_recv().unwrap(), limit_key(a));
        // Two failures elsewhere in the cluster fill the window here too.
        rl.count_remote_failure("2001:db8::2".parse().unwrap());
        rl.count_remote_failure(limit_key(a));
        assert!(rl.check(a).is_err());
        assert!(rl.check("10.0.0.9".parse().unwrap()).is_ok());
    }
}
