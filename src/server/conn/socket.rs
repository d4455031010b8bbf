//! The connection's socket I/O: one read into the pooled input buffer, writing the output
//! buffer and any file body, lingering close, and giving buffers back to the pool.
//!
//! Kept apart from the state machine in `conn.rs`, which decides when to call these; nothing
//! here parses or decides what to answer.

use std::io::{self, Write};
use std::net::Shutdown;
use std::time::Instant;

use crate::http1::ParseError;
use crate::reactor::{Next, ReadBuf};
use crate::service::{Exchange, Handler};

use super::super::sendfile::{CORK_AT_LEAST, copy_small, send_file};
use super::super::stamps::Clock;
use super::super::worker::Shared;
use super::{Conn, Need, Phase};

/// What one read produced.
pub(super) enum Fill {
    Got,
    Wait,
    Eof,
    Failed,
}

impl<E: Exchange> Conn<E> {
    /// Reads once. A short read means the socket is drained (no second read just to see
    /// `WouldBlock`): with edge-triggered polling, new data raises a new event.
    ///
    /// Always inlined: it is on every request's path, and with a second (cold) caller the
    /// compiler made it a call, which cost about 50 instructions a keep-alive request.
    #[inline(always)]
    pub(super) fn fill<H: Handler<Exchange = E>>(&mut self, shared: &mut Shared<H>) -> Fill {
        if !self.readable || self.peer_closed {
            return if self.peer_closed {
                Fill::Eof
            } else {
                Fill::Wait
            };
        }
        let input = self.input.get_or_insert_with(|| shared.pool.take_read());
        let spare = input.spare();
        if spare == 0 {
            // A head that fills the buffer is rejected by the parser before this can happen;
            // a full buffer here means the parser could not use it yet.
            return Fill::Wait;
        }
        match input.read_from(&mut self.stream) {
            Ok(0) => {
                self.peer_closed = true;
                self.readable = false;
                Fill::Eof
            }
            Ok(n) => {
                // The arrival of what it brought (see `server::stamps`).
                shared.timing.clock.after_read();
                if n < spare && !self.hangup_seen {
                    self.readable = false;
                }
                if matches!(self.phase, Phase::Serving) {
                    self.progress_at = shared.timing.clock.now;
                }
                Fill::Got
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                self.readable = false;
                Fill::Wait
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => Fill::Got,
            Err(_) => Fill::Failed,
        }
    }

    /// A head still incomplete fills the read buffer although the head limit allows more:
    /// a reload raised `max_head_bytes` while the head was arriving (buffers are sized for
    /// the limit). The head moves into a buffer of the new size and goes on arriving under
    /// the new limit, instead of waiting for a byte that can never be read until it times out.
    #[cold]
    pub(super) fn outgrow_read_buffer<H: Handler<Exchange = E>>(
        &mut self,
        shared: &mut Shared<H>,
        now: Instant,
    ) -> Need {
        let Some(old) = self.input.take() else {
            return Need::Input;
        };
        if shared.pool.read_capacity() <= old.capacity() {
            // No larger buffer to move to: the codec said the head is within the limit, so
            // this cannot happen with buffers sized for it; refuse rather than wait.
            self.input = Some(old);
            return self.fail(shared, now, ParseError::HeadTooLarge.into());
        }
        let mut grown = shared.pool.take_read();
        let moved = grown.put(old.unread());
        debug_assert!(moved, "a larger buffer holds a smaller one's bytes");
        shared.pool.give_read(old);
        self.input = Some(grown);
        Need::Input
    }

    /// The client closed its side while its request is served, the body read: reads what it
    /// sent before (pipelined requests), and if nothing was left, tells the exchange
    /// ([`ResponseWriter::client_gone`](crate::service::ResponseWriter::client_gone)): a
    /// handler waiting on something slow may give up. `Err` if the read failed (a reset).
    pub(super) fn client_gone<H: Handler<Exchange = E>>(
        &mut self,
        shared: &mut Shared<H>,
    ) -> Result<(), ()> {
        if !self
            .active
            .as_ref()
            .is_some_and(|a| a.body_finished() && !a.reply.client_gone)
        {
            return Ok(());
        }
        let gone = match self.fill(shared) {
            Fill::Eof => self.input.as_ref().is_none_or(|input| input.is_empty()),
            Fill::Got | Fill::Wait => false,
            Fill::Failed => return Err(()),
        };
        if let (true, Some(active)) = (gone, self.active.as_deref_mut()) {
            active.reply.client_gone = true;
            active.poke = true;
        }
        Ok(())
    }

    pub(super) fn start_linger<H: Handler<Exchange = E>>(
        &mut self,
        shared: &mut Shared<H>,
        now: Instant,
    ) -> Option<Next> {
        let unread = self.input.as_ref().is_some_and(|input| !input.is_empty());
        // A client cut off by an error (a body refused mid-way, say) is likely still sending:
        // closing at once would turn its next segment into a reset that can destroy the
        // error response before it is read.
        let may_send_more = self.refused || unread || self.readable;
        if self.peer_closed || !may_send_more {
            // Nothing of the client's is left unread, so closing cannot turn into a reset.
            return Some(self.close(shared));
        }
        if self.stream.shutdown(Shutdown::Write).is_err() {
            return Some(self.close(shared));
        }
        self.phase = Phase::Lingering;
        self.progress_at = now;
        None
    }

    pub(super) fn flush_if_any(&mut self, clock: &mut Clock) -> io::Result<bool> {
        if self.output_pending() {
            self.flush(clock)
        } else {
            Ok(true)
        }
    }

    /// Writes pending output, then any file body. `Ok(true)`: all sent; `Ok(false)`: the
    /// socket is full. The clock is read after each write system call (`server::stamps`).
    pub(super) fn flush(&mut self, clock: &mut Clock) -> io::Result<bool> {
        if let (Some(active), Some(output)) = (&mut self.active, &mut self.output) {
            if let Some(body) = &active.reply.file {
                if copy_small(body, output)? {
                    active.reply.file = None; // read whole: closes the file
                }
            }
        }
        let large_file = self
            .active
            .as_ref()
            .and_then(|active| active.reply.file.as_ref())
            .is_some_and(|file| file.remaining >= CORK_AT_LEAST);
        if !self.corked && large_file && self.stream.is_tcp() {
            // Hold partial segments back while the head and a large file go out, so they
            // leave in full-sized segments rather than one per write and per sendfile call.
            socket2::SockRef::from(&self.stream).set_tcp_cork(true)?;
            self.corked = true;
        }
        let file_follows = self.active.as_ref().is_some_and(|a| a.reply.file.is_some());
        // The last bytes before a close: held for the FIN, which the kernel then sets on
        // their segment (one packet instead of two for every connection-per-request).
        let fin_follows = !file_follows && matches!(self.phase, Phase::Closing);
        if let Some(output) = &mut self.output {
            while self.written < output.len() {
                if !self.writable {
                    return Ok(false);
                }
                let pending = &output[self.written..];
                let sent = if (file_follows && !self.corked || fin_follows) && self.stream.is_tcp()
                {
                    // The head of a (small) file body: let the kernel hold it for the file's
                    // bytes, so both leave in one segment; or the last bytes, for the FIN.
                    socket2::SockRef::from(&self.stream).send_with_flags(pending, libc::MSG_MORE)
                } else {
                    self.stream.write(pending)
                };
                clock.after_write();
                match sent {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        self.written += n;
                        self.progress_at = clock.now;
                        if let Some(active) = &mut self.active {
                            active.poke = true;
                            if active.unsent_from.is_some_and(|start| self.written > start) {
                                active.unsent_from = None;
                            }
                        }
                    }
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                        self.writable = false;
                    }
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) => return Err(err),
                }
            }
            output.clear();
            self.written = 0;
            // Everything before the response's start went out; the response itself had no
            // bytes yet (or `unsent_from` would be `None`), so it now starts at the front.
            if let Some(active) = &mut self.active {
                active.unsent_from = active.unsent_from.map(|_| 0);
            }
        }
        if let Some(body) = self.active.as_mut().and_then(|a| a.reply.file.as_mut()) {
            let sent = send_file(&self.stream, body, &mut self.writable);
            clock.after_write();
            if !sent? {
                return Ok(false);
            }
            self.progress_at = clock.now;
            // Sent: dropping it closes the file.
            if let Some(active) = &mut self.active {
                active.reply.file = None;
            }
        }
        if self.corked {
            // Uncorking pushes the last partial segment out at once.
            socket2::SockRef::from(&self.stream).set_tcp_cork(false)?;
            self.corked = false;
        }
        Ok(true)
    }

    pub(super) fn output_pending(&self) -> bool {
        self.output
            .as_ref()
            .is_some_and(|out| self.written < out.len())
            || self.active.as_ref().is_some_and(|a| a.reply.file.is_some())
    }

    /// Gives buffers with nothing in them back to the pool.
    pub(super) fn release_idle_buffers<H: Handler<Exchange = E>>(
        &mut self,
        shared: &mut Shared<H>,
    ) {
        if self.input.as_ref().is_some_and(ReadBuf::is_empty) {
            if let Some(input) = self.input.take() {
                shared.pool.give_read(input);
            }
        }
        if !self.output_pending() {
            if let Some(output) = self.output.take() {
                shared.pool.give_write(output);
                self.written = 0;
            }
        }
    }

    /// Ends the connection, returning its buffers to the pool.
    pub(super) fn close<H: Handler<Exchange = E>>(&mut self, shared: &mut Shared<H>) -> Next {
        self.release_active(shared);
        if let Some(stats) = &mut shared.stats {
            stats.closed(self.close_reason, self.requests);
        }
        if let Some(input) = self.input.take() {
            shared.pool.give_read(input);
        }
        if let Some(output) = self.output.take() {
            shared.pool.give_write(output);
        }
        shared.connection_closed();
        Next::Remove
    }
}
