//! Semantic validation: turns a parsed `RawConfig` into a runtime `Config`, applying defaults
//! and checking every range, format and cross-field rule, and reporting EVERY problem found (in
//! file order), each located by its value's span.
//!
//! A section (or route) that did not deserialize arrives as its located error: that error is
//! reported and the section's own checks are skipped, since there is no value to check; every
//! other section is still checked, so one bad section hides nothing else. A key of the wrong
//! type arrives removed from its section (its error in `RawConfig::removed`): the section's
//! other keys are checked, and the key is not reported a second time as missing.
//!
//! This file must never stop at the first error, never parse TOML itself, and never return a
//! `Config` when anything was reported: a partially checked value would let the server trust
//! fields nobody checked.
//!
//! Validation reads the filesystem (a static root, an upload directory: `handler.rs`), and its
//! one network-adjacent step is resolving an upstream server's host name (`upstream.rs`, with
//! `std::net::ToSocketAddrs`): that reads /etc/hosts or asks the system resolver, and opens no
//! connection.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use toml::Spanned;

use super::model::{RawConfig, RawLimits, RawServer, RawSize, RawTimeouts, Section};
use super::{
    Config, ConfigError, ConfigErrorKind, ConfigErrors, IntRange, Limits, Timeouts, line_column,
};
use crate::http1::head::MAX_HEADERS_LIMIT;

mod admin;
mod handler;
mod lifecycle;
mod route;
mod size;
mod upstream;

pub use size::format_size;

// Defaults and ranges, in one place so the documented file (`asycamore.toml`) can be checked
// against them by the tests.
const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));
const WORKERS: (i64, IntRange) = (0, IntRange::new(0, 1024));
// The brief leaves this open; a million per worker is far above what one poll loop serves, and
// still small enough that per-connection tables sized from it cannot exhaust memory by accident.
const MAX_CONNECTIONS: (i64, IntRange) = (10_000, IntRange::new(1, 1_048_576));
const MAX_REQUESTS_PER_CONNECTION: (i64, IntRange) = (10_000, IntRange::from(0));
const MAX_HEAD_BYTES: (i64, IntRange) = (16_384, IntRange::new(1024, 1_048_576));
// `as` is fine here: 256 always fits in i64, and const contexts cannot call `try_from`.
const MAX_HEADERS: (i64, IntRange) = (100, IntRange::new(1, MAX_HEADERS_LIMIT as i64));
const MAX_BODY_BYTES: (i64, IntRange) = (1_048_576, IntRange::from(0));
const MAX_CHUNK_EXTENSION_BYTES: (i64, IntRange) = (4096, IntRange::new(0, 65_536));
const MAX_TRAILER_BYTES: (i64, IntRange) = (8192, IntRange::new(0, 1_048_576));
const OUTPUT_BUFFER_BYTES: (i64, IntRange) = (65_536, IntRange::new(4096, 16_777_216));
// Apache's mod_reqtimeout default (`MinRate=500`): long proven not to cut off real clients.
const MIN_BODY_BYTES_PER_SECOND: (i64, IntRange) = (500, IntRange::new(0, 1 << 30));
const TIMEOUT_HEAD: Duration = Duration::from_secs(10);
const TIMEOUT_BODY: Duration = Duration::from_secs(30);
const TIMEOUT_IDLE: Duration = Duration::from_secs(60);
const TIMEOUT_WRITE: Duration = Duration::from_secs(30);
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// How validation turns an upstream server's host name and port into addresses.
pub type Resolver = fn(&str, u16) -> std::io::Result<Vec<std::net::SocketAddr>>;

/// The system resolver (`/etc/hosts`, then DNS): what the daemon and `--check` use.
pub fn system_resolver(host: &str, port: u16) -> std::io::Result<Vec<std::net::SocketAddr>> {
    std::net::ToSocketAddrs::to_socket_addrs(&(host, port)).map(Iterator::collect)
}

/// A resolver that asks nobody: `localhost` is 127.0.0.1 and ::1, every other name fails.
/// For tests and fuzzing, which must send nothing to a name server.
pub fn loopback_resolver(host: &str, port: u16) -> std::io::Result<Vec<std::net::SocketAddr>> {
    if host.eq_ignore_ascii_case("localhost") {
        let v4 = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port));
        let v6 = std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
        return Ok(vec![v4, v6]);
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "not looked up (this resolver knows localhost only)",
    ))
}

