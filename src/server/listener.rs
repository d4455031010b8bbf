//! Listening sockets: one `SO_REUSEPORT` socket per worker per address, and the accept loop.
//!
//! The kernel spreads new connections over a group's sockets, so workers never share an
//! accept queue or a lock. Accepting stops at the worker's connection limit and backs off
//! on descriptor exhaustion (`EMFILE`, `ENFILE`, ...) with a timer instead of retrying at
//! once: a full process must not spin on a listener that stays readable.

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::stream::{Listener, Stream};
use crate::log_rate::{error_limited, warn_limited};

/// How long accepting pauses after the process ran out of descriptors or memory.
pub(super) const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The accept queue length asked of the kernel (capped by `net.core.somaxconn`).
const BACKLOG: i32 = 4096;

/// Binds `count` sockets to `addr` with `SO_REUSEPORT`. With port 0, the first socket picks
/// the port and the others join it.
pub(super) fn bind_group(
    addr: SocketAddr,
    count: usize,
    defer_accept: bool,
) -> io::Result<Vec<TcpListener>> {
    if addr.port() != 0 {
        ensure_unclaimed(addr)?;
    }
    let first = bind_one(addr, defer_accept)?;
    let addr = first.local_addr()?;
    let mut sockets = Vec::with_capacity(count);
    sockets.push(first);
    for _ in 1..count {
        sockets.push(bind_one(addr, defer_accept)?);
    }
    Ok(sockets)
}

/// Gives every worker its own descriptor for one inherited listening socket (socket
/// activation): duplicates of one socket, so they share its accept queue.
pub(super) fn share(
    socket: std::net::TcpListener,
    count: usize,
    defer_accept: bool,
) -> io::Result<Vec<TcpListener>> {
    socket.set_nonblocking(true)?;
    super::sys::set_defer_accept(&socket, defer_accept)?;
    let mut sockets = Vec::with_capacity(count);
    for _ in 1..count {
        sockets.push(TcpListener::from_std(socket.try_clone()?));
    }
    sockets.push(TcpListener::from_std(socket));
    Ok(sockets)
}

/// The socket file of a bound Unix listener. Dropping it removes the file, unless another
/// file took its place meanwhile.
pub(super) struct SocketFile {
    path: PathBuf,
    /// The file's device and inode when bound.
    id: (u64, u64),
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|meta| (meta.dev(), meta.ino()) == self.id);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds a Unix stream socket at `path` (mode 0660) and gives every worker a descriptor for
/// it (duplicates of one socket, sharing its accept queue, like inherited TCP listeners).
/// A socket file left behind by a server that is gone (nobody answers on it) is replaced;
/// any other file at `path`, or a socket somebody answers on, is an error.
pub(super) fn bind_unix(path: &Path, count: usize) -> io::Result<(Vec<Listener>, SocketFile)> {
    let fail = |err: io::Error, why: &str| {
        io::Error::new(
            err.kind(),
            format!("cannot bind {}: {why}{err}", path.display()),
        )
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            let err = io::Error::new(io::ErrorKind::AlreadyExists, "a file that is not a socket");
            return Err(fail(err, "the path is taken by "));
        }
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => {
                let err = io::Error::new(io::ErrorKind::AddrInUse, "another server answers on it");
                return Err(fail(err, ""));
            }
            // Nobody listens: a stale file from a server that is gone.
            Err(err) if err.raw_os_error() == Some(libc::ECONNREFUSED) => {
                std::fs::remove_file(path).map_err(|err| fail(err, "removing a stale socket: "))?;
            }
            Err(err) => return Err(fail(err, "probing the existing socket: ")),
        },
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(fail(err, "")),
    }
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket
        .bind(&SockAddr::unix(path)?)
        .map_err(|err| fail(err, ""))?;
    let meta = std::fs::symlink_metadata(path)?;
    let file = SocketFile {
        path: path.to_owned(),
        id: (meta.dev(), meta.ino()),
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    socket.listen(BACKLOG)?;
    let socket = std::os::unix::net::UnixListener::from(socket);
    let mut sockets = Vec::with_capacity(count);
    for _ in 1..count {
        let clone = mio::net::UnixListener::from_std(socket.try_clone()?);
        sockets.push(Listener::Unix(clone));
    }
    sockets.push(Listener::Unix(mio::net::UnixListener::from_std(socket)));
    Ok((sockets, file))
}

