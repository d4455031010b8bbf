//! Decoder for the chunked transfer coding (RFC 9112 section 7.1): turns the bytes of a
//! chunked request body into chunk boundaries, payload slices and an optional trailer block.
//!
//! This file must never copy payload (data events borrow the caller's input), never consume
//! a byte past the end of the body (the next pipelined request starts there), never depend
//! on how the input was split into reads, and never allocate unless trailers are present.
//!
//! Line endings are strict here, unlike the head: every CRLF must be CR LF, because chunk
//! framing is where proxies and servers disagreeing on a bare LF turns into smuggling.

use httparse::Status;

use super::{ChunkedLimits, Header, ParseError};

/// Where the decoder is in the chunked grammar; each state has its own handler.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum ChunkedState {
    /// Start of a chunk line: a hex digit is required.
    SizeStart,
    /// Inside the hex digits of a chunk size.
    Size,
    /// BWS after the size, before `;` or CR.
    SizeLws,
    /// Inside chunk extensions, skipped up to CR.
    Extension,
    /// CR of a chunk line seen, LF required.
    SizeLf,
    /// Inside chunk data; `remaining` bytes are still owed.
    Data,
    /// After chunk data, CR required.
    DataCr,
    /// After chunk data and CR, LF required.
    DataLf,
    /// After the last chunk or a trailer line: a field line or the final CRLF.
    TrailerStart,
    /// Inside a trailer field line.
    TrailerLine,
    /// CR of a trailer line seen, LF required.
    TrailerLf,
    /// CR of the final blank line seen, LF required.
    EndLf,
    /// `Trailers` was emitted; `End` is owed without consuming anything.
    EndPending,
    /// `End` was emitted; nothing more belongs to this body.
    Done,
    /// An error was returned; it is returned again so a confused caller cannot resync.
    Failed(ParseError),
}

/// One step of decoding. Payload borrows from the input given to [`ChunkedDecoder::decode`].
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// A non-empty chunk of `size` payload bytes begins; `Data` events follow.
    Start {
        /// The chunk size announced on the chunk line.
        size: u64,
    },
    /// Payload bytes of the current chunk (never empty, never past the chunk).
    Data(&'a [u8]),
    /// The trailer section is complete; read it with [`ChunkedDecoder::trailer_block`].
    Trailers,
    /// The body is complete.
    End,
}

/// Incremental chunked body decoder; feed it bytes in any split, get the same events.
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: ChunkedState,
    /// The size being read in `Size`, then the data bytes left in `Data`.
    remaining: u64,
    /// Bytes on the current chunk line that carry no size: extra leading zeros, BWS and
    /// extensions (bounded by `max_extension_bytes`).
    ext_len: usize,
    /// The trailer section; stays unallocated when there are no trailers.
    trailer: Vec<u8>,
    /// Offset in `trailer` of the field line being read.
    line_start: usize,
    trailer_lines: usize,
    limits: ChunkedLimits,
}

/// What a state handler did: bytes it consumed and the event it produced, if any.
type Step<'a> = Result<(usize, Option<Chunk<'a>>), ParseError>;

impl ChunkedDecoder {
    /// A decoder positioned at the start of a chunked body.
    pub fn new(limits: ChunkedLimits) -> Self {
        Self {
            state: ChunkedState::SizeStart,
            remaining: 0,
            ext_len: 0,
            trailer: Vec::new(),
            line_start: 0,
            trailer_lines: 0,
            limits,
        }
    }

    /// Readies the decoder for the next body, keeping the trailer buffer's allocation.
    pub fn reset(&mut self) {
        self.state = ChunkedState::SizeStart;
        self.remaining = 0;
        self.ext_len = 0;
        self.trailer.clear();
        self.line_start = 0;
        self.trailer_lines = 0;
    }

