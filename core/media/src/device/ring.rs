//! The two ends of a device stream: the real-time side (`CaptureSink`, `PlaybackSource`) used
//! inside device callbacks, and the engine side (`CaptureStream`, `PlaybackStream`).

use super::StreamConfig;
use rtrb::{Consumer, Producer, RingBuffer};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Runs a stop action (stop the device thread, close the stream) when dropped.
pub struct StopGuard(Option<Box<dyn FnOnce() + Send>>);

impl StopGuard {
    pub fn new(stop: impl FnOnce() + Send + 'static) -> Self {
        Self(Some(Box::new(stop)))
    }

    /// For devices driven by hand: nothing to stop.
    pub fn none() -> Self {
        Self(None)
    }
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        if let Some(stop) = self.0.take() {
            stop();
        }
    }
}

impl std::fmt::Debug for StopGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StopGuard")
    }
}

/// Creates a capture ring: the sink goes to the device callback, the stream to the engine
/// (attach the stop guard with [`CaptureStream::with_guard`]).
pub fn capture_ring(config: StreamConfig) -> (CaptureSink, CaptureStream) {
    let (producer, consumer) = RingBuffer::new(config.ring_samples());
    let overruns = Arc::new(AtomicU64::new(0));
    (
        CaptureSink {
            producer,
            overruns: overruns.clone(),
        },
        CaptureStream {
            consumer,
            overruns,
            _guard: StopGuard::none(),
        },
    )
}

/// Creates a playback ring: the source goes to the device callback, the stream to the engine.
pub fn playback_ring(config: StreamConfig) -> (PlaybackSource, PlaybackStream) {
    let (producer, consumer) = RingBuffer::new(config.ring_samples());
    let underruns = Arc::new(AtomicU64::new(0));
    (
        PlaybackSource {
            consumer,
            underruns: underruns.clone(),
        },
        PlaybackStream {
            producer,
            underruns,
            _guard: StopGuard::none(),
        },
    )
}

/// Device side of capture: callbacks push samples in. Never blocks or allocates.
pub struct CaptureSink {
    producer: Producer<i16>,
    overruns: Arc<AtomicU64>,
}

impl CaptureSink {
    /// Pushes mono samples; what doesn't fit (engine not keeping up) is dropped and counted.
    pub fn push(&mut self, samples: &[i16]) {
        self.push_iter(samples.len(), samples.iter().copied());
    }

    /// Pushes interleaved float frames, downmixed to mono.
    pub fn push_f32_interleaved(&mut self, samples: &[f32], channels: usize) {
        let channels = channels.max(1);
        let frames = samples.len() / channels;
        self.push_iter(
            frames,
            samples.chunks_exact(channels).map(|c| {
                let v = c.iter().sum::<f32>() / channels as f32;
                (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16
            }),
        );
    }

    /// Pushes interleaved 16-bit frames, downmixed to mono.
    pub fn push_i16_interleaved(&mut self, samples: &[i16], channels: usize) {
        let channels = channels.max(1);
        if channels == 1 {
            return self.push(samples);
        }
        let frames = samples.len() / channels;
        self.push_iter(
            frames,
            samples
                .chunks_exact(channels)
                .map(|c| (c.iter().map(|&s| i32::from(s)).sum::<i32>() / channels as i32) as i16),
        );
    }

    fn push_iter(&mut self, len: usize, samples: impl Iterator<Item = i16>) {
        let n = len.min(self.producer.slots());
        if n < len {
            self.overruns.fetch_add((len - n) as u64, Ordering::Relaxed);
        }
        if n == 0 {
            return;
        }
        if let Ok(chunk) = self.producer.write_chunk_uninit(n) {
            chunk.fill_from_iter(samples);
        }
    }
}

/// Engine side of capture.
pub struct CaptureStream {
    consumer: Consumer<i16>,
    overruns: Arc<AtomicU64>,
    _guard: StopGuard,
}

impl CaptureStream {
    pub fn with_guard(mut self, guard: StopGuard) -> Self {
        self._guard = guard;
        self
    }

    /// Samples waiting to be read.
    pub fn available(&self) -> usize {
        self.consumer.slots()
    }

