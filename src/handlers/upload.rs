//! `upload`: streams a request body into a new file in a directory.
//!
//! SKELETON: the settings below are the contract the config build step uses; the handler
//! body is being written (issue 3) and answers 501 until then.

use std::path::PathBuf;

use crate::service::{Handler, Request, ResponseWriter, Start};

/// What an `upload` route is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSettings {
    /// The directory stored files go to (absolute, writable: checked by config validation).
    pub dir: PathBuf,
    /// The route's path; `Location` of a stored file is this path, `/`, and the file name.
    pub prefix: String,
    /// Whether to fsync the file (and the directory) before answering 201.
    pub fsync: bool,
    /// The route's extra response headers, pre-encoded.
    pub header_lines: Vec<u8>,
}

/// The upload handler.
#[derive(Debug)]
pub struct Upload {
    settings: UploadSettings,
}

impl Upload {
    /// A handler storing into `settings.dir`.
    pub fn new(settings: UploadSettings) -> Self {
        Upload { settings }
    }
}

impl Handler for Upload {
    type Exchange = ();

    fn start(&self, _request: &Request<'_>, response: &mut ResponseWriter<'_>) -> Start<()> {
        let _ = &self.settings;
        response.complete(501, &[], b"501 Not Implemented: upload\n");
        Start::Complete
    }
}
