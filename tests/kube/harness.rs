//! Kubernetes mode under test: the API stand-in (`apiserver.py`: PyPI's
//! kmock plus what the `kube` watchers need, see its module doc) in its
//! own namespace on the nodes' LAN, objects written to it with the real
//! `kube` client, and `kroute daemon --kubernetes` per node namespace.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Api;
use labkit::{Netns, Process, ScratchDir, Spawn};
use serde_json::Value;

use super::common::{test_dir, wait_until};

pub const BIN: &str = env!("CARGO_BIN_EXE_kroute");
const PORT: u16 = 6443;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lab/apiserver.py")
}

/// The API stand-in, listening on `address:6443` in its namespace.
pub struct ApiServer {
    process: Option<Process>,
    dir: ScratchDir,
    ns: Netns,
    pub address: String,
}

impl ApiServer {
    /// Start it in `ns` (which must have `address`).
    pub fn start(ns: Netns, address: &str) -> ApiServer {
        let dir = test_dir(&format!("kapi-{}", ns.name()));
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: http://{address}:{PORT}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\ncurrent-context: test\nusers:\n- name: test\n  user: {{}}\n"
        );
        std::fs::write(dir.path().join("kubeconfig"), kubeconfig).expect("kubeconfig");
        let mut api = ApiServer {
            process: None,
            dir,
            ns,
            address: address.to_string(),
        };
        api.start_again();
        api
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// (Re)start with the objects it had (its state file).
    pub fn start_again(&mut self) {
        let port_file = self.dir.path().join("port");
        let _ = std::fs::remove_file(&port_file);
        let script = script();
        let state = self.dir.path().join("state.json");
        let port = PORT.to_string();
        let argv = [
            "python3",
            script.to_str().unwrap(),
            "--host",
            &self.address,
            "--port",
            &port,
            "--port-file",
            port_file.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
        ];
        let p = Spawn::new("apiserver", &argv)
            .netns(&self.ns)
            .log(&self.dir.path().join("apiserver.log"))
            .append_log()
            .start()
            .unwrap_or_else(|e| panic!("{e}"));
        self.process = Some(p);
        wait_until(
            Duration::from_secs(30),
            "the API stand-in listening",
            || {
                if let Some(p) = &mut self.process {
                    p.check_alive().map_err(|e| e.to_string())?;
                }
                if port_file.exists() {
                    Ok(())
                } else {
                    Err(self.log())
                }
            },
        );
    }

    /// Stop it (SIGTERM, by PID).
    pub fn stop(&mut self) {
        if let Some(p) = self.process.take() {
            p.id()
                .terminate(Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("apiserver.log")).unwrap_or_default()
    }

    /// While stopped: change a saved object (`resource` as "v1/nodes"), as
    /// if it had changed while this node could not see the API server.
    pub fn edit_saved(&self, resource: &str, name: &str, f: impl FnOnce(&mut Value)) {
        assert!(self.process.is_none(), "stop the API server first");
        let path = self.dir.path().join("state.json");
        let mut saved: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("state file")).expect("state json");
        let obj = saved["objects"]
            .as_array_mut()
            .expect("objects")
            .iter_mut()
            .find(|o| o["resource"] == resource && o["name"] == name)
            .unwrap_or_else(|| panic!("no saved {resource} {name}"));
        f(&mut obj["object"]);
        std::fs::write(&path, serde_json::to_vec(&saved).unwrap()).expect("state file");
    }

    /// `kroute ARGS --kubeconfig FILE` inside the API's namespace (where
    /// the API is reachable), e.g. `cluster check`.
    pub fn kroute_cli(&self, args: &[&str]) -> std::process::Output {
        self.ns
            .command(BIN)
            .args(args)
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .output()
            .unwrap_or_else(|e| panic!("{BIN}: {e}"))
    }

