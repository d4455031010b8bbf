//! Unit tests of the response writer: framing, HEAD, HTTP/1.0, 1xx and misuse.
use super::*;
use crate::service::ResponseContext;

const DATE: &[u8] = b"Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n";

fn write(
    cx: ResponseContext,
    f: impl FnOnce(&mut ResponseWriter<'_>),
) -> (String, ResponseState, bool) {
    let mut out = Vec::new();
    let mut reply = Reply::new(cx, u64::MAX);
    let mut writer = ResponseWriter::new(&mut out, &mut reply, DATE, 1 << 16);
    f(&mut writer);
    (String::from_utf8(out).unwrap(), reply.state, reply.cx.close)
}

fn http11() -> ResponseContext {
    ResponseContext {
        version: Version::Http11,
        head_request: false,
        close: false,
        expect_pending: false,
    }
}

#[test]
fn fixed_length_response() {
    let (text, state, close) = write(http11(), |w| {
        w.complete(200, &[("Content-Type", b"text/plain")], b"hi")
            .unwrap()
    });
    assert_eq!(
        text,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Length: 2\r\n\r\nhi"
    );
    assert_eq!(state, ResponseState::Done);
    assert!(!close);
}

#[test]
fn chunked_keeps_explicit_chunk_boundaries_and_trailers() {
    let (text, state, _) = write(http11(), |w| {
        w.head(200, &[], Framing::Chunked).unwrap();
        w.begin_chunk(5);
        w.write(b"he");
        w.write(b"llo");
        w.write(b"!");
        w.finish_with_trailers(&[("X-Sum", b"1")]).unwrap();
    });
    assert!(
        text.ends_with(
            "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1\r\n!\r\n0\r\nX-Sum: 1\r\n\r\n"
        ),
        "{text}"
    );
    assert_eq!(state, ResponseState::Done);
}

#[test]
fn http10_unknown_length_is_close_delimited() {
    let cx = ResponseContext {
        version: Version::Http10,
        ..http11()
    };
    let (text, state, close) = write(cx, |w| {
        w.head(200, &[], Framing::Chunked).unwrap();
        w.write(b"abc");
        w.finish();
    });
    assert!(text.ends_with("Connection: close\r\n\r\nabc"), "{text}");
    assert!(!text.contains("Transfer-Encoding"));
    assert_eq!(state, ResponseState::Done);
    assert!(close);
}

#[test]
fn http10_keep_alive_is_announced() {
    let cx = ResponseContext {
        version: Version::Http10,
        ..http11()
    };
    let (text, _, close) = write(cx, |w| w.complete(204, &[], b"").unwrap());
    assert!(text.ends_with("Connection: keep-alive\r\n\r\n"), "{text}");
    assert!(!text.contains("Content-Length"));
    assert!(!close);
}

#[test]
fn head_request_gets_length_but_no_body() {
    let cx = ResponseContext {
        head_request: true,
        ..http11()
    };
    let (text, state, _) = write(cx, |w| w.complete(200, &[], b"hello").unwrap());
    assert!(text.ends_with("Content-Length: 5\r\n\r\n"), "{text}");
    assert_eq!(state, ResponseState::Done);
    // A relayed HEAD answer declares its GET's length and writes none of it.
    let (text, state, _) = write(cx, |w| {
        w.head(200, &[], Framing::Length(300_000)).unwrap();
        w.finish();
    });
    assert!(text.ends_with("Content-Length: 300000\r\n\r\n"), "{text}");
    assert_eq!(state, ResponseState::Done);
    // A GET answer must still write what it declared.
    let (_, state, _) = write(http11(), |w| {
        w.head(200, &[], Framing::Length(5)).unwrap();
        w.finish();
    });
    assert_eq!(state, ResponseState::Broken(ResponseError::TooShort));
}

/// RFC 9110 8.6 and 15.4.5: a 304's Content-Length would describe the selected
/// representation, which the writer does not know, so none is sent (not `0`); a 204 sends none
/// either (RFC 9110 8.6: MUST NOT). HEAD answers keep their GET's length.
#[test]
fn no_content_length_on_204_or_304() {
    for head_request in [false, true] {
        let cx = ResponseContext {
            head_request,
            ..http11()
        };
        for status in [204, 304] {
            let (text, state, _) = write(cx, |w| w.complete(status, &[], b"").unwrap());
            assert!(!text.contains("Content-Length"), "{status}: {text}");
            assert!(text.ends_with("\r\n\r\n"), "{text}");
            assert_eq!(state, ResponseState::Done);
        }
    }
    let fixed = FixedResponse::new(
        304,
        &HeaderLines::new(&[("ETag", "\"x\"")]).unwrap(),
        Vec::new(),
    );
    let (text, _, _) = write(http11(), |w| w.complete_fixed(&fixed));
    assert_eq!(
        text,
        "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\n"
    );
}

#[test]
fn pending_expectation_forces_close() {
    let cx = ResponseContext {
        expect_pending: true,
        ..http11()
    };
    let (text, _, close) = write(cx, |w| w.complete(413, &[], b"").unwrap());
    assert!(text.contains("Connection: close\r\n"));
    assert!(close);
}

#[test]
fn misuse_marks_the_response_broken() {
    type Case = (&'static str, fn(&mut ResponseWriter<'_>), ResponseError);
    let cases: [Case; 5] = [
        ("body before head", |w| w.write(b"x"), ResponseError::NoHead),
        (
            "too long",
            |w| {
                w.head(200, &[], Framing::Length(1)).unwrap();
                w.write(b"xy");
            },
            ResponseError::TooLong,
        ),
        (
            "too short",
            |w| {
                w.head(200, &[], Framing::Length(3)).unwrap();
                w.write(b"xy");
                w.finish();
            },
            ResponseError::TooShort,
        ),
        (
            "two heads",
            |w| {
                w.head(200, &[], Framing::Length(0)).unwrap();
                let _ = w.head(200, &[], Framing::Length(0));
            },
            ResponseError::HeadTwice,
        ),
        (
            "chunk overrun",
            |w| {
                w.head(200, &[], Framing::Chunked).unwrap();
                w.begin_chunk(1);
                w.write(b"ab");
            },
            ResponseError::TooLong,
        ),
    ];
    for (name, f, expected) in cases {
        let (_, state, _) = write(http11(), f);
        assert_eq!(state, ResponseState::Broken(expected), "{name}");
    }
}

