//! `GET /metrics`: Prometheus text exposition (format 0.0.4) built with the prometheus crate.
//!
//! Nothing is registered or updated on the request path: at each scrape the data plane's
//! per-worker counters are folded into a [`ServerStats`] (`StatsHandle::stats`), which is
//! turned into metric families here, next to the daemon's own values (reloads, generation,
//! readiness, profiling) and the process collector's (CPU, memory, descriptors). Every label
//! is bounded by construction: route names come from the configuration, methods are a fixed
//! set plus `OTHER`, codes are status codes, reasons and kinds are enums of the server.

use prometheus::core::Collector;
use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use prometheus::{Encoder, TextEncoder};

use super::names;
use crate::handlers::proxy::UpstreamReport;
use crate::server::{self, ServerStats};

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The daemon's own values, read at the scrape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DaemonValues {
    /// Successful reloads.
    pub reloads_ok: u64,
    /// Failed reloads.
    pub reloads_failed: u64,
    /// The configuration generation serving.
    pub generation: u64,
    /// When the running configuration was loaded, in seconds since the epoch.
    pub loaded_at: f64,
    /// Whether the daemon is ready (not starting, not draining).
    pub ready: bool,
    /// Whether the data plane counts (`[admin] metrics`).
    pub metrics_enabled: bool,
    /// Whether a CPU profile is being collected.
    pub profiling: bool,
}

/// The exposition of `stats`, the proxy's `upstreams`, `daemon` and the `process`
/// collector's metrics.
pub fn render(
    stats: &ServerStats,
    upstreams: &[UpstreamReport],
    daemon: &DaemonValues,
    process: Option<&dyn Collector>,
) -> String {
    let mut families = data_plane(stats);
    families.extend(super::upstreams::families(upstreams, &stats.outbound));
    families.extend(daemon_families(daemon));
    if let Some(process) = process {
        families.extend(process.collect());
    }
    families.retain(|family| !family.get_metric().is_empty());
    let mut out = Vec::new();
    if let Err(err) = TextEncoder::new().encode(&families, &mut out) {
        out.extend_from_slice(format!("# encoding failed: {err}\n").as_bytes());
    }
    String::from_utf8(out).unwrap_or_default()
}

fn data_plane(stats: &ServerStats) -> Vec<MetricFamily> {
    let mut requests = family(
        names::REQUESTS,
        "Requests answered, by route (empty: no route matched), method and status code.",
        MetricType::COUNTER,
    );
    let mut duration = family(
        names::REQUEST_DURATION,
        "Time from the request head parsed to the response complete, by route.",
        MetricType::HISTOGRAM,
    );
    let mut request_bytes = family(
        names::REQUEST_BODY_BYTES,
        "Request body bytes received, by route.",
        MetricType::COUNTER,
    );
    let mut response_bytes = family(
        names::RESPONSE_BODY_BYTES,
        "Response body bytes sent (not framing), by route.",
        MetricType::COUNTER,
    );
    for route in &stats.routes {
        let mut by_code = route.requests.clone();
        by_code.sort_by_key(|(method, status, _)| (method.as_str(), *status));
        for (method, status, count) in by_code {
            let labels = [
                ("route", route.route.as_str()),
                ("method", method.as_str()),
                ("code", &status.to_string()),
            ];
            requests.mut_metric().push(counter(&labels, count));
        }
        let labels = [("route", route.route.as_str())];
        duration
            .mut_metric()
            .push(histogram(&labels, &route.duration));
        request_bytes
            .mut_metric()
            .push(counter(&labels, route.request_body_bytes));
        response_bytes
            .mut_metric()
            .push(counter(&labels, route.response_body_bytes));
    }
    let mut accepted = family(
        names::CONNECTIONS_ACCEPTED,
        "Connections accepted.",
        MetricType::COUNTER,
    );
    accepted
        .mut_metric()
        .push(counter(&[], stats.connections_accepted));
    let mut open = family(
        names::CONNECTIONS_OPEN,
        "Connections open now.",
        MetricType::GAUGE,
    );
    open.mut_metric()
        .push(gauge(&[], stats.connections_open as f64));
    let mut closed = family(
        names::CONNECTIONS_CLOSED,
        "Connections closed, by reason.",
        MetricType::COUNTER,
    );
    for (reason, count) in &stats.connections_closed {
        closed
            .mut_metric()
            .push(counter(&[("reason", reason.as_str())], *count));
    }
    let mut per_connection = family(
        names::REQUESTS_PER_CONNECTION,
        "Requests served per connection, observed when it closes.",
        MetricType::HISTOGRAM,
    );
    per_connection
        .mut_metric()
        .push(histogram(&[], &stats.requests_per_connection));
    let mut pipeline = family(
        names::PIPELINE_DEPTH,
        "Requests answered per read of a connection's socket.",
        MetricType::HISTOGRAM,
    );
    pipeline
        .mut_metric()
        .push(histogram(&[], &stats.pipeline_depth));
    let mut parse_errors = family(
        names::PARSE_ERRORS,
        "Requests refused as unparseable, by kind.",
        MetricType::COUNTER,
    );
    let mut kinds = stats.parse_errors.clone();
    kinds.sort();
    for (kind, count) in kinds {
        parse_errors
            .mut_metric()
            .push(counter(&[("kind", kind)], count));
    }
    vec![
        requests,
        duration,
        request_bytes,
        response_bytes,
        accepted,
        open,
        closed,
        per_connection,
        pipeline,
        parse_errors,
    ]
}

