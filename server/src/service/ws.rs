//! Room signalling over one WebSocket per room session.
//!
//! `hello` first (protocol version + token), then `welcome` with a snapshot, then ordered
//! deltas. Bad messages get an `error` and the connection stays open; only a failed
//! `hello` closes it.

use super::guest::{self, new_guest_id, GuestSlot, GUEST_TOKEN_PREFIX};
use super::http::{authenticate, ClientIp};
use super::metrics::Metrics;
use super::{ApiError, AppState};
use crate::rooms::rules::chat::{is_chat_command, ReactionLimiter, ReactionVerdict};
use crate::rooms::rules::Outgoing;
use crate::rooms::LiveRoom;
use crate::store::{now_ms, NewNotification};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use ruang_proto::{
    ClientEnvelope, ClientMessage, CloseReason, ErrorCode, RoomId, ServerMessage, UserId,
    PROTOCOL_VERSION,
};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

/// Largest message a client may send; bigger ones get `payload_too_large` (with their
/// `req` when it can be read) and the connection stays open. Room for a `media_offer`
/// with every listening slot (§8.1) and more.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Transport limit: frames above this are not even buffered (the connection drops).
const MAX_FRAME: usize = 256 * 1024;
/// A send that cannot complete within this means the client stopped reading: drop it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages (of any kind) allowed before `hello`; past this the connection closes.
const MAX_BEFORE_HELLO: u32 = 8;
/// Socket buffers: small, since signalling messages are small (tungstenite's default read
/// buffer is 128 KiB per connection).
const READ_BUFFER: usize = 4 * 1024;
const WRITE_BUFFER: usize = 8 * 1024;
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
const PING_EVERY: Duration = Duration::from_secs(15);
const DEAD_AFTER: Duration = Duration::from_secs(45);
/// Commands per second a connection may send before being told to slow down.
const MAX_MESSAGES_PER_SECOND: u32 = 30;

/// Message types a client may send; anything else is `unknown_message`.
const CLIENT_TYPES: &[&str] = &[
    "hello",
    "raise_hand",
    "lower_hand",
    "accept_invite",
    "decline_invite",
    "set_muted",
    "leave_stage",
    "invite_to_speak",
    "move_to_audience",
    "mute",
    "make_moderator",
    "remove",
    "set_hands_enabled",
    "set_recording",
    "end_room",
    "leave",
    "sync",
    "media_offer",
    "audience",
    "ping",
    // reactions and chat
    "react",
    "set_reactions_enabled",
    "send_chat",
    "chat_history",
    "delete_chat",
    "set_chat_settings",
    // encrypted rooms (§15)
    "mls_key_package",
    "mls_guest_key",
];

pub async fn upgrade(
    State(state): State<AppState>,
    Path(room): Path<String>,
    ClientIp(ip): ClientIp,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => {
            return ApiError::new(
                ErrorCode::BadRequest,
                format!("this endpoint speaks WebSocket only: {e}"),
            )
            .into_response()
        }
    };
    limits(ws).on_upgrade(move |socket| async move {
        state.metrics.ws_connections.fetch_add(1, Ordering::Relaxed);
        let mut conn = Conn {
            socket,
            seq: 0,
            state: state.clone(),
            session: None,
        };
        conn.run(RoomId(room), ip).await;
        state.metrics.ws_connections.fetch_sub(1, Ordering::Relaxed);
    })
}

/// The room WebSocket's frame and buffer limits (also for connections bridged to another
/// node in cluster mode).
pub fn limits(ws: WebSocketUpgrade) -> WebSocketUpgrade {
    ws.max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_FRAME + WRITE_BUFFER)
}

/// A joined connection: room, who, connection id, starting point, guest slot if a guest.
type JoinedConn = (
    Arc<LiveRoom>,
    UserId,
    u64,
    crate::rooms::Joined,
    Option<GuestSlot>,
);

fn room_gone() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "no live room with this id (it may have ended)",
    )
}

/// What a parsed text frame turned out to be.
enum Parsed {
    Msg(ClientEnvelope),
    Bad {
        req: Option<u64>,
        code: ErrorCode,
        message: String,
    },
}

/// The `req` of a message too large to handle, when it is a JSON object with one.
fn req_of(text: &str) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct OnlyReq {
        req: Option<u64>,
    }
    serde_json::from_str::<OnlyReq>(text).ok()?.req
}

