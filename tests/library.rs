//! The library used on its own: custom handlers written against the service model and
//! served by `server::start`, as an engineer embedding asycamore would.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use asycamore::server::{self, Limits, ServerConfig, ServerHandle, Timeouts};
use asycamore::service::{
    BodyEvent, BodyMode, Exchange, Framing, Handler, Request, ResponseError, ResponseWriter, Start,
};

fn serve<H: Handler>(handler: H, limits: Limits) -> ServerHandle<H> {
    let config = ServerConfig {
        name: "worker".into(),
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        defer_accept: true,
        unix_listen: Vec::new(),
        workers: 1,
        limits,
        access_log: None,
        metrics: true,
    };
    server::start(config, Arc::new(handler)).expect("server starts")
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream
}

/// Reads until the peer closes.
fn read_all(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    stream.read_to_end(&mut out).expect("read");
    out
}

/// Streams `size` bytes of a repeating pattern, writing only as much as the connection has
/// room for on each call.
struct Pattern {
    size: usize,
    calls: Arc<AtomicUsize>,
}

struct PatternExchange {
    sent: usize,
    size: usize,
    calls: Arc<AtomicUsize>,
}

impl Handler for Pattern {
    type Exchange = PatternExchange;

    fn start(&self, _: &Request<'_>, response: &mut ResponseWriter<'_>) -> Start<PatternExchange> {
        response.head(200, &[], Framing::Chunked).unwrap();
        Start::Continue {
            body: BodyMode::Ignore,
            exchange: PatternExchange {
                sent: 0,
                size: self.size,
                calls: Arc::clone(&self.calls),
            },
        }
    }
}

impl Exchange for PatternExchange {
    fn on_body(&mut self, _: BodyEvent<'_>, _: &mut ResponseWriter<'_>) {}

    fn on_writable(&mut self, response: &mut ResponseWriter<'_>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let piece = response.room().min(self.size - self.sent).min(8192);
        let data: Vec<u8> = (self.sent..self.sent + piece).map(|i| i as u8).collect();
        response.write(&data);
        self.sent += piece;
        if self.sent == self.size {
            response.finish();
        }
    }
}

#[test]
fn a_streamed_response_is_produced_as_the_socket_drains_and_arrives_whole() {
    let size = 8 << 20;
    let calls = Arc::new(AtomicUsize::new(0));
    let server = serve(
        Pattern {
            size,
            calls: Arc::clone(&calls),
        },
        Limits::default(),
    );
    let mut stream = connect(server.local_addrs()[0]);
    stream
        .write_all(b"GET /stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let raw = read_all(&mut stream);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(raw.starts_with(b"HTTP/1.1 200 OK\r\n"));
    // De-chunk and compare with the pattern.
    let mut body = Vec::with_capacity(size);
    let mut rest = &raw[split..];
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let len =
            usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16).unwrap();
        rest = &rest[line_end + 2..];
        if len == 0 {
            break;
        }
        body.extend_from_slice(&rest[..len]);
        rest = &rest[len + 2..];
    }
    assert_eq!(body.len(), size);
    assert!(body.iter().enumerate().all(|(i, &b)| b == i as u8));
    // The output mark (64 KiB) bounds each call, so 8 MiB took many calls.
    assert!(
        calls.load(Ordering::Relaxed) >= size / (64 << 10),
        "{calls:?}"
    );
    server.shutdown();
}

/// Never writes anything.
struct Silent;

impl Handler for Silent {
    type Exchange = ();

    fn start(&self, _: &Request<'_>, _: &mut ResponseWriter<'_>) -> Start<()> {
        Start::Continue {
            body: BodyMode::Ignore,
            exchange: (),
        }
    }
}

