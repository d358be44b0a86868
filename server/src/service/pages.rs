//! The pages behind shared links: `GET /r/ROOM` (room landing page; listen in the browser)
//! and `GET /i/CODE` (invite landing page), plus their one script and one stylesheet.
//!
//! Server-rendered HTML, every user string escaped, a strict Content-Security-Policy (no
//! inline script or style), Open Graph tags for link previews in chat apps.

use super::http::ClientIp;
use super::metrics::Metrics;
use super::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ruang_proto::{
    avatar_path, normalize_invite_code, RoomId, RoomKind, UserSummary, AVATAR_PROFILE, AVATAR_TILE,
};
use std::fmt::Write;

const SCRIPT: &str = include_str!("../../web/room.js");
const STYLE: &str = include_str!("../../web/room.css");
const NOTIFY: &str = include_str!("../../web/notify.js");
const WORKER: &str = include_str!("../../web/sw.js");
const REPORT: &str = include_str!("../../web/report.js");
const SFRAME: &str = include_str!("../../web/sframe.js");

/// Cache-busting versions of the assets, so they can be cached for long.
const SCRIPT_VERSION: u64 = fnv1a(SCRIPT.as_bytes());
const STYLE_VERSION: u64 = fnv1a(STYLE.as_bytes());
const NOTIFY_VERSION: u64 = fnv1a(NOTIFY.as_bytes());
const REPORT_VERSION: u64 = fnv1a(REPORT.as_bytes());
const SFRAME_VERSION: u64 = fnv1a(SFRAME.as_bytes());

pub(super) const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

/// No inline code at all; media from WebRTC streams only; the page cannot be framed.
/// `connect-src` names the public WebSocket origin too: older Safari does not let
/// `'self'` cover `ws:`/`wss:`.
fn csp(public_url: &str) -> String {
    let ws = public_url
        .strip_prefix("https://")
        .map(|rest| ("wss://", rest))
        .or_else(|| {
            public_url
                .strip_prefix("http://")
                .map(|rest| ("ws://", rest))
        })
        .map(|(scheme, rest)| format!(" {scheme}{}", rest.split('/').next().unwrap_or("")))
        .filter(|o| o.bytes().all(|b| b.is_ascii_graphic() || b == b' '))
        .unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'{ws}; \
         media-src 'self' blob: mediastream:; img-src 'self' data:; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    )
}

/// Escapes text for HTML element content and double- or single-quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One value of a raw query string (`t`, `listen`); malformed pairs are ignored.
pub fn query_value(query: Option<&str>, key: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_owned())
}

