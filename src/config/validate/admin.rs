//! Validation of `[admin]`: the admin listener's address, token and limits.
//!
//! A listener reachable from other hosts without a token is refused unless
//! `allow_public = true` says so: the admin port can reload the configuration and profile
//! the process. The token is never echoed in an error (it is a secret).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::Validator;
use crate::config::model::RawAdmin;
use crate::config::{AdminConfig, ConfigErrorKind, IntRange};

const PROFILE_MAX_SECONDS: (i64, IntRange) = (
    60,
    IntRange::new(1, super::super::PROFILE_MAX_SECONDS_LIMIT as i64),
);
const MAX_TOKEN_BYTES: usize = 512;

impl Validator<'_> {
    pub(super) fn admin(&mut self, raw: &RawAdmin) -> AdminConfig {
        let defaults = AdminConfig::default();
        let flag = |field: &Option<toml::Spanned<bool>>, default: bool| {
            field.as_ref().map_or(default, |f| *f.get_ref())
        };
        let enabled = flag(&raw.enabled, defaults.enabled);
        let allow_public = flag(&raw.allow_public, defaults.allow_public);
        let metrics = flag(&raw.metrics, defaults.metrics);
        let listen = match &raw.listen {
            None => defaults.listen,
            Some(field) => match field.get_ref().parse::<SocketAddr>() {
                Ok(addr) => addr,
                Err(_) => {
                    let value = field.get_ref().clone();
                    let kind = ConfigErrorKind::InvalidAddress { value };
                    self.error(field.span().start, "admin.listen", kind);
                    defaults.listen
                }
            },
        };
        let token = match &raw.token {
            Some(field) if !field.get_ref().is_empty() => {
                if valid_token(field.get_ref()) {
                    Some(field.get_ref().clone())
                } else {
                    let kind = ConfigErrorKind::InvalidAdminToken;
                    self.error(field.span().start, "admin.token", kind);
                    None
                }
            }
            _ => None,
        };
        let token = match (&raw.token_file, token) {
            (Some(file), token) if file.get_ref().is_empty() => token,
            (Some(file), Some(_)) => {
                self.error(
                    file.span().start,
                    "admin.token_file",
                    ConfigErrorKind::TokenAndTokenFile,
                );
                None
            }
            (Some(file), None) => match read_token_file(file.get_ref()) {
                Ok(token) => Some(token),
                Err(reason) => {
                    let path = file.get_ref().clone();
                    let kind = ConfigErrorKind::InvalidTokenFile { path, reason };
                    self.error(file.span().start, "admin.token_file", kind);
                    None
                }
            },
            (None, token) => token,
        };
        let unix_socket = match &raw.unix_socket {
            Some(field) if !field.get_ref().is_empty() => {
                match unix_socket_problem(field.get_ref()) {
                    None => Some(PathBuf::from(field.get_ref())),
                    Some(reason) => {
                        let path = field.get_ref().clone();
                        let kind = ConfigErrorKind::InvalidUnixSocket { path, reason };
                        self.error(field.span().start, "admin.unix_socket", kind);
                        None
                    }
                }
            }
            _ => None,
        };
        let profile_max_seconds = self.int(
            &raw.profile_max_seconds,
            "admin.profile_max_seconds",
            PROFILE_MAX_SECONDS,
        );
        let token_missing = raw.token.as_ref().is_none_or(|t| t.get_ref().is_empty())
            && raw
                .token_file
                .as_ref()
                .is_none_or(|t| t.get_ref().is_empty());
        if enabled && !listen.ip().is_loopback() && token_missing && !allow_public {
            let offset = raw.listen.as_ref().map_or(0, |l| l.span().start);
            let kind = ConfigErrorKind::PublicAdminWithoutToken { addr: listen };
            self.error(offset, "admin.listen", kind);
        }
        AdminConfig {
            enabled,
            listen,
            listen_given: raw.listen.is_some(),
            token,
            allow_public,
            metrics,
            profile_max_seconds,
            unix_socket,
        }
    }
}

/// Why `path` cannot be a Unix socket's path, if it cannot. Its directory need not exist
/// yet: a service manager creates it just before the start (systemd's `RuntimeDirectory=`
/// makes the packaged `/run/asycamore` and removes it at the stop), and `--check` must pass
/// while the service is stopped. A directory still missing at the start is a start-up error
/// naming the path.
fn unix_socket_problem(path: &str) -> Option<&'static str> {
    // `sun_path` holds 108 bytes, the terminating NUL included.
    const MAX_PATH_BYTES: usize = 107;
    let path = Path::new(path);
    if !path.is_absolute() {
        return Some("the admin Unix socket must be an absolute path");
    }
    if path.as_os_str().len() > MAX_PATH_BYTES {
        return Some("a Unix socket path is at most 107 bytes long");
    }
    if path.file_name().is_none() {
        return Some("the admin Unix socket path must name a file");
    }
    None
}

/// The token in the file at `path` (its first line, surrounding white space trimmed), or
/// why it cannot be used: the path is not absolute, the file cannot be read, others than its
/// owner and group may read it (a secret anyone can read protects nothing), or it holds no
/// valid token. The token itself is never echoed.
fn read_token_file(path: &str) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let file = Path::new(path);
    if !file.is_absolute() {
        return Err("the admin token file must be an absolute path".into());
    }
    let text = std::fs::read_to_string(file)
        .map_err(|err| format!("cannot read the admin token file: {err}"))?;
    let mode = std::fs::metadata(file)
        .map_err(|err| format!("cannot read the admin token file: {err}"))?
        .permissions()
        .mode();
    if mode & 0o004 != 0 {
        return Err(format!(
            "the admin token file is readable by every user (mode {:04o}): chmod o-r it (the \
             package makes it 0640 root:asycamore)",
            mode & 0o7777
        ));
    }
    let token = text.lines().next().unwrap_or_default().trim();
    if !valid_token(token) {
        return Err(
            "the admin token file holds no valid token on its first line (1 to 512 of A-Z a-z \
             0-9 - . _ ~ + / then optional '=' padding)"
                .into(),
        );
    }
    Ok(token.to_owned())
}

