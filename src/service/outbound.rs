//! Connections an exchange opens to other servers (the reverse proxy's upstreams), lent by
//! the server through [`ResponseWriter::outbound`](super::ResponseWriter::outbound).
//!
//! The server owns the sockets: they live in the worker's poll loop beside the client
//! connections, and readiness on one offers its exchange room
//! ([`Exchange::on_writable`](super::Exchange::on_writable)) the same way a drained client
//! socket does. An exchange only holds [`OutboundId`]s and does non-blocking reads and
//! writes through the [`Outbound`] trait. Connections parked for reuse stay with the worker
//! (its keep-alive pool); one the peer closes while parked is dropped from the pool at once.
//! A connection the exchange still holds when its request ends is closed by the server.
//!
//! This module defines only the interface: it knows nothing of sockets or the reactor.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// The length of a buffer from [`Outbound::take_read_buffer`].
pub const READ_BUFFER_LEN: usize = 64 * 1024;

/// One outbound connection lent to an exchange. Meaningless to anyone but the worker that
/// lent it; stale once closed or parked (operations on it then fail with `NotConnected`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct OutboundId(u64);

impl OutboundId {
    /// An id as the lending server encodes it.
    pub fn new(raw: u64) -> Self {
        OutboundId(raw)
    }

    /// The value the server encoded.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// Where to connect.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Destination<'a> {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix stream socket.
    Unix(&'a Path),
}

/// How a parked connection is kept: under `key` (the exchange's choice, e.g. one per
/// upstream server), at most `max_idle` per key per worker, closed after `idle_timeout`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Parking {
    /// Connections parked under the same key are interchangeable.
    pub key: u64,
    /// The most kept under `key` (beyond: the connection is closed).
    pub max_idle: usize,
    /// How long one is kept unused.
    pub idle_timeout: Duration,
}

/// What the server lends an exchange for talking to other servers. Every call is
/// non-blocking; `WouldBlock` means "wait": the exchange is offered room again when the
/// connection's readiness changes.
pub trait Outbound {
    /// Starts connecting to `to`, a connection to be pooled under `key` (the same key as
    /// [`Parking::key`]; the server counts connections per key). The connection is usually
    /// still being established when this returns: writes are `WouldBlock` until it is, and a
    /// refused or failed connect shows up as a write's (or a read's) error.
    fn connect(&mut self, to: Destination<'_>, key: u64) -> io::Result<OutboundId>;

    /// A connection parked under `key` the peer has not closed, if any (most recently
    /// parked first). `verify` also asks the kernel, at the cost of a system call, whether
    /// the peer has closed it or sent something since the pool last looked: for a request
    /// that must not be sent on a connection that may be dying (one that cannot be retried).
    fn checkout(&mut self, key: u64, verify: bool) -> Option<OutboundId>;

    /// Done with `id` after a complete exchange: keeps it for reuse as `parking` says, or
    /// closes it. It must not have unread or unsent bytes.
    fn park(&mut self, id: OutboundId, parking: Parking);

    /// Closes `id` (an error, or a connection that cannot be reused).
    fn close(&mut self, id: OutboundId);

    /// Reads what has arrived; `Ok(0)` is the peer's end of stream.
    fn read(&mut self, id: OutboundId, buf: &mut [u8]) -> io::Result<usize>;

    /// Writes what the connection takes now.
    fn write(&mut self, id: OutboundId, data: &[u8]) -> io::Result<usize>;

    /// An empty buffer from the worker's pool, to collect bytes to write in (give it back
    /// with [`give_write_buffer`](Self::give_write_buffer) so the next exchange need not
    /// allocate).
    fn take_write_buffer(&mut self) -> Vec<u8>;

    /// Returns a buffer from [`take_write_buffer`](Self::take_write_buffer).
    fn give_write_buffer(&mut self, buffer: Vec<u8>);

    /// A buffer to read into: [`READ_BUFFER_LEN`] initialized bytes, whose contents are
    /// leftovers of earlier use (the worker zeroes a buffer once, when it first makes it,
    /// not on every loan). Give it back with [`give_read_buffer`](Self::give_read_buffer).
    fn take_read_buffer(&mut self) -> Vec<u8>;

    /// Returns a buffer from [`take_read_buffer`](Self::take_read_buffer).
    fn give_read_buffer(&mut self, buffer: Vec<u8>);
}
