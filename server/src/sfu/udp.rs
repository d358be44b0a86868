//! Batched UDP I/O for the SFU loop: `recvmmsg(2)` drains up to [`BATCH`] datagrams per
//! system call, and outgoing datagrams are copied into a fixed arena and sent with
//! `sendmmsg(2)` when the arena is full or the loop is about to wait. Nothing here
//! allocates after construction.
//!
//! UDP GSO (`UDP_SEGMENT`) is not used: it batches many datagrams to ONE destination, and a
//! forwarded audio packet goes to many destinations once each.

use std::io;
use std::mem::{size_of, zeroed, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Largest datagram handled (the loop never sees bigger ones: they are truncated and dropped).
pub const MAX_DATAGRAM: usize = 2048;

/// Socket buffer sizes asked for: a loop busy with a fan-out must not lose the packets that
/// arrive meanwhile (the kernel default is ~208 KiB, a few hundred datagrams).
pub const SOCKET_BUFFER: usize = 8 * 1024 * 1024;

/// Receive buffers for one `recvmmsg` call.
pub struct RecvBatch {
    bufs: Box<[[u8; MAX_DATAGRAM]]>,
    lens: [usize; BATCH],
    sources: [Option<SocketAddr>; BATCH],
    count: usize,
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch {
            bufs: vec![[0u8; MAX_DATAGRAM]; BATCH].into_boxed_slice(),
            lens: [0; BATCH],
            sources: [None; BATCH],
            count: 0,
        }
    }
}

impl RecvBatch {
    /// Reads up to [`BATCH`] datagrams without blocking. `Ok(0)` never happens: an empty
    /// socket is `WouldBlock`.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        // The kernel writes the names; only the headers need zeroing.
        let mut names: [MaybeUninit<libc::sockaddr_storage>; BATCH] =
            [const { MaybeUninit::uninit() }; BATCH];
        // SAFETY: zeroed mmsghdr / iovec are valid initial values.
        let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for i in 0..BATCH {
            iovs[i].iov_base = self.bufs[i].as_mut_ptr().cast();
            iovs[i].iov_len = MAX_DATAGRAM;
            msgs[i].msg_hdr.msg_name = names[i].as_mut_ptr().cast();
            msgs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as u32;
            msgs[i].msg_hdr.msg_iov = &mut iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every pointer in `msgs` points into live arrays of the right sizes.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                msgs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            self.count = 0;
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for i in 0..n {
            let truncated = msgs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            self.lens[i] = if truncated {
                0
            } else {
                msgs[i].msg_len as usize
            };
            // SAFETY: the kernel filled this name (`msg_namelen` bytes of it; the family
            // field comes first and decides how much is read).
            self.sources[i] = from_storage(unsafe { names[i].assume_init_ref() });
        }
        self.count = n;
        Ok(n)
    }

    /// The `i`-th datagram of the last call and its source (`None`: truncated, or a source
    /// that is not IP).
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.count || self.lens[i] == 0 {
            return None;
        }
        Some((&self.bufs[i][..self.lens[i]], self.sources[i]?))
    }
}

/// Outgoing datagrams waiting for one `sendmmsg` call.
pub struct SendBatch {
    bufs: Box<[[u8; MAX_DATAGRAM]]>,
    lens: [usize; BATCH],
    dests: [SocketAddr; BATCH],
    count: usize,
    /// Datagrams the kernel refused (full buffer, unreachable): dropped like the network would.
    pub dropped: u64,
}

impl Default for SendBatch {
    fn default() -> Self {
        SendBatch {
            bufs: vec![[0u8; MAX_DATAGRAM]; BATCH].into_boxed_slice(),
            lens: [0; BATCH],
            dests: [SocketAddr::from(([0, 0, 0, 0], 0)); BATCH],
            count: 0,
            dropped: 0,
        }
    }
}

