//! GoBGP: `gobgpd` in the foreground with its gRPC API on the namespace's
//! own loopback, and the `gobgp` CLI (run inside the same namespace).
//! GoBGP never installs routes in the kernel.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use crate::cmd;
use crate::error::{io, Error, Result};
use crate::netns::Netns;
use crate::process::{Process, Spawn};
use crate::rib::BgpPath;

const START_TIMEOUT: Duration = Duration::from_secs(10);
/// The API address in every namespace (each has its own loopback).
pub const DEFAULT_API: &str = "127.0.0.1:50051";

/// `[neighbors.timers.config]`, seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    pub connect_retry: u32,
    pub hold_time: u32,
    pub keepalive_interval: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Neighbor {
    pub address: String,
    pub peer_as: u32,
    pub description: Option<String>,
    /// `[neighbors.transport.config] local-address`.
    pub local_address: Option<String>,
    /// `remote-port` (179 when None).
    pub remote_port: Option<u16>,
    /// `passive-mode = true`.
    pub passive: bool,
    pub timers: Option<Timers>,
    /// `afi-safi-name`s: `ipv4-unicast`, `ipv6-unicast`.
    pub families: Vec<String>,
}

/// Settings [`GobgpConfig::render_with`] gives every neighbor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// Graceful restart (RFC 4724) on for the neighbor and each of its
    /// families, advertising this restart time in seconds (as Cilium's
    /// `gracefulRestart: {enabled: true, restartTimeSeconds: N}`). Start
    /// gobgpd with `-r` after a restart to set the R bit.
    pub graceful_restart: Option<u16>,
    /// `admin-down = true`: no session until `gobgp neighbor ADDR enable`
    /// (so routes can be added first, as a restarted CNI agent does).
    pub admin_down: bool,
}

/// gobgpd.toml.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GobgpConfig {
    pub asn: u32,
    pub router_id: String,
    /// `port` of `[global.config]`: where it listens (-1: not at all, when
    /// another daemon owns 179 in the namespace); GoBGP's 179 when None.
    pub port: Option<i32>,
    pub neighbors: Vec<Neighbor>,
}

impl GobgpConfig {
    pub fn render(&self) -> String {
        self.render_with(&RenderOptions::default())
    }

