//! Cluster mode in the service layer: any node takes any request.
//!
//! - Room requests (`/v1/rooms/{id}…`, the room WebSocket, `/r/{id}`) run on the room's
//!   owner: another node forwards them there (HTTP as a reverse proxy, the WebSocket frame by
//!   frame), signed with the cluster key and carrying the client's address. A live room nobody
//!   owns (its owner died) is taken over by the node the request reached.
//! - New rooms go to the least-loaded node (`POST /v1/rooms` is forwarded there).
//! - Views that span rooms (hallway, profiles, search) ask every node for its rooms.
//! - Background: heartbeat and lease renewal, adoption of orphaned rooms, draining.

use super::http::Authed;
use super::{ApiError, AppState};
use crate::cluster::auth::{Forwarded, HEADER};
use crate::cluster::{Cluster, NodeInfo, ADOPT_EVERY, RENEW_EVERY};
use crate::rooms::hallway::RoomView;
use crate::sfu::cascade::EdgeRoom;
use crate::sfu::MediaRoom;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{SinkExt, StreamExt};
use ruang_proto::{CloseReason, ErrorCode, RoomId, ServerMessage, UserId};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

type ApiResult<T> = Result<T, ApiError>;

/// A forwarded request or view query waits this long for the other node.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(15);
const VIEWS_TIMEOUT: Duration = Duration::from_secs(2);

/// Headers that describe one hop, not the request (RFC 9110 §7.6.1), plus ours.
const HOP_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "content-length",
    HEADER,
];

/// Which room a request is about, if it must run on the room's owner.
fn room_of(path: &str) -> Option<RoomId> {
    let rest = path
        .strip_prefix("/v1/rooms/")
        .or_else(|| path.strip_prefix("/r/"))?;
    let id = rest.split('/').next()?;
    (!id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| RoomId(id.to_owned()))
}

fn unavailable(message: &str) -> Response {
    let mut r = ApiError::new(ErrorCode::Unavailable, message).into_response();
    r.headers_mut()
        .insert("retry-after", HeaderValue::from_static("1"));
    r
}

/// The routing middleware (cluster mode only; a no-op otherwise).
pub async fn route(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(cluster) = state.cluster.clone() else {
        return next.run(req).await;
    };
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    // A request another node forwarded runs here, as it is.
    if let Some(value) = req.headers().get(HEADER) {
        let checked = value.to_str().ok().and_then(|v| {
            cluster
                .key()
                .verify(v, req.method().as_str(), &path_and_query)
        });
        return match checked {
            Some(fwd) => {
                req.extensions_mut().insert(fwd);
                if let Some(room) = room_of(req.uri().path()) {
                    settle(&state, &cluster, &room).await;
                    if handing_over(&state, &cluster, &room) {
                        return unavailable("the room is moving to another server; try again");
                    }
                }
                next.run(req).await
            }
            None => ApiError::new(
                ErrorCode::Unauthorized,
                "this node-to-node request is not signed with the cluster key",
            )
            .into_response(),
        };
    }
    if req.uri().path().starts_with("/internal/") {
        return ApiError::new(ErrorCode::NotFound, "no such endpoint").into_response();
    }
    let ip = super::http::client_ip_of_request(&req, state.trust_forwarded_for);
    // New rooms: on the least-loaded node.
    if req.method() == Method::POST && req.uri().path() == "/v1/rooms" {
        match cluster.least_loaded().await {
            Ok(Some(node)) if node.id != cluster.node_id() => {
                return forward_http(&state, &cluster, &node, ip, req).await
            }
            Ok(_) => return next.run(req).await,
            Err(e) => {
                tracing::warn!(error = %e, "placement: Redis unavailable, creating here");
                return next.run(req).await;
            }
        }
    }
    let Some(room) = room_of(req.uri().path()) else {
        return next.run(req).await;
    };
    // Ours and loaded: no need to ask Redis (a lease lost in the last half second is
    // caught by the fencing token at the next write).
    if cluster.holds(&room) && state.registry.get(&room).is_some() {
        return next.run(req).await;
    }
    match owner_node(&state, &cluster, &room).await {
        Ok(Where::Here) => {
            settle(&state, &cluster, &room).await;
            if handing_over(&state, &cluster, &room) {
                return unavailable("the room is moving to another server; try again");
            }
            next.run(req).await
        }
        Ok(Where::Node(node)) => {
            if is_websocket(req.headers()) {
                forward_ws(state, cluster, node, ip, req).await
            } else {
                forward_http(&state, &cluster, &node, ip, req).await
            }
        }
        Ok(Where::Moving) => unavailable("the room is moving to another server; try again"),
        Err(e) => {
            tracing::warn!(room = %room, error = %e, "cluster lookup failed");
            unavailable("the cluster's shared state is unreachable; try again")
        }
    }
}

