//! HTTP handlers of `/v1`. Each validates input, checks permissions, and answers JSON.

use super::metrics::Metrics;
use super::social::full_profile;
use super::{ApiError, AppState};
use crate::store::{new_id, now_ms, AuthUser, StoredRoom};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::Json;
use ruang_proto::{
    normalize_invite_code, validate_handle, CreateRoomRequest, ErrorCode, GrantAccessRequest,
    Health, Invite, InviteCheck, Profile, ProfileUpdate, RoomId, RoomKind, RoomSummary,
    SessionResponse, SignupRequest,
};
use serde::de::DeserializeOwned;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

type ApiResult<T> = Result<T, ApiError>;

/// Client address for rate limiting: the TCP peer, or the first `X-Forwarded-For` entry
/// when the operator says a trusted proxy sets it.
pub fn client_ip(parts: &Parts, trust_forwarded_for: bool) -> IpAddr {
    ip_from(&parts.headers, &parts.extensions, trust_forwarded_for)
}

/// [`client_ip`] of a whole request.
pub fn client_ip_of_request(req: &axum::extract::Request, trust_forwarded_for: bool) -> IpAddr {
    ip_from(req.headers(), req.extensions(), trust_forwarded_for)
}

fn ip_from(
    headers: &axum::http::HeaderMap,
    extensions: &axum::http::Extensions,
    trust_forwarded_for: bool,
) -> IpAddr {
    // Forwarded by another node of the cluster (signed): the client it came from.
    if let Some(f) = extensions.get::<crate::cluster::auth::Forwarded>() {
        return f.client_ip;
    }
    if trust_forwarded_for {
        let forwarded = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok());
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// The client address (see [`client_ip`]).
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts, state.trust_forwarded_for)))
    }
}

/// Parses a JSON body with a clear error (our shape, not axum's plain-text rejection).
pub(super) fn parse_json<T: DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("invalid JSON body: {e}")))
}

/// A body read with the size limit mapped to our error.
pub struct Body(pub Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> ApiResult<Self> {
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(Body(b)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                "the request body is too large",
            )),
            Err(e) => Err(ApiError::new(ErrorCode::BadRequest, e.body_text())),
        }
    }
}

/// The signed-in caller, from `Authorization: Bearer TOKEN`.
pub struct Authed(pub AuthUser);

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let ip = client_ip(parts, state.trust_forwarded_for);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthorized,
                    "send the session token as Authorization: Bearer TOKEN",
                )
            })?;
        authenticate(state, ip, token).await.map(Authed)
    }
}

/// Checks a token, counting failures against the address.
/// Whom `user` follows and which closed rooms they may enter: what the hallway rules
/// (`rooms::hallway::Viewer`) need to know about a viewer.
pub(super) async fn viewer_sets(
    state: &AppState,
    user: &ruang_proto::UserId,
) -> ApiResult<(HashSet<ruang_proto::UserId>, HashSet<ruang_proto::RoomId>)> {
    let follows = state.store.followees(user).await?.into_iter().collect();
    let access = state
        .store
        .accessible_rooms(user)
        .await?
        .into_iter()
        .collect();
    Ok((follows, access))
}

pub async fn authenticate(state: &AppState, ip: IpAddr, token: &str) -> ApiResult<AuthUser> {
    let attempt = state.limiter.check(ip)?;
    match state.store.user_for_token(token).await? {
        Some(u) => Ok(u),
        None => {
            attempt.fail();
            Metrics::inc(&state.metrics.auth_failures);
            Err(ApiError::new(
                ErrorCode::Unauthorized,
                "unknown or revoked session token",
            ))
        }
    }
}

pub async fn healthz(State(state): State<AppState>) -> ApiResult<Json<Health>> {
    state.store.ping().await?;
    Ok(Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    }))
}

/// Digital Asset Links statement that lets the Android app open this server's `/r/` and
/// `/i/` links directly (verified App Links).
pub fn assetlinks(package: &str, fingerprints: &[String]) -> serde_json::Value {
    serde_json::json!([{
        "relation": ["delegate_permission/common.handle_all_urls"],
        "target": {
            "namespace": "android_app",
            "package_name": package,
            "sha256_cert_fingerprints": fingerprints,
        }
    }])
}

pub async fn serve_assetlinks(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.assetlinks.clone())
}

pub async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such endpoint")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, "method not allowed here")
}

fn validate_name(name: &str) -> ApiResult<String> {
    super::text::clean_text(name, "a name", 1, 50, false)
        .map_err(|m| ApiError::new(ErrorCode::InvalidField, m))
}

