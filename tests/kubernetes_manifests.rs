//! `deploy/kubernetes/` is exactly what `kroute manifests` prints, every
//! object in it reads back into its k8s-openapi type unchanged (so no key
//! is misspelt or misplaced), and the objects keep the promises the README
//! makes: least-privilege RBAC, a DaemonSet that is not privileged.
//!
//! After changing the manifests' code or the CRD types, regenerate with
//! `KROUTE_BLESS=1 cargo test --test kubernetes_manifests`.

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kroute::kubernetes::manifests::{self, Options};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes")
}

#[test]
fn deploy_files_are_the_commands_output() {
    let bless = std::env::var("KROUTE_BLESS").is_ok_and(|v| v == "1");
    for (name, text) in manifests::files(&Options::default()) {
        let path = deploy_dir().join(name);
        if bless {
            std::fs::create_dir_all(deploy_dir()).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == text,
            "{} differs from `kroute manifests`; regenerate with \
             KROUTE_BLESS=1 cargo test --test kubernetes_manifests",
            path.display()
        );
    }
    // The command prints the same files, in apply order.
    let out = Command::new(env!("CARGO_BIN_EXE_kroute"))
        .arg("manifests")
        .output()
        .unwrap();
    assert!(out.status.success());
    let files: Vec<String> = manifests::files(&Options::default())
        .into_iter()
        .map(|(name, _)| std::fs::read_to_string(deploy_dir().join(name)).unwrap())
        .collect();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), files.join("---\n"));
}

/// Every document of `text` as JSON values.
fn documents(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// `doc` as a `T`, checked to serialize back to the same document: a key
/// the type does not know would be dropped and show here.
fn typed<T: DeserializeOwned + Serialize>(doc: &Value) -> T {
    let t: T = serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{e}: {doc}"));
    assert_eq!(&serde_json::to_value(&t).unwrap(), doc, "round trip");
    t
}

/// All objects of the default output plus a `--secret`, by kind.
struct Objects {
    crds: Vec<CustomResourceDefinition>,
    cluster_role: ClusterRole,
    roles: Vec<Role>,
    daemonset: DaemonSet,
}

fn objects(o: &Options) -> Objects {
    let mut crds = Vec::new();
    let mut roles = Vec::new();
    let (mut cluster_role, mut daemonset) = (None, None);
    let mut kinds = Vec::new();
    for doc in documents(&manifests::all(o)) {
        let kind = doc["kind"].as_str().unwrap().to_string();
        match kind.as_str() {
            "CustomResourceDefinition" => crds.push(typed(&doc)),
            "Namespace" => drop(typed::<Namespace>(&doc)),
            "ServiceAccount" => drop(typed::<ServiceAccount>(&doc)),
            "ClusterRole" => cluster_role = Some(typed(&doc)),
            "ClusterRoleBinding" => drop(typed::<ClusterRoleBinding>(&doc)),
            "Role" => roles.push(typed(&doc)),
            "RoleBinding" => drop(typed::<RoleBinding>(&doc)),
            "DaemonSet" => daemonset = Some(typed(&doc)),
            other => panic!("unexpected kind {other}"),
        }
        kinds.push(kind);
    }
    let mut expected = vec![
        "CustomResourceDefinition",
        "CustomResourceDefinition",
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
    ];
    if !o.secrets.is_empty() {
        expected.extend(["Role", "RoleBinding"]);
    }
    expected.push("DaemonSet");
    assert_eq!(kinds, expected);
    Objects {
        crds,
        cluster_role: cluster_role.unwrap(),
        roles,
        daemonset: daemonset.unwrap(),
    }
}

#[test]
fn the_crds_come_from_the_types_with_printer_columns() {
    let o = objects(&Options::default());
    let names: Vec<&str> = o
        .crds
        .iter()
        .map(|c| c.metadata.name.as_deref().unwrap())
        .collect();
    assert_eq!(
        names,
        ["krouteconfigs.kroute.io", "kroutenodestates.kroute.io"]
    );
    for crd in &o.crds {
        assert_eq!(crd.spec.scope, "Cluster");
        let v = &crd.spec.versions[0];
        assert!(
            v.subresources.as_ref().unwrap().status.is_some(),
            "status subresource"
        );
        let columns: Vec<&str> = v
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert!(columns.len() >= 2, "{columns:?}");
        assert!(columns.contains(&"Age"), "{columns:?}");
    }
}

#[test]
fn rbac_reads_what_it_needs_and_writes_only_its_own_objects() {
    let o = objects(&Options::default());
    assert!(o.roles.is_empty(), "no Secrets unless named");
    let mut writable = Vec::new();
    for rule in o.cluster_role.rules.iter().flatten() {
        assert!(
            !rule.verbs.iter().any(|v| v == "*" || v == "delete"),
            "{rule:?}"
        );
        let groups = rule.api_groups.clone().unwrap_or_default();
        let resources = rule.resources.clone().unwrap_or_default();
        assert!(!groups.contains(&"*".to_string()) && !resources.contains(&"*".to_string()));
        assert!(
            !resources.contains(&"secrets".to_string()),
            "no cluster-wide Secrets"
        );
        let writes = rule
            .verbs
            .iter()
            .any(|v| !["get", "list", "watch"].contains(&v.as_str()));
        if writes {
            writable.extend(resources.iter().map(|r| format!("{}/{r}", groups[0])));
        }
    }
    writable.sort();
    assert_eq!(
        writable,
        [
            "kroute.io/krouteconfigs/status",
            "kroute.io/kroutenodestates",
            "kroute.io/kroutenodestates/status"
        ]
    );
    let read = |group: &str, resource: &str| {
        o.cluster_role.rules.iter().flatten().any(|r| {
            r.api_groups.iter().flatten().any(|g| g == group)
                && r.resources.iter().flatten().any(|x| x == resource)
                && ["get", "list", "watch"]
                    .iter()
                    .all(|v| r.verbs.iter().any(|x| x == v))
        })
    };
    for (group, resource) in [
        ("", "nodes"),
        ("", "services"),
        ("discovery.k8s.io", "endpointslices"),
        ("cilium.io", "ciliumnodes"),
        ("kroute.io", "krouteconfigs"),
    ] {
        assert!(read(group, resource), "{group}/{resource}");
    }

    // Named Secrets: `get` on exactly those, in kroute's namespace.
    let o = objects(&Options {
        secrets: vec!["bgp-md5".into(), "upstream-md5".into()],
        ..Options::default()
    });
    let role = &o.roles[0];
    assert_eq!(
        role.metadata.namespace.as_deref(),
        Some(manifests::NAMESPACE)
    );
    let rules = role.rules.as_ref().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].verbs, ["get"]);
    assert_eq!(rules[0].resources.as_deref().unwrap(), ["secrets"]);
    assert_eq!(
        rules[0].resource_names.as_deref().unwrap(),
        ["bgp-md5", "upstream-md5"]
    );
}

