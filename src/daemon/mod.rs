//! Process lifecycle of the `asycamore` binary: command line, logging, loading the config,
//! starting the server, signals, reload, stopping, and the exit status.
//!
//! The only module that touches process-wide state (the global logger, signals, exit codes,
//! the pidfile). Nothing in the library imports it; it imports everything.
//!
//! Start-up order: load and validate the config (errors to stderr, exit 78); `--daemonize`
//! (fork, before any thread); take socket-activated listeners; install the error log; lock the
//! pidfile and create the reload status file beside it; register the signals; open the access
//! log; bind and start the workers; drop privileges; tell the invoker (daemon handshake) and
//! the service manager (`READY=1`); then the control loop (`control`) owns the server until
//! a stop.

mod access_log;
pub mod activation;
mod admin_glue;
pub mod cli;
mod control;
mod logging;
pub mod notify;
pub mod process;
mod reload;
mod reload_client;
mod sys;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::config::{self, Config, ConfigErrors, LogTarget};
use crate::handlers::Builtin;
use crate::server::{self, RouteTable, ServerHandle};

pub use cli::{Cli, Command, VERSION};

// Exit statuses: sysexits(3) values, which systemd names in `systemctl status` ("78/CONFIG",
// "71/OSERR"), instead of small numbers it reads as LSB init-script codes ("3/NOTIMPLEMENTED").
// 0 is success and 2 a command-line usage error (clap's).

/// Exit status 78 (EX_CONFIG): the configuration is invalid (at start, `--check`, or a
/// reload the daemon rejected).
pub const EXIT_CONFIG: u8 = 78;
/// Exit status 71 (EX_OSERR): the server could not start although its configuration is valid
/// (an address in use, a log or pidfile that cannot be opened, privileges that cannot be
/// dropped, a daemon already running).
pub const EXIT_STARTUP: u8 = 71;
/// Exit status 64 (EX_USAGE): `asycamore reload -c FILE` named a file the daemon does not run.
pub const EXIT_USAGE: u8 = 64;
/// Exit status 69 (EX_UNAVAILABLE): `asycamore reload` could not reach the daemon, or it did
/// not answer in time.
pub const EXIT_UNAVAILABLE: u8 = 69;
/// Exit status 77 (EX_NOPERM): `asycamore reload` may not talk to the daemon (the admin
/// socket, token or pidfile cannot be read by this user, or the token is refused).
pub const EXIT_NOPERM: u8 = 77;

/// The config file `asycamore reload` reads when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/asycamore/asycamore.toml";

