//! One WebRTC peer connection (the `webrtc` crate): a `sendonly` microphone m-line and
//! `slots` `recvonly` m-lines, no trickle (the offer carries all host candidates), the client
//! is the controlling ICE agent. Incoming RTP goes out through a channel as [`IncomingRtp`].
//! An interceptor reads the far end's RTCP reports on the microphone stream into a
//! [`LossFeedback`] (see `loss.rs`).

use super::loss::{LossFeedback, LossObserver};
use super::sdp::{self, AUDIO_LEVEL_URI};
use super::MediaError;
use bytes::Bytes;
use rtc::interceptor::Slot;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp;
use rtc::rtp::extension::audio_level_extension::AudioLevelExtension;
use rtc::rtp::extension::HeaderExtension;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceCandidateInit,
    RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription,
};

/// One RTP packet that arrived on a `recvonly` m-line.
#[derive(Debug, Clone)]
pub struct IncomingRtp {
    /// Which transport (generation) it came from; older generations are ignored.
    pub generation: u64,
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
    pub marker: bool,
    pub payload_type: u8,
    pub payload: Bytes,
    /// RFC 6464 level (0..=127, −dBov) and voice flag, if the packet carried the extension.
    pub audio_level: Option<(u8, bool)>,
    pub arrival: Instant,
}

/// Transport settings.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// `recvonly` m-lines.
    pub slots: usize,
    /// Local UDP addresses to bind. A wildcard means every non-loopback interface, so the
    /// default also binds loopback explicitly (a server on 127.0.0.1 is then reachable).
    pub udp_addrs: Vec<String>,
    /// Local TCP addresses for ICE-TCP (RFC 6544): where UDP is blocked, the client connects
    /// to the server's passive TCP candidate from these. Empty: UDP only.
    pub tcp_addrs: Vec<String>,
    /// TURN servers for relay candidates (the welcome's, see [`crate::RoomSession::ice_servers`]).
    /// The stack relays over UDP only: `?transport=tcp` and `turns:` URLs are left out (over
    /// TCP the client uses the server's ICE-TCP candidate instead).
    pub ice_servers: Vec<ruang_proto::IceServer>,
    /// How long to wait for ICE gathering before sending what there is.
    pub gather_timeout: Duration,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            slots: sdp::DEFAULT_SLOTS,
            udp_addrs: vec!["0.0.0.0:0".into(), "127.0.0.1:0".into()],
            tcp_addrs: vec!["0.0.0.0:0".into(), "127.0.0.1:0".into()],
            ice_servers: Vec::new(),
            gather_timeout: Duration::from_secs(2),
        }
    }
}

/// Chain position of the [`LossObserver`]: an observer that emits nothing, just below
/// `Slot::ReceiverReport` (10 000) so it sees inbound RTCP before the report interceptors.
const LOSS_OBSERVER_SLOT: usize = 9_500;

struct Handler {
    generation: u64,
    gathered: watch::Sender<bool>,
    state: watch::Sender<RTCPeerConnectionState>,
    incoming: mpsc::Sender<IncomingRtp>,
    /// Negotiated audio-level extension id (0 = not known yet).
    level_id: Arc<AtomicU8>,
    dropped: Arc<AtomicU64>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!(generation = self.generation, %state, "media transport state");
        self.state.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let generation = self.generation;
        let incoming = self.incoming.clone();
        let level_id = self.level_id.clone();
        let dropped = self.dropped.clone();
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                match event {
                    TrackRemoteEvent::OnRtpPacket(pkt) => {
                        let arrival = Instant::now();
                        let id = level_id.load(Ordering::Relaxed);
                        let audio_level = if id == 0 {
                            None
                        } else {
                            pkt.header
                                .get_extension(id)
                                .and_then(|b| b.first().copied())
                                .map(|b| (b & 0x7f, b & 0x80 != 0))
                        };
                        let msg = IncomingRtp {
                            generation,
                            ssrc: pkt.header.ssrc,
                            seq: pkt.header.sequence_number,
                            ts: pkt.header.timestamp,
                            marker: pkt.header.marker,
                            payload_type: pkt.header.payload_type,
                            payload: pkt.payload,
                            audio_level,
                            arrival,
                        };
                        match incoming.try_send(msg) {
                            Ok(()) => {}
                            Err(mpsc::error::TrySendError::Full(_)) => {
                                dropped.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(mpsc::error::TrySendError::Closed(_)) => return,
                        }
                    }
                    TrackRemoteEvent::OnEnded => return,
                    _ => {}
                }
            }
        });
    }
}

