//! Reload on SIGHUP with the real binary and real signals: under continuous traffic
//! (keep-alive, pipelined, chunked POSTs) nothing fails and, once a reload's outcome is
//! reported, the next request on every connection gets the new body; an invalid config keeps the old one serving and `asycamore reload` exits 78 with
//! the errors; listeners are added and removed without dropping connections.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::{Client, IO_LIMIT, Process, binary, get, temp_path, wait_for_line};

/// How long any one wait for the daemon (a reload outcome, an exit) may take.
const WAIT_LIMIT: Duration = Duration::from_secs(20);

/// The real binary with a pidfile, its config file rewritable, its log read line by line.
pub struct Daemon {
    process: Process,
    /// The first bound address.
    pub addr: SocketAddr,
    pidfile: PathBuf,
    server_keys: String,
}

impl Daemon {
    /// Starts the binary on a config of `[server]` `server_keys` (a pidfile is added) and the
    /// rest `body`, and waits for its first "listening on" line.
    pub fn start(server_keys: &str, body: &str) -> Daemon {
        let config = temp_path("reload.toml");
        let pidfile = temp_path("asycamore.pid");
        let server_keys = format!(
            "{server_keys}\npidfile = {:?}\n",
            pidfile.display().to_string()
        );
        std::fs::write(&config, compose(&server_keys, body)).expect("write config");
        let mut daemon = Daemon {
            process: Process::start(binary(), config, &[]),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            pidfile,
            server_keys,
        };
        let line = daemon.wait_log("listening on http://");
        daemon.addr = line
            .split("listening on http://")
            .nth(1)
            .and_then(|rest| rest.trim().parse().ok())
            .expect("listen address");
        daemon
    }

