//! `ruang load`: many real listeners (and a few speakers) against one server, to find how many
//! listeners a node holds. Signalling is the real protocol (one WebSocket per member, `hello`,
//! `media_offer` / `media_answer`); media is real ICE, DTLS-SRTP and RTP, on str0m peers driven
//! by one thread (see [`media`]). Server CPU and memory come from the server's own `/metrics`
//! (`ruang_process_cpu_seconds_total`, `ruang_process_resident_memory_bytes`), sampled at the
//! start and the end of the steady window.
//!
//! Load tests need `ruang serve --max-connections-per-ip 0` (every listener is one WebSocket
//! from the loader's address; the default cap is 256).

mod media;

use anyhow::{anyhow, bail, Context, Result};
use media::{Figures, MediaLoop};
use rand::Rng;
use ruang_client::{ApiClient, RoomSession, SessionOptions};
use ruang_proto::{Role, RoomKind};
use serde_json::json;
use std::net::{IpAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct LoadArgs {
    /// Server base URL.
    #[arg(long, env = "RUANG_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// An invite code: the loader signs up with it, then its members invite the rest.
    #[arg(long, conflicts_with = "token", required_unless_present = "token")]
    invite: Option<String>,
    /// A session token: an admin's mints one invite per account (`POST /v1/invites`); a
    /// member's unused invites are used, then those of the accounts they create.
    #[arg(long, env = "RUANG_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// An existing live room (the loader's account must be on stage in it); by default the
    /// loader creates an open room and ends it at the end.
    #[arg(long, conflicts_with = "rooms")]
    room: Option<String>,
    /// Rooms to create, each with its own speaker(s); listeners are dealt out over them in
    /// turn. Needs an admin's --token above 3 (members may have 3 live rooms).
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    /// Listener sessions to open (one account each: one connection per member per room).
    #[arg(long)]
    listeners: usize,
    /// Speakers sending Opus at 50 packets/s (the first is the loader's own account).
    #[arg(long, default_value_t = 1)]
    speakers: usize,
    /// Length of the steady window, once every listener has joined.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Listeners joining per second.
    #[arg(long, default_value_t = 50.0)]
    ramp_per_second: f64,
    /// Receive slots each listener offers (speakers heard at once).
    #[arg(long, default_value_t = 4)]
    slots: usize,
    /// After the steady window, this many more listeners join at --storm-per-second (a
    /// join storm): reported are their join times and what the listeners already there
    /// got of the audio sent meanwhile.
    #[arg(long, default_value_t = 0)]
    storm: usize,
    /// Joins per second during the storm.
    #[arg(long, default_value_t = 100.0)]
    storm_per_second: f64,
    /// Print the report as JSON on stdout (progress stays on stderr).
    #[arg(long)]
    json: bool,
    /// Cluster: the nodes' URLs (comma-separated) listeners connect through, dealt out in
    /// turn (the room and speakers stay on --server); the server figures are then summed
    /// over --server and these nodes.
    #[arg(long, value_delimiter = ',')]
    nodes: Vec<String>,
}

/// The server's own figures from `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
struct ServerSample {
    cpu_seconds: f64,
    rss_bytes: f64,
    forwarded: f64,
    received: f64,
    socket_drops: f64,
    relay_dropped: f64,
    at: Option<Instant>,
}

/// [`server_sample`] summed over every server the run uses (--server and --nodes).
async fn servers_sample(http: &reqwest::Client, args: &LoadArgs) -> Result<ServerSample> {
    let mut bases: Vec<&str> = vec![args.server.trim_end_matches('/')];
    for n in &args.nodes {
        let n = n.trim_end_matches('/');
        if !bases.contains(&n) {
            bases.push(n);
        }
    }
    let mut sum = ServerSample::default();
    for base in bases {
        let s = server_sample(http, base).await?;
        sum.cpu_seconds += s.cpu_seconds;
        sum.rss_bytes += s.rss_bytes;
        sum.forwarded += s.forwarded;
        sum.received += s.received;
        sum.socket_drops += s.socket_drops;
        sum.relay_dropped += s.relay_dropped;
        sum.at = s.at;
    }
    Ok(sum)
}

async fn server_sample(http: &reqwest::Client, base: &str) -> Result<ServerSample> {
    let text = http
        .get(format!("{}/metrics", base.trim_end_matches('/')))
        .send()
        .await
        .context("GET /metrics")?
        .error_for_status()?
        .text()
        .await?;
    let at = Some(Instant::now());
    let get = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| {
                let (n, v) = l.split_once(' ')?;
                (n == name).then(|| v.trim().parse().ok())?
            })
            .unwrap_or(f64::NAN)
    };
    Ok(ServerSample {
        cpu_seconds: get("ruang_process_cpu_seconds_total"),
        rss_bytes: get("ruang_process_resident_memory_bytes"),
        forwarded: get("ruang_sfu_packets_forwarded_total"),
        received: get("ruang_sfu_packets_received_total"),
        socket_drops: get("ruang_sfu_socket_drops_total"),
        relay_dropped: get("ruang_sfu_packets_relay_dropped_total"),
        at,
    })
}

