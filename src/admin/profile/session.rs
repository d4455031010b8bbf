//! The process's one profile: its session slot, the thread that runs the profiler and
//! encodes the result, and `--profile FILE`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use super::Format;
use super::report;
use super::sys::{self, Sampler};
use crate::service::ExchangeWaker;

/// How often the profiler looks for new threads to arm a CPU timer on.
const RESCAN: Duration = Duration::from_millis(100);
/// How long [`WholeRun`] waits for the profiler to start, and for the profile to be
/// symbolised and encoded.
const FINISH_TIMEOUT: Duration = Duration::from_secs(120);

/// What ends a profile's collection.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Stop {
    /// Stop and report what was collected.
    Collect,
    /// Stop and discard it: nobody waits for the report.
    Abandon,
}

/// Who started the profile that runs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// `POST /profiling/start`.
    Runtime,
    /// `GET /debug/pprof/profile`.
    Timed,
    /// `--profile FILE`.
    WholeRun,
}

impl Kind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Kind::Runtime => "runtime",
            Kind::Timed => "timed",
            Kind::WholeRun => "whole_run",
        }
    }
}

/// A finished profile in both formats, made on the profiler thread.
#[derive(Debug)]
pub struct Profile {
    /// gzip-compressed pprof protobuf.
    pub pprof: Vec<u8>,
    /// An SVG flame graph.
    pub svg: Vec<u8>,
    /// Samples taken.
    pub samples: u64,
    /// How long it collected.
    pub duration: Duration,
}

impl Profile {
    pub(super) fn bytes(&self, format: Format) -> &[u8] {
        match format {
            Format::Pprof => &self.pprof,
            Format::Flamegraph => &self.svg,
        }
    }
}

/// A finished profile, or why there is none.
pub(super) type Outcome = Result<Arc<Profile>, String>;

/// A value another thread sets once, with the exchanges to wake then; a blocking wait too,
/// for the daemon at exit.
pub(super) struct Pending<T> {
    cell: Mutex<Cell<T>>,
    ready: Condvar,
}

struct Cell<T> {
    value: Option<T>,
    waiters: Vec<ExchangeWaker>,
}

