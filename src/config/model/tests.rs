//! Unit tests of `model`: the known-key lists stay in step with the serde structs.
use serde::de::DeserializeOwned;

use super::upstream::{UPSTREAM_KEYS, UPSTREAM_SERVER_KEYS};
use super::*;
use crate::config::{Limits, load_str};
use source::backticked;
use toml::de::{DeValue, ValueDeserializer};

/// Deserialize `text` as one section of type `T`; serde's error message on failure.
fn deserialize<T: DeserializeOwned + std::fmt::Debug>(text: &str) -> Result<T, String> {
    let table = DeTable::parse(text).expect("valid toml");
    let value = Spanned::new(table.span(), DeValue::Table(table.into_inner()));
    T::deserialize(ValueDeserializer::from(value)).map_err(|e| e.message().to_owned())
}

/// Each list is exactly its struct's serde fields, in declaration order (the order the
/// `UnknownKey` message lists them): serde's own unknown-field message for a table holding a
/// key no struct has names every field; and a table holding each listed key (with a value of
/// the wrong type, one key at a time since serde stops at the first) fails on the value, never
/// as an unknown field.
fn check<T: DeserializeOwned + std::fmt::Debug>(keys: &[&str]) {
    let name = std::any::type_name::<T>();
    let message = deserialize::<T>("\"not a field\" = 0\n").expect_err(name);
    let tail = message
        .strip_prefix("unknown field `not a field`")
        .unwrap_or_else(|| panic!("{name}: not an unknown-field error: {message}"));
    assert_eq!(backticked(tail), keys, "{name}");
    for key in keys {
        let message = deserialize::<T>(&format!("{key} = {{ x = 1 }}\n")).expect_err(key);
        assert!(
            message.starts_with("invalid type"),
            "{name}.{key}: {message}"
        );
    }
}

#[test]
fn known_key_lists_match_the_structs_serde_fields() {
    check::<RawServer>(SERVER_KEYS);
    check::<RawLimits>(LIMITS_KEYS);
    check::<RawTimeouts>(TIMEOUTS_KEYS);
    check::<RawLog>(LOG_KEYS);
    check::<RawAccessLog>(ACCESS_LOG_KEYS);
    check::<RawAdmin>(ADMIN_KEYS);
    check::<RawDefaults>(DEFAULTS_KEYS);
    check::<RawRoute>(ROUTE_KEYS);
    check::<RawUpstream>(UPSTREAM_KEYS);
    check::<RawUpstreamServer>(UPSTREAM_SERVER_KEYS);
}

// Whole documents through `load_str`: what the parse step reports, and where.

use crate::config::error_tables::{FILE, check_table, errors};

