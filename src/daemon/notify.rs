//! sd_notify: telling the service manager (systemd, `Type=notify` or `Type=notify-reload`)
//! how the daemon is doing, through the datagram socket named by `NOTIFY_SOCKET`.
//!
//! The messages: `READY=1` once the listeners are bound; `RELOADING=1` with `MONOTONIC_USEC`
//! when a reload starts and `READY=1` when it ends (whatever its outcome: the old config keeps
//! serving after a failed one); `STOPPING=1` when a stop starts; `STATUS=` with the config
//! generation and the open connections; `WATCHDOG=1` from the control thread every half of
//! `WATCHDOG_USEC`. A notification that cannot be sent is logged and otherwise ignored: the
//! service manager's trouble must not stop the server.

use std::time::Duration;

use sd_notify::NotifyState;

/// A handle on the service manager's notification socket.
#[derive(Debug)]
pub struct Notifier {
    watchdog: Option<Duration>,
}

impl Notifier {
    /// The notifier, when `NOTIFY_SOCKET` is set (the process runs under a service manager
    /// that listens); `None` otherwise.
    pub fn from_env() -> Option<Notifier> {
        let socket = std::env::var_os("NOTIFY_SOCKET")?;
        if socket.is_empty() {
            return None;
        }
        Some(Notifier {
            watchdog: sd_notify::watchdog_enabled(),
        })
    }

    /// `READY=1` (with `MAINPID`, right after `--daemonize` forked): start-up or a reload is
    /// done.
    pub fn ready(&self) {
        self.send(&[NotifyState::Ready, NotifyState::MainPid(std::process::id())]);
    }

    /// `RELOADING=1` with `MONOTONIC_USEC` (required by `Type=notify-reload`): a reload starts.
    pub fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now]),
            Err(err) => {
                log::warn!("sd_notify: cannot read the monotonic clock: {err}");
                self.send(&[NotifyState::Reloading]);
            }
        }
    }

    /// `STOPPING=1`: a stop starts.
    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }

    /// `STATUS=generation N, M connections`, shown by `systemctl status`.
    pub fn status(&self, generation: u64, connections: usize) {
        self.send(&[NotifyState::Status(&status_text(generation, connections))]);
    }

    /// How often to [`ping`](Self::ping): half the watchdog timeout, when the service manager
    /// set one (`WATCHDOG_USEC`, for this process when `WATCHDOG_PID` is set).
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|timeout| timeout / 2)
    }

    /// `WATCHDOG=1`: the control loop is alive.
    pub fn ping(&self) {
        if let Err(err) = sd_notify::notify(&[NotifyState::Watchdog]) {
            log::debug!("sd_notify: cannot send WATCHDOG=1: {err}");
        }
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if let Err(err) = sd_notify::notify(states) {
            let first = states.first().map(ToString::to_string).unwrap_or_default();
            log::warn!("sd_notify: cannot send {first}: {err}");
        }
    }
}

fn status_text(generation: u64, connections: usize) -> String {
    let plural = if connections == 1 { "" } else { "s" };
    format!("generation {generation}, {connections} connection{plural}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_generation_and_connections() {
        assert_eq!(status_text(1, 0), "generation 1, 0 connections");
        assert_eq!(status_text(7, 1), "generation 7, 1 connection");
        assert_eq!(status_text(12, 340), "generation 12, 340 connections");
    }

    #[test]
    fn the_watchdog_is_pinged_at_half_its_timeout() {
        let notifier = Notifier {
            watchdog: Some(Duration::from_secs(10)),
        };
        assert_eq!(notifier.watchdog_interval(), Some(Duration::from_secs(5)));
        let notifier = Notifier { watchdog: None };
        assert_eq!(notifier.watchdog_interval(), None);
    }
}
