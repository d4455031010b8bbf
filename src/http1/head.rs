//! Request head parsing: finds where a request head ends in bytes the caller has buffered
//! and borrows the request line and header fields out of that buffer.
//!
//! This file must never copy or allocate (header storage is the caller's, possibly
//! uninitialised), never interpret field semantics (that is `framing`'s job), and never
//! read past `HeadLimits::max_head_bytes` of the buffer.
//!
//! Line endings: a bare LF is accepted wherever CRLF ends a line of the head, as RFC 9112
//! section 2.2 allows a recipient to do (httparse does so). It is safe here because a bare
//! CR is still rejected, so no byte sequence can be read as one line by us and as two lines
//! by a peer that only splits on CRLF. The chunked body decoder is stricter (see `chunked`).
//! Empty lines before the request line are skipped (RFC 9112 2.2), within the head limit.

use std::mem::MaybeUninit;

use httparse::{Request, Status};

use super::{HeadLimits, Header, ParseError, Version};

/// Upper bound for HeadLimits::max_headers; callers size their header storage with it.
pub const MAX_HEADERS_LIMIT: usize = 256;

/// A complete request head, borrowing from the caller's buffer (`'b`) and header storage
/// (`'h`).
#[derive(Debug, PartialEq, Eq)]
pub struct ParsedHead<'h, 'b> {
    /// The method token, e.g. `GET`.
    pub method: &'b str,
    /// The request target exactly as sent, e.g. `/index.html?x=1`.
    pub target: &'b str,
    /// The protocol version.
    pub version: Version,
    /// The header field lines in order, values without surrounding whitespace.
    pub headers: &'h [Header<'b>],
    /// Bytes of the head (leading empty lines included); the body starts at this offset.
    pub head_len: usize,
}

/// Ok(None): the head is not complete yet (and still within the size limit).
///
/// At most `limits.max_headers.min(storage.len())` field lines are accepted.
///
/// # Errors
///
/// [`ParseError::HeadTooLarge`] / [`ParseError::TooManyHeaders`] when a limit is exceeded,
/// [`ParseError::UnsupportedVersion`] for a well-formed version other than 1.0 and 1.1, and
/// [`ParseError::BadRequestLine`] / [`ParseError::BadHeader`] for malformed syntax.
pub fn parse_head<'h, 'b>(
    buf: &'b [u8],
    storage: &'h mut [MaybeUninit<Header<'b>>],
    limits: &HeadLimits,
) -> Result<Option<ParsedHead<'h, 'b>>, ParseError> {
    // Parsing only the window makes a complete head longer than the limit impossible and
    // bounds the work a peer can make us do per call.
    let window = &buf[..buf.len().min(limits.max_head_bytes)];
    let max_headers = limits.max_headers.min(storage.len());
    let mut req = Request::new(&mut []);
    match req.parse_with_uninit_headers(window, &mut storage[..max_headers]) {
        Ok(Status::Complete(head_len)) => {
            let Request {
                method,
                path,
                version,
                headers,
            } = req;
            let (Some(method), Some(target)) = (method, path) else {
                return Err(ParseError::BadRequestLine);
            };
            let version = match version {
                Some(0) => Version::Http10,
                Some(1) => Version::Http11,
                _ => return Err(ParseError::UnsupportedVersion),
            };
            Ok(Some(ParsedHead {
                method,
                target,
                version,
                headers,
                head_len,
            }))
        }
        Ok(Status::Partial) if buf.len() >= limits.max_head_bytes => Err(too_large(window)),
        Ok(Status::Partial) => Ok(None),
        // `HTTP/1.2` with its line end still to come: wait, then answer it as
        // [`downgrade_minor_version`] says.
        Err(httparse::Error::Version)
            if buf.len() < limits.max_head_bytes
                && newer_minor_version(window).is_some_and(|at| at + 1 == window.len()) =>
        {
            Ok(None)
        }
        Err(e) => Err(map_error(e, window)),
    }
}