/// Ids and link tokens are short strings of `a-z0-9`; anything else is not looked up.
pub fn plausible(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

pub(super) fn html(state: &AppState, status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&csp(&state.public_url)) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    // Closed rooms' links carry their key: never send it on as a referrer.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The pages link them with ?v=<content hash>, so a new version is a new URL.
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

pub async fn script() -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

pub async fn style() -> Response {
    asset(STYLE, "text/css; charset=utf-8")
}

/// `GET /web/sframe.js`: the worker that decrypts an encrypted room's audio for guests.
pub async fn sframe_worker() -> Response {
    asset(SFRAME, "text/javascript; charset=utf-8")
}

/// `GET /web/report.js`: the report form of the room and replay pages.
pub async fn report_script() -> Response {
    asset(REPORT, "text/javascript; charset=utf-8")
}

/// `GET /web/notify.js`: the event page's "Notify me".
pub async fn notify_script() -> Response {
    asset(NOTIFY, "text/javascript; charset=utf-8")
}

/// `GET /web/sw.js`: the service worker that shows pushes. Never cached: browsers check it
/// for updates, and its URL cannot carry a version.
pub async fn service_worker() -> Response {
    let mut resp = asset(WORKER, "text/javascript; charset=utf-8");
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// Open Graph and page metadata.
pub(super) struct Meta<'a> {
    pub(super) title: &'a str,
    pub(super) description: &'a str,
    pub(super) url: &'a str,
    /// Absolute URL of the preview image (a host's photo).
    pub(super) image: Option<String>,
}

/// The page around `body` (already escaped HTML). Assets are linked relative to the page
/// so a server under a path prefix works too.
pub(super) fn page(meta: &Meta, with_script: bool, body: &str) -> String {
    page_with(meta, if with_script { Some("room") } else { None }, body)
}

/// [`page`] with one of the page scripts: `room` (`/r/`) or `notify` (`/e/`).
pub(super) fn page_with(meta: &Meta, script: Option<&str>, body: &str) -> String {
    let title = escape(meta.title);
    let description = escape(meta.description);
    let url = escape(meta.url);
    let image = match &meta.image {
        Some(i) => format!(
            "<meta property=\"og:image\" content=\"{}\">\n<meta property=\"og:image:width\" content=\"{AVATAR_PROFILE}\">\n<meta property=\"og:image:height\" content=\"{AVATAR_PROFILE}\">\n",
            escape(i)
        ),
        None => String::new(),
    };
    let script = match script {
        // report.js first: the room page's script opens its form.
        Some("room") => format!(
            "<script src=\"../web/report.js?v={REPORT_VERSION:x}\" defer></script>\n<script src=\"../web/room.js?v={SCRIPT_VERSION:x}\" defer></script>\n"
        ),
        Some("replay") => format!(
            "<script src=\"../web/report.js?v={REPORT_VERSION:x}\" defer></script>\n<script src=\"../web/replay.js?v={:x}\" defer></script>\n",
            super::replays::SCRIPT_VERSION
        ),
        Some(_) => {
            format!("<script src=\"../web/notify.js?v={NOTIFY_VERSION:x}\" defer></script>\n")
        }
        None => String::new(),
    };
    format!(
        "<!doctype html>
<html lang=\"en\">
<head>
<meta charset=\"utf-8\">
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">
<title>{title} · Ruang</title>
<meta name=\"description\" content=\"{description}\">
<meta name=\"robots\" content=\"noindex\">
<link rel=\"icon\" href=\"data:,\">
<meta property=\"og:site_name\" content=\"Ruang\">
<meta property=\"og:type\" content=\"website\">
<meta property=\"og:title\" content=\"{title}\">
<meta property=\"og:description\" content=\"{description}\">
<meta property=\"og:url\" content=\"{url}\">
{image}<meta name=\"twitter:card\" content=\"summary\">
<link rel=\"stylesheet\" href=\"../web/room.css?v={STYLE_VERSION:x}\">
{script}</head>
<body>
<main id=\"main\">
{body}
</main>
<footer><p>Ruang: live audio rooms. Open source; anyone can run a server.</p></footer>
</body>
</html>
"
    )
}

fn initial(name: &str) -> String {
    name.chars()
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default()
}

/// A person's round face: their photo, or their initial. Linked relative to the page.
fn face(user: &UserSummary) -> String {
    match &user.avatar {
        Some(hash) if plausible(hash, 64) => format!(
            "<span class=\"avatar\" aria-hidden=\"true\"><img src=\"..{}\" alt=\"\" width=\"{AVATAR_TILE}\" height=\"{AVATAR_TILE}\"></span>",
            escape(&avatar_path(hash, AVATAR_TILE))
        ),
        _ => format!(
            "<span class=\"avatar\" aria-hidden=\"true\">{}</span>",
            escape(&initial(&user.name))
        ),
    }
}

/// The absolute URL of a person's large photo, for link previews.
fn preview_image(state: &AppState, user: &UserSummary) -> Option<String> {
    let hash = user.avatar.as_deref().filter(|h| plausible(h, 64))?;
    Some(format!(
        "{}{}",
        state.public_url,
        avatar_path(hash, AVATAR_PROFILE)
    ))
}

fn plural(n: u32, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// `GET /r/ROOM[?t=LINKTOKEN][&listen=1]`.
pub async fn room(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    // Link tokens are 24 hex characters; anything else is ignored, never echoed.
    let token = query_value(query.as_deref(), "t")
        .filter(|t| plausible(t, 64))
        .unwrap_or_default();
    let listen = query_value(query.as_deref(), "listen").is_some_and(|v| v == "1");
    if !plausible(&id, 32) {
        return room_missing(&state);
    }
    let id = RoomId(id);
    let Some(room) = state.registry.get(&id) else {
        Metrics::inc(&state.metrics.room_page_lookups);
        return match state.store.room_record(&id).await {
            // Closed rooms stay hidden without their key, ended or not.
            Ok(Some((r, true))) if r.kind != RoomKind::Closed || r.link_token == token => {
                let url = link(&state, &id, r.kind, &token);
                match super::replays::replay_page(&state, &r, &token, &url).await {
                    Some(page) => page,
                    None => room_ended(&state, &r.title, &url),
                }
            }
            Ok(_) => room_missing(&state),
            Err(e) => {
                tracing::error!(error = %e, "room page: database error");
                error_page(&state)
            }
        };
    };
    if room.kind() == RoomKind::Closed && !room.link_matches(&token) {
        // The same database lookup an unknown id costs, so timing tells nothing about
        // which closed rooms are live.
        Metrics::inc(&state.metrics.room_page_lookups);
        let _ = state.store.room_record(&id).await;
        return room_missing(&state);
    }
    let view = room.view_for(&ruang_proto::UserId(String::new()));
    let url = link(&state, &id, view.kind, &token);
    let app_url = format!(
        "ruang://r/{}{}",
        id.as_str(),
        if view.kind == RoomKind::Closed {
            format!("?t={token}")
        } else {
            String::new()
        }
    );
    let names: Vec<&str> = view.stage.iter().map(|(u, _)| u.name.as_str()).collect();
    let description = format!(
        "Live audio room on Ruang. On stage: {}. {}.",
        if names.is_empty() {
            "nobody yet".to_owned()
        } else {
            names.join(", ")
        },
        plural(view.listener_count, "person listening", "people listening"),
    );
    let mut stage = String::new();
    for (user, role) in &view.stage {
        let _ = writeln!(
            stage,
            "<li data-user=\"{}\">{}\
             <span class=\"name\">{}</span><span class=\"role\">{}</span></li>",
            escape(user.id.as_str()),
            face(user),
            escape(&user.name),
            if *role == ruang_proto::Role::Moderator {
                "Host"
            } else {
                "Speaker"
            },
        );
    }
    let next = next_from_host(&state, &view.stage).await;
    let body = format!(
        "<div id=\"room\" data-room=\"{id}\" data-link-token=\"{token}\" data-listen=\"{listen}\" data-sframe=\"../web/sframe.js?v={SFRAME_VERSION:x}\">
<p class=\"live\"><span class=\"dot\" aria-hidden=\"true\"></span>Live audio room</p>
<p id=\"recording\" class=\"recording\"{recording_hidden}>Recording: this room is being recorded</p>
<p id=\"e2ee\" class=\"e2ee\"{e2ee_hidden}>End-to-end encrypted audio: only the people in this room hold its keys. This server forwards audio it cannot listen to, and nothing is recorded. The chat is not end-to-end encrypted.</p>
<h1 id=\"title\">{title}</h1>
<section aria-labelledby=\"stage-heading\">
<h2 id=\"stage-heading\">On stage</h2>
<ul id=\"stage\" class=\"stage\">
{stage}</ul>
</section>
<p id=\"speaking\" class=\"speaking-now\" aria-live=\"polite\" aria-atomic=\"true\"></p>
<p class=\"count\"><span id=\"listeners\">{listeners}</span> listening</p>
<div class=\"actions\">
<button id=\"listen\" type=\"button\" class=\"button primary\">Listen here</button>
<button id=\"mute\" type=\"button\" class=\"button\" hidden>Mute</button>
<button id=\"hand\" type=\"button\" class=\"button\" hidden>Raise hand</button>
<a id=\"open-app\" class=\"button\" href=\"{url}\">Open in the app</a>
</div>
<div id=\"invite\" class=\"invite\" role=\"alertdialog\" aria-labelledby=\"invite-text\" hidden>
<p id=\"invite-text\"></p>
<button id=\"accept\" type=\"button\" class=\"button primary\">Join the stage</button>
<button id=\"decline\" type=\"button\" class=\"button\">Not now</button>
</div>
<p id=\"status\" role=\"status\"></p>
<noscript><p>Listening here needs JavaScript; the app works without it.</p></noscript>
{next}<p class=\"small\">Have the app but this page stays open? <a href=\"{app_url}\">Open it with the ruang:// link</a>.
No app yet? Ruang is invite-only for now: ask a member for an invite. You can listen here without an account.</p>
</div>",
        id = escape(id.as_str()),
        token = escape(&token),
        listen = u8::from(listen),
        title = escape(&view.title),
        recording_hidden = if view.recording { "" } else { " hidden" },
        e2ee_hidden = if view.e2ee { "" } else { " hidden" },
        listeners = view.listener_count,
        url = escape(&url),
        app_url = escape(&app_url),
        next = next,
    );
    // The preview shows the first host with a photo.
    let image = view
        .stage
        .iter()
        .filter(|(_, r)| *r == ruang_proto::Role::Moderator)
        .chain(view.stage.iter())
        .find_map(|(u, _)| preview_image(&state, u));
    let meta = Meta {
        title: &view.title,
        description: &description,
        url: &url,
        image,
    };
    html(&state, StatusCode::OK, page(&meta, true, &body))
}

/// "Next from HOST": the room's first host's next scheduled rooms that anyone may see (open
/// ones), each linking to its `/e/` page, where "Notify me" is. Empty when there are none.
async fn next_from_host(state: &AppState, stage: &[(UserSummary, ruang_proto::Role)]) -> String {
    let Some((host, _)) = stage
        .iter()
        .find(|(_, r)| *r == ruang_proto::Role::Moderator)
    else {
        return String::new();
    };
    let nobody = ruang_proto::UserId(String::new());
    let events = match state
        .store
        .upcoming_events(&nobody, crate::store::now_ms(), Some(&host.id), 10)
        .await
    {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "room page: the host's next rooms");
            return String::new();
        }
    };
    let items: Vec<String> = events
        .iter()
        .filter(|e| super::social::listed_to(e, &nobody, &std::collections::HashSet::new()))
        .take(3)
        .map(|e| {
            format!(
                "<li><a href=\"../e/{id}\">{title}</a> <span class=\"small\"><time datetime=\"{local}\">{when}</time></span> \
                 <a class=\"button\" href=\"../e/{id}\" aria-label=\"Notify me about {title}\">Notify me</a></li>",
                id = escape(&e.id),
                title = escape(&e.title),
                local = escape(&super::social::local_time(e.starts_at, &e.time_zone)),
                when = escape(&human_time(e.starts_at, &e.time_zone)),
            )
        })
        .collect();
    if items.is_empty() {
        return String::new();
    }
    format!(
        "<section aria-labelledby=\"next-heading\">\n<h2 id=\"next-heading\">Next from {}</h2>\n<ul class=\"next\">\n{}\n</ul>\n</section>\n",
        escape(&host.name),
        items.join("\n")
    )
}

