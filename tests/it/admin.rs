//! The admin port with the real binary: `/metrics` after known traffic, parsed by a real
//! Prometheus text parser (`prometheus-parse`) with every counter and histogram checked
//! exactly; `/readyz` during a graceful stop; `POST /reload` with a broken file; the token;
//! POST-only mutations; the Host check; the Unix socket (no Host check, the token kept, the
//! file removed on stop); and the data port never serving admin paths.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use prometheus_parse::{Scrape, Value};
use sha2::Digest;

use crate::support::{
    Client, IO_LIMIT, Process, Response, binary, get, metric_value as value, post, scrape,
    temp_path,
};

/// The data routes of most tests here, after a `[server]` and `[admin]` on ephemeral ports.
const ROUTES: &str = r#"
[[route]]
name = "site"
exact = "/site"
methods = ["GET"]
handler = "respond"
body = "site!"

[[route]]
name = "form"
exact = "/form"
methods = ["POST"]
handler = "echo"
"#;

/// A daemon with its data and admin addresses and its config file.
struct Daemon {
    process: Process,
    data: SocketAddr,
    admin: SocketAddr,
}

impl Daemon {
    /// Starts the binary on `[server]` (ephemeral port, `workers`), `[admin]` with
    /// `admin_keys` on an ephemeral port, and `routes`.
    fn start(workers: usize, admin_keys: &str, routes: &str) -> Daemon {
        let config = temp_path("admin.toml");
        std::fs::write(&config, compose(workers, admin_keys, routes)).expect("write config");
        let mut process = Process::start(binary(), config, &[]);
        let (data, admin) = process.served_addresses();
        Daemon {
            process,
            data,
            admin,
        }
    }

    fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(i32::try_from(self.process.child.id()).expect("pid"));
        kill(pid, signal).expect("kill");
    }

    /// One request to the admin port on a connection of its own.
    fn admin(&self, method: &str, target: &str, extra_headers: &str) -> Response {
        let mut client = Client::connect(self.admin);
        client.send(
            format!(
                "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra_headers}\
                 Connection: close\r\n\r\n"
            )
            .as_bytes(),
        );
        client.read_response_to(method)
    }

    /// `/metrics`, parsed.
    fn scrape(&self) -> Scrape {
        scrape(self.admin)
    }
}

fn compose(workers: usize, admin_keys: &str, routes: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = {workers}\n\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n{admin_keys}\n{routes}"
    )
}

