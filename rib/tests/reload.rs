mod common;

use common::*;
use rib::policy::{Action, Match, Policy, PolicyChain, Rule};
use rib::*;

#[test]
fn import_policy_change_reevaluates_stored_paths() {
    let deny = Policy {
        name: "no-10-1".into(),
        rules: vec![
            Rule {
                matches: Match {
                    prefixes: vec!["10.1.0.0/16 le 32".parse().unwrap()],
                    ..Default::default()
                },
                action: Action::Reject,
                ..Default::default()
            },
            Rule {
                action: Action::Accept,
                ..Default::default()
            },
        ],
    };
    let mut rib = Rib::new(RibConfig {
        policies: vec![deny],
        ..cfg()
    });
    add_up(&mut rib, 1, ebgp("a", "192.0.2.1", 65101), "192.0.2.1");
    add_up(&mut rib, 2, ebgp("b", "192.0.2.2", 65102), "192.0.2.2");
    reach(&mut rib, "192.0.2.1", 0);
    let out = receive(
        &mut rib,
        1,
        update_v4(
            &["10.1.0.0/24", "10.2.0.0/24"],
            "192.0.2.1",
            attrs(&[65101]),
        ),
    );
    assert_eq!(out.fib.len(), 2);
    assert_eq!(
        rib.peer_counters(1),
        PeerCounters {
            received: 2,
            accepted: 2,
            advertised: 0,
            too_big: 0
        }
    );

    // Apply the policy: 10.1.0.0/24 goes away without a session reset.
    let mut out = Outputs::default();
    rib.set_peer_config(
        1,
        PeerConfig {
            import: PolicyChain::Named(vec!["no-10-1".into()]),
            ..ebgp("a", "192.0.2.1", 65101)
        },
        &mut out,
    );
    assert_eq!(
        out.fib,
        vec![FibChange::new(p("10.1.0.0/24"), rib::no_next_hops())]
    );
    assert_eq!(withdrawn(&out, 2), vec![p("10.1.0.0/24")]);
    assert!(announced(&out, 2).is_empty(), "10.2.0.0/24 unchanged");
    assert_eq!(
        rib.peer_counters(1),
        PeerCounters {
            received: 2,
            accepted: 1,
            advertised: 0,
            too_big: 0
        }
    );
    let e = rib.explain(&p("10.1.0.0/24"));
    assert!(
        e.paths[0]
            .import
            .contains("rejected by policy \"no-10-1\" rule 1"),
        "{}",
        e.paths[0].import
    );

    // And back.
    let mut out = Outputs::default();
    rib.set_peer_config(1, ebgp("a", "192.0.2.1", 65101), &mut out);
    assert_eq!(fib_for(&out, "10.1.0.0/24"), vec![vec![ip("192.0.2.1")]]);
    assert_eq!(announced(&out, 2).len(), 1);
}

#[test]
fn export_policy_change_emits_only_differences() {
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, ebgp("a", "192.0.2.1", 65101), "192.0.2.1");
    add_up(&mut rib, 2, ebgp("b", "192.0.2.2", 65102), "192.0.2.2");
    reach(&mut rib, "192.0.2.1", 0);
    receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65101])),
    );
    let mut out = Outputs::default();
    rib.set_peer_config(
        2,
        PeerConfig {
            export: PolicyChain::None,
            ..ebgp("b", "192.0.2.2", 65102)
        },
        &mut out,
    );
    assert_eq!(withdrawn(&out, 2), vec![p("10.1.0.0/24")]);
    assert!(out.fib.is_empty());
    let mut out = Outputs::default();
    rib.set_config(cfg(), &mut out);
    assert_eq!(
        out,
        Outputs::default(),
        "a reload without changes emits nothing"
    );
}
