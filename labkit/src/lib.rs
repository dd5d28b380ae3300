//! The lab kit: what `kroute lab`, the integration tests and the benchmark
//! share to build BGP labs on one machine.
//!
//! ```text
//! error.rs    the one error type (command, namespace, stderr / log tail)
//! cmd.rs      running helper commands, finding programs
//! wait.rs     wait_for: the one readiness poll
//! dir.rs      scratch directories (kept when a test panics)
//! netns.rs    namespaces (owned or detached), veth pairs, addresses, bridges
//! procfs.rs   /proc/PID/stat and status: start time, CPU, RSS
//! kernel.rs   a namespace's routing table (`ip -j route`)
//! rib.rs      BgpPath: a peer daemon's RIB entry
//! process.rs  daemons: spawn (in a namespace, with a log), adopt, stop by PID
//! frr.rs      FRR: zebra, bgpd, bfdd; bgpd/bfdd config; vtysh
//! bird.rs     BIRD 2: config, birdc
//! gobgp.rs    GoBGP: gobgpd.toml, the gobgp CLI
//! kroute.rs   kroute: config (YAML or a Serialize value), its CLI
//! ```
//!
//! Everything needs root except the pure parts (config writers, /proc
//! parsing, `wait_for`).
//!
//! Every fallible call returns [`Result`]; tests `.expect()` it, `kroute
//! lab` passes it on with `?`. What a value owns (a namespace, a process,
//! a directory) is removed when it is dropped, unless it is detached first
//! (`kroute lab up` keeps its lab running and records the names and
//! [`ProcId`]s to stop it later).
//!
//! ```no_run
//! use std::time::Duration;
//! use labkit::{bird, veth, Afi, Netns, Setup};
//!
//! # fn main() -> labkit::Result<()> {
//! let a = Netns::create("ex-a", &Setup::ROUTER)?;
//! let b = Netns::create("ex-b", &Setup::ROUTER)?;
//! veth(&a, "eth0", &b, "eth0")?;
//! a.add_addr("eth0", "10.0.0.1/30")?;
//! b.add_addr("eth0", "10.0.0.2/30")?;
//! let config = bird::BirdConfig {
//!     router_id: "10.0.0.1".into(),
//!     bgp: vec![bird::BgpProtocol {
//!         name: "peer".into(),
//!         local_address: "10.0.0.1".into(),
//!         local_as: 65001,
//!         neighbor_address: "10.0.0.2".into(),
//!         neighbor_as: 65002,
//!         options: vec![],
//!         channels: vec![bird::Channel::all(Afi::Ipv4)],
//!     }],
//!     ..Default::default()
//! };
//! let dir = labkit::ScratchDir::create("/tmp/labkit-example")?;
//! let mut bird = bird::Bird::start(&a, &bird::BirdSpec::new(dir.path(), config.render()))?;
//! // Err(state line) until Established; a failing birdc is a state too.
//! labkit::wait_for("the session", Duration::from_secs(30), || {
//!     bird.established("peer").unwrap_or_else(|e| Err(e.to_string()))
//! })?;
//! bird.stop(Duration::from_secs(3))?;
//! # Ok(())
//! # }
//! ```

pub mod bird;
pub mod cmd;
pub mod dir;
pub mod error;
pub mod frr;
pub mod gobgp;
pub mod kernel;
pub mod kroute;
pub mod netns;
pub mod process;
pub mod procfs;
pub mod rib;
pub mod wait;

pub use dir::ScratchDir;
pub use error::{Error, Result};
pub use netns::{veth, Lan, Netns, Setup, Veth};
pub use process::{ProcId, Process, Spawn};
pub use wait::wait_for;

/// An address family, as the daemons' configs name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Afi {
    Ipv4,
    Ipv6,
}

impl Afi {
    /// `ipv4` / `ipv6`.
    pub fn name(self) -> &'static str {
        match self {
            Afi::Ipv4 => "ipv4",
            Afi::Ipv6 => "ipv6",
        }
    }

    /// The family of a prefix or address in text form.
    pub fn of(addr: &str) -> Afi {
        if addr.contains(':') {
            Afi::Ipv6
        } else {
            Afi::Ipv4
        }
    }
}
