//! The asycamore(8) man page, rendered from the clap definition of the command line
//! (`asycamore::daemon::Cli`) with clap_mangen, plus the sections clap does not know about:
//! COMMANDS (each subcommand with its options), SIGNALS, FILES, EXIT STATUS and SEE ALSO.
//!
//! Shared by the `xtask` binary (`cargo run -p xtask -- man OUTDIR`) and by the packaging test
//! in `tests/it/packaging_man.rs`, which includes this file with `#[path]`.

use std::io;

use asycamore::daemon::{
    Cli, EXIT_CONFIG, EXIT_NOPERM, EXIT_STARTUP, EXIT_UNAVAILABLE, EXIT_USAGE as EXIT_WRONG_FILE,
};
use clap::CommandFactory;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};

/// The file name of the page.
pub const FILE_NAME: &str = "asycamore.8";

/// The exit status of a command-line usage error (clap's).
const EXIT_USAGE: u8 = 2;

/// The whole page, as roff source.
pub fn render() -> io::Result<Vec<u8>> {
    // The NAME line: the package description also mentions the library, which a man page
    // of the daemon does not need.
    let cmd = Cli::command()
        .disable_help_subcommand(true)
        .about("a poll-driven HTTP/1.1 server daemon");
    let version = cmd.get_version().unwrap_or_default().to_string();
    let man = Man::new(cmd.clone())
        .section("8")
        .source(format!("asycamore {version}"))
        .manual("System Administration");

    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    // Our own SYNOPSIS: clap_mangen's leaves out the value each option takes (`[-c|--config]`)
    // and names no subcommand; this one has a line per form, with every argument named.
    let mut synopsis = Roff::new();
    synopsis.control("SH", ["SYNOPSIS"]);
    synopsis.text(synopsis_line(&cmd, &[]));
    for sub in cmd.get_subcommands() {
        synopsis.control("br", []);
        synopsis.text(synopsis_line(sub, &[sub.get_name()]));
    }
    synopsis.to_writer(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;

    // clap_mangen's SUBCOMMANDS section points at a page per subcommand; this one page
    // documents them in full instead.
    let mut roff = Roff::new();
    if cmd.has_subcommands() {
        roff.control("SH", ["COMMANDS"]);
    }
    for sub in cmd.get_subcommands() {
        subcommand_section(&mut roff, sub);
    }
    signals(&mut roff);
    files(&mut roff);
    exit_status(&mut roff);
    examples(&mut roff);
    see_also(&mut roff);
    roff.to_writer(&mut out)?;

    man.render_version_section(&mut out)?;
    Ok(out)
}

/// One synopsis line: `asycamore`, the subcommand words, then every visible argument: an
/// option as `[-c|--config PATH]` (with its value's name), a positional as `SHELL` (in
/// brackets when optional). `--help` and `--version` are left to OPTIONS.
fn synopsis_line(cmd: &clap::Command, words: &[&str]) -> Vec<clap_mangen::roff::Inline> {
    let mut line = vec![bold("asycamore")];
    for word in words {
        line.push(roman(" "));
        line.push(bold(*word));
    }
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        let value = arg
            .get_value_names()
            .and_then(|v| v.first())
            .map(ToString::to_string);
        let Some(long) = arg.get_long() else {
            let name = value.unwrap_or_else(|| arg.get_id().to_string().to_uppercase());
            line.push(roman(" "));
            if arg.is_required_set() {
                line.push(italic(name));
            } else {
                line.extend([roman("["), italic(name), roman("]")]);
            }
            continue;
        };
        if matches!(long, "help" | "version") {
            continue;
        }
        line.push(roman(" ["));
        if let Some(short) = arg.get_short() {
            line.push(bold(format!("-{short}")));
            line.push(roman("|"));
        }
        line.push(bold(format!("--{long}")));
        if let Some(value) = value.filter(|_| arg.get_action().takes_values()) {
            line.push(roman(" "));
            line.push(italic(value));
        }
        line.push(roman("]"));
    }
    line
}

/// A subcommand under COMMANDS: its synopsis, long description and arguments.
fn subcommand_section(roff: &mut Roff, sub: &clap::Command) {
    let name = sub.get_name();
    roff.control("SS", [format!("asycamore {name}").as_str()]);
    roff.text(synopsis_line(sub, &[name]));
    if let Some(about) = sub.get_long_about().or(sub.get_about()) {
        for para in about.to_string().split("\n\n") {
            roff.control("PP", []);
            roff.text([roman(para.replace('\n', " "))]);
        }
    }
    for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
        roff.control("TP", []);
        let mut head = Vec::new();
        if let Some(short) = arg.get_short() {
            head.push(bold(format!("-{short}")));
            head.push(roman(", "));
        }
        if let Some(long) = arg.get_long() {
            head.push(bold(format!("--{long}")));
        }
        if let Some(value) = arg.get_value_names().and_then(|v| v.first()) {
            head.push(roman(" "));
            head.push(italic(value.to_string()));
        }
        roff.text(head);
        if let Some(help) = arg.get_long_help().or(arg.get_help()) {
            roff.text([roman(help.to_string().replace('\n', " "))]);
        }
    }
}

/// One `.TP` entry: a bold tag, then its text.
fn entry(roff: &mut Roff, tag: &str, text: &str) {
    roff.control("TP", []);
    roff.text([bold(tag)]);
    roff.text([roman(text)]);
}

