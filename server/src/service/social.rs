//! Profiles worth opening (links, follower lists, hosting now and next), scheduled rooms
//! (events) and the notification feed.

use super::http::{parse_json, Authed, Body, ClientIp};
use super::{ApiError, AppState};
use crate::store::{
    new_id, new_link_token, now_ms, parse_cursor, AuthUser, NewNotification,
    NotificationSettingsRow, StoreError, StoredEvent, StoredRoom,
};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use ruang_proto::{
    CreateEventRequest, ErrorCode, Event, EventStatus, MarkReadRequest, Notification,
    NotificationKind, NotificationPage, NotificationSettings, Profile, RoomId, RoomKind,
    RoomSummary, UpdateEventRequest, UserId, UserPage,
};
use std::collections::HashSet;

type ApiResult<T> = Result<T, ApiError>;

fn invalid(m: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidField, m)
}

/// Most co-hosts of one event.
pub const MAX_COHOSTS: usize = 5;
/// Most events one member may have scheduled and not yet started.
pub const MAX_UPCOMING_PER_MEMBER: usize = 20;
/// How far ahead an event may be scheduled.
const MAX_AHEAD_MS: i64 = 366 * 24 * 3600 * 1000;
/// An event may start this long before now (a host scheduling "now" on a slow clock).
const PAST_SLACK_MS: i64 = 5 * 60 * 1000;
/// Events stay "upcoming" this long after their start time, waiting for the host.
const LATE_START_MS: i64 = 60 * 60 * 1000;

// ----- time -----

/// Resolves a start time: RFC 3339 with an offset, or a local date-time read in `tz`.
/// Returns Unix milliseconds.
pub fn parse_start(at: &str, tz: &str) -> Result<i64, String> {
    let zone = time_zone(tz)?;
    let at = at.trim();
    if at.len() > 64 {
        return Err("starts_at is too long".into());
    }
    // A date alone is not a start time.
    if !at.contains(['T', 't', ' ']) {
        return Err(format!(
            "starts_at {at:?} needs a time of day, like 2026-12-08T19:00"
        ));
    }
    if let Ok(ts) = at.parse::<jiff::Timestamp>() {
        return Ok(ts.as_millisecond());
    }
    let civil: jiff::civil::DateTime = at.parse().map_err(|_| {
        format!("starts_at {at:?} is not a date and time like 2026-12-08T19:00:00+07:00 or 2026-12-08T19:00")
    })?;
    let zoned = civil
        .to_zoned(zone)
        .map_err(|e| format!("starts_at {at:?} does not exist in {tz}: {e}"))?;
    Ok(zoned.timestamp().as_millisecond())
}

/// An IANA time zone by name (`Asia/Jakarta`, `UTC`).
pub fn time_zone(tz: &str) -> Result<jiff::tz::TimeZone, String> {
    let bad = || format!("unknown time zone {tz:?}; use an IANA name such as Asia/Jakarta or UTC");
    if tz.is_empty()
        || tz.len() > 64
        || tz.contains("..")
        || !tz
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'+'))
    {
        return Err(bad());
    }
    jiff::tz::TimeZone::get(tz).map_err(|_| bad())
}

/// The instant as RFC 3339 in the zone (`2026-12-08T19:00:00+07:00`).
pub fn local_time(ms: i64, tz: &str) -> String {
    let Ok(ts) = jiff::Timestamp::from_millisecond(ms) else {
        return String::new();
    };
    let zone = time_zone(tz).unwrap_or(jiff::tz::TimeZone::UTC);
    let zoned = ts.to_zoned(zone);
    ts.display_with_offset(zoned.offset()).to_string()
}

// ----- profiles -----

/// Links a member shows: at most three, each an http(s) URL of at most 200 characters.
pub fn clean_links(links: &[String]) -> Result<Vec<String>, String> {
    if links.len() > 3 {
        return Err("a profile has at most 3 links".into());
    }
    links
        .iter()
        .map(|l| {
            let l = l.trim();
            if l.len() > 200 {
                return Err("a link has at most 200 characters".to_owned());
            }
            let u = url::Url::parse(l).map_err(|_| format!("{l:?} is not a link"))?;
            if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
                return Err(format!("{l:?}: links start with https:// or http://"));
            }
            Ok(u.to_string())
        })
        .collect()
}

