//! Writing one connection's batches: straight from the plan's pre-built batch buffer (a
//! copy of it per connection only when tags must be stamped in), or, for requests too large
//! to pre-build, by walking the request program with vectored writes.
//!
//! Starting a batch stamps tags into bytes already in place; nothing is formatted or
//! allocated per request.

use std::io::{self, IoSlice, Write};
use std::sync::Arc;

use crate::plan::{Cursor, Plan, Program, TAG_LEN, write_tag};

/// Slices gathered per vectored write.
const IOVECS: usize = 64;

/// Whether a write finished the batch.
#[derive(Debug, PartialEq, Eq)]
pub enum Wrote {
    /// Every byte of the batch is written.
    Done,
    /// The socket took no more; wait for it to become writable.
    Blocked,
}

enum Source {
    /// The batch buffer (shared, or this connection's tagged copy).
    Batch {
        bytes: Arc<[u8]>,
        own: Option<Box<[u8]>>,
        request_len: usize,
        tag_at: Option<usize>,
        pos: usize,
        end: usize,
    },
    /// The request program, `left` requests to go, the current one's tag in `tag`.
    Program {
        program: Arc<Program>,
        tagged: bool,
        at: Cursor,
        tag: [u8; TAG_LEN],
        left: u32,
        seq: u64,
    },
}

/// One connection's request writer.
pub struct Writer {
    source: Source,
    conn: u32,
}

impl Writer {
    /// A writer for connection `conn` of `plan`.
    pub fn new(plan: &Plan, conn: u32) -> Writer {
        let tagged = plan.expect.is_some();
        let source = match &plan.batch {
            Some(batch) => Source::Batch {
                bytes: Arc::clone(&batch.bytes),
                own: batch
                    .tag_at
                    .map(|_| batch.bytes.to_vec().into_boxed_slice()),
                request_len: batch.request_len,
                tag_at: batch.tag_at,
                pos: 0,
                end: 0,
            },
            None => Source::Program {
                program: Arc::clone(&plan.request),
                tagged,
                at: Cursor::default(),
                tag: [0; TAG_LEN],
                left: 0,
                seq: 0,
            },
        };
        Writer { source, conn }
    }

    /// Readies `count` requests, numbered from `first_seq`, to be written.
    pub fn start(&mut self, first_seq: u64, count: u32) {
        match &mut self.source {
            Source::Batch {
                own,
                request_len,
                tag_at,
                pos,
                end,
                ..
            } => {
                if let (Some(own), Some(tag_at)) = (own, tag_at) {
                    for i in 0..count as usize {
                        let at = i * *request_len + *tag_at;
                        write_tag(&mut own[at..at + TAG_LEN], self.conn, first_seq + i as u64);
                    }
                }
                *pos = 0;
                *end = count as usize * *request_len;
            }
            Source::Program {
                tagged,
                at,
                tag,
                left,
                seq,
                ..
            } => {
                *at = Cursor::default();
                *left = count;
                *seq = first_seq;
                if *tagged {
                    write_tag(tag, self.conn, first_seq);
                }
            }
        }
    }

    /// Drops whatever is left of the batch (the connection is gone).
    pub fn cancel(&mut self) {
        self.start(0, 0);
    }

    /// Whether bytes of the batch remain to be written.
    pub fn pending(&self) -> bool {
        match &self.source {
            Source::Batch { pos, end, .. } => pos < end,
            Source::Program { left, .. } => *left > 0,
        }
    }

    /// Writes as much of the batch as `sink` takes.
    ///
    /// # Errors
    ///
    /// The write's error (other than `WouldBlock` and `Interrupted`).
    pub fn write_to(&mut self, sink: &mut impl Write) -> io::Result<Wrote> {
        while self.pending() {
            let written = match &mut self.source {
                Source::Batch {
                    bytes,
                    own,
                    pos,
                    end,
                    ..
                } => {
                    let all: &[u8] = own.as_deref().unwrap_or(bytes);
                    sink.write(&all[*pos..*end])
                }
                Source::Program {
                    program,
                    at,
                    tag,
                    left,
                    ..
                } => {
                    let mut slices = [IoSlice::new(&[]); IOVECS];
                    let n = gather(program, *at, tag, *left, &mut slices);
                    sink.write_vectored(&slices[..n])
                }
            };
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.advance(n),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(Wrote::Blocked),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(Wrote::Done)
    }

    fn advance(&mut self, mut n: usize) {
        match &mut self.source {
            Source::Batch { pos, .. } => *pos += n,
            Source::Program {
                program,
                tagged,
                at,
                tag,
                left,
                seq,
            } => {
                while n > 0 {
                    let Some(chunk) = program.chunk(at, tag) else {
                        break;
                    };
                    let step = chunk.len().min(n);
                    program.advance(at, step);
                    n -= step;
                    if program.at_end(at) {
                        // The request is complete: the next one starts with its own tag.
                        *at = Cursor::default();
                        *left -= 1;
                        *seq += 1;
                        if *tagged {
                            write_tag(tag, self.conn, *seq);
                        }
                        if *left == 0 {
                            break;
                        }
                    }
                }
            }
        }
    }
}

/// Fills `slices` with the bytes from `at`, over up to `left` requests; returns how many.
/// Only the current request's tag is known, so gathering stops before the next one's.
fn gather<'a>(
    program: &'a Program,
    mut at: Cursor,
    tag: &'a [u8; TAG_LEN],
    mut left: u32,
    slices: &mut [IoSlice<'a>; IOVECS],
) -> usize {
    let mut n = 0;
    let mut crossed = false;
    while n < IOVECS && left > 0 {
        if crossed && program.is_tag(&at) {
            break;
        }
        let Some(chunk) = program.chunk(&at, tag) else {
            break;
        };
        slices[n] = IoSlice::new(chunk);
        n += 1;
        let len = chunk.len();
        program.advance(&mut at, len);
        if program.at_end(&at) {
            at = Cursor::default();
            left -= 1;
            crossed = true;
        }
    }
    n
}
