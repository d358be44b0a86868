//! One room's signalling session: connects, says hello, keeps the [`RoomStore`] current,
//! answers requests, and reconnects by itself with jittered exponential backoff. The server
//! keeps a member's place (and role) for a grace period, so a reconnect resumes.

use crate::error::ClientError;
use crate::store::{Applied, RoomState, RoomStore};
use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use ruang_proto::{
    ChatMessage, ChatSettings, ClientEnvelope, ClientMessage, CloseReason, ErrorCode, Participant,
    Reaction, ServerMessage, UserId, PROTOCOL_VERSION,
};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;
use url::Url;

/// Where the session stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectionState {
    Connecting,
    Connected,
    /// Lost the connection; trying again (attempt counts from 1).
    Reconnecting {
        attempt: u32,
    },
    /// Over for good: left, removed, room ended, or refused (with the server's code).
    Ended {
        reason: Option<CloseReason>,
        error: Option<ErrorCode>,
    },
}

/// What an app observes: connection plus room.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionState {
    pub connection: ConnectionState,
    pub room: RoomState,
}

#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub request_timeout: Duration,
    pub link_token: Option<String>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            link_token: None,
        }
    }
}

/// Backoff before attempt `n` (1-based): doubling from `initial`, capped, with ±50 % jitter
/// so a server restart is not met by every client at the same instant.
pub fn backoff(n: u32, initial: Duration, max: Duration) -> Duration {
    let exp = initial.saturating_mul(1u32 << n.saturating_sub(1).min(16));
    let base = exp.min(max);
    let jitter = rand::thread_rng().gen_range(0.5..1.5);
    base.mul_f64(jitter)
}

enum Command {
    Request {
        msg: ClientMessage,
        reply: oneshot::Sender<Result<ServerMessage, ClientError>>,
    },
    /// Sends a message without a request number: no answer expected (reactions).
    Send(ClientMessage),
    /// Drops the current connection as a network loss would (tests, and "retry now").
    DropConnection,
    /// Closes the current connection and reconnects without backoff (network changed).
    Reconnect,
}

/// A handle to a running room session. Dropping every handle leaves the room quietly
/// from the client side (the server keeps the place for its grace period).
#[derive(Clone)]
pub struct RoomSession {
    commands: mpsc::Sender<Command>,
    state: watch::Receiver<SessionState>,
    me: UserId,
    request_timeout: Duration,
    /// TURN servers (with credentials) from the latest welcome.
    ice_servers: std::sync::Arc<std::sync::Mutex<Vec<ruang_proto::IceServer>>>,
}

impl RoomSession {
    /// Connects to `room` and waits for the first snapshot. Fails if the server refuses
    /// (bad token, closed room, removed, …).
    pub async fn join(
        ws_url: Url,
        token: String,
        opts: SessionOptions,
    ) -> Result<RoomSession, ClientError> {
        let (tx, rx) = watch::channel(SessionState {
            connection: ConnectionState::Connecting,
            room: RoomState::default(),
        });
        let (commands, cmd_rx) = mpsc::channel(64);
        let request_timeout = opts.request_timeout;
        let mut conn = connect(&ws_url, &token, opts.link_token.as_deref()).await?;
        let welcome = conn.welcome.take().expect("connect returns a welcome");
        let me = match &welcome {
            ServerMessage::Welcome { you, .. } => you.clone(),
            _ => unreachable!("connect checks for welcome"),
        };
        let mut store = RoomStore::default();
        store.apply(&welcome);
        tx.send_replace(SessionState {
            connection: ConnectionState::Connected,
            room: store.state().clone(),
        });
        let ice_servers = std::sync::Arc::new(std::sync::Mutex::new(welcome_ice_servers(&welcome)));
        tokio::spawn(
            Driver {
                ice_servers: ice_servers.clone(),
                url: ws_url,
                token,
                opts,
                store,
                state: tx,
                commands: cmd_rx,
                pending: HashMap::new(),
                declines: HashSet::new(),
                next_req: 1,
            }
            .run(conn),
        );
        Ok(RoomSession {
            commands,
            state: rx,
            me,
            request_timeout,
            ice_servers,
        })
    }

    pub fn me(&self) -> &UserId {
        &self.me
    }

