//! FRR driver: zebra + bgpd per namespace with pathspace `-N NAME`; files in
//! `/var/run/frr/NAME/` (owned by frr:frr, as the daemons drop privileges).
//! Both daemons fork (`-d`): we read their pid files and kill by PID.
//! `vtysh -N NAME` needs `root` in group `frrvty` (CI: `usermod -a -G frrvty root`).

use super::peer::{PeerDaemon, PeerRoute, PeerSpec};
use super::{cmd, cmd_ok, require_bin, wait_until, Netns, Proc};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Frr {
    // Drop order: bgpd, zebra, then the run directory.
    bgpd: Proc,
    zebra: Proc,
    name: String,
    dir: PathBuf,
    spec: PeerSpec,
}

impl Frr {
    /// Run vtysh commands (each a `-c`), returning stdout.
    pub fn vtysh(&self, cmds: &[&str]) -> String {
        let mut argv = vec!["vtysh", "-N", &self.name];
        for c in cmds {
            argv.push("-c");
            argv.push(c);
        }
        let out = cmd(&argv);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn vtysh_json(&self, command: &str) -> Value {
        let text = self.vtysh(&[command]);
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    fn render(name: &str, spec: &PeerSpec) -> String {
        let mut c = String::new();
        c += "frr defaults traditional\n";
        c += &format!("hostname {name}\n!\n");
        c += &format!("router bgp {}\n", spec.asn);
        c += &format!(" bgp router-id {}\n", spec.router_id);
        c += " no bgp ebgp-requires-policy\n";
        c += " no bgp network import-check\n";
        c += " no bgp default ipv4-unicast\n";
        c += " timers bgp 3 9\n";
        // No GR capability: a killed FRR's routes must go at once.
        c += " bgp graceful-restart-disable\n";
        for n in &spec.neighbors {
            c += &format!(" neighbor {} remote-as {}\n", n.address, n.asn);
            c += &format!(" neighbor {} timers connect 2\n", n.address);
            c += &format!(
                " neighbor {} update-source {}\n",
                n.address, n.local_address
            );
            c += &format!(" neighbor {} advertisement-interval 0\n", n.address);
        }
        for (fam, afi) in [("ipv4-unicast", "ipv4"), ("ipv6-unicast", "ipv6")] {
            c += &format!(" address-family {afi} unicast\n");
            for n in spec.neighbors.iter().filter(|n| n.families.contains(&fam)) {
                c += &format!("  neighbor {} activate\n", n.address);
                if let (Some(_), "ipv4") = (&n.next_hop_ipv4, afi) {
                    c += &format!(
                        "  neighbor {} route-map KT-NH4-{} out\n",
                        n.address,
                        n.address.replace(':', "-")
                    );
                }
            }
            c += " exit-address-family\n";
        }
        c += "!\n";
        for n in &spec.neighbors {
            if let Some(nh) = &n.next_hop_ipv4 {
                c += &format!(
                    "route-map KT-NH4-{} permit 10\n set ip next-hop {nh}\n!\n",
                    n.address.replace(':', "-")
                );
            }
        }
        c
    }

    fn daemon(ns: &Netns, name: &str, dir: &Path, daemon: &str) -> Proc {
        let bin = format!("/usr/lib/frr/{daemon}");
        let pidfile = dir.join(format!("{daemon}.pid"));
        let log = dir.join(format!("{daemon}.log"));
        let conf = dir.join(format!("{daemon}.conf"));
        ns.run(&[
            &bin,
            "-N",
            name,
            "-d",
            "-F",
            "traditional",
            "-f",
            conf.to_str().unwrap(),
            "-i",
            pidfile.to_str().unwrap(),
            "--log",
            &format!("file:{}", log.display()),
        ]);
        let pid = wait_until(
            Duration::from_secs(10),
            &format!("{daemon} pid file"),
            || {
                std::fs::read_to_string(&pidfile)
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok())
                    .ok_or_else(|| format!("{} missing", pidfile.display()))
            },
        );
        Proc::adopt(&format!("frr-{daemon}"), pid, vec![log])
    }

    fn address_family(prefix: &str) -> &'static str {
        if prefix.contains(':') {
            "ipv6 unicast"
        } else {
            "ipv4 unicast"
        }
    }
}

impl PeerDaemon for Frr {
    const KIND: &'static str = "frr";
    const IPV4_NEXT_HOP_OVER_IPV6: bool = true;
    const INSTALLS_KERNEL: bool = true;

