//! Reactions and the room chat, as part of the room rules (a child module of `rules`, so
//! it sees who is in the room). Pure like the rest of the rules: no I/O, time passed in.
//!
//! - Reactions are counted per (reaction, target) and sent as one `reactions` event per
//!   window ([`REACTION_WINDOW_MS`]), driven by the registry's tick: a thousand taps make a
//!   few events a second, not a thousand. Each connection is limited by a
//!   [`ReactionLimiter`] before its reactions reach the room.
//! - The chat keeps the last [`CHAT_LOG_MAX`] messages in memory (history pages reach back
//!   [`CHAT_HISTORY`] of them) and dies with the room.

use super::{Audience, Effects, Persist, RoomRules};
use indexmap::IndexMap;
use ruang_proto::{
    clean_chat_text, find_links, ChatMessage, ChatMode, ChatSettings, ClientMessage, ErrorCode,
    Reaction, ReactionBurst, Role, RoomEvent, UserId, MAX_CHAT_PAGE, MAX_SLOW_MODE_SECONDS,
};
use std::collections::{HashMap, VecDeque};

/// Reactions are totalled over this window, then sent as one event.
pub const REACTION_WINDOW_MS: i64 = 250;
/// Reactions one connection may send in a burst, and how many more per second.
pub const REACTION_BURST: f64 = 10.0;
pub const REACTIONS_PER_SECOND: f64 = 5.0;
/// A connection over its reaction budget is told at most once per this window.
pub const REACTION_NOTICE_MS: i64 = 1000;
/// Chat messages one member may send in a burst, and how many more per second (the flood
/// limit; slow mode comes on top, for non-moderators).
pub const CHAT_BURST: f64 = 5.0;
pub const CHAT_PER_SECOND: f64 = 0.5;
/// How many chat messages history pages reach back.
pub const CHAT_HISTORY: usize = 500;
/// How many chat messages the room keeps (for [`RoomRules::chat_log`], recordings).
pub const CHAT_LOG_MAX: usize = 5000;
/// How many of the latest messages a snapshot carries.
pub const CHAT_SNAPSHOT: usize = 50;

/// A token bucket: `capacity` tokens, refilled at `per_second`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    per_ms: f64,
    tokens: f64,
    at: i64,
}

