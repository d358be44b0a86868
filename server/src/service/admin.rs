//! Admin moderation: the JSON API under `/v1/admin/...` (for the CLI) and the console at
//! `/admin` (server-rendered HTML, no script, strict CSP, cookie session with a CSRF token
//! bound to it). Every action lands in the audit log. See `docs/safety.md`.

use super::http::{authenticate, parse_json, Authed, Body, ClientIp};
use super::pages::escape;
use super::{ApiError, AppState, Revocation};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ruang_proto::{
    AdminMember, AuditPage, BanOutcome, BanRequest, ErrorCode, Report, ReportKind, ReportPage,
    ReportStatus, ResolveReportRequest, RevokeInvitesOutcome, RevokeInvitesRequest, UserSummary,
};
use std::fmt::Write as _;

type ApiResult<T> = Result<T, ApiError>;

/// The console's session cookie.
pub const COOKIE: &str = "ruang_admin";
/// How long a console sign-in lasts.
const SESSION_MS: i64 = 12 * 3_600_000;
/// Longest ban reason or resolution note, in characters.
const MAX_NOTE: usize = 500;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/reports", get(api_reports))
        .route("/v1/admin/reports/{id}/resolve", post(api_resolve))
        .route("/v1/admin/members/{handle}", get(api_member))
        .route("/v1/admin/members/{handle}/ban", post(api_ban))
        .route("/v1/admin/members/{handle}/unban", post(api_unban))
        .route(
            "/v1/admin/members/{handle}/revoke-invites",
            post(api_revoke_invites),
        )
        .route("/v1/admin/audit", get(api_audit))
        .route("/admin", get(console_reports))
        .route("/admin/admin.css", get(console_css))
        .route("/admin/sign-in", post(console_sign_in))
        .route("/admin/sign-out", post(console_sign_out))
        .route("/admin/reports/{id}", post(console_resolve))
        .route("/admin/members", get(console_find_member))
        .route("/admin/members/{handle}", get(console_member))
        .route("/admin/members/{handle}/ban", post(console_ban))
        .route("/admin/members/{handle}/unban", post(console_unban))
        .route(
            "/admin/members/{handle}/revoke-invites",
            post(console_revoke_invites),
        )
        .route("/admin/audit", get(console_audit))
}

// ----- the actions (shared by the API and the console) -----

fn require_admin(me: &crate::store::AuthUser) -> ApiResult<()> {
    if me.is_admin {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::Forbidden, "only admins do this"))
    }
}

fn note(raw: &str, what: &str) -> ApiResult<String> {
    super::text::clean_text(raw, what, 0, MAX_NOTE, true)
        .map_err(|m| ApiError::new(ErrorCode::InvalidField, m))
}

async fn member_by_handle(state: &AppState, handle: &str) -> ApiResult<UserSummary> {
    state
        .store
        .user_by_handle(handle.trim_start_matches('@'))
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => {
                ApiError::new(ErrorCode::NotFound, "no member with this handle")
            }
            e => e.into(),
        })
}

/// Bans a member: every session revoked (and closed on every node), every unused invite
/// revoked, out of every live room (rooms where they were the last moderator end, their
/// media stops), sign-in refused until an unban.
async fn ban(
    state: &AppState,
    admin: &UserSummary,
    handle: &str,
    reason: &str,
) -> ApiResult<BanOutcome> {
    let reason = note(reason, "a ban reason")?;
    let user = member_by_handle(state, handle).await?;
    if user.id == admin.id {
        return Err(ApiError::new(
            ErrorCode::InvalidTarget,
            "you cannot ban yourself",
        ));
    }
    let (sessions, invites) = state.store.ban(&user.id, &reason).await?;
    state.store.end_admin_sessions_of(&user.id).await?;
    state.revoke(Revocation::Banned(user.id.clone())).await;
    let (rooms_left, rooms_ended) = super::safety::expel_everywhere(state, &user.id).await;
    let outcome = BanOutcome {
        sessions_revoked: sessions,
        invites_revoked: invites,
        rooms_left,
        rooms_ended,
    };
    let details = format!(
        "reason: {reason}; sessions revoked: {sessions}; invites revoked: {invites}; rooms left: {rooms_left}; rooms ended: {rooms_ended}"
    );
    state
        .store
        .audit(&admin.id, "ban", &user.handle, &details)
        .await?;
    tracing::info!(admin = %admin.handle, member = %user.handle, "member banned");
    Ok(outcome)
}

