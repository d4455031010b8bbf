//! The error log: the `log` facade written to stderr, syslog or a file, one line per record.
//!
//! One global logger is installed once; its target can be switched (a reload) and reopened
//! (`SIGUSR1`, for logrotate) while the process runs, and its level is the `log` crate's
//! global maximum, so a reload changes it with one store. Under systemd, stderr is the
//! journal: `JOURNAL_STREAM` names the device and inode of the stream, and when stderr is that
//! stream each line starts with the sd-daemon priority prefix (`<3>` error, `<4>` warn, `<6>`
//! info, `<7>` debug and trace) and carries no time (the journal adds its own), so `journalctl
//! -p err` shows the errors. Elsewhere (a terminal, a file, a pipe; also a child that inherited
//! `JOURNAL_STREAM` but whose stderr was redirected) a stderr line carries an RFC 3339 time
//! and no prefix. A file line always does; syslog stamps its own. Never used on the
//! per-request path.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use log::{Level, LevelFilter, Log, Metadata, Record};
use syslog::{Facility, Formatter3164, LoggerBackend};

use crate::config::{LogConfig, LogTarget};

/// The one logger. Before [`init`], records go to stderr.
static LOGGER: Logger = Logger {
    sink: Mutex::new(None),
};

struct Logger {
    sink: Mutex<Option<Sink>>,
}

/// Where records go now, with what opened it (to tell whether a reload changes it).
struct Sink {
    target: LogTarget,
    out: Output,
}

enum Output {
    Stderr {
        style: StderrStyle,
    },
    Syslog {
        logger: syslog::Logger<LoggerBackend, Formatter3164>,
        /// The socket, when not the system's (tests).
        socket: Option<PathBuf>,
    },
    File {
        path: PathBuf,
        file: File,
    },
}

impl Logger {
    fn sink(&self) -> MutexGuard<'_, Option<Sink>> {
        // A panic while logging leaves nothing half-done that matters: keep logging.
        self.sink.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // Formatted before the lock: a Display impl that logs must not deadlock.
        let message = record.args().to_string();
        let mut sink = self.sink();
        match sink.as_mut().map(|sink| &mut sink.out) {
            None => write_stderr(stderr_style(), record.level(), &message),
            Some(out) => out.write(record.level(), &message),
        }
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

impl Output {
    /// Opens the output `target` names.
    fn open(target: &LogTarget) -> io::Result<Output> {
        match target {
            LogTarget::Stderr => Ok(Output::Stderr {
                style: stderr_style(),
            }),
            LogTarget::Syslog { facility, tag } => open_syslog(facility, tag, None),
            LogTarget::File(path) => {
                let path = std::path::absolute(path)?;
                let file = open_append(&path)?;
                Ok(Output::File { path, file })
            }
        }
    }

    fn write(&mut self, level: Level, message: &str) {
        match self {
            Output::Stderr { style } => write_stderr(*style, level, message),
            Output::File { file, .. } => {
                let line = stamped_line(level, message);
                // One write per line: O_APPEND keeps lines whole even with other writers.
                if file.write_all(line.as_bytes()).is_err() {
                    // A log file that cannot be written has stderr left, if anything.
                    let _ = std::io::stderr().write_all(line.as_bytes());
                }
            }
            Output::Syslog { logger, socket } => {
                if send_syslog(logger, level, message).is_ok() {
                    return;
                }
                // The daemon behind the socket may have restarted: connect again, once.
                let formatter = logger.formatter.clone();
                if let Ok(Output::Syslog { logger: fresh, .. }) =
                    reconnect_syslog(formatter, socket.as_deref())
                {
                    *logger = fresh;
                    if send_syslog(logger, level, message).is_ok() {
                        return;
                    }
                }
                write_stderr(stderr_style(), level, message);
            }
        }
    }

