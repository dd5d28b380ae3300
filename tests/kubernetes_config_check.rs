//! `kroute config check FILE --node NODE_YAML`: a KrouteConfig manifest
//! rendered for a Node manifest, through the binary, as an operator runs
//! it before `kubectl apply`. Uses the README's example
//! (`examples/kubernetes/`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/kubernetes")
        .join(name)
}

fn kroute(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kroute"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = kroute(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = kroute(args);
    assert!(!out.status.success());
    String::from_utf8(out.stderr).unwrap()
}

fn scratch(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kroute-kcheck-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn the_example_renders_for_its_node_to_the_file_it_stands_for() {
    let (fabric, node) = (example("fabric.yaml"), example("node-solwk01.yaml"));
    let summary = ok(&["config", "check", s(&fabric), "--node", s(&node)]);
    assert!(
        summary.ends_with(
            ": node \"solwk01\" (KrouteConfig fabric): ok (2 peers, 0 policies, 1 advertise entries)\n"
        ),
        "{summary}"
    );
    let printed = ok(&["config", "check", s(&fabric), "--node", s(&node), "--print"]);
    let rendered = kroute::config::parse(&printed, "printed.yaml").unwrap();
    // What the same node's hand-written file (examples/node.yaml for
    // solcp01, here for solwk01) would be.
    let file = r#"
router: { asn: 4210101021, routerId: 10.101.254.21 }
api: { http: { address: "::", port: 9179 } }
kernel: { keepOnExit: true }
peers:
  - { name: cilium, address: "::1", port: 1790, asn: 4220101000, passive: true, import: all, export: none }
  - { name: upstream, address: "fd00:101::fffe", asn: 4200001000, allowAsIn: 1, import: all, export: all }
advertise:
  - { prefixes: [fd00:101:fe::21/128], largeCommunities: ["4200001000:0:100"] }
"#;
    assert_eq!(rendered, kroute::config::parse(file, "node.yaml").unwrap());
}

#[test]
fn a_node_without_the_label_is_named_with_the_file_and_key() {
    let node = std::fs::read_to_string(example("node-solwk01.yaml")).unwrap();
    // Selected (the ASN label exists), but the router ID label is gone.
    let node = scratch(
        "node-no-id.yaml",
        &node.replace("    kroute.io/router-id: 10.101.254.21\n", ""),
    );
    let fabric = example("fabric.yaml");
    let e = fails(&["config", "check", s(&fabric), "--node", s(&node)]);
    assert_eq!(
        e.trim_end(),
        format!(
            // Line 18, column 15: the value `${node.labels['kroute.io/router-id']}`.
            "{}:18:15: KrouteConfig \"fabric\", node \"solwk01\": spec.router.routerId: label 'kroute.io/router-id' is missing",
            fabric.display()
        )
    );
}

#[test]
fn two_documents_merge_and_a_secret_is_never_printed() {
    let fabric = std::fs::read_to_string(example("fabric.yaml")).unwrap();
    let md5 = r#"---
apiVersion: kroute.io/v1alpha1
kind: KrouteConfig
metadata: { name: md5-upstream }
spec:
  peers:
    - name: rr
      address: fd00:101::fffd
      asn: 4200001000
      passwordSecretRef: { name: kroute-bgp, key: rr }
"#;
    let both = scratch("both.yaml", &format!("{fabric}{md5}"));
    let node = example("node-solwk01.yaml");
    let out = ok(&["config", "check", s(&both), "--node", s(&node), "--print"]);
    assert!(
        out.contains("passwordSecretRef:\n    name: kroute-bgp\n    key: rr"),
        "{out}"
    );
    assert!(
        !out.contains("password:") && !out.contains("<from"),
        "{out}"
    );
    let summary = ok(&["config", "check", s(&both), "--node", s(&node)]);
    assert!(
        summary.contains("(KrouteConfig fabric, md5-upstream): ok (3 peers"),
        "{summary}"
    );
    // The same name twice in the merged peers is a conflict naming both.
    let dup = scratch(
        "dup.yaml",
        &format!("{fabric}{}", md5.replace("name: rr", "name: upstream")),
    );
    let e = fails(&["config", "check", s(&dup), "--node", s(&node)]);
    // Placed at the second definition: document 2's first peer name.
    let line = fabric.lines().count() + 7;
    assert!(
        e.starts_with(&format!("{}:{line}:13: ", dup.display())),
        "{e}"
    );
    assert!(
        e.contains("KrouteConfigs \"fabric\" and \"md5-upstream\", node \"solwk01\": spec.peers[0].name: peer name \"upstream\" is also defined by KrouteConfig \"fabric\" at spec.peers[1]"),
        "{e}"
    );
}

#[test]
fn the_node_flag_and_the_file_kind_must_agree() {
    let plain = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/node.yaml");
    let node = example("node-solwk01.yaml");
    assert!(ok(&["config", "check", s(&plain)]).contains(": ok (2 peers"));
    let e = fails(&["config", "check", s(&plain), "--node", s(&node)]);
    assert!(e.contains("this is a config file"), "{e}");
    let e = fails(&["config", "check", s(&example("fabric.yaml"))]);
    assert!(e.contains("give --node NODE_YAML"), "{e}");
    // The node file must be a Node.
    let e = fails(&[
        "config",
        "check",
        s(&example("fabric.yaml")),
        "--node",
        s(&plain),
    ]);
    assert!(e.contains("expected kind Node"), "{e}");
    // In a plain file a Secret reference is refused, with file and line.
    let f = scratch(
        "secret.yaml",
        "router: { asn: 65001, routerId: 10.0.0.1 }\npeers:\n  - name: up\n    address: 192.0.2.1\n    asn: 65000\n    passwordSecretRef: { name: s, key: k }\n",
    );
    let e = fails(&["config", "check", s(&f)]);
    assert!(
        e.starts_with(&format!("{}:6:", f.display())) && e.contains("peers[0].passwordSecretRef: "),
        "{e}"
    );
}
