//! Namespaces, veth pairs, the LAN bridge and addresses, with iproute2.

use std::process::{Command, Output};

use ipnet::IpNet;

use super::procs::State;
use super::topology::Topology;
use super::{LabError, Result};

/// Run a command, returning its output (an error only if it cannot start).
pub fn output(argv: &[&str]) -> Result<Output> {
    Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .map_err(|e| LabError::Command {
            argv: argv.join(" "),
            detail: e.to_string(),
        })
}

/// Run a command that must succeed; returns its stdout.
pub fn run(argv: &[&str]) -> Result<String> {
    let out = output(argv)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(LabError::Command {
            argv: argv.join(" "),
            detail: format!("{} ({})", stderr.trim(), out.status),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip -n NS ARGS...`
pub fn ip(ns: &str, args: &[&str]) -> Result<String> {
    let mut argv = vec!["ip", "-n", ns];
    argv.extend_from_slice(args);
    run(&argv)
}

/// `ip netns exec NS ARGS...`
pub fn exec(ns: &str, args: &[&str]) -> Result<String> {
    let mut argv = vec!["ip", "netns", "exec", ns];
    argv.extend_from_slice(args);
    run(&argv)
}

pub fn exists(ns: &str) -> bool {
    std::path::Path::new("/var/run/netns").join(ns).exists()
}

/// A fresh namespace: `lo` up, no DAD (addresses usable at once; FRR
/// refuses IPv6 sessions while link-local addresses are tentative),
/// addresses kept when a link goes down, forwarding on, no redirects.
fn create(ns: &str) -> Result<()> {
    run(&["ip", "netns", "add", ns])?;
    ip(ns, &["link", "set", "lo", "up"])?;
    exec(
        ns,
        &[
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
            "net.ipv6.conf.all.keep_addr_on_down=1",
            "net.ipv6.conf.default.keep_addr_on_down=1",
            "net.ipv4.ip_forward=1",
            "net.ipv6.conf.all.forwarding=1",
            "net.ipv4.conf.all.send_redirects=0",
            "net.ipv4.conf.default.send_redirects=0",
        ],
    )?;
    Ok(())
}

pub fn delete(ns: &str) -> Result<()> {
    if !exists(ns) {
        return Ok(());
    }
    run(&["ip", "netns", "del", ns]).map(|_| ())
}

/// A veth pair from `dev_a` in `ns_a` to `dev_b` in `ns_b`, both up.
/// Created inside `ns_a`, so names only need to be unique per namespace.
fn veth(ns_a: &str, dev_a: &str, ns_b: &str, dev_b: &str) -> Result<()> {
    ip(
        ns_a,
        &[
            "link", "add", dev_a, "type", "veth", "peer", "name", dev_b, "netns", ns_b,
        ],
    )?;
    ip(ns_a, &["link", "set", dev_a, "up"])?;
    ip(ns_b, &["link", "set", dev_b, "up"])?;
    Ok(())
}

pub fn add_addr(ns: &str, dev: &str, addr: &str) -> Result<()> {
    let mut args = vec!["addr", "add", addr, "dev", dev];
    if addr.contains(':') {
        args.push("nodad");
    }
    ip(ns, &args).map(|_| ())
}

/// Build every namespace and link of the topology. Each namespace is
/// recorded in the state file before it is created.
pub fn create_all(state: &mut State) -> Result<()> {
    let t: Topology = state.topology.clone();
    if let Some(ns) = t.namespaces().into_iter().find(|ns| exists(ns)) {
        return Err(LabError::Other(format!(
            "namespace {ns} already exists but is not this lab's; \
             delete it (ip netns del {ns}) or pick another --name"
        )));
    }
    for ns in t.namespaces() {
        state.add_namespace(&ns)?;
        create(&ns)?;
    }
    let f = &t.fabric;
    ip(&f.ns, &["link", "add", &f.bridge, "type", "bridge"])?;
    // No multicast snooping: IPv6 neighbour discovery across the bridge at once.
    ip(
        &f.ns,
        &[
            "link",
            "set",
            &f.bridge,
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ],
    )?;
    ip(&f.ns, &["link", "set", &f.bridge, "up"])?;
    let p6 = f.lan_v6.prefix_len().to_string();
    let p4 = f.lan_v4.prefix_len().to_string();
    for r in &t.routers {
        veth(&r.ns, &r.lan_dev, &f.ns, &r.fabric_dev)?;
        ip(&f.ns, &["link", "set", &r.fabric_dev, "master", &f.bridge])?;
        add_addr(&r.ns, &r.lan_dev, &format!("{}/{p6}", r.lan_v6))?;
        add_addr(&r.ns, &r.lan_dev, &format!("{}/{p4}", r.lan_v4))?;
    }
    for n in &t.nodes {
        veth(&n.ns, &n.lan_dev, &f.ns, &n.fabric_dev)?;
        ip(&f.ns, &["link", "set", &n.fabric_dev, "master", &f.bridge])?;
        add_addr(&n.ns, &n.lan_dev, &format!("{}/{p6}", n.lan_v6))?;
        add_addr(&n.ns, &n.lan_dev, &format!("{}/{p4}", n.lan_v4))?;
        for a in n.loopbacks.iter().chain(&n.vips) {
            add_addr(&n.ns, "lo", &host(a))?;
        }
        let p = &n.pod;
        veth(&n.ns, &p.node_dev, &p.ns, &p.pod_dev)?;
        add_addr(
            &n.ns,
            &p.node_dev,
            &format!("{}/{}", p.gw_v6, p.cidr_v6.prefix_len()),
        )?;
        add_addr(
            &n.ns,
            &p.node_dev,
            &format!("{}/{}", p.gw_v4, p.cidr_v4.prefix_len()),
        )?;
        add_addr(
            &p.ns,
            &p.pod_dev,
            &format!("{}/{}", p.addr_v6, p.cidr_v6.prefix_len()),
        )?;
        add_addr(
            &p.ns,
            &p.pod_dev,
            &format!("{}/{}", p.addr_v4, p.cidr_v4.prefix_len()),
        )?;
        ip(
            &p.ns,
            &["-6", "route", "add", "default", "via", &p.gw_v6.to_string()],
        )?;
        ip(
            &p.ns,
            &["-4", "route", "add", "default", "via", &p.gw_v4.to_string()],
        )?;
    }
    Ok(())
}

/// An address with its full host prefix length (`/128`, `/32`).
fn host(a: &IpNet) -> String {
    format!("{}/{}", a.addr(), a.max_prefix_len())
}
