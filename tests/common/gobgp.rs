//! GoBGP as a test peer: labkit's launcher, gobgpd.toml from a
//! [`PeerSpec`]; announcements with `gobgp global rib add`. GoBGP never
//! installs routes in the kernel.

use labkit::gobgp::{self as lk, GobgpConfig, GobgpSpec, Neighbor, Timers};
use labkit::{Afi, Netns, ScratchDir};

use super::peer::{PeerDaemon, PeerRoute, PeerSpec};
use super::test_dir;

pub struct GoBgp {
    // Field order = drop order: process before its directory.
    gobgp: lk::Gobgp,
    dir: ScratchDir,
    ns: String,
}

fn config(spec: &PeerSpec) -> GobgpConfig {
    GobgpConfig {
        asn: spec.asn,
        router_id: spec.router_id.clone(),
        port: Some(179),
        neighbors: spec
            .neighbors
            .iter()
            .map(|n| Neighbor {
                address: n.address.clone(),
                peer_as: n.asn,
                local_address: Some(n.local_address.clone()),
                timers: Some(Timers {
                    connect_retry: 2,
                    hold_time: 9,
                    keepalive_interval: 3,
                }),
                families: n.families.iter().map(|f| f.to_string()).collect(),
                ..Default::default()
            })
            .collect(),
    }
}

impl GoBgp {
    /// Run the `gobgp` CLI inside the namespace; panics if it fails.
    pub fn cli(&self, args: &[&str]) -> String {
        self.gobgp.cli().run(args).unwrap_or_else(|e| panic!("{e}"))
    }
}

impl PeerDaemon for GoBgp {
    const KIND: &'static str = "gobgp";
    const IPV4_NEXT_HOP_OVER_IPV6: bool = false;
    const INSTALLS_KERNEL: bool = false;

    fn start(ns: &Netns, spec: PeerSpec) -> GoBgp {
        let dir = test_dir(&format!("gobgp-{}", ns.name()));
        let gobgp = lk::Gobgp::start(ns, &GobgpSpec::new(dir.path(), config(&spec).render()))
            .unwrap_or_else(|e| panic!("{e}"));
        GoBgp {
            gobgp,
            dir,
            ns: ns.name().to_string(),
        }
    }

    fn announce_prepend(&mut self, prefix: &str, prepend: &[u32]) {
        let afi = Afi::of(prefix).name();
        let mut args = vec!["global", "rib", "add", "-a", afi, prefix];
        let path: String = prepend
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        if !prepend.is_empty() {
            args.extend_from_slice(&["aspath", &path]);
        }
        self.cli(&args);
    }

    fn withdraw(&mut self, prefix: &str) {
        self.cli(&["global", "rib", "del", "-a", Afi::of(prefix).name(), prefix]);
    }

    fn rib(&self) -> Vec<PeerRoute> {
        self.gobgp.cli().rib().unwrap_or_else(|e| panic!("{e}"))
    }

    fn session_state(&self, neighbor: &str) -> Result<(), String> {
        match self.gobgp.cli().neighbor_state(neighbor) {
            Ok(Some(s)) if s == "established" => Ok(()),
            other => Err(format!("GoBGP {} neighbor {neighbor}: {other:?}", self.ns)),
        }
    }

    fn kill(&mut self) {
        self.gobgp
            .process()
            .kill()
            .unwrap_or_else(|e| panic!("{e}"));
    }
}
