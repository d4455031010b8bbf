//! RFC 9110 / RFC 9112 requirements the server meets by serving rather than refusing (the
//! refusals are rows of `bad_input`): later minor versions, `OPTIONS *`, fixed 304s, and
//! absolute-form targets routed by their own authority. Each test names its section.

use crate::support::{
    BASE, Client, Process, TestServer, binary, metric_value, scrape, write_config,
};

/// RFC 9110 2.5: a request of HTTP/1.2 to 1.9 is processed as HTTP/1.1, the highest minor
/// version the server supports; HTTP/2.0 stays 505 (`bad_input`).
#[test]
fn rfc9110_2_5_a_later_minor_version_is_served_as_http_1_1() {
    let server = TestServer::start(BASE);
    let mut client = server.connect();
    client.send(b"GET / HTTP/1.2\r\nHost: test\r\n\r\n");
    let response = client.read_response();
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.text(), "Hello, World!");
    assert!(!response.says_close(), "{response:?}");
    // Kept alive as HTTP/1.1 is, and the version may arrive split right after its digit.
    client.send(b"GET /echo HTTP/1.9");
    client.send(b"\r\nHost: test\r\n\r\n");
    let response = client.read_response();
    assert_eq!(response.status, 200, "{response:?}");
    assert!(
        response.text().starts_with("GET /echo HTTP/1.1\r\n"),
        "{:?}",
        response.text()
    );
    assert!(client.still_serves());
}

/// RFC 9110 9.3.7 and RFC 9112 3.2.4: `OPTIONS *` asks about the server: 200, `Allow` with
/// the methods its routes take, `Content-Length: 0`, and the connection stays open.
#[test]
fn rfc9110_9_3_7_options_asterisk_answers_for_the_server() {
    let root = crate::support::temp_path("options-root");
    std::fs::create_dir_all(&root).unwrap();
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\
         [[route]]\nname = \"files\"\npath = \"/files\"\nhandler = \"static\"\nroot = {root:?}\n\
         [[route]]\nname = \"up\"\npath = \"/up\"\nhandler = \"upload\"\ndir = {root:?}\n\
         [[route]]\nname = \"gone\"\npath = \"/gone\"\nhandler = \"respond\"\nstatus = 410\nmethods = [\"DELETE\"]\n"
    );
    let server = TestServer::start(&config);
    let mut client = server.connect();
    client.send(b"OPTIONS * HTTP/1.1\r\nHost: test\r\n\r\n");
    let response = client.read_response();
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(
        response.header("allow"),
        Some("DELETE, GET, HEAD, OPTIONS, POST, PUT")
    );
    assert_eq!(response.header("content-length"), Some("0"));
    assert!(response.text().is_empty());
    assert!(!response.says_close());
    // A route taking any method makes the server take every method it can serve.
    let server = TestServer::start(BASE);
    let mut client = server.connect();
    client.send(b"OPTIONS * HTTP/1.1\r\nHost: test\r\n\r\n");
    let response = client.read_response();
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(
        response.header("allow"),
        Some("DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT")
    );
    assert!(client.still_serves());
    std::fs::remove_dir_all(&root).ok();
}

/// RFC 9110 8.6 and 15.4.5: a fixed 304 carries no `Content-Length` (`0` would describe a
/// zero-length selected representation) and no body, and the connection goes on.
#[test]
fn rfc9110_8_6_a_fixed_304_sends_no_content_length() {
    let server = TestServer::start(&format!(
        "{BASE}\n[[route]]\nname = \"nm\"\npath = \"/nm\"\nhandler = \"respond\"\nstatus = 304\n\
         headers = {{ \"ETag\" = \"\\\"v1\\\"\" }}\n"
    ));
    let mut client = server.connect();
    for request in [
        &b"GET /nm HTTP/1.1\r\nHost: test\r\n\r\n"[..],
        b"HEAD /nm HTTP/1.1\r\nHost: test\r\n\r\n",
    ] {
        client.send(request);
        let (status, headers) = client.read_head();
        assert_eq!(status, 304);
        assert!(
            headers
                .iter()
                .all(|(name, _)| !name.eq_ignore_ascii_case("content-length")
                    && !name.eq_ignore_ascii_case("transfer-encoding")),
            "{headers:?}"
        );
        assert!(
            headers
                .iter()
                .any(|(name, value)| name == "ETag" && value == "\"v1\"")
        );
    }
    // Nothing followed the heads: the next response starts right after them.
    assert!(client.still_serves());
}

/// RFC 9112 3.2.2: with an absolute-form target the server ignores `Host` and uses the
/// target's authority, for routing and for what is counted: the route of `public.test`
/// serves it and is the one counted, though `Host` names `admin.test`.
#[test]
fn rfc9112_3_2_2_absolute_form_is_routed_by_its_authority_not_host() {
    let config = "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n\
         [[route]]\nname = \"public\"\nhost = \"public.test\"\npath = \"/\"\nhandler = \"respond\"\nbody = \"public\"\n\
         [[route]]\nname = \"admin\"\nhost = \"admin.test\"\npath = \"/\"\nhandler = \"respond\"\nbody = \"admin\"\n";
    let mut process = Process::start(binary(), write_config(config), &[]);
    let (data, admin) = process.served_addresses();
    let mut client = Client::connect(data);
    client.send(b"GET http://public.test/x HTTP/1.1\r\nHost: admin.test\r\n\r\n");
    assert_eq!(client.read_response().text(), "public");
    client.send(b"GET http://PUBLIC.test:80/x HTTP/1.1\r\nHost: admin.test\r\n\r\n");
    assert_eq!(client.read_response().text(), "public");
    client.send(b"GET /x HTTP/1.1\r\nHost: admin.test\r\n\r\n");
    assert_eq!(client.read_response().text(), "admin");
    let metrics = scrape(admin);
    let count = |route: &str| {
        metric_value(
            &metrics,
            "asycamore_http_requests_total",
            &[("route", route)],
        )
    };
    assert_eq!((count("public"), count("admin")), (2.0, 1.0));
}