/// Check `raw` (parsed from `text`, the contents of `file_name`) and build the runtime `Config`,
/// or return every problem found (the deserializer's and the semantic ones together), sorted
/// into file order. Upstream host names go to the system resolver.
pub fn validate(raw: &RawConfig, text: &str, file_name: &str) -> Result<Config, ConfigErrors> {
    validate_with(raw, text, file_name, system_resolver)
}

/// [`validate`] with upstream host names resolved by `resolve`.
pub fn validate_with(
    raw: &RawConfig,
    text: &str,
    file_name: &str,
    resolve: Resolver,
) -> Result<Config, ConfigErrors> {
    let mut v = Validator {
        text,
        file: file_name,
        errors: raw.removed.clone(),
        upstream_names: None,
        resolve,
    };
    let server = v
        .parsed(&raw.server)
        .map(|s| (v.server(s), v.server_lifecycle(s)));
    let limits = v.parsed(&raw.limits).map(|l| v.limits(l));
    let timeouts = v.parsed(&raw.timeouts).map(|t| v.timeouts(t));
    let log = v.parsed(&raw.log).map(|l| v.log(l));
    let access_log = v.parsed(&raw.access_log).map(|a| v.access_log(a));
    let admin = v.parsed(&raw.admin).map(|a| v.admin(a));
    // The server-wide body limit bounds every route's; unknown if it is itself wrong, and then
    // not checked against (one error, not one per route).
    let server_body_limit = server_body_limit(raw);
    let defaults = v
        .parsed(&raw.defaults)
        .map(|d| v.defaults(d, server_body_limit));
    // A `[defaults]` that failed is reported; the routes are still checked, without it.
    let defaults = defaults.unwrap_or_else(|| route::Defaults {
        max_body_bytes: route::default_body_limit(server_body_limit),
        headers: Vec::new(),
    });
    // `server.via` is every upstream's unless it names its own (a `[server]` that failed to
    // deserialize is reported above; its upstreams are checked with the default).
    let via = match &raw.server {
        Ok(server) => v.via(&server.via, "server.via", Some(upstream::DEFAULT_VIA)),
        Err(_) => Some(upstream::DEFAULT_VIA.to_owned()),
    };
    // Before the routes, so that a proxy route's `upstream` can be checked against the names.
    let upstreams = v
        .parsed(&raw.upstreams)
        .map(|u| v.upstreams(u, via.as_deref()));
    let routes = v
        .parsed(&raw.routes)
        .map(|r| v.routes(r, &defaults, server_body_limit));

    match (
        server, limits, timeouts, log, access_log, admin, routes, upstreams,
    ) {
        (
            Some(server),
            Some(limits),
            Some(timeouts),
            Some(log),
            Some(access_log),
            Some(admin),
            Some(routes),
            Some(upstreams),
        ) if v.errors.is_empty() => {
            let (server, lifecycle) = server;
            Ok(Config {
                listen: server.listen,
                workers: resolve_workers(server.workers),
                max_connections: server.max_connections,
                max_requests_per_connection: server.max_requests_per_connection,
                defer_accept: server.defer_accept,
                limits,
                timeouts,
                routes,
                upstreams,
                shutdown_timeout: lifecycle.shutdown_timeout,
                pidfile: lifecycle.pidfile,
                user: lifecycle.user,
                group: lifecycle.group,
                log,
                access_log,
                admin,
            })
        }
        // A `None` above always comes with its error (see `parsed`), so this is never empty.
        _ => {
            // Sections are checked in a fixed order, but the operator reads the file top to
            // bottom. The sort is stable, so two problems at one spot keep their check order.
            let mut errors = v.errors;
            // A key removed for its wrong type is reported once, as that, not also as missing.
            errors.retain(|e| !is_consequence_of_wrong_type(e, &raw.wrong_type));
            errors.sort_by_key(|e| (e.line, e.column));
            Err(ConfigErrors(errors))
        }
    }
}

/// The `[server]` keys that are not about the process's lifecycle, checked.
struct ServerKeys {
    listen: Vec<SocketAddr>,
    /// As written (0: one per CPU, resolved later).
    workers: usize,
    max_connections: usize,
    max_requests_per_connection: u64,
    defer_accept: bool,
}

