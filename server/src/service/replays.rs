//! Replays and clips over HTTP: replay metadata, the Ogg files (with `Range`), deleting a
//! replay, a host's replays, clipping the last 30 s, and the `/c/CLIP` and ended `/r/ROOM`
//! pages that play them.
//!
//! Who may see a replay mirrors who could find the room: open and social rooms by their
//! link (anyone), closed rooms only their host, members let in, and holders of the link key.

use super::cluster_media::MediaKind;
use super::http::{Authed, ClientIp};
use super::pages::{escape, html, page_with, plausible, query_value, Meta};
use super::{ApiError, AppState};
use crate::replay::{clip_dir, replay_dir, valid_id, ClipError};
use crate::store::{new_id, AuthUser, ReplayRow, StoredRoom};
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ruang_proto::{Clip, ErrorCode, Replay, ReplayChapter, ReplaySpan, RoomId, RoomKind, UserId};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

type ApiResult<T> = Result<T, ApiError>;

const SCRIPT: &str = include_str!("../../web/replay.js");
pub(super) const SCRIPT_VERSION: u64 = super::pages::fnv1a(SCRIPT.as_bytes());

/// Clips one member may take per minute.
pub const CLIPS_PER_MINUTE: usize = 3;

/// Clips taken per member in the last minute.
#[derive(Default)]
pub struct ClipLimiter {
    taken: Mutex<HashMap<UserId, VecDeque<Instant>>>,
}

impl ClipLimiter {
    /// Counts one clip for `user` at `now`; false when they took their share this minute.
    pub fn allow(&self, user: &UserId, now: Instant) -> bool {
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        let window = Duration::from_secs(60);
        taken.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        let q = taken.entry(user.clone()).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
            q.pop_front();
        }
        if q.len() >= CLIPS_PER_MINUTE {
            return false;
        }
        q.push_back(now);
        true
    }
}

/// The caller when a session token is sent; nobody when none is (a bad token is an error).
pub struct MaybeAuthed(pub Option<AuthUser>);

impl FromRequestParts<AppState> for MaybeAuthed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        if parts.headers.get(header::AUTHORIZATION).is_none() {
            return Ok(MaybeAuthed(None));
        }
        Authed::from_request_parts(parts, state)
            .await
            .map(|Authed(u)| MaybeAuthed(Some(u)))
    }
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no replay for this room")
}

/// Whether `viewer` (or someone holding `token`) may see the replay of `room`.
async fn may_see(
    state: &AppState,
    room: &StoredRoom,
    viewer: Option<&AuthUser>,
    token: &str,
) -> ApiResult<bool> {
    if room.kind != RoomKind::Closed {
        return Ok(true);
    }
    if !token.is_empty() && constant_eq(&room.link_token, token) {
        return Ok(true);
    }
    let Some(v) = viewer else { return Ok(false) };
    Ok(v.user.id == room.created_by || state.store.has_access(&room.id, &v.user.id).await?)
}

fn constant_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

fn token_of(query: Option<&str>) -> String {
    query_value(query, "t")
        .filter(|t| plausible(t, 64))
        .unwrap_or_default()
}

/// The API view of a stored replay.
fn replay_of(state: &AppState, r: &ReplayRow) -> Replay {
    #[derive(serde::Deserialize, Default)]
    struct Meta {
        #[serde(default)]
        speakers: Vec<ReplaySpan>,
        #[serde(default)]
        chapters: Vec<ReplayChapter>,
        #[serde(default)]
        chat: Vec<serde_json::Value>,
    }
    let meta: Meta = serde_json::from_str(&r.meta).unwrap_or_default();
    let key = if r.room.kind == RoomKind::Closed {
        format!("?t={}", r.room.link_token)
    } else {
        String::new()
    };
    Replay {
        id: r.room.id.clone(),
        title: r.room.title.clone(),
        kind: r.room.kind,
        host: r.host.clone(),
        room_created_at: r.room.created_at,
        created_at: r.created_at,
        duration_ms: r.duration_ms.max(0) as u64,
        bytes: r.bytes.max(0) as u64,
        url: format!("{}/media/replays/{}.ogg{key}", state.public_url, r.room.id),
        link: format!("{}/r/{}{key}", state.public_url, r.room.id),
        speakers: meta.speakers,
        chapters: meta.chapters,
        chat: meta.chat,
    }
}

