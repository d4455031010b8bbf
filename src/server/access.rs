//! The access log as the server sees it: a per-worker buffer of formatted lines, handed to
//! an [`AccessSink`] in batches, so logging a request costs a few appends to memory and no
//! system call, lock or allocation on the request path.
//!
//! The daemon provides the sink (a file it can reopen); this module must not open files.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::service::UpstreamUsed;

/// Receives whole lines (each ending in `\n`), one worker's batch at a time.
pub trait AccessSink: Send + Sync + 'static {
    /// Writes a batch of lines. Called from worker threads: at most every flush interval,
    /// when a worker's buffer passes its mark, and when a worker stops.
    fn write_batch(&self, lines: &[u8]);
}

/// The line format.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum AccessFormat {
    /// NCSA Combined Log Format, then the route name and the duration in microseconds.
    Combined,
    /// One JSON object per line.
    Json,
}

/// Access logging, as configured.
#[derive(Clone)]
pub struct AccessLog {
    /// The line format.
    pub format: AccessFormat,
    /// Where batches go.
    pub sink: Arc<dyn AccessSink>,
    /// How often a worker hands over what it has buffered.
    pub flush_interval: Duration,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("format", &self.format)
            .field("flush_interval", &self.flush_interval)
            .finish_non_exhaustive()
    }
}

/// A buffer this big is handed over at once, whatever the interval.
pub(super) const FLUSH_AT: usize = 64 * 1024;

/// What the server knows of a request when it starts, for its log line.
pub(super) struct Started<'a> {
    pub(super) peer: Option<SocketAddr>,
    pub(super) method: &'a str,
    pub(super) target: &'a str,
    pub(super) version: &'a str,
    pub(super) referer: &'a [u8],
    pub(super) user_agent: &'a [u8],
    pub(super) route: &'a str,
    /// The effective host (`Request::host`: an absolute-form target's, else `Host`'s).
    pub(super) host: &'a str,
}

/// What the server knows of a request when its response is complete, for its log line
/// (all but the duration, known only once the response is written).
pub(super) struct Ended<'a> {
    pub(super) status: u16,
    pub(super) bytes: u64,
    /// The upstream server a proxied request went to (its last attempt) and its time.
    pub(super) upstream: Option<&'a UpstreamUsed>,
}

/// One request's line in the making: formatted at the start except for what only the end
/// knows. Combined: `head` STATUS BYTES `tail` DURATION `host` UPSTREAM UPSTREAM_TIME;
/// JSON: `head` status, bytes, duration `host` upstream, upstream time.
#[derive(Default)]
pub(super) struct Pending {
    text: String,
    /// End of `head`, and of `tail` (where the host part begins).
    split: usize,
    host_at: usize,
    begun: bool,
}

impl Pending {
    /// Formats what is known at the start of a request, stamped with `wall`.
    pub(super) fn begin(&mut self, format: AccessFormat, wall: SystemTime, request: &Started<'_>) {
        self.text.clear();
        self.begun = true;
        let peer = request.peer.map(|p| p.ip());
        match format {
            AccessFormat::Combined => {
                let _ = match peer {
                    Some(ip) => write!(self.text, "{ip}"),
                    None => write!(self.text, "-"),
                };
                self.text.push_str(" - - [");
                push_clf_time(&mut self.text, wall);
                self.text.push_str("] \"");
                push_escaped(&mut self.text, request.method.as_bytes(), false);
                self.text.push(' ');
                push_escaped(&mut self.text, request.target.as_bytes(), false);
                let _ = write!(self.text, " {}\" ", request.version);
                self.split = self.text.len();
                self.text.push_str(" \"");
                push_escaped(&mut self.text, or_dash(request.referer), false);
                self.text.push_str("\" \"");
                push_escaped(&mut self.text, or_dash(request.user_agent), false);
                self.text.push_str("\" ");
                push_escaped(&mut self.text, or_dash(request.route.as_bytes()), false);
                self.text.push(' ');
                self.host_at = self.text.len();
                self.text.push(' ');
                push_escaped(&mut self.text, or_dash(request.host.as_bytes()), false);
            }
            AccessFormat::Json => {
                let _ = write!(
                    self.text,
                    "{{\"time\":\"{}\",\"remote\":\"",
                    humantime::format_rfc3339_millis(wall)
                );
                if let Some(ip) = peer {
                    let _ = write!(self.text, "{ip}");
                }
                self.text.push_str("\",\"method\":\"");
                push_escaped(&mut self.text, request.method.as_bytes(), true);
                self.text.push_str("\",\"target\":\"");
                push_escaped(&mut self.text, request.target.as_bytes(), true);
                let _ = write!(
                    self.text,
                    "\",\"version\":\"{}\",\"route\":\"",
                    request.version
                );
                push_escaped(&mut self.text, request.route.as_bytes(), true);
                self.text.push_str("\",\"referer\":\"");
                push_escaped(&mut self.text, request.referer, true);
                self.text.push_str("\",\"user_agent\":\"");
                push_escaped(&mut self.text, request.user_agent, true);
                self.text.push_str("\",");
                self.split = self.text.len();
                self.text.push_str("\"duration_us\":");
                self.host_at = self.text.len();
                self.text.push_str(",\"host\":\"");
                push_escaped(&mut self.text, request.host.as_bytes(), true);
                self.text.push('"');
            }
        }
    }

