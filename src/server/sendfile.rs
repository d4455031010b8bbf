//! Sending a file body: sendfile(2) from the file to the socket, as much as the socket takes
//! per call, and the size above which the connection corks the socket around it; a small
//! body is instead read into the output buffer behind its head, to leave in one write.
//!
//! The connection decides when to call.

use std::io;
use std::os::unix::fs::FileExt;

use crate::service::FileBody;

use super::stream::Stream;

/// File bodies at least this large are sent corked (TCP_CORK); for smaller ones the two
/// extra system calls cost more than the segments they save (measured: static_4k vs
/// static_1m in the shared benchmark).
pub(super) const CORK_AT_LEAST: u64 = 64 * 1024;

/// File bodies up to this size are read into the output buffer (when it has the room
/// without growing) and written with their head in one call: for a few KiB, sendfile's
/// splice and the separate corked head cost more than the copy (measured: static_4k).
pub(super) const COPY_AT_MOST: u64 = 16 * 1024;

/// Reads a small file body into `output`'s spare capacity, after what is there. `Ok(false)`:
/// not small enough, or no room without reallocating; the body stays for `send_file`.
pub(super) fn copy_small(body: &FileBody, output: &mut Vec<u8>) -> io::Result<bool> {
    let Ok(len) = usize::try_from(body.remaining) else {
        return Ok(false);
    };
    if body.remaining > COPY_AT_MOST || output.capacity() - output.len() < len {
        return Ok(false);
    }
    let start = output.len();
    output.resize(start + len, 0);
    // `read_exact_at` fails with UnexpectedEof if the file shrank since its head was
    // written, like `send_file` below: the response cannot be completed.
    if let Err(err) = body.file.read_exact_at(&mut output[start..], body.offset) {
        output.truncate(start);
        return Err(err);
    }
    Ok(true)
}

/// Sends as much of a file body as the socket takes. `Ok(true)`: all of it is sent.
pub(super) fn send_file(
    stream: &Stream,
    body: &mut FileBody,
    writable: &mut bool,
) -> io::Result<bool> {
    // The kernel sends at most this much per call anyway.
    const MAX_PER_CALL: u64 = 0x7fff_f000;
    while body.remaining > 0 {
        if !*writable {
            return Ok(false);
        }
        let mut offset = body.offset as i64;
        let count = body.remaining.min(MAX_PER_CALL) as usize;
        match nix::sys::sendfile::sendfile64(stream, &body.file, Some(&mut offset), count) {
            Ok(0) => {
                // The file is shorter than when the head was written: the response cannot
                // be completed, so the connection must end.
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shrank while being sent",
                ));
            }
            Ok(n) => {
                body.offset += n as u64;
                body.remaining -= n as u64;
            }
            Err(nix::errno::Errno::EAGAIN) => *writable = false,
            Err(nix::errno::Errno::EINTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(content: &[u8], offset: u64, remaining: u64) -> FileBody {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("asycamore-copy-small-{}-{n}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        FileBody {
            file,
            offset,
            remaining,
        }
    }

    #[test]
    fn copy_small_reads_the_range_behind_what_is_buffered() {
        let mut output = Vec::with_capacity(64);
        output.extend_from_slice(b"HEAD");
        assert!(copy_small(&body_of(b"0123456789", 2, 5), &mut output).unwrap());
        assert_eq!(output, b"HEAD23456");
    }

    #[test]
    fn copy_small_leaves_large_bodies_and_full_buffers_to_sendfile() {
        let mut output = Vec::with_capacity(8);
        output.extend_from_slice(b"HEAD");
        assert!(!copy_small(&body_of(b"0123456789", 0, 10), &mut output).unwrap());
        assert_eq!(output, b"HEAD", "a buffer is never grown for a file");
        let mut roomy = Vec::with_capacity(2 * COPY_AT_MOST as usize);
        let large = vec![7u8; COPY_AT_MOST as usize + 1];
        let body = body_of(&large, 0, large.len() as u64);
        assert!(!copy_small(&body, &mut roomy).unwrap());
        assert!(roomy.is_empty());
    }

    #[test]
    fn copy_small_fails_on_a_file_shorter_than_its_head_said() {
        let mut output = Vec::with_capacity(64);
        output.extend_from_slice(b"HEAD");
        let err = copy_small(&body_of(b"0123", 0, 10), &mut output).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(output, b"HEAD", "nothing of a short file is kept");
    }
}
