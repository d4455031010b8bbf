//! The command line of `asycamore-bench` (clap derive) and the checks clap cannot express,
//! turned into the [`Settings`] the run uses. Every mistake here is a usage error (exit 2).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use asycamore::http1::encode::{is_valid_header_name, is_valid_header_value};
use clap::Parser;

use crate::plan::TAG_LEN;

/// asycamore-bench: a load generator and HTTP/1.1 correctness stress tool.
///
/// Opens N connections to URL, sends requests (pipelined D deep if asked) until the
/// duration passes or N requests have been answered, parses every response it reads, and
/// reports requests/s, bytes/s, errors by kind, status classes and latency percentiles.
///
/// Exit status: 0 every request got a well-formed 2xx or 3xx response and no error was
/// counted; 1 an error was counted or a response was 4xx or 5xx; 2 usage error.
#[derive(Debug, Parser)]
#[command(name = "asycamore-bench", version, about, long_about)]
pub struct Args {
    /// The URL to load: http://HOST[:PORT][/PATH], HOST an IPv4 literal, an [IPv6]
    /// literal or localhost.
    #[arg(value_name = "URL", value_parser = parse_url)]
    pub url: Url,

    /// Concurrent connections.
    #[arg(short = 'c', long, default_value_t = 64, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub connections: u32,

    /// How long to run (e.g. 10s, 500ms); the default when --requests is not given is 10s.
    #[arg(short = 'd', long, value_name = "DURATION", value_parser = humantime::parse_duration,
          conflicts_with = "requests")]
    pub duration: Option<Duration>,

    /// Stop once exactly N requests have been sent and answered (or failed).
    #[arg(short = 'n', long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,

    /// Threads, each with its own reactor; connections are split evenly between them.
    #[arg(short = 't', long, default_value_t = 1, value_name = "T",
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: u32,

    /// Requests written back-to-back in one write before their D responses are read.
    #[arg(short = 'p', long, default_value_t = 1, value_name = "D",
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub pipeline: u32,

    /// The request method [default: GET, or POST when a body is sent].
    #[arg(short = 'm', long, value_name = "METHOD")]
    pub method: Option<String>,

    /// An extra request header, "Name: value" (repeatable). Host may be overridden;
    /// Content-Length, Transfer-Encoding and Connection are the tool's.
    #[arg(short = 'H', long = "header", value_name = "HEADER", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,

    /// A request body, sent with Content-Length.
    #[arg(long, value_name = "STRING", conflicts_with_all = ["body_file", "synthesize_post"])]
    pub body: Option<String>,

    /// A request body read from PATH once at start, sent with Content-Length.
    #[arg(long, value_name = "PATH", conflicts_with = "synthesize_post")]
    pub body_file: Option<PathBuf>,

    /// POST with Transfer-Encoding: chunked, NCHUNKS chunks of --chunksz bytes each.
    #[arg(long, value_name = "NCHUNKS", requires = "chunksz")]
    pub synthesize_post: Option<u64>,

    /// The size of each chunk of --synthesize-post, in bytes.
    #[arg(long, value_name = "NBYTES", requires = "synthesize_post",
          value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub chunksz: Option<u64>,

    /// One request per connection: each request says `Connection: close` and gets a new
    /// TCP connection.
    #[arg(long, conflicts_with_all = ["pipeline", "hold_idle"])]
    pub connection_close: bool,

    /// Open N keep-alive connections, get one response on each, then hold them idle until
    /// the duration ends; prints `holding N idle connections` on stderr once all are
    /// established.
    #[arg(long, value_name = "N", conflicts_with_all = ["requests", "pipeline", "connections"],
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub hold_idle: Option<u32>,

    /// The longest wait for a connection to open or for the next response.
    #[arg(long, value_name = "DURATION", default_value = "10s",
          value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// Tag every request body uniquely and require the response body to be the request
    /// echoed (the server's `echo` handler): head text, then body.
    #[arg(long)]
    pub verify_echo: bool,

    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Where to send requests, from the URL argument.
#[derive(Debug, Clone)]
pub struct Url {
    /// The URL as given.
    pub text: String,
    /// The address to connect to.
    pub addr: SocketAddr,
    /// The `Host` value (the URL's authority).
    pub authority: String,
    /// The request target (path and query).
    pub target: String,
}

/// The request body, as the command line describes it.
#[derive(Debug, Clone)]
pub enum Body {
    /// No body.
    Empty,
    /// These bytes, with Content-Length.
    Fixed(Vec<u8>),
    /// `chunks` chunks of `size` bytes, chunked.
    Chunked {
        /// The number of non-empty chunks.
        chunks: u64,
        /// The payload bytes of each.
        size: u64,
    },
}

/// How a run ends.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    /// When the duration has passed.
    After(Duration),
    /// When this many requests have been sent and resolved.
    Count(u64),
}

/// Everything a run needs, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to send requests.
    pub url: Url,
    /// Connections (for --hold-idle, the number held).
    pub connections: u32,
    /// Threads, at most `connections`.
    pub threads: u32,
    /// Pipeline depth.
    pub pipeline: u32,
    /// How the run ends.
    pub stop: Stop,
    /// The request method.
    pub method: String,
    /// Extra header lines, validated.
    pub headers: Vec<(String, String)>,
    /// The request body.
    pub body: Body,
    /// One request per connection.
    pub connection_close: bool,
    /// Hold-idle mode.
    pub hold_idle: bool,
    /// Connect and response timeout.
    pub timeout: Duration,
    /// Echo verification.
    pub verify_echo: bool,
    /// JSON output.
    pub json: bool,
}

