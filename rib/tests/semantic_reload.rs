//! Issue 12: a reload that changes `enforceFirstAs` applies to the routes
//! already received, not only to new UPDATEs; and a next hop that is one
//! of our own addresses is a treat-as-withdraw like the other semantic
//! errors (counted, reported for the log, explained).
mod common;

use common::*;
use rib::*;

fn tor_with(enforce_first_as: bool) -> PeerConfig {
    PeerConfig {
        enforce_first_as,
        ..ebgp("tor", "192.0.2.1", 65101)
    }
}

fn status(rib: &Rib, prefix: &str) -> (String, String) {
    let e = rib.explain(&p(prefix));
    assert_eq!(e.paths.len(), 1, "{e}");
    (e.paths[0].status.clone(), e.paths[0].import.clone())
}

#[test]
fn enforce_first_as_changed_by_reload_re_judges_what_was_received() {
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, tor_with(true), "192.0.2.1");
    add_up(&mut rib, 2, ebgp("spine", "192.0.2.2", 65102), "192.0.2.2");
    reach(&mut rib, "192.0.2.1", 0);
    // A route server's path: the first AS is not the peer's.
    receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65199, 65101])),
    );
    receive(
        &mut rib,
        1,
        update_v4(&["10.2.0.0/24"], "192.0.2.1", attrs(&[65101])),
    );
    let (st, why) = status(&rib, "10.1.0.0/24");
    assert!(why.contains("enforceFirstAs"), "{st}: {why}");
    assert_eq!(rib.peer_counters(1).accepted, 1);

    // Off: the stored path is used at once, and advertised.
    let mut out = Outputs::default();
    rib.set_peer_config(1, tor_with(false), &mut out);
    assert_eq!(status(&rib, "10.1.0.0/24").0, "best");
    assert_eq!(fib_for(&out, "10.1.0.0/24"), vec![vec![ip("192.0.2.1")]]);
    assert_eq!(announced(&out, 2).len(), 1, "{out:?}");
    assert_eq!(rib.peer_counters(1).accepted, 2);

    // On again: withdrawn again, from the kernel and from the spine; the
    // path whose first AS is right stays.
    let mut out = Outputs::default();
    rib.set_peer_config(1, tor_with(true), &mut out);
    let (_, why) = status(&rib, "10.1.0.0/24");
    assert!(
        why.contains("treat-as-withdraw: AS_PATH: first AS 65199"),
        "{why}"
    );
    assert_eq!(
        fib_for(&out, "10.1.0.0/24"),
        vec![Vec::<std::net::IpAddr>::new()]
    );
    assert_eq!(withdrawn(&out, 2), vec![p("10.1.0.0/24")]);
    assert_eq!(status(&rib, "10.2.0.0/24").0, "best");
    assert_eq!(rib.peer_counters(1).accepted, 1);
    assert_eq!(rib.peer_counters(1).received, 2);
}

#[test]
fn a_first_as_withdraw_lifted_by_reload_still_gets_the_next_hop_checks() {
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, tor_with(true), "192.0.2.1");
    // Both wrong; the first AS check spoke first.
    receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "224.0.0.5", attrs(&[65199])),
    );
    let mut out = Outputs::default();
    rib.set_peer_config(1, tor_with(false), &mut out);
    let (_, why) = status(&rib, "10.1.0.0/24");
    assert!(
        why.contains("NEXT_HOP 224.0.0.5 is not a unicast address"),
        "{why}"
    );
    assert!(out.fib.is_empty(), "{out:?}");
}

/// The state of an own address arrives after the path, the path goes,
/// and a later UPDATE with the same next hop (watched afresh) gets the
/// same answer again: withdrawn, counted and reported each time.
#[test]
fn an_own_next_hop_learnt_late_is_withdrawn_each_time_it_is_used() {
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, tor_with(true), "192.0.2.1");
    for (round, prefix) in [(1, "10.1.0.0/24"), (2, "10.2.0.0/24")] {
        let out = receive(
            &mut rib,
            1,
            update_v4(&[prefix], "10.0.0.7", attrs(&[65101])),
        );
        assert_eq!(out.watch_nexthops, vec![ip("10.0.0.7")], "round {round}");
        let mut out = Outputs::default();
        rib.set_nexthop(ip("10.0.0.7"), NexthopState::Local, &mut out);
        let (_, why) = status(&rib, prefix);
        assert!(
            why.contains("treat-as-withdraw: next hop 10.0.0.7 is one of our own addresses"),
            "round {round}: {why}"
        );
        assert_eq!(out.import_reports.len(), 1, "round {round}: {out:?}");
        assert_eq!(out.unwatch_nexthops, vec![ip("10.0.0.7")], "round {round}");
        assert_eq!(rib.import_counters(1).treat_as_withdraw, round);
    }
    assert_eq!(rib.peer_counters(1).accepted, 0);
}
