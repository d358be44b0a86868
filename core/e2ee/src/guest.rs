//! Browser guests of an encrypted room (docs/protocol.md §15.6). A guest is not in the MLS
//! group: it has a **guest key**, 16 random bytes a moderator's device made and put in the
//! room link's fragment (`/r/ROOM?t=TOKEN#k=…`, which browsers never send to the server).
//! For each epoch that device seals the epoch's SFrame base key with the guest key
//! (AES-128-GCM, as WebCrypto opens it) and the server relays the envelope to guests.
//!
//! Whoever holds the link hears the room from then on, like a member; the server, which never
//! sees the fragment, cannot open the envelopes.

use crate::error::{crypto, E2eeError};
use crate::media::EpochKey;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Nonce};
use rand::RngCore;

pub const GUEST_KEY_LEN: usize = 16;
const NONCE_LEN: usize = 12;

/// A fresh guest key.
pub fn new_guest_key() -> [u8; GUEST_KEY_LEN] {
    let mut k = [0u8; GUEST_KEY_LEN];
    rand::thread_rng().fill_bytes(&mut k);
    k
}

/// Binds an envelope to its room and epoch: one cannot be replayed as another.
fn aad(room: &str, epoch: u64) -> Vec<u8> {
    let mut a = b"ruang guest key 1\0".to_vec();
    a.extend_from_slice(room.as_bytes());
    a.push(0);
    a.extend_from_slice(&epoch.to_be_bytes());
    a
}

/// The envelope of `key` for the guests of `room`: a 12-byte nonce, then the sealed base key
/// and the 16-byte tag.
pub fn seal_for_guests(
    key: &EpochKey,
    guest_key: &[u8; GUEST_KEY_LEN],
    room: &str,
) -> Result<Vec<u8>, E2eeError> {
    let cipher = Aes128Gcm::new_from_slice(guest_key).map_err(crypto)?;
    let mut nonce = [0u8; NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut nonce);
    let aad = aad(room, key.epoch);
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: key.base(),
                aad: &aad,
            },
        )
        .map_err(|_| E2eeError::Crypto("sealing the guest envelope".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens an envelope (what the page does in JavaScript): the epoch key, for receiving only.
pub fn open_guest_envelope(
    envelope: &[u8],
    guest_key: &[u8; GUEST_KEY_LEN],
    room: &str,
    epoch: u64,
) -> Result<EpochKey, E2eeError> {
    if envelope.len() <= NONCE_LEN {
        return Err(E2eeError::Malformed {
            what: "guest envelope",
            detail: "too short".into(),
        });
    }
    let cipher = Aes128Gcm::new_from_slice(guest_key).map_err(crypto)?;
    let (nonce, sealed) = envelope.split_at(NONCE_LEN);
    let aad = aad(room, epoch);
    let base = cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: &aad,
            },
        )
        .map_err(|_| E2eeError::Refused("the guest key does not open this envelope".into()))?;
    // A guest never sends: its index is one no member has.
    EpochKey::new(epoch, u32::MAX >> 16, &base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Device, MediaCrypto, RoomGroup};

    #[test]
    fn a_guest_opens_the_epoch_key_and_hears_a_member() {
        let dev = Device::new("maya").unwrap();
        let group = RoomGroup::create(&dev, "room1").unwrap();
        let key = group.epoch_key(&dev).unwrap();
        let guest_key = new_guest_key();
        let envelope = seal_for_guests(&key, &guest_key, "room1").unwrap();
        let opened = open_guest_envelope(&envelope, &guest_key, "room1", key.epoch).unwrap();
        let mut speaker = MediaCrypto::new();
        speaker.install_key(&key).unwrap();
        let mut guest = MediaCrypto::new();
        guest.install_key(&opened).unwrap();
        let (mut sealed, mut out) = (Vec::new(), Vec::new());
        speaker.encrypt(b"opus frame", &mut sealed).unwrap();
        guest.decrypt(&sealed, &mut out).unwrap();
        assert_eq!(out, b"opus frame");
        // Another key, room or epoch, or a flipped bit: refused.
        let other = new_guest_key();
        assert!(open_guest_envelope(&envelope, &other, "room1", key.epoch).is_err());
        assert!(open_guest_envelope(&envelope, &guest_key, "room2", key.epoch).is_err());
        assert!(open_guest_envelope(&envelope, &guest_key, "room1", key.epoch + 1).is_err());
        for i in 0..envelope.len() {
            let mut bad = envelope.clone();
            bad[i] ^= 1;
            assert!(open_guest_envelope(&bad, &guest_key, "room1", key.epoch).is_err());
        }
        assert!(open_guest_envelope(&envelope[..12], &guest_key, "room1", 0).is_err());
    }
}
