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
    /// The nexthop object ids this FIB hands out, and the only ids of its
    /// protocol it takes for its own (a previous run's, strays to delete).
    /// Ids are per network namespace, not per table: FIBs of different
    /// tables in one namespace need disjoint ranges.
    pub nexthop_ids: std::ops::RangeInclusive<u32>,
}

/// Ids the default FIB hands out: away from the low ids `ip nexthop` users
/// and zebra pick. Ranges for further FIBs lie below it.
pub const DEFAULT_NEXTHOP_IDS: std::ops::RangeInclusive<u32> = 0x6b72_0000..=u32::MAX;

impl Default for FibConfig {
    fn default() -> Self {
        FibConfig {
            table: 254,
            protocol: 186,
            metric: 20,
            install: true,
            keep_on_exit: false,
            nexthop_objects: true,
            nexthop_ids: DEFAULT_NEXTHOP_IDS,
        }
    }
}
