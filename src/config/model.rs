//! The on-disk shape of `asycamore.toml`: serde structs that mirror the file one-to-one, with
//! `toml::Spanned` on every leaf so `validate` can point at the exact line and column of a bad
//! value, and `parse`, which turns deserializer failures (syntax, wrong type, unknown key) into
//! located `ConfigError`s.
//!
//! This file must never judge values (ranges, formats, uniqueness, defaults): that is
//! `validate`'s job, so that every semantic problem is reported at once rather than the first one
//! serde trips over. Hence integers are `i64` (a negative count is an out-of-range value to
//! report, not a type error), durations and addresses are plain strings, and every key is
//! optional even when required, so a missing key becomes a located `Missing` error.
//!
//! For the same reason `parse` deserializes each top-level section, each `[[route]]` and each
//! `[[upstream]]` on its own: serde stops at the first problem, so one deserializer over the
//! whole file would hide every later section's problems behind the first unknown key or wrong
//! type. Unknown keys are not even left to serde: each section's keys are checked against its
//! struct's field list (`SERVER_KEYS` etc.) first, every stranger reported and removed, so a
//! typo does not hide the section's other problems either. Nor does a wrong type: the key serde
//! stopped at is reported and removed, and the rest deserialized again (`Source::deserialize`).
//!
//! Field docs live in `etc/asycamore.toml`, which documents every key; the fields here mirror
//! those keys one to one, so they are not documented twice.
#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeTable;

use super::{ConfigError, ConfigErrorKind, ConfigErrors, key_segment, suggest};

mod source;
mod upstream;

use source::{Source, located, one_line};
pub use upstream::{RawUpstream, RawUpstreamServer};

/// One part of the file as deserialized: its value, or the deserializer error that stopped it
/// (only a part that is not a table at all: unknown keys are removed beforehand, and a key of
/// the wrong type is removed when serde stops at it, both reported in `RawConfig::removed`).
/// `validate` reports the error and skips that part's semantic checks, since there is no value
/// to check; the other parts still are.
pub type Section<T> = Result<T, ConfigError>;

/// The whole file, section by section. An absent section is `Ok` with all defaults; only a
/// section that is present but does not deserialize is `Err`.
#[derive(Debug)]
pub struct RawConfig {
    pub server: Section<RawServer>,
    pub limits: Section<RawLimits>,
    pub timeouts: Section<RawTimeouts>,
    pub log: Section<RawLog>,
    pub access_log: Section<RawAccessLog>,
    pub admin: Section<RawAdmin>,
    pub defaults: Section<RawDefaults>,
    /// `[[route]]` tables, in file order (order matters: it is the router's tie-break). One
    /// entry per route, so a route that fails keeps the others' `route[i]` indices; the outer
    /// `Err` is a `route` key that is not an array at all.
    pub routes: Section<Vec<Section<Spanned<RawRoute>>>>,
    /// `[[upstream]]` tables, in file order, one entry each like `routes`.
    pub upstreams: Section<Vec<Section<Spanned<RawUpstream>>>>,
    /// One error per key removed so that its part could still be deserialized and checked:
    /// every unknown key (`UnknownKey`: top-level keys other than the sections above, and keys
    /// a section or route's struct does not have, removed before deserializing) and every key
    /// whose value has the wrong type (`WrongType` etc., removed when serde stopped at it).
    pub removed: Vec<ConfigError>,
    /// The dotted paths (`route[0].status`) of the keys removed for a wrong type: validation
    /// must not report them as missing too, nor judge other keys against their defaults.
    pub wrong_type: Vec<String>,
}

/// The top-level keys, in the order the `UnknownKey` message lists them.
const SECTIONS: [&str; 9] = [
    "server",
    "limits",
    "timeouts",
    "log",
    "access_log",
    "admin",
    "defaults",
    "route",
    "upstream",
];

