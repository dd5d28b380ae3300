//! BMP (RFC 7854) against a real collector, pmacct's `pmbmpd`, which logs
//! every BMP message it decodes as one JSON object per line.
//!
//! kroute has a BIRD peer over IPv4 (announcing R1, accepted with
//! LOCAL_PREF 250 by import policy, and R2, rejected by it) and a GoBGP
//! peer over IPv6 (announcing R6). pmbmpd listens on the loopback of
//! kroute's namespace. Checked in its log: Initiation with kroute's
//! sysDescr, a Peer Up per peer, Route Monitoring for R1 pre-policy and
//! post-policy (the latter with import's LOCAL_PREF), R2 pre-policy only,
//! R6 with an IPv6 peer, Statistics Reports; a Peer Down when BIRD
//! closes its session (the NOTIFICATION's reason); then pmbmpd killed and
//! started again: kroute reconnects and the new collector gets the
//! Initiation, the Peer Ups and the routes again. `show status` tells the
//! collector's connection. Needs root, `bird2`, `gobgpd`, `pmacct`.

mod common;

use std::path::{Path, PathBuf};

use common::bird::{proto_name, Bird};
use common::gobgp::GoBgp;
use common::kroute::{self as k, Kroute};
use common::peer::{PeerDaemon, PeerNeighbor, PeerSpec};
use common::scenarios::{KROUTE_ASN, PEER_ASN, V4, V6};
use common::{netns, test_dir, veth, wait_until, CONVERGE};
use kroute::config::{BmpCollector, BmpMonitoring};
use labkit::{Netns, Process, Spawn};
use serde_json::Value;

const K4: &str = "10.1.0.1";
const B4: &str = "10.1.0.2";
const K6: &str = "fd00:2::1";
const G6: &str = "fd00:2::2";
const GOBGP_ASN: u32 = 65003;
/// BIRD's: accepted (LOCAL_PREF set by import) and rejected by import.
const R1: &str = "10.130.1.0/24";
const R2: &str = "10.130.2.0/24";
/// GoBGP's, over IPv6.
const R6: &str = "fd00:130::/48";
const COLLECTOR_PORT: u16 = 11019;

/// pmbmpd in `ns` on 127.0.0.1, its message log in `log`.
fn start_pmbmpd(ns: &Netns, dir: &Path, log: &Path) -> Process {
    let conf = dir.join(format!(
        "pmbmpd-{}.conf",
        log.file_stem().unwrap().to_string_lossy()
    ));
    std::fs::write(
        &conf,
        format!(
            "daemonize: false\n\
             bmp_daemon_ip: 127.0.0.1\n\
             bmp_daemon_port: {COLLECTOR_PORT}\n\
             bmp_daemon_msglog_file: {}\n\
             bmp_daemon_msglog_output: json\n",
            log.display()
        ),
    )
    .unwrap();
    let conf = conf.to_string_lossy().to_string();
    Spawn::new("pmbmpd", &["pmbmpd", "-f", &conf])
        .netns(ns)
        .log(&dir.join("pmbmpd.out"))
        .append_log()
        .start()
        .unwrap_or_else(|e| panic!("pmbmpd: {e}"))
}

/// The messages pmbmpd logged so far.
fn messages(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn of_type<'a>(msgs: &'a [Value], ty: &str) -> Vec<&'a Value> {
    msgs.iter()
        .filter(|m| m["bmp_msg_type"] == ty)
        .collect::<Vec<_>>()
}

fn is_true(v: &Value) -> bool {
    v == &Value::Bool(true) || v.as_u64() == Some(1)
}

/// Route Monitoring announcing `prefix` from `peer`, post-policy or not.
fn route<'a>(msgs: &'a [Value], peer: &str, prefix: &str, post: bool) -> Option<&'a Value> {
    of_type(msgs, "route_monitor").into_iter().find(|m| {
        m["peer_ip"] == peer
            && m["ip_prefix"] == prefix
            && m["log_type"] != "withdraw"
            && is_true(&m["is_post"]) == post
    })
}

