//! Unit tests of the static handler's pure parts, as tables: path decoding, the prefix
//! split, preconditions, `Range` and `If-Range`, escaping, and `Content-Type`.

use std::time::{Duration, UNIX_EPOCH};

use super::conditional::{
    Conditions, Precondition, RangeRequest, Validators, etag_list_matches, evaluate,
    if_range_allows, parse_range,
};
use super::listing::{escape_html, percent_encode};
use super::path::{PathError, Root, decode};
use super::{
    COMMON_EXTENSIONS, below_prefix, common_content_type, content_type, extension,
    guessed_content_type,
};
use std::borrow::Cow;

#[test]
fn path_decoding() {
    use PathError::{BadRequest, NotFound};
    let cases: &[(&str, Result<&[u8], PathError>)] = &[
        ("", Ok(b"")),
        ("/", Ok(b"")),
        ("/a.txt", Ok(b"a.txt")),
        ("a/b/c", Ok(b"a/b/c")),
        ("//a///b/", Ok(b"a/b")),
        ("/a%20b", Ok(b"a b")),
        ("/%41%42%63", Ok(b"ABc")),
        ("/%e2%82%ac", Ok("\u{20ac}".as_bytes())),
        ("/%ff", Ok(b"\xff")),
        ("/%252e%252e", Ok(b"%2e%2e")),
        ("/a+b", Ok(b"a+b")),
        ("/a\\b", Ok(b"a\\b")),
        ("/...", Ok(b"...")),
        ("/.hidden", Ok(b".hidden")),
        ("/a..b", Ok(b"a..b")),
        ("/..", Err(NotFound)),
        ("/a/../b", Err(NotFound)),
        ("/.", Err(NotFound)),
        ("/a/./b", Err(NotFound)),
        ("/%2e%2e/etc/passwd", Err(NotFound)),
        ("/%2E%2E", Err(NotFound)),
        ("/.%2e", Err(NotFound)),
        ("/%2e", Err(NotFound)),
        ("/a%2fb", Err(NotFound)),
        ("/..%2f..%2fetc", Err(NotFound)),
        ("/%2F", Err(NotFound)),
        ("/%00", Err(BadRequest)),
        ("/a%00.txt", Err(BadRequest)),
        ("/%", Err(BadRequest)),
        ("/%4", Err(BadRequest)),
        ("/%zz", Err(BadRequest)),
        ("/%4g", Err(BadRequest)),
        ("/%%41", Err(BadRequest)),
        // Malformed input is 400 even after a segment that is only 404.
        ("/../%zz", Err(BadRequest)),
    ];
    for (input, expected) in cases {
        let got = decode(input);
        assert_eq!(
            got.as_deref().map_err(|e| *e),
            *expected,
            "decode({input:?})"
        );
    }
}

#[test]
fn prefix_split() {
    let cases = [
        ("/", "/", Some("")),
        ("/", "/a/b", Some("a/b")),
        ("/static", "/static", Some("")),
        ("/static", "/static/", Some("/")),
        ("/static", "/static/a", Some("/a")),
        ("/static", "/staticx", None),
        ("/static", "/other", None),
        ("/static/", "/static/a", Some("a")),
    ];
    for (prefix, path, expected) in cases {
        assert_eq!(below_prefix(prefix, path), expected, "{prefix} {path}");
    }
}

fn validators() -> Validators {
    Validators::new(0x1f, 10, 1_000_000_000, 5)
}

const TAG: &str = "\"1f-a-3b9aca00.5\"";
const DATE: &str = "Sun, 09 Sep 2001 01:46:40 GMT"; // 1_000_000_000
const EARLIER: &str = "Sun, 09 Sep 2001 01:46:39 GMT";
const LATER: &str = "Sun, 09 Sep 2001 01:46:41 GMT";

#[test]
fn validators_are_strong_etag_and_second_resolution_date() {
    let v = validators();
    assert_eq!(v.etag(), TAG);
    assert_eq!(v.modified, UNIX_EPOCH + Duration::from_secs(1_000_000_000));
    assert_eq!(&v.last_modified(), DATE.as_bytes());
    // Any change of inode, size or mtime (to the nanosecond) changes the tag.
    for other in [
        Validators::new(0x20, 10, 1_000_000_000, 5),
        Validators::new(0x1f, 11, 1_000_000_000, 5),
        Validators::new(0x1f, 10, 1_000_000_001, 5),
        Validators::new(0x1f, 10, 1_000_000_000, 6),
    ] {
        assert_ne!(other.etag(), v.etag());
    }
    // The hand-written hex is `{:x}`'s, extremes and negative times included.
    let extremes: [(u64, u64, i64, i64); 3] = [
        (0, 0, 0, 0),
        (u64::MAX, u64::MAX, i64::MIN, -1),
        (1, 16, -5, 999_999_999),
    ];
    for (inode, size, secs, nanos) in extremes {
        let tag = Validators::new(inode, size, secs, nanos);
        assert_eq!(
            tag.etag(),
            format!("\"{inode:x}-{size:x}-{secs:x}.{nanos:x}\"")
        );
    }
}

