//! Ending a request early: answering an error in place of a response none of which has left,
//! taking such a response back, and closing once the output is flushed. The state machine in
//! `conn.rs` and the timers in `timing.rs` decide when.

use std::time::Instant;

use crate::reactor::Next;
use crate::service::{Exchange, Handler, ResponseState};

use super::super::answer::Answer;
use super::super::stats::CloseReason;
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
}
