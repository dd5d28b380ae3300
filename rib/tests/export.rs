mod common;

use common::*;
use rib::policy::{Action, Match, Policy, PolicyChain, Rule, Set};
use rib::*;
use wire::{Community, Family, RawAttribute};

#[test]
fn ebgp_export_prepends_and_sets_next_hop_self() {
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, ebgp("a", "192.0.2.1", 65101), "192.0.2.1");
    add_up(&mut rib, 2, ebgp("b", "192.0.2.2", 65102), "192.0.2.2");
    reach(&mut rib, "192.0.2.1", 0);
    let a = wire::PathAttributes {
        med: Some(50),
        unknown: wire::thin_vec![
            RawAttribute {
                flags: 0xC0,
                type_code: 99,
                value: vec![1],
            },
            RawAttribute {
                flags: 0x80,
                type_code: 98,
                value: vec![2],
            },
        ],
        ..attrs(&[65101, 65301])
    };
    let out = receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24", "10.1.1.0/24"], "192.0.2.1", a),
    );
    let to_b = announced(&out, 2);
    assert_eq!(to_b.len(), 2);
    // One Update carries both prefixes (shared attributes).
    assert_eq!(out.updates.iter().filter(|(p, _)| *p == 2).count(), 1);
    let (_, nh, attrs) = &to_b[0];
    assert_eq!(nh.address, ip("10.0.0.1"));
    assert_eq!(attrs.as_path.to_string(), "65000 65101 65301");
    assert_eq!(attrs.local_pref, None);
    assert_eq!(
        attrs.med, None,
        "a received MED is not passed to another AS"
    );
    assert_eq!(attrs.unknown.len(), 1, "optional non-transitive dropped");
    assert_eq!(attrs.unknown[0].type_code, 99);
    assert!(announced(&out, 1).is_empty(), "not back to the source");
    let e = rib.explain(&p("10.1.0.0/24"));
    let back = e.peers.iter().find(|x| x.peer == "a").unwrap();
    assert_eq!(back.reason.as_deref(), Some("learned from this peer"));
    assert_eq!(rib.peer_counters(2).advertised, 2);
}

#[test]
fn rfc8212_unset_export_sends_nothing() {
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, ebgp("a", "192.0.2.1", 65101), "192.0.2.1");
    add_up(
        &mut rib,
        2,
        PeerConfig {
            export: PolicyChain::Unset,
            ..ebgp("b", "192.0.2.2", 65102)
        },
        "192.0.2.2",
    );
    reach(&mut rib, "192.0.2.1", 0);
    let out = receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65101])),
    );
    assert!(announced(&out, 2).is_empty());
    let e = rib.explain(&p("10.1.0.0/24"));
    let b = e.peers.iter().find(|x| x.peer == "b").unwrap();
    assert!(b
        .reason
        .as_deref()
        .unwrap()
        .starts_with("no export policy (RFC 8212"));
}

#[test]
fn withdraw_propagates() {
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, ebgp("a", "192.0.2.1", 65101), "192.0.2.1");
    add_up(&mut rib, 2, ebgp("b", "192.0.2.2", 65102), "192.0.2.2");
    reach(&mut rib, "192.0.2.1", 0);
    receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65101])),
    );
    receive(
        &mut rib,
        1,
        update_v6(&["2001:db8:1::/48"], "2001:db8::a", attrs(&[65101])),
    );
    reach(&mut rib, "2001:db8::a", 0);
    let out = receive(&mut rib, 1, withdraw(&["10.1.0.0/24", "2001:db8:1::/48"]));
    assert_eq!(
        withdrawn(&out, 2),
        vec![p("10.1.0.0/24"), p("2001:db8:1::/48")]
    );
    let (_, u) = out.updates.iter().find(|(id, _)| *id == 2).unwrap();
    assert_eq!(u.mp_unreach.as_ref().unwrap().family, Family::Ipv6Unicast);
    assert_eq!(rib.peer_counters(2).advertised, 0);
    // Peer down withdraws too.
    receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65101])),
    );
    let mut out = Outputs::default();
    rib.peer_down(1, &mut out);
    assert_eq!(withdrawn(&out, 2), vec![p("10.1.0.0/24")]);
    assert_eq!(
        fib_for(&out, "10.1.0.0/24"),
        vec![Vec::<std::net::IpAddr>::new()]
    );
}