/// Unknown paths: under `/r/` and `/i/` (extra segments, empty ids) a person followed a
/// mangled link, so they get the page; everything else keeps the API's JSON 404.
pub async fn fallback(State(state): State<AppState>, uri: axum::http::Uri) -> Response {
    let path = uri.path();
    // Chat apps and people sometimes add a trailing slash: send them to the real page.
    if let Some(trimmed) = path.strip_suffix('/') {
        let one_segment = |prefix: &str| {
            trimmed
                .strip_prefix(prefix)
                .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
        };
        if one_segment("/r/") || one_segment("/i/") {
            let target = match uri.query() {
                Some(q) => format!("..{}?{q}", &trimmed[2..]),
                None => format!("..{}", &trimmed[2..]),
            };
            return axum::response::Redirect::permanent(&target).into_response();
        }
    }
    if path.starts_with("/r/") || path == "/r" {
        room_missing(&state)
    } else if path.starts_with("/i/") || path == "/i" {
        invite_unusable(&state)
    } else if path.starts_with("/e/") || path == "/e" {
        event_missing(&state)
    } else {
        super::http::not_found().await.into_response()
    }
}

/// The shareable https link of a room (closed rooms carry their key).
fn link(state: &AppState, id: &RoomId, kind: RoomKind, token: &str) -> String {
    if kind == RoomKind::Closed {
        format!("{}/r/{}?t={token}", state.public_url, id.as_str())
    } else {
        format!("{}/r/{}", state.public_url, id.as_str())
    }
}

