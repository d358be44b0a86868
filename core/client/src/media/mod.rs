//! Live audio: a WebRTC transport to the server's SFU plus the `ruang_media` engine.
//!
//! [`MediaSession::start`] takes a running [`RoomSession`] and an audio device, builds a peer
//! connection (one `sendonly` microphone m-line, [`sdp::DEFAULT_SLOTS`] `recvonly` m-lines),
//! negotiates it with `media_offer` / `media_answer`, and runs the engine (see `engine.rs`):
//! 20 ms captured frames → Opus (VOIP, FEC, DTX, RFC 6464 level) → RTP while this client may
//! send; RTP from every slot → per-SSRC jitter buffer, FEC, PLC → mix → device playback.
//!
//! Sending needs both: the room allows it (on stage and not muted on the server; or
//! [`MediaOptions::force_send`]) and the local mute ([`MediaSession::set_muted`]) is off.
//! Local mute is immediate: it is checked for every packet just before it leaves.
//!
//! When the signalling session reconnects (a new `welcome`), or the transport fails while the
//! signalling is up, the client negotiates a new transport; the server replaces the old one.
//!
//! [`MediaSession::start_with`] takes any [`Signaller`] instead of a room session (tests run
//! the transport against a plain WebRTC peer this way).

mod e2ee;
mod engine;
pub mod loss;
pub mod sdp;
pub mod transport;

pub use e2ee::E2eeCounters;
pub use loss::LossFeedback;
/// The audio engine crate (devices, WAV helpers, analysis), re-exported for apps and tests.
pub use ruang_media;
pub use transport::{IncomingRtp, Transport, TransportOptions};

#[cfg(test)]
mod tests;

use crate::error::ClientError;
use crate::session::{ConnectionState, RoomSession, SessionState};
use engine::{send_task, trash_task, Engine, Shared, OUTGOING_QUEUE};
use ruang_media::device::{AudioDevice, DeviceError, StreamConfig};
use ruang_media::{JitterStats, ReceiveConfig, ReceivePipeline, SendConfig, SendPipeline};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Mutex as AsyncMutex};
use tokio::task::JoinHandle;