#[test]
fn originated_prefixes_exported_with_communities() {
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, ebgp("a", "192.0.2.1", 65101), "192.0.2.1");
    add_up(&mut rib, 2, ibgp("i", "10.0.0.2"), "10.0.0.2");
    let c: Community = "65000:42".parse().unwrap();
    let mut out = Outputs::default();
    rib.set_originated(
        vec![
            Origination {
                prefix: p("10.244.1.0/24"),
                communities: vec![c],
                large_communities: vec![],
                local_pref: None,
            },
            Origination {
                prefix: p("fd00:244:1::/64"),
                communities: vec![],
                large_communities: vec![],
                local_pref: None,
            },
        ],
        &mut out,
    );
    assert!(out.fib.is_empty(), "never install our own prefixes");
    let to_a = announced(&out, 1);
    assert_eq!(to_a.len(), 2);
    let v4 = to_a.iter().find(|(p, _, _)| p.addr().is_ipv4()).unwrap();
    assert_eq!(v4.1.address, ip("10.0.0.1"));
    assert_eq!(v4.2.as_path.to_string(), "65000");
    assert_eq!(v4.2.communities, vec![c]);
    assert_eq!(v4.2.origin, Some(wire::Origin::Igp));
    let v6 = to_a.iter().find(|(p, _, _)| !p.addr().is_ipv4()).unwrap();
    assert_eq!(v6.1.address, ip("fd00::1"));
    let to_i = announced(&out, 2);
    assert_eq!(to_i.len(), 2);
    assert_eq!(to_i[0].2.local_pref, Some(100));
    assert_eq!(to_i[0].2.as_path.to_string(), "");

    // Later sessions get everything, then End-of-RIB per family.
    let out = add_up(&mut rib, 3, ebgp("c", "192.0.2.3", 65103), "192.0.2.3");
    assert_eq!(announced(&out, 3).len(), 2);
    let eors: Vec<_> = out
        .updates
        .iter()
        .filter_map(|(_, u)| u.end_of_rib())
        .collect();
    assert_eq!(eors, vec![Family::Ipv4Unicast, Family::Ipv6Unicast]);
    assert_eq!(
        out.updates.last().unwrap().1.end_of_rib(),
        Some(Family::Ipv6Unicast)
    );

    // Removing the origination withdraws it.
    let mut out = Outputs::default();
    rib.set_originated(vec![], &mut out);
    assert_eq!(withdrawn(&out, 1).len(), 2);
    let e = rib.explain(&p("10.244.1.0/24"));
    assert!(e.paths.is_empty());
}

/// `advertise[].localPref`: what iBGP peers are told; eBGP peers never
/// see LOCAL_PREF (RFC 4271 §5.1.5).
#[test]
fn originated_local_pref_goes_to_ibgp_peers_only() {
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, ebgp("a", "192.0.2.1", 65101), "192.0.2.1");
    add_up(&mut rib, 2, ibgp("i", "10.0.0.2"), "10.0.0.2");
    let mut out = Outputs::default();
    rib.set_originated(
        vec![Origination {
            prefix: p("10.244.1.0/24"),
            communities: vec![],
            large_communities: vec![],
            local_pref: Some(250),
        }],
        &mut out,
    );
    let to_i = announced(&out, 2);
    assert_eq!(to_i.len(), 1);
    assert_eq!(to_i[0].2.local_pref, Some(250));
    let to_a = announced(&out, 1);
    assert_eq!(to_a.len(), 1);
    assert_eq!(to_a[0].2.local_pref, None);
}