/// This process's CPU time (user + system), seconds.
fn own_cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the zeroed struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return f64::NAN;
    }
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    s(u.ru_utime) + s(u.ru_stime)
}

/// Raises the soft limit of open descriptors to the hard one: each listener holds a UDP
/// socket and a WebSocket.
fn raise_nofile_limit() {
    // SAFETY: getrlimit/setrlimit on a struct we own.
    unsafe {
        let mut l: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

/// The local address that reaches the server (peers bind their sockets on it).
fn local_ip_towards(server: &str) -> Result<IpAddr> {
    let url = url::Url::parse(server).context("server URL")?;
    let host = url
        .host_str()
        .ok_or_else(|| anyhow!("no host in {server}"))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let addr = (host, port)
        .to_socket_addrs()
        .context("resolving the server")?
        .next()
        .ok_or_else(|| anyhow!("{host} has no address"))?;
    let probe = UdpSocket::bind(if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })?;
    probe.connect(addr)?;
    Ok(probe.local_addr()?.ip())
}

fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[i])
}

fn round(v: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (v * p).round() / p
}

/// Creates `count` accounts with the invites `driver` can get; returns their API clients.
async fn make_accounts(
    server: &str,
    driver: &ApiClient,
    admin: bool,
    tag: &str,
    count: usize,
) -> Result<Vec<ApiClient>> {
    let mut out: Vec<ApiClient> = Vec::with_capacity(count);
    let mut pool: Vec<String> = if admin {
        Vec::new()
    } else {
        driver
            .invites()
            .await
            .context("listing invites")?
            .into_iter()
            .map(|i| i.code)
            .collect()
    };
    let mut next_inviter = 0;
    while out.len() < count {
        let code = if admin {
            driver
                .create_invite()
                .await
                .context("minting an invite")?
                .code
        } else {
            // Invites of the accounts created so far, as they are needed.
            while pool.is_empty() {
                if next_inviter >= out.len() {
                    bail!(
                        "ran out of invites after {} accounts (use an admin's --token)",
                        out.len()
                    );
                }
                pool = out[next_inviter]
                    .invites()
                    .await?
                    .into_iter()
                    .map(|i| i.code)
                    .collect();
                next_inviter += 1;
            }
            pool.pop().expect("not empty")
        };
        let handle = format!("ld{tag}_{}", out.len());
        let mut c = ApiClient::new(server)?;
        c.signup(&code, &handle, &handle)
            .await
            .with_context(|| format!("signing up {handle}"))?;
        out.push(c);
        if out.len().is_multiple_of(200) {
            eprintln!("load: {} accounts", out.len());
        }
    }
    Ok(out)
}

