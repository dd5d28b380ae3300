//! RFC 8950 extended next hop, both directions, against BIRD 2 and FRR:
//! one global IPv6 session carries IPv4 unicast, the link between kroute
//! and the peer has no IPv4 address at all. The peer's IPv4 routes must
//! land in kroute's kernel `via inet6 ...`, kroute's IPv4 prefix must reach
//! the peer with an IPv6 next hop (and our link-local beside it: the link
//! is shared), and a ping between the two sides' IPv4 loopbacks must cross
//! the IPv6-only link. Needs root and the daemons' Debian packages (see
//! `common/mod.rs`).

mod common;

use common::kroute::{self as k, Kroute};
use common::{link_local, netns, route_via, test_dir, veth, wait_until, CONVERGE};
use labkit::bird::{self as lkbird, BgpProtocol, BirdConfig, BirdSpec, Channel, KernelProtocol};
use labkit::bird::{StaticProtocol, StaticRoute};
use labkit::frr::{self as lkfrr, BgpdConfig, FrrSpec, Neighbor};
use labkit::rib::BgpPath;
use labkit::{Afi, Netns, Veth};

const KROUTE_ASN: u32 = 65001;
const PEER_ASN: u32 = 65002;
const K6: &str = "fd00:16::1";
const P6: &str = "fd00:16::2";
/// kroute's IPv4 loopback, advertised as a /32.
const K_LO: &str = "10.16.1.1";
/// The peer's IPv4 loopback, announced by the peer.
const P_LO: &str = "10.16.2.1";
const V4: &str = "ipv4-unicast";
const V6: &str = "ipv6-unicast";

/// kroute and a peer namespace joined by an IPv6-only link, each with an
/// IPv4 loopback address; kroute runs with `extendedNextHop: true` towards
/// the peer's global address and advertises its loopback.
struct Topo {
    // Field order = drop order: kroute before its namespace.
    kroute: Kroute,
    link: Veth,
    k_ns: Netns,
    p_ns: Netns,
}

