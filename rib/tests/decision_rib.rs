//! The decision process through the Rib: every arrival order of a set of
//! paths (each better than the next in exactly one step) gives the same
//! best path.
mod common;

use common::*;
use rib::*;

/// (name, address, asn, as path, local pref, med, igp metric)
type PeerSpec = (
    &'static str,
    &'static str,
    u32,
    Vec<u32>,
    Option<u32>,
    Option<u32>,
    u32,
);

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for i in 0..=p.len() {
            let mut q = p.clone();
            q.insert(i, n - 1);
            out.push(q);
        }
    }
    out
}

#[test]
fn every_arrival_order_gives_the_same_winner() {
    // (name, address, asn, as path, local pref, med, igp metric)
    let peers: Vec<PeerSpec> = vec![
        (
            "best",
            "192.0.2.5",
            65101,
            vec![65101, 65201],
            None,
            Some(5),
            1,
        ),
        (
            "longer-path",
            "192.0.2.1",
            65101,
            vec![65101, 65301, 65201],
            None,
            None,
            0,
        ),
        (
            "higher-med",
            "192.0.2.2",
            65101,
            vec![65101, 65201],
            None,
            Some(50),
            0,
        ),
        (
            "ibgp",
            "10.0.0.3",
            LOCAL_ASN,
            vec![65101, 65201],
            None,
            Some(5),
            0,
        ),
        (
            "costlier",
            "192.0.2.4",
            65101,
            vec![65101, 65201],
            None,
            Some(5),
            9,
        ),
        (
            "low-pref-ibgp",
            "10.0.0.6",
            LOCAL_ASN,
            vec![65201],
            Some(50),
            None,
            0,
        ),
    ];
    for order in permutations(peers.len()) {
        let mut rib = Rib::new(RibConfig {
            max_paths: 1,
            ..cfg()
        });
        for (i, (name, addr, asn, _, _, _, metric)) in peers.iter().enumerate() {
            let id = i as PeerId + 1;
            let mut c = ebgp(name, addr, *asn);
            c.import = rib::policy::PolicyChain::All;
            add_up(&mut rib, id, c, addr);
            reach(&mut rib, addr, *metric);
        }
        for &i in &order {
            let (_, addr, _, path, lp, med, _) = &peers[i];
            let a = wire::PathAttributes {
                local_pref: *lp,
                med: *med,
                ..attrs(path)
            };
            receive(
                &mut rib,
                i as PeerId + 1,
                update_v4(&["10.7.0.0/24"], addr, a),
            );
        }
        let e = rib.explain(&p("10.7.0.0/24"));
        let best: Vec<_> = e
            .paths
            .iter()
            .filter(|p| p.status == "best")
            .map(|p| p.from.as_str())
            .collect();
        assert_eq!(best, vec!["best"], "order {order:?}");
        let fib = rib.routes(&RouteQuery::default());
        assert_eq!(fib.iter().filter(|r| r.best).count(), 1);
    }
}

/// Issue 12's set through the Rib: B (AS 65011, MED 20, router id .1),
/// C (AS 65012, no MED, id .2), A (AS 65011, MED 10, id .3). By peer
/// address B < C < A, the order a pairwise scan used (and picked A).
fn bca_rib(order: &[usize], always_compare_med: bool) -> Rib {
    let peers = [
        ("b", "192.0.2.1", 65011, Some(20), "10.255.0.1"),
        ("c", "192.0.2.2", 65012, None, "10.255.0.2"),
        ("a", "192.0.2.3", 65011, Some(10), "10.255.0.3"),
    ];
    let mut rib = Rib::new(RibConfig {
        max_paths: 1,
        always_compare_med,
        ..cfg()
    });
    for (i, (name, addr, asn, _, id)) in peers.iter().enumerate() {
        add_up(&mut rib, i as PeerId + 1, ebgp(name, addr, *asn), id);
        reach(&mut rib, addr, 0);
    }
    for &i in order {
        let (_, addr, asn, med, _) = peers[i];
        let a = wire::PathAttributes {
            med,
            ..attrs(&[asn])
        };
        receive(
            &mut rib,
            i as PeerId + 1,
            update_v4(&["10.7.0.0/24"], addr, a),
        );
    }
    rib
}

fn detail_of<'a>(e: &'a Explanation, from: &str) -> (&'a str, &'a str) {
    let p = e.paths.iter().find(|p| p.from == from).unwrap();
    (p.status.as_str(), p.detail.as_str())
}

#[test]
fn med_is_compared_by_elimination_in_every_arrival_order() {
    for order in permutations(3) {
        let rib = bca_rib(&order, false);
        let e = rib.explain(&p("10.7.0.0/24"));
        assert_eq!(e.summary, "10.7.0.0/24: best via c", "order {order:?}");
        assert_eq!(detail_of(&e, "c"), ("best", "best path"));
        // Each loser names the step that removed it and the path it lost
        // to there: B to A within AS 65011, then A to C.
        assert_eq!(
            detail_of(&e, "b"),
            ("lost", "lost to a's path at step: lower MED (10 vs 20)"),
            "order {order:?}"
        );
        assert_eq!(
            detail_of(&e, "a"),
            (
                "lost",
                "equal to best through IGP cost but not multipath (maxPaths 1 reached); \
                 lost to c's path at step: lower router id (10.255.0.2 vs 10.255.0.3)"
            ),
            "order {order:?}"
        );
        assert_eq!(e.kernel, "installed via 192.0.2.2");
    }
}

#[test]
fn always_compare_med_compares_across_ases() {
    for order in permutations(3) {
        let rib = bca_rib(&order, true);
        let e = rib.explain(&p("10.7.0.0/24"));
        // C has no MED: it counts as 0 and wins on MED over both.
        assert_eq!(e.summary, "10.7.0.0/24: best via c", "order {order:?}");
        assert_eq!(
            detail_of(&e, "b"),
            ("lost", "lost to c's path at step: lower MED (0 vs 20)")
        );
        assert_eq!(
            detail_of(&e, "a"),
            ("lost", "lost to c's path at step: lower MED (0 vs 10)")
        );
    }
}

#[test]
fn always_compare_med_on_reload_decides_again() {
    let mut rib = bca_rib(&[0, 1, 2], false);
    // C now sends MED 15: within ASes C still wins on router id ...
    let a = wire::PathAttributes {
        med: Some(15),
        ..attrs(&[65012])
    };
    receive(&mut rib, 2, update_v4(&["10.7.0.0/24"], "192.0.2.2", a));
    assert_eq!(
        rib.explain(&p("10.7.0.0/24")).summary,
        "10.7.0.0/24: best via c"
    );
    // ... compared always, A's MED 10 beats C's 15 and the FIB follows.
    let mut out = Outputs::default();
    rib.set_config(
        RibConfig {
            max_paths: 1,
            always_compare_med: true,
            ..cfg()
        },
        &mut out,
    );
    let e = rib.explain(&p("10.7.0.0/24"));
    assert_eq!(e.summary, "10.7.0.0/24: best via a");
    assert_eq!(
        detail_of(&e, "c"),
        ("lost", "lost to a's path at step: lower MED (10 vs 15)")
    );
    assert_eq!(fib_for(&out, "10.7.0.0/24"), vec![vec![ip("192.0.2.3")]]);
}
