//! kroute under test: config builder, daemon guard and CLI helpers.

use super::{wait_until, Netns, Proc, TestDir};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_kroute");

/// One `peers:` entry.
#[derive(Clone, Debug)]
pub struct KPeer {
    pub name: String,
    pub address: String,
    pub asn: u32,
    pub families: Vec<&'static str>,
    /// eBGP: `import: all` / `export: all` (RFC 8212: nothing without them).
    pub import_export_all: bool,
    pub allow_as_in: Option<u32>,
    pub route_reflector_client: bool,
    pub next_hop_ipv4: Option<String>,
    pub next_hop_ipv6: Option<String>,
    /// TCP-MD5 password (`password:`).
    pub password: Option<String>,
    /// Per-peer `holdTime:`.
    pub hold_time: Option<u32>,
    /// Raw extra lines for this peer's entry (without indentation), e.g.
    /// `passive: true`.
    pub extra: Vec<String>,
}

impl KPeer {
    /// An eBGP (or iBGP) peer with import/export all.
    pub fn new(name: &str, address: &str, asn: u32, families: &[&'static str]) -> KPeer {
        KPeer {
            name: name.into(),
            address: address.into(),
            asn,
            families: families.to_vec(),
            import_export_all: true,
            allow_as_in: None,
            route_reflector_client: false,
            next_hop_ipv4: None,
            next_hop_ipv6: None,
            password: None,
            hold_time: None,
            extra: Vec::new(),
        }
    }
}

/// The YAML config, built from data so tests can change one field and reload.
#[derive(Clone, Debug)]
pub struct KrouteConfig {
    pub asn: u32,
    pub router_id: String,
    pub max_paths: u32,
    pub multipath_relax: bool,
    pub cluster_id: Option<String>,
    pub peers: Vec<KPeer>,
    /// `advertise: [{prefixes: ...}]`.
    pub advertise: Vec<String>,
    /// `kernel.keepOnExit`.
    pub keep_on_exit: bool,
    /// `router.holdTime`.
    pub hold_time: Option<u32>,
    /// Raw YAML appended at the end of the file (top-level keys, or an
    /// error on purpose).
    pub extra_yaml: String,
}

impl KrouteConfig {
    pub fn new(asn: u32, router_id: &str) -> KrouteConfig {
        KrouteConfig {
            asn,
            router_id: router_id.into(),
            max_paths: 4,
            multipath_relax: false,
            cluster_id: None,
            peers: Vec::new(),
            advertise: Vec::new(),
            keep_on_exit: false,
            hold_time: None,
            extra_yaml: String::new(),
        }
    }

    pub fn peer_mut(&mut self, name: &str) -> &mut KPeer {
        self.peers
            .iter_mut()
            .find(|p| p.name == name)
            .expect("no such kroute peer")
    }

