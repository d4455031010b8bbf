//! Request timing on the real binary: a request served within one turn of the loop is timed
//! (not 0) in the duration histogram and the access log, and a request kept waiting is timed
//! across its wait. Every bound comes from what the test measured around the events it
//! caused, never from a guess of how fast the machine is.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use crate::logging::{assert_within, json_fields};
use crate::proxy::Node;
use crate::support::{Client, IO_LIMIT, metric_value, scrape, temp_path};

const DURATION_SUM: &str = "asycamore_http_request_duration_seconds_sum";
/// How long the tests keep a request waiting (the bounds checked are what they measured).
const WAIT: Duration = Duration::from_millis(100);

/// A daemon with metrics and a JSON access log in `log`, `site` (respond) and `echo` routes,
/// and `extra` (more routes, upstreams).
fn start(log: &Path, extra: &str) -> Node {
    Node::start(
        "",
        "",
        &format!(
            "[access_log]\nenabled = true\nfile = \"{}\"\nformat = \"json\"\n\
             flush_interval = \"20ms\"\n\n\
             [[route]]\nname = \"site\"\nexact = \"/site\"\nhandler = \"respond\"\n\
             body = \"site!\"\n\n\
             [[route]]\nname = \"echo\"\nexact = \"/echo\"\nhandler = \"echo\"\n\n{extra}",
            log.display()
        ),
    )
}

/// Polls (bounded) until `path` holds `count` lines; returns them as JSON fields.
fn wait_for_lines(path: &Path, count: usize) -> Vec<Vec<(String, String)>> {
    let deadline = Instant::now() + IO_LIMIT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= count {
            return text.lines().map(json_fields).collect();
        }
        assert!(Instant::now() < deadline, "{count} lines in {text:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn field<'a>(fields: &'a [(String, String)], key: &str) -> &'a str {
    &fields
        .iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("no {key} in {fields:?}"))
        .1
}

fn micros(fields: &[(String, String)], key: &str) -> u128 {
    field(fields, key)
        .parse()
        .unwrap_or_else(|_| panic!("{key}: {fields:?}"))
}

/// Keep-alive GETs answered within one turn each: the histogram's sum and every line's
/// duration are above 0 and within what the client measured around its requests.
#[test]
fn requests_served_in_one_turn_are_timed_above_zero() {
    const REQUESTS: usize = 5;
    let log = temp_path("timing-one-turn.log");
    let node = start(&log, "");
    let before = SystemTime::now();
    let mut client = Client::connect(node.data);
    // Request i is sent at `times[i]` and its response read at `times[i + 1]`.
    let mut times = vec![Instant::now()];
    for _ in 0..REQUESTS {
        client.send(b"GET /site HTTP/1.1\r\nHost: Example.TEST:8080\r\n\r\n");
        assert_eq!(client.read_response().status, 200);
        times.push(Instant::now());
    }
    let after = SystemTime::now();
    let lines = wait_for_lines(&log, REQUESTS);
    let sum = metric_value(&scrape(node.admin), DURATION_SUM, &[("route", "site")]);
    times.push(Instant::now());
    // The server reads its clock after the write that sent a response, possibly after the
    // client has it (its thread can be preempted in between), but before it serves the next
    // request, or, for the last, before the line and the scrape above saw it.
    let limit = |i: usize| times[(i + 2).min(REQUESTS + 1)] - times[i];
    let mut total_limit = Duration::ZERO;
    for (i, fields) in lines.iter().enumerate() {
        let line = format!("{fields:?}");
        let duration = micros(fields, "duration_us");
        assert!(0 < duration && duration <= limit(i).as_micros(), "{line}");
        total_limit += limit(i);
        assert_eq!(field(fields, "host"), "Example.TEST", "{line}");
        assert_eq!(field(fields, "upstream"), "null", "{line}");
        let time = humantime::parse_rfc3339(field(fields, "time")).expect("time");
        assert_within(time, before, after, &line);
    }
    assert!(
        0.0 < sum && sum <= total_limit.as_secs_f64(),
        "duration sum {sum} s for {REQUESTS} requests, at most {total_limit:?}"
    );
    let _ = std::fs::remove_file(log);
}

/// A body sent in two parts: the head (with `Expect: 100-continue`), then, once the `100`
/// has arrived (the server has the head) and the test has waited, the body. The request is
/// timed at least from the `100`'s arrival to the body's sending.
#[test]
fn a_request_waiting_for_its_body_is_timed_across_the_wait() {
    let log = temp_path("timing-body.log");
    let node = start(&log, "");
    let mut client = Client::connect(node.data);
    client.send(
        b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n\
          Expect: 100-continue\r\n\r\n",
    );
    let (status, _) = client.read_head();
    assert_eq!(status, 100);
    let head_seen = Instant::now();
    std::thread::sleep(WAIT);
    let waited = head_seen.elapsed();
    client.send(b"ping");
    let response = client.read_response_to("POST");
    assert_eq!(response.status, 200);
    assert!(
        response.body.ends_with(b"\r\n\r\nping"),
        "echoed head and body"
    );
    let lines = wait_for_lines(&log, 1);
    let duration = micros(&lines[0], "duration_us");
    assert!(
        waited.as_micros() <= duration,
        "timed {duration} us; the test waited {waited:?} between the 100 and the body: {lines:?}"
    );
    let sum = metric_value(&scrape(node.admin), DURATION_SUM, &[("route", "echo")]);
    assert!(waited.as_secs_f64() <= sum, "{sum} s < {waited:?}");
    let _ = std::fs::remove_file(log);
}

/// A proxied request whose upstream (this test) answers only when told: the line names the
/// upstream server, and both the upstream's time and the request's cover the wait between
/// the request reaching the upstream and the test releasing the answer.
#[test]
fn a_proxied_request_logs_its_upstream_and_its_time() {
    let upstream = TcpListener::bind("127.0.0.1:0").expect("bind");
    let upstream_addr = upstream.local_addr().unwrap();
    let (arrived_tx, arrived) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let (stream, _) = upstream.accept().expect("accept");
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).expect("read") > 2 {
            line.clear();
        }
        arrived_tx.send(Instant::now()).unwrap();
        release_rx.recv().unwrap();
        (&stream)
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            .unwrap();
    });
    let log = temp_path("timing-proxy.log");
    let node = start(
        &log,
        &format!(
            "[[upstream]]\nname = \"app\"\nservers = [{{ address = \"{upstream_addr}\" }}]\n\n\
             [[route]]\nname = \"up\"\npath = \"/up\"\nhandler = \"proxy\"\nupstream = \"app\"\n"
        ),
    );
    let mut client = Client::connect(node.data);
    client.send(b"GET /up/x HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let reached = arrived
        .recv_timeout(IO_LIMIT)
        .expect("the request reached the upstream");
    std::thread::sleep(WAIT);
    let waited = reached.elapsed();
    release.send(()).unwrap();
    let response = client.read_response();
    assert_eq!((response.status, &response.body[..]), (200, &b"ok"[..]));
    server.join().unwrap();
    let lines = wait_for_lines(&log, 1);
    let fields = &lines[0];
    assert_eq!(
        field(fields, "upstream"),
        upstream_addr.to_string(),
        "{fields:?}"
    );
    let upstream_time = micros(fields, "upstream_time_us");
    let duration = micros(fields, "duration_us");
    assert!(
        waited.as_micros() <= upstream_time && upstream_time <= duration,
        "waited {waited:?}; upstream {upstream_time} us, request {duration} us: {fields:?}"
    );
    let _ = std::fs::remove_file(log);
}
