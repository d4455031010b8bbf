//! Daemon mode and systemd integration with the real binary: `--daemonize` (the invoker's
//! exit status, the pidfile, a port conflict), sd_notify messages on a Unix datagram socket
//! set as `NOTIFY_SOCKET`, and socket activation with a listener passed as descriptor 3.
//!
//! Every wait is a bounded poll or a read with a timeout: a daemon that misbehaves fails the
//! test, never hangs it.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::{
    BASE, Client, IO_LIMIT, TestServer, binary, get, spawn_logged, temp_path, write_config,
};
use crate::sys::pass_as_fd3;

/// The base config listening on `addr`, with `keys` added to `[server]`.
fn config(addr: SocketAddr, keys: &str) -> String {
    BASE.replace(
        "listen = [\"127.0.0.1:0\"]",
        &format!("listen = [\"{addr}\"]\n{keys}"),
    )
}

/// A port free now (the listener is closed again at once).
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("reserve a port")
}

/// Polls `done` until it holds, failing the test with `what` after `IO_LIMIT`.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + IO_LIMIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits (bounded) for `child` to exit; kills it and fails the test if it does not.
fn wait_exit(child: &mut Child, what: &str) -> ExitStatus {
    let deadline = Instant::now() + IO_LIMIT;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit in {IO_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether process `pid` runs (a zombie nobody reaped yet counts as gone).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

fn signal(pid: u32, signal: Signal) {
    kill(Pid::from_raw(pid as i32), signal).expect("send a signal");
}

/// Every line until the stream closes (the daemon keeps the invoker's stderr open while it
/// logs to stderr, so this waits for every holder to exit).
fn all_lines(rx: &mpsc::Receiver<String>) -> String {
    let deadline = Instant::now() + IO_LIMIT;
    let mut text = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                text.push_str(&line);
                text.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return text,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("stderr stayed open; so far:\n{text}"),
        }
    }
}

/// Runs `asycamore --daemonize --config <config>`: the invoking process and its stderr lines.
fn daemonize(config: &Path) -> (Child, mpsc::Receiver<String>) {
    let mut command = binary();
    command.arg("--daemonize").arg("--config").arg(config);
    spawn_logged(command)
}

/// A daemon to stop when the test ends, however it ends.
struct Daemon(u32);

impl Drop for Daemon {
    fn drop(&mut self) {
        if alive(self.0) {
            let _ = kill(Pid::from_raw(self.0 as i32), Signal::SIGKILL);
        }
    }
}

fn hello(addr: SocketAddr) -> String {
    let mut client = Client::connect(addr);
    client.send(&get("/"));
    let response = client.read_response();
    assert_eq!(response.status, 200);
    response.text()
}

#[test]
fn daemonize_exits_0_after_binding_and_the_pidfile_names_the_daemon() {
    let addr = free_addr();
    let pidfile = temp_path("daemon.pid");
    let path = write_config(&config(addr, &format!("pidfile = {:?}", pidfile)));
    let (mut invoker, stderr) = daemonize(&path);
    let status = wait_exit(&mut invoker, "the invoking process");
    let said: Vec<String> = stderr.try_iter().collect();
    assert!(status.success(), "status {status}; stderr {said:?}");

    // Bound before the invoker exited: it answers at once, no retrying.
    let text = std::fs::read_to_string(&pidfile).expect("the pidfile exists on exit 0");
    let pid: u32 = text.trim().parse().expect("a pid in the pidfile");
    let _daemon = Daemon(pid);
    assert_ne!(pid, invoker.id(), "the daemon is not the invoking process");
    assert!(alive(pid), "pid {pid} runs");
    assert_eq!(hello(addr), "Hello, World!");
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).expect("daemon cwd");
    assert_eq!(cwd, PathBuf::from("/"), "the daemon works in /");

    // A second daemon with the same pidfile is refused, and says why.
    let (mut second, second_err) = daemonize(&path);
    let status = wait_exit(&mut second, "the second invoker");
    assert!(!status.success(), "a second daemon started");
    let said = all_lines(&second_err);
    assert!(
        said.contains("already running") && said.contains(&pid.to_string()),
        "stderr {said:?}"
    );
    assert!(alive(pid), "the first daemon still runs");

    signal(pid, Signal::SIGTERM);
    wait_for("the daemon to exit on SIGTERM", || !alive(pid));
    wait_for("the pidfile to be removed", || !pidfile.exists());
    let _ = std::fs::remove_file(&path);
}

