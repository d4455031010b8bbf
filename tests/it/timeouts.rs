//! Timeouts: a slow or silent client is answered 408 (when no response has started) and
//! closed; an idle keep-alive connection is closed without a word; a body below the
//! minimum rate is cut off, unless it is the server that holds it up.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::{
    Client, IO_LIMIT, Process, TestServer, binary, config_with, get, metric_value, scrape,
    temp_path, write_config,
};

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
    let head = b"GET / HTTP/1.1\r\nHost: test\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let (status, elapsed) = dribble(server.connect(), head.chunks(1).take(50))
        .expect("server still reading a dribbled head after 50 bytes over 5 s");
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

/// Sends `pieces` on `client`, one every 100 ms, until the server answers: its status and
/// how long after the first piece, or `None` if every piece went out unanswered. A thread of
/// its own waits (with the support deadline) for the answer and the close; the client is
/// closed on return.
fn dribble<'a>(
    mut client: Client,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> Option<(u16, Duration)> {
    let mut writer = client.stream.try_clone().expect("clone stream");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let response = client.read_response();
        client.expect_closed();
        let _ = tx.send(response.status);
    });
    let start = Instant::now();
    for piece in pieces {
        if let Ok(status) = rx.try_recv() {
            reader.join().expect("reader");
            return Some((status, start.elapsed()));
        }
        // Once the server has closed, a write may fail; that is expected.
        let _ = writer.write_all(piece);
        std::thread::sleep(Duration::from_millis(100)); // pacing the dribble, not waiting
    }
    None
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

/// A daemon with one `upload` route, an `echo` route, `[limits] min_body_bytes_per_second`
/// = `rate`, a 1 s body timeout, and an admin port to read its close reasons from.
struct RateDaemon {
    /// Held for its lifetime: the daemon is killed when this is dropped.
    _process: Process,
    data: SocketAddr,
    admin: SocketAddr,
}

impl RateDaemon {
    fn start(rate: u64) -> RateDaemon {
        let dir = temp_path("rate-uploads");
        std::fs::create_dir(&dir).expect("upload dir");
        let config = format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n\
             [limits]\nmax_body_bytes = 100000000\nmin_body_bytes_per_second = {rate}\n\n\
             [defaults]\nmax_body_bytes = 100000000\n\n\
             [timeouts]\nbody = \"1s\"\n\n[admin]\nlisten = \"127.0.0.1:0\"\n\n\
             [[route]]\nname = \"up\"\npath = \"/up\"\nhandler = \"upload\"\ndir = \"{}\"\n\n\
             [[route]]\nname = \"echo\"\npath = \"/echo\"\nhandler = \"echo\"\n",
            dir.display()
        );
        let mut process = Process::start(binary(), write_config(&config), &[]);
        let (data, admin) = process.served_addresses();
        RateDaemon {
            _process: process,
            data,
            admin,
        }
    }

    /// `asycamore_connections_closed_total{reason}` from `/metrics`, parsed.
    fn closed(&self, reason: &str) -> f64 {
        let scrape = scrape(self.admin);
        metric_value(
            &scrape,
            "asycamore_connections_closed_total",
            &[("reason", reason)],
        )
    }
}

/// A body that trickles in below `min_body_bytes_per_second` is answered 408 and closed,
/// although it is never silent for the body timeout; one that keeps up on average, in
/// bursts with pauses, is taken whole. The close is counted as `body_too_slow`.
#[test]
fn a_body_below_the_minimum_rate_is_cut_off_and_one_that_keeps_up_is_not() {
    let daemon = RateDaemon::start(1000);

    // Keeps up: 2,000 bytes (2 s of credit at 1,000 B/s) every 300 ms.
    let mut steady = Client::connect(daemon.data);
    steady.send(b"POST /up HTTP/1.1\r\nHost: test\r\nContent-Length: 10000\r\n\r\n");
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(300)); // pacing the upload, not waiting
        steady.send(&[b's'; 2000]);
    }
    let response = steady.read_response();
    assert_eq!(response.status, 201, "{}", response.text());

    // Trickles: 10 bytes every 100 ms (100 B/s), never 1 s silent.
    let mut slow = Client::connect(daemon.data);
    slow.send(b"POST /up HTTP/1.1\r\nHost: test\r\nContent-Length: 100000\r\n\r\n");
    let answer = dribble(slow, std::iter::repeat_n(&[b't'; 10][..], 100));
    assert_eq!(
        answer.map(|(status, _)| status),
        Some(408),
        "a 100 B/s body still read after 10 s"
    );
    // The server lingers (reading, discarding) until the client closes too (`dribble`
    // has), and counts the close then.
    let counted = Instant::now() + IO_LIMIT;
    while daemon.closed("body_too_slow") == 0.0 && Instant::now() < counted {
        std::thread::sleep(Duration::from_millis(10)); // polling for the count
    }
    assert_eq!(daemon.closed("body_too_slow"), 1.0);
    assert_eq!(daemon.closed("body_timeout"), 0.0);
}

/// While the server has stopped reading a body because the client does not read its
/// response (back-pressure), the body rate does not run: a client that pauses reading for
/// longer than the grace plus everything its body earned still gets its whole echo.
#[test]
fn back_pressure_does_not_count_against_the_body_rate() {
    const BODY: usize = 32 << 20;
    // 20 MB/s: what loopback buffers take before the stall earns well under the 2.5 s pause.
    let daemon = RateDaemon::start(20_000_000);
    let mut client = Client::connect(daemon.data);
    let pattern = |i: usize| (i % 251) as u8;
    let mut writer = client.stream.try_clone().expect("clone stream");
    // Built before the head goes out: the body clock starts with the head, and building
    // 32 MiB takes longer than the body timeout in a debug build on a loaded machine.
    let body: Vec<u8> = (0..BODY).map(pattern).collect();
    let sender = std::thread::spawn(move || {
        let head = format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {BODY}\r\n\r\n");
        writer.write_all(head.as_bytes())?;
        writer.write_all(&body)
    });
    // The pause is the scenario (a client busy elsewhere), not a wait for an event.
    std::thread::sleep(Duration::from_millis(2500));
    let response = client.read_response_to("POST");
    sender
        .join()
        .expect("sender")
        .expect("the whole body was sent");
    assert_eq!(response.status, 200);
    assert!(
        response.body.len() > BODY,
        "echo of {} bytes",
        response.body.len()
    );
    let echoed = &response.body[response.body.len() - BODY..];
    assert!(
        echoed.iter().enumerate().all(|(i, &b)| b == pattern(i)),
        "echo differs from the body"
    );
    assert_eq!(daemon.closed("body_too_slow"), 0.0);
}
