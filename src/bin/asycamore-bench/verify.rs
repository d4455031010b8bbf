//! `--verify-echo`: checks, as body bytes stream past, that each response body is exactly
//! the echo of the request it answers (the plan's expected program with that request's
//! tag), and tells a body echoing another request of the same batch (out of order) from
//! one that is simply wrong.
//!
//! It keeps one cursor and one captured tag per connection: nothing is buffered or
//! allocated per response.

use std::sync::Arc;

use crate::plan::{Cursor, Program, TAG_LEN, read_tag, write_tag};

/// The outcome for one response.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The body is the echo of the request it answers.
    Match,
    /// The body is the exact echo of another request in flight on this connection.
    OutOfOrder,
    /// Anything else: other bytes, too short, too long.
    Mismatch,
}

/// One connection's echo checker.
pub struct Verifier {
    expect: Arc<Program>,
    conn: u32,
    at: Cursor,
    captured: [u8; TAG_LEN],
    /// A byte other than the tag differed, or the body ran past the expected end.
    differs: bool,
}

impl Verifier {
    /// A checker for connection `conn`.
    pub fn new(expect: Arc<Program>, conn: u32) -> Verifier {
        Verifier {
            expect,
            conn,
            at: Cursor::default(),
            captured: [0; TAG_LEN],
            differs: false,
        }
    }

    /// Compares the next body bytes of the response being read.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let is_tag = self.expect.is_tag(&self.at);
            let Some(want) = self.expect.chunk(&self.at, &self.captured) else {
                self.differs = true;
                return;
            };
            let n = want.len().min(data.len());
            if is_tag {
                let off = Program::offset(&self.at);
                self.captured[off..off + n].copy_from_slice(&data[..n]);
            } else if want[..n] != data[..n] {
                self.differs = true;
            }
            self.expect.advance(&mut self.at, n);
            data = &data[n..];
        }
    }

    /// Judges the response just completed, which answers request `seq`; the requests of
    /// its batch are `batch` (first sequence number and count). Readies for the next.
    pub fn finish(&mut self, seq: u64, batch: (u64, u32)) -> Verdict {
        let complete = self.expect.at_end(&self.at);
        let differs = std::mem::take(&mut self.differs) || !complete;
        self.at = Cursor::default();
        if differs {
            return Verdict::Mismatch;
        }
        let mut want = [0u8; TAG_LEN];
        write_tag(&mut want, self.conn, seq);
        if self.captured == want {
            return Verdict::Match;
        }
        let (first, count) = batch;
        match read_tag(&self.captured) {
            Some((conn, other))
                if conn == self.conn && other >= first && other < first + u64::from(count) =>
            {
                Verdict::OutOfOrder
            }
            _ => Verdict::Mismatch,
        }
    }

    /// Forgets a response in progress (the connection is gone).
    pub fn reset(&mut self) {
        self.at = Cursor::default();
        self.differs = false;
    }
}
