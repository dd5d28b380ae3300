//! The interop scenarios, generic over the peer daemon. Each `interop_*.rs`
//! file instantiates them for one daemon.
//!
//! Topology for point-to-point scenarios: kroute in namespace K; peer i
//! (1-based) in its own namespace, linked to K by a veth with
//! K = 10.i.0.1/24 + fd00:i::1/64, peer = 10.i.0.2/24 + fd00:i::2/64.
//! Per peer daemon, one session over IPv4 for ipv4-unicast (kroute peer
//! `<kind><i>v4`) and one over IPv6 for ipv6-unicast (`<kind><i>v6`).

use super::kroute::{self as k, Kroute};
use super::peer::{describe_rib, PeerDaemon, PeerNeighbor, PeerSpec};
use super::{kernel, link_local, netns, route_via, veth, wait_until, Lan, CONVERGE};
use kroute::config::Config;
use labkit::Netns;
use rib::policy::PolicyChain;
use std::collections::BTreeSet;

pub const KROUTE_ASN: u32 = 65001;
pub const PEER_ASN: u32 = 65002;
pub const V4: &str = "ipv4-unicast";
pub const V6: &str = "ipv6-unicast";

/// Prefixes the peers announce.
pub const P4: &str = "10.100.0.0/24";
pub const P6: &str = "fd00:100::/48";
/// Control prefixes (announced alongside, must stay).
pub const C4: &str = "10.100.9.0/24";
pub const C6: &str = "fd00:109::/48";
/// A prefix announced with kroute's ASN in the AS_PATH.
pub const LOOP4: &str = "10.101.0.0/24";
/// kroute's own `advertise` prefixes.
pub const ADV4: &str = "192.0.2.0/24";
pub const ADV6: &str = "fd00:beef::/48";

pub struct Link {
    pub k_dev: String,
    pub p_dev: String,
    pub k4: String,
    pub p4: String,
    pub k6: String,
    pub p6: String,
}

/// Which sessions a point-to-point topology runs to each peer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sessions {
    Ipv4Only,
    /// One over IPv4 for ipv4-unicast, one over IPv6 for ipv6-unicast.
    PerFamily,
    /// One over IPv4 for both.
    BothOverIpv4,
}

pub struct Topo<P: PeerDaemon> {
    // Field order is drop order: daemons first, namespaces last.
    pub kroute: Kroute,
    pub peers: Vec<P>,
    pub peer_ns: Vec<Netns>,
    pub links: Vec<Link>,
    pub k_ns: Netns,
}

impl<P: PeerDaemon> Topo<P> {
    /// `n` peers (same ASN `PEER_ASN`), sessions over IPv4 and (if `v6`) IPv6.
    /// `tweak` may change kroute's config before it starts.
    pub fn p2p(tag: &str, n: usize, v6: bool, tweak: impl FnOnce(&mut Config)) -> Topo<P> {
        let sessions = if v6 {
            Sessions::PerFamily
        } else {
            Sessions::Ipv4Only
        };
        Self::p2p_with(tag, n, sessions, tweak)
    }

    /// `n` peers, one session each over IPv4 carrying both families: the
    /// peer's IPv6 routes come with its global IPv6 address as the
    /// MP_REACH next hop (RFC 4760 §3), not the session's address.
    pub fn p2p_both_over_ipv4(tag: &str, n: usize, tweak: impl FnOnce(&mut Config)) -> Topo<P> {
        Self::p2p_with(tag, n, Sessions::BothOverIpv4, tweak)
    }

