//! The HTML directory listing (when a route sets `listing = true`) and the escaping it needs.
//!
//! Names are HTML-escaped for display and percent-encoded (every byte but RFC 3986
//! unreserved characters) in links, so no file name can inject markup or change where a link
//! points. Names starting with `.` are not listed (as nginx's autoindex), though they are
//! served when asked for. Entries are sorted by name. This module must not open files
//! itself: it is handed the directory's path.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The listing page of the directory at `dir`, titled with `shown` (the decoded request
/// path). `at_root`: no link to the parent.
pub fn render(dir: &Path, shown: &str, at_root: bool) -> io::Result<Vec<u8>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.as_bytes().starts_with(b".") {
            continue;
        }
        let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
        entries.push((name.as_bytes().to_vec(), is_dir));
    }
    entries.sort();
    let mut page = Vec::with_capacity(256 + entries.len() * 64);
    page.extend_from_slice(
        b"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of ",
    );
    escape_html(&mut page, shown.as_bytes());
    page.extend_from_slice(b"</title></head>\n<body><h1>Index of ");
    escape_html(&mut page, shown.as_bytes());
    page.extend_from_slice(b"</h1>\n<ul>\n");
    if !at_root {
        page.extend_from_slice(b"<li><a href=\"../\">../</a></li>\n");
    }
    for (name, is_dir) in &entries {
        page.extend_from_slice(b"<li><a href=\"");
        percent_encode(&mut page, name);
        if *is_dir {
            page.push(b'/');
        }
        page.extend_from_slice(b"\">");
        escape_html(&mut page, String::from_utf8_lossy(name).as_bytes());
        if *is_dir {
            page.push(b'/');
        }
        page.extend_from_slice(b"</a></li>\n");
    }
    page.extend_from_slice(b"</ul>\n</body></html>\n");
    Ok(page)
}

/// Appends `text` with `& < > " '` replaced by character references.
pub fn escape_html(out: &mut Vec<u8>, text: &[u8]) {
    for &byte in text {
        match byte {
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'"' => out.extend_from_slice(b"&quot;"),
            b'\'' => out.extend_from_slice(b"&#39;"),
            _ => out.push(byte),
        }
    }
}

/// Appends `bytes` percent-encoded: everything but ASCII letters, digits and `-._~`.
pub fn percent_encode(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte);
        } else {
            out.extend_from_slice(&[
                b'%',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 15)],
            ]);
        }
    }
}
