//! What the lab looks like now: each node's BGP sessions (from its kroute's
//! API socket), the BGP routes in its kernel, and a ping matrix between all
//! pods (and, in clusterip-return-path, from every pod to the service).

use std::net::IpAddr;
use std::path::Path;
use std::sync::mpsc;

use ipnet::IpNet;
use labkit::{kernel, Afi, Netns};
use serde::Serialize;

use super::procs::State;
use crate::api::Client;
use crate::events::SessionState;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub name: String,
    pub scenario: String,
    pub allow_as_in: bool,
    pub state_dir: String,
    pub nodes: Vec<NodeReport>,
    pub routers: Vec<RouterReport>,
    pub matrix: Matrix,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeReport {
    pub name: String,
    pub ns: String,
    pub asn: u32,
    pub address: IpAddr,
    pub pod_cidrs: Vec<IpNet>,
    pub socket: String,
    pub processes: Vec<ProcReport>,
    pub sessions: Vec<Session>,
    /// Why `sessions` is empty, if the API did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_error: Option<String>,
    /// `proto bgp` routes in the node's kernel, both families.
    pub routes: Vec<KernelRoute>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterReport {
    pub name: String,
    pub ns: String,
    pub asn: u32,
    pub addresses: Vec<IpAddr>,
    pub processes: Vec<ProcReport>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcReport {
    pub name: String,
    pub pid: u32,
    pub running: bool,
    pub log: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub peer: String,
    pub address: IpAddr,
    pub asn: u32,
    pub state: SessionState,
    pub prefixes_received: usize,
    pub prefixes_accepted: usize,
    pub prefixes_advertised: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KernelRoute {
    pub prefix: IpNet,
    /// Gateways (several: ECMP).
    pub next_hops: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Matrix {
    /// Source pods, in row order.
    pub sources: Vec<String>,
    /// Destinations, in column order.
    pub targets: Vec<Target>,
    pub results: Vec<Ping>,
    /// Pings that got no reply.
    pub failed: usize,
    pub total: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// `p2`, or `svc` for the service.
    pub name: String,
    pub node: String,
    pub ipv6: IpAddr,
    pub ipv4: IpAddr,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ping {
    pub from: String,
    pub to: String,
    pub family: &'static str,
    pub address: IpAddr,
    pub ok: bool,
}

impl Matrix {
    pub fn get(&self, from: &str, to: &str, family: &str) -> Option<bool> {
        self.results
            .iter()
            .find(|p| p.from == from && p.to == to && p.family == family)
            .map(|p| p.ok)
    }
}

/// The sessions kroute on this node reports.
pub fn sessions(socket: &Path) -> Result<Vec<Session>, String> {
    let neighbors = Client::new(socket).neighbors().map_err(|e| e.to_string())?;
    Ok(neighbors
        .into_iter()
        .map(|n| Session {
            peer: n.name,
            address: n.address,
            // The lab configures numbers; a kind shows what it learned.
            asn: match n.asn {
                crate::config::PeerAsn::Number(asn) => asn,
                _ => n.learned_asn.unwrap_or(0),
            },
            state: n.state,
            prefixes_received: n.prefixes_received,
            prefixes_accepted: n.prefixes_accepted,
            prefixes_advertised: n.prefixes_advertised,
            last_error: n.last_error,
        })
        .collect())
}

/// `proto bgp` routes in a namespace's kernel, IPv6 first.
pub fn kernel_routes(ns: &str) -> Result<Vec<KernelRoute>, String> {
    let ns = Netns::open(ns).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for afi in [Afi::Ipv6, Afi::Ipv4] {
        let routes = kernel::routes(&ns, afi, Some("bgp")).map_err(|e| e.to_string())?;
        out.extend(routes.iter().filter_map(KernelRoute::of));
    }
    Ok(out)
}

impl KernelRoute {
    /// A route as the status shows it: each next hop by its gateway, or
    /// its device when it has none.
    fn of(r: &kernel::KernelRoute) -> Option<KernelRoute> {
        let prefix = r.dst.parse().ok()?;
        let next_hops = r
            .nexthops
            .iter()
            .map(|(gw, dev)| match (gw.is_empty(), dev.is_empty()) {
                (false, _) => gw.clone(),
                (true, false) => format!("dev {dev}"),
                _ => "?".into(),
            })
            .collect();
        Some(KernelRoute { prefix, next_hops })
    }
}

/// One ping (two echo requests 200 ms apart; a reply to either counts).
fn ping(ns: &str, addr: IpAddr) -> bool {
    let a = addr.to_string();
    matches!(
        Netns::open(ns).and_then(|ns| ns.output(&[
            "ping", "-n", "-q", "-c", "2", "-i", "0.2", "-W", "1", &a,
        ])),
        Ok(o) if o.status.success()
    )
}

/// Every pod to every other pod (and to the services), both families, all
/// at once.
pub fn matrix(state: &State) -> Matrix {
    let t = &state.topology;
    let mut targets: Vec<Target> = t
        .nodes
        .iter()
        .map(|n| Target {
            name: n.pod.name.clone(),
            node: n.name.clone(),
            ipv6: IpAddr::V6(n.pod.addr_v6),
            ipv4: IpAddr::V4(n.pod.addr_v4),
        })
        .collect();
    let services = t.services();
    let (svc6, svc4): (Vec<_>, Vec<_>) = services.iter().partition(|(_, a)| a.addr().is_ipv6());
    for (i, ((n, a6), (_, a4))) in svc6.iter().zip(&svc4).enumerate() {
        targets.push(Target {
            name: if i == 0 {
                "svc".into()
            } else {
                format!("svc{}", i + 1)
            },
            node: n.name.clone(),
            ipv6: a6.addr(),
            ipv4: a4.addr(),
        });
    }
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        for n in &t.nodes {
            for target in &targets {
                if target.name == n.pod.name {
                    continue;
                }
                for (family, addr) in [("ipv6", target.ipv6), ("ipv4", target.ipv4)] {
                    let tx = tx.clone();
                    let (from, to, ns) = (n.pod.name.clone(), target.name.clone(), &n.pod.ns);
                    s.spawn(move || {
                        let ok = ping(ns, addr);
                        let _ = tx.send(Ping {
                            from,
                            to,
                            family,
                            address: addr,
                            ok,
                        });
                    });
                }
            }
        }
    });
    drop(tx);
    let mut results: Vec<Ping> = rx.into_iter().collect();
    results.sort_by(|a, b| (&a.from, &a.to, a.family).cmp(&(&b.from, &b.to, b.family)));
    Matrix {
        sources: t.nodes.iter().map(|n| n.pod.name.clone()).collect(),
        targets,
        failed: results.iter().filter(|p| !p.ok).count(),
        total: results.len(),
        results,
    }
}

fn proc_reports(state: &State, owner: &str) -> Vec<ProcReport> {
    let mut seen: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    // The latest record per daemon (a restarted kroute has a new one).
    for p in state.processes.iter().rev().filter(|p| p.owner == owner) {
        if seen.contains(&p.name.as_str()) {
            continue;
        }
        seen.push(&p.name);
        out.push(ProcReport {
            name: p.name.clone(),
            pid: p.id.pid,
            running: p.alive(),
            log: p.log.display().to_string(),
        });
    }
    out.reverse();
    out
}

/// The whole report.
pub fn collect(state: &State) -> Report {
    let t = &state.topology;
    let nodes = t
        .nodes
        .iter()
        .map(|n| {
            let (sessions, api_error) = match sessions(&n.socket) {
                Ok(s) => (s, None),
                Err(e) => (Vec::new(), Some(e)),
            };
            NodeReport {
                name: n.name.clone(),
                ns: n.ns.clone(),
                asn: n.asn,
                address: IpAddr::V6(n.lan_v6),
                pod_cidrs: vec![IpNet::V6(n.pod.cidr_v6), IpNet::V4(n.pod.cidr_v4)],
                socket: n.socket.display().to_string(),
                processes: proc_reports(state, &n.name),
                sessions,
                api_error,
                routes: kernel_routes(&n.ns).unwrap_or_default(),
            }
        })
        .collect();
    let routers = t
        .routers
        .iter()
        .map(|r| RouterReport {
            name: r.name.clone(),
            ns: r.ns.clone(),
            asn: r.asn,
            addresses: vec![IpAddr::V6(r.lan_v6), IpAddr::V4(r.lan_v4)],
            processes: proc_reports(state, &r.name),
        })
        .collect();
    Report {
        name: t.name.clone(),
        scenario: t.scenario.to_string(),
        allow_as_in: t.allow_as_in,
        state_dir: t.state_dir.display().to_string(),
        nodes,
        routers,
        matrix: matrix(state),
    }
}

/// `Ok` once the lab has converged: every kroute session is Established
/// and, when the scenario expects it, every node's kernel holds every other
/// node's pod CIDRs (and the services). Otherwise what is still missing.
pub fn converged(state: &State) -> Result<(), String> {
    let t = &state.topology;
    let others = t.nodes.len().saturating_sub(1);
    for n in &t.nodes {
        let ss = sessions(&n.socket).map_err(|e| format!("{}: {e}", n.name))?;
        for s in &ss {
            if s.state != SessionState::Established {
                return Err(format!("{}: session {} is {}", n.name, s.peer, s.state));
            }
            // The upstreams have passed on the other nodes' pod CIDRs.
            if s.peer != "cilium" && s.prefixes_received < 2 * others {
                return Err(format!(
                    "{}: {} prefixes from {} so far",
                    n.name, s.prefixes_received, s.peer
                ));
            }
        }
        if !t.expect_routes() {
            continue;
        }
        let routes = kernel_routes(&n.ns)?;
        let want = t
            .nodes
            .iter()
            .filter(|m| m.name != n.name)
            .flat_map(|m| [IpNet::V6(m.pod.cidr_v6), IpNet::V4(m.pod.cidr_v4)])
            .chain(
                t.services()
                    .into_iter()
                    .filter(|(m, _)| m.name != n.name)
                    .map(|(_, a)| a),
            );
        for p in want {
            if !routes.iter().any(|r| r.prefix == p) {
                return Err(format!("{}: no kernel route to {p} yet", n.name));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_routes_show_gateways_or_devices() {
        let text = r#"[{"dst":"fd00:101:224:2::/64","protocol":"bgp","metric":20,"flags":[],"nexthops":[{"gateway":"fd00:101::fffc","dev":"lan0","weight":1,"flags":[]},{"gateway":"fd00:101::fffd","dev":"lan0","weight":1,"flags":[]}]},{"dst":"fd00:101:250::12","dev":"lan0","protocol":"bgp","metric":20,"flags":[]}]"#;
        let routes = kernel::parse_routes(text, Afi::Ipv6).unwrap();
        let r: Vec<KernelRoute> = routes.iter().filter_map(KernelRoute::of).collect();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].prefix.to_string(), "fd00:101:224:2::/64");
        assert_eq!(r[0].next_hops, vec!["fd00:101::fffc", "fd00:101::fffd"]);
        assert_eq!(r[1].prefix.to_string(), "fd00:101:250::12/128");
        assert_eq!(r[1].next_hops, vec!["dev lan0"]);
    }
}
