//! `echo`: answers with the request itself: its head as text, then its body.
//!
//! The response body is the request line and header fields exactly as parsed
//! (`METHOD TARGET VERSION`, `Name: value` lines, a blank line), followed by the request
//! body. A chunked request is echoed chunked, chunk for chunk (the head text travels as one
//! chunk first), and its trailers come back as response trailers; a Content-Length request
//! gets a Content-Length response. Body bytes are relayed as they arrive, never collected.

use std::sync::Arc;

use crate::http1::encode;
use crate::service::{
    BodyEvent, BodyKind, BodyMode, Exchange, Framing, Handler, HeaderLines, Request,
    ResponseWriter, Start, Version,
};

/// The echo handler.
#[derive(Debug, Clone)]
pub struct Echo {
    header_lines: Arc<HeaderLines>,
}

impl Echo {
    /// An echo handler adding `header_lines` to each response.
    pub fn new(header_lines: HeaderLines) -> Self {
        Echo {
            header_lines: Arc::new(header_lines),
        }
    }
}

/// One echo in progress.
#[derive(Debug)]
pub struct EchoExchange {
    /// The route's header lines.
    header_lines: Arc<HeaderLines>,
    /// The request head as text.
    text: Vec<u8>,
    framing: Framing,
}

impl EchoExchange {
    /// Writes the head and the request's head text, once, before any body byte.
    fn ensure_head(&mut self, response: &mut ResponseWriter<'_>) {
        if response.head_written() {
            return;
        }
        response.head_encoded(200, &self.header_lines, self.framing);
        response.write(&self.text);
    }
}

impl Handler for Echo {
    type Exchange = EchoExchange;

    fn start(
        &self,
        request: &Request<'_>,
        _response: &mut ResponseWriter<'_>,
    ) -> Start<EchoExchange> {
        let mut text = Vec::with_capacity(256);
        text.extend_from_slice(request.method.as_bytes());
        text.push(b' ');
        text.extend_from_slice(request.target.as_bytes());
        text.extend_from_slice(match request.version {
            Version::Http10 => b" HTTP/1.0\r\n",
            Version::Http11 => b" HTTP/1.1\r\n",
        });
        for header in request.headers {
            encode::write_header(&mut text, header.name.as_bytes(), header.value);
        }
        text.extend_from_slice(encode::CRLF);
        let text_len = text.len() as u64;
        let framing = match request.body {
            BodyKind::None => Framing::Length(text_len),
            BodyKind::Length(len) => Framing::Length(text_len + len),
            BodyKind::Chunked => Framing::Chunked,
        };
        // The head is written by the exchange, after a `100 Continue` if the client waits.
        Start::Continue {
            body: BodyMode::Stream,
            exchange: EchoExchange {
                header_lines: Arc::clone(&self.header_lines),
                text,
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
                // Refused only for a field that would split the message (the codec parsed
                // these, so none): the response then stays open and `End` finishes it.
                let _ = response.finish_with_trailers(&pairs[..count]);
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
