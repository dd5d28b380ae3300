//! Long-lived lab processes and the state file.
//!
//! Daemons are started detached (their own session, stdout and stderr to a
//! log file) so they outlive `kroute lab up`; each is recorded with its PID
//! and its start time (field 22 of `/proc/PID/stat`), so a PID reused by
//! another process after ours died is never signalled.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::topology::{self, Topology};
use super::{io_err, LabError, Result};
use crate::api::{self, Request};

const STATE_FILE: &str = "state.json";

/// Everything a lab created, written before it is created.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// Seconds since the epoch.
    pub created: u64,
    /// The kroute binary the nodes run.
    pub kroute: PathBuf,
    pub topology: Topology,
    pub namespaces: Vec<String>,
    pub processes: Vec<ProcRecord>,
    /// Directories outside the state dir to remove (FRR's run dirs).
    pub run_dirs: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcRecord {
    /// `kroute`, `gobgpd`, `zebra`, `bgpd`.
    pub name: String,
    /// The node or router it belongs to (`n1`, `r2`).
    pub owner: String,
    pub ns: String,
    pub pid: u32,
    /// Clock ticks after boot (`/proc/PID/stat` field 22).
    pub start_time: u64,
    pub log: PathBuf,
}

impl State {
    pub fn dir(&self) -> &Path {
        &self.topology.state_dir
    }

    /// The state of the lab in `dir`, if it is up.
    pub fn load(dir: &Path) -> Result<Option<State>> {
        let path = dir.join(STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(format!("read {}", path.display()))(e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| LabError::Other(format!("{}: {e}", path.display())))
    }

    /// A new state directory and file for `topology`.
    pub fn create(topology: Topology, kroute: PathBuf) -> Result<State> {
        let dir = topology.state_dir.clone();
        std::fs::create_dir_all(&dir).map_err(io_err(format!("create {}", dir.display())))?;
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let s = State {
            created,
            kroute,
            topology,
            namespaces: Vec::new(),
            processes: Vec::new(),
            run_dirs: Vec::new(),
        };
        s.save()?;
        Ok(s)
    }

    /// Write the state file (atomically: a temp file renamed over it).
    pub fn save(&self) -> Result<()> {
        let path = self.dir().join(STATE_FILE);
        let tmp = self.dir().join(format!("{STATE_FILE}.tmp"));
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| LabError::Other(format!("state file: {e}")))?;
        let mut f = File::create(&tmp).map_err(io_err(format!("write {}", tmp.display())))?;
        f.write_all(&text)
            .and_then(|_| f.sync_all())
            .map_err(io_err(format!("write {}", tmp.display())))?;
        std::fs::rename(&tmp, &path).map_err(io_err(format!("write {}", path.display())))
    }

    pub fn add_namespace(&mut self, ns: &str) -> Result<()> {
        self.namespaces.push(ns.to_string());
        self.save()
    }

    pub fn add_run_dir(&mut self, dir: &Path) -> Result<()> {
        self.run_dirs.push(dir.to_path_buf());
        self.save()
    }

    pub fn add_process(&mut self, p: ProcRecord) -> Result<()> {
        self.processes.push(p);
        self.save()
    }

    pub fn process(&self, owner: &str, name: &str) -> Option<&ProcRecord> {
        self.processes
            .iter()
            .rev()
            .find(|p| p.owner == owner && p.name == name)
    }
}

/// `name` on PATH (or the absolute path itself), also looking in the sbin
/// directories a non-login root shell may lack.
pub fn find_program(name: &str) -> Option<PathBuf> {
    if name.starts_with('/') {
        return Path::new(name).is_file().then(|| PathBuf::from(name));
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// Start `argv` inside `ns`, detached: its own session, stdin from
/// /dev/null, stdout and stderr appended to `log`. `ip netns exec` execs
/// the program, so the PID is the daemon's.
pub fn spawn_detached(
    ns: &str,
    argv: &[&str],
    envs: &[(&str, &str)],
    log: &Path,
) -> Result<(u32, u64)> {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(io_err(format!("open {}", log.display())))?;
    let err = out
        .try_clone()
        .map_err(io_err(format!("open {}", log.display())))?;
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns])
        .args(argv)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    // SAFETY: setsid is async-signal-safe and touches only the child.
    unsafe {
        c.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = c.spawn().map_err(|e| LabError::Command {
        argv: format!("ip netns exec {ns} {}", argv.join(" ")),
        detail: e.to_string(),
    })?;
    let pid = child.id();
    // Not waited for: it must outlive us (init adopts it when we exit).
    drop(child);
    let start = start_time(pid).ok_or_else(|| {
        LabError::Other(format!("{} exited at once:\n{}", argv[0], tail(log, 20)))
    })?;
    Ok((pid, start))
}

/// Field 22 of `/proc/PID/stat` (start time), unless the process is gone
/// or a zombie.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid ...: comm may hold spaces and parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if matches!(fields.first(), Some(&"Z") | Some(&"X") | None) {
        return None;
    }
    // `rest` starts at field 3 (state); field 22 is index 19.
    fields.get(19)?.parse().ok()
}

