//! The library's outbound connections used on their own: a custom handler that asks a line
//! service over TCP for each request, through `ResponseWriter::outbound`, in the same loop as
//! its clients, with the worker's keep-alive pool and an exchange timer (`wake_at`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use asycamore::server::{self, Limits, ServerConfig, ServerHandle};
use asycamore::service::{
    BodyEvent, BodyMode, Destination, Exchange, Handler, OutboundId, Parking, Request,
    ResponseWriter, Start,
};

/// The pool key of the one service this handler talks to.
const SERVICE: u64 = 1;

/// Answers each request with the line a TCP service sends back for `ask\n`.
struct Ask {
    service: SocketAddr,
    /// How long to wait for the service's answer before answering 504.
    patience: Duration,
}

struct AskExchange {
    service: SocketAddr,
    patience: Duration,
    conn: Option<OutboundId>,
    /// Bytes of `ask\n` sent.
    sent: usize,
    answer: Vec<u8>,
    deadline: Option<Instant>,
}

impl Handler for Ask {
    type Exchange = AskExchange;

    fn start(&self, _: &Request<'_>, _: &mut ResponseWriter<'_>) -> Start<AskExchange> {
        Start::Continue {
            body: BodyMode::Ignore,
            exchange: AskExchange {
                service: self.service,
                patience: self.patience,
                conn: None,
                sent: 0,
                answer: Vec::new(),
                deadline: None,
            },
        }
    }
}

impl Exchange for AskExchange {
    fn on_body(&mut self, _: BodyEvent<'_>, _: &mut ResponseWriter<'_>) {}

    fn on_writable(&mut self, response: &mut ResponseWriter<'_>) {
        if response.head_written() {
            return;
        }
        let now = Instant::now();
        let deadline = *self.deadline.get_or_insert(now + self.patience);
        if now >= deadline {
            if let (Some(conn), Some(io)) = (self.conn.take(), response.outbound()) {
                io.close(conn);
            }
            return response.complete(504, &[], b"service timed out\n").unwrap();
        }
        let io = response.outbound().expect("served by a connection");
        let conn = *self.conn.get_or_insert_with(|| {
            io.checkout(SERVICE, false).unwrap_or_else(|| {
                io.connect(Destination::Tcp(self.service), SERVICE)
                    .expect("connect starts")
            })
        });
        const ASK: &[u8] = b"ask\n";
        while self.sent < ASK.len() {
            match io.write(conn, &ASK[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("write: {e}"),
            }
        }
        let mut buf = [0u8; 64];
        while self.sent == ASK.len() && !self.answer.ends_with(b"\n") {
            match io.read(conn, &mut buf) {
                Ok(0) => panic!("the service closed"),
                Ok(n) => self.answer.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("read: {e}"),
            }
        }
        if self.answer.ends_with(b"\n") {
            io.park(
                conn,
                Parking {
                    key: SERVICE,
                    max_idle: 4,
                    idle_timeout: Duration::from_secs(30),
                },
            );
            self.conn = None;
            let answer = std::mem::take(&mut self.answer);
            response.complete(200, &[], &answer).unwrap();
            response.wake_at(None);
        } else {
            // Offered room again when the service's socket turns ready, or at the deadline.
            response.wake_at(Some(deadline));
        }
    }
}

fn serve(handler: Ask) -> ServerHandle<Ask> {
    let config = ServerConfig {
        name: "worker".into(),
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        defer_accept: false,
        unix_listen: Vec::new(),
        workers: 1,
        limits: Limits::default(),
        access_log: None,
        metrics: false,
    };
    server::start(config, Arc::new(handler)).expect("server starts")
}

/// A line service: answers `n:<connection>:<line number>` to every line, counting the
/// connections it accepted; `silent` never answers.
fn line_service(silent: bool) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let connection = counter.fetch_add(1, Ordering::SeqCst) + 1;
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                for (n, line) in BufReader::new(stream).lines().enumerate() {
                    if line.is_err() {
                        return;
                    }
                    if !silent {
                        let _ = writeln!(writer, "n:{connection}:{}", n + 1);
                    }
                }
            });
        }
    });
    (addr, accepted)
}

fn get(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    out
}

/// Three requests, each on its own client connection, share one parked connection to the
/// service: its line numbers count up on connection 1.
#[test]
fn an_exchange_talks_to_another_server_and_the_worker_pools_the_connection() {
    let (service, accepted) = line_service(false);
    let server = serve(Ask {
        service,
        patience: Duration::from_secs(20),
    });
    for n in 1..=3 {
        let response = get(server.local_addrs()[0]);
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with(&format!("n:1:{n}\n")), "{response}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    server.shutdown();
}

/// An exchange whose service never answers is woken by its own timer (`wake_at`) and
/// answers 504; the server's handler timeout (500) never fires meanwhile.
#[test]
fn an_exchange_timer_wakes_it_when_nothing_else_does() {
    let (service, _) = line_service(true);
    let server = serve(Ask {
        service,
        patience: Duration::from_millis(200),
    });
    let response = get(server.local_addrs()[0]);
    assert!(response.starts_with("HTTP/1.1 504"), "{response}");
    assert!(response.ends_with("service timed out\n"), "{response}");
    server.shutdown();
}