impl Settings {
    /// Checks what clap cannot and derives the settings.
    ///
    /// # Errors
    ///
    /// A message for a usage error.
    pub fn from_args(args: Args) -> Result<Settings, String> {
        let body = if let Some(text) = args.body {
            Body::Fixed(text.into_bytes())
        } else if let Some(path) = &args.body_file {
            let bytes = std::fs::read(path)
                .map_err(|err| format!("cannot read --body-file {}: {err}", path.display()))?;
            Body::Fixed(bytes)
        } else if let (Some(chunks), Some(size)) = (args.synthesize_post, args.chunksz) {
            Body::Chunked { chunks, size }
        } else {
            Body::Empty
        };
        if args.verify_echo {
            if let Body::Chunked { chunks, size } = body {
                if size < TAG_LEN as u64 || chunks == 0 {
                    return Err(format!(
                        "--verify-echo tags the first chunk: --chunksz must be at least \
                         {TAG_LEN} and --synthesize-post at least 1"
                    ));
                }
            }
        }
        let sends_body = args.verify_echo || !matches!(body, Body::Empty);
        let method = match args.method {
            Some(method) if is_valid_header_name(method.as_bytes()) => method,
            Some(method) => return Err(format!("invalid method {method:?}")),
            None if sends_body => "POST".to_owned(),
            None => "GET".to_owned(),
        };
        if method == "CONNECT" {
            return Err("CONNECT is not supported".to_owned());
        }
        let connections = args.hold_idle.unwrap_or(args.connections);
        if args.threads > connections {
            return Err(format!(
                "--threads {} is more than the {connections} connections to share",
                args.threads
            ));
        }
        let stop = match (args.requests, args.duration) {
            (Some(n), _) => Stop::Count(n),
            (None, Some(d)) => Stop::After(d),
            (None, None) => Stop::After(Duration::from_secs(10)),
        };
        if args.timeout.is_zero() {
            return Err("--timeout must be more than 0".to_owned());
        }
        Ok(Settings {
            url: args.url,
            connections,
            threads: args.threads,
            pipeline: args.pipeline,
            stop,
            method,
            headers: args.headers,
            body,
            connection_close: args.connection_close,
            hold_idle: args.hold_idle.is_some(),
            timeout: args.timeout,
            verify_echo: args.verify_echo,
            json: args.json,
        })
    }
}

/// `http://HOST[:PORT][/PATH]`, HOST an IP literal or localhost.
fn parse_url(text: &str) -> Result<Url, String> {
    let rest = text
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let rest = rest.split('#').next().unwrap_or_default();
    let (authority, target) = match rest.find(['/', '?']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let target = if target.starts_with('?') {
        format!("/{target}")
    } else {
        target.to_owned()
    };
    if target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("the path must not contain spaces or control characters".to_owned());
    }
    if authority.contains('@') {
        return Err("user information in the URL is not supported".to_owned());
    }
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (host, after) = inner.split_once(']').ok_or("unclosed [ in the host")?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or("junk after the IPv6 literal")?,
            ),
        };
        (host, port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port: u16 = match port {
        Some(port) => port.parse().map_err(|_| format!("invalid port {port:?}"))?,
        None => 80,
    };
    let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse()
            .map_err(|_| format!("host {host:?} is not an IP literal or localhost"))?
    };
    Ok(Url {
        text: text.to_owned(),
        addr: SocketAddr::new(ip, port),
        authority: authority.to_owned(),
        target,
    })
}

/// `Name: value`, with a valid name and value; the value is trimmed.
fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text.split_once(':').ok_or("a header is \"Name: value\"")?;
    let value = value.trim_matches([' ', '\t']);
    if !is_valid_header_name(name.as_bytes()) {
        return Err(format!("invalid header name {name:?}"));
    }
    if !is_valid_header_value(value.as_bytes()) {
        return Err(format!("invalid header value {value:?}"));
    }
    let reserved = ["content-length", "transfer-encoding", "connection"];
    if reserved.iter().any(|r| name.eq_ignore_ascii_case(r)) {
        return Err(format!("{name} is set by the tool"));
    }
    Ok((name.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let url = parse_url("http://127.0.0.1:8080/a/b?c=d").expect("v4");
        assert_eq!(url.addr, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(
            (url.authority.as_str(), url.target.as_str()),
            ("127.0.0.1:8080", "/a/b?c=d")
        );
        let url = parse_url("http://[::1]:81").expect("v6");
        assert_eq!(url.addr, "[::1]:81".parse().expect("addr"));
        assert_eq!(url.target, "/");
        let url = parse_url("http://localhost?x").expect("localhost");
        assert_eq!(url.addr, "127.0.0.1:80".parse().expect("addr"));
        assert_eq!(url.target, "/?x");
        for bad in [
            "https://127.0.0.1/",
            "http://example.com/",
            "http://1.2.3.4:99999/",
            "http://[::1/",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers() {
        assert_eq!(
            parse_header("X-A:  b c ").expect("valid"),
            ("X-A".to_owned(), "b c".to_owned())
        );
        for bad in ["novalue", "Bad Name: x", "Content-Length: 3", "X: a\rb"] {
            assert!(parse_header(bad).is_err(), "{bad}");
        }
    }
}