    /// The TURN servers the server handed out in its latest welcome (fresh credentials on
    /// every reconnect); empty when it has none.
    pub fn ice_servers(&self) -> Vec<ruang_proto::IceServer> {
        self.ice_servers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The current state.
    pub fn state(&self) -> SessionState {
        self.state.borrow().clone()
    }

    /// A receiver that holds the current state and wakes on every change.
    pub fn subscribe(&self) -> watch::Receiver<SessionState> {
        self.state.clone()
    }

    /// Waits until `pred` holds for the state, or `timeout` passes.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&SessionState) -> bool,
    ) -> Result<SessionState, SessionState> {
        let mut rx = self.state.clone();
        let result = tokio::time::timeout(timeout, rx.wait_for(|s| pred(s))).await;
        match result {
            Ok(Ok(s)) => Ok(s.clone()),
            _ => Err(self.state()),
        }
    }

    async fn request(&self, msg: ClientMessage) -> Result<ServerMessage, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Request { msg, reply })
            .await
            .map_err(|_| ClientError::Closed(None))?;
        match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(answer) => answer.map_err(|_| ClientError::Closed(None))?,
            Err(_) => Err(ClientError::Network("no answer in time".into())),
        }
    }

    async fn command(&self, msg: ClientMessage) -> Result<(), ClientError> {
        self.request(msg).await.map(|_| ())
    }

    pub async fn raise_hand(&self) -> Result<(), ClientError> {
        self.command(ClientMessage::RaiseHand).await
    }
    pub async fn lower_hand(&self) -> Result<(), ClientError> {
        self.command(ClientMessage::LowerHand).await
    }
    pub async fn accept_invite(&self) -> Result<(), ClientError> {
        self.command(ClientMessage::AcceptInvite).await
    }
    pub async fn decline_invite(&self) -> Result<(), ClientError> {
        self.command(ClientMessage::DeclineInvite).await
    }
    pub async fn set_muted(&self, muted: bool) -> Result<(), ClientError> {
        self.command(ClientMessage::SetMuted { muted }).await
    }
    pub async fn leave_stage(&self) -> Result<(), ClientError> {
        self.command(ClientMessage::LeaveStage).await
    }
    pub async fn invite_to_speak(&self, user: &UserId) -> Result<(), ClientError> {
        self.command(ClientMessage::InviteToSpeak { user: user.clone() })
            .await
    }
    pub async fn move_to_audience(&self, user: &UserId) -> Result<(), ClientError> {
        self.command(ClientMessage::MoveToAudience { user: user.clone() })
            .await
    }
    pub async fn mute(&self, user: &UserId) -> Result<(), ClientError> {
        self.command(ClientMessage::Mute { user: user.clone() })
            .await
    }
    pub async fn make_moderator(&self, user: &UserId) -> Result<(), ClientError> {
        self.command(ClientMessage::MakeModerator { user: user.clone() })
            .await
    }
    pub async fn remove(&self, user: &UserId) -> Result<(), ClientError> {
        self.command(ClientMessage::Remove { user: user.clone() })
            .await
    }
    pub async fn set_hands_enabled(&self, enabled: bool) -> Result<(), ClientError> {
        self.command(ClientMessage::SetHandsEnabled { enabled })
            .await
    }
    /// Encrypted rooms: this device's MLS key package (base64), for a moderator's device to
    /// add it to the group.
    pub async fn send_key_package(&self, key_package: String) -> Result<(), ClientError> {
        self.command(ClientMessage::MlsKeyPackage { key_package })
            .await
    }
    /// Encrypted rooms, moderators: an epoch's key sealed for guest-link holders (§15.6).
    pub async fn send_guest_key(&self, epoch: u64, envelope: String) -> Result<(), ClientError> {
        self.command(ClientMessage::MlsGuestKey { epoch, envelope })
            .await
    }
    /// Moderators: start or stop recording (everyone is told).
    pub async fn set_recording(&self, recording: bool) -> Result<(), ClientError> {
        self.command(ClientMessage::SetRecording { recording })
            .await
    }
    pub async fn end_room(&self) -> Result<(), ClientError> {
        self.command(ClientMessage::EndRoom).await
    }
    /// Leaves the room; `quiet` tells no one.
    pub async fn leave(&self, quiet: bool) -> Result<(), ClientError> {
        self.command(ClientMessage::Leave { quiet }).await
    }

    // ----- reactions and chat -----

    /// Sends a reaction, optionally aimed at someone on stage, without waiting for an
    /// answer (reactions are fire and forget: past the server's budget they are dropped).
    /// Fails only when the session is over.
    pub async fn react(&self, reaction: Reaction, to: Option<UserId>) -> Result<(), ClientError> {
        self.commands
            .send(Command::Send(ClientMessage::React { reaction, to }))
            .await
            .map_err(|_| ClientError::Closed(None))
    }
    pub async fn set_reactions_enabled(&self, enabled: bool) -> Result<(), ClientError> {
        self.command(ClientMessage::SetReactionsEnabled { enabled })
            .await
    }
    pub async fn send_chat(&self, text: &str) -> Result<(), ClientError> {
        self.command(ClientMessage::SendChat { text: text.into() })
            .await
    }
    pub async fn delete_chat(&self, id: u64) -> Result<(), ClientError> {
        self.command(ClientMessage::DeleteChat { id }).await
    }
    pub async fn set_chat_settings(&self, settings: ChatSettings) -> Result<(), ClientError> {
        self.command(ClientMessage::SetChatSettings { settings })
            .await
    }
    /// One page of chat history before the id `before` (the latest when None), oldest
    /// first, and whether older messages remain.
    pub async fn chat_history(
        &self,
        before: Option<u64>,
        limit: u32,
    ) -> Result<(Vec<ChatMessage>, bool), ClientError> {
        match self
            .request(ClientMessage::ChatHistory { before, limit })
            .await?
        {
            ServerMessage::ChatHistory { messages, more, .. } => Ok((messages, more)),
            other => Err(ClientError::Protocol(format!(
                "expected chat_history, got {other:?}"
            ))),
        }
    }

    /// One page of the audience: (participants, next cursor, total).
    pub async fn audience_page(
        &self,
        cursor: u32,
        limit: u32,
    ) -> Result<(Vec<Participant>, Option<u32>, u32), ClientError> {
        match self
            .request(ClientMessage::Audience { cursor, limit })
            .await?
        {
            ServerMessage::AudiencePage {
                participants,
                next,
                total,
                ..
            } => Ok((participants, next, total)),
            other => Err(ClientError::Protocol(format!(
                "expected audience_page, got {other:?}"
            ))),
        }
    }

    /// Sends a WebRTC SDP offer (`media_offer`) and returns the server's SDP answer
    /// (`media_answer`). A new offer replaces the previous media transport.
    pub async fn media_offer(&self, sdp: String) -> Result<String, ClientError> {
        match self.request(ClientMessage::MediaOffer { sdp }).await? {
            ServerMessage::MediaAnswer { sdp, .. } => Ok(sdp),
            other => Err(ClientError::Protocol(format!(
                "expected media_answer, got {other:?}"
            ))),
        }
    }

    /// Drops the connection as if the network went away; the session reconnects by itself.
    pub async fn simulate_network_loss(&self) {
        let _ = self.commands.send(Command::DropConnection).await;
    }

    /// The device's network changed (Wi-Fi to mobile data, a new address): the WebSocket
    /// may be bound to an address that no longer exists, and no error would tell for a long
    /// time. Drops it and reconnects at once, without backoff; the server keeps this member's
    /// role and place (a reconnect, not a rejoin). Media follows (`MediaSession::network_changed`).
    pub async fn network_changed(&self) {
        let _ = self.commands.send(Command::Reconnect).await;
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Connection {
    ws: Ws,
    welcome: Option<ServerMessage>,
}

/// Whether a refusal is final (no point retrying).
fn is_final(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::Unauthorized
            | ErrorCode::NotFound
            | ErrorCode::RoomEnded
            | ErrorCode::RemovedFromRoom
            | ErrorCode::RoomClosed
            | ErrorCode::UnsupportedProtocol
    )
}

