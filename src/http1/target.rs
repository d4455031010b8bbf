//! The request path, normalised once for routing: RFC 3986 section 6.2.2 syntax-based
//! normalisation, so that one resource has one spelling before any route is matched.
//!
//! Percent escapes of unreserved characters are decoded (`%70` is `p`); other escapes stay
//! encoded, with upper-case hex (`%2f` becomes `%2F`), so a decoded `/` or NUL can never
//! split or end a segment; runs of `/` collapse to one; `.` segments go and `..` segments
//! remove their parent. A `..` above the root, or a malformed escape, is an error. Handlers
//! that need the bytes decode the remaining escapes themselves, once.
//!
//! No I/O and no allocation: the caller lends a scratch buffer, and a path that is already
//! normal (the common case) is returned as it is without being copied.

use super::ParseError;

/// The authority of an absolute-form target (`http://host:port/p` gives `host:port`); `None`
/// for every other form. Only a target that does not start with `/` can be absolute-form,
/// so a `://` inside an origin-form query (`/login?next=https://x/`) is never taken for one.
pub fn authority_of(target: &str) -> Option<&str> {
    if target.starts_with('/') {
        return None;
    }
    let (scheme, rest) = target.split_once("://")?;
    let is_scheme = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !is_scheme {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The path of a request target as sent, without query or fragment: for origin-form the
/// part before `?`; for absolute-form the part after the authority (`/` if empty); for
/// anything else (`*`, authority-form) the target itself.
pub fn path_of(target: &str) -> &str {
    let path = match authority_of(target) {
        Some(authority) => {
            // The authority is a slice of `target`; the path starts right after it.
            let start = authority.as_ptr() as usize - target.as_ptr() as usize + authority.len();
            match &target[start..] {
                rest if rest.starts_with('/') => rest,
                _ => "/",
            }
        }
        None => target,
    };
    // Byte search: both delimiters are ASCII, so the cut is on a char boundary.
    match path.bytes().position(|b| b == b'?' || b == b'#') {
        Some(end) => &path[..end],
        None => path,
    }
}

/// The path routing sees: the target's path ([`path_of`]) in normal form
/// ([`normalize_path`]) when it is one (origin- and absolute-form), else the target itself
/// (`*`, authority-form). An origin-form target already normal, the common case, is cut and
/// checked in one pass.
///
/// # Errors
///
/// An absolute-form target whose scheme is not `http` or `https`, whose authority carries
/// userinfo (RFC 9110 4.2.4) or is not a valid non-empty `host [ ":" port ]` (RFC 9110
/// 4.2.1): the server would route by a host it cannot trust. A path that cannot be
/// normalised ([`normalize_path`]).
#[inline]
pub fn routing_path<'a>(target: &'a str, scratch: &'a mut String) -> Result<&'a str, ParseError> {
    match normal_origin_path(target) {
        Some(path) => Ok(path),
        None => other_routing_path(target, scratch),
    }
}

/// [`routing_path`] for every target but an origin-form one already normal: out of line, so
/// the common case stays small enough to inline where requests are parsed.
fn other_routing_path<'a>(target: &'a str, scratch: &'a mut String) -> Result<&'a str, ParseError> {
    if let Some(authority) = authority_of(target) {
        check_absolute_form(target, authority)?;
    }
    let path = path_of(target);
    if path.starts_with('/') {
        normalize_path(path, scratch)
    } else {
        Ok(path)
    }
}

/// The checks an absolute-form target gets before its authority is taken for the host.
fn check_absolute_form(target: &str, authority: &str) -> Result<(), ParseError> {
    let scheme = &target[..target.find("://").unwrap_or(0)];
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return Err(ParseError::UnsupportedScheme);
    }
    if authority.contains('@') {
        return Err(ParseError::UserinfoInTarget);
    }
    if !super::authority::is_valid(authority.as_bytes()) {
        return Err(ParseError::BadTargetAuthority);
    }
    Ok(())
}

/// Checks that a target which is neither origin- nor absolute-form suits the method (RFC
/// 9112 3.2.3-3.2.4): `*` only with OPTIONS, authority-form only with CONNECT. `path` is
/// what [`routing_path`] returned; a path starting with `/` passes at once.
///
/// # Errors
///
/// [`ParseError::TargetFormNotAllowed`] otherwise.
pub fn check_form(method: &str, path: &str) -> Result<(), ParseError> {
    let allowed = match path {
        _ if path.starts_with('/') => true,
        "*" => method == "OPTIONS",
        _ => method == "CONNECT",
    };
    if allowed {
        Ok(())
    } else {
        Err(ParseError::TargetFormNotAllowed)
    }
}

/// The normal form of `path` (the target's path, without query), borrowed from `path`
/// itself when it is already normal, else written into `scratch`.
pub fn normalize_path<'a>(path: &'a str, scratch: &'a mut String) -> Result<&'a str, ParseError> {
    if is_normal(path) {
        return Ok(path);
    }
    normalize_into(path, scratch)
}

/// The normal form of any `path`, always written into `scratch`.
fn normalize_into<'a>(path: &str, scratch: &'a mut String) -> Result<&'a str, ParseError> {
    scratch.clear();
    let bytes = path.as_bytes();
    let mut i = 0;
    // A path ending in a dot segment names a directory: it keeps a trailing slash.
    let mut ends_in_dot_segment = false;
    // Segment by segment: each starts after a '/', and is decoded into `segment_start..`.
    while i < bytes.len() {
        if bytes[i] == b'/' {
            i += 1;
            continue;
        }
        let segment_start = scratch.len();
        scratch.push('/');
        while i < bytes.len() && bytes[i] != b'/' {
            if bytes[i] == b'%' {
                let byte = decode_escape(bytes, i)?;
                if is_unreserved(byte) {
                    scratch.push(byte as char);
                } else {
                    scratch.push('%');
                    scratch.push(HEX[usize::from(byte >> 4)] as char);
                    scratch.push(HEX[usize::from(byte & 0xf)] as char);
                }
                i += 3;
            } else {
                // Copy the run up to the next escape or slash in one go (it is valid UTF-8:
                // it came from a `&str` and stops at ASCII bytes).
                let run_end = bytes[i..]
                    .iter()
                    .position(|&b| b == b'%' || b == b'/')
                    .map_or(bytes.len(), |n| i + n);
                scratch.push_str(&path[i..run_end]);
                i = run_end;
            }
        }
        ends_in_dot_segment = true;
        match &scratch[segment_start + 1..] {
            "." => scratch.truncate(segment_start),
            ".." => {
                scratch.truncate(segment_start);
                let parent = scratch.rfind('/').ok_or(ParseError::BadTarget)?;
                scratch.truncate(parent);
            }
            _ => ends_in_dot_segment = false,
        }
    }
    if scratch.is_empty() || path.ends_with('/') || ends_in_dot_segment {
        scratch.push('/');
    }
    Ok(scratch)
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Whether `path` needs no change: starts with '/', no "//", no dot segments, no escapes
/// (escapes are rare in paths, so they always take the slow road).
fn is_normal(path: &str) -> bool {
    normal_origin_path(path).is_some_and(|normal| normal.len() == path.len())
}

