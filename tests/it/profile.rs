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
        Daemon::start_with(&config(), extra_args)
    }

    fn start_with(config: &str, extra_args: &[&std::ffi::OsStr]) -> Daemon {
        let mut process = Process::start(binary(), write_config(config), extra_args);
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
        client.send(b"GET /debug/pprof/profile?seconds=5 HTTP/1.1\r\nHost: localhost\r\n\r\n");
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
    // /profiling/stop ends a timed profile too: both its caller and the timed profile's
    // waiting client get what was collected.
    let stopped = daemon.admin("POST", "/profiling/stop");
    assert_eq!(stopped.status, 200, "{}", stopped.text());
    assert_pprof_or_empty(&stopped.body);
    let timed = timed.join().expect("timed profile client");
    assert_eq!(timed.status, 200, "{}", timed.text());
    assert_eq!(timed.body, stopped.body, "the same profile");
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
fn a_timed_profile_whose_client_hangs_up_ends_at_once() {
    let mut daemon = Daemon::start(&[]);
    // Profiles of 5 s (the cap): the client goes long before either could end by itself.
    let mut client = Client::connect(daemon.admin);
    client.send(b"GET /debug/pprof/profile?seconds=5 HTTP/1.1\r\nHost: localhost\r\n\r\n");
    wait_active(&daemon, true);
    // A close (FIN), as a client that gives up does.
    drop(client);
    // The profile ends because its client went, not at its end (which logs its samples).
    let line = daemon.process.wait_log("profiling stopped (timed)");
    assert!(line.contains("abandoned by its client"), "{line}");
    let again = daemon.admin("GET", "/debug/pprof/profile?seconds=1");
    assert_eq!(again.status, 200, "{}", again.text());
    assert_pprof_or_empty(&again.body);
    let line = daemon.process.wait_log("profiling stopped (timed)");
    assert!(line.contains("sample(s) in"), "{line}");

    // A reset (SO_LINGER 0) ends it too.
    let mut client = Client::connect(daemon.admin);
    client.send(b"GET /debug/pprof/profile?seconds=5 HTTP/1.1\r\nHost: localhost\r\n\r\n");
    wait_active(&daemon, true);
    socket2::SockRef::from(&client.stream)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER");
    drop(client);
    let line = daemon.process.wait_log("profiling stopped (timed)");
    assert!(line.contains("abandoned by its client"), "{line}");
    let started = daemon.admin("POST", "/profiling/start");
    assert_eq!(started.status, 200, "{}", started.text());
    assert_eq!(daemon.admin("POST", "/profiling/stop").status, 200);
}

/// The daemon's CPU time (user + system) in seconds, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    cpu_ticks(pid).total() as f64 / crate::sys::clock_ticks_per_second()
}

/// Threads of process `pid` now.
fn thread_count(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("read /proc/<pid>/task")
        .count() as u64
}

/// A decoded gzip pprof profile.
fn decode(bytes: &[u8]) -> pprof::protos::Profile {
    let mut proto = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut proto)
        .expect("gunzip");
    pprof::protos::Profile::parse_from_bytes(&proto).expect("pprof protobuf")
}

/// The profile accounts for the CPU time the process used: samples times the period is
/// within 10 % (the goal) of the CPU /proc shows over the same window, plus what sampling
/// cannot resolve. Keep-alive and pipelined load, one and two workers.
#[test]
fn samples_account_for_the_cpu_time_proc_shows() {
    const HZ: u64 = 1000;
    for workers in [1, 2] {
        let config = config_with(
            &format!("workers = {workers}"),
            "[admin]\nlisten = \"127.0.0.1:0\"\nprofile_max_seconds = 120\n",
        );
        let daemon = Daemon::start_with(&config, &[]);
        let pid = daemon.process.child.id();
        let started = daemon.admin("POST", &format!("/profiling/start?frequency={HZ}"));
        assert_eq!(started.status, 200, "{}", started.text());
        // The window: from here (timers armed) to the load's end. The load runs only inside
        // it, so what the profile sees outside it is an idle process's.
        let before = cpu_seconds(pid);
        let traffic = Traffic::start(daemon.data, 2);
        // Pipelined batches from this thread until the daemon used 1 s of CPU in the window
        // (bounded by time: a starved daemon gets a smaller window, and the margin below
        // scales with what it got).
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut client = Client::connect(daemon.data);
        let batch = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n".repeat(16);
        while cpu_seconds(pid) - before < 1.0 && Instant::now() < deadline {
            for _ in 0..20 {
                client.send(&batch);
                for _ in 0..16 {
                    let response = client.read_response();
                    assert_eq!(response.body, b"Hello, World!");
                    if response.says_close() {
                        // max_requests_per_connection: the rest of the batch is not answered.
                        client = Client::connect(daemon.data);
                        break;
                    }
                }
            }
        }
        drop(client);
        assert!(traffic.finish() > 0);
        let used = cpu_seconds(pid) - before;
        let threads = thread_count(pid);
        let stopped = daemon.admin("POST", "/profiling/stop");
        assert_eq!(stopped.status, 200, "{}", stopped.text());
        let profile = decode(&stopped.body);
        let period = profile.period as f64 / 1e9;
        assert_eq!(period, 1.0 / HZ as f64);
        let samples: i64 = profile.sample.iter().map(|sample| sample.value[0]).sum();
        let cpu: i64 = profile.sample.iter().map(|sample| sample.value[1]).sum();
        assert_eq!(cpu, samples * profile.period, "cpu = samples * period");
        let profiled = samples as f64 * period;
        assert!(used > 0.1, "the daemon got only {used:.3} s of CPU in 30 s");
        // The margin: the goal's 10 %; each thread's last period, begun but not completed
        // when its timer was deleted; and /proc's two readings, each rounded down to a tick.
        let tick = 1.0 / crate::sys::clock_ticks_per_second();
        let margin = 0.10 * used + threads as f64 * period + 2.0 * tick;
        eprintln!(
            "{workers} worker(s): {samples} samples * {period} s = {profiled:.3} s; /proc: \
             {used:.3} s; margin {margin:.3} s"
        );
        assert!(
            (profiled - used).abs() <= margin,
            "{workers} worker(s): the profile holds {profiled:.3} s of CPU ({samples} samples), \
             /proc shows {used:.3} s (margin {margin:.3} s)"
        );
    }
}

