//! `GET /config`: the configuration the daemon runs, as TOML the daemon would accept, with
//! its generation, when it was loaded, where from and the SHA-256 of that file, and every
//! secret (the admin token) redacted.
//!
//! What is shown is the running value, not the file: defaults applied, keys that need a
//! restart at the values still in force.

use std::path::Path;
use std::time::{Duration, SystemTime};

use toml::{Table, Value};

use crate::config::{
    AccessFormatSpec, Config, HandlerSpec, LogTarget, PathPattern, ProxyHost, UpstreamSettings,
};

/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";

/// The running configuration and where it came from; the daemon replaces it at start and on
/// every successful reload.
#[derive(Clone, Debug)]
pub struct Running {
    /// The configuration in force.
    pub config: Config,
    /// Its generation (1 at start).
    pub generation: u64,
    /// When it was loaded.
    pub loaded_at: SystemTime,
    /// The file it was read from, or the embedded default's name.
    pub source: String,
    /// The SHA-256 of the text it was read from, in hex.
    pub sha256: Option<String>,
}

impl Running {
    /// The body of `GET /config`.
    pub fn render(&self) -> String {
        let loaded = humantime::format_rfc3339_seconds(self.loaded_at);
        let mut text = format!(
            "# The configuration asycamore runs (secrets redacted).\n\
             # generation: {}\n# loaded: {loaded}\n# source: {}\n# sha256: {}\n\n",
            self.generation,
            self.source,
            self.sha256.as_deref().unwrap_or("unknown"),
        );
        match toml::to_string(&to_table(&self.config)) {
            Ok(body) => text.push_str(&body),
            Err(err) => text.push_str(&format!("# cannot render: {err}\n")),
        }
        text
    }
}

fn to_table(config: &Config) -> Table {
    let mut root = Table::new();
    let mut server = Table::new();
    let listen = config.listen.iter().map(|a| str(a.to_string())).collect();
    server.insert("listen".into(), Value::Array(listen));
    server.insert("workers".into(), int(config.workers as u64));
    server.insert("max_connections".into(), int(config.max_connections as u64));
    server.insert(
        "max_requests_per_connection".into(),
        int(config.max_requests_per_connection),
    );
    server.insert("shutdown_timeout".into(), duration(config.shutdown_timeout));
    server.insert("pidfile".into(), path(config.pidfile.as_deref()));
    server.insert("user".into(), str(config.user.clone().unwrap_or_default()));
    server.insert(
        "group".into(),
        str(config.group.clone().unwrap_or_default()),
    );
    root.insert("server".into(), Value::Table(server));

    let limits = &config.limits;
    let mut table = Table::new();
    table.insert("max_head_bytes".into(), int(limits.max_head_bytes as u64));
    table.insert("max_headers".into(), int(limits.max_headers as u64));
    table.insert("max_body_bytes".into(), int(limits.max_body_bytes));
    table.insert(
        "max_chunk_extension_bytes".into(),
        int(limits.max_chunk_extension_bytes as u64),
    );
    table.insert(
        "max_trailer_bytes".into(),
        int(limits.max_trailer_bytes as u64),
    );
    table.insert(
        "output_buffer_bytes".into(),
        int(limits.output_buffer_bytes as u64),
    );
    table.insert(
        "min_body_bytes_per_second".into(),
        int(limits.min_body_bytes_per_second),
    );
    root.insert("limits".into(), Value::Table(table));

    let timeouts = &config.timeouts;
    let mut table = Table::new();
    table.insert("head".into(), duration(timeouts.head));
    table.insert("body".into(), duration(timeouts.body));
    table.insert("idle".into(), duration(timeouts.idle));
    table.insert("write".into(), duration(timeouts.write));
    root.insert("timeouts".into(), Value::Table(table));

    let mut table = Table::new();
    table.insert(
        "level".into(),
        str(config.log.level.to_string().to_ascii_lowercase()),
    );
    match &config.log.target {
        LogTarget::Stderr => {
            table.insert("target".into(), str("stderr"));
        }
        LogTarget::Syslog { facility, tag } => {
            table.insert("target".into(), str("syslog"));
            table.insert("syslog_facility".into(), str(facility.clone()));
            table.insert("syslog_tag".into(), str(tag.clone()));
        }
        LogTarget::File(file) => {
            table.insert("target".into(), str("file"));
            table.insert("file".into(), path(Some(file)));
        }
    }
    root.insert("log".into(), Value::Table(table));

    let mut table = Table::new();
    table.insert(
        "enabled".into(),
        Value::Boolean(config.access_log.is_some()),
    );
    if let Some(access_log) = &config.access_log {
        table.insert("file".into(), path(Some(&access_log.file)));
        let format = match access_log.format {
            AccessFormatSpec::Combined => "combined",
            AccessFormatSpec::Json => "json",
        };
        table.insert("format".into(), str(format));
        table.insert("flush_interval".into(), duration(access_log.flush_interval));
    }
    root.insert("access_log".into(), Value::Table(table));

    let admin = &config.admin;
    let mut table = Table::new();
    table.insert("enabled".into(), Value::Boolean(admin.enabled));
    table.insert("listen".into(), str(admin.listen.to_string()));
    let token = if admin.token.is_some() { REDACTED } else { "" };
    table.insert("token".into(), str(token));
    table.insert("allow_public".into(), Value::Boolean(admin.allow_public));
    let unix_socket = admin
        .unix_socket
        .as_ref()
        .map(|path| path.display().to_string());
    table.insert("unix_socket".into(), str(unix_socket.unwrap_or_default()));
    table.insert("metrics".into(), Value::Boolean(admin.metrics));
    table.insert("profile_max_seconds".into(), int(admin.profile_max_seconds));
    root.insert("admin".into(), Value::Table(table));

    let routes = config.routes.iter().map(|route| {
        let mut table = Table::new();
        table.insert("name".into(), str(route.name.clone()));
        table.insert("host".into(), str(route.host.to_string()));
        match &route.path {
            PathPattern::Prefix(prefix) => table.insert("path".into(), str(prefix.clone())),
            PathPattern::Exact(exact) => table.insert("exact".into(), str(exact.clone())),
        };
        if !route.methods.is_empty() {
            let methods = route.methods.iter().map(|m| str(m.clone())).collect();
            table.insert("methods".into(), Value::Array(methods));
        }
        table.insert("max_body_bytes".into(), int(route.max_body_bytes));
        if !route.headers.is_empty() {
            let headers: Table = route
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), str(value.clone())))
                .collect();
            table.insert("headers".into(), Value::Table(headers));
        }
        table.insert("handler".into(), str(route.handler.kind()));
        handler_settings(&route.handler, &mut table);
        Value::Table(table)
    });
    root.insert("route".into(), Value::Array(routes.collect()));
    let upstreams = config.upstreams.iter().map(upstream).collect();
    root.insert("upstream".into(), Value::Array(upstreams));
    root
}

