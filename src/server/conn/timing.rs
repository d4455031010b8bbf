//! When a connection's current wait ends (its one deadline, by phase) and what happens when
//! it does: a timed-out request is answered 408 (or 500 for a handler that never answered)
//! if none of its response has left, and the connection closes.

use std::time::Instant;

use crate::reactor::{Context, Next};
use crate::service::{Exchange, Handler};

use super::super::answer::Answer;
use super::super::stats::CloseReason;
use super::super::worker::WorkerTarget;
use super::{Conn, LINGER, Phase};

impl<E: Exchange> Conn<E> {
    pub(in crate::server) fn on_timeout<H: Handler<Exchange = E>>(
        &mut self,
        cx: &mut Context<'_, WorkerTarget<H>>,
    ) -> Next {
        let now = cx.now();
        if let Some(active) = self.exchange_timer_due(now) {
            // The exchange's own timer: it decides what the wait it timed means.
            active.reply.wake_at = None;
            active.poke = true;
            return self.drive(cx);
        }
        self.close_reason = self.timeout_reason(&cx.shared.limits);
        // A request cut off while its head or body was arriving is told why, as is one whose
        // handler never answered, if no byte of the response has left; otherwise just close.
        let answer = match self.phase {
            Phase::Head { .. } => Answer::REQUEST_TIMEOUT,
            // The handler had the whole body, or held it: the wait was the handler's.
            Phase::Serving
                if self
                    .active
                    .as_ref()
                    .is_some_and(|a| a.body_finished() || a.reply.body_held) =>
            {
                Answer::HANDLER_TIMEOUT
            }
            Phase::Serving => Answer::REQUEST_TIMEOUT,
            _ => return self.close(cx.shared),
        };
        if matches!(self.phase, Phase::Serving) && !self.retract_response() {
            return self.close(cx.shared);
        }
        self.fail(cx.shared, now, answer);
        self.drive(cx)
    }

    /// When the current wait times out. Output the client is not taking is timed by the
    /// write timeout whatever the phase: a client that pipelines and stops reading stalls
    /// the connection between requests too.
    pub(super) fn deadline(&self, limits: &super::super::Limits) -> Instant {
        let timeouts = &limits.timeouts;
        let write_blocked = self.output_pending() && !self.writable;
        match &self.phase {
            Phase::Lingering => self.progress_at + LINGER,
            _ if write_blocked => self.progress_at + timeouts.write,
            Phase::Idle => self.progress_at + timeouts.idle,
            Phase::Head { started } => *started + timeouts.head,
            Phase::Serving => match self.active.as_ref().and_then(|a| a.reply.wake_at) {
                // An exchange with a timer of its own times its waits itself.
                Some(at) => at,
                None => self.serving_deadline(limits).0,
            },
            Phase::Closing => self.progress_at + timeouts.write,
        }
    }

    /// The request being served, if its exchange's timer ([`ResponseWriter::wake_at`]) is
    /// what expired (output blocked on the client is timed first, by the write timeout).
    ///
    /// [`ResponseWriter::wake_at`]: crate::service::ResponseWriter::wake_at
    fn exchange_timer_due(
        &mut self,
        now: Instant,
    ) -> Option<&mut super::super::exchange::Active<E>> {
        if !matches!(self.phase, Phase::Serving) || (self.output_pending() && !self.writable) {
            return None;
        }
        self.active
            .as_deref_mut()
            .filter(|active| active.reply.wake_at.is_some_and(|at| at <= now))
    }

    /// While a request is served: the body timeout (silence), or the minimum body rate if
    /// the body falls behind it sooner.
    fn serving_deadline(&self, limits: &super::super::Limits) -> (Instant, CloseReason) {
        let grace = limits.timeouts.body;
        let silence = self.progress_at + grace;
        let too_slow = self
            .active
            .as_ref()
            .and_then(|active| active.rate_deadline(grace, limits.min_body_bytes_per_second));
        match too_slow {
            Some(at) if at < silence => (at, CloseReason::BodyTooSlow),
            _ => (silence, CloseReason::BodyTimeout),
        }
    }

    /// Output blocked on the client holds its body up (reading stops at the output mark), as
    /// does an exchange that holds the body: no fault of the body's pace. While either lasts,
    /// and once more when it ends, the body rate is measured afresh.
    pub(super) fn track_body_stall(&mut self, now: Instant) {
        let held = self.active.as_ref().is_some_and(|a| a.reply.body_held);
        let stalled = matches!(self.phase, Phase::Serving)
            && (held || self.output_pending() && !self.writable);
        if stalled || self.body_stalled {
            if let Some(active) = &mut self.active {
                active.restart_rate(now);
            }
        }
        self.body_stalled = stalled;
    }

    /// Why a timeout in the current phase closes the connection.
    pub(super) fn timeout_reason(&self, limits: &super::super::Limits) -> CloseReason {
        match self.phase {
            _ if self.output_pending() && !self.writable => CloseReason::WriteTimeout,
            Phase::Idle => CloseReason::IdleTimeout,
            Phase::Head { .. } => CloseReason::HeadTimeout,
            Phase::Serving => self.serving_deadline(limits).1,
            Phase::Closing => CloseReason::WriteTimeout,
            Phase::Lingering => self.close_reason,
        }
    }
}
