//! Fuzz target `request_head`: arbitrary bytes as the start of a connection's input.
//!
//! `http1::head::parse_head` (default `HeadLimits`, `MAX_HEADERS_LIMIT` header storage) must
//! never panic, and for a complete head `http1::framing::analyze` and
//! `http1::target::routing_path` must not either. Beyond "no panic" it checks what callers
//! rely on: the head lies inside the input and the limits, a complete head is reported
//! incomplete for its prefixes and unchanged without what follows it, a body kind is backed by
//! the header fields that select it (chunked only in HTTP/1.1, never with Content-Length),
//! and a routing path is normal (normalising it again changes nothing).

#![no_main]

use std::mem::MaybeUninit;

use asycamore::http1::framing::analyze;
use asycamore::http1::head::{MAX_HEADERS_LIMIT, ParsedHead, parse_head};
use asycamore::http1::target::routing_path;
use asycamore::http1::{BodyKind, HeadLimits, Header, ParseError, Version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = HeadLimits::default();
    let mut storage = [const { MaybeUninit::uninit() }; MAX_HEADERS_LIMIT];
    match parse_head(data, &mut storage, &limits) {
        Ok(Some(head)) => complete(data, &head, &limits),
        Ok(None) => assert!(
            data.len() < limits.max_head_bytes,
            "incomplete although {} bytes reach the head limit",
            data.len()
        ),
        Err(e) => {
            if e == ParseError::HeadTooLarge {
                assert!(
                    data.len() >= limits.max_head_bytes,
                    "HeadTooLarge below the limit"
                );
            }
            check_status(e);
        }
    }
});

fn complete(data: &[u8], head: &ParsedHead<'_, '_>, limits: &HeadLimits) {
    let len = head.head_len;
    assert!(len <= data.len(), "head_len {len} > input {}", data.len());
    assert!(
        len <= limits.max_head_bytes,
        "head_len {len} over the limit"
    );
    assert!(head.headers.len() <= limits.max_headers);
    assert_eq!(data[len - 1], b'\n', "a head ends with a line feed");
    assert!(!head.method.is_empty() && !head.target.is_empty());
    // Everything the head borrows lies inside the head itself, not in the body after it.
    let inside = |s: &[u8]| {
        let start = s.as_ptr() as usize - data.as_ptr() as usize;
        start + s.len() <= len
    };
    assert!(inside(head.method.as_bytes()) && inside(head.target.as_bytes()));
    for h in head.headers {
        assert!(inside(h.name.as_bytes()) && inside(h.value));
        assert!(!h.name.is_empty());
    }

    // The same head without the bytes after it, and incomplete one byte short of its end
    // (a connection reading in small pieces must never see an error a whole read would not).
    let mut again = [const { MaybeUninit::uninit() }; MAX_HEADERS_LIMIT];
    let alone = parse_head(&data[..len], &mut again, limits);
    assert_eq!(alone.as_ref().ok().and_then(Option::as_ref), Some(head));
    let mut short = [const { MaybeUninit::uninit() }; MAX_HEADERS_LIMIT];
    assert_eq!(parse_head(&data[..len - 1], &mut short, limits), Ok(None));

    match analyze(head.version, head.headers) {
        Ok(info) => {
            let te = fields(head.headers, "transfer-encoding");
            let cl = fields(head.headers, "content-length");
            match info.body {
                BodyKind::Chunked => {
                    assert_eq!(head.version, Version::Http11, "chunked body in HTTP/1.0");
                    assert!(te > 0 && cl == 0, "chunked with TE {te}, CL {cl}");
                    // The codings of every Transfer-Encoding line, as one list (RFC 9110
                    // 5.6.1: empty elements are ignored): `chunked` last, and only once.
                    let codings: Vec<&[u8]> = head
                        .headers
                        .iter()
                        .filter(|h| h.name.eq_ignore_ascii_case("transfer-encoding"))
                        .flat_map(|h| h.value.split(|&b| b == b','))
                        .map(|c| c.trim_ascii())
                        .filter(|c| !c.is_empty())
                        .collect();
                    let chunked = |c: &&[u8]| c.eq_ignore_ascii_case(b"chunked");
                    assert!(
                        codings.last().is_some_and(chunked)
                            && codings.iter().filter(|c| chunked(c)).count() == 1,
                        "chunked body with codings {codings:?}"
                    );
                }
                BodyKind::Length(_) => assert!(te == 0 && cl > 0, "length with TE {te}, CL {cl}"),
                BodyKind::None => assert!(te == 0 && cl == 0, "no body with TE {te}, CL {cl}"),
            }
            if head.version == Version::Http11 {
                assert_eq!(fields(head.headers, "host"), 1, "HTTP/1.1 needs one Host");
            } else {
                assert!(!info.expect_continue, "100-continue for an HTTP/1.0 client");
            }
        }
        Err(e) => check_status(e),
    }

    let mut scratch = String::new();
    match routing_path(head.target, &mut scratch) {
        Ok(path) => {
            if head.target.starts_with('/') {
                assert!(path.starts_with('/'), "routing path {path:?} lost its root");
            }
            if path.starts_with('/') {
                check_normal(path);
            }
        }
        Err(e) => check_status(e),
    }
}

/// A normal path: no empty, `.` or `..` segment, and normalising it again is the identity.
fn check_normal(path: &str) {
    assert!(!path.contains("//"), "{path:?} has an empty segment");
    for segment in path.split('/') {
        assert!(
            segment != "." && segment != "..",
            "{path:?} has a dot segment"
        );
    }
    let mut scratch = String::new();
    assert_eq!(
        routing_path(path, &mut scratch),
        Ok(path),
        "normalising {path:?} again changed it"
    );
}

fn fields(headers: &[Header<'_>], name: &str) -> usize {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .count()
}

fn check_status(e: ParseError) {
    let status = e.status();
    assert!((400..=599).contains(&status), "{e:?} maps to {status}");
    assert!(!e.kind().is_empty() && !e.reason().is_empty());
}
