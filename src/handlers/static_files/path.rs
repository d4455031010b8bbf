//! Request path to file: percent-decoding (once), segment checks, and opening a file so that
//! it provably lies under the root.
//!
//! Decoding: the part of the path below the route's prefix is split on literal `/`, empty
//! segments are dropped, and each segment is percent-decoded exactly once. An invalid escape
//! or a NUL byte is 400; a segment that is `.` or `..` (literally or encoded, e.g. `%2e%2e`)
//! or that decodes to something containing `/` (`%2f`) is 404: no file can have such a name
//! and answering 404 reveals nothing about the tree. The result is a relative path that never
//! starts with `/` and never contains a dot segment.
//!
//! Opening: `openat2(root_fd, rel, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`, one system call
//! in which the kernel refuses any resolution (`..` in a symlink, an absolute symlink) that
//! leaves the root directory. There is no check-then-use window: the check and the open are
//! the same operation. When the kernel refuses with `EXDEV` (a symlink that leaves the root
//! lexically, which may still land inside it, e.g. an absolute link to another file under
//! root) or lacks `openat2` (`ENOSYS`, or `EPERM` from a seccomp filter), the file is opened
//! with plain `openat` and then the path of the *opened descriptor* (`/proc/self/fd/N`) is
//! checked against the canonical root: also free of TOCTOU races, because what is checked is
//! the file that will be sent, not a name that could be swapped afterwards. Anything else
//! fails closed (404). With `follow_symlinks_outside_root` symlinks are followed anywhere.
//!
//! Files are opened `O_NONBLOCK` (a FIFO must not block the event loop), `O_NOCTTY` and
//! `O_CLOEXEC`. This module must not read file contents or send anything.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

/// Why a request path names no file.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PathError {
    /// Malformed: an invalid `%xx` escape or a NUL byte (400).
    BadRequest,
    /// A dot segment or an encoded slash: cannot name a file under the root (404).
    NotFound,
}

/// Percent-decodes `rest` (the request path below the route's prefix) into a relative path
/// of decoded segments joined with `/`. Empty for the root itself.
pub fn decode(rest: &str) -> Result<Vec<u8>, PathError> {
    let mut out = Vec::with_capacity(rest.len());
    let mut invalid = false;
    for raw in rest.split('/').filter(|segment| !segment.is_empty()) {
        let start = out.len();
        if start > 0 {
            out.push(b'/');
        }
        let segment_start = out.len();
        let bytes = raw.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let byte = if bytes[i] == b'%' {
                let high = bytes.get(i + 1).and_then(|&b| hex_value(b));
                let low = bytes.get(i + 2).and_then(|&b| hex_value(b));
                let (Some(high), Some(low)) = (high, low) else {
                    return Err(PathError::BadRequest);
                };
                i += 3;
                high << 4 | low
            } else {
                i += 1;
                bytes[i - 1]
            };
            match byte {
                0 => return Err(PathError::BadRequest),
                b'/' => invalid = true,
                _ => {}
            }
            out.push(byte);
        }
        let segment = &out[segment_start..];
        if segment == b"." || segment == b".." {
            invalid = true;
        }
    }
    // Malformed input is 400 wherever it appears, so keep scanning after a 404-class segment.
    if invalid {
        return Err(PathError::NotFound);
    }
    Ok(out)
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// The open root directory and how files under it are opened.
#[derive(Debug)]
pub struct Root {
    /// The root directory (`O_PATH`), or why it could not be opened.
    fd: Result<OwnedFd, Errno>,
    /// The canonical root path, for the `/proc/self/fd` containment check.
    canonical: PathBuf,
    /// Whether symlinks may lead anywhere.
    follow_outside: bool,
    /// Whether `openat2` works here (checked once, when the root is opened).
    openat2: bool,
}

const OPEN_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_NONBLOCK)
    .union(OFlag::O_NOCTTY);

impl Root {
    /// Opens `root` once (an `O_PATH` descriptor held for the handler's life) and probes
    /// `openat2`. Never fails: an unopenable root makes every request fail with its error.
    pub fn open(root: &Path, follow_outside: bool) -> Root {
        let fd = nix::fcntl::open(
            root,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        );
        let openat2 = match &fd {
            Ok(fd) => match nix::fcntl::openat2(fd, ".", how()) {
                Ok(_probe) => true,
                Err(errno) => !matches!(errno, Errno::ENOSYS | Errno::EPERM),
            },
            Err(_) => false,
        };
        let canonical = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        Root {
            fd,
            canonical,
            follow_outside,
            openat2,
        }
    }

    /// Opens `rel` (a path from [`decode`]; empty means the root) for reading, refusing
    /// anything outside the root unless configured otherwise.
    pub fn open_file(&self, rel: &[u8]) -> io::Result<File> {
        let root = self.fd.as_ref().map_err(|errno| io::Error::from(*errno))?;
        let rel = if rel.is_empty() {
            OsStr::new(".")
        } else {
            OsStr::from_bytes(rel)
        };
        if self.follow_outside {
            return Ok(File::from(nix::fcntl::openat(
                root,
                rel,
                OPEN_FLAGS,
                Mode::empty(),
            )?));
        }
        if self.openat2 {
            match nix::fcntl::openat2(root, rel, how()) {
                Ok(fd) => return Ok(File::from(fd)),
                // The kernel could not rule out a concurrent rename escaping: try once more.
                Err(Errno::EAGAIN) => match nix::fcntl::openat2(root, rel, how()) {
                    Ok(fd) => return Ok(File::from(fd)),
                    Err(Errno::EXDEV) => {}
                    Err(errno) => return Err(errno.into()),
                },
                Err(Errno::EXDEV) => {}
                Err(errno) => return Err(errno.into()),
            }
        }
        let file = File::from(nix::fcntl::openat(root, rel, OPEN_FLAGS, Mode::empty())?);
        if self.contains(&file) {
            Ok(file)
        } else {
            // `file` is dropped (closed) here.
            Err(io::ErrorKind::NotFound.into())
        }
    }

    /// The same root, resolving as if the kernel had no `openat2` (tests the fallback).
    #[cfg(test)]
    pub fn without_openat2(mut self) -> Root {
        self.openat2 = false;
        self
    }

    /// Whether the open `file` lies under the root, judged by the kernel's name for the
    /// descriptor itself (not a path that could have been swapped since).
    fn contains(&self, file: &File) -> bool {
        let link = format!("/proc/self/fd/{}", file.as_raw_fd());
        std::fs::read_link(link).is_ok_and(|real| real.starts_with(&self.canonical))
    }

    /// The path through which the directory `dir` (opened by [`open_file`](Self::open_file))
    /// can be listed: its descriptor's `/proc` entry, so the listing is of the directory
    /// that was checked.
    pub fn listing_path(dir: &File) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()))
    }
}

fn how() -> OpenHow {
    OpenHow::new()
        .flags(OPEN_FLAGS)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}
