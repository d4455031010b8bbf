//! Daemon mode: detaching from the invoking process (the `daemonize` crate) with a start-up
//! handshake, the locked pidfile, and dropping privileges after binding.
//!
//! **Handshake.** [`daemonize`](fn@daemonize) forks twice (`setsid` between, so the daemon has no
//! controlling terminal), `chdir`s to `/` and keeps the invoker's umask. The invoking process
//! does not return from it: it waits on a pipe until the daemon says [`Handshake::ready`]
//! (exit 0) or [`Handshake::failed`] (the daemon's error text on its stderr, exit
//! [`EXIT_STARTUP`]), or the daemon dies first (exit `EXIT_STARTUP` too). So a script or
//! `Type=forking` unit sees a port conflict as a failed start, not as a success followed by
//! a dead daemon.
//!
//! **Standard streams.** stdin and stdout become `/dev/null` (the daemon reads nothing and
//! prints nothing). stderr is kept when the error log goes to stderr and stderr is not a
//! terminal (so `asycamore --daemonize 2>>file`, or a supervisor capturing it, still gets the
//! log), and becomes `/dev/null` otherwise; from a terminal, `daemon::run` sends a
//! `[log] target = "stderr"` log to syslog instead.
//!
//! **Removing the pidfile after a privilege drop.** A daemon started as root creates the
//! pidfile where root may write (`/run`, say); once it runs as `[server] user`, it may no
//! longer remove it (unlinking needs write permission on the directory, checked at the time
//! of the call: a directory descriptor opened before the drop does not help).
//! [`PidFile::remove_after_exit`] forks, while the process still has one thread, a helper that
//! stays root, holds nothing but the pidfile's lock and a pipe, and removes the files when the
//! pipe says the daemon has exited, however it exited.
//!
//! **Pidfile.** [`write_pidfile`] creates the file, holds an exclusive `flock` on it for the
//! life of the process and writes the pid; dropping the [`PidFile`] removes the file. A
//! pidfile that exists but is not locked is stale (its daemon died without cleaning up) and
//! is taken over; [`running_pid`] tells the two apart, so a stale file never gets a signal
//! sent to whatever process now has its number.
//!
//! **Privileges.** [`drop_privileges`] runs after binding (so port 80 works when started as
//! root): `setgroups`, `setgid`, then `setuid`, which on Linux (glibc and musl alike) apply to
//! every thread of the process, the workers included.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use daemonize::{Daemonize, Outcome, Stdio};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::{Mode, umask};
use nix::unistd::{Gid, Group, Uid, User};

use super::{EXIT_STARTUP, sys};

/// What the daemon says on the handshake pipe when it is serving.
const READY: &[u8] = b"ready\n";
/// What starts the daemon's message when it cannot start; the error text follows.
const FAILED: &[u8] = b"failed\n";

/// The daemon's end of the start-up handshake. Exactly one of [`ready`](Self::ready) or
/// [`failed`](Self::failed) should be called; dropping it unsaid tells the invoker that the
/// daemon died during start-up.
#[derive(Debug)]
pub struct Handshake {
    pipe: File,
}

impl Handshake {
    /// Tells the invoking process that the daemon is serving: it exits 0.
    pub fn ready(mut self) -> io::Result<()> {
        self.pipe.write_all(READY)
    }

    /// Tells the invoking process that the daemon cannot start: it prints `message` on its
    /// stderr and exits [`EXIT_STARTUP`]. The daemon should then exit as well.
    pub fn failed(mut self, message: &str) {
        // If the invoker is gone there is no one left to tell.
        let _ = self.pipe.write_all(&[FAILED, message.as_bytes()].concat());
    }
}

