//! One worker thread: a reactor holding this worker's listeners and connections, plus the
//! state they share (handler, buffer pool, cached Date, limits).
//!
//! Nothing here is shared with other workers except the handler, which is read-only; the
//! control side talks to a worker only through its mailbox.

use std::io;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mio::net::TcpListener;

use crate::http1::date::DateCache;
use crate::reactor::{
    BufPool, Context, MailSender, Mailbox, Next, Reactor, Readiness, Registry, Target, Token,
};
use crate::service::Handler;

use super::Limits;
use super::conn::Conn;
use super::listener::{self, Accepted};

/// Readiness events handled per poll call.
const EVENTS_PER_TURN: usize = 1024;

/// Buffers each worker keeps cached for reuse.
const CACHED_BUFFERS: usize = 256;

/// A message from the control side.
pub(super) enum WorkerMessage<H> {
    /// Serve new requests with this handler from now on.
    SetHandler(Arc<H>),
    /// Close everything and end the thread.
    Stop,
}

/// State shared by all targets of one worker.
pub(super) struct Shared<H> {
    pub(super) handler: Arc<H>,
    pub(super) limits: Limits,
    pub(super) pool: BufPool,
    pub(super) date: DateCache,
    /// When the cached Date's second ends.
    date_expires: Instant,
    /// Open connections of this worker.
    pub(super) connections: usize,
    /// A listener stopped at the connection limit and waits for a slot.
    accept_waiting: bool,
    /// Where a request path that is not already in normal form is normalised (reused, so
    /// normalising allocates only until it has grown to the longest path seen).
    pub(super) path_scratch: String,
}

impl<H> Shared<H> {
    /// Refreshes the cached `Date` line when its second has passed (one clock read a
    /// second, not one per request).
    pub(super) fn refresh_date(&mut self, now: Instant) {
        if now >= self.date_expires {
            let system_now = SystemTime::now();
            self.date.refresh(system_now);
            let into_second = system_now
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            self.date_expires =
                now + std::time::Duration::from_nanos(1_000_000_000 - u64::from(into_second));
        }
    }
}

/// Everything a worker's reactor dispatches to.
pub(super) enum WorkerTarget<H: Handler> {
    Listener(ListenSocket),
    Connection(Box<Conn<H::Exchange>>),
}

pub(super) struct ListenSocket {
    socket: TcpListener,
}

impl<H: Handler> Target for WorkerTarget<H> {
    type Shared = Shared<H>;

    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        match self {
            WorkerTarget::Listener(listener) => {
                registry.register(&mut listener.socket, token, mio::Interest::READABLE)
            }
            WorkerTarget::Connection(conn) => conn.register(registry, token),
        }
    }

    fn on_ready(&mut self, readiness: Readiness, cx: &mut Context<'_, Self>) -> Next {
        match self {
            WorkerTarget::Listener(listener) => listener.accept_all(cx),
            WorkerTarget::Connection(conn) => conn.on_ready(readiness, cx),
        }
    }

    fn on_timeout(&mut self, cx: &mut Context<'_, Self>) -> Next {
        match self {
            WorkerTarget::Listener(listener) => listener.accept_all(cx),
            WorkerTarget::Connection(conn) => conn.on_timeout(cx),
        }
    }

    fn initial_deadline(&self, shared: &Shared<H>, now: Instant) -> Option<Instant> {
        match self {
            WorkerTarget::Listener(_) => None,
            WorkerTarget::Connection(_) => Some(now + shared.limits.timeouts.idle),
        }
    }
}

impl ListenSocket {
    /// Accepts until the queue is empty, the worker is full, or descriptors run out.
    fn accept_all<H: Handler>(&mut self, cx: &mut Context<'_, WorkerTarget<H>>) -> Next {
        if cx.deadline().is_some_and(|until| cx.now() < until) {
            // Still backing off; the timer will call again.
            return Next::Keep;
        }
        loop {
            if cx.shared.connections >= cx.shared.limits.max_connections {
                cx.shared.accept_waiting = true;
                return Next::Keep;
            }
            match listener::accept_one(&self.socket, cx.now()) {
                Accepted::Stream(stream) => {
                    cx.shared.connections += 1;
                    let conn = Conn::new(stream, cx.now());
                    cx.spawn(WorkerTarget::Connection(Box::new(conn)));
                }
                Accepted::Drained => return Next::Keep,
                Accepted::Retry => {}
                Accepted::BackOff(until) => {
                    cx.set_deadline(Some(until));
                    return Next::Keep;
                }
            }
        }
    }
}

pub(super) struct Worker<H: Handler> {
    index: usize,
    reactor: Reactor<WorkerTarget<H>>,
    shared: Shared<H>,
    listeners: Vec<Token>,
    sender: MailSender<WorkerMessage<H>>,
    mailbox: Mailbox<WorkerMessage<H>>,
}

impl<H: Handler> Worker<H> {
    pub(super) fn new(
        index: usize,
        sockets: Vec<TcpListener>,
        limits: Limits,
        handler: Arc<H>,
    ) -> io::Result<Self> {
        let mut reactor = Reactor::new(EVENTS_PER_TURN)?;
        let (sender, mailbox) = reactor.mailbox();
        let read_capacity = limits.head.max_head_bytes.max(16 * 1024);
        let write_capacity = limits.output_high_water.min(64 * 1024);
        let mut listeners = Vec::with_capacity(sockets.len());
        for socket in sockets {
            listeners.push(reactor.insert(WorkerTarget::Listener(ListenSocket { socket }))?);
        }
        let now = Instant::now();
        Ok(Worker {
            index,
            reactor,
            shared: Shared {
                handler,
                limits,
                pool: BufPool::new(read_capacity, write_capacity, CACHED_BUFFERS),
                date: DateCache::new(SystemTime::now()),
                date_expires: now,
                connections: 0,
                accept_waiting: false,
                path_scratch: String::new(),
            },
            listeners,
            sender,
            mailbox,
        })
    }

    pub(super) fn sender(&self) -> MailSender<WorkerMessage<H>> {
        self.sender.clone()
    }

    pub(super) fn run(mut self) {
        loop {
            let turn = match self.reactor.turn(&mut self.shared, None) {
                Ok(turn) => turn,
                Err(err) => {
                    log::error!("worker {}: poll failed: {err}; stopping", self.index);
                    return;
                }
            };
            if turn.woken {
                while let Some(message) = self.mailbox.try_recv() {
                    match message {
                        WorkerMessage::SetHandler(handler) => self.shared.handler = handler,
                        WorkerMessage::Stop => return,
                    }
                }
            }
            self.resume_accepting();
        }
    }

    /// A listener that stopped at the connection limit starts again once a slot is free.
    fn resume_accepting(&mut self) {
        if !self.shared.accept_waiting
            || self.shared.connections >= self.shared.limits.max_connections
        {
            return;
        }
        self.shared.accept_waiting = false;
        for &token in &self.listeners {
            self.reactor
                .with_target(&mut self.shared, token, |target, cx| target.on_timeout(cx));
        }
    }
}
