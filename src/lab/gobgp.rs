//! The stand-in for Cilium's BGP control plane: GoBGP (which Cilium
//! embeds), one `gobgpd` per node namespace. Like Cilium it listens on port
//! 1790, connects to the node's router over `[::1]` (kroute: passive, port
//! 1790 in its peer config, as the seed's bird2 was) and announces the
//! node's pod CIDRs and VIPs with next hop `::1` / `127.0.0.1`. It never
//! installs routes: on every node that is kroute's job.

use super::procs::{self, ProcRecord, State};
use super::topology::{Cni, Node};
use super::{io_err, netns, Result};

/// gobgpd.toml for node `n`.
pub fn render(n: &Node, c: &Cni) -> String {
    let mut t = String::new();
    t += "[global.config]\n";
    t += &format!("  as = {}\n", c.asn);
    t += &format!("  router-id = \"{}\"\n", c.router_id);
    t += &format!("  port = {}\n", c.port);
    t += "[[neighbors]]\n  [neighbors.config]\n";
    t += &format!("    neighbor-address = \"{}\"\n", c.peer_address);
    t += &format!("    peer-as = {}\n", c.peer_asn);
    t += &format!("    description = \"kroute on {}\"\n", n.name);
    t += "  [neighbors.transport.config]\n";
    t += &format!("    local-address = \"{}\"\n", c.peer_address);
    t += "    remote-port = 179\n";
    t += "  [neighbors.timers.config]\n    connect-retry = 1\n    hold-time = 9\n    keepalive-interval = 3\n";
    for fam in ["ipv4-unicast", "ipv6-unicast"] {
        t += &format!(
            "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{fam}\"\n"
        );
    }
    t
}

fn cli(n: &Node, c: &Cni, args: &[&str]) -> Result<String> {
    let (host, port) = c.api.rsplit_once(':').unwrap_or((c.api.as_str(), "50051"));
    let mut argv = vec!["gobgp", "-u", host, "-p", port];
    argv.extend_from_slice(args);
    netns::exec(&n.ns, &argv)
}

/// Start gobgpd on node `i` and wait for its API.
pub fn start(state: &mut State, i: usize) -> Result<()> {
    let n = state.topology.nodes[i].clone();
    let Some(c) = n.cni.clone() else {
        return Ok(());
    };
    std::fs::create_dir_all(&n.dir).map_err(io_err(format!("create {}", n.dir.display())))?;
    std::fs::write(&c.config, render(&n, &c))
        .map_err(io_err(format!("write {}", c.config.display())))?;
    let log = n.dir.join("gobgpd.log");
    let conf = c.config.to_string_lossy().into_owned();
    let (pid, start_time) = procs::spawn_detached(
        &n.ns,
        &[
            "gobgpd",
            "-f",
            &conf,
            "--api-hosts",
            &c.api,
            "--log-level",
            "info",
        ],
        &[],
        &log,
    )?;
    let rec = ProcRecord {
        name: "gobgpd".into(),
        owner: n.name.clone(),
        ns: n.ns.clone(),
        pid,
        start_time,
        log: log.clone(),
    };
    state.add_process(rec.clone())?;
    procs::wait_ready(&rec, "gobgpd's API", || {
        cli(&n, &c, &["global"])
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

/// Announce node `i`'s pod CIDRs and VIPs.
pub fn announce(state: &State, i: usize) -> Result<()> {
    let n = &state.topology.nodes[i];
    let Some(c) = &n.cni else {
        return Ok(());
    };
    for r in &c.routes {
        let afi = if r.prefix.addr().is_ipv6() {
            "ipv6"
        } else {
            "ipv4"
        };
        let prefix = r.prefix.to_string();
        let nh = r.next_hop.to_string();
        let mut args = vec![
            "global", "rib", "add", "-a", afi, &prefix, "origin", "igp", "nexthop", &nh,
        ];
        let lcs = r.large_communities.join(",");
        if !lcs.is_empty() {
            args.extend_from_slice(&["large-community", &lcs]);
        }
        cli(n, c, &args)?;
    }
    Ok(())
}
