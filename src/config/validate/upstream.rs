//! Validation of `[[upstream]]` (a named group of servers: names, addresses, balancing,
//! timeouts, connection reuse and passive health) and of a proxy route's own keys (`upstream`,
//! `proxy_host`).
//!
//! Resolving a server's host name is validation's one network-adjacent step: the name goes to
//! the validator's `Resolver` (for the daemon `system_resolver`: `std::net::ToSocketAddrs`,
//! which reads /etc/hosts or asks the system's name server, and opens no connection; tests and
//! fuzzing use `loopback_resolver`, which asks nobody). Each address the name gives becomes one server (same weight and limit), so the
//! runtime sees IP addresses only; a name that does not resolve is an error, like a static
//! root that does not exist. IP literals and `unix:` paths are taken as written, without
//! asking anyone.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::super::model::{RawRoute, RawUpstream, RawUpstreamServer, Section};
use super::super::{
    Balance, ConfigErrorKind, HandlerSpec, NextUpstream, ProxyHost, ServerSettings,
    UpstreamAddress, UpstreamSettings,
};
use super::route::host_name;
use super::{IntRange, Validator};

const WEIGHT: (i64, IntRange) = (1, IntRange::new(1, 1000));
const SERVER_MAX_CONNECTIONS: (i64, IntRange) = (0, IntRange::new(0, 1_000_000));
const MAX_IDLE: (i64, IntRange) = (32, IntRange::new(0, 10_000));
const MAX_FAILS: (i64, IntRange) = (3, IntRange::new(0, 1000));
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const READ_TIMEOUT: Duration = Duration::from_secs(60);
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const FAIL_TIMEOUT: Duration = Duration::from_secs(10);
const BALANCES: &str = "round_robin, least_connections";
const NEXT_UPSTREAM: &str = "connect, error, timeout, non_idempotent";
const NEXT_UPSTREAM_TRIES: (i64, IntRange) = (0, IntRange::new(0, 100));
const UNIX_PREFIX: &str = "unix:";
/// `sun_path` holds 108 bytes, the terminating NUL included.
const MAX_UNIX_PATH_BYTES: usize = 107;
const MAX_PROXY_HOST_BYTES: usize = 255;
/// The `Via` pseudonym when neither `server.via` nor an upstream's `via` names one.
pub(super) const DEFAULT_VIA: &str = "asycamore";
const MAX_VIA_BYTES: usize = 64;
const MISSING_PORT: &str = "missing port (write \"host:port\", \"[ipv6]:port\" or \"unix:/path\")";

/// A server address as written, before any name is resolved.
#[derive(Debug, PartialEq, Eq)]
enum Written<'a> {
    /// An IP literal with its port, or a Unix socket: final as it is.
    Final(UpstreamAddress),
    /// A host name and port, to resolve.
    Name(&'a str, u16),
}

