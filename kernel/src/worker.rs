//! The FIB worker: owns the wanted routes, the next-hop resolutions and our
//! view of the kernel, and is the only writer of routes.

use std::collections::HashMap;
use std::io;
use std::mem;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::RouteNetlinkMessage;
use tables::{Id, Numbered, PrefixMap};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

use crate::hash::{FastMap, FastSet};
use crate::msg::{self, KernelHop, RouteKey};
use crate::netlink::{self, NlError, NlSocket};
use crate::nexthop::{self, ObjOp, Objects};
use crate::resolve::{resolve, Resolved};
use crate::writer::{Op, Outcome, Writer};
use crate::{BgpNextHop, Cmd, FibChange, FibConfig, FibEntry, FibEvent, NexthopState};

/// Quiet time after a link/address/route notification before next hops are
/// resolved again.
const DEBOUNCE: Duration = Duration::from_millis(60);

/// Prefixes written per step of a sweep. Between steps the worker takes in
/// what the RIB sent meanwhile, so changes wait in the route table rather
/// than as queued messages (at a full table those were the peak of memory:
/// with 32k-prefix steps a slow kernel let 38 MB of changes queue up).
const CHUNK: usize = 4 * 1024;

/// A sweep that starts with at least this many dirty prefixes is written
/// with the monitor out of the route groups (see `quiet`).
const QUIET_SWEEP: usize = 10_000;

/// What we believe the kernel holds for a prefix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Current {
    /// Nothing of ours.
    #[default]
    Absent,
    /// These kernel next hops (an id in `Worker::hop_sets`).
    Installed(Id),
    /// The kernel refused our last write (an older version may remain);
    /// why is in `Worker::reported_failed`.
    Failed,
    /// Unknown after a lost acknowledgement or a link going down.
    Unknown,
}

/// What we want the kernel to hold for a prefix.
#[derive(Debug, Clone)]
enum Desired {
    Install(Arc<[KernelHop]>),
    Local,
    Unresolved(String),
}

/// Everything we know about one prefix: 12 bytes. A full table has few
/// distinct next-hop sets, so a route refers to its sets by number; our
/// view of the kernel ([`Current`]) is kept flat, so that the `dirty` flag
/// fits beside it.
#[derive(Debug, Default)]
struct Route {
    /// Wanted BGP next hops, an id in `Worker::wanted` (None: withdrawn).
    want: Option<Id>,
    /// With `State::Installed`: the kernel next hops.
    hops: Option<Id>,
    state: State,
    /// To be written (see [`Dirty`]).
    dirty: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum State {
    #[default]
    Absent,
    Installed,
    Failed,
    Unknown,
}

impl Route {
    fn cur(&self) -> Current {
        match (self.state, self.hops) {
            (State::Installed, Some(id)) => Current::Installed(id),
            (State::Failed, _) => Current::Failed,
            (State::Unknown, _) => Current::Unknown,
            _ => Current::Absent,
        }
    }

    fn set_cur(&mut self, cur: Current) {
        (self.state, self.hops) = match cur {
            Current::Absent => (State::Absent, None),
            Current::Installed(id) => (State::Installed, Some(id)),
            Current::Failed => (State::Failed, None),
            Current::Unknown => (State::Unknown, None),
        };
    }
}

/// Which prefixes are to be written. Each route carries a flag; while few
/// are flagged they are also listed, so that a sweep finds them without
/// walking the table. Loading or withdrawing a full table flags every
/// route: the list would then be the largest thing the FIB holds (10-14 MB
/// at 1.2M prefixes, at the moment memory peaks), so past `LIST_MAX` it is
/// dropped and sweeps walk the routes for their flags until none is left.
#[derive(Debug)]
struct Dirty {
    /// Routes flagged.
    count: usize,
    /// Exactly the flagged prefixes, or None when there are too many.
    list: Option<PrefixMap<()>>,
}

impl Dirty {
    const LIST_MAX: usize = 64 * 1024;

    fn new() -> Dirty {
        Dirty {
            count: 0,
            list: Some(PrefixMap::default()),
        }
    }

    fn mark(&mut self, prefix: IpNet, r: &mut Route) {
        if r.dirty {
            return;
        }
        r.dirty = true;
        self.count += 1;
        if let Some(list) = &mut self.list {
            list.insert(prefix, ());
            if list.len() > Self::LIST_MAX {
                self.list = None;
            }
        }
    }

    /// Before `prefix`'s route is removed from the table.
    fn forget(&mut self, prefix: &IpNet, r: &Route) {
        if r.dirty {
            self.count -= 1;
            if let Some(list) = &mut self.list {
                list.remove(prefix);
            }
            self.relist();
        }
    }

    fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn len(&self) -> usize {
        self.count
    }

