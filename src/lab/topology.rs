//! Scenario → nodes, routers, links, addresses and configs. Pure: no
//! namespaces, no processes; everything here is unit-tested.
//!
//! Addressing (ULA and private ranges only, and only inside the lab's own
//! namespaces), following the seed clusters:
//!
//! | what | node i (id = 10 + i) |
//! |---|---|
//! | LAN (bridge `br0` in `NAME-fabric`) | `fd00:101::{id}/64`, `10.101.0.{id}/24` |
//! | upstream router k of K | `fd00:101::{fffe-(K-k)}`, `10.101.0.{254-(K-k)}` |
//! | node loopback on `lo` | `fd00:101:fe::{id}/128`, `10.101.254.{id}/32` (seed 001: `fd00:255:101::{id}`, `10.255.101.{id}`) |
//! | pod CIDR | `fd00:101:224:{i}::/64`, `10.101.{224+i}.0/24`; node side `::1`/`.1`, pod `::10`/`.10` |
//! | LoadBalancer VIP (cilium-frr) | `fd00:101:250::{id}/128`, `10.101.250.{id}/32` |
//! | service (clusterip-return-path, node 1) | `fd00:101:96::1/128`, `10.101.96.1/32` |
//! | node ASN | `42101010{id}` (seed 000), `65101` (seed 001) |

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use clap::ValueEnum;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rib::policy::{Action, AsPathMatch, Match, Policy, PolicyChain, Rule};
use serde::{Deserialize, Serialize};

use crate::config::{self, Advertise, Api, Config, Kernel, Peer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Seed 000: Cilium (GoBGP) on every node, per-node ASNs, three FRR
    /// upstreams in an iBGP full mesh
    CiliumFrr,
    /// Seed 001: every node in AS 65101 behind route reflectors in AS 65000
    /// (needs allowAsIn)
    SameAsnRr,
    /// Seed 004: a service address on one node reached by TCP from pods on
    /// the others; the reply needs the return route to the pod CIDR
    ClusteripReturnPath,
    /// Seed 000's nodes and routers without Cilium's BGP: kroute in
    /// Kubernetes mode, its config (one KrouteConfig) and the pod CIDRs
    /// from an API stand-in
    Kubernetes,
    /// Seed 000 with BGP unnumbered uplinks: each node has a point-to-point
    /// link to each router with no address on it, kroute's peers are
    /// `interface` peers, FRR's `neighbor IF interface`
    Unnumbered,
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scenario::CiliumFrr => "cilium-frr",
            Scenario::SameAsnRr => "same-asn-rr",
            Scenario::ClusteripReturnPath => "clusterip-return-path",
            Scenario::Kubernetes => "kubernetes",
            Scenario::Unnumbered => "unnumbered",
        })
    }
}

/// Seed 000's ASNs.
pub const CLUSTER_ASN: u32 = 4_220_101_000;
pub const UPSTREAM_ASN: u32 = 4_200_001_000;
pub const NODE_ASN_BASE: u32 = 4_210_101_000;
/// Seed 001's ASNs.
pub const SAME_ASN: u32 = 65101;
pub const REFLECTOR_ASN: u32 = 65000;
/// The seed's "internal" large community, on everything the CNI announces.
pub const INTERNAL_LC: &str = "4200001000:0:100";
/// Cilium's BGP control plane listens here; kroute's peer config names it.
pub const CNI_PORT: u16 = 1790;
/// The GoBGP stand-in's gRPC API, on each node namespace's own loopback.
pub const CNI_API: &str = "127.0.0.1:50051";

#[derive(Debug, Clone)]
pub struct LabOptions {
    pub name: String,
    pub scenario: Scenario,
    pub nodes: Option<u8>,
    pub allow_as_in: bool,
    pub state_dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Topology {
    pub name: String,
    pub scenario: Scenario,
    /// same-asn-rr only: false rebuilds the seed's failure.
    pub allow_as_in: bool,
    pub state_dir: PathBuf,
    pub fabric: Fabric,
    pub nodes: Vec<Node>,
    pub routers: Vec<Router>,
    /// The API stand-in (kubernetes scenario only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubeApi>,
}

/// The Kubernetes API stand-in (`apiserver.py`) of the kubernetes
/// scenario: in the fabric namespace, on an address of the LAN bridge, so
/// every node reaches it over the LAN as a node reaches its API server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeApi {
    pub ns: String,
    /// The bridge that gets `address`.
    pub dev: String,
    pub address: Ipv4Addr,
    pub port: u16,
    /// Its script, saved objects, log and the kubeconfig.
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
}

