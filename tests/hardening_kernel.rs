//! Issue 12, "nothing lost silently", against the running daemon: a route
//! kroute installed from a real peer (GoBGP) that someone deletes or
//! replaces by hand in the node's kernel comes back by itself.
//! Needs root and GoBGP (see `common/mod.rs`).

mod common;

use std::time::Duration;

use common::gobgp::GoBgp;
use common::peer::PeerDaemon;
use common::scenarios::{Topo, P4, P6};
use common::{route_via, wait_until};

/// Repairs are debounced (tens of ms); a few seconds leave room for a busy
/// machine without hiding a route that stays missing.
const REPAIR: Duration = Duration::from_secs(5);

fn wait_back(t: &Topo<GoBgp>, prefix: &str, want: &[(String, String)]) {
    wait_until(
        REPAIR,
        &format!("{prefix} back in the kernel"),
        || match route_via(&t.k_ns, prefix) {
            Some(nhs) if nhs == want => Ok(()),
            other => Err(format!("{prefix}: {other:?}")),
        },
    );
}

#[test]
fn a_route_deleted_or_replaced_by_hand_comes_back() {
    let mut t = Topo::<GoBgp>::p2p("hk", 1, true, |_| {});
    t.peers[0].announce(P4);
    t.peers[0].announce(P6);
    t.wait_kernel_via(P4, &[1]);
    t.wait_kernel_via(P6, &[1]);
    let v4 = route_via(&t.k_ns, P4).unwrap();
    let v6 = route_via(&t.k_ns, P6).unwrap();

    t.k_ns.ip(&["route", "del", P4, "proto", "bgp"]).unwrap();
    t.k_ns
        .ip(&["-6", "route", "del", P6, "proto", "bgp"])
        .unwrap();
    wait_back(&t, P4, &v4);
    wait_back(&t, P6, &v6);

    // Replaced at kroute's metric by another gateway and protocol.
    let metric = t
        .k_ns
        .ip(&["-j", "route", "show", P4, "proto", "bgp"])
        .unwrap();
    let metric: serde_json::Value = serde_json::from_str(&metric).unwrap();
    let metric = metric[0]["metric"].as_u64().unwrap_or(0).to_string();
    let other_gw = "10.1.0.3";
    t.k_ns
        .ip(&[
            "route", "replace", P4, "via", other_gw, "proto", "static", "metric", &metric,
        ])
        .unwrap();
    wait_back(&t, P4, &v4);
    let all = t.k_ns.ip(&["route", "show", P4]).unwrap();
    assert!(!all.contains(other_gw), "the replacement stays: {all}");
    t.kroute.assert_alive();
}