/// Detaches the process from its invoker (see the module documentation). Returns in the
/// daemon only; the invoking process exits when the daemon answers the [`Handshake`].
///
/// Call it before anything starts a thread (a fork keeps only the calling thread): it refuses
/// otherwise. It fails in the invoker, before forking, when `pidfile` is locked by a running
/// daemon. `pidfile` and every other path the daemon uses later should be absolute, since the
/// daemon's working directory is `/`.
pub fn daemonize(pidfile: &Path, keep_stderr: bool) -> io::Result<Handshake> {
    if let Some(pid) = running_pid(pidfile)? {
        return Err(already_running(pidfile, pid));
    }
    if !sys::single_threaded() {
        return Err(io::Error::other(
            "cannot daemonize: the process already runs threads (a fork keeps only one)",
        ));
    }
    let (reader, writer) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let stderr = if keep_stderr {
        Stdio::keep()
    } else {
        Stdio::devnull()
    };
    let daemon = Daemonize::new()
        .working_directory("/")
        .umask(current_umask())
        .stdout(Stdio::devnull())
        .stderr(stderr);
    match daemon.execute() {
        Outcome::Parent(Ok(_)) => {
            drop(writer);
            await_daemon(File::from(reader))
        }
        Outcome::Parent(Err(err)) => Err(io::Error::other(format!("cannot daemonize: {err}"))),
        Outcome::Child(Ok(_)) => {
            drop(reader);
            Ok(Handshake {
                pipe: File::from(writer),
            })
        }
        Outcome::Child(Err(err)) => {
            Handshake {
                pipe: File::from(writer),
            }
            .failed(&format!("cannot daemonize: {err}"));
            std::process::exit(EXIT_STARTUP.into())
        }
    }
}

/// The invoking process: waits for the daemon's word, reports it, exits.
fn await_daemon(mut pipe: File) -> ! {
    let mut said = Vec::new();
    let outcome = match pipe.read_to_end(&mut said) {
        Ok(_) => outcome(&said),
        Err(err) => Err(format!("cannot hear from the daemon: {err}")),
    };
    match outcome {
        Ok(()) => std::process::exit(0),
        Err(message) => {
            eprintln!("asycamore: the daemon did not start: {message}");
            std::process::exit(EXIT_STARTUP.into())
        }
    }
}

/// What the daemon's bytes on the handshake pipe mean.
fn outcome(said: &[u8]) -> Result<(), String> {
    if said.starts_with(READY) {
        Ok(())
    } else if let Some(message) = said.strip_prefix(FAILED) {
        Err(String::from_utf8_lossy(message).trim_end().to_string())
    } else {
        Err("it exited during start-up (see its log)".to_string())
    }
}

/// The process's umask, unchanged (reading it means setting it, so it is set back).
fn current_umask() -> u32 {
    let mask = umask(Mode::empty());
    umask(mask);
    mask.bits()
}

/// A pidfile this process holds locked; removed when dropped.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    /// Keeps the lock (released when the descriptor closes, after the file is removed).
    _lock: Flock<File>,
    /// This process's end of the pipe of the helper that removes the file after it exits
    /// ([`remove_after_exit`](Self::remove_after_exit)).
    remover: Option<std::os::fd::OwnedFd>,
}

impl PidFile {
    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Has the pidfile and `also` (the reload status file beside it) removed once this
    /// process has exited, by a helper forked now that keeps root's right to write the
    /// directory (see `sys::fork_remover`): for a daemon about to drop its privileges, which
    /// could then no longer remove them. Call it while the process has one thread.
    pub fn remove_after_exit(&mut self, also: &[PathBuf]) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let mut paths = also.to_vec();
        // The pidfile last: while it exists and is locked, nobody takes the directory's
        // files over.
        paths.push(self.path.clone());
        self.remover = Some(sys::fork_remover(&paths, self._lock.as_raw_fd())?);
        Ok(())
    }
}

