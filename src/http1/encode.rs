//! Response framing writers: status line, header lines, `Content-Length` and chunk sizes,
//! appended to a caller's buffer, plus the checks a caller needs before writing a field.
//!
//! This file must never allocate beyond growing the caller's `Vec`, never format through
//! `fmt` on the hot path, and never decide policy (which headers to send, whether to close).

/// Line terminator for every HTTP/1.1 framing line.
pub const CRLF: &[u8] = b"\r\n";
/// The last-chunk line; the caller follows it with trailer lines (if any) and [`CRLF`].
pub const LAST_CHUNK: &[u8] = b"0\r\n";

/// One table feeds both the reason phrases and the prebuilt status lines, so they cannot
/// drift apart.
macro_rules! status_table {
    ($($code:literal $reason:literal,)*) => {
        /// The reason phrase for every status code registered by RFC 9110 (plus 103 from
        /// RFC 8297, 428, 429, 431, 511 from RFC 6585 and 507 from RFC 4918, which servers
        /// send); `""`
        /// otherwise, including for the unused codes 306 and 418.
        pub fn reason_phrase(status: u16) -> &'static str {
            match status {
                $($code => $reason,)*
                _ => "",
            }
        }

        fn prebuilt_status_line(status: u16) -> Option<&'static [u8]> {
            match status {
                $($code => Some(concat!("HTTP/1.1 ", $code, " ", $reason, "\r\n").as_bytes()),)*
                _ => None,
            }
        }
    };
}

status_table! {
    100 "Continue",
    101 "Switching Protocols",
    103 "Early Hints",
    200 "OK",
    201 "Created",
    202 "Accepted",
    203 "Non-Authoritative Information",
    204 "No Content",
    205 "Reset Content",
    206 "Partial Content",
    300 "Multiple Choices",
    301 "Moved Permanently",
    302 "Found",
    303 "See Other",
    304 "Not Modified",
    305 "Use Proxy",
    307 "Temporary Redirect",
    308 "Permanent Redirect",
    400 "Bad Request",
    401 "Unauthorized",
    402 "Payment Required",
    403 "Forbidden",
    404 "Not Found",
    405 "Method Not Allowed",
    406 "Not Acceptable",
    407 "Proxy Authentication Required",
    408 "Request Timeout",
    409 "Conflict",
    410 "Gone",
    411 "Length Required",
    412 "Precondition Failed",
    413 "Content Too Large",
    414 "URI Too Long",
    415 "Unsupported Media Type",
    416 "Range Not Satisfiable",
    417 "Expectation Failed",
    421 "Misdirected Request",
    422 "Unprocessable Content",
    426 "Upgrade Required",
    428 "Precondition Required",
    429 "Too Many Requests",
    431 "Request Header Fields Too Large",
    500 "Internal Server Error",
    501 "Not Implemented",
    502 "Bad Gateway",
    503 "Service Unavailable",
    504 "Gateway Timeout",
    505 "HTTP Version Not Supported",
    507 "Insufficient Storage",
    511 "Network Authentication Required",
}

/// Appends `HTTP/1.1 <status> <reason>\r\n`.
///
/// A status outside `100..=999` is a caller bug that would put an invalid line on the
/// wire; it is written as 500 instead. Unregistered codes get an empty reason (the space
/// before it is still required by RFC 9112 4).
pub fn write_status_line(out: &mut Vec<u8>, status: u16) {
    let status = if (100..=999).contains(&status) {
        status
    } else {
        500
    };
    if let Some(line) = prebuilt_status_line(status) {
        out.extend_from_slice(line);
        return;
    }
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(CRLF);
}

/// Appends `name: value\r\n`. The caller guarantees both parts are valid (see
/// [`is_valid_header_name`] / [`is_valid_header_value`]); debug builds check, because an
/// unchecked CR or LF here is response splitting.
pub fn write_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    debug_assert!(is_valid_header_name(name), "invalid header name");
    debug_assert!(is_valid_header_value(value), "invalid header value");
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(CRLF);
}

/// Appends `Content-Length: N\r\n`.
pub fn write_content_length(out: &mut Vec<u8>, len: u64) {
    out.extend_from_slice(b"Content-Length: ");
    out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
    out.extend_from_slice(CRLF);
}

