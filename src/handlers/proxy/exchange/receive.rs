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
use super::decode::{Coding, CorruptCoding, Decoder};
use super::{BodyRelay, Decoding, Failure, MAX_RESPONSE_FIELDS, ProxyExchange, Relay, outbound};

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
        match &self.relay {
            Relay::Body(BodyRelay::UntilClose) => {
                response.finish();
                self.relay = Relay::Done;
                Ok(())
            }
            // A close-delimited coded body ends where its coding says, or it was cut short.
            Relay::Body(BodyRelay::Decoded(decoding)) if decoding.chunked.is_none() => {
                if decoding.pending > 0 || !decoding.decoder.finished() {
                    return Err(Failure::BadCoding(CorruptCoding(
                        "the coded body ended early",
                    )));
                }
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
                Relay::Body(BodyRelay::Decoded(decoding)) => {
                    let buffered = &self.input[..self.end];
                    if decode_buffered(decoding, buffered, &mut self.start, response)? {
                        self.relay = Relay::Done;
                    }
                    // All that could be decoded for now was: more input, or more room.
                    return Ok(());
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
                            finish_with_trailers(decoder, response)?;
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
        let coding = body_coding(fields, head.body)?;
        let body = match head.body {
            ResponseBody::Interim => {
                // 100 was the proxy's own to send; others (103) go to the client.
                if head.status != 100 {
                    let fields: Vec<(&str, &[u8])> = relayed.collect();
                    response
                        .informational(head.status, &fields)
                        .map_err(|_| Failure::BadHead(ResponseError::Malformed))?;
                }
                self.start += head_len;
                return Ok(true);
            }
            ResponseBody::Upgrade => return Err(Failure::BadHead(ResponseError::BadStatus)),
            ResponseBody::None => None,
            ResponseBody::Length(0) => None,
            ResponseBody::Length(len) => Some(BodyRelay::Length { remaining: len }),
            ResponseBody::Chunked | ResponseBody::UntilClose if coding.is_some() => {
                let chunked = (head.body == ResponseBody::Chunked)
                    .then(|| ChunkedDecoder::new(ChunkedLimits::default()));
                Some(BodyRelay::Decoded(Box::new(Decoding {
                    decoder: Decoder::new(coding.unwrap_or(Coding::Gzip)),
                    chunked,
                    pending: 0,
                })))
            }
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
        // A field the client's parser could split on is the upstream's fault: 502.
        response
            .head_fields(head.status, &self.header_lines, relayed, framing)
            .map_err(|_| Failure::BadHead(ResponseError::Malformed))?;
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

/// Output decoded per step at most (and never more than the client has room for).
const DECODE_STEP: usize = 16 * 1024;

/// Decodes what is buffered (`input[*start..]`) while the client has room: unframes chunks
/// (when chunked), inflates, writes. True once the body is complete (trailers relayed).
fn decode_buffered(
    decoding: &mut Decoding,
    input: &[u8],
    start: &mut usize,
    response: &mut ResponseWriter<'_>,
) -> Result<bool, Failure> {
    let mut out = [0u8; DECODE_STEP];
    loop {
        if decoding.pending == 0 && !decoding.decoder.has_output() {
            let Some(chunked) = &mut decoding.chunked else {
                decoding.pending = input.len() - *start;
                if decoding.pending == 0 {
                    return Ok(false);
                }
                continue;
            };
            let rest = &input[*start..];
            let (used, chunk) = chunked.decode(rest).map_err(|_| Failure::BadBody)?;
            match chunk {
                Some(Chunk::Data(data)) => {
                    // The data ends the consumed part: keep it, undecoded, as pending.
                    *start += used - data.len();
                    decoding.pending = data.len();
                }
                Some(Chunk::Start { .. }) => *start += used,
                Some(Chunk::Trailers | Chunk::End) => {
                    *start += used;
                    if !decoding.decoder.finished() {
                        let e = CorruptCoding("the coded body ended early");
                        return Err(Failure::BadCoding(e));
                    }
                    finish_with_trailers(chunked, response)?;
                    return Ok(true);
                }
                None => {
                    *start += used;
                    return Ok(false);
                }
            }
            continue;
        }
        let room = response.room().min(out.len());
        if room == 0 {
            return Ok(false);
        }
        let coded = &input[*start..*start + decoding.pending];
        let (used, made) = decoding
            .decoder
            .decode(coded, &mut out[..room])
            .map_err(Failure::BadCoding)?;
        if used == 0 && made == 0 && decoding.pending > 0 {
            return Err(Failure::BadCoding(CorruptCoding(
                "the coded body makes no progress",
            )));
        }
        *start += used;
        decoding.pending -= used;
        response.write(&out[..made]);
    }
}

/// Completes the response with the chunked body's trailers, those allowed to cross.
fn finish_with_trailers(
    decoder: &ChunkedDecoder,
    response: &mut ResponseWriter<'_>,
) -> Result<(), Failure> {
    let block = decoder.trailer_block();
    let mut storage = [httparse::EMPTY_HEADER; 32];
    let trailers = chunked::parse_trailers(block, &mut storage).map_err(|_| Failure::BadBody)?;
    let trailers: Vec<(&str, &[u8])> = trailers
        .iter()
        .filter(|t| relays_trailer_field(t.name))
        .map(|t| (t.name, t.value))
        .collect();
    if response.finish_with_trailers(&trailers).is_err() {
        // A trailer that would split the message is not relayed.
        response.finish();
    }
    Ok(())
}

/// The transfer coding a body framed by `body` carries besides `chunked` (RFC 9112 6.1):
/// `None` for none; the coding if it is one the proxy decodes; otherwise the failure that
/// answers 502 naming them (several codings, an unknown one, or `chunked` not last).
fn body_coding(fields: &[Header<'_>], body: ResponseBody) -> Result<Option<Coding>, Failure> {
    let codings = || {
        fields
            .iter()
            .filter(|field| field.name.eq_ignore_ascii_case("transfer-encoding"))
            .flat_map(|field| field.value.split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|coding| !coding.is_empty())
    };
    let count = codings().count();
    // A chunked body's codings are those before its final `chunked`.
    let applied = match body {
        ResponseBody::Chunked => count.saturating_sub(1),
        ResponseBody::UntilClose => count,
        _ => 0,
    };
    let mut applied_codings = codings().take(applied);
    match (applied_codings.next(), applied) {
        (None, _) => Ok(None),
        (Some(coding), 1) if Coding::named(coding).is_some() => Ok(Coding::named(coding)),
        _ => {
            let names: Vec<String> = codings()
                .take(applied)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            Err(Failure::UnsupportedCoding(names.join(", ")))
        }
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
