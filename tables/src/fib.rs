//! The RIB→FIB contract: what the RIB hands the FIB (a prefix and its
//! wanted next-hop set) and what the FIB reports back about a next hop.
//!
//! Defined once, here, and used by both sides as they are: `rib` fills
//! [`FibChange`]s and the `kernel` crate consumes them without conversion.
//! This crate is the home because it already is "what the RIB and the FIB
//! share per prefix" (both depend on it, neither on the other), and the
//! contract is mostly about that sharing: the FIB keeps the very
//! [`Arc`]'d [`NhSet`] the RIB interned, so a full table costs one copy of
//! each distinct next-hop set, not one per prefix. `wire` stays the BGP
//! codec: a kernel verdict on reachability is no part of a BGP message.

use std::sync::{Arc, LazyLock};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use wire::NextHop;

/// A next-hop set: sorted, without duplicates.
pub type NhSet = Vec<NextHop>;

/// One prefix's wanted next-hop set; empty = remove the route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FibChange {
    pub prefix: IpNet,
    /// Sorted, without duplicates; empty: remove the route. Shared: a full
    /// table has few distinct sets, and the FIB keeps this very `Arc` for
    /// the prefix.
    pub next_hops: Arc<NhSet>,
    /// The backup set: where the prefix would go if every next hop of
    /// `next_hops` failed (the next-hop set the decision would pick
    /// without the paths through them); empty: none. Sorted, without
    /// duplicates, none of `next_hops`' members. The FIB forwards on it at
    /// once when the whole best set becomes unreachable, without waiting
    /// for the RIB to select again (prefix-independent failover).
    pub backup: Arc<NhSet>,
}

impl FibChange {
    /// A change without a backup set.
    pub fn new(prefix: IpNet, next_hops: Arc<NhSet>) -> FibChange {
        FibChange {
            prefix,
            next_hops,
            backup: no_next_hops(),
        }
    }
}

/// A prefix's best and backup next-hop sets, as one value: what the RIB
/// numbers per prefix and the FIB keeps per prefix (one 4-byte number for
/// both).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FibSets {
    pub best: Arc<NhSet>,
    pub backup: Arc<NhSet>,
}

/// The next-hop set of a removal, shared.
pub fn no_next_hops() -> Arc<NhSet> {
    static EMPTY: LazyLock<Arc<NhSet>> = LazyLock::new(Default::default);
    EMPTY.clone()
}

/// A next hop's reachability as the kernel sees it: the FIB's verdict,
/// the RIB's input to the decision process (RFC 4271 §9.1.2.1: a route
/// whose NEXT_HOP cannot be resolved is excluded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NexthopState {
    /// Reachable through a kernel route with this metric (RTA_PRIORITY).
    Reachable { metric: u32 },
    /// One of this host's addresses (e.g. `::1` of the CNI peering); routes
    /// via it are not installed.
    Local,
    /// Not usable, with the reason in words.
    Unreachable(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removals_share_one_empty_set() {
        let (a, b) = (no_next_hops(), no_next_hops());
        assert!(a.is_empty());
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn a_change_serializes_in_camel_case() {
        let c = FibChange::new(
            "10.0.0.0/24".parse().unwrap(),
            Arc::new(vec![NextHop::new("192.0.2.1".parse().unwrap())]),
        );
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["prefix"], "10.0.0.0/24");
        assert_eq!(v["nextHops"][0]["address"], "192.0.2.1");
    }
}
