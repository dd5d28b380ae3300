//! Update groups (issue 17): one Adj-RIB-Out shared by the peers whose
//! export result cannot differ.
//!
//! Peers with the same [`GroupKey`] (export policy, iBGP or eBGP,
//! route-reflector client or not, families, next-hop handling) share one
//! group. The group holds one versioned table: per prefix, the state its
//! members should have (attributes, or withdrawn), stamped with the
//! version of its last change. Export therefore runs once per group per
//! change, and a member is only a cursor: the last version it pulled. A
//! session that joins starts at version 0 and reads the whole table; it
//! costs nothing else to set up.
//!
//! Split horizon without a copy per member: each entry names the peer
//! whose path it is, and a member is never sent its own path, nor one
//! whose ORIGINATOR_ID is its router id (RFC 4456 §8); it keeps the
//! prefixes it was held back from in a small exception set ([`Member::own`]).
//!
//! Pull model: a state is handed over only when pulled, and a prefix that
//! changes many times while a member lags is one entry, its last state.
//! Members at the same cursor get the same batch ([`SharedUpdates`]):
//! built and encoded once, shared by every member's writer. It has one
//! UPDATE per source, so a member whose own paths are in it takes it
//! without those UPDATEs ([`Pulled::skip`]); only a member that must be
//! sent a withdrawal the others are not gets a batch of its own.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, OnceLock};

use wire::{Family, Prefix, SessionCodec, Update};

use crate::attrs::Attrs;
use crate::export::{end_of_rib, UpdateBuilder};
use crate::policy::PolicyChain;
use crate::table::PrefixMap;
use crate::PeerId;

/// What makes two peers' export results the same: everything export reads
/// of the destination peer (`Ctx::export`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupKey {
    pub export: PolicyChain,
    pub ebgp: bool,
    pub rr_client: bool,
    pub next_hop_self: bool,
    pub families: Vec<Family>,
    pub next_hop_v4: Option<Ipv4Addr>,
    pub next_hop_v6: Option<Ipv6Addr>,
    pub link_local: Option<Ipv6Addr>,
    pub extended_next_hop_v4: bool,
    /// The peer's name, when its export policy matches on neighbour names
    /// (then the peer is a group of its own).
    pub neighbor: Option<String>,
}

/// Index of a group in the RIB.
pub(crate) type GroupId = u32;

/// `from` of a withdrawn entry: nobody's path.
const NOBODY: PeerId = PeerId::MAX;

struct Entry {
    attrs: Option<Arc<Attrs>>,
    /// Whose path `attrs` is (split horizon).
    from: PeerId,
    version: u64,
    /// An earlier state of the entry was an announcement: a member that
    /// meets its own path here may hold that one, to withdraw.
    announced: bool,
}

struct RefreshWalk {
    family: Family,
    after: Option<Prefix>,
}

/// One member: a cursor and its exceptions.
struct Member {
    /// The last version pulled.
    cursor: u64,
    /// The group's version when it joined: withdrawals up to it concern
    /// prefixes it never had.
    joined_at: u64,
    router_id: Ipv4Addr,
    /// Prefixes whose group state is the member's own path, which it
    /// holds nothing for.
    own: HashSet<Prefix>,
    /// Prefixes it holds from a group it left (its export result
    /// changed): each is withdrawn unless this group announces it.
    leftover: Vec<Prefix>,
    /// End-of-RIB markers (RFC 4724 §2) to send once it has caught up.
    end_of_rib: Vec<Family>,
    /// ROUTE-REFRESH answers (RFC 2918 §4) under way.
    refreshes: Vec<RefreshWalk>,
}

/// UPDATEs pulled by every member at one cursor, encoded at most once per
/// ASN encoding.
#[derive(Debug, Default)]
pub struct SharedUpdates {
    updates: Vec<Update>,
    /// Whose path each UPDATE carries (one source per UPDATE; `NOBODY`
    /// for withdrawals), so that a member can be handed the batch without
    /// its own paths ([`Pulled::skip`]).
    sources: Vec<PeerId>,
    /// Index: whether 4-octet ASNs were negotiated.
    encoded: [OnceLock<Encoded>; 2],
}

