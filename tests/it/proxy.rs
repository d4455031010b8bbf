//! The reverse proxy with the real binary: a proxy daemon in front of real upstreams on
//! 127.0.0.1 (a second asycamore, Python's `http.server`, and the small raw TCP servers of
//! `proxy_failures.rs`). Pipelining, 256 MiB streamed both ways in bounded memory,
//! balancing, the keep-alive pool, the fields that cross and the ones that do not,
//! `Expect: 100-continue`, an HTTP/1.0 upstream, and a Unix socket upstream. The failure
//! cases (cut responses, dead and silent servers, passive health, limits, a stale pooled
//! connection, reload) are in `proxy_failures.rs`; the daemon helpers here serve both.
//!
//! Every wait is for the event itself (a log line, a request head a raw server read, a
//! metric polled with a deadline); every blocking read is bounded by `IO_LIMIT`.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sha2::{Digest, Sha256};

use crate::proxy_failures::{RawConn, RawServer, answer_after_gate};
use crate::support::{
    Client, IO_LIMIT, Process, Response, binary, get, metric_value, peak_rss_kib, scrape,
    temp_path, write_config,
};

// ---------------------------------------------------------------------------------------
// Daemons: the proxy and the asycamore upstreams, each with its admin port.
// ---------------------------------------------------------------------------------------

/// An asycamore daemon (the proxy, or an upstream "app") on an ephemeral data port with its
/// admin port on another; killed when dropped.
pub struct Node {
    pub process: Process,
    pub data: SocketAddr,
    pub admin: SocketAddr,
}

/// The config of a [`Node`]: `[server]` on an ephemeral port (one worker unless
/// `server_keys` says otherwise) with `server_keys`, `[admin]` on an ephemeral port with
/// `admin_keys`, then `rest`.
pub fn node_config(server_keys: &str, admin_keys: &str, rest: &str) -> String {
    let workers = if server_keys.contains("workers") {
        ""
    } else {
        "workers = 1"
    };
    format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n{workers}\n{server_keys}\n\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n{admin_keys}\n\n{rest}\n"
    )
}

impl Node {
    /// Starts the binary on [`node_config`] and waits for its data and admin addresses.
    pub fn start(server_keys: &str, admin_keys: &str, rest: &str) -> Node {
        let config = write_config(&node_config(server_keys, admin_keys, rest));
        let mut process = Process::start(binary(), config, &[]);
        let (data, admin) = process.served_addresses();
        Node {
            process,
            data,
            admin,
        }
    }

    /// An app: one worker, `rest` as its routes.
    pub fn app(rest: &str) -> Node {
        Node::start("", "", rest)
    }

    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    pub fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(i32::try_from(self.pid()).expect("pid"));
        kill(pid, signal).expect("kill");
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.data)
    }

    /// The next log line containing `needle` (failing after `IO_LIMIT`).
    pub fn wait_log(&mut self, needle: &str) -> String {
        self.process.wait_log(needle)
    }

    /// One sample of the admin port's `/metrics`.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric_value(&scrape(self.admin), name, labels)
    }

    /// `asycamore_upstream_errors_total` of upstream group `app`, server `server`, `kind`.
    pub fn upstream_errors(&self, server: SocketAddr, kind: &str) -> f64 {
        let server = server.to_string();
        let labels = [
            ("upstream", "app"),
            ("server", server.as_str()),
            ("kind", kind),
        ];
        self.metric("asycamore_upstream_errors_total", &labels)
    }

    /// Polls `/metrics` until the sample is `want` (bounded); fails naming the last value.
    pub fn wait_metric(&self, name: &str, labels: &[(&str, &str)], want: f64) {
        let deadline = Instant::now() + IO_LIMIT;
        loop {
            let now = self.metric(name, labels);
            if now == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} {labels:?} is {now}, waited for {want}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// One request on a connection of its own: the response.
    pub fn request(&self, request: &[u8]) -> Response {
        let mut client = self.connect();
        client.send(request);
        client.read_response()
    }
}

/// An `[[upstream]]` table named `name` with a server entry per item of `servers` (the
/// inside of each inline table, e.g. `address = "127.0.0.1:1", weight = 3`) and `keys`.
pub fn upstream(name: &str, servers: &[String], keys: &str) -> String {
    let servers: Vec<String> = servers.iter().map(|s| format!("{{ {s} }}")).collect();
    format!(
        "[[upstream]]\nname = \"{name}\"\nservers = [{}]\n{keys}\n\n",
        servers.join(", ")
    )
}

/// A server entry for the server at `addr`, with `extra` keys.
pub fn server(addr: SocketAddr, extra: &str) -> String {
    if extra.is_empty() {
        format!("address = \"{addr}\"")
    } else {
        format!("address = \"{addr}\", {extra}")
    }
}

