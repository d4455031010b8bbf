//! CPU profiling on the admin port and `--profile FILE`: profiles taken under load decode as
//! pprof protobuf and as SVG, one profile runs at a time (409), and the data plane answers
//! every request correctly while the profiler's SIGPROF interrupts its threads.

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pprof::protos::Message;

use crate::support::{
    Client, IO_LIMIT, Process, Response, binary, config_with, cpu_ticks, post, temp_path,
    write_config,
};

/// The base routes (a fixed body, an echo) on two workers; the admin port on an ephemeral
/// port with a short profile cap.
fn config() -> String {
    config_with(
        "workers = 2",
        "[admin]\nlisten = \"127.0.0.1:0\"\nprofile_max_seconds = 5\n",
    )
}

/// The daemon with its data and admin addresses, killed when dropped.
struct Daemon {
    process: Process,
    data: SocketAddr,
    admin: SocketAddr,
}

impl Daemon {
    fn start(extra_args: &[&std::ffi::OsStr]) -> Daemon {
        let mut process = Process::start(binary(), write_config(&config()), extra_args);
        let (data, admin) = process.served_addresses();
        Daemon {
            process,
            data,
            admin,
        }
    }

    /// One request to the admin port on a fresh connection.
    fn admin(&self, method: &str, target: &str) -> Response {
        let mut client = Client::connect(self.admin);
        client.send(
            format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")
                .as_bytes(),
        );
        client.read_response_to(method)
    }

    /// SIGTERM, then waits (bounded) for the exit; the exit code.
    fn stop(&mut self) -> Option<i32> {
        let pid = nix::unistd::Pid::from_raw(self.process.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM).expect("SIGTERM");
        let deadline = Instant::now() + IO_LIMIT;
        loop {
            if let Some(status) = self.process.child.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "the daemon did not exit");
            // Bounded poll of the child's exit: there is no event to wait on without a reaper.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Keep-alive clients sending `GET /` and `POST /echo` in turns and checking every response
/// exactly, until told to stop (bounded by count and time). Returns the responses checked.
struct Traffic {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<u64>>,
}

impl Traffic {
    fn start(addr: SocketAddr, clients: usize) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..clients)
            .map(|id| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let deadline = Instant::now() + Duration::from_secs(60);
                    let mut client = Client::connect(addr);
                    let mut checked = 0u64;
                    while !stop.load(Ordering::Relaxed)
                        && checked < 2_000_000
                        && Instant::now() < deadline
                    {
                        client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
                        let response = client.read_response();
                        assert_eq!(response.status, 200, "client {id} after {checked}");
                        assert_eq!(response.body, b"Hello, World!", "client {id}");
                        if response.says_close() {
                            // max_requests_per_connection reached.
                            client = Client::connect(addr);
                        }
                        // `echo` answers with the request itself, head and body.
                        let body = format!("client {id} request {checked} {}", "x".repeat(200));
                        let request = post("/echo", body.as_bytes());
                        client.send(&request);
                        let response = client.read_response();
                        assert_eq!(response.status, 200, "client {id} after {checked}");
                        assert_eq!(response.body, request, "client {id}");
                        if response.says_close() {
                            client = Client::connect(addr);
                        }
                        checked += 2;
                    }
                    checked
                })
            })
            .collect();
        Traffic { stop, threads }
    }

    /// Stops the clients; the responses they checked (a failed check fails the test).
    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .map(|thread| thread.join().expect("a traffic client failed"))
            .sum()
    }
}

/// A gzip-compressed pprof profile: decodes, has the CPU sample types, samples and symbols.
fn assert_pprof(bytes: &[u8]) {
    assert_eq!(&bytes[..2], b"\x1f\x8b", "not gzip");
    let mut proto = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut proto)
        .expect("gunzip");
    let profile = pprof::protos::Profile::parse_from_bytes(&proto).expect("pprof protobuf");
    let strings = &profile.string_table;
    assert_eq!(strings.first().map(String::as_str), Some(""), "string 0");
    let types: Vec<&str> = profile
        .sample_type
        .iter()
        .map(|t| strings[t.ty as usize].as_str())
        .collect();
    assert_eq!(types, ["samples", "cpu"], "sample types");
    assert!(!profile.sample.is_empty(), "no samples");
    assert!(
        profile
            .sample
            .iter()
            .all(|sample| !sample.location_id.is_empty()),
        "a sample without a stack"
    );
    assert!(!profile.function.is_empty(), "no functions");
    assert!(profile.duration_nanos > 0, "no duration");
}

