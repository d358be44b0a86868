//! End-to-end encrypted rooms, without I/O.
//!
//! - [`Device`]: one device's identity (an Ed25519 signature key in an MLS basic credential
//!   naming the member) and the key packages (X25519 HPKE init keys) others add it with.
//! - [`RoomGroup`]: the room's MLS group (RFC 9420) as this device sees it. Commits are
//!   created here, relayed by the server (which cannot read them) and merged by everyone.
//! - [`MediaCrypto`]: SFrame (RFC 9605) over Opus frames, keyed from the group's epochs as
//!   RFC 9605 §5.2 describes: one exported base key per epoch, one key id per sender.
//! - [`RekeyPolicy`]: when to commit, so a big audience does not rekey on every leave.
//!
//! The server sees key packages, commits and welcomes as opaque bytes; none of them lets it
//! derive a media key.

pub mod cost;
mod device;
mod error;
mod group;
mod guest;
mod media;
mod policy;

pub use device::Device;
pub use error::E2eeError;
pub use group::{GroupMember, Handshake, Processed, RoomGroup};
pub use guest::{new_guest_key, open_guest_envelope, seal_for_guests, GUEST_KEY_LEN};
pub use media::{EpochKey, MediaCrypto, SENDER_INDEX_BITS};
pub use policy::{Change, RekeyPolicy};

/// The MLS cipher suite of every room: X25519 key agreement, AES-128-GCM, SHA-256, Ed25519
/// signatures (the algorithms the Android Keystore and browsers have).
pub const MLS_CIPHERSUITE: openmls::prelude::Ciphersuite =
    openmls::prelude::Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// The SFrame cipher suite: AES-128-GCM with a 128-bit tag, HKDF-SHA256 (WebCrypto has both,
/// so a browser can decrypt in an encoded transform).
pub const SFRAME_SUITE: sframe::CipherSuite = sframe::CipherSuite::AesGcm128Sha256;
