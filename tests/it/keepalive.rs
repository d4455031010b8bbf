//! Keep-alive: connection reuse, HTTP/1.0 and 1.1 close rules, the per-connection request
//! limit, and HEAD responses that must leave the stream aligned.

use crate::support::{TestServer, config_with, get};

#[test]
fn thousand_requests_share_one_keep_alive_connection() {
    let server = TestServer::start(&config_with("", ""));
    let mut client = server.connect();
    let local = client.stream.local_addr().expect("local addr");
    for i in 0..1000 {
        client.send(&get("/"));
        let response = client.read_response();
        assert_eq!(response.status, 200, "request {i}");
        assert!(!response.says_close(), "request {i} closed the connection");
        assert_eq!(response.text(), "Hello, World!", "request {i}");
    }
    assert_eq!(client.stream.local_addr().expect("local addr"), local);
    assert!(
        client.still_serves(),
        "connection did not survive 1000 requests"
    );
}

#[test]
fn http10_without_keep_alive_closes_after_the_response() {
    let server = TestServer::start(&config_with("", ""));
    let mut client = server.connect();
    client.send(b"GET / HTTP/1.0\r\n\r\n");
    let response = client.read_response();
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "Hello, World!");
    assert!(response.says_close(), "headers {:?}", response.headers);
    client.expect_closed();
}

#[test]
fn http10_with_keep_alive_keeps_the_connection() {
    let server = TestServer::start(&config_with("", ""));
    let mut client = server.connect();
    for i in 0..2 {
        client.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let response = client.read_response();
        assert_eq!(response.status, 200, "request {i}");
        assert_eq!(response.text(), "Hello, World!", "request {i}");
        let connection = response.header("connection").unwrap_or_default();
        assert!(
            connection.eq_ignore_ascii_case("keep-alive"),
            "request {i}: Connection {connection:?}"
        );
    }
}

#[test]
fn http11_connection_close_is_honoured() {
    let server = TestServer::start(&config_with("", ""));
    let mut client = server.connect();
    client.send(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    let response = client.read_response();
    assert_eq!(response.status, 200);
    assert!(response.says_close(), "headers {:?}", response.headers);
    client.expect_closed();
}

#[test]
fn request_limit_closes_after_the_last_allowed_request() {
    let server = TestServer::start(&config_with("max_requests_per_connection = 3", ""));
    let mut client = server.connect();
    for i in 1..=3 {
        client.send(&get("/"));
        let response = client.read_response();
        assert_eq!(response.status, 200, "request {i}");
        assert_eq!(
            response.says_close(),
            i == 3,
            "request {i}: {:?}",
            response.headers
        );
    }
    client.expect_closed();
}

#[test]
fn head_response_has_length_but_no_body_and_the_next_response_follows() {
    let server = TestServer::start(&config_with("", ""));
    let mut client = server.connect();
    let mut batch = b"HEAD / HTTP/1.1\r\nHost: test\r\n\r\n".to_vec();
    batch.extend_from_slice(&get("/"));
    client.send(&batch);
    let head = client.read_response_to("HEAD");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("13"));
    assert!(head.body.is_empty());
    let next = client.read_response();
    assert_eq!(next.status, 200);
    assert_eq!(next.text(), "Hello, World!");
}
