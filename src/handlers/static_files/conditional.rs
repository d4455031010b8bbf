//! Validators and request preconditions for static files (RFC 9110 sections 8.8, 13 and 14):
//! the ETag and Last-Modified of a file, `If-Match`, `If-Unmodified-Since`,
//! `If-None-Match`, `If-Modified-Since`, `If-Range` and a single `Range: bytes=`.
//!
//! Pure functions over header values and a [`Validators`] value: no I/O, no clock.
//!
//! The ETag is **strong**: `"<inode>-<size>-<mtime seconds>.<mtime nanoseconds>"` in hex.
//! Any write that changes the size or the nanosecond mtime changes it; the remaining hole (a
//! same-size rewrite within one filesystem timestamp tick) is the trade-off Apache and nginx
//! make too, and a weak tag would make `If-Range` by ETag useless (it needs a strong match).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What identifies one version of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validators {
    /// The strong entity tag, quotes included, in `etag[..etag_len]`: built without
    /// allocating, once per request.
    etag: [u8; ETAG_MAX],
    etag_len: usize,
    /// The modification time, truncated to whole seconds (HTTP dates have no more).
    pub modified: SystemTime,
}

/// Two quotes, four 64-bit numbers in hex and three separators.
const ETAG_MAX: usize = 2 + 4 * 16 + 3;

impl Validators {
    /// The validators of a file with this inode, size and mtime.
    pub fn new(inode: u64, size: u64, mtime_secs: i64, mtime_nanos: i64) -> Validators {
        let mut etag = [0; ETAG_MAX];
        let mut len = 0;
        let mut put = |byte: u8| {
            etag[len] = byte;
            len += 1;
        };
        put(b'"');
        // Signed values in two's complement, as `{:x}` prints them.
        let fields = [inode, size, mtime_secs as u64, mtime_nanos as u64];
        for (i, value) in fields.into_iter().enumerate() {
            if i > 0 {
                put(if i == 3 { b'.' } else { b'-' });
            }
            let digits = (64 - value.leading_zeros()).div_ceil(4).max(1);
            for shift in (0..digits).rev() {
                put(b"0123456789abcdef"[((value >> (shift * 4)) & 0xf) as usize]);
            }
        }
        put(b'"');
        let modified = if mtime_secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(mtime_secs.unsigned_abs())
        } else {
            UNIX_EPOCH
                .checked_sub(Duration::from_secs(mtime_secs.unsigned_abs()))
                .unwrap_or(UNIX_EPOCH)
        };
        Validators {
            etag,
            etag_len: len,
            modified,
        }
    }

    /// The strong entity tag, quotes included.
    pub fn etag(&self) -> &str {
        // Only ASCII was written.
        std::str::from_utf8(&self.etag[..self.etag_len]).unwrap_or("\"\"")
    }

    /// `Last-Modified`'s value.
    pub fn last_modified(&self) -> [u8; 29] {
        crate::http1::date::imf_fixdate(self.modified)
    }
}

/// What the preconditions decide (RFC 9110 section 13.2.2).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Go on and serve the file.
    Serve,
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// The request's conditional header values (raw).
#[derive(Copy, Clone, Debug, Default)]
pub struct Conditions<'a> {
    /// `If-Match`.
    pub if_match: Option<&'a [u8]>,
    /// `If-Unmodified-Since`.
    pub if_unmodified_since: Option<&'a [u8]>,
    /// `If-None-Match`.
    pub if_none_match: Option<&'a [u8]>,
    /// `If-Modified-Since`.
    pub if_modified_since: Option<&'a [u8]>,
}

/// Evaluates the preconditions of a GET or HEAD in RFC 9110's order: `If-Match`, else
/// `If-Unmodified-Since`; then `If-None-Match`, else `If-Modified-Since`. An unparsable
/// date is ignored, as the RFC requires.
pub fn evaluate(conditions: &Conditions<'_>, validators: &Validators) -> Precondition {
    if let Some(value) = conditions.if_match {
        if !etag_list_matches(value, validators.etag(), true) {
            return Precondition::Failed;
        }
    } else if let Some(date) = conditions.if_unmodified_since.and_then(parse_date) {
        if validators.modified > date {
            return Precondition::Failed;
        }
    }
    if let Some(value) = conditions.if_none_match {
        if etag_list_matches(value, validators.etag(), false) {
            return Precondition::NotModified;
        }
    } else if let Some(date) = conditions.if_modified_since.and_then(parse_date) {
        if validators.modified <= date {
            return Precondition::NotModified;
        }
    }
    Precondition::Serve
}

