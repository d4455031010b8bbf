//! `respond`: a fixed status, headers and body, encoded once when the route is built.
//!
//! The hot-path handler: serving it copies two pre-encoded byte strings into the output and
//! allocates nothing.

use crate::service::{Framing, Handler, Request, ResponseWriter, Start};

/// A fixed response.
#[derive(Debug, Clone)]
pub struct Respond {
    status: u16,
    header_lines: Box<[u8]>,
    body: Box<[u8]>,
}

impl Respond {
    /// A handler answering `status` with `header_lines` (pre-encoded `Name: value\r\n`
    /// lines, validated by the caller) and `body`.
    pub fn new(status: u16, header_lines: Vec<u8>, body: Vec<u8>) -> Self {
        Respond {
            status,
            header_lines: header_lines.into_boxed_slice(),
            body: body.into_boxed_slice(),
        }
    }
}

impl Handler for Respond {
    type Exchange = ();

    fn start(&self, _request: &Request<'_>, response: &mut ResponseWriter<'_>) -> Start<()> {
        response.head_encoded(
            self.status,
            &self.header_lines,
            Framing::Length(self.body.len() as u64),
        );
        response.write(&self.body);
        response.finish();
        Start::Complete
    }
}
