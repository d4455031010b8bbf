//! The `static` handler through the real binary: files, types and validators, HEAD, methods,
//! 304 / 412 / 206 / 416 tables, directories (redirect, index, listing), path-escape
//! attempts, permissions, a 64 MiB file checked by SHA-256, and no descriptor leaked by
//! error paths or clients that abort mid-file.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::support::{
    Client, Response, TestServer, fd_count, peak_rss_kib, temp_path, wait_for_fd_count,
};

const HELLO: &[u8] = b"Hello, static files!\n";
const DATA_LEN: usize = 1000;

fn data() -> Vec<u8> {
    (0..DATA_LEN).map(|i| (i % 251) as u8).collect()
}

/// A root and a sibling directory outside it, removed when dropped.
struct Tree {
    root: PathBuf,
    outside: PathBuf,
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
        let _ = fs::remove_dir_all(&self.outside);
    }
}

fn tree() -> Tree {
    let base = temp_path("static");
    let root = base.join("root");
    let outside = base.join("outside");
    for dir in [
        &root,
        &outside,
        &root.join("index-dir"),
        &root.join("list/sub dir"),
        &root.join("noindex"),
    ] {
        fs::create_dir_all(dir).expect("mkdir");
    }
    let write = |path: &Path, bytes: &[u8]| fs::write(path, bytes).expect("write");
    write(&root.join("hello.txt"), HELLO);
    write(&root.join("data.bin"), &data());
    write(&root.join("empty.txt"), b"");
    write(&root.join("page.html"), b"<p>hi</p>");
    write(&root.join("index-dir/index.html"), b"<h1>index</h1>");
    write(
        &root.join("index-dir/index.htm"),
        b"htm wins when listed first",
    );
    write(&root.join("list/a.txt"), b"a");
    write(&root.join("list/b <&>\"'.txt"), b"b");
    write(&root.join("list/.hidden"), b"h");
    write(&root.join("noindex/x.txt"), b"x");
    write(&root.join("secret.txt"), b"secret");
    write(&outside.join("secret.txt"), b"outside secret");
    symlink("hello.txt", root.join("link-in")).expect("symlink");
    symlink(root.join("hello.txt"), root.join("link-abs-in")).expect("symlink");
    symlink(outside.join("secret.txt"), root.join("link-out")).expect("symlink");
    symlink("../outside", root.join("link-out-dir")).expect("symlink");
    nix::unistd::mkfifo(&root.join("fifo"), nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    fs::set_permissions(root.join("secret.txt"), fs::Permissions::from_mode(0o000)).expect("chmod");
    Tree { root, outside }
}

/// A server with three static routes on `tree`: `/files` (listing on), `/plain` (listing
/// off, `index.htm` tried first) and `/follow` (symlinks may leave the root).
fn server(tree: &Tree) -> TestServer {
    let root = tree.root.display();
    TestServer::with(&format!(
        r#"
[[route]]
name = "files"
path = "/files"
handler = "static"
root = "{root}"
listing = true
headers = {{ "X-Route" = "files" }}

[[route]]
name = "plain"
path = "/plain"
handler = "static"
root = "{root}"
index = ["index.htm", "index.html"]

[[route]]
name = "follow"
path = "/follow"
handler = "static"
root = "{root}"
follow_symlinks_outside_root = true
"#
    ))
}

/// One request on a fresh connection.
fn fetch(server: &TestServer, method: &str, target: &str, headers: &[(&str, &str)]) -> Response {
    let mut client = server.connect();
    let mut request = format!("{method} {target} HTTP/1.1\r\nHost: test\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    client.send(request.as_bytes());
    client.read_response_to(method)
}

fn get(server: &TestServer, target: &str, headers: &[(&str, &str)]) -> Response {
    fetch(server, "GET", target, headers)
}

fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

#[test]
fn a_file_is_served_with_its_type_validators_and_length() {
    let tree = tree();
    let server = server(&tree);
    let response = get(&server, "/files/hello.txt", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, HELLO);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(response.header("content-length"), Some("21"));
    assert_eq!(response.header("accept-ranges"), Some("bytes"));
    assert_eq!(response.header("x-route"), Some("files"));
    let etag = response.header("etag").expect("etag");
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong: {etag}"
    );
    let modified = fs::metadata(tree.root.join("hello.txt"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        response.header("last-modified"),
        Some(httpdate::fmt_http_date(modified).as_str())
    );
    let cases = [
        (
            "/files/page.html",
            "text/html; charset=utf-8",
            &b"<p>hi</p>"[..],
        ),
        ("/files/data.bin", "application/octet-stream", &data()[..]),
        ("/files/empty.txt", "text/plain; charset=utf-8", b""),
    ];
    for (target, content_type, body) in cases {
        let response = get(&server, target, &[]);
        assert_eq!(response.status, 200, "{target}");
        assert_eq!(
            response.header("content-type"),
            Some(content_type),
            "{target}"
        );
        assert_eq!(response.body, body, "{target}");
    }
}

#[test]
fn head_gets_the_head_of_get_and_no_body() {
    let tree = tree();
    let server = server(&tree);
    let mut client = server.connect();
    for (target, range) in [
        ("/files/data.bin", None),
        ("/files/data.bin", Some("bytes=0-9")),
    ] {
        let extra = range.map_or(String::new(), |r| format!("Range: {r}\r\n"));
        client.send(format!("GET {target} HTTP/1.1\r\nHost: t\r\n{extra}\r\n").as_bytes());
        let got = client.read_response();
        client.send(format!("HEAD {target} HTTP/1.1\r\nHost: t\r\n{extra}\r\n").as_bytes());
        let head = client.read_response_to("HEAD");
        assert_eq!(head.status, got.status);
        assert!(head.body.is_empty());
        for name in [
            "content-length",
            "content-type",
            "etag",
            "last-modified",
            "content-range",
        ] {
            assert_eq!(head.header(name), got.header(name), "{name}");
        }
    }
    // The connection is still in step: no stray body bytes after the HEAD responses.
    client.send(b"GET /files/hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(client.read_response().body, HELLO);
}

#[test]
fn methods_other_than_get_and_head_are_405_with_allow() {
    let tree = tree();
    let server = server(&tree);
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW"] {
        let response = fetch(&server, method, "/files/hello.txt", &[]);
        assert_eq!(response.status, 405, "{method}");
        assert_eq!(response.header("allow"), Some("GET, HEAD"), "{method}");
    }
}

#[test]
fn conditional_requests_table() {
    let tree = tree();
    let server = server(&tree);
    let first = get(&server, "/files/hello.txt", &[]);
    let etag = first.header("etag").unwrap().to_string();
    let modified = first.header("last-modified").unwrap().to_string();
    let weak = format!("W/{etag}");
    let list = format!("\"nope\", {etag}");
    let earlier = httpdate::fmt_http_date(
        httpdate::parse_http_date(&modified).unwrap() - Duration::from_secs(1),
    );
    let later = httpdate::fmt_http_date(
        httpdate::parse_http_date(&modified).unwrap() + Duration::from_secs(60),
    );
    let cases: Vec<(Vec<(&str, &str)>, u16)> = vec![
        (vec![("If-None-Match", &etag)], 304),
        (vec![("If-None-Match", &weak)], 304),
        (vec![("If-None-Match", &list)], 304),
        (vec![("If-None-Match", "*")], 304),
        (vec![("If-None-Match", "\"nope\"")], 200),
        (vec![("If-Modified-Since", &modified)], 304),
        (vec![("If-Modified-Since", &later)], 304),
        (vec![("If-Modified-Since", &earlier)], 200),
        (vec![("If-Modified-Since", "yesterday")], 200),
        // If-None-Match takes precedence over If-Modified-Since.
        (
            vec![("If-None-Match", "\"nope\""), ("If-Modified-Since", &later)],
            200,
        ),
        (
            vec![("If-None-Match", &etag), ("If-Modified-Since", &earlier)],
            304,
        ),
        (vec![("If-Match", &etag)], 200),
        (vec![("If-Match", "\"nope\"")], 412),
        (vec![("If-Unmodified-Since", &earlier)], 412),
        (vec![("If-Unmodified-Since", &modified)], 200),
    ];
    for (headers, status) in cases {
        for method in ["GET", "HEAD"] {
            let response = fetch(&server, method, "/files/hello.txt", &headers);
            assert_eq!(response.status, status, "{method} {headers:?}");
            if status == 304 {
                assert_eq!(response.header("etag"), Some(etag.as_str()));
                assert!(response.body.is_empty());
                assert_eq!(response.header("content-type"), None);
            }
        }
    }
}

#[test]
fn range_requests_table() {
    let tree = tree();
    let server = server(&tree);
    let data = data();
    let first = get(&server, "/files/data.bin", &[]);
    let etag = first.header("etag").unwrap().to_string();
    let modified = first.header("last-modified").unwrap().to_string();
    let weak = format!("W/{etag}");
    let len = DATA_LEN;
    // (Range, If-Range, expected status, expected first..=last for 206)
    type Case<'a> = (&'a str, Option<&'a str>, u16, Option<(usize, usize)>);
    let cases: Vec<Case<'_>> = vec![
        ("bytes=0-0", None, 206, Some((0, 0))),
        ("bytes=0-99", None, 206, Some((0, 99))),
        ("bytes=500-", None, 206, Some((500, 999))),
        ("bytes=-10", None, 206, Some((990, 999))),
        ("bytes=-5000", None, 206, Some((0, 999))),
        ("bytes=990-5000", None, 206, Some((990, 999))),
        ("bytes=999-999", None, 206, Some((999, 999))),
        ("bytes=1000-", None, 416, None),
        ("bytes=1000-2000", None, 416, None),
        ("bytes=-0", None, 416, None),
        ("bytes=0-1,5-9", None, 200, None),
        ("bytes=9-2", None, 200, None),
        ("bytes=x-y", None, 200, None),
        ("lines=0-1", None, 200, None),
        ("bytes=0-9", Some(&etag), 206, Some((0, 9))),
        ("bytes=0-9", Some(&modified), 206, Some((0, 9))),
        ("bytes=0-9", Some(&weak), 200, None),
        ("bytes=0-9", Some("\"stale\""), 200, None),
        (
            "bytes=0-9",
            Some("Thu, 01 Jan 1970 00:00:00 GMT"),
            200,
            None,
        ),
    ];
    for (range, if_range, status, span) in cases {
        let mut headers = vec![("Range", range)];
        if let Some(if_range) = if_range {
            headers.push(("If-Range", if_range));
        }
        let response = get(&server, "/files/data.bin", &headers);
        assert_eq!(response.status, status, "{headers:?}");
        match status {
            206 => {
                let (a, b) = span.unwrap();
                assert_eq!(response.body, &data[a..=b], "{headers:?}");
                let content_range = format!("bytes {a}-{b}/{len}");
                assert_eq!(
                    response.header("content-range"),
                    Some(content_range.as_str())
                );
            }
            416 => {
                let content_range = format!("bytes */{len}");
                assert_eq!(
                    response.header("content-range"),
                    Some(content_range.as_str())
                );
            }
            _ => assert_eq!(response.body, data, "{headers:?}"),
        }
    }
    let empty = get(&server, "/files/empty.txt", &[("Range", "bytes=0-")]);
    assert_eq!(empty.status, 416);
    assert_eq!(empty.header("content-range"), Some("bytes */0"));
}

#[test]
fn directories_redirect_serve_their_index_or_a_listing() {
    let tree = tree();
    let server = server(&tree);
    let redirects = [
        ("/files", "/files/"),
        ("/files/index-dir", "/files/index-dir/"),
        ("/files/index-dir?a=1&b", "/files/index-dir/?a=1&b"),
        ("/files/list/sub%20dir", "/files/list/sub%20dir/"),
        ("/files//index-dir", "/files/index-dir/"),
    ];
    for (target, location) in redirects {
        let response = get(&server, target, &[]);
        assert_eq!(response.status, 301, "{target}");
        assert_eq!(response.header("location"), Some(location), "{target}");
    }
    let index = get(&server, "/files/index-dir/", &[]);
    assert_eq!(index.status, 200);
    assert_eq!(index.body, b"<h1>index</h1>");
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    // The configured order decides.
    assert_eq!(
        get(&server, "/plain/index-dir/", &[]).body,
        b"htm wins when listed first"
    );
    // No index: a listing where enabled, else 404.
    let listing = get(&server, "/files/list/", &[]);
    assert_eq!(listing.status, 200);
    assert_eq!(
        listing.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let page = listing.text();
    assert!(page.contains("<a href=\"a.txt\">a.txt</a>"), "{page}");
    assert!(
        page.contains("<a href=\"b%20%3C%26%3E%22%27.txt\">b &lt;&amp;&gt;&quot;&#39;.txt</a>"),
        "{page}"
    );
    assert!(
        page.contains("<a href=\"sub%20dir/\">sub dir/</a>"),
        "{page}"
    );
    assert!(page.contains("<a href=\"../\">"), "{page}");
    assert!(!page.contains(".hidden"), "{page}");
    assert!(page.find("a.txt") < page.find("b &lt;"), "sorted: {page}");
    assert_eq!(get(&server, "/plain/list/", &[]).status, 404);
    assert_eq!(get(&server, "/plain/noindex/", &[]).status, 404);
    assert_eq!(fetch(&server, "HEAD", "/files/list/", &[]).status, 200);
    // A file named with a trailing slash is not a directory.
    assert_eq!(get(&server, "/files/hello.txt/", &[]).status, 404);
}

#[test]
fn path_escape_attempts_table() {
    let tree = tree();
    let server = server(&tree);
    let cases: &[(&str, u16)] = &[
        ("/files/../outside/secret.txt", 200),
        ("/files/../../../../etc/passwd", 400),
        ("/files/list/../hello.txt", 200),
        ("/files/./hello.txt", 200),
        ("/files/%2e%2e/outside/secret.txt", 200),
        ("/files/%2E%2E/%2E%2E/etc/passwd", 400),
        ("/files/.%2e/outside/secret.txt", 200),
        ("/files/%2e%2e%2foutside%2fsecret.txt", 404),
        ("/files/..%2f..%2fetc%2fpasswd", 404),
        ("/files/list%2fa.txt", 404),
        ("/files/%252e%252e/outside/secret.txt", 404),
        ("/files//etc/passwd", 404),
        ("/files/%2fetc%2fpasswd", 404),
        ("/files/%00", 400),
        ("/files/hello.txt%00.png", 400),
        ("/files/%zz", 400),
        ("/files/%4", 400),
        ("/files/link-out", 404),
        ("/files/link-out-dir/secret.txt", 404),
        ("/files/link-out-dir/", 404),
        ("/files/fifo", 404),
        ("http://test/files/../outside/secret.txt", 200),
        ("http://test/files/%2e%2e/outside/secret.txt", 200),
        // Inside the root, symlinks and absolute-form targets work.
        ("/files/link-in", 200),
        ("/files/link-abs-in", 200),
        ("http://test/files/hello.txt", 200),
        ("/files/hello%2etxt", 200),
        // Following outside the root only where configured.
        ("/follow/link-out", 200),
        ("/follow/link-out-dir/secret.txt", 200),
        ("/follow/../outside/secret.txt", 200),
    ];
    // Dot segments are resolved before routing (RFC 3986 6.2.2): `/files/../outside/x` is
    // `/outside/x`, which the base config's catch-all `respond` route answers with 200.
    // What matters is that no answer carries the file outside the root.
    for (target, status) in cases {
        let response = get(&server, target, &[]);
        assert_eq!(response.status, *status, "{target}");
        assert!(
            !response.text().contains("outside secret") || target.starts_with("/follow/link"),
            "{target} leaked the outside file"
        );
    }
}

#[test]
fn permission_denied_is_403() {
    let tree = tree();
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n\
         [[route]]\nname = \"files\"\npath = \"/files\"\nhandler = \"static\"\nroot = \"{}\"\n",
        tree.root.display()
    );
    // Root reads mode-000 files, so as root the server runs as nobody (65534) here.
    let server = if running_as_root() {
        TestServer::start_as(&config, 65534)
    } else {
        TestServer::start(&config)
    };
    assert_eq!(get(&server, "/files/secret.txt", &[]).status, 403);
    assert_eq!(get(&server, "/files/hello.txt", &[]).status, 200);
}

/// Writes a `size`-byte file of pseudo-random bytes and returns its SHA-256.
fn write_big_file(path: &Path, size: usize) -> Vec<u8> {
    use std::io::Write;
    let mut file = std::io::BufWriter::new(fs::File::create(path).expect("create"));
    let mut hasher = Sha256::new();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut block = vec![0u8; 1 << 16];
    for _ in 0..size / block.len() {
        for byte in block.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = state as u8;
        }
        hasher.update(&block);
        file.write_all(&block).expect("write");
    }
    file.flush().expect("flush");
    hasher.finalize().to_vec()
}

