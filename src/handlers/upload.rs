//! `upload`: streams a request body into a new file in a directory.
//!
//! POST or PUT only (405 with `Allow` otherwise). The body is taken as a stream: each piece is
//! written to a temporary file in the configured directory as it arrives (unnamed with
//! `O_TMPFILE` where the filesystem allows, else `.upload-<random>.tmp`, created exclusively;
//! mode 0640: see `store.rs`), while its SHA-256 is computed, so memory stays bounded
//! whatever the upload size. When the body ends, a commit thread (`commit.rs`) (optionally)
//! fsyncs the file, gives it its final name without ever replacing an existing file (a hard
//! link: an atomic "rename unless the target exists"), (optionally) fsyncs the directory, and
//! wakes the exchange, which answers 201 with `Location` and a JSON body: no disk wait of the
//! commit blocks the poll loop.
//!
//! The final name is the request path below the route's prefix when that is one safe segment
//! (percent-decoded, `[A-Za-z0-9._-]`, not starting with `.`): 409 if that file exists.
//! Otherwise a unique name is generated. A reader of the directory never sees a partial file
//! under a final name, and a partial file never outlives its request: every failure (client
//! gone, body over the limit, disk full, I/O error) removes it, the last two with a 507 or 500
//! and one log line naming the path and the OS error.
//!
//! This file must not buffer the body in memory, must never overwrite an existing file, and
//! must not leave a temporary file behind on any path (see `Drop for TempFile`); a temporary
//! file a killed process left (named ones only: an unnamed file dies with the process) is
//! removed by [`sweep_stale`], which the daemon runs at start and for a directory new to a
//! reload.

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::http1::encode;
use crate::log_rate::{error_limited, warn_limited};
use crate::service::{
    BodyEvent, BodyMode, Exchange, Framing, Handler, HeaderLines, Request, ResponseWriter, Start,
};

mod commit;
mod store;
#[cfg(test)]
mod tests;

use commit::{Commit, Outcome, Pending};
use store::TempFile;
pub use store::{Swept, sweep_stale};

/// What an `upload` route is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSettings {
    /// The directory stored files go to (absolute, writable: checked by config validation).
    pub dir: PathBuf,
    /// The route's path; `Location` of a stored file is this path, `/`, and the file name.
    pub prefix: String,
    /// Whether to fsync the file (and the directory) before answering 201.
    pub fsync: bool,
    /// The route's extra response headers, pre-encoded.
    pub header_lines: HeaderLines,
}

/// Attempts at a fresh random name before giving up (a clash is already improbable).
const NAME_ATTEMPTS: usize = 8;
/// The longest client-chosen file name accepted (longer ones get a generated name).
const MAX_NAME_LEN: usize = 255;
/// While a commit runs, the exchange's own timer (instead of the body timeout, which would
/// end a long fsync with 500) looks in this often; the commit is never cut short.
const COMMIT_CHECK: Duration = Duration::from_secs(60);

/// The settings and everything derived from them once, shared by a route's exchanges.
#[derive(Debug)]
struct Shared {
    settings: UploadSettings,
    /// `Location` up to and including the `/` before the file name, percent-encoded.
    location_base: String,
    /// The route's header lines plus `Allow: POST, PUT`.
    allow_lines: HeaderLines,
    /// The route's header lines plus a plain-text `Content-Type`.
    text_lines: HeaderLines,
    /// Whether to try `O_TMPFILE` (cleared when the directory's filesystem refuses it).
    unnamed: AtomicBool,
}

/// The upload handler.
#[derive(Debug)]
pub struct Upload {
    shared: Arc<Shared>,
}

impl Upload {
    /// A handler storing into `settings.dir`.
    pub fn new(settings: UploadSettings) -> Self {
        let allow_lines = settings.header_lines.and("Allow", b"POST, PUT");
        let text_lines = settings
            .header_lines
            .and("Content-Type", b"text/plain; charset=utf-8");
        let location_base = location_base(&settings.prefix);
        Upload {
            shared: Arc::new(Shared {
                settings,
                location_base,
                allow_lines,
                text_lines,
                unnamed: AtomicBool::new(true),
            }),
        }
    }
}

impl Handler for Upload {
    type Exchange = UploadExchange;

