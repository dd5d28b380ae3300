//! Seed 001 end to end: `kroute lab up --scenario same-asn-rr`. Six nodes,
//! all in AS 65101, each advertising its loopback (fd00:255:101::XX/128,
//! 10.255.101.XX/32) and pod CIDR over eBGP to two FRR route reflectors in
//! AS 65000. Without allowAsIn every route from another node comes back
//! with 65101 in the AS_PATH and is rejected, and `explain` names the loop;
//! with `allowAsIn: 1` every node reaches every loopback and every pod.

mod lab;

use lab::{stop, wait_until, Lab, CONVERGE};

const NODES: [&str; 6] = ["n1", "n2", "n3", "n4", "n5", "n6"];

fn loopbacks(node: &str) -> [String; 2] {
    let id = 10 + node[1..].parse::<u32>().unwrap();
    [
        format!("fd00:255:101::{id}/128"),
        format!("10.255.101.{id}/32"),
    ]
}

#[test]
fn without_allowas_in_routes_are_rejected_as_as_path_loops() {
    let lab = Lab::up("same-asn-rr", &["--no-allowas-in"]);
    // `up` returns once the reflectors have sent every node the others'
    // routes; none of them may be in any kernel.
    for n in NODES {
        let routes = lab.routes(n);
        assert!(routes.is_empty(), "{n}: {routes:?}");
    }
    let explain = lab.explain("n1", "fd00:255:101::12/128");
    assert!(explain.contains("AS path loop"), "{explain}");
    assert!(explain.contains("65101"), "{explain}");
    let (p2, _) = lab.pod_cidrs("n2");
    let explain = lab.explain("n1", &p2);
    assert!(explain.contains("AS path loop"), "{explain}");
    let st = lab.status();
    assert_eq!(
        st["matrix"]["failed"], st["matrix"]["total"],
        "no pod reaches another"
    );
}

#[test]
fn with_allowas_in_every_node_reaches_every_loopback() {
    let lab = Lab::up("same-asn-rr", &[]);
    let all_loopbacks = |skip_node: &[&str], banned: &[&str]| -> Result<(), String> {
        for n in NODES.iter().filter(|n| !skip_node.contains(n)) {
            let routes = lab.routes(n);
            for r in &routes {
                if let Some(g) = r.gateways.iter().find(|g| banned.contains(&g.as_str())) {
                    return Err(format!("{n}: stale route {} via {g}", r.prefix));
                }
            }
            for m in NODES.iter().filter(|m| *m != n) {
                for l in loopbacks(m) {
                    let present = routes.iter().any(|r| r.prefix == l);
                    if present == skip_node.contains(m) {
                        return Err(format!("{n}: route to {l} present: {present}"));
                    }
                }
            }
        }
        Ok(())
    };
    wait_until(CONVERGE, "every loopback everywhere", || {
        all_loopbacks(&[], &[])
    });
    wait_until(CONVERGE, "pod routes everywhere", || {
        lab.check_pod_routes(&NODES, &[], &[], None)
    });
    wait_until(CONVERGE, "full ping matrix", || lab.matrix_ok(&[]));
    let st = lab.status();
    assert_eq!(st["matrix"]["total"], 60);
    wait_until(CONVERGE, "n1 explains n2's loopback as installed", || {
        let explain = lab.explain("n1", "fd00:255:101::12/128");
        if explain.contains("kernel: installed") {
            Ok(())
        } else {
            Err(explain)
        }
    });

    // 1. Stop reflector r1: its paths go (no route via it, no path from it
    //    in kroute's RIB), r2 keeps everything reachable.
    stop(lab.pid("r1", "bgpd"));
    let r1 = ["fd00:101::fffd", "10.101.0.253"];
    wait_until(CONVERGE, "routes without r1", || {
        all_loopbacks(&[], &r1)?;
        if lab.loc_rib("n2").iter().any(|r| r.peer == "rr-r1") {
            return Err("n2 still has paths from rr-r1".into());
        }
        Ok(())
    });
    wait_until(CONVERGE, "full matrix without r1", || lab.matrix_ok(&[]));

    // 2. n4's link down: its loopbacks and pod CIDRs leave every kernel;
    //    back up, they return.
    lab.link("n4", "lan0", false);
    wait_until(CONVERGE, "n4 withdrawn everywhere", || {
        all_loopbacks(&["n4"], &r1)?;
        lab.check_pod_routes(&["n1", "n2", "n3", "n5", "n6"], &["n4"], &r1, None)
    });
    lab.link("n4", "lan0", true);
    wait_until(CONVERGE, "n4 back", || all_loopbacks(&[], &r1));
    wait_until(CONVERGE, "full matrix with n4 back", || lab.matrix_ok(&[]));

    // 3. Restart kroute on n1: routes kept meanwhile (keepOnExit), all back
    //    after, nothing duplicated.
    let before = lab.routes("n1").len();
    stop(lab.pid("n1", "kroute"));
    assert_eq!(lab.routes("n1").len(), before, "keepOnExit");
    // (From the node itself: the pod's replies need the other nodes' routes
    // to p1, which the reflectors withdraw while n1's sessions are down.)
    assert!(
        lab.ping("n1", "fd00:255:101::12") && lab.ping("n1", "10.255.101.12"),
        "n1 still routes to n2's loopback while its kroute is down"
    );
    lab.restart_kroute("n1");
    wait_until(CONVERGE, "all back after kroute restart", || {
        all_loopbacks(&[], &r1)
    });
    wait_until(CONVERGE, "full matrix after kroute restart", || {
        lab.matrix_ok(&[])
    });
    // Exactly as many as before: none duplicated, none stale.
    wait_until(
        CONVERGE,
        "n1: same number of routes after the restart",
        || {
            let after = lab.routes("n1");
            if after.len() == before {
                Ok(())
            } else {
                Err(format!(
                    "{} routes, {before} before: {after:?}",
                    after.len()
                ))
            }
        },
    );
}