    /// The admin port's address, from its start-up line (logged after "listening on").
    pub fn admin_addr(&mut self) -> SocketAddr {
        const ADMIN: &str = "admin port on http://";
        let line = self.wait_log(ADMIN);
        line.split(ADMIN)
            .nth(1)
            .and_then(|rest| rest.trim().parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
    }

    /// The config file.
    pub fn config(&self) -> &Path {
        &self.process.config
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.process.child.id()).expect("pid"))
    }

    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).expect("kill");
    }

    /// The next log line containing `needle` (failing after `WAIT_LIMIT`).
    pub fn wait_log(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT_LIMIT;
        let process = &mut self.process;
        wait_for_line(&process.log, needle, deadline, &mut process.child)
    }

    /// Replaces the config file's body (the `[server]` keys stay unless given).
    pub fn rewrite(&self, server_keys: Option<&str>, body: &str) {
        let server_keys = match server_keys {
            Some(keys) => format!(
                "{keys}\npidfile = {:?}\n",
                self.pidfile.display().to_string()
            ),
            None => self.server_keys.clone(),
        };
        std::fs::write(self.config(), compose(&server_keys, body)).expect("write config");
    }

    /// The status file's text.
    fn status(&self) -> String {
        let mut path = self.pidfile.clone().into_os_string();
        path.push(".reload");
        std::fs::read_to_string(path).unwrap_or_default()
    }

    fn seq(&self) -> Option<u64> {
        let status = self.status();
        status.split_once('\n')?.0.split(' ').next()?.parse().ok()
    }

    /// Sends SIGHUP and waits for the reload's outcome; its status line.
    pub fn hup(&mut self) -> String {
        let deadline = Instant::now() + WAIT_LIMIT;
        let before = loop {
            if let Some(seq) = self.seq() {
                break seq;
            }
            assert!(Instant::now() < deadline, "no reload status file");
            std::thread::sleep(Duration::from_millis(2));
        };
        self.signal(Signal::SIGHUP);
        loop {
            let status = self.status();
            if let Some((first, _)) = status.split_once('\n') {
                if first.split(' ').next().and_then(|s| s.parse().ok()) != Some(before) {
                    return first.to_owned();
                }
            }
            assert!(
                Instant::now() < deadline,
                "no reload outcome; status {status:?}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Runs `asycamore reload --config <this config>`.
    pub fn reload_verb(&self) -> Output {
        binary()
            .arg("reload")
            .arg("--config")
            .arg(self.config())
            .stdin(Stdio::null())
            .output()
            .expect("run asycamore reload")
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.process.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn compose(server_keys: &str, body: &str) -> String {
    format!("[server]\n{server_keys}\n{body}")
}

const SERVER: &str = "listen = [\"127.0.0.1:0\"]\nworkers = 2\nmax_requests_per_connection = 0";

/// Routes answering `body` on `/`, and echo on `/echo`.
fn routes(body: &str) -> String {
    format!(
        "[[route]]\nname = \"hello\"\npath = \"/\"\nhandler = \"respond\"\nbody = \"{body}\"\n\n\
         [[route]]\nname = \"echo\"\npath = \"/echo\"\nhandler = \"echo\"\n"
    )
}

const BODIES: [&str; 2] = ["alpha", "bravo"];

/// Which config is serving, as the traffic threads see it.
struct Epochs {
    /// Epochs whose config is serving or may be (a reload was signalled).
    signalled: AtomicU64,
    /// Epochs whose reload reported success.
    completed: AtomicU64,
    /// The body of each epoch.
    bodies: Mutex<Vec<&'static str>>,
    /// Per connection: 1 + the last epoch in which it finished a round of GETs sent after
    /// that epoch's outcome was reported (and before the next reload was signalled).
    seen: Vec<AtomicU64>,
    stop: AtomicBool,
}

impl Epochs {
    fn body(&self, epoch: u64) -> &'static str {
        self.bodies.lock().expect("lock")[usize::try_from(epoch).expect("epoch")]
    }

    /// A reload to `body` is about to be signalled.
    fn signal(&self) {
        self.signalled.fetch_add(1, Ordering::SeqCst);
    }

    /// It succeeded: its outcome has been reported (status file or `asycamore reload`).
    fn complete(&self, body: &'static str) {
        self.bodies.lock().expect("lock").push(body);
        self.completed.fetch_add(1, Ordering::SeqCst);
    }
}

/// 32 connections of traffic: each round is a single GET, 8 pipelined GETs, or a chunked
/// POST to echo. Every response must be complete and 200 and every body one of `BODIES`.
/// A round sent while a reload is in flight (signalled, outcome not yet reported) may get
/// either body; a round sent after the outcome was reported must get the new body on every
/// response, its first included: the outcome means every worker serves the new generation.
struct Traffic {
    epochs: Arc<Epochs>,
    threads: Vec<JoinHandle<u64>>,
}

const CONNECTIONS: usize = 32;

impl Traffic {
    fn start(addr: SocketAddr, first: &'static str) -> Traffic {
        let epochs = Arc::new(Epochs {
            signalled: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            bodies: Mutex::new(vec![first]),
            seen: (0..CONNECTIONS).map(|_| AtomicU64::new(0)).collect(),
            stop: AtomicBool::new(false),
        });
        let deadline = Instant::now() + Duration::from_secs(150);
        let threads = (0..CONNECTIONS)
            .map(|index| {
                let epochs = Arc::clone(&epochs);
                std::thread::spawn(move || drive(addr, index, &epochs, deadline))
            })
            .collect();
        Traffic { epochs, threads }
    }

    /// Fails the test if a traffic thread has died.
    fn check(&self) {
        if let Some(index) = self.threads.iter().position(JoinHandle::is_finished) {
            if !self.epochs.stop.load(Ordering::SeqCst) {
                self.epochs.stop.store(true, Ordering::SeqCst);
                panic!("traffic connection {index} stopped early (see its panic above)");
            }
        }
    }

    /// Waits until every connection has finished a round of GETs sent after the latest
    /// outcome was reported (so each was checked against the new body).
    fn wait_switched(&self) {
        let want = self.epochs.completed.load(Ordering::SeqCst) + 1;
        let deadline = Instant::now() + WAIT_LIMIT;
        while self
            .epochs
            .seen
            .iter()
            .any(|seen| seen.load(Ordering::SeqCst) < want)
        {
            self.check();
            assert!(
                Instant::now() < deadline,
                "some connection never finished a round in epoch {}",
                want - 1
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Stops the traffic; the number of requests answered.
    fn finish(self) -> u64 {
        self.epochs.stop.store(true, Ordering::SeqCst);
        let mut total = 0;
        for (index, thread) in self.threads.into_iter().enumerate() {
            match thread.join() {
                Ok(answered) => total += answered,
                Err(_) => panic!("traffic connection {index} failed (see its panic above)"),
            }
        }
        total
    }
}

const CHUNKED_HEAD: &[u8] =
    b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n";

/// One connection's traffic until told to stop; the requests answered.
fn drive(addr: SocketAddr, index: usize, epochs: &Epochs, deadline: Instant) -> u64 {
    let mut client = Client::connect(addr);
    let mut answered = 0;
    let mut round = index;
    while !epochs.stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        // Read in this order: if both are equal, no reload was in flight when the round
        // was sent, and the outcome of epoch `before` had been reported.
        let in_flight = epochs.signalled.load(Ordering::SeqCst);
        let before = epochs.completed.load(Ordering::SeqCst);
        let mut bodies = Vec::new();
        match round % 3 {
            0 => {
                client.send(&get("/"));
                bodies.push(client.read_response());
            }
            1 => {
                client.send(&get("/").repeat(8));
                for _ in 0..8 {
                    bodies.push(client.read_response());
                }
            }
            _ => {
                client.send(&[CHUNKED_HEAD, b"5\r\nhello\r\n"].concat());
                client.send(b"6\r\n world\r\n0\r\n\r\n");
                let response = client.read_response();
                assert_eq!(response.status, 200, "connection {index}: echo");
                assert!(
                    response.body.ends_with(b"hello world"),
                    "connection {index}: echo body {:?}",
                    response.text()
                );
                answered += 1;
            }
        }
        round += 1;
        let after = epochs.signalled.load(Ordering::SeqCst);
        // No reload in flight from before the round was sent until it was answered.
        let settled = in_flight == before && after == before;
        let checked = settled && !bodies.is_empty();
        for (position, response) in bodies.into_iter().enumerate() {
            answered += 1;
            assert_eq!(response.status, 200, "connection {index}");
            let text = response.text();
            assert!(
                BODIES.contains(&text.as_str()),
                "connection {index}: body {text:?}"
            );
            if settled {
                let want = epochs.body(before);
                assert_eq!(
                    text, want,
                    "connection {index}: request {position} of a round sent after reload \
                     {before}'s outcome was reported got the old body"
                );
            }
        }
        if checked {
            epochs.seen[index].store(before + 1, Ordering::SeqCst);
        }
    }
    answered
}

#[test]
fn fifty_reloads_under_traffic_switch_the_body_and_fail_nothing() {
    let mut daemon = Daemon::start(SERVER, &routes(BODIES[0]));
    let traffic = Traffic::start(daemon.addr, BODIES[0]);
    traffic.wait_switched();
    for reload in 1..=50 {
        let body = BODIES[reload % 2];
        daemon.rewrite(None, &routes(body));
        traffic.epochs.signal();
        let outcome = daemon.hup();
        assert!(
            outcome.ends_with(&format!(" ok {}", reload + 1)),
            "reload {reload}: {outcome:?}"
        );
        traffic.epochs.complete(body);
        traffic.wait_switched();
        let generation = format!("generation {}", reload + 1);
        daemon.wait_log(&generation);
    }
    let answered = traffic.finish();
    assert!(answered > 50 * 32, "only {answered} requests answered");
}

#[test]
fn an_invalid_config_keeps_the_old_one_and_the_reload_verb_says_why() {
    let mut daemon = Daemon::start(SERVER, &routes(BODIES[0]));
    let traffic = Traffic::start(daemon.addr, BODIES[0]);
    traffic.wait_switched();
    let invalid = routes(BODIES[1]).replace(
        "handler = \"respond\"",
        "handler = \"respond\"\nstatus = 99",
    );
    let file = daemon.config().display().to_string();
    for round in 1..=6 {
        daemon.rewrite(None, &invalid);
        let out = daemon.reload_verb();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(78),
            "round {round}: stderr {stderr:?}"
        );
        let text = std::fs::read_to_string(daemon.config()).expect("read config");
        let line = 1 + text
            .lines()
            .position(|l| l == "status = 99")
            .expect("status line");
        let want = format!("{file}:{line}:10: route[0].status: 99 is out of range 200..=599");
        assert!(
            stderr.lines().any(|line| line == want),
            "round {round}: stderr {stderr:?}"
        );
        daemon.wait_log("still serving generation");
        // Still the old body: the traffic threads check every response against it; wait
        // for a round on every connection sent after the rejection.
        let seen_before: Vec<u64> = traffic
            .epochs
            .seen
            .iter()
            .map(|s| s.load(Ordering::SeqCst))
            .collect();
        for (index, seen) in seen_before.iter().enumerate() {
            traffic.epochs.seen[index].store(seen.saturating_sub(1), Ordering::SeqCst);
        }
        traffic.wait_switched();

        let body = BODIES[round % 2];
        daemon.rewrite(None, &routes(body));
        traffic.epochs.signal();
        let out = daemon.reload_verb();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "round {round}: stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("generation {}", round + 1)),
            "{stdout:?}"
        );
        traffic.epochs.complete(body);
        traffic.wait_switched();
    }
    traffic.finish();
}

#[test]
fn the_reload_verb_without_a_daemon_or_a_way_to_it_fails_clearly() {
    let config = temp_path("nopid.toml");
    std::fs::write(
        &config,
        format!("{}\n[admin]\nenabled = false\n", routes("x")),
    )
    .expect("write");
    let out = verb(&config);
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the admin port is disabled and server.pidfile is not set"),
        "{stderr:?}"
    );
    let pidfile = temp_path("none.pid");
    std::fs::write(
        &config,
        format!("[server]\npidfile = {:?}\n", pidfile.display().to_string()),
    )
    .expect("write");
    let out = verb(&config);
    assert_eq!(out.status.code(), Some(69));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is asycamore running?"), "{stderr:?}");
    let socket = temp_path("nobody.sock");
    std::fs::write(
        &config,
        format!(
            "[admin]\nunix_socket = {:?}\n",
            socket.display().to_string()
        ),
    )
    .expect("write");
    let out = verb(&config);
    let _ = std::fs::remove_file(&config);
    assert_eq!(out.status.code(), Some(69));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("unix:{}", socket.display())),
        "{stderr:?}"
    );
}