async fn connect(
    url: &Url,
    token: &str,
    link_token: Option<&str>,
) -> Result<Connection, ClientError> {
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(url.as_str()),
    )
    .await
    .map_err(|_| ClientError::Network("connect timed out".into()))?
    .map_err(|e| ClientError::Network(e.to_string()))?;
    let hello = ClientEnvelope {
        req: None,
        msg: ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
            token: token.to_owned(),
            link_token: link_token.map(str::to_owned),
        },
    };
    ws.send(Message::Text(
        serde_json::to_string(&hello).expect("serializes").into(),
    ))
    .await
    .map_err(|e| ClientError::Network(e.to_string()))?;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .map_err(|_| ClientError::Network("no welcome within 10 s".into()))?;
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(_))) | None => {
                return Err(ClientError::Network("closed before welcome".into()))
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(ClientError::Network(e.to_string())),
        };
        match serde_json::from_str::<ServerMessage>(&text) {
            Ok(w @ ServerMessage::Welcome { .. }) => {
                return Ok(Connection {
                    ws,
                    welcome: Some(w),
                })
            }
            Ok(ServerMessage::Error { code, message, .. }) => {
                return Err(ClientError::Api {
                    status: code.http_status(),
                    code,
                    message,
                })
            }
            Ok(_) => continue,
            Err(e) => return Err(ClientError::Protocol(format!("bad server message: {e}"))),
        }
    }
}

