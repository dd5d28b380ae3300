mod common;

use common::*;
use rib::*;

#[test]
fn unreachable_next_hop_not_installed_until_reachable() {
    let mut rib = Rib::new(cfg());
    let up = add_up(&mut rib, 1, ebgp("a", "192.0.2.1", 65101), "192.0.2.1");
    assert!(up.watch_nexthops.is_empty());
    let out = receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65101])),
    );
    assert_eq!(out.watch_nexthops, vec![ip("192.0.2.1")]);
    assert!(out.fib.is_empty());
    let e = rib.explain(&p("10.1.0.0/24"));
    assert!(
        e.to_string()
            .contains("next hop 192.0.2.1 not yet resolved"),
        "{e}"
    );

    let mut out = Outputs::default();
    rib.set_nexthop(
        ip("192.0.2.1"),
        NexthopState::Unreachable("no route to host".into()),
        &mut out,
    );
    assert!(out.fib.is_empty());
    let e = rib.explain(&p("10.1.0.0/24"));
    assert_eq!(e.paths[0].status, "ineligible");
    assert!(e
        .to_string()
        .contains("next hop 192.0.2.1 unreachable: no route to host"));
    assert!(!e.installed);

    let out = reach(&mut rib, "192.0.2.1", 10);
    assert_eq!(fib_for(&out, "10.1.0.0/24"), vec![vec![ip("192.0.2.1")]]);
    assert!(rib.explain(&p("10.1.0.0/24")).installed);
    // Same next hop again: not reported twice.
    let out = receive(
        &mut rib,
        1,
        update_v4(&["10.1.1.0/24"], "192.0.2.1", attrs(&[65101])),
    );
    assert!(out.watch_nexthops.is_empty());
    assert_eq!(fib_for(&out, "10.1.1.0/24").len(), 1);

    // And back to unreachable: removed.
    let mut out = Outputs::default();
    rib.set_nexthop(
        ip("192.0.2.1"),
        NexthopState::Unreachable("link down".into()),
        &mut out,
    );
    assert_eq!(out.fib.len(), 2);
    assert!(out.fib.iter().all(|c| c.next_hops.is_empty()));
}

#[test]
fn local_next_hop_not_installed_but_exported_with_next_hop_self() {
    let mut rib = Rib::new(cfg());
    // The CNI peers over [::1] and announces the pod CIDR with next hop ::1.
    add_up(&mut rib, 1, ebgp("cilium", "::1", 65010), "10.0.0.1");
    add_up(&mut rib, 2, ebgp("tor", "192.0.2.1", 65101), "192.0.2.1");
    add_up(&mut rib, 3, ibgp("peer-node", "10.0.0.2"), "10.0.0.2");
    let out = receive(
        &mut rib,
        1,
        update_v6(&["fd00:10:244:1::/64"], "::1", attrs(&[65010])),
    );
    assert_eq!(out.watch_nexthops, vec![ip("::1")]);
    let mut out = Outputs::default();
    rib.set_nexthop(ip("::1"), NexthopState::Local, &mut out);
    assert!(out.fib.is_empty(), "local next hops never go to the FIB");
    let to_tor = announced(&out, 2);
    assert_eq!(to_tor.len(), 1);
    assert_eq!(to_tor[0].1.address, ip("fd00::1"));
    assert_eq!(to_tor[0].2.as_path.to_string(), "65000 65010");
    let to_ibgp = announced(&out, 3);
    assert_eq!(
        to_ibgp[0].1.address,
        ip("fd00::1"),
        "iBGP too: next hop self for a local next hop"
    );
    let e = rib.explain(&p("fd00:10:244:1::/64"));
    assert_eq!(e.kernel, "not installed: next hop is local");
    let r = rib.routes(&RouteQuery {
        prefix: Some(p("fd00:10:244:1::/64")),
        ..Default::default()
    });
    assert!(r[0].best && !r[0].installed);
}

#[test]
fn install_disabled_installs_nothing() {
    let mut rib = Rib::new(RibConfig {
        install: false,
        ..cfg()
    });
    add_up(&mut rib, 1, ebgp("a", "192.0.2.1", 65101), "192.0.2.1");
    reach(&mut rib, "192.0.2.1", 0);
    let out = receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65101])),
    );
    assert!(out.fib.is_empty());
    assert!(rib
        .explain(&p("10.1.0.0/24"))
        .kernel
        .contains("install disabled"));
    // Turning it on installs.
    let mut out = Outputs::default();
    rib.set_config(cfg(), &mut out);
    assert_eq!(fib_for(&out, "10.1.0.0/24").len(), 1);
}

#[test]
fn kernel_error_is_reported() {
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, ebgp("a", "192.0.2.1", 65101), "192.0.2.1");
    reach(&mut rib, "192.0.2.1", 0);
    receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65101])),
    );
    rib.set_fib_status(
        p("10.1.0.0/24"),
        FibStatus::Failed("RTNETLINK answers: File exists".into()),
    );
    let e = rib.explain(&p("10.1.0.0/24"));
    assert!(!e.installed);
    assert_eq!(
        e.kernel,
        "not installed: kernel error: RTNETLINK answers: File exists"
    );
    rib.set_fib_status(p("10.1.0.0/24"), FibStatus::Installed);
    assert!(rib.explain(&p("10.1.0.0/24")).installed);
}

