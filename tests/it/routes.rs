//! The route table over real requests: host (exact / wildcard / any, from `Host` or an
//! absolute-form target, port ignored) x path (exact / prefix) x method, 405 with `Allow`,
//! 404, per-route body limits from `[defaults]` and the route, and merged headers.

use crate::support::{Client, TestServer, post};

/// (name, host, path key and value, methods); every route answers `respond` with its name.
const ROUTES: &[(&str, &str, &str, &str)] = &[
    ("any-root", "*", "path = \"/\"", ""),
    ("any-static", "*", "path = \"/static\"", ""),
    (
        "any-health",
        "*",
        "exact = \"/healthz\"",
        "[\"GET\", \"HEAD\"]",
    ),
    ("any-health-post", "*", "exact = \"/healthz\"", "[\"POST\"]"),
    (
        "any-upload",
        "*",
        "path = \"/upload\"",
        "[\"put\", \"POST\"]",
    ),
    ("any-api", "*", "path = \"/api\"", ""),
    ("any-api-get", "*", "path = \"/api\"", "[\"GET\"]"),
    ("ex-root", "Example.com", "path = \"/\"", ""),
    ("ex-api", "example.com", "path = \"/api/\"", ""),
    (
        "ex-b-form",
        "b.example.com",
        "path = \"/form\"",
        "[\"POST\"]",
    ),
    ("wild-api", "*.example.com", "path = \"/api\"", ""),
    ("wild-only", "*.example.com", "exact = \"/only\"", ""),
    ("wild-deep", "*.b.example.com", "path = \"/\"", ""),
];

fn config() -> String {
    let mut text = String::from(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n\
         [limits]\nmax_body_bytes = 1000\n\n\
         [defaults]\nmax_body_bytes = 100\n\
         headers = { \"X-Default\" = \"yes\", \"X-Route\" = \"unset\" }\n\n",
    );
    for &(name, host, path, methods) in ROUTES {
        text.push_str(&format!(
            "[[route]]\nname = \"{name}\"\nhost = \"{host}\"\n{path}\nhandler = \"respond\"\n\
             body = \"{name}\"\nheaders = {{ \"x-route\" = \"{name}\" }}\n"
        ));
        if !methods.is_empty() {
            text.push_str(&format!("methods = {methods}\n"));
        }
        text.push('\n');
    }
    // Body limits: the route's own, and the default.
    text.push_str(
        "[[route]]\nname = \"small\"\nexact = \"/small\"\nhandler = \"echo\"\nmax_body_bytes = 4\n\n\
         [[route]]\nname = \"echo\"\npath = \"/echo\"\nhandler = \"echo\"\n",
    );
    text
}

/// (Host header, method, target, expected: a route name, "404", or "405 <Allow>").
const CASES: &[(&str, &str, &str, &str)] = &[
    // Exact host beats wildcard beats any; case and the port do not matter.
    ("example.com", "GET", "/", "ex-root"),
    ("EXAMPLE.COM:8080", "GET", "/x", "ex-root"),
    ("example.com", "DELETE", "/api/v1", "ex-api"),
    ("example.com", "GET", "/apix", "ex-root"),
    ("example.com", "GET", "/healthz", "ex-root"),
    // Wildcards: strictly below the domain, at any depth; the longest suffix wins.
    ("a.example.com", "GET", "/api", "wild-api"),
    ("a.b.c.example.com:1", "GET", "/api/x", "wild-api"),
    ("x.b.example.com", "GET", "/api", "wild-deep"),
    ("a.example.com", "GET", "/only", "wild-only"),
    ("aexample.com", "GET", "/api", "any-api-get"),
    // A host tier without a route for the path falls to the next tier.
    ("a.example.com", "GET", "/only/x", "any-root"),
    ("a.example.com", "GET", "/other", "any-root"),
    ("b.example.com", "GET", "/api", "wild-api"),
    // ... but a tier chosen by path answers 405 for a method it does not take.
    ("b.example.com", "POST", "/form", "ex-b-form"),
    ("b.example.com", "GET", "/form/x", "405 POST"),
    // Exact path beats prefix, and matches that path only.
    ("other.org", "GET", "/healthz", "any-health"),
    ("other.org", "HEAD", "/healthz", "any-health"),
    ("other.org", "POST", "/healthz", "any-health-post"),
    ("other.org", "DELETE", "/healthz", "405 GET, HEAD, POST"),
    ("other.org", "GET", "/healthz/", "any-root"),
    ("other.org", "GET", "/healthz?x=1", "any-health"),
    // Longest prefix on segment boundaries.
    ("other.org", "GET", "/static/a/b.css", "any-static"),
    ("other.org", "GET", "/staticx", "any-root"),
    ("other.org", "PUT", "/upload/f", "any-upload"),
    ("other.org", "GET", "/upload", "405 POST, PUT"),
    // A route listing the method beats one without a list, which takes the rest.
    ("other.org", "GET", "/api/x", "any-api-get"),
    ("other.org", "PATCH", "/api/x", "any-api"),
    // The authority of an absolute-form target is the host.
    ("other.org", "GET", "http://example.com/api", "ex-api"),
    (
        "other.org",
        "GET",
        "http://q.example.com:81/only",
        "wild-only",
    ),
];

fn request(host: &str, method: &str, target: &str) -> Vec<u8> {
    format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
}

#[test]
fn precedence_table_over_real_requests() {
    let server = TestServer::start(&config());
    // One connection for the whole table: 404 and 405 keep it open.
    let mut client = server.connect();
    for &(host, method, target, want) in CASES {
        client.send(&request(host, method, target));
        let response = client.read_response_to(method);
        let got = match response.status {
            200 => response.header("x-route").unwrap_or("?").to_owned(),
            405 => format!("405 {}", response.header("allow").unwrap_or("<no Allow>")),
            status => status.to_string(),
        };
        assert_eq!(got, want, "{method} {target} Host: {host}");
        assert!(!response.says_close(), "{method} {target} Host: {host}");
        if response.status == 200 && method != "HEAD" {
            assert_eq!(response.text(), want);
            // The default header is merged in; the route's own X-Route replaced the default's.
            assert_eq!(response.header("x-default"), Some("yes"));
            let routes = response
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("x-route"))
                .count();
            assert_eq!(routes, 1);
        }
    }
    assert!(client.still_serves());
}