/// Why media could not start or renegotiate.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("webrtc: {0}")]
    WebRtc(#[from] webrtc::error::Error),
    #[error("audio device: {0}")]
    Device(#[from] DeviceError),
    #[error("codec: {0}")]
    Codec(#[from] ruang_media::CodecError),
    #[error("signalling: {0}")]
    Signalling(#[from] ClientError),
    #[error("negotiation: {0}")]
    Negotiation(String),
    #[error("the media transport did not connect in time")]
    NotConnected,
}

/// Who carries the offer to the server and brings the answer back.
#[async_trait::async_trait]
pub trait Signaller: Send + Sync + 'static {
    async fn media_offer(&self, sdp: String) -> Result<String, ClientError>;

    /// TURN servers to gather relay candidates from (read at each negotiation).
    fn ice_servers(&self) -> Vec<ruang_proto::IceServer> {
        Vec::new()
    }
}

#[async_trait::async_trait]
impl Signaller for RoomSession {
    async fn media_offer(&self, sdp: String) -> Result<String, ClientError> {
        RoomSession::media_offer(self, sdp).await
    }

    fn ice_servers(&self) -> Vec<ruang_proto::IceServer> {
        RoomSession::ice_servers(self)
    }
}

/// Settings of a media session.
#[derive(Debug, Clone)]
pub struct MediaOptions {
    pub transport: TransportOptions,
    pub send: SendConfig,
    pub receive: ReceiveConfig,
    pub stream: StreamConfig,
    /// Open the microphone. Without it nothing is ever sent (pure listener).
    pub capture: bool,
    /// Send whenever not locally muted, even when the room does not allow it (not on stage,
    /// muted by a moderator). For tests proving that the server drops such audio.
    pub force_send: bool,
    /// Audio kept queued in the playback ring ahead of the device, in milliseconds, at least.
    /// Decoding happens in 20 ms frames, so the ring holds between this and this + 20 ms;
    /// 10 ms covers one device period of the virtual device and an Oboe burst. The engine
    /// raises it by 10 ms on every device underrun (up to 100 ms) and lowers it back after
    /// 10 s without one.
    pub playout_ms: u32,
    /// Engine tick; frames move at most this late.
    pub tick: Duration,
    /// Floor of the encoder's packet-loss hint in percent (0 = follow the server's reports
    /// alone). The server reports the loss of the speaker's own uplink; listeners' downlinks
    /// may lose more, and in-band FEC (LBRR) only protects them if the encoder spends bits
    /// on it, so a floor keeps some redundancy in every packet.
    pub min_loss_hint: u8,
    /// Earlier frames carried in each RED (RFC 2198) packet when the server negotiated RED:
    /// `None` (the default) follows the loss the server reports on our stream (0 below 2 %,
    /// 1 below 8 %, else 2: `ruang_media::red::redundancy_for_loss`; 1 until the first
    /// report); `Some(n)` fixes it (0..=2).
    pub red_redundancy: Option<usize>,
    /// How long [`MediaSession::start`] waits for the transport to connect.
    pub connect_timeout: Duration,
    /// An end-to-end encrypted room: frames are SFrame-encrypted with the keys given to
    /// [`MediaSession::set_e2ee_key`]; nothing is sent before the first one.
    pub e2ee: bool,
}

impl Default for MediaOptions {
    fn default() -> Self {
        MediaOptions {
            transport: TransportOptions::default(),
            send: SendConfig {
                initial_seq: rand::random(),
                initial_ts: rand::random(),
                ..SendConfig::default()
            },
            receive: ReceiveConfig::default(),
            stream: StreamConfig::default(),
            capture: true,
            force_send: false,
            playout_ms: 10,
            tick: Duration::from_millis(5),
            min_loss_hint: 0,
            red_redundancy: None,
            connect_timeout: Duration::from_secs(10),
            e2ee: false,
        }
    }
}

/// Per received stream (one SSRC on one of the `recvonly` slots).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlotStats {
    pub ssrc: u32,
    pub packets: u64,
    /// RFC 6464 level (0 loudest ..= 127 silence) of the last packet that carried one.
    pub rtp_level: Option<u8>,
    /// RFC 6464 voice flag of that packet.
    pub rtp_voice: bool,
    /// Packets that carried the audio-level extension.
    pub rtp_level_packets: u64,
    /// Loudest RFC 6464 level seen (lowest number).
    pub rtp_loudest: Option<u8>,
    /// Loudness (0.0–1.0) of the last decoded frame.
    pub level: f32,
    pub voice_active: bool,
    pub playing: bool,
    pub buffered_ms: u32,
    pub fec_recovered: u64,
    pub jitter: JitterStats,
}

/// Counters for tests, benchmarks and a debug screen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaStats {
    /// End-to-end encryption counters (encrypted rooms only).
    pub e2ee: Option<E2eeCounters>,
    pub frames_captured: u64,
    pub packets_sent: u64,
    /// Of those, sent as RED (RFC 2198; even with no earlier frame in it yet).
    pub red_packets_sent: u64,
    /// Earlier frames the current RED packets carry (0 when RED is off or not negotiated).
    pub red_redundancy: u8,
    pub bytes_sent: u64,
    pub send_errors: u64,
    /// Sending is allowed right now (room state or force, and not locally muted).
    pub send_allowed: bool,
    /// Loudness (0.0–1.0) of the last captured frame (shown even while muted).
    pub send_level: f32,
    pub packets_received: u64,
    /// Of those, RED packets (their redundant copies fill holes: `playout.redundant`).
    pub red_packets_received: u64,
    /// Received packets dropped because the engine fell behind.
    pub packets_dropped: u64,
    /// 20 ms frames written to the playback device.
    pub frames_played: u64,
    /// Of those, frames with at least one speaker in the mix.
    pub frames_with_audio: u64,
    /// Per kind of playout decision, summed over all speakers so far: `received`,
    /// `recovered` (FEC), `concealed` (PLC), `underruns`, `expanded`, `empty`, …
    pub playout: JitterStats,
    pub capture_overruns: u64,
    pub playback_underruns: u64,
    /// Current playout queue target in ms (starts at `MediaOptions::playout_ms`, grows on
    /// device underruns, shrinks after 10 s without).
    pub playout_target_ms: u32,
    /// Frames played 10 ms short because the playout ran later than the packets needed
    /// (`ruang_media::ReceivePipeline::trim`).
    pub playout_trims: u64,
    /// Of the trims, those made inside speech (a strongly periodic frame after 3 s without a
    /// quiet one: `ruang_media::ReceivePipeline::accelerates`).
    pub playout_accelerates: u64,
    /// Talk spurts started behind a few ms of silence because their first packet was barely
    /// in time (`ruang_media::ReceivePipeline::trim`).
    pub playout_lead_ins: u64,
    /// The Opus encoder's packet-loss hint in percent (drives in-band FEC strength): the
    /// configured value until the server reports on our stream, then the smoothed reported
    /// loss (1..=30). Without a microphone, the smoothed value alone (0 before any report).
    pub loss_hint_percent: u8,
    /// Loss the server reported in its last RTCP report block on our stream, in percent.
    pub reported_loss_percent: f32,
    /// RTCP report blocks received about our stream (on every transport so far).
    pub loss_reports: u64,
    /// One entry per SSRC heard on the current transport, in order of first packet.
    pub slots: Vec<SlotStats>,
    /// Generation of the current transport (1 = first negotiation).
    pub transport_generation: u64,
    pub connected: bool,
    /// Negotiations after the first one (reconnects, failed transports).
    pub renegotiations: u64,
    /// Scheduling the engine thread obtained (`SCHED_FIFO 10`, `nice -19` or `normal`).
    pub engine_priority: String,
    /// Engine ticks that started after their deadline (the thread was not scheduled in time).
    pub engine_late_ticks: u64,
}

