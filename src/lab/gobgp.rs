//! The stand-in for Cilium's BGP control plane: GoBGP (which Cilium
//! embeds), one labkit `gobgpd` per node namespace. Like Cilium it listens
//! on port 1790, connects to the node's router over `[::1]` (kroute:
//! passive, port 1790 in its peer config, as the seed's bird2 was) and
//! announces the node's pod CIDRs and VIPs with next hop `::1` /
//! `127.0.0.1`. It never installs routes: on every node that is kroute's
//! job.

use labkit::gobgp::{Cli, Gobgp, GobgpConfig, GobgpSpec, Neighbor, Timers};
use labkit::{Netns, Result};

use super::procs::{ProcRecord, State};
use super::topology::{Cni, Node};

/// gobgpd.toml for node `n`.
pub fn config(n: &Node, c: &Cni) -> GobgpConfig {
    let kroute = c.peer_address.to_string();
    GobgpConfig {
        asn: c.asn,
        router_id: c.router_id.to_string(),
        port: Some(i32::from(c.port)),
        neighbors: vec![Neighbor {
            address: kroute.clone(),
            peer_as: c.peer_asn,
            description: Some(format!("kroute on {}", n.name)),
            local_address: Some(kroute),
            remote_port: Some(179),
            passive: false,
            timers: Some(Timers {
                connect_retry: 1,
                hold_time: 9,
                keepalive_interval: 3,
            }),
            families: vec!["ipv4-unicast".into(), "ipv6-unicast".into()],
        }],
    }
}

/// Start gobgpd on node `i` (labkit waits for its API), detached, and
/// record it.
pub fn start(state: &mut State, i: usize) -> Result<()> {
    let n = state.topology.nodes[i].clone();
    let Some(c) = n.cni.clone() else {
        return Ok(());
    };
    std::fs::create_dir_all(&n.dir)
        .map_err(labkit::error::io(format!("create {}", n.dir.display())))?;
    let spec = GobgpSpec {
        api: c.api.clone(),
        detached: true,
        ..GobgpSpec::new(&n.dir, config(&n, &c).render())
    };
    let gobgp = Gobgp::start(&Netns::open(&n.ns)?, &spec)?;
    let log = gobgp.log_path().to_path_buf();
    let id = gobgp.detach();
    state.add_process(ProcRecord::new("gobgpd", &n.name, &n.ns, id, &log))
}

/// Announce node `i`'s pod CIDRs and VIPs.
pub fn announce(state: &State, i: usize) -> Result<()> {
    let n = &state.topology.nodes[i];
    let Some(c) = &n.cni else {
        return Ok(());
    };
    let cli = Cli::new(&n.ns, &c.api);
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
        cli.run(&args)?;
    }
    Ok(())
}