/// Unknown rooms, and closed rooms without their key, get the same page.
fn room_missing(state: &AppState) -> Response {
    let body = "<h1>This room isn't available</h1>
<p>It may have ended, or the link may be incomplete. If someone shared a private room with
you, ask them for the whole link.</p>
<p>Rooms on Ruang are live conversations: when the hosts end a room, it is gone.</p>";
    let meta = Meta {
        title: "Room not available",
        description: "This Ruang room is not available.",
        url: &state.public_url,
        image: None,
    };
    html(state, StatusCode::NOT_FOUND, page(&meta, false, body))
}

fn room_ended(state: &AppState, title: &str, url: &str) -> Response {
    let body = format!(
        "<h1>“{}” has ended</h1>
<p>Rooms on Ruang are live conversations: when the hosts end a room, it is gone.
Open the app to find rooms that are live now.</p>",
        escape(title)
    );
    let meta = Meta {
        title,
        description: "This live audio room on Ruang has ended.",
        url,
        image: None,
    };
    html(state, StatusCode::GONE, page(&meta, false, &body))
}

pub(super) fn error_page(state: &AppState) -> Response {
    let meta = Meta {
        title: "Something went wrong",
        description: "Ruang could not show this page.",
        url: &state.public_url,
        image: None,
    };
    let body = "<h1>Something went wrong</h1><p>Please try again in a moment.</p>";
    html(
        state,
        StatusCode::INTERNAL_SERVER_ERROR,
        page(&meta, false, body),
    )
}