/// Runs `asycamore reload --config FILE`.
fn verb(file: &Path) -> Output {
    binary()
        .arg("reload")
        .arg("--config")
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .expect("run asycamore reload")
}

/// An `[admin]` section with a Unix socket (in a fresh directory) and a TCP port: the
/// section and the socket's path.
fn admin_with_socket() -> (String, PathBuf) {
    let dir = temp_path("admin-dir");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let socket = dir.join("admin.sock");
    let section = format!(
        "\n[admin]\nlisten = \"127.0.0.1:0\"\nunix_socket = {:?}\n",
        socket.display().to_string()
    );
    (section, socket)
}

/// A file with a TOML syntax error goes to the daemon like any other: the daemon rejects it,
/// logs the error and counts the failure; the command prints the located error and exits 78.
#[test]
fn a_syntax_error_is_judged_logged_and_counted_by_the_daemon() {
    let (admin, _socket) = admin_with_socket();
    let mut daemon = Daemon::start(SERVER, &format!("{}{admin}", routes(BODIES[0])));
    let admin_addr = daemon.admin_addr();
    let failures = |admin_addr| {
        let scrape = crate::support::scrape(admin_addr);
        crate::support::metric_value(
            &scrape,
            "asycamore_config_reloads_total",
            &[("result", "failure")],
        )
    };
    assert_eq!(failures(admin_addr), 0.0);
    // A table header left open, before [admin]: the command still finds the socket.
    daemon.rewrite(
        None,
        &format!("{}\n[[route]\nname = \"x\"\n{admin}", routes(BODIES[1])),
    );
    let out = daemon.reload_verb();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    let file = daemon.config().display().to_string();
    assert!(stderr.contains(&format!("{file}:")), "{stderr}");
    assert!(stderr.contains("rejected"), "{stderr}");
    let logged = daemon.wait_log("reload #1: ");
    assert!(logged.contains(&file), "{logged}");
    daemon.wait_log("reload #1 failed");
    assert_eq!(failures(admin_addr), 1.0);
    let mut client = Client::connect(daemon.addr);
    client.send(&get("/"));
    assert_eq!(client.read_response().text(), BODIES[0]);
}

