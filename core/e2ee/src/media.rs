//! SFrame over Opus frames, keyed from the room group's epochs (RFC 9605 §5.2).
//!
//! Key id layout: `sender index << EPOCH_BITS | epoch mod 2^EPOCH_BITS` (context id 0), so
//! each sender has its own key and a (key, counter) nonce is never reused between senders.
//! Receive keys are derived on first use from the epoch's base key; the previous epoch is kept
//! so frames in flight across a commit still play.

use crate::device::Device;
use crate::error::E2eeError;
use crate::group::RoomGroup;
use crate::SFRAME_SUITE;
use sframe::frame::validation::{ReplayAttackProtectionStore, Tolerance};
use sframe::frame::{EncryptedFrameView, MediaFrameView, MonotonicCounter};
use sframe::header::KeyId;
use sframe::key::{DecryptionKey, EncryptionKey};
use sframe::mls::{MlsKeyId, MlsKeyIdBitRange};
use std::collections::{HashMap, VecDeque};

/// Bits of the key id that carry the epoch.
pub const EPOCH_BITS: u8 = 8;
/// Bits that carry the sender's leaf index: rooms of up to 65,536 devices.
pub const SENDER_INDEX_BITS: u8 = 16;
/// Epochs whose frames are still accepted (the current one and the one before).
const KEPT_EPOCHS: usize = 2;
/// How far out of order a frame may arrive and still be accepted once.
const REPLAY_WINDOW: usize = 256;

fn bit_range() -> MlsKeyIdBitRange {
    MlsKeyIdBitRange::new(EPOCH_BITS, SENDER_INDEX_BITS)
}

/// One epoch's key material for the media path: what the signalling side hands to the audio
/// engine (plain data, no heap, so handing it over allocates nothing on the engine thread).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EpochKey {
    pub epoch: u64,
    /// This device's leaf index (its frames' key id).
    pub own_index: u32,
    base_key: [u8; 32],
    len: usize,
}

impl std::fmt::Debug for EpochKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EpochKey")
            .field("epoch", &self.epoch)
            .field("own_index", &self.own_index)
            .finish_non_exhaustive()
    }
}

impl EpochKey {
    pub(crate) fn new(epoch: u64, own_index: u32, base: &[u8]) -> Result<Self, E2eeError> {
        let mut base_key = [0u8; 32];
        if base.len() > base_key.len() {
            return Err(E2eeError::Crypto("base key too long".into()));
        }
        base_key[..base.len()].copy_from_slice(base);
        Ok(EpochKey {
            epoch,
            own_index,
            base_key,
            len: base.len(),
        })
    }

    pub(crate) fn base(&self) -> &[u8] {
        &self.base_key[..self.len]
    }
}

/// A device's media encryption state for one room.
pub struct MediaCrypto {
    own_index: u32,
    send: Option<EncryptionKey>,
    counter: MonotonicCounter,
    /// Epoch keys, newest last.
    epochs: VecDeque<EpochKey>,
    recv: HashMap<KeyId, DecryptionKey>,
    replay: ReplayAttackProtectionStore,
}

impl Default for MediaCrypto {
    fn default() -> Self {
        Self::new()
    }
}

impl MediaCrypto {
    pub fn new() -> Self {
        MediaCrypto {
            own_index: 0,
            send: None,
            counter: MonotonicCounter::default(),
            epochs: VecDeque::new(),
            recv: HashMap::new(),
            replay: ReplayAttackProtectionStore::new(Tolerance::new(REPLAY_WINDOW)),
        }
    }

    /// Takes the group's current epoch: a new send key, and receive keys for it.
    pub fn install(&mut self, group: &RoomGroup, device: &Device) -> Result<(), E2eeError> {
        self.install_key(&group.epoch_key(device)?)
    }