    fn start(ns: &Netns, spec: PeerSpec) -> Frr {
        require_bin("/usr/lib/frr/zebra", "frr");
        require_bin("/usr/lib/frr/bgpd", "frr");
        require_bin("vtysh", "frr");
        let name = ns.name.clone();
        let dir = PathBuf::from(format!("/var/run/frr/{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create FRR run dir");
        std::fs::write(dir.join("bgpd.conf"), Self::render(&name, &spec)).expect("write bgpd.conf");
        std::fs::write(dir.join("zebra.conf"), format!("hostname {name}\n"))
            .expect("write zebra.conf");
        cmd_ok(&["chown", "-R", "frr:frr", dir.to_str().unwrap()]);
        let zebra = Self::daemon(ns, &name, &dir, "zebra");
        let bgpd = Self::daemon(ns, &name, &dir, "bgpd");
        let f = Frr {
            bgpd,
            zebra,
            name,
            dir,
            spec,
        };
        wait_until(
            Duration::from_secs(10),
            "vtysh answers (is root in group frrvty?)",
            || {
                let v = f.vtysh_json("show bgp summary json");
                if v.is_object() {
                    Ok(())
                } else {
                    Err(f.vtysh(&["show bgp summary"]))
                }
            },
        );
        f
    }

    fn announce_prepend(&mut self, prefix: &str, prepend: &[u32]) {
        let mut cmds: Vec<String> = vec!["conf t".into()];
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
        cmds.push(format!("address-family {}", Self::address_family(prefix)));
        cmds.push(network);
        let refs: Vec<&str> = cmds.iter().map(String::as_str).collect();
        let out = self.vtysh(&refs);
        assert!(!out.contains('%'), "vtysh {cmds:?}: {out}");
    }

    fn withdraw(&mut self, prefix: &str) {
        let cmds = [
            "conf t".to_string(),
            format!("router bgp {}", self.spec.asn),
            format!("address-family {}", Self::address_family(prefix)),
            format!("no network {prefix}"),
        ];
        let refs: Vec<&str> = cmds.iter().map(String::as_str).collect();
        let out = self.vtysh(&refs);
        assert!(!out.contains('%'), "vtysh {cmds:?}: {out}");
    }

    fn rib(&self) -> Vec<PeerRoute> {
        let mut out = Vec::new();
        for afi in ["ipv4", "ipv6"] {
            let v = self.vtysh_json(&format!("show bgp {afi} unicast json"));
            let Some(routes) = v.get("routes").and_then(Value::as_object) else {
                continue;
            };
            for (prefix, paths) in routes {
                let mut detail: Option<Value> = None;
                for (i, p) in paths.as_array().into_iter().flatten().enumerate() {
                    let peer = p
                        .get("peerId")
                        .and_then(Value::as_str)
                        .unwrap_or("(unspec)");
                    if peer == "(unspec)" {
                        continue; // locally originated
                    }
                    let mut r = PeerRoute {
                        prefix: prefix.clone(),
                        best: p.get("bestpath").and_then(Value::as_bool).unwrap_or(false),
                        as_path: p
                            .get("path")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .split_whitespace()
                            .filter_map(|a| a.parse().ok())
                            .collect(),
                        next_hops: p
                            .get("nexthops")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter_map(|nh| nh.get("ip").and_then(Value::as_str).map(String::from))
                            .collect(),
                        ..Default::default()
                    };
                    if p.get("pathFrom").and_then(Value::as_str) == Some("internal") {
                        // ORIGINATOR_ID / CLUSTER_LIST are only in the per-prefix view.
                        let d = detail.get_or_insert_with(|| {
                            self.vtysh_json(&format!("show bgp {afi} unicast {prefix} json"))
                        });
                        let dp = d.get("paths").and_then(Value::as_array).and_then(|ps| {
                            ps.iter()
                                .find(|dp| {
                                    dp.get("peer")
                                        .and_then(|x| x.get("peerId"))
                                        .and_then(Value::as_str)
                                        == Some(peer)
                                })
                                .or_else(|| ps.get(i))
                        });
                        if let Some(dp) = dp {
                            r.originator_id = dp
                                .get("originatorId")
                                .and_then(Value::as_str)
                                .map(String::from);
                            r.cluster_list = dp
                                .get("clusterList")
                                .and_then(|c| c.get("list"))
                                .and_then(Value::as_array)
                                .into_iter()
                                .flatten()
                                .filter_map(|x| x.as_str().map(String::from))
                                .collect();
                        }
                    }
                    out.push(r);
                }
            }
        }
        out
    }

    fn session_state(&self, neighbor: &str) -> Result<(), String> {
        let v = self.vtysh_json(&format!("show bgp neighbors {neighbor} json"));
        let state = v
            .get(neighbor)
            .and_then(|n| n.get("bgpState"))
            .and_then(Value::as_str);
        match state {
            Some("Established") => Ok(()),
            _ => Err(format!(
                "FRR {} neighbor {neighbor}: {}",
                self.name,
                state.map(String::from).unwrap_or_else(|| v.to_string())
            )),
        }
    }

    fn kill(&mut self) {
        self.bgpd.kill();
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        // Stop the daemons first (fields drop after this body runs).
        self.bgpd.stop(Duration::from_secs(3));
        self.zebra.stop(Duration::from_secs(3));
        if std::thread::panicking() {
            // Proc's own drop prints the log tails. Keep the logs for post-mortem; the directory name is unique.
            eprintln!("FRR files kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
