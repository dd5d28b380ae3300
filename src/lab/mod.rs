//! `kroute lab`: the seed clusters on one machine.
//!
//! `up` builds a scenario out of network namespaces (a LAN bridge, nodes,
//! pods, upstream FRR routers), runs kroute on every node (this same binary,
//! `kroute daemon`, inside the node's namespace) next to a stand-in for the
//! CNI's BGP control plane (GoBGP, which Cilium embeds) — or, in the
//! kubernetes scenario, `kroute daemon --kubernetes` against a Kubernetes
//! API stand-in — waits until every node's kernel holds the other nodes'
//! pod CIDRs, and prints a ping matrix. `break export R` / `repair export
//! R` make an upstream send its nodes nothing, for `kroute cluster check`.
//! `status` shows sessions, kernel routes and the matrix; `down` kills every
//! process by PID and deletes every namespace it created.
//!
//! Everything a lab creates is written to a JSON state file in
//! `/run/kroute-lab/NAME/` *before* it is created, so `down` (and a failed
//! `up`, which runs the same teardown) can always clean up.
//!
//! ```text
//! topology.rs  scenario → nodes, links, addresses, configs (pure)
//! netns.rs     the topology's namespaces, links and addresses
//! procs.rs     the state file; detached daemons in it, stopped by PID
//! frr.rs       FRR (zebra + bgpd) per router namespace
//! gobgp.rs     the CNI stand-in (gobgpd) per node namespace
//! kube.rs      kubernetes: the API stand-in, its objects, kroute --kubernetes
//! status.rs    sessions (API socket), kernel routes, ping matrix
//! render.rs    tables and the matrix
//! ```
//!
//! Namespaces, processes (stopped by PID and start time), readiness
//! polling and the kroute, FRR and GoBGP launchers are labkit's (the crate
//! the integration tests and the benchmark use too); this module keeps the
//! lab's own logic. Sessions are read with kroute's typed API client.

mod frr;
mod gobgp;
mod kube;
mod netns;
mod procs;
mod render;
mod status;
mod topology;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};

use crate::output::Output;
use procs::State;
pub use topology::Scenario;
use topology::Topology;

/// Where lab state lives: `/run/kroute-lab/NAME/`.
pub const STATE_ROOT: &str = "/run/kroute-lab";

/// How long `up` waits for the routes to converge.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(45);

#[derive(Subcommand, Debug)]
pub enum LabCmd {
    /// Build a seed cluster in network namespaces, run kroute on every node,
    /// wait for convergence and print the ping matrix
    Up(UpArgs),
    /// Sessions, kernel routes and the ping matrix of every node
    Status(NameArg),
    /// Stop every lab process (by PID) and delete the lab's namespaces
    Down(NameArg),
    /// Restart kroute on some nodes (all when none are named), e.g. after
    /// rebuilding it; a node whose kroute was stopped is started again
    Restart {
        /// Node names (n1, n2, ...)
        nodes: Vec<String>,
        #[command(flatten)]
        name: NameArg,
    },
    /// Break something on purpose, e.g. `break export r1`: the router
    /// sends the nodes nothing (its sessions stay up), as an upstream with
    /// a bad outbound policy does; `cluster check` then names what is missing
    Break(BreakArgs),
    /// Undo `break` (e.g. `repair export r1`)
    Repair(BreakArgs),
}

#[derive(Args, Debug)]
pub struct BreakArgs {
    /// What to break or repair
    #[arg(value_enum)]
    pub what: Breakable,
    /// The upstream router (r1, r2, ...)
    pub router: String,
    #[command(flatten)]
    pub name: NameArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Breakable {
    /// The router's export to the nodes (a deny-all outbound route-map)
    Export,
}

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Which seed cluster to build
    #[arg(long, value_enum, default_value_t = Scenario::CiliumFrr)]
    pub scenario: Scenario,
    /// Number of nodes (2..=9; default: 6, or 3 for clusterip-return-path)
    #[arg(long, value_parser = clap::value_parser!(u8).range(2..=9))]
    pub nodes: Option<u8>,
    /// same-asn-rr without `allowAsIn` (shows the seed's failure)
    #[arg(long, hide = true)]
    pub no_allowas_in: bool,
    #[command(flatten)]
    pub name: NameArg,
}

#[derive(Args, Debug)]
pub struct NameArg {
    /// Lab instance name: namespaces are NAME-*, state in /run/kroute-lab/NAME
    #[arg(long = "name", default_value = "kl", hide = true)]
    pub name: String,
}

/// Everything that can go wrong in the lab (labkit's error: the command,
/// the namespace, the log tail), shown to the user as one message.
pub use labkit::{Error, Result};

