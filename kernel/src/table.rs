//! The route table: per prefix, the wanted BGP next hops and what we believe
//! the kernel holds; which prefixes are to be written (dirty); and the sweep
//! that writes them, going down the prefix space in steps.
//!
//! A sweep goes down the prefix space once, taking every dirty prefix below
//! its position, also those that became dirty while it ran. So the kernel
//! gets neighbouring prefixes together, its trie stays in cache (changes
//! arrive in UPDATE order, scattered over the table: writing them in
//! 32k-prefix chunks each sorted on its own made a full-table load 3×
//! slower), and it removes routes in the order its trie removes fastest
//! (see `installer::sort_for_kernel`).
//!
//! A route the kernel refused is tried again after a backoff (1 s,
//! doubling to 60 s; from 1 s again when its wanted next hops change),
//! without waiting for any other event.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ipnet::IpNet;
use tables::fib::{FibSets, NhSet};
use tables::{Id, Numbered, PrefixMap};
use tokio::sync::mpsc::UnboundedSender;

use crate::hash::{FastMap, FastSet};
use crate::installer::HopSets;
use crate::msg::{KernelHop, RawRoute};
use crate::repairs::{Repairs, When};
use crate::report::FibEvent;
use crate::resolver::Desired;
use crate::writer::{Op, Outcome, Track};
use wire::NextHop as BgpNextHop;

/// What we believe the kernel holds for a prefix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Current {
    /// Nothing of ours.
    #[default]
    Absent,
    /// These kernel next hops (an id in the installer's [`HopSets`]).
    Installed(Id),
    /// The kernel refused our last write (an older version may remain);
    /// why, and when it is tried again, is in `RouteTable::reported_failed`.
    Failed,
    /// Unknown after a lost acknowledgement or a link going down.
    Unknown,
}

/// Everything we know about one prefix: 16 bytes. A full table has few
/// distinct next-hop sets, so a route refers to its sets by number; our
/// view of the kernel ([`Current`]) is kept flat, so that the flags fit
/// beside it. A prefix may have two routes of ours in the kernel: the
/// primary at our metric, and (`kernel.backupRoutes`) a standby at the
/// next metric, via the backup set, which the kernel falls back to by
/// itself when the primary goes with its next hop's object.
#[derive(Debug, Default)]
struct Route {
    /// Wanted BGP next hops (best and backup), an id in
    /// `RouteTable::wanted` (None: withdrawn).
    want: Option<Id>,
    /// With `state == Installed`: the primary's kernel next hops.
    hops: Option<Id>,
    /// With `standby_state == Installed`: the standby's kernel next hops.
    standby: Option<Id>,
    state: State,
    standby_state: State,
    /// [`DIRTY`], [`STANDBY_DIRTY`], [`SEEN`], [`STANDBY_SEEN`].
    flags: u8,
}

/// The primary is to be written (see [`Dirty`]).
const DIRTY: u8 = 1;
/// The standby is to be written, after every dirty primary.
const STANDBY_DIRTY: u8 = 2;
/// During a [`Reconcile`]: the kernel's dump had the primary.
const SEEN: u8 = 4;
/// During a [`Reconcile`]: the kernel's dump had the standby.
const STANDBY_SEEN: u8 = 8;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum State {
    #[default]
    Absent,
    Installed,
    Failed,
    Unknown,
}

fn cur_of(state: State, hops: Option<Id>) -> Current {
    match (state, hops) {
        (State::Installed, Some(id)) => Current::Installed(id),
        (State::Failed, _) => Current::Failed,
        (State::Unknown, _) => Current::Unknown,
        _ => Current::Absent,
    }
}

fn split(cur: Current) -> (State, Option<Id>) {
    match cur {
        Current::Absent => (State::Absent, None),
        Current::Installed(id) => (State::Installed, Some(id)),
        Current::Failed => (State::Failed, None),
        Current::Unknown => (State::Unknown, None),
    }
}

impl Route {
    fn cur(&self) -> Current {
        cur_of(self.state, self.hops)
    }

    /// What we believe the kernel holds at the standby's metric.
    fn standby_cur(&self) -> Current {
        cur_of(self.standby_state, self.standby)
    }

    fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    fn set(&mut self, flag: u8, on: bool) {
        if on {
            self.flags |= flag;
        } else {
            self.flags &= !flag;
        }
    }

    /// Neither the primary nor the standby may be in the kernel.
    fn gone(&self) -> bool {
        self.cur() == Current::Absent && self.standby_cur() == Current::Absent
    }

    /// Our view of the kernel becomes `cur`; what the route held installed
    /// is let go.
    fn replace_cur(&mut self, cur: Current, sets: &mut HopSets) {
        if let Current::Installed(id) = self.cur() {
            sets.release(id);
        }
        (self.state, self.hops) = split(cur);
    }

    /// The same for the standby.
    fn replace_standby(&mut self, cur: Current, sets: &mut HopSets) {
        if let Current::Installed(id) = self.standby_cur() {
            sets.release(id);
        }
        (self.standby_state, self.standby) = split(cur);
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
    /// The route flag it keeps ([`DIRTY`] or [`STANDBY_DIRTY`]).
    bit: u8,
    /// Routes flagged.
    count: usize,
    /// Exactly the flagged prefixes, or None when there are too many.
    list: Option<PrefixMap<()>>,
}

impl Dirty {
    const LIST_MAX: usize = 64 * 1024;

    fn new(bit: u8) -> Dirty {
        Dirty {
            bit,
            count: 0,
            list: Some(PrefixMap::default()),
        }
    }

    fn mark(&mut self, prefix: IpNet, r: &mut Route) {
        if r.has(self.bit) {
            return;
        }
        r.set(self.bit, true);
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
        if r.has(self.bit) {
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

    /// Unflags up to `n` dirty prefixes below `bound`, highest first,
    /// handing each route to `visit` as it goes; returns the last (lowest)
    /// one. A route for which `visit` returns false leaves the table. Each
    /// route is looked up once: walking the table (no list), the walk
    /// itself passes it (those leaving are removed after it); from the
    /// list, one search finds it, and removes it there.
    fn take_below(
        &mut self,
        routes: &mut PrefixMap<Route>,
        bound: Option<IpNet>,
        n: usize,
        mut visit: impl FnMut(IpNet, &mut Route) -> bool,
    ) -> Option<IpNet> {
        let bit = self.bit;
        let mut taken = 0;
        let mut last = None;
        match &mut self.list {
            Some(list) => {
                for (p, ()) in list.take_below(bound, n) {
                    // (Every listed prefix has its route: `forget` unlists
                    // a route before it leaves.)
                    routes.update_or_remove(p, |r| {
                        r.set(bit, false);
                        visit(p, r)
                    });
                    taken += 1;
                    last = Some(p);
                }
            }
            None => {
                let mut leaving = Vec::new();
                for (p, r) in routes
                    .iter_below_mut(bound)
                    .filter(|(_, r)| r.has(bit))
                    .take(n)
                {
                    r.set(bit, false);
                    if !visit(p, r) {
                        leaving.push(p);
                    }
                    taken += 1;
                    last = Some(p);
                }
                for p in leaving {
                    routes.remove(&p);
                }
            }
        }
        self.count -= taken;
        self.relist();
        last
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
                        r.set(self.bit, false);
                    }
                }
            }
            None => {
                for (_, r) in routes.iter_mut() {
                    r.set(self.bit, false);
                }
            }
        }
        *self = Dirty::new(self.bit);
    }

    /// With none left flagged, listing starts again.
    fn relist(&mut self) {
        if self.count == 0 && self.list.is_none() {
            self.list = Some(PrefixMap::default());
        }
    }
}

/// Where the sweep under way is.
#[derive(Debug, Default)]
enum Sweep {
    #[default]
    Idle,
    /// Writing dirty prefixes below this bound next (None: at the top).
    Below(Option<IpNet>),
    /// No primary is dirty: writing dirty standbys below this bound next.
    StandbyBelow(Option<IpNet>),
}

/// What a prefix's write is, from what we want and what the kernel holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Write {
    /// Nothing to write.
    None,
    Replace(Arc<[KernelHop]>),
    Delete,
}

/// The write that takes a prefix from `cur` to `want` (None: withdrawn).
/// `installed` reads an installed hop set. A route that is not to be
/// installed (withdrawn, next hop local or unresolved) is deleted unless
/// we know the kernel has nothing of ours for it.
pub(crate) fn write_for<'a>(
    want: Option<Desired>,
    cur: Current,
    installed: impl Fn(Id) -> &'a [KernelHop],
) -> Write {
    match (want, cur) {
        (Some(Desired::Install(h)), Current::Installed(c)) if installed(c)[..] == h[..] => {
            Write::None
        }
        (Some(Desired::Install(h)), _) => Write::Replace(h),
        (_, Current::Absent) => Write::None,
        (_, _) => Write::Delete,
    }
}