#[test]
fn a_handler_that_never_answers_gets_a_500_at_the_timeout() {
    let limits = Limits {
        timeouts: Timeouts {
            body: Duration::from_millis(200),
            ..Timeouts::default()
        },
        ..Limits::default()
    };
    let server = serve(Silent, limits);
    let mut stream = connect(server.local_addrs()[0]);
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let text = String::from_utf8(read_all(&mut stream)).unwrap();
    assert!(text.starts_with("HTTP/1.1 500 "), "{text}");
    assert!(text.contains("Connection: close"), "{text}");
    server.shutdown();
}

/// Collects the body (buffered up to 100 bytes) and answers with what it saw.
struct Collect;

#[derive(Default)]
struct Collected {
    events: Vec<String>,
}

impl Handler for Collect {
    type Exchange = Collected;

    fn start(&self, _: &Request<'_>, _: &mut ResponseWriter<'_>) -> Start<Collected> {
        Start::Continue {
            body: BodyMode::Buffer { limit: 100 },
            exchange: Collected::default(),
        }
    }
}

impl Exchange for Collected {
    fn on_body(&mut self, event: BodyEvent<'_>, response: &mut ResponseWriter<'_>) {
        self.events.push(match event {
            BodyEvent::ChunkStart { size } => format!("chunk {size}"),
            BodyEvent::Data(data) => format!("data {}", String::from_utf8_lossy(data)),
            BodyEvent::Trailers(trailers) => format!("trailers {}", trailers.len()),
            BodyEvent::End => "end".to_string(),
        });
        if let BodyEvent::End = event {
            let text = self.events.join(";");
            response.complete(200, &[], text.as_bytes()).unwrap();
        }
    }

    fn on_writable(&mut self, _: &mut ResponseWriter<'_>) {}
}

#[test]
fn a_buffered_body_arrives_as_one_data_event_and_an_oversized_one_gets_413() {
    let server = serve(Collect, Limits::default());
    // (request, extra body bytes sent after it, status line, response body)
    let cases: [(&[u8], usize, &str, &str); 4] = [
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
            0,
            "HTTP/1.1 200 OK",
            "data hello;end",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\nX-A: 1\r\n\r\n",
            0,
            "HTTP/1.1 200 OK",
            "data hello;trailers 1;end",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\n",
            101,
            "HTTP/1.1 413 ",
            "413 Content Too Large: request body larger than the limit\n",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n",
            101,
            "HTTP/1.1 413 ",
            "413 Content Too Large: request body larger than the limit\n",
        ),
    ];
    for (request, extra, status_line, body) in cases {
        let mut stream = connect(server.local_addrs()[0]);
        stream.write_all(request).unwrap();
        // The server may close as soon as it has seen enough; later bytes may be refused.
        let _ = stream.write_all(&vec![b'x'; extra]);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let text = String::from_utf8(read_all(&mut stream)).unwrap();
        assert!(text.starts_with(status_line), "{text}");
        assert_eq!(
            text.split_once("\r\n\r\n").map(|(_, b)| b),
            Some(body),
            "{text}"
        );
    }
    server.shutdown();
}

/// Serves one file with `send_file`.
struct FileHandler {
    path: std::path::PathBuf,
}

impl Handler for FileHandler {
    type Exchange = ();

