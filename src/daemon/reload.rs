//! Reload: on SIGHUP the daemon reads, validates and builds the config file again and
//! publishes it, or keeps serving the old one and logs every error; the outcome goes to a
//! status file beside the pidfile, which `asycamore reload` waits on.
//!
//! Publishing: the fallible steps first (opening a new access-log file, binding new listen
//! addresses; `set_listeners` is all-or-nothing), so a failure changes nothing; then limits,
//! access log, the route table with generation + 1 (requests already parsed finish on the
//! table they were parsed under), the log level. Keys that need a restart
//! (`config::reload_restart_keys`) keep their running values and are logged by name.
//!
//! The status file, `<pidfile>.reload`: first line `<seq> ok <generation>` or
//! `<seq> failed`, then one error per line. `seq` counts reload attempts (0 at start). It is
//! created at start-up (before privileges are dropped) and rewritten in place through the
//! descriptor kept open, so a daemon running as an unprivileged user can still update it in
//! a directory it cannot write.

use std::fs::{File, OpenOptions};
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{
    DEFAULT_CONFIG_PATH, Daemon, EXIT_CONFIG, EXIT_UNAVAILABLE, load, process, source_name,
};

/// How long a reload waits for every worker to take the new configuration.
const BARRIER_TIMEOUT: Duration = Duration::from_secs(5);
use crate::config::{self, Config};

/// How long `asycamore reload` waits for the outcome.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often it looks at the status file meanwhile.
const POLL_EVERY: Duration = Duration::from_millis(10);

impl Daemon {
    /// Handles one reload (SIGHUP, or `POST /reload` on the admin port: `trigger`); the new
    /// generation, or every error.
    pub(super) fn reload(&mut self, trigger: &str) -> Result<u64, Vec<String>> {
        self.reloads += 1;
        let seq = self.reloads;
        if let Some(notifier) = &self.notifier {
            notifier.reloading();
        }
        let source = source_name(self.config_path.as_deref());
        log::info!("{trigger}: reload #{seq}: reading {source}");
        let result = self.try_reload(seq).map(|()| self.generation);
        match &result {
            Ok(_) => {
                if let Some(status) = &self.status {
                    status.write_ok(seq, self.generation);
                }
            }
            Err(errors) => {
                self.failed_reloads += 1;
                for error in errors {
                    log::error!("reload #{seq}: {error}");
                }
                log::error!(
                    "reload #{seq} failed ({} error(s), {} failed reload(s) so far); still \
                     serving generation {}",
                    errors.len(),
                    self.failed_reloads,
                    self.generation
                );
                if let Some(status) = &self.status {
                    status.write_failed(seq, errors);
                }
            }
        }
        if let Some(notifier) = &self.notifier {
            notifier.ready();
            notifier.status(self.generation, self.handle.connections());
        }
        self.admin
            .reload_done(&result, &self.config, self.config_path.as_deref());
        result
    }