#[test]
fn preconditions() {
    use Precondition::{Failed, NotModified, Serve};
    type Case = (
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        Precondition,
    );
    let weak = format!("W/{TAG}");
    let weak: &'static str = Box::leak(weak.into_boxed_str());
    let list = format!("\"x\", {TAG}");
    let list: &'static str = Box::leak(list.into_boxed_str());
    // (If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since, expected)
    let cases: &[Case] = &[
        (None, None, None, None, Serve),
        (None, None, Some(TAG), None, NotModified),
        (None, None, Some(weak), None, NotModified),
        (None, None, Some(list), None, NotModified),
        (None, None, Some("*"), None, NotModified),
        (None, None, Some("\"other\""), None, Serve),
        (None, None, Some("garbage"), None, Serve),
        (None, None, None, Some(DATE), NotModified),
        (None, None, None, Some(LATER), NotModified),
        (None, None, None, Some(EARLIER), Serve),
        (None, None, None, Some("not a date"), Serve),
        // If-None-Match takes precedence over If-Modified-Since (RFC 9110 13.2.2).
        (None, None, Some("\"other\""), Some(LATER), Serve),
        (None, None, Some(TAG), Some(EARLIER), NotModified),
        (Some(TAG), None, None, None, Serve),
        (Some("*"), None, None, None, Serve),
        (Some(weak), None, None, None, Failed),
        (Some("\"other\""), None, None, None, Failed),
        (Some("\"other\""), None, Some(TAG), None, Failed),
        (None, Some(DATE), None, None, Serve),
        (None, Some(EARLIER), None, None, Failed),
        (None, Some("junk"), None, None, Serve),
        (Some(TAG), Some(EARLIER), None, None, Serve),
        (Some(TAG), None, Some(TAG), None, NotModified),
    ];
    for (i, (im, ius, inm, ims, expected)) in cases.iter().enumerate() {
        let conditions = Conditions {
            if_match: im.map(str::as_bytes),
            if_unmodified_since: ius.map(str::as_bytes),
            if_none_match: inm.map(str::as_bytes),
            if_modified_since: ims.map(str::as_bytes),
        };
        assert_eq!(
            evaluate(&conditions, &validators()),
            *expected,
            "case {i}: {conditions:?}"
        );
    }
}

#[test]
fn etag_lists() {
    let cases: &[(&str, bool, bool)] = &[
        // (value, weak comparison matches, strong comparison matches)
        ("\"a\"", true, true),
        ("W/\"a\"", true, false),
        (" \"b\" ,\"a\" ", true, true),
        ("\"b\"", false, false),
        ("a", false, false),
        ("\"a", false, false),
        ("*", true, true),
        ("", false, false),
    ];
    for (value, weak, strong) in cases {
        assert_eq!(
            etag_list_matches(value.as_bytes(), "\"a\"", false),
            *weak,
            "{value}"
        );
        assert_eq!(
            etag_list_matches(value.as_bytes(), "\"a\"", true),
            *strong,
            "{value}"
        );
    }
}

#[test]
fn ranges() {
    use RangeRequest::{Full, Partial, Unsatisfiable};
    let p = |first, last| Partial { first, last };
    let cases: &[(&str, u64, RangeRequest)] = &[
        ("bytes=0-0", 10, p(0, 0)),
        ("bytes=0-4", 10, p(0, 4)),
        ("bytes=2-", 10, p(2, 9)),
        ("bytes=9-", 10, p(9, 9)),
        ("bytes=5-100", 10, p(5, 9)),
        ("bytes=-3", 10, p(7, 9)),
        ("bytes=-10", 10, p(0, 9)),
        ("bytes=-100", 10, p(0, 9)),
        ("BYTES = 1-2", 10, p(1, 2)),
        ("bytes=1-2,", 10, p(1, 2)),
        ("bytes= 3 - 4 ", 10, p(3, 4)),
        ("bytes=0-99999999999999999999999", 10, p(0, 9)),
        ("bytes=-99999999999999999999999", 10, p(0, 9)),
        ("bytes=10-", 10, Unsatisfiable),
        ("bytes=10-20", 10, Unsatisfiable),
        ("bytes=99999999999999999999999-", 10, Unsatisfiable),
        ("bytes=-0", 10, Unsatisfiable),
        ("bytes=0-", 0, Unsatisfiable),
        ("bytes=-5", 0, Full),
        // Several ranges: the whole file (no multipart/byteranges).
        ("bytes=0-1,3-4", 10, Full),
        ("bytes=0-1, 20-30", 10, Full),
        // Malformed or another unit: ignored.
        ("bytes=5-2", 10, Full),
        ("bytes=", 10, Full),
        ("bytes=-", 10, Full),
        ("bytes=a-b", 10, Full),
        ("bytes=+1-2", 10, Full),
        ("bytes=1", 10, Full),
        ("items=0-1", 10, Full),
        ("0-1", 10, Full),
    ];
    for (value, len, expected) in cases {
        assert_eq!(
            parse_range(value.as_bytes(), *len),
            *expected,
            "{value} of {len}"
        );
    }
}