    fn start(&self, request: &Request<'_>, response: &mut ResponseWriter<'_>) -> Start<()> {
        let file = std::fs::File::open(&self.path).expect("open");
        let len = file.metadata().expect("stat").len();
        // `?skip=N` sends the file from byte N, to show offsets work.
        let skip: u64 = request
            .query()
            .and_then(|q| q.strip_prefix("skip="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        response
            .head(200, &[], Framing::Length(len - skip))
            .unwrap();
        response.send_file(file, skip, len - skip);
        Start::Complete
    }
}

#[test]
fn file_bodies_go_out_whole_in_order_with_pipelined_requests_and_not_for_head() {
    let path = std::env::temp_dir().join(format!("asycamore-lib-{}.bin", std::process::id()));
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    let server = serve(FileHandler { path: path.clone() }, Limits::default());
    let mut stream = connect(server.local_addrs()[0]);
    stream
        .write_all(
            b"GET /f HTTP/1.1\r\nHost: t\r\n\r\n\
              HEAD /f HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /f?skip=1000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let raw = read_all(&mut stream);
    let mut rest = &raw[..];
    let mut bodies = Vec::new();
    for expect_body in [true, false, true] {
        let end = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = std::str::from_utf8(&rest[..end]).unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        rest = &rest[end..];
        if expect_body {
            bodies.push(&rest[..len]);
            rest = &rest[len..];
        }
    }
    assert!(rest.is_empty(), "{} extra bytes", rest.len());
    assert!(bodies[0] == &content[..], "first body differs");
    assert!(bodies[1] == &content[1000..], "offset body differs");
    server.shutdown();
    let _ = std::fs::remove_file(&path);
}

/// Answers at once with a fixed body naming its generation.
struct Fixed(&'static [u8]);

impl Handler for Fixed {
    type Exchange = ();

    fn start(&self, _: &Request<'_>, response: &mut ResponseWriter<'_>) -> Start<()> {
        response.complete(200, &[], self.0).unwrap();
        Start::Complete
    }
}

/// Reads one Content-Length response (head and body) from `stream`.
fn read_one(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).expect("read head"),
            1,
            "closed mid-head"
        );
        raw.push(byte[0]);
    }
    let head = String::from_utf8(raw).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).expect("read body");
    (head, body)
}

#[test]
fn a_new_handler_serves_the_next_request_on_a_kept_alive_connection() {
    let server = serve(Fixed(b"one"), Limits::default());
    let mut stream = connect(server.local_addrs()[0]);
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_one(&mut stream).1, b"one");
    server.set_handler(Arc::new(Fixed(b"two")));
    // The swap is a message to the worker: it lands before the worker's next turn, and a
    // later request on the same connection sees it. Bounded retries allow for the turn.
    let mut seen = Vec::new();
    for _ in 0..1000 {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        seen = read_one(&mut stream).1;
        if seen == b"two" {
            break;
        }
    }
    assert_eq!(seen, b"two");
    server.shutdown();
}

#[test]
fn drain_answers_what_was_sent_closes_idle_connections_and_forces_the_stuck() {
    let limits = Limits {
        timeouts: Timeouts {
            body: Duration::from_secs(60),
            ..Timeouts::default()
        },
        ..Limits::default()
    };
    let server = serve(Fixed(b"ok"), limits.clone());
    let addr = server.local_addrs()[0];
    let mut idle = connect(addr);
    idle.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let (head, _) = read_one(&mut idle);
    assert!(!head.contains("Connection: close"), "{head}");
    // Sent before the drain (answered before or during it, whichever the worker reaches
    // first): it is answered completely, and the connection then closes.
    let mut pending = connect(addr);
    pending
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let forced = server.drain(Duration::from_secs(10));
    assert_eq!(forced, 0);
    assert_eq!(read_one(&mut pending).1, b"ok");
    assert_eq!(
        read_all(&mut pending),
        b"",
        "the connection closes after it"
    );
    assert_eq!(read_all(&mut idle), b"", "an idle connection is closed");

    // A handler that never answers is closed by force at the deadline.
    let stuck = serve(Silent, limits);
    let mut stream = connect(stuck.local_addrs()[0]);
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    // Wait until the worker has taken the connection (it counts it), bounded in time.
    let give_up = std::time::Instant::now() + Duration::from_secs(10);
    while stuck.connections() != 1 && std::time::Instant::now() < give_up {
        std::thread::yield_now();
    }
    assert_eq!(stuck.connections(), 1);
    assert_eq!(stuck.drain(Duration::from_millis(100)), 1);
}