/// `GET /i/CODE`: who invites, and how to get in. Every unusable code (unknown, used,
/// revoked, malformed) gets the same page, so the page tells nothing about other codes.
pub async fn invite(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(code): Path<String>,
) -> Response {
    let Ok(attempt) = state.limiter.check(ip) else {
        let meta = Meta {
            title: "Too many tries",
            description: "Too many tries from this network.",
            url: &state.public_url,
            image: None,
        };
        let body = "<h1>Too many tries</h1><p>Too many invite links were tried from this \
            network. Wait a minute, then open the link again.</p>";
        return html(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            page(&meta, false, body),
        );
    };
    let code = normalize_invite_code(&code);
    let check = if plausible(&code, 64) {
        state.store.check_invite(&code).await
    } else {
        Err(crate::store::StoreError::InvalidInvite)
    };
    let inviter = match check {
        Ok(c) => c.invited_by,
        Err(crate::store::StoreError::InvalidInvite) => {
            attempt.fail();
            Metrics::inc(&state.metrics.auth_failures);
            return invite_unusable(&state);
        }
        Err(e) => {
            tracing::error!(error = %e, "invite page: database error");
            return error_page(&state);
        }
    };
    let url = format!("{}/i/{code}", state.public_url);
    let (title, from) = match &inviter {
        Some(u) => (
            format!("{} invited you to Ruang", u.name),
            format!(
                "<strong>{}</strong> (@{})",
                escape(&u.name),
                escape(&u.handle)
            ),
        ),
        None => (
            "You're invited to Ruang".to_owned(),
            "the people running this server".to_owned(),
        ),
    };
    let description = "Ruang is a place for live audio conversations. Membership is by invitation.";
    let body = format!(
        "<h1>{title}</h1>
<p>Ruang is a place for live audio conversations: a few people talk on a stage, everyone
else listens, and listeners raise a hand to speak. Membership is by invitation, and this
invitation is from {from}.</p>
<h2>How to join</h2>
<ol>
<li>Install the Ruang app for Android.</li>
<li>Open this link again on your phone, or enter this code on the app's welcome screen:
<code class=\"code\">{code}</code></li>
</ol>
<p>The invitation works once. Until you use it, keep it to yourself.</p>
<div class=\"actions\"><a class=\"button primary\" href=\"{url}\">Open in the app</a></div>
<p class=\"small\">Have the app but this page stays open?
<a href=\"ruang://i/{code}\">Open it with the ruang:// link</a>.</p>",
        title = escape(&title),
        code = escape(&code),
        url = escape(&url),
    );
    let meta = Meta {
        title: &title,
        description,
        url: &url,
        image: None,
    };
    html(&state, StatusCode::OK, page(&meta, false, &body))
}

