//! `asycamore --check`: a file with many errors of different kinds prints every one of them,
//! located, in file order, exactly, and exits 1; a valid file prints its route summary in
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
fn every_error_is_printed_located_in_file_order_and_check_exits_1() {
    let path = write_config(BAD);
    let out = check(&path);
    let _ = std::fs::remove_file(&path);
    let f = path.display();
    let want = [
        format!(
            "{f}:3:1: server.wrkers: unknown key (expected one of: listen, workers, max_connections, max_requests_per_connection)"
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
        format!(
            r#"{f}:53:18: route[5].max_body_bytes: wrong type: expected an integer, found string "big""#
        ),
    ];
    assert_eq!(lines(&out.stderr), want);
    assert_eq!(lines(&out.stdout), Vec::<String>::new());
    assert_eq!(out.status.code(), Some(1));
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
        "routes: 7 (in lookup order)".to_owned(),
        format!("  put       host=up.example.com   path=/up        methods=PUT       {upload_col}"),
        "  up-other  host=up.example.com   path=/up        methods=any       respond status=200"
            .to_owned(),
        "  deep      host=*.b.example.com  path=/          methods=any       echo".to_owned(),
        format!("  files     host=*.example.com    path=/static    methods=any       {site_col}"),
        "  health    host=*                exact=/healthz  methods=GET,HEAD  respond status=204"
            .to_owned(),
        "  old       host=*                path=/old       methods=any       redirect status=308 to=https://example.org/new"
            .to_owned(),
        "  root      host=*                path=/          methods=any       respond status=200"
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