/// What a prefix's routes are to be: the primary's write and the
/// standby's, and whether what the prefix wants is in the kernel
/// without a write (to confirm to the RIB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub primary: Write,
    pub standby: Write,
    pub in_place: bool,
}

/// The writes that take a prefix from what the kernel holds (`cur`,
/// `standby`) to `wanted` (None: withdrawn). With `standbys` a prefix
/// whose best set resolves has a standby route via its backup set, when
/// that resolves too. A standby that forwards on what the primary is to
/// forward on, with no primary in the kernel (it went with its next hop's
/// object, and the kernel fell back to the standby by itself), is taken as
/// the prefix's route: the RIB's changes that follow a failover are then
/// re-tags, not writes.
pub(crate) fn plan<'a>(
    wanted: Option<&FibSets>,
    cur: Current,
    standby: Current,
    standbys: bool,
    desired: impl Fn(&[BgpNextHop]) -> Desired,
    forwards: impl Fn(Id) -> &'a [KernelHop],
) -> Plan {
    let (want, on_backup) = match wanted {
        Some(sets) => {
            let (d, b) = with_backup(sets, &desired);
            (Some(d), b)
        }
        None => (None, false),
    };
    let standby_want = match (wanted, &want) {
        (Some(sets), Some(Desired::Install(_)))
            if standbys && !on_backup && !sets.backup.is_empty() =>
        {
            match desired(&sets.backup) {
                d @ Desired::Install(_) => Some(d),
                _ => None,
            }
        }
        _ => None,
    };
    if let (Some(Desired::Install(h)), Current::Absent, Current::Installed(s), None) =
        (&want, cur, standby, &standby_want)
    {
        if forwards(s)[..] == h[..] {
            return Plan {
                primary: Write::None,
                standby: Write::None,
                in_place: true,
            };
        }
    }
    let installing = matches!(want, Some(Desired::Install(_)));
    let primary = write_for(want, cur, &forwards);
    Plan {
        in_place: installing && primary == Write::None,
        primary,
        standby: write_for(standby_want, standby, &forwards),
    }
}

/// What a prefix wanting `sets` comes to: its best set's resolution, or,
/// when none of the best set is reachable, its backup's if that is (the
/// FIB's own failover: at once, not after the RIB has selected again).
/// True when it is the backup's.
pub(crate) fn with_backup(
    sets: &FibSets,
    desired: impl Fn(&[BgpNextHop]) -> Desired,
) -> (Desired, bool) {
    let best = desired(&sets.best);
    if matches!(best, Desired::Unresolved(_)) && !sets.backup.is_empty() {
        if let backup @ Desired::Install(_) = desired(&sets.backup) {
            return (backup, true);
        }
    }
    (best, false)
}

/// What the kernel holds of ours after a deletion with `outcome`: nothing
/// (also when it had nothing to delete), or, without an acknowledgement,
/// we do not know.
fn after_delete(outcome: &Outcome) -> Current {
    match outcome {
        Outcome::Unknown => Current::Unknown,
        Outcome::Done | Outcome::Refused(_) => Current::Absent,
    }
}

/// The first retry of a refused route waits this long; each refusal in a
/// row doubles it, up to [`RETRY_MAX`].
pub(crate) const RETRY_FIRST: Duration = Duration::from_secs(1);
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(60);
/// A refused standby is tried again after this long (it is no forwarding
/// route while the primary is there, so it is not reported to the RIB).
const STANDBY_RETRY: Duration = Duration::from_secs(10);

/// The wait before the retry that follows the `refusals`-th refusal in a
/// row (1-based).
pub(crate) fn backoff(refusals: u32) -> Duration {
    let doublings = refusals.saturating_sub(1).min(16);
    (RETRY_FIRST * (1u32 << doublings)).min(RETRY_MAX)
}

/// What comparing our view with a dump of the kernel found (see
/// `RouteTable::reconcile_start`): the table is walked twice and the dump
/// read as it comes, so that comparing a full table holds nothing per route.
#[derive(Debug, Default)]
pub(crate) struct Reconcile {
    /// Prefixes marked to be written again: missing, different, or there
    /// when we believed them absent.
    pub differing: usize,
    /// Kernel routes of ours for prefixes we do not have at all.
    pub strays: Vec<IpNet>,
    /// The same at the standby's metric.
    pub standby_strays: Vec<IpNet>,
}

/// What [`RouteTable::mark_touched`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Touched {
    /// Prefixes to be written again now.
    pub now: usize,
    /// Prefixes repaired too often lately: written when their window ends.
    pub deferred: usize,
    pub first_deferred: Option<IpNet>,
}

/// A refused route: the kernel's words and when it is tried again.
#[derive(Debug)]
struct Failure {
    error: Arc<str>,
    /// Refusals in a row since the last success or change of next hops.
    refusals: u32,
    /// When the route is written again (a key in `RouteTable::retries`).
    retry_at: Option<Instant>,
}

pub(crate) struct RouteTable {
    /// Ordered, not hashed: a hash table of a million routes doubles in
    /// one step (briefly holding old and new tables, a peak of ~250 MB at
    /// 1M), where a B-tree grows a node at a time; and writes go out in
    /// prefix order anyway.
    routes: PrefixMap<Route>,
    /// The BGP next-hop sets routes want (`Route::want`): the very `Arc`s
    /// the RIB handed over.
    wanted: Numbered<FibSets>,
    /// For each BGP next hop, how many sets in `wanted` name it (sets,
    /// not routes: counted when a set is first wanted and when its last
    /// route lets go).
    hop_users: FastMap<IpAddr, u32>,
    /// Next hops no wanted set names any more, for the resolver to forget
    /// unless watched ([`RouteTable::take_unused_hops`]).
    unused_hops: Vec<IpAddr>,
    /// Prefixes reported with RouteFailed and not recovered since, with
    /// the kernel's words and their retry (rare, so kept aside rather than
    /// in every route).
    reported_failed: FastMap<IpNet, Failure>,
    /// The retries scheduled, soonest first: of refused routes, and of
    /// repairs deferred by `repairs`.
    retries: BTreeSet<(Instant, IpNet)>,
    /// How often each touched prefix was repaired lately.
    repairs: Repairs,
    /// Prefixes whose primary is to be written.
    dirty: Dirty,
    /// Prefixes whose standby is to be written: after every dirty
    /// primary, so that standbys never delay the table's routes.
    standby_dirty: Dirty,
    /// Whether prefixes get standby routes (`kernel.backupRoutes`).
    standbys: bool,
    sweep: Sweep,
    /// Prefixes found or written right in this write step, with the set
    /// they want: sent as one [`FibEvent::RoutesInstalled`] by
    /// [`RouteTable::send_confirmed`].
    confirmed: Vec<(IpNet, Arc<NhSet>)>,
    /// Prefixes confirmed when planned whose write was then refused or
    /// left unknown: taken out of `confirmed` before it is sent.
    unconfirmed: Vec<IpNet>,
    /// RouteFailed and RoutesInstalled go to the RIB from here.
    events: UnboundedSender<FibEvent>,
}

impl RouteTable {
    pub(crate) fn new(events: UnboundedSender<FibEvent>) -> RouteTable {
        RouteTable {
            routes: PrefixMap::default(),
            wanted: Numbered::default(),
            hop_users: FastMap::default(),
            unused_hops: Vec::new(),
            reported_failed: FastMap::default(),
            retries: BTreeSet::new(),
            repairs: Repairs::default(),
            dirty: Dirty::new(DIRTY),
            standby_dirty: Dirty::new(STANDBY_DIRTY),
            standbys: false,
            sweep: Sweep::Idle,
            confirmed: Vec::new(),
            unconfirmed: Vec::new(),
            events,
        }
    }

    /// Prefixes with a backup set get a standby route via it, at the next
    /// metric (only with nexthop objects: the kernel removes a route with
    /// its object, and only then does it fall back to the standby).
    pub(crate) fn set_standbys(&mut self, on: bool) {
        self.standbys = on;
    }

    /// Whether prefixes get standby routes.
    pub(crate) fn standbys(&self) -> bool {
        self.standbys
    }

    /// `prefix` is to have these next hops (sorted, no duplicates, not
    /// empty), without a backup.
    #[cfg(test)]
    pub(crate) fn want(&mut self, prefix: IpNet, next_hops: Arc<NhSet>) {
        let sets = FibSets {
            best: next_hops,
            backup: tables::fib::no_next_hops(),
        };
        self.want_sets(prefix, sets)
    }

