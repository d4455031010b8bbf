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

/// A turn that comes late (a loaded machine) finds several deadlines passed at once: they
/// still fire in deadline order, including one whose queue entry predates a move later.
#[test]
fn deadlines_passed_in_one_late_turn_fire_in_their_order() {
    let mut reactor = Reactor::new(16).unwrap();
    let mut log = Log::default();
    let early = reactor
        .insert(Probe::Timer(timer_socket(), "early"))
        .unwrap();
    let moved = reactor
        .insert(Probe::Timer(timer_socket(), "moved"))
        .unwrap();
    let now = reactor.now();
    let ago = |ms| now.checked_sub(Duration::from_millis(ms)).unwrap();
    for (token, at) in [(early, ago(20)), (moved, ago(30)), (moved, ago(10))] {
        reactor.with_target(&mut log, token, |_, cx| {
            cx.set_deadline(Some(at));
            Next::Keep
        });
    }
    turn_until(&mut reactor, &mut log, |log| log.events.len() == 2);
    assert_eq!(log.events, ["timeout early", "timeout moved"]);
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

/// A target that stops short of draining its socket and yields is dispatched again on the
/// next turn without an event, the loop does not sleep while it has yielded work, and other
/// targets' events are dispatched in the same turns.
#[test]
fn a_yielding_target_runs_again_next_turn_without_an_event() {
    enum Spin {
        /// Yields until its count reaches zero.
        Busy(mio::net::UdpSocket, u32),
        Conn(TcpStream),
    }
    impl Target for Spin {
        type Shared = Log;
        fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
            match self {
                Spin::Busy(socket, _) => registry.register(socket, token, Interest::READABLE),
                Spin::Conn(stream) => registry.register(stream, token, Interest::READABLE),
            }
        }
        fn on_ready(&mut self, _: Readiness, cx: &mut Context<'_, Self>) -> Next {
            match self {
                Spin::Busy(_, left) => {
                    cx.shared.events.push(format!("busy {left}"));
                    *left -= 1;
                    if *left == 0 { Next::Keep } else { Next::Yield }
                }
                Spin::Conn(stream) => {
                    let mut buf = [0u8; 16];
                    if let Ok(n) = stream.read(&mut buf) {
                        cx.shared.events.push(format!("conn read {n}"));
                    }
                    Next::Keep
                }
            }
        }
        fn on_timeout(&mut self, _: &mut Context<'_, Self>) -> Next {
            Next::Keep
        }
        fn on_spawn(&mut self, cx: &mut Context<'_, Self>) -> Next {
            // The busy target starts working at once, as an accepted connection would.
            match self {
                Spin::Busy(..) => self.on_ready(Readiness::default(), cx),
                Spin::Conn(_) => Next::Keep,
            }
        }
    }

    let mut reactor: Reactor<Spin> = Reactor::new(16).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = StdStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server_side, _) = listener.accept().unwrap();
    server_side.set_nonblocking(true).unwrap();
    reactor
        .insert(Spin::Conn(TcpStream::from_std(server_side)))
        .unwrap();
    let mut log = Log::default();
    // Spawned through a dispatch, like an accepted connection: `on_spawn` yields at once.
    let busy = reactor.insert(Spin::Busy(timer_socket(), 1)).unwrap();
    reactor.with_target(&mut log, busy, |_, cx| {
        cx.spawn(Spin::Busy(timer_socket(), 3));
        Next::Keep
    });
    assert_eq!(log.events, ["busy 3"]);

    client.write_all(b"ping").unwrap();
    // Each turn with yielded work polls without sleeping: with nothing else to wake it, a
    // loop that slept would take the whole minute of `max_wait` and fail the bound below.
    let started = Instant::now();
    while !log.events.contains(&"busy 1".to_string())
        || !log.events.iter().any(|e| e.starts_with("conn read"))
    {
        reactor
            .turn(&mut log, Some(Duration::from_secs(3600)))
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            log.events
        );
    }
    assert_eq!(
        log.events
            .iter()
            .filter(|e| e.starts_with("busy"))
            .collect::<Vec<_>>(),
        ["busy 3", "busy 2", "busy 1"]
    );
}

/// `Context::wake` has another target of the loop dispatched next turn (`on_wake`, not
/// `on_ready`) without the loop sleeping, once however often it was woken; a stale token is
/// ignored.
#[test]
fn a_woken_target_runs_next_turn_once_without_an_event() {
    struct Quiet(mio::net::UdpSocket, &'static str);
    impl Target for Quiet {
        type Shared = Log;
        fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
            registry.register(&mut self.0, token, Interest::READABLE)
        }
        fn on_ready(&mut self, readiness: Readiness, cx: &mut Context<'_, Self>) -> Next {
            cx.shared
                .events
                .push(format!("{} {}", self.1, readiness == Readiness::default()));
            Next::Keep
        }
        fn on_timeout(&mut self, _: &mut Context<'_, Self>) -> Next {
            Next::Keep
        }
        fn on_wake(&mut self, cx: &mut Context<'_, Self>) -> Next {
            cx.shared.events.push(format!("{} woken", self.1));
            Next::Keep
        }
    }

    let mut reactor: Reactor<Quiet> = Reactor::new(16).unwrap();
    let mut log = Log::default();
    let waker = reactor.insert(Quiet(timer_socket(), "waker")).unwrap();
    let sleeper = reactor.insert(Quiet(timer_socket(), "sleeper")).unwrap();
    let gone = reactor.insert(Quiet(timer_socket(), "gone")).unwrap();
    reactor.with_target(&mut log, gone, |_, _| Next::Remove);
    reactor.with_target(&mut log, waker, |_, cx| {
        cx.wake(sleeper);
        cx.wake(sleeper);
        cx.wake(gone);
        Next::Keep
    });
    // Nothing else ends this turn before its 5 s: a loop that slept them fails the bound,
    // one that forgot the wake dispatches nothing.
    let started = Instant::now();
    reactor
        .turn(&mut log, Some(Duration::from_secs(5)))
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(4), "slept");
    assert_eq!(log.events, ["sleeper woken"]);
}
