//! Choosing a server of an upstream group, shared by every worker: weighted round-robin or
//! least connections, each server's requests in flight (for least connections and
//! `max_connections`), and passive health (a server that fails `max_fails` times within
//! `fail_timeout` is left out for `fail_timeout`).
//!
//! Lock-free: every worker reads and updates the same atomics, so they agree on which servers
//! are down and how loaded each is. Nothing here does I/O.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::report::{GroupCounters, ServerCounters};
use super::settings::{Balance, ServerSettings, UpstreamAddress, UpstreamSettings};

/// The longest round-robin schedule built: weights are scaled down past it, so a group of
/// many heavy servers keeps its proportions without a huge table.
const MAX_SCHEDULE: usize = 4096;

/// One server and what all workers know of it.
#[derive(Debug)]
pub(super) struct ServerState {
    pub(super) settings: ServerSettings,
    /// `Host: <address>\r\n`, for `proxy_host = "upstream"` (`localhost` for a Unix socket).
    pub(super) host_line: Box<str>,
    /// Its address as written in the access log (shared, so noting it allocates nothing).
    pub(super) label: Arc<str>,
    in_flight: AtomicUsize,
    /// Failures counted in the window that began at `window_start`.
    fails: AtomicU32,
    window_start: AtomicU64,
    /// Down until this time (nanoseconds after the group's `epoch`); 0: up.
    down_until: AtomicU64,
    /// What happened to the requests sent to it (carried over to the next configuration's
    /// group when it keeps this server, so the metrics count on across a reload).
    pub(super) counters: Arc<ServerCounters>,
}

/// Why no server could be chosen.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum NoServer {
    /// Every server not yet tried is at its `max_connections`.
    AllBusy,
    /// Every server has been tried for this request.
    AllTried,
}

/// The balancing state of one upstream group.
#[derive(Debug)]
pub(super) struct Balancer {
    servers: Vec<ServerState>,
    balance: Balance,
    /// Server indexes in smooth weighted round-robin order (nginx's interleaving: a server
    /// of weight 3 beside one of weight 1 goes a, a, b, a rather than a, a, a, b).
    schedule: Vec<u16>,
    cursor: AtomicUsize,
    max_fails: u32,
    fail_timeout: Duration,
    epoch: Instant,
    /// The group's own counters (carried over like the servers').
    pub(super) counters: Arc<GroupCounters>,
}