/// Runs the binary with parsed arguments.
pub fn run(cli: Cli) -> ExitCode {
    match &cli.command {
        Some(Command::Reload { config }) => return reload_client::request(config.as_deref()),
        Some(Command::Completions { shell }) => {
            use clap::CommandFactory;
            let mut command = Cli::command();
            clap_complete::generate(*shell, &mut command, "asycamore", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        None => {}
    }
    // Until the config says where the log goes, it goes to stderr.
    logging::init_stderr(cli.log_level.unwrap_or(log::LevelFilter::Info));
    let mut config = match load(cli.config.as_deref()) {
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
        let text = summary(&cli, &config);
        if logging::stdout_is_journal() {
            // The unit's ExecStartPre= runs this at every start: one line at info, the
            // routes at debug (so only when asked for).
            let debug = cli.log_level.unwrap_or(config.log.level) >= log::LevelFilter::Debug;
            let mut lines = text.lines();
            if let Some(first) = lines.next() {
                println!("<6>{first}");
            }
            for line in lines.filter(|_| debug) {
                println!("<7>{line}");
            }
        } else {
            print!("{text}");
        }
        return ExitCode::SUCCESS;
    }
    if let Some(level) = cli.log_level {
        config.log.level = level;
    }
    // Resolved before `--daemonize` changes directory.
    let profile_path = cli
        .profile
        .as_ref()
        .map(|path| std::path::absolute(path).unwrap_or_else(|_| path.clone()));
    let mut log_override = None;
    let handshake = if cli.daemonize {
        let Some(pidfile) = config.pidfile.clone() else {
            eprintln!(
                "asycamore: --daemonize needs a pidfile: set [server] pidfile in {}",
                source_name(cli.config.as_deref())
            );
            return ExitCode::from(EXIT_CONFIG);
        };
        // The daemon leaves the terminal: its log must too.
        if config.log.target == LogTarget::Stderr && std::io::stderr().is_terminal() {
            config.log.target = daemonized_log_target();
            log_override = Some(config.log.target.clone());
            eprintln!(
                "asycamore: --daemonize: the error log goes to syslog (facility daemon, tag \
                 asycamore), not to this terminal; set [log] target, or redirect stderr \
                 (2>>FILE), to send it elsewhere"
            );
        }
        let keep_stderr = config.log.target == LogTarget::Stderr;
        match process::daemonize(&pidfile, keep_stderr) {
            Ok(handshake) => Some(handshake),
            Err(err) => {
                eprintln!("asycamore: {err}");
                return ExitCode::from(EXIT_STARTUP);
            }
        }
    } else {
        None
    };
    // After the fork (interval timers do not survive it), before anything worth profiling.
    let profile = match profile_path
        .as_deref()
        .map(crate::admin::profile::WholeRun::start)
    {
        None => None,
        Some(Ok(profile)) => Some(profile),
        Some(Err(message)) => {
            log::error!("{message}");
            if let Some(handshake) = handshake {
                handshake.failed(&message);
            }
            return ExitCode::from(EXIT_STARTUP);
        }
    };
    let code = match start(&cli, config, log_override) {
        Ok(daemon) => {
            if let Some(handshake) = handshake {
                if let Err(err) = handshake.ready() {
                    log::warn!("cannot tell the invoking process that the daemon is ready: {err}");
                }
            }
            control::run(daemon)
        }
        Err(message) => {
            log::error!("{message}");
            match handshake {
                Some(handshake) => handshake.failed(&message),
                // The logger may be a file or syslog: say it where the operator is looking.
                None if config_logs_elsewhere() => eprintln!("asycamore: {message}"),
                None => {}
            }
            ExitCode::from(EXIT_STARTUP)
        }
    };
    if let Some(Err(message)) = profile.map(crate::admin::profile::WholeRun::finish) {
        log::error!("{message}");
    }
    code
}

/// The running daemon: the server, the config it runs, and what the control loop keeps.
pub(crate) struct Daemon {
    /// Where the config is reloaded from (`None`: the embedded default).
    config_path: Option<PathBuf>,
    /// The configuration in force (keys needing a restart keep their start-up values).
    config: Config,
    handle: ServerHandle<RouteTable<Builtin>>,
    /// Each configured listen address and the address it is bound to (they differ for
    /// port 0), so a reload keeps what it still lists.
    bound: Vec<(SocketAddr, SocketAddr)>,
    /// The route table's generation: 1 at start, +1 per successful reload.
    generation: u64,
    /// Reloads attempted, and how many of them failed.
    reloads: u64,
    failed_reloads: u64,
    /// `--log-level`, which wins over `[log] level` on every reload too.
    cli_log_level: Option<log::LevelFilter>,
    /// Where a `[log] target = "stderr"` log goes instead, on every reload too: syslog,
    /// after `--daemonize` from a terminal.
    log_override: Option<LogTarget>,
    /// Released (and removed) when the daemon exits.
    pidfile: Option<process::PidFile>,
    status: Option<reload::StatusFile>,
    notifier: Option<notify::Notifier>,
    /// Signals, and the end of a drain.
    events: control::Events,
    /// The admin port, and its view of the daemon.
    admin: admin_glue::AdminPort,
    /// The proxy's upstream groups in the route table serving (a reload's new groups carry
    /// their counters over).
    upstreams: Vec<Arc<crate::handlers::proxy::Upstream>>,
}

/// Whether stderr is not where the error log goes (set once the logger is installed).
fn config_logs_elsewhere() -> bool {
    LOGS_ELSEWHERE.load(std::sync::atomic::Ordering::Relaxed)
}

static LOGS_ELSEWHERE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Removes the stale temporary files (`.upload-<hex>.tmp` that no upload holds: a killed
/// process's) from each upload directory of `config` that `previous` (the running config, on
/// a reload) does not use already, logging what each sweep removed. Runs before the routes
/// using a directory serve, off every poll loop (a directory is read whole).
fn sweep_upload_dirs(config: &Config, previous: Option<&Config>) {
    let upload_dirs = |config: &Config| -> Vec<std::path::PathBuf> {
        config
            .routes
            .iter()
            .filter_map(|route| match &route.handler {
                config::HandlerSpec::Upload { dir, .. } => Some(dir.clone()),
                _ => None,
            })
            .collect()
    };
    let known = previous.map(upload_dirs).unwrap_or_default();
    let mut dirs = upload_dirs(config);
    dirs.sort();
    dirs.dedup();
    for dir in dirs.iter().filter(|dir| !known.contains(dir)) {
        match crate::handlers::sweep_stale_uploads(dir) {
            Ok(swept) if swept.files > 0 => log::warn!(
                "upload: removed {} stale temporary file(s), {} bytes, from {} (left by a \
                 process that was killed)",
                swept.files,
                swept.bytes,
                dir.display()
            ),
            Ok(_) => {}
            Err(err) => log::warn!(
                "upload: cannot sweep {} for stale temporary files: {err}",
                dir.display()
            ),
        }
    }
}

/// Everything from the logger to a serving, privilege-dropped server; the error text if a
/// step fails (the caller logs it and exits `EXIT_STARTUP`).
fn start(cli: &Cli, config: Config, log_override: Option<LogTarget>) -> Result<Daemon, String> {
    let inherited = activation::inherited_listeners()
        .map_err(|err| format!("cannot take the socket-activated listeners: {err}"))?;
    if let Err(err) = logging::init(&config.log) {
        let hint = if log_override.is_some() {
            " (--daemonize from a terminal sends a [log] target = \"stderr\" log to syslog: \
             set [log] target = \"file\", or redirect stderr with 2>>FILE)"
        } else {
            ""
        };
        let message = format!("cannot open the error log: {err}{hint}");
        eprintln!("asycamore: {message}");
        return Err(message);
    }
    LOGS_ELSEWHERE.store(
        config.log.target != LogTarget::Stderr,
        std::sync::atomic::Ordering::Relaxed,
    );
    raise_descriptor_limit(&config);
    // Absolute, so a reload after `--daemonize` (which chdirs to /) reads the same file.
    let config_path = cli
        .config
        .as_ref()
        .map(|path| std::path::absolute(path).unwrap_or_else(|_| path.clone()));
    let mut pidfile = match &config.pidfile {
        Some(path) => Some(
            process::write_pidfile(path)
                .map_err(|err| format!("cannot write the pidfile {}: {err}", path.display()))?,
        ),
        None => None,
    };
    let status = match &config.pidfile {
        Some(path) => Some(
            reload::StatusFile::create(path, source_name(config_path.as_deref())).map_err(
                |err| {
                    format!(
                        "cannot write the reload status beside {}: {err}",
                        path.display()
                    )
                },
            )?,
        ),
        None => None,
    };
    if let Some(pidfile) = &mut pidfile {
        if process::drops_root(config.user.as_deref()) {
            let status = reload::status_path(pidfile.path());
            if let Err(err) = pidfile.remove_after_exit(&[status]) {
                log::warn!(
                    "the pidfile {} will be left behind at exit: cannot start the helper that \
                     removes it after privileges are dropped: {err}",
                    pidfile.path().display()
                );
            }
        }
    }
    let events = control::listen().map_err(|err| format!("cannot handle signals: {err}"))?;
    let mut server_config = config::server_config(&config);
    // Nobody reads the counters without the admin port.
    server_config.metrics = config.admin.enabled && config.admin.metrics;
    server_config.access_log = match &config.access_log {
        Some(access_log) => Some(access_log::open(access_log).map_err(|err| err.to_string())?),
        None => None,
    };
    sweep_upload_dirs(&config, None);
    let table = Arc::new(config::route_table(&config, 1));
    let handle = if inherited.is_empty() {
        server::start(server_config, Arc::clone(&table))
    } else {
        server::start_with_inherited(server_config, Arc::clone(&table), inherited)
    }
    .map_err(|err| format!("cannot start: {err}"))?;
    let bound: Vec<(SocketAddr, SocketAddr)> = config
        .listen
        .iter()
        .copied()
        .zip(handle.local_addrs().iter().copied())
        .collect();
    let admin = match admin_glue::AdminPort::start(
        &config,
        config_path.as_deref(),
        handle.stats_handle(),
        events.sender(),
    ) {
        Ok(admin) => admin,
        Err(err) => {
            handle.shutdown();
            return Err(err);
        }
    };
    let upstreams = config::upstreams_of(&table);
    admin.serving(upstreams.clone());
    drop(table);
    if let Err(err) = process::drop_privileges(config.user.as_deref(), config.group.as_deref()) {
        handle.shutdown();
        admin.stop();
        return Err(format!("cannot drop privileges: {err}"));
    }
    // Before "listening on": whoever waits for that line may reload at once, or ask /readyz
    // (the listeners already accept, so the daemon is serving).
    if let Some(status) = &status {
        status.write_ok(0, 1, &[]);
    }
    admin.ready();
    for (_, addr) in &bound {
        log::info!("listening on http://{addr}");
    }
    if let Some(addr) = admin.local_addr() {
        log::info!("admin port on http://{addr}");
    }
    if let Some(path) = admin.unix_socket() {
        log::info!("admin port on unix:{}", path.display());
    }
    log::info!(
        "asycamore {} serving {} route(s) with {} worker(s), config generation 1",
        env!("CARGO_PKG_VERSION"),
        config.routes.len(),
        config.workers
    );
    let notifier = notify::Notifier::from_env();
    if let Some(notifier) = &notifier {
        notifier.ready();
        notifier.status(1, 0);
    }
    Ok(Daemon {
        config_path,
        config,
        handle,
        bound,
        generation: 1,
        reloads: 0,
        failed_reloads: 0,
        cli_log_level: cli.log_level,
        log_override,
        pidfile,
        status,
        notifier,
        events,
        admin,
        upstreams,
    })
}

/// Where `--daemonize` from a terminal sends a `[log] target = "stderr"` log.
fn daemonized_log_target() -> LogTarget {
    LogTarget::Syslog {
        facility: "daemon".to_owned(),
        tag: "asycamore".to_owned(),
    }
}

fn load(path: Option<&std::path::Path>) -> Result<Config, ConfigErrors> {
    match path {
        Some(path) => config::load_file(path),
        None => config::load_str(config::EMBEDDED_DEFAULT, config::EMBEDDED_NAME),
    }
}

/// The name errors of the config at `path` are reported against.
fn source_name(path: Option<&std::path::Path>) -> String {
    path.map_or_else(
        || config::EMBEDDED_NAME.to_string(),
        |path| path.display().to_string(),
    )
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
/// `exact=` for one path, `methods=`, the route's effective body limit `max_body=` after
/// `[defaults]` and `[limits]`, the handler and its key setting), columns aligned.
fn summary(cli: &Cli, config: &Config) -> String {
    use std::fmt::Write;
    let source = source_name(cli.config.as_deref());
    let mut text = String::new();
    let listen: Vec<String> = config.listen.iter().map(ToString::to_string).collect();
    let _ = writeln!(text, "{source}: configuration is valid");
    let _ = writeln!(text, "listen: {}", listen.join(", "));
    let _ = writeln!(text, "workers: {}", config.workers);
    let _ = writeln!(
        text,
        "max_body_bytes: {} (limits.max_body_bytes: no route accepts more)",
        config::format_size(config.limits.max_body_bytes)
    );
    let _ = writeln!(text, "routes: {} (in lookup order)", config.routes.len());
    let rows: Vec<[String; 6]> = config::precedence(config)
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
                format!("max_body={}", config::format_size(route.max_body_bytes)),
                handler_summary(&route.handler),
            ]
        })
        .collect();
    let mut widths = [0; 5];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for [name, host, path, methods, body, handler] in &rows {
        let [w0, w1, w2, w3, w4] = widths;
        let _ = writeln!(
            text,
            "  {name:<w0$}  {host:<w1$}  {path:<w2$}  {methods:<w3$}  {body:<w4$}  {handler}"
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
        config::HandlerSpec::Proxy { upstream, .. } => format!("proxy upstream={upstream}"),
    }
}
