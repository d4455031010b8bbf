//! `GET /debug/connections`: every open data-plane connection (peer, age, state, requests
//! served, pipeline depth), and when the configuration proxies, every upstream server (up or
//! down, requests in flight, connections active and idle, responses, reuse, errors), as JSON
//! by default or as text with `?format=text`.

use std::fmt::Write;

use super::upstreams::pool_counts;
use crate::handlers::proxy::UpstreamReport;
use crate::server::{ConnectionInfo, OutboundStats};

/// The two renderings.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Format {
    /// One JSON object: `{"count": N, "connections": [...]}`.
    Json,
    /// One line per connection.
    Text,
}

impl Format {
    /// The format a query string asks for (`format=text` or `format=json`); `None` for
    /// another value.
    pub fn from_query(query: Option<&str>) -> Option<Format> {
        let value = query
            .into_iter()
            .flat_map(|query| query.split('&'))
            .find_map(|pair| pair.strip_prefix("format="));
        match value {
            None | Some("json") => Some(Format::Json),
            Some("text") => Some(Format::Text),
            Some(_) => None,
        }
    }

    /// The `Content-Type` of the rendering.
    pub fn content_type(self) -> &'static [u8] {
        match self {
            Format::Json => b"application/json",
            Format::Text => b"text/plain; charset=utf-8",
        }
    }
}

/// `connections` sorted by worker, then age (oldest first), rendered, then `upstreams` (with
/// their connection counts from `outbound`) if there are any.
pub fn render(
    mut connections: Vec<ConnectionInfo>,
    upstreams: &[UpstreamReport],
    outbound: &[OutboundStats],
    format: Format,
) -> String {
    connections.sort_by(|a, b| a.worker.cmp(&b.worker).then(b.age.cmp(&a.age)));
    let mut out = String::new();
    match format {
        Format::Json => {
            let _ = write!(out, "{{\"count\":{},\"connections\":[", connections.len());
            for (i, c) in connections.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let chunk = c.chunk.map_or_else(|| "null".to_owned(), |n| n.to_string());
                // Every string here is an address or a fixed state word: nothing to escape.
                let _ = write!(
                    out,
                    "{{\"worker\":{},\"peer\":\"{}\",\"age_seconds\":{:.3},\"state\":\"{}\",\
                     \"chunk\":{chunk},\"requests\":{},\"pipeline_depth\":{}}}",
                    c.worker,
                    c.peer,
                    c.age.as_secs_f64(),
                    c.state,
                    c.requests,
                    c.pipeline_depth
                );
            }
            out.push(']');
            if !upstreams.is_empty() {
                out.push_str(",\"upstreams\":[");
                upstreams_json(&mut out, upstreams, outbound);
                out.push(']');
            }
            out.push_str("}\n");
        }
        Format::Text => {
            let _ = writeln!(out, "{} connection(s)", connections.len());
            for c in &connections {
                let state = match c.chunk {
                    Some(n) => format!("{} / chunk {n}", c.state),
                    None => c.state.to_owned(),
                };
                let _ = writeln!(
                    out,
                    "worker={} peer={} age={:.3}s state=\"{state}\" requests={} pipeline_depth={}",
                    c.worker,
                    c.peer,
                    c.age.as_secs_f64(),
                    c.requests,
                    c.pipeline_depth
                );
            }
            upstreams_text(&mut out, upstreams, outbound);
        }
    }
    out
}

fn upstreams_json(out: &mut String, upstreams: &[UpstreamReport], outbound: &[OutboundStats]) {
    for (i, upstream) in upstreams.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"name\":\"{}\",\"balance\":\"{}\",\"retries\":{},\"unavailable\":{},\"servers\":[",
            json_escape(&upstream.name),
            upstream.balance,
            upstream.retries,
            upstream.unavailable
        );
        for (j, server) in upstream.servers.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            let (open, idle) = pool_counts(outbound, server.pool_key);
            let errors: u64 = server.errors.iter().map(|(_, count)| count).sum();
            let _ = write!(
                out,
                "{{\"address\":\"{}\",\"up\":{},\"in_flight\":{},\"active\":{},\"idle\":{},\
                 \"responses\":{},\"reused\":{},\"errors\":{errors}}}",
                json_escape(&server.address),
                server.up,
                server.in_flight,
                open - idle,
                idle,
                server.responses,
                server.reused,
            );
        }
        out.push_str("]}");
    }
}