#[test]
fn export_policy_prepend_med_and_no_export() {
    let pol = Policy {
        name: "out".into(),
        rules: vec![Rule {
            matches: Match::default(),
            set: Set {
                prepend_as_path: Some(2),
                med: Some(7),
                ..Default::default()
            },
            action: Action::Accept,
        }],
    };
    let mut rib = Rib::new(RibConfig {
        policies: vec![pol],
        ..cfg()
    });
    add_up(&mut rib, 1, ebgp("a", "192.0.2.1", 65101), "192.0.2.1");
    add_up(
        &mut rib,
        2,
        PeerConfig {
            export: PolicyChain::Named(vec!["out".into()]),
            ..ebgp("b", "192.0.2.2", 65102)
        },
        "192.0.2.2",
    );
    reach(&mut rib, "192.0.2.1", 0);
    let out = receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65101])),
    );
    let (_, _, a) = &announced(&out, 2)[0];
    assert_eq!(a.as_path.to_string(), "65000 65000 65000 65101");
    assert_eq!(a.med, Some(7));

    let noexp = wire::PathAttributes {
        communities: wire::thin_vec![Community::NO_EXPORT],
        ..attrs(&[65101])
    };
    let out = receive(&mut rib, 1, update_v4(&["10.2.0.0/24"], "192.0.2.1", noexp));
    assert!(announced(&out, 2).is_empty());
    let e = rib.explain(&p("10.2.0.0/24"));
    assert!(e.to_string().contains("NO_EXPORT"));
}

#[test]
fn ipv4_next_hop_self_falls_back_to_rfc8950_or_is_explained() {
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, ebgp("a", "192.0.2.1", 65101), "192.0.2.1");
    reach(&mut rib, "192.0.2.1", 0);
    rib.add_peer(2, ebgp("v6only", "fd00::2", 65102));
    let mut out = Outputs::default();
    rib.peer_up(
        2,
        SessionInfo {
            local_next_hop_v4: None,
            extended_next_hop_v4: true,
            ..session("10.0.0.2")
        },
        &mut out,
    );
    rib.add_peer(3, ebgp("v6plain", "fd00::3", 65103));
    rib.peer_up(
        3,
        SessionInfo {
            local_next_hop_v4: None,
            ..session("10.0.0.3")
        },
        &mut out,
    );
    let out = receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65101])),
    );
    let (_, u) = out.updates.iter().find(|(id, _)| *id == 2).unwrap();
    let r = u.mp_reach.as_ref().unwrap();
    assert_eq!(r.family, Family::Ipv4Unicast);
    assert_eq!(r.next_hop.address, ip("fd00::1"));
    assert!(u.attributes.next_hop.is_none());
    assert!(announced(&out, 3).is_empty());
    let e = rib.explain(&p("10.1.0.0/24"));
    let x = e.peers.iter().find(|x| x.peer == "v6plain").unwrap();
    assert_eq!(
        x.reason.as_deref(),
        Some("no IPv4 next hop for this session")
    );
}

#[test]
fn only_negotiated_families_and_route_refresh() {
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, ebgp("a", "192.0.2.1", 65101), "192.0.2.1");
    reach(&mut rib, "192.0.2.1", 0);
    reach(&mut rib, "2001:db8::a", 0);
    rib.add_peer(2, ebgp("v4only", "192.0.2.2", 65102));
    let mut out = Outputs::default();
    rib.peer_up(
        2,
        SessionInfo {
            families: vec![Family::Ipv4Unicast],
            ..session("192.0.2.2")
        },
        &mut out,
    );
    assert_eq!(out.updates.len(), 1, "only the IPv4 End-of-RIB");
    receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65101])),
    );
    let out = receive(
        &mut rib,
        1,
        update_v6(&["2001:db8:1::/48"], "2001:db8::a", attrs(&[65101])),
    );
    assert!(announced(&out, 2).is_empty());
    let mut out = Outputs::default();
    rib.route_refresh(2, Family::Ipv4Unicast, &mut out);
    assert_eq!(announced(&out, 2).len(), 1);
}