#[test]
fn listeners_are_added_before_removed_ones_stop_accepting() {
    let mut server = serve(Fixed(b"ok"), Limits::default());
    let first = server.local_addrs()[0];
    let mut kept = connect(first);
    kept.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    read_one(&mut kept);
    // A free port for the new address: bind, note it, release.
    let second = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    server.set_listeners(&[second]).expect("rebind");
    assert_eq!(server.local_addrs(), &[second]);
    let mut fresh = connect(second);
    fresh
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_one(&mut fresh).1, b"ok");
    // The old address no longer accepts, but its open connection still works.
    let give_up = std::time::Instant::now() + Duration::from_secs(10);
    let refused = std::iter::from_fn(|| (std::time::Instant::now() < give_up).then_some(()))
        .any(|()| TcpStream::connect(first).is_err());
    assert!(refused, "the removed address still accepts");
    kept.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_one(&mut kept).1, b"ok");
    // An address in use elsewhere fails the whole change and changes nothing.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap();
    assert!(server.set_listeners(&[second, busy]).is_err());
    assert_eq!(server.local_addrs(), &[second]);
    server.shutdown();
}

/// Streams 64 MiB (more than any socket buffers hold) for `/big`, answers `ok` at once for
/// anything else.
struct Mixed;

impl Handler for Mixed {
    type Exchange = PatternExchange;

    fn start(
        &self,
        request: &Request<'_>,
        response: &mut ResponseWriter<'_>,
    ) -> Start<PatternExchange> {
        if request.path() != "/big" {
            response.complete(200, &[], b"ok").unwrap();
            return Start::Complete;
        }
        response.head(200, &[], Framing::Chunked).unwrap();
        Start::Continue {
            body: BodyMode::Ignore,
            exchange: PatternExchange {
                sent: 0,
                size: 64 << 20,
                calls: Arc::new(AtomicUsize::new(0)),
            },
        }
    }
}

#[test]
fn drain_answers_every_pipelined_request_already_sent() {
    let server = serve(Mixed, Limits::default());
    let mut stream = connect(server.local_addrs()[0]);
    let mut batch = b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n".to_vec();
    for _ in 0..4 {
        batch.extend_from_slice(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    }
    stream.write_all(&batch).unwrap();
    // The first response has begun (its head is here) and, unread, fills the socket: the
    // four requests behind it are received but not yet answered when the drain begins.
    let mut start = [0u8; 17];
    stream.read_exact(&mut start).unwrap();
    assert_eq!(&start, b"HTTP/1.1 200 OK\r\n");
    let addr = server.local_addrs()[0];
    let drained = std::thread::spawn(move || server.drain(Duration::from_secs(20)));
    // The drain has begun once the listener is gone (bounded wait).
    let give_up = std::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_ok() {
        assert!(std::time::Instant::now() < give_up, "the drain never began");
    }
    let rest = read_all(&mut stream);
    assert_eq!(drained.join().unwrap(), 0);
    let end_of_first = rest.windows(5).position(|w| w == b"0\r\n\r\n").unwrap() + 5;
    let after = String::from_utf8_lossy(&rest[end_of_first..]).into_owned();
    assert_eq!(after.matches("HTTP/1.1 200 OK").count(), 4, "{after}");
    assert!(after.ends_with("\r\n\r\nok"), "{after}");
    // The last one received is the one that says the connection ends.
    let last_head = after.rsplit("HTTP/1.1 200 OK").next().unwrap();
    assert!(last_head.contains("Connection: close"), "{after}");
}

/// Answers only when woken from another thread: how a handler waits on a result computed
/// elsewhere without blocking its loop.
struct Deferred;

struct DeferredExchange {
    ready: Arc<std::sync::atomic::AtomicBool>,
    started: bool,
}

impl Handler for Deferred {
    type Exchange = DeferredExchange;

    fn start(&self, _: &Request<'_>, response: &mut ResponseWriter<'_>) -> Start<DeferredExchange> {
        let waker = response.waker().expect("served by a connection");
        let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&ready);
        std::thread::spawn(move || {
            flag.store(true, Ordering::Release);
            waker.wake();
        });
        Start::Continue {
            body: BodyMode::Ignore,
            exchange: DeferredExchange {
                ready,
                started: false,
            },
        }
    }
}

