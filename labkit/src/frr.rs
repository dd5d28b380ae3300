//! FRR: zebra, bgpd and (optionally) bfdd, one instance per namespace with
//! pathspace `-N NAME`. FRR keeps sockets, pid files, configs and logs in
//! `/var/run/frr/NAME/`, owned by `frr:frr` because the daemons drop
//! privileges. The daemons run in the foreground (no `-d`), so the PIDs we
//! start are theirs. `vtysh -N NAME` talks to an instance; it needs `root`
//! in group `frrvty` (`usermod -a -G frrvty root`).

use std::ffi::CString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::cmd;
use crate::error::{io, Error, Result};
use crate::netns::Netns;
use crate::process::{ProcId, Process, Spawn};
use crate::rib::BgpPath;
use crate::Afi;

/// Parent of every instance's directory.
pub const RUN_ROOT: &str = "/var/run/frr";
/// How long a daemon may take to open its sockets.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// One FRR daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Daemon {
    Zebra,
    Bgpd,
    Bfdd,
}

impl Daemon {
    pub fn name(self) -> &'static str {
        match self {
            Daemon::Zebra => "zebra",
            Daemon::Bgpd => "bgpd",
            Daemon::Bfdd => "bfdd",
        }
    }

    pub fn binary(self) -> String {
        format!("/usr/lib/frr/{}", self.name())
    }

    /// The socket that exists once the daemon serves (zebra's API for its
    /// clients, the others' vty).
    fn ready_socket(self) -> &'static str {
        match self {
            Daemon::Zebra => "zserv.api",
            Daemon::Bgpd => "bgpd.vty",
            Daemon::Bfdd => "bfdd.vty",
        }
    }
}

/// `/var/run/frr/INSTANCE`.
pub fn run_dir(instance: &str) -> PathBuf {
    Path::new(RUN_ROOT).join(instance)
}

/// One `neighbor` of [`BgpdConfig`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Neighbor {
    /// An address, or an interface name with `interface`.
    pub address: String,
    /// BGP unnumbered: `neighbor IF interface remote-as N` (zebra then
    /// sends router advertisements on IF).
    pub interface: bool,
    pub remote_as: u32,
    pub description: Option<String>,
    /// `timers connect N` (seconds; FRR's default is 120).
    pub connect_timer: Option<u16>,
    pub update_source: Option<String>,
    /// `advertisement-interval N` (0: send updates at once).
    pub advertisement_interval: Option<u16>,
    pub passive: bool,
    /// `neighbor X bfd` (needs bfdd).
    pub bfd: bool,
    /// `neighbor X capability extended-nexthop` (RFC 8950).
    pub extended_nexthop: bool,
    /// Address families to activate, each with extra `neighbor X ...`
    /// lines for that family (e.g. `next-hop-self force`,
    /// `route-map NAME out`).
    pub families: Vec<(Afi, Vec<String>)>,
}

/// `bgp graceful-restart` and its timers (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GracefulRestart {
    /// `restart-time`: what bgpd advertises, how long peers keep its routes.
    pub restart_time: u16,
    /// `stalepath-time`: how long bgpd keeps a restarted peer's stale
    /// routes while it waits for the peer's End-of-RIB.
    pub stalepath_time: u16,
}

/// bgpd's configuration, as the lab, the tests and the benchmark need it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BgpdConfig {
    pub hostname: String,
    pub asn: u32,
    pub router_id: String,
    /// `timers bgp KEEPALIVE HOLD`.
    pub timers: Option<(u16, u16)>,
    /// Keep RFC 8212's default (no routes without a policy)? Off here:
    /// `no bgp ebgp-requires-policy`.
    pub ebgp_requires_policy: bool,
    /// `no bgp network import-check` unless set: `network P` originates
    /// P even without a route to it.
    pub network_import_check: bool,
    /// `no bgp default ipv4-unicast` unless set: only the families a
    /// neighbor activates.
    pub default_ipv4_unicast: bool,
    /// `bgp graceful-restart-disable`: a stopped router's routes go at
    /// once instead of lingering as stale.
    pub graceful_restart_disable: bool,
    /// `bgp graceful-restart` (RFC 4724, restarting speaker and helper)
    /// with these times.
    pub graceful_restart: Option<GracefulRestart>,
    pub neighbors: Vec<Neighbor>,
    /// Raw text after the `router bgp` block (route-maps, ...).
    pub extra: String,
}

