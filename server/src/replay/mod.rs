//! Recorded rooms, replays and clips.
//!
//! - `recorder.rs`: the per-room [`Recorder`] the SFU hands forwarded packets to (after
//!   the stage and mute checks, so only what listeners hear), and the task state behind it:
//!   a 30 s ring for clips, the spool of a recorded room.
//! - `mix.rs`: the spool format and the mix (decode per speaker, place by arrival, mix
//!   with `ruang_media::mixer`, encode once) into Ogg Opus with chapters.
//! - `ogg.rs`: the Ogg page writer and reader, OpusHead/OpusTags.
//!
//! [`Replays`] runs one task per room that records or allows clips (on the room's owner
//! node: in a cluster, edges send every speaker's audio up to it). When the room ends the
//! spool is mixed on a blocking thread; the file is written to a temporary name and renamed
//! (never half-written), then the replay's row is stored.

#[cfg(test)]
mod bench_tests;
pub mod mix;
pub mod ogg;
pub mod recorder;

pub use recorder::Recorder;

use crate::rooms::{LiveRoom, Registry};
use crate::store::Store;
use recorder::{Captured, Channels, Control, Task};
use ruang_proto::RoomId;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How often room tasks flush their spool and look whether the room ended.
const TICK: Duration = Duration::from_millis(250);
/// Looks (100 ms apart) at the database for the end of a room that was dropped.
const END_WRITE_TRIES: u32 = 30;

/// `replays/` under the media directory: `ROOM.ogg` and `ROOM.json`.
pub fn replay_dir(media: &Path) -> PathBuf {
    media.join("replays")
}

/// `clips/` under the media directory: `ID.ogg`.
pub fn clip_dir(media: &Path) -> PathBuf {
    media.join("clips")
}

/// `spool/` under the media directory: `ROOM.spool` while a room is recorded.
pub fn spool_dir(media: &Path) -> PathBuf {
    media.join("spool")
}