    /// Unflags and returns up to `n` dirty prefixes below `bound`, highest
    /// first.
    fn take_below(
        &mut self,
        routes: &mut PrefixMap<Route>,
        bound: Option<IpNet>,
        n: usize,
    ) -> Vec<IpNet> {
        let taken: Vec<IpNet> = match &mut self.list {
            Some(list) => list
                .take_below(bound, n)
                .into_iter()
                .map(|(p, ())| p)
                .collect(),
            None => routes
                .iter_below(bound)
                .filter(|(_, r)| r.dirty)
                .map(|(p, _)| p)
                .take(n)
                .collect(),
        };
        for p in &taken {
            if let Some(r) = routes.get_mut(p) {
                r.dirty = false;
            }
        }
        self.count -= taken.len();
        self.relist();
        taken
    }

    /// Unflags everything.
    fn clear(&mut self, routes: &mut PrefixMap<Route>) {
        if self.count == 0 {
            return;
        }
        match self.list.take() {
            Some(list) => {
                for p in list.keys() {
                    if let Some(r) = routes.get_mut(&p) {
                        r.dirty = false;
                    }
                }
            }
            None => {
                for (_, r) in routes.iter_mut() {
                    r.dirty = false;
                }
            }
        }
        *self = Dirty::new();
    }

    /// With none left flagged, listing starts again.
    fn relist(&mut self) {
        if self.count == 0 && self.list.is_none() {
            self.list = Some(PrefixMap::default());
        }
    }
}

struct Link {
    name: String,
    up: bool,
}

struct NextHop {
    res: Resolved,
    /// Asked for by `watch_nexthops` (events are sent only for these).
    watched: bool,
}

pub(crate) struct Worker {
    cfg: FibConfig,
    events: UnboundedSender<FibEvent>,
    query: NlSocket,
    writer: Writer,
    stop: Arc<AtomicBool>,
    links: HashMap<u32, Link>,
    /// Ordered, not hashed: a hash table of a million routes doubles in
    /// one step (briefly holding old and new tables, a peak of ~250 MB at
    /// 1M), where a B-tree grows a node at a time; and writes go out in
    /// prefix order anyway.
    routes: PrefixMap<Route>,
    /// The BGP next-hop sets routes want (`Route::want`).
    wanted: Numbered<Vec<BgpNextHop>>,
    /// The kernel next-hop sets routes are installed with
    /// (`Current::Installed`).
    hop_sets: Numbered<[KernelHop]>,
    /// Prefixes reported with RouteFailed and not recovered since, with
    /// the kernel's words (rare, so kept aside rather than in every route).
    reported_failed: FastMap<IpNet, Arc<str>>,
    /// Prefixes to reconcile. Written by sweeps that go down the prefix
    /// space in steps (see `write_dirty`).
    dirty: Dirty,
    /// The sweep under way: it writes dirty prefixes below this bound
    /// next. None: no sweep (`in_sweep` false) or at the top.
    sweep_bound: Option<IpNet>,
    in_sweep: bool,
    nexthops: FastMap<IpAddr, NextHop>,
    /// Routes of a previous run (prefix, metric), until initial sync.
    stale: Option<Vec<(IpNet, u32)>>,
    sync_requested: bool,
    debounce: Option<Instant>,
    links_down: Vec<u32>,
    /// Our nexthop objects the kernel deleted behind our back.
    objects_gone: Vec<Arc<[KernelHop]>>,
    verify: bool,
    /// Nexthop objects, when used (None: next hops written into each route).
    objects: Option<Objects>,
    /// The monitor's socket, read by the monitor thread.
    monitor_fd: i32,
    /// The monitor has left the route groups for a large sweep. While a
    /// socket is in a group the kernel builds a notification for every
    /// route we write, only for our filter to drop it; at a full table
    /// that was ~10 % of the writer's time (perf). Foreign route changes
    /// missed meanwhile are caught by resolving every next hop again when
    /// the sweep ends.
    quiet: bool,
}

/// A route lets go of what it held installed: its hop set and nexthop
/// object (if any).
fn release(objects: &mut Option<Objects>, hop_sets: &mut Numbered<[KernelHop]>, cur: Current) {
    if let Current::Installed(id) = cur {
        if let Some(o) = objects.as_mut() {
            o.release(hop_sets.get(id));
        }
        hop_sets.release(id);
    }
}

fn link_name(links: &HashMap<u32, Link>, index: u32) -> String {
    links
        .get(&index)
        .map(|l| l.name.clone())
        .unwrap_or_else(|| format!("if{index}"))
}

impl Worker {
    pub(crate) fn new(
        cfg: FibConfig,
        events: UnboundedSender<FibEvent>,
        query: NlSocket,
        write: NlSocket,
        monitor_fd: i32,
        stop: Arc<AtomicBool>,
    ) -> io::Result<Worker> {
        let key = RouteKey {
            table: cfg.table,
            protocol: cfg.protocol,
            metric: cfg.metric,
        };
        let mut w = Worker {
            events,
            writer: Writer::new(write, key),
            stop,
            links: HashMap::new(),
            routes: PrefixMap::default(),
            wanted: Numbered::default(),
            hop_sets: Numbered::default(),
            reported_failed: FastMap::default(),
            dirty: Dirty::new(),
            sweep_bound: None,
            in_sweep: false,
            nexthops: FastMap::default(),
            stale: None,
            sync_requested: false,
            debounce: None,
            links_down: Vec::new(),
            objects_gone: Vec::new(),
            verify: false,
            objects: None,
            monitor_fd,
            quiet: false,
            query,
            cfg,
        };
        w.refresh_links()?;
        if w.cfg.install && w.cfg.nexthop_objects {
            w.objects = w.dump_objects();
        }
        let stale = w.dump_ours()?;
        if !stale.is_empty() {
            tracing::info!(
                "found {} routes of protocol {} in table {} from a previous run; kept until initial sync",
                stale.len(),
                w.cfg.protocol,
                w.cfg.table
            );
        }
        w.stale = Some(stale);
        Ok(w)
    }