impl BgpdConfig {
    pub fn render(&self) -> String {
        let mut c = String::new();
        let _ = writeln!(c, "frr defaults traditional\nhostname {}\n!", self.hostname);
        let _ = writeln!(c, "router bgp {}", self.asn);
        let _ = writeln!(c, " bgp router-id {}", self.router_id);
        if !self.ebgp_requires_policy {
            c += " no bgp ebgp-requires-policy\n";
        }
        if !self.network_import_check {
            c += " no bgp network import-check\n";
        }
        if !self.default_ipv4_unicast {
            c += " no bgp default ipv4-unicast\n";
        }
        if let Some((keepalive, hold)) = self.timers {
            let _ = writeln!(c, " timers bgp {keepalive} {hold}");
        }
        if self.graceful_restart_disable {
            c += " bgp graceful-restart-disable\n";
        }
        if let Some(gr) = self.graceful_restart {
            let _ = writeln!(
                c,
                " bgp graceful-restart\n bgp graceful-restart restart-time {}\n bgp graceful-restart stalepath-time {}",
                gr.restart_time, gr.stalepath_time
            );
        }
        for n in &self.neighbors {
            let a = &n.address;
            let kind = if n.interface { " interface" } else { "" };
            let _ = writeln!(c, " neighbor {a}{kind} remote-as {}", n.remote_as);
            if let Some(d) = &n.description {
                let _ = writeln!(c, " neighbor {a} description {d}");
            }
            if let Some(t) = n.connect_timer {
                let _ = writeln!(c, " neighbor {a} timers connect {t}");
            }
            if let Some(s) = &n.update_source {
                let _ = writeln!(c, " neighbor {a} update-source {s}");
            }
            if let Some(i) = n.advertisement_interval {
                let _ = writeln!(c, " neighbor {a} advertisement-interval {i}");
            }
            if n.passive {
                let _ = writeln!(c, " neighbor {a} passive");
            }
            if n.bfd {
                let _ = writeln!(c, " neighbor {a} bfd");
            }
            if n.extended_nexthop {
                let _ = writeln!(c, " neighbor {a} capability extended-nexthop");
            }
        }
        for afi in [Afi::Ipv4, Afi::Ipv6] {
            let active: Vec<(&Neighbor, &Vec<String>)> = self
                .neighbors
                .iter()
                .filter_map(|n| {
                    n.families
                        .iter()
                        .find(|(f, _)| *f == afi)
                        .map(|(_, lines)| (n, lines))
                })
                .collect();
            if active.is_empty() {
                continue;
            }
            let _ = writeln!(c, " address-family {} unicast", afi.name());
            for (n, lines) in active {
                let _ = writeln!(c, "  neighbor {} activate", n.address);
                for l in lines {
                    let _ = writeln!(c, "  neighbor {} {l}", n.address);
                }
            }
            c += " exit-address-family\n";
        }
        c += "!\n";
        c += &self.extra;
        c
    }
}

/// One `peer` of bfdd's configuration (RFC 5880 timers, milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BfdPeer {
    pub address: String,
    pub local_address: Option<String>,
    pub receive_interval_ms: u32,
    pub transmit_interval_ms: u32,
    pub detect_multiplier: u8,
}

/// bfdd's configuration: a `bfd` block with its peers.
pub fn bfdd_config(hostname: &str, peers: &[BfdPeer]) -> String {
    let mut c = format!("hostname {hostname}\n!\nbfd\n");
    for p in peers {
        let _ = write!(c, " peer {}", p.address);
        if let Some(l) = &p.local_address {
            let _ = write!(c, " local-address {l}");
        }
        let _ = writeln!(
            c,
            "\n  receive-interval {}\n  transmit-interval {}\n  detect-multiplier {}\n exit",
            p.receive_interval_ms, p.transmit_interval_ms, p.detect_multiplier
        );
    }
    c += "exit\n!\n";
    c
}

