//! `api.http` against the running daemon: `/healthz` answers while kroute
//! runs; `/readyz` is 503 with the reason until the initial convergence is
//! over (here: until its one BIRD peer is up and has sent End-of-RIB) and
//! 200 after. Requests with `curl` inside kroute's namespace, as a
//! kubelet probe on a hostNetwork pod reaches the node's own address.
//! Needs root and `bird2` (see `common/mod.rs`).

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::bird::Bird;
use common::kroute::{self as k, Kroute};
use common::peer::{PeerDaemon, PeerNeighbor, PeerSpec};
use common::scenarios::{KROUTE_ASN, PEER_ASN, V4};
use common::{netns, veth, wait_until, CONVERGE};
use kroute::config::HttpListen;
use labkit::Netns;

const K4: &str = "10.1.0.1";
const B4: &str = "10.1.0.2";
const PORT: u16 = 9179;

/// `curl` in `ns`: (HTTP status, body).
fn get(ns: &Netns, url: &str) -> (u16, String) {
    let out = ns
        .output(&["curl", "-s", "--max-time", "5", "-w", "\n%{http_code}", url])
        .unwrap_or_else(|e| panic!("curl: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (
        code.trim().parse().unwrap_or(0),
        body.trim_end().to_string(),
    )
}

fn http(address: &str) -> Option<HttpListen> {
    Some(HttpListen {
        address: address.parse::<IpAddr>().unwrap(),
        port: PORT,
    })
}

#[test]
fn readyz_waits_for_the_initial_convergence() {
    let k_ns = netns("khh");
    let b_ns = netns("bhh");
    let _v = veth(&k_ns, &b_ns, &[&format!("{K4}/24")], &[&format!("{B4}/24")]);
    let mut cfg = k::config(KROUTE_ASN, "10.255.0.1");
    cfg.peers.push(k::peer("bird", B4, PEER_ASN, &[V4]));
    cfg.api.http = http(K4);
    let kroute = Kroute::start(&k_ns, cfg);
    let url = |path: &str| format!("http://{K4}:{PORT}{path}");

    // The peer's namespace has no BGP speaker yet: alive, not ready.
    let healthz = wait_until(CONVERGE, "/healthz answers", || {
        let r = get(&k_ns, &url("/healthz"));
        if r.0 == 200 {
            Ok(r)
        } else {
            Err(format!("{r:?}"))
        }
    });
    assert_eq!(healthz.1, "ok");
    let (status, body) = get(&k_ns, &url("/readyz"));
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("not ready: initial convergence"), "{body}");
    assert_eq!(get(&k_ns, &url("/metrics")).0, 200);

    // The peer comes: once its End-of-RIB is in, kroute is ready.
    let _bird = Bird::start(
        &b_ns,
        PeerSpec {
            asn: PEER_ASN,
            router_id: B4.into(),
            neighbors: vec![PeerNeighbor::new(K4, B4, KROUTE_ASN, &[V4])],
            install_kernel: false,
        },
    );
    wait_until(CONVERGE, "/readyz says ready", || {
        let r = get(&k_ns, &url("/readyz"));
        (r == (200, "ready".to_string()))
            .then_some(())
            .ok_or(format!("{r:?}\n{}", kroute.log_tails(10)))
    });
    assert_eq!(get(&k_ns, &url("/healthz")).0, 200);
}

#[test]
fn no_api_http_no_listener_and_a_taken_port_fails_the_start() {
    let ns = netns("hhoff");
    let kroute = Kroute::start(&ns, k::config(KROUTE_ASN, "10.255.0.1"));
    let (status, _) = get(&ns, &format!("http://127.0.0.1:{PORT}/healthz"));
    assert_eq!(status, 0, "nothing listens without api.http");
    drop(kroute);

    // With no peers the daemon is ready at once, on the loopback address.
    let mut cfg = k::config(KROUTE_ASN, "10.255.0.1");
    cfg.api.http = http("127.0.0.1");
    let first = Kroute::start(&ns, cfg.clone());
    wait_until(Duration::from_secs(10), "/readyz with no peers", || {
        let r = get(&ns, &format!("http://127.0.0.1:{PORT}/readyz"));
        (r.0 == 200).then_some(()).ok_or(format!("{r:?}"))
    });
    // A second daemon in the same namespace cannot take the port: it says
    // which and exits (its BGP listener is off so that is the only clash).
    cfg.router.listen = None;
    let spec_dir = common::test_dir("hh-second");
    let path = spec_dir.path().join("kroute.yaml");
    cfg.api.socket = spec_dir.path().join("kroute.sock");
    std::fs::write(&path, labkit::kroute::to_yaml(&cfg).unwrap()).unwrap();
    let out = ns
        .output(&[k::BIN, "daemon", "-c", path.to_str().unwrap()])
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("api.http 127.0.0.1:{PORT}")),
        "{stderr}"
    );
    drop(first);
}