pub async fn load(args: LoadArgs) -> Result<()> {
    if args.listeners == 0 {
        bail!("--listeners must be at least 1");
    }
    if args.speakers == 0 {
        bail!("--speakers must be at least 1");
    }
    raise_nofile_limit();
    let started = Instant::now();
    let tag: String = {
        let mut rng = rand::thread_rng();
        (0..6)
            .map(|_| {
                let d = rng.gen_range(0..36u32);
                char::from_digit(d, 36).expect("base 36")
            })
            .collect()
    };
    let http = reqwest::Client::new();
    let driver = match (&args.token, &args.invite) {
        (Some(t), _) => ApiClient::new(&args.server)?.with_token(t.clone()),
        (None, Some(code)) => {
            let mut c = ApiClient::new(&args.server)?;
            let handle = format!("ld{tag}_host");
            c.signup(code, &handle, &handle)
                .await
                .context("signing up with the invite")?;
            c
        }
        (None, None) => bail!("--invite or --token is required"),
    };
    let me = driver.me().await.context("checking the account")?;
    eprintln!(
        "load: {} listeners, {} speaker(s), {} s steady, as @{}{}",
        args.listeners,
        args.speakers,
        args.seconds,
        me.handle,
        if me.is_admin { " (admin)" } else { "" }
    );
    if args.rooms == 0 {
        bail!("--rooms must be at least 1");
    }
    if args.rooms > 1 && args.storm > 0 {
        bail!("--storm measures one room: use it with --rooms 1");
    }
    let extra_speakers = (args.speakers - 1) * args.rooms;
    let accounts = make_accounts(
        &args.server,
        &driver,
        me.is_admin,
        &tag,
        args.listeners + extra_speakers + args.storm,
    )
    .await?;
    eprintln!("load: {} accounts ready", accounts.len());

    let (rooms, created) = match &args.room {
        Some(r) => (vec![r.clone()], false),
        None => {
            let mut rooms = Vec::with_capacity(args.rooms);
            for k in 0..args.rooms {
                let title = if args.rooms == 1 {
                    format!("ruang load {tag}")
                } else {
                    format!("ruang load {tag} #{}", k + 1)
                };
                let room = driver
                    .create_room(&title, RoomKind::Open)
                    .await
                    .context("creating a room")?;
                rooms.push(room.id.to_string());
            }
            (rooms, true)
        }
    };
    let media = Arc::new(MediaLoop::start(local_ip_towards(&args.server)?)?);
    let result = run(
        &args,
        &driver,
        &accounts,
        &rooms,
        media.clone(),
        &http,
        started,
    )
    .await;
    // The accounts to log out at the end: those made here (the loader's own too, with --invite).
    let mut accounts = accounts;
    if args.token.is_none() {
        accounts.push(driver.clone());
    }

    // Clean up: listeners and speakers leave; the room ends if the loader made it.
    let (sessions, report) = match result {
        Ok(v) => v,
        Err((sessions, e)) => {
            cleanup(&sessions, &driver, &rooms, created, &accounts).await;
            if let Ok(m) = Arc::try_unwrap(media) {
                let _ = m.stop();
            }
            return Err(e);
        }
    };
    cleanup(&sessions, &driver, &rooms, created, &accounts).await;
    let mut report = report;
    let figures = match Arc::try_unwrap(media) {
        Ok(m) => m.stop()?,
        Err(_) => bail!("the media loop is still shared"),
    };
    finish_report(&mut report, &figures, &args);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_human(&report);
    }
    Ok(())
}

type Sessions = Vec<RoomSession>;

async fn cleanup(
    sessions: &Sessions,
    driver: &ApiClient,
    rooms: &[String],
    created: bool,
    accounts: &[ApiClient],
) {
    let leaves = sessions.iter().map(|s| s.leave(true));
    for r in futures_util::future::join_all(leaves).await {
        let _ = r;
    }
    if created {
        // The loader's own session ended each room when it left as its last moderator; make
        // sure with a fresh connection if it did not.
        for room in rooms {
            if let Ok(s) = RoomSession::join(
                driver.ws_url(room),
                driver.token().unwrap_or_default().to_owned(),
                SessionOptions::default(),
            )
            .await
            {
                let _ = s.end_room().await;
            }
        }
    }
    let logouts = accounts.iter().map(|a| a.logout());
    for r in futures_util::future::join_all(logouts).await {
        let _ = r;
    }
    eprintln!(
        "load: cleaned up (left the room{}{}, logged the accounts out)",
        if rooms.len() > 1 { "s" } else { "" },
        if created { ", ended them" } else { "" }
    );
}

