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
mod tests;