fn parse(text: &str) -> Parsed {
    if text.len() > MAX_MESSAGE {
        return Parsed::Bad {
            req: req_of(text),
            code: ErrorCode::PayloadTooLarge,
            message: format!("messages are at most {MAX_MESSAGE} bytes"),
        };
    }
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Parsed::Bad {
                req: None,
                code: ErrorCode::InvalidJson,
                message: format!("not JSON: {e}"),
            }
        }
    };
    let req = value.get("req").and_then(|r| r.as_u64());
    let Some(kind) = value
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
    else {
        return Parsed::Bad {
            req,
            code: ErrorCode::BadRequest,
            message: "a message is a JSON object with a string \"type\"".into(),
        };
    };
    if !CLIENT_TYPES.contains(&kind.as_str()) {
        // Echo a short prefix only: an error must not reflect a client's bulk back at it.
        let shown: String = kind.chars().take(40).collect();
        return Parsed::Bad {
            req,
            code: ErrorCode::UnknownMessage,
            message: format!("unknown message type {shown:?}"),
        };
    }
    match serde_json::from_value::<ClientEnvelope>(value) {
        Ok(env) => Parsed::Msg(env),
        Err(e) => Parsed::Bad {
            req,
            code: ErrorCode::BadRequest,
            message: format!("bad {kind:?} message: {e}"),
        },
    }
}

struct Conn {
    socket: WebSocket,
    seq: u64,
    state: AppState,
    /// The member and session behind this connection (None for guests).
    session: Option<(UserId, String)>,
}

impl Conn {
    /// Sends one frame; false when the socket failed or the client stopped reading.
    async fn send_frame(&mut self, frame: Message) -> bool {
        matches!(
            tokio::time::timeout(WRITE_TIMEOUT, self.socket.send(frame)).await,
            Ok(Ok(()))
        )
    }

    async fn send(&mut self, msg: &ServerMessage) -> bool {
        let text = serde_json::to_string(msg).expect("server messages serialize");
        self.send_frame(Message::Text(Utf8Bytes::from(text))).await
    }

    async fn error(&mut self, req: Option<u64>, code: ErrorCode, message: String, fatal: bool) {
        Metrics::inc(&self.state.metrics.ws_errors);
        self.send(&ServerMessage::Error {
            req,
            code,
            message,
            fatal,
        })
        .await;
    }

