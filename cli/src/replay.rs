//! Replay and clip verbs: `ruang replay ROOM --out FILE.ogg`, `ruang replay delete ROOM`,
//! `ruang clip ROOM`.

use crate::account::authed;
use crate::Remote;
use anyhow::{anyhow, bail, Context, Result};
use clap::Subcommand;
use ruang_client::api::parse_room_link;

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
pub enum ReplayAction {
    /// Delete the replay of a room you hosted (its file too).
    Delete { room: String },
    /// The replays on a member's profile (yours without a handle), newest first.
    List { handle: Option<String> },
}

/// A room id or link (`…/r/ROOM?t=KEY`) as (id, link key).
fn room_ref(room: &str) -> (String, Option<String>) {
    if room.contains("://") {
        if let Some((id, t)) = parse_room_link(room) {
            return (id, t);
        }
    }
    (room.to_owned(), None)
}

/// `ruang replay ROOM --out FILE.ogg` / `ruang replay delete ROOM`.
pub async fn replay(
    remote: &Remote,
    action: Option<ReplayAction>,
    room: Option<String>,
    out: Option<std::path::PathBuf>,
) -> Result<()> {
    let c = authed(remote)?;
    match action {
        Some(ReplayAction::Delete { room }) => {
            let (id, _) = room_ref(&room);
            c.delete_replay(&id).await?;
            emit!("deleted");
            return Ok(());
        }
        Some(ReplayAction::List { handle }) => {
            let handle = match handle {
                Some(h) => h.trim_start_matches('@').to_owned(),
                None => c.me().await?.handle,
            };
            // One per line: room id, length, title, the page that plays it.
            for r in c.user_replays(&handle).await? {
                let s = r.duration_ms / 1000;
                emit!(
                    "{}\t{}:{:02}\t{}\t{}",
                    r.id,
                    s / 60,
                    s % 60,
                    crate::account::printable(&r.title, false),
                    r.link
                );
            }
            return Ok(());
        }
        None => {}
    }
    let room = room.ok_or_else(|| anyhow!("name the room: ruang replay ROOM --out FILE.ogg"))?;
    let out = out.ok_or_else(|| anyhow!("say where to write it: --out FILE.ogg"))?;
    let (id, key) = room_ref(&room);
    // The metadata first: a clear error while the room is live or has no replay.
    let meta = c.replay(&id, key.as_deref()).await?;
    let bytes = c.download_replay(&id, key.as_deref()).await?;
    if bytes.len() as u64 != meta.bytes {
        bail!(
            "the download is incomplete ({} of {} bytes)",
            bytes.len(),
            meta.bytes
        );
    }
    // Never a half-written file: a temporary name beside it, then a rename.
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".{}.part",
        out.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "replay.ogg".into())
    ));
    std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &out).with_context(|| format!("writing {}", out.display()))?;
    emit!(
        "{}\t{} ms\t{} bytes\t{} chapters",
        out.display(),
        meta.duration_ms,
        bytes.len(),
        meta.chapters.len()
    );
    for ch in &meta.chapters {
        emit!(
            "chapter\t{}\t{}",
            ch.start_ms,
            crate::account::printable(&ch.name, false)
        );
    }
    Ok(())
}

/// `ruang clip ROOM`: clips the last 30 s; prints the shareable link.
pub async fn clip(remote: &Remote, room: &str) -> Result<()> {
    let c = authed(remote)?;
    let (id, _) = room_ref(room);
    let clip = c.clip(&id).await?;
    emit!("{}", clip.url);
    Ok(())
}

/// `ruang room end ID`: joins and ends the room (moderators).
pub async fn end_room(remote: &Remote, room: &str) -> Result<()> {
    let (id, key) = room_ref(room);
    let session = crate::bot::join(remote, &id, key).await?;
    session.end_room().await.context("cannot end the room")?;
    emit!("ended");
    Ok(())
}

/// `ruang room record ID [--off]`: starts or stops recording (moderators).
pub async fn set_recording(remote: &Remote, room: &str, on: bool) -> Result<()> {
    let (id, key) = room_ref(room);
    let session = crate::bot::join(remote, &id, key).await?;
    session
        .set_recording(on)
        .await
        .context("cannot change recording")?;
    emit!("{}", if on { "recording" } else { "not recording" });
    Ok(())
}
