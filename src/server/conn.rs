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

use std::io::{self, Write};
use std::mem::MaybeUninit;
use std::net::Shutdown;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use crate::http1::chunked::{self, Chunk, ChunkedDecoder};
use crate::http1::head::{self, MAX_HEADERS_LIMIT};
use crate::http1::{BodyKind, Header, ParseError, encode, framing};
use crate::reactor::{Context, Next, ReadBuf, Readiness, Registry, Token};
use crate::service::{
    BodyEvent, BodyMode, Exchange, Handler, Request, ResponseContext, ResponseState,
    ResponseWriter, Start,
};

use super::worker::{Shared, WorkerTarget};

/// How long a closing connection keeps reading (and discarding) after shutting down its
/// write side, so unread input does not turn the close into a reset that could destroy the
/// response before the client reads it.
const LINGER: Duration = Duration::from_secs(2);

/// Header storage for trailers; the decoder's `max_trailers` limit keeps them within it.
const MAX_TRAILERS: usize = 64;

/// The interim response sent when a handler accepts a body the client is holding back.
const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

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

/// The request being served.
struct Active<E> {
    /// The handler's per-request state; `None` once it has nothing left to do.
    exchange: Option<E>,
    response: ResponseState,
    response_cx: ResponseContext,
    body_mode: BodyMode,
    body: BodyReader,
    /// Body bytes collected for [`BodyMode::Buffer`].
    buffered: Vec<u8>,
    /// Body bytes received so far (for limits).
    body_received: u64,
    /// Something changed since the handler was last offered room.
    poke: bool,
}

impl<E> Active<E> {
    fn empty() -> Self {
        Active {
            exchange: None,
            response: ResponseState::Done,
            response_cx: ResponseContext {
                version: crate::http1::Version::Http11,
                head_request: false,
                close: false,
                expect_pending: false,
            },
            body_mode: BodyMode::Ignore,
            body: BodyReader::Done,
            buffered: Vec::new(),
            body_received: 0,
            poke: false,
        }
    }
}

/// The request-body decoding state.
enum BodyReader {
    /// The body is complete (or there was none).
    Done,
    /// The body will not be read: the connection closes after the response.
    Abandoned,
    /// Content-Length framing with this many bytes to come.
    Length { remaining: u64 },
    /// Chunked framing.
    Chunked(ChunkedDecoder),
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
    stream: TcpStream,
    input: Option<ReadBuf>,
    output: Option<Vec<u8>>,
    /// Bytes at the front of `output` already written.
    written: usize,
    phase: Phase,
    /// The request being served, while `phase` is `Serving`; kept in place (not boxed)
    /// so that starting a request allocates nothing.
    active: Active<E>,
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
    /// When the current timed wait began (phase entry or last I/O progress).
    progress_at: Instant,
}

impl<E: Exchange> Conn<E> {
    pub(super) fn new(stream: TcpStream, now: Instant) -> Self {
        Conn {
            stream,
            input: None,
            output: None,
            written: 0,
            phase: Phase::Idle,
            active: Active::empty(),
            readable: false,
            writable: true,
            peer_closed: false,
            hangup_seen: false,
            requests: 0,
            progress_at: now,
        }
    }

