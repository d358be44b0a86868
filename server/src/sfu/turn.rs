//! TURN for clients that cannot reach the SFU at all, not even over ICE-TCP (a network that
//! lets out only TLS on 443, or only through a relay). Ruang does not relay itself: it hands
//! clients short-lived credentials for a TURN server the operator runs (coturn from Debian is
//! the tested one), in the **TURN REST API** scheme coturn calls `use-auth-secret`:
//!
//! - username = `EXPIRY:USER_ID` (EXPIRY in Unix seconds),
//! - credential = base64(HMAC-SHA1(shared secret, username)).
//!
//! The TURN server checks the HMAC with the same secret and refuses a username whose expiry
//! has passed, so nothing is stored and a leaked credential dies with its TTL. Each welcome
//! carries fresh ones (docs/protocol.md §3).

use base64::Engine as _;
use hmac::{Hmac, Mac};
use ruang_proto::{IceServer, UserId};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The operator's TURN server(s) and the secret shared with them.
#[derive(Clone)]
pub struct TurnConfig {
    /// `turn:HOST:PORT?transport=udp`, `turn:HOST:PORT?transport=tcp`, `turns:HOST:443?transport=tcp`.
    pub urls: Vec<String>,
    pub secret: String,
    /// How long credentials stay valid (a session longer than this gets new ones on its
    /// next welcome; an allocation already made keeps working until refreshed).
    pub ttl: Duration,
}

impl std::fmt::Debug for TurnConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnConfig")
            .field("urls", &self.urls)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive() // never the secret
    }
}

impl TurnConfig {
    /// Checks the URLs' scheme (a typo would only show as clients failing to relay).
    pub fn validate(&self) -> Result<(), String> {
        if self.secret.is_empty() {
            return Err("TURN needs a shared secret (--turn-secret)".into());
        }
        for url in &self.urls {
            let scheme_ok = ["turn:", "turns:", "stun:"]
                .iter()
                .any(|s| url.starts_with(s) && url.len() > s.len());
            if !scheme_ok {
                return Err(format!(
                    "TURN URL {url:?} must start with turn:, turns: or stun: (e.g. turn:turn.example.org:3478?transport=udp)"
                ));
            }
        }
        Ok(())
    }

    /// Credentials for `user`, valid for the TTL from now.
    pub fn ice_servers(&self, user: &UserId) -> Vec<IceServer> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.ice_servers_at(user, now)
    }

    fn ice_servers_at(&self, user: &UserId, now: Duration) -> Vec<IceServer> {
        if self.urls.is_empty() {
            return Vec::new();
        }
        let expiry = (now + self.ttl).as_secs();
        let username = format!("{expiry}:{}", user.as_str());
        vec![IceServer {
            urls: self.urls.clone(),
            credential: credential(&self.secret, &username),
            username,
        }]
    }
}

/// base64(HMAC-SHA1(secret, username)), as coturn's `use-auth-secret` computes it.
pub fn credential(secret: &str, username: &str) -> String {
    let mut mac =
        Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_follow_the_turn_rest_scheme() {
        // RFC 2202 test case 2 (HMAC-SHA1, key "Jefe"), base64 of its published digest
        // effcdf6ae5eb2fa2d27416d5f184df9c259a7c79.
        assert_eq!(
            credential("Jefe", "what do ya want for nothing?"),
            "7/zfauXrL6LSdBbV8YTfnCWafHk="
        );
        let turn = TurnConfig {
            urls: vec!["turn:t.example:3478?transport=udp".into()],
            secret: "s3cret".into(),
            ttl: Duration::from_secs(3600),
        };
        let user = UserId::from("u_budi");
        let servers = turn.ice_servers_at(&user, Duration::from_secs(1_800_000_000));
        assert_eq!(servers.len(), 1);
        assert_eq!(servers[0].username, "1800003600:u_budi");
        assert_eq!(
            servers[0].credential,
            credential("s3cret", "1800003600:u_budi")
        );
        assert_eq!(servers[0].urls, turn.urls);
        assert!(
            !format!("{turn:?}").contains("s3cret"),
            "the secret is never logged"
        );
    }

    #[test]
    fn bad_urls_and_a_missing_secret_are_refused() {
        let turn = |urls: &[&str], secret: &str| TurnConfig {
            urls: urls.iter().map(|u| u.to_string()).collect(),
            secret: secret.into(),
            ttl: Duration::from_secs(60),
        };
        assert!(turn(&["turn:h:3478", "turns:h:443?transport=tcp"], "k")
            .validate()
            .is_ok());
        assert!(turn(&["http://h:3478"], "k").validate().is_err());
        assert!(turn(&["turn:"], "k").validate().is_err());
        assert!(turn(&["turn:h:3478"], "").validate().is_err());
    }
}
