//! The reverse proxy when things go wrong, with the real binary: an upstream that dies or
//! closes mid-response, one that closes after reading the request, one that is not there,
//! one that never answers; passive health marking a dead server down; `max_connections`;
//! an upstream closing an idle pooled connection; and a reload that removes an upstream
//! under load. The raw upstreams (a TcpListener and a thread per connection running a
//! behaviour: answer when told, never answer, close early) are here and serve `proxy.rs`
//! too; the daemon helpers are `proxy.rs`'s.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::Instant;

use nix::sys::signal::Signal;

use crate::proxy::{
    Node, node_config, proxy_route, proxy_to, respond_app, server, upstream, wait_until,
};
use crate::support::{Client, IO_LIMIT, get, post, temp_path};

// ---------------------------------------------------------------------------------------
// Raw upstreams: a TcpListener and a thread per connection running a behaviour.
// ---------------------------------------------------------------------------------------

/// A gate raw connections wait at until the test opens it (then it stays open).
#[derive(Default)]
pub struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    pub fn open(&self) {
        *self.open.lock().expect("gate") = true;
        self.opened.notify_all();
    }

    /// Waits until the gate opens (bounded: a test that never opens it fails elsewhere).
    fn wait(&self) {
        let open = self.open.lock().expect("gate");
        let _open = self
            .opened
            .wait_timeout_while(open, IO_LIMIT * 3, |open| !*open)
            .expect("gate");
    }
}

/// A request head a raw server read: which server (`tag`) and the head's text.
pub type Seen = (&'static str, String);

/// One connection of a raw server, as its behaviour sees it.
pub struct RawConn {
    tag: &'static str,
    reader: BufReader<TcpStream>,
    seen: mpsc::Sender<Seen>,
    gate: Arc<Gate>,
}

impl RawConn {
    /// Reads a request head (reported to the test); `None` at the end of the stream.
    pub fn read_head(&mut self) -> Option<String> {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let _ = self.seen.send((self.tag, head.clone()));
        Some(head)
    }

    /// Reads a request head and its `Content-Length` body; the head.
    pub fn read_request(&mut self) -> Option<String> {
        let head = self.read_head()?;
        let length = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<u64>().ok())?
            })
            .unwrap_or(0);
        let mut body = (&mut self.reader).take(length);
        std::io::copy(&mut body, &mut std::io::sink()).ok()?;
        Some(head)
    }

    pub fn write(&mut self, bytes: &[u8]) -> bool {
        self.reader.get_mut().write_all(bytes).is_ok()
    }

    /// Waits until the test opens the server's gate.
    pub fn wait_for_gate(&self) {
        self.gate.wait();
    }

    /// Closes the connection (both ways).
    pub fn close(&self) {
        let _ = self.reader.get_ref().shutdown(Shutdown::Both);
    }

    /// Reads and drops everything until the peer closes.
    pub fn drain(&mut self) {
        let _ = std::io::copy(&mut self.reader, &mut std::io::sink());
    }
}

/// A raw HTTP upstream on 127.0.0.1: every accepted connection runs `behaviour` on a
/// thread of its own. Counts connections; reports each request head read.
pub struct RawServer {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    pub gate: Arc<Gate>,
    seen: Option<mpsc::Receiver<Seen>>,
    stop: Arc<AtomicBool>,
}

impl RawServer {
    /// A server reporting the heads it reads to its own channel ([`RawServer::next_seen`]).
    pub fn start(tag: &'static str, behaviour: fn(&mut RawConn)) -> RawServer {
        let (tx, rx) = mpsc::channel();
        let mut server = RawServer::start_into(tag, tx, behaviour);
        server.seen = Some(rx);
        server
    }

