//! The installer: writes route operations through the batch writer, with
//! the nexthop objects they point at created before them and deleted after
//! them, and holds what installed routes hold ([`HopSets`]).
//!
//! The kernel guarantee relied on: a route naming a nexthop object
//! (RTA_NH_ID) is refused unless the object exists, and deleting an object
//! removes every route that uses it (remove_nexthop in
//! net/ipv4/nexthop.c). So creations go out before the routes that need
//! them, and deletions only after the last route using them is gone.

use std::sync::Arc;
use std::time::Instant;

use ipnet::IpNet;
use tables::{Id, Numbered};

use crate::hash::FastMap;
use crate::msg::KernelHop;
use crate::netlink::NlError;
use crate::nexthop::{ObjOp, Objects};
use crate::writer::{Op, Outcome, Writer};

/// What a route in the kernel holds: the kernel next hops it was written
/// with and the nexthop object it points at (0: none, the hops are in the
/// route). The object tells routes with the same hops apart once one
/// object shrank (see `Objects::shrink`) and a fresh one serves new routes.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Held {
    pub(crate) hops: Arc<[KernelHop]>,
    pub(crate) nhid: u32,
}

/// What routes in the kernel hold ([`Held`]), numbered so that a route
/// keeps 4 bytes, and, with nexthop objects, one reference to its object.
/// A write takes an object reference ([`HopSets::for_write`]), which the
/// route's installed set keeps.
pub(crate) struct HopSets {
    sets: Numbered<Held>,
    /// None: next hops are written into each route.
    objects: Option<Objects>,
}

impl HopSets {
    pub(crate) fn new(objects: Option<Objects>) -> HopSets {
        HopSets {
            sets: Numbered::default(),
            objects,
        }
    }

    /// The kernel next hops a route holding `id` was written with.
    #[cfg(test)]
    pub(crate) fn get(&self, id: Id) -> &[KernelHop] {
        &self.sets.get(id).hops
    }

    /// What a route holding `id` forwards on now: its object's current
    /// hops (fewer than it was written with after a member failed), or the
    /// hops written into the route.
    pub(crate) fn forwards(&self, id: Id) -> &[KernelHop] {
        let held = self.sets.get(id);
        self.objects
            .as_ref()
            .and_then(|o| o.forwards(held.nhid))
            .map_or(&held.hops[..], |f| &f[..])
    }

    /// The nexthop object a route holding `id` points at (0: none).
    pub(crate) fn object_of(&self, id: Id) -> u32 {
        self.sets.get(id).nhid
    }

    /// Whether a route holding `id` is on a group that shrank since it was
    /// written: it forwards on fewer hops than it was written with.
    pub(crate) fn shrunk(&self, id: Id) -> bool {
        self.forwards(id).len() != self.sets.get(id).hops.len()
    }

    /// The nexthop object to write a route with (0: none, hops in the
    /// route), counting the write as a user.
    pub(crate) fn for_write(&mut self, hops: &Arc<[KernelHop]>) -> u32 {
        self.objects.as_mut().map_or(0, |o| o.acquire(hops))
    }

    /// A route is written with `hops` through `nhid`: it holds them from
    /// now, with the object reference [`HopSets::for_write`] took (a
    /// refused write lets go of both, through [`HopSets::release`]).
    pub(crate) fn installed(&mut self, hops: &Arc<[KernelHop]>, nhid: u32) -> Id {
        let held = Held {
            hops: hops.clone(),
            nhid,
        };
        self.sets.acquire(&held, || {
            Arc::new(Held {
                hops: hops.clone(),
                nhid,
            })
        })
    }

    /// Whether kernel route `k` is what a route of ours holding `id` looks
    /// like: pointing at its object, or carrying its next hops.
    pub(crate) fn matches(&self, id: Id, k: &crate::msg::RawRoute) -> bool {
        let held = self.sets.get(id);
        if k.nhid != 0 {
            return held.nhid == k.nhid && self.objects.as_ref().is_some_and(|o| o.is_sent(k.nhid));
        }
        held.nhid == 0 && k.hops[..] == held.hops[..]
    }

    /// A route lets go of what it held installed.
    pub(crate) fn release(&mut self, id: Id) {
        if let Some(o) = self.objects.as_mut() {
            o.release(self.sets.get(id).nhid);
        }
        self.sets.release(id);
    }
}

pub(crate) struct Installer {
    writer: Writer,
    sets: HopSets,
}

impl Installer {
    pub(crate) fn new(writer: Writer, objects: Option<Objects>) -> Installer {
        Installer {
            writer,
            sets: HopSets::new(objects),
        }
    }

    pub(crate) fn sets_mut(&mut self) -> &mut HopSets {
        &mut self.sets
    }

    /// The hop set of nexthop object `id`, if it is one of ours.
    pub(crate) fn object_hops(&self, id: u32) -> Option<Arc<[KernelHop]>> {
        self.sets.objects.as_ref().and_then(|o| o.hops_of(id))
    }

