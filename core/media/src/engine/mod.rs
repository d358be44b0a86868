//! Send and receive pipelines: what the client wires between audio devices and the transport.
//!
//! Both are sans-IO: the caller hands in PCM frames / RTP payloads and the current time, and
//! takes packets / mixed PCM out. No threads, no clocks, no allocation per frame.

mod playout;
mod receive;
mod send;

pub use playout::{PlayoutTarget, PLAYOUT_STEP_MS};
pub use receive::{
    best_cut, shorten_frame, PullInfo, ReceiveConfig, ReceiveError, ReceivePipeline, SpeakerId,
    SpeakerState, MAX_ADJUSTED_SAMPLES, QUIET_MEAN_SQUARE, TRIM_MARGIN_MS, TRIM_MS,
};
pub use send::{OutgoingPacket, SendConfig, SendPipeline, SendStats};

#[cfg(test)]
mod tests;
