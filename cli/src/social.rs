//! Profile, event and notification verbs: thin calls to the typed client.

use crate::account::{authed, printable, Kind};
use crate::Remote;
use anyhow::{Context, Result};
use clap::Subcommand;
use ruang_proto::{CreateEventRequest, ProfileUpdate, UpdateEventRequest};

/// Prints one line; a closed pipe ends the program quietly.
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

#[derive(Subcommand)]
pub enum ProfileAction {
    /// Change your profile: photo, name, bio, links.
    Set {
        /// A JPEG, PNG or WebP file for your photo.
        #[arg(long, conflicts_with = "remove_avatar")]
        avatar: Option<std::path::PathBuf>,
        /// Remove your photo.
        #[arg(long)]
        remove_avatar: bool,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        bio: Option<String>,
        /// A link to show (up to 3; replaces the ones you have).
        #[arg(long = "link")]
        links: Vec<String>,
        /// Remove all your links.
        #[arg(long, conflicts_with = "links")]
        clear_links: bool,
    },
    /// Who follows someone (you by default), one handle per line.
    Followers { handle: Option<String> },
    /// Whom someone (you by default) follows, one handle per line.
    Following { handle: Option<String> },
}

pub async fn profile_action(remote: &Remote, action: ProfileAction) -> Result<()> {
    let c = authed(remote)?;
    match action {
        ProfileAction::Set {
            avatar,
            remove_avatar,
            name,
            bio,
            links,
            clear_links,
        } => {
            if let Some(path) = avatar {
                let bytes =
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                c.set_avatar(bytes).await?;
            }
            if remove_avatar {
                c.delete_avatar().await?;
            }
            let update = ProfileUpdate {
                name,
                bio,
                links: if clear_links {
                    Some(Vec::new())
                } else if links.is_empty() {
                    None
                } else {
                    Some(links)
                },
            };
            if update.name.is_some() || update.bio.is_some() || update.links.is_some() {
                c.update_profile(&update).await?;
            }
            Ok(())
        }
        ProfileAction::Followers { handle } => list(&c, handle, "followers").await,
        ProfileAction::Following { handle } => list(&c, handle, "following").await,
    }
}

async fn list(c: &ruang_client::ApiClient, handle: Option<String>, which: &str) -> Result<()> {
    let handle = match handle {
        Some(h) => h,
        None => c.me().await?.handle,
    };
    let mut cursor: Option<String> = None;
    loop {
        let page = c
            .follow_list(&handle, which, cursor.as_deref(), Some(100))
            .await?;
        for u in &page.users {
            emit!(
                "@{}\t{}",
                printable(&u.handle, false),
                printable(&u.name, false)
            );
        }
        match page.next_cursor {
            Some(n) => cursor = Some(n),
            None => return Ok(()),
        }
    }
}

#[derive(Subcommand)]
pub enum EventAction {
    /// Schedule a room. Prints the event id.
    Create {
        #[arg(long)]
        title: String,
        /// Start: RFC 3339 (2026-12-08T19:00:00+07:00), or a local time (2026-12-08T19:00)
        /// read in --tz.
        #[arg(long)]
        at: String,
        /// IANA time zone (Asia/Jakarta); UTC by default.
        #[arg(long)]
        tz: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
        /// A co-host's handle (repeat for more); they become moderators of the room.
        #[arg(long = "cohost")]
        cohosts: Vec<String>,
        #[arg(long, value_enum, default_value = "open")]
        kind: Kind,
    },
    /// Show one event.
    Show { id: String },
    /// Change an event you host (those who asked to be notified hear of it).
    Edit {
        id: String,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        tz: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Cancel an event you host.
    Cancel { id: String },
    /// Ask to be notified when it starts (--off to stop).
    Notify {
        id: String,
        #[arg(long)]
        off: bool,
    },
    /// Start the event's room (host only). Prints the room id.
    Start { id: String },
}

fn print_event(e: &ruang_proto::Event) {
    emit!(
        "{}\t{}\t{}\t{}",
        e.id,
        e.starts_at_local,
        serde_json::to_value(e.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        printable(&e.title, false)
    );
}

pub async fn event(remote: &Remote, action: EventAction) -> Result<()> {
    let c = authed(remote)?;
    match action {
        EventAction::Create {
            title,
            at,
            tz,
            description,
            cohosts,
            kind,
        } => {
            let e = c
                .create_event(&CreateEventRequest {
                    title,
                    description,
                    starts_at: at,
                    time_zone: tz,
                    kind: kind.into(),
                    cohosts,
                })
                .await?;
            emit!("{}", e.id);
        }
        EventAction::Show { id } => {
            let e = c.event(&id).await?;
            print_event(&e);
            emit!(
                "host @{}{}",
                printable(&e.host.handle, false),
                e.cohosts
                    .iter()
                    .map(|h| format!(", co-host @{}", printable(&h.handle, false)))
                    .collect::<String>()
            );
            if !e.description.is_empty() {
                emit!("{}", printable(&e.description, true));
            }
            emit!("{}", e.link);
        }
        EventAction::Edit {
            id,
            title,
            at,
            tz,
            description,
        } => {
            let e = c
                .update_event(
                    &id,
                    &UpdateEventRequest {
                        title,
                        description,
                        starts_at: at,
                        time_zone: tz,
                        cohosts: None,
                    },
                )
                .await?;
            print_event(&e);
        }
        EventAction::Cancel { id } => c.cancel_event(&id).await?,
        EventAction::Notify { id, off } => {
            c.notify_event(&id, !off).await?;
        }
        EventAction::Start { id } => {
            let room = c.start_event(&id).await?;
            emit!("{}", room.id);
        }
    }
    Ok(())
}

/// `ruang events`: upcoming events, one per line: id, local start, status, title.
pub async fn events(remote: &Remote) -> Result<()> {
    let c = authed(remote)?;
    for e in c.events().await? {
        print_event(&e);
    }
    Ok(())
}

/// `ruang notifications`: newest first, one per line; `--read` moves the read marker.
pub async fn notifications(remote: &Remote, mark_read: bool) -> Result<()> {
    let c = authed(remote)?;
    let page = c.notifications(None, Some(100)).await?;
    for n in &page.notifications {
        emit!(
            "{}\t{}\t{}\t{}",
            if n.read { " " } else { "*" },
            n.kind.as_str(),
            printable(&n.text, false),
            n.link
        );
    }
    if mark_read {
        if let Some(newest) = page.notifications.first() {
            c.mark_notifications_read(newest.created_at).await?;
        }
    }
    Ok(())
}

/// `ruang search Q`: one hit per line: `person @handle name`, `room ID title`,
/// `event ID start status title`.
pub async fn search(remote: &Remote, q: &str) -> Result<()> {
    let c = authed(remote)?;
    let r = c.search(q).await?;
    for u in &r.people {
        emit!(
            "person\t@{}\t{}",
            printable(&u.handle, false),
            printable(&u.name, false)
        );
    }
    for room in &r.rooms {
        emit!("room\t{}\t{}", room.id, printable(&room.title, false));
    }
    for e in &r.events {
        emit!(
            "event\t{}\t{}\t{}",
            e.id,
            e.starts_at_local,
            printable(&e.title, false)
        );
    }
    Ok(())
}
