//! Fuzz target `chunked`: a chunked body (and whatever follows it) fed to
//! `http1::chunked::ChunkedDecoder`, whole and in pieces.
//!
//! Input layout: byte 0 (mod 8) is how many piece sizes follow, each byte of those a piece size
//! (0 is read as 1); the rest is the body, cut into pieces of those sizes in turn. The decoder
//! must give the same outcome both ways: the same chunk sizes, the same payload per chunk, the
//! same trailer block, the same end (done, error, or wanting more) at the same offset. It must
//! never report more bytes consumed than it was given, must consume everything it is given
//! until the body ends, and must consume nothing after the body (the next pipelined request
//! starts there); a `Data` event is never empty nor longer than its chunk, and a trailer block
//! it accepted parses with `parse_trailers`.

#![no_main]

use asycamore::http1::chunked::{Chunk, ChunkedDecoder, parse_trailers};
use asycamore::http1::{ChunkedLimits, ParseError};
use libfuzzer_sys::fuzz_target;

/// What decoding produced, independent of how the input was split.
#[derive(Debug, Default, PartialEq, Eq)]
struct Outcome {
    /// Announced size and payload of each chunk, in order.
    chunks: Vec<(u64, Vec<u8>)>,
    /// The trailer block, when `Trailers` was emitted.
    trailers: Option<Vec<u8>>,
    /// `End` was emitted.
    ended: bool,
    /// The error, if decoding failed.
    error: Option<ParseError>,
    /// Bytes consumed in all (where the body ends when `ended`); 0 after an error.
    consumed: usize,
}

fuzz_target!(|data: &[u8]| {
    let (sizes, body) = match data.split_first() {
        Some((&n, rest)) => rest.split_at(usize::from(n % 8).min(rest.len())),
        None => (&[][..], data),
    };
    let whole = decode(&[body]);
    let mut pieces = Vec::new();
    let mut at = 0;
    for &size in sizes.iter().cycle() {
        if at >= body.len() {
            break;
        }
        let end = body.len().min(at + usize::from(size.max(1)));
        pieces.push(&body[at..end]);
        at = end;
    }
    if sizes.is_empty() {
        // No sizes: one byte at a time, the hardest split.
        pieces = body.chunks(1).collect();
    }
    let split = decode(&pieces);
    assert_eq!(
        whole,
        split,
        "outcome depends on the split ({} pieces)",
        pieces.len()
    );

    if whole.ended {
        // The body ends on its final LF, and needs nothing after it to know that.
        assert!(whole.consumed >= 5 && body[whole.consumed - 1] == b'\n');
        let exact = decode(&[&body[..whole.consumed]]);
        assert_eq!(
            exact, whole,
            "the end of the body depends on what follows it"
        );
    } else if whole.error.is_none() {
        assert_eq!(
            whole.consumed,
            body.len(),
            "wants more but did not take everything"
        );
    }
});

/// Feeds `pieces` in order, each until the decoder has taken all of it, ended or failed.
fn decode(pieces: &[&[u8]]) -> Outcome {
    let mut decoder = ChunkedDecoder::new(ChunkedLimits::default());
    let mut out = Outcome::default();
    // Payload of the chunk being read and the bytes it still owes.
    let mut owed = 0u64;
    'pieces: for piece in pieces {
        let mut at = 0;
        loop {
            let input = &piece[at..];
            match decoder.decode(input) {
                Ok((n, event)) => {
                    assert!(n <= input.len(), "consumed {n} of {}", input.len());
                    at += n;
                    out.consumed += n;
                    match event {
                        Some(Chunk::Start { size }) => {
                            assert!(size > 0 && owed == 0, "Start {size} with {owed} owed");
                            assert!(out.trailers.is_none() && !out.ended);
                            owed = size;
                            out.chunks.push((size, Vec::new()));
                        }
                        Some(Chunk::Data(bytes)) => {
                            assert!(!bytes.is_empty(), "empty Data event");
                            assert!(bytes.len() as u64 <= owed, "Data past the chunk");
                            assert_eq!(n, bytes.len(), "Data consumed other bytes too");
                            owed -= bytes.len() as u64;
                            out.chunks
                                .last_mut()
                                .expect("Data before Start")
                                .1
                                .extend(bytes);
                        }
                        Some(Chunk::Trailers) => {
                            assert!(owed == 0 && out.trailers.is_none() && !out.ended);
                            let block = decoder.trailer_block();
                            assert!(!block.is_empty(), "Trailers with an empty block");
                            let mut storage = [asycamore::http1::Header {
                                name: "",
                                value: b"",
                            }; 32];
                            let parsed = parse_trailers(block, &mut storage);
                            assert!(parsed.is_ok(), "accepted trailers {block:?}: {parsed:?}");
                            out.trailers = Some(block.to_vec());
                        }
                        Some(Chunk::End) => {
                            assert!(owed == 0 && !out.ended, "End owed {owed}");
                            assert!(decoder.is_done());
                            out.ended = true;
                        }
                        None if decoder.is_done() => {
                            // After End: nothing more is consumed, now or later.
                            assert!(out.ended && n == 0, "consumed {n} after the end");
                            break 'pieces;
                        }
                        None => {
                            assert_eq!(n, input.len(), "wants more but left bytes");
                            continue 'pieces;
                        }
                    }
                }
                Err(e) => {
                    // Failed for good: the same error again, nothing consumed.
                    assert_eq!(decoder.decode(&piece[at..]), Err(e));
                    assert_eq!(decoder.decode(b"0\r\n\r\n"), Err(e));
                    out.error = Some(e);
                    // A failed call does not say how far it got, so the count of consumed
                    // bytes depends on the split; the error and the events before it do not.
                    out.consumed = 0;
                    break 'pieces;
                }
            }
        }
    }
    if out.ended {
        assert_eq!(
            decoder.decode(b"0\r\n\r\n"),
            Ok((0, None)),
            "input taken after End"
        );
    }
    out
}