/// Whether the recorded process is still the one we started.
pub fn alive(p: &ProcRecord) -> bool {
    start_time(p.pid) == Some(p.start_time)
}

fn signal(pid: u32, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) with a PID we recorded and verified just before.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// SIGTERM, then SIGKILL after `grace`. Does nothing if the process is gone
/// (or its PID now belongs to another process).
pub fn terminate(p: &ProcRecord, grace: Duration) -> Result<()> {
    if !alive(p) {
        return Ok(());
    }
    signal(p.pid, libc::SIGTERM);
    let start = Instant::now();
    while alive(p) && start.elapsed() < grace {
        std::thread::sleep(Duration::from_millis(25));
    }
    if alive(p) {
        signal(p.pid, libc::SIGKILL);
        let start = Instant::now();
        while alive(p) && start.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(25));
        }
    }
    if alive(p) {
        return Err(LabError::Other(format!(
            "{} (pid {}) of {} does not die",
            p.name, p.pid, p.owner
        )));
    }
    Ok(())
}

/// The last `n` lines of a log file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(n);
    let mut s = format!("--- {} ---\n", path.display());
    for l in &lines[from..] {
        s.push_str(l);
        s.push('\n');
    }
    s
}

/// Waits (at most 10 s) until `probe` answers for the daemon `rec`
/// started; if the daemon exits first, the error carries its log's tail.
pub fn wait_ready(
    rec: &ProcRecord,
    what: &str,
    mut probe: impl FnMut() -> std::result::Result<(), String>,
) -> Result<()> {
    let up = wait_for(Duration::from_secs(10), what, || {
        if !alive(rec) {
            return Ok(false);
        }
        probe().map(|()| true)
    })?;
    if up {
        Ok(())
    } else {
        Err(LabError::Other(format!(
            "{} on {} exited:\n{}",
            rec.name,
            rec.owner,
            tail(&rec.log, 20)
        )))
    }
}

/// Poll `check` every 100 ms until it is `Ok`, at most `timeout`.
pub fn wait_for<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> std::result::Result<T, String>,
) -> Result<T> {
    let start = Instant::now();
    loop {
        match check() {
            Ok(v) => return Ok(v),
            Err(last) if start.elapsed() >= timeout => {
                return Err(LabError::Timeout {
                    what: what.to_string(),
                    last,
                })
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Write node `i`'s config and start its kroute.
pub fn start_kroute(state: &mut State, i: usize) -> Result<()> {
    let node = state.topology.nodes[i].clone();
    std::fs::create_dir_all(&node.dir).map_err(io_err(format!("create {}", node.dir.display())))?;
    let yaml = topology::kroute_config_file(&state.topology, &node);
    std::fs::write(&node.config, yaml)
        .map_err(io_err(format!("write {}", node.config.display())))?;
    run_kroute(state, i)
}

/// Start kroute on node `i` with the config already in its directory and
/// wait until its API answers.
fn run_kroute(state: &mut State, i: usize) -> Result<()> {
    let node = state.topology.nodes[i].clone();
    let log = node.dir.join("kroute.log");
    let bin = state.kroute.to_string_lossy().into_owned();
    let config = node.config.to_string_lossy().into_owned();
    let (pid, start_time) = spawn_detached(
        &node.ns,
        &[&bin, "daemon", "-c", &config],
        &[("RUST_LOG", "info")],
        &log,
    )?;
    let rec = ProcRecord {
        name: "kroute".into(),
        owner: node.name.clone(),
        ns: node.ns.clone(),
        pid,
        start_time,
        log: log.clone(),
    };
    state.add_process(rec.clone())?;
    wait_ready(&rec, "kroute's API socket", || {
        api::call(&node.socket, &Request::Neighbors)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

/// Stop kroute on `node` if it runs, then start it again.
pub fn restart_kroute(state: &mut State, node: &str) -> Result<()> {
    let i = state
        .topology
        .nodes
        .iter()
        .position(|n| n.name == node)
        .ok_or_else(|| {
            let names: Vec<&str> = state
                .topology
                .nodes
                .iter()
                .map(|n| n.name.as_str())
                .collect();
            LabError::Other(format!("no node {node} (nodes: {})", names.join(", ")))
        })?;
    if let Some(p) = state.process(node, "kroute").cloned() {
        terminate(&p, Duration::from_secs(5))?;
        state.processes.retain(|q| *q != p);
        state.save()?;
    }
    run_kroute(state, i)
}
