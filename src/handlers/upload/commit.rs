//! The upload's commit, off the poll loop: fsync the file, give it its final name, fsync the
//! directory, on a small pool of commit threads, then wake the exchange.
//!
//! A commit waits on the disk (an fsync of a large file takes seconds), so a worker never
//! runs one: [`submit`] queues it and returns a [`Pending`] at once; a commit thread
//! (`upload-commit`, at most [`MAX_THREADS`], started on demand and kept) runs [`run`],
//! stores the [`Outcome`] and calls the exchange's [`ExchangeWaker`]; the exchange reads it
//! from `on_writable` and answers there. The queue holds at most one job per upload whose
//! body has ended, so it is bounded by the open connections.
//!
//! An exchange that goes away first (client gone, connection closed, server stopped)
//! abandons its [`Pending`]: a commit not yet begun is skipped, one past its fsync but not
//! yet named is discarded (the temporary file removed, never a file named for a client that
//! did not see the answer); once named, the file stays and one line says so.
//!
//! A commit thread touches only the job's file, its directory and the waker: never a
//! connection, a `ResponseWriter` or a worker's state, and nothing but the disk blocks it.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Instant;

use std::fs::File;
use std::io::{self, ErrorKind};

use super::store::TempFile;
use super::{NAME_ATTEMPTS, log_failure, random_hex, remove_partial};
use crate::service::ExchangeWaker;

/// Commit threads at most: fsyncs to one disk gain little from more, but a small upload's
/// commit need not wait behind a large one's.
pub(super) const MAX_THREADS: usize = 4;

/// What a body that ended needs to be stored.
#[derive(Debug)]
pub(super) struct Commit {
    pub(super) temp: TempFile,
    pub(super) dir: PathBuf,
    /// The client-chosen name, if any (else a random one).
    pub(super) name: Option<String>,
    pub(super) fsync: bool,
    /// For the log line.
    pub(super) bytes: u64,
}

/// How a commit ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Stored under this name.
    Stored(String),
    /// The client-chosen name was taken meanwhile (409).
    Conflict,
    /// A storage error, logged, the temporary file removed: answer this status.
    Failed(u16),
}

/// Stores the file: fsync (with `fsync`), a hard link to its final name (never replacing a
/// file), the temporary name removed, the directory's fsync (with `fsync`). `abandoned` is
/// asked once the data is synced, before the file is named: `None` then, the file discarded.
pub(super) fn run(commit: Commit, abandoned: &dyn Fn() -> bool) -> Option<Outcome> {
    let started = Instant::now();
    let Commit {
        temp,
        dir,
        name,
        fsync,
        bytes,
    } = commit;
    if fsync {
        if let Err(error) = temp.file.sync_all() {
            return Some(Outcome::Failed(log_failure(
                "syncing",
                &temp.describe(),
                &error,
            )));
        }
    }
    if abandoned() {
        log::info!(
            "upload: discarding {} ({bytes} bytes): the client went away before it was stored",
            temp.describe().display()
        );
        return None;
    }
    let mut stored = None;
    for _ in 0..NAME_ATTEMPTS {
        let chosen = name.clone().unwrap_or_else(|| random_hex(16));
        let target = dir.join(&chosen);
        match temp.link(&target) {
            Ok(()) => {
                stored = Some((chosen, target));
                break;
            }
            // Created by someone else while this body was arriving.
            Err(error) if error.kind() == ErrorKind::AlreadyExists && name.is_some() => {
                return Some(Outcome::Conflict);
            }
            Err(error) if error.kind() == ErrorKind::AlreadyExists => {}
            Err(error) => {
                return Some(Outcome::Failed(log_failure(
                    "storing",
                    &temp.describe(),
                    &error,
                )));
            }
        }
    }
    let Some((chosen, target)) = stored else {
        let error = io::Error::new(ErrorKind::AlreadyExists, "no unused file name found");
        return Some(Outcome::Failed(log_failure(
            "naming",
            &temp.describe(),
            &error,
        )));
    };
    // Removes the temporary name (a named file) or closes the descriptor (an unnamed one).
    drop(temp);
    if fsync {
        if let Err(error) = File::open(&dir).and_then(|dir| dir.sync_all()) {
            // Not known to be durable: the file does not count as stored.
            let status = log_failure("syncing the directory of", &target, &error);
            remove_partial(&target);
            return Some(Outcome::Failed(status));
        }
    }
    log::debug!(
        "upload: stored {} ({bytes} bytes, fsync {fsync}) in {:.1} ms",
        target.display(),
        started.elapsed().as_secs_f64() * 1e3
    );
    Some(Outcome::Stored(chosen))
}

const WAITING: u8 = 0;
const ABANDONED: u8 = 1;
const DONE: u8 = 2;

