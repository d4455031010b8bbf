//! Unit tests of `load`: data-driven tables run through one checker.
use std::net::SocketAddr;
use std::time::Duration;

use super::*;
use crate::config::{HandlerSpec, HostPattern, Limits, PathPattern, RouteSpec, Timeouts};

use crate::config::error_tables::{FILE, check_table, errors};

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

fn default_limits() -> Limits {
    Limits {
        max_head_bytes: 16384,
        max_headers: 100,
        max_body_bytes: 1_048_576,
        max_chunk_extension_bytes: 4096,
        max_trailer_bytes: 8192,
        output_buffer_bytes: 65536,
        min_body_bytes_per_second: 500,
    }
}

fn default_timeouts() -> Timeouts {
    Timeouts {
        head: Duration::from_secs(10),
        body: Duration::from_secs(30),
        idle: Duration::from_secs(60),
        write: Duration::from_secs(30),
    }
}

#[test]
fn embedded_default_validates_to_the_documented_values() {
    let cfg = load_str(EMBEDDED_DEFAULT, EMBEDDED_NAME).expect("embedded default is valid");
    assert_eq!(cfg.listen, vec![addr("127.0.0.1:8080")]);
    assert_eq!(cfg.workers, cpus());
    assert_eq!(cfg.max_connections, 10_000);
    assert_eq!(cfg.max_requests_per_connection, 10_000);
    assert_eq!(cfg.limits, default_limits());
    assert_eq!(cfg.timeouts, default_timeouts());
    assert_eq!(
        cfg.routes,
        vec![
            RouteSpec {
                name: "hello".into(),
                host: HostPattern::Any,
                path: PathPattern::Prefix("/".into()),
                methods: vec![],
                max_body_bytes: 1_048_576,
                headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
                handler: HandlerSpec::Respond {
                    status: 200,
                    body: "Hello from asycamore\n".into(),
                },
            },
            RouteSpec {
                name: "echo".into(),
                host: HostPattern::Any,
                path: PathPattern::Prefix("/echo".into()),
                methods: vec![],
                max_body_bytes: 1_048_576,
                headers: vec![],
                handler: HandlerSpec::Echo,
            },
        ]
    );
}

/// The documented file states every default; an empty file must mean exactly the same.
#[test]
fn empty_file_means_the_documented_defaults_and_no_routes() {
    let empty = load_str("", FILE).expect("empty file is valid");
    let mut documented = load_str(EMBEDDED_DEFAULT, EMBEDDED_NAME).expect("valid");
    documented.routes.clear();
    assert_eq!(empty, documented);
    assert!(empty.routes.is_empty(), "zero routes is valid");
}

#[test]
fn full_example_validates_to_the_expected_config() {
    let text = r#"
[server]
listen = ["0.0.0.0:80", "[::1]:8443"]
workers = 4
max_connections = 1
max_requests_per_connection = 0
defer_accept = false

[limits]
max_head_bytes = 1024
max_headers = 256
max_body_bytes = 0
max_chunk_extension_bytes = 65536
max_trailer_bytes = 0
output_buffer_bytes = 16777216
min_body_bytes_per_second = 0

[timeouts]
head = "500ms"
body = "2m"
idle = "1h 30m"
write = "1day"

[[route]]
name = "api.v1-x_y"
path = "/api/v1/"
handler = "respond"
status = 599
headers = { "X-B" = "2", "x-a" = "caf\u00e9", "Cache-Control" = "no-store" }

[[route]]
name = "echo"
path = "/echo"
handler = "echo"
headers = { "X-Echo" = "yes" }

[[route]]
name = "root"
path = "/"
handler = "respond"
body = ""
"#;
    let cfg = load_str(text, FILE).expect("valid");
    let want = Config {
        listen: vec![addr("0.0.0.0:80"), addr("[::1]:8443")],
        workers: 4,
        max_connections: 1,
        max_requests_per_connection: 0,
        defer_accept: false,
        limits: Limits {
            max_head_bytes: 1024,
            max_headers: 256,
            max_body_bytes: 0,
            max_chunk_extension_bytes: 65536,
            max_trailer_bytes: 0,
            output_buffer_bytes: 16_777_216,
            min_body_bytes_per_second: 0,
        },
        timeouts: Timeouts {
            head: Duration::from_millis(500),
            body: Duration::from_secs(120),
            idle: Duration::from_secs(5400),
            write: Duration::from_secs(86400),
        },
        shutdown_timeout: Duration::from_secs(30),
        pidfile: None,
        user: None,
        group: None,
        log: crate::config::LogConfig::default(),
        access_log: None,
        admin: crate::config::AdminConfig::default(),
        upstreams: vec![],
        routes: vec![
            RouteSpec {
                name: "api.v1-x_y".into(),
                // Trailing '/' normalised away.
                host: HostPattern::Any,
                path: PathPattern::Prefix("/api/v1".into()),
                methods: vec![],
                max_body_bytes: 0,
                // File order, not the map's sorted order.
                headers: vec![
                    ("X-B".into(), "2".into()),
                    ("x-a".into(), "caf\u{e9}".into()),
                    ("Cache-Control".into(), "no-store".into()),
                ],
                handler: HandlerSpec::Respond {
                    status: 599,
                    body: String::new(),
                },
            },
            RouteSpec {
                name: "echo".into(),
                host: HostPattern::Any,
                path: PathPattern::Prefix("/echo".into()),
                methods: vec![],
                max_body_bytes: 0,
                headers: vec![("X-Echo".into(), "yes".into())],
                handler: HandlerSpec::Echo,
            },
            RouteSpec {
                name: "root".into(),
                host: HostPattern::Any,
                path: PathPattern::Prefix("/".into()),
                methods: vec![],
                max_body_bytes: 0,
                headers: vec![],
                handler: HandlerSpec::Respond {
                    status: 200,
                    body: String::new(),
                },
            },
        ],
    };
    assert_eq!(cfg, want);
}

