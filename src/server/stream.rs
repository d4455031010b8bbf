//! A connection's socket and a listening socket, each TCP or Unix-domain.
//!
//! The connection code is written once over [`Stream`]; what only TCP has (`TCP_CORK`,
//! `MSG_MORE`) is asked of [`Stream::is_tcp`]. A Unix connection has no network peer: its
//! peer address is `None`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};

use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

/// `mio::event::Source` for an enum whose variants (`Tcp`, `Unix`) each hold a source:
/// every call goes to the variant's own.
macro_rules! impl_source {
    ($kind:ident) => {
        impl Source for $kind {
            fn register(
                &mut self,
                registry: &Registry,
                token: Token,
                interest: Interest,
            ) -> io::Result<()> {
                match self {
                    $kind::Tcp(inner) => inner.register(registry, token, interest),
                    $kind::Unix(inner) => inner.register(registry, token, interest),
                }
            }

            fn reregister(
                &mut self,
                registry: &Registry,
                token: Token,
                interest: Interest,
            ) -> io::Result<()> {
                match self {
                    $kind::Tcp(inner) => inner.reregister(registry, token, interest),
                    $kind::Unix(inner) => inner.reregister(registry, token, interest),
                }
            }

            fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
                match self {
                    $kind::Tcp(inner) => inner.deregister(registry),
                    $kind::Unix(inner) => inner.deregister(registry),
                }
            }
        }
    };
}

/// A connection's socket.
pub(super) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    /// Whether TCP-only socket options (`TCP_CORK`, `MSG_MORE`) apply.
    pub(super) fn is_tcp(&self) -> bool {
        matches!(self, Stream::Tcp(_))
    }

    pub(super) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(stream) => stream.shutdown(how),
            Stream::Unix(stream) => stream.shutdown(how),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(stream) => stream.read(buf),
            Stream::Unix(stream) => stream.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(stream) => stream.write(buf),
            Stream::Unix(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(stream) => stream.as_fd(),
            Stream::Unix(stream) => stream.as_fd(),
        }
    }
}

impl_source!(Stream);

/// A listening socket.
pub(super) enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    /// The TCP address it listens on; `None` for a Unix socket.
    pub(super) fn local_addr(&self) -> io::Result<Option<SocketAddr>> {
        match self {
            Listener::Tcp(listener) => listener.local_addr().map(Some),
            Listener::Unix(_) => Ok(None),
        }
    }

    /// Accepts one connection: its socket and, for TCP, its peer's address.
    pub(super) fn accept(&self) -> io::Result<(Stream, Option<SocketAddr>)> {
        match self {
            Listener::Tcp(listener) => {
                let (stream, peer) = listener.accept()?;
                Ok((Stream::Tcp(stream), Some(peer)))
            }
            Listener::Unix(listener) => {
                let (stream, _) = listener.accept()?;
                Ok((Stream::Unix(stream), None))
            }
        }
    }
}

impl_source!(Listener);
