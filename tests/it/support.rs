//! Test support: the real `asycamore` binary on an ephemeral port on 127.0.0.1, and a raw
//! HTTP/1.1 client that reads responses with its own small parser (independent of the
//! server's codec, so a codec bug cannot hide itself).
//!
//! Every blocking read has a deadline (`IO_LIMIT`): a server that fails to answer makes the
//! test fail, never hang. No test sleeps to wait for something; it waits for the event itself.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The longest any single read may wait before the test fails.
pub const IO_LIMIT: Duration = Duration::from_secs(20);

/// The base config of most tests: one worker, the usual routes, on an ephemeral port.
pub const BASE: &str = r#"
[server]
listen = ["127.0.0.1:0"]
workers = 1

[[route]]
name = "hello"
path = "/"
handler = "respond"
body = "Hello, World!"
headers = { "Content-Type" = "text/plain" }

[[route]]
name = "echo"
path = "/echo"
handler = "echo"
"#;

static NEXT_FILE: AtomicUsize = AtomicUsize::new(0);

/// A unique path in the temp directory for this test process.
pub fn temp_path(name: &str) -> PathBuf {
    let n = NEXT_FILE.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("asycamore-it-{}-{n}-{name}", std::process::id()))
}

/// Writes `text` to a fresh temp file and returns its path.
pub fn write_config(text: &str) -> PathBuf {
    let path = temp_path("config.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// The binary under test.
pub fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_asycamore"))
}

/// Spawns `command` with stdin and stdout closed and stderr piped: the child and its stderr,
/// line by line, received on a thread until the stream closes.
pub fn spawn_logged(mut command: Command) -> (Child, mpsc::Receiver<String>) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn asycamore");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// The next line from `log` containing `needle`, skipping the others; fails the test at
/// `deadline` (or when the stream closes), naming `child`'s exit status.
pub fn wait_for_line(
    log: &mpsc::Receiver<String>,
    needle: &str,
    deadline: Instant,
    child: &mut Child,
) -> String {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match log.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(_) => panic!("no log line with {needle:?}; status {:?}", child.try_wait()),
        }
    }
}

/// The binary running on a config file, its stderr read line by line; killed, and the config
/// file removed, when dropped.
pub struct Process {
    pub child: Child,
    pub log: mpsc::Receiver<String>,
    pub config: PathBuf,
}

impl Process {
    /// Runs `command` with `--config <config>` and then `args`.
    pub fn start(mut command: Command, config: PathBuf, args: &[&OsStr]) -> Process {
        command.arg("--config").arg(&config).args(args);
        let (child, log) = spawn_logged(command);
        Process { child, log, config }
    }

    /// The next log line containing `needle` (failing after `IO_LIMIT`).
    pub fn wait_log(&mut self, needle: &str) -> String {
        wait_for_line(
            &self.log,
            needle,
            Instant::now() + IO_LIMIT,
            &mut self.child,
        )
    }

