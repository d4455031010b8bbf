//! Entry points: read a config file (or take text), parse it, validate it, and hand back a
//! `Config` or every located error. Also carries the embedded default, so the daemon can start
//! with no file and `--print-default-config`-style tooling has the documented text at hand.
//!
//! This file must never decide anything about values (that is `validate`) nor fall back to the
//! default silently when a named file is broken: a typo must stop the daemon, not reconfigure it.

use std::path::Path;

use super::validate::{Resolver, system_resolver, validate_with};
use super::{Config, ConfigError, ConfigErrorKind, ConfigErrors, model};

/// The documented example, compiled in. In the main crate this points at `etc/asycamore.toml`.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../etc/asycamore.toml");

/// The file name errors in `EMBEDDED_DEFAULT` are reported against.
pub const EMBEDDED_NAME: &str = "<embedded default>";

/// Read, parse and validate the file at `path`. Errors name the path as given.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let file_name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => load_str(&text, &file_name),
        Err(e) => Err(ConfigError {
            file: file_name,
            line: 0,
            column: 0,
            key: String::new(),
            kind: ConfigErrorKind::Read(e.to_string()),
        }
        .into()),
    }
}

/// Parse and validate `text`; `file_name` is only used to label errors. Upstream host names
/// go to the system resolver.
pub fn load_str(text: &str, file_name: &str) -> Result<Config, ConfigErrors> {
    load_str_with(text, file_name, system_resolver)
}

/// [`load_str`] with upstream host names resolved by `resolve` (tests and fuzzing pass
/// `loopback_resolver`, so that nothing reaches a name server).
pub fn load_str_with(
    text: &str,
    file_name: &str,
    resolve: Resolver,
) -> Result<Config, ConfigErrors> {
    let raw = model::parse(text, file_name)?;
    validate_with(&raw, text, file_name, resolve)
}

#[cfg(test)]
mod tests;
