//! Requests a web page on another origin could make a browser send to the admin port: a form
//! that posts to `/reload`, an `<img>` pointing at `/debug/pprof/profile`, a `fetch` in
//! `no-cors` mode. The admin port is on loopback, but every local browser can reach it, so
//! such requests are refused whatever the token setting:
//!
//! - a browser says where a request comes from: `Sec-Fetch-Site` other than `same-origin` or
//!   `none` (typed by the user), an `Origin` or a `Referer` naming another origin;
//! - a `POST` must carry something a cross-site form cannot: a form always sends one of the
//!   three form content types, so a mutation with one of them is refused (`curl -X POST`
//!   sends none; a JSON client sends its own).
//!
//! Tools that are not browsers (`curl`, `go tool pprof`, Prometheus) send none of these
//! signals and are unaffected. This module only inspects headers.

use crate::service::Request;

/// Why `request` is refused as one a page on another origin could have sent, if it is.
pub(super) fn refusal(request: &Request<'_>) -> Option<&'static str> {
    let own = request.header("host").unwrap_or_default();
    if let Some(site) = request.header("sec-fetch-site") {
        let site = site.trim_ascii();
        if !site.eq_ignore_ascii_case(b"same-origin") && !site.eq_ignore_ascii_case(b"none") {
            return Some("the admin port refuses requests a browser sent from another site\n");
        }
    }
    if request
        .header("origin")
        .is_some_and(|origin| !same_origin(origin, own))
    {
        return Some("the admin port refuses requests from another origin\n");
    }
    if request
        .header("referer")
        .is_some_and(|referer| !same_origin(referer, own))
    {
        return Some("the admin port refuses requests referred by another origin\n");
    }
    if request.method == "POST" && request.header("content-type").is_some_and(is_form_type) {
        return Some(
            "the admin port refuses a POST with a form content type (a page elsewhere could \
             send it): send none, or application/json\n",
        );
    }
    None
}

/// Whether the URL (an `Origin` value or a `Referer`) is on this server: `http` or `https`,
/// and its authority is the request's `Host`. `null` and anything else are not.
fn same_origin(url: &[u8], host: &[u8]) -> bool {
    let url = url.trim_ascii();
    let Some(rest) = strip_prefix_ignore_case(url, b"http://")
        .or_else(|| strip_prefix_ignore_case(url, b"https://"))
    else {
        return false;
    };
    let authority = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .map_or(rest, |end| &rest[..end]);
    !host.is_empty() && authority.eq_ignore_ascii_case(host.trim_ascii())
}

fn strip_prefix_ignore_case<'a>(value: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let (head, rest) = value.split_at_checked(prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then_some(rest)
}

/// The content types a form (or a CORS-simple request) can carry (Fetch standard,
/// "CORS-safelisted request-header").
fn is_form_type(value: &[u8]) -> bool {
    let essence = value
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    [
        &b"application/x-www-form-urlencoded"[..],
        b"multipart/form-data",
        b"text/plain",
    ]
    .iter()
    .any(|form| essence.eq_ignore_ascii_case(form))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{BodyKind, Header, Version};

    fn check(method: &str, headers: &[(&str, &str)]) -> Option<&'static str> {
        let mut fields = vec![Header {
            name: "Host",
            value: b"127.0.0.1:9180",
        }];
        fields.extend(headers.iter().map(|(name, value)| Header {
            name,
            value: value.as_bytes(),
        }));
        let request = Request {
            method,
            target: "/reload",
            path: "/reload",
            version: Version::Http11,
            headers: &fields,
            body: BodyKind::None,
            peer: Some(([127, 0, 0, 1], 5000).into()),
        };
        refusal(&request)
    }

    #[test]
    fn what_a_page_elsewhere_can_send_is_refused() {
        let refused: &[(&str, &[(&str, &str)])] = &[
            ("POST", &[("Origin", "http://evil.example")]),
            ("POST", &[("Origin", "null")]),
            ("POST", &[("Origin", "http://127.0.0.1:9181")]),
            ("GET", &[("Sec-Fetch-Site", "cross-site")]),
            ("GET", &[("Sec-Fetch-Site", "same-site")]),
            ("GET", &[("Referer", "http://evil.example/page")]),
            (
                "POST",
                &[("Content-Type", "application/x-www-form-urlencoded")],
            ),
            (
                "POST",
                &[("Content-Type", "Multipart/Form-Data; boundary=x")],
            ),
            ("POST", &[("Content-Type", "text/plain;charset=utf-8")]),
        ];
        for (method, headers) in refused {
            assert!(check(method, headers).is_some(), "{method} {headers:?}");
        }
    }

    #[test]
    fn tools_and_the_same_origin_are_served() {
        let served: &[(&str, &[(&str, &str)])] = &[
            ("POST", &[]),
            ("POST", &[("Content-Type", "application/json")]),
            ("GET", &[("User-Agent", "Go-http-client/1.1")]),
            ("GET", &[("Sec-Fetch-Site", "none")]),
            ("GET", &[("Sec-Fetch-Site", "same-origin")]),
            ("POST", &[("Origin", "http://127.0.0.1:9180")]),
            ("GET", &[("Referer", "HTTP://127.0.0.1:9180/status")]),
            ("GET", &[("Content-Type", "text/plain")]),
        ];
        for (method, headers) in served {
            assert_eq!(check(method, headers), None, "{method} {headers:?}");
        }
    }
}
