//! Socket activation: listening sockets passed by systemd (or any manager speaking its
//! protocol: `LISTEN_PID`, `LISTEN_FDS`, descriptors from 3 on), used instead of binding.
//!
//! The sockets are taken once, at start-up, before any thread starts; each must be a
//! listening TCP socket (anything else is an error naming the descriptor). The variables are
//! then removed from the environment, as `sd_listen_fds(1)` does, so nothing started later
//! takes them for its own. The server matches each socket to a configured address by the
//! address it is bound to (`server::start_with_inherited`).

use std::io;
use std::net::TcpListener;
use std::ops::Range;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};

use socket2::{Domain, Socket, Type};

use super::sys;

/// The first descriptor passed (`SD_LISTEN_FDS_START`).
const FIRST_FD: RawFd = 3;
/// More than any sane unit passes: a larger count is an error, not a loop over junk.
const MAX_FDS: u32 = 1024;
/// The variables of the protocol.
const VARS: [&str; 3] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"];

/// Set once the descriptors are taken: a second call finds none (each descriptor has one
/// owner).
static TAKEN: AtomicBool = AtomicBool::new(false);

/// The listening sockets passed to this process, in descriptor order; empty when none were
/// (no `LISTEN_PID`, or one naming another process). Call once, before starting threads.
pub fn inherited_listeners() -> io::Result<Vec<TcpListener>> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    if pid.is_some() || fds.is_some() {
        sys::remove_env(&VARS);
    }
    let range = passed_fds(pid.as_deref(), fds.as_deref(), std::process::id())?;
    if range.is_empty() || TAKEN.swap(true, Ordering::SeqCst) {
        return Ok(Vec::new());
    }
    range.map(listener).collect()
}

/// The descriptors the variables pass to process `own_pid`.
fn passed_fds(pid: Option<&str>, fds: Option<&str>, own_pid: u32) -> io::Result<Range<RawFd>> {
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(FIRST_FD..FIRST_FD);
    };
    let invalid = |what: &str, value: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("socket activation: {what}={value:?} is not a valid number"),
        )
    };
    let pid: u32 = pid.trim().parse().map_err(|_| invalid("LISTEN_PID", pid))?;
    if pid != own_pid {
        // Meant for another process (e.g. inherited through a wrapper that did not exec).
        return Ok(FIRST_FD..FIRST_FD);
    }
    let count: u32 = fds.trim().parse().map_err(|_| invalid("LISTEN_FDS", fds))?;
    if count > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("socket activation: LISTEN_FDS={count} is more than {MAX_FDS}"),
        ));
    }
    Ok(FIRST_FD..FIRST_FD + count as RawFd)
}

/// Takes descriptor `fd` as a listener, if it is a listening TCP socket.
fn listener(fd: RawFd) -> io::Result<TcpListener> {
    let socket = Socket::from(sys::take_inherited_fd(fd)?);
    let not_tcp = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("inherited descriptor {fd} is not a listening TCP socket: {what}"),
        )
    };
    let socket_type = socket
        .r#type()
        .map_err(|err| not_tcp(&format!("not a socket ({err})")))?;
    if socket_type != Type::STREAM {
        return Err(not_tcp("not a stream socket"));
    }
    let addr = socket.local_addr()?;
    match addr.domain() {
        Domain::IPV4 | Domain::IPV6 => {}
        _ => return Err(not_tcp("not an IPv4 or IPv6 socket")),
    }
    if !socket.is_listener()? {
        return Err(not_tcp("not listening"));
    }
    Ok(TcpListener::from(socket))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_passed_without_both_variables() {
        assert!(passed_fds(None, None, 7).unwrap().is_empty());
        assert!(passed_fds(Some("7"), None, 7).unwrap().is_empty());
        assert!(passed_fds(None, Some("2"), 7).unwrap().is_empty());
    }

    #[test]
    fn descriptors_for_another_process_are_not_taken() {
        assert!(passed_fds(Some("8"), Some("2"), 7).unwrap().is_empty());
    }

    #[test]
    fn descriptors_start_at_three() {
        assert_eq!(passed_fds(Some("7"), Some("2"), 7).unwrap(), 3..5);
        assert_eq!(passed_fds(Some(" 7\n"), Some("0"), 7).unwrap(), 3..3);
    }

    #[test]
    fn malformed_variables_are_errors() {
        let err = passed_fds(Some("x"), Some("1"), 7).unwrap_err();
        assert!(err.to_string().contains("LISTEN_PID=\"x\""), "{err}");
        let err = passed_fds(Some("7"), Some("-1"), 7).unwrap_err();
        assert!(err.to_string().contains("LISTEN_FDS"), "{err}");
        let err = passed_fds(Some("7"), Some("100000"), 7).unwrap_err();
        assert!(err.to_string().contains("more than"), "{err}");
    }

    #[test]
    fn a_listening_tcp_socket_is_taken_and_others_are_refused() {
        use std::os::fd::IntoRawFd;
        // Descriptors the test owns, handed over as if inherited.
        let listening = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listening.local_addr().unwrap();
        let taken = listener(listening.into_raw_fd()).unwrap();
        assert_eq!(taken.local_addr().unwrap(), addr);

        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let err = listener(udp.into_raw_fd()).unwrap_err();
        assert!(err.to_string().contains("not a stream socket"), "{err}");

        let bound = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        bound
            .bind(
                &"127.0.0.1:0"
                    .parse::<std::net::SocketAddr>()
                    .unwrap()
                    .into(),
            )
            .unwrap();
        let err = listener(bound.into_raw_fd()).unwrap_err();
        assert!(err.to_string().contains("not listening"), "{err}");

        let file = std::fs::File::open("/dev/null").unwrap();
        let err = listener(file.into_raw_fd()).unwrap_err();
        assert!(err.to_string().contains("not a socket"), "{err}");
    }
}
