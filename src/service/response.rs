//! The response side of the service model: [`ResponseWriter`], which writes a response into
//! the connection's output and keeps its framing state (a [`Reply`], in `reply.rs`).
//!
//! The writer owns HTTP/1.1 message framing so a handler cannot produce a malformed
//! response: it picks Content-Length, chunked or close-delimited framing from the request's
//! version, suppresses bodies for HEAD, 204 and 304, adds `Date` and the connection header,
//! and counts body bytes against what was declared. It never panics on misuse: it records a
//! [`ResponseError`] and the server closes the connection. It must not do I/O.

use super::header_lines::write_checked;
use super::outbound::Outbound;
use super::reply::{BodyState, FileBody, Framing, Reply, ResponseError, ResponseState};
use super::waker::{ExchangeWaker, WakeRef};
use super::{FixedResponse, HeaderLines};
use crate::http1::Version;
use crate::http1::encode;

/// Writes one response into the connection's output buffer, enforcing HTTP/1.1 framing.
///
/// Misuse (a second head, too many bytes, ...) never panics: it marks the response
/// [`ResponseState::Broken`] and the server closes the connection.
pub struct ResponseWriter<'a> {
    out: &'a mut Vec<u8>,
    reply: &'a mut Reply,
    date_line: &'a [u8],
    high_water: usize,
    wake: Option<WakeRef<'a>>,
    outbound: Option<&'a mut (dyn Outbound + 'a)>,
}

impl<'a> ResponseWriter<'a> {
    /// A writer appending to `out`. `date_line` is a complete `Date: ...\r\n` line;
    /// `high_water` is the output size above which [`room`](Self::room) reports 0.
    pub fn new(
        out: &'a mut Vec<u8>,
        reply: &'a mut Reply,
        date_line: &'a [u8],
        high_water: usize,
    ) -> Self {
        ResponseWriter {
            out,
            reply,
            date_line,
            high_water,
            wake: None,
            outbound: None,
        }
    }

