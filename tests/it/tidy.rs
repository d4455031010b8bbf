//! Tidy: source-tree rules that the compiler does not check, enforced as tests.
//!
//! Each test scans the `.rs` files under `src/`, `examples/` and `tests/` and reports every
//! violation of its rule at once, one `file:line: what` per line, so a single run shows the
//! whole list. The rules and their reasons are in `docs/ARCHITECTURE.md` ("Import rules").
//! The scan is a small tokenizer (comments, strings and char literals are skipped), not a
//! parser: it is fast and good enough for the shapes our code uses.
//!
//! The rules:
//! - every file starts with a `//!` line saying what it is for;
//! - no file under `src/` is longer than `MAX_LINES` (`MAX_TEST_LINES` for `tests.rs`);
//! - a layer under `src/` uses (`crate::` and `super::` paths) only the layers `IMPORT_RULES`
//!   allows it; nothing uses `daemon`; a new top-level module needs a row in `IMPORT_RULES`;
//! - no `.unwrap()` in `src/http1` and `src/server` outside `#[cfg(test)]` modules;
//! - `unsafe` appears only in files named `sys.rs`.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// The longest a file under `src/` may be, in lines (tests included).
const MAX_LINES: usize = 600;
/// Unit-test files (`tests.rs`) hold data tables, which read fine longer.
const MAX_TEST_LINES: usize = 1000;

/// Which top-level modules of the library each one may use. A module may always use itself;
/// `lib.rs`, `main.rs` and `src/bin/` are the crate roots and are not checked.
const IMPORT_RULES: &[(&str, &[&str])] = &[
    ("reactor", &[]),
    ("log_rate", &[]),
    ("http1", &[]),
    ("service", &["http1"]),
    ("server", &["reactor", "http1", "service", "log_rate"]),
    ("handlers", &["service", "http1", "log_rate"]),
    ("config", &["http1", "service", "server", "handlers"]),
    (
        "admin",
        &["server", "service", "config", "http1", "handlers"],
    ),
    (
        "daemon",
        &[
            "reactor", "http1", "service", "server", "handlers", "config", "admin",
        ],
    ),
];

/// Folders (under `src/`) where `.unwrap()` is not allowed outside test modules.
const NO_UNWRAP: &[&str] = &["src/http1/", "src/server/"];

#[test]
fn every_file_starts_with_a_doc_comment() {
    let mut report = Report::default();
    for file in files() {
        if !file.text.starts_with("//!") {
            report.add(
                &file.path,
                1,
                "does not start with a `//!` line saying what it is for",
            );
        }
    }
    report.check("files must open with a `//!` purpose line");
}

#[test]
fn no_source_file_is_longer_than_the_limit() {
    let mut report = Report::default();
    for file in files().iter().filter(|file| file.path.starts_with("src/")) {
        let lines = file.text.lines().count();
        let limit = if file.path.ends_with("/tests.rs") {
            MAX_TEST_LINES
        } else {
            MAX_LINES
        };
        if lines > limit {
            report.add(
                &file.path,
                limit + 1,
                &format!("{lines} lines, more than {limit}: split it"),
            );
        }
    }
    report.check("files under src/ must stay readable in one sitting");
}

#[test]
fn layers_use_only_the_layers_they_may() {
    let mut report = Report::default();
    let known: Vec<&str> = IMPORT_RULES.iter().map(|(module, _)| *module).collect();
    for module in top_level_modules() {
        if !known.contains(&module.as_str()) {
            report.add(
                &format!("src/{module}"),
                0,
                "a top-level module with no row in tidy.rs IMPORT_RULES: add its rule",
            );
        }
    }
    for file in files() {
        let Some(module_path) = module_path(&file.path) else {
            continue;
        };
        let own = module_path[0].as_str();
        let Some((_, allowed)) = IMPORT_RULES.iter().find(|(module, _)| *module == own) else {
            continue;
        };
        for used in scan(&file.text, &module_path).uses {
            if used.module != own
                && known.contains(&used.module.as_str())
                && !allowed.contains(&used.module.as_str())
            {
                report.add(
                    &file.path,
                    used.line,
                    &format!("`{own}` uses `{}`, which it may not", used.module),
                );
            }
        }
    }
    report.check("import rules (docs/ARCHITECTURE.md, \"Import rules\")");
}