#[test]
fn the_daemonset_is_host_network_unprivileged_with_probes_and_host_paths() {
    let o = objects(&Options {
        image: "registry.example/kroute:test".into(),
        http_port: 9444,
        ..Options::default()
    });
    let pod = o.daemonset.spec.template.spec.unwrap();
    assert_eq!(pod.host_network, Some(true));
    assert_eq!(pod.service_account_name.as_deref(), Some("kroute"));
    let tolerated: Vec<&str> = pod
        .tolerations
        .iter()
        .flatten()
        .filter_map(|t| t.key.as_deref())
        .collect();
    assert!(tolerated.contains(&"node-role.kubernetes.io/control-plane"));
    let c = &pod.containers[0];
    assert_eq!(c.image.as_deref(), Some("registry.example/kroute:test"));
    assert_eq!(c.args.as_deref().unwrap(), ["daemon", "--kubernetes"]);
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(sc.privileged, Some(false));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    let caps = sc.capabilities.as_ref().unwrap();
    assert_eq!(caps.drop.as_deref().unwrap(), ["ALL"]);
    // NET_ADMIN and NET_RAW, and binding the BGP port 179 needs
    // NET_BIND_SERVICE once ALL is dropped.
    assert_eq!(
        caps.add.as_deref().unwrap(),
        ["NET_ADMIN", "NET_RAW", "NET_BIND_SERVICE"]
    );
    let env = &c.env.as_ref().unwrap()[0];
    assert_eq!(env.name, "NODE_NAME");
    let field = env.value_from.as_ref().unwrap().field_ref.as_ref().unwrap();
    assert_eq!(field.field_path, "spec.nodeName");
    let http = c
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some("http"))
        .unwrap();
    assert_eq!(http.container_port, 9444);
    let path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .path
            .clone()
            .unwrap()
    };
    assert_eq!(path(&c.liveness_probe), "/healthz");
    assert_eq!(path(&c.readiness_probe), "/readyz");
    let host_paths: Vec<String> = pod
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| Some(v.host_path.as_ref()?.path.clone()))
        .collect();
    assert_eq!(host_paths, ["/var/lib/kroute", "/run/kroute"]);
    let mounts: Vec<&str> = c
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| m.mount_path.as_str())
        .collect();
    assert_eq!(mounts, ["/var/lib/kroute", "/run/kroute"]);
}
