//! The control loop: signals become events on a channel, and the main thread, which owns
//! the server, acts on them one at a time.
//!
//! signal-hook's handlers only write to a self-pipe; a thread of their iterator turns each
//! signal into an [`Event`]. Nothing runs in a signal handler. Signals: SIGHUP reloads,
//! SIGTERM and SIGINT stop gracefully (`ServerHandle::drain` with `shutdown_timeout`, on a
//! thread of its own so the loop keeps answering), SIGQUIT stops at once (also during a
//! graceful stop), SIGUSR1 reopens the log files. Between events the loop pings the systemd
//! watchdog when one is set.

use std::io;
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

use super::Daemon;

/// Extra time allowed past `shutdown_timeout` for the workers to close what they forced
/// before the process exits regardless.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// What the control loop acts on.
#[derive(Debug)]
pub(super) enum Event {
    /// SIGHUP.
    Reload,
    /// SIGTERM or SIGINT (the name, for the log).
    Stop(&'static str),
    /// SIGQUIT.
    Quit,
    /// SIGUSR1.
    Reopen,
    /// The graceful stop ended; this many connections were closed by force.
    Drained(usize),
    /// `POST /reload` on the admin port, answered when done.
    AdminReload(crate::admin::ReloadRequest),
}

/// The event channel: its receiving end, and a sender for the drain thread.
pub(super) struct Events {
    receiver: Receiver<Event>,
    sender: Sender<Event>,
}

impl Events {
    /// A sender of events, for the admin port.
    pub(super) fn sender(&self) -> Sender<Event> {
        self.sender.clone()
    }
}

/// Registers the signals and starts the thread that forwards them as events. From here on
/// none of them has its default action (ending the process).
pub(super) fn listen() -> io::Result<Events> {
    let mut signals = Signals::new([SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1])?;
    let (sender, receiver) = mpsc::channel();
    let forward = sender.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                let event = match signal {
                    SIGHUP => Event::Reload,
                    SIGTERM => Event::Stop("SIGTERM"),
                    SIGINT => Event::Stop("SIGINT"),
                    SIGQUIT => Event::Quit,
                    SIGUSR1 => Event::Reopen,
                    _ => continue,
                };
                if forward.send(event).is_err() {
                    break;
                }
            }
        })?;
    Ok(Events { receiver, sender })
}

/// Serves until a stop; the process's exit status.
pub(super) fn run(mut daemon: Daemon) -> ExitCode {
    loop {
        match next_event(&daemon) {
            Some(Event::Reload) => {
                let _ = daemon.reload("SIGHUP");
            }
            Some(Event::AdminReload(request)) => {
                let outcome = match daemon.wrong_file(request.config()) {
                    Some(refusal) => refusal,
                    None => {
                        let result = daemon.reload("POST /reload");
                        super::admin_glue::outcome(result, daemon.generation)
                    }
                };
                request.answer(outcome);
            }
            Some(Event::Reopen) => reopen_logs(),
            Some(Event::Stop(signal)) => return graceful_stop(daemon, signal),
            Some(Event::Quit) => {
                log::info!(
                    "SIGQUIT: stopping now, closing {} connection(s)",
                    daemon.handle.connections()
                );
                if let Some(notifier) = &daemon.notifier {
                    notifier.stopping();
                }
                daemon.handle.shutdown();
                daemon.admin.stop();
                log::info!("stopped");
                return exit(daemon.pidfile, daemon.status);
            }
            Some(Event::Drained(_)) => {}
            None => {
                // Only the watchdog tick, or every sender gone (cannot happen: we hold one).
                if let Some(notifier) = &daemon.notifier {
                    notifier.ping();
                    notifier.status(daemon.generation, daemon.handle.connections());
                }
            }
        }
    }
}

/// The next event, or `None` when it is time to ping the watchdog.
fn next_event(daemon: &Daemon) -> Option<Event> {
    let tick = daemon
        .notifier
        .as_ref()
        .and_then(super::notify::Notifier::watchdog_interval);
    match tick {
        Some(wait) => daemon.events.receiver.recv_timeout(wait).ok(),
        None => daemon.events.receiver.recv().ok(),
    }
}

fn reopen_logs() {
    log::info!("SIGUSR1: reopening the log files");
    super::logging::reopen();
    super::access_log::reopen_all();
}

/// Drains the server on a thread of its own while the loop keeps answering: SIGQUIT then
/// stops at once, and the watchdog is still fed.
fn graceful_stop(daemon: Daemon, signal: &'static str) -> ExitCode {
    let Daemon {
        handle,
        config,
        notifier,
        pidfile,
        status,
        events,
        generation,
        admin,
        ..
    } = daemon;
    // Before the listeners close, so a load balancer stops sending new work first.
    admin.draining();
    let timeout = config.shutdown_timeout;
    log::info!(
        "{signal}: stopping gracefully: {} connection(s) open, up to {} to finish",
        handle.connections(),
        humantime::format_duration(timeout)
    );
    if let Some(notifier) = &notifier {
        notifier.stopping();
    }
    let drained = events.sender.clone();
    let drain = std::thread::Builder::new()
        .name("drain".into())
        .spawn(move || {
            let forced = handle.drain(timeout);
            let _ = drained.send(Event::Drained(forced));
        });
    if let Err(err) = drain {
        log::error!("cannot start the graceful stop ({err}); stopping now");
        admin.stop();
        return exit(pidfile, status);
    }
    let deadline = Instant::now() + timeout + DRAIN_GRACE;
    let daemon_view = Waiting { events, notifier };
    loop {
        match daemon_view.next(deadline) {
            Some(Event::Drained(0)) => {
                log::info!("stopped: every request finished (generation {generation})");
                break;
            }
            Some(Event::Drained(forced)) => {
                log::warn!(
                    "stopped: shutdown_timeout passed; closed {forced} connection(s) with requests unfinished"
                );
                break;
            }
            Some(Event::Quit) => {
                log::info!("SIGQUIT: stopping now, without waiting for requests to finish");
                break;
            }
            Some(Event::Stop(again)) => log::info!("{again}: already stopping"),
            Some(Event::Reload) => log::warn!("SIGHUP ignored: stopping"),
            Some(Event::AdminReload(request)) => {
                log::warn!("POST /reload refused: stopping");
                request.answer(crate::admin::ReloadOutcome::Refused(
                    "the daemon is stopping".to_owned(),
                ));
            }
            Some(Event::Reopen) => reopen_logs(),
            None if Instant::now() >= deadline => {
                log::error!("the workers did not stop in time; exiting anyway");
                break;
            }
            None => {
                if let Some(notifier) = &daemon_view.notifier {
                    notifier.ping();
                }
            }
        }
    }
    admin.stop();
    exit(pidfile, status)
}

/// The control loop's view while a drain runs on its own thread.
struct Waiting {
    events: Events,
    notifier: Option<super::notify::Notifier>,
}

impl Waiting {
    fn next(&self, deadline: Instant) -> Option<Event> {
        let left = deadline.saturating_duration_since(Instant::now());
        let wait = self
            .notifier
            .as_ref()
            .and_then(super::notify::Notifier::watchdog_interval)
            .map_or(left, |tick| tick.min(left));
        self.events.receiver.recv_timeout(wait).ok()
    }
}

/// Releases the pidfile and the status file and flushes the log: the process then exits 0
/// (a stop asked for by a signal is a success, even one that had to force connections).
fn exit(
    pidfile: Option<super::process::PidFile>,
    status: Option<super::reload::StatusFile>,
) -> ExitCode {
    drop(status);
    drop(pidfile);
    log::logger().flush();
    ExitCode::SUCCESS
}
