//! Push delivery to closed apps and browsers: Web Push message encryption (RFC 8291,
//! `aes128gcm` of RFC 8188) with VAPID (RFC 8292). UnifiedPush distributors take the same
//! requests, so Android (UnifiedPush) and browsers (Web Push) share this path.
//!
//! Endpoints that answer 404 or 410 are gone for good and are removed.

use super::http::{parse_json, Authed, Body, ClientIp};
use super::{ApiError, AppState};
use crate::store::{PushSubscription, Store};
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hkdf::Hkdf;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use ruang_proto::{ErrorCode, PushKey, PushSubscriptionRequest, UserId};
use serde::Serialize;
use sha2::Sha256;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Record size written in the header; one record holds the whole message.
const RECORD_SIZE: u32 = 4096;
/// Largest payload one record holds (record size − tag − delimiter).
pub const MAX_PAYLOAD: usize = RECORD_SIZE as usize - 16 - 1;
/// Push endpoints one member may register.
pub const MAX_SUBSCRIPTIONS: usize = 10;

/// Encrypts `payload` for a subscription (RFC 8291 §3.4) with the given salt and
/// application-server key (random in [`encrypt`]; fixed in the RFC's example).
pub fn encrypt_with(
    payload: &[u8],
    ua_public: &[u8],
    auth: &[u8],
    salt: &[u8; 16],
    as_secret: &SecretKey,
) -> Result<Vec<u8>, String> {
    if payload.len() > MAX_PAYLOAD {
        return Err("push payload too large".into());
    }
    let ua = PublicKey::from_sec1_bytes(ua_public).map_err(|_| "invalid p256dh key")?;
    let as_public = as_secret.public_key().to_encoded_point(false);
    let shared = p256::ecdh::diffie_hellman(as_secret.to_nonzero_scalar(), ua.as_affine());
    let (cek, nonce) = derive(
        shared.raw_secret_bytes(),
        auth,
        ua_public,
        as_public.as_bytes(),
        salt,
    )?;
    let mut plain = Vec::with_capacity(payload.len() + 1);
    plain.extend_from_slice(payload);
    plain.push(2); // last (and only) record, no padding
    let cipher = Aes128Gcm::new_from_slice(&cek).map_err(|_| "key length")?;
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), plain.as_slice())
        .map_err(|_| "encryption failed")?;
    let mut out = Vec::with_capacity(16 + 4 + 1 + 65 + sealed.len());
    out.extend_from_slice(salt);
    out.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    out.push(as_public.as_bytes().len() as u8);
    out.extend_from_slice(as_public.as_bytes());
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Encrypts with a fresh salt and a fresh application-server key pair.
pub fn encrypt(payload: &[u8], ua_public: &[u8], auth: &[u8]) -> Result<Vec<u8>, String> {
    let mut salt = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
    let as_secret = SecretKey::random(&mut rand::rngs::OsRng);
    encrypt_with(payload, ua_public, auth, &salt, &as_secret)
}

/// The content-encryption key and nonce (RFC 8291 §3.3–3.4, RFC 8188 §2.2–2.3).
fn derive(
    ecdh_secret: &[u8],
    auth: &[u8],
    ua_public: &[u8],
    as_public: &[u8],
    salt: &[u8],
) -> Result<([u8; 16], [u8; 12]), String> {
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(as_public);
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth), ecdh_secret)
        .expand(&key_info, &mut ikm)
        .map_err(|_| "hkdf")?;
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut cek = [0u8; 16];
    let mut nonce = [0u8; 12];
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .map_err(|_| "hkdf")?;
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
        .map_err(|_| "hkdf")?;
    Ok((cek, nonce))
}

