//! The bytes of a run, built once before any connection opens: the request as a short
//! [`Program`] of byte pieces (a large chunked upload is a few pieces repeated, never
//! materialised whole), the pipelined batch pre-built as one buffer when it is small, and,
//! for `--verify-echo`, the decoded response body the echo handler must send back.
//!
//! Nothing here runs per request except [`write_tag`], which stamps a request's unique tag
//! (connection id and sequence number, fixed width) into bytes already in place.

use std::sync::Arc;

use crate::cli::{Body, Settings};

/// The tag `--verify-echo` puts at the start of every request body.
const TAG_TEMPLATE: &[u8] = b"<tag c=00000000 s=0000000000000000>";
/// The tag's length in bytes.
pub const TAG_LEN: usize = TAG_TEMPLATE.len();
/// Where the connection id's 8 hex digits and the sequence number's 16 start in a tag.
const CONN_AT: usize = 7;
const SEQ_AT: usize = 18;

/// A batch is pre-built as one buffer when it is at most this long.
const CONTIGUOUS_MAX: usize = 1 << 20;
/// Repeated chunks are grouped into pieces of about this many bytes, so a write takes
/// many small chunks at once.
const GROUP_BYTES: usize = 64 * 1024;
/// The filler of synthesised chunks (each chunk starts the pattern afresh).
const FILLER: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Writes the tag of request `seq` on connection `conn` into `out` (`TAG_LEN` bytes).
pub fn write_tag(out: &mut [u8], conn: u32, seq: u64) {
    out.copy_from_slice(TAG_TEMPLATE);
    hex(&mut out[CONN_AT..CONN_AT + 8], u64::from(conn));
    hex(&mut out[SEQ_AT..SEQ_AT + 16], seq);
}

/// The (connection, sequence) a tag names, if `tag` is one.
pub fn read_tag(tag: &[u8]) -> Option<(u32, u64)> {
    if tag.len() != TAG_LEN
        || tag[..CONN_AT] != TAG_TEMPLATE[..CONN_AT]
        || tag[CONN_AT + 8..SEQ_AT] != TAG_TEMPLATE[CONN_AT + 8..SEQ_AT]
        || tag[TAG_LEN - 1] != b'>'
    {
        return None;
    }
    let conn = unhex(&tag[CONN_AT..CONN_AT + 8])?;
    let seq = unhex(&tag[SEQ_AT..SEQ_AT + 16])?;
    Some((u32::try_from(conn).ok()?, seq))
}

fn hex(out: &mut [u8], mut value: u64) {
    for b in out.iter_mut().rev() {
        *b = b"0123456789abcdef"[(value & 0xf) as usize];
        value >>= 4;
    }
}

fn unhex(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, &b| {
        let d = (b as char).to_digit(16)?;
        Some((acc << 4) | u64::from(d))
    })
}

/// One piece of a program: shared bytes repeated, or the per-request tag.
#[derive(Debug)]
pub enum Piece {
    /// `data`, `repeat` times over.
    Bytes {
        /// The bytes.
        data: Arc<[u8]>,
        /// How many times they follow each other (at least 1).
        repeat: u64,
    },
    /// The request's `TAG_LEN`-byte tag.
    Tag,
}

impl Piece {
    fn len(&self) -> usize {
        match self {
            Piece::Bytes { data, .. } => data.len(),
            Piece::Tag => TAG_LEN,
        }
    }

    fn repeat(&self) -> u64 {
        match self {
            Piece::Bytes { repeat, .. } => *repeat,
            Piece::Tag => 1,
        }
    }
}

/// A byte string as a list of pieces.
#[derive(Debug, Default)]
pub struct Program {
    pieces: Vec<Piece>,
}

/// A position in a [`Program`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Cursor {
    piece: usize,
    rep: u64,
    off: usize,
}

impl Program {
    fn push(&mut self, data: &[u8], repeat: u64) {
        if !data.is_empty() && repeat > 0 {
            self.pieces.push(Piece::Bytes {
                data: data.into(),
                repeat,
            });
        }
    }

    fn push_tag(&mut self) {
        self.pieces.push(Piece::Tag);
    }

    /// The total length in bytes.
    pub fn len(&self) -> u64 {
        self.pieces
            .iter()
            .map(|p| p.len() as u64 * p.repeat())
            .sum()
    }

