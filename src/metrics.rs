//! `/metrics`: the daemon's counters in the Prometheus exposition format
//! (OpenMetrics text, which Prometheus reads natively).
//!
//! Nothing is kept here: every scrape asks the router task for a
//! [`MetricsView`] (the peers', RIB's and FIB's own counters, read from
//! their owners) and adds what the process knows about itself, then
//! renders it all into a fresh registry. One owner per counter; no second
//! copy to drift.
//!
//! Metric names (all prefixed `kroute_`) are the contract with dashboards
//! (`deploy/grafana/kroute.json`) and are listed in the README.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use tokio::sync::oneshot;

use crate::api::views::MetricsView;
use crate::events::{ApiCall, ApiSender, Request, Response, SessionState};
use crate::http::Reply;

/// The content type of what [`render`] writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How long a scrape waits for the router task (busy with a full table)
/// before it answers 503; Prometheus' own default scrape timeout is 10 s.
const ROUTER_TIMEOUT: Duration = Duration::from_secs(8);

/// What the process knows about itself, outside the router task.
#[derive(Debug, Clone, Copy)]
pub struct Process {
    pub started: SystemTime,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabel {
    peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FamilyLabel {
    family: String,
    /// The routing domain: `default` or `domains[].name`.
    domain: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RangeLabel {
    range: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrnoLabel {
    errno: String,
}

/// RFC 4273 (BGP4-MIB) `bgpPeerState` numbering: idle(1) … established(6).
fn state_number(s: SessionState) -> i64 {
    match s {
        SessionState::Idle => 1,
        SessionState::Connect => 2,
        SessionState::Active => 3,
        SessionState::OpenSent => 4,
        SessionState::OpenConfirm => 5,
        SessionState::Established => 6,
    }
}

/// Registers one per-peer (or per-family, …) metric and fills it from
/// `rows`.
fn family_of<L, M, T>(
    reg: &mut Registry,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (L, T)>,
    set: impl Fn(&M, T),
) where
    L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug + Send + Sync + 'static,
    M: prometheus_client::metrics::TypedMetric
        + prometheus_client::encoding::EncodeMetric
        + Default
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let f = Family::<L, M>::default();
    for (label, v) in rows {
        set(&f.get_or_create(&label), v);
    }
    reg.register(name, help, f);
}

fn gauge(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn set_gauge(g: &Gauge, v: u64) {
    g.set(gauge(v));
}

fn set_counter(c: &Counter, v: u64) {
    c.inc_by(v);
}

/// The exposition text for `view` and `process`, `rss_bytes` read by the
/// caller (None: unknown, left out).
pub fn render(view: &MetricsView, process: Process, rss_bytes: Option<u64>) -> String {
    let mut reg = Registry::with_prefix("kroute");
    let peer = |name: &str| PeerLabel {
        peer: name.to_string(),
    };
    let peers = &view.peers;
    let per_peer = |f: fn(&crate::api::views::PeerMetricsView) -> u64| {
        peers.iter().map(move |p| (peer(&p.name), f(p)))
    };

    family_of(
        &mut reg,
        "bgp_session_state",
        "BGP session state (RFC 4273 bgpPeerState: 1 idle, 2 connect, 3 active, 4 opensent, 5 openconfirm, 6 established)",
        peers.iter().map(|p| (peer(&p.name), state_number(p.state))),
        |g: &Gauge, v| {
            g.set(v);
        },
    );
    family_of(
        &mut reg,
        "bgp_session_established",
        "1 while the BGP session is Established, else 0",
        per_peer(|p| u64::from(p.state == SessionState::Established)),
        set_gauge,
    );
    family_of(
        &mut reg,
        "bgp_session_uptime_seconds",
        "Seconds since the session became Established (0 while it is not)",
        per_peer(|p| p.uptime_seconds),
        set_gauge,
    );
    family_of(
        &mut reg,
        "bgp_session_flaps",
        "Times the session left Established",
        per_peer(|p| u64::from(p.flaps)),
        set_counter,
    );
    for (name, help, f) in [
        (
            "bgp_prefixes_received",
            "Paths in the peer's Adj-RIB-In",
            (|p| p.prefixes_received as u64) as fn(&crate::api::views::PeerMetricsView) -> u64,
        ),
        (
            "bgp_prefixes_accepted",
            "Paths from the peer accepted by import",
            |p| p.prefixes_accepted as u64,
        ),
        (
            "bgp_prefixes_rejected",
            "Paths from the peer refused by import policy or checks",
            |p| p.prefixes_rejected as u64,
        ),
        (
            "bgp_prefixes_advertised",
            "Prefixes in the peer's Adj-RIB-Out",
            |p| p.prefixes_advertised as u64,
        ),
    ] {
        family_of(&mut reg, name, help, per_peer(f), set_gauge);
    }
    for (name, help, f) in [
        (
            "bgp_messages_received",
            "BGP messages received from the peer",
            (|p| p.messages_in) as fn(&crate::api::views::PeerMetricsView) -> u64,
        ),
        ("bgp_messages_sent", "BGP messages sent to the peer", |p| {
            p.messages_out
        }),
        (
            "bgp_notifications_received",
            "NOTIFICATION messages received from the peer",
            |p| p.notifications_in,
        ),
        (
            "bgp_notifications_sent",
            "NOTIFICATION messages sent to the peer",
            |p| p.notifications_out,
        ),
        (
            "bgp_updates_treated_as_withdraw",
            "UPDATEs from the peer whose routes were treated as withdrawn (RFC 7606)",
            |p| p.updates_treated_as_withdraw,
        ),
    ] {
        family_of(&mut reg, name, help, per_peer(f), set_counter);
    }

    let fam = |f: &crate::api::views::FamilyMetricsView| FamilyLabel {
        family: f.family.to_string(),
        domain: f.domain.clone(),
    };
    for (name, help, f) in [
        (
            "rib_prefixes",
            "Prefixes with a best path in the Loc-RIB",
            (|f| f.prefixes as u64) as fn(&crate::api::views::FamilyMetricsView) -> u64,
        ),
        (
            "fib_routes_installed",
            "Kernel routes confirmed by the kernel",
            |f| f.fib_installed as u64,
        ),
        (
            "fib_routes_pending",
            "Kernel routes handed to the FIB and not confirmed yet",
            |f| f.fib_pending as u64,
        ),
        (
            "fib_routes_failed",
            "Kernel routes the kernel refused (retried with backoff)",
            |f| f.fib_failed as u64,
        ),
    ] {
        family_of(
            &mut reg,
            name,
            help,
            view.families.iter().map(|x| (fam(x), f(x))),
            set_gauge,
        );
    }

    let range = |r: &crate::api::views::RangeMetricsView| RangeLabel {
        range: r.range.to_string(),
    };
    family_of(
        &mut reg,
        "bgp_dynamic_peers",
        "Dynamic neighbors from the listen range now",
        view.ranges.iter().map(|r| (range(r), r.peers as u64)),
        set_gauge,
    );
    family_of(
        &mut reg,
        "bgp_dynamic_peers_limit",
        "The listen range's limit of dynamic neighbors",
        view.ranges.iter().map(|r| (range(r), u64::from(r.limit))),
        set_gauge,
    );
    family_of(
        &mut reg,
        "bgp_dynamic_refused",
        "Connections into the listen range refused because it was at its limit",
        view.ranges.iter().map(|r| (range(r), r.refused)),
        set_counter,
    );

    let decisions = Counter::<u64>::default();
    decisions.inc_by(view.decision_runs);
    reg.register(
        "rib_decision_runs",
        "Times the decision process ran for a prefix",
        decisions,
    );
    let writes = Counter::<u64>::default();
    writes.inc_by(view.fib.netlink_messages);
    reg.register(
        "fib_netlink_messages",
        "Netlink messages (route and nexthop object changes) sent to the kernel",
        writes,
    );
    let batches = Counter::<u64>::default();
    batches.inc_by(view.fib.netlink_batches);
    reg.register(
        "fib_netlink_batches",
        "Batches of netlink messages sent (one sendmsg each)",
        batches,
    );
    let resyncs = Counter::<u64>::default();
    resyncs.inc_by(view.fib.resyncs);
    reg.register(
        "fib_resyncs",
        "Full resynchronisations with the kernel (after lost netlink notifications)",
        resyncs,
    );
    family_of(
        &mut reg,
        "fib_netlink_errors",
        "Netlink messages the kernel refused, by errno",
        view.fib.errors.iter().map(|(e, n)| {
            (
                ErrnoLabel {
                    errno: e.to_string(),
                },
                *n,
            )
        }),
        set_counter,
    );

    if let Some(rss) = rss_bytes {
        let g = Gauge::<i64>::default();
        g.set(gauge(rss));
        reg.register("process_resident_memory_bytes", "Resident set size", g);
    }
    let start = Gauge::<i64>::default();
    start.set(gauge(
        process
            .started
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    ));
    reg.register(
        "process_start_time_seconds",
        "When the daemon started, in seconds since the Unix epoch",
        start,
    );
    reg.register(
        "build",
        "The running build",
        Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
    );

    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut out, &reg);
    out
}

/// This process' resident set size, from `/proc/self/statm` (its second
/// field, in pages).
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// One scrape: ask the router task, render.
pub async fn scrape(router: ApiSender, process: Process) -> Reply {
    let unavailable = |why: String| Reply {
        status: hyper::StatusCode::SERVICE_UNAVAILABLE,
        body: format!("metrics unavailable: {why}\n"),
        content_type: crate::http::TEXT,
    };
    let (tx, rx) = oneshot::channel();
    let asked = router.send(ApiCall {
        request: Request::Metrics,
        reply: tx,
    });
    let answer = match tokio::time::timeout(ROUTER_TIMEOUT, async {
        asked
            .await
            .map_err(|_| "the router task is gone".to_string())?;
        rx.await.map_err(|_| "the router task is gone".to_string())
    })
    .await
    {
        Err(_) => {
            return unavailable(format!(
                "the router task did not answer in {ROUTER_TIMEOUT:?}"
            ))
        }
        Ok(Err(e)) => return unavailable(e),
        Ok(Ok(a)) => a,
    };
    let view: MetricsView = match answer {
        Response::Ok(v) => match serde_json::from_value(v) {
            Ok(v) => v,
            Err(e) => return unavailable(e.to_string()),
        },
        Response::Error(e) => return unavailable(e),
    };
    Reply {
        status: hyper::StatusCode::OK,
        body: render(&view, process, rss_bytes()),
        content_type: CONTENT_TYPE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::views::{FamilyMetricsView, FibMetricsView, PeerMetricsView};

    fn view() -> MetricsView {
        MetricsView {
            peers: vec![PeerMetricsView {
                name: "tor1".into(),
                state: SessionState::Established,
                uptime_seconds: 42,
                flaps: 1,
                prefixes_received: 10,
                prefixes_accepted: 7,
                prefixes_advertised: 3,
                prefixes_rejected: 3,
                messages_in: 20,
                messages_out: 15,
                notifications_in: 1,
                notifications_out: 0,
                updates_treated_as_withdraw: 2,
            }],
            families: vec![
                FamilyMetricsView {
                    domain: "default".into(),
                    family: wire::Family::Ipv4Unicast,
                    prefixes: 7,
                    fib_installed: 6,
                    fib_pending: 0,
                    fib_failed: 1,
                },
                FamilyMetricsView {
                    domain: "internet".into(),
                    family: wire::Family::Ipv4Unicast,
                    prefixes: 12,
                    fib_installed: 11,
                    fib_pending: 1,
                    fib_failed: 0,
                },
            ],
            decision_runs: 99,
            fib: FibMetricsView {
                netlink_messages: 8,
                netlink_batches: 2,
                resyncs: 0,
                errors: vec![("EINVAL".into(), 1)],
            },
            ranges: vec![crate::api::views::RangeMetricsView {
                range: "10.0.0.0/16".parse().unwrap(),
                peers: 2,
                limit: 100,
                refused: 5,
            }],
        }
    }

    #[test]
    fn every_value_is_rendered_under_its_name_and_labels() {
        let text = render(
            &view(),
            Process {
                started: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            },
            Some(4096),
        );
        for line in [
            "kroute_bgp_session_state{peer=\"tor1\"} 6",
            "kroute_bgp_session_established{peer=\"tor1\"} 1",
            "kroute_bgp_session_uptime_seconds{peer=\"tor1\"} 42",
            "kroute_bgp_session_flaps_total{peer=\"tor1\"} 1",
            "kroute_bgp_prefixes_received{peer=\"tor1\"} 10",
            "kroute_bgp_prefixes_rejected{peer=\"tor1\"} 3",
            "kroute_bgp_messages_received_total{peer=\"tor1\"} 20",
            "kroute_bgp_notifications_received_total{peer=\"tor1\"} 1",
            "kroute_bgp_updates_treated_as_withdraw_total{peer=\"tor1\"} 2",
            "kroute_rib_prefixes{family=\"ipv4-unicast\",domain=\"default\"} 7",
            "kroute_fib_routes_failed{family=\"ipv4-unicast\",domain=\"default\"} 1",
            "kroute_rib_prefixes{family=\"ipv4-unicast\",domain=\"internet\"} 12",
            "kroute_fib_routes_pending{family=\"ipv4-unicast\",domain=\"internet\"} 1",
            "kroute_rib_decision_runs_total 99",
            "kroute_bgp_dynamic_peers{range=\"10.0.0.0/16\"} 2",
            "kroute_bgp_dynamic_refused_total{range=\"10.0.0.0/16\"} 5",
            "kroute_fib_netlink_messages_total 8",
            "kroute_fib_netlink_errors_total{errno=\"EINVAL\"} 1",
            "kroute_process_resident_memory_bytes 4096",
            "kroute_process_start_time_seconds 1700000000",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert!(text.contains("kroute_build_info{version=\""), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn rss_is_read_from_proc() {
        assert!(rss_bytes().is_some_and(|b| b > 1 << 20));
    }
}
