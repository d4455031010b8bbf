//! The service model: how application code answers requests without ever blocking the loop.
//!
//! This is the seed's `servicemodel`. A [`Handler`] sees each request head once and decides
//! how to take the body ([`BodyMode`]): ignore it, stream it as [`BodyEvent`]s that keep chunk
//! boundaries (the seed's `[chunksz, datafirst] [data]* ... [0, '']` pattern, with trailers
//! delivered instead of dropped), or have it buffered up to a bound. It answers through a
//! [`ResponseWriter`], which owns HTTP/1.1 framing (Content-Length or chunked, HEAD, 1xx,
//! keep-alive) so a handler cannot produce a malformed message. A response body that is not
//! ready at once is written by the handler's [`Exchange`] when the connection has room: the
//! analogue of the seed's `input_sentinel`, with no blocking and no unbounded buffering.
//!
//! This module must not know about sockets, the reactor or configuration.

use crate::http1::encode;

pub use crate::http1::{BodyKind, Header, Version};

/// A parsed request head, borrowed from the connection's read buffer for the duration of
/// [`Handler::start`]. Copy what you need to keep.
#[derive(Debug)]
pub struct Request<'a> {
    /// The method token, e.g. `GET`.
    pub method: &'a str,
    /// The request target as sent (origin-form `/a?b`, absolute-form, `*`, ...).
    pub target: &'a str,
    /// The protocol version.
    pub version: Version,
    /// The header fields in the order received.
    pub headers: &'a [Header<'a>],
    /// How the body is delimited.
    pub body: BodyKind,
}

impl<'a> Request<'a> {
    /// The path of the target (without query), also for absolute-form targets; `*` for
    /// asterisk-form.
    pub fn path(&self) -> &'a str {
        let target = self.target;
        let without_authority = match target.find("://") {
            Some(scheme_end) => {
                let rest = &target[scheme_end + 3..];
                match rest.find('/') {
                    Some(slash) => &rest[slash..],
                    None => "/",
                }
            }
            None => target,
        };
        match without_authority.find(['?', '#']) {
            Some(end) => &without_authority[..end],
            None => without_authority,
        }
    }

    /// The query string (after `?`), if any.
    pub fn query(&self) -> Option<&'a str> {
        let query = &self.target[self.target.find('?')? + 1..];
        Some(query.split('#').next().unwrap_or(query))
    }

    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case(name))
            .map(|header| header.value)
    }

    /// Whether this is a HEAD request (its response carries no body).
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }
}

/// How a handler takes the request body.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BodyMode {
    /// Not wanted: the server discards it (or closes the connection when the client was
    /// told to wait with `Expect: 100-continue`).
    Ignore,
    /// Delivered as [`BodyEvent`]s as it arrives.
    Stream,
    /// Collected, then delivered as one `Data` event; a larger body is answered with 413.
    Buffer {
        /// The largest body accepted, in bytes.
        limit: u64,
    },
}

/// One piece of a request body, in arrival order.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyEvent<'a> {
    /// A chunk of `size` bytes begins (chunked bodies only; its data follows).
    ChunkStart {
        /// The chunk's declared size.
        size: u64,
    },
    /// Body bytes (never empty).
    Data(&'a [u8]),
    /// The trailer fields of a chunked body, if it had any.
    Trailers(&'a [Header<'a>]),
    /// The body is complete.
    End,
}

/// A handler's answer to a new request.
pub enum Start<E> {
    /// The response was written completely in `start`; any body is discarded.
    Complete,
    /// The exchange goes on: the body is taken as `body`, and `exchange` finishes the response.
    Continue {
        /// How to take the body.
        body: BodyMode,
        /// The per-request state that receives body events and writes the rest.
        exchange: E,
    },
}

impl<E> Start<E> {
    /// Converts the exchange type (e.g. into an enum of several handlers' exchanges).
    pub fn map<F>(self, f: impl FnOnce(E) -> F) -> Start<F> {
        match self {
            Start::Complete => Start::Complete,
            Start::Continue { body, exchange } => Start::Continue {
                body,
                exchange: f(exchange),
            },
        }
    }
}

/// Application code: answers requests. Shared by all connections of all workers.
pub trait Handler: Send + Sync + 'static {
    /// Per-request state for responses that outlive `start`.
    type Exchange: Exchange;

    /// A request head has arrived. Write the response now (and return [`Start::Complete`]) or
    /// return the exchange that will.
    ///
    /// A handler that wants the body should leave the head to its exchange
    /// ([`Exchange::on_writable`] runs right after `start`): a head written while a client
    /// waits on `Expect: 100-continue` must announce `Connection: close`, because the server
    /// cannot know yet whether the body will follow.
    fn start(
        &self,
        request: &Request<'_>,
        response: &mut ResponseWriter<'_>,
    ) -> Start<Self::Exchange>;
}

