//! Unit tests of the upload handler: the pure helpers by tables, and whole exchanges driven
//! in-process against a fresh directory (no server, no sockets).

use std::path::PathBuf;

use super::*;
use crate::service::{BodyKind, Reply, ResponseContext, Version};

const DATE: &[u8] = b"Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n";

/// A fresh empty directory under the temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "asycamore-upload-unit-{}-{name}-{}",
            std::process::id(),
            random_hex(8)
        ));
        fs::create_dir(&path).expect("create test dir");
        TempDir(path)
    }

    /// The names in the directory, sorted.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.0)
            .expect("read dir")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .into_string()
                    .expect("utf-8")
            })
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn handler(dir: &Path, prefix: &str, fsync: bool) -> Upload {
    Upload::new(UploadSettings {
        dir: dir.to_path_buf(),
        prefix: prefix.to_string(),
        fsync,
        header_lines: HeaderLines::new(&[("X-Route", "up")]).unwrap(),
    })
}

fn reply() -> Reply {
    Reply::new(
        ResponseContext {
            version: Version::Http11,
            head_request: false,
            close: false,
            expect_pending: false,
        },
        u64::MAX,
    )
}

/// Starts a request; returns the exchange (if any) and what `start` wrote.
fn start(
    upload: &Upload,
    method: &str,
    target: &str,
    reply: &mut Reply,
) -> (Option<UploadExchange>, String) {
    let request = Request {
        method,
        target,
        path: crate::http1::target::path_of(target),
        version: Version::Http11,
        headers: &[],
        body: BodyKind::Chunked,
        peer: None,
    };
    let mut out = Vec::new();
    let started = upload.start(
        &request,
        &mut ResponseWriter::new(&mut out, reply, DATE, 1 << 16),
    );
    let exchange = match started {
        Start::Complete => None,
        Start::Continue { body, exchange } => {
            assert_eq!(body, BodyMode::Stream);
            Some(exchange)
        }
    };
    (exchange, String::from_utf8(out).expect("utf-8"))
}

/// Feeds `events` to `exchange`; returns what it wrote.
fn feed(exchange: &mut UploadExchange, reply: &mut Reply, events: Vec<BodyEvent<'_>>) -> String {
    let mut out = Vec::new();
    for event in events {
        exchange.on_body(
            event,
            &mut ResponseWriter::new(&mut out, reply, DATE, 1 << 16),
        );
    }
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn requested_names() {
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("/up", "/up", None),
        ("/up/", "/up", None),
        ("/up/report.pdf", "/up", Some("report.pdf")),
        ("/up/report.pdf", "/up/", Some("report.pdf")),
        ("/a_b-C.9", "/", Some("a_b-C.9")),
        ("/up/my%2Dfile", "/up", Some("my-file")),
        ("/up/my%2dfile", "/up", Some("my-file")),
        ("/up/a/b", "/up", None),
        ("/up/a/", "/up", None),
        ("/up/.hidden", "/up", None),
        ("/up/%2Ehidden", "/up", None),
        ("/up/..", "/up", None),
        ("/up/%2E%2E", "/up", None),
        ("/up/a%2Fb", "/up", None),
        ("/up/a%00b", "/up", None),
        ("/up/a%zz", "/up", None),
        ("/up/a%2", "/up", None),
        ("/up/a b", "/up", None),
        ("/up/caf%C3%A9", "/up", None),
        ("/up/x:y", "/up", None),
        ("/other/x", "/up", None),
    ];
    for &(path, prefix, expected) in cases {
        assert_eq!(
            requested_name(path, prefix).as_deref(),
            expected,
            "{path} under {prefix}"
        );
    }
    let long = format!("/up/{}", "a".repeat(MAX_NAME_LEN + 1));
    assert_eq!(requested_name(&long, "/up"), None);
    let longest = format!("/up/{}", "a".repeat(MAX_NAME_LEN));
    assert!(requested_name(&longest, "/up").is_some());
}

#[test]
fn json_body_and_escaping() {
    assert_eq!(
        json_body("f.txt", "/up/f.txt", 12, "ab01", 3),
        "{\"name\":\"f.txt\",\"location\":\"/up/f.txt\",\"bytes\":12,\"sha256\":\"ab01\",\"chunks\":3}\n"
    );
    let cases = [
        ("plain", "\"plain\""),
        ("q\"b\\", "\"q\\\"b\\\\\""),
        ("a\nb\r\tc", "\"a\\nb\\r\\tc\""),
        ("\u{1}\u{1f}", "\"\\u0001\\u001f\""),
        ("caf\u{e9}", "\"caf\u{e9}\""),
    ];
    for (text, expected) in cases {
        assert_eq!(json_string(text), expected, "{text:?}");
    }
}