enum Where {
    Here,
    Node(NodeInfo),
    /// Owned by a node that stopped answering; its lease has not expired yet.
    Moving,
}

async fn owner_node(state: &AppState, cluster: &Cluster, room: &RoomId) -> anyhow::Result<Where> {
    for _ in 0..2 {
        match cluster.owner(room).await? {
            Some(o) if o.node == cluster.node_id() => return Ok(Where::Here),
            Some(o) => {
                return Ok(match cluster.node(&o.node).await? {
                    Some(n) => Where::Node(n),
                    None => Where::Moving,
                })
            }
            None => {
                // Nobody owns it: ended (answered here from the store) or orphaned (taken
                // over here). A lost race means another node just took it: look again.
                if adopt(state, cluster, room).await? || cluster.owner(room).await?.is_none() {
                    return Ok(Where::Here);
                }
            }
        }
    }
    Ok(Where::Moving)
}

/// Takes over a live room nobody owns, from the database; true if it is live here now.
pub async fn adopt(state: &AppState, cluster: &Cluster, room: &RoomId) -> anyhow::Result<bool> {
    if state.registry.get(room).is_some() && cluster.holds(room) {
        return Ok(true);
    }
    let Some(fence) = cluster.claim(&state.store, room).await? else {
        return Ok(false);
    };
    let loaded = state.store.load_live_room(room).await;
    let taken = match loaded {
        Ok(Some(loaded)) => {
            let live = state.registry.restore(loaded, Some(fence));
            tracing::info!(room = %room, fence, ended = live.ended(), "took the room over");
            true
        }
        Ok(None) => {
            cluster.release(room).await;
            false
        }
        Err(e) => {
            cluster.acquired(room);
            cluster.release(room).await;
            return Err(e.into());
        }
    };
    cluster.acquired(room);
    Ok(taken)
}

/// A draining node has let the room go from its registry but still holds its lease (it is
/// handing the recording over before releasing it): a request for the room must be tried
/// again, not told the room is gone (a client would take "not found" as final).
fn handing_over(state: &AppState, cluster: &Cluster, room: &RoomId) -> bool {
    cluster.is_draining() && cluster.holds(room) && state.registry.get(room).is_none()
}

/// Longest a request waits for a room this node is taking over to be loaded.
const SETTLE_WAIT: Duration = Duration::from_secs(3);

/// Before a room request runs here: if this node is taking the room (reserved, or leased
/// and loading), waits until its state is in the registry, so a client that reconnects
/// during a takeover is not told the room is gone.
async fn settle(state: &AppState, cluster: &Cluster, room: &RoomId) {
    let deadline = tokio::time::Instant::now() + SETTLE_WAIT;
    while state.registry.get(room).is_none()
        && cluster.holds_or_acquiring(room)
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get("upgrade")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn signed(cluster: &Cluster, ip: IpAddr, method: &Method, path_and_query: &str) -> HeaderValue {
    HeaderValue::from_str(&cluster.key().sign(
        cluster.node_id(),
        ip,
        method.as_str(),
        path_and_query,
    ))
    .expect("ASCII header")
}

/// Sends an HTTP request on to `node` and its answer back.
async fn forward_http(
    state: &AppState,
    cluster: &Cluster,
    node: &NodeInfo,
    ip: IpAddr,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    // A posted MLS commit may be far bigger than other requests (its route's own limit).
    let limit = if parts.uri.path().ends_with("/mls/commits") {
        super::e2ee::COMMIT_BODY_MAX
    } else {
        state.max_body_bytes
    };
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(ErrorCode::PayloadTooLarge, "the request body is too large")
                .into_response()
        }
    };
    let method = match reqwest::Method::from_bytes(parts.method.as_str().as_bytes()) {
        Ok(m) => m,
        Err(_) => return ApiError::code(ErrorCode::BadRequest).into_response(),
    };
    let mut out = state
        .node_http
        .request(method, format!("{}{}", node.url, path_and_query))
        .timeout(FORWARD_TIMEOUT)
        .body(body);
    for (name, value) in parts.headers.iter() {
        if !HOP_HEADERS.contains(&name.as_str()) {
            out = out.header(name.as_str(), value.as_bytes());
        }
    }
    out = out.header(
        HEADER,
        signed(cluster, ip, &parts.method, &path_and_query).as_bytes(),
    );
    let answer = match out.send().await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(node = %node.id, error = %e, "forwarding a request failed");
            return unavailable("the server running this room did not answer; try again");
        }
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut headers = HeaderMap::new();
    for (name, value) in answer.headers() {
        if HOP_HEADERS.contains(&name.as_str()) {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(n, v);
        }
    }
    match answer.bytes().await {
        Ok(bytes) => (status, headers, Body::from(bytes)).into_response(),
        Err(_) => unavailable("the server running this room did not answer; try again"),
    }
}

