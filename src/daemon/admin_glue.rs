//! The daemon's side of the admin port: starting its server (one worker on its own thread and
//! poll loop), and keeping its view of the daemon current (readiness, the running
//! configuration, reload counts). Reload requests from `POST /reload` arrive at the control
//! thread as `Event::AdminReload`, so they are handled one at a time with SIGHUP's.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::control::Event;
use crate::admin::{Admin, AdminState, Readiness, ReloadOutcome, Running};
use crate::config::{self, Config};
use crate::handlers::proxy::Upstream;
use crate::server::{self, Limits, ServerConfig, ServerHandle, StatsHandle};

/// Connections the admin port holds at once.
const MAX_CONNECTIONS: usize = 64;
/// The largest request body it takes (it takes none).
const MAX_BODY_BYTES: u64 = 64 * 1024;

/// The admin port of a running daemon (absent when disabled or its default address is taken).
pub(super) struct AdminPort {
    state: Arc<AdminState>,
    server: Option<ServerHandle<Admin>>,
    /// The Unix socket it listens on too, if any.
    unix_socket: Option<PathBuf>,
}

impl AdminPort {
    /// Starts the admin server for `config` when it is enabled. The error text when an address
    /// written in the file cannot be bound; a default address that is taken is a warning.
    pub(super) fn start(
        config: &Config,
        config_path: Option<&Path>,
        stats: StatsHandle,
        events: Sender<Event>,
    ) -> Result<AdminPort, String> {
        let running = running(config, config_path, 1);
        let metrics = config.admin.metrics;
        let events = std::sync::Mutex::new(events);
        let state = Arc::new(AdminState::new(stats, running, metrics, move |request| {
            let events = events
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            // If the control thread is gone the request is dropped, which answers 503.
            let _ = events.send(Event::AdminReload(request));
        }));
        let admin = &config.admin;
        if !admin.enabled {
            return Ok(AdminPort {
                state,
                server: None,
                unix_socket: None,
            });
        }
        let mut server_config = ServerConfig {
            name: "admin".into(),
            listen: vec![admin.listen],
            // A few scrapes a minute: nothing to save, and a plain TCP probe of the port
            // should reach the server at once.
            defer_accept: false,
            unix_listen: admin.unix_socket.iter().cloned().collect(),
            workers: 1,
            limits: Limits {
                max_connections: MAX_CONNECTIONS,
                max_body_bytes: MAX_BODY_BYTES,
                // A timed profile keeps its exchange waiting for up to the largest cap a
                // reload may set, plus the time to encode it; the body timeout times that
                // wait, so it is set for the largest cap, not the current one.
                timeouts: server::Timeouts {
                    body: crate::admin::profile::exchange_timeout(
                        config::PROFILE_MAX_SECONDS_LIMIT,
                    ),
                    ..server::Timeouts::default()
                },
                ..Limits::default()
            },
            access_log: None,
            metrics: false,
        };
        let handler = Arc::new(Admin::new(Arc::clone(&state), admin.listen.ip()));
        let started = match server::start(server_config.clone(), Arc::clone(&handler)) {
            Err(err) if !admin.listen_given && admin.unix_socket.is_some() => {
                // The default address is taken (or the socket is): the socket alone, then.
                server_config.listen.clear();
                let started = server::start(server_config, handler);
                if started.is_ok() {
                    log::warn!(
                        "admin port on the Unix socket only: cannot listen on the default {} \
                         ({err})",
                        admin.listen
                    );
                }
                started
            }
            started => started,
        };
        let place = match &admin.unix_socket {
            Some(path) => format!("{} and {}", admin.listen, path.display()),
            None => admin.listen.to_string(),
        };
        match started {
            Ok(server) => Ok(AdminPort {
                state,
                server: Some(server),
                unix_socket: admin.unix_socket.clone(),
            }),
            Err(err) if !admin.listen_given && admin.unix_socket.is_none() => {
                log::warn!(
                    "admin port off: cannot listen on the default {} ({err}); set [admin] \
                     listen to another address",
                    admin.listen
                );
                Ok(AdminPort {
                    state,
                    server: None,
                    unix_socket: None,
                })
            }
            Err(err) => Err(format!("cannot start the admin port on {place}: {err}")),
        }
    }

    /// The address the admin port listens on, if it runs.
    pub(super) fn local_addr(&self) -> Option<SocketAddr> {
        self.server
            .as_ref()
            .and_then(|server| server.local_addrs().first().copied())
    }

    /// The Unix socket the admin port listens on, if it runs with one.
    pub(super) fn unix_socket(&self) -> Option<&Path> {
        self.unix_socket.as_deref()
    }

    /// `/readyz` answers 200 from now on.
    pub(super) fn ready(&self) {
        self.state.set_readiness(Readiness::Ready);
    }

    /// `/readyz` answers 503 from now on.
    pub(super) fn draining(&self) {
        self.state.set_readiness(Readiness::Draining);
    }

    /// `upstreams` (the groups of the route table now serving) are what `/metrics` and
    /// `/debug/connections` report.
    pub(super) fn serving(&self, upstreams: Vec<Arc<Upstream>>) {
        self.state.set_upstreams(upstreams);
    }

    /// A reload ended: `outcome` of it, with `config` (of `generation`) now running.
    pub(super) fn reload_done(
        &self,
        outcome: &Result<(u64, Vec<String>), Vec<String>>,
        config: &Config,
        config_path: Option<&Path>,
    ) {
        match outcome {
            Ok((generation, _)) => self
                .state
                .reloaded(running(config, config_path, *generation)),
            Err(_) => self.state.reload_failed(),
        }
    }

    /// Stops the admin server (its connections are closed).
    pub(super) fn stop(self) {
        if let Some(server) = self.server {
            server.shutdown();
        }
    }
}

/// The answer to an admin reload request, from the reload's result.
pub(super) fn outcome(
    result: Result<(u64, Vec<String>), Vec<String>>,
    generation: u64,
) -> ReloadOutcome {
    match result {
        Ok((generation, warnings)) => ReloadOutcome::Applied {
            generation,
            warnings,
        },
        Err(errors) => ReloadOutcome::Rejected { generation, errors },
    }
}

/// The running view of `config`. The file is hashed as it is now: a file changed between the
/// load and this read (milliseconds) would show the newer digest.
fn running(config: &Config, config_path: Option<&Path>, generation: u64) -> Running {
    let (source, sha256) = match config_path {
        Some(path) => (
            path.display().to_string(),
            std::fs::read(path)
                .ok()
                .map(|bytes| hex(&Sha256::digest(bytes))),
        ),
        None => (
            config::EMBEDDED_NAME.to_owned(),
            Some(hex(&Sha256::digest(config::EMBEDDED_DEFAULT.as_bytes()))),
        ),
    };
    Running {
        config: config.clone(),
        generation,
        loaded_at: SystemTime::now(),
        source,
        sha256,
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}
