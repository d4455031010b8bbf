//! The HTTP/1.1 server: N worker threads, each a reactor with its own `SO_REUSEPORT`
//! listeners and its own connections, joined to a [`Handler`].
//!
//! This layer joins the reactor, the codec and the service model. It receives built values
//! (a [`ServerConfig`] and a handler), never TOML, and it never touches process-wide state
//! (signals, logging setup, daemonizing): that is the daemon's job. On the per-request path
//! it takes no lock and allocates nothing in steady state.

mod access;
mod answer;
mod conn;
mod exchange;
mod listener;
mod memory;
mod outbound;
mod routes;
mod sendfile;
mod stamps;
mod stats;
mod stream;
mod sys;
mod worker;

pub use access::{AccessFormat, AccessLog, AccessSink};
pub use routes::{HostPattern, Lookup, PathPattern, Route, RouteTable};
pub use stats::{
    CloseReason, ConnectionInfo, DURATION_BUCKETS, Histogram, MethodLabel, OutboundStats,
    PIPELINE_DEPTH_BUCKETS, REQUESTS_PER_CONNECTION_BUCKETS, RouteStats, ServerStats,
};

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::http1::{ChunkedLimits, HeadLimits};
use crate::reactor::MailSender;
use crate::service::Handler;

use listener::SocketFile;
use stream::Listener;
use worker::{Aux, Worker, WorkerMessage, WorkerSettings};

/// Per-connection limits and timeouts.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Request head limits (431 beyond).
    pub head: HeadLimits,
    /// Chunked-body limits (400 beyond).
    pub chunked: ChunkedLimits,
    /// The largest request body accepted (413 beyond when known up front).
    pub max_body_bytes: u64,
    /// Output buffered above this stops reading and parsing (back-pressure).
    pub output_high_water: usize,
    /// Connections per worker; accepting pauses at the limit.
    pub max_connections: usize,
    /// Requests served on one connection before it closes (0: unlimited).
    pub max_requests_per_connection: u64,
    /// The slowest average rate a request body may arrive at (0: no minimum). The body has
    /// `timeouts.body` of grace, and every byte received earns `1 / rate` seconds more: a
    /// client that falls behind is answered 408 and closed, one that trickles a byte now
    /// and then within the body timeout no longer holds the connection forever.
    pub min_body_bytes_per_second: u64,
    /// Timeouts.
    pub timeouts: Timeouts,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            head: HeadLimits::default(),
            chunked: ChunkedLimits::default(),
            max_body_bytes: 1 << 20,
            output_high_water: 64 * 1024,
            max_connections: 10_000,
            max_requests_per_connection: 10_000,
            min_body_bytes_per_second: 500,
            timeouts: Timeouts::default(),
        }
    }
}

/// Connection timeouts.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// From the first byte of a request head to its end (408 and close beyond).
    pub head: Duration,
    /// Longest silence while a request body is due.
    pub body: Duration,
    /// Longest wait for the next request on a keep-alive connection.
    pub idle: Duration,
    /// Longest time without write progress while output is blocked.
    pub write: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            head: Duration::from_secs(10),
            body: Duration::from_secs(30),
            idle: Duration::from_secs(60),
            write: Duration::from_secs(30),
        }
    }
}

/// What a server is built from.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// What its threads are called: `{name}-{index}` (the daemon's data plane is `worker`,
    /// its admin port `admin`), as `top -H`, profiles and core dumps show them.
    pub name: String,
    /// Addresses to listen on (port 0 picks one port shared by all workers).
    pub listen: Vec<SocketAddr>,
    /// Wake a worker for a new TCP connection only once its first bytes have arrived
    /// (Linux `TCP_DEFER_ACCEPT`, 1 s; Apache httpd's default on Linux): the worker then
    /// reads the request at once instead of registering the connection, sleeping and
    /// waking again, which halves the syscalls and context switches of a
    /// connection-per-request client. A connection that sends nothing is handed over after
    /// about a second. Applies to every TCP listener, inherited ones too.
    pub defer_accept: bool,
    /// Unix stream sockets to listen on, one path each (mode 0660; a stale socket file is
    /// replaced, and the file is removed when the server stops).
    pub unix_listen: Vec<std::path::PathBuf>,
    /// Worker threads (at least 1).
    pub workers: usize,
    /// Limits and timeouts.
    pub limits: Limits,
    /// Access logging, if on.
    pub access_log: Option<AccessLog>,
    /// Count requests and connections for [`StatsHandle`] (off: the request path counts
    /// nothing and the stats stay empty).
    pub metrics: bool,
}

/// A running server.
pub struct ServerHandle<H: Handler> {
    local_addrs: Vec<SocketAddr>,
    /// For listeners added later (`set_listeners`).
    defer_accept: bool,
    workers: Vec<WorkerHandle<H>>,
    /// The Unix socket files, removed once the workers have stopped (in `join`).
    socket_files: Vec<SocketFile>,
}

struct WorkerHandle<H> {
    sender: MailSender<WorkerMessage<H>>,
    /// Requests that are not about the handler type (stats, wakes).
    aux: MailSender<Aux>,
    thread: JoinHandle<()>,
    /// Open connections of the worker, kept by the worker (one update per connection).
    connections: Arc<AtomicUsize>,
}

