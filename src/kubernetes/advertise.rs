//! What this node originates from the API (pure): its pod CIDRs
//! (`advertise[].podCIDRs`) and the addresses of the selected Services
//! (`advertise[].services`), each with its entry's communities.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use tracing::warn;

use super::cilium::CiliumNode;
use super::selector::selector_matches;
use crate::config::{Advertise, PodCidrSource, ServiceAddresses};

/// The objects the advertisements are computed from.
#[derive(Default, Clone)]
pub struct ClusterView {
    /// This node's name.
    pub node: String,
    pub nodes: Vec<Arc<Node>>,
    pub cilium_nodes: Vec<Arc<CiliumNode>>,
    pub services: Vec<Arc<Service>>,
    pub endpoint_slices: Vec<Arc<EndpointSlice>>,
}

/// The prefixes `advertise` asks for, in the order of its entries.
pub fn originations(advertise: &[Advertise], view: &ClusterView) -> Vec<rib::Origination> {
    let mut out = Vec::new();
    for a in advertise {
        let mut prefixes = BTreeSet::new();
        if let Some(p) = a.pod_cidrs {
            prefixes.extend(pod_cidrs(p.source, view));
        }
        if let Some(s) = &a.services {
            prefixes.extend(service_prefixes(s, view));
        }
        out.extend(prefixes.into_iter().map(|prefix| rib::Origination {
            prefix,
            communities: a.communities.clone(),
            large_communities: a.large_communities.clone(),
            local_pref: a.local_pref,
        }));
    }
    out
}

/// This node's pod CIDRs from `source` (none while its object is absent:
/// a deleted node advertises nothing).
pub fn pod_cidrs(source: PodCidrSource, view: &ClusterView) -> Vec<IpNet> {
    all_pod_cidrs(source, view)
        .into_iter()
        .filter(|(node, _)| *node == view.node)
        .map(|(_, p)| p)
        .collect()
}

/// Every node's pod CIDRs from `source`: `(node name, CIDR)`.
pub fn all_pod_cidrs(source: PodCidrSource, view: &ClusterView) -> Vec<(String, IpNet)> {
    let texts: Vec<(String, Vec<String>)> = match source {
        PodCidrSource::Node => view
            .nodes
            .iter()
            .map(|n| (n.name_any(), node_pod_cidrs(n)))
            .collect(),
        PodCidrSource::CiliumNode => view
            .cilium_nodes
            .iter()
            .map(|n| (n.name_any(), n.spec.ipam.pod_cidrs.clone()))
            .collect(),
    };
    let mut out = Vec::new();
    for (node, cidrs) in texts {
        for t in cidrs {
            match t.parse::<IpNet>() {
                Ok(p) => out.push((node.clone(), p.trunc())),
                Err(_) => {
                    warn!(node = %node, cidr = %t, "pod CIDR is not a prefix: ignored")
                }
            }
        }
    }
    out
}

