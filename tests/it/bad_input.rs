//! Bad input: one table of malformed or refused requests, each with the status it must get,
//! whether the connection must close after it, and a word the error text must contain; and
//! a table of request-smuggling shapes, each carrying a hidden second request that must
//! never be answered.

use crate::support::{TestServer, config_with};

struct Case {
    name: &'static str,
    request: Vec<u8>,
    status: u16,
    must_close: bool,
    /// A word (case-insensitive) the short error text names the problem with.
    names: &'static str,
}

fn case(
    name: &'static str,
    request: &[u8],
    status: u16,
    must_close: bool,
    names: &'static str,
) -> Case {
    Case {
        name,
        request: request.to_vec(),
        status,
        must_close,
        names,
    }
}

fn cases() -> Vec<Case> {
    let big_head = [
        &b"GET / HTTP/1.1\r\nHost: test\r\nX-Big: "[..],
        &vec![b'a'; 17 * 1024],
        b"\r\n\r\n",
    ]
    .concat();
    let mut many_headers = b"GET / HTTP/1.1\r\nHost: test\r\n".to_vec();
    for i in 0..100 {
        many_headers.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    many_headers.extend_from_slice(b"\r\n");
    let long_target = [
        &b"GET /"[..],
        &vec![b'a'; 17 * 1024],
        b" HTTP/1.1\r\nHost: test\r\n\r\n",
    ]
    .concat();
    let long_extension = [
        &b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n1;ext="[..],
        &vec![b'e'; 5000],
        b"\r\nx\r\n0\r\n\r\n",
    ]
    .concat();
    let big_trailers = [
        &b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: "[..],
        &vec![b't'; 9000],
        b"\r\n\r\n",
    ]
    .concat();
    vec![
        case("malformed request line", b"GET /\r\nHost: test\r\n\r\n", 400, true, "request line"),
        case("header without colon", b"GET / HTTP/1.1\r\nHost: test\r\nNoColon\r\n\r\n", 400, true, "header"),
        case("space before colon", b"GET / HTTP/1.1\r\nHost: test\r\nX-A : b\r\n\r\n", 400, true, "header"),
        case("obs-fold", b"GET / HTTP/1.1\r\nHost: test\r\nX-A: a\r\n  b\r\n\r\n", 400, true, "header"),
        case("NUL in a value", b"GET / HTTP/1.1\r\nHost: test\r\nX-A: a\0b\r\n\r\n", 400, true, "header"),
        Case {
            name: "head over 16 KiB",
            request: big_head,
            status: 431,
            must_close: true,
            names: "head",
        },
        Case {
            name: "101 header fields",
            request: many_headers,
            status: 431,
            must_close: true,
            names: "header",
        },
        case(
            "Content-Length with Transfer-Encoding",
            b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
            true,
            "content-length",
        ),
        case(
            "differing Content-Lengths",
            b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            400,
            true,
            "content-length",
        ),
        // An invalid Content-Length leaves the framing unknown, so RFC 9112 6.3 requires close.
        case("Content-Length +5", b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: +5\r\n\r\nhello", 400, true, "content-length"),
        case("Content-Length 0x5", b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 0x5\r\n\r\nhello", 400, true, "content-length"),
        case("Content-Length 5 5", b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5 5\r\n\r\nhello", 400, true, "content-length"),
        case(
            "Transfer-Encoding gzip, chunked",
            b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            501,
            true,
            "coding",
        ),
        case(
            "Transfer-Encoding chunked, identity",
            b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
            400,
            true,
            "chunked",
        ),
        case(
            "Transfer-Encoding in HTTP/1.0",
            b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
            true,
            "transfer-encoding",
        ),
        case("HTTP/1.1 without Host", b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400, false, "host"),
        case("two Host fields", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, false, "host"),
        case("HTTP/2.0 version", b"GET / HTTP/2.0\r\nHost: test\r\n\r\n", 505, false, "version"),
        // RFC 9112 3: a target longer than the server parses is 414, not 431.
        Case {
            name: "RFC 9112 3: request target over the head limit",
            request: long_target,
            status: 414,
            must_close: true,
            names: "target",
        },
        // RFC 9112 3.2 and RFC 3986 3.2.2-3.2.3: Host must follow the authority grammar.
        case("RFC 9112 3.2: Host [::1 unclosed", b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400, true, "host"),
        case("RFC 9112 3.2: Host port a:8x", b"GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", 400, true, "host"),
        case("RFC 9112 3.2: Host :a without host", b"GET / HTTP/1.1\r\nHost: :a\r\n\r\n", 400, true, "host"),
        case("RFC 9112 3.2: Host port 65536", b"GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", 400, true, "host"),
        // RFC 9112 3.2.4: the asterisk form is for OPTIONS only.
        case("RFC 9112 3.2.4: GET *", b"GET * HTTP/1.1\r\nHost: test\r\n\r\n", 400, true, "target"),
        // RFC 9112 3.2.3: the authority form is for CONNECT only.
        case("RFC 9112 3.2.3: GET in authority form", b"GET test:80 HTTP/1.1\r\nHost: test\r\n\r\n", 400, true, "target"),
        // RFC 9110 4.2.4: userinfo in an http(s) URI is an error.
        case("RFC 9110 4.2.4: userinfo in absolute form", b"GET http://u:p@test/ HTTP/1.1\r\nHost: test\r\n\r\n", 400, true, "userinfo"),
        case("RFC 9110 4.2.4: user only in absolute form", b"GET http://u@test/ HTTP/1.1\r\nHost: test\r\n\r\n", 400, true, "userinfo"),
        // RFC 9110 4.2.1: an http URI with an empty or invalid host is invalid.
        case("RFC 9110 4.2.1: empty host in absolute form", b"GET http:///x HTTP/1.1\r\nHost: test\r\n\r\n", 400, true, "authority"),
        case("RFC 9110 4.2.1: bad port in absolute form", b"GET http://test:99999/ HTTP/1.1\r\nHost: test\r\n\r\n", 400, true, "authority"),
        case("RFC 9112 3.2.2: absolute form of another scheme", b"GET ftp://test/ HTTP/1.1\r\nHost: test\r\n\r\n", 400, true, "scheme"),
        case(
            "chunk size zz",
            b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
            400,
            true,
            "chunk",
        ),
        case(
            "chunk size overflow",
            b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nhello\r\n0\r\n\r\n",
            400,
            true,
            "chunk",
        ),
        case(
            "missing CRLF after chunk data",
            b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
            400,
            true,
            "crlf",
        ),
        Case {
            name: "chunk extension over the limit",
            request: long_extension,
            status: 400,
            must_close: true,
            names: "extension",
        },
        Case {
            name: "trailers over the limit",
            request: big_trailers,
            status: 400,
            must_close: true,
            names: "trailer",
        },
        case(
            "body over max_body_bytes",
            &[
                &b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5000\r\n\r\n"[..],
                &[b'b'; 5000],
            ]
            .concat(),
            413,
            true,
            "body",
        ),
    ]
}

#[test]
fn bad_requests_get_their_status_a_short_reason_and_the_right_connection_fate() {
    let server = TestServer::start(&config_with("", "[limits]\nmax_body_bytes = 1000\n"));
    let mut failures = Vec::new();
    for case in cases() {
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&server, &case)));
        match outcome {
            Ok(problems) if problems.is_empty() => {}
            Ok(problems) => failures.push(format!("{}: {}", case.name, problems.join("; "))),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{}: panicked: {message}", case.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "failing rows:\n{}",
        failures.join("\n")
    );
    let mut fresh = server.connect();
    assert!(
        fresh.still_serves(),
        "server unhealthy after the bad-input table"
    );
}

/// Sends one row's request on a fresh connection; returns what is wrong with the answer.
fn check(server: &TestServer, case: &Case) -> Vec<String> {
    let mut client = server.connect();
    client.send(&case.request);
    let response = client.read_response();
    let text = response.text();
    let mut problems = Vec::new();
    if response.status != case.status {
        problems.push(format!(
            "status {} (want {}), body {text:?}",
            response.status, case.status
        ));
    }
    if text.len() > 200 || !text.to_ascii_lowercase().contains(case.names) {
        problems.push(format!(
            "body {text:?} does not name {:?} briefly",
            case.names
        ));
    }
    if case.must_close && !response.says_close() {
        problems.push(format!("no Connection: close in {:?}", response.headers));
    }
    if case.must_close || response.says_close() {
        client.expect_closed();
    } else if !client.still_serves() {
        problems.push("connection kept but a following request got no 200".to_string());
    }
    problems
}

/// One request-smuggling shape: the bytes, the statuses that must come back (in order) and
/// whether the connection must close after them. Every attack carries a second request
/// (`GET /smuggled`, which the test config's catch-all route would answer) where a lenient parser might find one.
struct Smuggle {
    name: &'static str,
    bytes: &'static [u8],
    statuses: &'static [u16],
    closes: bool,
}

fn smuggling_cases() -> Vec<Smuggle> {
    macro_rules! attack {
        ($name:expr, $head:expr, $body:expr, $statuses:expr, $closes:expr) => {
            Smuggle {
                name: $name,
                bytes: concat!(
                    $head,
                    "\r\n",
                    $body,
                    "GET /smuggled HTTP/1.1\r\nHost: test\r\n\r\n"
                )
                .as_bytes(),
                statuses: $statuses,
                closes: $closes,
            }
        };
    }
    vec![
        attack!(
            "CL.TE",
            "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n",
            "0\r\n\r\n",
            &[400],
            true
        ),
        attack!(
            "TE.CL",
            "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n",
            "8\r\nSMUGGLED\r\n0\r\n\r\n",
            &[400],
            true
        ),
        attack!(
            "TE.TE chunked, identity",
            "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked, identity\r\n",
            "0\r\n\r\n",
            &[400],
            true
        ),
        attack!(
            "TE.TE two fields",
            "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
            "0\r\n\r\n",
            &[400],
            true
        ),
        attack!(
            "TE twice chunked",
            "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            "0\r\n\r\n",
            &[400],
            true
        ),
        attack!(
            "space before the colon",
            "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding : chunked\r\n",
            "0\r\n\r\n",
            &[400],
            true
        ),
        attack!(
            "vertical tab before chunked",
            "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding:\x0bchunked\r\n",
            "0\r\n\r\n",
            &[400],
            true
        ),
        attack!(
            "Content-Length +6",
            "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: +6\r\n",
            "abcdef",
            &[400],
            true
        ),
        attack!(
            "Content-Length 0x6",
            "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 0x6\r\n",
            "abcdef",
            &[400],
            true
        ),
        attack!(
            "bare CR in a field",
            "POST /echo HTTP/1.1\r\nHost: test\r\nX-A: a\rContent-Length: 6\r\n",
            "abcdef",
            &[400],
            true
        ),
        attack!(
            "NUL in a field",
            "POST /echo HTTP/1.1\r\nHost: test\r\nX-A: a\0b\r\nContent-Length: 6\r\n",
            "abcdef",
            &[400],
            true
        ),
        attack!(
            "obs-fold hiding Transfer-Encoding",
            "POST /echo HTTP/1.1\r\nHost: test\r\nX-A: a\r\n Transfer-Encoding: chunked\r\nContent-Length: 6\r\n",
            "0\r\n\r\n",
            &[400],
            true
        ),
        attack!(
            "extra space in the request line",
            "POST  /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 6\r\n",
            "abcdef",
            &[400],
            true
        ),
        attack!(
            "missing Host",
            "POST /echo HTTP/1.1\r\nContent-Length: 6\r\n",
            "abcdef",
            &[400],
            true
        ),
        // Unambiguous framings that lenient and strict parsers agree on: the body is the body,
        // the following request is a second, honest request.
        // RFC 9112 2.2 lets a recipient take a bare LF as a line end: accepted, and framed
        // exactly as the CRLF form would be.
        attack!(
            "bare LF line ends",
            "POST /echo HTTP/1.1\nHost: test\nContent-Length: 6\n",
            "abcdef",
            &[200, 200],
            false
        ),
        attack!(
            "tab before chunked",
            "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding:\tchunked\r\n",
            "6\r\nabcdef\r\n0\r\n\r\n",
            &[200, 200],
            false
        ),
        attack!(
            "chunked in odd case",
            "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: ChUnKeD\r\n",
            "6\r\nabcdef\r\n0\r\n\r\n",
            &[200, 200],
            false
        ),
        attack!(
            "Content-Length with leading zeros",
            "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 006\r\n",
            "abcdef",
            &[200, 200],
            false
        ),
        attack!(
            "absolute-form target",
            "POST http://test/echo HTTP/1.1\r\nHost: test\r\nContent-Length: 6\r\n",
            "abcdef",
            &[200, 200],
            false
        ),
    ]
}

/// Each smuggling shape gets exactly the answers RFC 9112 asks for, in order, and closes
/// where it must; nothing the attack hid is answered as a request of its own (it would show
/// as an extra answer after the close, or before the probe that ends a kept connection).
#[test]
fn smuggling_shapes_get_their_answers_and_nothing_slips_through() {
    let server = TestServer::start(&config_with("", ""));
    let mut failures = Vec::new();
    for case in smuggling_cases() {
        let mut client = server.connect();
        client.send(case.bytes);
        let mut statuses = Vec::new();
        let mut closed_after = false;
        for _ in case.statuses {
            let response = client.read_response();
            statuses.push(response.status);
            closed_after = response.says_close();
            if closed_after {
                break;
            }
        }
        if case.closes {
            // Whatever else the attack held must never be answered.
            let rest = client.read_until_closed();
            if !rest.is_empty() {
                failures.push(format!(
                    "{}: more after the close: {:?}",
                    case.name,
                    String::from_utf8_lossy(&rest)
                ));
            }
        } else {
            // A probe ends the exchange: the next answer must be its own.
            client.send(b"GET /echo?probe HTTP/1.1\r\nHost: test\r\n\r\n");
            let probe = client.read_response();
            if probe.status != 200 || !probe.text().contains("/echo?probe") {
                failures.push(format!(
                    "{}: the probe got {} {:?}",
                    case.name,
                    probe.status,
                    probe.text()
                ));
            }
        }
        if statuses != case.statuses || closed_after != case.closes {
            failures.push(format!(
                "{}: got {statuses:?} (close {closed_after}), want {:?} (close {})",
                case.name, case.statuses, case.closes
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "failing shapes:\n{}",
        failures.join("\n")
    );
}
