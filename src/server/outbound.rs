//! The worker's outbound connections: the sockets exchanges open to other servers (the
//! reverse proxy's upstreams), their keep-alive pool, and the small reactor target that
//! carries each one's readiness to the exchange using it.
//!
//! A socket lives here, in the worker's [`Outbounds`], not in its reactor target, so the
//! exchange can read and write it during its own callbacks (through [`OutboundAccess`], the
//! server's implementation of [`Outbound`]); the target ([`OutboundRef`]) only registers it,
//! wakes the client connection that uses it when it turns ready, and times it while it is
//! parked. Nothing here parses HTTP; nothing here blocks.
//!
//! Ownership: a connection is lent to the request whose exchange opened or checked it out
//! (the slot names the client connection as its owner, which counts what it holds and, if
//! anything is left when the request ends, closes every slot it owns);
//! parked, it belongs to the pool, which drops it when the peer closes it, when it has been
//! idle too long, or when the handler changes (a reload: its upstreams may be gone).

use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::time::Instant;

use mio::net::{TcpStream, UnixStream};
use slab::Slab;

use crate::reactor::{BufPool, Context, Next, Readiness, Token};
use crate::service::{Destination, Handler, Outbound, OutboundId, Parking, READ_BUFFER_LEN};

/// Read buffers kept for reuse per worker (beyond: freed).
const CACHED_READ_BUFFERS: usize = 64;

use super::stats::OutboundStats;
use super::stream::Stream;
use super::worker::WorkerTarget;

/// Every outbound connection of one worker.
#[derive(Default)]
pub(super) struct Outbounds {
    slots: Slab<Slot>,
    next_generation: u32,
    /// Parked connections as (key, slot index), most recently parked last.
    parked: Vec<(u64, usize)>,
    /// New connections still needing their reactor target.
    to_spawn: Vec<OutboundRef>,
    /// Targets to dispatch: a parked one arms its idle timer, a closed one is removed.
    to_wake: Vec<Token>,
    /// Bumped when the handler changes: connections opened before are not parked again.
    epoch: u64,
    /// Read buffers exchanges gave back, still initialized (zeroed once, when made).
    read_buffers: Vec<Vec<u8>>,
}

struct Slot {
    /// `None` once closed (the descriptor is closed at once; the slot goes with its target).
    stream: Option<Stream>,
    generation: u32,
    /// Its reactor target's token, once the target is in the loop.
    token: Option<Token>,
    /// The client connection whose exchange uses it; `None` while parked.
    owner: Option<Token>,
    /// While parked: when it is dropped unused.
    idle_until: Option<Instant>,
    epoch: u64,
    /// The pool key the exchange gave it.
    key: u64,
    /// Readiness the poller reported and no call has used up since (edge-triggered: a read
    /// or write that would block clears it, the next event sets it): an exchange that asks
    /// when nothing has changed is told `WouldBlock` without a system call.
    readable: bool,
    writable: bool,
    /// The poller reported the peer's close (or an error).
    peer_closed: bool,
}

/// The reactor target of one outbound connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) struct OutboundRef {
    index: usize,
    generation: u32,
}

impl OutboundRef {
    fn of(id: OutboundId) -> Self {
        OutboundRef {
            index: (id.get() & u64::from(u32::MAX)) as usize,
            generation: (id.get() >> 32) as u32,
        }
    }

    fn id(self) -> OutboundId {
        OutboundId::new((u64::from(self.generation) << 32) | self.index as u64)
    }
}

impl Outbounds {
    fn slot(&mut self, at: OutboundRef) -> Option<&mut Slot> {
        self.slots
            .get_mut(at.index)
            .filter(|slot| slot.generation == at.generation)
    }

    fn slot_of(&mut self, id: OutboundId) -> io::Result<&mut Slot> {
        self.slot(OutboundRef::of(id))
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }

    /// Closes the connection now; its target is removed on its next dispatch.
    fn close(&mut self, at: OutboundRef) {
        let Some(slot) = self.slot(at) else {
            return;
        };
        slot.stream = None;
        slot.owner = None;
        slot.idle_until = None;
        if let Some(token) = slot.token {
            self.to_wake.push(token);
        }
        self.parked.retain(|&(_, index)| index != at.index);
    }