/// `GET /e/EVENT` (the event's page) and `GET /e/EVENT.ics` (its calendar file). Anyone
/// with the link may open them: event ids are random and not listed for closed events.
pub async fn event(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let (id, ics) = match id.strip_suffix(".ics") {
        Some(id) => (id.to_owned(), true),
        None => (id, false),
    };
    if !plausible(&id, 32) {
        return event_missing(&state);
    }
    let e = match state
        .store
        .event(&ruang_proto::UserId(String::new()), &id)
        .await
    {
        Ok(e) => e,
        Err(crate::store::StoreError::NotFound) => return event_missing(&state),
        Err(e) => {
            tracing::error!(error = %e, "event page: database error");
            return error_page(&state);
        }
    };
    let url = format!("{}/e/{}", state.public_url, e.id);
    if ics {
        return calendar_file(&state, &e, &url);
    }
    let local = super::social::local_time(e.starts_at, &e.time_zone);
    let when = human_time(e.starts_at, &e.time_zone);
    let live_room = e
        .room_id
        .as_ref()
        .filter(|r| super::cluster::is_live(&state, r))
        .cloned();
    // Only a room still to come can be asked about.
    let scheduled = !e.cancelled && e.room_id.is_none();
    let status = if e.cancelled {
        "<p class=\"live\">Cancelled</p>".to_owned()
    } else if let Some(room) = &live_room {
        format!(
            "<p class=\"live\"><span class=\"dot\" aria-hidden=\"true\"></span>Live now</p>
<div class=\"actions\"><a class=\"button primary\" href=\"../r/{}\">Listen</a></div>",
            escape(room.as_str())
        )
    } else if e.room_id.is_some() {
        "<p class=\"live\">This room has ended</p>".to_owned()
    } else {
        "<p class=\"live\">Scheduled room</p>".to_owned()
    };
    let mut hosts = String::new();
    for (u, role) in
        std::iter::once((&e.host, "Host")).chain(e.cohosts.iter().map(|c| (c, "Co-host")))
    {
        let _ = writeln!(
            hosts,
            "<li>{}<span class=\"name\">{}</span><span class=\"role\">{role}</span></li>",
            face(u),
            escape(&u.name),
        );
    }
    let description = if e.description.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"description\">{}</p>",
            escape(&e.description).replace('\n', "<br>")
        )
    };
    let body = format!(
        "<div id=\"event\" data-event=\"{id}\">
{status}
<h1>{title}</h1>
<p class=\"event-when\"><time datetime=\"{local}\">{when}</time></p>
{description}
<section aria-labelledby=\"hosts-heading\">
<h2 id=\"hosts-heading\">Hosts</h2>
<ul class=\"hosts\">
{hosts}</ul>
</section>
<p class=\"count\">{interested}</p>
<div class=\"actions\">
{notify}<a class=\"button\" href=\"{id}.ics\" download>Add to calendar</a>
<a class=\"button\" href=\"ruang://e/{id}\">Open in the app</a>
</div>
<p id=\"notify-status\" role=\"status\"></p>
<p class=\"small\">Ask to be notified here or in the app; the host starts the room at the time above.</p>
</div>",
        notify = if scheduled {
            "<button id=\"notify\" type=\"button\" class=\"button primary\" aria-pressed=\"false\" hidden>Notify me</button>\n"
        } else {
            ""
        },
        id = escape(&e.id),
        title = escape(&e.title),
        local = escape(&local),
        when = escape(&when),
        interested = plural(
            e.interested,
            "person wants to be notified",
            "people want to be notified"
        ),
    );
    let summary = format!(
        "Scheduled audio room on Ruang, {when}, hosted by {}.",
        e.host.name
    );
    let meta = Meta {
        title: &e.title,
        description: &summary,
        url: &url,
        image: preview_image(&state, &e.host),
    };
    let script = if scheduled { Some("notify") } else { None };
    html(&state, StatusCode::OK, page_with(&meta, script, &body))
}