struct Control {
    signaller: Arc<dyn Signaller>,
    opts: MediaOptions,
    incoming: mpsc::Sender<IncomingRtp>,
    transport: watch::Sender<Option<Arc<Transport>>>,
    generation: u64,
    shared: Arc<Shared>,
}

impl Control {
    /// Builds a new transport, negotiates it and makes it current.
    async fn negotiate(&mut self) -> Result<Arc<Transport>, MediaError> {
        self.generation += 1;
        // The server's TURN servers unless the options name their own; fresh credentials
        // at every negotiation.
        let mut transport = self.opts.transport.clone();
        if transport.ice_servers.is_empty() {
            transport.ice_servers = self.signaller.ice_servers();
        }
        let t = Transport::with_loss_feedback(
            &transport,
            self.generation,
            self.incoming.clone(),
            self.shared.loss.clone(),
        )
        .await?;
        let offer = t.create_offer().await?;
        let answer = match self.signaller.media_offer(offer).await {
            Ok(a) => a,
            Err(e) => {
                t.close().await;
                return Err(e.into());
            }
        };
        if let Err(e) = t.apply_answer(answer).await {
            t.close().await;
            return Err(e);
        }
        let t = Arc::new(t);
        if let Some(old) = self.transport.send_replace(Some(t.clone())) {
            old.close().await;
        }
        if self.generation > 1 {
            self.shared.update(|s| s.renegotiations += 1);
        }
        self.shared
            .negotiated
            .store(self.generation, Ordering::Release);
        Ok(t)
    }

    async fn close(&mut self) {
        if let Some(old) = self.transport.send_replace(None) {
            old.close().await;
        }
    }
}

/// A running media session. See the module docs.
pub struct MediaSession {
    shared: Arc<Shared>,
    control: Arc<AsyncMutex<Control>>,
    stop: watch::Sender<bool>,
    engine: Option<std::thread::JoinHandle<()>>,
    sender: Option<JoinHandle<()>>,
    watcher: Option<JoinHandle<()>>,
    /// The room session media was started for ([`MediaSession::start`]).
    session: Option<RoomSession>,
    /// Hands epoch keys to the engine (encrypted rooms).
    keys: Option<Arc<e2ee::KeySender>>,
}