/// `asycamore reload --config OTHER` where OTHER is not the daemon's file: refused, naming
/// both, whether the daemon is reached through its admin socket or its pidfile; nothing is
/// reloaded.
#[test]
fn reloading_another_file_is_refused_naming_both() {
    let (admin, socket) = admin_with_socket();
    let mut daemon = Daemon::start(SERVER, &format!("{}{admin}", routes(BODIES[0])));
    let own = daemon.config().display().to_string();
    let seq_before = daemon.seq();
    let other = temp_path("other.toml");
    std::fs::write(
        &other,
        format!(
            "{}\n[admin]\nunix_socket = {:?}\n",
            routes(BODIES[1]),
            socket.display().to_string()
        ),
    )
    .expect("write");
    let out = verb(&other);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains(&other.display().to_string()) && stderr.contains(&own),
        "{stderr}"
    );
    daemon.wait_log("POST /reload refused");

    std::fs::write(
        &other,
        format!(
            "[server]\npidfile = {:?}\n[admin]\nenabled = false\n",
            daemon.pidfile.display().to_string()
        ),
    )
    .expect("write");
    let out = verb(&other);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains(&other.display().to_string()) && stderr.contains(&own),
        "{stderr}"
    );
    assert_eq!(daemon.seq(), seq_before, "nothing was reloaded");
    let _ = std::fs::remove_file(&other);
    let mut client = Client::connect(daemon.addr);
    client.send(&get("/"));
    assert_eq!(client.read_response().text(), BODIES[0]);
}

