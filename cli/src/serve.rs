//! `ruang serve` and `ruang demo`.
//!
//! `ruang demo` runs the server with a live demo room: the host (moderator) and a guest it
//! invited up take turns speaking the two bundled clips (`assets/`), and it prints a ready
//! `ruang bot listen` command (with a token of a listener account it created) to hear them.

use anyhow::{Context, Result};
use ruang_client::media::{MediaOptions, MediaSession};
use ruang_client::{ApiClient, RoomSession, SessionOptions};
use ruang_media::device::{Pacing, Source, VirtualConfig, VirtualDevice};
use ruang_proto::RoomKind;
use ruang_server::{Config, Server};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long the demo waits for a step of its setup.
const WAIT: Duration = Duration::from_secs(10);

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "RUANG_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Data directory (SQLite database, first invite).
    #[arg(long, env = "RUANG_DATA", default_value = "ruang-data")]
    data: PathBuf,
    /// PostgreSQL URL (postgres://…) instead of the embedded SQLite.
    #[arg(long, env = "RUANG_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Public base URL used in invite and room links.
    #[arg(long, env = "RUANG_PUBLIC_URL")]
    public_url: Option<String>,
    /// Invite codes every new member gets.
    #[arg(long, env = "RUANG_INVITES_PER_USER", default_value_t = 5)]
    invites_per_user: u32,
    /// Seconds a member who lost the connection keeps their place and role.
    #[arg(long, env = "RUANG_REJOIN_GRACE_SECS", default_value_t = 30)]
    rejoin_grace_secs: u64,
    /// Seconds a room created over HTTP waits for its creator to connect.
    #[arg(long, env = "RUANG_FIRST_JOIN_GRACE_SECS", default_value_t = 600)]
    first_join_grace_secs: u64,
    /// Listeners every member sees by name; the rest are counted and paged.
    #[arg(long, env = "RUANG_AUDIENCE_SAMPLE", default_value_t = 50)]
    audience_sample: usize,
    /// Take client addresses from X-Forwarded-For (only behind a trusted reverse proxy).
    #[arg(long, env = "RUANG_TRUST_FORWARDED_FOR")]
    trust_forwarded_for: bool,
    /// Android package allowed to open this server's links (App Links).
    #[arg(long, env = "RUANG_ANDROID_PACKAGE", default_value = "org.ruang.app")]
    android_package: String,
    /// SHA-256 fingerprint of the Android app's signing certificate (repeat for several),
    /// served in /.well-known/assetlinks.json.
    #[arg(
        long = "android-cert-sha256",
        env = "RUANG_ANDROID_CERT_SHA256",
        value_delimiter = ','
    )]
    android_cert_fingerprints: Vec<String>,
    /// Failed invite codes or tokens allowed per address per minute.
    #[arg(long, env = "RUANG_AUTH_FAILURES_PER_MINUTE", default_value_t = 20)]
    auth_failures_per_minute: u32,
    /// First UDP port for WebRTC media (on the IP of --addr): each forwarding thread has its
    /// own, from this one up (8443–8444 with 2 threads); 0 picks free ports.
    #[arg(long, env = "RUANG_RTC_PORT", default_value_t = 8443)]
    rtc_port: u16,
    /// SFU forwarding threads (one UDP port each); 0: one per core, at most 8.
    #[arg(long, env = "RUANG_RTC_THREADS", default_value_t = 0)]
    rtc_threads: usize,
    /// TCP port for ICE-TCP (media for clients whose UDP is blocked; every forwarding
    /// thread shares it). Default: the --rtc-port number, on TCP; 0 picks a free port.
    #[arg(long, env = "RUANG_RTC_TCP_PORT")]
    rtc_tcp_port: Option<u16>,
    /// No ICE-TCP candidate (clients that cannot use UDP then need TURN).
    #[arg(long, env = "RUANG_NO_RTC_TCP")]
    no_rtc_tcp: bool,
    /// A TURN server for clients that can reach neither the UDP nor the TCP media port
    /// (repeat or comma-separate: turn:HOST:3478?transport=udp, turn:HOST:3478?transport=tcp,
    /// turns:HOST:443?transport=tcp). Needs --turn-secret.
    #[arg(long = "turn-url", env = "RUANG_TURN_URLS", value_delimiter = ',')]
    turn_urls: Vec<String>,
    /// The TURN server's shared secret (coturn: use-auth-secret, static-auth-secret=…):
    /// each client gets credentials made from it, valid for --turn-ttl-secs.
    #[arg(long, env = "RUANG_TURN_SECRET", hide_env_values = true)]
    turn_secret: Option<String>,
    /// How long TURN credentials handed to a client stay valid.
    #[arg(long, env = "RUANG_TURN_TTL_SECS", default_value_t = 86_400)]
    turn_ttl_secs: u64,
    /// Public IP put in the media answer's candidate (behind NAT, or with --addr 0.0.0.0).
    #[arg(long, env = "RUANG_RTC_PUBLIC_IP")]
    rtc_public_ip: Option<IpAddr>,
    /// Most speakers forwarded to one listener at once (the loudest).
    #[arg(long, env = "RUANG_FORWARD_LIMIT", default_value_t = 4)]
    forward_limit: usize,
    /// Cluster mode: the Redis server shared by every node (redis://HOST:PORT). Needs
    /// --database-url postgres://… (the same database for every node).
    #[arg(long = "cluster", env = "RUANG_CLUSTER", value_name = "REDIS_URL")]
    cluster: Option<String>,
    /// Cluster mode: this node's unique name (default: host name and port).
    #[arg(long, env = "RUANG_NODE_ID", requires = "cluster")]
    node_id: Option<String>,
    /// Cluster mode: the URL other nodes reach this node at (default: http://ADDR).
    #[arg(long, env = "RUANG_NODE_URL", requires = "cluster")]
    node_url: Option<String>,
    /// Guest listeners (browser, no account) connected at once, server-wide.
    #[arg(long, env = "RUANG_MAX_GUESTS", default_value_t = 1000)]
    max_guests: usize,
    /// Guest listens one address may start per minute.
    #[arg(long, env = "RUANG_GUEST_JOINS_PER_MINUTE", default_value_t = 30)]
    guest_joins_per_minute: u32,
    /// Connections open at once (lowered to fit the open-files limit, which is raised to
    /// its hard maximum at start); past it new connections get 503 with Retry-After.
    #[arg(long, env = "RUANG_MAX_CONNECTIONS", default_value_t = 10_000)]
    max_connections: usize,
    /// Connections open at once from one address (one /64 for IPv6); 0 = no cap. Ignored
    /// with --trust-forwarded-for (every connection then comes from the proxy).
    #[arg(long, env = "RUANG_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    max_connections_per_ip: usize,
    /// Seconds a request's headers may take to arrive.
    #[arg(long, env = "RUANG_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    header_timeout_secs: u64,
    /// Seconds a connection may stay with nothing read or written.
    #[arg(long, env = "RUANG_IDLE_TIMEOUT_SECS", default_value_t = 75)]
    idle_timeout_secs: u64,
    /// Rooms one member may have live at once (admins are not limited).
    #[arg(long, env = "RUANG_MAX_LIVE_ROOMS_PER_MEMBER", default_value_t = 3)]
    max_live_rooms_per_member: u32,
    /// TESTS ONLY: accept `http://` push endpoints and deliver to any address, loopback
    /// and private networks included (the Android app's UnifiedPush tests use a push
    /// endpoint on loopback). Never on a server others can reach.
    #[arg(long, hide = true)]
    push_allow_http_for_tests: bool,
    #[command(flatten)]
    log: LogArgs,
}

