//! `RuangClient`: account, invites, profiles, hallway, rooms.

use crate::error::RuangError;
use crate::room::{Room, RoomListener};
use crate::runtime::{block_on, handle};
use crate::types::{
    ClipView, EventSummary, Invite, LinkTarget, NotificationPage, Profile, ReplayView, RoomKind,
    RoomSummary, SearchResults, UserPage, UserSummary,
};
use ruang_client::ApiClient;
use ruang_proto::ProfileUpdate;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

type Result<T> = std::result::Result<T, RuangError>;

#[derive(Debug, Clone, uniffi::Record)]
pub struct ClientConfig {
    /// Base URL of the server, e.g. `https://ruang.example`.
    pub server_url: String,
    /// A directory the core may write to (app-private storage).
    pub data_dir: String,
    pub user_agent: Option<String>,
    /// Keep the session token in `data_dir/session` (0600). Android keeps it itself,
    /// encrypted with a Keystore key, and sets this to false.
    pub persist_session: bool,
}

/// Receives the hallway: the current list first, then every change.
#[uniffi::export(with_foreign)]
pub trait HallwayListener: Send + Sync {
    fn on_hallway(&self, rooms: Vec<RoomSummary>);
    fn on_error(&self, error: RuangError);
}

/// Stops a hallway watch.
#[derive(uniffi::Object)]
pub struct HallwayWatch {
    stop: Arc<AtomicBool>,
}

