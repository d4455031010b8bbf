//! The error log: the `log` facade written to stderr, one line per record.
//!
//! Under systemd, stderr is the journal, which adds its own timestamps; elsewhere the line
//! carries an RFC 3339 time. Never used on the per-request path.

use std::io::{IsTerminal, Write};

use log::{LevelFilter, Log, Metadata, Record};

struct StderrLogger {
    timestamps: bool,
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut stderr = std::io::stderr().lock();
        // A log line that cannot be written has nowhere else to go.
        let _ = if self.timestamps {
            writeln!(
                stderr,
                "{} {:<5} {}",
                humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
                record.level(),
                record.args()
            )
        } else {
            writeln!(stderr, "{:<5} {}", record.level(), record.args())
        };
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// Installs the logger (once; later calls change only the level).
pub(super) fn init(level: LevelFilter) {
    let under_journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let logger = StderrLogger {
        timestamps: !under_journal || std::io::stderr().is_terminal(),
    };
    let _ = log::set_boxed_logger(Box::new(logger));
    log::set_max_level(level);
}
