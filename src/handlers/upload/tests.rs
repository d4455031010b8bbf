//! Unit tests of the upload handler: the pure helpers by tables, and whole exchanges driven
//! in-process against a fresh directory (no server, no sockets).

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::sync::{Mutex, mpsc};

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

/// How many names a receiving exchange's temporary file shows: none when it is unnamed.
fn visible_temp_files(exchange: &UploadExchange) -> usize {
    usize::from(!exchange.temp.as_ref().expect("receiving").is_unnamed())
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
    if exchange.temp.as_ref().expect("receiving").is_unnamed() {
        // O_TMPFILE: nothing is visible while the body arrives.
        assert_eq!(temp_names, Vec::<String>::new());
    } else {
        assert_eq!(temp_names.len(), 1);
        assert!(
            store::is_temp_name(temp_names[0].as_bytes()),
            "{temp_names:?}"
        );
    }

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
    let mode = fs::metadata(dir.0.join("notes.txt"))
        .expect("stat")
        .permissions();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o137, 0);
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
    assert_eq!(dir.names().len(), visible_temp_files(&exchange));
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
    assert_eq!(dir.names().len(), visible_temp_files(&exchange));
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

/// Records the wakes of exchanges, as a worker's mailbox would.
struct Wakes(Mutex<mpsc::Sender<(usize, u64)>>);

impl crate::service::Wake for Wakes {
    fn wake(&self, token: usize, request: u64) {
        let _ = self.0.lock().unwrap().send((token, request));
    }
}

/// Served by a connection (a waker at hand), the commit runs on a commit thread: nothing is
/// answered when the body ends; the thread wakes the exchange, which answers 201 from
/// `on_writable`, byte for byte what an inline commit answers.
#[test]
fn a_commit_runs_off_the_loop_and_answers_when_woken() {
    let dir = TempDir::new("woken");
    let upload = handler(&dir.0, "/up", true);
    let (sender, wakes) = mpsc::channel();
    let target: Arc<dyn crate::service::Wake> = Arc::new(Wakes(Mutex::new(sender)));
    let wake = crate::service::WakeRef {
        target: &target,
        token: 7,
        request: 3,
    };
    let mut reply = reply();
    let (exchange, _) = start(&upload, "PUT", "/up/late.txt", &mut reply);
    let mut exchange = exchange.expect("an exchange");
    let mut out = Vec::new();
    for event in [BodyEvent::Data(b"abcde"), BodyEvent::End] {
        let writer = ResponseWriter::new(&mut out, &mut reply, DATE, 1 << 16);
        exchange.on_body(event, &mut writer.with_wake(Some(wake)));
    }
    assert_eq!(out, b"", "nothing is answered before the commit ends");
    assert!(reply.wake_at.is_some(), "the exchange times its own wait");
    let woken = wakes
        .recv_timeout(Duration::from_secs(30))
        .expect("the commit thread wakes the exchange");
    assert_eq!(woken, (7, 3));
    exchange.on_writable(&mut ResponseWriter::new(
        &mut out,
        &mut reply,
        DATE,
        1 << 16,
    ));
    let text = String::from_utf8(out).expect("utf-8");
    let sha = hex(Sha256::digest(b"abcde").as_slice());
    let body = format!(
        "{{\"name\":\"late.txt\",\"location\":\"/up/late.txt\",\"bytes\":5,\"sha256\":\"{sha}\",\"chunks\":0}}\n"
    );
    assert!(text.starts_with("HTTP/1.1 201 Created\r\n"), "{text}");
    assert!(text.contains("Location: /up/late.txt\r\n"), "{text}");
    assert!(text.ends_with(&format!("\r\n\r\n{body}")), "{text}");
    assert!(reply.wake_at.is_none());
    assert_eq!(dir.names(), ["late.txt"]);
}

/// A commit abandoned by the time its data is synced names nothing and removes the
/// temporary file, named or unnamed.
#[test]
fn an_abandoned_commit_stores_nothing() {
    let dir = TempDir::new("abandoned");
    let unnamed = AtomicBool::new(true);
    for named in [false, true] {
        let temp = if named {
            TempFile::create_named(&dir.0).expect("named temp")
        } else {
            TempFile::create(&dir.0, &unnamed).expect("temp")
        };
        let commit = Commit {
            temp,
            dir: dir.0.clone(),
            name: Some("never".into()),
            fsync: true,
            bytes: 0,
        };
        assert_eq!(commit::run(commit, &|| true), None);
        assert!(dir.names().is_empty(), "{:?}", dir.names());
    }
}

#[test]
fn temporary_file_names() {
    let cases: &[(&str, bool)] = &[
        (".upload-0123456789abcdef.tmp", true),
        (".upload-0123456789ABCDEF.tmp", false),
        (".upload-0123456789abcde.tmp", false),
        (".upload-0123456789abcdef0.tmp", false),
        (".upload-0123456789abcdeg.tmp", false),
        (".upload-0123456789abcdef.tmp~", false),
        ("upload-0123456789abcdef.tmp", false),
        (".upload-x.tmp", false),
        ("report.pdf", false),
    ];
    for &(name, expected) in cases {
        assert_eq!(store::is_temp_name(name.as_bytes()), expected, "{name}");
    }
}

/// The sweep removes our stale temporary files, and nothing else: not a file an upload
/// holds (its lock is taken), not other names, not a symlink or a directory of our naming.
#[test]
fn the_sweep_removes_only_stale_temporary_files() {
    let dir = TempDir::new("sweep");
    fs::write(dir.0.join(".upload-00000000000000aa.tmp"), [1u8; 1000]).expect("write");
    fs::write(dir.0.join(".upload-00000000000000bb.tmp"), [2u8; 24]).expect("write");
    fs::write(dir.0.join("stored.bin"), b"keep").expect("write");
    fs::write(dir.0.join(".upload-x.tmp"), b"keep").expect("write");
    fs::create_dir(dir.0.join(".upload-00000000000000cc.tmp")).expect("mkdir");
    std::os::unix::fs::symlink(
        dir.0.join("stored.bin"),
        dir.0.join(".upload-00000000000000dd.tmp"),
    )
    .expect("symlink");
    let held = TempFile::create_named(&dir.0).expect("named temp");
    let held_name = held.describe();
    assert_eq!(
        sweep_stale(&dir.0).expect("sweep"),
        Swept {
            files: 2,
            bytes: 1024
        }
    );
    let held_name = held_name.file_name().unwrap().to_str().unwrap().to_string();
    let mut expected = vec![
        ".upload-00000000000000cc.tmp".to_string(),
        ".upload-00000000000000dd.tmp".to_string(),
        ".upload-x.tmp".to_string(),
        held_name,
        "stored.bin".to_string(),
    ];
    expected.sort();
    assert_eq!(dir.names(), expected);
    assert_eq!(sweep_stale(&dir.0).expect("sweep"), Swept::default());
    drop(held);
    assert_eq!(dir.names().len(), 4);
}