/// Bridges a room WebSocket to the owner node, frame by frame: the owner runs the room,
/// this node carries its frames and serves the member's media itself (an edge of the room:
/// `sfu::cascade`), so one room's listeners spread over every node.
async fn forward_ws(
    state: AppState,
    cluster: Cluster,
    node: NodeInfo,
    ip: IpAddr,
    req: Request,
) -> Response {
    use axum::extract::FromRequestParts;
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let Some(room) = room_of(req.uri().path()) else {
        return ApiError::code(ErrorCode::NotFound).into_response();
    };
    let (mut parts, _) = req.into_parts();
    let ws = match axum::extract::ws::WebSocketUpgrade::from_request_parts(&mut parts, &state).await
    {
        Ok(ws) => ws,
        Err(e) => return e.into_response(),
    };
    let target = format!("{}{}", node.url.replacen("http", "ws", 1), path_and_query);
    let header = signed(&cluster, ip, &Method::GET, &path_and_query);
    super::ws::limits(ws).on_upgrade(move |client| async move {
        state.metrics.ws_connections.fetch_add(1, Ordering::Relaxed);
        state.metrics.ws_forwarded.fetch_add(1, Ordering::Relaxed);
        bridge(&state, room, client, &target, header).await;
        state.metrics.ws_connections.fetch_sub(1, Ordering::Relaxed);
    })
}

/// Media offers a bridged connection may make per [`OFFER_WINDOW`] (each replaces its peer).
const OFFERS_PER_WINDOW: u32 = 10;
const OFFER_WINDOW: Duration = Duration::from_secs(10);

/// What one bridged connection knows and holds on this node.
struct Bridged {
    room: RoomId,
    /// The member, from the owner's `welcome` (the owner checked the token).
    you: Option<UserId>,
    conn: u64,
    /// The edge room, while this connection has media here.
    edge: Option<Arc<EdgeRoom>>,
    edge_events: Option<tokio::sync::broadcast::Receiver<crate::rooms::Dispatch>>,
    offers: (tokio::time::Instant, u32),
}

fn text_frame(msg: &ServerMessage) -> axum::extract::ws::Message {
    axum::extract::ws::Message::Text(
        serde_json::to_string(msg)
            .expect("server messages serialize")
            .into(),
    )
}

impl Bridged {
    /// A `media_offer` the client sent: answered by this node's SFU.
    async fn media_offer(
        &mut self,
        state: &AppState,
        req: Option<u64>,
        sdp: String,
    ) -> ServerMessage {
        let error = |code, message: String| ServerMessage::Error {
            req,
            code,
            message,
            fatal: false,
        };
        let Some(you) = self.you.clone() else {
            return error(ErrorCode::HelloRequired, "say hello first".into());
        };
        let now = tokio::time::Instant::now();
        if now.duration_since(self.offers.0) > OFFER_WINDOW {
            self.offers = (now, 0);
        }
        self.offers.1 += 1;
        if self.offers.1 > OFFERS_PER_WINDOW {
            return error(
                ErrorCode::RateLimited,
                "too many media offers; wait a moment".into(),
            );
        }
        let edge = self
            .edge
            .get_or_insert_with(|| state.edges.get_or_make(&self.room))
            .clone();
        if self.edge_events.is_none() {
            self.edge_events = Some(edge.subscribe());
        }
        match state
            .sfu
            .offer(MediaRoom::Edge(edge), you, self.conn, sdp)
            .await
        {
            Ok(sdp) => ServerMessage::MediaAnswer { req, sdp },
            Err(message) => error(ErrorCode::BadRequest, message),
        }
    }

    /// The next output of the edge room for this connection (pends while it has none).
    async fn edge_event(&mut self) -> Option<crate::rooms::Dispatch> {
        match &mut self.edge_events {
            Some(rx) => loop {
                match rx.recv().await {
                    Ok(d) => return Some(d),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return None,
                }
            },
            None => std::future::pending().await,
        }
    }
}

