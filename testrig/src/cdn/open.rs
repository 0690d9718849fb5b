//! How many TCP connections to the CDN are open at once, and the most seen
//! so far: what a test reads to check that a client keeps to its budget of
//! connections per host.
//!
//! tiny_http accepts and closes connections on threads of its own and tells
//! nobody, so the count comes from the kernel instead: the CDN's sockets in
//! `ESTABLISHED` state in `/proc/net/tcp` (from the handshake until either
//! side sends its FIN, idle kept-alive connections and ones still waiting
//! to be accepted included). It is read when a request arrives and when its
//! response is done: a client opens a connection to send a request on it,
//! so the peak is seen at the first request of the connection that makes it.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Mutex;

use crate::serve::WAKER_ADDRESS;

/// `st` of an established socket in `/proc/net/tcp`.
const ESTABLISHED: &str = "01";

#[derive(Default)]
pub(super) struct OpenConnections {
    /// The clients' ends of the connections open at the peak: which ones a
    /// test can look up in the request log (busy, idle, or never used).
    peak: Mutex<Vec<SocketAddr>>,
}

impl OpenConnections {
    /// The connections open to `listening` now; raises the peak to it.
    pub(super) fn sample(&self, listening: SocketAddr) -> usize {
        // The table is read under the lock: a reading taken before a reset
        // must not land after it.
        let Ok(mut peak) = self.peak.lock() else {
            return established_to(listening).len();
        };
        let open = established_to(listening);
        let count = open.len();
        if count > peak.len() {
            *peak = open;
        }
        count
    }

    pub(super) fn peak(&self) -> usize {
        self.peak_peers().len()
    }

    pub(super) fn peak_peers(&self) -> Vec<SocketAddr> {
        self.peak.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// The peak starts again from what is open now (connections a client
    /// keeps open across the reset are still open after it).
    pub(super) fn reset(&self, listening: SocketAddr) {
        if let Ok(mut peak) = self.peak.lock() {
            *peak = established_to(listening);
        }
    }
}

/// The peers of the server-side sockets of `listening` (an IPv4 address)
/// that are established, but for the rig's own waker; none when the
/// kernel's table cannot be read.
fn established_to(listening: SocketAddr) -> Vec<SocketAddr> {
    let SocketAddr::V4(v4) = listening else {
        return Vec::new();
    };
    let local = table_address(*v4.ip(), v4.port());
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let mut peers = established_peers(&text, &local);
    peers.retain(|p| p.ip() != WAKER_ADDRESS);
    peers
}

/// An address as `/proc/net/tcp` writes it: the IPv4 address as the
/// host-order hex of its network-order u32, then the port in hex.
fn table_address(ip: Ipv4Addr, port: u16) -> String {
    let network_order = u32::from_ne_bytes(ip.octets());
    format!("{network_order:08X}:{port:04X}")
}

fn parse_table_address(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let ip = u32::from_str_radix(ip, 16).ok()?;
    let port = u16::from_str_radix(port, 16).ok()?;
    Some(SocketAddr::from((Ipv4Addr::from(ip.to_ne_bytes()), port)))
}

/// Each peer once: the kernel writes the table a page per read, so a
/// socket that moves in its hash table meanwhile can be listed twice.
fn established_peers(table: &str, local: &str) -> Vec<SocketAddr> {
    let peers: BTreeSet<SocketAddr> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split_whitespace().skip(1);
            let (here, peer, state) = (cols.next()?, cols.next()?, cols.next()?);
            (here.eq_ignore_ascii_case(local) && state == ESTABLISHED)
                .then(|| parse_table_address(peer))
                .flatten()
        })
        .collect();
    peers.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kernel_table_format() {
        let local = table_address(Ipv4Addr::LOCALHOST, 0x1F90);
        assert_eq!(local, "0100007F:1F90");
        assert_eq!(
            parse_table_address("0100007F:D2A0"),
            Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0xD2A0)))
        );
        let table = "  sl  local_address rem_address   st tx_queue rx_queue
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000
   1: 0100007F:1F90 0100007F:D2A0 01 00000000:00000000
   2: 0100007F:1F90 0100007F:D2A2 08 00000000:00000000
   3: 0100007F:D2A4 0100007F:1F90 01 00000000:00000000
   4: 0100007F:1F90 0100007F:D2A6 01 00000000:00000000
   5: 0200007F:1F90 0100007F:D2A8 01 00000000:00000000
   6: 0100007F:1F90 0100007F:D2A6 01 00000000:00000000";
        // The listener, a closing socket, a client's own socket to the
        // port and another address's socket are not the CDN's connections;
        // a socket listed twice is one.
        let peers: Vec<u16> = established_peers(table, &local)
            .iter()
            .map(SocketAddr::port)
            .collect();
        assert_eq!(peers, [0xD2A0, 0xD2A6]);
    }

    /// The kernel handles loopback handshakes and FINs in its own time:
    /// waits (at most 5 s) for the count to reach `want`.
    fn settles_at(open: &OpenConnections, addr: SocketAddr, want: usize) -> usize {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let now = open.sample(addr);
            if now == want || std::time::Instant::now() > deadline {
                return now;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn counts_connections_from_accept_to_close() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let open = OpenConnections::default();
        assert_eq!(open.sample(addr), 0);
        let clients: Vec<_> = (0..3)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        assert_eq!(settles_at(&open, addr, 3), 3, "open even before accept");
        let (served, _) = listener.accept().unwrap();
        drop(served);
        assert_eq!(settles_at(&open, addr, 2), 2, "closed by the server");
        let mut ours: Vec<SocketAddr> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
        ours.sort();
        drop(clients);
        assert_eq!(settles_at(&open, addr, 0), 0);
        assert_eq!(open.peak(), 3);
        let mut seen = open.peak_peers();
        seen.sort();
        assert_eq!(seen, ours, "the clients' ends");
        open.reset(addr);
        assert_eq!(open.peak(), 0);
    }
}