impl<T: Clone> Pending<T> {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Pending {
            cell: Mutex::new(Cell {
                value: None,
                waiters: Vec::new(),
            }),
            ready: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Cell<T>> {
        self.cell
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn set(&self, value: T) {
        let waiters = {
            let mut cell = self.lock();
            cell.value = Some(value);
            std::mem::take(&mut cell.waiters)
        };
        self.ready.notify_all();
        for waiter in waiters {
            waiter.wake();
        }
    }

    pub(super) fn is_set(&self) -> bool {
        self.lock().value.is_some()
    }

    /// The value if set; otherwise `waker` (if any) is woken when it is.
    pub(super) fn poll(&self, waker: Option<ExchangeWaker>) -> Option<T> {
        let mut cell = self.lock();
        if cell.value.is_none() {
            cell.waiters.extend(waker);
        }
        cell.value.clone()
    }

    /// Blocks until the value is set, at most `timeout`.
    fn wait(&self, timeout: Duration) -> Option<T> {
        let cell = self.lock();
        let (cell, _) = self
            .ready
            .wait_timeout_while(cell, timeout, |cell| cell.value.is_none())
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        cell.value.clone()
    }
}

/// The profile of the process, if one runs or waits to be fetched.
pub(super) struct Session {
    pub(super) id: u64,
    pub(super) kind: Kind,
    pub(super) frequency: u32,
    pub(super) started: SystemTime,
    pub(super) started_at: Instant,
    /// When it stops collecting by itself (`None`: only when told).
    pub(super) limit: Option<Duration>,
    /// Tells its thread to stop (a timed profile's exchange and a whole run's [`WholeRun`]
    /// hold a copy).
    pub(super) stop: Option<Sender<Stop>>,
    /// `/profiling/stop` has been asked: the thread ends the session when done.
    pub(super) stopping: bool,
    /// Set once the profile is encoded.
    pub(super) done: Arc<Pending<Outcome>>,
}

impl Session {
    pub(super) fn collecting(&self) -> bool {
        !self.done.is_set()
    }
}

static SESSION: Mutex<Option<Session>> = Mutex::new(None);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub(super) fn slot() -> MutexGuard<'static, Option<Session>> {
    SESSION
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether a profile is being collected (for the `asycamore_profiling_active` metric).
pub fn active() -> bool {
    slot().as_ref().is_some_and(Session::collecting)
}

/// A started session's handles, for whoever waits on it.
pub(super) struct Started {
    pub(super) started_ok: Arc<Pending<Result<(), String>>>,
    pub(super) done: Arc<Pending<Outcome>>,
    /// Sending on it stops the profile.
    pub(super) stop: Option<Sender<Stop>>,
}

/// Reserves the process's one profile and starts its thread; `Err` is why not (a 409).
pub(super) fn begin(
    kind: Kind,
    frequency: u32,
    limit: Option<Duration>,
) -> Result<Started, String> {
    let mut slot = slot();
    if let Some(running) = slot.as_ref().filter(|running| running.collecting()) {
        return Err(format!(
            "a profile is already running ({}, started {:.1} s ago)",
            running.kind.as_str(),
            running.started_at.elapsed().as_secs_f64()
        ));
    }
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let started_ok = Pending::new();
    let done = Pending::new();
    let (stop, stopped) = mpsc::channel();
    let job = Job {
        id,
        kind,
        frequency,
        limit,
        stopped,
        started_ok: Arc::clone(&started_ok),
        done: Arc::clone(&done),
    };
    std::thread::Builder::new()
        .name("profiler".into())
        .spawn(move || job.run())
        .map_err(|err| format!("cannot start the profiler thread: {err}"))?;
    // `/profiling/stop` may end any profile; a timed one also ends when its exchange
    // abandons it (its client gone), a whole run when its `WholeRun` finishes.
    let handed = match kind {
        Kind::Timed | Kind::WholeRun => Some(stop.clone()),
        Kind::Runtime => None,
    };
    *slot = Some(Session {
        id,
        kind,
        frequency,
        started: SystemTime::now(),
        started_at: Instant::now(),
        limit,
        stop: Some(stop),
        stopping: false,
        done: Arc::clone(&done),
    });
    Ok(Started {
        started_ok,
        done,
        stop: handed,
    })
}

/// The work of one profile's thread.
struct Job {
    id: u64,
    kind: Kind,
    frequency: u32,
    limit: Option<Duration>,
    stopped: Receiver<Stop>,
    started_ok: Arc<Pending<Result<(), String>>>,
    done: Arc<Pending<Outcome>>,
}

impl Job {
    fn run(self) {
        let sampler = match Sampler::start(self.frequency) {
            Ok(sampler) => sampler,
            Err(err) => {
                let message = format!("cannot start the profiler: {err}");
                log::error!("{message}");
                self.started_ok.set(Err(message.clone()));
                self.finish(Err(message));
                return;
            }
        };
        log::info!(
            "profiling started ({}, {} Hz)",
            self.kind.as_str(),
            self.frequency
        );
        self.started_ok.set(Ok(()));
        let mut sampler = sampler;
        let abandoned = self.wait(&mut sampler);
        let collected = sampler.stop();
        if abandoned {
            let samples = collected.samples();
            drop(collected);
            let message =
                format!("the profile was abandoned by its client ({samples} sample(s) discarded)");
            self.finish(Err(message.clone()));
            // Logged once the profiler is free again.
            log::info!("profiling stopped ({}): {message}", self.kind.as_str());
            return;
        }
        let outcome = std::panic::catch_unwind(|| report::encode(&collected))
            .unwrap_or_else(|_| Err("encoding the profile panicked".to_string()));
        drop(collected);
        sys::trim_heap();
        let line = match &outcome {
            Ok(profile) => format!(
                "profiling stopped ({}): {} sample(s) in {:.1} s",
                self.kind.as_str(),
                profile.samples,
                profile.duration.as_secs_f64()
            ),
            Err(err) => format!("profiling failed: {err}"),
        };
        let failed = outcome.is_err();
        self.finish(outcome.map(Arc::new));
        // Logged once the profiler is free again (a log line a client may wait on).
        if failed {
            log::error!("{line}");
        } else {
            log::info!("{line}");
        }
    }