#[uniffi::export]
impl HallwayWatch {
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Drop for HallwayWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[derive(uniffi::Object)]
pub struct RuangClient {
    config: ClientConfig,
    api: RwLock<ApiClient>,
    /// This device's identity for encrypted rooms (`set_device_identity`); made on first
    /// use when the app has not set one (then it lasts as long as this client).
    identity: RwLock<Option<Vec<u8>>>,
}

impl RuangClient {
    fn api(&self) -> ApiClient {
        self.api.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn authed(&self) -> Result<ApiClient> {
        let api = self.api();
        if api.token().is_none() {
            return Err(RuangError::Unauthorized {
                detail: "not signed in".into(),
            });
        }
        Ok(api)
    }

    fn identity(&self) -> Result<Vec<u8>> {
        let mut identity = self.identity.write().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = identity.as_ref() {
            return Ok(i.clone());
        }
        let new = crate::e2ee::new_device_identity()?;
        *identity = Some(new.clone());
        Ok(new)
    }

    fn session_file(&self) -> PathBuf {
        PathBuf::from(&self.config.data_dir).join("session")
    }

    fn set_token(&self, token: Option<String>) -> Result<()> {
        let mut api = self.api.write().unwrap_or_else(|e| e.into_inner());
        let fresh = api.clone().without_token();
        *api = match &token {
            Some(t) => fresh.with_token(t.clone()),
            None => fresh,
        };
        drop(api);
        if self.config.persist_session {
            let path = self.session_file();
            match token {
                Some(t) => write_private(&path, &t)?,
                None => {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        Ok(())
    }
}

fn write_private(path: &std::path::Path, contents: &str) -> Result<()> {
    use std::io::Write;
    let io = |e: std::io::Error| RuangError::InvalidInput {
        code: "data_dir".into(),
        detail: format!("cannot write {}: {e}", path.display()),
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(contents.as_bytes()).map_err(io)
}

/// What a link opened in the app points at: `…/r/ROOM[?t=KEY]`, `…/i/CODE`, or the same
/// with the `ruang://` scheme.
pub fn parse_link(link: &str) -> LinkTarget {
    if let Some((room_id, link_token)) = ruang_client::api::parse_room_link(link) {
        return LinkTarget::Room {
            room_id,
            link_token,
        };
    }
    let Ok(u) = url::Url::parse(link.trim()) else {
        return LinkTarget::Unknown;
    };
    let segs: Vec<String> = match u.scheme() {
        "ruang" => std::iter::once(u.host_str().unwrap_or("").to_owned())
            .chain(u.path_segments().into_iter().flatten().map(str::to_owned))
            .collect(),
        "http" | "https" => u
            .path_segments()
            .into_iter()
            .flatten()
            .map(str::to_owned)
            .collect(),
        _ => return LinkTarget::Unknown,
    };
    let segs: Vec<&String> = segs.iter().filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        [.., kind, code] if kind.as_str() == "i" => LinkTarget::Invite {
            code: ruang_proto::normalize_invite_code(code),
        },
        _ => LinkTarget::Unknown,
    }
}

#[uniffi::export]
impl RuangClient {
    #[uniffi::constructor]
    pub fn new(config: ClientConfig) -> Result<Arc<Self>> {
        let mut api = ApiClient::new(&config.server_url)?;
        if let Some(ua) = &config.user_agent {
            api = api.with_user_agent(ua)?;
        }
        std::fs::create_dir_all(&config.data_dir).map_err(|e| RuangError::InvalidInput {
            code: "data_dir".into(),
            detail: format!("cannot create {}: {e}", config.data_dir),
        })?;
        Ok(Arc::new(RuangClient {
            config,
            api: RwLock::new(api),
            identity: RwLock::new(None),
        }))
    }

    /// Creates an account with an invite code (or a whole invite link) and signs in.
    pub fn signup(&self, invite: String, handle: String, name: String) -> Result<Profile> {
        let mut api = self.api();
        let s = block_on(api.signup(&invite, &handle, &name))?;
        self.set_token(Some(s.token))?;
        Ok(s.user.into())
    }

    /// Who an invite code is from (`None` for the admin invite); fails if it is not valid.
    pub fn check_invite(&self, code: String) -> Result<Option<UserSummary>> {
        let check = block_on(
            self.api()
                .check_invite(&ruang_proto::normalize_invite_code(&code)),
        )?;
        Ok(check.invited_by.map(Into::into))
    }

    /// Signs in with a saved token (or, with `None`, the one kept in `data_dir`), checking
    /// it with the server.
    pub fn restore_session(&self, token: Option<String>) -> Result<Profile> {
        let token = match token {
            Some(t) => t,
            None => std::fs::read_to_string(self.session_file())
                .map(|t| t.trim().to_owned())
                .map_err(|_| RuangError::Unauthorized {
                    detail: "no saved session".into(),
                })?,
        };
        let api = self.api().without_token().with_token(token.clone());
        let me = block_on(api.me())?;
        self.set_token(Some(token))?;
        Ok(me.into())
    }

    /// The current session token, for the app to keep (encrypted) across restarts.
    pub fn session_token(&self) -> Option<String> {
        self.api().token().map(str::to_owned)
    }

    pub fn logout(&self) -> Result<()> {
        block_on(self.authed()?.logout())?;
        self.set_token(None)
    }

    pub fn logout_everywhere(&self) -> Result<()> {
        block_on(self.authed()?.logout_all())?;
        self.set_token(None)
    }

    pub fn me(&self) -> Result<Profile> {
        Ok(block_on(self.authed()?.me())?.into())
    }

    pub fn profile(&self, handle: String) -> Result<Profile> {
        Ok(block_on(self.authed()?.profile(&handle))?.into())
    }

    pub fn update_profile(&self, name: Option<String>, bio: Option<String>) -> Result<Profile> {
        let update = ProfileUpdate {
            name,
            bio,
            links: None,
        };
        Ok(block_on(self.authed()?.update_profile(&update))?.into())
    }

    pub fn follow(&self, handle: String) -> Result<Profile> {
        Ok(block_on(self.authed()?.follow(&handle))?.into())
    }

    pub fn unfollow(&self, handle: String) -> Result<Profile> {
        Ok(block_on(self.authed()?.unfollow(&handle))?.into())
    }

    /// Your unused invite codes with their share links.
    pub fn invites(&self) -> Result<Vec<Invite>> {
        Ok(block_on(self.authed()?.invites())?
            .into_iter()
            .map(|i| Invite {
                code: i.code,
                link: i.link,
            })
            .collect())
    }

    /// Mints a new invite code (admins only).
    pub fn create_invite(&self) -> Result<Invite> {
        let i = block_on(self.authed()?.create_invite())?;
        Ok(Invite {
            code: i.code,
            link: i.link,
        })
    }

    pub fn revoke_invite(&self, code: String) -> Result<()> {
        Ok(block_on(self.authed()?.revoke_invite(&code))?)
    }

    pub fn parse_link(&self, link: String) -> LinkTarget {
        parse_link(&link)
    }

    pub fn hallway(&self) -> Result<Vec<RoomSummary>> {
        Ok(block_on(self.authed()?.hallway())?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Watches the hallway: the listener gets the current list at once, then each change,
    /// checked every `interval_ms` (from a core thread). Stop it with the returned handle.
    pub fn watch_hallway(
        &self,
        listener: Arc<dyn HallwayListener>,
        interval_ms: u32,
    ) -> Result<Arc<HallwayWatch>> {
        let api = self.authed()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let interval = Duration::from_millis(interval_ms.max(250) as u64);
        std::thread::Builder::new()
            .name("ruang-hallway".into())
            .spawn(move || {
                let rt = handle();
                let mut last: Option<Vec<RoomSummary>> = None;
                while !stopped.load(Ordering::Relaxed) {
                    match rt.block_on(api.hallway()) {
                        Ok(rooms) => {
                            let rooms: Vec<RoomSummary> =
                                rooms.into_iter().map(Into::into).collect();
                            if last.as_ref() != Some(&rooms) {
                                listener.on_hallway(rooms.clone());
                                last = Some(rooms);
                            }
                        }
                        Err(e) => listener.on_error(e.into()),
                    }
                    let mut waited = Duration::ZERO;
                    while waited < interval && !stopped.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(50));
                        waited += Duration::from_millis(50);
                    }
                }
            })
            .map_err(|e| RuangError::Server {
                detail: format!("cannot start the hallway watcher: {e}"),
            })?;
        Ok(Arc::new(HallwayWatch { stop }))
    }

    /// The hallway's "Upcoming" section: scheduled rooms, followed hosts first.
    pub fn upcoming_events(&self) -> Result<Vec<EventSummary>> {
        Ok(block_on(self.authed()?.events())?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Schedules a room. `starts_at`: RFC 3339, or a local time read in `time_zone`.
    pub fn create_event(
        &self,
        title: String,
        starts_at: String,
        time_zone: Option<String>,
        description: String,
        kind: RoomKind,
        cohosts: Vec<String>,
    ) -> Result<EventSummary> {
        let req = ruang_proto::CreateEventRequest {
            title,
            description,
            starts_at,
            time_zone,
            kind: kind.into(),
            cohosts,
        };
        Ok(block_on(self.authed()?.create_event(&req))?.into())
    }

    /// "Notify me" on or off.
    pub fn notify_event(&self, event_id: String, on: bool) -> Result<EventSummary> {
        Ok(block_on(self.authed()?.notify_event(&event_id, on))?.into())
    }

    /// The host cancels an event; those who asked to be notified hear.
    pub fn cancel_event(&self, event_id: String) -> Result<()> {
        Ok(block_on(self.authed()?.cancel_event(&event_id))?)
    }

    /// The host starts the event's room; co-hosts become its moderators.
    pub fn start_event(&self, event_id: String) -> Result<RoomSummary> {
        Ok(block_on(self.authed()?.start_event(&event_id))?.into())
    }

    /// One scheduled room by id (an event link `/e/ID`).
    pub fn event(&self, event_id: String) -> Result<EventSummary> {
        Ok(block_on(self.authed()?.event(&event_id))?.into())
    }

    /// Who follows `handle` (`following` false) or whom they follow (true), a page at a time.
    pub fn follow_list(
        &self,
        handle: String,
        following: bool,
        cursor: Option<String>,
    ) -> Result<UserPage> {
        let which = if following { "following" } else { "followers" };
        let page =
            block_on(
                self.authed()?
                    .follow_list(&handle, which, cursor.as_deref(), Some(50)),
            )?;
        Ok(UserPage {
            users: page.users.into_iter().map(Into::into).collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// People, live rooms and scheduled rooms matching `query` (words match word starts).
    pub fn search(&self, query: String) -> Result<SearchResults> {
        let r = block_on(self.authed()?.search(&query))?;
        Ok(SearchResults {
            people: r.people.into_iter().map(Into::into).collect(),
            rooms: r.rooms.into_iter().map(Into::into).collect(),
            events: r.events.into_iter().map(Into::into).collect(),
        })
    }

    /// A page of the notification feed, newest first (`cursor` from the previous page).
    pub fn notifications(&self, cursor: Option<String>, limit: u32) -> Result<NotificationPage> {
        let p = block_on(
            self.authed()?
                .notifications(cursor.as_deref(), Some(limit.clamp(1, 100))),
        )?;
        Ok(NotificationPage {
            notifications: p.notifications.into_iter().map(Into::into).collect(),
            unread: p.unread,
            read_up_to: p.read_up_to,
            next_cursor: p.next_cursor,
        })
    }

    /// Moves the read marker to `up_to` (Unix ms; it never moves back).
    pub fn mark_notifications_read(&self, up_to: i64) -> Result<()> {
        Ok(block_on(self.authed()?.mark_notifications_read(up_to))?)
    }

    /// Registers a push endpoint (a UnifiedPush distributor's URL) with the app's own
    /// RFC 8291 keys: `p256dh` (uncompressed P-256 public key) and `auth` (16 bytes),
    /// both base64url. The server encrypts every push to them (aes128gcm).
    pub fn add_push_endpoint(&self, endpoint: String, p256dh: String, auth: String) -> Result<()> {
        let req = ruang_proto::PushSubscriptionRequest {
            endpoint,
            keys: ruang_proto::PushKeys { p256dh, auth },
        };
        Ok(block_on(self.authed()?.add_push_subscription(&req))?)
    }

    /// Forgets a push endpoint (the distributor unregistered it).
    pub fn remove_push_endpoint(&self, endpoint: String) -> Result<()> {
        Ok(block_on(
            self.authed()?.remove_push_subscription(&endpoint),
        )?)
    }

    /// Creates a live room; you are its moderator. `e2ee`: end-to-end encrypted (closed
    /// rooms only: the server refuses others with `invalid_field`).
    #[uniffi::method(default(e2ee = false))]
    pub fn create_room(&self, title: String, kind: RoomKind, e2ee: bool) -> Result<RoomSummary> {
        let req = ruang_proto::CreateRoomRequest {
            title,
            kind: kind.into(),
            record: false,
            clips: false,
            e2ee,
        };
        Ok(block_on(self.authed()?.create_room_with(&req))?.into())
    }

    /// Sets this device's identity for encrypted rooms (from `new_device_identity`, kept
    /// by the app); returns its fingerprint. Rooms joined afterwards use it.
    pub fn set_device_identity(&self, identity: Vec<u8>) -> Result<String> {
        let fingerprint = crate::e2ee::restore("check", &identity)?.fingerprint();
        *self.identity.write().unwrap_or_else(|e| e.into_inner()) = Some(identity);
        Ok(fingerprint)
    }

    /// Joins a room (as a listener, or with your role if you are already in it) and starts
    /// reporting its state to `listener`: the current state first, then every change.
    pub fn join_room(
        &self,
        room_id: String,
        link_token: Option<String>,
        listener: Arc<dyn RoomListener>,
    ) -> Result<Arc<Room>> {
        let api = self.authed()?;
        Room::join(api, room_id, link_token, self.identity()?, listener)
    }
}

/// Replays and clips (docs/protocol.md §14).
#[uniffi::export]
impl RuangClient {
    /// The replays of rooms `handle` hosted that you may see, newest first.
    pub fn user_replays(&self, handle: String) -> Result<Vec<ReplayView>> {
        Ok(block_on(self.authed()?.user_replays(&handle))?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// A recorded room's replay: `NotFound` when there is none (or you may not see it),
    /// `Server` (`replay_not_ready`) while the room is live or being mixed.
    pub fn replay(&self, room_id: String, link_token: Option<String>) -> Result<ReplayView> {
        Ok(block_on(self.api().replay(&room_id, link_token.as_deref()))?.into())
    }

    /// The host deletes a replay (the file and its listing are gone).
    pub fn delete_replay(&self, room_id: String) -> Result<()> {
        Ok(block_on(self.authed()?.delete_replay(&room_id))?)
    }

    /// Clips the last 30 s of a live room; share `url`.
    pub fn clip(&self, room_id: String) -> Result<ClipView> {
        Ok(block_on(self.authed()?.clip(&room_id))?.into())
    }
}

/// Moderation and safety (docs/safety.md): blocks and reports.
#[uniffi::export]
impl RuangClient {
    /// Blocks a member: they cannot join rooms you moderate, follow you or reach you.
    pub fn block(&self, handle: String) -> Result<()> {
        Ok(block_on(self.authed()?.block(&handle))?)
    }

    pub fn unblock(&self, handle: String) -> Result<()> {
        Ok(block_on(self.authed()?.unblock(&handle))?)
    }

    /// Handles of the people you blocked (the first 100).
    pub fn blocked(&self) -> Result<Vec<String>> {
        let page = block_on(self.authed()?.blocks(None, Some(100)))?;
        Ok(page.users.into_iter().map(|u| u.handle).collect())
    }

    /// Reports a member (`reason`: spam, harassment, hate, sexual, violence, impersonation,
    /// other). True when it joined your open report about them.
    pub fn report_member(&self, handle: String, reason: String, details: String) -> Result<bool> {
        self.report(
            ruang_proto::ReportKind::Member,
            Some(handle),
            None,
            &reason,
            details,
        )
    }

    /// Reports a chat message of a live room (the server keeps its text and author).
    pub fn report_message(
        &self,
        room_id: String,
        message_id: u64,
        reason: String,
        details: String,
    ) -> Result<bool> {
        self.report_with(
            ruang_proto::ReportKind::Message,
            None,
            Some(room_id),
            Some(message_id.to_string()),
            &reason,
            details,
        )
    }

    /// Reports a room (the server keeps who is on stage and the time into the room).
    pub fn report_room(&self, room_id: String, reason: String, details: String) -> Result<bool> {
        self.report(
            ruang_proto::ReportKind::Room,
            None,
            Some(room_id),
            &reason,
            details,
        )
    }
}

impl RuangClient {
    fn report(
        &self,
        kind: ruang_proto::ReportKind,
        handle: Option<String>,
        room: Option<String>,
        reason: &str,
        details: String,
    ) -> Result<bool> {
        self.report_with(kind, handle, room, None, reason, details)
    }

    fn report_with(
        &self,
        kind: ruang_proto::ReportKind,
        handle: Option<String>,
        room: Option<String>,
        message: Option<String>,
        reason: &str,
        details: String,
    ) -> Result<bool> {
        let reason =
            ruang_proto::ReportReason::parse(reason).ok_or_else(|| RuangError::InvalidInput {
                code: "reason".into(),
                detail: format!("unknown report reason {reason:?}"),
            })?;
        let req = ruang_proto::ReportRequest {
            kind,
            handle,
            room: room.map(ruang_proto::RoomId),
            message,
            reason,
            details,
        };
        Ok(block_on(self.authed()?.report(&req))?.coalesced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links() {
        assert_eq!(
            parse_link("https://ruang.example/r/abc?t=k"),
            LinkTarget::Room {
                room_id: "abc".into(),
                link_token: Some("k".into())
            }
        );
        assert_eq!(
            parse_link("ruang://i/ABCD-efgh"),
            LinkTarget::Invite {
                code: "abcdefgh".into()
            }
        );
        assert_eq!(
            parse_link("https://ruang.example/i/abcd"),
            LinkTarget::Invite {
                code: "abcd".into()
            }
        );
        assert_eq!(
            parse_link("https://ruang.example/x/abcd"),
            LinkTarget::Unknown
        );
        assert_eq!(parse_link("not a link"), LinkTarget::Unknown);
    }
}
