//! The responses the connection writes on its own behalf: errors found before a handler's
//! response started leaving (bad input, limits, timeouts).
//!
//! Each is a complete `Connection: close` response with a one-line plain-text body naming
//! the problem. The status for a codec error comes from `ParseError::status`, the one place
//! that maps errors to statuses; this module must not invent its own mapping.

use crate::http1::{ParseError, Version, encode};
use crate::service::{Framing, Reply, ResponseContext, ResponseWriter};

/// An error answer: a status and a short text saying why.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) detail: &'static str,
    /// The codec error's kind (a metrics label), when the answer is for one.
    pub(super) kind: Option<&'static str>,
}

impl Answer {
    /// The head or body did not arrive within its timeout.
    pub(super) const REQUEST_TIMEOUT: Answer = Answer {
        status: 408,
        detail: "request not received in time",
        kind: None,
    };

    /// The handler wrote nothing for a whole body timeout after the request was complete.
    pub(super) const HANDLER_TIMEOUT: Answer = Answer {
        status: 500,
        detail: "the handler did not answer in time",
        kind: None,
    };

    /// The body is larger than the limit.
    pub(super) const CONTENT_TOO_LARGE: Answer = Answer {
        status: 413,
        detail: "request body larger than the limit",
        kind: None,
    };

    /// Appends the complete response to `output`.
    pub(super) fn write(self, output: &mut Vec<u8>, date_line: &[u8]) {
        let mut reply = Reply::new(
            ResponseContext {
                version: Version::Http11,
                head_request: false,
                close: true,
                expect_pending: false,
            },
            0,
        );
        let mut writer = ResponseWriter::new(output, &mut reply, date_line, usize::MAX);
        let reason = encode::reason_phrase(self.status);
        let mut code = itoa::Buffer::new();
        let code = code.format(self.status);
        // "413 Payload Too Large: request body larger than the limit\n"
        let parts: [&str; 6] = [code, " ", reason, ": ", self.detail, "\n"];
        let body_len: usize = parts.iter().map(|part| part.len()).sum();
        let _ = writer.head(
            self.status,
            &[("Content-Type", b"text/plain; charset=utf-8")],
            Framing::Length(body_len as u64),
        );
        for part in parts {
            writer.write(part.as_bytes());
        }
        writer.finish();
    }
}

impl From<ParseError> for Answer {
    fn from(error: ParseError) -> Self {
        Answer {
            status: error.status(),
            detail: error.reason(),
            kind: Some(error.kind()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_complete_close_responses_naming_the_problem() {
        let mut output = Vec::new();
        Answer::from(ParseError::ConflictingContentLength).write(&mut output, b"Date: x\r\n");
        let text = String::from_utf8(output).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(head.contains("\r\nConnection: close"), "{head}");
        assert!(
            head.contains(&format!("\r\nContent-Length: {}", body.len())),
            "{head}"
        );
        assert!(body.starts_with("400 Bad Request: "), "{body}");
        assert!(body.ends_with('\n'));
    }
}
