//! What configuration errors are: [`ConfigError`] (one problem, located at file, line,
//! column and key), its [`ConfigErrorKind`], [`ConfigErrors`], and the helpers that word
//! them ("did you mean", the working directory of a relative path, located positions).
//!
//! Plain values and formatting: nothing here reads files or validates anything.

use std::fmt;
use std::net::SocketAddr;

/// One problem, located. Display: `{file}:{line}:{column}: {key}: {message}` (1-based line and
/// column, column counted in chars). An error with no position (the file could not be read) is
/// shown as `{file}: {message}`, and one with no key (a syntax error) as
/// `{file}:{line}:{column}: {message}`, rather than printing placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or the embedded default's name).
    pub file: String,
    /// 1-based; 0 only when there is no position at all (`Read`).
    pub line: usize,
    /// 1-based, in chars; 0 only when `line` is 0.
    pub column: usize,
    /// Dotted path of the offending key, e.g. `route[1].status`; empty for syntax/read errors.
    pub key: String,
    /// What is wrong.
    pub kind: ConfigErrorKind,
}

impl ConfigError {
    /// Locate an error at byte `offset` of `text`.
    pub(crate) fn at(
        text: &str,
        file: &str,
        offset: usize,
        key: impl Into<String>,
        kind: ConfigErrorKind,
    ) -> Self {
        let (line, column) = line_column(text, offset);
        Self {
            file: file.to_owned(),
            line,
            column,
            key: key.into(),
            kind,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file)?;
        if self.line != 0 {
            write!(f, "{}:{}:", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, " {}:", self.key)?;
        }
        write!(f, " {}", self.kind)
    }
}

impl std::error::Error for ConfigError {}