    /// Run `f` with a client, on a thread inside the API's namespace.
    fn with_client<T: Send + 'static>(
        &self,
        f: impl FnOnce(kube::Client) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>
            + Send
            + 'static,
    ) -> T {
        let kubeconfig = self.kubeconfig();
        self.ns
            .spawn_thread(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let client = kroute::kubernetes::client::connect(Some(&kubeconfig))
                        .await
                        .expect("client");
                    f(client).await
                })
            })
            .join()
            .expect("client thread")
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Create `obj`, or merge it into the existing one of that name.
    pub fn apply(&self, obj: Value) {
        self.with_client(move |client| {
            Box::pin(async move {
                let (api, name) = api_of(client, &obj);
                let typed: DynamicObject = serde_json::from_value(obj.clone()).expect("object");
                match api.create(&PostParams::default(), &typed).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 409 => {
                        api.patch(&name, &PatchParams::default(), &Patch::Merge(&obj))
                            .await
                            .unwrap_or_else(|e| panic!("patch {name}: {e}"));
                    }
                    Err(e) => panic!("create {name}: {e}"),
                }
            })
        })
    }

    /// Merge `patch` into `kind` `name`: for a list value, the list is
    /// replaced (JSON merge patch).
    pub fn patch(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        patch: Value,
    ) {
        let id = identity(api_version, kind, namespace, name);
        self.with_client(move |client| {
            Box::pin(async move {
                let (api, name) = api_of(client, &id);
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .unwrap_or_else(|e| panic!("patch {name}: {e}"));
            })
        })
    }

    pub fn delete(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str) {
        let id = identity(api_version, kind, namespace, name);
        self.with_client(move |client| {
            Box::pin(async move {
                let (api, name) = api_of(client, &id);
                api.delete(&name, &DeleteParams::default())
                    .await
                    .unwrap_or_else(|e| panic!("delete {name}: {e}"));
            })
        })
    }

    /// The object, if it exists.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let id = identity(api_version, kind, namespace, name);
        self.with_client(move |client| {
            Box::pin(async move {
                let (api, name) = api_of(client, &id);
                api.get_opt(&name)
                    .await
                    .unwrap_or_else(|e| panic!("get {name}: {e}"))
                    .map(|o| serde_json::to_value(o).expect("json"))
            })
        })
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn identity(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Value {
    serde_json::json!({
        "apiVersion": api_version, "kind": kind,
        "metadata": { "name": name, "namespace": namespace },
    })
}

/// The dynamic API for `obj`'s kind (and namespace) and its name.
fn api_of(client: kube::Client, obj: &Value) -> (Api<DynamicObject>, String) {
    let api_version = obj["apiVersion"].as_str().expect("apiVersion");
    let kind = obj["kind"].as_str().expect("kind");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let plural = match kind {
        "Node" => "nodes",
        "Service" => "services",
        "Secret" => "secrets",
        "EndpointSlice" => "endpointslices",
        "CiliumNode" => "ciliumnodes",
        "KrouteConfig" => "krouteconfigs",
        "KrouteNodeState" => "kroutenodestates",
        other => panic!("no plural known for {other}"),
    };
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    let name = obj["metadata"]["name"].as_str().expect("name").to_string();
    let api = match obj["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client, ns, &ar),
        None => Api::all_with(client, &ar),
    };
    (api, name)
}

/// `kroute daemon --kubernetes` for one node.
pub struct KubeKroute {
    process: Option<Process>,
    dir: ScratchDir,
    ns: String,
    pub node: String,
    kubeconfig: PathBuf,
}

impl KubeKroute {
    /// Start it in `ns` as node `node`; returns at once (the API socket
    /// appears once a config is rendered or read from the cache).
    pub fn start(ns: &Netns, node: &str, kubeconfig: &Path) -> KubeKroute {
        let dir = test_dir(&format!("kroute-{node}-{}", ns.name()));
        let mut k = KubeKroute {
            process: None,
            dir,
            ns: ns.name().to_string(),
            node: node.to_string(),
            kubeconfig: kubeconfig.to_path_buf(),
        };
        k.start_again();
        k
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("kroute.sock")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn start_again(&mut self) {
        let ns = Netns::open(&self.ns).unwrap_or_else(|e| panic!("{e}"));
        let socket = self.socket();
        let state = self.state_dir();
        let _ = std::fs::remove_file(&socket);
        let argv = [
            BIN,
            "daemon",
            "--kubernetes",
            "--kubeconfig",
            self.kubeconfig.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--socket",
            socket.to_str().unwrap(),
        ];
        let p = Spawn::new("kroute", &argv)
            .netns(&ns)
            .env("NODE_NAME", &self.node)
            .env("RUST_LOG", "info,kube_client::client::builder=off")
            .log(&self.dir.path().join("kroute.log"))
            .append_log()
            .start()
            .unwrap_or_else(|e| panic!("{e}"));
        self.process = Some(p);
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) {
        if let Some(p) = self.process.take() {
            p.id()
                .terminate(Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kroute.log")).unwrap_or_default()
    }

    /// Panic with the log tail if it has exited.
    pub fn assert_alive(&mut self) {
        if let Some(p) = &mut self.process {
            if let Err(e) = p.check_alive() {
                panic!(
                    "{} exited: {e}
{}",
                    self.node,
                    tail(&self.log())
                );
            }
        }
    }

    pub fn client(&self) -> kroute::api::Client {
        kroute::api::Client::new(self.socket())
    }

    /// Wait until its API answers and the session `peer` is Established.
    pub fn wait_established(&mut self, peer: &str) {
        let what = format!("{}: session {peer} Established", self.node);
        wait_until(super::common::CONVERGE, &what, || {
            if let Some(p) = &mut self.process {
                p.check_alive()
                    .map_err(|e| format!("{e}\n{}", tail(&self.log())))?;
            }
            let n = self
                .client()
                .neighbors()
                .map_err(|e| format!("{e}\n{}", tail(&self.log())))?;
            match n.iter().find(|n| n.name == peer) {
                Some(n) if n.state == kroute::events::SessionState::Established => Ok(()),
                Some(n) => Err(format!("{:?}", n.state)),
                None => Err(format!("no peer {peer}\n{}", tail(&self.log()))),
            }
        })
    }

    /// The session `peer`'s flap count and uptime.
    pub fn session(&self, peer: &str) -> kroute::api::NeighborView {
        self.client()
            .neighbors()
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .find(|n| n.name == peer)
            .unwrap_or_else(|| panic!("no peer {peer}"))
    }
}

impl Drop for KubeKroute {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// A Node as kubeadm registers it: hostname label, InternalIP address,
/// pod CIDRs from the controller manager's node IPAM, taints none,
/// kubelet-reported status (trimmed to what kroute could read).
pub fn kubeadm_node(name: &str, address: &str, asn: u32, pod_cidrs: &[&str]) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kroute.io/asn": asn.to_string(),
            },
            "annotations": {
                "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///var/run/containerd/containerd.sock",
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {
            "podCIDR": pod_cidrs.first(),
            "podCIDRs": pod_cidrs,
        },
        "status": {
            "addresses": [
                { "type": "InternalIP", "address": address },
                { "type": "Hostname", "address": name },
            ],
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": "2026-12-01T10:00:00Z",
                "lastTransitionTime": "2026-12-01T09:00:00Z",
            }],
            "nodeInfo": {
                "architecture": "amd64", "containerRuntimeVersion": "containerd://1.7.24",
                "kernelVersion": "6.1.0-28-amd64", "kubeProxyVersion": "v1.31.4",
                "kubeletVersion": "v1.31.4", "operatingSystem": "linux",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "bootID": "5f3c7d7e-2c1d-4a8e-9b51-0f3b2b1f6a11",
                "machineID": "0c5e1f0e8a1b4f4c9d2e3f4a5b6c7d8e",
                "systemUUID": "4c4c4544-0042-3510-8052-b4c04f565432",
            },
        },
    })
}

