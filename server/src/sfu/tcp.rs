//! ICE-TCP (RFC 6544) for clients that cannot reach the SFU's UDP ports: a firewall that
//! drops UDP, a hotel or office network that lets only TCP out.
//!
//! The SFU offers one **passive TCP candidate** in every answer (lower priority than the UDP
//! one, so clients that can use UDP do). Every shard shares one TCP listener (by default on
//! the same port number as the first shard's UDP port; TCP and UDP ports are separate
//! spaces). A connection's first RFC 4571 frame must be the client's STUN binding request:
//! its ICE username names the peer, so the **acceptor** hands the socket to the shard that
//! serves that peer. From then on the shard's loop owns it like its UDP socket: one task
//! per connection cuts the byte stream into datagrams (RFC 4571: a 16-bit length, then the
//! STUN, DTLS or SRTP packet) for str0m, which sees them as `Protocol::Tcp` input, and
//! writes what str0m transmits back, framed, from a per-connection buffer.
//!
//! Limits: a connection that does not name a live peer within [`FIRST_FRAME_WITHIN`] is
//! closed; at most [`MAX_UNROUTED`] connections wait for their first frame; a peer has at
//! most [`MAX_PER_PEER`] connections; a connection whose reader is too slow has packets
//! dropped past [`MAX_PENDING`] bytes queued (like a full UDP send buffer), never unbounded
//! memory.

use super::Command;
use bytes::{Buf, Bytes, BytesMut};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, Notify, Semaphore};

/// A new connection must send its first frame (a STUN binding request) within this.
pub const FIRST_FRAME_WITHIN: Duration = Duration::from_secs(5);
/// Connections accepted but not yet routed to a shard.
pub const MAX_UNROUTED: usize = 256;
/// TCP connections one peer may have open (a client makes one per local candidate).
pub const MAX_PER_PEER: usize = 4;
/// Bytes queued for one connection before further packets are dropped (~1.5 s of a
/// listener's audio at 4 slots).
pub const MAX_PENDING: usize = 256 * 1024;

/// Which shard serves the peer with each ICE username fragment (shards add and remove
/// their peers; the acceptor reads). Taken per peer added or removed and per connection
/// accepted, never per packet.
#[derive(Default)]
pub(crate) struct Routes(Mutex<HashMap<String, usize>>);

impl Routes {
    pub fn insert(&self, ufrag: &str, shard: usize) {
        self.lock().insert(ufrag.to_owned(), shard);
    }

    pub fn remove(&self, ufrag: &str) {
        self.lock().remove(ufrag);
    }

    fn shard(&self, ufrag: &str) -> Option<usize> {
        self.lock().get(ufrag).copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A shard's ICE-TCP side: the address of the passive candidate it advertises and the
/// shared routes.
pub(crate) struct ShardTcp {
    pub candidate: SocketAddr,
    pub routes: Arc<Routes>,
}

/// The next complete RFC 4571 frame at the front of `buf`, if there is one (empty frames
/// are skipped).
pub fn take_frame(buf: &mut BytesMut) -> Option<Bytes> {
    loop {
        if buf.len() < 2 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([buf[0], buf[1]]));
        if buf.len() < 2 + len {
            return None;
        }
        buf.advance(2);
        if len > 0 {
            return Some(buf.split_to(len).freeze());
        }
    }
}

/// Accepts ICE-TCP connections until every shard is gone, handing each to the shard of the
/// peer its first frame names. Runs on its own thread (like the shards).
pub(crate) async fn accept(
    listener: std::net::TcpListener,
    routes: Arc<Routes>,
    shards: Vec<mpsc::WeakUnboundedSender<Command>>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "ICE-TCP listener unusable");
            return;
        }
    };
    let waiting = Arc::new(Semaphore::new(MAX_UNROUTED));
    let mut alive = tokio::time::interval(Duration::from_secs(1));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = alive.tick() => {
                if shards.iter().all(|s| s.upgrade().is_none()) {
                    return;
                }
                continue;
            }
        };
        let (stream, remote) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors and the like: wait a little rather than spin.
                tracing::debug!(error = %e, "ICE-TCP accept");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Ok(permit) = waiting.clone().try_acquire_owned() else {
            continue; // dropped: too many connections that have not said who they are
        };
        let routes = routes.clone();
        let shards = shards.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut stream = stream;
            let first = tokio::time::timeout(FIRST_FRAME_WITHIN, read_frame(&mut stream)).await;
            let Ok(Ok(first)) = first else {
                return;
            };
            let Some(shard) = super::udp::stun_local_ufrag(&first).and_then(|u| routes.shard(u))
            else {
                tracing::debug!(%remote, "ICE-TCP connection for no known peer");
                return;
            };
            let Some(tx) = shards.get(shard).and_then(|s| s.upgrade()) else {
                return;
            };
            // Out of this runtime's reactor; the shard registers it with its own.
            let Ok(stream) = stream.into_std() else {
                return;
            };
            let _ = tx.send(Command::TcpStream {
                stream,
                remote,
                first,
            });
        });
    }
}

