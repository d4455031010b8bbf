//! Validation of `[defaults]` and of each `[[route]]`'s name, match (host, path or exact,
//! methods), body limit and headers, and of the route table as a whole (unique names, no two
//! routes with the same match). The handler's own settings are `handler.rs`'s.
//!
//! Like the rest of `validate`, this must never stop at the first problem: every check runs
//! and reports, and a route with any problem is left out of the result (which is then never
//! used, since an error means no `Config`).

use std::collections::HashMap;
use std::net::Ipv6Addr;

use toml::Spanned;

use super::super::model::{RawDefaults, RawHeaders, RawList, RawRoute, RawSize, Section};
use super::super::{
    ConfigErrorKind, HandlerSpec, HostPattern, PathPattern, RouteSpec, key_segment,
};
use super::{IntRange, MAX_BODY_BYTES, Validator};
use crate::http1::encode::{is_valid_header_name, is_valid_header_value};

const MAX_NAME: usize = 64;
/// Headers whose value only the server can know (framing, connection management, clock);
/// letting a route set them would produce contradictory or duplicated framing on the wire.
const RESERVED_HEADERS: [&str; 4] = ["Content-Length", "Transfer-Encoding", "Connection", "Date"];
const BODY_LIMIT: (i64, IntRange) = (0, MAX_BODY_BYTES.1);

/// The body limit of a route when neither it nor `[defaults]` sets one: 1 MiB, or
/// `limits.max_body_bytes` when that is lower. Not `limits.max_body_bytes` itself: raising the
/// server-wide ceiling (for one upload route) must not raise every other route's limit with it.
pub(super) fn default_body_limit(server_limit: Option<u64>) -> u64 {
    let default = u64::try_from(MAX_BODY_BYTES.0).unwrap_or(u64::MAX);
    server_limit.map_or(default, |limit| limit.min(default))
}

/// `[defaults]`, validated: what a route gets for the keys it leaves out.
pub(super) struct Defaults {
    pub max_body_bytes: u64,
    pub headers: Vec<(String, String)>,
}

/// A route's match as validated, kept to find a later route with the same one.
struct SeenMatch {
    host: HostPattern,
    path: PathPattern,
    methods: Vec<String>,
    /// The route's name, or `route[i]` if it has no valid one.
    label: String,
    /// Where its `path` / `exact` value is.
    offset: usize,
}

