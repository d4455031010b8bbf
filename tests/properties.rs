//! Property tests (proptest) for the HTTP/1.1 codec and the server: any split of a valid
//! pipelined byte stream into reads gives the same requests and bodies; chunked encode then
//! decode is the identity; the chunked decoder never reads past the end of a body; and the
//! real server answers any split of a pipelined stream in order.
//!
//! The codec-level properties read bytes with a small driver written here that does what the
//! server's connection does (accumulate input, `parse_head` + `analyze`, then the body by
//! Content-Length or `ChunkedDecoder`, then the next head), so they need no socket and run
//! many cases quickly. Failures print the minimal case (wire bytes escaped); proptest keeps
//! them in `tests/properties.proptest-regressions` and replays them first on later runs.

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::mem::MaybeUninit;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};

use asycamore::handlers::Echo;
use asycamore::http1::chunked::{Chunk, ChunkedDecoder, parse_trailers};
use asycamore::http1::{
    BodyKind, ChunkedLimits, HeadLimits, Header, Version, encode, framing, head,
};
use asycamore::server::{self, Limits, ServerConfig};
use asycamore::service::{Framing, Reply, ResponseContext, ResponseState, ResponseWriter};

/// Bytes that print as an escaped byte string, so a failing case is readable.
#[derive(Clone, Default, PartialEq, Eq)]
struct Bytes(Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

// ---------------------------------------------------------------------------------------
// The model: generated requests, their wire form, and what a reader must see.

/// A field line as generated: the name as sent, the value as a parser must report it, and
/// the optional whitespace the wire form puts around the value.
#[derive(Clone, Debug)]
struct Field {
    name: String,
    value: String,
    before: &'static str,
    after: &'static str,
}

impl Field {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.name.as_bytes());
        out.push(b':');
        out.extend_from_slice(self.before.as_bytes());
        out.extend_from_slice(self.value.as_bytes());
        out.extend_from_slice(self.after.as_bytes());
        out.extend_from_slice(b"\r\n");
    }

    fn parsed(&self) -> (String, Bytes) {
        (self.name.clone(), Bytes(self.value.clone().into_bytes()))
    }
}

/// How a chunk line is spelled: extra leading zeros, hex case, and what follows the size
/// (bad whitespace and extensions, possibly empty).
#[derive(Clone, Debug)]
struct ChunkLine {
    zeros: usize,
    upper: bool,
    ext: &'static str,
}

