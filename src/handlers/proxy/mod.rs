//! The reverse proxy: forwards a route's requests to a group of upstream servers and relays
//! their responses, streaming both ways.
//!
//! Work in progress (issue 9): this skeleton fixes the constructor API configuration builds
//! against; the exchange is being written.

mod settings;

pub use settings::{Balance, ProxyHost, ServerSettings, UpstreamAddress, UpstreamSettings};

use std::sync::Arc;

use crate::service::{Request, ResponseWriter, Start};

/// One upstream group as the proxy runs it: its settings plus the state all workers share
/// (balancing position, passive health). Built once per configuration generation and shared
/// by every route that names it.
#[derive(Debug)]
pub struct Upstream {
    settings: UpstreamSettings,
}

impl Upstream {
    /// The group `settings` describes, every server up.
    pub fn new(settings: UpstreamSettings) -> Self {
        Upstream { settings }
    }

    /// Its name in the configuration.
    pub fn name(&self) -> &str {
        &self.settings.name
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
    pub header_lines: Vec<u8>,
}

/// The `proxy` handler.
#[derive(Debug)]
pub struct Proxy {
    settings: ProxySettings,
}

impl Proxy {
    /// A proxy route.
    pub fn new(settings: ProxySettings) -> Self {
        Proxy { settings }
    }

    /// Answers a request (being written).
    pub fn start(&self, _request: &Request<'_>, response: &mut ResponseWriter<'_>) -> Start<()> {
        let _ = &self.settings;
        response.complete(502, &[], b"");
        Start::Complete
    }
}
