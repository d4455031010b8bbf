//! Configuration of the asycamore daemon: the validated runtime value (`Config`) the server is
//! built from, and the located errors (`file:line:column: key: message`) an operator sees when
//! `asycamore.toml` is wrong.
//!
//! Layout: `model` is the serde mirror of the file, `validate` turns it into a `Config` (or every
//! problem at once), `load` ties reading, parsing and validating together. This module must never
//! open a connection, spawn threads, or hand out a `Config` that has not been validated: the rest
//! of the server trusts every field here without re-checking. (Its one network-adjacent step is
//! validation resolving upstream host names, which reads /etc/hosts or asks the resolver.)

mod build;
mod error;
#[cfg(test)]
mod error_tables;
mod lifecycle;
mod load;
pub mod model;
mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::handlers::proxy::{
    Balance, NextUpstream, ProxyHost, ServerSettings, UpstreamAddress, UpstreamSettings,
};
pub use crate::server::{HostPattern, PathPattern};
pub use build::{precedence, route_table, route_table_after, server_config, upstreams_of};
pub use lifecycle::{
    AccessFormatSpec, AccessLogConfig, LogConfig, LogTarget, reload_restart_keys,
    with_restart_keys_kept,
};
pub use load::{EMBEDDED_DEFAULT, EMBEDDED_NAME, load_file, load_str, load_str_with};
pub use validate::{
    Resolver, format_size, loopback_resolver, system_resolver, validate, validate_with,
};

/// The largest `admin.profile_max_seconds` accepted.
pub const PROFILE_MAX_SECONDS_LIMIT: u64 = 600;

/// The validated runtime configuration. No serde and no spans: by the time this exists every
/// value is in range and every cross-field rule holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// At least one, no duplicates, in file order.
    pub listen: Vec<SocketAddr>,
    /// Resolved: `workers = 0` in the file becomes the machine's available parallelism.
    pub workers: usize,
    /// Per worker; accept pauses at the limit.
    pub max_connections: usize,
    /// 0 = unlimited.
    pub max_requests_per_connection: u64,
    /// Hand a connection to a worker only once its first bytes arrived (see
    /// `server::ServerConfig::defer_accept`). A restart applies a change.
    pub defer_accept: bool,
    /// Size limits.
    pub limits: Limits,
    /// Connection timeouts.
    pub timeouts: Timeouts,
    /// In file order (the router orders them by precedence, whatever the file order).
    pub routes: Vec<RouteSpec>,
    /// `[[upstream]]` groups in file order, names unique, host names resolved; every proxy
    /// route names one of them (one no route names is valid, and unused).
    pub upstreams: Vec<UpstreamSettings>,
    /// How long a graceful stop may take before the rest is closed (> 0, <= 1 day).
    pub shutdown_timeout: Duration,
    /// Absolute; `None` = no pidfile.
    pub pidfile: Option<PathBuf>,
    /// An existing user to run as after binding; `None` = stay.
    pub user: Option<String>,
    /// An existing group to run as after binding; `None` = the user's primary group.
    pub group: Option<String>,
    /// The error log.
    pub log: LogConfig,
    /// The access log, if enabled.
    pub access_log: Option<AccessLogConfig>,
    /// The admin listener.
    pub admin: AdminConfig,
}

/// `[admin]`: the admin listener (metrics, health, reload, introspection, profiling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// Whether the admin listener runs.
    pub enabled: bool,
    /// One `ip:port`.
    pub listen: SocketAddr,
    /// Whether `listen` was written in the file. The default address being taken (another
    /// daemon on the host has it) only leaves the admin port off, with a warning; an address
    /// asked for is a start-up error.
    pub listen_given: bool,
    /// The bearer token every admin request but health checks (and, on a local listener,
    /// `/metrics`) must carry; `None` = none. From `token`, or read from `token_file`.
    pub token: Option<String>,
    /// Whether a non-loopback `listen` without a token was allowed explicitly.
    pub allow_public: bool,
    /// Whether the data plane counts requests for `/metrics`.
    pub metrics: bool,
    /// The longest profile taken, in seconds (1..=600).
    pub profile_max_seconds: u64,
    /// An extra listener on this Unix socket (an absolute path), if any.
    pub unix_socket: Option<std::path::PathBuf>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9180)),
            listen_given: false,
            token: None,
            allow_public: false,
            metrics: true,
            profile_max_seconds: 60,
            unix_socket: None,
        }
    }
}

