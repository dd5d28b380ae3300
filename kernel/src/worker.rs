//! The FIB worker: the only writer of routes, on a thread of its own. It
//! coordinates the parts that own the state: the route table and its sweep
//! (`table`), next-hop resolution (`resolver`), the installer and its
//! nexthop objects (`installer`), the monitor's quiet mode (`quiet`), what
//! kernel notifications left to look at (`recheck`), the initial sync and
//! shutdown (`lifecycle`) and `show fib` (`show`).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use ipnet::IpNet;
use tables::fib::{FibChange, FibSets};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

use crate::cmd::Cmd;
use crate::config::FibConfig;
use crate::hash::FastSet;
use crate::installer::Installer;
use crate::lifecycle::{self, InitialSync};
use crate::msg::RouteKey;
use crate::netlink::NlSocket;
use crate::nexthop::Objects;
use crate::query::Query;
use crate::quiet::{Quiet, QUIET_SWEEP};
use crate::recheck::{Changes, Recheck};
use crate::report::{FibCounters, FibEntry, FibEvent};
use crate::resolver::Resolver;
use crate::show;
use crate::table::{self, RouteTable};
use crate::writer::{Op, Track, Writer};
use std::net::IpAddr;
use std::ops::RangeInclusive;

/// Prefixes written per step of a sweep. Between steps the worker takes in
/// what the RIB sent meanwhile, so changes wait in the route table rather
/// than as queued messages (at a full table those were the peak of memory:
/// with 32k-prefix steps a slow kernel let 38 MB of changes queue up).
const CHUNK: usize = 4 * 1024;

pub(crate) struct Worker {
    cfg: FibConfig,
    query: Query,
    table: RouteTable,
    resolver: Resolver,
    installer: Installer,
    quiet: Quiet,
    recheck: Recheck,
    sync: InitialSync,
    /// Tells the monitor thread to stop.
    stop: Arc<AtomicBool>,
    counters: Arc<FibCounters>,
}

/// What a resync found comparing the kernel's nexthop objects with ours.
#[derive(Default)]
struct ObjectCheck {
    /// Ours that the kernel lacks.
    missing: usize,
    /// Of our protocol, neither this run's nor a previous run's.
    strays: Vec<u32>,
}

/// Requests waiting for the worker to have written what was applied.
#[derive(Default)]
struct Waiting {
    flushes: Vec<oneshot::Sender<()>>,
    queries: Vec<(Option<IpNet>, oneshot::Sender<Vec<FibEntry>>)>,
    shutdown: Option<oneshot::Sender<()>>,
    detached: bool,
}

impl Waiting {
    fn stopping(&self) -> bool {
        self.shutdown.is_some() || self.detached
    }
}

impl Worker {
    pub(crate) fn new(
        cfg: FibConfig,
        events: UnboundedSender<FibEvent>,
        query: NlSocket,
        write: NlSocket,
        monitor_fd: i32,
        stop: Arc<AtomicBool>,
        counters: Arc<FibCounters>,
    ) -> io::Result<Worker> {
        let key = RouteKey {
            table: cfg.table,
            protocol: cfg.protocol,
            metric: cfg.metric,
        };
        let mut query = Query::new(query, cfg.table, cfg.protocol);
        let links = query.links()?;
        let objects = if cfg.install && cfg.nexthop_objects {
            objects(&mut query, cfg.protocol, cfg.nexthop_ids.clone())
        } else {
            None
        };
        let stale = query.our_routes()?;
        if !stale.is_empty() {
            tracing::info!(
                "found {} routes of protocol {} in table {} from a previous run; kept until initial sync",
                stale.len(),
                cfg.protocol,
                cfg.table
            );
        }
        let mut table = RouteTable::new(events.clone());
        if cfg.backup_routes {
            if objects.is_some() {
                table.set_standbys(true);
            } else {
                tracing::warn!(
                    "kernel.backupRoutes needs nexthop objects (kernel.nexthopObjects and Linux 5.3+); no backup routes are written"
                );
            }
        }
        Ok(Worker {
            table,
            resolver: Resolver::new(links, events),
            installer: Installer::new(Writer::new(write, key, counters.clone()), objects),
            quiet: Quiet::new(monitor_fd),
            recheck: Recheck::default(),
            sync: InitialSync::new(stale),
            stop,
            query,
            cfg,
            counters,
        })
    }

    /// Routes of a previous run found at start (see `lifecycle`).
    pub(crate) fn previous_run_routes(&self) -> usize {
        self.sync.leftover_count()
    }

