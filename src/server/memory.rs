//! Giving memory back after a burst of connections: thousands of connections at once
//! (slowloris, a flood) leave their buffers and states free inside malloc's arenas, where
//! the process would keep them for good. Once most of a burst has gone, the free pages go
//! back to the system.
//!
//! Off the request path: one comparison per loop turn, and the trim (a few milliseconds)
//! once per burst.

use std::time::Instant;

/// A peak of open connections (one worker's) from which the memory they held is given back
/// once at most a quarter of them are left.
const BURST_CONNECTIONS: usize = 512;

/// One worker's watch over its open connections.
#[derive(Debug, Default)]
pub(super) struct Burst {
    /// The most connections open at once since memory was last given back.
    peak: usize,
}

impl Burst {
    /// A connection opened; `open` are open now.
    pub(super) fn opened(&mut self, open: usize) {
        self.peak = self.peak.max(open);
    }

    /// After a loop turn with `open` connections: gives free memory back when a burst has
    /// mostly gone. Whether it did.
    pub(super) fn after_turn(&mut self, open: usize, worker: usize) -> bool {
        if self.peak < BURST_CONNECTIONS || open > self.peak / 4 {
            return false;
        }
        let started = Instant::now();
        let returned = super::sys::return_free_memory();
        log::debug!(
            "worker {worker}: a burst of {} connections is over; free memory {} the system in \
             {:?}",
            self.peak,
            if returned {
                "given back to"
            } else {
                "kept from"
            },
            started.elapsed()
        );
        self.peak = open;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_goes_back_once_a_burst_has_mostly_gone() {
        let mut burst = Burst::default();
        for open in 1..=600 {
            burst.opened(open);
        }
        assert!(!burst.after_turn(400, 0), "most are still open");
        assert!(!burst.after_turn(151, 0));
        assert!(burst.after_turn(150, 0), "a quarter left");
        assert!(!burst.after_turn(0, 0), "once per burst");
        for open in 1..=100 {
            burst.opened(open);
        }
        assert!(
            !burst.after_turn(0, 0),
            "a hundred connections are no burst"
        );
    }
}