/// No pidfile (as in the README's quick start): `asycamore reload --config FILE` reaches the
/// daemon through the admin port the file names, and prints the keys that need a restart.
#[test]
fn a_daemon_without_a_pidfile_is_reloaded_through_its_admin_port() {
    let (admin, _socket) = admin_with_socket();
    let config = temp_path("nopidfile.toml");
    std::fs::write(
        &config,
        format!("[server]\n{SERVER}\n{}{admin}", routes(BODIES[0])),
    )
    .expect("write");
    let mut process = Process::start(binary(), config.clone(), &[]);
    let line = process.wait_log("listening on http://");
    let addr: SocketAddr = line
        .split("listening on http://")
        .nth(1)
        .and_then(|rest| rest.trim().parse().ok())
        .expect("address");
    let changed = SERVER.replace("workers = 2", "workers = 1");
    std::fs::write(
        &config,
        format!("[server]\n{changed}\n{}{admin}", routes(BODIES[1])),
    )
    .expect("write");
    let out = verb(&config);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("reloaded: generation 2"), "{stdout}");
    assert!(
        stderr.contains("warning: server.workers changed, which needs a restart"),
        "{stderr}"
    );
    let mut client = Client::connect(addr);
    client.send(&get("/"));
    assert_eq!(client.read_response().text(), BODIES[1]);
}

/// Through the pidfile too, the command prints the keys that need a restart.
#[test]
fn the_reload_verb_prints_the_keys_that_need_a_restart() {
    let daemon = Daemon::start(SERVER, &routes(BODIES[0]));
    daemon.rewrite(
        Some(&SERVER.replace("workers = 2", "workers = 1")),
        &routes(BODIES[1]),
    );
    let out = daemon.reload_verb();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: server.workers changed, which needs a restart"),
        "{stderr}"
    );
}

/// A port free right now on 127.0.0.1.
fn free_port() -> u16 {
    let socket = TcpListener::bind("127.0.0.1:0").expect("bind");
    socket.local_addr().expect("addr").port()
}