/// The log filter unless `RUANG_LOG` says otherwise: our lines at info, the libraries'
/// chatter (the WebRTC stacks log every connection at info) only when it matters.
pub const DEFAULT_LOG_FILTER: &str =
    "info,sqlx=warn,str0m=warn,rtc=warn,rtc_ice=warn,rtc_dtls=error,rtc_srtp=warn,webrtc=warn,hyper=warn,rustls=warn";

#[derive(clap::Args)]
pub struct LogArgs {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "RUANG_LOG_JSON")]
    log_json: bool,
}

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    #[command(flatten)]
    log: LogArgs,
}

fn init_logs(args: &LogArgs) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUANG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_writer(std::io::stdout);
    if args.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("stopping");
}

/// A node name that is unique on one machine and readable: host name and port.
fn default_node_id(addr: SocketAddr) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_else(|_| "node".into());
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(48)
        .collect();
    format!(
        "{}-{}",
        if host.is_empty() { "node" } else { &host },
        addr.port()
    )
}

pub async fn serve(args: ServeArgs) -> Result<()> {
    init_logs(&args.log);
    let config = Config {
        addr: args.addr,
        data_dir: args.data.clone(),
        database_url: args.database_url,
        public_url: args.public_url,
        invites_per_user: args.invites_per_user,
        rejoin_grace: Duration::from_secs(args.rejoin_grace_secs),
        first_join_grace: Duration::from_secs(args.first_join_grace_secs),
        audience_sample: args.audience_sample,
        trust_forwarded_for: args.trust_forwarded_for,
        android_package: args.android_package,
        android_cert_fingerprints: args.android_cert_fingerprints,
        auth_failures_per_minute: args.auth_failures_per_minute,
        rtc_port: args.rtc_port,
        rtc_threads: args.rtc_threads,
        rtc_public_ip: args.rtc_public_ip,
        rtc_tcp_port: (!args.no_rtc_tcp).then(|| args.rtc_tcp_port.unwrap_or(args.rtc_port)),
        turn: match (args.turn_urls.is_empty(), args.turn_secret) {
            (true, _) => None,
            (false, None) => anyhow::bail!(
                "--turn-url needs --turn-secret (the TURN server's static-auth-secret)"
            ),
            (false, Some(secret)) => Some(ruang_server::sfu::turn::TurnConfig {
                urls: args.turn_urls,
                secret,
                ttl: Duration::from_secs(args.turn_ttl_secs.max(60)),
            }),
        },
        forward_limit: args.forward_limit.max(1),
        max_guests: args.max_guests,
        guest_joins_per_minute: args.guest_joins_per_minute,
        max_connections: args.max_connections.max(1),
        max_connections_per_ip: args.max_connections_per_ip,
        header_timeout: Duration::from_secs(args.header_timeout_secs.max(1)),
        idle_timeout: Duration::from_secs(args.idle_timeout_secs.max(5)),
        max_live_rooms_per_member: args.max_live_rooms_per_member,
        cluster: args
            .cluster
            .map(|redis_url| ruang_server::cluster::ClusterConfig {
                redis_url,
                node_id: args.node_id.unwrap_or_else(|| default_node_id(args.addr)),
                node_url: args.node_url,
            }),
        push_allow_http: args.push_allow_http_for_tests,
        ..Config::default()
    };
    if config.push_allow_http {
        tracing::warn!(
            "--push-allow-http-for-tests: push endpoints may point anywhere (tests only)"
        );
    }
    let server = Server::start(config).await?;
    if let Some(code) = &server.first_invite {
        println!("Admin invite code: {code}");
        println!(
            "  (also in {}; sign up with: ruang signup --server {} --invite {code} --handle YOU)",
            args.data.join("first-invite.txt").display(),
            server.public_url
        );
    }
    server.run_until(stop_signal()).await
}