/// `spec.podCIDRs`, or the older single `spec.podCIDR`.
pub fn node_pod_cidrs(n: &Node) -> Vec<String> {
    let Some(spec) = &n.spec else {
        return Vec::new();
    };
    match (&spec.pod_cidrs, &spec.pod_cidr) {
        (Some(list), _) if !list.is_empty() => list.clone(),
        (_, Some(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

fn host_route(addr: IpAddr) -> IpNet {
    IpNet::from(addr)
}

/// The host routes of the selected Services' addresses this node may
/// advertise.
fn service_prefixes(s: &ServiceAddresses, view: &ClusterView) -> Vec<IpNet> {
    let mut out = Vec::new();
    for svc in &view.services {
        if let Some(sel) = &s.selector {
            // A malformed selector (the config check rejects those)
            // selects nothing.
            if !selector_matches(sel, svc.labels()).unwrap_or(false) {
                continue;
            }
        }
        let Some(spec) = &svc.spec else { continue };
        let local = || has_ready_local_endpoint(svc, view);
        let mut external = Vec::new();
        if s.load_balancer_ips && spec.type_.as_deref() == Some("LoadBalancer") {
            let ingress = svc
                .status
                .as_ref()
                .and_then(|st| st.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref());
            external.extend(ingress.into_iter().flatten().filter_map(|i| i.ip.clone()));
        }
        if s.external_ips {
            external.extend(spec.external_ips.iter().flatten().cloned());
        }
        // RFC-free, Kubernetes semantics: with `externalTrafficPolicy:
        // Local` traffic to external addresses is only served by nodes
        // with a local endpoint (no SNAT hop), so only they attract it.
        if !external.is_empty()
            && (spec.external_traffic_policy.as_deref() != Some("Local") || local())
        {
            out.extend(addresses(&external, svc));
        }
        if s.cluster_ips {
            let ips: Vec<String> = spec
                .cluster_ips
                .clone()
                .or_else(|| spec.cluster_ip.clone().map(|ip| vec![ip]))
                .unwrap_or_default()
                .into_iter()
                .filter(|ip| ip != "None")
                .collect();
            if !ips.is_empty()
                && (spec.internal_traffic_policy.as_deref() != Some("Local") || local())
            {
                out.extend(addresses(&ips, svc));
            }
        }
    }
    out
}

fn addresses(texts: &[String], svc: &Service) -> Vec<IpNet> {
    texts
        .iter()
        .filter_map(|t| match t.parse::<IpAddr>() {
            Ok(a) => Some(host_route(a)),
            Err(_) => {
                warn!(service = %format!("{}/{}", svc.namespace().unwrap_or_default(), svc.name_any()), address = %t, "Service address is not an IP address: not advertised");
                None
            }
        })
        .collect()
}

/// An EndpointSlice of `svc` (label `kubernetes.io/service-name`) has an
/// endpoint on this node that is ready (absent `ready` means ready).
fn has_ready_local_endpoint(svc: &Service, view: &ClusterView) -> bool {
    let ns = svc.namespace();
    let name = svc.name_any();
    view.endpoint_slices.iter().any(|slice| {
        slice.namespace() == ns
            && slice.labels().get("kubernetes.io/service-name") == Some(&name)
            && slice.endpoints.iter().flatten().any(|e| {
                e.node_name.as_deref() == Some(view.node.as_str())
                    && e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{PodCidrs, ServiceAddresses};

    fn obj<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Arc<T> {
        Arc::new(serde_json::from_value(v).expect("object"))
    }

    fn node(name: &str, cidrs: &[&str]) -> Arc<Node> {
        obj(serde_json::json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": { "name": name, "labels": { "kubernetes.io/hostname": name } },
            "spec": { "podCIDR": cidrs.first(), "podCIDRs": cidrs },
        }))
    }

    fn lb_service(name: &str, ip: &str, etp: &str) -> Arc<Service> {
        obj(serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": { "name": name, "namespace": "default", "labels": { "app": name } },
            "spec": { "type": "LoadBalancer", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                      "externalTrafficPolicy": etp, "ports": [{ "port": 80 }] },
            "status": { "loadBalancer": { "ingress": [{ "ip": ip }] } },
        }))
    }

    fn slice(service: &str, node: &str, ready: bool) -> Arc<EndpointSlice> {
        obj(serde_json::json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": { "name": format!("{service}-abcde"), "namespace": "default",
                          "labels": { "kubernetes.io/service-name": service } },
            "addressType": "IPv4",
            "endpoints": [{ "addresses": ["10.244.1.5"], "nodeName": node, "conditions": { "ready": ready } }],
        }))
    }

    fn entry(pods: bool, services: bool) -> Advertise {
        let mut a = Advertise::of_prefixes(Vec::new());
        a.pod_cidrs = pods.then(PodCidrs::default);
        a.services = services.then_some(ServiceAddresses {
            load_balancer_ips: true,
            external_ips: true,
            cluster_ips: false,
            selector: None,
        });
        a
    }

    fn prefixes(o: &[rib::Origination]) -> Vec<String> {
        o.iter().map(|o| o.prefix.to_string()).collect()
    }

    #[test]
    fn a_node_advertises_its_own_pod_cidrs_only() {
        let view = ClusterView {
            node: "w1".into(),
            nodes: vec![
                node("w1", &["10.244.1.0/24", "fd00:10:244:1::/64"]),
                node("w2", &["10.244.2.0/24"]),
            ],
            ..Default::default()
        };
        let o = originations(&[entry(true, false)], &view);
        assert_eq!(prefixes(&o), ["10.244.1.0/24", "fd00:10:244:1::/64"]);
        let gone = ClusterView {
            nodes: vec![node("w2", &["10.244.2.0/24"])],
            ..view
        };
        assert!(originations(&[entry(true, false)], &gone).is_empty());
    }

    #[test]
    fn etp_local_needs_a_ready_endpoint_on_this_node() {
        let mut view = ClusterView {
            node: "w1".into(),
            services: vec![
                lb_service("web", "192.0.2.10", "Local"),
                lb_service("api", "192.0.2.11", "Cluster"),
            ],
            endpoint_slices: vec![slice("web", "w2", true)],
            ..Default::default()
        };
        let ads = [entry(false, true)];
        assert_eq!(prefixes(&originations(&ads, &view)), ["192.0.2.11/32"]);
        view.endpoint_slices = vec![slice("web", "w1", false)];
        assert_eq!(prefixes(&originations(&ads, &view)), ["192.0.2.11/32"]);
        view.endpoint_slices = vec![slice("web", "w1", true)];
        assert_eq!(
            prefixes(&originations(&ads, &view)),
            ["192.0.2.10/32", "192.0.2.11/32"]
        );
    }
}
