//! Validation of the daemon-lifecycle keys: `[server]`'s `shutdown_timeout`, `pidfile`,
//! `user` and `group`, `[log]` and `[access_log]`.
//!
//! Paths must be absolute: the daemon may chdir to `/`, and `asycamore reload` (run from
//! anywhere) must find the same pidfile as the daemon. Users and groups must exist when the
//! file is checked, so a typo is reported by `--check` rather than after binding.

use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::Validator;
use crate::config::model::{RawAccessLog, RawLog, RawServer};
use crate::config::{AccessFormatSpec, AccessLogConfig, ConfigErrorKind, LogConfig, LogTarget};

const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
const FLUSH_MIN: Duration = Duration::from_millis(10);
const FLUSH_MAX: Duration = Duration::from_secs(60);
const LEVELS: &str = "error, warn, info, debug, trace";
const TARGETS: &str = "stderr, syslog, file";
const FACILITIES: &str = "daemon, user, local0, local1, local2, local3, local4, local5, \
                          local6, local7";
const FORMATS: &str = "combined, json";

/// `[server]`'s lifecycle keys, validated.
pub(super) struct ServerLifecycle {
    pub shutdown_timeout: Duration,
    pub pidfile: Option<PathBuf>,
    pub user: Option<String>,
    pub group: Option<String>,
}

