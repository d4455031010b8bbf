//! Unit tests of `framing`: data-driven tables run through one checker.
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
        // RFC 9112 3.2 with RFC 3986 3.2.2-3.2.3: the authority grammar, not only its bytes.
        (Http11, &[("Host", b"[::1")], Err(BadHost)),
        (Http11, &[("Host", b"a:8x")], Err(BadHost)),
        (Http11, &[("Host", b":a")], Err(BadHost)),
        (Http11, &[("Host", b"a:65536")], Err(BadHost)),
        (Http11, &[("Host", b"a:65535")], Ok(PLAIN)),
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
    let head = parse_head(input, &mut storage, &HeadLimits::default())?.ok_or(BadRequestLine)?;
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
        b'"', b'(', b')', b',', b'/', b':', b';', b'<', b'=', b'>', b'?', b'@', b'[', b'\\', b']',
        b'{', b'}', b' ', 0x7f, 0x80,
    ] {
        assert!(!is_tchar(b), "{b:#x}");
    }
}

/// The word compare for `Host` against the byte-by-byte definition, for every byte in every
/// position: only the letter and its capital match.
#[test]
fn host_name_compare_is_exact_for_every_byte() {
    for position in 0..4 {
        for b in 0..=255u8 {
            let mut name = *b"host";
            name[position] = b;
            assert_eq!(
                is_host_name(&name),
                name.eq_ignore_ascii_case(b"host"),
                "{name:?}"
            );
        }
    }
    assert!(is_host_name(b"HoSt"));
    assert!(!is_host_name(b"hos") && !is_host_name(b"hosts"));
}
