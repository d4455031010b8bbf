//! What crosses the proxy and what does not: the request head sent upstream (hop-by-hop
//! fields removed, `Host` kept or rewritten, `X-Forwarded-For`, `X-Forwarded-Proto` and
//! `Forwarded` added, framing re-declared) and the response fields relayed to the client.
//!
//! Pure functions over byte slices: no I/O, no state.

use std::io::Write as _;
use std::net::SocketAddr;

use crate::http1::encode;
use crate::service::{BodyKind, Header, Request, Version};

/// The proxy's own `Via` entry (RFC 9110 7.6.3), encoded once per upstream group for each
/// protocol version a message can have been received in: `1.0 NAME`, `1.1 NAME`.
#[derive(Debug)]
pub(super) struct Via {
    http10: Box<[u8]>,
    http11: Box<[u8]>,
}

impl Via {
    /// The entries for pseudonym `name` (a token: configuration checked it).
    pub(super) fn new(name: &str) -> Self {
        Via {
            http10: format!("1.0 {name}").into_bytes().into(),
            http11: format!("1.1 {name}").into_bytes().into(),
        }
    }

    /// The entry for a message received as `version` (the received-protocol is the
    /// version of the message the proxy received, not the one it sends).
    pub(super) fn entry(&self, version: Version) -> &[u8] {
        match version {
            Version::Http10 => &self.http10,
            Version::Http11 => &self.http11,
        }
    }
}

/// Fields that describe one connection, never forwarded (RFC 9110 7.6.1), plus the framing
/// fields the proxy declares itself and `Expect`, which the proxy answers itself.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "expect",
];