    pub fn to_yaml(&self, socket: &str) -> String {
        let mut y = String::new();
        y += "router:\n";
        y += &format!("  asn: {}\n  routerId: {}\n", self.asn, self.router_id);
        y += "  listen: { address: \"::\", port: 179 }\n";
        y += &format!(
            "  maxPaths: {}\n  multipathRelax: {}\n",
            self.max_paths, self.multipath_relax
        );
        if let Some(c) = &self.cluster_id {
            y += &format!("  clusterId: {c}\n");
        }
        if let Some(h) = self.hold_time {
            y += &format!("  holdTime: {h}\n");
        }
        y += &format!("api:\n  socket: \"{socket}\"\n");
        y += "kernel: { install: true, table: main, protocol: bgp";
        if self.keep_on_exit {
            y += ", keepOnExit: true";
        }
        y += " }\n";
        y += "peers:\n";
        for p in &self.peers {
            y += &format!(
                "  - name: {}\n    address: \"{}\"\n    asn: {}\n",
                p.name, p.address, p.asn
            );
            y += &format!("    families: [{}]\n", p.families.join(", "));
            if p.import_export_all {
                y += "    import: all\n    export: all\n";
            }
            if let Some(n) = p.allow_as_in {
                y += &format!("    allowAsIn: {n}\n");
            }
            if p.route_reflector_client {
                y += "    routeReflectorClient: true\n";
            }
            if let Some(nh) = &p.next_hop_ipv4 {
                y += &format!("    nextHopIpv4: \"{nh}\"\n");
            }
            if let Some(nh) = &p.next_hop_ipv6 {
                y += &format!("    nextHopIpv6: \"{nh}\"\n");
            }
            if let Some(pw) = &p.password {
                y += &format!("    password: \"{pw}\"\n");
            }
            if let Some(h) = p.hold_time {
                y += &format!("    holdTime: {h}\n");
            }
            for line in &p.extra {
                y += &format!("    {line}\n");
            }
        }
        if !self.advertise.is_empty() {
            let list: Vec<String> = self.advertise.iter().map(|p| format!("\"{p}\"")).collect();
            y += &format!("advertise:\n  - prefixes: [{}]\n", list.join(", "));
        }
        y += &self.extra_yaml;
        y
    }
}

/// A neighbor as `show neighbors -o json` reports it.
#[derive(Clone, Debug)]
pub struct KNeighbor {
    pub name: String,
    pub address: String,
    pub state: String,
    pub prefixes_received: u64,
    pub raw: Value,
}

/// A path as `show routes -o json` reports it.
#[derive(Clone, Debug)]
pub struct KRoute {
    pub prefix: String,
    pub best: bool,
    pub installed: bool,
    pub next_hops: Vec<String>,
    pub as_path: String,
    pub peer: String,
    pub raw: Value,
}

pub struct Kroute {
    proc: Option<Proc>,
    dir: TestDir,
    ns: String,
    pub config: KrouteConfig,
}

fn s(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

impl Kroute {
    pub fn socket(&self) -> String {
        self.dir.file("kroute.sock").display().to_string()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.file("kroute.yaml")
    }

    /// Write the current `config` to the config file (no reload).
    pub fn write_config(&self) {
        std::fs::write(self.config_path(), self.config.to_yaml(&self.socket()))
            .expect("write kroute.yaml");
    }

    /// Write the config and start `kroute daemon -c FILE` in `ns`; returns
    /// once the API answers.
    pub fn start(ns: &Netns, config: KrouteConfig) -> Kroute {
        assert!(
            std::path::Path::new(BIN).exists(),
            "kroute binary missing: {BIN}"
        );
        let dir = TestDir::new(&format!("kroute-{}", ns.name));
        let mut k = Kroute {
            proc: None,
            dir,
            ns: ns.name.clone(),
            config,
        };
        k.write_config();
        k.spawn(ns);
        k
    }

    fn spawn(&mut self, ns: &Netns) {
        let _ = std::fs::remove_file(self.socket());
        let conf = self.config_path().display().to_string();
        let log = self.dir.file(&format!("kroute-{}.log", super::unique()));
        self.proc = Some(Proc::spawn(
            "kroute",
            ns,
            &[BIN, "daemon", "-c", &conf],
            &[("RUST_LOG", "info")],
            &log,
        ));
        wait_until(Duration::from_secs(15), "kroute API socket", || {
            self.proc.as_mut().unwrap().assert_alive();
            let out = self.cli_raw(&["show", "neighbors", "-o", "json"]);
            if out.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).into_owned())
            }
        });
    }

    /// SIGTERM and wait for exit (kroute should clean up on SIGTERM).
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop(Duration::from_secs(10));
            // Its log stays in the test dir (kept if the test fails).
        }
    }

    /// SIGTERM, wait up to `grace` (then SIGKILL); returns the exit status.
    pub fn stop_status(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        self.proc.take().and_then(|mut p| p.stop_status(grace))
    }

    /// The daemon's PID (None when stopped).
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(|p| p.pid())
    }

    /// Panic with the log tail if the daemon has exited.
    pub fn assert_alive(&mut self) {
        if let Some(p) = self.proc.as_mut() {
            p.assert_alive();
        } else {
            panic!("kroute is not running");
        }
    }

    /// SIGKILL at once (a crash: no NOTIFICATION, no kernel cleanup).
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// Start the daemon again (after `stop` or `kill`) with the current
    /// `config`; returns once the API answers.
    pub fn start_again(&mut self, ns: &Netns) {
        assert!(self.proc.is_none(), "kroute is still running");
        self.write_config();
        self.spawn(ns);
    }

    /// The tails of all daemon logs of this instance (every start), for
    /// failure messages.
    pub fn log_tails(&self, n: usize) -> String {
        let mut logs: Vec<PathBuf> = std::fs::read_dir(&self.dir.path)
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "log"))
                    .collect()
            })
            .unwrap_or_default();
        logs.sort();
        logs.iter()
            .map(|l| format!("----- {} -----\n{}\n", l.display(), super::tail(l, n)))
            .collect()
    }

    /// Stop, then start again with the current `config`.
    pub fn restart(&mut self, ns: &Netns) {
        self.stop();
        self.write_config();
        self.spawn(ns);
    }

    /// Write the current `config` and ask the daemon to reload it.
    pub fn reload(&self) {
        self.write_config();
        self.cli_ok(&["reload"]);
    }

    /// Run a CLI command, whatever its exit status.
    pub fn cli_raw(&self, args: &[&str]) -> std::process::Output {
        let sock = self.socket();
        Command::new(BIN)
            .args(["--socket", &sock])
            .args(args)
            .output()
            .expect("run kroute CLI")
    }

    /// Run a CLI command; panic (with the daemon log tail) on failure.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli_raw(args);
        if !out.status.success() {
            panic!(
                "kroute {args:?} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run a CLI command with `-o json` and parse its output.
    pub fn cli_json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend_from_slice(&["-o", "json"]);
        let text = self.cli_ok(&a);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("kroute {a:?}: invalid JSON ({e}): {text}"))
    }

    pub fn neighbors(&self) -> Vec<KNeighbor> {
        let v = self.cli_json(&["show", "neighbors"]);
        v.as_array()
            .unwrap_or_else(|| panic!("show neighbors: not an array: {v}"))
            .iter()
            .map(|n| KNeighbor {
                name: s(n, "name"),
                address: s(n, "address"),
                state: s(n, "state"),
                prefixes_received: n
                    .get("prefixesReceived")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
                raw: n.clone(),
            })
            .collect()
    }

    pub fn neighbor(&self, name: &str) -> Option<KNeighbor> {
        self.neighbors().into_iter().find(|n| n.name == name)
    }

    /// `show routes ARGS -o json`.
    pub fn routes(&self, args: &[&str]) -> Vec<KRoute> {
        let mut a = vec!["show", "routes"];
        a.extend_from_slice(args);
        let v = self.cli_json(&a);
        v.as_array()
            .unwrap_or_else(|| panic!("show routes: not an array: {v}"))
            .iter()
            .map(|r| KRoute {
                prefix: s(r, "prefix"),
                best: r.get("best").and_then(Value::as_bool).unwrap_or(false),
                installed: r.get("installed").and_then(Value::as_bool).unwrap_or(false),
                next_hops: r
                    .get("nextHops")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
                as_path: s(r, "asPath"),
                peer: s(r, "peer"),
                raw: r.clone(),
            })
            .collect()
    }

    pub fn fib(&self) -> Value {
        self.cli_json(&["show", "fib"])
    }

    /// `explain PREFIX` (human text).
    pub fn explain_text(&self, prefix: &str) -> String {
        self.cli_ok(&["explain", prefix])
    }

    /// Ok when neighbor `name` is Established.
    pub fn established(&self, name: &str) -> Result<(), String> {
        match self.neighbor(name) {
            Some(n) if n.state == "Established" => Ok(()),
            Some(n) => Err(format!("kroute neighbor {name}: {}", n.raw)),
            None => Err(format!(
                "kroute has no neighbor {name}: {:?}",
                self.neighbors()
            )),
        }
    }

    pub fn namespace(&self) -> &str {
        &self.ns
    }
}