impl ChunkLine {
    fn write(&self, out: &mut Vec<u8>, size: usize) {
        let hex = if self.upper {
            format!("{size:X}")
        } else {
            format!("{size:x}")
        };
        out.extend(std::iter::repeat_n(b'0', self.zeros));
        out.extend_from_slice(hex.as_bytes());
        out.extend_from_slice(self.ext.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// A chunked body: non-empty chunks, the last-chunk line, trailer fields.
#[derive(Clone, Debug)]
struct ChunkedBody {
    chunks: Vec<(ChunkLine, Bytes)>,
    last: ChunkLine,
    trailers: Vec<Field>,
}

impl ChunkedBody {
    fn write(&self, out: &mut Vec<u8>) {
        for (line, data) in &self.chunks {
            line.write(out, data.0.len());
            out.extend_from_slice(&data.0);
            out.extend_from_slice(b"\r\n");
        }
        self.last.write(out, 0);
        for trailer in &self.trailers {
            trailer.write(out);
        }
        out.extend_from_slice(b"\r\n");
    }

    fn wire(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    fn decoded(&self) -> Decoded {
        Decoded {
            chunks: self.chunks.iter().map(|(_, data)| data.clone()).collect(),
            trailers: self.trailers.iter().map(Field::parsed).collect(),
        }
    }
}

#[derive(Clone, Debug)]
enum BodySpec {
    None,
    /// The body, and extra leading zeros in the Content-Length value.
    Length(Bytes, usize),
    Chunked(ChunkedBody),
}

/// One generated request. `fields` already holds `Host` and the framing field.
#[derive(Clone, Debug)]
struct RequestSpec {
    /// Empty lines before the request line (RFC 9112 2.2 lets a server skip them).
    blank_lines: usize,
    method: &'static str,
    target: String,
    fields: Vec<Field>,
    body: BodySpec,
}

impl RequestSpec {
    fn write(&self, out: &mut Vec<u8>) {
        for _ in 0..self.blank_lines {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("{} {} HTTP/1.1\r\n", self.method, self.target).as_bytes());
        for field in &self.fields {
            field.write(out);
        }
        out.extend_from_slice(b"\r\n");
        match &self.body {
            BodySpec::None => {}
            BodySpec::Length(data, _) => out.extend_from_slice(&data.0),
            BodySpec::Chunked(body) => body.write(out),
        }
    }

    /// What a reader must report for this request.
    fn expected(&self) -> Message {
        let (body, chunked) = match &self.body {
            BodySpec::None => (Bytes::default(), None),
            BodySpec::Length(data, _) => (data.clone(), None),
            BodySpec::Chunked(body) => {
                let data = body.chunks.iter().flat_map(|(_, d)| d.0.clone()).collect();
                (Bytes(data), Some(body.decoded()))
            }
        };
        Message {
            method: self.method.to_string(),
            target: self.target.clone(),
            headers: self.fields.iter().map(Field::parsed).collect(),
            body,
            chunked,
        }
    }
}

fn wire_of(requests: &[RequestSpec]) -> Vec<u8> {
    let mut out = Vec::new();
    for request in requests {
        request.write(&mut out);
    }
    out
}

/// A request as a reader saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Message {
    method: String,
    target: String,
    headers: Vec<(String, Bytes)>,
    /// All body bytes, whatever the framing.
    body: Bytes,
    /// For a chunked body: its chunks (boundaries included) and trailers.
    chunked: Option<Decoded>,
}

/// A decoded chunked body: each chunk's bytes, and the trailer fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Decoded {
    chunks: Vec<Bytes>,
    trailers: Vec<(String, Bytes)>,
}

// ---------------------------------------------------------------------------------------
// Strategies.

const OWS: &[&str] = &["", " ", "\t", "  ", " \t "];
/// Chunk-line tails: nothing, BWS, extensions with and without values and quoted strings.
const CHUNK_EXTS: &[&str] = &[
    "",
    "",
    "",
    " ",
    "\t",
    ";a",
    ";name=value",
    " ; q=\"quoted ; \\\" string\"",
    "\t;x;y=1;z",
    ";ext=\"\"",
];

/// `name` with the case of each letter chosen by a bit of `bits`.
fn vary_case(name: &str, bits: u64) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if bits >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

fn ows() -> impl Strategy<Value = &'static str> {
    prop::sample::select(OWS)
}

/// A field whose value is generated by `value`, named by `name`.
fn field(
    name: impl Strategy<Value = String>,
    value: impl Strategy<Value = String>,
) -> impl Strategy<Value = Field> {
    (name, value, ows(), ows()).prop_map(|(name, value, before, after)| Field {
        name,
        value,
        before,
        after,
    })
}

/// A field with no meaning to the framing: `X-` names, values of visible characters with
/// inner spaces and tabs (never at the ends, where they are OWS).
fn extension_field(prefix: &'static str) -> impl Strategy<Value = Field> {
    field(
        "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,8}".prop_map(move |n| format!("{prefix}{n}")),
        "([!-~]{1,4}([ \t]{1,2}[!-~]{1,4}){0,2})?",
    )
}

fn chunk_line() -> impl Strategy<Value = ChunkLine> {
    (
        prop_oneof![6 => Just(0usize), 1 => 1usize..3],
        any::<bool>(),
        prop::sample::select(CHUNK_EXTS),
    )
        .prop_map(|(zeros, upper, ext)| ChunkLine { zeros, upper, ext })
}

fn data(sizes: std::ops::Range<usize>) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), sizes).prop_map(Bytes)
}