    /// `prefix` is to have the best set of `sets` (sorted, no duplicates,
    /// not empty), or its backup when none of the best is reachable; the
    /// sets are kept as they are, shared.
    pub(crate) fn want_sets(&mut self, prefix: IpNet, sets: FibSets) {
        let id = self.wanted.acquire(&sets, || Arc::new(sets.clone()));
        if self.wanted.users(id) == 1 {
            for nh in sets.best.iter().chain(sets.backup.iter()) {
                *self.hop_users.entry(nh.address).or_default() += 1;
            }
        }
        let r = self.routes.entry(prefix);
        let old = r.want.replace(id);
        self.dirty.mark(prefix, r);
        if let Some(old) = old {
            self.release_want(old);
        }
        if old != Some(id) {
            // Other next hops: a refusal starts its backoff afresh (the
            // route is written now anyway).
            if let Some(f) = self.reported_failed.get_mut(&prefix) {
                f.refusals = 0;
                if let Some(t) = f.retry_at.take() {
                    self.retries.remove(&(t, prefix));
                }
            }
        }
    }

    /// `prefix` is withdrawn: it leaves the table now if the kernel has
    /// nothing of ours for it, else once its deletion is written.
    pub(crate) fn withdraw(&mut self, prefix: IpNet) {
        self.forget_failure(&prefix);
        self.repairs.forget(&prefix);
        let mut old = None;
        let (dirty, standby_dirty) = (&mut self.dirty, &mut self.standby_dirty);
        self.routes.update_or_remove(prefix, |r| {
            old = r.want.take();
            if r.gone() {
                dirty.forget(&prefix, r);
                standby_dirty.forget(&prefix, r);
                return false;
            }
            dirty.mark(prefix, r);
            true
        });
        if let Some(w) = old {
            self.release_want(w);
        }
    }

    /// A route lets go of wanted set `id`; with its last route, the set's
    /// next hops lose a user.
    fn release_want(&mut self, id: Id) {
        if self.wanted.users(id) == 1 {
            let sets = self.wanted.get(id);
            for nh in sets.best.iter().chain(sets.backup.iter()) {
                if let Some(n) = self.hop_users.get_mut(&nh.address) {
                    *n -= 1;
                    if *n == 0 {
                        self.hop_users.remove(&nh.address);
                        self.unused_hops.push(nh.address);
                    }
                }
            }
        }
        self.wanted.release(id);
    }

    /// Whether a wanted route names BGP next hop `addr`.
    pub(crate) fn uses_hop(&self, addr: &IpAddr) -> bool {
        self.hop_users.contains_key(addr)
    }

    /// Next hops no wanted route names any more since the last call (one
    /// may be named again since: see [`RouteTable::uses_hop`]).
    pub(crate) fn take_unused_hops(&mut self) -> Vec<IpAddr> {
        std::mem::take(&mut self.unused_hops)
    }

    /// Changes not yet written.
    pub(crate) fn has_dirty(&self) -> bool {
        !self.dirty.is_empty() || !self.standby_dirty.is_empty()
    }

    /// Nothing is to be written (install disabled): unflags everything.
    pub(crate) fn clear_dirty(&mut self) {
        self.dirty.clear(&mut self.routes);
        self.standby_dirty.clear(&mut self.routes);
    }

    pub(crate) fn sweeping(&self) -> bool {
        !matches!(self.sweep, Sweep::Idle)
    }

    /// Starts a sweep from the top, of the dirty primaries or, with none,
    /// of the dirty standbys; returns how many prefixes it has to look at.
    pub(crate) fn start_sweep(&mut self) -> usize {
        if self.dirty.is_empty() && !self.standby_dirty.is_empty() {
            self.sweep = Sweep::StandbyBelow(None);
            return self.standby_dirty.len();
        }
        self.sweep = Sweep::Below(None);
        self.dirty.len()
    }

    /// The ops for the sweep's next up to `n` dirty prefixes (unflagged,
    /// highest first): `desired` says what a wanted set comes to, `sets`
    /// reads installed sets and gives replacements their object, deletions
    /// are of `metric`. None at the bottom, where the sweep ends.
    pub(crate) fn sweep_step(
        &mut self,
        n: usize,
        desired: impl Fn(&[BgpNextHop]) -> Desired,
        sets: &mut HopSets,
        metric: u32,
    ) -> Option<Vec<Op>> {
        if matches!(self.sweep, Sweep::StandbyBelow(_)) && !self.dirty.is_empty() {
            // Primaries first: the standby sweep starts again later.
            self.sweep = Sweep::Below(None);
        }
        let (standby_pass, bound) = match self.sweep {
            Sweep::Idle => return None,
            Sweep::Below(b) => (false, b),
            Sweep::StandbyBelow(b) => (true, b),
        };
        let bit = if standby_pass { STANDBY_DIRTY } else { DIRTY };
        // The dirty set being taken is out of `self` meanwhile, so that a
        // primary's step can flag its prefix's standby as it goes.
        let taking = if standby_pass {
            &mut self.standby_dirty
        } else {
            &mut self.dirty
        };
        let mut dirty = std::mem::replace(taking, Dirty::new(bit));
        let mut standby_later = (!standby_pass).then_some(&mut self.standby_dirty);
        let (wanted_sets, standbys) = (&self.wanted, self.standbys);
        let confirmed = &mut self.confirmed;
        let mut ops = Vec::with_capacity(n.min(dirty.len()));
        let last = dirty.take_below(&mut self.routes, bound, n, |p, r| {
            let wanted = r.want.map(|w| wanted_sets.get(w));
            let plan = plan(
                wanted.map(|w| &**w),
                r.cur(),
                r.standby_cur(),
                standbys,
                &desired,
                |id| sets.forwards(id),
            );
            if !standby_pass {
                if let (true, Some(sets)) = (plan.in_place, wanted) {
                    // Already right in the kernel: confirmed as is.
                    confirmed.push((p, sets.best.clone()));
                }
                match plan.primary {
                    Write::None => {}
                    Write::Replace(h) => {
                        // Taken as installed now (see `follow`), so that a
                        // write that is done costs no second lookup.
                        let nhid = sets.for_write(&h);
                        let id = sets.installed(&h, nhid);
                        r.replace_cur(Current::Installed(id), sets);
                        if let Some(w) = wanted {
                            confirmed.push((p, w.best.clone()));
                        }
                        ops.push(Op::Replace(p, h, nhid))
                    }
                    Write::Delete => {
                        // Taken as deleted now, as a replacement is taken as
                        // installed: acknowledged or with nothing to delete,
                        // the kernel then holds nothing of ours; only a lost
                        // acknowledgement brings the route back (`follow`).
                        r.replace_cur(Current::Absent, sets);
                        ops.push(Op::Delete {
                            prefix: p,
                            metric,
                            track: Track::Planned,
                        })
                    }
                }
            }
            match (plan.standby, standby_later.as_deref_mut()) {
                (Write::None, _) => {}
                // A standby to write waits for the standby sweep; one to
                // remove goes now (a withdrawn prefix must stop forwarding).
                (Write::Replace(_), Some(later)) => later.mark(p, r),
                (Write::Replace(h), None) => {
                    let nhid = sets.for_write(&h);
                    let id = sets.installed(&h, nhid);
                    r.replace_standby(Current::Installed(id), sets);
                    ops.push(Op::Standby(p, h, nhid))
                }
                (Write::Delete, _) => ops.push(Op::StandbyDelete(p)),
            }
            // Kept, unless a withdrawn prefix whose deletion was just
            // planned: it leaves the table in this same search (a standby
            // still to delete keeps it until that is written: `follow`).
            r.want.is_some() || !r.gone() || r.has(DIRTY) || r.has(STANDBY_DIRTY)
        });
        *(if standby_pass {
            &mut self.standby_dirty
        } else {
            &mut self.dirty
        }) = dirty;
        match last {
            Some(p) if standby_pass => self.sweep = Sweep::StandbyBelow(Some(p)),
            Some(p) => self.sweep = Sweep::Below(Some(p)),
            None => {
                // At the bottom: what is dirty now starts the next sweep.
                self.sweep = Sweep::Idle;
                return None;
            }
        }
        Some(ops)
    }

    /// After a step's writes: with nothing left dirty, the sweep is over.
    pub(crate) fn end_sweep_if_clean(&mut self) {
        let clean = match self.sweep {
            Sweep::StandbyBelow(_) => self.standby_dirty.is_empty() && self.dirty.is_empty(),
            _ => self.dirty.is_empty(),
        };
        if clean {
            self.sweep = Sweep::Idle;
        }
    }

