//! Unit tests of `chunked`: data-driven tables run through one checker.
use super::*;
use crate::http1::ParseError::*;

/// Bytes a pipelined client may already have sent after the body.
const NEXT_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";

/// Split-independent view of a decode run: chunk payloads concatenated per chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Chunk(Vec<u8>),
    Trailers(Vec<u8>),
    End,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    /// `End` was seen after consuming this many bytes in total.
    Ended(usize),
    Failed(ParseError),
    Incomplete,
}

/// Feeds `pieces` in order the way a connection would, checking the decoder's contract
/// on every call.
fn drive(pieces: &[&[u8]], limits: ChunkedLimits) -> (Vec<Ev>, Outcome) {
    let mut dec = ChunkedDecoder::new(limits);
    let mut events = Vec::new();
    let mut open: Option<(u64, Vec<u8>)> = None;
    let mut consumed = 0;
    let close = |open: &mut Option<(u64, Vec<u8>)>, events: &mut Vec<Ev>, strict: bool| {
        if let Some((size, data)) = open.take() {
            if strict {
                assert_eq!(data.len() as u64, size, "chunk shorter than its size");
            }
            events.push(Ev::Chunk(data));
        }
    };
    for piece in pieces {
        let mut off = 0;
        loop {
            let (n, ev) = match dec.decode(&piece[off..]) {
                Ok(r) => r,
                Err(e) => {
                    close(&mut open, &mut events, false);
                    // Errors are sticky.
                    assert_eq!(dec.decode(b"0\r\n\r\n"), Err(e));
                    assert!(!dec.is_done());
                    return (events, Outcome::Failed(e));
                }
            };
            assert!(n <= piece.len() - off);
            off += n;
            consumed += n;
            match ev {
                None if dec.is_done() => {
                    assert_eq!(n, 0, "consumed bytes after the end");
                    break;
                }
                None => {
                    assert_eq!(off, piece.len(), "None before the input was used up");
                    break;
                }
                Some(Chunk::Start { size }) => {
                    assert!(size > 0);
                    close(&mut open, &mut events, true);
                    open = Some((size, Vec::new()));
                }
                Some(Chunk::Data(d)) => {
                    assert!(!d.is_empty(), "empty Data");
                    let (size, data) = open.as_mut().expect("Data outside a chunk");
                    data.extend_from_slice(d);
                    assert!(data.len() as u64 <= *size, "Data past the chunk");
                }
                Some(Chunk::Trailers) => {
                    close(&mut open, &mut events, true);
                    let block = dec.trailer_block();
                    assert!(block.ends_with(b"\r\n\r\n"));
                    events.push(Ev::Trailers(block.to_vec()));
                }
                Some(Chunk::End) => {
                    close(&mut open, &mut events, true);
                    assert!(!events.contains(&Ev::End));
                    events.push(Ev::End);
                    assert!(dec.is_done());
                }
            }
        }
    }
    if dec.is_done() {
        // Nothing more is ever taken, whatever is offered.
        assert_eq!(dec.decode(NEXT_REQUEST), Ok((0, None)));
        assert_eq!(dec.decode(b""), Ok((0, None)));
        (events, Outcome::Ended(consumed))
    } else {
        close(&mut open, &mut events, false);
        (events, Outcome::Incomplete)
    }
}

