//! Stopping with the real binary and real signals: SIGTERM during traffic answers every
//! request sent before it (pipelined ones included, the last with `Connection: close`) and
//! exits 0 well before `shutdown_timeout`; a request stuck past
//! `shutdown_timeout` does not hold the exit; SIGQUIT exits at once.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::reload::Daemon;
use crate::support::{Client, get, post, temp_path};

const ROUTES: &str = "[[route]]\nname = \"hello\"\npath = \"/\"\nhandler = \"respond\"\n\
                      body = \"hello\"\n\n[[route]]\nname = \"echo\"\npath = \"/echo\"\n\
                      handler = \"echo\"\n";

fn server(shutdown_timeout: &str) -> String {
    format!(
        "listen = [\"127.0.0.1:0\"]\nworkers = 2\nmax_requests_per_connection = 0\n\
         shutdown_timeout = \"{shutdown_timeout}\""
    )
}

/// Five start / traffic / SIGTERM cycles in a row (a restart loop, as a service manager or an
/// upgrade would run it): in each, every request sent before the signal is answered, none is
/// answered twice or lost, and the daemon exits 0.
#[test]
fn sigterm_during_traffic_answers_everything_sent_before_it_and_exits_0_in_five_restart_cycles() {
    for _ in 0..5 {
        stop_during_traffic();
    }
}

/// One cycle: a daemon starts, 16 connections send keep-alive traffic (half GETs, half
/// POSTs), one is idle and one is midway through a body; SIGTERM arrives.
fn stop_during_traffic() {
    let mut daemon = Daemon::start(&server("20s"), ROUTES);
    let addr = daemon.addr;
    // Held for reading while a request is sent; the test takes it for writing to signal, so
    // every request is sent either before the signal or not at all.
    let gate = Arc::new(RwLock::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(60);
    let threads: Vec<_> = (0..16)
        .map(|index| {
            let (gate, answered) = (Arc::clone(&gate), Arc::clone(&answered));
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                let mut sent = 0u64;
                while Instant::now() < deadline {
                    {
                        let stopping = gate.read().expect("gate");
                        if *stopping {
                            break;
                        }
                        if index % 2 == 0 {
                            client.send(&get("/"));
                        } else {
                            client.send(&post("/echo", b"0123456789"));
                        }
                        sent += 1;
                    }
                    let response = client.read_response();
                    assert_eq!(response.status, 200, "connection {index}");
                    answered.fetch_add(1, Ordering::SeqCst);
                    if response.says_close() {
                        break;
                    }
                }
                // Every request sent was answered; the server then closes the connection.
                assert!(
                    client.read_until_closed().is_empty(),
                    "connection {index}: bytes after the last response"
                );
                sent
            })
        })
        .collect();
    // An idle keep-alive connection, and one in the middle of a request body.
    let mut idle = Client::connect(addr);
    idle.send(&get("/"));
    assert_eq!(idle.read_response().status, 200);
    let mut midway = Client::connect(addr);
    midway.send(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\n01234");

    let warmed = Instant::now() + Duration::from_secs(20);
    while answered.load(Ordering::SeqCst) < 2000 {
        assert!(Instant::now() < warmed, "traffic too slow");
        std::thread::sleep(Duration::from_millis(1));
    }
    let signalled = {
        let mut stopping = gate.write().expect("gate");
        *stopping = true;
        daemon.signal(Signal::SIGTERM);
        Instant::now()
    };
    midway.send(b"56789");
    let response = midway.read_response();
    assert_eq!(response.status, 200);
    assert!(response.body.ends_with(b"0123456789"));
    // Its head was parsed before the drain began, so its response may have promised
    // keep-alive; the connection closes after it all the same.
    assert!(midway.read_until_closed().is_empty());
    assert!(
        idle.read_until_closed().is_empty(),
        "the idle connection is closed"
    );

    expect_clean_stop(&mut daemon, threads, &answered, signalled);
}

const DEPTH: usize = 8;

