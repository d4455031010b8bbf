//! When an attempt fails: what it was ([`Failure`]), what it counts as, whether the request
//! is tried again (and on what), and otherwise the error answer or the abandoned response.

use std::io;
use std::sync::atomic::Ordering;

use crate::http1::response::ResponseError;
use crate::log_rate::warn_limited;
use crate::service::ResponseWriter;

use super::super::balance::NoServer;
use super::super::report::ErrorKind;
use super::decode::CorruptCoding;
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
    /// The body's transfer coding is corrupt.
    BadCoding(CorruptCoding),
    /// The response uses transfer codings the proxy cannot remove (their names).
    UnsupportedCoding(String),
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
            Failure::BadHead(_)
            | Failure::BadBody
            | Failure::BadCoding(_)
            | Failure::UnsupportedCoding(_) => ErrorKind::BadResponse,
            Failure::NoServer(_) => return None,
        })
    }

    /// Whether it reflects on the server (passive health), rather than on a pooled
    /// connection the server had every right to close.
    fn counts_against_server(&self, stale_pooled: bool) -> bool {
        !stale_pooled && !matches!(self, Failure::NoServer(_))
    }

    /// Whether the connection ended or broke (rather than timed out, or carried something
    /// wrong): what a pooled connection the server closed while idle looks like.
    fn is_closed_connection(&self) -> bool {
        matches!(
            self,
            Failure::Closed | Failure::Send(_) | Failure::Receive(_)
        )
    }

    /// Whether the request never reached a server (nothing of it was written).
    fn unreached(&self) -> bool {
        matches!(self, Failure::Connect(_) | Failure::Timeout(Wait::Connect))
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
            Failure::BadCoding(e) => write!(f, "sent a corrupt coded body ({})", e.0),
            Failure::UnsupportedCoding(codings) => write!(
                f,
                "sent a response with transfer coding \"{codings}\", which the proxy cannot \
                 decode"
            ),
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
        // A pooled connection that turns out closed before any answer byte: the server may
        // close an idle connection at any time (RFC 9112 9.3.1). A timeout is no such sign.
        let stale_pooled = self.reused && !self.received && failure.is_closed_connection();
        // The access log names the last server tried (a retry notes its own).
        self.note_upstream(response);
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
            // Every request to a failing upstream would log: once per interval (the metrics
            // count them all).
            warn_limited!(
                "proxy: upstream {} ({}): {failure}; trying again",
                self.upstream.settings.name,
                address.as_deref().unwrap_or("-"),
            );
            return self.on_writable(response);
        }
        warn_limited!(
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

    /// Whether to try again, and if so resets the attempt. A pooled connection found dead
    /// before any answer byte is retried once on a fresh connection to the same server, for
    /// an idempotent request that can still be sent whole. Otherwise only another server is
    /// tried, as `next_upstream` allows: a request that never reached a server on a connect
    /// failure (`connect`); one that may have reached it (partly or wholly sent) on a
    /// connection error (`error`) or a send or read timeout (`timeout`), and then only if
    /// it got no answer byte, can still be sent whole, and is idempotent (or
    /// `non_idempotent` is set); never beyond `next_upstream_tries` attempts.
    fn retry(&mut self, failure: &Failure, stale_pooled: bool, server: Option<usize>) -> bool {
        let resendable = self.replayable && !self.received;
        if let (true, false, true, Some(server)) = (
            stale_pooled,
            self.stale_retry_used,
            self.idempotent && resendable,
            server,
        ) {
            // The same server again, on a new connection (its pooled ones may all be stale).
            self.stale_retry_used = true;
            self.tried &= !(1 << server.min(63));
            self.fresh_only = true;
        } else {
            let settings = &self.upstream.settings;
            let policy = settings.next_upstream;
            let allowed = match failure {
                Failure::NoServer(_)
                | Failure::BadHead(_)
                | Failure::BadBody
                | Failure::BadCoding(_)
                | Failure::UnsupportedCoding(_) => false,
                _ if failure.unreached() => policy.connect,
                Failure::Timeout(_) => policy.timeout && resendable,
                _ => policy.error && resendable,
            };
            let may_resend = failure.unreached() || self.idempotent || policy.non_idempotent;
            let tries = settings.next_upstream_tries;
            if !allowed
                || !may_resend
                || (tries != 0 && self.attempts >= tries)
                || self.tried.count_ones() as usize >= self.upstream.balancer.len()
            {
                return false;
            }
            self.attempts += 1;
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
