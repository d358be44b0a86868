//! The MLS relay of end-to-end encrypted rooms over HTTP (docs/protocol.md §15). Handshakes
//! of big rooms are hundreds of KB, too big for the signalling WebSocket: devices post and
//! fetch them here and are told on the WebSocket (`mls_commit`, `mls_welcome`). The order and
//! the routing are the room's rules (`rooms/mls.rs`); in cluster mode these requests reach the
//! room's node like every `/v1/rooms/{id}/…` request.

use super::http::{parse_json, Authed, Body};
use super::{ApiError, AppState};
use crate::rooms::LiveRoom;
use axum::extract::{Path, State};
use axum::Json;
use ruang_proto::{ErrorCode, MlsCommit, MlsCommitRequest, MlsWelcome, RoomId};
use std::sync::Arc;

type ApiResult<T> = Result<T, ApiError>;

/// Body limit of a posted commit: the commit and its welcome, base64, in JSON.
pub const COMMIT_BODY_MAX: usize = 2 * crate::rooms::mls::MAX_HANDSHAKE + 64 * 1024;

fn live(state: &AppState, id: String) -> ApiResult<Arc<LiveRoom>> {
    state
        .registry
        .get(&RoomId(id))
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no live room with this id"))
}

fn refused(code: ErrorCode) -> ApiError {
    let message = match code {
        ErrorCode::StaleEpoch => {
            "another commit was taken for this epoch: process it, then build yours again"
        }
        ErrorCode::Forbidden => "only the room's moderators commit to its group",
        ErrorCode::BadRequest | ErrorCode::NotFound => "this room is not end-to-end encrypted",
        ErrorCode::InvalidField => {
            "commit and welcome must be base64 (at most 2 MiB each), and a welcome needs `added`"
        }
        ErrorCode::NotInRoom => "join the room first",
        _ => return ApiError::code(code),
    };
    ApiError::new(code, message)
}

/// `POST /v1/rooms/{id}/mls/commits`: a moderator's commit, taken if it was built on the
/// group's current epoch. Answers the new epoch.
pub async fn post_commit(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(id): Path<String>,
    Body(body): Body,
) -> ApiResult<Json<serde_json::Value>> {
    let req: MlsCommitRequest = parse_json(&body)?;
    let room = live(&state, id)?;
    let epoch = room.mls_commit(&me.user.id, &req).map_err(refused)?;
    Ok(Json(serde_json::json!({ "epoch": epoch })))
}

/// `GET /v1/rooms/{id}/mls/commits/{epoch}`: the commit that started `epoch` (the last 64
/// are kept).
pub async fn get_commit(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path((id, epoch)): Path<(String, u64)>,
) -> ApiResult<Json<MlsCommit>> {
    let room = live(&state, id)?;
    match room.mls_commit_at(&me.user.id, epoch).map_err(refused)? {
        Some(c) => Ok(Json((*c).clone())),
        None => Err(ApiError::new(
            ErrorCode::NotFound,
            "no such commit kept: a device that far behind sends a new key package",
        )),
    }
}

/// `GET /v1/rooms/{id}/mls/welcome`: the latest welcome addressed to the caller.
pub async fn get_welcome(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<MlsWelcome>> {
    let room = live(&state, id)?;
    match room.mls_welcome(&me.user.id).map_err(refused)? {
        Some((epoch, welcome)) => Ok(Json(MlsWelcome {
            epoch,
            welcome: welcome.to_string(),
        })),
        None => Err(ApiError::new(
            ErrorCode::NotFound,
            "no welcome for you yet: a moderator's device adds you after your key package",
        )),
    }
}
