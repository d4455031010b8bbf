//! The route table: an immutable value mapping a request's host, path and method to a handler.
//!
//! A table is built once (from config, or by library code) and then only read, so a reload
//! can publish a new one in one step while requests that started under the old one finish
//! with it. The table is itself a [`Handler`]: it lowers the request body limit to the
//! route's, then passes the request to the route's handler; it answers 404 when no route
//! matches the host and path, and 405 with `Allow` when routes match but none takes the method.
//! `OPTIONS *` asks about the server as a whole (RFC 9110 9.3.7): the table answers it
//! itself, 200 with the methods its routes take in `Allow`.
//!
//! Precedence (independent of the order routes are given in):
//! 1. host: an exact host beats wildcards (the longest suffix first) beat any-host routes; a
//!    host tier is chosen only if one of its routes matches the path, else the next is tried;
//! 2. path: an exact path beats prefixes; among prefixes the longest wins;
//! 3. method: among routes with the same host pattern and path match, one listing the
//!    method beats one without a method list.
//!
//! Lookup must never allocate: every comparison is on borrowed `&str`, the sort is done once
//! in [`RouteTable::new`], and the `Allow` values are built there too.

use std::cmp::Reverse;
use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;

use crate::service::{BodyKind, Handler, Request, ResponseWriter, Start};

/// Which request hosts a route serves. Hosts are compared ASCII case-insensitively, without
/// the request's port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// Any host, or none (a request without `Host`).
    Any,
    /// Exactly this host (`example.com`, `[::1]`).
    Exact(String),
    /// Strictly below this domain: `Wildcard("example.com")` is written `*.example.com` and
    /// matches `a.example.com` and `a.b.example.com`, not `example.com`.
    Wildcard(String),
}

impl HostPattern {
    /// Whether a request for `host` (as [`Request::host`] gives it) is served.
    pub fn matches(&self, host: Option<&str>) -> bool {
        let host = host.map(|h| h.strip_suffix('.').unwrap_or(h));
        match (self, host) {
            (HostPattern::Any, _) => true,
            (_, None) => false,
            (HostPattern::Exact(want), Some(host)) => host.eq_ignore_ascii_case(want),
            (HostPattern::Wildcard(domain), Some(host)) => {
                // "x." + domain at least: one more label, and a dot on the boundary.
                let Some(cut) = host.len().checked_sub(domain.len() + 1) else {
                    return false;
                };
                cut > 0
                    && host.as_bytes()[cut] == b'.'
                    && host.is_char_boundary(cut + 1)
                    && host[cut + 1..].eq_ignore_ascii_case(domain)
            }
        }
    }

    /// Tier order: exact, then wildcards by longest domain, then any.
    fn rank(&self) -> (u8, Reverse<usize>) {
        match self {
            HostPattern::Exact(_) => (0, Reverse(0)),
            HostPattern::Wildcard(domain) => (1, Reverse(domain.len())),
            HostPattern::Any => (2, Reverse(0)),
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Any => f.write_str("*"),
            HostPattern::Exact(host) => f.write_str(host),
            HostPattern::Wildcard(domain) => write!(f, "*.{domain}"),
        }
    }
}

/// Which request paths a route serves (compared byte for byte, before any decoding).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathPattern {
    /// This path only.
    Exact(String),
    /// This path and everything below it on segment boundaries: `/a` matches `/a`, `/a/`
    /// and `/a/b`, not `/ab`.
    Prefix(String),
}

impl PathPattern {
    /// The path as configured (the `prefix` handlers strip).
    pub fn as_str(&self) -> &str {
        match self {
            PathPattern::Exact(path) | PathPattern::Prefix(path) => path,
        }
    }

    /// Whether a request for `path` is served.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathPattern::Exact(want) => path == want,
            PathPattern::Prefix(prefix) => match path.strip_prefix(prefix.as_str()) {
                Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
                None => false,
            },
        }
    }

    /// Specificity order: exact paths first, then longer prefixes.
    fn rank(&self) -> (u8, Reverse<usize>) {
        match self {
            PathPattern::Exact(_) => (0, Reverse(0)),
            PathPattern::Prefix(prefix) => (1, Reverse(prefix.len())),
        }
    }
}

