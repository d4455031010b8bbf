//! The hot-path budget, checked: serving keep-alive and pipelined `respond` requests,
//! through every kind of route lookup (and 404, 405, path normalisation), performs no
//! heap allocation per request.
//!
//! Its own test binary, because it installs a counting global allocator: the server runs
//! in-process (one worker), the client uses only pre-allocated buffers, so after a warm-up
//! any allocation counted while requests flow was made by the server's per-request path.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[path = "hot_path_alloc/sys.rs"]
mod sys;

use sys::ALLOCATIONS;

const CONFIG: &str = r#"
[server]
listen = ["127.0.0.1:0"]
workers = 1
max_requests_per_connection = 0

[[route]]
name = "plaintext"
exact = "/plaintext"
handler = "respond"
body = "Hello, World!"
headers = { "Content-Type" = "text/plain" }

[[route]]
name = "api-example"
host = "*.example.com"
path = "/api"
methods = ["GET"]
handler = "respond"
body = "api"

[[route]]
name = "exact-host"
host = "www.example.com"
path = "/"
handler = "respond"
body = "www"
"#;

const REQUEST: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: bench\r\nUser-Agent: alloc-test\r\n\r\n";

/// Requests that walk every kind of route lookup: host tiers, exact and prefix paths,
/// methods (405 with Allow), no match (404), and a path that needs normalising.
const LOOKUPS: &[(&[u8], &[u8])] = &[
    (
        b"GET /api/v1 HTTP/1.1\r\nHost: a.Example.com:8080\r\n\r\n",
        b"HTTP/1.1 200 ",
    ),
    (
        b"POST /api/v1 HTTP/1.1\r\nHost: a.example.com\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 405 ",
    ),
    (
        b"GET /x HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
        b"HTTP/1.1 200 ",
    ),
    (
        b"GET /nothing/here HTTP/1.1\r\nHost: other.org\r\n\r\n",
        b"HTTP/1.1 404 ",
    ),
    (
        b"GET //a/../%70laintext HTTP/1.1\r\nHost: bench\r\n\r\n",
        b"HTTP/1.1 200 ",
    ),
];

/// Reads exactly `count` responses into `buf`, without allocating, checking each starts
/// with the status line prefix `expect(i)`.
fn read_responses(
    stream: &mut TcpStream,
    buf: &mut [u8],
    count: usize,
    expect: impl Fn(usize) -> &'static [u8],
) {
    let mut seen = 0;
    let mut filled = 0;
    while seen < count {
        let n = stream.read(&mut buf[filled..]).expect("read");
        assert!(n > 0, "server closed the connection");
        filled += n;
        let mut start = 0;
        while let Some(len) = response_len(&buf[start..filled]) {
            assert!(
                buf[start..].starts_with(expect(seen)),
                "unexpected response {seen}"
            );
            start += len;
            seen += 1;
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
    }
    assert_eq!(filled, 0, "more responses than requests");
}

/// The length of the complete response at the start of `bytes` (head and Content-Length
/// body), if it is all there.
fn response_len(bytes: &[u8]) -> Option<usize> {
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = &bytes[..head_end];
    const FIELD: &[u8] = b"\r\nContent-Length: ";
    let at = head.windows(FIELD.len()).position(|w| w == FIELD)? + FIELD.len();
    let digits = head[at..].iter().take_while(|b| b.is_ascii_digit());
    let body = digits.fold(0usize, |n, b| n * 10 + usize::from(b - b'0'));
    (bytes.len() >= head_end + body).then_some(head_end + body)
}

#[test]
fn keep_alive_pipelined_and_routed_requests_allocate_nothing() {
    let config = asycamore::config::load_str(CONFIG, "alloc-test").expect("valid config");
    let table = Arc::new(asycamore::config::route_table(&config, 1));
    let server = asycamore::server::start(asycamore::config::server_config(&config), table)
        .expect("server starts");
    let mut stream = TcpStream::connect(server.local_addrs()[0]).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut buf = vec![0u8; 1 << 20];
    let mut batch = Vec::with_capacity(REQUEST.len() * 16);
    for _ in 0..16 {
        batch.extend_from_slice(REQUEST);
    }

    let ok = |_| &b"HTTP/1.1 200 OK\r\n"[..];
    let mut run = |rounds: usize| {
        for _ in 0..rounds {
            stream.write_all(REQUEST).expect("write");
            read_responses(&mut stream, &mut buf, 1, ok);
            stream.write_all(&batch).expect("write batch");
            read_responses(&mut stream, &mut buf, 16, ok);
            for &(request, status) in LOOKUPS {
                stream.write_all(request).expect("write lookup");
                read_responses(&mut stream, &mut buf, 1, |_| status);
            }
        }
    };
    // Warm-up: the worker's buffer pool, the connection's slot, the Date cache.
    run(200);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    run(2_000);
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;

    // 44,000 requests served, a Date refresh or two among them: not one allocation.
    assert_eq!(
        allocations, 0,
        "{allocations} allocations while serving 44,000 requests"
    );
    server.shutdown();
}
