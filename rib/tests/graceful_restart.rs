//! Graceful restart, helper side (RFC 4724 §4.2): a restarting peer's
//! paths are kept as stale until it re-sends them and End-of-RIB, or the
//! caller gives up on it.

mod common;

use common::*;
use rib::*;
use wire::{Family, MpUnreach, Update};

fn eor(family: Family) -> Update {
    match family {
        Family::Ipv4Unicast => Update::default(),
        f => Update {
            mp_unreach: Some(MpUnreach {
                family: f,
                withdrawn: vec![],
            }),
            ..Default::default()
        },
    }
}

/// Peer 1 ("a", restarting) sends three prefixes; peer 2 ("b") hears them.
fn setup() -> Rib {
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, ebgp("a", "192.0.2.1", 65101), "192.0.2.1");
    add_up(&mut rib, 2, ebgp("b", "192.0.2.2", 65102), "192.0.2.2");
    reach(&mut rib, "192.0.2.1", 0);
    reach(&mut rib, "2001:db8::1", 0);
    receive(
        &mut rib,
        1,
        update_v4(
            &["10.1.0.0/24", "10.1.1.0/24", "10.1.2.0/24"],
            "192.0.2.1",
            attrs(&[65101]),
        ),
    );
    receive(
        &mut rib,
        1,
        update_v6(&["2001:db8:1::/48"], "2001:db8::1", attrs(&[65101])),
    );
    rib
}

#[test]
fn restarting_peer_keeps_its_routes_in_fib_and_towards_others() {
    let mut rib = setup();
    assert_eq!(rib.peer_restarting(1), 4);
    // Nothing withdrawn from the kernel or from the other peer: the
    // restart itself produces no outputs at all.
    assert!(rib.is_stale(1, &p("10.1.0.0/24")));
    assert_eq!(rib.stale_count(1), 4);
    let e = rib.explain(&p("10.1.0.0/24"));
    assert_eq!(e.paths.len(), 1);
    assert_eq!(e.paths[0].status, "best", "still the best path");
    assert_eq!(e.paths[0].stale.as_deref(), Some("peer restarting"));
    assert!(e.to_string().contains("stale (peer restarting)"), "{e}");
    assert!(e.installed, "{}", e.kernel);
    let loc = rib.routes(&RouteQuery {
        prefix: Some(p("10.1.0.0/24")),
        peer: None,
        table: Table::Loc,
    });
    assert_eq!(loc[0].stale.as_deref(), Some("peer restarting"));
    assert_eq!(rib.peer_counters(1).received, 4);
    assert_eq!(rib.peer_counters(2).advertised, 4, "still advertised to b");
    // The session is gone: its UPDATEs are not taken until it is back.
    let out = receive(&mut rib, 1, withdraw(&["10.1.0.0/24"]));
    assert!(out.fib.is_empty());
    assert!(rib.is_stale(1, &p("10.1.0.0/24")));
}

#[test]
fn end_of_rib_removes_what_the_restarted_peer_did_not_resend() {
    let mut rib = setup();
    rib.peer_restarting(1);
    let mut out = Outputs::default();
    rib.peer_up(1, session("192.0.2.1"), &mut out);
    // Back: re-announces one prefix (changed AS path), not the others.
    let out = receive(
        &mut rib,
        1,
        update_v4(&["10.1.1.0/24"], "192.0.2.1", attrs(&[65101, 65201])),
    );
    assert!(!rib.is_stale(1, &p("10.1.1.0/24")));
    assert_eq!(rib.explain(&p("10.1.1.0/24")).paths[0].stale, None);
    assert!(out.fib.is_empty(), "same next hop: no kernel change");
    assert_eq!(announced(&out, 2).len(), 1, "the new attributes go on");
    assert_eq!(rib.stale_count(1), 3);

    // End-of-RIB for IPv4: the two IPv4 prefixes not re-sent go, from the
    // kernel and from peer b; the IPv6 one waits for its own End-of-RIB.
    let out = receive(&mut rib, 1, eor(Family::Ipv4Unicast));
    let mut gone = withdrawn(&out, 2);
    gone.sort();
    assert_eq!(gone, vec![p("10.1.0.0/24"), p("10.1.2.0/24")]);
    assert_eq!(
        fib_for(&out, "10.1.0.0/24"),
        vec![Vec::<std::net::IpAddr>::new()]
    );
    assert_eq!(
        fib_for(&out, "10.1.2.0/24"),
        vec![Vec::<std::net::IpAddr>::new()]
    );
    assert!(fib_for(&out, "10.1.1.0/24").is_empty());
    assert_eq!(rib.stale_count(1), 1);
    assert!(rib.is_stale(1, &p("2001:db8:1::/48")));
    assert_eq!(rib.peer_counters(1).received, 2);

    let out = receive(&mut rib, 1, eor(Family::Ipv6Unicast));
    assert_eq!(withdrawn(&out, 2), vec![p("2001:db8:1::/48")]);
    assert_eq!(rib.stale_count(1), 0);
    assert_eq!(rib.peer_counters(1).received, 1);
}

#[test]
fn giving_up_removes_every_stale_path() {
    let mut rib = setup();
    rib.peer_restarting(1);
    let mut out = Outputs::default();
    assert_eq!(rib.remove_stale(1, None, &mut out), 4);
    assert_eq!(withdrawn(&out, 2).len(), 4);
    assert_eq!(out.fib.len(), 4);
    assert!(out.fib.iter().all(|c| c.next_hops.is_empty()));
    assert_eq!(rib.peer_counters(1).received, 0);
    let mut again = Outputs::default();
    assert_eq!(rib.remove_stale(1, None, &mut again), 0);
    assert!(again.fib.is_empty() && again.updates.is_empty());
}

#[test]
fn a_family_without_forwarding_state_goes_at_once() {
    let mut rib = setup();
    rib.peer_restarting(1);
    let mut out = Outputs::default();
    assert_eq!(
        rib.remove_stale(1, Some(&[Family::Ipv6Unicast]), &mut out),
        1
    );
    assert_eq!(withdrawn(&out, 2), vec![p("2001:db8:1::/48")]);
    assert_eq!(rib.stale_count(1), 3);
}

#[test]
fn a_session_end_without_restart_drops_stale_paths_too() {
    let mut rib = setup();
    rib.peer_restarting(1);
    let mut out = Outputs::default();
    rib.peer_down(1, &mut out);
    assert_eq!(rib.stale_count(1), 0);
    assert_eq!(withdrawn(&out, 2).len(), 4);
    assert_eq!(out.fib.len(), 4);
}

#[test]
fn a_second_loss_before_end_of_rib_keeps_old_and_new_paths_stale() {
    let mut rib = setup();
    rib.peer_restarting(1);
    let mut out = Outputs::default();
    rib.peer_up(1, session("192.0.2.1"), &mut out);
    receive(
        &mut rib,
        1,
        update_v4(&["10.1.9.0/24"], "192.0.2.1", attrs(&[65101])),
    );
    assert_eq!(rib.stale_count(1), 4);
    assert_eq!(rib.peer_restarting(1), 5);
}
