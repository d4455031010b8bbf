//! The `upload` handler on the real server: Content-Length and chunked uploads stored with
//! the SHA-256 and chunk count reported, a 256 MiB chunked upload streamed with bounded
//! server memory, and nothing left on disk after a 413 or a client that goes away; 409 for
//! an existing name, 405 for other methods.
//!
//! An `fsync = true` upload's commit runs off the worker's loop: another client of the same
//! worker is answered while it runs. A server killed mid-upload leaves no temporary file
//! (unnamed with `O_TMPFILE`; named ones are swept at the next start, logged).
//!
//! Waiting for the server to create or remove a file is a deadline-bounded poll of the
//! directory or of the server's open files (there is no event to wait on), never a fixed
//! sleep.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::support::{
    IO_LIMIT, Process, Response, TestServer, binary, peak_rss_kib, post, temp_path, write_config,
};

/// The largest peak resident set the server may reach while storing 256 MiB (its
/// baseline is a few MiB: buffers, worker stack, the binary).
const RSS_BOUND_KIB: u64 = 32 * 1024;

/// A fresh upload directory, removed with everything in it when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let path = temp_path(name);
        std::fs::create_dir(&path).expect("create upload dir");
        Dir(path)
    }

    /// A fresh directory under the build's temporary directory, on the disk the build is on
    /// (where an fsync waits on the device; the system's temp dir may be a tmpfs).
    fn on_disk(name: &str) -> Dir {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(temp_path(name).file_name().expect("file name"));
        std::fs::create_dir_all(&path).expect("create upload dir");
        Dir(path)
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .expect("read upload dir")
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

    /// Polls until `done(names)` holds, failing after [`IO_LIMIT`].
    fn wait_until(&self, what: &str, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + IO_LIMIT;
        loop {
            let names = self.names();
            if done(&names) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: directory holds {names:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server with `up` (fsync off, 300 MiB limit), `synced` (fsync on) and `small` (1 KiB
/// limit) upload routes, all storing into `dir`.
fn server(dir: &Path) -> TestServer {
    TestServer::start(&config(dir))
}

/// The configuration [`server`] runs.
fn config(dir: &Path) -> String {
    let dir = dir.display();
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
workers = 1

[limits]
max_body_bytes = 1073741824

[[route]]
name = "up"
path = "/up"
handler = "upload"
dir = "{dir}"
max_body_bytes = 314572800
headers = {{ "X-Route" = "up" }}

[[route]]
name = "synced"
path = "/synced"
handler = "upload"
dir = "{dir}"
fsync = true
max_body_bytes = 314572800

[[route]]
name = "small"
path = "/small"
handler = "upload"
dir = "{dir}"
max_body_bytes = 1024
"#
    )
}

/// The sizes of the files the server `pid` holds open in `dir` (its temporary files, named
/// or not: an unnamed one shows as `dir/#inode (deleted)`).
fn open_files_in(pid: u32, dir: &Path) -> Vec<u64> {
    let prefix = format!("{}/", dir.display());
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let target = std::fs::read_link(&path).ok()?;
            if !target.to_string_lossy().starts_with(&prefix) {
                return None;
            }
            Some(std::fs::metadata(&path).ok()?.len())
        })
        .collect()
}

/// Polls until the server `pid` holds exactly files of `sizes` open in `dir`.
fn wait_for_open_files(pid: u32, dir: &Path, sizes: &[u64], what: &str) {
    let deadline = Instant::now() + IO_LIMIT;
    loop {
        let open = open_files_in(pid, dir);
        if open == sizes {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: open files {open:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The value of `key` in a flat JSON object (a string without escapes, or a number).
fn json_field(body: &str, key: &str) -> String {
    let start = body
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("no {key} in {body}"))
        + key.len()
        + 3;
    let rest = &body[start..];
    match rest.strip_prefix('"') {
        Some(string) => string[..string.find('"').expect("closing quote")].to_string(),
        None => rest[..rest.find([',', '}']).expect("end of number")].to_string(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn sha256_of_file(path: &Path) -> String {
    let mut file = std::fs::File::open(path).expect("open stored file");
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).expect("read stored file");
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hex(hasher.finalize().as_slice())
}

/// Checks a 201 answer and the stored file; returns the stored name.
fn assert_stored(
    dir: &Dir,
    response: &Response,
    prefix: &str,
    bytes: u64,
    sha: &str,
    chunks: u64,
) -> String {
    let body = response.text();
    assert_eq!(response.status, 201, "{body}");
    assert_eq!(response.header("content-type"), Some("application/json"));
    let name = json_field(&body, "name");
    let location = format!("{prefix}/{name}");
    assert_eq!(response.header("location"), Some(location.as_str()));
    assert_eq!(json_field(&body, "location"), location);
    assert_eq!(json_field(&body, "bytes"), bytes.to_string());
    assert_eq!(json_field(&body, "sha256"), sha);
    assert_eq!(json_field(&body, "chunks"), chunks.to_string());
    let stored = dir.0.join(&name);
    assert_eq!(
        std::fs::metadata(&stored).expect("stored file").len(),
        bytes
    );
    assert_eq!(sha256_of_file(&stored), sha);
    name
}

#[test]
fn a_content_length_upload_is_stored_under_its_name_with_its_sha256() {
    let dir = Dir::new("up-length");
    let server = server(&dir.0);
    let mut client = server.connect();
    let body: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    client.send(&post("/up/report-1.bin", &body));
    let response = client.read_response();
    let sha = hex(Sha256::digest(&body).as_slice());
    let name = assert_stored(&dir, &response, "/up", body.len() as u64, &sha, 0);
    assert_eq!(name, "report-1.bin");
    assert_eq!(response.header("x-route"), Some("up"));
    assert_eq!(dir.names(), ["report-1.bin"]);
    // The connection stays usable.
    client.send(&post("/synced", b"second"));
    let response = client.read_response();
    let sha = hex(Sha256::digest(b"second").as_slice());
    assert_stored(&dir, &response, "/synced", 6, &sha, 0);
    assert_eq!(dir.names().len(), 2);
}

#[test]
fn a_chunked_upload_is_stored_with_its_chunk_count() {
    let dir = Dir::new("up-chunked");
    let server = server(&dir.0);
    let mut client = server.connect();
    client.send(
        b"PUT /up HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: t\r\n\r\n",
    );
    let response = client.read_response();
    let sha = hex(Sha256::digest(b"hello world!").as_slice());
    let name = assert_stored(&dir, &response, "/up", 12, &sha, 3);
    assert_eq!(dir.names(), [name]);
}

#[test]
fn an_upload_waiting_for_100_continue_is_stored() {
    let dir = Dir::new("up-continue");
    let server = server(&dir.0);
    let mut client = server.connect();
    client.send(b"POST /up/c.txt HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
    assert_eq!(client.read_interim(), 100);
    client.send(b"abc");
    let response = client.read_response();
    let sha = hex(Sha256::digest(b"abc").as_slice());
    assert_stored(&dir, &response, "/up", 3, &sha, 0);
}

/// A deterministic pseudo-random byte stream (xorshift), generated piece by piece.
struct Noise(u64);

impl Noise {
    fn fill(&mut self, buf: &mut [u8]) {
        for word in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            word.copy_from_slice(&self.0.to_le_bytes()[..word.len()]);
        }
    }
}

#[test]
fn a_256_mib_chunked_upload_streams_to_disk_in_bounded_memory() {
    const TOTAL: usize = 256 << 20;
    const CHUNK: usize = 64 << 10;
    let dir = Dir::new("up-large");
    let server = server(&dir.0);
    let mut client = server.connect();
    client
        .stream
        .set_write_timeout(Some(IO_LIMIT))
        .expect("write timeout");
    client.send(b"POST /up/big.bin HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n");
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let mut hasher = Sha256::new();
    let mut piece = vec![0u8; CHUNK];
    let mut framed = Vec::with_capacity(CHUNK + 16);
    for _ in 0..TOTAL / CHUNK {
        noise.fill(&mut piece);
        hasher.update(&piece);
        framed.clear();
        write!(framed, "{CHUNK:x}\r\n").expect("chunk size");
        framed.extend_from_slice(&piece);
        framed.extend_from_slice(b"\r\n");
        client.send(&framed);
    }
    client.send(b"0\r\n\r\n");
    let response = client.read_response();
    let sha = hex(hasher.finalize().as_slice());
    assert_stored(
        &dir,
        &response,
        "/up",
        TOTAL as u64,
        &sha,
        (TOTAL / CHUNK) as u64,
    );
    let peak = peak_rss_kib(server.pid());
    eprintln!("server peak RSS after a 256 MiB upload: {peak} KiB");
    assert!(
        peak < RSS_BOUND_KIB,
        "server peak RSS {peak} KiB, bound {RSS_BOUND_KIB} KiB"
    );
    assert_eq!(dir.names(), ["big.bin"]);
}

#[test]
fn an_over_limit_upload_gets_413_and_leaves_nothing() {
    let dir = Dir::new("up-limit");
    let server = server(&dir.0);
    // Declared too large: refused before a byte of the body is read.
    let mut client = server.connect();
    client.send(&post("/small/declared", &[b'x'; 2048]));
    assert_eq!(client.read_response().status, 413);
    // Chunked: found too large as it arrives, after the file was begun.
    let mut client = server.connect();
    client
        .send(b"POST /small/streamed HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n");
    for _ in 0..4 {
        client.send(b"200\r\n");
        client.send(&[b'y'; 0x200]);
        client.send(b"\r\n");
    }
    let response = client.read_response();
    assert_eq!(response.status, 413);
    assert!(response.says_close());
    dir.wait_until("the partial file is removed after 413", |names| {
        names.is_empty()
    });
}

#[test]
fn a_client_that_goes_away_mid_upload_leaves_nothing() {
    let dir = Dir::new("up-abort");
    let server = server(&dir.0);
    let mut client = server.connect();
    client.send(b"POST /up/never.bin HTTP/1.1\r\nHost: test\r\nContent-Length: 1048576\r\n\r\n");
    client.send(&[b'z'; 100_000]);
    // The partial file is open and holds what was sent; no final name is visible (nor any
    // name at all when it is unnamed).
    wait_for_open_files(
        server.pid(),
        &dir.0,
        &[100_000],
        "the partial file holds what was sent",
    );
    let names = dir.names();
    assert!(
        names.iter().all(|name| name.starts_with(".upload-")) && names.len() <= 1,
        "{names:?}"
    );
    drop(client);
    wait_for_open_files(server.pid(), &dir.0, &[], "the partial file is closed");
    dir.wait_until(
        "the partial file is removed after the client left",
        |names| names.is_empty(),
    );
    // The server logged it, and still serves.
    let mut client = server.connect();
    client.send(&post("/up/after.txt", b"ok"));
    assert_eq!(client.read_response().status, 201);
    let log = server.log_lines().join("\n");
    assert!(log.contains("removing partial file"), "{log}");
}

#[test]
fn an_existing_name_gets_409_and_is_not_overwritten() {
    let dir = Dir::new("up-conflict");
    std::fs::write(dir.0.join("taken.txt"), b"original").expect("write");
    let server = server(&dir.0);
    let mut client = server.connect();
    client.send(&post("/up/taken.txt", b"replacement"));
    let response = client.read_response();
    assert_eq!(response.status, 409);
    assert_eq!(
        std::fs::read(dir.0.join("taken.txt")).expect("read"),
        b"original"
    );
    assert_eq!(dir.names(), ["taken.txt"]);
    // The connection stays usable.
    client.send(&post("/up/free.txt", b"new"));
    assert_eq!(client.read_response().status, 201);
}

#[test]
fn other_methods_get_405_with_allow() {
    let dir = Dir::new("up-methods");
    let server = server(&dir.0);
    let mut client = server.connect();
    for method in ["GET", "HEAD", "DELETE"] {
        client.send(format!("{method} /up/x HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
        let response = client.read_response_to(method);
        assert_eq!(response.status, 405, "{method}");
        assert_eq!(response.header("allow"), Some("POST, PUT"), "{method}");
    }
    assert!(dir.names().is_empty());
}

/// Hostile or odd names in the request path: anything that is not one safe segment gets a
/// generated name; nothing is ever written outside the directory; `Location` and the JSON
/// stay clean; an empty body is a valid (empty) upload.
#[test]
fn odd_names_get_generated_names_and_nothing_leaves_the_directory() {
    let dir = Dir::new("up-names");
    let server = server(&dir.0);
    let long = format!("/up/{}", "a".repeat(256));
    let targets = [
        "/up/a%2fb",
        "/up/a%2Fb",
        "/up/..%2f..%2fescaped",
        "/up/.hidden",
        "/up/.upload-x.tmp",
        "/up/%00",
        "/up/a%00b",
        "/up/x/y",
        "/up/a\\b",
        "/up/a%5cb",
        "/up/%C3%A9",
        "/up/%c0%ae%c0%ae",
        "/up/a%0d%0aX-Injected:%20y",
        "/up/a%22b",
        "/up?name=../../x",
        long.as_str(),
    ];
    // Paths that normalise away from the route (`/up/..` is `/`) or cannot be normalised
    // (a broken escape) never reach the handler: nothing is stored for them.
    for (target, status) in [
        ("/up/%2e%2e", 404),
        ("/up/..", 404),
        ("/up/%", 400),
        ("/up/%zz", 400),
    ] {
        let mut client = server.connect();
        client.send(&post(target, b""));
        assert_eq!(client.read_response().status, status, "{target}");
    }
    assert!(dir.names().is_empty(), "{:?}", dir.names());
    let empty_sha = hex(Sha256::digest(b"").as_slice());
    for target in targets {
        let mut client = server.connect();
        client.send(&post(target, b""));
        let response = client.read_response();
        assert_eq!(response.status, 201, "{target}");
        assert_eq!(response.header("x-injected"), None, "{target}");
        let name = assert_stored(&dir, &response, "/up", 0, &empty_sha, 0);
        assert!(
            name.len() == 16 && name.bytes().all(|b| b.is_ascii_hexdigit()),
            "{target} stored as {name:?}"
        );
    }
    assert_eq!(dir.names().len(), targets.len());
    // Nothing was created next to the directory.
    let parent = dir.0.parent().expect("parent");
    for stray in ["escaped", "x", "b"] {
        assert!(!parent.join(stray).exists(), "{stray} created outside");
    }
    // The longest accepted name and an empty upload under a chosen name.
    let max = format!("/up/{}", "b".repeat(255));
    let mut client = server.connect();
    client.send(&post(&max, b""));
    let name = assert_stored(&dir, &client.read_response(), "/up", 0, &empty_sha, 0);
    assert_eq!(name.len(), 255);
}

/// A storage error after start-up (the directory vanished) is a 500 with a log line naming
/// the path and the OS error, and leaves nothing behind.
#[test]
fn a_vanished_directory_answers_500_with_a_log_line() {
    let dir = Dir::new("up-vanish");
    let server = server(&dir.0);
    std::fs::remove_dir(&dir.0).expect("rmdir");
    let mut client = server.connect();
    client.send(&post("/up/x.bin", b"data"));
    let response = client.read_response();
    assert_eq!(response.status, 500, "{}", response.text());
    // The log line arrives on the server's stderr: poll it, bounded.
    let deadline = Instant::now() + IO_LIMIT;
    let mut log = String::new();
    while !log.contains("No such file or directory") {
        assert!(Instant::now() < deadline, "no log line for the 500: {log}");
        for line in server.log_lines() {
            log.push_str(&line);
            log.push('\n');
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(log.contains(&dir.0.display().to_string()), "{log}");
    assert!(!dir.0.exists());
    // The connection stays usable.
    client.send(b"PUT /up HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(client.read_response().status, 500);
}

/// A client streaming an upload as fast as it can does not hold the worker: another client's
/// requests on the same (single) worker are answered while the upload is still pouring in.
/// The streaming client stops only when the other has all its answers (or at a cap that
/// would fail the test).
#[test]
fn a_fast_upload_does_not_starve_other_clients_of_its_worker() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    const CAP: usize = 256 << 20;
    const CHUNK: usize = 64 << 10;
    let dir = Dir::new("up-fair");
    let server = server(&dir.0);
    let mut flood = server.connect();
    flood
        .stream
        .set_write_timeout(Some(IO_LIMIT))
        .expect("write timeout");
    flood.send(b"POST /up/flood.bin HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n");
    let others_done = Arc::new(AtomicBool::new(false));
    let flooding = {
        let others_done = Arc::clone(&others_done);
        std::thread::spawn(move || {
            let mut framed = format!("{CHUNK:x}\r\n").into_bytes();
            framed.extend(std::iter::repeat_n(b'f', CHUNK));
            framed.extend_from_slice(b"\r\n");
            let mut sent = 0;
            while !others_done.load(Ordering::Relaxed) && sent < CAP {
                flood.send(&framed);
                sent += CHUNK;
            }
            flood.send(b"0\r\n\r\n");
            (flood.read_response().status, sent)
        })
    };
    // The other client: 20 requests, each answered (405: the route takes uploads only).
    let mut other = server.connect();
    for _ in 0..20 {
        other.send(b"GET /up HTTP/1.1\r\nHost: test\r\n\r\n");
        assert_eq!(other.read_response().status, 405);
    }
    others_done.store(true, Ordering::Relaxed);
    let (status, sent) = flooding.join().expect("flooding client");
    assert_eq!(status, 201);
    assert!(
        sent < CAP,
        "the other client was answered only after the upload had sent all {CAP} bytes"
    );
}

/// An `fsync = true` upload's commit (the fsync of the whole file, its link, the directory's
/// fsync) does not hold its worker: once the body is all in the temporary file (the server's
/// open file has its full size, so the commit has begun), another client of the same, only
/// worker is answered while the upload's 201 has not been written yet (nothing to read on
/// its connection after the probe's answer arrived). Before the commit moved off the loop,
/// no probe could be answered until the 201 was out. The probe's worst wait must also be
/// far below the time the commit took, whatever the disk's speed. The directory is on the
/// build's disk: on a tmpfs an fsync has nothing to wait for.
#[test]
fn an_fsync_commit_does_not_stall_other_clients_of_its_worker() {
    const TOTAL: usize = 256 << 20;
    const PIECE: usize = 1 << 20;
    /// A loaded machine can deschedule the test for the whole commit: then it is tried again.
    const ATTEMPTS: usize = 3;
    let dir = Dir::on_disk("up-fsync-stall");
    let server = server(&dir.0);
    for attempt in 1..=ATTEMPTS {
        let name = format!("big{attempt}.bin");
        let mut upload = server.connect();
        upload
            .stream
            .set_write_timeout(Some(IO_LIMIT))
            .expect("write timeout");
        upload.send(
            format!("PUT /synced/{name} HTTP/1.1\r\nHost: test\r\nContent-Length: {TOTAL}\r\n\r\n")
                .as_bytes(),
        );
        let mut noise = Noise(0x2545_f491_4f6c_dd1d ^ attempt as u64);
        let mut hasher = Sha256::new();
        let mut piece = vec![0u8; PIECE];
        for _ in 0..TOTAL / PIECE {
            noise.fill(&mut piece);
            hasher.update(&piece);
            upload.send(&piece);
        }
        let mut probe = server.connect();
        // The whole body is in the temporary file: the commit is under way; unless the
        // answer is already there (the commit ended while this test had no CPU).
        upload.stream.set_nonblocking(true).expect("nonblocking");
        let answered = |upload: &crate::support::Client| match upload.stream.peek(&mut [0u8; 1]) {
            Ok(_) => true,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(error) => panic!("upload connection: {error}"),
        };
        let deadline = Instant::now() + IO_LIMIT;
        let mut missed = false;
        while open_files_in(server.pid(), &dir.0) != [TOTAL as u64] {
            if answered(&upload) {
                missed = true;
                break;
            }
            assert!(Instant::now() < deadline, "the body was never all written");
            std::thread::sleep(Duration::from_millis(1));
        }
        let commit_seen = Instant::now();
        let mut answered_during_commit = 0u32;
        let mut worst = Duration::ZERO;
        let mut worst_at = Duration::ZERO;
        while !missed {
            let sent = Instant::now();
            probe.send(b"GET /up HTTP/1.1\r\nHost: test\r\n\r\n");
            let answer = probe.read_response();
            assert_eq!(answer.status, 405);
            let latency = sent.elapsed();
            if answer.says_close() {
                // `max_requests_per_connection` reached: go on on a new connection.
                probe = server.connect();
            }
            // The 201 was written before the probe's answer, or after: either way the
            // commit is over.
            missed = answered(&upload);
            if missed {
                break;
            }
            answered_during_commit += 1;
            if latency > worst {
                worst = latency;
                worst_at = sent - commit_seen;
            }
            assert!(Instant::now() < deadline, "the commit did not end");
        }
        let commit = commit_seen.elapsed();
        upload.stream.set_nonblocking(false).expect("blocking");
        let response = upload.read_response();
        let sha = hex(hasher.finalize().as_slice());
        assert_stored(&dir, &response, "/synced", TOTAL as u64, &sha, 0);
        if answered_during_commit == 0 {
            eprintln!("attempt {attempt}: the commit ended before a probe could be sent");
            assert!(attempt < ATTEMPTS, "no probe was ever sent during a commit");
            continue;
        }
        eprintln!(
            "fsync commit of {} MiB took about {commit:?}; {answered_during_commit} probe(s) \
             answered meanwhile, the slowest in {worst:?} (sent {worst_at:?} into the commit)",
            TOTAL >> 20
        );
        // Half, not less: on a loaded machine a probe may lose the CPU for a while; a blocked
        // loop would make the first probe wait for nearly all of the commit.
        assert!(
            worst * 2 < commit,
            "a probe waited {worst:?}, not far below the {commit:?} commit"
        );
        return;
    }
}

/// A server killed (`kill -9`) mid-upload leaves no temporary file once it has started
/// again: an unnamed temporary file dies with the process (nothing is ever visible), a named
/// one is swept at the next start.
#[test]
fn a_server_killed_mid_upload_leaves_no_temporary_file() {
    let dir = Dir::new("up-killed");
    let server = server(&dir.0);
    let mut client = server.connect();
    client.send(b"POST /up/lost.bin HTTP/1.1\r\nHost: test\r\nContent-Length: 1048576\r\n\r\n");
    client.send(&[b'k'; 100_000]);
    wait_for_open_files(
        server.pid(),
        &dir.0,
        &[100_000],
        "the partial file holds what was sent",
    );
    // Dropping the server kills it with SIGKILL and reaps it.
    drop(server);
    let left = dir.names();
    assert!(
        left.iter().all(|name| name.starts_with(".upload-")),
        "{left:?}"
    );
    eprintln!("left by the killed server: {left:?} (none with O_TMPFILE)");
    let _restarted = server_after_restart(&dir.0);
    assert_eq!(dir.names(), Vec::<String>::new());
    drop(client);
}

/// Starts the server on `dir` again, as a process (to read its start-up lines in order).
fn server_after_restart(dir: &Path) -> Process {
    let mut process = Process::start(binary(), write_config(&config(dir)), &[]);
    process.wait_log("listening on http://");
    process
}

/// Temporary files of our naming that a killed process left (no upload holds them) are
/// removed at start, with one log line giving their count and bytes; nothing else in the
/// directory is touched.
#[test]
fn stale_temporary_files_are_swept_at_start_and_logged() {
    let dir = Dir::new("up-stale");
    std::fs::write(dir.0.join(".upload-0123456789abcdef.tmp"), [b's'; 5000]).expect("write");
    std::fs::write(dir.0.join(".upload-fedcba9876543210.tmp"), [b's'; 120]).expect("write");
    std::fs::write(dir.0.join(".upload-notours.tmp"), b"keep").expect("write");
    std::fs::write(dir.0.join("kept.bin"), b"keep").expect("write");
    let mut process = Process::start(binary(), write_config(&config(&dir.0)), &[]);
    let line = process.wait_log("stale temporary");
    assert!(
        line.contains("removed 2 stale temporary file(s), 5120 bytes, from")
            && line.contains(&dir.0.display().to_string()),
        "{line}"
    );
    process.wait_log("listening on http://");
    assert_eq!(dir.names(), [".upload-notours.tmp", "kept.bin"]);
}
