//! `static`: files under a root directory, sent with sendfile(2).
//!
//! One request costs one `openat2` and one `fstat` on the event loop (a directory: one more
//! open per index file tried; a listing reads the directory). The body is never read here:
//! the open `File` moves into [`ResponseWriter::send_file`] and the connection sends it with
//! sendfile(2) (or, up to 16 KiB, reads it in behind the head to write both at once), or it is
//! dropped (closed) on every other path, so no descriptor outlives its request.
//!
//! Behaviour (the choices are documented where they are made):
//! - GET and HEAD only; anything else is 405 with `Allow: GET, HEAD`.
//! - The path below the route's prefix is decoded once (`path`): invalid `%xx` or NUL is 400;
//!   dot segments and encoded slashes are 404. Nothing outside the root is ever opened
//!   successfully unless `follow_symlinks_outside_root` (`path::Root`).
//! - Regular files only: devices, FIFOs and sockets are 404, and so is a file named with a
//!   trailing slash. `EACCES` is 403.
//! - A directory: without a trailing slash, 301 to the slash form (query kept); with it, the
//!   first `index` file that is a regular file, else the HTML listing if `listing`, else 404.
//! - `ETag` (strong), `Last-Modified`, `Accept-Ranges: bytes`, `Content-Type` from the
//!   extension (mime_guess; `text/*` gets `; charset=utf-8`; unknown is
//!   `application/octet-stream`) unless the route's own headers set one.
//! - Preconditions (`conditional`): `If-Match` / `If-Unmodified-Since` -> 412;
//!   `If-None-Match` (which takes precedence) / `If-Modified-Since` -> 304.
//! - A single `Range: bytes=` -> 206 with `Content-Range`, unsatisfiable -> 416 with
//!   `Content-Range: bytes */LEN`, several ranges -> 200 with the whole file; `If-Range`
//!   (strong ETag or exact date) decides between 206 and 200. HEAD gets GET's head.
//!
//! It must not block (no reads of file contents, no waiting), and must not look outside the
//! service model and `http1`.

mod conditional;
mod listing;
mod path;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::http1::encode;
use crate::service::{Framing, Handler, HeaderLines, Request, ResponseWriter, Start};

use conditional::{Conditions, Precondition, RangeRequest, Validators};
use path::{PathError, Root};

/// What a `static` route is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticSettings {
    /// The directory served (absolute, canonical, readable: checked by config validation).
    pub root: PathBuf,
    /// The route's path (its prefix, or the exact path): the part of a request path after it
    /// names the file under `root`.
    pub prefix: String,
    /// File names tried, in order, for a directory (e.g. `index.html`).
    pub index: Vec<String>,
    /// Whether a directory without an index file gets an HTML listing (else 404).
    pub listing: bool,
    /// Whether symlinks may lead outside `root` (else such a path answers 404).
    pub follow_symlinks_outside_root: bool,
    /// The route's extra response headers, pre-encoded.
    pub header_lines: HeaderLines,
}

/// The static-file handler.
#[derive(Debug)]
pub struct StaticFiles {
    settings: StaticSettings,
    /// The root, opened once.
    root: Root,
    /// Whether the route's headers already carry a `Content-Type`.
    route_sets_content_type: bool,
}

impl StaticFiles {
    /// A handler serving `settings.root`. Opens the root directory once (an `O_PATH`
    /// descriptor kept for the handler's life); if that fails, every request answers with the
    /// error's status.
    pub fn new(settings: StaticSettings) -> Self {
        let root = Root::open(&settings.root, settings.follow_symlinks_outside_root);
        let route_sets_content_type = settings
            .header_lines
            .as_bytes()
            .split(|&byte| byte == b'\n')
            .any(|line| line.len() > 13 && line[..13].eq_ignore_ascii_case(b"content-type:"));
        StaticFiles {
            settings,
            root,
            route_sets_content_type,
        }
    }

    fn serve(&self, request: &Request<'_>, response: &mut ResponseWriter<'_>) {
        if request.method != "GET" && request.method != "HEAD" {
            return self.plain(response, 405, &[("Allow", b"GET, HEAD")]);
        }
        let full = request.path();
        let Some(rest) = below_prefix(&self.settings.prefix, full) else {
            return self.plain(response, 404, &[]);
        };
        let rel = match path::decode(rest) {
            Ok(rel) => rel,
            Err(PathError::BadRequest) => return self.plain(response, 400, &[]),
            Err(PathError::NotFound) => return self.plain(response, 404, &[]),
        };
        let (file, meta) = match self.open(&rel) {
            Ok(opened) => opened,
            Err(err) => return self.plain(response, error_status(&err), &[]),
        };
        if meta.is_dir() {
            if !full.ends_with('/') {
                let location = self.slash_location(&rel, request.query());
                return self.plain(response, 301, &[("Location", &location)]);
            }
            return self.directory(request, response, file, &rel);
        }
        // Not a regular file (device, FIFO, socket), or a file named as a directory.
        if !meta.is_file() || full.ends_with('/') {
            return self.plain(response, 404, &[]);
        }
        self.send(request, response, file, &meta, &rel);
    }