#[test]
fn if_range() {
    let weak = format!("W/{TAG}");
    let cases: &[(&str, bool)] = &[
        (TAG, true),
        (&weak, false),
        ("\"other\"", false),
        (DATE, true),
        (LATER, false),
        (EARLIER, false),
        ("junk", false),
    ];
    for (value, expected) in cases {
        assert_eq!(
            if_range_allows(value.as_bytes(), &validators()),
            *expected,
            "{value}"
        );
    }
}

#[test]
fn escaping() {
    let mut html = Vec::new();
    escape_html(&mut html, b"<a href=\"x\">&'</a>");
    assert_eq!(html, b"&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
    let mut url = Vec::new();
    percent_encode(&mut url, b"a b/c%d?e#f\"<>\\~._-\xff");
    assert_eq!(url, b"a%20b%2Fc%25d%3Fe%23f%22%3C%3E%5C~._-%FF");
}

#[test]
fn content_types() {
    let cases = [
        ("index.html", "text/html; charset=utf-8"),
        ("a/b/style.css", "text/css; charset=utf-8"),
        ("notes.txt", "text/plain; charset=utf-8"),
        ("image.PNG", "image/png"),
        ("data.json", "application/json"),
        ("blob", "application/octet-stream"),
        ("archive.unknownext", "application/octet-stream"),
    ];
    for (name, expected) in cases {
        assert_eq!(content_type(name.as_bytes()), expected, "{name}");
    }
    // The table of common types says what the general lookup would, in any letter case.
    for ext in COMMON_EXTENSIONS {
        for name in [format!("f.{ext}"), format!("f.{}", ext.to_uppercase())] {
            let fast = common_content_type(extension(name.as_bytes()));
            assert_eq!(
                fast.map(Cow::Borrowed),
                Some(guessed_content_type(name.as_bytes())),
                "{name}"
            );
        }
    }
}

#[test]
fn error_statuses() {
    let cases = [
        (libc::ENOENT, 404),
        (libc::ENOTDIR, 404),
        (libc::ELOOP, 404),
        (libc::ENAMETOOLONG, 404),
        (libc::EXDEV, 404),
        (libc::EACCES, 403),
        (libc::EPERM, 403),
        (libc::EMFILE, 503),
        (libc::ENFILE, 503),
        (libc::EIO, 500),
    ];
    for (errno, status) in cases {
        let err = std::io::Error::from_raw_os_error(errno);
        assert_eq!(super::error_status(&err), status, "{err}");
    }
}

/// Opening under a root, with `openat2` and with the `/proc/self/fd` fallback: the same
/// answers for files, in-root symlinks (relative and absolute) and escapes.
#[test]
fn opening_stays_under_the_root_with_and_without_openat2() {
    use std::os::unix::fs::symlink;
    let base = std::env::temp_dir().join(format!("asycamore-unit-root-{}", std::process::id()));
    let root = base.join("root");
    let outside = base.join("outside");
    std::fs::create_dir_all(root.join("dir")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(root.join("dir/file"), b"in").unwrap();
    std::fs::write(outside.join("file"), b"out").unwrap();
    symlink("dir/file", root.join("rel-in")).unwrap();
    symlink(root.join("dir/file"), root.join("abs-in")).unwrap();
    symlink(outside.join("file"), root.join("abs-out")).unwrap();
    symlink("../outside", root.join("rel-out-dir")).unwrap();
    symlink("../rel-in", root.join("dir/up-in")).unwrap();
    // (path, opens when confined, opens when following outside)
    let cases: &[(&[u8], bool, bool)] = &[
        (b"", true, true),
        (b"dir", true, true),
        (b"dir/file", true, true),
        (b"rel-in", true, true),
        (b"abs-in", true, true),
        (b"dir/up-in", true, true),
        (b"abs-out", false, true),
        (b"rel-out-dir/file", false, true),
        (b"rel-out-dir", false, true),
        (b"missing", false, false),
    ];
    let roots = [
        ("openat2", Root::open(&root, false), false),
        (
            "fallback",
            Root::open(&root, false).without_openat2(),
            false,
        ),
        ("follow", Root::open(&root, true), true),
    ];
    for (mode, opener, follow) in &roots {
        for (path, confined, following) in cases {
            let expected = if *follow { following } else { confined };
            let got = opener.open_file(path);
            assert_eq!(
                got.is_ok(),
                *expected,
                "{mode} {:?}: {got:?}",
                String::from_utf8_lossy(path)
            );
        }
    }
    std::fs::remove_dir_all(&base).unwrap();
}
