//! The upstream routers: FRR (zebra + bgpd), one labkit FRR instance per
//! router namespace (pathspace `-N NS`, files in `/var/run/frr/NS/`),
//! started detached so it outlives `kroute lab up`. zebra installs the
//! learned routes in the router namespace's kernel, so traffic through the
//! router is forwarded. `vtysh -N NS` talks to an instance.

use labkit::frr::{BgpdConfig, Daemon, Frr, FrrSpec, Neighbor};
use labkit::{Afi, Netns, Result};

use super::procs::{ProcRecord, State};
use super::topology::{Router, Topology};

/// The daemons a router runs.
pub const DAEMONS: [Daemon; 2] = [Daemon::Zebra, Daemon::Bgpd];

/// bgpd's config for router `r`.
pub fn config(t: &Topology, r: &Router) -> BgpdConfig {
    let neighbors = r
        .neighbors
        .iter()
        .map(|n| {
            let to_node = t.node(&n.name).is_some();
            let extra: Vec<String> = if to_node && r.next_hop_self {
                vec!["next-hop-self force".into()]
            } else {
                Vec::new()
            };
            Neighbor {
                address: n.frr_name(),
                interface: n.interface.is_some(),
                remote_as: n.asn,
                description: Some(n.name.clone()),
                connect_timer: Some(2),
                // An unnumbered session runs from the link's link-local.
                update_source: n.interface.is_none().then(|| r.lan_v6.to_string()),
                advertisement_interval: Some(0),
                families: vec![(Afi::Ipv4, extra.clone()), (Afi::Ipv6, extra)],
                ..Neighbor::default()
            }
        })
        .collect();
    BgpdConfig {
        hostname: r.ns.clone(),
        asn: r.asn,
        router_id: r.router_id.to_string(),
        timers: Some((3, 9)),
        // A stopped router's routes must go at once, not linger as stale.
        graceful_restart_disable: true,
        neighbors,
        ..BgpdConfig::default()
    }
}

/// Start router `i`'s zebra and bgpd; record their run directory first and
/// the daemons once they serve.
pub fn start(state: &mut State, i: usize) -> Result<()> {
    let r = state.topology.routers[i].clone();
    state.add_run_dir(&r.run_dir)?;
    let spec = FrrSpec {
        detached: true,
        ..FrrSpec::new(&r.ns, config(&state.topology, &r).render())
    };
    let (daemons, dir) = Frr::start(&Netns::open(&r.ns)?, &spec)?.detach();
    for (daemon, id) in daemons {
        let log = dir.join(format!("{}.log", daemon.name()));
        state.add_process(ProcRecord::new(daemon.name(), &r.name, &r.ns, id, &log))?;
    }
    Ok(())
}

/// The route-map `kroute lab break export` hangs on a router's node
/// sessions: it denies everything, so the router sends the nodes nothing.
const BROKEN_EXPORT: &str = "kroute-lab-broken-export";

/// Break (or repair) router `r`'s export to the nodes: a deny-all
/// route-map outbound on every node neighbor, both families, then a soft
/// outbound refresh so the withdrawals go out at once (FRR would otherwise
/// wait for its route-map delay timer).
pub fn set_export_broken(t: &Topology, r: &Router, broken: bool) -> Result<()> {
    let no = if broken { "" } else { "no " };
    let mut cmds: Vec<String> = vec![
        "configure terminal".into(),
        format!("route-map {BROKEN_EXPORT} deny 10"),
        "exit".into(),
        format!("router bgp {}", r.asn),
    ];
    for afi in ["ipv6", "ipv4"] {
        cmds.push(format!("address-family {afi} unicast"));
        for n in r.neighbors.iter().filter(|n| t.node(&n.name).is_some()) {
            cmds.push(format!(
                "{no}neighbor {} route-map {BROKEN_EXPORT} out",
                n.frr_name()
            ));
        }
        cmds.push("exit-address-family".into());
    }
    cmds.push("end".into());
    for afi in ["ipv6", "ipv4"] {
        cmds.push(format!("clear bgp {afi} unicast * soft out"));
    }
    let cmds: Vec<&str> = cmds.iter().map(String::as_str).collect();
    labkit::frr::vtysh(&r.ns, &cmds).map(drop)
}