impl Exchange for DeferredExchange {
    fn on_body(&mut self, _: BodyEvent<'_>, _: &mut ResponseWriter<'_>) {}

    fn on_writable(&mut self, response: &mut ResponseWriter<'_>) {
        if self.ready.load(Ordering::Acquire) && !self.started {
            self.started = true;
            response.complete(200, &[], b"later").unwrap();
        }
    }
}

#[test]
fn an_exchange_woken_from_another_thread_answers_without_blocking_the_loop() {
    let limits = Limits {
        timeouts: Timeouts {
            body: Duration::from_secs(60),
            ..Timeouts::default()
        },
        ..Limits::default()
    };
    let server = serve(Deferred, limits);
    let mut stream = connect(server.local_addrs()[0]);
    for _ in 0..20 {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert_eq!(read_one(&mut stream).1, b"later");
    }
    server.shutdown();
}

#[test]
fn stats_count_requests_by_route_method_status_and_close_reasons() {
    use asycamore::server::{CloseReason, MethodLabel};
    let server = serve(Fixed(b"ok"), Limits::default());
    let stats = server.stats_handle();
    let addr = server.local_addrs()[0];
    let mut stream = connect(addr);
    for _ in 0..3 {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        read_one(&mut stream);
    }
    // A pipelined batch of 4, answered from one read.
    let batch = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi".repeat(4);
    stream.write_all(&batch).unwrap();
    for _ in 0..4 {
        read_one(&mut stream);
    }
    let mut bad = connect(addr);
    bad.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap(); // no Host
    read_all(&mut bad);
    drop(stream);
    // The close of `stream` is seen by the worker on a later turn: poll, bounded.
    let give_up = std::time::Instant::now() + Duration::from_secs(10);
    let snapshot = loop {
        let snapshot = stats.stats(Duration::from_secs(5));
        if snapshot.connections_open == 0 || std::time::Instant::now() > give_up {
            break snapshot;
        }
    };
    assert_eq!(snapshot.connections_accepted, 2);
    assert_eq!(snapshot.connections_open, 0);
    let closed = |reason| {
        snapshot
            .connections_closed
            .iter()
            .find(|(r, _)| *r == reason)
            .unwrap()
            .1
    };
    assert_eq!(closed(CloseReason::Peer), 1);
    assert_eq!(closed(CloseReason::ParseError), 1);
    assert_eq!(snapshot.parse_errors, vec![("missing_host", 1)]);
    let route = &snapshot.routes[0];
    assert_eq!(route.route, "");
    let mut requests = route.requests.clone();
    requests.sort_by_key(|(m, _, _)| m.as_str());
    assert_eq!(
        requests,
        vec![(MethodLabel::Get, 200, 3), (MethodLabel::Post, 200, 4)]
    );
    assert_eq!(route.duration.count, 7);
    assert_eq!(route.request_body_bytes, 8);
    assert_eq!(route.response_body_bytes, 14);
    assert_eq!(snapshot.requests_per_connection.count, 2);
    // Three reads of one request, one read of four.
    assert_eq!(snapshot.pipeline_depth.count, 4);
    assert_eq!(snapshot.pipeline_depth.sum, 7.0);
    server.shutdown();
}

/// Says over which kind of socket the request came, or sends a file for `/file`.
struct Transport {
    file: std::path::PathBuf,
}

impl Handler for Transport {
    type Exchange = ();

    fn start(&self, request: &Request<'_>, response: &mut ResponseWriter<'_>) -> Start<()> {
        if request.path() == "/file" {
            let file = std::fs::File::open(&self.file).expect("open");
            let len = file.metadata().expect("stat").len();
            response.head(200, &[], Framing::Length(len)).unwrap();
            response.send_file(file, 0, len);
        } else {
            let body: &[u8] = if request.peer.is_none() {
                b"unix"
            } else {
                b"tcp"
            };
            response.complete(200, &[], body).unwrap();
        }
        Start::Complete
    }
}