#[test]
fn nothing_matching_is_404_and_the_connection_stays() {
    let only_hosts = "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n\
        [[route]]\nname = \"a\"\nhost = \"example.com\"\npath = \"/a\"\nhandler = \"respond\"\n\n\
        [[route]]\nname = \"b\"\nhost = \"*.example.com\"\nexact = \"/b\"\nmethods = [\"GET\"]\n\
        handler = \"respond\"\n";
    let server = TestServer::start(only_hosts);
    let mut client = server.connect();
    for (host, method, target, status) in [
        ("example.com", "GET", "/b", 404),
        ("other.org", "GET", "/a", 404),
        ("x.example.com", "GET", "/b/", 404),
        ("x.example.com", "PUT", "/b", 405),
        ("example.com", "GET", "/a/b", 200),
    ] {
        client.send(&request(host, method, target));
        let response = client.read_response();
        assert_eq!(response.status, status, "{method} {target} Host: {host}");
        assert!(!response.says_close());
    }
    // HTTP/1.0 without Host: no host-specific route matches.
    let mut old = server.connect();
    old.send(b"GET /a HTTP/1.0\r\n\r\n");
    assert_eq!(old.read_response().status, 404);
}

#[test]
fn the_route_body_limit_and_the_default_apply() {
    let server = TestServer::start(&config());
    let mut client: Client = server.connect();
    client.send(&post("/small", b"1234"));
    let response = client.read_response();
    assert_eq!(response.status, 200);
    assert!(response.text().ends_with("1234"), "{}", response.text());

    client.send(&post("/small", b"12345"));
    assert_eq!(client.read_response().status, 413);

    let mut client = server.connect();
    client.send(&post("/echo", &[b'x'; 100]));
    assert_eq!(client.read_response().status, 200);
    client.send(&post("/echo", &[b'x'; 101]));
    assert_eq!(client.read_response().status, 413);
}