/// A batch's messages, and where each UPDATE's start in them (the end
/// last).
type Encoded = (Arc<[u8]>, Vec<usize>);

impl SharedUpdates {
    pub fn updates(&self) -> &[Update] {
        &self.updates
    }

    /// The messages as sent on a session with `codec`; encoded by the
    /// first member that asks.
    pub fn encoded(&self, codec: &SessionCodec) -> Arc<[u8]> {
        self.encoded_at(codec).0.clone()
    }

    /// The messages as sent on a session with `codec`, without the
    /// UPDATEs at the indices in `skip` (ascending): the byte ranges to
    /// write, out of the bytes every member shares.
    pub fn encoded_without(
        &self,
        codec: &SessionCodec,
        skip: &[usize],
    ) -> (Arc<[u8]>, Vec<std::ops::Range<usize>>) {
        let (bytes, starts) = self.encoded_at(codec);
        let mut ranges = Vec::with_capacity(skip.len() + 1);
        let mut from = 0;
        for &i in skip {
            if starts[i] > from {
                ranges.push(from..starts[i]);
            }
            from = starts[i + 1];
        }
        if bytes.len() > from {
            ranges.push(from..bytes.len());
        }
        (bytes.clone(), ranges)
    }

    fn encoded_at(&self, codec: &SessionCodec) -> &Encoded {
        self.encoded[usize::from(codec.four_octet_as)].get_or_init(|| {
            let mut out = Vec::new();
            let mut starts = Vec::with_capacity(self.updates.len() + 1);
            for u in &self.updates {
                starts.push(out.len());
                wire::encode_update(u, codec, &mut out);
            }
            starts.push(out.len());
            (out.into(), starts)
        })
    }
}

impl PartialEq for SharedUpdates {
    fn eq(&self, other: &Self) -> bool {
        self.updates == other.updates
    }
}

/// One pull's share for a peer.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Pulled {
    /// UPDATEs shared with the other members at the same cursor; they go
    /// before `updates`.
    pub shared: Option<Arc<SharedUpdates>>,
    /// Indices (ascending) of the shared UPDATEs this peer does not get:
    /// its own paths (split horizon), the rest of the batch being the
    /// same as its group's.
    pub skip: Vec<usize>,
    /// This peer's own UPDATEs, in order.
    pub updates: Vec<Update>,
    /// Families whose ROUTE-REFRESH answer is complete with these UPDATEs.
    pub refreshed: Vec<Family>,
}

impl Pulled {
    /// All the UPDATEs in order (the shared ones copied).
    pub fn into_updates(self) -> Vec<Update> {
        match self.shared {
            Some(s) => {
                let skip = &self.skip;
                let kept = s
                    .updates
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| skip.binary_search(i).is_err());
                kept.map(|(_, u)| u.clone()).chain(self.updates).collect()
            }
            None => self.updates,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.shared.is_none() && self.updates.is_empty()
    }
}

/// A batch as a member without exceptions gets it, with what a member
/// needs to know to tell whether it may take it.
struct Batch {
    updates: Arc<SharedUpdates>,
    /// The cursor after it.
    next: u64,
    /// Whose paths it announces, and their ORIGINATOR_IDs.
    sources: Vec<PeerId>,
    originators: Vec<Ipv4Addr>,
    announced: Vec<Prefix>,
    withdrawn: Vec<Prefix>,
    /// The lowest version of its withdrawals.
    first_withdrawal: Option<u64>,
}

/// Batches kept per group between two changes (see `UpdateGroup::shared`).
const SHARED_BATCHES: usize = 8;

/// The highest IPv4 prefix: a walk of IPv6 prefixes starts after it (every
/// IPv4 key sorts before every IPv6 key in a [`PrefixMap`]).
fn last_v4() -> Prefix {
    "255.255.255.255/32".parse().expect("valid prefix")
}