#[test]
fn a_unix_socket_serves_pipelined_requests_and_its_file_goes_when_the_server_stops() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    use std::os::unix::net::UnixStream;

    let dir = std::env::temp_dir().join(format!("asycamore-lib-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("server.sock");
    let file = dir.join("body.bin");
    let content: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &content).unwrap();
    // A socket file left behind by a server that is gone is replaced.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let config = |unix_listen| ServerConfig {
        name: "worker".into(),
        listen: Vec::new(),
        defer_accept: false,
        unix_listen,
        workers: 2,
        limits: Limits::default(),
        access_log: None,
        metrics: true,
    };
    let handler = || Arc::new(Transport { file: file.clone() });
    let server = server::start(config(vec![socket.clone()]), handler()).expect("server starts");
    assert!(server.local_addrs().is_empty());
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);

    // Somebody answers on the path: a second server does not start, nor touch the file.
    let err = server::start(config(vec![socket.clone()]), handler())
        .err()
        .expect("a second server on a live socket fails");
    assert!(err.to_string().contains("another server answers"), "{err}");
    // Nor does one whose path is a plain file.
    let err = server::start(config(vec![file.clone()]), handler())
        .err()
        .expect("a plain file is not replaced");
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap().len(), content.len());

    for _ in 0..4 {
        let mut stream = UnixStream::connect(&socket).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream
            .write_all(
                b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n\
                  GET /file HTTP/1.1\r\nHost: t\r\n\r\n\
                  GET /b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            )
            .unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read");
        let mut rest = &raw[..];
        let mut bodies = Vec::new();
        for _ in 0..3 {
            let end = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let head = std::str::from_utf8(&rest[..end]).unwrap();
            assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap()
                .parse()
                .unwrap();
            bodies.push(&rest[end..end + len]);
            rest = &rest[end + len..];
        }
        assert!(rest.is_empty(), "{} extra bytes", rest.len());
        assert_eq!(bodies[0], b"unix");
        assert!(bodies[1] == &content[..], "the file body differs");
        assert_eq!(bodies[2], b"unix");
    }
    server.shutdown();
    assert!(
        !socket.exists(),
        "the socket file is removed when the server stops"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Holds the body after its first data event until the test sets `release` and wakes it;
/// then takes the rest and answers with the byte count. Its waker goes to the test through
/// `wakers`.
struct Holding {
    wakers: std::sync::Mutex<std::sync::mpsc::Sender<asycamore::service::ExchangeWaker>>,
    release: Arc<std::sync::atomic::AtomicBool>,
}

struct HoldingExchange {
    waker: Option<asycamore::service::ExchangeWaker>,
    wakers: std::sync::mpsc::Sender<asycamore::service::ExchangeWaker>,
    release: Arc<std::sync::atomic::AtomicBool>,
    received: u64,
    ended: bool,
}

impl Handler for Holding {
    type Exchange = HoldingExchange;

    fn start(&self, _: &Request<'_>, response: &mut ResponseWriter<'_>) -> Start<HoldingExchange> {
        Start::Continue {
            body: BodyMode::Stream,
            exchange: HoldingExchange {
                waker: response.waker(),
                wakers: self.wakers.lock().unwrap().clone(),
                release: Arc::clone(&self.release),
                received: 0,
                ended: false,
            },
        }
    }
}

impl Exchange for HoldingExchange {
    fn on_body(&mut self, event: BodyEvent<'_>, response: &mut ResponseWriter<'_>) {
        assert!(
            !response.body_held(),
            "an event arrived while the body was held"
        );
        match event {
            BodyEvent::Data(data) => {
                self.received += data.len() as u64;
                if let Some(waker) = self.waker.take() {
                    response.hold_body();
                    let _ = self.wakers.send(waker);
                }
            }
            BodyEvent::End => self.ended = true,
            _ => {}
        }
    }

    fn on_writable(&mut self, response: &mut ResponseWriter<'_>) {
        // `on_writable` also comes after every body event; only the test's word releases.
        if response.body_held() && self.release.load(Ordering::Acquire) {
            response.release_body();
            return;
        }
        if self.ended && !response.head_written() {
            let text = format!("{} bytes", self.received);
            response.complete(200, &[], text.as_bytes()).unwrap();
        }
    }
}

/// An exchange that holds the body stops the server from reading it: the client's sends
/// block once the socket buffers are full, far short of the body, and nothing more reaches
/// the exchange. Released, it gets the whole body, in order, and answers.
#[test]
fn an_exchange_that_holds_the_body_pushes_back_on_the_client_then_gets_all_of_it() {
    // More than loopback's socket buffers can hold (here up to 32 MiB received, 4 MiB sent).
    const BODY: usize = 96 << 20;
    let (tx, rx) = std::sync::mpsc::channel();
    let limits = Limits {
        max_body_bytes: BODY as u64,
        ..Limits::default()
    };
    let release = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = serve(
        Holding {
            wakers: std::sync::Mutex::new(tx),
            release: Arc::clone(&release),
        },
        limits,
    );
    let mut stream = connect(server.local_addrs()[0]);
    let head = format!("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {BODY}\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let waker = {
        stream.write_all(&[7u8; 65536]).unwrap();
        rx.recv_timeout(Duration::from_secs(20))
            .expect("the exchange held the body")
    };
    // Send until the socket takes no more: with the body held, the server reads at most one
    // buffer more, so this stops where the socket buffers are full, short of the body. (Had
    // the server read on, the exchange would have seen an event while held, and panicked.)
    stream
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let piece = vec![7u8; 65536];
    let mut sent = 65536;
    loop {
        match stream.write(&piece) {
            Ok(n) => sent += n,
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(err) => panic!("send failed: {err}"),
        }
        assert!(sent < BODY, "the whole body was taken while held");
    }
    // Released: the rest goes through, and the answer counts every byte.
    release.store(true, Ordering::Release);
    waker.wake();
    stream.set_write_timeout(None).unwrap();
    let rest = BODY - sent;
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            let piece = vec![7u8; 65536];
            let mut left = rest;
            while left > 0 {
                let n = left.min(piece.len());
                stream.write_all(&piece[..n]).unwrap();
                left -= n;
            }
        })
    };
    let (head, body) = read_one(&mut stream);
    writer.join().unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(body, format!("{BODY} bytes").as_bytes());
    server.shutdown();
}