#[test]
fn helpers() {
    assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    assert_eq!(
        hex(Sha256::digest(b"abc").as_slice()),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(location_base("/up"), "/up/");
    assert_eq!(location_base("/up/"), "/up/");
    assert_eq!(location_base("/"), "/");
    assert_eq!(location_base("/a b?"), "/a%20b%3F/");
    let first = random_hex(16);
    assert_eq!(first.len(), 16);
    assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(first, random_hex(16));
    let statuses = [
        (io::Error::from_raw_os_error(libc::ENOSPC), 507),
        (io::Error::from_raw_os_error(libc::EDQUOT), 507),
        (io::Error::from_raw_os_error(libc::EACCES), 500),
        (io::Error::from_raw_os_error(libc::EIO), 500),
        (io::Error::from(ErrorKind::AlreadyExists), 500),
    ];
    for (error, status) in statuses {
        assert_eq!(failure_status(&error), status, "{error}");
    }
}

#[test]
fn chunked_upload_is_stored_under_the_requested_name() {
    let dir = TempDir::new("named");
    let upload = handler(&dir.0, "/up", true);
    let mut reply = reply();
    let (exchange, written) = start(&upload, "PUT", "/up/notes.txt?x=1", &mut reply);
    assert_eq!(written, "", "the head waits for the body");
    let mut exchange = exchange.expect("an exchange");
    let temp_names = dir.names();
    assert_eq!(temp_names.len(), 1);
    assert!(temp_names[0].starts_with(".upload-") && temp_names[0].ends_with(".tmp"));
    let mode = fs::metadata(dir.0.join(&temp_names[0]))
        .expect("stat")
        .permissions();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o137, 0);

    let text = feed(
        &mut exchange,
        &mut reply,
        vec![
            BodyEvent::ChunkStart { size: 3 },
            BodyEvent::Data(b"ab"),
            BodyEvent::Data(b"c"),
            BodyEvent::ChunkStart { size: 2 },
            BodyEvent::Data(b"de"),
            BodyEvent::Trailers(&[]),
            BodyEvent::End,
        ],
    );
    drop(exchange);
    let sha = hex(Sha256::digest(b"abcde").as_slice());
    let body = format!(
        "{{\"name\":\"notes.txt\",\"location\":\"/up/notes.txt\",\"bytes\":5,\"sha256\":\"{sha}\",\"chunks\":2}}\n"
    );
    assert!(text.starts_with("HTTP/1.1 201 Created\r\n"), "{text}");
    assert!(
        text.contains(
            "X-Route: up\r\nLocation: /up/notes.txt\r\nContent-Type: application/json\r\n"
        ),
        "{text}"
    );
    assert!(text.ends_with(&format!("\r\n\r\n{body}")), "{text}");
    assert_eq!(dir.names(), ["notes.txt"]);
    assert_eq!(fs::read(dir.0.join("notes.txt")).expect("read"), b"abcde");
}

#[test]
fn unnamed_uploads_get_fresh_names() {
    let dir = TempDir::new("unnamed");
    let upload = handler(&dir.0, "/", false);
    let mut names = Vec::new();
    for target in ["/", "/a/b", "/.x"] {
        let mut reply = reply();
        let (exchange, _) = start(&upload, "POST", target, &mut reply);
        let mut exchange = exchange.expect("an exchange");
        let text = feed(
            &mut exchange,
            &mut reply,
            vec![BodyEvent::Data(b"x"), BodyEvent::End],
        );
        assert!(text.starts_with("HTTP/1.1 201 Created\r\n"), "{text}");
        let location = text
            .lines()
            .find_map(|line| line.strip_prefix("Location: /"))
            .expect("Location")
            .to_string();
        assert!(text.contains("\"chunks\":0"), "{text}");
        names.push(location);
    }
    names.sort();
    assert_eq!(dir.names(), names);
}

#[test]
fn existing_names_and_other_methods_are_refused_before_the_body() {
    let dir = TempDir::new("refused");
    fs::write(dir.0.join("taken"), b"old").expect("write");
    let upload = handler(&dir.0, "/up", false);
    let (exchange, text) = start(&upload, "PUT", "/up/taken", &mut reply());
    assert!(exchange.is_none());
    assert!(text.starts_with("HTTP/1.1 409 Conflict\r\n"), "{text}");
    let (exchange, text) = start(&upload, "GET", "/up/x", &mut reply());
    assert!(exchange.is_none());
    assert!(
        text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{text}"
    );
    assert!(
        text.contains("X-Route: up\r\nAllow: POST, PUT\r\n"),
        "{text}"
    );
    assert_eq!(dir.names(), ["taken"]);
    assert_eq!(fs::read(dir.0.join("taken")).expect("read"), b"old");
}