pub(crate) struct UpdateGroup {
    pub key: GroupKey,
    table: PrefixMap<Entry>,
    /// version -> prefix: each entry once, at its version.
    log: BTreeMap<u64, Prefix>,
    version: u64,
    members: BTreeMap<PeerId, Member>,
    /// Withdrawn entries still in `table` (kept until every member has
    /// pulled past them).
    tombstones: usize,
    /// Prefixes held back because their attributes do not fit one UPDATE,
    /// with the peer whose path it is (not counted for that peer).
    pub too_big: HashMap<Prefix, PeerId>,
    /// The batches at the cursors members pulled from since the last
    /// change, with their budgets. More than one: during a burst most
    /// members stand at one cursor and the sessions that joined since at
    /// others, and the members are pulled in id order, not by cursor.
    shared: Vec<(u64, usize, Arc<Batch>)>,
}

impl UpdateGroup {
    pub fn new(key: GroupKey) -> UpdateGroup {
        UpdateGroup {
            key,
            table: PrefixMap::default(),
            log: BTreeMap::new(),
            version: 0,
            members: BTreeMap::new(),
            tombstones: 0,
            too_big: HashMap::new(),
            shared: Vec::new(),
        }
    }

    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// A member to run the group's export for.
    pub fn representative(&self) -> Option<PeerId> {
        self.members.keys().next().copied()
    }

    /// A session joins: it reads the whole table from the start, then
    /// End-of-RIB for each of `families`. `leftover`: what it holds from a
    /// group it left.
    pub fn join(
        &mut self,
        id: PeerId,
        router_id: Ipv4Addr,
        families: Vec<Family>,
        leftover: Vec<Prefix>,
    ) {
        self.members.insert(
            id,
            Member {
                cursor: 0,
                joined_at: self.version,
                router_id,
                own: HashSet::new(),
                leftover,
                end_of_rib: families,
                refreshes: Vec::new(),
            },
        );
    }

    /// A member leaves; returns the prefixes it holds (for the group it
    /// moves to, if any).
    pub fn leave(&mut self, id: PeerId) -> Vec<Prefix> {
        let held: Vec<Prefix> = self.sent(id).map(|(p, _)| p).collect();
        if let Some(m) = self.members.remove(&id) {
            let mut held = held;
            held.extend(m.leftover);
            held.sort();
            held.dedup();
            self.collect_garbage();
            return held;
        }
        Vec::new()
    }

    /// The group's members should now have `want` for `prefix`, the path
    /// of peer `from`.
    pub fn want(&mut self, prefix: Prefix, want: Option<Arc<Attrs>>, from: PeerId) {
        let from = if want.is_some() { from } else { NOBODY };
        let version = self.version + 1;
        match self.table.get_mut(&prefix) {
            Some(e) => {
                let same = match (&e.attrs, &want) {
                    (None, None) => true,
                    (Some(old), Some(new)) => Arc::ptr_eq(old, new) && e.from == from,
                    _ => false,
                };
                if same {
                    return;
                }
                // The same attributes now from another peer: only a member
                // that is the old or the new source sees a change (split
                // horizon); the others are not sent them again.
                let moved = match (&e.attrs, &want) {
                    (Some(old), Some(new)) => Arc::ptr_eq(old, new),
                    _ => false,
                };
                if moved && !self.members.contains_key(&e.from) && !self.members.contains_key(&from)
                {
                    e.from = from;
                    self.shared.clear();
                    return;
                }
                match (e.attrs.is_some(), want.is_some()) {
                    (true, false) => self.tombstones += 1,
                    (false, true) => self.tombstones -= 1,
                    _ => {}
                }
                self.log.remove(&e.version);
                e.announced |= e.attrs.is_some();
                e.attrs = want;
                e.from = from;
                e.version = version;
            }
            None => {
                if want.is_none() {
                    return;
                }
                self.table.insert(
                    prefix,
                    Entry {
                        attrs: want,
                        from,
                        version,
                        announced: false,
                    },
                );
            }
        }
        self.version = version;
        self.log.insert(version, prefix);
        self.shared.clear();
    }