async fn bridge(
    state: &AppState,
    room: RoomId,
    mut client: axum::extract::ws::WebSocket,
    target: &str,
    header: HeaderValue,
) {
    use axum::extract::ws::Message as C;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message as U;
    let bye = ServerMessage::Closing {
        reason: CloseReason::ServerShutdown,
    };
    let upstream = async {
        let mut request = target.into_client_request()?;
        request.headers_mut().insert(HEADER, header);
        let (ws, _) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_tungstenite::connect_async(request),
        )
        .await
        .map_err(|_| tokio_tungstenite::tungstenite::Error::ConnectionClosed)??;
        Ok::<_, tokio_tungstenite::tungstenite::Error>(ws)
    }
    .await;
    let upstream = match upstream {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(target, error = %e, "cannot reach the room's owner node");
            // Like a restart: the client reconnects with backoff, by then the room has moved.
            let _ = client.send(text_frame(&bye)).await;
            let _ = client.send(C::Close(None)).await;
            return;
        }
    };
    let (mut up_tx, mut up_rx) = upstream.split();
    let (mut down_tx, mut down_rx) = client.split();
    let mut b = Bridged {
        room: room.clone(),
        you: None,
        conn: state.registry.next_conn_id(),
        edge: None,
        edge_events: None,
        offers: (tokio::time::Instant::now(), 0),
    };
    // Whether the owner said goodbye itself (`closing`); if not, it died.
    let mut owner_said_bye = false;
    let mut client_left = false;
    loop {
        tokio::select! {
            m = down_rx.next() => {
                let m = match m {
                    Some(Ok(C::Text(t))) => {
                        if t.contains("media_offer") {
                            if let Ok(env) = serde_json::from_str::<ruang_proto::ClientEnvelope>(t.as_str()) {
                                if let ruang_proto::ClientMessage::MediaOffer { sdp } = env.msg {
                                    let answer = b.media_offer(state, env.req, sdp).await;
                                    if down_tx.send(text_frame(&answer)).await.is_err() {
                                        client_left = true;
                                        break;
                                    }
                                    continue;
                                }
                            }
                        }
                        U::Text(t.as_str().into())
                    }
                    Some(Ok(C::Binary(x))) => U::Binary(x),
                    Some(Ok(C::Ping(p))) => U::Ping(p),
                    Some(Ok(C::Pong(p))) => U::Pong(p),
                    Some(Ok(C::Close(_))) | Some(Err(_)) | None => {
                        client_left = true;
                        break;
                    }
                };
                if up_tx.send(m).await.is_err() {
                    break;
                }
            }
            m = up_rx.next() => {
                let m = match m {
                    Some(Ok(U::Text(t))) => {
                        if b.you.is_none() && t.starts_with("{\"type\":\"welcome\"") {
                            if let Ok(ServerMessage::Welcome { you, .. }) = serde_json::from_str(t.as_str()) {
                                b.you = Some(you);
                            }
                        }
                        if t.starts_with("{\"type\":\"closing\"") {
                            owner_said_bye = true;
                        }
                        C::Text(t.as_str().into())
                    }
                    Some(Ok(U::Binary(x))) => C::Binary(x),
                    Some(Ok(U::Ping(p))) => C::Ping(p),
                    Some(Ok(U::Pong(p))) => C::Pong(p),
                    Some(Ok(U::Frame(_))) => continue,
                    Some(Ok(U::Close(_))) | Some(Err(_)) | None => break,
                };
                if down_tx.send(m).await.is_err() {
                    client_left = true;
                    break;
                }
            }
            ev = b.edge_event() => {
                let Some(ev) = ev else { continue };
                if let crate::rooms::rules::Outgoing::MediaEnded { user, conn, reason } = &*ev {
                    if Some(user) == b.you.as_ref() && *conn == b.conn {
                        let msg = ServerMessage::MediaClosed { reason: (*reason).to_owned() };
                        if down_tx.send(text_frame(&msg)).await.is_err() {
                            client_left = true;
                            break;
                        }
                    }
                }
            }
        }
    }
    if let (Some(_), Some(you)) = (&b.edge, &b.you) {
        state.sfu.remove(&room, you, b.conn);
    }
    if client_left {
        let _ = up_tx.close().await;
    } else {
        if !owner_said_bye {
            // The owner went away without a word (it died): tell the client to reconnect,
            // which brings it to the node that takes the room over.
            let _ = down_tx.send(text_frame(&bye)).await;
        }
        let _ = down_tx.close().await;
    }
}

