//! The build step: a validated [`Config`] becomes the values the server runs on, a
//! [`ServerConfig`] and a [`RouteTable`] of built-in handlers.
//!
//! Building cannot fail: everything that could be wrong was rejected by `validate`. It binds
//! no sockets, connects nowhere and reads no file (the daemon does that); the one filesystem
//! touch is each static route opening its root directory, so a reload can build the next
//! generation off to the side and publish it in one step.

use std::collections::HashMap;
use std::sync::Arc;

use crate::handlers::proxy::{Proxy, ProxySettings, Upstream};
use crate::handlers::{
    Builtin, Echo, Redirect, RedirectSettings, Respond, StaticFiles, StaticSettings, Upload,
    UploadSettings,
};
use crate::http1::{ChunkedLimits, HeadLimits};
use crate::server::{self, Route, RouteTable, ServerConfig};
use crate::service::HeaderLines;

use super::{Config, HandlerSpec, RouteSpec};

/// The server settings of `config`.
pub fn server_config(config: &Config) -> ServerConfig {
    let limits = &config.limits;
    let timeouts = &config.timeouts;
    ServerConfig {
        name: "worker".into(),
        unix_listen: Vec::new(),
        access_log: None,
        metrics: true,
        listen: config.listen.clone(),
        defer_accept: config.defer_accept,
        workers: config.workers,
        limits: server::Limits {
            head: HeadLimits {
                max_head_bytes: limits.max_head_bytes,
                max_headers: limits.max_headers,
            },
            chunked: ChunkedLimits {
                max_extension_bytes: limits.max_chunk_extension_bytes,
                max_trailer_bytes: limits.max_trailer_bytes,
                ..ChunkedLimits::default()
            },
            max_body_bytes: limits.max_body_bytes,
            output_high_water: limits.output_buffer_bytes,
            max_connections: config.max_connections,
            max_requests_per_connection: config.max_requests_per_connection,
            min_body_bytes_per_second: limits.min_body_bytes_per_second,
            timeouts: server::Timeouts {
                head: timeouts.head,
                body: timeouts.body,
                idle: timeouts.idle,
                write: timeouts.write,
            },
        },
    }
}

/// The route table of `config`, tagged with `generation`. Each `[[upstream]]` becomes one
/// `Upstream`, shared by every proxy route naming it (its balancing and health are the
/// group's, not a route's); a new generation gets new groups.
pub fn route_table(config: &Config, generation: u64) -> RouteTable<Builtin> {
    route_table_after(config, generation, &[])
}

/// Like [`route_table`], replacing the groups of the table before (`previous`, as
/// [`upstreams_of`] lists them): a group of the same name carries its counters over (see
/// `Upstream::succeeding`), so a reload does not reset the upstream metrics.
pub fn route_table_after(
    config: &Config,
    generation: u64,
    previous: &[Arc<Upstream>],
) -> RouteTable<Builtin> {
    let upstreams: HashMap<&str, Arc<Upstream>> = config
        .upstreams
        .iter()
        .map(|settings| {
            let before = previous.iter().find(|up| up.name() == settings.name);
            let upstream = Upstream::succeeding(settings.clone(), before.map(|up| &**up));
            (settings.name.as_str(), Arc::new(upstream))
        })
        .collect();
    let routes = config
        .routes
        .iter()
        .map(|spec| route(spec, handler(spec, &upstreams)))
        .collect();
    RouteTable::new(routes, generation)
}

/// The upstream groups `table`'s proxy routes forward to, each once, in route order.
pub fn upstreams_of(table: &RouteTable<Builtin>) -> Vec<Arc<Upstream>> {
    let mut upstreams: Vec<Arc<Upstream>> = Vec::new();
    for upstream in table
        .routes()
        .iter()
        .filter_map(|route| route.handler.upstream())
    {
        if !upstreams.iter().any(|known| Arc::ptr_eq(known, upstream)) {
            upstreams.push(Arc::clone(upstream));
        }
    }
    upstreams
}

/// The routes of `config` in the order lookup tries them (the route table's order).
pub fn precedence(config: &Config) -> Vec<&RouteSpec> {
    let table = RouteTable::new(
        config.routes.iter().map(|spec| route(spec, spec)).collect(),
        0,
    );
    table.routes().iter().map(|route| route.handler).collect()
}

fn route<H>(spec: &RouteSpec, handler: H) -> Route<H> {
    Route {
        name: spec.name.clone(),
        host: spec.host.clone(),
        path: spec.path.clone(),
        methods: spec.methods.clone(),
        max_body_bytes: spec.max_body_bytes,
        handler,
    }
}

fn handler(spec: &RouteSpec, upstreams: &HashMap<&str, Arc<Upstream>>) -> Builtin {
    // Validation refused every field `HeaderLines` would; a hand-built `Config` with one
    // gets no route headers rather than a response split in two.
    let header_lines = HeaderLines::new(&spec.headers).unwrap_or_default();
    let prefix = spec.path.as_str().to_owned();
    match &spec.handler {
        HandlerSpec::Respond { status, body } => Builtin::Respond(Respond::new(
            *status,
            &header_lines,
            body.as_bytes().to_vec(),
        )),
        HandlerSpec::Echo => Builtin::Echo(Echo::new(header_lines)),
        HandlerSpec::Static {
            root,
            index,
            listing,
            follow_symlinks_outside_root,
        } => Builtin::Static(StaticFiles::new(StaticSettings {
            root: root.clone(),
            prefix,
            index: index.clone(),
            listing: *listing,
            follow_symlinks_outside_root: *follow_symlinks_outside_root,
            header_lines,
        })),
        HandlerSpec::Upload { dir, fsync } => Builtin::Upload(Upload::new(UploadSettings {
            dir: dir.clone(),
            prefix,
            fsync: *fsync,
            header_lines,
        })),
        HandlerSpec::Redirect {
            status,
            to,
            keep_path,
            keep_query,
        } => Builtin::Redirect(Redirect::new(RedirectSettings {
            status: *status,
            to: to.clone(),
            prefix,
            keep_path: *keep_path,
            keep_query: *keep_query,
            header_lines,
        })),
        HandlerSpec::Proxy { upstream, host } => match upstreams.get(upstream.as_str()) {
            Some(upstream) => Builtin::Proxy(Proxy::new(ProxySettings {
                upstream: Arc::clone(upstream),
                host: host.clone(),
                header_lines,
            })),
            // Validation never lets this happen (a proxy route names an existing upstream);
            // a hand-built `Config` that does gets what a proxy with no server answers.
            None => Builtin::Respond(Respond::new(502, &header_lines, Vec::new())),
        },
    }
}