/// A `proxy` route `name` on prefix `path` to upstream `to`, with `keys`.
pub fn proxy_route(name: &str, path: &str, to: &str, keys: &str) -> String {
    format!(
        "[[route]]\nname = \"{name}\"\npath = \"{path}\"\nhandler = \"proxy\"\n\
         upstream = \"{to}\"\n{keys}\n\n"
    )
}

/// A proxy daemon forwarding every path to one group `app` of `servers`
/// (`upstream_keys` on the group), one worker, bodies up to 1 GiB.
pub fn proxy_to(servers: &[String], upstream_keys: &str) -> Node {
    Node::start(
        "",
        "",
        &format!(
            "[limits]\nmax_body_bytes = \"1G\"\n[defaults]\nmax_body_bytes = \"1G\"\n\n{}{}",
            upstream("app", servers, upstream_keys),
            proxy_route("all", "/", "app", "")
        ),
    )
}

/// An app answering `body` on every path (`respond`), with `/echo` echoing.
pub fn respond_app(body: &str) -> Node {
    Node::app(&format!(
        "[[route]]\nname = \"hello\"\npath = \"/\"\nhandler = \"respond\"\nbody = \"{body}\"\n\n\
         [[route]]\nname = \"echo\"\npath = \"/echo\"\nhandler = \"echo\"\n"
    ))
}

/// The fields of an echoed request head (the app's `echo` body up to its blank line):
/// its request line and its fields.
pub fn echoed_head(body: &[u8]) -> (String, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(body);
    let head = text.split("\r\n\r\n").next().expect("echoed head");
    let mut lines = head.split("\r\n");
    let request_line = lines.next().expect("request line").to_owned();
    let fields = lines
        .map(|line| {
            let (name, value) = line.split_once(':').expect("field line");
            (name.to_owned(), value.trim().to_owned())
        })
        .collect();
    (request_line, fields)
}

/// The values of the fields named `name` (case-insensitive) among `fields`.
pub fn values<'a>(fields: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Polls `done` until it holds, failing with `what` after `IO_LIMIT`.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + IO_LIMIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

// ---------------------------------------------------------------------------------------
// Python's http.server, an independent HTTP/1.0 upstream.
// ---------------------------------------------------------------------------------------

/// `python3 -m http.server` serving a fresh directory; killed, and the directory removed,
/// when dropped.
pub struct PythonServer {
    child: Child,
    pub addr: SocketAddr,
    pub dir: PathBuf,
}

impl PythonServer {
    /// Starts it on an ephemeral port serving `files` (name, contents), and reads the port
    /// from its "Serving HTTP on 127.0.0.1 port N" line.
    pub fn start(files: &[(&str, &[u8])]) -> PythonServer {
        let dir = temp_path("python-root");
        std::fs::create_dir(&dir).expect("mkdir");
        for (name, contents) in files {
            std::fs::write(dir.join(name), contents).expect("write file");
        }
        let mut child = Command::new("python3")
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0"])
            .arg("--directory")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn python3 -m http.server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = PythonServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir,
        };
        let line = rx
            .recv_timeout(IO_LIMIT)
            .expect("no line from python3 -m http.server");
        let port: u16 = line
            .split(" port ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        server.addr.set_port(port);
        server
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------
// Bulk data.
// ---------------------------------------------------------------------------------------

/// A deterministic pseudo-random byte stream (xorshift), generated piece by piece.
pub struct Noise(pub u64);

impl Noise {
    pub fn fill(&mut self, buf: &mut [u8]) {
        for word in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            word.copy_from_slice(&self.0.to_le_bytes()[..word.len()]);
        }
    }

    pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        Noise(seed).fill(&mut buf);
        buf
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Writes a chunked body of `total` noise bytes to `stream`, chunk sizes cycling through
/// 4 KiB, 8 KiB, ... 1 MiB (and one odd size), then the last chunk; the SHA-256 of the
/// data and the number of chunks.
pub fn send_chunked_noise(stream: &mut TcpStream, total: usize, seed: u64) -> (String, usize) {
    let mut noise = Noise(seed);
    let mut hasher = Sha256::new();
    let mut piece = vec![0u8; 1 << 20];
    let mut framed = Vec::with_capacity((1 << 20) + 16);
    let (mut sent, mut chunks) = (0, 0);
    while sent < total {
        let size = match chunks % 10 {
            9 => 12_345,
            step => 4096 << step.min(8),
        };
        let size = size.min(total - sent);
        let piece = &mut piece[..size];
        noise.fill(piece);
        hasher.update(&*piece);
        framed.clear();
        write!(framed, "{size:x}\r\n").expect("chunk size");
        framed.extend_from_slice(piece);
        framed.extend_from_slice(b"\r\n");
        stream.write_all(&framed).expect("send chunk");
        sent += size;
        chunks += 1;
    }
    stream.write_all(b"0\r\n\r\n").expect("send last chunk");
    (hex(hasher.finalize().as_slice()), chunks)
}

/// Reads a response head from `reader`: the status and the fields.
pub fn read_head_from(reader: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status = line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("status line {line:?}"));
    let mut fields = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("field line");
        let line = line.trim_end_matches("\r\n");
        if line.is_empty() {
            return (status, fields);
        }
        let (name, value) = line.split_once(':').expect("field");
        fields.push((name.to_owned(), value.trim().to_owned()));
    }
}