/// Binds every listener (one `SO_REUSEPORT` socket per worker and address) and starts the
/// workers. Binding errors are returned before any worker starts.
pub fn start<H: Handler>(config: ServerConfig, handler: Arc<H>) -> io::Result<ServerHandle<H>> {
    start_with_inherited(config, handler, Vec::new())
}

/// Like [`start`], but with listening sockets inherited (socket activation): each is matched to
/// the configured address it is bound to and shared by every worker; configured addresses
/// without one are bound as usual. Inherited sockets that match no address are an error.
pub fn start_with_inherited<H: Handler>(
    config: ServerConfig,
    handler: Arc<H>,
    inherited: Vec<std::net::TcpListener>,
) -> io::Result<ServerHandle<H>> {
    let workers = config.workers.max(1);
    let mut inherited: Vec<(SocketAddr, std::net::TcpListener)> = inherited
        .into_iter()
        .map(|socket| Ok((socket.local_addr()?, socket)))
        .collect::<io::Result<_>>()?;
    let mut per_worker: Vec<Vec<Listener>> = (0..workers).map(|_| Vec::new()).collect();
    let mut local_addrs = Vec::with_capacity(config.listen.len());
    for addr in &config.listen {
        let sockets = match inherited.iter().position(|(bound, _)| bound == addr) {
            Some(at) => listener::share(inherited.remove(at).1, workers, config.defer_accept)?,
            None => listener::bind_group(*addr, workers, config.defer_accept)?,
        };
        local_addrs.push(sockets[0].local_addr()?);
        for (slot, socket) in per_worker.iter_mut().zip(sockets) {
            slot.push(Listener::Tcp(socket));
        }
    }
    let mut socket_files = Vec::with_capacity(config.unix_listen.len());
    for path in &config.unix_listen {
        // A failure drops the files bound before it, which removes them.
        let (sockets, file) = listener::bind_unix(path, workers)?;
        socket_files.push(file);
        for (slot, socket) in per_worker.iter_mut().zip(sockets) {
            slot.push(socket);
        }
    }
    if let Some((addr, _)) = inherited.first() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("an inherited socket listens on {addr}, which is not a configured address"),
        ));
    }
    let mut handles: Vec<WorkerHandle<H>> = Vec::with_capacity(workers);
    for (index, listeners) in per_worker.into_iter().enumerate() {
        match spawn_worker(index, listeners, &config, &handler) {
            Ok(worker) => handles.push(worker),
            Err(err) => {
                // Leave nothing half-started behind.
                ServerHandle {
                    local_addrs,
                    defer_accept: config.defer_accept,
                    workers: handles,
                    socket_files,
                }
                .shutdown();
                return Err(err);
            }
        }
    }
    Ok(ServerHandle {
        local_addrs,
        defer_accept: config.defer_accept,
        workers: handles,
        socket_files,
    })
}

fn spawn_worker<H: Handler>(
    index: usize,
    listeners: Vec<Listener>,
    config: &ServerConfig,
    handler: &Arc<H>,
) -> io::Result<WorkerHandle<H>> {
    // The worker is built on its own thread, so exchanges need not be `Send`; it hands back
    // its mailbox, or the error that kept it from starting.
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
    let limits = config.limits.clone();
    let access_log = config.access_log.clone();
    let metrics = config.metrics;
    let handler = Arc::clone(handler);
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    let thread = std::thread::Builder::new()
        .name(format!("{}-{index}", config.name))
        .spawn(move || {
            let settings = WorkerSettings {
                index,
                limits,
                access_log,
                metrics,
                connection_gauge: counter,
            };
            match Worker::new(settings, listeners, handler) {
                Ok(worker) => {
                    let _ = ready_tx.send(Ok(worker.senders()));
                    worker.run();
                }
                Err(err) => {
                    let _ = ready_tx.send(Err(err));
                }
            }
        })?;
    let (sender, aux) = ready_rx
        .recv()
        .map_err(|_| io::Error::other("worker thread ended before starting"))??;
    Ok(WorkerHandle {
        sender,
        aux,
        thread,
        connections,
    })
}

impl<H: Handler> ServerHandle<H> {
    /// The bound address of each configured listen address, in order.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The number of worker threads.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Open client connections across all workers, now.
    pub fn connections(&self) -> usize {
        self.workers
            .iter()
            .map(|worker| worker.connections.load(Ordering::Relaxed))
            .sum()
    }

    /// Publishes a new handler (e.g. a reloaded route table) to every worker. Requests
    /// already started finish with the handler they started with.
    pub fn set_handler(&self, handler: Arc<H>) {
        self.broadcast(|| WorkerMessage::SetHandler(Arc::clone(&handler)));
    }

    /// Publishes new limits and timeouts; they apply to requests started from now on, and
    /// no connection is dropped.
    pub fn set_limits(&self, limits: Limits) {
        self.broadcast(|| WorkerMessage::SetLimits(limits.clone()));
    }

