//! `/metrics` under a running daemon with a BIRD peer: scraped with `curl`
//! in kroute's namespace before the peer exists, after the session is up
//! and its routes are in the kernel, and after the peer withdrew one and
//! closed the session; the exposition text is parsed and the values
//! checked against what the kernel and BIRD show. The Grafana dashboard's
//! every metric must exist in such a real scrape. A route the kernel
//! refuses is counted as failed and by its errno, then as installed.
//! Needs root and `bird2` (see `common/mod.rs`).

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::bird::{proto_name, Bird};
use common::kroute::{self as k, Kroute};
use common::peer::{PeerDaemon, PeerNeighbor, PeerSpec};
use common::scenarios::{ADV4, KROUTE_ASN, PEER_ASN, V4};
use common::{netns, veth, wait_until, CONVERGE};
use kroute::config::HttpListen;
use labkit::Netns;

const K4: &str = "10.1.0.1";
const B4: &str = "10.1.0.2";
const PORT: u16 = 9180;
const R1: &str = "10.120.1.0/24";
const R2: &str = "10.120.2.0/24";

/// One scrape: series (name with its labels, as written) → value.
#[derive(Debug)]
struct Scrape {
    series: BTreeMap<String, f64>,
    /// Metric names from the `# TYPE` lines, as PromQL names them
    /// (counters `name_total`, info `name_info`): declared even when they
    /// have no series yet (no netlink error so far).
    names: Vec<String>,
}

impl Scrape {
    /// Parses the text format: `# TYPE name kind` and `series value`.
    fn parse(text: &str) -> Scrape {
        let mut series = BTreeMap::new();
        let mut names = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
                names.push(match kind {
                    "counter" => format!("{name}_total"),
                    "info" => format!("{name}_info"),
                    _ => name.to_string(),
                });
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (name, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("not a sample: {line:?}"));
            let value: f64 = value
                .parse()
                .unwrap_or_else(|e| panic!("{line:?}: value: {e}"));
            assert!(
                series.insert(name.to_string(), value).is_none(),
                "series twice: {line}"
            );
        }
        Scrape { series, names }
    }

    /// The value of `series`, e.g. `kroute_bgp_session_state{peer="bird"}`.
    fn get(&self, series: &str) -> f64 {
        *self
            .series
            .get(series)
            .unwrap_or_else(|| panic!("{series} missing from {:#?}", self.series))
    }

    fn peer(&self, metric: &str) -> f64 {
        self.get(&format!("{metric}{{peer=\"bird\"}}"))
    }

    fn v4(&self, metric: &str) -> f64 {
        self.get(&format!(
            "{metric}{{family=\"ipv4-unicast\",domain=\"default\"}}"
        ))
    }

    /// Whether metric `name` (as PromQL names it) is declared.
    fn has_metric(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }
}

fn scrape(ns: &Netns) -> Scrape {
    try_scrape(ns).unwrap_or_else(|e| panic!("{e}"))
}

fn try_scrape(ns: &Netns) -> Result<Scrape, String> {
    let out = ns
        .output(&[
            "curl",
            "-sS",
            "--max-time",
            "10",
            "-D",
            "/dev/stderr",
            &format!("http://{K4}:{PORT}/metrics"),
        ])
        .unwrap_or_else(|e| panic!("curl: {e}"));
    let headers = String::from_utf8_lossy(&out.stderr).to_lowercase();
    if !headers.starts_with("http/1.1 200") {
        return Err(format!("/metrics: {headers}"));
    }
    assert!(
        headers.contains("content-type: application/openmetrics-text"),
        "{headers}"
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.ends_with("# EOF\n"), "{text}");
    Ok(Scrape::parse(&text))
}

