//! Counters of what the server did, kept per worker as plain integers and folded together
//! only when someone asks (a metrics scrape): the request path never touches a shared
//! atomic or a lock for them.
//!
//! Labels are bounded by construction: route names come from the configuration, methods are
//! folded into a fixed set, close reasons and parse errors are enums. This module formats
//! nothing; the admin layer turns a [`ServerStats`] into Prometheus text.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Why a connection closed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The client closed it (or reset it).
    Peer,
    /// No request arrived within the idle timeout.
    IdleTimeout,
    /// A request head did not complete within the head timeout.
    HeadTimeout,
    /// A request body (or a handler's answer) did not come within the body timeout.
    BodyTimeout,
    /// A request body arrived slower than `min_body_bytes_per_second` allows.
    BodyTooSlow,
    /// The client did not take output within the write timeout.
    WriteTimeout,
    /// A request could not be parsed or framed (400-class answer).
    ParseError,
    /// A request was larger than allowed (413, 431).
    TooLarge,
    /// The server was stopping.
    Drain,
    /// The connection reached its request limit, or the client asked to close.
    Limit,
    /// A socket error, or a handler that broke the response framing.
    Error,
}

impl CloseReason {
    /// Every reason, in a fixed order.
    pub const ALL: [CloseReason; 11] = [
        CloseReason::Peer,
        CloseReason::IdleTimeout,
        CloseReason::HeadTimeout,
        CloseReason::BodyTimeout,
        CloseReason::BodyTooSlow,
        CloseReason::WriteTimeout,
        CloseReason::ParseError,
        CloseReason::TooLarge,
        CloseReason::Drain,
        CloseReason::Limit,
        CloseReason::Error,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Peer => "peer",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::HeadTimeout => "head_timeout",
            CloseReason::BodyTimeout => "body_timeout",
            CloseReason::BodyTooSlow => "body_too_slow",
            CloseReason::WriteTimeout => "write_timeout",
            CloseReason::ParseError => "parse_error",
            CloseReason::TooLarge => "too_large",
            CloseReason::Drain => "drain",
            CloseReason::Limit => "limit",
            CloseReason::Error => "error",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A request method as a bounded label.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum MethodLabel {
    /// GET
    Get,
    /// HEAD
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// PATCH
    Patch,
    /// OPTIONS
    Options,
    /// CONNECT
    Connect,
    /// TRACE
    Trace,
    /// Anything else.
    Other,
}

impl MethodLabel {
    const ALL: [MethodLabel; 10] = [
        MethodLabel::Get,
        MethodLabel::Head,
        MethodLabel::Post,
        MethodLabel::Put,
        MethodLabel::Delete,
        MethodLabel::Patch,
        MethodLabel::Options,
        MethodLabel::Connect,
        MethodLabel::Trace,
        MethodLabel::Other,
    ];

    /// The label for a method token (case-sensitive, as methods are).
    pub fn of(method: &str) -> MethodLabel {
        match method {
            "GET" => MethodLabel::Get,
            "HEAD" => MethodLabel::Head,
            "POST" => MethodLabel::Post,
            "PUT" => MethodLabel::Put,
            "DELETE" => MethodLabel::Delete,
            "PATCH" => MethodLabel::Patch,
            "OPTIONS" => MethodLabel::Options,
            "CONNECT" => MethodLabel::Connect,
            "TRACE" => MethodLabel::Trace,
            _ => MethodLabel::Other,
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            MethodLabel::Get => "GET",
            MethodLabel::Head => "HEAD",
            MethodLabel::Post => "POST",
            MethodLabel::Put => "PUT",
            MethodLabel::Delete => "DELETE",
            MethodLabel::Patch => "PATCH",
            MethodLabel::Options => "OPTIONS",
            MethodLabel::Connect => "CONNECT",
            MethodLabel::Trace => "TRACE",
            MethodLabel::Other => "OTHER",
        }
    }
}

/// Request duration bucket bounds, in seconds.
pub const DURATION_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Requests-per-connection bucket bounds.
pub const REQUESTS_PER_CONNECTION_BUCKETS: &[f64] =
    &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 1000.0, 10000.0];

/// Pipeline depth (requests answered per read) bucket bounds.
pub const PIPELINE_DEPTH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// A histogram: per-bucket counts (not cumulative), the last one above every bound.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    /// Upper bounds of the buckets, ascending.
    pub bounds: &'static [f64],
    /// Observations per bucket; `bounds.len() + 1` entries.
    pub counts: Vec<u64>,
    /// The sum of the observations.
    pub sum: f64,
    /// The number of observations.
    pub count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, value: f64) {
        let bucket = self
            .bounds
            .iter()
            .position(|&bound| value <= bound)
            .unwrap_or(self.bounds.len());
        self.counts[bucket] += 1;
        self.sum += value;
        self.count += 1;
    }

    fn add(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.sum += other.sum;
        self.count += other.count;
    }
}

