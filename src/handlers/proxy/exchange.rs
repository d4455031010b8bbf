//! One proxied request: the state machine that connects to an upstream server, sends the
//! request (head, then the body as it arrives), reads the response head and relays the
//! body, with timeouts, retries and back-pressure both ways.
//!
//! Two halves run side by side: the request half (`out`, what is still to be written
//! upstream) and the response half ([`Relay`]). A slow upstream holds the client's body
//! ([`ResponseWriter::hold_body`]); a slow client stops the reads from the upstream (it
//! reads only while the client's output has room). Nothing here touches a socket except
//! through [`Outbound`]; nothing blocks.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::http1::chunked::ChunkedDecoder;
use crate::http1::encode;
use crate::service::{
    BodyEvent, Destination, HeaderLines, Outbound, OutboundId, Parking, ResponseWriter,
    UpstreamUsed,
};

mod decode;
mod failure;
mod receive;

use failure::Failure;

use super::balance::{Claim, NoServer};
use super::settings::UpstreamAddress;
use super::{Upstream, forward};

/// Request bytes waiting for the upstream beyond which the client's body is held.
const HOLD_AT: usize = 256 * 1024;
/// ... and below which it flows again.
const RELEASE_AT: usize = 64 * 1024;
/// Fields accepted in an upstream's response head.
const MAX_RESPONSE_FIELDS: usize = 128;

/// How the request body is re-framed upstream.
#[derive(Copy, Clone, Debug)]
enum Sending {
    /// No body, or a `Content-Length` one (sent as it comes).
    Plain,
    /// Chunked, the client's chunk boundaries kept; `open` bytes of the current chunk due.
    Chunked { open: u64 },
}

/// Where the response stands.
#[derive(Debug)]
enum Relay {
    /// Waiting for (the rest of) the upstream's response head.
    AwaitingHead,
    /// Relaying the body.
    Body(BodyRelay),
    /// Relayed whole.
    Done,
    /// Given up (answered with an error, or abandoned).
    Failed,
}

#[derive(Debug)]
enum BodyRelay {
    Length {
        remaining: u64,
    },
    Chunked(Box<ChunkedDecoder>),
    UntilClose,
    /// A gzip- or deflate-coded body (framed chunked or until close), decoded on the way.
    Decoded(Box<Decoding>),
}

/// A coded body being decoded: the coding's decoder, the chunked framing around it (none:
/// until close), and how many compressed bytes at the start of the buffered input belong to
/// data already unframed but not yet decoded (the client had no room for more).
#[derive(Debug)]
struct Decoding {
    decoder: decode::Decoder,
    chunked: Option<ChunkedDecoder>,
    pending: usize,
}

/// What the exchange waits on, for its timer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Wait {
    Connect,
    Send,
    Receive,
}

/// A proxied request in progress.
#[derive(Debug)]
pub struct ProxyExchange {
    upstream: Arc<Upstream>,
    /// The route's extra response headers.
    header_lines: Arc<HeaderLines>,
    /// `HEAD` or another method, as response framing needs it.
    method_for_framing: &'static str,
    /// Safe to send twice (RFC 9110 9.2.2).
    idempotent: bool,
    claim: Option<Claim>,
    /// Servers tried, a bit each.
    tried: u64,
    /// Attempts so far, a stale pooled connection's retry not counted (for
    /// `next_upstream_tries`).
    attempts: u32,
    /// A retry on a fresh connection after a pooled one turned out dead was used.
    stale_retry_used: bool,
    /// Open a new connection rather than take a pooled one (after a stale one).
    fresh_only: bool,
    conn: Option<OutboundId>,
    /// `conn` came from the pool (its first failure may be a close the server was entitled to).
    reused: bool,
    established: bool,
    /// The request bytes for the upstream; `out[sent..]` not yet written.
    out: Vec<u8>,
    sent: usize,
    /// `out` still holds the whole request from its first byte (a retry can resend it).
    replayable: bool,
    sending: Sending,
    /// The client's body has ended (or there was none).
    body_complete: bool,
    /// The upstream stopped taking the request after answering it early: the rest of the
    /// body is dropped.
    send_failed: bool,
    /// Where in `out` the `Host` line naming the chosen server goes, and how long the one
    /// there now is (`proxy_host = "upstream"`; rewritten when a retry changes server).
    host_line: Option<(usize, usize)>,
    /// Upstream bytes read and not yet relayed: `input[start..end]`.
    input: Vec<u8>,
    start: usize,
    end: usize,
    /// Some response byte has arrived on the current connection.
    received: bool,
    relay: Relay,
    /// The upstream may take another request on this connection afterwards.
    upstream_keep_alive: bool,
    /// The current wait and when it times out.
    timer: Option<(Wait, Instant)>,
    /// When the current attempt began (for the response-head latency).
    attempt_started: Instant,
}

