//! Unit tests of the reactor with real sockets on 127.0.0.1: dispatch, spawning, deadlines
//! (including the lazy re-arm and stale entries), and the waker.

use std::io::{Read, Write};
use std::net::TcpStream as StdStream;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};

use super::*;

/// What happened, in order, for the test to check.
#[derive(Default)]
struct Log {
    events: Vec<String>,
}

enum Probe {
    Listener(TcpListener),
    Conn(TcpStream),
    /// Spawns `Eager` connections.
    EagerListener(TcpListener),
    /// A connection that serves itself in `on_spawn`, before registration.
    Eager(TcpStream),
    /// A target with no descriptor events of its own: only timers reach it.
    Timer(mio::net::UdpSocket, &'static str),
}

impl Target for Probe {
    type Shared = Log;

    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        match self {
            Probe::Listener(l) => registry.register(l, token, Interest::READABLE),
            Probe::Conn(c) => registry.register(c, token, Interest::READABLE),
            Probe::EagerListener(l) => registry.register(l, token, Interest::READABLE),
            Probe::Eager(c) => {
                self_log_registered();
                registry.register(c, token, Interest::READABLE)
            }
            Probe::Timer(s, _) => registry.register(s, token, Interest::READABLE),
        }
    }

    fn on_ready(&mut self, _: Readiness, cx: &mut Context<'_, Self>) -> Next {
        match self {
            Probe::Listener(listener) => {
                while let Ok((stream, _)) = listener.accept() {
                    cx.shared.events.push("accepted".into());
                    cx.spawn(Probe::Conn(stream));
                }
                Next::Keep
            }
            Probe::EagerListener(listener) => {
                while let Ok((stream, _)) = listener.accept() {
                    cx.shared.events.push("accepted".into());
                    cx.spawn(Probe::Eager(stream));
                }
                Next::Keep
            }
            Probe::Conn(stream) | Probe::Eager(stream) => echo(stream, cx),
            Probe::Timer(..) => Next::Keep,
        }
    }

    fn on_spawn(&mut self, cx: &mut Context<'_, Self>) -> Next {
        match self {
            Probe::Eager(stream) => echo(stream, cx),
            _ => Next::Keep,
        }
    }

    fn on_timeout(&mut self, cx: &mut Context<'_, Self>) -> Next {
        if let Probe::Timer(_, name) = self {
            cx.shared.events.push(format!("timeout {name}"));
        }
        Next::Remove
    }
}

/// Echoes what is there; removes the target at end of stream.
fn echo(stream: &mut TcpStream, cx: &mut Context<'_, Probe>) -> Next {
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => {
                cx.shared.events.push("closed".into());
                return Next::Remove;
            }
            Ok(n) => {
                let _ = stream.write_all(&buf[..n]);
                cx.shared.events.push(format!("echoed {n}"));
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Next::Keep,
            Err(_) => return Next::Remove,
        }
    }
}

thread_local! {
    /// `Eager` registrations on this thread (`register` has no access to the log).
    static EAGER_REGISTERED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn self_log_registered() {
    EAGER_REGISTERED.with(|n| n.set(n.get() + 1));
}

fn timer_socket() -> mio::net::UdpSocket {
    mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap()
}

/// Turns the loop until `done` holds, failing after a generous bound.
fn turn_until(reactor: &mut Reactor<Probe>, log: &mut Log, done: impl Fn(&Log) -> bool) {
    let give_up = Instant::now() + Duration::from_secs(10);
    while !done(log) {
        assert!(
            Instant::now() < give_up,
            "gave up; events so far: {:?}",
            log.events
        );
        reactor.turn(log, Some(Duration::from_millis(100))).unwrap();
    }
}

#[test]
fn spawned_targets_are_registered_and_dispatched() {
    let mut reactor = Reactor::new(16).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    reactor.insert(Probe::Listener(listener)).unwrap();
    let mut log = Log::default();
    let mut client = StdStream::connect(addr).unwrap();
    client.write_all(b"hello").unwrap();
    turn_until(&mut reactor, &mut log, |log| {
        log.events.contains(&"echoed 5".into())
    });
    let mut echoed = [0u8; 5];
    client.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"hello");
    assert_eq!(reactor.len(), 2);
    drop(client);
    turn_until(&mut reactor, &mut log, |log| {
        log.events.contains(&"closed".into())
    });
    assert_eq!(reactor.len(), 1, "a removed target leaves the slab");
}

