//! CPU profiling: a runtime toggle on the admin port, Go's `/debug/pprof/profile?seconds=N`,
//! and `--profile FILE` for a whole run.
//!
//! Endpoints ([`Profiling::handle`]):
//! - `POST /profiling/start[?frequency=HZ]`: starts a profile (answers the state as JSON);
//! - `POST /profiling/stop[?format=flamegraph]`: stops the profile running, whatever started
//!   it, and returns it;
//! - `GET /profiling`: the state as JSON;
//! - `GET /debug/pprof/profile?seconds=N[&format=flamegraph][&frequency=HZ]`: profiles for N
//!   seconds (default 30, as Go's) and returns the profile.
//!
//! A profile is gzip-compressed pprof protobuf (what Go's endpoint serves; `pprof` and `go tool
//! pprof` read it), or with `format=flamegraph` an SVG flame graph whose title gives the
//! samples, the frequency, the CPU time they stand for and the duration. One profile runs at
//! a time in the process: any other start is answered 409. A profile lasts at most `[admin]
//! profile_max_seconds`: a longer `seconds` is refused, and a runtime profile not stopped by
//! then stops collecting at that point and waits for `/profiling/stop` to fetch it. A timed
//! profile whose client goes away (closes or resets its connection) is abandoned at once,
//! its samples discarded; `/profiling/stop` on a timed profile returns what was collected
//! so far, to its caller and to the timed profile's waiting client alike; on a `--profile`
//! run, it returns the profile so far, and that is what the file gets at exit.
//!
//! The admin loop never waits: arming the timers, waiting out the duration, symbolising the
//! samples and encoding both formats all happen on a `profiler` thread of the profile's own,
//! which then wakes the waiting exchange through its
//! [`ExchangeWaker`](crate::service::ExchangeWaker).
//!
//! The admin server must let an exchange wait longer than the longest profile: its body
//! (handler) timeout has to exceed `profile_max_seconds` plus the time to symbolise, or a long
//! profile is cut off with a timeout answer ([`exchange_timeout`] gives a safe value).
//!
//! Sampling (`sys.rs`): each thread has a POSIX timer on its own CPU-time clock that sends
//! it `SIGPROF` after each period of CPU it used (Go's design), and the handler counts the
//! unwound stack in a fixed, lock-free table. Every period of CPU is a sample, system call
//! time included: the profile's samples times the period match the CPU time /proc shows
//! (the pprof crate's process-wide `ITIMER_PROF` and its skipping of every sample taken in
//! libc kept 2 to 33 % of it in a server, whose CPU goes mostly to system calls). The
//! handler is installed with `SA_RESTART`, but `epoll_wait` is never restarted (signal(7));
//! the reactor treats an interrupted poll as an empty turn, and the connection code retries
//! `read`, `write`, `accept` and `sendfile` on `EINTR`. When a profile ends its timers are
//! deleted and the handler is replaced by `SIG_IGN`.
//!
//! Memory (`report`): only the addresses the stacks hold are symbolised, and the
//! symboliser's caches are dropped and the heap trimmed afterwards: a profile costs its
//! table (at most 2.1 MiB, touched as stacks fill it) and the transient symbolisation, and
//! gives both back when it ends.

mod exchange;
mod report;
mod session;
mod sys;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::service::{Request, ResponseWriter, Start};

pub use exchange::ProfileExchange;
use exchange::Wait;
use session::{Kind, Session, Stop, begin, slot};
pub use session::{Profile, WholeRun, active};

/// Sampling frequency when none is asked for, in Hz (the pprof crate's default; Go uses 100).
pub const DEFAULT_FREQUENCY: u32 = 99;
/// The highest sampling frequency accepted, in Hz.
pub const MAX_FREQUENCY: u32 = 1000;
/// Duration of `/debug/pprof/profile` without `seconds` (Go's default), capped by the limit.
pub const DEFAULT_SECONDS: u64 = 30;

/// The endpoints' paths.
const STATE_PATH: &str = "/profiling";
const START_PATH: &str = "/profiling/start";
const STOP_PATH: &str = "/profiling/stop";
const PPROF_PATH: &str = "/debug/pprof/profile";

/// What a profile is returned as.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Format {
    /// gzip-compressed pprof protobuf.
    Pprof,
    /// An SVG flame graph.
    Flamegraph,
}

impl Format {
    /// The format a file name asks for: `.svg` is a flame graph, anything else pprof.
    pub fn for_path(path: &Path) -> Format {
        let svg = path
            .extension()
            .is_some_and(|extension| extension.eq_ignore_ascii_case("svg"));
        if svg {
            Format::Flamegraph
        } else {
            Format::Pprof
        }
    }
}

