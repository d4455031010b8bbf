//! The asycamore.toml(5) man page: the configuration file's format, every key of every
//! section (rendered from the key tables of docs/CONFIGURATION.md, so the page and the
//! reference cannot drift apart), how values and errors are written, and EXAMPLES.
//!
//! Shared by the `xtask` binary (`cargo run -p xtask -- man OUTDIR`) and by the packaging test
//! in `tests/it/packaging_man.rs`, which includes this file with `#[path]`.

use std::io;

use clap_mangen::roff::{Roff, bold, italic, roman};

/// The file name of the page.
pub const FILE_NAME: &str = "asycamore.toml.5";

/// The reference the key tables are taken from.
const REFERENCE: &str = include_str!("../../docs/CONFIGURATION.md");

/// A small but complete file, shown under EXAMPLES.
const EXAMPLE: &str = r#"[server]
listen = ["0.0.0.0:80", "[::]:80"]
user = "asycamore"

[limits]
max_body_bytes = "1G"

[[route]]
name = "site"
path = "/"
handler = "static"
root = "/var/www/asycamore"

[[route]]
name = "uploads"
path = "/upload"
methods = ["POST", "PUT"]
handler = "upload"
dir = "/var/lib/asycamore/uploads"
max_body_bytes = "512M"
"#;

/// The whole page, as roff source. `version` goes in the footer (`asycamore 0.1.0 (...)`).
pub fn render(version: &str) -> io::Result<Vec<u8>> {
    let mut roff = Roff::new();
    roff.control(
        "TH",
        [
            "asycamore.toml",
            "5",
            "",
            &format!("asycamore {version}"),
            "File Formats",
        ],
    );
    roff.control("SH", ["NAME"]);
    roff.text([roman(
        "asycamore.toml - configuration file of the asycamore HTTP/1.1 server daemon",
    )]);

    roff.control("SH", ["SYNOPSIS"]);
    roff.text([bold("/etc/asycamore/asycamore.toml")]);
    roff.control("br", []);
    roff.text([
        bold("asycamore"),
        roman(" "),
        bold("--config"),
        roman(" "),
        italic("FILE"),
        roman(" ["),
        bold("--check"),
        roman("]"),
    ]);

    description(&mut roff);
    sections(&mut roff);
    examples(&mut roff);

    roff.control("SH", ["FILES"]);
    entry(
        &mut roff,
        "/etc/asycamore/asycamore.toml",
        "The configuration the packaged service reads.",
    );
    entry(
        &mut roff,
        "/usr/share/doc/asycamore/CONFIGURATION.md",
        "The same reference, with the route precedence rules and more examples.",
    );
    roff.control("SH", ["SEE ALSO"]);
    roff.text([
        bold("asycamore"),
        roman("(8), "),
        bold("systemctl"),
        roman("(1); https://toml.io/en/v1.0.0"),
    ]);

    let mut out = Vec::new();
    roff.to_writer(&mut out)?;
    Ok(out)
}

fn description(roff: &mut Roff) {
    roff.control("SH", ["DESCRIPTION"]);
    for para in [
        "asycamore(8) reads one TOML file, given with --config (-c); without it, the daemon \
         serves an embedded default on 127.0.0.1:8080. Every section and key is optional \
         unless marked required; an absent key takes its default, and an unknown key is an \
         error.",
        "Integers are TOML integers; ranges are inclusive, written 1..=256 (1 to 256) or 0.. \
         (0 or more). A size is a number of bytes or a string with a 1024-based unit: \"512K\" \
         or \"512KiB\" (524288), \"10M\" or \"10MiB\", \"1G\" or \"1GiB\" (k, m, g and B are \
         accepted too). \"10MB\" is refused as ambiguous, and fractions (\"1.5M\") are refused \
         rather than rounded. A duration is a string such as \"500ms\", \"10s\", \"2m\" or \
         \"1h 30m\". Paths of files the daemon writes are absolute.",
        "asycamore --check --config FILE validates the file without starting the server. It \
         prints every error at once, in file order, one per line as FILE:LINE:COLUMN: KEY: \
         MESSAGE, and exits 78 (EX_CONFIG); an unknown key names the nearest known key (did you mean ...), \
         and a value that must be one of a few words lists them. A valid file gives a summary \
         (listeners, and each route with its effective body limit) and exit status 0.",
        "SIGHUP (systemctl reload, asycamore reload) applies an edited file without dropping a \
         connection; an invalid file is rejected and the previous configuration keeps serving.",
    ] {
        roff.control("PP", []);
        roff.text([roman(para)]);
    }
}

