//! The service model: how application code answers requests without ever blocking the loop.
//!
//! This is the seed's `servicemodel`. A [`Handler`] sees each request head once and decides
//! how to take the body ([`BodyMode`]): ignore it, stream it as [`BodyEvent`]s that keep chunk
//! boundaries (the seed's `[chunksz, datafirst] [data]* ... [0, '']` pattern, with trailers
//! delivered instead of dropped), or have it buffered up to a bound. It answers through a
//! [`ResponseWriter`], which owns HTTP/1.1 framing (Content-Length or chunked, HEAD, 1xx,
//! keep-alive) so a handler cannot produce a malformed message. A response body that is not
//! ready at once is written by the handler's [`Exchange`] when the connection has room: the
//! analogue of the seed's `input_sentinel`, with no blocking and no unbounded buffering.
//!
//! This module must not know about sockets, the reactor or configuration.

mod fixed;
mod header_lines;
mod outbound;
mod reply;
mod response;
mod waker;

pub use crate::http1::{BodyKind, Header, Version};
pub use fixed::FixedResponse;
pub use header_lines::HeaderLines;
pub use outbound::{Destination, Outbound, OutboundId, Parking, READ_BUFFER_LEN};
pub use reply::{
    BodyState, FileBody, Framing, Reply, ResponseContext, ResponseError, ResponseState,
    UpstreamUsed,
};
pub use response::ResponseWriter;
pub use waker::{ExchangeWaker, Wake, WakeRef};

/// A parsed request head, borrowed from the connection's read buffer for the duration of
/// [`Handler::start`]. Copy what you need to keep.
#[derive(Debug)]
pub struct Request<'a> {
    /// The method token, e.g. `GET`.
    pub method: &'a str,
    /// The request target as sent (origin-form `/a?b`, absolute-form, `*`, ...).
    pub target: &'a str,
    /// The target's path in normal form ([`crate::http1::target::normalize_path`]): what
    /// routes match and handlers resolve. `*` for asterisk-form.
    pub path: &'a str,
    /// The protocol version.
    pub version: Version,
    /// The header fields in the order received.
    pub headers: &'a [Header<'a>],
    /// How the body is delimited.
    pub body: BodyKind,
    /// The client's address; `None` over a Unix-domain socket (a process on this host,
    /// no network peer).
    pub peer: Option<std::net::SocketAddr>,
}

impl<'a> Request<'a> {
    /// The target's path in normal form (see the `path` field).
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The query string (after `?`), if any.
    pub fn query(&self) -> Option<&'a str> {
        let query = &self.target[self.target.find('?')? + 1..];
        Some(query.split('#').next().unwrap_or(query))
    }

    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case(name))
            .map(|header| header.value)
    }

    /// The authority the request is for (`host[:port]`, as sent): the authority of an
    /// absolute-form target, whatever the `Host` header says (RFC 9112 3.2.2: a server
    /// receiving an absolute-form target ignores the received `Host`), else the `Host`
    /// header's value; `None` if neither is there. Userinfo (`user@`), which RFC 9110
    /// 4.2.4 forbids, is never part of it. Empty when the target or `Host` names none.
    pub fn authority(&self) -> Option<&'a str> {
        let authority = match crate::http1::target::authority_of(self.target) {
            Some(authority) => authority,
            None => std::str::from_utf8(self.header("host")?).ok()?,
        };
        Some(match authority.rfind('@') {
            Some(at) => &authority[at + 1..],
            None => authority,
        })
    }

    /// The host the request is for, without port, as sent: the host of
    /// [`authority`](Self::authority) (the absolute-form target's, else the `Host`
    /// header's); `None` if neither names one. Compare it case-insensitively.
    pub fn host(&self) -> Option<&'a str> {
        let authority = self.authority()?;
        let bytes = authority.as_bytes();
        // Every delimiter is ASCII, so each index below is a char boundary.
        let end = if bytes.first() == Some(&b'[') {
            // An IPv6 literal keeps its brackets; only a port after `]` goes.
            bytes
                .iter()
                .position(|&b| b == b']')
                .map_or(bytes.len(), |close| close + 1)
        } else {
            bytes.iter().position(|&b| b == b':').unwrap_or(bytes.len())
        };
        let host = &authority[..end];
        (!host.is_empty()).then_some(host)
    }

    /// Whether this is a HEAD request (its response carries no body).
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }
}

/// How a handler takes the request body.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BodyMode {
    /// Not wanted: the server discards it (or closes the connection when the client was
    /// told to wait with `Expect: 100-continue`).
    Ignore,
    /// Delivered as [`BodyEvent`]s as it arrives.
    Stream,
    /// Collected, then delivered as one `Data` event; a larger body is answered with 413.
    Buffer {
        /// The largest body accepted, in bytes.
        limit: u64,
    },
}

/// One piece of a request body, in arrival order.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyEvent<'a> {
    /// A chunk of `size` bytes begins (chunked bodies only; its data follows).
    ChunkStart {
        /// The chunk's declared size.
        size: u64,
    },
    /// Body bytes (never empty).
    Data(&'a [u8]),
    /// The trailer fields of a chunked body, if it had any.
    Trailers(&'a [Header<'a>]),
    /// The body is complete.
    End,
}

/// A handler's answer to a new request.
pub enum Start<E> {
    /// The response was written completely in `start`; any body is discarded.
    Complete,
    /// The exchange goes on: the body is taken as `body`, and `exchange` finishes the response.
    Continue {
        /// How to take the body.
        body: BodyMode,
        /// The per-request state that receives body events and writes the rest.
        exchange: E,
    },
}

