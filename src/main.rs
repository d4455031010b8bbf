//! The `asycamore` daemon binary: parse the command line, hand over to `daemon::run`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    asycamore::daemon::run(asycamore::daemon::Cli::parse())
}