/// Whether dropping privileges to `user` will leave this process unable to remove what it
/// created as root: it runs as root now and `user` is another user.
pub fn drops_root(user: Option<&str>) -> bool {
    Uid::effective().is_root()
        && user
            .and_then(|user| find_user(user).ok())
            .is_some_and(|user| !user.uid.is_root())
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Removed while still locked, so no other process can take it over half-removed.
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            // Privileges dropped since: the helper removes it once this process has exited.
            Err(err) if self.remover.is_some() && err.kind() == io::ErrorKind::PermissionDenied => {
            }
            // E.g. privileges dropped since: the file stays, unlocked, hence stale.
            Err(err) => log::warn!("cannot remove pidfile {}: {err}", self.path.display()),
        }
    }
}

/// Creates (or takes over a stale) pidfile at `path`, locks it and writes this process's id.
/// Fails if a running daemon holds it.
pub fn write_pidfile(path: &Path) -> io::Result<PidFile> {
    let context = |err: io::Error| {
        io::Error::new(
            err.kind(),
            format!("cannot write pidfile {}: {err}", path.display()),
        )
    };
    // A few tries: another process may remove the file between our open and our lock.
    for _ in 0..8 {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .map_err(context)?;
        let mut locked = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => locked,
            Err((_, Errno::EWOULDBLOCK)) => {
                return Err(match running_pid(path)? {
                    Some(pid) => already_running(path, pid),
                    None => context(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        "locked by another process",
                    )),
                });
            }
            Err((_, errno)) => return Err(context(errno.into())),
        };
        // Locked, but is it still the file at `path`?
        let held = locked.metadata().map_err(context)?;
        match std::fs::metadata(path) {
            Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {}
            _ => continue,
        }
        locked.set_len(0).map_err(context)?;
        locked
            .write_all(format!("{}\n", std::process::id()).as_bytes())
            .map_err(context)?;
        return Ok(PidFile {
            path: path.to_path_buf(),
            _lock: locked,
            remover: None,
        });
    }
    Err(context(io::Error::other(
        "the file kept being replaced while being locked",
    )))
}

/// The pid of the daemon holding the pidfile at `path`; `None` when there is no such file
/// or no process holds its lock (stale).
pub fn running_pid(path: &Path) -> io::Result<Option<u32>> {
    let context = |err: io::Error| {
        io::Error::new(
            err.kind(),
            format!("cannot read pidfile {}: {err}", path.display()),
        )
    };
    // A daemon writes its pid just after locking: give a reader that came in between a moment.
    for _ in 0..50 {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(context(err)),
        };
        let mut file = match Flock::lock(file, FlockArg::LockSharedNonblock) {
            // Nobody holds it: stale (the shared lock is released on return).
            Ok(_) => return Ok(None),
            Err((file, Errno::EWOULDBLOCK)) => file,
            Err((_, errno)) => return Err(context(errno.into())),
        };
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(context)?;
        if let Ok(pid) = text.trim().parse() {
            return Ok(Some(pid));
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    Err(context(io::Error::new(
        io::ErrorKind::InvalidData,
        "locked, but it holds no process id",
    )))
}

fn already_running(path: &Path, pid: u32) -> io::Error {
    io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "pidfile {} is locked: asycamore is already running as pid {pid}",
            path.display()
        ),
    )
}

