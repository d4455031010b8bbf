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
pub(crate) fn is_valid(value: &[u8]) -> bool {
    let (host, port) = match value {
        [b'[', rest @ ..] => {
            let Some(close) = rest.iter().position(|&b| b == b']') else {
                return false;
            };
            if !is_ip_literal(&rest[..close]) {
                return false;
            }
            match &rest[close + 1..] {
                [] => return true,
                [b':', port @ ..] => (&value[..close + 2], port),
                _ => return false,
            }
        }
        _ => match value.iter().position(|&b| b == b':') {
            Some(colon) => (&value[..colon], &value[colon + 1..]),
            None => (value, &[][..]),
        },
    };
    !host.is_empty() && (host[0] == b'[' || is_reg_name(host)) && is_port(port)
}

/// `*DIGIT` with a value of at most 65535.
fn is_port(port: &[u8]) -> bool {
    port.len() <= 5
        && port.iter().all(u8::is_ascii_digit)
        && port.iter().fold(0u32, |n, &b| n * 10 + u32::from(b - b'0')) <= 65535
}

/// `reg-name` (which includes the IPv4 dotted form): unreserved, sub-delims and complete
/// percent escapes.
fn is_reg_name(host: &[u8]) -> bool {
    let mut i = 0;
    while i < host.len() {
        match host[i] {
            b'%' => {
                let hex = |at: usize| host.get(at).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i + 1) && hex(i + 2)) {
                    return false;
                }
                i += 3;
            }
            b if is_unreserved(b) || is_sub_delim(b) => i += 1,
            _ => return false,
        }
    }
    true
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
            && tail
                .iter()
                .all(|&b| is_unreserved(b) || is_sub_delim(b) || b == b':');
    }
    std::str::from_utf8(inside).is_ok_and(|text| text.parse::<std::net::Ipv6Addr>().is_ok())
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

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
}
