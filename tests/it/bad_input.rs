//! Bad input: one table of malformed or refused requests, each with the status it must get,
//! whether the connection must close after it, and a word the error text must contain.

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
