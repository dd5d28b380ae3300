//! Seed 000 end to end: `kroute lab up --scenario cilium-frr`. Six nodes,
//! each with kroute (AS 42101010XX) and a Cilium stand-in (GoBGP, AS
//! 4220101000) announcing the node's pod CIDRs over [::1]; three FRR
//! upstreams in an iBGP full mesh. Every node's kernel must hold every
//! other pod CIDR, ECMP over the three upstreams, installed by kroute; every
//! pod pings every other pod. Then: an upstream stops, a node's link goes
//! down and up, kroute restarts on a node.

mod lab;

use lab::{stop, wait_until, Lab, CONVERGE};

const NODES: [&str; 6] = ["n1", "n2", "n3", "n4", "n5", "n6"];

#[test]
fn cilium_frr_pods_reach_each_other_through_kroute() {
    let lab = Lab::up("cilium-frr", &[]);

    // Converged: every pod CIDR everywhere, over all three upstreams.
    wait_until(CONVERGE, "pod routes, ECMP over 3 upstreams", || {
        lab.check_pod_routes(&NODES, &[], &[], Some(3))
    });
    // The kernels hold the routes a moment before every pod answers (the
    // neighbour entries, a loaded machine): poll the matrix, do not race it.
    wait_until(CONVERGE, "full ping matrix", || lab.matrix_ok(&[]));
    lab.assert_full_matrix_and_sessions(4, "cilium + 3 upstreams");

    // kroute installed them (GoBGP never touches the kernel): kroute's FIB
    // view says "installed" for another node's pod CIDR, and its own pod
    // CIDR from Cilium is "next hop is local", not installed.
    let (p2_v6, p2_v4) = lab.pod_cidrs("n2");
    for p in [&p2_v6, &p2_v4] {
        wait_until(CONVERGE, &format!("n1's FIB: {p} installed"), || {
            let fib = lab.fib("n1", p);
            match fib.first() {
                Some(e) if e.status == "installed" => Ok(()),
                _ => Err(format!("{fib:?}")),
            }
        });
    }
    let (p1_v6, _) = lab.pod_cidrs("n1");
    let explain = lab.explain("n1", &p1_v6);
    assert!(explain.contains("next hop is local"), "{explain}");
    assert!(
        lab.route("n1", &p1_v6).is_none(),
        "the node's own pod CIDR must not be a BGP route in its kernel"
    );

    // 1. Stop one upstream router: its paths leave every kernel; the
    //    other two keep everything reachable.
    let bgpd = lab.pid("r1", "bgpd");
    stop(bgpd);
    let r1 = ["fd00:101::fffc", "10.101.0.252"];
    wait_until(CONVERGE, "routes without r1 (2 next hops)", || {
        lab.check_pod_routes(&NODES, &[], &r1, Some(2))
    });
    wait_until(CONVERGE, "full ping matrix without r1", || {
        lab.matrix_ok(&[])
    });

    // 2. Take n3's link down: the others withdraw its pod CIDRs (no stale
    //    route), the rest of the cluster still works; up again, it recovers.
    lab.link("n3", "lan0", false);
    let others = ["n1", "n2", "n4", "n5", "n6"];
    wait_until(CONVERGE, "n3's pod CIDRs withdrawn everywhere", || {
        lab.check_pod_routes(&others, &["n3"], &r1, None)
    });
    wait_until(CONVERGE, "matrix without p3", || lab.matrix_ok(&["p3"]));
    lab.link("n3", "lan0", true);
    wait_until(CONVERGE, "n3 back", || {
        lab.check_pod_routes(&NODES, &[], &r1, Some(2))
    });
    wait_until(CONVERGE, "full matrix after n3's link is back", || {
        lab.matrix_ok(&[])
    });

    // 3. Restart kroute on n2. With kernel.keepOnExit its routes stay in
    //    the kernel while it is down (n2's outbound traffic keeps flowing);
    //    after the restart everything converges again, with no duplicate
    //    or stale routes.
    let before = lab.routes("n2");
    stop(lab.pid("n2", "kroute"));
    let kept = lab.routes("n2");
    assert_eq!(
        kept.len(),
        before.len(),
        "keepOnExit: routes kept while kroute is down"
    );
    let (p1_v6_cidr, _) = lab.pod_cidrs("n1");
    assert!(lab.route("n2", &p1_v6_cidr).is_some());
    lab.restart_kroute("n2");
    wait_until(
        CONVERGE,
        "n2's sessions up again (r1 is still stopped)",
        || {
            let s = lab.sessions("n2");
            if s.iter()
                .all(|(peer, st)| peer == "frr-r1" || st == "Established")
            {
                Ok(())
            } else {
                Err(format!("{s:?}"))
            }
        },
    );
    wait_until(CONVERGE, "routes after kroute restart", || {
        lab.check_pod_routes(&NODES, &[], &r1, Some(2))
    });
    wait_until(CONVERGE, "full matrix after kroute restart", || {
        lab.matrix_ok(&[])
    });
    // Exactly as many routes as before: none duplicated, none stale (a
    // route kroute replaces after the restart may linger one read).
    wait_until(CONVERGE, "n2: same routes after the restart", || {
        let after = lab.routes("n2");
        if after.len() == before.len() {
            Ok(())
        } else {
            Err(format!(
                "{} routes, {} before: {after:?}",
                after.len(),
                before.len()
            ))
        }
    });
}
