//! Unit tests of the route table: one precedence table (host x path x method -> route name,
//! 404, or 405 with its `Allow`), run against the same routes given in several orders.

use super::*;

fn route(name: &str, host: &str, path: &str, methods: &[&str]) -> Route<()> {
    let host = if host == "*" {
        HostPattern::Any
    } else if let Some(domain) = host.strip_prefix("*.") {
        HostPattern::Wildcard(domain.into())
    } else {
        HostPattern::Exact(host.into())
    };
    let path = match path.strip_prefix('=') {
        Some(exact) => PathPattern::Exact(exact.into()),
        None => PathPattern::Prefix(path.into()),
    };
    Route {
        name: name.into(),
        host,
        path,
        methods: methods.iter().map(|m| (*m).to_owned()).collect(),
        max_body_bytes: 0,
        handler: (),
    }
}

/// `=path` is an exact path, anything else a prefix.
fn routes() -> Vec<Route<()>> {
    vec![
        route("any-root", "*", "/", &[]),
        route("any-static", "*", "/static", &[]),
        route("any-health", "*", "=/healthz", &["GET", "HEAD"]),
        route("any-health-post", "*", "=/healthz", &["POST"]),
        route("any-upload", "*", "/upload", &["PUT", "POST"]),
        route("any-api", "*", "/api", &[]),
        route("any-api-get", "*", "/api", &["GET"]),
        route("ex-root", "example.com", "/", &[]),
        route("ex-api", "example.com", "/api", &[]),
        route("ex-b-form", "b.example.com", "/form", &["POST"]),
        route("wild-api", "*.example.com", "/api", &[]),
        route("wild-only", "*.example.com", "=/only", &[]),
        route("wild-deep", "*.b.example.com", "/", &[]),
    ]
}

/// What a lookup should find: a route name, "404", or "405 <Allow>".
fn outcome(table: &RouteTable<()>, host: Option<&str>, path: &str, method: &str) -> String {
    match table.find(host, path, method) {
        Lookup::Found(route) => route.name.clone(),
        Lookup::MethodNotAllowed(allow) => format!("405 {allow}"),
        Lookup::NotFound => "404".to_owned(),
    }
}

const CASES: &[(Option<&str>, &str, &str, &str)] = &[
    // Exact host beats everything; case and a trailing dot do not matter.
    (Some("example.com"), "/", "GET", "ex-root"),
    (Some("EXAMPLE.Com"), "/x", "GET", "ex-root"),
    (Some("example.com."), "/x", "GET", "ex-root"),
    (Some("example.com"), "/api/v1", "DELETE", "ex-api"),
    (Some("example.com"), "/apix", "GET", "ex-root"),
    // The exact-host tier has a root route, so the any-host exact path never wins there.
    (Some("example.com"), "/healthz", "GET", "ex-root"),
    // Wildcards: strictly below the domain, any depth; the longest suffix wins.
    (Some("a.example.com"), "/api", "GET", "wild-api"),
    (Some("a.b.c.example.com"), "/api/x", "GET", "wild-api"),
    (Some("x.b.example.com"), "/api", "GET", "wild-deep"),
    (Some("X.B.EXAMPLE.COM"), "/anything", "GET", "wild-deep"),
    (Some("a.example.com"), "/only", "GET", "wild-only"),
    // A tier without a route for the path falls to the next tier.
    (Some("a.example.com"), "/other", "GET", "any-root"),
    (Some("a.example.com"), "/only/x", "GET", "any-root"),
    (Some("b.example.com"), "/api", "GET", "wild-api"),
    (Some("b.example.com"), "/zzz", "GET", "any-root"),
    // Not below the domain.
    (Some("aexample.com"), "/api", "GET", "any-api-get"),
    (Some(".example.com"), "/api", "GET", "any-api-get"),
    (Some("example.com.evil"), "/api", "GET", "any-api-get"),
    // A host tier is chosen by path alone: a wrong method there is 405, not a fall-through.
    (Some("b.example.com"), "/form", "POST", "ex-b-form"),
    (Some("b.example.com"), "/form/x", "GET", "405 POST"),
    // No Host: only any-host routes.
    (None, "/", "GET", "any-root"),
    (None, "/api", "GET", "any-api-get"),
    // Exact path beats prefix; it matches that path only.
    (Some("other.org"), "/healthz", "GET", "any-health"),
    (Some("other.org"), "/healthz", "HEAD", "any-health"),
    (Some("other.org"), "/healthz", "POST", "any-health-post"),
    (
        Some("other.org"),
        "/healthz",
        "DELETE",
        "405 GET, HEAD, POST",
    ),
    (Some("other.org"), "/healthz", "get", "405 GET, HEAD, POST"),
    (Some("other.org"), "/healthz/", "GET", "any-root"),
    (Some("other.org"), "/healthzz", "GET", "any-root"),
    // Longest prefix, on segment boundaries.
    (None, "/static", "GET", "any-static"),
    (None, "/static/", "GET", "any-static"),
    (None, "/static/a/b.css", "GET", "any-static"),
    (None, "/staticx", "GET", "any-root"),
    (None, "/upload", "PUT", "any-upload"),
    (None, "/upload/a", "POST", "any-upload"),
    (None, "/upload", "GET", "405 POST, PUT"),
    // A route listing the method beats one without a list; the one without takes the rest.
    (None, "/api/x", "GET", "any-api-get"),
    (None, "/api/x", "POST", "any-api"),
    // Nothing matches an asterisk-form target here.
    (None, "*", "OPTIONS", "404"),
];

