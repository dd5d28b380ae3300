//! Kubernetes mode end to end: kroute daemons (`--kubernetes`) in node
//! namespaces on one LAN with a BIRD rack router (eBGP to every node) and
//! the API stand-in (`src/lab/apiserver.py`); the cluster's objects are
//! written with the real `kube` client, routes are checked at the rack
//! router and in the nodes' kernels.

mod common;
#[path = "kube/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use common::bird::Bird;
use common::peer::{PeerDaemon, PeerNeighbor, PeerSpec};
use common::{netns, route_via, wait_until, Lan, CONVERGE};
use harness::{krouteconfig, kubeadm_node, tail, ApiServer, KubeKroute};
use labkit::Netns;
use serde_json::json;

const TOR: &str = "10.99.0.254";
const TOR_ASN: u32 = 65000;
const API: &str = "10.99.0.100";

/// The nodes: name, address, ASN, pod CIDR.
const NODES: [(&str, &str, u32, &str); 3] = [
    ("node-a", "10.99.0.1", 65001, "10.244.1.0/24"),
    ("node-b", "10.99.0.2", 65002, "10.244.2.0/24"),
    ("node-c", "10.99.0.3", 65003, "10.244.3.0/24"),
];

/// One rack: the router, the API stand-in and a namespace per node.
struct Rack {
    // Drop order: daemons, then namespaces.
    tor: Bird,
    api: ApiServer,
    nodes: Vec<Netns>,
    _tor_ns: Netns,
    _lan: Lan,
}

impl Rack {
    fn new(tag: &str) -> Rack {
        Rack::with_tor_options(tag, &[])
    }

    /// With raw BIRD options per node address (e.g. a TCP-MD5 password).
    fn with_tor_options(tag: &str, options: &[(&str, &str)]) -> Rack {
        let mut lan = Lan::new(tag);
        let tor_ns = netns(&format!("tor{tag}"));
        lan.attach(&tor_ns, &[&format!("{TOR}/24")]);
        let api_ns = netns(&format!("api{tag}"));
        lan.attach(&api_ns, &[&format!("{API}/24")]);
        let nodes: Vec<Netns> = NODES
            .iter()
            .map(|(name, addr, _, _)| {
                let ns = netns(&format!("{}{tag}", &name[5..]));
                lan.attach(&ns, &[&format!("{addr}/24")]);
                ns
            })
            .collect();
        let tor = Bird::start_with(
            &tor_ns,
            PeerSpec {
                asn: TOR_ASN,
                router_id: TOR.into(),
                neighbors: NODES
                    .iter()
                    .map(|(_, addr, asn, _)| PeerNeighbor::new(addr, TOR, *asn, &["ipv4-unicast"]))
                    .collect(),
                install_kernel: false,
            },
            options,
        );
        let api = ApiServer::start(api_ns, API);
        Rack {
            tor,
            api,
            nodes,
            _tor_ns: tor_ns,
            _lan: lan,
        }
    }

    fn ns(&self, i: usize) -> &Netns {
        &self.nodes[i]
    }

    fn add_node(&self, i: usize) {
        let (name, addr, asn, cidr) = NODES[i];
        self.api.apply(kubeadm_node(name, addr, asn, &[cidr]));
    }

    fn kroute(&self, i: usize) -> KubeKroute {
        KubeKroute::start(self.ns(i), NODES[i].0, &self.api.kubeconfig())
    }

    /// The next hops the rack router has for `prefix`.
    fn tor_next_hops(&self, prefix: &str) -> Vec<String> {
        let mut hops: Vec<String> = self
            .tor
            .routes_for(prefix)
            .into_iter()
            .flat_map(|r| r.next_hops)
            .collect();
        hops.sort();
        hops
    }

    fn wait_tor(&self, prefix: &str, want: &[&str], within: Duration) {
        wait_until(
            within,
            &format!("the rack router's paths for {prefix}"),
            || {
                let got = self.tor_next_hops(prefix);
                if got == want {
                    Ok(())
                } else {
                    Err(format!("next hops {got:?}, want {want:?}"))
                }
            },
        )
    }
}

