//! Rendering with the Node shapes real clusters have: a kubeadm node
//! (labels, IPv4 and IPv6 InternalIP, `spec.podCIDRs`) and a Talos node as
//! in seed 000 (IPv6 first, Cilium's cluster-pool IPAM leaves `podCIDRs`
//! empty).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::json;

use super::*;

/// A kubeadm control-plane node, as `kubectl get node -o yaml` shows it.
fn kubeadm_node() -> Node {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": "n3",
            "uid": "5e1f0d52-8a86-4a33-9d8e-2d0a3c8c3b11",
            "resourceVersion": "48211",
            "labels": {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": "n3",
                "kubernetes.io/os": "linux",
                "node-role.kubernetes.io/control-plane": "",
                "node.kubernetes.io/exclude-from-external-load-balancers": "",
                "topology.kubernetes.io/zone": "rack1",
                "kroute.io/asn": "4210101013",
                "kroute.io/router-id": "10.101.254.13"
            },
            "annotations": {
                "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///var/run/containerd/containerd.sock",
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true"
            }
        },
        "spec": {
            "podCIDR": "10.244.2.0/24",
            "podCIDRs": ["10.244.2.0/24", "fd00:10:244:2::/64"],
            "taints": [{"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"}]
        },
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": "192.168.10.13"},
                {"type": "InternalIP", "address": "fd00:192:168:10::13"},
                {"type": "Hostname", "address": "n3"}
            ]
        }
    }))
    .unwrap()
}

/// A Talos worker of seed 000's cluster: IPv6 node addresses first.
fn talos_node() -> Node {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": "solwk01",
            "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": "solwk01",
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": "",
                "kroute.io/asn": "4210101021",
                "kroute.io/router-id": "10.101.254.21",
                "kroute.io/role": "worker"
            },
            "annotations": {
                "cluster.talos.dev/node-id": "lLl1sxV4m8xUOWc8mMcNMxUH0s7hbh4pcS2KHb1QX3m",
                "networking.talos.dev/self-ips": "fd00:101::21,10.101.0.21",
                "kroute.io/loopback": "fd00:101:fe::21/128",
                "talos.dev/owned-labels": "[\"kroute.io/asn\",\"kroute.io/router-id\"]"
            }
        },
        "spec": {},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": "fd00:101::21"},
                {"type": "InternalIP", "address": "10.101.0.21"},
                {"type": "Hostname", "address": "solwk01"}
            ]
        }
    }))
    .unwrap()
}

/// A KrouteConfig from its manifest (YAML, as `kubectl apply` takes it).
fn config(yaml: &str) -> KrouteConfig {
    serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
}

fn no_secrets() -> BTreeMap<(String, String), String> {
    BTreeMap::new()
}

/// Seed 000's node config for every node, per-node values from labels.
const FABRIC: &str = r#"
apiVersion: kroute.io/v1alpha1
kind: KrouteConfig
metadata: { name: fabric }
spec:
  router:
    asn: ${node.labels['kroute.io/asn']}
    routerId: ${node.labels['kroute.io/router-id']}
  peers:
    - name: cilium
      address: "::1"
      port: 1790
      asn: 4220101000
      passive: true
      import: all
      export: none
    - name: upstream
      address: fd00:101::fffe
      asn: 4200001000
      allowAsIn: 1
      import: all
      export: all
  advertise:
    - prefixes: ["${node.annotations['kroute.io/loopback']}"]
      largeCommunities: ["4200001000:0:100"]
"#;

fn render_one(yaml: &str, node: &Node) -> Result<Rendered, RenderError> {
    render(&[config(yaml)], node, &no_secrets())
}

#[test]
fn labels_fill_a_config_to_what_the_same_file_gives() {
    let r = render_one(FABRIC, &talos_node()).unwrap();
    assert_eq!(r.configs, ["fabric"]);
    let file = r#"
router: { asn: 4210101021, routerId: 10.101.254.21 }
peers:
  - { name: cilium, address: "::1", port: 1790, asn: 4220101000, passive: true, import: all, export: none }
  - { name: upstream, address: "fd00:101::fffe", asn: 4200001000, allowAsIn: 1, import: all, export: all }
advertise:
  - { prefixes: [fd00:101:fe::21/128], largeCommunities: ["4200001000:0:100"] }
"#;
    assert_eq!(r.config, config::parse(file, "node.yaml").unwrap());
}

