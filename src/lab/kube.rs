//! The kubernetes scenario's cluster: the API stand-in (`apiserver.py`,
//! embedded in this binary: PyPI's kmock plus what kube's watchers need,
//! see its module doc) in the fabric namespace, started with seed 000's six
//! Node objects (kubeadm-shaped) and one `KrouteConfig` for all of them,
//! and `kroute daemon --kubernetes` on every node.
//!
//! The per-node values live on the Nodes as an operator would put them:
//! the ASN and router ID as labels, the upstream router and the loopbacks
//! as annotations (label values cannot hold an IPv6 address), the pod
//! CIDRs in `spec.podCIDRs` (the controller manager's node IPAM). The
//! `KrouteConfig` is node 1's config with those values templated, so a
//! unit test can render it for every node and compare with what the
//! topology means.

use std::path::Path;
use std::time::Duration;

use labkit::error::io as io_err;
use labkit::{Error, Netns, Result, Spawn};
use serde_json::{json, Value};

use super::procs::{ProcRecord, State};
use super::topology::{kroute_config, KubeApi, Node, Topology};

/// The stand-in, written next to its state at `lab up`.
const SCRIPT: &str = include_str!("apiserver.py");
/// What the lab names it in the state file.
const API_OWNER: &str = "api";
const API_PROCESS: &str = "apiserver";
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub const CONFIG_NAME: &str = "seed-000";
const ASN_LABEL: &str = "kroute.io/asn";
const ROUTER_ID_LABEL: &str = "kroute.io/router-id";
const UPSTREAM_ANNOTATION: &str = "kroute.io/upstream";
const LOOPBACK_ANNOTATIONS: [&str; 2] = ["kroute.io/loopback", "kroute.io/loopback-ipv4"];

/// The Node object of `n`, as kubeadm registers a dual-stack node (labels
/// and annotations it sets, InternalIP addresses, pod CIDRs from node
/// IPAM, kubelet status trimmed), plus the operator's kroute labels.
pub fn node_object(t: &Topology, n: &Node) -> Value {
    let upstream = t
        .upstream(n)
        .map(|r| r.lan_v6.to_string())
        .unwrap_or_default();
    let loopbacks: Vec<String> = n.loopbacks.iter().map(ToString::to_string).collect();
    let mut annotations = json!({
        "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///var/run/containerd/containerd.sock",
        "node.alpha.kubernetes.io/ttl": "0",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
        UPSTREAM_ANNOTATION: upstream,
    });
    for (key, value) in LOOPBACK_ANNOTATIONS.iter().zip(&loopbacks) {
        annotations[*key] = json!(value);
    }
    let pod_cidrs = [n.pod.cidr_v6.to_string(), n.pod.cidr_v4.to_string()];
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": n.name,
            "labels": {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": n.name,
                "kubernetes.io/os": "linux",
                ASN_LABEL: n.asn.to_string(),
                ROUTER_ID_LABEL: n.router_id.to_string(),
            },
            "annotations": annotations,
        },
        "spec": { "podCIDR": pod_cidrs[0], "podCIDRs": pod_cidrs },
        "status": {
            "addresses": [
                { "type": "InternalIP", "address": n.lan_v6.to_string() },
                { "type": "InternalIP", "address": n.lan_v4.to_string() },
                { "type": "Hostname", "address": n.name },
            ],
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
            }],
            "nodeInfo": {
                "architecture": "amd64", "containerRuntimeVersion": "containerd://1.7.24",
                "kernelVersion": "6.1.0-28-amd64", "kubeProxyVersion": "v1.31.4",
                "kubeletVersion": "v1.31.4", "operatingSystem": "linux",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
            },
        },
    })
}

/// The one `KrouteConfig` for every node: node 1's config with the
/// per-node values replaced by templates reading its Node.
pub fn krouteconfig(t: &Topology) -> Value {
    let mut spec =
        serde_json::to_value(kroute_config(t, &t.nodes[0])).expect("a config always serializes");
    spec["router"]["asn"] = json!(format!("${{node.labels['{ASN_LABEL}']}}"));
    spec["router"]["routerId"] = json!(format!("${{node.labels['{ROUTER_ID_LABEL}']}}"));
    spec["peers"][0]["address"] = json!(format!("${{node.annotations['{UPSTREAM_ANNOTATION}']}}"));
    spec["advertise"][0]["prefixes"] = LOOPBACK_ANNOTATIONS
        .iter()
        .map(|k| json!(format!("${{node.annotations['{k}']}}")))
        .collect();
    // The socket is per node: `kroute daemon --socket` sets it.
    if let Some(o) = spec.as_object_mut() {
        o.remove("api");
    }
    json!({
        "apiVersion": "kroute.io/v1alpha1",
        "kind": "KrouteConfig",
        "metadata": { "name": CONFIG_NAME },
        "spec": spec,
    })
}

