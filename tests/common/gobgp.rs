//! GoBGP driver: `gobgpd` in the foreground with its gRPC API on the
//! namespace's own loopback (127.0.0.1:50051 in every namespace), the `gobgp`
//! CLI with `-j` for JSON. GoBGP never installs routes in the kernel.

use super::peer::{PeerDaemon, PeerRoute, PeerSpec};
use super::{require_bin, wait_until, Netns, Proc, TestDir};
use serde_json::Value;
use std::time::Duration;

pub const API_PORT: &str = "50051";

pub struct GoBgp {
    proc: Proc,
    dir: TestDir,
    ns: String,
    spec: PeerSpec,
}

impl GoBgp {
    /// Run the `gobgp` CLI inside the namespace; returns (success, stdout+stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String) {
        let mut argv = vec![
            "ip",
            "netns",
            "exec",
            &self.ns,
            "gobgp",
            "-u",
            "127.0.0.1",
            "-p",
            API_PORT,
        ];
        argv.extend_from_slice(args);
        let out = super::cmd(&argv);
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    fn cli_ok(&self, args: &[&str]) -> String {
        let (ok, out) = self.cli(args);
        assert!(ok, "gobgp {args:?} failed: {out}");
        out
    }

    fn render(spec: &PeerSpec) -> String {
        let mut c = String::new();
        c += "[global.config]\n";
        c += &format!(
            "  as = {}\n  router-id = \"{}\"\n  port = 179\n",
            spec.asn, spec.router_id
        );
        for n in &spec.neighbors {
            c += "[[neighbors]]\n  [neighbors.config]\n";
            c += &format!(
                "    neighbor-address = \"{}\"\n    peer-as = {}\n",
                n.address, n.asn
            );
            c += &format!(
                "  [neighbors.transport.config]\n    local-address = \"{}\"\n",
                n.local_address
            );
            c += "  [neighbors.timers.config]\n    connect-retry = 2\n    hold-time = 9\n    keepalive-interval = 3\n";
            for fam in &n.families {
                c += &format!(
                    "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{fam}\"\n"
                );
            }
        }
        c
    }

    fn afi(prefix: &str) -> &'static str {
        if prefix.contains(':') {
            "ipv6"
        } else {
            "ipv4"
        }
    }
}

impl PeerDaemon for GoBgp {
    const KIND: &'static str = "gobgp";
    const IPV4_NEXT_HOP_OVER_IPV6: bool = false;
    const INSTALLS_KERNEL: bool = false;

    fn start(ns: &Netns, spec: PeerSpec) -> GoBgp {
        require_bin("gobgpd", "gobgpd");
        require_bin("gobgp", "gobgpd");
        let dir = TestDir::new(&format!("gobgp-{}", ns.name));
        let conf = dir.file("gobgpd.toml");
        std::fs::write(&conf, Self::render(&spec)).expect("write gobgpd.toml");
        let api = format!("127.0.0.1:{API_PORT}");
        let proc = Proc::spawn(
            "gobgpd",
            ns,
            &[
                "gobgpd",
                "-f",
                conf.to_str().unwrap(),
                "--api-hosts",
                &api,
                "--log-level",
                "info",
            ],
            &[],
            &dir.file("gobgpd.log"),
        );
        let mut g = GoBgp {
            proc,
            dir,
            ns: ns.name.clone(),
            spec,
        };
        wait_until(Duration::from_secs(10), "gobgpd API", || {
            g.proc.assert_alive();
            let (ok, out) = g.cli(&["global", "-j"]);
            if ok {
                Ok(())
            } else {
                Err(out)
            }
        });
        g
    }

    fn announce_prepend(&mut self, prefix: &str, prepend: &[u32]) {
        let mut args = vec!["global", "rib", "add", "-a", Self::afi(prefix), prefix];
        let path: String = prepend
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        if !prepend.is_empty() {
            args.extend_from_slice(&["aspath", &path]);
        }
        self.cli_ok(&args);
    }

    fn withdraw(&mut self, prefix: &str) {
        self.cli_ok(&["global", "rib", "del", "-a", Self::afi(prefix), prefix]);
    }

    fn rib(&self) -> Vec<PeerRoute> {
        let mut out = Vec::new();
        for afi in ["ipv4", "ipv6"] {
            let (ok, text) = self.cli(&["global", "rib", "-a", afi, "-j"]);
            if !ok {
                continue;
            }
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let Some(map) = v.as_object() else { continue };
            for (prefix, paths) in map {
                for p in paths.as_array().into_iter().flatten() {
                    if p.get("neighbor-ip").and_then(Value::as_str).is_none() {
                        continue; // locally originated
                    }
                    out.push(parse_path(prefix, p));
                }
            }
        }
        out
    }

    fn session_state(&self, neighbor: &str) -> Result<(), String> {
        let (ok, text) = self.cli(&["neighbor", "-j"]);
        if !ok {
            return Err(text);
        }
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        for n in v.as_array().into_iter().flatten() {
            let addr = n
                .pointer("/state/neighbor_address")
                .or_else(|| n.pointer("/conf/neighbor_address"))
                .and_then(Value::as_str);
            if addr == Some(neighbor) {
                let st = n
                    .pointer("/state/session_state")
                    .cloned()
                    .unwrap_or(Value::Null);
                // apipb.PeerState.SessionState: 6 = ESTABLISHED.
                return if st == 6
                    || st
                        .as_str()
                        .is_some_and(|s| s.eq_ignore_ascii_case("established"))
                {
                    Ok(())
                } else {
                    Err(format!(
                        "GoBGP {} neighbor {neighbor}: session_state {st}",
                        self.ns
                    ))
                };
            }
        }
        Err(format!(
            "GoBGP {}: no neighbor {neighbor} in {text}",
            self.ns
        ))
    }

    fn kill(&mut self) {
        self.proc.kill();
    }
}

fn parse_path(prefix: &str, p: &Value) -> PeerRoute {
    let mut r = PeerRoute {
        prefix: prefix.to_string(),
        best: p.get("best").and_then(Value::as_bool).unwrap_or(false),
        ..Default::default()
    };
    for a in p
        .get("attrs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match a.get("type").and_then(Value::as_u64) {
            Some(2) => {
                for seg in a
                    .get("as_paths")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    for asn in seg
                        .get("asns")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(n) = asn.as_u64() {
                            r.as_path.push(n as u32);
                        }
                    }
                }
            }
            Some(3) | Some(14) => {
                if let Some(nh) = a.get("nexthop").and_then(Value::as_str) {
                    r.next_hops.push(nh.to_string());
                }
                if let Some(ll) = a.get("linklocal_nexthop").and_then(Value::as_str) {
                    r.next_hops.push(ll.to_string());
                }
            }
            Some(9) => r.originator_id = a.get("value").and_then(Value::as_str).map(String::from),
            Some(10) => {
                r.cluster_list = a
                    .get("value")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            }
            _ => {}
        }
    }
    r
}
