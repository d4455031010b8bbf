//! Ending a request: finishing one that is over (counting and logging it, giving its state
//! back), answering an error in place of a response none of which has left, taking such a
//! response back, and closing once the output is flushed. The state machine in `conn.rs` and
//! the timers in `timing.rs` decide when.

use std::time::Instant;

use crate::reactor::Next;
use crate::service::{Exchange, Handler, ResponseState};

use super::super::access::Ended;
use super::super::answer::Answer;
use super::super::exchange::{Active, BodyReader};
use super::super::stats::{CloseReason, Finished};
use super::super::worker::Shared;
use super::{Conn, Need, Phase};

impl<E: Exchange> Conn<E> {
    /// Answers an error (none of the current response having been sent), then closes.
    pub(super) fn fail<H: Handler<Exchange = E>>(
        &mut self,
        shared: &mut Shared<H>,
        now: Instant,
        answer: Answer,
    ) -> Need {
        shared.refresh_date(now);
        let output = self.output.get_or_insert_with(|| shared.pool.take_write());
        answer.write(output, shared.date.header_line());
        self.refused = true;
        if let (Some(kind), Some(stats)) = (answer.kind, &mut shared.stats) {
            stats.parse_error(kind);
        }
        match answer.status {
            413 | 431 => self.close_reason = CloseReason::TooLarge,
            _ if answer.kind.is_some() => self.close_reason = CloseReason::ParseError,
            _ => {}
        }
        if let Some(input) = &mut self.input {
            let n = input.unread().len();
            input.consume(n);
        }
        self.abort(now)
    }

    /// A body that cannot be read on (malformed, too large): answered with its own status if
    /// none of the response has left, else the connection just ends.
    pub(super) fn refuse_body<H: Handler<Exchange = E>>(
        &mut self,
        shared: &mut Shared<H>,
        now: Instant,
        answer: Answer,
    ) -> Need {
        if self.retract_response() {
            self.fail(shared, now, answer)
        } else {
            self.abort(now)
        }
    }

    /// Takes back the current response if none of it has been sent, so an error found while
    /// reading the body can still be answered with its own status. False if bytes are out.
    pub(super) fn retract_response(&mut self) -> bool {
        let Some(active) = self.active.as_deref_mut() else {
            return false;
        };
        let Some(start) = active.unsent_from else {
            return false;
        };
        if let Some(output) = &mut self.output {
            output.truncate(start);
        }
        active.exchange = None;
        active.reply.state = ResponseState::Head;
        true
    }

    /// Ends serving: flush what is there, then close.
    pub(super) fn abort(&mut self, now: Instant) -> Need {
        self.phase = Phase::Closing;
        self.progress_at = now;
        Need::Nothing
    }

    /// Ends the connection for `reason` (unless a reason was already decided).
    pub(super) fn close_for<H: Handler<Exchange = E>>(
        &mut self,
        reason: CloseReason,
        shared: &mut Shared<H>,
    ) -> Next {
        if self.close_reason == CloseReason::Peer {
            self.close_reason = reason;
        }
        self.close(shared)
    }

    /// The request is over (response complete, body read or given up on): counts and logs
    /// it, gives its state back, and goes on to the next request or closes.
    pub(super) fn finish<H: Handler<Exchange = E>>(
        &mut self,
        shared: &mut Shared<H>,
        active: Box<Active<E>>,
        now: Instant,
    ) -> Need {
        self.requests += 1;
        self.batch += 1;
        let route = shared.stats.as_ref().and(active.route_stats);
        if let (Some(stats), Some(route)) = (&mut shared.stats, route) {
            stats.finished(&Finished {
                route,
                method: active.method,
                status: active.reply.status,
                request_body_bytes: active.body_received(),
                response_body_bytes: active.reply.body_bytes,
            });
        }
        let format = shared.access_log.as_ref().map(|log| log.format);
        if route.is_some() || format.is_some() {
            // Its duration is known once its last byte is written: at the end of this
            // `drive` call (`server::stamps`), or now if none of it is left to write.
            let end = if self.output_pending() {
                None
            } else {
                shared.timing.clock.wrote
            };
            let ended = Ended {
                status: active.reply.status,
                bytes: active.reply.body_bytes,
                upstream: active.reply.upstream.as_ref(),
            };
            let line = &mut self.log_line;
            shared
                .timing
                .stamps
                .stage(active.started, end, route, |text| {
                    format.and_then(|format| line.stage(format, &ended, text))
                });
        }
        let active_close = active.reply.cx.close;
        let close = active_close || matches!(active.body, BodyReader::Abandoned);
        recycle(shared, active);
        shared.outbounds.close_lent(self.token, &mut self.lent);
        self.progress_at = now;
        if active_close {
            self.close_reason = if shared.draining {
                CloseReason::Drain
            } else {
                CloseReason::Limit
            };
        }
        if close {
            self.phase = Phase::Closing;
            Need::Nothing
        } else {
            // Also while stopping: requests pipelined behind this one were sent before the
            // stop; `drive` closes once nothing more has arrived.
            self.phase = Phase::Idle;
            Need::Again
        }
    }

    /// Gives the finished request's state back to the worker's pool, so an idle
    /// connection holds none (its handler exchange is dropped first).
    pub(super) fn release_active<H: Handler<Exchange = E>>(&mut self, shared: &mut Shared<H>) {
        if let Some(active) = self.active.take() {
            recycle(shared, active);
        }
        shared.outbounds.close_lent(self.token, &mut self.lent);
    }
}

/// Returns a request's state to the worker's pool, first dropping what the handler held
/// (its exchange, an open file) so nothing outlives the request.
pub(super) fn recycle<H: Handler>(shared: &mut Shared<H>, mut active: Box<Active<H::Exchange>>) {
    active.exchange = None;
    active.reply.file = None;
    if shared.actives.len() < super::ACTIVE_POOL {
        shared.actives.push(active);
    }
}