/// Whether `e` only says that a key is missing when it was there with a wrong type (and
/// removed, so validation saw it absent). `path`/`exact`: either one removed explains `NoPath`.
fn is_consequence_of_wrong_type(e: &ConfigError, wrong_type: &[String]) -> bool {
    let removed = |key: &str| wrong_type.iter().any(|w| w == key);
    match &e.kind {
        ConfigErrorKind::Missing | ConfigErrorKind::RequiredWhen { .. } => removed(&e.key),
        ConfigErrorKind::NoPath => {
            let prefix = e.key.strip_suffix(".path").unwrap_or(&e.key);
            removed(&e.key) || removed(&format!("{prefix}.exact"))
        }
        _ => false,
    }
}

/// `limits.max_body_bytes` if the section deserialized and the value is in range (`None`
/// when it is of the wrong type: the default is not what the operator meant either).
fn server_body_limit(raw: &RawConfig) -> Option<u64> {
    let Ok(limits) = &raw.limits else {
        return None;
    };
    if raw.wrong_type.iter().any(|k| k == "limits.max_body_bytes") {
        return None;
    }
    let value = match limits.max_body_bytes.as_ref().map(Spanned::get_ref) {
        None => MAX_BODY_BYTES.0,
        Some(RawSize::Int(value)) => *value,
        Some(RawSize::Text(text)) => size::parse_size(text).ok()?,
    };
    u64::try_from(value).ok()
}

/// `workers = 0` means one per CPU. If the OS cannot tell us, one worker is the safe answer.
fn resolve_workers(workers: usize) -> usize {
    if workers != 0 {
        return workers;
    }
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

struct Validator<'a> {
    text: &'a str,
    file: &'a str,
    errors: Vec<ConfigError>,
    /// The names of every `[[upstream]]`, once they are all known (each upstream
    /// deserialized and validly named); `None` before, or when some are not, and then a
    /// proxy route's `upstream` is not checked against them (the cause is reported already).
    upstream_names: Option<Vec<String>>,
    /// Turns an upstream server's host name into addresses.
    resolve: Resolver,
}