/// Where epoch keys of an encrypted room go into a running media session (see
/// [`MediaSession::e2ee_keys`]); cheap to clone, usable from any task.
#[derive(Clone)]
pub struct E2eeKeySink(Arc<e2ee::KeySender>);

impl E2eeKeySink {
    /// Hands the engine a new epoch key; false if it has not taken the previous ones yet.
    pub fn install(&self, key: ruang_e2ee::EpochKey) -> bool {
        self.0.send(key)
    }

    /// Whether the media session it came from still runs (it holds the other end).
    pub fn is_live(&self) -> bool {
        Arc::strong_count(&self.0) > 1
    }
}

impl std::fmt::Debug for MediaSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSession")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Whether the room lets this client be heard: on stage and not muted on the server.
pub fn room_allows_sending(state: &SessionState) -> bool {
    state
        .room
        .you()
        .is_some_and(|p| p.role.on_stage() && !p.muted)
}

impl MediaSession {
    /// Starts media for a room session: negotiates, waits until the transport is connected,
    /// then follows the room (stage, server mute) and renegotiates after reconnects.
    pub async fn start(
        session: &RoomSession,
        device: &mut dyn AudioDevice,
        opts: MediaOptions,
    ) -> Result<MediaSession, MediaError> {
        let force = opts.force_send;
        let mut opts = opts;
        // An encrypted room never gets plaintext from this client, whatever the caller asked.
        opts.e2ee |= session
            .state()
            .room
            .room
            .as_ref()
            .is_some_and(|r| r.e2ee.is_some());
        let mut media = Self::start_with(
            Arc::new(session.clone()) as Arc<dyn Signaller>,
            device,
            opts,
        )
        .await?;
        media.shared.allowed.store(
            force || room_allows_sending(&session.state()),
            Ordering::Release,
        );
        media.session = Some(session.clone());
        media.watcher = Some(tokio::spawn(watch_room(
            session.subscribe(),
            media.control.clone(),
            media.shared.clone(),
            media.stop.subscribe(),
            force,
        )));
        Ok(media)
    }

    /// Starts media with any signaller. Sending is allowed only with `force_send` (there is
    /// no room to ask); [`MediaSession::set_allowed`] changes that.
    pub async fn start_with(
        signaller: Arc<dyn Signaller>,
        device: &mut dyn AudioDevice,
        opts: MediaOptions,
    ) -> Result<MediaSession, MediaError> {
        let shared = Arc::new(Shared::default());
        shared.allowed.store(opts.force_send, Ordering::Release);
        let send = if opts.capture {
            let capture = device.open_capture(opts.stream)?;
            Some((SendPipeline::new(opts.send)?, capture))
        } else {
            None
        };
        let playback = Some(device.open_playback(opts.stream)?);
        let (incoming_tx, incoming_rx) = mpsc::channel(1024);
        let (transport_tx, transport_rx) = watch::channel(None);
        let (stop, stop_rx) = watch::channel(false);
        let (outgoing_tx, outgoing_rx) = mpsc::channel(OUTGOING_QUEUE);
        let (recycle_tx, recycle_rx) = mpsc::channel(OUTGOING_QUEUE);
        let (trash_tx, trash_rx) = mpsc::channel(1024);
        let (keys, engine_crypto) = if opts.e2ee {
            let (tx, rx) = e2ee::channel();
            (Some(Arc::new(tx)), Some(rx))
        } else {
            (None, None)
        };
        let engine = Engine {
            shared: shared.clone(),
            send,
            receive: ReceivePipeline::new(opts.receive),
            playback,
            incoming: incoming_rx,
            outgoing: outgoing_tx,
            recycled: recycle_rx,
            trash: trash_tx,
            transport: transport_rx,
            stop: stop_rx,
            tick: opts.tick,
            playout_ms: opts.playout_ms,
            min_loss_hint: opts.min_loss_hint,
            red_redundancy: opts.red_redundancy,
            e2ee: engine_crypto,
        };
        let connect_timeout = opts.connect_timeout;
        let mut control = Control {
            signaller,
            opts,
            incoming: incoming_tx,
            transport: transport_tx,
            generation: 0,
            shared: shared.clone(),
        };
        let sender = tokio::spawn(send_task(outgoing_rx, recycle_tx, shared.clone()));
        tokio::spawn(trash_task(trash_rx));
        let engine = std::thread::Builder::new()
            .name("ruang-audio".into())
            .spawn(move || engine.run())
            .map_err(|e| MediaError::Device(DeviceError::Backend(format!("engine thread: {e}"))))?;
        let media = |control: Control, engine: std::thread::JoinHandle<()>| MediaSession {
            shared: shared.clone(),
            control: Arc::new(AsyncMutex::new(control)),
            stop: stop.clone(),
            engine: Some(engine),
            sender: Some(sender),
            watcher: None,
            session: None,
            keys,
        };
        let t = match control.negotiate().await {
            Ok(t) => t,
            Err(e) => {
                media(control, engine).stop().await;
                return Err(e);
            }
        };
        if !t.wait_connected(connect_timeout).await {
            media(control, engine).stop().await;
            return Err(MediaError::NotConnected);
        }
        Ok(media(control, engine))
    }