/// An SVG document whose elements nest properly (a small XML well-formedness check).
fn assert_svg(bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).expect("SVG is UTF-8");
    let text = text.trim();
    assert!(
        text.starts_with("<?xml") || text.starts_with("<svg"),
        "{:?}",
        &text[..text.len().min(80)]
    );
    let mut stack: Vec<&str> = Vec::new();
    let mut roots = 0;
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        rest = &rest[open..];
        if let Some(after) = rest.strip_prefix("<!--") {
            let end = after.find("-->").expect("unterminated comment");
            rest = &after[end + 3..];
            continue;
        }
        if let Some(after) = rest.strip_prefix("<![CDATA[") {
            let end = after.find("]]>").expect("unterminated CDATA");
            rest = &after[end + 3..];
            continue;
        }
        let close = rest.find('>').expect("unterminated tag");
        let tag = &rest[1..close];
        rest = &rest[close + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop(), Some(name.trim()), "mismatched </{name}>");
            continue;
        }
        let name = tag
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        if stack.is_empty() {
            roots += 1;
            assert_eq!(name, "svg", "root element");
        }
        if !tag.ends_with('/') {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed elements {stack:?}");
    assert_eq!(roots, 1, "one root element");
    assert!(
        text.contains("<g") || text.contains("<text"),
        "an empty SVG"
    );
}

/// Polls `GET /profiling` (bounded) until it reports `active`.
fn wait_active(daemon: &Daemon, active: bool) -> String {
    let deadline = Instant::now() + IO_LIMIT;
    loop {
        let state = daemon.admin("GET", "/profiling");
        assert_eq!(state.status, 200);
        let text = state.text();
        if text.contains(&format!("\"active\":{active}")) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "profiling never became {active}: {text}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_profile_under_load_is_pprof_and_svg_and_every_response_is_right() {
    let daemon = Daemon::start(&[]);
    let traffic = Traffic::start(daemon.data, 4);
    let pprof = daemon.admin("GET", "/debug/pprof/profile?seconds=2&frequency=500");
    assert_eq!(pprof.status, 200, "{}", pprof.text());
    assert_eq!(
        pprof.header("content-type"),
        Some("application/octet-stream")
    );
    assert_pprof(&pprof.body);
    let svg = daemon.admin(
        "GET",
        "/debug/pprof/profile?seconds=1&frequency=500&format=flamegraph",
    );
    assert_eq!(svg.status, 200, "{}", svg.text());
    assert_eq!(svg.header("content-type"), Some("image/svg+xml"));
    assert_svg(&svg.body);
    let checked = traffic.finish();
    assert!(
        checked > 100,
        "only {checked} responses during the profiles"
    );
    // Samples came from the data plane's threads, by name.
    let text = String::from_utf8_lossy(&svg.body);
    assert!(
        text.contains("worker"),
        "no worker thread in the flame graph"
    );
    wait_active(&daemon, false);
    let log: Vec<String> = daemon.process.log.try_iter().collect();
    assert!(
        !log.iter().any(|line| line.contains("ERROR")),
        "errors logged: {log:#?}"
    );
}

#[test]
fn one_profile_at_a_time_and_runtime_start_stop() {
    let daemon = Daemon::start(&[]);
    let admin = daemon.admin;
    let timed = std::thread::spawn(move || {
        let mut client = Client::connect(admin);
        client.send(b"GET /debug/pprof/profile?seconds=2 HTTP/1.1\r\nHost: localhost\r\n\r\n");
        client.read_response()
    });
    let state = wait_active(&daemon, true);
    assert!(state.contains("\"kind\":\"timed\""), "{state}");
    for (method, target) in [
        ("POST", "/profiling/start"),
        ("GET", "/debug/pprof/profile?seconds=1"),
    ] {
        let busy = daemon.admin(method, target);
        assert_eq!(busy.status, 409, "{method} {target}: {}", busy.text());
        assert!(busy.text().contains("already running"), "{}", busy.text());
    }
    // The timed profile cannot be stopped early by /profiling/stop.
    assert_eq!(daemon.admin("POST", "/profiling/stop").status, 409);
    let timed = timed.join().expect("timed profile client");
    assert_eq!(timed.status, 200, "{}", timed.text());
    assert_pprof_or_empty(&timed.body);
    wait_active(&daemon, false);

    // The runtime toggle.
    let traffic = Traffic::start(daemon.data, 2);
    let started = daemon.admin("POST", "/profiling/start?frequency=250");
    assert_eq!(started.status, 200, "{}", started.text());
    assert_eq!(started.header("content-type"), Some("application/json"));
    let text = started.text();
    assert!(
        text.contains("\"active\":true")
            && text.contains("\"kind\":\"runtime\"")
            && text.contains("\"frequency_hz\":250"),
        "{text}"
    );
    assert_eq!(daemon.admin("POST", "/profiling/start").status, 409);
    // Let the traffic run under the profiler for a while (bounded by responses, not time).
    let mut client = Client::connect(daemon.data);
    for _ in 0..2000 {
        client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(client.read_response().body, b"Hello, World!");
    }
    let svg = daemon.admin("POST", "/profiling/stop?format=flamegraph");
    assert_eq!(svg.status, 200, "{}", svg.text());
    assert_svg(&svg.body);
    assert!(traffic.finish() > 0);
    let state = wait_active(&daemon, false);
    assert!(state.contains("\"state\":\"idle\""), "{state}");
    let none = daemon.admin("POST", "/profiling/stop");
    assert_eq!(none.status, 409);
    assert!(none.text().contains("no profile"), "{}", none.text());

    // Methods, the cap and bad parameters.
    for (method, target, status) in [
        ("GET", "/profiling/start", 405),
        ("GET", "/profiling/stop", 405),
        ("POST", "/debug/pprof/profile", 405),
        ("POST", "/profiling", 405),
        ("GET", "/debug/pprof/profile?seconds=6", 400),
        ("GET", "/debug/pprof/profile?seconds=0", 400),
        ("GET", "/debug/pprof/profile?seconds=1&format=png", 400),
        ("POST", "/profiling/start?frequency=0", 400),
    ] {
        let response = daemon.admin(method, target);
        assert_eq!(
            response.status,
            status,
            "{method} {target}: {}",
            response.text()
        );
    }
    let capped = daemon.admin("GET", "/debug/pprof/profile?seconds=6");
    assert!(capped.text().contains("at most 5"), "{}", capped.text());
    assert_eq!(
        daemon.admin("GET", "/profiling/start").header("allow"),
        Some("POST")
    );
    wait_active(&daemon, false);
}

/// A profile of a short idle time may hold no sample; it must still decode.
fn assert_pprof_or_empty(bytes: &[u8]) {
    let mut proto = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut proto)
        .expect("gunzip");
    pprof::protos::Profile::parse_from_bytes(&proto).expect("pprof protobuf");
}

