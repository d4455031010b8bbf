//! The authority grammar (RFC 3986 section 3.2, without userinfo) that a `Host` field and
//! an absolute-form target's authority must follow (RFC 9112 section 3.2): `uri-host [ ":"
//! port ]`, where the host is an IP literal in brackets, an IPv4 address or a registered
//! name.
//!
//! Routing, the access log and the proxy all read the host out of these bytes, so a value
//! that two parsers could split differently (`[::1`, `a:8x`, `:a`, a port past 65535) is
//! refused here rather than interpreted. No allocation: the bytes are checked in place.

/// Whether `value` is `uri-host [ ":" port ]` with a non-empty host and, when a port is
/// given, one of at most 65535 (an empty port, `host:`, is allowed by RFC 3986 and means
/// the scheme's default). The empty value is not an authority; callers that accept an
/// empty `Host` (RFC 9110 7.2) check for it first.
///
/// Every request's `Host` passes through here, so the common shape (a name or IPv4 address,
/// then perhaps a port) is one table-driven run over the bytes; brackets and escapes take the
/// slower branches.
pub(crate) fn is_valid(value: &[u8]) -> bool {
    if value.first() == Some(&b'[') {
        return is_ip_literal_authority(value);
    }
    let mut at = 0;
    loop {
        at += reg_name_run(&value[at..]);
        match value.get(at) {
            None => return at > 0,
            Some(b'%') if is_escape(&value[at..]) => at += 3,
            Some(b':') => return at > 0 && is_port(&value[at + 1..]),
            Some(_) => return false,
        }
    }
}

/// How many bytes at the start of `bytes` are `reg-name` bytes other than escapes: eight at
/// a time while whole words qualify (no branch per byte), then byte by byte.
fn reg_name_run(bytes: &[u8]) -> usize {
    let mut at = 0;
    for chunk in bytes.chunks_exact(8) {
        if !chunk
            .iter()
            .fold(true, |ok, &b| ok & REG_NAME[usize::from(b)])
        {
            break;
        }
        at += 8;
    }
    at + bytes[at..]
        .iter()
        .position(|&b| !REG_NAME[usize::from(b)])
        .unwrap_or(bytes.len() - at)
}

/// `"[" ( IPv6address / IPvFuture ) "]" [ ":" port ]`.
fn is_ip_literal_authority(value: &[u8]) -> bool {
    let Some(close) = value.iter().position(|&b| b == b']') else {
        return false;
    };
    is_ip_literal(&value[1..close])
        && match &value[close + 1..] {
            [] => true,
            [b':', port @ ..] => is_port(port),
            _ => false,
        }
}

/// `%` HEXDIG HEXDIG at the start of `bytes`.
fn is_escape(bytes: &[u8]) -> bool {
    matches!(bytes, [b'%', high, low, ..] if high.is_ascii_hexdigit() && low.is_ascii_hexdigit())
}

/// `*DIGIT` with a value of at most 65535.
fn is_port(port: &[u8]) -> bool {
    if port.len() > 5 {
        return false;
    }
    let mut value = 0u32;
    for &b in port {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return false;
        }
        value = value * 10 + u32::from(digit);
    }
    value <= 65535
}

/// The inside of `[...]`: an IPv6 address (RFC 4291 text form, no zone) or `IPvFuture`.
fn is_ip_literal(inside: &[u8]) -> bool {
    if let [b'v' | b'V', rest @ ..] = inside {
        // IPvFuture: "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
        let Some(dot) = rest.iter().position(|&b| b == b'.') else {
            return false;
        };
        let (version, tail) = (&rest[..dot], &rest[dot + 1..]);
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !tail.is_empty()
            && tail.iter().all(|&b| REG_NAME[usize::from(b)] || b == b':');
    }
    std::str::from_utf8(inside).is_ok_and(|text| text.parse::<std::net::Ipv6Addr>().is_ok())
}