impl TokenBucket {
    /// A full bucket at `now` (ms).
    pub fn new(capacity: f64, per_second: f64, now: i64) -> Self {
        TokenBucket {
            capacity,
            per_ms: per_second / 1000.0,
            tokens: capacity,
            at: now,
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, now: i64) -> bool {
        let elapsed = (now - self.at).max(0) as f64;
        self.tokens = (self.tokens + elapsed * self.per_ms).min(self.capacity);
        self.at = self.at.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What to do with one reaction from a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReactionVerdict {
    Allow,
    /// Over the budget: drop it silently.
    Drop,
    /// Over the budget: drop it and send one `rate_limited` error (once per window).
    DropAndTell,
}

/// One connection's reaction budget: excess is dropped, the sender told at most once per
/// [`REACTION_NOTICE_MS`], and never disconnected for it.
#[derive(Debug, Clone)]
pub struct ReactionLimiter {
    bucket: TokenBucket,
    told_at: Option<i64>,
}

impl ReactionLimiter {
    pub fn new(now: i64) -> Self {
        ReactionLimiter {
            bucket: TokenBucket::new(REACTION_BURST, REACTIONS_PER_SECOND, now),
            told_at: None,
        }
    }

    pub fn check(&mut self, now: i64) -> ReactionVerdict {
        if self.bucket.take(now) {
            return ReactionVerdict::Allow;
        }
        match self.told_at {
            Some(t) if now - t < REACTION_NOTICE_MS => ReactionVerdict::Drop,
            _ => {
                self.told_at = Some(now);
                ReactionVerdict::DropAndTell
            }
        }
    }
}

/// A kept chat message, with who deleted it if someone did (deleted messages leave history
/// and the log but stay findable by id, for reports).
#[derive(Debug, Clone, PartialEq)]
pub struct ChatEntry {
    pub message: ChatMessage,
    pub deleted_by: Option<UserId>,
}

#[derive(Debug, Clone)]
struct Sender {
    bucket: TokenBucket,
    last_at: i64,
}

/// The reactions and chat state of one room.
#[derive(Debug, Clone)]
pub struct RoomChat {
    pub reactions_enabled: bool,
    pub settings: ChatSettings,
    log: VecDeque<ChatEntry>,
    next_id: u64,
    /// Grows on every message and deletion (a recorder re-reads the log only when it moved).
    revision: u64,
    senders: HashMap<UserId, Sender>,
    pending: IndexMap<(Reaction, Option<UserId>), u32>,
    last_flush: i64,
}

impl Default for RoomChat {
    fn default() -> Self {
        RoomChat {
            reactions_enabled: true,
            settings: ChatSettings::default(),
            log: VecDeque::new(),
            next_id: 1,
            revision: 0,
            senders: HashMap::new(),
            pending: IndexMap::new(),
            last_flush: i64::MIN / 2,
        }
    }
}

/// What a chat command needs from outside the rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChatContext {
    /// Milliseconds since the epoch.
    pub now: i64,
    /// Whether the actor follows at least one of the room's moderators (looked up by the
    /// service when [`RoomRules::chat_needs_follow_check`] says so).
    pub follows_host: bool,
}

/// Whether a client message is one of the reactions and chat commands handled by
/// [`RoomRules::apply_chat`].
pub fn is_chat_command(msg: &ClientMessage) -> bool {
    matches!(
        msg,
        ClientMessage::React { .. }
            | ClientMessage::SetReactionsEnabled { .. }
            | ClientMessage::SendChat { .. }
            | ClientMessage::DeleteChat { .. }
            | ClientMessage::SetChatSettings { .. }
    )
}

impl RoomRules {
    pub fn reactions_enabled(&self) -> bool {
        self.chat.reactions_enabled
    }

    pub fn chat_settings(&self) -> ChatSettings {
        self.chat.settings
    }

    /// Puts back stored settings (after a restart or a takeover).
    pub fn restore_chat_settings(
        mut self,
        reactions_enabled: bool,
        settings: ChatSettings,
    ) -> Self {
        self.chat.reactions_enabled = reactions_enabled;
        self.chat.settings = settings;
        self
    }

    /// Whether a chat message from `user` now depends on whether they follow a host.
    pub fn chat_needs_follow_check(&self, user: &UserId) -> bool {
        self.chat.settings.mode == ChatMode::Followers
            && self.role_of(user).is_some_and(|r| r != Role::Moderator)
    }

    /// Applies a reactions or chat command (see [`is_chat_command`]).
    pub fn apply_chat(
        &mut self,
        actor: &UserId,
        msg: &ClientMessage,
        ctx: ChatContext,
    ) -> Result<Effects, ErrorCode> {
        if self.ended {
            return Err(ErrorCode::RoomEnded);
        }
        let guest = self.guests.contains(actor);
        let role = match self.role_of(actor) {
            Some(r) => Some(r),
            None if guest => None,
            None => return Err(ErrorCode::NotInRoom),
        };
        let is_mod = role == Some(Role::Moderator);
        let require_mod = || {
            if is_mod {
                Ok(())
            } else {
                Err(ErrorCode::Forbidden)
            }
        };
        let mut fx = Effects::default();
        match msg {
            ClientMessage::React { reaction, to } => {
                if !self.chat.reactions_enabled {
                    return Err(ErrorCode::ReactionsDisabled);
                }
                if let Some(to) = to {
                    if !self.stage.contains_key(to) {
                        return Err(if self.member(to).is_some() || self.guests.contains(to) {
                            ErrorCode::InvalidTarget
                        } else {
                            ErrorCode::TargetNotInRoom
                        });
                    }
                }
                let n = self
                    .chat
                    .pending
                    .entry((*reaction, to.clone()))
                    .or_insert(0);
                *n = n.saturating_add(1);
            }
            ClientMessage::SetReactionsEnabled { enabled } => {
                require_mod()?;
                if self.chat.reactions_enabled != *enabled {
                    self.chat.reactions_enabled = *enabled;
                    if !enabled {
                        self.chat.pending.clear();
                    }
                    fx.event(
                        Audience::All,
                        RoomEvent::ReactionsEnabled { enabled: *enabled },
                    );
                    fx.persist.push(Persist::ReactionsEnabled(*enabled));
                }
            }
            ClientMessage::SendChat { text } => {
                let Some(role) = role else {
                    // Guests read the chat only.
                    return Err(ErrorCode::Forbidden);
                };
                let text = clean_chat_text(text).map_err(|_| ErrorCode::InvalidField)?;
                let settings = self.chat.settings;
                if role != Role::Moderator {
                    match settings.mode {
                        ChatMode::Off => return Err(ErrorCode::ChatDisabled),
                        ChatMode::Followers if !ctx.follows_host => {
                            return Err(ErrorCode::ChatFollowersOnly)
                        }
                        _ => {}
                    }
                }
                let now = ctx.now;
                let sender = self
                    .chat
                    .senders
                    .entry(actor.clone())
                    .or_insert_with(|| Sender {
                        bucket: TokenBucket::new(CHAT_BURST, CHAT_PER_SECOND, now),
                        last_at: i64::MIN / 2,
                    });
                if role != Role::Moderator
                    && settings.slow_seconds > 0
                    && now - sender.last_at < settings.slow_seconds as i64 * 1000
                {
                    return Err(ErrorCode::SlowMode);
                }
                if !sender.bucket.take(now) {
                    return Err(ErrorCode::RateLimited);
                }
                sender.last_at = now;
                let author = self.member(actor).expect("has a role").user.clone();
                let message = ChatMessage {
                    id: self.chat.next_id,
                    author,
                    links: find_links(&text),
                    text,
                    at: now,
                };
                self.chat.next_id += 1;
                if self.chat.log.len() >= CHAT_LOG_MAX {
                    self.chat.log.pop_front();
                }
                self.chat.log.push_back(ChatEntry {
                    message: message.clone(),
                    deleted_by: None,
                });
                self.chat.revision += 1;
                fx.event(Audience::All, RoomEvent::ChatMessage { message });
            }
            ClientMessage::DeleteChat { id } => {
                if guest {
                    return Err(ErrorCode::Forbidden);
                }
                let entry = self
                    .chat
                    .log
                    .iter_mut()
                    .rev()
                    .find(|e| e.message.id == *id && e.deleted_by.is_none())
                    .ok_or(ErrorCode::NotFound)?;
                if !is_mod && entry.message.author.id != *actor {
                    return Err(ErrorCode::Forbidden);
                }
                entry.deleted_by = Some(actor.clone());
                self.chat.revision += 1;
                fx.event(Audience::All, RoomEvent::ChatDeleted { id: *id });
            }
            ClientMessage::SetChatSettings { settings } => {
                require_mod()?;
                if settings.slow_seconds > MAX_SLOW_MODE_SECONDS {
                    return Err(ErrorCode::InvalidField);
                }
                if self.chat.settings != *settings {
                    self.chat.settings = *settings;
                    fx.event(
                        Audience::All,
                        RoomEvent::ChatSettings {
                            settings: *settings,
                        },
                    );
                    fx.persist.push(Persist::ChatSettings(*settings));
                }
            }
            _ => return Err(ErrorCode::BadRequest),
        }
        Ok(fx)
    }

    /// The reactions of the window that ended, as one event to everyone; None while the
    /// window is open or nothing was sent. Called on the registry's tick.
    pub fn take_reactions(&mut self, now: i64) -> Option<Effects> {
        if self.chat.pending.is_empty() || now - self.chat.last_flush < REACTION_WINDOW_MS {
            return None;
        }
        self.chat.last_flush = now;
        let bursts = std::mem::take(&mut self.chat.pending)
            .into_iter()
            .map(|((reaction, to), count)| ReactionBurst {
                reaction,
                to,
                count,
            })
            .collect();
        if self.ended {
            return None;
        }
        let mut fx = Effects::default();
        fx.event(Audience::All, RoomEvent::Reactions { bursts });
        Some(fx)
    }

    /// Messages that history pages can reach, newest first.
    fn chat_visible(&self) -> impl Iterator<Item = &ChatMessage> {
        self.chat
            .log
            .iter()
            .rev()
            .filter(|e| e.deleted_by.is_none())
            .take(CHAT_HISTORY)
            .map(|e| &e.message)
    }

    /// One page of history: up to `limit` messages before the id `before` (the latest when
    /// None), oldest first, and whether older ones remain.
    pub fn chat_history(&self, before: Option<u64>, limit: u32) -> (Vec<ChatMessage>, bool) {
        let limit = limit.clamp(1, MAX_CHAT_PAGE) as usize;
        let mut older = self
            .chat_visible()
            .filter(|m| before.is_none_or(|b| m.id < b));
        let mut page: Vec<ChatMessage> = older.by_ref().take(limit).cloned().collect();
        let more = older.next().is_some();
        page.reverse();
        (page, more)
    }

    /// The latest page, for snapshots.
    pub(super) fn chat_recent(&self) -> (Vec<ChatMessage>, bool) {
        self.chat_history(None, CHAT_SNAPSHOT as u32)
    }

    /// Changes whenever a message is posted or deleted.
    pub fn chat_revision(&self) -> u64 {
        self.chat.revision
    }

    /// Every message kept (up to [`CHAT_LOG_MAX`]), oldest first, deleted ones left out:
    /// the chat to store with a recording.
    pub fn chat_log(&self) -> Vec<ChatMessage> {
        self.chat
            .log
            .iter()
            .filter(|e| e.deleted_by.is_none())
            .map(|e| e.message.clone())
            .collect()
    }

    /// One kept message by id, deleted or not (evidence for a report).
    pub fn chat_message(&self, id: u64) -> Option<&ChatEntry> {
        self.chat.log.iter().rev().find(|e| e.message.id == id)
    }
}

#[cfg(test)]
#[path = "chat_tests.rs"]
mod tests;
