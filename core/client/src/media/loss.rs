//! Packet loss of the microphone stream as the far end sees it, turned into the Opus encoder's
//! loss hint (`set_packet_loss_perc`), so in-band FEC gets stronger when the network loses
//! packets and cheaper when it does not.
//!
//! The server (str0m) reports on our stream in RTCP reception report blocks (in receiver
//! reports, or in its sender reports); `fraction_lost` is the share lost since its previous
//! report. [`LossObserver`] is an interceptor in the transport's chain: it sees every inbound
//! RTCP packet on the webrtc driver task — never on the audio path — runs [`smooth_loss`] on
//! each block about our SSRC and publishes the hint through the atomics of [`LossFeedback`].
//! The engine only loads them.
//!
//! (`get_stats` in `rtc` 0.21.1 would report a `remote-inbound-rtp` `fraction_lost` too, but
//! nothing feeds it: `InterceptorHandler::process_read_rtcp_for_stats` is never called, so the
//! field stays 0. Hence the interceptor.)

use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::sansio::Protocol;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The hint never goes below this: some FEC is always worth having on a real network.
pub const MIN_LOSS_HINT: f32 = 1.0;
/// Nor above this: past it, redundancy costs the primary signal more than it saves.
pub const MAX_LOSS_HINT: f32 = 30.0;
/// On a report with less loss than the hint, the hint moves this share of the way down
/// (reports arrive about once a second, so a burst's protection fades over some seconds).
pub const LOSS_DECAY: f32 = 0.2;

/// One smoothing step. `hint` is the current hint in percent, `fraction_lost` the RTCP field
/// (loss × 256). More loss is taken at once, so FEC protects the next packets of a burst;
/// less loss lowers the hint gradually. The result stays within
/// [`MIN_LOSS_HINT`]..=[`MAX_LOSS_HINT`].
pub fn smooth_loss(hint: f32, fraction_lost: u8) -> f32 {
    let observed = f32::from(fraction_lost) * 100.0 / 256.0;
    let next = if observed >= hint {
        observed
    } else {
        hint + (observed - hint) * LOSS_DECAY
    };
    next.clamp(MIN_LOSS_HINT, MAX_LOSS_HINT)
}

/// The hint and what it came from, written by [`LossObserver`], read by the engine (it lives
/// in the engine's shared state and survives renegotiation).
#[derive(Debug, Default)]
pub struct LossFeedback {
    /// Smoothed hint in percent, rounded; 0 until the first report.
    hint: AtomicU8,
    /// The last reported loss in percent, as `f32` bits.
    reported: AtomicU32,
    /// Report blocks about the microphone stream so far.
    reports: AtomicU64,
}

impl LossFeedback {
    /// The hint in percent (1..=30), or `None` before the first report.
    pub fn hint(&self) -> Option<u8> {
        match self.hint.load(Ordering::Relaxed) {
            0 => None,
            h => Some(h),
        }
    }

    /// Loss in percent of the last report block about our stream.
    pub fn reported(&self) -> f32 {
        f32::from_bits(self.reported.load(Ordering::Relaxed))
    }

    pub fn reports(&self) -> u64 {
        self.reports.load(Ordering::Relaxed)
    }
}

/// Watches inbound RTCP for report blocks about one SSRC; passes everything through.
pub struct LossObserver {
    ssrc: u32,
    /// Unrounded smoothing state, percent.
    hint: f32,
    out: Arc<LossFeedback>,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl LossObserver {
    /// Continues from the published hint, so a new transport does not start over.
    pub fn new(ssrc: u32, out: Arc<LossFeedback>) -> Self {
        let hint = out.hint().map_or(MIN_LOSS_HINT, f32::from);
        LossObserver {
            ssrc,
            hint,
            out,
            read_queue: VecDeque::new(),
            write_queue: VecDeque::new(),
        }
    }

    fn on_block(&mut self, block: &ReceptionReport) {
        if block.ssrc != self.ssrc {
            return;
        }
        self.hint = smooth_loss(self.hint, block.fraction_lost);
        let reported = f32::from(block.fraction_lost) * 100.0 / 256.0;
        self.out
            .reported
            .store(reported.to_bits(), Ordering::Relaxed);
        self.out
            .hint
            .store(self.hint.round() as u8, Ordering::Relaxed);
        self.out.reports.fetch_add(1, Ordering::Relaxed);
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for LossObserver {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            for packet in packets {
                let any = packet.as_any();
                if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                    rr.reports.iter().for_each(|b| self.on_block(b));
                } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
                    sr.reports.iter().for_each(|b| self.on_block(b));
                }
            }
        }
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write_queue.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write_queue.pop_front()
    }
}

impl Interceptor for LossObserver {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `fraction_lost` for a loss in percent.
    fn fl(percent: f32) -> u8 {
        (percent * 256.0 / 100.0).round() as u8
    }

    #[test]
    fn loss_rises_at_once_and_decays_slowly() {
        // No loss: the floor.
        assert_eq!(smooth_loss(MIN_LOSS_HINT, 0), MIN_LOSS_HINT);
        // A burst is taken at once.
        let h = smooth_loss(MIN_LOSS_HINT, fl(12.0));
        assert!((h - 12.0).abs() < 0.3, "{h}");
        // Then it fades: monotonically, by LOSS_DECAY of the gap per report, not at once.
        let h1 = smooth_loss(h, 0);
        assert!((h1 - (h - h * LOSS_DECAY)).abs() < 1e-4, "{h1}");
        let mut prev = h1;
        for _ in 0..40 {
            let next = smooth_loss(prev, 0);
            assert!(next <= prev && next >= MIN_LOSS_HINT);
            prev = next;
        }
        assert!(
            (prev - MIN_LOSS_HINT).abs() < 0.01,
            "back at the floor: {prev}"
        );
        // Less loss than the hint, but some: decays toward it, not below.
        let mut h = 20.0;
        for _ in 0..60 {
            h = smooth_loss(h, fl(5.0));
        }
        assert!((h - 5.0).abs() < 0.3, "{h}");
    }

    #[test]
    fn loss_hint_is_clamped() {
        assert_eq!(smooth_loss(MIN_LOSS_HINT, 255), MAX_LOSS_HINT);
        assert_eq!(smooth_loss(MAX_LOSS_HINT, 200), MAX_LOSS_HINT);
        assert_eq!(smooth_loss(0.0, 0), MIN_LOSS_HINT);
        assert_eq!(smooth_loss(500.0, 0), MAX_LOSS_HINT);
    }

    #[test]
    fn observer_publishes_only_blocks_about_its_ssrc() {
        let out = Arc::new(LossFeedback::default());
        let mut obs = LossObserver::new(42, out.clone());
        assert_eq!(out.hint(), None);
        let block = |ssrc, fraction_lost| ReceptionReport {
            ssrc,
            fraction_lost,
            ..Default::default()
        };
        obs.on_block(&block(7, 128));
        assert_eq!((out.hint(), out.reports()), (None, 0));
        obs.on_block(&block(42, fl(8.0)));
        assert_eq!((out.hint(), out.reports()), (Some(8), 1));
        assert!((out.reported() - 8.0).abs() < 0.3);
        // A new observer (renegotiation) continues from the published hint.
        let obs2 = LossObserver::new(43, out.clone());
        assert_eq!(obs2.hint, 8.0);
    }
}