#[test]
fn precedence_table() {
    let forward = RouteTable::new(routes(), 1);
    let mut reversed_routes = routes();
    reversed_routes.reverse();
    let reversed = RouteTable::new(reversed_routes, 1);
    let mut rotated_routes = routes();
    rotated_routes.rotate_left(5);
    let rotated = RouteTable::new(rotated_routes, 1);
    for &(host, path, method, want) in CASES {
        for table in [&forward, &reversed, &rotated] {
            assert_eq!(
                outcome(table, host, path, method),
                want,
                "{method} {path} Host {host:?}"
            );
        }
    }
}

#[test]
fn no_match_is_404() {
    let table = RouteTable::new(
        vec![
            route("a", "example.com", "/a", &[]),
            route("b", "*.example.com", "=/b", &["GET"]),
        ],
        7,
    );
    assert_eq!(table.generation(), 7);
    let cases = [
        (Some("example.com"), "/b", "GET", "404"),
        (Some("x.com"), "/a", "GET", "404"),
        (None, "/a", "GET", "404"),
        (Some("x.example.com"), "/b/", "GET", "404"),
        (Some("x.example.com"), "/b", "PUT", "405 GET"),
        (Some("example.com"), "/a/b", "PUT", "a"),
    ];
    for (host, path, method, want) in cases {
        assert_eq!(outcome(&table, host, path, method), want, "{path} {host:?}");
    }
    let empty: RouteTable<()> = RouteTable::new(Vec::new(), 1);
    assert_eq!(outcome(&empty, None, "/", "GET"), "404");
}

#[test]
fn routes_are_listed_in_precedence_order() {
    let table = RouteTable::new(routes(), 1);
    let names: Vec<&str> = table.routes().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            // Exact hosts sort by name (no two can match one request).
            "ex-b-form",
            "ex-api",
            "ex-root",
            "wild-deep",
            "wild-only",
            "wild-api",
            "any-health",
            "any-health-post",
            // Equal lengths: by path, for a stable listing.
            "any-static",
            "any-upload",
            "any-api-get",
            "any-api",
            "any-root",
        ]
    );
}

#[test]
fn prefix_constructor_and_trailing_slash_prefix() {
    let table = RouteTable::new(
        vec![
            Route::prefix("dir", "/d/", ()),
            Route::prefix("root", "/", ()),
        ],
        1,
    );
    assert_eq!(outcome(&table, None, "/d/x", "GET"), "dir");
    assert_eq!(outcome(&table, None, "/d", "GET"), "root");
    assert_eq!(table.routes()[0].max_body_bytes, u64::MAX);
}
