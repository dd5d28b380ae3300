//! The worker's inbox: requests from the `Fib` handle and what the
//! monitor thread saw.

use std::net::IpAddr;

use ipnet::IpNet;
use tables::fib::FibChange;
use tokio::sync::{oneshot, OwnedSemaphorePermit};

use crate::report::FibEntry;

/// One message to the worker.
pub(crate) enum Cmd {
    /// Changes, and their place in the queue (given back once they are in
    /// the route table).
    Apply(Vec<FibChange>, OwnedSemaphorePermit),
    Watch(Vec<IpAddr>),
    /// The RIB lost the paths via these next hops (their session went
    /// down with the link up): see `Fib::next_hops_down`.
    NextHopsDown(Vec<IpAddr>),
    /// The RIB has handed over its changes for that loss.
    NextHopsSettled(Vec<IpAddr>),
    Unwatch(Vec<IpAddr>),
    InitialSyncDone,
    Entries(Option<IpNet>, oneshot::Sender<Vec<FibEntry>>),
    Flush(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
    /// From the monitor: a link appeared or changed.
    Link {
        index: u32,
        name: Option<String>,
        up: bool,
    },
    LinkGone(u32),
    /// From the monitor: a nexthop object of our protocol was deleted.
    ObjectGone(u32),
    /// From the monitor: an address or a foreign route changed.
    Changed,
    /// From the monitor: someone else (not our writer) added, replaced or
    /// deleted these prefixes' routes in our table at our metric.
    Touched(Vec<IpNet>),
    /// From the monitor: notifications were lost (ENOBUFS); or
    /// `Fib::resync`.
    Overrun,
    /// For tests: the monitor leaves (true) or rejoins the route groups.
    Deafen(bool),
    /// The last handle was dropped without shutdown: stop, leave routes.
    Detach,
}
