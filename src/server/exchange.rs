//! The request being served: its start (head to handler), its body (decoded and delivered
//! as the handler's [`BodyMode`] asks), and the handler's response state.
//!
//! This is the request half of a connection; `conn` owns the socket, the buffers and the
//! phases, and calls in here with the bytes it has. Nothing here does I/O, and starting a
//! request allocates nothing (the state lives inline in the connection).

use crate::http1::chunked::{self, Chunk, ChunkedDecoder};
use crate::http1::framing::MessageInfo;
use crate::http1::head::ParsedHead;
use crate::http1::target;
use crate::http1::{BodyKind, ParseError, Version};
use crate::reactor::ReadBuf;
use crate::service::{
    BodyEvent, BodyMode, Exchange, Handler, Reply, Request, ResponseContext, ResponseState,
    ResponseWriter, Start, WakeRef,
};

use std::time::{Duration, Instant};

use super::Limits;
use super::access::{AccessFormat, Pending, Started};
use super::answer::Answer;
use super::outbound::OutboundAccess;
use super::stats::{MethodLabel, WorkerStats};

/// Header storage for trailers; the decoder's `max_trailers` limit keeps them within it.
const MAX_TRAILERS: usize = 64;

/// The interim response sent when a handler accepts a body the client is holding back.
const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Where response bytes go during one step: the connection's output, the current `Date`
/// line, and the back-pressure mark.
pub(super) struct Sink<'a> {
    pub(super) output: &'a mut Vec<u8>,
    pub(super) date_line: &'a [u8],
    pub(super) high_water: usize,
    /// Lets the handler wake its exchange from another thread.
    pub(super) wake: Option<WakeRef<'a>>,
    /// Lends the exchange connections to other servers.
    pub(super) outbound: OutboundAccess<'a>,
}

/// What starting a request needs besides the head and the output.
pub(super) struct BeginContext<'a> {
    pub(super) limits: &'a Limits,
    /// The connection closes after this response.
    pub(super) last: bool,
    pub(super) path_scratch: &'a mut String,
    pub(super) log: Option<LogStart<'a>>,
    /// The worker's counters, when metrics are on.
    pub(super) stats: Option<&'a mut WorkerStats>,
    /// The client's address (`None` over a Unix-domain socket).
    pub(super) peer: Option<std::net::SocketAddr>,
    pub(super) now: Instant,
    /// When the head began to arrive (the clock after the read that brought its first bytes).
    pub(super) arrived: Instant,
}

/// What the access log needs to start a request's line.
pub(super) struct LogStart<'a> {
    pub(super) line: &'a mut Pending,
    pub(super) format: AccessFormat,
    /// `None` over a Unix socket (logged as `-`).
    pub(super) peer: Option<std::net::SocketAddr>,
}

/// A writer for `reply` into `sink`.
fn writer<'a>(reply: &'a mut Reply, sink: &'a mut Sink<'_>) -> ResponseWriter<'a> {
    ResponseWriter::new(sink.output, reply, sink.date_line, sink.high_water)
        .with_wake(sink.wake)
        .with_outbound(Some(&mut sink.outbound))
}

/// The request-body decoding state.
pub(super) enum BodyReader {
    /// The body is complete (or there was none).
    Done,
    /// The body will not be read: the connection closes after the response.
    Abandoned,
    /// Content-Length framing with this many bytes to come.
    Length { remaining: u64 },
    /// Chunked framing.
    Chunked(ChunkedDecoder),
}

/// Why reading a body failed.
#[derive(Copy, Clone, Debug)]
pub(super) enum BodyError {
    Parse(ParseError),
    TooLarge,
}

impl From<BodyError> for Answer {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::Parse(error) => Answer::from(error),
            BodyError::TooLarge => Answer::CONTENT_TOO_LARGE,
        }
    }
}

/// The request being served.
pub(super) struct Active<E> {
    /// The handler's per-request state; `None` once it has nothing left to do.
    pub(super) exchange: Option<E>,
    pub(super) reply: Reply,
    body_mode: BodyMode,
    pub(super) body: BodyReader,
    /// Body bytes collected for [`BodyMode::Buffer`].
    buffered: Vec<u8>,
    /// Body bytes received so far (for limits).
    body_received: u64,
    /// Something changed since the handler was last offered room.
    pub(super) poke: bool,
    /// Where this response begins in the output while none of it has been sent: until
    /// then an error can still replace it with a proper error response.
    pub(super) unsent_from: Option<usize>,
    /// For the metrics: the route's counters, the method, when the request started, and
    /// the chunks of its body so far.
    pub(super) route_stats: Option<usize>,
    pub(super) method: MethodLabel,
    pub(super) started: Instant,
    pub(super) chunks: u64,
    /// The minimum body rate is measured from here, with `body_received` as it was then
    /// (restarted while the server, not the client, holds the body up).
    rate_from: Instant,
    rate_base: u64,
}

