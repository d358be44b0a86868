//! Virtual audio device for tests, bots and benchmarks.
//!
//! Capture comes from a [`Source`] (WAV file, sample buffer, generator, silence); playback is
//! recorded into memory (save it with [`crate::wav::write_wav`]). With [`Pacing::Realtime`] a
//! thread per direction moves one tick of audio every `tick_ms` on absolute deadlines from a
//! shared epoch, so capture and playback share one clock, as a sound card would. With
//! [`Pacing::Manual`] nothing runs by itself: [`VirtualDevice::tick`] moves audio on the
//! caller's thread, for fast deterministic tests.

use super::{
    capture_ring, playback_ring, AudioDevice, CaptureSink, CaptureStream, DeviceError,
    PlaybackSource, PlaybackStream, StopGuard, StreamConfig,
};
use crate::SAMPLE_RATE;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Fills a block of capture samples.
pub type GeneratorFn = Box<dyn FnMut(&mut [i16]) + Send>;

/// What the virtual microphone "hears".
pub enum Source {
    Silence,
    /// Plays `data` once (then silence) or in a loop.
    Samples {
        data: Arc<[i16]>,
        pos: usize,
        looping: bool,
    },
    /// Called to fill each block; must not allocate or block if used with real-time pacing.
    Generator(GeneratorFn),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Silence => f.write_str("Silence"),
            Source::Samples { data, pos, looping } => f
                .debug_struct("Samples")
                .field("len", &data.len())
                .field("pos", pos)
                .field("looping", looping)
                .finish(),
            Source::Generator(_) => f.write_str("Generator"),
        }
    }
}

impl Source {
    pub fn samples(data: impl Into<Arc<[i16]>>, looping: bool) -> Self {
        Source::Samples {
            data: data.into(),
            pos: 0,
            looping,
        }
    }

    /// A WAV file, converted to 48 kHz mono.
    pub fn wav(path: impl AsRef<Path>, looping: bool) -> Result<Self, DeviceError> {
        Ok(Self::samples(crate::wav::read_wav(path)?, looping))
    }

    /// A continuous sine tone; `amplitude` is a fraction of full scale.
    pub fn sine(freq: f32, amplitude: f32) -> Self {
        let step = freq / SAMPLE_RATE as f32;
        let mut phase = 0.0f32;
        Self::generator(move |out| {
            for s in out {
                *s = (amplitude * 32767.0 * (2.0 * std::f32::consts::PI * phase).sin()) as i16;
                phase = (phase + step).fract();
            }
        })
    }

    /// Silence until `go` is set, then `data` once or in a loop: nothing is lost while the
    /// transport comes up. Runs on the device thread: no allocation, no locks.
    pub fn gated(data: Vec<i16>, looping: bool, go: Arc<AtomicBool>) -> Self {
        let mut pos = 0;
        Self::generator(move |out| {
            for s in out.iter_mut() {
                if looping && pos >= data.len() {
                    pos = 0;
                }
                *s = if go.load(Ordering::Acquire) && pos < data.len() {
                    pos += 1;
                    data[pos - 1]
                } else {
                    0
                };
            }
        })
    }

    pub fn generator(f: impl FnMut(&mut [i16]) + Send + 'static) -> Self {
        Source::Generator(Box::new(f))
    }

    /// Fills `out`; a finished non-looping source yields silence.
    pub fn fill(&mut self, out: &mut [i16]) {
        match self {
            Source::Silence => out.fill(0),
            Source::Generator(f) => f(out),
            Source::Samples { data, pos, looping } => {
                let mut written = 0;
                while written < out.len() {
                    if *pos >= data.len() {
                        if *looping && !data.is_empty() {
                            *pos = 0;
                        } else {
                            out[written..].fill(0);
                            return;
                        }
                    }
                    let n = (out.len() - written).min(data.len() - *pos);
                    out[written..written + n].copy_from_slice(&data[*pos..*pos + n]);
                    written += n;
                    *pos += n;
                }
            }
        }
    }

    /// True for a non-looping sample source that has played to its end.
    pub fn is_finished(&self) -> bool {
        matches!(self, Source::Samples { data, pos, looping: false } if *pos >= data.len())
    }
}

