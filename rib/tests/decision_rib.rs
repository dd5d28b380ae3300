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