/// The live rooms the hallway, profiles and search consider, as `viewer` sees them: this
/// node's, plus (cluster mode) every other node's.
pub async fn live_views(state: &AppState, viewer: &UserId) -> Vec<RoomView> {
    let mut views: Vec<RoomView> = state
        .registry
        .all()
        .iter()
        .map(|r| r.view_for(viewer))
        .collect();
    let Some(cluster) = &state.cluster else {
        return views;
    };
    let nodes = match cluster.nodes().await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cluster: cannot list nodes; showing this node's rooms");
            return views;
        }
    };
    let asks = nodes
        .into_iter()
        .filter(|n| n.id != cluster.node_id())
        .map(|n| {
            let path = format!("/internal/v1/rooms?viewer={}", viewer.as_str());
            let header = signed(cluster, IpAddr::from([127, 0, 0, 1]), &Method::GET, &path);
            let req = state
                .node_http
                .get(format!("{}{}", n.url, path))
                .timeout(VIEWS_TIMEOUT)
                .header(HEADER, header.as_bytes());
            async move {
                let got = async { req.send().await?.error_for_status()?.json::<Vec<RoomView>>().await };
                match got.await {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(node = %n.id, error = %e, "cluster: a node's rooms are missing from this view");
                        Vec::new()
                    }
                }
            }
        });
    let seen: HashSet<RoomId> = views.iter().map(|v| v.id.clone()).collect();
    for more in futures_util::future::join_all(asks).await {
        views.extend(more.into_iter().filter(|v| !seen.contains(&v.id)));
    }
    views
}

/// Whether `room` is live anywhere in the cluster (here, or owned by another node as of the
/// last look, at most [`ADOPT_EVERY`] ago).
pub fn is_live(state: &AppState, room: &RoomId) -> bool {
    state.registry.get(room).is_some() || state.cluster.as_ref().is_some_and(|c| c.seen_live(room))
}

#[derive(Deserialize)]
pub struct ViewsQuery {
    viewer: String,
}

/// `GET /internal/v1/rooms?viewer=ID` (nodes only): this node's rooms for that viewer.
pub async fn internal_views(
    State(state): State<AppState>,
    fwd: Option<axum::Extension<Forwarded>>,
    Query(q): Query<ViewsQuery>,
) -> ApiResult<Json<Vec<RoomView>>> {
    if fwd.is_none() {
        return Err(ApiError::new(ErrorCode::NotFound, "no such endpoint"));
    }
    let viewer = UserId(q.viewer);
    Ok(Json(
        state
            .registry
            .all()
            .iter()
            .map(|r| r.view_for(&viewer))
            .collect(),
    ))
}

#[derive(Serialize)]
pub struct ClusterView {
    /// Whether this server runs in cluster mode.
    pub cluster: bool,
    /// The node that answered.
    pub node: String,
    pub nodes: Vec<NodeInfo>,
    /// Live rooms and the node that owns each (with its fencing token).
    pub rooms: Vec<RoomOwner>,
}

#[derive(Serialize)]
pub struct RoomOwner {
    pub room: RoomId,
    pub node: Option<String>,
    pub fence: Option<i64>,
}

/// `GET /v1/admin/cluster` (admins only).
pub async fn admin_view(
    State(state): State<AppState>,
    Authed(me): Authed,
) -> ApiResult<Json<ClusterView>> {
    if !me.is_admin {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only admins see the cluster",
        ));
    }
    let Some(cluster) = &state.cluster else {
        return Ok(Json(ClusterView {
            cluster: false,
            node: "single".into(),
            nodes: Vec::new(),
            rooms: state
                .registry
                .ids()
                .into_iter()
                .map(|room| RoomOwner {
                    room,
                    node: Some("single".into()),
                    fence: None,
                })
                .collect(),
        }));
    };
    let unavailable = |e: anyhow::Error| {
        ApiError::new(ErrorCode::Unavailable, format!("Redis is unreachable: {e}"))
    };
    let nodes = cluster.nodes().await.map_err(unavailable)?;
    let mut rooms = Vec::new();
    for room in state.store.live_room_ids().await?.into_iter().take(1000) {
        let owner = cluster.owner(&room).await.map_err(unavailable)?;
        rooms.push(RoomOwner {
            room,
            node: owner.as_ref().map(|o| o.node.clone()),
            fence: owner.map(|o| o.fence),
        });
    }
    Ok(Json(ClusterView {
        cluster: true,
        node: cluster.node_id().to_owned(),
        nodes,
        rooms,
    }))
}