fn welcome_ice_servers(welcome: &ServerMessage) -> Vec<ruang_proto::IceServer> {
    match welcome {
        ServerMessage::Welcome { ice_servers, .. } => ice_servers.clone(),
        _ => Vec::new(),
    }
}

struct Driver {
    ice_servers: std::sync::Arc<std::sync::Mutex<Vec<ruang_proto::IceServer>>>,
    url: Url,
    token: String,
    opts: SessionOptions,
    store: RoomStore,
    state: watch::Sender<SessionState>,
    commands: mpsc::Receiver<Command>,
    pending: HashMap<u64, oneshot::Sender<Result<ServerMessage, ClientError>>>,
    /// Requests that were `decline_invite`: their `ok` clears our own invitation (the
    /// server tells only the moderators).
    declines: HashSet<u64>,
    next_req: u64,
}

/// Why one connection's loop stopped.
enum Stop {
    /// Reconnect.
    Lost,
    /// Reconnect now, without backoff (the network changed).
    Switched,
    /// Over for good.
    Final(Option<CloseReason>, Option<ErrorCode>),
    /// Every handle was dropped.
    Abandoned,
}

impl Driver {
    fn publish(&self, connection: ConnectionState) {
        self.state.send_replace(SessionState {
            connection,
            room: self.store.state().clone(),
        });
    }