/// The per-request half of a handler. Calls never overlap and never block.
pub trait Exchange {
    /// A piece of the body arrived (in [`BodyMode::Stream`] and [`BodyMode::Buffer`]).
    fn on_body(&mut self, event: BodyEvent<'_>, response: &mut ResponseWriter<'_>);

    /// The connection can take more output ([`ResponseWriter::room`] says how much). Called
    /// after `start`, after body events, and whenever the socket drains, until the response is
    /// complete. Write as much as is ready; nothing written means "not ready yet".
    fn on_writable(&mut self, response: &mut ResponseWriter<'_>);
}

/// The exchange of handlers that always answer in `start`.
impl Exchange for () {
    fn on_body(&mut self, _: BodyEvent<'_>, _: &mut ResponseWriter<'_>) {}
    fn on_writable(&mut self, _: &mut ResponseWriter<'_>) {}
}

impl<H: Handler> Handler for std::sync::Arc<H> {
    type Exchange = H::Exchange;

    fn start(
        &self,
        request: &Request<'_>,
        response: &mut ResponseWriter<'_>,
    ) -> Start<Self::Exchange> {
        (**self).start(request, response)
    }
}

/// How a response body is delimited, chosen when the head is written.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Exactly this many bytes (`Content-Length`).
    Length(u64),
    /// Length not known up front: chunked for HTTP/1.1 clients, close-delimited for HTTP/1.0.
    Chunked,
}

/// A handler broke the framing contract; the server closes the connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// A second head was written.
    #[error("response head written twice")]
    HeadTwice,
    /// Body bytes or `finish` before the head.
    #[error("response body written before the head")]
    NoHead,
    /// More bytes than the declared Content-Length (or the declared chunk size).
    #[error("response body longer than declared")]
    TooLong,
    /// `finish` before all declared bytes were written.
    #[error("response body shorter than declared")]
    TooShort,
    /// Writing after `finish`.
    #[error("response written after it was finished")]
    AfterFinish,
    /// `begin_chunk` while a chunk is still open, or with a zero size.
    #[error("invalid chunk boundary")]
    BadChunk,
    /// A status code that does not fit the call (a final status below 200, a 1xx above 199).
    #[error("status code not valid here")]
    BadStatus,
}

/// Where the response of the current request stands. Owned by the connection, so it
/// survives between handler calls.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ResponseState {
    /// No head written yet.
    Head,
    /// The head is out; the body is being written.
    Body(BodyState),
    /// The response is complete.
    Done,
    /// The handler broke the framing contract.
    Broken(ResponseError),
}

/// The body-writing sub-state.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BodyState {
    /// Content-Length framing with this many bytes still due.
    Length {
        /// Bytes still to write.
        remaining: u64,
    },
    /// Chunked framing; `open` bytes of an explicitly begun chunk are still due.
    Chunked {
        /// Bytes still due in the current explicit chunk (0: between chunks).
        open: u64,
    },
    /// Close-delimited (HTTP/1.0 client, unknown length): the connection closes after.
    UntilClose,
    /// The body is counted but not sent (HEAD, 204, 304); `remaining` as declared, if known.
    Suppressed {
        /// Declared bytes still due, when a length was declared.
        remaining: Option<u64>,
    },
}

/// What the writer needs to know about the request it answers. Set by the server.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ResponseContext {
    /// The request's version (decides chunked vs close-delimited, 1xx, keep-alive header).
    pub version: Version,
    /// A HEAD request: no body bytes go out.
    pub head_request: bool,
    /// The connection closes after this response (client asked, limit reached, draining).
    pub close: bool,
    /// The client sent `Expect: 100-continue` and has not been answered `100` yet: a final
    /// head written now must announce close unless the server sends `100` first.
    pub expect_pending: bool,
}

/// Writes one response into the connection's output buffer, enforcing HTTP/1.1 framing.
///
/// Misuse (a second head, too many bytes, ...) never panics: it marks the response
/// [`ResponseState::Broken`] and the server closes the connection.
pub struct ResponseWriter<'a> {
    out: &'a mut Vec<u8>,
    state: &'a mut ResponseState,
    cx: &'a mut ResponseContext,
    date_line: &'a [u8],
    high_water: usize,
}