    /// [`GobgpConfig::render`] with the options for every neighbor.
    pub fn render_with(&self, o: &RenderOptions) -> String {
        let mut t = String::from("[global.config]\n");
        let _ = writeln!(
            t,
            "  as = {}\n  router-id = \"{}\"",
            self.asn, self.router_id
        );
        if let Some(p) = self.port {
            let _ = writeln!(t, "  port = {p}");
        }
        for n in &self.neighbors {
            t += "[[neighbors]]\n  [neighbors.config]\n";
            let _ = writeln!(
                t,
                "    neighbor-address = \"{}\"\n    peer-as = {}",
                n.address, n.peer_as
            );
            if o.admin_down {
                t += "    admin-down = true\n";
            }
            if let Some(d) = &n.description {
                let _ = writeln!(t, "    description = \"{d}\"");
            }
            if n.local_address.is_some() || n.remote_port.is_some() || n.passive {
                t += "  [neighbors.transport.config]\n";
                if let Some(a) = &n.local_address {
                    let _ = writeln!(t, "    local-address = \"{a}\"");
                }
                if let Some(p) = n.remote_port {
                    let _ = writeln!(t, "    remote-port = {p}");
                }
                if n.passive {
                    t += "    passive-mode = true\n";
                }
            }
            if let Some(tm) = n.timers {
                let _ = writeln!(
                    t,
                    "  [neighbors.timers.config]\n    connect-retry = {}\n    hold-time = {}\n    keepalive-interval = {}",
                    tm.connect_retry, tm.hold_time, tm.keepalive_interval
                );
            }
            if let Some(secs) = o.graceful_restart {
                let _ = writeln!(
                    t,
                    "  [neighbors.graceful-restart.config]\n    enabled = true\n    restart-time = {secs}"
                );
            }
            for f in &n.families {
                let _ = writeln!(
                    t,
                    "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{f}\""
                );
                if o.graceful_restart.is_some() {
                    t += "    [neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true\n";
                }
            }
        }
        t
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct GobgpSpec {
    /// Where gobgpd.toml and gobgpd.log go.
    pub dir: PathBuf,
    pub config: String,
    /// `--api-hosts`, also where the CLI connects.
    pub api: String,
    /// `--log-level`.
    pub log_level: String,
    /// Further gobgpd arguments (e.g. `--pprof-disable`, `-p`).
    pub args: Vec<String>,
    /// Its own session, to outlive this program once [`Gobgp::detach`]ed.
    pub detached: bool,
    /// Its own process group (a Ctrl-C reaches only us).
    pub own_process_group: bool,
}

impl GobgpSpec {
    pub fn new(dir: &Path, config: String) -> GobgpSpec {
        GobgpSpec {
            dir: dir.to_path_buf(),
            config,
            api: DEFAULT_API.to_string(),
            log_level: "info".into(),
            args: Vec::new(),
            detached: false,
            own_process_group: false,
        }
    }
}

/// A running gobgpd.
#[derive(Debug)]
pub struct Gobgp {
    process: Process,
    cli: Cli,
    log: PathBuf,
}

impl Gobgp {
    /// Write the config, start gobgpd in `ns` and wait until its API
    /// answers.
    pub fn start(ns: &Netns, spec: &GobgpSpec) -> Result<Gobgp> {
        cmd::require_program("gobgpd", "gobgpd")?;
        cmd::require_program("gobgp", "gobgpd")?;
        let conf = spec.dir.join("gobgpd.toml");
        std::fs::write(&conf, &spec.config).map_err(io(format!("write {}", conf.display())))?;
        let log = spec.dir.join("gobgpd.log");
        let conf_s = conf.to_string_lossy().into_owned();
        let mut argv: Vec<&str> = vec![
            "gobgpd",
            "-f",
            &conf_s,
            "--api-hosts",
            &spec.api,
            "--log-level",
            &spec.log_level,
        ];
        argv.extend(spec.args.iter().map(String::as_str));
        let mut spawn = Spawn::new("gobgpd", &argv).netns(ns).log(&log);
        if spec.detached {
            spawn = spawn.detached();
        } else if spec.own_process_group {
            spawn = spawn.own_process_group();
        }
        let mut process = spawn.start()?;
        let cli = Cli::new(ns.name(), &spec.api);
        process.wait_ready("gobgpd's API", START_TIMEOUT, || cli.run(&["global"]))?;
        Ok(Gobgp { process, cli, log })
    }

    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The CLI bound to this gobgpd.
    pub fn cli(&self) -> &Cli {
        &self.cli
    }

    pub fn stop(&mut self, grace: Duration) -> Result<()> {
        self.process.stop(grace).map(|_| ())
    }

    /// Keep gobgpd running after this value is gone.
    pub fn detach(self) -> crate::process::ProcId {
        self.process.detach()
    }
}

/// `gobgp -u HOST -p PORT ...` inside a namespace.
#[derive(Debug, Clone)]
pub struct Cli {
    ns: String,
    host: String,
    port: String,
}

impl Cli {
    /// For the gobgpd in namespace `ns` whose API is `api` (`HOST:PORT`).
    pub fn new(ns: &str, api: &str) -> Cli {
        let (host, port) = api.rsplit_once(':').unwrap_or((api, "50051"));
        Cli {
            ns: ns.to_string(),
            host: host.trim_matches(['[', ']']).to_string(),
            port: port.to_string(),
        }
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new("ip");
        c.args([
            "netns", "exec", &self.ns, "gobgp", "-u", &self.host, "-p", &self.port,
        ])
        .args(args);
        c
    }

    /// Its output, whatever its exit status.
    pub fn output(&self, args: &[&str]) -> Result<Output> {
        cmd::output_of(&mut self.command(args), Some(&self.ns))
    }

    /// An error unless it exits 0; stdout.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        cmd::run_cmd(&mut self.command(args), Some(&self.ns))
    }

    /// `ARGS -j`, parsed.
    pub fn json(&self, args: &[&str]) -> Result<Value> {
        let mut a = args.to_vec();
        a.push("-j");
        let text = self.run(&a)?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| Error::Parse {
            what: format!("gobgp {}", a.join(" ")),
            detail: e.to_string(),
            text,
        })
    }
}

