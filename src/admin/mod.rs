//! The admin port: metrics, health, the running configuration, reload, connection
//! introspection and CPU profiling, served by the same engine as the data plane but on its
//! own listener, thread and poll loop (the daemon starts it with `server::start` and one
//! worker), so a saturated data plane never hides its metrics.
//!
//! [`Admin`] is that server's handler. Before dispatching by path it checks, in order:
//! - the `Host` header, when the listener is bound to loopback: only loopback addresses and
//!   `localhost` are accepted (403 otherwise), so a page elsewhere cannot reach the port
//!   through DNS rebinding (not over the Unix socket, which has no network peer);
//! - where the request comes from (`cross_site.rs`): what a browser sends for a page on
//!   another origin (`Sec-Fetch-Site`, `Origin`, `Referer`), or a POST with a form content
//!   type, is refused (403), token or not;
//! - the bearer token, when one is configured (401 with `WWW-Authenticate: Bearer`), compared
//!   in constant time; `/healthz` and `/readyz` stay open for probes, and `/metrics` for a
//!   scraper on the same host (a loopback listener or the Unix socket; on any other address
//!   it needs the token too);
//! - the method: reading endpoints take GET and HEAD, mutating ones (`/reload`,
//!   `/profiling/start`, `/profiling/stop`) only POST, so a browser image tag cannot trigger
//!   them (405 with `Allow`).
//!
//! The admin layer reads the data plane through [`StatsHandle`] and the daemon through
//! [`AdminState`], which the daemon updates (readiness, the running configuration, reload
//! counts) and through which it takes reload requests. It uses `server`, `service`, `config`
//! and `http1`; only the daemon uses it.

mod config_view;
mod connections;
mod cross_site;
mod health;
mod metrics;
mod names;
pub mod profile;
mod reload;
mod upstreams;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use prometheus::process_collector::ProcessCollector;
use sha2::{Digest, Sha256};

use crate::handlers::proxy::{Upstream, UpstreamReport};
use crate::server::StatsHandle;
use crate::service::{BodyEvent, BodyMode, Exchange, Handler, Request, ResponseWriter, Start};

pub use config_view::{REDACTED, Running};
pub use health::{Health, Readiness};
pub use metrics::DaemonValues;
pub use reload::{CONFIG_HEADER, ReloadExchange, ReloadOutcome, ReloadRequest};

/// How long a scrape or an introspection waits for the data-plane workers to answer.
const STATS_TIMEOUT: Duration = Duration::from_secs(2);

const TEXT: &[u8] = b"text/plain; charset=utf-8";

/// What the admin port shares with the daemon.
pub struct AdminState {
    stats: StatsHandle,
    health: Health,
    running: RwLock<Running>,
    /// The proxy's upstream groups in the running configuration.
    upstreams: RwLock<Vec<Arc<Upstream>>>,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    metrics_enabled: bool,
    reload: Box<dyn Fn(ReloadRequest) + Send + Sync>,
}

impl AdminState {
    /// The state of a daemon running `running`, whose data plane `stats` reads (counting
    /// when `metrics_enabled`), and which takes reload requests through `reload` (a request
    /// it drops unanswered answers 503 itself).
    pub fn new(
        stats: StatsHandle,
        running: Running,
        metrics_enabled: bool,
        reload: impl Fn(ReloadRequest) + Send + Sync + 'static,
    ) -> Self {
        AdminState {
            stats,
            health: Health::default(),
            running: RwLock::new(running),
            upstreams: RwLock::new(Vec::new()),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            metrics_enabled,
            reload: Box::new(reload),
        }
    }

    /// Sets the readiness `/readyz` reports.
    pub fn set_readiness(&self, readiness: Readiness) {
        self.health.set(readiness);
    }

    /// A reload succeeded: `running` is in force.
    pub fn reloaded(&self, running: Running) {
        self.reloads_ok.fetch_add(1, Ordering::Relaxed);
        *self
            .running
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = running;
    }

    /// The proxy's upstream groups now serving (at start and after each reload).
    pub fn set_upstreams(&self, upstreams: Vec<Arc<Upstream>>) {
        *self
            .upstreams
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = upstreams;
    }