/// What one route served.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteStats {
    /// The route's name; empty for requests no route matched (404, 405).
    pub route: String,
    /// Requests by method and status.
    pub requests: Vec<(MethodLabel, u16, u64)>,
    /// Request durations, from the head's arrival to its response's last byte written.
    pub duration: Histogram,
    /// Request body bytes received.
    pub request_body_bytes: u64,
    /// Response body bytes sent.
    pub response_body_bytes: u64,
}

/// Everything counted, folded over every worker at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerStats {
    /// Connections accepted since start.
    pub connections_accepted: u64,
    /// Connections open now.
    pub connections_open: u64,
    /// Connections closed, by reason (every reason listed).
    pub connections_closed: Vec<(CloseReason, u64)>,
    /// Per route, sorted by name.
    pub routes: Vec<RouteStats>,
    /// Requests served per connection, observed when it closes.
    pub requests_per_connection: Histogram,
    /// Requests answered per read of a connection's socket.
    pub pipeline_depth: Histogram,
    /// Requests refused as unparseable, by `ParseError::kind`.
    pub parse_errors: Vec<(&'static str, u64)>,
    /// Outbound connections (a proxy's upstreams) by pool key, sorted by key.
    pub outbound: Vec<OutboundStats>,
}

/// Outbound connections under one pool key (one upstream server).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboundStats {
    /// The key exchanges pool them under.
    pub key: u64,
    /// Open now, in use or parked.
    pub open: u64,
    /// Parked for reuse now.
    pub idle: u64,
}

/// One open connection, as introspection shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The worker serving it.
    pub worker: usize,
    /// The client's address.
    pub peer: SocketAddr,
    /// How long it has been open.
    pub age: Duration,
    /// What it is doing: idle, reading head, reading body, handler, writing, closing.
    pub state: &'static str,
    /// Chunks received so far while reading a chunked body.
    pub chunk: Option<u64>,
    /// Requests completed on it.
    pub requests: u64,
    /// Complete requests waiting in its buffer (counting the one being served).
    pub pipeline_depth: usize,
}

/// A duration histogram kept in integer nanoseconds on the request path (no float work
/// per request); it becomes a [`Histogram`] in seconds only when read.
struct NanosHistogram {
    bounds: [u64; DURATION_BUCKETS.len()],
    counts: [u64; DURATION_BUCKETS.len() + 1],
    sum: u128,
    count: u64,
}

impl NanosHistogram {
    fn new() -> Self {
        let mut bounds = [0; DURATION_BUCKETS.len()];
        for (bound, seconds) in bounds.iter_mut().zip(DURATION_BUCKETS) {
            *bound = (seconds * 1e9) as u64;
        }
        NanosHistogram {
            bounds,
            counts: [0; DURATION_BUCKETS.len() + 1],
            sum: 0,
            count: 0,
        }
    }

    fn observe(&mut self, duration: Duration) {
        let nanos = duration.as_nanos();
        let nanos_u64 = u64::try_from(nanos).unwrap_or(u64::MAX);
        let bucket = self
            .bounds
            .iter()
            .position(|&bound| nanos_u64 <= bound)
            .unwrap_or(self.bounds.len());
        self.counts[bucket] += 1;
        self.sum += nanos;
        self.count += 1;
    }

