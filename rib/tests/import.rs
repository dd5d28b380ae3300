mod common;

use common::*;
use rib::policy::{Action, AsPathMatch, Match, Policy, PolicyChain, Rule, Set};
use rib::*;
use wire::{Community, Family, LargeCommunity};

fn loc(rib: &Rib, prefix: &str) -> Vec<RouteView> {
    rib.routes(&RouteQuery {
        prefix: Some(p(prefix)),
        peer: None,
        table: Table::Loc,
    })
}

#[test]
fn as_path_loop_rejected_with_allow_as_in_0() {
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, ebgp("tor", "192.0.2.1", 65101), "192.0.2.1");
    reach(&mut rib, "192.0.2.1", 0);
    receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65101, LOCAL_ASN])),
    );
    assert!(loc(&rib, "10.1.0.0/24").is_empty());
    let e = rib.explain(&p("10.1.0.0/24"));
    assert_eq!(e.paths.len(), 1);
    assert_eq!(e.paths[0].status, "rejected");
    assert!(
        e.paths[0]
            .import
            .contains("AS path loop: contains local AS 65000 (1 times, allowAsIn 0)"),
        "{}",
        e.paths[0].import
    );
    assert_eq!(
        rib.peer_counters(1),
        PeerCounters {
            received: 1,
            accepted: 0,
            advertised: 0,
            too_big: 0
        }
    );
}

#[test]
fn as_path_loop_accepted_with_allow_as_in_1() {
    let mut rib = Rib::new(cfg());
    add_up(
        &mut rib,
        1,
        PeerConfig {
            allow_as_in: 1,
            ..ebgp("tor", "192.0.2.1", 65101)
        },
        "192.0.2.1",
    );
    reach(&mut rib, "192.0.2.1", 0);
    let out = receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65101, LOCAL_ASN])),
    );
    assert_eq!(fib_for(&out, "10.1.0.0/24"), vec![vec![ip("192.0.2.1")]]);
    assert!(loc(&rib, "10.1.0.0/24")[0].best);
    // Twice is still too many.
    receive(
        &mut rib,
        1,
        update_v4(
            &["10.1.0.0/24"],
            "192.0.2.1",
            attrs(&[65101, LOCAL_ASN, 65102, LOCAL_ASN]),
        ),
    );
    assert!(rib.explain(&p("10.1.0.0/24")).paths[0]
        .import
        .contains("(2 times, allowAsIn 1)"));
}

#[test]
fn rfc8212_ebgp_without_import_policy_rejects() {
    let mut rib = Rib::new(cfg());
    add_up(
        &mut rib,
        1,
        PeerConfig {
            import: PolicyChain::Unset,
            ..ebgp("tor", "192.0.2.1", 65101)
        },
        "192.0.2.1",
    );
    reach(&mut rib, "192.0.2.1", 0);
    let out = receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65101])),
    );
    assert!(out.fib.is_empty());
    let e = rib.explain(&p("10.1.0.0/24"));
    assert!(
        e.paths[0].import.contains("no import policy (RFC 8212"),
        "{}",
        e.paths[0].import
    );
}

#[test]
fn ibgp_without_import_policy_accepts_and_defaults_local_pref() {
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, ibgp("rr", "10.0.0.2"), "10.0.0.2");
    reach(&mut rib, "10.0.0.9", 0);
    receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "10.0.0.9", attrs(&[])),
    );
    let r = loc(&rib, "10.1.0.0/24");
    assert!(r[0].best);
    assert_eq!(r[0].as_path.to_string(), "");
}

#[test]
fn import_none_rejects() {
    let mut rib = Rib::new(cfg());
    add_up(
        &mut rib,
        1,
        PeerConfig {
            import: PolicyChain::None,
            ..ebgp("tor", "192.0.2.1", 65101)
        },
        "192.0.2.1",
    );
    receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65101])),
    );
    assert!(rib.explain(&p("10.1.0.0/24")).paths[0]
        .import
        .contains("import none"));
}

