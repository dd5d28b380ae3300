//! Seed 004 end to end: `kroute lab up --scenario clusterip-return-path`.
//! A service address (fd00:101:96::1, 10.101.96.1) lives on node n1 and is
//! announced by n1's Cilium stand-in; pods on n2 and n3 open TCP
//! connections to it and must get a reply — which needs n1's kernel to hold
//! the route back to the client pod's CIDR, not only the clients' kernels
//! to hold the route to the service. Then: an upstream stops, a client
//! node's link goes down and up, kroute restarts on the server node.

mod lab;

use std::net::SocketAddr;

use lab::{stop, tcp_request, wait_until, Lab, Service, CONVERGE};

const PORT: u16 = 8080;

fn service_addrs() -> [SocketAddr; 2] {
    [
        format!("[fd00:101:96::1]:{PORT}").parse().unwrap(),
        format!("10.101.96.1:{PORT}").parse().unwrap(),
    ]
}

/// `Ok` when every client pod gets a TCP reply from the service, both
/// families.
fn tcp_from(lab: &Lab, pods: &[&str]) -> Result<(), String> {
    for pod in pods {
        for addr in service_addrs() {
            let reply = tcp_request(&lab.ns(pod), addr).map_err(|e| format!("{pod}: {e}"))?;
            if !reply.starts_with("pong from n1") {
                return Err(format!("{pod} -> {addr}: unexpected reply {reply:?}"));
            }
        }
    }
    Ok(())
}

#[test]
fn service_on_one_node_answers_pods_on_the_others() {
    let lab = Lab::up("clusterip-return-path", &[]);
    let _svc = Service::start(&lab.ns("n1"), PORT, "n1");
    let nodes = ["n1", "n2", "n3"];

    // Both directions are in the kernels: the service at the clients, the
    // clients' pod CIDRs at the server (the return path seed 004 lacked).
    wait_until(CONVERGE, "pod routes everywhere", || {
        lab.check_pod_routes(&nodes, &[], &[], Some(2))
    });
    // The service address may come in a later UPDATE than the pod CIDRs.
    wait_until(CONVERGE, "the service address at the clients", || {
        for client in ["n2", "n3"] {
            for p in ["fd00:101:96::1/128", "10.101.96.1/32"] {
                if lab.route(client, p).is_none() {
                    return Err(format!("{client}: no route to {p}"));
                }
            }
        }
        Ok(())
    });
    let (p2, _) = lab.pod_cidrs("n2");
    wait_until(CONVERGE, "n1 explains p2's CIDR as installed", || {
        let explain = lab.explain("n1", &p2);
        if explain.contains("kernel: installed") {
            Ok(())
        } else {
            Err(explain)
        }
    });

    wait_until(CONVERGE, "TCP replies from the service", || {
        tcp_from(&lab, &["p2", "p3"])
    });
    wait_until(CONVERGE, "full ping matrix", || lab.matrix_ok(&[]));

    // 1. Stop upstream r1: everything through r2, no route via r1.
    stop(lab.pid("r1", "bgpd"));
    let r1 = ["fd00:101::fffd", "10.101.0.253"];
    wait_until(CONVERGE, "routes without r1", || {
        lab.check_pod_routes(&nodes, &[], &r1, Some(1))
    });
    wait_until(CONVERGE, "TCP without r1", || tcp_from(&lab, &["p2", "p3"]));

    // 2. n3's link down: n1 loses the return route to p3 (no stale route),
    //    p2 still connects; link up, p3 connects again.
    lab.link("n3", "lan0", false);
    wait_until(CONVERGE, "p3's CIDRs withdrawn", || {
        lab.check_pod_routes(&["n1", "n2"], &["n3"], &r1, None)
    });
    tcp_from(&lab, &["p2"]).expect("p2 unaffected by n3's link");
    lab.link("n3", "lan0", true);
    wait_until(CONVERGE, "TCP from p3 again", || {
        tcp_from(&lab, &["p2", "p3"])
    });

    // 3. Restart kroute on the server node: after it, both directions are
    //    back and nothing is stale.
    stop(lab.pid("n1", "kroute"));
    lab.restart_kroute("n1");
    wait_until(CONVERGE, "TCP after restarting kroute on n1", || {
        tcp_from(&lab, &["p2", "p3"])
    });
    // TCP from p2/p3 needs only the service route and n1's return routes;
    // n1's pod CIDRs may reach the clients' kernels a little later.
    wait_until(CONVERGE, "routes after the restart", || {
        lab.check_pod_routes(&nodes, &[], &r1, Some(1))
    });
    wait_until(CONVERGE, "full matrix", || lab.matrix_ok(&[]));
}
