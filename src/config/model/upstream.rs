//! The on-disk shape of `[[upstream]]`: a named group of servers, each server an inline table
//! of its own (`servers = [{ address = "127.0.0.1:9000", weight = 2 }, ...]`).
//!
//! Like the rest of `model`, this judges no value: a server's keys are checked against
//! `UPSTREAM_SERVER_KEYS` before deserializing, each stranger reported and removed, exactly as
//! the upstream's own keys are against `UPSTREAM_KEYS`.

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::{Section, Source};

/// The keys of `RawUpstream`, in declaration order (a unit test checks).
pub(super) const UPSTREAM_KEYS: &[&str] = &[
    "name",
    "servers",
    "balance",
    "connect_timeout",
    "read_timeout",
    "write_timeout",
    "idle_timeout",
    "max_idle",
    "max_fails",
    "fail_timeout",
    "via",
    "next_upstream",
    "next_upstream_tries",
];
/// The keys of `RawUpstreamServer`, in declaration order (a unit test checks).
pub(super) const UPSTREAM_SERVER_KEYS: &[&str] = &["address", "weight", "max_connections"];

/// One `[[upstream]]`. `name` and `servers` are required, optional here so that a missing one
/// is a located validation error; durations are humantime strings, parsed by `validate`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub name: Option<Spanned<String>>,
    /// The array itself is spanned too so that `servers = []` can be located.
    pub servers: Option<Spanned<Vec<Spanned<RawUpstreamServer>>>>,
    pub balance: Option<Spanned<String>>,
    pub connect_timeout: Option<Spanned<String>>,
    pub read_timeout: Option<Spanned<String>>,
    pub write_timeout: Option<Spanned<String>>,
    pub idle_timeout: Option<Spanned<String>>,
    pub max_idle: Option<Spanned<i64>>,
    pub max_fails: Option<Spanned<i64>>,
    pub fail_timeout: Option<Spanned<String>>,
    pub via: Option<Spanned<String>>,
    pub next_upstream: Option<Spanned<Vec<Spanned<String>>>>,
    pub next_upstream_tries: Option<Spanned<i64>>,
}

/// One entry of an upstream's `servers`. `address` is required (spanned table: a missing one
/// is reported at the entry's `{`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstreamServer {
    pub address: Option<Spanned<String>>,
    pub weight: Option<Spanned<i64>>,
    pub max_connections: Option<Spanned<i64>>,
}

impl<'i> Source<'_> {
    /// The `upstream` key: each array element on its own, its unknown keys and those of each
    /// of its servers (`upstream[0].servers[1].adress`) reported and removed first.
    pub(super) fn upstreams(
        &mut self,
        value: Spanned<DeValue<'i>>,
    ) -> Section<Vec<Section<Spanned<RawUpstream>>>> {
        self.tables(value, "upstream", |source, item, prefix| {
            source.strip_unknown(item, prefix, UPSTREAM_KEYS);
            let DeValue::Table(table) = item.get_mut() else {
                return;
            };
            // Not an array: deserializing reports the wrong type.
            let Some(DeValue::Array(servers)) = table.get_mut("servers").map(Spanned::get_mut)
            else {
                return;
            };
            for (j, server) in servers.iter_mut().enumerate() {
                let prefix = format!("{prefix}.servers[{j}]");
                source.strip_unknown(server, &prefix, UPSTREAM_SERVER_KEYS);
            }
        })
    }
}