#[test]
fn ebgp_local_pref_is_ignored() {
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, ebgp("a", "192.0.2.1", 65101), "192.0.2.1");
    add_up(&mut rib, 2, ebgp("b", "192.0.2.2", 65101), "192.0.2.2");
    reach(&mut rib, "192.0.2.1", 0);
    reach(&mut rib, "192.0.2.2", 0);
    let high = wire::PathAttributes {
        local_pref: Some(1000),
        ..attrs(&[65101, 65201])
    };
    receive(&mut rib, 1, update_v4(&["10.1.0.0/24"], "192.0.2.1", high));
    receive(
        &mut rib,
        2,
        update_v4(&["10.1.0.0/24"], "192.0.2.2", attrs(&[65101])),
    );
    let r = loc(&rib, "10.1.0.0/24");
    let best = r.iter().find(|v| v.best).unwrap();
    assert_eq!(best.peer, "b");
}

/// A Rib with one eBGP peer using `policies` as its import chain; returns
/// (accepted?, Loc-RIB view or rejection reason) for a path.
fn judge(
    policies: Vec<Policy>,
    prefix: &str,
    a: wire::PathAttributes,
) -> Result<RouteView, String> {
    let names = policies.iter().map(|p| p.name.clone()).collect();
    let mut rib = Rib::new(RibConfig { policies, ..cfg() });
    add_up(
        &mut rib,
        1,
        PeerConfig {
            import: PolicyChain::Named(names),
            ..ebgp("tor", "192.0.2.1", 65101)
        },
        "192.0.2.1",
    );
    reach(&mut rib, "192.0.2.1", 0);
    reach(&mut rib, "2001:db8::1", 0);
    let u = if prefix.contains(':') {
        update_v6(&[prefix], "2001:db8::1", a)
    } else {
        update_v4(&[prefix], "192.0.2.1", a)
    };
    receive(&mut rib, 1, u);
    let e = rib.explain(&p(prefix));
    match loc(&rib, prefix).into_iter().next() {
        Some(v) => Ok(v),
        None => Err(e.paths[0].import.clone()),
    }
}

fn accept_if(m: Match) -> Vec<Policy> {
    vec![Policy {
        name: "in".into(),
        rules: vec![Rule {
            matches: m,
            set: Set::default(),
            action: Action::Accept,
        }],
    }]
}

#[test]
fn policy_prefix_ge_le() {
    let m = Match {
        prefixes: vec!["10.0.0.0/8 ge 24 le 24".parse().unwrap()],
        ..Default::default()
    };
    assert!(judge(accept_if(m.clone()), "10.1.2.0/24", attrs(&[65101])).is_ok());
    let err = judge(accept_if(m.clone()), "10.1.0.0/16", attrs(&[65101])).unwrap_err();
    assert!(err.contains("no rule accepted it"), "{err}");
    assert!(judge(accept_if(m), "11.1.2.0/24", attrs(&[65101])).is_err());
    let exact = Match {
        prefixes: vec!["10.1.0.0/16".parse().unwrap()],
        ..Default::default()
    };
    assert!(judge(accept_if(exact.clone()), "10.1.0.0/16", attrs(&[65101])).is_ok());
    assert!(judge(accept_if(exact), "10.1.1.0/24", attrs(&[65101])).is_err());
}

#[test]
fn policy_communities_and_large_communities() {
    let c: Community = "65101:7".parse().unwrap();
    let lc: LargeCommunity = "65101:1:2".parse().unwrap();
    let m = Match {
        communities: vec![c],
        ..Default::default()
    };
    let with = wire::PathAttributes {
        communities: wire::thin_vec![c],
        ..attrs(&[65101])
    };
    assert!(judge(accept_if(m.clone()), "10.1.0.0/24", with).is_ok());
    assert!(judge(accept_if(m), "10.1.0.0/24", attrs(&[65101])).is_err());
    let m = Match {
        large_communities: vec![lc],
        ..Default::default()
    };
    let with = wire::PathAttributes {
        large_communities: wire::thin_vec![lc],
        ..attrs(&[65101])
    };
    assert!(judge(accept_if(m.clone()), "10.1.0.0/24", with).is_ok());
    assert!(judge(accept_if(m), "10.1.0.0/24", attrs(&[65101])).is_err());
}

