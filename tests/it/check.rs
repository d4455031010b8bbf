//! `asycamore --check`: a file with many errors of different kinds prints every one of them,
//! located, in file order, exactly, and exits 78 (EX_CONFIG); a valid file prints its route summary in
//! lookup order, exactly, and exits 0.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use crate::support::{binary, temp_path, write_config};

fn check(config: &Path) -> Output {
    binary()
        .arg("--check")
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .output()
        .expect("run asycamore --check")
}

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::to_owned)
        .collect()
}

const BAD: &str = r#"[server]
listen = ["127.0.0.1:0"]
wrkers = 2

[limits]
max_body_bytes = 1000

[defaults]
max_body_bytes = 5000
headers = { "X Bad" = "1" }

[[route]]
name = "site"
host = "*.example.com:80"
path = "/static"
exact = "/static"
handler = "static"
root = "/nonexistent/asycamore-root"
index = ["../secret"]
methods = ["GET", "get"]

[[route]]
name = "api"
path = "/api"
methods = ["GET"]
handler = "respond"
status = 600
to = "/elsewhere"

[[route]]
name = "api2"
path = "/api/"
methods = ["post", "get"]
handler = "respond"

[[route]]
name = "old"
path = "/old"
handler = "redirect"
status = 200
to = "//evil.example"

[[route]]
name = "old"
path = "/up"
handler = "upload"
dir = "/nonexistent/asycamore-uploads"

[[route]]
name = "proxy"
path = "/p"
handler = "proxy"
max_body_bytes = "big"
"#;