/// Runs `input` whole, split in two at every index and one byte at a time; all runs must
/// agree with each other and with `expected`.
fn check_with(limits: ChunkedLimits, input: &[u8], expected: &(Vec<Ev>, Outcome)) {
    let label = String::from_utf8_lossy(input);
    let whole = drive(&[input], limits);
    assert_eq!(&whole, expected, "whole: {label:?}");
    for i in 0..=input.len() {
        let (a, b) = input.split_at(i);
        assert_eq!(drive(&[a, b], limits), whole, "split at {i}: {label:?}");
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(drive(&bytes, limits), whole, "bytewise: {label:?}");
}

/// A valid body: followed by the next request, which must be left alone.
fn check_ok(limits: ChunkedLimits, body: &[u8], chunks: &[&[u8]], trailers: Option<&[u8]>) {
    let mut events: Vec<Ev> = chunks.iter().map(|c| Ev::Chunk(c.to_vec())).collect();
    if let Some(t) = trailers {
        events.push(Ev::Trailers(t.to_vec()));
    }
    events.push(Ev::End);
    let mut input = body.to_vec();
    input.extend_from_slice(NEXT_REQUEST);
    check_with(limits, &input, &(events, Outcome::Ended(body.len())));
}

/// An invalid body: the error must come whatever the split.
fn check_err(limits: ChunkedLimits, input: &[u8], error: ParseError) {
    let label = String::from_utf8_lossy(input);
    let whole = drive(&[input], limits);
    assert_eq!(whole.1, Outcome::Failed(error), "whole: {label:?}");
    check_with(limits, input, &whole);
}

const SMALL: ChunkedLimits = ChunkedLimits {
    max_extension_bytes: 8,
    max_trailer_bytes: 32,
    max_trailers: 2,
};

#[test]
fn valid_bodies() {
    type Case = (
        &'static [u8],
        &'static [&'static [u8]],
        Option<&'static [u8]>,
    );
    let cases: &[Case] = &[
        // Simple, empty, multiple.
        (b"5\r\nhello\r\n0\r\n\r\n", &[b"hello"], None),
        (b"0\r\n\r\n", &[], None),
        (b"3\r\nabc\r\n1\r\nd\r\n2\r\nef\r\n0\r\n\r\n", &[b"abc", b"d", b"ef"], None),
        // Payload that looks like framing is just payload.
        (b"6\r\n0\r\n\r\nX\r\n0\r\n\r\n", &[b"0\r\n\r\nX"], None),
        (b"2\r\n\r\n\r\n0\r\n\r\n", &[b"\r\n"], None),
        // Leading zeros, upper and lower case hex.
        (b"0005\r\nhello\r\n000\r\n\r\n", &[b"hello"], None),
        (b"00000000000000000000005\r\nhello\r\n0\r\n\r\n", &[b"hello"], None),
        (
            b"A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n",
            &[b"0123456789", b"abcdefghij"],
            None,
        ),
        (
            b"1F\r\n0123456789abcdef0123456789abcde\r\n1f\r\n0123456789abcdef0123456789abcde\r\n0\r\n\r\n",
            &[b"0123456789abcdef0123456789abcde", b"0123456789abcdef0123456789abcde"],
            None,
        ),
        // Extensions: name only, with values, quoted strings, several, on the last chunk.
        (b"5;foo\r\nhello\r\n0\r\n\r\n", &[b"hello"], None),
        (b"5;foo=bar\r\nhello\r\n0\r\n\r\n", &[b"hello"], None),
        (b"5;foo=\"b a;r\\\"\"\r\nhello\r\n0\r\n\r\n", &[b"hello"], None),
        (b"5;a;b=c;d=\"e\"\r\nhello\r\n0;last\r\n\r\n", &[b"hello"], None),
        (b"5;\xff\x80\r\nhello\r\n0\r\n\r\n", &[b"hello"], None),
        (b"5;a=\tb\r\nhello\r\n0\r\n\r\n", &[b"hello"], None),
        // BWS before and around `;`, and after a bare size.
        (b"5 ;foo\r\nhello\r\n0\r\n\r\n", &[b"hello"], None),
        (b"5\t; foo = bar\r\nhello\r\n0 ; x\r\n\r\n", &[b"hello"], None),
        (b"5 \t \r\nhello\r\n0\r\n\r\n", &[b"hello"], None),
        // Trailers: one and several, empty value, after data.
        (b"0\r\nX-A: 1\r\n\r\n", &[], Some(b"X-A: 1\r\n\r\n")),
        (
            b"2\r\nhi\r\n0\r\nA: 1\r\nB:2\r\nC:\r\nDigest: sha-256=:x:\r\n\r\n",
            &[b"hi"],
            Some(b"A: 1\r\nB:2\r\nC:\r\nDigest: sha-256=:x:\r\n\r\n"),
        ),
    ];
    for &(body, chunks, trailers) in cases {
        check_ok(ChunkedLimits::default(), body, chunks, trailers);
    }
}