/// Whether `name` must not cross the proxy: a hop-by-hop field, or one the message's
/// `Connection` field lists.
pub(super) fn is_hop_by_hop(name: &str, headers: &[Header<'_>]) -> bool {
    HOP_BY_HOP.iter().any(|hop| name.eq_ignore_ascii_case(hop))
        || headers
            .iter()
            .filter(|header| header.name.eq_ignore_ascii_case("connection"))
            .flat_map(|header| header.value.split(|&b| b == b','))
            .any(|token| token.trim_ascii().eq_ignore_ascii_case(name.as_bytes()))
}

/// What the upstream's `Host` field says.
pub(super) enum HostValue<'a> {
    /// The request's authority ([`Request::authority`]): an absolute-form target's, else
    /// the client's `Host`, as sent.
    Client,
    /// This value (a configured name).
    Given(&'a str),
    /// The address of the server the request goes to, known only once one is chosen: left
    /// out here, and put in at the offset `write_request_head` returns.
    Server,
}

/// Writes the request head to send upstream: the method and target as the client sent
/// them (an absolute-form target in origin form), HTTP/1.1, `Host`, the end-to-end fields
/// in their order, the forwarding fields, our `Via` entry after any the client's lines
/// carry (so the list stays in order), and the body's framing. Returns where the `Host`
/// line goes for [`HostValue::Server`].
pub(super) fn write_request_head(
    out: &mut Vec<u8>,
    request: &Request<'_>,
    host: HostValue<'_>,
    via: Option<&Via>,
) -> usize {
    out.extend_from_slice(request.method.as_bytes());
    out.push(b' ');
    write_origin_form(out, request.target);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let host_at = out.len();
    // The one effective authority: an absolute-form target's, never a `Host` sent beside it
    // (RFC 9112 3.2.2), so the upstream sees the virtual host the route was chosen for.
    let authority = request.authority();
    match (host, authority) {
        (HostValue::Client, Some(value)) => encode::write_header(out, b"Host", value.as_bytes()),
        (HostValue::Client, None) | (HostValue::Server, _) => {}
        (HostValue::Given(value), _) => encode::write_header(out, b"Host", value.as_bytes()),
    }
    for header in request.headers {
        let name = header.name;
        if name.eq_ignore_ascii_case("host")
            || name.eq_ignore_ascii_case("x-forwarded-proto")
            // Earlier proxies' entries go into ours (`write_forwarding`), in their order.
            || name.eq_ignore_ascii_case("x-forwarded-for")
            || name.eq_ignore_ascii_case("forwarded")
            || is_hop_by_hop(name, request.headers)
        {
            continue;
        }
        encode::write_header(out, name.as_bytes(), header.value);
    }
    write_forwarding(out, request.peer, request.headers, authority);
    if let Some(via) = via {
        encode::write_header(out, b"Via", via.entry(request.version));
    }
    match request.body {
        BodyKind::None => {}
        BodyKind::Length(len) => encode::write_content_length(out, len),
        BodyKind::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
    }
    out.extend_from_slice(encode::CRLF);
    host_at
}

/// `X-Forwarded-For`, `X-Forwarded-Proto` and `Forwarded` (RFC 7239) for a client at `peer`
/// (`None`: a Unix socket, which has no address to report). Each list keeps the entries of
/// every line of it the client sent, in the order received, and ends with ours: a proxy
/// must not reorder field line values (RFC 9110 5.3). The lines are found by walking
/// `headers` again, so nothing is collected.
fn write_forwarding(
    out: &mut Vec<u8>,
    peer: Option<SocketAddr>,
    headers: &[Header<'_>],
    host: Option<&str>,
) {
    out.extend_from_slice(b"X-Forwarded-For: ");
    write_earlier(out, headers, "x-forwarded-for");
    match peer {
        // Formatted straight into the head: no string per request.
        Some(peer) => {
            let _ = write!(out, "{}", peer.ip());
        }
        None => out.extend_from_slice(b"unknown"),
    }
    out.extend_from_slice(b"\r\nX-Forwarded-Proto: http\r\nForwarded: ");
    write_earlier(out, headers, "forwarded");
    match peer {
        // An IPv6 node is quoted and bracketed (RFC 7239 6).
        Some(SocketAddr::V6(v6)) => {
            let _ = write!(out, "for=\"[{}]\"", v6.ip());
        }
        Some(SocketAddr::V4(v4)) => {
            let _ = write!(out, "for={}", v4.ip());
        }
        None => out.extend_from_slice(b"for=unknown"),
    }
    let host = host.map(str::as_bytes).filter(|host| !host.is_empty());
    if let Some(host) = host.filter(|host| is_token(host)) {
        out.extend_from_slice(b";host=");
        out.extend_from_slice(host);
    } else if let Some(host) = host.filter(|host| !host.iter().any(|&b| b == b'"' || b == b'\\')) {
        out.extend_from_slice(b";host=\"");
        out.extend_from_slice(host);
        out.push(b'"');
    }
    out.extend_from_slice(b";proto=http\r\n");
}

/// The values of every `name` line among `headers`, in order, each followed by `, ` (empty
/// ones skipped): the earlier entries of a list ours ends.
fn write_earlier(out: &mut Vec<u8>, headers: &[Header<'_>], name: &str) {
    for header in headers {
        let value = header.value.trim_ascii();
        if header.name.eq_ignore_ascii_case(name) && !value.is_empty() {
            out.extend_from_slice(value);
            out.extend_from_slice(b", ");
        }
    }
}

/// Whether `value` may stand unquoted in `Forwarded` (an RFC 9110 token).
fn is_token(value: &[u8]) -> bool {
    !value.is_empty() && encode::is_valid_header_name(value)
}

/// The target as an upstream expects it: origin form (`/path?query`) for an absolute-form
/// target, anything else as sent.
fn write_origin_form(out: &mut Vec<u8>, target: &str) {
    if crate::http1::target::authority_of(target).is_none() {
        return out.extend_from_slice(target.as_bytes());
    }
    let after_scheme = target.find("://").map_or(0, |at| at + 3);
    let rest = &target[after_scheme..];
    match rest.find(['/', '?', '#']) {
        Some(at) if rest.as_bytes()[at] == b'/' => out.extend_from_slice(&rest.as_bytes()[at..]),
        Some(at) if rest.as_bytes()[at] == b'?' => {
            out.push(b'/');
            out.extend_from_slice(&rest.as_bytes()[at..]);
        }
        _ => out.push(b'/'),
    }
}

/// Fields a trailer section must not carry, dropped when the proxy relays one in either
/// direction. RFC 9110 6.5.1: a sender MUST NOT generate a trailer field unless it knows the
/// field may be sent there, and fields that control message framing (6.1), routing (7),
/// request modifiers (controls and conditionals, 10.1, 13), authentication (11), response
/// control data (10.2) or payload processing (Content-Encoding, Content-Type, Content-Range,
/// Trailer) are not allowed; RFC 9110 6.5.2: a recipient MUST NOT merge a trailer into the
/// header section unless it knows the field is defined for that. The proxy does not merge,
/// but the next hop may, so these never cross: a client cannot smuggle a `Host`, an
/// `X-Forwarded-For` or a `Content-Length` to the upstream past the head the proxy wrote,
/// nor an upstream set a cookie or redirect after its head was relayed. Fields whose
/// purpose is a trailer's (`Server-Timing`, `Digest`/`Content-Digest`, checksums) pass.
/// Names beginning with a `NOT_IN_TRAILERS_PREFIXES` entry are dropped too.
const NOT_IN_TRAILERS: [&str; 38] = [
    // Framing and connection (RFC 9110 6.1, 7.6.1; RFC 9112 6).
    "content-length",
    "transfer-encoding",
    "trailer",
    "te",
    "connection",
    "keep-alive",
    "upgrade",
    // Routing and forwarding (RFC 9110 7.2, 7.6.2, 7.6.3; RFC 7239).
    "host",
    "max-forwards",
    "via",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    // Request modifiers (RFC 9110 10.1, 14.2).
    "expect",
    "range",
    // Authentication and state (RFC 9110 11; RFC 6265).
    "authorization",
    "www-authenticate",
    "authentication-info",
    "cookie",
    "set-cookie",
    // Response control data and caching (RFC 9110 10.2, 8.8; RFC 9111 5).
    "age",
    "cache-control",
    "date",
    "etag",
    "expires",
    "last-modified",
    "location",
    "pragma",
    "retry-after",
    "vary",
    // Content processing and representation metadata (RFC 9110 8.3-8.7, 14.4).
    "content-encoding",
    "content-language",
    "content-location",
    "content-range",
    "content-type",
    "content-disposition",
];

/// Prefixes of field names dropped from trailers: conditionals (`If-*`, RFC 9110 13.1) and
/// proxy authentication (`Proxy-*`, RFC 9110 11.7).
const NOT_IN_TRAILERS_PREFIXES: [&str; 2] = ["if-", "proxy-"];

/// Whether a trailer field crosses the proxy (RFC 9110 6.5.1-6.5.2; see `NOT_IN_TRAILERS`).
pub(super) fn relays_trailer_field(name: &str) -> bool {
    let lower_prefix = |prefix: &str| {
        name.len() >= prefix.len()
            && name.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    };
    !NOT_IN_TRAILERS
        .iter()
        .any(|field| name.eq_ignore_ascii_case(field))
        && !NOT_IN_TRAILERS_PREFIXES
            .iter()
            .any(|prefix| lower_prefix(prefix))
}

/// Whether a response field is relayed to the client: not hop-by-hop, and not `Date`
/// (the proxy writes its own, as for every response it sends).
pub(super) fn relays_response_field(name: &str, headers: &[Header<'_>]) -> bool {
    !name.eq_ignore_ascii_case("date") && !is_hop_by_hop(name, headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of(request: &Request<'_>, host: HostValue<'_>) -> String {
        let mut out = Vec::new();
        let host_at = write_request_head(&mut out, request, host, None);
        assert!(out[..host_at].ends_with(b" HTTP/1.1\r\n"));
        String::from_utf8(out).unwrap()
    }

    fn header<'a>(name: &'a str, value: &'a str) -> Header<'a> {
        Header {
            name,
            value: value.as_bytes(),
        }
    }

    #[test]
    fn hop_by_hop_fields_stay_and_forwarding_fields_are_added() {
        let headers = [
            header("Host", "example.com"),
            header("Connection", "keep-alive, X-Secret"),
            header("X-Secret", "1"),
            header("Keep-Alive", "timeout=5"),
            header("TE", "trailers"),
            header("Accept", "*/*"),
            header("X-Forwarded-For", "10.0.0.1"),
            header("X-Forwarded-Proto", "https"),
            header("Forwarded", "for=10.0.0.1"),
            header("Expect", "100-continue"),
            header("Transfer-Encoding", "chunked"),
        ];
        let request = Request {
            method: "POST",
            target: "/a?b",
            path: "/a",
            version: Version::Http11,
            headers: &headers,
            body: BodyKind::Chunked,
            peer: Some(([192, 0, 2, 7], 5555).into()),
        };
        assert_eq!(
            head_of(&request, HostValue::Client),
            "POST /a?b HTTP/1.1\r\n\
             Host: example.com\r\n\
             Accept: */*\r\n\
             X-Forwarded-For: 10.0.0.1, 192.0.2.7\r\n\
             X-Forwarded-Proto: http\r\n\
             Forwarded: for=10.0.0.1, for=192.0.2.7;host=example.com;proto=http\r\n\
             Transfer-Encoding: chunked\r\n\r\n"
        );
    }

    #[test]
    fn host_rewritten_absolute_form_made_origin_form_ipv6_quoted() {
        let headers = [header("Host", "a.example"), header("Content-Length", "3")];
        let request = Request {
            method: "PUT",
            target: "http://a.example:8080/x/y?z",
            path: "/x/y",
            version: Version::Http10,
            headers: &headers,
            body: BodyKind::Length(3),
            peer: Some("[2001:db8::1]:80".parse().unwrap()),
        };
        assert_eq!(
            head_of(&request, HostValue::Given("app.internal:9000")),
            "PUT /x/y?z HTTP/1.1\r\n\
             Host: app.internal:9000\r\n\
             X-Forwarded-For: 2001:db8::1\r\n\
             X-Forwarded-Proto: http\r\n\
             Forwarded: for=\"[2001:db8::1]\";host=\"a.example:8080\";proto=http\r\n\
             Content-Length: 3\r\n\r\n"
        );
        for (target, origin) in [("http://h", "/"), ("http://h?q", "/?q"), ("*", "*")] {
            let mut out = Vec::new();
            write_origin_form(&mut out, target);
            assert_eq!(out, origin.as_bytes(), "{target}");
        }
    }

    /// RFC 9110 7.6.3: our `Via` entry follows the client's, with the version the request
    /// was received in.
    #[test]
    fn via_is_appended_after_the_received_entries() {
        let headers = [header("Host", "h"), header("Via", "1.1 first")];
        let request = Request {
            method: "GET",
            target: "/",
            path: "/",
            version: Version::Http10,
            headers: &headers,
            body: BodyKind::None,
            peer: None,
        };
        let mut out = Vec::new();
        write_request_head(
            &mut out,
            &request,
            HostValue::Client,
            Some(&Via::new("edge")),
        );
        let head = String::from_utf8(out).unwrap();
        assert!(
            head.ends_with(
                "Via: 1.1 first\r\nX-Forwarded-For: unknown\r\n\
                 X-Forwarded-Proto: http\r\nForwarded: for=unknown;host=h;proto=http\r\n\
                 Via: 1.0 edge\r\n\r\n"
            ),
            "{head}"
        );
    }

    /// RFC 9110 5.3: repeated `X-Forwarded-For` / `Forwarded` lines are combined in the
    /// order received, ours last.
    #[test]
    fn repeated_forwarding_lines_keep_their_order() {
        let headers = [
            header("Host", "h"),
            header("X-Forwarded-For", "1.1.1.1"),
            header("Forwarded", "for=1.1.1.1"),
            header("Accept", "*/*"),
            header("X-Forwarded-For", "2.2.2.2, 3.3.3.3"),
            header("Forwarded", "for=2.2.2.2"),
        ];
        let request = Request {
            method: "GET",
            target: "/",
            path: "/",
            version: Version::Http11,
            headers: &headers,
            body: BodyKind::None,
            peer: Some(([127, 0, 0, 1], 1).into()),
        };
        assert_eq!(
            head_of(&request, HostValue::Client),
            "GET / HTTP/1.1\r\n\
             Host: h\r\n\
             Accept: */*\r\n\
             X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 127.0.0.1\r\n\
             X-Forwarded-Proto: http\r\n\
             Forwarded: for=1.1.1.1, for=2.2.2.2, for=127.0.0.1;host=h;proto=http\r\n\r\n"
        );
    }

    /// RFC 9112 3.2.2: an absolute-form target's authority is the request's host; the
    /// `Host` the client sent beside it never reaches the upstream, nor `Forwarded`.
    #[test]
    fn absolute_form_authority_replaces_the_client_host() {
        let headers = [header("Host", "admin.test")];
        let request = Request {
            method: "GET",
            target: "http://public.test/x",
            path: "/x",
            version: Version::Http11,
            headers: &headers,
            body: BodyKind::None,
            peer: Some(([192, 0, 2, 7], 5555).into()),
        };
        assert_eq!(
            head_of(&request, HostValue::Client),
            "GET /x HTTP/1.1\r\n\
             Host: public.test\r\n\
             X-Forwarded-For: 192.0.2.7\r\n\
             X-Forwarded-Proto: http\r\n\
             Forwarded: for=192.0.2.7;host=public.test;proto=http\r\n\r\n"
        );
    }

    /// RFC 9110 6.5.1: fields that control framing, routing, authentication, forwarding or
    /// the response are dropped from relayed trailers; the others pass.
    #[test]
    fn trailers_that_control_the_message_do_not_cross() {
        for name in [
            "Content-Length",
            "transfer-encoding",
            "Host",
            "X-Forwarded-For",
            "Forwarded",
            "Via",
            "Set-Cookie",
            "Authorization",
            "Cookie",
            "Content-Type",
            "Content-Encoding",
            "Content-Range",
            "Trailer",
            "TE",
            "Connection",
            "Cache-Control",
            "Expires",
            "Location",
            "Retry-After",
            "Vary",
            "WWW-Authenticate",
            "Proxy-Authorization",
            "Proxy-Anything",
            "Age",
            "Date",
            "Max-Forwards",
            "Range",
            "Expect",
            "If-Match",
            "If-None-Match",
        ] {
            assert!(!relays_trailer_field(name), "{name}");
        }
        for name in [
            "X-Checksum",
            "Server-Timing",
            "Digest",
            "Content-Digest",
            "X-If",
            "I",
        ] {
            assert!(relays_trailer_field(name), "{name}");
        }
    }

    #[test]
    fn response_fields_named_by_connection_are_not_relayed() {
        let headers = [header("Connection", "close, X-Hop"), header("X-Hop", "1")];
        assert!(!relays_response_field("X-Hop", &headers));
        assert!(!relays_response_field("Date", &headers));
        assert!(!relays_response_field("Transfer-Encoding", &headers));
        assert!(relays_response_field("Server", &headers));
        assert!(relays_response_field("Set-Cookie", &headers));
    }
}
