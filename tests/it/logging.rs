//! Logging: access-log lines checked field by field in both formats, batching (the access log
//! is not written per request), nothing lost on a graceful stop, and the error and access log
//! files reopened on `SIGUSR1` after logrotate moved them away.
//!
//! The library-level tests serve the built-in route table through `server::start` with a
//! recording sink; the process-level ones run the real binary with `[log]` and `[access_log]`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use asycamore::config;
use asycamore::handlers::Builtin;
use asycamore::server::{self, AccessFormat, AccessLog, AccessSink, RouteTable, ServerHandle};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::{Client, IO_LIMIT, Response, binary, temp_path, write_config};

const ROUTES: &str = r#"
[[route]]
name = "hello"
path = "/hello"
handler = "respond"
body = "Hello, World!"

[[route]]
name = "echo"
path = "/echo"
handler = "echo"
"#;

/// A sink that keeps every batch.
#[derive(Default)]
struct Recorder {
    batches: Mutex<Vec<Vec<u8>>>,
}

impl AccessSink for Recorder {
    fn write_batch(&self, lines: &[u8]) {
        self.batches.lock().unwrap().push(lines.to_vec());
    }
}

impl Recorder {
    fn batch_count(&self) -> usize {
        self.batches.lock().unwrap().len()
    }

    fn lines(&self) -> Vec<String> {
        let batches = self.batches.lock().unwrap();
        let mut lines = Vec::new();
        for batch in batches.iter() {
            assert!(batch.ends_with(b"\n"), "a batch holds whole lines");
            let text = String::from_utf8(batch.clone()).expect("utf-8");
            lines.extend(text.lines().map(str::to_string));
        }
        lines
    }
}

/// The built-in route table served by the library with access logging to a recorder.
fn serve_logged(
    format: AccessFormat,
    flush_interval: Duration,
    workers: usize,
) -> (ServerHandle<RouteTable<Builtin>>, Arc<Recorder>) {
    let text = format!("[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = {workers}\n{ROUTES}");
    let config = config::load_str(&text, "logging.toml").expect("valid config");
    let table = Arc::new(config::route_table(&config, 1));
    let recorder = Arc::new(Recorder::default());
    let mut server_config = config::server_config(&config);
    server_config.access_log = Some(AccessLog {
        format,
        sink: recorder.clone(),
        flush_interval,
    });
    let handle = server::start(server_config, table).expect("server starts");
    (handle, recorder)
}

/// One request the tests send, what the client saw of it, and the time around it.
struct Sent {
    method: &'static str,
    target: &'static str,
    referer: Option<&'static str>,
    user_agent: Option<&'static str>,
    route: &'static str,
    status: u16,
    body_bytes: usize,
    before: SystemTime,
    after: SystemTime,
    /// Sent at `start`; the response read at `received`.
    start: Instant,
    received: Instant,
    /// The longest its logged duration can be (see [`set_limits`]).
    elapsed: Duration,
}

/// The longest each request's logged duration can be. Not the time the client saw: the
/// server reads its clock after the write that sent the response, and its thread can be
/// preempted in between while the client already has the response. But it always reads it
/// before it serves the next request on the connection (the next response is written
/// after), or, for the last, before `done` (a completed drain).
fn set_limits(sent: &mut [Sent], done: Instant) {
    let ends: Vec<Instant> = sent.iter().skip(1).map(|s| s.received).collect();
    for (i, request) in sent.iter_mut().enumerate() {
        request.elapsed = ends.get(i).copied().unwrap_or(done) - request.start;
    }
}

/// A request to send.
struct Case {
    method: &'static str,
    target: &'static str,
    referer: Option<&'static str>,
    user_agent: Option<&'static str>,
    body: &'static [u8],
    route: &'static str,
}

