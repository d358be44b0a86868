//! The TCP accept loop in front of the router: every resource a peer can hold is bounded.
//!
//! - a header read timeout (a request whose headers never finish is dropped) and an idle
//!   timeout on every connection (nothing read or written for a while);
//! - a global connection cap below the process's open-files limit, and a per-address cap
//!   (per /64 for IPv6): past them the server answers `503` / `429` with `Retry-After`
//!   and closes, instead of running out of descriptors;
//! - shutdown waits for in-flight requests a bounded time, then drops what is left, so a
//!   half-sent request can never keep the process alive.
//!
//! The cap is held by the socket itself ([`GuardedStream`]), so an upgraded WebSocket
//! keeps counting until it closes.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// Limits of the accept loop (see `Config`).
#[derive(Debug, Clone)]
pub struct ListenLimits {
    /// Connections open at once, all addresses together (WebSockets included).
    pub max_connections: usize,
    /// Connections open at once from one address (one /64 for IPv6); 0 = no per-address cap.
    pub max_connections_per_ip: usize,
    /// A request's headers must arrive within this.
    pub header_timeout: Duration,
    /// A connection with nothing read or written for this long is closed.
    pub idle_timeout: Duration,
    /// How long shutdown waits for in-flight requests before dropping them.
    pub shutdown_grace: Duration,
}

impl Default for ListenLimits {
    fn default() -> Self {
        ListenLimits {
            max_connections: 10_000,
            max_connections_per_ip: 256,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Kernel send buffer of each connection (signalling and pages need little).
const SEND_BUFFER: usize = 64 * 1024;

/// Seconds a refused client is told to wait.
const RETRY_AFTER_SECS: u64 = 5;
/// Refusals being written at once; past this a connection is closed without an answer.
const MAX_REFUSALS_IN_FLIGHT: usize = 64;

/// The address a limit is kept for: the IPv4 address, or the /64 of an IPv6 one (a single
/// host commonly holds a whole /64). IPv4-mapped IPv6 counts as IPv4.
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Counts open connections, in total and per address.
#[derive(Default)]
pub struct ConnCounter {
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    refusing: AtomicUsize,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Refusal {
    Busy,
    TooManyFromAddress,
}

impl ConnCounter {
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    /// Takes a slot for a connection from `ip`, or says why not.
    pub fn acquire(
        self: &Arc<Self>,
        ip: IpAddr,
        limits: &ListenLimits,
    ) -> Result<ConnGuard, Refusal> {
        let key = limit_key(ip);
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if self.total.load(Ordering::Acquire) >= limits.max_connections {
            return Err(Refusal::Busy);
        }
        let n = per_ip.entry(key).or_insert(0);
        if limits.max_connections_per_ip > 0 && *n >= limits.max_connections_per_ip {
            return Err(Refusal::TooManyFromAddress);
        }
        *n += 1;
        self.total.fetch_add(1, Ordering::AcqRel);
        Ok(ConnGuard {
            counter: self.clone(),
            key,
        })
    }
}

/// One counted connection; released when dropped.
pub struct ConnGuard {
    counter: Arc<ConnCounter>,
    key: IpAddr,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut per_ip = self
            .counter
            .per_ip
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = per_ip.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.key);
            }
        }
        self.counter.total.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A TCP stream that holds its connection slot and closes itself when idle.
pub struct GuardedStream {
    inner: TcpStream,
    _guard: ConnGuard,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl GuardedStream {
    fn new(inner: TcpStream, guard: ConnGuard, idle: Duration) -> Self {
        GuardedStream {
            inner,
            _guard: guard,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }

    fn touch(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.idle);
    }

    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.deadline.as_mut().poll(cx).is_ready()
    }
}

fn idle_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle")
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.touch();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending if self.idle_expired(cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.touch();
                }
                Poll::Ready(Ok(n))
            }
            // A peer that stops reading stalls our writes: that is idleness too.
            Poll::Pending if self.idle_expired(cx) => Poll::Ready(Err(idle_error())),
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The short answer given to a refused connection, then the connection closes.
fn refusal_response(why: Refusal) -> Vec<u8> {
    let (status, code, message) = match why {
        Refusal::Busy => (
            "503 Service Unavailable",
            "unavailable",
            "the server is at its connection limit; try again shortly",
        ),
        Refusal::TooManyFromAddress => (
            "429 Too Many Requests",
            "rate_limited",
            "too many connections from this address",
        ),
    };
    let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
    format!(
        "HTTP/1.1 {status}\r\nretry-after: {RETRY_AFTER_SECS}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn refuse(counter: Arc<ConnCounter>, mut stream: TcpStream, why: Refusal) {
    use tokio::io::AsyncWriteExt;
    if counter.refusing.fetch_add(1, Ordering::AcqRel) < MAX_REFUSALS_IN_FLIGHT {
        let answer = refusal_response(why);
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            stream.write_all(&answer).await?;
            stream.shutdown().await
        })
        .await;
    }
    counter.refusing.fetch_sub(1, Ordering::AcqRel);
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains for at most
/// `limits.shutdown_grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ListenLimits,
    counter: Arc<ConnCounter>,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors (or a transient error): back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let guard = match counter.acquire(peer.ip(), &limits) {
            Ok(g) => g,
            Err(why) => {
                tokio::spawn(refuse(counter.clone(), stream, why));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // A fixed kernel send buffer: a peer that stops reading holds at most this much
        // kernel memory (autotuning would grow it to megabytes), and our writes to it stall
        // soon, so the WebSocket write timeout notices.
        let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER);
        let io = TokioIo::new(GuardedStream::new(stream, guard, limits.idle_timeout));
        let service = hyper::service::service_fn({
            let app = app.clone();
            move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(req)
            }
        });
        let conn = builder
            .serve_connection_with_upgrades(io, service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!("shutdown: dropping connections still open after the grace period");
    }
}

