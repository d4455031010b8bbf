//! [`FixedResponse`]: a complete response (status, header lines, body) encoded once, for
//! handlers that answer every request the same way.
//!
//! Serving one is a few copies of pre-encoded bytes when the request allows the plain
//! form (HTTP/1.1, keep-alive, not HEAD, no pending `100-continue`); any other request goes
//! through the ordinary [`ResponseWriter`](super::ResponseWriter) path, so framing rules
//! live in one place. This module must not decide framing itself.

use super::HeaderLines;
use crate::http1::encode;

/// A response fixed when it is built (typically at config load). The bytes are held once:
/// the general path's header lines and body are slices of the two pre-encoded pieces.
#[derive(Debug, Clone)]
pub struct FixedResponse {
    status: u16,
    /// Status line and header lines: everything before `Date`.
    before_date: Box<[u8]>,
    /// Where the header lines start in `before_date` (after the status line).
    header_lines_at: usize,
    /// `Content-Length`, the blank line ending the head, and the body: the bytes the
    /// general path writes after `Date`, so both paths give the same bytes.
    after_date: Box<[u8]>,
    /// Where the body starts in `after_date`.
    body_at: usize,
}

impl FixedResponse {
    /// A response with `status` (200-999; one that allows a body, else the general path is
    /// always taken), `header_lines` (no framing or connection headers), and `body`.
    pub fn new(status: u16, header_lines: &HeaderLines, body: Vec<u8>) -> Self {
        let mut before_date = Vec::new();
        encode::write_status_line(&mut before_date, status);
        let header_lines_at = before_date.len();
        before_date.extend_from_slice(header_lines.as_bytes());
        let mut after_date = Vec::new();
        encode::write_content_length(&mut after_date, body.len() as u64);
        after_date.extend_from_slice(encode::CRLF);
        let body_at = after_date.len();
        after_date.extend_from_slice(&body);
        FixedResponse {
            status,
            before_date: before_date.into_boxed_slice(),
            header_lines_at,
            after_date: after_date.into_boxed_slice(),
            body_at,
        }
    }

    /// The status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.after_date[self.body_at..]
    }

    /// The header lines, as given.
    pub(super) fn header_lines(&self) -> &[u8] {
        &self.before_date[self.header_lines_at..]
    }

    /// The bytes before and after `Date` of the plain form.
    pub(super) fn around_date(&self) -> (&[u8], &[u8]) {
        (&self.before_date, &self.after_date)
    }
}