/// One `KrouteConfig` for every node: ASN from the node's
/// `kroute.io/asn` label, router ID from its InternalIP, one eBGP session
/// to the rack's router, and `advertise`.
pub fn krouteconfig(name: &str, tor: &str, tor_asn: u32, advertise: Value) -> Value {
    serde_json::json!({
        "apiVersion": "kroute.io/v1alpha1",
        "kind": "KrouteConfig",
        "metadata": { "name": name },
        "spec": {
            "router": {
                "asn": "${node.labels['kroute.io/asn']}",
                "routerId": "${node.internalIPv4}",
                "connectRetry": 1,
            },
            "peers": [{
                "name": "tor",
                "address": tor,
                "asn": tor_asn,
                "import": "all",
                "export": "all",
            }],
            "advertise": advertise,
        },
    })
}

/// A Node as Talos registers it with Cilium's cluster-pool IPAM: no
/// `spec.podCIDRs` (Cilium's operator allocates them in the CiliumNode).
pub fn talos_node(name: &str, address: &str, asn: u32) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/exclude-from-external-load-balancers": "",
                "kroute.io/asn": asn.to_string(),
            },
            "annotations": {
                "cluster.talos.dev/node-id": "nXzC8jvX1oQd6dQ6yDsKg1lGm2k7Jb2p4Yq9rT0uVwE",
                "talos.dev/owned-labels": "[\"kroute.io/asn\"]",
                "node.alpha.kubernetes.io/ttl": "0",
            },
        },
        "spec": {},
        "status": {
            "addresses": [
                { "type": "InternalIP", "address": address },
                { "type": "Hostname", "address": name },
            ],
            "nodeInfo": {
                "architecture": "amd64", "containerRuntimeVersion": "containerd://2.0.2",
                "kernelVersion": "6.12.6-talos", "kubeProxyVersion": "", "kubeletVersion": "v1.32.1",
                "operatingSystem": "linux", "osImage": "Talos (v1.9.2)",
                "bootID": "", "machineID": "", "systemUUID": "",
            },
        },
    })
}

/// The CiliumNode Cilium's agent and operator keep for `node`, with the
/// pod CIDRs cluster-pool IPAM gave it.
pub fn cilium_node(name: &str, address: &str, pod_cidrs: &[&str]) -> Value {
    serde_json::json!({
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNode",
        "metadata": {
            "name": name,
            "labels": { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux" },
            "ownerReferences": [{ "apiVersion": "v1", "kind": "Node", "name": name, "uid": "3c1e9d2a-7b4f-4e8a-9c6d-5f2b1a0e8d7c" }],
        },
        "spec": {
            "addresses": [
                { "type": "InternalIP", "ip": address },
                { "type": "CiliumInternalIP", "ip": "10.0.1.96" },
            ],
            "alibaba-cloud": {}, "azure": {}, "encryption": {}, "eni": {},
            "health": { "ipv4": "10.0.1.12" },
            "ingress": {},
            "ipam": { "podCIDRs": pod_cidrs, "pools": {} },
        },
        "status": { "alibaba-cloud": {}, "azure": {}, "eni": {}, "ipam": { "operator-status": {} } },
    })
}
