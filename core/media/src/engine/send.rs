use crate::codec::{CodecError, Encoded, EncoderConfig, OpusEncoder, MAX_PACKET};
use crate::level::{AudioLevel, LevelMeter, VoiceActivity};
use crate::FRAME_TS;

/// Send-side settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SendConfig {
    pub encoder: EncoderConfig,
    pub vad: VoiceActivity,
    /// First RTP sequence number and timestamp (RFC 3550 wants them random).
    pub initial_seq: u16,
    pub initial_ts: u32,
}

/// One encoded frame ready to be put into an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutgoingPacket<'a> {
    pub seq: u16,
    pub ts: u32,
    /// RTP marker: first packet of a talk spurt (after mute or DTX silence).
    pub marker: bool,
    pub payload: &'a [u8],
    /// RFC 6464 audio level of the frame (0..=127, −dBov) for the header extension.
    pub audio_level: u8,
    /// RFC 6464 "V" flag: the frame contains voice.
    pub voice: bool,
}

/// Counters of what the send pipeline did with the frames it was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendStats {
    pub frames: u64,
    pub packets: u64,
    pub muted_frames: u64,
    /// Frames the encoder declared silent (DTX) and that were not sent.
    pub dtx_frames: u64,
    pub bytes: u64,
}

/// PCM frames in, Opus packets out: level metering, mute, DTX and RTP numbering.
#[derive(Debug)]
pub struct SendPipeline {
    encoder: OpusEncoder,
    meter: LevelMeter,
    muted: bool,
    seq: u16,
    ts: u32,
    /// Set when frames were skipped (mute/DTX) so the next packet carries the marker bit.
    marker_pending: bool,
    buf: Vec<u8>,
    stats: SendStats,
}

impl SendPipeline {
    pub fn new(config: SendConfig) -> Result<Self, CodecError> {
        Ok(Self {
            encoder: OpusEncoder::new(config.encoder)?,
            meter: LevelMeter::new(config.vad),
            muted: false,
            seq: config.initial_seq,
            ts: config.initial_ts,
            marker_pending: true,
            buf: vec![0; MAX_PACKET],
            stats: SendStats::default(),
        })
    }

    /// While muted no packet is produced at all (so nothing can leak to the room), but levels
    /// are still measured so the UI can show "you are muted" when the user talks.
    pub fn set_muted(&mut self, muted: bool) {
        self.muted = muted;
    }

    pub fn is_muted(&self) -> bool {
        self.muted
    }

    /// Level of the last captured frame.
    pub fn level(&self) -> AudioLevel {
        self.meter.level()
    }

    pub fn voice_active(&self) -> bool {
        self.meter.voice_active()
    }

    pub fn stats(&self) -> SendStats {
        self.stats
    }

    /// For runtime tuning, e.g. `set_packet_loss_perc` from receiver reports.
    pub fn encoder_mut(&mut self) -> &mut OpusEncoder {
        &mut self.encoder
    }

    /// Processes one 20 ms frame (960 samples). Returns the packet to send, or `None` when
    /// muted or when the encoder chose DTX for silence. The RTP timestamp advances either way.
    pub fn process(&mut self, frame: &[i16]) -> Result<Option<OutgoingPacket<'_>>, CodecError> {
        if frame.len() != crate::FRAME_SAMPLES {
            return Err(CodecError::FrameSize {
                expected: crate::FRAME_SAMPLES,
                got: frame.len(),
            });
        }
        self.stats.frames += 1;
        let level = self.meter.update_i16(frame);
        let ts = self.ts;
        self.ts = self.ts.wrapping_add(FRAME_TS);
        if self.muted {
            self.stats.muted_frames += 1;
            self.marker_pending = true;
            return Ok(None);
        }
        match self.encoder.encode(frame, &mut self.buf)? {
            Encoded::Silence => {
                self.stats.dtx_frames += 1;
                self.marker_pending = true;
                Ok(None)
            }
            Encoded::Packet(n) => {
                let seq = self.seq;
                self.seq = self.seq.wrapping_add(1);
                let marker = std::mem::take(&mut self.marker_pending);
                self.stats.packets += 1;
                self.stats.bytes += n as u64;
                Ok(Some(OutgoingPacket {
                    seq,
                    ts,
                    marker,
                    payload: &self.buf[..n],
                    audio_level: level.rfc6464,
                    voice: self.meter.voice_active(),
                }))
            }
        }
    }
}
