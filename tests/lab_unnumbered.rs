//! `kroute lab up --scenario unnumbered`: seed 000 (six nodes, each with
//! kroute and a Cilium stand-in, three FRR upstreams) with BGP unnumbered
//! uplinks: every node has one point-to-point link per router with no
//! address on it, kroute's peers are `interface` peers. Every node's kernel
//! must hold every other pod CIDR, both families ECMP over the three
//! uplinks via the routers' link-local addresses (IPv4 `via inet6`), and
//! every pod must ping every other pod. Then one of n1's uplinks goes down
//! (n1 keeps the other two) and up again.

mod lab;

use lab::{wait_until, Lab, CONVERGE};

const NODES: [&str; 6] = ["n1", "n2", "n3", "n4", "n5", "n6"];

/// n1's routes to the other pods each with `k` gateways, all link-local.
fn n1_ecmp(lab: &Lab, k: usize) -> Result<(), String> {
    let routes = lab.routes("n1");
    for m in NODES.iter().filter(|m| **m != "n1") {
        let (v6, v4) = lab.pod_cidrs(m);
        for p in [v6, v4] {
            match routes.iter().find(|r| r.prefix == p) {
                Some(r)
                    if r.gateways.len() == k
                        && r.gateways.iter().all(|g| g.starts_with("fe80:")) => {}
                other => {
                    return Err(format!(
                        "n1: {p} is {other:?}, want {k} link-local gateways"
                    ))
                }
            }
        }
    }
    Ok(())
}

#[test]
fn unnumbered_uplinks_carry_both_families() {
    let lab = Lab::up("unnumbered", &[]);
    wait_until(
        CONVERGE,
        "pod routes, ECMP over 3 unnumbered uplinks",
        || lab.check_pod_routes(&NODES, &[], &[], Some(3)),
    );
    wait_until(CONVERGE, "full ping matrix", || lab.matrix_ok(&[]));
    lab.assert_full_matrix_and_sessions(4, "cilium + 3 upstreams");
    n1_ecmp(&lab, 3).unwrap_or_else(|e| panic!("{e}"));

    // No address on the node-router links but the kernel's link-local.
    let n1 = labkit::Netns::open(&lab.ns("n1")).unwrap_or_else(|e| panic!("{e}"));
    for dev in ["up1", "up2", "up3"] {
        let addrs = n1
            .ip(&["-o", "addr", "show", "dev", dev])
            .unwrap_or_else(|e| panic!("{e}"));
        let lines: Vec<&str> = addrs.lines().collect();
        assert!(
            lines.len() == 1 && lines[0].contains("inet6 fe80:") && lines[0].contains("scope link"),
            "{dev}: {addrs}"
        );
    }
    // The IPv4 pod routes go via an IPv6 link-local gateway.
    let (_, p2_v4) = lab.pod_cidrs("n2");
    let raw = n1
        .ip(&["-4", "route", "show", "exact", &p2_v4])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(raw.contains("via inet6 fe80:"), "{raw}");
    // `show neighbors` names the interface and the learned router.
    let table = lab.kroute("n1", &["show", "neighbors"]);
    assert!(
        table.contains("%up1") && table.contains("external (4200001000 learned)"),
        "{table}"
    );

    // One of n1's uplinks down: n1 keeps the other two, the matrix stays
    // full; up again, all three are back.
    lab.link("n1", "up1", false);
    wait_until(CONVERGE, "n1 over two uplinks", || n1_ecmp(&lab, 2));
    wait_until(CONVERGE, "full matrix without n1's up1", || {
        lab.matrix_ok(&[])
    });
    lab.link("n1", "up1", true);
    wait_until(CONVERGE, "n1 over three uplinks again", || n1_ecmp(&lab, 3));
    wait_until(CONVERGE, "full matrix with up1 back", || lab.matrix_ok(&[]));
}