#[test]
fn limits_at_the_edge_are_accepted() {
    // 8 bytes after the size: exactly the extension limit.
    check_ok(SMALL, b"1 ;abcdef\r\nx\r\n0\r\n\r\n", &[b"x"], None);
    // Eight extra leading zeros, with the extension budget, likewise.
    check_ok(
        SMALL,
        b"000000000a\r\n0123456789\r\n000000000\r\n\r\n",
        &[b"0123456789"],
        None,
    );
    check_ok(SMALL, b"00001;abc\r\nx\r\n0\r\n\r\n", &[b"x"], None);
    // Two trailer lines, 32 bytes including the blank line: exactly both trailer limits.
    let block: &[u8] = b"A: 0123456789\r\nB: 0123456789\r\n\r\n";
    assert_eq!(block.len(), 32);
    let mut body = b"0\r\n".to_vec();
    body.extend_from_slice(block);
    check_ok(SMALL, &body, &[], Some(block));
}

#[test]
fn invalid_bodies() {
    let cases: &[(&[u8], ParseError)] = &[
        // Size line.
        (b"\r\n", BadChunkSize),
        (b"\r\n5\r\nhello\r\n0\r\n\r\n", BadChunkSize),
        (b";ext\r\n", BadChunkSize),
        (b" 5\r\nhello\r\n", BadChunkSize),
        (b"0x5\r\nhello\r\n", BadChunkSize),
        (b"-5\r\nhello\r\n", BadChunkSize),
        (b"+5\r\nhello\r\n", BadChunkSize),
        (b"g\r\n", BadChunkSize),
        (b"5g\r\n", BadChunkSize),
        (b"5 5\r\nhello\r\n", BadChunkSize),
        (b"5,\r\n", BadChunkSize),
        (b"11111111111111111\r\n", ChunkSizeOverflow),
        (b"ffffffffffffffffff\r\n", ChunkSizeOverflow),
        (b"0000000000000000010000000000000000\r\n", ChunkSizeOverflow),
        // CRLF required.
        (b"5\nhello\r\n0\r\n\r\n", MissingChunkCrlf),
        (b"5\rhello\r\n0\r\n\r\n", MissingChunkCrlf),
        (b"5;a\nhello\r\n", MissingChunkCrlf),
        (b"5 \nhello\r\n", MissingChunkCrlf),
        (b"5\r\nhello\n0\r\n\r\n", MissingChunkCrlf),
        (b"5\r\nhelloXX\r\n0\r\n\r\n", MissingChunkCrlf),
        (b"5\r\nhello\rX0\r\n\r\n", MissingChunkCrlf),
        (b"5\r\nhello0\r\n\r\n", MissingChunkCrlf),
        (b"0\n\n", MissingChunkCrlf),
        (b"0\r\n\n", MissingChunkCrlf),
        (b"0\r\n\rX", MissingChunkCrlf),
        (b"0\r\nA: 1\n\r\n", MissingChunkCrlf),
        (b"0\r\nA: 1\r2\r\n\r\n", MissingChunkCrlf),
        (b"0\r\nA: 1\r\n\n", MissingChunkCrlf),
        // Extension contents.
        (b"5;a\x00b\r\nhello\r\n", BadChunkExtension),
        (b"5;\x01\r\nhello\r\n", BadChunkExtension),
        (b"5;a=\x0b\r\nhello\r\n", BadChunkExtension),
        (b"5;a\x7f\r\nhello\r\n", BadChunkExtension),
        // Trailer syntax.
        (b"0\r\nBad Name: x\r\n\r\n", BadTrailer),
        (b"0\r\nA : x\r\n\r\n", BadTrailer),
        (b"0\r\n: x\r\n\r\n", BadTrailer),
        (b"0\r\nNoColon\r\n\r\n", BadTrailer),
        (b"0\r\nA: x\x00y\r\n\r\n", BadTrailer),
        (b"0\r\nA: 1\r\n folded\r\n\r\n", BadTrailer),
        (b"0\r\n\tA: 1\r\n\r\n", BadTrailer),
    ];
    for &(input, error) in cases {
        check_err(ChunkedLimits::default(), input, error);
    }
}