/// A request's claim on a server: counted in flight until dropped.
#[derive(Debug)]
pub(super) struct Claim {
    balancer: Arc<Balancer>,
    pub(super) server: usize,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.balancer.servers[self.server]
            .in_flight
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl Balancer {
    /// The balancing state of `settings`, every server up; the counters of `previous` (the
    /// same group in the configuration before) continue, for each server it still has.
    pub(super) fn new(settings: &UpstreamSettings, previous: Option<&Balancer>) -> Self {
        let counters_of = |address: &UpstreamAddress| {
            previous
                .and_then(|previous| {
                    previous
                        .servers
                        .iter()
                        .find(|server| server.settings.address == *address)
                })
                .map_or_else(Arc::default, |server| Arc::clone(&server.counters))
        };
        let servers = settings
            .servers
            .iter()
            .map(|server| ServerState {
                host_line: match &server.address {
                    UpstreamAddress::Tcp(addr) => format!("Host: {addr}\r\n").into(),
                    UpstreamAddress::Unix(_) => "Host: localhost\r\n".into(),
                },
                label: server.address.to_string().into(),
                settings: server.clone(),
                in_flight: AtomicUsize::new(0),
                fails: AtomicU32::new(0),
                window_start: AtomicU64::new(0),
                down_until: AtomicU64::new(0),
                counters: counters_of(&server.address),
            })
            .collect::<Vec<_>>();
        let weights: Vec<u32> = settings.servers.iter().map(|s| s.weight.max(1)).collect();
        Balancer {
            schedule: smooth_schedule(&weights),
            servers,
            balance: settings.balance,
            cursor: AtomicUsize::new(0),
            max_fails: settings.max_fails,
            fail_timeout: settings.fail_timeout,
            epoch: Instant::now(),
            counters: previous.map_or_else(Arc::default, |previous| Arc::clone(&previous.counters)),
        }
    }

    pub(super) fn server(&self, index: usize) -> &ServerState {
        &self.servers[index]
    }

    pub(super) fn len(&self) -> usize {
        self.servers.len()
    }

    /// Chooses a server not in `tried` (a bit per server index) and claims it. Servers
    /// marked down are skipped while any other can serve; when all are down they are tried
    /// anyway (as nginx does: a group that is entirely down recovers at the first success
    /// rather than answering 502 for the rest of `fail_timeout`).
    pub(super) fn pick(self: &Arc<Self>, tried: u64) -> Result<Claim, NoServer> {
        let now = self.nanos(Instant::now());
        let eligible = |index: usize, healthy_only: bool| {
            let server = &self.servers[index];
            tried & (1 << index.min(63)) == 0
                && (server.settings.max_connections == 0
                    || server.in_flight.load(Ordering::Relaxed) < server.settings.max_connections)
                && (!healthy_only || server.down_until.load(Ordering::Relaxed) <= now)
        };
        let choice = [true, false]
            .into_iter()
            .find_map(|healthy_only| match self.balance {
                Balance::RoundRobin => self.round_robin(|i| eligible(i, healthy_only)),
                Balance::LeastConnections => self.least_loaded(|i| eligible(i, healthy_only)),
            });
        let Some(server) = choice else {
            let untried = (0..self.servers.len()).any(|i| tried & (1 << i.min(63)) == 0);
            return Err(if untried {
                NoServer::AllBusy
            } else {
                NoServer::AllTried
            });
        };
        self.servers[server]
            .in_flight
            .fetch_add(1, Ordering::Relaxed);
        Ok(Claim {
            balancer: Arc::clone(self),
            server,
        })
    }

    fn round_robin(&self, eligible: impl Fn(usize) -> bool) -> Option<usize> {
        let start = self.cursor.fetch_add(1, Ordering::Relaxed);
        (0..self.schedule.len())
            .map(|step| usize::from(self.schedule[(start + step) % self.schedule.len()]))
            .find(|&index| eligible(index))
    }

    /// The eligible server with the fewest requests in flight per unit of weight; ties are
    /// broken in turn, so equal servers share the load.
    fn least_loaded(&self, eligible: impl Fn(usize) -> bool) -> Option<usize> {
        let n = self.servers.len();
        let start = self.cursor.fetch_add(1, Ordering::Relaxed);
        let load = |index: usize| {
            let server = &self.servers[index];
            (
                server.in_flight.load(Ordering::Relaxed) as u64,
                u64::from(server.settings.weight.max(1)),
            )
        };
        (0..n)
            .map(|step| (start + step) % n)
            .filter(|&index| eligible(index))
            .min_by(|&a, &b| {
                let ((flight_a, weight_a), (flight_b, weight_b)) = (load(a), load(b));
                (flight_a * weight_b).cmp(&(flight_b * weight_a))
            })
    }

    /// A request to `server` failed in a way that counts against it (no connection, no
    /// answer in time, a broken answer).
    pub(super) fn failed(&self, server: usize) {
        if self.max_fails == 0 {
            return;
        }
        let state = &self.servers[server];
        let now = self.nanos(Instant::now());
        let window = self.fail_timeout.as_nanos() as u64;
        let started = state.window_start.load(Ordering::Relaxed);
        if now.saturating_sub(started) > window {
            state.window_start.store(now, Ordering::Relaxed);
            state.fails.store(0, Ordering::Relaxed);
        }
        if state.fails.fetch_add(1, Ordering::Relaxed) + 1 >= self.max_fails {
            state.fails.store(0, Ordering::Relaxed);
            state.down_until.store(now + window, Ordering::Relaxed);
        }
    }

    /// A request to `server` got its answer: its failures are forgiven.
    pub(super) fn succeeded(&self, server: usize) {
        let state = &self.servers[server];
        if state.fails.load(Ordering::Relaxed) != 0 {
            state.fails.store(0, Ordering::Relaxed);
        }
        if state.down_until.load(Ordering::Relaxed) != 0 {
            state.down_until.store(0, Ordering::Relaxed);
        }
    }

    /// Whether `server` is marked down now.
    pub(super) fn is_down(&self, server: usize) -> bool {
        self.servers[server].down_until.load(Ordering::Relaxed) > self.nanos(Instant::now())
    }

    /// Requests in flight to `server`.
    pub(super) fn in_flight(&self, server: usize) -> usize {
        self.servers[server].in_flight.load(Ordering::Relaxed)
    }

    /// Nanoseconds since `epoch`, never 0 (0 means "up" in `down_until`).
    fn nanos(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_nanos() as u64 + 1
    }
}

/// The smooth weighted round-robin order of servers with `weights`: each step every server
/// gains its weight, the one with the most is chosen and pays back the total.
fn smooth_schedule(weights: &[u32]) -> Vec<u16> {
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    let scale = total.div_ceil(MAX_SCHEDULE as u64).max(1);
    let weights: Vec<i64> = weights
        .iter()
        .map(|&w| (u64::from(w) / scale).max(1) as i64)
        .collect();
    let total: i64 = weights.iter().sum();
    let mut current = vec![0i64; weights.len()];
    (0..total)
        .map(|_| {
            for (current, weight) in current.iter_mut().zip(&weights) {
                *current += weight;
            }
            let (best, _) = current
                .iter()
                .enumerate()
                .max_by_key(|&(index, &value)| (value, std::cmp::Reverse(index)))
                .unwrap_or((0, &0));
            current[best] -= total;
            best as u16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::settings::NextUpstream;
    use super::*;

    fn group(weights: &[u32], balance: Balance, max_fails: u32) -> Arc<Balancer> {
        let servers = weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| ServerSettings {
                address: UpstreamAddress::Tcp(([127, 0, 0, 1], 9000 + i as u16).into()),
                weight,
                max_connections: 0,
            })
            .collect();
        Arc::new(Balancer::new(
            &UpstreamSettings {
                name: "t".into(),
                servers,
                balance,
                connect_timeout: Duration::from_secs(1),
                read_timeout: Duration::from_secs(1),
                write_timeout: Duration::from_secs(1),
                idle_timeout: Duration::from_secs(1),
                max_idle: 1,
                max_fails,
                fail_timeout: Duration::from_secs(60),
                next_upstream: NextUpstream::default(),
                next_upstream_tries: 0,
                via: None,
            },
            None,
        ))
    }

    #[test]
    fn a_reloaded_group_keeps_the_counters_of_the_servers_it_keeps() {
        let before = group(&[1, 1], Balance::RoundRobin, 1);
        before.server(0).counters.reused();
        before.server(1).counters.reused();
        before.counters.retries.fetch_add(3, Ordering::Relaxed);
        before.failed(0);
        assert!(before.is_down(0));
        // The next configuration keeps server 0 (port 9000), drops 9001, adds 9002.
        let mut settings = UpstreamSettings {
            servers: Vec::new(),
            ..before_settings()
        };
        for port in [9002, 9000] {
            settings.servers.push(ServerSettings {
                address: UpstreamAddress::Tcp(([127, 0, 0, 1], port).into()),
                weight: 1,
                max_connections: 0,
            });
        }
        let after = Balancer::new(&settings, Some(&before));
        let reused = |b: &Balancer, i: usize| b.server(i).counters.report().1;
        assert_eq!((reused(&after, 0), reused(&after, 1)), (0, 1));
        assert_eq!(after.counters.retries.load(Ordering::Relaxed), 3);
        // Health starts afresh.
        assert!(!after.is_down(1));
    }

    fn before_settings() -> UpstreamSettings {
        UpstreamSettings {
            name: "t".into(),
            servers: Vec::new(),
            balance: Balance::RoundRobin,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            write_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            max_idle: 1,
            max_fails: 1,
            fail_timeout: Duration::from_secs(60),
            next_upstream: NextUpstream::default(),
            next_upstream_tries: 0,
            via: None,
        }
    }

    #[test]
    fn smooth_round_robin_interleaves_by_weight() {
        assert_eq!(smooth_schedule(&[5, 1, 1]), [0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(smooth_schedule(&[1, 1]), [0, 1]);
        assert_eq!(smooth_schedule(&[3, 1]), [0, 0, 1, 0]);
        // Scaled down, proportions kept.
        let long = smooth_schedule(&[1000; 10]);
        assert!(long.len() <= MAX_SCHEDULE);
        assert_eq!(long.iter().filter(|&&s| s == 0).count(), long.len() / 10);
    }

    #[test]
    fn round_robin_follows_weights_and_skips_tried_servers() {
        let group = group(&[2, 1], Balance::RoundRobin, 0);
        let picks: Vec<usize> = (0..6).map(|_| group.pick(0).unwrap().server).collect();
        assert_eq!(picks.iter().filter(|&&s| s == 0).count(), 4);
        assert_eq!(group.pick(0b01).unwrap().server, 1);
        assert_eq!(group.pick(0b11).unwrap_err(), NoServer::AllTried);
    }

    #[test]
    fn least_connections_prefers_the_least_loaded_per_weight() {
        let group = group(&[1, 1, 2], Balance::LeastConnections, 0);
        let a = group.pick(0).unwrap();
        let b = group.pick(0).unwrap();
        let c = group.pick(0).unwrap();
        let mut servers = [a.server, b.server, c.server];
        servers.sort_unstable();
        // The weight-2 server takes a second request before the others take their second.
        let d = group.pick(0).unwrap();
        assert_eq!(servers, [0, 1, 2]);
        assert_eq!(d.server, 2);
        drop((a, b, c, d));
        assert_eq!((0..3).map(|i| group.in_flight(i)).sum::<usize>(), 0);
    }

    #[test]
    fn max_connections_counts_requests_in_flight() {
        let group = Arc::new({
            let mut balancer = Arc::try_unwrap(group(&[1], Balance::RoundRobin, 0)).unwrap();
            balancer.servers[0].settings.max_connections = 1;
            balancer
        });
        let held = group.pick(0).unwrap();
        assert_eq!(group.pick(0).unwrap_err(), NoServer::AllBusy);
        drop(held);
        assert!(group.pick(0).is_ok());
    }

    #[test]
    fn a_failing_server_is_left_out_until_it_succeeds_or_all_are_down() {
        let group = group(&[1, 1], Balance::RoundRobin, 2);
        group.failed(0);
        assert!(!group.is_down(0));
        group.failed(0);
        assert!(group.is_down(0));
        assert!((0..4).all(|_| group.pick(0).unwrap().server == 1));
        // Everything down: tried anyway rather than refusing.
        group.failed(1);
        group.failed(1);
        assert!(group.pick(0).is_ok());
        group.succeeded(0);
        assert!(!group.is_down(0));
    }
}