fn chunk_data() -> impl Strategy<Value = Bytes> {
    // Mostly small chunks; some of two or three hex digits.
    prop_oneof![5 => data(1..40), 1 => data(100..700)]
}

fn chunked_body() -> impl Strategy<Value = ChunkedBody> {
    (
        prop::collection::vec((chunk_line(), chunk_data()), 0..5),
        chunk_line(),
        prop::collection::vec(extension_field("X-T-"), 0..3),
    )
        .prop_map(|(chunks, last, trailers)| ChunkedBody {
            chunks,
            last,
            trailers,
        })
}

fn body() -> impl Strategy<Value = BodySpec> {
    prop_oneof![
        1 => Just(BodySpec::None),
        2 => (data(0..200), 0usize..3).prop_map(|(d, zeros)| BodySpec::Length(d, zeros)),
        3 => chunked_body().prop_map(BodySpec::Chunked),
    ]
}

fn request() -> impl Strategy<Value = RequestSpec> {
    (
        prop_oneof![9 => Just(0usize), 1 => Just(1usize)],
        prop::sample::select(&["GET", "POST", "PUT", "HEAD"][..]),
        // Origin-form; no `.` segments or `%` escapes, which normalisation may refuse.
        "/([A-Za-z0-9_~!$&'()*+,;=:@-]{0,8}/?){0,3}(\\?[A-Za-z0-9_~!$&'()*+,;=:@/?-]{0,12})?",
        prop::collection::vec(extension_field("X-"), 0..4),
        field(
            any::<u64>().prop_map(|bits| vary_case("host", bits)),
            // Empty, or `host[:port]` (RFC 9112 3.2; a port of at most 65535).
            "([a-z0-9.-]{1,12}(:[0-9]{1,4})?)?",
        ),
        any::<(Index, Index, u64, u64)>(),
        body(),
    )
        .prop_map(
            |(blank_lines, method, target, mut fields, host, (at1, at2, bits1, bits2), body)| {
                fields.insert(at1.index(fields.len() + 1), host);
                let framing = match &body {
                    BodySpec::None => None,
                    BodySpec::Length(data, zeros) => Some((
                        vary_case("content-length", bits1),
                        format!("{}{}", "0".repeat(*zeros), data.0.len()),
                    )),
                    BodySpec::Chunked(_) => Some((
                        vary_case("transfer-encoding", bits1),
                        vary_case("chunked", bits2),
                    )),
                };
                if let Some((name, value)) = framing {
                    let (before, after) =
                        (OWS[bits2 as usize % OWS.len()], OWS[at2.index(OWS.len())]);
                    let f = Field {
                        name,
                        value,
                        before,
                        after,
                    };
                    fields.insert(at2.index(fields.len() + 1), f);
                }
                RequestSpec {
                    blank_lines,
                    method,
                    target,
                    fields,
                    body,
                }
            },
        )
}

fn requests() -> impl Strategy<Value = Vec<RequestSpec>> {
    prop::collection::vec(request(), 1..=8)
}

/// Where to cut a stream into reads: up to 24 random points, or (sometimes) every byte.
#[derive(Clone, Debug)]
struct Cuts {
    points: Vec<Index>,
    bytewise: bool,
}

fn cuts() -> impl Strategy<Value = Cuts> {
    (
        prop::collection::vec(any::<Index>(), 0..24),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(points, bytewise)| Cuts { points, bytewise })
}

impl Cuts {
    fn apply<'a>(&self, bytes: &'a [u8]) -> Vec<&'a [u8]> {
        if self.bytewise {
            return bytes.chunks(1).collect();
        }
        let mut at: Vec<usize> = self
            .points
            .iter()
            .map(|i| i.index(bytes.len() + 1))
            .collect();
        at.push(0);
        at.push(bytes.len());
        at.sort_unstable();
        at.dedup();
        at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
    }
}

// ---------------------------------------------------------------------------------------
// The codec-level reader.

