//! Pipelining: many requests in one write (or split at every byte) are all answered, in
//! order, with the same bytes.

use crate::support::{Client, Response, TestServer, config_with, echo_body, get, post};

/// 100 requests: GETs of `/` mixed with POSTs to distinct echo targets.
fn mixed_batch() -> (Vec<u8>, Vec<Option<Vec<u8>>>) {
    let mut bytes = Vec::new();
    let mut expected = Vec::new();
    for i in 0..100 {
        if i % 3 == 0 {
            bytes.extend_from_slice(&get("/"));
            expected.push(None);
        } else {
            let target = format!("/echo/{i}");
            let body = format!("body of request {i}").repeat(i % 7 + 1);
            let request = post(&target, body.as_bytes());
            let head_len = request.len() - body.len();
            expected.push(Some(echo_body(&request[..head_len], body.as_bytes())));
            bytes.extend_from_slice(&request);
        }
    }
    (bytes, expected)
}

fn read_batch(client: &mut Client, expected: &[Option<Vec<u8>>]) -> Vec<Response> {
    let mut responses = Vec::new();
    for (i, want) in expected.iter().enumerate() {
        let response = client.read_response();
        assert_eq!(response.status, 200, "response {i}");
        assert!(!response.says_close(), "response {i} closes");
        match want {
            None => assert_eq!(response.text(), "Hello, World!", "response {i}"),
            Some(body) => {
                let target = format!("POST /echo/{i} HTTP/1.1\r\n");
                assert!(
                    response.body.starts_with(target.as_bytes()),
                    "response {i} out of order: {:?}",
                    response.text()
                );
                assert_eq!(
                    response.text(),
                    String::from_utf8_lossy(body),
                    "response {i}"
                );
            }
        }
        responses.push(response);
    }
    responses
}

/// A response without its `Date` header, for comparing runs.
fn dateless(response: &Response) -> Response {
    let mut response = response.clone();
    response
        .headers
        .retain(|(name, _)| !name.eq_ignore_ascii_case("date"));
    response
}

#[test]
fn hundred_pipelined_requests_in_one_write_are_answered_in_order() {
    let server = TestServer::start(&config_with("", ""));
    let (bytes, expected) = mixed_batch();
    let mut client = server.connect();
    client.send(&bytes);
    read_batch(&mut client, &expected);
    assert!(client.still_serves());
}

#[test]
fn pipelined_stream_sent_byte_by_byte_gets_identical_responses() {
    let server = TestServer::start(&config_with("", ""));
    let (bytes, expected) = mixed_batch();
    let mut whole = server.connect();
    whole.send(&bytes);
    let at_once = read_batch(&mut whole, &expected);
    let mut dribble = server.connect();
    dribble.send_bytewise(&bytes);
    let bytewise = read_batch(&mut dribble, &expected);
    for (i, (a, b)) in at_once.iter().zip(&bytewise).enumerate() {
        let (a, b) = (dateless(a), dateless(b));
        assert_eq!(a.status, b.status, "response {i}");
        assert_eq!(a.headers, b.headers, "response {i}");
        assert_eq!(a.body, b.body, "response {i}");
    }
}

#[test]
fn batch_of_sixteen_gets_yields_sixteen_responses() {
    let server = TestServer::start(&config_with("", ""));
    let mut client = server.connect();
    let batch: Vec<u8> = (0..16).flat_map(|_| get("/")).collect();
    client.send(&batch);
    for i in 0..16 {
        let response = client.read_response();
        assert_eq!(response.status, 200, "response {i}");
        assert_eq!(response.text(), "Hello, World!", "response {i}");
    }
    assert!(client.still_serves());
}