    /// A server reporting the heads it reads to `seen` (shared with other servers).
    pub fn start_into(
        tag: &'static str,
        seen: mpsc::Sender<Seen>,
        behaviour: fn(&mut RawConn),
    ) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind raw upstream");
        let addr = listener.local_addr().expect("raw upstream address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Gate::default());
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (accepted, gate, stop) = (accepted.clone(), gate.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    stream
                        .set_read_timeout(Some(IO_LIMIT * 3))
                        .expect("timeout");
                    let mut conn = RawConn {
                        tag,
                        reader: BufReader::new(stream),
                        seen: seen.clone(),
                        gate: gate.clone(),
                    };
                    std::thread::spawn(move || behaviour(&mut conn));
                }
            });
        }
        RawServer {
            addr,
            accepted,
            gate,
            seen: None,
            stop,
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The next request head this server read (failing after `IO_LIMIT`).
    pub fn next_seen(&self) -> String {
        self.seen
            .as_ref()
            .expect("a server with its own channel")
            .recv_timeout(IO_LIMIT)
            .expect("the raw upstream read no request head")
            .1
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.gate.open();
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// A response of `body` with a `Content-Length`.
pub fn ok_response(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Behaviour: each request waits at the gate, then is answered with the server's tag.
pub fn answer_after_gate(conn: &mut RawConn) {
    while conn.read_request().is_some() {
        conn.wait_for_gate();
        let response = ok_response(conn.tag);
        if !conn.write(&response) {
            return;
        }
    }
}

/// Behaviour: reads the request head and never answers (holds the connection until the
/// peer closes it).
pub fn never_answer(conn: &mut RawConn) {
    if conn.read_head().is_some() {
        conn.drain();
    }
}

/// A TCP port on 127.0.0.1 with nothing listening on it (bound, then released).
pub fn dead_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address")
}

/// Behaviour: answers a head declaring 100000 bytes, sends 1000 of them, and closes.
fn half_a_body(conn: &mut RawConn) {
    if conn.read_request().is_some() {
        let mut response = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n".to_vec();
        response.extend(std::iter::repeat_n(b'h', 1000));
        conn.write(&response);
    }
}

/// An upstream that closes halfway through a `Content-Length` body: the client gets the
/// head and the 1000 bytes there were, then the connection closes (no hang, no second
/// response), and the proxy logs "response cut short".
#[test]
fn proxy_upstream_closing_mid_body_cuts_the_client_response_short() {
    let raw = RawServer::start("half", half_a_body);
    let mut proxy = proxy_to(&[server(raw.addr, "")], "");
    let mut client = proxy.connect();
    client.send(&get("/cut"));
    let (status, fields) = client.read_head();
    assert_eq!(status, 200);
    assert!(
        fields
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("content-length") && v == "100000"),
        "{fields:?}"
    );
    let rest = client.read_until_closed();
    assert_eq!(rest.len(), 1000, "bytes after the head");
    assert!(
        rest.iter().all(|&b| b == b'h'),
        "a second response followed"
    );
    let line = proxy.wait_log("response cut short");
    assert!(line.contains("proxy: upstream app"), "{line}");
    assert_eq!(raw.accepted(), 1);
}

/// A client that goes away mid-response takes the upstream connection with it: the proxy
/// closes the connection its dropped exchange held (never parks it half-read), so the
/// upstream, which keeps sending, reads the end of the stream.
#[test]
fn proxy_client_gone_mid_response_closes_the_upstream_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let upstream_addr = listener.local_addr().expect("addr");
    let (closed_tx, closed) = mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        stream.set_read_timeout(Some(IO_LIMIT)).expect("timeout");
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
            line.clear();
        }
        let mut stream = reader.into_inner();
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
            .and_then(|()| stream.write_all(&[b'x'; 1000]));
        // Whatever the proxy does next, the stream must end, not stall: read until it does.
        let mut sink = [0u8; 1024];
        let ended = loop {
            match stream.read(&mut sink) {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        let _ = closed_tx.send(ended);
    });
    let proxy = proxy_to(&[server(upstream_addr, "")], "");
    let mut client = proxy.connect();
    client.send(&get("/big"));
    let (status, _) = client.read_head();
    assert_eq!(status, 200);
    drop(client);
    let ended = closed.recv_timeout(IO_LIMIT * 2).expect("upstream thread");
    assert!(ended, "the upstream connection was not closed by the proxy");
}

