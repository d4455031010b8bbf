//! What a run counts (per thread, plain integers and one latency histogram, folded at the
//! end) and the report made of it: text for people, or one JSON object whose field names
//! are stable (scripts and tests read them).

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::cli::{Settings, Stop};

/// The kinds of failure counted.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A connection could not be opened (refused, unreachable, or not within --timeout).
    Connect,
    /// A connection was reset, or another I/O error ended it.
    Reset,
    /// A response head, its framing or its chunked body was invalid.
    Protocol,
    /// The server closed the connection in the middle of a response.
    ShortResponse,
    /// No response (or no further byte of one) within --timeout.
    Timeout,
    /// The server closed a keep-alive connection between responses, without
    /// `Connection: close`, while requests were outstanding.
    UnexpectedClose,
    /// --verify-echo: the body echoed another in-flight request of the connection.
    OutOfOrder,
    /// --verify-echo: the body was not the echo of the request.
    BodyMismatch,
}

const KINDS: usize = 8;

/// Latencies above this (in microseconds) are recorded as this.
const LATENCY_MAX_US: u64 = 3_600_000_000;

/// One thread's counters.
pub struct Stats {
    /// Complete final responses read.
    pub requests: u64,
    /// Bytes read from the server.
    pub response_bytes: u64,
    /// Request body payload bytes of the requests answered.
    pub request_body_bytes: u64,
    /// TCP connections established.
    pub connections_opened: u64,
    errors: [u64; KINDS],
    /// Responses by status class: index 1 for 1xx (interim) to 5 for 5xx.
    status: [u64; 6],
    latency: Histogram<u64>,
}

impl Stats {
    /// Zero counts.
    pub fn new() -> Stats {
        Stats {
            requests: 0,
            response_bytes: 0,
            request_body_bytes: 0,
            connections_opened: 0,
            errors: [0; KINDS],
            status: [0; 6],
            latency: Histogram::new_with_bounds(1, LATENCY_MAX_US, 3)
                .expect("valid histogram bounds"),
        }
    }

    /// Counts one failure.
    pub fn error(&mut self, kind: ErrorKind) {
        self.errors[kind as usize] += 1;
    }

    /// All failures counted.
    pub fn errors_total(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// Counts a response's status class (interim ones included).
    pub fn status(&mut self, status: u16) {
        self.status[usize::from(status / 100).min(5)] += 1;
    }

    /// Records one request's latency.
    pub fn latency(&mut self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.latency.saturating_record(us.clamp(1, LATENCY_MAX_US));
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Stats) {
        self.requests += other.requests;
        self.response_bytes += other.response_bytes;
        self.request_body_bytes += other.request_body_bytes;
        self.connections_opened += other.connections_opened;
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        for (a, b) in self.status.iter_mut().zip(other.status) {
            *a += b;
        }
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
    }
}

/// Failures by kind, as reported.
#[derive(Debug, Serialize)]
pub struct Errors {
    connect: u64,
    reset: u64,
    protocol: u64,
    short_response: u64,
    timeout: u64,
    unexpected_close: u64,
    out_of_order: u64,
    body_mismatch: u64,
}

/// Responses by status class, as reported.
#[derive(Debug, Serialize)]
pub struct StatusClasses {
    #[serde(rename = "1xx")]
    informational: u64,
    #[serde(rename = "2xx")]
    success: u64,
    #[serde(rename = "3xx")]
    redirection: u64,
    #[serde(rename = "4xx")]
    client_error: u64,
    #[serde(rename = "5xx")]
    server_error: u64,
}

/// Latency percentiles in microseconds (0 when nothing was answered).
#[derive(Debug, Serialize)]
pub struct Latency {
    p50: u64,
    p90: u64,
    p99: u64,
    p99_9: u64,
    max: u64,
    mean: f64,
}

/// The report of a run, printed as text or JSON.
#[derive(Debug, Serialize)]
pub struct Report {
    url: String,
    method: String,
    connections: u32,
    threads: u32,
    pipeline: u32,
    duration_s: f64,
    requests: u64,
    requests_per_s: f64,
    response_bytes: u64,
    response_bytes_per_s: f64,
    request_body_bytes: u64,
    request_body_bytes_per_s: f64,
    connections_opened: u64,
    errors_total: u64,
    errors: Errors,
    status: StatusClasses,
    latency_us: Latency,
    held_idle: Option<u64>,
    /// Whether the run counts as a success (exit status 0).
    pub ok: bool,
}

impl Report {
    /// The report of `stats` over `elapsed`; `held` is set in --hold-idle mode.
    pub fn new(settings: &Settings, stats: &Stats, elapsed: Duration, held: Option<u64>) -> Report {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let e = &stats.errors;
        let s = &stats.status;
        let q = |quantile: f64| {
            if stats.latency.is_empty() {
                0
            } else {
                stats.latency.value_at_quantile(quantile)
            }
        };
        let errors_total = stats.errors_total();
        Report {
            url: settings.url.text.clone(),
            method: settings.method.clone(),
            connections: settings.connections,
            threads: settings.threads,
            pipeline: settings.pipeline,
            duration_s: elapsed.as_secs_f64(),
            requests: stats.requests,
            requests_per_s: stats.requests as f64 / secs,
            response_bytes: stats.response_bytes,
            response_bytes_per_s: stats.response_bytes as f64 / secs,
            request_body_bytes: stats.request_body_bytes,
            request_body_bytes_per_s: stats.request_body_bytes as f64 / secs,
            connections_opened: stats.connections_opened,
            errors_total,
            errors: Errors {
                connect: e[ErrorKind::Connect as usize],
                reset: e[ErrorKind::Reset as usize],
                protocol: e[ErrorKind::Protocol as usize],
                short_response: e[ErrorKind::ShortResponse as usize],
                timeout: e[ErrorKind::Timeout as usize],
                unexpected_close: e[ErrorKind::UnexpectedClose as usize],
                out_of_order: e[ErrorKind::OutOfOrder as usize],
                body_mismatch: e[ErrorKind::BodyMismatch as usize],
            },
            status: StatusClasses {
                informational: s[1],
                success: s[2],
                redirection: s[3],
                client_error: s[4],
                server_error: s[5],
            },
            latency_us: Latency {
                p50: q(0.5),
                p90: q(0.9),
                p99: q(0.99),
                p99_9: q(0.999),
                max: stats.latency.max(),
                mean: stats.latency.mean(),
            },
            held_idle: held,
            // 1xx are interim responses (a final one is a protocol error).
            ok: errors_total == 0 && s[4] == 0 && s[5] == 0,
        }
    }

