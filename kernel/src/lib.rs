//! Linux FIB over netlink — the only place kroute talks to the kernel's
//! routing tables.
//!
//! * [`Fib::start`] opens three rtnetlink sockets in the calling thread's
//!   network namespace (a writer, a query socket, a monitor subscribed to
//!   link/address/route groups), dumps what a previous run left behind, and
//!   spawns two std threads: the FIB worker, whose parts own all state, and
//!   the monitor. No tokio runtime is needed at `start`; the async methods only
//!   await a oneshot answer from the worker and work in any runtime.
//! * Route changes are coalesced per prefix (last change wins) and written
//!   in ~64 KiB batches of RTM_NEWROUTE/RTM_DELROUTE messages, one
//!   `sendmsg` each, with NLM_F_ACK on the last message of a batch only;
//!   errors come back as NLMSG_ERROR carrying the failing message's
//!   sequence number and are mapped back to the prefix
//!   ([`FibEvent::RouteFailed`]); what went in (or was found right) is
//!   confirmed once per write step ([`FibEvent::RoutesInstalled`]).
//!   [`Fib::apply`] waits while a few batches are queued.
//! * Routes point at kernel nexthop objects shared by every route with the
//!   same kernel next hops (see `nexthop`), unless disabled or unavailable.
//! * Prefix-independent failover: when a next hop of an ECMP group fails
//!   (its link loses carrier, or it stops resolving), the group is
//!   re-pointed at its surviving members with one RTM_NEWNEXTHOP replace
//!   (on carrier loss the kernel has already dropped the member; the
//!   replace confirms it), and every route on the group keeps forwarding
//!   through it unwritten. A route's kernel record names its object, and
//!   the object knows what it forwards on now, so the per-prefix changes
//!   the RIB sends next (best set = the survivors) find the route already
//!   right and cost no write; the shrunk group takes no new routes, and
//!   routes move off it (one write each, make-before-break) only when
//!   their next hops come back. A failover of a full table is a handful of
//!   messages ([`Fib::messages_written`] counts them).
//! * Backup sets: a [`FibChange`] names the prefix's backup next-hop set
//!   too (where the RIB's decision would go without the best set's next
//!   hops); when none of the best set resolves, the route is written via
//!   the backup at once, before the RIB has selected again, and `show fib`
//!   says so. That is one write per prefix: the kernel deletes a group
//!   with its last member, and its routes with it (Linux
//!   `remove_nh_grp_entry`), so a lost single best path cannot be
//!   re-pointed in place.
//! * Next hops are resolved like `ip route get fibmatch ADDR`, re-resolved
//!   (debounced) on every link, address or foreign route change, and routes
//!   follow their next hops in and out of the kernel. A next hop neither
//!   watched ([`Fib::unwatch_nexthops`]) nor named by a wanted route is
//!   forgotten.
//! * Routes of ours that someone else deletes or replaces are noticed (the
//!   monitor drops only the echoes of our own writes) and rewritten; routes
//!   the kernel refused are retried with backoff (1 s doubling to 60 s);
//!   lost notifications (ENOBUFS) trigger a full resync.
//!
//! Layout: `lib` (the [`Fib`] handle), `config`, `report` (what the FIB
//! reports), `cmd` (the worker's inbox), `monitor` (the monitor thread),
//! `worker` (the worker thread, a coordinator of: `table` the routes and
//! their sweep, `resolver` next-hop resolution, `installer` writes and
//! nexthop objects, `query` the kernel's answers, `quiet` the monitor out of
//! the route groups, `recheck` what notifications left to look at,
//! `lifecycle` initial sync and shutdown, `show` `show fib`, `repairs`
//! how often routes others changed are put back), and below
//! them `writer` (batches), `nexthop` (object messages), `msg`, `netlink`.
//!
//! Link-local next hops: a BGP next hop carries the interface of the
//! session it came over (`interface`, set by the RIB). A link-local-only
//! one is installed on that interface without resolution (while the link
//! is up); a global + link-local one goes via the link-local when the
//! global is on-link on that interface, else via the global as resolved.
//!
//! Limits: a link-local next hop without an interface is unreachable. A
//! next hop whose best kernel match is a route of our own
//! protocol is unreachable ("resolves only through a BGP route"), even if a
//! less specific non-BGP route would cover it.

use std::net::IpAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use ipnet::IpNet;
use tokio::sync::{mpsc::UnboundedSender, oneshot, Semaphore};

use cmd::Cmd;

mod cmd;
mod config;
mod hash;
mod installer;
mod lifecycle;
mod monitor;
mod msg;
mod netlink;
mod nexthop;
mod query;
mod quiet;
mod recheck;
mod repairs;
mod report;
mod resolver;
mod rules;
mod show;
mod table;
mod worker;
mod writer;