async fn unban(state: &AppState, admin: &UserSummary, handle: &str) -> ApiResult<()> {
    let user = member_by_handle(state, handle).await?;
    if !state.store.unban(&user.id).await? {
        return Err(ApiError::new(
            ErrorCode::InvalidTarget,
            "this member is not banned",
        ));
    }
    state
        .store
        .audit(&admin.id, "unban", &user.handle, "")
        .await?;
    Ok(())
}

async fn revoke_invites(
    state: &AppState,
    admin: &UserSummary,
    handle: &str,
    subtree: bool,
) -> ApiResult<RevokeInvitesOutcome> {
    let user = member_by_handle(state, handle).await?;
    let revoked = state.store.revoke_invites_of(&user.id, subtree).await?;
    let details = format!(
        "{}; revoked: {revoked}",
        if subtree {
            "whole subtree"
        } else {
            "member only"
        }
    );
    state
        .store
        .audit(&admin.id, "revoke_invites", &user.handle, &details)
        .await?;
    Ok(RevokeInvitesOutcome { revoked })
}

async fn resolve(
    state: &AppState,
    admin: &UserSummary,
    id: &str,
    status: ReportStatus,
    raw_note: &str,
) -> ApiResult<Report> {
    if status == ReportStatus::Open {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            "status is resolved or dismissed",
        ));
    }
    let text = note(raw_note, "a note")?;
    if !super::pages::plausible(id, 64) {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "no open report with this id",
        ));
    }
    state
        .store
        .resolve_report(id, status, &admin.id, &text)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => {
                ApiError::new(ErrorCode::NotFound, "no open report with this id")
            }
            e => e.into(),
        })?;
    let action = match status {
        ReportStatus::Dismissed => "dismiss_report",
        _ => "resolve_report",
    };
    state.store.audit(&admin.id, action, id, &text).await?;
    Ok(state.store.report(id).await?)
}

async fn member_view(
    state: &AppState,
    viewer: &UserSummary,
    handle: &str,
) -> ApiResult<AdminMember> {
    let user = member_by_handle(state, handle).await?;
    let profile = state.store.profile(&viewer.id, &user.id).await?;
    let (banned_at, ban_reason) = state.store.ban_state(&user.id).await?;
    Ok(AdminMember {
        profile,
        banned_at,
        ban_reason,
        unused_invites: state.store.unused_invite_count(&user.id).await?,
        reports: state.store.reports_about(&user.id, 50).await?,
    })
}

/// A report list query: status, kind, cursor, limit.
type ReportQuery = (
    ReportStatus,
    Option<ReportKind>,
    Option<(i64, String)>,
    usize,
);

/// Reads `status`, `kind`, `limit`, `cursor` of a report list query.
fn report_query(query: Option<&str>) -> ApiResult<ReportQuery> {
    let mut status = ReportStatus::Open;
    let mut kind = None;
    let mut rest = Vec::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*k {
            "status" => {
                status = ReportStatus::parse(&v).ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidField,
                        "status is open, resolved or dismissed",
                    )
                })?
            }
            "kind" if v.is_empty() => {}
            "kind" => {
                kind = Some(ReportKind::parse(&v).ok_or_else(|| {
                    ApiError::new(ErrorCode::InvalidField, "kind is member, room or message")
                })?)
            }
            _ => rest.push(format!("{k}={v}")),
        }
    }
    let (cursor, limit) = super::social::page_query(Some(&rest.join("&")))?;
    Ok((status, kind, cursor, limit))
}

