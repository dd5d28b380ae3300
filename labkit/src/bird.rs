//! BIRD 2: `bird -f` in the foreground (the PID we start is BIRD's), one
//! control socket per instance (`-s`), `birdc -s CTL ...` to query and to
//! reconfigure.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::cmd;
use crate::error::{io, Error, Result};
use crate::netns::Netns;
use crate::process::{Process, Spawn};
use crate::rib::BgpPath;
use crate::Afi;

const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Where BIRD logs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Log {
    /// `log stderr all;` (stderr goes to the process log).
    #[default]
    StderrAll,
    /// `log "FILE" { CLASSES };`, e.g. classes `warning, error, fatal`.
    File { path: PathBuf, classes: String },
}

/// A `protocol kernel`: exports best routes to the kernel's main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelProtocol {
    pub name: String,
    pub afi: Afi,
    /// Filter expressions: `none`, `all`, `where source = RTS_BGP`.
    pub import: String,
    pub export: String,
    pub merge_paths: bool,
}

/// One route of a [`StaticProtocol`]: a blackhole, with attribute
/// statements (e.g. `bgp_path.prepend(65010);`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticRoute {
    pub prefix: String,
    pub attrs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticProtocol {
    pub name: String,
    pub afi: Afi,
    pub routes: Vec<StaticRoute>,
}

/// One channel of a BGP protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub afi: Afi,
    pub import: String,
    pub export: String,
    /// Further statements, e.g. `gateway direct;`, `next hop address X;`.
    pub options: Vec<String>,
}

impl Channel {
    /// `import all; export all;`
    pub fn all(afi: Afi) -> Channel {
        Channel {
            afi,
            import: "all".into(),
            export: "all".into(),
            options: Vec::new(),
        }
    }
}

/// A `protocol bgp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpProtocol {
    pub name: String,
    pub local_address: String,
    pub local_as: u32,
    pub neighbor_address: String,
    pub neighbor_as: u32,
    /// Statements inside the protocol, each with its `;`, e.g.
    /// `passive on;`, `hold time 9;`, `password "x";`.
    pub options: Vec<String>,
    pub channels: Vec<Channel>,
}

/// A BIRD 2 configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BirdConfig {
    pub log: Log,
    pub router_id: String,
    /// `protocol device { scan time N; }` (BIRD's default when None).
    pub device_scan_time: Option<u32>,
    pub kernel: Vec<KernelProtocol>,
    pub statics: Vec<StaticProtocol>,
    pub bgp: Vec<BgpProtocol>,
}