    fn methods(&self) -> Option<&'static [&'static str]> {
        Some(&["POST", "PUT"])
    }

    fn start(
        &self,
        request: &Request<'_>,
        response: &mut ResponseWriter<'_>,
    ) -> Start<UploadExchange> {
        let shared = &self.shared;
        if request.method != "POST" && request.method != "PUT" {
            answer_text(response, &shared.allow_lines, 405);
            return Start::Complete;
        }
        let dir = &shared.settings.dir;
        let name = requested_name(request.path(), &shared.settings.prefix);
        if let Some(name) = &name {
            match fs::symlink_metadata(dir.join(name)) {
                Ok(_) => {
                    answer_text(response, &shared.text_lines, 409);
                    return Start::Complete;
                }
                Err(error) if error.kind() == ErrorKind::NotFound => {}
                Err(error) => {
                    let status = log_failure("checking", &dir.join(name), &error);
                    answer_text(response, &shared.text_lines, status);
                    return Start::Complete;
                }
            }
        }
        match TempFile::create(dir, &shared.unnamed) {
            Ok(temp) => Start::Continue {
                body: BodyMode::Stream,
                exchange: UploadExchange {
                    shared: Arc::clone(shared),
                    temp: Some(temp),
                    name,
                    bytes: 0,
                    chunks: 0,
                    hasher: Sha256::new(),
                    pending: None,
                },
            },
            Err((error, path)) => {
                let status = log_failure("creating", &path, &error);
                answer_text(response, &shared.text_lines, status);
                Start::Complete
            }
        }
    }
}

/// One upload in progress.
#[derive(Debug)]
pub struct UploadExchange {
    shared: Arc<Shared>,
    /// The partial file; `None` once the body ended (its commit is pending or done) or it
    /// was removed (the exchange has answered, and ignores whatever else arrives).
    temp: Option<TempFile>,
    /// The client-chosen name, if the request path named one.
    name: Option<String>,
    bytes: u64,
    chunks: u64,
    hasher: Sha256,
    /// The commit running on a commit thread, once the body has ended, until answered.
    pending: Option<Pending>,
}

impl Exchange for UploadExchange {
    fn on_body(&mut self, event: BodyEvent<'_>, response: &mut ResponseWriter<'_>) {
        let Some(temp) = &mut self.temp else {
            // Answered already: whatever else arrives is discarded.
            return;
        };
        match event {
            BodyEvent::ChunkStart { .. } => self.chunks += 1,
            BodyEvent::Data(data) => match temp.file.write_all(data) {
                Ok(()) => {
                    self.hasher.update(data);
                    self.bytes += data.len() as u64;
                }
                Err(error) => {
                    if let Some(temp) = self.temp.take() {
                        self.abandon(temp, response, "writing", &error);
                    }
                }
            },
            BodyEvent::Trailers(_) => {}
            BodyEvent::End => {
                if let Some(temp) = self.temp.take() {
                    self.commit(temp, response);
                }
            }
        }
    }

    /// The commit thread has ended (its waker fired), the client went away, or the
    /// exchange's timer looked in: answer, give up, or wait on.
    fn on_writable(&mut self, response: &mut ResponseWriter<'_>) {
        let Some(pending) = &self.pending else {
            return;
        };
        if response.client_gone() && pending.abandon() {
            // Nobody will read the answer (as the proxy, and nginx): the commit stores
            // nothing unless it was already naming the file.
            self.pending = None;
            response.wake_at(None);
            response.abandon();
        } else if let Some(outcome) = pending.outcome() {
            self.pending = None;
            response.wake_at(None);
            self.answer(outcome, response);
        } else {
            response.wake_at(Some(Instant::now() + COMMIT_CHECK));
        }
    }
}

impl UploadExchange {
    /// Removes the partial file after `error` while `doing` something to it, and answers
    /// 507 or 500.
    fn abandon(
        &self,
        temp: TempFile,
        response: &mut ResponseWriter<'_>,
        doing: &str,
        error: &io::Error,
    ) {
        let status = log_failure(doing, &temp.describe(), error);
        drop(temp);
        answer_text(response, &self.shared.text_lines, status);
    }

    /// The body is complete: hands the file to a commit thread, which wakes the exchange
    /// when it is stored (answered in `on_writable`). Without a waker (the exchange is not
    /// served by a connection, so no poll loop waits on it) the commit runs here.
    fn commit(&mut self, temp: TempFile, response: &mut ResponseWriter<'_>) {
        let settings = &self.shared.settings;
        let commit = Commit {
            temp,
            dir: settings.dir.clone(),
            name: self.name.clone(),
            fsync: settings.fsync,
            bytes: self.bytes,
        };
        match response.waker() {
            Some(waker) => {
                self.pending = Some(commit::submit(commit, waker));
                // The exchange times its wait itself: a long fsync is not a stalled handler.
                response.wake_at(Some(Instant::now() + COMMIT_CHECK));
            }
            None => {
                let outcome = commit::run(commit, &|| false).unwrap_or(Outcome::Failed(500));
                self.answer(outcome, response);
            }
        }
    }

    /// Answers a commit's outcome: 201 with `Location` and the JSON body, 409, or the
    /// failure's status.
    fn answer(&mut self, outcome: Outcome, response: &mut ResponseWriter<'_>) {
        let name = match outcome {
            Outcome::Stored(name) => name,
            Outcome::Conflict => return answer_text(response, &self.shared.text_lines, 409),
            Outcome::Failed(status) => {
                return answer_text(response, &self.shared.text_lines, status);
            }
        };
        let location = format!("{}{name}", self.shared.location_base);
        let sha256 = hex(std::mem::take(&mut self.hasher).finalize().as_slice());
        let body = json_body(&name, &location, self.bytes, &sha256, self.chunks);
        let fields = [
            ("Location", location.as_bytes()),
            ("Content-Type", b"application/json".as_slice()),
        ];
        let framing = Framing::Length(body.len() as u64);
        if response
            .head_encoded_with(201, &self.shared.settings.header_lines, &fields, framing)
            .is_ok()
        {
            response.write(body.as_bytes());
            response.finish();
        }
    }
}

