//! One load-generating connection as a target of `asycamore::reactor`: it connects, writes
//! a batch of requests (the pipeline depth, one write when the socket takes it), reads and
//! parses every response, and counts each outcome; then the next batch, until the thread
//! says stop. A connection that is closed or fails is replaced in place (same slot, same
//! buffers, a new socket) while the run goes on.
//!
//! Errors are counted once per occurrence; the requests a failure leaves unanswered are
//! not retried, except those left behind a `Connection: close` response, which go back to
//! the request budget. Nothing here allocates per request.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use asycamore::reactor::{Context, Interest, Next, Readiness, Registry, Target, Token};
use mio::net::TcpStream;

use crate::plan::Plan;
use crate::reader::{AtEof, Fill, Reader, Step};
use crate::stats::{ErrorKind, Stats};
use crate::verify::{Verdict, Verifier};
use crate::writer::{Writer, Wrote};

/// What every connection of one thread shares.
pub struct Shared {
    /// The thread's counters.
    pub stats: Stats,
    /// Where to connect.
    pub addr: SocketAddr,
    /// Connect and response timeout.
    pub timeout: Duration,
    /// Requests still to send (`--requests`), or `None` while the duration runs.
    pub budget: Option<u64>,
    /// Requests taken from the budget (reserved by a connecting slot, being written, or
    /// awaiting their response) and not yet answered or failed.
    pub in_flight: u64,
    /// Connections still in the loop.
    pub live: usize,
    /// `--hold-idle`: the gate every connection reports to.
    pub hold: Option<Arc<HoldGate>>,
}

impl Shared {
    /// Takes up to `want` requests from the budget; they are in flight until resolved.
    pub fn take(&mut self, want: u32) -> u32 {
        let count = match &mut self.budget {
            None => want,
            Some(left) => {
                let k = (*left).min(u64::from(want));
                *left -= k;
                k as u32
            }
        };
        self.in_flight += u64::from(count);
        count
    }

    /// Returns requests taken but never sent, or sent but never answered, to the budget.
    pub fn give_back(&mut self, count: u32) {
        if let Some(left) = &mut self.budget {
            *left += u64::from(count);
        }
        self.in_flight -= u64::from(count);
    }

    /// The requests one batch of `plan` takes.
    pub fn batch_size(&self, plan: &Plan) -> u32 {
        if self.hold.is_some() {
            1
        } else {
            plan.pipeline
        }
    }

    /// Whether the run has no more requests to send.
    pub fn exhausted(&self) -> bool {
        self.budget == Some(0)
    }
}

/// `--hold-idle`: counts connections as they settle (held, or failed) across threads and
/// announces on stderr once all have.
pub struct HoldGate {
    target: usize,
    settled: AtomicUsize,
    held: AtomicUsize,
}

impl HoldGate {
    /// A gate for `target` connections.
    pub fn new(target: usize) -> HoldGate {
        HoldGate {
            target,
            settled: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
        }
    }

    pub fn settle(&self, held: bool) {
        if held {
            self.held.fetch_add(1, Ordering::SeqCst);
        }
        if self.settled.fetch_add(1, Ordering::SeqCst) + 1 == self.target {
            eprintln!("holding {} idle connections", self.held());
        }
    }

    fn lost(&self) {
        self.held.fetch_sub(1, Ordering::SeqCst);
    }

    /// Connections held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// The TCP handshake is in progress.
    Connecting,
    /// Requests are being written or answered.
    Active,
    /// The server said `Connection: close`: wait for its FIN, then reconnect.
    Closing,
    /// `--hold-idle`: answered once, now idle until the run ends.
    Holding,
}

/// One connection slot.
pub struct Conn {
    plan: Arc<Plan>,
    stream: Option<TcpStream>,
    phase: Phase,
    /// The socket may take more bytes (edge-triggered: false only after `WouldBlock`).
    writable: bool,
    writer: Writer,
    reader: Reader,
    verifier: Option<Verifier>,
    next_seq: u64,
    batch_first: u64,
    batch_len: u32,
    answered: u32,
    /// Requests taken from the budget for the next batch before connecting, so a slot
    /// connects only when it has something to send.
    reserved: u32,
    sent_at: Instant,
}

impl Conn {
    /// Connection slot `id`, connecting to `addr` (the handshake completes in the loop)
    /// to send the `reserved` requests the caller took from the budget first.
    ///
    /// # Errors
    ///
    /// The error of `connect`, for the caller to count (and give the requests back).
    pub fn open(plan: &Arc<Plan>, id: u32, addr: SocketAddr, reserved: u32) -> io::Result<Conn> {
        Ok(Conn {
            plan: Arc::clone(plan),
            stream: Some(TcpStream::connect(addr)?),
            phase: Phase::Connecting,
            writable: false,
            writer: Writer::new(plan, id),
            reader: Reader::new(),
            verifier: plan
                .expect
                .as_ref()
                .map(|e| Verifier::new(Arc::clone(e), id)),
            next_seq: 0,
            batch_first: 0,
            batch_len: 0,
            answered: 0,
            reserved,
            sent_at: Instant::now(),
        })
    }