/// Reads a chunked body from `reader`, handing each piece of data to `data`, without
/// keeping it; the number of chunks.
pub fn read_chunked_from(reader: &mut impl BufRead, mut data: impl FnMut(&[u8])) -> usize {
    let mut buf = vec![0u8; 1 << 16];
    let mut chunks = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("chunk size line");
        let size = usize::from_str_radix(line.trim_end().split(';').next().unwrap_or(""), 16)
            .unwrap_or_else(|_| panic!("chunk size {line:?}"));
        if size == 0 {
            // Trailers, up to the blank line.
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).expect("trailer line");
                if line == "\r\n" || line.is_empty() {
                    return chunks;
                }
            }
        }
        chunks += 1;
        let mut left = size;
        while left > 0 {
            let n = left.min(buf.len());
            reader.read_exact(&mut buf[..n]).expect("chunk data");
            data(&buf[..n]);
            left -= n;
        }
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).expect("chunk CRLF");
        assert_eq!(&crlf, b"\r\n", "chunk data not followed by CRLF");
    }
}

// ---------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------

/// Pipelining through the proxy: 64 requests for different echo paths in one write on one
/// client connection are all answered, in order (each echo names its own path), and the
/// connection stays open.
#[test]
fn proxy_pipelined_requests_are_answered_in_order_on_one_connection() {
    let app = respond_app("app");
    let proxy = proxy_to(&[server(app.data, "")], "");
    let mut client = proxy.connect();
    let batch: Vec<u8> = (0..64)
        .flat_map(|i| get(&format!("/echo/path-{i}?n={i}")))
        .collect();
    client.send(&batch);
    for i in 0..64 {
        let response = client.read_response();
        assert_eq!(response.status, 200, "response {i}: {}", response.text());
        let (request_line, _) = echoed_head(&response.body);
        assert_eq!(
            request_line,
            format!("GET /echo/path-{i}?n={i} HTTP/1.1"),
            "response {i} out of order"
        );
        assert!(!response.says_close(), "response {i} closes the connection");
    }
    assert!(client.still_serves(), "the client connection was closed");
}

/// Chunk boundaries and trailers cross the proxy both ways: a chunked POST with a trailer
/// to the app's echo, sent to the app directly and through the proxy, comes back with the
/// same chunk sizes, the same body after the echoed head, and the trailer (which the app
/// saw, so the proxy forwarded it, and which the client got, so the proxy relayed it).
#[test]
fn proxy_keeps_chunk_boundaries_and_trailers_both_ways() {
    let app = Node::app("[[route]]\nname = \"echo\"\npath = \"/echo\"\nhandler = \"echo\"\n");
    let proxy = proxy_to(&[server(app.data, "")], "");
    let request = b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\
                    Trailer: X-Checksum\r\n\r\n\
                    5\r\nhello\r\n3\r\nabc\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n\
                    0\r\nX-Checksum: 42\r\n\r\n";
    let mut direct = app.connect();
    direct.send(request);
    let direct = direct.read_response();
    let mut proxied = proxy.connect();
    proxied.send(request);
    let proxied = proxied.read_response();
    assert_eq!(proxied.status, 200);
    // The echoed heads differ (the proxy adds its fields); what follows them does not.
    let chunk_sizes = |response: &Response| response.chunks[1..].to_vec();
    assert_eq!(chunk_sizes(&proxied), [5, 3, 26]);
    assert_eq!(chunk_sizes(&proxied), chunk_sizes(&direct));
    assert!(
        proxied
            .body
            .ends_with(b"helloabcabcdefghijklmnopqrstuvwxyz")
    );
    assert_eq!(
        proxied.trailers,
        [("X-Checksum".to_owned(), "42".to_owned())],
        "{:?}",
        proxied.trailers
    );
    assert_eq!(proxied.trailers, direct.trailers);
}