/// What to start.
#[derive(Debug, Clone)]
pub struct FrrSpec {
    /// The pathspace (`-N`), also the run directory's name.
    pub instance: String,
    pub zebra_conf: String,
    pub bgpd_conf: String,
    /// bfdd's configuration; bfdd runs only when set.
    pub bfdd_conf: Option<String>,
    /// Extra zebra arguments (e.g. `-s 90000000`, the netlink receive
    /// buffer Debian's /etc/frr/daemons sets).
    pub zebra_args: Vec<String>,
    /// Daemons in their own session, to outlive this program once
    /// [`Frr::detach`]ed (`kroute lab up`).
    pub detached: bool,
    /// Daemons in their own process group (a Ctrl-C reaches only us).
    pub own_process_group: bool,
}

impl FrrSpec {
    /// zebra (with just a hostname) and bgpd with `bgpd_conf`.
    pub fn new(instance: &str, bgpd_conf: String) -> FrrSpec {
        FrrSpec {
            instance: instance.to_string(),
            zebra_conf: format!("hostname {instance}\n"),
            bgpd_conf,
            bfdd_conf: None,
            zebra_args: Vec::new(),
            detached: false,
            own_process_group: false,
        }
    }
}

/// A running FRR instance. Dropping it stops its daemons (bgpd and bfdd
/// before zebra) and removes its run directory — kept when the thread
/// panics, for the post-mortem.
#[derive(Debug)]
pub struct Frr {
    instance: String,
    dir: PathBuf,
    /// In start order (zebra first); stopped in reverse.
    daemons: Vec<(Daemon, Process)>,
    /// Set by [`Frr::detach`]: leave daemons and files alone on drop.
    detached: bool,
    spawn_detached: bool,
    own_process_group: bool,
}

fn frr_ids() -> Result<(libc::uid_t, libc::gid_t)> {
    let name = CString::new("frr").map_err(|e| Error::Other(e.to_string()))?;
    // SAFETY: getpwnam returns NULL or a pointer to a static passwd entry,
    // read at once before any other call could overwrite it.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(Error::Missing {
            program: "user frr".into(),
            package: "frr".into(),
        });
    }
    // SAFETY: pw is non-null, see above.
    Ok(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

fn chown(path: &Path, (uid, gid): (libc::uid_t, libc::gid_t)) -> Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .map_err(io(format!("chown frr {}", path.display())))
}

impl Frr {
    /// Write the instance's files and start zebra, bgpd (and bfdd); returns
    /// once bgpd answers `vtysh`.
    pub fn start(ns: &Netns, spec: &FrrSpec) -> Result<Frr> {
        let mut daemons = vec![Daemon::Zebra, Daemon::Bgpd];
        if spec.bfdd_conf.is_some() {
            daemons.push(Daemon::Bfdd);
        }
        for d in &daemons {
            cmd::require_program(&d.binary(), "frr")?;
        }
        cmd::require_program("vtysh", "frr")?;
        let ids = frr_ids()?;
        let root = Path::new(RUN_ROOT);
        if !root.exists() {
            std::fs::create_dir_all(root).map_err(io(format!("create {RUN_ROOT}")))?;
            chown(root, ids)?;
        }
        let dir = run_dir(&spec.instance);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
        chown(&dir, ids)?;
        let mut frr = Frr {
            instance: spec.instance.clone(),
            dir: dir.clone(),
            daemons: Vec::new(),
            detached: false,
            spawn_detached: spec.detached,
            own_process_group: spec.own_process_group,
        };
        for d in &daemons {
            let text = match d {
                Daemon::Zebra => &spec.zebra_conf,
                Daemon::Bgpd => &spec.bgpd_conf,
                Daemon::Bfdd => spec.bfdd_conf.as_ref().expect("bfdd has a config"),
            };
            let conf = dir.join(format!("{}.conf", d.name()));
            std::fs::write(&conf, text).map_err(io(format!("write {}", conf.display())))?;
            chown(&conf, ids)?;
        }
        for d in daemons {
            let extra: &[String] = if d == Daemon::Zebra {
                &spec.zebra_args
            } else {
                &[]
            };
            let p = frr.start_daemon(ns, d, extra)?;
            frr.daemons.push((d, p));
        }
        let (_, bgpd) = frr
            .daemons
            .iter_mut()
            .find(|(d, _)| *d == Daemon::Bgpd)
            .expect("bgpd started");
        let instance = frr.instance.clone();
        bgpd.wait_ready(
            "bgpd to answer vtysh (is root in group frrvty?)",
            START_TIMEOUT,
            || {
                vtysh_json(&instance, "show bgp summary json").and_then(|v| {
                    if v.is_object() {
                        Ok(())
                    } else {
                        Err(Error::Other(format!("not an object: {v}")))
                    }
                })
            },
        )?;
        Ok(frr)
    }

