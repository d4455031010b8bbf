//! `GET /debug/connections`: every open data-plane connection (peer, age, state, requests
//! served, pipeline depth), as JSON by default or as text with `?format=text`.

use std::fmt::Write;

use crate::server::ConnectionInfo;

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

/// `connections` sorted by worker, then age (oldest first), rendered.
pub fn render(mut connections: Vec<ConnectionInfo>, format: Format) -> String {
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
            out.push_str("]}\n");
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
            render(list.clone(), Format::Json),
            "{\"count\":2,\"connections\":[{\"worker\":0,\"peer\":\"127.0.0.1:4000\",\
             \"age_seconds\":1.500,\"state\":\"reading body\",\"chunk\":3,\"requests\":2,\
             \"pipeline_depth\":1},{\"worker\":0,\"peer\":\"127.0.0.1:4000\",\
             \"age_seconds\":0.005,\"state\":\"idle\",\"chunk\":null,\"requests\":2,\
             \"pipeline_depth\":1}]}\n"
        );
        assert_eq!(
            render(list, Format::Text),
            "2 connection(s)\n\
             worker=0 peer=127.0.0.1:4000 age=1.500s state=\"reading body / chunk 3\" requests=2 pipeline_depth=1\n\
             worker=0 peer=127.0.0.1:4000 age=0.005s state=\"idle\" requests=2 pipeline_depth=1\n"
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