    /// Loads and publishes the config; every error line when it cannot.
    fn try_reload(&mut self, seq: u64) -> Result<(), Vec<String>> {
        let mut new = load(self.config_path.as_deref())
            .map_err(|errors| errors.0.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        if let Some(level) = self.cli_log_level {
            new.log.level = level;
        }
        if let Some(target) = &self.log_override {
            if new.log.target == config::LogTarget::Stderr {
                new.log.target = target.clone();
            }
        }
        let restart = config::reload_restart_keys(&self.config, &new);
        let new = config::with_restart_keys_kept(&self.config, new);
        let source = source_name(self.config_path.as_deref());

        // Fallible steps first; nothing has changed if one fails.
        let access_log = if new.access_log == self.config.access_log {
            None
        } else {
            match &new.access_log {
                Some(access_log) => match super::access_log::open(access_log) {
                    Ok(log) => Some(Some(log)),
                    Err(err) => return Err(vec![format!("{source}: access_log.file: {err}")]),
                },
                None => Some(None),
            }
        };
        self.publish_listeners(&new.listen)
            .map_err(|err| vec![format!("{source}: server.listen: cannot listen: {err}")])?;

        self.handle.set_limits(config::server_config(&new).limits);
        if let Some(access_log) = access_log {
            self.handle.set_access_log(access_log);
        }
        self.generation += 1;
        let table = Arc::new(config::route_table_after(
            &new,
            self.generation,
            &self.upstreams,
        ));
        self.upstreams = config::upstreams_of(&table);
        self.admin.serving(self.upstreams.clone());
        self.handle.set_handler(table);
        // The outcome reported to the operator means "applied everywhere": every worker has
        // switched before it is written, so the next request on any connection is served
        // under the new generation.
        if !self.handle.barrier(BARRIER_TIMEOUT) {
            log::warn!("reload #{seq}: a worker took longer than {BARRIER_TIMEOUT:?} to switch");
        }
        super::logging::apply(&new.log);
        for key in restart {
            log::warn!(
                "reload #{seq}: {key} changed, which needs a restart; the running value stays"
            );
        }
        log::info!(
            "reload #{seq}: generation {} now serving {} route(s)",
            self.generation,
            new.routes.len()
        );
        self.config = new;
        Ok(())
    }

    /// Binds the new listen addresses, then stops accepting on the ones no longer listed.
    fn publish_listeners(&mut self, listen: &[SocketAddr]) -> io::Result<()> {
        let kept = |addr: &SocketAddr| {
            self.bound
                .iter()
                .find(|(configured, _)| configured == addr)
                .map(|(_, bound)| *bound)
        };
        let wanted: Vec<SocketAddr> = listen
            .iter()
            .map(|addr| kept(addr).unwrap_or(*addr))
            .collect();
        let before = self.handle.local_addrs().to_vec();
        self.handle.set_listeners(&wanted)?;
        let after = self.handle.local_addrs().to_vec();
        let mut added = after.iter().filter(|addr| !before.contains(addr));
        let mut bound = Vec::with_capacity(listen.len());
        for addr in listen {
            match kept(addr) {
                Some(existing) => bound.push((*addr, existing)),
                None => {
                    if let Some(new) = added.next() {
                        log::info!("listening on http://{new}");
                        bound.push((*addr, *new));
                    }
                }
            }
        }
        for addr in before.iter().filter(|addr| !after.contains(addr)) {
            log::info!("stopped listening on http://{addr} (its connections finish normally)");
        }
        self.bound = bound;
        Ok(())
    }
}

/// The reload status file, kept open for the life of the daemon; removed when dropped.
pub(super) struct StatusFile {
    path: PathBuf,
    file: File,
}

/// Where the status of the daemon with `pidfile` is written.
pub(super) fn status_path(pidfile: &Path) -> PathBuf {
    let mut name = pidfile.as_os_str().to_owned();
    name.push(".reload");
    PathBuf::from(name)
}

impl StatusFile {
    pub(super) fn create(pidfile: &Path) -> io::Result<StatusFile> {
        let path = status_path(pidfile);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&path)?;
        Ok(StatusFile { path, file })
    }

    pub(super) fn write_ok(&self, seq: u64, generation: u64) {
        self.write(&format!("{seq} ok {generation}\n"));
    }

    fn write_failed(&self, seq: u64, errors: &[String]) {
        let mut text = format!("{seq} failed\n");
        for error in errors {
            text.push_str(error);
            text.push('\n');
        }
        self.write(&text);
    }

    fn write(&self, text: &str) {
        let written = self
            .file
            .set_len(0)
            .and_then(|()| self.file.write_all_at(text.as_bytes(), 0));
        if let Err(err) = written {
            log::error!(
                "cannot write the reload status {}: {err}",
                self.path.display()
            );
        }
    }
}

impl Drop for StatusFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A reload outcome as read back from the status file.
#[derive(Debug, PartialEq, Eq)]
struct Status {
    seq: u64,
    /// The generation now serving, or `None` when the reload failed.
    generation: Option<u64>,
    errors: Vec<String>,
}

fn parse_status(text: &str) -> Option<Status> {
    let (first, rest) = text.split_once('\n')?;
    let mut words = first.split(' ');
    let seq = words.next()?.parse().ok()?;
    let generation = match (words.next()?, words.next()) {
        ("ok", Some(generation)) => Some(generation.parse().ok()?),
        ("failed", None) => None,
        _ => return None,
    };
    if !rest.is_empty() && !rest.ends_with('\n') {
        return None;
    }
    let errors = rest.lines().map(str::to_owned).collect();
    Some(Status {
        seq,
        generation,
        errors,
    })
}

/// The status, read until two reads agree (the daemon rewrites the file in place).
fn read_status(path: &Path) -> io::Result<Option<Status>> {
    let mut last = std::fs::read_to_string(path)?;
    for _ in 0..100 {
        let again = std::fs::read_to_string(path)?;
        if again == last {
            return Ok(parse_status(&again));
        }
        last = again;
    }
    Ok(None)
}