/// A peer going down in small steps withdraws every prefix it alone had,
/// exactly once, falls back to the other peer where there is one, and
/// leaves nothing of its own behind.
#[test]
fn peer_down_in_steps_covers_every_prefix_once() {
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, ebgp("a", "192.0.2.1", 65101), "192.0.2.1");
    add_up(&mut rib, 3, ebgp("b", "192.0.2.3", 65103), "192.0.2.3");
    add_up(&mut rib, 2, ibgp("i", "10.0.0.2"), "10.0.0.2");
    reach(&mut rib, "192.0.2.1", 0);
    reach(&mut rib, "192.0.2.3", 0);
    reach(&mut rib, "2001:db8::a", 0);
    let v4: Vec<String> = (0..10).map(|i| format!("10.1.{i}.0/24")).collect();
    let v4: Vec<&str> = v4.iter().map(String::as_str).collect();
    receive(&mut rib, 1, update_v4(&v4, "192.0.2.1", attrs(&[65101])));
    receive(
        &mut rib,
        1,
        update_v6(
            &["2001:db8:1::/48", "2001:db8:2::/48"],
            "2001:db8::a",
            attrs(&[65101]),
        ),
    );
    // Peer 3 also has 10.1.4.0/24 (longer path: peer 1's is best).
    receive(
        &mut rib,
        3,
        update_v4(&["10.1.4.0/24"], "192.0.2.3", attrs(&[65103, 65104])),
    );
    let mut out = Outputs::default();
    let mut down = rib.peer_down_start(1);
    let mut calls = 1;
    while rib.peer_down_step(&mut down, 3, &mut out) {
        calls += 1;
    }
    assert_eq!(calls, 5, "12 prefixes in steps of 3, then one finding none");
    let mut gone = withdrawn(&out, 2);
    gone.sort();
    let mut want: Vec<wire::Prefix> = v4
        .iter()
        .filter(|s| **s != "10.1.4.0/24")
        .map(|s| p(s))
        .collect();
    want.extend([p("2001:db8:1::/48"), p("2001:db8:2::/48")]);
    want.sort();
    assert_eq!(gone, want);
    assert_eq!(
        fib_for(&out, "10.1.0.0/24"),
        vec![Vec::<std::net::IpAddr>::new()]
    );
    assert_eq!(fib_for(&out, "10.1.4.0/24"), vec![vec![ip("192.0.2.3")]]);
    assert_eq!(
        fib_for(&out, "2001:db8:2::/48"),
        vec![Vec::<std::net::IpAddr>::new()]
    );
    assert_eq!(rib.peer_counters(2).advertised, 1);
}

#[test]
fn own_ipv6_next_hop_carries_the_shared_link_local_kept_ones_do_not() {
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, ebgp("a", "192.0.2.1", 65101), "192.0.2.1");
    reach(&mut rib, "192.0.2.1", 0);
    rib.add_peer(2, ebgp("link", "fd00::2", 65102));
    let mut out = Outputs::default();
    rib.peer_up(
        2,
        SessionInfo {
            local_next_hop_v4: None,
            extended_next_hop_v4: true,
            local_link_local: Some("fe80::1".parse().unwrap()),
            ..session("10.0.0.2")
        },
        &mut out,
    );
    let out = receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65101])),
    );
    let (_, u) = out.updates.iter().find(|(id, _)| *id == 2).unwrap();
    let r = u.mp_reach.as_ref().unwrap();
    assert_eq!(r.family, Family::Ipv4Unicast);
    assert_eq!(r.next_hop.address, ip("fd00::1"));
    assert_eq!(r.next_hop.link_local, Some("fe80::1".parse().unwrap()));
}