impl Cli {
    /// Every path learned from a neighbor (locally originated ones
    /// skipped), both families.
    pub fn rib(&self) -> Result<Vec<BgpPath>> {
        let mut out = Vec::new();
        for afi in ["ipv4", "ipv6"] {
            let v = self.json(&["global", "rib", "-a", afi])?;
            for (prefix, paths) in v.as_object().into_iter().flatten() {
                for p in paths.as_array().into_iter().flatten() {
                    if p.get("neighbor-ip").and_then(Value::as_str).is_none() {
                        continue; // locally originated
                    }
                    out.push(parse_path(prefix, p));
                }
            }
        }
        Ok(out)
    }

    /// The session state of `neighbor` (`established`, `active`, ...),
    /// None if gobgpd has no such neighbor.
    pub fn neighbor_state(&self, neighbor: &str) -> Result<Option<String>> {
        Ok(parse_neighbor_state(&self.json(&["neighbor"])?, neighbor))
    }
}

/// `session_state` of one neighbor in `gobgp neighbor -j`, lower case. GoBGP
/// prints it as apipb.PeerState.SessionState, a number (6 = ESTABLISHED) or
/// its name depending on the version.
pub fn parse_neighbor_state(neighbors: &Value, neighbor: &str) -> Option<String> {
    const NAMES: [&str; 7] = [
        "unknown",
        "idle",
        "connect",
        "active",
        "opensent",
        "openconfirm",
        "established",
    ];
    let n = neighbors.as_array()?.iter().find(|n| {
        n.pointer("/state/neighbor_address")
            .or_else(|| n.pointer("/conf/neighbor_address"))
            .and_then(Value::as_str)
            == Some(neighbor)
    })?;
    Some(match n.pointer("/state/session_state") {
        Some(Value::Number(x)) => x
            .as_u64()
            .and_then(|i| NAMES.get(i as usize))
            .map_or_else(|| x.to_string(), |s| s.to_string()),
        Some(Value::String(s)) => s.to_ascii_lowercase(),
        _ => "unknown".to_string(),
    })
}

/// One path of `gobgp global rib -j` (attributes by RFC 4271 type code).
pub fn parse_path(prefix: &str, p: &Value) -> BgpPath {
    let mut r = BgpPath {
        prefix: prefix.to_string(),
        best: p.get("best").and_then(Value::as_bool).unwrap_or(false),
        ..Default::default()
    };
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(String::from))
            .collect()
    };
    for a in p
        .get("attrs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match a.get("type").and_then(Value::as_u64) {
            // AS_PATH
            Some(2) => {
                let segs = a
                    .get("as_paths")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten();
                for seg in segs {
                    let asns = seg
                        .get("asns")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten();
                    r.as_path.extend(
                        asns.filter_map(|n| n.as_u64().and_then(|n| u32::try_from(n).ok())),
                    );
                }
            }
            // NEXT_HOP, MP_REACH_NLRI
            Some(3) | Some(14) => {
                for key in ["nexthop", "linklocal_nexthop"] {
                    if let Some(nh) = a.get(key).and_then(Value::as_str) {
                        r.next_hops.push(nh.to_string());
                    }
                }
            }
            // ORIGINATOR_ID, CLUSTER_LIST (RFC 4456)
            Some(9) => r.originator_id = a.get("value").and_then(Value::as_str).map(String::from),
            Some(10) => r.cluster_list = strings(a.get("value")),
            _ => {}
        }
    }
    r
}

