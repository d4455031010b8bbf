//! The metric names of `/metrics`, in one place: every one is prefixed `asycamore_`, counters
//! end in `_total`, and units are seconds and bytes, as Prometheus conventions ask. Process
//! metrics keep the standard unprefixed `process_*` names every client library exports, so
//! the usual dashboards and alerts work on them unchanged.

/// Counter: requests answered, by `route`, `method` and `code`.
pub const REQUESTS: &str = "asycamore_http_requests_total";
/// Histogram: from the request head parsed to the response complete, by `route`.
pub const REQUEST_DURATION: &str = "asycamore_http_request_duration_seconds";
/// Counter: request body bytes received, by `route`.
pub const REQUEST_BODY_BYTES: &str = "asycamore_http_request_body_bytes_total";
/// Counter: response body bytes sent, by `route`.
pub const RESPONSE_BODY_BYTES: &str = "asycamore_http_response_body_bytes_total";
/// Counter: connections accepted.
pub const CONNECTIONS_ACCEPTED: &str = "asycamore_connections_accepted_total";
/// Gauge: connections open now.
pub const CONNECTIONS_OPEN: &str = "asycamore_connections_open";
/// Counter: connections closed, by `reason`.
pub const CONNECTIONS_CLOSED: &str = "asycamore_connections_closed_total";
/// Histogram: requests served per connection, observed when it closes.
pub const REQUESTS_PER_CONNECTION: &str = "asycamore_connection_requests";
/// Histogram: requests answered per read of a connection's socket.
pub const PIPELINE_DEPTH: &str = "asycamore_pipeline_depth";
/// Counter: requests refused as unparseable, by `kind`.
pub const PARSE_ERRORS: &str = "asycamore_http_parse_errors_total";
/// Counter: configuration reloads, by `result` (`success`, `failure`).
pub const CONFIG_RELOADS: &str = "asycamore_config_reloads_total";
/// Gauge: the configuration generation serving (1 at start, +1 per successful reload).
pub const CONFIG_GENERATION: &str = "asycamore_config_generation";
/// Gauge: when the running configuration was loaded (start or last successful reload).
pub const CONFIG_LAST_RELOAD_SUCCESS: &str =
    "asycamore_config_last_reload_success_timestamp_seconds";
/// Gauge: 1 while a CPU profile is being collected.
pub const PROFILING_ACTIVE: &str = "asycamore_profiling_active";
/// Gauge: 1, with the build's `version` as a label.
pub const BUILD_INFO: &str = "asycamore_build_info";
/// Gauge: 1 when the data plane counts for this endpoint (`[admin] metrics`), else 0.
pub const METRICS_ENABLED: &str = "asycamore_metrics_enabled";
/// Gauge: 1 when the daemon is ready to serve (not starting, not draining).
pub const READY: &str = "asycamore_ready";
/// Counter: responses whose head arrived from an upstream server, by `upstream`, `server`.
pub const UPSTREAM_RESPONSES: &str = "asycamore_upstream_responses_total";
/// Counter: failed attempts on an upstream server, by `upstream`, `server`, `kind`.
pub const UPSTREAM_ERRORS: &str = "asycamore_upstream_errors_total";
/// Histogram: from an attempt's start to the upstream's response head, by `upstream`,
/// `server`.
pub const UPSTREAM_HEAD_SECONDS: &str = "asycamore_upstream_response_head_seconds";
/// Counter: attempts sent on a pooled connection, by `upstream`, `server`.
pub const UPSTREAM_REUSED: &str = "asycamore_upstream_reused_connections_total";
/// Gauge: requests using an upstream server now, by `upstream`, `server`.
pub const UPSTREAM_IN_FLIGHT: &str = "asycamore_upstream_requests_in_flight";
/// Gauge: 1 unless passive health marked the server down, by `upstream`, `server`.
pub const UPSTREAM_UP: &str = "asycamore_upstream_up";
/// Gauge: connections open to an upstream server, by `upstream`, `server`, `state`.
pub const UPSTREAM_CONNECTIONS: &str = "asycamore_upstream_connections";
/// Counter: attempts made again after a failure, by `upstream`.
pub const UPSTREAM_RETRIES: &str = "asycamore_upstream_retries_total";
/// Counter: requests answered 503 with every server at its limit, by `upstream`.
pub const UPSTREAM_UNAVAILABLE: &str = "asycamore_upstream_unavailable_total";
