//! Account, invite and room verbs: thin calls to the typed client.

use crate::Remote;
use anyhow::{anyhow, Context, Result};
use clap::Subcommand;
use ruang_client::ApiClient;
use ruang_proto::RoomKind;

#[derive(Subcommand)]
pub enum InviteAction {
    /// Revoke one of your unused codes.
    Revoke { code: String },
    /// Mint a new code (admins only).
    New,
    /// Who an invite code is from (checks that it is valid).
    Check { code: String },
}

#[derive(Subcommand)]
pub enum RoomAction {
    /// Create a live room; you are its moderator. Prints the room id.
    Create {
        #[arg(long)]
        title: String,
        #[arg(long, value_enum, default_value = "open")]
        kind: Kind,
        /// Record the room (everyone in it is told); `ruang replay` downloads it after.
        #[arg(long)]
        record: bool,
        /// Let hosts clip the last 30 s (everyone is told).
        #[arg(long)]
        clips: bool,
        /// End-to-end encrypted (closed rooms only): members' devices agree on the keys and
        /// the server forwards audio it cannot decrypt. Never recorded or clipped.
        #[arg(long)]
        e2ee: bool,
    },
    /// Show one room.
    Show { id: String },
    /// End a room you moderate (a recorded room's replay is made then).
    End { id: String },
    /// Start (or with --off stop) recording a room you moderate; everyone is told.
    Record {
        id: String,
        #[arg(long)]
        off: bool,
    },
    /// Let a member into a closed room you moderate.
    Grant {
        id: String,
        #[arg(long)]
        handle: String,
    },
    /// Moderators: who may chat (--off, --on, --followers) and slow mode (--slow SECONDS).
    Chat {
        id: String,
        #[command(flatten)]
        settings: crate::chat::ChatSettingsArgs,
    },
    /// Moderators: delete a chat message by its id (`#ID` in `ruang chat --tail`).
    ChatDelete { id: String, message: String },
    /// Moderators: reactions --on or --off.
    Reactions {
        id: String,
        #[command(flatten)]
        switch: crate::chat::OnOff,
    },
}

#[derive(clap::ValueEnum, Clone, Copy)]
pub enum Kind {
    Open,
    Social,
    Closed,
}

impl From<Kind> for RoomKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Open => RoomKind::Open,
            Kind::Social => RoomKind::Social,
            Kind::Closed => RoomKind::Closed,
        }
    }
}