/// Every sample of `name` as (labels rendered, value).
fn samples(scrape: &Scrape, name: &str) -> Vec<(String, f64)> {
    let mut all: Vec<(String, f64)> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => (s.labels.to_string(), *v),
            other => panic!("{name} is not a number: {other:?}"),
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// A histogram's cumulative (le, count) pairs, its count and its sum.
fn histogram(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> (Vec<(f64, f64)>, f64, f64) {
    let buckets = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match &s.value {
            Value::Histogram(buckets) => buckets.iter().map(|b| (b.less_than, b.count)).collect(),
            other => panic!("{name} is not a histogram: {other:?}"),
        })
        .unwrap_or_else(|| panic!("no histogram {name} {labels:?}"));
    let count = value(scrape, &format!("{name}_count"), labels);
    let sum = value(scrape, &format!("{name}_sum"), labels);
    (buckets, count, sum)
}

/// The cumulative count of the bucket with upper bound `le`.
fn bucket(buckets: &[(f64, f64)], le: f64) -> f64 {
    buckets
        .iter()
        .find(|(bound, _)| *bound == le)
        .map(|(_, count)| *count)
        .unwrap_or_else(|| panic!("no bucket le={le}: {buckets:?}"))
}

fn get_close(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}

#[test]
fn metrics_count_exactly_the_traffic_sent() {
    let daemon = Daemon::start(2, "", ROUTES);

    // A: one keep-alive connection, five GETs one after another.
    let mut a = Client::connect(daemon.data);
    for _ in 0..5 {
        a.send(&get("/site"));
        let response = a.read_response();
        assert_eq!((response.status, response.text().as_str()), (200, "site!"));
    }
    // B: a pipelined batch of four in one write: two GETs and two POSTs of 2 bytes.
    let mut b = Client::connect(daemon.data);
    let batch = [
        get("/site"),
        post("/form", b"xy"),
        get("/site"),
        post("/form", b"xy"),
    ]
    .concat();
    b.send(&batch);
    for status in [200, 200, 200, 200] {
        assert_eq!(b.read_response().status, status);
    }
    // C: a POST of 3 bytes, then two requests no route matches.
    let mut c = Client::connect(daemon.data);
    c.send(&post("/form", b"abc"));
    assert_eq!(c.read_response().status, 200);
    for _ in 0..2 {
        c.send(&get_close("/missing"));
        assert_eq!(c.read_response().status, 404);
    }
    // D: a request that does not parse.
    let mut d = Client::connect(daemon.data);
    d.send(b"GET / HTTP/1.1\r\nHost: test\r\nbad header line\r\n\r\n");
    assert_eq!(d.read_response().status, 400);
    d.expect_closed();
    drop((a, b, c, d));

    // The closes reach the workers after the clients leave: poll (bounded) until all four are
    // counted.
    let deadline = Instant::now() + IO_LIMIT;
    let scrape = loop {
        let scrape = daemon.scrape();
        let closed: f64 = samples(&scrape, "asycamore_connections_closed_total")
            .iter()
            .map(|(_, v)| v)
            .sum();
        if closed >= 4.0 || Instant::now() > deadline {
            break scrape;
        }
        std::thread::sleep(Duration::from_millis(5));
    };

    assert_eq!(
        samples(&scrape, "asycamore_http_requests_total"),
        [
            ("code=\"200\",method=\"GET\",route=\"site\"".to_owned(), 7.0),
            (
                "code=\"200\",method=\"POST\",route=\"form\"".to_owned(),
                3.0
            ),
            ("code=\"404\",method=\"GET\",route=\"\"".to_owned(), 2.0),
        ]
    );
    for (route, count) in [("site", 7.0), ("form", 3.0), ("", 2.0)] {
        let (buckets, total, sum) = histogram(
            &scrape,
            "asycamore_http_request_duration_seconds",
            &[("route", route)],
        );
        assert_eq!(total, count, "{route}");
        assert_eq!(bucket(&buckets, f64::INFINITY), count, "{route}");
        assert!((0.0..10.0).contains(&sum), "{route}: {sum}");
    }
    let bytes = |name: &str, route: &str| value(&scrape, name, &[("route", route)]);
    assert_eq!(
        bytes("asycamore_http_request_body_bytes_total", "form"),
        7.0
    );
    assert_eq!(
        bytes("asycamore_http_request_body_bytes_total", "site"),
        0.0
    );
    assert_eq!(
        bytes("asycamore_http_response_body_bytes_total", "site"),
        35.0
    );

    assert_eq!(
        value(&scrape, "asycamore_connections_accepted_total", &[]),
        4.0
    );
    assert_eq!(value(&scrape, "asycamore_connections_open", &[]), 0.0);
    let closed = samples(&scrape, "asycamore_connections_closed_total");
    let nonzero: Vec<&(String, f64)> = closed.iter().filter(|(_, v)| *v > 0.0).collect();
    assert_eq!(
        nonzero,
        [
            &("reason=\"parse_error\"".to_owned(), 1.0),
            &("reason=\"peer\"".to_owned(), 3.0)
        ]
    );
    assert_eq!(closed.len(), 11, "every reason is listed: {closed:?}");

    // Requests per connection: A 5, B 4, C 3, D 0.
    let (buckets, count, sum) = histogram(&scrape, "asycamore_connection_requests", &[]);
    assert_eq!((count, sum), (4.0, 12.0));
    assert_eq!(
        [1.0, 2.0, 5.0, 10.0].map(|le| bucket(&buckets, le)),
        [1.0, 1.0, 4.0, 4.0]
    );
    // Pipeline depth: A five batches of 1, B one of 4, C three of 1; D answered nothing.
    let (buckets, count, sum) = histogram(&scrape, "asycamore_pipeline_depth", &[]);
    assert_eq!((count, sum), (9.0, 12.0));
    assert_eq!(
        [1.0, 2.0, 4.0, 8.0].map(|le| bucket(&buckets, le)),
        [8.0, 8.0, 9.0, 9.0]
    );
    let parse_errors = samples(&scrape, "asycamore_http_parse_errors_total");
    assert_eq!(parse_errors.len(), 1, "{parse_errors:?}");
    assert_eq!(parse_errors[0].1, 1.0);

    assert_eq!(
        value(
            &scrape,
            "asycamore_config_reloads_total",
            &[("result", "success")]
        ),
        0.0
    );
    assert_eq!(value(&scrape, "asycamore_config_generation", &[]), 1.0);
    assert!(
        value(
            &scrape,
            "asycamore_config_last_reload_success_timestamp_seconds",
            &[]
        ) > 1e9
    );
    assert_eq!(value(&scrape, "asycamore_ready", &[]), 1.0);
    assert_eq!(value(&scrape, "asycamore_metrics_enabled", &[]), 1.0);
    assert_eq!(value(&scrape, "asycamore_profiling_active", &[]), 0.0);
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        value(&scrape, "asycamore_build_info", &[("version", version)]),
        1.0
    );
    assert!(value(&scrape, "process_open_fds", &[]) > 0.0);
    assert!(value(&scrape, "process_resident_memory_bytes", &[]) > 0.0);
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "process_cpu_seconds_total")
    );
}

