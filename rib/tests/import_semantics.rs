//! Issue 12: semantic checks on import (RFC 4271 §6.3, RFC 4760 §6,
//! RFC 8950) and treat-as-withdraw / attribute discard that are never
//! silent: a reason in `explain`, a counter per peer, a report to log.
mod common;

use std::time::{Duration, Instant};

use common::*;
use rib::*;
use wire::{Family, MpReach, NextHop};

fn explain_import(rib: &Rib, prefix: &str) -> (String, String) {
    let e = rib.explain(&p(prefix));
    assert_eq!(e.paths.len(), 1, "{e}");
    (e.paths[0].status.clone(), e.paths[0].import.clone())
}

fn tor() -> Rib {
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, ebgp("tor", "192.0.2.1", 65101), "192.0.2.1");
    reach(&mut rib, "192.0.2.1", 0);
    rib
}

fn receive_report(rib: &mut Rib, u: wire::Update) -> (ImportReport, Outputs) {
    let mut out = Outputs::default();
    let r = rib.receive(1, u, &mut out);
    (r, out)
}

#[test]
fn treat_as_withdraw_is_explained_counted_and_reported() {
    let mut rib = tor();
    receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65101])),
    );
    let mut u = update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65101]));
    u.treat_as_withdraw = Some("malformed AS_PATH: segment overruns attribute".into());
    let (report, out) = receive_report(&mut rib, u);
    assert_eq!(
        fib_for(&out, "10.1.0.0/24"),
        vec![Vec::<std::net::IpAddr>::new()]
    );
    assert_eq!(
        report.treat_as_withdraw.as_deref(),
        Some("malformed AS_PATH: segment overruns attribute")
    );
    assert_eq!(
        report.lines().collect::<Vec<_>>(),
        vec!["treat-as-withdraw: malformed AS_PATH: segment overruns attribute"]
    );
    let (status, import) = explain_import(&rib, "10.1.0.0/24");
    assert_eq!(status, "rejected");
    assert_eq!(
        import,
        "rejected: treat-as-withdraw: malformed AS_PATH: segment overruns attribute"
    );
    assert_eq!(rib.import_counters(1).treat_as_withdraw, 1);
    // A reload re-judges paths, but never makes a malformed one usable.
    let mut out = Outputs::default();
    rib.set_peer_config(1, ebgp("tor", "192.0.2.1", 65101), &mut out);
    assert_eq!(explain_import(&rib, "10.1.0.0/24").0, "rejected");
    // The same route sent again, well-formed, replaces it.
    let out = receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65101])),
    );
    assert_eq!(fib_for(&out, "10.1.0.0/24"), vec![vec![ip("192.0.2.1")]]);
    assert_eq!(rib.peer_counters(1).received, 1);
}

#[test]
fn attribute_discards_are_counted_and_reported() {
    let mut rib = tor();
    let mut u = update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65101]));
    u.attribute_discards = vec!["malformed AGGREGATOR: bad flags or length, discarded".into()];
    let (report, out) = receive_report(&mut rib, u);
    assert_eq!(fib_for(&out, "10.1.0.0/24"), vec![vec![ip("192.0.2.1")]]);
    assert_eq!(
        report.lines().collect::<Vec<_>>(),
        vec!["attribute discard: malformed AGGREGATOR: bad flags or length, discarded"]
    );
    assert_eq!(rib.import_counters(1).attribute_discards, 1);
    assert_eq!(rib.import_counters(1).treat_as_withdraw, 0);
}

#[test]
fn ebgp_first_as_must_be_the_peers() {
    let mut rib = tor();
    let (report, out) = receive_report(
        &mut rib,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65999, 65101])),
    );
    assert!(out.fib.is_empty(), "{out:?}");
    let why = "AS_PATH: first AS 65999 is not the peer's AS 65101 (RFC 4271 §6.3, enforceFirstAs)";
    assert_eq!(report.treat_as_withdraw.as_deref(), Some(why));
    let (status, import) = explain_import(&rib, "10.1.0.0/24");
    assert_eq!(status, "rejected");
    assert_eq!(import, format!("rejected: treat-as-withdraw: {why}"));
    // An empty AS_PATH from an eBGP peer has no first AS either.
    let (report, _) = receive_report(
        &mut rib,
        update_v4(&["10.2.0.0/24"], "192.0.2.1", attrs(&[])),
    );
    assert!(report
        .treat_as_withdraw
        .unwrap()
        .contains("first AS none is not the peer's AS 65101"));
    assert_eq!(rib.import_counters(1).treat_as_withdraw, 2);

    // enforceFirstAs: false (e.g. a route server) accepts it.
    let mut rib = Rib::new(cfg());
    let rs = PeerConfig {
        enforce_first_as: false,
        ..ebgp("rs", "192.0.2.1", 65101)
    };
    add_up(&mut rib, 1, rs, "192.0.2.1");
    reach(&mut rib, "192.0.2.1", 0);
    let out = receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65999, 65101])),
    );
    assert_eq!(fib_for(&out, "10.1.0.0/24"), vec![vec![ip("192.0.2.1")]]);

    // iBGP is not checked: the path starts with whoever the peer heard it from.
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, ibgp("rr", "10.0.0.2"), "10.0.0.2");
    reach(&mut rib, "10.0.0.2", 0);
    let out = receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "10.0.0.2", attrs(&[65999])),
    );
    assert_eq!(fib_for(&out, "10.1.0.0/24"), vec![vec![ip("10.0.0.2")]]);
}

