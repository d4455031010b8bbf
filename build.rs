//! Build script: makes the git commit the binary is built from available as
//! `ASYCAMORE_COMMIT`, for `--version` (`asycamore 0.1.0 (1a2b3c4)`).
//!
//! The commit is `$ASYCAMORE_GIT_COMMIT` when set (for builds from a tarball whose packager
//! knows the commit), else `git rev-parse --short HEAD` when this crate is the top of a git
//! work tree, else "unknown". A build without git (`cargo package`, a crates.io download, a
//! source tarball) must work, and must not pick up the commit of some enclosing repository.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=ASYCAMORE_GIT_COMMIT");
    let commit = std::env::var("ASYCAMORE_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .map(|c| c.trim().to_owned())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=ASYCAMORE_COMMIT={commit}");
}

/// The short commit of HEAD, when the manifest directory is the top of a git work tree.
fn git_commit() -> Option<String> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").ok()?;
    let top = git(&manifest_dir, &["rev-parse", "--show-toplevel"])?;
    let same = |a: &str, b: &str| {
        Path::new(a)
            .canonicalize()
            .ok()
            .is_some_and(|a| Some(a) == Path::new(b).canonicalize().ok())
    };
    if !same(&top, &manifest_dir) {
        return None;
    }
    // Rebuild when HEAD moves: a commit, a checkout (HEAD itself, and the reflog every commit
    // in this work tree appends to). Only files that exist: a missing one would rerun always.
    for name in ["HEAD", "logs/HEAD"] {
        if let Some(path) = git(&manifest_dir, &["rev-parse", "--git-path", name]) {
            let path = Path::new(&manifest_dir).join(path);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    git(&manifest_dir, &["rev-parse", "--short", "HEAD"])
}

fn git(dir: &str, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}
