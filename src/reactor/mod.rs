//! The dispatch main loop: one `mio::Poll`, a slab of targets keyed by `Token`, a deadline
//! queue and a waker for messages from other threads.
//!
//! This is the seed's "descriptor event dispatch" layer and it stands on its own: it knows
//! nothing about HTTP (`examples/line_echo.rs` builds a line-echo server on it alone). It must
//! never allocate per event in steady state, never block anywhere but in `poll`, and never
//! log on the dispatch path.
//!
//! A [`Target`] is anything with a file descriptor that reacts to readiness and timeouts. The
//! loop owns the targets; while one is being dispatched it gets a [`Context`] through which it
//! can read the loop's clock, set its deadline, and spawn new targets (inserted after the
//! current batch of events, so a batch never sees a slot reused under it).
//!
//! Edge-triggered discipline: readiness is reported once per change. A target that stops
//! reading or writing before `WouldBlock` must remember that it still may (see
//! [`Readiness`]); events are hints, so a target must tolerate spurious ones.

mod bufpool;
mod mailbox;
mod timer;

#[cfg(test)]
mod tests;

pub use bufpool::{BufPool, ReadBuf};
pub use mailbox::{MailSender, Mailbox};
pub use mio::{Interest, Registry, Token};

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::event::Source;
use mio::{Events, Poll, Waker};
use slab::Slab;

use timer::Timers;

/// The token reserved for the loop's waker.
const WAKER_TOKEN: Token = Token(usize::MAX);

/// Token layout: the slab index in the low 32 bits, the slot's generation above, so an event
/// or timer meant for a target that has since been removed never reaches its successor.
const INDEX_BITS: u32 = 32;
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;

/// What a target wants after handling an event.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Stay registered.
    Keep,
    /// Stay registered, and be dispatched again next turn (with no new readiness) even if no
    /// event comes: for a target that stopped short of draining its descriptor so others get
    /// their turn. With edge-triggered readiness no event would come for what it left.
    Yield,
    /// Remove and drop the target (dropping closes its descriptor, which also deregisters it).
    Remove,
}

/// The readiness carried by one event, copied out of mio's event so targets need not
/// depend on mio's event type.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// The descriptor may be read.
    pub readable: bool,
    /// The descriptor may be written.
    pub writable: bool,
    /// The peer closed its sending side (a read will return 0 once data is drained).
    pub read_closed: bool,
    /// The descriptor is in an error state (a read or write will report it).
    pub error: bool,
}

impl Readiness {
    fn of(event: &mio::event::Event) -> Self {
        Readiness {
            readable: event.is_readable(),
            writable: event.is_writable(),
            read_closed: event.is_read_closed(),
            error: event.is_error(),
        }
    }
}

/// Something the loop dispatches to.
pub trait Target: Sized {
    /// State shared by every target of one loop (one thread), handed to each callback.
    type Shared;

    /// Registers the target's descriptor(s) with `registry` under `token`.
    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()>;

    /// The descriptor changed readiness.
    fn on_ready(&mut self, readiness: Readiness, cx: &mut Context<'_, Self>) -> Next;

    /// The deadline set with [`Context::set_deadline`] has passed.
    fn on_timeout(&mut self, cx: &mut Context<'_, Self>) -> Next;

    /// The deadline a spawned target starts with, before any event reaches it (e.g. an
    /// accepted connection's idle timeout, which must hold even if the peer never sends).
    fn initial_deadline(&self, _shared: &Self::Shared, _now: Instant) -> Option<Instant> {
        None
    }

    /// A spawned target's first turn, after it has its token and initial deadline but
    /// before it is registered: an accepted connection can read the request that has
    /// usually arrived already. A target that answers [`Next::Remove`] here is never
    /// registered at all (for a connection served and closed at once, no `epoll_ctl`).
    ///
    /// Registration is edge-triggered-safe afterwards: the kernel reports readiness that
    /// exists when a descriptor is added, so nothing that arrives in between is missed.
    fn on_spawn(&mut self, _cx: &mut Context<'_, Self>) -> Next {
        Next::Keep
    }

    /// Another target of this loop asked for this one with [`Context::wake`]: it has work
    /// here (data it waits for is ready). By default dispatched like a readiness event that
    /// says nothing new.
    fn on_wake(&mut self, cx: &mut Context<'_, Self>) -> Next {
        self.on_ready(Readiness::default(), cx)
    }
}

/// Registers a mio source; a convenience for [`Target::register`] implementations.
pub fn register_source(
    source: &mut impl Source,
    registry: &Registry,
    token: Token,
    interest: Interest,
) -> io::Result<()> {
    registry.register(source, token, interest)
}

/// What a target may do to the loop while it is being dispatched.
pub struct Context<'a, T: Target> {
    /// The loop-wide state.
    pub shared: &'a mut T::Shared,
    token: Token,
    now: Instant,
    slot: SlotTimer<'a>,
    registry: &'a Registry,
    spawned: &'a mut Vec<T>,
    woken: &'a mut Vec<Token>,
}

impl<'a, T: Target> Context<'a, T> {
    /// The registry, to register a descriptor or change a target's interest (borrowed from
    /// the loop, not from the context, so it can be used beside `shared`).
    pub fn registry(&self) -> &'a Registry {
        self.registry
    }
}