enum ReadState {
    Head,
    Length(Message, u64),
    /// The message, its decoder, and each chunk's announced size.
    Chunked(Message, ChunkedDecoder, Vec<u64>),
}

/// Reads requests from input that arrives in pieces, as the server's connection does.
struct Reader {
    buf: Vec<u8>,
    pos: usize,
    state: ReadState,
    messages: Vec<Message>,
}

impl Reader {
    fn new() -> Self {
        Reader {
            buf: Vec::new(),
            pos: 0,
            state: ReadState::Head,
            messages: Vec::new(),
        }
    }

    fn feed(&mut self, piece: &[u8]) -> Result<(), String> {
        self.buf.extend_from_slice(piece);
        while self.step()? {}
        Ok(())
    }

    /// The messages read, once all input is in: it must end exactly between messages.
    fn finish(self) -> Result<Vec<Message>, String> {
        match self.state {
            ReadState::Head if self.pos == self.buf.len() => Ok(self.messages),
            ReadState::Head => Err(format!(
                "{} bytes left over: {:?}",
                self.buf.len() - self.pos,
                self.buf[self.pos..].escape_ascii().to_string()
            )),
            _ => Err("input ended inside a body".to_string()),
        }
    }

    /// One step; `Ok(false)` when more input is needed.
    fn step(&mut self) -> Result<bool, String> {
        let input = &self.buf[self.pos..];
        match std::mem::replace(&mut self.state, ReadState::Head) {
            ReadState::Head => {
                let mut storage = [const { MaybeUninit::uninit() }; head::MAX_HEADERS_LIMIT];
                let parsed = head::parse_head(input, &mut storage, &HeadLimits::default())
                    .map_err(|e| format!("head: {e:?}"))?;
                let Some(parsed) = parsed else {
                    return Ok(false);
                };
                if parsed.version != Version::Http11 {
                    return Err(format!("version {:?}", parsed.version));
                }
                let info = framing::analyze(parsed.version, parsed.headers)
                    .map_err(|e| format!("framing: {e:?}"))?;
                let message = Message {
                    method: parsed.method.to_string(),
                    target: parsed.target.to_string(),
                    headers: owned_fields(parsed.headers),
                    body: Bytes::default(),
                    chunked: None,
                };
                self.pos += parsed.head_len;
                match info.body {
                    BodyKind::None | BodyKind::Length(0) => self.messages.push(message),
                    BodyKind::Length(n) => self.state = ReadState::Length(message, n),
                    BodyKind::Chunked => {
                        let message = Message {
                            chunked: Some(Decoded::default()),
                            ..message
                        };
                        let decoder = ChunkedDecoder::new(ChunkedLimits::default());
                        self.state = ReadState::Chunked(message, decoder, Vec::new());
                    }
                }
                Ok(true)
            }
            ReadState::Length(mut message, remaining) => {
                let take = usize::try_from(remaining).unwrap().min(input.len());
                message.body.0.extend_from_slice(&input[..take]);
                self.pos += take;
                let remaining = remaining - take as u64;
                if remaining == 0 {
                    self.messages.push(message);
                } else {
                    self.state = ReadState::Length(message, remaining);
                }
                Ok(take > 0)
            }
            ReadState::Chunked(mut message, mut decoder, mut sizes) => {
                let (consumed, event) = decoder
                    .decode(input)
                    .map_err(|e| format!("chunked: {e:?}"))?;
                if consumed > input.len() || (event.is_none() && consumed != input.len()) {
                    return Err(format!(
                        "decoder consumed {consumed} of {} with {event:?}",
                        input.len()
                    ));
                }
                let decoded = message.chunked.as_mut().unwrap();
                let mut ended = false;
                match event {
                    None => {}
                    Some(Chunk::Start { size }) => {
                        sizes.push(size);
                        decoded.chunks.push(Bytes::default());
                    }
                    Some(Chunk::Data(data)) => {
                        let (Some(chunk), Some(&size)) = (decoded.chunks.last_mut(), sizes.last())
                        else {
                            return Err("data before a chunk start".to_string());
                        };
                        if data.is_empty() || (chunk.0.len() + data.len()) as u64 > size {
                            return Err(format!("data event of {} bytes", data.len()));
                        }
                        chunk.0.extend_from_slice(data);
                        message.body.0.extend_from_slice(data);
                    }
                    Some(Chunk::Trailers) => decoded.trailers = trailers_of(&decoder)?,
                    Some(Chunk::End) => ended = true,
                }
                self.pos += consumed;
                if ended {
                    let announced: Vec<u64> =
                        decoded.chunks.iter().map(|c| c.0.len() as u64).collect();
                    if announced != sizes || !decoder.is_done() {
                        return Err(format!("chunks {announced:?} announced as {sizes:?}"));
                    }
                    self.messages.push(message);
                    return Ok(true);
                }
                let progress = event.is_some();
                self.state = ReadState::Chunked(message, decoder, sizes);
                Ok(progress)
            }
        }
    }
}