fn wait_installed(ns: &Netns, prefix: &str, k: &KubeKroute) {
    wait_until(
        CONVERGE,
        &format!("{prefix} in {}'s kernel", k.node),
        || {
            route_via(ns, prefix)
                .map(|_| ())
                .ok_or_else(|| format!("not installed\n{}", tail(&k.log())))
        },
    )
}

fn wait_absent(ns: &Netns, prefix: &str) {
    common::kernel::wait_absent(ns, prefix)
}

#[test]
fn pod_cidrs_follow_the_node_objects() {
    let rack = Rack::new("pc");
    rack.add_node(0);
    rack.add_node(1);
    rack.api.apply(krouteconfig(
        "rack",
        TOR,
        TOR_ASN,
        json!([{ "podCIDRs": true }]),
    ));
    let mut a = rack.kroute(0);
    let mut b = rack.kroute(1);
    a.wait_established("tor");
    b.wait_established("tor");
    // Each node advertises its own pod CIDR and installs the other's.
    rack.wait_tor("10.244.1.0/24", &["10.99.0.1"], CONVERGE);
    rack.wait_tor("10.244.2.0/24", &["10.99.0.2"], CONVERGE);
    wait_installed(rack.ns(1), "10.244.1.0/24", &b);
    wait_installed(rack.ns(0), "10.244.2.0/24", &a);

    // A node joins: its kroute advertises its CIDR, the others install it.
    rack.add_node(2);
    let mut c = rack.kroute(2);
    c.wait_established("tor");
    wait_installed(rack.ns(0), "10.244.3.0/24", &a);
    wait_installed(rack.ns(1), "10.244.3.0/24", &b);
    wait_installed(rack.ns(2), "10.244.1.0/24", &c);

    // The pod CIDR changes: the new one at the rack router, the old one
    // withdrawn. How long it took is printed, not asserted (wall time on a
    // loaded 2-core CI machine says more about the machine than kroute).
    let t0 = Instant::now();
    rack.api.patch(
        "v1",
        "Node",
        None,
        "node-a",
        json!({ "spec": { "podCIDR": "10.244.11.0/24", "podCIDRs": ["10.244.11.0/24"] } }),
    );
    rack.wait_tor("10.244.11.0/24", &["10.99.0.1"], CONVERGE);
    rack.wait_tor("10.244.1.0/24", &[], CONVERGE);
    let took = t0.elapsed();
    wait_installed(rack.ns(1), "10.244.11.0/24", &b);
    wait_absent(rack.ns(1), "10.244.1.0/24");
    eprintln!("pod CIDR change at the rack router after {took:?}");

    // The node is deleted: its CIDR leaves every kernel.
    rack.api.delete("v1", "Node", None, "node-c");
    rack.wait_tor("10.244.3.0/24", &[], CONVERGE);
    wait_absent(rack.ns(0), "10.244.3.0/24");
    wait_absent(rack.ns(1), "10.244.3.0/24");
    // The rest stays.
    assert!(route_via(rack.ns(1), "10.244.11.0/24").is_some());
    c.stop();
}

/// `status.podRoutes` of node `name`'s KrouteNodeState: (CIDR, installed,
/// reason).
fn pod_routes(rack: &Rack, name: &str) -> Vec<(String, bool, Option<String>)> {
    let Some(state) = rack
        .api
        .get("kroute.io/v1alpha1", "KrouteNodeState", None, name)
    else {
        return Vec::new();
    };
    let mut routes: Vec<(String, bool, Option<String>)> = state["status"]["podRoutes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["podCIDR"].as_str().unwrap_or_default().to_string(),
                r["installed"].as_bool().unwrap_or(false),
                r["reason"].as_str().map(String::from),
            )
        })
        .collect();
    routes.sort();
    routes
}