    /// Opens `rel` and reads its metadata (fstat on the open descriptor).
    fn open(&self, rel: &[u8]) -> io::Result<(File, Metadata)> {
        let file = self.root.open_file(rel)?;
        let meta = file.metadata()?;
        Ok((file, meta))
    }

    /// A directory named with a trailing slash: its index file, its listing, or 404.
    fn directory(
        &self,
        request: &Request<'_>,
        response: &mut ResponseWriter<'_>,
        dir: File,
        rel: &[u8],
    ) {
        for name in &self.settings.index {
            let mut candidate = rel.to_vec();
            if !candidate.is_empty() {
                candidate.push(b'/');
            }
            candidate.extend_from_slice(name.as_bytes());
            match self.open(&candidate) {
                Ok((file, meta)) if meta.is_file() => {
                    return self.send(request, response, file, &meta, &candidate);
                }
                Ok(_) => {}
                Err(err) if error_status(&err) == 404 => {}
                Err(err) => return self.plain(response, error_status(&err), &[]),
            }
        }
        if !self.settings.listing {
            return self.plain(response, 404, &[]);
        }
        let mut shown = self.settings.prefix.trim_end_matches('/').to_string();
        shown.push('/');
        if !rel.is_empty() {
            shown.push_str(&String::from_utf8_lossy(rel));
            shown.push('/');
        }
        match listing::render(&Root::listing_path(&dir), &shown, rel.is_empty()) {
            Ok(page) => {
                let html = [("Content-Type", b"text/html; charset=utf-8".as_slice())];
                let typed = if self.route_sets_content_type { 0 } else { 1 };
                let lines = &self.settings.header_lines;
                let framing = Framing::Length(page.len() as u64);
                if response
                    .head_encoded_with(200, lines, &html[..typed], framing)
                    .is_ok()
                {
                    response.write(&page);
                    response.finish();
                }
            }
            Err(err) => self.plain(response, error_status(&err), &[]),
        }
    }

    /// A regular file: preconditions, then 200, 206 or 416.
    fn send(
        &self,
        request: &Request<'_>,
        response: &mut ResponseWriter<'_>,
        file: File,
        meta: &Metadata,
        name: &[u8],
    ) {
        let len = meta.len();
        let validators = Validators::new(meta.ino(), len, meta.mtime(), meta.mtime_nsec());
        let conditions = Conditions {
            if_match: request.header("if-match"),
            if_unmodified_since: request.header("if-unmodified-since"),
            if_none_match: request.header("if-none-match"),
            if_modified_since: request.header("if-modified-since"),
        };
        let etag = validators.etag();
        let last_modified = validators.last_modified();
        let validator_headers = [
            ("ETag", etag.as_bytes()),
            ("Last-Modified", last_modified.as_slice()),
        ];
        let lines = &self.settings.header_lines;
        match conditional::evaluate(&conditions, &validators) {
            Precondition::Serve => {}
            Precondition::NotModified => {
                // No Content-Length: a 304 has no body, and no representation metadata.
                if response
                    .head_encoded_with(304, lines, &validator_headers, Framing::Chunked)
                    .is_ok()
                {
                    response.finish();
                }
                return;
            }
            Precondition::Failed => return self.plain(response, 412, &[]),
        }
        let range = match (request.header("range"), request.header("if-range")) {
            (Some(range), None) => conditional::parse_range(range, len),
            (Some(range), Some(if_range))
                if conditional::if_range_allows(if_range, &validators) =>
            {
                conditional::parse_range(range, len)
            }
            _ => RangeRequest::Full,
        };
        let content_type = content_type(name);
        let mut headers = [
            validator_headers[0],
            validator_headers[1],
            ("Accept-Ranges", b"bytes".as_slice()),
            ("Content-Type", content_type.as_bytes()),
            ("Content-Range", b"".as_slice()),
        ];
        // The route's own Content-Type, when it sets one, is already in `lines`.
        let typed = if self.route_sets_content_type { 3 } else { 4 };
        match range {
            RangeRequest::Full => {
                let head = &headers[..typed];
                if response
                    .head_encoded_with(200, lines, head, Framing::Length(len))
                    .is_ok()
                {
                    response.send_file(file, 0, len);
                }
            }
            RangeRequest::Partial { first, last } => {
                let content_range = format!("bytes {first}-{last}/{len}");
                headers[typed] = ("Content-Range", content_range.as_bytes());
                let count = last - first + 1;
                let headers = &headers[..=typed];
                if response
                    .head_encoded_with(206, lines, headers, Framing::Length(count))
                    .is_ok()
                {
                    response.send_file(file, first, count);
                }
            }
            RangeRequest::Unsatisfiable => {
                let content_range = format!("bytes */{len}");
                self.plain(
                    response,
                    416,
                    &[("Content-Range", content_range.as_bytes())],
                );
            }
        }
    }