    /// Writes the line into `out` except its duration, returning where in `out` the
    /// duration goes (see [`push_duration`]); `None` if no line was begun.
    pub(super) fn stage(
        &mut self,
        format: AccessFormat,
        end: &Ended<'_>,
        out: &mut Vec<u8>,
    ) -> Option<usize> {
        if !std::mem::take(&mut self.begun) {
            return None;
        }
        let head = &self.text.as_bytes()[..self.split];
        let tail = &self.text.as_bytes()[self.split..self.host_at];
        let host = &self.text.as_bytes()[self.host_at..];
        out.extend_from_slice(head);
        let mut number = itoa::Buffer::new();
        let duration_at;
        match format {
            AccessFormat::Combined => {
                out.extend_from_slice(number.format(end.status).as_bytes());
                out.push(b' ');
                out.extend_from_slice(number.format(end.bytes).as_bytes());
                out.extend_from_slice(tail);
                duration_at = out.len();
                out.extend_from_slice(host);
                match end.upstream {
                    Some(upstream) => {
                        out.push(b' ');
                        push_escaped_bytes(out, upstream.server.as_bytes(), false);
                        out.push(b' ');
                        let micros = upstream.time.as_micros();
                        out.extend_from_slice(number.format(micros).as_bytes());
                    }
                    None => out.extend_from_slice(b" - -"),
                }
            }
            AccessFormat::Json => {
                out.extend_from_slice(b"\"status\":");
                out.extend_from_slice(number.format(end.status).as_bytes());
                out.extend_from_slice(b",\"bytes\":");
                out.extend_from_slice(number.format(end.bytes).as_bytes());
                out.push(b',');
                out.extend_from_slice(tail);
                duration_at = out.len();
                out.extend_from_slice(host);
                match end.upstream {
                    Some(upstream) => {
                        out.extend_from_slice(b",\"upstream\":\"");
                        push_escaped_bytes(out, upstream.server.as_bytes(), true);
                        out.extend_from_slice(b"\",\"upstream_time_us\":");
                        let micros = upstream.time.as_micros();
                        out.extend_from_slice(number.format(micros).as_bytes());
                    }
                    None => out.extend_from_slice(b",\"upstream\":null,\"upstream_time_us\":null"),
                }
                out.push(b'}');
            }
        }
        out.push(b'\n');
        Some(duration_at)
    }
}

/// Writes a request's duration, in microseconds, where [`Pending::stage`] left its place.
pub(super) fn push_duration(_format: AccessFormat, duration: Duration, out: &mut Vec<u8>) {
    let mut number = itoa::Buffer::new();
    out.extend_from_slice(number.format(duration.as_micros()).as_bytes());
}

fn or_dash(value: &[u8]) -> &[u8] {
    if value.is_empty() { b"-" } else { value }
}

