//! Reactions and the room chat from the command line: `ruang chat`, `ruang react`,
//! `ruang room chat`, `ruang room reactions`. Each joins the room over its WebSocket (as a
//! listener if the caller was not in it yet), does one thing and goes: a listener it
//! joined leaves quietly; someone already on stage keeps their place.

use crate::account::{authed, printable};
use crate::Remote;
use anyhow::{anyhow, bail, Context, Result};
use ruang_client::{ConnectionState, RoomSession, SessionOptions};
use ruang_proto::{ChatMessage, ChatMode, ChatSettings, Reaction, Role, UserId};
use std::time::Duration;

/// How `ruang room chat` changes the settings.
#[derive(clap::Args)]
#[group(required = true, multiple = true)]
pub struct ChatSettingsArgs {
    /// Only moderators may post.
    #[arg(long, conflicts_with_all = ["on", "followers"])]
    pub off: bool,
    /// Every member may post.
    #[arg(long, conflicts_with = "followers")]
    pub on: bool,
    /// Only members who follow one of the moderators may post.
    #[arg(long)]
    pub followers: bool,
    /// Seconds between two messages of a member (0 turns slow mode off).
    #[arg(long, value_name = "SECONDS")]
    pub slow: Option<u32>,
}

/// `ruang room reactions ROOM --off|--on`.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub struct OnOff {
    #[arg(long)]
    pub off: bool,
    #[arg(long)]
    pub on: bool,
}

async fn join(remote: &Remote, room: &str) -> Result<RoomSession> {
    let api = authed(remote)?;
    let token = api
        .token()
        .ok_or_else(|| anyhow!("this needs a session token"))?
        .to_owned();
    RoomSession::join(api.ws_url(room), token, SessionOptions::default())
        .await
        .with_context(|| format!("cannot join room {room}"))
}

/// Goes away: a listener leaves quietly, someone on stage keeps their place for the
/// server's grace period (their other device may still be there).
async fn done(session: RoomSession) {
    if session.state().room.my_role() == Some(Role::Listener) {
        let _ = session.leave(true).await;
    }
}

fn line(m: &ChatMessage) -> String {
    format!(
        "#{}\t@{}\t{}",
        m.id,
        printable(&m.author.handle, false),
        printable(&m.text, false)
    )
}

/// `ruang chat ROOM TEXT`, or `ruang chat ROOM --tail`.
pub async fn chat(
    remote: &Remote,
    room: &str,
    text: Option<String>,
    tail: bool,
    seconds: Option<f64>,
) -> Result<()> {
    let session = join(remote, room).await?;
    let result = async {
        if let Some(text) = &text {
            session.send_chat(text).await.context("not sent")?;
        }
        if tail {
            tail_chat(&session, seconds).await?;
        }
        if text.is_none() && !tail {
            bail!("give a message to send, or --tail to read the chat");
        }
        Ok(())
    }
    .await;
    done(session).await;
    result
}

/// Prints the latest history, then new messages, deletions and reaction bursts until
/// `seconds` pass (or Ctrl-C).
async fn tail_chat(session: &RoomSession, seconds: Option<f64>) -> Result<()> {
    let state = session.state();
    let room = state.room.room.as_ref().ok_or_else(|| anyhow!("no room"))?;
    let mut last_id = 0;
    for m in &room.chat_recent {
        crate::account::emit_line(&line(m));
        last_id = m.id;
    }
    let mut seen_bursts = state.room.reaction_bursts;
    let mut shown: Vec<u64> = room.chat_recent.iter().map(|m| m.id).collect();
    let mut rx = session.subscribe();
    let deadline = seconds.map(|s| tokio::time::Instant::now() + Duration::from_secs_f64(s));
    loop {
        let wait = async {
            match deadline {
                Some(d) => tokio::time::timeout_at(d, rx.changed()).await.ok(),
                None => Some(rx.changed().await),
            }
        };
        let changed = tokio::select! {
            c = wait => c,
            _ = tokio::signal::ctrl_c() => None,
        };
        match changed {
            Some(Ok(())) => {}
            _ => return Ok(()),
        }
        let st = rx.borrow_and_update().clone();
        if let ConnectionState::Ended { reason, error } = &st.connection {
            bail!("the room connection ended ({reason:?} {error:?})");
        }
        let Some(room) = st.room.room.as_ref() else {
            continue;
        };
        let since = last_id;
        for m in room.chat_recent.iter().filter(|m| m.id > since) {
            crate::account::emit_line(&line(m));
            shown.push(m.id);
            last_id = m.id;
        }
        let gone: Vec<u64> = shown
            .iter()
            .copied()
            .filter(|id| !room.chat_recent.iter().any(|m| m.id == *id))
            .collect();
        for id in gone {
            crate::account::emit_line(&format!("deleted\t#{id}"));
            shown.retain(|x| *x != id);
        }
        if st.room.reaction_bursts != seen_bursts {
            seen_bursts = st.room.reaction_bursts;
            let parts: Vec<String> = st
                .room
                .reactions
                .iter()
                .map(|b| {
                    let to =
                        b.to.as_ref()
                            .and_then(|u| st.room.participant(u))
                            .map(|p| format!(" to @{}", printable(&p.user.handle, false)))
                            .unwrap_or_default();
                    format!("{} x{}{}", b.reaction.emoji(), b.count, to)
                })
                .collect();
            crate::account::emit_line(&format!("reactions\t{}", parts.join("\t")));
        }
    }
}

