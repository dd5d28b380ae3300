//! What every daemon under test has: where it runs, the session it
//! expects, what the harness asks it, and how it is stopped.

use std::path::PathBuf;
use std::time::Duration;

use labkit::{Netns, Process};

pub const SENDER_ASN: u32 = 65000;
pub const RECEIVER_ASN: u32 = 65001;
/// The sender's session name in every receiver's config.
pub const PEER_NAME: &str = "blaster";
/// The failover run's second sender.
pub const PEER2_NAME: &str = "blaster2";

pub struct Ctx<'a> {
    pub ns: &'a Netns,
    /// A scratch directory for configs and logs.
    pub dir: PathBuf,
    pub kroute_bin: PathBuf,
    /// The failover run: a second sender (10.255.254.1, same AS) on a
    /// second link, equal paths installed as ECMP, and each daemon's
    /// fastest reaction to a link losing carrier switched on.
    pub failover: bool,
    /// kroute only: `kernel.backupRoutes` (the failover run's
    /// `--backup-routes`).
    pub backup_routes: bool,
    /// The failover run's `bfd` variant: BFD on both sessions with
    /// [`BFD_INTERVAL_MS`] × [`BFD_MULTIPLIER`].
    pub bfd: bool,
}

/// BFD timers of the `bfd` failover variant, the same for every receiver
/// and for the senders' responders: desired TX = required RX = 100 ms,
/// detection after 3 missed packets (RFC 5880 §6.8.4: 300 ms).
pub const BFD_INTERVAL_MS: u32 = 100;
pub const BFD_MULTIPLIER: u8 = 3;

pub trait Receiver {
    /// Every process of the receiver (for RSS and CPU).
    fn pids(&self) -> Vec<u32>;
    /// Prefixes from the sender in the RIB (accepted), or None while the
    /// daemon does not answer yet.
    fn rib_count(&self) -> Option<u64>;
    /// Is the session named `peer` Established? None where the receiver
    /// cannot say (or does not answer).
    fn session_established(&self, _peer: &str) -> Option<bool> {
        None
    }
    /// An error if a process died.
    fn check_alive(&mut self) -> Result<(), String>;
    /// Where its logs are, for error messages.
    fn logs(&self) -> String;
    /// Stop every process: SIGTERM, `grace`, SIGKILL (its launcher's
    /// `stop`).
    fn stop(&mut self, grace: Duration) -> labkit::Result<()>;
}

/// An error (with its log's tail) if a process has exited.
pub fn check(process: &mut Process) -> Result<(), String> {
    process.check_alive().map_err(|e| e.to_string())
}

/// Test helper: every one of `parts` is in `text` (a rendered config).
#[cfg(test)]
pub fn assert_contains_all(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "{part:?} missing in\n{text}");
    }
}