    fn p2p_with(
        tag: &str,
        n: usize,
        sessions: Sessions,
        tweak: impl FnOnce(&mut Config),
    ) -> Topo<P> {
        let k_ns = netns(&format!("k{tag}"));
        let mut cfg = k::config(KROUTE_ASN, "10.255.0.1");
        let mut peer_ns = Vec::new();
        let mut links = Vec::new();
        let mut specs = Vec::new();
        for i in 1..=n {
            let ns = netns(&format!("{}{i}{tag}", P::KIND));
            let l = Link {
                k_dev: String::new(),
                p_dev: String::new(),
                k4: format!("10.{i}.0.1"),
                p4: format!("10.{i}.0.2"),
                k6: format!("fd00:{i}::1"),
                p6: format!("fd00:{i}::2"),
            };
            let v = veth(
                &k_ns,
                &ns,
                &[&format!("{}/24", l.k4), &format!("{}/64", l.k6)],
                &[&format!("{}/24", l.p4), &format!("{}/64", l.p6)],
            );
            let l = Link {
                k_dev: v.dev_a,
                p_dev: v.dev_b,
                ..l
            };
            let families: &[&'static str] = match sessions {
                Sessions::BothOverIpv4 => &[V4, V6],
                _ => &[V4],
            };
            let mut v4 = PeerNeighbor::new(&l.k4, &l.p4, KROUTE_ASN, families);
            if sessions == Sessions::BothOverIpv4 {
                v4.next_hop_ipv6 = Some(l.p6.clone());
            }
            let mut neighbors = vec![v4];
            cfg.peers.push(k::peer(
                &format!("{}{i}v4", P::KIND),
                &l.p4,
                PEER_ASN,
                families,
            ));
            if sessions == Sessions::PerFamily {
                neighbors.push(PeerNeighbor::new(&l.k6, &l.p6, KROUTE_ASN, &[V6]));
                cfg.peers.push(k::peer(
                    &format!("{}{i}v6", P::KIND),
                    &l.p6,
                    PEER_ASN,
                    &[V6],
                ));
            }
            specs.push(PeerSpec {
                asn: PEER_ASN,
                router_id: l.p4.clone(),
                neighbors,
                install_kernel: true,
            });
            peer_ns.push(ns);
            links.push(l);
        }
        tweak(&mut cfg);
        let kroute = Kroute::start(&k_ns, cfg);
        let peers = specs
            .into_iter()
            .zip(&peer_ns)
            .map(|(s, ns)| P::start(ns, s))
            .collect();
        Topo {
            kroute,
            peers,
            peer_ns,
            links,
            k_ns,
        }
    }

    pub fn v4_name(i: usize) -> String {
        format!("{}{i}v4", P::KIND)
    }

    pub fn v6_name(i: usize) -> String {
        format!("{}{i}v6", P::KIND)
    }

    /// Gateways kroute may legitimately use for a route from peer `i` (1-based):
    /// its IPv4 address, or for IPv6 its global or link-local address.
    pub fn gateways(&self, i: usize, prefix: &str) -> Vec<String> {
        let l = &self.links[i - 1];
        if prefix.contains(':') {
            vec![l.p6.clone(), link_local(&self.peer_ns[i - 1], &l.p_dev)]
        } else {
            vec![l.p4.clone()]
        }
    }

    /// Wait until kroute's kernel routes `prefix` via exactly the peers `from`
    /// (1-based), one next hop each, on the right devices.
    pub fn wait_kernel_via(&self, prefix: &str, from: &[usize]) {
        let what = format!("{prefix} in kroute's kernel via peers {from:?}");
        wait_until(CONVERGE, &what, || {
            let nhs = route_via(&self.k_ns, prefix)
                .ok_or_else(|| format!("no route; kernel has: {}", kernel::describe(&self.k_ns)))?;
            let ok = nhs.len() == from.len()
                && from.iter().all(|&i| {
                    let gws = self.gateways(i, prefix);
                    nhs.iter()
                        .any(|(gw, dev)| gws.contains(gw) && *dev == self.links[i - 1].k_dev)
                });
            if ok {
                Ok(())
            } else {
                Err(format!("{prefix} via {nhs:?}"))
            }
        })
    }

    pub fn wait_kernel_absent(&self, prefix: &str) {
        kernel::wait_absent(&self.k_ns, prefix);
    }

    /// Wait for all sessions (both sides) to be Established.
    pub fn wait_established(&self) {
        let names: Vec<String> = self
            .kroute
            .config
            .peers
            .iter()
            .map(|p| p.name.clone())
            .collect();
        wait_until(CONVERGE, "kroute sessions Established", || {
            names.iter().try_for_each(|n| self.kroute.established(n))
        });
        wait_until(CONVERGE, "peer sessions Established", || {
            for (i, p) in self.peers.iter().enumerate() {
                let l = &self.links[i];
                p.session_state(&l.k4)?;
                if self
                    .kroute
                    .config
                    .peers
                    .iter()
                    .any(|kp| kp.address.to_string() == l.p6)
                {
                    p.session_state(&l.k6)?;
                }
            }
            Ok(())
        });
    }
}

