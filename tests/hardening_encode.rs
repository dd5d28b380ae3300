//! Issue 12, "nothing lost silently", against the running daemon: a route
//! whose attributes, once kroute has added its own AS on export, no longer
//! fit one 4096-octet UPDATE (RFC 4271 §4; kroute does not do RFC 8654
//! extended messages) is not advertised, `explain` says why, a version of it
//! advertised earlier is withdrawn (RFC 4271 §9.2), and the receiving peer's
//! session is not hurt.
//!
//! Topology: kroute (AS 65001) in K; GoBGP "r" (AS 65002, the receiver)
//! from `Topo::p2p` on 10.1.0.0/24; GoBGP "s" (AS 65003, the sender) on
//! its own link 10.2.0.0/24 (another AS, so that r does not drop s's
//! routes as its own AS loop). Needs root and GoBGP (see `common/mod.rs`).

mod common;

use std::time::Duration;

use common::gobgp::GoBgp;
use common::kroute as k;
use common::peer::{PeerDaemon, PeerNeighbor, PeerSpec};
use common::scenarios::{Topo, KROUTE_ASN, V4};
use common::{netns, route_via, veth, wait_until, CONVERGE};

const SENDER_ASN: u32 = 65003;
const K_S: &str = "10.2.0.1";
const S: &str = "10.2.0.2";
const NORMAL: &str = "10.120.0.0/24";
const BIG: &str = "10.120.1.0/24";
const LATER: &str = "10.120.2.0/24";

/// 1011 communities: s's UPDATE for one /24 is then exactly 4096 octets
/// (header 19 + lengths 4 + ORIGIN 4 + AS_PATH 9 + NEXT_HOP 7 +
/// COMMUNITIES 4 + 4044 + NLRI 4 + 1 spare); kroute's AS prepended on
/// export adds 4 octets, which no longer fit.
fn communities() -> String {
    (1..=1011)
        .map(|i| format!("{SENDER_ASN}:{i}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn receiver_has(r: &GoBgp, prefix: &str) -> bool {
    !r.routes_for(prefix).is_empty()
}

#[test]
fn a_route_too_big_to_send_is_withdrawn_and_explained_and_the_peer_stays_up() {
    let mut t = Topo::<GoBgp>::p2p("hen", 1, false, |c| {
        c.peers.push(k::peer("sender", S, SENDER_ASN, &[V4]));
    });
    let s_ns = netns("sen");
    let _link = veth(
        &t.k_ns,
        &s_ns,
        &[&format!("{K_S}/24")],
        &[&format!("{S}/24")],
    );
    let mut s = GoBgp::start(
        &s_ns,
        PeerSpec {
            asn: SENDER_ASN,
            router_id: S.into(),
            neighbors: vec![PeerNeighbor::new(K_S, S, KROUTE_ASN, &[V4])],
            install_kernel: false,
        },
    );
    let r_name = Topo::<GoBgp>::v4_name(1);
    let k_r = t.links[0].k4.clone();
    wait_until(CONVERGE, "both sessions Established", || {
        t.kroute.established("sender")?;
        t.kroute.established(&r_name)
    });

    // Normal routes: both reach r.
    s.announce(NORMAL);
    s.announce(BIG);
    wait_until(CONVERGE, "r has both routes", || {
        match (
            receiver_has(&t.peers[0], NORMAL),
            receiver_has(&t.peers[0], BIG),
        ) {
            (true, true) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });

    // BIG again, now with attributes that fill s's UPDATE to the limit.
    s.cli(&[
        "global",
        "rib",
        "add",
        "-a",
        "ipv4",
        BIG,
        "community",
        &communities(),
    ]);
    wait_until(CONVERGE, "kroute has the new version of BIG", || {
        let e = t.kroute.explain_text(BIG);
        if e.contains(&format!("{SENDER_ASN}:1011")) || e.contains("do not fit") {
            Ok(())
        } else {
            Err(e)
        }
    });
    // kroute still uses it (installed), but cannot send it: r must lose the
    // old version rather than keep a path kroute no longer has.
    wait_until(CONVERGE, "r no longer has BIG", || {
        if receiver_has(&t.peers[0], BIG) {
            Err(format!("r: {:?}", t.peers[0].routes_for(BIG)))
        } else {
            Ok(())
        }
    });
    assert!(route_via(&t.k_ns, BIG).is_some(), "BIG is still installed");
    let e = t.kroute.explain_text(BIG);
    assert!(
        e.contains("not advertised: attributes do not fit in 4096 bytes"),
        "explain {BIG}:\n{e}"
    );

    // The session with r is unharmed: still Established, never flapped,
    // and routes still flow over it.
    s.announce(LATER);
    wait_until(CONVERGE, "r gets a route announced afterwards", || {
        receiver_has(&t.peers[0], LATER)
            .then_some(())
            .ok_or_else(|| "not yet".to_string())
    });
    assert!(receiver_has(&t.peers[0], NORMAL));
    t.peers[0].session_state(&k_r).unwrap();
    let nb = t.kroute.neighbor(&r_name).expect("neighbor r");
    assert_eq!(nb.flaps, 0, "{nb:?}");
    t.kroute.established(&r_name).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !receiver_has(&t.peers[0], BIG),
        "BIG must not come back to r"
    );
    t.kroute.assert_alive();
    drop(s);
}