impl SendBatch {
    /// Queues `data` for `dest`, sending the batch first if it is full. Oversized datagrams
    /// are dropped.
    pub fn push(&mut self, fd: RawFd, dest: SocketAddr, data: &[u8]) {
        if data.len() > MAX_DATAGRAM {
            self.dropped += 1;
            return;
        }
        if self.count == BATCH {
            self.flush(fd);
        }
        let i = self.count;
        self.bufs[i][..data.len()].copy_from_slice(data);
        self.lens[i] = data.len();
        self.dests[i] = dest;
        self.count += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Sends everything queued. A datagram the kernel refuses is dropped and counted.
    pub fn flush(&mut self, fd: RawFd) {
        let mut start = 0;
        while start < self.count {
            // Only the entries used are initialised (zeroed, then filled).
            let mut names: [MaybeUninit<libc::sockaddr_storage>; BATCH] =
                [const { MaybeUninit::uninit() }; BATCH];
            let mut iovs: [MaybeUninit<libc::iovec>; BATCH] =
                [const { MaybeUninit::uninit() }; BATCH];
            let mut msgs: [MaybeUninit<libc::mmsghdr>; BATCH] =
                [const { MaybeUninit::uninit() }; BATCH];
            let n = self.count - start;
            for k in 0..n {
                let i = start + k;
                // SAFETY: all-zero is a valid sockaddr_storage, iovec and mmsghdr.
                let name = names[k].write(unsafe { zeroed() });
                let len = to_storage(self.dests[i], name);
                let iov = iovs[k].write(libc::iovec {
                    iov_base: self.bufs[i].as_mut_ptr().cast(),
                    iov_len: self.lens[i],
                });
                // SAFETY: as above.
                let msg = msgs[k].write(unsafe { zeroed() });
                msg.msg_hdr.msg_name = (name as *mut libc::sockaddr_storage).cast();
                msg.msg_hdr.msg_namelen = len;
                msg.msg_hdr.msg_iov = iov;
                msg.msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: the first `n` entries of `msgs` are initialised and point into live
            // arrays of the right sizes.
            let sent = unsafe {
                libc::sendmmsg(fd, msgs.as_mut_ptr().cast(), n as u32, libc::MSG_DONTWAIT)
            };
            if sent <= 0 {
                // The first datagram failed (full buffer, ICMP error pending): drop it and go on
                // with the rest.
                self.dropped += 1;
                start += 1;
            } else {
                start += sent as usize;
            }
        }
        self.count = 0;
    }
}

/// Asks for [`SOCKET_BUFFER`] bytes of send and receive buffer, above the system maximum
/// when the process may (`SO_RCVBUFFORCE` needs CAP_NET_ADMIN). Returns the receive buffer
/// the kernel granted.
pub fn enlarge_buffers(fd: RawFd) -> usize {
    let size = SOCKET_BUFFER as libc::c_int;
    for (force, plain) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ] {
        // SAFETY: setsockopt with a c_int value of the right length.
        unsafe {
            let p = (&size as *const libc::c_int).cast();
            let l = size_of::<libc::c_int>() as u32;
            if libc::setsockopt(fd, libc::SOL_SOCKET, force, p, l) != 0 {
                libc::setsockopt(fd, libc::SOL_SOCKET, plain, p, l);
            }
        }
    }
    let mut got: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as u32;
    // SAFETY: getsockopt into a c_int of the right length.
    unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut got as *mut libc::c_int).cast(),
            &mut len,
        );
    }
    got.max(0) as usize
}

fn to_storage(addr: SocketAddr, out: &mut libc::sockaddr_storage) -> u32 {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin =
                unsafe { &mut *(out as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(a.ip().octets()),
            };
            size_of::<libc::sockaddr_in>() as u32
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in6.
            let sin6 =
                unsafe { &mut *(out as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>() as u32
        }
    }
}

/// The IP socket address in a `sockaddr_storage` the kernel filled (`None`: another family).
pub fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match s.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says this is a sockaddr_in.
            let sin = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this is a sockaddr_in6.
            let sin6 =
                unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Sums the `drops` column of the rows of a `/proc/net/udp` table whose local port is one
/// of `ports`.
pub fn drops_for_ports(table: &str, ports: &[u16]) -> u64 {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let local = cols.nth(1)?;
            let port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
            if !ports.contains(&port) {
                return None;
            }
            line.split_whitespace().last()?.parse::<u64>().ok()
        })
        .sum()
}

