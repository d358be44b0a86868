//! A room's recorder: the SFU hands it every packet it forwards (after the stage and mute
//! checks) through a bounded queue, never waiting (a full queue drops and counts); one task
//! per recorded room keeps a 30 s ring for clips and, while recording, appends to the
//! room's spool file.

use super::mix::{self, SpoolPacket, SpoolSpeaker};
use ruang_proto::UserId;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Packets waiting for the recorder task (about 10 s of 4 speakers).
pub const QUEUE: usize = 2048;
/// How much audio the clip ring holds.
pub const CLIP_WINDOW: Duration = Duration::from_secs(30);

/// One forwarded packet, its payload shared with the forwarding path (no copy).
pub struct Captured {
    pub speaker: Arc<UserId>,
    pub at: Instant,
    pub rtp: u32,
    pub payload: Arc<[u8]>,
}

/// What a recorder task can be asked.
pub enum Control {
    /// The last 30 s as a spool (speakers and packets, times from the first packet).
    Clip(oneshot::Sender<mix::Spool>),
    /// The room moves to another node (drain): write what is queued, stop without mixing,
    /// then answer. The spool goes with the room.
    HandOver(oneshot::Sender<()>),
}

/// The channels of a started recorder task.
pub struct Channels {
    pub packets: mpsc::Sender<Captured>,
    pub control: mpsc::UnboundedSender<Control>,
}

/// Held by each live room; read by the SFU for every forwarded packet (atomics only).
#[derive(Default)]
pub struct Recorder {
    recording: AtomicBool,
    clips: AtomicBool,
    channels: OnceLock<Channels>,
    /// Packets dropped because the recorder's queue was full.
    pub dropped: AtomicU64,
    /// Packets handed to the recorder.
    pub captured: AtomicU64,
}

impl Recorder {
    /// Whether audio must reach the task (recording, or clips allowed).
    pub fn active(&self) -> bool {
        self.recording.load(Ordering::Relaxed) || self.clips.load(Ordering::Relaxed)
    }

    pub fn recording(&self) -> bool {
        self.recording.load(Ordering::Relaxed)
    }

    pub fn set(&self, recording: bool, clips: bool) {
        self.recording.store(recording, Ordering::Relaxed);
        self.clips.store(clips, Ordering::Relaxed);
    }

    /// Whether the task runs.
    pub fn started(&self) -> bool {
        self.channels.get().is_some()
    }

    /// Sets the task's channels (once; false if they were set already).
    pub fn start(&self, channels: Channels) -> bool {
        self.channels.set(channels).is_ok()
    }

    pub fn control(&self) -> Option<&mpsc::UnboundedSender<Control>> {
        self.channels.get().map(|c| &c.control)
    }