#[test]
fn policy_as_path_conditions() {
    let contains = Match {
        as_path: Some(AsPathMatch {
            contains: Some(65201),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(judge(
        accept_if(contains.clone()),
        "10.1.0.0/24",
        attrs(&[65101, 65201, 65301])
    )
    .is_ok());
    assert!(judge(accept_if(contains), "10.1.0.0/24", attrs(&[65101])).is_err());
    let orig = Match {
        as_path: Some(AsPathMatch {
            originated_by: Some(65301),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(judge(
        accept_if(orig.clone()),
        "10.1.0.0/24",
        attrs(&[65101, 65301])
    )
    .is_ok());
    assert!(judge(accept_if(orig), "10.1.0.0/24", attrs(&[65301, 65101])).is_err());
    let len = Match {
        as_path: Some(AsPathMatch {
            min_length: Some(2),
            max_length: Some(3),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(judge(accept_if(len.clone()), "10.1.0.0/24", attrs(&[65101])).is_err());
    assert!(judge(accept_if(len.clone()), "10.1.0.0/24", attrs(&[65101, 1])).is_ok());
    assert!(judge(accept_if(len.clone()), "10.1.0.0/24", attrs(&[65101, 1, 2])).is_ok());
    assert!(judge(accept_if(len), "10.1.0.0/24", attrs(&[65101, 1, 2, 3])).is_err());
}

#[test]
fn policy_neighbors_and_family() {
    let m = Match {
        neighbors: vec!["tor".into()],
        ..Default::default()
    };
    assert!(judge(accept_if(m), "10.1.0.0/24", attrs(&[65101])).is_ok());
    let m = Match {
        neighbors: vec!["other".into()],
        ..Default::default()
    };
    assert!(judge(accept_if(m), "10.1.0.0/24", attrs(&[65101])).is_err());
    let m = Match {
        family: Some(Family::Ipv6Unicast),
        ..Default::default()
    };
    assert!(judge(accept_if(m.clone()), "2001:db8:1::/48", attrs(&[65101])).is_ok());
    assert!(judge(accept_if(m), "10.1.0.0/24", attrs(&[65101])).is_err());
}

#[test]
fn policy_actions_set_continue_reject() {
    let c: Community = "65000:100".parse().unwrap();
    let old: Community = "65101:1".parse().unwrap();
    let lc: LargeCommunity = "65000:1:1".parse().unwrap();
    let policies = vec![
        Policy {
            name: "mark".into(),
            rules: vec![Rule {
                matches: Match::default(),
                set: Set {
                    local_pref: Some(200),
                    med: Some(5),
                    add_communities: vec![c],
                    remove_communities: vec![old],
                    add_large_communities: vec![lc],
                    prepend_as_path: Some(2),
                    ..Default::default()
                },
                action: Action::Continue,
            }],
        },
        Policy {
            name: "filter".into(),
            rules: vec![
                Rule {
                    matches: Match {
                        prefixes: vec!["10.66.0.0/16 le 32".parse().unwrap()],
                        ..Default::default()
                    },
                    set: Set::default(),
                    action: Action::Reject,
                },
                Rule {
                    action: Action::Accept,
                    ..Default::default()
                },
            ],
        },
    ];
    let a = wire::PathAttributes {
        communities: wire::thin_vec![old],
        ..attrs(&[65101])
    };
    let v = judge(policies.clone(), "10.1.0.0/24", a.clone()).unwrap();
    assert_eq!(v.local_pref, Some(200));
    assert_eq!(v.med, Some(5));
    assert_eq!(v.communities, vec!["65000:100".to_string()]);
    assert_eq!(v.large_communities, vec!["65000:1:1".to_string()]);
    // Inbound, prepends are the peer's AS (65101), not ours.
    assert_eq!(v.as_path.to_string(), "65101 65101 65101");
    let err = judge(policies, "10.66.1.0/24", a).unwrap_err();
    assert!(
        err.contains("rejected by policy \"filter\" rule 1 (of 2)"),
        "{err}"
    );
}

#[test]
fn undefined_policy_rejects_with_its_name() {
    let mut rib = Rib::new(cfg());
    add_up(
        &mut rib,
        1,
        PeerConfig {
            import: PolicyChain::Named(vec!["missing".into()]),
            ..ebgp("tor", "192.0.2.1", 65101)
        },
        "192.0.2.1",
    );
    receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65101])),
    );
    assert!(rib.explain(&p("10.1.0.0/24")).paths[0]
        .import
        .contains("policy \"missing\" is not defined"));
}

#[test]
fn treat_as_withdraw_removes_the_path() {
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, ebgp("tor", "192.0.2.1", 65101), "192.0.2.1");
    reach(&mut rib, "192.0.2.1", 0);
    receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65101])),
    );
    let mut u = update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65101]));
    u.treat_as_withdraw = Some("malformed AS_PATH".into());
    let out = receive(&mut rib, 1, u);
    assert_eq!(
        fib_for(&out, "10.1.0.0/24"),
        vec![Vec::<std::net::IpAddr>::new()]
    );
    assert!(loc(&rib, "10.1.0.0/24").is_empty());
}

