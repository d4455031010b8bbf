//! What configuration says about a proxy: upstream groups, their servers, and how a route
//! forwards. Plain values: configuration validates and builds them, the proxy runs on them.
//!
//! Nothing here does I/O or keeps run-time state.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where one upstream server listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UpstreamAddress {
    /// A TCP address (names are resolved when the configuration is loaded).
    Tcp(SocketAddr),
    /// A Unix stream socket (written `unix:/path` in the file).
    Unix(PathBuf),
}

impl fmt::Display for UpstreamAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamAddress::Tcp(addr) => write!(f, "{addr}"),
            UpstreamAddress::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// How a request picks a server of its upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Balance {
    /// In turn, each server as often as its weight says (smooth weighted round-robin).
    #[default]
    RoundRobin,
    /// The server with the fewest requests in flight relative to its weight.
    LeastConnections,
}

impl Balance {
    /// The name written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Balance::RoundRobin => "round_robin",
            Balance::LeastConnections => "least_connections",
        }
    }
}

/// One server of an upstream group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// Where it listens.
    pub address: UpstreamAddress,
    /// Its share of requests relative to the group's other servers (1..=1000).
    pub weight: u32,
    /// The most requests in flight to it at once, over all workers (0: no limit); a request
    /// finding every server at its limit is answered 503.
    pub max_connections: usize,
}

/// `[[upstream]]`: a named group of servers and how to talk to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSettings {
    /// `[A-Za-z0-9_.-]{1,64}`, unique among upstreams.
    pub name: String,
    /// At least one, no address twice.
    pub servers: Vec<ServerSettings>,
    /// How a request picks a server.
    pub balance: Balance,
    /// The longest wait for a connection to be established (then 504, or the next server).
    pub connect_timeout: Duration,
    /// The longest silence while waiting for the response head or body bytes (then 504, or
    /// the connection closed if the response has started).
    pub read_timeout: Duration,
    /// The longest wait for the upstream to take request bytes (then 504).
    pub write_timeout: Duration,
    /// How long an idle keep-alive connection is kept for reuse.
    pub idle_timeout: Duration,
    /// Idle keep-alive connections kept per server per worker (0: none kept).
    pub max_idle: usize,
    /// Failures within `fail_timeout` that mark a server down for `fail_timeout`
    /// (0: never marked down).
    pub max_fails: u32,
    /// The window failures are counted in, and how long a server stays down.
    pub fail_timeout: Duration,
    /// Which failed attempts are tried again on another server of the group.
    pub next_upstream: NextUpstream,
    /// The most attempts a request gets, the first included (0: one per server at most).
    /// A stale pooled connection's retry on a fresh one is not counted.
    pub next_upstream_tries: u32,
    /// The pseudonym the proxy gives itself in the `Via` field of forwarded requests and
    /// relayed responses (RFC 9110 7.6.3), a token; `None`: no `Via` is added.
    pub via: Option<String>,
}

/// When a failed attempt is tried again on another server (`next_upstream`, after nginx's
/// `proxy_next_upstream`). Only a server not yet tried for the request is chosen, only
/// before any response byte has arrived, and only while the whole request can still be
/// sent again. Failures of a different kind (a malformed response, every server busy) are
/// never retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextUpstream {
    /// No connection could be made, or connecting timed out: the request never reached a
    /// server, so any request may go to the next one.
    pub connect: bool,
    /// The connection failed (reset, closed, a write error) after some of the request was
    /// sent: the server may have begun acting on it.
    pub error: bool,
    /// The server did not take the request or answer it in time (`write_timeout`,
    /// `read_timeout`): it may have begun acting on it.
    pub timeout: bool,
    /// `error` and `timeout` apply to requests that are not idempotent (RFC 9110 9.2.2:
    /// POST, PATCH, ...) too; without it only idempotent ones are sent again.
    pub non_idempotent: bool,
}

impl Default for NextUpstream {
    /// Only a request that never reached a server is sent to another.
    fn default() -> Self {
        NextUpstream {
            connect: true,
            error: false,
            timeout: false,
            non_idempotent: false,
        }
    }
}

/// What the `Host` header sent upstream says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ProxyHost {
    /// The request's authority as sent: an absolute-form target's (RFC 9112 3.2.2), else
    /// the client's `Host` (the upstream's address when there is neither).
    #[default]
    Keep,
    /// The upstream server's address (`host:port`; `localhost` for a Unix socket).
    Upstream,
    /// This value.
    Literal(String),
}