/// A route table where an origin-form target whose path or query holds `://` must still be
/// routed by its own path and the `Host` header (only an absolute-form target, one that
/// *starts* with a scheme, carries an authority).
#[test]
fn a_scheme_separator_inside_an_origin_form_target_does_not_reroute_it() {
    let text = "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n\
        [[route]]\nname = \"any\"\npath = \"/\"\nhandler = \"respond\"\nbody = \"any\"\n\n\
        [[route]]\nname = \"ex\"\nhost = \"example.com\"\npath = \"/\"\nhandler = \"respond\"\nbody = \"ex\"\n\n\
        [[route]]\nname = \"login\"\nexact = \"/login\"\nhandler = \"respond\"\nbody = \"login\"\n";
    let server = TestServer::start(text);
    let mut client = server.connect();
    for (target, want) in [
        // An OAuth-style return URL in the query.
        ("/login?next=https://example.com/home", "login"),
        ("/login?next=http://example.com", "login"),
        // `:` is a legal path character; `://` in a later segment is not a scheme.
        ("/files/a://example.com/login", "any"),
        // Absolute form still takes its authority.
        ("http://example.com/login", "ex"),
    ] {
        client.send(&request("other.org", "GET", target));
        let response = client.read_response();
        assert_eq!(response.status, 200, "{target}");
        assert_eq!(response.text(), want, "GET {target} Host: other.org");
    }
}

/// A more specific route (here one that denies) must not be bypassed by spelling its path
/// differently: a percent-encoded unreserved byte or a doubled slash reaches the catch-all
/// static route, which decodes and collapses the path and serves the file the specific
/// route shadows.
#[test]
fn an_encoded_or_doubled_slash_path_does_not_bypass_a_more_specific_route() {
    let base = crate::support::temp_path("bypass");
    std::fs::create_dir_all(base.join("private")).expect("mkdir");
    std::fs::write(base.join("private/secret.txt"), b"secret").expect("write");
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n\
         [[route]]\nname = \"deny\"\npath = \"/private\"\nhandler = \"respond\"\nstatus = 403\n\n\
         [[route]]\nname = \"site\"\npath = \"/\"\nhandler = \"static\"\nroot = \"{}\"\n",
        base.display()
    );
    let server = TestServer::start(&text);
    let mut leaks = Vec::new();
    for target in [
        "/private/secret.txt",
        "/%70rivate/secret.txt",
        "/%70%72%69%76%61%74%65/secret.txt",
        "//private/secret.txt",
        "///private/secret.txt",
    ] {
        let mut client = server.connect();
        client.send(&request("t", "GET", target));
        let response = client.read_response();
        if response.body == b"secret" {
            leaks.push(format!("{target} -> {}", response.status));
        }
    }
    let _ = std::fs::remove_dir_all(&base);
    assert!(
        leaks.is_empty(),
        "the /private route was bypassed: {leaks:?}"
    );
}

/// Odd but valid `Host` spellings: case, a trailing dot (the FQDN form), a port, an IPv6
/// literal with a port; and ones that must reach no host-specific route.
#[test]
fn odd_host_spellings_route_as_their_host() {
    let text = "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n\
        [[route]]\nname = \"any\"\npath = \"/\"\nhandler = \"respond\"\nbody = \"any\"\n\n\
        [[route]]\nname = \"ex\"\nhost = \"example.com\"\npath = \"/\"\nhandler = \"respond\"\nbody = \"ex\"\n\n\
        [[route]]\nname = \"wild\"\nhost = \"*.example.com\"\npath = \"/\"\nhandler = \"respond\"\nbody = \"wild\"\n\n\
        [[route]]\nname = \"v6\"\nhost = \"[::1]\"\npath = \"/\"\nhandler = \"respond\"\nbody = \"v6\"\n";
    let server = TestServer::start(text);
    let mut client = server.connect();
    for (host, want) in [
        ("ExAmPlE.CoM", "ex"),
        ("example.com.", "ex"),
        ("EXAMPLE.COM.:8080", "ex"),
        ("example.com:", "ex"),
        ("A.B.Example.Com.", "wild"),
        ("a.example.com:443", "wild"),
        ("[::1]:8080", "v6"),
        ("[::1]", "v6"),
        // Not the domain, nor below it.
        ("example.com..", "any"),
        (".example.com", "any"),
        ("xexample.com", "any"),
        ("example.com.evil.org", "any"),
        ("example.co", "any"),
    ] {
        client.send(&request(host, "GET", "/"));
        let response = client.read_response();
        assert_eq!(response.status, 200, "Host: {host}");
        assert_eq!(response.text(), want, "Host: {host}");
    }
}
