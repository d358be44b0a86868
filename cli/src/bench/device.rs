//! A virtual audio device on a clock shared by every device of the benchmark.
//!
//! Like `ruang_media`'s `VirtualDevice` with real-time pacing (a thread per direction, one
//! 10 ms block per tick on absolute deadlines), but every device ticks on the same epoch and
//! every block carries its global sample index, so what one device captures and what another
//! plays are on one time base:
//! - capture tick `n` delivers the input for global samples `[(n-1)·480, n·480)` (the audio a
//!   sound card recorded during the last period);
//! - playback tick `n` pulls the block played during `[n·480, (n+1)·480)`.
//!
//! Mouth-to-ear delay of a sample is then (playback index − capture index) / 48 kHz, and
//! includes one device period on each side, as a sound card with 10 ms buffers would add.

use super::analysis::{Input, Recording, SR};
use ruang_client::media::ruang_media::device::{
    capture_ring, playback_ring, AudioDevice, CaptureStream, DeviceError, PlaybackStream,
    StopGuard, StreamConfig,
};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Device period.
pub const TICK_MS: u64 = 10;
const TICK: usize = SR * TICK_MS as usize / 1000;
/// A played sample at least this loud counts as "audio heard" (about −54 dBFS).
pub const HEARD: i16 = 64;

/// The shared sample clock: global index 0 is the epoch.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub epoch: Instant,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            epoch: Instant::now(),
        }
    }

    pub fn index_at(&self, t: Instant) -> u64 {
        (t.saturating_duration_since(self.epoch).as_nanos() * SR as u128 / 1_000_000_000) as u64
    }

    pub fn now(&self) -> u64 {
        self.index_at(Instant::now())
    }

    pub fn instant_of(&self, index: u64) -> Instant {
        self.epoch + Duration::from_nanos((index as u128 * 1_000_000_000 / SR as u128) as u64)
    }
}

struct Played {
    recording: Mutex<Recording>,
    /// Global index of the first sample at least [`HEARD`] loud (`u64::MAX`: none yet).
    first_heard: AtomicU64,
}

/// See the module docs. The microphone plays `input` by global index; the speaker records.
pub struct BenchDevice {
    clock: Clock,
    input: Option<Input>,
    record_capacity: usize,
    played: Arc<Played>,
}

impl BenchDevice {
    pub fn new(clock: Clock, input: Option<Input>, record_seconds: f64) -> BenchDevice {
        BenchDevice {
            clock,
            input,
            record_capacity: (record_seconds.max(0.0) * SR as f64) as usize,
            played: Arc::new(Played {
                recording: Mutex::new(Recording::default()),
                first_heard: AtomicU64::new(u64::MAX),
            }),
        }
    }

    /// Global index of the first audible played sample, if any yet.
    pub fn first_heard(&self) -> Option<u64> {
        match self.played.first_heard.load(Ordering::Acquire) {
            u64::MAX => None,
            g => Some(g),
        }
    }

    /// The recording; complete once the playback stream was dropped (media stopped).
    pub fn take_recording(&self) -> Recording {
        std::mem::take(
            &mut *self
                .played
                .recording
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }
}

/// Runs `tick(state, n)` at `epoch + n·TICK_MS` for every `n` from the next tick on, until
/// stopped; then `done(state)`.
fn spawn_ticks<T: Send + 'static>(
    name: &str,
    clock: Clock,
    mut state: T,
    mut tick: impl FnMut(&mut T, u64) + Send + 'static,
    done: impl FnOnce(T) + Send + 'static,
) -> Result<StopGuard, DeviceError> {
    let stop = Arc::new(AtomicBool::new(false));
    let stop_thread = stop.clone();
    let period = Duration::from_millis(TICK_MS);
    let handle = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            // A sound card's callback thread runs at real-time priority; so does this one.
            ruang_client::media::ruang_media::rt::raise_current_thread(
                ruang_client::media::ruang_media::rt::DEVICE_RT_PRIORITY,
            );
            let mut n = (clock.epoch.elapsed().as_nanos() / period.as_nanos()) as u64 + 1;
            while !stop_thread.load(Ordering::Acquire) {
                let deadline = clock.instant_of(n * TICK as u64);
                let now = Instant::now();
                if deadline > now {
                    std::thread::sleep(deadline - now);
                }
                tick(&mut state, n);
                n += 1;
            }
            done(state);
        })
        .map_err(|e| DeviceError::Backend(format!("spawn {name}: {e}")))?;
    Ok(StopGuard::new(move || {
        stop.store(true, Ordering::Release);
        let _ = handle.join();
    }))
}

impl AudioDevice for BenchDevice {
    fn open_capture(&mut self, config: StreamConfig) -> Result<CaptureStream, DeviceError> {
        let input = self.input.take().ok_or(DeviceError::AlreadyOpen)?;
        let (sink, stream) = capture_ring(config);
        let guard = spawn_ticks(
            "bench-capture",
            self.clock,
            (sink, vec![0i16; TICK]),
            move |(sink, block), n| {
                let first = (n - 1) * TICK as u64;
                for (i, s) in block.iter_mut().enumerate() {
                    *s = input.sample(first + i as u64);
                }
                sink.push(block);
            },
            |_| {},
        )?;
        Ok(stream.with_guard(guard))
    }

    fn open_playback(&mut self, config: StreamConfig) -> Result<PlaybackStream, DeviceError> {
        let (source, stream) = playback_ring(config);
        // Preallocated: the playback thread never grows it.
        let rec = Recording {
            start: u64::MAX,
            samples: Vec::with_capacity(self.record_capacity),
        };
        let played = self.played.clone();
        let played_done = self.played.clone();
        let guard = spawn_ticks(
            "bench-playback",
            self.clock,
            (source, vec![0i16; TICK], rec),
            move |(source, block, rec), n| {
                let first = n * TICK as u64;
                source.pull(block);
                if rec.start == u64::MAX {
                    rec.start = first;
                }
                let room = rec.samples.capacity() - rec.samples.len();
                rec.samples
                    .extend_from_slice(&block[..room.min(block.len())]);
                if played.first_heard.load(Ordering::Relaxed) == u64::MAX {
                    if let Some(i) = block.iter().position(|s| s.unsigned_abs() >= HEARD as u16) {
                        played
                            .first_heard
                            .store(first + i as u64, Ordering::Release);
                    }
                }
            },
            move |(_, _, rec)| {
                *played_done
                    .recording
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = rec;
            },
        )?;
        Ok(stream.with_guard(guard))
    }
}