    /// Follows a written route op's outcome; true when it leaves a tracked
    /// route's kernel state unknown.
    ///
    /// A replacement (primary or standby) was taken as installed, and
    /// confirmed, when the sweep step planned it: the worker takes no
    /// change between a step's sweep and its outcomes, and nearly every
    /// write is done, so only the rare refusal or lost acknowledgement
    /// looks its route up again. The installed set it holds keeps the
    /// object reference taken for the write; a refused or unknown route
    /// lets go of both.
    pub(crate) fn follow(&mut self, op: Op, outcome: Outcome, sets: &mut HopSets) -> bool {
        match (op, outcome) {
            (Op::Replace(p, _, _), Outcome::Done) => {
                if !self.reported_failed.is_empty() {
                    self.forget_failure(&p);
                }
                false
            }
            (Op::Replace(p, _, _), Outcome::Refused(e)) => {
                let error = e.to_string();
                self.unconfirmed.push(p);
                let r = self.routes.entry(p);
                r.replace_cur(Current::Failed, sets);
                let next_hops = r.want.map_or_else(tables::fib::no_next_hops, |w| {
                    self.wanted.get(w).best.clone()
                });
                let wait = self.schedule_retry(p, error.as_str().into(), Instant::now());
                let _ = self.events.send(FibEvent::RouteFailed {
                    prefix: p,
                    next_hops,
                    error,
                    next_retry: SystemTime::now() + wait,
                });
                false
            }
            (Op::Replace(p, _, _), Outcome::Unknown) => {
                self.unconfirmed.push(p);
                self.routes.entry(p).replace_cur(Current::Unknown, sets);
                true
            }
            (
                Op::Delete {
                    track: Track::No, ..
                },
                _,
            ) => false,
            (
                Op::Delete {
                    prefix,
                    track: Track::Outcome,
                    ..
                },
                outcome,
            ) => {
                let now = after_delete(&outcome);
                self.update_route(prefix, |r| r.replace_cur(now, sets));
                now == Current::Unknown
            }
            (
                Op::Delete {
                    prefix,
                    track: Track::Planned,
                    ..
                },
                outcome,
            ) => {
                // Taken as deleted when planned, the route left the table
                // if withdrawn (`sweep_step`): a deletion that is done, or
                // found nothing, needs no second lookup.
                if after_delete(&outcome) != Current::Unknown {
                    return false;
                }
                self.routes
                    .entry(prefix)
                    .replace_cur(Current::Unknown, sets);
                true
            }
            (Op::Standby(_, _, _), Outcome::Done) => false,
            (Op::Standby(p, _, _), Outcome::Refused(_)) => {
                // Not reported to the RIB: the prefix forwards on its
                // primary; the installer logged the kernel's words.
                self.routes.entry(p).replace_standby(Current::Failed, sets);
                self.retries.insert((Instant::now() + STANDBY_RETRY, p));
                false
            }
            (Op::Standby(p, _, _), Outcome::Unknown) => {
                self.routes.entry(p).replace_standby(Current::Unknown, sets);
                true
            }
            (Op::StandbyDelete(p), outcome) => {
                let now = after_delete(&outcome);
                self.update_route(p, |r| r.replace_standby(now, sets));
                now == Current::Unknown
            }
            (Op::Object(_), _) => false,
        }
    }

    /// Changes `prefix`'s route, if it has one, with `change`; a withdrawn
    /// prefix then leaves the table once neither of its routes may be in
    /// the kernel (one lookup for both).
    fn update_route(&mut self, prefix: IpNet, change: impl FnOnce(&mut Route)) {
        let (dirty, standby_dirty) = (&mut self.dirty, &mut self.standby_dirty);
        self.routes.update_or_remove(prefix, |r| {
            change(r);
            if r.want.is_none() && r.gone() {
                dirty.forget(&prefix, r);
                standby_dirty.forget(&prefix, r);
                return false;
            }
            true
        });
    }

    /// Sends what this write step confirmed, as one event.
    pub(crate) fn send_confirmed(&mut self) {
        if !self.unconfirmed.is_empty() {
            let failed: FastSet<IpNet> = self.unconfirmed.drain(..).collect();
            self.confirmed.retain(|(p, _)| !failed.contains(p));
        }
        if !self.confirmed.is_empty() {
            // The next step is likely as large: sized once, not doubled.
            let next = Vec::with_capacity(self.confirmed.len());
            let routes = std::mem::replace(&mut self.confirmed, next);
            let _ = self.events.send(FibEvent::RoutesInstalled(routes));
        }
    }

    /// After next hops were resolved again: routes installed with a set
    /// the kernel `flushed` without telling become unknown, and those, the
    /// routes on a shrunk group and the routes wanting a next hop whose
    /// resolution `changed` are to be looked at again by the sweep.
    pub(crate) fn mark_changed(
        &mut self,
        changed: &FastSet<IpAddr>,
        flushed: impl Fn(&[KernelHop]) -> bool,
        sets: &mut HopSets,
    ) {
        // A route on an object the kernel removed (its only hop, or every
        // member of its group, flushed) went with it: absent, not unknown,
        // so that a standby that took over is seen as the prefix's route.
        let went = |id: Id, sets: &HopSets| {
            let h = sets.forwards(id);
            sets.object_of(id) != 0 && h.iter().all(|k| flushed(std::slice::from_ref(k)))
        };
        for (p, r) in self.routes.iter_mut() {
            if let Current::Installed(id) = r.standby_cur() {
                if flushed(sets.forwards(id)) {
                    let now = if went(id, sets) {
                        Current::Absent
                    } else {
                        Current::Unknown
                    };
                    r.replace_standby(now, sets);
                    self.standby_dirty.mark(p, r);
                } else if sets.shrunk(id) {
                    self.standby_dirty.mark(p, r);
                }
            }
            if let Current::Installed(id) = r.cur() {
                if flushed(sets.forwards(id)) {
                    let now = if went(id, sets) {
                        Current::Absent
                    } else {
                        Current::Unknown
                    };
                    r.replace_cur(now, sets);
                    self.dirty.mark(p, r);
                    continue;
                }
                if sets.shrunk(id) {
                    // Still forwarding through its group's survivors; the
                    // sweep finds whether that is what it wants now (no
                    // write) or it is to move (its next hops are back, or
                    // it never wanted to lose the one that went).
                    self.dirty.mark(p, r);
                    continue;
                }
            }
            if let Some(w) = r.want {
                let sets = self.wanted.get(w);
                if sets
                    .best
                    .iter()
                    .chain(sets.backup.iter())
                    .any(|n| changed.contains(&n.address))
                {
                    self.dirty.mark(p, r);
                }
            }
        }
    }

    /// Records a refusal of `prefix` at `now` and schedules its retry;
    /// returns the wait.
    fn schedule_retry(&mut self, prefix: IpNet, error: Arc<str>, now: Instant) -> Duration {
        let f = self.reported_failed.entry(prefix).or_insert(Failure {
            error: error.clone(),
            refusals: 0,
            retry_at: None,
        });
        f.error = error;
        f.refusals = f.refusals.saturating_add(1);
        if let Some(t) = f.retry_at.take() {
            self.retries.remove(&(t, prefix));
        }
        let wait = backoff(f.refusals);
        f.retry_at = Some(now + wait);
        self.retries.insert((now + wait, prefix));
        wait
    }

    /// Forgets `prefix`'s refusal and its retry; true if it had one.
    fn forget_failure(&mut self, prefix: &IpNet) -> bool {
        let Some(f) = self.reported_failed.remove(prefix) else {
            return false;
        };
        if let Some(t) = f.retry_at {
            self.retries.remove(&(t, *prefix));
        }
        true
    }

    /// When the next retry of a refused route is due.
    pub(crate) fn next_retry(&self) -> Option<Instant> {
        self.retries.first().map(|(t, _)| *t)
    }

    /// Refused routes whose retry is due at `now`, and touched routes whose
    /// deferred repair is, are to be written again; returns how many.
    pub(crate) fn retry_due(&mut self, now: Instant) -> usize {
        let mut n = 0;
        while let Some(&(t, p)) = self.retries.first() {
            if t > now {
                break;
            }
            self.retries.remove(&(t, p));
            if let Some(f) = self.reported_failed.get_mut(&p) {
                f.retry_at = None;
            }
            if let Some(r) = self.routes.get_mut(&p) {
                let due = match r.cur() {
                    Current::Failed => r.want.is_some(),
                    Current::Unknown => true,
                    _ => false,
                };
                if due {
                    self.dirty.mark(p, r);
                    n += 1;
                }
                if matches!(r.standby_cur(), Current::Failed | Current::Unknown) {
                    self.standby_dirty.mark(p, r);
                    n += 1;
                }
            }
        }
        n
    }