fn show(msgs: &[Value]) -> String {
    msgs.iter()
        .map(|m| m.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits until the collector's log has the Initiation, both Peer Ups and
/// the routes R1 (pre and post) and R6; returns the messages.
fn wait_full_view(log: &Path, kroute: &Kroute) -> Vec<Value> {
    wait_until(CONVERGE, "pmbmpd has the peers and routes", || {
        let m = messages(log);
        let ups = of_type(&m, "peer_up");
        let ok = !of_type(&m, "init").is_empty()
            && ups.iter().any(|u| u["peer_ip"] == B4)
            && ups.iter().any(|u| u["peer_ip"] == G6)
            && route(&m, B4, R1, false).is_some()
            && route(&m, B4, R1, true).is_some()
            && route(&m, G6, R6, false).is_some()
            && route(&m, G6, R6, true).is_some();
        ok.then_some(m.clone())
            .ok_or_else(|| format!("{}\n{}", show(&m), kroute.log_tails(10)))
    })
}

#[test]
fn pmbmpd_sees_peers_routes_and_a_reconnect() {
    let dir = test_dir("bmp");
    let k_ns = netns("kbmp");
    let b_ns = netns("bbmp");
    let g_ns = netns("gbmp");
    let _vb = veth(&k_ns, &b_ns, &[&format!("{K4}/24")], &[&format!("{B4}/24")]);
    let _vg = veth(&k_ns, &g_ns, &[&format!("{K6}/64")], &[&format!("{G6}/64")]);

    let log1 = dir.path().join("bmp1.json");
    let mut collector = start_pmbmpd(&k_ns, dir.path(), &log1);

    let policy = kroute::config::parse(
        &format!(
            "router: {{ asn: 1, routerId: 10.0.0.1 }}\n\
             policies:\n\
             \x20 - name: bmp-in\n\
             \x20   rules:\n\
             \x20     - match: {{ prefixes: [\"{R2}\"] }}\n\
             \x20       action: reject\n\
             \x20     - set: {{ localPref: 250 }}\n\
             \x20       action: accept\n"
        ),
        "policy.yaml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut cfg = k::config(KROUTE_ASN, "10.255.0.1");
    cfg.policies = policy.policies;
    let mut bird_peer = k::peer("bird", B4, PEER_ASN, &[V4]);
    bird_peer.import = serde_json::from_value(serde_json::json!(["bmp-in"])).unwrap();
    cfg.peers.push(bird_peer);
    cfg.peers.push(k::peer("gobgp", G6, GOBGP_ASN, &[V6]));
    cfg.bmp = vec![BmpCollector {
        address: "127.0.0.1".parse().unwrap(),
        port: COLLECTOR_PORT,
        monitoring: vec![BmpMonitoring::PrePolicy, BmpMonitoring::PostPolicy],
        statistics_interval: 5,
        queue_limit_mib: 16,
    }];
    let kroute = Kroute::start(&k_ns, cfg);

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
    let mut gobgp = GoBgp::start(
        &g_ns,
        PeerSpec {
            asn: GOBGP_ASN,
            router_id: "10.2.0.2".into(),
            neighbors: vec![PeerNeighbor::new(K6, G6, KROUTE_ASN, &[V6])],
            install_kernel: false,
        },
    );
    gobgp.announce(R6);

    let m = wait_full_view(&log1, &kroute);
    let init = &of_type(&m, "init")[0];
    assert!(init.to_string().contains("kroute"), "Initiation: {init}");
    let up = of_type(&m, "peer_up")
        .into_iter()
        .find(|u| u["peer_ip"] == B4)
        .unwrap();
    assert_eq!(up["peer_asn"], PEER_ASN, "{up}");
    assert_eq!(up["local_ip"], K4, "{up}");
    // One end is BGP's port 179 (whichever side connected).
    assert!(up["local_port"] == 179 || up["remote_port"] == 179, "{up}");
    // Post-policy carries what import made of it.
    let pre = route(&m, B4, R1, false).unwrap();
    let post = route(&m, B4, R1, true).unwrap();
    assert_eq!(post["local_pref"], 250, "{post}");
    assert_ne!(pre["local_pref"], 250, "{pre}");
    // R2 is rejected by import: pre-policy only. R1's post-policy came
    // with or after it, so it would be here by now.
    wait_until(CONVERGE, "R2 pre-policy", || {
        let m = messages(&log1);
        route(&m, B4, R2, false).map(|_| ()).ok_or_else(|| show(&m))
    });
    let m = messages(&log1);
    assert!(route(&m, B4, R2, true).is_none(), "{}", show(&m));
    // The IPv6 peer's header has the V flag: pmbmpd shows its address as
    // IPv6 (checked above by peer_ip == G6).

    // Statistics every 5 s.
    wait_until(CONVERGE, "a Statistics Report", || {
        let m = messages(&log1);
        (!of_type(&m, "stats").is_empty())
            .then_some(())
            .ok_or_else(|| show(&m))
    });

    // BIRD closes its session: Peer Down, with the peer's NOTIFICATION.
    bird.birdc(&["disable", &proto_name(K4)]);
    let down = wait_until(CONVERGE, "Peer Down for BIRD", || {
        let m = messages(&log1);
        of_type(&m, "peer_down")
            .into_iter()
            .find(|d| d["peer_ip"] == B4)
            .cloned()
            .ok_or_else(|| show(&m))
    });
    // 3: "remote system closed the session with a notification".
    assert_eq!(down["reason_type"], 3, "{down}");
    bird.birdc(&["enable", &proto_name(K4)]);
    wait_until(CONVERGE, "BIRD's second Peer Up", || {
        let m = messages(&log1);
        let ups = of_type(&m, "peer_up");
        (ups.iter().filter(|u| u["peer_ip"] == B4).count() >= 2)
            .then_some(())
            .ok_or_else(|| show(&m))
    });

    // The collector restarts: kroute connects again and resends everything.
    collector.kill().unwrap();
    drop(collector);
    let status = kroute.cli_ok(&["show", "status"]);
    assert!(
        status.contains(&format!("127.0.0.1:{COLLECTOR_PORT}")),
        "{status}"
    );
    let log2: PathBuf = dir.path().join("bmp2.json");
    let _collector = start_pmbmpd(&k_ns, dir.path(), &log2);
    let m = wait_full_view(&log2, &kroute);
    assert!(route(&m, B4, R2, false).is_some(), "{}", show(&m));
    assert!(route(&m, B4, R2, true).is_none(), "{}", show(&m));

    let status: Value = serde_json::from_str(&kroute.cli_ok(&["show", "status", "-o", "json"]))
        .unwrap_or_else(|e| panic!("show status -o json: {e}"));
    let c = &status["bmp"][0];
    assert_eq!(c["state"], "connected", "{status}");
    assert!(c["connects"].as_u64().unwrap() >= 2, "{status}");
    assert!(c["messagesSent"].as_u64().unwrap() > 10, "{status}");
    drop(gobgp);
}

/// `bmp[]` errors name the file, the line and the key; defaults apply.
#[test]
fn bmp_config_errors_name_file_line_and_key() {
    let base = "router: { asn: 65001, routerId: 10.0.0.1 }\nbmp:\n";
    let ok = kroute::config::parse(
        &format!("{base}  - address: 192.0.2.10\n    port: 1790\n"),
        "k.yaml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let c = &ok.bmp[0];
    assert_eq!(
        c.monitoring,
        vec![BmpMonitoring::PrePolicy, BmpMonitoring::PostPolicy]
    );
    assert_eq!((c.statistics_interval, c.queue_limit_mib), (60, 64));
    let cases = [
        (
            "  - address: 192.0.2.10\n    port: 1790\n  - address: 192.0.2.10\n    port: 1790\n",
            "k.yaml:6",
            "bmp[1].port: collector 192.0.2.10:1790 is already configured at bmp[0]",
        ),
        (
            "  - address: 0.0.0.0\n    port: 1790\n",
            "k.yaml:3",
            "bmp[0].address: 0.0.0.0 is not a collector's address",
        ),
        (
            "  - address: 192.0.2.10\n    port: 1790\n    monitoring: []\n",
            "k.yaml:5",
            "bmp[0].monitoring: monitoring must name",
        ),
        (
            "  - address: 192.0.2.10\n    port: 1790\n    monitoring: [prePolicy, prePolicy]\n",
            "k.yaml:5",
            "bmp[0].monitoring[1]: prePolicy is listed twice",
        ),
        (
            "  - address: 192.0.2.10\n    port: 1790\n    monitoring: [locRib]\n",
            "k.yaml:5",
            "locRib",
        ),
        (
            "  - address: 192.0.2.10\n    port: 1790\n    statisticsInterval: 2\n",
            "k.yaml:5",
            "bmp[0].statisticsInterval: statisticsInterval 2 is out of range",
        ),
        (
            "  - address: 192.0.2.10\n    port: 1790\n    queueLimitMiB: 0\n",
            "k.yaml:5",
            "bmp[0].queueLimitMiB: queueLimitMiB 0 is out of range",
        ),
        ("  - address: 192.0.2.10\n", "k.yaml:3", "port"),
        (
            "  - address: 192.0.2.10\n    port: 0\n",
            "k.yaml:4",
            "a TCP port 1..=65535",
        ),
        (
            "  - address: 192.0.2.10\n    port: 1790\n    sysName: x\n",
            "k.yaml:5",
            "sysName",
        ),
    ];
    for (yaml, at, what) in cases {
        let e = kroute::config::parse(&format!("{base}{yaml}"), "k.yaml")
            .map(|_| ())
            .expect_err(yaml)
            .to_string();
        assert!(e.starts_with(at), "{yaml}: {e}");
        assert!(e.contains(what), "{yaml}: {e}");
    }
}

/// A reload adds a collector (it gets the live peer and its route) and
/// removes it again (Termination), the BGP session untouched throughout.
#[test]
fn reload_adds_and_removes_a_collector_without_touching_sessions() {
    let dir = test_dir("bmpreload");
    let k_ns = netns("kbmpr");
    let b_ns = netns("bbmpr");
    let _vb = veth(&k_ns, &b_ns, &[&format!("{K4}/24")], &[&format!("{B4}/24")]);
    let log = dir.path().join("bmp.json");
    let _collector = start_pmbmpd(&k_ns, dir.path(), &log);
    let mut cfg = k::config(KROUTE_ASN, "10.255.0.1");
    cfg.peers.push(k::peer("bird", B4, PEER_ASN, &[V4]));
    let mut kroute = Kroute::start(&k_ns, cfg);
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
    wait_until(CONVERGE, "R1 from BIRD", || {
        (kroute.routes(R1).len() == 1)
            .then_some(())
            .ok_or_else(|| kroute.log_tails(5))
    });
    assert!(messages(&log).is_empty(), "no bmp configured yet");

    kroute.config.bmp = vec![BmpCollector {
        address: "127.0.0.1".parse().unwrap(),
        port: COLLECTOR_PORT,
        monitoring: vec![BmpMonitoring::PostPolicy],
        statistics_interval: 0,
        queue_limit_mib: 16,
    }];
    kroute.reload();
    let m = wait_until(CONVERGE, "the added collector gets the peer", || {
        let m = messages(&log);
        (of_type(&m, "peer_up").iter().any(|u| u["peer_ip"] == B4)
            && route(&m, B4, R1, true).is_some())
        .then_some(m.clone())
        .ok_or_else(|| format!("{}\n{}", show(&m), kroute.log_tails(5)))
    });
    assert!(
        route(&m, B4, R1, false).is_none(),
        "monitoring: [postPolicy] only: {}",
        show(&m)
    );

    kroute.config.bmp.clear();
    kroute.reload();
    wait_until(CONVERGE, "Termination to the removed collector", || {
        let m = messages(&log);
        (!of_type(&m, "term").is_empty())
            .then_some(())
            .ok_or_else(|| show(&m))
    });
    let n = kroute.neighbor("bird").unwrap();
    assert_eq!(n.flaps, 0, "the BGP session stayed up: {n:?}");
    assert!(kroute.established("bird").is_ok());
}