impl BirdConfig {
    pub fn render(&self) -> String {
        let mut c = String::new();
        match &self.log {
            Log::StderrAll => c += "log stderr all;\n",
            Log::File { path, classes } => {
                let _ = writeln!(c, "log \"{}\" {{ {classes} }};", path.display());
            }
        }
        let _ = writeln!(c, "router id {};", self.router_id);
        match self.device_scan_time {
            Some(t) => {
                let _ = writeln!(c, "protocol device {{ scan time {t}; }}");
            }
            None => c += "protocol device { }\n",
        }
        for k in &self.kernel {
            let _ = writeln!(
                c,
                "protocol kernel {} {{ {} {{ import {}; export {}; }};{} }}",
                k.name,
                k.afi.name(),
                k.import,
                k.export,
                if k.merge_paths {
                    " merge paths on;"
                } else {
                    ""
                }
            );
        }
        for s in &self.statics {
            let _ = writeln!(c, "protocol static {} {{\n  {};", s.name, s.afi.name());
            for r in &s.routes {
                let _ = write!(c, "  route {} blackhole", r.prefix);
                if !r.attrs.is_empty() {
                    let _ = write!(c, " {{ {} }}", r.attrs.join(" "));
                }
                c += ";\n";
            }
            c += "}\n";
        }
        for b in &self.bgp {
            let _ = writeln!(c, "protocol bgp {} {{", b.name);
            let _ = writeln!(c, "  local {} as {};", b.local_address, b.local_as);
            let _ = writeln!(c, "  neighbor {} as {};", b.neighbor_address, b.neighbor_as);
            for o in &b.options {
                let _ = writeln!(c, "  {o}");
            }
            for ch in &b.channels {
                let _ = write!(
                    c,
                    "  {} {{ import {}; export {};",
                    ch.afi.name(),
                    ch.import,
                    ch.export
                );
                for o in &ch.options {
                    let _ = write!(c, " {o}");
                }
                c += " };\n";
            }
            c += "}\n";
        }
        c
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct BirdSpec {
    /// Where bird.conf, bird.ctl, bird.pid and bird.log go.
    pub dir: PathBuf,
    pub config: String,
    /// `-R`: start in graceful restart recovery (after a crash or a
    /// restart with `graceful restart on`): BIRD then sets the R and F bits
    /// and its kernel protocols wait for the BGP End-of-RIBs before they
    /// prune the routes the previous run left (RFC 4724 §4.1).
    pub recovery: bool,
    /// Its own session, to outlive this program once [`Bird::detach`]ed.
    pub detached: bool,
    /// Its own process group (a Ctrl-C reaches only us).
    pub own_process_group: bool,
}

impl BirdSpec {
    pub fn new(dir: &Path, config: String) -> BirdSpec {
        BirdSpec {
            dir: dir.to_path_buf(),
            config,
            recovery: false,
            detached: false,
            own_process_group: false,
        }
    }
}

/// A running BIRD. Its files are `bird.conf`, `bird.ctl`, `bird.pid` and
/// `bird.log` (its stdout and stderr) in the directory it was given.
#[derive(Debug)]
pub struct Bird {
    process: Process,
    dir: PathBuf,
}

impl Bird {
    /// Write the config to `DIR/bird.conf`, have BIRD parse it (`bird -p`),
    /// start BIRD in `ns` and wait until `birdc` answers.
    pub fn start(ns: &Netns, spec: &BirdSpec) -> Result<Bird> {
        Bird::start_within(ns, spec, START_TIMEOUT)
    }

    /// [`Bird::start`], allowing `timeout` until `birdc` answers (a config
    /// with a full table of static routes takes BIRD a while to parse).
    pub fn start_within(ns: &Netns, spec: &BirdSpec, timeout: Duration) -> Result<Bird> {
        let (dir, config) = (spec.dir.as_path(), spec.config.as_str());
        cmd::require_program("bird", "bird2")?;
        cmd::require_program("birdc", "bird2")?;
        let conf = dir.join("bird.conf");
        write_config(&conf, config)?;
        let ctl = dir.join("bird.ctl").to_string_lossy().into_owned();
        let pid = dir.join("bird.pid").to_string_lossy().into_owned();
        let conf_s = conf.to_string_lossy().into_owned();
        let mut argv = vec!["bird", "-f", "-c", &conf_s, "-s", &ctl, "-P", &pid];
        if spec.recovery {
            argv.push("-R");
        }
        let mut spawn = Spawn::new("bird", &argv)
            .netns(ns)
            .log(&dir.join("bird.log"));
        if spec.detached {
            spawn = spawn.detached();
        } else if spec.own_process_group {
            spawn = spawn.own_process_group();
        }
        let mut process = spawn.start()?;
        let ctl_path = PathBuf::from(&ctl);
        process.wait_ready("BIRD's control socket", timeout, || {
            let out = birdc(&ctl_path, &["show", "status"])?;
            if out.contains("Daemon is up") {
                Ok(())
            } else {
                Err(Error::Other(out))
            }
        })?;
        Ok(Bird {
            process,
            dir: dir.to_path_buf(),
        })
    }

    pub fn ctl(&self) -> PathBuf {
        self.dir.join("bird.ctl")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("bird.conf")
    }

    /// BIRD's stdout and stderr (with [`Log::StderrAll`], its log).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("bird.log")
    }

    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// `birdc -s CTL ARGS...`; stdout.
    pub fn birdc(&self, args: &[&str]) -> Result<String> {
        birdc(&self.ctl(), args)
    }

    /// Replace the configuration and `birdc configure` (BIRD restarts the
    /// protocols whose options changed).
    pub fn configure(&self, config: &str) -> Result<()> {
        write_config(&self.config_path(), config)?;
        let out = self.birdc(&["configure"])?;
        if out.contains("Reconfigured") || out.contains("Reconfiguration in progress") {
            Ok(())
        } else {
            Err(Error::Other(format!("birdc configure: {out}")))
        }
    }

    /// The state line of protocol `name` in `show protocols`.
    pub fn protocol_line(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .birdc(&["show", "protocols", name])?
            .lines()
            .find(|l| l.starts_with(name))
            .map(String::from))
    }