impl Validator<'_> {
    /// Every `[[upstream]]`, in file order; records their names for the proxy routes. `via`
    /// is the pseudonym of a group that names none (`server.via`, checked).
    pub(super) fn upstreams(
        &mut self,
        raw: &[Section<Spanned<RawUpstream>>],
        via: Option<&str>,
    ) -> Vec<UpstreamSettings> {
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut all_named = true;
        let mut out = Vec::new();
        for (i, upstream) in raw.iter().enumerate() {
            let Some(upstream) = self.parsed(upstream) else {
                all_named = false;
                continue;
            };
            let at = upstream.span().start;
            let raw = upstream.get_ref();
            let prefix = format!("upstream[{i}]");
            let key = |name: &str| format!("{prefix}.{name}");
            let name = self.unique_name(
                (&prefix, at),
                raw.name.as_ref(),
                &mut names,
                |value| ConfigErrorKind::InvalidUpstreamName { value },
                |name, first_line| ConfigErrorKind::DuplicateUpstreamName { name, first_line },
            );
            // Known: a valid name (given twice, it is still known); unknown: a missing or an
            // invalid one.
            all_named &= raw
                .name
                .as_ref()
                .is_some_and(|n| names.contains_key(n.get_ref()));
            let servers = self.servers(&prefix, at, raw.servers.as_ref());
            let balance = match self.choice(&raw.balance, &key("balance"), BALANCES) {
                Some("least_connections") => Balance::LeastConnections,
                _ => Balance::RoundRobin,
            };
            let mut timeout =
                |field, name: &str, default| self.duration(field, &key(name), default);
            let connect_timeout = timeout(&raw.connect_timeout, "connect_timeout", CONNECT_TIMEOUT);
            let read_timeout = timeout(&raw.read_timeout, "read_timeout", READ_TIMEOUT);
            let write_timeout = timeout(&raw.write_timeout, "write_timeout", WRITE_TIMEOUT);
            let idle_timeout = timeout(&raw.idle_timeout, "idle_timeout", IDLE_TIMEOUT);
            let fail_timeout = timeout(&raw.fail_timeout, "fail_timeout", FAIL_TIMEOUT);
            let max_idle = self.int(&raw.max_idle, &key("max_idle"), MAX_IDLE);
            let max_fails = self.int(&raw.max_fails, &key("max_fails"), MAX_FAILS);
            let via = self.via(&raw.via, &key("via"), via);
            let next_upstream =
                self.next_upstream(raw.next_upstream.as_ref(), &key("next_upstream"));
            let next_upstream_tries = self.int(
                &raw.next_upstream_tries,
                &key("next_upstream_tries"),
                NEXT_UPSTREAM_TRIES,
            );
            if let (Some(name), Some(servers)) = (name, servers) {
                out.push(UpstreamSettings {
                    name,
                    servers,
                    balance,
                    connect_timeout,
                    read_timeout,
                    write_timeout,
                    idle_timeout,
                    max_idle,
                    max_fails,
                    fail_timeout,
                    next_upstream,
                    next_upstream_tries,
                    via,
                });
            }
        }
        if all_named {
            let mut known: Vec<(String, usize)> = names.into_iter().collect();
            known.sort_by_key(|(_, offset)| *offset);
            self.upstream_names = Some(known.into_iter().map(|(name, _)| name).collect());
        }
        out
    }

    /// `next_upstream`: a list of conditions, each at most once; `[]` retries nothing.
    fn next_upstream(
        &mut self,
        list: Option<&Spanned<Vec<Spanned<String>>>>,
        key: &str,
    ) -> NextUpstream {
        let Some(list) = list else {
            return NextUpstream::default();
        };
        let mut out = NextUpstream {
            connect: false,
            error: false,
            timeout: false,
            non_idempotent: false,
        };
        for (i, item) in list.get_ref().iter().enumerate() {
            let value = item.get_ref();
            let flag = match value.as_str() {
                "connect" => &mut out.connect,
                "error" => &mut out.error,
                "timeout" => &mut out.timeout,
                "non_idempotent" => &mut out.non_idempotent,
                _ => {
                    let kind = ConfigErrorKind::InvalidChoice {
                        value: value.clone(),
                        allowed: NEXT_UPSTREAM,
                    };
                    self.error(item.span().start, format!("{key}[{i}]"), kind);
                    continue;
                }
            };
            if *flag {
                let kind = ConfigErrorKind::DuplicateNextUpstream {
                    value: value.clone(),
                };
                self.error(item.span().start, format!("{key}[{i}]"), kind);
            }
            *flag = true;
        }
        out
    }

    /// A `via` pseudonym: an RFC 9110 token of at most 64 bytes (RFC 9110 7.6.3), or `""`
    /// for none; `default` when the key is absent (or wrong: the error is recorded).
    pub(super) fn via(
        &mut self,
        field: &Option<Spanned<String>>,
        key: &str,
        default: Option<&str>,
    ) -> Option<String> {
        let Some(field) = field else {
            return default.map(str::to_owned);
        };
        let value = field.get_ref();
        let token = value.len() <= MAX_VIA_BYTES
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            let kind = ConfigErrorKind::InvalidVia {
                value: value.clone(),
            };
            self.error(field.span().start, key, kind);
            return default.map(str::to_owned);
        }
        (!value.is_empty()).then(|| value.clone())
    }

    /// `servers`: at least one, each address resolved, no address twice.
    fn servers(
        &mut self,
        prefix: &str,
        at: usize,
        list: Option<&Spanned<Vec<Spanned<RawUpstreamServer>>>>,
    ) -> Option<Vec<ServerSettings>> {
        let key = format!("{prefix}.servers");
        let Some(list) = list else {
            self.error(at, key, ConfigErrorKind::Missing);
            return None;
        };
        if list.get_ref().is_empty() {
            self.error(list.span().start, key, ConfigErrorKind::NoServers);
            return None;
        }
        let before = self.errors.len();
        // Each address, as resolved, and where the entry that gave it first is.
        let mut seen: HashMap<UpstreamAddress, usize> = HashMap::new();
        let mut out = Vec::new();
        for (j, server) in list.get_ref().iter().enumerate() {
            let key = format!("{key}[{j}]");
            let raw = server.get_ref();
            let weight = self.int(&raw.weight, &format!("{key}.weight"), WEIGHT);
            let max_connections = self.int(
                &raw.max_connections,
                &format!("{key}.max_connections"),
                SERVER_MAX_CONNECTIONS,
            );
            let key = format!("{key}.address");
            let Some(field) = &raw.address else {
                self.error(server.span().start, key, ConfigErrorKind::Missing);
                continue;
            };
            let offset = field.span().start;
            for address in self.server_address(&key, field) {
                match seen.get(&address) {
                    // A name may give one address twice (two lines in /etc/hosts): once is
                    // enough, and the operator wrote it once.
                    Some(&first) if first == offset => continue,
                    Some(&first) => {
                        let kind = ConfigErrorKind::DuplicateServer {
                            value: address.to_string(),
                            first_line: self.line_of(first),
                        };
                        self.error(offset, key.as_str(), kind);
                        break;
                    }
                    None => {}
                }
                seen.insert(address.clone(), offset);
                out.push(ServerSettings {
                    address,
                    weight,
                    max_connections,
                });
            }
        }
        (self.errors.len() == before).then_some(out)
    }

    /// One `address`: every address it stands for (none, the error recorded, if it is wrong).
    fn server_address(&mut self, key: &str, field: &Spanned<String>) -> Vec<UpstreamAddress> {
        let (value, offset) = (field.get_ref(), field.span().start);
        let kind = match written_address(value) {
            Ok(Written::Final(address)) => return vec![address],
            Ok(Written::Name(host, port)) => match (self.resolve)(host, port) {
                Ok(found) => {
                    let found: Vec<_> = found.into_iter().map(UpstreamAddress::Tcp).collect();
                    if !found.is_empty() {
                        return found;
                    }
                    ConfigErrorKind::UnresolvableAddress {
                        value: value.clone(),
                        error: "the name has no address".into(),
                    }
                }
                Err(e) => ConfigErrorKind::UnresolvableAddress {
                    value: value.clone(),
                    error: e.to_string().into(),
                },
            },
            Err(reason) => ConfigErrorKind::InvalidServerAddress {
                value: value.clone(),
                reason,
            },
        };
        self.error(offset, key, kind);
        Vec::new()
    }

    /// A proxy route: the upstream it names, and the `Host` it sends.
    pub(super) fn proxy(&mut self, prefix: &str, at: usize, raw: &RawRoute) -> Option<HandlerSpec> {
        let key = format!("{prefix}.upstream");
        let upstream = match &raw.upstream {
            None => {
                self.error(at, key, ConfigErrorKind::Missing);
                None
            }
            Some(field) => {
                let name = field.get_ref();
                match &self.upstream_names {
                    Some(known) if !known.contains(name) => {
                        let kind = ConfigErrorKind::UnknownUpstream {
                            name: name.clone(),
                            known: known.clone(),
                        };
                        self.error(field.span().start, key, kind);
                        None
                    }
                    _ => Some(name.clone()),
                }
            }
        };
        let host = match &raw.proxy_host {
            None => Some(ProxyHost::Keep),
            Some(field) => match field.get_ref().as_str() {
                "keep" => Some(ProxyHost::Keep),
                "upstream" => Some(ProxyHost::Upstream),
                literal => match literal_host_problem(literal) {
                    None => Some(ProxyHost::Literal(literal.to_owned())),
                    Some(reason) => {
                        let kind = ConfigErrorKind::InvalidHost {
                            value: literal.to_owned(),
                            reason,
                        };
                        self.error(field.span().start, format!("{prefix}.proxy_host"), kind);
                        None
                    }
                },
            },
        };
        Some(HandlerSpec::Proxy {
            upstream: upstream?,
            host: host?,
        })
    }
}