    pub(crate) fn run(mut self, rx: mpsc::Receiver<Cmd>) {
        let mut waiting = Waiting::default();
        loop {
            let first = if self.table.has_dirty() {
                // Work pending: take what arrived, do not wait.
                match rx.try_recv() {
                    Ok(c) => Some(c),
                    Err(mpsc::TryRecvError::Empty) => None,
                    Err(mpsc::TryRecvError::Disconnected) => break,
                }
            } else {
                let wake = [
                    self.recheck.due(),
                    self.table.next_retry(),
                    self.quiet.verify_at(),
                ]
                .into_iter()
                .flatten()
                .min();
                match wake {
                    Some(t) => match rx.recv_timeout(t.saturating_duration_since(Instant::now())) {
                        Ok(c) => Some(c),
                        Err(mpsc::RecvTimeoutError::Timeout) => None,
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    },
                    None => match rx.recv() {
                        Ok(c) => Some(c),
                        Err(_) => break,
                    },
                }
            };
            let mut next = first;
            while let Some(cmd) = next {
                match cmd {
                    Cmd::Apply(changes, _room) => self.apply(changes),
                    Cmd::Watch(addrs) => self.resolver.watch(&mut self.query, addrs),
                    Cmd::NextHopsDown(addrs) => self.next_hops_down(addrs),
                    Cmd::NextHopsSettled(addrs) => self.next_hops_settled(addrs),
                    Cmd::Unwatch(addrs) => {
                        for a in addrs {
                            self.resolver.unwatch(a, self.table.uses_hop(&a));
                        }
                    }
                    Cmd::InitialSyncDone => self.sync.request(),
                    Cmd::Entries(p, tx) => waiting.queries.push((p, tx)),
                    Cmd::Flush(tx) => waiting.flushes.push(tx),
                    Cmd::Shutdown(tx) => waiting.shutdown = Some(tx),
                    Cmd::Detach => waiting.detached = true,
                    Cmd::Deafen(deaf) => self.quiet.deafen(deaf),
                    other => self.kernel_event(other),
                }
                if waiting.stopping() {
                    break;
                }
                next = rx.try_recv().ok();
            }
            for addr in self.table.take_unused_hops() {
                if !self.table.uses_hop(&addr) {
                    self.resolver.unused(addr);
                }
            }
            let now = Instant::now();
            if let Some(changes) = self.recheck.take_if_due(now) {
                self.reresolve(changes);
            }
            let idle = !self.table.has_dirty() && !self.table.sweeping();
            if self.quiet.take_verify(now, idle) {
                self.verify_kernel(false);
            }
            self.table.retry_due(now);
            if waiting.shutdown.is_some() {
                while self.table.has_dirty() {
                    self.write_dirty();
                }
            }
            self.write_dirty();
            if self.table.has_dirty() {
                // Answer queries meanwhile; flushes and the initial sync
                // wait for everything applied so far to be written (the
                // sync must not remove a previous run's route before its
                // replacement is in).
                for (p, tx) in waiting.queries.drain(..) {
                    let _ = tx.send(self.entries(p));
                }
                continue;
            }
            if let Some(leftovers) = self.sync.take_due() {
                self.initial_sync(leftovers);
            }
            for tx in waiting.flushes.drain(..) {
                let _ = tx.send(());
            }
            for (p, tx) in waiting.queries.drain(..) {
                let _ = tx.send(self.entries(p));
            }
            if let Some(tx) = waiting.shutdown.take() {
                self.shutdown();
                let _ = tx.send(());
                break;
            }
            if waiting.detached {
                tracing::info!("FIB handle dropped without shutdown; routes left in the kernel");
                break;
            }
        }
        self.stop.store(true, Ordering::Relaxed);
    }

    /// The RIB lost its paths via `addrs` with their links up (see
    /// `Fib::next_hops_down`): they are taken as unreachable now; groups
    /// through them are re-pointed at their survivors; with standby
    /// routes, the objects left forwarding on nothing alive are deleted
    /// (the kernel removes the primaries using them and forwards on the
    /// standbys), their routes taken as gone; then the prefixes wanting
    /// them are looked at again (re-tags where the kernel is right).
    fn next_hops_down(&mut self, addrs: Vec<IpAddr>) {
        let changed: FastSet<IpAddr> = addrs
            .into_iter()
            .filter(|a| self.table.uses_hop(a) && self.resolver.set_down(*a))
            .collect();
        if changed.is_empty() {
            return;
        }
        let alive = self.resolver.alive_hops();
        let shrunk = self.installer.shrink_objects(|h| alive.contains(h));
        let mut gone = Changes::default();
        if self.table.standbys() {
            for hops in self.installer.dead_objects(|h| alive.contains(h)) {
                gone.object_gone(hops);
            }
        }
        tracing::info!(
            "next hops {:?} lost their session: {shrunk} nexthop groups re-pointed at their survivors, {} objects removed for the routes' standbys",
            changed,
            gone.objects_gone()
        );
        self.table
            .mark_changed(&changed, |h| gone.flushed(h), self.installer.sets_mut());
        self.installer.forget_objects(|h| gone.flushed(h));
    }