#[test]
fn the_node_name_and_internal_addresses_are_templates() {
    let yaml = r#"
metadata: { name: addrs }
spec:
  router: { asn: 65001, routerId: "${node.internalIPv4}" }
  peers:
    - name: "tor-${node.name}"
      address: "${node.internalIPv6}"
      localAddress: ${node.internalIPv6}
      asn: 65000
"#;
    let r = render_one(yaml, &kubeadm_node()).unwrap();
    assert_eq!(r.config.router.router_id.to_string(), "192.168.10.13");
    assert_eq!(r.config.peers[0].name, "tor-n3");
    assert_eq!(r.config.peers[0].address.to_string(), "fd00:192:168:10::13");
    // Talos lists the IPv6 address first: each family still finds its own.
    let r = render_one(yaml, &talos_node()).unwrap();
    assert_eq!(r.config.router.router_id.to_string(), "10.101.0.21");
    assert_eq!(r.config.peers[0].address.to_string(), "fd00:101::21");
}

#[test]
fn a_missing_label_names_the_config_node_and_key() {
    let mut node = kubeadm_node();
    node.metadata
        .labels
        .as_mut()
        .unwrap()
        .remove("kroute.io/asn");
    let e = render_one(FABRIC, &node).unwrap_err();
    assert_eq!(e.configs, ["fabric"]);
    assert_eq!(e.path, "spec.router.asn");
    assert_eq!(
        e.to_string(),
        "KrouteConfig \"fabric\", node \"n3\": spec.router.asn: label 'kroute.io/asn' is missing"
    );
    // The annotation in a list item: its index is in the path.
    let e = render_one(FABRIC, &kubeadm_node()).unwrap_err();
    assert_eq!(e.path, "spec.advertise[0].prefixes[0]");
    assert_eq!(e.message, "annotation 'kroute.io/loopback' is missing");
}

#[test]
fn a_node_without_an_ipv6_address_cannot_fill_internal_ipv6() {
    let mut node = kubeadm_node();
    let status = node.status.as_mut().unwrap();
    status
        .addresses
        .as_mut()
        .unwrap()
        .retain(|a| !a.address.contains(':'));
    let yaml = r#"
metadata: { name: v6 }
spec:
  router: { asn: 65001, routerId: 10.0.0.1 }
  peers: [{ name: up, address: "${node.internalIPv6}", asn: 65000 }]
"#;
    let e = render_one(yaml, &node).unwrap_err();
    assert_eq!(e.path, "spec.peers[0].address");
    assert!(e.message.contains("no IPv6 InternalIP"), "{e}");
}

#[test]
fn a_bad_label_value_fails_the_file_check_at_the_configs_key() {
    let mut node = talos_node();
    node.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("kroute.io/asn".into(), "23456".into());
    let e = render_one(FABRIC, &node).unwrap_err();
    assert_eq!(e.configs, ["fabric"]);
    assert_eq!(e.path, "spec.router.asn");
    assert!(e.message.contains("AS_TRANS"), "{e}");
    // A value that is not a number stays a string and is refused as one.
    node.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("kroute.io/asn".into(), "as65001".into());
    let e = render_one(FABRIC, &node).unwrap_err();
    assert_eq!(e.path, "spec.router.asn");
    assert!(e.message.contains("as65001"), "{e}");
}

#[test]
fn a_template_inside_text_stays_text_and_dollar_dollar_escapes() {
    let yaml = r#"
metadata: { name: text }
spec:
  router: { asn: 65001, routerId: 10.0.0.1 }
  api: { socket: "/run/kroute/$${node.name}-${node.name}.sock" }
  peers: [{ name: "${node.labels['kroute.io/asn']}", address: 192.0.2.1, asn: 65000 }]
"#;
    let r = render_one(yaml, &kubeadm_node()).unwrap();
    assert_eq!(
        r.config.api.socket.to_str().unwrap(),
        "/run/kroute/${node.name}-n3.sock"
    );
    // A whole-value number where the schema wants a string is the string,
    // as `name: 4210101013` in a file is.
    assert_eq!(r.config.peers[0].name, "4210101013");
}

