//! `asycamore reload [--config FILE]`: asks the running daemon to reload FILE and reports the
//! outcome. The command never judges FILE itself: the daemon loads it, logs and counts a
//! failure (`asycamore_config_reloads_total{result="failure"}`), and answers with every error.
//!
//! **Finding the daemon.** FILE is read only for the keys that say where the daemon is,
//! leniently, so that a file with a TOML syntax error still leads to its daemon (which then
//! reports the error): parsed as TOML when it parses, else scanned line by line for
//! `key = "string"` / `key = true|false` under the `[admin]` and `[server]` headers. Tried in
//! this order:
//! 1. `[admin] unix_socket` (when the admin port is enabled): `POST /reload` over it;
//! 2. `[admin] listen`, when written in the file: `POST /reload` to that address;
//! 3. `[server] pidfile`: SIGHUP to the pid it names, then the outcome from
//!    `<pidfile>.reload`;
//! 4. the default admin address, 127.0.0.1:9180 (the file sets neither of the above).
//!
//! A connection refused (or a socket file missing) on 1 or 2 falls back to 3 when a pidfile is
//! set. The admin requests carry `[admin] token`, or the contents of `[admin] token_file`, as
//! a bearer token, and FILE's absolute path in the `Asycamore-Config` header: the daemon
//! answers 409 when that is not the file it runs. On the pidfile path the command compares
//! FILE with the `config` line of the status file and does not signal another daemon's file.
//!
//! Exit statuses: 0 applied (warnings about keys that need a restart are printed); 78 rejected
//! (every error printed); 64 FILE is not the daemon's file; 69 the daemon cannot be reached or
//! did not answer in time; 77 not allowed (socket, token file or pidfile unreadable, token
//! refused).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::reload::{Status, read_status, same_file, status_path};
use super::{DEFAULT_CONFIG_PATH, EXIT_CONFIG, EXIT_NOPERM, EXIT_UNAVAILABLE, EXIT_USAGE, process};
use crate::admin::CONFIG_HEADER;

/// How long the command waits for the outcome.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often it looks at the status file meanwhile (pidfile path).
const POLL_EVERY: Duration = Duration::from_millis(10);
/// The admin address when the file writes none.
const DEFAULT_ADMIN: &str = "127.0.0.1:9180";

/// A failure: the exit status and the message.
type Failure = (u8, String);

/// Where the daemon of a configuration file is, as far as the file says.
#[derive(Debug, Default, PartialEq, Eq)]
struct Locator {
    admin_enabled: Option<bool>,
    listen: Option<String>,
    unix_socket: Option<String>,
    token: Option<String>,
    token_file: Option<String>,
    pidfile: Option<String>,
}

impl Locator {
    /// The keys of `text`, as TOML when it parses, else line by line.
    fn read(text: &str) -> Locator {
        match text.parse::<toml::Table>() {
            Ok(table) => Locator::from_table(&table),
            Err(_) => Locator::scan(text),
        }
    }

    fn from_table(table: &toml::Table) -> Locator {
        let string = |section: &str, key: &str| {
            table
                .get(section)?
                .get(key)?
                .as_str()
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
        };
        Locator {
            admin_enabled: table
                .get("admin")
                .and_then(|admin| admin.get("enabled")?.as_bool()),
            listen: string("admin", "listen"),
            unix_socket: string("admin", "unix_socket"),
            token: string("admin", "token"),
            token_file: string("admin", "token_file"),
            pidfile: string("server", "pidfile"),
        }
    }