/// Sends a fixed mix on one keep-alive connection: a routed GET with a referer and a user
/// agent (one with a quote, to see escaping), a POST to echo without either, and a 404.
fn send_mix(addr: SocketAddr) -> Vec<Sent> {
    let mut client = Client::connect(addr);
    let cases = [
        Case {
            method: "GET",
            target: "/hello?x=1&y=%22",
            referer: Some("http://example.test/from?a=b"),
            user_agent: Some("it-agent/1.0 (\"quoted\")"),
            body: b"",
            route: "hello",
        },
        Case {
            method: "POST",
            target: "/echo",
            referer: None,
            user_agent: None,
            body: b"ping, pong!",
            route: "echo",
        },
        Case {
            method: "GET",
            target: "/missing",
            referer: None,
            user_agent: Some("it-agent/2.0"),
            body: b"",
            route: "",
        },
    ];
    let mut sent = Vec::new();
    for case in cases {
        let Case {
            method,
            target,
            referer,
            user_agent,
            body,
            route,
        } = case;
        let mut request = format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\n");
        if let Some(referer) = referer {
            request.push_str(&format!("Referer: {referer}\r\n"));
        }
        if let Some(user_agent) = user_agent {
            request.push_str(&format!("User-Agent: {user_agent}\r\n"));
        }
        if !body.is_empty() {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        let before = SystemTime::now();
        let start = Instant::now();
        client.send(&bytes);
        let response: Response = client.read_response();
        let received = Instant::now();
        sent.push(Sent {
            method,
            target,
            referer,
            user_agent,
            route,
            status: response.status,
            body_bytes: response.body.len(),
            before,
            after: SystemTime::now(),
            start,
            received,
            elapsed: Duration::ZERO,
        });
    }
    assert_eq!(sent[0].status, 200);
    assert_eq!(sent[0].body_bytes, 13);
    assert_eq!(sent[1].status, 200);
    assert_eq!(sent[2].status, 404);
    sent
}

/// `value` as the server escapes it in a quoted CLF field or a JSON string (test input is
/// printable ASCII, so only `"` and `\` change).
fn escaped(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Splits a Combined line into its fields: bare words, `[...]`, and `"..."` (escapes kept).
fn clf_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        let (field, tail) = if let Some(inner) = rest.strip_prefix('[') {
            let end = inner.find(']').unwrap_or_else(|| panic!("no ] in {line}"));
            (&inner[..end], &inner[end + 1..])
        } else if let Some(inner) = rest.strip_prefix('"') {
            let bytes = inner.as_bytes();
            let mut i = 0;
            while bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            (&inner[..i], &inner[i + 1..])
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        fields.push(field.to_string());
        rest = tail.strip_prefix(' ').unwrap_or(tail);
    }
    fields
}

/// The time of a Combined line's `10/Oct/2000:13:55:36.123 +0000` field.
fn clf_time(field: &str) -> SystemTime {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    assert!(field.ends_with(" +0000") && field.len() == 30, "{field}");
    let month = MONTHS.iter().position(|m| *m == &field[3..6]).expect(field) + 1;
    let rfc = format!(
        "{}-{month:02}-{}T{}Z",
        &field[7..11],
        &field[0..2],
        &field[12..24]
    );
    humantime::parse_rfc3339(&rfc).unwrap_or_else(|e| panic!("{field}: {e}"))
}

/// Asserts a logged time (milliseconds) lies within the request as the client saw it.
pub fn assert_within(logged: SystemTime, before: SystemTime, after: SystemTime, line: &str) {
    let millis = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_millis();
    assert!(
        millis(before) <= millis(logged) && logged <= after,
        "time not within the request ({before:?}..{after:?}): {line}"
    );
}

fn check_combined_line(line: &str, sent: &Sent) {
    let fields = clf_fields(line);
    assert_eq!(fields.len(), 14, "{line}");
    assert_eq!(fields[0], "127.0.0.1", "peer: {line}");
    assert_eq!(
        (fields[1].as_str(), fields[2].as_str()),
        ("-", "-"),
        "{line}"
    );
    assert_within(clf_time(&fields[3]), sent.before, sent.after, line);
    assert_eq!(
        fields[4],
        format!("{} {} HTTP/1.1", sent.method, escaped(sent.target)),
        "request line: {line}"
    );
    assert_eq!(fields[5], sent.status.to_string(), "status: {line}");
    assert_eq!(fields[6], sent.body_bytes.to_string(), "bytes: {line}");
    assert_eq!(
        fields[7],
        sent.referer.map_or("-".into(), escaped),
        "referer: {line}"
    );
    assert_eq!(
        fields[8],
        sent.user_agent.map_or("-".into(), escaped),
        "user agent: {line}"
    );
    let route = if sent.route.is_empty() {
        "-"
    } else {
        sent.route
    };
    assert_eq!(fields[9], route, "route: {line}");
    let micros: u128 = fields[10]
        .parse()
        .unwrap_or_else(|_| panic!("duration: {line}"));
    // Each request is served within one turn of the loop: timed from its read to its
    // write all the same, never 0, and within what the client measured around it.
    assert!(
        0 < micros && micros <= sent.elapsed.as_micros(),
        "server duration {micros} us not within (0, {:?}]: {line}",
        sent.elapsed
    );
    assert_eq!(fields[11], "localhost", "host: {line}");
    assert_eq!((&*fields[12], &*fields[13]), ("-", "-"), "upstream: {line}");
}

/// A JSON line as (key, value) pairs: strings unescaped, numbers as written. The lines are
/// flat objects, so this small reader is all the test needs.
pub fn json_fields(line: &str) -> Vec<(String, String)> {
    fn string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> String {
        assert_eq!(chars.next(), Some('"'));
        let mut out = String::new();
        loop {
            match chars.next().expect("unterminated string") {
                '"' => return out,
                '\\' => match chars.next().unwrap() {
                    'u' => {
                        let hex: String = chars.by_ref().take(4).collect();
                        out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                    }
                    other => out.push(other),
                },
                c => out.push(c),
            }
        }
    }
    let mut chars = line.chars().peekable();
    assert_eq!(chars.next(), Some('{'), "{line}");
    let mut fields = Vec::new();
    loop {
        let key = string(&mut chars);
        assert_eq!(chars.next(), Some(':'), "{line}");
        let value = if chars.peek() == Some(&'"') {
            string(&mut chars)
        } else if chars.peek() == Some(&'n') {
            let null: String = chars.by_ref().take(4).collect();
            assert_eq!(null, "null", "{line}");
            null
        } else {
            let mut number = String::new();
            while chars.peek().is_some_and(char::is_ascii_digit) {
                number.push(chars.next().unwrap());
            }
            assert!(!number.is_empty(), "{line}");
            number
        };
        fields.push((key, value));
        match chars.next() {
            Some(',') => continue,
            Some('}') => break,
            other => panic!("unexpected {other:?} in {line}"),
        }
    }
    assert_eq!(chars.next(), None, "{line}");
    fields
}

fn check_json_line(line: &str, sent: &Sent) {
    let fields = json_fields(line);
    let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "time",
            "remote",
            "method",
            "target",
            "version",
            "route",
            "referer",
            "user_agent",
            "status",
            "bytes",
            "duration_us",
            "host",
            "upstream",
            "upstream_time_us"
        ],
        "{line}"
    );
    let get = |key: &str| fields.iter().find(|(k, _)| k == key).unwrap().1.clone();
    let time = get("time");
    assert_eq!(time.len(), "2000-10-10T13:55:36.123Z".len(), "{line}");
    assert_within(
        humantime::parse_rfc3339(&time).unwrap(),
        sent.before,
        sent.after,
        line,
    );
    assert_eq!(get("remote"), "127.0.0.1", "{line}");
    assert_eq!(get("method"), sent.method, "{line}");
    assert_eq!(get("target"), sent.target, "{line}");
    assert_eq!(get("version"), "HTTP/1.1", "{line}");
    assert_eq!(get("route"), sent.route, "{line}");
    assert_eq!(get("referer"), sent.referer.unwrap_or(""), "{line}");
    assert_eq!(get("user_agent"), sent.user_agent.unwrap_or(""), "{line}");
    assert_eq!(get("status"), sent.status.to_string(), "{line}");
    assert_eq!(get("bytes"), sent.body_bytes.to_string(), "{line}");
    let micros: u128 = get("duration_us").parse().unwrap();
    assert!(0 < micros && micros <= sent.elapsed.as_micros(), "{line}");
    assert_eq!(get("host"), "localhost", "{line}");
    assert_eq!(get("upstream"), "null", "{line}");
    assert_eq!(get("upstream_time_us"), "null", "{line}");
}

