//! Fuzz target `config`: arbitrary text as a configuration file.
//!
//! `config::load_str_with(text, "fuzz.toml", loopback_resolver)` must never panic, and every error it reports must
//! point into the text: named `fuzz.toml`, a line from 1 to the number of lines, a column
//! from 1 to one past the last char of that line, and a message that displays. A
//! configuration it accepts must build (`server_config`, `route_table`, `precedence`) without
//! panicking, as the daemon builds it next.
//!
//! Non-UTF-8 input is skipped: `load_file` reads the file with `read_to_string`, so such a
//! file never reaches `load_str`.
//!
//! Note: validation touches the filesystem as the daemon would: a static `root` is listed and
//! an upload `dir` gets a probe file created and removed at once. Run it as a user that
//! cannot write where it must not (CI runs it in a throwaway machine).

#![no_main]

use std::fmt::Write;

use asycamore::config::{self, ConfigErrors};
use libfuzzer_sys::fuzz_target;

const FILE: &str = "fuzz.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Names are resolved by the loopback resolver: fuzzing must not query a name server.
    match config::load_str_with(text, FILE, config::loopback_resolver) {
        Ok(config) => {
            let _ = config::server_config(&config);
            let table = config::route_table(&config, 1);
            assert_eq!(table.routes().len(), config.routes.len());
            assert_eq!(config::precedence(&config).len(), config.routes.len());
            assert!(config::reload_restart_keys(&config, &config).is_empty());
        }
        Err(errors) => check_errors(text, &errors),
    }
});

fn check_errors(text: &str, errors: &ConfigErrors) {
    assert!(!errors.0.is_empty(), "an error list with no error");
    let lines: Vec<&str> = text.split('\n').collect();
    let mut shown = String::new();
    for e in &errors.0 {
        assert_eq!(e.file, FILE);
        assert!(
            (1..=lines.len()).contains(&e.line),
            "{e}: line {} outside 1..={}",
            e.line,
            lines.len()
        );
        let chars = lines[e.line - 1].chars().count();
        assert!(
            (1..=chars + 1).contains(&e.column),
            "{e}: column {} outside 1..={} of line {}",
            e.column,
            chars + 1,
            e.line
        );
        shown.clear();
        write!(shown, "{e}").expect("Display");
        assert!(shown.starts_with("fuzz.toml:"), "{shown}");
    }
}
