//! Request framing: decides from the header fields how the body is delimited, whether the
//! connection may persist, and whether the client waits for `100 Continue`.
//!
//! This file must never guess: any ambiguity in framing (the root of request smuggling) is
//! an error, never a "best effort" choice. It must never allocate, and it reads each header
//! line once.

use super::{BodyKind, Header, ParseError, Version};

/// What the connection layer needs to know about a request before reading its body.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MessageInfo {
    /// How the body is delimited.
    pub body: BodyKind,
    /// Whether the connection may carry another request after this one.
    pub keep_alive: bool,
    /// Whether the client waits for `100 Continue` before sending the body.
    pub expect_continue: bool,
}

/// Facts gathered over all field lines; the verdict needs all of them, because RFC 9112
/// treats repeated lines of one field as one comma-separated list.
#[derive(Default)]
struct Scan {
    content_length: Option<u64>,
    transfer_encoding: bool,
    chunked: bool,
    coding_before_chunked: bool,
    coding_after_chunked: bool,
    close: bool,
    keep_alive: bool,
    continue_100: bool,
    unknown_expectation: bool,
    host: bool,
}

/// One pass over the headers: body framing (RFC 9112 6.1-6.3), Connection, Expect, Host.
///
/// # Errors
///
/// The first framing error found (Content-Length / Transfer-Encoding rules), then Host
/// errors, then [`ParseError::UnknownExpectation`]: framing errors win so that a request
/// that is both mis-framed and has an odd expectation still gets the answer that closes it.
pub fn analyze(version: Version, headers: &[Header<'_>]) -> Result<MessageInfo, ParseError> {
    let mut scan = Scan::default();
    for h in headers {
        let name = h.name.as_bytes();
        // The length test first keeps the common case (fields we do not care about) cheap.
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => host(&mut scan, h.value)?,
            6 if name.eq_ignore_ascii_case(b"expect") => expect(&mut scan, h.value),
            10 if name.eq_ignore_ascii_case(b"connection") => connection(&mut scan, h.value),
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                content_length(&mut scan, h.value)?
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                transfer_encoding(&mut scan, h.value)?
            }
            _ => {}
        }
    }
    let body = body_kind(version, &scan)?;
    if version == Version::Http11 && !scan.host {
        return Err(ParseError::MissingHost);
    }
    if scan.unknown_expectation {
        return Err(ParseError::UnknownExpectation);
    }
    let keep_alive = match version {
        Version::Http11 => !scan.close,
        Version::Http10 => scan.keep_alive && !scan.close,
    };
    Ok(MessageInfo {
        body,
        keep_alive,
        // RFC 9110 10.1.1: an HTTP/1.0 client cannot be waiting for an interim response.
        expect_continue: version == Version::Http11 && scan.continue_100,
    })
}

/// RFC 9112 6.3, for requests: Transfer-Encoding decides if present, then Content-Length,
/// and otherwise there is no body.
fn body_kind(version: Version, scan: &Scan) -> Result<BodyKind, ParseError> {
    if !scan.transfer_encoding {
        return Ok(scan.content_length.map_or(BodyKind::None, BodyKind::Length));
    }
    if version == Version::Http10 {
        return Err(ParseError::TransferEncodingInHttp10);
    }
    if scan.content_length.is_some() {
        return Err(ParseError::ContentLengthWithTransferEncoding);
    }
    if !scan.chunked || scan.coding_after_chunked {
        return Err(ParseError::ChunkedNotFinal);
    }
    if scan.coding_before_chunked {
        return Err(ParseError::UnsupportedTransferCoding);
    }
    Ok(BodyKind::Chunked)
}

fn transfer_encoding(scan: &mut Scan, value: &[u8]) -> Result<(), ParseError> {
    scan.transfer_encoding = true;
    let mut any = false;
    for coding in list_elements(value) {
        // Transfer parameters are refused: no coding we accept defines one, and a
        // parameter on `chunked` would be a disagreement waiting to happen.
        if !is_token(coding) {
            return Err(ParseError::BadHeader);
        }
        any = true;
        if scan.chunked {
            // Anything after `chunked`, including a second `chunked`, means the body end
            // cannot be found (RFC 9112 6.3 rule 4).
            scan.coding_after_chunked = true;
        } else if coding.eq_ignore_ascii_case(b"chunked") {
            scan.chunked = true;
        } else {
            scan.coding_before_chunked = true;
        }
    }
    if any {
        Ok(())
    } else {
        Err(ParseError::BadHeader)
    }
}

