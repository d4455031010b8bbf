//! The access log file: the [`AccessSink`] the workers hand their batches to, and its reopen
//! for `SIGUSR1` (logrotate).
//!
//! A batch is one `write` to a file opened with `O_APPEND`, so batches from several workers
//! never interleave and need no lock between them (the lock here only guards swapping the
//! file on reopen). Every open sink is registered, so [`reopen_all`] reaches the ones the
//! workers hold, and a reload naming the same file keeps using the same sink.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};

use crate::config::{AccessFormatSpec, AccessLogConfig};
use crate::server::{AccessFormat, AccessLog, AccessSink};

/// Every sink opened and still held by someone, for [`reopen_all`].
static SINKS: Mutex<Vec<Weak<FileSink>>> = Mutex::new(Vec::new());

/// An access log file, appended to a batch at a time.
#[derive(Debug)]
pub(super) struct FileSink {
    path: PathBuf,
    file: RwLock<File>,
    /// Whether the last write failed (so a failing disk logs once, not per batch).
    failing: AtomicBool,
}

impl FileSink {
    /// Opens (creating) `path` for appending.
    fn open(path: &Path) -> io::Result<FileSink> {
        Ok(FileSink {
            path: path.to_path_buf(),
            file: RwLock::new(open_append(path)?),
            failing: AtomicBool::new(false),
        })
    }

    /// Opens the file by its path again; batches written meanwhile go to the old one.
    fn reopen(&self) -> io::Result<()> {
        let file = open_append(&self.path)?;
        *self.file.write().unwrap_or_else(PoisonError::into_inner) = file;
        Ok(())
    }
}

impl AccessSink for FileSink {
    fn write_batch(&self, lines: &[u8]) {
        let file = self.file.read().unwrap_or_else(PoisonError::into_inner);
        // `&File` writes need no exclusive access; O_APPEND places each write whole at the end.
        match (&*file).write_all(lines) {
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    log::info!("access log {} is written again", self.path.display());
                }
            }
            Err(err) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    log::error!(
                        "cannot write the access log {}: {err}; lines are lost until it works",
                        self.path.display()
                    );
                }
            }
        }
    }
}

/// Builds the server's access log from `config`: the file is opened (created) now, so a
/// path that cannot be written is an error at startup or reload, not later. A file already
/// open (the same log through a reload) keeps its sink.
pub(super) fn open(config: &AccessLogConfig) -> io::Result<AccessLog> {
    let path = std::path::absolute(&config.file)?;
    let mut sinks = SINKS.lock().unwrap_or_else(PoisonError::into_inner);
    sinks.retain(|sink| sink.strong_count() > 0);
    let existing = sinks
        .iter()
        .filter_map(Weak::upgrade)
        .find(|sink| sink.path == path);
    let sink = match existing {
        Some(sink) => sink,
        None => {
            let sink = Arc::new(FileSink::open(&path).map_err(|err| {
                io::Error::new(
                    err.kind(),
                    format!("cannot open the access log {}: {err}", path.display()),
                )
            })?);
            sinks.push(Arc::downgrade(&sink));
            sink
        }
    };
    Ok(AccessLog {
        format: match config.format {
            AccessFormatSpec::Combined => AccessFormat::Combined,
            AccessFormatSpec::Json => AccessFormat::Json,
        },
        sink,
        flush_interval: config.flush_interval,
    })
}

/// Reopens every access log file in use, for `SIGUSR1` after logrotate moved them away.
/// A file that cannot be reopened stays on its old descriptor; the error is logged.
pub(super) fn reopen_all() {
    let sinks: Vec<Arc<FileSink>> = {
        let mut sinks = SINKS.lock().unwrap_or_else(PoisonError::into_inner);
        sinks.retain(|sink| sink.strong_count() > 0);
        sinks.iter().filter_map(Weak::upgrade).collect()
    };
    for sink in sinks {
        if let Err(err) = sink.reopen() {
            log::error!(
                "cannot reopen the access log {}: {err}; still writing to the old file",
                sink.path.display()
            );
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().append(true).create(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("asycamore-access-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn config(file: PathBuf, format: AccessFormatSpec) -> AccessLogConfig {
        AccessLogConfig {
            file,
            format,
            flush_interval: Duration::from_millis(250),
        }
    }

    #[test]
    fn batches_are_appended_whole_and_reopen_after_a_move_starts_a_new_file() {
        let dir = temp_dir("reopen");
        let path = dir.join("access.log");
        std::fs::write(&path, "earlier\n").unwrap();
        let log = open(&config(path.clone(), AccessFormatSpec::Json)).unwrap();
        assert_eq!(log.format, AccessFormat::Json);
        assert_eq!(log.flush_interval, Duration::from_millis(250));
        log.sink.write_batch(b"one\ntwo\n");
        let rotated = dir.join("access.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        log.sink.write_batch(b"three\n");
        reopen_all();
        assert!(path.exists(), "reopen creates the file again");
        log.sink.write_batch(b"four\nfive\n");
        assert_eq!(
            std::fs::read_to_string(&rotated).unwrap(),
            "earlier\none\ntwo\nthree\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "four\nfive\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_same_file_keeps_its_sink_across_reloads_and_a_dropped_one_is_forgotten() {
        let dir = temp_dir("reuse");
        let path = dir.join("access.log");
        let first = open(&config(path.clone(), AccessFormatSpec::Combined)).unwrap();
        let second = open(&config(path.clone(), AccessFormatSpec::Json)).unwrap();
        assert!(Arc::ptr_eq(&first.sink, &second.sink));
        assert_eq!(first.format, AccessFormat::Combined);
        assert_eq!(second.format, AccessFormat::Json);
        let other = open(&config(dir.join("other.log"), AccessFormatSpec::Json)).unwrap();
        assert!(!Arc::ptr_eq(&first.sink, &other.sink));
        drop((first, second));
        let third = open(&config(path.clone(), AccessFormatSpec::Combined)).unwrap();
        let registered = SINKS
            .lock()
            .unwrap()
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|sink| sink.path == path)
            .count();
        assert_eq!(registered, 1);
        drop((third, other));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn concurrent_batches_never_interleave() {
        let dir = temp_dir("concurrent");
        let path = dir.join("access.log");
        let log = open(&config(path.clone(), AccessFormatSpec::Combined)).unwrap();
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let sink = log.sink.clone();
                std::thread::spawn(move || {
                    let line = format!("{}\n", char::from(b'a' + t).to_string().repeat(99));
                    let batch = line.repeat(200);
                    for _ in 0..50 {
                        sink.write_batch(batch.as_bytes());
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 4 * 50 * 200);
        for line in text.lines() {
            assert_eq!(line.len(), 99);
            assert!(line.bytes().all(|b| b == line.as_bytes()[0]), "{line}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unwritable_path_is_an_error_naming_it() {
        let dir = temp_dir("missing");
        let path = dir.join("no-such-dir").join("access.log");
        let err = open(&config(path, AccessFormatSpec::Combined)).unwrap_err();
        assert!(err.to_string().contains("no-such-dir"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
