//! One client connection: the state machine that reads, parses, calls the handler, and
//! writes, with keep-alive, pipelining, back-pressure and timeouts.
//!
//! Flow per readable event: read once into a pooled buffer, then parse and serve every
//! complete request in it, appending each response to one output buffer; write that buffer
//! once when no complete request is left (one read and one write per pipelined batch).
//! Only one request is active at a time, and the next head is parsed only after the
//! previous body has been consumed and its response completed, so responses leave strictly
//! in order. Reading stops while the output is above its high-water mark.
//!
//! Buffers are taken from the worker's pool only while bytes are in flight: an idle
//! keep-alive connection holds neither. This module never logs per request and never
//! allocates per request, except for bodies a handler asked to have buffered.

use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::http1::head::{self, MAX_HEADERS_LIMIT};
use crate::http1::{BodyKind, Header, ParseError, framing};
use crate::log_rate::error_limited;
use crate::reactor::{Context, Next, ReadBuf, Readiness, Registry, Token};
use crate::service::{Exchange, Handler, ResponseError, ResponseState, WakeRef};

use super::access::Pending;
use super::exchange::{Active, BeginContext, LogStart, Sink};
use super::outbound::OutboundAccess;
use super::stats::CloseReason;
use super::stream::Stream;
use super::worker::{Shared, WorkerTarget};

mod ending;
mod info;
mod socket;
mod timing;

use ending::recycle;
use socket::Fill;

/// Request states each worker keeps for reuse (beyond these, finished ones are freed).
const ACTIVE_POOL: usize = 256;

/// How long a closing connection keeps reading (and discarding) after shutting down its
/// write side, so unread input does not turn the close into a reset that could destroy the
/// response before the client reads it.
const LINGER: Duration = Duration::from_secs(2);
/// Socket reads one connection may do per turn of the loop before the others get theirs
/// (16 full reads of the read buffer: far more than a pipelined batch needs, far less than
/// a fast upload could take).
const READS_PER_TURN: usize = 16;

/// Where the connection stands between events.
enum Phase {
    /// Waiting for the first byte of the next request.
    Idle,
    /// Part of a request head has arrived.
    Head { started: Instant },
    /// A request is being served (its state is `Conn::active`).
    Serving,
    /// Flushing the last output before closing.
    Closing,
    /// Write side shut down; discarding input until the peer closes or `LINGER` passes.
    Lingering,
}

/// What [`Conn::process`] needs next.
enum Need {
    /// It made progress; call again.
    Again,
    /// More input.
    Input,
    /// Output room (the buffer is over its mark).
    Room,
    /// Nothing until the timer or the handler acts.
    Nothing,
}

/// One client connection.
pub(super) struct Conn<E> {
    stream: Stream,
    /// The client's address (for the access log); `None` over a Unix socket.
    peer: Option<SocketAddr>,
    /// The access-log line of the request being served, when logging is on.
    log_line: Pending,
    input: Option<ReadBuf>,
    output: Option<Vec<u8>>,
    /// Bytes at the front of `output` already written.
    written: usize,
    phase: Phase,
    /// The request being served, while `phase` is `Serving`; kept in place (not boxed)
    /// so that starting a request allocates nothing.
    active: Option<Box<Active<E>>>,
    /// The socket may have unread bytes (edge-triggered: remember until `WouldBlock`).
    readable: bool,
    /// The socket may take more bytes.
    writable: bool,
    /// The peer has closed its sending side (a read returned 0).
    peer_closed: bool,
    /// The poller reported the peer's close: the next read after the data sees end of
    /// stream, so a short read must not be taken to mean "drained".
    hangup_seen: bool,
    /// Requests completed on this connection.
    requests: u64,
    /// TCP_CORK is on while a file body is being sent.
    corked: bool,
    /// The connection ends with an error answer: the client may still be sending.
    refused: bool,
    /// When the current timed wait began (phase entry or last I/O progress).
    progress_at: Instant,
    /// Its token in the worker's reactor (for exchange wakers).
    token: Token,
    /// When it was accepted.
    opened_at: Instant,
    /// Why it will close, for the metrics (`Peer` unless something else decides).
    close_reason: CloseReason,
    /// Requests completed since the last read (the pipeline depth of that read).
    batch: u64,
    /// The body was held up by the server at the last look: output blocked on the client,
    /// or the exchange holding it (see `track_body_stall`).
    body_stalled: bool,
    /// Outbound connections lent to the current request's exchange (closed when it ends).
    lent: u16,
}