/// "Tue 8 Dec 2026, 19:00 (Asia/Jakarta, UTC+07:00)".
fn human_time(ms: i64, tz: &str) -> String {
    let zone = super::social::time_zone(tz).unwrap_or(jiff::tz::TimeZone::UTC);
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => {
            let z = t.to_zoned(zone);
            format!(
                "{} ({tz}, UTC{})",
                z.strftime("%a %-d %b %Y, %H:%M"),
                z.offset()
            )
        }
        Err(_) => String::new(),
    }
}

fn event_missing(state: &AppState) -> Response {
    let meta = Meta {
        title: "Event not found",
        description: "This Ruang event does not exist.",
        url: &state.public_url,
        image: None,
    };
    let body = "<h1>This event doesn't exist</h1>
<p>The link may be incomplete. Ask whoever shared it for the whole link.</p>";
    html(state, StatusCode::NOT_FOUND, page(&meta, false, body))
}

/// Text escaped for an iCalendar value (RFC 5545 §3.3.11).
fn ics_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds a content line at 75 octets (RFC 5545 §3.1), never inside a UTF-8 character.
fn ics_line(out: &mut String, line: &str) {
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
}

fn ics_stamp(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_default()
}

/// The event as an iCalendar file: one VEVENT, start in UTC, one hour long.
pub fn ics(e: &crate::store::StoredEvent, url: &str, host: &str, now: i64) -> String {
    let mut out = String::new();
    for line in [
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//Ruang//Scheduled rooms//EN".to_owned(),
        "METHOD:PUBLISH".to_owned(),
        "BEGIN:VEVENT".to_owned(),
        format!("UID:{}@{}", e.id, ics_text(host)),
        format!("DTSTAMP:{}", ics_stamp(now)),
        format!("DTSTART:{}", ics_stamp(e.starts_at)),
        "DURATION:PT1H".to_owned(),
        format!("SUMMARY:{}", ics_text(&e.title)),
        format!(
            "DESCRIPTION:{}",
            ics_text(&if e.description.is_empty() {
                format!("Hosted by {} on Ruang. {url}", e.host.name)
            } else {
                format!(
                    "{}\n\nHosted by {} on Ruang. {url}",
                    e.description, e.host.name
                )
            })
        ),
        format!("URL:{url}"),
        format!(
            "STATUS:{}",
            if e.cancelled {
                "CANCELLED"
            } else {
                "CONFIRMED"
            }
        ),
        "END:VEVENT".to_owned(),
        "END:VCALENDAR".to_owned(),
    ] {
        ics_line(&mut out, &line);
    }
    out
}

