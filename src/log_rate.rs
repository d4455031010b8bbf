//! Log lines a client can cause, at most one per interval per call site: a flood (out of
//! descriptors, a failing upstream under load, a disk that is full) writes one line and then,
//! with the next one it lets through, how many like it were held back, instead of drowning
//! the log and the disk.
//!
//! `warn_limited!` and `error_limited!` take `log::warn!`'s and `log::error!`'s arguments. Each
//! expansion owns a [`Limiter`] (a `static`, two atomics): no lock, no allocation, and nothing
//! per line but a clock read and a compare-and-swap. This module must not depend on any other
//! module of the crate.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often one call site may write a line.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// One call site's allowance.
#[derive(Debug)]
pub struct Limiter {
    /// Milliseconds since [`epoch`] before which lines are held back.
    next: AtomicU64,
    /// Lines held back since the last one written.
    held: AtomicU64,
}

impl Limiter {
    /// A limiter that lets its first line through.
    pub const fn new() -> Self {
        Limiter {
            next: AtomicU64::new(0),
            held: AtomicU64::new(0),
        }
    }

    /// Whether a line may be written now; if so, how many were held back before it.
    pub fn admit(&self, interval: Duration) -> Option<u64> {
        let now = u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX);
        self.admit_at(now, interval)
    }

    /// [`admit`](Self::admit) at `now` milliseconds since the epoch.
    fn admit_at(&self, now: u64, interval: Duration) -> Option<u64> {
        let next = self.next.load(Ordering::Relaxed);
        let until = now.saturating_add(u64::try_from(interval.as_millis()).unwrap_or(u64::MAX));
        if now < next
            || self
                .next
                .compare_exchange(next, until, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            self.held.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(self.held.swap(0, Ordering::Relaxed))
    }
}

impl Default for Limiter {
    fn default() -> Self {
        Self::new()
    }
}

/// The instant limiters count from (the first use).
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// `log::log!` at `$level`, at most once per [`INTERVAL`] from this call site.
macro_rules! log_limited {
    ($level:expr, $($arg:tt)+) => {{
        static LIMITER: $crate::log_rate::Limiter = $crate::log_rate::Limiter::new();
        if log::log_enabled!($level) {
            match LIMITER.admit($crate::log_rate::INTERVAL) {
                Some(0) => log::log!($level, $($arg)+),
                Some(held) => log::log!(
                    $level,
                    "{} ({held} more like it held back in the last {:?})",
                    format_args!($($arg)+),
                    $crate::log_rate::INTERVAL
                ),
                None => {}
            }
        }
    }};
}

/// `log::warn!`, at most once per [`INTERVAL`] from this call site.
macro_rules! warn_limited {
    ($($arg:tt)+) => { $crate::log_rate::log_limited!(log::Level::Warn, $($arg)+) };
}

/// `log::error!`, at most once per [`INTERVAL`] from this call site.
macro_rules! error_limited {
    ($($arg:tt)+) => { $crate::log_rate::log_limited!(log::Level::Error, $($arg)+) };
}

pub(crate) use {error_limited, log_limited, warn_limited};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_then_the_count_held_back() {
        let limiter = Limiter::new();
        let interval = Duration::from_millis(1000);
        assert_eq!(limiter.admit_at(5, interval), Some(0));
        for now in [6, 500, 1004] {
            assert_eq!(limiter.admit_at(now, interval), None, "{now}");
        }
        assert_eq!(limiter.admit_at(1005, interval), Some(3));
        assert_eq!(limiter.admit_at(1006, interval), None);
        assert_eq!(limiter.admit_at(9000, interval), Some(1));
        assert_eq!(limiter.admit_at(9001, interval), None);
    }

    #[test]
    fn threads_racing_let_one_line_through() {
        let limiter = Limiter::new();
        let admitted = std::thread::scope(|scope| {
            let runs: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        (0..1000)
                            .filter(|_| limiter.admit_at(42, Duration::from_secs(60)).is_some())
                            .count()
                    })
                })
                .collect();
            runs.into_iter()
                .map(|run| run.join().unwrap())
                .sum::<usize>()
        });
        assert_eq!(admitted, 1);
        assert_eq!(limiter.held.load(Ordering::Relaxed), 7999);
    }
}