impl Validator<'_> {
    pub(super) fn defaults(&mut self, raw: &RawDefaults, server_limit: Option<u64>) -> Defaults {
        let max_body_bytes = self
            .body_limit(&raw.max_body_bytes, "defaults.max_body_bytes", server_limit)
            .unwrap_or_else(|| default_body_limit(server_limit));
        let headers = self.headers("defaults", raw.headers.as_ref());
        Defaults {
            max_body_bytes,
            headers,
        }
    }

    /// A `max_body_bytes` key: `None` when absent or wrong (wrong is reported).
    fn body_limit(
        &mut self,
        field: &Option<Spanned<RawSize>>,
        key: &str,
        server_limit: Option<u64>,
    ) -> Option<u64> {
        let field = field.as_ref()?;
        let before = self.errors.len();
        let value: u64 = self.size(&Some(field.clone()), key, BODY_LIMIT);
        if self.errors.len() != before {
            return None;
        }
        if let Some(limit) = server_limit.filter(|&limit| value > limit) {
            let value = match field.get_ref() {
                RawSize::Int(value) => value.to_string(),
                RawSize::Text(text) => format!("{text:?} ({value} bytes)"),
            };
            let kind = ConfigErrorKind::BodyLimitAboveServer { value, limit };
            self.error(field.span().start, key, kind);
            return None;
        }
        Some(value)
    }

    /// Every route that deserialized; one that did not is reported and left out, and cannot
    /// clash with the others (its name and match were never read).
    pub(super) fn routes(
        &mut self,
        raw: &[Section<Spanned<RawRoute>>],
        defaults: &Defaults,
        server_limit: Option<u64>,
    ) -> Vec<RouteSpec> {
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut seen: Vec<SeenMatch> = Vec::new();
        let mut out = Vec::new();
        for (i, route) in raw.iter().enumerate() {
            let Some(route) = self.parsed(route) else {
                continue;
            };
            let at = route.span().start;
            let raw = route.get_ref();
            let prefix = format!("route[{i}]");
            let name = self.unique_name(
                (&prefix, at),
                raw.name.as_ref(),
                &mut names,
                |value| ConfigErrorKind::InvalidRouteName { value },
                |name, first_line| ConfigErrorKind::DuplicateRouteName { name, first_line },
            );
            let host = self.host(&prefix, raw.host.as_ref());
            let path = self.route_path(&prefix, at, raw);
            let methods = self.methods(&prefix, raw.methods.as_ref());
            if let (Some(host), Some((path, offset, key)), Some(methods)) = (&host, &path, &methods)
            {
                let label = name.clone().unwrap_or_else(|| prefix.clone());
                let this = SeenMatch {
                    host: host.clone(),
                    path: path.clone(),
                    methods: methods.clone(),
                    label,
                    offset: *offset,
                };
                self.duplicate_match(&this, &seen, key);
                seen.push(this);
            }
            let max_body_bytes = self
                .body_limit(
                    &raw.max_body_bytes,
                    &format!("{prefix}.max_body_bytes"),
                    server_limit,
                )
                .unwrap_or(defaults.max_body_bytes);
            let headers = self.headers(&prefix, raw.headers.as_ref());
            let mut headers = merge_headers(&defaults.headers, headers);
            let path = path.map(|(path, _, _)| path);
            let handler = self.handler(&prefix, at, raw);
            if let Some(handler) = &handler {
                // A header the handler writes itself would go out twice: an error in the
                // route's own table, and quietly left out of what [defaults] adds.
                let owned = handler_owned_headers(handler);
                for name in raw.headers.iter().flat_map(|map| map.keys()) {
                    if owned.iter().any(|o| o.eq_ignore_ascii_case(name.get_ref())) {
                        let key = format!("{prefix}.headers.{}", key_segment(name.get_ref()));
                        let kind = ConfigErrorKind::HandlerHeader {
                            name: name.get_ref().clone(),
                            handler: handler_name(handler),
                        };
                        self.error(name.span().start, key.as_str(), kind);
                    }
                }
                headers.retain(|(name, _)| !owned.iter().any(|o| o.eq_ignore_ascii_case(name)));
            }
            if let (Some(name), Some(host), Some(path), Some(methods), Some(handler)) =
                (name, host, path, methods, handler)
            {
                out.push(RouteSpec {
                    name,
                    host,
                    path,
                    methods,
                    max_body_bytes,
                    headers,
                    handler,
                });
            }
        }
        out
    }

    fn duplicate_match(&mut self, this: &SeenMatch, seen: &[SeenMatch], key: &str) {
        // Overlapping: both take any method, or both list a common one. A route listing
        // methods next to one without a list is fine: the listed methods go to the first.
        let clash = seen.iter().find(|other| {
            other.host == this.host
                && other.path == this.path
                && ((other.methods.is_empty() && this.methods.is_empty())
                    || !common_methods(other, this).is_empty())
        });
        let Some(other) = clash else {
            return;
        };
        let methods = match common_methods(other, this).as_slice() {
            [] => "methods".to_owned(),
            [one] => format!("method {one}"),
            several => format!("methods {}", several.join(", ")),
        };
        let kind = ConfigErrorKind::DuplicateMatch {
            other: other.label.clone(),
            other_line: self.line_of(other.offset),
            methods: methods.into(),
        };
        self.error(this.offset, key, kind);
    }

    /// A route's or an upstream's `name`: present, `[A-Za-z0-9_.-]{1,64}`, and not taken by
    /// an earlier one in `names` (name to offset), where it is recorded. `invalid` and
    /// `duplicate` make the error of the section's kind.
    pub(super) fn unique_name(
        &mut self,
        (prefix, at): (&str, usize),
        name: Option<&Spanned<String>>,
        names: &mut HashMap<String, usize>,
        invalid: fn(String) -> ConfigErrorKind,
        duplicate: fn(String, usize) -> ConfigErrorKind,
    ) -> Option<String> {
        let key = format!("{prefix}.name");
        let Some(name) = name else {
            self.error(at, key, ConfigErrorKind::Missing);
            return None;
        };
        let (value, offset) = (name.get_ref(), name.span().start);
        if !valid_name(value) {
            self.error(offset, key, invalid(value.clone()));
            return None;
        }
        if let Some(&first) = names.get(value) {
            let kind = duplicate(value.clone(), self.line_of(first));
            self.error(offset, key, kind);
            return None;
        }
        names.insert(value.clone(), offset);
        Some(value.clone())
    }

    /// `host`: absent or `*` is any host; `*.domain` a wildcard; else one host name or IP.
    fn host(&mut self, prefix: &str, field: Option<&Spanned<String>>) -> Option<HostPattern> {
        let Some(field) = field else {
            return Some(HostPattern::Any);
        };
        let value = field.get_ref();
        let lower = value.to_ascii_lowercase();
        let result = if lower == "*" {
            Ok(HostPattern::Any)
        } else if let Some(domain) = lower.strip_prefix("*.") {
            host_name(domain).map(|()| HostPattern::Wildcard(domain.to_owned()))
        } else if lower.contains('*') {
            Err("'*' is allowed only as \"*\" (any host) or as \"*.\" before a domain")
        } else if let Some(inner) = lower.strip_prefix('[') {
            match inner.strip_suffix(']').map(str::parse::<Ipv6Addr>) {
                Some(Ok(_)) => Ok(HostPattern::Exact(lower.clone())),
                _ => Err("an IPv6 address is written \"[address]\", without a port"),
            }
        } else {
            host_name(&lower).map(|()| HostPattern::Exact(lower.clone()))
        };
        match result {
            Ok(host) => Some(host),
            Err(reason) => {
                let kind = ConfigErrorKind::InvalidHost {
                    value: value.clone(),
                    reason,
                };
                self.error(field.span().start, format!("{prefix}.host"), kind);
                None
            }
        }
    }

    /// `path` or `exact`: the pattern, where its value is, and its key.
    fn route_path(
        &mut self,
        prefix: &str,
        at: usize,
        raw: &RawRoute,
    ) -> Option<(PathPattern, usize, String)> {
        let (field, key, exact) = match (&raw.path, &raw.exact) {
            (Some(_), Some(exact)) => {
                let key = format!("{prefix}.exact");
                self.error(exact.span().start, key, ConfigErrorKind::PathAndExact);
                return None;
            }
            (None, None) => {
                self.error(at, format!("{prefix}.path"), ConfigErrorKind::NoPath);
                return None;
            }
            (Some(path), None) => (path, format!("{prefix}.path"), false),
            (None, Some(exact)) => (exact, format!("{prefix}.exact"), true),
        };
        let (value, offset) = (field.get_ref(), field.span().start);
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
        let pattern = if exact {
            PathPattern::Exact(value.clone())
        } else {
            // Prefix matching is on segment boundaries, so "/a" and "/a/" route identically:
            // keep one spelling, and treat the two as the same match.
            PathPattern::Prefix(match value.trim_end_matches('/') {
                "" => "/".to_owned(),
                trimmed => trimmed.to_owned(),
            })
        };
        Some((pattern, offset, key))
    }

    /// `methods`: absent is any (empty); tokens, upper-cased, no duplicates.
    fn methods(&mut self, prefix: &str, list: Option<&RawList>) -> Option<Vec<String>> {
        let Some(list) = list else {
            return Some(Vec::new());
        };
        let key = format!("{prefix}.methods");
        if list.get_ref().is_empty() {
            self.error(list.span().start, key, ConfigErrorKind::NoMethods);
            return None;
        }
        let before = self.errors.len();
        let mut out: Vec<String> = Vec::new();
        for (i, item) in list.get_ref().iter().enumerate() {
            let value = item.get_ref();
            let upper = value.to_ascii_uppercase();
            let kind = if !is_valid_header_name(value.as_bytes()) {
                ConfigErrorKind::InvalidMethod {
                    value: value.clone(),
                }
            } else if out.contains(&upper) {
                ConfigErrorKind::DuplicateMethod {
                    value: value.clone(),
                }
            } else {
                out.push(upper);
                continue;
            };
            self.error(item.span().start, format!("{key}[{i}]"), kind);
        }
        (self.errors.len() == before).then_some(out)
    }

    /// A `headers` table under `prefix` (`defaults` or `route[i]`), in file order.
    pub(super) fn headers(
        &mut self,
        prefix: &str,
        map: Option<&RawHeaders>,
    ) -> Vec<(String, String)> {
        let Some(map) = map else {
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

/// The methods both routes list, in `a`'s order.
fn common_methods<'a>(a: &'a SeenMatch, b: &SeenMatch) -> Vec<&'a str> {
    a.methods
        .iter()
        .filter(|m| b.methods.contains(m))
        .map(String::as_str)
        .collect()
}

