//! The test process's few system calls without a safe std wrapper (kept here, the one
//! place `unsafe` is allowed in the tests).

/// Raises the soft open-file limit to the hard one (a server started later, as a child,
/// inherits it). Fails the test with a clear message if the hard limit is below `needed`.
pub fn raise_fd_limit(needed: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass, which outlives the call.
    let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(got, 0, "getrlimit: {}", std::io::Error::last_os_error());
    assert!(
        limit.rlim_max >= needed,
        "RLIMIT_NOFILE hard limit {} is below the {needed} descriptors this test needs; \
         raise it (ulimit -Hn) to run the suite",
        limit.rlim_max
    );
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: setrlimit only reads the struct we pass.
    let set = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    assert_eq!(set, 0, "setrlimit: {}", std::io::Error::last_os_error());
}

/// Makes `command`'s child get a copy of `fd` as descriptor 3 (socket activation's first),
/// inheritable across exec; the test's own `fd` is left as it is.
pub fn pass_as_fd3(command: &mut std::process::Command, fd: std::os::fd::RawFd) {
    use std::os::unix::process::CommandExt;
    let hook = move || {
        // dup2 onto itself would keep close-on-exec set: clear it instead.
        let done = if fd == 3 {
            // SAFETY: fcntl on a descriptor number touches no memory (async-signal-safe).
            unsafe { libc::fcntl(3, libc::F_SETFD, 0) }
        } else {
            // SAFETY: dup2 touches no memory (async-signal-safe); in the child, descriptor 3
            // is replaced by the copy and the parent's descriptors are untouched.
            unsafe { libc::dup2(fd, 3) }
        };
        if done < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the hook runs between fork and exec and only makes async-signal-safe calls; it
    // allocates nothing and takes no lock.
    unsafe { command.pre_exec(hook) };
}

/// Makes `command`'s child start with at most `limit` open descriptors (soft and hard), so
/// it can be driven out of them.
pub fn limit_fds(command: &mut std::process::Command, limit: u64) {
    use std::os::unix::process::CommandExt;
    let hook = move || {
        let rlimit = libc::rlimit {
            rlim_cur: limit,
            rlim_max: limit,
        };
        // SAFETY: setrlimit only reads the struct, and is async-signal-safe (allowed
        // between fork and exec).
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    // SAFETY: the hook only calls setrlimit, which is async-signal-safe.
    unsafe { command.pre_exec(hook) };
}

/// The `TCP_DEFER_ACCEPT` value (in seconds, as the kernel reports it) of the TCP listening
/// socket of process `pid` bound to `port`, read from a copy of its descriptor
/// (`pidfd_getfd`, which needs the right to ptrace it: the test's own child qualifies).
pub fn defer_accept_of_listener(pid: u32, port: u16) -> i32 {
    use std::os::fd::{FromRawFd, OwnedFd};
    let pid = libc::pid_t::try_from(pid).expect("pid");
    // SAFETY: pidfd_open takes two integers and returns a new descriptor or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    assert!(
        pidfd >= 0,
        "pidfd_open: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the descriptor was just returned to us and is owned by nothing else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    let entries = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("read /proc/PID/fd");
    for entry in entries.flatten() {
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        let Some(number) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if !is_socket {
            continue;
        }
        use std::os::fd::AsRawFd;
        // SAFETY: pidfd_getfd takes integers and returns a new descriptor (a copy of the
        // target's) or -1; it touches no memory of ours.
        let copy = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), number, 0) };
        if copy < 0 {
            continue; // closed meanwhile
        }
        // SAFETY: as above, a fresh descriptor owned by nothing else.
        let socket = unsafe { socket2::Socket::from_raw_fd(copy as i32) };
        let listens = socket.is_listener().unwrap_or(false);
        let bound = socket.local_addr().ok().and_then(|a| a.as_socket());
        if !listens || bound.is_none_or(|addr| addr.port() != port) {
            continue;
        }
        let mut seconds: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `seconds`, which outlives it.
        let got = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_DEFER_ACCEPT,
                (&raw mut seconds).cast(),
                &mut len,
            )
        };
        assert_eq!(got, 0, "getsockopt: {}", std::io::Error::last_os_error());
        return seconds;
    }
    panic!("process {pid} has no listening socket on port {port}");
}

/// Clock ticks per second, the unit of /proc's CPU times (`sysconf(_SC_CLK_TCK)`).
pub fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf takes a constant and touches no memory of ours.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    ticks.max(1) as f64
}

/// A pseudo-terminal: (master, slave).
pub fn pty() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes the two descriptors it opens; the name, termios and window size
    // arguments may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened by openpty and are owned by nothing else.
    unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::fs::File::from_raw_fd(slave),
        )
    }
}