pub async fn signup(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<SessionResponse>)> {
    let attempt = state.limiter.check(ip)?;
    let req: SignupRequest = parse_json(&body)?;
    validate_handle(&req.handle).map_err(|m| ApiError::new(ErrorCode::InvalidHandle, m))?;
    let name = validate_name(&req.name)?;
    let code = normalize_invite_code(&req.invite);
    let result = state
        .store
        .signup(&code, &req.handle, &name, state.invites_per_user)
        .await;
    let (token, id) = match result {
        Ok(ok) => ok,
        Err(crate::store::StoreError::InvalidInvite) => {
            attempt.fail();
            Metrics::inc(&state.metrics.auth_failures);
            return Err(ApiError::code(ErrorCode::InvalidInvite));
        }
        Err(e) => return Err(e.into()),
    };
    Metrics::inc(&state.metrics.signups);
    let user = state.store.profile(&id, &id).await?;
    tracing::info!(handle = %user.handle, admin = user.is_admin, "new member");
    if let Some(inviter) = &user.invited_by {
        super::notify::send(
            &state,
            vec![crate::store::NewNotification {
                user: inviter.id.clone(),
                kind: ruang_proto::NotificationKind::InviteeJoined.as_str(),
                actor: Some(id.clone()),
                room: None,
                event: None,
            }],
        );
    }
    Ok((StatusCode::CREATED, Json(SessionResponse { token, user })))
}