    /// A short text/plain response with the route's headers and `extra`.
    fn plain(&self, response: &mut ResponseWriter<'_>, status: u16, extra: &[(&str, &[u8])]) {
        let text = ("Content-Type", b"text/plain; charset=utf-8".as_slice());
        let fields: Vec<(&str, &[u8])> = extra
            .iter()
            .copied()
            .chain((!self.route_sets_content_type).then_some(text))
            .collect();
        let body = format!("{status} {}\n", encode::reason_phrase(status));
        let framing = Framing::Length(body.len() as u64);
        if response
            .head_encoded_with(status, &self.settings.header_lines, &fields, framing)
            .is_ok()
        {
            response.write(body.as_bytes());
            response.finish();
        }
    }

    /// Where a directory named without its trailing slash lives: the prefix, then the decoded
    /// segments re-encoded (so the value cannot start with `//` or `/\` and leave the
    /// site), then `/` and the query.
    fn slash_location(&self, rel: &[u8], query: Option<&str>) -> Vec<u8> {
        let mut location = self
            .settings
            .prefix
            .trim_end_matches('/')
            .as_bytes()
            .to_vec();
        location.push(b'/');
        for segment in rel.split(|&byte| byte == b'/') {
            if !segment.is_empty() {
                listing::percent_encode(&mut location, segment);
                location.push(b'/');
            }
        }
        if let Some(query) = query {
            location.push(b'?');
            location.extend_from_slice(query.as_bytes());
        }
        location
    }
}

impl Handler for StaticFiles {
    type Exchange = ();

    fn methods(&self) -> Option<&'static [&'static str]> {
        Some(&["GET", "HEAD"])
    }

    fn start(&self, request: &Request<'_>, response: &mut ResponseWriter<'_>) -> Start<()> {
        self.serve(request, response);
        Start::Complete
    }
}

/// The part of `path` below `prefix` (segment boundaries), or `None` if it is not below it.
fn below_prefix<'a>(prefix: &str, path: &'a str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    (prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// The status answering an error from opening or reading a path.
fn error_status(err: &io::Error) -> u16 {
    match err.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP | libc::ENAMETOOLONG | libc::EXDEV) => 404,
        Some(libc::EACCES | libc::EPERM) => 403,
        Some(libc::EMFILE | libc::ENFILE) => 503,
        _ if err.kind() == io::ErrorKind::NotFound => 404,
        _ => 500,
    }
}

/// The Content-Type for a file named `name`, from its extension.
fn content_type(name: &[u8]) -> Cow<'static, str> {
    match common_content_type(extension(name)) {
        Some(common) => Cow::Borrowed(common),
        None => guessed_content_type(name),
    }
}

/// The extension of the last segment of `name`, if it has one.
fn extension(name: &[u8]) -> Option<&[u8]> {
    let base = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
    let dot = base.iter().rposition(|&b| b == b'.')?;
    Some(&base[dot + 1..])
}

/// Extensions [`common_content_type`] knows without a table search (tests check it agrees
/// with the search).
#[cfg(test)]
const COMMON_EXTENSIONS: [&str; 16] = [
    "html", "htm", "css", "js", "json", "txt", "svg", "png", "jpg", "jpeg", "gif", "webp", "ico",
    "woff2", "wasm", "bin",
];

/// The Content-Type of the most common extensions, by a `match` instead of a search of
/// every type there is (and with no `charset` string to build); `None` for the rest.
fn common_content_type(ext: Option<&[u8]>) -> Option<&'static str> {
    let Some(ext) = ext else {
        return Some("application/octet-stream");
    };
    let mut lower = [0u8; 5];
    let lower = lower.get_mut(..ext.len())?;
    for (to, from) in lower.iter_mut().zip(ext) {
        *to = from.to_ascii_lowercase();
    }
    Some(match &*lower {
        b"html" | b"htm" => "text/html; charset=utf-8",
        b"css" => "text/css; charset=utf-8",
        b"js" => "text/javascript; charset=utf-8",
        b"json" => "application/json",
        b"txt" => "text/plain; charset=utf-8",
        b"svg" => "image/svg+xml",
        b"png" => "image/png",
        b"jpg" | b"jpeg" => "image/jpeg",
        b"gif" => "image/gif",
        b"webp" => "image/webp",
        b"ico" => "image/x-icon",
        b"woff2" => "font/woff2",
        b"wasm" => "application/wasm",
        b"bin" => "application/octet-stream",
        _ => return None,
    })
}

/// The Content-Type mime_guess gives for `name` (`application/octet-stream` when it knows
/// none), with `charset=utf-8` for text types.
fn guessed_content_type(name: &[u8]) -> Cow<'static, str> {
    let guess = mime_guess::from_path(OsStr::from_bytes(name))
        .first_raw()
        .unwrap_or("application/octet-stream");
    if guess.starts_with("text/") {
        Cow::Owned(format!("{guess}; charset=utf-8"))
    } else {
        Cow::Borrowed(guess)
    }
}