/// The stored room `id` if `viewer` may see it (else not found, saying nothing more).
async fn visible_room(
    state: &AppState,
    id: &str,
    viewer: Option<&AuthUser>,
    token: &str,
) -> ApiResult<(StoredRoom, bool)> {
    if !valid_id(id) {
        return Err(not_found());
    }
    let (room, ended) = state
        .store
        .room_record(&RoomId(id.to_owned()))
        .await?
        .ok_or_else(not_found)?;
    if !may_see(state, &room, viewer, token).await? {
        return Err(not_found());
    }
    Ok((room, ended))
}

/// `GET /v1/rooms/{id}/replay[?t=KEY]`: the replay's metadata.
pub async fn get_replay(
    State(state): State<AppState>,
    MaybeAuthed(me): MaybeAuthed,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Replay>> {
    let token = token_of(query.as_deref());
    let (room, ended) = visible_room(&state, &id, me.as_ref(), &token).await?;
    if let Some(r) = state.store.replay(&room.id).await? {
        return Ok(Json(replay_of(&state, &r)));
    }
    let spooling = crate::replay::spool_dir(state.replays.media_dir())
        .join(format!("{}.spool", room.id))
        .exists();
    let live_recorded = !ended
        && state
            .registry
            .get(&room.id)
            .is_some_and(|l| l.recorder.recording());
    if live_recorded || (!ended && state.store.was_recorded(&room.id).await?) {
        return Err(ApiError::new(
            ErrorCode::ReplayNotReady,
            "the room is still live: its replay is made when it ends",
        ));
    }
    if ended && spooling {
        return Err(ApiError::new(
            ErrorCode::ReplayNotReady,
            "the replay is being made; try again in a few seconds",
        ));
    }
    Err(not_found())
}

/// `DELETE /v1/rooms/{id}/replay`: the host deletes the replay (row and files).
pub async fn delete_replay(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (room, _) = visible_room(&state, &id, Some(&me), "").await?;
    if state.store.replay(&room.id).await?.is_none() {
        return Err(not_found());
    }
    if room.created_by != me.user.id {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only the room's host can delete its replay",
        ));
    }
    state.store.delete_replay(&room.id).await?;
    let dir = replay_dir(state.replays.media_dir());
    for ext in ["ogg", "json"] {
        let name = format!("{}.{ext}", room.id);
        let _ = tokio::fs::remove_file(dir.join(&name)).await;
        // Copies other nodes fetched go too.
        super::cluster_media::announce_deleted(&state, MediaKind::Replays, &name).await;
    }
    tracing::info!(room = %room.id, "replay deleted by its host");
    Ok(StatusCode::NO_CONTENT)
}

/// Replays listed per profile, at most.
const PROFILE_REPLAYS: i64 = 50;

/// `GET /v1/users/{handle}/replays`: the replays of rooms the member hosted that the caller
/// may see, newest first.
pub async fn user_replays(
    State(state): State<AppState>,
    Authed(me): Authed,
    ClientIp(ip): ClientIp,
    Path(handle): Path<String>,
) -> ApiResult<Json<Vec<Replay>>> {
    let user = super::http::lookup_handle(&state, ip, &handle).await?;
    let mut out = Vec::new();
    for r in state
        .store
        .replays_by_host(&user.id, PROFILE_REPLAYS)
        .await?
    {
        if may_see(&state, &r.room, Some(&me), "").await? {
            out.push(replay_of(&state, &r));
        }
    }
    Ok(Json(out))
}