/// One `[[upstream]]`: every server as resolved (a host name written in the file shows as
/// the addresses it gave, each a server of its own), every setting with its running value.
fn upstream(settings: &UpstreamSettings) -> Value {
    let mut table = Table::new();
    table.insert("name".into(), str(settings.name.clone()));
    let servers = settings.servers.iter().map(|server| {
        let mut entry = Table::new();
        // `ip:port`, `[ipv6]:port` or `unix:/path`, as the file writes them.
        entry.insert("address".into(), str(server.address.to_string()));
        entry.insert("weight".into(), int(u64::from(server.weight)));
        entry.insert("max_connections".into(), int(server.max_connections as u64));
        Value::Table(entry)
    });
    table.insert("servers".into(), Value::Array(servers.collect()));
    table.insert("balance".into(), str(settings.balance.as_str()));
    table.insert("connect_timeout".into(), duration(settings.connect_timeout));
    table.insert("read_timeout".into(), duration(settings.read_timeout));
    table.insert("write_timeout".into(), duration(settings.write_timeout));
    table.insert("idle_timeout".into(), duration(settings.idle_timeout));
    table.insert("max_idle".into(), int(settings.max_idle as u64));
    table.insert("max_fails".into(), int(u64::from(settings.max_fails)));
    table.insert("fail_timeout".into(), duration(settings.fail_timeout));
    let next = settings.next_upstream;
    let conditions = [
        (next.connect, "connect"),
        (next.error, "error"),
        (next.timeout, "timeout"),
        (next.non_idempotent, "non_idempotent"),
    ];
    let conditions = conditions
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| str(*name));
    table.insert("next_upstream".into(), Value::Array(conditions.collect()));
    table.insert(
        "next_upstream_tries".into(),
        int(u64::from(settings.next_upstream_tries)),
    );
    // The pseudonym in effect (its own, else `server.via`'s); "" when no Via is sent.
    table.insert("via".into(), str(settings.via.clone().unwrap_or_default()));
    Value::Table(table)
}