    /// The bytes from `at` to the end of the current piece (`tag` for a tag piece); `None`
    /// at the end of the program.
    pub fn chunk<'a>(&'a self, at: &Cursor, tag: &'a [u8]) -> Option<&'a [u8]> {
        match self.pieces.get(at.piece)? {
            Piece::Bytes { data, .. } => Some(&data[at.off..]),
            Piece::Tag => Some(&tag[at.off..]),
        }
    }

    /// Whether `at` is on a tag piece.
    pub fn is_tag(&self, at: &Cursor) -> bool {
        matches!(self.pieces.get(at.piece), Some(Piece::Tag))
    }

    /// The offset of `at` within the current tag piece.
    pub fn offset(at: &Cursor) -> usize {
        at.off
    }

    /// Moves `at` forward by `n` bytes, at most to the end of the current chunk.
    pub fn advance(&self, at: &mut Cursor, n: usize) {
        let Some(piece) = self.pieces.get(at.piece) else {
            return;
        };
        at.off += n;
        if at.off >= piece.len() {
            at.off = 0;
            at.rep += 1;
            if at.rep >= piece.repeat() {
                at.rep = 0;
                at.piece += 1;
            }
        }
    }

    /// Whether `at` is past the last byte.
    pub fn at_end(&self, at: &Cursor) -> bool {
        at.piece >= self.pieces.len()
    }

    /// The program's bytes in one buffer, with a placeholder tag; and the tag's offset.
    fn materialise(&self) -> (Vec<u8>, Option<usize>) {
        let mut out = Vec::with_capacity(usize::try_from(self.len()).unwrap_or(0));
        let mut tag_at = None;
        for piece in &self.pieces {
            match piece {
                Piece::Bytes { data, repeat } => {
                    for _ in 0..*repeat {
                        out.extend_from_slice(data);
                    }
                }
                Piece::Tag => {
                    tag_at = Some(out.len());
                    out.extend_from_slice(TAG_TEMPLATE);
                }
            }
        }
        (out, tag_at)
    }
}

/// A pipelined batch pre-built in one buffer: `depth` copies of the request.
#[derive(Debug)]
pub struct Batch {
    /// The copies, back to back.
    pub bytes: Arc<[u8]>,
    /// One request's length.
    pub request_len: usize,
    /// Where the tag sits in each copy, with --verify-echo.
    pub tag_at: Option<usize>,
}

/// What every connection of a run sends and expects.
#[derive(Debug)]
pub struct Plan {
    /// The method (it changes response framing for HEAD).
    pub method: String,
    /// One request.
    pub request: Arc<Program>,
    /// The pre-built batch, when small enough.
    pub batch: Option<Batch>,
    /// With --verify-echo: the decoded body the echo handler answers with.
    pub expect: Option<Arc<Program>>,
    /// Payload bytes of each request body (decoded).
    pub body_len: u64,
    /// Requests per batch.
    pub pipeline: u32,
    /// Each request on its own connection.
    pub connection_close: bool,
}

impl Plan {
    /// Builds the bytes for `settings`.
    pub fn build(settings: &Settings) -> Plan {
        let tagged = settings.verify_echo;
        let mut head = Vec::new();
        let url = &settings.url;
        head.extend_from_slice(
            format!("{} {} HTTP/1.1\r\n", settings.method, url.target).as_bytes(),
        );
        if !settings
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("host"))
        {
            head.extend_from_slice(format!("Host: {}\r\n", url.authority).as_bytes());
        }
        for (name, value) in &settings.headers {
            head.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if settings.connection_close {
            head.extend_from_slice(b"Connection: close\r\n");
        }
        let mut request = Program::default();
        let mut expect = Program::default();
        let body_len = match &settings.body {
            Body::Empty | Body::Fixed(_) => {
                let body: &[u8] = match &settings.body {
                    Body::Fixed(bytes) => bytes,
                    _ => &[],
                };
                let len = body.len() + if tagged { TAG_LEN } else { 0 };
                if len > 0 || settings.method == "POST" || settings.method == "PUT" {
                    head.extend_from_slice(format!("Content-Length: {len}\r\n").as_bytes());
                }
                head.extend_from_slice(b"\r\n");
                for program in [&mut request, &mut expect] {
                    program.push(&head, 1);
                    if tagged {
                        program.push_tag();
                    }
                    program.push(body, 1);
                }
                len as u64
            }
            Body::Chunked { chunks, size } => {
                head.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                chunked(&mut request, &mut expect, &head, *chunks, *size, tagged);
                chunks * size
            }
        };
        let batch = batch(&request, settings.pipeline);
        Plan {
            method: settings.method.clone(),
            request: Arc::new(request),
            batch,
            expect: tagged.then(|| Arc::new(expect)),
            body_len,
            pipeline: settings.pipeline,
            connection_close: settings.connection_close,
        }
    }
}