/// Cluster mode, before a new room's row is written: reserves its lease, so no other node
/// adopts it before its creator's node has it.
pub async fn reserve_new_room(state: &AppState, room: &RoomId) -> ApiResult<()> {
    let Some(cluster) = &state.cluster else {
        return Ok(());
    };
    match cluster.reserve(room).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(ApiError::new(ErrorCode::Unavailable, "try again")),
        Err(e) => Err(ApiError::new(
            ErrorCode::Unavailable,
            format!("the cluster's shared state is unreachable: {e}"),
        )),
    }
}

/// Cluster mode, after the row is written: the room's fencing token (None on one node).
pub async fn confirm_new_room(state: &AppState, room: &RoomId) -> ApiResult<Option<i64>> {
    let Some(cluster) = &state.cluster else {
        return Ok(None);
    };
    let fail = |m: String| ApiError::new(ErrorCode::Unavailable, m);
    let fence = state
        .store
        .next_room_fence(room)
        .await?
        .ok_or_else(|| fail("the new room ended at once".into()))?;
    let confirmed = cluster.confirm(room, fence).await;
    if !matches!(confirmed, Ok(true)) {
        cluster.acquired(room);
    }
    match confirmed {
        Ok(true) => Ok(Some(fence)),
        Ok(false) => Err(fail("the new room's lease expired; try again".into())),
        Err(e) => Err(fail(format!(
            "the cluster's shared state is unreachable: {e}"
        ))),
    }
}

/// Cluster mode, once a new room is in the registry: it is no longer being acquired.
pub fn new_room_live(state: &AppState, room: &RoomId) {
    if let Some(cluster) = &state.cluster {
        cluster.acquired(room);
    }
}

/// Cluster mode's background work: heartbeat and lease renewal (rooms whose lease was lost
/// are let go at once), and adoption of live rooms whose owner died.
pub fn spawn_loops(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Some(cluster) = state.cluster.clone() else {
        return;
    };
    spawn_bus(&state, &cluster, stop.clone());
    let renew_state = state.clone();
    let renew_cluster = cluster.clone();
    let mut renew_stop = stop.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(RENEW_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = renew_cluster.rooms_changed() => {}
                _ = renew_stop.changed() => break,
            }
            let s = &renew_state;
            let connections = s.metrics.ws_connections.load(Ordering::Relaxed).max(0) as u64;
            let peers = s.sfu.metrics().peers.load(Ordering::Relaxed);
            if let Err(e) = renew_cluster.heartbeat(connections, peers).await {
                tracing::warn!(error = %e, "cluster heartbeat failed");
            }
            // Ended rooms give their lease back (not those still being loaded).
            for room in renew_cluster.held() {
                if s.registry.get(&room).is_none() && !renew_cluster.is_acquiring(&room) {
                    renew_cluster.release(&room).await;
                }
            }
            match renew_cluster.renew().await {
                Ok(lost) => {
                    for room in lost {
                        tracing::warn!(room = %room, "lost the room's lease; letting it go");
                        s.registry.release(&room);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cluster lease renewal failed"),
            }
        }
    });
    tokio::spawn(async move {
        let mut every = tokio::time::interval(ADOPT_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stop.changed() => break,
            }
            if cluster.is_draining() {
                continue;
            }
            let ids = match state.store.live_room_ids().await {
                Ok(ids) => ids,
                Err(e) => {
                    tracing::warn!(error = %e, "cluster: cannot list live rooms");
                    continue;
                }
            };
            cluster.set_seen_live(ids.iter().cloned().collect());
            for room in ids {
                if state.registry.get(&room).is_some() {
                    continue;
                }
                match cluster.owner(&room).await {
                    Ok(None) => {
                        if let Err(e) = adopt(&state, &cluster, &room).await {
                            tracing::warn!(room = %room, error = %e, "cluster: taking a room over failed");
                        }
                    }
                    Ok(Some(_)) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "cluster: Redis unavailable");
                        break;
                    }
                }
            }
        }
    });
}