    fn outstanding(&self) -> u32 {
        self.batch_len - self.answered
    }

    /// Whether the handshake is done (`Ok(false)`: not yet).
    fn connected(&self) -> io::Result<bool> {
        let Some(stream) = &self.stream else {
            return Ok(false);
        };
        if let Some(err) = stream.take_error()? {
            return Err(err);
        }
        match stream.peer_addr() {
            Ok(_) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(err) => Err(err),
        }
    }

    fn on_connected(&mut self, cx: &mut Context<'_, Self>) -> Next {
        cx.shared.stats.connections_opened += 1;
        if let Some(stream) = &self.stream {
            let _ = stream.set_nodelay(true);
        }
        self.phase = Phase::Active;
        self.writable = true;
        self.start_batch(cx)
    }

    /// Sends the next batch, or leaves the loop when there is none.
    fn start_batch(&mut self, cx: &mut Context<'_, Self>) -> Next {
        let count = match std::mem::take(&mut self.reserved) {
            0 => cx.shared.take(cx.shared.batch_size(&self.plan)),
            reserved => reserved,
        };
        if count == 0 {
            return self.finish(cx);
        }
        self.writer.start(self.next_seq, count);
        self.batch_first = self.next_seq;
        self.batch_len = count;
        self.answered = 0;
        self.next_seq += u64::from(count);
        self.sent_at = cx.now();
        cx.set_deadline(Some(cx.now() + cx.shared.timeout));
        Next::Keep
    }

    /// Writes what the socket takes and reads what it has, until both wait.
    /// `read` says whether to read; `to_eof` whether the peer's FIN (or an error) was
    /// reported, which brings no further event, so reading goes on until it shows.
    fn drive(&mut self, mut read: bool, to_eof: bool, cx: &mut Context<'_, Self>) -> Next {
        loop {
            let Some(stream) = self.stream.as_mut() else {
                return Next::Keep;
            };
            if self.writable && self.writer.pending() {
                match self.writer.write_to(stream) {
                    Ok(Wrote::Done) => {}
                    Ok(Wrote::Blocked) => self.writable = false,
                    Err(_) => return self.fail(ErrorKind::Reset, cx),
                }
            }
            if !read {
                return Next::Keep;
            }
            match self.reader.fill(stream) {
                Ok(Fill::Got { n, drained }) => {
                    cx.shared.stats.response_bytes += n as u64;
                    if let Some(next) = self.consume(cx) {
                        return next;
                    }
                    // A short read drained the socket; new data will bring a new event.
                    read = !drained || to_eof;
                }
                Ok(Fill::Wait) => read = false,
                Ok(Fill::Eof) => return self.on_eof(cx),
                Err(_) => return self.fail(ErrorKind::Reset, cx),
            }
        }
    }

    /// Steps every complete response out of the buffer. `Some` when the slot is done with
    /// its current socket.
    fn consume(&mut self, cx: &mut Context<'_, Self>) -> Option<Next> {
        loop {
            match self.phase {
                Phase::Active if self.outstanding() > 0 => {}
                // After `Connection: close` the rest is of no interest.
                Phase::Closing => {
                    self.reader.reset();
                    return None;
                }
                _ if self.reader.has_buffered() => {
                    // Bytes nobody asked for.
                    return Some(self.fail(ErrorKind::Protocol, cx));
                }
                _ => return None,
            }
            let verifier = &mut self.verifier;
            let step = self.reader.step(&self.plan.method, &mut |data: &[u8]| {
                if let Some(verifier) = verifier.as_mut() {
                    verifier.feed(data);
                }
            });
            match step {
                Step::More => return None,
                Step::Interim => cx.shared.stats.status(100),
                Step::Invalid => return Some(self.fail(ErrorKind::Protocol, cx)),
                Step::Response { status, keep_alive } => {
                    if let Some(next) = self.complete(status, keep_alive, cx) {
                        return Some(next);
                    }
                }
            }
        }
    }

    /// Counts a complete response and decides what follows it.
    fn complete(
        &mut self,
        status: u16,
        keep_alive: bool,
        cx: &mut Context<'_, Self>,
    ) -> Option<Next> {
        let now = cx.now();
        let timeout = cx.shared.timeout;
        let shared = &mut *cx.shared;
        shared.stats.requests += 1;
        shared.stats.status(status);
        shared
            .stats
            .latency(now.saturating_duration_since(self.sent_at));
        shared.stats.request_body_bytes += self.plan.body_len;
        shared.in_flight -= 1;
        let seq = self.batch_first + u64::from(self.answered);
        self.answered += 1;
        if let Some(verifier) = &mut self.verifier {
            match verifier.finish(seq, (self.batch_first, self.batch_len)) {
                Verdict::Match => {}
                Verdict::OutOfOrder => shared.stats.error(ErrorKind::OutOfOrder),
                Verdict::Mismatch => shared.stats.error(ErrorKind::BodyMismatch),
            }
        }
        if let Some(gate) = &shared.hold {
            gate.settle(true);
            self.phase = Phase::Holding;
            cx.set_deadline(None);
            return None;
        }
        if !keep_alive || self.plan.connection_close {
            // Requests behind a closing response were never answered: send them again.
            shared.give_back(self.outstanding());
            self.answered = self.batch_len;
            self.writer.cancel();
            if keep_alive {
                return Some(self.reconnect(cx));
            }
            self.phase = Phase::Closing;
            cx.set_deadline(Some(now + timeout));
            return None;
        }
        if self.outstanding() > 0 {
            cx.set_deadline(Some(now + timeout));
            return None;
        }
        match self.start_batch(cx) {
            Next::Keep => None,
            next @ (Next::Yield | Next::Remove) => Some(next),
        }
    }

