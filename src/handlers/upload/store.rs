//! The upload's files on disk: the temporary file a body is written to, giving it its final
//! name without replacing anything, and sweeping temporary files a killed process left.
//!
//! Where the filesystem allows, the temporary file is unnamed (`O_TMPFILE` in the upload
//! directory): nothing is visible while the body arrives, and a process killed with `kill -9`
//! leaves nothing, since the kernel frees an unnamed file when its last descriptor closes. It
//! gets its name with `linkat` through `/proc/self/fd/N` (`AT_SYMLINK_FOLLOW`, which needs no
//! capability, unlike `AT_EMPTY_PATH`). Where it does not (`EOPNOTSUPP`, `EISDIR`, `EINVAL`:
//! an old kernel or a filesystem without it), or `/proc` is not mounted, the file is
//! `.upload-<16 hex>.tmp`, created exclusively and held under an exclusive `flock` while it is
//! open: [`sweep_stale`] removes only files of that naming that nobody holds, so it never
//! takes a file from an upload in progress, in this process or another.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, Flock, FlockArg};

use super::{NAME_ATTEMPTS, random_hex, remove_partial};

/// Mode bits of stored files (before the umask): owner read-write, group read.
pub(super) const FILE_MODE: u32 = 0o640;
/// A named temporary file is `TEMP_PREFIX`, `TEMP_HEX` lower-case hex digits, `TEMP_SUFFIX`.
const TEMP_PREFIX: &str = ".upload-";
const TEMP_HEX: usize = 16;
const TEMP_SUFFIX: &str = ".tmp";

/// A temporary file being written. Dropping it removes it: an unnamed file is freed when
/// its descriptor closes, a named one is unlinked.
#[derive(Debug)]
pub(super) struct TempFile {
    pub(super) file: File,
    /// The upload directory (for an unnamed file's log lines).
    dir: PathBuf,
    /// `None` for an unnamed file.
    named: Option<Named>,
}

/// A named temporary file: its path, and the lock that tells a sweep it is in use (held on
/// a duplicate of the descriptor, which shares the open file and so the lock).
#[derive(Debug)]
struct Named {
    path: PathBuf,
    _lock: Flock<File>,
}

impl TempFile {
    /// Creates a fresh temporary file in `dir`: unnamed while `unnamed` holds (cleared, once
    /// and with one log line, when the filesystem refuses `O_TMPFILE`), else named. On
    /// failure, the error and the path tried.
    pub(super) fn create(
        dir: &Path,
        unnamed: &AtomicBool,
    ) -> Result<TempFile, (io::Error, PathBuf)> {
        if unnamed.load(Ordering::Relaxed) && proc_fd_works() {
            match OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
                .mode(FILE_MODE)
                .open(dir)
            {
                Ok(file) => {
                    return Ok(TempFile {
                        file,
                        dir: dir.to_path_buf(),
                        named: None,
                    });
                }
                Err(error)
                    if matches!(
                        error.raw_os_error(),
                        Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
                    ) =>
                {
                    if unnamed.swap(false, Ordering::Relaxed) {
                        log::info!(
                            "upload: {} does not take unnamed files (O_TMPFILE: {error}); \
                             using named .upload-*.tmp files, swept at start",
                            dir.display()
                        );
                    }
                }
                Err(error) => return Err((error, dir.to_path_buf())),
            }
        }
        Self::create_named(dir)
    }

    /// Creates `.upload-<random>.tmp` exclusively in `dir` and locks it.
    pub(super) fn create_named(dir: &Path) -> Result<TempFile, (io::Error, PathBuf)> {
        let mut last = None;
        for _ in 0..NAME_ATTEMPTS {
            let path = dir.join(format!(
                "{TEMP_PREFIX}{}{TEMP_SUFFIX}",
                random_hex(TEMP_HEX)
            ));
            let file = match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(FILE_MODE)
                .open(&path)
            {
                Ok(file) => file,
                Err(error) if error.kind() == ErrorKind::AlreadyExists => {
                    last = Some((error, path));
                    continue;
                }
                Err(error) => return Err((error, path)),
            };
            let lock = file.try_clone().map_err(|error| (error, path.clone()))?;
            let lock = match Flock::lock(lock, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => lock,
                // A sweep holds it (and is removing it): another name.
                Err((_, Errno::EWOULDBLOCK)) => continue,
                Err((_, errno)) => return Err((errno.into(), path)),
            };
            // A sweep may have locked and removed it before the lock was taken: the name
            // must still be this file.
            if !same_file(&file, &path) {
                continue;
            }
            return Ok(TempFile {
                file,
                dir: dir.to_path_buf(),
                named: Some(Named { path, _lock: lock }),
            });
        }
        Err(last.unwrap_or_else(|| (io::Error::from(ErrorKind::AlreadyExists), dir.to_path_buf())))
    }