/// What a browser or distributor does with a message: decrypts it with the subscription's
/// private key and auth secret (single-record messages, as this server sends).
pub fn decrypt(body: &[u8], ua_secret: &SecretKey, auth: &[u8]) -> Result<Vec<u8>, String> {
    if body.len() < 21 {
        return Err("too short".into());
    }
    let salt = &body[..16];
    let idlen = body[20] as usize;
    let keyid = body.get(21..21 + idlen).ok_or("truncated header")?;
    let sealed = &body[21 + idlen..];
    let as_public = PublicKey::from_sec1_bytes(keyid).map_err(|_| "invalid key id")?;
    let ua_public = ua_secret.public_key().to_encoded_point(false);
    let shared = p256::ecdh::diffie_hellman(ua_secret.to_nonzero_scalar(), as_public.as_affine());
    let (cek, nonce) = derive(
        shared.raw_secret_bytes(),
        auth,
        ua_public.as_bytes(),
        keyid,
        salt,
    )?;
    let cipher = Aes128Gcm::new_from_slice(&cek).map_err(|_| "key length")?;
    let mut plain = cipher
        .decrypt(Nonce::from_slice(&nonce), sealed)
        .map_err(|_| "authentication failed")?;
    // Strip the padding delimiter (2 for the last record) and any zero padding after it.
    while plain.last() == Some(&0) {
        plain.pop();
    }
    match plain.pop() {
        Some(2) => Ok(plain),
        _ => Err("bad padding delimiter".into()),
    }
}

/// Sends pushes for one server: its VAPID key, an HTTP client.
pub struct Pusher {
    store: Store,
    key: SigningKey,
    /// The VAPID public key (uncompressed point, base64url), `k=` of the header.
    pub public_key: String,
    subject: String,
    http: reqwest::Client,
    allow_http: bool,
}

/// What happened to one push.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Delivered,
    /// 404 or 410: the endpoint is gone and was removed.
    Gone,
    Failed(String),
}

impl Pusher {
    /// Loads the server's VAPID key, making it on the first start.
    pub async fn load(
        store: Store,
        public_url: &str,
        allow_http: bool,
    ) -> crate::store::Result<Arc<Pusher>> {
        let encoded = store
            .secret_or_insert("vapid", || {
                B64.encode(SecretKey::random(&mut rand::rngs::OsRng).to_bytes())
            })
            .await?;
        let secret = B64
            .decode(&encoded)
            .ok()
            .and_then(|b| SecretKey::from_slice(&b).ok())
            .unwrap_or_else(|| {
                tracing::error!("the stored VAPID key is unreadable; using a temporary one");
                SecretKey::random(&mut rand::rngs::OsRng)
            });
        let public_key = B64.encode(secret.public_key().to_encoded_point(false).as_bytes());
        // RFC 8292 §2.1: a contact URI (https or mailto).
        let subject = if public_url.starts_with("https://") {
            public_url.to_owned()
        } else {
            "mailto:ruang@localhost".to_owned()
        };
        let mut http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ruang-server/", env!("CARGO_PKG_VERSION")));
        if !allow_http {
            // A member chooses the endpoint: never let it point the server at its own
            // network (names are checked when resolved, so DNS cannot rebind them inward).
            http = http.dns_resolver(Arc::new(PublicOnly));
        }
        let http = http.build().expect("a plain HTTP client builds");
        Ok(Arc::new(Pusher {
            store,
            key: SigningKey::from(&secret),
            public_key,
            subject,
            http,
            allow_http,
        }))
    }

    /// `Authorization: vapid t=JWT, k=KEY` for an endpoint (RFC 8292 §2–3).
    pub fn vapid_header(&self, endpoint: &url::Url, now_s: i64) -> String {
        let header = B64.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = B64.encode(
            serde_json::json!({
                "aud": endpoint.origin().ascii_serialization(),
                "exp": now_s + 12 * 3600,
                "sub": self.subject,
            })
            .to_string(),
        );
        let signing_input = format!("{header}.{claims}");
        let sig: Signature = self.key.sign(signing_input.as_bytes());
        format!(
            "vapid t={signing_input}.{}, k={}",
            B64.encode(sig.to_bytes()),
            self.public_key
        )
    }

    /// Checks a subscription before it is stored: an https endpoint (http only when the
    /// operator allows it, for tests on loopback), a P-256 point, a 16-byte secret.
    pub fn check(&self, req: &PushSubscriptionRequest) -> Result<url::Url, String> {
        check_subscription(req, self.allow_http)
    }

