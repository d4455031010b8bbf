//! Reading responses off one connection: a fixed input buffer filled by non-blocking reads,
//! and the parse of every response in it with `http1::response` (head and framing) and
//! `http1::chunked` (chunked bodies), handing body bytes to a sink as they pass.
//!
//! No allocation after construction; body bytes are never collected, only shown to the sink.

use std::io::{self, Read};
use std::mem::MaybeUninit;

use asycamore::http1::chunked::{Chunk, ChunkedDecoder};
use asycamore::http1::response::{ResponseBody, parse_response};
use asycamore::http1::{ChunkedLimits, HeadLimits, Header};

/// The input buffer's size.
const BUF_LEN: usize = 64 * 1024;
/// Compact the buffer before a read that would have less room than this.
const MIN_ROOM: usize = 16 * 1024;
/// Header storage per response head.
const MAX_HEADERS: usize = 64;

/// What one read did.
pub enum Fill {
    /// This many bytes arrived; `drained` when the read did not fill the room it had (so
    /// the socket had nothing more at that moment).
    Got {
        /// Bytes read.
        n: usize,
        /// The read was short.
        drained: bool,
    },
    /// Nothing to read now.
    Wait,
    /// The peer closed its side.
    Eof,
}

/// What parsing the buffered bytes gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Everything buffered is consumed or part of an incomplete response.
    More,
    /// A final response is complete.
    Response {
        /// Its status.
        status: u16,
        /// Whether the connection may carry more requests.
        keep_alive: bool,
    },
    /// An interim (1xx) response was skipped.
    Interim,
    /// The bytes are not a valid response (head, framing, chunked body or an upgrade).
    Invalid,
}

/// How the end of the stream fits the response being read.
#[derive(Debug, PartialEq, Eq)]
pub enum AtEof {
    /// Between responses.
    Boundary,
    /// A close-delimited body ended here: the response is complete.
    Complete {
        /// Its status.
        status: u16,
    },
    /// In the middle of a response.
    Short,
}

enum State {
    Head,
    Length {
        status: u16,
        keep_alive: bool,
        left: u64,
    },
    Chunked {
        status: u16,
        keep_alive: bool,
    },
    UntilClose {
        status: u16,
    },
}

/// One connection's response reader.
pub struct Reader {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    state: State,
    decoder: ChunkedDecoder,
    limits: HeadLimits,
}

impl Reader {
    /// An empty reader.
    pub fn new() -> Reader {
        Reader {
            buf: vec![0; BUF_LEN].into_boxed_slice(),
            start: 0,
            end: 0,
            state: State::Head,
            decoder: ChunkedDecoder::new(ChunkedLimits::default()),
            limits: HeadLimits {
                max_head_bytes: BUF_LEN - MIN_ROOM,
                max_headers: MAX_HEADERS,
            },
        }
    }

    /// Forgets everything (for a new connection).
    pub fn reset(&mut self) {
        self.start = 0;
        self.end = 0;
        self.state = State::Head;
        self.decoder.reset();
    }