/// Every key table of the reference, under its section's heading.
fn sections(roff: &mut Roff) {
    roff.control("SH", ["KEYS"]);
    // Headings are emitted when their first table is: "## Errors" and the like have none.
    let mut heading: Option<String> = None;
    let mut sub: Option<String> = None;
    let mut columns: Vec<String> = Vec::new();
    let mut last_text = String::new();
    for line in REFERENCE.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            heading = Some(plain(title));
            sub = None;
            columns.clear();
            continue;
        }
        if let Some(title) = line.strip_prefix("### ") {
            sub = Some(plain(title));
            columns.clear();
            continue;
        }
        let Some(row) = line.strip_prefix('|') else {
            columns.clear();
            if !line.trim().is_empty() {
                last_text = line.trim().to_owned();
            }
            continue;
        };
        let cells: Vec<String> = row
            .trim_end_matches('|')
            .split(" | ")
            .map(|c| plain(c.trim().trim_matches('|').trim()))
            .collect();
        if columns.is_empty() {
            // A table's header row: the section heading (once), then a lead-in such as
            // "Each entry of servers:" when the table has one.
            if let Some(title) = heading.take() {
                roff.control("SS", [title.as_str()]);
            }
            if let Some(title) = sub.take() {
                roff.control("PP", []);
                roff.text([italic(title)]);
            } else if last_text.ends_with(':') {
                roff.control("PP", []);
                roff.text([roman(plain(&last_text))]);
            }
            columns = cells;
            continue;
        }
        if cells.iter().all(|c| c.chars().all(|ch| ch == '-')) {
            continue; // the |---|---| separator
        }
        key_entry(roff, &columns, &cells);
    }
}

/// One key: its name in bold (after its handler, for handler settings), then each other
/// column as "column: value", the description last.
fn key_entry(roff: &mut Roff, columns: &[String], cells: &[String]) {
    let cell = |name: &str| {
        columns
            .iter()
            .position(|c| c == name)
            .and_then(|i| cells.get(i))
            .cloned()
            .unwrap_or_default()
    };
    roff.control("TP", []);
    let handler = cell("handler");
    if handler.is_empty() {
        roff.text([bold(cell("key"))]);
    } else {
        roff.text([bold(cell("key")), roman(format!(" ({handler})"))]);
    }
    let mut facts = vec![
        format!("Type: {}", cell("type")),
        format!("Default: {}", cell("default")),
    ];
    let allowed = cell("range / allowed");
    if !allowed.is_empty() {
        facts.push(format!("Allowed: {allowed}"));
    }
    roff.text([italic(facts.join("; "))]);
    roff.control("br", []);
    roff.text([roman(cell("what it does"))]);
}

fn examples(roff: &mut Roff) {
    roff.control("SH", ["EXAMPLES"]);
    roff.text([roman(
        "Serve a directory on port 80 as the unprivileged user asycamore, with an upload \
         route allowed 512 MiB bodies while every other route keeps the 1 MiB default:",
    )]);
    example_block(roff, EXAMPLE);
    roff.text([roman("Check it, then apply it to the running service:")]);
    example_block(
        roff,
        "asycamore --check --config /etc/asycamore/asycamore.toml\nsystemctl reload asycamore",
    );
    roff.text([roman(
        "A typo and a bad size are reported together, located:",
    )]);
    example_block(
        roff,
        "/etc/asycamore/asycamore.toml:3:1: server.usr: unknown key; did you mean `user`? \
         (expected one of: ...)\n/etc/asycamore/asycamore.toml:6:18: limits.max_body_bytes: \
         \"1GB\" is not a byte size: KB, MB and GB are ambiguous: ...",
    );
}

/// Literal lines, unfilled and indented.
fn example_block(roff: &mut Roff, text: &str) {
    roff.control("PP", []);
    roff.control("RS", ["4"]);
    roff.control("nf", []);
    for line in text.lines() {
        roff.text([roman(line)]);
        roff.control("br", []);
    }
    roff.control("fi", []);
    roff.control("RE", []);
    roff.control("PP", []);
}

/// One `.TP` entry: a bold tag, then its text.
fn entry(roff: &mut Roff, tag: &str, text: &str) {
    roff.control("TP", []);
    roff.text([bold(tag)]);
    roff.text([roman(text)]);
}

/// Markdown inline text as plain text: no backticks, no bold markers, links as their text.
fn plain(text: &str) -> String {
    let mut out = text.replace('`', "").replace("**", "").replace("\\|", "|");
    // [text](target) -> text
    while let Some(mid) = out.find("](") {
        let (Some(open), Some(close)) = (out[..mid].rfind('['), out[mid..].find(')')) else {
            break;
        };
        let close = mid + close;
        out = format!(
            "{}{}{}",
            &out[..open],
            &out[open + 1..mid],
            &out[close + 1..]
        );
    }
    out
}