    /// Opens the same output again: a file by its path (logrotate moved the old one), the
    /// syslog socket anew. Keeps the old output when the new one cannot be opened.
    fn reopen(&mut self) -> io::Result<()> {
        match self {
            Output::Stderr { .. } => Ok(()),
            Output::File { path, file } => {
                *file = open_append(path)?;
                Ok(())
            }
            Output::Syslog { logger, socket } => {
                let formatter = logger.formatter.clone();
                *self = reconnect_syslog(formatter, socket.as_deref())?;
                Ok(())
            }
        }
    }
}

/// Installs the logger (once) with `config`'s target and level. Before it, records go to
/// stderr at whatever level [`init_stderr`] set. Called again, it replaces the target.
pub(super) fn init(config: &LogConfig) -> io::Result<()> {
    let out = Output::open(&config.target)?;
    install();
    *LOGGER.sink() = Some(Sink {
        target: config.target.clone(),
        out,
    });
    log::set_max_level(config.level);
    Ok(())
}

/// Installs the logger writing to stderr at `level`, for what happens before the config is
/// loaded (its errors included).
pub(super) fn init_stderr(level: LevelFilter) {
    install();
    log::set_max_level(level);
}

/// Applies a reloaded `config`: the level at once; the target only when it changed, and
/// when the new one cannot be opened the old one stays and the error is logged to it.
pub(super) fn apply(config: &LogConfig) {
    log::set_max_level(config.level);
    let mut sink = LOGGER.sink();
    if sink
        .as_ref()
        .is_some_and(|sink| sink.target == config.target)
    {
        return;
    }
    match Output::open(&config.target) {
        Ok(out) => {
            *sink = Some(Sink {
                target: config.target.clone(),
                out,
            });
        }
        Err(err) => {
            drop(sink);
            log::error!(
                "cannot switch the error log to {}: {err}; logging here instead",
                describe(&config.target)
            );
        }
    }
}

/// Reopens the log file (or reconnects to syslog), for `SIGUSR1` after logrotate moved the
/// file away. On failure the old file stays in use and the error is logged to it.
pub(super) fn reopen() {
    let mut sink = LOGGER.sink();
    let Some(current) = sink.as_mut() else {
        return;
    };
    let what = describe(&current.target);
    let reopened = current.out.reopen();
    let is_file = matches!(current.out, Output::File { .. });
    drop(sink);
    match reopened {
        // The first line in the new file says why it exists.
        Ok(()) if is_file => log::info!("reopened the error log {what}"),
        Ok(()) => {}
        Err(err) => log::error!("cannot reopen the error log {what}: {err}"),
    }
}

fn install() {
    // Fails only when already installed, which is fine: the sink is what changes.
    let _ = log::set_logger(&LOGGER);
}

/// How a line written to stderr looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StderrStyle {
    /// A terminal, file or pipe: an RFC 3339 time, the level, the message.
    Stamped,
    /// The journal: each line starts with its sd-daemon priority (`<3>`), and has no time.
    Journal,
}

/// The style for stderr now: [`StderrStyle::Journal`] when `JOURNAL_STREAM` names the device
/// and inode stderr is open on (as sd-daemon(3) recommends checking: the variable alone is
/// inherited by children whose stderr may go elsewhere).
fn stderr_style() -> StderrStyle {
    if is_journal_stream(
        std::env::var_os("JOURNAL_STREAM").as_deref(),
        std::io::stderr().as_fd(),
    ) {
        StderrStyle::Journal
    } else {
        StderrStyle::Stamped
    }
}

/// Whether stdout is the journal (`JOURNAL_STREAM` names it): `--check` under the unit's
/// ExecStartPre=.
pub(super) fn stdout_is_journal() -> bool {
    is_journal_stream(
        std::env::var_os("JOURNAL_STREAM").as_deref(),
        std::io::stdout().as_fd(),
    )
}

/// Whether `journal_stream` (the value of `JOURNAL_STREAM`, "DEVICE:INODE" in decimal) names
/// the file `fd` is open on.
fn is_journal_stream(journal_stream: Option<&OsStr>, fd: impl AsFd) -> bool {
    let Some((device, inode)) = journal_stream
        .and_then(OsStr::to_str)
        .and_then(|value| value.split_once(':'))
    else {
        return false;
    };
    let (Ok(device), Ok(inode)) = (device.parse::<u64>(), inode.parse::<u64>()) else {
        return false;
    };
    // fstat through a duplicate (std's metadata gives the device and inode as u64 everywhere).
    fd.as_fd()
        .try_clone_to_owned()
        .and_then(|fd| File::from(fd).metadata())
        .is_ok_and(|meta| meta.dev() == device && meta.ino() == inode)
}