/// `POST /v1/rooms/{id}/clips`: the last 30 s of a live room as a shareable clip.
pub async fn create_clip(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Clip>)> {
    let room = state
        .registry
        .get(&RoomId(id))
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no live room with this id"))?;
    if !room.may_clip(&me.user.id) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "clips are for people in a recorded room, or its hosts when the room allows clips",
        ));
    }
    if !state.clip_limiter.allow(&me.user.id, Instant::now()) {
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            format!("at most {CLIPS_PER_MINUTE} clips a minute; try again shortly"),
        ));
    }
    state.replays.ensure(&room);
    let title = room.view_for(&me.user.id).title;
    let (bytes, duration_ms) = match state.replays.clip_audio(&room, &title).await {
        Ok(c) => c,
        Err(ClipError::NoAudio) => {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                "nobody spoke in the last 30 seconds: nothing to clip",
            ))
        }
        Err(ClipError::Busy) => return Err(ApiError::code(ErrorCode::Unavailable)),
        Err(ClipError::Mix(e)) => {
            tracing::error!(error = %e, "clip mix failed");
            return Err(ApiError::code(ErrorCode::Internal));
        }
    };
    let clip_id = new_id();
    let dir = clip_dir(state.replays.media_dir());
    let name = format!("{clip_id}.ogg");
    tokio::task::spawn_blocking(move || crate::replay::write_atomic(&dir, &name, &bytes))
        .await
        .map_err(|_| ApiError::code(ErrorCode::Internal))?
        .map_err(|e| {
            tracing::error!(error = %e, "writing a clip");
            ApiError::new(ErrorCode::Internal, "the clip could not be stored")
        })?;
    state
        .store
        .insert_clip(&clip_id, &room.id, &me.user.id, duration_ms as i64)
        .await?;
    state
        .replays
        .metrics
        .clips_made
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok((
        StatusCode::CREATED,
        Json(Clip {
            url: format!("{}/c/{clip_id}", state.public_url),
            file: format!("{}/media/clips/{clip_id}.ogg", state.public_url),
            id: clip_id,
            duration_ms,
        }),
    ))
}

/// What a `Range` header asks of a file of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAsk {
    /// No usable range: the whole file (absent, malformed, several ranges, not bytes).
    Whole,
    /// Bytes `start..=end`.
    Part(u64, u64),
    /// A well-formed range wholly past the end.
    Unsatisfiable,
}

/// Parses one `Range` value (RFC 9110 §14.2). Malformed ranges are ignored (the whole file).
pub fn parse_range(value: Option<&str>, len: u64) -> RangeAsk {
    let Some(v) = value else {
        return RangeAsk::Whole;
    };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole; // several ranges: answered with the whole file
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.len() <= 19 && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (a, b) = (a.trim(), b.trim());
    match (a.is_empty(), num(a), num(b)) {
        // bytes=-N: the last N bytes
        (true, _, Some(n)) => {
            if n == 0 || len == 0 {
                RangeAsk::Unsatisfiable
            } else {
                RangeAsk::Part(len.saturating_sub(n), len - 1)
            }
        }
        (false, Some(start), end) if b.is_empty() || end.is_some() => {
            if let Some(end) = end {
                if end < start {
                    return RangeAsk::Whole; // invalid: ignored
                }
            }
            if start >= len {
                return RangeAsk::Unsatisfiable;
            }
            let end = end.unwrap_or(u64::MAX).min(len - 1);
            RangeAsk::Part(start, end)
        }
        _ => RangeAsk::Whole,
    }
}