    /// Reads one whole frame (`frame.len()` samples) if that many are available.
    pub fn read_frame(&mut self, frame: &mut [i16]) -> bool {
        let Ok(chunk) = self.consumer.read_chunk(frame.len()) else {
            return false;
        };
        let (a, b) = chunk.as_slices();
        frame[..a.len()].copy_from_slice(a);
        frame[a.len()..].copy_from_slice(b);
        chunk.commit_all();
        true
    }

    /// Samples the device dropped because the ring was full.
    pub fn overruns(&self) -> u64 {
        self.overruns.load(Ordering::Relaxed)
    }

    /// True once the device side has gone away (stream closed or device thread ended).
    pub fn is_closed(&self) -> bool {
        self.consumer.is_abandoned()
    }
}

impl std::fmt::Debug for CaptureStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureStream")
            .field("available", &self.available())
            .field("overruns", &self.overruns())
            .finish()
    }
}

/// Device side of playback: callbacks pull samples out. Never blocks or allocates.
pub struct PlaybackSource {
    consumer: Consumer<i16>,
    underruns: Arc<AtomicU64>,
}

impl PlaybackSource {
    /// Fills `out` with mono samples; missing samples (engine late) become silence, counted.
    pub fn pull(&mut self, out: &mut [i16]) {
        let n = out.len().min(self.consumer.slots());
        if n > 0 {
            if let Ok(chunk) = self.consumer.read_chunk(n) {
                let (a, b) = chunk.as_slices();
                out[..a.len()].copy_from_slice(a);
                out[a.len()..n].copy_from_slice(b);
                chunk.commit_all();
            }
        }
        if n < out.len() {
            out[n..].fill(0);
            self.underruns
                .fetch_add((out.len() - n) as u64, Ordering::Relaxed);
        }
    }

    /// Fills interleaved float frames, duplicating the mono signal to every channel.
    pub fn pull_f32_interleaved(&mut self, out: &mut [f32], channels: usize) {
        self.pull_interleaved(out, channels, |s| f32::from(s) / 32768.0);
    }

    /// Fills interleaved 16-bit frames, duplicating the mono signal to every channel.
    pub fn pull_i16_interleaved(&mut self, out: &mut [i16], channels: usize) {
        if channels <= 1 {
            return self.pull(out);
        }
        self.pull_interleaved(out, channels, |s| s);
    }

    /// Missing frames (engine late) become silence, counted. `T::default()` is silence.
    fn pull_interleaved<T: Copy + Default>(
        &mut self,
        out: &mut [T],
        channels: usize,
        convert: impl Fn(i16) -> T,
    ) {
        let channels = channels.max(1);
        let frames = out.len() / channels;
        let available = frames.min(self.consumer.slots());
        let mut written = 0;
        if available > 0 {
            if let Ok(chunk) = self.consumer.read_chunk(available) {
                let (a, b) = chunk.as_slices();
                for (frame, &s) in out.chunks_exact_mut(channels).zip(a.iter().chain(b)) {
                    frame.fill(convert(s));
                }
                chunk.commit_all();
                written = available;
            }
        }
        out[written * channels..].fill(T::default());
        if written < frames {
            self.underruns
                .fetch_add((frames - written) as u64, Ordering::Relaxed);
        }
    }
}

/// Engine side of playback.
pub struct PlaybackStream {
    producer: Producer<i16>,
    underruns: Arc<AtomicU64>,
    _guard: StopGuard,
}

impl PlaybackStream {
    pub fn with_guard(mut self, guard: StopGuard) -> Self {
        self._guard = guard;
        self
    }

    /// Free space in samples.
    pub fn free(&self) -> usize {
        self.producer.slots()
    }

    /// Samples queued for the device (the playback-side buffering delay).
    pub fn queued(&self) -> usize {
        self.producer.buffer().capacity() - self.producer.slots()
    }

    /// Queues a whole frame; returns false (and queues nothing) if it doesn't fit.
    pub fn write_frame(&mut self, frame: &[i16]) -> bool {
        let Ok(mut chunk) = self.producer.write_chunk(frame.len()) else {
            return false;
        };
        let (a, b) = chunk.as_mut_slices();
        let split = a.len();
        a.copy_from_slice(&frame[..split]);
        b.copy_from_slice(&frame[split..]);
        chunk.commit_all();
        true
    }

