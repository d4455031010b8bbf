//! How connections are accepted: with `[server] defer_accept` (the default) each listening
//! socket has `TCP_DEFER_ACCEPT`, so the kernel hands a connection over once its first bytes
//! arrive; without it, at once. A silent connection is still handed over (about a second
//! later) and timed out as before: `timeouts::idle_connection_is_closed_without_response_bytes`
//! runs with the default.

use crate::support::{TestServer, config_with, get};
use crate::sys::defer_accept_of_listener;

#[test]
fn listeners_defer_accept_as_configured() {
    for (server_keys, deferred) in [("", true), ("defer_accept = false", false)] {
        let server = TestServer::start(&config_with(server_keys, ""));
        let seconds = defer_accept_of_listener(server.pid(), server.addr.port());
        assert_eq!(
            seconds > 0,
            deferred,
            "{server_keys:?}: TCP_DEFER_ACCEPT is {seconds}"
        );
        // Either way a client that speaks first is served.
        let mut client = server.connect();
        client.send(&get("/"));
        assert_eq!(client.read_response().status, 200);
    }
}