    /// Encrypts and sends `payload` to every endpoint of `user`; removes the gone ones.
    pub async fn push_to(&self, user: &UserId, payload: &impl Serialize) -> Vec<Outcome> {
        let subs = match self.store.push_subscriptions(user).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "push: loading subscriptions");
                return Vec::new();
            }
        };
        self.push_to_all(&subs, payload).await
    }

    /// Encrypts and sends `payload` to each of `subs` (a browser's "Notify me" for an event
    /// has no member behind it); removes the gone ones.
    pub async fn push_to_all(
        &self,
        subs: &[PushSubscription],
        payload: &impl Serialize,
    ) -> Vec<Outcome> {
        let Ok(body) = serde_json::to_vec(payload) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for s in subs {
            out.push(self.send(s, &body).await);
        }
        out
    }

    async fn send(&self, s: &PushSubscription, payload: &[u8]) -> Outcome {
        let Ok(endpoint) = url::Url::parse(&s.endpoint) else {
            return Outcome::Failed("bad endpoint".into());
        };
        let (Ok(p256dh), Ok(auth)) = (B64.decode(&s.p256dh), B64.decode(&s.auth)) else {
            return Outcome::Failed("bad keys".into());
        };
        let body = match encrypt(payload, &p256dh, &auth) {
            Ok(b) => b,
            Err(e) => return Outcome::Failed(e),
        };
        let now_s = crate::store::now_ms() / 1000;
        let result = self
            .http
            .post(endpoint.clone())
            .header("Content-Encoding", "aes128gcm")
            .header("Content-Type", "application/octet-stream")
            .header("TTL", "86400")
            .header("Urgency", "normal")
            .header("Authorization", self.vapid_header(&endpoint, now_s))
            .body(body)
            .send()
            .await;
        match result {
            Ok(r) if r.status().is_success() => Outcome::Delivered,
            Ok(r) if matches!(r.status().as_u16(), 404 | 410) => {
                if let Err(e) = self.store.remove_push_subscription(None, &s.endpoint).await {
                    tracing::warn!(error = %e, "push: removing a gone endpoint");
                }
                if let Err(e) = self.store.remove_event_web_push(None, &s.endpoint).await {
                    tracing::warn!(error = %e, "push: removing a gone browser endpoint");
                }
                tracing::info!(status = r.status().as_u16(), "push endpoint gone; removed");
                Outcome::Gone
            }
            Ok(r) => Outcome::Failed(format!("status {}", r.status())),
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }
}

/// Whether `ip` is an address on the public internet (not loopback, private, link-local,
/// shared, documentation, multicast or reserved), where push services live.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            !(a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_documentation()
                || a.is_multicast()
                || o[0] == 0
                || o[0] >= 240
                || (o[0] == 100 && o[1] & 0xC0 == 64))
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = a.segments()[0];
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || first & 0xFE00 == 0xFC00
                || first & 0xFFC0 == 0xFE80
                || first == 0x2001 && a.segments()[1] == 0x0DB8)
        }
    }
}

/// A resolver that gives only public addresses (see [`is_public`]): a push endpoint's name
/// that resolves inward fails like an unknown name.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{host} has no public address").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// See [`Pusher::check`].
pub fn check_subscription(
    req: &PushSubscriptionRequest,
    allow_http: bool,
) -> Result<url::Url, String> {
    if req.endpoint.len() > 1000 {
        return Err("the endpoint has at most 1000 characters".into());
    }
    let url = url::Url::parse(&req.endpoint).map_err(|_| "the endpoint is not a URL")?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        _ => return Err("the endpoint must be an https:// URL".into()),
    }
    if url.host_str().is_none() || !url.username().is_empty() || url.password().is_some() {
        return Err("the endpoint must be an https:// URL with a host".into());
    }
    let literal = match url.host() {
        Some(url::Host::Ipv4(a)) => Some(IpAddr::V4(a)),
        Some(url::Host::Ipv6(a)) => Some(IpAddr::V6(a)),
        _ => None,
    };
    if !allow_http && literal.is_some_and(|ip| !is_public(ip)) {
        return Err("the endpoint must be on a public address".into());
    }
    let key = B64
        .decode(req.keys.p256dh.trim_end_matches('='))
        .map_err(|_| "keys.p256dh is not base64url")?;
    if key.len() != 65 || PublicKey::from_sec1_bytes(&key).is_err() {
        return Err("keys.p256dh is not an uncompressed P-256 public key".into());
    }
    let auth = B64
        .decode(req.keys.auth.trim_end_matches('='))
        .map_err(|_| "keys.auth is not base64url")?;
    if auth.len() != 16 {
        return Err("keys.auth is 16 bytes".into());
    }
    Ok(url)
}