fn kernel_routes(ns: &Netns) -> String {
    let out = ns
        .output(&["ip", "-4", "route", "show", "proto", "bgp"])
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn metrics_follow_the_session_and_its_routes() {
    let k_ns = netns("kmet");
    let b_ns = netns("bmet");
    let _v = veth(&k_ns, &b_ns, &[&format!("{K4}/24")], &[&format!("{B4}/24")]);
    let mut cfg = k::config(KROUTE_ASN, "10.255.0.1");
    cfg.peers.push(k::peer("bird", B4, PEER_ASN, &[V4]));
    cfg.advertise = k::advertise(&[ADV4]);
    cfg.api.http = Some(HttpListen {
        address: K4.parse::<IpAddr>().unwrap(),
        port: PORT,
    });
    let kroute = Kroute::start(&k_ns, cfg);

    // No peer yet: the session is down, nothing counted.
    let before = wait_until(CONVERGE, "/metrics answers", || {
        try_scrape(&k_ns).map_err(|e| format!("{e}\n{}", kroute.log_tails(5)))
    });
    assert!(before.peer("kroute_bgp_session_state") < 4.0);
    assert_eq!(before.peer("kroute_bgp_session_established"), 0.0);
    assert_eq!(before.peer("kroute_bgp_session_uptime_seconds"), 0.0);
    assert_eq!(before.peer("kroute_bgp_prefixes_received"), 0.0);
    assert_eq!(before.peer("kroute_bgp_messages_received_total"), 0.0);
    assert_eq!(
        before.v4("kroute_rib_prefixes"),
        1.0,
        "the advertised {ADV4}"
    );
    assert_eq!(before.v4("kroute_fib_routes_installed"), 0.0);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let started = before.get("kroute_process_start_time_seconds");
    assert!(
        started <= now.as_secs_f64() && started > (now - Duration::from_secs(600)).as_secs_f64(),
        "start time {started}"
    );
    assert!(before.get("kroute_process_resident_memory_bytes") > 1e6);
    assert_eq!(
        before.get(&format!(
            "kroute_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );

    // The peer comes with two routes: they reach the RIB and the kernel.
    let mut bird = Bird::start(
        &b_ns,
        PeerSpec {
            asn: PEER_ASN,
            router_id: B4.into(),
            neighbors: vec![PeerNeighbor::new(K4, B4, KROUTE_ASN, &[V4])],
            install_kernel: false,
        },
    );
    bird.announce(R1);
    bird.announce(R2);
    let up = wait_until(CONVERGE, "both routes installed per /metrics", || {
        let s = scrape(&k_ns);
        (s.v4("kroute_fib_routes_installed") == 2.0
            && s.peer("kroute_bgp_prefixes_advertised") == 1.0)
            .then_some(s)
            .ok_or_else(|| format!("{}\n{}", kernel_routes(&k_ns), kroute.log_tails(5)))
    });
    let routes = kernel_routes(&k_ns);
    assert!(routes.contains(R1) && routes.contains(R2), "{routes}");
    assert_eq!(up.peer("kroute_bgp_session_state"), 6.0);
    assert_eq!(up.peer("kroute_bgp_session_established"), 1.0);
    assert_eq!(up.peer("kroute_bgp_prefixes_received"), 2.0);
    assert_eq!(up.peer("kroute_bgp_prefixes_accepted"), 2.0);
    assert_eq!(up.peer("kroute_bgp_prefixes_rejected"), 0.0);
    assert_eq!(up.v4("kroute_rib_prefixes"), 3.0);
    assert_eq!(up.v4("kroute_fib_routes_pending"), 0.0);
    assert_eq!(up.v4("kroute_fib_routes_failed"), 0.0);
    // OPEN, KEEPALIVE and UPDATEs each way (BIRD's End-of-RIB may come
    // with its routes).
    assert!(
        up.peer("kroute_bgp_messages_received_total") >= 3.0,
        "{up:?}"
    );
    assert!(up.peer("kroute_bgp_messages_sent_total") >= 4.0, "{up:?}");
    assert_eq!(up.peer("kroute_bgp_notifications_received_total"), 0.0);
    assert!(up.get("kroute_fib_netlink_messages_total") >= 2.0);
    assert!(up.get("kroute_rib_decision_runs_total") >= 3.0);
    assert_eq!(up.peer("kroute_bgp_session_flaps_total"), 0.0);

    // The dashboard plots only what a real scrape has.
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/grafana/kroute.json"
    ))
    .unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 10, "{exprs:?}");
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "no kroute metric in {expr}");
        for name in names {
            // Its series are per errno: there are none until the kernel
            // refuses a message (`a_refused_route_is_counted_…` makes one).
            if name == "kroute_fib_netlink_errors_total" {
                continue;
            }
            assert!(
                up.has_metric(&name),
                "dashboard expression {expr:?}: {name} is not in a scrape"
            );
        }
    }
    for name in &up.names {
        assert!(
            exprs.iter().any(|e| metric_names(e).contains(name)),
            "{name} is scraped but not on the dashboard"
        );
    }

    // One route withdrawn, then BIRD closes the session (NOTIFICATION Cease).
    bird.withdraw(R2);
    wait_until(CONVERGE, "the withdrawal counted", || {
        let s = scrape(&k_ns);
        (s.peer("kroute_bgp_prefixes_received") == 1.0
            && s.v4("kroute_fib_routes_installed") == 1.0)
            .then_some(())
            .ok_or_else(|| kernel_routes(&k_ns))
    });
    assert!(!kernel_routes(&k_ns).contains(R2));
    bird.birdc(&["disable", &proto_name(K4)]);
    let down = wait_until(CONVERGE, "the session loss counted", || {
        let s = scrape(&k_ns);
        (s.peer("kroute_bgp_session_flaps_total") == 1.0)
            .then_some(s)
            .ok_or_else(|| kroute.log_tails(5))
    });
    assert!(down.peer("kroute_bgp_session_state") < 6.0);
    assert_eq!(down.peer("kroute_bgp_session_established"), 0.0);
    assert_eq!(down.peer("kroute_bgp_session_uptime_seconds"), 0.0);
    assert_eq!(down.peer("kroute_bgp_notifications_received_total"), 1.0);
    assert_eq!(down.peer("kroute_bgp_prefixes_received"), 0.0);
    assert!(
        down.peer("kroute_bgp_messages_received_total")
            > up.peer("kroute_bgp_messages_received_total")
    );
    wait_until(CONVERGE, "the peer's routes leave the kernel", || {
        let s = scrape(&k_ns);
        (s.v4("kroute_fib_routes_installed") == 0.0 && !kernel_routes(&k_ns).contains(R1))
            .then_some(())
            .ok_or_else(|| kernel_routes(&k_ns))
    });
}

