//! Transfer codings the proxy removes from a response before relaying it (RFC 9112 6.1,
//! RFC 9110 8.4.1): `gzip` (and its alias `x-gzip`, RFC 1952 members, one or more) and
//! `deflate` (the zlib format, RFC 1950), decoded as a stream with flate2's rust backend.
//!
//! [`Decoder::decode`] takes compressed bytes and fills the caller's output buffer, never
//! more: the caller sizes that buffer by the room the client's connection has, so a small
//! body that inflates to gigabytes (a "bomb") is decoded only as fast as the client reads,
//! and memory stays bounded (the inflater's window plus the caller's buffer). The gzip
//! header, trailer (CRC-32 and length) and the zlib checksum are verified; anything wrong is
//! an error, never bytes passed on as if they were plain.

use flate2::{Crc, Decompress, FlushDecompress, Status};

/// A transfer coding the proxy can remove.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Coding {
    Gzip,
    Deflate,
}

impl Coding {
    /// The coding named `name` (case-insensitive), if the proxy decodes it.
    pub(super) fn named(name: &[u8]) -> Option<Coding> {
        if name.eq_ignore_ascii_case(b"gzip") || name.eq_ignore_ascii_case(b"x-gzip") {
            Some(Coding::Gzip)
        } else if name.eq_ignore_ascii_case(b"deflate") {
            Some(Coding::Deflate)
        } else {
            None
        }
    }
}

/// Why a coded body cannot be decoded.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) struct CorruptCoding(pub(super) &'static str);

/// Where a gzip stream stands (RFC 1952 2.3).
#[derive(Copy, Clone, Debug)]
enum Gzip {
    /// The fixed 10 bytes of a member header: `have` of them read, its flags kept.
    Fixed { have: u8, flags: u8 },
    /// FEXTRA's two length bytes.
    ExtraLength { have: u8, len: u16 },
    /// FEXTRA's bytes still to skip.
    Extra { left: u16 },
    /// FNAME, up to its zero byte.
    Name,
    /// FCOMMENT, up to its zero byte.
    Comment,
    /// FHCRC's bytes still to skip.
    HeaderCrc { left: u8 },
    /// The deflate data.
    Data,
    /// The 8-byte trailer: `have` of them read into `bytes`.
    Trailer { have: u8, bytes: [u8; 8] },
    /// A member ended; another may follow.
    Between,
}

const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const FRESERVED: u8 = 0xe0;

