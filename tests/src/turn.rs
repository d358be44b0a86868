//! A real TURN server for the tests: coturn (Debian's `turnserver`), started with the TURN
//! REST shared secret the way an operator runs it next to Ruang, on one address, and
//! stopped on drop. Its log is kept to show that it really relayed.

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Coturn {
    child: Child,
    /// TURN over UDP and TCP.
    pub addr: SocketAddr,
    pub secret: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// A port free on `ip` for both UDP and TCP right now.
fn free_port(ip: IpAddr) -> u16 {
    loop {
        let udp = UdpSocket::bind((ip, 0)).expect("a UDP port");
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
}

impl Coturn {
    /// Starts coturn listening and relaying on `ip` (loopback peers allowed: the SFU may be on
    /// 127.0.0.1). Err when `turnserver` is not installed.
    pub fn start(ip: IpAddr) -> Result<Coturn, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port(ip);
        let secret = format!("s{:016x}", rand::random::<u64>());
        let log = dir.path().join("turn.log");
        let relay_lo = 40_000 + (std::process::id() % 200) as u16 * 100;
        let child = Command::new("turnserver")
            .args([
                "-n",
                "--no-cli",
                "--no-tls",
                "--no-dtls",
                "--no-rfc5780",
                "--no-stun-backward-compatibility",
                "--simple-log",
                "--verbose",
                "--allow-loopback-peers",
                "--no-multicast-peers",
                "--use-auth-secret",
                "--realm=ruang.test",
            ])
            .arg(format!("--static-auth-secret={secret}"))
            .arg(format!("--listening-ip={ip}"))
            .arg(format!("--relay-ip={ip}"))
            .arg(format!("--listening-port={port}"))
            .arg(format!("--min-port={relay_lo}"))
            .arg(format!("--max-port={}", relay_lo + 99))
            .arg(format!("--log-file={}", log.display()))
            .arg(format!(
                "--pidfile={}",
                dir.path().join("turn.pid").display()
            ))
            .arg(format!("--userdb={}", dir.path().join("turndb").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("turnserver (coturn): {e}"))?;
        let mut turn = Coturn {
            child,
            addr: SocketAddr::new(ip, port),
            secret,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&turn.addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = turn.child.try_wait() {
                return Err(format!("turnserver exited ({status}): {}", turn.log_text()));
            }
            if Instant::now() > deadline {
                return Err(format!("turnserver did not listen: {}", turn.log_text()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(turn)
    }

    /// `turn:IP:PORT?transport=T` for `T` = `udp` or `tcp`.
    pub fn url(&self, transport: &str) -> String {
        format!("turn:{}?transport={transport}", self.addr)
    }

    /// Everything coturn logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
