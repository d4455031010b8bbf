//! Request durations: from the head's arrival (the clock read right after the read system
//! call that delivered its first bytes) to its last byte handed to the kernel (the clock read
//! right after the write system call that took it).
//!
//! A request usually finishes (`Conn::finish`) before the write that sends its response: its
//! counters are taken at once, but its duration, and so its histogram observation and the
//! end of its access-log line, wait here until the connection's `drive` call has flushed.
//! `drive` completes them before it returns, so nothing staged ever outlives the call that
//! staged it (lines never interleave between connections, and nothing is kept per
//! connection). The vectors are reused: no allocation per request in steady state.
//!
//! The clock is read once per read system call that delivered bytes and once per write
//! system call (pipelined requests of one read share its reading), and only while metrics or
//! the access log are on.

use std::time::Instant;

use crate::service::Handler;

use super::access::{self, AccessFormat};
use super::stats::WorkerStats;
use super::worker::Shared;

/// A worker's request timing: the clock of the `drive` call under way and what it staged.
#[derive(Debug)]
pub(super) struct Timing {
    pub(super) clock: Clock,
    pub(super) stamps: Stamps,
}

impl Timing {
    pub(super) fn new(now: Instant) -> Self {
        Timing {
            clock: Clock::new(now),
            stamps: Stamps::default(),
        }
    }
}

impl<H: Handler> Shared<H> {
    /// Completes the requests the `drive` call staged: they end at its last write (or now,
    /// when it wrote nothing: their bytes had left in an earlier call, or the socket was full).
    pub(super) fn complete_stamps(&mut self) {
        let end = self.timing.clock.wrote.unwrap_or_else(Instant::now);
        let format = self.access_log.as_ref().map(|log| log.format);
        self.timing
            .stamps
            .complete(end, self.stats.as_mut(), format, &mut self.access_lines);
    }
}

/// The clock of one `drive` call.
#[derive(Debug)]
pub(super) struct Clock {
    /// The latest reading: the turn's time, then after each read or write system call.
    pub(super) now: Instant,
    /// Taken after the latest write system call of this call, if any.
    pub(super) wrote: Option<Instant>,
    /// Durations are measured (metrics or the access log are on): read the clock after each
    /// read and write system call. Off, the turn's time serves the timers.
    pub(super) precise: bool,
}

impl Clock {
    pub(super) fn new(now: Instant) -> Self {
        Clock {
            now,
            wrote: None,
            precise: false,
        }
    }

    /// Starts a `drive` call at the turn's time `now`.
    pub(super) fn start(&mut self, now: Instant, precise: bool) {
        self.now = now;
        self.wrote = None;
        self.precise = precise;
    }

    /// A read system call delivered bytes.
    #[inline]
    pub(super) fn after_read(&mut self) {
        if self.precise {
            self.now = Instant::now();
        }
    }

    /// A write system call (or sendfile) returned.
    #[inline]
    pub(super) fn after_write(&mut self) {
        if self.precise {
            let now = Instant::now();
            self.now = now;
            self.wrote = Some(now);
        }
    }
}

/// One finished request waiting for its end time.
#[derive(Debug)]
struct Staged {
    started: Instant,
    /// Its end, when known at finish (its bytes had all been written already).
    end: Option<Instant>,
    /// Its route's counters, when metrics are on.
    route: Option<usize>,
    /// Its access-log line in `Stamps::text`: `[from, duration_at)` before the duration,
    /// `[duration_at, to)` after it; `from == to` when not logged.
    from: usize,
    duration_at: usize,
    to: usize,
}

/// The requests a `drive` call finished, until its last write.
#[derive(Debug, Default)]
pub(super) struct Stamps {
    staged: Vec<Staged>,
    text: Vec<u8>,
}

impl Stamps {
    pub(super) fn is_empty(&self) -> bool {
        self.staged.is_empty()
    }

    /// Stages a finished request. `line` writes its access-log line into the buffer given,
    /// except its duration, returning where the duration goes (`None`: no line).
    pub(super) fn stage(
        &mut self,
        started: Instant,
        end: Option<Instant>,
        route: Option<usize>,
        line: impl FnOnce(&mut Vec<u8>) -> Option<usize>,
    ) {
        let from = self.text.len();
        let duration_at = line(&mut self.text).unwrap_or(from);
        self.staged.push(Staged {
            started,
            end,
            route,
            from,
            duration_at,
            to: self.text.len(),
        });
    }

    /// Completes every staged request with `end` (unless it knew its own): observes its
    /// duration and appends its access-log line to `lines`.
    pub(super) fn complete(
        &mut self,
        end: Instant,
        mut stats: Option<&mut WorkerStats>,
        format: Option<AccessFormat>,
        lines: &mut Vec<u8>,
    ) {
        for staged in &self.staged {
            let duration = staged
                .end
                .unwrap_or(end)
                .saturating_duration_since(staged.started);
            if let (Some(stats), Some(route)) = (stats.as_deref_mut(), staged.route) {
                stats.observe_duration(route, duration);
            }
            if let (Some(format), true) = (format, staged.to > staged.from) {
                lines.extend_from_slice(&self.text[staged.from..staged.duration_at]);
                access::push_duration(format, duration, lines);
                lines.extend_from_slice(&self.text[staged.duration_at..staged.to]);
            }
        }
        self.staged.clear();
        self.text.clear();
    }
}
