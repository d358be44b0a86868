//! `ruang bench soak`: a bounded soak test on loopback. It starts `ruang serve` as a child
//! process (this same binary) on a fresh data directory, then for the given time runs rooms
//! that start and end while members join, leave, lose their connection, raise hands, go on
//! stage, speak (virtual devices, speech-like audio), mute and step down, with ONE graceful
//! server restart (SIGTERM, then the same data directory and ports) in the middle.
//!
//! It samples the server process's memory (VmRSS of /proc/PID/status) and open descriptors
//! (/proc/PID/fd) over time, counts errors, and at the end checks that every member is where
//! the rules say: each member's own view, the moderator's view of the stage and audience, and
//! the HTTP API agree with what the soak did; ended rooms are gone; the server stops cleanly.
//! Any such violation makes the command exit non-zero.
//!
//! Progress goes to stderr; the report (or JSON with `--json`) to stdout.

use anyhow::{anyhow, bail, Context, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use ruang_client::media::ruang_media::device::{Pacing, Source, VirtualConfig, VirtualDevice};
use ruang_client::media::ruang_media::signal::speech_like;
use ruang_client::media::{MediaOptions, MediaSession, TransportOptions};
use ruang_client::session::SessionState;
use ruang_client::{ApiClient, ConnectionState, RoomSession, SessionOptions};
use ruang_proto::{CloseReason, Role, RoomKind, UserId};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

#[derive(clap::Args)]
pub struct SoakArgs {
    /// How long the soak runs.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Run this many seconds instead of --minutes (short runs, tests).
    #[arg(long)]
    seconds: Option<f64>,
    /// Rooms live at once (each ends and is replaced by a new one during the run).
    #[arg(long, default_value_t = 2)]
    rooms: usize,
    /// Members per room besides its host (they join, leave, speak...).
    #[arg(long, default_value_t = 6)]
    members: usize,
    /// Seconds between two memory/descriptor samples (default: about 20 samples per run,
    /// at least every 2 s, at most every 60 s).
    #[arg(long)]
    sample_every: Option<f64>,
    /// Seed of the actions' random choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keep the server's data directory and log here instead of a temporary directory.
    #[arg(long)]
    keep_data: Option<PathBuf>,
    /// Print JSON instead of the report.
    #[arg(long)]
    json: bool,
}

/// Longest wait for something the server should do promptly (never a measured duration).
const PATIENCE: Duration = Duration::from_secs(20);

/// One sample of the server process.
#[derive(Debug, Clone, serde::Serialize)]
struct Sample {
    t_s: f64,
    pid: u32,
    rss_kb: u64,
    fds: u64,
}

#[derive(Default)]
struct Tally {
    /// Actions done, by kind.
    actions: BTreeMap<&'static str, u64>,
    /// Failed actions and other errors, by kind.
    errors: BTreeMap<String, u64>,
    /// Where the end state differs from what the rules say.
    violations: Vec<String>,
    rooms_started: u64,
    rooms_ended: u64,
    media_started: u64,
}

impl Tally {
    fn action(&mut self, kind: &'static str) {
        *self.actions.entry(kind).or_default() += 1;
    }
    fn error(&mut self, kind: impl Into<String>) {
        *self.errors.entry(kind.into()).or_default() += 1;
    }
}

type Shared = Arc<Mutex<Tally>>;

fn note_err(tally: &Shared, what: &str, e: impl std::fmt::Display) {
    eprintln!("soak: {what}: {e}");
    tally.lock().unwrap().error(what);
}

fn violation(tally: &Shared, v: String) {
    eprintln!("soak: VIOLATION: {v}");
    tally.lock().unwrap().violations.push(v);
}

// ---------------------------------------------------------------------------------------
// The server process

struct ServerProc {
    child: tokio::process::Child,
    pid: u32,
}

struct ServerSpec {
    exe: PathBuf,
    data: PathBuf,
    port: u16,
    rtc_port: u16,
}

impl ServerSpec {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn start(&self) -> Result<ServerProc> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.join("server.log"))
            .context("opening the server log")?;
        let mut tries = 0;
        loop {
            let child = tokio::process::Command::new(&self.exe)
                .arg("serve")
                .args(["--addr", &format!("127.0.0.1:{}", self.port)])
                .arg("--data")
                .arg(&self.data)
                .args(["--rtc-port", &self.rtc_port.to_string()])
                .args(["--invites-per-user", "1000"])
                .env("RUANG_LOG", "warn")
                .env_remove("RUANG_DATABASE_URL")
                .stdin(std::process::Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log.try_clone()?)
                .kill_on_drop(true)
                .spawn()
                .context("starting ruang serve")?;
            let pid = child.id().context("the server has no pid")?;
            let mut proc = ServerProc { child, pid };
            let api = ApiClient::new(&self.url())?;
            let t0 = Instant::now();
            while t0.elapsed() < PATIENCE {
                if let Ok(Some(status)) = proc.child.try_wait() {
                    // The port may still be held a moment after a restart: try again.
                    tries += 1;
                    if tries > 20 {
                        bail!("ruang serve exited at start ({status}); see its log");
                    }
                    break;
                }
                if api.health().await.is_ok() {
                    return Ok(proc);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if proc.child.try_wait()?.is_none() {
                let _ = proc.child.kill().await;
                bail!("ruang serve did not answer /healthz");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl ServerProc {
    /// SIGTERM and wait; Ok(true) when it exited by itself with success.
    async fn stop(mut self) -> Result<bool> {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill -TERM {} failed", self.pid);
        }
        match tokio::time::timeout(PATIENCE, self.child.wait()).await {
            Ok(Ok(s)) => Ok(s.success()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => {
                let _ = self.child.kill().await;
                Ok(false)
            }
        }
    }
}

/// VmRSS (kB) and open descriptors of a process, from /proc.
fn proc_figures(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status.lines().find_map(|l| {
        l.strip_prefix("VmRSS:")?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    })?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some((rss, fds))
}

fn free_tcp_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A port free for both the media UDP socket and the ICE-TCP listener (which takes the
/// same number) and not `http_port`: the kernel hands out UDP and TCP numbers separately, so
/// a free UDP port can be the HTTP port or a busy TCP one, and the server would not start.
fn free_rtc_port(http_port: u16) -> Result<u16> {
    for _ in 0..100 {
        let udp = std::net::UdpSocket::bind("0.0.0.0:0")?;
        let port = udp.local_addr()?.port();
        if port != http_port && std::net::TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no port free for both UDP and TCP")
}

// ---------------------------------------------------------------------------------------
// Members and rooms

struct Member {
    name: String,
    api: ApiClient,
    id: UserId,
    /// In the room (the live one of its slot) when Some.
    session: Option<RoomSession>,
    /// Speaking: the media session and its device.
    media: Option<(MediaSession, VirtualDevice)>,
    /// Expected role and mute while in the room.
    role: Role,
    muted: bool,
}

impl Member {
    fn in_room(&self) -> bool {
        self.session.is_some()
    }
}

fn session_opts() -> SessionOptions {
    SessionOptions {
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(2),
        ..SessionOptions::default()
    }
}

fn media_opts() -> MediaOptions {
    MediaOptions {
        transport: TransportOptions {
            udp_addrs: vec!["127.0.0.1:0".into()],
            ..TransportOptions::default()
        },
        ..MediaOptions::default()
    }
}

async fn start_speaking(m: &mut Member, seed: u64, tally: &Shared) {
    if m.media.is_some() {
        return;
    }
    let Some(session) = &m.session else { return };
    let go = Arc::new(AtomicBool::new(true));
    let mut dev = VirtualDevice::new(
        VirtualConfig {
            pacing: Pacing::Realtime { tick_ms: 10 },
            record_capacity: 0,
        },
        Source::gated(speech_like(48_000 * 4, seed), true, go),
    );
    match tokio::time::timeout(
        PATIENCE,
        MediaSession::start(session, &mut dev, media_opts()),
    )
    .await
    {
        Ok(Ok(media)) => {
            m.media = Some((media, dev));
            tally.lock().unwrap().media_started += 1;
        }
        Ok(Err(e)) => note_err(tally, "media start", e),
        Err(_) => note_err(tally, "media start", "timed out"),
    }
}

async fn stop_speaking(m: &mut Member) {
    if let Some((media, _dev)) = m.media.take() {
        media.stop().await;
    }
}

/// Drops everything of a member's presence in the room (after leaving or the room ending).
async fn out_of_room(m: &mut Member) {
    stop_speaking(m).await;
    m.session = None;
    m.role = Role::Listener;
    m.muted = false;
}

fn connected(s: &SessionState) -> bool {
    s.connection == ConnectionState::Connected
}

/// One room slot: a host who starts rooms, ends them after a while, and members who come
/// and go.
struct Slot {
    index: usize,
    host: Member,
    members: Vec<Member>,
    room: Option<String>,
    room_started: Instant,
    ended_rooms: Vec<String>,
    rng: StdRng,
    tally: Shared,
}

impl Slot {
    fn all(&self) -> impl Iterator<Item = &Member> {
        std::iter::once(&self.host).chain(self.members.iter())
    }

    async fn start_room(&mut self) -> Result<()> {
        let n = self.tally.lock().unwrap().rooms_started;
        let room = self
            .host
            .api
            .create_room(&format!("Soak {} #{n}", self.index), RoomKind::Open)
            .await
            .context("creating a room")?;
        let id = room.id.as_str().to_owned();
        let token = self.host.api.token().context("host token")?.to_owned();
        let session = RoomSession::join(self.host.api.ws_url(&id), token, session_opts())
            .await
            .context("the host joins")?;
        self.host.session = Some(session);
        self.host.role = Role::Moderator;
        self.host.muted = self
            .host
            .session
            .as_ref()
            .and_then(|s| s.state().room.you().map(|p| p.muted))
            .unwrap_or(false);
        if self.host.muted {
            if let Some(s) = &self.host.session {
                s.set_muted(false).await.context("host unmutes")?;
            }
            self.host.muted = false;
        }
        let seed = self.rng.gen();
        start_speaking(&mut self.host, seed, &self.tally).await;
        self.room = Some(id);
        self.room_started = Instant::now();
        let mut t = self.tally.lock().unwrap();
        t.rooms_started += 1;
        t.action("room start");
        Ok(())
    }

    async fn end_room(&mut self) {
        let Some(id) = self.room.take() else { return };
        let tally = self.tally.clone();
        let Some(host) = self.host.session.clone() else {
            return;
        };
        if let Err(e) = host.end_room().await {
            note_err(&tally, "end room", e);
        }
        // Everyone in the room learns that it ended.
        for m in std::iter::once(&self.host).chain(self.members.iter()) {
            let Some(s) = &m.session else { continue };
            let ended = s
                .wait_for(PATIENCE, |s| {
                    matches!(
                        s.connection,
                        ConnectionState::Ended {
                            reason: Some(CloseReason::RoomEnded),
                            ..
                        }
                    )
                })
                .await;
            if let Err(state) = ended {
                violation(
                    &tally,
                    format!(
                        "room {id}: {} was not told the room ended ({:?})",
                        m.name, state.connection
                    ),
                );
            }
        }
        out_of_room(&mut self.host).await;
        for m in &mut self.members {
            out_of_room(m).await;
        }
        self.ended_rooms.push(id);
        let mut t = tally.lock().unwrap();
        t.rooms_ended += 1;
        t.action("room end");
    }

    fn pick(&mut self, pred: impl Fn(&Member) -> bool) -> Option<usize> {
        let idx: Vec<usize> = (0..self.members.len())
            .filter(|&i| pred(&self.members[i]))
            .collect();
        idx.choose(&mut self.rng).copied()
    }

    /// One random action; errors are counted, not fatal.
    async fn act(&mut self) {
        let Some(room) = self.room.clone() else {
            return;
        };
        let tally = self.tally.clone();
        let host = self.host.session.clone().expect("the host is in its room");
        let roll = self.rng.gen_range(0..100);
        match roll {
            // A member joins (as a listener).
            0..=24 => {
                let Some(i) = self.pick(|m| !m.in_room()) else {
                    return;
                };
                let m = &mut self.members[i];
                let token = m.api.token().unwrap_or_default().to_owned();
                match RoomSession::join(m.api.ws_url(&room), token, session_opts()).await {
                    Ok(s) => {
                        m.session = Some(s);
                        m.role = Role::Listener;
                        m.muted = false;
                        tally.lock().unwrap().action("join");
                    }
                    Err(e) => note_err(&tally, "join", e),
                }
            }
            // A member leaves.
            25..=34 => {
                let Some(i) = self.pick(Member::in_room) else {
                    return;
                };
                let m = &mut self.members[i];
                stop_speaking(m).await;
                if let Some(s) = &m.session {
                    if let Err(e) = s.leave(false).await {
                        note_err(&tally, "leave", e);
                    }
                }
                out_of_room(m).await;
                tally.lock().unwrap().action("leave");
            }
            // A member's connection drops; the client reconnects by itself.
            35..=44 => {
                let Some(i) = self.pick(Member::in_room) else {
                    return;
                };
                let s = self.members[i].session.clone().unwrap();
                s.simulate_network_loss().await;
                // The drop shows as reconnecting (unless the client is already back).
                let _ = s
                    .wait_for(Duration::from_secs(2), |st| !connected(st))
                    .await;
                match s.wait_for(PATIENCE, connected).await {
                    Ok(_) => tally.lock().unwrap().action("reconnect"),
                    Err(st) => note_err(
                        &tally,
                        "reconnect",
                        format!("not connected again: {:?}", st.connection),
                    ),
                }
            }
            // A listener raises a hand, the host invites them, they accept and speak.
            45..=59 => {
                let Some(i) = self.pick(|m| m.in_room() && m.role == Role::Listener) else {
                    return;
                };
                let seed = self.rng.gen();
                let m = &mut self.members[i];
                let s = m.session.clone().unwrap();
                let id = m.id.clone();
                let steps = async {
                    s.raise_hand().await.context("raise hand")?;
                    host.wait_for(PATIENCE, |st| {
                        st.room
                            .room
                            .as_ref()
                            .is_some_and(|r| r.hands.iter().any(|h| h.participant.user.id == id))
                    })
                    .await
                    .map_err(|_| anyhow!("the host never saw the hand"))?;
                    host.invite_to_speak(&id).await.context("invite to speak")?;
                    s.wait_for(PATIENCE, |st| {
                        st.room.room.as_ref().is_some_and(|r| r.invited_to_speak)
                    })
                    .await
                    .map_err(|_| anyhow!("the invitation never arrived"))?;
                    s.accept_invite().await.context("accept invite")?;
                    anyhow::Ok(())
                };
                match steps.await {
                    Ok(()) => {
                        m.role = Role::Speaker;
                        m.muted = s.state().room.you().is_some_and(|p| p.muted);
                        if m.muted {
                            match s.set_muted(false).await {
                                Ok(()) => m.muted = false,
                                Err(e) => note_err(&tally, "unmute", e),
                            }
                        }
                        start_speaking(m, seed, &tally).await;
                        tally.lock().unwrap().action("hand → stage");
                    }
                    Err(e) => {
                        note_err(&tally, "hand → stage", format!("{e:#}"));
                        // Whatever happened, read back where the member is.
                        if let Some(p) = s.state().room.you() {
                            m.role = p.role;
                            m.muted = p.muted;
                        }
                    }
                }
            }
            // A speaker steps down.
            60..=69 => {
                let Some(i) = self.pick(|m| m.in_room() && m.role == Role::Speaker) else {
                    return;
                };
                let m = &mut self.members[i];
                let s = m.session.clone().unwrap();
                match s.leave_stage().await {
                    Ok(()) => {
                        stop_speaking(m).await;
                        m.role = Role::Listener;
                        m.muted = false;
                        tally.lock().unwrap().action("leave stage");
                    }
                    Err(e) => note_err(&tally, "leave stage", e),
                }
            }
            // The host moves a speaker to the audience.
            70..=79 => {
                let Some(i) = self.pick(|m| m.in_room() && m.role == Role::Speaker) else {
                    return;
                };
                let m = &mut self.members[i];
                match host.move_to_audience(&m.id).await {
                    Ok(()) => {
                        stop_speaking(m).await;
                        m.role = Role::Listener;
                        m.muted = false;
                        tally.lock().unwrap().action("move to audience");
                    }
                    Err(e) => note_err(&tally, "move to audience", e),
                }
            }
            // A speaker mutes or unmutes themselves.
            80..=89 => {
                let Some(i) = self.pick(|m| m.in_room() && m.role == Role::Speaker) else {
                    return;
                };
                let m = &mut self.members[i];
                let s = m.session.clone().unwrap();
                match s.set_muted(!m.muted).await {
                    Ok(()) => {
                        m.muted = !m.muted;
                        tally.lock().unwrap().action("self mute/unmute");
                    }
                    Err(e) => note_err(&tally, "self mute/unmute", e),
                }
            }
            // The host mutes a speaker.
            _ => {
                let Some(i) = self.pick(|m| m.in_room() && m.role == Role::Speaker && !m.muted)
                else {
                    return;
                };
                let m = &mut self.members[i];
                match host.mute(&m.id).await {
                    Ok(()) => {
                        m.muted = true;
                        tally.lock().unwrap().action("host mute");
                    }
                    Err(e) => note_err(&tally, "host mute", e),
                }
            }
        }
    }

    /// Waits until every session of the slot is connected again (after the restart).
    async fn reconnected(&mut self) {
        let tally = self.tally.clone();
        for m in std::iter::once(&mut self.host).chain(self.members.iter_mut()) {
            let Some(s) = m.session.clone() else { continue };
            if let Err(st) = s.wait_for(PATIENCE * 3, connected).await {
                violation(
                    &tally,
                    format!(
                        "{} did not get back into the room after the restart ({:?})",
                        m.name, st.connection
                    ),
                );
                out_of_room(m).await;
            }
        }
    }

    /// Checks that every member is where the rules say; returns the violations.
    async fn check(&self, api_base: &str) -> Vec<String> {
        let mut v = Vec::new();
        let Some(room) = &self.room else {
            return v;
        };
        let expect_stage: BTreeMap<UserId, (Role, bool)> = self
            .all()
            .filter(|m| m.in_room() && m.role.on_stage())
            .map(|m| (m.id.clone(), (m.role, m.muted)))
            .collect();
        let expect_listeners = self
            .all()
            .filter(|m| m.in_room() && m.role == Role::Listener)
            .count() as u32;
        // The moderator's view converges on it.
        if let Some(host) = &self.host.session {
            let seen = host
                .wait_for(PATIENCE, |st| {
                    st.room.room.as_ref().is_some_and(|r| {
                        let stage: BTreeMap<UserId, (Role, bool)> = r
                            .stage
                            .iter()
                            .map(|p| (p.user.id.clone(), (p.role, p.muted)))
                            .collect();
                        stage == expect_stage && r.counts.listeners == expect_listeners
                    })
                })
                .await;
            if let Err(st) = seen {
                let got = st.room.room.as_ref().map(|r| {
                    let stage: Vec<String> = r
                        .stage
                        .iter()
                        .map(|p| {
                            format!(
                                "{}:{:?}{}",
                                p.user.handle,
                                p.role,
                                if p.muted { "(muted)" } else { "" }
                            )
                        })
                        .collect();
                    format!("stage {stage:?}, {} listeners", r.counts.listeners)
                });
                v.push(format!(
                    "room {room}: the moderator sees {got:?}, expected stage {:?} and {expect_listeners} listeners",
                    self.all()
                        .filter(|m| m.in_room() && m.role.on_stage())
                        .map(|m| format!("{}:{:?}{}", m.name, m.role, if m.muted { "(muted)" } else { "" }))
                        .collect::<Vec<_>>()
                ));
            }
        } else {
            v.push(format!("room {room}: the host is not in it"));
        }
        // Each member's own view.
        for m in self.all() {
            let Some(s) = &m.session else { continue };
            let ok = s
                .wait_for(PATIENCE, |st| {
                    connected(st)
                        && st.room.you().is_some_and(|p| {
                            p.role == m.role && (!m.role.on_stage() || p.muted == m.muted)
                        })
                })
                .await;
            if let Err(st) = ok {
                v.push(format!(
                    "room {room}: {} sees itself as {:?} ({:?}), expected {:?} muted={}",
                    m.name,
                    st.room.you().map(|p| (p.role, p.muted)),
                    st.connection,
                    m.role,
                    m.muted
                ));
            }
        }
        // The HTTP API agrees.
        match ApiClient::new(api_base)
            .map(|a| a.with_token(self.host.api.token().unwrap_or_default()))
        {
            Ok(api) => match api.room(room, None).await {
                Ok(summary) => {
                    let speakers = expect_stage.len() as u32;
                    if summary.speaker_count != speakers
                        || summary.listener_count != expect_listeners
                    {
                        v.push(format!(
                            "room {room}: GET /v1/rooms says {} speakers and {} listeners, expected {speakers} and {expect_listeners}",
                            summary.speaker_count, summary.listener_count
                        ));
                    }
                }
                Err(e) => v.push(format!("room {room}: GET /v1/rooms/{room} failed: {e}")),
            },
            Err(e) => v.push(format!("API client: {e}")),
        }
        // Ended rooms are gone: not found, not in the hallway.
        let hallway = self.host.api.hallway().await;
        for old in &self.ended_rooms {
            if self.host.api.room(old, None).await.is_ok() {
                v.push(format!("ended room {old} is still served by GET /v1/rooms"));
            }
            if let Ok(h) = &hallway {
                if h.iter().any(|r| r.id.as_str() == old) {
                    v.push(format!("ended room {old} is still in the hallway"));
                }
            }
        }
        if let Err(e) = hallway {
            v.push(format!("hallway failed: {e}"));
        }
        v
    }
}

// ---------------------------------------------------------------------------------------
// The run

#[derive(serde::Serialize)]
struct Report {
    seconds: f64,
    rooms: usize,
    members_per_room: usize,
    server_restarts: u32,
    restart_graceful: bool,
    final_stop_graceful: bool,
    samples: Vec<Sample>,
    actions: BTreeMap<&'static str, u64>,
    errors: BTreeMap<String, u64>,
    error_total: u64,
    violations: Vec<String>,
    rooms_started: u64,
    rooms_ended: u64,
    media_sessions: u64,
    packets_forwarded: Option<f64>,
}

pub async fn soak(args: SoakArgs) -> Result<()> {
    // The media sessions' futures hold their (not `Send`) virtual devices across awaits: the
    // room tasks run on this thread (the audio engines have their own threads).
    tokio::task::LocalSet::new().run_until(run(args)).await
}

async fn run(args: SoakArgs) -> Result<()> {
    let total = match args.seconds {
        Some(s) => Duration::try_from_secs_f64(s).map_err(|_| anyhow!("bad --seconds"))?,
        None => Duration::try_from_secs_f64(args.minutes * 60.0)
            .map_err(|_| anyhow!("bad --minutes"))?,
    };
    if total < Duration::from_secs(5) {
        bail!("a soak runs at least 5 seconds");
    }
    if args.rooms == 0 || args.members == 0 {
        bail!("--rooms and --members must be at least 1");
    }
    let sample_every = match args.sample_every {
        Some(s) => Duration::try_from_secs_f64(s).map_err(|_| anyhow!("bad --sample-every"))?,
        None => (total / 20).clamp(Duration::from_secs(2), Duration::from_secs(60)),
    };
    let tmp = tempfile::tempdir().context("creating the soak's data directory")?;
    let data = match &args.keep_data {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => tmp.path().to_owned(),
    };
    let http_port = free_tcp_port()?;
    let spec = ServerSpec {
        exe: std::env::current_exe().context("finding the ruang binary")?,
        data: data.clone(),
        port: http_port,
        rtc_port: free_rtc_port(http_port)?,
    };
    eprintln!(
        "soak: {} s, {} rooms x {} members, server on {} (data {})",
        total.as_secs(),
        args.rooms,
        args.members,
        spec.url(),
        data.display()
    );
    let server = spec.start().await?;
    let pid = Arc::new(AtomicU32::new(server.pid));
    let mut server = Some(server);
    let invite = std::fs::read_to_string(data.join("first-invite.txt"))
        .context("reading first-invite.txt")?
        .trim()
        .to_owned();
    let url = spec.url();

    // Accounts: an admin who invites everyone, one host and `members` members per room.
    let mut admin = ApiClient::new(&url)?;
    admin.signup(&invite, "soak_admin", "Soak Admin").await?;
    let mut codes = admin.invites().await?.into_iter().map(|i| i.code);
    let tally: Shared = Arc::new(Mutex::new(Tally::default()));
    let mut seed_rng = StdRng::seed_from_u64(args.seed);
    let mut slots = Vec::new();
    for r in 0..args.rooms {
        let mut account = |name: String| {
            let code = codes.next();
            let url = url.clone();
            async move {
                let code = code.context("out of invite codes")?;
                let mut api = ApiClient::new(&url)?;
                let profile = api.signup(&code, &name, &name).await?;
                let _ = profile;
                let id = api.me().await?.id;
                anyhow::Ok(Member {
                    name,
                    api,
                    id,
                    session: None,
                    media: None,
                    role: Role::Listener,
                    muted: false,
                })
            }
        };
        let host = account(format!("host_{r}")).await?;
        let mut members = Vec::new();
        for i in 0..args.members {
            members.push(account(format!("m{r}_{i}")).await?);
        }
        slots.push(Slot {
            index: r,
            host,
            members,
            room: None,
            room_started: Instant::now(),
            ended_rooms: Vec::new(),
            rng: StdRng::seed_from_u64(seed_rng.gen()),
            tally: tally.clone(),
        });
    }

    let t0 = Instant::now();
    let deadline = t0 + total;
    let restart_at = t0 + total / 2;
    // A room lives about a third of the run (at least 15 s), staggered between slots.
    let lifetime = (total / 3).max(Duration::from_secs(15));
    let gate = Arc::new(RwLock::new(()));
    // Bumped by each restart: the room tasks wait for their members to be back first.
    let epoch = Arc::new(AtomicU32::new(0));
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::new(Mutex::new(Vec::new()));
    let stop_sampling = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (pid, samples, stop) = (pid.clone(), samples.clone(), stop_sampling.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Acquire) {
                let p = pid.load(Ordering::Acquire);
                if let Some((rss_kb, fds)) = proc_figures(p) {
                    let s = Sample {
                        t_s: t0.elapsed().as_secs_f64(),
                        pid: p,
                        rss_kb,
                        fds,
                    };
                    eprintln!(
                        "soak: t={:.0}s pid {} rss {} kB fds {}",
                        s.t_s, s.pid, s.rss_kb, s.fds
                    );
                    samples.lock().unwrap().push(s);
                }
                tokio::time::sleep(sample_every).await;
            }
        })
    };

    let mut tasks = tokio::task::JoinSet::new();
    let slot_count = slots.len() as u32;
    for (k, mut slot) in slots.into_iter().enumerate() {
        let gate = gate.clone();
        let epoch = epoch.clone();
        let offset = lifetime * k as u32 / slot_count;
        tasks.spawn_local(async move {
            let mut first = true;
            let mut seen = 0;
            while Instant::now() < deadline {
                {
                    let _g = gate.read().await;
                    let now_epoch = epoch.load(Ordering::Acquire);
                    if now_epoch != seen {
                        seen = now_epoch;
                        slot.reconnected().await;
                    }
                    if slot.room.is_none() {
                        if let Err(e) = slot.start_room().await {
                            note_err(&slot.tally, "room start", format!("{e:#}"));
                        }
                    } else if slot.room_started.elapsed()
                        >= if first { lifetime - offset } else { lifetime }
                        && deadline.saturating_duration_since(Instant::now()) > lifetime / 3
                    {
                        first = false;
                        slot.end_room().await;
                        continue;
                    } else {
                        slot.act().await;
                    }
                }
                let pause = Duration::from_millis(slot.rng.gen_range(300..1200));
                tokio::time::sleep(pause).await;
            }
            slot
        });
    }

    // The restart, in the middle.
    let mut restart_graceful = false;
    let mut restarts = 0;
    tokio::time::sleep_until(restart_at.into()).await;
    {
        let _g = gate.write().await;
        eprintln!("soak: restarting the server (SIGTERM)");
        if let Some(s) = server.take() {
            match s.stop().await {
                Ok(true) => restart_graceful = true,
                Ok(false) => violation(
                    &tally,
                    "the server did not stop cleanly on SIGTERM (restart)".into(),
                ),
                Err(e) => note_err(&tally, "server stop", e),
            }
        }
        match spec.start().await {
            Ok(s) => {
                pid.store(s.pid, Ordering::Release);
                server = Some(s);
                restarts += 1;
                epoch.fetch_add(1, Ordering::AcqRel);
            }
            Err(e) => {
                stop_sampling.store(true, Ordering::Release);
                return Err(e.context("the server did not start again"));
            }
        }
        eprintln!("soak: server back (pid {})", pid.load(Ordering::Acquire));
    }

    let mut slots = Vec::new();
    while let Some(r) = tasks.join_next().await {
        slots.push(r.context("a room task panicked")?);
    }
    slots.sort_by_key(|s| s.index);
    // One last sample at the end of the activity.
    if let Some((rss_kb, fds)) = proc_figures(pid.load(Ordering::Acquire)) {
        samples.lock().unwrap().push(Sample {
            t_s: t0.elapsed().as_secs_f64(),
            pid: pid.load(Ordering::Acquire),
            rss_kb,
            fds,
        });
    }
    stop_sampling.store(true, Ordering::Release);
    let _ = sampler.await;

    // Where everyone is, against what the soak did.
    eprintln!("soak: checking the end state");
    for slot in &slots {
        for v in slot.check(&url).await {
            violation(&tally, v);
        }
    }
    let packets_forwarded = metric(&url, "ruang_sfu_packets_forwarded_total").await;
    // End every room: everyone must be told.
    for slot in &mut slots {
        slot.end_room().await;
    }
    // Idle again: what the server holds with no room live.
    tokio::time::sleep(Duration::from_secs(2)).await;
    if let Some((rss_kb, fds)) = proc_figures(pid.load(Ordering::Acquire)) {
        samples.lock().unwrap().push(Sample {
            t_s: t0.elapsed().as_secs_f64(),
            pid: pid.load(Ordering::Acquire),
            rss_kb,
            fds,
        });
    }
    for slot in &slots {
        for v in slot.check(&url).await {
            violation(&tally, v);
        }
    }
    let final_stop_graceful = match server.take() {
        Some(s) => s.stop().await.unwrap_or(false),
        None => false,
    };
    if !final_stop_graceful {
        violation(
            &tally,
            "the server did not stop cleanly on SIGTERM at the end".into(),
        );
    }
    drop(slots);

    let t = tally.lock().unwrap();
    let report = Report {
        seconds: total.as_secs_f64(),
        rooms: args.rooms,
        members_per_room: args.members,
        server_restarts: restarts,
        restart_graceful,
        final_stop_graceful,
        samples: samples.lock().unwrap().clone(),
        actions: t.actions.clone(),
        errors: t.errors.clone(),
        error_total: t.errors.values().sum(),
        violations: t.violations.clone(),
        rooms_started: t.rooms_started,
        rooms_ended: t.rooms_ended,
        media_sessions: t.media_started,
        packets_forwarded,
    };
    drop(t);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    if let Some(d) = &args.keep_data {
        eprintln!("soak: data and server log kept in {}", d.display());
    }
    if !report.violations.is_empty() {
        bail!(
            "{} violation(s) of the room rules or clean stops (see above)",
            report.violations.len()
        );
    }
    Ok(())
}

/// One counter of `GET /metrics`.
async fn metric(url: &str, name: &str) -> Option<f64> {
    let text = http_get(&format!("{url}/metrics")).await?;
    text.lines().find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.trim().parse().ok())?
    })
}

/// A plain HTTP/1.1 GET of `http://HOST:PORT/PATH` (the API client speaks JSON only).
async fn http_get(url: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut s = tokio::net::TcpStream::connect(host).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(PATIENCE, s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    Some(text.split_once("\r\n\r\n")?.1.to_owned())
}

fn print_report(r: &Report) {
    println!(
        "Soak: {:.0} s, {} rooms x {} members, {} server restart(s) ({})",
        r.seconds,
        r.rooms,
        r.members_per_room,
        r.server_restarts,
        if r.restart_graceful {
            "graceful"
        } else {
            "NOT graceful"
        }
    );
    println!();
    println!("| t (s) | server pid | RSS (MB) | open fds |");
    println!("|---:|---:|---:|---:|");
    for s in &r.samples {
        println!(
            "| {:.0} | {} | {:.1} | {} |",
            s.t_s,
            s.pid,
            s.rss_kb as f64 / 1024.0,
            s.fds
        );
    }
    println!();
    println!(
        "rooms started {}, ended {}; media sessions {}; packets forwarded (since restart) {}",
        r.rooms_started,
        r.rooms_ended,
        r.media_sessions,
        r.packets_forwarded
            .map_or("?".to_owned(), |p| format!("{p:.0}"))
    );
    let actions: Vec<String> = r.actions.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("actions: {}", actions.join(", "));
    let errors: Vec<String> = r.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "errors: {}{}",
        r.error_total,
        if errors.is_empty() {
            String::new()
        } else {
            format!(" ({})", errors.join(", "))
        }
    );
    println!(
        "final stop: {}",
        if r.final_stop_graceful {
            "graceful"
        } else {
            "NOT graceful"
        }
    );
    if r.violations.is_empty() {
        println!("violations: none (every member ended where the rules say)");
    } else {
        println!("violations: {}", r.violations.len());
        for v in &r.violations {
            println!("  - {v}");
        }
    }
}