fn handler_settings(handler: &HandlerSpec, table: &mut Table) {
    match handler {
        HandlerSpec::Respond { status, body } => {
            table.insert("status".into(), int(u64::from(*status)));
            table.insert("body".into(), str(body.clone()));
        }
        HandlerSpec::Echo => {}
        HandlerSpec::Static {
            root,
            index,
            listing,
            follow_symlinks_outside_root,
        } => {
            table.insert("root".into(), path(Some(root)));
            let index = index.iter().map(|name| str(name.clone())).collect();
            table.insert("index".into(), Value::Array(index));
            table.insert("listing".into(), Value::Boolean(*listing));
            table.insert(
                "follow_symlinks_outside_root".into(),
                Value::Boolean(*follow_symlinks_outside_root),
            );
        }
        HandlerSpec::Upload { dir, fsync } => {
            table.insert("dir".into(), path(Some(dir)));
            table.insert("fsync".into(), Value::Boolean(*fsync));
        }
        HandlerSpec::Redirect {
            status,
            to,
            keep_path,
            keep_query,
        } => {
            table.insert("status".into(), int(u64::from(*status)));
            table.insert("to".into(), str(to.clone()));
            table.insert("keep_path".into(), Value::Boolean(*keep_path));
            table.insert("keep_query".into(), Value::Boolean(*keep_query));
        }
        HandlerSpec::Proxy { upstream, host } => {
            table.insert("upstream".into(), str(upstream.clone()));
            let host = match host {
                ProxyHost::Keep => "keep",
                ProxyHost::Upstream => "upstream",
                ProxyHost::Literal(host) => host,
            };
            table.insert("proxy_host".into(), str(host));
        }
    }
}

fn str(value: impl Into<String>) -> Value {
    Value::String(value.into())
}

/// TOML integers are i64; a larger value (an unlimited `u64`) is shown as the largest.
fn int(value: u64) -> Value {
    Value::Integer(i64::try_from(value).unwrap_or(i64::MAX))
}

fn duration(value: Duration) -> Value {
    str(humantime::format_duration(value).to_string())
}

fn path(value: Option<&Path>) -> Value {
    str(value.map_or_else(String::new, |p| p.display().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigErrors, EMBEDDED_DEFAULT, EMBEDDED_NAME, load_str_with};

    /// Host names resolved by the loopback resolver: these tests ask no name server.
    fn load_str(text: &str, file: &str) -> Result<Config, ConfigErrors> {
        load_str_with(text, file, crate::config::loopback_resolver)
    }

    fn running(text: &str) -> Running {
        Running {
            config: load_str(text, "x.toml").expect("valid"),
            generation: 7,
            loaded_at: SystemTime::UNIX_EPOCH,
            source: "x.toml".into(),
            sha256: Some("ab".repeat(32)),
        }
    }

    #[test]
    fn the_rendering_loads_back_to_the_same_config() {
        let view = running(EMBEDDED_DEFAULT);
        let text = view.render();
        assert!(text.contains("# generation: 7\n"), "{text}");
        assert!(text.contains("# loaded: 1970-01-01T00:00:00Z\n"), "{text}");
        let again = load_str(&text, EMBEDDED_NAME).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let mut want = view.config.clone();
        // Written out, the default address counts as given.
        want.admin.listen_given = true;
        assert_eq!(again, want);
    }

    /// Upstreams too: a host name comes back as the addresses it resolved to (each a server
    /// with the same weight and limit), which load back to the same servers.
    #[test]
    fn the_rendering_of_upstreams_and_proxy_routes_loads_back_to_the_same_config() {
        let text = r#"
[[upstream]]
name = "app"
servers = [
  { address = "127.0.0.1:9000", weight = 2, max_connections = 256 },
  { address = "localhost:9001" },
  { address = "[::1]:9002", weight = 1000 },
  { address = "unix:/run/app.sock" },
]
balance = "least_connections"
connect_timeout = "1s 500ms"
read_timeout = "2m"
write_timeout = "1day"
idle_timeout = "1ms"
max_idle = 0
max_fails = 0
fail_timeout = "1h"

[[upstream]]
name = "unused"
servers = [{ address = "10.0.0.1:80" }]

[[route]]
name = "app"
path = "/app"
handler = "proxy"
upstream = "app"
proxy_host = "upstream"

[[route]]
name = "api"
path = "/api"
handler = "proxy"
upstream = "app"
proxy_host = "api.internal:8080"
headers = { "X-Via" = "asycamore" }

[[route]]
name = "kept"
path = "/"
handler = "proxy"
upstream = "app"
"#;
        let view = running(text);
        assert_eq!(view.config.upstreams.len(), 2);
        let rendered = view.render();
        assert!(rendered.contains("\"unix:/run/app.sock\""), "{rendered}");
        assert!(rendered.contains("\"127.0.0.1:9001\""), "{rendered}");
        assert!(!rendered.contains("localhost"), "{rendered}");
        assert!(rendered.contains("proxy_host = \"keep\""), "{rendered}");
        let again = load_str(&rendered, "x.toml").unwrap_or_else(|e| panic!("{e}\n{rendered}"));
        let mut want = view.config.clone();
        want.admin.listen_given = true;
        assert_eq!(again, want);
    }

    #[test]
    fn the_token_is_redacted() {
        let view = running("[admin]\ntoken = \"hunter2\"\n");
        let text = view.render();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("token = \"<redacted>\""), "{text}");
    }
}