/// The stand-in's `--state` file it starts from: the Nodes and the
/// KrouteConfig, with the metadata the API server would have given them.
fn saved_objects(t: &Topology) -> Value {
    let mut objects = Vec::new();
    let all = t
        .nodes
        .iter()
        .map(|n| ("v1/nodes", node_object(t, n)))
        .chain([("kroute.io/v1alpha1/krouteconfigs", krouteconfig(t))]);
    for (version, (resource, mut object)) in (1..).zip(all) {
        let name = object["metadata"]["name"].clone();
        let meta = &mut object["metadata"];
        meta["uid"] = json!(format!("00000000-0000-4000-8000-{version:012}"));
        meta["resourceVersion"] = json!(version.to_string());
        meta["creationTimestamp"] = json!("2026-12-01T09:00:00Z");
        objects.push(json!({
            "resource": resource, "namespace": null, "name": name, "object": object,
        }));
    }
    json!({ "rv": objects.len(), "objects": objects })
}

/// A kubeconfig for the stand-in (plain HTTP, no user: it has no
/// authentication).
fn kubeconfig(api: &KubeApi) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kroute-lab\n  cluster:\n    \
         server: http://{}:{}\ncontexts:\n- name: kroute-lab\n  context:\n    \
         cluster: kroute-lab\n    user: kroute-lab\ncurrent-context: kroute-lab\nusers:\n\
         - name: kroute-lab\n  user: {{}}\n",
        api.address, api.port
    )
}