/// How long the admin server must let a profiling exchange wait without output (its body
/// timeout) for profiles of up to `max_seconds`: the profile, then symbolising and encoding.
pub fn exchange_timeout(max_seconds: u64) -> Duration {
    Duration::from_secs(max_seconds.saturating_add(30))
}

/// The profiling endpoints of the admin port.
#[derive(Clone, Debug)]
pub struct Profiling {
    max: Duration,
}

impl Profiling {
    /// Endpoints whose profiles last at most `max_seconds` (`[admin] profile_max_seconds`).
    pub fn new(max_seconds: u64) -> Self {
        Profiling {
            max: Duration::from_secs(max_seconds.max(1)),
        }
    }

    /// Whether `path` is one of the profiling endpoints.
    pub fn serves(path: &str) -> bool {
        matches!(path, STATE_PATH | START_PATH | STOP_PATH | PPROF_PATH)
    }

    /// Answers a request for one of the profiling endpoints; `None` if `request` is for
    /// another path. Authorisation is the caller's.
    pub fn handle(
        &self,
        request: &Request<'_>,
        response: &mut ResponseWriter<'_>,
    ) -> Option<Start<ProfileExchange>> {
        let read = matches!(request.method, "GET" | "HEAD");
        let post = request.method == "POST";
        let query = request.query().unwrap_or("");
        Some(match request.path() {
            STATE_PATH if read => self.state(response),
            START_PATH if post => self.start(query, response),
            STOP_PATH if post => self.stop(query, response),
            PPROF_PATH if read => self.timed(query, response),
            STATE_PATH | PPROF_PATH => not_allowed(response, "GET, HEAD"),
            START_PATH | STOP_PATH => not_allowed(response, "POST"),
            _ => return None,
        })
    }

    fn state(&self, response: &mut ResponseWriter<'_>) -> Start<ProfileExchange> {
        let body = state_json(slot().as_ref(), self.max);
        let _ = response.complete(
            200,
            &[("Content-Type", b"application/json")],
            body.as_bytes(),
        );
        Start::Complete
    }

    fn start(&self, query: &str, response: &mut ResponseWriter<'_>) -> Start<ProfileExchange> {
        let frequency = match frequency(query) {
            Ok(frequency) => frequency,
            Err(message) => return text(response, 400, &message),
        };
        let Some(waker) = response.waker() else {
            return text(response, 500, "this server cannot wait for the profiler");
        };
        match begin(Kind::Runtime, frequency, Some(self.max)) {
            Ok(started) => {
                ProfileExchange::start(Wait::Started(started.started_ok, self.max), waker, None)
            }
            Err(message) => text(response, 409, &message),
        }
    }

    fn stop(&self, query: &str, response: &mut ResponseWriter<'_>) -> Start<ProfileExchange> {
        let format = match format(query) {
            Ok(format) => format,
            Err(message) => return text(response, 400, &message),
        };
        let Some(waker) = response.waker() else {
            return text(response, 500, "this server cannot wait for the profiler");
        };
        let mut slot = slot();
        let done = match slot.as_mut() {
            None => return text(response, 409, "no profile is running"),
            Some(session) if session.stopping => {
                return text(response, 409, "the profile is already being stopped");
            }
            Some(session) if !session.collecting() => {
                // It reached its limit and waited for this: hand it over.
                let done = Arc::clone(&session.done);
                *slot = None;
                done
            }
            Some(session) => {
                // Any kind: a timed profile's waiting client then gets what was collected
                // too, and a whole run's file at exit holds the profile up to now.
                session.stopping = true;
                if let Some(stop) = &session.stop {
                    let _ = stop.send(Stop::Collect);
                }
                Arc::clone(&session.done)
            }
        };
        drop(slot);
        ProfileExchange::start(Wait::Done(done, format), waker, None)
    }

    fn timed(&self, query: &str, response: &mut ResponseWriter<'_>) -> Start<ProfileExchange> {
        let parsed = seconds(query, self.max)
            .and_then(|seconds| Ok((seconds, format(query)?, frequency(query)?)));
        let (seconds, format, frequency) = match parsed {
            Ok(parsed) => parsed,
            Err(message) => return text(response, 400, &message),
        };
        let Some(waker) = response.waker() else {
            return text(response, 500, "this server cannot wait for the profiler");
        };
        match begin(Kind::Timed, frequency, Some(seconds)) {
            Ok(started) => {
                ProfileExchange::start(Wait::Done(started.done, format), waker, started.stop)
            }
            Err(message) => text(response, 409, &message),
        }
    }
}

