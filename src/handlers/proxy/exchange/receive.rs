//! The response half of a proxied request: reading from the upstream while the client can
//! take more, parsing the response head, and relaying the body (by length, chunk for chunk
//! with trailers, or until the upstream closes).

use std::io;
use std::mem::MaybeUninit;

use crate::http1::chunked::{self, Chunk, ChunkedDecoder};
use crate::http1::response::{ResponseBody, ResponseError, parse_response};
use crate::http1::{ChunkedLimits, HeadLimits, Header};
use crate::service::{Framing, OutboundId, READ_BUFFER_LEN, ResponseWriter};

use super::super::forward::{relays_response_field, relays_trailer_field};
use super::{BodyRelay, Failure, MAX_RESPONSE_FIELDS, ProxyExchange, Relay, outbound};

impl ProxyExchange {
    /// Reads from the upstream while the client can take more, relaying what arrives.
    pub(super) fn receive(
        &mut self,
        response: &mut ResponseWriter<'_>,
        conn: OutboundId,
    ) -> Result<bool, Failure> {
        let mut progress = false;
        loop {
            self.relay_buffered(response)?;
            if matches!(self.relay, Relay::Done) {
                return Ok(progress);
            }
            let awaiting_head = matches!(self.relay, Relay::AwaitingHead);
            if !awaiting_head && response.room() == 0 {
                return Ok(progress);
            }
            if self.input.is_empty() {
                self.input = outbound(response)?.take_read_buffer();
            }
            if self.start > 0 && self.start == self.end {
                (self.start, self.end) = (0, 0);
            }
            if self.end == self.input.len() {
                if self.start == 0 {
                    // A head that does not fit (a body chunk always fits: it is consumed).
                    return Err(Failure::BadHead(ResponseError::HeadTooLarge));
                }
                self.input.copy_within(self.start..self.end, 0);
                (self.start, self.end) = (0, self.end - self.start);
            }
            match outbound(response)?.read(conn, &mut self.input[self.end..]) {
                Ok(0) => return self.upstream_ended(response).map(|()| true),
                Ok(n) => {
                    self.end += n;
                    self.received = true;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(progress),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if !self.established && !self.reused => return Err(Failure::Connect(e)),
                Err(e) => return Err(Failure::Receive(e)),
            }
        }
    }

    /// The upstream closed its side: the end of a close-delimited body, or a failure.
    fn upstream_ended(&mut self, response: &mut ResponseWriter<'_>) -> Result<(), Failure> {
        self.upstream_keep_alive = false;
        match self.relay {
            Relay::Body(BodyRelay::UntilClose) => {
                response.finish();
                self.relay = Relay::Done;
                Ok(())
            }
            _ => Err(Failure::Closed),
        }
    }

    /// Relays what is buffered: the head once complete, then body bytes while the client
    /// has room.
    fn relay_buffered(&mut self, response: &mut ResponseWriter<'_>) -> Result<(), Failure> {
        while self.start < self.end {
            match &mut self.relay {
                Relay::AwaitingHead => {
                    if !self.relay_head(response)? {
                        return Ok(());
                    }
                }
                Relay::Body(BodyRelay::Length { remaining }) => {
                    let take = (*remaining).min((self.end - self.start) as u64) as usize;
                    response.write(&self.input[self.start..self.start + take]);
                    self.start += take;
                    *remaining -= take as u64;
                    if *remaining == 0 {
                        response.finish();
                        self.relay = Relay::Done;
                    }
                }
                Relay::Body(BodyRelay::UntilClose) => {
                    response.write(&self.input[self.start..self.end]);
                    self.start = self.end;
                }
                Relay::Body(BodyRelay::Chunked(decoder)) => {
                    let (used, chunk) = decoder
                        .decode(&self.input[self.start..self.end])
                        .map_err(|_| Failure::BadBody)?;
                    self.start += used;
                    match chunk {
                        Some(Chunk::Start { size }) => response.begin_chunk(size),
                        Some(Chunk::Data(data)) => response.write(data),
                        Some(Chunk::Trailers | Chunk::End) => {
                            let block = decoder.trailer_block();
                            let mut storage = [httparse::EMPTY_HEADER; 32];
                            let trailers = chunked::parse_trailers(block, &mut storage)
                                .map_err(|_| Failure::BadBody)?;
                            let trailers: Vec<(&str, &[u8])> = trailers
                                .iter()
                                .filter(|t| relays_trailer_field(t.name))
                                .map(|t| (t.name, t.value))
                                .collect();
                            response.finish_with_trailers(&trailers);
                            self.relay = Relay::Done;
                        }
                        None => {}
                    }
                }
                Relay::Done | Relay::Failed => return Ok(()),
            }
            if response.room() == 0 && !matches!(self.relay, Relay::AwaitingHead) {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Parses the response head if it is all here and writes it to the client. False
    /// when more bytes are needed.
    fn relay_head(&mut self, response: &mut ResponseWriter<'_>) -> Result<bool, Failure> {
        let mut storage = [const { MaybeUninit::<Header<'_>>::uninit() }; MAX_RESPONSE_FIELDS];
        let limits = HeadLimits {
            // The read buffer is also the largest response head accepted.
            max_head_bytes: READ_BUFFER_LEN,
            max_headers: MAX_RESPONSE_FIELDS,
        };
        let buffered = &self.input[self.start..self.end];
        let Some(head) = parse_response(buffered, self.method_for_framing, &mut storage, &limits)
            .map_err(Failure::BadHead)?
        else {
            return Ok(false);
        };
        let head_len = head.head_len;
        let fields = head.headers;
        // Our `Via` entry after the upstream's lines (RFC 9110 7.6.3), for the version the
        // response was received in.
        let via = self.upstream.via.as_ref();
        let relayed = fields
            .iter()
            .filter(|field| relays_response_field(field.name, fields))
            .map(|field| (field.name, field.value))
            .chain(via.map(|via| ("Via", via.entry(head.version))));
        let body = match head.body {
            ResponseBody::Interim => {
                // 100 was the proxy's own to send; others (103) go to the client.
                if head.status != 100 {
                    let fields: Vec<(&str, &[u8])> = relayed.collect();
                    response.informational(head.status, &fields);
                }
                self.start += head_len;
                return Ok(true);
            }
            ResponseBody::Upgrade => return Err(Failure::BadHead(ResponseError::BadStatus)),
            ResponseBody::None => None,
            ResponseBody::Length(0) => None,
            ResponseBody::Length(len) => Some(BodyRelay::Length { remaining: len }),
            ResponseBody::Chunked => Some(BodyRelay::Chunked(Box::new(ChunkedDecoder::new(
                ChunkedLimits::default(),
            )))),
            ResponseBody::UntilClose => Some(BodyRelay::UntilClose),
        };
        let framing = match (&head.body, self.method_for_framing) {
            (ResponseBody::Length(len), _) => Framing::Length(*len),
            // A HEAD response keeps the length its GET would have.
            (ResponseBody::None, "HEAD") => {
                declared_length(fields).map_or(Framing::Chunked, Framing::Length)
            }
            (ResponseBody::None, _) => Framing::Chunked,
            _ => Framing::Chunked,
        };
        self.upstream_keep_alive = head.keep_alive;
        response.head_fields(head.status, &self.header_lines, relayed, framing);
        self.start += head_len;
        if let Some(claim) = &self.claim {
            let balancer = &self.upstream.balancer;
            balancer.succeeded(claim.server);
            let latency = self.attempt_started.elapsed();
            balancer.server(claim.server).counters.response(latency);
        }
        match body {
            Some(body) => self.relay = Relay::Body(body),
            None => {
                response.finish();
                self.relay = Relay::Done;
            }
        }
        Ok(true)
    }
}

/// A `Content-Length` among `fields`, if one parses.
fn declared_length(fields: &[Header<'_>]) -> Option<u64> {
    fields
        .iter()
        .find(|field| field.name.eq_ignore_ascii_case("content-length"))
        .and_then(|field| std::str::from_utf8(field.value).ok())
        .and_then(|value| value.trim().parse().ok())
}
