//! The reverse proxy against RFC 9110 and RFC 9112, the proxy defects of issue 15: the real
//! binary in front of a raw TCP upstream written here, so each test sees the exact bytes
//! that cross the proxy in each direction. Every test names the RFC section it checks.
//!
//! Every wait is for the event itself (a request the upstream read, a response the client
//! read, a log line); every blocking read is bounded by `IO_LIMIT`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use crate::proxy::{Node, proxy_route, server, upstream};
use crate::support::{IO_LIMIT, get};

/// One upstream connection as a test's behaviour sees it: reads request heads and bodies
/// as raw text, reports each request it read, writes raw bytes.
pub struct Upstream {
    reader: BufReader<TcpStream>,
    seen: mpsc::Sender<String>,
}

impl Upstream {
    /// Reads one request head (up to and with its blank line); `None` at the end of the
    /// stream. Not reported: see [`Upstream::report`].
    pub fn head(&mut self) -> Option<String> {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            head.push_str(&line);
            if line == "\r\n" {
                return Some(head);
            }
        }
    }

    /// Reads a chunked body to its end, trailers included, as the raw text sent.
    pub fn chunked_body(&mut self) -> Option<String> {
        let mut body = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            body.push_str(&line);
            let size = usize::from_str_radix(line.trim_end().split(';').next()?, 16).ok()?;
            if size == 0 {
                break;
            }
            let mut data = vec![0; size + 2];
            self.reader.read_exact(&mut data).ok()?;
            body.push_str(&String::from_utf8_lossy(&data));
        }
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            body.push_str(&line);
            if line == "\r\n" {
                return Some(body);
            }
        }
    }

    /// Reads a request head (and its chunked body, if it has one) and reports it all.
    pub fn request(&mut self) -> Option<String> {
        let mut request = self.head()?;
        if request
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked\r\n")
        {
            request += &self.chunked_body()?;
        }
        self.report(&request);
        Some(request)
    }

    /// Tells the test about `what`.
    pub fn report(&self, what: &str) {
        let _ = self.seen.send(what.to_owned());
    }

    pub fn write(&mut self, bytes: &[u8]) -> bool {
        self.reader.get_mut().write_all(bytes).is_ok()
    }

    /// Waits until the proxy closes the connection (or `IO_LIMIT` passes).
    pub fn drain(&mut self) {
        let _ = std::io::copy(&mut self.reader, &mut std::io::sink());
    }
}

/// A raw upstream on 127.0.0.1: each accepted connection runs `behaviour` on its own thread.
pub struct RawUpstream {
    pub addr: SocketAddr,
    seen: mpsc::Receiver<String>,
    accepted: Arc<AtomicUsize>,
}