/// Run `kroute lab ...`.
pub fn run(cmd: &LabCmd, output: Output) -> Result<()> {
    match cmd {
        LabCmd::Up(args) => up(args, output),
        LabCmd::Status(n) => {
            let state = load_state(&n.name)?;
            let report = status::collect(&state);
            match output {
                Output::Json => println!("{}", render::json(&report)),
                Output::Table => print!("{}", render::status(&state, &report)),
            }
            Ok(())
        }
        LabCmd::Down(n) => {
            labkit::cmd::require_root()?;
            check_name(&n.name)?;
            let dir = state_dir(&n.name);
            match State::load(&dir) {
                Ok(Some(state)) => {
                    teardown(&state);
                    println!("lab {} is down", n.name);
                }
                Ok(None) => println!("lab {} is not up (nothing to do)", n.name),
                Err(e) => {
                    return Err(Error::Other(format!(
                        "{e}; remove {} by hand after checking `ip netns list`",
                        dir.display()
                    )))
                }
            }
            Ok(())
        }
        LabCmd::Restart { nodes, name } => {
            let mut state = load_state(&name.name)?;
            let picked: Vec<String> = if nodes.is_empty() {
                state
                    .topology
                    .nodes
                    .iter()
                    .map(|n| n.name.clone())
                    .collect()
            } else {
                nodes.clone()
            };
            for node in &picked {
                let i = procs::stop_kroute(&mut state, node)?;
                if state.topology.kubernetes.is_some() {
                    // Its config comes from the cluster again (or its cache).
                    kube::start_kroute(&mut state, i)?;
                } else {
                    procs::start_kroute_from_file(&mut state, i)?;
                }
                println!("kroute on {node} restarted");
            }
            Ok(())
        }
        LabCmd::Break(args) => set_broken(args, true),
        LabCmd::Repair(args) => set_broken(args, false),
    }
}

/// `break export R` / `repair export R`.
fn set_broken(args: &BreakArgs, broken: bool) -> Result<()> {
    let mut state = load_state(&args.name.name)?;
    let t = &state.topology;
    let Some(r) = t.routers.iter().find(|r| r.name == args.router).cloned() else {
        let names: Vec<&str> = t.routers.iter().map(|r| r.name.as_str()).collect();
        return Err(Error::Other(format!(
            "no router {} (routers: {})",
            args.router,
            names.join(", ")
        )));
    };
    match args.what {
        Breakable::Export => frr::set_export_broken(t, &r, broken)?,
    }
    state.broken_exports.retain(|x| *x != r.name);
    if broken {
        state.broken_exports.push(r.name.clone());
    }
    state.save()?;
    let nodes: Vec<&str> = r
        .neighbors
        .iter()
        .filter(|n| state.topology.node(&n.name).is_some())
        .map(|n| n.name.as_str())
        .collect();
    if broken {
        println!(
            "{}'s export to {} is broken (sessions stay up, it sends them no routes); \
             `kroute lab repair export {}` undoes it",
            r.name,
            nodes.join(", "),
            r.name
        );
    } else {
        println!("{}'s export to {} is repaired", r.name, nodes.join(", "));
    }
    Ok(())
}

fn load_state(name: &str) -> Result<State> {
    labkit::cmd::require_root()?;
    check_name(name)?;
    match State::load(&state_dir(name))? {
        Some(s) => Ok(s),
        None => Err(Error::Other(format!(
            "lab {name} is not up (start it with `kroute lab up`)"
        ))),
    }
}

pub fn state_dir(name: &str) -> PathBuf {
    Path::new(STATE_ROOT).join(name)
}

/// Lab names become namespace prefixes and directory names.
fn check_name(name: &str) -> Result<()> {
    let ok = (1..=12).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::Other(format!(
            "bad lab name {name:?}: 1 to 12 lowercase letters and digits, starting with a letter"
        )))
    }
}

/// Programs a scenario runs, each with the Debian package that has it.
fn require_programs(topo: &Topology) -> Result<()> {
    let mut need: Vec<(String, &str)> =
        vec![("ip".into(), "iproute2"), ("ping".into(), "iputils-ping")];
    if topo.nodes.iter().any(|n| n.cni.is_some()) {
        need.push(("gobgpd".into(), "gobgpd"));
        need.push(("gobgp".into(), "gobgpd"));
    }
    if !topo.routers.is_empty() {
        need.extend(frr::DAEMONS.map(|d| (d.binary(), "frr")));
    }
    for (program, package) in need {
        labkit::cmd::require_program(&program, package)?;
    }
    if topo.kubernetes.is_some() {
        kube::require_python()?;
    }
    Ok(())
}