/// RFC 6750's `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn valid_token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && token.len() <= MAX_TOKEN_BYTES
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigErrors, load_str};

    fn errors(text: &str) -> Vec<String> {
        match load_str(text, "x.toml") {
            Ok(_) => Vec::new(),
            Err(ConfigErrors(errors)) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn defaults_are_loopback_with_metrics_on() {
        let config = load_str("", "x.toml").expect("valid");
        assert!(config.admin.enabled);
        assert_eq!(config.admin.listen.to_string(), "127.0.0.1:9180");
        assert!(!config.admin.listen_given);
        assert_eq!(config.admin.token, None);
        assert!(config.admin.metrics);
        assert_eq!(config.admin.profile_max_seconds, 60);
    }

    #[test]
    fn a_public_address_needs_a_token_or_an_explicit_allowance() {
        let public = "[admin]\nlisten = \"0.0.0.0:9180\"\n";
        assert_eq!(
            errors(public),
            [
                "x.toml:2:10: admin.listen: admin listener on non-loopback address 0.0.0.0:9180 \
              without a token: set admin.token, or admin.allow_public = true to expose it anyway"
            ]
        );
        assert!(errors(&format!("{public}token = \"s3cr.et~+/==\"\n")).is_empty());
        assert!(errors(&format!("{public}allow_public = true\n")).is_empty());
        assert!(errors(&format!("{public}enabled = false\n")).is_empty());
        assert!(errors("[admin]\nlisten = \"[::1]:0\"\n").is_empty());
    }

    #[test]
    fn bad_values_are_located_and_the_token_is_not_echoed() {
        let text = "[admin]\nlisten = \"localhost:1\"\ntoken = \"a b\"\nunix_socket = \"relative/a.sock\"\n\
                    profile_max_seconds = 601\n";
        let found = errors(text);
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(found[0].starts_with("x.toml:2:10: admin.listen: \"localhost:1\""));
        assert!(found[1].starts_with("x.toml:3:9: admin.token: invalid admin token"));
        assert!(!found[1].contains("a b"));
        assert_eq!(
            found[2],
            "x.toml:4:15: admin.unix_socket: \"relative/a.sock\": the admin Unix socket must be an \
             absolute path"
        );
        // A directory that does not exist yet is the service manager's to make at the start.
        assert!(errors("[admin]\nunix_socket = \"/nonexistent-dir/a.sock\"\n").is_empty());
        assert_eq!(
            found[3],
            "x.toml:5:23: admin.profile_max_seconds: 601 is out of range 1..=600"
        );
    }

    #[test]
    fn a_token_file_gives_the_token_unless_anyone_may_read_it() {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("asycamore-token-{}", std::process::id()));
        std::fs::write(&path, "s3cr.et~\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let text = format!("[admin]\ntoken_file = \"{}\"\n", path.display());
        let config = load_str(&text, "x.toml").expect("valid");
        assert_eq!(config.admin.token.as_deref(), Some("s3cr.et~"));
        // A public address with a token file is fine.
        let public = format!("{text}listen = \"0.0.0.0:9180\"\n");
        assert!(errors(&public).is_empty(), "{:?}", errors(&public));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let found = errors(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("x.toml:2:14: admin.token_file: ")
                && found[0].contains("readable by every user (mode 0644)"),
            "{found:?}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "a b\n").unwrap();
        let found = errors(&text);
        assert!(found[0].contains("no valid token"), "{found:?}");
        assert!(!found[0].contains("a b"), "{found:?}");
        let both = format!("{text}token = \"t\"\n");
        assert!(errors(&both)[0].contains("either admin.token or admin.token_file"));
        let _ = std::fs::remove_file(&path);
        let missing = errors("[admin]\ntoken_file = \"/nonexistent/token\"\n");
        assert!(
            missing[0].contains("cannot read the admin token file"),
            "{missing:?}"
        );
    }

    #[test]
    fn a_unix_socket_is_an_absolute_path_in_an_existing_directory() {
        let dir = std::env::temp_dir();
        let path = dir.join("asycamore-admin.sock");
        let text = format!("[admin]\nunix_socket = \"{}\"\n", path.display());
        let config = load_str(&text, "x.toml").expect("valid");
        assert_eq!(config.admin.unix_socket, Some(path));
        assert!(
            load_str("", "x.toml")
                .expect("valid")
                .admin
                .unix_socket
                .is_none()
        );
        assert!(
            load_str("[admin]\nunix_socket = \"\"\n", "x.toml")
                .expect("valid")
                .admin
                .unix_socket
                .is_none()
        );
        let relative = errors("[admin]\nunix_socket = \"run/a.sock\"\n");
        assert_eq!(
            relative,
            [
                "x.toml:2:15: admin.unix_socket: \"run/a.sock\": the admin Unix socket must be an \
              absolute path"
            ]
        );
        let long = format!("[admin]\nunix_socket = \"/{}\"\n", "a".repeat(120));
        assert!(errors(&long)[0].contains("at most 107 bytes"));
    }
}