#[test]
fn unknown_and_unterminated_templates_are_errors() {
    let base = |v: &str| {
        format!("metadata: {{ name: t }}\nspec:\n  router: {{ asn: 65001, routerId: \"{v}\" }}\n")
    };
    let e = render_one(&base("${node.uid}"), &kubeadm_node()).unwrap_err();
    assert!(e.message.contains("unknown template ${node.uid}"), "{e}");
    let e = render_one(&base("${node.name"), &kubeadm_node()).unwrap_err();
    assert!(e.message.contains("unterminated"), "{e}");
    let e = render_one(&base("${node.labels[kroute.io/asn]}"), &kubeadm_node()).unwrap_err();
    assert!(e.message.contains("quoted"), "{e}");
    assert_eq!(e.path, "spec.router.routerId");
}

/// Two configs for the same nodes: one sets the router, one the peers.
const ROUTER_ONLY: &str = r#"
metadata: { name: a-router }
spec:
  router: { asn: "${node.labels['kroute.io/asn']}", routerId: "${node.labels['kroute.io/router-id']}" }
  peers: [{ name: cilium, address: "::1", port: 1790, asn: 4220101000, passive: true }]
"#;
const UPSTREAMS: &str = r#"
metadata: { name: b-upstreams }
spec:
  nodeSelector: { matchLabels: { kroute.io/role: worker } }
  peers: [{ name: upstream, address: "fd00:101::fffe", asn: 4200001000, import: all, export: all }]
  policies: [{ name: p, rules: [{ action: accept }] }]
"#;

#[test]
fn lists_of_several_configs_concatenate_in_name_order() {
    // Given in the other order: merged by name.
    let cs = [config(UPSTREAMS), config(ROUTER_ONLY)];
    let r = render(&cs, &talos_node(), &no_secrets()).unwrap();
    assert_eq!(r.configs, ["a-router", "b-upstreams"]);
    let names: Vec<&str> = r.config.peers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["cilium", "upstream"]);
    assert_eq!(r.config.policies.len(), 1);
    // The selector leaves the kubeadm node (no role label) with one config.
    let mut node = kubeadm_node();
    node.metadata.name = Some("n3".into());
    let r = render(&cs, &node, &no_secrets()).unwrap();
    assert_eq!(r.configs, ["a-router"]);
    assert_eq!(r.config.peers.len(), 1);
}

#[test]
fn a_section_set_by_two_configs_is_a_conflict_naming_both() {
    let other = r#"
metadata: { name: c-other }
spec:
  router: { asn: 65001, routerId: 10.0.0.1 }
"#;
    let cs = [config(ROUTER_ONLY), config(other)];
    let e = render(&cs, &talos_node(), &no_secrets()).unwrap_err();
    assert_eq!(e.configs, ["a-router", "c-other"]);
    assert_eq!(e.path, "spec.router");
    assert!(
        e.to_string()
            .starts_with("KrouteConfigs \"a-router\" and \"c-other\", node \"solwk01\": spec.router: both configs set `router`"),
        "{e}"
    );
}

#[test]
fn a_peer_or_policy_name_defined_twice_conflicts() {
    let dup = r#"
metadata: { name: c-dup }
spec:
  peers:
    - { name: other, address: 192.0.2.9, asn: 65009 }
    - { name: upstream, address: 192.0.2.1, asn: 65000 }
"#;
    let cs = [config(ROUTER_ONLY), config(UPSTREAMS), config(dup)];
    let e = render(&cs, &talos_node(), &no_secrets()).unwrap_err();
    assert_eq!(e.configs, ["b-upstreams", "c-dup"]);
    assert_eq!(e.path, "spec.peers[1].name");
    assert!(
        e.message
            .contains("peer name \"upstream\" is also defined by KrouteConfig \"b-upstreams\" at spec.peers[0]"),
        "{e}"
    );
    // Within one config: the one config, both places.
    let one = r#"
metadata: { name: one }
spec:
  router: { asn: 65001, routerId: 10.0.0.1 }
  policies: [{ name: p, rules: [] }, { name: q, rules: [] }, { name: p, rules: [] }]
"#;
    let e = render_one(one, &talos_node()).unwrap_err();
    assert_eq!(e.configs, ["one"]);
    assert_eq!(e.path, "spec.policies[2].name");
    assert!(
        e.message.contains("also defined by spec.policies[0]"),
        "{e}"
    );
}