/// The shared LAN: a bridge in its own namespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fabric {
    pub ns: String,
    pub bridge: String,
    pub lan_v6: Ipv6Net,
    pub lan_v4: Ipv4Net,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// `n1`, `n2`, ...
    pub name: String,
    pub ns: String,
    pub asn: u32,
    pub router_id: Ipv4Addr,
    /// The node's end of its LAN veth (`lan0`) and the bridge's end (`n1`).
    pub lan_dev: String,
    pub fabric_dev: String,
    pub lan_v6: Ipv6Addr,
    pub lan_v4: Ipv4Addr,
    /// On `lo`, advertised by kroute itself.
    pub loopbacks: Vec<IpNet>,
    /// On `lo`, announced by the CNI stand-in (LoadBalancer VIPs, services).
    pub vips: Vec<IpNet>,
    pub pod: Pod,
    /// The CNI's BGP control plane (GoBGP) on this node, if the scenario has one.
    pub cni: Option<Cni>,
    /// Prefixes kroute originates (`advertise.prefixes`).
    pub originate: Vec<IpNet>,
    /// unnumbered: the node's point-to-point links, one per router (no
    /// LAN, no addresses on them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uplinks: Vec<Uplink>,
    /// This node's files: config, API socket, logs.
    pub dir: PathBuf,
    pub config: PathBuf,
    pub socket: PathBuf,
}

/// One pod: a namespace behind a veth (`pod0` in the node, `eth0` in the pod).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    pub name: String,
    pub ns: String,
    pub node_dev: String,
    pub pod_dev: String,
    pub cidr_v6: Ipv6Net,
    pub cidr_v4: Ipv4Net,
    pub addr_v6: Ipv6Addr,
    pub addr_v4: Ipv4Addr,
    pub gw_v6: Ipv6Addr,
    pub gw_v4: Ipv4Addr,
}

