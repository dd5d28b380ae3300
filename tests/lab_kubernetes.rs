//! Issue 14 end to end: `kroute lab up --scenario kubernetes`. Seed 000's
//! six nodes and three FRR upstreams, no GoBGP: every node runs `kroute
//! daemon --kubernetes` against the API stand-in (src/lab/apiserver.py),
//! which serves six kubeadm-shaped Nodes and one KrouteConfig for all of
//! them. kroute originates each node's pod CIDRs from `spec.podCIDRs`;
//! pods ping each other; `kroute cluster check` is all ✓. Then one
//! upstream's export breaks (`kroute lab break export r1`): `cluster check`
//! fails naming every missing pair and why; repaired, it is all ✓ again;
//! `lab down` leaves no namespace, process or file.
//!
//! Needs root, FRR, python3 with PyPI's kmock (scripts/setup-debian.sh).

mod lab;

use std::collections::BTreeSet;

use lab::{wait_until, Lab, BIN, CONVERGE};
use serde_json::Value;

const NODES: [&str; 6] = ["n1", "n2", "n3", "n4", "n5", "n6"];
/// r1's nodes: n1 and n4 (each node peers with one upstream).
const R1_NODES: [&str; 2] = ["n1", "n4"];

/// `kroute cluster check [-o json] --kubeconfig K`, run where the API is
/// reachable (the fabric namespace): (exit code, stdout).
fn cluster_check(lab: &Lab, json: bool) -> (i32, String) {
    let kubeconfig = format!("/run/kroute-lab/{}/api/kubeconfig", lab.name);
    let ns = lab.ns("fabric");
    let mut argv = vec!["ip", "netns", "exec", &ns, BIN, "cluster", "check"];
    if json {
        argv.extend(["-o", "json"]);
    }
    argv.extend(["--kubeconfig", &kubeconfig]);
    let out = labkit::cmd::output(&argv).unwrap_or_else(|e| panic!("{e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The (node, owner) pairs `cluster check -o json` says are missing, each
/// with its reason; an error unless the exit code agrees.
fn missing_pairs(lab: &Lab) -> Result<Vec<(String, String, String, String)>, String> {
    let (code, out) = cluster_check(lab, true);
    let v: Value = serde_json::from_str(&out).map_err(|e| format!("{e}: {out}"))?;
    if v["nodes"].as_array().map(Vec::len) != Some(NODES.len()) {
        return Err(format!("not every node has a state yet: {}", v["nodes"]));
    }
    let missing: Vec<_> = v["pairs"]
        .as_array()
        .ok_or("no pairs")?
        .iter()
        .filter(|p| p["installed"] != true)
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap_or_default().to_string();
            (s("node"), s("owner"), s("podCIDR"), s("reason"))
        })
        .collect();
    let want_code = if missing.is_empty() { 0 } else { 1 };
    if code != want_code {
        return Err(format!("exit {code} with {} missing", missing.len()));
    }
    Ok(missing)
}

fn all_installed(lab: &Lab) -> Result<(), String> {
    let missing = missing_pairs(lab)?;
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("{} missing: {missing:?}", missing.len()))
    }
}

