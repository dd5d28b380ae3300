//! BIRD 2 as a test peer: labkit's launcher, configured from a
//! [`PeerSpec`]; announcements are static routes + `birdc configure`.

use labkit::bird::{self as lk, BgpProtocol, BirdConfig, Channel, KernelProtocol};
use labkit::bird::{StaticProtocol, StaticRoute};
use labkit::{Afi, Netns, ScratchDir};

use super::peer::{PeerDaemon, PeerRoute, PeerSpec};
use super::test_dir;

pub struct Bird {
    // Field order = drop order: process before its directory.
    bird: lk::Bird,
    dir: ScratchDir,
    spec: PeerSpec,
    ns: String,
    /// Originated routes: (prefix, prepend).
    statics: Vec<(String, Vec<u32>)>,
    /// Route-reflector role: (client addresses, cluster id).
    rr: Option<(Vec<String>, String)>,
    /// Raw extra options per neighbor address, written inside that
    /// neighbor's `protocol bgp` block (e.g. `password "x";`, `enable as4 off;`).
    extra: Vec<(String, String)>,
    /// BFD on every neighbor at this transmit and receive interval (ms).
    bfd_interval: Option<u32>,
}

/// BIRD protocol name for a neighbor address.
pub fn proto_name(addr: &str) -> String {
    format!("n_{}", addr.replace(['.', ':'], "_"))
}

/// The test peer's BIRD config: timers short, no graceful restart, static
/// routes for what it announces.
fn config(
    spec: &PeerSpec,
    statics: &[(String, Vec<u32>)],
    rr: &Option<(Vec<String>, String)>,
    extra: &[(String, String)],
) -> BirdConfig {
    let afis = [Afi::Ipv4, Afi::Ipv6];
    let kernel = if spec.install_kernel {
        afis.map(|afi| KernelProtocol {
            name: format!("k_{}", afi.name()),
            afi,
            import: "none".into(),
            export: "where source = RTS_BGP".into(),
            merge_paths: true,
        })
        .to_vec()
    } else {
        Vec::new()
    };
    let statics = afis
        .map(|afi| StaticProtocol {
            name: format!("s_{}", afi.name()),
            afi,
            routes: statics
                .iter()
                .filter(|(p, _)| Afi::of(p) == afi)
                .map(|(p, prepend)| StaticRoute {
                    prefix: p.clone(),
                    // prepend() puts an ASN in front: prepend in reverse so
                    // the path reads `prepend[0] prepend[1] ...`.
                    attrs: prepend
                        .iter()
                        .rev()
                        .map(|a| format!("bgp_path.prepend({a});"))
                        .collect(),
                })
                .collect(),
        })
        .to_vec();
    let bgp = spec
        .neighbors
        .iter()
        .map(|n| {
            let ibgp = n.asn == spec.asn;
            let mut options = vec![
                // Defaults are 5 s / 120 s: far too slow for tests.
                "connect delay time 1;".to_string(),
                "connect retry time 2;".into(),
                "error wait time 1, 4;".into(),
                "hold time 9;".into(),
                "keepalive time 3;".into(),
                // Else BIRD keeps a dead neighbor's routes as stale for 120 s.
                "graceful restart off;".into(),
            ];
            options.extend(
                extra
                    .iter()
                    .filter(|(a, _)| *a == n.address)
                    .map(|(_, o)| o.clone()),
            );
            if ibgp {
                // Clients and reflector share a LAN in the tests.
                options.push("direct;".into());
                if let Some((clients, cluster)) = rr {
                    if clients.contains(&n.address) {
                        options.push("rr client;".into());
                        options.push(format!("rr cluster id {cluster};"));
                    }
                }
            }
            let channels = n
                .families
                .iter()
                .map(|fam| {
                    let afi = if *fam == "ipv4-unicast" {
                        Afi::Ipv4
                    } else {
                        Afi::Ipv6
                    };
                    let mut ch = Channel::all(afi);
                    if ibgp {
                        ch.options.push("gateway direct;".into());
                    }
                    let nh = match afi {
                        Afi::Ipv4 => &n.next_hop_ipv4,
                        Afi::Ipv6 => &n.next_hop_ipv6,
                    };
                    if let Some(nh) = nh {
                        ch.options.push(format!("next hop address {nh};"));
                    }
                    ch
                })
                .collect();
            BgpProtocol {
                name: proto_name(&n.address),
                local_address: n.local_address.clone(),
                local_as: spec.asn,
                neighbor_address: n.address.clone(),
                neighbor_as: n.asn,
                options,
                channels,
            }
        })
        .collect();
    BirdConfig {
        router_id: spec.router_id.clone(),
        device_scan_time: Some(10),
        kernel,
        statics,
        bgp,
        ..Default::default()
    }
}

impl Bird {
    /// Run a `birdc` command; its output, or the error as text.
    pub fn birdc(&self, args: &[&str]) -> String {
        self.bird.birdc(args).unwrap_or_else(|e| e.to_string())
    }

    /// Make this BIRD a route reflector for the given iBGP neighbors.
    pub fn set_rr_clients(&mut self, clients: &[&str], cluster_id: &str) {
        self.rr = Some((
            clients.iter().map(|c| c.to_string()).collect(),
            cluster_id.to_string(),
        ));
        self.reconfigure();
    }