/// The trailer fields the decoder kept, parsed and owned.
fn trailers_of(decoder: &ChunkedDecoder) -> Result<Vec<(String, Bytes)>, String> {
    let mut storage = [Header {
        name: "",
        value: b"",
    }; 32];
    let trailers = parse_trailers(decoder.trailer_block(), &mut storage)
        .map_err(|e| format!("trailers: {e:?}"))?;
    Ok(owned_fields(trailers))
}

fn owned_fields(headers: &[Header<'_>]) -> Vec<(String, Bytes)> {
    headers
        .iter()
        .map(|h| (h.name.to_string(), Bytes(h.value.to_vec())))
        .collect()
}

fn read_messages(pieces: &[&[u8]]) -> Result<Vec<Message>, String> {
    let mut reader = Reader::new();
    for piece in pieces {
        reader.feed(piece)?;
    }
    reader.finish()
}

/// Decodes one chunked body fed in `pieces` (unconsumed bytes are offered again with the
/// next piece, as a connection's read buffer does). Returns the body and how many bytes it
/// took: the decoder must stop there whatever follows, and take nothing more afterwards.
fn decode_chunked(pieces: &[&[u8]]) -> Result<(Decoded, usize), String> {
    let mut decoder = ChunkedDecoder::new(ChunkedLimits::default());
    let mut decoded = Decoded::default();
    let mut buf = Vec::new();
    let mut taken = 0;
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            let (consumed, event) = decoder
                .decode(&buf[taken..])
                .map_err(|e| format!("chunked: {e:?} at byte {taken}"))?;
            taken += consumed;
            match event {
                None => break,
                Some(Chunk::Start { .. }) => decoded.chunks.push(Bytes::default()),
                Some(Chunk::Data(data)) => decoded
                    .chunks
                    .last_mut()
                    .ok_or("data before a chunk start")?
                    .0
                    .extend_from_slice(data),
                Some(Chunk::Trailers) => decoded.trailers = trailers_of(&decoder)?,
                Some(Chunk::End) => {
                    // Done: every later call, whatever it is offered, takes nothing.
                    let after = decoder.decode(&buf[taken..]);
                    if after != Ok((0, None)) || !decoder.is_done() {
                        return Err(format!("after End: {after:?}"));
                    }
                    return Ok((decoded, taken));
                }
            }
        }
    }
    Err(format!("no End after {taken} bytes"))
}

// ---------------------------------------------------------------------------------------
// Codec properties.