#[test]
fn metrics_off_counts_nothing() {
    let daemon = Daemon::start(1, "metrics = false", ROUTES);
    let mut client = Client::connect(daemon.data);
    client.send(&get("/site"));
    assert_eq!(client.read_response().status, 200);
    let scrape = daemon.scrape();
    assert_eq!(value(&scrape, "asycamore_metrics_enabled", &[]), 0.0);
    assert!(samples(&scrape, "asycamore_http_requests_total").is_empty());
    assert_eq!(
        value(&scrape, "asycamore_connections_accepted_total", &[]),
        0.0
    );
}

#[test]
fn readyz_turns_503_while_a_graceful_stop_drains() {
    let mut daemon = Daemon::start(1, "", ROUTES);
    assert_eq!(daemon.admin("GET", "/healthz", "").status, 200);
    // Ready before the start-up lines that `start` waited for.
    let ready = daemon.admin("GET", "/readyz", "");
    assert_eq!((ready.status, ready.text().as_str()), (200, "ready\n"));

    // A request held open (half its body sent) keeps the drain going.
    let mut held = Client::connect(daemon.data);
    held.send(b"POST /form HTTP/1.1\r\nHost: test\r\nContent-Length: 4\r\n\r\nab");
    daemon.signal(Signal::SIGTERM);
    daemon.process.wait_log("SIGTERM: stopping gracefully");
    let response = daemon.admin("GET", "/readyz", "");
    assert_eq!(
        (response.status, response.text().as_str()),
        (503, "draining\n")
    );
    assert_eq!(daemon.admin("GET", "/healthz", "").status, 200);
    let scrape = daemon.scrape();
    assert_eq!(value(&scrape, "asycamore_ready", &[]), 0.0);
    // Reloading while stopping is refused.
    assert_eq!(daemon.admin("POST", "/reload", "").status, 409);

    held.send(b"cd");
    let response = held.read_response();
    assert_eq!(response.status, 200);
    // The echo's head left before the stop, so it could not announce the close.
    held.expect_closed();
    daemon.process.wait_log("stopped");
}