    /// Someone else changed these prefixes' kernel routes at `now`: those
    /// we hold installed become unknown and are written again (a rewrite
    /// of what is still right costs one message), at once or, for a prefix
    /// fought over, when `repairs` allows.
    pub(crate) fn mark_touched(
        &mut self,
        touched: &[IpNet],
        sets: &mut HopSets,
        now: Instant,
    ) -> Touched {
        let mut t = Touched::default();
        for p in touched {
            let Some(r) = self.routes.get_mut(p) else {
                continue;
            };
            let primary = matches!(r.cur(), Current::Installed(_));
            let standby = matches!(r.standby_cur(), Current::Installed(_));
            if !primary && !standby {
                continue;
            }
            // Which of the two was touched is not said: both are written
            // again (one message each).
            if primary {
                r.replace_cur(Current::Unknown, sets);
            }
            if standby {
                r.replace_standby(Current::Unknown, sets);
            }
            match self.repairs.repair(*p, now) {
                When::Now => {
                    if primary {
                        self.dirty.mark(*p, r);
                    }
                    if standby {
                        self.standby_dirty.mark(*p, r);
                    }
                    t.now += 1;
                }
                When::At(at) => {
                    self.retries.insert((at, *p));
                    t.deferred += 1;
                    t.first_deferred.get_or_insert(*p);
                }
            }
        }
        t
    }

    /// Starts comparing our view with a dump of the kernel's routes of
    /// ours (see [`Reconcile`]).
    pub(crate) fn reconcile_start(&mut self) -> Reconcile {
        for (_, r) in self.routes.iter_mut() {
            r.set(SEEN | STANDBY_SEEN, false);
        }
        Reconcile::default()
    }

    /// One kernel route of ours at our metric: if it differs from the set
    /// installed (`HopSets::matches`), or is there when we believe the
    /// prefix absent but want it, the prefix becomes unknown and is to be
    /// written again; a prefix we do not have at all is a stray.
    pub(crate) fn reconcile_one(&mut self, rec: &mut Reconcile, k: &RawRoute, sets: &mut HopSets) {
        let Some(r) = self.routes.get_mut(&k.prefix) else {
            rec.strays.push(k.prefix);
            return;
        };
        r.set(SEEN, true);
        let differs = match r.cur() {
            Current::Installed(id) => !sets.matches(id, k),
            Current::Absent => r.want.is_some(),
            Current::Failed | Current::Unknown => false,
        };
        if differs {
            r.replace_cur(Current::Unknown, sets);
            self.dirty.mark(k.prefix, r);
            rec.differing += 1;
        }
    }

    /// One kernel route of ours at the standby's metric, compared as
    /// [`RouteTable::reconcile_one`] does the primary; one for a prefix we
    /// do not have, or when standbys are off, is a stray.
    pub(crate) fn reconcile_standby(
        &mut self,
        rec: &mut Reconcile,
        k: &RawRoute,
        sets: &mut HopSets,
    ) {
        let Some(r) = self.routes.get_mut(&k.prefix) else {
            rec.standby_strays.push(k.prefix);
            return;
        };
        r.set(STANDBY_SEEN, true);
        let differs = match r.standby_cur() {
            Current::Installed(id) => !sets.matches(id, k),
            // Not ours to keep unless the sweep finds it wanted.
            Current::Absent => true,
            Current::Failed | Current::Unknown => false,
        };
        if differs {
            r.replace_standby(Current::Unknown, sets);
            self.standby_dirty.mark(k.prefix, r);
            rec.differing += 1;
        }
    }

    /// After the dump: routes we hold installed that it lacked are to be
    /// written again. Returns what the comparison found.
    pub(crate) fn reconcile_end(&mut self, mut rec: Reconcile, sets: &mut HopSets) -> Reconcile {
        for (p, r) in self.routes.iter_mut() {
            if matches!(r.cur(), Current::Installed(_)) && !r.has(SEEN) {
                r.replace_cur(Current::Unknown, sets);
                self.dirty.mark(p, r);
                rec.differing += 1;
            }
            if matches!(r.standby_cur(), Current::Installed(_)) && !r.has(STANDBY_SEEN) {
                r.replace_standby(Current::Unknown, sets);
                self.standby_dirty.mark(p, r);
                rec.differing += 1;
            }
        }
        rec
    }

    /// What we believe the kernel holds for `prefix`.
    pub(crate) fn current(&self, prefix: &IpNet) -> Current {
        self.routes.get(prefix).map_or(Current::Absent, Route::cur)
    }

    /// What we believe the kernel holds for `prefix` at the standby's
    /// metric.
    pub(crate) fn standby(&self, prefix: &IpNet) -> Current {
        self.routes
            .get(prefix)
            .map_or(Current::Absent, Route::standby_cur)
    }

    /// Every prefix of ours the kernel may hold (not known absent).
    pub(crate) fn in_kernel(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.routes
            .iter()
            .filter(|(_, r)| r.cur() != Current::Absent)
            .map(|(p, _)| p)
    }

    /// Every prefix whose standby the kernel may hold.
    pub(crate) fn standbys_in_kernel(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.routes
            .iter()
            .filter(|(_, r)| r.standby_cur() != Current::Absent)
            .map(|(p, _)| p)
    }

    /// The wanted next hops of `prefix`, if it is wanted.
    pub(crate) fn wanted(&self, prefix: &IpNet) -> Option<&FibSets> {
        let w = self.routes.get(prefix)?.want?;
        Some(self.wanted.get(w))
    }

    /// Every wanted prefix with its next hops, in table order.
    pub(crate) fn all_wanted(&self) -> impl Iterator<Item = (IpNet, &FibSets)> + '_ {
        self.routes
            .iter()
            .filter_map(|(p, r)| r.want.map(|w| (p, &**self.wanted.get(w))))
    }

    /// The kernel's words for `prefix`'s last refused write, and when it
    /// is tried again (None: being written now).
    pub(crate) fn failure(&self, prefix: &IpNet) -> Option<(&str, Option<Instant>)> {
        self.reported_failed
            .get(prefix)
            .map(|f| (&f.error[..], f.retry_at))
    }
}