/// Raises the soft open-files limit to the hard one and returns the soft limit now in force.
#[cfg(unix)]
pub fn raise_nofile_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
    Some(lim.rlim_cur as u64)
}

#[cfg(not(unix))]
pub fn raise_nofile_limit() -> Option<u64> {
    None
}

/// The connection cap that fits under `nofile` open files, keeping room for the database,
/// the SFU socket, log files and refusals.
pub fn cap_for_nofile(wanted: usize, nofile: Option<u64>) -> usize {
    match nofile {
        Some(n) => {
            let reserve = 128 + MAX_REFUSALS_IN_FLIGHT as u64;
            let fit = n.saturating_sub(reserve).max(16) as usize;
            wanted.min(fit)
        }
        None => wanted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_limits_are_per_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(limit_key(a), limit_key(b));
        assert_ne!(limit_key(a), limit_key(c));
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(limit_key(mapped), "10.1.2.3".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn caps_total_and_per_address_and_releases() {
        let limits = ListenLimits {
            max_connections: 3,
            max_connections_per_ip: 2,
            ..ListenLimits::default()
        };
        let c = Arc::new(ConnCounter::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let g1 = c.acquire(a, &limits).unwrap();
        let _g2 = c.acquire(a, &limits).unwrap();
        assert_eq!(
            c.acquire(a, &limits).err(),
            Some(Refusal::TooManyFromAddress)
        );
        let _g3 = c.acquire(b, &limits).unwrap();
        assert_eq!(c.acquire(b, &limits).err(), Some(Refusal::Busy));
        drop(g1);
        assert_eq!(c.open(), 2);
        assert!(c.acquire(a, &limits).is_ok());
    }

    #[test]
    fn cap_stays_under_the_open_files_limit() {
        assert_eq!(cap_for_nofile(10_000, Some(1024)), 1024 - 192);
        assert_eq!(cap_for_nofile(500, Some(1_048_576)), 500);
        assert_eq!(cap_for_nofile(500, None), 500);
    }
}