/// A body held past the body timeout is the handler's stall, not the client's: 500, close.
#[test]
fn a_body_held_past_the_body_timeout_gets_a_500() {
    let (tx, _rx) = std::sync::mpsc::channel();
    let limits = Limits {
        timeouts: Timeouts {
            body: Duration::from_millis(300),
            ..Timeouts::default()
        },
        ..Limits::default()
    };
    let server = serve(
        Holding {
            wakers: std::sync::Mutex::new(tx),
            release: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        },
        limits,
    );
    let mut stream = connect(server.local_addrs()[0]);
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789")
        .unwrap();
    let text = String::from_utf8(read_all(&mut stream)).unwrap();
    assert!(text.starts_with("HTTP/1.1 500 "), "{text}");
    server.shutdown();
}

/// Held and released within one pass (the exchange's consumer drained at once): the body's
/// end, kept back by the hold, still arrives, and the request is answered without waiting for
/// another event from the client.
#[test]
fn a_body_held_and_released_at_once_is_answered() {
    let (tx, _rx) = std::sync::mpsc::channel();
    let server = serve(
        Holding {
            wakers: std::sync::Mutex::new(tx),
            release: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        },
        Limits::default(),
    );
    let mut stream = connect(server.local_addrs()[0]);
    for _ in 0..3 {
        stream
            .write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789")
            .unwrap();
        let (head, body) = read_one(&mut stream);
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        assert_eq!(body, b"10 bytes");
    }
    server.shutdown();
}