/// The programs the stand-in needs, with what to do when they are missing.
pub fn require_python() -> Result<()> {
    labkit::cmd::require_program("python3", "python3")?;
    let ok = std::process::Command::new("python3")
        .args(["-c", "import kmock"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(Error::Other(
            "the kubernetes scenario's API stand-in needs PyPI's kmock for python3: \
             `pip3 install kmock==0.8` (scripts/setup-debian.sh installs it)"
                .into(),
        ))
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(io_err(format!("write {}", path.display())))
}

/// Start the stand-in with the cluster's objects, on its LAN address, and
/// wait until it listens.
pub fn start_api(state: &mut State) -> Result<()> {
    let Some(api) = state.topology.kubernetes.clone() else {
        return Ok(());
    };
    std::fs::create_dir_all(&api.dir).map_err(io_err(format!("create {}", api.dir.display())))?;
    let script = api.dir.join("apiserver.py");
    let objects = api.dir.join("objects.json");
    let port_file = api.dir.join("port");
    write(&script, SCRIPT)?;
    write(&objects, &saved_objects(&state.topology).to_string())?;
    write(&api.kubeconfig, &kubeconfig(&api))?;
    // For reading (and `kroute config check --node`): what the API serves.
    let manifest = serde_yaml_ng::to_string(&krouteconfig(&state.topology))
        .map_err(|e| Error::Other(format!("KrouteConfig: {e}")))?;
    write(&api.dir.join("krouteconfig.yaml"), &manifest)?;
    let ns = Netns::open(&api.ns)?;
    ns.add_addr(
        &api.dev,
        &format!(
            "{}/{}",
            api.address,
            state.topology.fabric.lan_v4.prefix_len()
        ),
    )?;
    let (address, port) = (api.address.to_string(), api.port.to_string());
    let log = api.dir.join("apiserver.log");
    let argv = [
        "python3",
        path_str(&script)?,
        "--host",
        &address,
        "--port",
        &port,
        "--port-file",
        path_str(&port_file)?,
        "--state",
        path_str(&objects)?,
    ];
    let mut p = Spawn::new(API_PROCESS, &argv)
        .netns(&ns)
        .log(&log)
        .detached()
        .start()?;
    p.wait_ready("the API stand-in to listen", START_TIMEOUT, || {
        port_file.exists().then_some(())
    })?;
    let id = p.detach();
    state.add_process(ProcRecord::new(API_PROCESS, API_OWNER, &api.ns, id, &log))
}

/// Start `kroute daemon --kubernetes` on node `i` (detached, recorded).
pub fn start_kroute(state: &mut State, i: usize) -> Result<()> {
    let Some(api) = state.topology.kubernetes.clone() else {
        return Err(Error::Other("not a kubernetes lab".into()));
    };
    let node = state.topology.nodes[i].clone();
    std::fs::create_dir_all(&node.dir).map_err(io_err(format!("create {}", node.dir.display())))?;
    let _ = std::fs::remove_file(&node.socket);
    let cache = node.dir.join("state");
    let log = node.dir.join("kroute.log");
    let argv = [
        path_str(&state.kroute)?,
        "daemon",
        "--kubernetes",
        "--kubeconfig",
        path_str(&api.kubeconfig)?,
        "--state-dir",
        path_str(&cache)?,
        "--socket",
        path_str(&node.socket)?,
    ];
    let mut p = Spawn::new("kroute", &argv)
        .netns(&Netns::open(&node.ns)?)
        .env("NODE_NAME", &node.name)
        .env("RUST_LOG", "info,kube_client::client::builder=off")
        .log(&log)
        .append_log()
        .detached()
        .start()?;
    // Its API socket appears once the config is rendered from the cluster.
    let socket = node.socket.clone();
    p.wait_ready("kroute to render its config", START_TIMEOUT, || {
        crate::api::Client::new(&socket).neighbors().ok()
    })?;
    let id = p.detach();
    state.add_process(ProcRecord::new("kroute", &node.name, &node.ns, id, &log))
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .ok_or_else(|| Error::Other(format!("{} is not UTF-8", p.display())))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use super::*;
    use crate::kubernetes::crd::KrouteConfig;
    use crate::kubernetes::render::PlaceholderSecrets;
    use crate::lab::topology::{build, LabOptions, Scenario};

    fn topo() -> Topology {
        build(&LabOptions {
            name: "kl".into(),
            scenario: Scenario::Kubernetes,
            nodes: None,
            allow_as_in: true,
            state_dir: PathBuf::from("/run/kroute-lab/kl"),
        })
        .unwrap()
    }

    /// The one KrouteConfig, rendered for each Node the lab loads, is the
    /// config the topology means for that node: its ASN, router ID,
    /// loopbacks, its one upstream, and its pod CIDRs from the API.
    #[test]
    fn one_krouteconfig_renders_every_node() {
        let t = topo();
        assert_eq!(t.nodes.len(), 6);
        assert_eq!(t.routers.len(), 3);
        assert!(t.nodes.iter().all(|n| n.cni.is_none()), "no GoBGP");
        let config: KrouteConfig = serde_json::from_value(krouteconfig(&t)).unwrap();
        let configs = [Arc::new(config)];
        for n in &t.nodes {
            let node = serde_json::from_value(node_object(&t, n)).unwrap();
            let rendered = crate::kubernetes::render_for_node(&configs, &node, &PlaceholderSecrets)
                .unwrap_or_else(|e| panic!("{}: {e}", n.name));
            let mut want = kroute_config(&t, n);
            want.api = rendered.config.api.clone();
            assert_eq!(rendered.config, want, "{}", n.name);
            assert_eq!(rendered.config.peers.len(), 1);
            assert!(rendered.config.advertise[0].pod_cidrs.is_some());
        }
        // Each router peers with exactly the nodes that name it.
        for r in &t.routers {
            let names: Vec<&str> = r
                .neighbors
                .iter()
                .filter(|x| t.node(&x.name).is_some())
                .map(|x| x.name.as_str())
                .collect();
            let want: Vec<&str> = t
                .nodes
                .iter()
                .filter(|n| t.upstream(n).map(|u| &u.name) == Some(&r.name))
                .map(|n| n.name.as_str())
                .collect();
            assert_eq!(names, want, "{}", r.name);
            assert_eq!(names.len(), 2);
        }
    }

    #[test]
    fn saved_objects_have_api_metadata() {
        let t = topo();
        let v = saved_objects(&t);
        let objects = v["objects"].as_array().unwrap();
        assert_eq!(objects.len(), 7);
        for o in objects {
            let meta = &o["object"]["metadata"];
            assert!(meta["uid"].is_string() && meta["resourceVersion"].is_string());
            assert_eq!(o["name"], meta["name"]);
        }
        let n1 = &objects[0]["object"];
        assert_eq!(n1["spec"]["podCIDRs"][0], "fd00:101:224:1::/64");
        assert_eq!(n1["metadata"]["labels"][ASN_LABEL], "4210101011");
    }
}