impl Validator<'_> {
    pub(super) fn server_lifecycle(&mut self, raw: &RawServer) -> ServerLifecycle {
        let shutdown_timeout = self.duration(
            &raw.shutdown_timeout,
            "server.shutdown_timeout",
            SHUTDOWN_TIMEOUT,
        );
        let pidfile = self.path(&raw.pidfile, "server.pidfile");
        let user = self.account(&raw.user, "server.user", false);
        let group = self.account(&raw.group, "server.group", true);
        ServerLifecycle {
            shutdown_timeout,
            pidfile,
            user,
            group,
        }
    }

    pub(super) fn log(&mut self, raw: &RawLog) -> LogConfig {
        let level = match self.choice(&raw.level, "log.level", LEVELS) {
            Some("error") => log::LevelFilter::Error,
            Some("warn") => log::LevelFilter::Warn,
            Some("debug") => log::LevelFilter::Debug,
            Some("trace") => log::LevelFilter::Trace,
            _ => log::LevelFilter::Info,
        };
        let file = self.path(&raw.file, "log.file");
        let facility = self
            .choice(&raw.syslog_facility, "log.syslog_facility", FACILITIES)
            .unwrap_or("daemon")
            .to_owned();
        let tag = self.syslog_tag(&raw.syslog_tag);
        let target = match self.choice(&raw.target, "log.target", TARGETS) {
            Some("syslog") => LogTarget::Syslog { facility, tag },
            Some("file") => match file {
                Some(file) => LogTarget::File(file),
                None => {
                    if raw.file.is_none() || file_is_empty(&raw.file) {
                        let offset = raw.target.as_ref().map_or(0, |t| t.span().start);
                        let when = "log.target = \"file\"";
                        self.error(offset, "log.file", ConfigErrorKind::RequiredWhen { when });
                    }
                    LogTarget::Stderr
                }
            },
            _ => LogTarget::Stderr,
        };
        LogConfig { level, target }
    }

    pub(super) fn access_log(&mut self, raw: &RawAccessLog) -> Option<AccessLogConfig> {
        let file = self.path(&raw.file, "access_log.file");
        let format = match self.choice(&raw.format, "access_log.format", FORMATS) {
            Some("json") => AccessFormatSpec::Json,
            _ => AccessFormatSpec::Combined,
        };
        let flush_interval = self.flush_interval(&raw.flush_interval);
        let enabled = raw.enabled.as_ref().is_some_and(|e| *e.get_ref());
        if !enabled {
            return None;
        }
        let Some(file) = file else {
            if raw.file.is_none() || file_is_empty(&raw.file) {
                let offset = raw.enabled.as_ref().map_or(0, |e| e.span().start);
                let when = "access_log.enabled = true";
                self.error(
                    offset,
                    "access_log.file",
                    ConfigErrorKind::RequiredWhen { when },
                );
            }
            return None;
        };
        Some(AccessLogConfig {
            file,
            format,
            flush_interval,
        })
    }

    /// A string that must be one of the comma-separated `allowed` words; `None` when absent
    /// or wrong (the error recorded).
    pub(super) fn choice<'r>(
        &mut self,
        field: &'r Option<Spanned<String>>,
        key: &str,
        allowed: &'static str,
    ) -> Option<&'r str> {
        let field = field.as_ref()?;
        let value = field.get_ref().as_str();
        if allowed.split(", ").any(|word| word.trim() == value) {
            Some(value)
        } else {
            let kind = ConfigErrorKind::InvalidChoice {
                value: value.to_owned(),
                allowed,
            };
            self.error(field.span().start, key, kind);
            None
        }
    }

    /// An optional absolute path; `""` means none.
    fn path(&mut self, field: &Option<Spanned<String>>, key: &str) -> Option<PathBuf> {
        let field = field.as_ref()?;
        let value = field.get_ref();
        if value.is_empty() {
            return None;
        }
        let path = PathBuf::from(value);
        if path.is_absolute() {
            Some(path)
        } else {
            let kind = ConfigErrorKind::RelativePath {
                value: value.clone(),
                cwd: crate::config::working_dir_of(value),
            };
            self.error(field.span().start, key, kind);
            None
        }
    }

    /// An optional user or group: a name that must exist, or a numeric id; `""` means none.
    fn account(
        &mut self,
        field: &Option<Spanned<String>>,
        key: &str,
        group: bool,
    ) -> Option<String> {
        let field = field.as_ref()?;
        let name = field.get_ref();
        if name.is_empty() {
            return None;
        }
        // A numeric id needs no entry in the user or group database.
        if name.parse::<u32>().is_ok() {
            return Some(name.clone());
        }
        let found = if group {
            nix::unistd::Group::from_name(name).map(|g| g.is_some())
        } else {
            nix::unistd::User::from_name(name).map(|u| u.is_some())
        };
        let error = match found {
            Ok(true) => return Some(name.clone()),
            Ok(false) => None,
            Err(errno) => Some(errno.desc().into()),
        };
        let kind = ConfigErrorKind::UnknownAccount {
            name: name.clone(),
            group,
            error,
        };
        self.error(field.span().start, key, kind);
        None
    }

    fn syslog_tag(&mut self, field: &Option<Spanned<String>>) -> String {
        let Some(field) = field else {
            return "asycamore".to_owned();
        };
        let value = field.get_ref();
        let valid = (1..=32).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !valid {
            let kind = ConfigErrorKind::InvalidSyslogTag {
                value: value.clone(),
            };
            self.error(field.span().start, "log.syslog_tag", kind);
        }
        value.clone()
    }

    fn flush_interval(&mut self, field: &Option<Spanned<String>>) -> Duration {
        let Some(field) = field else {
            return FLUSH_INTERVAL;
        };
        let value = field.get_ref();
        let kind = match humantime::parse_duration(value) {
            Ok(d) if (FLUSH_MIN..=FLUSH_MAX).contains(&d) => return d,
            Ok(_) => ConfigErrorKind::DurationNotIn {
                value: value.clone(),
                range: "at least 10ms and at most 60s",
            },
            Err(e) => ConfigErrorKind::InvalidDuration {
                value: value.clone(),
                reason: e.to_string(),
            },
        };
        self.error(field.span().start, "access_log.flush_interval", kind);
        FLUSH_INTERVAL
    }
}

