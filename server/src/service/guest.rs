//! Guest listeners: people without an account who listen from the browser page.
//!
//! `POST /v1/rooms/{id}/guest` hands out a single-use *guest pass* (a short-lived token
//! for one room); the WebSocket `hello` takes it in place of a session token. Passes are
//! rate-limited per client address, and the number of guests connected at once is capped
//! server-wide. A guest is listen-only forever (the room rules refuse everything else).

use super::http::{parse_json, Body, ClientIp};
use super::listener::limit_key;
use super::{ApiError, AppState};
use crate::rooms::rules::GUEST_ID_PREFIX;
use crate::store::new_id;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use hmac::{Hmac, Mac as _};
use ruang_proto::{ErrorCode, RoomId, RoomKind, UserId};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Guest passes start with this; session tokens are 64 hex characters.
pub const GUEST_TOKEN_PREFIX: &str = "guest_";
/// A pass must be used this soon (it is fetched right before connecting).
const PASS_TTL: Duration = Duration::from_secs(60);
/// Connected guests one address (one /64 for IPv6) may hold, as a share of the cap: no
/// single network can take every guest seat.
const GUEST_SHARE_PER_ADDRESS: usize = 10;

#[derive(Deserialize, Default)]
struct GuestRequest {
    /// The room's link token (closed rooms).
    #[serde(default)]
    link_token: Option<String>,
}

#[derive(Serialize)]
pub struct GuestPass {
    pub token: String,
    pub expires_in_secs: u64,
}

type Mac = Hmac<Sha256>;

/// Guest passes and connected guests.
///
/// A pass is signed, not stored: `guest_{expiry_ms}_{nonce}_{mac}` with an HMAC over the
/// room, expiry and nonce under a key made at start. Handing one out costs nothing, so
/// passes fetched and never used can crowd no one out; only redeemed nonces are kept (until
/// their expiry) to make each pass single-use. What is capped is guests *connected*: in
/// total, and per address.
pub struct Guests {
    key: [u8; 32],
    used: Mutex<HashMap<String, u64>>,
    connected: AtomicUsize,
    per_address: Mutex<HashMap<IpAddr, usize>>,
}