fn content_length(scan: &mut Scan, value: &[u8]) -> Result<(), ParseError> {
    let mut any = false;
    for element in list_elements(value) {
        let n = parse_decimal(element).ok_or(ParseError::BadContentLength)?;
        // RFC 9112 6.3 rule 5: identical repeats may be folded, differing ones are fatal.
        match scan.content_length {
            Some(prev) if prev != n => return Err(ParseError::ConflictingContentLength),
            _ => scan.content_length = Some(n),
        }
        any = true;
    }
    if any {
        Ok(())
    } else {
        Err(ParseError::BadContentLength)
    }
}

fn connection(scan: &mut Scan, value: &[u8]) {
    for option in list_elements(value) {
        if option.eq_ignore_ascii_case(b"close") {
            scan.close = true;
        } else if option.eq_ignore_ascii_case(b"keep-alive") {
            scan.keep_alive = true;
        }
    }
}

fn expect(scan: &mut Scan, value: &[u8]) {
    for expectation in list_elements(value) {
        if expectation.eq_ignore_ascii_case(b"100-continue") {
            scan.continue_100 = true;
        } else {
            scan.unknown_expectation = true;
        }
    }
}

fn host(scan: &mut Scan, value: &[u8]) -> Result<(), ParseError> {
    if scan.host {
        return Err(ParseError::DuplicateHost);
    }
    scan.host = true;
    // An empty value is allowed (RFC 9110 7.2, no authority); anything outside the
    // uri-host / port alphabet means a peer and we could disagree on the target.
    if value.iter().all(|&b| is_host_byte(b)) {
        Ok(())
    } else {
        Err(ParseError::BadHost)
    }
}

/// `#element` list members (RFC 9110 5.6.1): comma-separated, OWS-trimmed, empties skipped.
fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// `1*DIGIT` into a u64; `None` on any other byte or on overflow.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let d = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// RFC 9110 5.6.2 `token`.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// RFC 3986 reg-name / IP-literal / port bytes, as allowed in `Host`.
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'%'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
        )
}

#[cfg(test)]
mod tests {
    use std::mem::MaybeUninit;

    use super::*;
    use crate::http1::ParseError::*;
    use crate::http1::Version::*;
    use crate::http1::head::{MAX_HEADERS_LIMIT, parse_head};
    use crate::http1::{BodyKind, HeadLimits};

    const fn info(body: BodyKind, keep_alive: bool, expect_continue: bool) -> MessageInfo {
        MessageInfo {
            body,
            keep_alive,
            expect_continue,
        }
    }
    const PLAIN: MessageInfo = info(BodyKind::None, true, false);
    const CHUNKED: MessageInfo = info(BodyKind::Chunked, true, false);
    const fn len(n: u64) -> MessageInfo {
        info(BodyKind::Length(n), true, false)
    }

    /// Runs `analyze` on header lines built from `(name, value)` pairs.
    fn run(version: Version, fields: &[(&str, &[u8])]) -> Result<MessageInfo, ParseError> {
        let headers: Vec<Header<'_>> = fields
            .iter()
            .map(|&(name, value)| Header { name, value })
            .collect();
        analyze(version, &headers)
    }