// ----- JSON API -----

async fn api_reports(
    State(state): State<AppState>,
    Authed(me): Authed,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<ReportPage>> {
    require_admin(&me)?;
    let (status, kind, cursor, limit) = report_query(query.as_deref())?;
    let (reports, next_cursor) = state.store.report_page(status, kind, cursor, limit).await?;
    Ok(Json(ReportPage {
        reports,
        next_cursor,
    }))
}

async fn api_resolve(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(id): Path<String>,
    Body(body): Body,
) -> ApiResult<Json<Report>> {
    require_admin(&me)?;
    let req: ResolveReportRequest = parse_json(&body)?;
    Ok(Json(
        resolve(&state, &me.user, &id, req.status, &req.note).await?,
    ))
}

async fn api_member(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(handle): Path<String>,
) -> ApiResult<Json<AdminMember>> {
    require_admin(&me)?;
    Ok(Json(member_view(&state, &me.user, &handle).await?))
}

/// A body that may be empty (then the default).
fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse_json(&axum::body::Bytes::copy_from_slice(body))
    }
}

async fn api_ban(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(handle): Path<String>,
    Body(body): Body,
) -> ApiResult<Json<BanOutcome>> {
    require_admin(&me)?;
    let req: BanRequest = optional_json(&body)?;
    Ok(Json(ban(&state, &me.user, &handle, &req.reason).await?))
}

