//! The route table: an immutable value mapping a request path to a handler.
//!
//! A table is built once (from config, or by library code) and then only read, so a reload
//! can publish a new one in one step while requests that started under the old one finish
//! with it. Lookup allocates nothing. The table is itself a [`Handler`]: it answers 404
//! when no route matches and otherwise passes the request to the route's handler.

use crate::service::{Handler, Request, ResponseWriter, Start};

/// One route: requests whose path is `prefix` or lies below it go to `handler`.
#[derive(Debug)]
pub struct Route<H> {
    /// The route's name (unique; a bounded label for logs and metrics).
    pub name: String,
    /// The path prefix, matched on segment boundaries (`/a` matches `/a` and `/a/b`, not `/ab`).
    pub prefix: String,
    /// What serves the route.
    pub handler: H,
}

/// The routes of one configuration generation.
#[derive(Debug)]
pub struct RouteTable<H> {
    /// Longest prefix first, so the first match is the most specific.
    routes: Vec<Route<H>>,
    generation: u64,
}

impl<H> RouteTable<H> {
    /// A table for `routes` (in any order) at config `generation`.
    pub fn new(mut routes: Vec<Route<H>>, generation: u64) -> Self {
        routes.sort_by_key(|route| std::cmp::Reverse(route.prefix.len()));
        RouteTable { routes, generation }
    }

    /// The config generation this table was built from.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The routes, most specific first.
    pub fn routes(&self) -> &[Route<H>] {
        &self.routes
    }

    /// The route serving `path`, if any.
    pub fn find(&self, path: &str) -> Option<&Route<H>> {
        self.routes
            .iter()
            .find(|route| prefix_matches(&route.prefix, path))
    }
}

fn prefix_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

impl<H: Handler> Handler for RouteTable<H> {
    type Exchange = H::Exchange;

    fn start(
        &self,
        request: &Request<'_>,
        response: &mut ResponseWriter<'_>,
    ) -> Start<Self::Exchange> {
        match self.find(request.path()) {
            Some(route) => route.handler.start(request, response),
            None => {
                response.complete(
                    404,
                    &[("Content-Type", b"text/plain; charset=utf-8")],
                    b"404 Not Found\n",
                );
                Start::Complete
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_specific_prefix_wins_on_segment_boundaries() {
        let route = |name: &str, prefix: &str| Route {
            name: name.into(),
            prefix: prefix.into(),
            handler: (),
        };
        let table = RouteTable::new(
            vec![route("root", "/"), route("a", "/a"), route("ab", "/a/b")],
            1,
        );
        let cases = [
            ("/", Some("root")),
            ("/x", Some("root")),
            ("/a", Some("a")),
            ("/a/", Some("a")),
            ("/ab", Some("root")),
            ("/a/b/c", Some("ab")),
            ("/a/bc", Some("a")),
        ];
        for (path, expected) in cases {
            assert_eq!(
                table.find(path).map(|r| r.name.as_str()),
                expected,
                "{path}"
            );
        }
        let no_root = RouteTable::new(vec![route("a", "/a")], 1);
        assert!(no_root.find("/b").is_none());
        assert!(no_root.find("*").is_none());
    }
}