proptest! {
    // Each case takes well under a millisecond; shrinking gets a generous budget so a
    // failure prints a small case (the default is 4 iterations per case).
    #![proptest_config(Config { cases: 1024, max_shrink_iters: 8192, ..Config::default() })]

    /// Any split of a valid pipelined stream gives the same messages as the whole stream,
    /// and those are the messages generated.
    #[test]
    fn any_split_of_a_pipelined_stream_reads_the_same_messages(
        requests in requests(),
        cuts in cuts(),
    ) {
        let wire = wire_of(&requests);
        let expected: Vec<Message> = requests.iter().map(RequestSpec::expected).collect();
        let whole = read_messages(&[&wire]);
        prop_assert_eq!(&whole, &Ok(expected), "wire {}", wire.escape_ascii());
        let pieces = cuts.apply(&wire);
        prop_assert_eq!(
            read_messages(&pieces),
            whole,
            "wire {} in {} pieces",
            wire.escape_ascii(),
            pieces.len()
        );
    }

    /// Chunked encoding (the response writer, or the encode functions) then decoding gives
    /// back the same bytes, chunk boundaries and trailers, and nothing is left over.
    #[test]
    fn chunked_encode_then_decode_is_the_identity(
        chunks in prop::collection::vec(
            (chunk_data(), any::<bool>(), prop::collection::vec(any::<Index>(), 0..4)),
            0..8,
        ),
        trailers in prop::collection::vec(
            ("[A-Za-z0-9!#$%&'*+.^_`|~-]{1,10}", "([!-~]{1,4}([ \t]{1,2}[!-~]{1,4}){0,2})?"),
            0..4,
        ),
        writer in any::<bool>(),
        cuts in cuts(),
    ) {
        let pairs: Vec<(&str, &[u8])> =
            trailers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
        let encoded = if writer {
            encode_with_writer(&chunks, &pairs)
        } else {
            encode_with_functions(&chunks, &pairs)
        };
        let expected = Decoded {
            chunks: chunks.iter().map(|(data, _, _)| data.clone()).collect(),
            trailers: trailers
                .iter()
                .map(|(n, v)| (n.clone(), Bytes(v.clone().into_bytes())))
                .collect(),
        };
        prop_assert_eq!(
            decode_chunked(&cuts.apply(&encoded)),
            Ok((expected, encoded.len())),
            "encoded {}",
            encoded.escape_ascii()
        );
    }

    /// Whatever follows a valid chunked body, and however the input is split, the decoder
    /// ends having taken exactly the body's bytes.
    #[test]
    fn the_chunked_decoder_never_reads_past_the_body(
        body in chunked_body(),
        after in prop_oneof![
            data(1..64),
            Just(Bytes(b"0\r\n\r\n".to_vec())),
            Just(Bytes(b"5\r\nhello\r\n0\r\n\r\n".to_vec())),
            Just(Bytes(b"\r\n".to_vec())),
            Just(Bytes(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec())),
        ],
        cuts in cuts(),
    ) {
        let wire = body.wire();
        let mut stream = wire.clone();
        stream.extend_from_slice(&after.0);
        prop_assert_eq!(
            decode_chunked(&cuts.apply(&stream)),
            Ok((body.decoded(), wire.len())),
            "stream {}",
            stream.escape_ascii()
        );
    }
}

/// The response writer, chunked: each chunk either one `write` (an implicit chunk) or
/// `begin_chunk` then `write`s of its pieces; then the trailers. Returns the body only.
fn encode_with_writer(chunks: &[(Bytes, bool, Vec<Index>)], trailers: &[(&str, &[u8])]) -> Vec<u8> {
    let cx = ResponseContext {
        version: Version::Http11,
        head_request: false,
        close: false,
        expect_pending: false,
    };
    let mut reply = Reply::new(cx, u64::MAX);
    let mut out = Vec::new();
    let mut writer = ResponseWriter::new(
        &mut out,
        &mut reply,
        b"Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n",
        usize::MAX,
    );
    writer.head(200, &[], Framing::Chunked).unwrap();
    for (data, explicit, points) in chunks {
        if *explicit {
            writer.begin_chunk(data.0.len() as u64);
            let cuts = Cuts {
                points: points.clone(),
                bytewise: false,
            };
            for piece in cuts.apply(&data.0) {
                writer.write(piece);
            }
        } else {
            writer.write(&data.0);
        }
    }
    writer.finish_with_trailers(trailers).unwrap();
    assert_eq!(reply.state, ResponseState::Done);
    let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(out[..head_end].ends_with(b"Transfer-Encoding: chunked\r\n\r\n"));
    out.split_off(head_end)
}