/// The keys of each section's struct, in declaration order (the order the `UnknownKey`
/// message lists them). They must match the structs' serde fields exactly; a unit test checks.
const SERVER_KEYS: &[&str] = &[
    "listen",
    "workers",
    "max_connections",
    "max_requests_per_connection",
    "defer_accept",
    "shutdown_timeout",
    "pidfile",
    "user",
    "group",
    "via",
];
const LIMITS_KEYS: &[&str] = &[
    "max_head_bytes",
    "max_headers",
    "max_body_bytes",
    "max_chunk_extension_bytes",
    "max_trailer_bytes",
    "output_buffer_bytes",
    "min_body_bytes_per_second",
];
const TIMEOUTS_KEYS: &[&str] = &["head", "body", "idle", "write"];
const LOG_KEYS: &[&str] = &["level", "target", "file", "syslog_facility", "syslog_tag"];
const ACCESS_LOG_KEYS: &[&str] = &["enabled", "file", "format", "flush_interval"];
const ADMIN_KEYS: &[&str] = &[
    "enabled",
    "listen",
    "token",
    "token_file",
    "allow_public",
    "unix_socket",
    "metrics",
    "profile_max_seconds",
];
const DEFAULTS_KEYS: &[&str] = &["max_body_bytes", "headers"];
const ROUTE_KEYS: &[&str] = &[
    "name",
    "host",
    "path",
    "exact",
    "methods",
    "max_body_bytes",
    "headers",
    "handler",
    "status",
    "body",
    "root",
    "index",
    "listing",
    "follow_symlinks_outside_root",
    "dir",
    "fsync",
    "to",
    "keep_path",
    "keep_query",
    "upstream",
    "proxy_host",
];

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// The array itself is spanned too so that `listen = []` can be located.
    pub listen: Option<Spanned<Vec<Spanned<String>>>>,
    pub workers: Option<Spanned<i64>>,
    pub max_connections: Option<Spanned<i64>>,
    pub max_requests_per_connection: Option<Spanned<i64>>,
    pub defer_accept: Option<Spanned<bool>>,
    pub shutdown_timeout: Option<Spanned<String>>,
    pub pidfile: Option<Spanned<String>>,
    pub user: Option<Spanned<String>>,
    pub group: Option<Spanned<String>>,
    pub via: Option<Spanned<String>>,
}

/// `[limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_head_bytes: Option<Spanned<RawSize>>,
    pub max_headers: Option<Spanned<i64>>,
    pub max_body_bytes: Option<Spanned<RawSize>>,
    pub max_chunk_extension_bytes: Option<Spanned<RawSize>>,
    pub max_trailer_bytes: Option<Spanned<RawSize>>,
    pub output_buffer_bytes: Option<Spanned<RawSize>>,
    pub min_body_bytes_per_second: Option<Spanned<RawSize>>,
}

/// `[timeouts]`: humantime strings ("10s", "500ms"), parsed by `validate`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    pub head: Option<Spanned<String>>,
    pub body: Option<Spanned<String>>,
    pub idle: Option<Spanned<String>>,
    pub write: Option<Spanned<String>>,
}

/// `[log]`: the error log.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub level: Option<Spanned<String>>,
    pub target: Option<Spanned<String>>,
    pub file: Option<Spanned<String>>,
    pub syslog_facility: Option<Spanned<String>>,
    pub syslog_tag: Option<Spanned<String>>,
}

/// `[access_log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccessLog {
    pub enabled: Option<Spanned<bool>>,
    pub file: Option<Spanned<String>>,
    pub format: Option<Spanned<String>>,
    pub flush_interval: Option<Spanned<String>>,
}

/// `[admin]`: the admin listener.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub enabled: Option<Spanned<bool>>,
    pub listen: Option<Spanned<String>>,
    pub token: Option<Spanned<String>>,
    pub token_file: Option<Spanned<String>>,
    pub allow_public: Option<Spanned<bool>>,
    pub unix_socket: Option<Spanned<String>>,
    pub metrics: Option<Spanned<bool>>,
    pub profile_max_seconds: Option<Spanned<i64>>,
}

/// `[defaults]`: what every route gets unless it says otherwise.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub max_body_bytes: Option<Spanned<RawSize>>,
    pub headers: Option<RawHeaders>,
}

