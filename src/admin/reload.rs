//! `POST /reload`: the same reload as SIGHUP, asked of the daemon's control thread, with the
//! answer sent when it is done.
//!
//! The admin loop never waits for it: the handler hands a [`ReloadRequest`] to the daemon
//! and returns a [`ReloadExchange`] that writes nothing until the control thread has
//! answered through [`ReloadRequest::answer`], which wakes the exchange with its
//! [`ExchangeWaker`]. A request dropped unanswered (the daemon is gone) answers 503 itself, so
//! no client waits forever.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::service::{BodyEvent, Exchange, ExchangeWaker, ResponseWriter};

/// The request header of `POST /reload` naming the configuration file the client means (an
/// absolute path); the daemon answers 409 when it is not the file it runs.
pub const CONFIG_HEADER: &str = "asycamore-config";

/// What became of a reload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The new configuration serves everywhere, as this generation.
    Applied {
        /// The new generation.
        generation: u64,
        /// Changed keys that need a restart (their running values stay), one line each.
        warnings: Vec<String>,
    },
    /// The request named a configuration file other than the daemon's: nothing was done
    /// (409).
    WrongFile {
        /// The file the request named.
        given: String,
        /// The file the daemon runs (or the embedded default).
        running: String,
    },
    /// The configuration was rejected; the running one (this generation) stays.
    Rejected {
        /// The generation still serving.
        generation: u64,
        /// Every error, one line each.
        errors: Vec<String>,
    },
    /// Not attempted now (e.g. the daemon is stopping): 409.
    Refused(String),
    /// Nobody could perform it: 503.
    Unavailable(String),
}

impl ReloadOutcome {
    /// The status and plain-text body of the answer.
    pub fn response(&self) -> (u16, String) {
        match self {
            ReloadOutcome::Applied {
                generation,
                warnings,
            } => {
                let mut body = format!("reloaded: generation {generation}\n");
                for warning in warnings {
                    body.push_str("warning: ");
                    body.push_str(warning);
                    body.push('\n');
                }
                (200, body)
            }
            ReloadOutcome::WrongFile { given, running } => (
                409,
                format!(
                    "reload refused: {given} is not the configuration file of this daemon, \
                     which runs {running}\n"
                ),
            ),
            ReloadOutcome::Rejected { generation, errors } => {
                let mut body = format!(
                    "reload failed with {} error(s); still serving generation {generation}\n",
                    errors.len()
                );
                for error in errors {
                    body.push_str(error);
                    body.push('\n');
                }
                (422, body)
            }
            ReloadOutcome::Refused(why) => (409, format!("reload refused: {why}\n")),
            ReloadOutcome::Unavailable(why) => (503, format!("reload not performed: {why}\n")),
        }
    }
}

struct Slot {
    outcome: Mutex<Option<ReloadOutcome>>,
    waker: ExchangeWaker,
}

impl Slot {
    fn fill(&self, outcome: ReloadOutcome) {
        let mut slot = self
            .outcome
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if slot.is_none() {
            *slot = Some(outcome);
        }
        drop(slot);
        self.waker.wake();
    }
}

/// One admin request for a reload, handed to the daemon's control thread.
pub struct ReloadRequest {
    slot: Arc<Slot>,
    answered: bool,
    /// The configuration file the client means (the `Asycamore-Config` request header), to
    /// be compared with the daemon's; `None`: whatever file the daemon runs.
    config: Option<PathBuf>,
}

impl std::fmt::Debug for ReloadRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadRequest")
            .field("answered", &self.answered)
            .finish_non_exhaustive()
    }
}

impl ReloadRequest {
    /// A request and the exchange that answers the client once it is answered.
    pub fn new(waker: ExchangeWaker, config: Option<PathBuf>) -> (ReloadRequest, ReloadExchange) {
        let slot = Arc::new(Slot {
            outcome: Mutex::new(None),
            waker,
        });
        let request = ReloadRequest {
            slot: Arc::clone(&slot),
            answered: false,
            config,
        };
        (request, ReloadExchange { slot })
    }

    /// The configuration file the client named, if it named one.
    pub fn config(&self) -> Option<&Path> {
        self.config.as_deref()
    }

    /// Answers the client (from any thread).
    pub fn answer(mut self, outcome: ReloadOutcome) {
        self.answered = true;
        self.slot.fill(outcome);
    }
}

impl Drop for ReloadRequest {
    fn drop(&mut self) {
        if !self.answered {
            let why = "the daemon did not take the request".to_owned();
            self.slot.fill(ReloadOutcome::Unavailable(why));
        }
    }
}

/// The exchange of a `POST /reload`: waits (writing nothing) for the outcome.
pub struct ReloadExchange {
    slot: Arc<Slot>,
}

impl std::fmt::Debug for ReloadExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadExchange").finish_non_exhaustive()
    }
}

impl Exchange for ReloadExchange {
    fn on_body(&mut self, _: BodyEvent<'_>, _: &mut ResponseWriter<'_>) {}

    fn on_writable(&mut self, response: &mut ResponseWriter<'_>) {
        if response.head_written() {
            return;
        }
        let outcome = self
            .slot
            .outcome
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        if let Some(outcome) = outcome {
            let (status, body) = outcome.response();
            let _ = response.complete(
                status,
                &[("Content-Type", b"text/plain; charset=utf-8")],
                body.as_bytes(),
            );
        }
    }
}
