//! The `Date` response header (RFC 9110 6.6.1), formatted at most once per second and
//! served from a fixed buffer.
//!
//! This file must never read the clock (the caller passes `now`, so the event loop reads
//! time once per iteration and tests are deterministic), never allocate, and never panic on
//! a clock set before 1970 or after 9999.

use std::fmt::{self, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `Date: ` + the 29-byte IMF-fixdate + CRLF.
const LINE_LEN: usize = 37;
const PREFIX: &[u8] = b"Date: ";
const DATE_LEN: usize = 29;
/// 9999-12-31T23:59:59Z, the last second httpdate can format (it panics beyond).
const MAX_SECS: u64 = 253_402_300_799;

/// A per-thread cached `Date: ...\r\n` header line, reformatted at most once a second.
#[derive(Clone, Debug)]
pub struct DateCache {
    secs: u64,
    line: [u8; LINE_LEN],
}

impl DateCache {
    /// A cache holding the line for `now`.
    pub fn new(now: SystemTime) -> Self {
        let mut cache = Self {
            secs: unix_secs(now),
            line: *b"Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n",
        };
        cache.format();
        cache
    }

    /// Reformats only if the second changed; returns whether it did.
    pub fn refresh(&mut self, now: SystemTime) -> bool {
        let secs = unix_secs(now);
        if secs == self.secs {
            return false;
        }
        self.secs = secs;
        self.format();
        true
    }

    /// The full header line, e.g. `b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"`.
    pub fn header_line(&self) -> &[u8] {
        &self.line
    }

    fn format(&mut self) {
        let time = UNIX_EPOCH
            .checked_add(Duration::from_secs(self.secs))
            .unwrap_or(UNIX_EPOCH);
        self.line[PREFIX.len()..PREFIX.len() + DATE_LEN].copy_from_slice(&imf_fixdate(time));
    }
}

/// `time` as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 5.6.7), clamped to
/// 1970..=9999, into a fixed array: for `Date`, `Last-Modified` and the like.
pub fn imf_fixdate(time: SystemTime) -> [u8; DATE_LEN] {
    let clamped = UNIX_EPOCH
        .checked_add(Duration::from_secs(unix_secs(time)))
        .unwrap_or(UNIX_EPOCH);
    let mut date = FixedWriter {
        buf: [0; DATE_LEN],
        len: 0,
    };
    // An IMF-fixdate for years 1970..=9999 is always exactly 29 bytes; if that ever failed,
    // the epoch (well-formed) beats a broken value.
    let written = write!(date, "{}", httpdate::HttpDate::from(clamped));
    if written.is_ok() && date.len == DATE_LEN {
        date.buf
    } else {
        *b"Thu, 01 Jan 1970 00:00:00 GMT"
    }
}

/// Seconds since the epoch, clamped to what an IMF-fixdate can express.
fn unix_secs(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .min(MAX_SECS)
}

/// `fmt::Write` into a fixed array, failing instead of growing.
struct FixedWriter {
    buf: [u8; DATE_LEN],
    len: usize,
}

impl Write for FixedWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn formats_exact_bytes() {
        let cases: &[(SystemTime, &[u8])] = &[
            (
                at(784_111_777, 0),
                b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n",
            ),
            (at(0, 0), b"Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n"),
            (
                at(951_782_400, 0),
                b"Date: Tue, 29 Feb 2000 00:00:00 GMT\r\n",
            ),
            (
                at(1_700_000_000, 999_999_999),
                b"Date: Tue, 14 Nov 2023 22:13:20 GMT\r\n",
            ),
            (at(MAX_SECS, 0), b"Date: Fri, 31 Dec 9999 23:59:59 GMT\r\n"),
            // Clocks outside what the format can say are clamped, not a panic.
            (
                at(MAX_SECS + 1, 0),
                b"Date: Fri, 31 Dec 9999 23:59:59 GMT\r\n",
            ),
            (
                at(u64::MAX / 4, 0),
                b"Date: Fri, 31 Dec 9999 23:59:59 GMT\r\n",
            ),
            (
                UNIX_EPOCH - Duration::from_secs(86_400),
                b"Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n",
            ),
        ];
        for &(time, want) in cases {
            let cache = DateCache::new(time);
            assert_eq!(cache.header_line(), want);
            assert_eq!(cache.header_line().len(), LINE_LEN);
        }
    }

    #[test]
    fn refreshes_once_per_second() {
        let mut cache = DateCache::new(at(784_111_777, 0));
        assert!(!cache.refresh(at(784_111_777, 999_999_999)));
        assert_eq!(
            cache.header_line(),
            b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
        );
        assert!(cache.refresh(at(784_111_778, 1)));
        assert_eq!(
            cache.header_line(),
            b"Date: Sun, 06 Nov 1994 08:49:38 GMT\r\n"
        );
        assert!(!cache.refresh(at(784_111_778, 500)));
        // A clock stepped backwards is a change of second too.
        assert!(cache.refresh(at(784_111_700, 0)));
        assert_eq!(
            cache.header_line(),
            b"Date: Sun, 06 Nov 1994 08:48:20 GMT\r\n"
        );
        assert!(cache.refresh(at(784_198_177, 0)));
        assert_eq!(
            cache.header_line(),
            b"Date: Mon, 07 Nov 1994 08:49:37 GMT\r\n"
        );
    }

    #[test]
    fn fixed_writer_refuses_overflow() {
        let mut w = FixedWriter {
            buf: [0; DATE_LEN],
            len: 0,
        };
        assert!(w.write_str("0123456789012345678901234567").is_ok());
        assert!(w.write_str("89").is_err());
        assert!(w.write_str("8").is_ok());
        assert_eq!(&w.buf, b"01234567890123456789012345678");
    }
}