#[test]
fn no_unwrap_in_http1_and_server_outside_tests() {
    let mut report = Report::default();
    for file in files() {
        if !NO_UNWRAP.iter().any(|dir| file.path.starts_with(dir)) {
            continue;
        }
        let module_path = module_path(&file.path).unwrap_or_default();
        for line in scan(&file.text, &module_path).unwraps {
            report.add(
                &file.path,
                line,
                "`.unwrap()` outside a #[cfg(test)] module",
            );
        }
    }
    report.check("no unwrap() on the serving path: return or handle the error");
}

#[test]
fn unsafe_only_in_sys_rs() {
    let mut report = Report::default();
    for file in files() {
        if file.path.ends_with("/sys.rs") {
            continue;
        }
        let module_path = module_path(&file.path).unwrap_or_default();
        for line in scan(&file.text, &module_path).unsafes {
            report.add(&file.path, line, "`unsafe` outside a file named sys.rs");
        }
    }
    report.check("unsafe code lives in small sys.rs files");
}

/// The scanner's own checks: what it must see and what it must skip.
#[test]
fn scanner_sees_code_and_skips_comments_strings_and_test_modules() {
    let text = r####"//! x
use crate::{http1::head, service::{Request, Start}};
use crate::reactor::Token; // crate::daemon in a comment
/* crate::daemon /* nested */ crate::daemon */
const S: &str = "crate::daemon \" crate::daemon";
const R: &str = r#"crate::daemon " crate::daemon"#;
const C: char = '"';
fn f<'a>(x: &'a str) -> usize { x.len().unwrap() }
unsafe fn g() {}
#[cfg(test)]
mod tests {
    use super::super::config::X;
    fn t() { None::<u8>.unwrap(); }
}
fn h() { y.unwrap_or(0); z.unwrap() }
"####;
    let found = scan(text, &["server".to_owned()]);
    let uses: Vec<(&str, usize)> = found
        .uses
        .iter()
        .map(|used| (used.module.as_str(), used.line))
        .collect();
    assert_eq!(
        uses,
        [("http1", 2), ("service", 2), ("reactor", 3), ("config", 12)]
    );
    assert_eq!(found.unwraps, [8, 15]);
    assert_eq!(found.unsafes, [9]);
}

/// One source file, read once.
struct SourceFile {
    /// Relative to the package root, with `/` separators.
    path: String,
    text: String,
}

/// Every `.rs` file under `src/`, `examples/` and `tests/`, sorted by path.
fn files() -> Vec<SourceFile> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    for dir in ["src", "examples", "tests"] {
        collect(&root.join(dir), &mut paths);
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path)
                .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let parts: Vec<String> = relative
                .components()
                .map(|part| part.as_os_str().to_string_lossy().into_owned())
                .collect();
            SourceFile {
                path: parts.join("/"),
                text,
            }
        })
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if path.is_dir() {
            collect(&path, out);
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// The top-level modules of the library: folders and `.rs` files directly under `src/`.
fn top_level_modules() -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = Vec::new();
    for entry in fs::read_dir(src).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_dir = entry.path().is_dir();
        let module = match name.strip_suffix(".rs") {
            Some(stem) if !is_dir => stem.to_owned(),
            _ if is_dir => name,
            _ => continue,
        };
        if !matches!(module.as_str(), "lib" | "main" | "bin") && !module.starts_with('.') {
            modules.push(module);
        }
    }
    modules.sort();
    modules
}

/// The library module a file under `src/` defines, e.g. `src/server/conn.rs` ->
/// `["server", "conn"]`; `None` for crate roots and files outside `src/`.
fn module_path(path: &str) -> Option<Vec<String>> {
    let inner = path.strip_prefix("src/")?.strip_suffix(".rs")?;
    let mut parts: Vec<String> = inner.split('/').map(str::to_owned).collect();
    if parts.last().is_some_and(|last| last == "mod") {
        parts.pop();
    }
    match parts.first().map(String::as_str) {
        None | Some("lib" | "main" | "bin") => None,
        Some(_) => Some(parts),
    }
}

/// Violations of one rule, collected so the test can list them all.
#[derive(Default)]
struct Report {
    lines: Vec<String>,
}

