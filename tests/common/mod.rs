//! Interop test harness: the scenarios' topologies and assertions, on top
//! of `labkit` (namespaces, processes, the daemon launchers). This module
//! only picks the tests' error style: every failure panics with what was
//! last seen.
//!
//! Requirements on the test machine (CI installs them):
//! * run as root (namespaces, veth, binding port 179);
//! * Debian packages `bird2`, `frr`, `gobgpd`, `iproute2`;
//! * `root` in group `frrvty` for `vtysh` (`usermod -a -G frrvty root`).
//!
//! Every test gets its own namespaces (`kt-<pid>-<n>-<tag>`) and its own temp
//! dir, so `cargo test` may run them in parallel. All processes are killed by
//! PID and all namespaces deleted on drop, also when the test panics; on a
//! panic the tail of every daemon log is printed and the temp dir is kept.
#![allow(dead_code)]

pub mod bird;
pub mod frr;
pub mod gobgp;
pub mod kernel;
pub mod kroute;
pub mod peer;
pub mod raw_peer;
pub mod scenarios;

use std::time::Duration;

use labkit::netns::{unique, unique_name};
use labkit::{Netns, ScratchDir, Setup, Veth};

#[allow(unused_imports)]
pub use kernel::route_via;
#[allow(unused_imports)]
pub use peer::{PeerDaemon, PeerNeighbor, PeerRoute, PeerSpec};

/// How long convergence may take before a test fails. Generous: the peers'
/// timers are shortened (connect retry 2 s), so a healthy run needs a few
/// seconds; the bound only matters when something is broken.
pub const CONVERGE: Duration = Duration::from_secs(30);

/// Poll `check` until it returns `Ok`, at most `timeout`; panic with the
/// last observed state (`Err`) on timeout.
pub fn wait_until<T>(timeout: Duration, what: &str, check: impl FnMut() -> Result<T, String>) -> T {
    labkit::wait_for(what, timeout, check).unwrap_or_else(|e| panic!("{e}"))
}

/// A router namespace `kt-<pid>-<n>-<tag>` (no DAD, forwarding on),
/// deleted on drop.
pub fn netns(tag: &str) -> Netns {
    Netns::create(&unique_name("kt", tag), &Setup::ROUTER)
        .unwrap_or_else(|e| panic!("namespace for {tag}: {e}"))
}

/// A per-test directory under `/tmp/kroute-tests/`, kept if the test
/// panics.
pub fn test_dir(tag: &str) -> ScratchDir {
    let path = format!(
        "/tmp/kroute-tests/{tag}-{}-{}",
        std::process::id(),
        unique()
    );
    ScratchDir::create(path).unwrap_or_else(|e| panic!("{e}"))
}

/// A veth pair between `a` and `b`, each end with its addresses (CIDR;
/// IPv6 without DAD), both up, their link-local addresses usable.
pub fn veth(a: &Netns, b: &Netns, addrs_a: &[&str], addrs_b: &[&str]) -> Veth {
    // Unique on the machine and <= 15 chars: "v" + pid (<= 7 digits) + n + a|b.
    let base = format!("v{}{}", std::process::id() % 10_000_000, unique() % 1000);
    let v = labkit::veth(a, &format!("{base}a"), b, &format!("{base}b"))
        .unwrap_or_else(|e| panic!("{e}"));
    for (ns, dev, addrs) in [(a, &v.dev_a, addrs_a), (b, &v.dev_b, addrs_b)] {
        for cidr in addrs {
            ns.add_addr(dev, cidr).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    // FRR refuses IPv6 sessions until the link-local address exists.
    link_local(a, &v.dev_a);
    link_local(b, &v.dev_b);
    v
}

/// The (usable) link-local address of `dev` in `ns`.
pub fn link_local(ns: &Netns, dev: &str) -> String {
    ns.wait_link_local(dev, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"))
        .to_string()
}

/// A shared L2 segment: a bridge in its own namespace, one veth per member.
/// Members' addresses are on one subnet, so next hops reflected by a route
/// reflector are directly reachable (as on a rack's switch).
pub struct Lan {
    lan: labkit::Lan,
    /// Member-side device name per attached member, in attach order.
    pub devs: Vec<String>,
}

impl Lan {
    pub fn new(tag: &str) -> Lan {
        let lan = labkit::Lan::create(netns(&format!("sw{tag}")), "br0")
            .unwrap_or_else(|e| panic!("{e}"));
        Lan {
            lan,
            devs: Vec::new(),
        }
    }

    /// Attach `ns` with the given addresses; returns the device name in `ns`.
    pub fn attach(&mut self, ns: &Netns, addrs: &[&str]) -> String {
        let v = veth(ns, &self.lan.switch, addrs, &[]);
        self.lan
            .switch
            .set_master(&v.dev_b, &self.lan.bridge)
            .unwrap_or_else(|e| panic!("{e}"));
        self.devs.push(v.dev_a.clone());
        v.dev_a
    }
}
/// Resumes stopped processes when dropped, so that a failed test leaves
/// nothing frozen behind (its daemons are then killed by PID as usual).
pub struct Stopped(Vec<u32>);

impl Stopped {
    pub fn stop(pids: Vec<u32>) -> Stopped {
        for &pid in &pids {
            // SAFETY: plain kill(2) on PIDs this test started.
            assert_eq!(
                unsafe { libc::kill(pid as i32, libc::SIGSTOP) },
                0,
                "SIGSTOP {pid}"
            );
        }
        Stopped(pids)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        for &pid in &self.0 {
            // SAFETY: as above.
            unsafe { libc::kill(pid as i32, libc::SIGCONT) };
        }
    }
}