#[test]
fn parse_errors_are_located() {
    check_table(&[
        // Unclosed string: reported where the line ends without the closing quote.
        (
            "[server]\nworkers = \"4\nmax_connections = 1\n",
            &[r#"x.toml:2:13: invalid basic string, expected `"`"#],
        ),
        ("[server\n", &["x.toml:1:8: unclosed table, expected `]`"]),
        (
            "[server]\nworkers = 1\n[server]\n",
            &["x.toml:3:2: duplicate key"],
        ),
        (
            "[server]\nlistn = [\"127.0.0.1:80\"]\n",
            &[
                "x.toml:2:1: server.listn: unknown key; did you mean `listen`? (expected one of: listen, workers, \
                 max_connections, max_requests_per_connection, defer_accept, shutdown_timeout, pidfile, user, group, via)",
            ],
        ),
        (
            "[server]\n\"bad key\" = 1\n",
            &[
                "x.toml:2:1: server.\"bad key\": unknown key (expected one of: listen, workers, \
                 max_connections, max_requests_per_connection, defer_accept, shutdown_timeout, pidfile, user, group, via)",
            ],
        ),
        (
            "[server.tls]\n",
            &[
                "x.toml:1:9: server.tls: unknown key (expected one of: listen, workers, \
                 max_connections, max_requests_per_connection, defer_accept, shutdown_timeout, pidfile, user, group, via)",
            ],
        ),
        (
            "logs = \"debug\"\n",
            &[
                "x.toml:1:1: logs: unknown key; did you mean `log`? (expected one of: server, limits, timeouts, log, access_log, admin, defaults, route, upstream)",
            ],
        ),
        (
            "[[route]]\nname = \"a\"\npath = \"/\"\nhandler = \"echo\"\nstatuss = 200\n",
            &[
                "x.toml:5:1: route[0].statuss: unknown key; did you mean `status`? (expected one of: name, host, path, exact, methods, max_body_bytes, headers, \
             handler, status, body, root, index, listing, follow_symlinks_outside_root, dir, \
             fsync, to, keep_path, keep_query, upstream, proxy_host)",
            ],
        ),
        (
            "[limits]\nmax_headers = \"100\"\n",
            &[
                r#"x.toml:2:15: limits.max_headers: wrong type: expected an integer, found string "100""#,
            ],
        ),
        (
            "[limits]\nmax_body_bytes = 1.5\n",
            &[
                "x.toml:2:18: limits.max_body_bytes: wrong type: expected an integer or a size string like \"10M\", found floating point `1.5`",
            ],
        ),
        (
            "[timeouts]\nidle = 60\n",
            &["x.toml:2:8: timeouts.idle: wrong type: expected a string, found integer `60`"],
        ),
        (
            "[server]\nlisten = \"127.0.0.1:80\"\n",
            &[
                r#"x.toml:2:10: server.listen: wrong type: expected an array, found string "127.0.0.1:80""#,
            ],
        ),
        (
            "[server]\nlisten = [\"127.0.0.1:80\", 81]\n",
            &["x.toml:2:27: server.listen[1]: wrong type: expected a string, found integer `81`"],
        ),
        (
            "server = 5\n",
            &["x.toml:1:10: server: wrong type: expected a table, found integer `5`"],
        ),
        (
            "route = { name = \"a\" }\n",
            &["x.toml:1:9: route: wrong type: expected an array, found a table"],
        ),
        (
            "[[route]]\nname = \"a\"\npath = \"/\"\nhandler = \"echo\"\nheaders = { \"X-A\" = 1 }\n",
            &[
                "x.toml:5:21: route[0].headers.X-A: wrong type: expected a string, found integer `1`",
            ],
        ),
        (
            "[[route]]\nheaders = { \"Bad Name.x\" = true }\nname = \"a\"\npath = \"/\"\nhandler = \"echo\"\n",
            &[
                r#"x.toml:2:28: route[0].headers."Bad Name.x": wrong type: expected a string, found boolean `true`"#,
            ],
        ),
        (
            "[server]\nworkers = 99999999999999999999\n",
            &[
                "x.toml:2:11: server.workers: 99999999999999999999 does not fit in a 64-bit signed integer",
            ],
        ),
    ]);
}

/// The operator's case: deserializer errors in four different parts of the file are all
/// reported at once, in file order, each with its own key path and position.
#[test]
fn deserializer_errors_in_different_parts_are_all_reported() {
    let text = r#"[server]
listen = ["127.0.0.1:8080"]
wokers = 4

[limits]
max_headers = "100"

[[route]]
name = "hello"
path = "/"
handler = "respond"

[[route]]
name = "a"
path = "/a"
handler = "echo"
stauts = 200

[[route]]
name = "b"
path = "/b"
handler = "respond"
bodyy = "hi"
"#;
    assert_eq!(
        errors(text),
        [
            "x.toml:3:1: server.wokers: unknown key; did you mean `workers`? (expected one of: listen, workers, \
             max_connections, max_requests_per_connection, defer_accept, shutdown_timeout, pidfile, user, group, via)",
            r#"x.toml:6:15: limits.max_headers: wrong type: expected an integer, found string "100""#,
            "x.toml:17:1: route[1].stauts: unknown key; did you mean `status`? (expected one of: name, host, path, exact, methods, max_body_bytes, headers, \
             handler, status, body, root, index, listing, follow_symlinks_outside_root, dir, \
             fsync, to, keep_path, keep_query, upstream, proxy_host)",
            "x.toml:23:1: route[2].bodyy: unknown key; did you mean `body`? (expected one of: name, host, path, exact, methods, max_body_bytes, headers, \
             handler, status, body, root, index, listing, follow_symlinks_outside_root, dir, \
             fsync, to, keep_path, keep_query, upstream, proxy_host)",
        ]
    );
}

/// A wrong type does not hide the other errors of its part: the key is reported and removed,
/// and the rest of the part is still checked (`max_head_bytes = 10` beside `max_headers = 1.5`;
/// route[1]'s name clash beside its string status), once (a removed key is not "missing" too).
/// An unknown key does not fail its part either: `server.tls` is reported and `workers = -1`
/// still checked.
#[test]
fn a_wrong_type_hides_no_other_error_of_its_part() {
    let text = r#"[server]
workers = -1
tls = true

[limits]
max_head_bytes = 10
max_headers = 1.5

[timeouts]
idle = "0s"

[[route]]
name = "a"
path = "nope"
handler = "echo"

[[route]]
name = "a"
path = "/b"
handler = "respond"
status = "200"

[[route]]
name = "a"
handler = "respond"
headers = { Date = "today" }
"#;
    assert_eq!(
        errors(text),
        [
            "x.toml:2:11: server.workers: -1 is out of range 0..=1024",
            "x.toml:3:1: server.tls: unknown key (expected one of: listen, workers, \
             max_connections, max_requests_per_connection, defer_accept, shutdown_timeout, pidfile, user, group, via)",
            "x.toml:6:18: limits.max_head_bytes: 10 is out of range 1024..=1048576",
            "x.toml:7:15: limits.max_headers: wrong type: expected an integer, found floating point `1.5`",
            r#"x.toml:10:8: timeouts.idle: "0s" is out of range (must be more than 0 and at most 1 day)"#,
            r#"x.toml:14:8: route[0].path: invalid path "nope": must start with '/'"#,
            r#"x.toml:18:8: route[1].name: duplicate route name "a" (first defined on line 13)"#,
            r#"x.toml:21:10: route[1].status: wrong type: expected an integer, found string "200""#,
            // route[2]'s missing path is reported at its own [[route]] header.
            "x.toml:23:1: route[2].path: required key is missing: give `path` (a prefix match) or `exact` (one path)",
            r#"x.toml:24:8: route[2].name: duplicate route name "a" (first defined on line 13)"#,
            r#"x.toml:26:13: route[2].headers.Date: header "Date" is set by the server itself and cannot be configured"#,
        ]
    );
}

/// Several wrong types in one section are all reported, with the section's other errors, in
/// file order; a required key of the wrong type is not reported as missing too (`name`,
/// `handler`, `exact` standing in for `path`), and a wrong-typed `limits.max_body_bytes` does
/// not make routes be judged against the default.
#[test]
fn every_wrong_type_of_a_section_is_reported_with_its_other_errors() {
    check_table(&[
        (
            "[server]\nworkers = \"4\"\nmax_connections = 0\ndefer_accept = \"yes\"\nlisten = [\"nope\"]\n",
            &[
                r#"x.toml:2:11: server.workers: wrong type: expected an integer, found string "4""#,
                "x.toml:3:19: server.max_connections: 0 is out of range 1..=1048576",
                r#"x.toml:4:16: server.defer_accept: wrong type: expected a boolean, found string "yes""#,
                r#"x.toml:5:11: server.listen[0]: "nope" is not a valid ip:port socket address"#,
            ],
        ),
        (
            "[[route]]\nname = 1\nexact = 2\nhandler = true\nmax_body_bytes = -1\n",
            &[
                "x.toml:2:8: route[0].name: wrong type: expected a string, found integer `1`",
                "x.toml:3:9: route[0].exact: wrong type: expected a string, found integer `2`",
                "x.toml:4:11: route[0].handler: wrong type: expected a string, found boolean `true`",
                "x.toml:5:18: route[0].max_body_bytes: -1 is out of range 0..",
            ],
        ),
        (
            "[limits]\nmax_body_bytes = true\nmax_headers = 0\n\n[[route]]\nname = \"a\"\npath = \"/\"\n\
             handler = \"echo\"\nmax_body_bytes = 5000000\n",
            &[
                "x.toml:2:18: limits.max_body_bytes: wrong type: expected an integer or a size string like \"10M\", found boolean `true`",
                "x.toml:3:15: limits.max_headers: 0 is out of range 1..=256",
            ],
        ),
    ]);
}

/// Every byte-size key takes an integer or a string with a 1024-based unit.
#[test]
fn byte_sizes_take_units() {
    let text = r#"
[limits]
max_head_bytes = "32K"
max_body_bytes = "1GiB"
max_chunk_extension_bytes = "1KiB"
max_trailer_bytes = "512k"
output_buffer_bytes = "1M"
min_body_bytes_per_second = "1 KiB"

[defaults]
max_body_bytes = "10M"

[[route]]
name = "up"
path = "/up"
handler = "echo"
max_body_bytes = "512MiB"

[[route]]
name = "small"
path = "/small"
handler = "echo"
max_body_bytes = 4096
"#;
    let cfg = load_str(text, FILE).expect("valid");
    assert_eq!(
        cfg.limits,
        Limits {
            max_head_bytes: 32 << 10,
            max_headers: 100,
            max_body_bytes: 1 << 30,
            max_chunk_extension_bytes: 1024,
            max_trailer_bytes: 512 << 10,
            output_buffer_bytes: 1 << 20,
            min_body_bytes_per_second: 1024,
        }
    );
    let limits: Vec<u64> = cfg.routes.iter().map(|r| r.max_body_bytes).collect();
    assert_eq!(limits, [512 << 20, 4096]);
}

/// A bad size is located at its value with its key, says why, and hides nothing else.
#[test]
fn bad_byte_sizes_are_located() {
    check_table(&[
        (
            "[limits]\nmax_body_bytes = \"10MB\"\nmax_head_bytes = \"1.5K\"\nmax_trailer_bytes = \"2G\"\n\
         output_buffer_bytes = \"lots\"\nmin_body_bytes_per_second = \"5T\"\n\n[defaults]\n\
         max_body_bytes = \"2M\"\n\n[[route]]\nname = \"a\"\npath = \"/\"\nhandler = \"echo\"\n\
         max_body_bytes = \"1 GiB\"\n",
            &[
                r#"x.toml:2:18: limits.max_body_bytes: "10MB" is not a byte size: KB, MB and GB are ambiguous: write K, M, G or KiB, MiB, GiB (all 1024-based), or the number of bytes"#,
                r#"x.toml:3:18: limits.max_head_bytes: "1.5K" is not a byte size: fractions are not accepted: use a smaller unit ("1536K", not "1.5M")"#,
                r#"x.toml:4:21: limits.max_trailer_bytes: "2G" (2147483648 bytes) is out of range 0..=1048576"#,
                r#"x.toml:5:23: limits.output_buffer_bytes: "lots" is not a byte size: expected a whole number of bytes, optionally with a unit ("512K", "10M", "1GiB")"#,
                r#"x.toml:6:29: limits.min_body_bytes_per_second: "5T" is not a byte size: unknown unit (K, M, G, KiB, MiB, GiB, all 1024-based, or B for bytes)"#,
            ],
        ),
        (
            "[limits]\nmax_body_bytes = \"1M\"\n\n[defaults]\nmax_body_bytes = \"2M\"\n\n[[route]]\n\
         name = \"a\"\npath = \"/\"\nhandler = \"echo\"\nmax_body_bytes = \"1 GiB\"\n",
            &[
                r#"x.toml:5:18: defaults.max_body_bytes: "2M" (2097152 bytes) is above limits.max_body_bytes (1048576), which applies to every request"#,
                r#"x.toml:11:18: route[0].max_body_bytes: "1 GiB" (1073741824 bytes) is above limits.max_body_bytes (1048576), which applies to every request"#,
            ],
        ),
    ]);
}

/// A route that sets no body limit gets `[defaults] max_body_bytes`, whose default is 1 MiB
/// (or `limits.max_body_bytes` when lower), never `limits.max_body_bytes` raised: raising the
/// ceiling for an upload route leaves every other route at the default.
#[test]
fn raising_the_server_body_limit_does_not_raise_the_routes() {
    let route = "[[route]]\nname = \"a\"\npath = \"/\"\nhandler = \"echo\"\n";
    let cases = [
        ("", 1 << 20),
        ("[limits]\nmax_body_bytes = \"1G\"\n", 1 << 20),
        ("[limits]\nmax_body_bytes = 1000\n", 1000),
        (
            "[limits]\nmax_body_bytes = \"1G\"\n[defaults]\nmax_body_bytes = \"100M\"\n",
            100 << 20,
        ),
    ];
    for (head, want) in cases {
        let text = format!("{head}{route}");
        let cfg = load_str(&text, FILE).expect("valid");
        assert_eq!(cfg.routes[0].max_body_bytes, want, "\n{text}");
    }
}

/// A relative directory is resolved against the working directory, and an error about it
/// names that directory (the operator's shell may be elsewhere than the daemon's).
#[test]
fn a_relative_directory_error_names_the_working_directory() {
    let cwd = std::env::current_dir().expect("working directory");
    let text = "[[route]]\nname = \"a\"\npath = \"/\"\nhandler = \"static\"\nroot = \"no-such-dir-asycamore\"\n\n\
                [[route]]\nname = \"b\"\npath = \"/b\"\nhandler = \"upload\"\ndir = \"Cargo.toml\"\n\n\
                [[route]]\nname = \"c\"\npath = \"/c\"\nhandler = \"static\"\nroot = \"/no-such-dir-asycamore\"\n";
    assert_eq!(
        errors(text),
        [
            format!(
                "x.toml:5:8: route[0].root: cannot read directory \"no-such-dir-asycamore\": No such file or \
                 directory (os error 2) (a relative path, resolved against the working directory {:?})",
                cwd.display().to_string()
            ),
            format!(
                "x.toml:11:7: route[1].dir: \"Cargo.toml\" is not a directory (a relative path, resolved \
                 against the working directory {:?})",
                cwd.display().to_string()
            ),
            "x.toml:17:8: route[2].root: cannot read directory \"/no-such-dir-asycamore\": No such file or \
             directory (os error 2)"
                .to_owned(),
        ]
    );
}

/// An unknown key names the nearest known key of its table when it is close enough to be a
/// typo (a third of its length in edits, at least one), and nothing when none is.
#[test]
fn unknown_keys_suggest_the_nearest_known_key() {
    check_table(&[
        (
            "[limits]\nmax_body_byte = 1\n",
            &[
                "x.toml:2:1: limits.max_body_byte: unknown key; did you mean `max_body_bytes`? (expected one of: \
                 max_head_bytes, max_headers, max_body_bytes, max_chunk_extension_bytes, max_trailer_bytes, \
                 output_buffer_bytes, min_body_bytes_per_second)",
            ],
        ),
        (
            "[timeout]\n",
            &[
                "x.toml:1:2: timeout: unknown key; did you mean `timeouts`? (expected one of: server, limits, \
                 timeouts, log, access_log, admin, defaults, route, upstream)",
            ],
        ),
        (
            "[log]\nLevel = \"info\"\n",
            &[
                "x.toml:2:1: log.Level: unknown key; did you mean `level`? (expected one of: level, target, \
                 file, syslog_facility, syslog_tag)",
            ],
        ),
        (
            "[timeouts]\nkeepalive = \"5s\"\n",
            &[
                "x.toml:2:1: timeouts.keepalive: unknown key (expected one of: head, body, idle, write)",
            ],
        ),
    ]);
}

/// Each unknown top-level key is its own error at its own position, in file order (the parsed
/// table itself is sorted by key, so this also checks the final sort).
#[test]
fn every_unknown_top_level_key_is_reported() {
    assert_eq!(
        errors("zeta = 1\nalpha = 2\n\n[server]\nworkers = 2000\n\n[stats]\ntoken = \"x\"\n"),
        [
            "x.toml:1:1: zeta: unknown key (expected one of: server, limits, timeouts, log, access_log, admin, defaults, route, upstream)",
            "x.toml:2:1: alpha: unknown key (expected one of: server, limits, timeouts, log, access_log, admin, defaults, route, upstream)",
            "x.toml:5:11: server.workers: 2000 is out of range 0..=1024",
            "x.toml:7:2: stats: unknown key (expected one of: server, limits, timeouts, log, access_log, admin, defaults, route, upstream)",
        ]
    );
}

/// Unknown keys inside a section or route are each reported (the table is sorted by key, so
/// this also checks the final sort), and do not hide that part's semantic checks.
#[test]
fn unknown_keys_in_a_section_do_not_hide_its_other_errors() {
    assert_eq!(
        errors(
            "[server]\nzz = 1\nworkers = 5000\naa = 2\n\n[[route]]\nname = \"a\"\npath = \"/\"\n\
             handler = \"respond\"\nstauts = 200\nstatus = 999\n\n[[route]]\nname = \"a\"\n\
             path = \"/b\"\nhandler = \"echo\"\n"
        ),
        [
            "x.toml:2:1: server.zz: unknown key (expected one of: listen, workers, \
             max_connections, max_requests_per_connection, defer_accept, shutdown_timeout, pidfile, user, group, via)",
            "x.toml:3:11: server.workers: 5000 is out of range 0..=1024",
            "x.toml:4:1: server.aa: unknown key (expected one of: listen, workers, \
             max_connections, max_requests_per_connection, defer_accept, shutdown_timeout, pidfile, user, group, via)",
            "x.toml:10:1: route[0].stauts: unknown key; did you mean `status`? (expected one of: name, host, path, exact, methods, max_body_bytes, headers, \
             handler, status, body, root, index, listing, follow_symlinks_outside_root, dir, \
             fsync, to, keep_path, keep_query, upstream, proxy_host)",
            "x.toml:11:10: route[0].status: 999 is out of range 200..=599",
            r#"x.toml:14:8: route[1].name: duplicate route name "a" (first defined on line 7)"#,
        ]
    );
}

/// A syntax error is reported alone, at its line: nothing after it is trustworthy, so the
/// unknown keys around it are not reported (they will be once the syntax is fixed).
#[test]
fn a_syntax_error_is_reported_alone_at_its_line() {
    let text = "[server]\nwokers = 4\n\n[limits]\nmax_headers = \"100\n\n[[route]]\nstauts = 200\n";
    assert_eq!(
        errors(text),
        [r#"x.toml:5:19: invalid basic string, expected `"`"#]
    );
}

/// Each part is deserialized from a value cut out of the one parse of the whole file, so its
/// spans are byte offsets into that file: errors late in the file, several on one line, and
/// after multi-byte characters all land on the right line and column.
#[test]
fn spans_stay_absolute_when_parts_are_deserialized_separately() {
    check_table(&[
        // Two routes on one line: each element's errors at its own column.
        (
            "route = [1, { name = \"a\" }, { name = \"b\", path = \"/\", handler = \"echo\", x = 1 }]\n",
            &[
                "x.toml:1:10: route[0]: wrong type: expected a table, found integer `1`",
                "x.toml:1:13: route[1].path: required key is missing: give `path` (a prefix match) or `exact` (one path)",
                "x.toml:1:13: route[1].handler: required key is missing",
                "x.toml:1:73: route[2].x: unknown key (expected one of: name, host, path, exact, methods, max_body_bytes, headers, \
             handler, status, body, root, index, listing, follow_symlinks_outside_root, dir, \
             fsync, to, keep_path, keep_query, upstream, proxy_host)",
            ],
        ),
        // Multi-byte text before the error, and a wrong type nested in a later route's map.
        (
            "# caf\u{e9} \u{2603}\n[[route]]\nname = \"\u{e9}\"\npath = \"/\"\nhandler = \"echo\"\n\
             [[route]]\nname = \"b\"\npath = \"/b\"\nhandler = \"echo\"\n\
             headers = { \"X-\u{e9}\" = 1 }\n",
            &[
                r#"x.toml:3:8: route[0].name: invalid route name "é" (1 to 64 of A-Z a-z 0-9 _ . -)"#,
                r#"x.toml:10:21: route[1].headers."X-é": wrong type: expected a string, found integer `1`"#,
            ],
        ),
    ]);
}

/// `[[upstream]]` is parsed like `[[route]]`, one table at a time, and each of its server
/// entries has its unknown keys reported and removed too, located inside the inline table: a
/// typo in one server hides neither the upstream's other problems nor another upstream's.
#[test]
fn upstream_parse_errors_are_located_and_hide_nothing() {
    const SERVER_KEYS: &str = "(expected one of: address, weight, max_connections)";
    let text = r#"[[upstream]]
name = "a"
servers = [
  { address = "127.0.0.1:1", wieght = 2 },
  { adress = "127.0.0.1:2", weight = 0 },
]
balanse = "round_robin"
max_idle = -1

[[upstream]]
name = "b"
servers = ["127.0.0.1:3"]
max_fails = 1001

[[upstream]]
name = "c"
servers = [{ address = "127.0.0.1:4", max_connections = "lots" }]
"#;
    assert_eq!(
        errors(text),
        [
            format!("x.toml:4:30: upstream[0].servers[0].wieght: unknown key; did you mean `weight`? {SERVER_KEYS}"),
            "x.toml:5:3: upstream[0].servers[1].address: required key is missing".to_owned(),
            format!("x.toml:5:5: upstream[0].servers[1].adress: unknown key; did you mean `address`? {SERVER_KEYS}"),
            "x.toml:5:38: upstream[0].servers[1].weight: 0 is out of range 1..=1000".to_owned(),
            "x.toml:7:1: upstream[0].balanse: unknown key; did you mean `balance`? (expected one of: name, servers, \
             balance, connect_timeout, read_timeout, write_timeout, idle_timeout, max_idle, \
             max_fails, fail_timeout, via, next_upstream, next_upstream_tries)"
                .to_owned(),
            "x.toml:8:12: upstream[0].max_idle: -1 is out of range 0..=10000".to_owned(),
            // A wrong type hides neither its upstream's other errors nor the next upstream's.
            r#"x.toml:12:12: upstream[1].servers[0]: wrong type: expected a table, found string "127.0.0.1:3""#
                .to_owned(),
            "x.toml:13:13: upstream[1].max_fails: 1001 is out of range 0..=1000".to_owned(),
            r#"x.toml:17:57: upstream[2].servers[0].max_connections: wrong type: expected an integer, found string "lots""#
                .to_owned(),
        ]
    );
    check_table(&[
        (
            "[upstream]\nname = \"a\"\n",
            &["x.toml:1:1: upstream: wrong type: expected an array, found a table"],
        ),
        (
            "upstream = 5\n",
            &["x.toml:1:12: upstream: wrong type: expected an array, found integer `5`"],
        ),
        (
            "[[upstream]]\nname = \"a\"\nservers = { address = \"127.0.0.1:1\" }\n",
            &["x.toml:3:11: upstream[0].servers: wrong type: expected an array, found a table"],
        ),
    ]);
}