    /// Whether the file has no name (`O_TMPFILE`).
    #[cfg(test)]
    pub(super) fn is_unnamed(&self) -> bool {
        self.named.is_none()
    }

    /// The path to name in log lines.
    pub(super) fn describe(&self) -> PathBuf {
        match &self.named {
            Some(named) => named.path.clone(),
            None => self.dir.join("(unnamed temporary file)"),
        }
    }

    /// Gives the file the name `target` as well, failing with `AlreadyExists` (never
    /// replacing) when the name is taken.
    pub(super) fn link(&self, target: &Path) -> io::Result<()> {
        match &self.named {
            Some(named) => fs::hard_link(&named.path, target),
            None => {
                let fd = format!("/proc/self/fd/{}", self.file.as_raw_fd());
                nix::unistd::linkat(
                    AT_FDCWD,
                    fd.as_str(),
                    AT_FDCWD,
                    target,
                    AtFlags::AT_SYMLINK_FOLLOW,
                )
                .map_err(io::Error::from)
            }
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(named) = &self.named {
            remove_partial(&named.path);
        }
    }
}

/// Whether `/proc/self/fd` can name an unnamed file (checked once: without `/proc` mounted,
/// an `O_TMPFILE` file could never be linked, so named files are used instead).
fn proc_fd_works() -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| Path::new("/proc/self/fd").is_dir())
}

/// Whether `path` names the file open as `file` (same device and inode).
fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

/// Whether `name` is of our temporary files' naming: `.upload-` + 16 lower-case hex + `.tmp`.
pub(super) fn is_temp_name(name: &[u8]) -> bool {
    let Some(rest) = name.strip_prefix(TEMP_PREFIX.as_bytes()) else {
        return false;
    };
    let Some(hex) = rest.strip_suffix(TEMP_SUFFIX.as_bytes()) else {
        return false;
    };
    hex.len() == TEMP_HEX && hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What [`sweep_stale`] removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Files removed.
    pub files: usize,
    /// Their sizes, summed.
    pub bytes: u64,
}

/// Removes the stale temporary files in `dir`: regular files of our naming
/// (`.upload-<16 hex>.tmp`) that no open upload holds (their `flock` is free: the process that
/// wrote them was killed). Nothing else is touched: not other names, not symlinks, not a
/// file in use. Reads the whole directory: call it at start and for a directory new to the
/// process, not per request. Files that cannot be removed are logged and skipped.
///
/// # Errors
///
/// When the directory cannot be read.
pub fn sweep_stale(dir: &Path) -> io::Result<Swept> {
    let mut swept = Swept::default();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !is_temp_name(entry.file_name().as_bytes()) {
            continue;
        }
        let path = entry.path();
        match sweep_one(&path) {
            Ok(Some(bytes)) => {
                swept.files += 1;
                swept.bytes += bytes;
            }
            Ok(None) => {}
            Err(error) => log::warn!("upload: cannot sweep {}: {error}", path.display()),
        }
    }
    Ok(swept)
}

/// Removes one candidate if it is stale; its size when removed.
fn sweep_one(path: &Path) -> io::Result<Option<u64>> {
    // No symlink followed, no FIFO waited on.
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(file) => file,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
        Err(error) if error.raw_os_error() == Some(libc::ELOOP) => return Ok(None),
        Err(error) => return Err(error),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(None);
    }
    let _lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        // An upload in progress holds it.
        Err((_, Errno::EWOULDBLOCK)) => return Ok(None),
        Err((_, errno)) => return Err(errno.into()),
    };
    // Still the file that was locked (not removed and re-created meanwhile)?
    match fs::symlink_metadata(path) {
        Ok(named) if named.dev() == meta.dev() && named.ino() == meta.ino() => {}
        _ => return Ok(None),
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(Some(meta.len())),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}
