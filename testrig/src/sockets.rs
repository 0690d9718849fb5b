//! Counting TCP connections a client opened to a port, from the kernel's
//! socket tables: how tests and the benchmark check connection reuse.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use crate::serve::WAKER_ADDRESS;

/// Client-side TCP sockets towards `port` on this host, in any state
/// (TIME_WAIT ones included, so connections opened and closed meanwhile
/// count too), identified by their local address. Take the difference of
/// two readings to get the connections opened in between.
pub fn client_sockets_to(port: u16) -> HashSet<String> {
    let mut found = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 4 {
                continue;
            }
            let remote_port = cols[2]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if remote_port == Some(port) && !from_waker(cols[1]) {
                found.insert(cols[1].to_owned());
            }
        }
    }
    found
}

/// Whether a local address as the table writes it (hex IPv4 in host
/// order, then the port) is the rig's own waker's.
fn from_waker(local: &str) -> bool {
    local
        .split(':')
        .next()
        .filter(|ip| ip.len() == 8)
        .and_then(|ip| u32::from_str_radix(ip, 16).ok())
        .is_some_and(|ip| Ipv4Addr::from(ip.to_ne_bytes()) == WAKER_ADDRESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_a_connection_it_opens() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let before = client_sockets_to(port);
        let _conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        assert_eq!(client_sockets_to(port).difference(&before).count(), 1);
    }

    #[test]
    fn leaves_the_waker_out() {
        assert!(from_waker("0200007F:1F90"));
        assert!(!from_waker("0100007F:1F90"));
        assert!(!from_waker("00000000000000000000000001000000:1F90"));
    }
}