/// Appends `value` escaped for a quoted CLF field or a JSON string: `"` and `\` escaped,
/// control and non-ASCII bytes as `\xHH` (CLF) or `\u00HH` (JSON), so a line is one line.
fn push_escaped(out: &mut String, value: &[u8], json: bool) {
    for &byte in value {
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(byte as char),
            _ if json => {
                let _ = write!(out, "\\u{byte:04x}");
            }
            _ => {
                let _ = write!(out, "\\x{byte:02x}");
            }
        }
    }
}

/// [`push_escaped`] into bytes.
fn push_escaped_bytes(out: &mut Vec<u8>, value: &[u8], json: bool) {
    if value
        .iter()
        .all(|&b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\')
    {
        out.extend_from_slice(value);
    } else {
        let mut text = String::new();
        push_escaped(&mut text, value, json);
        out.extend_from_slice(text.as_bytes());
    }
}

/// `10/Oct/2000:13:55:36.123 +0000` (UTC, milliseconds), written without allocating.
fn push_clf_time(out: &mut String, wall: SystemTime) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let since = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let of_day = secs % 86_400;
    let _ = write!(
        out,
        "{day:02}/{}/{year:04}:{:02}:{:02}:{:02}.{:03} +0000",
        MONTHS[(month - 1) as usize],
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        since.subsec_millis()
    );
}

/// The proleptic Gregorian date (year, month 1-12, day 1-31) of a day count since
/// 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started() -> Started<'static> {
        Started {
            peer: Some("127.0.0.1:5000".parse().unwrap()),
            method: "GET",
            target: "/a?\"b\"",
            version: "HTTP/1.1",
            referer: b"",
            user_agent: b"curl/8 \x01",
            route: "site",
            host: "example.com",
        }
    }

    /// A line staged and completed as `drive` does.
    fn line(format: AccessFormat, end: &Ended<'_>, duration: Duration) -> String {
        let mut pending = Pending::default();
        let wall = UNIX_EPOCH + Duration::from_millis(971_186_136_123);
        pending.begin(format, wall, &started());
        let mut staged = Vec::new();
        let at = pending.stage(format, end, &mut staged).unwrap();
        let mut out = staged[..at].to_vec();
        push_duration(format, duration, &mut out);
        out.extend_from_slice(&staged[at..]);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn combined_lines_have_every_field_escaped_in_order() {
        let end = Ended {
            status: 200,
            bytes: 13,
            upstream: None,
        };
        assert_eq!(
            line(AccessFormat::Combined, &end, Duration::from_micros(1500)),
            "127.0.0.1 - - [10/Oct/2000:13:55:36.123 +0000] \"GET /a?\\\"b\\\" HTTP/1.1\" 200 13 \"-\" \"curl/8 \\x01\" site 1500 example.com - -\n"
        );
    }

    #[test]
    fn json_lines_are_one_object_per_line() {
        let upstream = UpstreamUsed {
            server: "127.0.0.1:9000".into(),
            time: Duration::from_micros(250),
        };
        let end = Ended {
            status: 404,
            bytes: 0,
            upstream: Some(&upstream),
        };
        assert_eq!(
            line(AccessFormat::Json, &end, Duration::from_micros(7)),
            "{\"time\":\"2000-10-10T13:55:36.123Z\",\"remote\":\"127.0.0.1\",\"method\":\"GET\",\"target\":\"/a?\\\"b\\\"\",\"version\":\"HTTP/1.1\",\"route\":\"site\",\"referer\":\"\",\"user_agent\":\"curl/8 \\u0001\",\"status\":404,\"bytes\":0,\"duration_us\":7,\"host\":\"example.com\",\"upstream\":\"127.0.0.1:9000\",\"upstream_time_us\":250}\n"
        );
    }

    #[test]
    fn clf_dates_are_the_civil_dates() {
        for (secs, text) in [
            (0, "01/Jan/1970:00:00:00.000 +0000"),
            (951_782_400, "29/Feb/2000:00:00:00.000 +0000"),
            (4_107_542_399, "28/Feb/2100:23:59:59.000 +0000"),
        ] {
            let mut out = String::new();
            push_clf_time(&mut out, UNIX_EPOCH + Duration::from_secs(secs));
            assert_eq!(out, text);
        }
    }
}