#[test]
fn policy_yaml_shape_is_unchanged() {
    let json = r#"{"name":"p","rules":[{"match":{"prefixes":["10.0.0.0/8 le 24"],"asPath":{"originatedBy":1}},"set":{"localPref":10,"nextHopSelf":true},"action":"accept"}]}"#;
    let p: Policy = serde_json::from_str(json).unwrap();
    assert_eq!(p.rules[0].action, Action::Accept);
    assert_eq!(serde_json::to_string(&p).unwrap(), json);
}

fn prepend_twice() -> Policy {
    Policy {
        name: "longer".into(),
        rules: vec![Rule {
            matches: Match::default(),
            set: Set {
                prepend_as_path: Some(2),
                ..Default::default()
            },
            action: Action::Accept,
        }],
    }
}

#[test]
fn import_prepend_is_the_peers_as_and_export_adds_ours_once() {
    let mut rib = Rib::new(RibConfig {
        policies: vec![prepend_twice()],
        ..cfg()
    });
    add_up(
        &mut rib,
        1,
        PeerConfig {
            import: PolicyChain::Named(vec!["longer".into()]),
            ..ebgp("tor", "192.0.2.1", 65101)
        },
        "192.0.2.1",
    );
    add_up(&mut rib, 2, ebgp("other", "192.0.2.2", 65102), "192.0.2.2");
    reach(&mut rib, "192.0.2.1", 0);
    let out = receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65101, 65201])),
    );
    assert_eq!(
        loc(&rib, "10.1.0.0/24")[0].as_path.to_string(),
        "65101 65101 65101 65201"
    );
    // Not a loop for anyone: our AS appears once, prepended at export.
    let (_, _, a) = &announced(&out, 2)[0];
    assert_eq!(a.as_path.to_string(), "65000 65101 65101 65101 65201");
}

#[test]
fn import_prepend_over_ibgp_is_the_neighbouring_as() {
    let mut rib = Rib::new(RibConfig {
        policies: vec![prepend_twice()],
        ..cfg()
    });
    add_up(
        &mut rib,
        1,
        PeerConfig {
            import: PolicyChain::Named(vec!["longer".into()]),
            ..ibgp("rr", "10.0.0.2")
        },
        "10.0.0.2",
    );
    reach(&mut rib, "10.0.0.2", 0);
    receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "10.0.0.2", attrs(&[65201, 65301])),
    );
    receive(
        &mut rib,
        1,
        update_v4(&["10.2.0.0/24"], "10.0.0.2", attrs(&[])),
    );
    assert_eq!(
        loc(&rib, "10.1.0.0/24")[0].as_path.to_string(),
        "65201 65201 65201 65301"
    );
    // Originated inside our AS: nothing to prepend but ourselves, which
    // would read as a loop to our iBGP neighbours; left as it is.
    assert_eq!(loc(&rib, "10.2.0.0/24")[0].as_path.to_string(), "");
}