/// One route.
#[derive(Debug)]
pub struct Route<H> {
    /// The route's name (unique; a bounded label for logs and metrics).
    pub name: String,
    /// The hosts served.
    pub host: HostPattern,
    /// The paths served.
    pub path: PathPattern,
    /// The methods served, exact tokens (methods are case-sensitive); empty = any method.
    pub methods: Vec<String>,
    /// The largest request body accepted (the server's own limit still applies).
    pub max_body_bytes: u64,
    /// What serves the route.
    pub handler: H,
}

impl<H> Route<H> {
    /// A route for any host and method, for everything at or below `prefix`, with no body
    /// limit of its own.
    pub fn prefix(name: impl Into<String>, prefix: impl Into<String>, handler: H) -> Self {
        Route {
            name: name.into(),
            host: HostPattern::Any,
            path: PathPattern::Prefix(prefix.into()),
            methods: Vec::new(),
            max_body_bytes: u64::MAX,
            handler,
        }
    }

    fn allows(&self, method: &str) -> bool {
        self.methods.is_empty() || self.methods.iter().any(|m| m == method)
    }
}

/// Routes with the same host pattern and path match: one is chosen by method.
#[derive(Debug)]
struct Group {
    /// Indices into `RouteTable::routes`: method-listing routes first, then method-less ones.
    routes: Range<usize>,
    /// The `Allow` value when no route of the group takes the method (sorted, no duplicates).
    allow: String,
}

/// What `locate` found: a position in the table rather than a reference.
enum Located<'a> {
    Found(usize),
    MethodNotAllowed(&'a str),
    NotFound,
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup<'a, H> {
    /// The route serving the request.
    Found(&'a Route<H>),
    /// Routes match the host and path, but none takes the method: answer 405 with this `Allow`.
    MethodNotAllowed(&'a str),
    /// Nothing matches the host and path: answer 404.
    NotFound,
}

/// The routes of one configuration generation.
#[derive(Debug)]
pub struct RouteTable<H> {
    /// In precedence order; each group's routes are contiguous.
    routes: Vec<Route<H>>,
    groups: Vec<Group>,
    generation: u64,
    /// Whether any route names a host: if none does, a request's host is never looked at
    /// (the common single-site table skips finding and parsing it per request).
    uses_host: bool,
    /// The `Allow` value of the answer to `OPTIONS *`, built at its first use (building it
    /// asks the handlers, which `new` does not require to be handlers).
    options_allow: OnceLock<String>,
}

/// What `OPTIONS *` lists for a route that takes any method: the methods of RFC 9110 and
/// RFC 5789 the server can serve. CONNECT (no tunnels) and TRACE (never answered as such)
/// are left out.
const ANY_METHOD: &[&str] = &["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"];

impl<H> RouteTable<H> {
    /// A table for `routes` (in any order) at config `generation`. Routes that tie on
    /// everything (which validated config never has) keep their given order, the first one
    /// winning.
    pub fn new(mut routes: Vec<Route<H>>, generation: u64) -> Self {
        // Stable sort, so ties keep the caller's order. The host and path strings are in the
        // key only to make equal patterns adjacent (one group); within a group, routes with a
        // method list come before those without.
        routes.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));

        let mut groups = Vec::new();
        let mut start = 0;
        while start < routes.len() {
            let first = &routes[start];
            let len = routes[start..]
                .iter()
                .take_while(|r| r.host == first.host && r.path == first.path)
                .count();
            let end = start + len;
            let mut allow: Vec<&str> = routes[start..end]
                .iter()
                .flat_map(|r| r.methods.iter().map(String::as_str))
                .collect();
            allow.sort_unstable();
            allow.dedup();
            groups.push(Group {
                routes: start..end,
                allow: allow.join(", "),
            });
            start = end;
        }
        let uses_host = routes.iter().any(|r| r.host != HostPattern::Any);
        RouteTable {
            routes,
            groups,
            generation,
            uses_host,
            options_allow: OnceLock::new(),
        }
    }

    /// The config generation this table was built from.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The routes, in precedence order (the order lookup tries them in).
    pub fn routes(&self) -> &[Route<H>] {
        &self.routes
    }

    /// `request`'s host, when a route could care about it.
    fn host_of<'r>(&self, request: &Request<'r>) -> Option<&'r str> {
        if self.uses_host { request.host() } else { None }
    }

    /// The route for a request to `host` (as [`Request::host`] gives it), `path` and `method`.
    pub fn find(&self, host: Option<&str>, path: &str, method: &str) -> Lookup<'_, H> {
        match self.locate(host, path, method) {
            Located::Found(index) => Lookup::Found(&self.routes[index]),
            Located::MethodNotAllowed(allow) => Lookup::MethodNotAllowed(allow),
            Located::NotFound => Lookup::NotFound,
        }
    }

    /// Like [`find`](Self::find), with the route's position in the table.
    fn locate(&self, host: Option<&str>, path: &str, method: &str) -> Located<'_> {
        for group in &self.groups {
            let routes = &self.routes[group.routes.clone()];
            // Every route of a group has the same host and path pattern.
            let Some(first) = routes.first() else {
                continue;
            };
            if !first.host.matches(host) || !first.path.matches(path) {
                continue;
            }
            return match routes.iter().position(|r| r.allows(method)) {
                Some(at) => Located::Found(group.routes.start + at),
                None => Located::MethodNotAllowed(&group.allow),
            };
        }
        Located::NotFound
    }
}

