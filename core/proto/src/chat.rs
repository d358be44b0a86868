//! Reactions and the room chat: the wire types and the text rules every side shares
//! (length, control characters, link detection). No I/O.

use crate::api::UserSummary;
use crate::ids::UserId;
use serde::{Deserialize, Serialize};

/// Longest chat message, in characters (Unicode scalar values) after trimming.
pub const MAX_CHAT_CHARS: usize = 500;
/// Default and largest page of `chat_history`.
pub const DEFAULT_CHAT_PAGE: u32 = 50;
pub const MAX_CHAT_PAGE: u32 = 100;
/// Longest slow mode, in seconds.
pub const MAX_SLOW_MODE_SECONDS: u32 = 3600;

/// The fixed set of reactions. On the wire by name (`"clap"`); [`Reaction::emoji`] is
/// how clients draw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reaction {
    Clap,
    Heart,
    Laugh,
    Fire,
    Hundred,
    RaisedHands,
    Hand,
    PlusOne,
}

impl Reaction {
    pub const ALL: [Reaction; 8] = [
        Reaction::Clap,
        Reaction::Heart,
        Reaction::Laugh,
        Reaction::Fire,
        Reaction::Hundred,
        Reaction::RaisedHands,
        Reaction::Hand,
        Reaction::PlusOne,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reaction::Clap => "clap",
            Reaction::Heart => "heart",
            Reaction::Laugh => "laugh",
            Reaction::Fire => "fire",
            Reaction::Hundred => "hundred",
            Reaction::RaisedHands => "raised_hands",
            Reaction::Hand => "hand",
            Reaction::PlusOne => "plus_one",
        }
    }

    /// What a client shows.
    pub fn emoji(self) -> &'static str {
        match self {
            Reaction::Clap => "👏",
            Reaction::Heart => "❤️",
            Reaction::Laugh => "😂",
            Reaction::Fire => "🔥",
            Reaction::Hundred => "💯",
            Reaction::RaisedHands => "🙌",
            Reaction::Hand => "✋",
            Reaction::PlusOne => "+1",
        }
    }

    /// By name (`clap`) or by its emoji (`👏`; the heart with or without its variation
    /// selector).
    pub fn parse(s: &str) -> Option<Reaction> {
        let s = s.trim();
        let bare = s.trim_end_matches('\u{fe0f}');
        Reaction::ALL.into_iter().find(|r| {
            r.as_str() == s || r.emoji() == s || r.emoji().trim_end_matches('\u{fe0f}') == bare
        })
    }
}

/// One (reaction, target) total of a burst window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionBurst {
    pub reaction: Reaction,
    /// The person on stage it was aimed at; absent for the room as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<UserId>,
    /// How many were sent in the window.
    pub count: u32,
}

/// Who may post in the chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ChatMode {
    /// Every member in the room (not guests).
    #[default]
    Everyone,
    /// Members who follow at least one of the room's moderators (and moderators).
    Followers,
    /// Only moderators.
    Off,
}

impl ChatMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ChatMode::Everyone => "everyone",
            ChatMode::Followers => "followers",
            ChatMode::Off => "off",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "everyone" => Some(ChatMode::Everyone),
            "followers" => Some(ChatMode::Followers),
            "off" => Some(ChatMode::Off),
            _ => None,
        }
    }
}

/// The chat's moderation settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ChatSettings {
    pub mode: ChatMode,
    /// Seconds a member waits between two messages (0: no slow mode). Moderators are exempt.
    #[serde(default)]
    pub slow_seconds: u32,
}

/// A link found in a message: `text[start..end]` in **characters** (Unicode scalar values,
/// not bytes and not UTF-16 units), and the URL it opens (always `http://` or `https://`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSpan {
    pub start: u32,
    pub end: u32,
    pub url: String,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Grows by one per message within the live room.
    pub id: u64,
    pub author: UserSummary,
    /// Plain text (never HTML): show it as text.
    pub text: String,
    /// Milliseconds since the Unix epoch, server time.
    pub at: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkSpan>,
}

/// Why a chat text is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatTextError {
    Empty,
    TooLong,
    ControlCharacter,
}

impl std::fmt::Display for ChatTextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChatTextError::Empty => "a chat message has at least one character",
            ChatTextError::TooLong => "a chat message has at most 500 characters",
            ChatTextError::ControlCharacter => "a chat message has no control characters",
        })
    }
}