#[test]
fn a_64_mib_file_arrives_whole() {
    let tree = tree();
    let size = 64 << 20;
    let expected = write_big_file(&tree.root.join("big.bin"), size);
    let server = server(&tree);
    let response = get(&server, "/files/big.bin", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(response.body.len(), size);
    assert_eq!(Sha256::digest(&response.body).to_vec(), expected);
    // A range from the middle, too.
    let tail = get(&server, "/files/big.bin", &[("Range", "bytes=33554432-")]);
    assert_eq!(tail.status, 206);
    assert_eq!(tail.body, response.body[32 << 20..]);
}

#[test]
fn no_descriptor_survives_error_paths_or_aborted_downloads() {
    let tree = tree();
    write_big_file(&tree.root.join("big.bin"), 64 << 20);
    let server = server(&tree);
    let pid = server.pid();
    let baseline = fd_count(pid);

    // Every error path, on keep-alive connections and fresh ones.
    let targets = [
        "/files/hello.txt",
        "/files/missing",
        "/files/secret.txt",
        "/files/fifo",
        "/files/link-out",
        "/files/index-dir",
        "/files/list/",
        "/plain/noindex/",
        "/files/%00",
        "/files/%2e%2e/x",
    ];
    for target in targets {
        get(&server, target, &[]);
        get(&server, target, &[("Range", "bytes=999999-")]);
        fetch(&server, "HEAD", target, &[]);
        fetch(&server, "POST", target, &[]);
    }
    let validators = get(&server, "/files/hello.txt", &[]);
    let etag = validators.header("etag").unwrap().to_string();
    get(&server, "/files/hello.txt", &[("If-None-Match", &etag)]);
    get(&server, "/files/hello.txt", &[("If-Match", "\"x\"")]);
    wait_for_fd_count(pid, baseline);

    // Clients that vanish mid-file: the server is blocked on a full socket when they go.
    for _ in 0..4 {
        let mut client: Client = server.connect();
        client.send(b"GET /files/big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
        let (status, _) = client.read_head();
        assert_eq!(status, 200);
        let mut some = [0u8; 4096];
        std::io::Read::read(&mut client.stream, &mut some).expect("a first piece");
        assert!(fd_count(pid) > baseline, "the file and socket are open");
        drop(client);
    }
    wait_for_fd_count(pid, baseline);
}

/// More hostile paths: backslashes, overlong UTF-8 dots, NUL after dots, double encoding,
/// symlink loops, names too long for the filesystem and very deep paths: never a file outside
/// the root, never a 5xx, and the server keeps serving.
#[test]
fn more_path_escape_attempts_never_leave_the_root_or_fail_the_server() {
    let tree = tree();
    symlink("loop", tree.root.join("loop")).expect("symlink");
    let server = server(&tree);
    let long_name = format!("/files/{}", "a".repeat(300));
    let deep = format!("/files/{}hello.txt", "list/".repeat(1000));
    let cases: &[(&str, u16)] = &[
        ("/files/..\\outside\\secret.txt", 404),
        ("/files/%5c..%5coutside%5csecret.txt", 404),
        ("/files/%c0%ae%c0%ae/outside/secret.txt", 404),
        ("/files/%e0%80%ae%e0%80%ae/outside/secret.txt", 404),
        ("/files/%c0%af..%c0%afoutside/secret.txt", 404),
        ("/files/..%00/outside/secret.txt", 400),
        ("/files/%2e%2e%00/x", 400),
        ("/files/%2500", 404),
        ("/files/..%2500/x", 404),
        ("/files/%%32%65%%32%65/x", 400),
        ("/files/.%252e/outside/secret.txt", 404),
        ("/files/loop", 404),
        ("/files/loop/x", 404),
        ("/files/link-out-dir/../secret.txt", 200),
        ("/files/hello.txt/..", 200),
        ("/files/hello.txt;/../../outside/secret.txt", 200),
        ("/files/proc/self/root/etc/passwd", 404),
        (&long_name, 404),
        (&deep, 404),
    ];
    for &(target, status) in cases {
        let response = get(&server, target, &[]);
        assert_eq!(response.status, status, "{target}");
        assert!(
            !response.text().contains("outside secret"),
            "{target} leaked the outside file"
        );
    }
    assert_eq!(get(&server, "/files/hello.txt", &[]).body, HELLO);
}

/// Range and conditional headers with garbage, odd spacing and extreme numbers.
#[test]
fn range_and_conditional_edge_cases() {
    let tree = tree();
    let server = server(&tree);
    let data = data();
    let etag = get(&server, "/files/data.bin", &[])
        .header("etag")
        .unwrap()
        .to_string();
    // (headers, status, body span for 200/206)
    type Case<'a> = (Vec<(&'a str, &'a str)>, u16, Option<(usize, usize)>);
    let cases: Vec<Case<'_>> = vec![
        (vec![("Range", "bytes=0-0,")], 206, Some((0, 0))),
        (vec![("Range", "bytes = 2-3")], 206, Some((2, 3))),
        (vec![("Range", "BYTES=4-5")], 206, Some((4, 5))),
        (
            vec![("Range", "bytes=0-99999999999999999999999")],
            206,
            Some((0, 999)),
        ),
        (vec![("Range", "bytes=99999999999999999999999-")], 416, None),
        (
            vec![("Range", "bytes=-99999999999999999999999")],
            206,
            Some((0, 999)),
        ),
        (vec![("Range", "bytes=-")], 200, Some((0, 999))),
        (vec![("Range", "bytes=")], 200, Some((0, 999))),
        (vec![("Range", "bytes=--1")], 200, Some((0, 999))),
        (vec![("Range", "bytes=+1-2")], 200, Some((0, 999))),
        (vec![("Range", "bytes=0x10-0x20")], 200, Some((0, 999))),
        (vec![("Range", "bytes=1-2-3")], 200, Some((0, 999))),
        (vec![("Range", "=0-1")], 200, Some((0, 999))),
        // Garbage validators: If-Match with junk fails; If-None-Match junk matches nothing;
        // a junk date is ignored; junk If-Range means the whole file.
        (vec![("If-Match", "garbage")], 412, None),
        (vec![("If-Match", "")], 412, None),
        (vec![("If-None-Match", "garbage")], 200, Some((0, 999))),
        (vec![("If-None-Match", "")], 200, Some((0, 999))),
        (vec![("If-None-Match", ",,,")], 200, Some((0, 999))),
        (vec![("If-Modified-Since", "")], 200, Some((0, 999))),
        (
            vec![("If-Modified-Since", "Mon, 99 Foo 2000 99:99:99 GMT")],
            200,
            Some((0, 999)),
        ),
        (
            vec![("If-Unmodified-Since", "garbage")],
            200,
            Some((0, 999)),
        ),
        (
            vec![("Range", "bytes=0-9"), ("If-Range", "garbage")],
            200,
            Some((0, 999)),
        ),
        (
            vec![("Range", "bytes=0-9"), ("If-Range", "")],
            200,
            Some((0, 999)),
        ),
        // A matching If-None-Match wins over Range.
        (
            vec![("Range", "bytes=0-9"), ("If-None-Match", &etag)],
            304,
            None,
        ),
        // A failed If-Match wins over Range.
        (
            vec![("Range", "bytes=0-9"), ("If-Match", "\"x\"")],
            412,
            None,
        ),
        (
            vec![("If-Match", &etag), ("Range", "bytes=5-6")],
            206,
            Some((5, 6)),
        ),
    ];
    for (headers, status, span) in cases {
        let response = get(&server, "/files/data.bin", &headers);
        assert_eq!(response.status, status, "{headers:?}");
        if let Some((a, b)) = span {
            assert_eq!(response.body, &data[a..=b], "{headers:?}");
        }
    }
}

/// A 304 and a 416 carry no stray bytes: pipelined requests after them stay in step.
#[test]
fn pipelined_requests_after_304_412_and_416_stay_in_step() {
    let tree = tree();
    let server = server(&tree);
    let etag = get(&server, "/files/hello.txt", &[])
        .header("etag")
        .unwrap()
        .to_string();
    let mut client = server.connect();
    let mut batch = String::new();
    for extra in [
        format!("If-None-Match: {etag}\r\n"),
        "If-Match: \"nope\"\r\n".to_owned(),
        "Range: bytes=5000-\r\n".to_owned(),
        String::new(),
    ] {
        batch.push_str(&format!(
            "GET /files/hello.txt HTTP/1.1\r\nHost: t\r\n{extra}\r\n"
        ));
    }
    client.send(batch.as_bytes());
    let statuses: Vec<u16> = (0..4).map(|_| client.read_response().status).collect();
    assert_eq!(statuses, [304, 412, 416, 200]);
    client.send(b"GET /files/hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(client.read_response().body, HELLO);
}

/// A 64 MiB file is never loaded into the server's memory: its peak RSS after serving it
/// whole stays under 32 MiB (the server's baseline is a few MiB).
#[test]
fn serving_a_64_mib_file_keeps_server_memory_bounded() {
    const RSS_BOUND_KIB: u64 = 32 * 1024;
    let tree = tree();
    let size = 64 << 20;
    let expected = write_big_file(&tree.root.join("big.bin"), size);
    let server = server(&tree);
    let response = get(&server, "/files/big.bin", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(Sha256::digest(&response.body).to_vec(), expected);
    let peak = peak_rss_kib(server.pid());
    assert!(
        peak < RSS_BOUND_KIB,
        "server peak RSS {peak} KiB after serving 64 MiB, bound {RSS_BOUND_KIB} KiB"
    );
}