    /// Local mute, immediate: no packet leaves while muted. (Telling the room is the
    /// app's business: `RoomSession::set_muted`.)
    pub fn set_muted(&self, muted: bool) {
        self.shared.local_muted.store(muted, Ordering::Release);
    }

    pub fn is_muted(&self) -> bool {
        self.shared.local_muted.load(Ordering::Acquire)
    }

    /// Output volume, 0.0 (silent) to 1.0 (full), applied to the mixed output.
    pub fn set_output_volume(&self, volume: f32) {
        let attenuation = ((1.0 - volume.clamp(0.0, 1.0)) * 1000.0).round() as u32;
        self.shared
            .attenuation_milli
            .store(attenuation, Ordering::Relaxed);
    }

    /// Hands the engine a new epoch key of the room's group (encrypted rooms, see
    /// [`MediaOptions::e2ee`]). False if this session is not encrypted or the engine has
    /// not taken the previous keys yet.
    pub fn set_e2ee_key(&self, key: ruang_e2ee::EpochKey) -> bool {
        self.keys.as_ref().is_some_and(|k| k.send(key))
    }

    /// Where a [`crate::e2ee::KeyAgent`] puts the room's epoch keys (encrypted sessions only).
    pub fn e2ee_keys(&self) -> Option<E2eeKeySink> {
        self.keys.clone().map(E2eeKeySink)
    }

    /// Overrides what the room allows (sessions started with [`MediaSession::start_with`]).
    pub fn set_allowed(&self, allowed: bool) {
        self.shared.allowed.store(allowed, Ordering::Release);
    }

    pub fn stats(&self) -> MediaStats {
        let mut s = self
            .shared
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        s.send_allowed = self.shared.may_send();
        s
    }

    /// Polls the stats every 10 ms until `pred` holds or `timeout` passes.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&MediaStats) -> bool,
    ) -> Result<MediaStats, MediaStats> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let s = self.stats();
            if pred(&s) {
                return Ok(s);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(s);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Negotiates a new transport now (the server replaces the old one).
    pub async fn renegotiate(&self) -> Result<(), MediaError> {
        let mut c = self.control.lock().await;
        let timeout = c.opts.connect_timeout;
        let t = c.negotiate().await?;
        drop(c);
        if t.wait_connected(timeout).await {
            Ok(())
        } else {
            Err(MediaError::NotConnected)
        }
    }

    /// The device's network changed (Android: `ConnectivityManager`'s default-network
    /// callback; a new address, Wi-Fi to mobile data). The old transport's addresses may be
    /// gone, and nothing would tell for seconds (ICE consent fails after ~30 s). So, at once:
    /// the signalling reconnects without backoff (same member, same role and place: a
    /// reconnect, not a rejoin), then a new transport is negotiated over it — new ICE
    /// credentials and candidates gathered on the current addresses, a fresh DTLS — which the
    /// server puts in place of the member's old peer. The engine, its jitter buffers' learned
    /// targets, the device streams and the mute state carry on. Returns once the new transport
    /// is connected (or fails after `MediaOptions::connect_timeout`).
    pub async fn network_changed(&self) -> Result<(), MediaError> {
        self.network_switch().network_changed().await
    }

    /// A handle that can run [`MediaSession::network_changed`] without borrowing the session
    /// (for callers that keep the session behind a lock).
    pub fn network_switch(&self) -> NetworkSwitch {
        NetworkSwitch {
            control: self.control.clone(),
            session: self.session.clone(),
        }
    }

    /// Stops the engine, closes the transport and the device streams. With a virtual device,
    /// the recording is complete after this returns.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        self.stop.send_replace(true);
        if let Some(w) = self.watcher.take() {
            let _ = w.await;
        }
        if let Some(e) = self.engine.take() {
            // It sees the stop flag within one tick.
            let _ = tokio::task::spawn_blocking(move || e.join()).await;
        }
        // The engine's sender is gone with it: the send task drains and ends.
        if let Some(s) = self.sender.take() {
            let _ = s.await;
        }
        self.control.lock().await.close().await;
    }
}