    /// The data and admin addresses of a daemon started with one TCP listener and an admin
    /// port, read from its start-up lines (logged in that order).
    pub fn served_addresses(&mut self) -> (SocketAddr, SocketAddr) {
        let address = |line: String, marker: &str| -> SocketAddr {
            line.split(marker)
                .nth(1)
                .and_then(|rest| rest.trim().parse().ok())
                .unwrap_or_else(|| panic!("no address in {line:?}"))
        };
        const DATA: &str = "listening on http://";
        const ADMIN: &str = "admin port on http://";
        let data = address(self.wait_log(DATA), DATA);
        let admin = address(self.wait_log(ADMIN), ADMIN);
        (data, admin)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

/// A running server process, killed when dropped.
pub struct TestServer {
    process: Process,
    pub addr: SocketAddr,
}

impl TestServer {
    /// Starts the binary with `config` and waits for its "listening on" line.
    pub fn start(config: &str) -> TestServer {
        TestServer::start_with(config, binary())
    }

    /// Starts the binary as user and group `id` (for permission tests run as root).
    pub fn start_as(config: &str, id: u32) -> TestServer {
        use std::os::unix::process::CommandExt;
        let mut command = binary();
        command.uid(id).gid(id);
        TestServer::start_with(config, command)
    }

    /// Starts `command` (the binary, prepared by the caller) with `config`.
    pub fn start_with(config: &str, command: Command) -> TestServer {
        let mut process = Process::start(command, write_config(config), &[]);
        let line = process.wait_log("listening on http://");
        let rest = line
            .split("listening on http://")
            .nth(1)
            .expect("listen line");
        let addr = rest.trim().parse().expect("listen address");
        TestServer { process, addr }
    }

    /// Starts a server on [`BASE`] with `extra` TOML appended (sections not in BASE).
    pub fn with(extra: &str) -> TestServer {
        TestServer::start(&format!("{BASE}\n{extra}"))
    }

    /// A new client connection.
    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// The next log line containing `needle` (failing after `IO_LIMIT`).
    pub fn wait_log(&mut self, needle: &str) -> String {
        self.process.wait_log(needle)
    }

    /// Log lines received so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.process.log.try_iter().collect()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.process.child.try_wait().expect("try_wait").is_none()
    }
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The sizes of the chunks, for chunked responses.
    pub chunks: Vec<usize>,
    pub trailers: Vec<(String, String)>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the response says the connection closes.
    pub fn says_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A raw client connection with a buffered reader.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(IO_LIMIT)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes all of `bytes`.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Writes `bytes` one byte per write.
    pub fn send_bytewise(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.stream
                .write_all(std::slice::from_ref(byte))
                .expect("send byte");
        }
    }

    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                n
            }
            Err(err) if err.kind() == ErrorKind::ConnectionReset => 0,
            Err(err) => panic!("read failed (timeout means the server did not answer): {err}"),
        }
    }

    fn take_line(&mut self) -> String {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..pos]).into_owned();
                self.buf.drain(..pos + 2);
                return line;
            }
            if self.fill() == 0 {
                panic!(
                    "connection closed mid-line; have {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        }
    }

    fn take_exact(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            if self.fill() == 0 {
                panic!(
                    "connection closed mid-body ({} of {n} bytes)",
                    self.buf.len()
                );
            }
        }
        self.buf.drain(..n).collect()
    }

    /// Reads one response head (status line and fields).
    pub fn read_head(&mut self) -> (u16, Vec<(String, String)>) {
        let status_line = self.take_line();
        let mut parts = status_line.splitn(3, ' ');
        assert_eq!(
            parts.next(),
            Some("HTTP/1.1"),
            "status line {status_line:?}"
        );
        let status = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("status line {status_line:?}"));
        let headers = self.read_fields();
        (status, headers)
    }

    fn read_fields(&mut self) -> Vec<(String, String)> {
        let mut fields = Vec::new();
        loop {
            let line = self.take_line();
            if line.is_empty() {
                return fields;
            }
            let (name, value) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("field {line:?}"));
            fields.push((name.to_string(), value.trim().to_string()));
        }
    }

    /// Reads one complete response to a request with `method` (HEAD responses have no body).
    /// Interim (1xx) responses before it are skipped.
    pub fn read_response_to(&mut self, method: &str) -> Response {
        loop {
            let response = self.read_message(method);
            if !(100..200).contains(&response.status) {
                return response;
            }
        }
    }

    /// Reads the next response head and its body, whatever it is: an interim (1xx)
    /// response is returned too, with an empty body.
    pub fn read_message(&mut self, method: &str) -> Response {
        let (status, headers) = self.read_head();
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
            chunks: Vec::new(),
            trailers: Vec::new(),
        };
        if (100..200).contains(&status) {
            return response;
        }
        if method == "HEAD" || status == 204 || status == 304 {
            return response;
        }
        let chunked = response
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        if chunked {
            loop {
                let size_line = self.take_line();
                let size = usize::from_str_radix(size_line.split(';').next().unwrap().trim(), 16)
                    .unwrap_or_else(|_| panic!("chunk size {size_line:?}"));
                if size == 0 {
                    response.trailers = self.read_fields();
                    break;
                }
                response.chunks.push(size);
                let data = self.take_exact(size);
                response.body.extend_from_slice(&data);
                assert_eq!(
                    self.take_exact(2),
                    b"\r\n",
                    "chunk data not followed by CRLF"
                );
            }
        } else if let Some(len) = response.header("content-length") {
            let len: usize = len.parse().expect("content-length");
            response.body = self.take_exact(len);
        } else {
            // Close-delimited.
            while self.fill() > 0 {}
            response.body = std::mem::take(&mut self.buf);
        }
        response
    }

    /// Reads one complete response to a non-HEAD request.
    pub fn read_response(&mut self) -> Response {
        self.read_response_to("GET")
    }

    /// Reads one interim (1xx) response head, if that is what comes next.
    pub fn read_interim(&mut self) -> u16 {
        let (status, _) = self.read_head();
        status
    }

    /// Reads everything until the server closes the connection (EOF or reset).
    pub fn read_until_closed(&mut self) -> Vec<u8> {
        while self.fill() > 0 {}
        std::mem::take(&mut self.buf)
    }

    /// Waits until the server closes the connection (EOF or reset), failing on any data.
    pub fn expect_closed(&mut self) {
        assert!(
            self.buf.is_empty(),
            "unexpected bytes: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        let n = self.fill();
        assert_eq!(
            n,
            0,
            "expected close, got {:?}",
            String::from_utf8_lossy(&self.buf)
        );
    }

    /// Whether the connection is still open: a fresh request on it gets a 200.
    pub fn still_serves(&mut self) -> bool {
        if self
            .stream
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut chunk = [0u8; 1];
        match self.stream.peek(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(_) => self.read_response().status == 200,
        }
    }
}

