//! Request bodies: chunked echo (chunk boundaries and trailers kept), `Expect:
//! 100-continue` accepted and declined, unknown expectations, and a large Content-Length
//! body.

use std::io::Write;

use crate::support::{TestServer, config_with, echo_body};

const CHUNKED_HEAD: &[u8] =
    b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n";

/// Deterministic, non-repeating-looking payload bytes.
fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| b'a' + ((i * 7 + seed as usize) % 26) as u8)
        .collect()
}

/// A chunked body with chunks of `sizes`, ending with `trailers` (field lines with CRLF).
fn chunked_body(sizes: &[usize], trailers: &str) -> (Vec<u8>, Vec<u8>) {
    let mut wire = Vec::new();
    let mut data = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let chunk = payload(size, i as u8);
        wire.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        wire.extend_from_slice(&chunk);
        wire.extend_from_slice(b"\r\n");
        data.extend_from_slice(&chunk);
    }
    wire.extend_from_slice(b"0\r\n");
    wire.extend_from_slice(trailers.as_bytes());
    wire.extend_from_slice(b"\r\n");
    (wire, data)
}

#[test]
fn chunked_echo_keeps_chunk_boundaries() {
    let server = TestServer::start(&config_with("", ""));
    let mut client = server.connect();
    let sizes = [1, 10, 100, 1000, 7];
    let (wire, data) = chunked_body(&sizes, "");
    client.send(&[CHUNKED_HEAD, &wire].concat());
    let response = client.read_response();
    assert_eq!(response.status, 200);
    let mut expected_chunks = vec![CHUNKED_HEAD.len()];
    expected_chunks.extend_from_slice(&sizes);
    assert_eq!(response.chunks, expected_chunks);
    assert_eq!(response.body, echo_body(CHUNKED_HEAD, &data));
    assert!(response.trailers.is_empty(), "{:?}", response.trailers);
    assert!(client.still_serves());
}

#[test]
fn chunked_trailers_are_echoed_as_response_trailers() {
    let server = TestServer::start(&config_with("", ""));
    let mut client = server.connect();
    let (wire, data) = chunked_body(&[5, 3], "X-Checksum: abc\r\n");
    client.send(&[CHUNKED_HEAD, &wire].concat());
    let response = client.read_response();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, echo_body(CHUNKED_HEAD, &data));
    assert!(
        response
            .trailers
            .iter()
            .any(|(name, value)| name.eq_ignore_ascii_case("x-checksum") && value == "abc"),
        "trailers {:?}",
        response.trailers
    );
    assert!(client.still_serves());
}

#[test]
fn expect_continue_accepted_gets_100_before_the_body_is_sent() {
    let server = TestServer::start(&config_with("", ""));
    let mut client = server.connect();
    let head =
        b"POST /echo HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    client.send(head);
    let interim = client.read_message("POST");
    assert_eq!(interim.status, 100);
    client.send(b"hello");
    let response = client.read_message("POST");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, echo_body(head, b"hello"));
    assert!(client.still_serves());
}

#[test]
fn expect_continue_declined_sends_no_100_and_closes() {
    let server = TestServer::start(&config_with("", ""));
    let mut client = server.connect();
    client.send(
        b"POST / HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    );
    let response = client.read_message("POST");
    assert_eq!(response.status, 200, "got {response:?}");
    assert_eq!(response.text(), "Hello, World!");
    assert!(response.says_close(), "headers {:?}", response.headers);
    client.expect_closed();
}

#[test]
fn unknown_expectation_is_answered_417() {
    let server = TestServer::start(&config_with("", ""));
    let mut client = server.connect();
    client.send(
        b"POST /echo HTTP/1.1\r\nHost: test\r\nExpect: something\r\nContent-Length: 5\r\n\r\nhello",
    );
    let response = client.read_message("POST");
    assert_eq!(response.status, 417, "got {response:?}");
    assert!(response.says_close(), "headers {:?}", response.headers);
    client.expect_closed();
}

#[test]
fn content_length_echo_of_200_kib_returns_the_same_bytes() {
    let server = TestServer::start(&config_with("", ""));
    let mut client = server.connect();
    let body = payload(200 * 1024, 3);
    let head = format!(
        "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut writer = client.stream.try_clone().expect("clone stream");
    let request = [head.as_bytes(), &body].concat();
    // Written from another thread: the echo streams back while the body is still arriving.
    let sender = std::thread::spawn(move || writer.write_all(&request).expect("send body"));
    let response = client.read_response();
    sender.join().expect("sender");
    assert_eq!(response.status, 200);
    assert_eq!(response.body.len(), head.len() + body.len());
    assert!(
        response.body == echo_body(head.as_bytes(), &body),
        "echoed body differs"
    );
    assert!(client.still_serves());
}
