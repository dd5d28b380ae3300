mod common;

use common::*;
use rib::*;

fn two_upstreams(rib: &mut Rib, asn_a: u32, asn_b: u32) -> Outputs {
    add_up(rib, 1, ebgp("a", "192.0.2.1", asn_a), "192.0.2.1");
    add_up(rib, 2, ebgp("b", "192.0.2.2", asn_b), "192.0.2.2");
    reach(rib, "192.0.2.1", 0);
    reach(rib, "192.0.2.2", 0);
    receive(
        rib,
        1,
        update_v4(&["10.9.0.0/24"], "192.0.2.1", attrs(&[asn_a, 65301])),
    );
    receive(
        rib,
        2,
        update_v4(&["10.9.0.0/24"], "192.0.2.2", attrs(&[asn_b, 65301])),
    )
}

#[test]
fn same_neighbor_as_forms_one_multipath_route() {
    let mut rib = Rib::new(cfg());
    let out = two_upstreams(&mut rib, 65101, 65101);
    assert_eq!(
        fib_for(&out, "10.9.0.0/24"),
        vec![vec![ip("192.0.2.1"), ip("192.0.2.2")]]
    );
    let e = rib.explain(&p("10.9.0.0/24"));
    assert_eq!(
        e.paths.iter().filter(|p| p.status == "multipath").count(),
        1
    );
    assert!(e
        .to_string()
        .contains("multipath (equal to best through IGP cost)"));
    assert!(e.installed);
}

#[test]
fn different_neighbor_as_needs_multipath_relax() {
    let mut rib = Rib::new(cfg());
    let _ = two_upstreams(&mut rib, 65101, 65102);
    let fib = rib.routes(&RouteQuery {
        prefix: Some(p("10.9.0.0/24")),
        ..Default::default()
    });
    assert_eq!(fib.iter().filter(|r| r.multipath).count(), 1);
    let e = rib.explain(&p("10.9.0.0/24"));
    let lost = e.paths.iter().find(|p| p.status == "lost").unwrap();
    assert!(
        lost.detail.contains("multipathRelax is off"),
        "{}",
        lost.detail
    );

    let mut rib = Rib::new(RibConfig {
        multipath_relax: true,
        ..cfg()
    });
    let out = two_upstreams(&mut rib, 65101, 65102);
    assert_eq!(
        fib_for(&out, "10.9.0.0/24"),
        vec![vec![ip("192.0.2.1"), ip("192.0.2.2")]]
    );
}

#[test]
fn max_paths_one_installs_one() {
    let mut rib = Rib::new(RibConfig {
        max_paths: 1,
        ..cfg()
    });
    let _ = two_upstreams(&mut rib, 65101, 65101);
    let e = rib.explain(&p("10.9.0.0/24"));
    assert_eq!(e.kernel, "installed via 192.0.2.1");
    assert!(
        e.paths[1].detail.contains("maxPaths 1 reached"),
        "{}",
        e.paths[1].detail
    );
}

#[test]
fn fib_change_only_when_the_set_changes() {
    let mut rib = Rib::new(cfg());
    let _ = two_upstreams(&mut rib, 65101, 65101);
    // Re-announcing the same path changes nothing.
    let out = receive(
        &mut rib,
        2,
        update_v4(&["10.9.0.0/24"], "192.0.2.2", attrs(&[65101, 65301])),
    );
    assert!(out.fib.is_empty());
    assert!(out.updates.is_empty());
    // A longer path from b leaves a alone in the set.
    let out = receive(
        &mut rib,
        2,
        update_v4(&["10.9.0.0/24"], "192.0.2.2", attrs(&[65101, 65101, 65301])),
    );
    assert_eq!(fib_for(&out, "10.9.0.0/24"), vec![vec![ip("192.0.2.1")]]);
    // Withdrawing both removes the route.
    receive(&mut rib, 2, withdraw(&["10.9.0.0/24"]));
    let out = receive(&mut rib, 1, withdraw(&["10.9.0.0/24"]));
    assert_eq!(
        fib_for(&out, "10.9.0.0/24"),
        vec![Vec::<std::net::IpAddr>::new()]
    );
}

#[test]
fn ebgp_and_ibgp_are_not_mixed() {
    let mut rib = Rib::new(RibConfig {
        multipath_relax: true,
        ..cfg()
    });
    add_up(&mut rib, 1, ebgp("a", "192.0.2.1", 65101), "192.0.2.1");
    add_up(&mut rib, 2, ibgp("i", "10.0.0.2"), "10.0.0.2");
    reach(&mut rib, "192.0.2.1", 0);
    reach(&mut rib, "10.0.0.2", 0);
    receive(
        &mut rib,
        1,
        update_v4(&["10.9.0.0/24"], "192.0.2.1", attrs(&[65101])),
    );
    receive(
        &mut rib,
        2,
        update_v4(&["10.9.0.0/24"], "10.0.0.2", attrs(&[65101])),
    );
    let e = rib.explain(&p("10.9.0.0/24"));
    assert_eq!(e.kernel, "installed via 192.0.2.1");
    assert!(e.paths.iter().any(|p| p.detail.contains("eBGP over iBGP")));
}
