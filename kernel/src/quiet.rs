//! The monitor's quiet mode: during a large sweep the monitor socket leaves
//! the route notification groups. While a socket is in a group the kernel
//! builds a notification for every route we write, only for our socket
//! filter to drop it; at a full table that was ~10 % of the writer's time
//! (perf). Foreign route changes missed meanwhile are caught by resolving
//! every next hop again when the sweep ends.

use crate::netlink;

/// A sweep that starts with at least this many dirty prefixes is written
/// with the monitor out of the route groups.
pub(crate) const QUIET_SWEEP: usize = 10_000;

pub(crate) struct Quiet {
    /// The monitor's socket, read by the monitor thread.
    monitor_fd: i32,
    on: bool,
}

impl Quiet {
    pub(crate) fn new(monitor_fd: i32) -> Quiet {
        Quiet {
            monitor_fd,
            on: false,
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
        !on
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