impl Default for Guests {
    fn default() -> Self {
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
        Guests {
            key,
            used: Mutex::new(HashMap::new()),
            connected: AtomicUsize::new(0),
            per_address: Mutex::new(HashMap::new()),
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Guests {
    fn mac(&self, room: &RoomId, expiry: u64, nonce: &str) -> Mac {
        let mut mac = Mac::new_from_slice(&self.key).expect("HMAC takes any key size");
        mac.update(room.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(expiry.to_string().as_bytes());
        mac.update(b"\0");
        mac.update(nonce.as_bytes());
        mac
    }

    /// A new pass for `room`, valid for [`PASS_TTL`].
    pub fn issue(&self, room: &RoomId) -> String {
        self.issue_at(room, now_ms())
    }

    fn issue_at(&self, room: &RoomId, now: u64) -> String {
        let expiry = now + PASS_TTL.as_millis() as u64;
        let nonce = new_id();
        let tag = hex::encode(self.mac(room, expiry, &nonce).finalize().into_bytes());
        format!("{GUEST_TOKEN_PREFIX}{expiry}_{nonce}_{tag}")
    }

    /// Uses up a pass for `room`; true if it was valid (signed by us, for this room, not
    /// expired, never used).
    pub fn redeem(&self, token: &str, room: &RoomId) -> bool {
        self.redeem_at(token, room, now_ms())
    }

    fn redeem_at(&self, token: &str, room: &RoomId, now: u64) -> bool {
        let Some(rest) = token.strip_prefix(GUEST_TOKEN_PREFIX) else {
            return false;
        };
        let mut parts = rest.splitn(3, '_');
        let (Some(expiry), Some(nonce), Some(tag)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let (Ok(expiry), Ok(tag)) = (expiry.parse::<u64>(), hex::decode(tag)) else {
            return false;
        };
        if self.mac(room, expiry, nonce).verify_slice(&tag).is_err() || expiry <= now {
            return false;
        }
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        if used.len() >= 4096 {
            used.retain(|_, exp| *exp > now);
        }
        used.insert(nonce.to_owned(), expiry).is_none()
    }

    /// Takes a connection slot for a guest from `ip` if fewer than `max` guests are
    /// connected and the address holds less than its share; the slot is freed on drop.
    pub fn connect(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<GuestSlot> {
        let key = limit_key(ip);
        let share = (max / GUEST_SHARE_PER_ADDRESS).max(1);
        let mut per = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
        let n = per.entry(key).or_insert(0);
        if *n >= share {
            return None;
        }
        self.connected
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                (c < max).then_some(c + 1)
            })
            .ok()?;
        *n += 1;
        Some(GuestSlot {
            guests: self.clone(),
            key,
        })
    }

    pub fn connected(&self) -> usize {
        self.connected.load(Ordering::Acquire)
    }
}

/// A fresh guest id (never a member id: those have no `-`).
pub fn new_guest_id() -> UserId {
    UserId(format!("{GUEST_ID_PREFIX}{}", new_id()))
}

fn too_many_guests() -> ApiError {
    ApiError::new(
        ErrorCode::RateLimited,
        "too many guest listeners right now; try again soon or use the app",
    )
}

/// `POST /v1/rooms/{id}/guest`: a pass to listen to a room without an account.
pub async fn create_pass(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Body(body): Body,
) -> Result<(StatusCode, Json<GuestPass>), ApiError> {
    // Guessing closed rooms' link tokens counts like guessing invite codes.
    let guess = state.limiter.check(ip)?;
    // Each pass handed out counts against the address's per-minute budget.
    let budget = state.guest_limiter.check(ip).map_err(|_| {
        ApiError::new(
            ErrorCode::RateLimited,
            "too many guest listens from this address; try again in a minute",
        )
    })?;
    let req: GuestRequest = if body.iter().all(u8::is_ascii_whitespace) {
        GuestRequest::default()
    } else {
        parse_json(&body)?
    };
    let room = state
        .registry
        .get(&RoomId(id))
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no live room with this id"))?;
    if room.kind() == RoomKind::Closed {
        match req.link_token.as_deref().filter(|t| !t.is_empty()) {
            Some(t) if room.link_matches(t) => {}
            Some(_) => {
                guess.fail();
                return Err(ApiError::code(ErrorCode::RoomClosed));
            }
            None => return Err(ApiError::code(ErrorCode::RoomClosed)),
        }
    }
    if state.guests.connected() >= state.max_guests {
        return Err(too_many_guests());
    }
    let token = state.guests.issue(&room.id);
    budget.fail();
    drop(guess);
    Ok((
        StatusCode::CREATED,
        Json(GuestPass {
            token,
            expires_in_secs: PASS_TTL.as_secs(),
        }),
    ))
}

/// A connected guest's seat; freed when its connection ends, however it ends.
pub struct GuestSlot {
    guests: Arc<Guests>,
    key: IpAddr,
}

impl Drop for GuestSlot {
    fn drop(&mut self) {
        let mut per = self
            .guests
            .per_address
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = per.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                per.remove(&self.key);
            }
        }
        self.guests.connected.fetch_sub(1, Ordering::AcqRel);
    }
}

pub fn slot_error() -> ApiError {
    too_many_guests()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_are_signed_single_use_per_room_and_expire() {
        let g = Guests::default();
        let a = RoomId("a".into());
        let b = RoomId("b".into());
        let p1 = g.issue(&a);
        let p2 = g.issue(&a);
        assert!(p1.starts_with(GUEST_TOKEN_PREFIX) && p1 != p2);
        assert!(!g.redeem(&p1, &b), "for its own room only");
        assert!(g.redeem(&p1, &a));
        assert!(!g.redeem(&p1, &a), "single use");
        // Forged or altered passes are refused.
        // The last hex digit of the MAC changed (to another digit, always).
        let last = if p2.ends_with('0') { '1' } else { '0' };
        let forged = format!("{}{last}", &p2[..p2.len() - 1]);
        assert!(!g.redeem(&forged, &a));
        assert!(!g.redeem("guest_1_2_3", &a));
        assert!(!g.redeem("guest_", &a));
        assert!(!Guests::default().redeem(&p2, &a), "another server's key");
        let old = g.issue_at(&a, 1_000);
        assert!(!g.redeem(&old, &a), "expired");
        assert!(g.redeem(&p2, &a));
    }

    #[test]
    fn unused_passes_cost_nothing() {
        // Passes fetched in bulk and never used take no seat from anyone.
        let g = Arc::new(Guests::default());
        let a = RoomId("a".into());
        for _ in 0..10_000 {
            let _ = g.issue(&a);
        }
        let p = g.issue(&a);
        assert!(g.redeem(&p, &a));
        assert!(g.connect("10.0.0.1".parse().unwrap(), 10).is_some());
    }

    #[test]
    fn connected_guests_are_capped_in_total_and_per_address() {
        let g = Arc::new(Guests::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        // The cap is 20: one address may hold 2 seats.
        let s1 = g.connect(a, 20).unwrap();
        let _s2 = g.connect(a, 20).unwrap();
        assert!(g.connect(a, 20).is_none(), "one address's share is full");
        let v6: Vec<_> = (0..2)
            .map(|i| g.connect(format!("2001:db8::{i}").parse().unwrap(), 20))
            .collect();
        assert!(v6.iter().all(Option::is_some));
        assert!(
            g.connect("2001:db8::99".parse().unwrap(), 20).is_none(),
            "a /64 is one address"
        );
        let others: Vec<_> = (0..20)
            .filter_map(|i| g.connect(format!("10.1.0.{i}").parse().unwrap(), 20))
            .collect();
        assert_eq!(g.connected(), 20, "the total cap holds");
        assert_eq!(others.len(), 16);
        drop(s1);
        let _refill = g.connect("10.2.0.1".parse().unwrap(), 20).unwrap();
        assert!(g.connect(a, 20).is_none(), "full in total");
        drop(others);
        assert!(g.connect(a, 20).is_some());
        assert!(new_guest_id().as_str().starts_with(GUEST_ID_PREFIX));
    }
}