impl<'a> ResponseWriter<'a> {
    /// A writer appending to `out`. `date_line` is a complete `Date: ...\r\n` line;
    /// `high_water` is the output size above which [`room`](Self::room) reports 0.
    pub fn new(
        out: &'a mut Vec<u8>,
        state: &'a mut ResponseState,
        cx: &'a mut ResponseContext,
        date_line: &'a [u8],
        high_water: usize,
    ) -> Self {
        ResponseWriter {
            out,
            state,
            cx,
            date_line,
            high_water,
        }
    }

    /// Bytes the handler may write before the output is over its mark (0: wait for
    /// [`Exchange::on_writable`]). A handler may exceed it by one write; it should not loop.
    pub fn room(&self) -> usize {
        self.high_water.saturating_sub(self.out.len())
    }

    /// Whether the head has been written.
    pub fn head_written(&self) -> bool {
        !matches!(*self.state, ResponseState::Head)
    }

    /// Whether the response is complete.
    pub fn is_complete(&self) -> bool {
        matches!(*self.state, ResponseState::Done)
    }

    /// The request's version.
    pub fn version(&self) -> Version {
        self.cx.version
    }

    /// Sends a 1xx informational response (e.g. 103). Not sent to HTTP/1.0 clients, which
    /// cannot receive them.
    pub fn informational(&mut self, status: u16, headers: &[(&str, &[u8])]) {
        if !(100..200).contains(&status) || status == 101 {
            return self.broken(ResponseError::BadStatus);
        }
        if !matches!(*self.state, ResponseState::Head) || self.cx.version == Version::Http10 {
            return;
        }
        encode::write_status_line(self.out, status);
        for (name, value) in headers {
            encode::write_header(self.out, name.as_bytes(), value);
        }
        self.out.extend_from_slice(encode::CRLF);
    }

    /// Writes the final head: status line, `headers`, `Date`, framing and connection headers.
    pub fn head(&mut self, status: u16, headers: &[(&str, &[u8])], framing: Framing) {
        if !self.begin_head(status) {
            return;
        }
        for (name, value) in headers {
            encode::write_header(self.out, name.as_bytes(), value);
        }
        self.end_head(status, framing);
    }

    /// Like [`head`](Self::head) with header lines pre-encoded as `Name: value\r\n...`
    /// (validated by the caller, e.g. once at config load).
    pub fn head_encoded(&mut self, status: u16, header_lines: &[u8], framing: Framing) {
        if !self.begin_head(status) {
            return;
        }
        self.out.extend_from_slice(header_lines);
        self.end_head(status, framing);
    }

    /// Writes body bytes. With chunked framing and no chunk begun, `data` becomes one chunk.
    pub fn write(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let len = data.len() as u64;
        match *self.state {
            ResponseState::Head => self.broken(ResponseError::NoHead),
            ResponseState::Done => self.broken(ResponseError::AfterFinish),
            ResponseState::Broken(_) => {}
            ResponseState::Body(BodyState::Length { remaining }) => {
                if len > remaining {
                    return self.broken(ResponseError::TooLong);
                }
                self.out.extend_from_slice(data);
                *self.state = ResponseState::Body(BodyState::Length {
                    remaining: remaining - len,
                });
            }
            ResponseState::Body(BodyState::Chunked { open: 0 }) => {
                encode::write_chunk_size(self.out, len);
                self.out.extend_from_slice(data);
                self.out.extend_from_slice(encode::CRLF);
            }
            ResponseState::Body(BodyState::Chunked { open }) => {
                if len > open {
                    return self.broken(ResponseError::TooLong);
                }
                self.out.extend_from_slice(data);
                if len == open {
                    self.out.extend_from_slice(encode::CRLF);
                }
                *self.state = ResponseState::Body(BodyState::Chunked { open: open - len });
            }
            ResponseState::Body(BodyState::UntilClose) => self.out.extend_from_slice(data),
            ResponseState::Body(BodyState::Suppressed { remaining }) => {
                if let Some(remaining) = remaining {
                    if len > remaining {
                        return self.broken(ResponseError::TooLong);
                    }
                    *self.state = ResponseState::Body(BodyState::Suppressed {
                        remaining: Some(remaining - len),
                    });
                }
            }
        }
    }

