//! The daemon-lifecycle part of the configuration: shutdown, pidfile, privileges, the error
//! log and the access log (`[server]`'s lifecycle keys, `[log]`, `[access_log]`), and which
//! changed keys a reload cannot apply (`reload_restart_keys`).
//!
//! Values only: opening files, syslog and signals are the daemon's job.

use std::path::PathBuf;
use std::time::Duration;

use super::Config;

/// `[log]`: the error log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// The most detailed level written.
    pub level: log::LevelFilter,
    /// Where lines go.
    pub target: LogTarget,
}

/// Where the error log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// Standard error (the journal under systemd).
    Stderr,
    /// The local syslog daemon.
    Syslog {
        /// `daemon`, `user` or `local0` ..= `local7`.
        facility: String,
        /// The program name on each message.
        tag: String,
    },
    /// A file, appended to (absolute path; reopened on SIGUSR1).
    File(PathBuf),
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: log::LevelFilter::Info,
            target: LogTarget::Stderr,
        }
    }
}

/// `[access_log]` when `enabled = true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogConfig {
    /// Absolute path, appended to (reopened on SIGUSR1).
    pub file: PathBuf,
    /// The line format.
    pub format: AccessFormatSpec,
    /// How often each worker hands its buffered lines over (10ms ..= 60s).
    pub flush_interval: Duration,
}

/// The access-log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessFormatSpec {
    /// NCSA Combined Log Format, plus route, duration and bytes.
    Combined,
    /// One JSON object per line.
    Json,
}

/// The keys changed between `old` and `new` that a reload cannot apply; the running daemon
/// keeps their old values (and logs their names) until it is restarted.
///
/// Applied live: `server.listen`, `server.max_connections`,
/// `server.max_requests_per_connection`, `server.shutdown_timeout`, `[limits]`, `[timeouts]`,
/// `[defaults]`, the routes (proxy routes included), the `[[upstream]]` groups, all of `[log]`
/// (a new target is opened after privileges were dropped, and when it cannot be, the old one
/// stays), all of `[access_log]`, and `admin.token` and `admin.profile_max_seconds`. Restart
/// needed: `server.workers` (threads are started once), `server.pidfile` (it is locked and the
/// reload CLI finds the daemon through it), `server.user` and `server.group` (privileges are
/// dropped once, for good), `admin.enabled` and `admin.listen` (the admin listener is bound
/// once, before privileges are dropped) and `admin.metrics` (the workers are told once whether
/// to count).
pub fn reload_restart_keys(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut keys = Vec::new();
    if old.workers != new.workers {
        keys.push("server.workers");
    }
    if old.defer_accept != new.defer_accept {
        keys.push("server.defer_accept");
    }
    if old.pidfile != new.pidfile {
        keys.push("server.pidfile");
    }
    if old.user != new.user {
        keys.push("server.user");
    }
    if old.group != new.group {
        keys.push("server.group");
    }
    if old.admin.enabled != new.admin.enabled {
        keys.push("admin.enabled");
    }
    if old.admin.listen != new.admin.listen {
        keys.push("admin.listen");
    }
    if old.admin.metrics != new.admin.metrics {
        keys.push("admin.metrics");
    }
    if old.admin.unix_socket != new.admin.unix_socket {
        keys.push("admin.unix_socket");
    }
    keys
}

/// `new` with the keys a reload cannot apply put back to `old`'s values: what the daemon
/// actually runs after the reload (so the next reload compares against the truth).
pub fn with_restart_keys_kept(old: &Config, mut new: Config) -> Config {
    new.workers = old.workers;
    new.defer_accept = old.defer_accept;
    new.pidfile.clone_from(&old.pidfile);
    new.user.clone_from(&old.user);
    new.group.clone_from(&old.group);
    new.admin.enabled = old.admin.enabled;
    new.admin.listen = old.admin.listen;
    new.admin.listen_given = old.admin.listen_given;
    new.admin.metrics = old.admin.metrics;
    new.admin.unix_socket.clone_from(&old.admin.unix_socket);
    new
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EMBEDDED_DEFAULT, EMBEDDED_NAME, load_str};

    fn base() -> Config {
        load_str(EMBEDDED_DEFAULT, EMBEDDED_NAME).expect("valid")
    }

    #[test]
    fn live_keys_need_no_restart() {
        let old = base();
        let mut new = base();
        new.listen.clear();
        new.max_connections = 1;
        new.shutdown_timeout = Duration::from_secs(1);
        new.log.level = log::LevelFilter::Trace;
        new.log.target = LogTarget::Syslog {
            facility: "local0".into(),
            tag: "x".into(),
        };
        new.access_log = Some(AccessLogConfig {
            file: "/tmp/a.log".into(),
            format: AccessFormatSpec::Json,
            flush_interval: Duration::from_secs(1),
        });
        new.routes.clear();
        new.admin.token = Some("t".into());
        new.admin.profile_max_seconds = 5;
        assert!(reload_restart_keys(&old, &new).is_empty());
    }

    /// Upstream groups and proxy routes are applied by a reload: added, changed or removed,
    /// they are no restart key, and the running configuration takes them as they are.
    #[test]
    fn upstreams_and_proxy_routes_apply_on_reload() {
        let proxied = |servers: &str, balance: &str| {
            let text = format!(
                "{EMBEDDED_DEFAULT}\n[[upstream]]\nname = \"app\"\nservers = [{servers}]\n\
                 balance = \"{balance}\"\n\n[[route]]\nname = \"app\"\npath = \"/app\"\n\
                 handler = \"proxy\"\nupstream = \"app\"\n"
            );
            load_str(&text, EMBEDDED_NAME).expect("valid")
        };
        let plain = base();
        let one = proxied("{ address = \"127.0.0.1:9000\" }", "round_robin");
        let two = proxied(
            "{ address = \"127.0.0.1:9000\" }, { address = \"unix:/run/app.sock\" }",
            "least_connections",
        );
        for (old, new) in [(&plain, &one), (&one, &two), (&two, &plain)] {
            assert_ne!(old, new);
            assert!(reload_restart_keys(old, new).is_empty());
            let kept = with_restart_keys_kept(old, new.clone());
            assert_eq!(kept.upstreams, new.upstreams);
            assert_eq!(kept.routes, new.routes);
        }
    }

    #[test]
    fn restart_keys_are_named_and_kept() {
        let old = base();
        let mut new = base();
        new.workers = old.workers + 1;
        new.defer_accept = !old.defer_accept;
        new.pidfile = Some("/run/x.pid".into());
        new.user = Some("nobody".into());
        new.group = Some("nogroup".into());
        new.admin.enabled = false;
        new.admin.listen = "127.0.0.1:1".parse().unwrap();
        new.admin.metrics = false;
        assert_eq!(
            reload_restart_keys(&old, &new),
            [
                "server.workers",
                "server.defer_accept",
                "server.pidfile",
                "server.user",
                "server.group",
                "admin.enabled",
                "admin.listen",
                "admin.metrics",
            ]
        );
        let kept = with_restart_keys_kept(&old, new);
        assert!(reload_restart_keys(&old, &kept).is_empty());
    }
}