    /// Originate every one of `prefixes` with one reconfiguration (a
    /// table of tens of thousands of routes, not one `configure` each).
    pub fn announce_many(&mut self, prefixes: impl IntoIterator<Item = String>) {
        self.statics
            .extend(prefixes.into_iter().map(|p| (p, Vec::new())));
        self.reconfigure();
    }

    /// BFD (`protocol bfd`, asynchronous mode, multiplier 3) on every
    /// neighbor at `interval_ms`; `bfd on` in each `protocol bgp`.
    pub fn enable_bfd(&mut self, interval_ms: u32) {
        self.bfd_interval = Some(interval_ms);
        for n in &self.spec.neighbors {
            self.extra.push((n.address.clone(), "bfd on;".into()));
        }
        self.reconfigure();
    }

    fn reconfigure(&mut self) {
        let mut text = config(&self.spec, &self.statics, &self.rr, &self.extra).render();
        if let Some(ms) = self.bfd_interval {
            text += &format!(
                "protocol bfd {{\n  interface \"*\" {{\n    min rx interval {ms} ms;\n    \
                 min tx interval {ms} ms;\n    idle tx interval 1000 ms;\n    multiplier 3;\n  }};\n}}\n"
            );
        }
        self.bird.configure(&text).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Start BIRD with raw extra options in some neighbors' `protocol bgp`
    /// blocks: `(neighbor address, options)`, e.g.
    /// `("10.1.0.1", "password \"s3cret\";")`.
    pub fn start_with(ns: &Netns, spec: PeerSpec, extra: &[(&str, &str)]) -> Bird {
        let extra: Vec<(String, String)> = extra
            .iter()
            .map(|(a, o)| (a.to_string(), o.to_string()))
            .collect();
        let dir = test_dir(&format!("bird-{}", ns.name()));
        let text = config(&spec, &[], &None, &extra).render();
        let bird = lk::Bird::start(ns, &lk::BirdSpec::new(dir.path(), text))
            .unwrap_or_else(|e| panic!("{e}"));
        Bird {
            bird,
            dir,
            spec,
            ns: ns.name().to_string(),
            statics: Vec::new(),
            rr: None,
            extra,
            bfd_interval: None,
        }
    }

    /// Replace the raw extra options of `neighbor`'s protocol and
    /// reconfigure (BIRD restarts the protocol if they changed).
    pub fn set_protocol_options(&mut self, neighbor: &str, options: &str) {
        self.extra.retain(|(a, _)| a != neighbor);
        self.extra.push((neighbor.to_string(), options.to_string()));
        self.reconfigure();
    }

    /// `birdc show protocols all NAME` for a neighbor address.
    pub fn protocol_all(&self, neighbor: &str) -> String {
        self.birdc(&["show", "protocols", "all", &proto_name(neighbor)])
    }

    /// BIRD's own log (stderr), e.g. to see the NOTIFICATIONs it received.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.bird.log_path()).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.bird.pid()
    }

    /// The protocol state line once it has stopped changing (the same on
    /// two reads half a second apart, for at most 10 s): its "since" was
    /// seen to move by a millisecond after the session's first routes had
    /// arrived, with no session change, so a line read that early is not
    /// the one that stays.
    pub fn settled_protocol_line(&self, neighbor: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut last = self.protocol_line(neighbor);
        loop {
            std::thread::sleep(std::time::Duration::from_millis(500));
            let now = self.protocol_line(neighbor);
            if now == last || std::time::Instant::now() > deadline {
                return now;
            }
            last = now;
        }
    }

    /// The protocol state line (`show protocols NAME`).
    pub fn protocol_line(&self, neighbor: &str) -> String {
        match self.bird.protocol_line(&proto_name(neighbor)) {
            Ok(Some(l)) => l,
            Ok(None) => "(no such protocol)".into(),
            Err(e) => e.to_string(),
        }
    }
}

impl PeerDaemon for Bird {
    const KIND: &'static str = "bird";
    const IPV4_NEXT_HOP_OVER_IPV6: bool = true;
    const INSTALLS_KERNEL: bool = true;

    fn start(ns: &Netns, spec: PeerSpec) -> Bird {
        Self::start_with(ns, spec, &[])
    }

    fn announce_prepend(&mut self, prefix: &str, prepend: &[u32]) {
        self.statics.retain(|(p, _)| p != prefix);
        self.statics.push((prefix.to_string(), prepend.to_vec()));
        self.reconfigure();
    }

    fn withdraw(&mut self, prefix: &str) {
        self.statics.retain(|(p, _)| p != prefix);
        self.reconfigure();
    }

    fn rib(&self) -> Vec<PeerRoute> {
        self.bird.rib().unwrap_or_else(|e| panic!("{e}"))
    }

    fn session_state(&self, neighbor: &str) -> Result<(), String> {
        match self.bird.established(&proto_name(neighbor)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(line)) => Err(format!("BIRD {}: {line}", self.ns)),
            Err(e) => Err(format!("BIRD {}: {e}", self.ns)),
        }
    }

    fn kill(&mut self) {
        self.bird.process().kill().unwrap_or_else(|e| panic!("{e}"));
    }
}
