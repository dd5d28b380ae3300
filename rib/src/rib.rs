//! The event handlers: the one owner of Adj-RIB-In, Loc-RIB and
//! Adj-RIB-Out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use tables::fib::FibSets;

use wire::{Family, NextHop, Origin, PathAttributes, Prefix, Update};

use crate::attrs::{Attrs, PathInfo, LOCAL_PEER};
use crate::ctx::{Ctx, Interners, Peer};
use crate::export::DOES_NOT_FIT;
use crate::import::{
    import_path, is_treat_as_withdraw, own_next_hop_reason, screen, standing_after_reload,
    withdrawn_path, Standing, TREAT_AS_WITHDRAW,
};
use crate::import_report::{ImportCounters, ImportReport};
use crate::policy::{Policies, PolicyChain};
use crate::stale;
use crate::table::{Dest, FibState, PrefixMap};
use crate::update_group::{GroupId, GroupKey, Pulled, UpdateGroup};
use crate::{
    FibChange, FibStatus, NexthopState, Origination, Outputs, PeerConfig, PeerCounters, PeerId,
    RibConfig, SessionInfo,
};

type ExportKey = (*const PathInfo, GroupId, Family);

/// The accepted paths using one next hop, per peer. Mostly one peer (an
/// eBGP neighbour's own address); a few when route reflectors pass on the
/// same third-party next hop.
#[derive(Debug, Default)]
struct NexthopUsers {
    total: u32,
    by_peer: Vec<(PeerId, u32)>,
}

impl NexthopUsers {
    fn add(&mut self, peer: PeerId) {
        self.total += 1;
        match self.by_peer.iter_mut().find(|(p, _)| *p == peer) {
            Some((_, n)) => *n += 1,
            None => self.by_peer.push((peer, 1)),
        }
    }

    /// Returns whether no path uses the next hop any more.
    fn remove(&mut self, peer: PeerId) -> bool {
        if let Some(i) = self.by_peer.iter().position(|(p, _)| *p == peer) {
            self.total -= 1;
            self.by_peer[i].1 -= 1;
            if self.by_peer[i].1 == 0 {
                self.by_peer.swap_remove(i);
            }
        }
        self.total == 0
    }
}

/// A withdrawal of a peer's paths under way ([`Rib::peer_down_start`]).
#[derive(Debug)]
pub struct PeerDown {
    peer: PeerId,
    /// The last prefix handled (None: none yet).
    after: Option<Prefix>,
    done: bool,
}

/// Per-event scratch: the update groups to export to and a cache of
/// export results.
struct Batch {
    groups: Vec<GroupId>,
    /// (best path, destination group, family) -> export result, for results
    /// that do not depend on the prefix.
    cache: HashMap<ExportKey, CachedExport>,
}

struct CachedExport {
    /// The key's path, kept alive so its address cannot be reused within
    /// the event.
    _path: Arc<PathInfo>,
    attrs: Option<Arc<Attrs>>,
    /// Refused because the attributes do not fit one UPDATE.
    too_big: bool,
}

/// The RIB. See the crate documentation.
pub struct Rib {
    pub(crate) cfg: RibConfig,
    pub(crate) policies: Policies,
    pub(crate) peers: BTreeMap<PeerId, Peer>,
    pub(crate) table: PrefixMap<Dest>,
    /// The Adj-RIB-Out: one per update group (`update_group.rs`), each
    /// shared by the sessions whose export result is the same.
    pub(crate) groups: BTreeMap<GroupId, UpdateGroup>,
    /// Per peer with a session: its group.
    pub(crate) group_of: HashMap<PeerId, GroupId>,
    next_group: GroupId,
    /// UPDATEs wait in the groups until [`Rib::pull`] takes them (the
    /// daemon); off, every event hands them all over in its outputs.
    pull_exports: bool,
    pub(crate) ints: Interners,
    pub(crate) nexthops: HashMap<IpAddr, NexthopState>,
    /// Next hops the FIB was asked to watch, or that reported a state.
    watched: HashSet<IpAddr>,
    /// Next hops the FIB was told to stop watching (until a path uses one
    /// again): a late state for one is ignored. At most the distinct next
    /// hops ever used, a few addresses.
    unwatched: HashSet<IpAddr>,
    /// Which peers' accepted paths (not ours) use each next hop, and how
    /// many: the last one gone, it is unwatched; a session lost takes the
    /// next hops only its paths used down with it (see
    /// [`Rib::next_hops_only_via`]).
    nexthop_users: HashMap<IpAddr, NexthopUsers>,
    originated: HashMap<Prefix, Arc<PathInfo>>,
    pub(crate) fib_failed: HashMap<Prefix, String>,
    /// The FIB answers every FibChange (see [`Rib::set_fib_status`]).
    fib_confirms: bool,
    /// Paths kept for peers in graceful restart (`stale.rs`).
    stale: stale::StaleRoutes,
    /// Times the decision process ran for a prefix (`/metrics`).
    decisions: u64,
    /// Prefixes decided since another domain last took its leaks from
    /// here (`leak.rs`); None while no domain leaks from this one.
    pub(crate) leak_log: Option<HashSet<Prefix>>,
}

impl Rib {
    pub fn new(cfg: RibConfig) -> Rib {
        Rib {
            policies: Policies::new(&cfg.policies),
            cfg,
            peers: BTreeMap::new(),
            table: PrefixMap::default(),
            groups: BTreeMap::new(),
            group_of: HashMap::new(),
            next_group: 0,
            pull_exports: false,
            ints: Interners::default(),
            nexthops: HashMap::new(),
            watched: HashSet::new(),
            unwatched: HashSet::new(),
            nexthop_users: HashMap::new(),
            originated: HashMap::new(),
            fib_failed: HashMap::new(),
            fib_confirms: false,
            stale: stale::StaleRoutes::default(),
            decisions: 0,
            leak_log: None,
        }
    }

    /// Pull model on (the daemon): an event's UPDATEs are not put in its
    /// outputs but wait, per peer, for [`Rib::pull`], so a slow peer holds
    /// one entry per prefix that differs rather than every change (see
    /// `update_group`). Off (the default): each event's outputs carry all
    /// the UPDATEs it caused.
    pub fn set_pull_exports(&mut self, on: bool) {
        self.pull_exports = on;
    }

