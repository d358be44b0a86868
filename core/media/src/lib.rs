//! Ruang audio media engine.
//!
//! Everything here is sans-IO and deterministic except the device backends: callers feed
//! packets and PCM frames in with explicit `now_ms` timestamps and pull results out, so the
//! same code runs in unit tests, bots, benchmarks and the real client.
//!
//! Audio format everywhere: 48 kHz, mono, 20 ms frames of 960 samples.

pub mod analysis;
pub mod codec;
pub mod device;
pub mod engine;
pub mod jitter;
pub mod level;
pub mod mixer;
pub mod red;
pub mod rt;
pub mod signal;
pub mod wav;

#[cfg(test)]
pub(crate) mod testutil;

pub use codec::{CodecError, OpusDecoder, OpusEncoder};
pub use engine::{
    OutgoingPacket, PlayoutTarget, ReceiveConfig, ReceivePipeline, SendConfig, SendPipeline,
    SpeakerId, SpeakerState, MAX_ADJUSTED_SAMPLES,
};
pub use jitter::{JitterBuffer, JitterConfig, JitterStats, Playout, RtpPacket};
pub use level::{AudioLevel, LevelMeter, VoiceActivity};
pub use mixer::Mixer;

/// Sample rate of every PCM buffer in this crate.
pub const SAMPLE_RATE: u32 = 48_000;
/// Duration of one frame (one Opus packet).
pub const FRAME_MS: u32 = 20;
/// Samples per mono frame: 20 ms at 48 kHz.
pub const FRAME_SAMPLES: usize = 960;
/// RTP timestamp increment per frame (the Opus RTP clock is always 48 kHz).
pub const FRAME_TS: u32 = 960;
