//! When the SFU wraps what it forwards to one receiver in RFC 2198 RED (pure logic, no I/O).
//!
//! str0m negotiates RED (`red/48000/2`) with every client that offers it and, while wrapping
//! is on for a `recvonly` slot, sends each frame with copies of the two frames before it
//! ([`RED_DISTANCES`]). Receivers that did not negotiate RED get plain Opus; audio arriving
//! as RED from a speaker is unwrapped (and lost frames rebuilt from its redundancy) by str0m
//! before forwarding, so what the SFU forwards is always plain Opus frames.
//!
//! Wrapping follows the loss the receiver reports in its RTCP receiver reports (str0m's
//! egress statistics, once a second): the loss is smoothed like the clients' encoder hint
//! (more loss is taken at once, less decays by [`DECAY`] per report) and RED is on while the
//! smoothed loss is at least [`ON_PERCENT`]. A new receiver starts with RED on (nothing is
//! known yet); its first clean report turns it off.

/// Earlier frames in each RED packet the SFU sends (str0m's pattern: one and two back).
pub const RED_DISTANCES: [u32; 2] = [1, 2];
/// Smoothed loss (percent) from which a receiver gets RED.
pub const ON_PERCENT: f32 = 2.0;
/// Share of the way a lower report moves the smoothed loss down.
pub const DECAY: f32 = 0.2;

/// RED state of one receiver slot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RedControl {
    /// Smoothed loss in percent.
    loss: f32,
}

impl Default for RedControl {
    fn default() -> Self {
        RedControl { loss: ON_PERCENT }
    }
}

impl RedControl {
    /// Whether RED is on.
    pub fn on(&self) -> bool {
        self.loss >= ON_PERCENT
    }

    /// Smoothed loss in percent.
    pub fn loss_percent(&self) -> f32 {
        self.loss
    }

    /// A report: `fraction` lost (0–1) since the previous one. Returns whether RED is on.
    pub fn report(&mut self, fraction: f32) -> bool {
        let observed = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0) * 100.0
        } else {
            0.0
        };
        self.loss = if observed >= self.loss {
            observed
        } else {
            self.loss + (observed - self.loss) * DECAY
        };
        self.on()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_on_and_a_clean_report_turns_it_off() {
        let mut c = RedControl::default();
        assert!(c.on());
        assert!(!c.report(0.0));
        assert!(!c.report(0.005));
    }

    #[test]
    fn loss_turns_it_on_at_once_and_it_stays_on_while_the_loss_fades() {
        let mut c = RedControl::default();
        c.report(0.0);
        assert!(c.report(0.10));
        assert!((c.loss_percent() - 10.0).abs() < 1e-4);
        // 10 % → 8 → 6.4 → 5.1 → 4.1 → 3.3 → 2.6 → 2.1 → 1.7: off after the 8th clean report.
        let mut clean = 0;
        while c.report(0.0) {
            clean += 1;
            assert!(clean < 20);
        }
        assert_eq!(clean, 7);
        // One lossy report in between puts it back on.
        assert!(c.report(0.03));
        // Nonsense input counts as no loss.
        let mut d = RedControl::default();
        assert!(!d.report(f32::NAN));
        assert!(d.report(7.0), "clamped to 100 %");
    }
}