impl Report {
    fn add(&mut self, path: &str, line: usize, what: &str) {
        self.lines.push(format!("{path}:{line}: {what}"));
    }

    fn check(self, rule: &str) {
        if self.lines.is_empty() {
            return;
        }
        let mut text = format!("{} violation(s) of: {rule}\n", self.lines.len());
        for line in &self.lines {
            let _ = writeln!(text, "  {line}");
        }
        panic!("{text}");
    }
}

/// A use of another top-level module, by `crate::` or `super::` path.
#[derive(Debug)]
struct Use {
    module: String,
    line: usize,
}

/// What the scanner found in one file (lines are 1-based).
#[derive(Debug, Default)]
struct Found {
    uses: Vec<Use>,
    /// `.unwrap()` calls outside `#[cfg(test)]` modules.
    unwraps: Vec<usize>,
    /// `unsafe` keywords anywhere.
    unsafes: Vec<usize>,
}

#[derive(Debug, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
}

/// Scans the code of a file defining `module_path` (for resolving `super::`).
fn scan(text: &str, module_path: &[String]) -> Found {
    let toks = tokenize(text);
    let mut found = Found::default();
    // Inline modules currently open: (name, brace depth inside it, is a test module).
    let mut inline: Vec<(String, usize, bool)> = Vec::new();
    let mut depth = 0;
    let mut pending_test = false;
    let ident = |i: usize| match toks.get(i) {
        Some((Tok::Ident(name), _)) => Some(name.as_str()),
        _ => None,
    };
    let is = |i: usize, tok: &Tok| toks.get(i).is_some_and(|(t, _)| t == tok);
    let mut i = 0;
    while i < toks.len() {
        let (tok, line) = (&toks[i].0, toks[i].1);
        let in_test = inline.iter().any(|(_, _, test)| *test);
        match tok {
            Tok::Punct('#') => {
                // An attribute: note `#[cfg(test)]`, skip the rest of it.
                let mut j = i + 1;
                if is(j, &Tok::Punct('!')) {
                    j += 1;
                }
                if is(j, &Tok::Punct('[')) {
                    let end = matching(&toks, j, '[', ']');
                    let words: Vec<&str> = (j + 1..end).filter_map(ident).collect();
                    if words.first() == Some(&"cfg")
                        && words.contains(&"test")
                        && !words.contains(&"not")
                    {
                        pending_test = true;
                    }
                    i = end + 1;
                    continue;
                }
            }
            Tok::Ident(word) if word == "mod" => {
                if let (Some(name), true) = (ident(i + 1), is(i + 2, &Tok::Punct('{'))) {
                    depth += 1;
                    inline.push((name.to_owned(), depth, pending_test || in_test));
                    pending_test = false;
                    i += 3;
                    continue;
                }
                pending_test = false;
            }
            Tok::Punct('{') => {
                depth += 1;
                pending_test = false;
            }
            Tok::Punct('}') => {
                if inline.last().is_some_and(|(_, at, _)| *at == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
                pending_test = false;
            }
            Tok::Punct(';') => pending_test = false,
            Tok::Ident(word) if word == "unsafe" => found.unsafes.push(line),
            Tok::Ident(word)
                if word == "unwrap"
                    && i > 0
                    && is(i - 1, &Tok::Punct('.'))
                    && is(i + 1, &Tok::Punct('('))
                    && is(i + 2, &Tok::Punct(')'))
                    && !in_test =>
            {
                found.unwraps.push(line);
            }
            Tok::Ident(word)
                if (word == "crate" || word == "super")
                    && is(i + 1, &Tok::PathSep)
                    && (i == 0 || !is(i - 1, &Tok::PathSep)) =>
            {
                let mut j = i;
                let mut supers = 0;
                while ident(j) == Some("super") && is(j + 1, &Tok::PathSep) {
                    supers += 1;
                    j += 2;
                }
                if supers == 0 {
                    j += 2; // `crate ::`
                }
                let mut current: Vec<&str> = module_path.iter().map(String::as_str).collect();
                current.extend(inline.iter().map(|(name, _, _)| name.as_str()));
                let reaches_root = supers == 0 || supers == current.len();
                if reaches_root {
                    for (module, at) in path_heads(&toks, j) {
                        found.uses.push(Use { module, line: at });
                    }
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// The first segment of each path starting at token `i`: `a::...` gives `a`, and
/// `{a::x, b, c::{..}}` gives `a`, `b` and `c`.
fn path_heads(toks: &[(Tok, usize)], i: usize) -> Vec<(String, usize)> {
    match toks.get(i) {
        Some((Tok::Ident(name), line)) => vec![(name.clone(), *line)],
        Some((Tok::Punct('{'), _)) => {
            let end = matching(toks, i, '{', '}');
            let mut heads = Vec::new();
            let mut depth = 0;
            let mut expect_head = true;
            for (tok, line) in &toks[i + 1..end] {
                match tok {
                    Tok::Punct('{') => depth += 1,
                    Tok::Punct('}') => depth -= 1,
                    Tok::Punct(',') if depth == 0 => expect_head = true,
                    Tok::Ident(name) if depth == 0 && expect_head => {
                        if name != "self" {
                            heads.push((name.clone(), *line));
                        }
                        expect_head = false;
                    }
                    _ if depth == 0 => expect_head = false,
                    _ => {}
                }
            }
            heads
        }
        _ => Vec::new(),
    }
}

/// The index of the token closing the group opened at `open_at` (or the last token).
fn matching(toks: &[(Tok, usize)], open_at: usize, open: char, close: char) -> usize {
    let mut depth = 0;
    for (k, (tok, _)) in toks.iter().enumerate().skip(open_at) {
        if *tok == Tok::Punct(open) {
            depth += 1;
        } else if *tok == Tok::Punct(close) {
            depth -= 1;
            if depth == 0 {
                return k;
            }
        }
    }
    toks.len().saturating_sub(1)
}

/// Identifiers, `::` and punctuation with their line numbers; comments, string, byte-string,
/// raw-string and char literals, lifetimes and numbers produce nothing.
fn tokenize(text: &str) -> Vec<(Tok, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let at = |k: usize| chars.get(k).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(chars[i] == '\n');
                    i += 1;
                }
            }
        } else if c == '"' {
            i = skip_string(&chars, i + 1, &mut line);
        } else if c == '\'' {
            if at(i + 1) == '\\' {
                // An escaped char literal: up to the closing quote.
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3; // 'x'
            } else {
                // A lifetime or label: skip its name.
                i += 1;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
            }
        } else if c.is_ascii_digit() {
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
        } else if is_ident_char(c) {
            let start = i;
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let raw_prefix = matches!(word.as_str(), "r" | "br" | "cr");
            if raw_prefix && (at(i) == '"' || (at(i) == '#' && matches!(at(i + 1), '#' | '"'))) {
                i = skip_raw_string(&chars, i, &mut line);
            } else if matches!(word.as_str(), "b" | "c") && at(i) == '"' {
                i = skip_string(&chars, i + 1, &mut line);
            } else if word == "b" && at(i) == '\'' {
                // A byte literal: b'x' or b'\n'.
                i += 1;
                if at(i) == '\\' {
                    i += 1;
                }
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if word == "r" && at(i) == '#' {
                i += 1; // A raw identifier, `r#name`: the name follows as an identifier.
            } else {
                toks.push((Tok::Ident(word), line));
            }
        } else if c == ':' && at(i + 1) == ':' {
            toks.push((Tok::PathSep, line));
            i += 2;
        } else {
            toks.push((Tok::Punct(c), line));
            i += 1;
        }
    }
    toks
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Skips a string body starting after its opening quote; returns the index after the close.
fn skip_string(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if chars.get(i + 1) == Some(&'\n') {
                    *line += 1;
                }
                i += 2;
            }
            '"' => return i + 1,
            c => {
                *line += usize::from(c == '\n');
                i += 1;
            }
        }
    }
    i
}

/// Skips a raw string starting at its `#`s or opening quote; returns the index after it.
fn skip_raw_string(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    let mut hashes = 0;
    while chars.get(i) == Some(&'#') {
        hashes += 1;
        i += 1;
    }
    i += 1; // the opening quote
    while i < chars.len() {
        if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
            return i + 1 + hashes;
        }
        *line += usize::from(chars[i] == '\n');
        i += 1;
    }
    i
}