/// For an origin-form target whose path is already normal, that path (up to `?` or `#`);
/// `None` otherwise. One pass over the bytes: the common request pays nothing more.
fn normal_origin_path(target: &str) -> Option<&str> {
    let bytes = target.as_bytes();
    if bytes.first() != Some(&b'/') {
        return None;
    }
    // `bytes[i]` is always a byte the table marks: the loop only stops at those.
    let mut i = 0;
    loop {
        match bytes[i] {
            // ASCII delimiters: the cut is on a char boundary.
            b'?' | b'#' => return Some(&target[..i]),
            b'%' => return None,
            _ if starts_odd_segment(&bytes[i + 1..]) => return None,
            _ => {}
        }
        i += 1;
        // Eight unmarked bytes at a time, then byte by byte to the mark.
        while let Some(word) = bytes
            .get(i..i + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
        {
            if may_hold_mark(u64::from_le_bytes(word)) {
                break;
            }
            i += 8;
        }
        while i < bytes.len() && !PATH_MARKS[usize::from(bytes[i])] {
            i += 1;
        }
        if i == bytes.len() {
            return Some(target);
        }
    }
}

/// Whether any byte of `word` may be one of [`PATH_MARKS`]: exact for the marks, and also
/// true for `!` and `'` (which only send the caller to its byte-by-byte loop). `/` (0x2f)
/// and `?` (0x3f) differ only in bit 4; `#` (0x23) and `%` (0x25) only in bits 1 and 2.
fn may_hold_mark(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let has_zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & (ONES * 0x80) != 0;
    has_zero_byte((word | (ONES * 0x10)) ^ (ONES * 0x3f))
        || has_zero_byte((word & (ONES * 0xf9)) ^ (ONES * 0x21))
}

/// The bytes [`normal_origin_path`] must look at: `/` (what follows may be an odd segment),
/// `%`, and the ends of the path `?` and `#`. Every other byte is skipped by one lookup.
static PATH_MARKS: [bool; 256] = {
    let mut table = [false; 256];
    table[b'/' as usize] = true;
    table[b'%' as usize] = true;
    table[b'?' as usize] = true;
    table[b'#' as usize] = true;
    table
};

/// Whether the bytes after a '/' begin an empty, `.` or `..` segment (a trailing '/' is
/// not one: it names a directory).
fn starts_odd_segment(rest: &[u8]) -> bool {
    let ends_segment = |b: Option<&u8>| matches!(b, None | Some(b'/' | b'?' | b'#'));
    match rest {
        [b'/', ..] => true,
        [b'.', b'.', ..] => ends_segment(rest.get(2)),
        [b'.', ..] => ends_segment(rest.get(1)),
        _ => false,
    }
}

fn decode_escape(bytes: &[u8], at: usize) -> Result<u8, ParseError> {
    let hex = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    match (
        bytes.get(at + 1).and_then(|&b| hex(b)),
        bytes.get(at + 2).and_then(|&b| hex(b)),
    ) {
        (Some(high), Some(low)) => Ok(high << 4 | low),
        _ => Err(ParseError::BadTarget),
    }
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise_to_one_spelling() {
        let cases: [(&str, Result<&str, ParseError>); 19] = [
            ("/", Ok("/")),
            ("/a/b", Ok("/a/b")),
            ("/a/b/", Ok("/a/b/")),
            ("//a///b", Ok("/a/b")),
            ("/%70rivate/x", Ok("/private/x")),
            ("/%70%72%69%76%61%74%65/", Ok("/private/")),
            ("/a%2fb", Ok("/a%2Fb")),
            ("/a%00b", Ok("/a%00b")),
            ("/a/./b", Ok("/a/b")),
            ("/a/../b", Ok("/b")),
            ("/a/%2e%2e/b", Ok("/b")),
            ("/a/b/%2e%2e", Ok("/a/")),
            ("/a/b/..", Ok("/a/")),
            ("/a/.", Ok("/a/")),
            ("/..", Err(ParseError::BadTarget)),
            ("/a/../../b", Err(ParseError::BadTarget)),
            ("/%zz", Err(ParseError::BadTarget)),
            ("/%4", Err(ParseError::BadTarget)),
            ("/caf\u{e9}%20x", Ok("/caf\u{e9}%20x")),
        ];
        for (input, expected) in cases {
            let mut scratch = String::new();
            assert_eq!(normalize_path(input, &mut scratch), expected, "{input}");
        }
    }

    #[test]
    fn paths_and_authorities_of_targets() {
        let cases = [
            ("/a/b?x=1", "/a/b", None),
            ("/login?next=https://example.com/home", "/login", None),
            ("http://example.com/p?q", "/p", Some("example.com")),
            ("http://example.com", "/", Some("example.com")),
            ("http://example.com?q", "/", Some("example.com")),
            ("HTTPS://h:81/x", "/x", Some("h:81")),
            ("*", "*", None),
            ("example.com:443", "example.com:443", None),
        ];
        for (target, path, authority) in cases {
            assert_eq!(path_of(target), path, "{target}");
            assert_eq!(authority_of(target), authority, "{target}");
        }
    }

    /// The fast check and the full normalisation agree on every path over `/`, `.` and `a`
    /// up to 8 bytes: a path is "normal" exactly when normalising leaves it unchanged.
    #[test]
    fn the_fast_check_agrees_with_normalisation() {
        let mut paths = vec![String::new()];
        let mut checked = 0;
        for _ in 0..8 {
            let mut longer = Vec::new();
            for path in &paths {
                for c in ['/', '.', 'a'] {
                    let mut next = path.clone();
                    next.push(c);
                    let mut scratch = String::new();
                    let unchanged = normalize_into(&next, &mut scratch) == Ok(next.as_str());
                    assert_eq!(is_normal(&next), unchanged, "{next:?}");
                    checked += 1;
                    longer.push(next);
                }
            }
            paths = longer;
        }
        assert_eq!(checked, (1..=8).map(|n| 3usize.pow(n)).sum::<usize>());
    }

    /// The one-pass routing path equals cutting the target, then normalising, for every
    /// origin-form target over `/`, `.`, `a`, `?` and `#` up to 7 bytes.
    /// The word filter against the table, for every byte value in every lane.
    #[test]
    fn the_word_filter_never_misses_a_mark() {
        for lane in 0..8 {
            for b in 0..=255u8 {
                let mut word = *b"abcdefgh";
                word[lane] = b;
                let flagged = may_hold_mark(u64::from_le_bytes(word));
                assert_eq!(
                    flagged,
                    PATH_MARKS[usize::from(b)] || b == b'!' || b == b'\'',
                    "{b}"
                );
            }
        }
    }

    /// The fast check skips eight bytes at a time: one or two marks at every position of
    /// targets up to 26 bytes, against the slow normalisation (which always rewrites).
    #[test]
    fn the_fast_check_agrees_at_every_position_of_long_targets() {
        let marks = ['/', '.', '%', '?', '#', 'a'];
        let mut checked = 0;
        for len in 2..=26 {
            for first in 1..len {
                for second in first..len {
                    for (a, b) in marks
                        .iter()
                        .flat_map(|&a| marks.iter().map(move |&b| (a, b)))
                    {
                        let mut chars = vec!['a'; len];
                        chars[0] = '/';
                        chars[first] = a;
                        chars[second] = b;
                        let target: String = chars.into_iter().collect();
                        let path = path_of(&target);
                        let mut scratch = String::new();
                        let unchanged = normalize_into(path, &mut scratch) == Ok(path);
                        match normal_origin_path(&target) {
                            Some(fast) => assert!(fast == path && unchanged, "{target:?}"),
                            // Escapes always take the slow road, even when they stay as sent.
                            None => assert!(!unchanged || path.contains('%'), "{target:?}"),
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(
            checked,
            (2..=26).map(|n| n * (n - 1) / 2 * 36).sum::<usize>()
        );
    }

    #[test]
    fn routing_path_is_path_of_then_normalize() {
        let mut targets = vec!["/".to_string()];
        let mut checked = 0;
        for _ in 0..6 {
            let mut longer = Vec::new();
            for target in &targets {
                for c in ['/', '.', 'a', '?', '#'] {
                    let mut next = target.clone();
                    next.push(c);
                    let (mut one, mut two) = (String::new(), String::new());
                    let expected = normalize_path(path_of(&next), &mut two);
                    assert_eq!(routing_path(&next, &mut one), expected, "{next:?}");
                    checked += 1;
                    longer.push(next);
                }
            }
            targets = longer;
        }
        assert_eq!(checked, (1..=6).map(|n| 5usize.pow(n)).sum::<usize>());
        let mut scratch = String::new();
        assert_eq!(routing_path("*", &mut scratch), Ok("*"));
        assert_eq!(routing_path("http://h/a/../b?q", &mut scratch), Ok("/b"));
    }

    #[test]
    fn a_normal_path_is_borrowed_not_copied() {
        let mut scratch = String::new();
        let path = "/static/app.js";
        let normal = normalize_path(path, &mut scratch).unwrap();
        assert!(std::ptr::eq(normal, path));
        assert!(scratch.is_empty());
    }
}
