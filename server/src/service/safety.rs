//! Blocks and reports (`/v1/users/{handle}/block`, `/v1/me/blocks`, `/v1/reports`) and
//! what blocks and bans do to rooms, lists and notifications. See `docs/safety.md`.

use super::http::{lookup_handle, parse_json, Authed, Body, ClientIp};
use super::{ApiError, AppState};
use crate::rooms::hallway::RoomView;
use crate::rooms::safety::{hidden, join_refused, to_expel, Blocks};
use crate::rooms::LiveRoom;
use crate::store::{now_ms, Filed, NewReport};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use ruang_proto::{
    ClientMessage, ErrorCode, ReportEvidence, ReportKind, ReportReceipt, ReportRequest, Role,
    StageEvidence, UserId, UserPage, MAX_REPORT_DETAILS,
};
use std::collections::HashSet;

type ApiResult<T> = Result<T, ApiError>;

/// New reports a member may file per hour (duplicates of an open one do not count).
pub const REPORTS_PER_HOUR: i64 = 10;

/// The refusal a blocked member gets from a room: the same as for a room that is not
/// there, so a block is not told apart from an ended room.
fn room_refused() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "no live room with this id (it may have ended)",
    )
}

/// The viewer's blocks both ways.
pub async fn blocks_of(state: &AppState, user: &UserId) -> ApiResult<Blocks> {
    Ok(Blocks {
        blocked: state.store.blocked_by(user).await?.into_iter().collect(),
        blockers: state.store.blockers_of(user).await?.into_iter().collect(),
    })
}

/// The live rooms the viewer's lists may show (hallway, search, profiles): every live
/// room (see `cluster::live_views`) less those hidden by blocks.
pub async fn visible_views(state: &AppState, viewer: &UserId) -> ApiResult<Vec<RoomView>> {
    let blocks = blocks_of(state, viewer).await?;
    let mut views = super::cluster::live_views(state, viewer).await;
    if !blocks.is_empty() {
        views.retain(|v| !hidden(v, &blocks));
    }
    Ok(views)
}

/// Refuses `user` at a room one of whose moderators blocked them (any kind of room, with
/// or without its link).
pub async fn check_join(state: &AppState, room: &LiveRoom, user: &UserId) -> ApiResult<()> {
    let mods = room.moderator_ids();
    if mods.iter().all(|m| m == user) {
        return Ok(());
    }
    let blockers: HashSet<UserId> = state.store.blockers_of(user).await?.into_iter().collect();
    if join_refused(&mods, &blockers) {
        return Err(room_refused());
    }
    Ok(())
}

/// `moderator` moderates `room` now (joined as one, or was made one): the members they
/// blocked who are listening or speaking there leave quietly.
pub async fn moderator_arrived(state: &AppState, room: &LiveRoom, moderator: &UserId) {
    let blocked: HashSet<UserId> = match state.store.blocked_by(moderator).await {
        Ok(b) => b.into_iter().collect(),
        Err(e) => {
            tracing::warn!(error = %e, "blocks not read; nobody taken out");
            return;
        }
    };
    if blocked.is_empty() {
        return;
    }
    let present = room.present(&blocked);
    for user in to_expel(moderator, &blocked, &present) {
        expel(state, room, &user).await;
    }
}

/// Takes `user` out of `room` quietly and closes their media; true if they were there.
async fn expel(state: &AppState, room: &LiveRoom, user: &UserId) -> bool {
    let Some((durable, conn)) = room.expel(user) else {
        return false;
    };
    if let Some(conn) = conn {
        state.sfu.remove(&room.id, user, conn);
    }
    if let Some(d) = durable {
        let _ = d.await;
    }
    true
}

/// Takes a banned member out of every live room on this node: (rooms left, rooms ended).
pub async fn expel_everywhere(state: &AppState, user: &UserId) -> (u32, u32) {
    let (mut left, mut ended) = (0, 0);
    for room in state.registry.all() {
        if expel(state, &room, user).await {
            left += 1;
            if room.ended() {
                ended += 1;
            }
        }
    }
    (left, ended)
}