/// The sd-daemon priority of `level` (syslog's severities): error 3, warning 4, info 6,
/// debug 7 (trace too: syslog has nothing below debug).
fn journal_priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// One record as written to stderr in `style`, ending in a newline. In the journal style every
/// line of a multi-line message carries the prefix, since the journal splits the stream into
/// entries at each newline and reads each entry's priority from its own start.
fn stderr_line(style: StderrStyle, level: Level, message: &str) -> String {
    match style {
        StderrStyle::Stamped => stamped_line(level, message),
        StderrStyle::Journal => {
            let prefix = format!("<{}>", journal_priority(level));
            let mut line = format!("{prefix}{level:<5} ");
            let mut lines = message.split('\n');
            line.push_str(lines.next().unwrap_or_default());
            for next in lines {
                line.push('\n');
                line.push_str(&prefix);
                line.push_str(next);
            }
            line.push('\n');
            line
        }
    }
}

fn write_stderr(style: StderrStyle, level: Level, message: &str) {
    let line = stderr_line(style, level, message);
    // A log line that cannot be written has nowhere else to go.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

fn stamped_line(level: Level, message: &str) -> String {
    format!(
        "{} {level:<5} {message}\n",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now())
    )
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().append(true).create(true).open(path)
}

fn open_syslog(facility: &str, tag: &str, socket: Option<&Path>) -> io::Result<Output> {
    let facility = Facility::from_str(facility).map_err(|()| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown syslog facility {facility:?}"),
        )
    })?;
    let formatter = Formatter3164 {
        facility,
        hostname: None,
        process: tag.to_string(),
        pid: std::process::id(),
    };
    reconnect_syslog(formatter, socket)
}

fn reconnect_syslog(formatter: Formatter3164, socket: Option<&Path>) -> io::Result<Output> {
    let logger = match socket {
        Some(path) => syslog::unix_custom(formatter, path),
        None => syslog::unix(formatter),
    }
    .map_err(|err| io::Error::other(format!("cannot connect to syslog: {err}")))?;
    Ok(Output::Syslog {
        logger,
        socket: socket.map(Path::to_path_buf),
    })
}

fn send_syslog(
    logger: &mut syslog::Logger<LoggerBackend, Formatter3164>,
    level: Level,
    message: &str,
) -> syslog::Result<()> {
    // The pid of the process now: the daemon may have forked since the logger was opened.
    logger.formatter.pid = std::process::id();
    match level {
        Level::Error => logger.err(message),
        Level::Warn => logger.warning(message),
        Level::Info => logger.info(message),
        Level::Debug | Level::Trace => logger.debug(message),
    }
}

