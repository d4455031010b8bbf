//! Reload: on SIGHUP the daemon reads, validates and builds the config file again and
//! publishes it, or keeps serving the old one and logs every error; the outcome goes to a
//! status file beside the pidfile, which `asycamore reload` waits on.
//!
//! Publishing: the fallible steps first (opening a new access-log file, binding new listen
//! addresses; `set_listeners` is all-or-nothing), so a failure changes nothing; then limits,
//! access log, the route table with generation + 1 (requests already parsed finish on the
//! table they were parsed under), the log level. Keys that need a restart
//! (`config::reload_restart_keys`) keep their running values and are logged by name, and
//! returned as warnings (for `POST /reload`'s answer and the status file).
//!
//! A reload request naming a file (`POST /reload` with `Asycamore-Config`) that is not the
//! daemon's is refused ([`Daemon::wrong_file`]): logged, not counted, nothing reloaded.
//!
//! The status file, `<pidfile>.reload`: first line `<seq> ok <generation>` or
//! `<seq> failed`, second line `config <the file the daemon runs>`, then one error (or, after
//! an `ok`, one restart warning) per line. `seq` counts reload attempts (0 at start). It is
//! created at start-up (before privileges are dropped) and rewritten in place through the
//! descriptor kept open, so a daemon running as an unprivileged user can still update it in
//! a directory it cannot write.

use std::fs::{File, OpenOptions};
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{Daemon, load, source_name};

/// How long a reload waits for every worker to take the new configuration.
const BARRIER_TIMEOUT: Duration = Duration::from_secs(5);
use crate::config;

impl Daemon {
    /// Handles one reload (SIGHUP, or `POST /reload` on the admin port: `trigger`); the new
    /// generation, or every error.
    pub(super) fn reload(&mut self, trigger: &str) -> Result<(u64, Vec<String>), Vec<String>> {
        self.reloads += 1;
        let seq = self.reloads;
        if let Some(notifier) = &self.notifier {
            notifier.reloading();
        }
        let source = source_name(self.config_path.as_deref());
        log::info!("{trigger}: reload #{seq}: reading {source}");
        let result = self
            .try_reload(seq)
            .map(|warnings| (self.generation, warnings));
        match &result {
            Ok((_, warnings)) => {
                if let Some(status) = &self.status {
                    status.write_ok(seq, self.generation, warnings);
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

    /// Loads and publishes the config: the warnings (changed keys that need a restart), or
    /// every error line when it cannot.
    fn try_reload(&mut self, seq: u64) -> Result<Vec<String>, Vec<String>> {
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
        super::sweep_upload_dirs(&new, Some(&self.config));
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
        let warnings: Vec<String> = restart
            .into_iter()
            .map(|key| format!("{key} changed, which needs a restart; the running value stays"))
            .collect();
        for warning in &warnings {
            log::warn!("reload #{seq}: {warning}");
        }
        log::info!(
            "reload #{seq}: generation {} now serving {} route(s)",
            self.generation,
            new.routes.len()
        );
        self.config = new;
        Ok(warnings)
    }

    /// The answer to a reload request naming `given` when that is not this daemon's file
    /// (compared after resolving symbolic links); logged, not counted as a reload.
    pub(super) fn wrong_file(&self, given: Option<&Path>) -> Option<crate::admin::ReloadOutcome> {
        let given = given?;
        if self
            .config_path
            .as_deref()
            .is_some_and(|running| same_file(given, running))
        {
            return None;
        }
        let running = source_name(self.config_path.as_deref());
        log::warn!(
            "POST /reload refused: {} is not this daemon's configuration file, which is \
             {running}",
            given.display()
        );
        Some(crate::admin::ReloadOutcome::WrongFile {
            given: given.display().to_string(),
            running,
        })
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
    /// The configuration file the daemon runs (`config` line), for `asycamore reload` to
    /// refuse another.
    source: String,
}

/// Where the status of the daemon with `pidfile` is written.
pub(super) fn status_path(pidfile: &Path) -> PathBuf {
    let mut name = pidfile.as_os_str().to_owned();
    name.push(".reload");
    PathBuf::from(name)
}

impl StatusFile {
    pub(super) fn create(pidfile: &Path, source: String) -> io::Result<StatusFile> {
        let path = status_path(pidfile);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&path)?;
        Ok(StatusFile { path, file, source })
    }

    pub(super) fn write_ok(&self, seq: u64, generation: u64, warnings: &[String]) {
        let mut text = format!("{seq} ok {generation}\nconfig {}\n", self.source);
        for warning in warnings {
            text.push_str(warning);
            text.push('\n');
        }
        self.write(&text);
    }

    fn write_failed(&self, seq: u64, errors: &[String]) {
        let mut text = format!("{seq} failed\nconfig {}\n", self.source);
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
pub(super) struct Status {
    pub(super) seq: u64,
    /// The generation now serving, or `None` when the reload failed.
    pub(super) generation: Option<u64>,
    /// The configuration file the daemon runs.
    pub(super) config: String,
    /// The errors of a failed reload, the warnings of one that succeeded.
    pub(super) errors: Vec<String>,
}

fn parse_status(text: &str) -> Option<Status> {
    let (first, rest) = text.split_once('\n')?;
    let (config, rest) = rest.split_once('\n')?;
    let config = config.strip_prefix("config ")?.to_owned();
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
        config,
        errors,
    })
}

/// The status, read until two reads agree (the daemon rewrites the file in place).
pub(super) fn read_status(path: &Path) -> io::Result<Option<Status>> {
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

/// Whether `a` and `b` name the same file: the same device and inode, else (one cannot be
/// read) the same path once made absolute.
pub(super) fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => std::path::absolute(a).ok() == std::path::absolute(b).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_parse() {
        assert_eq!(
            parse_status("3 ok 2\nconfig /etc/a b.toml\n"),
            Some(Status {
                seq: 3,
                generation: Some(2),
                config: "/etc/a b.toml".into(),
                errors: vec![]
            })
        );
        assert_eq!(
            parse_status("4 failed\nconfig /a.toml\na: b\nc: d\n"),
            Some(Status {
                seq: 4,
                generation: None,
                config: "/a.toml".into(),
                errors: vec!["a: b".into(), "c: d".into()]
            })
        );
        for partial in [
            "",
            "3 o",
            "3 ok",
            "3 ok 2\n",
            "3 ok 2\nconfig /a",
            "4 failed\nconfig /a\na: b",
        ] {
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