/// The same body with the encode functions the writer is built on.
fn encode_with_functions(
    chunks: &[(Bytes, bool, Vec<Index>)],
    trailers: &[(&str, &[u8])],
) -> Vec<u8> {
    let mut out = Vec::new();
    for (data, _, _) in chunks {
        encode::write_chunk_size(&mut out, data.0.len() as u64);
        out.extend_from_slice(&data.0);
        out.extend_from_slice(encode::CRLF);
    }
    out.extend_from_slice(encode::LAST_CHUNK);
    for (name, value) in trailers {
        encode::write_header(&mut out, name.as_bytes(), value);
    }
    out.extend_from_slice(encode::CRLF);
    out
}

// ---------------------------------------------------------------------------------------
// Server property.

/// Every socket operation gives up after this long: a server that stops answering fails
/// the case instead of hanging it.
const IO_LIMIT: Duration = Duration::from_secs(5);

/// What the echo handler must answer to a request: the framing it announces, the body
/// (the request head as text, then the request body), and for a chunked request its
/// chunk sizes (the head text is one chunk first) and trailers.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Echoed {
    status: u16,
    content_length: Option<u64>,
    chunked: bool,
    body: Bytes,
    chunks: Vec<usize>,
    trailers: Vec<(String, Bytes)>,
}

fn expected_echo(request: &RequestSpec) -> Echoed {
    let message = request.expected();
    let mut text = format!("{} {} HTTP/1.1\r\n", message.method, message.target).into_bytes();
    for (name, value) in &message.headers {
        encode::write_header(&mut text, name.as_bytes(), &value.0);
    }
    text.extend_from_slice(b"\r\n");
    let head_request = request.method == "HEAD";
    let mut body = text.clone();
    body.extend_from_slice(&message.body.0);
    let body = if head_request {
        Bytes::default()
    } else {
        Bytes(body)
    };
    match message.chunked {
        None => Echoed {
            status: 200,
            content_length: Some((text.len() + message.body.0.len()) as u64),
            chunked: false,
            body,
            chunks: Vec::new(),
            trailers: Vec::new(),
        },
        Some(_) if head_request => Echoed {
            status: 200,
            content_length: None,
            chunked: true,
            body,
            chunks: Vec::new(),
            trailers: Vec::new(),
        },
        Some(decoded) => Echoed {
            status: 200,
            content_length: None,
            chunked: true,
            body,
            chunks: std::iter::once(text.len())
                .chain(decoded.chunks.iter().map(|c| c.0.len()))
                .collect(),
            trailers: decoded.trailers,
        },
    }
}

