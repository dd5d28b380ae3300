//! BIRD 2 driver: `bird -f` in the foreground (we hold its PID), one control
//! socket per instance, announcements as static routes + `birdc configure`.

use super::peer::{PeerDaemon, PeerRoute, PeerSpec};
use super::{require_bin, wait_until, Netns, Proc, TestDir};
use std::time::Duration;

pub struct Bird {
    // Field order = drop order: process before its directory.
    proc: Proc,
    dir: TestDir,
    spec: PeerSpec,
    ns: String,
    /// Originated routes: (prefix, prepend).
    statics: Vec<(String, Vec<u32>)>,
    /// Route-reflector role: (client addresses, cluster id).
    rr: Option<(Vec<String>, String)>,
    /// Raw extra options per neighbor address, written inside that
    /// neighbor's `protocol bgp` block (e.g. `password "x";`, `enable as4 off;`).
    extra: Vec<(String, String)>,
}

/// BIRD protocol name for a neighbor address.
pub fn proto_name(addr: &str) -> String {
    format!("n_{}", addr.replace(['.', ':'], "_"))
}

impl Bird {
    fn ctl(&self) -> String {
        self.dir.file("bird.ctl").display().to_string()
    }

    fn config_path(&self) -> String {
        self.dir.file("bird.conf").display().to_string()
    }