/// A profile with what a profile screen shows: rooms hosted now and events to come.
pub async fn full_profile(
    state: &AppState,
    viewer: &AuthUser,
    user: &UserId,
) -> ApiResult<Profile> {
    let mut p = state.store.profile(&viewer.user.id, user).await?;
    let (follows, access) = super::http::viewer_sets(state, &viewer.user.id).await?;
    let v = crate::rooms::hallway::Viewer {
        id: &viewer.user.id,
        follows: &follows,
        access: &access,
    };
    for view in super::safety::visible_views(state, &viewer.user.id).await? {
        let hosts = view
            .stage
            .iter()
            .any(|(u, r)| u.id == *user && *r == ruang_proto::Role::Moderator);
        if hosts && view.visible_to(&v) {
            p.hosting_now.push(view.summary(&v, &state.public_url));
        }
    }
    let events = state
        .store
        .upcoming_events(&viewer.user.id, now_ms() - LATE_START_MS, Some(user), 20)
        .await?;
    p.upcoming = events
        .into_iter()
        .filter(|e| listed_to(e, &viewer.user.id, &follows))
        .map(|e| to_wire(state, e))
        .collect();
    Ok(p)
}

pub(super) fn page_query(query: Option<&str>) -> ApiResult<(Option<(i64, String)>, usize)> {
    let mut cursor = None;
    let mut limit = 50usize;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| invalid("limit is a number from 1 to 100"))?
            }
            "cursor" => {
                cursor = Some(
                    parse_cursor(v)
                        .ok_or_else(|| invalid("cursor is the next_cursor of the previous page"))?,
                )
            }
            _ => {}
        }
    }
    Ok((cursor, limit))
}

async fn follow_list(
    state: AppState,
    ip: std::net::IpAddr,
    handle: String,
    query: Option<String>,
    followers: bool,
) -> ApiResult<Json<UserPage>> {
    let (cursor, limit) = page_query(query.as_deref())?;
    let user = super::http::lookup_handle(&state, ip, &handle).await?;
    let (users, next_cursor) = state
        .store
        .follow_page(&user.id, followers, cursor, limit)
        .await?;
    Ok(Json(UserPage { users, next_cursor }))
}