fn calendar_file(state: &AppState, e: &crate::store::StoredEvent, url: &str) -> Response {
    let host = url::Url::parse(&state.public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "ruang".into());
    let mut resp = ics(e, url, &host, crate::store::now_ms()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/calendar; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"ruang-{}.ics\"", e.id)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

fn invite_unusable(state: &AppState) -> Response {
    let meta = Meta {
        title: "Invitation not valid",
        description: "This Ruang invitation cannot be used.",
        url: &state.public_url,
        image: None,
    };
    let body = "<h1>This invitation can't be used</h1>
<p>An invitation works once. This one may have been used already, withdrawn by the person
who sent it, or copied incompletely. Ask them for a new one.</p>";
    html(state, StatusCode::NOT_FOUND, page(&meta, false, body))
}

#[cfg(test)]
#[path = "pages_proptest.rs"]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<b onclick='x'>"Tom & Jerry"</b>"#),
            "&lt;b onclick=&#39;x&#39;&gt;&quot;Tom &amp; Jerry&quot;&lt;/b&gt;"
        );
    }

    #[test]
    fn query_values_tolerate_junk() {
        let q = Some("listen=1&&=&t=abc&t=second&%ZZ&x");
        assert_eq!(query_value(q, "t").as_deref(), Some("abc"));
        assert_eq!(query_value(q, "listen").as_deref(), Some("1"));
        assert_eq!(query_value(q, "x").as_deref(), Some(""));
        assert_eq!(query_value(q, "y"), None);
        assert_eq!(query_value(None, "t"), None);
        assert!(!plausible("../etc", 32));
        assert!(!plausible(&"a".repeat(33), 32));
        assert!(plausible("r7kq2m5xv3na", 32));
    }

    #[test]
    fn calendar_files_escape_fold_and_use_utc() {
        let u = UserSummary {
            id: ruang_proto::UserId("h".into()),
            handle: "h".into(),
            name: "Host; Name".into(),
            avatar: None,
        };
        let e = crate::store::StoredEvent {
            id: "abc123".into(),
            host: u,
            cohosts: vec![],
            title: "Café, talk; \\ more".into(),
            description: "Line one\nline two ".repeat(10),
            kind: RoomKind::Open,
            // 2026-12-08T19:00+07:00
            starts_at: super::super::social::parse_start("2026-12-08T19:00", "Asia/Jakarta")
                .unwrap(),
            time_zone: "Asia/Jakarta".into(),
            created_at: 0,
            cancelled: true,
            room_id: None,
            interested: 0,
            notify_me: false,
        };
        let text = ics(&e, "https://x.example/e/abc123", "x.example", 0);
        assert!(text.contains("DTSTART:20261208T120000Z\r\n"));
        assert!(text.contains("SUMMARY:Café\\, talk\\; \\\\ more\r\n"));
        assert!(text.contains("STATUS:CANCELLED\r\n"));
        assert!(text.contains("UID:abc123@x.example\r\n"));
        for line in text.split("\r\n") {
            assert!(line.len() <= 75, "{line:?}");
            assert!(!line.contains('\n'));
        }
        assert!(text.ends_with("END:VCALENDAR\r\n"));
        // Unfolding gives the escaped description back whole.
        let unfolded = text.replace("\r\n ", "");
        assert!(unfolded.contains("DESCRIPTION:Line one\\nline two Line one"));
    }
}