    /// A reload: idle connections of the old configuration close now, and those in use are
    /// closed instead of parked when their request ends.
    pub(super) fn retire(&mut self) {
        self.epoch += 1;
        while let Some(&(_, index)) = self.parked.last() {
            let generation = self.slots[index].generation;
            self.close(OutboundRef { index, generation });
        }
    }

    /// Open and parked connections per pool key, sorted by key.
    pub(super) fn per_key(&self) -> Vec<OutboundStats> {
        let mut stats: Vec<OutboundStats> = Vec::new();
        for (_, slot) in self.slots.iter().filter(|(_, slot)| slot.stream.is_some()) {
            let at = match stats.iter().position(|s| s.key == slot.key) {
                Some(at) => at,
                None => {
                    stats.push(OutboundStats {
                        key: slot.key,
                        open: 0,
                        idle: 0,
                    });
                    stats.len() - 1
                }
            };
            stats[at].open += 1;
            stats[at].idle += u64::from(slot.idle_until.is_some());
        }
        stats.sort_by_key(|s| s.key);
        stats
    }

    /// Hands the loop what exchanges asked of it during a dispatch: targets for new
    /// connections, and wakes for parked and closed ones.
    #[inline]
    pub(super) fn settle<H: Handler>(cx: &mut Context<'_, WorkerTarget<H>>) {
        let set = &cx.shared.outbounds;
        if !set.to_spawn.is_empty() || !set.to_wake.is_empty() {
            Self::hand_over(cx);
        }
    }

    /// `settle`'s work, apart so the check every dispatch makes stays a few instructions.
    #[cold]
    fn hand_over<H: Handler>(cx: &mut Context<'_, WorkerTarget<H>>) {
        let set = &mut cx.shared.outbounds;
        let mut spawn = std::mem::take(&mut set.to_spawn);
        let mut wake = std::mem::take(&mut set.to_wake);
        for at in spawn.drain(..) {
            cx.spawn(WorkerTarget::Outbound(at));
        }
        for token in wake.drain(..) {
            cx.wake(token);
        }
        let set = &mut cx.shared.outbounds;
        set.to_spawn = spawn;
        set.to_wake = wake;
    }

    /// Closes what a finished request of the client connection `owner` still holds (`lent`
    /// of them). Only an exchange dropped with connections in hand leaves any (its client
    /// went away, an error), so the scan of every slot is off the path of a normal request.
    #[inline]
    pub(super) fn close_lent(&mut self, owner: Token, lent: &mut u16) {
        if std::mem::take(lent) != 0 {
            self.close_owned_by(owner);
        }
    }

    #[cold]
    fn close_owned_by(&mut self, owner: Token) {
        let held: Vec<OutboundRef> = self
            .slots
            .iter()
            .filter(|(_, slot)| slot.owner == Some(owner))
            .map(|(index, slot)| OutboundRef {
                index,
                generation: slot.generation,
            })
            .collect();
        for at in held {
            self.close(at);
        }
    }

    /// Tokens of targets to dispatch now (outside a dispatch: after `retire`).
    pub(super) fn take_wakes(&mut self) -> Vec<Token> {
        std::mem::take(&mut self.to_wake)
    }
}

impl OutboundRef {
    /// First turn in the loop: register the socket (both directions, edge-triggered).
    pub(super) fn on_spawn<H: Handler>(self, cx: &mut Context<'_, WorkerTarget<H>>) -> Next {
        let token = cx.token();
        let registry = cx.registry();
        let set = &mut cx.shared.outbounds;
        let Some(slot) = set.slot(self) else {
            return Next::Remove;
        };
        let interest = mio::Interest::READABLE | mio::Interest::WRITABLE;
        let registered = match &mut slot.stream {
            Some(stream) => registry.register(stream, token, interest).is_ok(),
            None => false,
        };
        if registered {
            slot.token = Some(token);
            return Next::Keep;
        }
        // Closed before it reached the loop, or refused by the poller (then never to be
        // ready: its exchange's next write fails and it goes on from there).
        let owner = slot.owner.take();
        set.slots.remove(self.index);
        if let Some(owner) = owner {
            cx.wake(owner);
        }
        Next::Remove
    }