/// Bigger than loopback socket buffers grow to, so its response waits for the reader.
const BIG_FILE: usize = 32 << 20;

#[test]
fn sigterm_answers_every_pipelined_request_received_then_closes() {
    let root = temp_path("shutdown-root");
    std::fs::create_dir_all(&root).expect("mkdir");
    let big: Vec<u8> = (0..BIG_FILE).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("big.bin"), &big).expect("write big file");
    let routes = format!(
        "{ROUTES}\n[[route]]\nname = \"files\"\npath = \"/files\"\nhandler = \"static\"\n\
         root = {:?}\n",
        root.display().to_string()
    );
    let mut daemon = Daemon::start(&server("20s"), &routes);
    let addr = daemon.addr;
    // As above: every batch is sent whole before the signal, or not at all.
    let gate = Arc::new(RwLock::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(60);
    let threads: Vec<_> = (0..16)
        .map(|index| {
            let (gate, answered) = (Arc::clone(&gate), Arc::clone(&answered));
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                let mut sent = 0u64;
                let mut closed = false;
                while !closed && Instant::now() < deadline {
                    {
                        let stopping = gate.read().expect("gate");
                        if *stopping {
                            break;
                        }
                        // One write: the batch reaches the server as a whole.
                        let batch: Vec<u8> = if index % 2 == 0 {
                            get("/").repeat(DEPTH)
                        } else {
                            post("/echo", b"0123456789").repeat(DEPTH)
                        };
                        client.send(&batch);
                        sent += DEPTH as u64;
                    }
                    for position in 0..DEPTH {
                        let response = client.read_response();
                        assert_eq!(response.status, 200, "connection {index}, {position}");
                        answered.fetch_add(1, Ordering::SeqCst);
                        if response.says_close() {
                            assert_eq!(
                                position,
                                DEPTH - 1,
                                "connection {index}: closed with requests of its batch unanswered"
                            );
                            closed = true;
                        }
                    }
                }
                // Every request sent was answered; then an orderly close (EOF, not a reset).
                let mut rest = Vec::new();
                let read = client.stream.read_to_end(&mut rest);
                assert!(
                    matches!(read, Ok(0)),
                    "connection {index}: {read:?} after the last response ({} bytes)",
                    rest.len()
                );
                sent
            })
        })
        .collect();

    let warmed = Instant::now() + Duration::from_secs(20);
    while answered.load(Ordering::SeqCst) < 2000 {
        assert!(Instant::now() < warmed, "traffic too slow");
        std::thread::sleep(Duration::from_millis(1));
    }
    // Connections certain to be caught mid-batch: a file too big for the socket buffers,
    // then 7 requests pipelined behind it, all in one write. Once its first bytes arrive the
    // server has read the whole batch; the client reads nothing more until the signal, so
    // the file's response is still under way when the stop begins.
    let held: Vec<Client> = (0..4)
        .map(|_| {
            let mut client = Client::connect(addr);
            let mut batch = get("/files/big.bin");
            for position in 1..DEPTH {
                if position % 2 == 0 {
                    batch.extend_from_slice(&post("/echo", b"0123456789"));
                } else {
                    batch.extend_from_slice(&get("/"));
                }
            }
            client.send(&batch);
            let mut first = [0u8; 1];
            assert_eq!(client.stream.peek(&mut first).expect("peek"), 1);
            client
        })
        .collect();
    let signalled = {
        let mut stopping = gate.write().expect("gate");
        *stopping = true;
        daemon.signal(Signal::SIGTERM);
        Instant::now()
    };
    for (index, mut client) in held.into_iter().enumerate() {
        let file = client.read_response();
        assert_eq!(file.status, 200, "held {index}");
        assert!(file.body == big, "held {index}: file body differs");
        assert!(
            !file.says_close(),
            "held {index}: more was received behind it"
        );
        for position in 1..DEPTH {
            let response = client.read_response();
            assert_eq!(response.status, 200, "held {index}, {position}");
            let want: &[u8] = if position % 2 == 0 {
                b"0123456789"
            } else {
                b"hello"
            };
            assert!(
                response.body.ends_with(want),
                "held {index}, {position}: {:?}",
                response.text()
            );
            assert_eq!(
                response.says_close(),
                position == DEPTH - 1,
                "held {index}, {position}: only the last says Connection: close"
            );
        }
        let mut rest = Vec::new();
        let read = client.stream.read_to_end(&mut rest);
        assert!(
            matches!(read, Ok(0)),
            "held {index}: {read:?} after the last response ({} bytes)",
            rest.len()
        );
    }
    expect_clean_stop(&mut daemon, threads, &answered, signalled);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn sigint_stops_gracefully_too() {
    let mut daemon = Daemon::start(&server("20s"), ROUTES);
    let mut client = daemon_client(&daemon);
    daemon.signal(Signal::SIGINT);
    assert!(client.read_until_closed().is_empty());
    assert_eq!(daemon.wait_exit(Duration::from_secs(15)).code(), Some(0));
    daemon.wait_log("SIGINT: stopping gracefully");
}