/// `ruang react ROOM EMOJI [--to HANDLE] [--count N]`.
pub async fn react(
    remote: &Remote,
    room: &str,
    emoji: &str,
    to: Option<String>,
    count: u32,
) -> Result<()> {
    let reaction = Reaction::parse(emoji).ok_or_else(|| {
        let names: Vec<String> = Reaction::ALL
            .iter()
            .map(|r| format!("{} ({})", r.emoji(), r.as_str()))
            .collect();
        anyhow!("unknown reaction {emoji:?}; one of: {}", names.join(", "))
    })?;
    let session = join(remote, room).await?;
    let result = async {
        let state = session.state();
        if let Some(r) = &state.room.room {
            if !r.reactions_enabled {
                bail!("reactions are switched off in this room");
            }
        }
        let to: Option<UserId> = match to {
            None => None,
            Some(h) => {
                let h = h.trim_start_matches('@');
                let p = state
                    .room
                    .room
                    .as_ref()
                    .and_then(|r| r.stage.iter().find(|p| p.user.handle == h))
                    .ok_or_else(|| anyhow!("@{h} is not on stage in this room"))?;
                Some(p.user.id.clone())
            }
        };
        for _ in 0..count.max(1) {
            session.react(reaction, to.clone()).await?;
        }
        // A round trip, so the reactions reached the server before we go.
        session.audience_page(0, 1).await?;
        Ok(())
    }
    .await;
    done(session).await;
    result
}

/// `ruang room chat ROOM --off|--on|--followers [--slow N]`.
pub async fn settings(remote: &Remote, room: &str, args: ChatSettingsArgs) -> Result<()> {
    let session = join(remote, room).await?;
    let result = async {
        let current = session
            .state()
            .room
            .room
            .as_ref()
            .map(|r| r.chat)
            .unwrap_or_default();
        let mode = if args.off {
            ChatMode::Off
        } else if args.followers {
            ChatMode::Followers
        } else if args.on {
            ChatMode::Everyone
        } else {
            current.mode
        };
        let settings = ChatSettings {
            mode,
            slow_seconds: args.slow.unwrap_or(current.slow_seconds),
        };
        session.set_chat_settings(settings).await?;
        crate::account::emit_line(&format!(
            "chat {}\tslow {}",
            settings.mode.as_str(),
            settings.slow_seconds
        ));
        Ok(())
    }
    .await;
    done(session).await;
    result
}

/// `ruang room reactions ROOM --off|--on`.
pub async fn reactions(remote: &Remote, room: &str, on: OnOff) -> Result<()> {
    let session = join(remote, room).await?;
    let result = session.set_reactions_enabled(on.on).await;
    done(session).await;
    result?;
    crate::account::emit_line(if on.on {
        "reactions on"
    } else {
        "reactions off"
    });
    Ok(())
}

/// `ruang room chat-delete ROOM ID`.
pub async fn delete(remote: &Remote, room: &str, id: u64) -> Result<()> {
    let session = join(remote, room).await?;
    let result = session.delete_chat(id).await;
    done(session).await;
    Ok(result?)
}
