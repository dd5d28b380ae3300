//! The benchmark harness at 10k prefixes (8k IPv4 + 2k IPv6), every
//! receiver once, plus a short churn run: so the harness never rots. It
//! asserts that every receiver got every prefix into its RIB and (except
//! GoBGP) into the kernel, that the kernel is empty again after the drop,
//! and that churn converged. It never asserts a time.
//!
//! Needs root and the peers (scripts/setup-debian.sh). The kroute binary is
//! `<target>/<profile>/kroute`: `cargo test --workspace` builds it before any
//! test runs (kroute has integration tests, so cargo builds its binary);
//! with `cargo test -p bench` this test builds it with `cargo build -p kroute`.
//! `KROUTE_BENCH_RECEIVERS=bird,frr` narrows the receivers for local runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const ALL: &str = "kroute,bird,frr,gobgp,kernel,netlink";
const PREFIXES: u64 = 10_000;

/// `<target>/<profile>` of this test binary (`<target>/<profile>/deps/smoke-…`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("<target>/<profile>/deps")
        .to_path_buf()
}

fn kroute_binary() -> PathBuf {
    let dir = profile_dir();
    let bin = dir.join("kroute");
    if bin.exists() {
        return bin;
    }
    let target = dir.parent().expect("<target>");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-p", "kroute"])
        .env("CARGO_TARGET_DIR", target)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let st = cmd.status().expect("running cargo build -p kroute");
    assert!(st.success(), "cargo build -p kroute failed");
    assert!(bin.exists(), "no kroute binary at {}", bin.display());
    bin
}

#[test]
fn every_receiver_gets_every_prefix() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the benchmark harness needs root (network namespaces, kernel routes)"
    );
    let receivers = std::env::var("KROUTE_BENCH_RECEIVERS").unwrap_or_else(|_| ALL.into());
    let kinds: Vec<&str> = receivers.split(',').collect();
    let kroute = if kinds.contains(&"kroute") {
        kroute_binary()
    } else {
        PathBuf::from("kroute-not-needed")
    };
    let out = std::env::temp_dir().join(format!("kroute-bench-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let json = out.join("samples.json");
    let st = Command::new(env!("CARGO_BIN_EXE_kroute-bench"))
        .arg("run")
        .args(["--receivers", &receivers])
        .args(["--ipv4", "8000", "--ipv6", "2000", "--repeat", "1"])
        .args(["--churn", "--churn-prefixes", "500", "--churn-seconds", "4"])
        .args(["--churn-period", "1", "--timeout", "120", "--keep-logs"])
        .arg("--kroute")
        .arg(&kroute)
        .arg("--out")
        .arg(out.join("BENCHMARKS.md"))
        .arg("--json")
        .arg(&json)
        .status()
        .expect("running kroute-bench");
    let text = std::fs::read_to_string(&json).expect("kroute-bench wrote no samples");
    let samples: Vec<Value> = serde_json::from_str(&text).unwrap();
    let _ = std::fs::remove_dir_all(&out);

    let mut problems = Vec::new();
    for kind in &kinds {
        let mine: Vec<&Value> = samples
            .iter()
            .filter(|s| s["receiver"].as_str() == Some(kind))
            .collect();
        let churn_expected = !matches!(*kind, "gobgp" | "kernel" | "netlink");
        let want_samples = if churn_expected { 2 } else { 1 };
        if mine.len() != want_samples {
            problems.push(format!(
                "{kind}: {} samples, expected {want_samples}",
                mine.len()
            ));
        }
        for s in mine {
            let point = s["point"].as_str().unwrap_or("?");
            let ctx = format!("{kind} at {point}");
            if let Some(e) = s["error"].as_str() {
                problems.push(format!("{ctx}: {e}"));
                continue;
            }
            if !matches!(*kind, "kernel" | "netlink") && s["ribCount"].as_u64() != Some(PREFIXES) {
                problems.push(format!("{ctx}: RIB held {}", s["ribCount"]));
            }
            let kernel_want = if *kind == "gobgp" { 0 } else { PREFIXES };
            if s["kernelCount"].as_u64() != Some(kernel_want) {
                problems.push(format!(
                    "{ctx}: kernel held {}, expected {kernel_want}",
                    s["kernelCount"]
                ));
            }
            if s["kernelAfterDrop"].as_u64() != Some(0) {
                problems.push(format!(
                    "{ctx}: kernel held {} after the drop",
                    s["kernelAfterDrop"]
                ));
            }
            if point.starts_with("churn") && s["churn"]["finalMs"].as_f64().is_none() {
                problems.push(format!("{ctx}: churn did not converge"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(st.success(), "kroute-bench run failed");
}

/// The failover run at 4k prefixes, both variants, kroute, BIRD and FRR
/// once (`KROUTE_BENCH_FAILOVER_RECEIVERS` narrows them): every run must
/// converge and end with every prefix via the surviving sender (the
/// harness's census says so, or the run reports an error). No time is
/// asserted.
#[test]
fn failover_moves_every_prefix_to_the_survivor() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "needs root");
    let receivers = std::env::var("KROUTE_BENCH_FAILOVER_RECEIVERS")
        .unwrap_or_else(|_| "kroute,bird,frr".into());
    let kroute = if receivers.split(',').any(|k| k == "kroute") {
        kroute_binary()
    } else {
        PathBuf::from("kroute-not-needed")
    };
    let out = std::env::temp_dir().join(format!("kroute-bench-fo-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let json = out.join("failover.json");
    let st = Command::new(env!("CARGO_BIN_EXE_kroute-bench"))
        .arg("failover")
        .args(["--receivers", &receivers])
        .args(["--ipv4", "3000", "--ipv6", "1000", "--repeat", "1"])
        .args(["--timeout", "120", "--keep-logs"])
        .arg("--kroute")
        .arg(&kroute)
        .arg("--out")
        .arg(out.join("failover.md"))
        .arg("--json")
        .arg(&json)
        .status()
        .expect("running kroute-bench failover");
    let text = std::fs::read_to_string(&json).expect("kroute-bench wrote no samples");
    let samples: Vec<Value> = serde_json::from_str(&text).unwrap();
    let _ = std::fs::remove_dir_all(&out);
    let n = receivers.split(',').count() * 2;
    assert_eq!(samples.len(), n, "{samples:?}");
    for s in &samples {
        assert!(s["error"].is_null(), "{s}");
        assert!(s["failoverS"].as_f64().is_some(), "{s}");
        assert_eq!(s["census"]["second"].as_u64(), Some(4000), "{s}");
        assert!(s["pingsSent"].as_u64().unwrap_or(0) > 0, "{s}");
    }
    assert!(st.success(), "kroute-bench failover failed");
}