    #[test]
    fn analyze_table() {
        type Case = (
            Version,
            &'static [(&'static str, &'static [u8])],
            Result<MessageInfo, ParseError>,
        );
        const H: (&str, &[u8]) = ("Host", b"example.com");
        let cases: &[Case] = &[
            // No body indications.
            (Http11, &[H], Ok(PLAIN)),
            (Http10, &[], Ok(info(BodyKind::None, false, false))),
            // Content-Length.
            (Http11, &[H, ("Content-Length", b"5")], Ok(len(5))),
            (Http11, &[H, ("content-length", b"0")], Ok(len(0))),
            (Http11, &[H, ("CONTENT-LENGTH", b"005")], Ok(len(5))),
            (Http11, &[H, ("Content-Length", b"5, 5")], Ok(len(5))),
            (Http11, &[H, ("Content-Length", b"5,,5 ,")], Ok(len(5))),
            (
                Http11,
                &[H, ("Content-Length", b"5"), ("Content-Length", b"5")],
                Ok(len(5)),
            ),
            (
                Http11,
                &[H, ("Content-Length", b"18446744073709551615")],
                Ok(len(u64::MAX)),
            ),
            (
                Http11,
                &[H, ("Content-Length", b"00000000000000000000000000007")],
                Ok(len(7)),
            ),
            (
                Http11,
                &[H, ("Content-Length", b"18446744073709551616")],
                Err(BadContentLength),
            ),
            (
                Http11,
                &[H, ("Content-Length", b"99999999999999999999999")],
                Err(BadContentLength),
            ),
            (
                Http11,
                &[H, ("Content-Length", b"+5")],
                Err(BadContentLength),
            ),
            (
                Http11,
                &[H, ("Content-Length", b"-1")],
                Err(BadContentLength),
            ),
            (
                Http11,
                &[H, ("Content-Length", b"0x5")],
                Err(BadContentLength),
            ),
            (
                Http11,
                &[H, ("Content-Length", b"1 2")],
                Err(BadContentLength),
            ),
            (
                Http11,
                &[H, ("Content-Length", b"5.0")],
                Err(BadContentLength),
            ),
            (Http11, &[H, ("Content-Length", b"")], Err(BadContentLength)),
            (
                Http11,
                &[H, ("Content-Length", b" , ")],
                Err(BadContentLength),
            ),
            (
                Http11,
                &[H, ("Content-Length", b"\"5\"")],
                Err(BadContentLength),
            ),
            (
                Http11,
                &[H, ("Content-Length", b"5, 6")],
                Err(ConflictingContentLength),
            ),
            (
                Http11,
                &[H, ("Content-Length", b"5"), ("Content-Length", b"6")],
                Err(ConflictingContentLength),
            ),
            (
                Http11,
                &[H, ("Content-Length", b"5"), ("Content-Length", b"x")],
                Err(BadContentLength),
            ),
            (
                Http10,
                &[("Content-Length", b"3")],
                Ok(info(BodyKind::Length(3), false, false)),
            ),
            // Transfer-Encoding.
            (Http11, &[H, ("Transfer-Encoding", b"chunked")], Ok(CHUNKED)),
            (Http11, &[H, ("transfer-encoding", b"ChUnKeD")], Ok(CHUNKED)),
            (
                Http11,
                &[H, ("Transfer-Encoding", b" , chunked ,")],
                Ok(CHUNKED),
            ),
            (
                Http11,
                &[H, ("Transfer-Encoding", b"chunked, identity")],
                Err(ChunkedNotFinal),
            ),
            (
                Http11,
                &[H, ("Transfer-Encoding", b"chunked, chunked")],
                Err(ChunkedNotFinal),
            ),
            (
                Http11,
                &[
                    H,
                    ("Transfer-Encoding", b"chunked"),
                    ("Transfer-Encoding", b"chunked"),
                ],
                Err(ChunkedNotFinal),
            ),
            (
                Http11,
                &[
                    H,
                    ("Transfer-Encoding", b"chunked"),
                    ("Transfer-Encoding", b"gzip"),
                ],
                Err(ChunkedNotFinal),
            ),
            (
                Http11,
                &[H, ("Transfer-Encoding", b"gzip")],
                Err(ChunkedNotFinal),
            ),
            (
                Http11,
                &[H, ("Transfer-Encoding", b"identity")],
                Err(ChunkedNotFinal),
            ),
            (
                Http11,
                &[H, ("Transfer-Encoding", b"chunkedx")],
                Err(ChunkedNotFinal),
            ),
            (
                Http11,
                &[H, ("Transfer-Encoding", b"gzip, chunked")],
                Err(UnsupportedTransferCoding),
            ),
            (
                Http11,
                &[H, ("Transfer-Encoding", b"deflate,chunked")],
                Err(UnsupportedTransferCoding),
            ),
            (
                Http11,
                &[H, ("Transfer-Encoding", b"identity, chunked")],
                Err(UnsupportedTransferCoding),
            ),
            (
                Http11,
                &[
                    H,
                    ("Transfer-Encoding", b"foo"),
                    ("Transfer-Encoding", b"chunked"),
                ],
                Err(UnsupportedTransferCoding),
            ),
            (Http11, &[H, ("Transfer-Encoding", b"")], Err(BadHeader)),
            (Http11, &[H, ("Transfer-Encoding", b" , ")], Err(BadHeader)),
            (
                Http11,
                &[H, ("Transfer-Encoding", b"chunked\x0b")],
                Err(BadHeader),
            ),
            (
                Http11,
                &[H, ("Transfer-Encoding", b"\x0bchunked")],
                Err(BadHeader),
            ),
            (
                Http11,
                &[H, ("Transfer-Encoding", b"\"chunked\"")],
                Err(BadHeader),
            ),
            (
                Http11,
                &[H, ("Transfer-Encoding", b"chunked;x=1")],
                Err(BadHeader),
            ),
            (
                Http11,
                &[H, ("Transfer-Encoding", b"chun ked")],
                Err(BadHeader),
            ),
            (
                Http11,
                &[
                    H,
                    ("Transfer-Encoding", b"chunked"),
                    ("Transfer-Encoding", b""),
                ],
                Err(BadHeader),
            ),
            (
                Http10,
                &[("Transfer-Encoding", b"chunked")],
                Err(TransferEncodingInHttp10),
            ),
            (
                Http10,
                &[("Transfer-Encoding", b"chunked"), ("Content-Length", b"3")],
                Err(TransferEncodingInHttp10),
            ),
            // Both: CL.TE and TE.CL in either order.
            (
                Http11,
                &[
                    H,
                    ("Content-Length", b"3"),
                    ("Transfer-Encoding", b"chunked"),
                ],
                Err(ContentLengthWithTransferEncoding),
            ),
            (
                Http11,
                &[
                    H,
                    ("Transfer-Encoding", b"chunked"),
                    ("Content-Length", b"3"),
                ],
                Err(ContentLengthWithTransferEncoding),
            ),
            (
                Http11,
                &[H, ("Transfer-Encoding", b"gzip"), ("Content-Length", b"3")],
                Err(ContentLengthWithTransferEncoding),
            ),
            // Connection.
            (
                Http11,
                &[H, ("Connection", b"close")],
                Ok(info(BodyKind::None, false, false)),
            ),
            (
                Http11,
                &[H, ("connection", b"Keep-Alive, CLOSE")],
                Ok(info(BodyKind::None, false, false)),
            ),
            (
                Http11,
                &[H, ("Connection", b"upgrade"), ("Connection", b" close ")],
                Ok(info(BodyKind::None, false, false)),
            ),
            (Http11, &[H, ("Connection", b"closed, x-close")], Ok(PLAIN)),
            (Http11, &[H, ("Connection", b"keep-alive")], Ok(PLAIN)),
            (
                Http10,
                &[("Connection", b"keep-alive")],
                Ok(info(BodyKind::None, true, false)),
            ),
            (
                Http10,
                &[("Connection", b"foo,KEEP-ALIVE")],
                Ok(info(BodyKind::None, true, false)),
            ),
            (
                Http10,
                &[("Connection", b"keep-alive, close")],
                Ok(info(BodyKind::None, false, false)),
            ),
            (
                Http10,
                &[("Connection", b"keep-alive"), ("Connection", b"close")],
                Ok(info(BodyKind::None, false, false)),
            ),
            (
                Http10,
                &[("Connection", b"")],
                Ok(info(BodyKind::None, false, false)),
            ),
            // Expect.
            (
                Http11,
                &[H, ("Expect", b"100-continue")],
                Ok(info(BodyKind::None, true, true)),
            ),
            (
                Http11,
                &[H, ("expect", b"100-Continue"), ("Content-Length", b"2")],
                Ok(info(BodyKind::Length(2), true, true)),
            ),
            (Http11, &[H, ("Expect", b"")], Ok(PLAIN)),
            (
                Http10,
                &[("Expect", b"100-continue")],
                Ok(info(BodyKind::None, false, false)),
            ),
            (
                Http11,
                &[H, ("Expect", b"100-continued")],
                Err(UnknownExpectation),
            ),
            (
                Http11,
                &[H, ("Expect", b"100-continue, foo")],
                Err(UnknownExpectation),
            ),
            (
                Http11,
                &[H, ("Expect", b"100-continue;a=b")],
                Err(UnknownExpectation),
            ),
            (Http11, &[H, ("Expect", b"200-ok")], Err(UnknownExpectation)),
            (Http10, &[("Expect", b"x")], Err(UnknownExpectation)),
            // A framing error outranks the expectation failure.
            (
                Http11,
                &[H, ("Expect", b"x"), ("Content-Length", b"1, 2")],
                Err(ConflictingContentLength),
            ),
            // Host.
            (Http11, &[], Err(MissingHost)),
            (Http11, &[("X-Host", b"a")], Err(MissingHost)),
            (Http11, &[("Host", b"")], Ok(PLAIN)),
            (Http11, &[("HOST", b"[::1]:8080")], Ok(PLAIN)),
            (
                Http11,
                &[("Host", b"a"), ("host", b"a")],
                Err(DuplicateHost),
            ),
            (
                Http10,
                &[("Host", b"a"), ("Host", b"b")],
                Err(DuplicateHost),
            ),
            (
                Http10,
                &[("Host", b"a")],
                Ok(info(BodyKind::None, false, false)),
            ),
            (Http11, &[("Host", b"a b")], Err(BadHost)),
            (Http11, &[("Host", b"a/b")], Err(BadHost)),
            (Http11, &[("Host", b"user@a")], Err(BadHost)),
            // Framing outranks a missing Host.
            (Http11, &[("Content-Length", b"x")], Err(BadContentLength)),
            (
                Http11,
                &[("Transfer-Encoding", b"gzip, chunked")],
                Err(UnsupportedTransferCoding),
            ),
            // Unrelated fields are ignored, whatever they hold.
            (
                Http11,
                &[
                    H,
                    ("X-Content-Length", b"x"),
                    ("Content-Lengthy", b"x"),
                    ("TE", b"trailers"),
                ],
                Ok(PLAIN),
            ),
        ];
        for (i, (version, fields, want)) in cases.iter().enumerate() {
            assert_eq!(
                run(*version, fields),
                *want,
                "case {i}: {version:?} {fields:?}"
            );
        }
    }