/// The part of a slot's timer state a context may change, plus the queue it arms.
struct SlotTimer<'a> {
    deadline: &'a mut Option<Instant>,
    armed: &'a mut Option<Instant>,
    timers: &'a mut Timers,
}

impl<T: Target> Context<'_, T> {
    /// The time the current batch of events was polled at (one clock read per loop turn).
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The token of the target being dispatched.
    pub fn token(&self) -> Token {
        self.token
    }

    /// The target's current deadline.
    pub fn deadline(&self) -> Option<Instant> {
        *self.slot.deadline
    }

    /// Sets (or clears) the target's one deadline; `on_timeout` runs once it has passed.
    ///
    /// Moving a deadline later costs nothing but a store: the queue entry that is already
    /// armed fires early, sees the later deadline and re-arms. Only an earlier deadline
    /// pushes a new entry.
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        *self.slot.deadline = deadline;
        if let Some(at) = deadline {
            if self.slot.armed.is_none_or(|armed| at < armed) {
                self.slot.timers.push(at, self.token);
                *self.slot.armed = Some(at);
            }
        }
    }

    /// Adds a new target to the loop once the current batch of events has been dispatched.
    pub fn spawn(&mut self, target: T) {
        self.spawned.push(target);
    }

    /// Has the target behind `token` dispatched with [`Target::on_wake`] next turn, and
    /// the loop not sleep meanwhile: for one target of this thread to tell another that it
    /// can make progress (data it waits for is ready), with no syscall. A stale token is
    /// ignored, and a target woken twice in a turn is woken once.
    pub fn wake(&mut self, token: Token) {
        // The list holds the few targets with pending work this turn: a scan is cheap.
        if !self.woken.contains(&token) {
            self.woken.push(token);
        }
    }
}

struct Slot<T> {
    target: T,
    generation: u32,
    deadline: Option<Instant>,
    /// The earliest queue entry outstanding for this slot, if any.
    armed: Option<Instant>,
}

/// What happened during one [`Reactor::turn`].
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Turn {
    /// The waker was signalled: drain your [`Mailbox`]es.
    pub woken: bool,
    /// Events dispatched to targets.
    pub events: usize,
    /// Deadlines that fired.
    pub timeouts: usize,
}

/// One thread's dispatch loop.
pub struct Reactor<T: Target> {
    /// Kept apart from the rest so the loop can walk a batch of events while dispatching.
    events: Events,
    /// The yielded targets being dispatched this turn (kept to reuse its allocation).
    again: Vec<Token>,
    /// The woken targets being dispatched this turn (likewise).
    waking: Vec<Token>,
    core: Core<T>,
}

/// Everything but the event buffer.
struct Core<T: Target> {
    poll: Poll,
    slots: Slab<Slot<T>>,
    timers: Timers,
    spawned: Vec<T>,
    /// Targets that answered [`Next::Yield`], to dispatch again next turn.
    yielded: Vec<Token>,
    /// Targets another one woke ([`Context::wake`]), to dispatch next turn.
    woken: Vec<Token>,
    waker: Arc<Waker>,
    next_generation: u32,
    now: Instant,
}

