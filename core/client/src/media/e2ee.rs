//! End-to-end encryption on the media path: every Opus frame leaves as an SFrame ciphertext
//! (RFC 9605) before RTP packetisation, and every received frame (each RED block too) is
//! decrypted before the jitter buffer. The SFU reads only RTP headers and the audio-level
//! extension, so it still chooses the loudest speakers, and forwards ciphertext untouched.
//!
//! Keys come from the room's MLS group on the signalling side ([`ruang_e2ee::RoomGroup`]) as
//! plain [`EpochKey`] values through a lock-free ring: the engine thread never waits for them.
//! In an encrypted room nothing is sent before the first key arrives, and a frame that does
//! not decrypt (another epoch, a forgery, a replay) is dropped: the listener hears concealment,
//! never noise.

use ruang_e2ee::{EpochKey, MediaCrypto};
use ruang_media::engine::ReceiveError;
use ruang_media::jitter::PushOutcome;
use ruang_media::red;
use ruang_media::{ReceivePipeline, RtpPacket, SpeakerId};

/// Epoch changes queued between signalling and the engine (a commit is seconds apart).
const KEY_QUEUE: usize = 8;
/// Room for an SFrame ciphertext of the largest Opus packet.
const CIPHERTEXT_CAPACITY: usize = ruang_media::codec::MAX_PACKET + 64;

/// The signalling side's end: hands new epoch keys to the engine.
pub(crate) struct KeySender(std::sync::Mutex<rtrb::Producer<EpochKey>>);

impl KeySender {
    /// Queues `key`; false when the engine has not taken the previous ones (8 pending).
    pub fn send(&self, key: EpochKey) -> bool {
        let mut p = self.0.lock().unwrap_or_else(|e| e.into_inner());
        p.push(key).is_ok()
    }
}

/// Counters the engine keeps in `MediaStats`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct E2eeCounters {
    pub frames_encrypted: u64,
    pub frames_decrypted: u64,
    /// Received frames that did not decrypt (dropped).
    pub frames_dropped: u64,
    /// Frames received again (RED copies of frames that had arrived; replays).
    pub frames_duplicate: u64,
    /// Captured frames not sent because no key had arrived yet.
    pub frames_unkeyed: u64,
    /// The epoch frames are sent with.
    pub epoch: Option<u64>,
}

/// The engine thread's end.
pub(crate) struct EngineCrypto {
    keys: rtrb::Consumer<EpochKey>,
    crypto: MediaCrypto,
    sealed: Vec<u8>,
    opened: Vec<u8>,
    pub counters: E2eeCounters,
}

pub(crate) fn channel() -> (KeySender, EngineCrypto) {
    let (tx, rx) = rtrb::RingBuffer::new(KEY_QUEUE);
    (
        KeySender(std::sync::Mutex::new(tx)),
        EngineCrypto {
            keys: rx,
            crypto: MediaCrypto::new(),
            sealed: Vec::with_capacity(CIPHERTEXT_CAPACITY),
            opened: Vec::with_capacity(CIPHERTEXT_CAPACITY),
            counters: E2eeCounters::default(),
        },
    )
}

impl EngineCrypto {
    /// Installs the keys that arrived since the last tick.
    pub fn take_keys(&mut self) {
        while let Ok(key) = self.keys.pop() {
            if let Err(e) = self.crypto.install_key(&key) {
                tracing::debug!(error = %e, "epoch key refused");
            }
        }
        self.counters.epoch = self.crypto.epoch();
    }

    /// The ciphertext of `frame`, or `None` (counted) when there is no key yet.
    pub fn seal(&mut self, frame: &[u8]) -> Option<&[u8]> {
        self.sealed.clear();
        match self.crypto.encrypt(frame, &mut self.sealed) {
            Ok(()) if self.sealed.len() <= ruang_media::codec::MAX_PACKET => {
                self.counters.frames_encrypted += 1;
                Some(&self.sealed)
            }
            _ => {
                self.counters.frames_unkeyed += 1;
                None
            }
        }
    }

    /// Decrypts a received packet (plain or RED) into the receive pipeline. Blocks that do
    /// not decrypt are left out, as if lost.
    pub fn push(
        &mut self,
        receive: &mut ReceivePipeline,
        speaker: SpeakerId,
        packet: RtpPacket<'_>,
        is_red: bool,
    ) -> Result<PushOutcome, ReceiveError> {
        if !is_red {
            return match self.open(packet.payload) {
                Some(len) => receive.push(
                    speaker,
                    RtpPacket {
                        payload: &self.opened[..len],
                        ..packet
                    },
                ),
                None => Ok(PushOutcome::Invalid),
            };
        }
        let Ok(parsed) = red::parse(packet.payload) else {
            self.counters.frames_dropped += 1;
            return Ok(PushOutcome::Invalid);
        };
        // The primary first, as `push_red` does: a redundant copy only fills a hole behind
        // the newest packet. The copy of a frame that already arrived fails the replay check,
        // which is right (it is a duplicate).
        let outcome = match self.open(parsed.primary.payload) {
            Some(len) => receive.push(
                speaker,
                RtpPacket {
                    payload: &self.opened[..len],
                    ..packet
                },
            )?,
            None => PushOutcome::Invalid,
        };
        for (seq, ts, payload) in parsed.redundant_with_seq(packet.seq, packet.ts) {
            if let Some(len) = self.open(payload) {
                receive.push_redundant(
                    speaker,
                    RtpPacket {
                        seq,
                        ts,
                        payload: &self.opened[..len],
                        arrival_ms: packet.arrival_ms,
                    },
                )?;
            }
        }
        Ok(outcome)
    }

    fn open(&mut self, ciphertext: &[u8]) -> Option<usize> {
        self.opened.clear();
        match self.crypto.decrypt(ciphertext, &mut self.opened) {
            Ok(_) => {
                self.counters.frames_decrypted += 1;
                Some(self.opened.len())
            }
            Err(ruang_e2ee::E2eeError::Replayed) => {
                self.counters.frames_duplicate += 1;
                None
            }
            Err(_) => {
                self.counters.frames_dropped += 1;
                None
            }
        }
    }
}
