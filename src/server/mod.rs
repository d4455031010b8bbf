//! The HTTP/1.1 server: N worker threads, each a reactor with its own `SO_REUSEPORT`
//! listeners and its own connections, joined to a [`Handler`].
//!
//! This layer joins the reactor, the codec and the service model. It receives built values
//! (a [`ServerConfig`] and a handler), never TOML, and it never touches process-wide state
//! (signals, logging setup, daemonizing): that is the daemon's job. On the per-request path
//! it takes no lock and allocates nothing in steady state.

mod answer;
mod conn;
mod exchange;
mod listener;
mod routes;
mod sendfile;
mod worker;

pub use routes::{HostPattern, Lookup, PathPattern, Route, RouteTable};

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::http1::{ChunkedLimits, HeadLimits};
use crate::reactor::MailSender;
use crate::service::Handler;

use worker::{Worker, WorkerMessage};

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
    /// Addresses to listen on (port 0 picks one port shared by all workers).
    pub listen: Vec<SocketAddr>,
    /// Worker threads (at least 1).
    pub workers: usize,
    /// Limits and timeouts.
    pub limits: Limits,
}

/// A running server.
pub struct ServerHandle<H: Handler> {
    local_addrs: Vec<SocketAddr>,
    workers: Vec<(MailSender<WorkerMessage<H>>, JoinHandle<()>)>,
}

/// Binds every listener (one `SO_REUSEPORT` socket per worker and address) and starts the
/// workers. Binding errors are returned before any worker starts.
pub fn start<H: Handler>(config: ServerConfig, handler: Arc<H>) -> io::Result<ServerHandle<H>> {
    let workers = config.workers.max(1);
    let mut per_worker: Vec<Vec<mio::net::TcpListener>> =
        (0..workers).map(|_| Vec::new()).collect();
    let mut local_addrs = Vec::with_capacity(config.listen.len());
    for addr in &config.listen {
        let sockets = listener::bind_group(*addr, workers)?;
        local_addrs.push(sockets[0].local_addr()?);
        for (slot, socket) in per_worker.iter_mut().zip(sockets) {
            slot.push(socket);
        }
    }
    let mut handles = Vec::with_capacity(workers);
    for (index, listeners) in per_worker.into_iter().enumerate() {
        // The worker is built on its own thread, so exchanges need not be `Send`; it hands
        // back its mailbox, or the error that kept it from starting.
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let limits = config.limits.clone();
        let handler = Arc::clone(&handler);
        let thread = std::thread::Builder::new()
            .name(format!("worker-{index}"))
            .spawn(
                move || match Worker::new(index, listeners, limits, handler) {
                    Ok(worker) => {
                        let _ = ready_tx.send(Ok(worker.sender()));
                        worker.run();
                    }
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                    }
                },
            )?;
        let started = ready_rx
            .recv()
            .map_err(|_| io::Error::other("worker thread ended before starting"))
            .and_then(|result| result);
        match started {
            Ok(sender) => handles.push((sender, thread)),
            Err(err) => {
                // Leave nothing half-started behind.
                ServerHandle {
                    local_addrs,
                    workers: handles,
                }
                .shutdown();
                return Err(err);
            }
        }
    }
    Ok(ServerHandle {
        local_addrs,
        workers: handles,
    })
}

impl<H: Handler> ServerHandle<H> {
    /// The bound address of each configured listen address, in order.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Publishes a new handler (e.g. a reloaded route table) to every worker. Requests
    /// already started finish with the handler they started with.
    pub fn set_handler(&self, handler: Arc<H>) {
        for (sender, _) in &self.workers {
            // A worker that has stopped has nothing left to serve.
            let _ = sender.send(WorkerMessage::SetHandler(Arc::clone(&handler)));
        }
    }

    /// Stops every worker (closing its connections) and waits for them.
    pub fn shutdown(self) {
        for (sender, _) in &self.workers {
            let _ = sender.send(WorkerMessage::Stop);
        }
        self.join();
    }

    /// Waits until every worker has stopped.
    pub fn join(self) {
        for (_, thread) in self.workers {
            if thread.join().is_err() {
                log::error!("a worker thread panicked");
            }
        }
    }
}