async fn run(
    args: &LoadArgs,
    driver: &ApiClient,
    accounts: &[ApiClient],
    rooms: &[String],
    media: Arc<MediaLoop>,
    http: &reqwest::Client,
    started: Instant,
) -> std::result::Result<(Sessions, serde_json::Value), (Sessions, anyhow::Error)> {
    let mut sessions: Sessions = Vec::new();
    macro_rules! tri {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(e) => return Err((sessions, anyhow::Error::from(e))),
            }
        };
    }
    let token = |c: &ApiClient| c.token().unwrap_or_default().to_owned();

    // Speakers of each room: the loader's account, then others brought on stage by it.
    let mut extra =
        accounts[args.listeners..args.listeners + (args.speakers - 1) * rooms.len()].iter();
    for room in rooms {
        let host = tri!(
            RoomSession::join(
                driver.ws_url(room),
                token(driver),
                SessionOptions::default()
            )
            .await
        );
        let on_stage = host
            .state()
            .room
            .room
            .as_ref()
            .map(|r| r.you.role != Role::Listener)
            .unwrap_or(false);
        if !on_stage {
            sessions.push(host);
            return Err((
                sessions,
                anyhow!("the loader's account is not on stage in room {room}"),
            ));
        }
        tri!(host.set_muted(false).await);
        let mut speaker_sessions = vec![host];
        for c in extra.by_ref().take(args.speakers - 1) {
            let s =
                tri!(RoomSession::join(c.ws_url(room), token(c), SessionOptions::default()).await);
            let id = s.me().clone();
            tri!(speaker_sessions[0].invite_to_speak(&id).await);
            let invited = s
                .wait_for(Duration::from_secs(10), |st| {
                    st.room
                        .room
                        .as_ref()
                        .map(|r| r.invited_to_speak)
                        .unwrap_or(false)
                })
                .await;
            if invited.is_err() {
                sessions.push(s);
                return Err((sessions, anyhow!("a speaker was not invited in time")));
            }
            tri!(s.accept_invite().await);
            tri!(s.set_muted(false).await);
            speaker_sessions.push(s);
        }
        for s in &speaker_sessions {
            let (peer, offer) = tri!(media.new_peer(true, 0, Instant::now()).await);
            let answer = tri!(s.media_offer(offer).await);
            tri!(media.answer(peer, answer).await);
        }
        sessions.extend(speaker_sessions);
    }
    eprintln!(
        "load: {} speaker(s) on stage in {} room(s)",
        args.speakers * rooms.len(),
        rooms.len()
    );

    // Listeners, at --ramp-per-second.
    let ramp_started = Instant::now();
    let (joined_sessions, join_failures, first_error) = join_listeners(
        &accounts[..args.listeners],
        rooms,
        args.ramp_per_second,
        args.slots,
        &media,
        &args.nodes,
    )
    .await;
    sessions.extend(joined_sessions);
    if let Some(e) = &first_error {
        eprintln!("load: {join_failures} listener(s) failed to join; first: {e}");
    }
    let joined = args.listeners as u64 - join_failures;
    // Give the last ones a moment to hear audio before the steady window.
    wait_for_audio(&media, joined).await;
    eprintln!(
        "load: {joined} listener(s) joined in {:.1} s, {} hear audio",
        ramp_started.elapsed().as_secs_f64(),
        media.live.listeners_with_audio.load(Ordering::Relaxed)
    );

    // Steady window.
    let s0 = tri!(servers_sample(http, args).await);
    let own0 = own_cpu_seconds();
    let rx0 = media.live.packets_received.load(Ordering::Relaxed);
    let end = Instant::now() + Duration::from_secs(args.seconds);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    while Instant::now() < end {
        tick.tick().await;
        eprintln!(
            "load: {:>4.0} s  {} with audio  {} packets received  {} sent",
            started.elapsed().as_secs_f64(),
            media.live.listeners_with_audio.load(Ordering::Relaxed),
            media.live.packets_received.load(Ordering::Relaxed),
            media.live.packets_sent.load(Ordering::Relaxed),
        );
    }
    let s1 = tri!(servers_sample(http, args).await);
    let own1 = own_cpu_seconds();
    let rx1 = media.live.packets_received.load(Ordering::Relaxed);
    let wall = match (s0.at, s1.at) {
        (Some(a), Some(b)) => (b - a).as_secs_f64(),
        _ => args.seconds as f64,
    };
    let cpu = s1.cpu_seconds - s0.cpu_seconds;
    let listener_seconds = joined.max(1) as f64 * wall;

    // The join storm: more listeners at --storm-per-second while the others listen.
    let mut storm = serde_json::Value::Null;
    if args.storm > 0 {
        tri!(media.phase());
        let first = args.listeners + (args.speakers - 1) * rooms.len();
        eprintln!(
            "load: join storm: {} listeners at {}/s",
            args.storm, args.storm_per_second
        );
        let storm_started = Instant::now();
        let (storm_sessions, failures, first_error) = join_listeners(
            &accounts[first..first + args.storm],
            rooms,
            args.storm_per_second,
            args.slots,
            &media,
            &args.nodes,
        )
        .await;
        sessions.extend(storm_sessions);
        if let Some(e) = &first_error {
            eprintln!("load: {failures} storm listener(s) failed to join; first: {e}");
        }
        wait_for_audio(&media, joined + args.storm as u64 - failures).await;
        // The storm's phase ends here: what is sent from now on (while everyone leaves) is
        // not the storm's.
        tri!(media.phase());
        let s2 = tri!(servers_sample(http, args).await);
        let storm_wall = storm_started.elapsed().as_secs_f64();
        storm = json!({
            "listeners": args.storm,
            "per_second": args.storm_per_second,
            "join_failures": failures,
            "seconds": round(storm_wall, 2),
            "server_cpu_percent": round((s2.cpu_seconds - s1.cpu_seconds) / storm_wall * 100.0, 2),
            "server_rss_mib": round(s2.rss_bytes / (1024.0 * 1024.0), 1),
            "server_socket_drops": s2.socket_drops - s1.socket_drops,
            "server_relay_dropped": s2.relay_dropped - s1.relay_dropped,
        });
    }
    let report = json!({
        "server": args.server,
        "nodes": args.nodes,
        "room": rooms[0],
        "rooms": rooms,
        "listeners": args.listeners,
        "speakers": args.speakers,
        "seconds": args.seconds,
        "joined": joined,
        "join_failures": join_failures,
        "steady_window_s": round(wall, 3),
        "server_cpu_percent": round(cpu / wall * 100.0, 2),
        "server_cpu_ms_per_listener_second": round(cpu * 1000.0 / listener_seconds, 3),
        "server_rss_mib": round(s1.rss_bytes / (1024.0 * 1024.0), 1),
        "server_rss_mib_start": round(s0.rss_bytes / (1024.0 * 1024.0), 1),
        "server_packets_forwarded_total": s1.forwarded,
        "server_packets_received_total": s1.received,
        "server_packets_forwarded_in_window": s1.forwarded - s0.forwarded,
        "server_socket_drops_total": s1.socket_drops,
        "server_relay_dropped_total": s1.relay_dropped,
        "packets_received_in_window": rx1 - rx0,
        "loader_cpu_percent": round((own1 - own0) / wall * 100.0, 2),
        "storm": storm,
    });
    Ok((sessions, report))
}