#[test]
fn kubernetes_lab_cluster_check_names_what_a_broken_upstream_loses() {
    let lab = Lab::up("kubernetes", &[]);

    // Converged (lab up waited for it): pod CIDRs from the API, originated
    // by kroute, installed everywhere via each node's one upstream.
    wait_until(CONVERGE, "every pod CIDR in every kernel", || {
        lab.check_pod_routes(&NODES, &[], &[], Some(1))
    });
    // Routes first, answers a moment later: poll the matrix, do not race it.
    wait_until(CONVERGE, "full ping matrix", || lab.matrix_ok(&[]));
    let st = lab.assert_full_matrix_and_sessions(1, "one upstream, no GoBGP");
    assert!(
        st["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["processes"].as_array().unwrap().len() == 1),
        "kroute is the only process on a node"
    );

    // cluster check: every pair ✓, exit 0, in the table too.
    wait_until(CONVERGE, "cluster check all ✓", || all_installed(&lab));
    let (code, table) = cluster_check(&lab, false);
    assert_eq!(code, 0, "{table}");
    assert!(table.contains("all 60 pairs installed"), "{table}");
    assert!(!table.contains('✗'), "{table}");

    // Break r1's export: n1 and n4 (r1's nodes) lose every other pod CIDR;
    // the other nodes keep everything (r1 still passes n1's and n4's
    // CIDRs on to r2 and r3).
    let (ok, out) = {
        let o = labkit::cmd::output(&[BIN, "lab", "break", "export", "r1", "--name", &lab.name])
            .unwrap_or_else(|e| panic!("{e}"));
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    assert!(ok, "lab break export r1: {out}");
    let others: Vec<&str> = NODES
        .iter()
        .copied()
        .filter(|n| !R1_NODES.contains(n))
        .collect();
    wait_until(CONVERGE, "n1 and n4 without the others' pod CIDRs", || {
        for n in R1_NODES {
            let left = lab.routes(n);
            if !left.is_empty() {
                return Err(format!("{n} still has {left:?}"));
            }
        }
        lab.check_pod_routes(&others, &[], &[], Some(1))
    });
    let lab_ref = &lab;
    let want: BTreeSet<(String, String)> = R1_NODES
        .iter()
        .flat_map(|n| {
            NODES.iter().filter(move |m| *m != n).flat_map(move |m| {
                let (v6, v4) = lab_ref.pod_cidrs(m);
                [(n.to_string(), v6), (n.to_string(), v4)]
            })
        })
        .collect();
    assert_eq!(want.len(), 20);
    let missing = wait_until(
        CONVERGE,
        "cluster check naming the 20 missing pairs",
        || {
            let missing = missing_pairs(&lab)?;
            let got: BTreeSet<(String, String)> = missing
                .iter()
                .map(|(node, _, cidr, _)| (node.clone(), cidr.clone()))
                .collect();
            if got == want {
                Ok(missing)
            } else {
                Err(format!("missing {got:?}"))
            }
        },
    );
    for (node, owner, cidr, reason) in &missing {
        assert!(
            reason.contains(&format!("no path for {cidr}")),
            "{node}: {cidr} of {owner}: {reason}"
        );
        let (v6, v4) = lab.pod_cidrs(owner);
        assert!(*cidr == v6 || *cidr == v4, "{cidr} is not {owner}'s");
    }
    let (code, table) = cluster_check(&lab, false);
    assert_eq!(code, 1, "{table}");
    assert!(table.contains("20 of 60 pairs missing"), "{table}");
    let (n2_v6, _) = lab.pod_cidrs("n2");
    assert!(
        table.contains(&format!("n1: {n2_v6} of n2: no path for {n2_v6}")),
        "{table}"
    );
    assert!(
        !lab.ping("p1", "fd00:101:224:2::10"),
        "p1 reaches p2 without a route"
    );
    assert!(lab.ping("p2", "fd00:101:224:3::10"), "p2 -> p3 still works");

    // Repair: all ✓ again, pods reach each other again.
    let o = labkit::cmd::output(&[BIN, "lab", "repair", "export", "r1", "--name", &lab.name])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(o.status.success(), "lab repair export r1");
    wait_until(CONVERGE, "cluster check all ✓ after the repair", || {
        all_installed(&lab)
    });
    wait_until(
        CONVERGE,
        "every pod CIDR everywhere after the repair",
        || lab.check_pod_routes(&NODES, &[], &[], Some(1)),
    );
    wait_until(CONVERGE, "full ping matrix after the repair", || {
        lab.matrix_ok(&[])
    });

    // lab down: every recorded process gone, no namespace, no state.
    let state = lab.state();
    let procs: Vec<labkit::ProcId> = state["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| labkit::ProcId {
            pid: p["pid"].as_u64().unwrap() as u32,
            start_time: p["startTime"].as_u64().unwrap(),
        })
        .collect();
    assert!(
        state["processes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "apiserver"),
        "the API stand-in is recorded"
    );
    let o = labkit::cmd::output(&[BIN, "lab", "down", "--name", &lab.name])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(o.status.success(), "lab down");
    for p in procs {
        assert!(!p.alive(), "process {} left running", p.pid);
    }
    let prefix = format!("{}-", lab.name);
    let left: Vec<String> = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
    assert!(
        !std::path::Path::new(&format!("/run/kroute-lab/{}", lab.name)).exists(),
        "state directory left"
    );
}