/// Whether a path key is present but `""` (which means "none").
fn file_is_empty(field: &Option<Spanned<String>>) -> bool {
    field.as_ref().is_some_and(|f| f.get_ref().is_empty())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::{AccessFormatSpec, AccessLogConfig, LogTarget, load_str};

    fn errors(text: &str) -> Vec<String> {
        match load_str(text, "x.toml") {
            Ok(cfg) => panic!("expected errors, got {cfg:?}\n--- input:\n{text}"),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn every_lifecycle_key_validates_to_its_value() {
        let text = r#"
[server]
shutdown_timeout = "2m"
pidfile = "/run/asycamore.pid"
user = "root"
group = "0"

[log]
level = "debug"
target = "syslog"
syslog_facility = "local3"
syslog_tag = "web-1"

[access_log]
enabled = true
file = "/var/log/asycamore/access.log"
format = "json"
flush_interval = "10ms"
"#;
        let cfg = load_str(text, "x.toml").expect("valid");
        assert_eq!(cfg.shutdown_timeout, Duration::from_secs(120));
        assert_eq!(cfg.pidfile.as_deref(), Some("/run/asycamore.pid".as_ref()));
        assert_eq!(cfg.user.as_deref(), Some("root"));
        assert_eq!(cfg.group.as_deref(), Some("0"));
        assert_eq!(cfg.log.level, log::LevelFilter::Debug);
        assert_eq!(
            cfg.log.target,
            LogTarget::Syslog {
                facility: "local3".into(),
                tag: "web-1".into()
            }
        );
        assert_eq!(
            cfg.access_log,
            Some(AccessLogConfig {
                file: "/var/log/asycamore/access.log".into(),
                format: AccessFormatSpec::Json,
                flush_interval: Duration::from_millis(10),
            })
        );
        let file = load_str(
            "[log]\ntarget = \"file\"\nfile = \"/tmp/e.log\"\n",
            "x.toml",
        )
        .expect("valid");
        assert_eq!(file.log.target, LogTarget::File("/tmp/e.log".into()));
        let off = load_str(
            "[access_log]\nfile = \"relative-is-checked-anyway.log\"\n",
            "x",
        );
        assert!(
            off.is_err(),
            "a relative path is an error even when disabled"
        );
        let off = load_str("[access_log]\nenabled = false\nfile = \"/tmp/a\"\n", "x");
        assert_eq!(off.expect("valid").access_log, None);
    }

    #[test]
    fn bad_lifecycle_keys_are_located() {
        let cwd = std::env::current_dir().expect("working directory");
        let text = r#"[server]
shutdown_timeout = "0s"
pidfile = "run/a.pid"
user = "no-such-user-asycamore"
group = "no-such-group-asycamore"

[log]
level = "verbose"
target = "file"
syslog_facility = "kern"
syslog_tag = "a b"

[access_log]
enabled = true
format = "clf"
flush_interval = "2m"
"#;
        assert_eq!(
            errors(text),
            [
                "x.toml:2:20: server.shutdown_timeout: \"0s\" is out of range (must be more than 0 and at most 1 day)",
                &format!(
                    "x.toml:3:11: server.pidfile: \"run/a.pid\" is not an absolute path (the working \
                     directory is {cwd:?}: perhaps {:?})",
                    cwd.join("run/a.pid")
                ),
                "x.toml:4:8: server.user: no user named \"no-such-user-asycamore\" on this system",
                "x.toml:5:9: server.group: no group named \"no-such-group-asycamore\" on this system",
                "x.toml:8:9: log.level: \"verbose\" is not one of: error, warn, info, debug, trace",
                "x.toml:9:10: log.file: required when log.target = \"file\"",
                "x.toml:10:19: log.syslog_facility: \"kern\" is not one of: daemon, user, local0, local1, local2, local3, local4, local5, local6, local7",
                "x.toml:11:14: log.syslog_tag: invalid syslog tag \"a b\" (1 to 32 of A-Z a-z 0-9 _ . -)",
                "x.toml:14:11: access_log.file: required when access_log.enabled = true",
                "x.toml:15:10: access_log.format: \"clf\" is not one of: combined, json",
                "x.toml:16:18: access_log.flush_interval: \"2m\" is out of range (must be at least 10ms and at most 60s)",
            ]
        );
        assert_eq!(
            errors("[log]\ntarget = \"journal\"\n"),
            ["x.toml:2:10: log.target: \"journal\" is not one of: stderr, syslog, file"]
        );
    }
}