/// The request (head, then `chunks` chunks of `size` filler bytes, the first starting with
/// the tag if `tagged`) and the echo's decoded body (head text, then the payload).
fn chunked(
    request: &mut Program,
    expect: &mut Program,
    head: &[u8],
    chunks: u64,
    size: u64,
    tagged: bool,
) {
    let size_usize = usize::try_from(size).unwrap_or(usize::MAX);
    let payload: Vec<u8> = FILLER.iter().copied().cycle().take(size_usize).collect();
    let line = format!("{size:x}\r\n").into_bytes();
    let encoded = [line.as_slice(), &payload, b"\r\n"].concat();
    request.push(head, 1);
    expect.push(head, 1);
    let mut rest = chunks;
    if tagged && chunks > 0 {
        request.push(&line, 1);
        request.push_tag();
        request.push(&[&payload[TAG_LEN..], b"\r\n"].concat(), 1);
        expect.push_tag();
        expect.push(&payload[TAG_LEN..], 1);
        rest -= 1;
    }
    push_grouped(request, &encoded, rest);
    push_grouped(expect, &payload, rest);
    request.push(b"0\r\n\r\n", 1);
}

/// `count` copies of `unit`, as pieces of about `GROUP_BYTES` each.
fn push_grouped(program: &mut Program, unit: &[u8], count: u64) {
    let per_group = (GROUP_BYTES / unit.len().max(1)).max(1) as u64;
    let group = unit.repeat(usize::try_from(per_group.min(count)).unwrap_or(1));
    program.push(&group, count / per_group);
    let left = count % per_group;
    if left > 0 && count >= per_group {
        program.push(&unit.repeat(left as usize), 1);
    } else if left > 0 {
        program.push(&group, 1);
    }
}

/// `depth` copies of `request` in one buffer, if that is small.
fn batch(request: &Program, depth: u32) -> Option<Batch> {
    let len = usize::try_from(request.len()).ok()?;
    if len.checked_mul(depth as usize)? > CONTIGUOUS_MAX {
        return None;
    }
    let (one, tag_at) = request.materialise();
    Some(Batch {
        bytes: one.repeat(depth as usize).into(),
        request_len: len,
        tag_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(program: &Program, tag: &[u8]) -> Vec<u8> {
        let mut at = Cursor::default();
        let mut out = Vec::new();
        while let Some(chunk) = program.chunk(&at, tag) {
            out.extend_from_slice(chunk);
            let n = chunk.len();
            program.advance(&mut at, n);
        }
        out
    }

    #[test]
    fn tags_round_trip() {
        let mut tag = [0u8; TAG_LEN];
        write_tag(&mut tag, 0xabc, 0x1234_5678_9abc);
        assert_eq!(&tag, b"<tag c=00000abc s=0000123456789abc>");
        assert_eq!(read_tag(&tag), Some((0xabc, 0x1234_5678_9abc)));
        assert_eq!(read_tag(b"<tag c=00000abc s=0000123456789abX>"), None);
    }

    #[test]
    fn chunked_programs_encode_and_echo() {
        let (mut request, mut expect) = (Program::default(), Program::default());
        chunked(&mut request, &mut expect, b"H\r\n\r\n", 3, 40, true);
        let mut tag = [0u8; TAG_LEN];
        write_tag(&mut tag, 1, 2);
        let filler: Vec<u8> = FILLER.iter().copied().cycle().take(40).collect();
        let tagged = [&tag[..], &filler[TAG_LEN..]].concat();
        let want = [
            &b"H\r\n\r\n28\r\n"[..],
            &tagged,
            b"\r\n28\r\n",
            &filler,
            b"\r\n28\r\n",
            &filler,
            b"\r\n0\r\n\r\n",
        ]
        .concat();
        assert_eq!(bytes(&request, &tag), want);
        assert_eq!(request.len(), want.len() as u64);
        assert_eq!(
            bytes(&expect, &tag),
            [&b"H\r\n\r\n"[..], &tagged, &filler, &filler].concat()
        );
    }

    #[test]
    fn grouping_keeps_the_count() {
        for count in [0, 1, 5, 2000, 2001, 4096] {
            let mut program = Program::default();
            push_grouped(&mut program, b"0123456789abcdef0123456789abcdef", count);
            assert_eq!(program.len(), 32 * count, "{count}");
        }
    }
}
