//! Connection limits: a worker at `max_connections` stops accepting, and the waiting client
//! is served as soon as a slot frees, on the same connection it opened.

use std::io::{ErrorKind, Read};
use std::time::Duration;

use crate::support::{TestServer, config_with, get};

#[test]
fn accepting_pauses_at_the_connection_limit_and_resumes_when_a_slot_frees() {
    let server = TestServer::start(&config_with("max_connections = 2", ""));
    let mut first = server.connect();
    let mut second = server.connect();
    for client in [&mut first, &mut second] {
        client.send(&get("/"));
        assert_eq!(client.read_response().status, 200);
    }

    // The kernel completes the handshake, but the full worker does not accept: the
    // request waits unanswered in the accept queue.
    let mut third = server.connect();
    third.send(&get("/"));
    third
        .stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut byte = [0u8; 1];
    match third.stream.read(&mut byte) {
        Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("a connection past the limit was served: {other:?}"),
    }
    third
        .stream
        .set_read_timeout(Some(crate::support::IO_LIMIT))
        .expect("timeout");

    // Closing one connection frees a slot; the waiting one is accepted and answered.
    drop(first);
    assert_eq!(third.read_response().status, 200);
    assert!(second.still_serves());
}