/// Switches the process (every thread) to `user` and `group` (names or numeric ids; `group`
/// defaults to the user's primary group), dropping supplementary groups: `setgroups`,
/// `setgid`, `setuid`, in that order, then checks that root cannot be regained. Nothing to do
/// when both are `None`, or when the process already runs as exactly them.
pub fn drop_privileges(user: Option<&str>, group: Option<&str>) -> io::Result<()> {
    if user.is_none() && group.is_none() {
        return Ok(());
    }
    let who = match (user, group) {
        (Some(user), Some(group)) => format!("user {user} and group {group}"),
        (Some(user), None) => format!("user {user}"),
        (None, Some(group)) => format!("group {group}"),
        (None, None) => unreachable!("checked above"),
    };
    let context = |err: io::Error| {
        io::Error::new(
            err.kind(),
            format!("cannot drop privileges to {who}: {err}"),
        )
    };
    let user = user.map(find_user).transpose().map_err(context)?;
    let gid = match (group, &user) {
        (Some(group), _) => find_group(group).map_err(context)?,
        (None, Some(user)) => user.gid,
        (None, None) => unreachable!("checked above"),
    };
    let uid = user.as_ref().map(|user| user.uid);
    let same_uid = uid.is_none_or(|uid| uid == Uid::current() && uid == Uid::effective());
    if same_uid && gid == Gid::current() && gid == Gid::effective() && !Uid::effective().is_root() {
        return Ok(());
    }
    let os = |errno: Errno| context(errno.into());
    nix::unistd::setgroups(&[gid]).map_err(os)?;
    nix::unistd::setgid(gid).map_err(os)?;
    if let Some(uid) = uid {
        nix::unistd::setuid(uid).map_err(os)?;
        if !uid.is_root() && nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
            return Err(context(io::Error::other("root could be regained")));
        }
    }
    Ok(())
}

fn find_user(name: &str) -> io::Result<User> {
    let found = match User::from_name(name)? {
        Some(user) => Some(user),
        None => match name.parse() {
            Ok(id) => User::from_uid(Uid::from_raw(id))?,
            Err(_) => None,
        },
    };
    found.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such user"))
}

fn find_group(name: &str) -> io::Result<Gid> {
    if let Some(group) = Group::from_name(name)? {
        return Ok(group.gid);
    }
    match name.parse() {
        // A numeric group need not have a name.
        Ok(id) => Ok(Gid::from_raw(id)),
        Err(_) => Err(io::Error::new(io::ErrorKind::NotFound, "no such group")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "asycamore-process-{}-{name}.pid",
            std::process::id()
        ))
    }

    #[test]
    fn the_handshake_outcome_is_read_from_the_pipe() {
        assert_eq!(outcome(b"ready\n"), Ok(()));
        assert_eq!(
            outcome(b"failed\ncannot bind 127.0.0.1:80: Address in use\n"),
            Err("cannot bind 127.0.0.1:80: Address in use".to_string())
        );
        assert!(outcome(b"").unwrap_err().contains("exited during start-up"));
    }

    #[test]
    fn a_pidfile_is_locked_written_and_removed() {
        let path = temp("locked");
        let pidfile = write_pidfile(&path).unwrap();
        assert_eq!(pidfile.path(), path);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
        assert_eq!(running_pid(&path).unwrap(), Some(std::process::id()));
        // A second holder is refused while the first holds it.
        let err = write_pidfile(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(err.to_string().contains("already running as pid"), "{err}");
        drop(pidfile);
        assert!(!path.exists());
        assert_eq!(running_pid(&path).unwrap(), None);
    }

    #[test]
    fn a_stale_pidfile_is_taken_over() {
        let path = temp("stale");
        std::fs::write(&path, "999999999\n").unwrap();
        assert_eq!(running_pid(&path).unwrap(), None);
        let pidfile = write_pidfile(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
        drop(pidfile);
        assert!(!path.exists());
    }

    #[test]
    fn a_pidfile_in_a_missing_directory_is_an_error_naming_it() {
        let path = temp("dir").join("missing").join("x.pid");
        let err = write_pidfile(&path).unwrap_err();
        assert!(err.to_string().contains("cannot write pidfile"), "{err}");
        assert!(err.to_string().contains("x.pid"), "{err}");
    }

    #[test]
    fn dropping_nothing_or_to_an_unknown_user_changes_nothing() {
        drop_privileges(None, None).unwrap();
        let err = drop_privileges(Some("no-such-user-asycamore"), None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("no-such-user-asycamore"), "{err}");
        let err = drop_privileges(None, Some("no-such-group-asycamore")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