    /// Turns access logging on, off, or to another sink or format. Each worker hands what it
    /// has buffered to the old sink first.
    pub fn set_access_log(&self, access_log: Option<AccessLog>) {
        self.broadcast(|| WorkerMessage::SetAccessLog(access_log.clone()));
    }

    /// Binds every address in `listen` that is not bound yet, then stops accepting on the
    /// addresses no longer listed (their connections finish normally). All or nothing: if a
    /// new address cannot be bound, nothing changes.
    pub fn set_listeners(&mut self, listen: &[SocketAddr]) -> io::Result<()> {
        let workers = self.workers.len();
        let mut added = Vec::new();
        for addr in listen {
            if self.local_addrs.contains(addr) || added.iter().any(|(a, _)| a == addr) {
                continue;
            }
            let sockets = listener::bind_group(*addr, workers, self.defer_accept)?;
            added.push((sockets[0].local_addr()?, sockets));
        }
        for (addr, sockets) in added {
            for (worker, socket) in self.workers.iter().zip(sockets) {
                let _ = worker.sender.send(WorkerMessage::AddListener(socket));
            }
            self.local_addrs.push(addr);
        }
        let removed: Vec<SocketAddr> = self
            .local_addrs
            .iter()
            .filter(|addr| !listen.contains(addr))
            .copied()
            .collect();
        for addr in removed {
            self.broadcast(|| WorkerMessage::RemoveListener(addr));
            self.local_addrs.retain(|bound| *bound != addr);
        }
        Ok(())
    }

    /// A handle for reading the counters and the open connections from another thread.
    pub fn stats_handle(&self) -> StatsHandle {
        StatsHandle {
            workers: self
                .workers
                .iter()
                .map(|worker| worker.aux.clone())
                .collect(),
        }
    }

    /// Waits (at most `timeout`) until every worker has applied the messages sent to it
    /// before this call (`set_handler`, `set_limits`, ...): from then on, every request
    /// that starts is served under them. Returns whether all workers answered in time.
    pub fn barrier(&self, timeout: Duration) -> bool {
        let (ack, acks) = std::sync::mpsc::channel();
        self.broadcast(|| WorkerMessage::Barrier(ack.clone()));
        drop(ack);
        let deadline = std::time::Instant::now() + timeout;
        (0..self.workers.len()).all(|_| {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            acks.recv_timeout(left).is_ok()
        })
    }

    /// Graceful stop: every worker accepts what is already queued and stops accepting,
    /// finishes the requests in flight (the next response on a keep-alive connection says
    /// `Connection: close`), closes idle connections, and after `timeout` closes the rest.
    /// Blocks until every worker has stopped; returns the connections closed by force.
    pub fn drain(self, timeout: Duration) -> usize {
        let deadline = std::time::Instant::now() + timeout;
        let (report, reports) = std::sync::mpsc::channel();
        self.broadcast(|| WorkerMessage::Drain {
            deadline,
            report: report.clone(),
        });
        drop(report);
        let forced = reports.iter().sum();
        self.join();
        forced
    }

    /// Stops every worker at once (closing its connections) and waits for them.
    pub fn shutdown(self) {
        self.broadcast(|| WorkerMessage::Stop);
        self.join();
    }

    /// Waits until every worker has stopped, then removes the Unix socket files.
    pub fn join(self) {
        for worker in self.workers {
            if worker.thread.join().is_err() {
                log::error!("a worker thread panicked");
            }
        }
        drop(self.socket_files);
    }

    fn broadcast(&self, message: impl Fn() -> WorkerMessage<H>) {
        for worker in &self.workers {
            // A worker that has stopped has nothing left to serve.
            let _ = worker.sender.send(message());
        }
    }
}

/// Reads a running server's counters and open connections; cloneable and usable from any
/// thread (the admin port holds one). Each read asks every worker and waits for the answers.
#[derive(Clone)]
pub struct StatsHandle {
    workers: Vec<MailSender<Aux>>,
}

impl StatsHandle {
    /// The counters of every worker, folded. Workers that do not answer within `timeout`
    /// are left out.
    pub fn stats(&self, timeout: Duration) -> ServerStats {
        let (tx, rx) = std::sync::mpsc::channel();
        for worker in &self.workers {
            let _ = worker.send(Aux::Stats(tx.clone()));
        }
        drop(tx);
        let deadline = std::time::Instant::now() + timeout;
        let mut total = ServerStats::empty();
        for _ in 0..self.workers.len() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(stats) => total.merge(stats),
                Err(_) => break,
            }
        }
        total
    }

    /// Every open connection of every worker that answers within `timeout`.
    pub fn connections(&self, timeout: Duration) -> Vec<ConnectionInfo> {
        let (tx, rx) = std::sync::mpsc::channel();
        for worker in &self.workers {
            let _ = worker.send(Aux::Connections(tx.clone()));
        }
        drop(tx);
        let deadline = std::time::Instant::now() + timeout;
        let mut all = Vec::new();
        for _ in 0..self.workers.len() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(list) => all.extend(list),
                Err(_) => break,
            }
        }
        all
    }
}