    /// The RIB's changes after a session loss are in: the next hops
    /// resolve as the kernel says again (see `Fib::next_hops_settled`).
    fn next_hops_settled(&mut self, addrs: Vec<IpAddr>) {
        let revived: FastSet<IpAddr> = addrs
            .into_iter()
            .filter(|a| self.resolver.revive(a))
            .collect();
        if !revived.is_empty() {
            self.table
                .mark_changed(&revived, |_| false, self.installer.sets_mut());
        }
    }

    fn apply(&mut self, changes: Vec<FibChange>) {
        // No `routes.reserve(changes.len())`: withdrawals would make the
        // table double its capacity just as it is about to empty.
        let mut last_nh = None;
        let mut revived: FastSet<IpAddr> = FastSet::default();
        for FibChange {
            prefix,
            next_hops,
            backup,
        } in changes
        {
            let next_hops = table::sorted(next_hops);
            let prefix = prefix.trunc();
            if next_hops.is_empty() {
                self.table.withdraw(prefix);
                continue;
            }
            let backup = table::sorted(backup);
            for nh in next_hops.iter().chain(backup.iter()) {
                // A link-local-only next hop has nothing to resolve: it is
                // on its interface (see `Resolver::desired`).
                if nh.on_link_only().is_some() {
                    continue;
                }
                if last_nh != Some(nh.address) {
                    self.resolver.ensure(&mut self.query, nh.address);
                    if self.resolver.revive(&nh.address) {
                        revived.insert(nh.address);
                    }
                    last_nh = Some(nh.address);
                }
            }
            self.table.want_sets(
                prefix,
                FibSets {
                    best: next_hops,
                    backup,
                },
            );
        }
        if !revived.is_empty() {
            // Named again: the routes wanting them are looked at again.
            tracing::info!("next hops {revived:?} are in use again");
            self.table
                .mark_changed(&revived, |_| false, self.installer.sets_mut());
        }
    }

