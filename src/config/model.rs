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
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::{ConfigError, ConfigErrorKind, ConfigErrors, key_segment, suggest};

mod upstream;

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

/// The text being parsed and its name, for locating errors, and the keys removed so far.
struct Source<'a> {
    text: &'a str,
    file: &'a str,
    /// One error per key removed: unknown, or of the wrong type.
    removed: Vec<ConfigError>,
    /// The dotted paths of the keys removed for a wrong type.
    wrong_type: Vec<String>,
}

impl<'i> Source<'_> {
    /// Deserialize one part of the document; `prefix` is its key path (`server`, `route[2]`)
    /// and `known` its struct's keys. Each other key is reported as `UnknownKey` and removed
    /// first, so that it does not stop serde (which would hide the part's other problems).
    fn section<T: Deserialize<'i>>(
        &mut self,
        mut value: Spanned<DeValue<'i>>,
        prefix: &str,
        known: &[&str],
    ) -> Section<T> {
        self.strip_unknown(&mut value, prefix, known);
        self.deserialize(value, prefix)
    }

    /// Report and remove every key of the table `value` that is not in `known`. Not a table:
    /// left as is, for deserializing to fail with the usual located wrong-type error.
    fn strip_unknown(&mut self, value: &mut Spanned<DeValue<'i>>, prefix: &str, known: &[&str]) {
        let DeValue::Table(table) = value.get_mut() else {
            return;
        };
        let (text, file) = (self.text, self.file);
        let mut unknown = Vec::new();
        for (key, _) in table.iter() {
            let name: &str = key.get_ref();
            if !known.contains(&name) {
                let kind = ConfigErrorKind::UnknownKey {
                    expected: known.iter().map(|k| (*k).to_owned()).collect(),
                    suggestion: suggest(name, known.iter().copied()),
                };
                let key_path = format!("{prefix}.{}", key_segment(name));
                unknown.push((
                    name.to_owned(),
                    located(text, file, Some(key.span()), key_path, kind),
                ));
            }
        }
        for (name, e) in unknown {
            table.remove(name.as_str());
            self.removed.push(e);
        }
    }

    /// Deserialize `value`, turning serde's failure into a located error. A key of the table
    /// whose value has the wrong type is reported, recorded in `wrong_type`, removed, and the
    /// rest deserialized again, so that one wrong type does not hide the part's other problems
    /// (each retry removes a key, so this ends). Only a failure no key of the table can be
    /// blamed for (the part itself is not a table) fails the part.
    fn deserialize<T: Deserialize<'i>>(
        &mut self,
        mut value: Spanned<DeValue<'i>>,
        prefix: &str,
    ) -> Section<T> {
        loop {
            let e = match serde_path_to_error::deserialize(ValueDeserializer::from(value.clone())) {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let top = top_key(e.path());
            let error = self.locate(e, prefix);
            // Nested rather than a let chain: rust-version is 1.85.
            if let (Some(top), DeValue::Table(table)) = (top, value.get_mut()) {
                if table.remove(top.as_str()).is_some() {
                    self.wrong_type
                        .push(format!("{prefix}.{}", key_segment(&top)));
                    self.removed.push(error);
                    continue;
                }
            }
            return Err(error);
        }
    }

    /// serde's failure, located, with the dotted key path an operator would write.
    fn locate(&self, e: serde_path_to_error::Error<toml::de::Error>, prefix: &str) -> ConfigError {
        let offset = e.inner().span().map(|s| s.start);
        let path = render_path(e.path(), self.text, offset);
        let key = if path.is_empty() {
            prefix.to_owned()
        } else if path.starts_with('[') {
            format!("{prefix}{path}")
        } else {
            format!("{prefix}.{path}")
        };
        let inner = e.into_inner();
        let (key, kind) = classify(key, inner.message());
        located(self.text, self.file, inner.span(), key, kind)
    }

    /// The `route` key: each array element on its own, so a bad route does not hide the next.
    fn routes(&mut self, value: Spanned<DeValue<'i>>) -> Section<Vec<Section<Spanned<RawRoute>>>> {
        self.tables(value, "route", |source, item, prefix| {
            source.strip_unknown(item, prefix, ROUTE_KEYS);
        })
    }

    /// An array of tables (`route`, `upstream`), each element deserialized on its own after
    /// `strip` removed its unknown keys, so a bad element does not hide the next.
    fn tables<T: Deserialize<'i>>(
        &mut self,
        value: Spanned<DeValue<'i>>,
        name: &str,
        mut strip: impl FnMut(&mut Self, &mut Spanned<DeValue<'i>>, &str),
    ) -> Section<Vec<Section<Spanned<T>>>> {
        let span = value.span();
        match value.into_inner() {
            DeValue::Array(items) => Ok(items
                .into_iter()
                .enumerate()
                .map(|(i, mut item)| {
                    let prefix = format!("{name}[{i}]");
                    strip(self, &mut item, &prefix);
                    self.deserialize(item, &prefix)
                })
                .collect()),
            // Not an array: deserializing it as one fails with the usual located wrong-type
            // error. Should serde ever accept it, its elements are as good as any.
            other => {
                let items: Vec<Spanned<T>> = self.deserialize(Spanned::new(span, other), name)?;
                Ok(items.into_iter().map(Ok).collect())
            }
        }
    }
}

fn located(
    text: &str,
    file_name: &str,
    span: Option<Range<usize>>,
    key: String,
    kind: ConfigErrorKind,
) -> ConfigError {
    // Without a span the best honest location is the top of the file.
    let offset = span.map_or(0, |s| s.start);
    ConfigError::at(text, file_name, offset, key, kind)
}

