//! The exchange of a request that waits on the profiler thread, then sends the profile.

use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::Duration;

use super::session::{Outcome, Pending, Profile, Stop, slot};
use super::{Format, state_json, text};
use crate::service::{BodyEvent, Exchange, ExchangeWaker, Framing, ResponseWriter, Start};

/// What an exchange waits for.
pub(super) enum Wait {
    /// The profiler to start (answers the state); the limit, for the answer.
    Started(Arc<Pending<Result<(), String>>>, Duration),
    /// A finished profile, returned in this format.
    Done(Arc<Pending<Outcome>>, Format),
}

/// A request waiting on the profiler thread, then the profile going out.
pub struct ProfileExchange {
    wait: Wait,
    waker: Option<ExchangeWaker>,
    /// The profile being written, and how much of it is out.
    sending: Option<(Arc<Profile>, Format, usize)>,
    /// A timed profile's stop: the profile is abandoned when its client goes (closes its
    /// side: [`ResponseWriter::client_gone`]) or the exchange is dropped before the profile
    /// is done (the connection reset, the server stopping).
    stop: Option<Sender<Stop>>,
}

impl std::fmt::Debug for ProfileExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileExchange")
            .field(
                "sending",
                &self.sending.as_ref().map(|(_, format, at)| (format, at)),
            )
            .finish_non_exhaustive()
    }
}

impl ProfileExchange {
    pub(super) fn start(
        wait: Wait,
        waker: ExchangeWaker,
        stop: Option<Sender<Stop>>,
    ) -> Start<Self> {
        Start::Continue {
            body: crate::service::BodyMode::Ignore,
            exchange: ProfileExchange {
                wait,
                waker: Some(waker),
                sending: None,
                stop,
            },
        }
    }

    /// Tells a timed profile still collecting that nobody waits for it.
    fn abandon(&mut self) {
        if let (Some(stop), Wait::Done(done, _)) = (self.stop.take(), &self.wait) {
            if !done.is_set() {
                let _ = stop.send(Stop::Abandon);
            }
        }
    }

    fn send(&mut self, response: &mut ResponseWriter<'_>) {
        let Some((profile, format, sent)) = &mut self.sending else {
            return;
        };
        let bytes = profile.bytes(*format);
        let room = response.room();
        if room == 0 {
            return;
        }
        let end = bytes.len().min(*sent + room);
        response.write(&bytes[*sent..end]);
        *sent = end;
        if end == bytes.len() {
            response.finish();
            self.sending = None;
        }
    }
}

impl Drop for ProfileExchange {
    fn drop(&mut self) {
        self.abandon();
    }
}

impl Exchange for ProfileExchange {
    fn on_body(&mut self, _: BodyEvent<'_>, _: &mut ResponseWriter<'_>) {}

    fn on_writable(&mut self, response: &mut ResponseWriter<'_>) {
        if response.is_complete() {
            return;
        }
        if self.sending.is_some() {
            return self.send(response);
        }
        if response.head_written() {
            return;
        }
        if response.client_gone() && self.stop.is_some() {
            // Nobody will read the profile: stop collecting now, and free the profiler.
            self.abandon();
            response.abandon();
            return;
        }
        // The waker is handed over once: the thread wakes every waiter exactly once.
        match &self.wait {
            Wait::Started(started_ok, max) => match started_ok.poll(self.waker.take()) {
                None => {}
                Some(Ok(())) => {
                    let body = state_json(slot().as_ref(), *max);
                    let _ = response.complete(
                        200,
                        &[("Content-Type", b"application/json")],
                        body.as_bytes(),
                    );
                }
                Some(Err(message)) => {
                    text(response, 500, &message);
                }
            },
            Wait::Done(done, format) => match done.poll(self.waker.take()) {
                None => {}
                Some(Ok(profile)) => {
                    let bytes = profile.bytes(*format);
                    let headers: &[(&str, &[u8])] = match format {
                        Format::Pprof => &[
                            ("Content-Type", b"application/octet-stream"),
                            ("Content-Disposition", b"attachment; filename=\"profile\""),
                            ("X-Content-Type-Options", b"nosniff"),
                        ],
                        Format::Flamegraph => &[
                            ("Content-Type", b"image/svg+xml"),
                            ("X-Content-Type-Options", b"nosniff"),
                        ],
                    };
                    let _ = response.head(200, headers, Framing::Length(bytes.len() as u64));
                    self.sending = Some((profile, *format, 0));
                    self.send(response);
                }
                Some(Err(message)) => {
                    text(response, 500, &message);
                }
            },
        }
    }
}
