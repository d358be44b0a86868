//! Ruang server: accounts and invites, rooms and stage rules, signalling.
//!
//! Layers, LiveKit style: `service` (HTTP, WebSocket) → `rooms` (participants, roles,
//! permissions; the rules are pure) → `store` (sqlx).

pub mod cluster;
pub mod replay;
pub mod rooms;
pub mod service;
pub mod sfu;
pub mod store;

use anyhow::Context;
use rooms::registry::RegistryConfig;
use rooms::Registry;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use store::Store;
use tokio::sync::watch;

/// Everything `ruang serve` can be told.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    /// `postgres://…` or `sqlite://…`; SQLite in `data_dir` when absent.
    pub database_url: Option<String>,
    /// Base of shared links; `http://ADDR` when absent.
    pub public_url: Option<String>,
    pub invites_per_user: u32,
    pub rejoin_grace: Duration,
    /// How long a room created over HTTP waits for its creator to connect.
    pub first_join_grace: Duration,
    /// Take the client address from `X-Forwarded-For` (behind a trusted reverse proxy).
    pub trust_forwarded_for: bool,
    /// Android App Links: the app's package name and its signing certificates' SHA-256
    /// fingerprints, served at `/.well-known/assetlinks.json`.
    pub android_package: String,
    pub android_cert_fingerprints: Vec<String>,
    /// Failed invite-code or token attempts allowed per client address per minute.
    pub auth_failures_per_minute: u32,
    pub audience_sample: usize,
    pub max_body_bytes: usize,
    /// UDP port of the SFU (all WebRTC media), on the IP of `addr`; 0 picks a free port.
    pub rtc_port: u16,
    /// IP put in the SDP answer's host candidate (the server's public address behind NAT);
    /// the bind IP of `addr` when absent (or the outgoing interface's IP for 0.0.0.0).
    pub rtc_public_ip: Option<IpAddr>,
    /// ICE-TCP port for clients whose UDP is blocked (a passive TCP candidate in every
    /// answer): `Some(0)`: the first RTC UDP port's number (else a free port); `None`: off.
    pub rtc_tcp_port: Option<u16>,
    /// A TURN server clients may relay through, with the secret shared with it (credentials
    /// in each welcome; `sfu::turn`).
    pub turn: Option<sfu::turn::TurnConfig>,
    /// Diagnostics and tests: a copy of every forwarded payload (`sfu::MediaTap`). Off in
    /// `ruang serve`.
    pub media_tap: Option<sfu::MediaTap>,
    /// Most speakers forwarded to one client at once (the loudest).
    pub forward_limit: usize,
    /// SFU forwarding threads, each with its own UDP port from `rtc_port` up (0: one per
    /// core, at most 8).
    pub rtc_threads: usize,
    /// Guest listeners (no account, from the browser page) connected at once, server-wide.
    pub max_guests: usize,
    /// Guest passes (`POST /v1/rooms/{id}/guest`) one client address may get per minute.
    pub guest_joins_per_minute: u32,
    /// Connections open at once (lowered to fit the open-files limit).
    pub max_connections: usize,
    /// Connections open at once from one address (one /64 for IPv6); 0 = no cap.
    pub max_connections_per_ip: usize,
    /// A request's headers must arrive within this.
    pub header_timeout: Duration,
    /// Connections with nothing read or written for this long are closed.
    pub idle_timeout: Duration,
    /// Rooms one member may have live at once (admins are not limited).
    pub max_live_rooms_per_member: u32,
    /// Where photos are stored; `DATA/media` when absent.
    pub media_dir: Option<PathBuf>,
    /// Largest photo upload accepted, in bytes.
    pub max_avatar_bytes: usize,
    /// How long before an event's start "starts soon" is sent to those who asked.
    pub event_reminder_lead: Duration,
    /// Accept `http://` push endpoints (tests on loopback); only `https://` otherwise.
    pub push_allow_http: bool,
    /// Photo uploads one client address may make per minute.
    pub photo_uploads_per_minute: u32,
    /// Cluster mode (Redis, shared PostgreSQL); one process on its own when absent.
    pub cluster: Option<cluster::ClusterConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: "127.0.0.1:8080".parse().expect("valid"),
            data_dir: PathBuf::from("ruang-data"),
            database_url: None,
            public_url: None,
            invites_per_user: 5,
            rejoin_grace: Duration::from_secs(30),
            first_join_grace: Duration::from_secs(600),
            trust_forwarded_for: false,
            android_package: "org.ruang.app".into(),
            android_cert_fingerprints: Vec::new(),
            auth_failures_per_minute: 20,
            audience_sample: rooms::rules::DEFAULT_AUDIENCE_SAMPLE,
            max_body_bytes: 64 * 1024,
            rtc_port: 0,
            rtc_public_ip: None,
            rtc_tcp_port: Some(0),
            turn: None,
            media_tap: None,
            forward_limit: 4,
            rtc_threads: 0,
            max_guests: 1000,
            guest_joins_per_minute: 30,
            max_connections: 10_000,
            max_connections_per_ip: 256,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            max_live_rooms_per_member: 3,
            media_dir: None,
            max_avatar_bytes: 5 * 1024 * 1024,
            event_reminder_lead: Duration::from_secs(600),
            push_allow_http: false,
            photo_uploads_per_minute: 10,
            cluster: None,
        }
    }
}

