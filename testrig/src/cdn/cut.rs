//! Bodies cut mid-way, as a dropped connection cuts them: armed for the
//! next N file responses, each sends its first bytes and then the CDN shuts
//! the TCP connection down, so the client sees the connection close short
//! of `Content-Length`.
//!
//! tiny_http never lets a handler close a kept-alive connection, so the CDN
//! finds its own end of that connection among the process's descriptors
//! (the one whose local and peer addresses are the pair) and shuts it down.

use std::io::{self, Read};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// How many of the coming file responses to cut, and after how many bytes.
#[derive(Default)]
pub(super) struct Cuts {
    armed: Mutex<Option<(u64, usize)>>,
}

impl Cuts {
    pub(super) fn arm(&self, after: u64, count: usize) {
        if let Ok(mut armed) = self.armed.lock() {
            *armed = (count > 0).then_some((after, count));
        }
    }

    /// Spends one cut, if any is armed: after how many bytes.
    pub(super) fn take(&self) -> Option<u64> {
        let mut armed = self.armed.lock().ok()?;
        let (after, count) = (*armed)?;
        *armed = (count > 1).then_some((after, count - 1));
        Some(after)
    }
}

/// A body that ends in an error after `left` bytes and marks `cut`; the
/// handler shuts the connection down once tiny_http has flushed what came
/// before ([`shut_down`]).
pub(super) struct CutAfter<R> {
    pub(super) inner: R,
    pub(super) left: u64,
    pub(super) cut: Arc<AtomicBool>,
}

impl<R: Read> Read for CutAfter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 && !buf.is_empty() {
            // A body no longer than the cut point ends as it should.
            if self.inner.read(&mut [0u8; 1])? == 0 {
                return Ok(0);
            }
            self.cut.store(true, Ordering::SeqCst);
            // A kind tiny_http takes for a client that went away: it still
            // flushes what it holds, and logs nothing.
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "cut on purpose",
            ));
        }
        let step = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..step])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Shuts down both ways the server's socket from `local` to `peer`; false
/// if there is none.
pub(super) fn shut_down(local: SocketAddr, peer: SocketAddr) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return false;
    };
    for entry in entries.flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<libc::c_int>() else {
            continue;
        };
        if address(fd, libc::getpeername) == Some(peer)
            && address(fd, libc::getsockname) == Some(local)
        {
            // SAFETY: shutdown takes any descriptor and fails on a
            // non-socket; this one is the connection's own socket.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
            return true;
        }
    }
    false
}

type NameFn =
    unsafe extern "C" fn(libc::c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> libc::c_int;

fn address(fd: libc::c_int, name: NameFn) -> Option<SocketAddr> {
    // SAFETY: an all-zero sockaddr_storage is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: the call writes at most `len` bytes into `storage`; on a
    // descriptor that is not a socket it fails and writes nothing.
    let rc = unsafe { name(fd, std::ptr::addr_of_mut!(storage).cast(), &mut len) };
    if rc != 0 {
        return None;
    }
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a = unsafe { &*std::ptr::addr_of!(storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a = unsafe { &*std::ptr::addr_of!(storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::from((ip, u16::from_be(a.sin6_port))))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_are_spent_one_response_at_a_time() {
        let cuts = Cuts::default();
        assert_eq!(cuts.take(), None);
        cuts.arm(10, 2);
        assert_eq!(
            (cuts.take(), cuts.take(), cuts.take()),
            (Some(10), Some(10), None)
        );
    }

    #[test]
    fn a_body_stops_at_the_cut_and_one_no_longer_is_whole() {
        let read = |body: &[u8], after| {
            let cut = Arc::new(AtomicBool::new(false));
            let mut reader = CutAfter {
                inner: body,
                left: after,
                cut: Arc::clone(&cut),
            };
            let mut got = Vec::new();
            let ended = reader.read_to_end(&mut got);
            (got, ended.is_err(), cut.load(Ordering::SeqCst))
        };
        assert_eq!(read(b"abcdef", 2), (b"ab".to_vec(), true, true));
        assert_eq!(read(b"abcdef", 6), (b"abcdef".to_vec(), false, false));
        assert_eq!(read(b"abcdef", 9), (b"abcdef".to_vec(), false, false));
    }

    #[test]
    fn shuts_down_the_connection_it_is_given() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, peer) = listener.accept().unwrap();
        assert!(shut_down(listener.local_addr().unwrap(), peer));
        let mut rest = Vec::new();
        assert_eq!(client.read_to_end(&mut rest).unwrap(), 0);
    }
}
