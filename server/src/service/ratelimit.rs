//! Limits guessing: failed invite codes and tokens are counted per client address in a
//! one-minute window; past the limit the address gets `rate_limited` until the window ends.

use ruang_proto::ErrorCode;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::ApiError;

const WINDOW: Duration = Duration::from_secs(60);

pub struct RateLimiter {
    limit: u32,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(limit_per_minute: u32) -> Self {
        RateLimiter {
            limit: limit_per_minute.max(1),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Refuses an address that failed too often in the current window.
    pub fn check(&self, ip: IpAddr) -> Result<(), ApiError> {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&ip) {
            Some((start, n)) if start.elapsed() < WINDOW && *n >= self.limit => Err(ApiError::new(
                ErrorCode::RateLimited,
                "too many failed attempts from this address; try again in a minute",
            )),
            _ => Ok(()),
        }
    }

    pub fn fail(&self, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            // Bound memory under a spray of addresses: drop finished windows.
            map.retain(|_, (start, _)| start.elapsed() < WINDOW);
        }
        let entry = map.entry(ip).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
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
            assert!(rl.check(a).is_ok());
            rl.fail(a);
        }
        assert_eq!(rl.check(a).unwrap_err().code, ErrorCode::RateLimited);
        assert!(rl.check(b).is_ok());
    }
}