    /// Up to `budget` prefixes' worth of UPDATEs for peer `id`, recorded
    /// in its Adj-RIB-Out as sent (the caller hands them to the session):
    /// changes, then End-of-RIB after the initial table, and ROUTE-REFRESH
    /// answers with the families they complete.
    pub fn pull(&mut self, id: PeerId, budget: usize) -> Pulled {
        self.group_mut(id)
            .map_or_else(Pulled::default, |g| g.pull(id, budget))
    }

    /// Whether [`Rib::pull`] has something for peer `id`.
    pub fn has_pending(&self, id: PeerId) -> bool {
        self.group(id).is_some_and(|g| g.has_work(id))
    }

    /// Prefixes whose new state waits to be pulled for peer `id`.
    pub fn queued(&self, id: PeerId) -> usize {
        self.group(id).map_or(0, |g| g.queued(id))
    }

    /// Peer `id`'s update group and how many sessions it has: the router
    /// paces a group's output as one (burst coalescing). Group ids are
    /// never reused within one RIB.
    pub fn update_group_of(&self, id: PeerId) -> Option<(u32, usize)> {
        let gid = *self.group_of.get(&id)?;
        Some((gid, self.groups.get(&gid)?.member_count()))
    }

    /// How many update groups there are (`show status`).
    pub fn update_groups(&self) -> usize {
        self.groups.len()
    }

    /// The update group of peer `id` (a session's).
    pub(crate) fn group(&self, id: PeerId) -> Option<&UpdateGroup> {
        self.groups.get(self.group_of.get(&id)?)
    }

    fn group_mut(&mut self, id: PeerId) -> Option<&mut UpdateGroup> {
        self.groups.get_mut(self.group_of.get(&id)?)
    }

    /// What makes peer `id`'s export result (see [`GroupKey`]); None
    /// without a session.
    fn group_key(&self, id: PeerId) -> Option<GroupKey> {
        let peer = self.peers.get(&id)?;
        let s = peer.session.as_ref()?;
        let by_name = match &peer.cfg.export {
            PolicyChain::Named(names) => self.policies.mentions_neighbors(names),
            _ => false,
        };
        let mut families = s.families.clone();
        families.sort();
        families.dedup();
        Some(GroupKey {
            export: peer.cfg.export.clone(),
            ebgp: peer.cfg.remote_asn != self.cfg.local_asn,
            rr_client: peer.cfg.route_reflector_client,
            next_hop_self: peer.cfg.next_hop_self,
            families,
            next_hop_v4: s.local_next_hop_v4,
            next_hop_v6: s.local_next_hop_v6,
            link_local: s.local_link_local,
            extended_next_hop_v4: s.extended_next_hop_v4,
            neighbor: by_name.then(|| peer.cfg.name.clone()),
        })
    }

    /// Puts session `id` in the group its export result calls for, which
    /// it reads from the start (`leftover`: what it holds from another
    /// group). Returns the group and whether it is new (then nothing is
    /// exported to it yet).
    fn join_group(
        &mut self,
        id: PeerId,
        families: Vec<Family>,
        leftover: Vec<Prefix>,
    ) -> Option<(GroupId, bool)> {
        let key = self.group_key(id)?;
        let router_id = self.peers.get(&id)?.session.as_ref()?.remote_router_id;
        let found = self
            .groups
            .iter()
            .find(|(_, g)| g.key == key)
            .map(|(gid, _)| *gid);
        let (gid, new) = match found {
            Some(gid) => (gid, false),
            None => {
                let gid = self.next_group;
                self.next_group += 1;
                self.groups.insert(gid, UpdateGroup::new(key));
                (gid, true)
            }
        };
        self.groups
            .get_mut(&gid)
            .expect("just found or made")
            .join(id, router_id, families, leftover);
        self.group_of.insert(id, gid);
        Some((gid, new))
    }

    /// Takes session `id` out of its group (dropped when it was the last
    /// member); returns the prefixes it holds.
    fn leave_group(&mut self, id: PeerId) -> Vec<Prefix> {
        let Some(gid) = self.group_of.remove(&id) else {
            return Vec::new();
        };
        let Some(g) = self.groups.get_mut(&gid) else {
            return Vec::new();
        };
        let held = g.leave(id);
        if g.member_count() == 0 {
            self.groups.remove(&gid);
        }
        held
    }

    /// After a reload: a session whose export result can now differ from
    /// its group's moves to another group (it gets that group's table; what
    /// it held and that group does not announce is withdrawn).
    fn regroup(&mut self) {
        let moving: Vec<PeerId> = self
            .group_of
            .iter()
            .filter(|(id, gid)| {
                let key = self.group_key(**id);
                self.groups
                    .get(gid)
                    .is_none_or(|g| Some(&g.key) != key.as_ref())
            })
            .map(|(id, _)| *id)
            .collect();
        for id in moving {
            let held = self.leave_group(id);
            // Its End-of-RIB went with its first table.
            self.join_group(id, Vec::new(), held);
        }
    }

    /// Without the pull model: everything waiting goes in the outputs.
    fn push_all(&mut self, out: &mut Outputs) {
        if self.pull_exports {
            return;
        }
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for id in ids {
            if self.has_pending(id) {
                let pulled = self.pull(id, usize::MAX);
                out.updates
                    .extend(pulled.into_updates().into_iter().map(|u| (id, u)));
            }
        }
    }

    /// Says whether the FIB answers every FibChange (the contract of
    /// [`Rib::set_fib_status`]). On: a route is reported installed only
    /// once the kernel confirmed it, pending until then. Off (the default,
    /// for a FIB that reports only refusals and recoveries): installed once
    /// handed to the FIB and not refused.
    pub fn set_fib_confirms(&mut self, on: bool) {
        self.fib_confirms = on;
    }

    /// Where `dest`'s route stands in the kernel; `None`: no route wanted.
    pub(crate) fn fib_state_of(&self, dest: &Dest) -> Option<FibState> {
        dest.fib()?;
        Some(match dest.fib_state() {
            FibState::Pending if !self.fib_confirms => FibState::Installed,
            s => s,
        })
    }