/// The stand-in for Cilium's BGP control plane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cni {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    /// Where it listens (Cilium: 1790) and where kroute's peer config points.
    pub port: u16,
    /// kroute, which it connects to on port 179.
    pub peer_address: IpAddr,
    pub peer_asn: u32,
    pub api: String,
    pub routes: Vec<CniRoute>,
    pub config: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CniRoute {
    pub prefix: IpNet,
    pub next_hop: IpAddr,
    pub large_communities: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Router {
    /// `r1`, `r2`, ...
    pub name: String,
    pub ns: String,
    pub asn: u32,
    pub router_id: Ipv4Addr,
    pub lan_dev: String,
    pub fabric_dev: String,
    pub lan_v6: Ipv6Addr,
    pub lan_v4: Ipv4Addr,
    /// Advertise itself as next hop to the nodes (traffic crosses the
    /// router, as through the seed's Proxmox VRF), or pass the originating
    /// node's address on (a route reflector on a shared LAN).
    pub next_hop_self: bool,
    pub neighbors: Vec<RouterNeighbor>,
    /// FRR's run directory (`/var/run/frr/NS`).
    pub run_dir: PathBuf,
}

/// unnumbered: a veth from a node (`up1` for r1) to a router (`n1` for
/// node n1), with only the kernel's link-local addresses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Uplink {
    pub router: String,
    pub node_dev: String,
    pub router_dev: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterNeighbor {
    pub name: String,
    /// `::` for an unnumbered neighbour (see `interface`).
    pub address: Ipv6Addr,
    pub asn: u32,
    /// unnumbered: the router's interface towards the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
}

impl RouterNeighbor {
    /// How FRR names the neighbour: its address or its interface.
    pub fn frr_name(&self) -> String {
        self.interface
            .clone()
            .unwrap_or_else(|| self.address.to_string())
    }
}

impl Topology {
    /// Whether every node should end up with every other pod CIDR (false
    /// only for same-asn-rr without allowAsIn: the seed's failure).
    pub fn expect_routes(&self) -> bool {
        self.scenario != Scenario::SameAsnRr || self.allow_as_in
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Every namespace, in creation order.
    pub fn namespaces(&self) -> Vec<String> {
        let mut v = vec![self.fabric.ns.clone()];
        v.extend(self.routers.iter().map(|r| r.ns.clone()));
        for n in &self.nodes {
            v.push(n.ns.clone());
            v.push(n.pod.ns.clone());
        }
        v
    }

    /// kubernetes: the one router node `n` peers with (None: every router).
    pub fn upstream(&self, n: &Node) -> Option<&Router> {
        if self.scenario != Scenario::Kubernetes {
            return None;
        }
        let i = self.nodes.iter().position(|m| m.name == n.name)?;
        let k = upstream_of(i as u8 + 1, self.routers.len() as u8);
        self.routers.get(usize::from(k) - 1)
    }

    /// Service addresses pods are expected to reach (ping matrix columns).
    pub fn services(&self) -> Vec<(&Node, IpNet)> {
        if self.scenario != Scenario::ClusteripReturnPath {
            return Vec::new();
        }
        self.nodes
            .iter()
            .flat_map(|n| n.vips.iter().map(move |v| (n, *v)))
            .collect()
    }
}

/// The API stand-in's address on the LAN (after the nodes, before the
/// routers) and port.
pub const API_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 101, 0, 200);
pub const API_PORT: u16 = 6443;

/// kubernetes: the upstream router (1-based) of node `i` of `routers`.
/// Each node peers with one router, as each of seed 000's nodes peers with
/// one FRR upstream; spread over the routers (n1 and n4 with r1, and so
/// on), so that one router's fault costs some nodes their routes and not
/// others, which `kroute cluster check` then tells apart.
pub fn upstream_of(i: u8, routers: u8) -> u8 {
    (i - 1) % routers + 1
}

/// Lay out the scenario.
pub fn build(o: &LabOptions) -> Result<Topology, String> {
    let default_nodes = match o.scenario {
        Scenario::ClusteripReturnPath => 3,
        _ => 6,
    };
    let n = o.nodes.unwrap_or(default_nodes);
    if !(2..=9).contains(&n) {
        return Err(format!("--nodes {n}: the lab builds 2 to 9 nodes"));
    }
    let routers = match o.scenario {
        Scenario::CiliumFrr | Scenario::Kubernetes | Scenario::Unnumbered => 3,
        Scenario::SameAsnRr | Scenario::ClusteripReturnPath => 2,
    };
    let lan_v6: Ipv6Net = "fd00:101::/64".parse().expect("literal");
    let lan_v4: Ipv4Net = "10.101.0.0/24".parse().expect("literal");
    let ns = |short: &str| format!("{}-{short}", o.name);

    let mut nodes: Vec<Node> = (1..=n).map(|i| node(o, i, &ns)).collect();
    if o.scenario == Scenario::Unnumbered {
        for (i, node) in nodes.iter_mut().enumerate() {
            node.uplinks = (1..=routers)
                .map(|k| Uplink {
                    router: format!("r{k}"),
                    node_dev: format!("up{k}"),
                    router_dev: format!("n{}", i + 1),
                })
                .collect();
        }
    }
    let routers: Vec<Router> = (1..=routers)
        .map(|k| router(o, k, routers, &nodes, &ns))
        .collect();
    Ok(Topology {
        name: o.name.clone(),
        scenario: o.scenario,
        allow_as_in: o.allow_as_in,
        state_dir: o.state_dir.clone(),
        fabric: Fabric {
            ns: ns("fabric"),
            bridge: "br0".into(),
            lan_v6,
            lan_v4,
        },
        kubernetes: (o.scenario == Scenario::Kubernetes).then(|| {
            let dir = o.state_dir.join("api");
            KubeApi {
                ns: ns("fabric"),
                dev: "br0".into(),
                address: API_ADDRESS,
                port: API_PORT,
                kubeconfig: dir.join("kubeconfig"),
                dir,
            }
        }),
        nodes,
        routers,
    })
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().expect("lab address literal")
}

fn net(s: &str) -> IpNet {
    s.parse().expect("lab prefix literal")
}

fn node(o: &LabOptions, i: u8, ns: &impl Fn(&str) -> String) -> Node {
    let id = 10 + u32::from(i);
    let name = format!("n{i}");
    let dir = o.state_dir.join(&name);
    let pod_v4 = 224 + i;
    let pod = Pod {
        name: format!("p{i}"),
        ns: ns(&format!("p{i}")),
        node_dev: "pod0".into(),
        pod_dev: "eth0".into(),
        cidr_v6: format!("fd00:101:224:{i}::/64").parse().expect("literal"),
        cidr_v4: format!("10.101.{pod_v4}.0/24").parse().expect("literal"),
        addr_v6: v6(&format!("fd00:101:224:{i}::10")),
        addr_v4: Ipv4Addr::new(10, 101, pod_v4, 10),
        gw_v6: v6(&format!("fd00:101:224:{i}::1")),
        gw_v4: Ipv4Addr::new(10, 101, pod_v4, 1),
    };
    let lan_v6 = v6(&format!("fd00:101::{id}"));
    let (asn, router_id, loopbacks) = match o.scenario {
        Scenario::SameAsnRr => (
            SAME_ASN,
            Ipv4Addr::new(10, 255, 101, id as u8),
            vec![
                net(&format!("fd00:255:101::{id}/128")),
                net(&format!("10.255.101.{id}/32")),
            ],
        ),
        _ => (
            NODE_ASN_BASE + id,
            Ipv4Addr::new(10, 101, 254, id as u8),
            vec![
                net(&format!("fd00:101:fe::{id}/128")),
                net(&format!("10.101.254.{id}/32")),
            ],
        ),
    };
    let vips = match o.scenario {
        Scenario::CiliumFrr | Scenario::Unnumbered => vec![
            net(&format!("fd00:101:250::{id}/128")),
            net(&format!("10.101.250.{id}/32")),
        ],
        Scenario::ClusteripReturnPath if i == 1 => {
            vec![net("fd00:101:96::1/128"), net("10.101.96.1/32")]
        }
        _ => Vec::new(),
    };
    let (cni, originate) = match o.scenario {
        Scenario::SameAsnRr => (None, vec![IpNet::V6(pod.cidr_v6), IpNet::V4(pod.cidr_v4)]),
        // kroute originates the pod CIDRs itself (`podCIDRs: true`).
        Scenario::Kubernetes => (None, Vec::new()),
        _ => {
            let mut routes = vec![
                CniRoute {
                    prefix: IpNet::V6(pod.cidr_v6),
                    next_hop: IpAddr::V6(Ipv6Addr::LOCALHOST),
                    large_communities: vec![INTERNAL_LC.into()],
                },
                CniRoute {
                    prefix: IpNet::V4(pod.cidr_v4),
                    next_hop: IpAddr::V4(Ipv4Addr::LOCALHOST),
                    large_communities: vec![INTERNAL_LC.into()],
                },
            ];
            routes.extend(vips.iter().map(|v| CniRoute {
                prefix: *v,
                next_hop: match v {
                    IpNet::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
                    IpNet::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                },
                large_communities: vec![INTERNAL_LC.into()],
            }));
            (
                Some(Cni {
                    asn: CLUSTER_ASN,
                    router_id: Ipv4Addr::new(10, 101, 254, id as u8),
                    port: CNI_PORT,
                    peer_address: IpAddr::V6(Ipv6Addr::LOCALHOST),
                    peer_asn: asn,
                    api: CNI_API.into(),
                    routes,
                    config: dir.join("gobgpd.toml"),
                }),
                Vec::new(),
            )
        }
    };
    Node {
        name: name.clone(),
        ns: ns(&name),
        asn,
        router_id,
        lan_dev: "lan0".into(),
        fabric_dev: name.clone(),
        lan_v6,
        lan_v4: Ipv4Addr::new(10, 101, 0, id as u8),
        loopbacks,
        vips,
        pod,
        cni,
        originate,
        uplinks: Vec::new(),
        config: dir.join("kroute.yaml"),
        socket: dir.join("kroute.sock"),
        dir,
    }
}

fn router(
    o: &LabOptions,
    k: u8,
    count: u8,
    nodes: &[Node],
    ns: &impl Fn(&str) -> String,
) -> Router {
    let back = u16::from(count - k);
    let name = format!("r{k}");
    let lan_v6 = v6(&format!("fd00:101::{:x}", 0xfffe - back));
    let lan_v4 = Ipv4Addr::new(10, 101, 0, 254 - back as u8);
    let (asn, mesh, next_hop_self) = match o.scenario {
        Scenario::SameAsnRr => (REFLECTOR_ASN, false, false),
        _ => (UPSTREAM_ASN, true, true),
    };
    let mut neighbors: Vec<RouterNeighbor> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            o.scenario != Scenario::Kubernetes || upstream_of(*i as u8 + 1, count) == k
        })
        .map(|(i, n)| match o.scenario {
            Scenario::Unnumbered => RouterNeighbor {
                name: n.name.clone(),
                address: Ipv6Addr::UNSPECIFIED,
                asn: n.asn,
                interface: Some(format!("n{}", i + 1)),
            },
            _ => RouterNeighbor {
                name: n.name.clone(),
                address: n.lan_v6,
                asn: n.asn,
                interface: None,
            },
        })
        .collect();
    if mesh {
        for j in (1..=count).filter(|&j| j != k) {
            let back = u16::from(count - j);
            neighbors.push(RouterNeighbor {
                name: format!("r{j}"),
                address: v6(&format!("fd00:101::{:x}", 0xfffe - back)),
                asn,
                interface: None,
            });
        }
    }
    let ns_name = ns(&name);
    Router {
        run_dir: PathBuf::from("/var/run/frr").join(&ns_name),
        name: name.clone(),
        ns: ns_name,
        asn,
        router_id: lan_v4,
        lan_dev: "lan0".into(),
        fabric_dev: name,
        lan_v6,
        lan_v4,
        next_hop_self,
        neighbors,
    }
}