/// kill -9 of the upstream asycamore while it streams a 64 MiB static file through the
/// proxy: the client's response ends (the connection closes) short of its Content-Length.
#[test]
fn proxy_upstream_killed_mid_response_ends_the_client_response_short() {
    const SIZE: u64 = 64 << 20;
    let dir = temp_path("proxy-static");
    std::fs::create_dir(&dir).expect("mkdir");
    let file = std::fs::File::create(dir.join("big.bin")).expect("create");
    file.set_len(SIZE).expect("set_len");
    let app = Node::app(&format!(
        "[[route]]\nname = \"files\"\npath = \"/\"\nhandler = \"static\"\nroot = \"{}\"\n",
        dir.display()
    ));
    let mut proxy = proxy_to(&[server(app.data, "")], "");
    let mut client = proxy.connect();
    client.send(&get("/big.bin"));
    let (status, fields) = client.read_head();
    assert_eq!(status, 200);
    assert!(
        fields
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("content-length") && *v == SIZE.to_string()),
        "{fields:?}"
    );
    // Some of the body has come through; then the upstream dies.
    let mut first = vec![0u8; 1 << 20];
    client.stream.read_exact(&mut first).expect("first MiB");
    app.signal(Signal::SIGKILL);
    let rest = client.read_until_closed();
    let received = first.len() as u64 + rest.len() as u64;
    assert!(
        received < SIZE,
        "received all {received} bytes of a file whose server was killed"
    );
    proxy.wait_log("response cut short");
    drop(app);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Behaviour: reads a request head and closes the connection without answering.
fn close_after_head(conn: &mut RawConn) {
    let _ = conn.read_head();
}

/// An upstream that closes right after reading the request head: a POST is answered 502
/// and not sent again (two such servers saw one connection between them), even with
/// `next_upstream = ["connect", "error"]`; with that setting a GET is sent again to the
/// next server, which answers 200 (by default it would not be: the closer may have acted
/// on it; see `proxy_rfc.rs`).
#[test]
fn proxy_upstream_closing_after_the_head_gives_502_for_post_and_retries_get() {
    let (tx, _seen) = mpsc::channel();
    let closers = [
        RawServer::start_into("closer-1", tx.clone(), close_after_head),
        RawServer::start_into("closer-2", tx, close_after_head),
    ];
    let proxy = proxy_to(
        &[server(closers[0].addr, ""), server(closers[1].addr, "")],
        "next_upstream = [\"connect\", \"error\"]",
    );
    let response = proxy.request(&post("/form", b"not idempotent"));
    assert_eq!(response.status, 502, "{}", response.text());
    let seen: usize = closers.iter().map(RawServer::accepted).sum();
    assert_eq!(seen, 1, "the POST was sent {seen} times");

    let closer = RawServer::start("closer", close_after_head);
    let app = respond_app("second");
    let proxy = proxy_to(
        &[server(closer.addr, ""), server(app.data, "")],
        "next_upstream = [\"connect\", \"error\"]",
    );
    let response = proxy.request(&get("/"));
    assert_eq!((response.status, response.text().as_str()), (200, "second"));
    assert_eq!(closer.accepted(), 1, "the GET did not try the closer first");
    assert_eq!(
        proxy.metric("asycamore_upstream_retries_total", &[("upstream", "app")]),
        1.0
    );
}

/// Nothing listening at the server's address: 502, and a log line naming the upstream and
/// "connect failed".
#[test]
fn proxy_connect_refused_is_502_with_a_log_line() {
    let dead = dead_port();
    let mut proxy = proxy_to(&[server(dead, "")], "");
    let response = proxy.request(&get("/"));
    assert_eq!(response.status, 502, "{}", response.text());
    let line = proxy.wait_log("connect failed");
    assert!(line.contains("upstream app"), "{line}");
    assert!(line.contains(&dead.to_string()), "{line}");
}

/// A server whose accept queue is full never completes the handshake (Linux drops the
/// SYN), with `connect_timeout = "300ms"`: 504, counted as `connect_timeout`.
#[test]
fn proxy_connect_timeout_is_504() {
    // A listener with the smallest backlog that never accepts, its queue filled: further
    // connection attempts get no answer at all. The queue is full when a handshake on
    // loopback has not completed in a second (it takes microseconds when there is room).
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("bind");
    socket.listen(0).expect("listen");
    let full: SocketAddr = socket
        .local_addr()
        .expect("address")
        .as_socket()
        .expect("inet");
    let mut fillers = Vec::new();
    while let Ok(filler) = TcpStream::connect_timeout(&full, std::time::Duration::from_secs(1)) {
        fillers.push(filler);
        assert!(fillers.len() < 64, "the accept queue never filled");
    }
    let proxy = proxy_to(&[server(full, "")], "connect_timeout = \"300ms\"");
    let response = proxy.request(&get("/"));
    assert_eq!(response.status, 504, "{}", response.text());
    assert_eq!(proxy.upstream_errors(full, "connect_timeout"), 1.0);
    drop(fillers);
}