/// `GET /v1/users/{handle}/followers`
pub async fn followers(
    State(state): State<AppState>,
    Authed(_me): Authed,
    ClientIp(ip): ClientIp,
    Path(handle): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<UserPage>> {
    follow_list(state, ip, handle, query, true).await
}

/// `GET /v1/users/{handle}/following`
pub async fn following(
    State(state): State<AppState>,
    Authed(_me): Authed,
    ClientIp(ip): ClientIp,
    Path(handle): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<UserPage>> {
    follow_list(state, ip, handle, query, false).await
}

/// `GET /v1/users/{handle}/invited`: the members this person invited.
pub async fn invited(
    State(state): State<AppState>,
    Authed(_me): Authed,
    ClientIp(ip): ClientIp,
    Path(handle): Path<String>,
) -> ApiResult<Json<UserPage>> {
    let user = super::http::lookup_handle(&state, ip, &handle).await?;
    Ok(Json(UserPage {
        users: state.store.invitees(&user.id).await?,
        next_cursor: None,
    }))
}

// ----- events -----

/// Whether an event shows in lists (hallway "Upcoming", profiles) for `viewer`. Anyone
/// with the link may open any event.
pub fn listed_to(e: &StoredEvent, viewer: &UserId, follows: &HashSet<UserId>) -> bool {
    if e.host.id == *viewer || e.cohosts.iter().any(|c| c.id == *viewer) || e.notify_me {
        return true;
    }
    match e.kind {
        RoomKind::Open => true,
        RoomKind::Social => follows.contains(&e.host.id),
        RoomKind::Closed => false,
    }
}

/// Hallway order: events whose host or a co-host the viewer follows first, then the
/// viewer's own, then the rest; soonest first within each.
pub fn upcoming_order(events: &mut [StoredEvent], viewer: &UserId, follows: &HashSet<UserId>) {
    events.sort_by_key(|e| {
        let followed =
            follows.contains(&e.host.id) || e.cohosts.iter().any(|c| follows.contains(&c.id));
        let own = e.host.id == *viewer;
        (!followed, !own, e.starts_at)
    });
}

pub fn to_wire(state: &AppState, e: StoredEvent) -> Event {
    let status = if e.cancelled {
        EventStatus::Cancelled
    } else if let Some(room) = &e.room_id {
        if super::cluster::is_live(state, room) {
            EventStatus::Live
        } else {
            EventStatus::Ended
        }
    } else {
        EventStatus::Scheduled
    };
    Event {
        link: format!("{}/e/{}", state.public_url, e.id),
        starts_at_local: local_time(e.starts_at, &e.time_zone),
        id: e.id,
        title: e.title,
        description: e.description,
        kind: e.kind,
        host: e.host,
        cohosts: e.cohosts,
        starts_at: e.starts_at,
        time_zone: e.time_zone,
        status,
        room_id: e.room_id,
        notify_me: e.notify_me,
        interested: e.interested,
        created_at: e.created_at,
    }
}

fn check_start(at: i64) -> ApiResult<()> {
    let now = now_ms();
    if at < now - PAST_SLACK_MS {
        return Err(invalid("the start time is in the past"));
    }
    if at > now + MAX_AHEAD_MS {
        return Err(invalid("events are scheduled at most a year ahead"));
    }
    Ok(())
}

async fn resolve_cohosts(
    state: &AppState,
    ip: std::net::IpAddr,
    host: &UserId,
    handles: &[String],
) -> ApiResult<Vec<ruang_proto::UserSummary>> {
    if handles.len() > MAX_COHOSTS {
        return Err(invalid(format!(
            "an event has at most {MAX_COHOSTS} co-hosts"
        )));
    }
    let mut out: Vec<ruang_proto::UserSummary> = Vec::new();
    for h in handles {
        let u = super::http::lookup_handle(state, ip, h.trim_start_matches('@')).await?;
        if u.id == *host {
            return Err(ApiError::new(
                ErrorCode::InvalidTarget,
                "the host is not a co-host",
            ));
        }
        // Someone who blocked the host cannot be made their co-host (refused like an
        // unknown handle).
        if state.store.is_blocked(&u.id, host).await? {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                "no member with this handle",
            ));
        }
        if !out.iter().any(|o| o.id == u.id) {
            out.push(u);
        }
    }
    Ok(out)
}

fn event_missing() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such event")
}

async fn load_event(state: &AppState, viewer: &UserId, id: &str) -> ApiResult<StoredEvent> {
    if !super::pages::plausible(id, 32) {
        return Err(event_missing());
    }
    state.store.event(viewer, id).await.map_err(|e| match e {
        StoreError::NotFound => event_missing(),
        e => e.into(),
    })
}

/// `POST /v1/events`
pub async fn create_event(
    State(state): State<AppState>,
    Authed(me): Authed,
    ClientIp(ip): ClientIp,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<Event>)> {
    let req: CreateEventRequest = parse_json(&body)?;
    let title =
        super::text::clean_text(&req.title, "an event title", 1, 100, false).map_err(invalid)?;
    let description = super::text::clean_text(&req.description, "a description", 0, 1000, true)
        .map_err(invalid)?;
    let tz = req.time_zone.clone().unwrap_or_else(|| "UTC".into());
    let starts_at = parse_start(&req.starts_at, &tz).map_err(invalid)?;
    check_start(starts_at)?;
    let cohosts = resolve_cohosts(&state, ip, &me.user.id, &req.cohosts).await?;
    let mine = state
        .store
        .upcoming_events(
            &me.user.id,
            0,
            Some(&me.user.id),
            MAX_UPCOMING_PER_MEMBER + 1,
        )
        .await?
        .iter()
        .filter(|e| e.host.id == me.user.id)
        .count();
    if !me.is_admin && mine >= MAX_UPCOMING_PER_MEMBER {
        return Err(ApiError::new(
            ErrorCode::LimitReached,
            format!("you already have {MAX_UPCOMING_PER_MEMBER} scheduled rooms; cancel one first"),
        ));
    }
    let event = StoredEvent {
        id: new_id(),
        host: me.user.clone(),
        cohosts,
        title,
        description,
        kind: req.kind,
        starts_at,
        time_zone: tz,
        created_at: now_ms(),
        cancelled: false,
        room_id: None,
        interested: 0,
        notify_me: false,
    };
    state.store.create_event(&event).await?;
    tracing::info!(event = %event.id, "event scheduled");
    // Followers hear of open and social events (closed ones are for the invited).
    if event.kind != RoomKind::Closed {
        let followers = state.store.followers(&me.user.id).await?;
        super::notify::send(
            &state,
            followers
                .into_iter()
                .map(|u| NewNotification {
                    user: u,
                    kind: NotificationKind::EventScheduled.as_str(),
                    actor: Some(me.user.id.clone()),
                    room: None,
                    event: Some(event.id.clone()),
                })
                .collect(),
        );
    }
    let e = load_event(&state, &me.user.id, &event.id).await?;
    Ok((StatusCode::CREATED, Json(to_wire(&state, e))))
}

