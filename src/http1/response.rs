//! Response heads for HTTP/1.x clients: finds where a response head ends in bytes the caller
//! has buffered, borrows the status line and header fields out of that buffer, and decides
//! how the body is delimited (RFC 9112 section 6.3) given the method of the request it
//! answers. Used by `asycamore-bench` now and meant for the reverse proxy later.
//!
//! Like the rest of `http1`, this file must never perform I/O, allocate (header storage is
//! the caller's, possibly uninitialised), or guess at framing: a response whose body end
//! could be read two ways (Content-Length beside Transfer-Encoding, differing lengths,
//! Transfer-Encoding in HTTP/1.0) is an error. It does not read bodies: the caller counts a
//! `Length`, feeds a `Chunked` body to [`super::chunked::ChunkedDecoder`], or reads to EOF.
//! The field rules (list syntax, Content-Length folding, Connection options) are
//! `framing`'s, shared rather than repeated.

use std::fmt;
use std::mem::MaybeUninit;

use httparse::{ParserConfig, Response, Status};

use super::framing::{self, Scan};
use super::{HeadLimits, Header, ParseError, Version};

/// How the body of a response is delimited, or why it has none.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ResponseBody {
    /// A 1xx other than 101: no body, and the final response to the same request follows.
    Interim,
    /// 101 Switching Protocols, or a 2xx answer to CONNECT: the connection stops carrying
    /// HTTP/1.1 after this head.
    Upgrade,
    /// No body: the request was HEAD, or the status is 204 or 304.
    None,
    /// Exactly this many bytes follow the head (`Content-Length`).
    Length(u64),
    /// The body uses the chunked transfer coding (decode with
    /// [`super::chunked::ChunkedDecoder`]). Codings listed before `chunked` are the caller's
    /// concern; the body ends where the chunked coding says either way.
    Chunked,
    /// The body runs until the server closes the connection (no length given, or a
    /// Transfer-Encoding whose final coding is not `chunked`).
    UntilClose,
}

/// A complete response head, borrowing from the caller's buffer (`'b`) and header storage
/// (`'h`).
#[derive(Debug, PartialEq, Eq)]
pub struct ResponseHead<'h, 'b> {
    /// The protocol version.
    pub version: Version,
    /// The status code, 100 to 599.
    pub status: u16,
    /// The reason phrase (empty when absent).
    pub reason: &'b str,
    /// The header field lines in order, values without surrounding whitespace.
    pub headers: &'h [Header<'b>],
    /// Bytes of the head (leading empty lines included); the body starts at this offset.
    pub head_len: usize,
    /// How the body is delimited.
    pub body: ResponseBody,
    /// Whether the connection may carry another exchange after this response (false for a
    /// close-delimited body, an upgrade, `Connection: close`, or HTTP/1.0 without
    /// `keep-alive`).
    pub keep_alive: bool,
}

/// Why a response head could not be parsed or framed. Every variant means the connection
/// cannot be read any further.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ResponseError {
    /// The status line or a header field line is malformed.
    Malformed,
    /// The version is not HTTP/1.0 or HTTP/1.1.
    UnsupportedVersion,
    /// The status code is outside 100 to 599 (RFC 9110 15).
    BadStatus,
    /// The head does not fit in `HeadLimits::max_head_bytes`.
    HeadTooLarge,
    /// The head has more field lines than `HeadLimits::max_headers` (or the storage holds).
    TooManyHeaders,
    /// A `Content-Length` value is not `1*DIGIT` or does not fit in a `u64`.
    BadContentLength,
    /// `Content-Length` values disagree with each other.
    ConflictingContentLength,
    /// Both `Transfer-Encoding` and `Content-Length` frame the body.
    ContentLengthWithTransferEncoding,
    /// A `Transfer-Encoding` value is empty or not a list of tokens.
    BadTransferEncoding,
    /// An HTTP/1.0 response carries `Transfer-Encoding` (RFC 9112 6.1: faulty framing).
    TransferEncodingInHttp10,
}

impl ResponseError {
    /// A stable snake_case label.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnsupportedVersion => "unsupported_version",
            Self::BadStatus => "bad_status",
            Self::HeadTooLarge => "head_too_large",
            Self::TooManyHeaders => "too_many_headers",
            Self::BadContentLength => "bad_content_length",
            Self::ConflictingContentLength => "conflicting_content_length",
            Self::ContentLengthWithTransferEncoding => "content_length_with_transfer_encoding",
            Self::BadTransferEncoding => "bad_transfer_encoding",
            Self::TransferEncodingInHttp10 => "transfer_encoding_in_http10",
        }
    }

    /// The framing error `framing`'s shared field rules report, in this module's terms.
    fn from_field_rule(e: ParseError) -> Self {
        match e {
            ParseError::BadContentLength => Self::BadContentLength,
            ParseError::ConflictingContentLength => Self::ConflictingContentLength,
            _ => Self::BadTransferEncoding,
        }
    }
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