/// `[defaults]` headers the route does not set (case-insensitively), then the route's own.
fn merge_headers(
    defaults: &[(String, String)],
    own: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut merged: Vec<(String, String)> = defaults
        .iter()
        .filter(|(name, _)| !own.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)))
        .cloned()
        .collect();
    merged.extend(own);
    merged
}

/// A route or upstream name: `[A-Za-z0-9_.-]{1,64}`. Names become metrics labels and log
/// fields: keep them to a charset that needs no quoting anywhere.
pub(super) fn valid_name(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_NAME
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// A DNS name or IPv4 address, lower-cased: dot-separated labels of letters, digits, '-' and
/// '_', each 1 to 63 bytes, at most 253 in all.
pub(super) fn host_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("must not be empty (leave `host` out, or write \"*\", for any host)");
    }
    if name.contains(':') {
        return Err("must not have a port (a request's port is ignored)");
    }
    if name.len() > 253 {
        return Err("longer than 253 bytes");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label (a dot at either end, or two in a row)");
        }
        if label.len() > 63 {
            return Err("a label is longer than 63 bytes");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("letters, digits, '-', '_' and '.' only");
        }
    }
    Ok(())
}

/// The response headers a handler writes itself, which a route may not add again.
fn handler_owned_headers(handler: &HandlerSpec) -> &'static [&'static str] {
    match handler {
        // The proxy relays the upstream's headers and adds none of its own.
        HandlerSpec::Respond { .. } | HandlerSpec::Echo | HandlerSpec::Proxy { .. } => &[],
        HandlerSpec::Static { .. } => &["ETag", "Last-Modified", "Content-Range", "Accept-Ranges"],
        HandlerSpec::Upload { .. } => &["Location", "Content-Type"],
        HandlerSpec::Redirect { .. } => &["Location"],
    }
}

fn handler_name(handler: &HandlerSpec) -> &'static str {
    match handler {
        HandlerSpec::Respond { .. } => "respond",
        HandlerSpec::Echo => "echo",
        HandlerSpec::Static { .. } => "static",
        HandlerSpec::Upload { .. } => "upload",
        HandlerSpec::Redirect { .. } => "redirect",
        HandlerSpec::Proxy { .. } => "proxy",
    }
}