/// The kroute config of one node.
pub fn kroute_config(t: &Topology, n: &Node) -> Config {
    let cluster = PolicyChain::Named(vec![CLUSTER_POLICY.into()]);
    let mut peers = Vec::new();
    if let Some(c) = &n.cni {
        // Cilium connects to us and only advertises.
        peers.push(Peer {
            port: c.port,
            passive: true,
            import: cluster.clone(),
            export: PolicyChain::None,
            ..Peer::new("cilium", c.peer_address, c.asn)
        });
    }
    let allow_as_in = u8::from(t.scenario == Scenario::SameAsnRr && t.allow_as_in);
    for u in &n.uplinks {
        // BGP unnumbered: the router's AS is learned (`asn: external`).
        peers.push(Peer {
            interface: Some(u.node_dev.clone()),
            asn: config::PeerAsn::External,
            import: cluster.clone(),
            export: PolicyChain::Named(vec![OWN_POLICY.into()]),
            ..Peer::new(
                &format!("frr-{}", u.router),
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                1,
            )
        });
    }
    for r in t
        .routers
        .iter()
        .filter(|r| t.upstream(n).is_none_or(|u| u.name == r.name))
        .filter(|_| n.uplinks.is_empty())
    {
        peers.push(Peer {
            allow_as_in,
            import: cluster.clone(),
            export: PolicyChain::Named(vec![OWN_POLICY.into()]),
            ..Peer::new(&router_peer_name(t, r), IpAddr::V6(r.lan_v6), r.asn)
        });
    }
    let (communities, large_communities) = match t.scenario {
        Scenario::SameAsnRr => (vec![lab_value(&format!("{SAME_ASN}:100"))], Vec::new()),
        _ => (Vec::new(), vec![lab_value(INTERNAL_LC)]),
    };
    let cluster_prefixes = Rule {
        matches: Match {
            prefixes: cluster_ranges(t.scenario)
                .into_iter()
                .map(|(p, _)| lab_value(p))
                .collect(),
            ..Match::default()
        },
        action: Action::Accept,
        ..Rule::default()
    };
    // Originated here (and, with a CNI, by the CNI one AS away), never transit.
    let own_hops = match t.scenario {
        Scenario::SameAsnRr => 0,
        _ => 1,
    };
    let own_prefixes = Rule {
        matches: Match {
            as_path: Some(AsPathMatch {
                max_length: Some(own_hops),
                ..AsPathMatch::default()
            }),
            ..Match::default()
        },
        action: Action::Accept,
        ..Rule::default()
    };
    Config {
        router: config::Router {
            max_paths: if t.scenario == Scenario::Kubernetes {
                1
            } else {
                t.routers.len().max(1)
            },
            hold_time: 9,
            connect_retry: 2,
            ..config::Router::new(n.asn, n.router_id)
        },
        api: Api {
            socket: n.socket.clone(),
            ..Api::default()
        },
        // A restart of kroute does not blackhole the node.
        kernel: Kernel {
            keep_on_exit: true,
            ..Kernel::default()
        },
        peers,
        advertise: vec![Advertise {
            prefixes: n.loopbacks.iter().chain(&n.originate).copied().collect(),
            interfaces: Vec::new(),
            communities,
            large_communities,
            local_pref: None,
            pod_cidrs: (t.scenario == Scenario::Kubernetes).then(config::PodCidrs::default),
            services: None,
            domain: None,
        }],
        policies: vec![
            Policy {
                name: CLUSTER_POLICY.into(),
                rules: vec![cluster_prefixes],
            },
            Policy {
                name: OWN_POLICY.into(),
                rules: vec![own_prefixes],
            },
        ],
        log: config::Log::default(),
        bmp: Vec::new(),
        domains: Vec::new(),
    }
}