/// Puts the request's query, decoded as a handler naively would, into a header (or, under
/// `/trailer`, a trailer; under `/name`, a header with a bad name): a value with CR or LF would
/// split the response. RFC 9110 5.5 (field values exclude CR, LF and NUL; names are tokens)
/// and RFC 9112 2.2: the writer refuses such fields in every build, release included, writes
/// nothing of them, and the handler hears why and answers otherwise.
struct Reflect {
    refused: Arc<AtomicUsize>,
}

impl Handler for Reflect {
    type Exchange = ();

    fn start(&self, request: &Request<'_>, response: &mut ResponseWriter<'_>) -> Start<()> {
        let value = request
            .query()
            .unwrap_or("")
            .replace("%0D", "\r")
            .replace("%0A", "\n");
        let (name, in_header, in_trailer): (&str, &[u8], &[u8]) = match request.path() {
            "/name" => ("X Bad", b"v", b"v"),
            "/trailer" => ("X-Echo", b"v", value.as_bytes()),
            _ => ("X-Echo", value.as_bytes(), b"v"),
        };
        match response.head(200, &[(name, in_header)], Framing::Chunked) {
            Ok(()) => {
                response.write(b"body");
                if let Err(error) = response.finish_with_trailers(&[("X-Trailer", in_trailer)]) {
                    assert_eq!(error, ResponseError::InvalidField);
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    response.finish();
                }
            }
            Err(error) => {
                assert_eq!(error, ResponseError::InvalidField);
                self.refused.fetch_add(1, Ordering::Relaxed);
                response
                    .complete(500, &[], b"refused a header field\n")
                    .unwrap();
            }
        }
        Start::Complete
    }
}

#[test]
fn header_fields_that_would_split_the_response_are_refused_in_every_build() {
    let refused = Arc::new(AtomicUsize::new(0));
    let server = serve(
        Reflect {
            refused: Arc::clone(&refused),
        },
        Limits::default(),
    );
    let addr = server.local_addrs()[0];
    // (target, status, what the body ends with)
    let cases = [
        (
            "/?a%0D%0ASet-Cookie:%20pwned=1",
            500,
            "refused a header field\n",
        ),
        ("/?a%0Ab", 500, "refused a header field\n"),
        ("/?a%0Db", 500, "refused a header field\n"),
        ("/name?x", 500, "refused a header field\n"),
        (
            "/trailer?a%0D%0ASet-Cookie:%20pwned=1",
            200,
            "body\r\n0\r\n\r\n",
        ),
        ("/?fine", 200, "body\r\n0\r\nX-Trailer: v\r\n\r\n"),
        ("/trailer?fine", 200, "body\r\n0\r\nX-Trailer: fine\r\n\r\n"),
    ];
    for (target, status, body_end) in cases {
        let before = refused.load(Ordering::Relaxed);
        let mut stream = connect(addr);
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let text = String::from_utf8_lossy(&read_all(&mut stream)).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").expect("a whole head");
        assert!(!text.contains("pwned"), "{target}: {text:?}");
        // Every line of the head is the status line or `Name: value`: nothing was split.
        for line in head.lines().skip(1) {
            assert!(line.contains(": "), "{target}: split head line {line:?}");
        }
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status} ")),
            "{target}: {text:?}"
        );
        assert!(body.ends_with(body_end), "{target}: {body:?}");
        let refusals = refused.load(Ordering::Relaxed) - before;
        assert_eq!(refusals, usize::from(!target.contains("fine")), "{target}");
    }
    server.shutdown();
}