fn daemon_families(daemon: &DaemonValues) -> Vec<MetricFamily> {
    let mut reloads = family(
        names::CONFIG_RELOADS,
        "Configuration reloads (SIGHUP or POST /reload), by result.",
        MetricType::COUNTER,
    );
    reloads
        .mut_metric()
        .push(counter(&[("result", "success")], daemon.reloads_ok));
    reloads
        .mut_metric()
        .push(counter(&[("result", "failure")], daemon.reloads_failed));
    let one = |name: &str, help: &str, labels: &[(&str, &str)], value: f64| {
        let mut family = family(name, help, MetricType::GAUGE);
        family.mut_metric().push(gauge(labels, value));
        family
    };
    let flag = |on: bool| if on { 1.0 } else { 0.0 };
    vec![
        reloads,
        one(
            names::CONFIG_GENERATION,
            "The configuration generation serving (1 at start, +1 per successful reload).",
            &[],
            daemon.generation as f64,
        ),
        one(
            names::CONFIG_LAST_RELOAD_SUCCESS,
            "When the running configuration was loaded (start or last successful reload), \
             in seconds since the epoch.",
            &[],
            daemon.loaded_at,
        ),
        one(
            names::READY,
            "1 when serving; 0 while starting or draining.",
            &[],
            flag(daemon.ready),
        ),
        one(
            names::METRICS_ENABLED,
            "1 when the data plane counts requests for these metrics ([admin] metrics).",
            &[],
            flag(daemon.metrics_enabled),
        ),
        one(
            names::PROFILING_ACTIVE,
            "1 while a CPU profile is being collected.",
            &[],
            flag(daemon.profiling),
        ),
        one(
            names::BUILD_INFO,
            "Always 1; the labels describe the build.",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        ),
    ]
}

pub(super) fn family(name: &str, help: &str, kind: MetricType) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_owned());
    family.set_help(help.to_owned());
    family.set_field_type(kind);
    family
}

fn labelled(labels: &[(&str, &str)]) -> Metric {
    let pairs = labels
        .iter()
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name((*name).to_owned());
            pair.set_value((*value).to_owned());
            pair
        })
        .collect();
    let mut metric = Metric::default();
    metric.set_label(pairs);
    metric
}

pub(super) fn counter(labels: &[(&str, &str)], value: u64) -> Metric {
    let mut metric = labelled(labels);
    let mut counter = Counter::default();
    counter.set_value(value as f64);
    metric.set_counter(counter);
    metric
}

pub(super) fn gauge(labels: &[(&str, &str)], value: f64) -> Metric {
    let mut metric = labelled(labels);
    let mut gauge = Gauge::default();
    gauge.set_value(value);
    metric.set_gauge(gauge);
    metric
}

/// The server's per-bucket counts become Prometheus' cumulative ones; `+Inf` is the count.
pub(super) fn histogram(labels: &[(&str, &str)], source: &server::Histogram) -> Metric {
    let mut metric = labelled(labels);
    let mut histogram = Histogram::default();
    let mut cumulative = 0;
    let buckets = source
        .bounds
        .iter()
        .zip(&source.counts)
        .map(|(&bound, &count)| {
            cumulative += count;
            let mut bucket = Bucket::default();
            bucket.set_upper_bound(bound);
            bucket.set_cumulative_count(cumulative);
            bucket
        })
        .collect();
    histogram.set_bucket(buckets);
    histogram.set_sample_count(source.count);
    histogram.set_sample_sum(source.sum);
    metric.set_histogram(histogram);
    metric
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_server_still_lists_every_family_it_can() {
        let text = render(&ServerStats::empty(), &[], &DaemonValues::default(), None);
        for name in [
            names::CONNECTIONS_ACCEPTED,
            names::CONNECTIONS_OPEN,
            names::CONNECTIONS_CLOSED,
            names::REQUESTS_PER_CONNECTION,
            names::PIPELINE_DEPTH,
            names::CONFIG_RELOADS,
            names::CONFIG_GENERATION,
            names::BUILD_INFO,
        ] {
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}\n{text}");
        }
        assert!(text.contains("asycamore_connections_closed_total{reason=\"idle_timeout\"} 0\n"));
        assert!(text.contains("asycamore_pipeline_depth_bucket{le=\"+Inf\"} 0\n"));
    }
}
