//! What a connection looks like from outside, for introspection (`/debug/connections`).
//!
//! Read-only: describing a connection never changes it.

use std::net::SocketAddr;
use std::time::Instant;

use crate::service::{Exchange, ResponseState};

use super::super::stats::ConnectionInfo;
use super::{Conn, Phase};

impl<E: Exchange> Conn<E> {
    /// The connection as seen at `now` by worker `worker`.
    pub(in crate::server) fn info(&self, worker: usize, now: Instant) -> ConnectionInfo {
        let serving = matches!(self.phase, Phase::Serving);
        let state = match self.phase {
            Phase::Idle => "idle",
            Phase::Head { .. } => "reading head",
            Phase::Serving if self.active.as_ref().is_some_and(|a| !a.body_finished()) => {
                "reading body"
            }
            Phase::Serving
                if self.output_pending()
                    || self
                        .active
                        .as_ref()
                        .is_some_and(|a| matches!(a.reply.state, ResponseState::Done)) =>
            {
                "writing"
            }
            Phase::Serving => "handler",
            Phase::Closing | Phase::Lingering => "closing",
        };
        // Complete heads waiting behind the one being served (a cheap scan: only for
        // introspection, never on the request path).
        let waiting = self.input.as_ref().map_or(0, |input| {
            input
                .unread()
                .windows(4)
                .filter(|window| *window == b"\r\n\r\n")
                .count()
        });
        ConnectionInfo {
            worker,
            // A Unix connection has no network peer: shown as the unspecified address.
            peer: self.peer.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
            age: now.saturating_duration_since(self.opened_at),
            state,
            chunk: self
                .active
                .as_ref()
                .filter(|a| serving && a.chunks > 0)
                .map(|a| a.chunks),
            requests: self.requests,
            pipeline_depth: waiting + usize::from(serving),
        }
    }
}
