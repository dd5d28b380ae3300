//! What the FIB writes and how it behaves at exit.

use serde::{Deserialize, Serialize};

/// What the FIB writes and how it behaves at exit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FibConfig {
    /// Kernel routing table (254 = main). Tables above 255 go in RTA_TABLE.
    pub table: u32,
    /// rtm_protocol of our routes (186 = bgp).
    pub protocol: u8,
    /// RTA_PRIORITY of our routes.
    pub metric: u32,
    /// False: never write routes (next hops are still resolved and reported).
    pub install: bool,
    /// True: leave our routes in the kernel at shutdown.
    pub keep_on_exit: bool,
    /// True: routes point at shared kernel nexthop objects (`ip nexthop`)
    /// instead of carrying their next hops; falls back by itself on a
    /// kernel without them.
    pub nexthop_objects: bool,
    /// True: a prefix with a backup set also gets a standby route via it
    /// at `metric + 1` (pointing at the backup's nexthop object), which the
    /// kernel falls back to by itself when the primary's next hop goes:
    /// failover of a lost single best path costs no write per prefix.
    /// Needs `nexthop_objects`; doubles the kernel routes of such prefixes.
    pub backup_routes: bool,
}

impl Default for FibConfig {
    fn default() -> Self {
        FibConfig {
            table: 254,
            protocol: 186,
            metric: 20,
            install: true,
            keep_on_exit: false,
            nexthop_objects: true,
            backup_routes: false,
        }
    }
}