#[test]
fn unusable_next_hops_are_treat_as_withdraw() {
    for (nh, words) in [
        ("0.0.0.0", "NEXT_HOP 0.0.0.0 is unspecified (RFC 4271 §6.3)"),
        (
            "224.0.0.5",
            "NEXT_HOP 224.0.0.5 is not a unicast address (RFC 4271 §6.3)",
        ),
        (
            "255.255.255.255",
            "NEXT_HOP 255.255.255.255 is not a unicast address (RFC 4271 §6.3)",
        ),
    ] {
        let mut rib = tor();
        let (report, out) =
            receive_report(&mut rib, update_v4(&["10.1.0.0/24"], nh, attrs(&[65101])));
        assert_eq!(report.treat_as_withdraw.as_deref(), Some(words), "{nh}");
        assert!(out.watch_nexthops.is_empty(), "{nh}: never resolved");
        assert_eq!(explain_import(&rib, "10.1.0.0/24").0, "rejected");
    }
    let mut rib = tor();
    let (report, _) = receive_report(
        &mut rib,
        update_v6(&["2001:db8::/32"], "ff02::5", attrs(&[65101])),
    );
    assert_eq!(
        report.treat_as_withdraw.as_deref(),
        Some("MP_REACH_NLRI next hop ff02::5 is not a unicast address (RFC 4271 §6.3)")
    );
}

#[test]
fn ipv6_next_hop_for_ipv4_nlri_needs_extended_next_hop() {
    let v4_over_v6 = || wire::Update {
        attributes: attrs(&[65101]),
        mp_reach: Some(MpReach {
            family: Family::Ipv4Unicast,
            next_hop: NextHop::new(ip("2001:db8::1")),
            nlri: vec![p("10.1.0.0/24")],
        }),
        ..Default::default()
    };
    let mut rib = tor();
    let (report, _) = receive_report(&mut rib, v4_over_v6());
    assert!(
        report
            .treat_as_withdraw
            .as_deref()
            .unwrap()
            .contains("IPv6 next hop 2001:db8::1 for IPv4 NLRI without the extended next hop"),
        "{report:?}"
    );
    assert_eq!(explain_import(&rib, "10.1.0.0/24").0, "rejected");

    // Negotiated (RFC 8950): accepted.
    let mut rib = Rib::new(cfg());
    rib.add_peer(1, ebgp("tor", "192.0.2.1", 65101));
    let mut out = Outputs::default();
    rib.peer_up(
        1,
        SessionInfo {
            extended_next_hop_v4: true,
            ..session("192.0.2.1")
        },
        &mut out,
    );
    reach(&mut rib, "2001:db8::1", 0);
    let (report, out) = receive_report(&mut rib, v4_over_v6());
    assert_eq!(report, ImportReport::default());
    assert_eq!(fib_for(&out, "10.1.0.0/24"), vec![vec![ip("2001:db8::1")]]);
}

#[test]
fn nlri_of_a_family_not_negotiated_are_ignored_and_counted() {
    let mut rib = Rib::new(cfg());
    rib.add_peer(1, ebgp("tor", "192.0.2.1", 65101));
    let mut out = Outputs::default();
    rib.peer_up(
        1,
        SessionInfo {
            families: vec![Family::Ipv4Unicast],
            ..session("192.0.2.1")
        },
        &mut out,
    );
    reach(&mut rib, "2001:db8::1", 0);
    let (report, out) = receive_report(
        &mut rib,
        update_v6(
            &["2001:db8:1::/48", "2001:db8:2::/48"],
            "2001:db8::1",
            attrs(&[65101]),
        ),
    );
    assert!(
        out.fib.is_empty() && out.watch_nexthops.is_empty(),
        "{out:?}"
    );
    assert_eq!(report.ignored_nlri, 2);
    assert_eq!(report.ignored_family, Some(Family::Ipv6Unicast));
    assert!(rib.explain(&p("2001:db8:1::/48")).paths.is_empty());
    assert_eq!(rib.peer_counters(1).received, 0);
    let (report, _) = receive_report(&mut rib, withdraw(&["2001:db8:1::/48"]));
    assert_eq!(report.ignored_nlri, 1);
    assert_eq!(rib.import_counters(1).ignored_nlri, 3);
    assert_eq!(rib.import_counters(1).treat_as_withdraw, 0);
}

