//! End-to-end encrypted rooms (docs/protocol.md §15): this device's identity and the room's
//! encryption status. The work is `ruang_client::e2ee::KeyAgent`'s; this is its thin surface.

use crate::error::RuangError;
use ruang_client::e2ee::{E2eePhase as CorePhase, E2eeStatus};

/// Where this device is in an encrypted room's group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum E2eePhase {
    /// A plain room: nothing to show.
    NotEncrypted,
    /// Encrypted; the device is getting ready.
    Starting,
    /// Asked to be added; waiting for a moderator's device to add this one.
    Waiting,
    /// In the group: audio is keyed.
    Member,
    /// Taken out of the group (removed from the room).
    Removed,
    /// The room session ended.
    Ended,
}

impl From<&CorePhase> for E2eePhase {
    fn from(p: &CorePhase) -> Self {
        match p {
            CorePhase::Starting => E2eePhase::Starting,
            CorePhase::NotEncrypted => E2eePhase::NotEncrypted,
            CorePhase::Waiting => E2eePhase::Waiting,
            CorePhase::Member => E2eePhase::Member,
            CorePhase::Removed => E2eePhase::Removed,
            CorePhase::Ended => E2eePhase::Ended,
        }
    }
}

/// What the room screen shows about encryption.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct E2eeInfo {
    /// The room is end-to-end encrypted.
    pub encrypted: bool,
    pub phase: E2eePhase,
    /// The group epoch this device is at (members only).
    pub epoch: Option<u64>,
    /// Twelve digits in three groups ("0123 4567 8901"): the same epoch gives the same code on
    /// every member's device. Members only.
    pub safety_code: Option<String>,
    /// Devices in the group.
    pub members: u32,
    /// This device's identity fingerprint (encrypted rooms).
    pub fingerprint: Option<String>,
    /// The last problem the device met (diagnostics; not for the main screen).
    pub last_error: Option<String>,
}

impl E2eeInfo {
    pub(crate) fn plain() -> Self {
        E2eeInfo {
            encrypted: false,
            phase: E2eePhase::NotEncrypted,
            epoch: None,
            safety_code: None,
            members: 0,
            fingerprint: None,
            last_error: None,
        }
    }

    pub(crate) fn from_status(s: &E2eeStatus) -> Self {
        E2eeInfo {
            encrypted: s.phase != CorePhase::NotEncrypted,
            phase: (&s.phase).into(),
            epoch: s.epoch,
            safety_code: s.safety_code.clone(),
            members: s.members,
            fingerprint: Some(s.fingerprint.clone()),
            last_error: s.last_error.clone(),
        }
    }
}

/// Receives a room's encryption status: the current value first, then every change. Called
/// from a core thread.
#[uniffi::export(with_foreign)]
pub trait E2eeListener: Send + Sync {
    fn on_e2ee(&self, info: E2eeInfo);
}

/// A new device identity (an Ed25519 key pair, serialized). Secret: the app keeps it
/// encrypted (Android: with a Keystore key) and hands it back with
/// `RuangClient.setDeviceIdentity` on every start.
#[uniffi::export]
pub fn new_device_identity() -> Result<Vec<u8>, RuangError> {
    let device = ruang_e2ee::Device::new("new").map_err(identity_error)?;
    device.identity_secret().map_err(identity_error)
}

/// The fingerprint of a device identity (five groups of four hex digits), as other members'
/// devices see it.
#[uniffi::export]
pub fn device_fingerprint(identity: Vec<u8>) -> Result<String, RuangError> {
    Ok(restore("fingerprint", &identity)?.fingerprint())
}

pub(crate) fn restore(user: &str, identity: &[u8]) -> Result<ruang_e2ee::Device, RuangError> {
    ruang_e2ee::Device::restore(user, identity).map_err(identity_error)
}

fn identity_error(e: ruang_e2ee::E2eeError) -> RuangError {
    RuangError::InvalidInput {
        code: "device_identity".into(),
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_restores_with_the_same_fingerprint() {
        let secret = new_device_identity().unwrap();
        let a = device_fingerprint(secret.clone()).unwrap();
        assert_eq!(a, device_fingerprint(secret.clone()).unwrap());
        assert_eq!(a, restore("u1", &secret).unwrap().fingerprint());
        assert_eq!(a.split(' ').count(), 5, "{a}");
        let other = device_fingerprint(new_device_identity().unwrap()).unwrap();
        assert_ne!(a, other);
        assert!(matches!(
            device_fingerprint(b"not a key".to_vec()),
            Err(RuangError::InvalidInput { code, .. }) if code == "device_identity"
        ));
    }

    #[test]
    fn status_maps_to_info() {
        let s = E2eeStatus {
            phase: CorePhase::Member,
            epoch: Some(3),
            safety_code: Some("0123 4567 8901".into()),
            members: 2,
            fingerprint: "abcd".into(),
            commits: 0,
            last_error: None,
        };
        let i = E2eeInfo::from_status(&s);
        assert!(i.encrypted);
        assert_eq!(i.phase, E2eePhase::Member);
        assert_eq!(i.epoch, Some(3));
        assert_eq!(i.fingerprint.as_deref(), Some("abcd"));
        let plain = E2eeInfo::from_status(&E2eeStatus {
            phase: CorePhase::NotEncrypted,
            ..s
        });
        assert!(!plain.encrypted);
    }
}