#[test]
fn a_timed_profile_whose_client_left_frees_the_profiler_at_its_end() {
    let daemon = Daemon::start(&[]);
    let mut client = Client::connect(daemon.admin);
    client.send(b"GET /debug/pprof/profile?seconds=1 HTTP/1.1\r\nHost: localhost\r\n\r\n");
    wait_active(&daemon, true);
    drop(client);
    wait_active(&daemon, false);
    let again = daemon.admin("GET", "/debug/pprof/profile?seconds=1");
    assert_eq!(again.status, 200, "{}", again.text());
    assert_pprof_or_empty(&again.body);
}

#[test]
fn profile_flag_writes_the_whole_run_at_exit() {
    let pprof_path = temp_path("run.pb.gz");
    let svg_path = temp_path("run.svg");
    let mut pprof_daemon = Daemon::start(&["--profile".as_ref(), pprof_path.as_os_str()]);
    let mut svg_daemon = Daemon::start(&["--profile".as_ref(), svg_path.as_os_str()]);
    for daemon in [&pprof_daemon, &svg_daemon] {
        // The whole-run profile holds the profiler.
        let busy = daemon.admin("POST", "/profiling/start");
        assert_eq!(busy.status, 409, "{}", busy.text());
        let state = daemon.admin("GET", "/profiling").text();
        assert!(state.contains("\"kind\":\"whole_run\""), "{state}");
        // The profiler samples the process's CPU time and drops samples taken inside libc
        // (most of the system-call time): drive traffic until the daemon has used a second of
        // user CPU, so samples exist however fast or loaded the machine is.
        let pid = daemon.process.child.id();
        let deadline = Instant::now() + IO_LIMIT;
        let mut client = Client::connect(daemon.data);
        let mut i = 0u64;
        while cpu_ticks(pid).user < 100 {
            assert!(
                Instant::now() < deadline,
                "the daemon never used 1 s of user CPU"
            );
            for _ in 0..500 {
                let request = post("/echo", format!("request {i}").as_bytes());
                client.send(&request);
                let response = client.read_response();
                assert_eq!(response.body, request);
                if response.says_close() {
                    client = Client::connect(daemon.data);
                }
                i += 1;
            }
        }
    }
    assert_eq!(pprof_daemon.stop(), Some(0));
    assert_eq!(svg_daemon.stop(), Some(0));
    let read = |path: &Path| {
        let bytes = std::fs::read(path).expect("profile written");
        let _ = std::fs::remove_file(path);
        bytes
    };
    assert_pprof(&read(&pprof_path));
    assert_svg(&read(&svg_path));
}

#[test]
fn profile_flag_with_an_unwritable_path_fails_at_start() {
    let out = binary()
        .args(["--profile", "/nonexistent-dir/profile.pb.gz"])
        .stdin(Stdio::null())
        .output()
        .expect("run asycamore");
    assert_eq!(out.status.code(), Some(71));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot create the profile"),
        "stderr {stderr:?}"
    );
}