    /// One read from `source` into the buffer.
    ///
    /// # Errors
    ///
    /// The read's error (other than `WouldBlock` and `Interrupted`).
    pub fn fill(&mut self, source: &mut impl Read) -> io::Result<Fill> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.buf.len() - self.end < MIN_ROOM {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let room = self.buf.len() - self.end;
        loop {
            return match source.read(&mut self.buf[self.end..]) {
                Ok(0) => Ok(Fill::Eof),
                Ok(n) => {
                    self.end += n;
                    Ok(Fill::Got {
                        n,
                        drained: n < room,
                    })
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(Fill::Wait),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => Err(err),
            };
        }
    }

    /// Whether bytes are buffered that no step has consumed.
    pub fn has_buffered(&self) -> bool {
        self.start < self.end
    }

    /// Parses from the buffer until a response completes or more bytes are needed. Body
    /// bytes (decoded) go to `sink`. `method` is the method of the request being answered.
    pub fn step(&mut self, method: &str, sink: &mut impl FnMut(&[u8])) -> Step {
        loop {
            let input = &self.buf[self.start..self.end];
            match &mut self.state {
                State::Head => {
                    let mut storage: [MaybeUninit<Header<'_>>; MAX_HEADERS] =
                        [const { MaybeUninit::uninit() }; MAX_HEADERS];
                    let head = match parse_response(input, method, &mut storage, &self.limits) {
                        Ok(Some(head)) => head,
                        Ok(None) => return Step::More,
                        Err(_) => return Step::Invalid,
                    };
                    let (status, keep_alive) = (head.status, head.keep_alive);
                    self.start += head.head_len;
                    self.state = match head.body {
                        ResponseBody::Interim => return Step::Interim,
                        ResponseBody::Upgrade => return Step::Invalid,
                        ResponseBody::None => return Step::Response { status, keep_alive },
                        ResponseBody::Length(left) => State::Length {
                            status,
                            keep_alive,
                            left,
                        },
                        ResponseBody::Chunked => {
                            self.decoder.reset();
                            State::Chunked { status, keep_alive }
                        }
                        ResponseBody::UntilClose => State::UntilClose { status },
                    };
                }
                State::Length {
                    status,
                    keep_alive,
                    left,
                } => {
                    let n = usize::try_from(*left).map_or(input.len(), |l| l.min(input.len()));
                    sink(&input[..n]);
                    self.start += n;
                    *left -= n as u64;
                    if *left > 0 {
                        return Step::More;
                    }
                    let done = Step::Response {
                        status: *status,
                        keep_alive: *keep_alive,
                    };
                    self.state = State::Head;
                    return done;
                }
                State::Chunked { status, keep_alive } => match self.decoder.decode(input) {
                    Ok((n, event)) => {
                        self.start += n;
                        match event {
                            Some(Chunk::Data(data)) => sink(data),
                            Some(Chunk::End) => {
                                let done = Step::Response {
                                    status: *status,
                                    keep_alive: *keep_alive,
                                };
                                self.state = State::Head;
                                return done;
                            }
                            Some(Chunk::Start { .. } | Chunk::Trailers) => {}
                            None => return Step::More,
                        }
                    }
                    Err(_) => return Step::Invalid,
                },
                State::UntilClose { .. } => {
                    sink(input);
                    self.start = self.end;
                    return Step::More;
                }
            }
        }
    }

    /// What the end of the stream means for the response being read (after every complete
    /// response has been stepped out of the buffer).
    pub fn at_eof(&mut self) -> AtEof {
        match self.state {
            State::Head if !self.has_buffered() => AtEof::Boundary,
            State::UntilClose { status } => {
                self.state = State::Head;
                AtEof::Complete { status }
            }
            _ => AtEof::Short,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads everything in `pieces` (one read per piece), stepping after each read.
    fn read_all(pieces: &[&[u8]]) -> (Vec<Step>, Vec<u8>, AtEof) {
        let mut reader = Reader::new();
        let mut steps = Vec::new();
        let mut body = Vec::new();
        for piece in pieces {
            let mut source: &[u8] = piece;
            assert!(matches!(reader.fill(&mut source), Ok(Fill::Got { .. })));
            loop {
                match reader.step("GET", &mut |d: &[u8]| body.extend_from_slice(d)) {
                    Step::More => break,
                    Step::Invalid => {
                        steps.push(Step::Invalid);
                        return (steps, body, AtEof::Short);
                    }
                    step => steps.push(step),
                }
            }
        }
        (steps, body, reader.at_eof())
    }

    #[test]
    fn reads_pipelined_and_close_delimited_responses_split_anywhere() {
        let stream: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab\
            HTTP/1.1 100 Continue\r\n\r\n\
            HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nc\r\n0\r\n\r\n\
            HTTP/1.0 200 OK\r\n\r\nrest";
        let ok = |status, keep_alive| Step::Response { status, keep_alive };
        let want = (
            vec![ok(200, true), Step::Interim, ok(500, true)],
            b"abcrest".to_vec(),
            AtEof::Complete { status: 200 },
        );
        for cut in 1..stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(read_all(&[a, b]), want, "cut at {cut}");
        }
    }

    #[test]
    fn eof_mid_response_is_short_and_garbage_is_invalid() {
        let (_, _, eof) = read_all(&[b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"]);
        assert_eq!(eof, AtEof::Short);
        let (_, _, eof) = read_all(&[b"HTTP/1.1 200 OK\r\nContent-"]);
        assert_eq!(eof, AtEof::Short);
        let (steps, _, _) = read_all(&[b"SMTP ready\r\n\r\n"]);
        assert_eq!(steps, [Step::Invalid]);
    }
}