    fn start_daemon(&self, ns: &Netns, d: Daemon, extra: &[String]) -> Result<Process> {
        let path = |suffix: &str| {
            self.dir
                .join(format!("{}.{suffix}", d.name()))
                .to_string_lossy()
                .into_owned()
        };
        let bin = d.binary();
        let (conf, pid, log) = (path("conf"), path("pid"), path("log"));
        let log_arg = format!("file:{log}");
        let mut argv: Vec<&str> = vec![
            &bin,
            "-N",
            &self.instance,
            "-F",
            "traditional",
            // vty over TCP only on loopback (vtysh uses the unix sockets).
            "-A",
            "127.0.0.1",
            "-f",
            &conf,
            "-i",
            &pid,
            "--log",
            &log_arg,
        ];
        argv.extend(extra.iter().map(String::as_str));
        // stdout/stderr: what the daemon prints before its log is open.
        let out = self.dir.join(format!("{}.out", d.name()));
        let mut spawn = Spawn::new(d.name(), &argv).netns(ns).log(&out);
        if self.spawn_detached {
            spawn = spawn.detached();
        } else if self.own_process_group {
            spawn = spawn.own_process_group();
        }
        let mut p = spawn.start()?;
        p.add_log(Path::new(&log));
        let socket = self.dir.join(d.ready_socket());
        p.wait_ready(
            &format!("{} to create {}", d.name(), socket.display()),
            START_TIMEOUT,
            || socket.exists().then_some(()),
        )?;
        Ok(p)
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn run_dir(&self) -> &Path {
        &self.dir
    }

    /// The process of one daemon, if it runs in this instance.
    pub fn daemon(&mut self, d: Daemon) -> Option<&mut Process> {
        self.daemons
            .iter_mut()
            .find(|(x, _)| *x == d)
            .map(|(_, p)| p)
    }

    /// Start daemon `d` again after it was killed or stopped (a bgpd
    /// restart: zebra, with graceful restart, kept bgpd's routes in the
    /// kernel meanwhile). Returns once it serves again.
    pub fn start_again(&mut self, ns: &Netns, d: Daemon) -> Result<()> {
        if let Some(i) = self.daemons.iter().position(|(x, _)| *x == d) {
            let (_, mut old) = self.daemons.remove(i);
            old.stop(Duration::from_secs(5))?;
        }
        // The dead daemon's socket would pass the readiness check.
        let _ = std::fs::remove_file(self.dir.join(d.ready_socket()));
        let extra: &[String] = &[];
        let p = self.start_daemon(ns, d, extra)?;
        self.daemons.push((d, p));
        if d == Daemon::Bgpd {
            let instance = self.instance.clone();
            let (_, bgpd) = self.daemons.last_mut().expect("just pushed");
            bgpd.wait_ready("bgpd to answer vtysh", START_TIMEOUT, || {
                vtysh_json(&instance, "show bgp summary json")
            })?;
        }
        Ok(())
    }

    /// PIDs of every daemon (for RSS and CPU).
    pub fn pids(&self) -> Vec<u32> {
        self.daemons.iter().map(|(_, p)| p.pid()).collect()
    }

    /// An error (with the log tail) if a daemon is gone.
    pub fn check_alive(&mut self) -> Result<()> {
        self.daemons
            .iter_mut()
            .try_for_each(|(_, p)| p.check_alive())
    }

    /// `vtysh -N INSTANCE -c CMD...`; stdout.
    pub fn vtysh(&self, cmds: &[&str]) -> Result<String> {
        vtysh(&self.instance, cmds)
    }

    /// One `vtysh` command whose output is JSON.
    pub fn vtysh_json(&self, command: &str) -> Result<Value> {
        vtysh_json(&self.instance, command)
    }

    /// Every path bgpd learned from a neighbor, both families.
    pub fn rib(&self) -> Result<Vec<BgpPath>> {
        rib(&self.instance)
    }

    /// bgpd's state for `neighbor`, None if it has no such neighbor.
    pub fn neighbor_state(&self, neighbor: &str) -> Result<Option<String>> {
        neighbor_state(&self.instance, neighbor)
    }

    /// The log tails of every daemon.
    pub fn log_tail(&self, n: usize) -> String {
        self.daemons.iter().map(|(_, p)| p.log_tail(n)).collect()
    }

    /// Stop every daemon (zebra last). The run directory stays until drop.
    pub fn stop(&mut self, grace: Duration) -> Result<()> {
        while let Some((_, mut p)) = self.daemons.pop() {
            p.stop(grace)?;
        }
        Ok(())
    }

    /// Keep the daemons and the run directory; returns what to stop later.
    pub fn detach(mut self) -> (Vec<(Daemon, ProcId)>, PathBuf) {
        self.detached = true;
        let ids = std::mem::take(&mut self.daemons)
            .into_iter()
            .map(|(d, p)| (d, p.detach()))
            .collect();
        (ids, self.dir.clone())
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        // Each Process's drop prints its logs when panicking, then stops it.
        while let Some((_, p)) = self.daemons.pop() {
            drop(p);
        }
        if std::thread::panicking() {
            eprintln!("FRR files kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `vtysh -N INSTANCE -c CMD...` for an instance started elsewhere (e.g. by
/// `kroute lab up`); stdout. FRR prints command errors (lines starting with
/// `%`) with a non-zero exit status: they are errors here.
pub fn vtysh(instance: &str, cmds: &[&str]) -> Result<String> {
    let mut c = Command::new("vtysh");
    c.args(["-N", instance]);
    for x in cmds {
        c.args(["-c", x]);
    }
    let out = cmd::output_of(&mut c, None)?;
    let text = cmd::check(&c, None, &out)?;
    if text.lines().any(|l| l.starts_with('%')) {
        return Err(Error::Command {
            argv: cmd::describe(&c),
            ns: None,
            status: out.status.to_string(),
            stderr: text,
        });
    }
    Ok(text)
}

/// One `vtysh` command whose output is JSON.
pub fn vtysh_json(instance: &str, command: &str) -> Result<Value> {
    let text = vtysh(instance, &[command])?;
    serde_json::from_str(&text).map_err(|e| Error::Parse {
        what: format!("vtysh -N {instance} -c '{command}'"),
        detail: e.to_string(),
        text,
    })
}

/// bgpd's state for one neighbor (`Established`, `Active`, ...), None if
/// it has no such neighbor.
pub fn neighbor_state(instance: &str, neighbor: &str) -> Result<Option<String>> {
    let v = vtysh_json(instance, &format!("show bgp neighbors {neighbor} json"))?;
    Ok(v.get(neighbor)
        .and_then(|n| n.get("bgpState"))
        .and_then(Value::as_str)
        .map(String::from))
}

/// Every path bgpd learned from a neighbor (locally originated ones
/// skipped), both families.
pub fn rib(instance: &str) -> Result<Vec<BgpPath>> {
    let mut out = Vec::new();
    for afi in [Afi::Ipv4, Afi::Ipv6] {
        let afi = afi.name();
        let table = vtysh_json(instance, &format!("show bgp {afi} unicast json"))?;
        // ORIGINATOR_ID and CLUSTER_LIST are only in the per-prefix view.
        let detail =
            |prefix: &str| vtysh_json(instance, &format!("show bgp {afi} unicast {prefix} json"));
        out.extend(parse_rib(&table, detail)?);
    }
    Ok(out)
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Paths of `show bgp AFI unicast json`; `detail(prefix)` fetches the
/// per-prefix view for iBGP-learned paths (reflection attributes).
fn parse_rib(table: &Value, mut detail: impl FnMut(&str) -> Result<Value>) -> Result<Vec<BgpPath>> {
    let mut out = Vec::new();
    let Some(routes) = table.get("routes").and_then(Value::as_object) else {
        return Ok(out);
    };
    for (prefix, paths) in routes {
        let mut details: Option<Value> = None;
        for (i, p) in paths.as_array().into_iter().flatten().enumerate() {
            let peer = str_of(p, "peerId").unwrap_or("(unspec)");
            if peer == "(unspec)" {
                continue; // locally originated
            }
            let mut r = BgpPath {
                prefix: prefix.clone(),
                best: p.get("bestpath").and_then(Value::as_bool).unwrap_or(false),
                as_path: str_of(p, "path")
                    .unwrap_or("")
                    .split_whitespace()
                    .filter_map(|a| a.parse().ok())
                    .collect(),
                next_hops: p
                    .get("nexthops")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|nh| str_of(nh, "ip").map(String::from))
                    .collect(),
                ..Default::default()
            };
            if str_of(p, "pathFrom") == Some("internal") {
                if details.is_none() {
                    details = Some(detail(prefix)?);
                }
                let d = details.as_ref().expect("fetched above");
                let dp = d.get("paths").and_then(Value::as_array).and_then(|ps| {
                    ps.iter()
                        .find(|dp| dp.get("peer").and_then(|x| str_of(x, "peerId")) == Some(peer))
                        .or_else(|| ps.get(i))
                });
                if let Some(dp) = dp {
                    r.originator_id = str_of(dp, "originatorId").map(String::from);
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
    Ok(out)
}

/// Sum of `pfxRcd` over the address families of `show bgp summary json`;
/// None when no family lists a peer.
pub fn parse_pfx_rcd(summary: &Value) -> Option<u64> {
    let mut total = 0;
    let mut any = false;
    for af in summary.as_object()?.values() {
        let Some(peers) = af.get("peers").and_then(Value::as_object) else {
            continue;
        };
        for p in peers.values() {
            any = true;
            total += p.get("pfxRcd").and_then(Value::as_u64).unwrap_or(0);
        }
    }
    any.then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BgpdConfig {
        BgpdConfig {
            hostname: "r1".into(),
            asn: 65000,
            router_id: "10.0.0.1".into(),
            timers: Some((3, 9)),
            graceful_restart_disable: true,
            neighbors: vec![
                Neighbor {
                    address: "fd00::2".into(),
                    remote_as: 65001,
                    connect_timer: Some(2),
                    update_source: Some("fd00::1".into()),
                    advertisement_interval: Some(0),
                    bfd: true,
                    families: vec![
                        (Afi::Ipv4, vec!["next-hop-self force".into()]),
                        (Afi::Ipv6, vec![]),
                    ],
                    ..Default::default()
                },
                Neighbor {
                    address: "10.0.0.9".into(),
                    remote_as: 65009,
                    passive: true,
                    families: vec![(Afi::Ipv4, vec![])],
                    ..Default::default()
                },
            ],
            extra: "route-map X permit 10\n!\n".into(),
            ..Default::default()
        }
    }

    #[test]
    fn bgpd_config_text() {
        let want = "frr defaults traditional\nhostname r1\n!\nrouter bgp 65000\n \
bgp router-id 10.0.0.1\n no bgp ebgp-requires-policy\n no bgp network import-check\n \
no bgp default ipv4-unicast\n timers bgp 3 9\n bgp graceful-restart-disable\n \
neighbor fd00::2 remote-as 65001\n neighbor fd00::2 timers connect 2\n \
neighbor fd00::2 update-source fd00::1\n neighbor fd00::2 advertisement-interval 0\n \
neighbor fd00::2 bfd\n neighbor 10.0.0.9 remote-as 65009\n neighbor 10.0.0.9 passive\n \
address-family ipv4 unicast\n  neighbor fd00::2 activate\n  neighbor fd00::2 next-hop-self force\n  \
neighbor 10.0.0.9 activate\n exit-address-family\n address-family ipv6 unicast\n  \
neighbor fd00::2 activate\n exit-address-family\n!\nroute-map X permit 10\n!\n";
        assert_eq!(sample().render(), want);
    }

    #[test]
    fn graceful_restart_with_its_timers() {
        let mut c = sample();
        assert!(!c.render().contains(" bgp graceful-restart\n"));
        c.graceful_restart = Some(GracefulRestart {
            restart_time: 30,
            stalepath_time: 45,
        });
        let t = c.render();
        assert!(
            t.contains(
                " bgp graceful-restart\n bgp graceful-restart restart-time 30\n \
                 bgp graceful-restart stalepath-time 45\n"
            ),
            "{t}"
        );
    }

    #[test]
    fn family_without_neighbors_has_no_block() {
        let mut c = sample();
        c.neighbors.retain(|n| n.address == "10.0.0.9");
        assert!(!c.render().contains("ipv6 unicast"));
    }

    #[test]
    fn reads_paths_and_reflection_attributes() {
        let table = serde_json::json!({"routes": {
            "10.100.0.0/24": [
                {"peerId": "10.1.0.1", "bestpath": true, "path": "65001 65010",
                 "pathFrom": "external", "nexthops": [{"ip": "10.1.0.1"}]},
                {"peerId": "10.50.0.1", "path": "", "pathFrom": "internal",
                 "nexthops": [{"ip": "10.50.0.2"}]}
            ],
            "10.9.0.0/24": [{"peerId": "(unspec)", "path": ""}]
        }});
        let mut fetched = Vec::new();
        let rib = parse_rib(&table, |p| {
            fetched.push(p.to_string());
            Ok(serde_json::json!({"paths": [
                {"peer": {"peerId": "10.1.0.1"}},
                {"peer": {"peerId": "10.50.0.1"}, "originatorId": "10.50.0.2",
                 "clusterList": {"list": ["10.255.0.1"]}}
            ]}))
        })
        .unwrap();
        assert_eq!(fetched, ["10.100.0.0/24"]);
        assert_eq!(rib.len(), 2);
        assert_eq!(rib[0].as_path, vec![65001, 65010]);
        assert!(rib[0].best);
        assert_eq!(rib[0].originator_id, None);
        assert_eq!(rib[1].originator_id.as_deref(), Some("10.50.0.2"));
        assert_eq!(rib[1].cluster_list, vec!["10.255.0.1".to_string()]);
        assert!(parse_rib(&serde_json::json!({}), |_| unreachable!())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn pfx_rcd() {
        let v = serde_json::json!({
            "ipv4Unicast": {"peers": {"10.255.255.1": {"pfxRcd": 8000, "state": "Established"}}},
            "ipv6Unicast": {"peers": {"10.255.255.1": {"pfxRcd": 2000}}}
        });
        assert_eq!(parse_pfx_rcd(&v), Some(10_000));
        assert_eq!(parse_pfx_rcd(&serde_json::json!({})), None);
    }

    #[test]
    fn bfdd_config_text() {
        let peers = [BfdPeer {
            address: "fd00::2".into(),
            local_address: Some("fd00::1".into()),
            receive_interval_ms: 100,
            transmit_interval_ms: 100,
            detect_multiplier: 3,
        }];
        assert_eq!(
            bfdd_config("r1", &peers),
            "hostname r1\n!\nbfd\n peer fd00::2 local-address fd00::1\n  receive-interval 100\n  \
transmit-interval 100\n  detect-multiplier 3\n exit\nexit\n!\n"
        );
    }
}