/// Checks a room command against blocks before the rules see it: a moderator cannot
/// invite to speak someone who blocked them (refused like any other forbidden command).
pub async fn command_allowed(
    state: &AppState,
    me: &UserId,
    msg: &ClientMessage,
) -> Result<(), ErrorCode> {
    if let ClientMessage::InviteToSpeak { user } = msg {
        if state
            .store
            .is_blocked(user, me)
            .await
            .map_err(|_| ErrorCode::Internal)?
        {
            return Err(ErrorCode::Forbidden);
        }
    }
    Ok(())
}

/// After a room command succeeded: a new moderator's blocks apply to the room.
pub async fn after_command(state: &AppState, room: &LiveRoom, msg: &ClientMessage) {
    if let ClientMessage::MakeModerator { user } = msg {
        moderator_arrived(state, room, user).await;
    }
}

/// After a member joined: if they moderate the room, their blocks apply to it.
pub async fn after_join(state: &AppState, room: &LiveRoom, user: &UserId) {
    if room.role_of(user) == Some(Role::Moderator) {
        moderator_arrived(state, room, user).await;
    }
}

// ----- HTTP -----

/// `POST /v1/users/{handle}/block`
pub async fn block(
    State(state): State<AppState>,
    Authed(me): Authed,
    ClientIp(ip): ClientIp,
    Path(handle): Path<String>,
) -> ApiResult<StatusCode> {
    let user = lookup_handle(&state, ip, &handle).await?;
    if user.id == me.user.id {
        return Err(ApiError::new(
            ErrorCode::InvalidTarget,
            "you cannot block yourself",
        ));
    }
    state.store.block(&me.user.id, &user.id).await?;
    // Rooms here that the blocker moderates lose the blocked member at once; in a cluster,
    // the rooms other nodes own too (over the bus).
    blocker_rooms_apply(&state, &me.user.id).await;
    if let Some(cluster) = &state.cluster {
        if let Err(e) = cluster
            .publish(crate::cluster::BLOCKS, me.user.id.as_str().to_owned())
            .await
        {
            tracing::warn!(error = %e, "cluster: a block was not announced to the other nodes");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The live rooms of this node where `blocker` moderates lose the members they blocked.
pub async fn blocker_rooms_apply(state: &AppState, blocker: &UserId) {
    for room in state.registry.all() {
        if room.role_of(blocker) == Some(Role::Moderator) {
            moderator_arrived(state, &room, blocker).await;
        }
    }
}

/// `DELETE /v1/users/{handle}/block`
pub async fn unblock(
    State(state): State<AppState>,
    Authed(me): Authed,
    ClientIp(ip): ClientIp,
    Path(handle): Path<String>,
) -> ApiResult<StatusCode> {
    let user = lookup_handle(&state, ip, &handle).await?;
    state.store.unblock(&me.user.id, &user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/me/blocks[?limit=N][&cursor=C]`: the people the caller blocked, newest first.
pub async fn my_blocks(
    State(state): State<AppState>,
    Authed(me): Authed,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<UserPage>> {
    let (cursor, limit) = super::social::page_query(query.as_deref())?;
    let (users, next_cursor) = state.store.block_page(&me.user.id, cursor, limit).await?;
    Ok(Json(UserPage { users, next_cursor }))
}

/// Refuses `follower` following `followee` across a block (either way).
pub async fn check_follow(state: &AppState, follower: &UserId, followee: &UserId) -> ApiResult<()> {
    if state.store.is_blocked(follower, followee).await? {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "you blocked this member; unblock them first",
        ));
    }
    if state.store.is_blocked(followee, follower).await? {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "you cannot follow this member",
        ));
    }
    Ok(())
}

fn invalid(m: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidField, m)
}

/// Room ids and message ids are short strings of `a-z0-9`; anything else is not looked up.
fn plausible_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `POST /v1/reports`
pub async fn report(
    State(state): State<AppState>,
    Authed(me): Authed,
    ClientIp(ip): ClientIp,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<ReportReceipt>)> {
    let req: ReportRequest = parse_json(&body)?;
    let details = super::text::clean_text(&req.details, "details", 0, MAX_REPORT_DETAILS, true)
        .map_err(invalid)?;
    let mut evidence = ReportEvidence::default();
    let (target_key, target_user, target_room, target_message) = match req.kind {
        ReportKind::Member => {
            let handle = req
                .handle
                .as_deref()
                .ok_or_else(|| invalid("a member report names the member's handle"))?;
            let user = lookup_handle(&state, ip, handle.trim_start_matches('@')).await?;
            if user.id == me.user.id {
                return Err(ApiError::new(
                    ErrorCode::InvalidTarget,
                    "you cannot report yourself",
                ));
            }
            let profile = state.store.profile(&me.user.id, &user.id).await?;
            evidence.name = Some(profile.name);
            evidence.bio = Some(profile.bio);
            (format!("member:{}", user.id), Some(user.id), None, None)
        }
        ReportKind::Room => {
            let room = req
                .room
                .clone()
                .filter(|r| plausible_id(r.as_str()))
                .ok_or_else(|| invalid("a room report names the room id"))?;
            room_evidence(&state, &room, &mut evidence).await?;
            (format!("room:{room}"), None, Some(room), None)
        }
        ReportKind::Message => {
            let (room_id, msg) = match (&req.room, &req.message) {
                (Some(r), Some(m)) if plausible_id(r.as_str()) && plausible_id(m) => (r, m),
                _ => return Err(invalid("a message report names the room id and message id")),
            };
            let found = state
                .registry
                .get(room_id)
                .and_then(|room| room.message_evidence(msg));
            let Some(found) = found else {
                return Err(ApiError::new(ErrorCode::NotFound, "no such message"));
            };
            evidence.room = Some(room_id.clone());
            evidence.message_text = Some(found.text);
            let author = found.author.id.clone();
            evidence.message_author = Some(found.author);
            (
                format!("message:{room_id}:{msg}"),
                Some(author),
                Some(room_id.clone()),
                Some(msg.clone()),
            )
        }
    };
    let new = NewReport {
        reporter: me.user.id.clone(),
        kind: req.kind,
        target_key,
        target_user,
        target_room,
        target_message,
        reason: req.reason,
        details,
        evidence,
    };
    match state.store.file_report(&new, REPORTS_PER_HOUR).await? {
        Filed::New(id) => {
            tracing::info!(report = %id, kind = req.kind.as_str(), "report filed");
            Ok((
                StatusCode::CREATED,
                Json(ReportReceipt {
                    id,
                    coalesced: false,
                }),
            ))
        }
        Filed::Coalesced(id) => Ok((
            StatusCode::OK,
            Json(ReportReceipt {
                id,
                coalesced: true,
            }),
        )),
        Filed::Limited => Err(ApiError::new(
            ErrorCode::RateLimited,
            format!("at most {REPORTS_PER_HOUR} reports an hour; try again later"),
        )),
    }
}

/// What a room report keeps: stage, hosts, title and the time into the room (a live room
/// on this node); title and creator of a room that ended or lives on another node.
async fn room_evidence(
    state: &AppState,
    room: &ruang_proto::RoomId,
    evidence: &mut ReportEvidence,
) -> ApiResult<()> {
    evidence.room = Some(room.clone());
    if let Some(live) = state.registry.get(room) {
        let view = live.view_for(&UserId::from(""));
        evidence.live = true;
        evidence.room_title = Some(view.title.clone());
        evidence.room_time_ms = Some((now_ms() - view.created_at).max(0));
        for (u, role) in &view.stage {
            if *role == Role::Moderator {
                evidence.hosts.push(u.clone());
            }
            evidence.stage.push(StageEvidence {
                id: u.id.clone(),
                handle: u.handle.clone(),
                role: *role,
            });
        }
        return Ok(());
    }
    let Some((stored, ended)) = state.store.room_record(room).await? else {
        return Err(ApiError::new(ErrorCode::NotFound, "no room with this id"));
    };
    evidence.live = !ended;
    evidence.room_title = Some(stored.title);
    if !ended {
        evidence.room_time_ms = Some((now_ms() - stored.created_at).max(0));
    }
    if let Ok(creator) = state
        .store
        .profile(&stored.created_by, &stored.created_by)
        .await
    {
        evidence.hosts.push(ruang_proto::UserSummary {
            id: creator.id,
            handle: creator.handle,
            name: creator.name,
            avatar: creator.avatar,
        });
    }
    Ok(())
}
