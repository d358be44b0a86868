//! Network switch: a listener in its own network namespace (a veth pair to the host, where
//! the real server listens) changes its address mid-stream — the old one is removed, as when
//! a phone moves from Wi-Fi to mobile data — and calls `MediaSession::network_changed()`, as
//! the Android app does from `ConnectivityManager`'s callback. Audio comes back over a new
//! transport, the listener stays in the room with its role (a reconnect, not a rejoin), and
//! the time from the address change to audio playing again is printed (never asserted; the
//! figure for docs/benchmarks.md comes from `RUANG_SWITCHES=10`).
//!
//! Needs root (network namespaces) and `ip` (iproute2): CI has both (`scripts/test` installs
//! iproute2 and sets `RUANG_REQUIRE_NETNS=1`, which turns a skip into a failure).

use ruang_client::media::ruang_media::device::Source;
use ruang_client::media::MediaStats;
use ruang_client::media::{MediaOptions, MediaSession, TransportOptions};
use ruang_client::{ConnectionState, RoomSession, SessionOptions};
use ruang_proto::{Role, RoomKind};
use ruang_server::sfu::turn::TurnConfig;
use ruang_server::Config;
use ruang_tests::media::{device, listener_opts};
use ruang_tests::turn::Coturn;
use ruang_tests::{Backend, TestServer};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(30);

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A network namespace joined to the host by a veth pair; removed on drop.
struct Netns {
    name: String,
    host_if: String,
    ns_if: String,
    /// First three octets of the /24 between them.
    net: String,
}

impl Netns {
    /// `tag` (two letters, one per test) keeps the tests of one process apart.
    fn create(tag: &str, subnet: u8) -> Result<Netns, String> {
        let id = std::process::id() % 10_000;
        let n = Netns {
            name: format!("ruang-{tag}-{id}"),
            host_if: format!("r{tag}{id}h"),
            ns_if: format!("r{tag}{id}n"),
            net: format!("10.{subnet}.{}", id % 250),
        };
        let _ = ip(&["netns", "del", &n.name]);
        let _ = ip(&["link", "del", &n.host_if]);
        ip(&["netns", "add", &n.name])?;
        ip(&[
            "link", "add", &n.host_if, "type", "veth", "peer", "name", &n.ns_if,
        ])?;
        ip(&["link", "set", &n.ns_if, "netns", &n.name])?;
        ip(&["addr", "add", &format!("{}.1/24", n.net), "dev", &n.host_if])?;
        ip(&["link", "set", &n.host_if, "up"])?;
        ip(&["-n", &n.name, "link", "set", "lo", "up"])?;
        ip(&[
            "-n",
            &n.name,
            "addr",
            "add",
            &format!("{}.2/24", n.net),
            "dev",
            &n.ns_if,
        ])?;
        ip(&["-n", &n.name, "link", "set", &n.ns_if, "up"])?;
        n.default_route()?;
        Ok(n)
    }

    /// The host side is the namespace's gateway (as a phone has one on every network).
    fn default_route(&self) -> Result<(), String> {
        let gw = format!("{}.1", self.net);
        ip(&["-n", &self.name, "route", "replace", "default", "via", &gw])
    }