    /// Reports of the upstream groups now serving.
    fn upstream_reports(&self) -> Vec<UpstreamReport> {
        self.upstreams
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|upstream| upstream.report())
            .collect()
    }

    /// A reload failed; the running configuration stays.
    pub fn reload_failed(&self) {
        self.reloads_failed.fetch_add(1, Ordering::Relaxed);
    }

    fn with_running<T>(&self, f: impl FnOnce(&Running) -> T) -> T {
        f(&self
            .running
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}

/// The admin server's handler.
pub struct Admin {
    state: Arc<AdminState>,
    /// The listener is bound to a loopback address: check `Host`.
    loopback: bool,
    process: ProcessCollector,
}

impl Admin {
    /// The handler of an admin listener bound to `ip`.
    pub fn new(state: Arc<AdminState>, ip: IpAddr) -> Self {
        Admin {
            state,
            loopback: ip.is_loopback(),
            process: ProcessCollector::for_self(),
        }
    }

    fn authorized(&self, request: &Request<'_>) -> Result<(), &'static [u8]> {
        let want = self
            .state
            .with_running(|running| running.config.admin.token.as_deref().map(digest));
        let Some(want) = want else {
            return Ok(());
        };
        let given = request.header("authorization").and_then(bearer);
        match given {
            Some(given) if constant_time_eq(&digest_bytes(given), &want) => Ok(()),
            Some(_) => Err(b"Bearer realm=\"asycamore-admin\", error=\"invalid_token\""),
            None => Err(b"Bearer realm=\"asycamore-admin\""),
        }
    }

    fn metrics(&self, response: &mut ResponseWriter<'_>) {
        let stats = self.state.stats.stats(STATS_TIMEOUT);
        let (generation, loaded_at) = self.state.with_running(|running| {
            let loaded_at = running
                .loaded_at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |since| since.as_secs_f64());
            (running.generation, loaded_at)
        });
        let daemon = DaemonValues {
            reloads_ok: self.state.reloads_ok.load(Ordering::Relaxed),
            reloads_failed: self.state.reloads_failed.load(Ordering::Relaxed),
            generation,
            loaded_at,
            ready: self.state.health.get() == Readiness::Ready,
            metrics_enabled: self.state.metrics_enabled,
            profiling: profile::active(),
        };
        let upstreams = self.state.upstream_reports();
        let body = metrics::render(&stats, &upstreams, &daemon, Some(&self.process));
        let content_type = metrics::CONTENT_TYPE.as_bytes();
        let _ = response.complete(200, &[("Content-Type", content_type)], body.as_bytes());
    }

    fn connections(&self, request: &Request<'_>, response: &mut ResponseWriter<'_>) {
        let Some(format) = connections::Format::from_query(request.query()) else {
            return text(response, 400, "format must be json or text\n");
        };
        let list = self.state.stats.connections(STATS_TIMEOUT);
        let upstreams = self.state.upstream_reports();
        let outbound = if upstreams.is_empty() {
            Vec::new()
        } else {
            self.state.stats.stats(STATS_TIMEOUT).outbound
        };
        let body = connections::render(list, &upstreams, &outbound, format);
        let _ = response.complete(
            200,
            &[("Content-Type", format.content_type())],
            body.as_bytes(),
        );
    }

    fn reload(
        &self,
        request: &Request<'_>,
        response: &mut ResponseWriter<'_>,
    ) -> Start<AdminExchange> {
        let Some(waker) = response.waker() else {
            text(response, 500, "reload needs a server connection\n");
            return Start::Complete;
        };
        // `asycamore reload --config FILE` names the file it means; the daemon refuses
        // another file than its own.
        let config = request.header(reload::CONFIG_HEADER).map(|value| {
            use std::os::unix::ffi::OsStrExt;
            std::path::PathBuf::from(std::ffi::OsStr::from_bytes(value))
        });
        let (request, exchange) = ReloadRequest::new(waker, config);
        (self.state.reload)(request);
        Start::Continue {
            body: BodyMode::Ignore,
            exchange: AdminExchange::Reload(exchange),
        }
    }
}

/// The endpoints other than profiling's, and the methods each takes.
const READ: &str = "GET, HEAD";
const POST: &str = "POST";

fn allowed(path: &str) -> Option<&'static str> {
    match path {
        "/" | "/healthz" | "/readyz" | "/metrics" | "/config" | "/debug/connections" => Some(READ),
        "/reload" => Some(POST),
        _ => None,
    }
}

const INDEX: &str = "asycamore admin\n\
GET  /healthz             200 while the process lives\n\
GET  /readyz              200 when serving, 503 while starting or draining\n\
GET  /metrics             Prometheus metrics\n\
GET  /config              the running configuration (secrets redacted)\n\
GET  /debug/connections   open connections (?format=json|text)\n\
POST /reload              reload the configuration file\n\
GET  /profiling           profiling state\n\
POST /profiling/start     start a CPU profile (?frequency=HZ)\n\
POST /profiling/stop      stop any profile, return it (?format=flamegraph for SVG)\n\
GET  /debug/pprof/profile a CPU profile of ?seconds=N\n";

impl Handler for Admin {
    type Exchange = AdminExchange;