    /// Takes an epoch key exported with [`RoomGroup::epoch_key`] (possibly on another
    /// thread). An epoch already installed is ignored; an older one is refused.
    pub fn install_key(&mut self, key: &EpochKey) -> Result<(), E2eeError> {
        if let Some(newest) = self.epochs.back() {
            if key.epoch <= newest.epoch {
                return if key.epoch == newest.epoch {
                    Ok(())
                } else {
                    Err(E2eeError::Frame("an older epoch"))
                };
            }
        }
        self.own_index = key.own_index;
        let kid = key_id(self.own_index, key.epoch)?;
        self.send = Some(
            EncryptionKey::derive_from(SFRAME_SUITE, kid, key.base())
                .map_err(|_| E2eeError::Crypto("deriving the send key".into()))?,
        );
        self.counter = MonotonicCounter::default();
        self.epochs.push_back(*key);
        while self.epochs.len() > KEPT_EPOCHS {
            self.epochs.pop_front();
        }
        let mut kept = [u64::MAX; KEPT_EPOCHS];
        for (slot, k) in kept.iter_mut().zip(self.epochs.iter()) {
            *slot = lsb(k.epoch);
        }
        let keep = |kid: KeyId| kept.contains(&MlsKeyId::from_key_id(kid, bit_range()).epoch_lsb());
        self.recv.retain(|kid, _| keep(*kid));
        self.replay.retain(keep);
        Ok(())
    }

    /// Drops every key (the device was removed from the room).
    pub fn forget(&mut self) {
        self.send = None;
        self.epochs.clear();
        self.recv.clear();
        self.replay.retain(|_| false);
    }

    /// The epoch frames are sent with, if any.
    pub fn epoch(&self) -> Option<u64> {
        self.epochs.back().map(|k| k.epoch)
    }

    /// Encrypts one Opus frame into `out` (SFrame header, ciphertext, tag).
    pub fn encrypt(&mut self, frame: &[u8], out: &mut Vec<u8>) -> Result<(), E2eeError> {
        let key = self.send.as_ref().ok_or(E2eeError::Frame("no key yet"))?;
        let media = MediaFrameView::try_new(&mut self.counter, &frame)
            .map_err(|_| E2eeError::Frame("frame counter exhausted"))?;
        media
            .encrypt_into(key, out)
            .map_err(|_| E2eeError::Frame("encryption failed"))?;
        Ok(())
    }

    /// Decrypts one SFrame ciphertext into `out`; returns the sender's leaf index. Frames of
    /// unknown or dropped epochs, replays and forgeries are refused.
    pub fn decrypt(&mut self, frame: &[u8], out: &mut Vec<u8>) -> Result<u32, E2eeError> {
        let view = EncryptedFrameView::try_new(&frame)
            .map_err(|_| E2eeError::Frame("malformed header"))?;
        let kid = view.header().key_id();
        let mls = MlsKeyId::from_key_id(kid, bit_range());
        if mls.context_id() != 0 {
            return Err(E2eeError::Frame("unknown key id"));
        }
        let sender = mls.member_index() as u32;
        if !self.recv.contains_key(&kid) {
            let base = self
                .epochs
                .iter()
                .rev()
                .find(|k| lsb(k.epoch) == mls.epoch_lsb())
                .map(EpochKey::base)
                .ok_or(E2eeError::Frame("key of an unknown epoch"))?;
            let key = DecryptionKey::derive_from(SFRAME_SUITE, kid, base)
                .map_err(|_| E2eeError::Frame("unknown key id"))?;
            self.recv.insert(kid, key);
        }
        let media = view
            .validated_decrypt_into(&self.recv, out, &mut self.replay)
            .map_err(|e| match e {
                sframe::error::SframeError::FrameValidationFailed(_) => E2eeError::Replayed,
                _ => E2eeError::Frame("does not authenticate"),
            })?;
        let len = media.payload().len();
        let start = out.len() - len;
        out.drain(..start);
        Ok(sender)
    }
}

fn lsb(epoch: u64) -> u64 {
    epoch & ((1 << EPOCH_BITS) - 1)
}

fn key_id(index: u32, epoch: u64) -> Result<MlsKeyId, E2eeError> {
    MlsKeyId::try_new(0u64, lsb(epoch), index as u64, bit_range())
        .map_err(|_| E2eeError::Crypto("room too large for the key id layout".into()))
}
