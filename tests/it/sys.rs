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