/// Sum of `accepted` over the first neighbor's families in `gobgp neighbor -j`.
pub fn parse_accepted(v: &Value) -> Option<u64> {
    let n = v.as_array()?.first()?;
    let fams = n.get("afi_safis")?.as_array()?;
    Some(
        fams.iter()
            .filter_map(|f| f.get("state")?.get("accepted")?.as_u64())
            .sum(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_text() {
        let c = GobgpConfig {
            asn: 65001,
            router_id: "10.0.0.2".into(),
            port: Some(1790),
            neighbors: vec![Neighbor {
                address: "::1".into(),
                peer_as: 65000,
                description: Some("kroute".into()),
                local_address: Some("::1".into()),
                remote_port: Some(179),
                timers: Some(Timers {
                    connect_retry: 1,
                    hold_time: 9,
                    keepalive_interval: 3,
                }),
                families: vec!["ipv4-unicast".into(), "ipv6-unicast".into()],
                ..Default::default()
            }],
        };
        let want = "[global.config]\n  as = 65001\n  router-id = \"10.0.0.2\"\n  port = 1790\n\
[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"::1\"\n    peer-as = 65000\n    \
description = \"kroute\"\n  [neighbors.transport.config]\n    local-address = \"::1\"\n    \
remote-port = 179\n  [neighbors.timers.config]\n    connect-retry = 1\n    hold-time = 9\n    \
keepalive-interval = 3\n  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      \
afi-safi-name = \"ipv4-unicast\"\n  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      \
afi-safi-name = \"ipv6-unicast\"\n";
        assert_eq!(c.render(), want);
    }

    #[test]
    fn graceful_restart_for_the_neighbor_and_each_family() {
        let c = GobgpConfig {
            asn: 1,
            router_id: "1.1.1.1".into(),
            port: None,
            neighbors: vec![Neighbor {
                address: "10.0.0.1".into(),
                peer_as: 2,
                families: vec!["ipv4-unicast".into(), "ipv6-unicast".into()],
                ..Default::default()
            }],
        };
        assert!(!c.render().contains("graceful"));
        let t = c.render_with(&RenderOptions {
            graceful_restart: Some(120),
            admin_down: true,
        });
        assert!(
            t.contains("    peer-as = 2\n    admin-down = true\n"),
            "{t}"
        );
        assert!(
            t.contains("  [neighbors.graceful-restart.config]\n    enabled = true\n    restart-time = 120\n"),
            "{t}"
        );
        assert_eq!(
            t.matches("[neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true\n")
                .count(),
            2,
            "{t}"
        );
    }

    #[test]
    fn passive_neighbor_without_port() {
        let c = GobgpConfig {
            asn: 1,
            router_id: "1.1.1.1".into(),
            port: None,
            neighbors: vec![Neighbor {
                address: "10.0.0.1".into(),
                peer_as: 2,
                passive: true,
                ..Default::default()
            }],
        };
        let t = c.render();
        assert!(!t.contains("port ="), "{t}");
        assert!(!t.contains("remote-port"), "{t}");
        assert!(t.contains("[neighbors.transport.config]\n    passive-mode = true\n"));
        assert!(!t.contains("timers"));
    }

    #[test]
    fn cli_splits_the_api_address() {
        let c = Cli::new("ns1", "127.0.0.1:50052");
        assert_eq!((c.host.as_str(), c.port.as_str()), ("127.0.0.1", "50052"));
        let c = Cli::new("ns1", "[::1]:50051");
        assert_eq!(c.host, "::1");
    }

    #[test]
    fn reads_a_path() {
        let p = serde_json::json!({"best": true, "neighbor-ip": "fd00:1::1", "attrs": [
            {"type": 2, "as_paths": [{"type": 2, "asns": [65001, 65010]}]},
            {"type": 14, "nexthop": "fd00:1::1", "linklocal_nexthop": "fe80::1"},
            {"type": 9, "value": "10.50.0.2"},
            {"type": 10, "value": ["10.255.0.1"]}
        ]});
        assert_eq!(
            parse_path("fd00:100::/48", &p),
            BgpPath {
                prefix: "fd00:100::/48".into(),
                next_hops: vec!["fd00:1::1".into(), "fe80::1".into()],
                as_path: vec![65001, 65010],
                originator_id: Some("10.50.0.2".into()),
                cluster_list: vec!["10.255.0.1".into()],
                best: true,
            }
        );
    }

    #[test]
    fn neighbor_state_as_number_or_name() {
        let v = serde_json::json!([
            {"conf": {"neighbor_address": "10.1.0.1"}, "state": {"session_state": 6}},
            {"state": {"neighbor_address": "10.2.0.1", "session_state": "ACTIVE"}}
        ]);
        assert_eq!(
            parse_neighbor_state(&v, "10.1.0.1").as_deref(),
            Some("established")
        );
        assert_eq!(
            parse_neighbor_state(&v, "10.2.0.1").as_deref(),
            Some("active")
        );
        assert_eq!(parse_neighbor_state(&v, "10.3.0.1"), None);
    }

    #[test]
    fn accepted_sums_families() {
        let v = serde_json::json!([{"afi_safis": [
            {"state": {"accepted": 3}}, {"state": {"accepted": 4}}]}]);
        assert_eq!(parse_accepted(&v), Some(7));
        assert_eq!(parse_accepted(&serde_json::json!([])), None);
    }
}