fn up(args: &UpArgs, output: Output) -> Result<()> {
    let started = Instant::now();
    labkit::cmd::require_root()?;
    let name = &args.name.name;
    check_name(name)?;
    let topo = topology::build(&topology::LabOptions {
        name: name.clone(),
        scenario: args.scenario,
        nodes: args.nodes,
        allow_as_in: !args.no_allowas_in,
        state_dir: state_dir(name),
    })
    .map_err(Error::Other)?;
    require_programs(&topo)?;
    let kroute =
        std::env::current_exe().map_err(labkit::error::io("cannot find the kroute binary"))?;
    if let Some(old) = State::load(&topo.state_dir)? {
        return Err(Error::Other(format!(
            "lab {name} is already up ({}, started {} ago); `kroute lab down` first",
            old.topology.scenario,
            age(old.created)
        )));
    }
    let mut state = State::create(topo, kroute)?;
    eprintln!(
        "kroute lab: building {} ({} nodes, {} upstream routers) in namespaces {name}-*",
        state.topology.scenario,
        state.topology.nodes.len(),
        state.topology.routers.len()
    );
    if let Err(e) = build(&mut state) {
        eprintln!("kroute lab: up failed: {e}");
        eprintln!("kroute lab: cleaning up");
        teardown(&state);
        return Err(e);
    }
    let converged = wait_converged(&state);
    let report = status::collect(&state);
    let secs = started.elapsed().as_secs_f64();
    match output {
        Output::Json => println!("{}", render::json(&report)),
        Output::Table => {
            print!("{}", render::matrix(&state, &report.matrix));
            println!();
            let outcome = match (&converged, state.topology.expect_routes()) {
                (Ok(()), true) => "every node has every other pod CIDR in its kernel".to_string(),
                (Ok(()), false) => "as in seed 001, without allowAsIn every node rejects the \
                                    other nodes' routes (AS-path loop); `explain` says so"
                    .to_string(),
                (Err(e), _) => format!("NOT converged: {e}"),
            };
            println!(
                "lab {name} is up: {} in {secs:.1} s; {outcome}",
                state.topology.scenario
            );
            println!("  kroute lab status        sessions, kernel routes, this matrix");
            println!(
                "  kroute --socket {} explain {}",
                state.topology.nodes[0].socket.display(),
                state
                    .topology
                    .nodes
                    .get(1)
                    .map(|n| n.pod.cidr_v6.to_string())
                    .unwrap_or_default()
            );
            if let Some(api) = &state.topology.kubernetes {
                println!(
                    "  ip netns exec {} kroute cluster check --kubeconfig {}",
                    api.ns,
                    api.kubeconfig.display()
                );
                println!(
                    "                           every node x pod CIDR, from the API (at {}:{}, in {})",
                    api.address, api.port, api.ns
                );
                println!(
                    "  kroute lab break export r1  r1 sends its nodes nothing; `repair export r1` undoes it"
                );
            }
            println!("  kroute lab down          stop everything, delete the namespaces");
        }
    }
    if let Err(e) = converged {
        if state.topology.expect_routes() {
            return Err(e);
        }
    }
    Ok(())
}

/// "42 s", "5 min", "3 h" since `created` (seconds since the epoch).
fn age(created: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(created);
    match now.saturating_sub(created) {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

/// Create everything, recording each thing in the state file first.
fn build(state: &mut State) -> Result<()> {
    netns::create_all(state)?;
    // The CNI stand-ins first: GoBGP waits several seconds before its first
    // connection attempt, and that wait overlaps with everything else.
    for i in 0..state.topology.nodes.len() {
        if state.topology.nodes[i].cni.is_some() {
            gobgp::start(state, i)?;
            gobgp::announce(state, i)?;
        }
    }
    kube::start_api(state)?;
    for i in 0..state.topology.routers.len() {
        frr::start(state, i)?;
    }
    for i in 0..state.topology.nodes.len() {
        if state.topology.kubernetes.is_some() {
            kube::start_kroute(state, i)?;
        } else {
            procs::start_kroute(state, i)?;
        }
    }
    Ok(())
}

/// Poll until the scenario's expected state (bounded).
fn wait_converged(state: &State) -> Result<()> {
    labkit::wait_for("the routes to converge", CONVERGE_TIMEOUT, || {
        status::converged(state)
    })
}

/// Kill every process by PID, delete namespaces and run directories, then
/// the state directory. Idempotent; errors are reported and skipped so the
/// rest is still cleaned.
fn teardown(state: &State) {
    for p in state.processes.iter().rev() {
        if let Err(e) = p.id.terminate(Duration::from_secs(3)) {
            eprintln!("kroute lab: {} of {}: {e}", p.name, p.owner);
        }
    }
    for ns in state.namespaces.iter().rev() {
        if let Err(e) = netns::delete(ns) {
            eprintln!("kroute lab: {e}");
        }
    }
    for d in &state.run_dirs {
        if d.exists() {
            if let Err(e) = std::fs::remove_dir_all(d) {
                eprintln!("kroute lab: remove {}: {e}", d.display());
            }
        }
    }
    if let Err(e) = std::fs::remove_dir_all(state.dir()) {
        if e.kind() != std::io::ErrorKind::NotFound {
            eprintln!("kroute lab: remove {}: {e}", state.dir().display());
        }
    }
}
