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

/// Forks a helper that removes `paths` once this process has exited, however it exits: the
/// files a daemon created as root in a directory that the user it drops to cannot write
/// (`[server] pidfile` in `/run`, say), which the daemon itself can then no longer remove.
///
/// Call it while the process has one thread (it refuses otherwise). The helper keeps only
/// the read end of a pipe and the descriptor `keep` (the pidfile's, whose `flock` it thereby
/// shares, so no other daemon can take the pidfile over before it is removed); it closes
/// every other descriptor (no listener, log or terminal stays open in it), ignores the stop
/// and hang-up signals (a Ctrl-C or a service manager's SIGTERM to the whole group must not
/// end it before the daemon), waits for end-of-file on the pipe (the daemon's end closes
/// when the daemon exits), removes the files and exits. The returned descriptor is the
/// daemon's end: keep it open for the life of the process.
pub fn fork_remover(paths: &[std::path::PathBuf], keep: RawFd) -> io::Result<OwnedFd> {
    use std::ffi::CString;
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;

    if !single_threaded() {
        return Err(io::Error::other(
            "the process already runs threads (a fork keeps only one)",
        ));
    }
    let names: Vec<CString> = paths
        .iter()
        .map(|path| CString::new(path.as_os_str().as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path holds a NUL byte"))?;
    let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let read_fd = reader.as_raw_fd();
    // SAFETY: the process has one thread (checked above), so the child starts from a
    // consistent copy of it and may run any code; it only makes system calls below and never
    // returns into the caller.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { .. } => {
            drop(reader);
            Ok(writer)
        }
        nix::unistd::ForkResult::Child => {
            for signal in [
                libc::SIGHUP,
                libc::SIGINT,
                libc::SIGTERM,
                libc::SIGQUIT,
                libc::SIGUSR1,
                libc::SIGUSR2,
                libc::SIGPIPE,
            ] {
                // SAFETY: setting a disposition to SIG_IGN installs no handler code.
                unsafe { libc::signal(signal, libc::SIG_IGN) };
            }
            let open: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
                .map(|entries| {
                    entries
                        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
                        .collect()
                })
                .unwrap_or_default();
            for fd in open {
                if fd != read_fd && fd != keep {
                    // SAFETY: this process (the helper) runs no other code that owns a
                    // descriptor; closing one it will never use again is harmless (the
                    // directory's own descriptor from read_dir is already closed, or EBADF).
                    unsafe { libc::close(fd) };
                }
            }
            let mut byte = [0u8; 1];
            loop {
                // SAFETY: reads into a local buffer of the length given.
                let read = unsafe { libc::read(read_fd, byte.as_mut_ptr().cast(), 1) };
                if read == 0
                    || (read < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted)
                {
                    break;
                }
            }
            for name in &names {
                // SAFETY: `name` is a NUL-terminated path.
                unsafe { libc::unlink(name.as_ptr()) };
            }
            // SAFETY: ends the helper without running the parent's exit handlers or
            // destructors (they belong to the daemon).
            unsafe { libc::_exit(0) }
        }
    }
}