    /// Re-points the groups some of whose hops `alive` says are gone at
    /// their survivors (see `Objects::shrink`); written with the next
    /// [`Installer::run`]. Returns how many.
    pub(crate) fn shrink_objects(&mut self, alive: impl Fn(&KernelHop) -> bool) -> usize {
        self.sets.objects.as_mut().map_or(0, |o| o.shrink(alive))
    }

    /// The hops of our objects that forward on no hop `alive` keeps (see
    /// `Objects::dead`).
    pub(crate) fn dead_objects(&self, alive: impl Fn(&KernelHop) -> bool) -> Vec<Arc<[KernelHop]>> {
        self.sets
            .objects
            .as_ref()
            .map(|o| o.dead(alive))
            .unwrap_or_default()
    }

    /// Forgets the objects whose hops `flushed` says the kernel removed
    /// (see `Objects::forget`).
    pub(crate) fn forget_objects(&mut self, flushed: impl Fn(&[KernelHop]) -> bool) {
        if let Some(o) = self.sets.objects.as_mut() {
            o.forget(flushed);
        }
    }

    /// Against the kernel's objects: the hop sets of ours it lacks, and
    /// stray objects of our protocol (see `Objects::compare`).
    pub(crate) fn compare_objects(
        &self,
        kernel: &[(u32, u8)],
    ) -> (Vec<Arc<[KernelHop]>>, Vec<u32>) {
        self.sets
            .objects
            .as_ref()
            .map(|o| o.compare(kernel))
            .unwrap_or_default()
    }

    /// Whether routes point at nexthop objects.
    pub(crate) fn uses_objects(&self) -> bool {
        self.sets.objects.is_some()
    }

    /// Our objects of a previous run, handed out once.
    pub(crate) fn take_previous_run(&mut self) -> Vec<u32> {
        self.sets
            .objects
            .as_mut()
            .map(|o| std::mem::take(&mut o.previous_run))
            .unwrap_or_default()
    }

    /// Creates the nexthop objects `ops` need, writes `ops`, then deletes
    /// the objects no route uses any more. `follow` learns each route op's
    /// outcome (after the installer has let go of a failed write's object)
    /// and says whether it leaves a tracked route unconfirmed. Returns true
    /// when the kernel's table must be read again: some outcome was unknown
    /// or error reports were lost.
    pub(crate) fn run<F: Follow>(&mut self, mut ops: Vec<Op>, follow: &mut F) -> bool {
        let mut reread = false;
        let refused = self.create_objects();
        if !refused.is_empty() {
            // Routes whose object the kernel refused are refused with its words.
            let mut pre = Vec::new();
            ops.retain(|op| match op {
                Op::Replace(_, _, nhid) | Op::Standby(_, _, nhid) if refused.contains_key(nhid) => {
                    pre.push((op.clone(), refused[nhid].clone()));
                    false
                }
                _ => true,
            });
            reread |= self.write_ops(Vec::new(), pre, follow);
        }
        reread |= self.sort_and_write(ops, follow);
        self.delete_objects();
        reread
    }