async fn read_frame(stream: &mut tokio::net::TcpStream) -> std::io::Result<Vec<u8>> {
    loop {
        let len = usize::from(stream.read_u16().await?);
        if len == 0 {
            continue;
        }
        let mut frame = vec![0; len];
        stream.read_exact(&mut frame).await?;
        return Ok(frame);
    }
}

/// A datagram read from an ICE-TCP connection, or its end (`None`).
pub(crate) struct TcpIn {
    pub remote: SocketAddr,
    pub data: Option<Bytes>,
}

/// The sending side of one connection: the shard appends framed packets, the connection's
/// task writes them out.
#[derive(Default)]
pub(crate) struct TcpOut {
    pending: Mutex<Vec<u8>>,
    wake: Notify,
    closed: AtomicBool,
}

impl TcpOut {
    /// Queues one datagram (framed). False: dropped, the connection is too far behind.
    pub fn push(&self, data: &[u8]) -> bool {
        let Ok(len) = u16::try_from(data.len()) else {
            return false;
        };
        {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if pending.len() + 2 + data.len() > MAX_PENDING {
                return false;
            }
            pending.extend_from_slice(&len.to_be_bytes());
            pending.extend_from_slice(data);
        }
        self.wake.notify_one();
        true
    }

    /// Ends the connection (its peer is gone).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

/// Starts the task that serves one routed connection on the current (shard's) runtime.
pub(crate) fn serve(
    stream: std::net::TcpStream,
    remote: SocketAddr,
    inbound: mpsc::Sender<TcpIn>,
) -> std::io::Result<Arc<TcpOut>> {
    stream.set_nonblocking(true)?;
    let stream = tokio::net::TcpStream::from_std(stream)?;
    // Audio packets are small and must not wait for more to fill a segment.
    stream.set_nodelay(true)?;
    let out = Arc::new(TcpOut::default());
    tokio::spawn(connection(stream, remote, inbound, out.clone()));
    Ok(out)
}

async fn connection(
    stream: tokio::net::TcpStream,
    remote: SocketAddr,
    inbound: mpsc::Sender<TcpIn>,
    out: Arc<TcpOut>,
) {
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = BytesMut::with_capacity(8192);
    // Swapped with `pending` to write without holding its lock (both keep their capacity).
    let mut sending = Vec::with_capacity(8192);
    while !out.closed.load(Ordering::Acquire) {
        buf.reserve(4096);
        tokio::select! {
            // `read_buf` and `notified` are both cancel-safe.
            r = rd.read_buf(&mut buf) => {
                match r {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        while let Some(frame) = take_frame(&mut buf) {
                            let msg = TcpIn { remote, data: Some(frame) };
                            if inbound.send(msg).await.is_err() {
                                return; // the shard stopped
                            }
                        }
                    }
                }
            }
            _ = out.wake.notified() => {
                std::mem::swap(
                    &mut sending,
                    &mut *out.pending.lock().unwrap_or_else(PoisonError::into_inner),
                );
                if !sending.is_empty() {
                    if wr.write_all(&sending).await.is_err() {
                        break;
                    }
                    sending.clear();
                }
            }
        }
    }
    let _ = inbound.send(TcpIn { remote, data: None }).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_cut_from_a_stream_in_any_pieces() {
        let mut wire = Vec::new();
        for packet in [&b"stun"[..], b"", b"dtls record", &[7u8; 1200]] {
            wire.extend_from_slice(&(packet.len() as u16).to_be_bytes());
            wire.extend_from_slice(packet);
        }
        // Fed one byte at a time, then all at once: the same three non-empty datagrams.
        for step in [1, wire.len()] {
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for piece in wire.chunks(step) {
                buf.extend_from_slice(piece);
                while let Some(f) = take_frame(&mut buf) {
                    got.push(f);
                }
            }
            assert_eq!(got.len(), 3, "step {step}");
            assert_eq!(&got[0][..], b"stun");
            assert_eq!(&got[1][..], b"dtls record");
            assert_eq!(got[2].len(), 1200);
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn a_slow_connection_drops_packets_instead_of_growing() {
        let out = TcpOut::default();
        let packet = [0u8; 1000];
        let mut queued = 0;
        while out.push(&packet) {
            queued += 1;
        }
        assert_eq!(queued, MAX_PENDING / 1002);
        assert!(
            !out.push(&vec![0u8; 70_000]),
            "over 64 KiB cannot be framed"
        );
    }
}