    /// Every BGP path in BIRD's tables.
    pub fn rib(&self) -> Result<Vec<BgpPath>> {
        Ok(parse_show_route_all(
            &self.birdc(&["show", "route", "all"])?,
        ))
    }

    /// Whether protocol `name` is Established; Err(its state line) if not.
    pub fn established(&self, name: &str) -> Result<std::result::Result<(), String>> {
        Ok(match self.protocol_line(name)? {
            Some(l) if l.contains("Established") => Ok(()),
            Some(l) => Err(l),
            None => Err(format!("no protocol {name}")),
        })
    }

    /// Stop BIRD (SIGTERM, then SIGKILL after `grace`).
    pub fn stop(&mut self, grace: Duration) -> Result<()> {
        self.process.stop(grace).map(|_| ())
    }

    /// Keep BIRD running after this value is gone.
    pub fn detach(self) -> crate::process::ProcId {
        self.process.detach()
    }
}

/// Have BIRD parse `config` (`bird -p -c`) and, if it accepts it, write it
/// to `path`; else an error with BIRD's complaint and the text, and `path`
/// is left as it was (a running BIRD's file stays good).
pub fn write_config(path: &Path, config: &str) -> Result<()> {
    let mut candidate = path.as_os_str().to_owned();
    candidate.push(".new");
    let candidate = std::path::PathBuf::from(candidate);
    std::fs::write(&candidate, config).map_err(io(format!("write {}", candidate.display())))?;
    let out = cmd::output(&["bird", "-p", "-c", &candidate.to_string_lossy()]);
    let rejected = match out {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        Err(e) => Some(e.to_string()),
    };
    if let Some(why) = rejected {
        let _ = std::fs::remove_file(&candidate);
        return Err(Error::Other(format!(
            "BIRD rejects {}: {why}\n{config}",
            path.display()
        )));
    }
    std::fs::rename(&candidate, path).map_err(io(format!("write {}", path.display())))
}

/// `birdc -s CTL ARGS...` (BIRD's control socket needs no namespace).
pub fn birdc(ctl: &Path, args: &[&str]) -> Result<String> {
    let mut c = Command::new("birdc");
    c.arg("-s").arg(ctl).args(args);
    cmd::run_cmd(&mut c, None)
}