    /// Drops withdrawn entries every member has pulled past, once they
    /// are many (amortised: this walks the log up to the lowest cursor).
    pub fn collect_garbage(&mut self) {
        if self.tombstones < 64 || self.tombstones * 2 < self.table.len() {
            return;
        }
        let low = self
            .members
            .values()
            .map(|m| m.cursor)
            .min()
            .unwrap_or(self.version);
        let gone: Vec<(u64, Prefix)> = self
            .log
            .range(..=low)
            .filter(|(_, p)| self.table.get(p).is_some_and(|e| e.attrs.is_none()))
            .map(|(v, p)| (*v, *p))
            .collect();
        for (v, p) in gone {
            self.log.remove(&v);
            self.table.remove(&p);
            self.tombstones -= 1;
        }
    }

    /// What member `id` holds: the states it pulled that are not its own.
    /// (A state changed since it pulled is not known any more: the newer
    /// one is still to be pulled, and is not counted as sent.)
    pub fn sent(&self, id: PeerId) -> impl Iterator<Item = (Prefix, &Arc<Attrs>)> + '_ {
        let m = self.members.get(&id);
        self.table.iter().filter_map(move |(p, e)| {
            let m = m?;
            let a = e.attrs.as_ref()?;
            (e.version <= m.cursor && !is_own(m, id, e)).then_some((p, a))
        })
    }

    pub fn sent_for(&self, id: PeerId, prefix: &Prefix) -> Option<&Arc<Attrs>> {
        let m = self.members.get(&id)?;
        let e = self.table.get(prefix)?;
        let a = e.attrs.as_ref()?;
        (e.version <= m.cursor && !is_own(m, id, e)).then_some(a)
    }

    /// Prefixes held back from `id` because they do not fit one UPDATE.
    pub fn too_big_for(&self, id: PeerId) -> usize {
        self.too_big.values().filter(|from| **from != id).count()
    }

    /// Prefixes whose new state is still to be pulled by `id`.
    pub fn queued(&self, id: PeerId) -> usize {
        self.members.get(&id).map_or(0, |m| {
            self.log.range(m.cursor + 1..).count() + m.leftover.len()
        })
    }

    pub fn has_work(&self, id: PeerId) -> bool {
        self.members.get(&id).is_some_and(|m| {
            m.cursor < self.version
                || !m.leftover.is_empty()
                || !m.end_of_rib.is_empty()
                || !m.refreshes.is_empty()
        })
    }

    /// The peer asked for `family` again (RFC 2918). The FSM lets at most
    /// one request per family be in flight; a repeat while one is under
    /// way is folded into it.
    pub fn refresh(&mut self, id: PeerId, family: Family) {
        let Some(m) = self.members.get_mut(&id) else {
            return;
        };
        if m.refreshes.iter().all(|r| r.family != family) {
            let after = (family == Family::Ipv6Unicast).then(last_v4);
            m.refreshes.push(RefreshWalk { family, after });
        }
    }

    /// Up to `budget` prefixes' UPDATEs for member `id`, recorded as
    /// pulled. Changes come in version order; End-of-RIB once it has
    /// caught up the first time; refresh answers take at least half the
    /// budget while they run, so steady churn cannot hold one back for
    /// ever.
    pub fn pull(&mut self, id: PeerId, budget: usize) -> Pulled {
        let budget = budget.max(1);
        let Some(m) = self.members.get(&id) else {
            return Pulled::default();
        };
        let mut pulled = Pulled::default();
        if m.refreshes.is_empty() && m.leftover.is_empty() && m.cursor < self.version {
            let cursor = m.cursor;
            let batch = self.batch_at(cursor, budget);
            let m = self.members.get(&id).expect("looked up");
            if let Some(skip) = self.share_skipping(m, id, &batch) {
                let m = self.members.get_mut(&id).expect("looked up");
                m.cursor = batch.next;
                if !m.own.is_empty() {
                    for p in &batch.announced {
                        m.own.remove(p);
                    }
                }
                // Split horizon: it holds nothing for its own paths.
                for &i in &skip {
                    m.own.extend(update_prefixes(&batch.updates.updates[i]));
                }
                if skip.len() < batch.updates.updates.len() {
                    pulled.shared = Some(batch.updates.clone());
                    pulled.skip = skip;
                }
                if m.cursor == self.version {
                    pulled
                        .updates
                        .extend(m.end_of_rib.drain(..).map(end_of_rib));
                }
                return pulled;
            }
        }
        self.pull_own(id, budget, pulled)
    }

    /// The batch a member without exceptions gets at `cursor`.
    fn batch_at(&mut self, cursor: u64, budget: usize) -> Arc<Batch> {
        let cached = self
            .shared
            .iter()
            .find(|(c, b, _)| *c == cursor && *b == budget);
        if let Some((_, _, batch)) = cached {
            return batch.clone();
        }
        // Keyed by whose path it is, so that an UPDATE has one source.
        let mut b = UpdateBuilder::default();
        let mut batch = Batch {
            updates: Arc::default(),
            next: cursor,
            sources: Vec::new(),
            originators: Vec::new(),
            announced: Vec::new(),
            withdrawn: Vec::new(),
            first_withdrawal: None,
        };
        for (v, p) in self.log.range(cursor + 1..).take(budget) {
            let e = self.table.get(p).expect("logged entries are in the table");
            batch.next = *v;
            match &e.attrs {
                Some(a) => {
                    b.announce(e.from, a, *p);
                    batch.announced.push(*p);
                    batch.sources.push(e.from);
                    if let Some(o) = a.attrs.originator_id {
                        batch.originators.push(o);
                    }
                }
                None => {
                    b.withdraw(NOBODY, *p);
                    batch.withdrawn.push(*p);
                    batch.first_withdrawal.get_or_insert(*v);
                }
            }
        }
        batch.sources.sort_unstable();
        batch.sources.dedup();
        batch.originators.sort_unstable();
        batch.originators.dedup();
        let mut from = Vec::new();
        b.flush(&mut from);
        let (sources, updates) = from.into_iter().unzip();
        batch.updates = Arc::new(SharedUpdates {
            updates,
            sources,
            ..Default::default()
        });
        let batch = Arc::new(batch);
        if self.shared.len() == SHARED_BATCHES {
            self.shared.remove(0);
        }
        self.shared.push((cursor, budget, batch.clone()));
        batch
    }

    /// Whether member `m` may take the shared batch, and which of its
    /// UPDATEs it goes without: those carrying its own paths (split
    /// horizon), each an UPDATE of its own. Not when the batch withdraws
    /// what it holds nothing for, nor when it may hold an older state of
    /// one of its own paths' prefixes (that is withdrawn, by `pull_own`).
    fn share_skipping(&self, m: &Member, id: PeerId, batch: &Batch) -> Option<Vec<usize>> {
        if batch.first_withdrawal.is_some_and(|v| v <= m.joined_at)
            || (!m.own.is_empty() && batch.withdrawn.iter().any(|p| m.own.contains(p)))
        {
            return None;
        }
        let shared = &batch.updates;
        if batch.sources.binary_search(&id).is_err()
            && batch.originators.binary_search(&m.router_id).is_err()
        {
            return Some(Vec::new());
        }
        let mut skip = Vec::new();
        for (i, (u, from)) in shared.updates.iter().zip(&shared.sources).enumerate() {
            let own = *from == id || u.attributes.originator_id == Some(m.router_id);
            if !own {
                continue;
            }
            let older_held = update_prefixes(u).any(|p| {
                !m.own.contains(&p) && self.table.get(&p).is_some_and(|e| e.announced_before(m))
            });
            if older_held {
                return None;
            }
            skip.push(i);
        }
        Some(skip)
    }

    /// A pull for one member, with its exceptions.
    fn pull_own(&mut self, id: PeerId, budget: usize, mut pulled: Pulled) -> Pulled {
        let mut b = UpdateBuilder::default();
        let mut left = budget;
        let Some(mut m) = self.members.remove(&id) else {
            return pulled;
        };
        // What it holds from a group it left, unless announced here.
        let n = m.leftover.len().min(left);
        for p in m.leftover.drain(..n).collect::<Vec<_>>() {
            let replaced = self
                .table
                .get(&p)
                .is_some_and(|e| e.attrs.is_some() && !is_own(&m, id, e));
            if !replaced {
                b.withdraw(id, p);
            }
        }
        left -= n;
        if !m.refreshes.is_empty() && left > 0 {
            left -= self.walk_refreshes(&mut m, id, left.div_ceil(2), &mut b, &mut pulled);
        }
        let step: Vec<(u64, Prefix)> = self
            .log
            .range(m.cursor + 1..)
            .take(left)
            .map(|(v, p)| (*v, *p))
            .collect();
        left -= step.len();
        for (v, p) in step {
            m.cursor = v;
            let e = self.table.get(&p).expect("logged entries are in the table");
            self.apply(&mut m, id, p, e, &mut b);
        }
        if left > 0 && !m.refreshes.is_empty() {
            self.walk_refreshes(&mut m, id, left, &mut b, &mut pulled);
        }
        b.flush_into(&mut pulled.updates);
        if m.cursor == self.version && m.leftover.is_empty() {
            pulled
                .updates
                .extend(m.end_of_rib.drain(..).map(end_of_rib));
        }
        self.members.insert(id, m);
        pulled
    }

    /// One entry for member `m`, with its exceptions.
    fn apply(&self, m: &mut Member, id: PeerId, p: Prefix, e: &Entry, b: &mut UpdateBuilder) {
        match &e.attrs {
            Some(_) if is_own(m, id, e) => {
                // Split horizon: it holds nothing for this prefix now; an
                // older state it may hold goes.
                if m.own.insert(p) && e.announced_before(m) {
                    b.withdraw(id, p);
                }
            }
            Some(a) => {
                m.own.remove(&p);
                b.announce(id, a, p);
            }
            None => {
                let held_nothing = m.own.remove(&p) || e.version <= m.joined_at;
                if !held_nothing {
                    b.withdraw(id, p);
                }
            }
        }
    }

    /// Re-sends up to `max` prefixes of the member's refresh walks: what
    /// it was sent (a newer state is still to pull, and comes in order).
    fn walk_refreshes(
        &self,
        m: &mut Member,
        id: PeerId,
        max: usize,
        b: &mut UpdateBuilder,
        pulled: &mut Pulled,
    ) -> usize {
        let mut done = 0;
        while done < max {
            let Some(walk) = m.refreshes.first() else {
                break;
            };
            let family = walk.family;
            let step: Vec<(Prefix, Option<Arc<Attrs>>)> = self
                .table
                .range_from(walk.after)
                .take_while(|(p, _)| Family::of_prefix(p) == family)
                .take(max - done)
                .map(|(p, e)| {
                    let held = e.attrs.clone().filter(|_| {
                        e.version <= m.cursor && !is_own(m, id, e) && !m.own.contains(&p)
                    });
                    (p, held)
                })
                .collect();
            let finished = step.len() < max - done;
            done += step.len();
            if let Some((last, _)) = step.last() {
                m.refreshes[0].after = Some(*last);
            }
            for (p, a) in step {
                if let Some(a) = a {
                    b.announce(id, &a, p);
                }
            }
            if finished {
                m.refreshes.remove(0);
                pulled.refreshed.push(family);
            }
        }
        done
    }
}

impl Entry {
    /// Whether member `m` may hold an older state of this prefix than
    /// this one (its own path): announced at some point since it joined.
    fn announced_before(&self, m: &Member) -> bool {
        self.announced && self.version > m.joined_at
    }
}

/// Split horizon: `e` is member `id`'s own path, or carries its router id
/// as ORIGINATOR_ID (RFC 4456 §8: it would drop it).
fn is_own(m: &Member, id: PeerId, e: &Entry) -> bool {
    e.from == id
        || e.attrs
            .as_ref()
            .is_some_and(|a| a.attrs.originator_id == Some(m.router_id))
}

/// The prefixes an UPDATE announces.
fn update_prefixes(u: &Update) -> impl Iterator<Item = Prefix> + '_ {
    let v4 = u.nlri.iter().map(|n| Prefix::V4(*n));
    v4.chain(u.mp_reach.iter().flat_map(|r| r.nlri.iter().copied()))
}
