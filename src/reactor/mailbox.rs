//! Messages from other threads into a loop: a channel plus the loop's `mio::Waker`.
//!
//! The sender wakes the loop after each send; the loop drains the mailbox when its turn
//! reports `woken`. Messages never go through a target's callback directly: the owner of the
//! loop decides what a message means (often a [`super::Reactor::for_each`] broadcast).

use std::io;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};

use mio::Waker;

/// The sending half: cloneable, usable from any thread.
pub struct MailSender<M> {
    tx: Sender<M>,
    waker: Arc<Waker>,
}

impl<M> Clone for MailSender<M> {
    fn clone(&self) -> Self {
        MailSender {
            tx: self.tx.clone(),
            waker: Arc::clone(&self.waker),
        }
    }
}

impl<M> MailSender<M> {
    /// Queues `message` and wakes the loop. Fails if the loop (its mailbox) is gone.
    pub fn send(&self, message: M) -> io::Result<()> {
        self.tx
            .send(message)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the loop has stopped"))?;
        self.waker.wake()
    }
}

/// The receiving half, owned by the loop's thread.
pub struct Mailbox<M> {
    rx: Receiver<M>,
}

impl<M> Mailbox<M> {
    /// The next queued message, without waiting.
    pub fn try_recv(&self) -> Option<M> {
        self.rx.try_recv().ok()
    }
}

pub(super) fn channel<M>(waker: Arc<Waker>) -> (MailSender<M>, Mailbox<M>) {
    let (tx, rx) = mpsc::channel();
    (MailSender { tx, waker }, Mailbox { rx })
}
