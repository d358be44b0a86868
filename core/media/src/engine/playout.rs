//! How much audio to keep queued ahead of the output device.
//!
//! The engine writes decoded 20 ms frames into the device's ring whenever it holds less than
//! the target. A small target is low latency; but if the engine is scheduled late (a busy
//! phone, a debug build on a loaded machine) the device finds the ring empty and plays
//! silence. Like Oboe's latency tuner, the target starts low, grows by one step on every
//! underrun, and steps back down after a long calm stretch.

/// One adjustment step.
pub const PLAYOUT_STEP_MS: u32 = 10;
/// Calm frames (20 ms each) before the target steps back down: 10 s.
const CALM_FRAMES: u32 = 500;

#[derive(Debug, Clone)]
pub struct PlayoutTarget {
    min_ms: u32,
    max_ms: u32,
    target_ms: u32,
    seen_underruns: u64,
    calm_frames: u32,
}

impl PlayoutTarget {
    /// Starts at `min_ms`; never above `max_ms`.
    pub fn new(min_ms: u32, max_ms: u32) -> Self {
        let min_ms = min_ms.max(1);
        PlayoutTarget {
            min_ms,
            max_ms: max_ms.max(min_ms),
            target_ms: min_ms,
            seen_underruns: 0,
            calm_frames: 0,
        }
    }

    pub fn target_ms(&self) -> u32 {
        self.target_ms
    }

    /// Feeds the device's underrun counter (any monotonic count, e.g. samples of silence
    /// played); returns the target to keep queued, in milliseconds.
    pub fn update(&mut self, device_underruns: u64) -> u32 {
        if device_underruns > self.seen_underruns {
            self.seen_underruns = device_underruns;
            self.target_ms = (self.target_ms + PLAYOUT_STEP_MS).min(self.max_ms);
            self.calm_frames = 0;
        } else {
            self.calm_frames = self.calm_frames.saturating_add(1);
            if self.calm_frames >= CALM_FRAMES && self.target_ms > self.min_ms {
                self.target_ms = self
                    .target_ms
                    .saturating_sub(PLAYOUT_STEP_MS)
                    .max(self.min_ms);
                self.calm_frames = 0;
            }
        }
        self.target_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_on_underruns_and_shrinks_after_calm() {
        let mut p = PlayoutTarget::new(10, 40);
        assert_eq!(p.update(0), 10);
        assert_eq!(p.update(480), 20);
        assert_eq!(p.update(480), 20, "the same underrun counts once");
        assert_eq!(p.update(960), 30);
        assert_eq!(p.update(2000), 40);
        assert_eq!(p.update(3000), 40, "capped");
        let mut last = 40;
        let mut frames = 0;
        while last > 10 {
            last = p.update(3000);
            frames += 1;
            assert!(frames <= 3 * 500, "did not come back down");
        }
        assert_eq!(frames, 3 * 500, "one step per 10 s of calm");
        assert_eq!(p.update(3000), 10, "never below the minimum");
        // A new underrun during the calm count restarts it.
        assert_eq!(p.update(3001), 20);
        for _ in 0..499 {
            assert_eq!(p.update(3001), 20);
        }
        assert_eq!(p.update(3001), 10);
    }
}