pub async fn logout(State(state): State<AppState>, Authed(me): Authed) -> ApiResult<StatusCode> {
    state.store.revoke_session(&me.token_hash).await?;
    // Live WebSockets of this session close at once (a stolen token loses its powers).
    state
        .revoke(super::Revocation::Session(me.token_hash.clone()))
        .await;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn logout_all(
    State(state): State<AppState>,
    Authed(me): Authed,
) -> ApiResult<StatusCode> {
    state.store.revoke_all_sessions(&me.user.id).await?;
    state
        .revoke(super::Revocation::AllOf(me.user.id.clone()))
        .await;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn me(State(state): State<AppState>, Authed(me): Authed) -> ApiResult<Json<Profile>> {
    Ok(Json(full_profile(&state, &me, &me.user.id).await?))
}

/// Members host a few live rooms at once (admins any number).
pub(super) async fn check_room_limit(state: &AppState, me: &AuthUser) -> ApiResult<()> {
    let limit = state.max_live_rooms_per_member as usize;
    if me.is_admin {
        return Ok(());
    }
    let hosting = if state.cluster.is_some() {
        // Rooms live on every node: count them where they all are.
        state.store.live_rooms_created_by(&me.user.id).await? as usize
    } else {
        state
            .registry
            .all()
            .iter()
            .filter(|r| r.created_by() == me.user.id)
            .count()
    };
    if hosting >= limit {
        return Err(ApiError::new(
            ErrorCode::LimitReached,
            format!("you already host {limit} live rooms; end one first"),
        ));
    }
    Ok(())
}

pub async fn update_me(
    State(state): State<AppState>,
    Authed(me): Authed,
    Body(body): Body,
) -> ApiResult<Json<Profile>> {
    let update: ProfileUpdate = parse_json(&body)?;
    let name = update.name.as_deref().map(validate_name).transpose()?;
    let bio = update
        .bio
        .as_deref()
        .map(|b| super::text::clean_text(b, "a bio", 0, 500, true))
        .transpose()
        .map_err(|m| ApiError::new(ErrorCode::InvalidField, m))?;
    let links = update
        .links
        .as_deref()
        .map(super::social::clean_links)
        .transpose()
        .map_err(|m| ApiError::new(ErrorCode::InvalidField, m))?;
    state
        .store
        .update_profile(&me.user.id, name.as_deref(), bio.as_deref())
        .await?;
    if let Some(links) = links {
        state.store.set_links(&me.user.id, &links).await?;
    }
    Ok(Json(full_profile(&state, &me, &me.user.id).await?))
}

/// Looks a member up by handle; misses count like failed guesses, so handles cannot be
/// enumerated without limit.
pub(super) async fn lookup_handle(
    state: &AppState,
    ip: IpAddr,
    handle: &str,
) -> ApiResult<ruang_proto::UserSummary> {
    let attempt = state.limiter.check(ip)?;
    match state.store.user_by_handle(handle).await {
        Ok(u) => Ok(u),
        Err(crate::store::StoreError::NotFound) => {
            attempt.fail();
            Err(ApiError::new(
                ErrorCode::NotFound,
                "no member with this handle",
            ))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn user_profile(
    State(state): State<AppState>,
    Authed(me): Authed,
    ClientIp(ip): ClientIp,
    Path(handle): Path<String>,
) -> ApiResult<Json<Profile>> {
    let user = lookup_handle(&state, ip, &handle).await?;
    Ok(Json(full_profile(&state, &me, &user.id).await?))
}

pub async fn follow(
    State(state): State<AppState>,
    Authed(me): Authed,
    ClientIp(ip): ClientIp,
    Path(handle): Path<String>,
) -> ApiResult<Json<Profile>> {
    let user = lookup_handle(&state, ip, &handle).await?;
    if user.id == me.user.id {
        return Err(ApiError::new(
            ErrorCode::InvalidTarget,
            "you cannot follow yourself",
        ));
    }
    super::safety::check_follow(&state, &me.user.id, &user.id).await?;
    state.store.follow(&me.user.id, &user.id).await?;
    super::notify::send(
        &state,
        vec![crate::store::NewNotification {
            user: user.id.clone(),
            kind: ruang_proto::NotificationKind::FollowedYou.as_str(),
            actor: Some(me.user.id.clone()),
            room: None,
            event: None,
        }],
    );
    Ok(Json(full_profile(&state, &me, &user.id).await?))
}

pub async fn unfollow(
    State(state): State<AppState>,
    Authed(me): Authed,
    ClientIp(ip): ClientIp,
    Path(handle): Path<String>,
) -> ApiResult<Json<Profile>> {
    let user = lookup_handle(&state, ip, &handle).await?;
    state.store.unfollow(&me.user.id, &user.id).await?;
    Ok(Json(full_profile(&state, &me, &user.id).await?))
}

pub async fn list_invites(
    State(state): State<AppState>,
    Authed(me): Authed,
) -> ApiResult<Json<Vec<Invite>>> {
    Ok(Json(
        state
            .store
            .unused_invites(&me.user.id, &state.public_url)
            .await?,
    ))
}

/// Admins mint extra codes; members share the ones they got.
pub async fn create_invite(
    State(state): State<AppState>,
    Authed(me): Authed,
) -> ApiResult<(StatusCode, Json<Invite>)> {
    if !me.is_admin {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only admins create new invite codes",
        ));
    }
    let code = state.store.create_invite(&me.user.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(Invite {
            link: format!("{}/i/{code}", state.public_url),
            code,
            created_at: now_ms(),
        }),
    ))
}

pub async fn check_invite(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(code): Path<String>,
) -> ApiResult<Json<InviteCheck>> {
    let attempt = state.limiter.check(ip)?;
    match state
        .store
        .check_invite(&normalize_invite_code(&code))
        .await
    {
        Ok(c) => Ok(Json(c)),
        Err(crate::store::StoreError::InvalidInvite) => {
            attempt.fail();
            Metrics::inc(&state.metrics.auth_failures);
            Err(ApiError::code(ErrorCode::InvalidInvite))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn revoke_invite(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(code): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .revoke_invite(&me.user.id, &normalize_invite_code(&code))
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => ApiError::new(
                ErrorCode::NotFound,
                "no unused invite code of yours with that value",
            ),
            e => e.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn create_room(
    State(state): State<AppState>,
    Authed(me): Authed,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<RoomSummary>)> {
    let req: CreateRoomRequest = parse_json(&body)?;
    let title = super::text::clean_text(&req.title, "a room title", 1, 100, false)
        .map_err(|m| ApiError::new(ErrorCode::InvalidField, m))?;
    if req.e2ee && req.kind != RoomKind::Closed {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            "only closed rooms can be end-to-end encrypted (kind \"closed\")",
        ));
    }
    if req.e2ee && (req.record || req.clips) {
        return Err(ApiError::new(
            ErrorCode::Encrypted,
            "an end-to-end encrypted room cannot be recorded or clipped by the server",
        ));
    }
    check_room_limit(&state, &me).await?;
    let room = StoredRoom {
        id: RoomId(new_id()),
        title,
        kind: req.kind,
        created_by: me.user.id.clone(),
        link_token: crate::store::new_link_token(),
        hands_enabled: true,
        created_at: now_ms(),
    };
    super::cluster::reserve_new_room(&state, &room.id).await?;
    state.store.create_room(&room).await?;
    if req.e2ee {
        state.store.set_room_e2ee(&room.id).await?;
    }
    if req.record || req.clips {
        state
            .store
            .set_room_media(&room.id, req.record, req.clips)
            .await?;
    }
    let fence = super::cluster::confirm_new_room(&state, &room.id).await?;
    let live = state.registry.add_room(&room, me.user.clone(), fence);
    live.set_media_options(req.record, req.clips);
    if req.e2ee {
        live.set_e2ee();
    }
    state.replays.created(&live);
    super::cluster::new_room_live(&state, &room.id);
    Metrics::inc(&state.metrics.rooms_created);
    if room.kind != RoomKind::Closed {
        let followers = state.store.followers(&me.user.id).await?;
        super::notify::send(
            &state,
            followers
                .into_iter()
                .map(|u| crate::store::NewNotification {
                    user: u,
                    kind: ruang_proto::NotificationKind::RoomStarted.as_str(),
                    actor: Some(me.user.id.clone()),
                    room: Some(room.id.clone()),
                    event: None,
                })
                .collect(),
        );
    }
    tracing::info!(room = %room.id, kind = room.kind.as_str(), "room created");
    let summary = summary_for(&state, &live, &me, &HashSet::new(), &HashSet::new());
    Ok((StatusCode::CREATED, Json(summary)))
}

pub(super) fn summary_for(
    state: &AppState,
    room: &crate::rooms::LiveRoom,
    me: &AuthUser,
    follows: &HashSet<ruang_proto::UserId>,
    access: &HashSet<RoomId>,
) -> RoomSummary {
    let v = crate::rooms::hallway::Viewer {
        id: &me.user.id,
        follows,
        access,
    };
    room.view_for(&me.user.id).summary(&v, &state.public_url)
}

/// Rooms per hallway page, by default and at most.
const HALLWAY_PAGE: usize = 50;
const HALLWAY_PAGE_MAX: usize = 100;

/// `GET /v1/rooms[?limit=N][&cursor=C]`: one page of the caller's hallway; the
/// `x-next-cursor` header carries the cursor of the next page when there is one.
pub async fn hallway(
    State(state): State<AppState>,
    Authed(me): Authed,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> ApiResult<(axum::http::HeaderMap, Json<Vec<RoomSummary>>)> {
    let mut limit = HALLWAY_PAGE;
    let mut cursor = 0usize;
    for pair in query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = |what: &str| ApiError::new(ErrorCode::InvalidField, what.to_owned());
        match k {
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=HALLWAY_PAGE_MAX).contains(n))
                    .ok_or_else(|| bad("limit is a number from 1 to 100"))?
            }
            "cursor" => {
                cursor = v
                    .parse()
                    .map_err(|_| bad("cursor is the x-next-cursor of the previous page"))?
            }
            _ => {}
        }
    }
    let (follows, access) = viewer_sets(&state, &me.user.id).await?;
    let views = super::safety::visible_views(&state, &me.user.id).await?;
    let v = crate::rooms::hallway::Viewer {
        id: &me.user.id,
        follows: &follows,
        access: &access,
    };
    let all = crate::rooms::hallway::hallway(&views, &v, &state.public_url);
    let mut headers = axum::http::HeaderMap::new();
    let end = cursor.saturating_add(limit).min(all.len());
    if end < all.len() {
        headers.insert("x-next-cursor", end.into());
    }
    let page = all
        .into_iter()
        .skip(cursor)
        .take(end.saturating_sub(cursor))
        .collect();
    Ok((headers, Json(page)))
}

/// One live room, if the caller may see it (or has its link token in `?t=`).
pub async fn room(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> ApiResult<Json<RoomSummary>> {
    let room = state
        .registry
        .get(&RoomId(id))
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no live room with this id"))?;
    super::safety::check_join(&state, &room, &me.user.id).await?;
    let follows: HashSet<_> = state
        .store
        .followees(&me.user.id)
        .await?
        .into_iter()
        .collect();
    let mut access = HashSet::new();
    if q.get("t").is_some_and(|t| room.link_matches(t))
        || state.store.has_access(&room.id, &me.user.id).await?
    {
        access.insert(room.id.clone());
    }
    let view = room.view_for(&me.user.id);
    let v = crate::rooms::hallway::Viewer {
        id: &me.user.id,
        follows: &follows,
        access: &access,
    };
    // Social rooms are joinable by link; only closed rooms hide from people without access.
    if view.kind == RoomKind::Closed && !view.visible_to(&v) {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "no live room with this id",
        ));
    }
    Ok(Json(view.summary(&v, &state.public_url)))
}

/// A moderator lets a member into a closed room (it appears in their hallway).
pub async fn grant_access(
    State(state): State<AppState>,
    Authed(me): Authed,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Body(body): Body,
) -> ApiResult<StatusCode> {
    let req: GrantAccessRequest = parse_json(&body)?;
    let room = state
        .registry
        .get(&RoomId(id))
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no live room with this id"))?;
    if room.role_of(&me.user.id) != Some(ruang_proto::Role::Moderator) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only moderators of this room let people in",
        ));
    }
    let user = lookup_handle(&state, ip, &req.handle).await?;
    state.store.grant_access(&room.id, &user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