/// Anonymous resident memory of process `pid` (heap, mappings; not the binary's pages,
/// which the kernel may drop and read again), and all of it, in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/<pid>/status"))
    };
    (field("RssAnon:"), field("VmRSS:"))
}

/// A profile gives its memory back: the anonymous resident set after a profile (symbolised,
/// encoded) is back within a bound of before, and three profiles leave no more than one.
#[test]
fn a_profile_gives_its_memory_back() {
    // The sample table: 4096 slots of (4 + 64) words (sampler.rs), the most a profile
    // holds while it runs; it is unmapped at the end.
    const TABLE_KIB: u64 = 4096 * (4 + 64) * 8 / 1024;
    // What glibc's malloc keeps on top of an arena after a trim (M_TOP_PAD's default).
    const TOP_PAD_KIB: u64 = 128;
    let daemon = Daemon::start(&[]);
    let pid = daemon.process.child.id();
    // The same load in every round, ended (its connections closed, buffers back in the
    // pools) before each reading: two rounds without a profile give the baseline and how
    // much the resident set moves by itself from one round to the next.
    let round = |profile: Option<&str>| {
        let traffic = Traffic::start(daemon.data, 2);
        let size = match profile {
            Some(format) => {
                let profile = daemon.admin(
                    "GET",
                    &format!("/debug/pprof/profile?seconds=1&frequency=1000&format={format}"),
                );
                assert_eq!(profile.status, 200, "{}", profile.text());
                wait_active(&daemon, false);
                profile.body.len() as u64 / 1024 + 1
            }
            None => {
                let mut client = Client::connect(daemon.data);
                for _ in 0..1000 {
                    client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
                    assert_eq!(client.read_response().body, b"Hello, World!");
                }
                0
            }
        };
        assert!(traffic.finish() > 0);
        (rss_kib(pid), size)
    };
    let ((warm, _), _) = round(None);
    let ((before, before_all), _) = round(None);
    let noise = warm.abs_diff(before);
    let mut after = Vec::new();
    let mut largest = 0;
    for format in ["pprof", "flamegraph", "pprof"] {
        let (rss, size) = round(Some(format));
        largest = largest.max(size);
        after.push(rss);
    }
    eprintln!(
        "RSS (anonymous, all) before: ({before}, {before_all}) KiB (moving by {noise} KiB \
         between rounds); after each profile: {after:?}"
    );
    // What may stay after a profile: no more than its table's worth (memory the profile
    // touched for the first time, such as lazily built statics and the heap's fragments),
    // and the admin connection's buffers for the answer. The symboliser's caches, ~190 MB
    // in a release build before they were dropped, are not there. Plus what the rounds
    // moved by themselves.
    let bound = TABLE_KIB + largest + TOP_PAD_KIB + noise;
    let (first, _) = after[0];
    assert!(
        first <= before + bound,
        "anonymous RSS grew from {before} KiB to {first} KiB over a profile (bound +{bound} KiB)"
    );
    // And the next profiles add nothing that stays.
    let (last, _) = after[2];
    let bound = largest + TOP_PAD_KIB + noise;
    assert!(
        last <= first + bound,
        "anonymous RSS grew from {first} KiB to {last} KiB over two more profiles \
         (bound +{bound} KiB)"
    );
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
        // The profiler samples the threads' CPU time: drive traffic until the daemon has used
        // a second of user CPU, so samples exist however fast or loaded the machine is.
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
