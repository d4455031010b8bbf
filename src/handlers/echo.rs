//! `echo`: answers with the request itself: its head as text, then its body.
//!
//! The response body is the request line and header fields exactly as parsed
//! (`METHOD TARGET VERSION`, `Name: value` lines, a blank line), followed by the request
//! body. A chunked request is echoed chunked, chunk for chunk (the head text travels as one
//! chunk first), and its trailers come back as response trailers; a Content-Length request
//! gets a Content-Length response. Body bytes are relayed as they arrive, never collected.

use crate::http1::encode;
use crate::service::{
    BodyEvent, BodyKind, BodyMode, Exchange, Framing, Handler, Request, ResponseWriter, Start,
    Version,
};

/// The echo handler.
#[derive(Debug, Clone)]
pub struct Echo {
    header_lines: Box<[u8]>,
}

impl Echo {
    /// An echo handler adding `header_lines` (pre-encoded, validated) to each response.
    pub fn new(header_lines: Vec<u8>) -> Self {
        Echo {
            header_lines: header_lines.into_boxed_slice(),
        }
    }
}

/// One echo in progress.
#[derive(Debug)]
pub struct EchoExchange {
    /// The route's header lines, then the request head text (from `text_start`).
    prelude: Vec<u8>,
    text_start: usize,
    framing: Framing,
}

impl EchoExchange {
    /// Writes the head and the request's head text, once, before any body byte.
    fn ensure_head(&mut self, response: &mut ResponseWriter<'_>) {
        if response.head_written() {
            return;
        }
        let (header_lines, text) = self.prelude.split_at(self.text_start);
        response.head_encoded(200, header_lines, self.framing);
        response.write(text);
    }
}

impl Handler for Echo {
    type Exchange = EchoExchange;

    fn start(
        &self,
        request: &Request<'_>,
        _response: &mut ResponseWriter<'_>,
    ) -> Start<EchoExchange> {
        let mut prelude = Vec::with_capacity(self.header_lines.len() + 256);
        prelude.extend_from_slice(&self.header_lines);
        let text_start = prelude.len();
        prelude.extend_from_slice(request.method.as_bytes());
        prelude.push(b' ');
        prelude.extend_from_slice(request.target.as_bytes());
        prelude.extend_from_slice(match request.version {
            Version::Http10 => b" HTTP/1.0\r\n",
            Version::Http11 => b" HTTP/1.1\r\n",
        });
        for header in request.headers {
            encode::write_header(&mut prelude, header.name.as_bytes(), header.value);
        }
        prelude.extend_from_slice(encode::CRLF);
        let text_len = (prelude.len() - text_start) as u64;
        let framing = match request.body {
            BodyKind::None => Framing::Length(text_len),
            BodyKind::Length(len) => Framing::Length(text_len + len),
            BodyKind::Chunked => Framing::Chunked,
        };
        // The head is written by the exchange, after a `100 Continue` if the client waits.
        Start::Continue {
            body: BodyMode::Stream,
            exchange: EchoExchange {
                prelude,
                text_start,
                framing,
            },
        }
    }
}

impl Exchange for EchoExchange {
    fn on_body(&mut self, event: BodyEvent<'_>, response: &mut ResponseWriter<'_>) {
        self.ensure_head(response);
        match event {
            BodyEvent::ChunkStart { size } => response.begin_chunk(size),
            BodyEvent::Data(data) => response.write(data),
            BodyEvent::Trailers(trailers) => {
                let mut pairs = [("", &b""[..]); crate::http1::head::MAX_HEADERS_LIMIT];
                let count = trailers.len().min(pairs.len());
                for (pair, trailer) in pairs.iter_mut().zip(trailers) {
                    *pair = (trailer.name, trailer.value);
                }
                response.finish_with_trailers(&pairs[..count]);
            }
            BodyEvent::End => {
                if !response.is_complete() {
                    response.finish();
                }
            }
        }
    }

    fn on_writable(&mut self, response: &mut ResponseWriter<'_>) {
        self.ensure_head(response);
    }
}