    /// Whole requests through `parse_head` and `analyze`, as the connection layer will.
    fn request(input: &[u8]) -> Result<MessageInfo, ParseError> {
        let mut storage = [const { MaybeUninit::uninit() }; MAX_HEADERS_LIMIT];
        let head =
            parse_head(input, &mut storage, &HeadLimits::default())?.ok_or(BadRequestLine)?;
        analyze(head.version, head.headers)
    }

    #[test]
    fn smuggling_classics() {
        let cases: &[(&[u8], Result<MessageInfo, ParseError>)] = &[
            // CL.TE and TE.CL.
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX",
                Err(ContentLengthWithTransferEncoding),
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n",
                Err(ContentLengthWithTransferEncoding),
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
                Err(ChunkedNotFinal),
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
                Err(BadHeader),
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n\r\n",
                Ok(CHUNKED),
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:chunked\r\n\r\n",
                Ok(CHUNKED),
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0bchunked\r\n\r\n",
                Err(BadHeader),
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                Err(ChunkedNotFinal),
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
                Err(ChunkedNotFinal),
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
                Err(BadHeader),
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
                Err(BadContentLength),
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n",
                Err(BadContentLength),
            ),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", Ok(len(5))),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n",
                Err(ConflictingContentLength),
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n",
                Err(BadContentLength),
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:  7 \t\r\n\r\n",
                Ok(len(7)),
            ),
            (b"GET / HTTP/1.1\r\n\r\n", Err(MissingHost)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Err(DuplicateHost)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", Err(BadHeader)),
            (b"GET / HTTP/1.1\r\nHost: a\x00\r\n\r\n", Err(BadHeader)),
            (b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", Err(BadHeader)),
            (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", Err(UnsupportedVersion)),
            (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", Err(UnsupportedVersion)),
            (b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", Ok(PLAIN)),
            (
                b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
                Err(TransferEncodingInHttp10),
            ),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
                Ok(info(BodyKind::Length(1), true, true)),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                request(input),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn header_count_and_size_limits_through_head() {
        let mut req = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        for i in 0..100 {
            req.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        assert_eq!(request(&req), Err(TooManyHeaders)); // 101 lines, limit 100
        let mut big = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        big.resize(20_000, b'a');
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(request(&big), Err(HeadTooLarge));
    }

    #[test]
    fn helpers() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b"1a"), None);
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"  "), b"");
        let elems: Vec<&[u8]> = list_elements(b" a ,, b,\tc\t, ").collect();
        assert_eq!(elems, [&b"a"[..], b"b", b"c"]);
        assert!(is_token(b"!#$%&'*+-.^_`|~09azAZ"));
        assert!(!is_token(b""));
        for b in [
            b'"', b'(', b')', b',', b'/', b':', b';', b'<', b'=', b'>', b'?', b'@', b'[', b'\\',
            b']', b'{', b'}', b' ', 0x7f, 0x80,
        ] {
            assert!(!is_tchar(b), "{b:#x}");
        }
    }
}