impl Validator<'_> {
    fn error(&mut self, offset: usize, key: impl Into<String>, kind: ConfigErrorKind) {
        let e = ConfigError::at(self.text, self.file, offset, key, kind);
        self.errors.push(e);
    }

    /// A section's value to check, or `None` (its deserializer error recorded) if it has none.
    fn parsed<'r, T>(&mut self, section: &'r Section<T>) -> Option<&'r T> {
        match section {
            Ok(value) => Some(value),
            Err(e) => {
                self.errors.push(e.clone());
                None
            }
        }
    }

    fn line_of(&self, offset: usize) -> usize {
        line_column(self.text, offset).0
    }

    /// An integer key: default when absent; checked against `range` and converted to the
    /// runtime type. On error the default is returned so checking can go on (the caller never
    /// sees it: any error means no `Config`).
    fn int<T: TryFrom<i64> + Default>(
        &mut self,
        field: &Option<Spanned<i64>>,
        key: &str,
        (default, range): (i64, IntRange),
    ) -> T {
        let (value, offset) = match field {
            Some(f) => (*f.get_ref(), f.span().start),
            None => (default, 0),
        };
        // try_from can only fail for a value outside `range` on a narrow target (usize on a
        // 32-bit machine), which is out of range for that machine, so report it the same way.
        match T::try_from(value) {
            Ok(t) if range.contains(value) => t,
            _ => {
                self.error(offset, key, ConfigErrorKind::OutOfRange { value, range });
                T::default()
            }
        }
    }

    /// A byte-size key (`1048576`, `"10M"`, see `size.rs`): like `int`, the text parsed first.
    fn size<T: TryFrom<i64> + Default>(
        &mut self,
        field: &Option<Spanned<RawSize>>,
        key: &str,
        (default, range): (i64, IntRange),
    ) -> T {
        let Some(field) = field else {
            return self.int(&None, key, (default, range));
        };
        let offset = field.span().start;
        match field.get_ref() {
            RawSize::Int(value) => self.int(
                &Some(Spanned::new(field.span(), *value)),
                key,
                (default, range),
            ),
            RawSize::Text(text) => match size::parse_size(text) {
                Ok(bytes) => match T::try_from(bytes) {
                    Ok(t) if range.contains(bytes) => t,
                    _ => {
                        let value = text.as_str().into();
                        self.error(
                            offset,
                            key,
                            ConfigErrorKind::SizeOutOfRange {
                                value,
                                bytes,
                                range,
                            },
                        );
                        T::default()
                    }
                },
                Err(e) => {
                    let kind = ConfigErrorKind::InvalidSize {
                        value: text.clone(),
                        reason: e.reason(),
                    };
                    self.error(offset, key, kind);
                    T::default()
                }
            },
        }
    }

    fn server(&mut self, raw: &RawServer) -> ServerKeys {
        ServerKeys {
            listen: self.listen(raw),
            workers: self.int(&raw.workers, "server.workers", WORKERS),
            max_connections: self.int(
                &raw.max_connections,
                "server.max_connections",
                MAX_CONNECTIONS,
            ),
            max_requests_per_connection: self.int(
                &raw.max_requests_per_connection,
                "server.max_requests_per_connection",
                MAX_REQUESTS_PER_CONNECTION,
            ),
            defer_accept: raw.defer_accept.as_ref().is_none_or(|v| *v.get_ref()),
        }
    }

    fn listen(&mut self, raw: &RawServer) -> Vec<SocketAddr> {
        let Some(list) = &raw.listen else {
            return vec![DEFAULT_LISTEN];
        };
        if list.get_ref().is_empty() {
            let kind = ConfigErrorKind::NoListenAddress;
            self.error(list.span().start, "server.listen", kind);
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut seen: HashMap<SocketAddr, usize> = HashMap::new();
        for (i, item) in list.get_ref().iter().enumerate() {
            let key = format!("server.listen[{i}]");
            let offset = item.span().start;
            // SocketAddr::from_str is exactly "ip:port" / "[ipv6]:port": no host names, which
            // is what we want (no DNS at startup, no ambiguity about which address is bound).
            match item.get_ref().parse::<SocketAddr>() {
                Ok(addr) => {
                    if let Some(&first) = seen.get(&addr) {
                        let kind = ConfigErrorKind::DuplicateAddress {
                            value: addr.to_string(),
                            first_line: self.line_of(first),
                        };
                        self.error(offset, key, kind);
                    } else {
                        seen.insert(addr, offset);
                        out.push(addr);
                    }
                }
                Err(_) => {
                    let value = item.get_ref().clone();
                    self.error(offset, key, ConfigErrorKind::InvalidAddress { value });
                }
            }
        }
        out
    }

    fn limits(&mut self, raw: &RawLimits) -> Limits {
        Limits {
            max_head_bytes: self.size(&raw.max_head_bytes, "limits.max_head_bytes", MAX_HEAD_BYTES),
            max_headers: self.int(&raw.max_headers, "limits.max_headers", MAX_HEADERS),
            max_body_bytes: self.size(&raw.max_body_bytes, "limits.max_body_bytes", MAX_BODY_BYTES),
            max_chunk_extension_bytes: self.size(
                &raw.max_chunk_extension_bytes,
                "limits.max_chunk_extension_bytes",
                MAX_CHUNK_EXTENSION_BYTES,
            ),
            max_trailer_bytes: self.size(
                &raw.max_trailer_bytes,
                "limits.max_trailer_bytes",
                MAX_TRAILER_BYTES,
            ),
            output_buffer_bytes: self.size(
                &raw.output_buffer_bytes,
                "limits.output_buffer_bytes",
                OUTPUT_BUFFER_BYTES,
            ),
            min_body_bytes_per_second: self.size(
                &raw.min_body_bytes_per_second,
                "limits.min_body_bytes_per_second",
                MIN_BODY_BYTES_PER_SECOND,
            ),
        }
    }

    fn timeouts(&mut self, raw: &RawTimeouts) -> Timeouts {
        Timeouts {
            head: self.duration(&raw.head, "timeouts.head", TIMEOUT_HEAD),
            body: self.duration(&raw.body, "timeouts.body", TIMEOUT_BODY),
            idle: self.duration(&raw.idle, "timeouts.idle", TIMEOUT_IDLE),
            write: self.duration(&raw.write, "timeouts.write", TIMEOUT_WRITE),
        }
    }

    fn duration(
        &mut self,
        field: &Option<Spanned<String>>,
        key: &str,
        default: Duration,
    ) -> Duration {
        let Some(field) = field else {
            return default;
        };
        let value = field.get_ref();
        let offset = field.span().start;
        match humantime::parse_duration(value) {
            Ok(d) if !d.is_zero() && d <= MAX_TIMEOUT => d,
            Ok(_) => {
                let kind = ConfigErrorKind::DurationOutOfRange {
                    value: value.clone(),
                };
                self.error(offset, key, kind);
                default
            }
            Err(e) => {
                let kind = ConfigErrorKind::InvalidDuration {
                    value: value.clone(),
                    reason: e.to_string(),
                };
                self.error(offset, key, kind);
                default
            }
        }
    }
}

#[cfg(test)]
mod tests;