/// Whether `id` looks like one of our ids (file names are built from it).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Writes a file whole or not at all: a temporary file in the same directory, synced,
/// then renamed over the name.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}-{name}", crate::store::new_id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(name))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The chat kept with a replay: the messages posted while the room was recorded (deleted
/// ones are not kept), each with its time from the start of the recording.
pub fn chat_for_replay(
    chat: &[ruang_proto::ChatMessage],
    started_wall_ms: Option<i64>,
) -> Vec<serde_json::Value> {
    let Some(start) = started_wall_ms else {
        return Vec::new();
    };
    chat.iter()
        .filter(|m| m.at >= start)
        .map(|m| {
            serde_json::json!({
                "id": m.id,
                "author": m.author,
                "text": m.text,
                "links": m.links,
                "at": m.at,
                "offset_ms": m.at - start,
            })
        })
        .collect()
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct ReplayMetrics {
    pub packets_spooled: AtomicU64,
    pub replays_made: AtomicU64,
    pub clips_made: AtomicU64,
    pub mix_failures: AtomicU64,
}

/// Recording, replays and clips of this node's rooms.
pub struct Replays {
    store: Store,
    registry: Arc<Registry>,
    media_dir: PathBuf,
    /// Rooms whose stored options were read (after a restart or a takeover).
    seen: Mutex<HashSet<RoomId>>,
    /// Rooms whose task runs here.
    running: Mutex<HashSet<RoomId>>,
    pub metrics: ReplayMetrics,
}

impl Replays {
    /// Starts the loop that starts room tasks (rooms restored, recording switched on).
    pub fn start(
        store: Store,
        registry: Arc<Registry>,
        media_dir: PathBuf,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Arc<Replays> {
        let replays = Arc::new(Replays {
            store,
            registry,
            media_dir,
            seen: Mutex::new(HashSet::new()),
            running: Mutex::new(HashSet::new()),
            metrics: ReplayMetrics::default(),
        });
        let weak = Arc::downgrade(&replays);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(TICK);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    _ = stop.changed() => break,
                }
                let Some(r) = weak.upgrade() else { break };
                r.supervise().await;
            }
        });
        replays
    }

    pub fn media_dir(&self) -> &Path {
        &self.media_dir
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, HashSet<RoomId>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashSet<RoomId>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where `room`'s spool is while it is recorded here.
    pub fn spool_path(&self, room: &RoomId) -> PathBuf {
        spool_dir(&self.media_dir).join(format!("{room}.spool"))
    }

    /// Stops the task of `room` (it moves to another node): what it queued is written, the
    /// spool is left whole for the room's next owner. False if it did not answer in `within`.
    pub async fn hand_over(&self, room: &LiveRoom, within: Duration) -> bool {
        if !self.running().contains(&room.id) {
            return true;
        }
        let Some(control) = room.recorder.control() else {
            return true;
        };
        let (tx, rx) = oneshot::channel();
        if control.send(Control::HandOver(tx)).is_err() {
            return true;
        }
        matches!(tokio::time::timeout(within, rx).await, Ok(Ok(())))
    }

    /// A room created here with its options already set.
    pub fn created(self: &Arc<Self>, room: &Arc<LiveRoom>) {
        self.seen().insert(room.id.clone());
        self.ensure(room);
    }

    /// Starts the room's task if it records or allows clips and none runs yet.
    pub fn ensure(self: &Arc<Self>, room: &Arc<LiveRoom>) {
        if !room.recorder.active() || room.recorder.started() {
            return;
        }
        let (packets, rx) = mpsc::channel(recorder::QUEUE);
        let (control, crx) = mpsc::unbounded_channel();
        if room.recorder.start(Channels { packets, control }) {
            tracing::info!(room = %room.id, "recorder started");
            self.running().insert(room.id.clone());
            tokio::spawn(
                self.clone()
                    .run_room(Arc::downgrade(room), room.id.clone(), rx, crx),
            );
        }
    }

    async fn supervise(self: &Arc<Self>) {
        for room in self.registry.all() {
            let new = self.seen().insert(room.id.clone());
            if new {
                // Restored after a restart (or taken over): its stored options. Only ever
                // switched on here: a change made since is newer than the stored row.
                if let Ok((recording, clips)) = self.store.room_media(&room.id).await {
                    let (r, c) = room.media_options();
                    if (recording && !r) || (clips && !c) {
                        room.set_media_options(recording || r, clips || c);
                    }
                }
            }
            self.ensure(&room);
        }
    }

    async fn run_room(
        self: Arc<Self>,
        room: Weak<LiveRoom>,
        id: RoomId,
        mut rx: mpsc::Receiver<Captured>,
        mut crx: mpsc::UnboundedReceiver<Control>,
    ) {
        let spool_path = self.spool_path(&id);
        // A spool left by a restart, or handed over by a draining node, goes on after what
        // it holds.
        let before = match std::fs::read(&spool_path) {
            Ok(bytes) => recorder::spool_end_ms(&mix::read_spool(&bytes)) + 1000,
            Err(_) => 0,
        };
        let mut task = Task::new(before);
        let mut file: Option<std::fs::File> = None;
        let mut every = tokio::time::interval(TICK);
        // The room's chat, for the replay: read on the tick whenever it changed, because the
        // room may be gone (its last reference dropped) before the loop sees it end.
        let mut chat = Vec::new();
        let mut chat_revision = 0;
        let mut handed_over = None;
        // The room ended while this task looked (not only dropped).
        let mut saw_end = false;
        loop {
            tokio::select! {
                p = rx.recv() => {
                    let Some(p) = p else { break };
                    let Some(live) = room.upgrade() else { break };
                    let recording = live.recorder.recording();
                    task.push(p, recording, |u| live.display_name(u));
                }
                c = crx.recv() => match c {
                    Some(Control::Clip(reply)) => {
                        let live = room.upgrade();
                        let _ = reply.send(task.clip(|u| {
                            live.as_ref().map(|l| l.display_name(u)).unwrap_or_else(|| u.to_string())
                        }));
                    }
                    Some(Control::HandOver(done)) => {
                        handed_over = Some(done);
                        break;
                    }
                    None => {}
                },
                _ = every.tick() => {
                    let ended = match room.upgrade() {
                        None => true,
                        Some(live) => {
                            if !live.recorder.recording() {
                                task.pause(Instant::now());
                            }
                            let revision = live.chat_revision();
                            if revision != chat_revision {
                                chat = live.chat_log();
                                chat_revision = revision;
                            }
                            saw_end |= live.ended();
                            live.ended()
                        }
                    };
                    self.flush(&spool_path, &mut file, &mut task);
                    if ended {
                        break;
                    }
                }
            }
        }
        // Whatever is still queued was forwarded before the end.
        while let Ok(p) = rx.try_recv() {
            if let Some(live) = room.upgrade() {
                let recording = live.recorder.recording();
                task.push(p, recording, |u| live.display_name(u));
            }
        }
        self.flush(&spool_path, &mut file, &mut task);
        drop(file);
        if let Some(done) = handed_over {
            self.running().remove(&id);
            tracing::info!(room = %id, "recorder handed over");
            let _ = done.send(());
            return;
        }
        if spool_path.exists() {
            let chat = chat_for_replay(&chat, task.started_wall_ms);
            self.finish(&id, &spool_path, chat, saw_end).await;
        }
        self.running().remove(&id);
        tracing::info!(room = %id, "recorder stopped");
    }

    /// Appends the task's buffered spool bytes to the file.
    fn flush(&self, path: &Path, file: &mut Option<std::fs::File>, task: &mut Task) {
        use std::io::Write;
        self.metrics
            .packets_spooled
            .fetch_add(std::mem::take(&mut task.packets_spooled), Ordering::Relaxed);
        if task.buf.is_empty() {
            return;
        }
        if file.is_none() {
            let opened = std::fs::create_dir_all(spool_dir(&self.media_dir)).and_then(|_| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
            });
            match opened {
                Ok(f) => *file = Some(f),
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "cannot open the spool");
                    task.buf.clear();
                    return;
                }
            }
        }
        if let Some(f) = file {
            if let Err(e) = f.write_all(&task.buf) {
                tracing::error!(path = %path.display(), error = %e, "cannot write the spool");
            }
        }
        task.buf.clear();
    }

    /// The room ended: mix its spool into the replay.
    async fn finish(
        &self,
        id: &RoomId,
        spool_path: &Path,
        chat: Vec<serde_json::Value>,
        saw_end: bool,
    ) {
        // The end is written to the database after the room shows it: when this task saw
        // the room end, that is enough; when the room was only dropped, the database says
        // (once the room's last writes land) whether it ended or was let go.
        let mut tries = 0;
        let (room, ended) = loop {
            match self.store.room_record(id).await {
                Ok(Some((room, ended))) => {
                    if ended || saw_end || tries >= END_WRITE_TRIES {
                        break (room, ended || saw_end);
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(room = %id, error = %e, "replay: cannot read the room");
                    return;
                }
            }
            tries += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        if !ended {
            // Not ended: this node let the room go (cluster) or is stopping. The spool stays.
            return;
        }
        let path = spool_path.to_owned();
        let dir = replay_dir(&self.media_dir);
        let title = room.title.clone();
        let name = id.to_string();
        let started = Instant::now();
        let made = tokio::task::spawn_blocking(move || -> Result<(mix::Mixed, usize), String> {
            let bytes = std::fs::read(&path).map_err(|e| e.to_string())?;
            let spool = mix::read_spool(&bytes);
            let mixed = mix::mix(&spool, &title)?;
            let timeline = serde_json::json!({
                "speakers": mixed.spans,
                "chapters": mixed.chapters,
            });
            write_atomic(&dir, &format!("{name}.ogg"), &mixed.ogg).map_err(|e| e.to_string())?;
            write_atomic(
                &dir,
                &format!("{name}.json"),
                timeline.to_string().as_bytes(),
            )
            .map_err(|e| e.to_string())?;
            Ok((mixed, spool.packets.len()))
        })
        .await;
        let (mixed, packets) = match made {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => {
                self.metrics.mix_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(room = %id, error = %e, "replay: mix failed; the spool is kept");
                return;
            }
            Err(_) => return,
        };
        let meta = serde_json::json!({
            "speakers": mixed.spans,
            "chapters": mixed.chapters,
            "chat": chat,
        });
        if let Err(e) = self
            .store
            .insert_replay(
                id,
                &room.created_by,
                mixed.duration_ms as i64,
                mixed.ogg.len() as i64,
                &meta.to_string(),
            )
            .await
        {
            tracing::error!(room = %id, error = %e, "replay: cannot store it; the spool is kept");
            return;
        }
        let _ = std::fs::remove_file(spool_path);
        self.metrics.replays_made.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            room = %id,
            packets,
            audio_ms = mixed.duration_ms,
            bytes = mixed.ogg.len(),
            mix_ms = started.elapsed().as_millis() as u64,
            "replay made"
        );
    }

    /// The last 30 s of `room` as an Ogg Opus clip: `(bytes, duration_ms)`.
    pub async fn clip_audio(
        &self,
        room: &Arc<LiveRoom>,
        title: &str,
    ) -> Result<(Vec<u8>, u64), ClipError> {
        let control = room.recorder.control().ok_or(ClipError::NoAudio)?;
        let (tx, rx) = oneshot::channel();
        control
            .send(Control::Clip(tx))
            .map_err(|_| ClipError::NoAudio)?;
        let spool = tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .map_err(|_| ClipError::Busy)?
            .map_err(|_| ClipError::NoAudio)?;
        if spool.packets.is_empty() {
            return Err(ClipError::NoAudio);
        }
        let title = title.to_owned();
        let mixed = tokio::task::spawn_blocking(move || mix::mix(&spool, &title))
            .await
            .map_err(|_| ClipError::Busy)?
            .map_err(ClipError::Mix)?;
        Ok((mixed.ogg, mixed.duration_ms))
    }
}

/// Why a clip could not be made.
#[derive(Debug)]
pub enum ClipError {
    /// Nothing was said in the last 30 s (or the room records nothing).
    NoAudio,
    Busy,
    Mix(String),
}