/// `GET /v1/events`: the hallway's "Upcoming" section.
pub async fn upcoming(
    State(state): State<AppState>,
    Authed(me): Authed,
) -> ApiResult<Json<Vec<Event>>> {
    let follows: HashSet<UserId> = state
        .store
        .followees(&me.user.id)
        .await?
        .into_iter()
        .collect();
    let mut events: Vec<StoredEvent> = state
        .store
        .upcoming_events(&me.user.id, now_ms() - LATE_START_MS, None, 500)
        .await?
        .into_iter()
        .filter(|e| listed_to(e, &me.user.id, &follows))
        .collect();
    upcoming_order(&mut events, &me.user.id, &follows);
    Ok(Json(
        events
            .into_iter()
            .take(100)
            .map(|e| to_wire(&state, e))
            .collect(),
    ))
}

/// `GET /v1/events/{id}`
pub async fn get_event(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<Event>> {
    let e = load_event(&state, &me.user.id, &id).await?;
    Ok(Json(to_wire(&state, e)))
}

fn only_host(e: &StoredEvent, me: &AuthUser, what: &str) -> ApiResult<()> {
    if e.host.id != me.user.id {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("only the host {what}"),
        ));
    }
    if e.cancelled {
        return Err(ApiError::new(
            ErrorCode::InvalidTarget,
            "the event was cancelled",
        ));
    }
    if e.room_id.is_some() {
        return Err(ApiError::new(
            ErrorCode::InvalidTarget,
            "the event has started",
        ));
    }
    Ok(())
}

fn tell_subscribers(
    state: &AppState,
    e: &StoredEvent,
    subs: Vec<UserId>,
    kind: NotificationKind,
    room: Option<RoomId>,
) {
    super::notify::send(
        state,
        subs.into_iter()
            .filter(|u| *u != e.host.id)
            .map(|u| NewNotification {
                user: u,
                kind: kind.as_str(),
                actor: Some(e.host.id.clone()),
                room: room.clone(),
                event: Some(e.id.clone()),
            })
            .collect(),
    );
}

