//! Proves the harness against the real peer daemons alone (no kroute):
//! BIRD <-> FRR and GoBGP <-> BIRD in namespaces, checking sessions, RIBs and
//! the kernel.

mod common;

use common::bird::Bird;
use common::frr::Frr;
use common::gobgp::GoBgp;
use common::peer::{describe_rib, PeerDaemon, PeerNeighbor, PeerSpec};
use common::{kernel, netns, veth, wait_until, CONVERGE};
use labkit::Netns;

const V4: &str = "ipv4-unicast";
const V6: &str = "ipv6-unicast";

fn spec(asn: u32, rid: &str, neighbors: Vec<PeerNeighbor>, install_kernel: bool) -> PeerSpec {
    PeerSpec {
        asn,
        router_id: rid.into(),
        neighbors,
        install_kernel,
    }
}

fn wait_rib<P: PeerDaemon>(p: &P, what: &str, pred: impl Fn(&common::PeerRoute) -> bool) {
    wait_until(CONVERGE, what, || {
        let rib = p.rib();
        if rib.iter().any(&pred) {
            Ok(())
        } else {
            Err(describe_rib(&rib))
        }
    })
}

fn wait_kernel(ns: &Netns, prefix: &str, proto: &str, gws: &[&str]) {
    wait_until(
        CONVERGE,
        &format!("{prefix} (proto {proto}) in {}", ns.name()),
        || match kernel::route_via_proto(ns, prefix, proto) {
            Some(nhs) if nhs.iter().any(|(gw, _)| gws.contains(&gw.as_str())) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
}

fn wait_kernel_absent(ns: &Netns, prefix: &str, proto: &str) {
    wait_until(
        CONVERGE,
        &format!("{prefix} to leave {}", ns.name()),
        || match kernel::route_via_proto(ns, prefix, proto) {
            None => Ok(()),
            Some(nhs) => Err(format!("{nhs:?}")),
        },
    )
}

#[test]
fn bird_frr_ipv4_ipv6() {
    let a = netns("bird");
    let b = netns("frr");
    let l = veth(
        &a,
        &b,
        &["10.1.0.1/24", "fd00:1::1/64"],
        &["10.1.0.2/24", "fd00:1::2/64"],
    );
    let mut bird = Bird::start(
        &a,
        spec(
            65010,
            "10.1.0.1",
            vec![
                PeerNeighbor::new("10.1.0.2", "10.1.0.1", 65020, &[V4]),
                PeerNeighbor::new("fd00:1::2", "fd00:1::1", 65020, &[V6]),
            ],
            true,
        ),
    );
    let mut frr = Frr::start(
        &b,
        spec(
            65020,
            "10.1.0.2",
            vec![
                PeerNeighbor::new("10.1.0.1", "10.1.0.2", 65010, &[V4]),
                PeerNeighbor::new("fd00:1::1", "fd00:1::2", 65010, &[V6]),
            ],
            true,
        ),
    );
    wait_until(CONVERGE, "BIRD<->FRR sessions", || {
        bird.session_state("10.1.0.2")?;
        bird.session_state("fd00:1::2")?;
        frr.session_state("10.1.0.1")?;
        frr.session_state("fd00:1::1")
    });

    // FRR -> BIRD -> BIRD's kernel.
    frr.announce("10.100.0.0/24");
    frr.announce("fd00:100::/48");
    wait_kernel(&a, "10.100.0.0/24", "bird", &["10.1.0.2"]);
    let ll_b = common::link_local(&b, &l.dev_b);
    wait_kernel(&a, "fd00:100::/48", "bird", &["fd00:1::2", &ll_b]);
    wait_rib(&bird, "BIRD RIB has FRR's prefix with path 65020", |r| {
        r.prefix == "10.100.0.0/24" && r.as_path == [65020] && r.next_hops == ["10.1.0.2"]
    });

    // BIRD -> FRR (RIB and zebra's kernel), with a prepended path.
    bird.announce_prepend("10.101.0.0/24", &[65099]);
    bird.announce("fd00:101::/48");
    wait_rib(&frr, "FRR RIB has BIRD's prefixes", |r| {
        r.prefix == "10.101.0.0/24"
            && r.as_path == [65010, 65099]
            && r.next_hops.contains(&"10.1.0.1".to_string())
    });
    wait_rib(&frr, "FRR RIB has BIRD's IPv6 prefix", |r| {
        r.prefix == "fd00:101::/48" && r.next_hops.contains(&"fd00:1::1".to_string())
    });
    wait_kernel(&b, "10.101.0.0/24", "bgp", &["10.1.0.1"]);

    // Withdrawals on both sides.
    frr.withdraw("10.100.0.0/24");
    wait_kernel_absent(&a, "10.100.0.0/24", "bird");
    bird.withdraw("10.101.0.0/24");
    wait_kernel_absent(&b, "10.101.0.0/24", "bgp");

    // FRR killed: BIRD's session drops and FRR's IPv6 route leaves BIRD's kernel.
    frr.kill();
    wait_until(CONVERGE, "BIRD to notice FRR is gone", || {
        match bird.session_state("fd00:1::2") {
            Ok(()) => Err("still Established".into()),
            Err(_) => Ok(()),
        }
    });
    wait_kernel_absent(&a, "fd00:100::/48", "bird");
}

#[test]
fn gobgp_bird_ipv4_ipv6() {
    let a = netns("bird");
    let g = netns("gobgp");
    let _l = veth(
        &a,
        &g,
        &["10.1.0.1/24", "fd00:1::1/64"],
        &["10.1.0.2/24", "fd00:1::2/64"],
    );
    let mut bird = Bird::start(
        &a,
        spec(
            65010,
            "10.1.0.1",
            vec![
                PeerNeighbor::new("10.1.0.2", "10.1.0.1", 65030, &[V4]),
                PeerNeighbor::new("fd00:1::2", "fd00:1::1", 65030, &[V6]),
            ],
            true,
        ),
    );
    let mut gobgp = GoBgp::start(
        &g,
        spec(
            65030,
            "10.1.0.2",
            vec![
                PeerNeighbor::new("10.1.0.1", "10.1.0.2", 65010, &[V4]),
                PeerNeighbor::new("fd00:1::1", "fd00:1::2", 65010, &[V6]),
            ],
            false,
        ),
    );
    wait_until(CONVERGE, "GoBGP<->BIRD sessions", || {
        bird.session_state("10.1.0.2")?;
        bird.session_state("fd00:1::2")?;
        gobgp.session_state("10.1.0.1")?;
        gobgp.session_state("fd00:1::1")
    });
    gobgp.announce("10.100.0.0/24");
    gobgp.announce("fd00:100::/48");
    gobgp.announce_prepend("10.102.0.0/24", &[65099]);
    wait_kernel(&a, "10.100.0.0/24", "bird", &["10.1.0.2"]);
    wait_kernel(&a, "fd00:100::/48", "bird", &["fd00:1::2"]);
    wait_rib(&bird, "BIRD has GoBGP's prepended path", |r| {
        r.prefix == "10.102.0.0/24" && r.as_path == [65030, 65099]
    });
    bird.announce("10.101.0.0/24");
    bird.announce("fd00:101::/48");
    wait_rib(&gobgp, "GoBGP has BIRD's prefix", |r| {
        r.prefix == "10.101.0.0/24" && r.as_path == [65010] && r.next_hops == ["10.1.0.1"]
    });
    wait_rib(&gobgp, "GoBGP has BIRD's IPv6 prefix", |r| {
        r.prefix == "fd00:101::/48" && r.next_hops.contains(&"fd00:1::1".to_string())
    });
    gobgp.withdraw("10.100.0.0/24");
    wait_kernel_absent(&a, "10.100.0.0/24", "bird");
}

/// Both families over one IPv6 session, each side setting an IPv4 next hop
/// for ipv4-unicast (what the kroute `nextHopIpv4` scenario relies on).
#[test]
fn bird_frr_both_families_over_ipv6() {
    let a = netns("bird");
    let b = netns("frr");
    let _l = veth(
        &a,
        &b,
        &["10.1.0.1/24", "fd00:1::1/64"],
        &["10.1.0.2/24", "fd00:1::2/64"],
    );
    let mut na = PeerNeighbor::new("fd00:1::2", "fd00:1::1", 65020, &[V4, V6]);
    na.next_hop_ipv4 = Some("10.1.0.1".into());
    let mut nb = PeerNeighbor::new("fd00:1::1", "fd00:1::2", 65010, &[V4, V6]);
    nb.next_hop_ipv4 = Some("10.1.0.2".into());
    let mut bird = Bird::start(&a, spec(65010, "10.1.0.1", vec![na], true));
    let mut frr = Frr::start(&b, spec(65020, "10.1.0.2", vec![nb], true));
    wait_until(CONVERGE, "BIRD<->FRR session", || {
        bird.session_state("fd00:1::2")?;
        frr.session_state("fd00:1::1")
    });
    frr.announce("10.100.0.0/24");
    frr.announce("fd00:100::/48");
    bird.announce("10.101.0.0/24");
    wait_kernel(&a, "10.100.0.0/24", "bird", &["10.1.0.2"]);
    wait_kernel(&a, "fd00:100::/48", "bird", &["fd00:1::2"]);
    wait_rib(&frr, "FRR has BIRD's IPv4 prefix via 10.1.0.1", |r| {
        r.prefix == "10.101.0.0/24" && r.next_hops.contains(&"10.1.0.1".to_string())
    });
}

/// BIRD as route reflector, FRR and GoBGP as its clients on one LAN: checks
/// that the drivers read reflected routes with ORIGINATOR_ID and CLUSTER_LIST
/// (what the kroute route-reflection scenario relies on).
#[test]
fn bird_reflects_between_frr_and_gobgp() {
    let r = netns("birdrr");
    let f = netns("frrc");
    let g = netns("gobgpc");
    let c = netns("birdc");
    let mut lan = common::Lan::new("rr");
    lan.attach(&r, &["10.50.0.1/24"]);
    lan.attach(&f, &["10.50.0.2/24"]);
    lan.attach(&g, &["10.50.0.3/24"]);
    lan.attach(&c, &["10.50.0.4/24"]);
    let client = |addr: &str| {
        spec(
            65001,
            addr,
            vec![PeerNeighbor::new("10.50.0.1", addr, 65001, &[V4])],
            false,
        )
    };
    let mut bird = Bird::start(
        &r,
        spec(
            65001,
            "10.50.0.1",
            vec![
                PeerNeighbor::new("10.50.0.2", "10.50.0.1", 65001, &[V4]),
                PeerNeighbor::new("10.50.0.3", "10.50.0.1", 65001, &[V4]),
                PeerNeighbor::new("10.50.0.4", "10.50.0.1", 65001, &[V4]),
            ],
            false,
        ),
    );
    bird.set_rr_clients(&["10.50.0.2", "10.50.0.3", "10.50.0.4"], "10.255.0.9");
    let mut bird_client = Bird::start(&c, client("10.50.0.4"));
    let mut frr = Frr::start(&f, client("10.50.0.2"));
    let mut gobgp = GoBgp::start(&g, client("10.50.0.3"));
    wait_until(CONVERGE, "RR sessions", || {
        bird.session_state("10.50.0.2")?;
        bird.session_state("10.50.0.3")?;
        bird.session_state("10.50.0.4")
    });
    frr.announce("10.100.0.0/24");
    gobgp.announce("10.101.0.0/24");
    bird_client.announce("10.102.0.0/24");
    wait_rib(
        &bird_client,
        "BIRD client learns FRR's prefix via the reflector",
        |x| {
            x.prefix == "10.100.0.0/24"
                && x.next_hops == ["10.50.0.2"]
                && x.originator_id.as_deref() == Some("10.50.0.2")
                && x.cluster_list == ["10.255.0.9"]
        },
    );
    wait_rib(
        &gobgp,
        "GoBGP learns the BIRD client's prefix via the reflector",
        |x| {
            x.prefix == "10.102.0.0/24"
                && x.next_hops == ["10.50.0.4"]
                && x.originator_id.as_deref() == Some("10.50.0.4")
        },
    );
    wait_rib(&gobgp, "GoBGP learns FRR's prefix via the reflector", |x| {
        x.prefix == "10.100.0.0/24"
            && x.next_hops == ["10.50.0.2"]
            && x.originator_id.as_deref() == Some("10.50.0.2")
            && x.cluster_list == ["10.255.0.9"]
    });
    wait_rib(&frr, "FRR learns GoBGP's prefix via the reflector", |x| {
        x.prefix == "10.101.0.0/24"
            && x.next_hops.contains(&"10.50.0.3".to_string())
            && x.originator_id.as_deref() == Some("10.50.0.3")
            && x.cluster_list == ["10.255.0.9"]
    });
    drop(bird_client);
    drop(gobgp);
    drop(frr);
    drop(bird);
    drop(lan);
}