/// The rate limiters whose failures the whole cluster counts, by bus name.
fn shared_limiters(state: &AppState) -> [(&'static str, &super::ratelimit::RateLimiter); 3] {
    [
        ("auth", &state.limiter),
        ("guest", &state.guest_limiter),
        ("photo", &state.photo_limiter),
    ]
}

/// The cluster bus (Redis pub/sub): revocations close the session's WebSockets on every
/// node; a failed attempt counted by one node's rate limiter counts on every node's, so an
/// address gets one window across the cluster rather than one per node.
fn spawn_bus(state: &AppState, cluster: &Cluster, stop: tokio::sync::watch::Receiver<bool>) {
    for (name, limiter) in shared_limiters(state) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<IpAddr>();
        limiter.share_failures(tx);
        let c = cluster.clone();
        tokio::spawn(async move {
            while let Some(ip) = rx.recv().await {
                let msg = format!("{name} {} {ip}", c.node_id());
                if let Err(e) = c.publish(crate::cluster::FAILURES, msg).await {
                    tracing::warn!(error = %e, "cluster: a failed attempt was not shared");
                }
            }
        });
    }
    let s = state.clone();
    let c = cluster.clone();
    tokio::spawn(async move {
        let me = c.node_id().to_owned();
        let handle = |channel: &str, payload: String| {
            if channel == crate::cluster::REVOCATIONS {
                match serde_json::from_str::<super::Revocation>(&payload) {
                    Ok(rev) => {
                        if let super::Revocation::Banned(user) = &rev {
                            // Banned on another node: out of this node's rooms too.
                            let (s, user) = (s.clone(), user.clone());
                            tokio::spawn(async move {
                                super::safety::expel_everywhere(&s, &user).await;
                            });
                        }
                        let _ = s.revocations.send(rev);
                    }
                    Err(e) => tracing::warn!(error = %e, "cluster: unreadable revocation"),
                }
            } else if channel == crate::cluster::BLOCKS {
                // A block made through another node: this node's rooms where the blocker
                // moderates lose the blocked member (the handling node did its own).
                let (s, blocker) = (s.clone(), ruang_proto::UserId::from(payload.as_str()));
                tokio::spawn(async move {
                    super::safety::blocker_rooms_apply(&s, &blocker).await;
                });
            } else if channel == crate::cluster::MEDIA_DELETED {
                let s = s.clone();
                tokio::spawn(async move {
                    super::cluster_media::on_deleted(&s, &payload).await;
                });
            } else if channel == crate::cluster::FAILURES {
                let mut parts = payload.split(' ');
                let (Some(name), Some(node), Some(ip)) = (parts.next(), parts.next(), parts.next())
                else {
                    return;
                };
                if node == me {
                    return; // counted here already
                }
                let Ok(ip) = ip.parse::<IpAddr>() else { return };
                for (n, limiter) in shared_limiters(&s) {
                    if n == name {
                        limiter.count_remote_failure(ip);
                    }
                }
            }
        };
        c.follow(
            &[
                crate::cluster::REVOCATIONS,
                crate::cluster::FAILURES,
                crate::cluster::BLOCKS,
                crate::cluster::MEDIA_DELETED,
            ],
            handle,
            stop,
        )
        .await
    });
}

/// Drains this node (SIGTERM in cluster mode): it takes no new rooms, hands each room it
/// owns to another node (the lease is released after the last write landed, and the room is
/// taken over at once by the least-loaded other node), tells its clients to reconnect, and
/// leaves the membership.
pub async fn drain(state: &AppState) {
    let Some(cluster) = &state.cluster else {
        return;
    };
    cluster.set_draining();
    let _ = cluster
        .heartbeat(
            state.metrics.ws_connections.load(Ordering::Relaxed).max(0) as u64,
            state.sfu.metrics().peers.load(Ordering::Relaxed),
        )
        .await;
    let rooms = cluster.held();
    tracing::info!(
        rooms = rooms.len(),
        "draining: handing rooms to other nodes"
    );
    // Recorded rooms: their recorders write what they hold and stop, so the spool goes
    // whole with the room (below) and its replay covers its time here too.
    for room in &rooms {
        if let Some(live) = state.registry.get(room) {
            if !state.replays.hand_over(&live, Duration::from_secs(2)).await {
                tracing::warn!(room = %room, "draining: the recorder did not stop in time");
            }
        }
    }
    for room in &rooms {
        // Out of the map first (clients are told to reconnect), then the writes land, then
        // the lease goes: whoever takes it loads the latest state.
        state.registry.release(room);
    }
    state.registry.flush().await;
    // Where each room goes. A recorded room's spool is there before the lease is released,
    // so the node that takes the room has it before its recorder can start.
    let others: Vec<NodeInfo> = match cluster.nodes().await {
        Ok(nodes) => nodes
            .into_iter()
            .filter(|n| n.id != cluster.node_id() && !n.draining)
            .collect(),
        Err(_) => Vec::new(),
    };
    let target = |i: usize| others.get(i % others.len().max(1));
    let mut spools_sent = vec![false; rooms.len()];
    for (i, room) in rooms.iter().enumerate() {
        let Some(node) = target(i) else { break };
        let spool = tokio::fs::read(state.replays.spool_path(room))
            .await
            .unwrap_or_default();
        if spool.is_empty() {
            continue;
        }
        let path = format!("/internal/v1/rooms/{}/spool", room.as_str());
        let header = signed(cluster, IpAddr::from([127, 0, 0, 1]), &Method::PUT, &path);
        spools_sent[i] = state
            .node_http
            .put(format!("{}{}", node.url, path))
            .timeout(SPOOL_TIMEOUT)
            .header(HEADER, header.as_bytes())
            .body(spool)
            .send()
            .await
            .is_ok_and(|r| r.status() == reqwest::StatusCode::NO_CONTENT);
        if !spools_sent[i] {
            tracing::warn!(room = %room, node = %node.id, "draining: the recording could not go with the room");
        }
    }
    for room in &rooms {
        cluster.release(room).await;
    }
    // Ask the others to take the rooms now rather than at their next look.
    for (i, room) in rooms.iter().enumerate() {
        let Some(node) = target(i) else { break };
        let path = format!("/internal/v1/rooms/{}/adopt", room.as_str());
        let header = signed(cluster, IpAddr::from([127, 0, 0, 1]), &Method::POST, &path);
        let adopted = state
            .node_http
            .post(format!("{}{}", node.url, path))
            .timeout(VIEWS_TIMEOUT)
            .header(HEADER, header.as_bytes())
            .send()
            .await
            .is_ok_and(|r| r.status() == reqwest::StatusCode::NO_CONTENT);
        if adopted && spools_sent[i] {
            // The adopting node goes on recording after it.
            let _ = tokio::fs::remove_file(state.replays.spool_path(room)).await;
            tracing::info!(room = %room, node = %node.id, "draining: the recording went with the room");
        }
    }
    if let Err(e) = cluster.leave().await {
        tracing::warn!(error = %e, "draining: could not leave the membership (it expires)");
    }
}

