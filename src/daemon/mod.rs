//! Process lifecycle of the `asycamore` binary: command line, logging, loading the config,
//! starting the server, and the exit status.
//!
//! The only module that touches process-wide state (the global logger, exit codes). Nothing
//! in the library imports it; it imports everything. Signals, reload, daemonizing and
//! sd_notify grow here.

pub mod cli;
mod logging;

use std::process::ExitCode;
use std::sync::Arc;

use crate::config::{self, Config, ConfigErrors};
use crate::server;

pub use cli::Cli;

/// Exit status: the configuration is invalid.
pub const EXIT_CONFIG: u8 = 1;
/// Exit status: the server could not start (e.g. an address is in use).
pub const EXIT_STARTUP: u8 = 3;

/// Runs the binary with parsed arguments.
pub fn run(cli: Cli) -> ExitCode {
    logging::init(cli.log_level);
    let config = match load(&cli) {
        Ok(config) => config,
        Err(errors) => {
            for error in &errors.0 {
                if cli.check {
                    eprintln!("{error}");
                } else {
                    log::error!("{error}");
                }
            }
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if cli.check {
        print!("{}", summary(&cli, &config));
        return ExitCode::SUCCESS;
    }
    serve(&config)
}

fn load(cli: &Cli) -> Result<Config, ConfigErrors> {
    match &cli.config {
        Some(path) => config::load_file(path),
        None => config::load_str(config::EMBEDDED_DEFAULT, config::EMBEDDED_NAME),
    }
}

fn serve(config: &Config) -> ExitCode {
    raise_descriptor_limit(config);
    let table = Arc::new(config::route_table(config, 1));
    let handle = match server::start(config::server_config(config), table) {
        Ok(handle) => handle,
        Err(err) => {
            log::error!("cannot start: {err}");
            return ExitCode::from(EXIT_STARTUP);
        }
    };
    for addr in handle.local_addrs() {
        log::info!("listening on http://{addr}");
    }
    log::info!(
        "asycamore {} serving {} route(s) with {} worker(s), config generation 1",
        env!("CARGO_PKG_VERSION"),
        config.routes.len(),
        config.workers
    );
    handle.join();
    ExitCode::SUCCESS
}

/// Raises the soft open-file limit to the hard limit (as nginx's `worker_rlimit_nofile`
/// would), since the default soft limit of 1024 is far below what `max_connections` allows,
/// and warns when even the hard limit cannot hold every allowed connection.
fn raise_descriptor_limit(config: &Config) {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(err) => {
            log::warn!("cannot raise the open-file limit: {err}");
            return;
        }
    };
    let wanted = (config.workers * config.max_connections) as u64;
    if limit < wanted {
        log::warn!(
            "open-file limit {limit} is below workers x max_connections = {wanted}; \
             accepting will pause when descriptors run out"
        );
    }
}

/// What `--check` prints for a valid file: the source, the listeners, and one line per route
/// in the order lookup tries them, in the file's own vocabulary (`host=`, `path=` for a prefix,
/// `exact=` for one path, `methods=`, the handler and its key setting), columns aligned.
fn summary(cli: &Cli, config: &Config) -> String {
    use std::fmt::Write;
    let source = cli
        .config
        .as_ref()
        .map(|path| path.display().to_string())
        .unwrap_or_else(|| config::EMBEDDED_NAME.to_string());
    let mut text = String::new();
    let listen: Vec<String> = config.listen.iter().map(ToString::to_string).collect();
    let _ = writeln!(text, "{source}: configuration is valid");
    let _ = writeln!(text, "listen: {}", listen.join(", "));
    let _ = writeln!(text, "workers: {}", config.workers);
    let _ = writeln!(text, "routes: {} (in lookup order)", config.routes.len());
    let rows: Vec<[String; 5]> = config::precedence(config)
        .into_iter()
        .map(|route| {
            let path = match &route.path {
                config::PathPattern::Exact(path) => format!("exact={path}"),
                config::PathPattern::Prefix(path) => format!("path={path}"),
            };
            let methods = if route.methods.is_empty() {
                "any".to_string()
            } else {
                route.methods.join(",")
            };
            [
                route.name.clone(),
                format!("host={}", route.host),
                path,
                format!("methods={methods}"),
                handler_summary(&route.handler),
            ]
        })
        .collect();
    let mut widths = [0; 4];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for [name, host, path, methods, handler] in &rows {
        let [w0, w1, w2, w3] = widths;
        let _ = writeln!(
            text,
            "  {name:<w0$}  {host:<w1$}  {path:<w2$}  {methods:<w3$}  {handler}"
        );
    }
    text
}

/// A handler and the setting that says most about it.
fn handler_summary(handler: &config::HandlerSpec) -> String {
    match handler {
        config::HandlerSpec::Respond { status, .. } => format!("respond status={status}"),
        config::HandlerSpec::Echo => "echo".to_string(),
        config::HandlerSpec::Static { root, .. } => format!("static root={}", root.display()),
        config::HandlerSpec::Upload { dir, .. } => format!("upload dir={}", dir.display()),
        config::HandlerSpec::Redirect { status, to, .. } => {
            format!("redirect status={status} to={to}")
        }
    }
}