/// Appends a chunk line: the size in lower-case hex without leading zeros, then CRLF.
/// A size of 0 is the last chunk; prefer [`LAST_CHUNK`] for that.
pub fn write_chunk_size(out: &mut Vec<u8>, size: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut start = digits.len();
    let mut rest = size;
    loop {
        start -= 1;
        digits[start] = HEX[(rest & 0xf) as usize];
        rest >>= 4;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
    out.extend_from_slice(CRLF);
}

/// Whether a response with this status may carry content (RFC 9110 6.4.1): not for 1xx,
/// 204 or 304.
pub fn status_allows_body(status: u16) -> bool {
    !matches!(status, 100..=199 | 204 | 304)
}

/// Whether `name` is an RFC 9110 `token`, the only valid field name.
pub fn is_valid_header_name(name: &[u8]) -> bool {
    !name.is_empty() && all_in(&TCHAR, name)
}

/// Whether `value` is a valid field value (RFC 9110 5.5): field-vchar, SP and HTAB only,
/// without leading or trailing whitespace. The empty value is valid.
pub fn is_valid_header_value(value: &[u8]) -> bool {
    let ws = |b: &u8| *b == b' ' || *b == b'\t';
    !value.first().is_some_and(ws) && !value.last().is_some_and(ws) && all_in(&FIELD_VALUE, value)
}

/// Whether every byte of `bytes` is marked in `table`, eight at a time without a branch per
/// byte: handlers' fields are checked on every response that carries them.
fn all_in(table: &[bool; 256], bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(8);
    let whole = chunks
        .by_ref()
        .all(|chunk| chunk.iter().fold(true, |ok, &b| ok & table[usize::from(b)]));
    whole && chunks.remainder().iter().all(|&b| table[usize::from(b)])
}

/// `tchar` (RFC 9110 5.6.2).
static TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = crate::http1::framing::is_tchar(b as u8);
        b += 1;
    }
    table
};

