//! The monitor's quiet mode: during a large sweep the monitor socket leaves
//! the route notification groups. While a socket is in a group the kernel
//! builds a notification for every route we write, only for our socket
//! filter to drop it; at a full table that was ~10 % of the writer's time
//! (perf). Foreign route changes missed meanwhile are caught by resolving
//! every next hop again when the sweep ends; changes others made to our
//! own routes meanwhile, by comparing the kernel's table with ours once
//! the FIB has been idle for [`VERIFY_AFTER`] since: a full-table dump
//! costs about as much as the notifications quiet mode saves, so
//! back-to-back sweeps (a load then a change of every next hop, a peer
//! flapping) pay it once, after the last, and none is paid mid-load.

use std::time::{Duration, Instant};

use crate::netlink;

/// Idle time after a quiet sweep before the kernel's table is compared
/// with ours.
pub(crate) const VERIFY_AFTER: Duration = Duration::from_secs(1);

/// A sweep that starts with at least this many dirty prefixes is written
/// with the monitor out of the route groups.
pub(crate) const QUIET_SWEEP: usize = 10_000;

pub(crate) struct Quiet {
    /// The monitor's socket, read by the monitor thread.
    monitor_fd: i32,
    on: bool,
    /// When to compare the kernel's table with ours, after the last quiet
    /// sweep, if the FIB is idle then.
    verify_at: Option<Instant>,
}

impl Quiet {
    pub(crate) fn new(monitor_fd: i32) -> Quiet {
        Quiet {
            monitor_fd,
            on: false,
            verify_at: None,
        }
    }

    /// Leaves (`on`) or rejoins the route notification groups; returns true
    /// when it rejoined them (next hops must then be resolved again).
    pub(crate) fn set(&mut self, on: bool) -> bool {
        if on == self.on {
            return false;
        }
        for g in [netlink::RTNLGRP_IPV4_ROUTE, netlink::RTNLGRP_IPV6_ROUTE] {
            if let Err(e) = netlink::set_membership(self.monitor_fd, g, !on) {
                tracing::warn!("netlink route group {g}: {e}");
            }
        }
        self.on = on;
        if !on {
            self.verify_at = Some(Instant::now() + VERIFY_AFTER);
        }
        !on
    }

    /// When the comparison after a quiet sweep is due (if idle by then).
    pub(crate) fn verify_at(&self) -> Option<Instant> {
        self.verify_at
    }

    /// Whether to compare the kernel's table with ours now: due, and the
    /// FIB `idle` (nothing to write); then it is taken.
    pub(crate) fn take_verify(&mut self, now: Instant, idle: bool) -> bool {
        if idle && !self.on && self.verify_at.is_some_and(|t| t <= now) {
            self.verify_at = None;
            return true;
        }
        false
    }

    /// For tests: leaves (or rejoins) the route and nexthop groups, so that
    /// what changes meanwhile is seen only by a resync, as when
    /// notifications are lost. Independent of the quiet mode above (tests
    /// using it write small sweeps).
    pub(crate) fn deafen(&self, deaf: bool) {
        for g in [
            netlink::RTNLGRP_IPV4_ROUTE,
            netlink::RTNLGRP_IPV6_ROUTE,
            crate::nexthop::RTNLGRP_NEXTHOP,
        ] {
            if let Err(e) = netlink::set_membership(self.monitor_fd, g, !deaf) {
                tracing::warn!("netlink group {g}: {e}");
            }
        }
    }
}
