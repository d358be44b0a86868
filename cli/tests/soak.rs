//! `ruang bench soak` for a few seconds: the soak itself runs (its own server as a child
//! process, rooms and members coming and going, speech, one restart in the middle) and ends
//! with every member where the rules say. Nothing here checks durations.

use std::process::Command;

const RUANG: &str = env!("CARGO_BIN_EXE_ruang");

#[test]
fn a_short_soak_with_a_restart_ends_consistent() {
    let out = Command::new(RUANG)
        .args([
            "bench",
            "soak",
            "--seconds",
            "20",
            "--rooms",
            "1",
            "--members",
            "3",
            "--json",
        ])
        .env_remove("RUANG_SERVER")
        .env_remove("RUANG_TOKEN")
        .output()
        .expect("ruang runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the soak failed:\n{stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("JSON report on stdout");
    assert_eq!(report["violations"].as_array().map(Vec::len), Some(0));
    assert_eq!(report["server_restarts"], 1);
    assert_eq!(report["restart_graceful"], true, "{stderr}");
    assert_eq!(report["final_stop_graceful"], true, "{stderr}");
    assert!(report["rooms_started"].as_u64() >= Some(1));
    // Memory and descriptors of both server processes were sampled.
    let samples = report["samples"].as_array().expect("samples");
    let pids: std::collections::BTreeSet<u64> =
        samples.iter().filter_map(|s| s["pid"].as_u64()).collect();
    assert_eq!(
        pids.len(),
        2,
        "samples before and after the restart: {samples:?}"
    );
    assert!(samples
        .iter()
        .all(|s| s["rss_kb"].as_u64() > Some(0) && s["fds"].as_u64() > Some(0)));
    // Members did things.
    let actions = report["actions"].as_object().expect("actions");
    assert!(
        actions.get("join").and_then(|v| v.as_u64()) > Some(0),
        "{actions:?}"
    );
}