    /// Waits for the end of the collection (told, the limit, or the stopping side gone),
    /// arming timers on threads started meanwhile. `true` if the profile is abandoned: its
    /// client went away, or the exchange that held its stop was dropped.
    fn wait(&self, sampler: &mut Sampler) -> bool {
        let deadline = self.limit.map(|limit| Instant::now() + limit);
        loop {
            let mut wait = RESCAN;
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return false;
                }
                wait = wait.min(left);
            }
            match self.stopped.recv_timeout(wait) {
                Ok(Stop::Collect) => return false,
                Ok(Stop::Abandon) | Err(RecvTimeoutError::Disconnected) => return true,
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(err) = sampler.rescan() {
                        log::warn!("profiling: {err}");
                    }
                }
            }
        }
    }

    /// Publishes the outcome and ends the session, unless it is a runtime profile that
    /// reached its limit: that one waits for `/profiling/stop` to fetch it.
    fn finish(&self, outcome: Outcome) {
        let mut slot = slot();
        self.done.set(outcome);
        let keep = slot.as_ref().is_some_and(|session| {
            session.id == self.id && session.kind == Kind::Runtime && !session.stopping
        });
        if !keep && slot.as_ref().is_some_and(|session| session.id == self.id) {
            *slot = None;
        }
    }
}

/// `--profile FILE`: a profile of the whole run, written when the daemon exits.
pub struct WholeRun {
    path: PathBuf,
    file: std::fs::File,
    started: Started,
}

impl WholeRun {
    /// Creates `path` now (so a bad path fails at start-up, and a relative one means the
    /// directory the daemon was started in) and starts profiling the whole process.
    pub fn start(path: &Path) -> Result<WholeRun, String> {
        let file = std::fs::File::create(path)
            .map_err(|err| format!("cannot create the profile {}: {err}", path.display()))?;
        let started = begin(Kind::WholeRun, super::DEFAULT_FREQUENCY, None)?;
        match started.started_ok.wait(FINISH_TIMEOUT) {
            Some(Ok(())) => {}
            Some(Err(message)) => return Err(message),
            None => return Err("the profiler did not start in time".to_string()),
        }
        Ok(WholeRun {
            path: path.to_path_buf(),
            file,
            started,
        })
    }

    /// Stops profiling and writes the profile (a flame graph if the file name ends in
    /// `.svg`, else pprof protobuf). Logs and returns what went wrong.
    pub fn finish(mut self) -> Result<(), String> {
        if let Some(stop) = self.started.stop.take() {
            let _ = stop.send(Stop::Collect);
        }
        let profile = match self.started.done.wait(FINISH_TIMEOUT) {
            Some(Ok(profile)) => profile,
            Some(Err(message)) => return Err(message),
            None => return Err("the profile was not ready in time".to_string()),
        };
        let bytes = profile.bytes(Format::for_path(&self.path));
        self.file
            .write_all(bytes)
            .and_then(|()| self.file.sync_all())
            .map_err(|err| format!("cannot write the profile {}: {err}", self.path.display()))?;
        log::info!(
            "profile of the whole run written to {} ({} sample(s))",
            self.path.display(),
            profile.samples
        );
        Ok(())
    }
}
