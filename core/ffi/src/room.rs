//! `Room`: one joined room, its commands, and its state listener.

use crate::e2ee::{E2eeInfo, E2eeListener};
use crate::error::RuangError;
use crate::runtime::{block_on, handle};
use crate::types::{ParticipantView, RoomViewState};
use ruang_client::e2ee::KeyAgent;
use ruang_client::media::ruang_media::device::{
    AudioDevice, Pacing, Source, VirtualConfig, VirtualDevice,
};
use ruang_client::media::{MediaOptions, MediaSession};
use ruang_client::{ApiClient, RoomSession, SessionOptions};
use ruang_proto::UserId;
use std::sync::{Arc, Mutex};

type Result<T> = std::result::Result<T, RuangError>;

/// Receives a room's state: the current state first, then every change. Called from a
/// core thread; do not block it for long.
#[uniffi::export(with_foreign)]
pub trait RoomListener: Send + Sync {
    fn on_state(&self, state: RoomViewState);
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct AudiencePage {
    pub participants: Vec<ParticipantView>,
    pub next: Option<u32>,
    pub total: u32,
}

/// How to run audio. On Android the core opens Oboe streams by itself (output as media,
/// voice-communication input while on stage). `mic_wav` / `record_wav` select a virtual
/// device instead (tests, bots): the WAV is played as the microphone in real time and the
/// mixed output is recorded and written to `record_wav` when audio stops.
#[derive(Debug, Clone, uniffi::Record)]
pub struct AudioConfig {
    pub mic_wav: Option<String>,
    pub record_wav: Option<String>,
    /// Open the microphone (speakers); listeners can leave it closed.
    pub capture: bool,
}

/// What the audio engine has done so far.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct AudioStats {
    pub connected: bool,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub frames_played: u64,
    /// Played frames that had someone's audio in them.
    pub frames_with_audio: u64,
    /// Loudest level heard on any slot recently, 0.0–1.0.
    pub output_level: f32,
    pub send_level: f32,
    /// Encrypted rooms: frames sent encrypted, and received frames that decrypted.
    #[uniffi(default = 0)]
    pub frames_encrypted: u64,
    #[uniffi(default = 0)]
    pub frames_decrypted: u64,
    /// Received frames that did not decrypt (another epoch, a forgery).
    #[uniffi(default = 0)]
    pub frames_undecryptable: u64,
}

/// The device audio runs on: virtual (tests, bots) or the platform's.
enum Device {
    Virtual(VirtualDevice),
    #[cfg(target_os = "android")]
    Oboe(ruang_client::media::ruang_media::device::oboe_backend::OboeDevice),
}

impl Device {
    fn as_device(&mut self) -> &mut dyn AudioDevice {
        match self {
            Device::Virtual(d) => d,
            #[cfg(target_os = "android")]
            Device::Oboe(d) => d,
        }
    }
}

struct Audio {
    media: MediaSession,
    device: Device,
    record_wav: Option<String>,
}

#[derive(uniffi::Object)]
pub struct Room {
    id: String,
    session: RoomSession,
    audio: Mutex<Option<Audio>>,
    /// Encrypted rooms: this device's key agent, which keys every media session started here.
    agent: Option<KeyAgent>,
}

fn device_for(config: &AudioConfig) -> Result<Device> {
    if config.mic_wav.is_some() || config.record_wav.is_some() {
        let source = match &config.mic_wav {
            Some(path) => Source::wav(path, true).map_err(|e| RuangError::InvalidInput {
                code: "mic_wav".into(),
                detail: e.to_string(),
            })?,
            None => Source::Silence,
        };
        let device = VirtualDevice::new(
            VirtualConfig {
                pacing: Pacing::Realtime { tick_ms: 10 },
                record_capacity: 48_000 * 300,
            },
            source,
        );
        return Ok(Device::Virtual(device));
    }
    #[cfg(target_os = "android")]
    {
        Ok(Device::Oboe(
            ruang_client::media::ruang_media::device::oboe_backend::OboeDevice,
        ))
    }
    #[cfg(not(target_os = "android"))]
    {
        Err(RuangError::InvalidInput {
            code: "no_audio_device".into(),
            detail:
                "no audio device on this platform; set micWav or recordWav to use a virtual one"
                    .into(),
        })
    }
}

impl Room {
    /// The signalling session (for the reactions and chat commands in `chat.rs`).
    pub(crate) fn session(&self) -> &RoomSession {
        &self.session
    }

