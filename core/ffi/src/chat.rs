//! Reactions and the room chat on a joined [`Room`]: commands, a history call, and a
//! listener that gets the chat as it is first, then every change and every reaction burst.

use crate::error::RuangError;
use crate::room::Room;
use crate::runtime::{block_on, handle};
use crate::types::UserSummary;
use ruang_client::session::SessionState;
use ruang_proto as proto;
use std::sync::Arc;

type Result<T> = std::result::Result<T, RuangError>;

/// A link inside a chat message: characters `start..end` of the text (Unicode code points,
/// not UTF-16 units: use `offsetByCodePoints` in Kotlin), opening `url` (http or https).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChatLink {
    pub start: u32,
    pub end: u32,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChatMessageView {
    pub id: u64,
    pub author: UserSummary,
    /// Plain text: show it as text, never as markup.
    pub text: String,
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    pub links: Vec<ChatLink>,
}

impl From<&proto::ChatMessage> for ChatMessageView {
    fn from(m: &proto::ChatMessage) -> Self {
        ChatMessageView {
            id: m.id,
            author: m.author.clone().into(),
            text: m.text.clone(),
            at_ms: m.at,
            links: m
                .links
                .iter()
                .map(|l| ChatLink {
                    start: l.start,
                    end: l.end,
                    url: l.url.clone(),
                })
                .collect(),
        }
    }
}

/// Who may post in the chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ChatMode {
    Everyone,
    /// Members who follow one of the moderators.
    Followers,
    /// Moderators only.
    Off,
}

impl From<proto::ChatMode> for ChatMode {
    fn from(m: proto::ChatMode) -> Self {
        match m {
            proto::ChatMode::Everyone => ChatMode::Everyone,
            proto::ChatMode::Followers => ChatMode::Followers,
            proto::ChatMode::Off => ChatMode::Off,
        }
    }
}

impl From<ChatMode> for proto::ChatMode {
    fn from(m: ChatMode) -> Self {
        match m {
            ChatMode::Everyone => proto::ChatMode::Everyone,
            ChatMode::Followers => proto::ChatMode::Followers,
            ChatMode::Off => proto::ChatMode::Off,
        }
    }
}

/// The chat as a chat panel shows it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChatViewState {
    pub mode: ChatMode,
    pub slow_seconds: u32,
    pub reactions_enabled: bool,
    /// The latest messages, oldest first (older ones: `Room.chatHistory`).
    pub messages: Vec<ChatMessageView>,
    /// Whether older messages than `messages` remain.
    pub more: bool,
}

impl ChatViewState {
    pub fn from_session(s: &SessionState) -> Self {
        let r = s.room.room.as_ref();
        ChatViewState {
            mode: r.map(|r| r.chat.mode.into()).unwrap_or(ChatMode::Everyone),
            slow_seconds: r.map(|r| r.chat.slow_seconds).unwrap_or(0),
            reactions_enabled: r.is_none_or(|r| r.reactions_enabled),
            messages: r
                .map(|r| r.chat_recent.iter().map(Into::into).collect())
                .unwrap_or_default(),
            more: r.is_some_and(|r| r.chat_more),
        }
    }
}

/// One (reaction, target) total of a burst.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReactionBurstView {
    /// Its name on the wire (`clap`, `plus_one`, …).
    pub reaction: String,
    /// What to draw (`👏`, `+1`, …).
    pub emoji: String,
    /// The user id of the person on stage it is aimed at, if any.
    pub to: Option<String>,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChatPage {
    pub messages: Vec<ChatMessageView>,
    pub more: bool,
}

/// Receives the chat (the current state first, then every change) and each reaction
/// burst as it arrives. Called from a core thread.
#[uniffi::export(with_foreign)]
pub trait ChatListener: Send + Sync {
    fn on_chat(&self, chat: ChatViewState);
    fn on_reactions(&self, bursts: Vec<ReactionBurstView>);
}

/// The reactions a client offers, as `(name, emoji)` pairs in display order.
#[uniffi::export]
pub fn reaction_choices() -> Vec<ReactionBurstView> {
    proto::Reaction::ALL
        .iter()
        .map(|r| ReactionBurstView {
            reaction: r.as_str().into(),
            emoji: r.emoji().into(),
            to: None,
            count: 0,
        })
        .collect()
}

fn invalid(code: &str, detail: String) -> RuangError {
    RuangError::InvalidInput {
        code: code.into(),
        detail,
    }
}

#[uniffi::export]
impl Room {
    /// Sends a reaction (a name like `clap` or the emoji itself), optionally aimed at the
    /// person on stage with user id `to`. Fire and forget.
    pub fn react(&self, reaction: String, to: Option<String>) -> Result<()> {
        let r = proto::Reaction::parse(&reaction)
            .ok_or_else(|| invalid("reaction", format!("unknown reaction {reaction:?}")))?;
        Ok(block_on(self.session().react(r, to.map(proto::UserId)))?)
    }

    pub fn send_chat(&self, text: String) -> Result<()> {
        proto::clean_chat_text(&text).map_err(|e| invalid("text", e.to_string()))?;
        Ok(block_on(self.session().send_chat(&text))?)
    }

    /// Moderators (or the author).
    pub fn delete_chat(&self, id: u64) -> Result<()> {
        Ok(block_on(self.session().delete_chat(id))?)
    }

    /// Moderators: who may post, and seconds between a member's messages (0: off).
    pub fn set_chat_settings(&self, mode: ChatMode, slow_seconds: u32) -> Result<()> {
        let settings = proto::ChatSettings {
            mode: mode.into(),
            slow_seconds,
        };
        Ok(block_on(self.session().set_chat_settings(settings))?)
    }

    /// Moderators.
    pub fn set_reactions_enabled(&self, enabled: bool) -> Result<()> {
        Ok(block_on(self.session().set_reactions_enabled(enabled))?)
    }

    /// Older messages: up to `limit` before the id `before` (the latest when none).
    pub fn chat_history(&self, before: Option<u64>, limit: u32) -> Result<ChatPage> {
        let (messages, more) = block_on(self.session().chat_history(before, limit))?;
        Ok(ChatPage {
            messages: messages.iter().map(Into::into).collect(),
            more,
        })
    }

    /// Starts calling `listener`: the chat now, then on every chat change and every
    /// reaction burst, until the room session ends.
    pub fn set_chat_listener(&self, listener: Arc<dyn ChatListener>) -> Result<()> {
        let mut rx = self.session().subscribe();
        std::thread::Builder::new()
            .name("ruang-chat".into())
            .spawn(move || {
                let rt = handle();
                let first = rx.borrow_and_update().clone();
                let mut chat = ChatViewState::from_session(&first);
                let mut bursts = first.room.reaction_bursts;
                listener.on_chat(chat.clone());
                while rt.block_on(rx.changed()).is_ok() {
                    let state = rx.borrow_and_update().clone();
                    let now = ChatViewState::from_session(&state);
                    if now != chat {
                        chat = now;
                        listener.on_chat(chat.clone());
                    }
                    if state.room.reaction_bursts != bursts {
                        bursts = state.room.reaction_bursts;
                        let list = state
                            .room
                            .reactions
                            .iter()
                            .map(|b| ReactionBurstView {
                                reaction: b.reaction.as_str().into(),
                                emoji: b.reaction.emoji().into(),
                                to: b.to.as_ref().map(|u| u.0.clone()),
                                count: b.count,
                            })
                            .collect();
                        listener.on_reactions(list);
                    }
                }
            })
            .map_err(|e| RuangError::Server {
                detail: format!("cannot start the chat listener: {e}"),
            })?;
        Ok(())
    }
}