/// Fails if another socket listens on `addr`, even one with `SO_REUSEPORT`: without this
/// check a second asycamore started by mistake would join the first one's group and
/// silently take half its connections. A probe bound without `SO_REUSEPORT` conflicts with
/// any listener on the address (and `SO_REUSEADDR` keeps TIME_WAIT leftovers from
/// counting). The probe is never listened on and is closed at once.
fn ensure_unclaimed(addr: SocketAddr) -> io::Result<()> {
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    probe.set_reuse_address(true)?;
    if addr.is_ipv6() {
        probe.set_only_v6(true)?;
    }
    probe
        .bind(&addr.into())
        .map_err(|err| bind_error(addr, &err, unprivileged_port_start()))
}

/// The error for `addr` failing to bind with `err`, saying what to do about the two causes an
/// operator meets: the address is taken, or the port is privileged (below
/// `unprivileged_start`, Linux's `net.ipv4.ip_unprivileged_port_start`) and this process may
/// not bind it.
pub(crate) fn bind_error(addr: SocketAddr, err: &io::Error, unprivileged_start: u16) -> io::Error {
    let hint = match err.kind() {
        io::ErrorKind::AddrInUse => " (another server has it)".to_owned(),
        io::ErrorKind::PermissionDenied if addr.port() < unprivileged_start => format!(
            " (ports below {unprivileged_start} need privilege: start asycamore as root with \
             [server] user set, so it drops to that user after binding; or give it \
             CAP_NET_BIND_SERVICE (AmbientCapabilities=CAP_NET_BIND_SERVICE in the systemd unit, \
             or setcap cap_net_bind_service=+ep on the binary); or listen on port \
             {unprivileged_start} or above)"
        ),
        _ => String::new(),
    };
    io::Error::new(err.kind(), format!("cannot bind {addr}: {err}{hint}"))
}

/// The lowest port an unprivileged process may bind (`net.ipv4.ip_unprivileged_port_start`,
/// which covers IPv6 too); 1024 when it cannot be read.
fn unprivileged_port_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(1024)
}

fn bind_one(addr: SocketAddr, defer_accept: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Accepted sockets inherit this on Linux, which saves a syscall per connection: each
    // response is written whole, so Nagle's delay would only ever hurt.
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    super::sys::set_defer_accept(&socket, defer_accept)?;
    socket
        .bind(&addr.into())
        .map_err(|err| bind_error(addr, &err, unprivileged_port_start()))?;
    socket.listen(BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// What one accept attempt produced.
pub(super) enum Accepted {
    /// A new connection, and its peer's address (`None` over a Unix socket).
    Stream(Stream, Option<SocketAddr>),
    /// Nothing pending.
    Drained,
    /// Out of descriptors or memory: back off until the returned instant.
    BackOff(Instant),
    /// A transient per-connection failure (the peer gave up); try again at once.
    Retry,
}

/// Accepts one connection.
pub(super) fn accept_one(listener: &Listener, now: Instant) -> Accepted {
    match listener.accept() {
        Ok((stream, peer)) => Accepted::Stream(stream, peer),
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => Accepted::Drained,
        Err(err) => match err.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                // Every backoff would log again while descriptors stay short: once per interval.
                warn_limited!("accept: {err}; pausing accepts for {ACCEPT_BACKOFF:?}");
                Accepted::BackOff(now + ACCEPT_BACKOFF)
            }
            Some(libc::ECONNABORTED | libc::EINTR | libc::EPROTO | libc::EPERM) => Accepted::Retry,
            _ => {
                error_limited!("accept: {err}; pausing accepts for {ACCEPT_BACKOFF:?}");
                Accepted::BackOff(now + ACCEPT_BACKOFF)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::bind_error;
    use std::io;

    #[test]
    fn a_bind_error_says_what_to_do() {
        let denied = io::Error::from_raw_os_error(libc::EACCES);
        let in_use = io::Error::from_raw_os_error(libc::EADDRINUSE);
        let low = "127.0.0.1:80".parse().unwrap();
        let high = "[::1]:8080".parse().unwrap();
        let message = bind_error(low, &denied, 1024).to_string();
        assert!(
            message.starts_with("cannot bind 127.0.0.1:80: Permission denied (os error 13) (")
                && message.contains("CAP_NET_BIND_SERVICE")
                && message.contains("[server] user")
                && message.contains("port 1024 or above"),
            "{message}"
        );
        assert_eq!(
            bind_error(low, &denied, 1024).kind(),
            io::ErrorKind::PermissionDenied
        );
        // Not a privileged port (or the threshold lowered): no hint that would mislead.
        assert_eq!(
            bind_error(high, &denied, 1024).to_string(),
            "cannot bind [::1]:8080: Permission denied (os error 13)"
        );
        assert_eq!(
            bind_error(low, &denied, 80).to_string(),
            "cannot bind 127.0.0.1:80: Permission denied (os error 13)"
        );
        assert_eq!(
            bind_error(high, &in_use, 1024).to_string(),
            "cannot bind [::1]:8080: Address already in use (os error 98) (another server has it)"
        );
    }
}
