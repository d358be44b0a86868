//! Forwarding decisions of one room, as plain code: no sockets, no clocks (callers pass
//! `now_ms`), no WebRTC. The engine (`engine.rs`) feeds it packets' metadata and does what
//! it says.
//!
//! - **Audible filter**: a packet is forwarded only if its sender is audible (on stage and
//!   not muted) at the moment it is processed; the flag is set by the engine from the room's
//!   state. Never back to the sender itself.
//! - **Loudest N with hysteresis**: every receiver has `min(its recvonly slots, forward
//!   limit)` slots. A speaker who is not in one of a receiver's slots takes a free slot, or
//!   replaces the quietest speaker in that receiver's slots when it is louder by
//!   [`ForwardConfig::switch_margin`] and that slot has been held at least
//!   [`ForwardConfig::hold_ms`]. Loudness is the smoothed RFC 6464 level, so no decoding.
//! - **Slot continuity**: each slot keeps its own RTP clock. When a slot changes speaker
//!   (or a speaker comes back after a gap) the output timestamp continues from the slot's
//!   last one plus the time that passed (at least one 20 ms frame), so every slot's
//!   timestamps only grow. Sequence numbers are continuous per slot by construction
//!   (the engine writes every forwarded frame to the slot's one outgoing stream).
//! - **Levels**: [`RoomForwarder::levels_due`] gives the speaking levels that changed
//!   noticeably since they were last reported.

use std::collections::HashMap;

/// A WebRTC peer (one per connected member who sent a `media_offer`).
pub type PeerId = u64;

/// RTP clock rate of Opus.
pub const OPUS_CLOCK: u64 = 48_000;
/// One 20 ms Opus frame in RTP ticks.
pub const FRAME_TICKS: u64 = 960;

#[derive(Debug, Clone)]
pub struct ForwardConfig {
    /// Most speakers forwarded to one receiver at once.
    pub forward_limit: usize,
    /// How much louder (loudness 0–1) a new speaker must be to take a slot from someone.
    pub switch_margin: f32,
    /// How long a speaker keeps a slot before a louder one may take it.
    pub hold_ms: i64,
    /// A speaker with no packet for this long frees their slots and reads as silent.
    pub inactive_ms: i64,
    /// Smallest level change worth a `levels` event.
    pub level_step: f32,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            forward_limit: 4,
            switch_margin: 0.1,
            hold_ms: 500,
            inactive_ms: 1000,
            level_step: 0.05,
        }
    }
}

/// RFC 6464 level (`-dBov`, 0 = loudest, 127 = silence) → loudness 0–1, linear over
/// 0 to −60 dBov (quieter than −60 dBov is 0).
pub fn loudness_from_dbov(dbov: u8) -> f32 {
    let d = f32::from(dbov.min(127));
    if d >= 60.0 {
        0.0
    } else {
        1.0 - d / 60.0
    }
}

/// What happened to one incoming packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Sent to this many receivers (possibly 0: nobody has a slot for it).
    Forwarded(usize),
    /// The sender is not audible (listener, muted, just demoted).
    NotAudible,
    /// No such peer in this room.
    UnknownPeer,
}

/// One packet copy to write: to peer `to`, on its slot `slot`, with RTP time `rtp_time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    pub to: PeerId,
    pub slot: usize,
    pub rtp_time: u64,
}

#[derive(Debug, Default)]
struct PeerInfo {
    audible: bool,
}

/// Someone whose packets arrived recently (or whose level still has to be reported as 0).
#[derive(Debug)]
struct Speaker {
    peer: PeerId,
    /// Smoothed loudness 0–1.
    level: f32,
    last_packet_ms: i64,
    /// The level last put in a `levels` event.
    reported: f32,
}

#[derive(Debug, Default, Clone)]
struct SlotClock {
    /// Last RTP time written on this slot, and when.
    last_out: Option<(u64, i64)>,
    /// `out = in + offset` for the current run of one speaker.
    offset: i64,
    /// The clock must be re-anchored before the next packet.
    reanchor: bool,
}