    /// Joins; in an encrypted room also starts this device's key agent with `identity`
    /// (see `RuangClient.set_device_identity`).
    pub(crate) fn join(
        api: ApiClient,
        room_id: String,
        link_token: Option<String>,
        identity: Vec<u8>,
        listener: Arc<dyn RoomListener>,
    ) -> Result<Arc<Room>> {
        let token = api.token().unwrap_or_default().to_owned();
        let opts = SessionOptions {
            link_token,
            ..SessionOptions::default()
        };
        let session = block_on(RoomSession::join(api.ws_url(&room_id), token, opts))?;
        let encrypted = session
            .state()
            .room
            .room
            .as_ref()
            .is_some_and(|r| r.e2ee.is_some());
        let agent = if encrypted {
            // A fresh MLS device from the kept identity: group state is not kept, so a
            // device joins each room (again) through a moderator's device.
            let device = crate::e2ee::restore(session.me().as_str(), &identity)?;
            let _rt = handle().enter();
            Some(KeyAgent::start(&session, api.clone(), device))
        } else {
            None
        };
        let mut rx = session.subscribe();
        let id = room_id.clone();
        // A plain thread (not a runtime worker) calls the listener, so the listener may
        // call back into the core.
        std::thread::Builder::new()
            .name("ruang-room".into())
            .spawn(move || {
                let rt = handle();
                let first = rx.borrow_and_update().clone();
                listener.on_state(RoomViewState::from_session(&id, &first));
                while rt.block_on(rx.changed()).is_ok() {
                    let state = rx.borrow_and_update().clone();
                    listener.on_state(RoomViewState::from_session(&id, &state));
                }
            })
            .map_err(|e| RuangError::Server {
                detail: format!("cannot start the room listener: {e}"),
            })?;
        Ok(Arc::new(Room {
            id: room_id,
            session,
            audio: Mutex::new(None),
            agent,
        }))
    }
}

#[uniffi::export]
impl Room {
    pub fn id(&self) -> String {
        self.id.clone()
    }

    /// The current state (the same value the listener last got or is about to get).
    pub fn state(&self) -> RoomViewState {
        RoomViewState::from_session(&self.id, &self.session.state())
    }

    pub fn my_user_id(&self) -> String {
        self.session.me().0.clone()
    }

    pub fn leave(&self) -> Result<()> {
        self.stop_audio()?;
        Ok(block_on(self.session.leave(false))?)
    }

    /// Leaves without anyone being told.
    pub fn leave_quietly(&self) -> Result<()> {
        self.stop_audio()?;
        Ok(block_on(self.session.leave(true))?)
    }

    pub fn raise_hand(&self) -> Result<()> {
        Ok(block_on(self.session.raise_hand())?)
    }

    pub fn lower_hand(&self) -> Result<()> {
        Ok(block_on(self.session.lower_hand())?)
    }

    pub fn accept_invite(&self) -> Result<()> {
        Ok(block_on(self.session.accept_invite())?)
    }

    pub fn decline_invite(&self) -> Result<()> {
        Ok(block_on(self.session.decline_invite())?)
    }

    /// Mutes or unmutes yourself on stage. Muting is immediate and local (no packet leaves
    /// from now on); the room is told too.
    pub fn set_muted(&self, muted: bool) -> Result<()> {
        if muted {
            self.with_audio(|a| a.media.set_muted(true));
        }
        block_on(self.session.set_muted(muted))?;
        if !muted {
            self.with_audio(|a| a.media.set_muted(false));
        }
        Ok(())
    }

    /// Starts the audio transport and engine for this room (see [`AudioConfig`]).
    pub fn start_audio(&self, config: AudioConfig) -> Result<()> {
        self.stop_audio()?;
        let mut device = device_for(&config)?;
        let opts = MediaOptions {
            capture: config.capture,
            ..MediaOptions::default()
        };
        let media = block_on(MediaSession::start(&self.session, device.as_device(), opts))
            .map_err(|e| RuangError::Network {
                detail: format!("audio could not start: {e}"),
            })?;
        if let Some(agent) = &self.agent {
            // The engine sends nothing before its first key, and opens only the group's.
            let sink = media.e2ee_keys().ok_or_else(|| RuangError::Server {
                detail: "the encrypted room's audio started unencrypted".into(),
            })?;
            agent.attach(sink);
        }
        *self.audio.lock().unwrap_or_else(|e| e.into_inner()) = Some(Audio {
            media,
            device,
            record_wav: config.record_wav,
        });
        Ok(())
    }

    /// Stops audio; with a virtual device and `record_wav`, writes the recording.
    pub fn stop_audio(&self) -> Result<()> {
        let audio = self.audio.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(mut audio) = audio else {
            return Ok(());
        };
        block_on(audio.media.stop());
        #[allow(irrefutable_let_patterns)] // on Android there is a second variant
        if let (Device::Virtual(v), Some(path)) = (&mut audio.device, &audio.record_wav) {
            let samples = v.take_recording();
            ruang_client::media::ruang_media::wav::write_wav(path, &samples).map_err(|e| {
                RuangError::InvalidInput {
                    code: "record_wav".into(),
                    detail: e.to_string(),
                }
            })?;
        }
        Ok(())
    }

    /// Call when the device's network changes (Android: `ConnectivityManager`'s default
    /// network callback — `onAvailable` of a new network, `onLost`, a new address): the
    /// signalling reconnects at once and audio moves to a new transport on the current
    /// addresses, without leaving the room (same role, same place). Blocks until the new
    /// transport is connected or gives up; call it off the main thread.
    pub fn network_changed(&self) -> Result<()> {
        let switch = self.with_audio(|a| a.media.network_switch());
        match switch {
            Some(switch) => block_on(switch.network_changed()).map_err(|e| RuangError::Network {
                detail: format!("audio did not come back after the network change: {e}"),
            }),
            None => {
                block_on(self.session.network_changed());
                Ok(())
            }
        }
    }