#[test]
fn a_name_taken_while_the_body_arrives_is_not_overwritten() {
    let dir = TempDir::new("race");
    let upload = handler(&dir.0, "/up", false);
    let mut reply = reply();
    let (exchange, _) = start(&upload, "PUT", "/up/f", &mut reply);
    let mut exchange = exchange.expect("an exchange");
    feed(&mut exchange, &mut reply, vec![BodyEvent::Data(b"new")]);
    fs::write(dir.0.join("f"), b"old").expect("write");
    let text = feed(&mut exchange, &mut reply, vec![BodyEvent::End]);
    assert!(text.starts_with("HTTP/1.1 409 Conflict\r\n"), "{text}");
    assert_eq!(dir.names(), ["f"]);
    assert_eq!(fs::read(dir.0.join("f")).expect("read"), b"old");
}

#[test]
fn an_exchange_dropped_midway_removes_its_partial_file() {
    let dir = TempDir::new("dropped");
    let upload = handler(&dir.0, "/up", false);
    let mut reply = reply();
    let (exchange, _) = start(&upload, "POST", "/up", &mut reply);
    let mut exchange = exchange.expect("an exchange");
    feed(&mut exchange, &mut reply, vec![BodyEvent::Data(b"partial")]);
    assert_eq!(dir.names().len(), 1);
    drop(exchange);
    assert!(dir.names().is_empty());
}

#[test]
fn a_storage_error_answers_500_and_leaves_nothing() {
    let dir = TempDir::new("gone");
    let upload = handler(&dir.0, "/up", false);
    let mut reply = reply();
    let (exchange, _) = start(&upload, "PUT", "/up/f", &mut reply);
    let mut exchange = exchange.expect("an exchange");
    feed(&mut exchange, &mut reply, vec![BodyEvent::Data(b"abc")]);
    // The directory disappears under the upload: giving the file its name fails (ENOENT).
    fs::remove_dir_all(&dir.0).expect("remove dir");
    let text = feed(&mut exchange, &mut reply, vec![BodyEvent::End]);
    assert!(
        text.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
        "{text}"
    );
    assert!(
        text.ends_with("\r\n\r\n500 Internal Server Error\n"),
        "{text}"
    );
    // Answered: later events are ignored, and dropping removes nothing twice.
    assert_eq!(feed(&mut exchange, &mut reply, vec![BodyEvent::End]), "");
    assert!(!dir.0.exists());
}

#[test]
fn a_missing_directory_answers_500_at_start() {
    let dir = TempDir::new("missing");
    let upload = handler(&dir.0.join("nope"), "/up", false);
    let (exchange, text) = start(&upload, "POST", "/up", &mut reply());
    assert!(exchange.is_none());
    assert!(
        text.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
        "{text}"
    );
}

#[test]
fn a_full_disk_answers_507_and_removes_the_partial_file() {
    let dir = TempDir::new("full");
    let upload = handler(&dir.0, "/up", false);
    let mut reply = reply();
    let (exchange, _) = start(&upload, "POST", "/up", &mut reply);
    let mut exchange = exchange.expect("an exchange");
    feed(&mut exchange, &mut reply, vec![BodyEvent::Data(b"abc")]);
    assert_eq!(dir.names().len(), 1);
    // Writes to /dev/full fail with ENOSPC, as on a full disk.
    let full = OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full");
    exchange.temp.as_mut().expect("receiving").file = full;
    let text = feed(&mut exchange, &mut reply, vec![BodyEvent::Data(b"def")]);
    assert!(text.starts_with("HTTP/1.1 507 "), "{text}");
    assert!(
        text.contains("X-Route: up\r\nContent-Type: text/plain; charset=utf-8\r\n"),
        "{text}"
    );
    assert!(
        text.ends_with("\r\n\r\n507 Insufficient Storage\n"),
        "{text}"
    );
    assert!(dir.names().is_empty());
    assert_eq!(
        feed(
            &mut exchange,
            &mut reply,
            vec![BodyEvent::Data(b"g"), BodyEvent::End]
        ),
        ""
    );
    assert!(dir.names().is_empty());
}