impl SlotClock {
    fn map(&mut self, in_time: u64, now_ms: i64) -> u64 {
        let out = match self.last_out {
            None => in_time,
            Some((last, at)) => {
                let mut out = (in_time as i64).wrapping_add(self.offset) as u64;
                if self.reanchor || out <= last {
                    let elapsed = (now_ms - at).max(0) as u64 * OPUS_CLOCK / 1000;
                    out = last + elapsed.max(FRAME_TICKS);
                }
                out
            }
        };
        self.offset = (out as i64).wrapping_sub(in_time as i64);
        self.reanchor = false;
        self.last_out = Some((out, now_ms));
        out
    }
}

#[derive(Debug, Clone, Default)]
struct Slot {
    speaker: Option<PeerId>,
    since_ms: i64,
    clock: SlotClock,
}

#[derive(Debug)]
struct Receiver {
    peer: PeerId,
    slots: Vec<Slot>,
}

/// The forwarding state of one room.
#[derive(Debug, Default)]
pub struct RoomForwarder {
    config: ForwardConfig,
    peers: HashMap<PeerId, PeerInfo>,
    speakers: Vec<Speaker>,
    receivers: Vec<Receiver>,
}

impl RoomForwarder {
    pub fn new(config: ForwardConfig) -> Self {
        RoomForwarder {
            config,
            ..Default::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Adds a peer with `slots` recvonly m-lines, silent until [`Self::set_audible`].
    pub fn add_peer(&mut self, peer: PeerId, slots: usize) {
        self.remove_peer(peer);
        self.peers.insert(peer, PeerInfo::default());
        let usable = slots.min(self.config.forward_limit);
        if usable > 0 {
            self.receivers.push(Receiver {
                peer,
                slots: vec![Slot::default(); usable],
            });
        }
    }

    pub fn remove_peer(&mut self, peer: PeerId) {
        if self.peers.remove(&peer).is_none() {
            return;
        }
        self.receivers.retain(|r| r.peer != peer);
        self.free_slots_of(peer);
        // Keep its speaker entry only to report its level going to 0.
        self.speakers.retain(|s| s.peer != peer || s.reported > 0.0);
    }

    pub fn has_peer(&self, peer: PeerId) -> bool {
        self.peers.contains_key(&peer)
    }

    pub fn peers(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.peers.keys().copied()
    }

    /// Whether `peer`'s audio may be forwarded. Takes effect from the next packet.
    pub fn set_audible(&mut self, peer: PeerId, audible: bool) {
        let Some(info) = self.peers.get_mut(&peer) else {
            return;
        };
        if info.audible != audible {
            info.audible = audible;
            if !audible {
                self.free_slots_of(peer);
            }
        }
    }

    pub fn audible(&self, peer: PeerId) -> bool {
        self.peers.get(&peer).is_some_and(|p| p.audible)
    }

    fn free_slots_of(&mut self, peer: PeerId) {
        for r in &mut self.receivers {
            for s in &mut r.slots {
                if s.speaker == Some(peer) {
                    s.speaker = None;
                    s.clock.reanchor = true;
                }
            }
        }
    }

    /// Current smoothed loudness of `peer` (0 when unknown).
    pub fn level(&self, peer: PeerId) -> f32 {
        self.speakers
            .iter()
            .find(|s| s.peer == peer)
            .map_or(0.0, |s| s.level)
    }

    /// Decides where one packet of `from` goes. `level_dbov` is its RFC 6464 level (absent:
    /// treated as silence for ranking), `rtp_time` its RTP timestamp (48 kHz, extended).
    /// The copies to write are appended to `out` (cleared first; reuse it between calls).
    pub fn on_packet(
        &mut self,
        from: PeerId,
        level_dbov: Option<u8>,
        rtp_time: u64,
        now_ms: i64,
        out: &mut Vec<Forward>,
    ) -> Verdict {
        out.clear();
        let Some(info) = self.peers.get(&from) else {
            return Verdict::UnknownPeer;
        };
        if !info.audible {
            return Verdict::NotAudible;
        }
        let x = level_dbov.map_or(0.0, loudness_from_dbov);
        let level = match self.speakers.iter_mut().find(|s| s.peer == from) {
            Some(s) => {
                // Fast attack, slower release, so a word's level holds between syllables.
                let k = if x > s.level { 0.5 } else { 0.15 };
                s.level += (x - s.level) * k;
                s.last_packet_ms = now_ms;
                s.level
            }
            None => {
                self.speakers.push(Speaker {
                    peer: from,
                    level: x,
                    last_packet_ms: now_ms,
                    reported: 0.0,
                });
                x
            }
        };
        let cfg = &self.config;
        let speakers = &self.speakers;
        let peers = &self.peers;
        // A slot's speaker still counts if audible and heard from recently.
        let live = |p: PeerId| -> Option<f32> {
            if !peers.get(&p).is_some_and(|i| i.audible) {
                return None;
            }
            speakers
                .iter()
                .find(|s| s.peer == p)
                .filter(|s| now_ms - s.last_packet_ms < cfg.inactive_ms)
                .map(|s| s.level)
        };
        for r in &mut self.receivers {
            if r.peer == from {
                continue;
            }
            let idx = if let Some(i) = r.slots.iter().position(|s| s.speaker == Some(from)) {
                Some(i)
            } else {
                // A free slot (never used, or its speaker went quiet or inaudible) ...
                let mut free = None;
                let mut quietest: Option<(usize, f32)> = None;
                for (i, s) in r.slots.iter().enumerate() {
                    match s.speaker.and_then(live) {
                        None => {
                            free = Some(i);
                            break;
                        }
                        Some(l) => {
                            if quietest.is_none_or(|(_, q)| l < q) {
                                quietest = Some((i, l));
                            }
                        }
                    }
                }
                // ... or the quietest one, if this speaker is clearly louder and it was held.
                free.or_else(|| {
                    quietest
                        .filter(|&(i, q)| {
                            level > q + cfg.switch_margin
                                && now_ms - r.slots[i].since_ms >= cfg.hold_ms
                        })
                        .map(|(i, _)| i)
                })
                .inspect(|&i| {
                    let s = &mut r.slots[i];
                    s.speaker = Some(from);
                    s.since_ms = now_ms;
                    s.clock.reanchor = true;
                })
            };
            if let Some(i) = idx {
                let slot = &mut r.slots[i];
                if slot
                    .clock
                    .last_out
                    .is_some_and(|(_, at)| now_ms - at >= cfg.inactive_ms)
                {
                    // The same speaker after a long pause: continue from wall-clock time.
                    slot.clock.reanchor = true;
                }
                out.push(Forward {
                    to: r.peer,
                    slot: i,
                    rtp_time: slot.clock.map(rtp_time, now_ms),
                });
            }
        }
        Verdict::Forwarded(out.len())
    }

    /// The speaking levels (0–1, two decimals) that changed by at least
    /// [`ForwardConfig::level_step`] (or fell to 0) since last reported. Silent when not
    /// audible or not heard from for [`ForwardConfig::inactive_ms`].
    pub fn levels_due(&mut self, now_ms: i64) -> Vec<(PeerId, f32)> {
        let mut due = Vec::new();
        let step = self.config.level_step;
        for s in &mut self.speakers {
            let audible = self.peers.get(&s.peer).is_some_and(|i| i.audible);
            let current = if audible && now_ms - s.last_packet_ms < self.config.inactive_ms {
                (s.level * 100.0).round() / 100.0
            } else {
                0.0
            };
            let changed =
                (current - s.reported).abs() >= step || (current == 0.0 && s.reported > 0.0);
            if changed {
                s.reported = current;
                due.push((s.peer, current));
            }
        }
        // Forget silent speakers whose 0 was reported (they come back with their next packet).
        let peers = &self.peers;
        let inactive = self.config.inactive_ms;
        self.speakers.retain(|s| {
            s.reported > 0.0
                || (peers.contains_key(&s.peer) && now_ms - s.last_packet_ms < inactive)
        });
        due
    }
}

#[cfg(test)]
#[path = "forward_tests.rs"]
mod tests;