/// Render the serde path as the dotted key an operator would write. Two artefacts of
/// `toml::Spanned` are repaired here: its private wrapper field shows up as a path segment (dropped),
/// and a `Spanned<String>` map key cannot be captured by serde_path_to_error (it records `?`), so
/// that key is recovered from the document by the failing value's position.
fn render_path(path: &serde_path_to_error::Path, text: &str, offset: Option<usize>) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path {
        let part = match segment {
            Segment::Seq { index } => {
                out.push_str(&format!("[{index}]"));
                continue;
            }
            Segment::Map { key } if key.starts_with(SPANNED_PRIVATE_PREFIX) => continue,
            Segment::Map { key } | Segment::Enum { variant: key } => key_segment(key),
            Segment::Unknown => offset
                .and_then(|o| key_of_value_at(text, o))
                .map_or_else(|| "?".to_owned(), |k| key_segment(&k)),
        };
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&part);
    }
    out
}

/// The key of the deserialized table that a failure is inside: the path's first segment
/// besides `toml::Spanned`'s wrapper fields; `None` when the failure is the table itself.
fn top_key(path: &serde_path_to_error::Path) -> Option<String> {
    use serde_path_to_error::Segment;
    match path
        .iter()
        .find(|s| !matches!(s, Segment::Map { key } if key.starts_with(SPANNED_PRIVATE_PREFIX)))?
    {
        Segment::Map { key } => Some(key.clone()),
        _ => None,
    }
}

/// `toml::Spanned` deserializes through a struct whose value field has this name prefix.
const SPANNED_PRIVATE_PREFIX: &str = "$__serde_spanned_private";

/// The key whose value starts at byte `offset`, searching the whole document. Only used on the
/// error path, so re-parsing is fine; `None` if the text does not parse or nothing starts there.
fn key_of_value_at(text: &str, offset: usize) -> Option<String> {
    let root = toml::de::DeTable::parse(text).ok()?;
    find_in_table(root.get_ref(), offset)
}

fn find_in_table(table: &toml::de::DeTable<'_>, offset: usize) -> Option<String> {
    table.iter().find_map(|(k, v)| {
        if v.span().start == offset {
            Some(k.get_ref().to_string())
        } else {
            find_in_value(v.get_ref(), offset)
        }
    })
}

fn find_in_value(value: &toml::de::DeValue<'_>, offset: usize) -> Option<String> {
    match value {
        toml::de::DeValue::Table(t) => find_in_table(t, offset),
        toml::de::DeValue::Array(a) => a.iter().find_map(|v| find_in_value(v.get_ref(), offset)),
        _ => None,
    }
}

/// Map a serde/toml message onto a typed kind. serde's wording is part of its stable error
/// contract (`unknown_field`, `invalid_type`, ...); anything unrecognised is kept verbatim as a
/// syntax-level error rather than guessed at. The tests pin every recognised shape.
fn classify(key: String, message: &str) -> (String, ConfigErrorKind) {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, tail) = rest.split_once('`').unwrap_or((rest, ""));
        // serde_path_to_error normally records the bad key itself; if a future version stops
        // at the enclosing table instead, add it, so the key is always named exactly once.
        let segment = key_segment(field);
        let key = if key.is_empty() {
            segment
        } else if key == segment || key.ends_with(&format!(".{segment}")) {
            key
        } else {
            format!("{key}.{segment}")
        };
        let expected = backticked(tail);
        let suggestion = suggest(field, expected.iter().map(String::as_str));
        let kind = ConfigErrorKind::UnknownKey {
            expected,
            suggestion,
        };
        return (key, kind);
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        // The expected part comes from our own types, so it never contains ", expected ";
        // the found part may (it quotes the user's string), hence rsplit.
        if let Some((found, expected)) = rest.rsplit_once(", expected ") {
            // TOML integers may be written wider than our i64 fields; the value is fine as a
            // number, just too big, so say that instead of a confusing "integer, expected i64".
            if (expected == "i64" || expected == SIZE_EXPECTED) && found.starts_with("integer `") {
                let value = found.split('`').nth(1).unwrap_or(found).to_owned();
                return (key, ConfigErrorKind::IntegerTooLarge { value });
            }
            return (
                key,
                ConfigErrorKind::WrongType {
                    found: friendly_found(found).to_owned(),
                    expected: friendly_expected(expected).to_owned(),
                },
            );
        }
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        let key = if key.is_empty() {
            field.to_owned()
        } else {
            format!("{key}.{field}")
        };
        return (key, ConfigErrorKind::Missing);
    }
    (key, ConfigErrorKind::Syntax(one_line(message)))
}

/// The words serde's derive uses for our types, in TOML vocabulary for an operator.
fn friendly_expected(expected: &str) -> &str {
    if expected.starts_with("struct ") || expected == "a map" {
        "a table"
    } else if expected == "a sequence" {
        "an array"
    } else if expected == "i64" {
        "an integer"
    } else {
        expected
    }
}

/// serde's words for what it saw, in TOML vocabulary (scalars already read fine: `integer `5``).
fn friendly_found(found: &str) -> &str {
    match found {
        "map" => "a table",
        "sequence" => "an array",
        other => other,
    }
}

/// Extract the `quoted` names from serde's "expected one of `a`, `b`" tail.
fn backticked(s: &str) -> Vec<String> {
    s.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

/// One error per output line is the ConfigErrors contract; toml messages may span lines.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