/// The largest peak resident set the proxy may reach relaying 256 MiB: its own buffers are
/// bounded (256 KiB of request bytes held for the upstream, a 64 KiB read buffer, the
/// client's 64 KiB output mark) over a baseline of a few MiB; a proxy that buffered a
/// message, or a large part of one, would pass it: the body is 8 times this.
pub const PROXY_RSS_BOUND_KIB: u64 = 32 * 1024;

/// 256 MiB both ways at once: a chunked POST (chunk sizes from 4 KiB to 1 MiB) through the
/// proxy to the app's echo, written on one thread while the chunked echo is read on
/// another: the SHA-256 of the bytes sent equals that of the body received after the
/// echoed head, and the proxy's peak RSS stays bounded.
#[test]
fn proxy_streams_256_mib_both_ways_in_bounded_memory() {
    const TOTAL: usize = 256 << 20;
    let app = Node::app(
        "[limits]\nmax_body_bytes = \"1G\"\n[defaults]\nmax_body_bytes = \"1G\"\n\n\
         [[route]]\nname = \"echo\"\npath = \"/echo\"\nhandler = \"echo\"\n",
    );
    let proxy = proxy_to(&[server(app.data, "")], "");
    let stream = TcpStream::connect(proxy.data).expect("connect");
    stream.set_read_timeout(Some(IO_LIMIT)).expect("timeout");
    stream.set_write_timeout(Some(IO_LIMIT)).expect("timeout");
    let reading = {
        let stream = stream.try_clone().expect("clone");
        std::thread::spawn(move || {
            let mut reader = BufReader::with_capacity(1 << 16, stream);
            let (status, fields) = read_head_from(&mut reader);
            assert_eq!(status, 200);
            assert_eq!(values(&fields, "transfer-encoding"), ["chunked"]);
            let mut head = Vec::new();
            let mut in_body = false;
            let (mut hasher, mut received) = (Sha256::new(), 0usize);
            read_chunked_from(&mut reader, |data| {
                if in_body {
                    hasher.update(data);
                    received += data.len();
                    return;
                }
                head.extend_from_slice(data);
                if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                    in_body = true;
                    hasher.update(&head[end + 4..]);
                    received += head.len() - end - 4;
                    head.truncate(end);
                }
            });
            let head = String::from_utf8_lossy(&head).into_owned();
            (head, hex(hasher.finalize().as_slice()), received)
        })
    };
    let mut writer = stream;
    writer
        .write_all(b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n")
        .expect("send head");
    let (sent_sha, chunks) = send_chunked_noise(&mut writer, TOTAL, 0x9e37_79b9_7f4a_7c15);
    let (head, received_sha, received) = reading.join().expect("reader thread");
    assert!(head.starts_with("POST /echo HTTP/1.1\r\n"), "{head}");
    assert_eq!(received, TOTAL);
    assert_eq!(
        received_sha, sent_sha,
        "the echo differs from what was sent"
    );
    assert!(chunks > 256, "{chunks} chunks");
    let peak = peak_rss_kib(proxy.pid());
    eprintln!("proxy peak RSS after 256 MiB each way: {peak} KiB");
    assert!(
        peak < PROXY_RSS_BOUND_KIB,
        "proxy peak RSS {peak} KiB, bound {PROXY_RSS_BOUND_KIB} KiB"
    );
}