impl<E: Exchange> Active<E> {
    /// The state of a connection serving nothing.
    pub(super) fn empty() -> Self {
        Active {
            exchange: None,
            reply: Reply {
                state: ResponseState::Done,
                ..Reply::new(
                    ResponseContext {
                        version: Version::Http11,
                        head_request: false,
                        close: false,
                        expect_pending: false,
                    },
                    0,
                )
            },
            body_mode: BodyMode::Ignore,
            body: BodyReader::Done,
            buffered: Vec::new(),
            body_received: 0,
            poke: false,
            unsent_from: None,
            route_stats: None,
            method: MethodLabel::Other,
            started: Instant::now(),
            chunks: 0,
            rate_from: Instant::now(),
            rate_base: 0,
        }
    }

    /// Request body bytes received so far.
    pub(super) fn body_received(&self) -> u64 {
        self.body_received
    }

    /// Starts serving a parsed request in this (recycled) slot: asks the handler, sends
    /// `100 Continue` if it wants a body the client holds back, and prepares the body
    /// reader. `last` says the connection closes after this response. An `Err` is answered
    /// instead (the caller recycles the slot; nothing of the handler's is kept).
    ///
    /// In place rather than returning a new value: the state is a few hundred bytes, and
    /// moving it twice per request showed up as two `memcpy` calls in profiles.
    pub(super) fn begin<H: Handler<Exchange = E>>(
        &mut self,
        handler: &H,
        head: &ParsedHead<'_, '_>,
        info: MessageInfo,
        cx: BeginContext<'_>,
        sink: &mut Sink<'_>,
    ) -> Result<(), Answer> {
        let BeginContext {
            limits,
            last,
            path_scratch,
            log,
            stats,
            peer,
            now,
            arrived,
        } = cx;
        if let BodyKind::Length(len) = info.body {
            if len > limits.max_body_bytes {
                return Err(Answer::CONTENT_TOO_LARGE);
            }
        }
        let path = target::routing_path(head.target, path_scratch)?;
        if !path.starts_with('/') {
            target::check_form(head.method, path)?;
        }
        let request = Request {
            method: head.method,
            target: head.target,
            path,
            version: head.version,
            headers: head.headers,
            body: info.body,
            peer,
        };
        if let Some(log) = log {
            let header = |name| request.header(name).unwrap_or_default();
            let started = Started {
                peer: log.peer,
                method: request.method,
                target: request.target,
                version: match request.version {
                    Version::Http10 => "HTTP/1.0",
                    Version::Http11 => "HTTP/1.1",
                },
                referer: header("referer"),
                user_agent: header("user-agent"),
                route: handler.route_name(&request),
                host: request.host().unwrap_or_default(),
            };
            log.line
                .begin(log.format, std::time::SystemTime::now(), &started);
        }
        self.reply = Reply::new(
            ResponseContext {
                version: head.version,
                head_request: request.is_head(),
                close: !info.keep_alive || last,
                expect_pending: info.expect_continue && info.body != BodyKind::None,
            },
            limits.max_body_bytes,
        );
        let response_start = sink.output.len();
        let start = handler.start(&request, &mut writer(&mut self.reply, sink));
        // Counted by the route the handler noted, resolved to its counters through a
        // per-table cache: no second route lookup and no hashing per request.
        let route_stats =
            stats.map(|stats| stats.route_at(self.reply.route, |at| handler.route_name_at(at)));
        // Stored arm by arm: an answer complete at once writes only `None`, instead of
        // moving a whole `Option<E>` (mostly bytes the handler never wrote) through the stack.
        let body_mode = match start {
            Start::Complete => {
                self.exchange = None;
                BodyMode::Ignore
            }
            Start::Continue { body, exchange } => {
                self.exchange = Some(exchange);
                body
            }
        };
        if let BodyMode::Buffer { limit } = body_mode {
            self.reply.body_limit = self.reply.body_limit.min(limit);
        }
        if let BodyKind::Length(len) = info.body {
            if len > self.reply.body_limit {
                // Known too large before a byte of it arrives: whatever the handler wrote
                // gives way to the 413 (its exchange, and any file it opened, are dropped).
                sink.output.truncate(response_start);
                return Err(Answer::CONTENT_TOO_LARGE);
            }
        }
        if body_mode != BodyMode::Ignore && self.reply.cx.expect_pending {
            // The client holds its body back until told to send it; a head the handler
            // already wrote must follow the interim response, not precede it.
            sink.output
                .splice(response_start..response_start, CONTINUE_100.iter().copied());
            self.reply.cx.expect_pending = false;
        }
        let body = match info.body {
            BodyKind::None | BodyKind::Length(0) => BodyReader::Done,
            _ if self.reply.cx.expect_pending => {
                // Declined: the client may never send the body, so we cannot find where the
                // next request starts. The response announces close (see ResponseWriter).
                self.reply.cx.close = true;
                BodyReader::Abandoned
            }
            BodyKind::Length(remaining) => BodyReader::Length { remaining },
            BodyKind::Chunked => BodyReader::Chunked(ChunkedDecoder::new(limits.chunked)),
        };
        self.body_mode = body_mode;
        self.body = body;
        self.buffered = Vec::new();
        self.body_received = 0;
        self.poke = true;
        self.unsent_from = Some(response_start);
        self.route_stats = route_stats;
        self.method = MethodLabel::of(head.method);
        self.started = arrived;
        self.chunks = 0;
        self.rate_from = now;
        self.rate_base = 0;
        if matches!(self.body, BodyReader::Done) {
            // No body to wait for: the handler hears its end at once.
            self.finish_body(sink);
        }
        Ok(())
    }

