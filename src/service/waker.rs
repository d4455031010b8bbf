//! Waking an exchange from another thread: [`ExchangeWaker`], handed out by a
//! [`ResponseWriter`](super::ResponseWriter), and [`Wake`], the channel the server implements.
//!
//! A handler that waits on work done elsewhere (a reload, a profile) keeps a waker and calls
//! it when the result is ready; it never blocks its loop. Nothing here knows the server.

/// Schedules work on a connection from another thread; the server implements it.
pub trait Wake: Send + Sync {
    /// Asks the connection behind `token` to offer room to the exchange of request number
    /// `request` (ignored if that request has finished).
    fn wake(&self, token: usize, request: u64);
}

/// What a writer needs to hand out [`ExchangeWaker`]s: borrowed, so serving a request that
/// never asks for one costs nothing.
#[derive(Copy, Clone)]
pub struct WakeRef<'a> {
    /// The worker's wake channel.
    pub target: &'a std::sync::Arc<dyn Wake>,
    /// The connection.
    pub token: usize,
    /// The request's number on that connection.
    pub request: u64,
}

/// Wakes one exchange from any thread: [`Exchange::on_writable`](super::Exchange::on_writable)
/// runs on its connection's loop soon after [`wake`](Self::wake), unless the request has
/// finished. How an exchange waits on another thread's result without blocking its loop.
#[derive(Clone)]
pub struct ExchangeWaker {
    target: std::sync::Arc<dyn Wake>,
    token: usize,
    request: u64,
}

impl ExchangeWaker {
    /// A waker for request `request` of the connection `wake` names.
    pub(super) fn of(wake: WakeRef<'_>) -> Self {
        ExchangeWaker {
            target: std::sync::Arc::clone(wake.target),
            token: wake.token,
            request: wake.request,
        }
    }

    /// Schedules the exchange.
    pub fn wake(&self) {
        self.target.wake(self.token, self.request);
    }
}

impl std::fmt::Debug for ExchangeWaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeWaker")
            .field("token", &self.token)
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}