/// What is wrong, without the where. Messages are written for an operator editing the file;
/// each variant's `#[error]` text is its documentation.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigErrorKind {
    /// The file could not be read (the io::Error rendered as text, so the kind stays `Clone + Eq`).
    #[error("cannot read: {0}")]
    Read(String),
    /// Not valid TOML (the toml crate's message).
    #[error("{0}")]
    Syntax(String),
    #[error("unknown key{}{}", did_you_mean(.suggestion.as_deref()), expected_list(.expected))]
    UnknownKey {
        expected: Vec<String>,
        /// The known key closest to the unknown one, if one is close enough to be a typo.
        suggestion: Option<String>,
    },
    #[error("wrong type: expected {expected}, found {found}")]
    WrongType { found: String, expected: String },
    #[error("required key is missing")]
    Missing,
    #[error("{value} is out of range {range}")]
    OutOfRange { value: i64, range: IntRange },
    #[error("{value} does not fit in a 64-bit signed integer")]
    IntegerTooLarge { value: String },
    #[error("{value:?} is not a valid ip:port socket address")]
    InvalidAddress { value: String },
    #[error("duplicate listen address {value} (first listed on line {first_line})")]
    DuplicateAddress { value: String, first_line: usize },
    #[error("at least one listen address is required")]
    NoListenAddress,
    #[error("{value:?} is not a duration: {reason}")]
    InvalidDuration { value: String, reason: String },
    #[error("{value:?} is out of range (must be more than 0 and at most 1 day)")]
    DurationOutOfRange { value: String },
    #[error("invalid route name {value:?} (1 to 64 of A-Z a-z 0-9 _ . -)")]
    InvalidRouteName { value: String },
    #[error("duplicate route name {name:?} (first defined on line {first_line})")]
    DuplicateRouteName { name: String, first_line: usize },
    #[error("invalid path {value:?}: {reason}")]
    InvalidPath { value: String, reason: &'static str },
    #[error("required key is missing: give `path` (a prefix match) or `exact` (one path)")]
    NoPath,
    #[error("`path` and `exact` cannot both be given (a route matches a prefix or one path)")]
    PathAndExact,
    #[error("invalid host {value:?}: {reason}")]
    InvalidHost { value: String, reason: &'static str },
    #[error("invalid method {value:?} (must be an RFC 9110 token)")]
    InvalidMethod { value: String },
    #[error("duplicate method {value:?}")]
    DuplicateMethod { value: String },
    #[error("no methods listed (leave `methods` out to allow any method)")]
    NoMethods,
    #[error(
        "route {other:?} (line {other_line}) already matches the same host, path and {methods}"
    )]
    DuplicateMatch {
        other: String,
        other_line: usize,
        /// "methods" when both routes take any method, else "method GET" etc. (boxed: keeps
        /// `ConfigError` small enough to return by value).
        methods: Box<str>,
    },
    #[error("{value} is above limits.max_body_bytes ({limit}), which applies to every request")]
    BodyLimitAboveServer {
        /// As written (`5000`, `"10M"`).
        value: String,
        limit: u64,
    },
    #[error("{value:?} is not a byte size: {reason}")]
    InvalidSize { value: String, reason: &'static str },
    #[error("{value:?} ({bytes} bytes) is out of range {range}")]
    SizeOutOfRange {
        /// As written (boxed: keeps `ConfigError` small enough to return by value).
        value: Box<str>,
        bytes: i64,
        range: IntRange,
    },
    #[error("unknown handler {value:?} (known: respond, echo, static, upload, redirect, proxy)")]
    UnknownHandler { value: String },
    #[error("{key:?} does not apply to handler {handler:?} (only to {only})")]
    NotForHandler {
        key: &'static str,
        handler: &'static str,
        /// The handlers that take the key, quoted: `"respond"`, `"respond" and "redirect"`.
        only: &'static str,
    },
    #[error("{value} is not a redirect status (301, 302, 303, 307 or 308)")]
    NotRedirectStatus { value: i64 },
    #[error("invalid redirect target {value:?}: {reason}")]
    InvalidRedirectTarget { value: String, reason: &'static str },
    #[error("invalid index file name {value:?} (a plain file name: no '/', NUL, \".\" or \"..\")")]
    InvalidIndexName { value: String },
    #[error("{path:?} is not a directory{}", relative_note(.cwd.as_deref()))]
    NotADirectory {
        path: String,
        /// The working directory a relative `path` was resolved against.
        cwd: Option<Box<str>>,
    },
    #[error("cannot {} directory {path:?}: {error}{}", if *.write { "write to" } else { "read" },
        relative_note(.cwd.as_deref()))]
    DirectoryAccess {
        /// Boxed, like `error`: keeps `ConfigError` small enough to return by value.
        path: Box<str>,
        /// Whether writing (an upload directory) failed, else reading (a static root).
        write: bool,
        error: Box<str>,
        /// The working directory a relative `path` was resolved against.
        cwd: Option<Box<str>>,
    },
    #[error("a {status} response cannot have a body (set status to one that allows content)")]
    BodyNotAllowed { status: u16 },
    #[error("invalid header name {name:?} (must be an RFC 9110 token)")]
    InvalidHeaderName { name: String },
    #[error(
        "invalid header value {value:?} (visible ASCII, obs-text, space and tab only; \
         no leading or trailing whitespace)"
    )]
    InvalidHeaderValue { value: String },
    #[error("header {name:?} is set by the server itself and cannot be configured")]
    ReservedHeader { name: String },
    #[error("duplicate header {name:?} (names are case-insensitive; {first:?} is already set)")]
    DuplicateHeader { name: String, first: String },
    #[error("header {name:?} is set by the {handler:?} handler itself and cannot be configured")]
    HandlerHeader { name: String, handler: &'static str },
    #[error(
        "a \"static\" route needs `path` (a prefix): an exact match can reach no file below it"
    )]
    StaticNeedsPrefix,
    #[error("{value:?} is not one of: {allowed}")]
    InvalidChoice {
        value: String,
        allowed: &'static str,
    },
    #[error("{value:?} is out of range (must be {range})")]
    DurationNotIn { value: String, range: &'static str },
    #[error("{value:?} is not an absolute path{}", .cwd.as_deref().map(|cwd| format!(
        " (the working directory is {cwd:?}: perhaps {:?})",
        std::path::Path::new(cwd).join(value))).unwrap_or_default())]
    RelativePath {
        value: String,
        /// The working directory, when it could be read.
        cwd: Option<Box<str>>,
    },
    #[error("required when {when}")]
    RequiredWhen { when: &'static str },
    #[error("no {} named {name:?} on this system{}", if *.group { "group" } else { "user" },
        .error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default())]
    UnknownAccount {
        name: String,
        /// A group, else a user.
        group: bool,
        /// Why the lookup failed, when it did not just find nothing.
        error: Option<Box<str>>,
    },
    #[error("invalid syslog tag {value:?} (1 to 32 of A-Z a-z 0-9 _ . -)")]
    InvalidSyslogTag { value: String },
    #[error(
        "admin listener on non-loopback address {addr} without a token: set admin.token, \
         or admin.allow_public = true to expose it anyway"
    )]
    PublicAdminWithoutToken { addr: SocketAddr },
    #[error(
        "invalid admin token (1 to 512 of A-Z a-z 0-9 - . _ ~ + /, then optional '=' padding: \
         an RFC 6750 bearer token)"
    )]
    InvalidAdminToken,
    #[error("{path:?}: {reason}")]
    InvalidUnixSocket { path: String, reason: &'static str },
    #[error("{path:?}: {reason}")]
    InvalidTokenFile { path: String, reason: String },
    #[error("set either admin.token or admin.token_file, not both")]
    TokenAndTokenFile,
    #[error("invalid upstream name {value:?} (1 to 64 of A-Z a-z 0-9 _ . -)")]
    InvalidUpstreamName { value: String },
    #[error("duplicate upstream name {name:?} (first defined on line {first_line})")]
    DuplicateUpstreamName { name: String, first_line: usize },
    #[error("at least one server is required")]
    NoServers,
    #[error("invalid server address {value:?}: {reason}")]
    InvalidServerAddress { value: String, reason: &'static str },
    #[error("cannot resolve {value:?}: {error}")]
    UnresolvableAddress { value: String, error: Box<str> },
    #[error("duplicate server address {value} (first listed on line {first_line})")]
    DuplicateServer {
        /// The address as resolved (`ip:port`, `unix:/path`).
        value: String,
        first_line: usize,
    },
    #[error("duplicate next_upstream condition {value:?}")]
    DuplicateNextUpstream { value: String },
    #[error(
        "invalid via pseudonym {value:?} (an RFC 9110 token of 1 to 64 bytes, or \"\" to send \
         no Via)"
    )]
    InvalidVia { value: String },
    #[error("no upstream named {name:?} ({})", known_list(.known))]
    UnknownUpstream { name: String, known: Vec<String> },
}