    /// Output volume, 0.0–1.0.
    pub fn set_output_volume(&self, volume: f32) {
        self.with_audio(|a| a.media.set_output_volume(volume));
    }

    pub fn audio_stats(&self) -> Option<AudioStats> {
        self.with_audio(|a| {
            let s = a.media.stats();
            let e2ee = s.e2ee.unwrap_or_default();
            AudioStats {
                connected: s.connected,
                packets_sent: s.packets_sent,
                packets_received: s.packets_received,
                frames_played: s.frames_played,
                frames_with_audio: s.frames_with_audio,
                output_level: s.slots.iter().map(|x| x.level).fold(0.0, f32::max),
                send_level: s.send_level,
                frames_encrypted: e2ee.frames_encrypted,
                frames_decrypted: e2ee.frames_decrypted,
                frames_undecryptable: e2ee.frames_dropped,
            }
        })
    }

    /// The room's encryption status now (the value the e2ee listener last got or is about to).
    pub fn e2ee_info(&self) -> E2eeInfo {
        match &self.agent {
            Some(agent) => E2eeInfo::from_status(&agent.status()),
            None => E2eeInfo::plain(),
        }
    }

    /// Follows the room's encryption status: the current value first, then every change,
    /// from a core thread. A plain room gets one `encrypted: false` value.
    pub fn set_e2ee_listener(&self, listener: Arc<dyn E2eeListener>) -> Result<()> {
        let Some(agent) = &self.agent else {
            listener.on_e2ee(E2eeInfo::plain());
            return Ok(());
        };
        let mut rx = agent.subscribe();
        std::thread::Builder::new()
            .name("ruang-e2ee".into())
            .spawn(move || {
                let rt = handle();
                let mut last = E2eeInfo::from_status(&rx.borrow_and_update());
                listener.on_e2ee(last.clone());
                // Ends when the agent stops (the room is closed).
                while rt.block_on(rx.changed()).is_ok() {
                    let now = E2eeInfo::from_status(&rx.borrow_and_update());
                    if now != last {
                        last = now;
                        listener.on_e2ee(last.clone());
                    }
                }
            })
            .map_err(|e| RuangError::Server {
                detail: format!("cannot start the e2ee listener: {e}"),
            })?;
        Ok(())
    }

    pub fn leave_stage(&self) -> Result<()> {
        Ok(block_on(self.session.leave_stage())?)
    }

    pub fn invite_to_speak(&self, user_id: String) -> Result<()> {
        Ok(block_on(self.session.invite_to_speak(&UserId(user_id)))?)
    }

    pub fn move_to_audience(&self, user_id: String) -> Result<()> {
        Ok(block_on(self.session.move_to_audience(&UserId(user_id)))?)
    }

    pub fn mute(&self, user_id: String) -> Result<()> {
        Ok(block_on(self.session.mute(&UserId(user_id)))?)
    }

    pub fn make_moderator(&self, user_id: String) -> Result<()> {
        Ok(block_on(self.session.make_moderator(&UserId(user_id)))?)
    }

    pub fn remove(&self, user_id: String) -> Result<()> {
        Ok(block_on(self.session.remove(&UserId(user_id)))?)
    }

    pub fn set_hands_enabled(&self, enabled: bool) -> Result<()> {
        Ok(block_on(self.session.set_hands_enabled(enabled))?)
    }

    /// Moderators: start or stop recording (everyone is told; see `RoomViewState.recording`).
    pub fn set_recording(&self, on: bool) -> Result<()> {
        Ok(block_on(self.session.set_recording(on))?)
    }

    pub fn end_room(&self) -> Result<()> {
        Ok(block_on(self.session.end_room())?)
    }

    pub fn audience_page(&self, cursor: u32, limit: u32) -> Result<AudiencePage> {
        self.audience_page_inner(cursor, limit)
    }
}

impl Room {
    fn with_audio<T>(&self, f: impl FnOnce(&Audio) -> T) -> Option<T> {
        self.audio
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(f)
    }

    fn audience_page_inner(&self, cursor: u32, limit: u32) -> Result<AudiencePage> {
        let (participants, next, total) = block_on(self.session.audience_page(cursor, limit))?;
        let state = self.session.state();
        let view = |p: ruang_proto::Participant| {
            let level = state.room.levels.get(&p.user.id).copied().unwrap_or(0.0);
            ParticipantView {
                user: p.user.into(),
                role: p.role.into(),
                muted: p.muted,
                followed_by_speakers: p.followed_by_speakers,
                level,
                speaking: false,
            }
        };
        Ok(AudiencePage {
            participants: participants.into_iter().map(view).collect(),
            next,
            total,
        })
    }
}