/// Serves a file with `Range` support (206, or 416 for a range past the end).
async fn serve_file(path: PathBuf, content_type: &'static str, headers: &HeaderMap) -> Response {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let Ok(mut f) = tokio::fs::File::open(&path).await else {
        return not_found().into_response();
    };
    let Ok(len) = f.metadata().await.map(|m| m.len()) else {
        return not_found().into_response();
    };
    let ask = parse_range(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        len,
    );
    let (status, start, end) = match ask {
        RangeAsk::Whole => (StatusCode::OK, 0, len.saturating_sub(1)),
        RangeAsk::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b),
        RangeAsk::Unsatisfiable => {
            let mut resp = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return resp;
        }
    };
    let count = if len == 0 { 0 } else { end - start + 1 };
    let mut body = vec![0u8; count as usize];
    if f.seek(std::io::SeekFrom::Start(start)).await.is_err()
        || f.read_exact(&mut body).await.is_err()
    {
        return ApiError::code(ErrorCode::Internal).into_response();
    }
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    resp
}

/// `GET /media/replays/ROOM.ogg[?t=KEY]`: the replay file, for people who may see it.
pub async fn replay_file(
    State(state): State<AppState>,
    MaybeAuthed(me): MaybeAuthed,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(id) = file.strip_suffix(".ogg") else {
        return not_found().into_response();
    };
    let token = token_of(query.as_deref());
    let room = match visible_room(&state, id, me.as_ref(), &token).await {
        Ok((room, _)) => room,
        Err(e) => return e.into_response(),
    };
    match state.store.replay(&room.id).await {
        Ok(Some(_)) => {}
        Ok(None) => return not_found().into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    }
    let name = format!("{}.ogg", room.id);
    match super::cluster_media::local_path(&state, MediaKind::Replays, &name).await {
        Some(path) => serve_file(path, "audio/ogg", &headers).await,
        None => not_found().into_response(),
    }
}

/// `GET /media/clips/CLIP.ogg`: a clip (shareable: anyone with the link).
pub async fn clip_file(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(id) = file.strip_suffix(".ogg").filter(|id| valid_id(id)) else {
        return ApiError::new(ErrorCode::NotFound, "no such clip").into_response();
    };
    match state.store.clip(id).await {
        Ok(Some(_)) => {}
        Ok(None) => return ApiError::new(ErrorCode::NotFound, "no such clip").into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    }
    match super::cluster_media::local_path(&state, MediaKind::Clips, &format!("{id}.ogg")).await {
        Some(path) => serve_file(path, "audio/ogg", &headers).await,
        None => not_found().into_response(),
    }
}

