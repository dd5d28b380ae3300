//! Leaking between routing domains (`leak.rs`): one RIB per domain, the
//! receiving one fed the source's best paths through a pseudo-peer and a
//! policy, as the daemon does after every event.

mod common;

use common::*;
use rib::policy::{Policy, PolicyChain};
use rib::*;

/// The first leak source id.
const FROM_CLUSTER: PeerId = *LEAK_PEERS.start();

fn only(prefix: &str) -> Policy {
    serde_json::from_value(serde_json::json!({
        "name": "cluster-to-internet",
        "rules": [{ "match": { "prefixes": [prefix] }, "action": "accept" }],
    }))
    .unwrap()
}

/// The source's changes since the last call, handed to `to` as the
/// daemon does.
fn feed(from: &mut Rib, to: &mut Rib) -> Outputs {
    let changes = from
        .take_leak_changes()
        .into_iter()
        .map(|p| (p, from.leakable(&p)))
        .collect();
    let mut out = Outputs::default();
    to.leak_in(FROM_CLUSTER, changes, &mut out);
    out
}

/// "cluster" (the default domain: an eBGP peer 192.0.2.1) and "internet"
/// (an eBGP peer 198.51.100.1), leaking cluster → internet through
/// `cluster-to-internet`, which lets 10.1.0.0/24 through only.
fn domains() -> (Rib, Rib) {
    let mut cluster = Rib::new(cfg());
    add_up(
        &mut cluster,
        1,
        ebgp("tor", "192.0.2.1", 65101),
        "192.0.2.1",
    );
    reach(&mut cluster, "192.0.2.1", 0);
    cluster.set_leak_log(true);
    let mut internet = Rib::new(RibConfig {
        policies: vec![only("10.1.0.0/24")],
        ..cfg()
    });
    add_up(
        &mut internet,
        2,
        ebgp("isp", "198.51.100.1", 65201),
        "198.51.100.1",
    );
    let mut out = Outputs::default();
    internet.set_leak_source(
        FROM_CLUSTER,
        "default",
        PolicyChain::Named(vec!["cluster-to-internet".into()]),
        &mut out,
    );
    (cluster, internet)
}

#[test]
fn a_leaked_route_is_decided_installed_and_advertised_then_withdrawn() {
    let (mut cluster, mut internet) = domains();
    receive(
        &mut cluster,
        1,
        update_v4(
            &["10.1.0.0/24", "10.2.0.0/24"],
            "192.0.2.1",
            attrs(&[65101]),
        ),
    );
    let mut out = feed(&mut cluster, &mut internet);
    assert_eq!(out.watch_nexthops, vec![ip("192.0.2.1")]);
    // The internet domain's FIB resolves the cluster next hop.
    let reached = reach(&mut internet, "192.0.2.1", 0);
    out.fib.extend(reached.fib);
    out.updates.extend(reached.updates);
    assert_eq!(
        fib_for(&out, "10.1.0.0/24"),
        vec![vec![ip("192.0.2.1")]],
        "installed with its original next hop"
    );
    assert!(
        fib_for(&out, "10.2.0.0/24").is_empty(),
        "the policy lets 10.1.0.0/24 through only"
    );
    let to_isp = announced(&out, 2);
    assert_eq!(to_isp.len(), 1, "{to_isp:?}");
    let (prefix, nh, a) = &to_isp[0];
    assert_eq!(*prefix, p("10.1.0.0/24"));
    assert_eq!(nh.address, ip("10.0.0.1"), "sent next hop self");
    assert_eq!(a.as_path.to_string(), "65000 65101");

    let e = internet.explain(&p("10.1.0.0/24"));
    assert_eq!(e.paths[0].from, "leaked from domain default");
    assert_eq!(e.paths[0].peer_address, None);
    assert!(
        e.peers.iter().all(|x| x.peer == "isp"),
        "a leak source is not a peer to send to: {:?}",
        e.peers
    );
    let refused = internet.explain(&p("10.2.0.0/24"));
    assert!(
        refused.paths[0].import.contains("rejected"),
        "{:?}",
        refused.paths[0]
    );

    // Never leaked on: a third domain gets nothing of it.
    assert_eq!(internet.leakable(&p("10.1.0.0/24")), None);
    assert!(internet.leakable_all().is_empty());

    // Withdrawn in the cluster: gone from the internet domain.
    receive(&mut cluster, 1, withdraw(&["10.1.0.0/24"]));
    let out = feed(&mut cluster, &mut internet);
    assert_eq!(
        fib_for(&out, "10.1.0.0/24"),
        vec![Vec::<std::net::IpAddr>::new()]
    );
    assert_eq!(withdrawn(&out, 2), vec![p("10.1.0.0/24")]);
}

#[test]
fn the_domains_own_path_competes_and_a_removed_leak_leaves_nothing() {
    let (mut cluster, mut internet) = domains();
    reach(&mut internet, "192.0.2.1", 0);
    reach(&mut internet, "198.51.100.1", 0);
    // The ISP's path is shorter: the leaked one loses, on the ISP's terms.
    receive(
        &mut internet,
        2,
        update_v4(&["10.1.0.0/24"], "198.51.100.1", attrs(&[65201])),
    );
    receive(
        &mut cluster,
        1,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65101, 65102])),
    );
    feed(&mut cluster, &mut internet);
    let e = internet.explain(&p("10.1.0.0/24"));
    assert_eq!(e.paths.len(), 2);
    assert_eq!(e.summary, "10.1.0.0/24: best via isp");
    let leaked = e
        .paths
        .iter()
        .find(|x| x.from == "leaked from domain default")
        .unwrap();
    assert!(leaked.detail.contains("lost to isp's path"), "{leaked:?}");

    let mut out = Outputs::default();
    internet.remove_leak_source(FROM_CLUSTER, &mut out);
    assert_eq!(internet.explain(&p("10.1.0.0/24")).paths.len(), 1);
    assert!(internet.leak_sources().is_empty());
}
