//! The daemon's few system calls without a safe wrapper (the one place under `src/daemon/`
//! where `unsafe` is allowed): taking ownership of descriptors inherited through socket
//! activation, and removing environment variables while the process has one thread.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::fcntl::{FcntlArg, FdFlag, fcntl};

/// Whether this process has exactly one thread now (read from `/proc/self/task`; `false`
/// when that cannot be read, which errs on the safe side).
pub fn single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|tasks| tasks.count() == 1)
}

/// Removes `names` from the environment if the process has one thread (so nothing can read
/// the environment concurrently); returns whether it did.
pub fn remove_env(names: &[&str]) -> bool {
    if !single_threaded() {
        return false;
    }
    for name in names {
        // SAFETY: the process has a single thread (checked above, and only this thread could
        // start another), so no other thread reads or writes the environment meanwhile.
        unsafe { std::env::remove_var(OsStr::new(name)) };
    }
    true
}

/// Takes ownership of descriptor `fd`, inherited from the parent at exec (socket activation),
/// and marks it close-on-exec. Fails if `fd` is not open.
///
/// The caller must call this at most once per descriptor, and only for descriptors that the
/// parent passed and nothing in this process opened or closed since (`activation` takes them
/// once, at start-up).
pub fn take_inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD reads the descriptor's flags and touches no memory; on a closed
    // descriptor it fails with EBADF.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(
            err.kind(),
            format!("inherited descriptor {fd} is not open: {err}"),
        ));
    }
    // SAFETY: the descriptor is open (checked above) and, per this function's contract, owned
    // by nothing else in the process, so the OwnedFd is its only owner.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    fcntl(&owned, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    Ok(owned)
}