#[test]
fn a_checker_error_in_a_merged_list_points_into_its_own_config() {
    let bad = r#"
metadata: { name: b-bad }
spec:
  peers:
    - { name: up1, address: 192.0.2.1, asn: 65000 }
    - { name: up2, address: 192.0.2.1, asn: 65000, allowAsIn: 300 }
"#;
    let cs = [config(ROUTER_ONLY), config(bad)];
    let e = render(&cs, &talos_node(), &no_secrets()).unwrap_err();
    assert_eq!(e.configs, ["b-bad"]);
    assert_eq!(e.path, "spec.peers[1].allowAsIn");
    // The duplicate address is found by the file's checks across configs;
    // the other peer is named by its own config.
    let bad = r#"
metadata: { name: b-bad }
spec:
  peers: [{ name: up1, address: "::1", port: 1790, asn: 65000 }]
"#;
    let cs = [config(ROUTER_ONLY), config(bad)];
    let e = render(&cs, &talos_node(), &no_secrets()).unwrap_err();
    assert_eq!(e.path, "spec.peers[0].address");
    assert!(
        e.message
            .contains("KrouteConfig \"a-router\" spec.peers[0] already has address ::1 port 1790"),
        "{e}"
    );
}

#[test]
fn no_router_in_any_selected_config_names_them_all() {
    let e = render(&[config(UPSTREAMS)], &talos_node(), &no_secrets()).unwrap_err();
    assert_eq!(e.configs, ["b-upstreams"]);
    assert_eq!(e.path, "spec.router");
    assert!(e.message.contains("none of the configs"), "{e}");
}

#[test]
fn an_error_of_the_merged_whole_names_every_config() {
    let e = RenderError {
        node: "n1".into(),
        configs: vec!["a".into(), "b".into(), "c".into()],
        path: String::new(),
        message: "m".into(),
    };
    assert_eq!(
        e.to_string(),
        "KrouteConfigs \"a\", \"b\" and \"c\", node \"n1\": m"
    );
}

#[test]
fn a_node_no_config_selects_is_an_error() {
    let e = render(&[config(UPSTREAMS)], &kubeadm_node(), &no_secrets()).unwrap_err();
    assert!(e.configs.is_empty());
    assert_eq!(
        e.to_string(),
        "node \"n3\": no KrouteConfig selects this node"
    );
    let e = render(&[], &kubeadm_node(), &no_secrets()).unwrap_err();
    assert_eq!(e.message, "no KrouteConfig selects this node");
}

fn selector(yaml: &str) -> LabelSelector {
    serde_yaml_ng::from_str(yaml).unwrap()
}

#[test]
fn match_expressions_follow_kubernetes_semantics() {
    let labels = kubeadm_node().metadata.labels.unwrap();
    let m = |y: &str| selector_matches(&selector(y), &labels);
    assert_eq!(m("{}"), Ok(true), "empty selects everything");
    assert_eq!(
        m("matchLabels: { topology.kubernetes.io/zone: rack1 }"),
        Ok(true)
    );
    assert_eq!(
        m("matchLabels: { topology.kubernetes.io/zone: rack2 }"),
        Ok(false)
    );
    let expr = |op: &str, values: &str| {
        m(&format!(
            "matchExpressions: [{{ key: topology.kubernetes.io/zone, operator: {op}{values} }}]"
        ))
    };
    assert_eq!(expr("In", ", values: [rack0, rack1]"), Ok(true));
    assert_eq!(expr("In", ", values: [rack0]"), Ok(false));
    assert_eq!(expr("NotIn", ", values: [rack1]"), Ok(false));
    assert_eq!(expr("NotIn", ", values: [rack0]"), Ok(true));
    assert_eq!(expr("Exists", ""), Ok(true));
    assert_eq!(expr("DoesNotExist", ""), Ok(false));
    // A node without the label: NotIn holds, as in Kubernetes.
    let no_label = "matchExpressions: [{ key: kroute.io/role, operator: NotIn, values: [worker] }]";
    assert_eq!(m(no_label), Ok(true));
    assert_eq!(
        m("matchExpressions: [{ key: kroute.io/role, operator: DoesNotExist }]"),
        Ok(true)
    );
    // Both kinds at once: all must hold.
    assert_eq!(
        m("{ matchLabels: { kubernetes.io/os: linux }, matchExpressions: [{ key: node-role.kubernetes.io/control-plane, operator: Exists }] }"),
        Ok(true)
    );
    assert_eq!(
        m("{ matchLabels: { kubernetes.io/os: windows }, matchExpressions: [{ key: node-role.kubernetes.io/control-plane, operator: Exists }] }"),
        Ok(false)
    );
}