/// BGP paths in `birdc show route all` (routes of other types skipped).
pub fn parse_show_route_all(text: &str) -> Vec<BgpPath> {
    let mut out: Vec<BgpPath> = Vec::new();
    // The route being read, and whether its `Type:` line says BGP.
    let mut cur: Option<(BgpPath, bool)> = None;
    let mut prefix = String::new();
    let flush = |cur: &mut Option<(BgpPath, bool)>, out: &mut Vec<BgpPath>| {
        if let Some((r, true)) = cur.take() {
            out.push(r);
        }
    };
    for line in text.lines() {
        if line.starts_with("BIRD ") || line.starts_with("Table ") || line.trim().is_empty() {
            continue;
        }
        if line.contains(" [") && !line.starts_with('\t') {
            // "PREFIX  unicast [proto time] * (100) [AS65002i]"; a further
            // path of the same prefix starts with spaces instead.
            flush(&mut cur, &mut out);
            if !line.starts_with(' ') {
                prefix = line.split_whitespace().next().unwrap_or("").to_string();
            }
            let best = line
                .split_once(']')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('*'));
            cur = Some((
                BgpPath {
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

/// Sum of `Routes: N imported` over the channels in `show protocols all`.
pub fn parse_imported(show_protocols_all: &str) -> u64 {
    show_protocols_all
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Routes:"))
        .filter_map(|r| r.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BirdConfig {
        BirdConfig {
            router_id: "10.0.0.2".into(),
            device_scan_time: Some(10),
            kernel: vec![KernelProtocol {
                name: "k_ipv4".into(),
                afi: Afi::Ipv4,
                import: "none".into(),
                export: "where source = RTS_BGP".into(),
                merge_paths: true,
            }],
            statics: vec![StaticProtocol {
                name: "s_ipv6".into(),
                afi: Afi::Ipv6,
                routes: vec![
                    StaticRoute {
                        prefix: "fd00:1::/64".into(),
                        attrs: vec![],
                    },
                    StaticRoute {
                        prefix: "fd00:2::/64".into(),
                        attrs: vec!["bgp_path.prepend(65010);".into()],
                    },
                ],
            }],
            bgp: vec![BgpProtocol {
                name: "n_10_0_0_1".into(),
                local_address: "10.0.0.2".into(),
                local_as: 65002,
                neighbor_address: "10.0.0.1".into(),
                neighbor_as: 65001,
                options: vec!["hold time 9;".into(), "passive on;".into()],
                channels: vec![
                    Channel::all(Afi::Ipv4),
                    Channel {
                        options: vec!["gateway direct;".into()],
                        ..Channel::all(Afi::Ipv6)
                    },
                ],
            }],
            ..Default::default()
        }
    }

    #[test]
    fn config_text() {
        let want = "log stderr all;\nrouter id 10.0.0.2;\nprotocol device { scan time 10; }\n\
protocol kernel k_ipv4 { ipv4 { import none; export where source = RTS_BGP; }; merge paths on; }\n\
protocol static s_ipv6 {\n  ipv6;\n  route fd00:1::/64 blackhole;\n  \
route fd00:2::/64 blackhole { bgp_path.prepend(65010); };\n}\n\
protocol bgp n_10_0_0_1 {\n  local 10.0.0.2 as 65002;\n  neighbor 10.0.0.1 as 65001;\n  \
hold time 9;\n  passive on;\n  ipv4 { import all; export all; };\n  \
ipv6 { import all; export all; gateway direct; };\n}\n";
        assert_eq!(sample().render(), want);
    }

    #[test]
    fn log_to_a_file() {
        let c = BirdConfig {
            log: Log::File {
                path: "/tmp/b.log".into(),
                classes: "warning, error, fatal".into(),
            },
            router_id: "1.1.1.1".into(),
            ..Default::default()
        };
        assert!(c
            .render()
            .starts_with("log \"/tmp/b.log\" { warning, error, fatal };\nrouter id 1.1.1.1;\nprotocol device { }\n"));
    }

    #[test]
    fn bird_accepts_the_rendered_config() {
        if cmd::find_program("bird").is_none() {
            eprintln!("bird not installed; skipped");
            return;
        }
        let dir = std::env::temp_dir().join(format!("labkit-birdconf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bird.conf");
        let good = write_config(&path, &sample().render());
        let bad = write_config(&path, "router id nonsense;\n");
        let kept = std::fs::read_to_string(&path).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        good.unwrap();
        assert!(bad.unwrap_err().to_string().contains("BIRD rejects"));
        assert_eq!(
            kept,
            sample().render(),
            "a rejected config replaced the good one"
        );
    }

    #[test]
    fn reads_bgp_paths_of_show_route_all() {
        let text = "BIRD 2.0.12 ready.\nTable master4:\n\
10.100.0.0/24        unicast [n_10_1_0_1 12:00:00.000] * (100) [AS65001i]\n\
\tvia 10.1.0.1 on v1b\n\tType: BGP univ\n\tBGP.origin: IGP\n\tBGP.as_path: 65001 65010\n\
\tBGP.next_hop: 10.1.0.1\n\tBGP.originator_id: 10.50.0.2\n\tBGP.cluster_list: 10.255.0.1\n\
\x20                    unicast [n_10_2_0_1 12:00:01.000] (100) [AS65001i]\n\
\tvia 10.2.0.1 on v2b\n\tType: BGP univ\n\tBGP.as_path: 65001\n\tBGP.next_hop: 10.2.0.1\n\
10.200.0.0/24        blackhole [s_ipv4 12:00:00.000] * (200)\n\tType: static univ\n";
        let rib = parse_show_route_all(text);
        assert_eq!(rib.len(), 2, "{rib:?}");
        assert_eq!(
            rib[0],
            BgpPath {
                prefix: "10.100.0.0/24".into(),
                next_hops: vec!["10.1.0.1".into()],
                as_path: vec![65001, 65010],
                originator_id: Some("10.50.0.2".into()),
                cluster_list: vec!["10.255.0.1".into()],
                best: true,
            }
        );
        assert_eq!(rib[1].prefix, "10.100.0.0/24");
        assert!(!rib[1].best);
        assert_eq!(rib[1].next_hops, vec!["10.2.0.1".to_string()]);
    }

    #[test]
    fn imported_counts() {
        let out = "blaster    BGP        ---        up     11:02:03.123  Established\n\
            \x20 Channel ipv4\n    State:          UP\n    Routes:         8000 imported, 0 exported, 8000 preferred\n\
            \x20 Channel ipv6\n    Routes:         2000 imported, 0 exported, 2000 preferred\n";
        assert_eq!(parse_imported(out), 10_000);
    }
}