    /// Consumes a prefix of `input` and yields at most one event. Returns (consumed, event).
    /// `(input.len(), None)` means "give me more bytes". Never consumes a byte past the end of
    /// the message: after `End` it returns `(0, None)` forever.
    ///
    /// # Errors
    ///
    /// Any violation of the chunked grammar or of the [`ChunkedLimits`]; the decoder then
    /// returns the same error on every later call (until [`reset`](Self::reset)).
    pub fn decode<'a>(
        &mut self,
        input: &'a [u8],
    ) -> Result<(usize, Option<Chunk<'a>>), ParseError> {
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            let step = match (self.state, rest.first()) {
                (ChunkedState::Done, _) => return Ok((pos, None)),
                (ChunkedState::Failed(e), _) => return Err(e),
                (ChunkedState::EndPending, _) => self.end_pending(),
                (_, None) => return Ok((pos, None)),
                (ChunkedState::SizeStart, Some(&b)) => self.size_start(b),
                (ChunkedState::Size, Some(&b)) => self.size(b),
                (ChunkedState::SizeLws, Some(&b)) => self.size_lws(b),
                (ChunkedState::Extension, Some(&b)) => self.extension(b),
                (ChunkedState::SizeLf, Some(&b)) => self.size_lf(b),
                (ChunkedState::Data, Some(_)) => self.data(rest),
                (ChunkedState::DataCr, Some(&b)) => self.data_cr(b),
                (ChunkedState::DataLf, Some(&b)) => self.data_lf(b),
                (ChunkedState::TrailerStart, Some(&b)) => self.trailer_start(b),
                (ChunkedState::TrailerLine, Some(_)) => self.trailer_line(rest),
                (ChunkedState::TrailerLf, Some(&b)) => self.trailer_lf(b),
                (ChunkedState::EndLf, Some(&b)) => self.end_lf(b),
            };
            match step {
                Ok((n, None)) => pos += n,
                Ok((n, Some(event))) => return Ok((pos + n, Some(event))),
                Err(e) => {
                    self.state = ChunkedState::Failed(e);
                    return Err(e);
                }
            }
        }
    }

    /// The raw trailer section (field lines, ending with the blank line) after
    /// [`Chunk::Trailers`]; empty when the body had no trailers.
    pub fn trailer_block(&self) -> &[u8] {
        &self.trailer
    }

    /// Whether `End` has been returned.
    pub fn is_done(&self) -> bool {
        self.state == ChunkedState::Done
    }

    fn size_start(&mut self, b: u8) -> Step<'static> {
        let digit = hex_value(b).ok_or(ParseError::BadChunkSize)?;
        self.remaining = u64::from(digit);
        self.state = ChunkedState::Size;
        Ok((1, None))
    }

    fn size(&mut self, b: u8) -> Step<'static> {
        if let Some(digit) = hex_value(b) {
            // More than 16 significant hex digits cannot fit; leading zeros stay at zero.
            if self.remaining >> 60 != 0 {
                return Err(ParseError::ChunkSizeOverflow);
            }
            if self.remaining == 0 && digit == 0 {
                // Leading zeros are valid but carry nothing; they share the extension budget
                // so an endless run of them cannot keep a connection busy for free.
                self.count_ext_byte()?;
            }
            self.remaining = (self.remaining << 4) | u64::from(digit);
            return Ok((1, None));
        }
        self.after_size(b)
    }

    fn size_lws(&mut self, b: u8) -> Step<'static> {
        self.after_size(b)
    }

    /// Shared by `Size` (first non-digit) and `SizeLws`: only BWS, `;` or CR may follow.
    fn after_size(&mut self, b: u8) -> Step<'static> {
        match b {
            b'\r' => self.state = ChunkedState::SizeLf,
            b'\n' => return Err(ParseError::MissingChunkCrlf),
            b' ' | b'\t' => {
                self.count_ext_byte()?;
                self.state = ChunkedState::SizeLws;
            }
            b';' => {
                self.count_ext_byte()?;
                self.state = ChunkedState::Extension;
            }
            _ => return Err(ParseError::BadChunkSize),
        }
        Ok((1, None))
    }

    fn extension(&mut self, b: u8) -> Step<'static> {
        // Extensions are skipped, not parsed: no quoted-string may hold CR, LF or other
        // controls, so the first CR ends the line whatever the extension grammar says.
        match b {
            b'\r' => self.state = ChunkedState::SizeLf,
            b'\n' => return Err(ParseError::MissingChunkCrlf),
            b'\t' => self.count_ext_byte()?,
            0..=0x1f | 0x7f => return Err(ParseError::BadChunkExtension),
            _ => self.count_ext_byte()?,
        }
        Ok((1, None))
    }

    fn count_ext_byte(&mut self) -> Result<(), ParseError> {
        self.ext_len += 1;
        if self.ext_len > self.limits.max_extension_bytes {
            return Err(ParseError::ChunkExtensionTooLong);
        }
        Ok(())
    }

    fn size_lf(&mut self, b: u8) -> Step<'static> {
        if b != b'\n' {
            return Err(ParseError::MissingChunkCrlf);
        }
        if self.remaining == 0 {
            self.state = ChunkedState::TrailerStart;
            return Ok((1, None));
        }
        self.state = ChunkedState::Data;
        Ok((
            1,
            Some(Chunk::Start {
                size: self.remaining,
            }),
        ))
    }

    fn data<'a>(&mut self, rest: &'a [u8]) -> Step<'a> {
        // `rest` is non-empty and `remaining` is non-zero here, so the slice is too.
        let n = usize::try_from(self.remaining).map_or(rest.len(), |r| r.min(rest.len()));
        self.remaining -= n as u64;
        if self.remaining == 0 {
            self.state = ChunkedState::DataCr;
        }
        Ok((n, Some(Chunk::Data(&rest[..n]))))
    }

    fn data_cr(&mut self, b: u8) -> Step<'static> {
        if b != b'\r' {
            return Err(ParseError::MissingChunkCrlf);
        }
        self.state = ChunkedState::DataLf;
        Ok((1, None))
    }

    fn data_lf(&mut self, b: u8) -> Step<'static> {
        if b != b'\n' {
            return Err(ParseError::MissingChunkCrlf);
        }
        self.ext_len = 0;
        self.state = ChunkedState::SizeStart;
        Ok((1, None))
    }

    fn trailer_start(&mut self, b: u8) -> Step<'static> {
        match b {
            b'\r' => {
                // The blank line is part of the block only when there is a block.
                if !self.trailer.is_empty() {
                    self.push_trailer(b"\r")?;
                }
                self.state = ChunkedState::EndLf;
            }
            b'\n' => return Err(ParseError::MissingChunkCrlf),
            _ => {
                self.trailer_lines += 1;
                if self.trailer_lines > self.limits.max_trailers {
                    return Err(ParseError::TrailersTooLarge);
                }
                self.line_start = self.trailer.len();
                self.push_trailer(&[b])?;
                self.state = ChunkedState::TrailerLine;
            }
        }
        Ok((1, None))
    }

    fn trailer_line(&mut self, rest: &[u8]) -> Step<'static> {
        let Some(end) = rest.iter().position(|&b| b == b'\r' || b == b'\n') else {
            self.push_trailer(rest)?;
            return Ok((rest.len(), None));
        };
        if rest[end] == b'\n' {
            return Err(ParseError::MissingChunkCrlf);
        }
        self.push_trailer(&rest[..=end])?;
        self.state = ChunkedState::TrailerLf;
        Ok((end + 1, None))
    }

    fn trailer_lf(&mut self, b: u8) -> Step<'static> {
        if b != b'\n' {
            return Err(ParseError::MissingChunkCrlf);
        }
        self.push_trailer(b"\n")?;
        // Checking each line as it completes rejects junk early and needs storage for one
        // header only; a complete line followed by nothing parses as Partial.
        let mut one = [httparse::EMPTY_HEADER; 1];
        match httparse::parse_headers(&self.trailer[self.line_start..], &mut one) {
            Ok(Status::Partial) => {}
            Ok(Status::Complete(_)) | Err(_) => return Err(ParseError::BadTrailer),
        }
        self.state = ChunkedState::TrailerStart;
        Ok((1, None))
    }

    fn end_lf(&mut self, b: u8) -> Step<'static> {
        if b != b'\n' {
            return Err(ParseError::MissingChunkCrlf);
        }
        if self.trailer.is_empty() {
            self.state = ChunkedState::Done;
            return Ok((1, Some(Chunk::End)));
        }
        self.push_trailer(b"\n")?;
        self.state = ChunkedState::EndPending;
        Ok((1, Some(Chunk::Trailers)))
    }

    fn end_pending(&mut self) -> Step<'static> {
        self.state = ChunkedState::Done;
        Ok((0, Some(Chunk::End)))
    }

    fn push_trailer(&mut self, bytes: &[u8]) -> Result<(), ParseError> {
        if self.trailer.len() + bytes.len() > self.limits.max_trailer_bytes {
            return Err(ParseError::TrailersTooLarge);
        }
        self.trailer.extend_from_slice(bytes);
        Ok(())
    }
}

/// Parses a raw trailer block into the caller's storage.
///
/// Deviation from the brief: `storage` is initialised (`&mut [Header]`, e.g.
/// `[httparse::EMPTY_HEADER; 32]`), because `httparse::parse_headers` only fills initialised
/// headers and turning `MaybeUninit` storage into a slice needs `unsafe` or a Rust newer
/// than our MSRV. Trailers are rare, so the initialisation cost is off the hot path.
/// An empty block (no trailers were sent) gives an empty slice.
///
/// # Errors
///
/// [`ParseError::TrailersTooLarge`] if `storage` is too small, [`ParseError::BadTrailer`] if
/// `block` is not exactly a field section ending with a blank line.
pub fn parse_trailers<'h, 'b>(
    block: &'b [u8],
    storage: &'h mut [Header<'b>],
) -> Result<&'h [Header<'b>], ParseError> {
    if block.is_empty() {
        return Ok(&[]);
    }
    match httparse::parse_headers(block, storage) {
        Ok(Status::Complete((len, headers))) if len == block.len() => Ok(headers),
        Err(httparse::Error::TooManyHeaders) => Err(ParseError::TrailersTooLarge),
        Ok(_) | Err(_) => Err(ParseError::BadTrailer),
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
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
}
