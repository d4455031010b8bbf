//! `asycamore-bench`: a load generator and HTTP/1.1 correctness stress tool on asycamore's
//! own reactor (the 2007 project's `httpbench`). See `docs/BENCH_TOOL.md`.
//!
//! `main` parses the command line, builds the request bytes once (`plan`), runs one reactor
//! per thread over its share of the connections (`conn`, which writes with `writer`, reads
//! with `reader` and checks echoes with `verify`), then folds the threads' counters into
//! one report (`stats`). Exit status: 0 success, 1 errors counted, 2 usage error.

mod cli;
mod conn;
mod plan;
mod reader;
mod stats;
mod verify;
mod writer;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use asycamore::reactor::{Next, Reactor};
use clap::{CommandFactory, Parser};

use cli::{Args, Settings, Stop};
use conn::{Conn, HoldGate, Shared};
use plan::Plan;
use stats::{ErrorKind, Report, Stats};

/// Events handled per poll.
const EVENTS_PER_TURN: usize = 1024;
/// The longest a loop waits in one poll, so it notices the end of the run.
const MAX_WAIT: Duration = Duration::from_millis(100);

/// What one thread publishes for the progress line.
#[derive(Default)]
struct Progress {
    requests: AtomicU64,
    errors: AtomicU64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let settings = match Settings::from_args(args) {
        Ok(settings) => settings,
        Err(message) => Args::command()
            .error(clap::error::ErrorKind::ValueValidation, message)
            .exit(),
    };
    // Thousands of connections need more descriptors than the usual soft limit of 1024.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let plan = Arc::new(Plan::build(&settings));
    let hold = settings
        .hold_idle
        .then(|| Arc::new(HoldGate::new(settings.connections as usize)));
    let start = Instant::now();
    let (done_tx, done_rx) = mpsc::channel();
    let progress: Arc<Vec<Progress>> =
        Arc::new((0..settings.threads).map(|_| Progress::default()).collect());
    let mut first_id = 0;
    for index in 0..settings.threads {
        let share = settings.connections / settings.threads
            + u32::from(index < settings.connections % settings.threads);
        let budget = match settings.stop {
            Stop::Count(n) => {
                let threads = u64::from(settings.threads);
                Some(n / threads + u64::from(u64::from(index) < n % threads))
            }
            Stop::After(_) => None,
        };
        let job = Job {
            settings: settings.clone(),
            plan: Arc::clone(&plan),
            hold: hold.clone(),
            ids: first_id..first_id + share,
            budget,
            start,
            progress: Arc::clone(&progress),
            index: index as usize,
        };
        first_id += share;
        let done = done_tx.clone();
        std::thread::spawn(move || {
            let _ = done.send(job.run());
        });
    }
    drop(done_tx);
    let mut total = Stats::new();
    let mut failed = None;
    let mut finished = 0;
    let show_progress = std::io::stderr().is_terminal();
    while finished < settings.threads {
        match done_rx.recv_timeout(Duration::from_secs(1)) {
            Ok(Ok(stats)) => {
                total.merge(&stats);
                finished += 1;
            }
            Ok(Err(err)) => {
                failed = Some(err);
                finished += 1;
            }
            Err(mpsc::RecvTimeoutError::Timeout) if show_progress => {
                print_progress(&progress, start);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if show_progress {
        eprint!("\r\x1b[K");
    }
    let elapsed = start.elapsed();
    if let Some(err) = failed {
        eprintln!("asycamore-bench: a thread stopped: {err}");
        return ExitCode::from(1);
    }
    let held = hold.map(|gate| gate.held() as u64);
    let report = Report::new(&settings, &total, elapsed, held);
    if settings.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text(settings.stop));
    }
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_progress(progress: &[Progress], start: Instant) {
    let requests: u64 = progress
        .iter()
        .map(|p| p.requests.load(Ordering::Relaxed))
        .sum();
    let errors: u64 = progress
        .iter()
        .map(|p| p.errors.load(Ordering::Relaxed))
        .sum();
    let secs = start.elapsed().as_secs_f64();
    eprint!(
        "\r\x1b[K{secs:.0} s: {requests} requests ({:.0}/s), {errors} errors",
        requests as f64 / secs.max(1e-9)
    );
}

/// One thread's share of the run.
struct Job {
    settings: Settings,
    plan: Arc<Plan>,
    hold: Option<Arc<HoldGate>>,
    ids: std::ops::Range<u32>,
    budget: Option<u64>,
    start: Instant,
    progress: Arc<Vec<Progress>>,
    index: usize,
}

impl Job {
    /// Runs the thread's connections until the run ends; returns its counters.
    fn run(self) -> std::io::Result<Stats> {
        let settings = &self.settings;
        let mut reactor: Reactor<Conn> = Reactor::new(EVENTS_PER_TURN)?;
        let mut shared = Shared {
            stats: Stats::new(),
            addr: settings.url.addr,
            timeout: settings.timeout,
            budget: self.budget,
            in_flight: 0,
            live: 0,
            hold: self.hold.clone(),
        };
        for id in self.ids.clone() {
            // A slot opens only with requests to send (fewer requests than connections).
            let reserved = shared.take(shared.batch_size(&self.plan));
            if reserved == 0 {
                break;
            }
            let opened = Conn::open(&self.plan, id, settings.url.addr, reserved)
                .and_then(|conn| reactor.insert(conn));
            match opened {
                Ok(token) => {
                    shared.live += 1;
                    let deadline = reactor.now().max(Instant::now()) + settings.timeout;
                    reactor.with_target(&mut shared, token, |_, cx| {
                        cx.set_deadline(Some(deadline));
                        Next::Keep
                    });
                }
                Err(_) => {
                    shared.give_back(reserved);
                    shared.stats.error(ErrorKind::Connect);
                    if let Some(gate) = &self.hold {
                        gate.settle(false);
                    }
                }
            }
        }
        let end = match settings.stop {
            Stop::After(duration) => Some(self.start + duration),
            Stop::Count(_) => None,
        };
        let progress = &self.progress[self.index];
        loop {
            let now = Instant::now();
            let wait = end.map_or(MAX_WAIT, |end| {
                end.saturating_duration_since(now).min(MAX_WAIT)
            });
            if end.is_some_and(|end| now >= end) {
                break;
            }
            if shared.live == 0 || (shared.exhausted() && shared.in_flight == 0) {
                break;
            }
            reactor.turn(&mut shared, Some(wait))?;
            progress
                .requests
                .store(shared.stats.requests, Ordering::Relaxed);
            progress
                .errors
                .store(shared.stats.errors_total(), Ordering::Relaxed);
        }
        Ok(shared.stats)
    }
}