/// `GET /v1/push/key`: the VAPID public key browsers subscribe with
/// (`applicationServerKey`).
pub async fn key(State(state): State<AppState>) -> Json<PushKey> {
    Json(PushKey {
        vapid_public_key: state.pusher.public_key.clone(),
    })
}

/// `POST /v1/push/subscriptions`
pub async fn subscribe(
    State(state): State<AppState>,
    Authed(me): Authed,
    Body(body): Body,
) -> Result<StatusCode, ApiError> {
    let req: PushSubscriptionRequest = parse_json(&body)?;
    state
        .pusher
        .check(&req)
        .map_err(|m| ApiError::new(ErrorCode::InvalidField, m))?;
    let mine = state.store.push_subscriptions(&me.user.id).await?;
    if !mine.iter().any(|s| s.endpoint == req.endpoint) && mine.len() >= MAX_SUBSCRIPTIONS {
        return Err(ApiError::new(
            ErrorCode::LimitReached,
            format!("at most {MAX_SUBSCRIPTIONS} push endpoints; remove one first"),
        ));
    }
    state
        .store
        .add_push_subscription(
            &me.user.id,
            &PushSubscription {
                endpoint: req.endpoint,
                p256dh: req.keys.p256dh.trim_end_matches('=').to_owned(),
                auth: req.keys.auth.trim_end_matches('=').to_owned(),
            },
        )
        .await?;
    Ok(StatusCode::CREATED)
}

