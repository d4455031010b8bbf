//! The hot-path budget, checked: serving keep-alive and pipelined `respond` requests
//! performs no heap allocation per request.
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
path = "/plaintext"
handler = "respond"
body = "Hello, World!"
headers = { "Content-Type" = "text/plain" }
"#;

const REQUEST: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: bench\r\nUser-Agent: alloc-test\r\n\r\n";

/// Reads exactly `count` responses of the fixed shape into `buf`, without allocating.
fn read_responses(stream: &mut TcpStream, buf: &mut [u8], count: usize) {
    let mut seen = 0;
    let mut tail = 0;
    while seen < count {
        let n = stream.read(&mut buf[tail..]).expect("read");
        assert!(n > 0, "server closed the connection");
        let end = tail + n;
        // Every response ends with the 13-byte body; count them by their status lines.
        let mut start = 0;
        while let Some(pos) = find(&buf[start..end], b"Hello, World!") {
            assert!(
                buf[start..].starts_with(b"HTTP/1.1 200 OK\r\n"),
                "unexpected response"
            );
            start += pos + 13;
            seen += 1;
        }
        buf.copy_within(start..end, 0);
        tail = end - start;
    }
    assert_eq!(tail, 0, "more responses than requests");
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn keep_alive_and_pipelined_respond_requests_allocate_nothing() {
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

    let mut run = |rounds: usize| {
        for _ in 0..rounds {
            stream.write_all(REQUEST).expect("write");
            read_responses(&mut stream, &mut buf, 1);
            stream.write_all(&batch).expect("write batch");
            read_responses(&mut stream, &mut buf, 16);
        }
    };
    // Warm-up: the worker's buffer pool, the connection's slot, the Date cache.
    run(200);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    run(2_000);
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;

    // 34,000 requests served; a per-request allocation would count tens of thousands. A
    // handful is tolerated for once-a-second work that may fall inside the window.
    assert!(
        allocations <= 16,
        "{allocations} allocations while serving 34,000 requests"
    );
    server.shutdown();
}