    /// When a body still arriving falls below `rate` bytes per second: `grace` after the
    /// measurement began, plus `1 / rate` seconds for every byte received since. `None`
    /// when there is no minimum, no body left to wait for, or no deadline in sight.
    pub(super) fn rate_deadline(&self, grace: Duration, rate: u64) -> Option<Instant> {
        if rate == 0 || self.body_finished() {
            return None;
        }
        let received = self.body_received - self.rate_base;
        let earned = Duration::from_micros(received.saturating_mul(1_000_000) / rate);
        self.rate_from.checked_add(grace)?.checked_add(earned)
    }

    /// Measures the body rate afresh from `now`: the body was held up by the server (its
    /// output was full, or the exchange held the body), which is no fault of the client's.
    pub(super) fn restart_rate(&mut self, now: Instant) {
        self.rate_from = now;
        self.rate_base = self.body_received;
    }

    /// Whether the request is over: its response complete (no file body still going out)
    /// and its body read or given up on (or never to be read: the connection closes).
    pub(super) fn is_finished(&self) -> bool {
        matches!(self.reply.state, ResponseState::Done)
            && self.reply.file.is_none()
            && (self.reply.cx.close || self.body_finished())
    }

    /// Whether the body has been read (or given up on).
    pub(super) fn body_finished(&self) -> bool {
        matches!(self.body, BodyReader::Done | BodyReader::Abandoned)
    }

    /// Offers the handler output room, if something changed since it was last asked and
    /// the output is under its mark.
    pub(super) fn offer_room(&mut self, sink: &mut Sink<'_>) {
        if !self.poke || sink.output.len() >= sink.high_water {
            return;
        }
        if let (Some(exchange), ResponseState::Head | ResponseState::Body(_)) =
            (&mut self.exchange, self.reply.state)
        {
            self.poke = false;
            exchange.on_writable(&mut writer(&mut self.reply, sink));
        }
    }

    /// Feeds buffered input to the body decoder and the exchange until the input is used
    /// up, the body ends, or the output is over its mark.
    pub(super) fn feed(
        &mut self,
        input: &mut ReadBuf,
        sink: &mut Sink<'_>,
    ) -> Result<(), BodyError> {
        while !input.is_empty()
            && !self.reply.body_held
            && (sink.output.len() < sink.high_water || self.exchange.is_none())
        {
            let unread = input.unread();
            let (consumed, event) = match &mut self.body {
                BodyReader::Done | BodyReader::Abandoned => return Ok(()),
                BodyReader::Length { remaining } => {
                    let take = (*remaining).min(unread.len() as u64) as usize;
                    *remaining -= take as u64;
                    (take, Some(Chunk::Data(&unread[..take])))
                }
                BodyReader::Chunked(decoder) => decoder.decode(unread).map_err(BodyError::Parse)?,
            };
            // The trailer section ends the message as surely as `End` does.
            let ended = match &self.body {
                BodyReader::Length { remaining: 0 } => true,
                BodyReader::Chunked(decoder) => {
                    decoder.is_done() || matches!(event, Some(Chunk::End | Chunk::Trailers))
                }
                _ => false,
            };
            if let Some(Chunk::Data(data)) = &event {
                self.body_received += data.len() as u64;
                if self.body_received > self.reply.body_limit {
                    return Err(BodyError::TooLarge);
                }
            }
            self.deliver(event, sink)?;
            input.consume(consumed);
            if ended {
                // Held during the body's last bytes: its end waits for the release.
                return if self.reply.body_held {
                    Ok(())
                } else {
                    self.end_body(sink)
                };
            }
        }
        Ok(())
    }