/// RFC 9110 section 2.5: a request of a later HTTP/1 minor version (`HTTP/1.2` to
/// `HTTP/1.9`) is processed as if it were of the highest minor version the server
/// supports, HTTP/1.1. httparse knows only 1.0 and 1.1, so a caller whose
/// [`parse_head`] answered [`ParseError::UnsupportedVersion`] calls this on the same bytes:
/// it rewrites such a complete request line's version to `HTTP/1.1` in place and returns
/// true (parse again); any other version is left alone (false: 505 stands).
pub fn downgrade_minor_version(buf: &mut [u8]) -> bool {
    match newer_minor_version(buf) {
        Some(at) if at + 1 < buf.len() => {
            buf[at] = b'1';
            true
        }
        _ => false,
    }
}

/// Where the minor digit is when the request line ends with ` HTTP/1.2` to ` HTTP/1.9`
/// (at its CR or LF, or at the end of `buf` when the line is not complete yet).
fn newer_minor_version(buf: &[u8]) -> Option<usize> {
    let start = leading_empty_lines(buf);
    let end = buf[start..]
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .map_or(buf.len(), |n| start + n);
    let line = &buf[start..end];
    let version = line.get(line.len().checked_sub(9)?..)?;
    (version.starts_with(b" HTTP/1.") && matches!(version[8], b'2'..=b'9')).then_some(end - 1)
}

/// Which limit a head that filled the whole window broke: the request target's (414, RFC
/// 9112 3), when the request line is still inside its target (a method and a space, then no
/// other space or line end), else the head's (431).
fn too_large(window: &[u8]) -> ParseError {
    let line = &window[leading_empty_lines(window)..];
    let in_target = match line.iter().position(|&b| b == b' ') {
        Some(space) => !line[space + 1..]
            .iter()
            .any(|&b| b == b' ' || b == b'\r' || b == b'\n'),
        None => false,
    };
    if in_target {
        ParseError::TargetTooLong
    } else {
        ParseError::HeadTooLarge
    }
}

/// Turns an httparse error into ours; httparse does not say where it failed, so the rare
/// ambiguous cases look at the bytes again (error path only).
fn map_error(e: httparse::Error, window: &[u8]) -> ParseError {
    match e {
        httparse::Error::TooManyHeaders => ParseError::TooManyHeaders,
        httparse::Error::HeaderName | httparse::Error::HeaderValue => ParseError::BadHeader,
        httparse::Error::Token | httparse::Error::Status => ParseError::BadRequestLine,
        httparse::Error::Version => version_error(window),
        httparse::Error::NewLine if request_line_is_valid(window) => ParseError::BadHeader,
        httparse::Error::NewLine => ParseError::BadRequestLine,
    }
}

/// `HTTP/2.0` or `HTTP/1.2` deserve 505, but httparse also says "version" for garbage such
/// as `http/1.1` or a target containing a space, which is a plain 400.
fn version_error(window: &[u8]) -> ParseError {
    let line = &window[leading_empty_lines(window)..];
    let line = line
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .map_or(line, |end| &line[..end]);
    let mut parts = line.splitn(3, |&b| b == b' ');
    let version = parts.nth(2).unwrap_or_default();
    let looks_like_http = version.len() >= 6
        && version.starts_with(b"HTTP/")
        && version[5].is_ascii_digit()
        && !version.contains(&b' ');
    if looks_like_http {
        ParseError::UnsupportedVersion
    } else {
        ParseError::BadRequestLine
    }
}

/// Whether the first line after any leading empty lines is a complete, valid request line,
/// which places a line-ending error in the header section instead.
fn request_line_is_valid(window: &[u8]) -> bool {
    let start = leading_empty_lines(window);
    let Some(lf) = window[start..].iter().position(|&b| b == b'\n') else {
        return false;
    };
    let mut req = Request::new(&mut []);
    // With no header storage and nothing after the line, a valid line parses as Partial.
    matches!(
        req.parse_with_uninit_headers(&window[..start + lf + 1], &mut []),
        Ok(Status::Partial)
    )
}

