//! Audio devices. A device runs its own real-time thread or callback and talks to the engine
//! only through lock-free single-producer/single-consumer rings (`rtrb`), so the device side
//! never allocates, locks, blocks or logs.
//!
//! - [`virtual_device`]: WAV/programmatic capture and in-memory playback, paced in real time
//!   by a thread or stepped by hand for deterministic tests.
//! - `cpal_backend` (feature `cpal`): desktop audio.
//! - `oboe_backend` (Android only): low-latency Oboe streams.

pub mod platform;
mod ring;
pub mod virtual_device;

#[cfg(feature = "cpal")]
pub mod cpal_backend;

#[cfg(target_os = "android")]
pub mod oboe_backend;

pub use ring::{
    capture_ring, playback_ring, CaptureSink, CaptureStream, PlaybackSource, PlaybackStream,
    StopGuard,
};
pub use virtual_device::{Pacing, Source, VirtualConfig, VirtualDevice};

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("no audio device available: {0}")]
    NoDevice(String),
    #[error("device does not support 48 kHz 16-bit/float audio: {0}")]
    Unsupported(String),
    #[error("audio backend: {0}")]
    Backend(String),
    #[error("stream already open")]
    AlreadyOpen,
    #[error(transparent)]
    Wav(#[from] crate::wav::WavError),
}

/// Engine-side stream settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamConfig {
    /// Ring capacity in 20 ms frames. Bounds the latency a stalled engine can build up.
    pub ring_frames: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self { ring_frames: 10 }
    }
}

impl StreamConfig {
    pub fn ring_samples(&self) -> usize {
        self.ring_frames.max(2) * crate::FRAME_SAMPLES
    }
}

/// A capture source plus playback sink. All audio is 48 kHz mono i16; backends convert.
pub trait AudioDevice {
    /// Starts capturing; the returned stream yields 20 ms frames. Dropping it stops capture.
    fn open_capture(&mut self, config: StreamConfig) -> Result<CaptureStream, DeviceError>;
    /// Starts playback; the returned stream accepts 20 ms frames. Dropping it stops playback.
    fn open_playback(&mut self, config: StreamConfig) -> Result<PlaybackStream, DeviceError>;
}
