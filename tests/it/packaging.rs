//! Packaging: the installed configuration `etc/asycamore/asycamore.toml` passes `--check` once
//! the paths it names exist (here rewritten to temporary ones), and the systemd units in
//! `systemd/` pass `systemd-analyze verify` in a temporary root holding the binary at
//! `/usr/bin/asycamore` (the path the units name).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::{binary, temp_path};

const PACKAGED_CONFIG: &str = include_str!("../../etc/asycamore/asycamore.toml");
const UNITS: [&str; 2] = ["asycamore.service", "asycamore.socket"];

/// The packaged configuration with the paths it names rewritten below `dir` (created there).
fn packaged_config_in(dir: &Path) -> PathBuf {
    let www = dir.join("www");
    let logs = dir.join("log");
    let run = dir.join("run");
    for path in [&www, &logs, &run] {
        std::fs::create_dir_all(path).expect("create a packaged directory");
    }
    let etc = dir.join("etc");
    std::fs::create_dir_all(&etc).expect("create etc");
    // What postinst creates: the admin token, readable by root and the asycamore group.
    let token = etc.join("admin.token");
    std::fs::write(&token, "packaged-check-token\n").expect("write the token");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    }
    let rewrites = [
        ("\"/var/www/asycamore\"", &www),
        ("\"/var/log/asycamore/", &logs),
        ("\"/run/asycamore/", &run),
        ("\"/etc/asycamore/", &etc),
    ];
    let mut text = PACKAGED_CONFIG.to_owned();
    for (from, to) in rewrites {
        assert!(text.contains(from), "the packaged config names {from}");
        let replacement = if from.ends_with('/') {
            format!("\"{}/", to.display())
        } else {
            format!("\"{}\"", to.display())
        };
        text = text.replace(from, &replacement);
    }
    let config = dir.join("asycamore.toml");
    std::fs::write(&config, text).expect("write the packaged config");
    config
}

#[test]
fn the_packaged_config_passes_check_once_its_paths_exist() {
    let dir = temp_path("packaged");
    let config = packaged_config_in(&dir);
    let output = binary()
        .arg("--check")
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .expect("run asycamore --check");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "--check failed ({}):\n{stdout}{stderr}",
        output.status
    );
    assert!(stdout.contains("listen: 0.0.0.0:80, [::]:80"), "{stdout}");
    assert!(stdout.contains("static root="), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_packaged_config_names_the_installed_paths() {
    for needle in [
        "listen = [\"0.0.0.0:80\", \"[::]:80\"]",
        "root = \"/var/www/asycamore\"",
        "file = \"/var/log/asycamore/access.log\"",
        "listen = \"127.0.0.1:9180\"",
        "target = \"stderr\"",
        "pidfile = \"/run/asycamore/asycamore.pid\"",
    ] {
        assert!(PACKAGED_CONFIG.contains(needle), "missing: {needle}");
    }
}

/// The directory of the system's own units (`sysinit.target` and the rest a unit depends on).
fn system_unit_dir() -> Option<PathBuf> {
    ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .iter()
        .map(PathBuf::from)
        .find(|dir| dir.join("sysinit.target").exists())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create a directory in the temp root");
    for entry in std::fs::read_dir(from).expect("read a unit directory") {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        let kind = entry.file_type().expect("a file type");
        if kind.is_dir() {
            copy_dir(&entry.path(), &target);
        } else if kind.is_symlink() {
            let link = std::fs::read_link(entry.path()).expect("read a symlink");
            std::os::unix::fs::symlink(link, &target).expect("copy a symlink");
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a unit");
        }
    }
}

#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        // .ci/run installs systemd (and sets CI), so there the check never goes missing; a
        // developer machine without it cannot run this check.
        assert!(
            std::env::var_os("CI").is_none(),
            "systemd-analyze is not installed; .ci/run installs it"
        );
        eprintln!("skipped: systemd-analyze is not installed (apt-get install systemd)");
        return;
    }
    let system_units = system_unit_dir().expect("systemd's unit directory");
    let root = temp_path("systemd-root");
    copy_dir(&system_units, &root.join("usr/lib/systemd/system"));
    let bin = root.join("usr/bin");
    std::fs::create_dir_all(&bin).expect("create usr/bin");
    std::fs::copy(env!("CARGO_BIN_EXE_asycamore"), bin.join("asycamore")).expect("copy binary");
    let units = root.join("etc/systemd/system");
    std::fs::create_dir_all(&units).expect("create etc/systemd/system");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    for unit in UNITS {
        std::fs::copy(source.join(unit), units.join(unit)).expect("copy a unit");
    }
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .arg(format!("--root={}", root.display()))
        .args(UNITS)
        .env("SYSTEMD_LOG_COLOR", "0")
        .stdin(Stdio::null())
        .output()
        .expect("run systemd-analyze verify");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = std::fs::remove_dir_all(&root);
    // Warnings (an unknown key, a value it cannot parse) do not change the exit status: any
    // output at all is a failure.
    assert!(
        output.status.success() && report.trim().is_empty(),
        "systemd-analyze verify ({}):\n{report}",
        output.status
    );
}