/// How the virtual device's clock runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// Threads move `tick_ms` of audio per tick in real time (10 or 20 ms are typical).
    Realtime { tick_ms: u32 },
    /// Audio moves only when [`VirtualDevice::tick`] is called.
    Manual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtualConfig {
    pub pacing: Pacing,
    /// Playback samples kept in memory (preallocated); later audio is counted, not stored.
    pub record_capacity: usize,
}

impl Default for VirtualConfig {
    fn default() -> Self {
        Self {
            pacing: Pacing::Realtime { tick_ms: 10 },
            record_capacity: SAMPLE_RATE as usize * 60,
        }
    }
}

/// Largest block moved at once; ticks longer than this are moved in several blocks.
const BLOCK: usize = 960;

struct Recorder {
    samples: Vec<i16>,
    dropped: u64,
}

impl Recorder {
    fn new(capacity: usize) -> Self {
        Self {
            samples: Vec::with_capacity(capacity),
            dropped: 0,
        }
    }

    fn append(&mut self, block: &[i16]) {
        // Never grow: the Vec was sized up front so the playback thread doesn't allocate.
        let room = self.samples.capacity() - self.samples.len();
        let n = block.len().min(room);
        self.samples.extend_from_slice(&block[..n]);
        self.dropped += (block.len() - n) as u64;
    }
}

struct CaptureCore {
    source: Source,
    sink: CaptureSink,
    block: [i16; BLOCK],
}

impl CaptureCore {
    fn tick(&mut self, samples: usize) {
        let mut left = samples;
        while left > 0 {
            let n = left.min(BLOCK);
            self.source.fill(&mut self.block[..n]);
            self.sink.push(&self.block[..n]);
            left -= n;
        }
    }
}

struct PlaybackCore {
    source: PlaybackSource,
    recorder: Recorder,
    block: [i16; BLOCK],
}

impl PlaybackCore {
    fn tick(&mut self, samples: usize) {
        let mut left = samples;
        while left > 0 {
            let n = left.min(BLOCK);
            self.source.pull(&mut self.block[..n]);
            self.recorder.append(&self.block[..n]);
            left -= n;
        }
    }
}

/// A virtual microphone and speaker. See the module docs.
pub struct VirtualDevice {
    config: VirtualConfig,
    source: Option<Source>,
    epoch: Option<Instant>,
    manual_capture: Option<CaptureCore>,
    manual_playback: Option<PlaybackCore>,
    /// Recordings handed back by real-time playback threads when they stop.
    finished: Arc<Mutex<Recorder>>,
}

impl std::fmt::Debug for VirtualDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualDevice")
            .field("config", &self.config)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl VirtualDevice {
    pub fn new(config: VirtualConfig, source: Source) -> Self {
        Self {
            config,
            source: Some(source),
            epoch: None,
            manual_capture: None,
            manual_playback: None,
            finished: Arc::new(Mutex::new(Recorder::new(0))),
        }
    }

    /// A manually stepped device: the usual choice for unit tests.
    pub fn manual(source: Source) -> Self {
        Self::new(
            VirtualConfig {
                pacing: Pacing::Manual,
                ..VirtualConfig::default()
            },
            source,
        )
    }

    /// Source for the next `open_capture` (the current one stays with a running stream).
    pub fn set_source(&mut self, source: Source) {
        self.source = Some(source);
    }

    /// Manual pacing: moves `samples` of audio through capture and playback.
    pub fn tick(&mut self, samples: usize) {
        if let Some(c) = &mut self.manual_capture {
            c.tick(samples);
        }
        if let Some(p) = &mut self.manual_playback {
            p.tick(samples);
        }
    }

    /// The audio played so far. With real-time pacing, drop the `PlaybackStream` first: its
    /// thread hands the recording over when it stops.
    pub fn take_recording(&mut self) -> Vec<i16> {
        if let Some(p) = &mut self.manual_playback {
            return std::mem::take(&mut p.recorder.samples);
        }
        let mut finished = self.finished.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut finished.samples)
    }

    /// Played samples that did not fit into the recording capacity.
    pub fn recording_dropped(&self) -> u64 {
        if let Some(p) = &self.manual_playback {
            return p.recorder.dropped;
        }
        self.finished.lock().map(|r| r.dropped).unwrap_or(0)
    }

    fn epoch(&mut self) -> Instant {
        *self.epoch.get_or_insert_with(Instant::now)
    }
}

