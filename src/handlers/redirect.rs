//! `redirect`: answers 301/302/303/307/308 with a `Location` built from a target.
//!
//! SKELETON: the settings below are the contract the config build step uses; the handler
//! body is being written (issue 3) and answers 501 until then.

use crate::service::{Handler, Request, ResponseWriter, Start};

/// What a `redirect` route is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectSettings {
    /// 301, 302, 303, 307 or 308 (checked by config validation).
    pub status: u16,
    /// The target: an absolute URL or an absolute path.
    pub to: String,
    /// The route's path; with `keep_path`, the part of the request path after it is
    /// appended to `to`.
    pub prefix: String,
    /// Append the request path below `prefix` to `to`.
    pub keep_path: bool,
    /// Append the request's query string.
    pub keep_query: bool,
    /// The route's extra response headers, pre-encoded.
    pub header_lines: Vec<u8>,
}

/// The redirect handler.
#[derive(Debug)]
pub struct Redirect {
    settings: RedirectSettings,
}

impl Redirect {
    /// A handler redirecting as `settings` say.
    pub fn new(settings: RedirectSettings) -> Self {
        Redirect { settings }
    }
}

impl Handler for Redirect {
    type Exchange = ();

    fn start(&self, _request: &Request<'_>, response: &mut ResponseWriter<'_>) -> Start<()> {
        let _ = &self.settings;
        response.complete(501, &[], b"501 Not Implemented: redirect\n");
        Start::Complete
    }
}