/// A next-hop set as the contract promises it (sorted, no duplicates): the
/// RIB's own `Arc` when it keeps the promise, else a sorted copy.
pub(crate) fn sorted(next_hops: Arc<NhSet>) -> Arc<NhSet> {
    if next_hops.windows(2).all(|w| w[0] < w[1]) {
        return next_hops;
    }
    let mut v = next_hops.to_vec();
    v.sort();
    v.dedup();
    Arc::new(v)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use ipnet::Ipv4Net;

    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    use crate::msg::hop;

    fn nhs(addr: &str) -> Arc<NhSet> {
        Arc::new(vec![BgpNextHop::new(addr.parse().unwrap())])
    }

    fn table() -> (RouteTable, tokio::sync::mpsc::UnboundedReceiver<FibEvent>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (RouteTable::new(tx), rx)
    }

    /// Every wanted set installs on one kernel hop.
    fn via_one(_: &[BgpNextHop]) -> Desired {
        Desired::Install(Arc::from([hop("10.0.0.1", 2)]))
    }

    fn prefixes(ops: &[Op]) -> Vec<String> {
        ops.iter()
            .map(|op| match op {
                Op::Replace(p, ..) => format!("+{p}"),
                Op::Delete { prefix, .. } => format!("-{prefix}"),
                Op::Standby(p, ..) => format!("+standby {p}"),
                Op::StandbyDelete(p) => format!("-standby {p}"),
                Op::Object(_) => "object".into(),
            })
            .collect()
    }

    /// Writes a whole step as done.
    fn done(t: &mut RouteTable, ops: Vec<Op>, sets: &mut HopSets) {
        for op in ops {
            assert!(!t.follow(op, Outcome::Done, sets));
        }
    }

    /// One sweep step over every dirty prefix, each write given
    /// `outcome`; true if one left its route unknown.
    fn write_all(t: &mut RouteTable, sets: &mut HopSets, outcome: impl Fn() -> Outcome) -> bool {
        t.start_sweep();
        let ops = t
            .sweep_step(usize::MAX, via_one, sets, 20)
            .unwrap_or_default();
        let mut unknown = false;
        for op in ops {
            unknown |= t.follow(op, outcome(), sets);
        }
        t.end_sweep_if_clean();
        unknown
    }

    /// Past `LIST_MAX` flagged routes the list goes and sweeps walk the
    /// flags; either way every flagged prefix comes out once, highest first.
    #[test]
    fn dirty_prefixes_come_out_once_listed_or_not() {
        for n in [10u32, Dirty::LIST_MAX as u32 + 10] {
            let mut routes: PrefixMap<Route> = PrefixMap::default();
            let mut dirty = Dirty::new(DIRTY);
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
            let mut all = Vec::new();
            let mut visit = |p: IpNet, r: &mut Route| {
                assert!(!r.has(DIRTY), "unflagged when visited");
                all.push(p);
                true
            };
            let mut bound = dirty.take_below(&mut routes, None, 2, &mut visit);
            while let Some(last) = dirty.take_below(&mut routes, bound, 1000, &mut visit) {
                bound = Some(last);
            }
            assert_eq!(all[0], v6, "IPv6 is above IPv4");
            assert_eq!(all.len(), n as usize);
            assert!(all.windows(2).all(|w| w[0] > w[1]), "highest first, once");
            assert!(!all.contains(&gone));
            assert!(dirty.is_empty());
            assert!(routes.values().all(|r| !r.has(DIRTY)));
            assert!(dirty.list.is_some(), "listing again once none is left");
        }
    }

    #[test]
    fn a_route_stays_small() {
        // With a 5-byte IPv4 key, a B-tree leaf of 11 routes is 240 bytes
        // (two kernel routes per prefix with backup routes: 4 bytes more).
        assert_eq!(std::mem::size_of::<Route>(), 16);
    }

    /// A sweep goes down once: what becomes dirty below its position is
    /// taken in this sweep, what becomes dirty above waits for the next.
    #[test]
    fn a_sweep_goes_down_once_and_takes_what_turns_dirty_below_it() {
        let (mut t, _rx) = table();
        let mut sets = HopSets::new(None);
        for p in ["10.0.3.0/24", "10.0.1.0/24", "fd00::/64", "10.0.2.0/24"] {
            t.want(net(p), nhs("192.0.2.1"));
        }
        assert!(!t.sweeping());
        assert_eq!(t.start_sweep(), 4);
        let step = t.sweep_step(2, via_one, &mut sets, 20).unwrap();
        assert_eq!(prefixes(&step), ["+fd00::/64", "+10.0.3.0/24"]);
        done(&mut t, step, &mut sets);
        t.end_sweep_if_clean();
        assert!(t.sweeping(), "two left");
        // Above the sweep's position: next sweep. Below: this one.
        t.want(net("fd01::/64"), nhs("192.0.2.1"));
        t.want(net("10.0.0.0/24"), nhs("192.0.2.1"));
        let step = t.sweep_step(2, via_one, &mut sets, 20).unwrap();
        assert_eq!(prefixes(&step), ["+10.0.2.0/24", "+10.0.1.0/24"]);
        done(&mut t, step, &mut sets);
        t.end_sweep_if_clean();
        let step = t.sweep_step(2, via_one, &mut sets, 20).unwrap();
        assert_eq!(prefixes(&step), ["+10.0.0.0/24"]);
        done(&mut t, step, &mut sets);
        t.end_sweep_if_clean();
        assert!(t.sweeping(), "fd01::/64 is still dirty");
        assert!(
            t.sweep_step(2, via_one, &mut sets, 20).is_none(),
            "at the bottom"
        );
        assert!(!t.sweeping());
        assert_eq!(t.start_sweep(), 1);
        let step = t.sweep_step(2, via_one, &mut sets, 20).unwrap();
        assert_eq!(prefixes(&step), ["+fd01::/64"]);
        done(&mut t, step, &mut sets);
        t.end_sweep_if_clean();
        assert!(!t.sweeping() && !t.has_dirty());
    }

    #[test]
    fn rewriting_what_is_installed_writes_nothing_and_a_withdrawal_deletes() {
        let (mut t, mut rx) = table();
        let mut sets = HopSets::new(None);
        let (a, b) = (net("10.0.1.0/24"), net("10.0.2.0/24"));
        t.want(a, nhs("192.0.2.1"));
        t.want(b, nhs("192.0.2.1"));
        t.start_sweep();
        let step = t.sweep_step(10, via_one, &mut sets, 20).unwrap();
        done(&mut t, step, &mut sets);
        assert!(matches!(t.current(&a), Current::Installed(_)));
        t.end_sweep_if_clean();
        t.send_confirmed();
        let Ok(FibEvent::RoutesInstalled(written)) = rx.try_recv() else {
            panic!("one confirmation for the step expected")
        };
        assert_eq!(written.iter().map(|(p, _)| *p).collect::<Vec<_>>(), [b, a]);
        // Wanted again as it is; the other withdrawn; a third wanted and
        // withdrawn before it was written.
        let c = net("10.0.3.0/24");
        t.want(a, nhs("192.0.2.1"));
        t.withdraw(b);
        t.want(c, nhs("192.0.2.1"));
        t.withdraw(c);
        t.withdraw(net("10.0.9.0/24"));
        assert_eq!(t.wanted(&b), None);
        assert_eq!(t.start_sweep(), 2, "c left the table at once");
        let step = t.sweep_step(10, via_one, &mut sets, 20).unwrap();
        assert!(matches!(
            &step[..],
            [Op::Delete { prefix, metric: 20, track: Track::Planned }] if *prefix == b
        ));
        done(&mut t, step, &mut sets);
        // `a`, found right, is confirmed again (its set may be new to the
        // RIB); the deletion is not a confirmation.
        t.send_confirmed();
        assert_eq!(
            rx.try_recv(),
            Ok(FibEvent::RoutesInstalled(vec![(a, nhs("192.0.2.1"))]))
        );
        assert_eq!(t.current(&b), Current::Absent);
        assert_eq!(t.in_kernel().collect::<Vec<_>>(), [a]);
        assert_eq!(t.all_wanted().map(|(p, _)| p).collect::<Vec<_>>(), [a]);
    }

    #[test]
    fn next_hops_are_used_while_a_wanted_set_names_them() {
        let (mut t, _rx) = table();
        let (a, b) = (net("10.0.1.0/24"), net("10.0.2.0/24"));
        let (x, y): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let both = Arc::new(vec![BgpNextHop::new(x), BgpNextHop::new(y)]);
        t.want(a, nhs("192.0.2.1"));
        t.want(b, both.clone());
        assert!(t.uses_hop(&x) && t.uses_hop(&y));
        // b moves to x alone: y is named by no set any more.
        t.want(b, nhs("192.0.2.1"));
        assert_eq!(t.take_unused_hops(), [y]);
        assert!(t.uses_hop(&x) && !t.uses_hop(&y));
        t.withdraw(a);
        assert!(t.take_unused_hops().is_empty(), "b still wants x");
        t.withdraw(b);
        assert_eq!(t.take_unused_hops(), [x]);
        assert!(!t.uses_hop(&x));
        t.want(a, both);
        assert!(t.uses_hop(&x) && t.uses_hop(&y));
    }

    #[test]
    fn a_refusal_is_reported_once_and_its_recovery_too() {
        let (mut t, mut rx) = table();
        let mut sets = HopSets::new(None);
        let p = net("10.0.1.0/24");
        t.want(p, nhs("192.0.2.1"));
        let refused = || {
            Outcome::Refused(crate::netlink::NlError {
                errno: libc::EINVAL,
                text: None,
            })
        };
        assert!(!write_all(&mut t, &mut sets, refused));
        assert_eq!(t.current(&p), Current::Failed);
        assert!(t.failure(&p).unwrap().0.contains("EINVAL"));
        assert!(matches!(rx.try_recv(), Ok(FibEvent::RouteFailed { prefix, .. }) if prefix == p));
        t.send_confirmed();
        assert!(rx.try_recv().is_err(), "a refused write is not confirmed");
        // Written again (the same set wanted again), the acknowledgement lost.
        t.want(p, nhs("192.0.2.1"));
        assert!(write_all(&mut t, &mut sets, || Outcome::Unknown));
        assert_eq!(t.current(&p), Current::Unknown);
        t.send_confirmed();
        assert!(rx.try_recv().is_err(), "an unknown write is not confirmed");
        assert!(t.failure(&p).is_some(), "still reported failed");
        t.want(p, nhs("192.0.2.1"));
        assert!(!write_all(&mut t, &mut sets, || Outcome::Done));
        assert!(matches!(t.current(&p), Current::Installed(_)));
        assert_eq!(t.failure(&p), None);
        assert!(rx.try_recv().is_err(), "confirmed with the step, not alone");
        t.send_confirmed();
        assert_eq!(
            rx.try_recv(),
            Ok(FibEvent::RoutesInstalled(vec![(p, nhs("192.0.2.1"))]))
        );
        assert!(rx.try_recv().is_err(), "reported once");
        t.send_confirmed();
        assert!(rx.try_recv().is_err(), "nothing more to confirm");
    }

    #[test]
    fn a_withdrawn_route_leaves_the_table_when_its_deletion_is_planned() {
        let (mut t, _rx) = table();
        let mut sets = HopSets::new(None);
        let (a, b) = (net("10.0.1.0/24"), net("10.0.2.0/24"));
        t.want(a, nhs("192.0.2.1"));
        t.want(b, nhs("192.0.2.1"));
        assert!(!write_all(&mut t, &mut sets, || Outcome::Done));
        t.withdraw(a);
        t.withdraw(b);
        t.start_sweep();
        let ops = t.sweep_step(10, via_one, &mut sets, 20).unwrap();
        assert_eq!(ops.len(), 2);
        // Gone from the table before any outcome: neither is in the kernel
        // for us any more, nor waits to be written.
        assert_eq!(t.in_kernel().count(), 0);
        assert!(!t.has_dirty());
        let mut ops = ops.into_iter();
        assert!(!t.follow(ops.next().unwrap(), Outcome::Done, &mut sets));
        // The other's acknowledgement is lost: it is back, as unknown (the
        // kernel may still hold it), until something deletes it for sure.
        let lost = ops.next().unwrap();
        let Op::Delete {
            prefix: lost_prefix,
            ..
        } = lost
        else {
            panic!("a deletion: {lost:?}");
        };
        assert!(t.follow(lost, Outcome::Unknown, &mut sets));
        assert_eq!(t.current(&lost_prefix), Current::Unknown);
        assert_eq!(t.in_kernel().collect::<Vec<_>>(), [lost_prefix]);
    }

    #[test]
    fn routes_through_flushed_hops_or_changed_next_hops_are_written_again() {
        let (mut t, _rx) = table();
        let mut sets = HopSets::new(None);
        let (a, b, c) = (net("10.0.1.0/24"), net("10.0.2.0/24"), net("10.0.3.0/24"));
        t.want(a, nhs("192.0.2.1"));
        t.want(b, nhs("192.0.2.2"));
        t.want(c, nhs("192.0.2.3"));
        t.start_sweep();
        let step = t.sweep_step(10, via_one, &mut sets, 20).unwrap();
        done(&mut t, step, &mut sets);
        t.end_sweep_if_clean();
        assert!(!t.has_dirty());
        // Everything installed via ifindex 2: a flush of link 3 touches
        // nothing; 192.0.2.2 changing marks b only.
        let changed: FastSet<IpAddr> = ["192.0.2.2".parse().unwrap()].into_iter().collect();
        t.mark_changed(&changed, |h| h.iter().any(|k| k.ifindex == 3), &mut sets);
        assert_eq!(t.start_sweep(), 1);
        assert_eq!(t.current(&b), t.current(&a), "still installed");
        t.sweep_step(10, via_one, &mut sets, 20);
        // A flush of link 2 makes every route unknown.
        t.mark_changed(
            &FastSet::default(),
            |h| h.iter().any(|k| k.ifindex == 2),
            &mut sets,
        );
        assert_eq!(t.current(&c), Current::Unknown);
        assert_eq!(t.start_sweep(), 3);
    }

    fn raw(p: IpNet, hops: &[KernelHop]) -> RawRoute {
        RawRoute {
            prefix: p,
            table: 254,
            protocol: 186,
            metric: 20,
            nhid: 0,
            hops: hops.to_vec(),
        }
    }

    /// The resync's decision: what is missing, different or unexpectedly
    /// there is written again; what we do not want at all is a stray.
    #[test]
    fn a_differing_kernel_table_marks_missing_changed_and_stray_routes() {
        let (mut t, _rx) = table();
        let mut sets = HopSets::new(None);
        let (a, b, c, d, e) = (
            net("10.0.1.0/24"),
            net("10.0.2.0/24"),
            net("10.0.3.0/24"),
            net("10.0.4.0/24"),
            net("10.0.5.0/24"),
        );
        let h: Arc<[KernelHop]> = Arc::from([hop("10.0.0.1", 2)]);
        for p in [a, b, d] {
            t.want(p, nhs("192.0.2.1"));
        }
        write_all(&mut t, &mut sets, || Outcome::Done);
        t.want(c, nhs("192.0.2.9"));
        t.clear_dirty();
        // The kernel lost b, holds d via another gateway, holds c, which we
        // believe absent, and e, which we never wanted.
        let mut rec = t.reconcile_start();
        for k in [
            raw(a, &h),
            raw(c, &h),
            raw(d, &[hop("10.0.0.9", 2)]),
            raw(e, &h),
        ] {
            t.reconcile_one(&mut rec, &k, &mut sets);
        }
        let rec = t.reconcile_end(rec, &mut sets);
        assert_eq!(rec.differing, 3);
        assert_eq!(rec.strays, vec![e]);
        assert!(matches!(t.current(&a), Current::Installed(_)));
        for p in [b, c, d] {
            assert_eq!(t.current(&p), Current::Unknown, "{p}");
        }
        assert_eq!(t.start_sweep(), 3);
    }

    #[test]
    fn a_touched_installed_route_is_written_again() {
        let (mut t, _rx) = table();
        let mut sets = HopSets::new(None);
        let (a, b) = (net("10.0.1.0/24"), net("10.0.2.0/24"));
        t.want(a, nhs("192.0.2.1"));
        write_all(&mut t, &mut sets, || Outcome::Done);
        let now = Instant::now();
        let touched = t.mark_touched(&[a, b, net("10.9.0.0/16")], &mut sets, now);
        assert_eq!(touched.now, 1);
        assert_eq!(t.current(&a), Current::Unknown);
        let step = {
            t.start_sweep();
            t.sweep_step(10, via_one, &mut sets, 20).unwrap()
        };
        assert_eq!(prefixes(&step), ["+10.0.1.0/24"]);
        done(&mut t, step, &mut sets);
        t.end_sweep_if_clean();
        // Fought over: after a few repairs, the next waits for its window.
        for _ in 1..crate::repairs::REPAIRS_AT_ONCE {
            assert_eq!(t.mark_touched(&[a], &mut sets, now).now, 1);
            write_all(&mut t, &mut sets, || Outcome::Done);
        }
        let touched = t.mark_touched(&[a], &mut sets, now);
        assert_eq!((touched.now, touched.deferred), (0, 1));
        assert_eq!(touched.first_deferred, Some(a));
        assert!(!t.has_dirty());
        let at = t.next_retry().expect("the deferred repair is scheduled");
        assert_eq!(at, now + crate::repairs::WINDOW);
        assert_eq!(t.retry_due(at), 1);
        assert!(t.has_dirty());
    }

    /// 192.0.2.1 via ifindex 2, anything else via ifindex 3.
    fn by_address(nhs: &[BgpNextHop]) -> Desired {
        let one = nhs[0].address.to_string() == "192.0.2.1";
        Desired::Install(Arc::from([hop(
            if one { "10.0.0.1" } else { "10.0.1.1" },
            if one { 2 } else { 3 },
        )]))
    }

    /// With standbys, a prefix's primary goes out in one sweep and its
    /// standby in the next (after every primary); once the primary is
    /// gone with its object, the standby forwarding what is wanted is the
    /// prefix's route: the RIB's re-selection writes nothing; a
    /// withdrawal removes both at once.
    #[test]
    fn standbys_follow_the_primaries_and_take_over_without_a_write() {
        let (mut t, _rx) = table();
        t.set_standbys(true);
        let mut sets = HopSets::new(Some(crate::nexthop::Objects::new(
            186,
            crate::config::DEFAULT_NEXTHOP_IDS,
            Vec::new(),
        )));
        let p = net("10.0.1.0/24");
        t.want_sets(
            p,
            FibSets {
                best: nhs("192.0.2.1"),
                backup: nhs("192.0.2.2"),
            },
        );
        t.start_sweep();
        let step = t.sweep_step(10, by_address, &mut sets, 20).unwrap();
        assert_eq!(prefixes(&step), ["+10.0.1.0/24"], "the primary first");
        done(&mut t, step, &mut sets);
        t.end_sweep_if_clean();
        assert!(t.has_dirty(), "the standby is still to write");
        assert!(t.sweep_step(10, by_address, &mut sets, 20).is_none());
        t.start_sweep();
        let step = t.sweep_step(10, by_address, &mut sets, 20).unwrap();
        assert_eq!(prefixes(&step), ["+standby 10.0.1.0/24"]);
        done(&mut t, step, &mut sets);
        t.end_sweep_if_clean();
        assert!(!t.has_dirty() && !t.sweeping());
        assert!(matches!(t.standby(&p), Current::Installed(_)));
        // Link 2 loses carrier: the kernel removed the primary's object
        // and the primary with it.
        let flushed = |h: &[KernelHop]| h.iter().any(|k| k.ifindex == 2);
        t.mark_changed(&FastSet::default(), flushed, &mut sets);
        assert_eq!(t.current(&p), Current::Absent);
        // The RIB selects the old backup, without a backup of its own.
        t.want(p, nhs("192.0.2.2"));
        t.start_sweep();
        let step = t.sweep_step(10, by_address, &mut sets, 20).unwrap();
        assert!(step.is_empty(), "{:?}", prefixes(&step));
        t.end_sweep_if_clean();
        assert!(!t.has_dirty());
        t.withdraw(p);
        t.start_sweep();
        let step = t.sweep_step(10, by_address, &mut sets, 20).unwrap();
        assert_eq!(prefixes(&step), ["-standby 10.0.1.0/24"]);
        done(&mut t, step, &mut sets);
        assert_eq!(t.wanted(&p), None);
        assert_eq!(t.standbys_in_kernel().count(), 0);
    }

    #[test]
    fn backoff_doubles_from_one_second_to_a_minute() {
        let secs: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(u32::MAX), RETRY_MAX);
    }

    /// A refused route is written again when its retry is due, each
    /// refusal doubling the wait; new next hops start from 1 s again.
    #[test]
    fn a_refused_route_is_retried_with_backoff() {
        let (mut t, mut rx) = table();
        let mut sets = HopSets::new(None);
        let p = net("10.0.1.0/24");
        let h: Arc<[KernelHop]> = Arc::from([hop("10.0.0.1", 2)]);
        let refuse = |t: &mut RouteTable, sets: &mut HopSets| {
            let e = crate::netlink::NlError {
                errno: libc::ENETDOWN,
                text: None,
            };
            t.follow(Op::Replace(p, h.clone(), 0), Outcome::Refused(e), sets);
        };
        t.want(p, nhs("192.0.2.1"));
        t.clear_dirty();
        let start = Instant::now();
        refuse(&mut t, &mut sets);
        let first = t.next_retry().expect("a retry is scheduled");
        assert!(first >= start + RETRY_FIRST && first <= Instant::now() + RETRY_FIRST);
        let Ok(FibEvent::RouteFailed { next_retry, .. }) = rx.try_recv() else {
            panic!("RouteFailed expected")
        };
        assert!(next_retry > SystemTime::now());
        assert_eq!(t.failure(&p).unwrap().1, Some(first));
        assert_eq!(t.retry_due(first - Duration::from_millis(1)), 0, "not yet");
        assert!(!t.has_dirty());
        assert_eq!(t.retry_due(first), 1);
        assert!(t.has_dirty());
        assert_eq!(t.next_retry(), None);
        assert_eq!(t.failure(&p).unwrap().1, None, "being written");
        t.clear_dirty();
        let before = Instant::now();
        refuse(&mut t, &mut sets);
        let second = t.next_retry().unwrap();
        assert!(second >= before + 2 * RETRY_FIRST, "doubled");
        assert!(second <= Instant::now() + 2 * RETRY_FIRST);
        // Other next hops: written now, and a refusal waits 1 s again.
        t.want(p, nhs("192.0.2.2"));
        assert_eq!(t.next_retry(), None);
        let before = Instant::now();
        refuse(&mut t, &mut sets);
        assert!(t.next_retry().unwrap() <= Instant::now() + RETRY_FIRST);
        assert!(t.next_retry().unwrap() >= before + RETRY_FIRST);
        // Installed at last (written by a sweep, as the worker does):
        // nothing more to retry.
        assert!(t.has_dirty(), "its new next hops are still to be written");
        assert!(!write_all(&mut t, &mut sets, || Outcome::Done));
        assert!(matches!(t.current(&p), Current::Installed(_)));
        assert_eq!(t.next_retry(), None);
        assert_eq!(t.failure(&p), None);
    }

    #[test]
    fn the_write_follows_from_want_and_kernel_state() {
        let mut n: Numbered<[KernelHop]> = Numbered::default();
        let h: Arc<[KernelHop]> = Arc::from([hop("10.0.0.1", 2)]);
        let other: Arc<[KernelHop]> = Arc::from([hop("10.0.0.1", 3)]);
        let id = n.acquire(&h, || h.clone());
        let installed = |i| &n.get(i)[..];
        let install = |h: &Arc<[KernelHop]>| Some(Desired::Install(h.clone()));
        let unresolved = Some(Desired::Unresolved("x".into()));
        assert_eq!(
            write_for(install(&h), Current::Installed(id), installed),
            Write::None
        );
        assert_eq!(
            write_for(install(&other), Current::Installed(id), installed),
            Write::Replace(other.clone())
        );
        for cur in [Current::Absent, Current::Failed, Current::Unknown] {
            assert_eq!(
                write_for(install(&h), cur, installed),
                Write::Replace(h.clone())
            );
        }
        for want in [None, unresolved, Some(Desired::Local)] {
            assert_eq!(
                write_for(want.clone(), Current::Absent, installed),
                Write::None
            );
            assert_eq!(
                write_for(want.clone(), Current::Installed(id), installed),
                Write::Delete
            );
            assert_eq!(
                write_for(want.clone(), Current::Unknown, installed),
                Write::Delete
            );
            assert_eq!(write_for(want, Current::Failed, installed), Write::Delete);
        }
    }

    /// The route table's own cost for a full table, without a kernel:
    /// prefixes arrive in a scattered order in batches, as the RIB hands
    /// them over, and each batch is followed by one sweep step whose
    /// writes all succeed; then the same for withdrawing them. A
    /// measurement, not a check (run it under `valgrind --tool=callgrind`
    /// for a repeatable count): `KROUTE_TABLE_N=1200000 cargo test
    /// --release -p kernel --lib -- --ignored --nocapture bookkeeping`.
    #[test]
    #[ignore]
    fn bookkeeping_cost_of_a_full_table() {
        let n: usize = std::env::var("KROUTE_TABLE_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_200_000);
        let v4 = n * 5 / 6;
        let prefix = |i: usize| -> IpNet {
            if i < v4 {
                Ipv4Net::new(Ipv4Addr::from(((i as u32) << 8) + 0x0100_0000), 24)
                    .unwrap()
                    .into()
            } else {
                let x = (i - v4) as u128;
                ipnet::Ipv6Net::new((0x2001_0db8u128 << 96 | x << 64).into(), 64)
                    .unwrap()
                    .into()
            }
        };
        // A stride coprime with n visits every prefix once, scattered.
        let stride = (0..)
            .map(|k| 7_919 + 2 * k)
            .find(|s| gcd(*s, n) == 1)
            .unwrap();
        let order = |j: usize| prefix(j * stride % n);
        let (mut t, mut rx) = table();
        let mut sets = HopSets::new(None);
        let hops: Arc<[KernelHop]> = Arc::from([hop("10.0.0.1", 2)]);
        let desired = |_: &[BgpNextHop]| Desired::Install(hops.clone());
        let want = FibSets {
            best: nhs("192.0.2.1"),
            backup: tables::fib::no_next_hops(),
        };
        let mut step = |t: &mut RouteTable, sets: &mut HopSets| {
            if !t.sweeping() && t.has_dirty() {
                t.start_sweep();
            }
            if let Some(ops) = t.sweep_step(CHUNK, desired, sets, 20) {
                done(t, ops, sets);
                t.end_sweep_if_clean();
            }
            t.send_confirmed();
            while rx.try_recv().is_ok() {}
        };
        const CHUNK: usize = 4096;
        // This thread's CPU time: steadier than wall time on a busy machine.
        let cpu = || {
            let mut u: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: getrusage fills the struct it is given.
            unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) };
            let t = |v: libc::timeval| Duration::new(v.tv_sec as u64, v.tv_usec as u32 * 1000);
            t(u.ru_utime) + t(u.ru_stime)
        };
        let (started, cpu0) = (Instant::now(), cpu());
        for j in 0..n {
            t.want_sets(order(j), want.clone());
            if j % CHUNK == CHUNK - 1 {
                step(&mut t, &mut sets);
            }
        }
        while t.has_dirty() || t.sweeping() {
            step(&mut t, &mut sets);
        }
        let (loaded, load_cpu) = (started.elapsed(), cpu() - cpu0);
        assert_eq!(t.in_kernel().count(), n);
        let (started, cpu0) = (Instant::now(), cpu());
        for j in 0..n {
            t.withdraw(order(j));
            if j % CHUNK == CHUNK - 1 {
                step(&mut t, &mut sets);
            }
        }
        while t.has_dirty() || t.sweeping() {
            step(&mut t, &mut sets);
        }
        let (withdrawn, withdraw_cpu) = (started.elapsed(), cpu() - cpu0);
        assert_eq!(t.in_kernel().count(), 0);
        println!(
            "{n} prefixes: load {loaded:.2?} ({load_cpu:.2?} CPU), \
             withdraw {withdrawn:.2?} ({withdraw_cpu:.2?} CPU)"
        );
    }

    fn gcd(a: usize, b: usize) -> usize {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }

    #[test]
    fn a_set_out_of_order_is_sorted_and_a_sorted_one_kept() {
        let a = BgpNextHop::new("10.0.0.1".parse().unwrap());
        let b = BgpNextHop::new("10.0.0.2".parse().unwrap());
        let ok = Arc::new(vec![a, b]);
        assert!(Arc::ptr_eq(&sorted(ok.clone()), &ok), "the RIB's own Arc");
        assert_eq!(*sorted(Arc::new(vec![b, a, b])), vec![a, b]);
    }
}