impl<E> Start<E> {
    /// Converts the exchange type (e.g. into an enum of several handlers' exchanges).
    pub fn map<F>(self, f: impl FnOnce(E) -> F) -> Start<F> {
        match self {
            Start::Complete => Start::Complete,
            Start::Continue { body, exchange } => Start::Continue {
                body,
                exchange: f(exchange),
            },
        }
    }
}

/// Application code: answers requests. Shared by all connections of all workers.
pub trait Handler: Send + Sync + 'static {
    /// Per-request state for responses that outlive `start`.
    type Exchange: Exchange;

    /// A request head has arrived. Write the response now (and return [`Start::Complete`]) or
    /// return the exchange that will.
    ///
    /// A handler that wants the body should leave the head to its exchange
    /// ([`Exchange::on_writable`] runs right after `start`): a head written while a client
    /// waits on `Expect: 100-continue` must announce `Connection: close`, because the server
    /// cannot know yet whether the body will follow.
    fn start(
        &self,
        request: &Request<'_>,
        response: &mut ResponseWriter<'_>,
    ) -> Start<Self::Exchange>;

    /// The name of what serves `request`, for logs (a route table names the route); empty
    /// when there is nothing to name.
    fn route_name(&self, _request: &Request<'_>) -> &str {
        ""
    }

    /// The name of the route at `index`, as a handler noted it with
    /// [`ResponseWriter::set_route`]; empty when there is none.
    fn route_name_at(&self, _index: u32) -> &str {
        ""
    }

    /// The methods this handler answers with anything but 405, for the `Allow` of an
    /// `OPTIONS *` answer (RFC 9110 9.3.7); `None` when it takes any method.
    fn methods(&self) -> Option<&'static [&'static str]> {
        None
    }
}

/// The per-request half of a handler. Calls never overlap and never block.
pub trait Exchange {
    /// A piece of the body arrived (in [`BodyMode::Stream`] and [`BodyMode::Buffer`]).
    fn on_body(&mut self, event: BodyEvent<'_>, response: &mut ResponseWriter<'_>);

    /// The connection can take more output ([`ResponseWriter::room`] says how much). Called
    /// after `start`, after body events, and whenever the socket drains, until the response is
    /// complete. Write as much as is ready; nothing written means "not ready yet".
    fn on_writable(&mut self, response: &mut ResponseWriter<'_>);
}

/// The exchange of handlers that always answer in `start`.
impl Exchange for () {
    fn on_body(&mut self, _: BodyEvent<'_>, _: &mut ResponseWriter<'_>) {}
    fn on_writable(&mut self, _: &mut ResponseWriter<'_>) {}
}

impl<H: Handler> Handler for std::sync::Arc<H> {
    type Exchange = H::Exchange;

    fn start(
        &self,
        request: &Request<'_>,
        response: &mut ResponseWriter<'_>,
    ) -> Start<Self::Exchange> {
        (**self).start(request, response)
    }

    fn route_name(&self, request: &Request<'_>) -> &str {
        (**self).route_name(request)
    }

    fn route_name_at(&self, index: u32) -> &str {
        (**self).route_name_at(index)
    }

    fn methods(&self) -> Option<&'static [&'static str]> {
        (**self).methods()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_host() {
        let cases: [(&str, &[u8], Option<&str>); 7] = [
            ("/", b"example.com", Some("example.com")),
            ("/", b"Example.com:8080", Some("Example.com")),
            ("/", b"[::1]:8080", Some("[::1]")),
            ("/", b"", None),
            ("http://other.org:81/p", b"example.com", Some("other.org")),
            ("http://user@other.org/p", b"", Some("other.org")),
            (
                "/login?next=https://evil.org/",
                b"example.com",
                Some("example.com"),
            ),
        ];
        for (target, host, expected) in cases {
            let headers = [Header {
                name: "Host",
                value: host,
            }];
            let request = Request {
                method: "GET",
                target,
                path: "/",
                version: Version::Http11,
                headers: &headers,
                body: BodyKind::None,
                peer: None,
            };
            assert_eq!(request.host(), expected, "{target} {host:?}");
        }
    }

    /// RFC 9112 3.2.2: an absolute-form target's authority wins over `Host`.
    #[test]
    fn request_authority() {
        /// The target, the `Host` value if any, and the authority expected.
        type Case = (&'static str, Option<&'static [u8]>, Option<&'static str>);
        let cases: [Case; 6] = [
            ("/", Some(b"example.com:8080"), Some("example.com:8080")),
            ("/", None, None),
            (
                "http://public.test/x",
                Some(b"admin.test"),
                Some("public.test"),
            ),
            ("http://public.test:81/x", None, Some("public.test:81")),
            (
                "http://u:p@public.test/",
                Some(b"admin.test"),
                Some("public.test"),
            ),
            ("http:///x", Some(b"admin.test"), Some("")),
        ];
        for (target, host, expected) in cases {
            let headers: Vec<Header<'_>> = host
                .iter()
                .map(|&value| Header {
                    name: "Host",
                    value,
                })
                .collect();
            let request = Request {
                method: "GET",
                target,
                path: "/",
                version: Version::Http11,
                headers: &headers,
                body: BodyKind::None,
                peer: None,
            };
            assert_eq!(request.authority(), expected, "{target} {host:?}");
        }
    }

    #[test]
    fn request_query() {
        let cases = [
            ("/a/b?x=1", Some("x=1")),
            ("/", None),
            ("http://example.com/p?q", Some("q")),
            ("/p?q#frag", Some("q")),
            ("*", None),
        ];
        for (target, query) in cases {
            let request = Request {
                method: "GET",
                target,
                path: "/",
                version: Version::Http11,
                headers: &[],
                body: BodyKind::None,
                peer: None,
            };
            assert_eq!(request.query(), query, "{target}");
        }
    }
}