fn topo(tag: &str) -> Topo {
    let k_ns = netns(&format!("k{tag}"));
    let p_ns = netns(&format!("p{tag}"));
    let link = veth(&k_ns, &p_ns, &[&format!("{K6}/64")], &[&format!("{P6}/64")]);
    k_ns.add_addr("lo", &format!("{K_LO}/32"))
        .unwrap_or_else(|e| panic!("{e}"));
    p_ns.add_addr("lo", &format!("{P_LO}/32"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut cfg = k::config(KROUTE_ASN, "10.255.16.1");
    let mut kp = k::peer("up", P6, PEER_ASN, &[V4, V6]);
    kp.extended_next_hop = Some(true);
    cfg.peers.push(kp);
    cfg.advertise = k::advertise(&[&format!("{K_LO}/32")]);
    let kroute = Kroute::start(&k_ns, cfg);
    Topo {
        k_ns,
        p_ns,
        link,
        kroute,
    }
}

impl Topo {
    /// The session is up and both sides agreed on RFC 8950.
    fn wait_negotiated(&self, peer_up: impl Fn() -> Result<(), String>) {
        wait_until(CONVERGE, "the IPv6 session", || {
            self.kroute.established("up")?;
            peer_up()
        });
        let detail = self
            .kroute
            .cli_ok(&["show", "neighbor", "up", "-o", "json"]);
        let v: serde_json::Value = serde_json::from_str(&detail).expect("show neighbor JSON");
        assert_eq!(
            v["extendedNextHop"],
            serde_json::json!({"advertised": true, "negotiated": true}),
            "{detail}"
        );
        let text = self.kroute.cli_ok(&["show", "neighbor", "up"]);
        assert!(
            text.contains("Extended next hop") && text.contains("negotiated: yes"),
            "{text}"
        );
    }

    /// The peer's loopback is in kroute's kernel via an IPv6 gateway: the
    /// link-local address the peer sent beside its global one (on-link),
    /// on the link's interface.
    fn wait_peer_route_via_inet6(&self) {
        let p_ll = link_local(&self.p_ns, &self.link.dev_b);
        let prefix = format!("{P_LO}/32");
        wait_until(
            CONVERGE,
            &format!("{prefix} in kroute's kernel via inet6"),
            || match route_via(&self.k_ns, &prefix) {
                Some(nhs) if nhs.len() == 1 && nhs[0].0 == p_ll && nhs[0].1 == self.link.dev_a => {
                    Ok(())
                }
                other => Err(format!(
                    "{other:?}; kernel: {}",
                    common::kernel::describe(&self.k_ns)
                )),
            },
        );
        let raw = self
            .k_ns
            .ip(&["-4", "route", "show", "exact", &prefix, "proto", "bgp"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(raw.contains("via inet6"), "{raw}");
    }

    /// `explain` shows the next hop as the peer sent it (its global and
    /// link-local addresses) and as installed (the link-local on the
    /// link's interface, `via inet6`), in text and JSON.
    fn assert_explain_next_hops(&self) {
        let p_ll = link_local(&self.p_ns, &self.link.dev_b);
        let prefix = format!("{P_LO}/32");
        let sent = format!("sent: {P6} {p_ll}");
        let installed = format!("installed: via inet6 {p_ll} dev {}", self.link.dev_a);
        wait_until(
            CONVERGE,
            "explain to show the next hop sent and installed",
            || {
                let text = self.kroute.cli_ok(&["explain", &prefix]);
                if text.contains(&sent) && text.contains(&installed) {
                    Ok(text)
                } else {
                    Err(format!("want {sent:?} and {installed:?} in:\n{text}"))
                }
            },
        );
        let json = self.kroute.cli_ok(&["explain", &prefix, "-o", "json"]);
        let v: serde_json::Value = serde_json::from_str(&json).expect("explain JSON");
        let e = &v;
        assert_eq!(
            e["paths"][0]["sentNextHop"],
            serde_json::json!(format!("{P6} {p_ll}")),
            "{json}"
        );
        assert_eq!(
            e["kernelNextHops"],
            serde_json::json!([format!("via inet6 {p_ll} dev {}", self.link.dev_a)]),
            "{json}"
        );
    }

    /// kroute's loopback reached the peer with our IPv6 next hop and our
    /// link-local beside it (RFC 2545 §3 on a shared link).
    fn wait_our_route_at_peer(&self, rib: impl Fn() -> Vec<BgpPath>) {
        let k_ll = link_local(&self.k_ns, &self.link.dev_a);
        let prefix = format!("{K_LO}/32");
        wait_until(
            CONVERGE,
            &format!("{prefix} at the peer with next hops {K6} and {k_ll}"),
            || {
                let rib = rib();
                match rib.iter().find(|r| r.prefix == prefix) {
                    Some(r)
                        if r.next_hops.iter().any(|n| n == K6) && r.next_hops.contains(&k_ll) =>
                    {
                        Ok(())
                    }
                    _ => Err(labkit::rib::describe(&rib)),
                }
            },
        );
    }

    /// A ping from kroute's loopback to the peer's crosses the IPv6-only
    /// link both ways (each side forwards IPv4 via an IPv6 gateway).
    fn wait_ping(&self) {
        wait_until(CONVERGE, &format!("ping {P_LO} from {K_LO}"), || {
            let out = self
                .k_ns
                .output(&["ping", "-c", "1", "-W", "1", "-I", K_LO, P_LO])
                .map_err(|e| e.to_string())?;
            if out.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&out.stdout).into_owned())
            }
        });
    }
}

/// A BIRD peer with `extended next hop on` towards kroute at `neighbor`
/// from `local`, installing its BGP routes in its kernel and announcing
/// `statics` (blackholes).
fn bird_config(router_id: &str, local: &str, neighbor: &str, statics: &[&str]) -> String {
    let ipv4 = Channel {
        options: vec!["extended next hop on;".into()],
        ..Channel::all(Afi::Ipv4)
    };
    BirdConfig {
        router_id: router_id.into(),
        kernel: [Afi::Ipv4, Afi::Ipv6]
            .map(|afi| KernelProtocol {
                name: format!("k_{}", afi.name()),
                afi,
                import: "none".into(),
                export: "where source = RTS_BGP".into(),
                merge_paths: false,
            })
            .to_vec(),
        statics: [Afi::Ipv4, Afi::Ipv6]
            .map(|afi| StaticProtocol {
                name: format!("s_{}", afi.name()),
                afi,
                routes: statics
                    .iter()
                    .filter(|p| Afi::of(p) == afi)
                    .map(|p| StaticRoute {
                        prefix: p.to_string(),
                        attrs: vec![],
                    })
                    .collect(),
            })
            .to_vec(),
        bgp: vec![BgpProtocol {
            name: "up".into(),
            local_address: local.into(),
            local_as: PEER_ASN,
            neighbor_address: neighbor.into(),
            neighbor_as: KROUTE_ASN,
            options: vec![
                "connect delay time 1;".into(),
                "connect retry time 2;".into(),
                "error wait time 1, 4;".into(),
                "hold time 9;".into(),
                "keepalive time 3;".into(),
            ],
            channels: vec![ipv4, Channel::all(Afi::Ipv6)],
        }],
        ..Default::default()
    }
    .render()
}

fn bird_up(bird: &lkbird::Bird) -> Result<(), String> {
    match bird.established("up") {
        Ok(r) => r,
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn bird_ipv4_over_ipv6_next_hops_both_ways() {
    let t = topo("enhb");
    let dir = test_dir("enh-bird");
    let config = bird_config("10.255.16.2", P6, K6, &[&format!("{P_LO}/32")]);
    let bird = lkbird::Bird::start(&t.p_ns, &BirdSpec::new(dir.path(), config))
        .unwrap_or_else(|e| panic!("{e}"));
    t.wait_negotiated(|| bird_up(&bird));
    t.wait_peer_route_via_inet6();
    t.assert_explain_next_hops();
    t.wait_our_route_at_peer(|| bird.rib().unwrap_or_default());
    t.wait_ping();
    drop(bird);
}

/// Next hops (gateway, dev) of kroute's route for `prefix`, sorted.
fn sorted_via(ns: &Netns, prefix: &str) -> Option<Vec<(String, String)>> {
    route_via(ns, prefix).map(|mut v| {
        v.sort();
        v
    })
}

/// Two uplinks to two BIRD routers announcing the same IPv4 and IPv6
/// prefixes, each next hop global + link-local: kroute installs both
/// families ECMP via the routers' link-local addresses, each with its
/// interface (IPv4 `via inet6`); one uplink down, the routes keep the
/// other.
#[test]
fn ecmp_over_two_links_via_link_local_next_hops() {
    const E4: &str = "10.16.9.0/24";
    const E6: &str = "fd00:16:9::/64";
    let k_ns = netns("kenhe");
    let mut cfg = k::config(KROUTE_ASN, "10.255.16.1");
    let mut links = Vec::new();
    let mut birds = Vec::new();
    let mut dirs = Vec::new();
    let mut nss = Vec::new();
    for i in 1..=2 {
        let p_ns = netns(&format!("penhe{i}"));
        let (kaddr, paddr) = (format!("fd00:16:{i}::1"), format!("fd00:16:{i}::2"));
        let link = veth(
            &k_ns,
            &p_ns,
            &[&format!("{kaddr}/64")],
            &[&format!("{paddr}/64")],
        );
        let mut kp = k::peer(&format!("up{i}"), &paddr, PEER_ASN, &[V4, V6]);
        kp.extended_next_hop = Some(true);
        cfg.peers.push(kp);
        let dir = test_dir(&format!("enh-ecmp{i}"));
        let conf = bird_config(&format!("10.255.16.{}", 10 + i), &paddr, &kaddr, &[E4, E6]);
        let bird = lkbird::Bird::start(&p_ns, &BirdSpec::new(dir.path(), conf))
            .unwrap_or_else(|e| panic!("{e}"));
        let ll = link_local(&p_ns, &link.dev_b);
        links.push((link, ll));
        birds.push(bird);
        dirs.push(dir);
        nss.push(p_ns);
    }
    let kroute = Kroute::start(&k_ns, cfg);
    wait_until(CONVERGE, "both sessions", || {
        kroute.established("up1")?;
        kroute.established("up2")?;
        birds.iter().try_for_each(bird_up)
    });
    let mut both: Vec<(String, String)> = links
        .iter()
        .map(|(l, ll)| (ll.clone(), l.dev_a.clone()))
        .collect();
    both.sort();
    for prefix in [E4, E6] {
        wait_until(
            CONVERGE,
            &format!("{prefix} ECMP via {both:?}"),
            || match sorted_via(&k_ns, prefix) {
                Some(v) if v == both => Ok(()),
                other => Err(format!(
                    "{other:?}; kernel: {}",
                    common::kernel::describe(&k_ns)
                )),
            },
        );
    }
    // `show fib` names the BGP next hop as sent (global + link-local) and
    // the kernel one as installed (link-local, interface).
    let fib = kroute.cli_ok(&["show", "fib"]);
    assert!(
        fib.contains(&format!("via {} dev {}", links[0].1, links[0].0.dev_a)),
        "{fib}"
    );
    // Uplink 1 loses its carrier: both families keep uplink 2 only.
    k_ns.set_link(&links[0].0.dev_a, false)
        .unwrap_or_else(|e| panic!("{e}"));
    let rest = vec![(links[1].1.clone(), links[1].0.dev_a.clone())];
    for prefix in [E4, E6] {
        wait_until(
            CONVERGE,
            &format!("{prefix} via {rest:?} only"),
            || match sorted_via(&k_ns, prefix) {
                Some(v) if v == rest => Ok(()),
                other => Err(format!(
                    "{other:?}; kernel: {}",
                    common::kernel::describe(&k_ns)
                )),
            },
        );
    }
    drop(kroute);
    drop(birds);
    drop(links);
}

#[test]
fn frr_ipv4_over_ipv6_next_hops_both_ways() {
    let t = topo("enhf");
    // FRR's IPv6 sessions wait for the link-local address (veth() did).
    let bgpd = BgpdConfig {
        hostname: t.p_ns.name().to_string(),
        asn: PEER_ASN,
        router_id: "10.255.16.2".into(),
        timers: Some((3, 9)),
        graceful_restart_disable: true,
        neighbors: vec![Neighbor {
            address: K6.into(),
            remote_as: KROUTE_ASN,
            connect_timer: Some(2),
            update_source: Some(P6.into()),
            advertisement_interval: Some(0),
            extended_nexthop: true,
            families: vec![(Afi::Ipv4, vec![]), (Afi::Ipv6, vec![])],
            ..Default::default()
        }],
        ..Default::default()
    };
    let frr = lkfrr::Frr::start(&t.p_ns, &FrrSpec::new(t.p_ns.name(), bgpd.render()))
        .unwrap_or_else(|e| panic!("{e}"));
    frr.vtysh(&[
        "configure terminal",
        &format!("router bgp {PEER_ASN}"),
        "address-family ipv4 unicast",
        &format!("network {P_LO}/32"),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    t.wait_negotiated(|| match frr.neighbor_state(K6) {
        Ok(Some(s)) if s == "Established" => Ok(()),
        other => Err(format!("{other:?}")),
    });
    t.wait_peer_route_via_inet6();
    t.assert_explain_next_hops();
    t.wait_our_route_at_peer(|| frr.rib().unwrap_or_default());
    t.wait_ping();
    // FRR installed our IPv4 route via an IPv6 gateway too.
    let raw = t
        .p_ns
        .ip(&["-4", "route", "show", "exact", &format!("{K_LO}/32")])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(raw.contains("via inet6"), "{raw}");
    drop(frr);
}
