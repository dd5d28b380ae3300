//! `kroute config check -o json` through the binary: warnings for valid
//! but surely wrong configs, errors as `ok: false` with exit status 1.

use std::process::{Command, Output};

fn check(name: &str, yaml: &str, extra: &[&str]) -> (Output, serde_json::Value) {
    let dir = std::env::temp_dir().join(format!("kroute-cli-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, yaml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kroute"))
        .args(["config", "check"])
        .arg(&file)
        .args(extra)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    let json = if extra.contains(&"json") {
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    } else {
        serde_json::Value::Null
    };
    (out, json)
}

const WRONG: &str = "router:\n  asn: 65000\n  routerId: 10.0.0.1\n  listen: null\n  maxPaths: 4\n\
                     peers:\n  - name: tor\n    address: 192.0.2.1\n    asn: 65101\n    passive: true\n";

#[test]
fn warnings_in_json_and_on_stderr_never_fail_the_check() {
    let (out, v) = check("wrong.yaml", WRONG, &["-o", "json"]);
    assert!(out.status.success());
    assert_eq!(v["ok"], true);
    assert_eq!(v["schemaVersion"], kroute::api::views::SCHEMA_VERSION);
    assert_eq!(v["peers"], 1);
    let keys: Vec<&str> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "peers[0].import",
            "peers[0].export",
            "peers[0].passive",
            "router.maxPaths"
        ]
    );
    assert_eq!(v["warnings"][2]["line"], 10);
    assert!(v.get("config").is_none());

    let (_, printed) = check("wrong.yaml", WRONG, &["--print", "-o", "json"]);
    assert_eq!(printed["config"]["router"]["maxPaths"], 4);

    let (out, _) = check("wrong.yaml", WRONG, &[]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "wrong.yaml:7: warning: peers[0].import: eBGP peer \"tor\" has no import policy"
        ),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.ends_with(": ok (1 peers, 0 policies, 0 advertise entries, 4 warnings)\n"),
        "{stdout}"
    );
}

#[test]
fn an_invalid_file_is_ok_false_with_the_error_and_exit_1() {
    let (out, v) = check("bad.yaml", "router: { asn: 65000 }\n", &["-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(v["ok"], false);
    let e = v["error"].as_str().unwrap();
    assert!(
        e.contains("bad.yaml:1:") && e.contains("router.routerId"),
        "{e}"
    );
}