/// A client connection that reads responses with its own small parser, independent of
/// the server's codec.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn connect(addr: SocketAddr) -> Result<Conn, String> {
        let stream = TcpStream::connect_timeout(&addr, IO_LIMIT).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(IO_LIMIT)).unwrap();
        stream.set_write_timeout(Some(IO_LIMIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }

    fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 16384];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err(format!(
                "connection closed; have {:?}",
                self.buf.escape_ascii().to_string()
            )),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err(format!(
                    "no answer within {IO_LIMIT:?}; have {:?}",
                    self.buf.escape_ascii().to_string()
                ))
            }
            Err(e) => Err(format!("read: {e}")),
        }
    }

    fn line(&mut self) -> Result<String, String> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf.drain(..end + 2).take(end).collect::<Vec<u8>>();
                return String::from_utf8(line).map_err(|e| e.to_string());
            }
            self.fill()?;
        }
    }

    fn exact(&mut self, n: usize) -> Result<Vec<u8>, String> {
        while self.buf.len() < n {
            self.fill()?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    fn fields(&mut self) -> Result<Vec<(String, Bytes)>, String> {
        let mut fields = Vec::new();
        loop {
            let line = self.line()?;
            if line.is_empty() {
                return Ok(fields);
            }
            let (name, value) = line.split_once(':').ok_or(format!("field {line:?}"))?;
            let value = value.trim_matches([' ', '\t']);
            fields.push((name.to_string(), Bytes(value.as_bytes().to_vec())));
        }
    }

    fn response(&mut self, head_request: bool) -> Result<Echoed, String> {
        let status_line = self.line()?;
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3)?.parse().ok())
            .ok_or(format!("status line {status_line:?}"))?;
        let headers = self.fields()?;
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| String::from_utf8_lossy(&v.0).into_owned())
        };
        let content_length = match header("content-length") {
            Some(v) => Some(v.parse::<u64>().map_err(|e| format!("{v:?}: {e}"))?),
            None => None,
        };
        let chunked = header("transfer-encoding").is_some_and(|v| v == "chunked");
        let mut echoed = Echoed {
            status,
            content_length,
            chunked,
            body: Bytes::default(),
            chunks: Vec::new(),
            trailers: Vec::new(),
        };
        if head_request {
            return Ok(echoed);
        }
        if chunked {
            loop {
                let line = self.line()?;
                let size = usize::from_str_radix(&line, 16).map_err(|_| format!("{line:?}"))?;
                if size == 0 {
                    echoed.trailers = self.fields()?;
                    break;
                }
                echoed.chunks.push(size);
                let data = self.exact(size + 2)?;
                if !data.ends_with(b"\r\n") {
                    return Err("chunk data not followed by CRLF".to_string());
                }
                echoed.body.0.extend_from_slice(&data[..size]);
            }
        } else {
            let len = content_length.ok_or("no framing")?;
            echoed.body = Bytes(self.exact(usize::try_from(len).unwrap())?);
        }
        Ok(echoed)
    }
}

/// Sends `requests` pipelined, in writes cut at `cuts`, and reads every response.
fn exchange(
    addr: SocketAddr,
    requests: &[RequestSpec],
    cuts: &Cuts,
) -> Result<Vec<Echoed>, String> {
    let mut conn = Conn::connect(addr)?;
    let wire = wire_of(requests);
    for piece in cuts.apply(&wire) {
        conn.stream
            .write_all(piece)
            .map_err(|e| format!("write: {e}"))?;
    }
    let mut responses = Vec::new();
    for request in requests {
        responses.push(conn.response(request.method == "HEAD")?);
    }
    if !conn.buf.is_empty() {
        return Err(format!(
            "extra bytes: {:?}",
            conn.buf.escape_ascii().to_string()
        ));
    }
    Ok(responses)
}

/// The real server with the echo handler answers a pipelined stream written in any split:
/// every response, in order, with the right body, chunks and trailers.
#[test]
fn the_server_answers_any_split_of_a_pipelined_stream() {
    let config = ServerConfig {
        name: "worker".into(),
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        defer_accept: true,
        unix_listen: Vec::new(),
        workers: 1,
        limits: Limits::default(),
        access_log: None,
        metrics: false,
    };
    let server =
        server::start(config, Arc::new(Echo::new(Default::default()))).expect("server starts");
    let addr = server.local_addrs()[0];
    let mut runner = TestRunner::new(Config {
        cases: 64,
        max_shrink_iters: 1024,
        // Regressions go to tests/properties.proptest-regressions, as for the macro's tests.
        source_file: Some(file!()),
        ..Config::default()
    });
    let result = runner.run(&(requests(), cuts()), |(requests, cuts)| {
        let expected: Vec<Echoed> = requests.iter().map(expected_echo).collect();
        let wire = wire_of(&requests);
        prop_assert_eq!(
            exchange(addr, &requests, &cuts),
            Ok(expected),
            "wire {}",
            wire.escape_ascii()
        );
        Ok(())
    });
    server.shutdown();
    if let Err(error) = result {
        panic!("{error}\n{runner}");
    }
}
