//! What the config unit tests share: whole documents through `load_str`, compared with the
//! exact rendered errors they must produce. Test-only.

use super::load_str;

/// The file name the tests' documents are loaded as.
pub(super) const FILE: &str = "x.toml";

/// Every rendered error for `text`, or a test failure if it loads.
pub(super) fn errors(text: &str) -> Vec<String> {
    match load_str(text, FILE) {
        Ok(cfg) => panic!("expected errors, got {cfg:?}\n--- input:\n{text}"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

/// Each document renders exactly its errors, in order.
pub(super) fn check_table(cases: &[(&str, &[&str])]) {
    for (text, want) in cases {
        assert_eq!(errors(text), *want, "\n--- input:\n{text}");
    }
}