    /// The same writer, lending the exchange outbound connections.
    pub fn with_outbound(mut self, outbound: Option<&'a mut (dyn Outbound + 'a)>) -> Self {
        self.outbound = outbound;
        self
    }

    /// Connections to other servers, in the same loop as this one; `None` when the writer is
    /// not served by a connection that can lend them.
    pub fn outbound(&mut self) -> Option<&mut (dyn Outbound + 'a)> {
        self.outbound.as_deref_mut()
    }

    /// Asks to be offered room ([`Exchange::on_writable`](super::Exchange::on_writable)) at
    /// `at` even if nothing else happens (`None` cancels): the exchange's own timer, e.g. an
    /// upstream's read timeout. While one is set, the exchange times itself: the server's
    /// body timeout and handler timeout do not end the request (the write timeout, for a
    /// client that does not read, still does). One timer per request; setting it again
    /// replaces it, and it is cleared when it fires.
    pub fn wake_at(&mut self, at: Option<std::time::Instant>) {
        self.reply.wake_at = at;
    }

    /// The same writer, able to hand out wakers for its request.
    pub fn with_wake(mut self, wake: Option<WakeRef<'a>>) -> Self {
        self.wake = wake;
        self
    }

    /// A waker for this request's exchange, to call from another thread when the exchange
    /// can make progress; `None` when the writer is not served by a connection.
    pub fn waker(&self) -> Option<ExchangeWaker> {
        self.wake.map(ExchangeWaker::of)
    }

    /// Bytes the handler may write before the output is over its mark (0: wait for
    /// [`Exchange::on_writable`](super::Exchange::on_writable)). A handler may exceed it by
    /// one write; it should not loop.
    pub fn room(&self) -> usize {
        self.high_water.saturating_sub(self.out.len())
    }

    /// Whether the head has been written.
    pub fn head_written(&self) -> bool {
        !matches!(self.reply.state, ResponseState::Head)
    }

    /// Whether the response is complete.
    pub fn is_complete(&self) -> bool {
        matches!(self.reply.state, ResponseState::Done)
    }

    /// The request's version.
    pub fn version(&self) -> Version {
        self.reply.cx.version
    }

    /// Sends a 1xx informational response (e.g. 103). Not sent to HTTP/1.0 clients, which
    /// cannot receive them.
    ///
    /// # Errors
    ///
    /// [`ResponseError::InvalidField`] for a field that would split the response (nothing
    /// is sent); [`ResponseError::BadStatus`] for a status outside 100-199 or 101 (the
    /// response is then broken and the connection closes).
    pub fn informational(
        &mut self,
        status: u16,
        headers: &[(&str, &[u8])],
    ) -> Result<(), ResponseError> {
        if !(100..200).contains(&status) || status == 101 {
            return Err(self.break_with(ResponseError::BadStatus));
        }
        if !matches!(self.reply.state, ResponseState::Head)
            || self.reply.cx.version == Version::Http10
        {
            return Ok(());
        }
        let start = self.out.len();
        encode::write_status_line(self.out, status);
        self.write_fields(start, headers.iter().copied())?;
        self.out.extend_from_slice(encode::CRLF);
        Ok(())
    }

    /// Writes the final head: status line, `headers`, `Date`, framing and connection headers.
    ///
    /// # Errors
    ///
    /// [`ResponseError::InvalidField`] when a field name is not a token or a value holds CR,
    /// LF, NUL or another control byte: nothing of the head is written, and the handler may
    /// write another (an error response, say). A misuse of the writer (a second head, a
    /// status below 200) breaks the response, is returned too, and closes the connection.
    pub fn head(
        &mut self,
        status: u16,
        headers: &[(&str, &[u8])],
        framing: Framing,
    ) -> Result<(), ResponseError> {
        self.head_fields(
            status,
            &HeaderLines::default(),
            headers.iter().copied(),
            framing,
        )
    }

    /// Like [`head`](Self::head) with the fields in lines encoded and checked once
    /// ([`HeaderLines`], e.g. built at config load): nothing is checked per response.
    pub fn head_encoded(&mut self, status: u16, header_lines: &HeaderLines, framing: Framing) {
        let _ = self.head_trusted(status, header_lines.as_bytes(), [], framing);
    }

    /// Like [`head_encoded`](Self::head_encoded), followed by per-request `headers` (for
    /// a handler with fixed lines plus a few computed ones, without building them into one
    /// buffer first).
    ///
    /// # Errors
    ///
    /// As [`head`](Self::head), for `headers`.
    pub fn head_encoded_with(
        &mut self,
        status: u16,
        header_lines: &HeaderLines,
        headers: &[(&str, &[u8])],
        framing: Framing,
    ) -> Result<(), ResponseError> {
        self.head_trusted(
            status,
            header_lines.as_bytes(),
            headers.iter().copied(),
            framing,
        )
    }

    /// Like [`head_encoded_with`](Self::head_encoded_with), with the per-request fields from
    /// an iterator (e.g. the fields of a relayed response, filtered, with no list built),
    /// written before `header_lines`.
    ///
    /// # Errors
    ///
    /// As [`head`](Self::head), for `fields`.
    pub fn head_fields<'h>(
        &mut self,
        status: u16,
        header_lines: &HeaderLines,
        fields: impl IntoIterator<Item = (&'h str, &'h [u8])>,
        framing: Framing,
    ) -> Result<(), ResponseError> {
        let start = self.out.len();
        self.begin_head(status)?;
        self.write_fields(start, fields)?;
        self.out.extend_from_slice(header_lines.as_bytes());
        self.end_head(status, framing);
        Ok(())
    }

    /// A head whose `header_lines` the crate itself encoded and checked, then `fields`.
    fn head_trusted<'h>(
        &mut self,
        status: u16,
        header_lines: &[u8],
        fields: impl IntoIterator<Item = (&'h str, &'h [u8])>,
        framing: Framing,
    ) -> Result<(), ResponseError> {
        let start = self.out.len();
        self.begin_head(status)?;
        self.out.extend_from_slice(header_lines);
        self.write_fields(start, fields)?;
        self.end_head(status, framing);
        Ok(())
    }

    /// Writes each field checked; at the first invalid one, takes the output back to
    /// `start` (the head never began) and says so.
    fn write_fields<'h>(
        &mut self,
        start: usize,
        fields: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    ) -> Result<(), ResponseError> {
        for (name, value) in fields {
            if let Err(error) = write_checked(self.out, name.as_bytes(), value) {
                self.out.truncate(start);
                self.reply.status = 0;
                return Err(error);
            }
        }
        Ok(())
    }

    /// Gives up on the response (its source failed after part of it was written): the
    /// server sends what is buffered and closes the connection, so the client sees the
    /// message cut short rather than complete. Before the head, write an error response
    /// instead.
    pub fn abandon(&mut self) {
        if !matches!(self.reply.state, ResponseState::Done) {
            self.broken(ResponseError::Abandoned);
        }
    }

    /// Writes body bytes. With chunked framing and no chunk begun, `data` becomes one chunk.
    pub fn write(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let len = data.len() as u64;
        match self.reply.state {
            ResponseState::Head => self.broken(ResponseError::NoHead),
            ResponseState::Done => self.broken(ResponseError::AfterFinish),
            ResponseState::Broken(_) => {}
            ResponseState::Body(BodyState::Length { remaining }) => {
                if len > remaining {
                    return self.broken(ResponseError::TooLong);
                }
                self.reply.body_bytes += len;
                self.out.extend_from_slice(data);
                self.reply.state = ResponseState::Body(BodyState::Length {
                    remaining: remaining - len,
                });
            }
            ResponseState::Body(BodyState::Chunked { open: 0 }) => {
                self.reply.body_bytes += len;
                encode::write_chunk_size(self.out, len);
                self.out.extend_from_slice(data);
                self.out.extend_from_slice(encode::CRLF);
            }
            ResponseState::Body(BodyState::Chunked { open }) => {
                if len > open {
                    return self.broken(ResponseError::TooLong);
                }
                self.reply.body_bytes += len;
                self.out.extend_from_slice(data);
                if len == open {
                    self.out.extend_from_slice(encode::CRLF);
                }
                self.reply.state = ResponseState::Body(BodyState::Chunked { open: open - len });
            }
            ResponseState::Body(BodyState::UntilClose) => {
                self.reply.body_bytes += len;
                self.out.extend_from_slice(data);
            }
            ResponseState::Body(BodyState::Suppressed { remaining }) => {
                if let Some(remaining) = remaining {
                    if len > remaining {
                        return self.broken(ResponseError::TooLong);
                    }
                    self.reply.state = ResponseState::Body(BodyState::Suppressed {
                        remaining: Some(remaining - len),
                    });
                }
            }
        }
    }

    /// Begins a chunk of exactly `size` bytes, to be written by following `write` calls
    /// (keeps a relayed body's chunk boundaries). Without chunked framing it only checks.
    pub fn begin_chunk(&mut self, size: u64) {
        match self.reply.state {
            ResponseState::Body(BodyState::Chunked { open: 0 }) if size > 0 => {
                encode::write_chunk_size(self.out, size);
                self.reply.state = ResponseState::Body(BodyState::Chunked { open: size });
            }
            ResponseState::Body(BodyState::Chunked { .. }) => self.broken(ResponseError::BadChunk),
            ResponseState::Head => self.broken(ResponseError::NoHead),
            _ => {}
        }
    }

    /// Sends `len` bytes of `file` from `offset` as the rest of the body and completes the
    /// response. The bytes go out with sendfile(2) after everything buffered before them.
    /// The head must have declared exactly the bytes still due (`Framing::Length`); for
    /// HEAD, 204 and 304 responses the file is closed unsent.
    pub fn send_file(&mut self, file: std::fs::File, offset: u64, len: u64) {
        match self.reply.state {
            ResponseState::Body(BodyState::Length { remaining }) if remaining == len => {
                self.reply.body_bytes += len;
                if len > 0 {
                    self.reply.file = Some(FileBody {
                        file,
                        offset,
                        remaining: len,
                    });
                }
                self.reply.state = ResponseState::Done;
            }
            ResponseState::Body(BodyState::Suppressed { remaining })
                if remaining.is_none_or(|remaining| remaining == len) =>
            {
                self.reply.state = ResponseState::Done;
            }
            ResponseState::Head => self.broken(ResponseError::NoHead),
            ResponseState::Done => self.broken(ResponseError::AfterFinish),
            ResponseState::Broken(_) => {}
            ResponseState::Body(_) => self.broken(ResponseError::FileNeedsLength),
        }
    }

    /// Notes which route (by its position in the handler's table) serves this request, so
    /// the server can count it without looking the route up again; see
    /// [`Handler::route_name_at`](super::Handler::route_name_at).
    pub fn set_route(&mut self, index: u32) {
        self.reply.route = Some(index);
    }

    /// Notes the server this request was forwarded to and how long it took (the last
    /// attempt's, if there were several): the access log shows them.
    pub fn set_upstream(&mut self, upstream: super::UpstreamUsed) {
        self.reply.upstream = Some(upstream);
    }

    /// Lowers the largest request body accepted for this request (413 beyond it). Call it in
    /// [`Handler::start`](super::Handler::start); the server checks a declared length right
    /// after `start`, and counts a streamed body as it arrives.
    pub fn limit_body(&mut self, limit: u64) {
        self.reply.body_limit = self.reply.body_limit.min(limit);
    }

    /// Pauses body events after the current one: the server keeps what has arrived, reads
    /// from the client only until its read buffer is full, and delivers nothing more (not
    /// even the body's end) until [`release_body`](Self::release_body). A consumer slower
    /// than the client (an upstream, a disk) thus pushes back on the client through TCP
    /// instead of buffering. Release from a later
    /// [`Exchange::on_writable`](super::Exchange::on_writable), e.g. once an
    /// [`ExchangeWaker`] fired. A body held
    /// longer than the body timeout ends the request with 500, as a handler that never
    /// answers does; the minimum body rate does not run meanwhile.
    pub fn hold_body(&mut self) {
        self.reply.body_held = true;
    }

    /// Resumes body events after [`hold_body`](Self::hold_body).
    pub fn release_body(&mut self) {
        self.reply.body_held = false;
    }

    /// Whether the client has closed the connection with nothing more to send (its request
    /// complete, no pipelined request behind it): a client that only half-closed may still
    /// read the response, but most have gone, and an exchange waiting on something slow (an
    /// upstream) may give up rather than finish a response nobody reads. The exchange is
    /// offered room when this turns true. (A client that resets the connection is not asked:
    /// the server closes it at once.)
    pub fn client_gone(&self) -> bool {
        self.reply.client_gone
    }

    /// Whether body events are paused ([`hold_body`](Self::hold_body)).
    pub fn body_held(&self) -> bool {
        self.reply.body_held
    }

    /// Completes the response.
    pub fn finish(&mut self) {
        let _ = self.finish_with_trailers(&[]);
    }

    /// Completes the response, sending `trailers` when the body is chunked (they are
    /// dropped otherwise, as RFC 9110 allows). Every declared byte must have been written,
    /// except in the answer to a HEAD request, which sends none of them.
    ///
    /// # Errors
    ///
    /// [`ResponseError::InvalidField`] for a trailer that would split the message: nothing
    /// is written and the response stays open (finish it again, without that trailer). A
    /// misuse (finishing twice, too few bytes) breaks the response and is returned too.
    pub fn finish_with_trailers(
        &mut self,
        trailers: &[(&str, &[u8])],
    ) -> Result<(), ResponseError> {
        match self.reply.state {
            ResponseState::Head => Err(self.break_with(ResponseError::NoHead)),
            ResponseState::Done => Err(self.break_with(ResponseError::AfterFinish)),
            ResponseState::Broken(error) => Err(error),
            ResponseState::Body(body) => match body {
                BodyState::Length { remaining: 0 }
                | BodyState::UntilClose
                | BodyState::Suppressed {
                    remaining: None | Some(0),
                } => {
                    self.reply.state = ResponseState::Done;
                    Ok(())
                }
                // A HEAD response declares its GET's length and sends none of it: a handler
                // that relays one (a proxy) has no bytes to count against it.
                BodyState::Suppressed { remaining: Some(_) } if self.reply.cx.head_request => {
                    self.reply.state = ResponseState::Done;
                    Ok(())
                }
                BodyState::Chunked { open: 0 } => {
                    let start = self.out.len();
                    self.out.extend_from_slice(encode::LAST_CHUNK);
                    for (name, value) in trailers {
                        if let Err(error) = write_checked(self.out, name.as_bytes(), value) {
                            self.out.truncate(start);
                            return Err(error);
                        }
                    }
                    self.out.extend_from_slice(encode::CRLF);
                    self.reply.state = ResponseState::Done;
                    Ok(())
                }
                _ => Err(self.break_with(ResponseError::TooShort)),
            },
        }
    }

    /// Writes `fixed` as the whole response: pre-encoded bytes when the request allows the
    /// plain form, else the same as [`head_encoded`](Self::head_encoded), `write`, `finish`.
    pub fn complete_fixed(&mut self, fixed: &FixedResponse) {
        let cx = self.reply.cx;
        let status = fixed.status();
        let plain = matches!(self.reply.state, ResponseState::Head)
            && cx.version == Version::Http11
            && !cx.close
            && !cx.head_request
            && !cx.expect_pending
            && encode::status_allows_body(status)
            && (200..1000).contains(&status);
        let body = fixed.body();
        if plain {
            let (before_date, after_date) = fixed.around_date();
            self.out.extend_from_slice(before_date);
            self.out.extend_from_slice(self.date_line);
            self.out.extend_from_slice(after_date);
            self.reply.status = status;
            self.reply.body_bytes += body.len() as u64;
            self.reply.state = ResponseState::Done;
            return;
        }
        let framing = Framing::Length(body.len() as u64);
        if self
            .head_trusted(status, fixed.header_lines(), [], framing)
            .is_ok()
        {
            self.write(body);
            self.finish();
        }
    }

    /// Writes a complete response with a fixed body in one call.
    ///
    /// # Errors
    ///
    /// As [`head`](Self::head): on [`ResponseError::InvalidField`] nothing is written.
    pub fn complete(
        &mut self,
        status: u16,
        headers: &[(&str, &[u8])],
        body: &[u8],
    ) -> Result<(), ResponseError> {
        self.head(status, headers, Framing::Length(body.len() as u64))?;
        self.write(body);
        self.finish();
        Ok(())
    }

    fn broken(&mut self, error: ResponseError) {
        self.reply.state = ResponseState::Broken(error);
    }

    /// Marks the response broken and returns `error` for the handler.
    fn break_with(&mut self, error: ResponseError) -> ResponseError {
        self.broken(error);
        error
    }

    fn begin_head(&mut self, status: u16) -> Result<(), ResponseError> {
        match self.reply.state {
            ResponseState::Head => {}
            ResponseState::Broken(error) => return Err(error),
            _ => return Err(self.break_with(ResponseError::HeadTwice)),
        }
        if !(200..1000).contains(&status) {
            return Err(self.break_with(ResponseError::BadStatus));
        }
        encode::write_status_line(self.out, status);
        self.reply.status = status;
        Ok(())
    }

    fn end_head(&mut self, status: u16, framing: Framing) {
        self.out.extend_from_slice(self.date_line);
        if self.reply.cx.expect_pending {
            // The client may still be holding its body back: we cannot tell where the next
            // request would start, so this connection ends with this response.
            self.reply.cx.close = true;
        }
        let body_allowed = encode::status_allows_body(status);
        let body = if !body_allowed || self.reply.cx.head_request {
            if let Framing::Length(len) = framing {
                // A HEAD answer declares its GET's length. A 204 has no content to measure,
                // and a 304's length would describe the selected representation (RFC 9110
                // 8.6), which this writer does not know: 0 would be a lie.
                if body_allowed {
                    encode::write_content_length(self.out, len);
                }
            } else if body_allowed && self.reply.cx.version == Version::Http11 {
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
            match (framing, self.reply.cx.version) {
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
                    self.reply.cx.close = true;
                    BodyState::UntilClose
                }
            }
        };
        if self.reply.cx.close {
            self.out.extend_from_slice(b"Connection: close\r\n");
        } else if self.reply.cx.version == Version::Http10 {
            self.out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        self.out.extend_from_slice(encode::CRLF);
        self.reply.state = ResponseState::Body(body);
    }
}

#[cfg(test)]
mod tests;