/// The policy that accepts the cluster's prefix ranges, and the one that
/// exports only the node's own prefixes.
const CLUSTER_POLICY: &str = "cluster-prefixes";
const OWN_POLICY: &str = "own-prefixes";

/// A value spelled as in the config file, from this file's literals.
fn lab_value<T: std::str::FromStr<Err = String>>(s: &str) -> T {
    s.parse()
        .unwrap_or_else(|e| panic!("lab literal {s:?}: {e}"))
}

/// The file the lab writes for one node: what the scenario is, as
/// comments, then the config.
pub fn kroute_config_file(t: &Topology, n: &Node) -> String {
    let mut y = String::new();
    match t.scenario {
        Scenario::Kubernetes => {
            y += &format!(
                "# Node {} of `kroute lab up --scenario kubernetes`: what the lab's\n\
                 # KrouteConfig (api/krouteconfig.yaml) renders to for this node; the\n\
                 # lab's kroute reads the KrouteConfig from the API, not this file.\n",
                n.name
            );
        }
        Scenario::Unnumbered => {
            y += &format!(
                "# Node {} of `kroute lab up --scenario unnumbered` (seed 000 with BGP\n\
                 # unnumbered uplinks): Cilium's BGP control plane (GoBGP, AS {CLUSTER_ASN})\n\
                 # peers with kroute over [::1]; kroute peers with each upstream FRR router\n\
                 # over a point-to-point link with no address (`interface: upK`), the\n\
                 # router's link-local address learned from its router advertisements, both\n\
                 # families on one session (IPv4 routes `via inet6 fe80::… dev upK`).\n",
                n.name
            );
        }
        Scenario::CiliumFrr | Scenario::ClusteripReturnPath => {
            y += &format!(
                "# Node {} of `kroute lab up --scenario {}` (seed 000): Cilium's BGP\n\
                 # control plane (GoBGP, AS {CLUSTER_ASN}) peers with kroute over [::1]\n\
                 # and announces this node's pod CIDRs{}\n\
                 # with next hop ::1 / 127.0.0.1.\n\
                 # kroute re-advertises them to the upstream FRR routers (AS {UPSTREAM_ASN})\n\
                 # and installs the other nodes' pod CIDRs they send back, ECMP across them.\n",
                n.name,
                t.scenario,
                if t.scenario == Scenario::CiliumFrr {
                    " and LoadBalancer VIPs"
                } else {
                    " (and, on node 1, a service address)"
                }
            );
        }
        Scenario::SameAsnRr => {
            y += &format!(
                "# Node {} of `kroute lab up --scenario same-asn-rr` (seed 001): every node\n\
                 # is in AS {SAME_ASN} and peers with route reflectors in AS {REFLECTOR_ASN}; the\n\
                 # other nodes' routes come back with {SAME_ASN} in the AS_PATH, so\n",
                n.name
            );
            y += if t.allow_as_in {
                "# accept our own ASN once.\n"
            } else {
                "# without accepting our own ASN once they are all rejected (the seed's failure).\n"
            };
        }
    }
    y += "# Policy cluster-prefixes accepts the cluster's ranges:\n";
    for (p, what) in cluster_ranges(t.scenario) {
        y += &format!("#   {p:<28} {what}\n");
    }
    y += "# Written by `kroute lab up` from its topology (src/lab/topology.rs).\n";
    y + &kroute_config(t, n).to_yaml()
}

