//! Prometheus text metrics: a few counters and gauges an operator watches.

use super::AppState;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

#[derive(Default)]
pub struct Metrics {
    pub http_requests: AtomicU64,
    pub http_errors: AtomicU64,
    pub ws_connections: AtomicI64,
    /// Room WebSockets bridged to the room's owner node (cluster mode), since start.
    pub ws_forwarded: AtomicU64,
    pub ws_messages: AtomicU64,
    pub ws_errors: AtomicU64,
    pub signups: AtomicU64,
    pub auth_failures: AtomicU64,
    pub rooms_created: AtomicU64,
    /// Database lookups made by the `/r/ID` page (the same for every unusable link).
    pub room_page_lookups: AtomicU64,
}

impl Metrics {
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

pub async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    Metrics::inc(&state.metrics.http_requests);
    let resp = next.run(req).await;
    if resp.status().is_client_error() || resp.status().is_server_error() {
        Metrics::inc(&state.metrics.http_errors);
    }
    resp
}

pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    let m = &state.metrics;
    let rooms = state.registry.all();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: i64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    let c = |a: &AtomicU64| a.load(Ordering::Relaxed) as i64;
    metric(
        "ruang_http_requests_total",
        "counter",
        "HTTP requests served.",
        c(&m.http_requests),
    );
    metric(
        "ruang_room_page_lookups_total",
        "counter",
        "Database lookups made by /r/ID pages.",
        c(&m.room_page_lookups),
    );
    metric(
        "ruang_http_errors_total",
        "counter",
        "HTTP responses with a 4xx or 5xx status.",
        c(&m.http_errors),
    );
    metric(
        "ruang_ws_connections",
        "gauge",
        "Open signalling connections.",
        m.ws_connections.load(Ordering::Relaxed),
    );
    metric(
        "ruang_ws_forwarded_total",
        "counter",
        "Room WebSockets bridged to the room's owner node (cluster mode).",
        c(&m.ws_forwarded),
    );
    let cm = &state.cascade_metrics;
    metric(
        "ruang_cascade_datagrams_sent_total",
        "counter",
        "Audio datagrams sent to other nodes (cluster media cascade).",
        c(&cm.datagrams_sent),
    );
    metric(
        "ruang_cascade_datagrams_received_total",
        "counter",
        "Datagrams received from other nodes (cluster media cascade).",
        c(&cm.datagrams_received),
    );
    metric(
        "ruang_cascade_datagrams_refused_total",
        "counter",
        "Cascade datagrams refused: bad tag, malformed, too old, replayed.",
        c(&cm.datagrams_refused),
    );
    metric(
        "ruang_cascade_subscriptions",
        "gauge",
        "Other nodes receiving the audio of rooms this node owns (per room).",
        cm.subscriptions.load(Ordering::Relaxed),
    );
    metric(
        "ruang_ws_messages_total",
        "counter",
        "Signalling messages received.",
        c(&m.ws_messages),
    );
    metric(
        "ruang_ws_errors_total",
        "counter",
        "Signalling messages refused.",
        c(&m.ws_errors),
    );
    metric(
        "ruang_signups_total",
        "counter",
        "Accounts created.",
        c(&m.signups),
    );
    metric(
        "ruang_auth_failures_total",
        "counter",
        "Failed invite codes and tokens.",
        c(&m.auth_failures),
    );
    metric(
        "ruang_rooms_created_total",
        "counter",
        "Rooms created.",
        c(&m.rooms_created),
    );
    metric(
        "ruang_rooms_live",
        "gauge",
        "Live rooms.",
        rooms.len() as i64,
    );
    let people: usize = rooms.iter().map(|r| r.participant_count()).sum();
    metric(
        "ruang_room_participants",
        "gauge",
        "People in live rooms.",
        people as i64,
    );
    metric(
        "ruang_connections_open",
        "gauge",
        "TCP connections open (HTTP and WebSocket), counted against the connection caps.",
        state.connections.open() as i64,
    );
    metric(
        "ruang_guests_connected",
        "gauge",
        "Guest listeners (no account) connected.",
        state.guests.connected() as i64,
    );
    let sfu = state.sfu.metrics();
    metric(
        "ruang_sfu_peers",
        "gauge",
        "WebRTC peers connected to the SFU.",
        sfu.peers.load(Ordering::Relaxed),
    );
    metric(
        "ruang_sfu_packets_received_total",
        "counter",
        "Audio packets received from microphones.",
        c(&sfu.packets_received),
    );
    metric(
        "ruang_sfu_packets_forwarded_total",
        "counter",
        "Audio packet copies forwarded to listeners.",
        c(&sfu.packets_forwarded),
    );
    metric(
        "ruang_sfu_packets_dropped_not_on_stage_total",
        "counter",
        "Audio packets dropped because the sender was not on stage or was muted.",
        c(&sfu.packets_dropped_not_on_stage),
    );
    metric(
        "ruang_sfu_packets_relayed_total",
        "counter",
        "Audio packets passed from the forwarding thread that received them to another one.",
        c(&sfu.packets_relayed),
    );
    metric(
        "ruang_sfu_packets_relay_dropped_total",
        "counter",
        "Relayed audio packets dropped by a busy forwarding thread (queue full, or stale).",
        c(&sfu.packets_relay_dropped),
    );
    metric(
        "ruang_sfu_red_switches_total",
        "counter",
        "Times RED (redundant audio) was turned on or off for a listener's slot, following its reported loss.",
        c(&sfu.red_switches),
    );
    metric(
        "ruang_sfu_nacks_sent_total",
        "counter",
        "RTCP NACKs sent to speakers for lost packets (while the round trip leaves time for a resend).",
        c(&sfu.nacks_sent),
    );
    metric(
        "ruang_sfu_tcp_connections",
        "gauge",
        "ICE-TCP connections open (clients whose UDP is blocked).",
        sfu.tcp_connections.load(Ordering::Relaxed),
    );
    metric(
        "ruang_sfu_tcp_packets_received_total",
        "counter",
        "Datagrams (STUN, DTLS, SRTP) received over ICE-TCP connections.",
        c(&sfu.tcp_packets_received),
    );
    metric(
        "ruang_sfu_tcp_packets_dropped_total",
        "counter",
        "Packets not sent to an ICE-TCP client because its connection was too far behind.",
        c(&sfu.tcp_packets_dropped),
    );
    metric(
        "ruang_sfu_threads",
        "gauge",
        "SFU forwarding threads (each with its own UDP port).",
        state.sfu.shard_count() as i64,
    );
    metric(
        "ruang_sfu_socket_drops_total",
        "counter",
        "Datagrams the kernel dropped because an SFU socket's receive queue was full.",
        state.sfu.socket_drops() as i64,
    );
    metric(
        "ruang_sfu_offers_accepted_total",
        "counter",
        "Media offers answered.",
        c(&sfu.offers_accepted),
    );
    metric(
        "ruang_sfu_offers_refused_total",
        "counter",
        "Media offers refused.",
        c(&sfu.offers_refused),
    );
    let process = ProcessStats::now();
    let _ = writeln!(
        out,
        "# HELP ruang_process_cpu_seconds_total CPU time (user and system) used by the server process.\n\
         # TYPE ruang_process_cpu_seconds_total counter\n\
         ruang_process_cpu_seconds_total {:.6}",
        process.cpu_seconds
    );
    let _ = writeln!(
        out,
        "# HELP ruang_process_resident_memory_bytes Resident memory of the server process.\n\
         # TYPE ruang_process_resident_memory_bytes gauge\n\
         ruang_process_resident_memory_bytes {}",
        process.resident_bytes
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

/// The server process's own CPU time and resident memory, independent of any load tool.
#[derive(Debug, Clone, Copy)]
pub struct ProcessStats {
    /// User plus system CPU time, in seconds, since the process started (`getrusage`).
    pub cpu_seconds: f64,
    /// Resident set size in bytes (`VmRSS` of `/proc/self/status`; 0 where unavailable).
    pub resident_bytes: u64,
}

impl ProcessStats {
    pub fn now() -> ProcessStats {
        ProcessStats {
            cpu_seconds: cpu_seconds(),
            resident_bytes: resident_bytes(),
        }
    }
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own; RUSAGE_SELF is always valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| parse_vm_rss(&s))
        .unwrap_or(0)
}

/// The `VmRSS:  1234 kB` line of `/proc/self/status`, in bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_stats_are_plausible() {
        let a = ProcessStats::now();
        // Burn a little CPU so the counter has a chance to move.
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        std::hint::black_box(x);
        let b = ProcessStats::now();
        assert!(a.cpu_seconds >= 0.0);
        assert!(b.cpu_seconds >= a.cpu_seconds, "{a:?} then {b:?}");
        assert!(b.resident_bytes > 0, "{b:?}");
    }

    #[test]
    fn vm_rss_parses() {
        let s = "Name:\truang\nVmPeak:\t  9000 kB\nVmRSS:\t   2048 kB\nThreads: 3\n";
        assert_eq!(parse_vm_rss(s), Some(2048 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }
}
