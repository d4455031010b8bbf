//! Unit tests of `[[upstream]]` and of the proxy route keys (`upstream`, `proxy_host`): every
//! default, every range edge, address forms and name resolution, and each error located.
//! Data-driven tables of exact rendered errors, like `validate/tests.rs`.

use std::net::SocketAddr;
use std::time::Duration;

use super::{Written, written_address};
use crate::config::{
    Balance, Config, ConfigErrors, HandlerSpec, NextUpstream, ProxyHost, ServerSettings,
    UpstreamAddress, UpstreamSettings, load_str_with, loopback_resolver,
};

const FILE: &str = "x.toml";

/// Loads `text` resolving host names with the loopback resolver: these tests never ask a name
/// server (`localhost` is 127.0.0.1 and ::1, any other name fails).
fn load_str(text: &str, file: &str) -> Result<Config, ConfigErrors> {
    load_str_with(text, file, loopback_resolver)
}

fn errors(text: &str) -> Vec<String> {
    match load_str(text, FILE) {
        Ok(cfg) => panic!("expected errors, got {cfg:?}\n--- input:\n{text}"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

fn valid(text: &str) -> Config {
    load_str(text, FILE).unwrap_or_else(|e| panic!("{e}\n--- input:\n{text}"))
}

fn check_table(cases: &[(String, Vec<String>)]) {
    for (text, want) in cases {
        assert_eq!(errors(text), *want, "\n--- input:\n{text}");
    }
}

fn tcp(addr: &str) -> UpstreamAddress {
    UpstreamAddress::Tcp(addr.parse().expect("test address"))
}

fn server(address: UpstreamAddress, weight: u32, max_connections: usize) -> ServerSettings {
    ServerSettings {
        address,
        weight,
        max_connections,
    }
}

/// An `[[upstream]]` named `name` with `servers` (the inside of the array) and `rest`.
fn upstream(name: &str, servers: &str, rest: &str) -> String {
    format!("[[upstream]]\nname = \"{name}\"\nservers = [{servers}]\n{rest}\n")
}

/// A proxy route named `name` on `path`, with `rest`.
fn proxy_route(name: &str, path: &str, rest: &str) -> String {
    format!("[[route]]\nname = \"{name}\"\npath = \"{path}\"\nhandler = \"proxy\"\n{rest}\n")
}

#[test]
fn an_upstream_and_a_proxy_route_take_every_default() {
    let text = upstream("app", "{ address = \"127.0.0.1:9000\" }", "")
        + &proxy_route("app", "/", "upstream = \"app\"");
    let cfg = valid(&text);
    assert_eq!(
        cfg.upstreams,
        [UpstreamSettings {
            name: "app".into(),
            servers: vec![server(tcp("127.0.0.1:9000"), 1, 0)],
            balance: Balance::RoundRobin,
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            max_idle: 32,
            max_fails: 3,
            fail_timeout: Duration::from_secs(10),
            next_upstream: NextUpstream::default(),
            next_upstream_tries: 0,
            via: Some("asycamore".into()),
        }]
    );
    assert_eq!(
        cfg.routes[0].handler,
        HandlerSpec::Proxy {
            upstream: "app".into(),
            host: ProxyHost::Keep,
        }
    );
    assert_eq!(cfg.routes[0].handler.kind(), "proxy");
    // No upstream at all is the default, and valid.
    assert!(valid("").upstreams.is_empty());
}

#[test]
fn every_upstream_key_validates_to_its_value() {
    let text = r#"
[[upstream]]
name = "app.v1-x_y"
servers = [
  { address = "127.0.0.1:9000", weight = 2, max_connections = 256 },
  { address = "LocalHost:9001", weight = 3, max_connections = 7 },
  { address = "unix:/run/app.sock" },
  { address = "[::1]:9002" },
]
balance = "least_connections"
connect_timeout = "250ms"
read_timeout = "2m"
write_timeout = "1h 30m"
idle_timeout = "1day"
max_idle = 10000
max_fails = 0
fail_timeout = "1s"

[[upstream]]
name = "unused"
servers = [{ address = "10.0.0.1:80" }]
balance = "round_robin"

[[route]]
name = "a"
path = "/a"
handler = "proxy"
upstream = "app.v1-x_y"
proxy_host = "upstream"

[[route]]
name = "b"
path = "/b"
handler = "proxy"
upstream = "app.v1-x_y"
proxy_host = "Internal.Example:8080"

[[route]]
name = "c"
path = "/c"
handler = "proxy"
upstream = "app.v1-x_y"
proxy_host = "keep"
"#;
    let cfg = valid(text);
    assert_eq!(cfg.upstreams.len(), 2, "file order, the unused one kept");
    let app = &cfg.upstreams[0];
    assert_eq!(app.name, "app.v1-x_y");
    // localhost gives one server per address it resolves to, each with its entry's settings,
    // in the entry's place.
    let resolved: Vec<_> = app.servers[1..app.servers.len() - 2].to_vec();
    assert!(!resolved.is_empty());
    for s in &resolved {
        let UpstreamAddress::Tcp(addr) = s.address else {
            panic!("{s:?}");
        };
        assert!(addr.ip().is_loopback() && addr.port() == 9001, "{s:?}");
        assert_eq!((s.weight, s.max_connections), (3, 7));
    }
    assert!(resolved.contains(&server(tcp("127.0.0.1:9001"), 3, 7)));
    assert_eq!(app.servers[0], server(tcp("127.0.0.1:9000"), 2, 256));
    let last_two = &app.servers[app.servers.len() - 2..];
    assert_eq!(
        last_two,
        [
            server(UpstreamAddress::Unix("/run/app.sock".into()), 1, 0),
            server(tcp("[::1]:9002"), 1, 0),
        ]
    );
    assert_eq!(app.balance, Balance::LeastConnections);
    assert_eq!(app.connect_timeout, Duration::from_millis(250));
    assert_eq!(app.read_timeout, Duration::from_secs(120));
    assert_eq!(app.write_timeout, Duration::from_secs(5400));
    assert_eq!(app.idle_timeout, Duration::from_secs(86400));
    assert_eq!((app.max_idle, app.max_fails), (10_000, 0));
    assert_eq!(app.fail_timeout, Duration::from_secs(1));
    assert_eq!(cfg.upstreams[1].name, "unused");
    assert_eq!(cfg.upstreams[1].balance, Balance::RoundRobin);
    let hosts: Vec<_> = cfg
        .routes
        .iter()
        .map(|r| match &r.handler {
            HandlerSpec::Proxy { upstream, host } => {
                assert_eq!(upstream, "app.v1-x_y");
                host.clone()
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        hosts,
        [
            ProxyHost::Upstream,
            // A literal is sent as written.
            ProxyHost::Literal("Internal.Example:8080".into()),
            ProxyHost::Keep,
        ]
    );
}

/// Every integer key of an upstream and its servers: the values just outside the range are
/// rejected with the exact message, and the boundaries themselves are accepted.
#[test]
fn every_upstream_integer_range_is_enforced_at_its_boundaries() {
    // (key, in a server entry?, lowest valid, highest valid, range)
    let ranges: &[(&str, bool, i64, i64, &str)] = &[
        ("weight", true, 1, 1000, "1..=1000"),
        ("max_connections", true, 0, 1_000_000, "0..=1000000"),
        ("max_idle", false, 0, 10_000, "0..=10000"),
        ("max_fails", false, 0, 1000, "0..=1000"),
    ];
    for &(key, in_server, min, max, range) in ranges {
        let doc = |v: i64| {
            if in_server {
                upstream(
                    "a",
                    &format!("{{ address = \"127.0.0.1:1\", {key} = {v} }}"),
                    "",
                )
            } else {
                upstream(
                    "a",
                    "{ address = \"127.0.0.1:1\" }",
                    &format!("{key} = {v}"),
                )
            }
        };
        for v in [min, max] {
            assert!(load_str(&doc(v), FILE).is_ok(), "{key} = {v} should load");
        }
        for v in [min - 1, max + 1] {
            let want = if in_server {
                // `servers = [{ address = "127.0.0.1:1", ` is 38 characters.
                format!(
                    "x.toml:3:{}: upstream[0].servers[0].{key}: {v} is out of range {range}",
                    38 + key.len() + 4
                )
            } else {
                format!(
                    "x.toml:4:{}: upstream[0].{key}: {v} is out of range {range}",
                    key.len() + 4
                )
            };
            assert_eq!(errors(&doc(v)), [want]);
        }
    }
}

/// Each duration key: more than 0 and at most 1 day, like `[timeouts]`.
#[test]
fn every_upstream_timeout_is_more_than_zero_and_at_most_a_day() {
    let keys = [
        "connect_timeout",
        "read_timeout",
        "write_timeout",
        "idle_timeout",
        "fail_timeout",
    ];
    for key in keys {
        let doc = |v: &str| {
            upstream(
                "a",
                "{ address = \"127.0.0.1:1\" }",
                &format!("{key} = \"{v}\""),
            )
        };
        for v in ["1ns", "1day", "86400s"] {
            assert!(load_str(&doc(v), FILE).is_ok(), "{key} = {v} should load");
        }
        let col = key.len() + 4;
        assert_eq!(
            errors(&doc("0s")),
            [format!(
                "x.toml:4:{col}: upstream[0].{key}: \"0s\" is out of range (must be more than 0 and at most 1 day)"
            )]
        );
        assert_eq!(
            errors(&doc("86401s")),
            [format!(
                "x.toml:4:{col}: upstream[0].{key}: \"86401s\" is out of range (must be more than 0 and at most 1 day)"
            )]
        );
        assert_eq!(
            errors(&doc("10")),
            [format!(
                "x.toml:4:{col}: upstream[0].{key}: \"10\" is not a duration: time unit needed, for example 10sec or 10ms"
            )]
        );
    }
}

#[test]
fn bad_upstreams_are_located() {
    let ok = "{ address = \"127.0.0.1:1\" }";
    check_table(&[
        // Required keys, reported at the [[upstream]] header; an empty list at the list.
        (
            "[[upstream]]\nbalance = \"random\"\n\n[[upstream]]\nname = \"b\"\nservers = []\n"
                .to_owned(),
            vec![
                "x.toml:1:1: upstream[0].name: required key is missing".into(),
                "x.toml:1:1: upstream[0].servers: required key is missing".into(),
                r#"x.toml:2:11: upstream[0].balance: "random" is not one of: round_robin, least_connections"#.into(),
                "x.toml:6:11: upstream[1].servers: at least one server is required".into(),
            ],
        ),
        // Names: the route-name charset, and unique among upstreams (not with routes).
        (
            upstream("has space", ok, "")
                + &upstream("", ok, "")
                + &upstream(&"x".repeat(65), ok, "")
                + &upstream("app", ok, "")
                + &upstream("app", ok, "")
                + &proxy_route("app", "/", "upstream = \"app\""),
            vec![
                r#"x.toml:2:8: upstream[0].name: invalid upstream name "has space" (1 to 64 of A-Z a-z 0-9 _ . -)"#.into(),
                r#"x.toml:6:8: upstream[1].name: invalid upstream name "" (1 to 64 of A-Z a-z 0-9 _ . -)"#.into(),
                format!(
                    r#"x.toml:10:8: upstream[2].name: invalid upstream name "{}" (1 to 64 of A-Z a-z 0-9 _ . -)"#,
                    "x".repeat(65)
                ),
                r#"x.toml:18:8: upstream[4].name: duplicate upstream name "app" (first defined on line 14)"#.into(),
            ],
        ),
        // A server entry without an address is reported at its `{`.
        (
            upstream("a", "{ weight = 2 }, { address = \"127.0.0.1:1\", weight = 0 }", ""),
            vec![
                "x.toml:3:12: upstream[0].servers[0].address: required key is missing".into(),
                "x.toml:3:64: upstream[0].servers[1].weight: 0 is out of range 1..=1000".into(),
            ],
        ),
    ]);
}

#[test]
fn server_addresses_are_checked_where_they_are_written() {
    let at = |address: &str, reason: &str| {
        (
            upstream("a", &format!("{{ address = \"{address}\" }}"), ""),
            vec![format!(
                "x.toml:3:24: upstream[0].servers[0].address: invalid server address \"{address}\": {reason}"
            )],
        )
    };
    const PORT: &str = "missing port (write \"host:port\", \"[ipv6]:port\" or \"unix:/path\")";
    const V6: &str = "an IPv6 address is written \"[address]:port\"";
    const PORT_RANGE: &str = "the port must be a number from 1 to 65535";
    let long = format!("unix:/{}", "a".repeat(107));
    check_table(&[
        at(
            "unix:run/app.sock",
            "the path after \"unix:\" must be absolute",
        ),
        at("unix:", "the path after \"unix:\" must be absolute"),
        at("unix:/", "the path after \"unix:\" must name a file"),
        at(&long, "a Unix socket path is at most 107 bytes long"),
        at("localhost", PORT),
        at("localhost:", PORT),
        at("127.0.0.1", PORT),
        at("[::1]", PORT),
        at("[::1]:", PORT),
        at("::1", V6),
        at("::1:9000", V6),
        at("[::1:9000", V6),
        at("[nope]:9000", "not an IPv6 address between '[' and ']'"),
        at(":9000", "missing host before the port"),
        at("localhost:0", PORT_RANGE),
        at("localhost:65536", PORT_RANGE),
        at("localhost:http", PORT_RANGE),
        at("a b:80", "letters, digits, '-', '_' and '.' only"),
        at(
            "a..b:80",
            "empty label (a dot at either end, or two in a row)",
        ),
        at("http://a:80", "no scheme: write \"host:port\", not a URL"),
        // A zone index is not part of an Ipv6Addr: refused, not silently dropped.
        at(
            "[fe80::1%eth0]:80",
            "not an IPv6 address between '[' and ']'",
        ),
    ]);
    // Written forms, before anything is resolved.
    let written = [
        ("127.0.0.1:80", Written::Final(tcp("127.0.0.1:80"))),
        ("[::1]:65535", Written::Final(tcp("[::1]:65535"))),
        ("localhost:1", Written::Name("localhost", 1)),
        (
            "app.example.com:8080",
            Written::Name("app.example.com", 8080),
        ),
        (
            "unix:/run/a b.sock",
            Written::Final(UpstreamAddress::Unix("/run/a b.sock".into())),
        ),
    ];
    for (value, want) in written {
        assert_eq!(written_address(value), Ok(want), "{value}");
    }
}

/// A name that does not resolve: the error names the address and carries the resolver's own
/// words (here the loopback resolver's, which knows only `localhost`).
#[test]
fn an_address_that_does_not_resolve_is_located_with_the_resolvers_message() {
    let text = upstream(
        "a",
        "{ address = \"127.0.0.1:1\" },\n  { address = \"app.invalid:80\" }",
        "",
    );
    let got = errors(&text);
    assert_eq!(got.len(), 1, "{got:?}");
    let prefix =
        r#"x.toml:4:15: upstream[0].servers[1].address: cannot resolve "app.invalid:80": "#;
    assert!(got[0].starts_with(prefix), "{got:?}");
    assert!(
        got[0].len() > prefix.len(),
        "the resolver's message: {got:?}"
    );
}

#[test]
fn no_server_address_is_listed_twice() {
    check_table(&[
        (
            upstream(
                "a",
                "\n  { address = \"127.0.0.1:9000\" },\n  { address = \"[::1]:9000\" },\n  \
                 { address = \"127.0.0.1:9000\", weight = 5 },\n",
                "",
            ),
            vec![
                "x.toml:6:15: upstream[0].servers[2].address: duplicate server address 127.0.0.1:9000 (first listed on line 4)".into(),
            ],
        ),
        // A name giving an address already listed, and a Unix path twice.
        (
            upstream(
                "a",
                "\n  { address = \"127.0.0.1:9001\" },\n  { address = \"localhost:9001\" },\n  \
                 { address = \"unix:/run/a.sock\" },\n  { address = \"unix:/run/a.sock\" },\n",
                "",
            ),
            vec![
                "x.toml:5:15: upstream[0].servers[1].address: duplicate server address 127.0.0.1:9001 (first listed on line 4)".into(),
                "x.toml:7:15: upstream[0].servers[3].address: duplicate server address unix:/run/a.sock (first listed on line 6)".into(),
            ],
        ),
    ]);
    // The same address in two upstreams is fine: each group is its own.
    let text = upstream("a", "{ address = \"127.0.0.1:1\" }", "")
        + &upstream("b", "{ address = \"127.0.0.1:1\" }", "");
    assert_eq!(valid(&text).upstreams.len(), 2);
}

#[test]
fn proxy_routes_name_a_known_upstream() {
    let ok = "{ address = \"127.0.0.1:1\" }";
    check_table(&[
        (
            upstream("app", ok, "")
                + &upstream("api", ok, "")
                + &proxy_route("a", "/a", "upstream = \"ap\"")
                + &proxy_route("b", "/b", ""),
            vec![
                r#"x.toml:13:12: route[0].upstream: no upstream named "ap" (known: app, api)"#.into(),
                "x.toml:14:1: route[1].upstream: required key is missing".into(),
            ],
        ),
        (
            proxy_route("a", "/", "upstream = \"app\""),
            vec![
                r#"x.toml:5:12: route[0].upstream: no upstream named "app" (no [[upstream]] is defined)"#.into(),
            ],
        ),
        // Names are case-sensitive, like route names.
        (
            upstream("app", ok, "") + &proxy_route("a", "/", "upstream = \"App\""),
            vec![
                r#"x.toml:9:12: route[0].upstream: no upstream named "App" (known: app)"#.into(),
            ],
        ),
        // An upstream whose name is wrong, or that did not deserialize, leaves the names
        // unknown: its own error is the one reported, not one per route naming it.
        (
            upstream("my app", ok, "") + &proxy_route("a", "/", "upstream = \"my app\""),
            vec![
                r#"x.toml:2:8: upstream[0].name: invalid upstream name "my app" (1 to 64 of A-Z a-z 0-9 _ . -)"#.into(),
            ],
        ),
        (
            upstream("app", ok, "max_idle = \"many\"")
                + &proxy_route("a", "/", "upstream = \"app\""),
            vec![
                r#"x.toml:4:12: upstream[0].max_idle: wrong type: expected an integer, found string "many""#.into(),
            ],
        ),
        // A valid name given twice is still known.
        (
            upstream("app", ok, "")
                + &upstream("app", ok, "")
                + &proxy_route("a", "/", "upstream = \"app\""),
            vec![
                r#"x.toml:6:8: upstream[1].name: duplicate upstream name "app" (first defined on line 2)"#.into(),
            ],
        ),
    ]);
}

#[test]
fn proxy_host_is_keep_upstream_or_a_host_value() {
    let ok = upstream("app", "{ address = \"127.0.0.1:1\" }", "");
    let route = |host: &str| {
        ok.clone()
            + &proxy_route(
                "a",
                "/",
                &format!("upstream = \"app\"\nproxy_host = \"{host}\""),
            )
    };
    for host in [
        "example.com",
        "[::1]:8080",
        "a_b.c:1",
        "x",
        &"h".repeat(255),
    ] {
        let cfg = valid(&route(host));
        assert_eq!(
            cfg.routes[0].handler,
            HandlerSpec::Proxy {
                upstream: "app".into(),
                host: ProxyHost::Literal(host.to_owned()),
            }
        );
    }
    let long = "h".repeat(256);
    let bad = [
        ("", "must not be empty (\"keep\", \"upstream\" or a host)"),
        (long.as_str(), "longer than 255 bytes"),
        ("a b", "visible ASCII only, no spaces or control characters"),
        (
            "a\\tb",
            "visible ASCII only, no spaces or control characters",
        ),
        (
            "caf\u{e9}",
            "visible ASCII only, no spaces or control characters",
        ),
        ("a/b", "must not contain '/'"),
    ];
    for (host, reason) in bad {
        let shown = host.replace("\\t", "\t");
        assert_eq!(
            errors(&route(host)),
            [format!(
                "x.toml:10:14: route[0].proxy_host: invalid host {shown:?}: {reason}"
            )],
        );
    }
}

/// The proxy keys belong to the proxy only, and the proxy takes no other handler's keys.
#[test]
fn proxy_keys_belong_to_the_proxy_only() {
    let ok = upstream("app", "{ address = \"127.0.0.1:1\" }", "");
    check_table(&[
        (
            "[[route]]\nname = \"a\"\npath = \"/\"\nhandler = \"respond\"\nupstream = \"app\"\n\
             proxy_host = \"keep\"\n"
                .to_owned(),
            vec![
                r#"x.toml:5:12: route[0].upstream: "upstream" does not apply to handler "respond" (only to "proxy")"#.into(),
                r#"x.toml:6:14: route[0].proxy_host: "proxy_host" does not apply to handler "respond" (only to "proxy")"#.into(),
            ],
        ),
        (
            ok + &proxy_route(
                "a",
                "/",
                "upstream = \"app\"\nstatus = 200\nto = \"/x\"\nroot = \"/\"",
            ),
            vec![
                r#"x.toml:10:10: route[0].status: "status" does not apply to handler "proxy" (only to "respond" and "redirect")"#.into(),
                r#"x.toml:11:6: route[0].to: "to" does not apply to handler "proxy" (only to "redirect")"#.into(),
                r#"x.toml:12:8: route[0].root: "root" does not apply to handler "proxy" (only to "static")"#.into(),
            ],
        ),
    ]);
}

/// Every address a resolved name gives is a server of its own; an IP literal is taken as
/// written, without asking the resolver.
#[test]
fn localhost_resolves_offline() {
    let cfg = valid(&upstream(
        "a",
        "{ address = \"localhost:8080\", weight = 9 }",
        "",
    ));
    let servers = &cfg.upstreams[0].servers;
    assert!(!servers.is_empty());
    let want: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
    assert!(
        servers.contains(&server(UpstreamAddress::Tcp(want), 9, 0)),
        "{servers:?}"
    );
}

/// `via` (RFC 9110 7.6.3): `server.via` is every group's pseudonym unless the group names its
/// own; `""` turns it off; anything but a token of at most 64 bytes is a located error.
#[test]
fn via_is_global_per_upstream_or_off_and_must_be_a_token() {
    let groups = upstream("own", "{ address = \"127.0.0.1:1\" }", "via = \"inner\"")
        + &upstream("global", "{ address = \"127.0.0.1:2\" }", "")
        + &upstream("off", "{ address = \"127.0.0.1:3\" }", "via = \"\"");
    let via_of = |cfg: &Config| -> Vec<Option<String>> {
        cfg.upstreams.iter().map(|u| u.via.clone()).collect()
    };
    let cfg = valid(&format!("[server]\nvia = \"edge-7\"\n\n{groups}"));
    assert_eq!(
        via_of(&cfg),
        [Some("inner".into()), Some("edge-7".into()), None]
    );
    let cfg = valid(&groups);
    assert_eq!(
        via_of(&cfg),
        [Some("inner".into()), Some("asycamore".into()), None]
    );
    let cfg = valid(&format!("[server]\nvia = \"\"\n\n{groups}"));
    assert_eq!(via_of(&cfg), [Some("inner".into()), None, None]);
    let long = "v".repeat(65);
    for bad in ["two words", "a/b", "caf\u{e9}", "x\\ty", long.as_str()] {
        let text = upstream(
            "a",
            "{ address = \"127.0.0.1:1\" }",
            &format!("via = {bad:?}"),
        );
        assert_eq!(
            errors(&text),
            [format!(
                "x.toml:4:7: upstream[0].via: invalid via pseudonym {bad:?} (an RFC 9110 token \
                 of 1 to 64 bytes, or \"\" to send no Via)"
            )],
        );
        assert_eq!(
            errors(&format!("[server]\nvia = {bad:?}\n")),
            [format!(
                "x.toml:2:7: server.via: invalid via pseudonym {bad:?} (an RFC 9110 token of 1 \
                 to 64 bytes, or \"\" to send no Via)"
            )],
        );
    }
    assert_eq!(
        valid(&upstream(
            "a",
            "{ address = \"127.0.0.1:1\" }",
            &format!("via = \"{}\"", "v".repeat(64))
        ))
        .upstreams[0]
            .via
            .as_deref(),
        Some("v".repeat(64).as_str())
    );
}

/// `next_upstream` (nginx's `proxy_next_upstream`): a list of conditions, `["connect"]` by
/// default, `[]` for none; an unknown or repeated condition is a located error;
/// `next_upstream_tries` is 0..=100.
#[test]
fn next_upstream_conditions_and_tries() {
    let doc = |keys: &str| upstream("a", "{ address = \"127.0.0.1:1\" }", keys);
    let none = NextUpstream {
        connect: false,
        error: false,
        timeout: false,
        non_idempotent: false,
    };
    assert_eq!(
        valid(&doc("")).upstreams[0].next_upstream,
        NextUpstream::default()
    );
    assert_eq!(
        valid(&doc("next_upstream = []")).upstreams[0].next_upstream,
        none
    );
    let all = valid(&doc(
        "next_upstream = [\"connect\", \"error\", \"timeout\", \"non_idempotent\"]\n\
         next_upstream_tries = 2",
    ));
    assert_eq!(
        all.upstreams[0].next_upstream,
        NextUpstream {
            connect: true,
            error: true,
            timeout: true,
            non_idempotent: true,
        }
    );
    assert_eq!(all.upstreams[0].next_upstream_tries, 2);
    assert_eq!(
        errors(&doc(
            "next_upstream = [\"timeout\", \"http_502\", \"timeout\"]"
        )),
        [
            "x.toml:4:29: upstream[0].next_upstream[1]: \"http_502\" is not one of: connect, \
             error, timeout, non_idempotent",
            "x.toml:4:41: upstream[0].next_upstream[2]: duplicate next_upstream condition \
             \"timeout\"",
        ]
    );
    assert_eq!(
        errors(&doc("next_upstream_tries = 101")),
        ["x.toml:4:23: upstream[0].next_upstream_tries: 101 is out of range 0..=100"]
    );
}