/// Where a commit thread leaves its outcome for the exchange.
#[derive(Debug)]
struct Slot {
    /// `WAITING`, then `ABANDONED` (by the exchange) or `DONE` (by the thread), never both.
    state: AtomicU8,
    /// Written before `state` turns `DONE`.
    outcome: Mutex<Option<Outcome>>,
}

/// A commit submitted and not yet answered; dropping it abandons the commit.
#[derive(Debug)]
pub(super) struct Pending {
    slot: Arc<Slot>,
}

impl Pending {
    /// The outcome, once the commit has ended (taken: `None` afterwards).
    pub(super) fn outcome(&self) -> Option<Outcome> {
        if self.slot.state.load(Ordering::Acquire) != DONE {
            return None;
        }
        lock(&self.slot.outcome).take()
    }

    /// Gives the commit up, if it has not ended: true if so (it will store nothing unless
    /// it was already naming the file), false if its outcome is ready.
    pub(super) fn abandon(&self) -> bool {
        self.slot
            .state
            .compare_exchange(WAITING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.abandon() {
            if let Some(Outcome::Stored(name)) = self.outcome() {
                log::info!("upload: {name} was stored, but the client went away before the answer");
            }
        }
    }
}

/// One queued commit.
struct Job {
    commit: Commit,
    slot: Arc<Slot>,
    waker: ExchangeWaker,
}

/// The commit threads and their queue.
struct Pool {
    state: Mutex<PoolState>,
    ready: Condvar,
}

struct PoolState {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(PoolState {
            jobs: VecDeque::new(),
            threads: 0,
            idle: 0,
        }),
        ready: Condvar::new(),
    })
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Queues `commit` for a commit thread, which wakes `waker` when it has ended. Never blocks
/// on the disk: the caller is a poll loop.
pub(super) fn submit(commit: Commit, waker: ExchangeWaker) -> Pending {
    let slot = Arc::new(Slot {
        state: AtomicU8::new(WAITING),
        outcome: Mutex::new(None),
    });
    let pending = Pending {
        slot: Arc::clone(&slot),
    };
    let pool = pool();
    let mut state = lock(&pool.state);
    state.jobs.push_back(Job {
        commit,
        slot,
        waker,
    });
    if state.idle == 0 && state.threads < MAX_THREADS {
        let spawned = std::thread::Builder::new()
            .name("upload-commit".into())
            .spawn(move || serve(pool));
        match spawned {
            Ok(_) => state.threads += 1,
            Err(error) if state.threads == 0 => {
                // No thread to run it: fail it rather than block the loop on the disk.
                log::error!("upload: cannot start a commit thread: {error}; answering 500");
                if let Some(job) = state.jobs.pop_back() {
                    finish(job.slot, &job.waker, Outcome::Failed(500));
                }
            }
            Err(error) => log::warn!("upload: cannot start another commit thread: {error}"),
        }
    } else {
        pool.ready.notify_one();
    }
    pending
}

/// A commit thread: runs queued jobs, for the life of the process.
fn serve(pool: &Pool) {
    loop {
        let job = {
            let mut state = lock(&pool.state);
            state.idle += 1;
            while state.jobs.is_empty() {
                state = pool
                    .ready
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            state.idle -= 1;
            state.jobs.pop_front()
        };
        if let Some(job) = job {
            execute(job);
        }
    }
}

/// Runs one job and hands its outcome over.
fn execute(job: Job) {
    let Job {
        commit,
        slot,
        waker,
    } = job;
    if slot.state.load(Ordering::Acquire) == ABANDONED {
        log::info!(
            "upload: discarding {} ({} bytes): the client went away before it was stored",
            commit.temp.describe().display(),
            commit.bytes
        );
        return;
    }
    let abandoned = || slot.state.load(Ordering::Acquire) == ABANDONED;
    let outcome = catch_unwind(AssertUnwindSafe(|| run(commit, &abandoned))).unwrap_or_else(|_| {
        log::error!("upload: a commit panicked; answering 500");
        Some(Outcome::Failed(500))
    });
    if let Some(outcome) = outcome {
        finish(slot, &waker, outcome);
    }
}

/// Leaves `outcome` for the exchange and wakes it; logs a file stored for an exchange that
/// has gone.
fn finish(slot: Arc<Slot>, waker: &ExchangeWaker, outcome: Outcome) {
    let stored = match &outcome {
        Outcome::Stored(name) => Some(name.clone()),
        _ => None,
    };
    *lock(&slot.outcome) = Some(outcome);
    match slot
        .state
        .compare_exchange(WAITING, DONE, Ordering::AcqRel, Ordering::Acquire)
    {
        Ok(_) => waker.wake(),
        Err(_) => {
            if let Some(name) = stored {
                log::info!("upload: {name} was stored, but the client went away before the answer");
            }
        }
    }
}
