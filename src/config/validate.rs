//! Semantic validation: turns a parsed `RawConfig` into a runtime `Config`, applying defaults
//! and checking every range, format and cross-field rule, and reporting EVERY problem found (in
//! file order), each located by its value's span.
//!
//! A section (or route) that did not deserialize arrives as its located error: that error is
//! reported and the section's own checks are skipped, since there is no value to check; every
//! other section is still checked, so one bad section hides nothing else.
//!
//! This file must never stop at the first error, never parse TOML itself, and never return a
//! `Config` when anything was reported: a partially checked value would let the server trust
//! fields nobody checked.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use toml::Spanned;

use super::model::{RawConfig, RawLimits, RawRoute, RawServer, RawTimeouts, Section};
use super::{
    Config, ConfigError, ConfigErrorKind, ConfigErrors, HandlerSpec, IntRange, Limits, RouteSpec,
    Timeouts, key_segment, line_column,
};
use crate::http1::encode::{is_valid_header_name, is_valid_header_value};
use crate::http1::head::MAX_HEADERS_LIMIT;

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
const STATUS: (i64, IntRange) = (200, IntRange::new(200, 599));
const TIMEOUT_HEAD: Duration = Duration::from_secs(10);
const TIMEOUT_BODY: Duration = Duration::from_secs(30);
const TIMEOUT_IDLE: Duration = Duration::from_secs(60);
const TIMEOUT_WRITE: Duration = Duration::from_secs(30);
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
const MAX_ROUTE_NAME: usize = 64;
/// Headers whose value only the server can know (framing, connection management, clock);
/// letting a route set them would produce contradictory or duplicated framing on the wire.
const RESERVED_HEADERS: [&str; 4] = ["Content-Length", "Transfer-Encoding", "Connection", "Date"];