fn signals(roff: &mut Roff) {
    roff.control("SH", ["SIGNALS"]);
    entry(
        roff,
        "SIGHUP",
        "Reload the configuration file. It is validated as with --check; when invalid, every \
         error is logged and the previous configuration keeps serving. When valid, it is \
         published with the next generation number, new listeners are added before removed \
         ones close, and no connection is dropped. asycamore reload sends this signal and \
         reports the outcome.",
    );
    entry(
        roff,
        "SIGTERM, SIGINT",
        "Graceful stop: stop accepting, finish the requests in flight and answer those already \
         received, close idle connections, and exit 0. Connections still open after \
         [server] shutdown_timeout are closed.",
    );
    entry(
        roff,
        "SIGQUIT",
        "Stop at once, closing every connection (also during a graceful stop); exit 0.",
    );
    entry(
        roff,
        "SIGUSR1",
        "Reopen the error-log and access-log files, for log rotation.",
    );
}

fn files(roff: &mut Roff) {
    roff.control("SH", ["FILES"]);
    entry(
        roff,
        "/etc/asycamore/asycamore.toml",
        "The configuration file installed by the package, read by the service and, by \
         default, by asycamore reload. Without --config the daemon serves its embedded \
         default configuration instead.",
    );
    entry(
        roff,
        "/var/log/asycamore/",
        "The error log and access log files, when the configuration writes logs to files; \
         rotated by logrotate, which sends SIGUSR1.",
    );
    entry(
        roff,
        "/var/lib/asycamore/",
        "The state directory of the asycamore user, for example the directory for uploads.",
    );
    entry(
        roff,
        "/var/www/asycamore/",
        "The files the packaged configuration serves.",
    );
    entry(
        roff,
        "/run/asycamore/asycamore.pid",
        "The pidfile, when [server] pidfile names one (the packaged configuration names this \
         path): the daemon's process id, locked while it runs and removed when it exits. \
         Needed by --daemonize and asycamore reload.",
    );
    entry(
        roff,
        "/run/asycamore/asycamore.pid.reload",
        "The status file beside the pidfile (PIDFILE.reload), when a pidfile is configured: \
         the outcome of the last reload, read by asycamore reload.",
    );
}

fn exit_status(roff: &mut Roff) {
    roff.control("SH", ["EXIT STATUS"]);
    roff.text([roman(
        "Values from sysexits(3), which systemd names in systemctl status (for example \
         78/CONFIG).",
    )]);
    entry(
        roff,
        "0",
        "Success: the server stopped after SIGTERM, SIGINT or SIGQUIT; --check found the \
         configuration valid; --version or --help; asycamore reload saw the new configuration \
         serving.",
    );
    entry(roff, &EXIT_USAGE.to_string(), "Command-line usage error.");
    entry(
        roff,
        &EXIT_WRONG_FILE.to_string(),
        "EX_USAGE: asycamore reload --config FILE named a file other than the one the daemon \
         runs (both are named).",
    );
    entry(
        roff,
        &EXIT_UNAVAILABLE.to_string(),
        "EX_UNAVAILABLE: asycamore reload could not reach the daemon, or it did not answer in \
         time.",
    );
    entry(
        roff,
        &EXIT_STARTUP.to_string(),
        "EX_OSERR: the server could not start although its configuration is valid, for \
         example because a listen address is in use or a daemon already holds the pidfile.",
    );
    entry(
        roff,
        &EXIT_NOPERM.to_string(),
        "EX_NOPERM: asycamore reload may not talk to the daemon: the admin socket, the token \
         file or the pidfile cannot be read by this user, or the daemon refused the token.",
    );
    entry(
        roff,
        &EXIT_CONFIG.to_string(),
        "EX_CONFIG: the configuration is invalid or cannot be read (for asycamore reload: the \
         daemon rejected it, logged and counted the failure, and keeps serving the previous \
         one).",
    );
}

fn examples(roff: &mut Roff) {
    roff.control("SH", ["EXAMPLES"]);
    for (what, command) in [
        (
            "Check a configuration file, printing every error located, or the routes it defines:",
            "asycamore --check --config /etc/asycamore/asycamore.toml",
        ),
        (
            "Serve it in the foreground, logging at debug level:",
            "asycamore --config site.toml --log-level debug",
        ),
        (
            "Apply an edited file to the running daemon and wait for the outcome:",
            "asycamore reload --config /etc/asycamore/asycamore.toml",
        ),
        (
            "Install bash completion for the current user:",
            "asycamore completions bash > ~/.local/share/bash-completion/completions/asycamore",
        ),
    ] {
        roff.control("PP", []);
        roff.text([roman(what)]);
        roff.control("RS", ["4"]);
        roff.control("nf", []);
        roff.text([roman(command)]);
        roff.control("fi", []);
        roff.control("RE", []);
    }
}

fn see_also(roff: &mut Roff) {
    roff.control("SH", ["SEE ALSO"]);
    roff.text([
        bold("asycamore.toml"),
        roman("(5), "),
        bold("systemctl"),
        roman("(1), "),
        bold("systemd.socket"),
        roman("(5), "),
        bold("logrotate"),
        roman("(8); /usr/share/doc/asycamore/"),
    ]);
}