fn relative_note(cwd: Option<&str>) -> String {
    cwd.map_or_else(String::new, |cwd| {
        format!(" (a relative path, resolved against the working directory {cwd:?})")
    })
}

/// The working directory, for the message about a relative `path`; `None` for an absolute
/// one (or when it cannot be read).
pub(crate) fn working_dir_of(path: &str) -> Option<Box<str>> {
    if std::path::Path::new(path).is_absolute() {
        return None;
    }
    let cwd = std::env::current_dir().ok()?;
    Some(cwd.display().to_string().into())
}

fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion.map_or_else(String::new, |s| format!("; did you mean `{s}`?"))
}

/// The known key an unknown `key` was most likely meant to be: the nearest by edit distance
/// (insertions, deletions, substitutions and swaps of two neighbours, ASCII case ignored),
/// when within a third of the key's length (at least 1, so `listn` finds `listen`); the first
/// listed wins a tie. `None` when nothing is that close (a guess would mislead).
pub(crate) fn suggest<'k>(key: &str, known: impl IntoIterator<Item = &'k str>) -> Option<String> {
    let key = key.to_ascii_lowercase();
    let limit = (key.chars().count() / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    for candidate in known {
        let d = edit_distance(&key, &candidate.to_ascii_lowercase());
        if d <= limit && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, candidate));
        }
    }
    best.map(|(_, k)| k.to_owned())
}