/// `PATCH /v1/events/{id}`: the host changes it; those who asked to be notified hear.
pub async fn update_event(
    State(state): State<AppState>,
    Authed(me): Authed,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Body(body): Body,
) -> ApiResult<Json<Event>> {
    let req: UpdateEventRequest = parse_json(&body)?;
    let e = load_event(&state, &me.user.id, &id).await?;
    only_host(&e, &me, "changes an event")?;
    let title = req
        .title
        .as_deref()
        .map(|t| super::text::clean_text(t, "an event title", 1, 100, false))
        .transpose()
        .map_err(invalid)?;
    let description = req
        .description
        .as_deref()
        .map(|t| super::text::clean_text(t, "a description", 0, 1000, true))
        .transpose()
        .map_err(invalid)?;
    let start = match (&req.starts_at, &req.time_zone) {
        (None, None) => None,
        (at, tz) => {
            let tz = tz.clone().unwrap_or_else(|| e.time_zone.clone());
            let at = match at {
                Some(a) => parse_start(a, &tz).map_err(invalid)?,
                // Only the zone changed: the same local time in the new zone.
                None => {
                    parse_start(&local_civil(e.starts_at, &e.time_zone), &tz).map_err(invalid)?
                }
            };
            check_start(at)?;
            Some((at, tz))
        }
    };
    let cohosts = match &req.cohosts {
        Some(h) => Some(
            resolve_cohosts(&state, ip, &me.user.id, h)
                .await?
                .into_iter()
                .map(|u| u.id)
                .collect::<Vec<_>>(),
        ),
        None => None,
    };
    state
        .store
        .update_event(
            &e.id,
            title.as_deref(),
            description.as_deref(),
            start.as_ref().map(|(a, t)| (*a, t.as_str())),
            cohosts.as_deref(),
        )
        .await
        .map_err(|err| match err {
            StoreError::NotFound => ApiError::new(
                ErrorCode::InvalidTarget,
                "the event was cancelled or started",
            ),
            err => err.into(),
        })?;
    let subs = state.store.event_subscribers(&e.id).await?;
    tell_subscribers(&state, &e, subs, NotificationKind::EventChanged, None);
    super::notify::send_event_to_browsers(&state, &e, NotificationKind::EventChanged, None);
    let e = load_event(&state, &me.user.id, &id).await?;
    Ok(Json(to_wire(&state, e)))
}

/// The local date-time (no offset) of an instant in a zone.
fn local_civil(ms: i64, tz: &str) -> String {
    let zone = time_zone(tz).unwrap_or(jiff::tz::TimeZone::UTC);
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned(zone).datetime().to_string())
        .unwrap_or_default()
}

/// `DELETE /v1/events/{id}`: the host cancels; those who asked to be notified hear.
pub async fn cancel_event(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let e = load_event(&state, &me.user.id, &id).await?;
    only_host(&e, &me, "cancels an event")?;
    state
        .store
        .cancel_event(&e.id)
        .await
        .map_err(|err| match err {
            StoreError::NotFound => ApiError::new(
                ErrorCode::InvalidTarget,
                "the event was cancelled or started",
            ),
            err => err.into(),
        })?;
    let subs = state.store.event_subscribers(&e.id).await?;
    tell_subscribers(&state, &e, subs, NotificationKind::EventCancelled, None);
    super::notify::send_event_to_browsers(&state, &e, NotificationKind::EventCancelled, None);
    tracing::info!(event = %e.id, "event cancelled");
    Ok(StatusCode::NO_CONTENT)
}

async fn set_notify(state: AppState, me: AuthUser, id: String, on: bool) -> ApiResult<Json<Event>> {
    let e = load_event(&state, &me.user.id, &id).await?;
    if on && (e.cancelled || e.room_id.is_some()) {
        return Err(ApiError::new(
            ErrorCode::InvalidTarget,
            "the event was cancelled or has started",
        ));
    }
    state
        .store
        .set_event_subscription(&e.id, &me.user.id, on)
        .await?;
    let e = load_event(&state, &me.user.id, &id).await?;
    Ok(Json(to_wire(&state, e)))
}

