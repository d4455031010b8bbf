//! The one error type of the codec and the one place that maps an error to an HTTP answer
//! (status code, metrics label, short human text).
//!
//! This file must never grow context-carrying or heap-allocated errors: the type stays `Copy`
//! so the parser can return it from the hot path without allocating, and the answer to a peer
//! must never echo peer bytes back.

use std::fmt;

/// Why a request could not be framed or parsed. Every variant means the connection cannot
/// safely continue, so the caller answers with [`ParseError::status`] and closes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The request line is malformed (method, target, separators or line end).
    BadRequestLine,
    /// A header field line, or a header value the codec must interpret, is malformed.
    BadHeader,
    /// The head does not fit in `HeadLimits::max_head_bytes`.
    HeadTooLarge,
    /// The head has more field lines than `HeadLimits::max_headers`.
    TooManyHeaders,
    /// The request uses an HTTP version other than 1.0 or 1.1.
    UnsupportedVersion,
    /// An HTTP/1.1 request has no `Host` field (RFC 9112 3.2).
    MissingHost,
    /// A request has more than one `Host` field line (RFC 9112 3.2).
    DuplicateHost,
    /// The `Host` value is not a valid `uri-host [ ":" port ]` (RFC 9112 3.2).
    BadHost,
    /// The request path has an invalid percent escape or climbs above the root with `..`.
    BadTarget,
    /// The request target is longer than the server will parse (RFC 9112 3: 414): the head
    /// limit was reached before the request line ended.
    TargetTooLong,
    /// An absolute-form target's scheme is neither `http` nor `https`.
    UnsupportedScheme,
    /// An absolute-form target carries userinfo (`http://user@host/`), which RFC 9110
    /// 4.2.4 says to treat as an error.
    UserinfoInTarget,
    /// An absolute-form target's authority is empty or not `host [ ":" port ]`.
    BadTargetAuthority,
    /// `*` with a method other than OPTIONS, or authority-form with one other than CONNECT
    /// (RFC 9112 3.2.3-3.2.4).
    TargetFormNotAllowed,
    /// A `Content-Length` value is not `1*DIGIT` or does not fit in a `u64`.
    BadContentLength,
    /// `Content-Length` values disagree with each other.
    ConflictingContentLength,
    /// Both `Transfer-Encoding` and `Content-Length` are present (a smuggling vector).
    ContentLengthWithTransferEncoding,
    /// `chunked` is missing, repeated, or not the final transfer coding.
    ChunkedNotFinal,
    /// A transfer coding other than `chunked` is applied; we decode only `chunked`.
    UnsupportedTransferCoding,
    /// An HTTP/1.0 request carries `Transfer-Encoding` (RFC 9112 6.1 says framing is faulty).
    TransferEncodingInHttp10,
    /// `Expect` carries something other than `100-continue`.
    UnknownExpectation,
    /// A chunk size line has no hex digits or a stray byte where a digit belongs.
    BadChunkSize,
    /// A chunk size does not fit in a `u64`.
    ChunkSizeOverflow,
    /// A CRLF is required (after a chunk line, chunk data or trailer line) but absent.
    MissingChunkCrlf,
    /// The bytes after a chunk size exceed `ChunkedLimits::max_extension_bytes`.
    ChunkExtensionTooLong,
    /// A chunk extension contains a control character.
    BadChunkExtension,
    /// The trailer section exceeds `ChunkedLimits::max_trailer_bytes` or `max_trailers`.
    TrailersTooLarge,
    /// A trailer field line is malformed.
    BadTrailer,
}

impl ParseError {
    /// The status code to answer with.
    pub fn status(self) -> u16 {
        match self {
            Self::HeadTooLarge | Self::TooManyHeaders => 431,
            Self::TargetTooLong => 414,
            Self::UnsupportedVersion => 505,
            Self::UnsupportedTransferCoding => 501,
            Self::UnknownExpectation => 417,
            Self::BadRequestLine
            | Self::BadHeader
            | Self::MissingHost
            | Self::DuplicateHost
            | Self::BadHost
            | Self::BadTarget
            | Self::UnsupportedScheme
            | Self::UserinfoInTarget
            | Self::BadTargetAuthority
            | Self::TargetFormNotAllowed
            | Self::BadContentLength
            | Self::ConflictingContentLength
            | Self::ContentLengthWithTransferEncoding
            | Self::ChunkedNotFinal
            | Self::TransferEncodingInHttp10
            | Self::BadChunkSize
            | Self::ChunkSizeOverflow
            | Self::MissingChunkCrlf
            | Self::ChunkExtensionTooLong
            | Self::BadChunkExtension
            | Self::TrailersTooLarge
            | Self::BadTrailer => 400,
        }
    }

