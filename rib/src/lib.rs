//! The routing information bases and the decision process. Pure: no I/O,
//! no clock, no threads.
//!
//! The daemon owns one [`Rib`] and feeds it events (peer up/down, UPDATEs,
//! next-hop states, config reloads); each call appends what must happen as
//! a consequence (FIB changes, UPDATEs to send, next hops to resolve) to an
//! [`Outputs`].
//!
//! Layout: `attrs` (interning), `table` (per-prefix records), `decision`
//! (best path), `policy` (schema + evaluator), `ctx` (the read-only view
//! the pure parts get), `import`/`export` (the per-peer pipelines),
//! `explain` (why), `update_group` (the Adj-RIB-Out, one per group of
//! peers whose export result is the same: what was sent and what is still
//! to send), `leak` (paths another routing domain's RIB offers, by
//! policy), `rib` (the event handlers, which use all of them).

pub mod attrs;
mod ctx;
pub mod decision;
mod explain;
mod export;
mod import;
mod import_report;
mod leak;
pub mod policy;
mod rib;
mod stale;
pub mod table;
mod update_group;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU32;

use serde::Serialize;
use wire::{Community, LargeCommunity};

pub use attrs::{is_leak_peer, LEAK_PEERS};
pub use explain::{Explanation, PathExplanation, PeerExport, RouteView};
pub use import::ImportLog;
pub use import_report::{ImportCounters, ImportReport};
pub use leak::leak_source_name;
pub use rib::{PeerDown, Rib};
pub use update_group::{Pulled, SharedUpdates};

/// The daemon's handle for a configured peer.
pub type PeerId = u32;

/// Global settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RibConfig {
    pub local_asn: u32,
    pub router_id: Ipv4Addr,
    /// Route-reflection cluster id; `None` = `router_id`.
    pub cluster_id: Option<Ipv4Addr>,
    /// ECMP width, at least 1.
    pub max_paths: usize,
    /// Allow multipath across different neighbouring ASes when the AS_PATH
    /// lengths are equal.
    pub multipath_relax: bool,
    /// `router.alwaysCompareMed`: compare MED between paths from different
    /// neighbouring ASes too (RFC 4271 §9.1.2.2 (c) compares it only within
    /// one AS).
    pub always_compare_med: bool,
    /// `kernel.install`: false => nothing is ever installed.
    pub install: bool,
    pub policies: Vec<policy::Policy>,
}

impl RibConfig {
    pub fn cluster_id(&self) -> Ipv4Addr {
        self.cluster_id.unwrap_or(self.router_id)
    }
}

/// One configured neighbour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub name: String,
    pub address: IpAddr,
    /// iBGP iff equal to the local ASN.
    pub remote_asn: u32,
    /// Configured families.
    pub families: Vec<wire::Family>,
    /// Accept paths containing the local ASN up to this many times.
    pub allow_as_in: u8,
    pub next_hop_self: bool,
    pub route_reflector_client: bool,
    /// `peers[].enforceFirstAs`: on eBGP, an UPDATE whose AS_PATH does not
    /// start with the peer's AS is treated as withdrawn (RFC 4271 §6.3).
    pub enforce_first_as: bool,
    pub import: policy::PolicyChain,
    pub export: policy::PolicyChain,
}

/// Learned when the session reaches Established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub remote_router_id: Ipv4Addr,
    /// Negotiated (both sides).
    pub families: Vec<wire::Family>,
    /// Our address to use as next hop for IPv4 NLRI towards this peer.
    pub local_next_hop_v4: Option<Ipv4Addr>,
    /// Same for IPv6 NLRI.
    pub local_next_hop_v6: Option<Ipv6Addr>,
    /// RFC 8950 negotiated: IPv4 NLRI may carry `local_next_hop_v6`.
    pub extended_next_hop_v4: bool,
    /// Our link-local address on the link shared with the peer, sent
    /// beside `local_next_hop_v6` (the 32-octet form of RFC 2545 §3) when
    /// we are the next hop; none: the peer is not on a shared link, or the
    /// IPv6 next hop is configured (`nextHopIpv6`).
    pub local_link_local: Option<Ipv6Addr>,
    /// The interface the session runs over when the peer is on a shared
    /// link: the scope of the link-local next hops it sends (kept in the
    /// paths' next hops, see [`wire::NextHop::interface`]).
    pub interface: Option<NonZeroU32>,
}

/// A prefix this node announces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origination {
    pub prefix: wire::Prefix,
    pub communities: Vec<Community>,
    pub large_communities: Vec<LargeCommunity>,
    /// LOCAL_PREF towards iBGP peers (`advertise[].localPref`).
    pub local_pref: Option<u32>,
}

/// The RIB→FIB contract (defined once in `tables::fib`, used as is by the
/// FIB): a prefix's new next-hop set, and a next hop's reachability.
pub use tables::fib::{no_next_hops, FibChange, NexthopState};

/// What the daemon must do after an event.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outputs {
    pub fib: Vec<FibChange>,
    /// UPDATEs to send, in order. Prefixes sharing attributes share one
    /// Update (the encoder splits to the message size).
    pub updates: Vec<(PeerId, wire::Update)>,
    /// Next hops the RIB needs a state for (each reported once).
    pub watch_nexthops: Vec<IpAddr>,
    /// Next hops no path uses any more: the FIB stops watching them (a
    /// later user asks again through `watch_nexthops`).
    pub unwatch_nexthops: Vec<IpAddr>,
    /// Import problems found after the UPDATE was received (its next hop
    /// turned out to be one of our own addresses), for the daemon's log
    /// like [`Rib::receive`]'s report.
    pub import_reports: Vec<(PeerId, ImportReport)>,
}

/// What the kernel made of a FibChange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FibStatus {
    Installed,
    Failed(String),
}

/// Which table [`Rib::routes`] reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Table {
    /// Loc-RIB: every accepted path, best ones flagged.
    #[default]
    Loc,
    /// Adj-RIB-In: every received path, pre-policy, rejected ones too.
    Received,
    /// Adj-RIB-Out: what was sent.
    Advertised,
}

/// A query for [`Rib::routes`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteQuery {
    /// Exact prefix if present, else the longest prefix containing it.
    pub prefix: Option<wire::Prefix>,
    pub peer: Option<PeerId>,
    pub table: Table,
}

/// The Loc-RIB and its FIB states for one family (`/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FamilyCounts {
    /// Prefixes with a best path.
    pub prefixes: usize,
    /// Accepted paths (the Loc-RIB's candidates, best ones included).
    pub paths: usize,
    /// Of the prefixes that want a kernel route: confirmed by the kernel,
    /// not confirmed yet, refused.
    pub fib_installed: usize,
    pub fib_pending: usize,
    pub fib_failed: usize,
}

/// Per-peer prefix counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerCounters {
    /// Paths in Adj-RIB-In.
    pub received: usize,
    /// Of those, accepted by import.
    pub accepted: usize,
    /// Prefixes in Adj-RIB-Out.
    pub advertised: usize,
    /// Prefixes whose best path is held back from the peer because its
    /// attributes do not fit one 4096-octet UPDATE.
    pub too_big: usize,
}
