//! Unit tests of the issue-3 route keys: `[defaults]`, host / path / exact / methods,
//! body limits, header merging, the static / upload / redirect settings with their
//! filesystem checks, `NotForHandler` and `DuplicateMatch`. Data-driven tables of exact
//! rendered errors, like `load/tests.rs`.

use std::path::{Path, PathBuf};

use crate::config::{
    EMBEDDED_DEFAULT, EMBEDDED_NAME, HandlerSpec, HostPattern, PathPattern, RouteSpec, load_str,
};

use crate::config::error_tables::{FILE, check_table, errors};

/// A fresh directory under the temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "asycamore-validate-{}-{n}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir.canonicalize().expect("canonical temp dir"))
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn str(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn route(name: &str, rest: &str) -> String {
    format!("[[route]]\nname = \"{name}\"\n{rest}\n")
}

#[test]
fn every_route_key_validates_to_the_expected_spec() {
    let site = TempDir::new("site");
    let uploads = TempDir::new("uploads");
    let text = format!(
        r#"[limits]
max_body_bytes = 1000

[defaults]
max_body_bytes = 100
headers = {{ "X-Served-By" = "asycamore", "Cache-Control" = "no-store" }}

[[route]]
name = "site"
host = "*.Example.COM"
path = "/static/"
methods = ["get", "HEAD"]
handler = "static"
root = "{site}/./"
index = ["index.htm", "default.html"]
listing = true
follow_symlinks_outside_root = true
headers = {{ "cache-control" = "max-age=60" }}

[[route]]
name = "up"
host = "Uploads.example.com"
exact = "/upload/"
methods = ["POST"]
max_body_bytes = 1000
handler = "upload"
dir = "{uploads}"
fsync = true

[[route]]
name = "old"
host = "*"
path = "/old"
handler = "redirect"
to = "https://example.com/new"

[[route]]
name = "moved"
host = "[::1]"
exact = "/m"
handler = "redirect"
status = 308
to = "/n"
keep_path = true
keep_query = false

[[route]]
name = "plain"
path = "/"
max_body_bytes = 0
handler = "static"
root = "{site}"
"#,
        site = site.str(),
        uploads = uploads.str()
    );
    let cfg = load_str(&text, FILE).expect("valid");
    let defaults = vec![
        ("X-Served-By".to_owned(), "asycamore".to_owned()),
        ("Cache-Control".to_owned(), "no-store".to_owned()),
    ];
    let want = vec![
        RouteSpec {
            name: "site".into(),
            host: HostPattern::Wildcard("example.com".into()),
            path: PathPattern::Prefix("/static".into()),
            methods: vec!["GET".into(), "HEAD".into()],
            max_body_bytes: 100,
            // The default Cache-Control is replaced (case-insensitively) by the route's own.
            headers: vec![
                ("X-Served-By".into(), "asycamore".into()),
                ("cache-control".into(), "max-age=60".into()),
            ],
            handler: HandlerSpec::Static {
                root: site.path().to_owned(),
                index: vec!["index.htm".into(), "default.html".into()],
                listing: true,
                follow_symlinks_outside_root: true,
            },
        },
        RouteSpec {
            name: "up".into(),
            host: HostPattern::Exact("uploads.example.com".into()),
            // An exact path keeps its trailing '/'.
            path: PathPattern::Exact("/upload/".into()),
            methods: vec!["POST".into()],
            max_body_bytes: 1000,
            headers: defaults.clone(),
            handler: HandlerSpec::Upload {
                dir: uploads.path().to_owned(),
                fsync: true,
            },
        },
        RouteSpec {
            name: "old".into(),
            host: HostPattern::Any,
            path: PathPattern::Prefix("/old".into()),
            methods: vec![],
            max_body_bytes: 100,
            headers: defaults.clone(),
            handler: HandlerSpec::Redirect {
                status: 302,
                to: "https://example.com/new".into(),
                keep_path: false,
                keep_query: true,
            },
        },
        RouteSpec {
            name: "moved".into(),
            host: HostPattern::Exact("[::1]".into()),
            path: PathPattern::Exact("/m".into()),
            methods: vec![],
            max_body_bytes: 100,
            headers: defaults.clone(),
            handler: HandlerSpec::Redirect {
                status: 308,
                to: "/n".into(),
                keep_path: true,
                keep_query: false,
            },
        },
        RouteSpec {
            name: "plain".into(),
            host: HostPattern::Any,
            path: PathPattern::Prefix("/".into()),
            methods: vec![],
            max_body_bytes: 0,
            headers: defaults,
            handler: HandlerSpec::Static {
                root: site.path().to_owned(),
                index: vec!["index.html".into()],
                listing: false,
                follow_symlinks_outside_root: false,
            },
        },
    ];
    assert_eq!(cfg.routes, want);
}

#[test]
fn without_defaults_a_route_gets_the_server_body_limit() {
    let text = format!(
        "[limits]\nmax_body_bytes = 5000\n{}",
        route("a", "path = \"/\"\nhandler = \"echo\"")
    );
    let cfg = load_str(&text, FILE).expect("valid");
    assert_eq!(cfg.routes[0].max_body_bytes, 5000);
    assert!(cfg.routes[0].headers.is_empty());
}

/// Problems with the match and the common keys, one or a few per case.
#[test]
fn match_and_common_key_errors_are_located() {
    let echo = "handler = \"echo\"";
    let case = |rest: &str| route("a", &format!("{rest}\n{echo}"));
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            case("host = \"\"\npath = \"/\""),
            vec![
                r#"x.toml:3:8: route[0].host: invalid host "": must not be empty (leave `host` out, or write "*", for any host)"#,
            ],
        ),
        (
            case("host = \"example.com:80\"\npath = \"/\""),
            vec![
                r#"x.toml:3:8: route[0].host: invalid host "example.com:80": must not have a port (a request's port is ignored)"#,
            ],
        ),
        (
            case("host = \"a.*.com\"\npath = \"/\""),
            vec![
                r#"x.toml:3:8: route[0].host: invalid host "a.*.com": '*' is allowed only as "*" (any host) or as "*." before a domain"#,
            ],
        ),
        (
            case("host = \"*.\"\npath = \"/\""),
            vec![
                r#"x.toml:3:8: route[0].host: invalid host "*.": must not be empty (leave `host` out, or write "*", for any host)"#,
            ],
        ),
        (
            case("host = \"a..b\"\npath = \"/\""),
            vec![
                r#"x.toml:3:8: route[0].host: invalid host "a..b": empty label (a dot at either end, or two in a row)"#,
            ],
        ),
        (
            case("host = \"a b\"\npath = \"/\""),
            vec![
                r#"x.toml:3:8: route[0].host: invalid host "a b": letters, digits, '-', '_' and '.' only"#,
            ],
        ),
        (
            case("host = \"[::1]:80\"\npath = \"/\""),
            vec![
                r#"x.toml:3:8: route[0].host: invalid host "[::1]:80": an IPv6 address is written "[address]", without a port"#,
            ],
        ),
        (
            case("path = \"/\"\nexact = \"/x\""),
            vec![
                "x.toml:4:9: route[0].exact: `path` and `exact` cannot both be given (a route matches a prefix or one path)",
            ],
        ),
        (
            case("exact = \"x\""),
            vec![r#"x.toml:3:9: route[0].exact: invalid path "x": must start with '/'"#],
        ),
        (
            case("path = \"/\"\nmethods = []"),
            vec![
                "x.toml:4:11: route[0].methods: no methods listed (leave `methods` out to allow any method)",
            ],
        ),
        (
            case("path = \"/\"\nmethods = [\"GET\", \"get\", \"GE T\", \"\"]"),
            vec![
                r#"x.toml:4:19: route[0].methods[1]: duplicate method "get""#,
                r#"x.toml:4:26: route[0].methods[2]: invalid method "GE T" (must be an RFC 9110 token)"#,
                r#"x.toml:4:34: route[0].methods[3]: invalid method "" (must be an RFC 9110 token)"#,
            ],
        ),
        (
            case("path = \"/\"\nmax_body_bytes = -1"),
            vec!["x.toml:4:18: route[0].max_body_bytes: -1 is out of range 0.."],
        ),
        (
            format!(
                "[limits]\nmax_body_bytes = 10\n{}",
                case("path = \"/\"\nmax_body_bytes = 11")
            ),
            vec![
                "x.toml:6:18: route[0].max_body_bytes: 11 is above limits.max_body_bytes (10), which applies to every request",
            ],
        ),
        (
            "[defaults]\nmax_body_bytes = 2000000\nheaders = { Date = \"x\" }\n".to_owned(),
            vec![
                "x.toml:2:18: defaults.max_body_bytes: 2000000 is above limits.max_body_bytes (1048576), which applies to every request",
                r#"x.toml:3:13: defaults.headers.Date: header "Date" is set by the server itself and cannot be configured"#,
            ],
        ),
        (
            "[defaults]\nmax_body = 1\n".to_owned(),
            vec![
                "x.toml:2:1: defaults.max_body: unknown key (expected one of: max_body_bytes, headers)",
            ],
        ),
        // A wrong server limit is reported once, not again for every route under it.
        (
            format!(
                "[limits]\nmax_body_bytes = -5\n{}",
                case("path = \"/\"\nmax_body_bytes = 7")
            ),
            vec!["x.toml:2:18: limits.max_body_bytes: -5 is out of range 0.."],
        ),
    ];
    for (text, want) in &cases {
        assert_eq!(errors(text), *want, "\n--- input:\n{text}");
    }
}