impl std::error::Error for ResponseError {}

/// Ok(None): the head is not complete yet (and still within the size limit).
///
/// `method` is the method of the request this response answers (`HEAD` and `CONNECT`
/// change the framing). At most `limits.max_headers.min(storage.len())` field lines are
/// accepted.
///
/// # Errors
///
/// [`ResponseError::HeadTooLarge`] / [`ResponseError::TooManyHeaders`] when a limit is
/// exceeded, the syntax and status errors, then the framing errors; the framing errors are
/// ignored for responses that cannot have a body (RFC 9112 6.3 rules 1 and 2).
pub fn parse_response<'h, 'b>(
    buf: &'b [u8],
    method: &str,
    storage: &'h mut [MaybeUninit<Header<'b>>],
    limits: &HeadLimits,
) -> Result<Option<ResponseHead<'h, 'b>>, ResponseError> {
    let window = &buf[..buf.len().min(limits.max_head_bytes)];
    let max_headers = limits.max_headers.min(storage.len());
    let mut response = Response::new(&mut []);
    let parsed = ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        window,
        &mut storage[..max_headers],
    );
    let head_len = match parsed {
        Ok(Status::Complete(head_len)) => head_len,
        Ok(Status::Partial) if buf.len() >= limits.max_head_bytes => {
            return Err(ResponseError::HeadTooLarge);
        }
        Ok(Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(ResponseError::TooManyHeaders),
        // "HTTP/2.0" is a version we do not speak; anything else is not HTTP at all.
        Err(httparse::Error::Version) if window.trim_ascii_start().starts_with(b"HTTP/") => {
            return Err(ResponseError::UnsupportedVersion);
        }
        Err(_) => return Err(ResponseError::Malformed),
    };
    let Response {
        version,
        code,
        reason,
        headers,
    } = response;
    let version = match version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        _ => return Err(ResponseError::UnsupportedVersion),
    };
    let status = code.ok_or(ResponseError::Malformed)?;
    if !(100..=599).contains(&status) {
        return Err(ResponseError::BadStatus);
    }
    let (body, keep_alive) = frame(version, status, method, headers)?;
    Ok(Some(ResponseHead {
        version,
        status,
        reason: reason.unwrap_or(""),
        headers,
        head_len,
        body,
        keep_alive,
    }))
}