    /// The lenient reading of a file that is not valid TOML: `[section]` headers, and
    /// `key = "value"` or `key = true|false` lines (a trailing comment allowed); anything
    /// else is skipped.
    fn scan(text: &str) -> Locator {
        let mut locator = Locator::default();
        let mut section = String::new();
        for line in text.lines() {
            let line = line.trim();
            if let Some(header) = line.strip_prefix('[') {
                section = header
                    .trim_start_matches('[')
                    .split(']')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            let string = value
                .strip_prefix('"')
                .and_then(|rest| rest.split_once('"'))
                .map(|(inside, _)| inside.to_owned())
                .filter(|inside| !inside.is_empty() && !inside.contains('\\'));
            let flag = match value.split('#').next().unwrap_or_default().trim() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            };
            match (section.as_str(), key) {
                ("admin", "enabled") => locator.admin_enabled = flag,
                ("admin", "listen") => locator.listen = string,
                ("admin", "unix_socket") => locator.unix_socket = string,
                ("admin", "token") => locator.token = string,
                ("admin", "token_file") => locator.token_file = string,
                ("server", "pidfile") => locator.pidfile = string,
                _ => {}
            }
        }
        locator
    }
}

/// `asycamore reload [--config FILE]`.
pub(super) fn request(config: Option<&Path>) -> ExitCode {
    let file = config.unwrap_or(Path::new(DEFAULT_CONFIG_PATH));
    let file = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    match reload(&file) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("asycamore reload: {message}");
            ExitCode::from(code)
        }
    }
}

fn reload(file: &Path) -> Result<(), Failure> {
    let name = file.display();
    let text = std::fs::read_to_string(file).map_err(|err| {
        let code = if err.kind() == io::ErrorKind::PermissionDenied {
            EXIT_NOPERM
        } else {
            EXIT_CONFIG
        };
        (code, format!("cannot read {name}: {err}"))
    })?;
    let locator = Locator::read(&text);
    let admin = locator.admin_enabled != Some(false);
    let pidfile = locator.pidfile.as_deref().map(PathBuf::from);
    let mut channels: Vec<Channel> = Vec::new();
    if admin {
        if let Some(socket) = &locator.unix_socket {
            channels.push(Channel::Unix(PathBuf::from(socket)));
        }
        if let Some(listen) = &locator.listen {
            let addr = listen.parse().map_err(|_| {
                (
                    EXIT_CONFIG,
                    format!("{name}: admin.listen: {listen:?} is not an ip:port address"),
                )
            })?;
            channels.push(Channel::Tcp(addr));
        }
    }
    if let Some(pidfile) = &pidfile {
        channels.push(Channel::Pidfile(pidfile.clone()));
    }
    if admin && channels.is_empty() {
        let addr = DEFAULT_ADMIN.parse().expect("a socket address");
        channels.push(Channel::Tcp(addr));
    }
    if channels.is_empty() {
        return Err((
            EXIT_CONFIG,
            format!(
                "{name}: cannot find the daemon: the admin port is disabled and \
                 server.pidfile is not set (set [admin] unix_socket or [server] pidfile)"
            ),
        ));
    }
    let mut last = None;
    for channel in channels {
        match channel {
            Channel::Pidfile(pidfile) => return signal_and_wait(file, &pidfile),
            Channel::Unix(_) | Channel::Tcp(_) => {
                let token = token(&locator, file)?;
                match post_reload(&channel, file, token.as_deref())? {
                    Reply::Unreached(err) => last = Some((channel, err)),
                    Reply::Answer(answer) => return report(answer),
                }
            }
        }
    }
    let (channel, err) = last.expect("an admin channel was tried");
    let code = if err.kind() == io::ErrorKind::PermissionDenied {
        EXIT_NOPERM
    } else {
        EXIT_UNAVAILABLE
    };
    let hint = if code == EXIT_NOPERM {
        " (the socket's group may use it: see docs/OPERATIONS.md, \"Admin access\")"
    } else {
        ": is asycamore running?"
    };
    Err((
        code,
        format!("cannot reach the daemon's admin port at {channel}: {err}{hint}"),
    ))
}

/// How to reach the daemon.
enum Channel {
    Unix(PathBuf),
    Tcp(SocketAddr),
    Pidfile(PathBuf),
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Channel::Unix(path) => write!(f, "unix:{}", path.display()),
            Channel::Tcp(addr) => write!(f, "http://{addr}"),
            Channel::Pidfile(path) => write!(f, "pidfile {}", path.display()),
        }
    }
}