    /// Begins a chunk of exactly `size` bytes, to be written by following `write` calls
    /// (keeps a relayed body's chunk boundaries). Without chunked framing it only checks.
    pub fn begin_chunk(&mut self, size: u64) {
        match *self.state {
            ResponseState::Body(BodyState::Chunked { open: 0 }) if size > 0 => {
                encode::write_chunk_size(self.out, size);
                *self.state = ResponseState::Body(BodyState::Chunked { open: size });
            }
            ResponseState::Body(BodyState::Chunked { .. }) => self.broken(ResponseError::BadChunk),
            ResponseState::Head => self.broken(ResponseError::NoHead),
            _ => {}
        }
    }

    /// Completes the response.
    pub fn finish(&mut self) {
        self.finish_with_trailers(&[]);
    }

    /// Completes the response, sending `trailers` when the body is chunked (they are
    /// dropped otherwise, as RFC 9110 allows).
    pub fn finish_with_trailers(&mut self, trailers: &[(&str, &[u8])]) {
        match *self.state {
            ResponseState::Head => self.broken(ResponseError::NoHead),
            ResponseState::Done => self.broken(ResponseError::AfterFinish),
            ResponseState::Broken(_) => {}
            ResponseState::Body(body) => match body {
                BodyState::Length { remaining: 0 }
                | BodyState::UntilClose
                | BodyState::Suppressed {
                    remaining: None | Some(0),
                } => *self.state = ResponseState::Done,
                BodyState::Chunked { open: 0 } => {
                    self.out.extend_from_slice(encode::LAST_CHUNK);
                    for (name, value) in trailers {
                        encode::write_header(self.out, name.as_bytes(), value);
                    }
                    self.out.extend_from_slice(encode::CRLF);
                    *self.state = ResponseState::Done;
                }
                _ => self.broken(ResponseError::TooShort),
            },
        }
    }

    /// Writes a complete response with a fixed body in one call.
    pub fn complete(&mut self, status: u16, headers: &[(&str, &[u8])], body: &[u8]) {
        self.head(status, headers, Framing::Length(body.len() as u64));
        self.write(body);
        self.finish();
    }

    fn broken(&mut self, error: ResponseError) {
        *self.state = ResponseState::Broken(error);
    }

    fn begin_head(&mut self, status: u16) -> bool {
        if !matches!(*self.state, ResponseState::Head) {
            self.broken(ResponseError::HeadTwice);
            return false;
        }
        if !(200..1000).contains(&status) {
            self.broken(ResponseError::BadStatus);
            return false;
        }
        encode::write_status_line(self.out, status);
        true
    }

