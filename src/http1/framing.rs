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
///
/// `pub(super)`, with the field functions below, so `response` applies the same field rules
/// to response framing.
#[derive(Default)]
pub(super) struct Scan {
    pub(super) content_length: Option<u64>,
    pub(super) transfer_encoding: bool,
    pub(super) chunked: bool,
    pub(super) coding_before_chunked: bool,
    pub(super) coding_after_chunked: bool,
    pub(super) close: bool,
    pub(super) keep_alive: bool,
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
            4 if is_host_name(name) => host(&mut scan, h.value)?,
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

pub(super) fn transfer_encoding(scan: &mut Scan, value: &[u8]) -> Result<(), ParseError> {
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

pub(super) fn content_length(scan: &mut Scan, value: &[u8]) -> Result<(), ParseError> {
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

pub(super) fn connection(scan: &mut Scan, value: &[u8]) {
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
    // An empty value is allowed (RFC 9110 7.2, no authority). Otherwise the authority
    // grammar, not only its alphabet: a value a peer could split differently (`[::1`, `a:8x`,
    // a port past 65535) is never routed.
    if value.is_empty() || super::authority::is_valid(value) {
        Ok(())
    } else {
        Err(ParseError::BadHost)
    }
}

/// Whether a 4-byte field name is `Host` in any case: one word compare (every request has
/// this field). Setting bit 5 folds each capital onto its small letter; the only bytes it
/// folds onto a small letter are that letter and its capital, so nothing else matches.
fn is_host_name(name: &[u8]) -> bool {
    match <[u8; 4]>::try_from(name) {
        Ok(bytes) => u32::from_le_bytes(bytes) | 0x2020_2020 == u32::from_le_bytes(*b"host"),
        Err(_) => false,
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

pub(crate) const fn is_tchar(b: u8) -> bool {
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

#[cfg(test)]
mod tests;