impl Drop for UploadExchange {
    /// An exchange dropped before it answered (client gone, body over the route's limit,
    /// connection error) takes its partial file with it.
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            // Any client can abort uploads as fast as it likes: once per interval.
            warn_limited!(
                "upload: removing partial file {} after {} bytes: the request body did not \
                 complete (client gone, body over the limit, or connection error)",
                temp.describe().display(),
                self.bytes
            );
        }
        // A pending commit is abandoned as `pending` drops (see `commit.rs`).
    }
}

/// Removes a file this exchange created, logging (not failing) if that is impossible.
fn remove_partial(path: &Path) {
    if let Err(error) = fs::remove_file(path) {
        if error.kind() != ErrorKind::NotFound {
            log::error!("upload: cannot remove {}: {error}", path.display());
        }
    }
}

/// Logs a storage failure with its path and OS error; returns the status to answer:
/// 507 when the disk or quota is full, else 500.
fn log_failure(doing: &str, path: &Path, error: &io::Error) -> u16 {
    let status = failure_status(error);
    // A full disk fails every upload: once per interval (the 507s tell each client).
    error_limited!(
        "upload: {doing} {} failed: {error}; answering {status}",
        path.display()
    );
    status
}

/// 507 Insufficient Storage for a full disk or quota (ENOSPC, EDQUOT), else 500.
fn failure_status(error: &io::Error) -> u16 {
    match error.raw_os_error() {
        Some(libc::ENOSPC | libc::EDQUOT) => 507,
        _ => 500,
    }
}

/// Writes a complete plain-text response: the status and its reason.
fn answer_text(response: &mut ResponseWriter<'_>, lines: &HeaderLines, status: u16) {
    let reason = match status {
        // Not in the codec's table (RFC 4918).
        507 => "Insufficient Storage",
        _ => encode::reason_phrase(status),
    };
    let body = format!("{status} {reason}\n");
    response.head_encoded(status, lines, Framing::Length(body.len() as u64));
    response.write(body.as_bytes());
    response.finish();
}

/// The client-chosen file name: the request path below `prefix`, if it is one safe segment
/// once percent-decoded (`[A-Za-z0-9._-]`, not starting with `.`, at most 255 bytes).
pub(crate) fn requested_name(path: &str, prefix: &str) -> Option<String> {
    let below = path.strip_prefix(prefix.trim_end_matches('/'))?;
    let segment = below.strip_prefix('/')?;
    if segment.is_empty() || segment.contains('/') {
        return None;
    }
    let decoded = percent_decode(segment.as_bytes())?;
    let safe = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    if decoded.len() > MAX_NAME_LEN || decoded.first() == Some(&b'.') || !decoded.iter().all(safe) {
        return None;
    }
    String::from_utf8(decoded).ok()
}

/// Percent-decodes `bytes` once; `None` for a malformed escape.
fn percent_decode(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let [high, low, ..] = tail else { return None };
            let digit = |b: u8| (b as char).to_digit(16);
            out.push((digit(*high)? * 16 + digit(*low)?) as u8);
            rest = &tail[2..];
        } else {
            out.push(byte);
            rest = tail;
        }
    }
    Some(out)
}

/// `Location` up to the file name: the prefix without trailing `/`, then `/`. Bytes that
/// may not appear in a header value or a URL path are percent-encoded.
fn location_base(prefix: &str) -> String {
    let mut base = String::with_capacity(prefix.len() + 1);
    for &byte in prefix.trim_end_matches('/').as_bytes() {
        if (0x21..=0x7e).contains(&byte) && byte != b'?' && byte != b'#' {
            base.push(byte as char);
        } else {
            base.push_str(&format!("%{byte:02X}"));
        }
    }
    base.push('/');
    base
}

/// `len` lower-case hex digits of fresh randomness (std's per-process random hash keys,
/// a counter and the clock: unique, not cryptographic).
fn random_hex(len: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        hasher.write_u128(nanos);
        out.push_str(&format!("{:016x}", hasher.finish()));
    }
    out.truncate(len);
    out
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    out
}

/// The 201 body: `{"name", "location", "bytes", "sha256", "chunks"}` as JSON.
fn json_body(name: &str, location: &str, bytes: u64, sha256: &str, chunks: u64) -> String {
    format!(
        "{{\"name\":{},\"location\":{},\"bytes\":{bytes},\"sha256\":{},\"chunks\":{chunks}}}\n",
        json_string(name),
        json_string(location),
        json_string(sha256)
    )
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