    /// Moves the namespace side from `.from` to `.to`: the old address is removed (sockets
    /// bound to it are dead from then on, and its routes go with it), then the new one comes
    /// with its default route — a phone leaving Wi-Fi for mobile data.
    fn switch(&self, from: u8, to: u8) -> Result<(), String> {
        let addr = |h: u8| format!("{}.{h}/24", self.net);
        ip(&[
            "-n",
            &self.name,
            "addr",
            "del",
            &addr(from),
            "dev",
            &self.ns_if,
        ])?;
        ip(&[
            "-n",
            &self.name,
            "addr",
            "add",
            &addr(to),
            "dev",
            &self.ns_if,
        ])?;
        self.default_route()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// A server on the host side of `ns` (where the namespace reaches it), set up by `tweak`;
/// its admin "maya" with an open room titled `title`, and member "budi".
async fn server_for(
    ns: &Netns,
    title: &str,
    tweak: impl FnOnce(&mut Config),
) -> (
    TestServer,
    ruang_client::ApiClient,
    ruang_client::ApiClient,
    String,
) {
    let server_ip = format!("{}.1", ns.net);
    let ts = TestServer::start_with(Backend::Sqlite, |c| {
        c.addr = format!("{server_ip}:0").parse().unwrap();
        tweak(c);
    })
    .await;
    let maya = ts.admin("maya").await;
    let room = maya
        .create_room(title, RoomKind::Open)
        .await
        .expect("room")
        .id
        .as_str()
        .to_owned();
    let budi = ts.member(&maya, "budi").await;
    (ts, maya, budi, room)
}

fn can_run() -> Result<(), String> {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        return Err("not root".into());
    }
    ip(&["-V"]).map_err(|e| format!("no iproute2: {e}"))
}

/// Runs `f` on a new thread that has entered network namespace `name`, with its own
/// single-threaded runtime: every socket the client opens (WebSocket, WebRTC) is inside it.
fn in_netns<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/run/netns/{name}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("the namespace exists");
        // SAFETY: setns on this thread only, with a valid namespace descriptor.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
}

