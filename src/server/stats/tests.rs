//! The worker counters and their fold across workers.

use super::*;

#[test]
fn counters_fold_across_workers() {
    let mut one = WorkerStats::new();
    let route = one.route("site");
    for status in [200, 200, 404] {
        one.finished(&Finished {
            route,
            method: MethodLabel::Get,
            status,
            request_body_bytes: 0,
            response_body_bytes: 10,
        });
        one.observe_duration(route, Duration::from_micros(300));
    }
    one.accepted();
    one.closed(CloseReason::Peer, 3);
    one.parse_error("bad_header");
    let mut two = WorkerStats::new();
    let route = two.route("site");
    two.finished(&Finished {
        route,
        method: MethodLabel::of("PROPFIND"),
        status: 200,
        request_body_bytes: 5,
        response_body_bytes: 0,
    });
    two.observe_duration(route, Duration::from_secs(20));
    two.parse_error("bad_header");
    let mut all = ServerStats::empty();
    all.merge(one.snapshot(0));
    all.merge(two.snapshot(2));
    assert_eq!(all.connections_accepted, 1);
    assert_eq!(all.connections_open, 2);
    let site = &all.routes[0];
    assert_eq!(site.route, "site");
    let mut requests = site.requests.clone();
    requests.sort_by_key(|(m, s, _)| (m.as_str(), *s));
    assert_eq!(
        requests,
        vec![
            (MethodLabel::Get, 200, 2),
            (MethodLabel::Get, 404, 1),
            (MethodLabel::Other, 200, 1)
        ]
    );
    assert_eq!(site.duration.count, 4);
    // 300 us falls in the 0.0005 bucket; 20 s above every bound.
    assert_eq!(site.duration.counts[2], 3);
    assert_eq!(site.duration.counts[DURATION_BUCKETS.len()], 1);
    assert_eq!((site.request_body_bytes, site.response_body_bytes), (5, 30));
    assert_eq!(all.parse_errors, vec![("bad_header", 2)]);
    assert_eq!(all.connections_closed[0], (CloseReason::Peer, 1));
    assert_eq!(all.requests_per_connection.count, 1);
}
