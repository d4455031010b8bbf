//! Sending a file body: sendfile(2) from the file to the socket, as much as the socket takes
//! per call, and the size above which the connection corks the socket around it.
//!
//! No buffering and no reads into user space; the connection decides when to call.

use std::io;

use crate::service::FileBody;

use super::stream::Stream;

/// File bodies at least this large are sent corked (TCP_CORK); for smaller ones the two
/// extra system calls cost more than the segments they save (measured: static_4k vs
/// static_1m in the shared benchmark).
pub(super) const CORK_AT_LEAST: u64 = 64 * 1024;

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