#[test]
fn limits_exceeded() {
    let cases: &[(&[u8], ParseError)] = &[
        (b"1;abcdefgh\r\nx\r\n0\r\n\r\n", ChunkExtensionTooLong),
        (b"1 \t \t \t \t \r\nx\r\n0\r\n\r\n", ChunkExtensionTooLong),
        // The limit is per chunk line, not per body.
        (
            b"1;abcdefg\r\nx\r\n1;abcdefgh\r\nx\r\n",
            ChunkExtensionTooLong,
        ),
        (b"0;abcdefgh\r\n\r\n", ChunkExtensionTooLong),
        (b"00000000001\r\nx\r\n", ChunkExtensionTooLong),
        (b"0000000000\r\n\r\n", ChunkExtensionTooLong),
        (b"00001;abcde\r\nx\r\n", ChunkExtensionTooLong),
        (
            b"0\r\nA: 0123456789\r\nB: 01234567890\r\n\r\n",
            TrailersTooLarge,
        ),
        (
            b"0\r\nA: 0123456789012345678901234567890123456789\r\n",
            TrailersTooLarge,
        ),
        (b"0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", TrailersTooLarge),
    ];
    for &(input, error) in cases {
        check_err(SMALL, input, error);
    }
    let mut long = b"1;".to_vec();
    long.resize(2 + 4095, b'a');
    long.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
    let whole = drive(&[&long], ChunkedLimits::default());
    assert_eq!(whole.1, Outcome::Ended(long.len()));
    long.insert(3, b'a');
    let whole = drive(&[&long], ChunkedLimits::default());
    assert_eq!(whole.1, Outcome::Failed(ChunkExtensionTooLong));
}

#[test]
fn incomplete_bodies() {
    for input in [
        &b""[..],
        b"5",
        b"5\r",
        b"5\r\nhel",
        b"5\r\nhello",
        b"5\r\nhello\r",
        b"5\r\nhello\r\n0\r\n",
        b"5\r\nhello\r\n0\r\nA: 1\r\n",
        b"5\r\nhello\r\n0\r\n\r",
    ] {
        let (_, outcome) = drive(&[input], ChunkedLimits::default());
        assert_eq!(outcome, Outcome::Incomplete, "{input:?}");
    }
}

#[test]
fn largest_sizes() {
    for line in [&b"ffffffffffffffff\r\n"[..], b"0000FFFFFFFFFFFFFFFF\r\n"] {
        let mut dec = ChunkedDecoder::new(ChunkedLimits::default());
        assert_eq!(
            dec.decode(line),
            Ok((line.len(), Some(Chunk::Start { size: u64::MAX })))
        );
        assert_eq!(dec.decode(b"abc"), Ok((3, Some(Chunk::Data(b"abc")))));
    }
    // A big chunk arriving in a few reads comes out as slices of those reads.
    let mut body = b"10000\r\n".to_vec();
    body.extend((0..0x10000).map(|i| (i % 251) as u8));
    body.extend_from_slice(b"\r\n0\r\n\r\n");
    let pieces: Vec<&[u8]> = body.chunks(4093).collect();
    let (events, outcome) = drive(&pieces, ChunkedLimits::default());
    assert_eq!(outcome, Outcome::Ended(body.len()));
    assert_eq!(events, [Ev::Chunk(body[7..7 + 0x10000].to_vec()), Ev::End]);
}

