//! Back-pressure: a client that sends without reading is slowed to the pace it reads at;
//! the server stops reading while its output is over the mark instead of buffering.

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use crate::support::{IO_LIMIT, TestServer};

#[test]
fn a_client_that_does_not_read_is_stopped_from_sending_then_gets_everything() {
    const BODY: usize = 64 << 20;
    let server = TestServer::with(
        "[limits]\nmax_body_bytes = 100000000\n[defaults]\nmax_body_bytes = 100000000",
    );
    let mut client = server.connect();
    // Byte `i` of the body; a prime period shows any loss or reordering.
    let pattern = |i: usize| (i % 251) as u8;
    let mut piece = vec![0u8; 65536];
    // The next piece of the body at offset `sent`.
    let mut next_piece = move |sent: usize| -> Vec<u8> {
        let len = (BODY - sent).min(piece.len());
        for (k, byte) in piece[..len].iter_mut().enumerate() {
            *byte = pattern(sent + k);
        }
        piece[..len].to_vec()
    };
    let head = format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {BODY}\r\n\r\n");
    client.send(head.as_bytes());

    // Send without reading until the send blocks. A server that kept reading (buffering
    // the echo) would take all 64 MiB; socket buffers on loopback hold a few MiB at most.
    client
        .stream
        .set_write_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let mut sent = 0;
    loop {
        match client.stream.write(&next_piece(sent)) {
            Ok(n) => sent += n,
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(err) => panic!("send failed: {err}"),
        }
        assert!(
            sent < BODY,
            "the server read the whole body without the client reading"
        );
    }

    // Now read the echo while the rest is sent: everything arrives, in order.
    client
        .stream
        .set_write_timeout(Some(IO_LIMIT))
        .expect("timeout");
    let mut reader = client.stream.try_clone().expect("clone");
    let received = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        // Head text (bounded) plus the body; stop once the body length is reached.
        while all.len() < BODY + 200 {
            let n = reader.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            if let Some(split) = all.windows(4).position(|w| w == b"\r\n\r\n") {
                let text_and_body = all.len() - split - 4;
                if text_and_body >= BODY && all[split + 4..].ends_with(&[pattern(BODY - 1)]) {
                    let declared = String::from_utf8_lossy(&all[..split]).into_owned();
                    let length: usize = declared
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|v| v.parse().ok())
                        .expect("Content-Length");
                    if text_and_body == length {
                        return (declared, all.split_off(split + 4));
                    }
                }
            }
        }
        panic!("response ended early after {} bytes", all.len());
    });
    while sent < BODY {
        sent += client.stream.write(&next_piece(sent)).expect("send rest");
    }
    let (head, body) = received.join().expect("reader");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    let echoed = &body[body.len() - BODY..];
    assert!(
        echoed.iter().enumerate().all(|(i, &b)| b == pattern(i)),
        "echoed body differs"
    );
}
