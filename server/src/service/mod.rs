//! HTTP API and WebSocket signalling.

mod admin;
pub mod cluster;
mod cluster_media;
mod e2ee;
mod error;
mod guest;
mod http;
pub mod listener;
mod media;
mod metrics;
pub mod notify;
mod pages;
pub mod push;
mod ratelimit;
mod replays;
mod safety;
mod social;
mod text;
mod ws;

/// The link pages' input parsers, for the fuzz targets (`fuzz/`).
#[cfg(feature = "fuzzing")]
pub use pages::{plausible, query_value};

pub use error::ApiError;
pub use metrics::Metrics;
/// New reports a member may file per hour.
pub use safety::REPORTS_PER_HOUR;

use crate::rooms::Registry;
use crate::sfu::Sfu;
use crate::store::Store;
use crate::Config;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::Router;
use ratelimit::RateLimiter;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

pub struct AppInner {
    pub store: Store,
    pub registry: Arc<Registry>,
    pub sfu: Sfu,
    pub public_url: String,
    pub invites_per_user: u32,
    pub max_body_bytes: usize,
    pub trust_forwarded_for: bool,
    /// The body of `/.well-known/assetlinks.json`.
    pub assetlinks: serde_json::Value,
    pub limiter: RateLimiter,
    /// Guest passes handed out per address (each one counts).
    pub guest_limiter: RateLimiter,
    pub guests: Arc<guest::Guests>,
    pub max_guests: usize,
    pub metrics: Metrics,
    /// Open TCP connections (the accept loop's caps).
    pub connections: Arc<listener::ConnCounter>,
    /// Revoked sessions, announced to live WebSockets so they close at once.
    pub revocations: tokio::sync::broadcast::Sender<Revocation>,
    pub max_live_rooms_per_member: u32,
    /// Where photos are kept (`DATA/media` by default).
    pub media_dir: std::path::PathBuf,
    pub max_avatar_bytes: usize,
    /// Push delivery (VAPID key, HTTP client).
    pub pusher: Arc<push::Pusher>,
    /// Photo uploads per address per minute (each one counts).
    pub photo_limiter: RateLimiter,
    /// Browser "Notify me" subscriptions per address per minute (each one counts).
    pub web_push_limiter: RateLimiter,
    /// Photos decoded at once (each may take up to 256 MiB while it is decoded).
    pub photo_decodes: Arc<tokio::sync::Semaphore>,
    /// Cluster mode: membership, leases, the cluster key.
    pub cluster: Option<crate::cluster::Cluster>,
    /// Requests to other nodes (cluster mode).
    pub node_http: reqwest::Client,
    /// Cluster mode: rooms other nodes own whose members' media this node serves.
    pub edges: Arc<crate::sfu::cascade::EdgeRooms>,
    pub cascade_metrics: Arc<crate::sfu::cascade::CascadeMetrics>,
    /// Recording, replays and clips.
    pub replays: Arc<crate::replay::Replays>,
    /// Clips taken per member per minute.
    pub clip_limiter: replays::ClipLimiter,
    /// The operator's TURN server, whose credentials each welcome carries.
    pub turn: Option<crate::sfu::turn::TurnConfig>,
}

/// A session (or all of a member's sessions) that stopped being valid.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Revocation {
    /// One session, by the SHA-256 of its token.
    Session(String),
    /// Every session of a member.
    AllOf(ruang_proto::UserId),
    /// An admin banned a member: every session closes and every node takes them out of
    /// its live rooms (`docs/safety.md`).
    Banned(ruang_proto::UserId),
}

impl std::ops::Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl AppState {
    /// Announces a revocation to this node's live WebSockets and (cluster mode) to every
    /// other node's, over Redis.
    pub async fn revoke(&self, revocation: Revocation) {
        let _ = self.revocations.send(revocation.clone());
        if let Some(cluster) = &self.cluster {
            let sent = match serde_json::to_string(&revocation) {
                Ok(json) => cluster.publish(crate::cluster::REVOCATIONS, json).await,
                Err(e) => Err(e.into()),
            };
            if let Err(e) = sent {
                tracing::warn!(error = %e, "cluster: could not announce a revocation to the other nodes");
            }
        }
    }