    fn on_eof(&mut self, cx: &mut Context<'_, Self>) -> Next {
        match self.phase {
            Phase::Connecting => self.fail(ErrorKind::Reset, cx),
            Phase::Closing => self.reconnect(cx),
            Phase::Holding => {
                if let Some(gate) = &cx.shared.hold {
                    gate.lost();
                }
                self.finish(cx)
            }
            Phase::Active => match self.reader.at_eof() {
                AtEof::Complete { status } => {
                    // A close-delimited response is complete; the connection is spent.
                    match self.complete(status, false, cx) {
                        Some(next) => next,
                        None => self.reconnect(cx),
                    }
                }
                AtEof::Short => self.fail(ErrorKind::ShortResponse, cx),
                AtEof::Boundary if self.outstanding() > 0 => {
                    self.fail(ErrorKind::UnexpectedClose, cx)
                }
                AtEof::Boundary => self.reconnect(cx),
            },
        }
    }

    /// Counts `kind`, gives up on the requests in flight, and replaces the socket.
    fn fail(&mut self, kind: ErrorKind, cx: &mut Context<'_, Self>) -> Next {
        cx.shared.stats.error(kind);
        cx.shared.in_flight -= u64::from(self.outstanding());
        self.answered = self.batch_len;
        if let Some(gate) = &cx.shared.hold {
            match self.phase {
                Phase::Holding => gate.lost(),
                _ => gate.settle(false),
            }
        }
        self.reconnect(cx)
    }

    /// Closes the socket and opens a new one in the same slot, unless the run is over for
    /// this slot.
    fn reconnect(&mut self, cx: &mut Context<'_, Self>) -> Next {
        self.stream = None;
        self.reader.reset();
        self.writer.cancel();
        if let Some(verifier) = &mut self.verifier {
            verifier.reset();
        }
        self.writable = false;
        if cx.shared.hold.is_some() {
            return self.finish(cx);
        }
        self.reserved = cx.shared.take(cx.shared.batch_size(&self.plan));
        if self.reserved == 0 {
            return self.finish(cx);
        }
        let stream = TcpStream::connect(cx.shared.addr).and_then(|mut stream| {
            cx.registry()
                .register(
                    &mut stream,
                    cx.token(),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .map(|()| stream)
        });
        match stream {
            Ok(stream) => {
                self.stream = Some(stream);
                self.phase = Phase::Connecting;
                cx.set_deadline(Some(cx.now() + cx.shared.timeout));
                Next::Keep
            }
            Err(_) => {
                cx.shared.stats.error(ErrorKind::Connect);
                self.finish(cx)
            }
        }
    }

    fn connect_failed(&mut self, cx: &mut Context<'_, Self>) -> Next {
        cx.shared.stats.error(ErrorKind::Connect);
        if let Some(gate) = &cx.shared.hold {
            gate.settle(false);
        }
        self.finish(cx)
    }

    /// Leaves the loop for good, giving back what it had reserved.
    fn finish(&mut self, cx: &mut Context<'_, Self>) -> Next {
        cx.shared.give_back(std::mem::take(&mut self.reserved));
        self.stream = None;
        cx.shared.live -= 1;
        Next::Remove
    }
}

impl Target for Conn {
    type Shared = Shared;

    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        match &mut self.stream {
            Some(stream) => {
                registry.register(stream, token, Interest::READABLE | Interest::WRITABLE)
            }
            None => Ok(()),
        }
    }

    fn on_ready(&mut self, readiness: Readiness, cx: &mut Context<'_, Self>) -> Next {
        if self.phase == Phase::Connecting {
            match self.connected() {
                Ok(true) => {
                    if self.on_connected(cx) == Next::Remove {
                        return Next::Remove;
                    }
                }
                Ok(false) => return Next::Keep,
                Err(_) => return self.connect_failed(cx),
            }
        }
        if readiness.writable {
            self.writable = true;
        }
        let to_eof = readiness.read_closed || readiness.error;
        self.drive(readiness.readable || to_eof, to_eof, cx)
    }

    fn on_timeout(&mut self, cx: &mut Context<'_, Self>) -> Next {
        match self.phase {
            Phase::Connecting => self.connect_failed(cx),
            Phase::Active if self.outstanding() > 0 => self.fail(ErrorKind::Timeout, cx),
            Phase::Closing => self.reconnect(cx),
            Phase::Active | Phase::Holding => Next::Keep,
        }
    }
}