    /// Sends queued object creations; returns those refused, with why.
    fn create_objects(&mut self) -> FastMap<u32, NlError> {
        let mut refused = FastMap::default();
        let Some(creates) = self.sets.objects.as_mut().map(|o| o.take_creates()) else {
            return refused;
        };
        if creates.is_empty() {
            return refused;
        }
        self.writer
            .write(creates.into_iter().map(Op::Object), &mut |op, outcome| {
                if let (
                    Op::Object(
                        ObjOp::Single { id, .. }
                        | ObjOp::Group { id, .. }
                        | ObjOp::Regroup { id, .. },
                    ),
                    o,
                ) = (op, outcome)
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
        let objects = self.sets.objects.as_mut().expect("checked above");
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
        let Some(ids) = self.sets.objects.as_mut().map(|o| o.take_deletes()) else {
            return;
        };
        self.delete_object_ids(ids);
    }

    pub(crate) fn delete_object_ids(&mut self, ids: Vec<u32>) {
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

    fn sort_and_write<F: Follow>(&mut self, mut ops: Vec<Op>, follow: &mut F) -> bool {
        if ops.is_empty() {
            return false;
        }
        sort_for_kernel(&mut ops);
        self.write_ops(ops, Vec::new(), follow)
    }

    /// Writes `ops` and follows their outcomes; `refused` are ops not sent
    /// because the kernel already refused what they need.
    fn write_ops<F: Follow>(
        &mut self,
        ops: Vec<Op>,
        refused: Vec<(Op, NlError)>,
        follow: &mut F,
    ) -> bool {
        let started = Instant::now();
        let total = ops.len();
        let mut first_refusal: Option<(IpNet, String)> = None;
        let mut unknown = 0usize;
        let sets = &mut self.sets;
        let mut outcome_of = |op: Op, outcome: Outcome| {
            match (&op, &outcome) {
                // (A route write's object reference is let go by the
                // table with the route's installed set: see `follow`.)
                (Op::Replace(p, ..) | Op::Standby(p, ..), Outcome::Refused(e))
                    if first_refusal.is_none() =>
                {
                    first_refusal = Some((*p, e.to_string()));
                }
                (Op::Delete { prefix, .. } | Op::StandbyDelete(prefix), Outcome::Refused(e))
                    if e.errno != libc::ESRCH && first_refusal.is_none() =>
                {
                    first_refusal = Some((*prefix, e.to_string()));
                }
                _ => {}
            }
            if follow(op, outcome, sets) {
                unknown += 1;
            }
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
            return true;
        }
        false
    }
}

/// Learns a route op's outcome; true: a tracked route's state is unknown.
/// Generic, not `dyn`: it runs once per route written.
pub(crate) trait Follow: FnMut(Op, Outcome, &mut HopSets) -> bool {}

impl<F: FnMut(Op, Outcome, &mut HopSets) -> bool> Follow for F {}

/// Route ops in descending prefix order (objects first, unordered). On
/// every removal the kernel's trie rescans the children of the leaf's node
/// from the first one (update_suffix in net/ipv4/fib_trie.c); removing in
/// ascending order makes that scan walk past every child already removed,
/// quadratic in a full node. Measured with 1M IPv4 + 200k IPv6: removing
/// all took 16.9 s ascending (30 % of the writer's time in update_suffix).
/// Installs do not care about the direction.
fn sort_for_kernel(ops: &mut [Op]) {
    let key = |op: &Op| match op {
        Op::Replace(p, ..)
        | Op::Delete { prefix: p, .. }
        | Op::Standby(p, ..)
        | Op::StandbyDelete(p) => Some(*p),
        Op::Object(_) => None,
    };
    ops.sort_unstable_by_key(|op| std::cmp::Reverse(key(op)));
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::msg::hop;
    use crate::writer::Track;

    fn prefix_of(op: &Op) -> Option<IpNet> {
        match op {
            Op::Replace(p, ..) | Op::Delete { prefix: p, .. } => Some(*p),
            _ => None,
        }
    }

    #[test]
    fn route_ops_go_out_highest_prefix_first() {
        let h: Arc<[KernelHop]> = Arc::from([hop("10.0.0.1", 2)]);
        let del = |p: &str| Op::Delete {
            prefix: p.parse().unwrap(),
            metric: 20,
            track: Track::Outcome,
        };
        let mut ops = vec![
            del("10.0.0.0/24"),
            Op::Replace("10.0.2.0/24".parse().unwrap(), h.clone(), 0),
            del("2001:db8::/32"),
            del("10.0.1.0/24"),
            Op::Replace("10.0.0.0/16".parse().unwrap(), h, 0),
        ];
        sort_for_kernel(&mut ops);
        let order: Vec<String> = ops
            .iter()
            .map(|o| prefix_of(o).unwrap().to_string())
            .collect();
        assert_eq!(
            order,
            [
                "2001:db8::/32",
                "10.0.2.0/24",
                "10.0.1.0/24",
                "10.0.0.0/24",
                "10.0.0.0/16"
            ]
        );
    }

    #[test]
    fn a_written_route_holds_its_object_and_a_failed_one_lets_go() {
        let mut sets = HopSets::new(Some(Objects::new(
            186,
            crate::config::DEFAULT_NEXTHOP_IDS,
            Vec::new(),
        )));
        let h: Arc<[KernelHop]> = Arc::from([hop("10.0.0.1", 2)]);
        // Two routes written; one is done, one fails and lets go.
        let nhid = sets.for_write(&h);
        let id = sets.installed(&h, nhid);
        assert_eq!(sets.for_write(&h), nhid, "one object for one set");
        assert_eq!(sets.installed(&h, nhid), id, "one installed set");
        assert_eq!(sets.get(id), &h[..]);
        assert_eq!(sets.forwards(id), &h[..]);
        sets.release(id);
        let objects = sets.objects.as_mut().unwrap();
        objects.take_creates();
        assert!(
            objects.take_deletes().is_empty(),
            "the installed route holds it"
        );
        // The route goes: set and object are let go.
        sets.release(id);
        assert_eq!(sets.objects.as_mut().unwrap().take_deletes(), vec![nhid]);
    }

    #[test]
    fn without_objects_writes_name_no_object() {
        let mut sets = HopSets::new(None);
        let h: Arc<[KernelHop]> = Arc::from([hop("10.0.0.1", 2)]);
        assert_eq!(sets.for_write(&h), 0);
        let id = sets.installed(&h, 0);
        assert_eq!(sets.installed(&h, 0), id, "one number per set");
        sets.release(id);
        sets.release(id);
    }
}