pub use config::{nexthop_ids_of_table, FibConfig, DEFAULT_NEXTHOP_IDS, TABLE_NEXTHOP_IDS};
pub use netlink::{describe as describe_errno, errno_name};
use report::FibCounters;
pub use report::{FibCounts, FibEntry, FibEvent};
pub use rules::{PolicyRule, RuleChanges, RuleSelector, Rules};

/// A BGP next hop as learned (the wire type: the RIB's next-hop sets are
/// handed over as they are); the FIB resolves it to a kernel gateway and
/// interface.
pub use wire::NextHop as BgpNextHop;

/// The RIB→FIB contract, defined once in `tables::fib` and shared with the
/// RIB: the changes [`Fib::apply`] takes and the verdicts
/// [`FibEvent::Nexthop`] reports.
pub use tables::fib::{FibChange, NexthopState};

/// Handle on the FIB worker; cheap to clone. Dropping the last handle
/// without [`Fib::shutdown`] stops the threads and leaves the routes in the
/// kernel.
#[derive(Clone)]
pub struct Fib {
    inner: Arc<Inner>,
}

struct Inner {
    tx: mpsc::Sender<Cmd>,
    /// One permit per [`Fib::apply`] batch the worker has not taken in
    /// yet (see [`APPLY_QUEUE`]).
    apply_room: Arc<Semaphore>,
    /// Routes of ours a previous run left in the kernel, found at start.
    previous_run_routes: usize,
    counters: Arc<FibCounters>,
}

/// Batches of changes queued for the worker at most. The worker takes
/// every queued batch into its route table (coalesced per prefix: bounded
/// by the number of prefixes) between write steps of a few thousand
/// routes, so the queue only fills while it is stuck on the kernel (a
/// slow write, a dump); then [`Fib::apply`] waits instead of memory
/// growing (the RIB hands over up to 16k changes a batch).
///
/// No deadlock with the other direction: the worker never waits for its
/// caller. What it reports ([`FibEvent`]s) goes out on an unbounded
/// channel that the router drains whenever it is not waiting here, and
/// that grows only with writes done, i.e. with batches taken from this
/// queue (confirmations come one event per write step).
const APPLY_QUEUE: usize = 4;

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.tx.send(Cmd::Detach);
    }
}

const GROUPS: [u32; 5] = [
    netlink::RTNLGRP_LINK,
    netlink::RTNLGRP_IPV4_IFADDR,
    netlink::RTNLGRP_IPV6_IFADDR,
    netlink::RTNLGRP_IPV4_ROUTE,
    netlink::RTNLGRP_IPV6_ROUTE,
];

impl Fib {
    /// Opens all netlink sockets synchronously in the calling thread's
    /// network namespace, dumps the routes of `protocol` in `table` left by a
    /// previous run (kept until [`Fib::initial_sync_done`]), subscribes to
    /// link/address/route changes and spawns the worker and monitor threads.
    /// Needs no tokio runtime.
    pub fn start(cfg: FibConfig, events: UnboundedSender<FibEvent>) -> std::io::Result<Fib> {
        let query = netlink::NlSocket::open(4 << 20, Some(Duration::from_secs(10)))?;
        let write = netlink::NlSocket::open(32 << 20, Some(Duration::from_secs(30)))?;
        let mon = netlink::NlSocket::open(8 << 20, Some(Duration::from_millis(200)))?;
        for g in GROUPS {
            mon.join(g)?;
        }
        if cfg.nexthop_objects {
            // Absent before Linux 5.3; the worker then falls back too.
            let _ = mon.join(nexthop::RTNLGRP_NEXTHOP);
        }
        netlink::drop_own_writes(mon.fd(), write.portid()?)?;
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        // Subscribed before the dumps: nothing falls between them.
        let counters = Arc::new(FibCounters::default());
        let worker = worker::Worker::new(
            cfg.clone(),
            events,
            query,
            write,
            mon.fd(),
            stop.clone(),
            counters.clone(),
        )?;
        let previous_run_routes = worker.previous_run_routes();
        let mon_tx = tx.clone();
        let ours = monitor::Ours {
            table: cfg.table,
            protocol: cfg.protocol,
            metric: cfg.metric,
            standbys: cfg.backup_routes,
        };
        std::thread::Builder::new()
            .name("fib-monitor".into())
            .spawn(move || monitor::run(mon, mon_tx, stop, ours))?;
        std::thread::Builder::new()
            .name("fib-worker".into())
            .spawn(move || worker.run(rx))?;
        Ok(Fib {
            inner: Arc::new(Inner {
                tx,
                apply_room: Arc::new(Semaphore::new(APPLY_QUEUE)),
                previous_run_routes,
                counters,
            }),
        })
    }

    fn send(&self, cmd: Cmd) -> bool {
        self.inner.tx.send(cmd).is_ok()
    }