    pub(crate) fn ctx(&self) -> Ctx<'_> {
        Ctx {
            cfg: &self.cfg,
            policies: &self.policies,
            peers: &self.peers,
            nexthops: &self.nexthops,
        }
    }

    /// Reload: re-run import, decision and export for everything; emit
    /// only the differences.
    pub fn set_config(&mut self, cfg: RibConfig, out: &mut Outputs) {
        self.policies = Policies::new(&cfg.policies);
        self.cfg = cfg;
        self.regroup();
        self.reimport(None, out);
        self.process_all(out);
    }

    pub fn add_peer(&mut self, id: PeerId, cfg: PeerConfig) {
        self.peers.insert(
            id,
            Peer {
                cfg,
                session: None,
                received: 0,
                received_v6: 0,
                accepted: 0,
                import_errors: ImportCounters::default(),
            },
        );
    }

    /// Reload one peer without a session reset: re-run import over its
    /// stored Adj-RIB-In and export over Loc-RIB; emit the differences.
    pub fn set_peer_config(&mut self, id: PeerId, cfg: PeerConfig, out: &mut Outputs) {
        let Some(peer) = self.peers.get_mut(&id) else {
            self.add_peer(id, cfg);
            return;
        };
        peer.cfg = cfg;
        self.regroup();
        self.reimport(Some(id), out);
        self.process_all(out);
    }

    pub fn remove_peer(&mut self, id: PeerId, out: &mut Outputs) {
        self.peer_down(id, out);
        self.forget_peer(id);
    }

    /// Forgets a peer whose paths are gone ([`Rib::peer_down`] or all of
    /// its steps done): what [`Rib::remove_peer`] does after the walk.
    pub fn forget_peer(&mut self, id: PeerId) {
        self.peers.remove(&id);
    }

    /// The session reached Established: the full Adj-RIB-Out is to send,
    /// then End-of-RIB for each negotiated family.
    pub fn peer_up(&mut self, id: PeerId, info: SessionInfo, out: &mut Outputs) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let families = info.families.clone();
        peer.session = Some(info);
        self.leave_group(id);
        // Joining a group that exists costs nothing: the session reads the
        // group's table from the start. A new group is exported to first.
        let Some((gid, true)) = self.join_group(id, families, Vec::new()) else {
            self.push_all(out);
            return;
        };
        let mut batch = self.batch_for(vec![gid]);
        let keys: Vec<Prefix> = self.table.keys().collect();
        for p in keys {
            self.process(p, &mut batch, out);
        }
        self.finish(batch, out);
    }

    /// The session went down: drop its Adj-RIB-In and Adj-RIB-Out and
    /// decide again.
    pub fn peer_down(&mut self, id: PeerId, out: &mut Outputs) {
        let mut down = self.peer_down_start(id);
        while self.peer_down_step(&mut down, usize::MAX, out) {}
    }

    /// [`Rib::peer_down`] in steps, so a full table's withdrawal does not
    /// build all its outputs at once: this forgets the peer's session; then
    /// each [`Rib::peer_down_step`] drops its paths from the next `max`
    /// prefixes (walking the table in order) and decides again for them,
    /// until it returns false. Nothing else may happen to the RIB in
    /// between.
    pub fn peer_down_start(&mut self, id: PeerId) -> PeerDown {
        let Some(peer) = self.peers.get_mut(&id) else {
            return PeerDown {
                peer: id,
                after: None,
                done: true,
            };
        };
        peer.session = None;
        self.stale.forget(id);
        peer.received = 0;
        peer.received_v6 = 0;
        peer.accepted = 0;
        self.leave_group(id);
        PeerDown {
            peer: id,
            after: None,
            done: false,
        }
    }

    /// Returns whether prefixes remain.
    pub fn peer_down_step(&mut self, down: &mut PeerDown, max: usize, out: &mut Outputs) -> bool {
        if down.done {
            return false;
        }
        let id = down.peer;
        // The walk resumes after the last prefix of the previous step (a
        // B-tree range; that prefix may be gone from the table by now).
        let step: Vec<Prefix> = self
            .table
            .range_from(down.after)
            .filter(|(_, d)| d.path_of(id).is_some())
            .map(|(p, _)| p)
            .take(max)
            .collect();
        down.after = step.last().copied();
        down.done = step.len() < max;
        // Mostly one removal each: sized once rather than doubled.
        out.fib.reserve(step.len());
        let mut batch = self.batch_all();
        for p in step {
            if let Some(old) = self.table.get_mut(&p).and_then(|d| d.remove(id)) {
                self.path_gone(&old, out);
            }
            self.process(p, &mut batch, out);
        }
        self.finish(batch, out);
        !down.done
    }

    /// An UPDATE from peer `id`. Returns what was refused or ignored, for
    /// the daemon's log; the peer's [`ImportCounters`] count it too.
    pub fn receive(&mut self, id: PeerId, mut update: Update, out: &mut Outputs) -> ImportReport {
        let Some(peer) = self.peers.get_mut(&id) else {
            return ImportReport::default();
        };
        let Some(session) = &peer.session else {
            return ImportReport::default();
        };
        // RFC 2545 §3 wants a global next hop, but on a session over
        // link-local addresses only (BGP unnumbered) BIRD sends `::` beside
        // its link-local one: on the session's own link that is the
        // link-local next hop alone.
        if let (Some(r), Some(_)) = (update.mp_reach.as_mut(), session.interface) {
            if r.next_hop.address.is_unspecified() {
                if let Some(ll) = r.next_hop.link_local.take() {
                    r.next_hop.address = IpAddr::V6(ll);
                }
            }
        }
        let mut report = screen(&peer.cfg, self.cfg.local_asn, session, &mut update);
        // A link-local next hop is an address on the session's link: give
        // it that interface, the FIB installs through it.
        if let (Some(r), Some(link)) = (update.mp_reach.as_mut(), session.interface) {
            if r.next_hop.link_local.is_some() || r.next_hop.address_is_link_local() {
                r.next_hop.interface = Some(link);
            }
        }
        let reachable = update.nlri.len() + update.mp_reach.as_ref().map_or(0, |r| r.nlri.len());
        if report.treat_as_withdraw.is_none() {
            report.treat_as_withdraw = self.own_next_hop_error(id, &update);
        }
        let Some(peer) = self.peers.get_mut(&id) else {
            return report;
        };
        peer.import_errors.count(&report, reachable);

        let mut touched: Vec<Prefix> = Vec::with_capacity(update.withdrawn.len() + reachable);
        let withdrawn = update.withdrawn.iter().map(|n| Prefix::V4(*n)).chain(
            update
                .mp_unreach
                .iter()
                .flat_map(|u| u.withdrawn.iter().copied()),
        );
        for p in withdrawn {
            self.withdraw_path(id, p, out);
            touched.push(p);
        }
        let nlri = update.nlri.iter().map(|n| Prefix::V4(*n));
        let v4_nh = update
            .attributes
            .next_hop
            .map(|a| NextHop::new(IpAddr::V4(a)));
        let unspecified = NextHop::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        match &report.treat_as_withdraw {
            None => {
                if let Some(nh) = v4_nh.filter(|_| !update.nlri.is_empty()) {
                    self.announce(id, &update.attributes, nh, nlri, &mut touched, out);
                }
                if let Some(r) = &update.mp_reach {
                    let nlri = r.nlri.iter().copied();
                    self.announce(id, &update.attributes, r.next_hop, nlri, &mut touched, out);
                }
            }
            // RFC 7606 treat-as-withdraw: the routes are withdrawn, and
            // kept as rejected paths with the reason for `explain`.
            Some(why) => {
                let why: Arc<str> = format!("{TREAT_AS_WITHDRAW}: {why}").into();
                let nh = v4_nh.unwrap_or(unspecified);
                self.keep_withdrawn(id, &update.attributes, nh, nlri, &why, &mut touched, out);
                if let Some(r) = &update.mp_reach {
                    let nlri = r.nlri.iter().copied();
                    self.keep_withdrawn(
                        id,
                        &update.attributes,
                        r.next_hop,
                        nlri,
                        &why,
                        &mut touched,
                        out,
                    );
                }
            }
        }
        self.stale.refreshed(id, &touched);
        let mut batch = self.batch_all();
        for p in touched {
            self.process(p, &mut batch, out);
        }
        self.finish(batch, out);
        // RFC 4724 §4.2: End-of-RIB ends a restarting peer's re-sending of
        // that family; what it did not re-send is gone.
        if let Some(f) = update.end_of_rib() {
            self.remove_stale(id, Some(&[f]), out);
        }
        report
    }

    /// A next hop of `u` that is one of our own addresses, where the FIB
    /// already said so (a next hop watched now; one not watched gets its
    /// state from the FIB first, see [`Rib::set_nexthop`]).
    fn own_next_hop_error(&self, id: PeerId, u: &Update) -> Option<String> {
        let ctx = self.ctx();
        let v4 = u
            .attributes
            .next_hop
            .filter(|_| !u.nlri.is_empty())
            .map(IpAddr::V4);
        let mp = u
            .mp_reach
            .as_ref()
            .filter(|r| !r.nlri.is_empty())
            .map(|r| r.next_hop.address);
        v4.into_iter()
            .chain(mp)
            .find(|nh| self.watched.contains(nh) && ctx.own_next_hop_refused(id, *nh))
            .map(own_next_hop_reason)
    }

    /// The FIB found `addr` to be one of our own addresses: the accepted
    /// paths using it from peers that may not (see `Ctx`) become treat-as-
    /// withdraws like those caught at receive time, counted once per
    /// attribute set (the UPDATE that carried it) and reported.
    fn withdraw_own_next_hops(&mut self, addr: IpAddr, out: &mut Outputs) -> Vec<Prefix> {
        let ctx = self.ctx();
        let hits: Vec<(Prefix, Arc<PathInfo>)> = self
            .table
            .iter()
            .flat_map(|(prefix, d)| {
                d.paths()
                    .iter()
                    .filter(|p| {
                        !p.is_local()
                            && p.accepted()
                            && p.post.next_hop.address == addr
                            && ctx.own_next_hop_refused(p.peer, addr)
                    })
                    .map(move |p| (prefix, p.clone()))
            })
            .collect();
        if hits.is_empty() {
            return Vec::new();
        }
        let why: Arc<str> = format!("{TREAT_AS_WITHDRAW}: {}", own_next_hop_reason(addr)).into();
        // old path -> (old path kept alive, so its address is not reused
        // meanwhile; its replacement).
        let mut converted: HashMap<*const PathInfo, (Arc<PathInfo>, Arc<PathInfo>)> =
            HashMap::new();
        let mut per_peer: BTreeMap<PeerId, u64> = BTreeMap::new();
        let mut touched = Vec::with_capacity(hits.len());
        for (prefix, old) in hits {
            let new = match converted.get(&Arc::as_ptr(&old)) {
                Some((_, n)) => n.clone(),
                None => {
                    *per_peer.entry(old.peer).or_default() += 1;
                    let n = withdrawn_path(&mut self.ints, old.peer, &old.pre, &why);
                    converted.insert(Arc::as_ptr(&old), (old.clone(), n.clone()));
                    n
                }
            };
            self.insert_path(old.peer, prefix, new, out);
            touched.push(prefix);
        }
        for (peer, n) in per_peer {
            if let Some(p) = self.peers.get_mut(&peer) {
                p.import_errors.treat_as_withdraw += n;
            }
            let report = ImportReport {
                treat_as_withdraw: Some(own_next_hop_reason(addr)),
                ..Default::default()
            };
            out.import_reports.push((peer, report));
        }
        touched
    }

    /// The peer asked us to resend a family (RFC 2918).
    /// The answer is pulled like any UPDATE; [`Pulled::refreshed`] says
    /// when it is complete.
    pub fn route_refresh(&mut self, id: PeerId, family: Family, out: &mut Outputs) {
        let Some(g) = self.group_mut(id) else {
            return;
        };
        g.refresh(id, family);
        self.push_all(out);
    }

    /// Replaces the whole set of locally originated prefixes.
    pub fn set_originated(&mut self, origins: Vec<Origination>, out: &mut Outputs) {
        let mut next: HashMap<Prefix, Arc<PathInfo>> = HashMap::new();
        for o in origins {
            let prefix = o.prefix.trunc();
            let unspecified = match prefix {
                Prefix::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                Prefix::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            };
            let attrs = self.ints.attrs.intern(Attrs {
                next_hop: NextHop::new(unspecified),
                attrs: PathAttributes {
                    origin: Some(Origin::Igp),
                    communities: o.communities.into(),
                    large_communities: o.large_communities.into(),
                    local_pref: o.local_pref,
                    ..Default::default()
                },
            });
            let info = self.ints.paths.intern(PathInfo {
                peer: LOCAL_PEER,
                pre: attrs.clone(),
                post: attrs,
                rejected: None,
            });
            next.insert(prefix, info);
        }
        let mut touched = Vec::new();
        for p in self.originated.keys() {
            if !next.contains_key(p) {
                if let Some(d) = self.table.get_mut(p) {
                    d.remove(LOCAL_PEER);
                }
                touched.push(*p);
            }
        }
        for (p, info) in &next {
            if self.originated.get(p).is_none_or(|o| !Arc::ptr_eq(o, info)) {
                self.table
                    .get_or_insert_with(*p, Dest::default)
                    .upsert(info.clone());
                touched.push(*p);
            }
        }
        self.originated = next;
        let mut batch = self.batch_all();
        for p in touched {
            self.process(p, &mut batch, out);
        }
        self.finish(batch, out);
    }

    /// The FIB task's verdict on a next hop.
    pub fn set_nexthop(&mut self, addr: IpAddr, state: NexthopState, out: &mut Outputs) {
        // A repeated Local still counts: it answers a new watch, for paths
        // that arrived while the address was not watched.
        if self.nexthops.get(&addr) == Some(&state) && state != NexthopState::Local {
            return;
        }
        if self.unwatched.contains(&addr) {
            // Sent before the FIB took the unwatch: no path uses it, and
            // the next user asks the FIB again.
            return;
        }
        let unchanged = self.nexthops.get(&addr) == Some(&state);
        let local = state == NexthopState::Local;
        self.nexthops.insert(addr, state);
        self.watched.insert(addr);
        if local {
            let converted = self.withdraw_own_next_hops(addr, out);
            if unchanged {
                let mut batch = self.batch_all();
                for p in converted {
                    self.process(p, &mut batch, out);
                }
                self.finish(batch, out);
                return;
            }
        }
        let touched: Vec<Prefix> = self
            .table
            .iter()
            .filter(|(_, d)| {
                d.paths()
                    .iter()
                    .any(|p| !p.is_local() && p.post.next_hop.address == addr)
            })
            .map(|(p, _)| p)
            .collect();
        let mut batch = self.batch_all();
        for p in touched {
            self.process(p, &mut batch, out);
        }
        self.finish(batch, out);
    }

    /// The kernel's answer to the last FibChange for `prefix`: what
    /// `explain` and `routes` report as installed, pending or failed.
    ///
    /// Contract with the FIB: after every FibChange with next hops it
    /// answers `Installed` once the route is in the kernel with that set
    /// (written, or found there already), or `Failed` with the kernel's
    /// words (e.g. "File exists (EEXIST)"). Until then the prefix is
    /// pending. Answers for prefixes that no longer want a route are
    /// ignored.
    pub fn set_fib_status(&mut self, prefix: Prefix, status: FibStatus) {
        let Some(dest) = self.table.get_mut(&prefix).filter(|d| d.fib().is_some()) else {
            self.fib_failed.remove(&prefix);
            return;
        };
        match status {
            FibStatus::Installed => {
                dest.set_fib_state(FibState::Installed);
                self.fib_failed.remove(&prefix);
            }
            FibStatus::Failed(msg) => {
                dest.set_fib_state(FibState::Failed);
                self.fib_failed.insert(prefix, msg);
            }
        }
    }

    /// The kernel's answer for `prefix` about `written`, the next-hop set
    /// it wrote (or refused): taken as [`Rib::set_fib_status`] only if
    /// `written` is still the set last handed to the FIB, else ignored. A
    /// newer change may be queued behind the answer: an answer for an
    /// older set must not mark the newer one installed (the FIB answers
    /// the newer set when it gets to it). Comparing the sets costs no
    /// state per prefix; the one case it cannot tell apart, A then B then
    /// A again handed over before the first answer for A arrives, takes
    /// that answer, which is about the very set wanted now.
    pub fn set_fib_status_of(
        &mut self,
        prefix: Prefix,
        written: &Arc<Vec<NextHop>>,
        status: FibStatus,
    ) {
        let current = self.table.get(&prefix).and_then(Dest::fib);
        let is_current = current.is_some_and(|id| {
            let set = &self.ints.nhsets.get(id).best;
            Arc::ptr_eq(set, written) || **set == **written
        });
        if is_current {
            self.set_fib_status(prefix, status);
        }
    }

    pub fn peer_counters(&self, id: PeerId) -> PeerCounters {
        let Some(p) = self.peers.get(&id) else {
            return PeerCounters::default();
        };
        PeerCounters {
            received: p.received,
            accepted: p.accepted,
            advertised: self.group(id).map_or(0, |g| g.sent(id).count()),
            too_big: self.not_advertised_too_big(id),
        }
    }

    /// Prefixes whose best path is not advertised to the peer because its
    /// attributes do not fit one 4096-octet UPDATE.
    pub fn not_advertised_too_big(&self, id: PeerId) -> usize {
        self.group(id).map_or(0, |g| g.too_big_for(id))
    }

    /// What import refused or ignored from the peer since it was
    /// configured (across sessions).
    pub fn import_counters(&self, id: PeerId) -> ImportCounters {
        self.peers
            .get(&id)
            .map_or_else(ImportCounters::default, |p| p.import_errors)
    }

    /// Paths of `family` in the peer's Adj-RIB-In, accepted or rejected by
    /// import (what `maxPrefixes` limits).
    pub fn received_in(&self, id: PeerId, family: wire::Family) -> usize {
        self.peers.get(&id).map_or(0, |p| match family {
            wire::Family::Ipv4Unicast => p.received - p.received_v6,
            wire::Family::Ipv6Unicast => p.received_v6,
        })
    }

    /// The peer's path for `prefix` in Adj-RIB-In: as received, after
    /// import, and the import verdict (BMP route monitoring).
    pub fn adj_rib_in_path(&self, id: PeerId, prefix: &Prefix) -> Option<&Arc<PathInfo>> {
        self.table.get(prefix)?.path_of(id)
    }

    /// Every path of the peer in Adj-RIB-In, by prefix (a walk of the
    /// table: BMP's dump when a collector connects).
    pub fn adj_rib_in(&self, id: PeerId) -> impl Iterator<Item = (Prefix, &Arc<PathInfo>)> + '_ {
        self.table
            .iter()
            .filter_map(move |(prefix, dest)| Some((prefix, dest.path_of(id)?)))
    }

    /// Times the decision process ran for a prefix since the start.
    pub fn decision_runs(&self) -> u64 {
        self.decisions
    }

    /// The Loc-RIB's size and FIB states per family: one walk of the
    /// table (for `/metrics`, at scrape time).
    pub fn family_counts(&self) -> [(Family, crate::FamilyCounts); 2] {
        let mut v4 = crate::FamilyCounts::default();
        let mut v6 = crate::FamilyCounts::default();
        for (prefix, dest) in self.table.iter() {
            let c = match prefix {
                ipnet::IpNet::V4(_) => &mut v4,
                ipnet::IpNet::V6(_) => &mut v6,
            };
            if dest.best().is_some() {
                c.prefixes += 1;
            }
            c.paths += dest.paths().iter().filter(|p| p.accepted()).count();
            match self.fib_state_of(dest) {
                Some(FibState::Installed) => c.fib_installed += 1,
                Some(FibState::Pending) => c.fib_pending += 1,
                Some(FibState::Failed) => c.fib_failed += 1,
                None => {}
            }
        }
        [(Family::Ipv4Unicast, v4), (Family::Ipv6Unicast, v6)]
    }

    /// Number of distinct interned attribute sets and paths (for tests and
    /// metrics).
    pub fn interned(&self) -> (usize, usize) {
        (self.ints.attrs.len(), self.ints.paths.len())
    }

    /// Drops unused interned attributes now (normally amortised).
    pub fn compact(&mut self) {
        self.ints.sweep(true);
    }

    // --- internals -------------------------------------------------------

    fn batch_for(&self, groups: Vec<GroupId>) -> Batch {
        Batch {
            groups,
            cache: HashMap::new(),
        }
    }

    fn batch_all(&self) -> Batch {
        self.batch_for(self.groups.keys().copied().collect())
    }

    fn finish(&mut self, batch: Batch, out: &mut Outputs) {
        drop(batch.cache);
        for g in self.groups.values_mut() {
            g.collect_garbage();
        }
        self.push_all(out);
        self.ints.sweep(false);
    }

    /// Counts `path` as a user of its next hop; the first one has the FIB
    /// watch it. Rejected paths need no next hop (they are kept for
    /// `explain` only), nor do our own.
    fn path_added(&mut self, path: &PathInfo, out: &mut Outputs) {
        if path.is_local() || !path.accepted() {
            return;
        }
        // Nothing to resolve for a link-local-only next hop: it is on the
        // session's link (see `Ctx::nh_status`).
        if path.post.next_hop.on_link_only().is_some() {
            return;
        }
        let addr = path.post.next_hop.address;
        self.nexthop_users.entry(addr).or_default().add(path.peer);
        if self.watched.insert(addr) {
            self.unwatched.remove(&addr);
            // An unwatch not sent yet is taken back rather than followed
            // by a watch: the two lists stay disjoint, so their order does
            // not matter.
            match out.unwatch_nexthops.iter().position(|a| *a == addr) {
                Some(i) => {
                    out.unwatch_nexthops.swap_remove(i);
                }
                None => out.watch_nexthops.push(addr),
            }
        }
    }

    /// `path` left (withdrawn, its peer down, or rejected on reimport):
    /// when it was the last user of its next hop, the FIB stops watching
    /// it. Its last state is kept: a later user watches it afresh, and the
    /// FIB answers a watch at once; until then decisions read the last
    /// state (and the FIB, which resolves by itself, never installs
    /// through a next hop it finds unresolved).
    fn path_gone(&mut self, path: &PathInfo, out: &mut Outputs) {
        if path.is_local() || !path.accepted() {
            return;
        }
        if path.post.next_hop.on_link_only().is_some() {
            return;
        }
        let addr = path.post.next_hop.address;
        let Some(users) = self.nexthop_users.get_mut(&addr) else {
            return;
        };
        if users.remove(path.peer) {
            self.nexthop_users.remove(&addr);
            if self.watched.remove(&addr) {
                self.unwatched.insert(addr);
                match out.watch_nexthops.iter().position(|a| *a == addr) {
                    Some(i) => {
                        out.watch_nexthops.remove(i);
                    }
                    None => out.unwatch_nexthops.push(addr),
                }
            }
        }
    }

    /// How many accepted paths use next hop `addr` (for tests).
    pub fn nexthop_users(&self, addr: IpAddr) -> u32 {
        self.nexthop_users.get(&addr).map_or(0, |u| u.total)
    }

    /// The next hops that only peer `id`'s accepted paths use: what its
    /// session takes with it when it goes down without a carrier change
    /// (BFD, hold timer, a Cease), so the FIB can re-point their nexthop
    /// objects before the per-prefix changes arrive. Besides the session's
    /// own address these are the next hops it announced for another
    /// family (an IPv6 next hop in MP_REACH over an IPv4 session, RFC
    /// 4760 §3) or for a third party. A next hop another peer's paths
    /// still use stays: two route reflectors passing on the same client's
    /// next hop lose nothing when one of them goes. Costs one look at each
    /// distinct next hop, not at each prefix.
    pub fn next_hops_only_via(&self, id: PeerId) -> Vec<IpAddr> {
        let mut only: Vec<IpAddr> = self
            .nexthop_users
            .iter()
            .filter(|(_, u)| matches!(u.by_peer.as_slice(), [(p, _)] if *p == id))
            .map(|(a, _)| *a)
            .collect();
        only.sort_unstable();
        only
    }

    fn announce(
        &mut self,
        id: PeerId,
        attrs: &PathAttributes,
        nh: NextHop,
        prefixes: impl Iterator<Item = Prefix>,
        touched: &mut Vec<Prefix>,
        out: &mut Outputs,
    ) {
        let mut a = attrs.clone();
        a.next_hop = None;
        let pre = self.ints.attrs.intern(Attrs {
            next_hop: nh,
            attrs: a,
        });
        let mut same_for_all: Option<Arc<PathInfo>> = None;
        for p in prefixes {
            let info = match &same_for_all {
                Some(i) => i.clone(),
                None => {
                    let ctx = Ctx {
                        cfg: &self.cfg,
                        policies: &self.policies,
                        peers: &self.peers,
                        nexthops: &self.nexthops,
                    };
                    let imp = import_path(&ctx, &mut self.ints, id, &pre, &p);
                    if !imp.used_prefix {
                        same_for_all = Some(imp.info.clone());
                    }
                    imp.info
                }
            };
            self.insert_path(id, p, info, out);
            touched.push(p);
        }
    }

    /// The prefixes of an UPDATE treated as withdrawn: each replaces the
    /// peer's path with a rejected one saying why. Its next hop is not
    /// watched: the path is never used.
    // `announce`'s arguments plus the reason.
    #[allow(clippy::too_many_arguments)]
    fn keep_withdrawn(
        &mut self,
        id: PeerId,
        attrs: &PathAttributes,
        nh: NextHop,
        prefixes: impl Iterator<Item = Prefix>,
        why: &Arc<str>,
        touched: &mut Vec<Prefix>,
        out: &mut Outputs,
    ) {
        let mut a = attrs.clone();
        a.next_hop = None;
        let pre = self.ints.attrs.intern(Attrs {
            next_hop: nh,
            attrs: a,
        });
        let info = withdrawn_path(&mut self.ints, id, &pre, why);
        for p in prefixes {
            self.insert_path(id, p, info.clone(), out);
            touched.push(p);
        }
    }

    pub(crate) fn insert_path(
        &mut self,
        id: PeerId,
        prefix: Prefix,
        info: Arc<PathInfo>,
        out: &mut Outputs,
    ) {
        let accepted = info.accepted();
        // Counted before the old path goes: a replacement with the same
        // next hop never unwatches it.
        self.path_added(&info, out);
        let old = self
            .table
            .get_or_insert_with(prefix, Dest::default)
            .upsert(info);
        if let Some(o) = &old {
            self.path_gone(o, out);
        }
        if let Some(peer) = self.peers.get_mut(&id) {
            match old {
                None => {
                    peer.received += 1;
                    peer.received_v6 += usize::from(prefix.addr().is_ipv6());
                }
                Some(o) if o.accepted() => peer.accepted -= 1,
                Some(_) => {}
            }
            if accepted {
                peer.accepted += 1;
            }
        }
    }

    pub(crate) fn withdraw_path(&mut self, id: PeerId, prefix: Prefix, out: &mut Outputs) {
        let Some(old) = self.table.get_mut(&prefix).and_then(|d| d.remove(id)) else {
            return;
        };
        self.path_gone(&old, out);
        if let Some(peer) = self.peers.get_mut(&id) {
            peer.received -= 1;
            peer.received_v6 -= usize::from(prefix.addr().is_ipv6());
            if old.accepted() {
                peer.accepted -= 1;
            }
        }
    }

    /// Re-runs import over the stored Adj-RIB-In of `only` (or every peer).
    fn reimport(&mut self, only: Option<PeerId>, out: &mut Outputs) {
        let ctx = Ctx {
            cfg: &self.cfg,
            policies: &self.policies,
            peers: &self.peers,
            nexthops: &self.nexthops,
        };
        let ints = &mut self.ints;
        // old path -> (old path kept alive, new path), for results that do
        // not depend on the prefix.
        let mut cache: HashMap<*const PathInfo, (Arc<PathInfo>, Arc<PathInfo>)> = HashMap::new();
        let mut accepted: HashMap<PeerId, usize> = HashMap::new();
        // (new path, old path) whose import verdict changed.
        let mut flipped: Vec<(Arc<PathInfo>, Arc<PathInfo>)> = Vec::new();
        for (prefix, dest) in self.table.iter_mut() {
            dest.map_paths(|p| {
                if p.is_local() || only.is_some_and(|o| o != p.peer) {
                    return p.clone();
                }
                let new = match cache.get(&Arc::as_ptr(p)) {
                    Some((_, n)) => n.clone(),
                    None => match standing_after_reload(&ctx, p, &prefix) {
                        // A treat-as-withdraw stands until the peer sends
                        // the route again: no configuration makes a
                        // malformed UPDATE usable.
                        Standing::Unchanged if is_treat_as_withdraw(p) => return p.clone(),
                        Standing::Withdraw(why) => {
                            let why: Arc<str> = format!("{TREAT_AS_WITHDRAW}: {why}").into();
                            let new = withdrawn_path(ints, p.peer, &p.pre, &why);
                            cache.insert(Arc::as_ptr(p), (p.clone(), new.clone()));
                            new
                        }
                        Standing::Unchanged | Standing::Rejudge => {
                            let imp = import_path(&ctx, ints, p.peer, &p.pre, &prefix);
                            if !imp.used_prefix {
                                cache.insert(Arc::as_ptr(p), (p.clone(), imp.info.clone()));
                            }
                            imp.info
                        }
                    },
                };
                if new.accepted() {
                    *accepted.entry(p.peer).or_default() += 1;
                }
                if new.accepted() != p.accepted() {
                    flipped.push((new.clone(), p.clone()));
                }
                new
            });
        }
        // Next-hop users follow the verdicts that changed.
        for (new, old) in flipped {
            self.path_added(&new, out);
            self.path_gone(&old, out);
        }
        for (id, peer) in self.peers.iter_mut() {
            if only.is_none_or(|o| o == *id) {
                peer.accepted = accepted.get(id).copied().unwrap_or(0);
            }
        }
    }

    /// Decision, FIB and export for `prefixes`.
    pub(crate) fn process_some(&mut self, prefixes: Vec<Prefix>, out: &mut Outputs) {
        let mut batch = self.batch_all();
        for p in prefixes {
            self.process(p, &mut batch, out);
        }
        self.finish(batch, out);
    }

    fn process_all(&mut self, out: &mut Outputs) {
        let keys: Vec<Prefix> = self.table.keys().collect();
        let mut batch = self.batch_all();
        for p in keys {
            self.process(p, &mut batch, out);
        }
        self.finish(batch, out);
        self.ints.sweep(true);
    }

    /// Decision, FIB and export for one prefix whose paths (or whose
    /// paths' context) may have changed. Emits only differences.
    fn process(&mut self, prefix: Prefix, batch: &mut Batch, out: &mut Outputs) {
        let ctx = Ctx {
            cfg: &self.cfg,
            policies: &self.policies,
            peers: &self.peers,
            nexthops: &self.nexthops,
        };
        let Some(dest) = self.table.get_mut(&prefix) else {
            return;
        };
        ctx.decide(dest);
        self.decisions += 1;
        if let Some(log) = &mut self.leak_log {
            log.insert(prefix);
        }

        let fib = ctx.fib_set(dest);
        let old = dest.fib();
        let same = match (&fib, old) {
            (None, None) => true,
            (Some((best, backup)), Some(id)) => {
                let o = self.ints.nhsets.get(id);
                *o.best == *best && *o.backup == *backup
            }
            _ => false,
        };
        if !same {
            // Acquired before the old one is released, so an id freed by
            // the release is never the one just handed out.
            let new = fib.map(|(best, backup)| {
                let sets = FibSets {
                    best: Arc::new(best),
                    backup: Arc::new(backup),
                };
                self.ints.nhsets.acquire(&sets, || Arc::new(sets.clone()))
            });
            if let Some(id) = old {
                self.ints.nhsets.release(id);
            }
            dest.set_fib(new);
            // The interned sets themselves: a full table has few distinct
            // pairs, so the change the FIB keeps costs two pointers.
            out.fib.push(match new {
                Some(id) => {
                    let sets = self.ints.nhsets.get(id);
                    FibChange {
                        prefix,
                        next_hops: sets.best.clone(),
                        backup: sets.backup.clone(),
                    }
                }
                None => FibChange::new(prefix, crate::no_next_hops()),
            });
            self.fib_failed.remove(&prefix);
        }

        let best = dest.best().cloned();
        let empty = dest.is_empty();
        let family = Family::of_prefix(&prefix);
        for &gid in &batch.groups {
            let Some(group) = self.groups.get(&gid) else {
                continue;
            };
            let from = best.as_ref().map_or(LOCAL_PEER, |b| b.peer);
            // Export runs once for the group, towards any member: the
            // group applies split horizon per member.
            let to = group.representative();
            let (result, too_big): (Option<Arc<Attrs>>, bool) = match (&best, to) {
                (None, _) | (_, None) => (None, false),
                (Some(b), Some(to)) => {
                    let key = (Arc::as_ptr(b), gid, family);
                    match batch.cache.get(&key) {
                        Some(c) => (c.attrs.clone(), c.too_big),
                        None => {
                            let e = ctx.export_to_group(b, &prefix, to);
                            let too_big = e.result.as_ref().is_err_and(|r| r == DOES_NOT_FIT);
                            let r = e.result.ok().map(|a| self.ints.attrs.intern(a));
                            if !e.used_prefix {
                                let cached = CachedExport {
                                    _path: b.clone(),
                                    attrs: r.clone(),
                                    too_big,
                                };
                                batch.cache.insert(key, cached);
                            }
                            (r, too_big)
                        }
                    }
                }
            };
            let group = self.groups.get_mut(&gid).expect("looked up above");
            if too_big {
                group.too_big.insert(prefix, from);
            } else {
                group.too_big.remove(&prefix);
            }
            group.want(prefix, result, from);
        }
        if empty {
            self.table.remove(&prefix);
        }
    }
}