fn describe(target: &LogTarget) -> String {
    match target {
        LogTarget::Stderr => "stderr".to_string(),
        LogTarget::Syslog { facility, tag } => format!("syslog ({facility}, tag {tag})"),
        LogTarget::File(path) => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;
    use std::time::Duration;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("asycamore-logging-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_file_output_appends_stamped_lines_and_reopens_after_a_move() {
        let dir = temp_dir("file");
        let path = dir.join("error.log");
        std::fs::write(&path, "old line\n").unwrap();
        let mut out = Output::open(&LogTarget::File(path.clone())).unwrap();
        out.write(Level::Warn, "first");
        let rotated = dir.join("error.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        out.write(Level::Info, "still to the moved file");
        out.reopen().unwrap();
        out.write(Level::Error, "second");

        let old = std::fs::read_to_string(&rotated).unwrap();
        let lines: Vec<&str> = old.lines().collect();
        assert_eq!(lines.len(), 3, "{old}");
        assert_eq!(lines[0], "old line");
        assert!(lines[1].ends_with("Z WARN  first"), "{}", lines[1]);
        assert!(lines[2].ends_with("Z INFO  still to the moved file"));
        let new = std::fs::read_to_string(&path).unwrap();
        assert_eq!(new.lines().count(), 1, "{new}");
        assert!(new.ends_with("Z ERROR second\n"), "{new}");
        // The time is RFC 3339, to the second.
        assert!(humantime::parse_rfc3339(&new[..20]).is_ok(), "{new}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_reopen_that_fails_keeps_the_old_file() {
        let dir = temp_dir("keep");
        let path = dir.join("sub").join("error.log");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut out = Output::open(&LogTarget::File(path.clone())).unwrap();
        let moved = dir.join("moved");
        std::fs::rename(path.parent().unwrap(), &moved).unwrap();
        assert!(out.reopen().is_err());
        out.write(Level::Info, "kept");
        let text = std::fs::read_to_string(moved.join("error.log")).unwrap();
        assert!(text.ends_with("INFO  kept\n"), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn syslog_gets_facility_severity_tag_and_pid() {
        let dir = temp_dir("syslog");
        let socket = dir.join("log.sock");
        let server = UnixDatagram::bind(&socket).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut out = open_syslog("local3", "asy-test", Some(&socket)).unwrap();
        out.write(Level::Warn, "disk almost full");
        out.write(Level::Debug, "detail");
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).unwrap();
        let first = String::from_utf8_lossy(&buf[..n]).into_owned();
        // local3 = 19, warning = 4: priority 19 * 8 + 4.
        assert!(first.starts_with("<156>"), "{first}");
        let pid = std::process::id();
        assert!(
            first.ends_with(&format!(" asy-test[{pid}]: disk almost full")),
            "{first}"
        );
        let n = server.recv(&mut buf).unwrap();
        let second = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(second.starts_with("<159>"), "{second}");

        // The syslog daemon restarts: the next record reconnects by itself, and so does reopen.
        drop(server);
        std::fs::remove_file(&socket).unwrap();
        let server = UnixDatagram::bind(&socket).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        out.write(Level::Error, "after restart");
        let n = server.recv(&mut buf).unwrap();
        let third = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(third.starts_with("<155>"), "{third}");
        assert!(third.ends_with("after restart"), "{third}");
        out.reopen().unwrap();
        out.write(Level::Info, "after reopen");
        let n = server.recv(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).ends_with("after reopen"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_journal_line_starts_with_its_sd_daemon_priority_and_has_no_time() {
        let line = |level| stderr_line(StderrStyle::Journal, level, "message");
        assert_eq!(line(Level::Error), "<3>ERROR message\n");
        assert_eq!(line(Level::Warn), "<4>WARN  message\n");
        assert_eq!(line(Level::Info), "<6>INFO  message\n");
        assert_eq!(line(Level::Debug), "<7>DEBUG message\n");
        assert_eq!(line(Level::Trace), "<7>TRACE message\n");
        // Each line of a multi-line message is its own journal entry, at the same priority.
        assert_eq!(
            stderr_line(
                StderrStyle::Journal,
                Level::Error,
                "two errors:\na.toml:1:1: x"
            ),
            "<3>ERROR two errors:\n<3>a.toml:1:1: x\n"
        );
    }

    #[test]
    fn a_stamped_line_has_a_time_and_no_priority() {
        let line = stderr_line(StderrStyle::Stamped, Level::Error, "message");
        assert!(line.ends_with("Z ERROR message\n"), "{line}");
        assert!(humantime::parse_rfc3339(&line[..20]).is_ok(), "{line}");
    }

    #[test]
    fn journal_stream_must_name_the_device_and_inode_of_the_descriptor() {
        let dir = temp_dir("journal-stream");
        let path = dir.join("stream");
        let file = File::create(&path).unwrap();
        let meta = file.metadata().unwrap();
        let other = File::create(dir.join("other")).unwrap();
        let this = format!("{}:{}", meta.dev(), meta.ino());
        let value = |text: &str| Some(OsStr::new(text).to_owned());
        assert!(is_journal_stream(value(&this).as_deref(), &file));
        // Set but naming another file (a child whose stderr was redirected): not the journal.
        assert!(!is_journal_stream(value(&this).as_deref(), &other));
        assert!(!is_journal_stream(None, &file));
        for bad in [
            "",
            ":",
            "1",
            "x:y",
            &format!("{}:", meta.dev()),
            &format!("{this}:1"),
        ] {
            assert!(!is_journal_stream(value(bad).as_deref(), &file), "{bad:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unknown_facility_is_an_error() {
        let err = open_syslog("nope", "x", Some(Path::new("/nonexistent")))
            .err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