// ---------------------------------------------------------------- scenarios

pub fn session_up_ipv4_and_ipv6<P: PeerDaemon>() {
    let t = Topo::<P>::p2p("up", 1, true, |_| {});
    t.wait_established();
    // Every field of the view is there: the typed client rejects a
    // missing one.
    for n in t.kroute.neighbors() {
        assert_eq!(n.asn, PEER_ASN, "{n:?}");
    }
}

pub fn routes_received_into_kernel<P: PeerDaemon>() {
    let mut t = Topo::<P>::p2p("rx", 1, true, |_| {});
    t.peers[0].announce(P4);
    t.peers[0].announce(P6);
    t.wait_kernel_via(P4, &[1]);
    t.wait_kernel_via(P6, &[1]);
    for (prefix, peer) in [(P4, Topo::<P>::v4_name(1)), (P6, Topo::<P>::v6_name(1))] {
        let routes = t.kroute.routes(prefix);
        let r = routes
            .iter()
            .find(|r| r.prefix.to_string() == prefix && r.best)
            .unwrap_or_else(|| panic!("show routes {prefix}: no best path: {routes:?}"));
        assert!(
            r.installed,
            "best path for {prefix} not marked installed: {r:?}"
        );
        assert_eq!(r.peer, peer, "{r:?}");
        assert_eq!(
            r.as_path.asns().collect::<Vec<_>>(),
            vec![PEER_ASN],
            "{r:?}"
        );
        let gws = t.gateways(1, prefix);
        assert!(
            r.next_hops.iter().any(|nh| gws.contains(nh)),
            "{prefix} next hops {:?}, want one of {gws:?}",
            r.next_hops
        );
    }
    let n = t.kroute.neighbor(&Topo::<P>::v4_name(1)).unwrap();
    assert!(n.prefixes_received >= 1, "prefixesReceived: {n:?}");
}

