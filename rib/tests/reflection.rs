mod common;

use common::*;
use rib::*;

fn rr() -> Rib {
    let mut rib = Rib::new(cfg());
    add_up(
        &mut rib,
        1,
        PeerConfig {
            route_reflector_client: true,
            ..ibgp("c1", "10.0.0.11")
        },
        "10.0.0.11",
    );
    add_up(
        &mut rib,
        2,
        PeerConfig {
            route_reflector_client: true,
            ..ibgp("c2", "10.0.0.12")
        },
        "10.0.0.12",
    );
    add_up(&mut rib, 3, ibgp("n1", "10.0.0.21"), "10.0.0.21");
    add_up(&mut rib, 4, ibgp("n2", "10.0.0.22"), "10.0.0.22");
    for a in ["10.0.0.11", "10.0.0.12", "10.0.0.21", "10.0.0.22"] {
        reach(&mut rib, a, 1);
    }
    rib
}

#[test]
fn client_to_client_reflected_with_originator_and_cluster_list() {
    let mut rib = rr();
    let out = receive(
        &mut rib,
        1,
        update_v4(&["10.20.0.0/24"], "10.0.0.11", attrs(&[])),
    );
    for peer in [2, 3, 4] {
        let a = announced(&out, peer);
        assert_eq!(a.len(), 1, "to {peer}");
        let (_, nh, attrs) = &a[0];
        assert_eq!(nh.address, ip("10.0.0.11"), "iBGP keeps the next hop");
        assert_eq!(attrs.originator_id, Some("10.0.0.11".parse().unwrap()));
        assert_eq!(
            attrs.cluster_list,
            vec!["10.0.0.1".parse::<std::net::Ipv4Addr>().unwrap()]
        );
        assert_eq!(attrs.local_pref, Some(100));
    }
    assert!(announced(&out, 1).is_empty(), "not back to the source");
}

#[test]
fn non_client_to_non_client_is_split_horizon() {
    let mut rib = rr();
    let out = receive(
        &mut rib,
        3,
        update_v4(&["10.30.0.0/24"], "10.0.0.21", attrs(&[])),
    );
    assert!(announced(&out, 4).is_empty());
    assert_eq!(announced(&out, 1).len(), 1);
    assert_eq!(announced(&out, 2).len(), 1);
    let e = rib.explain(&p("10.30.0.0/24"));
    let n2 = e.peers.iter().find(|x| x.peer == "n2").unwrap();
    assert!(
        n2.reason.as_deref().unwrap().contains("iBGP split horizon"),
        "{n2:?}"
    );
    assert!(e.to_string().contains("iBGP split horizon"));
}

#[test]
fn cluster_list_loop_and_own_originator_rejected() {
    let mut rib = rr();
    let looped = wire::PathAttributes {
        cluster_list: wire::thin_vec!["10.0.0.1".parse().unwrap()],
        originator_id: Some("10.0.0.99".parse().unwrap()),
        ..attrs(&[])
    };
    receive(
        &mut rib,
        3,
        update_v4(&["10.40.0.0/24"], "10.0.0.21", looped),
    );
    let e = rib.explain(&p("10.40.0.0/24"));
    assert!(
        e.paths[0]
            .import
            .contains("CLUSTER_LIST contains our cluster id 10.0.0.1"),
        "{}",
        e.paths[0].import
    );

    let mine = wire::PathAttributes {
        originator_id: Some("10.0.0.1".parse().unwrap()),
        ..attrs(&[])
    };
    receive(&mut rib, 3, update_v4(&["10.41.0.0/24"], "10.0.0.21", mine));
    let e = rib.explain(&p("10.41.0.0/24"));
    assert!(e.paths[0]
        .import
        .contains("ORIGINATOR_ID 10.0.0.1 is our router id"));
}

#[test]
fn originator_id_and_cluster_list_break_ties() {
    let mut rib = rr();
    // Same path via two clients; c2's carries a lower ORIGINATOR_ID.
    let a1 = wire::PathAttributes {
        originator_id: Some("10.9.9.9".parse().unwrap()),
        ..attrs(&[])
    };
    let a2 = wire::PathAttributes {
        originator_id: Some("10.1.1.1".parse().unwrap()),
        ..attrs(&[])
    };
    receive(&mut rib, 1, update_v4(&["10.50.0.0/24"], "10.0.0.11", a1));
    receive(&mut rib, 2, update_v4(&["10.50.0.0/24"], "10.0.0.12", a2));
    let e = rib.explain(&p("10.50.0.0/24"));
    let best = e.paths.iter().find(|p| p.status == "best").unwrap();
    assert_eq!(best.from, "c2", "lower ORIGINATOR_ID (RFC 4456 §9)");
    assert_eq!(
        e.paths.iter().filter(|p| p.status == "multipath").count(),
        1
    );
    // With max_paths 1 the other one loses at the router-id step.
    let mut one = cfg();
    one.max_paths = 1;
    let mut out = Outputs::default();
    rib.set_config(one, &mut out);
    let e = rib.explain(&p("10.50.0.0/24"));
    let best = e.paths.iter().find(|p| p.status == "best").unwrap();
    assert_eq!(best.from, "c2");
    let lost = e.paths.iter().find(|p| p.status == "lost").unwrap();
    assert!(
        lost.detail
            .contains("lower router id (10.1.1.1 vs 10.9.9.9)"),
        "{}",
        lost.detail
    );
}
