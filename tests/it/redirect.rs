//! The `redirect` handler on the real server: a table of route settings and request targets
//! with the status and `Location` each must produce, plus HEAD and the text body.

use crate::support::{TestServer, get};

/// One case: the route's settings (TOML keys after `handler = "redirect"`), its match
/// (`path = ...` or `exact = ...`), the request target, and the expected status and Location.
struct Case {
    settings: &'static str,
    matching: &'static str,
    target: &'static str,
    status: u16,
    location: &'static str,
}

const CASES: &[Case] = &[
    Case {
        settings: r#"to = "/new""#,
        matching: r#"path = "/a""#,
        target: "/a/x?q=1",
        status: 302,
        location: "/new?q=1",
    },
    Case {
        settings: r#"to = "/new"
keep_query = false"#,
        matching: r#"path = "/b""#,
        target: "/b/x?q=1",
        status: 302,
        location: "/new",
    },
    Case {
        settings: r#"to = "https://example.com/docs"
status = 301
keep_path = true"#,
        matching: r#"path = "/c""#,
        target: "/c/guide/intro.html?lang=en",
        status: 301,
        location: "https://example.com/docs/guide/intro.html?lang=en",
    },
    Case {
        settings: r#"to = "https://example.com/"
status = 308
keep_path = true"#,
        matching: r#"path = "/d""#,
        target: "/d/x",
        status: 308,
        location: "https://example.com/x",
    },
    Case {
        settings: r#"to = "/e-new?from=e"
status = 307
keep_path = true"#,
        matching: r#"path = "/e""#,
        target: "/e/p?q=2",
        status: 307,
        location: "/e-new/p?from=e&q=2",
    },
    Case {
        settings: r#"to = "/f-new"
status = 303
keep_path = true"#,
        matching: r#"path = "/f""#,
        target: "/f",
        status: 303,
        location: "/f-new",
    },
    Case {
        settings: r#"to = "https://example.com/#top"
keep_path = true"#,
        matching: r#"exact = "/g""#,
        target: "/g?x",
        status: 302,
        location: "https://example.com/?x#top",
    },
    Case {
        settings: r#"to = "/h-new"
keep_path = true"#,
        matching: r#"path = "/h""#,
        target: "/h/a%20b/%2e%2e",
        status: 302,
        // Dot segments are resolved before routing: the request is for `/h/`.
        location: "/h-new/",
    },
];

fn server() -> TestServer {
    let mut config = String::from(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n[defaults]\nheaders = { \"X-Served-By\" = \"it\" }\n",
    );
    for (i, case) in CASES.iter().enumerate() {
        config.push_str(&format!(
            "\n[[route]]\nname = \"r{i}\"\n{}\nhandler = \"redirect\"\n{}\n",
            case.matching, case.settings
        ));
    }
    TestServer::start(&config)
}

#[test]
fn redirects_build_location_from_target_path_and_query() {
    let server = server();
    let mut client = server.connect();
    for case in CASES {
        client.send(&get(case.target));
        let response = client.read_response();
        assert_eq!(response.status, case.status, "{}", case.target);
        assert_eq!(
            response.header("location"),
            Some(case.location),
            "{}",
            case.target
        );
        assert_eq!(
            response.header("x-served-by"),
            Some("it"),
            "{}",
            case.target
        );
        let reason = match case.status {
            301 => "Moved Permanently",
            302 => "Found",
            303 => "See Other",
            307 => "Temporary Redirect",
            _ => "Permanent Redirect",
        };
        assert_eq!(
            response.text(),
            format!("{} {reason}: {}\n", case.status, case.location)
        );
    }
}

#[test]
fn head_gets_the_redirect_without_a_body_and_a_request_body_is_discarded() {
    let server = server();
    let mut client = server.connect();
    client.send(b"HEAD /a/x HTTP/1.1\r\nHost: test\r\n\r\n");
    let response = client.read_response_to("HEAD");
    assert_eq!(response.status, 302);
    assert_eq!(response.header("location"), Some("/new"));
    let length: usize = response
        .header("content-length")
        .and_then(|len| len.parse().ok())
        .expect("Content-Length");
    assert_eq!(length, "302 Found: /new\n".len());
    // A POST body is read and dropped; the next request on the connection is answered.
    client.send(b"POST /b HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(client.read_response().header("location"), Some("/new"));
    client.send(&get("/a"));
    assert_eq!(client.read_response().status, 302);
}

/// Hostile request targets must not make `Location` leave the site or carry a header: an
/// encoded CRLF stays encoded, and a path that would make `Location` start with `//` or
/// `/\` (which browsers read as a scheme-relative URL to another host) is refused or kept
/// on the site.
#[test]
fn hostile_targets_cannot_inject_headers_or_redirect_off_site() {
    let server = TestServer::start(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n\
         [[route]]\nname = \"root\"\npath = \"/old\"\nhandler = \"redirect\"\nto = \"/\"\nkeep_path = true\n",
    );
    let mut client = server.connect();
    // An encoded CRLF in the query is copied as it is: never decoded into the header.
    client.send(&get("/old?x=%0d%0aSet-Cookie:%20a=b"));
    let response = client.read_response();
    assert_eq!(response.status, 302);
    assert_eq!(
        response.header("location"),
        Some("/?x=%0d%0aSet-Cookie:%20a=b")
    );
    assert_eq!(response.header("set-cookie"), None);
    for target in [
        "/old//evil.example",
        "/old///evil.example",
        "/old/\\evil.example",
        "/old//\\evil.example",
        "/old/\\/evil.example",
    ] {
        let mut client = server.connect();
        client.send(&get(target));
        let response = client.read_response();
        if response.status == 400 {
            continue;
        }
        assert_eq!(response.status, 302, "{target}");
        let location = response.header("location").expect("Location").to_owned();
        let off_site =
            location.starts_with("//") || location.starts_with("/\\") || location.starts_with("\\");
        assert!(
            !off_site,
            "{target} -> Location: {location} leaves the site"
        );
    }
}