/// The pre-encoded path gives the very bytes, state, status, body count and connection
/// verdict of the general path, for every kind of request context and for statuses with and
/// without bodies.
#[test]
fn a_fixed_response_matches_the_general_path_byte_for_byte() {
    type Outcome = (String, ResponseState, bool, u16, u64);
    fn run(cx: ResponseContext, f: impl FnOnce(&mut ResponseWriter<'_>)) -> Outcome {
        let mut out = Vec::new();
        let mut reply = Reply::new(cx, u64::MAX);
        f(&mut ResponseWriter::new(
            &mut out,
            &mut reply,
            DATE,
            1 << 16,
        ));
        let text = String::from_utf8(out).unwrap();
        (
            text,
            reply.state,
            reply.cx.close,
            reply.status,
            reply.body_bytes,
        )
    }
    let headers = HeaderLines::new(&[("Content-Type", "text/plain"), ("X-A", "b")]).unwrap();
    for version in [Version::Http10, Version::Http11] {
        for bits in 0..8u8 {
            let cx = ResponseContext {
                version,
                head_request: bits & 1 != 0,
                close: bits & 2 != 0,
                expect_pending: bits & 4 != 0,
            };
            for status in [200, 204, 304, 404, 503] {
                let fixed = FixedResponse::new(status, &headers, b"hello".to_vec());
                let general = run(cx, |w| {
                    w.head_encoded(status, &headers, Framing::Length(5));
                    w.write(b"hello");
                    w.finish();
                });
                assert_eq!(
                    run(cx, |w| w.complete_fixed(&fixed)),
                    general,
                    "{cx:?} {status}"
                );
            }
        }
    }
}