async fn api_unban(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(handle): Path<String>,
) -> ApiResult<StatusCode> {
    require_admin(&me)?;
    unban(&state, &me.user, &handle).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn api_revoke_invites(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(handle): Path<String>,
    Body(body): Body,
) -> ApiResult<Json<RevokeInvitesOutcome>> {
    require_admin(&me)?;
    let req: RevokeInvitesRequest = optional_json(&body)?;
    Ok(Json(
        revoke_invites(&state, &me.user, &handle, req.subtree).await?,
    ))
}

async fn api_audit(
    State(state): State<AppState>,
    Authed(me): Authed,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<AuditPage>> {
    require_admin(&me)?;
    let (cursor, limit) = super::social::page_query(query.as_deref())?;
    let (entries, next_cursor) = state.store.audit_page(cursor, limit).await?;
    Ok(Json(AuditPage {
        entries,
        next_cursor,
    }))
}

// ----- the console -----

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const CSS: &str = include_str!("../../web/admin.css");

fn page(
    status: StatusCode,
    title: &str,
    admin: Option<(&UserSummary, &str)>,
    body: &str,
) -> Response {
    let nav = match admin {
        Some((a, csrf)) => format!(
            "<nav><a href=\"/admin\">Reports</a> <a href=\"/admin/audit\">Audit log</a>
<form class=\"inline\" method=\"get\" action=\"/admin/members\"><input name=\"handle\" placeholder=\"handle\" aria-label=\"member handle\"><button>Find</button></form>
<form class=\"inline\" method=\"post\" action=\"/admin/sign-out\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button>Sign out @{}</button></form></nav>",
            escape(csrf),
            escape(&a.handle)
        ),
        None => String::new(),
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">
<meta name=\"robots\" content=\"noindex\">
<title>{} · Ruang admin</title><link rel=\"stylesheet\" href=\"/admin/admin.css\"></head>
<body><header><h1>Ruang admin</h1>{nav}</header><main>{body}</main></body></html>",
        escape(title)
    );
    let mut resp = (status, html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

async fn console_css() -> Response {
    let mut resp = CSS.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

fn sign_in_page(status: StatusCode, message: &str) -> Response {
    let msg = if message.is_empty() {
        String::new()
    } else {
        format!("<p class=\"error\">{}</p>", escape(message))
    };
    page(
        status,
        "Sign in",
        None,
        &format!(
            "<h2>Sign in</h2>{msg}<form method=\"post\" action=\"/admin/sign-in\">
<label>Admin session token<input type=\"password\" name=\"token\" autocomplete=\"off\" required></label>
<button>Sign in</button></form>
<p class=\"hint\">Paste the session token of an admin account (for example from <code>ruang signup</code>).</p>"
        ),
    )
}

fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    page(
        status,
        title,
        None,
        &format!(
            "<h2>{}</h2><p>{}</p><p><a href=\"/admin\">Back</a></p>",
            escape(title),
            escape(message)
        ),
    )
}

fn cookie_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// Whether a state-changing request comes from this server's own pages: `Origin` (or,
/// without it, `Referer`) must be the public URL's origin.
fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    let ours = origin_of(&state.public_url);
    if let Some(o) = headers.get(header::ORIGIN) {
        return o.to_str().ok().map(|o| o.trim_end_matches('/')) == ours.as_deref();
    }
    match headers.get(header::REFERER).and_then(|r| r.to_str().ok()) {
        Some(r) => origin_of(r) == ours,
        None => false,
    }
}

fn origin_of(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    Some(u.origin().ascii_serialization())
}

/// The signed-in admin of a console request: (admin, CSRF token), or the response to send.
async fn console_admin(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(UserSummary, String), Response> {
    let Some(cookie) = cookie_of(headers) else {
        return Err(sign_in_page(StatusCode::OK, ""));
    };
    match state.store.admin_session(&cookie).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(sign_in_page(
            StatusCode::OK,
            "Your admin session ended; sign in again.",
        )),
        Err(e) => Err(ApiError::from(e).into_response()),
    }
}

/// A state-changing console request: signed in, same origin, and the form's CSRF token
/// is the session's. Returns the admin and the parsed form.
async fn console_post(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(UserSummary, String, Vec<(String, String)>), Response> {
    if !same_origin(state, headers) {
        return Err(message_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "This form must be sent from this server's own admin pages.",
        ));
    }
    let (admin, csrf) = match console_admin(state, headers).await {
        Ok(a) => a,
        Err(_) => {
            return Err(message_page(
                StatusCode::FORBIDDEN,
                "Refused",
                "Sign in as an admin first.",
            ))
        }
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let sent = field(&form, "csrf");
    let ok = sent.len() == csrf.len()
        && sent
            .bytes()
            .zip(csrf.bytes())
            .fold(0u8, |d, (a, b)| d | (a ^ b))
            == 0;
    if !ok {
        return Err(message_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "The form's security token is missing or wrong; reload the page and try again.",
        ));
    }
    Ok((admin, csrf, form))
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

fn see_other(to: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn error_page(e: ApiError) -> Response {
    let status = StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    message_page(status, "Could not do that", &e.message)
}

fn time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

async fn console_sign_in(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !same_origin(&state, &headers) {
        return message_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "This form must be sent from this server's own admin pages.",
        );
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let token = field(&form, "token").trim();
    if token.is_empty() || token.len() > 256 {
        return sign_in_page(StatusCode::BAD_REQUEST, "Paste a session token.");
    }
    let me = match authenticate(&state, ip, token).await {
        Ok(me) => me,
        Err(e) if e.code == ErrorCode::RateLimited => return error_page(e),
        Err(_) => return sign_in_page(StatusCode::UNAUTHORIZED, "Unknown or revoked token."),
    };
    if !me.is_admin {
        return message_page(
            StatusCode::FORBIDDEN,
            "Not an admin",
            "This account is not an admin of this server.",
        );
    }
    let (cookie, _csrf) = match state
        .store
        .create_admin_session(&me.user.id, SESSION_MS)
        .await
    {
        Ok(c) => c,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let _ = state
        .store
        .audit(&me.user.id, "console_sign_in", &me.user.handle, "")
        .await;
    let secure = if state.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let mut resp = see_other("/admin");
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{COOKIE}={cookie}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        SESSION_MS / 1000
    )) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

async fn console_sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = console_post(&state, &headers, &body).await {
        return r;
    }
    if let Some(cookie) = cookie_of(&headers) {
        let _ = state.store.end_admin_session(&cookie).await;
    }
    let mut resp = see_other("/admin");
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("ruang_admin=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    resp
}

fn report_html(r: &Report, csrf: Option<&str>) -> String {
    let mut out = String::new();
    let target = match r.kind {
        ReportKind::Member => r
            .target_user
            .as_ref()
            .map(|u| {
                format!(
                    "member <a href=\"/admin/members/{0}\">@{0}</a>",
                    escape(&u.handle)
                )
            })
            .unwrap_or_default(),
        ReportKind::Room => format!(
            "room <code>{}</code>",
            escape(r.target_room.as_ref().map(|r| r.as_str()).unwrap_or(""))
        ),
        ReportKind::Message => format!(
            "message <code>{}</code> in room <code>{}</code>",
            escape(r.target_message.as_deref().unwrap_or("")),
            escape(r.target_room.as_ref().map(|r| r.as_str()).unwrap_or(""))
        ),
    };
    let _ = write!(
        out,
        "<article class=\"report\"><h3>{} · {}</h3><p>Reported by <a href=\"/admin/members/{}\">@{}</a> on {}{}</p>",
        escape(r.reason.as_str()),
        target,
        escape(&r.reporter.handle),
        escape(&r.reporter.handle),
        time(r.created_at),
        if r.count > 1 {
            format!(" ({} times, last {})", r.count, time(r.updated_at))
        } else {
            String::new()
        }
    );
    if !r.details.is_empty() {
        let _ = write!(out, "<blockquote>{}</blockquote>", escape(&r.details));
    }
    let e = &r.evidence;
    let mut ev = String::new();
    if let Some(t) = &e.room_title {
        let _ = write!(ev, "<li>Room title: {}</li>", escape(t));
    }
    if !e.hosts.is_empty() {
        let hosts: Vec<String> = e
            .hosts
            .iter()
            .map(|h| format!("@{}", escape(&h.handle)))
            .collect();
        let _ = write!(ev, "<li>Hosts: {}</li>", hosts.join(", "));
    }
    if !e.stage.is_empty() {
        let stage: Vec<String> = e
            .stage
            .iter()
            .map(|s| format!("@{} ({})", escape(&s.handle), s.role.as_str()))
            .collect();
        let _ = write!(ev, "<li>On stage: {}</li>", stage.join(", "));
    }
    if let Some(ms) = e.room_time_ms {
        let _ = write!(
            ev,
            "<li>Time into the room: {}:{:02}:{:02} ({ms} ms)</li>",
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60
        );
    }
    if let Some(n) = &e.name {
        let _ = write!(ev, "<li>Name: {}</li>", escape(n));
    }
    if let Some(b) = &e.bio {
        let _ = write!(ev, "<li>Bio: {}</li>", escape(b));
    }
    if let Some(t) = &e.message_text {
        let _ = write!(ev, "<li>Message: {}</li>", escape(t));
    }
    if let Some(a) = &e.message_author {
        let _ = write!(ev, "<li>Author: @{}</li>", escape(&a.handle));
    }
    if !ev.is_empty() {
        let _ = write!(
            out,
            "<details open><summary>Evidence</summary><ul>{ev}</ul></details>"
        );
    }
    match (r.status, csrf) {
        (ReportStatus::Open, Some(csrf)) => {
            let _ = write!(
                out,
                "<form method=\"post\" action=\"/admin/reports/{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">
<label>Note<input name=\"note\" maxlength=\"{MAX_NOTE}\"></label>
<button name=\"status\" value=\"resolved\">Resolve</button> <button name=\"status\" value=\"dismissed\">Dismiss</button></form>",
                escape(&r.id),
                escape(csrf)
            );
        }
        (status, _) => {
            let _ = write!(
                out,
                "<p class=\"hint\">{}{}{}</p>",
                escape(status.as_str()),
                r.resolved_by
                    .as_ref()
                    .map(|u| format!(" by @{}", escape(&u.handle)))
                    .unwrap_or_default(),
                r.resolution_note
                    .as_deref()
                    .filter(|n| !n.is_empty())
                    .map(|n| format!(": {}", escape(n)))
                    .unwrap_or_default()
            );
        }
    }
    out.push_str("</article>");
    out
}

async fn console_reports(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (admin, csrf) = match console_admin(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let (status, kind, cursor, limit) = match report_query(query.as_deref()) {
        Ok(q) => q,
        Err(e) => return error_page(e),
    };
    let (reports, next) = match state.store.report_page(status, kind, cursor, limit).await {
        Ok(p) => p,
        Err(e) => return error_page(e.into()),
    };
    let mut body = String::from("<h2>Reports</h2><nav class=\"filters\">");
    for (label, s, k) in [
        ("Open", "open", ""),
        ("Members", "open", "member"),
        ("Rooms", "open", "room"),
        ("Messages", "open", "message"),
        ("Resolved", "resolved", ""),
        ("Dismissed", "dismissed", ""),
    ] {
        let current = s == status.as_str() && k == kind.map(|k| k.as_str()).unwrap_or("");
        let _ = write!(
            body,
            "<a href=\"/admin?status={s}&amp;kind={k}\"{}>{label}</a> ",
            if current {
                " aria-current=\"page\""
            } else {
                ""
            }
        );
    }
    body.push_str("</nav>");
    if reports.is_empty() {
        body.push_str("<p>No reports here.</p>");
    }
    for r in &reports {
        body.push_str(&report_html(r, Some(&csrf)));
    }
    if let Some(n) = next {
        let _ = write!(
            body,
            "<p><a href=\"/admin?status={}&amp;kind={}&amp;cursor={}\">More</a></p>",
            status.as_str(),
            kind.map(|k| k.as_str()).unwrap_or(""),
            escape(&n)
        );
    }
    page(StatusCode::OK, "Reports", Some((&admin, &csrf)), &body)
}

async fn console_resolve(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (admin, _, form) = match console_post(&state, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(status) = ReportStatus::parse(field(&form, "status")) else {
        return error_page(ApiError::new(
            ErrorCode::InvalidField,
            "status is resolved or dismissed",
        ));
    };
    match resolve(&state, &admin, &id, status, field(&form, "note")).await {
        Ok(_) => see_other("/admin"),
        Err(e) => error_page(e),
    }
}

async fn console_find_member(
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    State(state): State<AppState>,
) -> Response {
    if let Err(r) = console_admin(&state, &headers).await {
        return r;
    }
    let handle = url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "handle")
        .map(|(_, v)| v.trim().trim_start_matches('@').to_owned())
        .unwrap_or_default();
    if ruang_proto::validate_handle(&handle).is_err() {
        return message_page(
            StatusCode::BAD_REQUEST,
            "No such member",
            "Type a member's handle.",
        );
    }
    see_other(&format!("/admin/members/{handle}"))
}

async fn console_member(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(handle): Path<String>,
) -> Response {
    let (admin, csrf) = match console_admin(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let m = match member_view(&state, &admin, &handle).await {
        Ok(m) => m,
        Err(e) => return error_page(e),
    };
    let p = &m.profile;
    let h = escape(&p.handle);
    let c = escape(&csrf);
    let mut body = format!(
        "<h2>@{h} · {}</h2><p>Member since {}{}{}</p><p>Followers {} · following {} · unused invites {}</p>",
        escape(&p.name),
        time(p.created_at),
        p.invited_by
            .as_ref()
            .map(|i| format!(", invited by <a href=\"/admin/members/{0}\">@{0}</a>", escape(&i.handle)))
            .unwrap_or_default(),
        if p.is_admin { " · admin" } else { "" },
        p.followers,
        p.following,
        m.unused_invites
    );
    match m.banned_at {
        Some(at) => {
            let _ = write!(
                body,
                "<p class=\"error\">Banned on {}{}</p>
<form method=\"post\" action=\"/admin/members/{h}/unban\"><input type=\"hidden\" name=\"csrf\" value=\"{c}\"><button>Unban</button></form>",
                time(at),
                m.ban_reason
                    .as_deref()
                    .filter(|r| !r.is_empty())
                    .map(|r| format!(": {}", escape(r)))
                    .unwrap_or_default()
            );
        }
        None => {
            let _ = write!(
                body,
                "<form method=\"post\" action=\"/admin/members/{h}/ban\"><input type=\"hidden\" name=\"csrf\" value=\"{c}\">
<label>Reason<input name=\"reason\" maxlength=\"{MAX_NOTE}\"></label><button class=\"danger\">Ban</button></form>"
            );
        }
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/admin/members/{h}/revoke-invites\"><input type=\"hidden\" name=\"csrf\" value=\"{c}\">
<label><input type=\"checkbox\" name=\"subtree\" value=\"1\"> with everyone they invited, and so on</label>
<button>Revoke unused invites</button></form><h3>Reports about @{h}</h3>"
    );
    if m.reports.is_empty() {
        body.push_str("<p>None.</p>");
    }
    for r in &m.reports {
        body.push_str(&report_html(r, Some(&csrf)));
    }
    page(
        StatusCode::OK,
        &format!("@{}", p.handle),
        Some((&admin, &csrf)),
        &body,
    )
}

async fn console_ban(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(handle): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (admin, _, form) = match console_post(&state, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match ban(&state, &admin, &handle, field(&form, "reason")).await {
        Ok(_) => see_other(&format!("/admin/members/{}", escape(&handle))),
        Err(e) => error_page(e),
    }
}

async fn console_unban(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(handle): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (admin, _, _) = match console_post(&state, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match unban(&state, &admin, &handle).await {
        Ok(()) => see_other(&format!("/admin/members/{}", escape(&handle))),
        Err(e) => error_page(e),
    }
}

async fn console_revoke_invites(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(handle): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (admin, _, form) = match console_post(&state, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let subtree = !field(&form, "subtree").is_empty();
    match revoke_invites(&state, &admin, &handle, subtree).await {
        Ok(_) => see_other(&format!("/admin/members/{}", escape(&handle))),
        Err(e) => error_page(e),
    }
}

async fn console_audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (admin, csrf) = match console_admin(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let (cursor, limit) = match super::social::page_query(query.as_deref()) {
        Ok(q) => q,
        Err(e) => return error_page(e),
    };
    let (entries, next) = match state.store.audit_page(cursor, limit).await {
        Ok(p) => p,
        Err(e) => return error_page(e.into()),
    };
    let mut body = String::from(
        "<h2>Audit log</h2><table><thead><tr><th>When</th><th>Who</th><th>What</th><th>Target</th><th>Details</th></tr></thead><tbody>",
    );
    for e in &entries {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>@{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            time(e.created_at),
            escape(&e.actor.handle),
            escape(&e.action),
            escape(&e.target),
            escape(&e.details)
        );
    }
    body.push_str("</tbody></table>");
    if let Some(n) = next {
        let _ = write!(
            body,
            "<p><a href=\"/admin/audit?cursor={}\">More</a></p>",
            escape(&n)
        );
    }
    page(StatusCode::OK, "Audit log", Some((&admin, &csrf)), &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_origins() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; ruang_admin=xyz; b=2"),
        );
        assert_eq!(cookie_of(&h).as_deref(), Some("xyz"));
        h.insert(header::COOKIE, HeaderValue::from_static("ruang_admin="));
        assert_eq!(cookie_of(&h), None);
        assert_eq!(
            origin_of("https://ruang.example/base").as_deref(),
            Some("https://ruang.example")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
    }
}