impl RawUpstream {
    pub fn start(behaviour: impl Fn(&mut Upstream) + Send + Sync + 'static) -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind raw upstream");
        let addr = listener.local_addr().expect("address");
        let (tx, seen) = mpsc::channel();
        let accepted = Arc::new(AtomicUsize::new(0));
        let behaviour = Arc::new(behaviour);
        {
            let accepted = accepted.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    stream.set_read_timeout(Some(IO_LIMIT)).expect("timeout");
                    let mut conn = Upstream {
                        reader: BufReader::new(stream),
                        seen: tx.clone(),
                    };
                    let behaviour = behaviour.clone();
                    std::thread::spawn(move || behaviour(&mut conn));
                }
            });
        }
        RawUpstream {
            addr,
            seen,
            accepted,
        }
    }

    /// The next thing the upstream reported (failing after `IO_LIMIT`).
    pub fn next_seen(&self) -> String {
        self.seen
            .recv_timeout(IO_LIMIT)
            .expect("the raw upstream read no request")
    }

    /// Whatever else it reported, without waiting.
    pub fn more_seen(&self) -> Vec<String> {
        self.seen.try_iter().collect()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Behaviour: answers each request with `response`, on one keep-alive connection.
fn answer_each(response: &'static [u8]) -> impl Fn(&mut Upstream) + Send + Sync + 'static {
    move |conn: &mut Upstream| {
        while conn.request().is_some() {
            if !conn.write(response) {
                return;
            }
        }
    }
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// A proxy daemon forwarding every path to the raw upstream (`upstream_keys` on the group,
/// `route_keys` on the route, `rest` before it all).
fn proxy_with(raw: &RawUpstream, upstream_keys: &str, route_keys: &str, rest: &str) -> Node {
    Node::start(
        "",
        "",
        &format!(
            "{rest}\n{}{}",
            upstream("app", &[server(raw.addr, "")], upstream_keys),
            proxy_route("all", "/", "app", route_keys)
        ),
    )
}

/// The values of the field lines named `name` in a request head, in order.
fn field_values<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

/// RFC 9112 3.2.2: a server receiving an absolute-form target MUST ignore the received
/// `Host` and use the target's authority. Routed to the `public.test` route by the target,
/// the request reaches the upstream with `Host: public.test` (port kept) and
/// `Forwarded: host=public.test`, never the client's `Host: admin.test`; an origin-form
/// request for `admin.test` is still refused (no route).
#[test]
fn proxy_absolute_form_forwards_the_target_authority_not_host_rfc9112_3_2_2() {
    let raw = RawUpstream::start(answer_each(OK));
    let proxy = Node::start(
        "",
        "",
        &format!(
            "{}[[route]]\nname = \"public\"\nhost = \"public.test\"\npath = \"/\"\n\
             handler = \"proxy\"\nupstream = \"app\"\nproxy_host = \"keep\"\n",
            upstream("app", &[server(raw.addr, "")], "")
        ),
    );
    let mut client = proxy.connect();
    for (target, authority, forwarded_host) in [
        ("http://public.test/x", "public.test", "host=public.test;"),
        (
            "http://public.test:8080/x",
            "public.test:8080",
            "host=\"public.test:8080\";",
        ),
    ] {
        client.send(format!("GET {target} HTTP/1.1\r\nHost: admin.test\r\n\r\n").as_bytes());
        let response = client.read_response();
        assert_eq!((response.status, response.text().as_str()), (200, "ok"));
        let head = raw.next_seen();
        assert!(head.starts_with("GET /x HTTP/1.1\r\n"), "{head}");
        assert_eq!(field_values(&head, "host"), [authority], "{head}");
        let forwarded = field_values(&head, "forwarded");
        assert!(forwarded[0].contains(forwarded_host), "{head}");
        assert!(!head.contains("admin.test"), "{head}");
    }
    client.send(b"GET /x HTTP/1.1\r\nHost: admin.test\r\n\r\n");
    assert_eq!(client.read_response().status, 404);
    assert!(raw.more_seen().is_empty());
}

/// RFC 9110 5.3: a proxy MUST NOT change the order of field line values. A client's two
/// `X-Forwarded-For` lines (1.1.1.1 then 2.2.2.2) and two `Forwarded` lines reach the
/// upstream as one line each, in the order received, with the proxy's entry last.
#[test]
fn proxy_combines_repeated_forwarding_lines_in_order_rfc9110_5_3() {
    let raw = RawUpstream::start(answer_each(OK));
    let proxy = proxy_with(&raw, "", "", "");
    let response = proxy.request(
        b"GET /xff HTTP/1.1\r\nHost: test\r\nX-Forwarded-For: 1.1.1.1\r\n\
          Forwarded: for=1.1.1.1\r\nAccept: */*\r\nX-Forwarded-For: 2.2.2.2\r\n\
          Forwarded: for=2.2.2.2;proto=https\r\n\r\n",
    );
    assert_eq!(response.status, 200);
    let head = raw.next_seen();
    assert_eq!(
        field_values(&head, "x-forwarded-for"),
        ["1.1.1.1, 2.2.2.2, 127.0.0.1"],
        "{head}"
    );
    assert_eq!(
        field_values(&head, "forwarded"),
        ["for=1.1.1.1, for=2.2.2.2;proto=https, for=127.0.0.1;host=test;proto=http"],
        "{head}"
    );
}

/// RFC 9110 7.6.3: a proxy MUST send `Via` in forwarded requests and SHOULD in relayed
/// responses, appended to the list it received (in order), with the received protocol's
/// version. `[server] via` names it for every group, a group's own `via` overrides that,
/// and `via = ""` turns it off.
#[test]
fn proxy_adds_via_to_requests_and_responses_rfc9110_7_6_3() {
    const VIA_OK: &[u8] =
        b"HTTP/1.1 200 OK\r\nVia: 1.0 cache-1\r\nContent-Length: 2\r\nVia: 1.1 cache-2\r\n\r\nok";
    let raws = [
        RawUpstream::start(answer_each(VIA_OK)),
        RawUpstream::start(answer_each(VIA_OK)),
        RawUpstream::start(answer_each(VIA_OK)),
    ];
    let mut routes = String::new();
    for (i, (name, keys)) in [
        ("own", "via = \"inner\""),
        ("global", ""),
        ("off", "via = \"\""),
    ]
    .into_iter()
    .enumerate()
    {
        routes += &upstream(name, &[server(raws[i].addr, "")], keys);
        routes += &proxy_route(name, &format!("/{name}"), name, "");
    }
    let proxy = Node::start("via = \"edge-7\"", "", &routes);
    let mut client = proxy.connect();
    for (i, (path, version, ours)) in [
        ("/own", "1.1", Some("1.1 inner")),
        ("/global", "1.1", Some("1.1 edge-7")),
        ("/global", "1.0", Some("1.0 edge-7")),
        ("/off", "1.1", None),
    ]
    .into_iter()
    .enumerate()
    {
        let raw = &raws[[0, 1, 1, 2][i]];
        let mut client_10;
        let client = if version == "1.0" {
            client_10 = proxy.connect();
            &mut client_10
        } else {
            &mut client
        };
        client.send(
            format!(
                "GET {path} HTTP/{version}\r\nHost: test\r\nVia: 1.1 a, 1.0 b\r\nVia: 1.1 c\r\n\r\n"
            )
            .as_bytes(),
        );
        let response = client.read_response();
        assert_eq!(response.status, 200, "{path}");
        let head = raw.next_seen();
        let mut want_request = vec!["1.1 a, 1.0 b", "1.1 c"];
        let mut want_response = vec!["1.0 cache-1", "1.1 cache-2"];
        if let Some(ours) = ours {
            want_request.push(ours);
            // The response was received as HTTP/1.1, whatever the client speaks.
            want_response.push(if ours.ends_with("inner") {
                "1.1 inner"
            } else {
                "1.1 edge-7"
            });
        }
        assert_eq!(
            field_values(&head, "via"),
            want_request,
            "{path} {version}: {head}"
        );
        let via: Vec<&str> = response
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("via"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(
            via, want_response,
            "{path} {version}: {:?}",
            response.headers
        );
    }
}

/// RFC 9110 6.5.1-6.5.2: fields that control framing, routing, authentication, forwarding
/// or the response are not allowed in trailers and must not be merged into the head: the
/// proxy drops them from request trailers (toward the upstream) and response trailers
/// (toward the client), and relays the allowed ones (`X-Checksum`, `Server-Timing`).
#[test]
fn proxy_drops_trailers_that_control_the_message_rfc9110_6_5_1() {
    let raw = RawUpstream::start(answer_each(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n\
          2\r\nok\r\n0\r\nX-Checksum: up\r\nSet-Cookie: sid=1\r\nContent-Length: 99\r\n\
          Server-Timing: db;dur=5\r\nLocation: /evil\r\nCache-Control: public\r\n\r\n",
    ));
    let proxy = proxy_with(&raw, "", "", "");
    let mut client = proxy.connect();
    client.send(
        b"POST /t HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n\
          3\r\nabc\r\n0\r\nX-Checksum: down\r\nX-Forwarded-For: 6.6.6.6\r\n\
          Content-Length: 5\r\nTransfer-Encoding: chunked\r\nHost: admin.test\r\n\
          Authorization: Basic eDp5\r\nIf-Match: *\r\n\r\n",
    );
    let response = client.read_response();
    assert_eq!((response.status, response.text().as_str()), (200, "ok"));
    let request = raw.next_seen();
    let (head, body) = request.split_once("\r\n\r\n").expect("a head and a body");
    assert!(
        !head.contains("6.6.6.6") && !head.contains("admin.test"),
        "{head}"
    );
    assert_eq!(
        body, "3\r\nabc\r\n0\r\nX-Checksum: down\r\n\r\n",
        "{request}"
    );
    assert_eq!(
        response.trailers,
        [
            ("X-Checksum".to_owned(), "up".to_owned()),
            ("Server-Timing".to_owned(), "db;dur=5".to_owned())
        ],
        "{:?}",
        response.headers
    );
    // The connection still serves (nothing was mis-framed on either side).
    client.send(&get("/after"));
    assert_eq!(client.read_response().status, 200);
}

/// Behaviour: answers `/warm` at once; reads any other request and never answers it
/// (holds the connection until the proxy closes it).
fn answer_warm_then_hang(conn: &mut Upstream) {
    while let Some(request) = conn.request() {
        if !request.starts_with("GET /warm ") {
            conn.drain();
            return;
        }
        if !conn.write(OK) {
            return;
        }
    }
}

/// A GET whose response timed out is not sent again (RFC 9110 9.2.2 allows retrying an
/// idempotent request, but the upstream may already be acting on it, and the same server
/// gains nothing from a second copy): with one server, on a pooled connection (a warm-up
/// request first) as on a fresh one, the upstream reads the request exactly once and the
/// client gets 504 after one `read_timeout`, counted once as `read_timeout`.
#[test]
fn proxy_read_timeout_is_not_retried_on_the_same_server_rfc9110_9_2_2() {
    for warm in [true, false] {
        let raw = RawUpstream::start(answer_warm_then_hang);
        let proxy = proxy_with(&raw, "read_timeout = \"300ms\"", "", "");
        let mut client = proxy.connect();
        if warm {
            client.send(&get("/warm"));
            assert_eq!(client.read_response().status, 200);
            assert!(raw.next_seen().starts_with("GET /warm "));
        }
        client.send(&get("/slow"));
        let response = client.read_response();
        assert_eq!(response.status, 504, "warm {warm}: {}", response.text());
        assert!(raw.next_seen().starts_with("GET /slow "), "warm {warm}");
        assert!(raw.more_seen().is_empty(), "warm {warm}: sent again");
        assert_eq!(raw.accepted(), 1, "warm {warm}");
        assert_eq!(
            proxy.upstream_errors(raw.addr, "read_timeout"),
            1.0,
            "warm {warm}"
        );
        assert_eq!(
            proxy.metric("asycamore_upstream_retries_total", &[("upstream", "app")]),
            0.0,
            "warm {warm}"
        );
    }
}

/// Behaviour: reads a request, reports it, and never answers.
fn hang(conn: &mut Upstream) {
    if conn.request().is_some() {
        conn.drain();
    }
}

/// `next_upstream` (nginx's `proxy_next_upstream`): by default a request that reached a
/// server and timed out goes to no other server (one of two silent servers sees the GET);
/// with `"timeout"` the GET goes to the other server, never the same one twice, and
/// `next_upstream_tries = 1` stops that again; a POST is not sent twice without
/// `"non_idempotent"` (RFC 9110 9.2.2), and is with it.
#[test]
fn proxy_next_upstream_retries_only_on_another_server_as_configured_rfc9110_9_2_2() {
    use crate::support::post;
    let cases: [(&str, bool, usize); 5] = [
        ("", false, 1),
        ("next_upstream = [\"connect\", \"timeout\"]", false, 2),
        (
            "next_upstream = [\"timeout\"]\nnext_upstream_tries = 1",
            false,
            1,
        ),
        ("next_upstream = [\"timeout\"]", true, 1),
        ("next_upstream = [\"timeout\", \"non_idempotent\"]", true, 2),
    ];
    for (keys, is_post, want) in cases {
        let raws = [RawUpstream::start(hang), RawUpstream::start(hang)];
        let proxy = Node::start(
            "",
            "",
            &format!(
                "{}{}",
                upstream(
                    "app",
                    &[server(raws[0].addr, ""), server(raws[1].addr, "")],
                    &format!("read_timeout = \"200ms\"\n{keys}")
                ),
                proxy_route("all", "/", "app", "")
            ),
        );
        let request = if is_post {
            post("/p", b"once")
        } else {
            get("/g")
        };
        let response = proxy.request(&request);
        assert_eq!(response.status, 504, "{keys:?} post {is_post}");
        // The proxy's count of attempts that timed out, per server: final once the client
        // has its answer. Each such attempt reached its server, which reports reading it;
        // a server the proxy never tried has no connection from it.
        let timeouts: Vec<f64> = raws
            .iter()
            .map(|raw| proxy.upstream_errors(raw.addr, "read_timeout"))
            .collect();
        assert_eq!(
            timeouts.iter().sum::<f64>(),
            want as f64,
            "{keys:?} post {is_post}: {timeouts:?}"
        );
        for (raw, timeouts) in raws.iter().zip(&timeouts) {
            assert!(*timeouts <= 1.0, "{keys:?}: a server was tried twice");
            if *timeouts == 1.0 {
                raw.next_seen();
                assert_eq!(raw.accepted(), 1, "{keys:?}");
            } else {
                assert_eq!(raw.accepted(), 0, "{keys:?}");
            }
        }
    }
}

/// `data` gzip-coded (`members` gzip members, each all of `data`).
fn gzipped(data: &[u8], members: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..members {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).expect("gzip");
        out.extend(encoder.finish().expect("gzip"));
    }
    out
}

/// `body` as chunks of at most 1000 bytes, the last chunk and `trailers`.
fn chunked(body: &[u8], trailers: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in body.chunks(1000) {
        out.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend(chunk);
        out.extend(b"\r\n");
    }
    out.extend(format!("0\r\n{trailers}\r\n").as_bytes());
    out
}

/// A raw upstream answering every request with `response` (then closing the connection
/// if `response` says `Connection: close`).
fn answering(response: Vec<u8>) -> RawUpstream {
    let close = response
        .windows(19)
        .any(|w| w.eq_ignore_ascii_case(b"connection: close\r\n"));
    RawUpstream::start(move |conn: &mut Upstream| {
        while conn.request().is_some() {
            if !conn.write(&response) || close {
                return;
            }
        }
    })
}

/// RFC 9112 6.1: coded bytes are never delivered as plain ones. `Transfer-Encoding: gzip,
/// chunked` (and `x-gzip`, and `deflate` until close) is decoded by the proxy: an HTTP/1.1
/// client gets the plain body chunked, with the allowed trailers, no Content-Length and no
/// Transfer-Encoding but `chunked`; an HTTP/1.0 client gets it close-delimited.
#[test]
fn proxy_decodes_gzip_and_deflate_transfer_codings_rfc9112_6_1() {
    let plain: Vec<u8> = (0..200_000u32)
        .flat_map(|i| (i % 251).to_le_bytes())
        .collect();
    let mut gzip_chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec();
    gzip_chunked.extend(chunked(&gzipped(&plain, 2), "X-Checksum: 1\r\n"));
    let mut x_gzip =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: x-gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    x_gzip.extend(chunked(&gzipped(&plain, 1), ""));
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&plain).expect("deflate");
    let mut deflate_until_close =
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: deflate\r\n\r\n".to_vec();
    deflate_until_close.extend(encoder.finish().expect("deflate"));
    let mut twice = plain.clone();
    twice.extend(&plain);
    for (response, want, trailers) in [
        (
            gzip_chunked,
            &twice,
            vec![("X-Checksum".to_owned(), "1".to_owned())],
        ),
        (x_gzip, &plain, vec![]),
        (deflate_until_close, &plain, vec![]),
    ] {
        let raw = answering(response);
        let proxy = proxy_with(&raw, "", "", "");
        let mut client = proxy.connect();
        client.send(&get("/coded"));
        let response = client.read_response();
        assert_eq!(response.status, 200);
        assert_eq!(response.header("transfer-encoding"), Some("chunked"));
        assert_eq!(response.header("content-length"), None);
        assert!(
            response.body == *want,
            "decoded body differs ({} bytes)",
            response.body.len()
        );
        assert_eq!(response.trailers, trailers);
        // HTTP/1.0: close-delimited.
        let mut client = proxy.connect();
        client.send(b"GET /coded HTTP/1.0\r\n\r\n");
        let (status, fields) = client.read_head();
        assert_eq!(status, 200);
        assert!(
            !fields
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding")
                    || n.eq_ignore_ascii_case("content-length")),
            "{fields:?}"
        );
        assert!(client.read_until_closed() == *want, "HTTP/1.0 body differs");
    }
}

/// RFC 9112 6.1: a corrupt coded body is never relayed as if it were whole: the client's
/// response is cut short (no last chunk) and the proxy logs it; a transfer coding the
/// proxy cannot decode (`compress`, or two codings) is 502, logged naming it and counted as
/// a bad response.
#[test]
fn proxy_corrupt_or_unknown_transfer_coding_is_never_relayed_plain_rfc9112_6_1() {
    let mut corrupt = gzipped(&[b'a'; 100_000], 1);
    let at = corrupt.len() - 6;
    corrupt[at] ^= 0xff; // The CRC-32 no longer matches.
    let mut response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec();
    response.extend(chunked(&corrupt, ""));
    let raw = answering(response);
    let mut proxy = proxy_with(&raw, "", "", "");
    let mut client = proxy.connect();
    client.send(&get("/corrupt"));
    let (status, _) = client.read_head();
    assert_eq!(status, 200);
    let rest = client.read_until_closed();
    assert!(
        !rest.ends_with(b"0\r\n\r\n"),
        "the cut response looks complete"
    );
    let line = proxy.wait_log("corrupt coded body");
    assert!(line.contains("response cut short"), "{line}");

    for (coding, name) in [
        ("compress, chunked", "compress"),
        ("deflate, gzip, chunked", "deflate, gzip"),
        ("chunked, gzip", "chunked, gzip"),
    ] {
        let raw = answering(
            format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {coding}\r\n\r\n0\r\n\r\n").into_bytes(),
        );
        let mut proxy = proxy_with(&raw, "", "", "");
        let response = proxy.request(&get("/unknown"));
        assert_eq!(response.status, 502, "{coding}");
        let line = proxy.wait_log("which the proxy cannot decode");
        assert!(line.contains(&format!("\"{name}\"")), "{line}");
        assert_eq!(proxy.upstream_errors(raw.addr, "bad_response"), 1.0);
    }
}

/// A gzip bomb (RFC 9112 6.1 decoding must not cost unbounded memory): 32 gzip members of
/// 8 MiB of zeros each, 256 MiB decoded from about 256 KiB sent. The proxy decodes only as
/// much as the client's connection has room for: the client, which starts reading only
/// after the upstream has sent everything, gets all 256 MiB, and the proxy's peak RSS stays
/// within the bound the 256 MiB streaming tests use.
#[test]
fn proxy_decodes_a_gzip_bomb_in_bounded_memory_rfc9112_6_1() {
    use crate::proxy::{PROXY_RSS_BOUND_KIB, read_chunked_from, read_head_from};
    use crate::support::peak_rss_kib;
    const MEMBER: usize = 8 << 20;
    const MEMBERS: usize = 32;
    let member = gzipped(&vec![0u8; MEMBER], 1);
    let mut body = Vec::new();
    for _ in 0..MEMBERS {
        body.extend(&member);
    }
    let mut response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec();
    response.extend(chunked(&body, ""));
    let (sent_tx, sent) = mpsc::channel();
    let raw = RawUpstream::start(move |conn: &mut Upstream| {
        if conn.request().is_some() && conn.write(&response) {
            let _ = sent_tx.send(());
            conn.drain();
        }
    });
    let proxy = proxy_with(&raw, "", "", "");
    let mut stream = TcpStream::connect(proxy.data).expect("connect");
    stream.set_read_timeout(Some(IO_LIMIT)).expect("timeout");
    stream.write_all(&get("/bomb")).expect("send");
    sent.recv_timeout(IO_LIMIT)
        .expect("the upstream sent the bomb");
    let mut reader = BufReader::with_capacity(1 << 16, stream);
    let (status, _) = read_head_from(&mut reader);
    assert_eq!(status, 200);
    let (mut received, mut nonzero) = (0usize, 0usize);
    read_chunked_from(&mut reader, |data| {
        received += data.len();
        nonzero += data.iter().filter(|&&b| b != 0).count();
    });
    assert_eq!((received, nonzero), (MEMBER * MEMBERS, 0));
    let peak = peak_rss_kib(proxy.pid());
    eprintln!("proxy peak RSS after decoding a 256 MiB gzip bomb: {peak} KiB");
    assert!(
        peak < PROXY_RSS_BOUND_KIB,
        "proxy peak RSS {peak} KiB, bound {PROXY_RSS_BOUND_KIB} KiB"
    );
}
