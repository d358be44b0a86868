//! The UniFFI surface of the Ruang core, for Kotlin (Android and the JVM).
//!
//! Thin wrappers over the tested Rust in `ruang-client` (the matrix-rust-sdk
//! `bindings/matrix-sdk-ffi` style): blocking calls that Kotlin makes from a background
//! thread, listeners that get the current value first and then every change, and one small
//! error enum. No PCM crosses this boundary.

mod chat;
mod client;
mod e2ee;
mod error;
mod room;
mod runtime;
mod types;

pub use chat::{
    reaction_choices, ChatLink, ChatListener, ChatMessageView, ChatMode, ChatPage, ChatViewState,
    ReactionBurstView,
};
pub use client::{ClientConfig, HallwayListener, HallwayWatch, RuangClient};
pub use e2ee::{device_fingerprint, new_device_identity, E2eeInfo, E2eeListener, E2eePhase};
pub use error::RuangError;
pub use room::{AudioConfig, AudioStats, Room, RoomListener};
pub use types::*;

uniffi::setup_scaffolding!();
