//! `Room`: one joined room, its commands, and its state listener.

use crate::error::RuangError;
use crate::runtime::{block_on, handle};
use crate::types::{ParticipantView, RoomViewState};
use ruang_client::{ApiClient, RoomSession, SessionOptions};
use ruang_proto::UserId;
use std::sync::Arc;

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

#[derive(uniffi::Object)]
pub struct Room {
    id: String,
    session: RoomSession,
}

impl Room {
    pub(crate) fn join(
        api: ApiClient,
        room_id: String,
        link_token: Option<String>,
        listener: Arc<dyn RoomListener>,
    ) -> Result<Arc<Room>> {
        let token = api.token().unwrap_or_default().to_owned();
        let opts = SessionOptions {
            link_token,
            ..SessionOptions::default()
        };
        let session = block_on(RoomSession::join(api.ws_url(&room_id), token, opts))?;
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
                message: format!("cannot start the room listener: {e}"),
            })?;
        Ok(Arc::new(Room {
            id: room_id,
            session,
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
        Ok(block_on(self.session.leave(false))?)
    }

    /// Leaves without anyone being told.
    pub fn leave_quietly(&self) -> Result<()> {
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

    pub fn set_muted(&self, muted: bool) -> Result<()> {
        Ok(block_on(self.session.set_muted(muted))?)
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

    pub fn end_room(&self) -> Result<()> {
        Ok(block_on(self.session.end_room())?)
    }

    pub fn audience_page(&self, cursor: u32, limit: u32) -> Result<AudiencePage> {
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
