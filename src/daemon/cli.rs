//! The command line, defined once with clap (the man page will be generated from it).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// asycamore: a poll-driven HTTP/1.1 server daemon.
///
/// With no arguments it serves its embedded default configuration on 127.0.0.1:8080.
/// Exit status: 0 success; 2 command-line usage error; 78 (EX_CONFIG) invalid configuration;
/// 71 (EX_OSERR) the server could not start (an address in use, say).
///
/// Signals: SIGHUP reloads the configuration file (see `asycamore reload`); SIGTERM and
/// SIGINT stop gracefully (in-flight requests finish, up to `[server] shutdown_timeout`);
/// SIGQUIT stops at once; SIGUSR1 reopens the log files.
#[derive(Debug, Parser)]
#[command(
    name = "asycamore",
    version = VERSION,
    about,
    long_about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The configuration file (TOML). Without it, the embedded default is used.
    #[arg(short, long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Validate the configuration and exit: prints every error as
    /// FILE:LINE:COLUMN: KEY: MESSAGE and exits 78, or prints a summary and exits 0. Under the
    /// journal (stdout is `JOURNAL_STREAM`, as in the unit's ExecStartPre=) only the first line
    /// of the summary is written, the rest at debug level (`--log-level debug`).
    #[arg(long)]
    pub check: bool,

    /// Detach and run in the background (needs `[server] pidfile`). Returns once the
    /// daemon is serving (exit 0), or with its error when it cannot start (exit 71). The
    /// daemon's stderr is /dev/null when it is a terminal: a `[log] target = "stderr"` log
    /// then goes to syslog; a file or pipe (`2>>FILE`) keeps it.
    #[arg(long)]
    pub daemonize: bool,

    /// The most detailed log level written; overrides `[log] level`, also on reload.
    #[arg(long, value_name = "LEVEL", value_parser = log_level_parser())]
    pub log_level: Option<log::LevelFilter>,

    /// Profile the CPU for the whole run and write the profile to FILE when the daemon
    /// exits: an SVG flame graph if FILE ends in `.svg`, else gzip-compressed pprof
    /// protobuf (for `pprof` or `go tool pprof`). The admin port's profiling endpoints
    /// answer 409 meanwhile.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
}

/// What `--version` prints after the name: the package version and the git commit it was
/// built from (`build.rs`: "unknown" when built without git).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("ASYCAMORE_COMMIT"),
    ")"
);

/// The `--log-level` values, listed by `--help` and by the error for any other value.
pub const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

fn log_level_parser() -> impl clap::builder::TypedValueParser<Value = log::LevelFilter> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(LOG_LEVELS).map(|level| {
        // Each of LOG_LEVELS is a level name `log` parses.
        level.parse().unwrap_or(log::LevelFilter::Info)
    })
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Reload the running daemon's configuration and wait for the outcome.
    ///
    /// Finds the daemon through the configuration file (its admin.unix_socket, else an
    /// admin.listen written in it, else its server.pidfile, else 127.0.0.1:9180; a file
    /// that does not parse is scanned leniently for these keys), and asks it to reload:
    /// `POST /reload` with the admin token (admin.token or admin.token_file), or SIGHUP. The
    /// daemon judges the file, logs and counts a failure. Exit status: 0 the new configuration
    /// is serving (keys that need a restart are printed as warnings); 78 it was rejected:
    /// every error is printed, located, and the daemon keeps serving its previous
    /// configuration; 64 FILE is not the file the daemon runs (both are named); 69 the daemon
    /// could not be reached or did not answer in 30 s; 77 the socket, token file or pidfile
    /// is not readable by this user, or the token was refused.
    Reload {
        /// The configuration file. Default: /etc/asycamore/asycamore.toml.
        #[arg(short, long, value_name = "PATH")]
        config: Option<PathBuf>,
    },
    /// Print a shell completion script to standard output.
    ///
    /// bash: `asycamore completions bash > /etc/bash_completion.d/asycamore` (or
    /// `~/.local/share/bash-completion/completions/asycamore`); zsh: `asycamore completions
    /// zsh > "${fpath[1]}/_asycamore"`; fish: `asycamore completions fish >
    /// ~/.config/fish/completions/asycamore.fish`.
    Completions {
        /// The shell.
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
}