    pub(super) fn on_ready<H: Handler>(
        self,
        readiness: Readiness,
        cx: &mut Context<'_, WorkerTarget<H>>,
    ) -> Next {
        let set = &mut cx.shared.outbounds;
        let Some(slot) = set.slot(self) else {
            return Next::Remove;
        };
        if slot.stream.is_none() {
            set.slots.remove(self.index);
            return Next::Remove;
        }
        let (could_read, could_write) = (slot.readable, slot.writable);
        slot.peer_closed |= readiness.read_closed || readiness.error;
        slot.readable |= readiness.readable || readiness.read_closed || readiness.error;
        slot.writable |= readiness.writable || readiness.error;
        if let Some(owner) = slot.owner {
            // Only news wakes the exchange: it reads and writes until told `WouldBlock` (or
            // stops for reasons of its own that bring it back), so readiness it already had
            // changes nothing; an acknowledged send's writable edge costs no dispatch.
            if (slot.readable && !could_read) || (slot.writable && !could_write) {
                cx.wake(owner);
            }
            return Next::Keep;
        }
        let set = &mut cx.shared.outbounds;
        if readiness.readable || readiness.read_closed || readiness.error {
            // Parked: the peer closed it (or sent what nobody asked for).
            set.close(self);
            set.slots.remove(self.index);
            return Next::Remove;
        }
        Next::Keep
    }

    pub(super) fn on_timeout<H: Handler>(self, cx: &mut Context<'_, WorkerTarget<H>>) -> Next {
        let now = cx.now();
        let set = &mut cx.shared.outbounds;
        match set.slot(self) {
            None => Next::Remove,
            Some(slot) if slot.idle_until.is_some_and(|until| until <= now) => {
                set.close(self);
                set.slots.remove(self.index);
                Next::Remove
            }
            Some(_) => Next::Keep,
        }
    }

    /// Parked (arm the idle timer) or closed (leave the loop).
    pub(super) fn on_wake<H: Handler>(self, cx: &mut Context<'_, WorkerTarget<H>>) -> Next {
        let set = &mut cx.shared.outbounds;
        let Some(slot) = set.slot(self) else {
            return Next::Remove;
        };
        if slot.stream.is_none() {
            set.slots.remove(self.index);
            return Next::Remove;
        }
        let idle_until = slot.idle_until;
        if idle_until.is_some() {
            cx.set_deadline(idle_until);
        }
        Next::Keep
    }
}

/// The server's [`Outbound`], lent to one exchange for one callback.
pub(super) struct OutboundAccess<'a> {
    pub(super) set: &'a mut Outbounds,
    /// How many connections the request holds (its connection closes them when it ends).
    pub(super) lent: &'a mut u16,
    /// The client connection to wake.
    pub(super) owner: Token,
    pub(super) pool: &'a mut BufPool,
    pub(super) now: Instant,
}

impl OutboundAccess<'_> {
    /// `id` is given back (parked or closed): no longer counted as the request's.
    fn forget(&mut self, id: OutboundId) {
        let owned = self
            .set
            .slot(OutboundRef::of(id))
            .is_some_and(|slot| slot.owner == Some(self.owner));
        if owned {
            *self.lent = self.lent.saturating_sub(1);
        }
    }
}

