//! The server's one socket option without a safe wrapper (the one place under `src/server/`
//! where `unsafe` is allowed): `TCP_DEFER_ACCEPT`, which neither socket2 nor nix wraps.

use std::io;
use std::os::fd::AsRawFd;

/// How long the kernel holds a connection that has sent nothing before handing it over
/// anyway (Linux rounds it to its SYN-ACK retransmission schedule: about a second).
const DEFER_ACCEPT_SECONDS: libc::c_int = 1;

/// Sets or clears `TCP_DEFER_ACCEPT` on a listening socket (see
/// `ServerConfig::defer_accept`). Cleared explicitly too, so an inherited socket follows the
/// configuration rather than the unit file that made it.
pub(super) fn set_defer_accept(socket: &impl AsRawFd, on: bool) -> io::Result<()> {
    let seconds: libc::c_int = if on { DEFER_ACCEPT_SECONDS } else { 0 };
    // SAFETY: the descriptor is open for the borrow's length, and the option value is a
    // c_int passed with its exact size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&raw const seconds).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