/// A connection that has had one answer and is now idle.
fn daemon_client(daemon: &Daemon) -> Client {
    let mut client = Client::connect(daemon.addr);
    client.send(&get("/"));
    assert_eq!(client.read_response().status, 200);
    client
}

#[test]
fn a_request_stuck_past_shutdown_timeout_does_not_hold_the_exit() {
    let mut daemon = Daemon::start(&server("1s"), ROUTES);
    let mut stuck = Client::connect(daemon.addr);
    // The server has begun the request once it asks for the body (`100 Continue`: an
    // event, whichever worker took the connection); then half a body, and nothing more.
    stuck.send(
        b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n",
    );
    assert_eq!(stuck.read_interim(), 100);
    stuck.send(b"01234");
    let mut other = daemon_client(&daemon);
    let signalled = Instant::now();
    daemon.signal(Signal::SIGTERM);
    assert!(other.read_until_closed().is_empty());
    let status = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    let took = signalled.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "exited before the timeout: {took:?}"
    );
    let _ = stuck.read_until_closed();
    daemon.wait_log("closed 1 connection(s) with requests unfinished");
}

#[test]
fn sigquit_exits_at_once() {
    let mut daemon = Daemon::start(&server("1h"), ROUTES);
    let mut stuck = Client::connect(daemon.addr);
    stuck.send(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\n01234");
    let _other = daemon_client(&daemon);
    let signalled = Instant::now();
    daemon.signal(Signal::SIGQUIT);
    let status = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "took {:?}",
        signalled.elapsed()
    );
    let _ = stuck.read_until_closed();
}

#[test]
fn sigquit_during_a_graceful_stop_exits_at_once() {
    let mut daemon = Daemon::start(&server("1h"), ROUTES);
    let mut stuck = Client::connect(daemon.addr);
    stuck.send(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\n01234");
    let _other = daemon_client(&daemon);
    daemon.signal(Signal::SIGTERM);
    daemon.wait_log("SIGTERM: stopping gracefully");
    daemon.signal(Signal::SIGQUIT);
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)).code(), Some(0));
}

/// The end of a stop under traffic: every request a traffic thread sent was answered, and
/// the daemon exited 0 within 15 s of the signal, saying every request finished.
fn expect_clean_stop(
    daemon: &mut Daemon,
    threads: Vec<std::thread::JoinHandle<u64>>,
    answered: &AtomicU64,
    signalled: Instant,
) {
    let mut sent = 0;
    for thread in threads {
        sent += thread
            .join()
            .expect("a traffic connection failed (see above)");
    }
    assert_eq!(
        sent,
        answered.load(Ordering::SeqCst),
        "requests sent vs answered"
    );
    let status = daemon.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));
    assert!(
        signalled.elapsed() < Duration::from_secs(15),
        "took {:?}",
        signalled.elapsed()
    );
    daemon.wait_log("stopped: every request finished");
}
