//! One worker thread: a reactor holding this worker's listeners and connections, plus the
//! state they share (handler, buffer pool, cached Date, limits, access-log buffer).
//!
//! Nothing here is shared with other workers except the handler, which is read-only, and
//! a connection counter written once per connection; the control side talks to a worker
//! only through its mailbox.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::TcpListener;

use crate::http1::date::DateCache;
use crate::reactor::{
    BufPool, Context, MailSender, Mailbox, Next, Reactor, Readiness, Registry, Target, Token,
};
use crate::service::{Handler, Wake};

use super::access::{AccessLog, FLUSH_AT};
use super::listener::{self, Accepted};
use super::outbound::{OutboundRef, Outbounds};
use super::stats::{ConnectionInfo, ServerStats, WorkerStats};
use super::{Limits, conn::Conn, exchange::Active, memory::Burst};
use super::{stamps::Timing, stream::Listener};

/// Readiness events handled per poll call.
const EVENTS_PER_TURN: usize = 1024;

/// Buffers each worker keeps cached for reuse.
const CACHED_BUFFERS: usize = 256;

/// A message from the control side.
pub(super) enum WorkerMessage<H> {
    /// Serve new requests with this handler from now on.
    SetHandler(Arc<H>),
    /// Apply these limits and timeouts to requests from now on.
    SetLimits(Limits),
    /// Log requests this way from now on (after handing over what is buffered).
    SetAccessLog(Option<AccessLog>),
    /// Accept on this socket too.
    AddListener(TcpListener),
    /// Stop accepting on this address (after taking what is queued).
    RemoveListener(SocketAddr),
    /// Stop gracefully by `deadline`, then report the connections closed by force.
    Drain {
        deadline: Instant,
        report: Sender<usize>,
    },
    /// Answer when every message before this one has been applied.
    Barrier(Sender<()>),
    /// Close everything and end the thread.
    Stop,
}

/// Requests to a worker that do not depend on the handler type: reading its counters and
/// connections, and waking an exchange.
pub(super) enum Aux {
    /// Send this worker's counters.
    Stats(Sender<ServerStats>),
    /// Send a description of each open connection.
    Connections(Sender<Vec<ConnectionInfo>>),
    /// Offer room to the exchange of request `request` on the connection `token`.
    Wake { token: Token, request: u64 },
}

/// Carries [`ExchangeWaker`](crate::service::ExchangeWaker) calls into the worker's mailbox.
struct WakeChannel(MailSender<Aux>);

impl Wake for WakeChannel {
    fn wake(&self, token: usize, request: u64) {
        // A worker that has stopped has no exchange left to wake.
        let _ = self.0.send(Aux::Wake {
            token: Token(token),
            request,
        });
    }
}

/// What a worker is started with besides its listeners and handler.
pub(super) struct WorkerSettings {
    pub(super) index: usize,
    pub(super) limits: Limits,
    pub(super) access_log: Option<AccessLog>,
    pub(super) metrics: bool,
    pub(super) connection_gauge: Arc<AtomicUsize>,
}

/// State shared by all targets of one worker.
pub(super) struct Shared<H: Handler> {
    pub(super) handler: Arc<H>,
    pub(super) limits: Limits,
    pub(super) pool: BufPool,
    pub(super) date: DateCache,
    /// When the cached Date's second ends.
    date_expires: Instant,
    /// Open connections of this worker.
    connections: usize,
    /// When to give memory back after many connections came and went.
    burst: Burst,
    /// The same count, for the control side to read.
    connection_gauge: Arc<AtomicUsize>,
    /// A listener stopped at the connection limit and waits for a slot.
    accept_waiting: bool,
    /// Where a request path that is not already in normal form is normalised (reused, so
    /// normalising allocates only until it has grown to the longest path seen).
    pub(super) path_scratch: String,
    /// Stopping: the next response on each connection closes it, idle ones close now.
    pub(super) draining: bool,
    /// Access logging, if on, and the lines not yet handed to its sink.
    pub(super) access_log: Option<AccessLog>,
    pub(super) access_lines: Vec<u8>,
    /// The worker's counters, when metrics are on.
    pub(super) stats: Option<WorkerStats>,
    /// Where exchange wakers send.
    pub(super) wake: Arc<dyn Wake>,
    /// The worker's number (for introspection).
    pub(super) index: usize,
    /// Request states for reuse: a connection holds one only while it serves a request.
    pub(super) actives: Vec<Box<Active<H::Exchange>>>,
    /// Connections exchanges opened to other servers, and their keep-alive pool.
    pub(super) outbounds: Outbounds,
    /// The clock of the connection `drive` call under way, and the requests it finished.
    pub(super) timing: Timing,
}