    /// The report as one line of JSON.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The report as text for people.
    pub fn text(&self, stop: Stop) -> String {
        let mut out = String::new();
        let bound = match stop {
            Stop::After(d) => format!("for {}", humantime::format_duration(d)),
            Stop::Count(n) => format!("{n} requests"),
        };
        let _ = writeln!(
            out,
            "{} {}: {} connections, {} threads, pipeline {}, {bound}",
            self.method, self.url, self.connections, self.threads, self.pipeline
        );
        let _ = writeln!(
            out,
            "  requests         {} in {:.2} s, {:.1}/s",
            self.requests, self.duration_s, self.requests_per_s
        );
        let _ = writeln!(
            out,
            "  response bytes   {} ({:.2} MB/s)",
            self.response_bytes,
            self.response_bytes_per_s / 1e6
        );
        if self.request_body_bytes > 0 {
            let _ = writeln!(
                out,
                "  request bodies   {} ({:.2} MB/s)",
                self.request_body_bytes,
                self.request_body_bytes_per_s / 1e6
            );
        }
        let _ = writeln!(out, "  connections      {} opened", self.connections_opened);
        if let Some(held) = self.held_idle {
            let _ = writeln!(out, "  held idle        {held} at the end");
        }
        let s = &self.status;
        let _ = writeln!(
            out,
            "  status           1xx {}, 2xx {}, 3xx {}, 4xx {}, 5xx {}",
            s.informational, s.success, s.redirection, s.client_error, s.server_error
        );
        let e = &self.errors;
        let _ = writeln!(
            out,
            "  errors           {} (connect {}, reset {}, protocol {}, short_response {}, \
             timeout {}, unexpected_close {}, out_of_order {}, body_mismatch {})",
            self.errors_total,
            e.connect,
            e.reset,
            e.protocol,
            e.short_response,
            e.timeout,
            e.unexpected_close,
            e.out_of_order,
            e.body_mismatch
        );
        let l = &self.latency_us;
        let _ = writeln!(
            out,
            "  latency (us)     p50 {}, p90 {}, p99 {}, p99.9 {}, max {}, mean {:.1}",
            l.p50, l.p90, l.p99, l.p99_9, l.max, l.mean
        );
        let _ = writeln!(
            out,
            "  result           {}",
            if self.ok { "ok" } else { "FAILED" }
        );
        out
    }
}
