//! The command line: version, config checking, and exit statuses at startup.

use std::net::TcpListener;
use std::process::{Output, Stdio};

use crate::support::{TestServer, binary, write_config};

fn run(args: &[&std::ffi::OsStr]) -> Output {
    binary()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run asycamore")
}

#[test]
fn version_prints_the_version_and_exits_0() {
    let out = run(&["--version".as_ref()]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(env!("CARGO_PKG_VERSION")),
        "stdout {stdout:?}"
    );
}

/// `--version` names the commit the binary was built from (build.rs): the work tree's HEAD
/// when built from git, else what `ASYCAMORE_GIT_COMMIT` said, else "unknown".
#[test]
fn version_names_the_git_commit() {
    let out = run(&["--version".as_ref()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let commit = env!("ASYCAMORE_COMMIT");
    assert_eq!(
        stdout,
        format!("asycamore {} ({commit})\n", env!("CARGO_PKG_VERSION"))
    );
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|h| h.status.success());
    if let Some(head) = head.filter(|_| std::env::var_os("ASYCAMORE_GIT_COMMIT").is_none()) {
        assert_eq!(commit, String::from_utf8_lossy(&head.stdout).trim());
    }
}

/// A `--log-level` that is not a level is a usage error listing the levels.
#[test]
fn a_bad_log_level_lists_the_valid_ones() {
    let out = run(&["--log-level".as_ref(), "loud".as_ref(), "--check".as_ref()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid value 'loud' for '--log-level <LEVEL>'")
            && stderr.contains("[possible values: error, warn, info, debug, trace]"),
        "stderr {stderr}"
    );
    let out = run(&["--log-level".as_ref(), "debug".as_ref(), "--check".as_ref()]);
    assert_eq!(out.status.code(), Some(0));
}

/// `asycamore completions SHELL` prints a script each shell accepts, naming the options;
/// an unknown shell is a usage error listing the known ones.
#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F _asycamore"),
        ("zsh", "#compdef asycamore"),
        ("fish", "complete -c asycamore"),
    ] {
        let out = run(&["completions".as_ref(), shell.as_ref()]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        for word in ["log-level", "check", "reload", "error", "trace"] {
            assert!(script.contains(word), "{shell} completion has no {word}");
        }
        // The shell itself parses it, where installed (syntax check only, nothing runs).
        let (program, flag) = match shell {
            "bash" => ("bash", "-n"),
            "zsh" => ("zsh", "-n"),
            _ => ("fish", "--no-execute"),
        };
        {
            let path = crate::support::temp_path(&format!("completion.{shell}"));
            std::fs::write(&path, script.as_bytes()).expect("write the script");
            let parsed = std::process::Command::new(program)
                .arg(flag)
                .arg(&path)
                .output();
            let _ = std::fs::remove_file(&path);
            if let Ok(parsed) = parsed {
                assert!(
                    parsed.status.success(),
                    "{program} {flag}: {}",
                    String::from_utf8_lossy(&parsed.stderr)
                );
            }
        }
    }
    let out = run(&["completions".as_ref(), "tcsh".as_ref()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bash") && stderr.contains("zsh") && stderr.contains("fish"),
        "{stderr}"
    );
}

#[test]
fn check_of_the_embedded_default_exits_0_with_a_route_summary() {
    let out = run(&["--check".as_ref()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("hello") && stdout.contains("echo"),
        "summary {stdout:?}"
    );
}

#[test]
fn check_of_a_bad_file_reports_every_error_located_and_exits_78() {
    let path = write_config("[server]\nworkers = 99999\n\n[limits]\nmax_headers = 0\n");
    let out = run(&["--check".as_ref(), "--config".as_ref(), path.as_os_str()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = path.display().to_string();
    for (line_col, key) in [("2:11", "server.workers"), ("5:15", "limits.max_headers")] {
        let prefix = format!("{file}:{line_col}: {key}: ");
        assert!(
            stderr
                .lines()
                .any(|line| line.starts_with(&prefix) && line.len() > prefix.len()),
            "no {prefix:?}... line in stderr {stderr:?}"
        );
    }
}

#[test]
fn bad_config_exits_78_without_listening() {
    let path = write_config("[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = -1\n");
    let out = run(&["--config".as_ref(), path.as_os_str()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("listening on"), "stderr {stderr:?}");
    assert!(stderr.contains("server.workers"), "stderr {stderr:?}");
}

#[test]
fn address_in_use_exits_71() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let path = write_config(&format!("[server]\nlisten = [\"{addr}\"]\nworkers = 1\n"));
    let out = run(&["--config".as_ref(), path.as_os_str()]);
    let _ = std::fs::remove_file(&path);
    drop(taken);
    assert_eq!(
        out.status.code(),
        Some(71),
        "stderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("listening on"));
}

#[test]
fn a_second_instance_on_the_same_address_exits_71_instead_of_sharing_it() {
    let first = TestServer::start(crate::support::BASE);
    let addr = first.addr;
    let path = write_config(&format!("[server]\nlisten = [\"{addr}\"]\nworkers = 2\n"));
    let out = run(&["--config".as_ref(), path.as_os_str()]);
    let _ = std::fs::remove_file(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(71), "stderr {stderr}");
    assert!(stderr.contains("another server"), "stderr {stderr}");
    // The first instance still owns the address and serves.
    assert!(first.connect().still_serves());
}

/// The admin socket's directory is the service manager's to create just before the start
/// (systemd's `RuntimeDirectory=`): `--check` passes while it is missing, and a start without
/// it fails with exit 71 naming the socket.
#[test]
fn a_missing_admin_socket_directory_passes_check_and_fails_the_start_by_name() {
    let socket = "/nonexistent-asycamore-run/admin.sock";
    let path = write_config(&format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n\n[admin]\nlisten = \"127.0.0.1:0\"\n\
         unix_socket = \"{socket}\"\n"
    ));
    let check = run(&["--check".as_ref(), "--config".as_ref(), path.as_os_str()]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let out = run(&["--config".as_ref(), path.as_os_str()]);
    let _ = std::fs::remove_file(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(71), "stderr {stderr}");
    assert!(stderr.contains(socket), "stderr {stderr}");
}

/// EACCES on a privileged port says how to get it: root with `[server] user`, or
/// CAP_NET_BIND_SERVICE. Run as root, the binary is started as nobody (65534), which has no
/// capability; run as a user that may bind low ports anyway, the test has nothing to show.
#[test]
fn permission_denied_on_a_low_port_hints_at_the_capability_and_the_user_key() {
    use std::os::unix::process::CommandExt;
    let start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(1024);
    let root = nix::unistd::geteuid().is_root();
    let capable = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("CapEff:") && !l.ends_with("0000000000000000"))
    });
    let port: u16 = 81;
    if start <= port || (!root && capable) {
        eprintln!("skipped: this process may bind port {port}");
        return;
    }
    let path = write_config(&format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\nworkers = 1\n\n[admin]\nenabled = false\n"
    ));
    let mut command = binary();
    if root {
        command.uid(65534).gid(65534);
    }
    let out = command
        .arg("--config")
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("run asycamore");
    let _ = std::fs::remove_file(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(71), "stderr {stderr}");
    assert!(
        stderr.contains(&format!("cannot bind 127.0.0.1:{port}: Permission denied"))
            && stderr.contains("CAP_NET_BIND_SERVICE")
            && stderr.contains("[server] user"),
        "stderr {stderr}"
    );
}

/// `--check` with stdout on the journal (`JOURNAL_STREAM` names it, as under the unit's
/// ExecStartPre=, which runs at every start): one line at info, the routes only at debug.
#[test]
fn check_under_the_journal_writes_one_line_and_the_summary_at_debug() {
    use std::os::unix::fs::MetadataExt;
    let check = |extra: &[&str]| {
        let path = crate::support::temp_path("check-journal.out");
        let out = std::fs::File::create(&path).expect("create");
        let meta = out.metadata().expect("stat");
        let status = binary()
            .arg("--check")
            .args(extra)
            .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
            .stdin(Stdio::null())
            .stdout(out)
            .status()
            .expect("run");
        assert!(status.success());
        let text = std::fs::read_to_string(&path).expect("read");
        let _ = std::fs::remove_file(&path);
        text
    };
    let quiet = check(&[]);
    let lines: Vec<&str> = quiet.lines().collect();
    assert_eq!(lines.len(), 1, "{quiet}");
    assert!(
        lines[0].starts_with("<6>") && lines[0].ends_with("configuration is valid"),
        "{quiet}"
    );
    let debug = check(&["--log-level", "debug"]);
    assert!(debug.lines().count() > 4, "{debug}");
    assert!(
        debug.lines().skip(1).all(|line| line.starts_with("<7>")),
        "{debug}"
    );
    assert!(debug.contains("<7>routes: "), "{debug}");
}