#[test]
fn reload_over_the_admin_port_applies_or_reports_every_error() {
    let mut daemon = Daemon::start(1, "", ROUTES);
    let broken = ROUTES.replace("body = \"site!\"", "body = \"site!\"\nstatus = 99")
        + "\n[limits]\nmax_headers = 0\n";
    std::fs::write(&daemon.process.config, compose(1, "", &broken)).expect("rewrite");
    // GET never reloads.
    let response = daemon.admin("GET", "/reload", "");
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), Some("POST"));

    let response = daemon.admin("POST", "/reload", "");
    assert_eq!(response.status, 422, "{}", response.text());
    let text = response.text();
    assert!(text.contains("still serving generation 1"), "{text}");
    assert!(
        text.contains("route[0].status: 99 is out of range"),
        "{text}"
    );
    assert!(
        text.contains("limits.max_headers: 0 is out of range"),
        "{text}"
    );
    // The old routes keep answering.
    let mut client = Client::connect(daemon.data);
    client.send(&get("/site"));
    assert_eq!(client.read_response().text(), "site!");

    let fixed = ROUTES.replace("site!", "new site");
    std::fs::write(&daemon.process.config, compose(1, "", &fixed)).expect("rewrite");
    let response = daemon.admin("POST", "/reload", "");
    assert_eq!(
        (response.status, response.text().as_str()),
        (200, "reloaded: generation 2\n")
    );
    client.send(&get("/site"));
    assert_eq!(client.read_response().text(), "new site");
    daemon.process.wait_log("POST /reload: reload #2");

    let scrape = daemon.scrape();
    assert_eq!(
        value(
            &scrape,
            "asycamore_config_reloads_total",
            &[("result", "success")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &scrape,
            "asycamore_config_reloads_total",
            &[("result", "failure")]
        ),
        1.0
    );
    assert_eq!(value(&scrape, "asycamore_config_generation", &[]), 2.0);

    let config = daemon.admin("GET", "/config", "");
    assert_eq!(config.status, 200);
    let text = config.text();
    assert!(text.contains("# generation: 2\n"), "{text}");
    assert!(text.contains("body = \"new site\""), "{text}");
    let digest = sha2::Sha256::digest(std::fs::read(&daemon.process.config).expect("read"));
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert!(text.contains(&format!("# sha256: {hex}\n")), "{text}");
}

#[test]
fn a_token_guards_everything_but_health_and_local_metrics() {
    let daemon = Daemon::start(1, "token = \"s3cret-token\"", ROUTES);
    for path in ["/config", "/debug/connections", "/profiling"] {
        let response = daemon.admin("GET", path, "");
        assert_eq!(response.status, 401, "{path}");
        assert_eq!(
            response.header("www-authenticate"),
            Some("Bearer realm=\"asycamore-admin\""),
            "{path}"
        );
        let wrong = daemon.admin("GET", path, "Authorization: Bearer s3cret-tokeN\r\n");
        assert_eq!(wrong.status, 401, "{path}");
        let right = daemon.admin("GET", path, "Authorization: Bearer s3cret-token\r\n");
        assert_eq!(right.status, 200, "{path}");
    }
    assert_eq!(daemon.admin("POST", "/reload", "").status, 401);
    assert_eq!(daemon.admin("POST", "/profiling/start", "").status, 401);
    // A scraper on the same host needs no token (the listener is loopback).
    assert_eq!(daemon.admin("GET", "/metrics", "").status, 200);
    assert_eq!(daemon.admin("GET", "/healthz", "").status, 200);
    assert_eq!(daemon.admin("GET", "/readyz", "").status, 200);
    let config = daemon.admin("GET", "/config", "Authorization: bearer s3cret-token\r\n");
    assert!(!config.text().contains("s3cret"), "{}", config.text());
    assert!(config.text().contains("token = \"<redacted>\""));
}

#[test]
fn mutations_are_post_only_and_hosts_are_checked() {
    let daemon = Daemon::start(1, "", ROUTES);
    for path in ["/reload", "/profiling/start", "/profiling/stop"] {
        let response = daemon.admin("GET", path, "");
        assert_eq!(response.status, 405, "{path}");
        assert_eq!(response.header("allow"), Some("POST"), "{path}");
    }
    let response = daemon.admin("POST", "/metrics", "");
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), Some("GET, HEAD"));
    assert_eq!(daemon.admin("GET", "/nothing", "").status, 404);

    // DNS rebinding: a page on evil.example resolving to 127.0.0.1.
    let mut client = Client::connect(daemon.admin);
    client.send(b"GET /metrics HTTP/1.1\r\nHost: evil.example:9180\r\n\r\n");
    assert_eq!(client.read_response().status, 403);
    for host in ["localhost:9180", "[::1]", "127.0.0.1"] {
        let mut client = Client::connect(daemon.admin);
        client.send(format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
        assert_eq!(client.read_response().status, 200, "{host}");
    }
}