#[test]
fn originated_and_learned_is_not_installed() {
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, ebgp("a", "192.0.2.1", 65101), "192.0.2.1");
    reach(&mut rib, "192.0.2.1", 0);
    let out = receive(
        &mut rib,
        1,
        update_v4(&["10.244.0.0/24"], "192.0.2.1", attrs(&[65101])),
    );
    assert_eq!(out.fib.len(), 1);
    let mut out = Outputs::default();
    rib.set_originated(
        vec![Origination {
            prefix: p("10.244.0.0/24"),
            communities: vec![],
            large_communities: vec![],
            local_pref: None,
        }],
        &mut out,
    );
    assert_eq!(
        fib_for(&out, "10.244.0.0/24"),
        vec![Vec::<std::net::IpAddr>::new()]
    );
    let e = rib.explain(&p("10.244.0.0/24"));
    assert_eq!(e.kernel, "not installed: locally originated");
    let lost = e.paths.iter().find(|x| x.from == "a").unwrap();
    assert!(
        lost.detail.contains("step: locally originated"),
        "{}",
        lost.detail
    );
}

/// A link-local next hop is an address on the session's link: the path
/// carries that interface to the FIB, and a link-local-only one needs no
/// resolution (there is nothing to resolve it with).
#[test]
fn link_local_next_hops_carry_the_sessions_interface() {
    let link = std::num::NonZeroU32::new(7);
    let mut rib = Rib::new(cfg());
    rib.add_peer(1, ebgp("tor", "fe80::2", 65101));
    let mut out = Outputs::default();
    rib.peer_up(
        1,
        SessionInfo {
            interface: link,
            ..session("192.0.2.1")
        },
        &mut out,
    );
    let out = receive(
        &mut rib,
        1,
        update_v6(&["2001:db8:1::/48"], "fe80::2", attrs(&[65101])),
    );
    assert!(out.watch_nexthops.is_empty(), "{:?}", out.watch_nexthops);
    let change = out
        .fib
        .iter()
        .find(|c| c.prefix == p("2001:db8:1::/48"))
        .expect("installed without waiting for a resolution");
    assert_eq!(change.next_hops.len(), 1);
    assert_eq!(change.next_hops[0].address, ip("fe80::2"));
    assert_eq!(change.next_hops[0].interface, link);

    // Global + link-local: the global is resolved as ever, the interface
    // goes along for the FIB to pick the link-local on that link.
    let mut u = update_v6(&["2001:db8:2::/48"], "2001:db8::2", attrs(&[65101]));
    u.mp_reach.as_mut().unwrap().next_hop.link_local = Some("fe80::2".parse().unwrap());
    let out = receive(&mut rib, 1, u);
    assert_eq!(out.watch_nexthops, vec![ip("2001:db8::2")]);
    let out = reach(&mut rib, "2001:db8::2", 0);
    let change = out
        .fib
        .iter()
        .find(|c| c.prefix == p("2001:db8:2::/48"))
        .expect("installed once the global resolves");
    assert_eq!(change.next_hops[0].interface, link);
}

/// On a session over link-local addresses only, BIRD sends a global next
/// hop of `::` beside its link-local one: that is the link-local next hop
/// on the session's link, not an unspecified (unusable) one. Off a shared
/// link (no interface), `::` stays an error.
#[test]
fn unspecified_global_beside_a_link_local_is_the_link_local() {
    let link = std::num::NonZeroU32::new(7);
    let mut rib = Rib::new(cfg());
    rib.add_peer(1, ebgp("tor", "fe80::2", 65101));
    rib.add_peer(2, ebgp("far", "2001:db8::9", 65102));
    let mut out = Outputs::default();
    rib.peer_up(
        1,
        SessionInfo {
            interface: link,
            ..session("192.0.2.1")
        },
        &mut out,
    );
    rib.peer_up(2, session("192.0.2.2"), &mut out);
    let bird_form = |prefix: &str, asn: u32| {
        let mut u = update_v6(&[prefix], "::", attrs(&[asn]));
        u.mp_reach.as_mut().unwrap().next_hop.link_local = Some("fe80::2".parse().unwrap());
        u
    };
    let out = receive(&mut rib, 1, bird_form("2001:db8:3::/48", 65101));
    let change = out
        .fib
        .iter()
        .find(|c| c.prefix == p("2001:db8:3::/48"))
        .expect("installed via the link-local");
    assert_eq!(change.next_hops[0].address, ip("fe80::2"));
    assert_eq!(change.next_hops[0].interface, link);
    let out = receive(&mut rib, 2, bird_form("2001:db8:4::/48", 65102));
    assert!(
        !out.fib.iter().any(|c| c.prefix == p("2001:db8:4::/48")),
        "{:?}",
        out.fib
    );
}
