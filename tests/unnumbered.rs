//! BGP unnumbered (`peers[].interface`): sessions over links with no
//! address but the kernel's IPv6 link-local ones. kroute finds the
//! neighbour from its router advertisements (and sends its own, which
//! FRR needs), one IPv6 session carries both families (RFC 8950 on by
//! default), IPv4 routes land `via inet6 fe80::… dev IF`, and pings cross.
//! Against FRR (`neighbor IF interface remote-as external`), kroute to
//! kroute, and ECMP over two unnumbered uplinks with one going down.
//! Needs root and FRR (see `common/mod.rs`).

mod common;

use common::kroute::{self as k, Kroute};
use common::{link_local, netns, route_via, veth, wait_until, CONVERGE};
use kroute::config::{Config, Peer, PeerAsn};
use labkit::frr::{self as lkfrr, FrrSpec};
use labkit::rib::BgpPath;
use labkit::{Netns, Veth};

const V4: &str = "ipv4-unicast";
const V6: &str = "ipv6-unicast";
const FRR_ASN: u32 = 65002;

/// An interface peer on `dev` accepting any external AS, both families.
fn iface_peer(name: &str, dev: &str) -> Peer {
    Peer {
        interface: Some(dev.to_string()),
        asn: PeerAsn::External,
        ..k::peer(name, "::", 1, &[V4, V6])
    }
}

/// A kroute config advertising its loopbacks `lo4`/32 and `lo6`/128.
fn kroute_config(asn: u32, router_id: &str, lo4: &str, lo6: &str) -> Config {
    let mut cfg = k::config(asn, router_id);
    cfg.advertise = k::advertise(&[&format!("{lo4}/32"), &format!("{lo6}/128")]);
    cfg
}

fn add_loopbacks(ns: &Netns, lo4: &str, lo6: &str) {
    for a in [format!("{lo4}/32"), format!("{lo6}/128")] {
        ns.add_addr("lo", &a).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// FRR with unnumbered neighbours on `devs`, announcing `networks`.
fn frr_config(hostname: &str, router_id: &str, devs: &[&str], networks: &[&str]) -> String {
    let mut c = format!(
        "frr defaults traditional\nhostname {hostname}\n!\nrouter bgp {FRR_ASN}\n \
         bgp router-id {router_id}\n no bgp ebgp-requires-policy\n no bgp network import-check\n \
         bgp graceful-restart-disable\n timers bgp 3 9\n"
    );
    for d in devs {
        c += &format!(
            " neighbor {d} interface remote-as external\n neighbor {d} timers connect 2\n \
             neighbor {d} advertisement-interval 0\n"
        );
    }
    for afi in ["ipv4", "ipv6"] {
        c += &format!(" address-family {afi} unicast\n");
        for n in networks
            .iter()
            .filter(|n| n.contains(':') == (afi == "ipv6"))
        {
            c += &format!("  network {n}\n");
        }
        for d in devs {
            c += &format!("  neighbor {d} activate\n");
        }
        c += " exit-address-family\n";
    }
    c + "!\n"
}

/// `prefix` in `ns`'s kernel via exactly `want` (gateway, dev), sorted.
fn wait_via(ns: &Netns, prefix: &str, want: &[(String, String)]) {
    let mut want = want.to_vec();
    want.sort();
    wait_until(CONVERGE, &format!("{prefix} via {want:?}"), || {
        let mut got = route_via(ns, prefix).unwrap_or_default();
        got.sort();
        if got == want {
            Ok(())
        } else {
            Err(format!("{got:?}; kernel: {}", common::kernel::describe(ns)))
        }
    });
}

/// An IPv4 route of `ns`'s kernel for `prefix` goes via an IPv6 gateway.
fn assert_via_inet6(ns: &Netns, prefix: &str) {
    let raw = ns
        .ip(&["-4", "route", "show", "exact", prefix])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(raw.contains("via inet6 fe80:"), "{raw}");
}

fn wait_ping(ns: &Netns, from: &str, to: &str) {
    wait_until(CONVERGE, &format!("ping {to} from {from}"), || {
        let out = ns
            .output(&["ping", "-c", "1", "-W", "1", "-I", from, to])
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stdout).into_owned())
        }
    });
}

