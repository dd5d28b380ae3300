//! What the FIB reports: events to the RIB, and each prefix's state for
//! `show fib` and `explain`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use ipnet::IpNet;
use serde::Serialize;
use tables::fib::{NexthopState, NhSet};
use wire::NextHop as BgpNextHop;

/// What the FIB reports to the RIB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FibEvent {
    /// For watched next hops: first resolution and every change.
    Nexthop {
        address: IpAddr,
        state: NexthopState,
    },
    /// The kernel refused a route wanting `next_hops` (the set as the RIB
    /// handed it over), e.g. "Invalid argument (EINVAL): ..."; it is
    /// written again at `next_retry` (each refusal in a row doubles the
    /// wait, 1 s to 60 s) and reported again if refused again.
    RouteFailed {
        prefix: IpNet,
        next_hops: Arc<NhSet>,
        error: String,
        next_retry: SystemTime,
    },
    /// These prefixes are in the kernel with the BGP next hops beside them
    /// (the sets as the RIB handed them over): written, or found right
    /// already when their write came up. One event per write step (up to
    /// a few thousand prefixes), never one per route.
    ///
    /// The set says which change is confirmed: a change handed over after
    /// it may still be queued, so a receiver takes a confirmation only for
    /// a prefix whose last handed-over set is this one.
    RoutesInstalled(Vec<(IpNet, Arc<NhSet>)>),
}

/// One prefix as the FIB sees it, for `show fib` and `explain`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FibEntry {
    pub prefix: IpNet,
    /// As learned: "10.0.0.1", or "fd00::1 (fe80::1)" with a link-local.
    #[serde(serialize_with = "display_all")]
    pub bgp_next_hops: Vec<BgpNextHop>,
    /// e.g. "via 10.0.0.1 dev veth0"
    pub kernel_next_hops: Vec<String>,
    /// "installed" | "next hop unresolved" | "failed: `<err>`" |
    /// "next hop is local" | "install disabled" | "pending"
    pub status: String,
    /// Why, when the status alone does not say it: the unresolved next hops
    /// and their reasons, the resolution when install is disabled, or when
    /// a failed route is tried again ("next retry in 4 s").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

fn display_all<S: serde::Serializer>(v: &[BgpNextHop], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|nh| match nh.link_local {
        Some(ll) => format!("{} ({ll})", nh.address),
        None => nh.address.to_string(),
    }))
}

/// What the FIB has done since it started, counted as it goes (the
/// writer and the worker count, [`crate::Fib::counters`] reads): for
/// `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct FibCounters {
    messages_written: AtomicU64,
    batches_written: AtomicU64,
    resyncs: AtomicU64,
    refused: Mutex<BTreeMap<i32, u64>>,
}

/// A reading of the FIB's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FibCounts {
    /// Netlink messages (route and nexthop object changes) sent.
    pub messages_written: u64,
    /// `sendmsg` calls, one per batch.
    pub batches_written: u64,
    /// Full resyncs with the kernel (lost notifications, or `Fib::resync`).
    pub resyncs: u64,
    /// Messages the kernel refused, by errno.
    pub refused_by_errno: BTreeMap<i32, u64>,
}

impl FibCounters {
    /// One batch of `messages` sent.
    pub(crate) fn wrote(&self, messages: u64) {
        self.messages_written.fetch_add(messages, Ordering::Relaxed);
        self.batches_written.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn refused(&self, errno: i32) {
        if let Ok(mut m) = self.refused.lock() {
            *m.entry(errno).or_default() += 1;
        }
    }

    pub(crate) fn resynced(&self) {
        self.resyncs.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn read(&self) -> FibCounts {
        FibCounts {
            messages_written: self.messages_written.load(Ordering::Relaxed),
            batches_written: self.batches_written.load(Ordering::Relaxed),
            resyncs: self.resyncs.load(Ordering::Relaxed),
            refused_by_errno: self.refused.lock().map(|m| m.clone()).unwrap_or_default(),
        }
    }
}