/// A page on another origin can make a local browser send a form POST to `/reload` or an
/// `<img>` GET of `/debug/pprof/profile`: refused by what browsers say about a request's
/// origin, and by the form content type a POST from a form always carries; `curl` and
/// `go tool pprof`, which send none of that, are served. Nothing refused was carried out.
#[test]
fn requests_a_page_elsewhere_can_send_are_refused() {
    let daemon = Daemon::start(1, "", ROUTES);
    let reloads = |daemon: &Daemon| {
        samples(&daemon.scrape(), "asycamore_config_reloads_total")
            .iter()
            .map(|(_, value)| value)
            .sum::<f64>()
    };
    let before = reloads(&daemon);
    let refused = [
        ("POST", "/reload", "Origin: http://evil.example\r\n"),
        ("POST", "/reload", "Origin: null\r\n"),
        (
            "POST",
            "/reload",
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n",
        ),
        (
            "POST",
            "/reload",
            "Content-Type: text/plain\r\nContent-Length: 0\r\n",
        ),
        ("POST", "/profiling/start", "Sec-Fetch-Site: cross-site\r\n"),
        (
            "GET",
            "/debug/pprof/profile?seconds=1",
            "Sec-Fetch-Site: cross-site\r\n",
        ),
        (
            "GET",
            "/debug/pprof/profile?seconds=1",
            "Referer: http://evil.example/cat.html\r\n",
        ),
        ("GET", "/metrics", "Sec-Fetch-Site: same-site\r\n"),
    ];
    for (method, target, headers) in refused {
        let response = daemon.admin(method, target, headers);
        assert_eq!(response.status, 403, "{method} {target} {headers:?}");
    }
    assert_eq!(reloads(&daemon), before, "a refused reload ran");
    let profiling = daemon.admin("GET", "/profiling", "");
    assert!(
        !profiling.text().contains("\"running\":true"),
        "a refused profile started: {}",
        profiling.text()
    );
    // What tools and the admin port's own pages send.
    for (method, target, headers) in [
        ("POST", "/reload", ""),
        (
            "POST",
            "/reload",
            "Content-Type: application/json\r\nContent-Length: 2\r\n",
        ),
        ("GET", "/metrics", "Sec-Fetch-Site: same-origin\r\n"),
        ("GET", "/metrics", "Sec-Fetch-Site: none\r\n"),
        ("GET", "/metrics", "Origin: http://127.0.0.1\r\n"),
    ] {
        let mut client = Client::connect(daemon.admin);
        let body = if headers.contains("Content-Length: 2") {
            "{}"
        } else {
            ""
        };
        client.send(
            format!(
                "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Connection: close\r\n\r\n{body}"
            )
            .as_bytes(),
        );
        let response = client.read_response_to(method);
        assert_eq!(
            response.status,
            200,
            "{method} {target} {headers:?}: {}",
            response.text()
        );
    }
    assert_eq!(reloads(&daemon), before + 2.0);
}