impl<T: Target> Reactor<T> {
    /// A loop that handles at most `events_per_turn` readiness events per `poll` call.
    pub fn new(events_per_turn: usize) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER_TOKEN)?);
        Ok(Reactor {
            events: Events::with_capacity(events_per_turn.max(1)),
            again: Vec::new(),
            waking: Vec::new(),
            core: Core {
                poll,
                slots: Slab::new(),
                timers: Timers::default(),
                spawned: Vec::new(),
                yielded: Vec::new(),
                woken: Vec::new(),
                waker,
                next_generation: 0,
                now: Instant::now(),
            },
        })
    }

    /// A channel whose sends wake this loop; drain it when [`Turn::woken`] is set.
    pub fn mailbox<M>(&self) -> (MailSender<M>, Mailbox<M>) {
        mailbox::channel(Arc::clone(&self.core.waker))
    }

    /// The registry of the underlying poll.
    pub fn registry(&self) -> &Registry {
        self.core.poll.registry()
    }

    /// The clock value of the last turn.
    pub fn now(&self) -> Instant {
        self.core.now
    }

    /// The number of targets in the loop.
    pub fn len(&self) -> usize {
        self.core.slots.len()
    }

    /// Whether the loop has no targets.
    pub fn is_empty(&self) -> bool {
        self.core.slots.is_empty()
    }

    /// Inserts and registers a target now (outside a dispatch), returning its token.
    pub fn insert(&mut self, target: T) -> io::Result<Token> {
        self.core.insert(target)
    }

    /// Waits for events (at most until the earliest deadline, or `max_wait`), dispatches
    /// them, fires expired deadlines, then inserts the targets spawned meanwhile.
    ///
    /// An interrupted wait (`EINTR`) is not an error: the turn returns with no events.
    pub fn turn(&mut self, shared: &mut T::Shared, max_wait: Option<Duration>) -> io::Result<Turn> {
        let mut turn = Turn::default();
        // Yielded targets have work: look for events without sleeping, then run them after
        // the targets those events are for.
        let mut again = std::mem::take(&mut self.again);
        std::mem::swap(&mut again, &mut self.core.yielded);
        let mut waking = std::mem::take(&mut self.waking);
        std::mem::swap(&mut waking, &mut self.core.woken);
        let wait = if again.is_empty() && waking.is_empty() {
            self.core.wait_time(max_wait)
        } else {
            Some(Duration::ZERO)
        };
        let polled = self.core.poll.poll(&mut self.events, wait);
        self.core.now = Instant::now();
        match polled {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {
                // The work taken out for this turn waits for the next one.
                self.core.yielded.append(&mut again);
                self.core.woken.append(&mut waking);
                self.again = again;
                self.waking = waking;
                return Ok(turn);
            }
            Err(err) => return Err(err),
        }
        for event in self.events.iter() {
            let token = event.token();
            if token == WAKER_TOKEN {
                turn.woken = true;
                continue;
            }
            let readiness = Readiness::of(event);
            turn.events += 1;
            self.core
                .dispatch(shared, token, |target, cx| target.on_ready(readiness, cx));
        }
        for token in waking.drain(..) {
            self.core
                .dispatch(shared, token, |target, cx| target.on_wake(cx));
        }
        self.waking = waking;
        for token in again.drain(..) {
            self.core.dispatch(shared, token, |target, cx| {
                target.on_ready(Readiness::default(), cx)
            });
        }
        self.again = again;
        turn.timeouts = self.core.fire_timers(shared);
        self.core.insert_spawned(shared);
        Ok(turn)
    }

    /// Runs `f` on the target behind `token`, if it is still there, as if it had an event.
    pub fn with_target(
        &mut self,
        shared: &mut T::Shared,
        token: Token,
        f: impl FnOnce(&mut T, &mut Context<'_, T>) -> Next,
    ) {
        self.core.dispatch(shared, token, f);
        self.core.insert_spawned(shared);
    }

    /// Runs `f` on every target (to broadcast a message such as "drain"), removing those for
    /// which it answers [`Next::Remove`].
    pub fn for_each(
        &mut self,
        shared: &mut T::Shared,
        mut f: impl FnMut(&mut T, &mut Context<'_, T>) -> Next,
    ) {
        let tokens: Vec<Token> = self.targets().map(|(token, _)| token).collect();
        for token in tokens {
            self.core.dispatch(shared, token, &mut f);
        }
        self.core.insert_spawned(shared);
    }

    /// Visits every target without dispatching (for introspection).
    pub fn targets(&self) -> impl Iterator<Item = (Token, &T)> {
        self.core
            .slots
            .iter()
            .map(|(index, slot)| (make_token(index, slot.generation), &slot.target))
    }
}

impl<T: Target> Core<T> {
    fn insert(&mut self, target: T) -> io::Result<Token> {
        let token = self.insert_unregistered(target)?;
        self.register(token)?;
        Ok(token)
    }

    /// Registers the target behind `token`, removing it if the kernel refuses.
    fn register(&mut self, token: Token) -> io::Result<()> {
        let index = token.0 & INDEX_MASK;
        let result = self.slots[index]
            .target
            .register(self.poll.registry(), token);
        if result.is_err() {
            self.slots.remove(index);
        }
        result
    }

    fn insert_unregistered(&mut self, target: T) -> io::Result<Token> {
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        let entry = self.slots.vacant_entry();
        let index = entry.key();
        if index > INDEX_MASK {
            return Err(io::Error::other("reactor slab is full"));
        }
        entry.insert(Slot {
            target,
            generation,
            deadline: None,
            armed: None,
        });
        Ok(make_token(index, generation))
    }

    /// Runs `f` on the live target behind `token` with a context for it, removing the
    /// target if `f` says so. A stale token (removed target, reused slot) does nothing.
    fn dispatch(
        &mut self,
        shared: &mut T::Shared,
        token: Token,
        f: impl FnOnce(&mut T, &mut Context<'_, T>) -> Next,
    ) {
        let Some(slot) = live_slot(&mut self.slots, token) else {
            return;
        };
        let mut cx = Context {
            shared,
            token,
            now: self.now,
            slot: SlotTimer {
                deadline: &mut slot.deadline,
                armed: &mut slot.armed,
                timers: &mut self.timers,
            },
            registry: self.poll.registry(),
            spawned: &mut self.spawned,
            woken: &mut self.woken,
        };
        match f(&mut slot.target, &mut cx) {
            Next::Keep => {}
            Next::Yield => self.yielded.push(token),
            Next::Remove => {
                self.slots.remove(token.0 & INDEX_MASK);
            }
        }
    }

    fn wait_time(&self, max_wait: Option<Duration>) -> Option<Duration> {
        let until_deadline = self
            .timers
            .earliest()
            .map(|at| at.saturating_duration_since(Instant::now()));
        match (until_deadline, max_wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn fire_timers(&mut self, shared: &mut T::Shared) -> usize {
        let mut fired = 0;
        while let Some((queued, token)) = self.timers.pop_expired(self.now) {
            let Some(slot) = live_slot(&mut self.slots, token) else {
                continue;
            };
            slot.armed = None;
            match slot.deadline {
                // Only the entry of the deadline itself fires it: an entry queued before the
                // deadline moved later re-arms even when the later time has passed too, so
                // deadlines that expired in one slow turn still fire in their order.
                Some(at) if at <= queued => {
                    slot.deadline = None;
                    fired += 1;
                    self.dispatch(shared, token, |target, cx| target.on_timeout(cx));
                }
                Some(at) => {
                    // The deadline moved later since this entry was queued: re-arm.
                    self.timers.push(at, token);
                    slot.armed = Some(at);
                }
                None => {}
            }
        }
        fired
    }

    fn insert_spawned(&mut self, shared: &mut T::Shared) {
        while let Some(target) = self.spawned.pop() {
            let deadline = target.initial_deadline(shared, self.now);
            // A target that cannot be stored or registered is dropped, which closes its
            // descriptor; the peer sees a reset, the best answer when the kernel refuses.
            let Ok(token) = self.insert_unregistered(target) else {
                continue;
            };
            if let Some(at) = deadline {
                let slot = &mut self.slots[token.0 & INDEX_MASK];
                slot.deadline = Some(at);
                slot.armed = Some(at);
                self.timers.push(at, token);
            }
            let mut kept = false;
            self.dispatch(shared, token, |target, cx| {
                let next = target.on_spawn(cx);
                kept = next != Next::Remove;
                next
            });
            if kept {
                let _ = self.register(token);
            }
        }
    }
}

fn make_token(index: usize, generation: u32) -> Token {
    Token(((generation as usize) << INDEX_BITS) | index)
}

fn live_slot<T>(slots: &mut Slab<Slot<T>>, token: Token) -> Option<&mut Slot<T>> {
    let index = token.0 & INDEX_MASK;
    let generation = (token.0 >> INDEX_BITS) as u32;
    slots
        .get_mut(index)
        .filter(|slot| slot.generation == generation)
}
