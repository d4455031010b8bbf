//! `redirect`: answers 301/302/303/307/308 with a `Location` built from a target.
//!
//! `Location` is the configured target, with (when `keep_path`) the request path below the
//! route's prefix appended to the target's path, and (when `keep_query`) the request's query
//! joined to the target's own query. A target's fragment stays last. The body is one line of
//! text; HEAD gets the same head without it. Any request body is discarded.
//!
//! This file must never copy a byte into `Location` that is not valid in a header value (no
//! CR, LF or other control bytes: response splitting), whatever config validation allowed.

use crate::http1::encode;
use crate::service::{Framing, Handler, HeaderLines, Request, ResponseWriter, Start};

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
    pub header_lines: HeaderLines,
}

/// The redirect handler.
#[derive(Debug)]
pub struct Redirect {
    settings: RedirectSettings,
    /// The route's header lines plus a plain-text `Content-Type`.
    header_lines: HeaderLines,
    /// The target split once: before its query, its query, its fragment (with `#`).
    base: String,
    query: Option<String>,
    fragment: String,
}

impl Redirect {
    /// A handler redirecting as `settings` say.
    pub fn new(settings: RedirectSettings) -> Self {
        let header_lines = settings
            .header_lines
            .and("Content-Type", b"text/plain; charset=utf-8");
        let (target, fragment) = match settings.to.find('#') {
            Some(hash) => settings.to.split_at(hash),
            None => (settings.to.as_str(), ""),
        };
        let (base, query) = match target.split_once('?') {
            Some((base, query)) => (base, Some(query.to_string())),
            None => (target, None),
        };
        Redirect {
            base: base.to_string(),
            query,
            fragment: fragment.to_string(),
            header_lines,
            settings,
        }
    }

    /// The `Location` for a request with `path` and `query`.
    pub(crate) fn location(&self, path: &str, query: Option<&str>) -> String {
        let settings = &self.settings;
        let mut location = String::with_capacity(self.base.len() + path.len() + 16);
        push_clean(&mut location, &self.base);
        if settings.keep_path {
            let below = path
                .strip_prefix(settings.prefix.trim_end_matches('/'))
                .unwrap_or("");
            // One slash where the target ends with one and the rest begins with one.
            let below = if location.ends_with('/') {
                below.trim_start_matches('/')
            } else {
                below
            };
            push_clean(&mut location, below);
        }
        let request_query = query.filter(|query| settings.keep_query && !query.is_empty());
        match (&self.query, request_query) {
            (None, None) => {}
            (Some(own), None) => {
                location.push('?');
                push_clean(&mut location, own);
            }
            (None, Some(theirs)) => {
                location.push('?');
                push_clean(&mut location, theirs);
            }
            (Some(own), Some(theirs)) => {
                location.push('?');
                push_clean(&mut location, own);
                if !own.is_empty() {
                    location.push('&');
                }
                push_clean(&mut location, theirs);
            }
        }
        push_clean(&mut location, &self.fragment);
        if location.is_empty() {
            location.push('/');
        }
        location
    }
}

/// Appends `text`, percent-encoding every byte that is not visible ASCII (controls, space,
/// DEL, non-ASCII): never a CR or LF into a header. A backslash is encoded too: browsers
/// read `/\host` as `//host`, which would send the client off the site.
fn push_clean(out: &mut String, text: &str) {
    for &byte in text.as_bytes() {
        if (0x21..=0x7e).contains(&byte) && byte != b'\\' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

impl Handler for Redirect {
    type Exchange = ();

    fn start(&self, request: &Request<'_>, response: &mut ResponseWriter<'_>) -> Start<()> {
        let status = self.settings.status;
        let location = self.location(request.path(), request.query());
        let body = format!("{status} {}: {location}\n", encode::reason_phrase(status));
        let location_field = [("Location", location.as_bytes())];
        let framing = Framing::Length(body.len() as u64);
        if response
            .head_encoded_with(status, &self.header_lines, &location_field, framing)
            .is_ok()
        {
            response.write(body.as_bytes());
            response.finish();
        }
        Start::Complete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect(to: &str, prefix: &str, keep_path: bool, keep_query: bool) -> Redirect {
        Redirect::new(RedirectSettings {
            status: 302,
            to: to.to_string(),
            prefix: prefix.to_string(),
            keep_path,
            keep_query,
            header_lines: HeaderLines::default(),
        })
    }

    #[test]
    fn location_building() {
        // (to, prefix, keep_path, keep_query, request path, request query, expected)
        type Case = (
            &'static str,
            &'static str,
            bool,
            bool,
            &'static str,
            Option<&'static str>,
            &'static str,
        );
        let cases: &[Case] = &[
            ("/new", "/old", false, false, "/old/a", Some("x=1"), "/new"),
            (
                "/new",
                "/old",
                false,
                true,
                "/old/a",
                Some("x=1"),
                "/new?x=1",
            ),
            (
                "/new",
                "/old",
                true,
                true,
                "/old/a/b",
                Some("x=1"),
                "/new/a/b?x=1",
            ),
            ("/new", "/old", true, false, "/old", None, "/new"),
            ("/new/", "/old", true, false, "/old/a", None, "/new/a"),
            ("/new/", "/old/", true, false, "/old/a", None, "/new/a"),
            ("/new", "/", true, false, "/a/b", None, "/new/a/b"),
            (
                "https://e.org",
                "/",
                true,
                true,
                "/",
                Some("q"),
                "https://e.org/?q",
            ),
            (
                "https://e.org/",
                "/",
                true,
                false,
                "/x",
                None,
                "https://e.org/x",
            ),
            (
                "https://e.org/p?a=1",
                "/o",
                true,
                true,
                "/o/x",
                Some("b=2"),
                "https://e.org/p/x?a=1&b=2",
            ),
            (
                "https://e.org/p?a=1",
                "/o",
                false,
                true,
                "/o/x",
                None,
                "https://e.org/p?a=1",
            ),
            (
                "https://e.org/p?",
                "/o",
                false,
                true,
                "/o",
                Some("b"),
                "https://e.org/p?b",
            ),
            (
                "https://e.org/p#top",
                "/o",
                true,
                true,
                "/o/x",
                Some("q"),
                "https://e.org/p/x?q#top",
            ),
            ("/new", "/old", false, true, "/old", Some(""), "/new"),
            ("/new", "/exact", true, false, "/exact", None, "/new"),
            // Never a control byte, space or non-ASCII byte: percent-encoded instead.
            (
                "/a\r\nX: y",
                "/o",
                false,
                false,
                "/o",
                None,
                "/a%0D%0AX:%20y",
            ),
            (
                "/new",
                "/o",
                true,
                true,
                "/o/\u{e9}",
                Some("a b"),
                "/new/%C3%A9?a%20b",
            ),
        ];
        for &(to, prefix, keep_path, keep_query, path, query, expected) in cases {
            let handler = redirect(to, prefix, keep_path, keep_query);
            assert_eq!(
                handler.location(path, query),
                expected,
                "to {to:?} prefix {prefix:?} keep_path {keep_path} keep_query {keep_query} \
                 path {path:?} query {query:?}"
            );
        }
    }
}
