//! The daemons under test. Each starts in the receiver namespace, peers
//! passively with the sender (10.255.255.1, AS 65000) as AS 65001, imports
//! everything, exports nothing, and (except GoBGP) installs its best paths in
//! the kernel's main table. Each answers "how many prefixes from the sender
//! are in your RIB" through its own CLI (kroute: its API). labkit starts
//! and stops them; `receiver.rs` says what they have in common.

mod bird;
mod frr;
mod gobgp;
mod kroute;
mod receiver;

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

pub use receiver::{
    Ctx, Receiver, BFD_INTERVAL_MS, BFD_MULTIPLIER, PEER2_NAME, PEER_NAME, RECEIVER_ASN, SENDER_ASN,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Kroute,
    /// kroute with `kernel.install: false`: the RIB alone.
    KrouteRib,
    Bird,
    Frr,
    Gobgp,
    /// Not a daemon: `ip -batch` of the same routes, the kernel's bound.
    Kernel,
    /// Not a daemon: the same routes in 64 KiB netlink batches without a
    /// per-route ack, the kernel's floor.
    Netlink,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Kroute,
        Kind::KrouteRib,
        Kind::Bird,
        Kind::Frr,
        Kind::Gobgp,
        Kind::Kernel,
        Kind::Netlink,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Kroute => "kroute",
            Kind::KrouteRib => "kroute-rib",
            Kind::Bird => "bird",
            Kind::Frr => "frr",
            Kind::Gobgp => "gobgp",
            Kind::Kernel => "kernel",
            Kind::Netlink => "netlink",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::Kroute => "kroute",
            Kind::KrouteRib => "kroute, `kernel.install: false` (RIB only)",
            Kind::Bird => "BIRD 2",
            Kind::Frr => "FRR (bgpd + zebra)",
            Kind::Gobgp => "GoBGP (RIB only)",
            Kind::Kernel => "kernel bound (`ip -batch`, one nhid)",
            Kind::Netlink => "kernel floor (64 KiB netlink batches, no per-route ack, one nhid)",
        }
    }

    /// Not a daemon: the harness itself writes the routes.
    pub fn is_bound(self) -> bool {
        matches!(self, Kind::Kernel | Kind::Netlink)
    }

    /// Does this receiver put routes in the kernel?
    pub fn programs_kernel(self) -> bool {
        !matches!(self, Kind::Gobgp | Kind::KrouteRib)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Kind, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown receiver {s:?} (kroute, kroute-rib, bird, frr, gobgp, kernel, netlink)"
                )
            })
    }
}

/// How long a daemon may take to exit after SIGTERM (it removes its routes
/// from the kernel first) before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A started receiver, stopped with [`STOP_GRACE`] when dropped.
pub struct Running(Box<dyn Receiver>);

impl Deref for Running {
    type Target = dyn Receiver;
    fn deref(&self) -> &(dyn Receiver + 'static) {
        &*self.0
    }
}

impl DerefMut for Running {
    fn deref_mut(&mut self) -> &mut (dyn Receiver + 'static) {
        &mut *self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Err(e) = self.0.stop(STOP_GRACE) {
            eprintln!("kroute-bench: {e}");
        }
    }
}

impl Running {
    /// Wait (at most 30 s) until the daemon's CLI answers: it is ready for
    /// the session. An error carries where its logs are.
    pub fn wait_ready(&mut self, kind: Kind) -> Result<(), String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while self.rib_count().is_none() {
            let failed = match self.check_alive() {
                Err(e) => Some(e),
                Ok(()) => (std::time::Instant::now() > deadline)
                    .then(|| format!("{kind} does not answer its CLI")),
            };
            if let Some(e) = failed {
                return Err(format!("{e} (logs: {})", self.logs()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }
}

/// Start a receiver; its processes are registered for the signal cleanup.
pub fn start(kind: Kind, ctx: &Ctx) -> labkit::Result<Running> {
    let rx: Box<dyn Receiver> = match kind {
        Kind::Kroute => Box::new(kroute::Kroute::start(ctx, true)?),
        Kind::KrouteRib => Box::new(kroute::Kroute::start(ctx, false)?),
        Kind::Bird => Box::new(bird::Bird::start(ctx)?),
        Kind::Frr => Box::new(frr::Frr::start(ctx)?),
        Kind::Gobgp => Box::new(gobgp::Gobgp::start(ctx)?),
        Kind::Kernel | Kind::Netlink => {
            return Err(labkit::Error::Other(
                "the kernel bounds are not daemons; run.rs measures them directly".into(),
            ))
        }
    };
    crate::netns::register_pids(&rx.pids());
    Ok(Running(rx))
}

/// The version line of a program, for the report.
pub fn version(kind: Kind, kroute_bin: &std::path::Path) -> String {
    let (prog, args): (PathBuf, &[&str]) = match kind {
        Kind::Bird => ("bird".into(), &["--version"]),
        Kind::Frr => ("/usr/lib/frr/bgpd".into(), &["--version"]),
        Kind::Gobgp => ("gobgpd".into(), &["--version"]),
        Kind::Kroute | Kind::KrouteRib => (kroute_bin.to_path_buf(), &["--version"]),
        Kind::Kernel => ("ip".into(), &["-V"]),
        Kind::Netlink => {
            let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
            return format!("Linux {}", r.trim());
        }
    };
    let Ok(out) = Command::new(&prog).args(args).output() else {
        return "not installed".into();
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}