/// Optimal string alignment distance (Damerau-Levenshtein without repeated edits of one
/// substring), over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows: two back (for swaps), one back, and the current one.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            cur[j] = d;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

fn expected_list(expected: &[String]) -> String {
    if expected.is_empty() {
        " (this table takes no keys)".to_owned()
    } else {
        format!(" (expected one of: {})", expected.join(", "))
    }
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        "no [[upstream]] is defined".to_owned()
    } else {
        format!("known: {}", known.join(", "))
    }
}

/// An inclusive integer range; `max: None` means unbounded above. Displayed Rust-style
/// (`200..=599`, `0..`) because the messages and the documented ranges use that spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntRange {
    /// The smallest allowed value.
    pub min: i64,
    /// The largest allowed value, if bounded.
    pub max: Option<i64>,
}

impl IntRange {
    pub(crate) const fn new(min: i64, max: i64) -> Self {
        Self {
            min,
            max: Some(max),
        }
    }

    pub(crate) const fn from(min: i64) -> Self {
        Self { min, max: None }
    }

    pub(crate) fn contains(self, v: i64) -> bool {
        v >= self.min && self.max.is_none_or(|max| v <= max)
    }
}

impl fmt::Display for IntRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.max {
            Some(max) => write!(f, "{}..={}", self.min, max),
            None => write!(f, "{}..", self.min),
        }
    }
}

/// Everything wrong with one file, in file order. Display: one `ConfigError` per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        Self(vec![e])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// One segment of a dotted key path: bare if TOML would allow it bare, else quoted, so that a
/// header named `a.b` cannot be mistaken for a nested key.
pub(crate) fn key_segment(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

/// Byte offset -> 1-based (line, column), the column counted in chars so that non-ASCII text
/// before the error does not push the caret right. An offset past the end or inside a char is
/// clamped, because a slightly-off position beats a panic while reporting another error.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::{edit_distance, line_column, suggest};

    #[test]
    fn edit_distance_counts_insertions_deletions_substitutions_and_swaps() {
        let cases = [
            ("", "", 0),
            ("abc", "", 3),
            ("listn", "listen", 1),
            ("wokers", "workers", 1),
            ("stauts", "status", 1), // a swap of neighbours is one edit
            ("max_body", "max_body_bytes", 6),
            ("kitten", "sitting", 3),
        ];
        for (a, b, want) in cases {
            assert_eq!(edit_distance(a, b), want, "{a} -> {b}");
            assert_eq!(edit_distance(b, a), want, "{b} -> {a}");
        }
    }

    #[test]
    fn suggest_picks_the_nearest_close_key_or_nothing() {
        let known = ["listen", "workers", "max_connections", "user", "group"];
        let cases = [
            ("listn", Some("listen")),
            ("Workers", Some("workers")),
            ("max_conections", Some("max_connections")),
            ("usr", Some("user")),
            ("tls", None),
            ("x", None),
            ("completely_unrelated", None),
        ];
        for (key, want) in cases {
            assert_eq!(suggest(key, known).as_deref(), want, "{key}");
        }
    }

    #[test]
    fn line_column_counts_chars_from_one() {
        let text = "ab\ncd\u{e9}f\n\nx";
        let cases = [
            (0, (1, 1)),
            (2, (1, 3)), // the newline itself still belongs to line 1
            (3, (2, 1)),
            (7, (2, 4)), // after a 2-byte char: byte 7 is char column 4
            (6, (2, 3)), // inside the 2-byte char: clamped back to its start
            (9, (3, 1)),
            (10, (4, 1)),
            (99, (4, 2)), // past the end: clamped
        ];
        for (offset, want) in cases {
            assert_eq!(line_column(text, offset), want, "offset {offset}");
        }
    }
}