fn upstreams_text(out: &mut String, upstreams: &[UpstreamReport], outbound: &[OutboundStats]) {
    for upstream in upstreams {
        let _ = writeln!(
            out,
            "upstream {} ({}): {} server(s), retries={} unavailable={}",
            upstream.name,
            upstream.balance,
            upstream.servers.len(),
            upstream.retries,
            upstream.unavailable
        );
        for server in &upstream.servers {
            let (open, idle) = pool_counts(outbound, server.pool_key);
            let errors: u64 = server.errors.iter().map(|(_, count)| count).sum();
            let _ = writeln!(
                out,
                "  server={} {} in_flight={} active={} idle={} responses={} reused={} errors={errors}",
                server.address,
                if server.up { "up" } else { "down" },
                server.in_flight,
                open - idle,
                idle,
                server.responses,
                server.reused,
            );
        }
    }
}

/// `text` as the inside of a JSON string (a Unix socket path may hold any character).
fn json_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn connection(worker: usize, age_ms: u64, chunk: Option<u64>) -> ConnectionInfo {
        ConnectionInfo {
            worker,
            peer: "127.0.0.1:4000".parse().unwrap(),
            age: Duration::from_millis(age_ms),
            state: if chunk.is_some() {
                "reading body"
            } else {
                "idle"
            },
            chunk,
            requests: 2,
            pipeline_depth: 1,
        }
    }

    #[test]
    fn json_and_text() {
        let list = vec![connection(0, 5, None), connection(0, 1500, Some(3))];
        assert_eq!(
            render(list.clone(), &[], &[], Format::Json),
            "{\"count\":2,\"connections\":[{\"worker\":0,\"peer\":\"127.0.0.1:4000\",\
             \"age_seconds\":1.500,\"state\":\"reading body\",\"chunk\":3,\"requests\":2,\
             \"pipeline_depth\":1},{\"worker\":0,\"peer\":\"127.0.0.1:4000\",\
             \"age_seconds\":0.005,\"state\":\"idle\",\"chunk\":null,\"requests\":2,\
             \"pipeline_depth\":1}]}\n"
        );
        assert_eq!(
            render(list, &[], &[], Format::Text),
            "2 connection(s)\n\
             worker=0 peer=127.0.0.1:4000 age=1.500s state=\"reading body / chunk 3\" requests=2 pipeline_depth=1\n\
             worker=0 peer=127.0.0.1:4000 age=0.005s state=\"idle\" requests=2 pipeline_depth=1\n"
        );
    }

    fn report() -> Vec<UpstreamReport> {
        use crate::handlers::proxy::{ErrorKind, LATENCY_BUCKETS, Latency, ServerReport};
        let server = |address: &str, pool_key, up| ServerReport {
            address: address.into(),
            pool_key,
            up,
            in_flight: 1,
            responses: 7,
            reused: 5,
            errors: vec![(ErrorKind::Connect, 2), (ErrorKind::ReadTimeout, 1)],
            head_latency: Latency {
                bounds: LATENCY_BUCKETS,
                counts: vec![0; LATENCY_BUCKETS.len() + 1],
                sum: 0.0,
                count: 0,
            },
        };
        vec![UpstreamReport {
            name: "app".into(),
            balance: "round_robin",
            unavailable: 0,
            retries: 3,
            servers: vec![
                server("127.0.0.1:9000", 1, true),
                server("unix:/run/a\"b.sock", 2, false),
            ],
        }]
    }

    #[test]
    fn upstreams_follow_the_connections_with_their_pool_counts() {
        let outbound = [OutboundStats {
            key: 1,
            open: 3,
            idle: 2,
        }];
        assert_eq!(
            render(Vec::new(), &report(), &outbound, Format::Json),
            "{\"count\":0,\"connections\":[],\"upstreams\":[{\"name\":\"app\",\
             \"balance\":\"round_robin\",\"retries\":3,\"unavailable\":0,\"servers\":[\
             {\"address\":\"127.0.0.1:9000\",\"up\":true,\"in_flight\":1,\"active\":1,\
             \"idle\":2,\"responses\":7,\"reused\":5,\"errors\":3},\
             {\"address\":\"unix:/run/a\\\"b.sock\",\"up\":false,\"in_flight\":1,\
             \"active\":0,\"idle\":0,\"responses\":7,\"reused\":5,\"errors\":3}]}]}\n"
        );
        assert_eq!(
            render(Vec::new(), &report(), &outbound, Format::Text),
            "0 connection(s)\n\
             upstream app (round_robin): 2 server(s), retries=3 unavailable=0\n  \
             server=127.0.0.1:9000 up in_flight=1 active=1 idle=2 responses=7 reused=5 errors=3\n  \
             server=unix:/run/a\"b.sock down in_flight=1 active=0 idle=0 responses=7 reused=5 errors=3\n"
        );
    }

    #[test]
    fn format_from_query() {
        assert_eq!(Format::from_query(None), Some(Format::Json));
        assert_eq!(
            Format::from_query(Some("a=1&format=text")),
            Some(Format::Text)
        );
        assert_eq!(Format::from_query(Some("format=xml")), None);
    }
}