type SortKey<'a> = (
    (u8, Reverse<usize>),
    &'a str,
    (u8, Reverse<usize>),
    &'a str,
    bool,
);

/// Precedence order, equal patterns adjacent.
fn sort_key<H>(route: &Route<H>) -> SortKey<'_> {
    (
        route.host.rank(),
        host_key(&route.host),
        route.path.rank(),
        route.path.as_str(),
        route.methods.is_empty(),
    )
}

/// The host string that makes equal patterns sort together.
fn host_key(host: &HostPattern) -> &str {
    match host {
        HostPattern::Any => "",
        HostPattern::Exact(h) | HostPattern::Wildcard(h) => h,
    }
}

impl<H: Handler> Handler for RouteTable<H> {
    type Exchange = H::Exchange;

    fn route_name(&self, request: &Request<'_>) -> &str {
        match self.find(self.host_of(request), request.path(), request.method) {
            Lookup::Found(route) => &route.name,
            Lookup::MethodNotAllowed(_) | Lookup::NotFound => "",
        }
    }

    fn route_name_at(&self, index: u32) -> &str {
        self.routes
            .get(index as usize)
            .map_or("", |route| route.name.as_str())
    }

    fn start(
        &self,
        request: &Request<'_>,
        response: &mut ResponseWriter<'_>,
    ) -> Start<Self::Exchange> {
        const TEXT: (&str, &[u8]) = ("Content-Type", b"text/plain; charset=utf-8");
        if request.path == "*" {
            // The server core lets `*` through only with OPTIONS.
            let allow = self.options_allow.get_or_init(|| self.allow_any_route());
            let _ = response.complete(200, &[("Allow", allow.as_bytes())], b"");
            return Start::Complete;
        }
        match self.locate(self.host_of(request), request.path(), request.method) {
            Located::Found(index) => {
                let route = &self.routes[index];
                response.set_route(index as u32);
                response.limit_body(route.max_body_bytes);
                if matches!(request.body, BodyKind::Length(len) if len > route.max_body_bytes) {
                    // The server answers 413 for a declared length over the limit; the
                    // handler need not start work (open files, say) it would undo at once.
                    return Start::Complete;
                }
                route.handler.start(request, response)
            }
            Located::MethodNotAllowed(allow) => {
                let headers = [("Allow", allow.as_bytes()), TEXT];
                let _ = response.complete(405, &headers, b"405 Method Not Allowed\n");
                Start::Complete
            }
            Located::NotFound => {
                let _ = response.complete(404, &[TEXT], b"404 Not Found\n");
                Start::Complete
            }
        }
    }
}

impl<H: Handler> RouteTable<H> {
    /// Every method some route takes, sorted, OPTIONS included (the table answers it).
    fn allow_any_route(&self) -> String {
        let mut methods: Vec<&str> = vec!["OPTIONS"];
        for route in &self.routes {
            match (route.methods.is_empty(), route.handler.methods()) {
                (false, _) => methods.extend(route.methods.iter().map(String::as_str)),
                (true, Some(taken)) => methods.extend_from_slice(taken),
                (true, None) => methods.extend_from_slice(ANY_METHOD),
            }
        }
        methods.sort_unstable();
        methods.dedup();
        methods.join(", ")
    }
}

#[cfg(test)]
mod tests;
