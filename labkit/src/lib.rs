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