/// Bytes of a field value (RFC 9110 5.5): VCHAR, obs-text, SP and HTAB.
static FIELD_VALUE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = b == 0x09 || b >= 0x20 && b != 0x7f;
        b += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = b"prefix|".to_vec();
        f(&mut out);
        // Writers append; they never touch what is already in the buffer.
        assert!(out.starts_with(b"prefix|"));
        out.split_off(7)
    }

    #[test]
    fn status_lines() {
        let cases: &[(u16, &[u8])] = &[
            (100, b"HTTP/1.1 100 Continue\r\n"),
            (200, b"HTTP/1.1 200 OK\r\n"),
            (204, b"HTTP/1.1 204 No Content\r\n"),
            (304, b"HTTP/1.1 304 Not Modified\r\n"),
            (400, b"HTTP/1.1 400 Bad Request\r\n"),
            (413, b"HTTP/1.1 413 Content Too Large\r\n"),
            (417, b"HTTP/1.1 417 Expectation Failed\r\n"),
            (431, b"HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            (501, b"HTTP/1.1 501 Not Implemented\r\n"),
            (505, b"HTTP/1.1 505 HTTP Version Not Supported\r\n"),
            (299, b"HTTP/1.1 299 \r\n"),
            (306, b"HTTP/1.1 306 \r\n"),
            (418, b"HTTP/1.1 418 \r\n"),
            (999, b"HTTP/1.1 999 \r\n"),
            (0, b"HTTP/1.1 500 Internal Server Error\r\n"),
            (99, b"HTTP/1.1 500 Internal Server Error\r\n"),
            (1000, b"HTTP/1.1 500 Internal Server Error\r\n"),
        ];
        for &(status, want) in cases {
            assert_eq!(bytes(|o| write_status_line(o, status)), want, "{status}");
        }
    }

    #[test]
    fn prebuilt_and_formatted_lines_agree() {
        for status in 100..=999u16 {
            let generic = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status));
            assert_eq!(bytes(|o| write_status_line(o, status)), generic.as_bytes());
        }
    }

    #[test]
    fn reason_phrases() {
        let cases: &[(u16, &str)] = &[
            (101, "Switching Protocols"),
            (203, "Non-Authoritative Information"),
            (308, "Permanent Redirect"),
            (407, "Proxy Authentication Required"),
            (414, "URI Too Long"),
            (416, "Range Not Satisfiable"),
            (421, "Misdirected Request"),
            (422, "Unprocessable Content"),
            (426, "Upgrade Required"),
            (504, "Gateway Timeout"),
            (102, ""),
            (306, ""),
            (418, ""),
            (600, ""),
            (0, ""),
        ];
        for &(status, want) in cases {
            assert_eq!(reason_phrase(status), want, "{status}");
        }
        // Every RFC 9110 section 15 code has a phrase.
        let rfc9110 = [
            100, 101, 200, 201, 202, 203, 204, 205, 206, 300, 301, 302, 303, 304, 305, 307, 308,
            400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416,
            417, 421, 422, 426, 500, 501, 502, 503, 504, 505,
        ];
        for status in rfc9110 {
            assert!(!reason_phrase(status).is_empty(), "{status}");
        }
    }

    #[test]
    fn header_lines() {
        let cases: &[(&[u8], &[u8], &[u8])] = &[
            (
                b"Content-Type",
                b"text/plain",
                b"Content-Type: text/plain\r\n",
            ),
            (b"X-Empty", b"", b"X-Empty: \r\n"),
            (b"X", b"a \t b", b"X: a \t b\r\n"),
        ];
        for &(name, value, want) in cases {
            assert_eq!(bytes(|o| write_header(o, name, value)), want);
        }
    }

    #[test]
    fn content_lengths() {
        let cases: &[(u64, &[u8])] = &[
            (0, b"Content-Length: 0\r\n"),
            (42, b"Content-Length: 42\r\n"),
            (u64::MAX, b"Content-Length: 18446744073709551615\r\n"),
        ];
        for &(len, want) in cases {
            assert_eq!(bytes(|o| write_content_length(o, len)), want);
        }
    }

    #[test]
    fn chunk_sizes() {
        let cases: &[(u64, &[u8])] = &[
            (0, b"0\r\n"),
            (1, b"1\r\n"),
            (10, b"a\r\n"),
            (255, b"ff\r\n"),
            (4096, b"1000\r\n"),
            (0xdead_beef, b"deadbeef\r\n"),
            (u64::MAX, b"ffffffffffffffff\r\n"),
        ];
        for &(size, want) in cases {
            assert_eq!(bytes(|o| write_chunk_size(o, size)), want);
        }
        assert_eq!(bytes(|o| write_chunk_size(o, 0)), LAST_CHUNK);
        assert_eq!(CRLF, b"\r\n");
    }

    #[test]
    fn bodies_allowed() {
        for (status, want) in [
            (100, false),
            (101, false),
            (103, false),
            (199, false),
            (200, true),
            (204, false),
            (205, true),
            (304, false),
            (404, true),
            (500, true),
        ] {
            assert_eq!(status_allows_body(status), want, "{status}");
        }
    }

    #[test]
    fn header_name_validity() {
        let cases: &[(&[u8], bool)] = &[
            (b"Content-Type", true),
            (b"x-!#$%&'*+.^_`|~09", true),
            (b"", false),
            (b"Bad Name", false),
            (b"Name:", false),
            (b"N\r\n", false),
            (b"(x)", false),
            (b"\xc3\xa9", false),
        ];
        for &(name, want) in cases {
            assert_eq!(is_valid_header_name(name), want, "{name:?}");
        }
    }

    #[test]
    fn header_value_validity() {
        let cases: &[(&[u8], bool)] = &[
            (b"", true),
            (b"text/html; charset=utf-8", true),
            (b"a \t b", true),
            (b"\xff\x80", true),
            (b" a", false),
            (b"a ", false),
            (b"\ta", false),
            (b"a\t", false),
            (b" ", false),
            (b"a\r\nInjected: 1", false),
            (b"a\rb", false),
            (b"a\nb", false),
            (b"a\x00b", false),
            (b"a\x7fb", false),
            (b"a\x0bb", false),
        ];
        for &(value, want) in cases {
            assert_eq!(is_valid_header_value(value), want, "{value:?}");
        }
    }

    /// The tables, read eight bytes at a time, agree with the byte rules for every byte at
    /// every position of names and values up to 20 bytes long.
    #[test]
    fn the_tables_agree_with_the_byte_rules_in_every_lane() {
        let value_byte = |b: u8| b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80;
        for len in 1..=20 {
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = byte;
                    let edge_ws = (at == 0 || at == len - 1) && (byte == b' ' || byte == b'\t');
                    assert_eq!(
                        is_valid_header_value(&bytes),
                        value_byte(byte) && !edge_ws,
                        "{bytes:?}"
                    );
                    assert_eq!(
                        is_valid_header_name(&bytes),
                        crate::http1::framing::is_tchar(byte),
                        "{bytes:?}"
                    );
                }
            }
        }
    }
}