    /// Re-reads the link table; returns indexes of links that went down or
    /// disappeared since we last knew them.
    fn refresh_links(&mut self) -> io::Result<Vec<u32>> {
        let replies = self
            .query
            .request(msg::dump_links(), true)
            .map_err(|e| io::Error::from_raw_os_error(e.errno))?;
        let mut fresh = HashMap::new();
        for m in replies {
            if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) = m.payload {
                if let Cmd::Link { index, name, up } = crate::monitor::link_cmd(&l) {
                    let name = name.unwrap_or_else(|| format!("if{index}"));
                    fresh.insert(index, Link { name, up });
                }
            }
        }
        let went_down = self
            .links
            .iter()
            .filter(|(i, l)| l.up && !fresh.get(i).is_some_and(|f| f.up))
            .map(|(i, _)| *i)
            .collect();
        self.links = fresh;
        Ok(went_down)
    }

    /// Every nexthop object in the kernel, or None (with a warning) when the
    /// kernel has none (before Linux 5.3): routes then carry their next hops.
    fn dump_objects(&mut self) -> Option<Objects> {
        match self.query.request_raw(&mut nexthop::dump_request(0), true) {
            Ok(replies) => {
                let existing: Vec<(u32, u8)> =
                    replies.iter().filter_map(|r| nexthop::parse(r)).collect();
                let objects = Objects::new(self.cfg.protocol, existing);
                if !objects.previous_run.is_empty() {
                    tracing::info!(
                        "found {} nexthop objects of protocol {} from a previous run; kept until initial sync",
                        objects.previous_run.len(),
                        self.cfg.protocol
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

    /// Our protocol's routes in our table: (prefix, metric).
    fn dump_ours(&mut self) -> io::Result<Vec<(IpNet, u32)>> {
        let replies = self
            .query
            .request(msg::dump_routes(), true)
            .map_err(|e| io::Error::from_raw_os_error(e.errno))?;
        let mut out = Vec::new();
        for m in replies {
            if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) = m.payload {
                if u8::from(r.header.protocol) != self.cfg.protocol {
                    continue;
                }
                let info = msg::route_info(&r);
                if info.table != self.cfg.table {
                    continue;
                }
                if let Some(p) = info.prefix {
                    out.push((p, info.metric));
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn run(mut self, rx: mpsc::Receiver<Cmd>) {
        let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
        let mut queries: Vec<(Option<IpNet>, oneshot::Sender<Vec<FibEntry>>)> = Vec::new();
        let mut shutdown: Option<oneshot::Sender<()>> = None;
        let mut detached = false;
        loop {
            let first = if self.pending() {
                // Work pending: take what arrived, do not wait.
                match rx.try_recv() {
                    Ok(c) => Some(c),
                    Err(mpsc::TryRecvError::Empty) => None,
                    Err(mpsc::TryRecvError::Disconnected) => break,
                }
            } else {
                match self.debounce {
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
                    Cmd::Apply(changes) => self.apply(changes),
                    Cmd::Watch(addrs) => self.watch(addrs),
                    Cmd::InitialSyncDone => self.sync_requested = true,
                    Cmd::Entries(p, tx) => queries.push((p, tx)),
                    Cmd::Flush(tx) => flushes.push(tx),
                    Cmd::Shutdown(tx) => shutdown = Some(tx),
                    Cmd::Detach => detached = true,
                    other => self.kernel_event(other),
                }
                if shutdown.is_some() || detached {
                    break;
                }
                next = rx.try_recv().ok();
            }
            if self.debounce.is_some_and(|t| t <= Instant::now()) {
                self.debounce = None;
                self.reresolve();
            }
            if shutdown.is_some() {
                while self.pending() {
                    self.write_dirty();
                }
            }
            self.write_dirty();
            if self.pending() {
                // Answer queries meanwhile; flushes and the initial sync
                // wait for everything applied so far to be written (the
                // sync must not remove a previous run's route before its
                // replacement is in).
                for (p, tx) in queries.drain(..) {
                    let _ = tx.send(self.entries(p));
                }
                continue;
            }
            if self.sync_requested {
                self.sync_requested = false;
                self.initial_sync();
            }
            for tx in flushes.drain(..) {
                let _ = tx.send(());
            }
            for (p, tx) in queries.drain(..) {
                let _ = tx.send(self.entries(p));
            }
            if let Some(tx) = shutdown.take() {
                self.shutdown();
                let _ = tx.send(());
                break;
            }
            if detached {
                tracing::info!("FIB handle dropped without shutdown; routes left in the kernel");
                break;
            }
        }
        self.stop.store(true, Ordering::Relaxed);
    }

    fn ensure_nexthop(&mut self, addr: IpAddr) {
        if !self.nexthops.contains_key(&addr) {
            let links = &self.links;
            let res = resolve(&mut self.query, addr, self.cfg.protocol, &|i| {
                link_name(links, i)
            });
            tracing::debug!("next hop {addr} resolves to {:?}", res);
            self.nexthops.insert(
                addr,
                NextHop {
                    res,
                    watched: false,
                },
            );
        }
    }

    fn apply(&mut self, changes: Vec<FibChange>) {
        // No `routes.reserve(changes.len())`: withdrawals would make the
        // table double its capacity just as it is about to empty.
        let mut last_nh = None;
        for FibChange {
            prefix,
            mut next_hops,
        } in changes
        {
            if !next_hops.windows(2).all(|w| w[0] < w[1]) {
                // Not as promised: sort and deduplicate a copy.
                let mut v = next_hops.to_vec();
                v.sort();
                v.dedup();
                next_hops = Arc::new(v);
            }
            let prefix = prefix.trunc();
            if next_hops.is_empty() {
                if let Some(r) = self.routes.get_mut(&prefix) {
                    if let Some(w) = r.want.take() {
                        self.wanted.release(w);
                    }
                    self.reported_failed.remove(&prefix);
                    if r.cur() == Current::Absent {
                        self.dirty.forget(&prefix, r);
                        self.routes.remove(&prefix);
                    } else {
                        self.dirty.mark(prefix, r);
                    }
                }
                continue;
            }
            for nh in next_hops.iter() {
                if last_nh != Some(nh.address) {
                    self.ensure_nexthop(nh.address);
                    last_nh = Some(nh.address);
                }
            }
            let id = self.wanted.acquire(&next_hops, || next_hops.clone());
            let r = self.routes.entry(prefix);
            if let Some(old) = r.want.replace(id) {
                self.wanted.release(old);
            }
            self.dirty.mark(prefix, r);
        }
    }

    fn watch(&mut self, addrs: Vec<IpAddr>) {
        for addr in addrs {
            self.ensure_nexthop(addr);
            let nh = self.nexthops.get_mut(&addr).expect("just resolved");
            nh.watched = true;
            let _ = self.events.send(FibEvent::Nexthop {
                address: addr,
                state: nh.res.state.clone(),
            });
        }
    }

    fn kernel_event(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Link { index, name, up } => {
                let name = name.unwrap_or_else(|| link_name(&self.links, index));
                let was_up = self.links.get(&index).map(|l| l.up);
                if was_up == Some(true) && !up {
                    tracing::info!("interface {name} is down");
                    self.links_down.push(index);
                } else if was_up == Some(false) && up {
                    tracing::info!("interface {name} is up");
                }
                self.links.insert(index, Link { name, up });
            }
            Cmd::LinkGone(index) => {
                if let Some(l) = self.links.remove(&index) {
                    tracing::info!("interface {} is gone", l.name);
                }
                self.links_down.push(index);
            }
            Cmd::ObjectGone(id) => {
                match self.objects.as_ref().and_then(|o| o.hops_of(id)) {
                    Some(hops) => self.objects_gone.push(hops),
                    None => return, // one we deleted ourselves
                }
            }
            Cmd::Overrun => {
                match self.refresh_links() {
                    Ok(down) => self.links_down.extend(down),
                    Err(e) => tracing::warn!("link dump failed: {e}"),
                }
                self.verify = true;
            }
            _ => {}
        }
        if self.debounce.is_none() {
            self.debounce = Some(Instant::now() + DEBOUNCE);
        }
    }

    /// Resolves every next hop again; routes whose next hops changed, or
    /// that went through a link that went down (the kernel flushes those
    /// without telling), are written again.
    fn reresolve(&mut self) {
        let mut changed: FastSet<IpAddr> = FastSet::default();
        let links = &self.links;
        for (addr, nh) in self.nexthops.iter_mut() {
            let res = resolve(&mut self.query, *addr, self.cfg.protocol, &|i| {
                link_name(links, i)
            });
            if res == nh.res {
                continue;
            }
            if res.state != nh.res.state {
                match &res.state {
                    NexthopState::Unreachable(why) => {
                        tracing::info!("next hop {addr} is unreachable: {why}")
                    }
                    NexthopState::Reachable { metric } => {
                        tracing::info!("next hop {addr} is reachable (metric {metric})")
                    }
                    NexthopState::Local => tracing::info!("next hop {addr} is local"),
                }
                if nh.watched {
                    let _ = self.events.send(FibEvent::Nexthop {
                        address: *addr,
                        state: res.state.clone(),
                    });
                }
            }
            nh.res = res;
            changed.insert(*addr);
        }
        let down = mem::take(&mut self.links_down);
        let gone = mem::take(&mut self.objects_gone);
        // Routes through a link that went down, or through an object the
        // kernel deleted (it flushes the objects of a link that loses
        // carrier, and removes the member from groups), are gone or changed.
        let flushed = |h: &[KernelHop]| {
            h.iter().any(|k| down.contains(&k.ifindex))
                || gone
                    .iter()
                    .any(|g| g[..] == *h || (g.len() == 1 && h.contains(&g[0])))
        };
        if !changed.is_empty() || !down.is_empty() || !gone.is_empty() {
            for (p, r) in self.routes.iter_mut() {
                if let Current::Installed(id) = r.cur() {
                    if flushed(self.hop_sets.get(id)) {
                        // The kernel flushed it without telling.
                        release(&mut self.objects, &mut self.hop_sets, r.cur());
                        r.set_cur(Current::Unknown);
                        self.dirty.mark(p, r);
                        continue;
                    }
                }
                if let Some(w) = r.want {
                    let nhs = self.wanted.get(w);
                    if nhs.iter().any(|n| changed.contains(&n.address)) {
                        self.dirty.mark(p, r);
                    }
                }
            }
        }
        if let Some(o) = self.objects.as_mut() {
            o.forget(flushed);
        }
        if mem::take(&mut self.verify) {
            self.verify_kernel();
        }
    }

    /// Compares our view with a dump of the kernel; prefixes that differ
    /// become Unknown and are written again.
    fn verify_kernel(&mut self) {
        let present: FastSet<IpNet> = match self.dump_ours() {
            Ok(v) => v
                .into_iter()
                .filter(|(_, m)| *m == self.cfg.metric)
                .map(|(p, _)| p)
                .collect(),
            Err(e) => {
                tracing::warn!("route dump failed: {e}");
                return;
            }
        };
        let mut n = 0;
        for (p, r) in self.routes.iter_mut() {
            let installed = matches!(r.cur(), Current::Installed(_));
            let stray = r.cur() == Current::Absent && r.want.is_some() && present.contains(&p);
            if (installed && !present.contains(&p)) || stray {
                release(&mut self.objects, &mut self.hop_sets, r.cur());
                r.set_cur(Current::Unknown);
                self.dirty.mark(p, r);
                n += 1;
            }
        }
        if n > 0 {
            tracing::info!("kernel table differs from our view for {n} prefixes; rewriting them");
        }
    }

    fn desired(&self, nhs: &[BgpNextHop]) -> Desired {
        let state_of = |a: &IpAddr| self.nexthops.get(a).map(|n| &n.res);
        if let [one] = nhs {
            return match state_of(&one.address) {
                Some(r) => match &r.state {
                    NexthopState::Reachable { .. } => Desired::Install(r.hops.clone()),
                    NexthopState::Local => Desired::Local,
                    NexthopState::Unreachable(why) => {
                        Desired::Unresolved(format!("{}: {why}", one.address))
                    }
                },
                None => Desired::Unresolved(format!("{}: not resolved yet", one.address)),
            };
        }
        let mut hops: Vec<KernelHop> = Vec::new();
        let mut local = false;
        let mut why = Vec::new();
        for nh in nhs {
            match state_of(&nh.address) {
                Some(r) => match &r.state {
                    NexthopState::Reachable { .. } => hops.extend(r.hops.iter().copied()),
                    NexthopState::Local => local = true,
                    NexthopState::Unreachable(w) => why.push(format!("{}: {w}", nh.address)),
                },
                None => why.push(format!("{}: not resolved yet", nh.address)),
            }
        }
        hops.sort();
        hops.dedup();
        if !hops.is_empty() {
            Desired::Install(Arc::from(hops))
        } else if local {
            Desired::Local
        } else {
            Desired::Unresolved(why.join("; "))
        }
    }

    /// Changes not yet written.
    fn pending(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Writes the next [`CHUNK`] dirty prefixes of the sweep, starting a
    /// sweep from the top when none is under way.
    ///
    /// A sweep goes down the prefix space once, taking every dirty prefix
    /// below its position, also those that became dirty while it ran. So
    /// the kernel gets neighbouring prefixes together, its trie stays in
    /// cache (changes arrive in UPDATE order, scattered over the table:
    /// writing them in 32k-prefix chunks each sorted on its own made a
    /// full-table load 3× slower), and it removes routes in the order its
    /// trie removes fastest (see `sort_and_write`).
    fn write_dirty(&mut self) {
        if !self.cfg.install {
            self.dirty.clear(&mut self.routes);
            return;
        }
        if !self.in_sweep {
            if self.dirty.is_empty() {
                self.run_ops(Vec::new());
                return;
            }
            self.in_sweep = true;
            self.sweep_bound = None;
            if self.dirty.len() >= QUIET_SWEEP {
                self.set_quiet(true);
            }
        }
        let step = self
            .dirty
            .take_below(&mut self.routes, self.sweep_bound, CHUNK);
        match step.last() {
            Some(p) => self.sweep_bound = Some(*p),
            None => {
                // At the bottom: what is dirty now starts the next sweep.
                self.in_sweep = false;
                self.set_quiet(false);
                return;
            }
        }
        let mut ops = Vec::with_capacity(step.len());
        for p in step {
            let Some(r) = self.routes.get(&p) else {
                continue;
            };
            let want = r.want.map(|w| self.desired(self.wanted.get(w)));
            match (want, r.cur()) {
                (Some(Desired::Install(h)), Current::Installed(c))
                    if self.hop_sets.get(c)[..] == h[..] => {}
                (Some(Desired::Install(h)), _) => {
                    let nhid = self.objects.as_mut().map_or(0, |o| o.acquire(&h));
                    ops.push(Op::Replace(p, h, nhid))
                }
                (_, Current::Absent) => {}
                (_, _) => ops.push(Op::Delete {
                    prefix: p,
                    metric: self.cfg.metric,
                    track: true,
                }),
            }
        }
        self.run_ops(ops);
        if self.dirty.is_empty() {
            self.in_sweep = false;
            self.set_quiet(false);
        }
    }

    /// Leaves (or rejoins) the route notification groups; on rejoining,
    /// schedules resolving every next hop again.
    fn set_quiet(&mut self, quiet: bool) {
        if quiet == self.quiet {
            return;
        }
        for g in [netlink::RTNLGRP_IPV4_ROUTE, netlink::RTNLGRP_IPV6_ROUTE] {
            if let Err(e) = netlink::set_membership(self.monitor_fd, g, !quiet) {
                tracing::warn!("netlink route group {g}: {e}");
            }
        }
        self.quiet = quiet;
        if !quiet {
            self.debounce = Some(Instant::now());
        }
    }

    /// Creates the nexthop objects `ops` need, writes `ops`, then deletes
    /// the objects no route uses any more.
    fn run_ops(&mut self, mut ops: Vec<Op>) {
        let refused = self.create_objects();
        if !refused.is_empty() {
            // Routes whose object the kernel refused are refused with its words.
            let mut pre = Vec::new();
            ops.retain(|op| match op {
                Op::Replace(_, _, nhid) if refused.contains_key(nhid) => {
                    pre.push((op.clone(), refused[nhid].clone()));
                    false
                }
                _ => true,
            });
            self.write_ops(Vec::new(), pre);
        }
        self.sort_and_write(ops);
        self.delete_objects();
    }

    /// Sends queued object creations; returns those refused, with why.
    fn create_objects(&mut self) -> FastMap<u32, NlError> {
        let mut refused = FastMap::default();
        let Some(creates) = self.objects.as_mut().map(|o| o.take_creates()) else {
            return refused;
        };
        if creates.is_empty() {
            return refused;
        }
        self.writer
            .write(creates.into_iter().map(Op::Object), &mut |op, outcome| {
                if let (Op::Object(ObjOp::Single { id, .. } | ObjOp::Group { id, .. }), o) =
                    (op, outcome)
                {
                    match o {
                        Outcome::Done => {}
                        Outcome::Refused(e) => {
                            refused.insert(id, e);
                        }
                        Outcome::Unknown => {
                            refused.insert(
                                id,
                                NlError {
                                    errno: libc::ETIMEDOUT,
                                    text: Some("no acknowledgement from the kernel".into()),
                                },
                            );
                        }
                    }
                }
            });
        let objects = self.objects.as_mut().expect("checked above");
        for id in refused.keys() {
            objects.refused(*id);
        }
        if let Some(first) = refused.values().next() {
            tracing::warn!(
                "kernel refused {} nexthop objects; one of them: {first}",
                refused.len()
            );
        }
        refused
    }

    /// Sends queued object deletions (an object already gone is fine).
    fn delete_objects(&mut self) {
        let Some(ids) = self.objects.as_mut().map(|o| o.take_deletes()) else {
            return;
        };
        self.delete_object_ids(ids);
    }

    fn delete_object_ids(&mut self, ids: Vec<u32>) {
        if ids.is_empty() {
            return;
        }
        let mut first_error = None;
        self.writer.write(
            ids.into_iter().map(|id| Op::Object(ObjOp::Delete { id })),
            &mut |op, outcome| {
                if let (Op::Object(ObjOp::Delete { id }), Outcome::Refused(e)) = (op, outcome) {
                    if e.errno != libc::ENOENT && first_error.is_none() {
                        first_error = Some(format!("nexthop object {id}: {e}"));
                    }
                }
            },
        );
        if let Some(e) = first_error {
            tracing::warn!("kernel refused to delete {e}");
        }
    }

    fn sort_and_write(&mut self, mut ops: Vec<Op>) {
        if ops.is_empty() {
            return;
        }
        // In descending prefix order. On every removal the kernel's trie
        // rescans the children of the leaf's node from the first one
        // (update_suffix in net/ipv4/fib_trie.c); removing in ascending
        // order makes that scan walk past every child already removed,
        // quadratic in a full node. Measured with 1M IPv4 + 200k IPv6:
        // removing all took 16.9 s ascending (30 % of the writer's time in
        // update_suffix). Installs do not care about the direction.
        let key = |op: &Op| match op {
            Op::Replace(p, ..) | Op::Delete { prefix: p, .. } => Some(*p),
            Op::Object(_) => None,
        };
        ops.sort_unstable_by_key(|op| std::cmp::Reverse(key(op)));
        self.write_ops(ops, Vec::new());
    }

    /// Writes `ops` and follows their outcomes; `refused` are ops not sent
    /// because the kernel already refused what they need.
    fn write_ops(&mut self, ops: Vec<Op>, refused: Vec<(Op, NlError)>) {
        let started = Instant::now();
        let total = ops.len();
        let mut first_refusal: Option<(IpNet, String)> = None;
        let mut unknown = 0usize;
        let routes = &mut self.routes;
        let reported_failed = &mut self.reported_failed;
        let events = &self.events;
        let objects = &mut self.objects;
        let hop_sets = &mut self.hop_sets;
        let dirty = &mut self.dirty;
        let mut outcome_of = |op, outcome| match (op, outcome) {
            (Op::Replace(p, h, _), Outcome::Done) => {
                // The object reference taken for this write is kept by
                // the installed route; the one it replaces is let go.
                let id = hop_sets.acquire(&h, || h.clone());
                let r = routes.entry(p);
                release(objects, hop_sets, r.cur());
                r.set_cur(Current::Installed(id));
                if reported_failed.remove(&p).is_some() {
                    let _ = events.send(FibEvent::RouteInstalled { prefix: p });
                }
            }
            (Op::Replace(p, h, _), Outcome::Refused(e)) => {
                let error = e.to_string();
                if first_refusal.is_none() {
                    first_refusal = Some((p, error.clone()));
                }
                if let Some(o) = objects.as_mut() {
                    o.release(&h);
                }
                let r = routes.entry(p);
                release(objects, hop_sets, r.cur());
                r.set_cur(Current::Failed);
                reported_failed.insert(p, error.as_str().into());
                let _ = events.send(FibEvent::RouteFailed { prefix: p, error });
            }
            (Op::Replace(p, h, _), Outcome::Unknown) => {
                unknown += 1;
                if let Some(o) = objects.as_mut() {
                    o.release(&h);
                }
                let r = routes.entry(p);
                release(objects, hop_sets, r.cur());
                r.set_cur(Current::Unknown);
            }
            (Op::Delete { prefix, track, .. }, outcome) => {
                if let Outcome::Refused(e) = &outcome {
                    if e.errno != libc::ESRCH && first_refusal.is_none() {
                        first_refusal = Some((prefix, e.to_string()));
                    }
                }
                if !track {
                    return;
                }
                if let Some(r) = routes.get_mut(&prefix) {
                    release(objects, hop_sets, r.cur());
                    if matches!(outcome, Outcome::Unknown) {
                        unknown += 1;
                        r.set_cur(Current::Unknown);
                    } else {
                        r.set_cur(Current::Absent);
                        if r.want.is_none() {
                            dirty.forget(&prefix, r);
                            routes.remove(&prefix);
                        }
                    }
                }
            }
            (Op::Object(_), _) => {}
        };
        let refused_early = refused.len();
        for (op, e) in refused {
            outcome_of(op, Outcome::Refused(e));
        }
        let mut stats = self.writer.write(ops, &mut outcome_of);
        stats.refused += refused_early;
        tracing::debug!(
            "wrote {} route changes in {} batches in {:?}",
            stats.messages,
            stats.batches,
            started.elapsed()
        );
        if let Some((p, e)) = first_refusal {
            tracing::warn!(
                "kernel refused {} of {total} route changes; first: {p}: {e}",
                stats.refused
            );
        }
        if unknown > 0 || stats.lost_reports {
            tracing::warn!("{unknown} route changes unconfirmed; re-reading the kernel table");
            self.verify = true;
            if self.debounce.is_none() {
                self.debounce = Some(Instant::now() + DEBOUNCE);
            }
        }
    }

    fn initial_sync(&mut self) {
        let Some(stale) = self.stale.take() else {
            return;
        };
        if !self.cfg.install {
            return;
        }
        let ops: Vec<Op> = stale
            .into_iter()
            .filter(|(p, m)| {
                let ours = self.routes.get(p).map(Route::cur);
                !(*m == self.cfg.metric && matches!(ours, Some(Current::Installed(_))))
            })
            .map(|(prefix, metric)| Op::Delete {
                prefix,
                metric,
                track: false,
            })
            .collect();
        if !ops.is_empty() {
            tracing::info!(
                "initial sync: removing {} routes of a previous run",
                ops.len()
            );
        }
        self.run_ops(ops);
        // Every route of ours now uses this run's objects.
        let previous = self
            .objects
            .as_mut()
            .map(|o| mem::take(&mut o.previous_run))
            .unwrap_or_default();
        self.delete_object_ids(previous);
    }

    fn shutdown(&mut self) {
        if !self.cfg.install || self.cfg.keep_on_exit {
            let n = self
                .routes
                .values()
                .filter(|r| r.cur() != Current::Absent)
                .count();
            tracing::info!("FIB stopped; {n} routes left in the kernel");
            return;
        }
        let ops: Vec<Op> = self
            .routes
            .iter()
            .filter(|(_, r)| r.cur() != Current::Absent)
            .map(|(p, _)| Op::Delete {
                prefix: p,
                metric: self.cfg.metric,
                track: true,
            })
            .collect();
        let n = ops.len();
        self.run_ops(ops);
        tracing::info!("FIB stopped; removed {n} routes from the kernel");
    }

    fn hop_text(&self, prefix: &IpNet, h: &KernelHop) -> String {
        let dev = link_name(&self.links, h.ifindex);
        let family = match (prefix, h.gateway) {
            (IpNet::V4(_), IpAddr::V6(_)) => "inet6 ",
            (IpNet::V6(_), IpAddr::V4(_)) => "inet ",
            _ => "",
        };
        format!("via {family}{} dev {dev}", h.gateway)
    }

    fn entry(&self, prefix: IpNet, nhs: &[BgpNextHop]) -> FibEntry {
        let want = self.desired(nhs);
        let hops = match &want {
            Desired::Install(h) => h.iter().map(|h| self.hop_text(&prefix, h)).collect(),
            _ => Vec::new(),
        };
        let (status, detail) = if !self.cfg.install {
            let detail = match &want {
                Desired::Install(_) => "next hops resolved".to_string(),
                Desired::Local => "next hop is local".to_string(),
                Desired::Unresolved(w) => format!("next hop unresolved: {w}"),
            };
            ("install disabled".to_string(), Some(detail))
        } else {
            let cur = self.routes.get(&prefix).map_or(Current::Absent, Route::cur);
            match (&want, cur) {
                (_, Current::Failed) => {
                    let why = self.reported_failed.get(&prefix);
                    let why = why.map_or("the kernel refused the last write", |e| e);
                    (format!("failed: {why}"), None)
                }
                (Desired::Install(_), Current::Installed(_)) => ("installed".to_string(), None),
                (Desired::Install(_), _) => ("pending".to_string(), None),
                (Desired::Local, _) => ("next hop is local".to_string(), None),
                (Desired::Unresolved(w), _) => ("next hop unresolved".to_string(), Some(w.clone())),
            }
        };
        FibEntry {
            prefix,
            bgp_next_hops: nhs.to_vec(),
            kernel_next_hops: hops,
            status,
            detail,
        }
    }

    fn entries(&self, prefix: Option<IpNet>) -> Vec<FibEntry> {
        match prefix {
            Some(p) => {
                let p = p.trunc();
                match self.routes.get(&p).and_then(|r| r.want) {
                    Some(w) => vec![self.entry(p, self.wanted.get(w))],
                    None => Vec::new(),
                }
            }
            None => {
                let mut v: Vec<FibEntry> = self
                    .routes
                    .iter()
                    .filter_map(|(p, r)| r.want.map(|w| self.entry(p, self.wanted.get(w))))
                    .collect();
                v.sort_by_key(|a| a.prefix);
                v
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use ipnet::Ipv4Net;

    use super::*;

    /// Past `LIST_MAX` flagged routes the list goes and sweeps walk the
    /// flags; either way every flagged prefix comes out once, highest first.
    #[test]
    fn dirty_prefixes_come_out_once_listed_or_not() {
        for n in [10u32, Dirty::LIST_MAX as u32 + 10] {
            let mut routes: PrefixMap<Route> = PrefixMap::default();
            let mut dirty = Dirty::new();
            for i in 0..n {
                let p: IpNet = Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24)
                    .unwrap()
                    .into();
                dirty.mark(p, routes.entry(p));
                dirty.mark(p, routes.entry(p)); // twice: still once
            }
            let v6: IpNet = "2001:db8::/32".parse().unwrap();
            dirty.mark(v6, routes.entry(v6));
            assert_eq!(dirty.len(), n as usize + 1);
            assert_eq!(dirty.list.is_some(), n < 100, "n = {n}");
            // One route leaves the table while flagged.
            let gone: IpNet = "10.0.0.0/24".parse().unwrap();
            dirty.forget(&gone, routes.get(&gone).unwrap());
            routes.remove(&gone);
            let first = dirty.take_below(&mut routes, None, 2);
            assert_eq!(first[0], v6, "IPv6 is above IPv4");
            let mut all = first;
            let mut bound = all.last().copied();
            loop {
                let step = dirty.take_below(&mut routes, bound, 1000);
                let Some(last) = step.last() else { break };
                bound = Some(*last);
                all.extend(step);
            }
            assert_eq!(all.len(), n as usize);
            assert!(all.windows(2).all(|w| w[0] > w[1]), "highest first, once");
            assert!(!all.contains(&gone));
            assert!(dirty.is_empty());
            assert!(routes.values().all(|r| !r.dirty));
            assert!(dirty.list.is_some(), "listing again once none is left");
        }
    }

    #[test]
    fn a_route_stays_small() {
        // With a 5-byte IPv4 key, a B-tree leaf of 11 routes is 200 bytes.
        assert_eq!(std::mem::size_of::<Route>(), 12);
    }
}
