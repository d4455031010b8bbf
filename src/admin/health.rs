//! `/healthz` and `/readyz`: whether the process lives, and whether it serves.
//!
//! The daemon moves [`Health`] from starting to ready once the control loop runs, and to
//! draining when a graceful stop begins; a load balancer then stops sending new work before
//! the listeners close.

use std::sync::atomic::{AtomicU8, Ordering};

/// Where the daemon is in its life.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Started, not yet serving under the control loop.
    Starting,
    /// Serving.
    Ready,
    /// A graceful stop is running.
    Draining,
}

impl Readiness {
    /// The word `/readyz` answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Readiness::Starting => "starting",
            Readiness::Ready => "ready",
            Readiness::Draining => "draining",
        }
    }
}

/// The readiness flag, shared by the daemon (which sets it) and the admin port.
#[derive(Debug)]
pub struct Health(AtomicU8);

impl Default for Health {
    fn default() -> Self {
        Health(AtomicU8::new(Readiness::Starting as u8))
    }
}

impl Health {
    /// Sets the state. Draining is final: nothing moves the daemon back to ready.
    pub fn set(&self, readiness: Readiness) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (now != Readiness::Draining as u8).then_some(readiness as u8)
            });
    }

    /// The state now.
    pub fn get(&self) -> Readiness {
        match self.0.load(Ordering::Acquire) {
            0 => Readiness::Starting,
            1 => Readiness::Ready,
            _ => Readiness::Draining,
        }
    }

    /// `/readyz`'s status and body.
    pub fn readyz(&self) -> (u16, &'static str) {
        match self.get() {
            Readiness::Ready => (200, "ready\n"),
            Readiness::Starting => (503, "starting\n"),
            Readiness::Draining => (503, "draining\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_between_start_and_drain() {
        let health = Health::default();
        assert_eq!(health.readyz(), (503, "starting\n"));
        health.set(Readiness::Ready);
        assert_eq!(health.readyz(), (200, "ready\n"));
        health.set(Readiness::Draining);
        health.set(Readiness::Ready);
        assert_eq!(health.readyz(), (503, "draining\n"));
    }
}