/// `POST /v1/events/{id}/notify`: "Notify me".
pub async fn notify_me(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<Event>> {
    set_notify(state, me, id, true).await
}

/// `DELETE /v1/events/{id}/notify`
pub async fn unnotify_me(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<Event>> {
    set_notify(state, me, id, false).await
}

/// `POST /v1/events/{id}/start`: the host opens the event's room; co-hosts join it as
/// moderators; those who asked to be notified and the host's followers hear.
pub async fn start_event(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<RoomSummary>)> {
    let e = load_event(&state, &me.user.id, &id).await?;
    only_host(&e, &me, "starts the event's room")?;
    super::http::check_room_limit(&state, &me).await?;
    let room = StoredRoom {
        id: RoomId(new_id()),
        title: e.title.clone(),
        kind: e.kind,
        created_by: me.user.id.clone(),
        link_token: new_link_token(),
        hands_enabled: true,
        created_at: now_ms(),
    };
    let cohosts: Vec<UserId> = e.cohosts.iter().map(|c| c.id.clone()).collect();
    super::cluster::reserve_new_room(&state, &room.id).await?;
    state
        .store
        .start_event(&e.id, &room, &cohosts)
        .await
        .map_err(|err| match err {
            StoreError::NotFound => ApiError::new(
                ErrorCode::InvalidTarget,
                "the event was cancelled or started",
            ),
            err => err.into(),
        })?;
    let fence = super::cluster::confirm_new_room(&state, &room.id).await?;
    let live = state
        .registry
        .add_room_with_cohosts(&room, me.user.clone(), cohosts.clone(), fence);
    super::cluster::new_room_live(&state, &room.id);
    // Co-hosts may enter even a closed room.
    for c in &cohosts {
        state.store.grant_access(&room.id, c).await?;
    }
    super::metrics::Metrics::inc(&state.metrics.rooms_created);
    tracing::info!(event = %e.id, room = %room.id, "event started");
    let subs = state.store.event_subscribers(&e.id).await?;
    let mut told: HashSet<UserId> = subs.iter().cloned().collect();
    tell_subscribers(
        &state,
        &e,
        subs,
        NotificationKind::EventStarted,
        Some(room.id.clone()),
    );
    super::notify::send_event_to_browsers(
        &state,
        &e,
        NotificationKind::EventStarted,
        Some(room.id.clone()),
    );
    if room.kind != RoomKind::Closed {
        let followers = state.store.followers(&me.user.id).await?;
        super::notify::send(
            &state,
            followers
                .into_iter()
                .filter(|f| told.insert(f.clone()))
                .map(|u| NewNotification {
                    user: u,
                    kind: NotificationKind::RoomStarted.as_str(),
                    actor: Some(me.user.id.clone()),
                    room: Some(room.id.clone()),
                    event: None,
                })
                .collect(),
        );
    }
    let summary = super::http::summary_for(&state, &live, &me, &HashSet::new(), &HashSet::new());
    Ok((StatusCode::CREATED, Json(summary)))
}

// ----- search -----

/// `GET /v1/search?q=TEXT[&limit=N]`
pub async fn search(
    State(state): State<AppState>,
    Authed(me): Authed,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<ruang_proto::SearchResults>> {
    let mut q = None;
    let mut limit = 20usize;
    for (k, v) in url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()) {
        match &*k {
            "q" => q = Some(v.into_owned()),
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=50).contains(n))
                    .ok_or_else(|| invalid("limit is a number from 1 to 50"))?
            }
            _ => {}
        }
    }
    let q = q.unwrap_or_default();
    if q.chars().count() > 100 {
        return Err(invalid("a search has at most 100 characters"));
    }
    if crate::store::search_words(&q).is_empty() {
        return Err(invalid("search for at least one word (letters or digits)"));
    }
    let hits = state.store.search(&q, limit * 2).await?;
    let (follows, access) = super::http::viewer_sets(&state, &me.user.id).await?;
    let v = crate::rooms::hallway::Viewer {
        id: &me.user.id,
        follows: &follows,
        access: &access,
    };
    let mut people = hits.people;
    // Followed first; the text rank orders the rest (stable sort).
    people.sort_by_key(|u| !follows.contains(&u.id));
    people.truncate(limit);
    let hit_rooms: HashSet<&RoomId> = hits.rooms.iter().collect();
    let mut rooms: Vec<RoomSummary> = super::safety::visible_views(&state, &me.user.id)
        .await?
        .into_iter()
        .filter(|view| hit_rooms.contains(&view.id))
        .filter(|view| view.visible_to(&v))
        .map(|view| view.summary(&v, &state.public_url))
        .collect();
    rooms.sort_by_key(|r| r.followed_speakers == 0);
    rooms.truncate(limit);
    let mut events = Vec::new();
    for id in &hits.events {
        let e = state.store.event(&me.user.id, id).await?;
        if listed_to(&e, &me.user.id, &follows) {
            let w = to_wire(&state, e);
            if matches!(w.status, EventStatus::Live | EventStatus::Scheduled) {
                events.push(w);
            }
        }
    }
    events.sort_by_key(|e| {
        (
            e.status != EventStatus::Live,
            !(follows.contains(&e.host.id) || e.cohosts.iter().any(|c| follows.contains(&c.id))),
        )
    });
    events.truncate(limit);
    Ok(Json(ruang_proto::SearchResults {
        people,
        rooms,
        events,
    }))
}

