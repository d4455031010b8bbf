//! [`FixedResponse`]: a complete response (status, header lines, body) encoded once, for
//! handlers that answer every request the same way.
//!
//! Serving one is a few copies of pre-encoded bytes when the request allows the plain
//! form (HTTP/1.1, keep-alive, not HEAD, no pending `100-continue`); any other request goes
//! through the ordinary [`ResponseWriter`](super::ResponseWriter) path, so framing rules
//! live in one place. This module must not decide framing itself.

use crate::http1::encode;

/// A response fixed when it is built (typically at config load).
#[derive(Debug, Clone)]
pub struct FixedResponse {
    pub(super) status: u16,
    /// `Name: value\r\n` lines, without framing headers (for the general path).
    pub(super) header_lines: Box<[u8]>,
    pub(super) body: Box<[u8]>,
    /// Status line and header lines: everything before `Date`.
    pub(super) before_date: Box<[u8]>,
    /// `Content-Length`, the blank line ending the head, and the body: the bytes the
    /// general path writes after `Date`, so both paths give the same bytes.
    pub(super) after_date: Box<[u8]>,
}

impl FixedResponse {
    /// A response with `status` (200-999; one that allows a body, else the general path is
    /// always taken), `header_lines` already encoded and validated as `Name: value\r\n...`
    /// (no framing or connection headers), and `body`.
    pub fn new(status: u16, header_lines: Vec<u8>, body: Vec<u8>) -> Self {
        let mut before_date = Vec::new();
        encode::write_status_line(&mut before_date, status);
        before_date.extend_from_slice(&header_lines);
        let mut after_date = Vec::new();
        encode::write_content_length(&mut after_date, body.len() as u64);
        after_date.extend_from_slice(encode::CRLF);
        after_date.extend_from_slice(&body);
        FixedResponse {
            status,
            header_lines: header_lines.into_boxed_slice(),
            body: body.into_boxed_slice(),
            before_date: before_date.into_boxed_slice(),
            after_date: after_date.into_boxed_slice(),
        }
    }

    /// The status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}