#[test]
fn connections_are_listed_with_their_state() {
    let daemon = Daemon::start(1, "", ROUTES);
    let mut idle = Client::connect(daemon.data);
    idle.send(&get("/site"));
    assert_eq!(idle.read_response().status, 200);
    let mut reading = Client::connect(daemon.data);
    reading.send(
        b"POST /form HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n",
    );
    let deadline = Instant::now() + IO_LIMIT;
    loop {
        let text = daemon
            .admin("GET", "/debug/connections?format=text", "")
            .text();
        if text.contains("state=\"reading body / chunk 1\"") {
            assert!(text.starts_with("2 connection(s)\n"), "{text}");
            assert!(text.contains("state=\"idle\" requests=1"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "{text}");
        std::thread::sleep(Duration::from_millis(5));
    }
    let json = daemon.admin("GET", "/debug/connections", "");
    assert_eq!(json.header("content-type"), Some("application/json"));
    assert!(
        json.text().starts_with("{\"count\":2,\"connections\":[{"),
        "{}",
        json.text()
    );
}

#[test]
fn the_data_port_never_serves_admin_paths() {
    let daemon = Daemon::start(
        1,
        "",
        "[[route]]\nname = \"all\"\npath = \"/\"\nhandler = \"respond\"\nbody = \"data\"\n",
    );
    for path in [
        "/metrics",
        "/healthz",
        "/readyz",
        "/config",
        "/debug/connections",
    ] {
        let mut client = Client::connect(daemon.data);
        client.send(&get(path));
        let response = client.read_response();
        assert_eq!(
            (response.status, response.text().as_str()),
            (200, "data"),
            "{path}"
        );
    }
    let mut client = Client::connect(daemon.data);
    client.send(&post("/reload", b""));
    assert_eq!(client.read_response().text(), "data");
}

/// One request over the Unix socket at `socket` (connection closed after it): status and
/// body.
fn unix_request(socket: &std::path::Path, head: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket).expect("connect");
    stream.set_read_timeout(Some(IO_LIMIT)).expect("timeout");
    stream.write_all(head.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or_else(String::new, |(_, body)| body.to_owned());
    (status, body)
}

#[test]
fn the_unix_socket_serves_metrics_and_health_without_a_host_check() {
    let dir = temp_path("unix");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let socket = dir.join("admin.sock");
    let keys = format!("unix_socket = \"{}\"", socket.display());
    let mut daemon = Daemon::start(1, &keys, ROUTES);
    assert!(
        daemon
            .process
            .wait_log("admin port on unix:")
            .contains(&socket.display().to_string())
    );

    let get = |target: &str, host: &str| {
        unix_request(
            &socket,
            &format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
    };
    let (status, body) = get("/healthz", "localhost");
    assert_eq!(status, 200, "{body}");
    // Pipelined, and with a Host the TCP listener refuses: there is no network peer.
    let (status, body) = unix_request(
        &socket,
        "GET /healthz HTTP/1.1\r\nHost: evil.example\r\n\r\n\
         GET /metrics HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("HTTP/1.1 200"), "{body}");
    let scrape = Scrape::parse(
        body.split_once("\r\n\r\n")
            .map_or("", |(_, metrics)| metrics)
            .lines()
            .map(|line| Ok(line.to_owned())),
    )
    .expect("parse /metrics");
    assert!(!scrape.samples.is_empty());
    let (status, _) = get("/metrics", "localhost");
    assert_eq!(status, 200);
    // The TCP listener still checks Host.
    let mut client = Client::connect(daemon.admin);
    client.send(b"GET /metrics HTTP/1.1\r\nHost: evil.example\r\n\r\n");
    assert_eq!(client.read_response().status, 403);

    // A graceful stop removes the socket file.
    daemon.signal(Signal::SIGTERM);
    let status = daemon.process.child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    assert!(!socket.exists(), "the socket file outlived the daemon");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_unix_socket_keeps_the_token_check() {
    let dir = temp_path("unix-token");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let socket = dir.join("admin.sock");
    let keys = format!(
        "token = \"s3cret-token\"\nunix_socket = \"{}\"",
        socket.display()
    );
    let mut daemon = Daemon::start(1, &keys, ROUTES);
    daemon.process.wait_log("admin port on unix:");
    let request = |auth: &str| {
        unix_request(
            &socket,
            &format!("GET /config HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"),
        )
        .0
    };
    assert_eq!(request(""), 401);
    assert_eq!(request("Authorization: Bearer wrong\r\n"), 401);
    assert_eq!(request("Authorization: Bearer s3cret-token\r\n"), 200);
    for path in ["/healthz", "/metrics"] {
        let (status, _) = unix_request(
            &socket,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(status, 200, "{path}");
    }
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The data plane's workers and the admin port's are told apart by name (`top -H`,
/// profiles): `worker-N` and `admin-0`, never two `worker-0`.
#[test]
fn threads_are_named_by_role() {
    let daemon = Daemon::start(2, "", ROUTES);
    let mut names: Vec<String> =
        std::fs::read_dir(format!("/proc/{}/task", daemon.process.child.id()))
            .expect("task list")
            .flatten()
            .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
            .map(|name| name.trim().to_owned())
            .filter(|name| name.starts_with("worker-") || name.starts_with("admin-"))
            .collect();
    names.sort();
    assert_eq!(names, ["admin-0", "worker-0", "worker-1"]);
}