#[test]
fn listeners_added_answer_and_removed_ones_finish_their_connections() {
    let mut daemon = Daemon::start(SERVER, &routes("one"));
    let first = daemon.addr;
    let port = free_port();
    let second = SocketAddr::from(([127, 0, 0, 1], port));
    let both = format!(
        "listen = [\"127.0.0.1:0\", \"{second}\"]\nworkers = 2\nmax_requests_per_connection = 0"
    );
    daemon.rewrite(Some(&both), &routes("two"));
    assert!(daemon.hup().ends_with(" ok 2"));
    daemon.wait_log(&format!("listening on http://{second}"));
    let mut on_second = Client::connect(second);
    on_second.send(&get("/"));
    assert_eq!(on_second.read_response().text(), "two");
    let mut on_first = Client::connect(first);
    on_first.send(&get("/"));
    assert_eq!(
        on_first.read_response().text(),
        "two",
        "the kept listener is the same"
    );

    // A request in flight on the listener about to go.
    on_first.send(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\n12345");
    let only_second =
        format!("listen = [\"{second}\"]\nworkers = 2\nmax_requests_per_connection = 0");
    daemon.rewrite(Some(&only_second), &routes("three"));
    assert!(daemon.hup().ends_with(" ok 3"));
    daemon.wait_log(&format!("stopped listening on http://{first}"));
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        match TcpStream::connect_timeout(&first, IO_LIMIT) {
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => break,
            Err(err) => panic!("connect to the removed listener: {err}"),
            // Queued before the listener closed: served or closed, either is fine.
            Ok(_) => assert!(Instant::now() < deadline, "{first} still accepts"),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    on_first.send(b"67890");
    let response = on_first.read_response();
    assert_eq!(response.status, 200);
    assert!(
        response.body.ends_with(b"1234567890"),
        "{:?}",
        response.text()
    );
    assert!(
        on_first.still_serves(),
        "the connection stays open after its listener went"
    );
    on_second.send(&get("/"));
    assert_eq!(on_second.read_response().text(), "three");
}

/// A head arriving while a reload raises `max_head_bytes` is finished under the new limit
/// and answered at once, never left to wait in a buffer sized for the old one until the head
/// timeout: 12 KiB of a 20 KiB head under a 16 KiB limit (read by the server: the admin port
/// shows the connection reading its head), the limit raised to 64 KiB, then the rest. The
/// head timeout is an hour, so only an answer that does not wait for it passes.
#[test]
fn a_head_in_transfer_when_the_head_limit_rises_is_answered_at_once() {
    // The `[server]` keys come first and the daemon's pidfile is added to them: the other
    // tables go with the routes.
    let body = |limit: usize| {
        format!(
            "[limits]\nmax_head_bytes = {limit}\n\n[timeouts]\nhead = \"1h\"\n\n\
             [admin]\nlisten = \"127.0.0.1:0\"\n\n{}",
            routes(BODIES[0])
        )
    };
    let server = "listen = [\"127.0.0.1:0\"]\nworkers = 1";
    let mut daemon = Daemon::start(server, &body(16 * 1024));
    let admin = daemon.admin_addr();
    let mut client = Client::connect(daemon.addr);
    let mut head = b"GET / HTTP/1.1\r\nHost: test\r\nX-Big: ".to_vec();
    head.resize(20 * 1024, b'a');
    head.extend_from_slice(b"\r\n\r\n");
    client.send(&head[..12 * 1024]);
    let deadline = Instant::now() + WAIT_LIMIT;
    while !connections(admin).contains("reading head") {
        assert!(
            Instant::now() < deadline,
            "the server never read the partial head"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    daemon.rewrite(None, &body(64 * 1024));
    let outcome = daemon.hup();
    assert!(outcome.ends_with(" ok 2"), "{outcome:?}");
    client.send(&head[12 * 1024..]);
    let response = client.read_response();
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.text(), BODIES[0]);
    assert!(client.still_serves());
}

/// `/debug/connections` of the admin port at `admin`, as text.
fn connections(admin: SocketAddr) -> String {
    let mut client = Client::connect(admin);
    client.send(b"GET /debug/connections HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    client.read_response().text()
}
