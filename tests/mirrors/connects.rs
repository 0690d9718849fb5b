//! Counting the connect(2) calls this test process makes to a port.
//!
//! A mirror that is down refuses the connection: the kernel answers the
//! SYN with a reset, and no server, log or socket table ever sees the
//! attempt. So the count is taken where the attempt starts: this binary
//! defines `connect`, which the linker binds every call in the executable
//! to (tank's, std's, tokio's: definitions in the program's own objects
//! come before the C library's), counts the watched ports, and hands the
//! call to the C library's `connect`.

use std::ffi::c_int;
use std::sync::{Mutex, OnceLock};

type Connect = unsafe extern "C" fn(c_int, *const libc::sockaddr, libc::socklen_t) -> c_int;

/// (port, attempts) for every watched port.
static WATCHED: Mutex<Vec<(u16, usize)>> = Mutex::new(Vec::new());

/// Starts counting connects to `port` (127.0.0.1 or anywhere).
pub fn watch(port: u16) {
    let mut watched = WATCHED.lock().unwrap();
    if !watched.iter().any(|(p, _)| *p == port) {
        watched.push((port, 0));
    }
}

/// How many connects to `port` were attempted since `watch(port)`.
pub fn attempts(port: u16) -> usize {
    WATCHED
        .lock()
        .unwrap()
        .iter()
        .find(|(p, _)| *p == port)
        .map_or(0, |(_, n)| *n)
}

fn port_of(addr: *const libc::sockaddr, len: libc::socklen_t) -> Option<u16> {
    if addr.is_null() || (len as usize) < std::mem::size_of::<libc::sockaddr_in>() {
        return None;
    }
    // SAFETY: the caller's sockaddr is at least `len` bytes, checked above
    // for the family read and for each struct read below.
    unsafe {
        match c_int::from((*addr).sa_family) {
            libc::AF_INET => Some(u16::from_be((*addr.cast::<libc::sockaddr_in>()).sin_port)),
            libc::AF_INET6 if len as usize >= std::mem::size_of::<libc::sockaddr_in6>() => {
                Some(u16::from_be((*addr.cast::<libc::sockaddr_in6>()).sin6_port))
            }
            _ => None,
        }
    }
}

fn libc_connect() -> Connect {
    static REAL: OnceLock<usize> = OnceLock::new();
    let address = *REAL.get_or_init(|| {
        // SAFETY: dlsym with a NUL-terminated name; RTLD_NEXT finds the
        // next definition after this executable's, the C library's.
        let found = unsafe { libc::dlsym(libc::RTLD_NEXT, c"connect".as_ptr()) };
        assert!(
            !found.is_null(),
            "dlsym(RTLD_NEXT, \"connect\") found nothing"
        );
        found as usize
    });
    // SAFETY: the C library's connect has exactly this signature.
    unsafe { std::mem::transmute::<usize, Connect>(address) }
}

/// # Safety
/// As connect(2): `addr` points at `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn connect(
    fd: c_int,
    addr: *const libc::sockaddr,
    len: libc::socklen_t,
) -> c_int {
    if let Some(port) = port_of(addr, len) {
        // A poisoned lock (a failed test elsewhere) must not stop the call.
        if let Ok(mut watched) = WATCHED.lock() {
            if let Some((_, n)) = watched.iter_mut().find(|(p, _)| *p == port) {
                *n += 1;
            }
        }
    }
    libc_connect()(fd, addr, len)
}

#[test]
fn counts_a_refused_connect_and_lets_a_good_one_through() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    watch(open);
    watch(closed);
    std::net::TcpStream::connect(("127.0.0.1", open)).unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", closed)).is_err());
    assert!(std::net::TcpStream::connect(("127.0.0.1", closed)).is_err());
    assert_eq!(attempts(open), 1);
    assert_eq!(attempts(closed), 2);
}
