//! Giving memory back after a burst of connections: thousands of connections at once
//! (slowloris, a flood) leave their buffers and states free inside malloc's arenas, where
//! the process would keep them for good. Once most of a burst has gone, and again once the
//! rest has, the free pages go back to the system.
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
    /// Connections of a burst still open when memory was given back: once they are gone
    /// too, it is given back again (they can hold a quarter of the burst's memory).
    tail: usize,
}

impl Burst {
    /// A connection opened; `open` are open now.
    pub(super) fn opened(&mut self, open: usize) {
        self.peak = self.peak.max(open);
    }

    /// After a loop turn with `open` connections: gives free memory back when a burst has
    /// mostly gone, and again when its tail has. Whether it did.
    pub(super) fn after_turn(&mut self, open: usize, worker: usize) -> bool {
        let burst_over = self.peak >= BURST_CONNECTIONS && open <= self.peak / 4;
        let tail_over = self.tail > 0 && open == 0;
        if !burst_over && !tail_over {
            return false;
        }
        let started = Instant::now();
        let returned = super::sys::return_free_memory();
        log::debug!(
            "worker {worker}: a burst of {} connections is over; free memory {} the system in \
             {:?}",
            self.peak.max(self.tail),
            if returned {
                "given back to"
            } else {
                "kept from"
            },
            started.elapsed()
        );
        self.tail = if burst_over { open } else { 0 };
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
        assert!(!burst.after_turn(20, 0));
        assert!(burst.after_turn(0, 0), "the tail has gone too");
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
