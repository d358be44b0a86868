//! Test harness: starts the real server on an ephemeral port against a fresh database
//! (SQLite in a temp dir, or a fresh database on the PostgreSQL server named by
//! `RUANG_TEST_POSTGRES_URL`), and makes real clients.

pub mod media;
pub mod replay;
pub mod turn;
pub mod ws;

/// The impairment relay of `ruang bench latency` (random loss and jitter on RTP/RTCP between
/// one client and the server), shared so the loss tests inject loss the way the benchmarks do.
#[path = "../../cli/src/bench/relay.rs"]
pub mod relay;

use rand::Rng;
use ruang_client::{ApiClient, RoomSession, SessionOptions};
use ruang_server::{Config, Server};
use sqlx::Connection;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backends to run against: SQLite always; PostgreSQL when `RUANG_TEST_POSTGRES_URL`
/// is set. With `RUANG_TEST_REQUIRE_POSTGRES=1` (the test script sets it) a missing
/// PostgreSQL fails instead of being skipped.
pub fn backends() -> Vec<Backend> {
    let mut v = vec![Backend::Sqlite];
    if std::env::var("RUANG_TEST_POSTGRES_URL").is_ok() {
        v.push(Backend::Postgres);
    } else if std::env::var("RUANG_TEST_REQUIRE_POSTGRES").as_deref() == Ok("1") {
        panic!("RUANG_TEST_REQUIRE_POSTGRES=1 but RUANG_TEST_POSTGRES_URL is not set");
    } else {
        eprintln!("note: RUANG_TEST_POSTGRES_URL not set; PostgreSQL runs skipped");
    }
    v
}

/// Runs an async test body once per backend.
#[macro_export]
macro_rules! each_backend {
    ($name:ident, $case:path) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            for backend in $crate::backends() {
                eprintln!("-- {} on {:?}", stringify!($name), backend);
                $case(backend).await;
            }
        }
    };
}

/// A fresh database on the test PostgreSQL server (`RUANG_TEST_POSTGRES_URL`).
pub async fn fresh_postgres() -> String {
    let admin = std::env::var("RUANG_TEST_POSTGRES_URL").expect("set");
    let name = format!("ruang_t_{}", rand::thread_rng().gen::<u64>());
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&admin)
        .await
        .expect("connect to the test PostgreSQL server");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create a test database");
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    format!("{base}/{name}")
}

pub struct TestServer {
    pub server: Option<Server>,
    pub url: String,
    pub addr: SocketAddr,
    pub first_invite: String,
    pub dir: tempfile::TempDir,
    pub config: Config,
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let database_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(fresh_postgres().await),
        };
        let mut config = Config {
            addr: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_owned(),
            database_url,
            // Several forwarding threads whatever the machine, so every media test crosses shards.
            rtc_threads: 3,
            ..Config::default()
        };
        tweak(&mut config);
        let server = Server::start(config.clone()).await.expect("server starts");
        let first_invite = server.first_invite.clone().expect("fresh database");
        let written = std::fs::read_to_string(dir.path().join("first-invite.txt")).unwrap();
        assert_eq!(written.trim(), first_invite);
        TestServer {
            url: server.public_url.clone(),
            addr: server.addr,
            server: Some(server),
            first_invite,
            dir,
            config,
        }
    }

    /// Stops gracefully and starts again on the same address and database.
    pub async fn restart(&mut self) {
        self.stop().await;
        let mut config = self.config.clone();
        config.addr = self.addr;
        // The port was just freed; retry briefly in case the OS holds it a moment.
        let mut tries = 0;
        let server = loop {
            match Server::start(config.clone()).await {
                Ok(s) => break s,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("restart failed: {e:#}"),
            }
        };
        assert!(server.first_invite.is_none(), "not a first start");
        self.server = Some(server);
    }

    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.expect("clean shutdown");
        }
    }

    pub fn anon(&self) -> ApiClient {
        ApiClient::new(&self.url).unwrap()
    }

    /// Signs up the admin with the first invite.
    pub async fn admin(&self, handle: &str) -> ApiClient {
        let mut c = self.anon();
        c.signup(&self.first_invite, handle, &handle.to_uppercase())
            .await
            .expect("admin signs up");
        c
    }

    /// Signs up a member with one of `inviter`'s codes.
    pub async fn member(&self, inviter: &ApiClient, handle: &str) -> ApiClient {
        let code = inviter.invites().await.unwrap().remove(0).code;
        let mut c = self.anon();
        c.signup(&code, handle, &handle.to_uppercase())
            .await
            .expect("member signs up");
        c
    }

    /// The value of one counter or gauge of `GET /metrics` (Prometheus text).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.url))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body");
        text.lines()
            .find_map(|l| {
                let (n, v) = l.split_once(' ')?;
                (n == name).then(|| v.trim().parse().ok())?
            })
            .unwrap_or_else(|| panic!("metric {name} missing:\n{text}"))
    }

    pub async fn join(&self, c: &ApiClient, room: &str) -> RoomSession {
        self.try_join(c, room, None).await.expect("joins")
    }

    pub async fn try_join(
        &self,
        c: &ApiClient,
        room: &str,
        link_token: Option<&str>,
    ) -> Result<RoomSession, ruang_client::ClientError> {
        RoomSession::join(
            c.ws_url(room),
            c.token().unwrap().to_owned(),
            SessionOptions {
                initial_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_millis(500),
                link_token: link_token.map(str::to_owned),
                ..SessionOptions::default()
            },
        )
        .await
    }
}

/// How long a test waits for something that should happen promptly.
pub const WAIT: Duration = Duration::from_secs(10);

/// The moderator invites `speaker` up; it accepts and is on stage (muted, as everyone
/// arrives there). Returns whether the invitation said the room is being recorded.
pub async fn invite_up(moderator: &RoomSession, speaker: &RoomSession) -> bool {
    const PATIENCE: Duration = Duration::from_secs(30);
    moderator
        .invite_to_speak(speaker.me())
        .await
        .expect("invite to speak");
    let s = speaker
        .wait_for(PATIENCE, |s| {
            s.room.room.as_ref().is_some_and(|r| r.invited_to_speak)
        })
        .await
        .expect("the invitation arrives");
    let recording = s.room.room.as_ref().is_some_and(|r| r.recording);
    speaker.accept_invite().await.expect("accept");
    speaker
        .wait_for(PATIENCE, |s| {
            s.room.you().is_some_and(|p| p.role.on_stage())
        })
        .await
        .expect("on stage");
    recording
}
