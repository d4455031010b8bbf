//! The deadline queue: a min-heap of (instant, token) entries.
//!
//! Entries are never removed early: a slot keeps its real deadline and the loop checks it
//! when an entry pops, so moving a deadline later costs nothing. Stale entries (for removed
//! targets or earlier deadlines) pop and are skipped. The heap's storage is reused, so a
//! steady state pushes without allocating.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use mio::Token;

#[derive(Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
}

impl Timers {
    pub(super) fn push(&mut self, at: Instant, token: Token) {
        self.heap.push(Reverse((at, token.0)));
    }

    pub(super) fn earliest(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Pops one entry that is due at `now`: its time and token.
    pub(super) fn pop_expired(&mut self, now: Instant) -> Option<(Instant, Token)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self
                .heap
                .pop()
                .map(|Reverse((at, token))| (at, Token(token))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let start = Instant::now();
        let mut timers = Timers::default();
        timers.push(start + Duration::from_secs(3), Token(3));
        timers.push(start + Duration::from_secs(1), Token(1));
        timers.push(start + Duration::from_secs(2), Token(2));
        assert_eq!(timers.earliest(), Some(start + Duration::from_secs(1)));
        assert_eq!(timers.pop_expired(start), None);
        let later = start + Duration::from_secs(2);
        assert_eq!(
            timers.pop_expired(later).map(|(_, token)| token),
            Some(Token(1))
        );
        assert_eq!(
            timers.pop_expired(later).map(|(_, token)| token),
            Some(Token(2))
        );
        assert_eq!(timers.pop_expired(later), None);
        assert_eq!(timers.earliest(), Some(start + Duration::from_secs(3)));
    }
}
