//! The reverse proxy: forwards a route's requests to a group of upstream servers and relays
//! their responses, streaming both ways, over connections that live in the worker's own
//! poll loop (lent by the server through [`ResponseWriter::outbound`]).
//!
//! `settings` is what configuration says; `balance` picks a server and keeps passive health;
//! `forward` decides which fields cross; `exchange` is one request's state machine. The
//! handler itself only writes the request head and hands over. It must not block, and it
//! never buffers a whole message in either direction.

mod balance;
mod exchange;
mod forward;
mod report;
mod settings;

pub use exchange::ProxyExchange;
pub use report::{ErrorKind, LATENCY_BUCKETS, Latency, ServerReport, UpstreamReport};
pub use settings::{
    Balance, NextUpstream, ProxyHost, ServerSettings, UpstreamAddress, UpstreamSettings,
};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::service::{BodyKind, BodyMode, HeaderLines, Request, ResponseWriter, Start};

use balance::Balancer;
use forward::{HostValue, Via};

/// Numbers upstream groups apart for the worker's connection pool (a reload builds new
/// groups, whose pooled connections must not mix with the old ones').
static NEXT_GROUP: AtomicU64 = AtomicU64::new(1);

/// One upstream group as the proxy runs it: its settings plus the state all workers share
/// (balancing position, requests in flight, passive health). Built once per configuration
/// generation and shared by every route that names it.
#[derive(Debug)]
pub struct Upstream {
    settings: UpstreamSettings,
    balancer: Arc<Balancer>,
    group: u64,
    /// Our `Via` entries, if the group sends them.
    via: Option<Via>,
}

impl Upstream {
    /// The group `settings` describes, every server up.
    pub fn new(settings: UpstreamSettings) -> Self {
        Upstream::succeeding(settings, None)
    }

    /// The group `settings` describes, replacing `previous` (the group of the same name in
    /// the configuration before a reload): fresh balancing and health, but the counters of
    /// every server it keeps (same address) and of the group go on, so the metrics do not
    /// start again from zero at each reload.
    pub fn succeeding(settings: UpstreamSettings, previous: Option<&Upstream>) -> Self {
        Upstream {
            balancer: Arc::new(Balancer::new(
                &settings,
                previous.map(|previous| &*previous.balancer),
            )),
            via: settings.via.as_deref().map(Via::new),
            settings,
            group: NEXT_GROUP.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Its name in the configuration.
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// The pool key of its `server`th server.
    fn pool_key(&self, server: usize) -> u64 {
        (self.group << 16) | server as u64
    }

    /// A snapshot of its servers' state and counters.
    pub fn report(&self) -> UpstreamReport {
        let balancer = &self.balancer;
        UpstreamReport {
            name: self.settings.name.clone(),
            balance: self.settings.balance.as_str(),
            unavailable: balancer.counters.unavailable.load(Ordering::Relaxed),
            retries: balancer.counters.retries.load(Ordering::Relaxed),
            servers: (0..balancer.len())
                .map(|index| {
                    let server = balancer.server(index);
                    let (responses, reused, errors, head_latency) = server.counters.report();
                    ServerReport {
                        address: server.settings.address.to_string(),
                        pool_key: self.pool_key(index),
                        up: !balancer.is_down(index),
                        in_flight: balancer.in_flight(index) as u64,
                        responses,
                        reused,
                        errors,
                        head_latency,
                    }
                })
                .collect(),
        }
    }
}

/// What a proxy route is built from.
#[derive(Debug)]
pub struct ProxySettings {
    /// The group requests go to (shared with the other routes naming it).
    pub upstream: Arc<Upstream>,
    /// What `Host` the upstream sees.
    pub host: ProxyHost,
    /// The route's extra response headers, encoded once.
    pub header_lines: HeaderLines,
}

/// The `proxy` handler.
#[derive(Debug)]
pub struct Proxy {
    upstream: Arc<Upstream>,
    host: ProxyHost,
    header_lines: Arc<HeaderLines>,
}

impl Proxy {
    /// A proxy route.
    pub fn new(settings: ProxySettings) -> Self {
        Proxy {
            upstream: settings.upstream,
            host: settings.host,
            header_lines: Arc::new(settings.header_lines),
        }
    }

    /// The group it forwards to.
    pub fn upstream(&self) -> &Arc<Upstream> {
        &self.upstream
    }

    /// Writes the request head for the upstream and hands the rest to a [`ProxyExchange`]:
    /// the body is streamed, so the client's `Expect: 100-continue` is answered at once.
    pub fn start(
        &self,
        request: &Request<'_>,
        response: &mut ResponseWriter<'_>,
    ) -> Start<ProxyExchange> {
        let Some(io) = response.outbound() else {
            let _ = response.complete(502, &[], b"no outbound connections here\n");
            return Start::Complete;
        };
        let mut out = io.take_write_buffer();
        let host = match &self.host {
            ProxyHost::Keep if request.authority().is_some() => HostValue::Client,
            ProxyHost::Literal(value) => HostValue::Given(value),
            ProxyHost::Keep | ProxyHost::Upstream => HostValue::Server,
        };
        let server_host = matches!(host, HostValue::Server);
        let via = self.upstream.via.as_ref();
        let host_at = forward::write_request_head(&mut out, request, host, via);
        let exchange = ProxyExchange::new(
            Arc::clone(&self.upstream),
            Arc::clone(&self.header_lines),
            request.method,
            out,
            request.body == BodyKind::Chunked,
            server_host.then_some(host_at),
        );
        Start::Continue {
            body: BodyMode::Stream,
            exchange,
        }
    }
}
