//! The state of one response that outlives a handler call: [`Reply`] (owned by the
//! connection, lent to each [`ResponseWriter`](super::ResponseWriter)), where it stands
//! ([`ResponseState`], [`BodyState`]), what the writer must know of the request
//! ([`ResponseContext`]), the framing a head declares ([`Framing`]), a file body
//! ([`FileBody`]), and the ways a handler can break the framing contract ([`ResponseError`]).
//!
//! Plain data: the writer changes it, the server reads it. Nothing here does I/O.

use crate::http1::Version;

/// How a response body is delimited, chosen when the head is written.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Exactly this many bytes (`Content-Length`).
    Length(u64),
    /// Length not known up front: chunked for HTTP/1.1 clients, close-delimited for HTTP/1.0.
    Chunked,
}

/// A handler broke the framing contract; the server closes the connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// A second head was written.
    #[error("response head written twice")]
    HeadTwice,
    /// Body bytes or `finish` before the head.
    #[error("response body written before the head")]
    NoHead,
    /// More bytes than the declared Content-Length (or the declared chunk size).
    #[error("response body longer than declared")]
    TooLong,
    /// `finish` before all declared bytes were written.
    #[error("response body shorter than declared")]
    TooShort,
    /// Writing after `finish`.
    #[error("response written after it was finished")]
    AfterFinish,
    /// `begin_chunk` while a chunk is still open, or with a zero size.
    #[error("invalid chunk boundary")]
    BadChunk,
    /// A status code that does not fit the call (a final status below 200, a 1xx above 199).
    #[error("status code not valid here")]
    BadStatus,
    /// `send_file` without a `Framing::Length` head declaring exactly the file's bytes.
    #[error("a file body needs a Content-Length head declaring its length")]
    FileNeedsLength,
    /// A header or trailer field the handler passed has a name that is not a token or a
    /// value with CR, LF, NUL or another control byte (it would split the response): the
    /// call that got it wrote nothing and returned this.
    #[error("invalid header field name or value")]
    InvalidField,
    /// The handler gave up on a response it had begun ([`ResponseWriter::abandon`](super::ResponseWriter::abandon)): its
    /// source failed. Not a bug; the handler says why in its own log line.
    #[error("response abandoned by its handler")]
    Abandoned,
}

/// Where the response of the current request stands. Owned by the connection, so it
/// survives between handler calls.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ResponseState {
    /// No head written yet.
    Head,
    /// The head is out; the body is being written.
    Body(BodyState),
    /// The response is complete.
    Done,
    /// The handler broke the framing contract.
    Broken(ResponseError),
}

/// The body-writing sub-state.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BodyState {
    /// Content-Length framing with this many bytes still due.
    Length {
        /// Bytes still to write.
        remaining: u64,
    },
    /// Chunked framing; `open` bytes of an explicitly begun chunk are still due.
    Chunked {
        /// Bytes still due in the current explicit chunk (0: between chunks).
        open: u64,
    },
    /// Close-delimited (HTTP/1.0 client, unknown length): the connection closes after.
    UntilClose,
    /// The body is counted but not sent (HEAD, 204, 304); `remaining` as declared, if known.
    Suppressed {
        /// Declared bytes still due, when a length was declared.
        remaining: Option<u64>,
    },
}

/// What the writer needs to know about the request it answers. Set by the server.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ResponseContext {
    /// The request's version (decides chunked vs close-delimited, 1xx, keep-alive header).
    pub version: Version,
    /// A HEAD request: no body bytes go out.
    pub head_request: bool,
    /// The connection closes after this response (client asked, limit reached, draining).
    pub close: bool,
    /// The client sent `Expect: 100-continue` and has not been answered `100` yet: a final
    /// head written now must announce close unless the server sends `100` first.
    pub expect_pending: bool,
}

/// A file region sent as a response body by the connection, with sendfile(2): the bytes
/// never pass through user space and the file is never read into memory.
#[derive(Debug)]
pub struct FileBody {
    /// The open file (closed when the body is sent or the connection ends).
    pub file: std::fs::File,
    /// Where the next byte to send is.
    pub offset: u64,
    /// Bytes still to send.
    pub remaining: u64,
}

/// Everything about one response that lives between handler calls: owned by the
/// connection, lent to each [`ResponseWriter`](super::ResponseWriter).
#[derive(Debug)]
pub struct Reply {
    /// Where the response stands.
    pub state: ResponseState,
    /// What the writer must know about the request.
    pub cx: ResponseContext,
    /// A file the connection sends after the buffered bytes.
    pub file: Option<FileBody>,
    /// The largest request body accepted for this request (413 beyond).
    pub body_limit: u64,
    /// The status of the final head, once written (0 before).
    pub status: u16,
    /// Body bytes sent (or, for a file, to be sent); not framing, and 0 for a HEAD request.
    pub body_bytes: u64,
    /// The route that served the request, as its handler noted it (for the metrics).
    pub route: Option<u32>,
    /// The exchange paused body events ([`ResponseWriter::hold_body`](super::ResponseWriter::hold_body)).
    pub body_held: bool,
    /// The client closed the connection with nothing left unread while the request was
    /// served ([`ResponseWriter::client_gone`](super::ResponseWriter::client_gone)).
    pub client_gone: bool,
    /// When the exchange wants to be offered room even if nothing happens
    /// ([`ResponseWriter::wake_at`](super::ResponseWriter::wake_at)).
    pub wake_at: Option<std::time::Instant>,
    /// The upstream server that answered a proxied request, for the access log
    /// ([`ResponseWriter::set_upstream`](super::ResponseWriter::set_upstream)).
    pub upstream: Option<UpstreamUsed>,
}

/// The server a handler forwarded the request to, and how long that server took (from the
/// attempt's start to the end of its response, or to its failure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamUsed {
    /// The server's address as configured (`host:port`, or `unix:/path`).
    pub server: std::sync::Arc<str>,
    /// From the attempt's start (connecting, or taking a pooled connection) to its end.
    pub time: std::time::Duration,
}

impl Reply {
    /// A reply to a request described by `cx`, accepting bodies up to `body_limit`.
    pub fn new(cx: ResponseContext, body_limit: u64) -> Self {
        Reply {
            state: ResponseState::Head,
            cx,
            file: None,
            body_limit,
            status: 0,
            body_bytes: 0,
            route: None,
            body_held: false,
            client_gone: false,
            wake_at: None,
            upstream: None,
        }
    }
}