    pub(super) fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        // Registered once for both directions, edge-triggered, and never re-registered: the
        // readiness flags above carry what an event said until the socket is drained.
        registry.register(
            &mut self.stream,
            token,
            mio::Interest::READABLE | mio::Interest::WRITABLE,
        )
    }

    pub(super) fn on_ready<H: Handler<Exchange = E>>(
        &mut self,
        readiness: Readiness,
        cx: &mut Context<'_, WorkerTarget<H>>,
    ) -> Next {
        self.readable |= readiness.readable || readiness.read_closed || readiness.error;
        self.writable |= readiness.writable || readiness.error;
        self.hangup_seen |= readiness.read_closed;
        self.drive(cx)
    }

    pub(super) fn on_timeout<H: Handler<Exchange = E>>(
        &mut self,
        cx: &mut Context<'_, WorkerTarget<H>>,
    ) -> Next {
        let now = cx.now();
        match &self.phase {
            Phase::Head { .. } => {
                self.fail_before_response(cx.shared, now, TimeoutStatus::REQUEST_TIMEOUT);
                self.drive(cx)
            }
            Phase::Serving
                if self.active.response == ResponseState::Head && !self.output_pending() =>
            {
                self.fail_before_response(cx.shared, now, TimeoutStatus::REQUEST_TIMEOUT);
                self.drive(cx)
            }
            _ => self.close(cx.shared),
        }
    }

    /// Runs the connection until it must wait for the socket or a timer.
    fn drive<H: Handler<Exchange = E>>(&mut self, cx: &mut Context<'_, WorkerTarget<H>>) -> Next {
        let now = cx.now();
        loop {
            match self.process(cx.shared, now) {
                Need::Again => {}
                Need::Room => match self.flush(now) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(_) => return self.close(cx.shared),
                },
                Need::Input => {
                    // The batch is over: send what it produced before waiting for more.
                    if self.flush_if_any(now).is_err() {
                        return self.close(cx.shared);
                    }
                    match self.fill(cx.shared, now) {
                        Fill::Got => {}
                        Fill::Wait => break,
                        Fill::Eof => {
                            // Nothing more will come: whatever waited for input cannot finish.
                            if matches!(self.phase, Phase::Lingering) || !self.output_pending() {
                                return self.close(cx.shared);
                            }
                            self.phase = Phase::Closing;
                        }
                        Fill::Failed => return self.close(cx.shared),
                    }
                }
                Need::Nothing => {
                    match self.flush_if_any(now) {
                        Ok(_) => {}
                        Err(_) => return self.close(cx.shared),
                    }
                    match self.phase {
                        Phase::Closing if !self.output_pending() => {
                            if let Some(next) = self.start_linger(cx.shared, now) {
                                return next;
                            }
                        }
                        _ => break,
                    }
                }
            }
        }
        self.release_idle_buffers(cx.shared);
        cx.set_deadline(Some(self.deadline(&cx.shared.limits)));
        Next::Keep
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

    /// Parses the next request head from the input and starts its exchange.
    fn parse_next<H: Handler<Exchange = E>>(
        &mut self,
        shared: &mut Shared<H>,
        now: Instant,
    ) -> Need {
        let Some(input) = self.input.as_mut().filter(|input| !input.is_empty()) else {
            return Need::Input;
        };
        if self
            .output
            .as_ref()
            .is_some_and(|out| out.len() >= shared.limits.output_high_water)
        {
            return Need::Room;
        }
        if let Phase::Idle = self.phase {
            self.phase = Phase::Head { started: now };
        }
        let mut storage = [const { MaybeUninit::<Header<'_>>::uninit() }; MAX_HEADERS_LIMIT];
        let parsed = match head::parse_head(input.unread(), &mut storage, &shared.limits.head) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return Need::Input,
            Err(error) => {
                self.fail_before_response(shared, now, ErrorStatus(error));
                return Need::Again;
            }
        };
        let info = match framing::analyze(parsed.version, parsed.headers) {
            Ok(info) => info,
            Err(error) => {
                self.fail_before_response(shared, now, ErrorStatus(error));
                return Need::Again;
            }
        };
        if let BodyKind::Length(len) = info.body {
            if len > shared.limits.max_body_bytes {
                self.fail_before_response(shared, now, TimeoutStatus::CONTENT_TOO_LARGE);
                return Need::Again;
            }
        }
        let request = Request {
            method: parsed.method,
            target: parsed.target,
            version: parsed.version,
            headers: parsed.headers,
            body: info.body,
        };
        let limits = &shared.limits;
        let last_allowed = limits.max_requests_per_connection != 0
            && self.requests + 1 >= limits.max_requests_per_connection;
        let mut response_cx = ResponseContext {
            version: parsed.version,
            head_request: request.is_head(),
            close: !info.keep_alive || last_allowed,
            expect_pending: info.expect_continue && info.body != BodyKind::None,
        };
        let high_water = limits.output_high_water;
        let chunked_limits = limits.chunked;
        let output = self.output.get_or_insert_with(|| shared.pool.take_write());
        let response_start = output.len();
        let mut response = ResponseState::Head;
        shared.refresh_date(now);
        let date_line = shared.date.header_line();
        let mut writer = ResponseWriter::new(
            output,
            &mut response,
            &mut response_cx,
            date_line,
            high_water,
        );
        let start = shared.handler.start(&request, &mut writer);
        let head_len = parsed.head_len;
        input.consume(head_len);
        let (exchange, body_mode) = match start {
            Start::Complete => (None, BodyMode::Ignore),
            Start::Continue { body, exchange } => (Some(exchange), body),
        };
        if body_mode != BodyMode::Ignore && response_cx.expect_pending {
            // The client holds its body back until told to send it; a head the handler
            // already wrote must follow the interim response, not precede it.
            output.splice(response_start..response_start, CONTINUE_100.iter().copied());
            response_cx.expect_pending = false;
        }
        let body = match info.body {
            BodyKind::None | BodyKind::Length(0) => BodyReader::Done,
            _ if response_cx.expect_pending => {
                // Declined: the client may never send the body, so we cannot find where the
                // next request starts. The response announces close (see ResponseWriter).
                response_cx.close = true;
                BodyReader::Abandoned
            }
            BodyKind::Length(remaining) => BodyReader::Length { remaining },
            BodyKind::Chunked => BodyReader::Chunked(ChunkedDecoder::new(chunked_limits)),
        };
        if let (BodyMode::Buffer { limit }, BodyKind::Length(len)) = (body_mode, info.body) {
            if len > limit && response == ResponseState::Head {
                self.fail_before_response(shared, now, TimeoutStatus::CONTENT_TOO_LARGE);
                return Need::Again;
            }
        }
        self.active = Active {
            exchange,
            response,
            response_cx,
            body_mode,
            body,
            buffered: Vec::new(),
            body_received: 0,
            poke: true,
        };
        if matches!(self.active.body, BodyReader::Done) {
            // No body to wait for: the handler hears its end at once.
            finish_body(&mut self.active, output, date_line, high_water);
        }
        self.phase = Phase::Serving;
        self.progress_at = now;
        Need::Again
    }

    /// Feeds the active exchange its body and output room, and ends it when both are done.
    fn serve<H: Handler<Exchange = E>>(&mut self, shared: &mut Shared<H>, now: Instant) -> Need {
        let active = &mut self.active;
        let high_water = shared.limits.output_high_water;
        let output = self.output.get_or_insert_with(|| shared.pool.take_write());
        shared.refresh_date(now);
        let date_line = shared.date.header_line();

        // 1. Body input, unless the output is full (back-pressure reaches the client).
        let mut need_input = false;
        let mut body_error = None;
        if !matches!(active.body, BodyReader::Done | BodyReader::Abandoned) {
            if output.len() >= high_water && active.exchange.is_some() {
                return Need::Room;
            }
            match self.input.as_mut().filter(|input| !input.is_empty()) {
                None => need_input = true,
                Some(input) => {
                    match feed_body(
                        active,
                        input,
                        output,
                        date_line,
                        high_water,
                        shared.limits.max_body_bytes,
                    ) {
                        Ok(()) => {}
                        Err(error) => body_error = Some(error),
                    }
                }
            }
        }
        if let Some(status) = body_error {
            if active.response == ResponseState::Head {
                self.fail_before_response(shared, now, status);
                return Need::Again;
            }
            self.abort();
            return Need::Nothing;
        }

        // 2. Output: offer the handler room when something changed.
        if let (Some(exchange), ResponseState::Head | ResponseState::Body(_)) =
            (&mut active.exchange, active.response)
        {
            if active.poke && output.len() < high_water {
                active.poke = false;
                let mut writer = ResponseWriter::new(
                    output,
                    &mut active.response,
                    &mut active.response_cx,
                    date_line,
                    high_water,
                );
                exchange.on_writable(&mut writer);
            }
        }

        // 3. Completion.
        match active.response {
            ResponseState::Broken(error) => {
                log::error!("handler broke the response framing: {error}; closing the connection");
                self.abort();
                return Need::Nothing;
            }
            ResponseState::Done => {
                active.exchange = None;
                let body_done = matches!(active.body, BodyReader::Done);
                if active.response_cx.close || matches!(active.body, BodyReader::Abandoned) {
                    self.requests += 1;
                    self.phase = Phase::Closing;
                    self.progress_at = now;
                    return Need::Nothing;
                }
                if body_done {
                    self.requests += 1;
                    self.phase = Phase::Idle;
                    self.progress_at = now;
                    return Need::Again;
                }
            }
            ResponseState::Head | ResponseState::Body(_) => {}
        }
        if need_input {
            Need::Input
        } else if output.len() >= high_water {
            Need::Room
        } else if active.poke {
            Need::Again
        } else if matches!(active.body, BodyReader::Done | BodyReader::Abandoned) {
            Need::Nothing
        } else {
            Need::Input
        }
    }

    /// Answers an error before any response head was written, then closes.
    fn fail_before_response<H: Handler<Exchange = E>>(
        &mut self,
        shared: &mut Shared<H>,
        now: Instant,
        error: impl ErrorAnswer,
    ) {
        let output = self.output.get_or_insert_with(|| shared.pool.take_write());
        let mut state = ResponseState::Head;
        let mut response_cx = ResponseContext {
            version: crate::http1::Version::Http11,
            head_request: false,
            close: true,
            expect_pending: false,
        };
        shared.refresh_date(now);
        let date_line = shared.date.header_line();
        let mut writer =
            ResponseWriter::new(output, &mut state, &mut response_cx, date_line, usize::MAX);
        let status = error.status();
        let reason = encode::reason_phrase(status);
        let detail = error.detail();
        let body_len = 4
            + reason.len()
            + if detail.is_empty() {
                0
            } else {
                2 + detail.len()
            }
            + 1;
        writer.head(
            status,
            &[("Content-Type", b"text/plain; charset=utf-8")],
            crate::service::Framing::Length(body_len as u64),
        );
        let mut code = itoa::Buffer::new();
        writer.write(code.format(status).as_bytes());
        writer.write(b" ");
        writer.write(reason.as_bytes());
        if !detail.is_empty() {
            writer.write(b": ");
            writer.write(detail.as_bytes());
        }
        writer.write(b"\n");
        writer.finish();
        if let Some(input) = &mut self.input {
            let n = input.unread().len();
            input.consume(n);
        }
        self.phase = Phase::Closing;
        self.progress_at = now;
    }

    /// Gives up on the current response: flush what is there, then close.
    fn abort(&mut self) {
        self.phase = Phase::Closing;
    }

    /// Reads once. A short read means the socket is drained (no second read just to see
    /// `WouldBlock`): with edge-triggered polling, new data raises a new event.
    fn fill<H>(&mut self, shared: &mut Shared<H>, now: Instant) -> Fill {
        if !self.readable || self.peer_closed {
            return if self.peer_closed {
                Fill::Eof
            } else {
                Fill::Wait
            };
        }
        let input = self.input.get_or_insert_with(|| shared.pool.take_read());
        let spare = input.spare();
        if spare == 0 {
            // A head that fills the buffer is rejected by the parser before this can happen;
            // a full buffer here means the parser could not use it yet.
            return Fill::Wait;
        }
        match input.read_from(&mut self.stream) {
            Ok(0) => {
                self.peer_closed = true;
                self.readable = false;
                Fill::Eof
            }
            Ok(n) => {
                if n < spare && !self.hangup_seen {
                    self.readable = false;
                }
                if matches!(self.phase, Phase::Serving) {
                    self.progress_at = now;
                }
                Fill::Got
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                self.readable = false;
                Fill::Wait
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => Fill::Got,
            Err(_) => Fill::Failed,
        }
    }

    fn start_linger<H>(&mut self, shared: &mut Shared<H>, now: Instant) -> Option<Next> {
        let unread = self.input.as_ref().is_some_and(|input| !input.is_empty());
        if self.peer_closed || (!unread && !self.readable) {
            // Nothing of the client's is left unread, so closing cannot turn into a reset.
            return Some(self.close(shared));
        }
        if self.stream.shutdown(Shutdown::Write).is_err() {
            return Some(self.close(shared));
        }
        self.phase = Phase::Lingering;
        self.progress_at = now;
        None
    }

    fn flush_if_any(&mut self, now: Instant) -> io::Result<bool> {
        if self.output_pending() {
            self.flush(now)
        } else {
            Ok(true)
        }
    }

    /// Writes pending output. `Ok(true)`: all written; `Ok(false)`: the socket is full.
    fn flush(&mut self, now: Instant) -> io::Result<bool> {
        let Some(output) = &mut self.output else {
            return Ok(true);
        };
        while self.written < output.len() {
            if !self.writable {
                return Ok(false);
            }
            match self.stream.write(&output[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.written += n;
                    self.progress_at = now;
                    self.active.poke = true;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    self.writable = false;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        output.clear();
        self.written = 0;
        Ok(true)
    }

    fn output_pending(&self) -> bool {
        self.output
            .as_ref()
            .is_some_and(|out| self.written < out.len())
    }

    /// Gives buffers with nothing in them back to the pool.
    fn release_idle_buffers<H>(&mut self, shared: &mut Shared<H>) {
        if self.input.as_ref().is_some_and(ReadBuf::is_empty) {
            if let Some(input) = self.input.take() {
                shared.pool.give_read(input);
            }
        }
        if !self.output_pending() {
            if let Some(output) = self.output.take() {
                shared.pool.give_write(output);
                self.written = 0;
            }
        }
    }

    /// When the current wait times out.
    fn deadline(&self, limits: &super::Limits) -> Instant {
        let timeouts = &limits.timeouts;
        match &self.phase {
            Phase::Idle => self.progress_at + timeouts.idle,
            Phase::Head { started } => *started + timeouts.head,
            Phase::Serving if self.output_pending() && !self.writable => {
                self.progress_at + timeouts.write
            }
            Phase::Serving => self.progress_at + timeouts.body,
            Phase::Closing => self.progress_at + timeouts.write,
            Phase::Lingering => self.progress_at + LINGER,
        }
    }

    /// Ends the connection, returning its buffers to the pool.
    fn close<H>(&mut self, shared: &mut Shared<H>) -> Next {
        if let Some(input) = self.input.take() {
            shared.pool.give_read(input);
        }
        if let Some(output) = self.output.take() {
            shared.pool.give_write(output);
        }
        shared.connections -= 1;
        Next::Remove
    }
}

enum Fill {
    Got,
    Wait,
    Eof,
    Failed,
}

/// Feeds buffered input to the body decoder and the exchange until the input is used up,
/// the body ends, or the output is over its mark.
fn feed_body<E: Exchange>(
    active: &mut Active<E>,
    input: &mut ReadBuf,
    output: &mut Vec<u8>,
    date_line: &[u8],
    high_water: usize,
    max_body: u64,
) -> Result<(), BodyError> {
    while !input.is_empty() && (output.len() < high_water || active.exchange.is_none()) {
        let unread = input.unread();
        let (consumed, event) = match &mut active.body {
            BodyReader::Done | BodyReader::Abandoned => return Ok(()),
            BodyReader::Length { remaining } => {
                let take = (*remaining).min(unread.len() as u64) as usize;
                *remaining -= take as u64;
                (take, Some(Chunk::Data(&unread[..take])))
            }
            BodyReader::Chunked(decoder) => decoder.decode(unread).map_err(BodyError::Parse)?,
        };
        // The trailer section ends the message as surely as `End` does.
        let ended = match &active.body {
            BodyReader::Length { remaining: 0 } => true,
            BodyReader::Chunked(decoder) => {
                decoder.is_done() || matches!(event, Some(Chunk::End | Chunk::Trailers))
            }
            _ => false,
        };
        if let Some(Chunk::Data(data)) = &event {
            active.body_received += data.len() as u64;
            if active.body_received > max_body {
                return Err(BodyError::TooLarge);
            }
        }
        deliver(active, event, output, date_line, high_water)?;
        input.consume(consumed);
        if ended {
            if let BodyReader::Chunked(decoder) = &active.body {
                if !decoder.trailer_block().is_empty()
                    && !matches!(active.body_mode, BodyMode::Ignore)
                {
                    deliver_trailers(active, output, date_line, high_water)?;
                }
            }
            active.body = BodyReader::Done;
            finish_body(active, output, date_line, high_water);
            return Ok(());
        }
    }
    Ok(())
}

/// Hands one decoded body event to the exchange as its body mode asks.
fn deliver<E: Exchange>(
    active: &mut Active<E>,
    event: Option<Chunk<'_>>,
    output: &mut Vec<u8>,
    date_line: &[u8],
    high_water: usize,
) -> Result<(), BodyError> {
    let event = match event {
        None | Some(Chunk::End) | Some(Chunk::Trailers) => return Ok(()),
        Some(Chunk::Start { size }) => BodyEvent::ChunkStart { size },
        Some(Chunk::Data(&[])) => return Ok(()),
        Some(Chunk::Data(data)) => BodyEvent::Data(data),
    };
    match active.body_mode {
        BodyMode::Ignore => Ok(()),
        BodyMode::Buffer { limit } => {
            if let BodyEvent::Data(data) = event {
                if (active.buffered.len() + data.len()) as u64 > limit {
                    return Err(BodyError::TooLarge);
                }
                active.buffered.extend_from_slice(data);
            }
            Ok(())
        }
        BodyMode::Stream => {
            if let Some(exchange) = &mut active.exchange {
                let mut writer = ResponseWriter::new(
                    output,
                    &mut active.response,
                    &mut active.response_cx,
                    date_line,
                    high_water,
                );
                exchange.on_body(event, &mut writer);
                active.poke = true;
            }
            Ok(())
        }
    }
}

/// Parses the trailer block kept by the decoder and hands it over, after the data (a
/// buffered body is delivered first, so the order stays data, trailers, end).
fn deliver_trailers<E: Exchange>(
    active: &mut Active<E>,
    output: &mut Vec<u8>,
    date_line: &[u8],
    high_water: usize,
) -> Result<(), BodyError> {
    deliver_buffered(active, output, date_line, high_water);
    let Active {
        body,
        exchange,
        response,
        response_cx,
        poke,
        ..
    } = active;
    let (BodyReader::Chunked(decoder), Some(exchange)) = (body, exchange) else {
        return Ok(());
    };
    // Trailers are rare, so initialising this small array is cheaper than it looks.
    let mut storage = [httparse::EMPTY_HEADER; MAX_TRAILERS];
    let trailers =
        chunked::parse_trailers(decoder.trailer_block(), &mut storage).map_err(BodyError::Parse)?;
    let mut writer = ResponseWriter::new(output, response, response_cx, date_line, high_water);
    exchange.on_body(BodyEvent::Trailers(trailers), &mut writer);
    *poke = true;
    Ok(())
}

/// Hands a buffered body over as one `Data` event; afterwards the buffer is empty, so it
/// is never delivered twice.
fn deliver_buffered<E: Exchange>(
    active: &mut Active<E>,
    output: &mut Vec<u8>,
    date_line: &[u8],
    high_water: usize,
) {
    let buffered = std::mem::take(&mut active.buffered);
    if let (Some(exchange), false) = (&mut active.exchange, buffered.is_empty()) {
        let mut writer = ResponseWriter::new(
            output,
            &mut active.response,
            &mut active.response_cx,
            date_line,
            high_water,
        );
        exchange.on_body(BodyEvent::Data(&buffered), &mut writer);
        active.poke = true;
    }
}

/// The body is complete: buffered bodies are delivered, then `End`.
fn finish_body<E: Exchange>(
    active: &mut Active<E>,
    output: &mut Vec<u8>,
    date_line: &[u8],
    high_water: usize,
) {
    if matches!(active.body_mode, BodyMode::Ignore) {
        return;
    }
    deliver_buffered(active, output, date_line, high_water);
    if let Some(exchange) = &mut active.exchange {
        let mut writer = ResponseWriter::new(
            output,
            &mut active.response,
            &mut active.response_cx,
            date_line,
            high_water,
        );
        exchange.on_body(BodyEvent::End, &mut writer);
        active.poke = true;
    }
}

/// Why reading a body failed.
#[derive(Copy, Clone, Debug)]
enum BodyError {
    Parse(ParseError),
    TooLarge,
}

/// An error that ends a connection with a status and a one-line text body.
trait ErrorAnswer {
    fn status(&self) -> u16;
    fn detail(&self) -> &'static str;
}

struct ErrorStatus(ParseError);

impl ErrorAnswer for ErrorStatus {
    fn status(&self) -> u16 {
        self.0.status()
    }
    fn detail(&self) -> &'static str {
        self.0.reason()
    }
}

impl ErrorAnswer for BodyError {
    fn status(&self) -> u16 {
        match self {
            BodyError::Parse(error) => error.status(),
            BodyError::TooLarge => 413,
        }
    }
    fn detail(&self) -> &'static str {
        match self {
            BodyError::Parse(error) => error.reason(),
            BodyError::TooLarge => "request body larger than the limit",
        }
    }
}

/// Statuses the connection itself answers with.
struct TimeoutStatus(u16, &'static str);

impl TimeoutStatus {
    const REQUEST_TIMEOUT: TimeoutStatus = TimeoutStatus(408, "request not received in time");
    const CONTENT_TOO_LARGE: TimeoutStatus =
        TimeoutStatus(413, "request body larger than the limit");
}

impl ErrorAnswer for TimeoutStatus {
    fn status(&self) -> u16 {
        self.0
    }
    fn detail(&self) -> &'static str {
        self.1
    }
}