/// The local ICE username fragment a STUN binding request is addressed to (the part of its
/// USERNAME attribute before the colon), so a new source address finds its peer with one
/// map lookup instead of asking every peer. `None` for anything that is not a STUN message
/// with a well-formed USERNAME.
pub fn stun_local_ufrag(data: &[u8]) -> Option<&str> {
    // RFC 5389: 20-byte header, first two bits 0, magic cookie at 4..8.
    if data.len() < 20 || data[0] & 0xC0 != 0 || data[4..8] != [0x21, 0x12, 0xA4, 0x42] {
        return None;
    }
    let body_len = u16::from_be_bytes([data[2], data[3]]) as usize;
    let body = data.get(20..20 + body_len)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let kind = u16::from_be_bytes([body[at], body[at + 1]]);
        let len = u16::from_be_bytes([body[at + 2], body[at + 3]]) as usize;
        let value = body.get(at + 4..at + 4 + len)?;
        if kind == 0x0006 {
            let user = std::str::from_utf8(value).ok()?;
            return user.split(':').next();
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[test]
    fn batches_go_out_and_come_back_in_order() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_nonblocking(true).unwrap();
        let mut out = SendBatch::default();
        // More than one batch: the full arena is flushed on the way.
        for i in 0..(BATCH + 5) as u32 {
            out.push(a.as_raw_fd(), b.local_addr().unwrap(), &i.to_be_bytes());
        }
        out.flush(a.as_raw_fd());
        assert_eq!(out.dropped, 0);
        let mut got = Vec::new();
        let mut rx = RecvBatch::default();
        std::thread::sleep(std::time::Duration::from_millis(50));
        while let Ok(n) = rx.recv(b.as_raw_fd()) {
            for i in 0..n {
                let (d, from) = rx.get(i).unwrap();
                assert_eq!(from, a.local_addr().unwrap());
                got.push(u32::from_be_bytes(d.try_into().unwrap()));
            }
        }
        assert_eq!(got, (0..(BATCH + 5) as u32).collect::<Vec<_>>());
    }

    #[test]
    fn an_empty_socket_would_block() {
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut rx = RecvBatch::default();
        let e = rx.recv(b.as_raw_fd()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert!(rx.get(0).is_none());
    }

    #[test]
    fn ipv6_destinations_round_trip() {
        let Ok(a) = UdpSocket::bind("[::1]:0") else {
            return; // no IPv6 loopback on this machine
        };
        let b = UdpSocket::bind("[::1]:0").unwrap();
        b.set_nonblocking(true).unwrap();
        let mut out = SendBatch::default();
        out.push(a.as_raw_fd(), b.local_addr().unwrap(), b"six");
        out.flush(a.as_raw_fd());
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut rx = RecvBatch::default();
        assert_eq!(rx.recv(b.as_raw_fd()).unwrap(), 1);
        assert_eq!(rx.get(0).unwrap(), (&b"six"[..], a.local_addr().unwrap()));
    }

    #[test]
    fn drops_are_read_from_the_ports_rows() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
            \x20 12: 0100007F:20FB 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1234 2 0000000000000000 17\n\
            \x20 13: 0100007F:20FC 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1235 2 0000000000000000 5\n\
            \x20 14: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1236 2 0000000000000000 99\n";
        assert_eq!(drops_for_ports(table, &[8443, 8444]), 22);
        assert_eq!(drops_for_ports(table, &[1]), 0);
        assert_eq!(drops_for_ports("garbage\nmore garbage", &[8443]), 0);
    }

    #[test]
    fn stun_username_gives_the_local_ufrag() {
        // Binding request with USERNAME "srvU:cliU" (9 bytes, padded to 12).
        let mut m = vec![0x00, 0x01, 0x00, 16, 0x21, 0x12, 0xA4, 0x42];
        m.extend_from_slice(&[7; 12]); // transaction id
        m.extend_from_slice(&[0x00, 0x06, 0x00, 9]);
        m.extend_from_slice(b"srvU:cliU\0\0\0");
        assert_eq!(stun_local_ufrag(&m), Some("srvU"));
        // Not STUN: RTP (version 2), DTLS (20..63), garbage, truncated.
        assert_eq!(stun_local_ufrag(&[0x80; 40]), None);
        assert_eq!(stun_local_ufrag(&[22; 40]), None);
        assert_eq!(stun_local_ufrag(&m[..30]), None);
        let mut bad = m.clone();
        bad[4] = 0;
        assert_eq!(stun_local_ufrag(&bad), None);
        // An attribute claiming more bytes than the message has.
        let mut long = m.clone();
        long[23] = 200;
        assert_eq!(stun_local_ufrag(&long), None);
    }
}
