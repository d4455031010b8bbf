//! The access log as the server sees it: a per-worker buffer of formatted lines, handed to
//! an [`AccessSink`] in batches, so logging a request costs a few appends to memory and no
//! system call, lock or allocation on the request path.
//!
//! The daemon provides the sink (a file it can reopen); this module must not open files.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
}

/// One request's line in the making: formatted at the start except for what only the end
/// knows (status, bytes, duration), which goes between `head` and `tail`.
#[derive(Default)]
pub(super) struct Pending {
    text: String,
    split: usize,
    started: Option<Instant>,
}

impl Pending {
    /// Formats what is known at the start of a request.
    pub(super) fn begin(
        &mut self,
        format: AccessFormat,
        at: Instant,
        wall: SystemTime,
        request: &Started<'_>,
    ) {
        self.text.clear();
        self.started = Some(at);
        let peer = request.peer.map(|p| p.ip());
        match format {
            AccessFormat::Combined => {
                let _ = match peer {
                    Some(ip) => write!(self.text, "{ip}"),
                    None => write!(self.text, "-"),
                };
                let _ = write!(self.text, " - - [{}] \"", clf_time(wall));
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
            }
            AccessFormat::Json => {
                let _ = write!(
                    self.text,
                    "{{\"time\":\"{}\",\"remote\":\"",
                    humantime::format_rfc3339_seconds(wall)
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
            }
        }
    }

    /// Completes the line into `out`.
    pub(super) fn finish(
        &mut self,
        format: AccessFormat,
        now: Instant,
        status: u16,
        bytes: u64,
        out: &mut Vec<u8>,
    ) {
        let Some(started) = self.started.take() else {
            return;
        };
        let micros = now.saturating_duration_since(started).as_micros();
        let (head, tail) = self.text.split_at(self.split);
        out.extend_from_slice(head.as_bytes());
        let mut number = itoa::Buffer::new();
        match format {
            AccessFormat::Combined => {
                out.extend_from_slice(number.format(status).as_bytes());
                out.push(b' ');
                out.extend_from_slice(number.format(bytes).as_bytes());
                out.extend_from_slice(tail.as_bytes());
                out.push(b' ');
                out.extend_from_slice(number.format(micros).as_bytes());
            }
            AccessFormat::Json => {
                out.extend_from_slice(b"\"status\":");
                out.extend_from_slice(number.format(status).as_bytes());
                out.extend_from_slice(b",\"bytes\":");
                out.extend_from_slice(number.format(bytes).as_bytes());
                out.extend_from_slice(b",\"duration_us\":");
                out.extend_from_slice(number.format(micros).as_bytes());
                out.push(b'}');
            }
        }
        out.push(b'\n');
    }
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

/// `10/Oct/2000:13:55:36 +0000`.
fn clf_time(wall: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let rfc = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string();
    // "2000-10-10T13:55:36Z"
    let (year, month, day, time) = (&rfc[0..4], &rfc[5..7], &rfc[8..10], &rfc[11..19]);
    let month = month
        .parse::<usize>()
        .map_or("Jan", |m| MONTHS[(m + 11) % 12]);
    format!("{day}/{month}/{year}:{time} +0000")
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
        }
    }

    #[test]
    fn combined_lines_have_every_field_escaped_in_order() {
        let mut pending = Pending::default();
        let at = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(971_186_136);
        pending.begin(AccessFormat::Combined, at, wall, &started());
        let mut out = Vec::new();
        pending.finish(
            AccessFormat::Combined,
            at + Duration::from_micros(1500),
            200,
            13,
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /a?\\\"b\\\" HTTP/1.1\" 200 13 \"-\" \"curl/8 \\x01\" site 1500\n"
        );
    }

    #[test]
    fn json_lines_are_one_object_per_line() {
        let mut pending = Pending::default();
        let at = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(971_186_136);
        pending.begin(AccessFormat::Json, at, wall, &started());
        let mut out = Vec::new();
        pending.finish(
            AccessFormat::Json,
            at + Duration::from_micros(7),
            404,
            0,
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"time\":\"2000-10-10T13:55:36Z\",\"remote\":\"127.0.0.1\",\"method\":\"GET\",\"target\":\"/a?\\\"b\\\"\",\"version\":\"HTTP/1.1\",\"route\":\"site\",\"referer\":\"\",\"user_agent\":\"curl/8 \\u0001\",\"status\":404,\"bytes\":0,\"duration_us\":7}\n"
        );
    }
}