/// The name kroute gives an upstream router peer.
pub fn router_peer_name(t: &Topology, r: &Router) -> String {
    match t.scenario {
        Scenario::SameAsnRr => format!("rr-{}", r.name),
        // One name for all nodes: one KrouteConfig, one upstream each.
        Scenario::Kubernetes => "upstream".to_string(),
        _ => format!("frr-{}", r.name),
    }
}

/// The prefix ranges a node accepts, with what they are.
fn cluster_ranges(s: Scenario) -> Vec<(&'static str, &'static str)> {
    let mut v = vec![
        ("fd00:101:224::/60 le 64", "pod CIDRs"),
        ("10.101.224.0/20 le 24", "pod CIDRs (IPv4)"),
    ];
    match s {
        Scenario::CiliumFrr | Scenario::Unnumbered => {
            v.push(("fd00:101:250::/112 le 128", "LoadBalancer VIPs"));
            v.push(("10.101.250.0/24 le 32", "LoadBalancer VIPs (IPv4)"));
            v.push(("fd00:101:fe::/64 le 128", "node loopbacks"));
            v.push(("10.101.254.0/24 le 32", "node loopbacks (IPv4)"));
        }
        Scenario::ClusteripReturnPath => {
            v.push(("fd00:101:96::/108 le 128", "services"));
            v.push(("10.101.96.0/24 le 32", "services (IPv4)"));
            v.push(("fd00:101:fe::/64 le 128", "node loopbacks"));
            v.push(("10.101.254.0/24 le 32", "node loopbacks (IPv4)"));
        }
        Scenario::Kubernetes => {
            v.push(("fd00:101:fe::/64 le 128", "node loopbacks"));
            v.push(("10.101.254.0/24 le 32", "node loopbacks (IPv4)"));
        }
        Scenario::SameAsnRr => {
            v.push(("fd00:255:101::/64 le 128", "node loopbacks"));
            v.push(("10.255.101.0/24 le 32", "node loopbacks (IPv4)"));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(s: Scenario, nodes: Option<u8>) -> Topology {
        build(&LabOptions {
            name: "kl".into(),
            scenario: s,
            nodes,
            allow_as_in: true,
            state_dir: PathBuf::from("/run/kroute-lab/kl"),
        })
        .unwrap()
    }

    #[test]
    fn cilium_frr_is_the_seed_cluster() {
        let t = topo(Scenario::CiliumFrr, None);
        assert_eq!(t.nodes.len(), 6);
        assert_eq!(t.routers.len(), 3);
        let n1 = &t.nodes[0];
        assert_eq!(n1.asn, 4_210_101_011);
        assert_eq!(n1.lan_v6, v6("fd00:101::11"));
        assert_eq!(n1.pod.cidr_v6.to_string(), "fd00:101:224:1::/64");
        assert_eq!(n1.pod.cidr_v4.to_string(), "10.101.225.0/24");
        assert_eq!(t.routers[2].lan_v6, v6("fd00:101::fffe"));
        assert_eq!(t.routers[0].lan_v6, v6("fd00:101::fffc"));
        // Every router peers with every node and the two other routers.
        assert!(t.routers.iter().all(|r| r.neighbors.len() == 6 + 2));
        assert_eq!(n1.cni.as_ref().unwrap().routes.len(), 4);
        assert_eq!(t.namespaces().len(), 1 + 3 + 12);
        assert!(t.namespaces().iter().all(|n| n.starts_with("kl-")));
    }

    #[test]
    fn addresses_are_unique_and_in_lab_ranges() {
        for s in [
            Scenario::CiliumFrr,
            Scenario::SameAsnRr,
            Scenario::ClusteripReturnPath,
        ] {
            let t = topo(s, Some(9));
            let mut all: Vec<IpAddr> = Vec::new();
            for n in &t.nodes {
                all.extend([IpAddr::V6(n.lan_v6), IpAddr::V4(n.lan_v4)]);
                all.extend([IpAddr::V6(n.pod.addr_v6), IpAddr::V4(n.pod.addr_v4)]);
                all.extend(n.loopbacks.iter().map(IpNet::addr));
            }
            for r in &t.routers {
                all.extend([IpAddr::V6(r.lan_v6), IpAddr::V4(r.lan_v4)]);
            }
            for a in &all {
                let ok = match a {
                    IpAddr::V6(a) => a.segments()[0] == 0xfd00,
                    IpAddr::V4(a) => a.octets()[0] == 10,
                };
                assert!(ok, "{a} outside the lab ranges");
            }
            let mut dedup = all.clone();
            dedup.sort();
            dedup.dedup();
            assert_eq!(dedup.len(), all.len(), "{s}: duplicate address");
            for n in &t.nodes {
                assert!(t.fabric.lan_v6.contains(&n.lan_v6));
                assert!(t.fabric.lan_v4.contains(&n.lan_v4));
                assert!(n.pod.cidr_v6.contains(&n.pod.addr_v6));
                assert!(n.pod.cidr_v4.contains(&n.pod.gw_v4));
            }
        }
    }

    #[test]
    fn generated_configs_parse() {
        for s in [
            Scenario::CiliumFrr,
            Scenario::SameAsnRr,
            Scenario::ClusteripReturnPath,
            Scenario::Unnumbered,
        ] {
            let t = topo(s, None);
            for n in &t.nodes {
                let y = kroute_config_file(&t, n);
                let c = crate::config::parse(&y, "lab.yaml")
                    .unwrap_or_else(|e| panic!("{s} {}: {e}\n{y}", n.name));
                assert_eq!(c, kroute_config(&t, n), "{s} {}: round trip", n.name);
                assert_eq!(c.router.asn, n.asn);
                assert_eq!(
                    c.peers.len(),
                    t.routers.len() + usize::from(n.cni.is_some())
                );
                assert!(c.kernel.keep_on_exit);
            }
        }
    }

    #[test]
    fn unnumbered_links_each_node_to_each_router() {
        let t = topo(Scenario::Unnumbered, None);
        assert_eq!((t.nodes.len(), t.routers.len()), (6, 3));
        for (i, n) in t.nodes.iter().enumerate() {
            let devs: Vec<&str> = n.uplinks.iter().map(|u| u.node_dev.as_str()).collect();
            assert_eq!(devs, ["up1", "up2", "up3"]);
            let c = kroute_config(&t, n);
            let ifaces: Vec<Option<&str>> =
                c.peers.iter().map(|p| p.interface.as_deref()).collect();
            assert_eq!(ifaces, [None, Some("up1"), Some("up2"), Some("up3")]);
            assert!(c.peers[1..]
                .iter()
                .all(|p| p.asn == config::PeerAsn::External));
            for r in &t.routers {
                let nb = r.neighbors.iter().find(|nb| nb.name == n.name).unwrap();
                assert_eq!(nb.interface, Some(format!("n{}", i + 1)));
                assert_eq!(nb.frr_name(), format!("n{}", i + 1));
            }
        }
        // The routers' iBGP mesh stays on the LAN, by address.
        let mesh: Vec<_> = t.routers[0]
            .neighbors
            .iter()
            .filter(|nb| nb.name.starts_with('r'))
            .collect();
        assert_eq!(mesh.len(), 2);
        assert!(mesh.iter().all(|nb| nb.interface.is_none()));
    }

    #[test]
    fn same_asn_rr_without_allowas_in() {
        let mut o = LabOptions {
            name: "kl".into(),
            scenario: Scenario::SameAsnRr,
            nodes: Some(3),
            allow_as_in: false,
            state_dir: PathBuf::from("/tmp/x"),
        };
        let t = build(&o).unwrap();
        assert!(!t.expect_routes());
        let c = kroute_config(&t, &t.nodes[0]);
        assert!(c.peers.iter().all(|p| p.allow_as_in == 0));
        o.allow_as_in = true;
        let t = build(&o).unwrap();
        assert!(t.expect_routes());
        let c = kroute_config(&t, &t.nodes[0]);
        assert!(c.peers.iter().all(|p| p.allow_as_in == 1));
        assert!(t.nodes.iter().all(|n| n.asn == SAME_ASN && n.cni.is_none()));
    }

    #[test]
    fn clusterip_has_one_service_on_node_1() {
        let t = topo(Scenario::ClusteripReturnPath, None);
        assert_eq!(t.nodes.len(), 3);
        let s = t.services();
        assert_eq!(s.len(), 2);
        assert!(s.iter().all(|(n, _)| n.name == "n1"));
    }

    #[test]
    fn node_count_is_bounded() {
        let o = LabOptions {
            name: "kl".into(),
            scenario: Scenario::CiliumFrr,
            nodes: Some(10),
            allow_as_in: true,
            state_dir: PathBuf::from("/tmp/x"),
        };
        assert!(build(&o).is_err());
    }

    /// The example configs in `examples/` (written by hand, with comments)
    /// say what the lab configures on node 1.
    #[test]
    fn examples_are_what_the_lab_generates() {
        for (s, file) in [
            (Scenario::CiliumFrr, "cilium-frr-node.yaml"),
            (Scenario::SameAsnRr, "same-asn-rr.yaml"),
            (
                Scenario::ClusteripReturnPath,
                "clusterip-return-path-node.yaml",
            ),
            (Scenario::Unnumbered, "unnumbered-node.yaml"),
        ] {
            let t = topo(s, None);
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("examples")
                .join(file);
            let text = std::fs::read_to_string(&path).unwrap();
            let example = crate::config::parse(&text, file).unwrap();
            let want = kroute_config(&t, &t.nodes[0]);
            assert_eq!(
                example,
                want,
                "{file} differs from what the lab writes:\n{}",
                kroute_config_file(&t, &t.nodes[0])
            );
        }
    }
}