/// A started server.
pub struct Server {
    pub addr: SocketAddr,
    /// Where clients send WebRTC media (UDP): the SDP answer's host candidate.
    pub rtc_addr: SocketAddr,
    /// The passive ICE-TCP candidate's address (clients whose UDP is blocked), when on.
    pub rtc_tcp_addr: Option<SocketAddr>,
    pub public_url: String,
    /// The admin invite code, on the first start only.
    pub first_invite: Option<String>,
    shutdown: watch::Sender<bool>,
    sfu: sfu::Sfu,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Opens the database, restores live rooms, binds and starts serving.
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        if let Some(turn) = &config.turn {
            turn.validate().map_err(|e| anyhow::anyhow!(e))?;
        }
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
        let url = match &config.database_url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}", config.data_dir.join("ruang.db").display()),
        };
        let store = Store::connect(&url)
            .await
            .with_context(|| "opening the database")?;
        let first_invite = store.ensure_first_invite().await?;
        if let Some(code) = &first_invite {
            write_private(
                &config.data_dir.join("first-invite.txt"),
                &format!("{code}\n"),
            )?;
        }
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("binding {}", config.addr))?;
        let addr = listener.local_addr()?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"))
            .trim_end_matches('/')
            .to_owned();
        let cluster = match &config.cluster {
            Some(c) => {
                if store.is_sqlite() {
                    anyhow::bail!("cluster mode needs a shared PostgreSQL database (--database-url postgres://…)");
                }
                Some(cluster::Cluster::connect(c, addr, &store).await?)
            }
            None => None,
        };
        // In a cluster, live rooms are taken over one by one (leases), not all restored here.
        let loaded = if cluster.is_some() {
            Vec::new()
        } else {
            store.live_rooms().await?
        };
        let restored = loaded.len();
        let registry = Registry::start(
            store.clone(),
            loaded,
            RegistryConfig {
                rejoin_grace_ms: config.rejoin_grace.as_millis() as i64,
                first_join_grace_ms: config.first_join_grace.as_millis() as i64,
                audience_sample: config.audience_sample,
            },
        );
        // Cluster: shards hand audio for other nodes to the cascade task.
        let (cascade_tx, cascade_rx) = tokio::sync::mpsc::channel(sfu::cascade::QUEUE);
        let sfu = sfu::Sfu::start(sfu::SfuConfig {
            bind: SocketAddr::new(addr.ip(), config.rtc_port),
            public_ip: config.rtc_public_ip,
            forward_limit: config.forward_limit,
            threads: config.rtc_threads,
            cascade: cluster.as_ref().map(|_| cascade_tx),
            tcp_port: config.rtc_tcp_port,
            tap: config.media_tap.clone(),
        })?;
        let rtc_addr = sfu.addr();
        let pusher =
            service::push::Pusher::load(store.clone(), &public_url, config.push_allow_http).await?;
        let (shutdown, mut shutdown_rx) = watch::channel(false);
        let replays = replay::Replays::start(
            store.clone(),
            registry.clone(),
            config
                .media_dir
                .clone()
                .unwrap_or_else(|| config.data_dir.join("media")),
            shutdown_rx.clone(),
        );
        let state = service::AppState::new(
            store.clone(),
            registry.clone(),
            sfu.clone(),
            &config,
            &public_url,
            pusher.clone(),
            cluster.clone(),
            replays,
        );
        if let Some(c) = &cluster {
            // The other nodes reach this one's cascade socket at the node URL's address.
            let ip = url::Url::parse(c.node_url())
                .ok()
                .and_then(|u| {
                    u.host_str()?
                        .trim_matches(['[', ']'])
                        .parse::<IpAddr>()
                        .ok()
                })
                .filter(|ip| !ip.is_unspecified())
                .unwrap_or(addr.ip());
            let (task, bound) = sfu::cascade::Cascade::bind(
                ip,
                c.clone(),
                registry.clone(),
                sfu.clone(),
                state.edges.clone(),
                state.cascade_metrics.clone(),
            )?;
            c.set_cascade_addr(bound);
            tracing::info!(%bound, "cluster media cascade listening (UDP)");
            tokio::spawn(task.run(cascade_rx, shutdown_rx.clone()));
        }
        service::cluster::spawn_loops(state.clone(), shutdown_rx.clone());
        let drain_state = state.clone();

        let ticker_registry = registry.clone();
        let mut ticker_stop = shutdown_rx.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(250));
            let mut trim = tokio::time::interval(TRIM_EVERY);
            loop {
                tokio::select! {
                    _ = every.tick() => ticker_registry.tick(),
                    _ = trim.tick() => give_back_free_memory(),
                    _ = ticker_stop.changed() => break,
                }
            }
        });

        // Event reminders ("starts in 10 minutes").
        let notifier = service::notify::Notifier {
            store: store.clone(),
            pusher,
            public_url: public_url.clone(),
        };
        let lead_ms = config.event_reminder_lead.as_millis() as i64;
        let mut reminder_stop = shutdown_rx.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(REMIND_EVERY);
            loop {
                tokio::select! {
                    _ = every.tick() => {
                        if let Err(e) = service::notify::remind(&notifier, lead_ms).await {
                            tracing::warn!(error = %e, "event reminders");
                        }
                    }
                    _ = reminder_stop.changed() => break,
                }
            }
        });

        let connections = state.connections.clone();
        let app = service::router(state);
        let stop_registry = registry.clone();
        let nofile = service::listener::raise_nofile_limit();
        let limits = service::listener::ListenLimits {
            max_connections: service::listener::cap_for_nofile(config.max_connections, nofile),
            max_connections_per_ip: if config.trust_forwarded_for {
                // Behind a proxy every connection comes from the proxy.
                0
            } else {
                config.max_connections_per_ip
            },
            header_timeout: config.header_timeout,
            idle_timeout: config.idle_timeout,
            shutdown_grace: Duration::from_secs(5),
        };
        tracing::debug!(?limits, ?nofile, "connection limits");
        let task = tokio::spawn(async move {
            service::listener::serve(listener, app, limits, connections, async move {
                let _ = shutdown_rx.wait_for(|stop| *stop).await;
                // Cluster: hand the rooms to other nodes first (their clients reconnect there).
                service::cluster::drain(&drain_state).await;
                // Tell every room first, so clients know to reconnect later.
                stop_registry.shutdown();
            })
            .await;
            // Give connection tasks a moment to send their closing frames.
            tokio::time::sleep(Duration::from_millis(100)).await;
            registry.flush().await;
            store.close().await;
            tracing::info!("stopped cleanly");
            Ok(())
        });
        tracing::info!(%addr, %rtc_addr, %public_url, restored_rooms = restored, database = if url.starts_with("sqlite") { "sqlite" } else { "postgres" }, "ruang server listening");
        Ok(Server {
            addr,
            rtc_addr,
            rtc_tcp_addr: sfu.tcp_addr(),
            public_url,
            first_invite,
            shutdown,
            sfu,
            task,
        })
    }

    /// Stops gracefully: rooms are told, pending writes land, the database closes.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        let result = self.task.await?;
        self.sfu.shutdown();
        result
    }

    /// Runs until `signal` resolves, then shuts down gracefully.
    pub async fn run_until(
        self,
        signal: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        signal.await;
        self.shutdown().await
    }
}

/// How often due event reminders are looked for.
const REMIND_EVERY: Duration = Duration::from_secs(2);

/// How often freed heap memory is handed back to the OS.
const TRIM_EVERY: Duration = Duration::from_secs(5);

/// Returns freed heap pages to the OS. glibc keeps what thousands of closed connections
/// freed in its arenas (RSS stays at the peak after a burst); `malloc_trim` releases it.
fn give_back_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Writes a file readable only by its owner (the admin invite is a secret).
fn write_private(path: &std::path::Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

pub type SharedRegistry = Arc<Registry>;