// ----- notifications -----

/// `GET /v1/notifications[?limit=N][&cursor=C]`
pub async fn notifications(
    State(state): State<AppState>,
    Authed(me): Authed,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<NotificationPage>> {
    let (cursor, limit) = page_query(query.as_deref())?;
    let settings = state.store.notification_settings(&me.user.id).await?;
    let (rows, next_cursor) = state
        .store
        .notifications_page(&me.user.id, cursor, limit)
        .await?;
    let unread = state
        .store
        .unread_notifications(&me.user.id, settings.read_up_to)
        .await?;
    let notifications = rows
        .into_iter()
        .filter_map(|r| {
            let kind = NotificationKind::parse(&r.kind)?;
            let (text, link) = super::notify::describe(&state.public_url, kind, &r);
            Some(Notification {
                id: r.id,
                kind,
                actor: r.actor,
                room_id: r.room,
                event_id: r.event,
                text,
                link,
                read: r.created_at <= settings.read_up_to,
                created_at: r.created_at,
            })
        })
        .collect();
    Ok(Json(NotificationPage {
        notifications,
        unread: unread.clamp(0, u32::MAX as i64) as u32,
        read_up_to: settings.read_up_to,
        next_cursor,
    }))
}

/// `POST /v1/notifications/read`
pub async fn mark_read(
    State(state): State<AppState>,
    Authed(me): Authed,
    Body(body): Body,
) -> ApiResult<StatusCode> {
    let req: MarkReadRequest = parse_json(&body)?;
    let mut s = state.store.notification_settings(&me.user.id).await?;
    // Never backwards, never into the future.
    s.read_up_to = s.read_up_to.max(req.up_to.min(now_ms()));
    state
        .store
        .set_notification_settings(&me.user.id, &s)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/notifications/settings`
pub async fn get_settings(
    State(state): State<AppState>,
    Authed(me): Authed,
) -> ApiResult<Json<NotificationSettings>> {
    let s = state.store.notification_settings(&me.user.id).await?;
    Ok(Json(settings_wire(&s)))
}

fn settings_wire(s: &NotificationSettingsRow) -> NotificationSettings {
    let hhmm = |m: i64| format!("{:02}:{:02}", m / 60, m % 60);
    NotificationSettings {
        muted_kinds: s
            .muted_kinds
            .iter()
            .filter_map(|k| NotificationKind::parse(k))
            .collect(),
        quiet_hours: s.quiet.map(|(a, b)| ruang_proto::QuietHours {
            start: hhmm(a),
            end: hhmm(b),
        }),
        time_zone: Some(if s.time_zone.is_empty() {
            "UTC".to_owned()
        } else {
            s.time_zone.clone()
        }),
    }
}

/// `HH:MM` (00:00–23:59) as minutes after midnight.
pub fn parse_hhmm(s: &str) -> Option<i64> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m)).then_some(h * 60 + m)
}

/// `PUT /v1/notifications/settings`
pub async fn put_settings(
    State(state): State<AppState>,
    Authed(me): Authed,
    Body(body): Body,
) -> ApiResult<Json<NotificationSettings>> {
    let req: NotificationSettings = parse_json(&body)?;
    let mut s = state.store.notification_settings(&me.user.id).await?;
    let mut kinds: Vec<String> = req
        .muted_kinds
        .iter()
        .map(|k| k.as_str().to_owned())
        .collect();
    kinds.sort();
    kinds.dedup();
    s.muted_kinds = kinds;
    s.quiet = match &req.quiet_hours {
        None => None,
        Some(q) => {
            let (Some(a), Some(b)) = (parse_hhmm(&q.start), parse_hhmm(&q.end)) else {
                return Err(invalid("quiet hours are HH:MM times, like 22:00 and 07:00"));
            };
            if a == b {
                return Err(invalid("quiet hours start and end at different times"));
            }
            Some((a, b))
        }
    };
    s.time_zone = req.time_zone.clone().unwrap_or_else(|| "UTC".into());
    time_zone(&s.time_zone).map_err(invalid)?;
    state
        .store
        .set_notification_settings(&me.user.id, &s)
        .await?;
    Ok(Json(settings_wire(&s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_times_in_foreign_zones() {
        // 19:00 in Jakarta (UTC+7, no DST) is 12:00 UTC.
        let jkt = parse_start("2026-12-08T19:00", "Asia/Jakarta").unwrap();
        let utc = parse_start("2026-12-08T12:00:00Z", "UTC").unwrap();
        assert_eq!(jkt, utc);
        // With an offset the zone does not change the instant.
        assert_eq!(
            parse_start("2026-12-08T19:00:00+07:00", "America/New_York").unwrap(),
            utc
        );
        assert_eq!(local_time(utc, "Asia/Jakarta"), "2026-12-08T19:00:00+07:00");
        assert_eq!(local_time(utc, "UTC"), "2026-12-08T12:00:00+00:00");
        // New York in summer (EDT, -4) and winter (EST, -5).
        assert_eq!(
            parse_start("2026-07-01T09:00", "America/New_York").unwrap(),
            parse_start("2026-07-01T13:00:00Z", "UTC").unwrap()
        );
        assert_eq!(local_civil(utc, "Asia/Jakarta"), "2026-12-08T19:00:00");
    }

    #[test]
    fn malformed_zones_and_times_are_refused() {
        for tz in [
            "Mars/Olympus",
            "",
            "../../etc/passwd",
            "Asia/Jakarta\n",
            &"A".repeat(80),
        ] {
            assert!(parse_start("2026-12-08T19:00", tz).is_err(), "{tz:?}");
        }
        for at in [
            "tomorrow",
            "2026-13-01T10:00",
            "2026-12-08",
            "",
            "2026-12-08T25:00",
        ] {
            assert!(parse_start(at, "UTC").is_err(), "{at:?}");
        }
        // 02:30 on the spring-forward night in New York does not exist: it is read with
        // the offset before the gap (EST), which is 03:30 EDT.
        assert_eq!(
            parse_start("2026-03-08T02:30", "America/New_York").unwrap(),
            parse_start("2026-03-08T07:30:00Z", "UTC").unwrap()
        );
    }

    #[test]
    fn links_are_checked() {
        assert_eq!(
            clean_links(&["https://example.org/me".into()]).unwrap(),
            vec!["https://example.org/me"]
        );
        assert!(clean_links(&["javascript:alert(1)".into()]).is_err());
        assert!(clean_links(&["ftp://x.org".into()]).is_err());
        assert!(clean_links(&vec!["https://a.org".to_owned(); 4]).is_err());
        assert!(clean_links(&[format!("https://a.org/{}", "x".repeat(300))]).is_err());
    }

    fn ev(id: &str, host: &str, kind: RoomKind, at: i64) -> StoredEvent {
        let u = |h: &str| ruang_proto::UserSummary {
            id: UserId(h.into()),
            handle: h.into(),
            name: h.into(),
            avatar: None,
        };
        StoredEvent {
            id: id.into(),
            host: u(host),
            cohosts: vec![],
            title: id.into(),
            description: String::new(),
            kind,
            starts_at: at,
            time_zone: "UTC".into(),
            created_at: 0,
            cancelled: false,
            room_id: None,
            interested: 0,
            notify_me: false,
        }
    }

    #[test]
    fn upcoming_lists_followed_hosts_first_and_hides_closed() {
        let me = UserId("me".into());
        let follows: HashSet<UserId> = [UserId("ann".into())].into_iter().collect();
        let mut events = vec![
            ev("soon", "bob", RoomKind::Open, 1),
            ev("later-followed", "ann", RoomKind::Open, 5),
            ev("mine", "me", RoomKind::Open, 3),
        ];
        upcoming_order(&mut events, &me, &follows);
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["later-followed", "mine", "soon"]);
        assert!(!listed_to(
            &ev("c", "bob", RoomKind::Closed, 1),
            &me,
            &follows
        ));
        assert!(listed_to(
            &ev("c", "me", RoomKind::Closed, 1),
            &me,
            &follows
        ));
        assert!(!listed_to(
            &ev("s", "bob", RoomKind::Social, 1),
            &me,
            &follows
        ));
        assert!(listed_to(
            &ev("s", "ann", RoomKind::Social, 1),
            &me,
            &follows
        ));
    }
}