/// A peer connection with our m-lines. See the module docs.
pub struct Transport {
    pc: Arc<dyn PeerConnection>,
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    generation: u64,
    gathered: watch::Receiver<bool>,
    state: watch::Receiver<RTCPeerConnectionState>,
    level_id: Arc<AtomicU8>,
    /// RED payload type the answer kept (0 = not negotiated).
    red_pt: AtomicU8,
    dropped: Arc<AtomicU64>,
    loss: Arc<LossFeedback>,
    gather_timeout: Duration,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("generation", &self.generation)
            .field("ssrc", &self.ssrc)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// Builds the peer connection and its transceivers (binds the UDP sockets).
    pub async fn new(
        opts: &TransportOptions,
        generation: u64,
        incoming: mpsc::Sender<IncomingRtp>,
    ) -> Result<Transport, MediaError> {
        Self::with_loss_feedback(opts, generation, incoming, Arc::default()).await
    }

    /// Like [`Transport::new`], publishing the reported loss of the microphone stream into
    /// `loss` (kept across transports, so the smoothed hint carries over).
    pub async fn with_loss_feedback(
        opts: &TransportOptions,
        generation: u64,
        incoming: mpsc::Sender<IncomingRtp>,
        loss: Arc<LossFeedback>,
    ) -> Result<Transport, MediaError> {
        let ssrc = loop {
            let s = rand::random::<u32>();
            if s != 0 {
                break s;
            }
        };
        let (me, registry) = sdp::media_engine()?;
        // Only observes; just below the report interceptors, well clear of the jitter buffer.
        let registry = registry.with(
            Slot::from(LOSS_OBSERVER_SLOT),
            LossObserver::new(ssrc, loss.clone()),
        );
        let (gathered_tx, gathered) = watch::channel(false);
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let level_id = Arc::new(AtomicU8::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let handler = Arc::new(Handler {
            generation,
            gathered: gathered_tx,
            state: state_tx,
            incoming,
            level_id: level_id.clone(),
            dropped: dropped.clone(),
        });
        let pc = PeerConnectionBuilder::new()
            .with_configuration(sdp::configuration(&opts.ice_servers))
            .with_setting_engine(sdp::setting_engine())
            .with_media_engine(me)
            .with_interceptor_registry(registry)
            .with_handler(handler)
            .with_udp_addrs(opts.udp_addrs.clone())
            .with_tcp_addrs(opts.tcp_addrs.clone())
            .build()
            .await?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);

        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            "ruang".to_owned(),
            "mic".to_owned(),
            "microphone".to_owned(),
            RtpCodecKind::Audio,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: sdp::opus_rtp_codec(),
                active: true,
                ..Default::default()
            }],
        )));
        pc.add_transceiver_from_track(
            track.clone() as Arc<dyn TrackLocal>,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Sendonly,
                ..Default::default()
            }),
        )
        .await?;
        for _ in 0..opts.slots {
            pc.add_transceiver_from_kind(
                RtpCodecKind::Audio,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    ..Default::default()
                }),
            )
            .await?;
        }
        Ok(Transport {
            pc,
            track,
            ssrc,
            generation,
            gathered,
            state,
            level_id,
            red_pt: AtomicU8::new(0),
            dropped,
            loss,
            gather_timeout: opts.gather_timeout,
        })
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// SSRC of the microphone stream.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Creates the offer, sets it as the local description and waits for ICE gathering to
    /// finish (no trickle), then returns the SDP with its candidates.
    pub async fn create_offer(&self) -> Result<String, MediaError> {
        let offer = self.pc.create_offer(None).await?;
        self.pc.set_local_description(offer).await?;
        let mut gathered = self.gathered.clone();
        let _ = tokio::time::timeout(self.gather_timeout, gathered.wait_for(|g| *g)).await;
        let desc = self
            .pc
            .local_description()
            .await
            .ok_or_else(|| MediaError::Negotiation("no local description".into()))?;
        Ok(desc.sdp)
    }

    /// Applies the server's answer; connectivity checks start.
    pub async fn apply_answer(&self, sdp: String) -> Result<(), MediaError> {
        if let Some(id) = sdp::extmap_id(&sdp, AUDIO_LEVEL_URI) {
            self.level_id.store(id, Ordering::Relaxed);
        }
        if let Some(pt) = sdp::red_payload_type(&sdp) {
            self.red_pt.store(pt, Ordering::Relaxed);
        }
        // The stack opens a TCP connection only to a passive candidate given on its own (as
        // if trickled), not to one in the description: take them out and add them after.
        let (sdp, tcp_candidates) = sdp::split_passive_tcp(&sdp);
        let answer = RTCSessionDescription::answer(sdp)?;
        self.pc.set_remote_description(answer).await?;
        for c in tcp_candidates {
            let init = RTCIceCandidateInit {
                candidate: c.candidate,
                sdp_mid: c.mid,
                sdp_mline_index: Some(c.mline_index),
                ..Default::default()
            };
            if let Err(e) = self.pc.add_ice_candidate(init).await {
                tracing::debug!(error = %e, "ICE-TCP candidate not usable");
            }
        }
        Ok(())
    }

    /// The connection state as the handler last reported it.
    pub fn state(&self) -> RTCPeerConnectionState {
        *self.state.borrow()
    }

    /// Waits until the connection is `Connected` (or failed/closed, or the timeout passed).
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut rx = self.state.clone();
        let done = tokio::time::timeout(
            timeout,
            rx.wait_for(|s| {
                matches!(
                    s,
                    RTCPeerConnectionState::Connected
                        | RTCPeerConnectionState::Failed
                        | RTCPeerConnectionState::Closed
                )
            }),
        )
        .await;
        matches!(done, Ok(Ok(s)) if *s == RTCPeerConnectionState::Connected)
    }

    /// The RED (RFC 2198) payload type, when the server's answer negotiated it: packets of
    /// this type carry redundancy, and ours may be sent as RED.
    pub fn red_payload_type(&self) -> Option<u8> {
        match self.red_pt.load(Ordering::Relaxed) {
            0 => None,
            pt => Some(pt),
        }
    }

    /// Incoming packets dropped because the engine fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// What the far end reports about the microphone stream.
    pub fn loss_feedback(&self) -> &Arc<LossFeedback> {
        &self.loss
    }

    /// Sends one Opus packet (`red`: a RED payload, sent on the negotiated RED payload type)
    /// with the RFC 6464 level extension.
    pub async fn send(
        &self,
        packet: &ruang_media::OutgoingPacket<'_>,
        red: bool,
    ) -> Result<(), MediaError> {
        let payload_type = match (red, self.red_payload_type()) {
            (true, Some(pt)) => pt,
            _ => sdp::OPUS_PAYLOAD_TYPE,
        };
        let pkt = rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                marker: packet.marker,
                payload_type,
                sequence_number: packet.seq,
                timestamp: packet.ts,
                ssrc: self.ssrc,
                ..Default::default()
            },
            payload: Bytes::copy_from_slice(packet.payload),
        };
        let level = HeaderExtension::AudioLevel(AudioLevelExtension {
            level: packet.audio_level.min(127),
            voice: packet.voice,
        });
        self.track.write_rtp_with_extensions(pkt, &[level]).await?;
        Ok(())
    }

    pub async fn close(&self) {
        if let Err(e) = self.pc.close().await {
            tracing::debug!(error = %e, "closing the media transport");
        }
    }
}