/// Check `raw` (parsed from `text`, the contents of `file_name`) and build the runtime `Config`,
/// or return every problem found (the deserializer's and the semantic ones together), sorted
/// into file order.
pub fn validate(raw: &RawConfig, text: &str, file_name: &str) -> Result<Config, ConfigErrors> {
    let mut v = Validator {
        text,
        file: file_name,
        errors: raw.unknown.clone(),
    };
    let server = v.parsed(&raw.server).map(|s| v.server(s));
    let limits = v.parsed(&raw.limits).map(|l| v.limits(l));
    let timeouts = v.parsed(&raw.timeouts).map(|t| v.timeouts(t));
    let routes = v.parsed(&raw.routes).map(|r| v.routes(r));

    match (server, limits, timeouts, routes) {
        (Some(server), Some(limits), Some(timeouts), Some(routes)) if v.errors.is_empty() => {
            let (listen, workers, max_connections, max_requests_per_connection) = server;
            Ok(Config {
                listen,
                workers: resolve_workers(workers),
                max_connections,
                max_requests_per_connection,
                limits,
                timeouts,
                routes,
            })
        }
        // A `None` above always comes with its error (see `parsed`), so this is never empty.
        _ => {
            // Sections are checked in a fixed order, but the operator reads the file top to
            // bottom. The sort is stable, so two problems at one spot keep their check order.
            let mut errors = v.errors;
            errors.sort_by_key(|e| (e.line, e.column));
            Err(ConfigErrors(errors))
        }
    }
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

    fn server(&mut self, raw: &RawServer) -> (Vec<SocketAddr>, usize, usize, u64) {
        let listen = self.listen(raw);
        let workers = self.int(&raw.workers, "server.workers", WORKERS);
        let max_connections = self.int(
            &raw.max_connections,
            "server.max_connections",
            MAX_CONNECTIONS,
        );
        let max_requests = self.int(
            &raw.max_requests_per_connection,
            "server.max_requests_per_connection",
            MAX_REQUESTS_PER_CONNECTION,
        );
        (listen, workers, max_connections, max_requests)
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
            max_head_bytes: self.int(&raw.max_head_bytes, "limits.max_head_bytes", MAX_HEAD_BYTES),
            max_headers: self.int(&raw.max_headers, "limits.max_headers", MAX_HEADERS),
            max_body_bytes: self.int(&raw.max_body_bytes, "limits.max_body_bytes", MAX_BODY_BYTES),
            max_chunk_extension_bytes: self.int(
                &raw.max_chunk_extension_bytes,
                "limits.max_chunk_extension_bytes",
                MAX_CHUNK_EXTENSION_BYTES,
            ),
            max_trailer_bytes: self.int(
                &raw.max_trailer_bytes,
                "limits.max_trailer_bytes",
                MAX_TRAILER_BYTES,
            ),
            output_buffer_bytes: self.int(
                &raw.output_buffer_bytes,
                "limits.output_buffer_bytes",
                OUTPUT_BUFFER_BYTES,
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

    /// Every route that deserialized; one that did not is reported and left out, and cannot
    /// clash with the others (its name and path were never read).
    fn routes(&mut self, raw: &[Section<Spanned<RawRoute>>]) -> Vec<RouteSpec> {
        // name / normalised path -> (as written, offset of first use), for duplicate reports.
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut paths: HashMap<String, (String, usize)> = HashMap::new();
        let mut out = Vec::new();
        for (i, route) in raw.iter().enumerate() {
            let Some(route) = self.parsed(route) else {
                continue;
            };
            let at = route.span().start;
            if let Some(spec) = self.route(i, at, route.get_ref(), &mut names, &mut paths) {
                out.push(spec);
            }
        }
        out
    }

    /// One route; `at` is where its table starts (where a missing key is reported).
    fn route(
        &mut self,
        i: usize,
        at: usize,
        raw: &RawRoute,
        names: &mut HashMap<String, usize>,
        paths: &mut HashMap<String, (String, usize)>,
    ) -> Option<RouteSpec> {
        let prefix = format!("route[{i}]");
        let name = self.route_name(&prefix, at, raw.name.as_ref(), names);
        let path = self.route_path(&prefix, at, raw.path.as_ref(), paths);
        let handler = self.handler(&prefix, at, raw);
        let headers = self.headers(&prefix, raw);
        Some(RouteSpec {
            name: name?,
            path: path?,
            headers,
            handler: handler?,
        })
    }

    fn route_name(
        &mut self,
        prefix: &str,
        at: usize,
        name: Option<&Spanned<String>>,
        names: &mut HashMap<String, usize>,
    ) -> Option<String> {
        let key = format!("{prefix}.name");
        let Some(name) = name else {
            self.error(at, key, ConfigErrorKind::Missing);
            return None;
        };
        let (value, offset) = (name.get_ref(), name.span().start);
        // Names become metrics labels and log fields: keep them to a charset that needs no
        // quoting anywhere.
        let valid = !value.is_empty()
            && value.len() <= MAX_ROUTE_NAME
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !valid {
            let kind = ConfigErrorKind::InvalidRouteName {
                value: value.clone(),
            };
            self.error(offset, key, kind);
            return None;
        }
        if let Some(&first) = names.get(value) {
            let kind = ConfigErrorKind::DuplicateRouteName {
                name: value.clone(),
                first_line: self.line_of(first),
            };
            self.error(offset, key, kind);
            return None;
        }
        names.insert(value.clone(), offset);
        Some(value.clone())
    }

    fn route_path(
        &mut self,
        prefix: &str,
        at: usize,
        path: Option<&Spanned<String>>,
        paths: &mut HashMap<String, (String, usize)>,
    ) -> Option<String> {
        let key = format!("{prefix}.path");
        let Some(path) = path else {
            self.error(at, key, ConfigErrorKind::Missing);
            return None;
        };
        let (value, offset) = (path.get_ref(), path.span().start);
        let reason = if !value.starts_with('/') {
            Some("must start with '/'")
        } else if value.contains('?') {
            Some("must not contain '?' (routes match the path only, never the query)")
        } else if value.contains('#') {
            Some("must not contain '#' (fragments never reach the server)")
        } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some("must not contain whitespace or control characters")
        } else {
            None
        };
        if let Some(reason) = reason {
            let kind = ConfigErrorKind::InvalidPath {
                value: value.clone(),
                reason,
            };
            self.error(offset, key, kind);
            return None;
        }
        // Prefix matching is on segment boundaries, so "/a" and "/a/" route identically: keep
        // one spelling, and treat the two as the same path for uniqueness.
        let normal = match value.trim_end_matches('/') {
            "" => "/".to_owned(),
            trimmed => trimmed.to_owned(),
        };
        if let Some((other, first)) = paths.get(&normal) {
            let kind = ConfigErrorKind::DuplicatePath {
                path: value.clone(),
                other: other.clone(),
                first_line: self.line_of(*first),
            };
            self.error(offset, key, kind);
            return None;
        }
        paths.insert(normal.clone(), (value.clone(), offset));
        Some(normal)
    }

    fn handler(&mut self, prefix: &str, at: usize, raw: &RawRoute) -> Option<HandlerSpec> {
        let key = format!("{prefix}.handler");
        let Some(handler) = &raw.handler else {
            self.error(at, key, ConfigErrorKind::Missing);
            // Still range-check status so that fixing one error does not reveal another.
            let _: u16 = self.int(&raw.status, &format!("{prefix}.status"), STATUS);
            return None;
        };
        match handler.get_ref().as_str() {
            "respond" => {
                let status: u16 = self.int(&raw.status, &format!("{prefix}.status"), STATUS);
                let body = raw.body.as_ref();
                // RFC 9110: 204 and 304 responses never carry content; the server would have to
                // drop the body silently, so say so now instead.
                if let Some(b) = body.filter(|b| !b.get_ref().is_empty()) {
                    if status == 204 || status == 304 {
                        let kind = ConfigErrorKind::BodyNotAllowed { status };
                        self.error(b.span().start, format!("{prefix}.body"), kind);
                    }
                }
                Some(HandlerSpec::Respond {
                    status,
                    body: body.map(|b| b.get_ref().clone()).unwrap_or_default(),
                })
            }
            "echo" => {
                let extra = [
                    ("status", raw.status.as_ref().map(|s| s.span().start)),
                    ("body", raw.body.as_ref().map(|s| s.span().start)),
                ];
                for (name, offset) in extra {
                    if let Some(offset) = offset {
                        let kind = ConfigErrorKind::NotForHandler {
                            key: name,
                            handler: "echo".to_owned(),
                        };
                        self.error(offset, format!("{prefix}.{name}"), kind);
                    }
                }
                Some(HandlerSpec::Echo)
            }
            other => {
                let kind = ConfigErrorKind::UnknownHandler {
                    value: other.to_owned(),
                };
                self.error(handler.span().start, key, kind);
                let _: u16 = self.int(&raw.status, &format!("{prefix}.status"), STATUS);
                None
            }
        }
    }

    fn headers(&mut self, prefix: &str, raw: &RawRoute) -> Vec<(String, String)> {
        let Some(map) = &raw.headers else {
            return Vec::new();
        };
        // The map is sorted by name; the operator wrote them in file order, and that is the
        // order they should go on the wire.
        let mut entries: Vec<_> = map.iter().collect();
        entries.sort_by_key(|(name, _)| name.span().start);

        let mut out: Vec<(String, String)> = Vec::new();
        for (name, value) in entries {
            let (n, v) = (name.get_ref(), value.get_ref());
            let key = format!("{prefix}.headers.{}", key_segment(n));
            let before = self.errors.len();
            if !is_valid_header_name(n.as_bytes()) {
                let kind = ConfigErrorKind::InvalidHeaderName { name: n.clone() };
                self.error(name.span().start, key.as_str(), kind);
            } else if RESERVED_HEADERS.iter().any(|r| r.eq_ignore_ascii_case(n)) {
                let kind = ConfigErrorKind::ReservedHeader { name: n.clone() };
                self.error(name.span().start, key.as_str(), kind);
            } else if let Some((first, _)) = out.iter().find(|(f, _)| f.eq_ignore_ascii_case(n)) {
                let kind = ConfigErrorKind::DuplicateHeader {
                    name: n.clone(),
                    first: first.clone(),
                };
                self.error(name.span().start, key.as_str(), kind);
            }
            if !is_valid_header_value(v.as_bytes()) {
                let kind = ConfigErrorKind::InvalidHeaderValue { value: v.clone() };
                self.error(value.span().start, key.as_str(), kind);
            }
            if self.errors.len() == before {
                out.push((n.clone(), v.clone()));
            }
        }
        out
    }
}