#[test]
fn node_states_and_cluster_check_name_each_missing_pair() {
    let rack = Rack::new("ns");
    for i in 0..3 {
        rack.add_node(i);
    }
    rack.api.apply(krouteconfig(
        "rack",
        TOR,
        TOR_ASN,
        json!([{ "podCIDRs": true }]),
    ));
    let mut nodes: Vec<KubeKroute> = (0..3).map(|i| rack.kroute(i)).collect();
    for k in &mut nodes {
        k.wait_established("tor");
    }
    // Every node's state: the other two CIDRs installed, its own advertised.
    wait_until(CONVERGE, "every KrouteNodeState all installed", || {
        for (name, _, _, own) in NODES {
            let routes = pod_routes(&rack, name);
            let want: Vec<(String, bool, Option<String>)> = NODES
                .iter()
                .filter(|n| n.0 != name)
                .map(|n| (n.3.to_string(), true, None))
                .collect();
            if routes != want {
                return Err(format!("{name}: {routes:?}"));
            }
            let state = rack
                .api
                .get("kroute.io/v1alpha1", "KrouteNodeState", None, name)
                .unwrap();
            if state["status"]["advertisedPodCIDRs"] != json!([own]) {
                return Err(format!(
                    "{name} advertises {}",
                    state["status"]["advertisedPodCIDRs"]
                ));
            }
        }
        Ok(())
    });
    let state = rack
        .api
        .get("kroute.io/v1alpha1", "KrouteNodeState", None, "node-a")
        .unwrap();
    assert_eq!(state["metadata"]["ownerReferences"][0]["kind"], "Node");
    assert_eq!(state["status"]["sessions"][0]["peer"], "tor");
    assert_eq!(state["status"]["sessions"][0]["state"], "Established");
    assert_eq!(state["status"]["sessionsSummary"], "1/1 Established");
    let out = rack.api.kroute_cli(&["cluster", "check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("all 6 pairs installed"), "{text}");
    eprintln!("{text}");

    // The rack router stops talking to node-b: b misses a's and c's CIDRs,
    // a and c miss b's, each named with the reason.
    rack.tor
        .birdc(&["disable", &common::bird::proto_name("10.99.0.2")]);
    wait_until(
        CONVERGE,
        "node-b's state to show the missing routes",
        || {
            let routes = pod_routes(&rack, "node-b");
            if routes.iter().all(|r| !r.1 && r.2.is_some()) && routes.len() == 2 {
                Ok(())
            } else {
                Err(format!("{routes:?}"))
            }
        },
    );
    wait_until(CONVERGE, "node-a's state to miss node-b's CIDR", || {
        let routes = pod_routes(&rack, "node-a");
        match routes.iter().find(|r| r.0 == "10.244.2.0/24") {
            Some((_, false, Some(_))) => Ok(()),
            _ => Err(format!("{routes:?}")),
        }
    });
    // node-c's state (not waited for above) says so a moment later too:
    // poll `cluster check` until it names all four pairs.
    let text = wait_until(CONVERGE, "cluster check naming 4 missing pairs", || {
        let out = rack.api.kroute_cli(&["cluster", "check"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.code() == Some(1)
            && text.contains("node-b: 10.244.1.0/24 of node-a:")
            && text.contains("node-a: 10.244.2.0/24 of node-b:")
            && text.contains("4 of 6 pairs missing")
        {
            Ok(text)
        } else {
            Err(format!("exit {:?}\n{text}", out.status.code()))
        }
    });
    eprintln!("{text}");
    let json_out = rack.api.kroute_cli(&["cluster", "check", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&json_out.stdout).expect("json");
    assert_eq!(v["missing"], 4);
}

/// A `type: LoadBalancer` Service as a cluster with a load balancer
/// controller (MetalLB, Cilium LB IPAM) has it once an address is given.
fn lb_service(name: &str, ip: &str, etp: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": name, "namespace": "default", "labels": { "app": name } },
        "spec": {
            "type": "LoadBalancer",
            "selector": { "app": name },
            "ports": [{ "name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080, "nodePort": 31080 }],
            "clusterIP": "10.96.12.34",
            "clusterIPs": ["10.96.12.34"],
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "externalTrafficPolicy": etp,
            "internalTrafficPolicy": "Cluster",
            "sessionAffinity": "None",
            "allocateLoadBalancerNodePorts": true,
        },
        "status": { "loadBalancer": { "ingress": [{ "ip": ip, "ipMode": "VIP" }] } },
    })
}

/// The Service's EndpointSlice (as the EndpointSlice controller writes
/// it) with one ready endpoint on `node`.
fn endpoint_slice(service: &str, node: &str, ready: bool) -> serde_json::Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": format!("{service}-7x2kq"),
            "namespace": "default",
            "labels": {
                "kubernetes.io/service-name": service,
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
            },
            "ownerReferences": [{ "apiVersion": "v1", "kind": "Service", "name": service, "uid": "0b5f0c8e-3f41-4f5e-9d1c-3b9e2f0f3c11", "controller": true, "blockOwnerDeletion": true }],
        },
        "addressType": "IPv4",
        "endpoints": [{
            "addresses": ["10.244.1.17"],
            "conditions": { "ready": ready, "serving": ready, "terminating": false },
            "nodeName": node,
            "targetRef": { "kind": "Pod", "namespace": "default", "name": format!("{service}-5d8f9c7b6d-abcde"), "uid": "7c1e2d3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f" },
        }],
        "ports": [{ "name": "http", "port": 8080, "protocol": "TCP" }],
    })
}

#[test]
fn load_balancer_addresses_follow_services_and_local_endpoints() {
    let rack = Rack::new("sv");
    rack.add_node(0);
    rack.add_node(1);
    rack.api.apply(krouteconfig(
        "rack",
        TOR,
        TOR_ASN,
        json!([
            { "podCIDRs": true },
            { "services": { "loadBalancerIPs": true, "externalIPs": true }, "communities": ["65000:100"] },
        ]),
    ));
    let mut a = rack.kroute(0);
    let mut b = rack.kroute(1);
    a.wait_established("tor");
    b.wait_established("tor");
    const VIP: &str = "192.0.2.10/32";

    // externalTrafficPolicy Cluster: every node attracts the address.
    rack.api.apply(lb_service("web", "192.0.2.10", "Cluster"));
    rack.wait_tor(VIP, &["10.99.0.1", "10.99.0.2"], CONVERGE);

    // Local: only the node with the ready endpoint.
    rack.api.apply(endpoint_slice("web", "node-a", true));
    rack.api.patch(
        "v1",
        "Service",
        Some("default"),
        "web",
        json!({ "spec": { "externalTrafficPolicy": "Local" } }),
    );
    rack.wait_tor(VIP, &["10.99.0.1"], CONVERGE);

    // The endpoint moves to node-b.
    rack.api.patch(
        "discovery.k8s.io/v1",
        "EndpointSlice",
        Some("default"),
        "web-7x2kq",
        json!({ "endpoints": endpoint_slice("web", "node-b", true)["endpoints"] }),
    );
    rack.wait_tor(VIP, &["10.99.0.2"], CONVERGE);

    // Not ready: no node has a local endpoint, so none attracts it.
    rack.api.patch(
        "discovery.k8s.io/v1",
        "EndpointSlice",
        Some("default"),
        "web-7x2kq",
        json!({ "endpoints": endpoint_slice("web", "node-b", false)["endpoints"] }),
    );
    rack.wait_tor(VIP, &[], CONVERGE);
    rack.api.patch(
        "discovery.k8s.io/v1",
        "EndpointSlice",
        Some("default"),
        "web-7x2kq",
        json!({ "endpoints": endpoint_slice("web", "node-b", true)["endpoints"] }),
    );
    rack.wait_tor(VIP, &["10.99.0.2"], CONVERGE);
    // The community of the advertisement rides along.
    let shown = rack.tor.birdc(&["show", "route", "192.0.2.10/32", "all"]);
    assert!(shown.contains("(65000,100)"), "{shown}");

    // The Service goes: withdrawn everywhere; pod CIDRs untouched.
    rack.api.delete("v1", "Service", Some("default"), "web");
    rack.wait_tor(VIP, &[], CONVERGE);
    rack.wait_tor("10.244.1.0/24", &["10.99.0.1"], CONVERGE);
}

/// The `Valid` condition of a KrouteConfig or KrouteNodeState: (status,
/// message).
fn valid_condition(rack: &Rack, kind: &str, name: &str) -> Option<(String, String)> {
    let obj = rack.api.get("kroute.io/v1alpha1", kind, None, name)?;
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Valid")
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_string(),
                c["message"].as_str().unwrap_or_default().to_string(),
            )
        })
}