/// Longest a draining node waits for another to take a recorded room's spool.
const SPOOL_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest spool a draining node may hand over (about 8 hours of one speaker).
pub const SPOOL_MAX: usize = 128 << 20;

/// `PUT /internal/v1/rooms/{id}/spool` (nodes only): a draining node sends the recording
/// spool of a room it is about to hand to this node (while it still holds the room, so no
/// recorder here can have started): kept as the room's spool, this node's recorder goes on
/// after it. 409 if the room is live here already.
pub async fn internal_spool(
    State(state): State<AppState>,
    fwd: Option<axum::Extension<Forwarded>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    spool: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    if fwd.is_none() || state.cluster.is_none() || !crate::replay::valid_id(&id) {
        return Err(ApiError::new(ErrorCode::NotFound, "no such endpoint"));
    }
    let room = RoomId(id);
    if state.registry.get(&room).is_some() {
        return Ok(StatusCode::CONFLICT);
    }
    let path = state.replays.spool_path(&room);
    let written = tokio::task::spawn_blocking(move || {
        let dir = path.parent().expect("the spool directory");
        let name = path.file_name().expect("a file name").to_string_lossy();
        crate::replay::write_atomic(dir, &name, &spool)
    })
    .await;
    match written {
        Ok(Ok(())) => Ok(StatusCode::NO_CONTENT),
        _ => Err(ApiError::new(
            ErrorCode::Internal,
            "the spool could not be written",
        )),
    }
}

/// `POST /internal/v1/rooms/{id}/adopt` (nodes only): a draining node asks this one to
/// take a room over now.
pub async fn internal_adopt(
    State(state): State<AppState>,
    fwd: Option<axum::Extension<Forwarded>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> ApiResult<StatusCode> {
    let (Some(_), Some(cluster)) = (fwd, state.cluster.clone()) else {
        return Err(ApiError::new(ErrorCode::NotFound, "no such endpoint"));
    };
    match adopt(&state, &cluster, &RoomId(id)).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Ok(StatusCode::CONFLICT),
        Err(e) => Err(ApiError::new(ErrorCode::Unavailable, e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_paths_name_their_room() {
        assert_eq!(
            room_of("/v1/rooms/abc123/ws"),
            Some(RoomId("abc123".into()))
        );
        assert_eq!(room_of("/v1/rooms/abc123"), Some(RoomId("abc123".into())));
        assert_eq!(room_of("/r/abc123"), Some(RoomId("abc123".into())));
        assert_eq!(room_of("/v1/rooms"), None);
        assert_eq!(room_of("/v1/rooms/"), None);
        assert_eq!(room_of("/v1/rooms/../x"), None);
        assert_eq!(room_of("/v1/users/abc"), None);
    }
}
