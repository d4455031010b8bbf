//! The command line, defined once with clap (the man page will be generated from it).

use std::path::PathBuf;

use clap::Parser;

/// asycamore: a poll-driven HTTP/1.1 server daemon.
///
/// With no arguments it serves its embedded default configuration on 127.0.0.1:8080.
/// Exit status: 0 success; 1 invalid configuration; 2 command-line usage error; 3 the
/// server could not start.
#[derive(Debug, Parser)]
#[command(name = "asycamore", version, about, long_about)]
pub struct Cli {
    /// The configuration file (TOML). Without it, the embedded default is used.
    #[arg(short, long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Validate the configuration and exit: prints every error as
    /// FILE:LINE:COLUMN: KEY: MESSAGE and exits 1, or prints a summary and exits 0.
    #[arg(long)]
    pub check: bool,

    /// The most detailed log level written to stderr.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub log_level: log::LevelFilter,
}