    fn seconds(&self) -> Histogram {
        Histogram {
            bounds: DURATION_BUCKETS,
            counts: self.counts.to_vec(),
            sum: self.sum as f64 / 1e9,
            count: self.count,
        }
    }
}

/// Counters of one route inside one worker.
struct RouteCounters {
    /// Per method label: (status, count), a handful of statuses each.
    by_method: [Vec<(u16, u64)>; 10],
    duration: NanosHistogram,
    request_body_bytes: u64,
    response_body_bytes: u64,
}

impl RouteCounters {
    fn new() -> Self {
        RouteCounters {
            by_method: Default::default(),
            duration: NanosHistogram::new(),
            request_body_bytes: 0,
            response_body_bytes: 0,
        }
    }
}

/// One worker's counters. Only its own thread writes them.
pub(super) struct WorkerStats {
    accepted: u64,
    closed: [u64; CloseReason::ALL.len()],
    /// Route name -> index into `route_counters`; grows as new names appear.
    route_index: HashMap<Box<str>, usize>,
    route_counters: Vec<(Box<str>, RouteCounters)>,
    requests_per_connection: Histogram,
    pipeline_depth: Histogram,
    parse_errors: HashMap<&'static str, u64>,
    /// For the current handler's table: route position -> index into `route_counters`,
    /// filled on first use, cleared when the handler changes (positions mean other routes
    /// then). `unrouted` is the slot of requests no route served.
    by_position: Vec<Option<usize>>,
    unrouted: Option<usize>,
}

/// What a finished request adds to its route.
pub(super) struct Finished {
    pub(super) route: usize,
    pub(super) method: MethodLabel,
    pub(super) status: u16,
    pub(super) request_body_bytes: u64,
    pub(super) response_body_bytes: u64,
}

impl WorkerStats {
    pub(super) fn new() -> Self {
        WorkerStats {
            accepted: 0,
            closed: [0; CloseReason::ALL.len()],
            route_index: HashMap::new(),
            route_counters: Vec::new(),
            requests_per_connection: Histogram::new(REQUESTS_PER_CONNECTION_BUCKETS),
            pipeline_depth: Histogram::new(PIPELINE_DEPTH_BUCKETS),
            parse_errors: HashMap::new(),
            by_position: Vec::new(),
            unrouted: None,
        }
    }

    /// The handler (its route table) changed: route positions mean other routes now.
    pub(super) fn table_changed(&mut self) {
        self.by_position.clear();
    }