    /// No batch of [`Fib::apply`] is waiting for the worker: it is idle or
    /// writing what it took in, and the next batch is taken in at its next
    /// write step.
    pub fn nothing_queued(&self) -> bool {
        self.inner.apply_room.available_permits() == APPLY_QUEUE
    }

    /// Queues route changes; waits while [`APPLY_QUEUE`] batches are
    /// queued already (the worker stuck on the kernel), never longer.
    pub async fn apply(&self, changes: Vec<FibChange>) {
        if changes.is_empty() {
            return;
        }
        // The semaphore is never closed.
        if let Ok(permit) = self.inner.apply_room.clone().acquire_owned().await {
            self.send(Cmd::Apply(changes, permit));
        }
    }

    /// Resolves these next hops now, reports each ([`FibEvent::Nexthop`]) and
    /// keeps reporting changes.
    pub fn watch_nexthops(&self, addrs: Vec<IpAddr>) {
        self.send(Cmd::Watch(addrs));
    }

    /// The RIB no longer has the paths via these next hops (the session
    /// that brought them went down, with its link still up: hold timer,
    /// BFD, a Cease, `peer X disable`). Until a change names one of them
    /// again, the FIB takes them as unreachable at once, before the RIB's
    /// per-prefix changes arrive: every group through them is re-pointed
    /// at its survivors (one RTM_NEWNEXTHOP each), and with backup routes
    /// the objects through them alone are deleted, so that the kernel
    /// drops their primaries and forwards on the standbys (one message per
    /// object). The RIB's changes that follow are then re-tags.
    pub fn next_hops_down(&self, addrs: Vec<IpAddr>) {
        if !addrs.is_empty() {
            self.send(Cmd::NextHopsDown(addrs));
        }
    }

    /// The RIB has handed over (applied) every change that follows the
    /// loss of these next hops' session: they resolve as the kernel says
    /// again, and routes still wanting them (paths via the same address
    /// from another session) go back to them. Call after
    /// [`Fib::next_hops_down`] and the changes it announced.
    pub fn next_hops_settled(&self, addrs: Vec<IpAddr>) {
        if !addrs.is_empty() {
            self.send(Cmd::NextHopsSettled(addrs));
        }
    }

    /// Stops reporting these next hops; each is no longer resolved once
    /// no wanted route names it either.
    pub fn unwatch_nexthops(&self, addrs: Vec<IpAddr>) {
        self.send(Cmd::Unwatch(addrs));
    }

    /// How many routes of ours (table, protocol) a previous run left in the
    /// kernel: its forwarding state, which survived it (SIGKILL, a graceful
    /// restart exit, `keepOnExit`). Kept until [`Fib::initial_sync_done`].
    pub fn previous_run_routes(&self) -> usize {
        self.inner.previous_run_routes
    }

    /// Removes routes of a previous run that are not wanted now.
    pub fn initial_sync_done(&self) {
        self.send(Cmd::InitialSyncDone);
    }

    /// Every wanted prefix (or just `prefix`) with its kernel state.
    pub async fn entries(&self, prefix: Option<IpNet>) -> Vec<FibEntry> {
        let (tx, rx) = oneshot::channel();
        if !self.send(Cmd::Entries(prefix, tx)) {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Writes what is pending; unless `keep_on_exit`, removes every route we
    /// installed; then stops the worker and the monitor.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.send(Cmd::Shutdown(tx)) {
            let _ = rx.await;
        }
    }

    /// Resynchronises with the kernel as after lost notifications (ENOBUFS
    /// on the monitor socket): links, next hops, nexthop objects and routes
    /// are read again and what differs is rewritten. For tests and
    /// operators; the FIB does it by itself when it loses notifications.
    pub fn resync(&self) {
        self.send(Cmd::Overrun);
    }

    /// For tests only: the monitor stops (true) or resumes hearing route
    /// and nexthop changes, so that a test can change the kernel behind the
    /// FIB's back, as when notifications are lost, and see what
    /// [`Fib::resync`] repairs.
    #[doc(hidden)]
    pub fn deafen_for_tests(&self, deaf: bool) {
        self.send(Cmd::Deafen(deaf));
    }

    /// What the FIB has written, refused and resynced so far (`/metrics`).
    pub fn counters(&self) -> FibCounts {
        self.inner.counters.read()
    }

    /// Netlink messages written to the kernel since [`Fib::start`]: route
    /// writes and nexthop object changes alike, each counted once (a batch
    /// of many messages is one `sendmsg`). What a failover cost is the
    /// difference across it.
    pub fn messages_written(&self) -> u64 {
        self.inner.counters.read().messages_written
    }

    /// Resolves once every change applied so far has been written.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.send(Cmd::Flush(tx)) {
            let _ = rx.await;
        }
    }
}
