//! Media files across a cluster: photos, replays and clips are written on the node that made
//! them (its `DATA/media`). A node asked for one it does not have fetches it from the other
//! nodes once (`GET /internal/v1/media/KIND/NAME`, signed like every node-to-node request),
//! keeps a copy and serves it; the files never change once written (photos are named by
//! their content, a replay or clip is made once), so a copy is never stale. A deleted replay
//! is announced on the bus and every node removes its copy. Without `--cluster` nothing here
//! runs: a missing file is simply missing.

use super::{ApiError, AppState};
use crate::cluster::auth::{Forwarded, HEADER};
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use ruang_proto::ErrorCode;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How long a node waits for another's copy of a file (a one-hour replay is about 15 MB).
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest file taken from another node.
const FETCH_MAX: usize = 256 << 20;

/// The kinds of media file nodes hand each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Avatars,
    Replays,
    Clips,
}

impl MediaKind {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "avatars" => Some(Self::Avatars),
            "replays" => Some(Self::Replays),
            "clips" => Some(Self::Clips),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Avatars => "avatars",
            Self::Replays => "replays",
            Self::Clips => "clips",
        }
    }

    pub fn dir(self, state: &AppState) -> PathBuf {
        match self {
            Self::Avatars => super::media::avatar_dir(&state.media_dir),
            Self::Replays => crate::replay::replay_dir(state.replays.media_dir()),
            Self::Clips => crate::replay::clip_dir(state.replays.media_dir()),
        }
    }
}

/// A file name nodes may ask for: letters, digits, `-`, `_` and one dot before a known
/// extension (no path, no hidden or temporary file).
pub fn valid_name(name: &str) -> bool {
    let Some((stem, ext)) = name.split_once('.') else {
        return false;
    };
    matches!(ext, "jpg" | "ogg" | "json")
        && !stem.is_empty()
        && stem.len() <= 100
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The local path of `name`, fetched from another node first when this one lacks it
/// (cluster mode). None when no node has it.
pub async fn local_path(state: &AppState, kind: MediaKind, name: &str) -> Option<PathBuf> {
    if !valid_name(name) {
        return None;
    }
    let path = kind.dir(state).join(name);
    if tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return Some(path);
    }
    let cluster = state.cluster.as_ref()?;
    let nodes = match cluster.nodes().await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cluster: cannot list nodes to fetch a media file");
            return None;
        }
    };
    let rel = format!("/internal/v1/media/{}/{name}", kind.as_str());
    for node in nodes.into_iter().filter(|n| n.id != cluster.node_id()) {
        let header = cluster.key().sign(
            cluster.node_id(),
            IpAddr::from([127, 0, 0, 1]),
            Method::GET.as_str(),
            &rel,
        );
        let got = async {
            let resp = state
                .node_http
                .get(format!("{}{rel}", node.url))
                .timeout(FETCH_TIMEOUT)
                .header(HEADER, header)
                .send()
                .await?;
            if resp.status() != reqwest::StatusCode::OK {
                return Ok(None);
            }
            if resp.content_length().unwrap_or(0) as usize > FETCH_MAX {
                return Ok(None);
            }
            let bytes = resp.bytes().await?;
            Ok::<_, reqwest::Error>((bytes.len() <= FETCH_MAX).then_some(bytes))
        };
        match got.await {
            Ok(Some(bytes)) => {
                let (dir, file) = (kind.dir(state), name.to_owned());
                let written = tokio::task::spawn_blocking(move || {
                    crate::replay::write_atomic(&dir, &file, &bytes)
                })
                .await;
                match written {
                    Ok(Ok(())) => {
                        tracing::info!(node = %node.id, kind = kind.as_str(), name, "cluster: media file copied from another node");
                        return Some(path);
                    }
                    _ => {
                        tracing::warn!(
                            kind = kind.as_str(),
                            name,
                            "cluster: cannot keep a copied media file"
                        );
                        return None;
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(node = %node.id, error = %e, "cluster: a node did not answer for a media file");
            }
        }
    }
    None
}

/// A replay was deleted through this node: the other nodes drop their copies.
pub async fn announce_deleted(state: &AppState, kind: MediaKind, name: &str) {
    if let Some(cluster) = &state.cluster {
        let msg = format!("{} {name}", kind.as_str());
        if let Err(e) = cluster.publish(crate::cluster::MEDIA_DELETED, msg).await {
            tracing::warn!(error = %e, "cluster: a deletion was not announced to the other nodes");
        }
    }
}

/// A `MEDIA_DELETED` bus message (`KIND NAME`): removes this node's copy.
pub async fn on_deleted(state: &AppState, payload: &str) {
    let Some((kind, name)) = payload.split_once(' ') else {
        return;
    };
    let Some(kind) = MediaKind::parse(kind) else {
        return;
    };
    if valid_name(name) {
        let _ = tokio::fs::remove_file(kind.dir(state).join(name)).await;
    }
}

/// `GET /internal/v1/media/{kind}/{name}` (nodes only): this node's own copy of a file.
pub async fn internal_media(
    State(state): State<AppState>,
    fwd: Option<axum::Extension<Forwarded>>,
    Path((kind, name)): Path<(String, String)>,
) -> Response {
    let not_found = || ApiError::new(ErrorCode::NotFound, "no such file").into_response();
    if fwd.is_none() {
        return not_found();
    }
    let Some(kind) = MediaKind::parse(&kind).filter(|_| valid_name(&name)) else {
        return not_found();
    };
    match tokio::fs::read(kind.dir(&state).join(&name)).await {
        Ok(bytes) => (StatusCode::OK, bytes).into_response(),
        Err(_) => not_found(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_of_known_kinds() {
        assert!(valid_name("0123abcdef0123abcdef0123abcdef01-256.jpg"));
        assert!(valid_name("r7kq2m5xv3na.ogg"));
        assert!(valid_name("r7kq2m5xv3na.json"));
        for bad in [
            "",
            ".ogg",
            "../x.ogg",
            "a/b.ogg",
            ".tmp-1-x.ogg",
            "x.ogg.tmp",
            "x.spool",
            "x",
            "x.OGG",
            "x y.ogg",
        ] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert!(!valid_name(&format!("{}.ogg", "a".repeat(101))));
        assert_eq!(MediaKind::parse("spool"), None);
        assert_eq!(MediaKind::parse("replays"), Some(MediaKind::Replays));
    }
}
