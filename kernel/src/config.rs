//! What the FIB writes and how it behaves at exit.

use std::ops::RangeInclusive;

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
    /// The nexthop object ids this FIB hands out. Ids are per network
    /// namespace, not per table: FIBs of different tables in one namespace
    /// need disjoint ranges ([`DEFAULT_NEXTHOP_IDS`] for the main FIB,
    /// [`nexthop_ids_of_table`] for the others). Which objects of its
    /// protocol found in the kernel are its own (a previous run's, strays
    /// to delete) follows from it: a table FIB's are those in its range;
    /// the main FIB's are all outside [`TABLE_NEXTHOP_IDS`], as before
    /// there were several.
    pub nexthop_ids: RangeInclusive<u32>,
    /// True: a prefix with a backup set also gets a standby route via it
    /// at `metric + 1` (pointing at the backup's nexthop object), which the
    /// kernel falls back to by itself when the primary's next hop goes:
    /// failover of a lost single best path costs no write per prefix.
    /// Needs `nexthop_objects`; doubles the kernel routes of such prefixes.
    pub backup_routes: bool,
}

/// Ids the main FIB hands out: away from the low ids `ip nexthop` users
/// and zebra pick.
pub const DEFAULT_NEXTHOP_IDS: RangeInclusive<u32> = 0x6b72_0000..=u32::MAX;

/// Ids set aside for the FIBs of further tables in a namespace, 4096 per
/// table 1..=65535 (see [`nexthop_ids_of_table`]).
pub const TABLE_NEXTHOP_IDS: RangeInclusive<u32> = 0x4000_0000..=0x4fff_ffff;

/// The ids of the FIB writing table `table` (1..=65535) next to the main
/// one: derived from the table, so that each finds its own objects of a
/// previous run again whatever the order the FIBs start in.
pub fn nexthop_ids_of_table(table: u16) -> RangeInclusive<u32> {
    const PER_TABLE: u32 = 0x1000;
    let first = TABLE_NEXTHOP_IDS.start() + u32::from(table) * PER_TABLE;
    first..=first + (PER_TABLE - 1)
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
            nexthop_ids: DEFAULT_NEXTHOP_IDS,
            backup_routes: false,
        }
    }
}