    async fn close(&mut self, reason: CloseReason) {
        if !self.send(&ServerMessage::Closing { reason }).await {
            return;
        }
        self.send_frame(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: Utf8Bytes::from_static("bye"),
        })))
        .await;
        self.drain().await;
    }

    /// Completes the closing handshake: reads until the client closes too (or a short
    /// timeout). Dropping a socket with unread input makes the kernel send a reset, which
    /// can destroy the `closing` message before the client reads it.
    async fn drain(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, self.socket.recv()).await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    }

    async fn fatal(&mut self, req: Option<u64>, code: ErrorCode, message: String) {
        self.error(req, code, message, true).await;
        self.send_frame(Message::Close(Some(CloseFrame {
            code: 4000,
            reason: Utf8Bytes::from(code.as_str().to_owned()),
        })))
        .await;
        self.drain().await;
    }

    /// Waits for `hello`; other messages are answered with `hello_required`.
    async fn hello(&mut self) -> Option<(Option<u64>, u32, String, Option<String>)> {
        let deadline = tokio::time::Instant::now() + HELLO_TIMEOUT;
        let mut before_hello = 0u32;
        loop {
            before_hello += 1;
            if before_hello > MAX_BEFORE_HELLO {
                let msg = format!("no hello in the first {MAX_BEFORE_HELLO} messages");
                self.fatal(None, ErrorCode::HelloRequired, msg).await;
                return None;
            }
            let msg = match tokio::time::timeout_at(deadline, self.socket.recv()).await {
                Err(_) => {
                    self.fatal(
                        None,
                        ErrorCode::HelloRequired,
                        "no hello within 10 s".into(),
                    )
                    .await;
                    return None;
                }
                Ok(None) | Ok(Some(Err(_))) => return None,
                Ok(Some(Ok(m))) => m,
            };
            match msg {
                Message::Text(text) => match parse(&text) {
                    Parsed::Msg(ClientEnvelope {
                        req,
                        msg:
                            ClientMessage::Hello {
                                protocol,
                                token,
                                link_token,
                            },
                    }) => return Some((req, protocol, token, link_token)),
                    Parsed::Msg(env) => {
                        self.error(
                            env.req,
                            ErrorCode::HelloRequired,
                            "send hello first".into(),
                            false,
                        )
                        .await
                    }
                    Parsed::Bad { req, code, message } => {
                        self.error(req, code, message, false).await
                    }
                },
                Message::Binary(_) => {
                    self.error(
                        None,
                        ErrorCode::BadRequest,
                        "messages are JSON text frames".into(),
                        false,
                    )
                    .await
                }
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    async fn run(&mut self, room_id: RoomId, ip: IpAddr) {
        let Some((req, protocol, token, link_token)) = self.hello().await else {
            return;
        };
        if protocol != PROTOCOL_VERSION {
            let msg = format!("this server speaks protocol {PROTOCOL_VERSION}, not {protocol}");
            self.fatal(req, ErrorCode::UnsupportedProtocol, msg).await;
            return;
        }
        let joined = if token.starts_with(GUEST_TOKEN_PREFIX) {
            self.join_guest(&room_id, ip, &token).await
        } else {
            self.join_member(&room_id, ip, &token, link_token).await
        };
        let (room, me, conn_id, joined, _guest_slot) = match joined {
            Ok(j) => j,
            Err(e) => {
                self.fatal(req, e.code, e.message).await;
                return;
            }
        };
        let welcome = ServerMessage::Welcome {
            protocol: PROTOCOL_VERSION,
            you: me.clone(),
            seq: self.seq,
            room: joined.snapshot,
            ice_servers: self
                .state
                .turn
                .as_ref()
                .map(|t| t.ice_servers(&me))
                .unwrap_or_default(),
        };
        // However this connection ends, its media peer (if any) goes with it.
        let _media = MediaPeerGuard {
            sfu: self.state.sfu.clone(),
            room: room.id.clone(),
            user: me.clone(),
            conn: conn_id,
        };
        if self.send(&welcome).await {
            let closed_by_room = self.serve(&room, &me, conn_id, joined.events).await;
            if closed_by_room {
                return;
            }
        }
        room.disconnected(&me, conn_id, self.state.registry.rejoin_grace_ms());
    }

    /// A member's `hello`: token, room, access, then join (or resume).
    async fn join_member(
        &mut self,
        room_id: &RoomId,
        ip: IpAddr,
        token: &str,
        link_token: Option<String>,
    ) -> Result<JoinedConn, ApiError> {
        let me = authenticate(&self.state, ip, token).await?;
        self.session = Some((me.user.id.clone(), me.token_hash.clone()));
        let room = self.state.registry.get(room_id).ok_or_else(room_gone)?;
        // Blocks first: a refused link must not leave an access grant behind.
        super::safety::check_join(&self.state, &room, &me.user.id).await?;
        Self::check_access(&self.state.clone(), &room, &me.user.id, link_token)
            .await
            .map_err(ApiError::code)?;
        let followed = self
            .state
            .store
            .followed_by_any(&me.user.id, &room.stage_ids())
            .await
            .unwrap_or(false);
        let conn_id = self.state.registry.next_conn_id();
        let joined = room
            .join(me.user.clone(), followed, conn_id)
            .map_err(ApiError::code)?;
        tracing::debug!(room = %room.id, user = %me.user.handle, resumed = joined.resumed, "joined");
        super::safety::after_join(&self.state, &room, &me.user.id).await;
        Ok((room, me.user.id, conn_id, joined, None))
    }

    /// A guest's `hello`: the token is a single-use guest pass for this room.
    async fn join_guest(
        &mut self,
        room_id: &RoomId,
        ip: IpAddr,
        token: &str,
    ) -> Result<JoinedConn, ApiError> {
        let state = self.state.clone();
        let attempt = state.limiter.check(ip)?;
        if !state.guests.redeem(token, room_id) {
            attempt.fail();
            Metrics::inc(&state.metrics.auth_failures);
            return Err(ApiError::new(
                ErrorCode::Unauthorized,
                "unknown, used or expired guest pass (get a new one)",
            ));
        }
        let slot = state
            .guests
            .connect(ip, state.max_guests)
            .ok_or_else(guest::slot_error)?;
        let room = state.registry.get(room_id).ok_or_else(room_gone)?;
        let id = new_guest_id();
        let conn_id = state.registry.next_conn_id();
        let joined = room
            .join_guest(id.clone(), conn_id)
            .map_err(ApiError::code)?;
        tracing::debug!(room = %room.id, guest = %id, "guest joined");
        Ok((room, id, conn_id, joined, Some(slot)))
    }

    async fn check_access(
        state: &AppState,
        room: &LiveRoom,
        user: &UserId,
        link_token: Option<String>,
    ) -> Result<(), ErrorCode> {
        if room.kind() != ruang_proto::RoomKind::Closed
            || room.role_of(user).is_some()
            || room.created_by() == *user
        {
            return Ok(());
        }
        let store = &state.store;
        if store.has_access(&room.id, user).await.unwrap_or(false) {
            return Ok(());
        }
        if link_token.as_deref().is_some_and(|t| room.link_matches(t)) {
            // The link is the key: remember it so the room shows in their hallway.
            let _ = store.grant_access(&room.id, user).await;
            return Ok(());
        }
        Err(ErrorCode::RoomClosed)
    }

    /// The joined loop. Returns true when the room closed the connection (left, removed,
    /// ended, replaced), false when the client went away.
    async fn serve(
        &mut self,
        room: &Arc<LiveRoom>,
        me: &UserId,
        conn: u64,
        mut events: tokio::sync::broadcast::Receiver<crate::rooms::Dispatch>,
    ) -> bool {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        let mut last_heard = Instant::now();
        let mut window = (Instant::now(), 0u32);
        let mut reactions = ReactionLimiter::new(now_ms());
        let mut revocations = self.state.revocations.subscribe();
        // A logout that landed between authentication and this subscription.
        if let Some((_, hash)) = &self.session {
            // A database error here is not a revocation: the socket stays.
            if let Ok(false) = self.state.store.session_valid(hash).await {
                self.close(CloseReason::SessionRevoked).await;
                return false;
            }
        }
        loop {
            tokio::select! {
                revoked = revocations.recv() => {
                    let hit = match (&revoked, &self.session) {
                        (Ok(super::Revocation::Session(h)), Some((_, mine))) => h == mine,
                        (Ok(super::Revocation::AllOf(u)), Some((me_id, _))) => u == me_id,
                        (Ok(super::Revocation::Banned(u)), Some((me_id, _))) => u == me_id,
                        // Missed some: check our own session directly.
                        (Err(RecvError::Lagged(_)), Some((_, mine))) => {
                            matches!(self.state.store.session_valid(mine).await, Ok(false))
                        }
                        _ => false,
                    };
                    if hit {
                        self.close(CloseReason::SessionRevoked).await;
                        // Gone like a lost connection: the grace period applies.
                        return false;
                    }
                }
                ev = events.recv() => match ev {
                    Ok(out) => {
                        if let Some(done) = self.deliver(room, me, conn, &out).await {
                            return done;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        // Too slow for the room's pace: start over from a fresh snapshot.
                        if !self.snapshot(room, me).await {
                            return false;
                        }
                    }
                    Err(RecvError::Closed) => return true,
                },
                msg = self.socket.recv() => {
                    let Some(Ok(msg)) = msg else { return false };
                    last_heard = Instant::now();
                    if matches!(msg, Message::Close(_)) {
                        return false;
                    }
                    if matches!(msg, Message::Ping(_) | Message::Pong(_)) {
                        continue;
                    }
                    Metrics::inc(&self.state.metrics.ws_messages);
                    // Reactions have their own budget: past it they are dropped, never a
                    // reason to disconnect.
                    if let Some(env) = reaction_frame(&msg) {
                        if !self.react(room, me, &mut reactions, env).await {
                            return false;
                        }
                        continue;
                    }
                    if window.0.elapsed() >= Duration::from_secs(1) {
                        window = (Instant::now(), 0);
                    }
                    window.1 += 1;
                    let limited = window.1 > MAX_MESSAGES_PER_SECOND;
                    if window.1 > 4 * MAX_MESSAGES_PER_SECOND {
                        // Ignoring the slow-down answers: stop answering at all.
                        tracing::debug!(user = %me, "flooding, dropping the connection");
                        return false;
                    }
                    let text = match msg {
                        Message::Text(t) => t,
                        _ => {
                            // Binary frames count against the same budget as text.
                            if !limited {
                                self.error(None, ErrorCode::BadRequest, "messages are JSON text frames".into(), false).await;
                            }
                            continue;
                        }
                    };
                    if !self.handle(room, me, conn, &text, limited).await {
                        return false;
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() > DEAD_AFTER {
                        tracing::debug!(user = %me, "connection silent, dropping");
                        return false;
                    }
                    if !self.send_frame(Message::Ping(Default::default())).await {
                        return false;
                    }
                }
            }
        }
    }

    async fn snapshot(&mut self, room: &LiveRoom, me: &UserId) -> bool {
        match room.snapshot_for(me) {
            Some(room) => {
                self.send(&ServerMessage::Snapshot {
                    seq: self.seq,
                    room,
                })
                .await
            }
            None => true,
        }
    }

    /// Sends one room output if it is for this viewer. `Some(true)` ends the connection.
    async fn deliver(
        &mut self,
        room: &LiveRoom,
        me: &UserId,
        conn: u64,
        out: &Outgoing,
    ) -> Option<bool> {
        match out {
            Outgoing::Event { to, event } if to.includes(me) => {
                self.seq += 1;
                let msg = ServerMessage::Delta {
                    seq: self.seq,
                    event: event.clone(),
                };
                if !self.send(&msg).await {
                    return Some(false);
                }
            }
            Outgoing::Resync(user) if user == me && !self.snapshot(room, me).await => {
                return Some(false);
            }
            Outgoing::Close { user, reason } if user == me => {
                self.close(*reason).await;
                return Some(true);
            }
            Outgoing::MediaEnded {
                user,
                conn: c,
                reason,
            } if user == me && *c == conn => {
                let msg = ServerMessage::MediaClosed {
                    reason: (*reason).to_owned(),
                };
                if !self.send(&msg).await {
                    return Some(false);
                }
            }
            Outgoing::CloseAll(reason) => {
                self.close(*reason).await;
                return Some(*reason != CloseReason::ServerShutdown);
            }
            _ => {}
        }
        None
    }

    /// "X invited you to speak": for members invited while they had no connection. They
    /// get it in their feed and pushed (the usual preferences and limits apply).
    fn invited_away(&self, room: &LiveRoom, away: Vec<(UserId, UserId)>) {
        let list = away
            .into_iter()
            .map(|(user, by)| NewNotification {
                user,
                kind: ruang_proto::NotificationKind::InvitedToSpeak.as_str(),
                actor: Some(by),
                room: Some(room.id.clone()),
                event: None,
            })
            .collect();
        super::notify::send(&self.state, list);
    }

    /// Handles one text frame. Returns false when the socket failed.
    async fn handle(
        &mut self,
        room: &Arc<LiveRoom>,
        me: &UserId,
        conn: u64,
        text: &str,
        limited: bool,
    ) -> bool {
        let env = match parse(text) {
            Parsed::Msg(env) => env,
            Parsed::Bad { req, code, message } => {
                self.error(req, code, message, false).await;
                return true;
            }
        };
        let req = env.req;
        if limited {
            let msg = format!("more than {MAX_MESSAGES_PER_SECOND} messages a second; slow down");
            self.error(req, ErrorCode::RateLimited, msg, false).await;
            return true;
        }
        if let Err(code) = super::safety::command_allowed(&self.state, me, &env.msg).await {
            self.error(req, code, code.to_string(), false).await;
            return true;
        }
        let reply = match &env.msg {
            ClientMessage::Hello { .. } => Err(ErrorCode::BadRequest),
            ClientMessage::Ping => return self.send(&ServerMessage::Pong).await,
            ClientMessage::MediaOffer { sdp } => {
                let answer = self
                    .state
                    .sfu
                    .offer(
                        crate::sfu::MediaRoom::Owned(room.clone()),
                        me.clone(),
                        conn,
                        sdp.clone(),
                    )
                    .await;
                return match answer {
                    Ok(sdp) => self.send(&ServerMessage::MediaAnswer { req, sdp }).await,
                    Err(message) => {
                        self.error(req, ErrorCode::BadRequest, message, false).await;
                        true
                    }
                };
            }
            ClientMessage::Sync => {
                if !self.snapshot(room, me).await {
                    return false;
                }
                Ok(None)
            }
            ClientMessage::Audience { cursor, limit } => {
                let (participants, next, total) = room.audience_page(*cursor, *limit);
                return self
                    .send(&ServerMessage::AudiencePage {
                        req,
                        participants,
                        next,
                        total,
                    })
                    .await;
            }
            ClientMessage::ChatHistory { before, limit } => {
                let (messages, more) = room.chat_history(*before, *limit);
                return self
                    .send(&ServerMessage::ChatHistory {
                        req,
                        messages,
                        more,
                    })
                    .await;
            }
            msg if is_chat_command(msg) => {
                // Followers-only chat: the follow graph is checked here, on the server.
                let follows = room.chat_needs_follow_check(me)
                    && self
                        .state
                        .store
                        .follows_any(me, &room.moderators())
                        .await
                        .unwrap_or(false);
                room.chat_command(me, msg, follows)
            }
            msg => room.command(me, msg).map(|(durable, away)| {
                self.invited_away(room, away);
                durable
            }),
        };
        // Confirm only what is durable: wait for the change's writes before `ok`.
        let reply = match reply {
            Ok(Some(durable)) => match durable.await {
                Ok(true) => Ok(()),
                _ => Err(ErrorCode::Internal),
            },
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        if reply.is_ok() {
            super::safety::after_command(&self.state, room, &env.msg).await;
        }
        match (reply, req) {
            (Ok(()), Some(req)) => self.send(&ServerMessage::Ok { req }).await,
            (Ok(()), None) => true,
            (Err(code), req) => {
                let message = if matches!(env.msg, ClientMessage::Hello { .. }) {
                    "already joined; hello is only the first message".to_owned()
                } else {
                    code.to_string()
                };
                self.error(req, code, message, false).await;
                true
            }
        }
    }
}

impl Conn {
    /// One reaction, within this connection's reaction budget. False when the socket failed.
    async fn react(
        &mut self,
        room: &LiveRoom,
        me: &UserId,
        limiter: &mut ReactionLimiter,
        env: ClientEnvelope,
    ) -> bool {
        match limiter.check(now_ms()) {
            ReactionVerdict::Allow => match room.chat_command(me, &env.msg, false) {
                Ok(_) => match env.req {
                    Some(req) => self.send(&ServerMessage::Ok { req }).await,
                    None => true,
                },
                Err(code) => {
                    self.error(env.req, code, code.to_string(), false).await;
                    true
                }
            },
            ReactionVerdict::Drop => true,
            ReactionVerdict::DropAndTell => {
                let msg = "too many reactions; the extra ones were dropped".to_owned();
                self.error(env.req, ErrorCode::RateLimited, msg, false)
                    .await;
                true
            }
        }
    }
}

/// A well-formed `react` message, if the frame is one.
fn reaction_frame(msg: &Message) -> Option<ClientEnvelope> {
    let Message::Text(text) = msg else {
        return None;
    };
    if text.len() > 1024 || !text.contains("react") {
        return None;
    }
    match parse(text) {
        Parsed::Msg(env) if matches!(env.msg, ClientMessage::React { .. }) => Some(env),
        _ => None,
    }
}

/// Removes a connection's media peer when the connection task ends, however it ends.
struct MediaPeerGuard {
    sfu: crate::sfu::Sfu,
    room: RoomId,
    user: UserId,
    conn: u64,
}

impl Drop for MediaPeerGuard {
    fn drop(&mut self) {
        self.sfu.remove(&self.room, &self.user, self.conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_type_is_listed() {
        // A message of each known type must not be reported as unknown.
        for t in CLIENT_TYPES {
            let reported_unknown = matches!(
                parse(&format!(r#"{{"type":"{t}"}}"#)),
                Parsed::Bad {
                    code: ErrorCode::UnknownMessage,
                    ..
                }
            );
            assert!(!reported_unknown, "{t} reported unknown");
        }
        // And the other way: messages a client really sends are accepted (a type missing
        // from the list would be refused as unknown).
        for msg in [
            ClientMessage::MlsKeyPackage {
                key_package: "a2V5".into(),
            },
            ClientMessage::MlsGuestKey {
                epoch: 1,
                envelope: "ZW52".into(),
            },
        ] {
            let json = serde_json::to_string(&msg).unwrap();
            assert!(matches!(parse(&json), Parsed::Msg(_)), "{json} refused");
        }
        assert!(matches!(
            parse(r#"{"type":"fly","req":3}"#),
            Parsed::Bad {
                req: Some(3),
                code: ErrorCode::UnknownMessage,
                ..
            }
        ));
        assert!(matches!(
            parse("{nope"),
            Parsed::Bad {
                code: ErrorCode::InvalidJson,
                ..
            }
        ));
        assert!(matches!(
            parse(r#"{"type":"mute","user":5}"#),
            Parsed::Bad {
                code: ErrorCode::BadRequest,
                ..
            }
        ));
    }
}