#[test]
fn deadlines_fire_in_order_and_a_later_deadline_defers_the_timeout() {
    let mut reactor = Reactor::new(16).unwrap();
    let mut log = Log::default();
    let early = reactor
        .insert(Probe::Timer(timer_socket(), "early"))
        .unwrap();
    let moved = reactor
        .insert(Probe::Timer(timer_socket(), "moved"))
        .unwrap();
    let start = reactor.now();
    for (token, after) in [(early, 20), (moved, 10)] {
        reactor.with_target(&mut log, token, |_, cx| {
            cx.set_deadline(Some(start + Duration::from_millis(after)));
            Next::Keep
        });
    }
    // Moving `moved` later costs no queue entry; its early entry must re-arm, not fire.
    reactor.with_target(&mut log, moved, |_, cx| {
        cx.set_deadline(Some(start + Duration::from_millis(60)));
        Next::Keep
    });
    turn_until(&mut reactor, &mut log, |log| log.events.len() == 2);
    assert_eq!(log.events, ["timeout early", "timeout moved"]);
    assert!(reactor.now() >= start + Duration::from_millis(60));
    assert!(reactor.is_empty());
}

#[test]
fn a_stale_timer_never_reaches_the_next_target_in_the_same_slot() {
    let mut reactor = Reactor::new(16).unwrap();
    let mut log = Log::default();
    let first = reactor
        .insert(Probe::Timer(timer_socket(), "first"))
        .unwrap();
    let soon = reactor.now() + Duration::from_millis(10);
    reactor.with_target(&mut log, first, |_, cx| {
        cx.set_deadline(Some(soon));
        Next::Remove
    });
    let second = reactor
        .insert(Probe::Timer(timer_socket(), "second"))
        .unwrap();
    assert_eq!(second.0 & INDEX_MASK, first.0 & INDEX_MASK, "slot reused");
    assert_ne!(second, first, "with a new generation");
    let later = reactor.now() + Duration::from_millis(50);
    reactor.with_target(&mut log, second, |_, cx| {
        cx.set_deadline(Some(later));
        Next::Keep
    });
    turn_until(&mut reactor, &mut log, |log| !log.events.is_empty());
    assert_eq!(log.events, ["timeout second"]);
    assert!(
        reactor.now() >= later,
        "the first target's entry did not fire the second early"
    );
}

#[test]
fn a_mailbox_send_wakes_a_blocked_turn() {
    let mut reactor: Reactor<Probe> = Reactor::new(16).unwrap();
    let (sender, mailbox) = reactor.mailbox::<u32>();
    let thread = std::thread::spawn(move || sender.send(7).unwrap());
    let mut log = Log::default();
    let turn = loop {
        // No deadline: only the waker can end this wait.
        let turn = reactor.turn(&mut log, None).unwrap();
        if turn.woken {
            break turn;
        }
    };
    thread.join().unwrap();
    assert_eq!(turn.events, 0);
    assert_eq!(mailbox.try_recv(), Some(7));
    assert_eq!(mailbox.try_recv(), None);
}

#[test]
fn a_target_done_in_on_spawn_is_never_registered_and_one_that_waits_is() {
    let mut reactor = Reactor::new(16).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    reactor.insert(Probe::EagerListener(listener)).unwrap();
    let mut log = Log::default();

    // Everything the first client will ever send is there before the server accepts.
    let mut early = StdStream::connect(addr).unwrap();
    early.write_all(b"hello").unwrap();
    early.shutdown(std::net::Shutdown::Write).unwrap();
    turn_until(&mut reactor, &mut log, |log| {
        log.events.contains(&"closed".into())
    });
    let mut echoed = Vec::new();
    early.read_to_end(&mut echoed).unwrap();
    assert_eq!(echoed, b"hello");
    assert_eq!(log.events, ["accepted", "echoed 5", "closed"]);
    assert_eq!(
        EAGER_REGISTERED.with(|n| n.get()),
        0,
        "served in on_spawn alone"
    );
    assert_eq!(reactor.len(), 1);

    // The second sends nothing at first: it is registered, and its later bytes arrive as an
    // event (nothing is lost between the first read and the registration).
    let mut late = StdStream::connect(addr).unwrap();
    turn_until(&mut reactor, &mut log, |log| log.events.len() == 4);
    assert_eq!(EAGER_REGISTERED.with(|n| n.get()), 1);
    late.write_all(b"abc").unwrap();
    turn_until(&mut reactor, &mut log, |log| {
        log.events.contains(&"echoed 3".into())
    });
    let mut three = [0u8; 3];
    late.read_exact(&mut three).unwrap();
    assert_eq!(&three, b"abc");
}