    #[allow(clippy::too_many_arguments)] // the server's parts, each built in `Server::start`
    pub fn new(
        store: Store,
        registry: Arc<Registry>,
        sfu: Sfu,
        config: &Config,
        public_url: &str,
        pusher: Arc<push::Pusher>,
        cluster: Option<crate::cluster::Cluster>,
        replays: Arc<crate::replay::Replays>,
    ) -> Self {
        AppState(Arc::new(AppInner {
            store,
            registry,
            sfu,
            public_url: public_url.to_owned(),
            invites_per_user: config.invites_per_user,
            max_body_bytes: config.max_body_bytes,
            trust_forwarded_for: config.trust_forwarded_for,
            assetlinks: http::assetlinks(
                &config.android_package,
                &config.android_cert_fingerprints,
            ),
            limiter: RateLimiter::new(config.auth_failures_per_minute),
            guest_limiter: RateLimiter::new(config.guest_joins_per_minute),
            guests: Arc::new(guest::Guests::default()),
            max_guests: config.max_guests,
            metrics: Metrics::default(),
            connections: Arc::new(listener::ConnCounter::default()),
            revocations: tokio::sync::broadcast::channel(256).0,
            max_live_rooms_per_member: config.max_live_rooms_per_member,
            media_dir: config
                .media_dir
                .clone()
                .unwrap_or_else(|| config.data_dir.join("media")),
            max_avatar_bytes: config.max_avatar_bytes,
            pusher,
            photo_limiter: RateLimiter::new(config.photo_uploads_per_minute),
            web_push_limiter: RateLimiter::new(push::WEB_SUBSCRIPTIONS_PER_MINUTE),
            photo_decodes: Arc::new(tokio::sync::Semaphore::new(media::MAX_CONCURRENT_DECODES)),
            cluster,
            node_http: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(3))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            edges: Arc::default(),
            cascade_metrics: Arc::default(),
            replays,
            clip_limiter: replays::ClipLimiter::default(),
            turn: config.turn.clone(),
        }))
    }
}