#[test]
fn one_event_per_call() {
    let input = b"3;x\r\nabc\r\n0\r\nT: v\r\n\r\nGET";
    let mut dec = ChunkedDecoder::new(ChunkedLimits::default());
    assert_eq!(dec.decode(input), Ok((5, Some(Chunk::Start { size: 3 }))));
    assert_eq!(dec.decode(&input[5..]), Ok((3, Some(Chunk::Data(b"abc")))));
    assert_eq!(dec.decode(&input[8..]), Ok((13, Some(Chunk::Trailers))));
    assert_eq!(dec.trailer_block(), b"T: v\r\n\r\n");
    assert!(!dec.is_done());
    assert_eq!(dec.decode(&input[21..]), Ok((0, Some(Chunk::End))));
    assert!(dec.is_done());
    assert_eq!(dec.decode(&input[21..]), Ok((0, None)));
    assert_eq!(&input[21..], b"GET");

    // `End` owed after `Trailers` needs no input.
    let mut dec = ChunkedDecoder::new(ChunkedLimits::default());
    assert_eq!(
        dec.decode(b"0\r\nT: v\r\n\r\n"),
        Ok((11, Some(Chunk::Trailers)))
    );
    assert_eq!(dec.decode(b""), Ok((0, Some(Chunk::End))));
}

#[test]
fn reset_reuses_the_decoder() {
    let mut dec = ChunkedDecoder::new(ChunkedLimits::default());
    assert_eq!(
        dec.decode(b"0\r\nT: v\r\n\r\n"),
        Ok((11, Some(Chunk::Trailers)))
    );
    assert_eq!(dec.decode(b""), Ok((0, Some(Chunk::End))));
    dec.reset();
    assert!(!dec.is_done());
    assert_eq!(dec.trailer_block(), b"");
    assert_eq!(dec.decode(b"0\r\n\r\n"), Ok((5, Some(Chunk::End))));
    dec.reset();
    assert_eq!(dec.decode(b"x"), Err(BadChunkSize));
    dec.reset();
    assert_eq!(
        dec.decode(b"1\r\n"),
        Ok((3, Some(Chunk::Start { size: 1 })))
    );
}

#[test]
fn no_trailer_allocation_without_trailers() {
    let mut dec = ChunkedDecoder::new(ChunkedLimits::default());
    let mut input: &[u8] = b"5;e=1\r\nhello\r\n0\r\n\r\n";
    while !dec.is_done() {
        let (n, _) = dec.decode(input).expect("valid");
        input = &input[n..];
    }
    assert_eq!(dec.trailer.capacity(), 0);
}

#[test]
fn trailer_parsing() {
    let mut storage = [httparse::EMPTY_HEADER; 4];
    let headers = parse_trailers(b"A: 1\r\nB-c:  two \r\n\r\n", &mut storage);
    assert_eq!(
        headers,
        Ok(&[
            Header {
                name: "A",
                value: b"1"
            },
            Header {
                name: "B-c",
                value: b"two"
            }
        ][..])
    );
    assert_eq!(parse_trailers(b"", &mut storage), Ok(&[][..]));
    assert_eq!(parse_trailers(b"A: 1\r\n", &mut storage), Err(BadTrailer));
    assert_eq!(
        parse_trailers(b"A: 1\r\n\r\nX", &mut storage),
        Err(BadTrailer)
    );
    assert_eq!(
        parse_trailers(b"A : 1\r\n\r\n", &mut storage),
        Err(BadTrailer)
    );
    let mut one = [httparse::EMPTY_HEADER; 1];
    assert_eq!(
        parse_trailers(b"A: 1\r\nB: 2\r\n\r\n", &mut one),
        Err(TrailersTooLarge)
    );

    // The decoder's block round-trips through the parser.
    let mut dec = ChunkedDecoder::new(ChunkedLimits::default());
    let body = b"0\r\nX-Sum: 42\r\n\r\n";
    assert_eq!(dec.decode(body), Ok((body.len(), Some(Chunk::Trailers))));
    let headers = parse_trailers(dec.trailer_block(), &mut storage).expect("valid");
    assert_eq!(headers.len(), 1);
    assert_eq!((headers[0].name, headers[0].value), ("X-Sum", &b"42"[..]));
}
