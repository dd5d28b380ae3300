//! The state file, and the lab's long-lived processes in it.
//!
//! Daemons are started detached (labkit: their own session, output to a
//! log file) so they outlive `kroute lab up`; each is recorded with its PID
//! and its start time (field 22 of `/proc/PID/stat`), so a PID reused by
//! another process after ours died is never signalled.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use labkit::error::io as io_err;
use labkit::kroute::{Kroute, KrouteSpec};
use labkit::{Error, Netns, ProcId, Result};
use serde::{Deserialize, Serialize};

use super::topology::{self, Topology};

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
    /// Routers whose export to the nodes `kroute lab break export` broke.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub broken_exports: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcRecord {
    /// `kroute`, `gobgpd`, `zebra`, `bgpd`.
    pub name: String,
    /// The node or router it belongs to (`n1`, `r2`).
    pub owner: String,
    pub ns: String,
    /// PID and start time, as `pid` and `startTime` in the file.
    #[serde(flatten)]
    pub id: ProcId,
    pub log: PathBuf,
}

impl ProcRecord {
    pub fn new(name: &str, owner: &str, ns: &str, id: ProcId, log: &Path) -> ProcRecord {
        ProcRecord {
            name: name.to_string(),
            owner: owner.to_string(),
            ns: ns.to_string(),
            id,
            log: log.to_path_buf(),
        }
    }

    /// Whether the recorded process is still the one we started.
    pub fn alive(&self) -> bool {
        self.id.alive()
    }
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
            .map_err(|e| Error::Other(format!("{}: {e}", path.display())))
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
            broken_exports: Vec::new(),
        };
        s.save()?;
        Ok(s)
    }

    /// Write the state file (atomically: a temp file renamed over it).
    pub fn save(&self) -> Result<()> {
        let path = self.dir().join(STATE_FILE);
        let tmp = self.dir().join(format!("{STATE_FILE}.tmp"));
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Other(format!("state file: {e}")))?;
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

/// Write node `i`'s config and start its kroute.
pub fn start_kroute(state: &mut State, i: usize) -> Result<()> {
    let node = state.topology.nodes[i].clone();
    std::fs::create_dir_all(&node.dir).map_err(io_err(format!("create {}", node.dir.display())))?;
    let yaml = topology::kroute_config_file(&state.topology, &node);
    run_kroute(state, i, yaml)
}

/// Start kroute on node `i` with config `yaml` (labkit waits until its API
/// answers), detached, and record it.
fn run_kroute(state: &mut State, i: usize, yaml: String) -> Result<()> {
    let node = state.topology.nodes[i].clone();
    let spec = KrouteSpec {
        config_path: node.config.clone(),
        socket: node.socket.clone(),
        detached: true,
        ..KrouteSpec::in_dir(&state.kroute, &node.dir, yaml)
    };
    let log = spec.log.clone();
    let kroute = Kroute::start(&Netns::open(&node.ns)?, spec)?;
    if let Some(id) = kroute.detach() {
        state.add_process(ProcRecord::new("kroute", &node.name, &node.ns, id, &log))?;
    }
    Ok(())
}

/// Stop kroute on `node` if it runs; returns the node's index (the caller
/// starts it again: from its file, [`start_kroute_from_file`], or from the
/// cluster in the kubernetes scenario).
pub fn stop_kroute(state: &mut State, node: &str) -> Result<usize> {
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
            Error::Other(format!("no node {node} (nodes: {})", names.join(", ")))
        })?;
    if let Some(p) = state.process(node, "kroute").cloned() {
        p.id.terminate(Duration::from_secs(5))?;
        state.processes.retain(|q| *q != p);
        state.save()?;
    }
    Ok(i)
}

/// Start kroute on node `i` with the config in its directory, which may
/// have been edited since `up`.
pub fn start_kroute_from_file(state: &mut State, i: usize) -> Result<()> {
    let config = &state.topology.nodes[i].config;
    let yaml =
        std::fs::read_to_string(config).map_err(io_err(format!("read {}", config.display())))?;
    run_kroute(state, i, yaml)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The state file keeps a process's PID and start time at the top of
    /// its record (what `lab down` and the lab tests read).
    #[test]
    fn process_record_in_the_state_file() {
        let id = ProcId {
            pid: 42,
            start_time: 777,
        };
        let rec = ProcRecord::new("bgpd", "r1", "kl-r1", id, Path::new("/x/bgpd.log"));
        let v = serde_json::to_value(&rec).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"name": "bgpd", "owner": "r1", "ns": "kl-r1", "pid": 42,
                "startTime": 777, "log": "/x/bgpd.log"})
        );
        assert_eq!(serde_json::from_value::<ProcRecord>(v).unwrap(), rec);
    }
}