    async fn run(mut self, first: Connection) {
        let mut conn = Some(first);
        let mut attempt = 0u32;
        loop {
            let stop = match conn.take() {
                Some(c) => {
                    attempt = 0;
                    self.serve(c.ws).await
                }
                None => Stop::Lost,
            };
            self.fail_pending();
            match stop {
                Stop::Abandoned => return,
                Stop::Final(reason, error) => {
                    self.publish(ConnectionState::Ended { reason, error });
                    return;
                }
                Stop::Lost | Stop::Switched => {}
            }
            attempt += 1;
            self.publish(ConnectionState::Reconnecting { attempt });
            let wait = if matches!(stop, Stop::Switched) {
                Duration::ZERO
            } else {
                backoff(attempt, self.opts.initial_backoff, self.opts.max_backoff)
            };
            tracing::debug!(attempt, ?wait, "reconnecting");
            // Keep answering commands while waiting: they fail fast instead of hanging.
            let sleep = tokio::time::sleep(wait);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    cmd = self.commands.recv() => match cmd {
                        None => return,
                        Some(Command::Request { reply, .. }) => {
                            let _ = reply.send(Err(ClientError::Network("reconnecting".into())));
                        }
                        Some(Command::DropConnection) | Some(Command::Reconnect) | Some(Command::Send(_)) => {}
                    }
                }
            }
            match connect(&self.url, &self.token, self.opts.link_token.as_deref()).await {
                Ok(mut c) => {
                    let welcome = c.welcome.take().expect("welcome");
                    self.store.apply(&welcome);
                    *self
                        .ice_servers
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) =
                        welcome_ice_servers(&welcome);
                    self.publish(ConnectionState::Connected);
                    conn = Some(c);
                }
                Err(ClientError::Api { code, .. }) if is_final(code) => {
                    self.publish(ConnectionState::Ended {
                        reason: None,
                        error: Some(code),
                    });
                    return;
                }
                Err(e) => tracing::debug!(error = %e, "reconnect failed"),
            }
        }
    }

    fn fail_pending(&mut self) {
        self.declines.clear();
        for (_, reply) in self.pending.drain() {
            let _ = reply.send(Err(ClientError::Network("connection lost".into())));
        }
    }

    async fn send(&mut self, ws: &mut Ws, env: &ClientEnvelope) -> bool {
        let text = serde_json::to_string(env).expect("serializes");
        ws.send(Message::Text(text.into())).await.is_ok()
    }

    async fn serve(&mut self, mut ws: Ws) -> Stop {
        let mut ping = tokio::time::interval(Duration::from_secs(15));
        loop {
            tokio::select! {
                cmd = self.commands.recv() => match cmd {
                    None => {
                        let _ = ws.close(None).await;
                        return Stop::Abandoned;
                    }
                    Some(Command::DropConnection) => return Stop::Lost,
                    Some(Command::Send(msg)) => {
                        let env = ClientEnvelope { req: None, msg };
                        if !self.send(&mut ws, &env).await {
                            return Stop::Lost;
                        }
                    }
                    Some(Command::Reconnect) => {
                        // Over the old path this may never complete: do not wait for it.
                        let _ = tokio::time::timeout(Duration::from_millis(50), ws.close(None)).await;
                        return Stop::Switched;
                    }
                    Some(Command::Request { msg, reply }) => {
                        let req = self.next_req;
                        self.next_req += 1;
                        if matches!(msg, ClientMessage::DeclineInvite) {
                            self.declines.insert(req);
                        }
                        let env = ClientEnvelope { req: Some(req), msg };
                        if !self.send(&mut ws, &env).await {
                            let _ = reply.send(Err(ClientError::Network("send failed".into())));
                            return Stop::Lost;
                        }
                        self.pending.insert(req, reply);
                    }
                },
                msg = ws.next() => {
                    let text = match msg {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Stop::Lost,
                        Some(Ok(_)) => continue,
                    };
                    let msg: ServerMessage = match serde_json::from_str(&text) {
                        Ok(m) => m,
                        Err(e) => {
                            tracing::warn!(error = %e, "ignoring a server message this client does not understand");
                            continue;
                        }
                    };
                    if let Some(stop) = self.on_message(&mut ws, msg).await {
                        return stop;
                    }
                }
                _ = ping.tick() => {
                    let env = ClientEnvelope { req: None, msg: ClientMessage::Ping };
                    if !self.send(&mut ws, &env).await {
                        return Stop::Lost;
                    }
                }
            }
        }
    }

    async fn on_message(&mut self, ws: &mut Ws, msg: ServerMessage) -> Option<Stop> {
        match &msg {
            ServerMessage::Ok { req } => {
                if self.declines.remove(req) && self.store.invite_declined() == Applied::Changed {
                    self.publish(ConnectionState::Connected);
                }
                if let Some(reply) = self.pending.remove(req) {
                    let _ = reply.send(Ok(msg));
                }
                return None;
            }
            ServerMessage::AudiencePage { req: Some(req), .. }
            | ServerMessage::MediaAnswer { req: Some(req), .. }
            | ServerMessage::ChatHistory { req: Some(req), .. } => {
                if let Some(reply) = self.pending.remove(req) {
                    let _ = reply.send(Ok(msg));
                }
                return None;
            }
            ServerMessage::Error {
                req, code, message, ..
            } => {
                if let Some(r) = req {
                    self.declines.remove(r);
                }
                let err = ClientError::Api {
                    status: code.http_status(),
                    code: *code,
                    message: message.clone(),
                };
                match req.and_then(|r| self.pending.remove(&r)) {
                    Some(reply) => {
                        let _ = reply.send(Err(err));
                    }
                    None => tracing::warn!(%err, "server error"),
                }
                return None;
            }
            ServerMessage::Closing { reason } => {
                return Some(match reason {
                    CloseReason::ServerShutdown => Stop::Lost,
                    r => Stop::Final(Some(*r), None),
                });
            }
            _ => {}
        }
        match self.store.apply(&msg) {
            Applied::Changed => self.publish(ConnectionState::Connected),
            Applied::NeedSync => {
                let env = ClientEnvelope {
                    req: None,
                    msg: ClientMessage::Sync,
                };
                if !self.send(ws, &env).await {
                    return Some(Stop::Lost);
                }
            }
            Applied::Ignored => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let i = Duration::from_millis(100);
        let m = Duration::from_secs(2);
        for _ in 0..50 {
            let b1 = backoff(1, i, m);
            assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(150));
            let b4 = backoff(4, i, m);
            assert!(b4 >= Duration::from_millis(400) && b4 <= Duration::from_millis(1200));
            let b30 = backoff(30, i, m);
            assert!(b30 <= Duration::from_secs(3));
        }
        let samples: std::collections::HashSet<_> = (0..20).map(|_| backoff(3, i, m)).collect();
        assert!(samples.len() > 1, "jittered");
    }
}
