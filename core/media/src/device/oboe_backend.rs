//! Android audio through Oboe (AAudio / OpenSL ES).
//!
//! Listeners get a shared low-latency output stream with `Usage::Media`: no call mode, no
//! earpiece routing. Only a speaker on stage opens the input, with the `VoiceCommunication`
//! preset so the platform's echo canceller runs. When a stream dies (headphones unplugged,
//! route change) Oboe calls `on_error_after_close` on its own thread; the callback hands its
//! ring end to a keeper thread, which opens a fresh stream with it.

use super::platform::{self, PlatformInputPreset, PlatformStream, PlatformUsage};
use super::{
    capture_ring, playback_ring, AudioDevice, CaptureSink, CaptureStream, DeviceError,
    PlaybackSource, PlaybackStream, StopGuard, StreamConfig,
};
use oboe::{
    AudioInputCallback, AudioInputStreamSafe, AudioOutputCallback, AudioOutputStreamSafe,
    AudioStream, AudioStreamBuilder, DataCallbackResult, InputPreset, Mono, PerformanceMode,
    SharingMode, Usage,
};
use std::sync::mpsc;

fn builder(s: PlatformStream) -> AudioStreamBuilder<oboe::Output, Mono, i16> {
    let mut b = AudioStreamBuilder::default()
        .set_performance_mode(if s.low_latency {
            PerformanceMode::LowLatency
        } else {
            PerformanceMode::None
        })
        .set_sharing_mode(if s.shared {
            SharingMode::Shared
        } else {
            SharingMode::Exclusive
        })
        .set_sample_rate(s.sample_rate as i32)
        .set_format::<i16>()
        .set_channel_count::<Mono>();
    if let Some(u) = s.usage {
        b = b.set_usage(match u {
            PlatformUsage::Media => Usage::Media,
        });
    }
    if let Some(p) = s.input_preset {
        b = b.set_input_preset(match p {
            PlatformInputPreset::VoiceCommunication => InputPreset::VoiceCommunication,
        });
    }
    b
}

/// The phone's current audio route.
#[derive(Debug, Default)]
pub struct OboeDevice;

enum Keeper<T> {
    /// (Re)open a stream around this ring end.
    Open(T),
    Stop,
}

struct OutputCallback {
    source: Option<PlaybackSource>,
    keeper: mpsc::Sender<Keeper<PlaybackSource>>,
}

impl AudioOutputCallback for OutputCallback {
    type FrameType = (i16, Mono);

    fn on_audio_ready(
        &mut self,
        _stream: &mut dyn AudioOutputStreamSafe,
        frames: &mut [i16],
    ) -> DataCallbackResult {
        match &mut self.source {
            Some(source) => source.pull(frames),
            None => frames.fill(0),
        }
        DataCallbackResult::Continue
    }

    fn on_error_after_close(
        &mut self,
        _stream: &mut dyn AudioOutputStreamSafe,
        _error: oboe::Error,
    ) {
        if let Some(source) = self.source.take() {
            let _ = self.keeper.send(Keeper::Open(source));
        }
    }
}

struct InputCallback {
    sink: Option<CaptureSink>,
    keeper: mpsc::Sender<Keeper<CaptureSink>>,
}

impl AudioInputCallback for InputCallback {
    type FrameType = (i16, Mono);

    fn on_audio_ready(
        &mut self,
        _stream: &mut dyn AudioInputStreamSafe,
        frames: &[i16],
    ) -> DataCallbackResult {
        if let Some(sink) = &mut self.sink {
            sink.push(frames);
        }
        DataCallbackResult::Continue
    }

    fn on_error_after_close(
        &mut self,
        _stream: &mut dyn AudioInputStreamSafe,
        _error: oboe::Error,
    ) {
        if let Some(sink) = self.sink.take() {
            let _ = self.keeper.send(Keeper::Open(sink));
        }
    }
}

fn backend(e: impl std::fmt::Debug) -> DeviceError {
    DeviceError::Backend(format!("oboe: {e:?}"))
}

/// Keeper thread: owns the current stream (Oboe streams are not `Send`) and reopens it when
/// the error callback hands the ring end back. The first open's result is reported to the
/// caller; later reopen failures leave the stream closed (`is_closed()` on the engine side).
fn keep<T: Send + 'static, S: 'static>(
    name: &str,
    end: T,
    open: impl Fn(T, mpsc::Sender<Keeper<T>>) -> Result<S, DeviceError> + Send + 'static,
) -> Result<StopGuard, DeviceError> {
    let (tx, rx) = mpsc::channel::<Keeper<T>>();
    let (ready_tx, ready_rx) = mpsc::channel();
    let tx_thread = tx.clone();
    let handle = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let mut current = match open(end, tx_thread.clone()) {
                Ok(s) => {
                    let _ = ready_tx.send(Ok(()));
                    Some(s)
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            while let Ok(Keeper::Open(end)) = rx.recv() {
                // The old stream is already closed by Oboe; release it before reopening.
                current.take();
                current = open(end, tx_thread.clone()).ok();
            }
            drop(current);
        })
        .map_err(backend)?;
    ready_rx
        .recv()
        .map_err(|_| DeviceError::Backend(format!("{name} thread died")))??;
    Ok(StopGuard::new(move || {
        let _ = tx.send(Keeper::Stop);
        let _ = handle.join();
    }))
}

impl AudioDevice for OboeDevice {
    fn open_playback(&mut self, config: StreamConfig) -> Result<PlaybackStream, DeviceError> {
        let (source, stream) = playback_ring(config);
        let guard = keep("oboe-output", source, |source, keeper| {
            let mut s = builder(platform::PLAYBACK)
                .set_output()
                .set_callback(OutputCallback {
                    source: Some(source),
                    keeper,
                })
                .open_stream()
                .map_err(backend)?;
            s.start().map_err(backend)?;
            Ok(s)
        })?;
        Ok(stream.with_guard(guard))
    }

    /// Only call this for a speaker on stage: it switches the input to voice communication.
    fn open_capture(&mut self, config: StreamConfig) -> Result<CaptureStream, DeviceError> {
        let (sink, stream) = capture_ring(config);
        let guard = keep("oboe-input", sink, |sink, keeper| {
            let mut s = builder(platform::CAPTURE)
                .set_input()
                .set_callback(InputCallback {
                    sink: Some(sink),
                    keeper,
                })
                .open_stream()
                .map_err(backend)?;
            s.start().map_err(backend)?;
            Ok(s)
        })?;
        Ok(stream.with_guard(guard))
    }
}