pub fn router(state: AppState) -> Router {
    let max_body = state.max_body_bytes;
    let max_avatar = state.max_avatar_bytes;
    Router::new()
        .route("/healthz", get(http::healthz))
        .route("/.well-known/assetlinks.json", get(http::serve_assetlinks))
        .route("/metrics", get(metrics::render))
        .route("/v1/signup", post(http::signup))
        .route("/v1/logout", post(http::logout))
        .route("/v1/logout-all", post(http::logout_all))
        .route("/v1/me", get(http::me).patch(http::update_me))
        .route(
            "/v1/me/avatar",
            put(media::put_avatar)
                .delete(media::delete_avatar)
                .layer(DefaultBodyLimit::max(max_avatar)),
        )
        .route("/media/avatars/{file}", get(media::get_avatar))
        .route("/v1/users/{handle}", get(http::user_profile))
        .route("/v1/users/{handle}/followers", get(social::followers))
        .route("/v1/users/{handle}/following", get(social::following))
        .route("/v1/users/{handle}/invited", get(social::invited))
        .route(
            "/v1/events",
            get(social::upcoming).post(social::create_event),
        )
        .route(
            "/v1/events/{id}",
            get(social::get_event)
                .patch(social::update_event)
                .delete(social::cancel_event),
        )
        .route(
            "/v1/events/{id}/notify",
            post(social::notify_me).delete(social::unnotify_me),
        )
        .route("/v1/events/{id}/start", post(social::start_event))
        .route(
            "/v1/events/{id}/web-push",
            post(push::event_web_subscribe).delete(push::event_web_unsubscribe),
        )
        .route("/v1/search", get(social::search))
        .route("/v1/push/key", get(push::key))
        .route(
            "/v1/push/subscriptions",
            get(push::list)
                .post(push::subscribe)
                .delete(push::unsubscribe),
        )
        .route("/v1/notifications", get(social::notifications))
        .route("/v1/notifications/read", post(social::mark_read))
        .route(
            "/v1/notifications/settings",
            get(social::get_settings).put(social::put_settings),
        )
        .route("/e/{id}", get(pages::event))
        .route(
            "/v1/users/{handle}/follow",
            post(http::follow).delete(http::unfollow),
        )
        .route(
            "/v1/invites",
            get(http::list_invites).post(http::create_invite),
        )
        .route(
            "/v1/invites/{code}",
            get(http::check_invite).delete(http::revoke_invite),
        )
        .route("/v1/rooms", get(http::hallway).post(http::create_room))
        .route("/v1/rooms/{id}", get(http::room))
        .route("/v1/rooms/{id}/access", post(http::grant_access))
        .route("/v1/rooms/{id}/guest", post(guest::create_pass))
        .route("/v1/rooms/{id}/ws", get(ws::upgrade))
        .route("/r/{id}", get(pages::room))
        .route(
            "/v1/rooms/{id}/replay",
            get(replays::get_replay).delete(replays::delete_replay),
        )
        .route("/v1/rooms/{id}/clips", post(replays::create_clip))
        // End-to-end encrypted rooms: the MLS relay (docs/protocol.md §15).
        .route(
            "/v1/rooms/{id}/mls/commits",
            post(e2ee::post_commit).layer(DefaultBodyLimit::max(e2ee::COMMIT_BODY_MAX)),
        )
        .route("/v1/rooms/{id}/mls/commits/{epoch}", get(e2ee::get_commit))
        .route("/v1/rooms/{id}/mls/welcome", get(e2ee::get_welcome))
        .route("/v1/users/{handle}/replays", get(replays::user_replays))
        .route("/media/replays/{file}", get(replays::replay_file))
        .route("/media/clips/{file}", get(replays::clip_file))
        .route("/c/{id}", get(replays::clip_page))
        .route("/web/replay.js", get(replays::replay_script))
        .route("/v1/admin/cluster", get(cluster::admin_view))
        // Moderation and safety (docs/safety.md).
        .route(
            "/v1/users/{handle}/block",
            post(safety::block).delete(safety::unblock),
        )
        .route("/v1/me/blocks", get(safety::my_blocks))
        .route("/v1/reports", post(safety::report))
        .merge(admin::routes())
        .route("/internal/v1/rooms", get(cluster::internal_views))
        .route(
            "/internal/v1/media/{kind}/{name}",
            get(cluster_media::internal_media),
        )
        .route(
            "/internal/v1/rooms/{id}/adopt",
            post(cluster::internal_adopt),
        )
        .route(
            "/internal/v1/rooms/{id}/spool",
            put(cluster::internal_spool).layer(DefaultBodyLimit::max(cluster::SPOOL_MAX)),
        )
        .route("/i/{code}", get(pages::invite))
        .route("/web/room.js", get(pages::script))
        .route("/web/report.js", get(pages::report_script))
        .route("/web/sframe.js", get(pages::sframe_worker))
        .route("/web/room.css", get(pages::style))
        .route("/web/notify.js", get(pages::notify_script))
        .route("/web/sw.js", get(pages::service_worker))
        .fallback(pages::fallback)
        .method_not_allowed_fallback(http::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cluster::route,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::count_requests,
        ))
        .layer(axum::middleware::map_response(close_after_refused_body))
        .with_state(state)
}

/// A body refused for its size was not read to its end, so the connection cannot carry
/// another request: say so (RFC 9112 §9.6), or a client would reuse it and see its next
/// request fail.
async fn close_after_refused_body(mut res: axum::response::Response) -> axum::response::Response {
    if res.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        res.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    res
}