/// A byte size as written: an integer, or a string with a unit (`"10M"`, `"1GiB"`), read by
/// `validate` (which owns what the units mean). Any other TOML type is a wrong-type error
/// that names both forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawSize {
    Int(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for RawSize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RawSize;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(SIZE_EXPECTED)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawSize, E> {
                Ok(RawSize::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawSize, E> {
                i64::try_from(v)
                    .map(RawSize::Int)
                    .map_err(|_| E::invalid_type(serde::de::Unexpected::Unsigned(v), &"i64"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawSize, E> {
                Ok(RawSize::Text(v.to_owned()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// What a wrong-typed byte size was expected to be, in the error message.
pub(crate) const SIZE_EXPECTED: &str = "an integer or a size string like \"10M\"";

/// A `headers` table. A map loses file order; `validate` restores it from the key spans.
pub type RawHeaders = BTreeMap<Spanned<String>, Spanned<String>>;

/// A spanned array of spanned strings (the array's own span locates an empty one).
pub type RawList = Spanned<Vec<Spanned<String>>>;

/// One `[[route]]`: the match, the common settings, then every handler's settings (which
/// apply to which handler is checked by `validate`). `name`, `path`/`exact` and `handler` are
/// required, but optional here so that a missing one is a located validation error that does
/// not hide the route's other problems.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: Option<Spanned<String>>,
    pub host: Option<Spanned<String>>,
    pub path: Option<Spanned<String>>,
    pub exact: Option<Spanned<String>>,
    pub methods: Option<RawList>,
    pub max_body_bytes: Option<Spanned<RawSize>>,
    pub headers: Option<RawHeaders>,
    pub handler: Option<Spanned<String>>,
    // respond (status also redirect)
    pub status: Option<Spanned<i64>>,
    pub body: Option<Spanned<String>>,
    // static
    pub root: Option<Spanned<String>>,
    pub index: Option<RawList>,
    pub listing: Option<Spanned<bool>>,
    pub follow_symlinks_outside_root: Option<Spanned<bool>>,
    // upload
    pub dir: Option<Spanned<String>>,
    pub fsync: Option<Spanned<bool>>,
    // redirect
    pub to: Option<Spanned<String>>,
    pub keep_path: Option<Spanned<bool>>,
    pub keep_query: Option<Spanned<bool>>,
    // proxy
    pub upstream: Option<Spanned<String>>,
    pub proxy_host: Option<Spanned<String>>,
}

/// Parse `text` (the contents of `file_name`) into the raw model. A syntax error is the only
/// failure here, and it is reported alone: the document did not parse, so nothing after it can
/// be trusted. (`DeTable::parse_recoverable` can list several, but after the first its guesses
/// cascade into errors on lines that are fine, so one true error beats several doubtful ones.)
/// Everything else (unknown keys, wrong types) is collected per section into the `RawConfig`.
pub fn parse(text: &str, file_name: &str) -> Result<RawConfig, ConfigErrors> {
    let root = DeTable::parse(text).map_err(|e| {
        let kind = ConfigErrorKind::Syntax(one_line(e.message()));
        located(text, file_name, e.span(), String::new(), kind)
    })?;
    let mut raw = RawConfig {
        server: Ok(RawServer::default()),
        limits: Ok(RawLimits::default()),
        timeouts: Ok(RawTimeouts::default()),
        log: Ok(RawLog::default()),
        access_log: Ok(RawAccessLog::default()),
        admin: Ok(RawAdmin::default()),
        defaults: Ok(RawDefaults::default()),
        routes: Ok(Vec::new()),
        upstreams: Ok(Vec::new()),
        removed: Vec::new(),
        wrong_type: Vec::new(),
    };
    let mut source = Source {
        text,
        file: file_name,
        removed: Vec::new(),
        wrong_type: Vec::new(),
    };
    // Every span below is a byte range of `text` itself (the values were cut from this one
    // parse, not re-parsed on their own), so locations stay absolute.
    for (key, value) in root.into_inner() {
        match key.get_ref().as_ref() {
            "server" => raw.server = source.section(value, "server", SERVER_KEYS),
            "limits" => raw.limits = source.section(value, "limits", LIMITS_KEYS),
            "timeouts" => raw.timeouts = source.section(value, "timeouts", TIMEOUTS_KEYS),
            "log" => raw.log = source.section(value, "log", LOG_KEYS),
            "access_log" => raw.access_log = source.section(value, "access_log", ACCESS_LOG_KEYS),
            "admin" => raw.admin = source.section(value, "admin", ADMIN_KEYS),
            "defaults" => raw.defaults = source.section(value, "defaults", DEFAULTS_KEYS),
            "route" => raw.routes = source.routes(value),
            "upstream" => raw.upstreams = source.upstreams(value),
            other => {
                let kind = ConfigErrorKind::UnknownKey {
                    expected: SECTIONS.map(str::to_owned).to_vec(),
                    suggestion: suggest(other, SECTIONS),
                };
                let e = located(text, file_name, Some(key.span()), key_segment(other), kind);
                source.removed.push(e);
            }
        }
    }
    // In table order, not file order; `validate` sorts every error by position.
    raw.removed = source.removed;
    raw.wrong_type = source.wrong_type;
    Ok(raw)
}

#[cfg(test)]
mod tests;