/// A 256 MiB chunked upload through the proxy to the app's `upload` route: the SHA-256 in
/// its 201 answer is that of the bytes sent, and the proxy's peak RSS stays bounded.
#[test]
fn proxy_streams_a_256_mib_upload_in_bounded_memory() {
    const TOTAL: usize = 256 << 20;
    let dir = temp_path("proxy-uploads");
    std::fs::create_dir(&dir).expect("mkdir");
    let app = Node::app(&format!(
        "[limits]\nmax_body_bytes = \"1G\"\n[defaults]\nmax_body_bytes = \"1G\"\n\n\
         [[route]]\nname = \"up\"\npath = \"/up\"\nhandler = \"upload\"\ndir = \"{}\"\n",
        dir.display()
    ));
    let proxy = proxy_to(&[server(app.data, "")], "");
    let mut client = proxy.connect();
    client
        .stream
        .set_write_timeout(Some(IO_LIMIT))
        .expect("timeout");
    client.send(b"PUT /up/big.bin HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n");
    let (sha, chunks) = send_chunked_noise(&mut client.stream, TOTAL, 0x1234_5678_9abc_def1);
    let response = client.read_response();
    let body = response.text();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(response.status, 201, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON answer");
    assert_eq!(json["sha256"], sha.as_str(), "{body}");
    assert_eq!(json["bytes"], TOTAL as u64, "{body}");
    assert_eq!(json["chunks"], chunks as u64, "{body}");
    assert_eq!(json["name"], "big.bin", "{body}");
    let peak = peak_rss_kib(proxy.pid());
    eprintln!("proxy peak RSS after a 256 MiB upload: {peak} KiB");
    assert!(
        peak < PROXY_RSS_BOUND_KIB,
        "proxy peak RSS {peak} KiB, bound {PROXY_RSS_BOUND_KIB} KiB"
    );
}

/// Weighted round-robin: servers of weights 3 and 1 (answering "a" and "b") get exactly
/// 300 and 100 of 400 sequential requests.
#[test]
fn proxy_round_robin_follows_the_weights_exactly() {
    let (a, b) = (respond_app("a"), respond_app("b"));
    let proxy = proxy_to(
        &[server(a.data, "weight = 3"), server(b.data, "weight = 1")],
        "balance = \"round_robin\"",
    );
    let mut client = proxy.connect();
    let (mut to_a, mut to_b) = (0, 0);
    for i in 0..400 {
        client.send(&get("/"));
        let response = client.read_response();
        assert_eq!(response.status, 200, "request {i}");
        match response.text().as_str() {
            "a" => to_a += 1,
            "b" => to_b += 1,
            other => panic!("request {i}: body {other:?}"),
        }
    }
    assert_eq!((to_a, to_b), (300, 100));
}

/// Least connections (equal weights): with requests held open on server A and none on B,
/// every new request goes to B. Two raw servers that answer only when told: 8 requests held
/// split 4 and 4, B is told to answer (its 4 complete), then 8 new requests all reach B
/// (round-robin would send half of them to A), and finally A's 4 are answered too.
#[test]
fn proxy_least_connections_sends_new_requests_to_the_idle_server() {
    const HELD: usize = 4;
    let (tx, seen) = mpsc::channel();
    let a = RawServer::start_into("a", tx.clone(), answer_after_gate);
    let b = RawServer::start_into("b", tx, answer_after_gate);
    let proxy = proxy_to(
        &[server(a.addr, ""), server(b.addr, "")],
        "balance = \"least_connections\"",
    );
    let next_seen = || {
        seen.recv_timeout(IO_LIMIT)
            .expect("no request reached a server")
            .0
    };
    // Phase 1: 2 * HELD requests, each on its own client connection, held at the servers.
    let mut held: Vec<(&str, Client)> = Vec::new();
    for _ in 0..2 * HELD {
        let mut client = proxy.connect();
        client.send(&get("/held"));
        held.push((next_seen(), client));
    }
    let on = |tag: &str| held.iter().filter(|(t, _)| *t == tag).count();
    assert_eq!((on("a"), on("b")), (HELD, HELD), "held requests");
    // Phase 2: B answers its requests (and from now on every request at once).
    b.gate.open();
    for (tag, client) in held.iter_mut().filter(|(t, _)| *t == "b") {
        let response = client.read_response();
        assert_eq!((response.status, response.text().as_str()), (200, *tag));
    }
    let b_label = b.addr.to_string();
    let b_labels = [("upstream", "app"), ("server", b_label.as_str())];
    proxy.wait_metric("asycamore_upstream_requests_in_flight", &b_labels, 0.0);
    // Phase 3: A still holds HELD requests, B none: every new request goes to B.
    let mut client = proxy.connect();
    for i in 0..2 * HELD {
        client.send(&get("/new"));
        assert_eq!(next_seen(), "b", "new request {i} went to the busy server");
        let response = client.read_response();
        assert_eq!((response.status, response.text().as_str()), (200, "b"));
    }
    // Phase 4: A answers its held requests.
    a.gate.open();
    for (tag, client) in held.iter_mut().filter(|(t, _)| *t == "a") {
        let response = client.read_response();
        assert_eq!((response.status, response.text().as_str()), (200, *tag));
    }
}

/// The keep-alive pool: 20 sequential requests, each on a new client connection, reach the
/// app over one upstream connection (the app accepted one more connection; the proxy counts
/// 19 reused).
#[test]
fn proxy_reuses_one_pooled_connection_for_sequential_requests() {
    let app = respond_app("pooled");
    let proxy = proxy_to(&[server(app.data, "")], "");
    let accepted = "asycamore_connections_accepted_total";
    let before = app.metric(accepted, &[]);
    for i in 0..20 {
        let response = proxy.request(&get("/"));
        assert_eq!(
            (response.status, response.text().as_str()),
            (200, "pooled"),
            "request {i}"
        );
    }
    assert_eq!(app.metric(accepted, &[]) - before, 1.0, "app connections");
    let server_label = app.data.to_string();
    let labels = [("upstream", "app"), ("server", server_label.as_str())];
    assert_eq!(
        proxy.metric("asycamore_upstream_reused_connections_total", &labels),
        19.0
    );
    assert_eq!(
        proxy.metric("asycamore_upstream_responses_total", &labels),
        20.0
    );
}

/// The admin port shows the group on `/debug/connections` (JSON and text) with the pooled
/// connection idle and the responses counted, and the response-head latency histogram counts
/// every response.
#[test]
fn proxy_upstreams_show_on_debug_connections_and_in_the_latency_histogram() {
    let app = respond_app("seen");
    let proxy = proxy_to(&[server(app.data, "")], "");
    for _ in 0..3 {
        assert_eq!(proxy.request(&get("/")).status, 200);
    }
    let admin_get = |target: &str| {
        let mut client = Client::connect(proxy.admin);
        client.send(
            format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        client.read_response()
    };
    let json: serde_json::Value =
        serde_json::from_str(&admin_get("/debug/connections").text()).expect("JSON");
    let group = &json["upstreams"][0];
    assert_eq!(group["name"], "app", "{json}");
    assert_eq!(group["balance"], "round_robin", "{json}");
    let entry = &group["servers"][0];
    assert_eq!(entry["address"], app.data.to_string(), "{json}");
    assert_eq!(entry["up"], true, "{json}");
    assert_eq!(entry["responses"], 3, "{json}");
    assert_eq!(entry["reused"], 2, "{json}");
    assert_eq!(
        (entry["idle"].clone(), entry["active"].clone()),
        (1.into(), 0.into()),
        "{json}"
    );
    let text = admin_get("/debug/connections?format=text").text();
    assert!(
        text.contains(&format!(
            "  server={} up in_flight=0 active=0 idle=1 responses=3 reused=2 errors=0\n",
            app.data
        )),
        "{text}"
    );
    let address = app.data.to_string();
    let labels = [("upstream", "app"), ("server", address.as_str())];
    assert_eq!(
        proxy.metric("asycamore_upstream_response_head_seconds_count", &labels),
        3.0
    );
    assert_eq!(
        proxy.metric(
            "asycamore_upstream_connections",
            &[labels[0], labels[1], ("state", "idle")]
        ),
        1.0
    );
}

/// An app echoing every path, behind a proxy with three routes to it: `/keep` (the client's
/// Host), `/up` (the server's address) and `/lit` (a literal Host).
fn host_rewriting_pair() -> (Node, Node) {
    let app = Node::app("[[route]]\nname = \"echo\"\npath = \"/\"\nhandler = \"echo\"\n");
    let proxy = Node::start(
        "",
        "",
        &format!(
            "{}{}{}{}",
            upstream("app", &[server(app.data, "")], ""),
            proxy_route("keep", "/keep", "app", "proxy_host = \"keep\""),
            proxy_route("up", "/up", "app", "proxy_host = \"upstream\""),
            proxy_route("lit", "/lit", "app", "proxy_host = \"app.internal:8080\""),
        ),
    );
    (app, proxy)
}

/// The request head the app receives through the proxy: the fields `Connection` lists and
/// the hop-by-hop ones are gone, end-to-end ones kept; `X-Forwarded-For` gets the client
/// (127.0.0.1) appended, `X-Forwarded-Proto` is `http` (the client's own is dropped), and
/// `Forwarded` gets `for=127.0.0.1`.
#[test]
fn proxy_removes_hop_by_hop_fields_and_adds_forwarding_ones() {
    let (_app, proxy) = host_rewriting_pair();
    let mut client = proxy.connect();
    client.send(
        b"GET /keep/x?y=1 HTTP/1.1\r\nHost: client.example:8080\r\n\
          Connection: keep-alive, X-Private\r\nX-Private: secret\r\nKeep-Alive: timeout=5\r\n\
          Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-Checksum\r\n\
          X-Forwarded-For: 10.0.0.1\r\nForwarded: for=10.0.0.1\r\n\
          X-Forwarded-Proto: https\r\nX-Custom: kept\r\nAccept: */*\r\n\r\n",
    );
    let response = client.read_response();
    assert_eq!(response.status, 200, "{}", response.text());
    let (request_line, fields) = echoed_head(&response.body);
    assert_eq!(request_line, "GET /keep/x?y=1 HTTP/1.1");
    for gone in [
        "connection",
        "x-private",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
    ] {
        assert!(
            values(&fields, gone).is_empty(),
            "{gone} crossed: {fields:?}"
        );
    }
    assert_eq!(values(&fields, "host"), ["client.example:8080"]);
    assert_eq!(values(&fields, "x-custom"), ["kept"]);
    assert_eq!(values(&fields, "accept"), ["*/*"]);
    let xff = values(&fields, "x-forwarded-for");
    assert_eq!(xff.len(), 1, "{fields:?}");
    assert!(xff[0].starts_with("10.0.0.1"), "{xff:?}");
    assert!(xff[0].ends_with("127.0.0.1"), "{xff:?}");
    assert_eq!(values(&fields, "x-forwarded-proto"), ["http"]);
    let forwarded = values(&fields, "forwarded");
    assert_eq!(forwarded.len(), 1, "{fields:?}");
    assert!(forwarded[0].starts_with("for=10.0.0.1, "), "{forwarded:?}");
    assert!(
        forwarded[0]
            .split(", ")
            .nth(1)
            .is_some_and(|ours| ours.split(';').any(|pair| pair == "for=127.0.0.1")),
        "{forwarded:?}"
    );
    // The client's connection stays open (its Connection field was for the proxy).
    assert!(!response.says_close());
    client.send(&get("/keep/again"));
    assert_eq!(client.read_response().status, 200);
}

/// `proxy_host`: `keep` sends the client's Host (the server's address when the client sent
/// none), `upstream` the server's address, a literal the literal.
#[test]
fn proxy_host_is_kept_rewritten_to_the_upstream_or_literal() {
    let (app, proxy) = host_rewriting_pair();
    let host_seen = |request: &[u8]| {
        let response = proxy.request(request);
        assert_eq!(response.status, 200, "{}", response.text());
        let (_, fields) = echoed_head(&response.body);
        values(&fields, "host")
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
    };
    let app_address = app.data.to_string();
    let with_host = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: client.example\r\n\r\n");
    assert_eq!(host_seen(with_host("/keep").as_bytes()), ["client.example"]);
    assert_eq!(
        host_seen(with_host("/up").as_bytes()),
        [app_address.as_str()]
    );
    assert_eq!(
        host_seen(with_host("/lit").as_bytes()),
        ["app.internal:8080"]
    );
    // HTTP/1.0 without Host: `keep` has nothing to keep.
    assert_eq!(
        host_seen(b"GET /keep HTTP/1.0\r\n\r\n"),
        [app_address.as_str()]
    );
}

/// `proxy_host = "upstream"` with two servers: each request's Host is the address of the
/// server it was sent to (the one whose echo answers), not always the first one's.
#[test]
fn proxy_host_upstream_names_the_chosen_server() {
    let echo_app = |tag: &str| {
        Node::app(&format!(
            "[[route]]\nname = \"echo\"\npath = \"/\"\nhandler = \"echo\"\n\
             headers = {{ \"X-App\" = \"{tag}\" }}\n"
        ))
    };
    let (one, two) = (echo_app("one"), echo_app("two"));
    let proxy = Node::start(
        "",
        "",
        &format!(
            "{}{}",
            upstream("app", &[server(one.data, ""), server(two.data, "")], ""),
            proxy_route("up", "/", "app", "proxy_host = \"upstream\""),
        ),
    );
    let mut client = proxy.connect();
    let mut seen = Vec::new();
    for _ in 0..4 {
        client.send(&get("/"));
        let response = client.read_response();
        assert_eq!(response.status, 200);
        let app = response.header("x-app").expect("X-App").to_owned();
        let (_, fields) = echoed_head(&response.body);
        let want = if app == "one" { one.data } else { two.data };
        assert_eq!(
            values(&fields, "host"),
            [want.to_string().as_str()],
            "sent to {app}"
        );
        seen.push(app);
    }
    assert!(seen.iter().any(|app| app == "two"), "{seen:?}");
}

/// Behaviour: answers every request with hop-by-hop fields (`Connection: close, X-Hop`,
/// `X-Hop`, `Keep-Alive`) among end-to-end ones, then closes.
fn answer_with_hop_fields(conn: &mut RawConn) {
    if conn.read_request().is_some() {
        conn.write(
            b"HTTP/1.1 200 OK\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\n\
              Keep-Alive: timeout=5, max=100\r\nX-Other: yes\r\nCache-Control: no-store\r\n\
              Set-Cookie: a=b\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok",
        );
        conn.close();
    }
}

/// The response fields a raw upstream sends: the ones its `Connection` lists and the
/// hop-by-hop ones do not reach the client (nor does its `close`: the client's connection
/// stays open); the others do.
#[test]
fn proxy_drops_hop_by_hop_response_fields() {
    let raw = RawServer::start("raw", answer_with_hop_fields);
    let proxy = proxy_to(&[server(raw.addr, "")], "");
    let mut client = proxy.connect();
    for round in 0..2 {
        client.send(&get("/hop"));
        let response = client.read_response();
        assert_eq!(
            (response.status, response.text().as_str()),
            (200, "ok"),
            "round {round}"
        );
        for gone in ["x-hop", "keep-alive"] {
            assert_eq!(
                response.header(gone),
                None,
                "{gone}: {:?}",
                response.headers
            );
        }
        assert!(!response.says_close(), "{:?}", response.headers);
        assert_eq!(response.header("x-other"), Some("yes"));
        assert_eq!(response.header("cache-control"), Some("no-store"));
        assert_eq!(response.header("set-cookie"), Some("a=b"));
        assert_eq!(response.header("content-type"), Some("text/plain"));
    }
    assert_eq!(raw.accepted(), 2);
}

/// `Expect: 100-continue` through the proxy: the client gets `100 Continue` before sending
/// its body, then the app's echo of that body.
#[test]
fn proxy_answers_expect_100_continue_and_forwards_the_body() {
    let app = respond_app("app");
    let proxy = proxy_to(&[server(app.data, "")], "");
    let mut client = proxy.connect();
    client.send(
        b"POST /echo/continue HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\n\
          Content-Length: 11\r\n\r\n",
    );
    assert_eq!(client.read_interim(), 100);
    client.send(b"hello proxy");
    let response = client.read_response();
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(
        response.body.ends_with(b"\r\n\r\nhello proxy"),
        "{}",
        response.text()
    );
    let (request_line, fields) = echoed_head(&response.body);
    assert_eq!(request_line, "POST /echo/continue HTTP/1.1");
    assert_eq!(values(&fields, "content-length"), ["11"]);
    assert!(values(&fields, "expect").is_empty(), "{fields:?}");
}

/// Python's `http.server` (HTTP/1.0, a connection per response) behind the proxy: a file's
/// bytes, a 404, and 10 requests on one keep-alive client connection although the upstream
/// closes after each.
#[test]
fn proxy_in_front_of_python_http_server() {
    let file = Noise::bytes(7, 300_000);
    let python = PythonServer::start(&[("file.bin", &file), ("small.txt", b"small file\n")]);
    let proxy = proxy_to(&[server(python.addr, "")], "");
    let mut client = proxy.connect();
    client.send(&get("/file.bin"));
    let response = client.read_response();
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-length"), Some("300000"));
    assert!(response.body == file, "the file's bytes differ");
    client.send(&get("/missing.txt"));
    let response = client.read_response();
    assert_eq!(response.status, 404, "{}", response.text());
    for i in 0..10 {
        client.send(&get("/small.txt"));
        let response = client.read_response();
        assert_eq!(
            (response.status, response.text().as_str()),
            (200, "small file\n"),
            "request {i}"
        );
        assert!(!response.says_close(), "request {i}");
    }
}

/// HEAD through the proxy to Python's `http.server`: the file's Content-Length is kept, no
/// body follows (the next response on the connection parses from its first byte), and the
/// client connection stays open.
#[test]
fn proxy_relays_head_responses_from_python_http_server() {
    let file = Noise::bytes(7, 300_000);
    let python = PythonServer::start(&[("file.bin", &file)]);
    let proxy = proxy_to(&[server(python.addr, "")], "");
    let mut client = proxy.connect();
    for i in 0..3 {
        client.send(b"HEAD /file.bin HTTP/1.1\r\nHost: test\r\n\r\n");
        let response = client.read_response_to("HEAD");
        assert_eq!(response.status, 200, "HEAD {i}");
        assert_eq!(
            response.header("content-length"),
            Some("300000"),
            "HEAD {i}"
        );
        assert!(!response.says_close(), "HEAD {i}");
        client.send(&get("/missing.txt"));
        let response = client.read_response();
        assert_eq!(response.status, 404, "after HEAD {i}: {}", response.text());
    }
}

/// A Unix socket upstream: the app's admin port on a Unix socket behind a proxy whose
/// upstream is `unix:` that path; `GET /healthz` through the proxy is 200 even with a Host
/// the admin port's TCP listener would refuse (there is no network peer over the socket).
#[test]
fn proxy_to_a_unix_socket_upstream() {
    let dir = temp_path("proxy-unix");
    std::fs::create_dir(&dir).expect("mkdir");
    let socket = dir.join("admin.sock");
    let mut app = Node::start(
        "",
        &format!("unix_socket = \"{}\"", socket.display()),
        "[[route]]\nname = \"hello\"\npath = \"/\"\nhandler = \"respond\"\nbody = \"data\"\n",
    );
    app.wait_log("admin port on unix:");
    let proxy = proxy_to(&[format!("address = \"unix:{}\"", socket.display())], "");
    let mut client = proxy.connect();
    for host in ["localhost", "evil.example"] {
        client.send(format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
        let response = client.read_response();
        assert_eq!(response.status, 200, "Host {host}: {}", response.text());
    }
    drop(app);
    let _ = std::fs::remove_dir_all(&dir);
}
