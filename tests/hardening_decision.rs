//! Issue 12, "Decisions that are wrong today", against the running daemon:
//! three real GoBGP peers announce one prefix with issue 12's set, B (AS
//! 65011, MED 20, router id .1), C (AS 65012, no MED, id .2) and A (AS 65011,
//! MED 10, id .3). RFC 4271 §9.1.2.2 removes B on MED within AS 65011, then
//! C beats A on router id: the kernel of kroute's namespace routes via C,
//! and `kroute explain` says so, with each loser's step. (A pairwise scan
//! in peer-address order B, C, A picked A.)
//!
//! Needs root and `gobgpd` (see `common/mod.rs`).

mod common;

use common::gobgp::GoBgp;
use common::kroute::{self as kr, Kroute};
use common::CONVERGE;
use common::{kernel, netns, route_via, veth, wait_until, PeerDaemon, PeerNeighbor, PeerSpec};
use labkit::Netns;

const KROUTE_ASN: u32 = 65001;
const PREFIX: &str = "10.77.0.0/24";

/// (name, ASN, MED, router id); peer i (1-based) sits at 10.i.0.2, so by
/// address the order is B, C, A.
const PEERS: [(&str, u32, Option<u32>, &str); 3] = [
    ("b", 65011, Some(20), "10.254.0.1"),
    ("c", 65012, None, "10.254.0.2"),
    ("a", 65011, Some(10), "10.254.0.3"),
];

struct Topo {
    // Field order is drop order: daemons first, namespaces last.
    kroute: Kroute,
    peers: Vec<GoBgp>,
    _peer_ns: Vec<Netns>,
    k_ns: Netns,
    /// kroute's device towards peer i (index i - 1).
    k_devs: Vec<String>,
}

fn start() -> Topo {
    let k_ns = netns("kmed");
    let mut cfg = kr::config(KROUTE_ASN, "10.255.0.1");
    let (mut peer_ns, mut specs, mut k_devs) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (name, asn, _, router_id)) in PEERS.iter().enumerate() {
        let i = i + 1;
        let ns = netns(&format!("med{name}"));
        let (k4, p4) = (format!("10.{i}.0.1"), format!("10.{i}.0.2"));
        let v = veth(&k_ns, &ns, &[&format!("{k4}/24")], &[&format!("{p4}/24")]);
        k_devs.push(v.dev_a.clone());
        cfg.peers.push(kr::peer(name, &p4, *asn, &["ipv4-unicast"]));
        specs.push(PeerSpec {
            asn: *asn,
            router_id: router_id.to_string(),
            neighbors: vec![PeerNeighbor::new(&k4, &p4, KROUTE_ASN, &["ipv4-unicast"])],
            install_kernel: false,
        });
        peer_ns.push(ns);
    }
    let kroute = Kroute::start(&k_ns, cfg);
    let peers = specs
        .into_iter()
        .zip(&peer_ns)
        .map(|(s, ns)| GoBgp::start(ns, s))
        .collect();
    Topo {
        kroute,
        peers,
        _peer_ns: peer_ns,
        k_ns,
        k_devs,
    }
}

#[test]
fn med_by_elimination_installs_c() {
    let t = start();
    wait_until(CONVERGE, "kroute sessions Established", || {
        PEERS
            .iter()
            .try_for_each(|(name, ..)| t.kroute.established(name))
    });
    // Announce in the order B, C, A (a pairwise scan's order).
    for (peer, (_, _, med, _)) in t.peers.iter().zip(PEERS) {
        let mut args = vec!["global", "rib", "add", "-a", "ipv4", PREFIX];
        let med = med.map(|m| m.to_string());
        if let Some(m) = &med {
            args.extend_from_slice(&["med", m]);
        }
        peer.cli(&args);
    }
    wait_until(CONVERGE, "three paths for the prefix in kroute", || {
        let n = t
            .kroute
            .routes(PREFIX)
            .iter()
            .filter(|r| r.prefix.to_string() == PREFIX)
            .count();
        (n == 3).then_some(()).ok_or(format!("{n} paths"))
    });
    wait_until(CONVERGE, "the kernel route via C (10.2.0.2)", || {
        let nhs = route_via(&t.k_ns, PREFIX)
            .ok_or_else(|| format!("no route; kernel has: {}", kernel::describe(&t.k_ns)))?;
        if nhs == vec![("10.2.0.2".to_string(), t.k_devs[1].clone())] {
            Ok(())
        } else {
            Err(format!("{PREFIX} via {nhs:?}"))
        }
    });
    let text = t.kroute.explain_text(PREFIX);
    assert!(
        text.starts_with(&format!("{PREFIX}: best via c\n")),
        "{text}"
    );
    assert!(
        text.contains("lost to a's path at step: lower MED (10 vs 20)"),
        "B is removed on MED by A: {text}"
    );
    assert!(
        text.contains("lost to c's path at step: lower router id (10.254.0.2 vs 10.254.0.3)"),
        "A then loses to C on router id: {text}"
    );
    let best: Vec<_> = t
        .kroute
        .routes(PREFIX)
        .into_iter()
        .filter(|r| r.best)
        .collect();
    assert_eq!(best.len(), 1, "{best:?}");
    assert_eq!(best[0].peer, "c");
    assert_eq!(best[0].next_hops, vec!["10.2.0.2".to_string()]);
}