#[test]
fn malformed_selectors_are_errors_with_their_key() {
    let yaml = r#"
metadata: { name: sel }
spec:
  nodeSelector:
    matchExpressions:
      - { key: a, operator: Exists }
      - { key: b, operator: Equals, values: [x] }
  router: { asn: 65001, routerId: 10.0.0.1 }
"#;
    let e = render_one(yaml, &kubeadm_node()).unwrap_err();
    assert_eq!(e.path, "spec.nodeSelector.matchExpressions[1].operator");
    assert!(e.message.contains("unknown operator \"Equals\""), "{e}");
    let labels = BTreeMap::new();
    let e = selector_matches(
        &selector("matchExpressions: [{ key: a, operator: In }]"),
        &labels,
    )
    .unwrap_err();
    assert_eq!(e.0, ".matchExpressions[0].values");
    let e = selector_matches(
        &selector("matchExpressions: [{ key: a, operator: Exists, values: [x] }]"),
        &labels,
    )
    .unwrap_err();
    assert!(e.1.contains("takes no values"), "{e:?}");
}

const WITH_SECRET: &str = r#"
metadata: { name: md5 }
spec:
  router: { asn: 65001, routerId: 10.0.0.1 }
  peers:
    - name: up
      address: 192.0.2.1
      asn: 65000
      passwordSecretRef: { name: "bgp-${node.name}", key: upstream }
"#;

#[test]
fn password_secret_refs_are_resolved_through_the_secret_source() {
    let mut secrets = no_secrets();
    secrets.insert(("bgp-n3".into(), "upstream".into()), "s3cret\n".into());
    let r = render(&[config(WITH_SECRET)], &kubeadm_node(), &secrets).unwrap();
    let pw = r.config.peers[0].password.as_ref().unwrap();
    assert_eq!(pw.as_bytes(), b"s3cret", "one trailing newline stripped");
    // The canonical form keeps the reference, never the key.
    let yaml = r.config.to_yaml();
    assert!(!yaml.contains("s3cret"), "{yaml}");
    assert!(yaml.contains("name: bgp-n3"), "{yaml}");
    // A missing Secret or key names the reference.
    let e = render(&[config(WITH_SECRET)], &kubeadm_node(), &no_secrets()).unwrap_err();
    assert_eq!(e.path, "spec.peers[0].passwordSecretRef");
    assert!(
        e.message.contains("\"bgp-n3\" has no key \"upstream\""),
        "{e}"
    );
    // Too long a key: the length rule of every TCP-MD5 key.
    secrets.insert(("bgp-n3".into(), "upstream".into()), "x".repeat(81));
    let e = render(&[config(WITH_SECRET)], &kubeadm_node(), &secrets).unwrap_err();
    assert!(e.message.contains("1..=80 bytes, not 81"), "{e}");
}

#[test]
fn a_secret_ref_excludes_password_and_password_file() {
    let yaml = WITH_SECRET.replace("asn: 65000\n", "asn: 65000\n      password: inline\n");
    let e = render(&[config(&yaml)], &kubeadm_node(), &PlaceholderSecrets).unwrap_err();
    assert_eq!(e.path, "spec.peers[0].passwordSecretRef");
    assert!(e.message.contains("give one of"), "{e}");
}

#[test]
fn a_secret_ref_in_a_file_is_an_error_naming_the_key() {
    let file = "router: { asn: 65001, routerId: 10.0.0.1 }\n\
                peers:\n  - { name: up, address: 192.0.2.1, asn: 65000, passwordSecretRef: { name: s, key: k } }\n";
    let e = config::parse(file, "kroute.yaml").unwrap_err();
    assert_eq!(e.path, "peers[0].passwordSecretRef");
    assert!(e.message.contains("only in Kubernetes mode"), "{e}");
    assert_eq!(e.line, 3, "{e}");
}