fn parse_date(value: &[u8]) -> Option<SystemTime> {
    httpdate::parse_http_date(std::str::from_utf8(value).ok()?.trim()).ok()
}

/// Whether the `*` or comma-separated entity-tag list `value` matches `etag` (strong
/// comparison if `strong`, else weak: `W/` prefixes ignored). Malformed members match nothing.
pub fn etag_list_matches(value: &[u8], etag: &str, strong: bool) -> bool {
    let Ok(value) = std::str::from_utf8(value) else {
        return false;
    };
    let value = value.trim();
    if value == "*" {
        return true;
    }
    value.split(',').any(|member| {
        let member = member.trim();
        let (weak, tag) = match member.strip_prefix("W/") {
            Some(tag) => (true, tag),
            None => (false, member),
        };
        let well_formed = tag.len() >= 2 && tag.starts_with('"') && tag.ends_with('"');
        well_formed && tag == etag && !(strong && weak)
    })
}

/// What a `Range` header asks of a file of a given length.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range (absent, another unit, malformed, several ranges): send it all (200).
    Full,
    /// One satisfiable range, `first..=last` (206).
    Partial {
        /// The first byte.
        first: u64,
        /// The last byte (inclusive).
        last: u64,
    },
    /// A single range that no byte of the file satisfies (416, `Content-Range: bytes */LEN`).
    Unsatisfiable,
}

/// Interprets a `Range` value for a file of `len` bytes. Several ranges are served as the
/// whole file (200): multipart/byteranges is not implemented, and RFC 9110 section 14.2
/// lets a server ignore `Range`.
pub fn parse_range(value: &[u8], len: u64) -> RangeRequest {
    let Ok(value) = std::str::from_utf8(value) else {
        return RangeRequest::Full;
    };
    let value = value.trim();
    let Some((unit, set)) = value.split_once('=') else {
        return RangeRequest::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeRequest::Full;
    }
    let mut members = set.split(',').map(str::trim).filter(|m| !m.is_empty());
    let (Some(member), None) = (members.next(), members.next()) else {
        return RangeRequest::Full;
    };
    let Some((first, last)) = member.split_once('-') else {
        return RangeRequest::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // A suffix: the last `n` bytes.
        let Some(suffix) = parse_digits(last) else {
            return RangeRequest::Full;
        };
        if suffix == 0 {
            return RangeRequest::Unsatisfiable;
        }
        if len == 0 {
            // Satisfiable by RFC 9110 14.1.3, but there is no byte to describe: send it all.
            return RangeRequest::Full;
        }
        return RangeRequest::Partial {
            first: len.saturating_sub(suffix),
            last: len - 1,
        };
    }
    let Some(first) = parse_digits(first) else {
        return RangeRequest::Full;
    };
    let last = if last.is_empty() {
        u64::MAX
    } else {
        match parse_digits(last) {
            Some(last) if last >= first => last,
            _ => return RangeRequest::Full,
        }
    };
    if first >= len {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Partial {
        first,
        last: last.min(len - 1),
    }
}

/// Decimal digits only (no sign, no space), saturating at `u64::MAX`.
fn parse_digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |n, digit| {
        n.saturating_mul(10).saturating_add(u64::from(digit - b'0'))
    }))
}

/// Whether an `If-Range` value lets the `Range` apply: a strong ETag equal to the file's, or
/// an HTTP date equal to its Last-Modified. Anything else (a weak tag, another date, junk)
/// means "send the whole file".
pub fn if_range_allows(value: &[u8], validators: &Validators) -> bool {
    let Ok(text) = std::str::from_utf8(value) else {
        return false;
    };
    let text = text.trim();
    if text.starts_with('"') || text.starts_with("W/") {
        return text == validators.etag();
    }
    parse_date(value) == Some(validators.modified)
}