#[test]
fn workers_zero_resolves_to_the_cpu_count() {
    let cfg = load_str("[server]\nworkers = 0\n", FILE).expect("valid");
    assert_eq!(cfg.workers, cpus());
    assert!(cfg.workers >= 1);
    let cfg = load_str("[server]\nworkers = 3\n", FILE).expect("valid");
    assert_eq!(cfg.workers, 3);
}

/// Deserializer-level problems: syntax, wrong type, unknown key, one per case. (Several in one
/// file, one per section or route, are covered by the tests after this one.)
/// Semantic problems, one kind per case (several cases report more than one error).
#[test]
fn validation_errors_are_located() {
    check_table(&[
        // --- server.listen
        (
            "[server]\nlisten = []\n",
            &["x.toml:2:10: server.listen: at least one listen address is required"],
        ),
        (
            "[server]\nlisten = [\"localhost:8080\", \"10.0.0.1\", \"1.2.3.4:99999\"]\n",
            &[
                r#"x.toml:2:11: server.listen[0]: "localhost:8080" is not a valid ip:port socket address"#,
                r#"x.toml:2:29: server.listen[1]: "10.0.0.1" is not a valid ip:port socket address"#,
                r#"x.toml:2:41: server.listen[2]: "1.2.3.4:99999" is not a valid ip:port socket address"#,
            ],
        ),
        (
            "[server]\nlisten = [\n  \"127.0.0.1:80\",\n  \"[::1]:80\",\n  \"127.0.0.1:80\",\n]\n",
            &[
                "x.toml:5:3: server.listen[2]: duplicate listen address 127.0.0.1:80 (first listed on line 3)",
            ],
        ),
        // --- timeouts
        (
            "[timeouts]\nhead = \"10\"\nbody = \"ten seconds\"\n",
            &[
                r#"x.toml:2:8: timeouts.head: "10" is not a duration: time unit needed, for example 10sec or 10ms"#,
                r#"x.toml:3:8: timeouts.body: "ten seconds" is not a duration: expected number at 0"#,
            ],
        ),
        (
            "[timeouts]\nidle = \"0s\"\nwrite = \"24h 1s\"\n",
            &[
                r#"x.toml:2:8: timeouts.idle: "0s" is out of range (must be more than 0 and at most 1 day)"#,
                r#"x.toml:3:9: timeouts.write: "24h 1s" is out of range (must be more than 0 and at most 1 day)"#,
            ],
        ),
        // --- routes: required keys are reported at the [[route]] header
        (
            "[[route]]\nname = \"a\"\n\n[[route]]\npath = \"/b\"\n",
            &[
                "x.toml:1:1: route[0].path: required key is missing: give `path` (a prefix match) or `exact` (one path)",
                "x.toml:1:1: route[0].handler: required key is missing",
                "x.toml:4:1: route[1].name: required key is missing",
                "x.toml:4:1: route[1].handler: required key is missing",
            ],
        ),
        (
            "[[route]]\nname = \"has space\"\npath = \"/\"\nhandler = \"echo\"\n\
             [[route]]\nname = \"\"\npath = \"/b\"\nhandler = \"echo\"\n",
            &[
                r#"x.toml:2:8: route[0].name: invalid route name "has space" (1 to 64 of A-Z a-z 0-9 _ . -)"#,
                r#"x.toml:6:8: route[1].name: invalid route name "" (1 to 64 of A-Z a-z 0-9 _ . -)"#,
            ],
        ),
        (
            "[[route]]\nname = \"a\"\npath = \"/\"\nhandler = \"echo\"\n\
             [[route]]\nname = \"a\"\npath = \"/b\"\nhandler = \"echo\"\n",
            &[r#"x.toml:6:8: route[1].name: duplicate route name "a" (first defined on line 2)"#],
        ),
        (
            "[[route]]\nname = \"a\"\npath = \"/echo\"\nhandler = \"echo\"\n\
             [[route]]\nname = \"b\"\npath = \"/echo/\"\nhandler = \"echo\"\n",
            &[
                r#"x.toml:7:8: route[1].path: route "a" (line 3) already matches the same host, path and methods"#,
            ],
        ),
        (
            "[[route]]\nname = \"a\"\npath = \"echo\"\nhandler = \"echo\"\n\
             [[route]]\nname = \"b\"\npath = \"/q?x=1\"\nhandler = \"echo\"\n\
             [[route]]\nname = \"c\"\npath = \"/f#top\"\nhandler = \"echo\"\n\
             [[route]]\nname = \"d\"\npath = \"/a b\"\nhandler = \"echo\"\n\
             [[route]]\nname = \"e\"\npath = \"/a\\u0000\"\nhandler = \"echo\"\n",
            &[
                r#"x.toml:3:8: route[0].path: invalid path "echo": must start with '/'"#,
                r#"x.toml:7:8: route[1].path: invalid path "/q?x=1": must not contain '?' (routes match the path only, never the query)"#,
                r#"x.toml:11:8: route[2].path: invalid path "/f#top": must not contain '#' (fragments never reach the server)"#,
                r#"x.toml:15:8: route[3].path: invalid path "/a b": must not contain whitespace or control characters"#,
                r#"x.toml:19:8: route[4].path: invalid path "/a\0": must not contain whitespace or control characters"#,
            ],
        ),
        (
            "[[route]]\nname = \"a\"\npath = \"/\"\nhandler = \"fastcgi\"\nstatus = 700\n",
            &[
                r#"x.toml:4:11: route[0].handler: unknown handler "fastcgi" (known: respond, echo, static, upload, redirect, proxy)"#,
                "x.toml:5:10: route[0].status: 700 is out of range 200..=599",
            ],
        ),
        (
            "[[route]]\nname = \"a\"\npath = \"/\"\nhandler = \"echo\"\nstatus = 200\nbody = \"hi\"\n",
            &[
                r#"x.toml:5:10: route[0].status: "status" does not apply to handler "echo" (only to "respond" and "redirect")"#,
                r#"x.toml:6:8: route[0].body: "body" does not apply to handler "echo" (only to "respond")"#,
            ],
        ),
        (
            "[[route]]\nname = \"a\"\npath = \"/\"\nhandler = \"respond\"\nstatus = 199\n",
            &["x.toml:5:10: route[0].status: 199 is out of range 200..=599"],
        ),
        (
            "[[route]]\nname = \"a\"\npath = \"/\"\nhandler = \"respond\"\nstatus = 204\nbody = \"x\"\n\
             [[route]]\nname = \"b\"\npath = \"/b\"\nhandler = \"respond\"\nstatus = 304\nbody = \"y\"\n",
            &[
                "x.toml:6:8: route[0].body: a 204 response cannot have a body (set status to one that allows content)",
                "x.toml:12:8: route[1].body: a 304 response cannot have a body (set status to one that allows content)",
            ],
        ),
        // RFC 9110 15.3.6: a server MUST NOT generate content in a 205 response.
        (
            "[[route]]\nname = \"a\"\npath = \"/\"\nhandler = \"respond\"\nstatus = 205\nbody = \"x\"\n",
            &[
                "x.toml:6:8: route[0].body: a 205 response cannot have a body (set status to one that allows content)",
            ],
        ),
        // --- headers
        (
            "[[route]]\nname = \"a\"\npath = \"/\"\nhandler = \"echo\"\n[route.headers]\n\
             \"X Bad\" = \"1\"\n\"X-Trail\" = \"v \"\n\"X-Ctl\" = \"a\\u0001b\"\n",
            &[
                r#"x.toml:6:1: route[0].headers."X Bad": invalid header name "X Bad" (must be an RFC 9110 token)"#,
                r#"x.toml:7:13: route[0].headers.X-Trail: invalid header value "v " (visible ASCII, obs-text, space and tab only; no leading or trailing whitespace)"#,
                r#"x.toml:8:11: route[0].headers.X-Ctl: invalid header value "a\u{1}b" (visible ASCII, obs-text, space and tab only; no leading or trailing whitespace)"#,
            ],
        ),
        (
            "[[route]]\nname = \"a\"\npath = \"/\"\nhandler = \"echo\"\n[route.headers]\n\
             content-length = \"5\"\nTransfer-Encoding = \"chunked\"\nCONNECTION = \"close\"\nDate = \"x\"\n",
            &[
                r#"x.toml:6:1: route[0].headers.content-length: header "content-length" is set by the server itself and cannot be configured"#,
                r#"x.toml:7:1: route[0].headers.Transfer-Encoding: header "Transfer-Encoding" is set by the server itself and cannot be configured"#,
                r#"x.toml:8:1: route[0].headers.CONNECTION: header "CONNECTION" is set by the server itself and cannot be configured"#,
                r#"x.toml:9:1: route[0].headers.Date: header "Date" is set by the server itself and cannot be configured"#,
            ],
        ),
        (
            "[[route]]\nname = \"a\"\npath = \"/\"\nhandler = \"echo\"\n\
             headers = { \"X-A\" = \"1\", \"x-a\" = \"2\" }\n",
            &[
                r#"x.toml:5:26: route[0].headers.x-a: duplicate header "x-a" (names are case-insensitive; "X-A" is already set)"#,
            ],
        ),
    ]);
}

/// Every integer key: the values just outside its documented range are rejected with the
/// exact message, and the boundaries themselves are accepted.
#[test]
fn every_integer_range_is_enforced_at_its_boundaries() {
    // (section, key, lowest valid, highest valid or None if unbounded)
    let ranges: &[(&str, &str, i64, Option<i64>, &str)] = &[
        ("server", "workers", 0, Some(1024), "0..=1024"),
        (
            "server",
            "max_connections",
            1,
            Some(1_048_576),
            "1..=1048576",
        ),
        ("server", "max_requests_per_connection", 0, None, "0.."),
        (
            "limits",
            "max_head_bytes",
            1024,
            Some(1_048_576),
            "1024..=1048576",
        ),
        ("limits", "max_headers", 1, Some(256), "1..=256"),
        ("limits", "max_body_bytes", 0, None, "0.."),
        (
            "limits",
            "max_chunk_extension_bytes",
            0,
            Some(65_536),
            "0..=65536",
        ),
        (
            "limits",
            "max_trailer_bytes",
            0,
            Some(1_048_576),
            "0..=1048576",
        ),
        (
            "limits",
            "output_buffer_bytes",
            4096,
            Some(16_777_216),
            "4096..=16777216",
        ),
        (
            "limits",
            "min_body_bytes_per_second",
            0,
            Some(1 << 30),
            "0..=1073741824",
        ),
    ];
    for &(section, key, min, max, range) in ranges {
        let doc = |v: i64| format!("[{section}]\n{key} = {v}\n");
        let col = key.len() + 4;
        let mut valid = vec![min];
        let mut invalid = vec![min - 1];
        match max {
            Some(max) => {
                valid.push(max);
                invalid.push(max + 1);
            }
            None => valid.push(i64::MAX),
        }
        for v in valid {
            assert!(
                load_str(&doc(v), FILE).is_ok(),
                "{section}.{key} = {v} should load"
            );
        }
        for v in invalid {
            let want = format!("x.toml:2:{col}: {section}.{key}: {v} is out of range {range}");
            assert_eq!(errors(&doc(v)), vec![want]);
        }
    }
    // The status code range lives in a route.
    for (v, ok) in [(199, false), (200, true), (599, true), (600, false)] {
        let doc =
            format!("[[route]]\nname = \"a\"\npath = \"/\"\nhandler = \"respond\"\nstatus = {v}\n");
        assert_eq!(load_str(&doc, FILE).is_ok(), ok, "status = {v}");
    }
    // Timeouts: the largest allowed is exactly one day, the smallest anything above zero.
    for (v, ok) in [
        ("1ns", true),
        ("1day", true),
        ("86400s", true),
        ("86401s", false),
    ] {
        let doc = format!("[timeouts]\nhead = \"{v}\"\n");
        assert_eq!(load_str(&doc, FILE).is_ok(), ok, "head = {v}");
    }
}

/// All problems in one file are reported, in file order, even though the checks run
/// section by section in a different order.
#[test]
fn several_errors_are_all_reported_in_file_order() {
    let text = r#"[[route]]
name = "a"
path = "nope"
handler = "echo"
status = 200

[timeouts]
head = "0s"

[limits]
max_headers = 257
max_head_bytes = 10

[server]
listen = ["127.0.0.1:80", "127.0.0.1:80"]
workers = -1

[[route]]
name = "a"
path = "/"
handler = "respond"
headers = { Date = "today" }
"#;
    let got = errors(text);
    let want = [
        r#"x.toml:3:8: route[0].path: invalid path "nope": must start with '/'"#,
        r#"x.toml:5:10: route[0].status: "status" does not apply to handler "echo" (only to "respond" and "redirect")"#,
        r#"x.toml:8:8: timeouts.head: "0s" is out of range (must be more than 0 and at most 1 day)"#,
        "x.toml:11:15: limits.max_headers: 257 is out of range 1..=256",
        "x.toml:12:18: limits.max_head_bytes: 10 is out of range 1024..=1048576",
        "x.toml:15:27: server.listen[1]: duplicate listen address 127.0.0.1:80 (first listed on line 15)",
        "x.toml:16:11: server.workers: -1 is out of range 0..=1024",
        r#"x.toml:19:8: route[1].name: duplicate route name "a" (first defined on line 2)"#,
        r#"x.toml:22:13: route[1].headers.Date: header "Date" is set by the server itself and cannot be configured"#,
    ];
    assert_eq!(got, want);
    // And the aggregate renders one error per line.
    let rendered = load_str(text, FILE).expect_err("invalid").to_string();
    assert_eq!(rendered.lines().collect::<Vec<_>>(), want);
}

#[test]
fn errors_carry_structured_fields() {
    let errs =
        load_str("[server]\n  workers = 2000\n", "/etc/asycamore.toml").expect_err("invalid");
    assert_eq!(errs.0.len(), 1);
    let e = &errs.0[0];
    assert_eq!(
        (e.file.as_str(), e.line, e.column),
        ("/etc/asycamore.toml", 2, 13)
    );
    assert_eq!(e.key, "server.workers");
    assert!(matches!(
        e.kind,
        ConfigErrorKind::OutOfRange { value: 2000, .. }
    ));
}

#[test]
fn columns_count_chars_not_bytes() {
    // The two-byte 'é' before the bad value must count as one column.
    let text = "[[route]]\nname = \"a\"\npath = \"/\"\nhandler = \"echo\"\nheaders = { \"X-\u{e9}\" = \"1\" }\n";
    assert_eq!(
        errors(text),
        [
            r#"x.toml:5:13: route[0].headers."X-é": invalid header name "X-é" (must be an RFC 9110 token)"#
        ]
    );
}

#[test]
fn load_file_reads_and_reports_unreadable_files() {
    let dir = std::env::temp_dir().join(format!("asycamore-cfg-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let good = dir.join("good.toml");
    std::fs::write(&good, EMBEDDED_DEFAULT).expect("write");
    let cfg = load_file(&good).expect("valid file");
    assert_eq!(cfg.routes.len(), 2);

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[server]\nworkers = 5000\n").expect("write");
    let errs = load_file(&bad).expect_err("invalid file");
    assert_eq!(
        errs.to_string(),
        format!(
            "{}:2:11: server.workers: 5000 is out of range 0..=1024",
            bad.display()
        )
    );

    let missing = dir.join("missing.toml");
    let errs = load_file(&missing).expect_err("missing file");
    assert!(matches!(errs.0[0].kind, ConfigErrorKind::Read(_)));
    assert_eq!(
        errs.to_string(),
        format!(
            "{}: cannot read: No such file or directory (os error 2)",
            missing.display()
        )
    );
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