#[test]
fn an_unknown_key_in_a_section_is_the_files_error() {
    let yaml = r#"
metadata: { name: typo }
spec:
  router: { asn: 65001, routerID: 10.0.0.1 }
"#;
    let e = render_one(yaml, &kubeadm_node()).unwrap_err();
    assert_eq!(e.path, "spec.router");
    assert!(e.message.contains("did you mean routerId?"), "{e}");
}

#[test]
fn an_unknown_key_in_the_spec_is_refused() {
    let e = serde_yaml_ng::from_str::<KrouteConfig>("metadata: { name: t }\nspec: { peer: [] }\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `peer`"), "{e}");
}

/// Templates concatenate like peers: one config defines the template, the
/// other's peers use it; a template name defined twice conflicts.
const NODE_TEMPLATE: &str = r#"
metadata: { name: b-templates }
spec:
  peerTemplates:
    - { name: tors, asn: 4200001000, holdTime: 9, import: all, export: none }
"#;

#[test]
fn peer_templates_merge_across_configs_and_conflict_by_name() {
    let peers = r#"
metadata: { name: c-peers }
spec:
  peers:
    - { name: tor1, address: "fd00:101::fffe", template: tors }
    - { name: tor2, address: "fd00:102::fffe", template: tors, holdTime: 30 }
"#;
    let cs = [config(peers), config(NODE_TEMPLATE), config(ROUTER_ONLY)];
    let r = render(&cs, &talos_node(), &no_secrets()).unwrap();
    let tor1 = r.config.peers.iter().find(|p| p.name == "tor1").unwrap();
    let tor2 = r.config.peers.iter().find(|p| p.name == "tor2").unwrap();
    assert_eq!((tor1.asn, tor1.hold_time), (4_200_001_000.into(), Some(9)));
    assert_eq!((tor2.asn, tor2.hold_time), (4_200_001_000.into(), Some(30)));
    assert_eq!(tor1.export, rib::policy::PolicyChain::None);

    let again = NODE_TEMPLATE.replace("b-templates", "d-templates");
    let cs = [config(NODE_TEMPLATE), config(&again), config(ROUTER_ONLY)];
    let e = render(&cs, &talos_node(), &no_secrets()).unwrap_err();
    assert_eq!(e.path, "spec.peerTemplates[0].name");
    assert_eq!(e.configs, ["b-templates", "d-templates"]);
    assert!(
        e.message
            .contains("template name \"tors\" is also defined by KrouteConfig \"b-templates\""),
        "{e}"
    );

    // An error inside a template points into the config that has it.
    let bad = NODE_TEMPLATE.replace("holdTime: 9", "holdTime: 2");
    let cs = [config(&bad), config(ROUTER_ONLY)];
    let e = render(&cs, &talos_node(), &no_secrets()).unwrap_err();
    assert_eq!(e.configs, ["b-templates"]);
    assert_eq!(e.path, "spec.peerTemplates[0].holdTime");
}

#[test]
fn bmp_collectors_and_routing_domains_render_as_in_the_file() {
    let yaml = r#"
apiVersion: kroute.io/v1alpha1
kind: KrouteConfig
metadata: { name: ops }
spec:
  router: { asn: 65001, routerId: 10.0.0.1 }
  peers:
    - { name: inet, address: 10.1.0.2, asn: 65100, domain: internet, import: all, export: none }
  domains:
    - name: internet
      table: 100
      rules: [{ from: "${node.internalIPv4}/32", priority: 1000 }]
  bmp:
    - { address: 192.0.2.9, port: 1790, monitoring: [postPolicy] }
"#;
    let r = render_one(yaml, &kubeadm_node()).unwrap();
    let file = r#"
router: { asn: 65001, routerId: 10.0.0.1 }
peers:
  - { name: inet, address: 10.1.0.2, asn: 65100, domain: internet, import: all, export: none }
domains:
  - { name: internet, table: 100, rules: [{ from: 192.168.10.13/32, priority: 1000 }] }
bmp:
  - { address: 192.0.2.9, port: 1790, monitoring: [postPolicy] }
"#;
    assert_eq!(r.config, config::parse(file, "node.yaml").unwrap());
    // A bad collector fails at the config's own key.
    let bad = yaml.replace("port: 1790", "port: 0");
    let e = render_one(&bad, &kubeadm_node()).unwrap_err().to_string();
    assert!(e.contains("spec.bmp[0]"), "{e}");
}