/// `GET /web/replay.js`: the replay and clip pages' script (speaker timeline seeks).
pub async fn replay_script() -> Response {
    let mut resp = SCRIPT.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

fn clock(ms: u64) -> String {
    let s = ms / 1000;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// The ended `/r/ROOM` page when the room has a replay: a player and the speaker timeline.
/// None when there is no replay (the caller shows the "has ended" page). The caller has
/// checked the link key of a closed room.
pub(super) async fn replay_page(
    state: &AppState,
    room: &StoredRoom,
    token: &str,
    url: &str,
) -> Option<Response> {
    let r = match state.store.replay(&room.id).await {
        Ok(Some(r)) => r,
        _ => return None,
    };
    let replay = replay_of(state, &r);
    let key = if room.kind == RoomKind::Closed {
        format!("?t={}", escape(token))
    } else {
        String::new()
    };
    let mut timeline = String::new();
    for s in &replay.speakers {
        timeline.push_str(&format!(
            "<li><button type=\"button\" class=\"seek\" data-start-ms=\"{}\">{} <span class=\"at\">{}</span></button></li>\n",
            s.start_ms,
            escape(&s.name),
            clock(s.start_ms)
        ));
    }
    let body = format!(
        "<p class=\"live\">Replay</p>
<h1>{title}</h1>
<p>Hosted by {host} · {duration}</p>
<audio id=\"player\" controls preload=\"metadata\" src=\"../media/replays/{id}.ogg{key}\"></audio>
<h2>Speakers</h2>
<ol id=\"timeline\" class=\"timeline\">
{timeline}</ol>
<p><button type=\"button\" class=\"link-button\" data-report-room=\"{id}\" hidden>Report this room</button></p>",
        title = escape(&replay.title),
        host = escape(&replay.host.name),
        duration = clock(replay.duration_ms),
        id = escape(room.id.as_str()),
    );
    let description = format!("Replay of a live audio room hosted by {}", replay.host.name);
    let meta = Meta {
        title: &replay.title,
        description: &description,
        url,
        image: None,
    };
    Some(html(
        state,
        StatusCode::OK,
        page_with(&meta, Some("replay"), &body),
    ))
}

/// `GET /c/CLIP`: a page that plays a clip (Open Graph tags for link previews).
pub async fn clip_page(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let clip = if valid_id(&id) {
        state.store.clip(&id).await
    } else {
        Ok(None)
    };
    let clip = match clip {
        Ok(Some(c)) => c,
        Ok(None) => {
            let meta = Meta {
                title: "Clip not available",
                description: "This Ruang clip is not available.",
                url: &state.public_url,
                image: None,
            };
            let body = "<h1>This clip isn't available</h1>\n<p>The link may be incomplete.</p>";
            return html(&state, StatusCode::NOT_FOUND, page_with(&meta, None, body));
        }
        Err(e) => {
            tracing::error!(error = %e, "clip page: database error");
            return super::pages::error_page(&state);
        }
    };
    let url = format!("{}/c/{}", state.public_url, clip.id);
    let body = format!(
        "<p class=\"live\">Clip</p>
<h1>{title}</h1>
<p>Clipped by {by} · {duration}</p>
<audio id=\"player\" controls preload=\"metadata\" src=\"../media/clips/{id}.ogg\"></audio>",
        title = escape(&clip.room_title),
        by = escape(&clip.created_by.name),
        duration = clock(clip.duration_ms.max(0) as u64),
        id = escape(&clip.id),
    );
    let description = format!("A moment from “{}” on Ruang", clip.room_title);
    let meta = Meta {
        title: &clip.room_title,
        description: &description,
        url: &url,
        image: None,
    };
    let mut page = page_with(&meta, Some("replay"), &body);
    // The audio itself for link previews that play it.
    let audio = format!(
        "<meta property=\"og:audio\" content=\"{}/media/clips/{}.ogg\">\n<meta property=\"og:audio:type\" content=\"audio/ogg\">\n</head>",
        escape(&state.public_url),
        escape(&clip.id)
    );
    page = page.replacen("</head>", &audio, 1);
    html(&state, StatusCode::OK, page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeAsk::*;
        assert_eq!(parse_range(None, 100), Whole);
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Part(0, 9));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Part(90, 99));
        assert_eq!(parse_range(Some("bytes=90-1000"), 100), Part(90, 99));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Part(90, 99));
        assert_eq!(parse_range(Some("bytes=-1000"), 100), Part(0, 99));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 100), Unsatisfiable);
        for junk in [
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=5-2",
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=99999999999999999999999-",
            "bytes=1-2-3",
            "bytes= - ",
            "",
        ] {
            assert_eq!(parse_range(Some(junk), 100), Whole, "{junk}");
        }
        assert_eq!(parse_range(Some("bytes=0-"), 0), Unsatisfiable);
    }

    #[test]
    fn clips_are_limited_per_member_per_minute() {
        let l = ClipLimiter::default();
        let (a, b) = (UserId::from("a"), UserId::from("b"));
        let t0 = Instant::now();
        for _ in 0..CLIPS_PER_MINUTE {
            assert!(l.allow(&a, t0));
        }
        assert!(!l.allow(&a, t0 + Duration::from_secs(10)));
        assert!(l.allow(&b, t0), "another member has their own share");
        assert!(l.allow(&a, t0 + Duration::from_secs(61)));
    }
}
