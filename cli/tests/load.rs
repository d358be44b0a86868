//! `ruang load` against the real `ruang serve` process: its counts must agree with the server's
//! own `/metrics` (what the SFU forwarded covers what the listeners received), every listener
//! hears audio, and the run cleans up after itself (room ended, no peers or connections left).

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const RUANG: &str = env!("CARGO_BIN_EXE_ruang");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn metrics(server: &str) -> String {
    reqwest::get(format!("{server}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body")
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name).then(|| v.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("metric {name} missing:\n{text}"))
}

/// `ruang serve` on a free port with a fresh data directory: the process, its URL, the admin
/// invite code it printed, and the directory.
fn start_serve() -> (Serve, String, String, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(RUANG)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .args(["--rtc-port", "0", "--max-connections-per-ip", "0"])
        .arg("--data")
        .arg(data.path())
        .env("RUANG_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("ruang serve starts");
    let out = child.stdout.take().unwrap();
    let serve = Serve(child);
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let code = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the admin invite is printed");
        if line.contains("Admin invite code:") {
            break line.rsplit(' ').next().unwrap().to_owned();
        }
    };
    (serve, server, code, data)
}

/// Runs `ruang load` with `args` against `server`; its JSON report.
async fn run_load(server: &str, args: &[&str]) -> Value {
    let mut cmd = Command::new(RUANG);
    cmd.args(["load", "--server", server, "--json"])
        .args(args)
        .stderr(Stdio::inherit());
    let output = tokio::task::spawn_blocking(move || cmd.output().expect("ruang load runs"))
        .await
        .unwrap();
    assert!(output.status.success(), "ruang load failed");
    let r: Value = serde_json::from_slice(&output.stdout).expect("JSON report on stdout");
    eprintln!("{r:#}");
    r
}

/// Waits until the server has no live room, SFU peer or WebSocket left.
async fn assert_cleaned_up(server: &str) {
    let mut last = String::new();
    for _ in 0..100 {
        last = metrics(server).await;
        if metric(&last, "ruang_rooms_live") == 0.0
            && metric(&last, "ruang_sfu_peers") == 0.0
            && metric(&last, "ruang_ws_connections") == 0.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(metric(&last, "ruang_rooms_live"), 0.0, "{last}");
    assert_eq!(metric(&last, "ruang_sfu_peers"), 0.0, "{last}");
    assert_eq!(metric(&last, "ruang_ws_connections"), 0.0, "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_counts_agree_with_the_servers_metrics() {
    let (serve, server, code, _data) = start_serve();
    let r = run_load(
        &server,
        &[
            "--invite",
            &code,
            "--listeners",
            "5",
            "--seconds",
            "6",
            "--storm",
            "3",
            "--storm-per-second",
            "10",
        ],
    )
    .await;
    let n = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} in {r}"));
    assert_eq!(n("joined"), 5.0);
    assert_eq!(n("join_failures"), 0.0);
    assert_eq!(n("listeners_without_audio"), 0.0);
    assert!(n("packets_received") > 0.0);
    assert!(n("loss_percent") < 1.0, "loss {}", n("loss_percent"));
    assert!(n("packets_lost") <= n("packets_expected"));
    assert_eq!(n("duplicates"), 0.0);
    for q in ["p50", "p95", "p99"] {
        assert!(r["forward_delay_ms"][q].as_f64().is_some(), "{q} in {r}");
    }
    assert!(r["join_ms"]["p50"].as_f64().is_some());
    assert!(r["join_ms"]["p95"].as_f64().is_some());
    assert!(n("server_rss_mib") > 0.0);
    assert!(n("server_cpu_percent") >= 0.0);
    assert!(n("server_cpu_ms_per_listener_second") >= 0.0);

    // The server's view: every packet a listener received was forwarded by the SFU, and the
    // SFU received no more than the speaker sent.
    let m = metrics(&server).await;
    let forwarded = metric(&m, "ruang_sfu_packets_forwarded_total");
    let received_by_sfu = metric(&m, "ruang_sfu_packets_received_total");
    let received = n("packets_received");
    assert!(
        received <= forwarded,
        "listeners got {received}, the SFU forwarded {forwarded}"
    );
    // Nothing is lost on loopback at this size: the listeners got almost all of it.
    assert!(
        received >= forwarded * 0.95,
        "listeners got {received}, the SFU forwarded {forwarded}"
    );
    assert!(received_by_sfu <= n("packets_sent"));
    assert!(received_by_sfu >= n("packets_sent") * 0.95);
    // One speaker, five listeners and three more in the storm: at most eight copies of each
    // packet the SFU received.
    assert!(forwarded <= received_by_sfu * 8.0);
    // In the steady window the SFU's count and the loader's agree.
    let fw = n("server_packets_forwarded_in_window");
    let rw = n("packets_received_in_window");
    assert!(
        rw <= fw + 5.0 * 10.0 && rw >= fw * 0.9,
        "window: {rw} vs {fw}"
    );
    // The join storm: three more joined while the five listened; what the five got of the
    // audio sent meanwhile is counted apart (not more than was sent to them).
    let storm = &r["storm"];
    let sn = |k: &str| {
        storm[k]
            .as_f64()
            .unwrap_or_else(|| panic!("storm {k} in {r}"))
    };
    assert_eq!(sn("listeners"), 3.0);
    assert_eq!(sn("join_failures"), 0.0);
    assert_eq!(sn("without_audio"), 0.0);
    assert_eq!(sn("existing_listeners"), 5.0);
    assert!(sn("existing_packets_expected") > 0.0);
    assert!(sn("existing_packets_received") <= sn("existing_packets_expected"));
    assert!(sn("existing_loss_percent") < 1.0, "{storm}");
    assert!(storm["existing_forward_delay_ms"]["p99"].as_f64().is_some());
    assert!(storm["join_ms"]["max"].as_f64().is_some());
    // The ramp's join figures are the first five's; the storm's three are not in them.
    assert_eq!(n("joined"), 5.0);
    assert_eq!(metric(&m, "ruang_signups_total"), 9.0);
    assert!(metric(&m, "ruang_process_cpu_seconds_total") > 0.0);

    // Cleaned up: the room ended, its peers and connections are gone.
    assert_cleaned_up(&server).await;
    drop(serve);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_deals_listeners_out_over_several_rooms() {
    let (serve, server, code, _data) = start_serve();
    let r = run_load(
        &server,
        &[
            "--invite",
            &code,
            "--listeners",
            "6",
            "--rooms",
            "3",
            "--seconds",
            "3",
        ],
    )
    .await;
    let rooms = r["rooms"].as_array().expect("rooms in the report");
    assert_eq!(rooms.len(), 3);
    assert_eq!(r["joined"], 6);
    assert_eq!(r["listeners_without_audio"], 0);
    assert!(r["loss_percent"].as_f64().unwrap() < 1.0, "{r}");
    // Three rooms, one speaker each, two listeners each: two copies of each packet.
    let m = metrics(&server).await;
    let forwarded = metric(&m, "ruang_sfu_packets_forwarded_total");
    let received_by_sfu = metric(&m, "ruang_sfu_packets_received_total");
    assert!(received_by_sfu > 0.0);
    assert!(
        forwarded <= received_by_sfu * 2.0,
        "{forwarded} vs {received_by_sfu}"
    );
    assert!(
        forwarded >= received_by_sfu * 2.0 * 0.9,
        "{forwarded} vs {received_by_sfu}"
    );
    assert_eq!(metric(&m, "ruang_rooms_created_total"), 3.0);
    assert_cleaned_up(&server).await;
    drop(serve);
}
