//! A TCP line-echo server built on the reactor alone (no HTTP): every complete line a client
//! sends comes back to it. Shows targets, spawning, deadlines and edge-triggered draining.
//!
//! Run: `cargo run --example line_echo -- 127.0.0.1:7000`, then `nc 127.0.0.1 7000`.
//! It prints `listening on ADDR` once bound; idle clients are dropped after 30 seconds.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use asycamore::reactor::{Context, Interest, Next, Reactor, Readiness, Registry, Target, Token};
use mio::net::{TcpListener, TcpStream};

const IDLE: Duration = Duration::from_secs(30);
/// A line longer than this is refused (the client is disconnected).
const MAX_LINE: usize = 64 * 1024;
/// A client that does not read its echoes is disconnected once this much is queued for it.
const MAX_QUEUED: usize = 1024 * 1024;

enum Echo {
    Listener(TcpListener),
    Client(Client),
}

struct Client {
    stream: TcpStream,
    pending_in: Vec<u8>,
    pending_out: Vec<u8>,
}

/// Loop-wide state: here just a count of clients served.
struct Stats {
    clients: u64,
}

impl Target for Echo {
    type Shared = Stats;

    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        match self {
            Echo::Listener(listener) => registry.register(listener, token, Interest::READABLE),
            Echo::Client(client) => registry.register(
                &mut client.stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            ),
        }
    }

    fn on_ready(&mut self, readiness: Readiness, cx: &mut Context<'_, Self>) -> Next {
        match self {
            Echo::Listener(listener) => {
                // Edge-triggered: accept until the queue is empty.
                while let Ok((stream, _)) = listener.accept() {
                    cx.shared.clients += 1;
                    cx.spawn(Echo::Client(Client {
                        stream,
                        pending_in: Vec::new(),
                        pending_out: Vec::new(),
                    }));
                }
                Next::Keep
            }
            Echo::Client(client) => {
                let next = client.serve(readiness);
                cx.set_deadline(Some(cx.now() + IDLE));
                next
            }
        }
    }

    fn on_timeout(&mut self, _cx: &mut Context<'_, Self>) -> Next {
        match self {
            Echo::Listener(_) => Next::Keep,
            Echo::Client(_) => Next::Remove,
        }
    }
}

impl Client {
    fn serve(&mut self, readiness: Readiness) -> Next {
        if readiness.readable || readiness.read_closed {
            let mut buf = [0u8; 4096];
            loop {
                match self.stream.read(&mut buf) {
                    Ok(0) => return Next::Remove,
                    Ok(n) => self.pending_in.extend_from_slice(&buf[..n]),
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Next::Remove,
                }
            }
            if let Some(last_newline) = self.pending_in.iter().rposition(|&b| b == b'\n') {
                self.pending_out
                    .extend(self.pending_in.drain(..=last_newline));
            } else if self.pending_in.len() > MAX_LINE {
                return Next::Remove;
            }
        }
        if self.pending_out.len() > MAX_QUEUED {
            return Next::Remove;
        }
        while !self.pending_out.is_empty() {
            match self.stream.write(&self.pending_out) {
                Ok(n) => {
                    self.pending_out.drain(..n);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Remove,
            }
        }
        Next::Keep
    }
}

fn main() -> io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".into())
        .parse()
        .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
    let listener = TcpListener::bind(addr)?;
    println!("listening on {}", listener.local_addr()?);
    let mut reactor = Reactor::new(256)?;
    reactor.insert(Echo::Listener(listener))?;
    let mut stats = Stats { clients: 0 };
    loop {
        reactor.turn(&mut stats, None)?;
    }
}
