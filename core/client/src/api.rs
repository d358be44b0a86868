//! Typed HTTP client for `/v1`.

use crate::error::ClientError;
use ruang_proto::{
    ApiErrorBody, Clip, CreateEventRequest, CreateRoomRequest, ErrorCode, Event,
    GrantAccessRequest, Health, Invite, InviteCheck, MarkReadRequest, NotificationPage,
    NotificationSettings, Profile, ProfileUpdate, Replay, RoomKind, RoomSummary, SessionResponse,
    SignupRequest, UpdateEventRequest, UserPage,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;
use url::Url;

#[derive(Clone)]
pub struct ApiClient {
    base: Url,
    http: reqwest::Client,
    token: Option<String>,
}

type Result<T> = std::result::Result<T, ClientError>;

impl ApiClient {
    /// `server` is the base URL, e.g. `http://127.0.0.1:8080`.
    pub fn new(server: &str) -> Result<Self> {
        let mut base = Url::parse(server)
            .map_err(|e| ClientError::InvalidInput(format!("server URL {server:?}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(ClientError::InvalidInput(
                "server URL must be http:// or https://".into(),
            ));
        }
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("ruang-client/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(ApiClient {
            base,
            http,
            token: None,
        })
    }

    /// Replaces the HTTP client with one that sends `user_agent`.
    pub fn with_user_agent(mut self, user_agent: &str) -> Result<Self> {
        self.http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(user_agent)
            .build()?;
        Ok(self)
    }

    pub fn without_token(mut self) -> Self {
        self.token = None;
        self
    }

    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("relative API paths are valid")
    }

    /// The signalling WebSocket URL of a room.
    pub fn ws_url(&self, room: &str) -> Url {
        let mut u = self.url(&format!("v1/rooms/{room}/ws"));
        let scheme = if u.scheme() == "https" { "wss" } else { "ws" };
        u.set_scheme(scheme).expect("ws schemes are valid");
        u
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T> {
        let resp = self.finish(req).await?;
        let bytes = resp.bytes().await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Protocol(format!("unexpected response: {e}")))
    }

    async fn send_empty(&self, req: reqwest::RequestBuilder) -> Result<()> {
        self.finish(req).await.map(|_| ())
    }

    async fn finish(&self, mut req: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let bytes = resp.bytes().await.unwrap_or_default();
        Err(match serde_json::from_slice::<ApiErrorBody>(&bytes) {
            Ok(body) => ClientError::Api {
                status: status.as_u16(),
                code: body.error.code,
                message: body.error.message,
            },
            Err(_) => ClientError::Api {
                status: status.as_u16(),
                code: if status.is_server_error() {
                    ErrorCode::Internal
                } else {
                    ErrorCode::BadRequest
                },
                message: String::from_utf8_lossy(&bytes).into_owned(),
            },
        })
    }

    fn post<B: Serialize>(&self, path: &str, body: &B) -> reqwest::RequestBuilder {
        self.http.post(self.url(path)).json(body)
    }

    pub async fn health(&self) -> Result<Health> {
        self.send(self.http.get(self.url("healthz"))).await
    }

    /// Creates an account; the returned token is also kept in this client.
    pub async fn signup(
        &mut self,
        invite: &str,
        handle: &str,
        name: &str,
    ) -> Result<SessionResponse> {
        let body = SignupRequest {
            invite: invite.to_owned(),
            handle: handle.to_owned(),
            name: name.to_owned(),
        };
        let s: SessionResponse = self.send(self.post("v1/signup", &body)).await?;
        self.token = Some(s.token.clone());
        Ok(s)
    }

    pub async fn check_invite(&self, code: &str) -> Result<InviteCheck> {
        self.send(
            self.http
                .get(self.url(&format!("v1/invites/{}", enc(code)))),
        )
        .await
    }

    pub async fn logout(&self) -> Result<()> {
        self.send_empty(self.http.post(self.url("v1/logout"))).await
    }

    pub async fn logout_all(&self) -> Result<()> {
        self.send_empty(self.http.post(self.url("v1/logout-all")))
            .await
    }

    pub async fn me(&self) -> Result<Profile> {
        self.send(self.http.get(self.url("v1/me"))).await
    }

    pub async fn update_profile(&self, update: &ProfileUpdate) -> Result<Profile> {
        self.send(self.http.patch(self.url("v1/me")).json(update))
            .await
    }

    pub async fn profile(&self, handle: &str) -> Result<Profile> {
        self.send(
            self.http
                .get(self.url(&format!("v1/users/{}", enc(handle)))),
        )
        .await
    }

    pub async fn follow(&self, handle: &str) -> Result<Profile> {
        self.send(
            self.http
                .post(self.url(&format!("v1/users/{}/follow", enc(handle)))),
        )
        .await
    }

    pub async fn unfollow(&self, handle: &str) -> Result<Profile> {
        self.send(
            self.http
                .delete(self.url(&format!("v1/users/{}/follow", enc(handle)))),
        )
        .await
    }

    pub async fn invites(&self) -> Result<Vec<Invite>> {
        self.send(self.http.get(self.url("v1/invites"))).await
    }

    pub async fn create_invite(&self) -> Result<Invite> {
        self.send(self.http.post(self.url("v1/invites"))).await
    }

    pub async fn revoke_invite(&self, code: &str) -> Result<()> {
        self.send_empty(
            self.http
                .delete(self.url(&format!("v1/invites/{}", enc(code)))),
        )
        .await
    }

    pub async fn create_room(&self, title: &str, kind: RoomKind) -> Result<RoomSummary> {
        let body = CreateRoomRequest {
            title: title.to_owned(),
            kind,
            record: false,
            clips: false,
            e2ee: false,
        };
        self.send(self.post("v1/rooms", &body)).await
    }

    // ----- end-to-end encrypted rooms: the MLS relay (protocol.md §15) -----

    /// Posts a moderator's commit built on `req.epoch`: the new epoch, or `stale_epoch`.
    pub async fn mls_commit(&self, room: &str, req: &ruang_proto::MlsCommitRequest) -> Result<u64> {
        #[derive(serde::Deserialize)]
        struct Taken {
            epoch: u64,
        }
        let taken: Taken = self
            .send(self.post(&format!("v1/rooms/{}/mls/commits", enc(room)), req))
            .await?;
        Ok(taken.epoch)
    }

    /// The commit that started `epoch`.
    pub async fn mls_commit_at(&self, room: &str, epoch: u64) -> Result<ruang_proto::MlsCommit> {
        let u = self.url(&format!("v1/rooms/{}/mls/commits/{epoch}", enc(room)));
        self.send(self.http.get(u)).await
    }

    /// The latest welcome addressed to this member.
    pub async fn mls_welcome(&self, room: &str) -> Result<ruang_proto::MlsWelcome> {
        let u = self.url(&format!("v1/rooms/{}/mls/welcome", enc(room)));
        self.send(self.http.get(u)).await
    }

    /// Creates a room with every option (`record`, `clips`).
    pub async fn create_room_with(&self, body: &CreateRoomRequest) -> Result<RoomSummary> {
        self.send(self.post("v1/rooms", body)).await
    }

    pub async fn hallway(&self) -> Result<Vec<RoomSummary>> {
        self.send(self.http.get(self.url("v1/rooms"))).await
    }

    pub async fn room(&self, id: &str, link_token: Option<&str>) -> Result<RoomSummary> {
        let mut u = self.url(&format!("v1/rooms/{}", enc(id)));
        if let Some(t) = link_token {
            u.query_pairs_mut().append_pair("t", t);
        }
        self.send(self.http.get(u)).await
    }

    pub async fn grant_access(&self, room: &str, handle: &str) -> Result<()> {
        let body = GrantAccessRequest {
            handle: handle.to_owned(),
        };
        self.send_empty(self.post(&format!("v1/rooms/{}/access", enc(room)), &body))
            .await
    }

    // ----- photos, profiles -----

    /// Uploads a photo (the bytes of a JPEG, PNG or WebP file).
    pub async fn set_avatar(&self, image: Vec<u8>) -> Result<Profile> {
        self.send(
            self.http
                .put(self.url("v1/me/avatar"))
                .header("content-type", "application/octet-stream")
                .body(image),
        )
        .await
    }

    pub async fn delete_avatar(&self) -> Result<()> {
        self.send_empty(self.http.delete(self.url("v1/me/avatar")))
            .await
    }

    /// `followers` or `following` of a member, one page.
    pub async fn follow_list(
        &self,
        handle: &str,
        which: &str,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<UserPage> {
        let mut u = self.url(&format!("v1/users/{}/{}", enc(handle), enc(which)));
        if let Some(c) = cursor {
            u.query_pairs_mut().append_pair("cursor", c);
        }
        if let Some(l) = limit {
            u.query_pairs_mut().append_pair("limit", &l.to_string());
        }
        self.send(self.http.get(u)).await
    }

    // ----- events -----

    pub async fn create_event(&self, req: &CreateEventRequest) -> Result<Event> {
        self.send(self.post("v1/events", req)).await
    }

    /// The hallway's "Upcoming" section.
    pub async fn events(&self) -> Result<Vec<Event>> {
        self.send(self.http.get(self.url("v1/events"))).await
    }

    pub async fn event(&self, id: &str) -> Result<Event> {
        self.send(self.http.get(self.url(&format!("v1/events/{}", enc(id)))))
            .await
    }

    pub async fn update_event(&self, id: &str, req: &UpdateEventRequest) -> Result<Event> {
        self.send(
            self.http
                .patch(self.url(&format!("v1/events/{}", enc(id))))
                .json(req),
        )
        .await
    }

    pub async fn cancel_event(&self, id: &str) -> Result<()> {
        self.send_empty(
            self.http
                .delete(self.url(&format!("v1/events/{}", enc(id)))),
        )
        .await
    }

    /// "Notify me" on (true) or off.
    pub async fn notify_event(&self, id: &str, on: bool) -> Result<Event> {
        let u = self.url(&format!("v1/events/{}/notify", enc(id)));
        self.send(if on {
            self.http.post(u)
        } else {
            self.http.delete(u)
        })
        .await
    }

    /// The host starts the event's room.
    pub async fn start_event(&self, id: &str) -> Result<RoomSummary> {
        self.send(
            self.http
                .post(self.url(&format!("v1/events/{}/start", enc(id)))),
        )
        .await
    }

    /// People, live rooms and events matching `q`.
    pub async fn search(&self, q: &str) -> Result<ruang_proto::SearchResults> {
        let mut u = self.url("v1/search");
        u.query_pairs_mut().append_pair("q", q);
        self.send(self.http.get(u)).await
    }

    // ----- notifications -----

    pub async fn notifications(
        &self,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<NotificationPage> {
        let mut u = self.url("v1/notifications");
        if let Some(c) = cursor {
            u.query_pairs_mut().append_pair("cursor", c);
        }
        if let Some(l) = limit {
            u.query_pairs_mut().append_pair("limit", &l.to_string());
        }
        self.send(self.http.get(u)).await
    }

    pub async fn mark_notifications_read(&self, up_to: i64) -> Result<()> {
        self.send_empty(self.post("v1/notifications/read", &MarkReadRequest { up_to }))
            .await
    }

    pub async fn notification_settings(&self) -> Result<NotificationSettings> {
        self.send(self.http.get(self.url("v1/notifications/settings")))
            .await
    }

    // ----- push endpoints (Web Push, UnifiedPush) -----

    /// The server's VAPID public key (base64url), a browser's `applicationServerKey`.
    pub async fn push_key(&self) -> Result<String> {
        let k: ruang_proto::PushKey = self.send(self.http.get(self.url("v1/push/key"))).await?;
        Ok(k.vapid_public_key)
    }

    /// Registers a push endpoint with the receiver's RFC 8291 keys.
    pub async fn add_push_subscription(
        &self,
        req: &ruang_proto::PushSubscriptionRequest,
    ) -> Result<()> {
        self.send_empty(self.post("v1/push/subscriptions", req))
            .await
    }

    /// Forgets one of the caller's push endpoints (idempotent).
    pub async fn remove_push_subscription(&self, endpoint: &str) -> Result<()> {
        let body = serde_json::json!({ "endpoint": endpoint });
        self.send_empty(
            self.http
                .delete(self.url("v1/push/subscriptions"))
                .json(&body),
        )
        .await
    }

    pub async fn set_notification_settings(
        &self,
        s: &NotificationSettings,
    ) -> Result<NotificationSettings> {
        self.send(self.http.put(self.url("v1/notifications/settings")).json(s))
            .await
    }

    // ----- replays and clips -----

    /// A recorded room's replay (`replay_not_ready` while the room is live).
    pub async fn replay(&self, room: &str, link_token: Option<&str>) -> Result<Replay> {
        let mut u = self.url(&format!("v1/rooms/{}/replay", enc(room)));
        if let Some(t) = link_token {
            u.query_pairs_mut().append_pair("t", t);
        }
        self.send(self.http.get(u)).await
    }

    /// The replay's Ogg Opus file.
    pub async fn download_replay(&self, room: &str, link_token: Option<&str>) -> Result<Vec<u8>> {
        let mut u = self.url(&format!("media/replays/{}.ogg", enc(room)));
        if let Some(t) = link_token {
            u.query_pairs_mut().append_pair("t", t);
        }
        let resp = self
            .finish(self.http.get(u).timeout(Duration::from_secs(600)))
            .await?;
        Ok(resp.bytes().await?.to_vec())
    }

    /// The host deletes a replay.
    pub async fn delete_replay(&self, room: &str) -> Result<()> {
        self.send_empty(
            self.http
                .delete(self.url(&format!("v1/rooms/{}/replay", enc(room)))),
        )
        .await
    }

    /// The replays of rooms `handle` hosted that the caller may see.
    pub async fn user_replays(&self, handle: &str) -> Result<Vec<Replay>> {
        self.send(
            self.http
                .get(self.url(&format!("v1/users/{}/replays", enc(handle)))),
        )
        .await
    }

    /// Clips the last 30 s of a live room.
    pub async fn clip(&self, room: &str) -> Result<Clip> {
        self.send(
            self.http
                .post(self.url(&format!("v1/rooms/{}/clips", enc(room)))),
        )
        .await
    }
}

mod safety;

/// Percent-encodes one path segment.
fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A room link `…/r/ROOM[?t=TOKEN]` split into (room id, link token).
pub fn parse_room_link(link: &str) -> Option<(String, Option<String>)> {
    let u = Url::parse(link).ok()?;
    let mut segs = u.path_segments()?;
    let (first, id) = match u.scheme() {
        // ruang://r/ROOM: the host is the first segment.
        "ruang" => (u.host_str()?.to_owned(), segs.next()?.to_owned()),
        _ => {
            let segs: Vec<&str> = segs.filter(|s| !s.is_empty()).collect();
            let n = segs.len();
            if n < 2 {
                return None;
            }
            (segs[n - 2].to_owned(), segs[n - 1].to_owned())
        }
    };
    if first != "r" || id.is_empty() {
        return None;
    }
    let token = u
        .query_pairs()
        .find(|(k, _)| k == "t")
        .map(|(_, v)| v.into_owned());
    Some((id, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_url_and_links() {
        let c = ApiClient::new("https://ruang.example/base").unwrap();
        assert_eq!(
            c.ws_url("abc").as_str(),
            "wss://ruang.example/base/v1/rooms/abc/ws"
        );
        assert!(ApiClient::new("ftp://x").is_err());
        assert_eq!(
            parse_room_link("https://ruang.example/r/abc?t=xyz"),
            Some(("abc".into(), Some("xyz".into())))
        );
        assert_eq!(parse_room_link("ruang://r/abc"), Some(("abc".into(), None)));
        assert_eq!(parse_room_link("https://ruang.example/i/abc"), None);
    }
}
