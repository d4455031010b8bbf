//! When an attempt fails: what it was ([`Failure`]), what it counts as, whether the request
//! is tried again (and on what), and otherwise the error answer or the abandoned response.

use std::io;
use std::sync::atomic::Ordering;

use crate::http1::response::ResponseError;
use crate::service::ResponseWriter;

use super::super::balance::NoServer;
use super::super::report::ErrorKind;
use super::{ProxyExchange, Relay, Wait};

/// Why an attempt failed.
#[derive(Debug)]
pub(super) enum Failure {
    Connect(io::Error),
    Timeout(Wait),
    Send(io::Error),
    /// The connection ended before the response was complete.
    Closed,
    Receive(io::Error),
    BadHead(ResponseError),
    BadBody,
    NoServer(NoServer),
}

impl Failure {
    /// The status a client gets when no response has started.
    fn status(&self) -> u16 {
        match self {
            Failure::Timeout(_) => 504,
            Failure::NoServer(NoServer::AllBusy) => 503,
            _ => 502,
        }
    }

    /// How metrics count it; `None` when no server was involved.
    fn kind(&self) -> Option<ErrorKind> {
        Some(match self {
            Failure::Connect(_) => ErrorKind::Connect,
            Failure::Timeout(Wait::Connect) => ErrorKind::ConnectTimeout,
            Failure::Timeout(Wait::Send) => ErrorKind::SendTimeout,
            Failure::Timeout(Wait::Receive) => ErrorKind::ReadTimeout,
            Failure::Send(_) => ErrorKind::Send,
            Failure::Closed => ErrorKind::Closed,
            Failure::Receive(_) => ErrorKind::Receive,
            Failure::BadHead(_) | Failure::BadBody => ErrorKind::BadResponse,
            Failure::NoServer(_) => return None,
        })
    }

    /// Whether it reflects on the server (passive health), rather than on a pooled
    /// connection the server had every right to close.
    fn counts_against_server(&self, stale_pooled: bool) -> bool {
        !stale_pooled && !matches!(self, Failure::NoServer(_))
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect(e) => write!(f, "connect failed: {e}"),
            Failure::Timeout(Wait::Connect) => f.write_str("connect timed out"),
            Failure::Timeout(Wait::Send) => f.write_str("timed out taking the request"),
            Failure::Timeout(Wait::Receive) => f.write_str("timed out sending the response"),
            Failure::Send(e) => write!(f, "sending the request failed: {e}"),
            Failure::Closed => f.write_str("closed the connection before the response ended"),
            Failure::Receive(e) => write!(f, "reading the response failed: {e}"),
            Failure::BadHead(e) => write!(f, "sent an invalid response head ({e})"),
            Failure::BadBody => f.write_str("sent an invalid chunked body"),
            Failure::NoServer(NoServer::AllBusy) => {
                f.write_str("every server is at its max_connections")
            }
            Failure::NoServer(NoServer::AllTried) => f.write_str("no server left to try"),
        }
    }
}

impl ProxyExchange {
    /// An attempt failed: retried on another server when that is safe, else answered (or,
    /// once the response has begun, abandoned).
    pub(super) fn failed(&mut self, response: &mut ResponseWriter<'_>, failure: Failure) {
        let stale_pooled = self.reused && !self.received;
        let server = self.claim.as_ref().map(|claim| claim.server);
        let address = server.map(|s| {
            self.upstream
                .balancer
                .server(s)
                .settings
                .address
                .to_string()
        });
        if let (Some(server), Some(kind)) = (server, failure.kind()) {
            self.upstream.balancer.server(server).counters.error(kind);
            if failure.counts_against_server(stale_pooled) {
                self.upstream.balancer.failed(server);
            }
        }
        self.close_conn(response);
        let head_sent = !matches!(self.relay, Relay::AwaitingHead);
        if !head_sent && self.retry(&failure, stale_pooled, server) {
            self.upstream
                .balancer
                .counters
                .retries
                .fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "proxy: upstream {} ({}): {failure}; trying again",
                self.upstream.settings.name,
                address.as_deref().unwrap_or("-"),
            );
            return self.on_writable(response);
        }
        log::warn!(
            "proxy: upstream {} ({}): {failure}; {}",
            self.upstream.settings.name,
            address.as_deref().unwrap_or("-"),
            if head_sent {
                "response cut short"
            } else {
                "answered with an error"
            },
        );
        if head_sent {
            response.abandon();
        } else {
            let status = failure.status();
            let body: &[u8] = match status {
                504 => b"upstream timed out\n",
                503 => b"upstream busy\n",
                _ => b"bad gateway\n",
            };
            let _ = response.complete(status, &[("Content-Type", b"text/plain")], body);
        }
        self.relay = Relay::Failed;
        self.timer = None;
        response.wake_at(None);
        if response.body_held() {
            response.release_body();
        }
    }

    /// Whether to try again, and if so resets the attempt: a connection that never reached
    /// the upstream can be retried for any request; one that did, only for an idempotent
    /// request that can still be sent whole and got no answer byte. A pooled connection
    /// found dead is retried once on a fresh connection to the same server.
    fn retry(&mut self, failure: &Failure, stale_pooled: bool, server: Option<usize>) -> bool {
        let nothing_sent = matches!(
            failure,
            Failure::Connect(_) | Failure::Timeout(Wait::Connect)
        );
        let resendable = self.idempotent && self.replayable && !self.received;
        let allowed = match failure {
            Failure::NoServer(_) | Failure::BadHead(_) | Failure::BadBody => false,
            _ => nothing_sent || resendable,
        };
        if !allowed {
            return false;
        }
        if let (true, false, Some(server)) = (stale_pooled, self.stale_retry_used, server) {
            // The same server again, on a new connection (its pooled ones may all be stale).
            self.stale_retry_used = true;
            self.tried &= !(1 << server.min(63));
            self.fresh_only = true;
        } else if self.tried.count_ones() as usize >= self.upstream.balancer.len() {
            return false;
        }
        self.sent = 0;
        self.received = false;
        self.reused = false;
        self.established = false;
        (self.start, self.end) = (0, 0);
        self.timer = None;
        true
    }
}