/// Waits until `listeners` have heard audio, 5 s at most.
async fn wait_for_audio(media: &MediaLoop, listeners: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while media.live.listeners_with_audio.load(Ordering::Relaxed) < listeners
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `accounts` join `rooms` (in turn) as listeners at `per_second`, each with a media peer
/// of `slots` receive slots: the sessions, the failures and the first failure's reason.
async fn join_listeners(
    accounts: &[ApiClient],
    rooms: &[String],
    per_second: f64,
    slots: usize,
    media: &Arc<MediaLoop>,
    nodes: &[String],
) -> (Sessions, u64, Option<String>) {
    let started = Instant::now();
    let gap = Duration::from_secs_f64(1.0 / per_second.max(0.001));
    let mut joins = Vec::with_capacity(accounts.len());
    for (i, c) in accounts.iter().enumerate() {
        let at = started + gap.mul_f64(i as f64);
        tokio::time::sleep_until(at.into()).await;
        let media = media.clone();
        let mut url = c.ws_url(&rooms[i % rooms.len()]);
        if let Some(node) = (!nodes.is_empty()).then(|| &nodes[i % nodes.len()]) {
            // Through that node (cluster): same path, its host and port.
            if let Ok(n) = url::Url::parse(node) {
                let _ = url.set_host(n.host_str());
                let _ = url.set_port(n.port_or_known_default());
            }
        }
        let tok = c.token().unwrap_or_default().to_owned();
        joins.push(tokio::spawn(async move {
            let hello = Instant::now();
            let s = RoomSession::join(url, tok, SessionOptions::default())
                .await
                .map_err(|e| anyhow!("join: {e}"))?;
            let (peer, offer) = media.new_peer(false, slots, hello).await?;
            let answer = s
                .media_offer(offer)
                .await
                .map_err(|e| anyhow!("offer: {e}"))?;
            media.answer(peer, answer).await?;
            Ok::<RoomSession, anyhow::Error>(s)
        }));
    }
    let mut sessions = Vec::with_capacity(accounts.len());
    let mut failures = 0u64;
    let mut first_error = None;
    for j in joins {
        match j.await {
            Ok(Ok(s)) => sessions.push(s),
            Ok(Err(e)) => {
                failures += 1;
                first_error.get_or_insert(e.to_string());
            }
            Err(e) => {
                failures += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    (sessions, failures, first_error)
}

fn finish_report(report: &mut serde_json::Value, f: &Figures, args: &LoadArgs) {
    let received: u64 = f.listeners.iter().map(|l| l.received()).sum();
    let expected: u64 = f.listeners.iter().map(|l| l.expected()).sum();
    let duplicates: u64 = f.listeners.iter().map(|l| l.duplicates()).sum();
    let lost = expected.saturating_sub(received);
    let (slot_expected, slot_received) = f
        .listeners
        .iter()
        .map(|l| l.slot_packets())
        .fold((0, 0), |(e, r), (a, b)| (e + a, r + b));
    let slot_lost = slot_expected.saturating_sub(slot_received);
    let without_audio = f
        .listeners
        .iter()
        .filter(|l| l.first_packet.is_none())
        .count();
    // Join times of the first ramp (the storm's are reported apart).
    let ramp = f
        .phases
        .first()
        .map_or(f.listeners.len(), |p| p.cohort.min(f.listeners.len()));
    let mut joins: Vec<f64> = f.listeners[..ramp]
        .iter()
        .filter_map(|l| l.join())
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    joins.sort_by(|a, b| a.total_cmp(b));
    let r = |v: Option<f64>| v.map(|x| round(x, 2));
    let extra = json!({
        "packets_sent": f.packets_sent,
        "packets_expected": expected,
        "packets_received": received,
        "packets_lost": lost,
        "duplicates": duplicates,
        "packets_unmatched": f.unmatched,
        "server_to_listener_packets_expected": slot_expected,
        "server_to_listener_packets_lost": slot_lost,
        "server_to_listener_loss_percent": if slot_expected == 0 { 0.0 } else { round(slot_lost as f64 * 100.0 / slot_expected as f64, 3) },
        "loss_percent": if expected == 0 { 0.0 } else { round(lost as f64 * 100.0 / expected as f64, 3) },
        "forward_delay_ms": {
            "p50": r(f.delay_ms(0.50)),
            "p95": r(f.delay_ms(0.95)),
            "p99": r(f.delay_ms(0.99)),
        },
        "join_ms": {
            "p50": r(quantile(&joins, 0.50)),
            "p95": r(quantile(&joins, 0.95)),
            "max": r(joins.last().copied()),
        },
        "listeners_without_audio": without_audio
            + (args.listeners + args.storm).saturating_sub(f.listeners.len()),
    });
    if let (Some(o), Some(e)) = (report.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    if let (Some(phase), Some(storm)) = (f.phases.first(), report["storm"].as_object_mut()) {
        let newcomers = &f.listeners[phase.cohort.min(f.listeners.len())..];
        let mut joins: Vec<f64> = newcomers
            .iter()
            .filter_map(|l| l.join())
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        joins.sort_by(|a, b| a.total_cmp(b));
        let within_2s = joins.iter().filter(|&&ms| ms <= 2000.0).count();
        let expected = phase.expected();
        let lost = expected.saturating_sub(phase.received);
        let more = json!({
            "join_ms": {
                "p50": r(quantile(&joins, 0.50)),
                "p95": r(quantile(&joins, 0.95)),
                "max": r(joins.last().copied()),
            },
            "heard_audio_within_2s": within_2s,
            "without_audio": args.storm - joins.len(),
            "existing_listeners": phase.cohort,
            "existing_packets_expected": expected,
            "existing_packets_received": phase.received,
            "existing_loss_percent": if expected == 0 { 0.0 } else { round(lost as f64 * 100.0 / expected as f64, 3) },
            "existing_forward_delay_ms": {
                "p50": r(phase.delay_ms(0.50)),
                "p95": r(phase.delay_ms(0.95)),
                "p99": r(phase.delay_ms(0.99)),
            },
        });
        if let Some(m) = more.as_object() {
            for (k, v) in m {
                storm.insert(k.clone(), v.clone());
            }
        }
    }
}

fn print_human(r: &serde_json::Value) {
    println!(
        "listeners {} (joined {}), speakers {}, steady window {} s",
        r["listeners"], r["joined"], r["speakers"], r["steady_window_s"]
    );
    println!(
        "packets: expected {} received {} lost {} ({}%) duplicates {}",
        r["packets_expected"],
        r["packets_received"],
        r["packets_lost"],
        r["loss_percent"],
        r["duplicates"]
    );
    println!(
        "forwarding delay ms: p50 {} p95 {} p99 {}",
        r["forward_delay_ms"]["p50"], r["forward_delay_ms"]["p95"], r["forward_delay_ms"]["p99"]
    );
    println!(
        "join ms (hello → first packet): p50 {} p95 {}; listeners without audio {}",
        r["join_ms"]["p50"], r["join_ms"]["p95"], r["listeners_without_audio"]
    );
    println!(
        "server: CPU {}% of one core, {} ms per listener-second, RSS {} MiB; loader CPU {}%",
        r["server_cpu_percent"],
        r["server_cpu_ms_per_listener_second"],
        r["server_rss_mib"],
        r["loader_cpu_percent"]
    );
    let s = &r["storm"];
    if s.is_object() {
        println!(
            "join storm: {} at {}/s: join ms p50 {} p95 {} max {}; {} heard audio within 2 s; \
             the {} already listening: loss {}%, delay p99 {} ms",
            s["listeners"],
            s["per_second"],
            s["join_ms"]["p50"],
            s["join_ms"]["p95"],
            s["join_ms"]["max"],
            s["heard_audio_within_2s"],
            s["existing_listeners"],
            s["existing_loss_percent"],
            s["existing_forward_delay_ms"]["p99"]
        );
    }
}