#[test]
fn daemonize_reports_a_port_conflict_to_the_invoker() {
    // Held without SO_REUSEPORT: the daemon cannot bind it.
    let holder = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = holder.local_addr().expect("addr");
    let pidfile = temp_path("conflict.pid");
    let path = write_config(&config(addr, &format!("pidfile = {:?}", pidfile)));
    let (mut invoker, stderr) = daemonize(&path);
    let status = wait_exit(&mut invoker, "the invoking process");
    let said = all_lines(&stderr);
    assert!(
        !status.success(),
        "exit 0 despite the conflict; stderr {said:?}"
    );
    assert!(
        said.contains(&addr.to_string()) && said.contains("did not start"),
        "stderr {said:?}"
    );
    assert!(!pidfile.exists(), "no pidfile is left behind");
    let _ = std::fs::remove_file(&path);
}

/// The datagrams of an sd_notify socket, each read with a timeout.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    fn bind() -> NotifySocket {
        let path = temp_path("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket.set_read_timeout(Some(IO_LIMIT)).expect("timeout");
        NotifySocket { socket, path }
    }

    /// Receives messages until one has the line `line` (or starts with it, for `KEY=`);
    /// returns that message. Earlier ones are appended to `seen`.
    fn until(&self, line: &str, seen: &mut Vec<String>) -> String {
        let mut buf = vec![0; 4096];
        loop {
            let n = self
                .socket
                .recv(&mut buf)
                .unwrap_or_else(|err| panic!("no {line} (seen {seen:?}): {err}"));
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            if message.lines().any(|l| l.starts_with(line)) {
                return message;
            }
            seen.push(message);
        }
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn monotonic_usec() -> i128 {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("clock");
    now.tv_sec() as i128 * 1_000_000 + now.tv_nsec() as i128 / 1_000
}

#[test]
fn sd_notify_tells_ready_reloading_and_stopping() {
    let notify = NotifySocket::bind();
    let path = write_config(BASE);
    let mut child = binary()
        .arg("--config")
        .arg(&path)
        .env("NOTIFY_SOCKET", &notify.path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn asycamore");
    let pid = child.id();
    let _daemon = Daemon(pid);
    let mut seen = Vec::new();

    let ready = notify.until("READY=1", &mut seen);
    assert!(ready.contains(&format!("MAINPID={pid}")), "{ready:?}");
    let all = |seen: &[String], last: &str| format!("{}{last}", seen.concat());
    if !all(&seen, &ready).contains("STATUS=") {
        let status = notify.until("STATUS=", &mut seen);
        assert!(status.contains("generation 1"), "{status:?}");
    } else {
        assert!(all(&seen, &ready).contains("generation 1"), "{seen:?}");
    }

    seen.clear();
    let before = monotonic_usec();
    signal(pid, Signal::SIGHUP);
    let reloading = notify.until("RELOADING=1", &mut seen);
    let usec: i128 = reloading
        .lines()
        .find_map(|line| line.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC with RELOADING=1: {reloading:?}"))
        .parse()
        .expect("MONOTONIC_USEC is a number");
    assert!(
        before <= usec && usec <= monotonic_usec(),
        "MONOTONIC_USEC {usec} is not the time of the reload"
    );
    notify.until("READY=1", &mut seen);

    seen.clear();
    signal(pid, Signal::SIGTERM);
    notify.until("STOPPING=1", &mut seen);
    let status = wait_exit(&mut child, "the server after SIGTERM");
    assert!(status.success(), "status {status}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn socket_activation_serves_on_the_passed_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let path = write_config(&config(addr, ""));
    // LISTEN_PID must be the server's own pid: a shell sets it to its own, then becomes the
    // server by exec.
    let mut command = std::process::Command::new("/bin/sh");
    command
        .arg("-c")
        .arg("LISTEN_PID=$$ exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_asycamore"))
        .arg("--config")
        .arg(&path)
        .env("LISTEN_FDS", "1")
        .env_remove("LISTEN_PID");
    pass_as_fd3(&mut command, listener.as_raw_fd());
    let (mut child, log) = spawn_logged(command);
    let _daemon = Daemon(child.id());
    // Only the server holds the socket now; had it bound its own it would have failed to
    // (the address is taken), so an answer proves it serves the one it was passed.
    drop(listener);
    assert_eq!(hello(addr), "Hello, World!");
    // The configuration (defer_accept, on by default) applies to the inherited socket too.
    let deferred = crate::sys::defer_accept_of_listener(child.id(), addr.port());
    assert!(
        deferred > 0,
        "TCP_DEFER_ACCEPT {deferred} on the inherited listener"
    );
    let exited = child.try_wait().expect("try_wait");
    let said: Vec<String> = log.try_iter().collect();
    assert!(
        exited.is_none(),
        "server exited: {exited:?}; stderr {said:?}"
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_passed_descriptor_that_is_not_a_listener_is_refused() {
    let addr = free_addr();
    let path = write_config(&config(addr, ""));
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let mut command = std::process::Command::new("/bin/sh");
    command
        .arg("-c")
        .arg("LISTEN_PID=$$ exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_asycamore"))
        .arg("--config")
        .arg(&path)
        .env("LISTEN_FDS", "1");
    pass_as_fd3(&mut command, socket.as_raw_fd());
    let (mut child, log) = spawn_logged(command);
    let _daemon = Daemon(child.id());
    let status = wait_exit(&mut child, "the server given a UDP socket");
    let said = all_lines(&log);
    assert!(
        !status.success(),
        "started with a UDP socket; stderr {said:?}"
    );
    assert!(
        said.contains("descriptor 3 is not a listening TCP socket"),
        "stderr {said:?}"
    );
    let _ = std::fs::remove_file(&path);
}

/// The `Uid:`/`Gid:`/`Groups:` values of process `pid`.
fn ids(pid: u32, key: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"));
    line.split_whitespace()
        .map(|id| id.parse().expect("an id"))
        .collect()
}

#[test]
fn privileges_are_dropped_after_binding_a_privileged_port() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: dropping privileges needs root");
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody")
        .expect("user database")
        .expect("a user nobody");
    // A port below 1024: only root can bind it, so serving on it proves the bind came first.
    let addr = (700..1000)
        .find_map(|port| TcpListener::bind(("127.0.0.1", port)).ok())
        .and_then(|listener| listener.local_addr().ok())
        .expect("a free privileged port");
    let server = TestServer::start(&config(addr, "user = \"nobody\""));
    let pid = server.pid();
    let uid = nobody.uid.as_raw();
    let gid = nobody.gid.as_raw();
    assert_eq!(ids(pid, "Uid:"), [uid; 4], "real, effective, saved, fs uid");
    assert_eq!(ids(pid, "Gid:"), [gid; 4], "real, effective, saved, fs gid");
    assert_eq!(ids(pid, "Groups:"), [gid], "supplementary groups");
    assert_eq!(hello(addr), "Hello, World!");
}

/// What the terminal shows so far (the master end read until nothing is left).
fn terminal_text(master: &std::fs::File) -> String {
    use std::io::Read;
    let flags = nix::fcntl::fcntl(master, nix::fcntl::FcntlArg::F_GETFL).expect("getfl");
    let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(master, nix::fcntl::FcntlArg::F_SETFL(flags)).expect("setfl");
    let mut text = Vec::new();
    let mut buf = [0; 4096];
    let mut master = master;
    // EAGAIN: nothing more now; EIO: every slave descriptor is closed.
    while let Ok(n @ 1..) = master.read(&mut buf) {
        text.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// Runs `asycamore --daemonize` with stdout and stderr on a terminal; its exit status and the
/// terminal's text once it has exited.
fn daemonize_on_a_terminal(config: &Path) -> (ExitStatus, String) {
    let (master, slave) = crate::sys::pty();
    let mut invoker = binary()
        .arg("--daemonize")
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(slave.try_clone().expect("dup"))
        .stderr(slave)
        .spawn()
        .expect("spawn");
    let status = wait_exit(&mut invoker, "the invoking process");
    (status, terminal_text(&master))
}

/// The file descriptor 2 of process `pid` points to.
fn stderr_of(pid: u32) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/fd/2")).expect("readlink fd 2")
}

#[test]
fn daemonize_from_a_terminal_leaves_it_with_a_file_log() {
    let addr = free_addr();
    let pidfile = temp_path("tty-file.pid");
    let log = temp_path("tty-file.log");
    let path = write_config(&format!(
        "{}\n[log]\ntarget = \"file\"\nfile = {log:?}\n",
        config(addr, &format!("pidfile = {pidfile:?}"))
    ));
    let (status, terminal) = daemonize_on_a_terminal(&path);
    assert!(status.success(), "{status}: {terminal:?}");
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .expect("pidfile")
        .trim()
        .parse()
        .expect("pid");
    let _daemon = Daemon(pid);
    assert_eq!(stderr_of(pid), Path::new("/dev/null"));
    assert_eq!(hello(addr), "Hello, World!");
    signal(pid, Signal::SIGHUP);
    wait_for("the reload in the log file", || {
        std::fs::read_to_string(&log).is_ok_and(|text| text.contains("reload #1"))
    });
    signal(pid, Signal::SIGTERM);
    wait_for("the daemon to exit", || !alive(pid));
    assert!(
        !terminal.contains("listening on") && !terminal.contains("reload"),
        "the terminal got the daemon's log: {terminal:?}"
    );
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&log);
}

/// `[log] target = "stderr"` and stderr a terminal: the daemon's stderr becomes /dev/null and
/// the log goes to syslog; without a syslog daemon (no /dev/log, as in a container) the start
/// fails, saying what to set instead.
#[test]
fn daemonize_from_a_terminal_sends_a_stderr_log_to_syslog() {
    let addr = free_addr();
    let pidfile = temp_path("tty-stderr.pid");
    let path = write_config(&config(addr, &format!("pidfile = {pidfile:?}")));
    let (status, terminal) = daemonize_on_a_terminal(&path);
    assert!(
        terminal.contains("the error log goes to syslog"),
        "{terminal:?}"
    );
    if Path::new("/dev/log").exists() {
        assert!(status.success(), "{status}: {terminal:?}");
        let pid: u32 = std::fs::read_to_string(&pidfile)
            .expect("pidfile")
            .trim()
            .parse()
            .expect("pid");
        let _daemon = Daemon(pid);
        assert_eq!(stderr_of(pid), Path::new("/dev/null"));
        signal(pid, Signal::SIGTERM);
        wait_for("the daemon to exit", || !alive(pid));
    } else {
        assert_eq!(status.code(), Some(71), "{terminal:?}");
        assert!(
            terminal.contains("cannot connect to syslog") && terminal.contains("2>>FILE"),
            "{terminal:?}"
        );
    }
    assert!(!terminal.contains("listening on"), "{terminal:?}");
    let _ = std::fs::remove_file(&path);
}

/// Started as root with `[server] user`, the daemon creates its pidfile (and the reload
/// status file) in a directory only root may write, drops privileges, and both files are
/// still removed when it exits; the helper that removes them keeps no listener.
#[test]
fn the_pidfile_is_removed_after_dropping_privileges() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: dropping privileges needs root");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_path("root-only");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let pidfile = dir.join("asycamore.pid");
    let status_file = dir.join("asycamore.pid.reload");
    let addr = free_addr();
    let mut server = TestServer::start(&config(
        addr,
        &format!("user = \"nobody\"\npidfile = {pidfile:?}"),
    ));
    let pid = server.pid();
    assert!(pidfile.exists() && status_file.exists());
    assert_ne!(ids(pid, "Uid:")[1], 0, "privileges dropped");
    // As the daemon itself, removing them is refused now.
    assert_eq!(hello(addr), "Hello, World!");
    signal(pid, Signal::SIGTERM);
    wait_for("the daemon to exit", || !server.is_running());
    wait_for("the pidfile to be removed", || !pidfile.exists());
    wait_for("the status file to be removed", || !status_file.exists());
    assert!(
        !server
            .log_lines()
            .iter()
            .any(|line| line.contains("cannot remove pidfile")),
        "{:?}",
        server.log_lines()
    );
    // Nothing holds the port any more.
    TcpListener::bind(addr).expect("the port is free after the exit");
    let _ = std::fs::remove_dir(&dir);
}