    fn start(
        &self,
        request: &Request<'_>,
        response: &mut ResponseWriter<'_>,
    ) -> Start<AdminExchange> {
        // Over the Unix socket there is no network peer, so no page elsewhere can reach it.
        // Over a Unix socket there is no network peer to rebind a name to.
        let check_host = self.loopback && request.peer.is_some();
        if check_host && !request.host().is_none_or(is_loopback_host) {
            text(
                response,
                403,
                "the admin port answers only requests for a loopback host\n",
            );
            return Start::Complete;
        }
        if let Some(refusal) = cross_site::refusal(request) {
            text(response, 403, refusal);
            return Start::Complete;
        }
        let path = request.path();
        // Health for probes, and metrics for a scraper on the same host, need no token; the
        // rest (the configuration, connections, reload, profiling) does.
        let local = self.loopback || request.peer.is_none();
        let open = matches!(path, "/healthz" | "/readyz") || (path == "/metrics" && local);
        if !open {
            if let Err(challenge) = self.authorized(request) {
                let _ = response.complete(
                    401,
                    &[("WWW-Authenticate", challenge), ("Content-Type", TEXT)],
                    b"a bearer token is required\n",
                );
                return Start::Complete;
            }
        }
        if profile::Profiling::serves(path) {
            let max = self
                .state
                .with_running(|running| running.config.admin.profile_max_seconds);
            return match profile::Profiling::new(max).handle(request, response) {
                Some(start) => start.map(AdminExchange::Profile),
                None => {
                    text(response, 404, "not found\n");
                    Start::Complete
                }
            };
        }
        let Some(methods) = allowed(path) else {
            text(response, 404, "not found\n");
            return Start::Complete;
        };
        let method_ok = match methods {
            POST => request.method == "POST",
            _ => matches!(request.method, "GET" | "HEAD"),
        };
        if !method_ok {
            let _ = response.complete(
                405,
                &[("Allow", methods.as_bytes()), ("Content-Type", TEXT)],
                format!("{path} takes {methods} only\n").as_bytes(),
            );
            return Start::Complete;
        }
        match path {
            "/" => text(response, 200, INDEX),
            "/healthz" => text(response, 200, "ok\n"),
            "/readyz" => {
                let (status, body) = self.state.health.readyz();
                text(response, status, body);
            }
            "/metrics" => self.metrics(response),
            "/config" => {
                let body = self.state.with_running(Running::render);
                let _ = response.complete(
                    200,
                    &[("Content-Type", b"application/toml; charset=utf-8")],
                    body.as_bytes(),
                );
            }
            "/debug/connections" => self.connections(request, response),
            "/reload" => return self.reload(request, response),
            _ => text(response, 404, "not found\n"),
        }
        Start::Complete
    }
}

/// The exchanges of the admin endpoints that answer later.
pub enum AdminExchange {
    /// `POST /reload`, waiting on the control thread.
    Reload(ReloadExchange),
    /// A profile, waiting on the profiler thread.
    Profile(profile::ProfileExchange),
}

impl Exchange for AdminExchange {
    fn on_body(&mut self, event: BodyEvent<'_>, response: &mut ResponseWriter<'_>) {
        match self {
            AdminExchange::Reload(exchange) => exchange.on_body(event, response),
            AdminExchange::Profile(exchange) => exchange.on_body(event, response),
        }
    }

    fn on_writable(&mut self, response: &mut ResponseWriter<'_>) {
        match self {
            AdminExchange::Reload(exchange) => exchange.on_writable(response),
            AdminExchange::Profile(exchange) => exchange.on_writable(response),
        }
    }
}

fn text(response: &mut ResponseWriter<'_>, status: u16, body: &str) {
    let _ = response.complete(status, &[("Content-Type", TEXT)], body.as_bytes());
}

/// `localhost`, a name under `.localhost` (RFC 6761), or a loopback address literal.
fn is_loopback_host(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.eq_ignore_ascii_case("localhost")
        || host
            .get(host.len().saturating_sub(10)..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(".localhost"))
    {
        return true;
    }
    let literal = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    literal.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The token of an `Authorization: Bearer TOKEN` value (scheme case-insensitive).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || !rest.first()?.is_ascii_whitespace() {
        return None;
    }
    Some(rest.trim_ascii_start())
}

fn digest(token: &str) -> [u8; 32] {
    digest_bytes(token.as_bytes())
}

/// Both sides are hashed first, so the comparison takes the same time whatever the lengths.
fn digest_bytes(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "LOCALHOST.",
            "a.localhost",
            "127.0.0.1",
            "127.1.2.3",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.com",
            "localhost.evil.com",
            "10.0.0.1",
            "[::2]",
            "0.0.0.0",
            "xlocalhost",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer   abc "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bearerabc"), None);
        assert_eq!(bearer(b"Bearer"), None);
        assert!(constant_time_eq(&digest("t"), &digest_bytes(b"t")));
        assert!(!constant_time_eq(&digest("t"), &digest_bytes(b"u")));
    }
}