    fn end_head(&mut self, status: u16, framing: Framing) {
        self.out.extend_from_slice(self.date_line);
        if self.cx.expect_pending {
            // The client may still be holding its body back: we cannot tell where the next
            // request would start, so this connection ends with this response.
            self.cx.close = true;
        }
        let body_allowed = encode::status_allows_body(status);
        let body = if !body_allowed || self.cx.head_request {
            if let Framing::Length(len) = framing {
                if status != 204 {
                    encode::write_content_length(self.out, len);
                }
            } else if body_allowed && self.cx.version == Version::Http11 {
                self.out
                    .extend_from_slice(b"Transfer-Encoding: chunked\r\n");
            }
            BodyState::Suppressed {
                remaining: match framing {
                    Framing::Length(len) if body_allowed => Some(len),
                    Framing::Length(_) => Some(0),
                    Framing::Chunked => None,
                },
            }
        } else {
            match (framing, self.cx.version) {
                (Framing::Length(len), _) => {
                    encode::write_content_length(self.out, len);
                    BodyState::Length { remaining: len }
                }
                (Framing::Chunked, Version::Http11) => {
                    self.out
                        .extend_from_slice(b"Transfer-Encoding: chunked\r\n");
                    BodyState::Chunked { open: 0 }
                }
                (Framing::Chunked, Version::Http10) => {
                    self.cx.close = true;
                    BodyState::UntilClose
                }
            }
        };
        if self.cx.close {
            self.out.extend_from_slice(b"Connection: close\r\n");
        } else if self.cx.version == Version::Http10 {
            self.out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        self.out.extend_from_slice(encode::CRLF);
        *self.state = ResponseState::Body(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8] = b"Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n";

    fn write(
        cx: ResponseContext,
        f: impl FnOnce(&mut ResponseWriter<'_>),
    ) -> (String, ResponseState, bool) {
        let mut out = Vec::new();
        let mut state = ResponseState::Head;
        let mut cx = cx;
        let mut writer = ResponseWriter::new(&mut out, &mut state, &mut cx, DATE, 1 << 16);
        f(&mut writer);
        (String::from_utf8(out).unwrap(), state, cx.close)
    }

    fn http11() -> ResponseContext {
        ResponseContext {
            version: Version::Http11,
            head_request: false,
            close: false,
            expect_pending: false,
        }
    }

    #[test]
    fn fixed_length_response() {
        let (text, state, close) = write(http11(), |w| {
            w.complete(200, &[("Content-Type", b"text/plain")], b"hi")
        });
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Length: 2\r\n\r\nhi"
        );
        assert_eq!(state, ResponseState::Done);
        assert!(!close);
    }

    #[test]
    fn chunked_keeps_explicit_chunk_boundaries_and_trailers() {
        let (text, state, _) = write(http11(), |w| {
            w.head(200, &[], Framing::Chunked);
            w.begin_chunk(5);
            w.write(b"he");
            w.write(b"llo");
            w.write(b"!");
            w.finish_with_trailers(&[("X-Sum", b"1")]);
        });
        assert!(
            text.ends_with(
                "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1\r\n!\r\n0\r\nX-Sum: 1\r\n\r\n"
            ),
            "{text}"
        );
        assert_eq!(state, ResponseState::Done);
    }

    #[test]
    fn http10_unknown_length_is_close_delimited() {
        let cx = ResponseContext {
            version: Version::Http10,
            ..http11()
        };
        let (text, state, close) = write(cx, |w| {
            w.head(200, &[], Framing::Chunked);
            w.write(b"abc");
            w.finish();
        });
        assert!(text.ends_with("Connection: close\r\n\r\nabc"), "{text}");
        assert!(!text.contains("Transfer-Encoding"));
        assert_eq!(state, ResponseState::Done);
        assert!(close);
    }

    #[test]
    fn http10_keep_alive_is_announced() {
        let cx = ResponseContext {
            version: Version::Http10,
            ..http11()
        };
        let (text, _, close) = write(cx, |w| w.complete(204, &[], b""));
        assert!(text.ends_with("Connection: keep-alive\r\n\r\n"), "{text}");
        assert!(!text.contains("Content-Length"));
        assert!(!close);
    }

    #[test]
    fn head_request_gets_length_but_no_body() {
        let cx = ResponseContext {
            head_request: true,
            ..http11()
        };
        let (text, state, _) = write(cx, |w| w.complete(200, &[], b"hello"));
        assert!(text.ends_with("Content-Length: 5\r\n\r\n"), "{text}");
        assert_eq!(state, ResponseState::Done);
    }

    #[test]
    fn pending_expectation_forces_close() {
        let cx = ResponseContext {
            expect_pending: true,
            ..http11()
        };
        let (text, _, close) = write(cx, |w| w.complete(413, &[], b""));
        assert!(text.contains("Connection: close\r\n"));
        assert!(close);
    }

    #[test]
    fn misuse_marks_the_response_broken() {
        type Case = (&'static str, fn(&mut ResponseWriter<'_>), ResponseError);
        let cases: [Case; 5] = [
            ("body before head", |w| w.write(b"x"), ResponseError::NoHead),
            (
                "too long",
                |w| {
                    w.head(200, &[], Framing::Length(1));
                    w.write(b"xy");
                },
                ResponseError::TooLong,
            ),
            (
                "too short",
                |w| {
                    w.head(200, &[], Framing::Length(3));
                    w.write(b"xy");
                    w.finish();
                },
                ResponseError::TooShort,
            ),
            (
                "two heads",
                |w| {
                    w.head(200, &[], Framing::Length(0));
                    w.head(200, &[], Framing::Length(0));
                },
                ResponseError::HeadTwice,
            ),
            (
                "chunk overrun",
                |w| {
                    w.head(200, &[], Framing::Chunked);
                    w.begin_chunk(1);
                    w.write(b"ab");
                },
                ResponseError::TooLong,
            ),
        ];
        for (name, f, expected) in cases {
            let (_, state, _) = write(http11(), f);
            assert_eq!(state, ResponseState::Broken(expected), "{name}");
        }
    }

    #[test]
    fn request_path_and_query() {
        let cases = [
            ("/a/b?x=1", "/a/b", Some("x=1")),
            ("/", "/", None),
            ("http://example.com/p?q", "/p", Some("q")),
            ("http://example.com", "/", None),
            ("*", "*", None),
        ];
        for (target, path, query) in cases {
            let request = Request {
                method: "GET",
                target,
                version: Version::Http11,
                headers: &[],
                body: BodyKind::None,
            };
            assert_eq!(request.path(), path, "{target}");
            assert_eq!(request.query(), query, "{target}");
        }
    }
}