/// An upstream that accepts and reads the request but never answers, with
/// `read_timeout = "300ms"`: 504.
#[test]
fn proxy_silent_upstream_is_504_after_the_read_timeout() {
    let raw = RawServer::start("silent", never_answer);
    let proxy = proxy_to(&[server(raw.addr, "")], "read_timeout = \"300ms\"");
    let response = proxy.request(&get("/"));
    assert_eq!(response.status, 504, "{}", response.text());
    raw.next_seen();
    assert_eq!(proxy.upstream_errors(raw.addr, "read_timeout"), 1.0);
}

/// Passive health: servers [dead, alive] with `max_fails = 1`, `fail_timeout = "60s"`:
/// the first request fails over to the alive one, and from then on every request is served
/// by it without trying the dead one again: one connect error in all, and the dead one is
/// down (`asycamore_upstream_up` 0) on the admin port.
#[test]
fn proxy_passive_health_marks_a_dead_server_down() {
    let dead = dead_port();
    let alive = respond_app("alive");
    let proxy = proxy_to(
        &[server(dead, ""), server(alive.data, "")],
        "max_fails = 1\nfail_timeout = \"60s\"",
    );
    let mut client = proxy.connect();
    for i in 0..20 {
        client.send(&get("/"));
        let response = client.read_response();
        assert_eq!(
            (response.status, response.text().as_str()),
            (200, "alive"),
            "request {i}"
        );
    }
    let (dead_label, alive_label) = (dead.to_string(), alive.data.to_string());
    fn on(label: &str) -> [(&str, &str); 2] {
        [("upstream", "app"), ("server", label)]
    }
    assert_eq!(proxy.metric("asycamore_upstream_up", &on(&dead_label)), 0.0);
    assert_eq!(
        proxy.metric("asycamore_upstream_up", &on(&alive_label)),
        1.0
    );
    let connect_errors = [
        ("upstream", "app"),
        ("server", dead_label.as_str()),
        ("kind", "connect"),
    ];
    assert_eq!(
        proxy.metric("asycamore_upstream_errors_total", &connect_errors),
        1.0
    );
    assert_eq!(
        proxy.metric("asycamore_upstream_responses_total", &on(&alive_label)),
        20.0
    );
}

/// `max_connections = 1` with one request held open at the server: the next request is
/// answered 503 (and counted), and the held one completes once the server answers.
#[test]
fn proxy_max_connections_reached_is_503() {
    let raw = RawServer::start("held", answer_after_gate);
    let proxy = proxy_to(&[server(raw.addr, "max_connections = 1")], "");
    let mut held = proxy.connect();
    held.send(&get("/held"));
    raw.next_seen();
    let response = proxy.request(&get("/next"));
    assert_eq!(response.status, 503, "{}", response.text());
    assert_eq!(
        proxy.metric(
            "asycamore_upstream_unavailable_total",
            &[("upstream", "app")]
        ),
        1.0
    );
    raw.gate.open();
    let response = held.read_response();
    assert_eq!((response.status, response.text().as_str()), (200, "held"));
    assert_eq!(raw.accepted(), 1);
}

/// The proxy's routes for the reload test: `/one` to group "one" (app A), and `/two` to
/// group "two" (app B), or, when `two` is `None`, to "one" too.
fn reload_routes(a: &Node, b: Option<&Node>) -> String {
    let mut text = upstream("one", &[server(a.data, "")], "");
    text += &proxy_route("one", "/one", "one", "");
    match b {
        Some(b) => {
            text += &upstream("two", &[server(b.data, "")], "");
            text += &proxy_route("two", "/two", "two", "");
        }
        None => text += &proxy_route("two", "/two", "one", ""),
    }
    text
}