/// kroute's neighbour `name` is up on `dev`, with the learned neighbour
/// address `ll` and AS `asn` shown, both families and RFC 8950 agreed.
fn assert_neighbor_shown(kroute: &Kroute, name: &str, dev: &str, ll: &str, asn: u32) {
    let n = kroute.neighbor(name).expect("the neighbor");
    assert_eq!(n.interface.as_deref(), Some(dev), "{n:?}");
    assert_eq!(
        n.neighbour.map(|a| a.to_string()).as_deref(),
        Some(ll),
        "{n:?}"
    );
    assert_eq!(n.learned_asn, Some(asn), "{n:?}");
    let families: Vec<String> = n.families.iter().map(|f| f.to_string()).collect();
    assert_eq!(families, vec![V4, V6], "{n:?}");
    let table = kroute.cli_ok(&["show", "neighbors"]);
    assert!(
        table.contains(&format!("{ll}%{dev}"))
            && table.contains(&format!("external ({asn} learned)")),
        "{table}"
    );
    let detail = kroute.cli_ok(&["show", "neighbor", name, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&detail).expect("show neighbor JSON");
    assert_eq!(
        v["extendedNextHop"],
        serde_json::json!({"advertised": true, "negotiated": true}),
        "{detail}"
    );
}

fn frr_up(frr: &lkfrr::Frr, dev: &str) -> Result<(), String> {
    match frr.neighbor_state(dev) {
        Ok(Some(s)) if s == "Established" => Ok(()),
        other => Err(format!("FRR neighbor {dev}: {other:?}")),
    }
}

/// `prefix` at FRR with `next_hop` among its next hops.
fn wait_at_frr(frr: &lkfrr::Frr, prefix: &str, next_hop: &str) {
    wait_until(CONVERGE, &format!("{prefix} at FRR via {next_hop}"), || {
        let rib: Vec<BgpPath> = frr.rib().unwrap_or_default();
        match rib.iter().find(|r| r.prefix == prefix) {
            Some(r) if r.next_hops.iter().any(|n| n == next_hop) => Ok(()),
            _ => Err(labkit::rib::describe(&rib)),
        }
    });
}

#[test]
fn frr_unnumbered_both_families_over_one_session() {
    let (k4, k6, p4, p6) = ("10.17.1.1", "fd00:17:1::1", "10.17.2.1", "fd00:17:2::1");
    let k_ns = netns("kunf");
    let p_ns = netns("punf");
    // No addresses on the link: only the kernel's link-local ones.
    let link: Veth = veth(&k_ns, &p_ns, &[], &[]);
    add_loopbacks(&k_ns, k4, k6);
    add_loopbacks(&p_ns, p4, p6);
    let mut cfg = kroute_config(65001, "10.255.17.1", k4, k6);
    cfg.peers.push(iface_peer("tor", &link.dev_a));
    let kroute = Kroute::start(&k_ns, cfg);
    let conf = frr_config(
        p_ns.name(),
        "10.255.17.2",
        &[&link.dev_b],
        &[&format!("{p4}/32"), &format!("{p6}/128")],
    );
    let frr = lkfrr::Frr::start(&p_ns, &FrrSpec::new(p_ns.name(), conf))
        .unwrap_or_else(|e| panic!("{e}"));
    wait_until(CONVERGE, "the unnumbered session", || {
        kroute.established("tor")?;
        frr_up(&frr, &link.dev_b)
    });
    let (k_ll, p_ll) = (
        link_local(&k_ns, &link.dev_a),
        link_local(&p_ns, &link.dev_b),
    );
    assert_neighbor_shown(&kroute, "tor", &link.dev_a, &p_ll, FRR_ASN);
    // FRR's routes, both families, via its link-local address on the link.
    let via = [(p_ll.clone(), link.dev_a.clone())];
    wait_via(&k_ns, &format!("{p4}/32"), &via);
    wait_via(&k_ns, &format!("{p6}/128"), &via);
    assert_via_inet6(&k_ns, &format!("{p4}/32"));
    // `explain` shows it installed via the link-local on the interface.
    let installed = format!("installed: via inet6 {p_ll} dev {}", link.dev_a);
    let explain = kroute.cli_ok(&["explain", &format!("{p4}/32")]);
    assert!(
        explain.contains(&installed),
        "want {installed:?} in:\n{explain}"
    );
    // Ours at FRR with our link-local next hop (IPv4 too: RFC 8950).
    wait_at_frr(&frr, &format!("{k4}/32"), &k_ll);
    wait_at_frr(&frr, &format!("{k6}/128"), &k_ll);
    assert_via_inet6(&p_ns, &format!("{k4}/32"));
    wait_ping(&k_ns, k4, p4);
    wait_ping(&k_ns, k6, p6);
    drop(frr);
    drop(kroute);
}

#[test]
fn kroute_to_kroute_unnumbered() {
    let (a4, a6, b4, b6) = ("10.18.1.1", "fd00:18:1::1", "10.18.2.1", "fd00:18:2::1");
    let a_ns = netns("kuna");
    let b_ns = netns("kunb");
    let link = veth(&a_ns, &b_ns, &[], &[]);
    add_loopbacks(&a_ns, a4, a6);
    add_loopbacks(&b_ns, b4, b6);
    let mut a_cfg = kroute_config(65001, "10.255.18.1", a4, a6);
    a_cfg.peers.push(iface_peer("b", &link.dev_a));
    let mut b_cfg = kroute_config(65003, "10.255.18.2", b4, b6);
    b_cfg.peers.push(iface_peer("a", &link.dev_b));
    let a = Kroute::start(&a_ns, a_cfg);
    let b = Kroute::start(&b_ns, b_cfg);
    wait_until(CONVERGE, "the unnumbered session both ways", || {
        a.established("b")?;
        b.established("a")
    });
    let (a_ll, b_ll) = (
        link_local(&a_ns, &link.dev_a),
        link_local(&b_ns, &link.dev_b),
    );
    assert_neighbor_shown(&a, "b", &link.dev_a, &b_ll, 65003);
    assert_neighbor_shown(&b, "a", &link.dev_b, &a_ll, 65001);
    for (ns, dev, ll, p4, p6) in [
        (&a_ns, &link.dev_a, &b_ll, b4, b6),
        (&b_ns, &link.dev_b, &a_ll, a4, a6),
    ] {
        let via = [(ll.clone(), dev.clone())];
        wait_via(ns, &format!("{p4}/32"), &via);
        wait_via(ns, &format!("{p6}/128"), &via);
        assert_via_inet6(ns, &format!("{p4}/32"));
    }
    wait_ping(&a_ns, a4, b4);
    wait_ping(&a_ns, a6, b6);
    drop(a);
    drop(b);
}

/// Two unnumbered uplinks to two FRR routers announcing the same
/// prefixes: both families ECMP over both links; one link down, the
/// session on it goes Idle at once and the routes keep the other; the
/// link up again, the session comes back.
#[test]
fn ecmp_over_two_unnumbered_uplinks() {
    const E4: &str = "10.19.9.0/24";
    const E6: &str = "fd00:19:9::/64";
    let k_ns = netns("kune");
    let mut cfg = k::config(65001, "10.255.19.1");
    let mut uplinks = Vec::new();
    for i in 1..=2 {
        let p_ns = netns(&format!("pune{i}"));
        let link = veth(&k_ns, &p_ns, &[], &[]);
        cfg.peers.push(iface_peer(&format!("up{i}"), &link.dev_a));
        let conf = frr_config(
            p_ns.name(),
            &format!("10.255.19.{}", 10 + i),
            &[&link.dev_b],
            &[E4, E6],
        );
        let frr = lkfrr::Frr::start(&p_ns, &FrrSpec::new(p_ns.name(), conf))
            .unwrap_or_else(|e| panic!("{e}"));
        let ll = link_local(&p_ns, &link.dev_b);
        uplinks.push((frr, link, ll, p_ns));
    }
    let kroute = Kroute::start(&k_ns, cfg);
    wait_until(CONVERGE, "both unnumbered sessions", || {
        kroute.established("up1")?;
        kroute.established("up2")
    });
    let both: Vec<(String, String)> = uplinks
        .iter()
        .map(|(_, l, ll, _)| (ll.clone(), l.dev_a.clone()))
        .collect();
    for prefix in [E4, E6] {
        wait_via(&k_ns, prefix, &both);
    }
    assert_via_inet6(&k_ns, E4);
    // Uplink 1 down: its session leaves Established without waiting for
    // the hold timer, both families keep uplink 2.
    let dev1 = uplinks[0].1.dev_a.clone();
    k_ns.set_link(&dev1, false)
        .unwrap_or_else(|e| panic!("{e}"));
    for prefix in [E4, E6] {
        wait_via(&k_ns, prefix, &both[1..]);
    }
    wait_until(CONVERGE, "up1 to leave Established", || {
        match kroute.established("up1") {
            Ok(()) => Err("still Established".to_string()),
            Err(_) => Ok(()),
        }
    });
    let n = kroute.neighbor("up1").expect("up1");
    assert_eq!(n.neighbour, None, "{n:?}");
    // Up again: the session and the ECMP route come back.
    k_ns.set_link(&dev1, true).unwrap_or_else(|e| panic!("{e}"));
    wait_until(CONVERGE, "up1 back", || kroute.established("up1"));
    for prefix in [E4, E6] {
        wait_via(&k_ns, prefix, &both);
    }
    drop(kroute);
    drop(uplinks);
}

/// A neighbour that sends no router advertisements (BIRD, configured with
/// kroute's link-local address `fe80::…%IF`) is learned from the
/// connection it opens: kroute accepts it as the interface's peer, and
/// BIRD's IPv6 route lands via its link-local on the interface.
#[test]
fn bird_connecting_without_router_advertisements_is_accepted() {
    use labkit::bird::{self as lkbird, BgpProtocol, BirdConfig, BirdSpec, Channel};
    use labkit::bird::{KernelProtocol, StaticProtocol, StaticRoute};
    use labkit::Afi;
    let (k6, p6) = ("fd00:20:1::1", "fd00:20:2::1");
    let k_ns = netns("kunbd");
    let p_ns = netns("punbd");
    let link = veth(&k_ns, &p_ns, &[], &[]);
    add_loopbacks(&k_ns, "10.20.1.1", k6);
    let mut cfg = kroute_config(65001, "10.255.20.1", "10.20.1.1", k6);
    cfg.peers.push(iface_peer("bird", &link.dev_a));
    let kroute = Kroute::start(&k_ns, cfg);
    let (k_ll, p_ll) = (
        link_local(&k_ns, &link.dev_a),
        link_local(&p_ns, &link.dev_b),
    );
    let conf = BirdConfig {
        router_id: "10.255.20.2".into(),
        kernel: vec![KernelProtocol {
            name: "k6".into(),
            afi: Afi::Ipv6,
            import: "none".into(),
            export: "where source = RTS_BGP".into(),
            merge_paths: false,
        }],
        statics: vec![StaticProtocol {
            name: "s6".into(),
            afi: Afi::Ipv6,
            routes: vec![StaticRoute {
                prefix: format!("{p6}/128"),
                attrs: vec![],
            }],
        }],
        bgp: vec![BgpProtocol {
            name: "up".into(),
            local_address: p_ll.clone(),
            local_as: 65004,
            neighbor_address: format!("{k_ll}%{}", link.dev_b),
            neighbor_as: 65001,
            options: vec![
                "connect delay time 1;".into(),
                "connect retry time 2;".into(),
                "error wait time 1, 4;".into(),
                "hold time 9;".into(),
            ],
            channels: vec![Channel::all(Afi::Ipv6)],
        }],
        ..Default::default()
    }
    .render();
    let dir = common::test_dir("unn-bird");
    let bird = lkbird::Bird::start(&p_ns, &BirdSpec::new(dir.path(), conf))
        .unwrap_or_else(|e| panic!("{e}"));
    wait_until(CONVERGE, "the session BIRD opened", || {
        kroute.established("bird")?;
        match bird.established("up") {
            Ok(r) => r,
            Err(e) => Err(e.to_string()),
        }
    });
    let n = kroute.neighbor("bird").expect("the neighbor");
    assert_eq!(
        n.neighbour.map(|a| a.to_string()),
        Some(p_ll.clone()),
        "{n:?}"
    );
    assert_eq!(n.learned_asn, Some(65004), "{n:?}");
    wait_via(&k_ns, &format!("{p6}/128"), &[(p_ll, link.dev_a.clone())]);
    drop(bird);
    drop(kroute);
}

/// Reload adds an interface peer (the listener lets its link-local
/// connections in from then on) and, when its import policy changes,
/// applies that without resetting the session; removing it stops it.
#[test]
fn reload_adds_changes_and_removes_an_interface_peer() {
    let p6 = "fd00:21:2::1";
    let k_ns = netns("kunr");
    let p_ns = netns("punr");
    let link = veth(&k_ns, &p_ns, &[], &[]);
    add_loopbacks(&p_ns, "10.21.2.1", p6);
    let mut kroute = Kroute::start(&k_ns, k::config(65001, "10.255.21.1"));
    let conf = frr_config(
        p_ns.name(),
        "10.255.21.2",
        &[&link.dev_b],
        &[&format!("{p6}/128")],
    );
    let frr = lkfrr::Frr::start(&p_ns, &FrrSpec::new(p_ns.name(), conf))
        .unwrap_or_else(|e| panic!("{e}"));
    kroute.config.peers.push(Peer {
        import: rib::policy::PolicyChain::None,
        ..iface_peer("tor", &link.dev_a)
    });
    kroute.reload();
    wait_until(CONVERGE, "the session added by reload", || {
        kroute.established("tor")?;
        frr_up(&frr, &link.dev_b)
    });
    let p_ll = link_local(&p_ns, &link.dev_b);
    // import none: nothing installed yet; import all by reload, no reset.
    assert!(route_via(&k_ns, &format!("{p6}/128")).is_none());
    k::peer_mut(&mut kroute.config, "tor").import = rib::policy::PolicyChain::All;
    kroute.reload();
    wait_via(&k_ns, &format!("{p6}/128"), &[(p_ll, link.dev_a.clone())]);
    let n = kroute.neighbor("tor").expect("tor");
    assert_eq!(n.flaps, 0, "the policy change reset the session: {n:?}");
    // Removed: the session goes and so does its route.
    kroute.config.peers.clear();
    kroute.reload();
    wait_until(CONVERGE, "FRR to lose the session", || {
        match frr_up(&frr, &link.dev_b) {
            Ok(()) => Err("still Established".to_string()),
            Err(_) => Ok(()),
        }
    });
    common::kernel::wait_absent(&k_ns, &format!("{p6}/128"));
    drop(frr);
    drop(kroute);
}
