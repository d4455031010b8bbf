//! `static`: files under a root directory, sent with sendfile(2).
//!
//! SKELETON: the settings below are the contract the config build step uses; the handler
//! body is being written (issue 3) and answers 501 until then.

use std::path::PathBuf;

use crate::service::{Handler, Request, ResponseWriter, Start};

/// What a `static` route is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticSettings {
    /// The directory served (absolute, canonical, readable: checked by config validation).
    pub root: PathBuf,
    /// The route's path (its prefix, or the exact path): the part of a request path after it
    /// names the file under `root`.
    pub prefix: String,
    /// File names tried, in order, for a directory (e.g. `index.html`).
    pub index: Vec<String>,
    /// Whether a directory without an index file gets an HTML listing (else 404).
    pub listing: bool,
    /// Whether symlinks may lead outside `root` (else such a path answers 404).
    pub follow_symlinks_outside_root: bool,
    /// The route's extra response headers, pre-encoded.
    pub header_lines: Vec<u8>,
}

/// The static-file handler.
#[derive(Debug)]
pub struct StaticFiles {
    settings: StaticSettings,
}

impl StaticFiles {
    /// A handler serving `settings.root`.
    pub fn new(settings: StaticSettings) -> Self {
        StaticFiles { settings }
    }
}

impl Handler for StaticFiles {
    type Exchange = ();

    fn start(&self, _request: &Request<'_>, response: &mut ResponseWriter<'_>) -> Start<()> {
        let _ = &self.settings;
        response.complete(501, &[], b"501 Not Implemented: static\n");
        Start::Complete
    }
}