/// The bearer token the file gives: `[admin] token`, else the first line of `token_file`.
fn token(locator: &Locator, file: &Path) -> Result<Option<String>, Failure> {
    if let Some(token) = &locator.token {
        return Ok(Some(token.clone()));
    }
    let Some(path) = &locator.token_file else {
        return Ok(None);
    };
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(err) => Err((
            if err.kind() == io::ErrorKind::PermissionDenied {
                EXIT_NOPERM
            } else {
                EXIT_CONFIG
            },
            format!(
                "{}: admin.token_file: cannot read {path}: {err} (its group may read it: see \
                 docs/OPERATIONS.md, \"Admin access\")",
                file.display()
            ),
        )),
    }
}

/// What became of a request to the admin port.
enum Reply {
    /// The daemon answered.
    Answer(Answer),
    /// Nothing could be connected to there (try the next channel).
    Unreached(io::Error),
}

/// An HTTP answer: status and body.
struct Answer {
    status: u16,
    body: String,
}

/// `POST /reload` on the admin port.
fn post_reload(channel: &Channel, file: &Path, token: Option<&str>) -> Result<Reply, Failure> {
    let unreachable = |err: io::Error| (EXIT_UNAVAILABLE, format!("{channel}: {err}"));
    let mut head = String::from(
        "POST /reload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n",
    );
    let path = file.to_str().filter(|path| !path.contains(['\r', '\n']));
    if let Some(path) = path {
        head.push_str(&format!("{CONFIG_HEADER}: {path}\r\n"));
    }
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    head.push_str("\r\n");
    let reply = match channel {
        Channel::Unix(path) => match UnixStream::connect(path) {
            Ok(stream) => exchange(stream, head.as_bytes(), |s, t| s.set_read_timeout(t)),
            Err(err) => return Ok(Reply::Unreached(err)),
        },
        Channel::Tcp(addr) => match TcpStream::connect_timeout(addr, Duration::from_secs(5)) {
            Ok(stream) => exchange(stream, head.as_bytes(), |s, t| s.set_read_timeout(t)),
            Err(err) => return Ok(Reply::Unreached(err)),
        },
        Channel::Pidfile(_) => unreachable!("not an admin channel"),
    }
    .map_err(unreachable)?;
    parse_answer(&reply).map(Reply::Answer).ok_or_else(|| {
        (
            EXIT_UNAVAILABLE,
            format!("{channel}: not an HTTP answer from the admin port"),
        )
    })
}

fn exchange<S: Read + Write>(
    mut stream: S,
    request: &[u8],
    set_timeout: impl Fn(&S, Option<Duration>) -> io::Result<()>,
) -> io::Result<Vec<u8>> {
    set_timeout(&stream, Some(REQUEST_TIMEOUT))?;
    stream.write_all(request)?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    Ok(reply)
}

fn parse_answer(reply: &[u8]) -> Option<Answer> {
    let text = String::from_utf8_lossy(reply);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    Some(Answer {
        status,
        body: body.to_owned(),
    })
}

/// Prints the admin port's answer; the exit status.
fn report(answer: Answer) -> Result<(), Failure> {
    let body = answer.body.trim_end();
    match answer.status {
        200 => {
            let mut lines = body.lines();
            if let Some(first) = lines.next() {
                println!("{first}");
            }
            for warning in lines {
                eprintln!("asycamore reload: {warning}");
            }
            Ok(())
        }
        422 => Err((
            EXIT_CONFIG,
            format!(
                "the daemon rejected the configuration and keeps serving its previous one: \
                 {body}"
            ),
        )),
        409 if body.contains("is not the configuration file") => Err((EXIT_USAGE, body.into())),
        401 => Err((
            EXIT_NOPERM,
            format!("the daemon refused the admin token: {body}"),
        )),
        403 => Err((EXIT_NOPERM, body.into())),
        status => Err((
            EXIT_UNAVAILABLE,
            format!("the daemon answered {status}: {body}"),
        )),
    }
}

