//! The asycamore(8) man page that `cargo run -p xtask -- man OUTDIR` writes: rendered here with
//! the same code (`xtask/src/man.rs`), it must format without a warning from man(1) or groff(1)
//! and document every command-line flag and the sections the packages rely on.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use clap::CommandFactory;

use crate::support::temp_path;

#[path = "../../xtask/src/man.rs"]
mod man;
#[path = "../../xtask/src/man_config.rs"]
mod man_config;

/// The sections added after clap_mangen's own.
const EXTRA_SECTIONS: [&str; 3] = ["SIGNALS", "FILES", "EXIT STATUS"];

/// Writes the page to a fresh directory under the temp directory, as the xtask does.
fn render_to_temp() -> PathBuf {
    let dir = temp_path("man");
    std::fs::create_dir_all(&dir).expect("create the man directory");
    let path = dir.join(man::FILE_NAME);
    std::fs::write(&path, man::render().expect("render the man page")).expect("write the page");
    path
}

/// The same for asycamore.toml(5).
fn render_config_page_to_temp() -> PathBuf {
    let dir = temp_path("man5");
    std::fs::create_dir_all(&dir).expect("create the man directory");
    let path = dir.join(man_config::FILE_NAME);
    let page = man_config::render(asycamore::daemon::VERSION).expect("render the page");
    std::fs::write(&path, page).expect("write the page");
    path
}

fn remove(path: &Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The roff source with `\-` unescaped, so flags can be searched for as typed.
fn source(path: &Path) -> String {
    std::fs::read_to_string(path)
        .expect("read the page")
        .replace("\\-", "-")
}

#[test]
fn man_page_mentions_every_flag_and_the_extra_sections() {
    let path = render_to_temp();
    let text = source(&path);
    remove(&path);
    assert!(text.contains("\n.TH asycamore 8 "), "{text}");

    let cli = asycamore::daemon::Cli::command();
    let mut commands = vec![&cli];
    commands.extend(cli.get_subcommands());
    for cmd in commands {
        if cmd.get_name() != "asycamore" {
            assert!(
                text.contains(&format!("asycamore {}", cmd.get_name())),
                "no section for the {} command",
                cmd.get_name()
            );
        }
        for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(long) = arg.get_long() {
                assert!(text.contains(&format!("--{long}")), "--{long} is missing");
            }
            if let Some(short) = arg.get_short() {
                assert!(text.contains(&format!("-{short}")), "-{short} is missing");
            }
        }
    }

    let headings: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix(".SH "))
        .map(|h| h.trim_matches('"'))
        .collect();
    for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS"]
        .into_iter()
        .chain(EXTRA_SECTIONS)
    {
        assert!(
            headings.contains(&section),
            "no {section} section in {headings:?}"
        );
    }
    for signal in ["SIGHUP", "SIGTERM", "SIGINT", "SIGQUIT", "SIGUSR1"] {
        assert!(text.contains(signal), "{signal} is missing");
    }
    for file in [
        "/etc/asycamore/asycamore.toml",
        "/var/log/asycamore/",
        "/var/lib/asycamore/",
        "pidfile",
    ] {
        assert!(text.contains(file), "{file} is missing");
    }
}

/// Runs a formatter over the page and fails on any warning it prints. Returns false when the
/// tool is not installed (CI installs man-db and groff-base, see `.ci/run`).
fn lint_with(program: &str, args: &[&str], path: &Path) -> bool {
    lint_page_with(program, args, path, "HTTP/1.1 server daemon")
}

fn lint_page_with(program: &str, args: &[&str], path: &Path, expect: &str) -> bool {
    let output = match Command::new(program)
        .args(args)
        .arg(path)
        .env("MANWIDTH", "80")
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::null())
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
        Err(e) => panic!("run {program}: {e}"),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.trim().is_empty(),
        "{program} {args:?} on the man page: {}\n{stderr}",
        output.status
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(expect),
        "{program} printed no page"
    );
    true
}

#[test]
fn man_page_formats_without_warnings() {
    let path = render_to_temp();
    let groff = lint_with("groff", &["-man", "-Tutf8", "-ww"], &path);
    let man = lint_with("man", &["--warnings", "-l"], &path);
    remove(&path);
    if !(groff || man) {
        assert!(
            std::env::var_os("CI").is_none(),
            "neither groff nor man is installed; .ci/run installs them"
        );
        eprintln!("skipped: neither groff nor man is installed");
    }
}

/// The synopsis of asycamore(8) names every option's value and each subcommand with its
/// arguments, and the page has EXAMPLES.
#[test]
fn man_page_synopsis_names_the_arguments_and_there_are_examples() {
    let path = render_to_temp();
    let text = source(&path);
    remove(&path);
    let synopsis = text
        .split(".SH SYNOPSIS")
        .nth(1)
        .and_then(|rest| rest.split("\n.SH").next())
        .expect("a SYNOPSIS section");
    for named in [
        "\\fB--config\\fR \\fIPATH\\fR",
        "\\fB--log-level\\fR \\fILEVEL\\fR",
        "\\fB--profile\\fR \\fIFILE\\fR",
        "\\fBreload\\fR",
        "\\fBcompletions\\fR \\fISHELL\\fR",
    ] {
        assert!(synopsis.contains(named), "{named} not in {synopsis}");
    }
    assert!(text.contains("\n.SH EXAMPLES\n"), "{text}");
    assert!(
        text.contains("asycamore.toml"),
        "SEE ALSO names the config page"
    );
}

/// asycamore.toml(5): every key of every section (from docs/CONFIGURATION.md), the size and
/// error formats, EXAMPLES, and no warning from groff or man.
#[test]
fn config_man_page_documents_every_key_and_formats_cleanly() {
    let path = render_config_page_to_temp();
    let text = source(&path);
    assert!(text.contains(".TH asycamore.toml 5 "), "{text}");
    let headings: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix(".SH "))
        .map(|h| h.trim_matches('"'))
        .collect();
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "KEYS",
        "EXAMPLES",
        "FILES",
        "SEE ALSO",
    ] {
        assert!(headings.contains(&section), "no {section} in {headings:?}");
    }
    for heading in [
        "[server]",
        "[limits]",
        "[defaults]",
        "[[route]]",
        "[[upstream]]",
        "[admin]",
    ] {
        assert!(text.contains(&format!(".SS {heading}")), "no {heading}");
    }
    for key in [
        "listen",
        "max_body_bytes",
        "shutdown_timeout",
        "syslog_facility",
        "flush_interval",
        "profile_max_seconds",
        "follow_symlinks_outside_root",
        "next_upstream_tries",
        "weight",
    ] {
        assert!(text.contains(&format!("\\fB{key}\\fR")), "{key} is missing");
    }
    for words in [
        "1024-based",
        "FILE:LINE:COLUMN: KEY: MESSAGE",
        "did you mean",
    ] {
        assert!(text.contains(words), "{words} is missing");
    }
    let groff = lint_page_with("groff", &["-man", "-Tutf8", "-ww"], &path, "File Formats");
    let man = lint_page_with("man", &["--warnings", "-l"], &path, "File Formats");
    remove(&path);
    if !(groff || man) {
        assert!(
            std::env::var_os("CI").is_none(),
            "neither groff nor man is installed"
        );
        eprintln!("skipped the formatting check: neither groff nor man is installed");
    }
}