/// The two voices of the demo room (see `assets/README.md`), embedded so `ruang demo` runs
/// from any directory.
pub(crate) const CLIP_A: &[u8] = include_bytes!("../../assets/demo-speaker-a.wav");
pub(crate) const CLIP_B: &[u8] = include_bytes!("../../assets/demo-speaker-b.wav");
/// Silence between two turns of the demo conversation (`cli/tests/demo.rs` relies on it).
const TURN_GAP_MS: usize = 600;

pub async fn demo(args: DemoArgs) -> Result<()> {
    init_logs(&args.log);
    let clip_a = ruang_media::wav::read_wav_reader(CLIP_A).context("the bundled clip A")?;
    let clip_b = ruang_media::wav::read_wav_reader(CLIP_B).context("the bundled clip B")?;
    let data = tempfile::tempdir().context("creating a demo data directory")?;
    let server = Server::start(Config {
        addr: args.addr,
        data_dir: data.path().to_owned(),
        ..Config::default()
    })
    .await?;
    let url = server.public_url.clone();
    let code = server
        .first_invite
        .clone()
        .context("a fresh demo database has an admin invite")?;

    // Accounts: the host (moderator), a guest speaker, a listener for the printed command.
    let mut host = ApiClient::new(&url)?;
    host.signup(&code, "ruang_host", "Ruang Host").await?;
    let mut invites = host.invites().await?.into_iter();
    let mut member = |handle: &'static str, name: &'static str| {
        let invite = invites.next();
        let url = url.clone();
        async move {
            let invite = invite.context("the host has invites")?;
            let mut c = ApiClient::new(&url)?;
            c.signup(&invite.code, handle, name)
                .await
                .with_context(|| format!("signing up @{handle}"))?;
            anyhow::Ok(c)
        }
    };
    let guest = member("ruang_guest", "Ruang Guest").await?;
    let listener = member("listener", "Demo Listener").await?;
    let share = invites.next().context("the host has invites left")?;

    let room = host.create_room("Welcome to Ruang", RoomKind::Open).await?;
    let id = room.id.as_str();
    // The host stays connected as the room's moderator; a room without one ends.
    let host_session = join(&host, id).await?;
    let guest_session = join(&guest, id).await?;
    // The host invites the guest up; the guest accepts and unmutes.
    host_session
        .invite_to_speak(guest_session.me())
        .await
        .context("inviting the guest to speak")?;
    guest_session
        .wait_for(WAIT, |s| {
            s.room.room.as_ref().is_some_and(|r| r.invited_to_speak)
        })
        .await
        .map_err(|_| anyhow::anyhow!("the guest got no invitation"))?;
    guest_session
        .accept_invite()
        .await
        .context("the guest accepts")?;
    guest_session
        .wait_for(WAIT, |s| s.room.you().is_some_and(|p| p.role.on_stage()))
        .await
        .map_err(|_| anyhow::anyhow!("the guest did not come on stage"))?;
    for s in [&host_session, &guest_session] {
        if s.state().room.you().is_some_and(|p| p.muted) {
            s.set_muted(false).await.context("unmuting")?;
            s.wait_for(WAIT, |s| s.room.you().is_some_and(|p| !p.muted))
                .await
                .map_err(|_| anyhow::anyhow!("still muted"))?;
        }
    }

    // They take turns: A, gap, B, gap, A, … Both devices count samples from the same `go`.
    let gap = ruang_media::SAMPLE_RATE as usize * TURN_GAP_MS / 1000;
    let period = clip_a.len() + gap + clip_b.len() + gap;
    let b_start = clip_a.len() + gap;
    let go = Arc::new(AtomicBool::new(false));
    let mut host_mic = speaker_device(turns(clip_a, 0, period, go.clone()));
    let mut guest_mic = speaker_device(turns(clip_b, b_start, period, go.clone()));
    let host_media = MediaSession::start(&host_session, &mut host_mic, MediaOptions::default())
        .await
        .context("host media did not start")?;
    let guest_media = MediaSession::start(&guest_session, &mut guest_mic, MediaOptions::default())
        .await
        .context("guest media did not start")?;
    go.store(true, Ordering::Release);

    let token = listener.token().unwrap_or_default();
    println!();
    println!("Ruang demo is running at {url}");
    println!("Demo room \"{}\": {}  (id {id})", room.title, room.link);
    println!("On stage: @ruang_host and @ruang_guest, taking turns talking.");
    println!();
    let sep = if room.link.contains('?') { '&' } else { '?' };
    println!(
        "Listen in a browser (no account needed): {}{sep}listen=1",
        room.link
    );
    println!();
    println!("Or record it (10 s of the room to out.wav):");
    println!(
        "  ruang bot listen --server {url} --token {token} --room {id} --record out.wav --seconds 10"
    );
    println!();
    println!(
        "Sign up for your own account with the invite code {}:",
        share.code
    );
    println!(
        "  TOKEN=$(ruang signup --server {url} --invite {} --handle me)",
        share.code
    );
    println!("  ruang rooms --server {url} --token $TOKEN");
    println!("Invite link to share: {}", share.link);
    println!("Press Ctrl-C to stop (the demo data is temporary).");

    server
        .run_until(async move {
            stop_signal().await;
            host_media.stop().await;
            guest_media.stop().await;
        })
        .await?;
    drop((host_mic, guest_mic, data));
    Ok(())
}

async fn join(api: &ApiClient, room: &str) -> Result<RoomSession> {
    RoomSession::join(
        api.ws_url(room),
        api.token().unwrap_or_default().to_owned(),
        SessionOptions::default(),
    )
    .await
    .with_context(|| format!("joining the demo room {room}"))
}

fn speaker_device(source: Source) -> VirtualDevice {
    VirtualDevice::new(
        VirtualConfig {
            pacing: Pacing::Realtime { tick_ms: 10 },
            record_capacity: 0,
        },
        source,
    )
}

/// One voice of the demo conversation: silence until `go`, then, in every `period` samples,
/// `clip` from `start` on and silence the rest of the time. Runs on the device thread: no
/// allocation, no locks.
fn turns(clip: Vec<i16>, start: usize, period: usize, go: Arc<AtomicBool>) -> Source {
    let mut t = 0usize;
    Source::generator(move |out| {
        for s in out.iter_mut() {
            if !go.load(Ordering::Acquire) {
                *s = 0;
                continue;
            }
            let phase = t % period;
            t = t.wrapping_add(1);
            *s = phase
                .checked_sub(start)
                .and_then(|i| clip.get(i))
                .copied()
                .unwrap_or(0);
        }
    })
}