    /// Run a `birdc` command; returns its output.
    pub fn birdc(&self, args: &[&str]) -> String {
        let mut argv = vec!["birdc", "-s"];
        let ctl = self.ctl();
        argv.push(&ctl);
        argv.extend_from_slice(args);
        let out = super::cmd(&argv);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Make this BIRD a route reflector for the given iBGP neighbors.
    pub fn set_rr_clients(&mut self, clients: &[&str], cluster_id: &str) {
        self.rr = Some((
            clients.iter().map(|c| c.to_string()).collect(),
            cluster_id.to_string(),
        ));
        self.reconfigure();
    }

    fn render(
        spec: &PeerSpec,
        statics: &[(String, Vec<u32>)],
        rr: &Option<(Vec<String>, String)>,
        extra: &[(String, String)],
    ) -> String {
        let mut c = String::new();
        c += "log stderr all;\n";
        c += &format!("router id {};\n", spec.router_id);
        c += "protocol device { scan time 10; }\n";
        if spec.install_kernel {
            for fam in ["ipv4", "ipv6"] {
                c += &format!(
                    "protocol kernel k_{fam} {{ {fam} {{ import none; export where source = RTS_BGP; }}; merge paths on; }}\n"
                );
            }
        }
        for fam in ["ipv4", "ipv6"] {
            c += &format!("protocol static s_{fam} {{\n  {fam};\n");
            for (p, prepend) in statics {
                if p.contains(':') != (fam == "ipv6") {
                    continue;
                }
                c += &format!("  route {p} blackhole");
                if !prepend.is_empty() {
                    c += " {";
                    // prepend() puts an ASN in front: prepend in reverse so the
                    // path reads `prepend[0] prepend[1] ...`.
                    for a in prepend.iter().rev() {
                        c += &format!(" bgp_path.prepend({a});");
                    }
                    c += " }";
                }
                c += ";\n";
            }
            c += "}\n";
        }
        for n in &spec.neighbors {
            let ibgp = n.asn == spec.asn;
            c += &format!("protocol bgp {} {{\n", proto_name(&n.address));
            c += &format!("  local {} as {};\n", n.local_address, spec.asn);
            c += &format!("  neighbor {} as {};\n", n.address, n.asn);
            // Defaults are 5 s / 120 s: far too slow for tests.
            c += "  connect delay time 1;\n  connect retry time 2;\n  error wait time 1, 4;\n";
            c += "  hold time 9;\n  keepalive time 3;\n";
            // Else BIRD keeps a dead neighbor's routes as stale for 120 s.
            c += "  graceful restart off;\n";
            for (addr, opts) in extra {
                if *addr == n.address {
                    c += &format!("  {opts}\n");
                }
            }
            if ibgp {
                // Clients and reflector share a LAN in the tests.
                c += "  direct;\n";
                if let Some((clients, cluster)) = rr {
                    if clients.contains(&n.address) {
                        c += &format!("  rr client;\n  rr cluster id {cluster};\n");
                    }
                }
            }
            for fam in &n.families {
                let f = if *fam == "ipv4-unicast" {
                    "ipv4"
                } else {
                    "ipv6"
                };
                c += &format!("  {f} {{ import all; export all;");
                if ibgp {
                    c += " gateway direct;";
                }
                if let (Some(nh), "ipv4") = (&n.next_hop_ipv4, f) {
                    c += &format!(" next hop address {nh};");
                }
                c += " };\n";
            }
            c += "}\n";
        }
        c
    }

    fn reconfigure(&mut self) {
        let text = Self::render(&self.spec, &self.statics, &self.rr, &self.extra);
        std::fs::write(self.config_path(), text).expect("write bird.conf");
        let out = self.birdc(&["configure"]);
        assert!(
            out.contains("Reconfigured") || out.contains("Reconfiguration in progress"),
            "birdc configure failed: {out}"
        );
    }

    /// Start BIRD with raw extra options in some neighbors' `protocol bgp`
    /// blocks: `(neighbor address, options)`, e.g.
    /// `("10.1.0.1", "password \"s3cret\";")`.
    pub fn start_with(ns: &Netns, spec: PeerSpec, extra: &[(&str, &str)]) -> Bird {
        let extra: Vec<(String, String)> = extra
            .iter()
            .map(|(a, o)| (a.to_string(), o.to_string()))
            .collect();
        Self::start_inner(ns, spec, extra)
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
        std::fs::read_to_string(self.dir.file("bird.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    fn start_inner(ns: &Netns, spec: PeerSpec, extra: Vec<(String, String)>) -> Bird {
        require_bin("bird", "bird2");
        require_bin("birdc", "bird2");
        let dir = TestDir::new(&format!("bird-{}", ns.name));
        let conf = dir.file("bird.conf");
        std::fs::write(&conf, Self::render(&spec, &[], &None, &extra)).expect("write bird.conf");
        let check = super::cmd(&["bird", "-p", "-c", conf.to_str().unwrap()]);
        assert!(
            check.status.success(),
            "BIRD rejects generated config: {}\n{}",
            String::from_utf8_lossy(&check.stderr),
            std::fs::read_to_string(&conf).unwrap()
        );
        let ctl = dir.file("bird.ctl").display().to_string();
        let pid = dir.file("bird.pid").display().to_string();
        let proc = Proc::spawn(
            "bird",
            ns,
            &[
                "bird",
                "-f",
                "-c",
                conf.to_str().unwrap(),
                "-s",
                &ctl,
                "-P",
                &pid,
            ],
            &[],
            &dir.file("bird.log"),
        );
        let mut b = Bird {
            proc,
            dir,
            spec,
            ns: ns.name.clone(),
            statics: Vec::new(),
            rr: None,
            extra,
        };
        wait_until(Duration::from_secs(10), "BIRD control socket", || {
            b.proc.assert_alive();
            let out = b.birdc(&["show", "status"]);
            if out.contains("Daemon is up") {
                Ok(())
            } else {
                Err(out)
            }
        });
        b
    }

    /// The protocol state line (`show protocols NAME`).
    pub fn protocol_line(&self, neighbor: &str) -> String {
        let name = proto_name(neighbor);
        self.birdc(&["show", "protocols", &name])
            .lines()
            .find(|l| l.starts_with(&name))
            .unwrap_or("(no such protocol)")
            .to_string()
    }
}

impl PeerDaemon for Bird {
    const KIND: &'static str = "bird";
    const IPV4_NEXT_HOP_OVER_IPV6: bool = true;
    const INSTALLS_KERNEL: bool = true;

    fn start(ns: &Netns, spec: PeerSpec) -> Bird {
        Self::start_inner(ns, spec, Vec::new())
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
        parse_show_route_all(&self.birdc(&["show", "route", "all"]))
    }

    fn session_state(&self, neighbor: &str) -> Result<(), String> {
        let line = self.protocol_line(neighbor);
        if line.contains("Established") {
            Ok(())
        } else {
            Err(format!("BIRD {}: {line}", self.ns))
        }
    }

    fn kill(&mut self) {
        self.proc.kill();
    }
}

/// Parse `birdc show route all`, keeping routes of type BGP.
pub fn parse_show_route_all(text: &str) -> Vec<PeerRoute> {
    let mut out: Vec<PeerRoute> = Vec::new();
    let mut cur: Option<(PeerRoute, bool)> = None; // (route, is_bgp)
    let mut prefix = String::new();
    let flush = |cur: &mut Option<(PeerRoute, bool)>, out: &mut Vec<PeerRoute>| {
        if let Some((r, true)) = cur.take() {
            out.push(r);
        }
    };
    for line in text.lines() {
        if line.starts_with("BIRD ") || line.starts_with("Table ") || line.trim().is_empty() {
            continue;
        }
        let starts_route = line.contains(" [") && !line.starts_with('\t');
        if starts_route {
            flush(&mut cur, &mut out);
            if !line.starts_with(' ') {
                prefix = line.split_whitespace().next().unwrap_or("").to_string();
            }
            // "PREFIX  unicast [proto time] * (100) [AS65002i]"
            let best = line
                .split_once(']')
                .map(|(_, rest)| rest.trim_start().starts_with('*'))
                .unwrap_or(false);
            cur = Some((
                PeerRoute {
                    prefix: prefix.clone(),
                    best,
                    ..Default::default()
                },
                false,
            ));
            continue;
        }
        let Some((r, is_bgp)) = cur.as_mut() else {
            continue;
        };
        let l = line.trim();
        if let Some(v) = l.strip_prefix("Type:") {
            *is_bgp = v.trim().starts_with("BGP");
        } else if let Some(v) = l.strip_prefix("BGP.as_path:") {
            r.as_path = v
                .split_whitespace()
                .filter_map(|a| a.parse().ok())
                .collect();
        } else if let Some(v) = l.strip_prefix("BGP.next_hop:") {
            r.next_hops = v.split_whitespace().map(String::from).collect();
        } else if let Some(v) = l.strip_prefix("BGP.originator_id:") {
            r.originator_id = Some(v.trim().to_string());
        } else if let Some(v) = l.strip_prefix("BGP.cluster_list:") {
            r.cluster_list = v.split_whitespace().map(String::from).collect();
        }
    }
    flush(&mut cur, &mut out);
    out
}