    /// The forwarding path: hands one audible packet over without waiting or copying.
    #[inline]
    pub fn offer(&self, speaker: &Arc<UserId>, at: Instant, rtp: u64, payload: &Arc<[u8]>) {
        if !self.active() {
            return;
        }
        let Some(ch) = self.channels.get() else {
            return;
        };
        let sent = ch.packets.try_send(Captured {
            speaker: speaker.clone(),
            at,
            rtp: rtp as u32,
            payload: payload.clone(),
        });
        let counter = if sent.is_ok() {
            &self.captured
        } else {
            &self.dropped
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The task's state: the clip ring and the spool being written.
pub struct Task {
    pub ring: VecDeque<Captured>,
    /// Spool bytes not yet written to the file.
    pub buf: Vec<u8>,
    pub speakers: HashMap<Arc<UserId>, u16>,
    /// Recorded time before the current stretch (recording can stop and start again: the
    /// pause is left out of the replay).
    pub elapsed_before_ms: u64,
    pub active_since: Option<Instant>,
    /// Wall-clock time (ms) of the first recorded packet: the replay's chat is timed from it.
    pub started_wall_ms: Option<i64>,
    pub packets_spooled: u64,
}

impl Task {
    pub fn new(elapsed_before_ms: u64) -> Self {
        Task {
            ring: VecDeque::new(),
            buf: Vec::with_capacity(64 * 1024),
            speakers: HashMap::new(),
            elapsed_before_ms,
            active_since: None,
            started_wall_ms: None,
            packets_spooled: 0,
        }
    }

    /// Keeps the packet for clips and, when `recording`, appends it to the spool buffer.
    /// `name` gives a new speaker's display name.
    pub fn push(&mut self, p: Captured, recording: bool, name: impl FnOnce(&UserId) -> String) {
        let cutoff = p.at.checked_sub(CLIP_WINDOW);
        while let (Some(front), Some(cutoff)) = (self.ring.front(), cutoff) {
            if front.at >= cutoff {
                break;
            }
            self.ring.pop_front();
        }
        if recording {
            self.started_wall_ms
                .get_or_insert_with(|| crate::store::now_ms() - p.at.elapsed().as_millis() as i64);
            let since = *self.active_since.get_or_insert(p.at);
            let t =
                self.elapsed_before_ms + p.at.saturating_duration_since(since).as_millis() as u64;
            let next = self.speakers.len() as u16;
            let idx = match self.speakers.get(&p.speaker) {
                Some(&i) => i,
                None => {
                    mix::write_speaker(&mut self.buf, next, &p.speaker, &name(&p.speaker));
                    self.speakers.insert(p.speaker.clone(), next);
                    next
                }
            };
            mix::write_packet(
                &mut self.buf,
                idx,
                u32::try_from(t).unwrap_or(u32::MAX),
                p.rtp,
                &p.payload,
            );
            self.packets_spooled += 1;
        } else {
            self.pause(p.at);
        }
        self.ring.push_back(p);
    }

    /// Recording stopped (noticed at `now`): the current stretch ends.
    pub fn pause(&mut self, now: Instant) {
        if let Some(since) = self.active_since.take() {
            self.elapsed_before_ms += now.saturating_duration_since(since).as_millis() as u64;
        }
    }

    /// The ring as a spool, times from its first packet.
    pub fn clip(&self, name: impl Fn(&UserId) -> String) -> mix::Spool {
        let mut spool = mix::Spool::default();
        let Some(first) = self.ring.front().map(|p| p.at) else {
            return spool;
        };
        let mut idx: HashMap<&Arc<UserId>, u16> = HashMap::new();
        for p in &self.ring {
            let next = spool.speakers.len() as u16;
            let i = *idx.entry(&p.speaker).or_insert_with(|| {
                spool.speakers.push(SpoolSpeaker {
                    user: (*p.speaker).clone(),
                    name: name(&p.speaker),
                });
                next
            });
            spool.packets.push(SpoolPacket {
                speaker: i,
                t_ms: p.at.saturating_duration_since(first).as_millis() as u32,
                rtp: p.rtp,
                payload: p.payload.to_vec(),
            });
        }
        spool
    }
}

/// The largest time in a spool (to continue after it when a restarted server reopens it).
pub fn spool_end_ms(spool: &mix::Spool) -> u64 {
    spool
        .packets
        .iter()
        .map(|p| u64::from(p.t_ms))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(user: &Arc<UserId>, at: Instant, rtp: u32) -> Captured {
        Captured {
            speaker: user.clone(),
            at,
            rtp,
            payload: Arc::from(&[1u8, 2, 3][..]),
        }
    }

    #[test]
    fn ring_keeps_30_seconds_and_pauses_are_left_out() {
        let maya = Arc::new(UserId::from("u1"));
        let t0 = Instant::now();
        let mut task = Task::new(0);
        let name = |_: &UserId| "Maya".to_owned();
        for k in 0..100u32 {
            task.push(
                cap(&maya, t0 + Duration::from_millis(500 * u64::from(k)), k),
                true,
                name,
            );
        }
        // 50 s of packets every 0.5 s: the ring holds the last 30 s.
        assert!(
            task.ring.len() <= 62 && task.ring.len() >= 60,
            "{}",
            task.ring.len()
        );
        let clip = task.clip(name);
        assert_eq!(clip.packets[0].t_ms, 0);
        assert!(clip.packets.last().unwrap().t_ms <= 30_000);
        // Recording off for 20 s, then on again: the replay's time goes on from 49.5 s.
        let off = t0 + Duration::from_secs(50);
        task.push(cap(&maya, off, 100), false, name);
        task.push(cap(&maya, off + Duration::from_secs(20), 101), true, name);
        let spool = mix::read_spool(&task.buf);
        assert_eq!(spool.speakers.len(), 1);
        assert_eq!(spool.packets.len(), 101);
        let last = spool.packets.last().unwrap().t_ms;
        assert_eq!(last, 50_000, "the 20 s pause is not in the replay");
        assert_eq!(spool_end_ms(&spool), 50_000);
    }

    #[test]
    fn offer_never_waits_and_counts_drops() {
        let rec = Recorder::default();
        let maya = Arc::new(UserId::from("u1"));
        let payload: Arc<[u8]> = Arc::from(&[1u8][..]);
        rec.offer(&maya, Instant::now(), 0, &payload); // inactive: ignored
        assert_eq!(rec.captured.load(Ordering::Relaxed), 0);
        let (tx, _rx) = mpsc::channel(2);
        let (ctl, _crx) = mpsc::unbounded_channel();
        assert!(rec.start(Channels {
            packets: tx,
            control: ctl
        }));
        rec.set(true, false);
        for _ in 0..5 {
            rec.offer(&maya, Instant::now(), 0, &payload);
        }
        assert_eq!(rec.captured.load(Ordering::Relaxed), 2);
        assert_eq!(rec.dropped.load(Ordering::Relaxed), 3);
    }
}
