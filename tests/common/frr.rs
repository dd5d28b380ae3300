//! FRR as a test peer: labkit's launcher (zebra + bgpd, pathspace `-N`
//! = the namespace's name), bgpd configured from a [`PeerSpec`];
//! announcements with `network P` through vtysh.

use labkit::frr::{self as lk, BgpdConfig, FrrSpec, Neighbor};
use labkit::{Afi, Netns};
use serde_json::Value;

use super::peer::{PeerDaemon, PeerRoute, PeerSpec};

pub struct Frr {
    frr: lk::Frr,
    spec: PeerSpec,
}

/// The route-map that sets `neighbor`'s IPv4 next hop.
fn nh4_route_map(neighbor: &str) -> String {
    format!("KT-NH4-{}", neighbor.replace(':', "-"))
}

/// The test peer's bgpd config: short timers, no graceful restart (a
/// killed FRR's routes must go at once), originating without a route.
fn config(name: &str, spec: &PeerSpec) -> BgpdConfig {
    let neighbors = spec
        .neighbors
        .iter()
        .map(|n| Neighbor {
            address: n.address.clone(),
            remote_as: n.asn,
            connect_timer: Some(2),
            update_source: Some(n.local_address.clone()),
            advertisement_interval: Some(0),
            families: n
                .families
                .iter()
                .map(|f| match (*f, &n.next_hop_ipv4) {
                    ("ipv4-unicast", Some(_)) => (
                        Afi::Ipv4,
                        vec![format!("route-map {} out", nh4_route_map(&n.address))],
                    ),
                    ("ipv4-unicast", None) => (Afi::Ipv4, vec![]),
                    _ => (Afi::Ipv6, vec![]),
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    let extra = spec
        .neighbors
        .iter()
        .filter_map(|n| {
            let nh = n.next_hop_ipv4.as_ref()?;
            Some(format!(
                "route-map {} permit 10\n set ip next-hop {nh}\n!\n",
                nh4_route_map(&n.address)
            ))
        })
        .collect();
    BgpdConfig {
        hostname: name.to_string(),
        asn: spec.asn,
        router_id: spec.router_id.clone(),
        timers: Some((3, 9)),
        graceful_restart_disable: true,
        neighbors,
        extra,
        ..Default::default()
    }
}

impl Frr {
    /// Run vtysh commands (each a `-c`), returning stdout; panics when FRR
    /// rejects one.
    pub fn vtysh(&self, cmds: &[&str]) -> String {
        self.frr.vtysh(cmds).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn vtysh_json(&self, command: &str) -> Value {
        self.frr.vtysh_json(command).unwrap_or(Value::Null)
    }

    fn configure(&self, cmds: &[String]) {
        let mut all = vec!["conf t"];
        all.extend(cmds.iter().map(String::as_str));
        self.vtysh(&all);
    }
}

impl PeerDaemon for Frr {
    const KIND: &'static str = "frr";
    const IPV4_NEXT_HOP_OVER_IPV6: bool = true;
    const INSTALLS_KERNEL: bool = true;

    fn start(ns: &Netns, spec: PeerSpec) -> Frr {
        let name = ns.name();
        let frr = lk::Frr::start(ns, &FrrSpec::new(name, config(name, &spec).render()))
            .unwrap_or_else(|e| panic!("{e}"));
        Frr { frr, spec }
    }

    fn announce_prepend(&mut self, prefix: &str, prepend: &[u32]) {
        let mut cmds = Vec::new();
        let mut network = format!("network {prefix}");
        if !prepend.is_empty() {
            let list: Vec<String> = prepend.iter().map(u32::to_string).collect();
            let rm = format!("KT-PREPEND-{}", list.join("-"));
            cmds.push(format!("route-map {rm} permit 10"));
            cmds.push(format!("set as-path prepend {}", list.join(" ")));
            cmds.push("exit".into());
            network += &format!(" route-map {rm}");
        }
        cmds.push(format!("router bgp {}", self.spec.asn));
        cmds.push(format!("address-family {} unicast", Afi::of(prefix).name()));
        cmds.push(network);
        self.configure(&cmds);
    }

    fn withdraw(&mut self, prefix: &str) {
        self.configure(&[
            format!("router bgp {}", self.spec.asn),
            format!("address-family {} unicast", Afi::of(prefix).name()),
            format!("no network {prefix}"),
        ]);
    }

    fn rib(&self) -> Vec<PeerRoute> {
        self.frr.rib().unwrap_or_else(|e| panic!("{e}"))
    }

    fn session_state(&self, neighbor: &str) -> Result<(), String> {
        match self.frr.neighbor_state(neighbor) {
            Ok(Some(s)) if s == "Established" => Ok(()),
            other => Err(format!(
                "FRR {} neighbor {neighbor}: {other:?}",
                self.frr.instance()
            )),
        }
    }

    fn kill(&mut self) {
        let bgpd = self.frr.daemon(lk::Daemon::Bgpd).expect("bgpd runs");
        bgpd.kill().unwrap_or_else(|e| panic!("{e}"));
    }
}
