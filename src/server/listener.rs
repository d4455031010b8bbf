//! Listening sockets: one `SO_REUSEPORT` socket per worker per address, and the accept loop.
//!
//! The kernel spreads new connections over a group's sockets, so workers never share an
//! accept queue or a lock. Accepting stops at the worker's connection limit and backs off
//! on descriptor exhaustion (`EMFILE`, `ENFILE`, ...) with a timer instead of retrying at
//! once: a full process must not spin on a listener that stays readable.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use socket2::{Domain, Protocol, Socket, Type};

/// How long accepting pauses after the process ran out of descriptors or memory.
pub(super) const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The accept queue length asked of the kernel (capped by `net.core.somaxconn`).
const BACKLOG: i32 = 4096;

/// Binds `count` sockets to `addr` with `SO_REUSEPORT`. With port 0, the first socket picks
/// the port and the others join it.
pub(super) fn bind_group(addr: SocketAddr, count: usize) -> io::Result<Vec<TcpListener>> {
    if addr.port() != 0 {
        ensure_unclaimed(addr)?;
    }
    let first = bind_one(addr)?;
    let addr = first.local_addr()?;
    let mut sockets = Vec::with_capacity(count);
    sockets.push(first);
    for _ in 1..count {
        sockets.push(bind_one(addr)?);
    }
    Ok(sockets)
}

/// Gives every worker its own descriptor for one inherited listening socket (socket
/// activation): duplicates of one socket, so they share its accept queue.
pub(super) fn share(socket: std::net::TcpListener, count: usize) -> io::Result<Vec<TcpListener>> {
    socket.set_nonblocking(true)?;
    let mut sockets = Vec::with_capacity(count);
    for _ in 1..count {
        sockets.push(TcpListener::from_std(socket.try_clone()?));
    }
    sockets.push(TcpListener::from_std(socket));
    Ok(sockets)
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
    probe.bind(&addr.into()).map_err(|err| {
        io::Error::new(
            err.kind(),
            format!("cannot bind {addr}: {err} (another server has it)"),
        )
    })
}

fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
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
    socket
        .bind(&addr.into())
        .map_err(|err| io::Error::new(err.kind(), format!("cannot bind {addr}: {err}")))?;
    socket.listen(BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// What one accept attempt produced.
pub(super) enum Accepted {
    /// A new connection, and its peer's address.
    Stream(mio::net::TcpStream, SocketAddr),
    /// Nothing pending.
    Drained,
    /// Out of descriptors or memory: back off until the returned instant.
    BackOff(Instant),
    /// A transient per-connection failure (the peer gave up); try again at once.
    Retry,
}

/// Accepts one connection.
pub(super) fn accept_one(listener: &TcpListener, now: Instant) -> Accepted {
    match listener.accept() {
        Ok((stream, peer)) => Accepted::Stream(stream, peer),
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => Accepted::Drained,
        Err(err) => match err.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                log::warn!("accept: {err}; pausing accepts for {ACCEPT_BACKOFF:?}");
                Accepted::BackOff(now + ACCEPT_BACKOFF)
            }
            Some(libc::ECONNABORTED | libc::EINTR | libc::EPROTO | libc::EPERM) => Accepted::Retry,
            _ => {
                log::error!("accept: {err}; pausing accepts for {ACCEPT_BACKOFF:?}");
                Accepted::BackOff(now + ACCEPT_BACKOFF)
            }
        },
    }
}
