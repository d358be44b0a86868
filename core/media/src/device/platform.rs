//! What the platform audio streams are asked for, as plain data: the Oboe backend
//! (`oboe_backend.rs`, Android only) builds its streams from these, and the host tests check
//! them (the Oboe crate itself only builds with the Android NDK).
//!
//! - Playback: `Usage::Media`, shared, low latency — listeners hear the room as media (no
//!   call mode, no earpiece, normal media volume and routing, Bluetooth A2DP included).
//! - Capture (only a speaker on stage opens it): the `VoiceCommunication` input preset, so
//!   the platform's acoustic echo canceller, noise suppressor and automatic gain control run
//!   on the microphone (Android applies them for this preset / `MODE_IN_COMMUNICATION`), and
//!   a Bluetooth headset's microphone is used once the app routes communication to it
//!   (`Compat.routeCommunication`: `setCommunicationDevice` on API 31+, SCO before).

/// Oboe `Usage` values we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformUsage {
    Media,
}

/// Oboe `InputPreset` values we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformInputPreset {
    /// AEC + NS + AGC by the platform, tuned for calls.
    VoiceCommunication,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformStream {
    pub input: bool,
    pub usage: Option<PlatformUsage>,
    pub input_preset: Option<PlatformInputPreset>,
    pub low_latency: bool,
    /// Shared (not exclusive) mode: other apps' sounds and the system's effects still work.
    pub shared: bool,
    pub sample_rate: u32,
    pub channels: u16,
}

/// The listener's (and speaker's) output stream.
pub const PLAYBACK: PlatformStream = PlatformStream {
    input: false,
    usage: Some(PlatformUsage::Media),
    input_preset: None,
    low_latency: true,
    shared: true,
    sample_rate: crate::SAMPLE_RATE,
    channels: 1,
};

/// The speaker's microphone stream.
pub const CAPTURE: PlatformStream = PlatformStream {
    input: true,
    usage: None,
    input_preset: Some(PlatformInputPreset::VoiceCommunication),
    low_latency: true,
    shared: true,
    sample_rate: crate::SAMPLE_RATE,
    channels: 1,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microphone_uses_the_voice_communication_preset_and_output_plays_as_media() {
        const { assert!(CAPTURE.input) };
        assert_eq!(
            CAPTURE.input_preset,
            Some(PlatformInputPreset::VoiceCommunication),
            "the platform's echo canceller, noise suppressor and AGC run only with this preset"
        );
        const { assert!(!PLAYBACK.input) };
        assert_eq!(PLAYBACK.usage, Some(PlatformUsage::Media));
        assert_eq!(PLAYBACK.input_preset, None);
        for s in [CAPTURE, PLAYBACK] {
            assert!(s.low_latency && s.shared);
            assert_eq!((s.sample_rate, s.channels), (48_000, 1));
        }
    }

    /// The Oboe backend builds its streams from these constants, not from literals of its own.
    #[test]
    fn the_oboe_backend_uses_these_settings() {
        let src = include_str!("oboe_backend.rs");
        assert!(
            src.contains("platform::CAPTURE"),
            "capture built from CAPTURE"
        );
        assert!(
            src.contains("platform::PLAYBACK"),
            "playback built from PLAYBACK"
        );
        assert!(
            !src.contains("InputPreset::VoiceCommunication)\n"),
            "no preset literal outside the mapping"
        );
        assert!(src.contains(
            "PlatformInputPreset::VoiceCommunication => InputPreset::VoiceCommunication"
        ));
        assert!(src.contains("PlatformUsage::Media => Usage::Media"));
    }
}