fn leading_empty_lines(buf: &[u8]) -> usize {
    let mut i = 0;
    loop {
        match &buf[i..] {
            [b'\r', b'\n', ..] => i += 2,
            [b'\n', ..] => i += 1,
            _ => return i,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::ParseError::*;
    use crate::http1::Version::*;

    /// What a case must produce: the head's shape, "incomplete", or an error.
    #[derive(Clone, Debug, PartialEq)]
    enum Want {
        Head {
            method: &'static str,
            target: &'static str,
            version: Version,
            headers: &'static [(&'static str, &'static [u8])],
            head_len: usize,
        },
        Incomplete,
        Fail(ParseError),
    }
    use Want::*;

    fn run(input: &[u8], limits: &HeadLimits) -> Want {
        let mut storage = [const { MaybeUninit::uninit() }; MAX_HEADERS_LIMIT];
        match parse_head(input, &mut storage, limits) {
            Err(e) => Fail(e),
            Ok(None) => Incomplete,
            Ok(Some(h)) => {
                // Leak is fine in tests: it lets the result be compared with 'static data.
                let headers: Vec<(&'static str, &'static [u8])> = h
                    .headers
                    .iter()
                    .map(|hd| {
                        let n: &'static str = Box::leak(hd.name.to_owned().into_boxed_str());
                        let v: &'static [u8] = Box::leak(hd.value.to_vec().into_boxed_slice());
                        (n, v)
                    })
                    .collect();
                Head {
                    method: Box::leak(h.method.to_owned().into_boxed_str()),
                    target: Box::leak(h.target.to_owned().into_boxed_str()),
                    version: h.version,
                    headers: Box::leak(headers.into_boxed_slice()),
                    head_len: h.head_len,
                }
            }
        }
    }

    fn check(input: &[u8], limits: &HeadLimits, want: Want) {
        let got = run(input, limits);
        assert_eq!(got, want, "input {:?}", String::from_utf8_lossy(input));
        // A complete head must be reported incomplete (never as an error) for every
        // strict prefix, so a caller reading in small pieces sees the same outcome.
        if let Head { head_len, .. } = want {
            for cut in 0..head_len {
                assert_eq!(
                    run(&input[..cut], limits),
                    Incomplete,
                    "prefix {cut} of {:?}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    fn get_host(head_len: usize) -> Want {
        Head {
            method: "GET",
            target: "/",
            version: Http11,
            headers: &[("Host", b"a")],
            head_len,
        }
    }

    #[test]
    fn valid_heads() {
        let d = HeadLimits::default();
        let cases: &[(&[u8], Want)] = &[
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", get_host(27)),
            // The body (or the next request) is not part of the head.
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody", get_host(27)),
            // RFC 9112 2.2: empty lines before the request line are ignored.
            (b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", get_host(29)),
            (b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", get_host(31)),
            (b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", get_host(28)),
            // Bare LF line endings are accepted (documented decision).
            (b"GET / HTTP/1.1\nHost: a\n\n", get_host(24)),
            // OWS around the value is not part of it.
            (b"GET / HTTP/1.1\r\nHost: \t a \t\r\n\r\n", get_host(31)),
            (
                b"POST /x?y=1 HTTP/1.0\r\nContent-Length: 3\r\nX-E:\r\n\r\nabc",
                Head {
                    method: "POST",
                    target: "/x?y=1",
                    version: Http10,
                    headers: &[("Content-Length", b"3"), ("X-E", b"")],
                    head_len: 49,
                },
            ),
            (
                b"OPTIONS * HTTP/1.1\r\nHost: a\r\nX: \xff\x80\r\n\r\n",
                Head {
                    method: "OPTIONS",
                    target: "*",
                    version: Http11,
                    headers: &[("Host", b"a"), ("X", b"\xff\x80")],
                    head_len: 38,
                },
            ),
            (
                b"GET / HTTP/1.0\r\n\r\n",
                Head {
                    method: "GET",
                    target: "/",
                    version: Http10,
                    headers: &[],
                    head_len: 18,
                },
            ),
        ];
        for (input, want) in cases {
            check(input, &d, want.clone());
        }
    }

    #[test]
    fn invalid_heads() {
        let d = HeadLimits::default();
        let cases: &[(&[u8], ParseError)] = &[
            // Versions.
            (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", UnsupportedVersion),
            (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", UnsupportedVersion),
            (b"GET / HTTP/2\r\n", UnsupportedVersion),
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", UnsupportedVersion),
            (b"GET / http/1.1\r\nHost: a\r\n\r\n", BadRequestLine),
            (b"GET / FOO\r\n\r\n", BadRequestLine),
            (b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", BadRequestLine),
            // Request line shape.
            (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", BadRequestLine),
            (b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", BadRequestLine),
            (b"GET / HTTP/1.1\rHost: a\r\n\r\n", BadRequestLine),
            (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", BadRequestLine),
            (b" GET / HTTP/1.1\r\nHost: a\r\n\r\n", BadRequestLine),
            (b"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", BadRequestLine),
            (b"\r\rGET / HTTP/1.1\r\n\r\n", BadRequestLine),
            // Field syntax: whitespace between name and colon (RFC 9112 5.1).
            (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", BadHeader),
            (b"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", BadHeader),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
                BadHeader,
            ),
            // obs-fold (RFC 9112 5.2) and whitespace before the first field line (2.2).
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n",
                BadHeader,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n",
                BadHeader,
            ),
            (b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", BadHeader),
            // NUL, bare CR and other controls in values (RFC 9110 5.5).
            (b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n", BadHeader),
            (b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", BadHeader),
            (b"GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", BadHeader),
            (b"GET / HTTP/1.1\r\nX: \x0bchunked\r\n\r\n", BadHeader),
            (b"GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", BadHeader),
            // Bad names and a bad blank line.
            (b"GET / HTTP/1.1\r\n: a\r\n\r\n", BadHeader),
            (b"GET / HTTP/1.1\r\nX(Y: a\r\n\r\n", BadHeader),
            (b"GET / HTTP/1.1\r\nNoColon\r\n\r\n", BadHeader),
            (b"GET / HTTP/1.1\r\nHost: a\r\n\rX", BadHeader),
        ];
        for &(input, want) in cases {
            check(input, &d, Fail(want));
        }
    }

    #[test]
    fn header_count_limit() {
        let mut req = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..101 {
            req.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        let d = HeadLimits::default();
        assert_eq!(run(&req, &d), Fail(TooManyHeaders));
        let more = HeadLimits {
            max_headers: 101,
            ..d
        };
        assert!(matches!(run(&req, &more), Head { head_len, .. } if head_len == req.len()));

        // The caller's storage caps the limit too.
        let mut small = [const { MaybeUninit::uninit() }; 2];
        let three = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert_eq!(parse_head(three, &mut small, &d), Err(TooManyHeaders));
        let two = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n";
        let head = parse_head(two, &mut small, &d);
        assert!(matches!(head, Ok(Some(ParsedHead { headers, .. })) if headers.len() == 2));
    }

    #[test]
    fn head_size_limit() {
        let req: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"; // 27 bytes
        let at = |n| HeadLimits {
            max_head_bytes: n,
            max_headers: 100,
        };
        // Exactly at the limit is fine, even with a body after it.
        assert_eq!(run(req, &at(27)), get_host(27));
        assert_eq!(
            run(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nXXXX", &at(27)),
            get_host(27)
        );
        // One byte over: an error whether or not the rest has arrived.
        assert_eq!(run(req, &at(26)), Fail(HeadTooLarge));
        assert_eq!(run(&req[..26], &at(26)), Fail(HeadTooLarge));
        assert_eq!(run(&req[..25], &at(26)), Incomplete);
        // Leading empty lines count towards the limit.
        assert_eq!(run(b"\r\n\r\n\r\n\r\n", &at(8)), Fail(HeadTooLarge));
        // A large, never-ending head with the default limit.
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(16 * 1024 - 1, b'a');
        assert_eq!(run(&big, &HeadLimits::default()), Incomplete);
        big.push(b'a');
        assert_eq!(run(&big, &HeadLimits::default()), Fail(HeadTooLarge));
        // Errors beyond the limit are not looked at: the size is the answer.
        big.extend_from_slice(b"\x00\r\n\r\n");
        assert_eq!(run(&big, &HeadLimits::default()), Fail(HeadTooLarge));
    }

    /// RFC 9112 section 3: a target longer than the server parses is 414; a long header
    /// section stays 431 (RFC 6585 section 5).
    #[test]
    fn a_target_over_the_limit_is_414_a_header_431() {
        let limits = HeadLimits::default();
        let mut long_target = b"GET /".to_vec();
        long_target.resize(16 * 1024, b'a');
        assert_eq!(run(&long_target, &limits), Fail(TargetTooLong));
        let mut after_empty_lines = b"\r\n".to_vec();
        after_empty_lines.extend_from_slice(&long_target);
        assert_eq!(run(&after_empty_lines, &limits), Fail(TargetTooLong));
        // The target ended (a space, or the line ended): not a 414.
        let mut long_version = b"GET /a ".to_vec();
        long_version.resize(16 * 1024, b'H');
        assert_eq!(run(&long_version, &limits), Fail(BadRequestLine));
        let mut long_header = b"GET /a HTTP/1.1\r\nX: ".to_vec();
        long_header.resize(16 * 1024, b'a');
        assert_eq!(run(&long_header, &limits), Fail(HeadTooLarge));
        // No method and space yet: nothing says it is a target.
        assert_eq!(run(&[b'G'; 16 * 1024], &limits), Fail(HeadTooLarge));
    }

    /// RFC 9110 section 2.5: HTTP/1.2 to 1.9 are served as HTTP/1.1; other versions stay 505.
    #[test]
    fn a_newer_minor_version_is_served_as_http_1_1() {
        let d = HeadLimits::default();
        let mut req = b"GET /a HTTP/1.7\r\nHost: a\r\n\r\n".to_vec();
        assert_eq!(run(&req, &d), Fail(UnsupportedVersion));
        // Split right after the digit: wait for the line end rather than answer.
        assert_eq!(run(&req[..15], &d), Incomplete);
        assert!(downgrade_minor_version(&mut req));
        assert_eq!(&req[..17], b"GET /a HTTP/1.1\r\n");
        assert!(matches!(
            run(&req, &d),
            Head {
                version: Http11,
                ..
            }
        ));
        let mut lf_only = b"\r\nGET /a HTTP/1.2\nHost: a\n\n".to_vec();
        assert!(downgrade_minor_version(&mut lf_only));
        assert!(matches!(
            run(&lf_only, &d),
            Head {
                version: Http11,
                ..
            }
        ));
        for other in [
            &b"GET /a HTTP/2.0\r\nHost: a\r\n\r\n"[..],
            b"GET /a HTTP/1.10\r\nHost: a\r\n\r\n",
            b"GET /a HTTP/0.9\r\nHost: a\r\n\r\n",
            b"GET /a HTTP/1.2",
        ] {
            let mut copy = other.to_vec();
            assert!(!downgrade_minor_version(&mut copy), "{other:?}");
            assert_eq!(copy, other);
        }
        // Not `HTTP/` DIGIT "." DIGIT (RFC 9112 2.3): malformed, not another version.
        assert_eq!(
            run(b"GET /a HTTP/1.10\r\nHost: a\r\n\r\n", &d),
            Fail(BadRequestLine)
        );
    }

    #[test]
    fn incomplete_heads() {
        let d = HeadLimits::default();
        for input in [
            &b""[..],
            b"\r\n",
            b"GET",
            b"GET / HTTP/1.",
            b"GET / HTTP/1.1\r\nHost: a\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r",
        ] {
            assert_eq!(run(input, &d), Incomplete, "{input:?}");
        }
    }
}