    /// After the exchange released a body it held: delivers the end it was kept from, if
    /// the body had already been read to its end.
    pub(super) fn resume_body(&mut self, sink: &mut Sink<'_>) -> Result<(), BodyError> {
        let read_to_end = match &self.body {
            BodyReader::Length { remaining } => *remaining == 0,
            BodyReader::Chunked(decoder) => decoder.is_done(),
            BodyReader::Done | BodyReader::Abandoned => false,
        };
        if read_to_end && !self.reply.body_held {
            self.end_body(sink)?;
        }
        Ok(())
    }

    /// The body has been read to its end: trailers, then `End`.
    fn end_body(&mut self, sink: &mut Sink<'_>) -> Result<(), BodyError> {
        self.deliver_trailers(sink)?;
        self.body = BodyReader::Done;
        self.finish_body(sink);
        Ok(())
    }

    /// Hands one decoded body event to the exchange as the body mode asks.
    fn deliver(&mut self, event: Option<Chunk<'_>>, sink: &mut Sink<'_>) -> Result<(), BodyError> {
        let event = match event {
            None | Some(Chunk::End | Chunk::Trailers | Chunk::Data(&[])) => return Ok(()),
            Some(Chunk::Start { size }) => {
                self.chunks += 1;
                BodyEvent::ChunkStart { size }
            }
            Some(Chunk::Data(data)) => BodyEvent::Data(data),
        };
        match self.body_mode {
            BodyMode::Ignore => {}
            BodyMode::Buffer { .. } => {
                // `body_limit` already includes the buffer's limit (see `begin`).
                if let BodyEvent::Data(data) = event {
                    self.buffered.extend_from_slice(data);
                }
            }
            BodyMode::Stream => {
                if let Some(exchange) = &mut self.exchange {
                    exchange.on_body(event, &mut writer(&mut self.reply, sink));
                    self.poke = true;
                }
            }
        }
        Ok(())
    }

    /// Hands over the trailers kept by the decoder, after the data (a buffered body is
    /// delivered first, so the order stays data, trailers, end).
    fn deliver_trailers(&mut self, sink: &mut Sink<'_>) -> Result<(), BodyError> {
        let has_trailers = matches!(&self.body, BodyReader::Chunked(decoder)
            if !decoder.trailer_block().is_empty());
        if !has_trailers || self.body_mode == BodyMode::Ignore {
            return Ok(());
        }
        self.deliver_buffered(sink);
        let (BodyReader::Chunked(decoder), Some(exchange)) = (&self.body, &mut self.exchange)
        else {
            return Ok(());
        };
        // Trailers are rare, so initialising this small array is cheaper than it looks.
        let mut storage = [httparse::EMPTY_HEADER; MAX_TRAILERS];
        let trailers = chunked::parse_trailers(decoder.trailer_block(), &mut storage)
            .map_err(BodyError::Parse)?;
        exchange.on_body(
            BodyEvent::Trailers(trailers),
            &mut writer(&mut self.reply, sink),
        );
        self.poke = true;
        Ok(())
    }

    /// Hands a buffered body over as one `Data` event; afterwards the buffer is empty, so
    /// it is never delivered twice.
    fn deliver_buffered(&mut self, sink: &mut Sink<'_>) {
        let buffered = std::mem::take(&mut self.buffered);
        if let (Some(exchange), false) = (&mut self.exchange, buffered.is_empty()) {
            exchange.on_body(
                BodyEvent::Data(&buffered),
                &mut writer(&mut self.reply, sink),
            );
            self.poke = true;
        }
    }

    /// The body is complete: a buffered body is delivered, then `End`.
    fn finish_body(&mut self, sink: &mut Sink<'_>) {
        if self.body_mode == BodyMode::Ignore {
            return;
        }
        self.deliver_buffered(sink);
        if let Some(exchange) = &mut self.exchange {
            exchange.on_body(BodyEvent::End, &mut writer(&mut self.reply, sink));
            self.poke = true;
        }
    }
}
