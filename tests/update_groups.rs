//! Update groups (issue 17) against real peers: kroute reflects for four
//! GoBGP route-reflector clients on one LAN. Three export everything (one
//! update group, one batch encoded once for all), the fourth has an export
//! policy of its own (another group). Each client gets every other
//! client's route and never its own; the policy's client gets only what
//! its policy lets through; a withdrawal, and a client going away, reach
//! every other client.
//!
//! Needs root and `gobgpd` (see `common/mod.rs`).

mod common;

use std::collections::BTreeSet;

use common::gobgp::GoBgp;
use common::kroute::{self as kr, Kroute};
use common::{netns, wait_until, Lan, PeerDaemon, PeerNeighbor, PeerSpec, CONVERGE};
use labkit::Netns;

const ASN: u32 = 65000;
const RR: &str = "10.50.0.1";
const CLIENTS: u32 = 4;
/// The client with an export policy of its own.
const PICKY: u32 = 4;

fn addr(i: u32) -> String {
    format!("10.50.0.{}", 10 + i)
}

fn prefix(i: u32) -> String {
    format!("10.60.{i}.0/24")
}

struct Topo {
    // Field order is drop order: daemons first, namespaces last.
    kroute: Kroute,
    clients: Vec<GoBgp>,
    _client_ns: Vec<Netns>,
    _k_ns: Netns,
    _lan: Lan,
}

fn start() -> Topo {
    let mut lan = Lan::new("ug");
    let k_ns = netns("ugrr");
    lan.attach(&k_ns, &[&format!("{RR}/24")]);
    let mut cfg = kr::config(ASN, RR);
    cfg.policies = kroute::config::parse(
        &format!(
            "router: {{ asn: {ASN}, routerId: {RR} }}\n\
             policies:\n\
             \x20 - name: only-first\n\
             \x20   rules:\n\
             \x20     - match: {{ prefixes: [\"{}\"] }}\n\
             \x20       action: accept\n\
             \x20     - action: reject\n",
            prefix(1)
        ),
        "policy.yaml",
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .policies;
    let (mut client_ns, mut clients) = (Vec::new(), Vec::new());
    for i in 1..=CLIENTS {
        let ns = netns(&format!("ugc{i}"));
        lan.attach(&ns, &[&format!("{}/24", addr(i))]);
        let mut p = kr::peer(&format!("c{i}"), &addr(i), ASN, &["ipv4-unicast"]);
        p.route_reflector_client = true;
        if i == PICKY {
            p.export = serde_json::from_value(serde_json::json!(["only-first"])).unwrap();
        }
        cfg.peers.push(p);
        client_ns.push(ns);
    }
    let kroute = Kroute::start(&k_ns, cfg);
    for (i, ns) in (1..=CLIENTS).zip(&client_ns) {
        let spec = PeerSpec {
            asn: ASN,
            router_id: addr(i),
            neighbors: vec![PeerNeighbor::new(RR, &addr(i), ASN, &["ipv4-unicast"])],
            install_kernel: false,
        };
        clients.push(GoBgp::start(ns, spec));
    }
    Topo {
        kroute,
        clients,
        _client_ns: client_ns,
        _k_ns: k_ns,
        _lan: lan,
    }
}

/// The prefixes client `i` learned from kroute.
fn learned(t: &Topo, i: u32) -> BTreeSet<String> {
    t.clients[(i - 1) as usize]
        .rib()
        .into_iter()
        .map(|r| r.prefix)
        .collect()
}

/// Every client holds exactly what it should: `announcing` minus its own,
/// PICKY only the first client's prefix.
fn check(t: &Topo, up: &[u32], announcing: &[u32]) -> Result<(), String> {
    for &i in up {
        let want: BTreeSet<String> = announcing
            .iter()
            .filter(|j| **j != i && (i != PICKY || **j == 1))
            .map(|j| prefix(*j))
            .collect();
        let got = learned(t, i);
        if got != want {
            return Err(format!("c{i} has {got:?}, wants {want:?}"));
        }
        let n = t
            .kroute
            .neighbor(&format!("c{i}"))
            .ok_or(format!("no neighbor c{i}"))?;
        if n.prefixes_advertised != want.len() {
            return Err(format!(
                "kroute says {} advertised to c{i}, wants {}",
                n.prefixes_advertised,
                want.len()
            ));
        }
    }
    Ok(())
}

#[test]
fn reflected_routes_reach_every_client_but_their_source_and_follow_each_export_policy() {
    let mut t = start();
    wait_until(CONVERGE, "kroute sessions Established", || {
        (1..=CLIENTS).try_for_each(|i| t.kroute.established(&format!("c{i}")))
    });
    for i in 1..=CLIENTS {
        t.clients[(i - 1) as usize].announce(&prefix(i));
    }
    let all: Vec<u32> = (1..=CLIENTS).collect();
    wait_until(CONVERGE, "every client has every other's route", || {
        check(&t, &all, &all)
    });

    // A withdrawal reaches every client that had it.
    t.clients[1].withdraw(&prefix(2));
    wait_until(CONVERGE, "c2's route gone everywhere", || {
        check(&t, &all, &[1, 3, 4])
    });

    // A client going away: its route leaves the others.
    t.clients[2].kill();
    wait_until(CONVERGE, "c3's route gone everywhere", || {
        check(&t, &[1, 2, 4], &[1, 4])
    });

    // And the first client's route, the only one the picky client gets.
    t.clients[0].withdraw(&prefix(1));
    wait_until(CONVERGE, "c1's route gone everywhere", || {
        check(&t, &[1, 2, 4], &[4])
    });
}
