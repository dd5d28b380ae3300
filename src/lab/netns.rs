//! The topology's namespaces, veth links, LAN bridge and addresses, made
//! with labkit. Each namespace is recorded in the state file before it is
//! created and then detached: the state file is what `down` deletes.

use ipnet::IpNet;
use labkit::{veth, Error, Lan, Netns, Result, Setup};

use super::procs::State;

/// Every lab namespace: no DAD (addresses usable at once; FRR refuses IPv6
/// sessions while link-local addresses are tentative), addresses kept when
/// a link goes down, forwarding on, no redirects.
const SETUP: Setup = Setup {
    no_dad: true,
    forwarding: true,
    keep_addr_on_down: true,
    no_redirects: true,
};

/// Delete a namespace the lab recorded, if it is still there.
pub fn delete(name: &str) -> Result<()> {
    if !Netns::exists(name) {
        return Ok(());
    }
    Netns::open(name)?.delete()
}

/// Build every namespace and link of the topology.
pub fn create_all(state: &mut State) -> Result<()> {
    let t = state.topology.clone();
    if let Some(ns) = t.namespaces().into_iter().find(|ns| Netns::exists(ns)) {
        return Err(Error::Other(format!(
            "namespace {ns} already exists but is not this lab's; \
             delete it (ip netns del {ns}) or pick another --name"
        )));
    }
    for ns in t.namespaces() {
        state.add_namespace(&ns)?;
        Netns::create(&ns, &SETUP)?.detach();
    }
    let f = &t.fabric;
    let lan = Lan::create(Netns::open(&f.ns)?, &f.bridge)?;
    let p6 = f.lan_v6.prefix_len();
    let p4 = f.lan_v4.prefix_len();
    for r in &t.routers {
        let ns = Netns::open(&r.ns)?;
        lan.attach(&ns, &r.lan_dev, &r.fabric_dev)?;
        ns.add_addr(&r.lan_dev, &format!("{}/{p6}", r.lan_v6))?;
        ns.add_addr(&r.lan_dev, &format!("{}/{p4}", r.lan_v4))?;
    }
    for n in &t.nodes {
        let ns = Netns::open(&n.ns)?;
        if n.uplinks.is_empty() {
            lan.attach(&ns, &n.lan_dev, &n.fabric_dev)?;
            ns.add_addr(&n.lan_dev, &format!("{}/{p6}", n.lan_v6))?;
            ns.add_addr(&n.lan_dev, &format!("{}/{p4}", n.lan_v4))?;
        }
        // unnumbered: no LAN for the node, one link per router with only
        // the kernel's link-local addresses (no DAD: usable at once).
        for u in &n.uplinks {
            let router = t.routers.iter().find(|r| r.name == u.router);
            let router = router.ok_or_else(|| Error::Other(format!("no router {}", u.router)))?;
            veth(&ns, &u.node_dev, &Netns::open(&router.ns)?, &u.router_dev)?;
        }
        for a in n.loopbacks.iter().chain(&n.vips) {
            ns.add_addr("lo", &host(a))?;
        }
        let p = &n.pod;
        let pod = Netns::open(&p.ns)?;
        veth(&ns, &p.node_dev, &pod, &p.pod_dev)?;
        let (l6, l4) = (p.cidr_v6.prefix_len(), p.cidr_v4.prefix_len());
        ns.add_addr(&p.node_dev, &format!("{}/{l6}", p.gw_v6))?;
        ns.add_addr(&p.node_dev, &format!("{}/{l4}", p.gw_v4))?;
        pod.add_addr(&p.pod_dev, &format!("{}/{l6}", p.addr_v6))?;
        pod.add_addr(&p.pod_dev, &format!("{}/{l4}", p.addr_v4))?;
        let (gw6, gw4) = (p.gw_v6.to_string(), p.gw_v4.to_string());
        pod.ip(&["-6", "route", "add", "default", "via", &gw6])?;
        pod.ip(&["-4", "route", "add", "default", "via", &gw4])?;
    }
    Ok(())
}

/// An address with its full host prefix length (`/128`, `/32`).
fn host(a: &IpNet) -> String {
    format!("{}/{}", a.addr(), a.max_prefix_len())
}