/// Every `"expr"` string in the dashboard.
fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// The `kroute_…` identifiers in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("kroute_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// The first nexthop object id the FIB hands out (kernel/src/nexthop.rs
/// `FIRST_ID`), and how many from it are squatted so that every try of
/// the FIB within them is refused (as in `tests/fib_confirm.rs`).
const FIRST_NEXTHOP_ID: u32 = 0x6b72_0000;
const SQUATTED: u32 = 16;

#[test]
fn a_refused_route_is_counted_as_failed_and_by_its_errno() {
    let k_ns = netns("kmeterr");
    let b_ns = netns("bmeterr");
    let v = veth(&k_ns, &b_ns, &[&format!("{K4}/24")], &[&format!("{B4}/24")]);
    let mut cfg = k::config(KROUTE_ASN, "10.255.0.1");
    cfg.peers.push(k::peer("bird", B4, PEER_ASN, &[V4]));
    cfg.api.http = Some(HttpListen {
        address: K4.parse::<IpAddr>().unwrap(),
        port: PORT,
    });
    let kroute = Kroute::start(&k_ns, cfg);
    wait_until(CONVERGE, "/metrics answers", || {
        try_scrape(&k_ns).map_err(|e| format!("{e}\n{}", kroute.log_tails(5)))
    });
    // Someone else holds the nexthop ids the FIB hands out next: the
    // kernel refuses the objects (EEXIST), and the route that needs one.
    for id in FIRST_NEXTHOP_ID..FIRST_NEXTHOP_ID + SQUATTED {
        k_ns.ip(&[
            "nexthop",
            "add",
            "id",
            &id.to_string(),
            "via",
            B4,
            "dev",
            &v.dev_a,
        ])
        .unwrap();
    }
    let mut bird = Bird::start(
        &b_ns,
        PeerSpec {
            asn: PEER_ASN,
            router_id: B4.into(),
            neighbors: vec![PeerNeighbor::new(K4, B4, KROUTE_ASN, &[V4])],
            install_kernel: false,
        },
    );
    bird.announce(R1);
    let refused = wait_until(CONVERGE, "the refusal counted", || {
        let s = scrape(&k_ns);
        (s.v4("kroute_fib_routes_failed") == 1.0)
            .then_some(s)
            .ok_or_else(|| kroute.log_tails(5))
    });
    assert_eq!(refused.v4("kroute_fib_routes_installed"), 0.0);
    assert!(
        refused.get("kroute_fib_netlink_errors_total{errno=\"EEXIST\"}") >= 1.0,
        "{refused:?}"
    );
    assert!(!kernel_routes(&k_ns).contains(R1));

    // The ids given back, a retry gets the route in.
    for id in FIRST_NEXTHOP_ID..FIRST_NEXTHOP_ID + SQUATTED {
        let _ = k_ns.ip(&["nexthop", "del", "id", &id.to_string()]);
    }
    let fixed = wait_until(CONVERGE, "installed after the retry", || {
        let s = scrape(&k_ns);
        (s.v4("kroute_fib_routes_installed") == 1.0 && s.v4("kroute_fib_routes_failed") == 0.0)
            .then_some(s)
            .ok_or_else(|| kernel_routes(&k_ns))
    });
    assert!(kernel_routes(&k_ns).contains(R1));
    // Counters do not go back.
    assert!(
        fixed.get("kroute_fib_netlink_errors_total{errno=\"EEXIST\"}")
            >= refused.get("kroute_fib_netlink_errors_total{errno=\"EEXIST\"}")
    );
}