/// `DELETE /v1/push/subscriptions` with `{"endpoint": …}`
pub async fn unsubscribe(
    State(state): State<AppState>,
    Authed(me): Authed,
    Body(body): Body,
) -> Result<StatusCode, ApiError> {
    #[derive(serde::Deserialize)]
    struct Req {
        endpoint: String,
    }
    let req: Req = parse_json(&body)?;
    state
        .store
        .remove_push_subscription(Some(&me.user.id), &req.endpoint)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Browser "Notify me" subscriptions one address may make per minute.
pub const WEB_SUBSCRIPTIONS_PER_MINUTE: u32 = 20;

/// Browser subscriptions one scheduled room may have ("Notify me" on its page, no account).
pub const MAX_WEB_PER_EVENT: i64 = 10_000;

/// `POST /v1/events/{id}/web-push` (no account): a browser's `PushSubscription.toJSON()` for
/// one scheduled room. Told (pushed, §10.6) when it starts soon, starts, changes or is cancelled.
pub async fn event_web_subscribe(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Body(body): Body,
) -> Result<StatusCode, ApiError> {
    // Every subscription counts against the address, as guest passes do.
    state.web_push_limiter.check(ip)?.fail();
    let req: PushSubscriptionRequest = parse_json(&body)?;
    let e = open_event(&state, &id).await?;
    state
        .pusher
        .check(&req)
        .map_err(|m| ApiError::new(ErrorCode::InvalidField, m))?;
    if state.store.count_event_web_push(&e.id).await? >= MAX_WEB_PER_EVENT {
        return Err(ApiError::new(
            ErrorCode::LimitReached,
            "this scheduled room has too many browsers waiting for it",
        ));
    }
    state
        .store
        .add_event_web_push(
            &e.id,
            &PushSubscription {
                endpoint: req.endpoint,
                p256dh: req.keys.p256dh.trim_end_matches('=').to_owned(),
                auth: req.keys.auth.trim_end_matches('=').to_owned(),
            },
        )
        .await?;
    Ok(StatusCode::CREATED)
}

/// `DELETE /v1/events/{id}/web-push` with `{"endpoint": …}` (idempotent, no account).
pub async fn event_web_unsubscribe(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(body): Body,
) -> Result<StatusCode, ApiError> {
    #[derive(serde::Deserialize)]
    struct Req {
        endpoint: String,
    }
    let req: Req = parse_json(&body)?;
    state
        .store
        .remove_event_web_push(Some(&id), &req.endpoint)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A scheduled room a browser may still ask about: it exists, is not cancelled and has not
/// started yet.
async fn open_event(state: &AppState, id: &str) -> Result<crate::store::StoredEvent, ApiError> {
    let not_found = || ApiError::new(ErrorCode::NotFound, "no such scheduled room");
    if !super::pages::plausible(id, 32) {
        return Err(not_found());
    }
    match state.store.event(&UserId(String::new()), id).await {
        Ok(e) if e.cancelled || e.room_id.is_some() => Err(ApiError::new(
            ErrorCode::InvalidField,
            "this scheduled room was cancelled or has started",
        )),
        Ok(e) => Ok(e),
        Err(crate::store::StoreError::NotFound) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

/// `GET /v1/push/subscriptions`: the caller's endpoints.
pub async fn list(
    State(state): State<AppState>,
    Authed(me): Authed,
) -> Result<Json<Vec<String>>, ApiError> {
    Ok(Json(
        state
            .store
            .push_subscriptions(&me.user.id)
            .await?
            .into_iter()
            .map(|s| s.endpoint)
            .collect(),
    ))
}

#[cfg(test)]
mod public_address_tests {
    use super::{is_public, PublicOnly};
    use reqwest::dns::Resolve;
    use std::net::IpAddr;

    #[test]
    fn only_public_addresses_count() {
        for (ip, public) in [
            ("8.8.8.8", true),
            ("203.0.114.9", true),
            ("2606:4700::1111", true),
            ("127.0.0.1", false),
            ("10.0.0.1", false),
            ("172.16.5.4", false),
            ("192.168.1.1", false),
            ("169.254.169.254", false),
            ("100.100.100.100", false),
            ("0.0.0.0", false),
            ("255.255.255.255", false),
            ("224.0.0.1", false),
            ("192.0.2.1", false),
            ("::1", false),
            ("::", false),
            ("fe80::1", false),
            ("fc00::1", false),
            ("2001:db8::1", false),
            ("::ffff:127.0.0.1", false),
            ("::ffff:8.8.8.8", true),
        ] {
            assert_eq!(is_public(ip.parse::<IpAddr>().unwrap()), public, "{ip}");
        }
    }

    #[tokio::test]
    async fn names_that_resolve_inward_do_not_resolve() {
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        assert!(PublicOnly.resolve(name).await.is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::VerifyingKey;

    fn b(s: &str) -> Vec<u8> {
        B64.decode(s).unwrap()
    }

    // RFC 8291 Appendix A.
    const PLAINTEXT: &str = "When I grow up, I want to be a watermelon";
    const AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
    const AS_PUBLIC: &str =
        "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
    const UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
    const UA_PUBLIC: &str =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
    const SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";
    const BODY: &str = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";

    #[test]
    fn rfc8291_example_encrypts_byte_for_byte() {
        let as_secret = SecretKey::from_slice(&b(AS_PRIVATE)).unwrap();
        assert_eq!(
            B64.encode(as_secret.public_key().to_encoded_point(false).as_bytes()),
            AS_PUBLIC
        );
        let salt: [u8; 16] = b(SALT).try_into().unwrap();
        let body = encrypt_with(
            PLAINTEXT.as_bytes(),
            &b(UA_PUBLIC),
            &b(AUTH),
            &salt,
            &as_secret,
        )
        .unwrap();
        assert_eq!(B64.encode(&body), BODY);
    }

    #[test]
    fn rfc8291_example_decrypts_and_tampering_fails() {
        let ua = SecretKey::from_slice(&b(UA_PRIVATE)).unwrap();
        let plain = decrypt(&b(BODY), &ua, &b(AUTH)).unwrap();
        assert_eq!(plain, PLAINTEXT.as_bytes());
        let mut broken = b(BODY);
        let n = broken.len();
        broken[n - 5] ^= 1;
        assert!(decrypt(&broken, &ua, &b(AUTH)).is_err());
        assert!(
            decrypt(&b(BODY), &ua, &[0u8; 16]).is_err(),
            "wrong auth secret"
        );
        // A fresh message round-trips.
        let fresh = encrypt(b"{\"kind\":\"followed_you\"}", &b(UA_PUBLIC), &b(AUTH)).unwrap();
        assert_ne!(&fresh[..16], &b(BODY)[..16], "random salt");
        assert_eq!(
            decrypt(&fresh, &ua, &b(AUTH)).unwrap(),
            b"{\"kind\":\"followed_you\"}"
        );
        assert!(encrypt(&vec![b'x'; MAX_PAYLOAD + 1], &b(UA_PUBLIC), &b(AUTH)).is_err());
    }

    #[tokio::test]
    async fn vapid_tokens_verify_with_the_public_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("t.db").display()))
            .await
            .unwrap();
        let pusher = Pusher::load(store.clone(), "https://ruang.example", false)
            .await
            .unwrap();
        // The key survives a restart (same database).
        let again = Pusher::load(store, "https://ruang.example", false)
            .await
            .unwrap();
        assert_eq!(pusher.public_key, again.public_key);
        let endpoint = url::Url::parse("https://push.example.net:8443/wpush/v2/abc").unwrap();
        let header = pusher.vapid_header(&endpoint, 1_000_000);
        let (t, k) = header
            .strip_prefix("vapid t=")
            .unwrap()
            .split_once(", k=")
            .unwrap();
        assert_eq!(k, pusher.public_key);
        let (signing_input, sig) = t.rsplit_once('.').unwrap();
        let key = VerifyingKey::from_sec1_bytes(&b(k)).unwrap();
        let sig = Signature::from_slice(&b(sig)).unwrap();
        key.verify(signing_input.as_bytes(), &sig).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&b(signing_input.split('.').nth(1).unwrap())).unwrap();
        assert_eq!(claims["aud"], "https://push.example.net:8443");
        assert_eq!(claims["exp"], 1_000_000 + 12 * 3600);
        assert_eq!(claims["sub"], "https://ruang.example");
    }

    #[test]
    fn subscriptions_are_checked() {
        let ok = PushSubscriptionRequest {
            endpoint: "https://ntfy.example/upAbc?up=1".into(),
            keys: ruang_proto::PushKeys {
                p256dh: UA_PUBLIC.into(),
                auth: AUTH.into(),
            },
        };
        assert!(check_subscription(&ok, false).is_ok());
        let with = |f: &dyn Fn(&mut PushSubscriptionRequest)| {
            let mut r = ok.clone();
            f(&mut r);
            check_subscription(&r, false)
        };
        assert!(with(&|r| r.endpoint = "http://ntfy.example/up".into()).is_err());
        assert!(check_subscription(
            &PushSubscriptionRequest {
                endpoint: "http://127.0.0.1:9/up".into(),
                ..ok.clone()
            },
            true
        )
        .is_ok());
        assert!(with(&|r| r.endpoint = "file:///etc/passwd".into()).is_err());
        assert!(with(&|r| r.endpoint = "https://user:pw@x.example/".into()).is_err());
        // Never the server's own network, by address literal.
        for inward in [
            "https://127.0.0.1/push",
            "https://10.1.2.3/push",
            "https://192.168.0.1:8443/push",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/push",
            "https://[fd00::1]/push",
            "https://[::ffff:10.0.0.1]/push",
            "https://100.64.0.1/push",
        ] {
            assert!(with(&|r| r.endpoint = inward.into()).is_err(), "{inward}");
        }
        assert!(with(&|r| r.endpoint = "https://203.0.114.9/push".into()).is_ok());
        assert!(with(&|r| r.keys.auth = "c2hvcnQ".into()).is_err());
        assert!(
            with(&|r| r.keys.p256dh = B64.encode([4u8; 65])).is_err(),
            "not on the curve"
        );
        assert!(with(&|r| r.keys.p256dh = "!!!".into()).is_err());
    }
}