/// `reg-name` bytes other than escapes: unreserved and sub-delims (RFC 3986 2.2-2.3).
static REG_NAME: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let punctuation = b"-._~!$&'()*+,;=";
    let mut i = 0;
    while i < punctuation.len() {
        table[punctuation[i] as usize] = true;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_follow_rfc_3986_section_3_2() {
        let valid = [
            "example.com",
            "example.com:8080",
            "EXAMPLE.com.",
            "localhost:",
            "a",
            "127.0.0.1",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:8080",
            "[2001:db8::7]:65535",
            "[v1.fe80::a+en1]",
            "xn--bcher-kva.example",
            "a%20b",
            "a!$&'()*+,;=b",
            "h:0",
            "h:00080",
        ];
        for value in valid {
            assert!(is_valid(value.as_bytes()), "{value} should be valid");
        }
        let invalid = [
            "",
            "[::1",
            "[::1]x",
            "[::1]:x",
            "[::g]",
            "[]",
            "[v1.]",
            "[v.x]",
            "[fe80::1%25en0]",
            "::1",
            "a:8x",
            ":a",
            ":80",
            "a:65536",
            "a:99999",
            "a:123456",
            "a:1:2",
            "a b",
            "a%2",
            "a%zz",
            "u@h",
            "u:p@h",
            "a/b",
            "h]",
            "a[b]",
        ];
        for value in invalid {
            assert!(!is_valid(value.as_bytes()), "{value} should be invalid");
        }
    }

    /// The grammar spelled out plainly, to hold the table-driven check against.
    fn reference(value: &[u8]) -> bool {
        let unreserved = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
        let sub_delim = |b: u8| b"!$&'()*+,;=".contains(&b);
        let port_ok = |port: &[u8]| {
            port.len() <= 5
                && port.iter().all(u8::is_ascii_digit)
                && port.iter().fold(0u32, |n, &b| n * 10 + u32::from(b - b'0')) <= 65535
        };
        if let Some(rest) = value.strip_prefix(b"[") {
            let Some(close) = rest.iter().position(|&b| b == b']') else {
                return false;
            };
            return is_ip_literal(&rest[..close])
                && match &rest[close + 1..] {
                    [] => true,
                    [b':', port @ ..] => port_ok(port),
                    _ => false,
                };
        }
        let (host, port) = match value.iter().position(|&b| b == b':') {
            Some(colon) => (&value[..colon], Some(&value[colon + 1..])),
            None => (value, None),
        };
        let mut i = 0;
        while i < host.len() {
            if host[i] == b'%' {
                let hex = |at: usize| host.get(at).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i + 1) && hex(i + 2)) {
                    return false;
                }
                i += 3;
            } else if unreserved(host[i]) || sub_delim(host[i]) {
                i += 1;
            } else {
                return false;
            }
        }
        !host.is_empty() && port.is_none_or(port_ok)
    }

    /// Every value of up to five bytes over an alphabet with each kind of byte the grammar
    /// treats apart agrees with the plain spelling of the grammar.
    #[test]
    fn the_fast_check_agrees_with_the_grammar() {
        const ALPHABET: &[u8] = b"a1:[]%.f@ v";
        fn each(prefix: &mut Vec<u8>, depth: usize) {
            assert_eq!(
                is_valid(prefix),
                reference(prefix),
                "{:?}",
                String::from_utf8_lossy(prefix)
            );
            if depth == 0 {
                return;
            }
            for &b in ALPHABET {
                prefix.push(b);
                each(prefix, depth - 1);
                prefix.pop();
            }
        }
        each(&mut Vec::new(), 5);
        for value in [
            "a:65535",
            "a:65536",
            "a:099999",
            "[::1]:65536",
            "%41%4",
            "x%4a",
        ] {
            assert_eq!(
                is_valid(value.as_bytes()),
                reference(value.as_bytes()),
                "{value}"
            );
        }
    }
}