impl Outbound for OutboundAccess<'_> {
    fn connect(&mut self, to: Destination<'_>, key: u64) -> io::Result<OutboundId> {
        let stream = match to {
            Destination::Tcp(addr) => {
                let stream = TcpStream::connect(addr)?;
                // Requests are written whole; small ones must not wait for an ACK.
                stream.set_nodelay(true)?;
                Stream::Tcp(stream)
            }
            Destination::Unix(path) => Stream::Unix(UnixStream::connect(path)?),
        };
        let set = &mut *self.set;
        let generation = set.next_generation;
        set.next_generation = set.next_generation.wrapping_add(1);
        let index = set.slots.insert(Slot {
            stream: Some(stream),
            generation,
            token: None,
            owner: Some(self.owner),
            idle_until: None,
            epoch: set.epoch,
            key,
            // Nothing to read yet, and nothing can be written before the connect completes:
            // the first event says when.
            readable: false,
            writable: false,
            peer_closed: false,
        });
        let at = OutboundRef { index, generation };
        set.to_spawn.push(at);
        *self.lent = self.lent.saturating_add(1);
        Ok(at.id())
    }

    fn checkout(&mut self, key: u64, verify: bool) -> Option<OutboundId> {
        while let Some(at) = self.set.parked.iter().rposition(|&(k, _)| k == key) {
            let (_, index) = self.set.parked.remove(at);
            let slot = &mut self.set.slots[index];
            let at = OutboundRef {
                index,
                generation: slot.generation,
            };
            if verify && !slot.stream.as_ref().is_some_and(quiet) {
                self.set.close(at);
                continue;
            }
            slot.owner = Some(self.owner);
            slot.idle_until = None;
            *self.lent = self.lent.saturating_add(1);
            return Some(at.id());
        }
        None
    }

    fn park(&mut self, id: OutboundId, parking: Parking) {
        self.forget(id);
        let at = OutboundRef::of(id);
        let set = &mut *self.set;
        let epoch = set.epoch;
        let parked_here = set
            .parked
            .iter()
            .filter(|&&(k, _)| k == parking.key)
            .count();
        let Some(slot) = set.slot(at) else {
            return;
        };
        if slot.stream.is_none() || slot.epoch != epoch || parked_here >= parking.max_idle {
            set.close(at);
            return;
        }
        slot.owner = None;
        slot.idle_until = Some(self.now + parking.idle_timeout);
        if let Some(token) = slot.token {
            set.to_wake.push(token);
        }
        set.parked.push((parking.key, at.index));
    }

    fn close(&mut self, id: OutboundId) {
        self.forget(id);
        self.set.close(OutboundRef::of(id));
    }

    fn read(&mut self, id: OutboundId, buf: &mut [u8]) -> io::Result<usize> {
        let slot = self.set.slot_of(id)?;
        if !slot.readable {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let stream = slot.stream.as_mut().ok_or(io::ErrorKind::NotConnected)?;
        let result = stream.read(buf);
        // A short read drained the socket as surely as `WouldBlock` says so (the next bytes
        // to arrive bring a new edge): no need to spend a system call to hear it.
        // Not once the peer's close was reported: its edge has come and gone, and the read
        // that sees the end of stream is still to be made.
        match &result {
            Ok(n) if *n > 0 && *n < buf.len() && !slot.peer_closed => slot.readable = false,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => slot.readable = false,
            _ => {}
        }
        result
    }

    fn write(&mut self, id: OutboundId, data: &[u8]) -> io::Result<usize> {
        let slot = self.set.slot_of(id)?;
        if !slot.writable {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let stream = slot.stream.as_mut().ok_or(io::ErrorKind::NotConnected)?;
        let result = stream.write(data);
        // Likewise a short write: the send buffer is full.
        match &result {
            Ok(n) if *n < data.len() => slot.writable = false,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => slot.writable = false,
            _ => {}
        }
        result
    }

    fn take_write_buffer(&mut self) -> Vec<u8> {
        self.pool.take_write()
    }

    fn give_write_buffer(&mut self, buffer: Vec<u8>) {
        self.pool.give_write(buffer);
    }

    fn take_read_buffer(&mut self) -> Vec<u8> {
        match self.set.read_buffers.pop() {
            Some(buffer) => buffer,
            None => vec![0; READ_BUFFER_LEN],
        }
    }

    fn give_read_buffer(&mut self, buffer: Vec<u8>) {
        if buffer.len() == READ_BUFFER_LEN && self.set.read_buffers.len() < CACHED_READ_BUFFERS {
            self.set.read_buffers.push(buffer);
        }
    }
}

/// Whether a parked connection is still quiet: not closed by the peer, nothing unasked for
/// waiting (one `recv` with `MSG_PEEK`).
fn quiet(stream: &Stream) -> bool {
    let mut byte = [MaybeUninit::<u8>::uninit()];
    let socket = socket2::SockRef::from(stream);
    matches!(socket.peek(&mut byte), Err(error) if error.kind() == io::ErrorKind::WouldBlock)
}