#[test]
fn combined_lines_carry_every_field() {
    let (handle, recorder) = serve_logged(AccessFormat::Combined, Duration::from_secs(1), 1);
    let mut sent = send_mix(handle.local_addrs()[0]);
    handle.drain(IO_LIMIT);
    set_limits(&mut sent, Instant::now());
    let lines = recorder.lines();
    assert_eq!(lines.len(), sent.len(), "{lines:#?}");
    for (line, sent) in lines.iter().zip(&sent) {
        check_combined_line(line, sent);
    }
}

#[test]
fn json_lines_carry_every_field() {
    let (handle, recorder) = serve_logged(AccessFormat::Json, Duration::from_secs(1), 1);
    let mut sent = send_mix(handle.local_addrs()[0]);
    handle.drain(IO_LIMIT);
    set_limits(&mut sent, Instant::now());
    let lines = recorder.lines();
    assert_eq!(lines.len(), sent.len(), "{lines:#?}");
    for (line, sent) in lines.iter().zip(&sent) {
        check_json_line(line, sent);
    }
}

/// The access log is written a batch at a time, not per request, and a graceful stop hands
/// over what every worker still buffers.
#[test]
fn requests_are_logged_in_batches_and_a_drain_loses_none() {
    const CONNECTIONS: usize = 4;
    const PER_CONNECTION: usize = 50;
    let (handle, recorder) = serve_logged(AccessFormat::Combined, Duration::from_secs(5), 2);
    let addr = handle.local_addrs()[0];
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                for i in 0..PER_CONNECTION {
                    client.send(
                        format!("GET /hello?c={c}&i={i} HTTP/1.1\r\nHost: localhost\r\n\r\n")
                            .as_bytes(),
                    );
                    assert_eq!(client.read_response().status, 200);
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let total = CONNECTIONS * PER_CONNECTION;
    let batches_before_stop = recorder.batch_count();
    assert!(
        batches_before_stop < total,
        "{batches_before_stop} batches for {total} requests"
    );
    handle.drain(IO_LIMIT);
    let lines = recorder.lines();
    assert_eq!(lines.len(), total);
    assert!(
        recorder.batch_count() <= 2 + batches_before_stop,
        "a stop hands over one batch per worker"
    );
    assert!(
        recorder.batch_count() < total / 10,
        "{} batches for {total} requests",
        recorder.batch_count()
    );
    for c in 0..CONNECTIONS {
        for i in 0..PER_CONNECTION {
            let target = format!("\"GET /hello?c={c}&i={i} HTTP/1.1\" 200 13 ");
            assert_eq!(
                lines.iter().filter(|l| l.contains(&target)).count(),
                1,
                "{target}"
            );
        }
    }
}

/// Lines are handed over on the interval while the server runs, not only at the stop.
#[test]
fn lines_arrive_on_the_flush_interval_without_a_stop() {
    let (handle, recorder) = serve_logged(AccessFormat::Json, Duration::from_millis(20), 1);
    let mut client = Client::connect(handle.local_addrs()[0]);
    client.send(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(client.read_response().status, 200);
    let deadline = Instant::now() + IO_LIMIT;
    while recorder.batch_count() == 0 {
        assert!(Instant::now() < deadline, "no batch within {IO_LIMIT:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(recorder.lines().len(), 1);
    handle.shutdown();
}

// ---- The real binary. ----

/// The binary run with a config that logs to files (so stderr is not where its address is
/// reported): killed on drop.
struct Daemon {
    child: Child,
    config: PathBuf,
}

impl Daemon {
    fn start(config: &str) -> Daemon {
        let config = write_config(config);
        let child = binary()
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn asycamore");
        Daemon { child, config }
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).expect("kill");
    }

    /// Waits (bounded) for the process to exit and returns its status code.
    fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + IO_LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "the server did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

/// Polls (bounded) until `path` holds a line containing `needle`; returns that line.
fn wait_for_line(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + IO_LIMIT;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Some(line) = text.lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
        }
        assert!(
            Instant::now() < deadline,
            "no line with {needle:?} in {} within {IO_LIMIT:?}; it holds {:?}",
            path.display(),
            std::fs::read_to_string(path)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls (bounded) until `path` holds exactly `count` lines.
fn wait_for_lines(path: &Path, count: usize) -> Vec<String> {
    let deadline = Instant::now() + IO_LIMIT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= count {
            assert_eq!(lines.len(), count, "{lines:#?}");
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} lines in {} within {IO_LIMIT:?}",
            lines.len(),
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn listening_addr(error_log: &Path) -> SocketAddr {
    let line = wait_for_line(error_log, "listening on http://");
    line.split("listening on http://")
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .expect("address")
}

fn get(addr: SocketAddr, target: &str) -> Response {
    let mut client = Client::connect(addr);
    client.send(
        format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    client.read_response()
}

fn file_config(error_log: &Path, access_log: &Path, format: &str, level: &str) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
workers = 2

[log]
level = "{level}"
target = "file"
file = "{}"

[access_log]
enabled = true
file = "{}"
format = "{format}"
flush_interval = "50ms"
{ROUTES}"#,
        error_log.display(),
        access_log.display()
    )
}

/// SIGUSR1 after logrotate moved both logs away: the daemon creates new files and writes
/// its next lines there; the moved files keep what was written before.
#[test]
fn sigusr1_reopens_moved_error_and_access_logs() {
    let error_log = temp_path("error.log");
    let access_log = temp_path("access.log");
    let mut daemon = Daemon::start(&file_config(&error_log, &access_log, "combined", "info"));
    let addr = listening_addr(&error_log);
    assert_eq!(get(addr, "/hello?before").status, 200);
    wait_for_line(&access_log, "/hello?before");

    let error_moved = error_log.with_extension("log.1");
    let access_moved = access_log.with_extension("log.1");
    std::fs::rename(&error_log, &error_moved).unwrap();
    std::fs::rename(&access_log, &access_moved).unwrap();
    daemon.signal(Signal::SIGUSR1);

    // The reopen itself is the next error-log line, in the new file.
    let reopened = wait_for_line(&error_log, "reopened");
    assert!(reopened.contains("INFO"), "{reopened}");
    assert_eq!(get(addr, "/hello?after").status, 200);
    let after = wait_for_line(&access_log, "/hello?after");
    assert!(after.contains("\" 200 13 "), "{after}");

    let old_access = std::fs::read_to_string(&access_moved).unwrap();
    assert!(old_access.contains("/hello?before") && !old_access.contains("/hello?after"));
    assert!(
        !std::fs::read_to_string(&access_log)
            .unwrap()
            .contains("/hello?before")
    );
    assert!(
        std::fs::read_to_string(&error_moved)
            .unwrap()
            .contains("listening on")
    );

    daemon.signal(Signal::SIGTERM);
    assert_eq!(daemon.wait_exit(), Some(0));
    for path in [error_log, error_moved, access_log, access_moved] {
        let _ = std::fs::remove_file(path);
    }
}

/// N requests, then SIGTERM: after the process exits, the access log holds exactly N lines,
/// although the flush interval is far longer than the test.
#[test]
fn a_graceful_stop_writes_every_buffered_access_line() {
    const REQUESTS: usize = 120;
    let error_log = temp_path("error.log");
    let access_log = temp_path("access.log");
    let config = file_config(&error_log, &access_log, "json", "info")
        .replace("flush_interval = \"50ms\"", "flush_interval = \"60s\"");
    let mut daemon = Daemon::start(&config);
    let addr = listening_addr(&error_log);
    let mut clients: Vec<Client> = (0..4).map(|_| Client::connect(addr)).collect();
    for i in 0..REQUESTS {
        let client = &mut clients[i % 4];
        client.send(format!("GET /hello?n={i} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes());
        assert_eq!(client.read_response().status, 200);
    }
    let early = std::fs::read_to_string(&access_log).unwrap_or_default();
    assert!(
        early.lines().count() < REQUESTS,
        "with a 60 s interval the lines are still buffered"
    );
    daemon.signal(Signal::SIGTERM);
    assert_eq!(daemon.wait_exit(), Some(0));
    let lines = wait_for_lines(&access_log, REQUESTS);
    for i in 0..REQUESTS {
        let target = format!("\"target\":\"/hello?n={i}\"");
        assert_eq!(
            lines.iter().filter(|l| l.contains(&target)).count(),
            1,
            "{target}"
        );
    }
    for line in &lines {
        assert!(
            line.contains("\"route\":\"hello\",") && line.contains("\"status\":200,"),
            "{line}"
        );
    }
    drop(clients);
    let _ = std::fs::remove_file(error_log);
    let _ = std::fs::remove_file(access_log);
}

/// Runs the binary with `config`, its stderr appended to `stderr_path` and `JOURNAL_STREAM`
/// set to `journal_stream`; killed on drop (as [`Daemon`]).
fn start_with_stderr(config: &str, stderr_path: &Path, journal_stream: &str) -> Daemon {
    let config = write_config(config);
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(stderr_path)
        .expect("open the stderr file");
    let child = binary()
        .arg("--config")
        .arg(&config)
        .env("JOURNAL_STREAM", journal_stream)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn asycamore");
    Daemon { child, config }
}

/// "DEVICE:INODE" of `path`, as systemd sets `JOURNAL_STREAM` for a stream to the journal.
fn device_and_inode(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).expect("stat");
    format!("{}:{}", meta.dev(), meta.ino())
}

const STDERR_CONFIG: &str = r#"
[server]
listen = ["127.0.0.1:0"]
workers = 1

[admin]
enabled = false

[log]
target = "stderr"

[[route]]
name = "hello"
path = "/hello"
handler = "respond"
body = "Hello, World!"
"#;

/// Under journald (`JOURNAL_STREAM` names stderr's device and inode) every stderr line starts
/// with its sd-daemon priority, so `journalctl -p err` can tell errors apart: a rejected
/// configuration (logged before the logger is configured) at `<3>`, the start-up lines at
/// `<6>`; no time stamps (the journal adds its own).
#[test]
fn under_the_journal_stderr_lines_carry_sd_daemon_priorities() {
    let stderr_path = temp_path("journal-stderr");
    std::fs::write(&stderr_path, "").unwrap();
    let stream = device_and_inode(&stderr_path);

    let broken = STDERR_CONFIG.replace("body = \"Hello, World!\"", "body = 5");
    let mut daemon = start_with_stderr(&broken, &stderr_path, &stream);
    assert_eq!(daemon.wait_exit(), Some(78));
    let text = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(!text.is_empty(), "nothing on stderr");
    for line in text.lines() {
        assert!(line.starts_with("<3>"), "{text}");
    }
    drop(daemon);

    std::fs::write(&stderr_path, "").unwrap();
    let mut daemon = start_with_stderr(STDERR_CONFIG, &stderr_path, &stream);
    let line = wait_for_line(&stderr_path, "listening on http://");
    assert!(line.starts_with("<6>INFO  listening on http://"), "{line}");
    daemon.signal(Signal::SIGTERM);
    assert_eq!(daemon.wait_exit(), Some(0));
    let text = std::fs::read_to_string(&stderr_path).unwrap();
    for line in text.lines() {
        assert!(
            line.starts_with("<6>INFO  ") || line.starts_with("<7>") || line.starts_with("<4>"),
            "{text}"
        );
    }
    let _ = std::fs::remove_file(stderr_path);
}

/// `JOURNAL_STREAM` inherited, but stderr is another file (a child whose stderr was
/// redirected): plain lines with a time, no priority prefix.
#[test]
fn a_journal_stream_naming_another_file_leaves_stderr_plain() {
    let stderr_path = temp_path("plain-stderr");
    let other = temp_path("other-stream");
    std::fs::write(&other, "").unwrap();
    let broken = STDERR_CONFIG.replace("body = \"Hello, World!\"", "body = 5");
    let mut daemon = start_with_stderr(&broken, &stderr_path, &device_and_inode(&other));
    assert_eq!(daemon.wait_exit(), Some(78));
    let text = std::fs::read_to_string(&stderr_path).unwrap();
    let first = text.lines().next().expect("a line on stderr");
    assert!(!first.starts_with('<'), "{text}");
    assert!(humantime::parse_rfc3339(&first[..20]).is_ok(), "{text}");
    assert!(first[20..].starts_with(" ERROR "), "{text}");
    drop(daemon);
    let _ = std::fs::remove_file(stderr_path);
    let _ = std::fs::remove_file(other);
}