#[test]
fn handler_settings_are_checked() {
    let dir = TempDir::new("h");
    let d = dir.str();
    let cases: Vec<(String, Vec<String>)> = vec![
        (
            route("a", "path = \"/\"\nhandler = \"fastcgi\""),
            vec![
                r#"x.toml:4:11: route[0].handler: unknown handler "fastcgi" (known: respond, echo, static, upload, redirect, proxy)"#.into(),
            ],
        ),
        // Missing required settings are reported at the route's header.
        (
            route("a", "path = \"/\"\nhandler = \"static\"")
                + &route("b", "path = \"/b\"\nhandler = \"upload\"")
                + &route("c", "path = \"/c\"\nhandler = \"redirect\""),
            vec![
                "x.toml:1:1: route[0].root: required key is missing".into(),
                "x.toml:5:1: route[1].dir: required key is missing".into(),
                "x.toml:9:1: route[2].to: required key is missing".into(),
            ],
        ),
        // Every setting on a handler that does not take it.
        (
            route(
                "a",
                &format!(
                    "path = \"/\"\nhandler = \"echo\"\nstatus = 200\nbody = \"x\"\nroot = \"{d}\"\n\
                     index = []\nlisting = true\nfollow_symlinks_outside_root = true\ndir = \"{d}\"\n\
                     fsync = true\nto = \"/\"\nkeep_path = true\nkeep_query = true\n\
                     upstream = \"app\"\nproxy_host = \"keep\""
                ),
            ),
            [
                (5, 10, "status", r#""respond" and "redirect""#),
                (6, 8, "body", r#""respond""#),
                (7, 8, "root", r#""static""#),
                (8, 9, "index", r#""static""#),
                (9, 11, "listing", r#""static""#),
                (10, 32, "follow_symlinks_outside_root", r#""static""#),
                (11, 7, "dir", r#""upload""#),
                (12, 9, "fsync", r#""upload""#),
                (13, 6, "to", r#""redirect""#),
                (14, 13, "keep_path", r#""redirect""#),
                (15, 14, "keep_query", r#""redirect""#),
                (16, 12, "upstream", r#""proxy""#),
                (17, 14, "proxy_host", r#""proxy""#),
            ]
            .iter()
            .map(|(line, col, key, only)| {
                format!(
                    "x.toml:{line}:{col}: route[0].{key}: \"{key}\" does not apply to handler \"echo\" (only to {only})"
                )
            })
            .collect(),
        ),
        // Headers a handler writes itself; an exact static route.
        (
            route("a", "path = \"/a\"\nhandler = \"redirect\"\nto = \"/\"\nheaders = { Location = \"/x\" }")
                + &route(
                    "b",
                    &format!("exact = \"/b\"\nhandler = \"static\"\nroot = \"{d}\"\nheaders = {{ ETag = \"x\", \"X-Ok\" = \"1\" }}"),
                ),
            vec![
                r#"x.toml:6:13: route[0].headers.Location: header "Location" is set by the "redirect" handler itself and cannot be configured"#.into(),
                r#"x.toml:9:9: route[1].exact: a "static" route needs `path` (a prefix): an exact match can reach no file below it"#.into(),
                r#"x.toml:12:13: route[1].headers.ETag: header "ETag" is set by the "static" handler itself and cannot be configured"#.into(),
            ],
        ),
        (
            route(
                "a",
                &format!("path = \"/\"\nhandler = \"static\"\nroot = \"{d}\"\nbody = \"x\"\nto = \"/\""),
            ),
            vec![
                r#"x.toml:6:8: route[0].body: "body" does not apply to handler "static" (only to "respond")"#.into(),
                r#"x.toml:7:6: route[0].to: "to" does not apply to handler "static" (only to "redirect")"#.into(),
            ],
        ),
        (
            route(
                "a",
                &format!("path = \"/\"\nhandler = \"static\"\nroot = \"{d}\"\nindex = [\"ok.html\", \"a/b\", \".\", \"..\", \"\"]"),
            ),
            vec![
                r#"x.toml:6:21: route[0].index[1]: invalid index file name "a/b" (a plain file name: no '/', NUL, "." or "..")"#.into(),
                r#"x.toml:6:28: route[0].index[2]: invalid index file name "." (a plain file name: no '/', NUL, "." or "..")"#.into(),
                r#"x.toml:6:33: route[0].index[3]: invalid index file name ".." (a plain file name: no '/', NUL, "." or "..")"#.into(),
                r#"x.toml:6:39: route[0].index[4]: invalid index file name "" (a plain file name: no '/', NUL, "." or "..")"#.into(),
            ],
        ),
        (
            route("a", "path = \"/\"\nhandler = \"redirect\"\nstatus = 200\nto = \"/x\"")
                + &route("b", "path = \"/b\"\nhandler = \"respond\"\nstatus = 301"),
            vec![
                "x.toml:5:10: route[0].status: 200 is not a redirect status (301, 302, 303, 307 or 308)".into(),
            ],
        ),
    ];
    for (text, want) in &cases {
        assert_eq!(errors(text), *want, "\n--- input:\n{text}");
    }
}

#[test]
fn redirect_targets_are_checked() {
    let ok = [
        "/",
        "/a/b?c#d",
        "https://example.com",
        "http://[::1]:8080/x",
        "git+ssh://h/p",
    ];
    for to in ok {
        let text = route(
            "a",
            &format!("path = \"/\"\nhandler = \"redirect\"\nto = \"{to}\""),
        );
        assert!(load_str(&text, FILE).is_ok(), "{to}");
    }
    const FORM: &str = "must be an absolute URL (scheme://host/...) or an absolute path (/...)";
    let bad = [
        ("", FORM),
        ("relative/path", FORM),
        ("https:/x", FORM),
        ("https:///x", FORM),
        ("1http://x", FORM),
        ("mailto:a@b", FORM),
        (
            "//evil.example",
            "must not start with \"//\" (browsers read that as a host name)",
        ),
        ("/a b", "must not contain whitespace or control characters"),
        (
            "/caf\u{e9}",
            "must be ASCII (percent-encode other characters)",
        ),
    ];
    for (to, reason) in bad {
        let text = route(
            "a",
            &format!("path = \"/\"\nhandler = \"redirect\"\nto = \"{to}\""),
        );
        assert_eq!(
            errors(&text),
            [format!(
                "x.toml:5:6: route[0].to: invalid redirect target {to:?}: {reason}"
            )],
        );
    }
}

#[test]
fn duplicate_matches_name_the_other_route() {
    let r = |name: &str, rest: &str| route(name, &format!("{rest}\nhandler = \"echo\""));
    check_table(&[
        (
            &(r("a", "path = \"/x\"") + &r("b", "path = \"/x/\"")),
            &[
                r#"x.toml:7:8: route[1].path: route "a" (line 3) already matches the same host, path and methods"#,
            ],
        ),
        (
            &(r(
                "a",
                "host = \"EXAMPLE.com\"\nexact = \"/x\"\nmethods = [\"GET\", \"PUT\"]",
            ) + &r(
                "b",
                "host = \"example.com\"\nexact = \"/x\"\nmethods = [\"POST\", \"PUT\", \"GET\"]",
            )),
            &[
                r#"x.toml:10:9: route[1].exact: route "a" (line 4) already matches the same host, path and methods GET, PUT"#,
            ],
        ),
        (
            &(r("a", "path = \"/\"\nmethods = [\"GET\"]")
                + &r("b", "host = \"*\"\npath = \"/\"\nmethods = [\"get\"]")),
            &[
                r#"x.toml:9:8: route[1].path: route "a" (line 3) already matches the same host, path and method GET"#,
            ],
        ),
        (
            &(r("a", "path = \"/\"") + &r("b", "host = \"*\"\npath = \"/\"")),
            &[
                r#"x.toml:8:8: route[1].path: route "a" (line 3) already matches the same host, path and methods"#,
            ],
        ),
    ]);
    // Different in any one part: host, path kind, path, or methods.
    let distinct = [
        (r("a", "path = \"/x\""), r("b", "exact = \"/x\"")),
        (
            r("a", "path = \"/x\""),
            r("b", "host = \"x.org\"\npath = \"/x\""),
        ),
        (
            r("a", "host = \"*.x.org\"\npath = \"/x\""),
            r("b", "host = \"x.org\"\npath = \"/x\""),
        ),
        (r("a", "exact = \"/x\""), r("b", "exact = \"/x/\"")),
        (
            r("a", "path = \"/x\"\nmethods = [\"GET\"]"),
            r("b", "path = \"/x\"\nmethods = [\"POST\"]"),
        ),
        (
            r("a", "path = \"/x\"\nmethods = [\"GET\"]"),
            r("b", "path = \"/x\""),
        ),
    ];
    for (first, second) in distinct {
        let text = first + &second;
        assert!(load_str(&text, FILE).is_ok(), "{text}");
    }
}

#[test]
fn static_roots_and_upload_dirs_are_checked_on_disk() {
    let dir = TempDir::new("fs");
    let file = dir.path().join("file.txt");
    std::fs::write(&file, "x").expect("write");
    let missing = dir.path().join("missing");
    let (file, missing) = (file.display(), missing.display());
    let text = route(
        "a",
        &format!("path = \"/a\"\nhandler = \"static\"\nroot = \"{missing}\""),
    ) + &route(
        "b",
        &format!("path = \"/b\"\nhandler = \"static\"\nroot = \"{file}\""),
    ) + &route(
        "c",
        &format!("path = \"/c\"\nhandler = \"upload\"\ndir = \"{missing}\""),
    ) + &route(
        "d",
        &format!("path = \"/d\"\nhandler = \"upload\"\ndir = \"{file}\""),
    );
    assert_eq!(
        errors(&text),
        [
            format!(
                "x.toml:5:8: route[0].root: cannot read directory \"{missing}\": No such file or directory (os error 2)"
            ),
            format!("x.toml:10:8: route[1].root: \"{file}\" is not a directory"),
            format!(
                "x.toml:15:7: route[2].dir: cannot write to directory \"{missing}\": No such file or directory (os error 2)"
            ),
            format!("x.toml:20:7: route[3].dir: \"{file}\" is not a directory"),
        ]
    );
    // A writable upload directory is left as it was found: the probe file is gone.
    let text = route(
        "u",
        &format!(
            "path = \"/\"\nhandler = \"upload\"\ndir = \"{}\"",
            dir.str()
        ),
    );
    load_str(&text, FILE).expect("valid");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["file.txt"]);
}

#[test]
fn unreadable_roots_and_unwritable_dirs_are_errors() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("perm");
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).expect("mkdir");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    // root (CAP_DAC_OVERRIDE) reads and writes anyway: nothing to check then.
    if std::fs::read_dir(&locked).is_ok() {
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        return;
    }
    let l = locked.display();
    let text = route(
        "a",
        &format!("path = \"/a\"\nhandler = \"static\"\nroot = \"{l}\""),
    ) + &route(
        "b",
        &format!("path = \"/b\"\nhandler = \"upload\"\ndir = \"{l}\""),
    );
    let got = errors(&text);
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    assert_eq!(
        got,
        [
            format!(
                "x.toml:5:8: route[0].root: cannot read directory \"{l}\": Permission denied (os error 13)"
            ),
            format!(
                "x.toml:10:7: route[1].dir: cannot write to directory \"{l}\": Permission denied (os error 13)"
            ),
        ]
    );
}

/// The commented examples in `etc/asycamore.toml` are valid once uncommented (with
/// directories that exist here).
#[test]
fn documented_examples_validate_when_uncommented() {
    let site = TempDir::new("doc-site");
    let uploads = TempDir::new("doc-uploads");
    let start = EMBEDDED_DEFAULT
        .find("# A static-file route")
        .expect("static example");
    let mut text = EMBEDDED_DEFAULT[..start].to_owned();
    for line in EMBEDDED_DEFAULT[start..].lines() {
        // "# key = ..." and "# [[route]]" are the example, "# # ..." its comments; the rest
        // is prose about it.
        let example = line.strip_prefix("# ").filter(|rest| {
            rest.starts_with("[[")
                || rest.starts_with("# ")
                || rest.split_once(" = ").is_some_and(|(key, _)| {
                    key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                })
        });
        text.push_str(example.unwrap_or(line));
        text.push('\n');
    }
    let text = text
        .replace("/var/www/site", site.str())
        .replace("/var/lib/asycamore/uploads", uploads.str())
        .replace("max_body_bytes = \"1G\"", "max_body_bytes = \"1M\"")
        .replace(
            "# headers = { \"X-Served-By\"",
            "headers = { \"X-Served-By\"",
        );
    let cfg = load_str(&text, EMBEDDED_NAME).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let kinds: Vec<&str> = cfg.routes.iter().map(|r| r.handler.kind()).collect();
    assert_eq!(
        kinds,
        ["respond", "echo", "static", "upload", "redirect", "proxy"]
    );
    assert_eq!(cfg.upstreams.len(), 1);
    assert_eq!(cfg.upstreams[0].servers.len(), 2);
    assert_eq!(
        cfg.routes[0].headers[0],
        ("X-Served-By".to_owned(), "asycamore".to_owned())
    );
}