/// The state as JSON.
fn state_json(session: Option<&Session>, max: Duration) -> String {
    let max = max.as_secs();
    let Some(session) = session else {
        return format!("{{\"active\":false,\"state\":\"idle\",\"max_seconds\":{max}}}\n");
    };
    let state = if session.collecting() {
        if session.stopping {
            "stopping"
        } else {
            "running"
        }
    } else {
        "finished"
    };
    let started = session
        .started
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let limit = session
        .limit
        .map_or_else(|| "null".to_string(), |limit| limit.as_secs().to_string());
    format!(
        "{{\"active\":{},\"state\":\"{state}\",\"kind\":\"{}\",\"frequency_hz\":{},\
         \"started_unix_seconds\":{started:.3},\"elapsed_seconds\":{:.3},\
         \"limit_seconds\":{limit},\"max_seconds\":{max}}}\n",
        session.collecting(),
        session.kind.as_str(),
        session.frequency,
        session.started_at.elapsed().as_secs_f64(),
    )
}

/// The value of query parameter `name`, if given.
fn param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn frequency(query: &str) -> Result<u32, String> {
    match param(query, "frequency") {
        None => Ok(DEFAULT_FREQUENCY),
        Some(value) => value
            .parse::<u32>()
            .ok()
            .filter(|hz| (1..=MAX_FREQUENCY).contains(hz))
            .ok_or_else(|| {
                format!("frequency must be a whole number of Hz from 1 to {MAX_FREQUENCY}, not {value:?}")
            }),
    }
}

fn format(query: &str) -> Result<Format, String> {
    match param(query, "format") {
        None | Some("pprof" | "proto" | "protobuf") => Ok(Format::Pprof),
        Some("flamegraph" | "svg") => Ok(Format::Flamegraph),
        Some(other) => Err(format!("format must be pprof or flamegraph, not {other:?}")),
    }
}

fn seconds(query: &str, max: Duration) -> Result<Duration, String> {
    let max_seconds = max.as_secs();
    match param(query, "seconds") {
        None => Ok(Duration::from_secs(DEFAULT_SECONDS.min(max_seconds))),
        Some(value) => match value.parse::<u64>() {
            Ok(seconds) if (1..=max_seconds).contains(&seconds) => Ok(Duration::from_secs(seconds)),
            Ok(seconds) if seconds > max_seconds => Err(format!(
                "seconds must be at most {max_seconds} ([admin] profile_max_seconds), not {seconds}"
            )),
            _ => Err(format!(
                "seconds must be a whole number from 1 to {max_seconds}, not {value:?}"
            )),
        },
    }
}

fn text(response: &mut ResponseWriter<'_>, status: u16, message: &str) -> Start<ProfileExchange> {
    let body = format!("{message}\n");
    let _ = response.complete(
        status,
        &[("Content-Type", b"text/plain; charset=utf-8")],
        body.as_bytes(),
    );
    Start::Complete
}

fn not_allowed(response: &mut ResponseWriter<'_>, allow: &str) -> Start<ProfileExchange> {
    let body = format!("method not allowed: use {allow}\n");
    let _ = response.complete(
        405,
        &[
            ("Allow", allow.as_bytes()),
            ("Content-Type", b"text/plain; charset=utf-8"),
        ],
        body.as_bytes(),
    );
    Start::Complete
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters() {
        let max = Duration::from_secs(60);
        assert_eq!(seconds("", max), Ok(Duration::from_secs(30)));
        assert_eq!(
            seconds("", Duration::from_secs(5)),
            Ok(Duration::from_secs(5))
        );
        assert_eq!(seconds("seconds=7", max), Ok(Duration::from_secs(7)));
        assert!(
            seconds("seconds=61", max)
                .unwrap_err()
                .contains("at most 60")
        );
        assert!(seconds("seconds=0", max).is_err());
        assert!(seconds("seconds=x", max).is_err());
        assert_eq!(
            format("seconds=1&format=flamegraph"),
            Ok(Format::Flamegraph)
        );
        assert_eq!(format("seconds=1"), Ok(Format::Pprof));
        assert!(format("format=png").is_err());
        assert_eq!(frequency("frequency=250"), Ok(250));
        assert_eq!(frequency("a&b=1"), Ok(DEFAULT_FREQUENCY));
        assert!(frequency("frequency=0").is_err());
        assert!(frequency("frequency=1001").is_err());
    }

    #[test]
    fn format_for_path() {
        assert_eq!(Format::for_path(Path::new("run.svg")), Format::Flamegraph);
        assert_eq!(Format::for_path(Path::new("run.SVG")), Format::Flamegraph);
        assert_eq!(Format::for_path(Path::new("run.pb.gz")), Format::Pprof);
        assert_eq!(Format::for_path(Path::new("profile")), Format::Pprof);
    }
}