/// RFC 4271 §6.3: a next hop that is one of our own addresses is
/// semantically incorrect, except from a peer on this node (the CNI on
/// ::1), whose routes are kept and re-advertised with next-hop-self. Like
/// the other semantic errors it is a treat-as-withdraw: explained,
/// counted, reported for the log.
#[test]
fn own_address_next_hop_only_from_peers_on_this_node() {
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, ebgp("tor", "192.0.2.1", 65101), "192.0.2.1");
    add_up(&mut rib, 2, ebgp("cni", "::1", 65200), "10.0.0.9");
    add_up(&mut rib, 3, ebgp("spine", "192.0.2.3", 65103), "192.0.2.3");
    reach(&mut rib, "192.0.2.1", 0);
    let mut out = Outputs::default();
    rib.set_nexthop(ip("10.0.0.1"), NexthopState::Local, &mut out);
    rib.set_nexthop(ip("::1"), NexthopState::Local, &mut out);

    // From the ToR, next hop 10.0.0.1 (ours): ignored, with the reason.
    let (report, out) = receive_report(
        &mut rib,
        update_v4(&["10.1.0.0/24"], "10.0.0.1", attrs(&[65101])),
    );
    assert!(announced(&out, 3).is_empty(), "{out:?}");
    assert_eq!(
        report.treat_as_withdraw.as_deref(),
        Some("next hop 10.0.0.1 is one of our own addresses (RFC 4271 §6.3)")
    );
    let (status, import) = explain_import(&rib, "10.1.0.0/24");
    assert_eq!(status, "rejected");
    assert!(
        import.contains("treat-as-withdraw: next hop 10.0.0.1 is one of our own addresses"),
        "{import}"
    );
    assert_eq!(rib.import_counters(1).treat_as_withdraw, 1);
    assert_eq!(rib.peer_counters(1).accepted, 0);

    // From the CNI on ::1, next hop ::1: best, not installed, re-advertised.
    let out = receive(
        &mut rib,
        2,
        update_v6(&["2001:db8:42::/64"], "::1", attrs(&[65200])),
    );
    let e = rib.explain(&p("2001:db8:42::/64"));
    assert_eq!(e.paths[0].status, "best", "{e}");
    assert!(out.fib.is_empty(), "{out:?}");
    let sent = announced(&out, 3);
    assert_eq!(sent.len(), 1, "{out:?}");
    assert_eq!(sent[0].1, NextHop::new(ip("fd00::1")), "next-hop-self");

    // The state may arrive after the path: then the path is withdrawn,
    // counted and reported the same way.
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, ebgp("tor", "192.0.2.1", 65101), "192.0.2.1");
    reach(&mut rib, "10.0.0.7", 0);
    let out = receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "10.0.0.7", attrs(&[65101])),
    );
    assert_eq!(fib_for(&out, "10.1.0.0/24"), vec![vec![ip("10.0.0.7")]]);
    let mut out = Outputs::default();
    rib.set_nexthop(ip("10.0.0.7"), NexthopState::Local, &mut out);
    assert_eq!(
        fib_for(&out, "10.1.0.0/24"),
        vec![Vec::<std::net::IpAddr>::new()]
    );
    assert_eq!(explain_import(&rib, "10.1.0.0/24").0, "rejected");
    assert_eq!(rib.import_counters(1).treat_as_withdraw, 1);
    assert_eq!(rib.peer_counters(1).accepted, 0);
    assert_eq!(out.import_reports.len(), 1, "{out:?}");
    assert_eq!(out.import_reports[0].0, 1);
    // Its next hop is no longer watched: nothing uses it.
    assert_eq!(out.unwatch_nexthops, vec![ip("10.0.0.7")]);
}

#[test]
fn import_log_is_rate_limited_per_peer_and_line() {
    let mut log = ImportLog::new(Duration::from_secs(60));
    let t0 = Instant::now();
    assert_eq!(log.admit(1, "treat-as-withdraw: x", t0), Some(0));
    assert_eq!(log.admit(1, "treat-as-withdraw: x", t0), None);
    assert_eq!(
        log.admit(1, "treat-as-withdraw: x", t0 + Duration::from_secs(59)),
        None
    );
    // Another line or another peer has its own limit.
    assert_eq!(log.admit(1, "attribute discard: y", t0), Some(0));
    assert_eq!(log.admit(2, "treat-as-withdraw: x", t0), Some(0));
    // After the window: logged again, with the count suppressed meanwhile.
    assert_eq!(
        log.admit(1, "treat-as-withdraw: x", t0 + Duration::from_secs(60)),
        Some(2)
    );
    // A peer inventing reasons does not grow the log's memory without bound.
    for i in 0..10_000 {
        log.admit(3, &format!("attribute discard: {i}"), t0);
    }
    assert_eq!(
        log.admit(3, "attribute discard: another", t0 + Duration::from_secs(1)),
        None
    );
}
