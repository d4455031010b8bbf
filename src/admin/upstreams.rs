//! The reverse proxy's upstream groups on the admin port: their metric families for
//! `/metrics` and their section of `/debug/connections`.
//!
//! Built at the scrape from the proxy's reports (shared atomics, read without locks) and the
//! workers' outbound connection counts (`ServerStats::outbound`, matched by pool key). Labels
//! are bounded by the configuration: group names, server addresses, and a fixed set of error
//! kinds.

use prometheus::proto::{MetricFamily, MetricType};

use super::metrics::{counter, family, gauge, histogram};
use super::names;
use crate::handlers::proxy::UpstreamReport;
use crate::server::{self, OutboundStats};

/// The metric families of `upstreams`, with connection counts from `outbound`.
pub(super) fn families(
    upstreams: &[UpstreamReport],
    outbound: &[OutboundStats],
) -> Vec<MetricFamily> {
    let mut responses = family(
        names::UPSTREAM_RESPONSES,
        "Responses whose head arrived from an upstream server.",
        MetricType::COUNTER,
    );
    let mut errors = family(
        names::UPSTREAM_ERRORS,
        "Failed attempts on an upstream server, by kind.",
        MetricType::COUNTER,
    );
    let mut latency = family(
        names::UPSTREAM_HEAD_SECONDS,
        "Time from an attempt's start to the upstream's response head.",
        MetricType::HISTOGRAM,
    );
    let mut reused = family(
        names::UPSTREAM_REUSED,
        "Attempts sent on a pooled keep-alive connection.",
        MetricType::COUNTER,
    );
    let mut in_flight = family(
        names::UPSTREAM_IN_FLIGHT,
        "Requests using an upstream server now.",
        MetricType::GAUGE,
    );
    let mut up = family(
        names::UPSTREAM_UP,
        "1 unless passive health has marked the upstream server down.",
        MetricType::GAUGE,
    );
    let mut connections = family(
        names::UPSTREAM_CONNECTIONS,
        "Connections to an upstream server open now, by state (active, idle in the pool).",
        MetricType::GAUGE,
    );
    let mut retries = family(
        names::UPSTREAM_RETRIES,
        "Attempts made again after a failure, by upstream group.",
        MetricType::COUNTER,
    );
    let mut unavailable = family(
        names::UPSTREAM_UNAVAILABLE,
        "Requests answered 503 because every server was at its max_connections.",
        MetricType::COUNTER,
    );
    for upstream in upstreams {
        let group = [("upstream", upstream.name.as_str())];
        retries.mut_metric().push(counter(&group, upstream.retries));
        unavailable
            .mut_metric()
            .push(counter(&group, upstream.unavailable));
        for server in &upstream.servers {
            let labels = [
                ("upstream", upstream.name.as_str()),
                ("server", server.address.as_str()),
            ];
            responses
                .mut_metric()
                .push(counter(&labels, server.responses));
            for (kind, count) in &server.errors {
                let labels = [labels[0], labels[1], ("kind", kind.label())];
                errors.mut_metric().push(counter(&labels, *count));
            }
            let head = &server.head_latency;
            let head = server::Histogram {
                bounds: head.bounds,
                counts: head.counts.clone(),
                sum: head.sum,
                count: head.count,
            };
            latency.mut_metric().push(histogram(&labels, &head));
            reused.mut_metric().push(counter(&labels, server.reused));
            in_flight
                .mut_metric()
                .push(gauge(&labels, server.in_flight as f64));
            up.mut_metric()
                .push(gauge(&labels, if server.up { 1.0 } else { 0.0 }));
            let (open, idle) = pool_counts(outbound, server.pool_key);
            for (state, value) in [("active", open - idle), ("idle", idle)] {
                let labels = [labels[0], labels[1], ("state", state)];
                connections.mut_metric().push(gauge(&labels, value as f64));
            }
        }
    }
    vec![
        responses,
        errors,
        latency,
        reused,
        in_flight,
        up,
        connections,
        retries,
        unavailable,
    ]
}

/// Open and idle connections under `key`, over every worker.
pub(super) fn pool_counts(outbound: &[OutboundStats], key: u64) -> (u64, u64) {
    outbound
        .iter()
        .find(|stats| stats.key == key)
        .map_or((0, 0), |stats| (stats.open, stats.idle))
}
