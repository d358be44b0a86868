//! The `ruang serve` child process the binary tests run against.
#![allow(dead_code)] // each test file uses a different part

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const RUANG: &str = env!("CARGO_BIN_EXE_ruang");

/// Runs `ruang ARGS` against `server` with the session `token` and waits for it.
pub fn ruang(server: &str, token: &str, args: &[&str]) -> std::process::Output {
    Command::new(RUANG)
        .args(args)
        .env("RUANG_SERVER", server)
        .env("RUANG_TOKEN", token)
        .output()
        .expect("ruang runs")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `ruang serve`, its stdout read line by line on a thread.
pub struct Serve {
    pub child: Child,
    lines: mpsc::Receiver<String>,
}

impl Serve {
    /// `ruang serve --addr 127.0.0.1:PORT --data DATA EXTRA…` with `RUANG_LOG=info`.
    pub fn start(data: &std::path::Path, port: u16, extra: &[&str]) -> Serve {
        let mut child = Command::new(RUANG)
            .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--data"])
            .arg(data)
            .args(extra)
            .env("RUANG_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("ruang serve starts");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Serve { child, lines }
    }

    /// Waits for a stdout line containing `needle`.
    pub fn wait_line(&self, needle: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no line with {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// The admin invite code a first start prints.
    pub fn first_invite(&self) -> String {
        self.wait_line("Admin invite code:")
            .rsplit(' ')
            .next()
            .unwrap()
            .to_owned()
    }

    /// Sends a signal (`-TERM`, `-KILL`, …) with kill(1).
    pub fn signal(&self, sig: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success());
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A command's stdout, trimmed; the test fails with its stderr if the command failed.
pub fn ok(out: impl std::borrow::Borrow<std::process::Output>) -> String {
    let out = out.borrow();
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A command that must fail with a one-line error on stderr; returns that line.
pub fn fails(out: std::process::Output) -> String {
    assert!(!out.status.success(), "should fail");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    err
}
