//! Many simultaneous keep-alive connections across two workers.

use crate::support::{Client, TestServer, config_with, get};
use crate::sys::raise_fd_limit;

const CONNECTIONS: usize = 2000;

#[test]
fn two_thousand_keep_alive_connections_are_all_served_twice() {
    raise_fd_limit(CONNECTIONS as u64 + 256);
    let server = TestServer::start(&config_with("workers = 2", ""));
    let mut clients: Vec<Client> = (0..CONNECTIONS).map(|_| server.connect()).collect();
    for round in 0..2 {
        for client in &mut clients {
            client.send(&get("/"));
        }
        for (i, client) in clients.iter_mut().enumerate() {
            let response = client.read_response();
            assert_eq!(response.status, 200, "round {round}, connection {i}");
            assert!(
                !response.says_close(),
                "round {round}, connection {i} closes"
            );
            assert_eq!(response.text(), "Hello, World!");
        }
    }
}
