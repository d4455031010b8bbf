//! `asycamore-bench`, the real binary: against the real server it counts exactly what the
//! server counts (keep-alive, pipelined, chunked uploads verified as echoes, one connection
//! per request, idle connections held), and against small deliberately broken servers
//! written here it counts each kind of failure and exits 1.
//!
//! Every run is bounded by a request count or a short duration, and every wait for the
//! tool has a deadline (`RUN_LIMIT`), after which it is killed and the test fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::support::{Client, Process, binary, config_with, write_config};

/// The longest one run of the tool may take before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(30);

/// What one run of the tool gave.
struct Run {
    status: Option<i32>,
    report: Value,
    stderr: String,
}

impl Run {
    fn count(&self, field: &str) -> u64 {
        let value = field
            .split('.')
            .fold(&self.report, |value, key| &value[key]);
        value
            .as_u64()
            .unwrap_or_else(|| panic!("no number {field} in {}", self.report))
    }
}

/// Runs the tool with `args` and `--json`; the report parsed.
fn bench(args: &[&str]) -> Run {
    let child = Command::new(env!("CARGO_BIN_EXE_asycamore-bench"))
        .args(args)
        .arg("--json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn asycamore-bench");
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(RUN_LIMIT) {
        Ok(output) => output.expect("wait for asycamore-bench"),
        Err(_) => {
            let _ = kill(pid, Signal::SIGKILL);
            panic!("asycamore-bench {args:?} ran longer than {RUN_LIMIT:?}");
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|err| panic!("report is not JSON ({err}): {stdout:?}, stderr {stderr}"));
    Run {
        status: output.status.code(),
        report,
        stderr,
    }
}

/// The server (one worker, the usual routes) with its admin port, for `/metrics`.
struct Server {
    _process: Process,
    url: String,
    admin: SocketAddr,
}

impl Server {
    fn start() -> Server {
        let config = config_with("", "[admin]\nlisten = \"127.0.0.1:0\"\n");
        let mut process = Process::start(binary(), write_config(&config), &[]);
        let (data, admin) = process.served_addresses();
        Server {
            _process: process,
            url: format!("http://{data}"),
            admin,
        }
    }

    /// The sum of every sample of the metric `name` (all label sets).
    fn metric(&self, name: &str) -> f64 {
        let mut client = Client::connect(self.admin);
        client.send(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        let response = client.read_response();
        assert_eq!(response.status, 200);
        response
            .text()
            .lines()
            .filter(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(['{', ' ']))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

#[test]
fn a_request_count_is_exact_and_the_server_saw_the_same() {
    let server = Server::start();
    let run = bench(&["-n", "500", "-c", "8", "-t", "2", &server.url]);
    assert_eq!(run.status, Some(0), "{}", run.report);
    assert_eq!(run.count("requests"), 500);
    assert_eq!(run.count("status.2xx"), 500);
    assert_eq!(run.count("errors_total"), 0);
    assert_eq!(run.count("connections_opened"), 8);
    assert_eq!(server.metric("asycamore_http_requests_total"), 500.0);
    assert_eq!(server.metric("asycamore_connections_accepted_total"), 8.0);
}

#[test]
fn pipelined_sixteen_deep() {
    let server = Server::start();
    let run = bench(&["-n", "1600", "-c", "4", "-p", "16", &server.url]);
    assert_eq!(run.status, Some(0), "{}", run.report);
    assert_eq!((run.count("requests"), run.count("pipeline")), (1600, 16));
    assert_eq!(server.metric("asycamore_http_requests_total"), 1600.0);
}

#[test]
fn chunked_uploads_come_back_as_exact_echoes() {
    let server = Server::start();
    let url = format!("{}/echo", server.url);
    let args = ["-n", "40", "-c", "2", "-p", "4", "--verify-echo"];
    let run = bench(
        &[
            &args[..],
            &["--synthesize-post", "8", "--chunksz", "1000", &url],
        ]
        .concat(),
    );
    assert_eq!(run.status, Some(0), "{}", run.report);
    assert_eq!(run.count("requests"), 40);
    assert_eq!(run.count("request_body_bytes"), 40 * 8 * 1000);
    assert_eq!(run.count("errors_total"), 0);
    // Too large to pre-build as one batch (4 x 512 KiB): written piece by piece.
    let large = ["--synthesize-post", "64", "--chunksz", "8192", &url];
    let run = bench(&[&args[..], &large].concat());
    assert_eq!(run.status, Some(0), "{}", run.report);
    assert_eq!(run.count("request_body_bytes"), 40 * 64 * 8192);
    // A body that is not the echo (the `respond` route) is caught.
    let run = bench(&[
        "-n",
        "3",
        "-c",
        "1",
        "--verify-echo",
        "--body",
        "x",
        &server.url,
    ]);
    assert_eq!(run.status, Some(1));
    assert_eq!(run.count("errors.body_mismatch"), 3);
}

#[test]
fn connection_close_opens_a_connection_per_request() {
    let server = Server::start();
    let run = bench(&["-n", "50", "-c", "4", "--connection-close", &server.url]);
    assert_eq!(run.status, Some(0), "{}", run.report);
    assert_eq!(run.count("requests"), 50);
    assert_eq!(run.count("connections_opened"), 50);
    assert_eq!(server.metric("asycamore_connections_accepted_total"), 50.0);
}

#[test]
fn hold_idle_holds_connections_the_server_sees_open() {
    let server = Server::start();
    let mut child = Command::new(env!("CARGO_BIN_EXE_asycamore-bench"))
        .args([
            "--hold-idle",
            "20",
            "-t",
            "2",
            "-d",
            "2s",
            "--json",
            &server.url,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn asycamore-bench");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx.recv_timeout(RUN_LIMIT).expect("a line on stderr");
    assert_eq!(line, "holding 20 idle connections");
    // Held now: the run lasts until its duration ends.
    assert_eq!(server.metric("asycamore_connections_open"), 20.0);
    let mut stdout = String::new();
    let mut pipe = child.stdout.take().expect("stdout");
    pipe.read_to_string(&mut stdout).expect("report");
    assert_eq!(child.wait().expect("wait").code(), Some(0));
    let report: Value = serde_json::from_str(stdout.trim()).expect("JSON report");
    assert_eq!(report["held_idle"], 20);
    assert_eq!(report["requests"], 20);
}

#[test]
fn the_json_report_has_every_field() {
    let server = Server::start();
    let run = bench(&["-d", "300ms", "-c", "2", &server.url]);
    assert_eq!(run.status, Some(0), "{}", run.report);
    for field in [
        "url",
        "method",
        "connections",
        "threads",
        "pipeline",
        "duration_s",
        "requests",
        "requests_per_s",
        "response_bytes",
        "response_bytes_per_s",
        "request_body_bytes",
        "request_body_bytes_per_s",
        "connections_opened",
        "errors_total",
        "errors",
        "status",
        "latency_us",
        "held_idle",
        "ok",
    ] {
        assert!(
            run.report.get(field).is_some(),
            "no {field} in {}",
            run.report
        );
    }
    for kind in [
        "connect",
        "reset",
        "protocol",
        "short_response",
        "timeout",
        "unexpected_close",
        "out_of_order",
        "body_mismatch",
    ] {
        assert_eq!(run.report["errors"][kind], 0, "{kind}");
    }
    for class in ["1xx", "2xx", "3xx", "4xx", "5xx"] {
        assert!(run.report["status"][class].is_u64(), "{class}");
    }
    for p in ["p50", "p90", "p99", "p99_9", "max"] {
        assert!(
            run.report["latency_us"][p].as_u64().is_some_and(|v| v > 0),
            "{p}"
        );
    }
    assert!(run.count("requests") > 0);
    assert_eq!(run.report["ok"], true);
}

/// A server on 127.0.0.1 that hands each connection to `serve` on its own thread.
fn broken_server(serve: fn(TcpStream)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || serve(stream));
        }
    });
    format!("http://{addr}/")
}

/// Reads one request (head and Content-Length body) off `stream`: its raw bytes, or
/// `None` at EOF.
fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let body_len: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map_or(0, |n| n.trim().parse().expect("length"));
            if buf.len() >= end + 4 + body_len {
                return Some(buf.drain(..end + 4 + body_len).collect());
            }
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Reads one request, answers `reply`, and closes.
fn answer_once(mut stream: TcpStream, reply: &[u8]) {
    if read_request(&mut stream, &mut Vec::new()).is_some() {
        let _ = stream.write_all(reply);
    }
}

#[test]
fn a_truncated_body_is_a_short_response() {
    let url = broken_server(|stream| {
        answer_once(stream, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    });
    let run = bench(&["-n", "1", "-c", "1", &url]);
    assert_eq!(run.status, Some(1));
    assert_eq!(run.count("errors.short_response"), 1);
    assert_eq!(run.count("requests"), 0);
}

#[test]
fn a_garbage_head_is_a_protocol_error() {
    let url = broken_server(|stream| answer_once(stream, b"SMTP ready\r\n\r\n"));
    let run = bench(&["-n", "1", "-c", "1", &url]);
    assert_eq!(run.status, Some(1));
    assert_eq!(run.count("errors.protocol"), 1);
}

#[test]
fn a_reset_is_counted() {
    let url = broken_server(|mut stream| {
        if read_request(&mut stream, &mut Vec::new()).is_some() {
            // Linger 0: closing sends RST instead of FIN.
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
        }
    });
    let run = bench(&["-n", "1", "-c", "1", &url]);
    assert_eq!(run.status, Some(1));
    assert_eq!(run.count("errors.reset"), 1);
}

#[test]
fn a_close_between_responses_is_unexpected() {
    let url = broken_server(|mut stream| {
        let _ = read_request(&mut stream, &mut Vec::new());
    });
    let run = bench(&["-n", "1", "-c", "1", &url]);
    assert_eq!(run.status, Some(1));
    assert_eq!(run.count("errors.unexpected_close"), 1);
}

#[test]
fn swapped_responses_are_out_of_order() {
    // Echoes each pair of pipelined requests, second first.
    let url = broken_server(|mut stream| {
        let mut buf = Vec::new();
        while let (Some(a), Some(b)) = (
            read_request(&mut stream, &mut buf),
            read_request(&mut stream, &mut buf),
        ) {
            for echo in [b, a] {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", echo.len());
                let _ = stream.write_all(&[head.as_bytes(), &echo].concat());
            }
        }
    });
    let run = bench(&[
        "-n",
        "4",
        "-c",
        "1",
        "-p",
        "2",
        "--verify-echo",
        "--body",
        "hi",
        &url,
    ]);
    assert_eq!(run.status, Some(1));
    assert_eq!(run.count("requests"), 4);
    assert_eq!(run.count("errors.out_of_order"), 4);
    assert_eq!(run.count("errors.body_mismatch"), 0);
}

#[test]
fn a_server_that_never_answers_times_out_and_the_run_ends() {
    let url = broken_server(|mut stream| {
        // Read (and ignore) until the client gives up and closes.
        let mut sink = [0u8; 4096];
        while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
    });
    let started = Instant::now();
    let run = bench(&["-n", "2", "-c", "2", "--timeout", "300ms", &url]);
    assert_eq!(run.status, Some(1));
    assert_eq!(run.count("errors.timeout"), 2);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(run.stderr.is_empty(), "{}", run.stderr);
}