pub fn advertised_prefixes_reach_peer<P: PeerDaemon>() {
    let t = Topo::<P>::p2p("adv", 1, true, |c| {
        c.advertise = k::advertise(&[ADV4, ADV6])
    });
    let (k4, k6) = (t.links[0].k4.clone(), t.links[0].k6.clone());
    for (prefix, nh) in [(ADV4, k4), (ADV6, k6)] {
        wait_until(
            CONVERGE,
            &format!("{prefix} in the {} peer's RIB via {nh}", P::KIND),
            || {
                let rib = t.peers[0].rib();
                let ok = rib.iter().any(|r| {
                    r.prefix == prefix && r.next_hops.contains(&nh) && r.as_path == [KROUTE_ASN]
                });
                if ok {
                    Ok(())
                } else {
                    Err(describe_rib(&rib))
                }
            },
        );
    }
    if P::INSTALLS_KERNEL {
        // The peer can use it: its kernel routes the prefix towards kroute.
        let ns = &t.peer_ns[0];
        wait_until(CONVERGE, "peer kernel route to kroute's prefix", || {
            let all = kernel::kernel_routes_proto(ns, 4, "all");
            match all.iter().find(|r| r.dst == ADV4) {
                Some(r) if r.nexthops.iter().any(|(gw, _)| *gw == t.links[0].k4) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
    }
}

pub fn ecmp_two_peers_multipath<P: PeerDaemon>() {
    let mut t = Topo::<P>::p2p("ecmp", 2, true, |c| c.router.max_paths = 4);
    for p in t.peers.iter_mut() {
        p.announce(P4);
        p.announce(P6);
    }
    t.wait_kernel_via(P4, &[1, 2]);
    t.wait_kernel_via(P6, &[1, 2]);
    let best: BTreeSet<String> = t
        .kroute
        .routes(P4)
        .iter()
        .filter(|r| r.prefix.to_string() == P4 && r.installed)
        .map(|r| r.peer.clone())
        .collect();
    assert_eq!(
        best.len(),
        2,
        "show routes {P4}: want both peers' paths installed, got {best:?}"
    );
}

pub fn withdraw_removes_from_kernel<P: PeerDaemon>() {
    let mut t = Topo::<P>::p2p("wd", 1, true, |_| {});
    for p in [P4, P6, C4, C6] {
        t.peers[0].announce(p);
    }
    for p in [P4, P6, C4, C6] {
        t.wait_kernel_via(p, &[1]);
    }
    t.peers[0].withdraw(P4);
    t.peers[0].withdraw(P6);
    t.wait_kernel_absent(P4);
    t.wait_kernel_absent(P6);
    // Only the withdrawn prefixes left.
    t.wait_kernel_via(C4, &[1]);
    t.wait_kernel_via(C6, &[1]);
    let left: Vec<_> = t
        .kroute
        .routes(P4)
        .into_iter()
        .filter(|r| r.prefix.to_string() == P4)
        .collect();
    assert!(
        left.is_empty(),
        "show routes still lists withdrawn {P4}: {left:?}"
    );
}

pub fn peer_stopped_routes_leave_kernel<P: PeerDaemon>() {
    let mut t = Topo::<P>::p2p("stop", 1, true, |_| {});
    t.peers[0].announce(P4);
    t.peers[0].announce(P6);
    t.wait_kernel_via(P4, &[1]);
    t.wait_kernel_via(P6, &[1]);
    t.peers[0].kill();
    for name in [Topo::<P>::v4_name(1), Topo::<P>::v6_name(1)] {
        wait_until(
            CONVERGE,
            &format!("kroute neighbor {name} to leave Established"),
            || match t.kroute.established(&name) {
                Ok(()) => Err("still Established".to_string()),
                Err(_) => Ok(()),
            },
        );
    }
    t.wait_kernel_absent(P4);
    t.wait_kernel_absent(P6);
}

pub fn allow_as_in<P: PeerDaemon>() {
    let mut t = Topo::<P>::p2p("aai", 1, false, |_| {});
    // The looped path and a control. The peer may send them in either
    // order, so wait until kroute has the looped one (explain names the
    // loop), then check it never reached the kernel.
    t.peers[0].announce_prepend(LOOP4, &[KROUTE_ASN]);
    t.peers[0].announce(C4);
    t.wait_kernel_via(C4, &[1]);
    let text = wait_until(
        CONVERGE,
        &format!("{LOOP4} rejected as an AS path loop"),
        || {
            let text = t.kroute.explain_text(LOOP4);
            if text.contains("AS path loop") {
                Ok(text)
            } else {
                Err(format!(
                    "explain {LOOP4} does not name the AS path loop:\n{text}"
                ))
            }
        },
    );
    assert_eq!(
        route_via(&t.k_ns, LOOP4),
        None,
        "{LOOP4} (AS path with {KROUTE_ASN}) installed without allowAsIn"
    );
    assert!(
        text.contains("allowAsIn"),
        "explain {LOOP4} does not mention allowAsIn:\n{text}"
    );

    k::peer_mut(&mut t.kroute.config, &Topo::<P>::v4_name(1)).allow_as_in = 1;
    t.kroute.reload();
    t.wait_kernel_via(LOOP4, &[1]);
    t.wait_kernel_via(C4, &[1]);
}

/// One session over IPv6 carrying both families; kroute announces IPv4
/// routes with `nextHopIpv4` (its IPv4 address on the link).
pub fn both_families_one_ipv6_session<P: PeerDaemon>() {
    let k_ns = netns("kboth");
    let p_ns = netns(&format!("{}both", P::KIND));
    let l = veth(
        &k_ns,
        &p_ns,
        &["10.1.0.1/24", "fd00:1::1/64"],
        &["10.1.0.2/24", "fd00:1::2/64"],
    );
    let mut cfg = k::config(KROUTE_ASN, "10.255.0.1");
    let mut kp = k::peer("both", "fd00:1::2", PEER_ASN, &[V4, V6]);
    kp.next_hop_ipv4 = Some("10.1.0.1".parse().unwrap());
    cfg.peers.push(kp);
    cfg.advertise = k::advertise(&[ADV4, ADV6]);
    let kroute = Kroute::start(&k_ns, cfg);
    let mut n = PeerNeighbor::new("fd00:1::1", "fd00:1::2", KROUTE_ASN, &[V4, V6]);
    n.next_hop_ipv4 = Some("10.1.0.2".into());
    let mut peer = P::start(
        &p_ns,
        PeerSpec {
            asn: PEER_ASN,
            router_id: "10.1.0.2".into(),
            neighbors: vec![n],
            install_kernel: false,
        },
    );
    wait_until(CONVERGE, "the dual-family IPv6 session", || {
        kroute.established("both")?;
        peer.session_state("fd00:1::1")
    });
    for (prefix, nh) in [(ADV4, "10.1.0.1"), (ADV6, "fd00:1::1")] {
        wait_until(
            CONVERGE,
            &format!("{prefix} in the {} peer's RIB via {nh}", P::KIND),
            || {
                let rib = peer.rib();
                if rib
                    .iter()
                    .any(|r| r.prefix == prefix && r.next_hops.iter().any(|x| x == nh))
                {
                    Ok(())
                } else {
                    Err(describe_rib(&rib))
                }
            },
        );
    }
    peer.announce(P6);
    let ll = link_local(&p_ns, &l.dev_b);
    let mut expect = vec![(P6, vec!["fd00:1::2".to_string(), ll])];
    if P::IPV4_NEXT_HOP_OVER_IPV6 {
        peer.announce(P4);
        expect.push((P4, vec!["10.1.0.2".to_string()]));
    }
    for (prefix, gws) in expect {
        wait_until(
            CONVERGE,
            &format!("{prefix} in kroute's kernel via {gws:?}"),
            || match route_via(&k_ns, prefix) {
                Some(nhs) if nhs.len() == 1 && gws.contains(&nhs[0].0) && nhs[0].1 == l.dev_a => {
                    Ok(())
                }
                other => Err(format!("{other:?}; kernel: {}", kernel::describe(&k_ns))),
            },
        );
    }
    drop(peer);
    drop(kroute);
}

/// kroute reflects between two iBGP clients on a shared LAN 10.50.0.0/24
/// (kroute .1, client A .2, client B .3).
pub fn route_reflection_two_clients<P: PeerDaemon>() {
    let k_ns = netns("krr");
    let a_ns = netns(&format!("{}rra", P::KIND));
    let b_ns = netns(&format!("{}rrb", P::KIND));
    let mut lan = Lan::new("rr");
    lan.attach(&k_ns, &["10.50.0.1/24"]);
    lan.attach(&a_ns, &["10.50.0.2/24"]);
    lan.attach(&b_ns, &["10.50.0.3/24"]);
    let mut cfg = k::config(KROUTE_ASN, "10.255.0.1");
    cfg.router.cluster_id = Some("10.255.0.1".parse().unwrap());
    for (name, addr) in [("rrca", "10.50.0.2"), ("rrcb", "10.50.0.3")] {
        let mut p = k::peer(name, addr, KROUTE_ASN, &[V4]);
        // iBGP: unset means all.
        p.import = PolicyChain::Unset;
        p.export = PolicyChain::Unset;
        p.route_reflector_client = true;
        cfg.peers.push(p);
    }
    let kroute = Kroute::start(&k_ns, cfg);
    let client = |ns: &Netns, addr: &str| {
        P::start(
            ns,
            PeerSpec {
                asn: KROUTE_ASN,
                router_id: addr.into(),
                neighbors: vec![PeerNeighbor::new("10.50.0.1", addr, KROUTE_ASN, &[V4])],
                install_kernel: false,
            },
        )
    };
    let mut a = client(&a_ns, "10.50.0.2");
    let b = client(&b_ns, "10.50.0.3");
    wait_until(CONVERGE, "kroute sessions with both clients", || {
        kroute.established("rrca")?;
        kroute.established("rrcb")
    });
    a.announce(P4);
    wait_until(
        CONVERGE,
        &format!("client B to learn {P4} reflected from A"),
        || {
            let rib = b.rib();
            let ok = rib.iter().any(|r| {
                r.prefix == P4
                    && r.next_hops.iter().any(|nh| nh == "10.50.0.2")
                    && r.as_path.is_empty()
                    && r.originator_id.as_deref() == Some("10.50.0.2")
                    && r.cluster_list.iter().any(|c| c == "10.255.0.1")
            });
            if ok {
                Ok(())
            } else {
                Err(describe_rib(&rib))
            }
        },
    );
    // Drop order: daemons before namespaces.
    drop(b);
    drop(a);
    drop(kroute);
    drop(lan);
}