/// A reload removing an upstream group under load: a client sends requests to both routes
/// in a loop on one keep-alive connection while the config is rewritten without group
/// "two" (its route now to "one") and SIGHUP applies it. Every request gets 200; once the
/// reload line is logged, `/two` is served by app A; afterwards app B has no connection
/// from the proxy left open, and A's response counter went on from where it was.
#[test]
fn proxy_reload_removing_an_upstream_under_load() {
    const SERVER_KEYS: &str = "workers = 2";
    let (a, b) = (respond_app("A"), respond_app("B"));
    let mut proxy = Node::start(SERVER_KEYS, "", &reload_routes(&a, Some(&b)));
    let open = "asycamore_connections_open";
    // Requests counted after the reload was applied, and whether it has been.
    let applied = Arc::new(AtomicBool::new(false));
    let after = Arc::new(AtomicU64::new(0));
    let (started_tx, started) = mpsc::channel();
    let traffic = {
        let (addr, applied, after) = (proxy.data, applied.clone(), after.clone());
        std::thread::spawn(move || {
            let mut client = Client::connect(addr);
            let deadline = Instant::now() + IO_LIMIT * 3;
            let mut sent = 0u64;
            while after.load(Ordering::SeqCst) < 200 {
                assert!(Instant::now() < deadline, "traffic did not finish");
                let was_applied = applied.load(Ordering::SeqCst);
                let path = if sent % 2 == 0 { "/one" } else { "/two" };
                client.send(&get(path));
                let response = client.read_response();
                assert_eq!(response.status, 200, "request {sent} to {path}");
                let body = response.text();
                match (path, was_applied) {
                    ("/one", _) | ("/two", true) => assert_eq!(body, "A", "{path} {sent}"),
                    _ => assert!(body == "A" || body == "B", "{path} {sent}: {body:?}"),
                }
                sent += 1;
                if sent == 20 {
                    let _ = started_tx.send(());
                }
                if was_applied {
                    after.fetch_add(1, Ordering::SeqCst);
                }
            }
            sent
        })
    };
    started
        .recv_timeout(IO_LIMIT)
        .expect("traffic did not start");
    // B serves the proxy now (at least one connection from it).
    assert!(
        b.metric(open, &[]) >= 1.0,
        "no connection from the proxy to B"
    );
    let a_address = a.data.to_string();
    let a_labels = [("upstream", "one"), ("server", a_address.as_str())];
    let responses = "asycamore_upstream_responses_total";
    let a_before = proxy.metric(responses, &a_labels);
    std::fs::write(
        &proxy.process.config,
        node_config(SERVER_KEYS, "", &reload_routes(&a, None)),
    )
    .expect("rewrite config");
    proxy.signal(Signal::SIGHUP);
    proxy.wait_log("generation 2 now serving");
    applied.store(true, Ordering::SeqCst);
    let sent = traffic
        .join()
        .expect("traffic thread (see its panic above)");
    assert!(sent >= 220, "only {sent} requests");
    // Group "one" was replaced by the reload; its server's counters went on from where
    // they were (the 200 requests after it all went to A).
    let a_after = proxy.metric(responses, &a_labels);
    assert!(a_after >= a_before + 200.0, "{a_before} then {a_after}");
    wait_until("app B's connections from the proxy to close", || {
        b.metric(open, &[]) == 0.0
    });
}

/// A pooled connection the app closes while idle (its idle timeout is 200 ms) is not held
/// against the next request: a GET after the app closed it gets 200, and so does a POST
/// after the next idle close.
#[test]
fn proxy_survives_an_upstream_closing_an_idle_pooled_connection() {
    let app = Node::app(
        "[timeouts]\nidle = \"200ms\"\n\n\
         [[route]]\nname = \"hello\"\npath = \"/\"\nhandler = \"respond\"\nbody = \"fresh\"\n\n\
         [[route]]\nname = \"echo\"\npath = \"/echo\"\nhandler = \"echo\"\n",
    );
    let proxy = proxy_to(&[server(app.data, "")], "");
    let idle_closed = [("reason", "idle_timeout")];
    let closed = "asycamore_connections_closed_total";
    let response = proxy.request(&get("/"));
    assert_eq!((response.status, response.text().as_str()), (200, "fresh"));
    app.wait_metric(closed, &idle_closed, 1.0);
    let response = proxy.request(&get("/"));
    assert_eq!((response.status, response.text().as_str()), (200, "fresh"));
    app.wait_metric(closed, &idle_closed, 2.0);
    let response = proxy.request(&post("/echo", b"after idle"));
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(
        response.body.ends_with(b"after idle"),
        "{}",
        response.text()
    );
}
