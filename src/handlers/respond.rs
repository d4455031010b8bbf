//! `respond`: a fixed status, headers and body, encoded once when the route is built.
//!
//! The hot-path handler: serving it copies pre-encoded bytes into the output (see
//! [`FixedResponse`]) and allocates nothing.

use crate::service::{FixedResponse, Handler, HeaderLines, Request, ResponseWriter, Start};

/// A fixed response.
#[derive(Debug, Clone)]
pub struct Respond {
    response: FixedResponse,
}

impl Respond {
    /// A handler answering `status` with `header_lines` and `body`.
    pub fn new(status: u16, header_lines: &HeaderLines, body: Vec<u8>) -> Self {
        Respond {
            response: FixedResponse::new(status, header_lines, body),
        }
    }
}

impl Handler for Respond {
    type Exchange = ();

    fn start(&self, _request: &Request<'_>, response: &mut ResponseWriter<'_>) -> Start<()> {
        response.complete_fixed(&self.response);
        Start::Complete
    }
}