#[test]
fn a_config_edit_applies_in_place_and_a_bad_one_keeps_the_last_good_config() {
    let rack = Rack::new("ce");
    rack.add_node(0);
    rack.add_node(1);
    rack.api.apply(krouteconfig(
        "rack",
        TOR,
        TOR_ASN,
        json!([{ "podCIDRs": true }]),
    ));
    let mut a = rack.kroute(0);
    let mut b = rack.kroute(1);
    a.wait_established("tor");
    b.wait_established("tor");
    rack.wait_tor("10.244.1.0/24", &["10.99.0.1"], CONVERGE);
    let tor_before = rack.tor.settled_protocol_line("10.99.0.1");

    // A second peer and a static prefix for every node: applied, the
    // session to the rack router untouched.
    let mut spec = krouteconfig(
        "rack",
        TOR,
        TOR_ASN,
        json!([
            { "podCIDRs": true },
            { "prefixes": ["198.51.100.0/24"] },
        ]),
    )["spec"]
        .clone();
    spec["peers"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "spare", "address": "10.99.0.200", "asn": 65100, "import": "all", "export": "all" }));
    rack.api.patch(
        "kroute.io/v1alpha1",
        "KrouteConfig",
        None,
        "rack",
        json!({ "spec": spec }),
    );
    rack.wait_tor("198.51.100.0/24", &["10.99.0.1", "10.99.0.2"], CONVERGE);
    wait_until(CONVERGE, "node-a's peer spare configured", || {
        a.client()
            .neighbors()
            .map_err(|e| e.to_string())?
            .iter()
            .any(|n| n.name == "spare")
            .then_some(())
            .ok_or_else(|| "no peer spare yet".to_string())
    });
    for k in [&a, &b] {
        let tor = k.session("tor");
        assert_eq!(
            tor.flaps, 0,
            "{}: the session to the rack router was reset",
            k.node
        );
        assert_eq!(tor.state, kroute::events::SessionState::Established);
    }
    assert_eq!(
        rack.tor.protocol_line("10.99.0.1"),
        tor_before,
        "BIRD saw the session change"
    );
    wait_until(
        CONVERGE,
        "the config's Valid condition",
        || match valid_condition(&rack, "KrouteConfig", "rack") {
            Some((s, _)) if s == "True" => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );

    // A bad edit: a label no node has. Nothing changes on the nodes, the
    // condition names the node and the key, on the config and the states.
    rack.api.patch(
        "kroute.io/v1alpha1",
        "KrouteConfig",
        None,
        "rack",
        json!({ "spec": { "router": { "asn": "${node.labels['kroute.io/no-such-label']}" } } }),
    );
    wait_until(
        CONVERGE,
        "Valid=False on the config",
        || match valid_condition(&rack, "KrouteConfig", "rack") {
            Some((s, m))
                if s == "False" && m.contains("kroute.io/no-such-label") && m.contains("node-") =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        },
    );
    wait_until(
        CONVERGE,
        "Valid=False on node-a's state",
        || match valid_condition(&rack, "KrouteNodeState", "node-a") {
            Some((s, m)) if s == "False" && m.contains("spec.router.asn") => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    assert!(
        a.log().contains("still running the last good one"),
        "{}",
        tail(&a.log())
    );
    for k in [&a, &b] {
        assert_eq!(k.session("tor").flaps, 0, "{}: reset by a bad edit", k.node);
    }
    rack.wait_tor("198.51.100.0/24", &["10.99.0.1", "10.99.0.2"], CONVERGE);
    rack.wait_tor("10.244.2.0/24", &["10.99.0.2"], CONVERGE);

    // Fixed: valid again everywhere.
    rack.api.patch(
        "kroute.io/v1alpha1",
        "KrouteConfig",
        None,
        "rack",
        json!({ "spec": { "router": { "asn": "${node.labels['kroute.io/asn']}" } } }),
    );
    wait_until(CONVERGE, "Valid=True again", || {
        let cfg = valid_condition(&rack, "KrouteConfig", "rack");
        let a_state = valid_condition(&rack, "KrouteNodeState", "node-a");
        match (&cfg, &a_state) {
            (Some((c, _)), Some((s, _))) if c == "True" && s == "True" => Ok(()),
            _ => Err(format!("config {cfg:?}, node-a {a_state:?}")),
        }
    });
    assert_eq!(a.session("tor").flaps, 0);

    // A change the running daemon cannot apply (the ASN): refused, said
    // so, nothing reset; offered once, not on every tick.
    rack.api.patch(
        "kroute.io/v1alpha1",
        "KrouteConfig",
        None,
        "rack",
        json!({ "spec": { "router": { "asn": 65099 } } }),
    );
    wait_until(
        CONVERGE,
        "Valid=False: needs a restart",
        || match valid_condition(&rack, "KrouteNodeState", "node-a") {
            Some((s, m)) if s == "False" && m.contains("need a restart") => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    std::thread::sleep(Duration::from_secs(5));
    let refusals = a
        .log()
        .lines()
        .filter(|l| l.contains("kroute::rib_task: cluster config not applied"))
        .count();
    assert_eq!(refusals, 1, "{}", tail(&a.log()));
    assert_eq!(a.session("tor").flaps, 0);
}

/// What the rack router and node-b's kernel route, to compare over time.
fn routing_snapshot(rack: &Rack) -> (Vec<String>, Vec<String>) {
    let mut tor: Vec<String> = rack
        .tor
        .rib()
        .into_iter()
        .map(|r| format!("{} via {:?}", r.prefix, r.next_hops))
        .collect();
    tor.sort();
    let mut kernel: Vec<String> = common::kernel::kernel_routes(rack.ns(1), 4)
        .into_iter()
        .map(|r| format!("{r:?}"))
        .collect();
    kernel.sort();
    (tor, kernel)
}

#[test]
fn an_api_outage_changes_nothing_then_resyncs_and_a_restart_uses_the_cache() {
    let mut rack = Rack::new("ou");
    rack.add_node(0);
    rack.add_node(1);
    rack.api.apply(krouteconfig(
        "rack",
        TOR,
        TOR_ASN,
        json!([{ "podCIDRs": true }, { "services": {} }]),
    ));
    rack.api.apply(lb_service("web", "192.0.2.10", "Cluster"));
    let mut a = rack.kroute(0);
    let mut b = rack.kroute(1);
    a.wait_established("tor");
    b.wait_established("tor");
    rack.wait_tor("10.244.1.0/24", &["10.99.0.1"], CONVERGE);
    rack.wait_tor("192.0.2.10/32", &["10.99.0.1", "10.99.0.2"], CONVERGE);
    wait_installed(rack.ns(1), "10.244.1.0/24", &b);
    let before = routing_snapshot(&rack);

    // The API server goes away for 60 s (the figure;
    // KROUTE_TEST_API_OUTAGE_SECS to change it): no route changes.
    let outage = std::env::var("KROUTE_TEST_API_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    rack.api.stop();
    let until = Instant::now() + Duration::from_secs(outage);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_secs(5));
        assert_eq!(
            routing_snapshot(&rack),
            before,
            "routes changed during the API outage"
        );
        a.assert_alive();
        b.assert_alive();
    }
    assert_eq!(a.session("tor").flaps, 0);
    assert!(
        a.log().contains("watch failed, retrying"),
        "{}",
        tail(&a.log())
    );

    // Back, with node-a's pod CIDR changed meanwhile: kroute lists again
    // (its watch position is from before the restart: 410 Gone) and
    // applies what changed.
    rack.api.edit_saved("v1/nodes", "node-a", |n| {
        n["spec"]["podCIDR"] = json!("10.244.21.0/24");
        n["spec"]["podCIDRs"] = json!(["10.244.21.0/24"]);
    });
    rack.api.start_again();
    rack.wait_tor("10.244.21.0/24", &["10.99.0.1"], CONVERGE);
    rack.wait_tor("10.244.1.0/24", &[], CONVERGE);
    wait_installed(rack.ns(1), "10.244.21.0/24", &b);
    rack.wait_tor("192.0.2.10/32", &["10.99.0.1", "10.99.0.2"], CONVERGE);

    // kroute restarts while the API server is down: it starts from the
    // config and prefixes it cached.
    rack.api.stop();
    a.stop();
    rack.wait_tor("10.244.21.0/24", &[], CONVERGE);
    a.start_again();
    a.wait_established("tor");
    rack.wait_tor("10.244.21.0/24", &["10.99.0.1"], CONVERGE);
    rack.wait_tor("192.0.2.10/32", &["10.99.0.1", "10.99.0.2"], CONVERGE);
    assert!(
        a.log()
            .contains("the API server does not answer: starting from the cached config"),
        "{}",
        tail(&a.log())
    );
    // And when it is back, nothing is lost.
    rack.api.start_again();
    std::thread::sleep(Duration::from_secs(3));
    rack.wait_tor("10.244.21.0/24", &["10.99.0.1"], CONVERGE);
    rack.wait_tor("192.0.2.10/32", &["10.99.0.1", "10.99.0.2"], CONVERGE);
}

#[test]
fn a_tcp_md5_key_comes_from_the_secret_the_config_names() {
    let rack = Rack::with_tor_options("md", &[("10.99.0.1", "password \"s3cret-from-k8s\";")]);
    rack.add_node(0);
    // As `kubectl create secret generic kroute-bgp --from-file=tor` makes
    // it: base64 data, the file's trailing newline included.
    rack.api.apply(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": "kroute-bgp", "namespace": "kroute-system" },
        "type": "Opaque",
        "data": { "tor": "czNjcmV0LWZyb20tazhzCg==" },
    }));
    let mut cfg = krouteconfig("rack", TOR, TOR_ASN, json!([{ "podCIDRs": true }]));
    cfg["spec"]["peers"][0]["passwordSecretRef"] = json!({ "name": "kroute-bgp", "key": "tor" });
    rack.api.apply(cfg);
    let mut a = rack.kroute(0);
    a.wait_established("tor");
    rack.wait_tor("10.244.1.0/24", &["10.99.0.1"], CONVERGE);
    assert!(
        !a.log().contains("s3cret"),
        "the key is in the log:\n{}",
        a.log()
    );
}

#[test]
fn pod_cidrs_from_cilium_nodes_when_the_node_has_none() {
    let rack = Rack::new("cn");
    for (name, addr, asn, _) in &NODES[..2] {
        rack.api.apply(harness::talos_node(name, addr, *asn));
    }
    rack.api.apply(harness::cilium_node(
        "node-a",
        "10.99.0.1",
        &["10.0.1.0/24"],
    ));
    rack.api.apply(harness::cilium_node(
        "node-b",
        "10.99.0.2",
        &["10.0.2.0/24"],
    ));
    rack.api.apply(krouteconfig(
        "rack",
        TOR,
        TOR_ASN,
        json!([{ "podCIDRs": { "source": "ciliumNode" } }]),
    ));
    let mut a = rack.kroute(0);
    let mut b = rack.kroute(1);
    a.wait_established("tor");
    b.wait_established("tor");
    rack.wait_tor("10.0.1.0/24", &["10.99.0.1"], CONVERGE);
    wait_installed(rack.ns(1), "10.0.1.0/24", &b);
    wait_installed(rack.ns(0), "10.0.2.0/24", &a);
    // Cilium's operator gives node-a a second CIDR.
    rack.api.patch(
        "cilium.io/v2",
        "CiliumNode",
        None,
        "node-a",
        json!({ "spec": { "ipam": { "podCIDRs": ["10.0.1.0/24", "10.0.11.0/24"] } } }),
    );
    rack.wait_tor("10.0.11.0/24", &["10.99.0.1"], CONVERGE);
    wait_installed(rack.ns(1), "10.0.11.0/24", &b);
    // node-b's state lists both of node-a's CIDRs as installed.
    wait_until(
        CONVERGE,
        "node-b's state with node-a's CiliumNode CIDRs",
        || {
            let routes = pod_routes(&rack, "node-b");
            let want = vec![
                ("10.0.1.0/24".to_string(), true, None),
                ("10.0.11.0/24".to_string(), true, None),
            ];
            if routes == want {
                Ok(())
            } else {
                Err(format!("{routes:?}"))
            }
        },
    );
}