    /// A stable snake_case label; metrics and dashboards key on it, so never rename one.
    pub fn kind(self) -> &'static str {
        match self {
            Self::BadRequestLine => "bad_request_line",
            Self::BadHeader => "bad_header",
            Self::HeadTooLarge => "head_too_large",
            Self::TooManyHeaders => "too_many_headers",
            Self::UnsupportedVersion => "unsupported_version",
            Self::MissingHost => "missing_host",
            Self::DuplicateHost => "duplicate_host",
            Self::BadHost => "bad_host",
            Self::BadTarget => "bad_target",
            Self::TargetTooLong => "target_too_long",
            Self::UnsupportedScheme => "unsupported_scheme",
            Self::UserinfoInTarget => "userinfo_in_target",
            Self::BadTargetAuthority => "bad_target_authority",
            Self::TargetFormNotAllowed => "target_form_not_allowed",
            Self::BadContentLength => "bad_content_length",
            Self::ConflictingContentLength => "conflicting_content_length",
            Self::ContentLengthWithTransferEncoding => "content_length_with_transfer_encoding",
            Self::ChunkedNotFinal => "chunked_not_final",
            Self::UnsupportedTransferCoding => "unsupported_transfer_coding",
            Self::TransferEncodingInHttp10 => "transfer_encoding_in_http10",
            Self::UnknownExpectation => "unknown_expectation",
            Self::BadChunkSize => "bad_chunk_size",
            Self::ChunkSizeOverflow => "chunk_size_overflow",
            Self::MissingChunkCrlf => "missing_chunk_crlf",
            Self::ChunkExtensionTooLong => "chunk_extension_too_long",
            Self::BadChunkExtension => "bad_chunk_extension",
            Self::TrailersTooLarge => "trailers_too_large",
            Self::BadTrailer => "bad_trailer",
        }
    }

    /// Short human text for the error response body.
    pub fn reason(self) -> &'static str {
        match self {
            Self::BadRequestLine => "malformed request line",
            Self::BadHeader => "malformed header field",
            Self::HeadTooLarge => "request head too large",
            Self::TooManyHeaders => "too many header fields",
            Self::UnsupportedVersion => "HTTP version not supported",
            Self::MissingHost => "missing Host header",
            Self::DuplicateHost => "more than one Host header",
            Self::BadHost => "invalid Host header",
            Self::BadTarget => "invalid request path",
            Self::TargetTooLong => "request target too long",
            Self::UnsupportedScheme => "request target scheme is not http or https",
            Self::UserinfoInTarget => "userinfo in the request target",
            Self::BadTargetAuthority => "invalid authority in the request target",
            Self::TargetFormNotAllowed => "request target form not allowed for the method",
            Self::BadContentLength => "invalid Content-Length value",
            Self::ConflictingContentLength => "conflicting Content-Length values",
            Self::ContentLengthWithTransferEncoding => {
                "both Content-Length and Transfer-Encoding present"
            }
            Self::ChunkedNotFinal => "chunked is not the final transfer coding",
            Self::UnsupportedTransferCoding => "unsupported transfer coding",
            Self::TransferEncodingInHttp10 => "Transfer-Encoding in an HTTP/1.0 request",
            Self::UnknownExpectation => "unsupported expectation",
            Self::BadChunkSize => "invalid chunk size",
            Self::ChunkSizeOverflow => "chunk size too large",
            Self::MissingChunkCrlf => "missing CRLF in chunked body",
            Self::ChunkExtensionTooLong => "chunk extension too long",
            Self::BadChunkExtension => "invalid chunk extension",
            Self::TrailersTooLarge => "trailer section too large",
            Self::BadTrailer => "malformed trailer field",
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::ParseError::{self, *};

    const ALL: &[ParseError] = &[
        BadRequestLine,
        BadHeader,
        HeadTooLarge,
        TooManyHeaders,
        UnsupportedVersion,
        MissingHost,
        DuplicateHost,
        BadHost,
        BadTarget,
        TargetTooLong,
        UnsupportedScheme,
        UserinfoInTarget,
        BadTargetAuthority,
        TargetFormNotAllowed,
        BadContentLength,
        ConflictingContentLength,
        ContentLengthWithTransferEncoding,
        ChunkedNotFinal,
        UnsupportedTransferCoding,
        TransferEncodingInHttp10,
        UnknownExpectation,
        BadChunkSize,
        ChunkSizeOverflow,
        MissingChunkCrlf,
        ChunkExtensionTooLong,
        BadChunkExtension,
        TrailersTooLarge,
        BadTrailer,
    ];

    #[test]
    fn status_codes() {
        for &e in ALL {
            let want = match e {
                HeadTooLarge | TooManyHeaders => 431,
                TargetTooLong => 414,
                UnsupportedVersion => 505,
                UnsupportedTransferCoding => 501,
                UnknownExpectation => 417,
                _ => 400,
            };
            assert_eq!(e.status(), want, "{e:?}");
        }
    }

    #[test]
    fn kinds_are_unique_snake_case() {
        for (i, &a) in ALL.iter().enumerate() {
            let k = a.kind();
            assert!(!k.is_empty());
            assert!(
                k.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{k}"
            );
            for &b in &ALL[i + 1..] {
                assert_ne!(k, b.kind());
            }
        }
        assert_eq!(HeadTooLarge.kind(), "head_too_large");
    }

    #[test]
    fn display_is_reason() {
        for &e in ALL {
            assert!(!e.reason().is_empty());
            assert_eq!(e.to_string(), e.reason());
        }
        assert_eq!(
            ConflictingContentLength.to_string(),
            "conflicting Content-Length values"
        );
        let boxed: Box<dyn std::error::Error> = Box::new(BadHeader);
        assert_eq!(boxed.to_string(), "malformed header field");
    }
}