#[test]
fn listener_survives_address_changes_without_rejoining() {
    if let Err(why) = can_run() {
        assert!(
            std::env::var_os("RUANG_REQUIRE_NETNS").is_none(),
            "RUANG_REQUIRE_NETNS is set but: {why}"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let switches: usize = std::env::var("RUANG_SWITCHES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let ns = Netns::create("sw", 213).expect("network namespace");
    let host = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (ts, moderator, listener_api, room) = host.block_on(server_for(&ns, "Switch", |_| {}));
    // The speaker talks continuously on the host side.
    let speaker_session = host.block_on(ts.join(&moderator, &room));
    let mut mic = device(Source::samples(
        ruang_client::media::ruang_media::signal::speech_like(48_000 * 4, 3),
        true,
    ));
    let speaker_media = host
        .block_on(MediaSession::start(
            &speaker_session,
            &mut mic,
            MediaOptions::default(),
        ))
        .expect("speaker media");

    let ws_url = listener_api.ws_url(&room);
    let token = listener_api.token().unwrap().to_owned();
    let ns_name = ns.name.clone();
    let net = ns.net.clone();
    let moderator_view = speaker_session.clone();
    let switcher = Netns {
        name: ns.name.clone(),
        host_if: String::new(),
        ns_if: ns.ns_if.clone(),
        net: ns.net.clone(),
    };
    let result = in_netns(&ns_name, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let session = RoomSession::join(ws_url, token, SessionOptions::default())
                .await
                .expect("the listener joins from inside the namespace");
            let me = session.me().clone();
            let mut ear = device(Source::Silence);
            let media = MediaSession::start(
                &session,
                &mut ear,
                MediaOptions {
                    capture: false,
                    playout_ms: 40,
                    transport: TransportOptions {
                        // Every interface of the namespace as it is at each negotiation.
                        udp_addrs: vec!["0.0.0.0:0".into()],
                        ..TransportOptions::default()
                    },
                    ..MediaOptions::default()
                },
            )
            .await
            .expect("listener media");
            media
                .wait_for(PATIENCE, |s| s.frames_with_audio >= 50)
                .await
                .unwrap_or_else(|s| panic!("no audio before switching: {s:#?}"));
            let mut back_ms = Vec::new();
            let mut at = 2u8;
            for k in 0..switches {
                let before = media.stats();
                let to = if at == 2 { 3 } else { 2 };
                let t0 = Instant::now();
                switcher.switch(at, to).expect("address change");
                at = to;
                media
                    .network_changed()
                    .await
                    .unwrap_or_else(|e| panic!("switch {k}: {e}"));
                // Audio is back when a frame with audio plays after packets arrived on the
                // new transport.
                let arrived = media
                    .wait_for(PATIENCE, |s| {
                        s.transport_generation > before.transport_generation
                            && s.slots.iter().any(|sl| sl.packets >= 2)
                    })
                    .await
                    .unwrap_or_else(|s| panic!("switch {k}: no packets after: {s:#?}"));
                media
                    .wait_for(PATIENCE, |s| {
                        s.frames_with_audio > arrived.frames_with_audio
                    })
                    .await
                    .unwrap_or_else(|s| panic!("switch {k}: no audio after: {s:#?}"));
                back_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
                let after = media.stats();
                assert_eq!(
                    after.renegotiations,
                    before.renegotiations + 1,
                    "one new transport per switch, same media session: {after:#?}"
                );
                let st = session.state();
                assert_eq!(st.connection, ConnectionState::Connected);
                assert_eq!(
                    st.room.you().map(|p| p.role),
                    Some(Role::Listener),
                    "still in the room as a listener"
                );
                assert_eq!(
                    moderator_view.state().room.participant(&me).map(|p| p.role),
                    Some(Role::Listener),
                    "the room still has them, as a listener"
                );
                // And it keeps playing.
                media
                    .wait_for(PATIENCE, |s| {
                        s.frames_with_audio >= after.frames_with_audio + 25
                    })
                    .await
                    .unwrap_or_else(|s| panic!("switch {k}: audio stopped again: {s:#?}"));
            }
            media.stop().await;
            let _ = session.leave(true).await;
            let _ = net;
            back_ms
        })
    })
    .join();
    let back_ms = result.expect("listener thread");
    let mut sorted = back_ms.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p95 = sorted[((sorted.len() as f64 * 0.95).ceil() as usize).max(1) - 1];
    eprintln!(
        "network switch: audio back after {} ms (p50 {:.0} ms, p95 {p95:.0} ms, {} switches)",
        back_ms
            .iter()
            .map(|m| format!("{m:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        sorted[sorted.len() / 2],
        sorted.len()
    );
    host.block_on(async {
        speaker_media.stop().await;
        let _ = speaker_session.leave(true).await;
    });
    drop(ts);
    drop(ns);
}

/// Runs `nft` with `script` inside namespace `ns`.
fn nft(ns: &str, script: &str) -> Result<String, String> {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("nft: {e}"))?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .map_err(|e| format!("nft: {e}"))?;
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "nft: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Packets the namespace's firewall dropped so far (both directions).
fn dropped_by_firewall(ns: &str) -> u64 {
    let listing = nft(ns, "list table inet ruang\n").unwrap_or_default();
    listing
        .split("counter packets ")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// What happened in a room whose host and one listener sit behind a firewall.
struct Firewalled {
    /// The inside listener's joins: media start to first audio frame, in ms.
    join_ms: Vec<f64>,
    /// The speaker's stats once connected, and at the end.
    sent: MediaStats,
    spoke: MediaStats,
    /// The listener outside (plain UDP).
    heard_outside: MediaStats,
    /// Packets the firewall dropped.
    dropped: u64,
    /// `ruang_sfu_tcp_packets_received_total` at the end.
    tcp_received: f64,
}

/// A room on a server reachable from namespace `ns` (configured by `tweak`), the firewall
/// `rules` (an nftables table named `ruang`) loaded in the namespace: its host speaks from
/// inside, one listener hears from outside (UDP), another from inside, joining media
/// `RUANG_FIREWALL_JOINS` times (default 3).
fn talk_behind_firewall(ns: &Netns, rules: &str, tweak: impl FnOnce(&mut Config)) -> Firewalled {
    let joins: usize = std::env::var("RUANG_FIREWALL_JOINS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    nft(&ns.name, rules).expect("the firewall (nftables)");
    let host = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (ts, maya, budi, citra, room) = host.block_on(async {
        let (ts, maya, budi, room) = server_for(ns, "Behind a firewall", tweak).await;
        let citra = ts.member(&maya, "citra").await;
        (ts, maya, budi, citra, room)
    });
    // Citra listens from outside the firewall (UDP).
    let citra_session = host.block_on(ts.join(&citra, &room));
    let mut citra_ear = device(Source::Silence);
    let citra_media = host
        .block_on(MediaSession::start(
            &citra_session,
            &mut citra_ear,
            MediaOptions {
                capture: false,
                ..MediaOptions::default()
            },
        ))
        .expect("outside listener media");

    let urls = (maya.ws_url(&room), budi.ws_url(&room));
    let tokens = (
        maya.token().unwrap().to_owned(),
        budi.token().unwrap().to_owned(),
    );
    let inside = in_netns(&ns.name, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            // Maya, the host, speaks from inside.
            let maya = RoomSession::join(urls.0, tokens.0, SessionOptions::default())
                .await
                .expect("the speaker joins from behind the firewall");
            let mut mic = device(Source::samples(
                ruang_client::media::ruang_media::signal::speech_like(48_000 * 4, 3),
                true,
            ));
            let mic_media = MediaSession::start(&maya, &mut mic, MediaOptions::default())
                .await
                .expect("speaker media");
            let sent = mic_media
                .wait_for(PATIENCE, |s| s.connected && s.packets_sent >= 100)
                .await
                .unwrap_or_else(|s| panic!("the speaker's media never connected: {s:#?}"));
            // Budi listens from inside, joining media several times.
            let budi = RoomSession::join(urls.1, tokens.1, SessionOptions::default())
                .await
                .expect("the listener joins from behind the firewall");
            let mut join_ms = Vec::new();
            for k in 0..joins {
                let mut ear = device(Source::Silence);
                let t0 = Instant::now();
                let media = MediaSession::start(&budi, &mut ear, listener_opts())
                    .await
                    .expect("listener media");
                let first = media
                    .wait_for(PATIENCE, |s| s.frames_with_audio >= 1)
                    .await
                    .unwrap_or_else(|s| panic!("join {k}: no audio: {s:#?}"));
                join_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
                media
                    .wait_for(PATIENCE, |s| {
                        s.frames_with_audio >= first.frames_with_audio + 50
                    })
                    .await
                    .unwrap_or_else(|s| panic!("join {k}: audio did not keep flowing: {s:#?}"));
                media.stop().await;
            }
            let spoke = mic_media.stats();
            mic_media.stop().await;
            let _ = budi.leave(true).await;
            let _ = maya.leave(false).await;
            (join_ms, sent, spoke)
        })
    })
    .join();
    let (join_ms, sent, spoke) = inside.expect("the clients behind the firewall");
    let heard_outside = citra_media.stats();
    let tcp_received = host.block_on(ts.metric("ruang_sfu_tcp_packets_received_total"));
    host.block_on(async {
        citra_media.stop().await;
        let _ = citra_session.leave(true).await;
    });
    drop(ts);
    Firewalled {
        join_ms,
        sent,
        spoke,
        heard_outside,
        dropped: dropped_by_firewall(&ns.name),
        tcp_received,
    }
}

/// "p50 X ms, p95 Y ms" of `ms`.
fn percentiles(ms: &[f64]) -> String {
    let mut sorted = ms.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p95 = sorted[((sorted.len() as f64 * 0.95).ceil() as usize).max(1) - 1];
    format!(
        "{} ms (p50 {:.0} ms, p95 {p95:.0} ms, {} joins)",
        ms.iter()
            .map(|m| format!("{m:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        sorted[sorted.len() / 2],
        sorted.len()
    )
}

fn skip_without_root() -> bool {
    if let Err(why) = can_run() {
        assert!(
            std::env::var_os("RUANG_REQUIRE_NETNS").is_none(),
            "RUANG_REQUIRE_NETNS is set but: {why}"
        );
        eprintln!("skipped: {why}");
        return true;
    }
    false
}

/// A network that drops every UDP packet (a strict firewall): a speaker and a listener
/// inside it still talk and hear each other through the SFU's passive ICE-TCP candidate,
/// while the room's other listener uses UDP as usual. The listener's join (media start to
/// first audio frame) is timed and printed, never asserted; `RUANG_FIREWALL_JOINS=20` gives
/// the figure in docs/benchmarks.md.
#[test]
fn with_udp_blocked_audio_flows_over_ice_tcp() {
    if skip_without_root() {
        return;
    }
    let ns = Netns::create("tc", 214).expect("network namespace");
    let run = talk_behind_firewall(
        &ns,
        "table inet ruang {
           chain out { type filter hook output priority 0; policy accept; meta l4proto udp counter drop; }
           chain in { type filter hook input priority 0; policy accept; meta l4proto udp counter drop; }
         }\n",
        |_| {},
    );
    assert!(
        run.spoke.packets_sent > run.sent.packets_sent,
        "{:#?}",
        run.spoke
    );
    assert!(
        run.heard_outside.frames_with_audio >= 50,
        "the listener outside heard the speaker behind the firewall: {:#?}",
        run.heard_outside
    );
    assert!(
        run.tcp_received >= run.spoke.packets_sent as f64,
        "the speaker's packets came over ICE-TCP ({} TCP datagrams, {} sent)",
        run.tcp_received,
        run.spoke.packets_sent
    );
    assert!(
        run.dropped > 0,
        "the clients did try UDP, and the firewall dropped it (0 dropped: the test proves nothing)"
    );
    eprintln!(
        "UDP blocked, ICE-TCP: listener join to first audio {}; {} UDP packets dropped by the firewall",
        percentiles(&run.join_ms),
        run.dropped
    );
}

/// A network that lets UDP out only to the TURN server, and a server with ICE-TCP turned off
/// (`--no-rtc-tcp`): the clients inside relay through coturn with the credentials from their
/// welcome (TURN REST shared secret), and audio flows both ways.
#[test]
fn with_only_turn_reachable_audio_flows_through_the_relay() {
    if skip_without_root() {
        return;
    }
    let ns = Netns::create("tu", 215).expect("network namespace");
    let server_ip: std::net::IpAddr = format!("{}.1", ns.net).parse().unwrap();
    let turn = match Coturn::start(server_ip) {
        Ok(t) => t,
        Err(why) => {
            assert!(
                std::env::var_os("RUANG_REQUIRE_NETNS").is_none(),
                "RUANG_REQUIRE_NETNS is set but coturn did not start: {why}"
            );
            eprintln!("skipped: {why}");
            return;
        }
    };
    let port = turn.addr.port();
    let rules = format!(
        "table inet ruang {{
           chain out {{ type filter hook output priority 0; policy accept; udp dport != {port} counter drop; }}
           chain in {{ type filter hook input priority 0; policy accept; udp sport != {port} counter drop; }}
         }}\n"
    );
    let turn_config = TurnConfig {
        urls: vec![turn.url("udp"), turn.url("tcp")],
        secret: turn.secret.clone(),
        ttl: Duration::from_secs(600),
    };
    let run = talk_behind_firewall(&ns, &rules, |c| {
        c.rtc_tcp_port = None;
        c.turn = Some(turn_config);
    });
    assert!(
        run.heard_outside.frames_with_audio >= 50,
        "the listener outside heard the speaker behind the firewall: {:#?}",
        run.heard_outside
    );
    assert_eq!(run.tcp_received, 0.0, "no ICE-TCP on this server");
    assert!(
        run.dropped > 0,
        "the clients did try the SFU directly, and were stopped"
    );
    let log = turn.log_text();
    let relayed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("peer usage") || l.contains("usage: realm"))
        .collect();
    assert!(
        log.contains("username=<") && !relayed.is_empty(),
        "coturn authenticated the clients and relayed their media:\n{log}"
    );
    eprintln!(
        "only TURN reachable (UDP relay): listener join to first audio {}; {} packets dropped by the firewall; coturn logged {} relay usage lines",
        percentiles(&run.join_ms),
        run.dropped,
        relayed.len()
    );
}