    /// The counters' index for the route at `position` in the current table (`None`: no
    /// route), naming it with `name_of` the first time: after that a request is counted
    /// without hashing or looking anything up again.
    pub(super) fn route_at<'a>(
        &mut self,
        position: Option<u32>,
        name_of: impl FnOnce(u32) -> &'a str,
    ) -> usize {
        let Some(position) = position else {
            if let Some(index) = self.unrouted {
                return index;
            }
            let index = self.route("");
            self.unrouted = Some(index);
            return index;
        };
        let at = position as usize;
        if let Some(Some(index)) = self.by_position.get(at) {
            return *index;
        }
        let index = self.route(name_of(position));
        if self.by_position.len() <= at {
            self.by_position.resize(at + 1, None);
        }
        self.by_position[at] = Some(index);
        index
    }

    pub(super) fn accepted(&mut self) {
        self.accepted += 1;
    }

    pub(super) fn closed(&mut self, reason: CloseReason, requests: u64) {
        self.closed[reason.index()] += 1;
        self.requests_per_connection.observe(requests as f64);
    }

    pub(super) fn answered_batch(&mut self, requests: u64) {
        self.pipeline_depth.observe(requests as f64);
    }

    pub(super) fn parse_error(&mut self, kind: &'static str) {
        *self.parse_errors.entry(kind).or_insert(0) += 1;
    }

    /// The index of `route`'s counters (allocates only the first time a name is seen).
    pub(super) fn route(&mut self, route: &str) -> usize {
        if let Some(&index) = self.route_index.get(route) {
            return index;
        }
        let index = self.route_counters.len();
        self.route_counters
            .push((route.into(), RouteCounters::new()));
        self.route_index.insert(route.into(), index);
        index
    }

    pub(super) fn finished(&mut self, request: &Finished) {
        let Some((_, counters)) = self.route_counters.get_mut(request.route) else {
            return;
        };
        let statuses = &mut counters.by_method[request.method as usize];
        match statuses
            .iter_mut()
            .find(|(status, _)| *status == request.status)
        {
            Some((_, count)) => *count += 1,
            None => statuses.push((request.status, 1)),
        }
        counters.request_body_bytes += request.request_body_bytes;
        counters.response_body_bytes += request.response_body_bytes;
    }

    /// A finished request's duration (known once its response has been written; see
    /// `server::stamps`), into its route's histogram.
    pub(super) fn observe_duration(&mut self, route: usize, duration: Duration) {
        if let Some((_, counters)) = self.route_counters.get_mut(route) {
            counters.duration.observe(duration);
        }
    }

    /// This worker's counters as a [`ServerStats`] (with `open` connections).
    pub(super) fn snapshot(&self, open: u64) -> ServerStats {
        let routes = self
            .route_counters
            .iter()
            .map(|(name, counters)| RouteStats {
                route: name.to_string(),
                requests: MethodLabel::ALL
                    .iter()
                    .zip(&counters.by_method)
                    .flat_map(|(&method, statuses)| {
                        statuses
                            .iter()
                            .map(move |&(status, count)| (method, status, count))
                    })
                    .collect(),
                duration: counters.duration.seconds(),
                request_body_bytes: counters.request_body_bytes,
                response_body_bytes: counters.response_body_bytes,
            })
            .collect();
        ServerStats {
            connections_accepted: self.accepted,
            connections_open: open,
            connections_closed: CloseReason::ALL
                .iter()
                .map(|&reason| (reason, self.closed[reason.index()]))
                .collect(),
            routes,
            requests_per_connection: self.requests_per_connection.clone(),
            pipeline_depth: self.pipeline_depth.clone(),
            parse_errors: self.parse_errors.iter().map(|(&k, &v)| (k, v)).collect(),
            outbound: Vec::new(),
        }
    }
}

impl ServerStats {
    /// Nothing counted yet.
    pub fn empty() -> Self {
        WorkerStats::new().snapshot(0)
    }

    /// Adds `other` (another worker's counters) into `self`.
    pub fn merge(&mut self, other: ServerStats) {
        self.connections_accepted += other.connections_accepted;
        self.connections_open += other.connections_open;
        for ((_, mine), (_, theirs)) in self
            .connections_closed
            .iter_mut()
            .zip(&other.connections_closed)
        {
            *mine += theirs;
        }
        for route in other.routes {
            match self.routes.iter_mut().find(|r| r.route == route.route) {
                Some(mine) => {
                    for (method, status, count) in route.requests {
                        match mine
                            .requests
                            .iter_mut()
                            .find(|(m, s, _)| *m == method && *s == status)
                        {
                            Some((_, _, total)) => *total += count,
                            None => mine.requests.push((method, status, count)),
                        }
                    }
                    mine.duration.add(&route.duration);
                    mine.request_body_bytes += route.request_body_bytes;
                    mine.response_body_bytes += route.response_body_bytes;
                }
                None => self.routes.push(route),
            }
        }
        self.requests_per_connection
            .add(&other.requests_per_connection);
        self.pipeline_depth.add(&other.pipeline_depth);
        for (kind, count) in other.parse_errors {
            match self.parse_errors.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, total)) => *total += count,
                None => self.parse_errors.push((kind, count)),
            }
        }
        for theirs in other.outbound {
            match self.outbound.iter_mut().find(|mine| mine.key == theirs.key) {
                Some(mine) => {
                    (mine.open, mine.idle) = (mine.open + theirs.open, mine.idle + theirs.idle)
                }
                None => self.outbound.push(theirs),
            }
        }
        self.routes.sort_by(|a, b| a.route.cmp(&b.route));
        self.parse_errors.sort();
        self.outbound.sort_by_key(|stats| stats.key);
    }
}

#[cfg(test)]
mod tests;