// --- graceful restart, helper side (the bookkeeping: stale.rs) ---------

impl Rib {
    /// The session of a graceful restart peer was lost (RFC 4724 §4.2):
    /// forget the session and its Adj-RIB-Out, but keep its paths — in
    /// Loc-RIB, in the FIB and in what is advertised to the other peers —
    /// marked stale. Paths still stale from an earlier loss stay stale.
    /// Returns the number of stale paths.
    pub fn peer_restarting(&mut self, id: PeerId) -> usize {
        let Some(peer) = self.peers.get_mut(&id) else {
            return 0;
        };
        peer.session = None;
        self.leave_group(id);
        let paths: Vec<Prefix> = self
            .table
            .iter()
            .filter(|(_, d)| d.path_of(id).is_some())
            .map(|(p, _)| p)
            .collect();
        self.stale.mark(id, paths)
    }

    /// Removes the peer's paths still stale in `families` (all when
    /// None), deciding again for them: after its End-of-RIB, when a
    /// family lost its forwarding state, or when the wait ran out.
    /// Returns how many were removed.
    pub fn remove_stale(
        &mut self,
        id: PeerId,
        families: Option<&[Family]>,
        out: &mut Outputs,
    ) -> usize {
        let gone = self.stale.take(id, families);
        if gone.is_empty() {
            return 0;
        }
        out.fib.reserve(gone.len());
        for p in &gone {
            self.withdraw_path(id, *p, out);
        }
        let mut batch = self.batch_all();
        for p in &gone {
            self.process(*p, &mut batch, out);
        }
        self.finish(batch, out);
        gone.len()
    }

    /// The number of the peer's paths that are stale.
    pub fn stale_count(&self, id: PeerId) -> usize {
        self.stale.count(id)
    }

    /// `explain` and `routes` say this of a stale path; the daemon, which
    /// has the clock, adds the time left.
    pub(crate) fn stale_note(&self, id: PeerId, prefix: &Prefix) -> Option<String> {
        self.is_stale(id, prefix)
            .then(|| stale::STALE_NOTE.to_string())
    }

    /// Whether the peer's path for `prefix` is stale.
    pub fn is_stale(&self, id: PeerId, prefix: &Prefix) -> bool {
        self.stale.is_stale(id, prefix)
    }
}