impl ProxyExchange {
    pub(super) fn new(
        upstream: Arc<Upstream>,
        header_lines: Arc<HeaderLines>,
        method: &str,
        out: Vec<u8>,
        chunked: bool,
        host_at: Option<usize>,
    ) -> Self {
        ProxyExchange {
            upstream,
            header_lines,
            method_for_framing: if method == "HEAD" { "HEAD" } else { "GET" },
            idempotent: matches!(
                method,
                "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
            ),
            claim: None,
            tried: 0,
            attempts: 1,
            stale_retry_used: false,
            fresh_only: false,
            conn: None,
            reused: false,
            established: false,
            out,
            sent: 0,
            replayable: true,
            sending: if chunked {
                Sending::Chunked { open: 0 }
            } else {
                Sending::Plain
            },
            body_complete: false,
            send_failed: false,
            host_line: host_at.map(|at| (at, 0)),
            input: Vec::new(),
            start: 0,
            end: 0,
            received: false,
            relay: Relay::AwaitingHead,
            upstream_keep_alive: false,
            timer: None,
            attempt_started: Instant::now(),
        }
    }

    /// A piece of the client's body: queued for the upstream, re-framed as it came.
    pub fn on_body(&mut self, event: BodyEvent<'_>, response: &mut ResponseWriter<'_>) {
        if matches!(self.relay, Relay::Failed | Relay::Done) || self.send_failed {
            // Nobody to send it to any more; the server reads the rest and drops it.
            self.body_complete |= matches!(event, BodyEvent::End);
            return;
        }
        match (event, &mut self.sending) {
            (BodyEvent::ChunkStart { size }, Sending::Chunked { open }) => {
                encode::write_chunk_size(&mut self.out, size);
                *open = size;
            }
            (BodyEvent::Data(data), Sending::Chunked { open }) => {
                self.out.extend_from_slice(data);
                *open = open.saturating_sub(data.len() as u64);
                if *open == 0 {
                    self.out.extend_from_slice(encode::CRLF);
                }
            }
            (BodyEvent::Data(data), Sending::Plain) => self.out.extend_from_slice(data),
            (BodyEvent::Trailers(trailers), Sending::Chunked { .. }) => {
                self.out.extend_from_slice(encode::LAST_CHUNK);
                for trailer in trailers {
                    if forward::relays_trailer_field(trailer.name) {
                        let name = trailer.name.as_bytes();
                        encode::write_header(&mut self.out, name, trailer.value);
                    }
                }
                self.out.extend_from_slice(encode::CRLF);
                self.sending = Sending::Plain;
            }
            (BodyEvent::End, Sending::Chunked { .. }) => {
                self.out.extend_from_slice(b"0\r\n\r\n");
                self.sending = Sending::Plain;
                self.body_complete = true;
            }
            (BodyEvent::End, Sending::Plain) => self.body_complete = true,
            (BodyEvent::ChunkStart { .. } | BodyEvent::Trailers(_), Sending::Plain) => {}
        }
        if self.out.len() - self.sent >= HOLD_AT {
            response.hold_body();
        }
    }

    /// Room on the client's side, an upstream connection turned ready, or the timer fired:
    /// move everything along as far as it goes.
    pub fn on_writable(&mut self, response: &mut ResponseWriter<'_>) {
        if matches!(self.relay, Relay::Done | Relay::Failed) {
            return;
        }
        if response.client_gone() {
            // Nobody will read the rest (as nginx, which ends the upstream request when its
            // client closes): the upstream connection goes now, not at the read timeout.
            return self.give_up(response);
        }
        let now = Instant::now();
        if let Some((wait, at)) = self.timer {
            if now >= at {
                self.timer = None;
                return self.failed(response, Failure::Timeout(wait));
            }
        }
        let progress = match self.step(response) {
            Ok(progress) => progress,
            Err(failure) => return self.failed(response, failure),
        };
        if matches!(self.relay, Relay::Done | Relay::Failed) {
            response.wake_at(None);
            return;
        }
        self.arm_timer(response, now, progress);
    }