/// What `value` says, without resolving anything: `unix:/path` (absolute, at most 107 bytes,
/// naming a file), an IP literal with a port (`127.0.0.1:9000`, `[::1]:9000`), or a host name
/// with a port.
fn written_address(value: &str) -> Result<Written<'_>, &'static str> {
    if let Some(path) = value.strip_prefix(UNIX_PREFIX) {
        let path = Path::new(path);
        return if !path.is_absolute() {
            Err("the path after \"unix:\" must be absolute")
        } else if path.as_os_str().len() > MAX_UNIX_PATH_BYTES {
            Err("a Unix socket path is at most 107 bytes long")
        } else if path.file_name().is_none() {
            Err("the path after \"unix:\" must name a file")
        } else {
            Ok(Written::Final(UpstreamAddress::Unix(PathBuf::from(path))))
        };
    }
    if value.contains("://") {
        return Err("no scheme: write \"host:port\", not a URL");
    }
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (inside, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address is written \"[address]:port\"")?;
        let port = after.strip_prefix(':').ok_or(MISSING_PORT)?;
        let ip = inside
            .parse::<Ipv6Addr>()
            .map_err(|_| "not an IPv6 address between '[' and ']'")?;
        (Ok(IpAddr::V6(ip)), port)
    } else {
        let (host, port) = value.rsplit_once(':').ok_or(MISSING_PORT)?;
        if host.contains(':') {
            return Err("an IPv6 address is written \"[address]:port\"");
        }
        (host.parse::<IpAddr>().map_err(|_| host), port)
    };
    let port = match port.parse::<u16>() {
        Ok(port) if port != 0 => port,
        _ if port.is_empty() => return Err(MISSING_PORT),
        _ => return Err("the port must be a number from 1 to 65535"),
    };
    match host {
        Ok(ip) => Ok(Written::Final(UpstreamAddress::Tcp(SocketAddr::new(
            ip, port,
        )))),
        Err("") => Err("missing host before the port"),
        Err(name) => {
            host_name(&name.to_ascii_lowercase())?;
            Ok(Written::Name(name, port))
        }
    }
}

/// Why `value` cannot be sent as a `Host`, if it cannot: a literal `proxy_host` is one token of
/// visible ASCII, no '/', at most 255 bytes.
fn literal_host_problem(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        Some("must not be empty (\"keep\", \"upstream\" or a host)")
    } else if value.len() > MAX_PROXY_HOST_BYTES {
        Some("longer than 255 bytes")
    } else if !value.bytes().all(|b| b.is_ascii_graphic()) {
        Some("visible ASCII only, no spaces or control characters")
    } else if value.contains('/') {
        Some("must not contain '/'")
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
