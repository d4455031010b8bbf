//! The server's calls without a safe wrapper (the one place under `src/server/` where
//! `unsafe` is allowed): the socket option `TCP_DEFER_ACCEPT`, which neither socket2 nor nix
//! wraps, and glibc's `malloc_trim`.

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

/// Gives the memory malloc holds free back to the system: glibc's `malloc_trim` returns the
/// free pages inside every arena, not only the top of the heap. Whether any went back; with
/// another C library, nothing happens.
pub(super) fn return_free_memory() -> bool {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim takes no pointer and is safe to call from any thread at any time.
    let returned = unsafe { libc::malloc_trim(0) } != 0;
    #[cfg(not(target_env = "gnu"))]
    let returned = false;
    returned
}