    /// One pass: connect if needed, send what is queued, receive what came. `Ok(true)` if
    /// any byte moved.
    fn step(&mut self, response: &mut ResponseWriter<'_>) -> Result<bool, Failure> {
        if self.conn.is_none() {
            self.open(response)?;
        }
        let io = outbound(response)?;
        let conn = self.conn.ok_or(Failure::NoServer(NoServer::AllTried))?;
        let mut progress = match self.send(io, conn) {
            Ok(progress) => progress,
            Err(Failure::Send(error)) => self.answered_early(response, conn, error)?,
            Err(failure) => return Err(failure),
        };
        if !self.established && (progress || self.received) {
            self.established = true;
        }
        if self.body_held_needlessly(response) {
            response.release_body();
        }
        progress |= self.receive(response, conn)?;
        if matches!(self.relay, Relay::Done) {
            self.complete(response);
        }
        Ok(progress)
    }

    /// Sending failed: the upstream may have answered before reading the whole request
    /// (a 413, a 401) and closed. Its answer is relayed rather than the send error, and the
    /// rest of the request is dropped (the connection is not reused); without one, the send
    /// error stands.
    fn answered_early(
        &mut self,
        response: &mut ResponseWriter<'_>,
        conn: OutboundId,
        error: io::Error,
    ) -> Result<bool, Failure> {
        let answered =
            self.receive(response, conn).is_ok() && !matches!(self.relay, Relay::AwaitingHead);
        if !answered {
            return Err(Failure::Send(error));
        }
        self.send_failed = true;
        self.replayable = false;
        self.out.clear();
        self.sent = 0;
        Ok(true)
    }

    /// Picks a server and gets a connection to it: a parked one, or a new one.
    fn open(&mut self, response: &mut ResponseWriter<'_>) -> Result<(), Failure> {
        let claim = self.upstream.balancer.pick(self.tried).map_err(|none| {
            if none == NoServer::AllBusy {
                self.upstream
                    .balancer
                    .counters
                    .unavailable
                    .fetch_add(1, Ordering::Relaxed);
            }
            Failure::NoServer(none)
        })?;
        self.attempt_started = Instant::now();
        let server = claim.server;
        self.tried |= 1 << server.min(63);
        self.claim = Some(claim);
        let key = self.upstream.pool_key(server);
        if let Some((at, len)) = self.host_line {
            // Nothing of `out` has been sent on this attempt: the head can still change.
            let line = self.upstream.balancer.server(server).host_line.as_bytes();
            self.out.splice(at..at + len, line.iter().copied());
            self.host_line = Some((at, line.len()));
        }
        let io = outbound(response)?;
        // A request that must not be sent twice only goes on a pooled connection checked
        // with the kernel; one that can be retried finds out by trying.
        let pooled = if self.fresh_only {
            None
        } else {
            io.checkout(key, !self.idempotent)
        };
        if let Some(conn) = pooled {
            self.upstream.balancer.server(server).counters.reused();
            self.conn = Some(conn);
            self.reused = true;
            self.established = true;
            return Ok(());
        }
        let address = &self.upstream.balancer.server(server).settings.address;
        let destination = match address {
            UpstreamAddress::Tcp(addr) => Destination::Tcp(*addr),
            UpstreamAddress::Unix(path) => Destination::Unix(path),
        };
        let conn = io.connect(destination, key).map_err(Failure::Connect)?;
        self.conn = Some(conn);
        self.reused = false;
        self.established = false;
        Ok(())
    }

