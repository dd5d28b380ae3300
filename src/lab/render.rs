//! Human output: the ping matrix and the status tables.

use ipnet::IpNet;

use super::procs::State;
use super::status::{Matrix, ProcReport, Report};
use crate::output::table;

pub const OK: &str = "✓";
pub const FAIL: &str = "✗";
const SELF: &str = "·";

pub fn json(r: &Report) -> String {
    serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// The matrix: one row per source pod, one column per destination, an
/// IPv6 block and an IPv4 block side by side.
pub fn matrix(state: &State, m: &Matrix) -> String {
    let t = &state.topology;
    let label = |src: &str| {
        let node = t
            .nodes
            .iter()
            .find(|n| n.pod.name == src)
            .map(|n| n.name.as_str())
            .unwrap_or("?");
        format!("{src} on {node}")
    };
    let first = m
        .sources
        .iter()
        .map(|s| label(s).chars().count())
        .max()
        .unwrap_or(4)
        .max("from \\ to".len());
    let widths: Vec<usize> = m.targets.iter().map(|t| t.name.chars().count()).collect();
    let block = widths.iter().map(|w| w + 1).sum::<usize>();
    let mut out = String::new();
    let what = if m.targets.iter().any(|t| t.name.starts_with("svc")) {
        "each pod (row) to every other pod and the service (column)"
    } else {
        "each pod (row) to every other pod (column)"
    };
    out += &format!(
        "ping matrix, {what}: {}/{} {OK}\n\n",
        m.total - m.failed,
        m.total
    );
    out += &format!("{:first$}   {:block$}   IPv4\n", "", "IPv6");
    let mut head = format!("{:first$}  ", "from \\ to");
    for _ in 0..2 {
        for t in &m.targets {
            head += &format!(" {}", t.name);
        }
        head += "  ";
    }
    out += head.trim_end();
    out += "\n";
    for src in &m.sources {
        let mut line = format!("{:first$}  ", label(src));
        for fam in ["ipv6", "ipv4"] {
            for (t, w) in m.targets.iter().zip(&widths) {
                let cell = match m.get(src, &t.name, fam) {
                    None => SELF,
                    Some(true) => OK,
                    Some(false) => FAIL,
                };
                line += &format!(" {cell:<w$}");
            }
            line += "  ";
        }
        out += line.trim_end();
        out += "\n";
    }
    let services: Vec<String> = m
        .targets
        .iter()
        .filter(|t| t.name.starts_with("svc"))
        .map(|t| format!("{} = {} / {} on {}", t.name, t.ipv6, t.ipv4, t.node))
        .collect();
    if !services.is_empty() {
        out += &format!("\n{}\n", services.join("; "));
    }
    out
}

fn procs(ps: &[ProcReport]) -> String {
    ps.iter()
        .map(|p| {
            format!(
                "{} {} {}",
                p.name,
                p.pid,
                if p.running { "running" } else { "STOPPED" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `kroute lab status`.
pub fn status(state: &State, r: &Report) -> String {
    let t = &state.topology;
    let mut out = format!(
        "lab {}: {}{}, {} nodes, {} upstream routers (files in {})\n",
        r.name,
        r.scenario,
        if t.scenario == super::Scenario::SameAsnRr && !t.allow_as_in {
            " without allowAsIn"
        } else {
            ""
        },
        r.nodes.len(),
        r.routers.len(),
        r.state_dir
    );
    if let Some(api) = &t.kubernetes {
        let running = state
            .process("api", "apiserver")
            .map(|p| {
                format!(
                    "{} {}",
                    p.id.pid,
                    if p.alive() { "running" } else { "STOPPED" }
                )
            })
            .unwrap_or_else(|| "not started".into());
        out += &format!(
            "API stand-in http://{}:{} in {} (apiserver {running}); \
             ip netns exec {} kroute cluster check --kubeconfig {}\n",
            api.address,
            api.port,
            api.ns,
            api.ns,
            api.kubeconfig.display()
        );
    }
    // Pod CIDRs and services: the routes the lab is about.
    let interesting: Vec<IpNet> = t
        .nodes
        .iter()
        .flat_map(|n| [IpNet::V6(n.pod.cidr_v6), IpNet::V4(n.pod.cidr_v4)])
        .chain(t.services().into_iter().map(|(_, a)| a))
        .collect();
    for n in &r.nodes {
        out += &format!(
            "\nnode {} (namespace {}, AS {}, {}): {}\n",
            n.name,
            n.ns,
            n.asn,
            n.address,
            procs(&n.processes)
        );
        if let Some(e) = &n.api_error {
            out += &format!("  kroute API: {e}\n");
        }
        let rows = n
            .sessions
            .iter()
            .map(|s| {
                vec![
                    s.peer.clone(),
                    s.address.to_string(),
                    s.asn.to_string(),
                    s.state.to_string(),
                    s.prefixes_received.to_string(),
                    s.prefixes_accepted.to_string(),
                    s.prefixes_advertised.to_string(),
                    s.last_error.clone().unwrap_or_default(),
                ]
            })
            .collect();
        if !n.sessions.is_empty() {
            for l in table(
                &[
                    "PEER",
                    "ADDRESS",
                    "ASN",
                    "STATE",
                    "RECEIVED",
                    "ACCEPTED",
                    "ADVERTISED",
                    "LAST ERROR",
                ],
                rows,
            )
            .lines()
            {
                out += &format!("  {l}\n");
            }
        }
        let pods: Vec<_> = n
            .routes
            .iter()
            .filter(|k| interesting.contains(&k.prefix))
            .collect();
        let rest = n.routes.len() - pods.len();
        out += &format!(
            "  pod CIDR routes in the kernel: {}{}\n",
            pods.len(),
            if rest > 0 {
                format!(" (and {rest} more BGP routes: loopbacks, VIPs)")
            } else {
                String::new()
            }
        );
        for k in pods {
            out += &format!("    {:<22} via {}\n", k.prefix, k.next_hops.join(", "));
        }
    }
    if !r.routers.is_empty() {
        out += "\nupstream routers (vtysh -N NAMESPACE -c 'show bgp summary')\n";
        let rows = r
            .routers
            .iter()
            .map(|x| {
                vec![
                    x.name.clone(),
                    x.ns.clone(),
                    x.asn.to_string(),
                    x.addresses
                        .iter()
                        .map(|a| a.to_string())
                        .collect::<Vec<_>>()
                        .join(" "),
                    procs(&x.processes),
                ]
            })
            .collect();
        for l in table(&["NAME", "NAMESPACE", "ASN", "ADDRESSES", "DAEMONS"], rows).lines() {
            out += &format!("  {l}\n");
        }
        for r in &state.broken_exports {
            out += &format!(
                "  {r}: export to the nodes BROKEN by `kroute lab break export {r}` \
                 (`kroute lab repair export {r}` undoes it)\n"
            );
        }
    }
    out += "\n";
    out += &matrix(state, &r.matrix);
    out
}