/// Prints one line; a closed pipe (`ruang invites | head -1`) ends the program quietly
/// instead of panicking like `println!` would.
macro_rules! emit {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        if let Err(e) = writeln!(out, $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

/// [`emit!`] for other modules: one line on stdout.
pub fn emit_line(line: &str) {
    emit!("{line}");
}

pub fn client(remote: &Remote) -> Result<ApiClient> {
    Ok(ApiClient::new(&remote.server)?)
}

pub fn authed(remote: &Remote) -> Result<ApiClient> {
    let token = remote
        .token
        .clone()
        .ok_or_else(|| anyhow!("this needs a session token: pass --token or set RUANG_TOKEN"))?;
    Ok(client(remote)?.with_token(token))
}

pub async fn signup(remote: &Remote, invite: &str, handle: &str, name: Option<&str>) -> Result<()> {
    let mut c = client(remote)?;
    let s = c
        .signup(invite, handle, name.unwrap_or(handle))
        .await
        .context("sign-up failed")?;
    emit!("{}", s.token);
    Ok(())
}

pub async fn invites(remote: &Remote, action: Option<InviteAction>, links: bool) -> Result<()> {
    let c = authed(remote)?;
    match action {
        None => {
            for i in c.invites().await? {
                emit!("{}", if links { &i.link } else { &i.code });
            }
        }
        Some(InviteAction::Revoke { code }) => c.revoke_invite(&code).await?,
        Some(InviteAction::New) => {
            let i = c.create_invite().await?;
            emit!("{}", if links { &i.link } else { &i.code });
        }
        Some(InviteAction::Check { code }) => {
            let check = client(remote)?.check_invite(&code).await?;
            match check.invited_by {
                Some(u) => emit!("valid invite from @{} ({})", u.handle, u.name),
                None => emit!("valid admin invite"),
            }
        }
    }
    Ok(())
}

pub async fn room(remote: &Remote, action: RoomAction) -> Result<()> {
    let c = authed(remote)?;
    match action {
        RoomAction::Chat { id, settings } => {
            return crate::chat::settings(remote, &id, settings).await
        }
        RoomAction::ChatDelete { id, message } => {
            let n: u64 = message
                .trim_start_matches('#')
                .parse()
                .map_err(|_| anyhow!("a message id is a number (#12 or 12)"))?;
            return crate::chat::delete(remote, &id, n).await;
        }
        RoomAction::Reactions { id, switch } => {
            return crate::chat::reactions(remote, &id, switch).await
        }
        RoomAction::Create {
            title,
            kind,
            record,
            clips,
            e2ee,
        } => {
            let r = c
                .create_room_with(&ruang_proto::CreateRoomRequest {
                    title,
                    kind: kind.into(),
                    record,
                    clips,
                    e2ee,
                })
                .await?;
            emit!("{}", r.id);
        }
        RoomAction::Show { id } => {
            let r = c.room(&id, None).await?;
            emit!("{}\t{}\t{}", r.id, r.kind.as_str(), r.title);
            emit!("link\t{}", r.link);
            emit!("speakers\t{}", r.speaker_count);
            emit!("listeners\t{}", r.listener_count);
            for s in r.speakers {
                emit!("on stage\t@{}\t{}", s.handle, s.name);
            }
        }
        RoomAction::Grant { id, handle } => c.grant_access(&id, &handle).await?,
        RoomAction::End { id } => crate::replay::end_room(remote, &id).await?,
        RoomAction::Record { id, off } => crate::replay::set_recording(remote, &id, !off).await?,
    }
    Ok(())
}

pub async fn rooms(remote: &Remote) -> Result<()> {
    let c = authed(remote)?;
    for r in c.hallway().await? {
        let names: Vec<&str> = r.speakers.iter().map(|s| s.name.as_str()).collect();
        emit!(
            "{}\t{}\t{}\t{} speaking\t{} listening\t{}",
            r.id,
            r.kind.as_str(),
            printable(&r.title, false),
            r.speaker_count,
            r.listener_count,
            printable(&names.join(", "), false)
        );
    }
    Ok(())
}

/// Text from the server made safe for a terminal: control characters (escape sequences
/// included) and text-direction overrides become U+FFFD; line breaks stay when `multiline`.
pub fn printable(text: &str, multiline: bool) -> String {
    text.chars()
        .map(|c| {
            let bidi = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
            if (c.is_control() && !(multiline && c == '\n')) || bidi {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

pub async fn profile(remote: &Remote, handle: Option<String>) -> Result<()> {
    let c = authed(remote)?;
    let p = match handle {
        Some(h) => c.profile(&h).await?,
        None => c.me().await?,
    };
    emit!(
        "@{}\t{}",
        printable(&p.handle, false),
        printable(&p.name, false)
    );
    if !p.bio.is_empty() {
        emit!("{}", printable(&p.bio, true));
    }
    if let Some(by) = p.invited_by {
        emit!(
            "nominated by @{} ({})",
            printable(&by.handle, false),
            printable(&by.name, false)
        );
    }
    for l in &p.links {
        emit!("{}", printable(l, false));
    }
    if let Some(a) = &p.avatar {
        emit!(
            "photo {}{}",
            remote.server.trim_end_matches('/'),
            ruang_proto::avatar_path(a, ruang_proto::AVATAR_PROFILE)
        );
    }
    emit!("{} followers\t{} following", p.followers, p.following);
    for r in &p.hosting_now {
        emit!("hosting now\t{}\t{}", r.id, printable(&r.title, false));
    }
    for e in &p.upcoming {
        emit!(
            "upcoming\t{}\t{}\t{}",
            e.id,
            e.starts_at_local,
            printable(&e.title, false)
        );
    }
    Ok(())
}

pub async fn follow(remote: &Remote, handle: &str, on: bool) -> Result<()> {
    let c = authed(remote)?;
    if on {
        c.follow(handle).await?;
    } else {
        c.unfollow(handle).await?;
    }
    Ok(())
}

pub async fn logout(remote: &Remote, all: bool) -> Result<()> {
    let c = authed(remote)?;
    if all {
        c.logout_all().await?;
    } else {
        c.logout().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn terminal_escapes_and_overrides_are_neutralised() {
        assert_eq!(printable("hi\u{1b}[2J\u{7}", true), "hi\u{FFFD}[2J\u{FFFD}");
        assert_eq!(printable("a\nb", true), "a\nb");
        assert_eq!(printable("a\nb", false), "a\u{FFFD}b");
        assert_eq!(printable("\u{202E}gnp.exe", false), "\u{FFFD}gnp.exe");
        assert_eq!(printable("Maya 🎙️", false), "Maya 🎙️");
    }
}