#[test]
fn every_error_is_printed_located_in_file_order_and_check_exits_78() {
    let path = write_config(BAD);
    let out = check(&path);
    let _ = std::fs::remove_file(&path);
    let f = path.display();
    let want = [
        format!(
            "{f}:3:1: server.wrkers: unknown key; did you mean `workers`? (expected one of: listen, workers, max_connections, max_requests_per_connection, defer_accept, shutdown_timeout, pidfile, user, group, via)"
        ),
        format!(
            "{f}:9:18: defaults.max_body_bytes: 5000 is above limits.max_body_bytes (1000), which applies to every request"
        ),
        format!(
            r#"{f}:10:13: defaults.headers."X Bad": invalid header name "X Bad" (must be an RFC 9110 token)"#
        ),
        format!(
            r#"{f}:14:8: route[0].host: invalid host "*.example.com:80": must not have a port (a request's port is ignored)"#
        ),
        format!(
            "{f}:16:9: route[0].exact: `path` and `exact` cannot both be given (a route matches a prefix or one path)"
        ),
        format!(
            "{f}:16:9: route[0].exact: a \"static\" route needs `path` (a prefix): an exact match can reach no file below it"
        ),
        format!(
            r#"{f}:18:8: route[0].root: cannot read directory "/nonexistent/asycamore-root": No such file or directory (os error 2)"#
        ),
        format!(
            r#"{f}:19:10: route[0].index[0]: invalid index file name "../secret" (a plain file name: no '/', NUL, "." or "..")"#
        ),
        format!(r#"{f}:20:19: route[0].methods[1]: duplicate method "get""#),
        format!("{f}:27:10: route[1].status: 600 is out of range 200..=599"),
        format!(
            r#"{f}:28:6: route[1].to: "to" does not apply to handler "respond" (only to "redirect")"#
        ),
        format!(
            r#"{f}:32:8: route[2].path: route "api" (line 24) already matches the same host, path and method GET"#
        ),
        format!(
            "{f}:40:10: route[3].status: 200 is not a redirect status (301, 302, 303, 307 or 308)"
        ),
        format!(
            r#"{f}:41:6: route[3].to: invalid redirect target "//evil.example": must not start with "//" (browsers read that as a host name)"#
        ),
        format!(
            r#"{f}:44:8: route[4].name: duplicate route name "old" (first defined on line 37)"#
        ),
        format!(
            r#"{f}:47:7: route[4].dir: cannot write to directory "/nonexistent/asycamore-uploads": No such file or directory (os error 2)"#
        ),
        // A wrong type no longer hides its route's other errors.
        format!("{f}:49:1: route[5].upstream: required key is missing"),
        format!(
            r#"{f}:53:18: route[5].max_body_bytes: "big" is not a byte size: expected a whole number of bytes, optionally with a unit ("512K", "10M", "1GiB")"#
        ),
    ];
    assert_eq!(lines(&out.stderr), want);
    assert_eq!(lines(&out.stdout), Vec::<String>::new());
    assert_eq!(out.status.code(), Some(78));
}

/// A directory removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let path = temp_path(name);
        std::fs::create_dir(&path).expect("mkdir");
        Dir(path.canonicalize().expect("canonical"))
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_valid_file_prints_its_routes_in_lookup_order_and_check_exits_0() {
    let site = Dir::new("site");
    let uploads = Dir::new("uploads");
    let (s, u) = (site.0.display(), uploads.0.display());
    let text = format!(
        r#"[server]
listen = ["127.0.0.1:0", "[::1]:0"]
workers = 2

[limits]
max_body_bytes = "1G"

[[route]]
name = "root"
path = "/"
handler = "respond"
body = "hi"

[[route]]
name = "health"
exact = "/healthz"
methods = ["get", "HEAD"]
handler = "respond"
status = 204

[[route]]
name = "files"
host = "*.Example.com"
path = "/static/"
handler = "static"
root = "{s}"

[[route]]
name = "deep"
host = "*.b.example.com"
path = "/"
handler = "echo"

[[route]]
name = "put"
host = "up.example.com"
path = "/up"
methods = ["PUT"]
handler = "upload"
dir = "{u}"
max_body_bytes = "512MiB"

[[route]]
name = "up-other"
host = "up.example.com"
path = "/up"
handler = "respond"

[[route]]
name = "old"
path = "/old"
handler = "redirect"
status = 308
to = "https://example.org/new"
keep_path = true

[[upstream]]
name = "app"
servers = [{{ address = "127.0.0.1:9" }}, {{ address = "unix:/run/app.sock" }}]

[[route]]
name = "api"
path = "/api"
handler = "proxy"
upstream = "app"
"#
    );
    let path = write_config(&text);
    let out = check(&path);
    let _ = std::fs::remove_file(&path);
    let site_col = format!("static root={s}");
    let upload_col = format!("upload dir={u}");
    let want = [
        format!("{}: configuration is valid", path.display()),
        "listen: 127.0.0.1:0, [::1]:0".to_owned(),
        "workers: 2".to_owned(),
        // Raising the server-wide limit raised only the route that asked for more.
        "max_body_bytes: 1G (limits.max_body_bytes: no route accepts more)".to_owned(),
        "routes: 8 (in lookup order)".to_owned(),
        format!(
            "  put       host=up.example.com   path=/up        methods=PUT       max_body=512M  {upload_col}"
        ),
        "  up-other  host=up.example.com   path=/up        methods=any       max_body=1M    respond status=200"
            .to_owned(),
        "  deep      host=*.b.example.com  path=/          methods=any       max_body=1M    echo"
            .to_owned(),
        format!(
            "  files     host=*.example.com    path=/static    methods=any       max_body=1M    {site_col}"
        ),
        "  health    host=*                exact=/healthz  methods=GET,HEAD  max_body=1M    respond status=204"
            .to_owned(),
        "  api       host=*                path=/api       methods=any       max_body=1M    proxy upstream=app"
            .to_owned(),
        "  old       host=*                path=/old       methods=any       max_body=1M    redirect status=308 to=https://example.org/new"
            .to_owned(),
        "  root      host=*                path=/          methods=any       max_body=1M    respond status=200"
            .to_owned(),
    ];
    assert_eq!(
        lines(&out.stdout),
        want,
        "stderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
}

/// Tricky values, each reported exactly, located at the value.
const TRICKY: &str = r#"[server]
listen = ["127.0.0.1:0"]

[[route]]
name = "big"
path = "/big"
handler = "respond"
max_body_bytes = 99999999999999999999

[[route]]
name = "neg"
path = "/neg"
handler = "respond"
max_body_bytes = -1

[[route]]
name = "float"
path = "/float"
handler = "respond"
status = 1e3

[[route]]
name = "trailing-dot"
host = "EXAMPLE.com."
path = "/a b"
handler = "respond"
headers = { "X-A" = "a\r\nb", "content-length" = "5" }

[[route]]
name = "wild"
host = "*."
exact = "relative"
handler = "respond"
methods = []

[[route]]
name = "é"
host = "*.*.example.com"
path = "/w"
handler = ["static"]
"#;

#[test]
fn tricky_values_are_each_reported_exactly() {
    let path = write_config(TRICKY);
    let out = check(&path);
    let _ = std::fs::remove_file(&path);
    let f = path.display();
    let want = [
        format!(
            "{f}:8:18: route[0].max_body_bytes: 99999999999999999999 does not fit in a 64-bit signed integer"
        ),
        format!("{f}:14:18: route[1].max_body_bytes: -1 is out of range 0.."),
        format!(
            "{f}:20:10: route[2].status: wrong type: expected an integer, found floating point `1000.0`"
        ),
        format!(
            r#"{f}:24:8: route[3].host: invalid host "EXAMPLE.com.": empty label (a dot at either end, or two in a row)"#
        ),
        format!(
            r#"{f}:25:8: route[3].path: invalid path "/a b": must not contain whitespace or control characters"#
        ),
        format!(
            r#"{f}:27:21: route[3].headers.X-A: invalid header value "a\r\nb" (visible ASCII, obs-text, space and tab only; no leading or trailing whitespace)"#
        ),
        format!(
            r#"{f}:27:31: route[3].headers.content-length: header "content-length" is set by the server itself and cannot be configured"#
        ),
    ];
    let got = lines(&out.stderr);
    assert_eq!(got[..want.len()], want, "all: {got:#?}");
    // The last two routes: every problem named, whatever their wording.
    let rest = got[want.len()..].join("\n");
    for needle in [
        "route[4].host",
        "route[4].exact",
        "route[4].methods",
        "route[5].handler",
    ] {
        assert!(rest.contains(needle), "{needle} missing from {rest}");
    }
    assert_eq!(out.status.code(), Some(78));
}

/// One mistake must not hide another: a misspelt key in a route still lets the validator
/// report the route's other problems and its clashes with other routes (duplicate name,
/// duplicate match), as it does for every other kind of error.
#[test]
fn an_unknown_key_does_not_hide_other_errors() {
    let text = r#"[server]
listen = ["127.0.0.1:0"]
wrkers = 2
workers = 99999

[[route]]
name = "a"
path = "/"
handler = "respond"
stauts = 200
status = 999

[[route]]
name = "a"
path = "/"
handler = "respond"
"#;
    let path = write_config(text);
    let out = check(&path);
    let _ = std::fs::remove_file(&path);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    for needle in [
        "server.wrkers: unknown key",
        "server.workers: 99999 is out of range",
        "route[0].stauts: unknown key",
        "route[0].status: 999 is out of range",
        "route[1].name: duplicate route name \"a\"",
    ] {
        assert!(
            stderr.contains(needle),
            "{needle:?} missing from:\n{stderr}"
        );
    }
    assert_eq!(out.status.code(), Some(78));
}

/// A static root the server's user cannot read and an upload directory it cannot write are
/// errors. Run as root, the check runs as nobody (65534), for whom root's private
/// directories are closed.
#[test]
fn unreadable_roots_and_unwritable_upload_dirs_are_reported() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let base = temp_path("perm");
    let (private, readonly) = (base.join("private"), base.join("readonly"));
    std::fs::create_dir_all(&private).expect("mkdir");
    std::fs::create_dir_all(&readonly).expect("mkdir");
    let is_root =
        std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    // Readable and listable by nobody only where intended: `private` is closed to others,
    // `readonly` is open for reading but not writing.
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    std::fs::set_permissions(&readonly, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let text = format!(
        "[[route]]\nname = \"a\"\npath = \"/a\"\nhandler = \"static\"\nroot = \"{}\"\n\n\
         [[route]]\nname = \"b\"\npath = \"/b\"\nhandler = \"upload\"\ndir = \"{}\"\n",
        private.display(),
        readonly.display()
    );
    let config = write_config(&text);
    let mut command = binary();
    if is_root {
        command.uid(65534).gid(65534);
    } else {
        // Not root: make the upload directory unwritable for ourselves too.
        std::fs::set_permissions(&readonly, std::fs::Permissions::from_mode(0o555)).expect("chmod");
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    }
    let out = command
        .arg("--check")
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .expect("run --check");
    let _ = std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700));
    let _ = std::fs::remove_dir_all(&base);
    let _ = std::fs::remove_file(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    let f = config.display();
    let errors = lines(&out.stderr);
    assert_eq!(errors.len(), 2, "{stderr}");
    assert!(
        errors[0].starts_with(&format!("{f}:5:8: route[0].root: cannot read directory")),
        "{stderr}"
    );
    assert!(errors[0].contains("Permission denied"), "{stderr}");
    assert!(
        errors[1].starts_with(&format!(
            "{f}:11:7: route[1].dir: cannot write to directory"
        )),
        "{stderr}"
    );
    assert!(errors[1].contains("Permission denied"), "{stderr}");
}
