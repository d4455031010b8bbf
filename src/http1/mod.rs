//! HTTP/1.1 message codec: finds message boundaries in bytes the caller already holds
//! (request heads, body framing, chunked bodies) and writes response framing into a
//! caller's buffer.
//!
//! This module must never perform I/O, touch sockets or mio, read the clock (callers pass
//! `SystemTime`), log, use `unsafe`, or allocate on the per-request path. It knows nothing
//! about connections; the connection layer decides what to do with the answers it gives.

mod authority;
pub mod chunked;
pub mod date;
pub mod encode;
pub mod error;
pub mod framing;
pub mod head;
pub mod response;
pub mod target;

pub use error::ParseError;
pub use httparse::Header;

/// The HTTP version of a request; httparse rejects every other version before we see it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Version {
    /// `HTTP/1.0`: no chunked bodies, connections close unless `keep-alive` is asked for.
    Http10,
    /// `HTTP/1.1`.
    Http11,
}

/// How the request body is delimited (RFC 9112 section 6).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// No body: requests are never close-delimited (RFC 9112 6.3 rule 7).
    None,
    /// Exactly this many bytes follow the head (`Content-Length`).
    Length(u64),
    /// The body uses the chunked transfer coding (decode with [`chunked::ChunkedDecoder`]).
    Chunked,
}

/// Bounds on a request head, so a peer cannot make us buffer or scan without end.
#[derive(Copy, Clone, Debug)]
pub struct HeadLimits {
    /// Largest accepted head (request line, fields and the blank line), in bytes.
    pub max_head_bytes: usize,
    /// Largest accepted number of header field lines; capped by the caller's storage.
    pub max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        Self {
            max_head_bytes: 16 * 1024,
            max_headers: 100,
        }
    }
}

/// Bounds on the parts of a chunked body that are not payload.
#[derive(Copy, Clone, Debug)]
pub struct ChunkedLimits {
    /// Largest accepted run of bytes between a chunk size and its CRLF (BWS and extensions).
    pub max_extension_bytes: usize,
    /// Largest accepted trailer section, including its final blank line, in bytes.
    pub max_trailer_bytes: usize,
    /// Largest accepted number of trailer field lines.
    pub max_trailers: usize,
}

impl Default for ChunkedLimits {
    fn default() -> Self {
        Self {
            max_extension_bytes: 4096,
            max_trailer_bytes: 8192,
            max_trailers: 32,
        }
    }
}