impl<H: Handler> Shared<H> {
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
            self.date_expires = now + Duration::from_nanos(1_000_000_000 - u64::from(into_second));
        }
    }

    pub(super) fn connection_opened(&mut self) {
        if let Some(stats) = &mut self.stats {
            stats.accepted();
        }
        self.connections += 1;
        self.burst.opened(self.connections);
        self.connection_gauge
            .store(self.connections, Ordering::Relaxed);
    }

    pub(super) fn connection_closed(&mut self) {
        self.connections -= 1;
        self.connection_gauge
            .store(self.connections, Ordering::Relaxed);
    }

    /// Hands buffered access-log lines to the sink.
    fn flush_access_log(&mut self) {
        if let (Some(log), false) = (&self.access_log, self.access_lines.is_empty()) {
            log.sink.write_batch(&self.access_lines);
        }
        self.access_lines.clear();
    }
}

/// Everything a worker's reactor dispatches to.
pub(super) enum WorkerTarget<H: Handler> {
    Listener(ListenSocket),
    Connection(Box<Conn<H::Exchange>>),
    /// A connection to another server, used by a client connection's exchange.
    Outbound(OutboundRef),
}

pub(super) struct ListenSocket {
    socket: Listener,
}

impl<H: Handler> Target for WorkerTarget<H> {
    type Shared = Shared<H>;

    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        match self {
            WorkerTarget::Listener(listener) => {
                registry.register(&mut listener.socket, token, mio::Interest::READABLE)
            }
            WorkerTarget::Connection(conn) => conn.register(registry, token),
            // Its socket is in the worker's `Outbounds`: registered in `on_spawn`.
            WorkerTarget::Outbound(_) => Ok(()),
        }
    }

    fn on_ready(&mut self, readiness: Readiness, cx: &mut Context<'_, Self>) -> Next {
        let next = match self {
            WorkerTarget::Listener(listener) => listener.accept_all(cx),
            WorkerTarget::Connection(conn) => conn.on_ready(readiness, cx),
            WorkerTarget::Outbound(outbound) => outbound.on_ready(readiness, cx),
        };
        Outbounds::settle(cx);
        next
    }

    fn on_timeout(&mut self, cx: &mut Context<'_, Self>) -> Next {
        let next = match self {
            WorkerTarget::Listener(listener) => listener.accept_all(cx),
            WorkerTarget::Connection(conn) => conn.on_timeout(cx),
            WorkerTarget::Outbound(outbound) => outbound.on_timeout(cx),
        };
        Outbounds::settle(cx);
        next
    }

    fn initial_deadline(&self, shared: &Shared<H>, now: Instant) -> Option<Instant> {
        match self {
            WorkerTarget::Listener(_) | WorkerTarget::Outbound(_) => None,
            WorkerTarget::Connection(_) => Some(now + shared.limits.timeouts.idle),
        }
    }

    fn on_spawn(&mut self, cx: &mut Context<'_, Self>) -> Next {
        let next = match self {
            WorkerTarget::Listener(_) => Next::Keep,
            WorkerTarget::Connection(conn) => conn.on_spawn(cx),
            WorkerTarget::Outbound(outbound) => outbound.on_spawn(cx),
        };
        Outbounds::settle(cx);
        next
    }

    fn on_wake(&mut self, cx: &mut Context<'_, Self>) -> Next {
        let next = match self {
            WorkerTarget::Listener(_) => Next::Keep,
            WorkerTarget::Connection(conn) => conn.on_wake(None, cx),
            WorkerTarget::Outbound(outbound) => outbound.on_wake(cx),
        };
        Outbounds::settle(cx);
        next
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
                Accepted::Stream(stream, peer) => {
                    cx.shared.connection_opened();
                    let conn = Conn::new(stream, peer, cx.now());
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
    /// Each listener's TCP address (`None`: a Unix socket) and token.
    listeners: Vec<(Option<SocketAddr>, Token)>,
    sender: MailSender<WorkerMessage<H>>,
    mailbox: Mailbox<WorkerMessage<H>>,
    aux_sender: MailSender<Aux>,
    aux: Mailbox<Aux>,
    /// When buffered access-log lines are handed over next.
    next_log_flush: Instant,
    /// Set once a drain began: when to give up, and where to report.
    drain: Option<(Instant, Sender<usize>)>,
}

/// What the mailbox asked for.
enum Control {
    Continue,
    Stop,
}

impl<H: Handler> Worker<H> {
    pub(super) fn new(
        settings: WorkerSettings,
        sockets: Vec<Listener>,
        handler: Arc<H>,
    ) -> io::Result<Self> {
        let WorkerSettings {
            index,
            limits,
            access_log,
            metrics,
            connection_gauge,
        } = settings;
        let mut reactor = Reactor::new(EVENTS_PER_TURN)?;
        let (sender, mailbox) = reactor.mailbox();
        let (aux_sender, aux) = reactor.mailbox();
        let mut listeners = Vec::with_capacity(sockets.len());
        for socket in sockets {
            let addr = socket.local_addr()?;
            let token = reactor.insert(WorkerTarget::Listener(ListenSocket { socket }))?;
            listeners.push((addr, token));
        }
        let now = Instant::now();
        Ok(Worker {
            index,
            reactor,
            shared: Shared {
                handler,
                pool: pool_for(&limits),
                limits,
                date: DateCache::new(SystemTime::now()),
                date_expires: now,
                connections: 0,
                burst: Burst::default(),
                connection_gauge,
                accept_waiting: false,
                path_scratch: String::new(),
                draining: false,
                access_log,
                access_lines: Vec::new(),
                stats: metrics.then(WorkerStats::new),
                wake: Arc::new(WakeChannel(aux_sender.clone())),
                index,
                actives: Vec::new(),
                outbounds: Outbounds::default(),
                timing: Timing::new(now),
            },
            listeners,
            sender,
            mailbox,
            aux_sender,
            aux,
            next_log_flush: now,
            drain: None,
        })
    }

    pub(super) fn senders(&self) -> (MailSender<WorkerMessage<H>>, MailSender<Aux>) {
        (self.sender.clone(), self.aux_sender.clone())
    }

    pub(super) fn run(mut self) {
        loop {
            let wait = self.wait_limit();
            let turn = match self.reactor.turn(&mut self.shared, wait) {
                Ok(turn) => turn,
                Err(err) => {
                    log::error!("worker {}: poll failed: {err}; stopping", self.index);
                    break;
                }
            };
            if turn.woken {
                self.read_aux();
                if let Control::Stop = self.read_mailbox() {
                    break;
                }
            }
            self.resume_accepting();
            self.shared
                .burst
                .after_turn(self.shared.connections, self.index);
            let now = self.reactor.now();
            if self.shared.access_lines.len() >= FLUSH_AT
                || (now >= self.next_log_flush && !self.shared.access_lines.is_empty())
            {
                self.shared.flush_access_log();
            }
            if now >= self.next_log_flush {
                self.next_log_flush = now + self.flush_interval();
            }
            if let Some((deadline, _)) = &self.drain {
                if self.shared.connections == 0 {
                    self.finish_drain(0);
                    break;
                }
                if now >= *deadline {
                    let forced = self.shared.connections;
                    self.close_everything();
                    self.finish_drain(forced);
                    break;
                }
            }
        }
        self.shared.flush_access_log();
    }

    fn flush_interval(&self) -> Duration {
        self.shared
            .access_log
            .as_ref()
            .map_or(Duration::from_secs(1), |log| log.flush_interval)
    }

    /// How long a turn may wait: until the access-log flush when lines are buffered, and
    /// until the drain deadline while draining.
    fn wait_limit(&self) -> Option<Duration> {
        let now = Instant::now();
        let flush = (!self.shared.access_lines.is_empty())
            .then(|| self.next_log_flush.saturating_duration_since(now));
        let drain = self
            .drain
            .as_ref()
            .map(|(deadline, _)| deadline.saturating_duration_since(now));
        match (flush, drain) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn read_mailbox(&mut self) -> Control {
        while let Some(message) = self.mailbox.try_recv() {
            match message {
                WorkerMessage::SetHandler(handler) => {
                    self.shared.handler = handler;
                    self.shared.outbounds.retire();
                    for token in self.shared.outbounds.take_wakes() {
                        self.reactor
                            .with_target(&mut self.shared, token, |target, cx| target.on_wake(cx));
                    }
                    if let Some(stats) = &mut self.shared.stats {
                        stats.table_changed();
                    }
                }
                WorkerMessage::SetLimits(limits) => {
                    if pool_for(&limits).read_capacity() != self.shared.pool.read_capacity() {
                        // Buffers still out come back to the new pool, which frees those of
                        // the old size instead of caching them.
                        self.shared.pool = pool_for(&limits);
                    }
                    self.shared.limits = limits;
                }
                WorkerMessage::SetAccessLog(access_log) => {
                    self.shared.flush_access_log();
                    self.shared.access_log = access_log;
                }
                WorkerMessage::AddListener(socket) => self.add_listener(socket),
                WorkerMessage::RemoveListener(addr) => self.remove_listener(addr),
                WorkerMessage::Drain { deadline, report } => self.begin_drain(deadline, report),
                WorkerMessage::Barrier(ack) => {
                    let _ = ack.send(());
                }
                WorkerMessage::Stop => {
                    self.close_everything();
                    return Control::Stop;
                }
            }
        }
        Control::Continue
    }

    fn read_aux(&mut self) {
        while let Some(message) = self.aux.try_recv() {
            match message {
                Aux::Stats(reply) => {
                    let open = self.shared.connections as u64;
                    let mut stats = self.shared.stats.as_ref().map_or_else(
                        || {
                            let mut empty = ServerStats::empty();
                            empty.connections_open = open;
                            empty
                        },
                        |stats| stats.snapshot(open),
                    );
                    stats.outbound = self.shared.outbounds.per_key();
                    let _ = reply.send(stats);
                }
                Aux::Connections(reply) => {
                    let now = self.reactor.now();
                    let index = self.shared.index;
                    let list = self
                        .reactor
                        .targets()
                        .filter_map(|(_, target)| match target {
                            WorkerTarget::Connection(conn) => Some(conn.info(index, now)),
                            WorkerTarget::Listener(_) | WorkerTarget::Outbound(_) => None,
                        })
                        .collect();
                    let _ = reply.send(list);
                }
                Aux::Wake { token, request } => {
                    self.reactor
                        .with_target(&mut self.shared, token, |target, cx| {
                            let next = match target {
                                WorkerTarget::Connection(conn) => conn.on_wake(Some(request), cx),
                                WorkerTarget::Listener(_) | WorkerTarget::Outbound(_) => Next::Keep,
                            };
                            Outbounds::settle(cx);
                            next
                        });
                }
            }
        }
    }

    fn add_listener(&mut self, socket: TcpListener) {
        let added = socket.local_addr().and_then(|addr| {
            let socket = Listener::Tcp(socket);
            let token = self
                .reactor
                .insert(WorkerTarget::Listener(ListenSocket { socket }))?;
            Ok((Some(addr), token))
        });
        match added {
            Ok(listener) => self.listeners.push(listener),
            Err(err) => log::error!("worker {}: cannot add a listener: {err}", self.index),
        }
    }

    /// Takes what is queued on the listener for `addr`, then closes it.
    fn remove_listener(&mut self, addr: SocketAddr) {
        let Some(at) = self
            .listeners
            .iter()
            .position(|(bound, _)| *bound == Some(addr))
        else {
            return;
        };
        self.remove_listener_at(at);
    }

    /// Takes what is queued on the `at`th listener, then closes it.
    fn remove_listener_at(&mut self, at: usize) {
        let (_, token) = self.listeners.remove(at);
        self.reactor
            .with_target(&mut self.shared, token, |target, cx| {
                if let WorkerTarget::Listener(listener) = target {
                    listener.accept_all(cx);
                }
                Next::Remove
            });
    }

    /// Stops accepting (after taking what is queued), and closes what is idle; requests in
    /// flight finish, each connection closing after its current response.
    fn begin_drain(&mut self, deadline: Instant, report: Sender<usize>) {
        self.shared.draining = true;
        self.drain = Some((deadline, report));
        while !self.listeners.is_empty() {
            self.remove_listener_at(0);
        }
        self.reactor.for_each(&mut self.shared, |target, cx| {
            let next = match target {
                WorkerTarget::Connection(conn) => conn.on_drain(cx),
                WorkerTarget::Listener(_) | WorkerTarget::Outbound(_) => Next::Keep,
            };
            Outbounds::settle(cx);
            next
        });
    }

    fn finish_drain(&mut self, forced: usize) {
        if let Some((_, report)) = self.drain.take() {
            let _ = report.send(forced);
        }
    }

    fn close_everything(&mut self) {
        self.reactor
            .for_each(&mut self.shared, |target, cx| match target {
                WorkerTarget::Connection(conn) => conn.abort_now(cx),
                WorkerTarget::Listener(_) | WorkerTarget::Outbound(_) => Next::Remove,
            });
        self.listeners.clear();
    }

    /// A listener that stopped at the connection limit starts again once a slot is free.
    fn resume_accepting(&mut self) {
        if !self.shared.accept_waiting
            || self.shared.connections >= self.shared.limits.max_connections
        {
            return;
        }
        self.shared.accept_waiting = false;
        for &(_, token) in &self.listeners {
            self.reactor
                .with_target(&mut self.shared, token, |target, cx| target.on_timeout(cx));
        }
    }
}

/// A buffer pool sized for `limits`: a read buffer holds the largest head allowed.
fn pool_for(limits: &Limits) -> BufPool {
    let read_capacity = limits.head.max_head_bytes.max(16 * 1024);
    let write_capacity = limits.output_high_water.min(64 * 1024);
    BufPool::new(read_capacity, write_capacity, CACHED_BUFFERS)
}
