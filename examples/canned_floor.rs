//! The floor of the pipelined benchmark: a mio loop that answers every request head with one
//! canned response, without parsing, routing, counting or a clock. Whatever asycamore spends
//! above this loop's CPU per request is the price of being an HTTP server; the rest is the
//! kernel's. `bench/floor.sh` runs it next to asycamore in one harness run.
//!
//! It only finds where each head ends (an empty line) and must not be used for anything but
//! measuring: it never reads a body, never closes on errors and trusts the client completely.
//!
//! Usage: `cargo run --release --example canned_floor -- PORT` (listens on 127.0.0.1:PORT).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(usize::MAX);
/// The same bytes asycamore sends for `/plaintext`, with a fixed date.
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Thu, 26 Nov 2026 \
05:58:43 GMT\r\nContent-Length: 13\r\n\r\nHello, World!";

/// One connection: how much of `\r\n\r\n` the bytes read so far end with, and the output
/// not yet taken by the socket.
struct Conn {
    stream: TcpStream,
    matched: usize,
    output: Vec<u8>,
}

fn main() -> io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(18090);
    let mut listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut conns: HashMap<usize, Conn> = HashMap::new();
    let mut next = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        poll.poll(&mut events, None)?;
        for event in &events {
            if event.token() == LISTENER {
                while let Ok((mut stream, _)) = listener.accept() {
                    stream.set_nodelay(true)?;
                    poll.registry().register(
                        &mut stream,
                        Token(next),
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    conns.insert(
                        next,
                        Conn {
                            stream,
                            matched: 0,
                            output: Vec::with_capacity(4096),
                        },
                    );
                    next += 1;
                }
                continue;
            }
            let key = event.token().0;
            let Some(conn) = conns.get_mut(&key) else {
                continue;
            };
            if serve(conn, &mut buf).is_err() {
                conns.remove(&key);
            }
        }
    }
}

/// Reads until the socket is drained, answering each complete head, then writes.
fn serve(conn: &mut Conn, buf: &mut [u8]) -> io::Result<()> {
    loop {
        match conn.stream.read(buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                let heads = count_heads(&mut conn.matched, &buf[..n]);
                for _ in 0..heads {
                    conn.output.extend_from_slice(RESPONSE);
                }
                if n < buf.len() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    while !conn.output.is_empty() {
        match conn.stream.write(&conn.output) {
            Ok(n) => {
                conn.output.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// How many heads end in `data` (an empty line, `\r\n\r\n`), given that the bytes before
/// it ended with `matched` bytes of one; leaves `matched` right for the next read. Jumps from
/// one `\n` to the next eight bytes at a time, so the floor costs little more than the
/// kernel's part.
fn count_heads(matched: &mut usize, data: &[u8]) -> usize {
    let mut heads = 0;
    // The first three bytes may end a head begun in the previous read.
    let lead = data.len().min(3);
    for &b in &data[..lead] {
        step(matched, b, &mut heads);
    }
    let mut i = lead;
    while let Some(offset) = find_newline(&data[i..]) {
        let at = i + offset;
        if &data[at - 3..at] == b"\r\n\r" {
            heads += 1;
        }
        i = at + 1;
    }
    if data.len() > lead {
        // What the next read continues depends only on the last three bytes.
        *matched = 0;
        let mut ignored = 0;
        for &b in &data[data.len() - 3..] {
            step(matched, b, &mut ignored);
        }
    }
    heads
}

fn step(matched: &mut usize, b: u8, heads: &mut usize) {
    *matched = match (*matched, b) {
        (0 | 2, b'\r') => *matched + 1,
        (1 | 3, b'\n') => *matched + 1,
        (_, b'\r') => 1,
        _ => 0,
    };
    if *matched == 4 {
        *heads += 1;
        *matched = 0;
    }
}

fn find_newline(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let mut i = 0;
    while let Some(word) = s.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
        let x = u64::from_le_bytes(word) ^ (ONES * u64::from(b'\n'));
        let zero = x.wrapping_sub(ONES) & !x & (ONES * 0x80);
        if zero != 0 {
            // The lowest flagged byte is exact (a false flag only sits above a true one).
            return Some(i + zero.trailing_zeros() as usize / 8);
        }
        i += 8;
    }
    s[i..].iter().position(|&b| b == b'\n').map(|p| i + p)
}

#[cfg(test)]
mod tests {
    use super::count_heads;

    /// Any split of a pipelined stream into reads counts every head once.
    #[test]
    fn heads_are_counted_across_any_split() {
        let stream = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nA: b\r\n\r\n";
        for first in 0..stream.len() {
            for second in first..stream.len() {
                let mut matched = 0;
                let heads: usize = [&stream[..first], &stream[first..second], &stream[second..]]
                    .iter()
                    .map(|part| count_heads(&mut matched, part))
                    .sum();
                assert_eq!(heads, 3, "split at {first} and {second}");
            }
        }
    }
}