/// Trims and checks a chat text: 1–500 characters, no control characters (line breaks
/// included).
pub fn clean_chat_text(text: &str) -> Result<String, ChatTextError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(ChatTextError::Empty);
    }
    if t.chars().any(char::is_control) {
        return Err(ChatTextError::ControlCharacter);
    }
    if t.chars().count() > MAX_CHAT_CHARS {
        return Err(ChatTextError::TooLong);
    }
    Ok(t.to_owned())
}

/// Finds `http://` and `https://` links (case-insensitive scheme) in a text. A link runs to
/// the next whitespace; trailing punctuation (`.,;:!?'"`) and an unbalanced closing
/// bracket are left out. Offsets are in characters.
pub fn find_links(text: &str) -> Vec<LinkSpan> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let at_word_start = i == 0 || !chars[i - 1].is_alphanumeric();
        let scheme = if at_word_start {
            ["https://", "http://"]
                .into_iter()
                .find(|s| starts_with_ci(&chars[i..], s))
        } else {
            None
        };
        let Some(scheme) = scheme else {
            i += 1;
            continue;
        };
        let mut end = i;
        while end < chars.len() && !chars[end].is_whitespace() && !"<>\"".contains(chars[end]) {
            end += 1;
        }
        // Leave out trailing punctuation and unbalanced closing brackets.
        while let Some(&last) = chars[i..end].last() {
            let unbalanced = |open: char, close: char| {
                last == close
                    && chars[i..end].iter().filter(|c| **c == close).count()
                        > chars[i..end].iter().filter(|c| **c == open).count()
            };
            if ".,;:!?'".contains(last) || unbalanced('(', ')') || unbalanced('[', ']') {
                end -= 1;
            } else {
                break;
            }
        }
        if end > i + scheme.len() {
            let raw: String = chars[i..end].iter().collect();
            // The scheme in lower case; the rest as written.
            let url = format!("{}{}", scheme, &raw[scheme.len()..]);
            out.push(LinkSpan {
                start: i as u32,
                end: end as u32,
                url,
            });
        }
        i = end.max(i + 1);
    }
    out
}

fn starts_with_ci(chars: &[char], prefix: &str) -> bool {
    let n = prefix.chars().count();
    chars.len() >= n
        && chars[..n]
            .iter()
            .zip(prefix.chars())
            .all(|(a, b)| a.to_ascii_lowercase() == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reactions_parse_by_name_and_emoji() {
        for r in Reaction::ALL {
            assert_eq!(Reaction::parse(r.as_str()), Some(r));
            assert_eq!(Reaction::parse(r.emoji()), Some(r));
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
        }
        assert_eq!(Reaction::parse("\u{2764}"), Some(Reaction::Heart));
        assert_eq!(Reaction::parse("+1"), Some(Reaction::PlusOne));
        assert_eq!(Reaction::parse("🐍"), None);
    }

    #[test]
    fn chat_text_rules() {
        assert_eq!(clean_chat_text("  hi  ").unwrap(), "hi");
        assert_eq!(clean_chat_text("   "), Err(ChatTextError::Empty));
        assert_eq!(
            clean_chat_text("a\nb"),
            Err(ChatTextError::ControlCharacter)
        );
        assert_eq!(
            clean_chat_text("a\u{7}"),
            Err(ChatTextError::ControlCharacter)
        );
        assert!(clean_chat_text(&"é".repeat(500)).is_ok());
        assert_eq!(
            clean_chat_text(&"é".repeat(501)),
            Err(ChatTextError::TooLong)
        );
        // Markup is just text.
        assert_eq!(clean_chat_text("<b>x</b>").unwrap(), "<b>x</b>");
    }

    #[test]
    fn links_are_found_in_characters() {
        let t = "héllo https://a.example/x?y=1, and (see http://b.example/p_(q)) ftp://no javascript:alert(1) xhttp://no";
        let links = find_links(t);
        assert_eq!(links.len(), 2, "{links:?}");
        let chars: Vec<char> = t.chars().collect();
        let s = |l: &LinkSpan| {
            chars[l.start as usize..l.end as usize]
                .iter()
                .collect::<String>()
        };
        assert_eq!(s(&links[0]), "https://a.example/x?y=1");
        assert_eq!(links[0].url, "https://a.example/x?y=1");
        assert_eq!(s(&links[1]), "http://b.example/p_(q)");
        assert_eq!(links[0].start, 6);
        assert!(find_links("https://").is_empty());
        assert_eq!(find_links("HTTPS://X.example")[0].url, "https://X.example");
    }
}