/// Runs `tick` every `tick_ms` on absolute deadlines until the stop flag is set.
fn spawn_paced<T: Send + 'static>(
    name: &str,
    epoch: Instant,
    tick_ms: u32,
    mut state: T,
    mut tick: impl FnMut(&mut T) + Send + 'static,
    done: impl FnOnce(T) + Send + 'static,
) -> Result<StopGuard, DeviceError> {
    let stop = Arc::new(AtomicBool::new(false));
    let stop_thread = stop.clone();
    let period = Duration::from_millis(u64::from(tick_ms.max(1)));
    let handle: JoinHandle<()> = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            // A sound card's callback thread runs at real-time priority; so does this one.
            crate::rt::raise_current_thread(crate::rt::DEVICE_RT_PRIORITY);
            let now = Instant::now();
            // Align to the shared epoch so capture and playback tick together.
            let mut n = (now.duration_since(epoch).as_nanos() / period.as_nanos()) as u32 + 1;
            while !stop_thread.load(Ordering::Acquire) {
                let deadline = epoch + period * n;
                let now = Instant::now();
                if deadline > now {
                    std::thread::sleep(deadline - now);
                }
                tick(&mut state);
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

impl AudioDevice for VirtualDevice {
    fn open_capture(&mut self, config: StreamConfig) -> Result<CaptureStream, DeviceError> {
        let source = self.source.take().ok_or(DeviceError::AlreadyOpen)?;
        let (sink, stream) = capture_ring(config);
        let core = CaptureCore {
            source,
            sink,
            block: [0; BLOCK],
        };
        match self.config.pacing {
            Pacing::Manual => {
                self.manual_capture = Some(core);
                Ok(stream)
            }
            Pacing::Realtime { tick_ms } => {
                let samples = (SAMPLE_RATE / 1000 * tick_ms) as usize;
                let epoch = self.epoch();
                let guard = spawn_paced(
                    "virtual-capture",
                    epoch,
                    tick_ms,
                    core,
                    move |c| c.tick(samples),
                    |_| {},
                )?;
                Ok(stream.with_guard(guard))
            }
        }
    }

    fn open_playback(&mut self, config: StreamConfig) -> Result<PlaybackStream, DeviceError> {
        let (source, stream) = playback_ring(config);
        let core = PlaybackCore {
            source,
            recorder: Recorder::new(self.config.record_capacity),
            block: [0; BLOCK],
        };
        match self.config.pacing {
            Pacing::Manual => {
                self.manual_playback = Some(core);
                Ok(stream)
            }
            Pacing::Realtime { tick_ms } => {
                let samples = (SAMPLE_RATE / 1000 * tick_ms) as usize;
                let epoch = self.epoch();
                let finished = self.finished.clone();
                let guard = spawn_paced(
                    "virtual-playback",
                    epoch,
                    tick_ms,
                    core,
                    move |p| p.tick(samples),
                    move |p| {
                        let mut f = finished.lock().unwrap_or_else(|e| e.into_inner());
                        *f = p.recorder;
                    },
                )?;
                Ok(stream.with_guard(guard))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::sine;
    use crate::FRAME_SAMPLES;

    #[test]
    fn manual_capture_plays_samples_then_silence() {
        let data = sine(440.0, 0.5, 1_500);
        let mut dev = VirtualDevice::manual(Source::samples(data.clone(), false));
        let mut cap = dev.open_capture(StreamConfig::default()).unwrap();
        assert!(matches!(
            dev.open_capture(StreamConfig::default()),
            Err(DeviceError::AlreadyOpen)
        ));
        let mut frame = [0i16; FRAME_SAMPLES];
        assert!(!cap.read_frame(&mut frame));
        dev.tick(FRAME_SAMPLES * 2);
        assert!(cap.read_frame(&mut frame));
        assert_eq!(&frame[..], &data[..FRAME_SAMPLES]);
        assert!(cap.read_frame(&mut frame));
        assert_eq!(&frame[..540], &data[FRAME_SAMPLES..]);
        assert!(frame[540..].iter().all(|&s| s == 0));
    }

    #[test]
    fn looping_source_wraps() {
        let mut src = Source::samples(vec![1i16, 2, 3], true);
        let mut out = [0i16; 7];
        src.fill(&mut out);
        assert_eq!(out, [1, 2, 3, 1, 2, 3, 1]);
        assert!(!src.is_finished());
        let mut once = Source::samples(vec![1i16, 2], false);
        once.fill(&mut out);
        assert_eq!(out, [1, 2, 0, 0, 0, 0, 0]);
        assert!(once.is_finished());
        let mut silent = Source::Silence;
        silent.fill(&mut out);
        assert_eq!(out, [0; 7]);
        let mut tone = Source::sine(1_000.0, 0.5);
        let mut buf = [0i16; 48];
        tone.fill(&mut buf);
        assert!(buf.iter().any(|&s| s > 16_000));
    }

    #[test]
    fn manual_playback_is_recorded() {
        let mut dev = VirtualDevice::manual(Source::Silence);
        let mut play = dev.open_playback(StreamConfig::default()).unwrap();
        let frame = sine(300.0, 0.2, FRAME_SAMPLES);
        assert!(play.write_frame(&frame));
        dev.tick(FRAME_SAMPLES + 100);
        let rec = dev.take_recording();
        assert_eq!(rec.len(), FRAME_SAMPLES + 100);
        assert_eq!(&rec[..FRAME_SAMPLES], &frame[..]);
        assert_eq!(play.underruns(), 100);
        assert_eq!(dev.recording_dropped(), 0);
    }

    #[test]
    fn recording_capacity_is_bounded() {
        let mut dev = VirtualDevice::new(
            VirtualConfig {
                pacing: Pacing::Manual,
                record_capacity: 1_000,
            },
            Source::Silence,
        );
        let _play = dev.open_playback(StreamConfig::default()).unwrap();
        dev.tick(3_000);
        assert_eq!(dev.recording_dropped(), 2_000);
        assert_eq!(dev.take_recording().len(), 1_000);
    }

    #[test]
    fn wav_source_and_recording_to_wav() {
        let dir = std::env::temp_dir().join(format!("ruang-media-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("in.wav");
        let data = sine(440.0, 0.3, 4_800);
        crate::wav::write_wav(&path, &data).unwrap();
        let mut dev = VirtualDevice::manual(Source::wav(&path, true).unwrap());
        let mut cap = dev.open_capture(StreamConfig::default()).unwrap();
        let mut play = dev.open_playback(StreamConfig::default()).unwrap();
        let mut frame = [0i16; FRAME_SAMPLES];
        for _ in 0..8 {
            dev.tick(FRAME_SAMPLES);
            assert!(cap.read_frame(&mut frame));
            assert!(play.write_frame(&frame));
        }
        dev.tick(FRAME_SAMPLES);
        let rec = dev.take_recording();
        // Loopback through the rings delays by exactly one tick.
        assert_eq!(rec.len(), FRAME_SAMPLES * 9);
        assert!(rec[..FRAME_SAMPLES].iter().all(|&s| s == 0));
        assert!(rec[FRAME_SAMPLES..FRAME_SAMPLES + 4_800] == data[..]);
        assert!(rec[FRAME_SAMPLES + 4_800..] == data[..2_880]);
        let out = dir.join("out.wav");
        crate::wav::write_wav(&out, &rec).unwrap();
        assert_eq!(crate::wav::read_wav(&out).unwrap(), rec);
        assert!(Source::wav(dir.join("missing.wav"), false).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn realtime_pacing_moves_audio_through_threads() {
        let mut dev = VirtualDevice::new(
            VirtualConfig {
                pacing: Pacing::Realtime { tick_ms: 10 },
                record_capacity: 48_000 * 10,
            },
            Source::sine(200.0, 0.3),
        );
        let mut cap = dev.open_capture(StreamConfig::default()).unwrap();
        let mut play = dev.open_playback(StreamConfig::default()).unwrap();
        let mut frame = [0i16; FRAME_SAMPLES];
        let mut frames = 0;
        // Loop back 10 frames; the bound only keeps a broken thread from hanging the test.
        let give_up = Instant::now() + Duration::from_secs(30);
        while frames < 10 && Instant::now() < give_up {
            if cap.read_frame(&mut frame) {
                assert!(play.write_frame(&frame));
                frames += 1;
            } else {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        assert_eq!(frames, 10);
        while play.queued() > 0 && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(2));
        }
        drop(cap);
        drop(play);
        let rec = dev.take_recording();
        assert!(rec.len() >= 10 * FRAME_SAMPLES);
        let loud = rec.iter().filter(|s| s.abs() > 5_000).count();
        assert!(loud > FRAME_SAMPLES * 3, "{loud} loud samples");
    }
}