/// One response body's decoder.
pub(super) struct Decoder {
    coding: Coding,
    inflate: Decompress,
    gzip: Gzip,
    crc: Crc,
    /// The current member's header flags, for the optional parts still to come.
    pending_flags: u8,
    /// The deflate stream (zlib, or a gzip member's) has ended.
    ended: bool,
    /// The inflater filled the output it was given: it may hold more without new input.
    more_output: bool,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("coding", &self.coding)
            .field("gzip", &self.gzip)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Decoder {
    pub(super) fn new(coding: Coding) -> Self {
        Decoder {
            coding,
            // gzip members carry raw deflate; `deflate` is the zlib format.
            inflate: Decompress::new(coding == Coding::Deflate),
            gzip: Gzip::Fixed { have: 0, flags: 0 },
            crc: Crc::new(),
            pending_flags: 0,
            ended: false,
            more_output: false,
        }
    }

    /// Whether decoded bytes may be waiting without more input: call
    /// [`decode`](Self::decode) with an empty input (and room) to get them.
    pub(super) fn has_output(&self) -> bool {
        self.more_output
    }

    /// Whether the coded stream is complete: the body may end here.
    pub(super) fn finished(&self) -> bool {
        match self.coding {
            Coding::Gzip => matches!(self.gzip, Gzip::Between),
            Coding::Deflate => self.ended,
        }
    }

    /// Decodes from `input` into `output`: `(consumed, produced)`. Stops when `output` is
    /// full or `input` is used up; makes progress whenever both are non-empty.
    pub(super) fn decode(
        &mut self,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<(usize, usize), CorruptCoding> {
        let (mut consumed, mut produced) = (0, 0);
        while (consumed < input.len() || self.more_output) && produced < output.len() {
            let rest = &input[consumed..];
            if self.coding == Coding::Deflate {
                if self.ended {
                    return Err(CorruptCoding("bytes after the end of the deflate stream"));
                }
                let (used, made) = self.inflate(rest, &mut output[produced..])?;
                consumed += used;
                produced += made;
                continue;
            }
            if matches!(self.gzip, Gzip::Data) {
                let (used, made) = self.inflate(rest, &mut output[produced..])?;
                self.crc.update(&output[produced..produced + made]);
                consumed += used;
                produced += made;
                if self.ended {
                    self.gzip = Gzip::Trailer {
                        have: 0,
                        bytes: [0; 8],
                    };
                }
                continue;
            }
            if let Some(&byte) = rest.first() {
                consumed += self.gzip_framing(byte)?;
            }
        }
        Ok((consumed, produced))
    }

    /// One byte of a gzip member's header or trailer (or the start of the next member).
    fn gzip_framing(&mut self, byte: u8) -> Result<usize, CorruptCoding> {
        self.gzip = match self.gzip {
            Gzip::Between | Gzip::Fixed { .. } => {
                let (have, flags) = match self.gzip {
                    Gzip::Fixed { have, flags } => (have, flags),
                    _ => (0, 0),
                };
                let expected = [Some(0x1f), Some(0x8b), Some(8)];
                if let Some(Some(want)) = expected.get(usize::from(have)) {
                    if byte != *want {
                        return Err(CorruptCoding("not a gzip member header"));
                    }
                }
                let flags = if have == 3 { byte } else { flags };
                if have == 3 && flags & FRESERVED != 0 {
                    return Err(CorruptCoding("reserved gzip header flags set"));
                }
                if have < 9 {
                    Gzip::Fixed {
                        have: have + 1,
                        flags,
                    }
                } else {
                    self.after_fixed(flags)
                }
            }
            Gzip::ExtraLength { have: 0, .. } => Gzip::ExtraLength {
                have: 1,
                len: u16::from(byte),
            },
            Gzip::ExtraLength { len, .. } => {
                let left = len | (u16::from(byte) << 8);
                if left == 0 {
                    self.after_extra()
                } else {
                    Gzip::Extra { left }
                }
            }
            Gzip::Extra { left: 1 } => self.after_extra(),
            Gzip::Extra { left } => Gzip::Extra { left: left - 1 },
            Gzip::Name if byte == 0 => self.after_name(),
            Gzip::Name => Gzip::Name,
            Gzip::Comment if byte == 0 => self.after_comment(),
            Gzip::Comment => Gzip::Comment,
            Gzip::HeaderCrc { left: 1 } => self.start_data(),
            Gzip::HeaderCrc { left } => Gzip::HeaderCrc { left: left - 1 },
            Gzip::Trailer { have, mut bytes } => {
                bytes[usize::from(have)] = byte;
                if have < 7 {
                    Gzip::Trailer {
                        have: have + 1,
                        bytes,
                    }
                } else {
                    let crc = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                    let size = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
                    if crc != self.crc.sum() || size != self.crc.amount() {
                        return Err(CorruptCoding("gzip CRC-32 or length does not match"));
                    }
                    Gzip::Between
                }
            }
            Gzip::Data => Gzip::Data,
        };
        Ok(1)
    }

    /// The header's optional parts, in their order: FEXTRA, FNAME, FCOMMENT, FHCRC; each
    /// step below goes to the next one the member's flags (`pending_flags`) announce.
    fn after_fixed(&mut self, flags: u8) -> Gzip {
        self.pending_flags = flags;
        if flags & FEXTRA != 0 {
            Gzip::ExtraLength { have: 0, len: 0 }
        } else {
            self.after_extra()
        }
    }

    fn after_extra(&mut self) -> Gzip {
        if self.pending_flags & FNAME != 0 {
            Gzip::Name
        } else {
            self.after_name()
        }
    }

    fn after_name(&mut self) -> Gzip {
        if self.pending_flags & FCOMMENT != 0 {
            Gzip::Comment
        } else {
            self.after_comment()
        }
    }

    fn after_comment(&mut self) -> Gzip {
        if self.pending_flags & FHCRC != 0 {
            Gzip::HeaderCrc { left: 2 }
        } else {
            self.start_data()
        }
    }

    /// A member's deflate data begins: a fresh inflater and checksum.
    fn start_data(&mut self) -> Gzip {
        self.inflate.reset(false);
        self.crc.reset();
        self.ended = false;
        Gzip::Data
    }

    /// Inflates what it can: `(consumed, produced)`; `ended` once the stream ends.
    fn inflate(
        &mut self,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<(usize, usize), CorruptCoding> {
        let (in_before, out_before) = (self.inflate.total_in(), self.inflate.total_out());
        let status = self
            .inflate
            .decompress(input, output, FlushDecompress::None)
            .map_err(|_| CorruptCoding("corrupt deflate data"))?;
        let used = (self.inflate.total_in() - in_before) as usize;
        let made = (self.inflate.total_out() - out_before) as usize;
        self.more_output = made == output.len() && status != Status::StreamEnd;
        match status {
            Status::StreamEnd => self.ended = true,
            // No progress with input and room for output: the data cannot go on.
            Status::BufError if used == 0 && made == 0 && !input.is_empty() => {
                return Err(CorruptCoding("corrupt deflate data"));
            }
            Status::Ok | Status::BufError => {}
        }
        Ok((used, made))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn gzip_member(data: &[u8], named: bool) -> Vec<u8> {
        let builder = if named {
            flate2::GzBuilder::new()
                .filename("f.txt")
                .comment("a comment")
                .extra(vec![1, 2, 3])
        } else {
            flate2::GzBuilder::new()
        };
        let mut encoder = builder.write(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), Default::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    /// Decodes `coded` fed in pieces of `piece` bytes into an output of `room` bytes at a
    /// time: the plain bytes, or the first error.
    fn run(
        coding: Coding,
        coded: &[u8],
        piece: usize,
        room: usize,
    ) -> Result<Vec<u8>, CorruptCoding> {
        let mut decoder = Decoder::new(coding);
        let mut plain = Vec::new();
        let mut out = vec![0; room];
        for piece in coded.chunks(piece) {
            let mut at = 0;
            while at < piece.len() || decoder.has_output() {
                let (used, made) = decoder.decode(&piece[at..], &mut out)?;
                assert!(used + made > 0 || at == piece.len(), "no progress");
                at += used;
                plain.extend_from_slice(&out[..made]);
            }
        }
        if !decoder.finished() {
            return Err(CorruptCoding("unfinished"));
        }
        Ok(plain)
    }

    #[test]
    fn gzip_members_and_zlib_decode_in_any_split_with_bounded_output() {
        let data: Vec<u8> = (0..5000u32)
            .flat_map(|i| (i * 7 % 13).to_le_bytes())
            .collect();
        let mut two = gzip_member(&data, true);
        two.extend(gzip_member(&data, false));
        let mut both = data.clone();
        both.extend(&data);
        for piece in [1, 2, 3, 7, 100, 4096, two.len()] {
            for room in [1, 5, 512, 65536] {
                let gzip = run(Coding::Gzip, &two, piece, room);
                assert!(
                    gzip.as_ref() == Ok(&both),
                    "gzip {piece} {room}: {:?}",
                    gzip.err()
                );
                let deflate = run(Coding::Deflate, &zlib(&data), piece, room);
                let want = Ok(&data);
                assert!(
                    deflate.as_ref() == want,
                    "zlib {piece} {room}: {:?}",
                    deflate.err()
                );
            }
        }
    }

    #[test]
    fn corrupt_streams_are_errors() {
        let data = b"hello hello hello hello".repeat(100);
        let good = gzip_member(&data, false);
        let mut bad_crc = good.clone();
        let at = bad_crc.len() - 8;
        bad_crc[at] ^= 1;
        let mut bad_magic = good.clone();
        bad_magic[0] = 0;
        let mut trailing = good.clone();
        trailing.push(0x1f);
        trailing.push(0);
        let mut zlib_trailing = zlib(&data);
        zlib_trailing.push(0);
        let mut bad_data = zlib(&data);
        bad_data[2] = 0xff;
        for (coding, coded) in [
            (Coding::Gzip, bad_crc),
            (Coding::Gzip, bad_magic),
            (Coding::Gzip, trailing),
            (Coding::Gzip, good[..good.len() - 1].to_vec()),
            (Coding::Deflate, zlib_trailing),
            (Coding::Deflate, bad_data),
        ] {
            assert!(run(coding, &coded, 3, 100).is_err(), "{coding:?}");
        }
        assert_eq!(Coding::named(b"X-GZIP"), Some(Coding::Gzip));
        assert_eq!(Coding::named(b"compress"), None);
    }
}