/// See [`MediaSession::network_switch`].
#[derive(Clone)]
pub struct NetworkSwitch {
    control: Arc<AsyncMutex<Control>>,
    session: Option<RoomSession>,
}

impl NetworkSwitch {
    /// See [`MediaSession::network_changed`].
    pub async fn network_changed(&self) -> Result<(), MediaError> {
        let mut c = self.control.lock().await;
        let timeout = c.opts.connect_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        if let Some(s) = &self.session {
            s.network_changed().await;
        }
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if let Some(s) = &self.session {
                s.wait_for(left, |st| st.connection == ConnectionState::Connected)
                    .await
                    .map_err(|_| MediaError::NotConnected)?;
            }
            match c.negotiate().await {
                Ok(t) => {
                    drop(c);
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    return if t.wait_connected(left).await {
                        Ok(())
                    } else {
                        Err(MediaError::NotConnected)
                    };
                }
                // The offer went out while the signalling was still switching: again.
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "renegotiation after a network change; retrying");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// Follows the room: what it allows, and reconnects (renegotiate after every new welcome;
/// also when the transport failed while the signalling is up).
async fn watch_room(
    mut state: watch::Receiver<SessionState>,
    control: Arc<AsyncMutex<Control>>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    force: bool,
) {
    let mut was_connected = true;
    let mut retry = tokio::time::interval(Duration::from_secs(1));
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut needs_media = false;
    let mut media_closed = state.borrow().room.media_closed;
    loop {
        tokio::select! {
            changed = state.changed() => if changed.is_err() { return },
            _ = stop.changed() => return,
            _ = retry.tick() => {}
        }
        if *stop.borrow() {
            return;
        }
        let s = state.borrow_and_update().clone();
        shared
            .allowed
            .store(force || room_allows_sending(&s), Ordering::Release);
        let connected = s.connection == ConnectionState::Connected;
        if matches!(s.connection, ConnectionState::Ended { .. }) {
            control.lock().await.close().await;
            return;
        }
        if connected && !was_connected {
            needs_media = true;
        }
        if s.room.media_closed != media_closed {
            // The server dropped our peer (consent timeout, failure): offer again now
            // instead of waiting for our side to notice.
            media_closed = s.room.media_closed;
            needs_media = true;
        }
        was_connected = connected;
        if connected && !needs_media {
            let failed = {
                let c = control.lock().await;
                let t = c.transport.borrow().clone();
                t.is_none_or(|t| {
                    matches!(
                        t.state(),
                        webrtc::peer_connection::RTCPeerConnectionState::Failed
                            | webrtc::peer_connection::RTCPeerConnectionState::Closed
                    )
                })
            };
            needs_media = failed;
        }
        if connected && needs_media {
            let seen = shared.negotiated.load(Ordering::Acquire);
            let mut c = control.lock().await;
            if shared.negotiated.load(Ordering::Acquire) != seen {
                // Negotiated meanwhile (`MediaSession::network_changed` held the lock).
                needs_media = false;
                continue;
            }
            match c.negotiate().await {
                Ok(_) => needs_media = false,
                Err(e) => tracing::debug!(error = %e, "media renegotiation failed; retrying"),
            }
        }
    }
}