/// RFC 9112 6.3 for responses: the request method and the status first, then
/// Transfer-Encoding, then Content-Length, else the body runs to the connection's close.
fn frame(
    version: Version,
    status: u16,
    method: &str,
    headers: &[Header<'_>],
) -> Result<(ResponseBody, bool), ResponseError> {
    let mut scan = Scan::default();
    // The first framing error is kept, not returned: a response that has no body is not
    // framed by these fields, so their faults do not matter there.
    let mut fault = None;
    for h in headers {
        let name = h.name.as_bytes();
        let checked = match name.len() {
            10 if name.eq_ignore_ascii_case(b"connection") => {
                framing::connection(&mut scan, h.value);
                Ok(())
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                framing::content_length(&mut scan, h.value)
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                framing::transfer_encoding(&mut scan, h.value)
            }
            _ => Ok(()),
        };
        if let Err(e) = checked {
            fault.get_or_insert(ResponseError::from_field_rule(e));
        }
    }
    let keep_alive = match version {
        Version::Http11 => !scan.close,
        Version::Http10 => scan.keep_alive && !scan.close,
    };
    let bodiless = match status {
        101 => Some(ResponseBody::Upgrade),
        100..=199 => Some(ResponseBody::Interim),
        200..=299 if method == "CONNECT" => Some(ResponseBody::Upgrade),
        204 | 304 => Some(ResponseBody::None),
        _ if method == "HEAD" => Some(ResponseBody::None),
        _ => None,
    };
    if let Some(body) = bodiless {
        return Ok((body, keep_alive && body != ResponseBody::Upgrade));
    }
    if let Some(e) = fault {
        return Err(e);
    }
    let body = if scan.transfer_encoding {
        if version == Version::Http10 {
            return Err(ResponseError::TransferEncodingInHttp10);
        }
        if scan.content_length.is_some() {
            return Err(ResponseError::ContentLengthWithTransferEncoding);
        }
        if scan.chunked && !scan.coding_after_chunked {
            ResponseBody::Chunked
        } else {
            ResponseBody::UntilClose
        }
    } else {
        scan.content_length
            .map_or(ResponseBody::UntilClose, ResponseBody::Length)
    };
    Ok((body, keep_alive && body != ResponseBody::UntilClose))
}

#[cfg(test)]
mod tests {
    use super::ResponseBody::*;
    use super::ResponseError::*;
    use super::*;
    use crate::http1::ChunkedLimits;
    use crate::http1::chunked::{Chunk, ChunkedDecoder};
    use crate::http1::head::MAX_HEADERS_LIMIT;

    /// What one head parses to: (status, body, keep_alive, head_len), "incomplete", or an
    /// error.
    type Got = Result<Option<(u16, ResponseBody, bool, usize)>, ResponseError>;

    fn run(input: &[u8], method: &str, limits: &HeadLimits) -> Got {
        let mut storage = [const { MaybeUninit::uninit() }; MAX_HEADERS_LIMIT];
        parse_response(input, method, &mut storage, limits)
            .map(|head| head.map(|h| (h.status, h.body, h.keep_alive, h.head_len)))
    }

    fn check(input: &str, method: &str, want: Got) {
        let limits = HeadLimits::default();
        assert_eq!(
            run(input.as_bytes(), method, &limits),
            want,
            "input {input:?}"
        );
        // Every strict prefix of a complete head is incomplete, never an error.
        if let Ok(Some((.., head_len))) = want {
            for cut in 0..head_len {
                assert_eq!(
                    run(&input.as_bytes()[..cut], method, &limits),
                    Ok(Option::None),
                    "{input:?} cut at {cut}"
                );
            }
        }
    }

    /// A table case: the input (exactly one head), the method, and the outcome.
    type Case = (
        &'static str,
        &'static str,
        Result<(u16, ResponseBody, bool), ResponseError>,
    );

    #[test]
    fn framing_table() {
        let cases: &[Case] = &[
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                "GET",
                Ok((200, Length(5), true)),
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\n\r\n",
                "GET",
                Ok((200, Length(5), true)),
            ),
            (
                "HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n",
                "GET",
                Ok((200, Chunked, true)),
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                "GET",
                Ok((200, Chunked, true)),
            ),
            // chunked not final in a response: read until close (RFC 9112 6.3 rule 4).
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                "GET",
                Ok((200, UntilClose, false)),
            ),
            (
                "HTTP/1.1 200 OK\r\n\r\n",
                "GET",
                Ok((200, UntilClose, false)),
            ),
            (
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                "GET",
                Ok((404, Length(0), false)),
            ),
            (
                "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n",
                "GET",
                Ok((200, Length(2), false)),
            ),
            (
                "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n",
                "GET",
                Ok((200, Length(2), true)),
            ),
            // Bodiless by method or status, whatever the fields say.
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n",
                "HEAD",
                Ok((200, None, true)),
            ),
            (
                "HTTP/1.1 204 No Content\r\nContent-Length: x\r\n\r\n",
                "GET",
                Ok((204, None, true)),
            ),
            (
                "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
                "GET",
                Ok((304, None, true)),
            ),
            (
                "HTTP/1.1 100 Continue\r\n\r\n",
                "POST",
                Ok((100, Interim, true)),
            ),
            (
                "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
                "GET",
                Ok((103, Interim, true)),
            ),
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
                "GET",
                Ok((101, Upgrade, false)),
            ),
            (
                "HTTP/1.1 200 OK\r\n\r\n",
                "CONNECT",
                Ok((200, Upgrade, false)),
            ),
            // Errors.
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                "GET",
                Err(ContentLengthWithTransferEncoding),
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                "GET",
                Err(ConflictingContentLength),
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                "GET",
                Err(BadContentLength),
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
                "GET",
                Err(BadContentLength),
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n\r\n",
                "GET",
                Err(BadTransferEncoding),
            ),
            (
                "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                "GET",
                Err(TransferEncodingInHttp10),
            ),
            ("HTTP/1.1 099 Low\r\n\r\n", "GET", Err(BadStatus)),
            ("HTTP/1.1 600 High\r\n\r\n", "GET", Err(BadStatus)),
            ("HTTP/2.0 200 OK\r\n\r\n", "GET", Err(UnsupportedVersion)),
            ("garbage\r\n\r\n", "GET", Err(Malformed)),
            ("HTTP/1.1 2OO OK\r\n\r\n", "GET", Err(Malformed)),
            (
                "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
                "GET",
                Err(Malformed),
            ),
        ];
        for &(input, method, want) in cases {
            let want = want
                .map(|(status, body, keep_alive)| Some((status, body, keep_alive, input.len())));
            check(input, method, want);
        }
    }

    #[test]
    fn limits() {
        let limits = HeadLimits {
            max_head_bytes: 32,
            max_headers: 1,
        };
        let long = b"HTTP/1.1 200 OK\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        assert_eq!(run(long, "GET", &limits), Err(HeadTooLarge));
        assert_eq!(run(&long[..31], "GET", &limits), Ok(Option::None));
        let many = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n";
        assert_eq!(run(many, "GET", &limits), Err(TooManyHeaders));
    }

    #[test]
    fn borrows_reason_and_headers() {
        let input = b"HTTP/1.1 418 I'm a teapot\r\nX-A: b \r\nContent-Length: 0\r\n\r\nnext";
        let mut storage = [const { MaybeUninit::uninit() }; 4];
        let head = parse_response(input, "GET", &mut storage, &HeadLimits::default())
            .expect("parses")
            .expect("complete");
        assert_eq!((head.version, head.status), (Version::Http11, 418));
        assert_eq!(head.reason, "I'm a teapot");
        assert_eq!(head.headers[0].name, "X-A");
        assert_eq!(head.headers[0].value, b"b");
        assert_eq!(&input[head.head_len..], b"next");
    }

    /// A minimal client over the parser: reads every response in `pieces` (a byte stream
    /// split anywhere), answering `methods` in order; returns (status, body) per response.
    fn read_all(pieces: &[&[u8]], methods: &[&str]) -> Vec<(u16, Vec<u8>)> {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        let mut state: Option<(u16, ResponseBody, Vec<u8>, u64)> = Option::None;
        let mut decoder = ChunkedDecoder::new(ChunkedLimits::default());
        for piece in pieces {
            buf.extend_from_slice(piece);
            loop {
                let Some((status, body, data, left)) = state.as_mut() else {
                    if out.len() == methods.len() {
                        break;
                    }
                    let mut storage = [const { MaybeUninit::uninit() }; 16];
                    let method = methods[out.len()];
                    let limits = HeadLimits::default();
                    let Some(head) =
                        parse_response(&buf, method, &mut storage, &limits).expect("valid head")
                    else {
                        break;
                    };
                    let (status, body, len) = (head.status, head.body, head.head_len);
                    buf.drain(..len);
                    if body != Interim {
                        let left = if let Length(n) = body { n } else { 0 };
                        state = Some((status, body, Vec::new(), left));
                    }
                    continue;
                };
                let done = match *body {
                    Length(_) if buf.is_empty() && *left > 0 => break,
                    Length(_) => {
                        let n = buf.len().min(*left as usize);
                        data.extend(buf.drain(..n));
                        *left -= n as u64;
                        *left == 0
                    }
                    Chunked => match decoder.decode(&buf).expect("valid chunked body") {
                        (n, Some(Chunk::Data(d))) => {
                            data.extend_from_slice(d);
                            buf.drain(..n);
                            false
                        }
                        (n, Some(Chunk::End)) => {
                            buf.drain(..n);
                            decoder.reset();
                            true
                        }
                        (n, Some(_)) => {
                            buf.drain(..n);
                            false
                        }
                        (n, Option::None) => {
                            buf.drain(..n);
                            break;
                        }
                    },
                    _ => true,
                };
                if !done {
                    continue;
                }
                out.push((*status, std::mem::take(data)));
                state = Option::None;
            }
        }
        out
    }

    #[test]
    fn pipelined_responses_split_anywhere_read_the_same() {
        let stream: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n\
            HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello\
            HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n\
            HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n\
            HTTP/1.1 204 No Content\r\n\r\n\
            HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno";
        let methods = ["POST", "HEAD", "GET", "GET", "GET"];
        let want: Vec<(u16, Vec<u8>)> = vec![
            (200, b"hello".to_vec()),
            (200, Vec::new()),
            (201, b"abcde".to_vec()),
            (204, Vec::new()),
            (404, b"no".to_vec()),
        ];
        assert_eq!(read_all(&[stream], &methods), want);
        for cut in 0..stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(read_all(&[a, b], &methods), want, "split at {cut}");
        }
        let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(read_all(&bytewise, &methods), want, "byte by byte");
    }
}