impl<E: Exchange> Conn<E> {
    pub(super) fn new(stream: Stream, peer: Option<SocketAddr>, now: Instant) -> Self {
        Conn {
            stream,
            peer,
            log_line: Pending::default(),
            input: None,
            output: None,
            written: 0,
            phase: Phase::Idle,
            active: None,
            readable: false,
            writable: true,
            peer_closed: false,
            hangup_seen: false,
            requests: 0,
            corked: false,
            refused: false,
            progress_at: now,
            token: Token(0),
            opened_at: now,
            close_reason: CloseReason::Peer,
            batch: 0,
            body_stalled: false,
            lent: 0,
        }
    }

    pub(super) fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        // Registered once for both directions, edge-triggered, and never re-registered: the
        // readiness flags above carry what an event said until the socket is drained.
        self.token = token;
        registry.register(
            &mut self.stream,
            token,
            mio::Interest::READABLE | mio::Interest::WRITABLE,
        )
    }

    /// Just accepted, not yet registered: the request has usually arrived with the
    /// handshake, so read it now. A connection answered and closed here never costs an
    /// `epoll_ctl`; one that finds nothing yet is registered and waits for its event.
    pub(super) fn on_spawn<H: Handler<Exchange = E>>(
        &mut self,
        cx: &mut Context<'_, WorkerTarget<H>>,
    ) -> Next {
        self.token = cx.token();
        self.readable = true;
        self.drive(cx)
    }

    pub(super) fn on_ready<H: Handler<Exchange = E>>(
        &mut self,
        readiness: Readiness,
        cx: &mut Context<'_, WorkerTarget<H>>,
    ) -> Next {
        self.readable |= readiness.readable || readiness.read_closed || readiness.error;
        self.writable |= readiness.writable || readiness.error;
        self.hangup_seen |= readiness.read_closed;
        if (readiness.read_closed || readiness.error) && matches!(self.phase, Phase::Serving) {
            if let Some(next) = self.closed_while_serving(readiness, cx) {
                return next;
            }
        }
        self.drive(cx)
    }

    /// The client closed or reset the connection while its request is served. Serving reads
    /// only when it needs input and writes only when the handler has output, so without this
    /// a handler waiting on something else (an upstream slow to answer) would hold what it
    /// has until its own timeout. A reset closes the connection now (nothing more can reach
    /// the client); a close is told to the exchange if nothing was left unread
    /// (`client_gone`). Out of line: the common event never comes here.
    #[cold]
    #[inline(never)]
    fn closed_while_serving<H: Handler<Exchange = E>>(
        &mut self,
        readiness: Readiness,
        cx: &mut Context<'_, WorkerTarget<H>>,
    ) -> Option<Next> {
        cx.shared.timing.clock.start(cx.now(), false);
        if readiness.error || self.client_gone(cx.shared).is_err() {
            return Some(self.close_for(CloseReason::Error, cx.shared));
        }
        None
    }

    /// The worker is stopping: an idle connection reads what the client may already have
    /// sent (answering it with `Connection: close`) and closes if there was nothing; one
    /// serving a request closes after its response.
    pub(super) fn on_drain<H: Handler<Exchange = E>>(
        &mut self,
        cx: &mut Context<'_, WorkerTarget<H>>,
    ) -> Next {
        if !matches!(self.phase, Phase::Idle) {
            return Next::Keep;
        }
        // Read whatever the client already sent: `drive` answers it, or closes the
        // connection when there is nothing (see `Need::Input` there).
        self.readable = true;
        self.drive(cx)
    }

    /// Closes at once, whatever is in flight (immediate stop, or the drain deadline).
    pub(super) fn abort_now<H: Handler<Exchange = E>>(
        &mut self,
        cx: &mut Context<'_, WorkerTarget<H>>,
    ) -> Next {
        self.close_reason = CloseReason::Drain;
        self.close(cx.shared)
    }

    /// An exchange's waker fired (`request`: the request it was made for), or an outbound
    /// connection its exchange uses turned ready (`None`): offer the exchange room, if that
    /// request is still the one being served.
    pub(super) fn on_wake<H: Handler<Exchange = E>>(
        &mut self,
        request: Option<u64>,
        cx: &mut Context<'_, WorkerTarget<H>>,
    ) -> Next {
        if !matches!(self.phase, Phase::Serving) || request.is_some_and(|r| r != self.requests) {
            return Next::Keep;
        }
        if let Some(active) = &mut self.active {
            active.poke = true;
        }
        self.drive(cx)
    }

    /// Runs the connection until it must wait for the socket or a timer, then completes the
    /// requests it finished: their durations end at its last write (`server::stamps`).
    fn drive<H: Handler<Exchange = E>>(&mut self, cx: &mut Context<'_, WorkerTarget<H>>) -> Next {
        let now = cx.now();
        let precise = cx.shared.stats.is_some() || cx.shared.access_log.is_some();
        cx.shared.timing.clock.start(now, precise);
        // Once per call, not per request: every response written in this call carries it.
        cx.shared.refresh_date(now);
        let next = self.run(cx);
        if !cx.shared.timing.stamps.is_empty() {
            cx.shared.complete_stamps();
        }
        next
    }

    /// `drive`'s loop: reads, serves and writes until the connection must wait.
    #[inline(always)]
    fn run<H: Handler<Exchange = E>>(&mut self, cx: &mut Context<'_, WorkerTarget<H>>) -> Next {
        let mut reads = 0;
        let mut next = Next::Keep;
        loop {
            match self.process(cx.shared, cx.shared.timing.clock.now) {
                Need::Again => {}
                Need::Room => match self.flush(&mut cx.shared.timing.clock) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(_) => return self.close_for(CloseReason::Error, cx.shared),
                },
                Need::Input => {
                    // The batch is over: send what it produced before waiting for more.
                    if self.batch > 0 {
                        if let Some(stats) = &mut cx.shared.stats {
                            stats.answered_batch(self.batch);
                        }
                        self.batch = 0;
                    }
                    if self.flush_if_any(&mut cx.shared.timing.clock).is_err() {
                        return self.close_for(CloseReason::Error, cx.shared);
                    }
                    if reads == READS_PER_TURN {
                        // A client that sends as fast as we read would keep the loop here
                        // while other connections wait: let them have their turn first.
                        next = Next::Yield;
                        break;
                    }
                    match self.fill(cx.shared) {
                        Fill::Got => reads += 1,
                        Fill::Wait
                            if cx.shared.draining
                                && matches!(self.phase, Phase::Idle)
                                && !self.output_pending() =>
                        {
                            // Stopping, and nothing more was sent: this connection is done.
                            return self.close_for(CloseReason::Drain, cx.shared);
                        }
                        Fill::Wait => break,
                        Fill::Eof => {
                            // Nothing more will come: whatever waited for input cannot finish.
                            if matches!(self.phase, Phase::Lingering) || !self.output_pending() {
                                return self.close(cx.shared);
                            }
                            self.phase = Phase::Closing;
                        }
                        Fill::Failed => return self.close_for(CloseReason::Error, cx.shared),
                    }
                }
                Need::Nothing => {
                    let Ok(all_sent) = self.flush_if_any(&mut cx.shared.timing.clock) else {
                        return self.close(cx.shared);
                    };
                    match self.phase {
                        Phase::Closing if all_sent => {
                            let now = cx.shared.timing.clock.now;
                            if let Some(next) = self.start_linger(cx.shared, now) {
                                return next;
                            }
                        }
                        // The socket took everything, so a streaming handler can produce
                        // more now: no writable edge will come to say so.
                        Phase::Serving
                            if all_sent && self.active.as_ref().is_some_and(|a| a.poke) => {}
                        _ => break,
                    }
                }
            }
        }
        self.release_idle_buffers(cx.shared);
        self.track_body_stall(cx.shared.timing.clock.now);
        cx.set_deadline(Some(self.deadline(&cx.shared.limits)));
        next
    }

    /// Serves from buffered input as far as possible, without I/O.
    fn process<H: Handler<Exchange = E>>(&mut self, shared: &mut Shared<H>, now: Instant) -> Need {
        match &mut self.phase {
            Phase::Idle | Phase::Head { .. } => self.parse_next(shared, now),
            Phase::Serving => self.serve(shared, now),
            Phase::Closing => Need::Nothing,
            Phase::Lingering => {
                if let Some(input) = &mut self.input {
                    let n = input.unread().len();
                    input.consume(n);
                }
                Need::Input
            }
        }
    }

    /// Parses the next request head from the input and starts serving it.
    fn parse_next<H: Handler<Exchange = E>>(
        &mut self,
        shared: &mut Shared<H>,
        now: Instant,
    ) -> Need {
        let Some(input) = self.input.as_mut().filter(|input| !input.is_empty()) else {
            return Need::Input;
        };
        let limits = &shared.limits;
        if self
            .output
            .as_ref()
            .is_some_and(|out| out.len() >= limits.output_high_water)
        {
            return Need::Room;
        }
        // The head's arrival: the clock after the read that brought its first bytes (`now`
        // is that reading while this call has read; see `server::stamps`).
        let arrived = match self.phase {
            Phase::Head { started } => started,
            _ => {
                self.phase = Phase::Head { started: now };
                now
            }
        };
        let mut storage = [const { MaybeUninit::<Header<'_>>::uninit() }; MAX_HEADERS_LIMIT];
        let parsed = match head::parse_head(input.unread(), &mut storage, &limits.head) {
            Ok(Some(parsed)) => parsed,
            Ok(None) if input.is_full() => return self.outgrow_read_buffer(shared, now),
            Ok(None) => return Need::Input,
            Err(error) => return self.refuse_head(shared, now, error),
        };
        let info = match framing::analyze(parsed.version, parsed.headers) {
            Ok(info) => info,
            Err(error) => return self.fail(shared, now, error.into()),
        };
        // While stopping, the last request already received gets `Connection: close`;
        // requests pipelined behind it were sent before the stop and are answered first.
        let after_head = input.unread().len() - parsed.head_len;
        let more_received = match info.body {
            BodyKind::Length(len) => after_head as u64 > len,
            BodyKind::None => after_head > 0,
            BodyKind::Chunked => after_head > 0,
        };
        let last = (shared.draining && !more_received)
            || (limits.max_requests_per_connection != 0
                && self.requests + 1 >= limits.max_requests_per_connection);
        let mut slot = shared
            .actives
            .pop()
            .unwrap_or_else(|| Box::new(Active::empty()));
        let mut sink = Sink {
            output: self.output.get_or_insert_with(|| shared.pool.take_write()),
            date_line: shared.date.header_line(),
            high_water: limits.output_high_water,
            wake: Some(WakeRef {
                target: &shared.wake,
                token: self.token.0,
                request: self.requests,
            }),
            outbound: OutboundAccess {
                set: &mut shared.outbounds,
                lent: &mut self.lent,
                owner: self.token,
                pool: &mut shared.pool,
                now,
            },
        };
        let log = shared.access_log.as_ref().map(|log| LogStart {
            line: &mut self.log_line,
            format: log.format,
            peer: self.peer,
        });
        let begin = BeginContext {
            limits,
            last,
            path_scratch: &mut shared.path_scratch,
            log,
            stats: shared.stats.as_mut(),
            peer: self.peer,
            now,
            arrived,
        };
        let started = slot.begin(&*shared.handler, &parsed, info, begin, &mut sink);
        let head_len = parsed.head_len;
        input.consume(head_len);
        match started {
            // Answered at once with nothing left to read (a `respond` route, a small file):
            // finished in this step, without a pass through `serve`.
            Ok(()) if slot.is_finished() => self.finish(shared, slot, now),
            Ok(()) => {
                self.active = Some(slot);
                self.phase = Phase::Serving;
                self.progress_at = now;
                Need::Again
            }
            Err(answer) => {
                recycle(shared, slot);
                shared.outbounds.close_lent(self.token, &mut self.lent);
                self.fail(shared, now, answer)
            }
        }
    }

    /// Answers a head the codec refused, except a later HTTP/1 minor version, which is
    /// rewritten to HTTP/1.1 in the buffer and parsed again (RFC 9110 2.5).
    #[cold]
    fn refuse_head<H: Handler<Exchange = E>>(
        &mut self,
        shared: &mut Shared<H>,
        now: Instant,
        error: ParseError,
    ) -> Need {
        if error == ParseError::UnsupportedVersion
            && self
                .input
                .as_mut()
                .is_some_and(|input| head::downgrade_minor_version(input.unread_mut()))
        {
            return Need::Again;
        }
        self.fail(shared, now, error.into())
    }

    /// Feeds the request being served its body and output room, and ends it when both
    /// its body and its response are complete.
    fn serve<H: Handler<Exchange = E>>(&mut self, shared: &mut Shared<H>, now: Instant) -> Need {
        let mut sink = Sink {
            output: self.output.get_or_insert_with(|| shared.pool.take_write()),
            date_line: shared.date.header_line(),
            high_water: shared.limits.output_high_water,
            wake: Some(WakeRef {
                target: &shared.wake,
                token: self.token.0,
                request: self.requests,
            }),
            outbound: OutboundAccess {
                set: &mut shared.outbounds,
                lent: &mut self.lent,
                owner: self.token,
                pool: &mut shared.pool,
                now,
            },
        };
        let Some(active) = self.active.as_deref_mut() else {
            return Need::Nothing;
        };

        // 1. Body input, unless the output is full (back-pressure reaches the client) or the
        // exchange holds the body.
        let mut need_input = false;
        if let Err(error) = active.resume_body(&mut sink) {
            return self.refuse_body(shared, now, error.into());
        }
        if !active.body_finished() {
            if sink.output.len() >= sink.high_water && active.exchange.is_some() {
                return Need::Room;
            }
            match self.input.as_mut().filter(|input| !input.is_empty()) {
                None => need_input = true,
                Some(input) => {
                    if let Err(error) = active.feed(input, &mut sink) {
                        return self.refuse_body(shared, now, error.into());
                    }
                }
            }
        }

        // 2. Output: offer the handler room when something changed.
        let held = active.reply.body_held;
        active.offer_room(&mut sink);
        if held && !active.reply.body_held {
            // Released: feed what waited in the buffer now (no event will come for it).
            return Need::Again;
        }

        // 3. Completion.
        match active.reply.state {
            ResponseState::Broken(error) => {
                if error != ResponseError::Abandoned {
                    error_limited!(
                        "handler broke the response framing: {error}; closing the connection"
                    );
                }
                self.close_reason = CloseReason::Error;
                return self.abort(now);
            }
            // A file body still on its way holds the next request back (responses leave in
            // order, and its bytes come after what is buffered).
            ResponseState::Done if active.reply.file.is_some() => return Need::Room,
            ResponseState::Done if active.is_finished() => {
                return match self.active.take() {
                    Some(active) => self.finish(shared, active, now),
                    None => Need::Nothing,
                };
            }
            ResponseState::Done => active.exchange = None,
            ResponseState::Head | ResponseState::Body(_) => {}
        }
        if need_input {
            Need::Input
        } else if sink.output.len() >= sink.high_water {
            Need::Room
        } else if active.poke {
            Need::Again
        } else if active.body_finished() {
            Need::Nothing
        } else {
            Need::Input
        }
    }
}