    fn kernel_event(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Link { index, name, up } => {
                let went_down = self.resolver.link_changed(index, name, up);
                if went_down {
                    self.recheck.link_down(index);
                }
            }
            Cmd::LinkGone(index) => {
                self.resolver.link_gone(index);
                self.recheck.link_down(index);
            }
            Cmd::ObjectGone(id) => match self.installer.object_hops(id) {
                Some(hops) => self.recheck.object_gone(hops),
                None => return, // one we deleted ourselves
            },
            Cmd::Touched(prefixes) => {
                // Routes of ours (or at our metric) changed by someone
                // else: no next hop resolves through them.
                self.recheck.touched(prefixes);
                return;
            }
            Cmd::Overrun => {
                self.counters.resynced();
                // Logged once, with counts, when the resync is done.
                match self.resolver.refresh_links(&mut self.query) {
                    Ok(down) => down.into_iter().for_each(|i| self.recheck.link_down(i)),
                    Err(e) => tracing::warn!("link dump failed: {e}"),
                }
                self.recheck.resync();
            }
            _ => {}
        }
        self.recheck.soon();
    }

    /// Acts on what the kernel changed: resolves every next hop again if
    /// asked (routes whose next hops changed, or that went through a link
    /// that went down, which the kernel flushes without telling, are
    /// written again), rewrites routes of ours someone else touched, and
    /// compares with a dump of the kernel if asked.
    fn reresolve(&mut self, mut changes: Changes) {
        let objects = if changes.resync {
            self.compare_objects(&mut changes)
        } else {
            ObjectCheck::default()
        };
        let changed = if changes.resolve {
            self.resolver.resolve_again(&mut self.query)
        } else {
            FastSet::default()
        };
        if changes.resolve && (!changed.is_empty() || changes.any_flushed()) {
            // Before the routes are looked at: a route on a group that
            // still has survivors keeps forwarding through it.
            let alive = self.resolver.alive_hops();
            let shrunk = self
                .installer
                .shrink_objects(|h| alive.contains(h) && !changes.flushed(std::slice::from_ref(h)));
            if shrunk > 0 {
                tracing::info!(
                    "re-pointed {shrunk} nexthop groups at their surviving next hops; routes using them are not rewritten"
                );
            }
        }
        if !changed.is_empty() || changes.any_flushed() {
            self.table
                .mark_changed(&changed, |h| changes.flushed(h), self.installer.sets_mut());
        }
        self.installer.forget_objects(|h| changes.flushed(h));
        if !changes.touched.is_empty() {
            self.repair_touched(&changes.touched);
        }
        let (rewritten, strays) = if changes.verify {
            self.verify_kernel(changes.resync)
        } else {
            (0, 0)
        };
        // Before the initial sync, a previous run's objects may still be
        // in use by its routes.
        let stray_objects = if self.sync.done() {
            objects.strays
        } else {
            Vec::new()
        };
        let objects_removed = stray_objects.len();
        self.installer.delete_object_ids(stray_objects);
        if changes.resync {
            tracing::warn!(
                "netlink notifications were lost (ENOBUFS); resynced with the kernel: {} links down, {} next hops changed, {} nexthop objects of ours missing, {rewritten} routes to rewrite, {strays} stray routes and {objects_removed} stray nexthop objects removed",
                changes.links_down(),
                changed.len(),
                objects.missing,
            );
        }
    }

    /// For a resync: our nexthop objects the kernel lacks are taken as
    /// deleted (their routes are written again with new ones); returns
    /// those and the strays of our protocol.
    fn compare_objects(&mut self, changes: &mut Changes) -> ObjectCheck {
        if !self.installer.uses_objects() {
            return ObjectCheck::default();
        }
        match self.query.objects() {
            Ok(kernel) => {
                let (missing, strays) = self.installer.compare_objects(&kernel);
                let n = missing.len();
                missing.into_iter().for_each(|h| changes.object_gone(h));
                ObjectCheck { missing: n, strays }
            }
            Err(e) => {
                tracing::warn!("nexthop object dump failed: {e}");
                ObjectCheck::default()
            }
        }
    }

    /// Routes of ours someone else changed are written again (see
    /// `RouteTable::mark_touched`).
    fn repair_touched(&mut self, touched: &[IpNet]) {
        let t = self
            .table
            .mark_touched(touched, self.installer.sets_mut(), Instant::now());
        if t.now > 0 {
            tracing::info!(
                "{} routes of ours were changed or deleted by someone else; rewriting them",
                t.now
            );
        }
        if let Some(p) = t.first_deferred {
            tracing::warn!(
                "{} routes of ours keep being changed by someone else (first: {p}); is another writer using table {}, protocol {}, metric {}? Repairing them at most {} times per {:?}",
                t.deferred,
                self.cfg.table,
                self.cfg.protocol,
                self.cfg.metric,
                crate::repairs::REPAIRS_AT_ONCE,
                crate::repairs::WINDOW
            );
        }
    }

    /// Compares our view with a dump of the kernel: prefixes whose route
    /// is missing or differs become Unknown and are written again. With
    /// `remove_strays` (a resync after lost notifications, which may have
    /// hidden our own deletions' failures or another writer's routes) and
    /// after the initial sync, routes of our protocol, table and metric
    /// that we do not want are removed. Returns (prefixes to rewrite,
    /// strays removed).
    fn verify_kernel(&mut self, remove_strays: bool) -> (usize, usize) {
        let metric = self.cfg.metric;
        let table = &mut self.table;
        let sets = self.installer.sets_mut();
        let mut rec = table.reconcile_start();
        // Standbys are ours at the next metric, wanted or not.
        let standby_metric = metric.saturating_add(1);
        let dumped = self.query.each_our_route(|k| {
            if k.metric == metric {
                table.reconcile_one(&mut rec, k, sets);
            } else if k.metric == standby_metric {
                table.reconcile_standby(&mut rec, k, sets);
            }
        });
        if let Err(e) = dumped {
            // What was marked is rewritten anyway; nothing is taken as
            // missing from a dump cut short.
            tracing::warn!("route dump failed: {e}");
            return (rec.differing, 0);
        }
        let rec = table.reconcile_end(rec, sets);
        let n = rec.differing;
        if n > 0 {
            tracing::info!("kernel table differs from our view for {n} prefixes; rewriting them");
        }
        let strays = rec.strays.len() + rec.standby_strays.len();
        if !remove_strays || !self.sync.done() || strays == 0 || !self.cfg.install {
            return (n, 0);
        }
        tracing::info!(
            "removing {strays} routes of protocol {} in table {} that we do not want",
            self.cfg.protocol,
            self.cfg.table
        );
        let removed = strays;
        let ops = rec
            .strays
            .into_iter()
            .map(|prefix| Op::Delete {
                prefix,
                metric,
                track: Track::No,
            })
            .chain(rec.standby_strays.into_iter().map(|prefix| Op::Delete {
                prefix,
                metric: standby_metric,
                track: Track::No,
            }))
            .collect();
        self.install(ops);
        (n, removed)
    }

    /// Writes the next [`CHUNK`] dirty prefixes of the sweep, starting a
    /// sweep from the top when none is under way (see `table`).
    fn write_dirty(&mut self) {
        if !self.cfg.install {
            self.table.clear_dirty();
            return;
        }
        if !self.table.sweeping() {
            if !self.table.has_dirty() {
                self.install(Vec::new());
                return;
            }
            if self.table.start_sweep() >= QUIET_SWEEP {
                self.set_quiet(true);
            }
        }
        let resolver = &self.resolver;
        let step = self.table.sweep_step(
            CHUNK,
            |nhs| resolver.desired(nhs),
            self.installer.sets_mut(),
            self.cfg.metric,
        );
        let Some(ops) = step else {
            self.set_quiet(false);
            return;
        };
        self.install(ops);
        self.table.end_sweep_if_clean();
        if !self.table.sweeping() {
            self.set_quiet(false);
        }
    }

    /// Leaving quiet mode, next hops are resolved again (and, once idle,
    /// the kernel's table is compared with ours: see `quiet`).
    fn set_quiet(&mut self, on: bool) {
        if self.quiet.set(on) {
            self.recheck.now();
        }
    }

    /// Writes `ops` (see `Installer::run`), the table following each outcome.
    fn install(&mut self, ops: Vec<Op>) {
        let table = &mut self.table;
        if self.installer.run(ops, &mut |op, outcome, sets| {
            table.follow(op, outcome, sets)
        }) {
            self.recheck.verify();
            self.recheck.soon();
        }
        self.table.send_confirmed();
    }

    fn initial_sync(&mut self, leftovers: Vec<(IpNet, u32)>) {
        if !self.cfg.install {
            return;
        }
        let table = &self.table;
        let metric = self.cfg.metric;
        let ops = lifecycle::leftover_removals(leftovers, |p, m| {
            if m == metric {
                table.current(p)
            } else if m == metric.saturating_add(1) {
                // A previous run's standby, written again by ours.
                table.standby(p)
            } else {
                crate::table::Current::Absent
            }
        });
        if !ops.is_empty() {
            tracing::info!(
                "initial sync: removing {} routes of a previous run",
                ops.len()
            );
        }
        self.install(ops);
        // Every route of ours now uses this run's objects.
        let previous = self.installer.take_previous_run();
        self.installer.delete_object_ids(previous);
    }

    fn shutdown(&mut self) {
        if !self.cfg.install || self.cfg.keep_on_exit {
            let n = self.table.in_kernel().count();
            tracing::info!("FIB stopped; {n} routes left in the kernel");
            return;
        }
        let mut ops = lifecycle::shutdown_removals(self.table.in_kernel(), self.cfg.metric);
        ops.extend(self.table.standbys_in_kernel().map(Op::StandbyDelete));
        let n = ops.len();
        self.install(ops);
        tracing::info!("FIB stopped; removed {n} routes from the kernel");
    }

    fn entries(&self, prefix: Option<IpNet>) -> Vec<FibEntry> {
        show::entries(&self.table, &self.resolver, self.cfg.install, prefix)
    }
}

/// Every nexthop object in the kernel, or None (with a warning) when the
/// kernel has none (before Linux 5.3): routes then carry their next hops.
fn objects(query: &mut Query, protocol: u8, ids: RangeInclusive<u32>) -> Option<Objects> {
    match query.objects() {
        Ok(existing) => {
            let objects = Objects::new(protocol, ids, existing);
            if !objects.previous_run.is_empty() {
                tracing::info!(
                    "found {} nexthop objects of protocol {} from a previous run; kept until initial sync",
                    objects.previous_run.len(),
                    protocol
                );
            }
            Some(objects)
        }
        Err(e) => {
            tracing::warn!(
                "kernel nexthop objects unavailable ({e}); writing next hops into each route"
            );
            None
        }
    }
}