/// SIGHUP to the daemon holding `pidfile`, then its outcome from the status file.
fn signal_and_wait(file: &Path, pidfile: &Path) -> Result<(), Failure> {
    let unreachable = |message: String| (EXIT_UNAVAILABLE, message);
    let noperm_or = |err: &io::Error| {
        if err.kind() == io::ErrorKind::PermissionDenied {
            EXIT_NOPERM
        } else {
            EXIT_UNAVAILABLE
        }
    };
    let pid = match process::running_pid(pidfile) {
        Ok(Some(pid)) => pid,
        Ok(None) => {
            return Err(unreachable(format!(
                "no daemon holds the pidfile {}: is asycamore running?",
                pidfile.display()
            )));
        }
        Err(err) => {
            return Err((
                noperm_or(&err),
                format!("cannot read the pidfile {}: {err}", pidfile.display()),
            ));
        }
    };
    let pid = Pid::from_raw(i32::try_from(pid).map_err(|_| unreachable(format!("bad pid {pid}")))?);
    let status_path = status_path(pidfile);
    let cannot_read = |err: io::Error| {
        (
            noperm_or(&err),
            format!(
                "cannot read the reload status {}: {err}",
                status_path.display()
            ),
        )
    };
    let before = read_status(&status_path).map_err(cannot_read)?;
    if let Some(Status { config, .. }) = &before {
        if !same_file(file, Path::new(config)) {
            return Err((
                EXIT_USAGE,
                format!(
                    "{} is not the configuration file of the daemon (pid {pid}), which runs \
                     {config}; nothing was reloaded",
                    file.display()
                ),
            ));
        }
    }
    let before = before.map(|status| status.seq);
    kill(pid, Signal::SIGHUP).map_err(|err| {
        let err = io::Error::from(err);
        (
            noperm_or(&err),
            format!("cannot signal the daemon (pid {pid}): {err}"),
        )
    })?;
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let status = loop {
        if let Some(status) = read_status(&status_path).map_err(cannot_read)? {
            if Some(status.seq) != before {
                break status;
            }
        }
        if kill(pid, None).is_err() {
            return Err(unreachable(format!(
                "the daemon (pid {pid}) exited before reporting"
            )));
        }
        if Instant::now() >= deadline {
            return Err(unreachable(format!(
                "no outcome from the daemon (pid {pid}) within {}s",
                REQUEST_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(POLL_EVERY);
    };
    match status.generation {
        Some(generation) => {
            println!(
                "reload #{}: ok, now serving configuration generation {generation}",
                status.seq
            );
            for warning in status.errors {
                eprintln!("asycamore reload: warning: {warning}");
            }
            Ok(())
        }
        None => {
            let mut message = format!(
                "reload #{} was rejected; the daemon keeps serving its previous configuration:",
                status.seq
            );
            for error in status.errors {
                message.push('\n');
                message.push_str(&error);
            }
            Err((EXIT_CONFIG, message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_file_still_names_its_daemon() {
        let text = "[server]\npidfile = \"/run/a.pid\" # here\n[[route]\nname = \n\
                    [admin]\nenabled = true\nlisten = \"127.0.0.1:9\"\n\
                    unix_socket = \"/run/a.sock\"\ntoken_file = \"/etc/t\"\n";
        assert!(text.parse::<toml::Table>().is_err());
        assert_eq!(
            Locator::read(text),
            Locator {
                admin_enabled: Some(true),
                listen: Some("127.0.0.1:9".into()),
                unix_socket: Some("/run/a.sock".into()),
                token: None,
                token_file: Some("/etc/t".into()),
                pidfile: Some("/run/a.pid".into()),
            }
        );
        // Keys of other sections do not count.
        let other = "[log]\nfile = \"x\"\npidfile = \"/x\"\n[route\nunix_socket = \"/y\"\n";
        assert_eq!(Locator::read(other), Locator::default());
    }

    #[test]
    fn answers_parse() {
        let answer = parse_answer(b"HTTP/1.1 422 Unprocessable\r\nA: b\r\n\r\nerr\n").unwrap();
        assert_eq!((answer.status, answer.body.as_str()), (422, "err\n"));
        assert!(parse_answer(b"garbage").is_none());
    }
}
