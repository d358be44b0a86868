//! `ruang serve` and `ruang demo`.

use anyhow::{Context, Result};
use ruang_client::ApiClient;
use ruang_proto::RoomKind;
use ruang_server::{Config, Server};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

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
    /// Failed invite codes or tokens allowed per address per minute.
    #[arg(long, env = "RUANG_AUTH_FAILURES_PER_MINUTE", default_value_t = 20)]
    auth_failures_per_minute: u32,
    /// UDP port for all WebRTC media (on the IP of --addr); 0 picks a free port.
    #[arg(long, env = "RUANG_RTC_PORT", default_value_t = 8443)]
    rtc_port: u16,
    /// Public IP put in the media answer's candidate (behind NAT, or with --addr 0.0.0.0).
    #[arg(long, env = "RUANG_RTC_PUBLIC_IP")]
    rtc_public_ip: Option<IpAddr>,
    /// Most speakers forwarded to one listener at once (the loudest).
    #[arg(long, env = "RUANG_FORWARD_LIMIT", default_value_t = 4)]
    forward_limit: usize,
    #[command(flatten)]
    log: LogArgs,
}

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
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
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
        auth_failures_per_minute: args.auth_failures_per_minute,
        rtc_port: args.rtc_port,
        rtc_public_ip: args.rtc_public_ip,
        forward_limit: args.forward_limit.max(1),
        ..Config::default()
    };
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

pub async fn demo(args: DemoArgs) -> Result<()> {
    init_logs(&args.log);
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
    let mut host = ApiClient::new(&url)?;
    host.signup(&code, "ruang_host", "Ruang Host").await?;
    let room = host.create_room("Welcome to Ruang", RoomKind::Open).await?;
    // The host stays connected as the room's moderator; a room without one ends.
    let _host_session = ruang_client::RoomSession::join(
        host.ws_url(room.id.as_str()),
        host.token().unwrap_or_default().to_owned(),
        Default::default(),
    )
    .await?;
    let invite = host
        .invites()
        .await?
        .into_iter()
        .next()
        .context("the host has invites")?;
    println!();
    println!("Ruang demo is running at {url}");
    println!("Demo room: {}  (id {})", room.link, room.id);
    println!();
    println!("Join it:");
    println!(
        "  TOKEN=$(ruang signup --server {url} --invite {} --handle me)",
        invite.code
    );
    println!("  ruang rooms --server {url} --token $TOKEN");
    println!("Invite link to share: {}", invite.link);
    println!("Press Ctrl-C to stop (the demo data is temporary).");
    server.run_until(stop_signal()).await
}
