//! Timeouts: a slow or silent client is answered 408 (when no response has started) and
//! closed; an idle keep-alive connection is closed without a word.

use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::{IO_LIMIT, TestServer, config_with, get};

fn server(timeouts: &str) -> TestServer {
    TestServer::start(&config_with("", &format!("[timeouts]\n{timeouts}\n")))
}

#[test]
fn partial_head_gets_408_then_eof_at_the_head_timeout() {
    let server = server("head = \"300ms\"");
    let mut client = server.connect();
    let start = Instant::now();
    client.send(b"GET / HTTP/1.1\r\nHo");
    let response = client.read_response();
    assert_eq!(response.status, 408, "got {response:?}");
    assert!(response.says_close(), "headers {:?}", response.headers);
    client.expect_closed();
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "closed too early: {:?}",
        start.elapsed()
    );
}

#[test]
fn dribbling_head_is_cut_off_at_the_head_timeout() {
    let server = server("head = \"300ms\"");
    let mut client = server.connect();
    let mut writer = client.stream.try_clone().expect("clone stream");
    let (tx, rx) = mpsc::channel();
    // The reader waits (with the support deadline) for the answer and the close.
    let reader = std::thread::spawn(move || {
        let response = client.read_response();
        client.expect_closed();
        let _ = tx.send(response.status);
    });
    let head = b"GET / HTTP/1.1\r\nHost: test\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let start = Instant::now();
    let mut answered = None;
    for &byte in head.iter().take(50) {
        if let Ok(status) = rx.try_recv() {
            answered = Some((status, start.elapsed()));
            break;
        }
        // Once the server has closed, a write may fail; that is expected.
        let _ = writer.write_all(&[byte]);
        std::thread::sleep(Duration::from_millis(100)); // pacing the dribble, not waiting
    }
    let (status, elapsed) = match answered {
        Some(answer) => answer,
        None => panic!("server still reading a dribbled head after 50 bytes over 5 s"),
    };
    reader.join().expect("reader");
    assert_eq!(status, 408);
    assert!(
        elapsed < Duration::from_secs(2),
        "cut off only after {elapsed:?}"
    );
}

#[test]
fn idle_connection_is_closed_without_response_bytes() {
    let server = server("idle = \"300ms\"");
    let mut fresh = server.connect();
    fresh.expect_closed();
    let mut used = server.connect();
    used.send(&get("/"));
    assert_eq!(used.read_response().status, 200);
    used.expect_closed();
}

#[test]
fn stalled_body_connection_is_closed_at_the_body_timeout() {
    let server = server("body = \"300ms\"");
    let mut client = server.connect();
    let start = Instant::now();
    client.send(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\nabc");
    let received = client.read_until_closed();
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(5),
        "closed after {elapsed:?}; received {:?}",
        String::from_utf8_lossy(&received)
    );
}

/// The support deadline must comfortably exceed every timeout configured here.
const _: () = assert!(IO_LIMIT.as_secs() >= 5);

#[test]
fn a_client_that_stops_reading_is_closed_at_the_write_timeout() {
    let body = "x".repeat(65536);
    let server = TestServer::start(&config_with(
        "",
        &format!(
            "[timeouts]\nwrite = \"300ms\"\n\n[[route]]\nname = \"big\"\npath = \"/big\"\nhandler = \"respond\"\nbody = \"{body}\"\n"
        ),
    ));
    let client = server.connect();
    // Pipeline requests for 64 KiB responses and never read them: the server's output and
    // both socket buffers fill, the server stops reading (back-pressure), and then no write
    // makes progress for the write timeout.
    let mut sender = client.stream.try_clone().expect("clone");
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Padded to 8 KiB so the requests themselves also outgrow the socket buffers.
        let padding = "p".repeat(8000);
        let request = format!("GET /big HTTP/1.1\r\nHost: t\r\nX-Pad: {padding}\r\n\r\n");
        let request = request.as_bytes();
        // Bounded: 10,000 requests are 80 MB asking for 640 MiB, far past any buffering.
        for _ in 0..10_000 {
            if let Err(err) = sender.write_all(request) {
                let _ = done_tx.send(Some(err.kind()));
                return;
            }
        }
        let _ = done_tx.send(None);
    });
    let outcome = done_rx
        .recv_timeout(IO_LIMIT)
        .expect("the server never closed");
    assert!(
        outcome.is_some(),
        "all 10,000 requests were accepted without the client reading"
    );
}