/// `asycamore reload [--config PATH]`: signals the daemon and reports the outcome.
pub(super) fn request(config: Option<&Path>) -> ExitCode {
    let path = config.unwrap_or(Path::new(DEFAULT_CONFIG_PATH));
    match signal_and_wait(path) {
        Ok(Status {
            seq,
            generation: Some(generation),
            ..
        }) => {
            println!("reload #{seq}: ok, now serving configuration generation {generation}");
            ExitCode::SUCCESS
        }
        Ok(Status { seq, errors, .. }) => {
            eprintln!(
                "asycamore reload: reload #{seq} was rejected; the daemon keeps serving its previous configuration:"
            );
            for error in errors {
                eprintln!("{error}");
            }
            ExitCode::from(EXIT_CONFIG)
        }
        Err((code, message)) => {
            eprintln!("asycamore reload: {message}");
            ExitCode::from(code)
        }
    }
}

fn signal_and_wait(config: &Path) -> Result<Status, (u8, String)> {
    let pidfile = pidfile_of(config)?;
    let unreachable = |message: String| (EXIT_UNAVAILABLE, message);
    let pid = match process::running_pid(&pidfile) {
        Ok(Some(pid)) => pid,
        Ok(None) => {
            return Err(unreachable(format!(
                "no daemon holds the pidfile {}: is asycamore running?",
                pidfile.display()
            )));
        }
        Err(err) => {
            return Err(unreachable(format!(
                "cannot read the pidfile {}: {err}",
                pidfile.display()
            )));
        }
    };
    let pid = Pid::from_raw(i32::try_from(pid).map_err(|_| unreachable(format!("bad pid {pid}")))?);
    let status_path = status_path(&pidfile);
    let cannot_read = |err: io::Error| {
        unreachable(format!(
            "cannot read the reload status {}: {err}",
            status_path.display()
        ))
    };
    let before = read_status(&status_path)
        .map_err(cannot_read)?
        .map(|status| status.seq);
    kill(pid, Signal::SIGHUP)
        .map_err(|err| unreachable(format!("cannot signal the daemon (pid {pid}): {err}")))?;
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    loop {
        if let Some(status) = read_status(&status_path).map_err(cannot_read)? {
            if Some(status.seq) != before {
                return Ok(status);
            }
        }
        if kill(pid, None).is_err() {
            return Err(unreachable(format!(
                "the daemon (pid {pid}) exited before reporting"
            )));
        }
        if Instant::now() >= deadline {
            return Err(unreachable(format!(
                "no outcome from the daemon (pid {pid}) within {}s",
                REQUEST_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(POLL_EVERY);
    }
}

/// The pidfile named by the config at `path`. A config the daemon will reject still names
/// its pidfile when its `[server] pidfile` can be read: the daemon is signalled anyway, and
/// reports the errors itself (it is the judge: it may see other files than this process).
fn pidfile_of(path: &Path) -> Result<PathBuf, (u8, String)> {
    let name = path.display();
    let config: Result<Config, _> = config::load_file(path);
    match config {
        Ok(config) => config.pidfile.ok_or_else(|| {
            (
                EXIT_CONFIG,
                format!(
                    "{name}: server.pidfile is not set: `asycamore reload` finds the daemon \
                     through its pidfile"
                ),
            )
        }),
        Err(errors) => {
            let lenient = std::fs::read_to_string(path).ok().and_then(|text| {
                let table: toml::Table = text.parse().ok()?;
                let pidfile = table.get("server")?.get("pidfile")?.as_str()?;
                let pidfile = PathBuf::from(pidfile);
                pidfile.is_absolute().then_some(pidfile)
            });
            lenient.ok_or_else(|| (EXIT_CONFIG, errors.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_parse() {
        assert_eq!(
            parse_status("3 ok 2\n"),
            Some(Status {
                seq: 3,
                generation: Some(2),
                errors: vec![]
            })
        );
        assert_eq!(
            parse_status("4 failed\na: b\nc: d\n"),
            Some(Status {
                seq: 4,
                generation: None,
                errors: vec!["a: b".into(), "c: d".into()]
            })
        );
        for partial in ["", "3 o", "3 ok", "4 failed\na: b"] {
            assert_eq!(parse_status(partial), None, "{partial:?}");
        }
    }

    #[test]
    fn status_path_is_beside_the_pidfile() {
        assert_eq!(
            status_path(Path::new("/run/asycamore.pid")),
            Path::new("/run/asycamore.pid.reload")
        );
    }
}