    /// Samples of silence the device had to play because nothing was queued.
    pub fn underruns(&self) -> u64 {
        self.underruns.load(Ordering::Relaxed)
    }

    pub fn is_closed(&self) -> bool {
        self.producer.is_abandoned()
    }
}

impl std::fmt::Debug for PlaybackStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaybackStream")
            .field("queued", &self.queued())
            .field("underruns", &self.underruns())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::alloc_count;

    #[test]
    fn capture_ring_frames_and_overruns() {
        let (mut sink, mut stream) = capture_ring(StreamConfig { ring_frames: 2 });
        let mut frame = [0i16; 960];
        assert!(!stream.read_frame(&mut frame));
        let data: Vec<i16> = (0..1500).map(|i| i as i16).collect();
        sink.push(&data);
        assert_eq!(stream.available(), 1500);
        assert!(stream.read_frame(&mut frame));
        assert_eq!(frame[959], 959);
        assert!(!stream.read_frame(&mut frame));
        // 540 left + 1500 pushed into 1920 slots: 120 dropped.
        sink.push(&data);
        assert_eq!(stream.overruns(), 120);
        assert!(stream.read_frame(&mut frame));
        assert_eq!(frame[0], 960);
        assert_eq!(frame[540], 0);
        assert!(!stream.is_closed());
        drop(sink);
        assert!(stream.is_closed());
    }

    #[test]
    fn downmix_on_push() {
        let (mut sink, mut stream) = capture_ring(StreamConfig { ring_frames: 2 });
        let stereo_f32: Vec<f32> = (0..960).flat_map(|_| [0.5f32, 0.0]).collect();
        sink.push_f32_interleaved(&stereo_f32, 2);
        let mut frame = [0i16; 960];
        assert!(stream.read_frame(&mut frame));
        assert!(frame.iter().all(|&s| s == 8192));
        let stereo_i16: Vec<i16> = (0..960).flat_map(|_| [100i16, 300]).collect();
        sink.push_i16_interleaved(&stereo_i16, 2);
        assert!(stream.read_frame(&mut frame));
        assert!(frame.iter().all(|&s| s == 200));
    }

    #[test]
    fn playback_ring_underruns_become_silence() {
        let (mut source, mut stream) = playback_ring(StreamConfig { ring_frames: 2 });
        let frame: Vec<i16> = (1..=960).map(|i| i as i16).collect();
        assert!(stream.write_frame(&frame));
        assert!(stream.write_frame(&frame));
        assert!(!stream.write_frame(&frame));
        assert_eq!(stream.queued(), 1920);
        let mut out = vec![7i16; 2000];
        source.pull(&mut out);
        assert_eq!(out[0], 1);
        assert_eq!(out[1919], 960);
        assert!(out[1920..].iter().all(|&s| s == 0));
        assert_eq!(stream.underruns(), 80);
        assert!(stream.write_frame(&frame));
        let mut stereo = vec![1.0f32; 4];
        source.pull_f32_interleaved(&mut stereo, 2);
        assert_eq!(
            stereo,
            vec![1.0 / 32768.0, 1.0 / 32768.0, 2.0 / 32768.0, 2.0 / 32768.0]
        );
        let mut stereo16 = vec![0i16; 6];
        source.pull_i16_interleaved(&mut stereo16, 3);
        assert_eq!(stereo16, vec![3, 3, 3, 4, 4, 4]);
    }

    #[test]
    fn device_side_does_not_allocate() {
        let (mut sink, mut cap) = capture_ring(StreamConfig::default());
        let (mut source, mut play) = playback_ring(StreamConfig::default());
        let input = [5i16; 480];
        let stereo = [0.25f32; 960];
        let mut frame = [0i16; 960];
        let mut out = [0i16; 480];
        let mut out_f = [0f32; 960];
        let before = alloc_count::allocations();
        for _ in 0..100 {
            sink.push(&input);
            sink.push_f32_interleaved(&stereo, 2);
            cap.read_frame(&mut frame);
            play.write_frame(&frame);
            source.pull(&mut out);
            source.pull_f32_interleaved(&mut out_f, 2);
        }
        assert_eq!(alloc_count::allocations(), before);
    }
}