/// Per-request and per-connection size limits, all in bytes except `max_headers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Request line plus headers; larger is answered 431.
    pub max_head_bytes: usize,
    /// Header fields per request; more is answered 431.
    pub max_headers: usize,
    /// Largest request body; larger is answered 413.
    pub max_body_bytes: u64,
    /// Chunk-extension bytes on one chunk-size line.
    pub max_chunk_extension_bytes: usize,
    /// Trailer bytes after a chunked body.
    pub max_trailer_bytes: usize,
    /// Back-pressure mark for queued response bytes.
    pub output_buffer_bytes: usize,
    /// The slowest average rate a request body may arrive at, after a `timeouts.body` grace
    /// (0: no minimum).
    pub min_body_bytes_per_second: u64,
}

/// Every timeout is > 0 and <= 1 day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From the first byte of a request head to its end.
    pub head: Duration,
    /// Longest silence while reading a request body.
    pub body: Duration,
    /// Keep-alive connection with no request in progress.
    pub idle: Duration,
    /// Longest time without write progress on a blocked response.
    pub write: Duration,
}

/// One `[[route]]`, with `[defaults]` applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// `[A-Za-z0-9_.-]{1,64}`, unique.
    pub name: String,
    /// Lower-cased; a wildcard's domain is stored without its `*.`.
    pub host: HostPattern,
    /// Starts with '/'. A prefix's trailing '/' is removed (except for "/" itself) so the
    /// router sees one spelling per prefix; an exact path is kept as written. No two routes
    /// have the same host, path and an overlapping method.
    pub path: PathPattern,
    /// Upper-cased tokens, no duplicates, in file order; empty = any method.
    pub methods: Vec<String>,
    /// The route's body limit; at most `limits.max_body_bytes`.
    pub max_body_bytes: u64,
    /// Extra response headers: `[defaults]`'s not overridden by the route, then the route's,
    /// each in file order; names and values valid on the wire, none the server manages itself
    /// (Content-Length, Transfer-Encoding, Connection, Date), no name twice.
    pub headers: Vec<(String, String)>,
    /// What serves the route.
    pub handler: HandlerSpec,
}

/// What a route does with a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerSpec {
    /// A fixed response.
    Respond {
        /// The status code.
        status: u16,
        /// The body.
        body: String,
    },
    /// Send the request back.
    Echo,
    /// Files under a directory.
    Static {
        /// Canonical, absolute, a readable directory when validated.
        root: PathBuf,
        /// Plain file names tried for a directory, in order.
        index: Vec<String>,
        /// Whether a directory without an index file gets an HTML listing.
        listing: bool,
        /// Whether symlinks may resolve outside `root`.
        follow_symlinks_outside_root: bool,
    },
    /// Request bodies stored as new files.
    Upload {
        /// Canonical, absolute, a writable directory when validated.
        dir: PathBuf,
        /// Whether to fsync before answering.
        fsync: bool,
    },
    /// A redirect.
    Redirect {
        /// 301, 302, 303, 307 or 308.
        status: u16,
        /// An absolute URL (`scheme://...`) or an absolute path (`/...`).
        to: String,
        /// Append the request path below the route's path.
        keep_path: bool,
        /// Append the request's query string.
        keep_query: bool,
    },
    /// Forward to an upstream group.
    Proxy {
        /// The name of one of `Config::upstreams`.
        upstream: String,
        /// What `Host` the upstream sees.
        host: ProxyHost,
    },
}

impl HandlerSpec {
    /// The handler's name as written in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            HandlerSpec::Respond { .. } => "respond",
            HandlerSpec::Echo => "echo",
            HandlerSpec::Static { .. } => "static",
            HandlerSpec::Upload { .. } => "upload",
            HandlerSpec::Redirect { .. } => "redirect",
            HandlerSpec::Proxy { .. } => "proxy",
        }
    }
}

pub use error::{ConfigError, ConfigErrorKind, ConfigErrors, IntRange};
pub(crate) use error::{key_segment, line_column, suggest, working_dir_of};
