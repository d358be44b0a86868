//! `ruang bench e2ee --joins N`: the join time of an encrypted room against a plain one,
//! through a server the bench starts in-process. Checks that both rooms' joins all heard the
//! host, that the encrypted room's joiners were keyed, and that the handshake table is still
//! printed. (The figures themselves are docs/benchmarks.md's, from a release build.)

mod common;

use common::{ok, RUANG};
use std::process::Command;

/// The cells of the join table's row for `room`.
fn row<'a>(stdout: &'a str, room: &str) -> Vec<&'a str> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("| {room} |")))
        .unwrap_or_else(|| panic!("no {room} row in:\n{stdout}"));
    line.trim_matches('|').split('|').map(str::trim).collect()
}

#[test]
fn bench_e2ee_times_joins_of_a_plain_and_an_encrypted_room() {
    let stdout = ok(Command::new(RUANG)
        .args(["bench", "e2ee", "--members", "70", "--joins", "2"])
        .output()
        .expect("ruang runs"));
    assert!(stdout.contains("| 70 |"), "the handshake table: {stdout}");
    let plain = row(&stdout, "plain");
    let encrypted = row(&stdout, "encrypted");
    assert_eq!(
        plain[1], "2 (0)",
        "both plain joins heard the host: {stdout}"
    );
    assert_eq!(
        encrypted[1], "2 (0)",
        "both encrypted joins heard the host: {stdout}"
    );
    assert_eq!(plain[7], "-", "no keys in a plain room");
    assert!(
        encrypted[7].ends_with(" ms"),
        "the joiners were keyed: {stdout}"
    );
    assert!(
        stdout.contains("encrypted − plain, first audio: p50 "),
        "the difference: {stdout}"
    );
    assert!(stdout.contains("300 ms join batching window"), "{stdout}");
}