    /// Writes queued request bytes while the upstream takes them.
    fn send(&mut self, io: &mut dyn Outbound, conn: OutboundId) -> Result<bool, Failure> {
        let mut progress = false;
        while self.sent < self.out.len() {
            match io.write(conn, &self.out[self.sent..]) {
                Ok(0) => return Err(Failure::Send(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.sent += n;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if !self.established && !self.reused => return Err(Failure::Connect(e)),
                Err(e) => return Err(Failure::Send(e)),
            }
        }
        if self.sent == self.out.len() && !(self.body_complete && self.replayable) {
            // Sent, and more body may follow: the whole request can no longer be replayed.
            if self.sent > 0 {
                self.replayable = false;
            }
            self.out.clear();
            self.sent = 0;
        }
        Ok(progress)
    }

    fn body_held_needlessly(&self, response: &ResponseWriter<'_>) -> bool {
        response.body_held() && self.out.len() - self.sent < RELEASE_AT
    }

    /// Tells the server which upstream server the current attempt went to and how long it
    /// has taken so far (called when the exchange ends, answered or failed).
    pub(super) fn note_upstream(&self, response: &mut ResponseWriter<'_>) {
        if let Some(claim) = &self.claim {
            response.set_upstream(UpstreamUsed {
                server: Arc::clone(&self.upstream.balancer.server(claim.server).label),
                time: self.attempt_started.elapsed(),
            });
        }
    }

    /// The response went out whole: the connection goes back to the pool if both sides of
    /// the exchange ended cleanly, else it is closed.
    fn complete(&mut self, response: &mut ResponseWriter<'_>) {
        self.note_upstream(response);
        let reusable = self.upstream_keep_alive
            && !self.send_failed
            && self.body_complete
            && self.sent == self.out.len()
            && self.start == self.end;
        let input = std::mem::take(&mut self.input);
        let out = std::mem::take(&mut self.out);
        self.sent = 0;
        if let (Some(conn), Some(io)) = (self.conn.take(), response.outbound()) {
            match (&self.claim, reusable) {
                (Some(claim), true) => io.park(
                    conn,
                    Parking {
                        key: self.upstream.pool_key(claim.server),
                        max_idle: self.upstream.settings.max_idle,
                        idle_timeout: self.upstream.settings.idle_timeout,
                    },
                ),
                _ => io.close(conn),
            }
            if !input.is_empty() {
                io.give_read_buffer(input);
            }
            if out.capacity() > 0 {
                io.give_write_buffer(out);
            }
        }
        self.claim = None;
        if response.body_held() {
            response.release_body();
        }
    }

    /// The client is gone: the upstream connection is closed (it may be mid-response, so
    /// never parked) and the response abandoned.
    fn give_up(&mut self, response: &mut ResponseWriter<'_>) {
        self.close_conn(response);
        self.relay = Relay::Failed;
        self.timer = None;
        response.wake_at(None);
        response.abandon();
    }

    /// Closes the current upstream connection (an attempt that ends without parking it) and
    /// releases its server.
    fn close_conn(&mut self, response: &mut ResponseWriter<'_>) {
        if let (Some(conn), Some(io)) = (self.conn.take(), response.outbound()) {
            io.close(conn);
        }
        self.claim = None;
    }

    /// Sets the timer for what the exchange now waits on.
    fn arm_timer(&mut self, response: &mut ResponseWriter<'_>, now: Instant, progress: bool) {
        let settings = &self.upstream.settings;
        let wait = if !self.established {
            Some(Wait::Connect)
        } else if self.sent < self.out.len() {
            Some(Wait::Send)
        } else if (matches!(self.relay, Relay::AwaitingHead) && self.body_complete)
            || (matches!(self.relay, Relay::Body(_)) && response.room() > 0)
        {
            Some(Wait::Receive)
        } else {
            // Waiting on the client (its body, or room for ours): the server times that.
            None
        };
        let timeout = |wait| match wait {
            Wait::Connect => settings.connect_timeout,
            Wait::Send => settings.write_timeout,
            Wait::Receive => settings.read_timeout,
        };
        self.timer = match (wait, self.timer) {
            (None, _) => None,
            // Same wait, no progress: the deadline stands.
            (Some(wait), Some((current, at))) if current == wait && !progress => Some((wait, at)),
            (Some(wait), _) => Some((wait, now + timeout(wait))),
        };
        response.wake_at(self.timer.map(|(_, at)| at));
    }
}

/// The outbound connections lent to the exchange: always there when it is served by a
/// connection (`Proxy::start` answers 502 itself when not).
fn outbound<'r, 'a>(
    response: &'r mut ResponseWriter<'a>,
) -> Result<&'r mut (dyn Outbound + 'a), Failure> {
    response
        .outbound()
        .ok_or_else(|| Failure::Connect(io::Error::other("no outbound connections here")))
}
