mod common;

use common::*;
use rib::*;

fn scenario() -> Rib {
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, ebgp("tor-a", "192.0.2.1", 65101), "192.0.2.1");
    add_up(&mut rib, 2, ebgp("tor-b", "192.0.2.2", 65101), "192.0.2.2");
    add_up(
        &mut rib,
        3,
        PeerConfig {
            import: rib::policy::PolicyChain::Unset,
            ..ebgp("lab", "192.0.2.3", 65103)
        },
        "192.0.2.3",
    );
    reach(&mut rib, "192.0.2.1", 0);
    reach(&mut rib, "192.0.2.2", 0);
    reach(&mut rib, "192.0.2.3", 0);
    receive(
        &mut rib,
        1,
        update_v4(&["10.8.0.0/16"], "192.0.2.1", attrs(&[65101])),
    );
    receive(
        &mut rib,
        1,
        update_v4(&["10.8.1.0/24"], "192.0.2.1", attrs(&[65101, 65201])),
    );
    receive(
        &mut rib,
        2,
        update_v4(&["10.8.1.0/24"], "192.0.2.2", attrs(&[65101, 65301, 65201])),
    );
    receive(
        &mut rib,
        3,
        update_v4(&["10.8.1.0/24"], "192.0.2.3", attrs(&[65103])),
    );
    rib
}

#[test]
fn explain_names_winner_loser_step_and_exports() {
    let rib = scenario();
    let e = rib.explain(&p("10.8.1.0/24"));
    let text = e.to_string();
    println!("{text}");
    assert!(text.starts_with("10.8.1.0/24: best via tor-a"));
    assert!(
        text.contains("lost to tor-a's path at step: shorter AS_PATH (2 vs 3)"),
        "{text}"
    );
    assert!(text.contains("no import policy (RFC 8212"));
    assert!(text.contains("kernel: installed via 192.0.2.1"));
    assert!(text.contains("learned from this peer"));
    assert!(
        text.contains("next hop 10.0.0.1  as-path 65000 65101 65201"),
        "{text}"
    );
    assert!(text.contains("(also covered by the less specific route 10.8.0.0/16)"));
    assert!(text.lines().all(|l| l.len() <= 120), "short lines");
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["paths"][0]["status"], "best");
    assert_eq!(json["installed"], true);
}

#[test]
fn explain_without_a_path_says_so_and_names_the_covering_route() {
    let rib = scenario();
    let e = rib.explain(&p("10.8.9.0/24"));
    assert_eq!(
        e.summary,
        "no path for 10.8.9.0/24; it is covered by the less specific route 10.8.0.0/16 in Loc-RIB"
    );
    let e = rib.explain(&p("172.16.0.0/12"));
    assert_eq!(
        e.to_string().trim(),
        "no path for 172.16.0.0/12, and no less specific route covers it"
    );
}

#[test]
fn routes_views_serialize_camel_case() {
    let rib = scenario();
    let loc = rib.routes(&RouteQuery {
        prefix: Some(p("10.8.1.0/24")),
        peer: None,
        table: Table::Loc,
    });
    assert_eq!(loc.len(), 2, "rejected path is not in Loc-RIB");
    assert!(loc[0].best && loc[0].installed);
    let v = serde_json::to_value(&loc[0]).unwrap();
    for k in [
        "prefix",
        "best",
        "installed",
        "nextHops",
        "asPath",
        "peer",
        "origin",
        "localPref",
        "med",
        "communities",
        "largeCommunities",
        "multipath",
    ] {
        assert!(v.get(k).is_some(), "missing {k}: {v}");
    }
    assert_eq!(
        v["asPath"],
        serde_json::json!([{"type": "sequence", "asns": [65101, 65201]}])
    );
    assert_eq!(v["nextHops"][0], "192.0.2.1");
    assert_eq!(v["peer"], "tor-a");
    assert_eq!(v["prefix"], "10.8.1.0/24");

    // Longest match when the exact prefix is absent.
    let lm = rib.routes(&RouteQuery {
        prefix: Some(p("10.8.200.1/32")),
        peer: None,
        table: Table::Loc,
    });
    assert_eq!(lm[0].prefix, p("10.8.0.0/16"));

    let received = rib.routes(&RouteQuery {
        prefix: None,
        peer: Some(3),
        table: Table::Received,
    });
    assert_eq!(received.len(), 1);
    assert!(!received[0].accepted);
    let adv = rib.routes(&RouteQuery {
        prefix: None,
        peer: Some(3),
        table: Table::Advertised,
    });
    assert_eq!(adv.len(), 2);
    assert_eq!(adv[0].as_path.to_string(), "65000 65101");
    assert_eq!(
        rib.peer_counters(3),
        PeerCounters {
            received: 1,
            accepted: 0,
            advertised: 2,
            too_big: 0
        }
    );
}
