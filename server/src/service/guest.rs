//! Guest listeners: people without an account who listen from the browser page.
//!
//! `POST /v1/rooms/{id}/guest` hands out a single-use *guest pass* (a short-lived token
//! for one room); the WebSocket `hello` takes it in place of a session token. Passes are
//! rate-limited per client address, and the number of guests connected at once is capped
//! server-wide. A guest is listen-only forever (the room rules refuse everything else).

use super::http::{parse_json, Body, ClientIp};
use super::{ApiError, AppState};
use crate::rooms::rules::GUEST_ID_PREFIX;
use crate::store::{new_id, new_token};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use ruang_proto::{ErrorCode, RoomId, RoomKind, UserId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Guest passes start with this; session tokens are 64 hex characters.
pub const GUEST_TOKEN_PREFIX: &str = "guest_";
/// A pass must be used this soon (it is fetched right before connecting).
const PASS_TTL: Duration = Duration::from_secs(60);
/// Unused passes kept at most, as a multiple of the guest cap: bounds memory even when
/// passes are fetched from very many addresses and never used.
const PASSES_PER_SLOT: usize = 2;

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

/// Outstanding passes and the number of connected guests.
#[derive(Default)]
pub struct Guests {
    passes: Mutex<HashMap<String, (RoomId, Instant)>>,
    connected: AtomicUsize,
}

impl Guests {
    /// A new pass for `room`, unless `limit` unused passes are outstanding.
    fn issue(&self, room: RoomId, limit: usize) -> Option<String> {
        let mut passes = self.passes.lock().unwrap_or_else(|e| e.into_inner());
        if passes.len() >= limit {
            passes.retain(|_, (_, at)| at.elapsed() < PASS_TTL);
            if passes.len() >= limit {
                return None;
            }
        }
        let token = format!("{GUEST_TOKEN_PREFIX}{}", new_token());
        passes.insert(token.clone(), (room, Instant::now()));
        Some(token)
    }

    /// Uses up a pass for `room`; true if it was valid.
    pub fn redeem(&self, token: &str, room: &RoomId) -> bool {
        let mut passes = self.passes.lock().unwrap_or_else(|e| e.into_inner());
        match passes.remove(token) {
            Some((r, at)) => r == *room && at.elapsed() < PASS_TTL,
            None => false,
        }
    }

    /// Takes a connection slot if fewer than `max` guests are connected.
    pub fn connect(&self, max: usize) -> bool {
        self.connected
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    pub fn disconnect(&self) {
        self.connected.fetch_sub(1, Ordering::AcqRel);
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
    state.limiter.check(ip)?;
    state.guest_limiter.check(ip).map_err(|_| {
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
            Some(t) if t == room.link_token => {}
            Some(_) => {
                state.limiter.fail(ip);
                return Err(ApiError::code(ErrorCode::RoomClosed));
            }
            None => return Err(ApiError::code(ErrorCode::RoomClosed)),
        }
    }
    if state.guests.connected() >= state.max_guests {
        return Err(too_many_guests());
    }
    let outstanding = state.max_guests.max(1).saturating_mul(PASSES_PER_SLOT);
    let token = state
        .guests
        .issue(room.id.clone(), outstanding)
        .ok_or_else(too_many_guests)?;
    state.guest_limiter.fail(ip);
    Ok((
        StatusCode::CREATED,
        Json(GuestPass {
            token,
            expires_in_secs: PASS_TTL.as_secs(),
        }),
    ))
}

/// Frees a guest's connection slot when its connection ends, however it ends.
pub struct GuestSlot(pub AppState);

impl Drop for GuestSlot {
    fn drop(&mut self) {
        self.0.guests.disconnect();
    }
}

pub fn slot_error() -> ApiError {
    too_many_guests()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_are_single_use_per_room_and_bounded() {
        let g = Guests::default();
        let a = RoomId("a".into());
        let b = RoomId("b".into());
        let p1 = g.issue(a.clone(), 2).unwrap();
        let p2 = g.issue(a.clone(), 2).unwrap();
        assert!(p1.starts_with(GUEST_TOKEN_PREFIX) && p1 != p2);
        assert_eq!(g.issue(a.clone(), 2), None, "at most 2 outstanding");
        assert!(
            !g.redeem(&p1, &b),
            "for its own room only (and now used up)"
        );
        assert!(!g.redeem(&p1, &a));
        assert!(g.redeem(&p2, &a));
        assert!(!g.redeem(&p2, &a), "single use");
        assert!(g.issue(a, 2).is_some(), "used passes free their place");
    }

    #[test]
    fn connection_cap() {
        let g = Guests::default();
        assert!(g.connect(2) && g.connect(2));
        assert!(!g.connect(2));
        g.disconnect();
        assert!(g.connect(2));
        assert_eq!(g.connected(), 2);
        assert!(new_guest_id().as_str().starts_with(GUEST_ID_PREFIX));
    }
}