/// A config like [`BASE`] with `server_keys` in its `[server]` table (a `workers` key there
/// replaces BASE's) and `extra` TOML appended.
pub fn config_with(server_keys: &str, extra: &str) -> String {
    let base = if server_keys.contains("workers") {
        BASE.replace("workers = 1\n", "")
    } else {
        BASE.to_string()
    };
    let base = base.replace("[server]\n", &format!("[server]\n{server_keys}\n"));
    format!("{base}\n{extra}")
}

/// A POST request for `target` with a Content-Length body.
pub fn post(target: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {target} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// What `echo` answers to a request whose head is `head` (the head text the server
/// re-encodes is identical when `head` uses `Name: value` and CRLF throughout).
pub fn echo_body(head: &[u8], body: &[u8]) -> Vec<u8> {
    [head, body].concat()
}

/// A GET request for `path` with a Host header.
pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}

/// The descriptors process `pid` holds.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc/<pid>/fd")
        .count()
}

/// Polls until the server holds `expected` descriptors (bounded: fails after 10 s).
pub fn wait_for_fd_count(pid: u32, expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = fd_count(pid);
        if now == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "server holds {now} descriptors, expected {expected}: a leak"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The peak resident set of process `pid` so far, in KiB (`VmHWM` in /proc/<pid>/status).
pub fn peak_rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmHWM:")
}

/// The resident set of process `pid` now, in KiB (`VmRSS` in /proc/<pid>/status).
pub fn rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmRSS:")
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/<pid>/status"))
}

/// The CPU time a process has used, in clock ticks (1/100 s on Linux).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTicks {
    /// In user mode (`utime`).
    pub user: u64,
    /// In the kernel (`stime`).
    pub system: u64,
}

impl CpuTicks {
    /// User plus system time.
    pub fn total(self) -> u64 {
        self.user + self.system
    }
}

/// The CPU time process `pid` has used so far (`utime` and `stime` in /proc/<pid>/stat).
pub fn cpu_ticks(pid: u32) -> CpuTicks {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/<pid>/stat");
    // The command, in parentheses, may hold spaces: count fields after its closing one. After
    // it comes field 3 (state); utime and stime are fields 14 and 15.
    let (_, fields) = stat.rsplit_once(')').expect("stat format");
    let mut times = fields
        .split_whitespace()
        .skip(11)
        .map(|ticks| ticks.parse::<u64>().expect("a tick count"));
    let user = times.next().expect("utime");
    let system = times.next().expect("stime");
    CpuTicks { user, system }
}

/// Process `pid`'s peak resident set and CPU time (user + system) so far, for the record
/// (docs/RELIABILITY.md): "server peak RSS 10.7 MiB (10956 KiB), CPU 40 ms".
pub fn server_usage(pid: u32) -> String {
    let kib = peak_rss_kib(pid);
    let ms = cpu_ticks(pid).total() * 10;
    format!(
        "server peak RSS {:.1} MiB ({kib} KiB), CPU {ms} ms",
        kib as f64 / 1024.0
    )
}

/// `/metrics` of the admin port at `admin`, checked to be Prometheus text and parsed by a
/// real parser (`prometheus-parse`).
pub fn scrape(admin: SocketAddr) -> prometheus_parse::Scrape {
    let mut client = Client::connect(admin);
    client.send(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let response = client.read_response();
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{response:?}"
    );
    let text = response.text();
    prometheus_parse::Scrape::parse(text.lines().map(|line| Ok(line.to_owned())))
        .expect("parse /metrics")
}

/// The value of the sample `name` whose labels include `labels` (0 when there is none).
pub fn metric_value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    use prometheus_parse::Value;
    let found: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            other => panic!("{name} is not a number: {other:?}"),
        })
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?}: {found:?}");
    found.first().copied().unwrap_or(0.0)
}
