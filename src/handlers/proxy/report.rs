//! What the proxy counts per upstream server, and the plain report of it the admin port
//! turns into metrics and introspection.
//!
//! Counters are atomics in the group every worker shares (relaxed: they are statistics, not
//! synchronisation); a report is a snapshot of them. Nothing here does I/O.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bucket bounds of the response-head latency, in seconds (the request durations' bounds).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Why an attempt on an upstream server failed, as metrics label it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The connection could not be established (refused, unreachable, reset at once).
    Connect,
    /// The connection was not established within `connect_timeout`.
    ConnectTimeout,
    /// Writing the request failed.
    Send,
    /// The upstream took no request bytes for `write_timeout`.
    SendTimeout,
    /// No response bytes for `read_timeout`.
    ReadTimeout,
    /// The upstream closed the connection before the response ended.
    Closed,
    /// Reading the response failed (reset).
    Receive,
    /// The response head or chunked body was not valid HTTP/1.1.
    BadResponse,
}

impl ErrorKind {
    /// Every kind, in label order.
    pub const ALL: [ErrorKind; 8] = [
        ErrorKind::Connect,
        ErrorKind::ConnectTimeout,
        ErrorKind::Send,
        ErrorKind::SendTimeout,
        ErrorKind::ReadTimeout,
        ErrorKind::Closed,
        ErrorKind::Receive,
        ErrorKind::BadResponse,
    ];

    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::Send => "send",
            ErrorKind::SendTimeout => "send_timeout",
            ErrorKind::ReadTimeout => "read_timeout",
            ErrorKind::Closed => "closed",
            ErrorKind::Receive => "receive",
            ErrorKind::BadResponse => "bad_response",
        }
    }
}

/// A group's own counters (not any one server's).
#[derive(Debug, Default)]
pub(super) struct GroupCounters {
    /// Requests refused because every server was at its limit.
    pub(super) unavailable: AtomicU64,
    /// Attempts made again after a failure.
    pub(super) retries: AtomicU64,
}

/// One server's counters.
#[derive(Debug, Default)]
pub(super) struct ServerCounters {
    /// Responses whose head arrived.
    responses: AtomicU64,
    /// Attempts made on a pooled connection.
    reused: AtomicU64,
    errors: [AtomicU64; ErrorKind::ALL.len()],
    latency_counts: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_nanos: AtomicU64,
}

impl ServerCounters {
    pub(super) fn response(&self, head_after: Duration) {
        self.responses.fetch_add(1, Ordering::Relaxed);
        let seconds = head_after.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency_counts[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(head_after.as_nanos()).unwrap_or(u64::MAX);
        self.latency_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(super) fn reused(&self) {
        self.reused.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn error(&self, kind: ErrorKind) {
        let at = ErrorKind::ALL.iter().position(|&k| k == kind).unwrap_or(0);
        self.errors[at].fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn report(&self) -> (u64, u64, Vec<(ErrorKind, u64)>, Latency) {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let counts: Vec<u64> = self.latency_counts.iter().map(load).collect();
        (
            load(&self.responses),
            load(&self.reused),
            ErrorKind::ALL
                .iter()
                .zip(&self.errors)
                .map(|(&kind, count)| (kind, load(count)))
                .collect(),
            Latency {
                bounds: LATENCY_BUCKETS,
                count: counts.iter().sum(),
                counts,
                sum: Duration::from_nanos(load(&self.latency_nanos)).as_secs_f64(),
            },
        )
    }
}

/// A histogram snapshot: per-bucket counts (not cumulative), the last above every bound.
#[derive(Clone, Debug, PartialEq)]
pub struct Latency {
    /// Upper bounds, in seconds, ascending.
    pub bounds: &'static [f64],
    /// `bounds.len() + 1` counts.
    pub counts: Vec<u64>,
    /// The sum of the observations, in seconds.
    pub sum: f64,
    /// The number of observations.
    pub count: u64,
}

/// One upstream group, as the admin port shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct UpstreamReport {
    /// The group's name.
    pub name: String,
    /// How it balances (`round_robin`, `least_connections`).
    pub balance: &'static str,
    /// Requests answered 503 because every server was at its `max_connections`.
    pub unavailable: u64,
    /// Attempts made again on another (or a fresh) connection after a failure.
    pub retries: u64,
    /// Its servers, in configuration order.
    pub servers: Vec<ServerReport>,
}

/// One upstream server, as the admin port shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerReport {
    /// `ip:port` or `unix:/path`.
    pub address: String,
    /// The key its connections are pooled under (matches the server's per-key counts).
    pub pool_key: u64,
    /// Not marked down by passive health.
    pub up: bool,
    /// Requests using it now.
    pub in_flight: u64,
    /// Responses whose head arrived from it.
    pub responses: u64,
    /// Attempts made on a pooled connection to it.
    pub reused: u64,
    /// Failed attempts by kind (every kind listed).
    pub errors: Vec<(ErrorKind, u64)>,
    /// Seconds from an attempt's start to its response head.
    pub head_latency: Latency,
}
