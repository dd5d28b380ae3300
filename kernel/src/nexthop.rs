//! Kernel nexthop objects (`ip nexthop`, Linux 5.3+): one object per distinct
//! kernel next hop, one group object per distinct multipath set, and routes
//! that point at them with RTA_NH_ID.
//!
//! Why: a route message that carries its own gateway makes the kernel
//! validate the gateway and build next-hop state for every route
//! (`fib_create_info`; for IPv6 also a per-CPU route cache per route). A
//! route that names an object skips all of that; the object is validated
//! once. With a full table and a handful of next hops this is most of the
//! kernel's work.
//!
//! [`Objects`] owns the objects kroute created in this run: it hands out
//! ids, counts the installed routes (and groups) using each object, and
//! queues creations and deletions for the writer. netlink-packet-route has
//! no nexthop messages, so they are encoded here (include/uapi/linux/nexthop.h).

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;

use ipnet::IpNet;

use crate::hash::{FastMap, FastSet};
use crate::msg::{KernelHop, RouteKey};
use crate::netlink::NLMSG_HDRLEN;

pub(crate) const RTM_NEWNEXTHOP: u16 = 104;
pub(crate) const RTM_DELNEXTHOP: u16 = 105;
const RTM_GETNEXTHOP: u16 = 106;
pub(crate) const RTNLGRP_NEXTHOP: u32 = 32;

const NHA_ID: u16 = 1;
const NHA_GROUP: u16 = 2;
const NHA_OIF: u16 = 5;
const NHA_GATEWAY: u16 = 6;

const RTA_DST: u16 = 1;
const RTA_PRIORITY: u16 = 6;
const RTA_TABLE: u16 = 15;
const RTA_NH_ID: u16 = 30;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;

const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = libc::AF_INET as u8;
const AF_INET6: u8 = libc::AF_INET6 as u8;
const RTN_UNICAST: u8 = 1;

/// Ids we hand out by default start here (`FibConfig::nexthop_ids`); ids in
/// use at start are skipped, and creation is exclusive, so a clash is
/// refused rather than overwriting someone's object.
#[cfg(test)]
const FIRST_ID: u32 = *crate::config::DEFAULT_NEXTHOP_IDS.start();

fn family(a: &IpAddr) -> u8 {
    match a {
        IpAddr::V4(_) => AF_INET,
        IpAddr::V6(_) => AF_INET6,
    }
}

/// A netlink attribute holding an address (4 or 16 bytes).
pub(crate) fn push_addr(buf: &mut Vec<u8>, kind: u16, a: &IpAddr) {
    match a {
        IpAddr::V4(v) => push_attr(buf, kind, &v.octets()),
        IpAddr::V6(v) => push_attr(buf, kind, &v.octets()),
    }
}

/// A netlink attribute (RFC 3549 TLV, padded to 4 bytes).
pub(crate) fn push_attr(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(buf.len() + ((len + 3) & !3) - len, 0);
}

/// Starts a message in `buf`; [`finish`] writes its length.
fn begin(buf: &mut Vec<u8>, kind: u16, flags: u16, seq: u32) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    start
}

fn finish(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

/// struct nhmsg: family, scope, protocol, reserved, flags.
fn nhmsg(buf: &mut Vec<u8>, family: u8, protocol: u8) {
    buf.extend_from_slice(&[family, 0, protocol, 0]);
    buf.extend_from_slice(&0u32.to_ne_bytes());
}

/// RTM_NEWNEXTHOP for one gateway on one interface (exclusive create).
pub(crate) fn push_new_single(buf: &mut Vec<u8>, id: u32, hop: &KernelHop, protocol: u8) {
    let start = begin(
        buf,
        RTM_NEWNEXTHOP,
        NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL,
        0,
    );
    nhmsg(buf, family(&hop.gateway), protocol);
    push_attr(buf, NHA_ID, &id.to_ne_bytes());
    push_attr(buf, NHA_OIF, &hop.ifindex.to_ne_bytes());
    push_addr(buf, NHA_GATEWAY, &hop.gateway);
    finish(buf, start);
}

/// RTM_NEWNEXTHOP for a multipath group of existing objects, equal
/// weights: an exclusive create, or (`replace`) new members for an
/// existing group.
pub(crate) fn push_group(buf: &mut Vec<u8>, id: u32, members: &[u32], protocol: u8, replace: bool) {
    let flags = if replace {
        NLM_F_REQUEST | NLM_F_REPLACE
    } else {
        NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL
    };
    let start = begin(buf, RTM_NEWNEXTHOP, flags, 0);
    nhmsg(buf, AF_UNSPEC, protocol);
    push_attr(buf, NHA_ID, &id.to_ne_bytes());
    // struct nexthop_grp { u32 id; u8 weight (0 means 1); u8 weight_high; u16 resvd }
    let mut grp = Vec::with_capacity(members.len() * 8);
    for m in members {
        grp.extend_from_slice(&m.to_ne_bytes());
        grp.extend_from_slice(&[0, 0, 0, 0]);
    }
    push_attr(buf, NHA_GROUP, &grp);
    finish(buf, start);
}

pub(crate) fn push_del(buf: &mut Vec<u8>, id: u32) {
    let start = begin(buf, RTM_DELNEXTHOP, NLM_F_REQUEST, 0);
    nhmsg(buf, AF_UNSPEC, 0);
    push_attr(buf, NHA_ID, &id.to_ne_bytes());
    finish(buf, start);
}

/// RTM_NEWROUTE (create or replace) pointing at object `nhid`.
pub(crate) fn push_route(buf: &mut Vec<u8>, prefix: &IpNet, key: &RouteKey, nhid: u32) {
    let start = begin(
        buf,
        crate::netlink::RTM_NEWROUTE,
        NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE,
        0,
    );
    let dst = prefix.network();
    let table = if key.table < 256 { key.table as u8 } else { 0 };
    // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope
    // (universe), type, flags.
    buf.extend_from_slice(&[
        family(&dst),
        prefix.prefix_len(),
        0,
        0,
        table,
        key.protocol,
        0,
        RTN_UNICAST,
    ]);
    buf.extend_from_slice(&0u32.to_ne_bytes());
    push_addr(buf, RTA_DST, &dst);
    push_attr(buf, RTA_TABLE, &key.table.to_ne_bytes());
    push_attr(buf, RTA_PRIORITY, &key.metric.to_ne_bytes());
    push_attr(buf, RTA_NH_ID, &nhid.to_ne_bytes());
    finish(buf, start);
}

pub(crate) fn dump_request(seq: u32) -> Vec<u8> {
    let mut buf = Vec::with_capacity(32);
    let start = begin(&mut buf, RTM_GETNEXTHOP, NLM_F_REQUEST | NLM_F_DUMP, seq);
    nhmsg(&mut buf, AF_UNSPEC, 0);
    finish(&mut buf, start);
    buf
}

/// (id, protocol) of an RTM_NEWNEXTHOP/RTM_DELNEXTHOP message.
pub(crate) fn parse(raw: &[u8]) -> Option<(u32, u8)> {
    let protocol = *raw.get(NLMSG_HDRLEN + 2)?;
    let mut attrs = raw.get(NLMSG_HDRLEN + 8..)?;
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
        if len < 4 || len > attrs.len() {
            break;
        }
        if kind == NHA_ID && len >= 8 {
            let id = u32::from_ne_bytes([attrs[4], attrs[5], attrs[6], attrs[7]]);
            return Some((id, protocol));
        }
        attrs = &attrs[((len + 3) & !3).min(attrs.len())..];
    }
    None
}

/// A change for the writer to send.
#[derive(Debug, Clone)]
pub(crate) enum ObjOp {
    Single {
        id: u32,
        hop: KernelHop,
    },
    Group {
        id: u32,
        members: Vec<u32>,
    },
    /// An existing group re-pointed at fewer members (RTM_NEWNEXTHOP with
    /// NLM_F_REPLACE): every route using it follows, none is rewritten.
    Regroup {
        id: u32,
        members: Vec<u32>,
    },
    Delete {
        id: u32,
    },
}

struct Obj {
    /// The kernel next hops it was created for.
    hops: Arc<[KernelHop]>,
    /// What it forwards on now: `hops`, or, for a group some of whose
    /// members failed, the survivors (see [`Objects::shrink`]).
    forwards: Arc<[KernelHop]>,
    /// A group's member objects (one per hop of `forwards`).
    members: Vec<u32>,
    /// Installed routes and writes in flight using it, plus (for a single
    /// hop) groups containing it.
    refs: u32,
    /// Its creation is sent (or queued to be); false once refused.
    sent: bool,
}

/// The objects of this run, by id. An object that forwards on exactly the
/// hops it was created for is also found by those hops and shared by every
/// new route with them (one hop: a single object; more: a group of single
/// objects). A shrunk group is not: it serves the routes that were on it
/// when a member failed, until they move or go.
pub(crate) struct Objects {
    /// Ours are of this protocol and in this id range (other FIBs of the
    /// namespace, for other tables, use other ranges).
    protocol: u8,
    ids: RangeInclusive<u32>,
    by_id: FastMap<u32, Obj>,
    /// Ids of the objects that forward on exactly their hops, by hops.
    fresh: FastMap<Arc<[KernelHop]>, u32>,
    next_id: u32,
    /// Ids that existed when we started (anyone's), never handed out.
    taken: FastSet<u32>,
    /// Our objects from a previous run: deleted at initial sync, once no
    /// kept route of that run needs them.
    pub(crate) previous_run: Vec<u32>,
    creates: Vec<ObjOp>,
    deletes: Vec<u32>,
}

/// Whether an object of our protocol with id `id` is ours, for a FIB
/// handing out `ids` (see `FibConfig::nexthop_ids`).
fn owns(ids: &RangeInclusive<u32>, id: u32) -> bool {
    let tables = crate::config::TABLE_NEXTHOP_IDS;
    if tables.contains(ids.start()) {
        ids.contains(&id)
    } else {
        !tables.contains(&id)
    }
}

impl Objects {
    /// `existing`: every (id, protocol) the kernel holds now.
    pub(crate) fn new(protocol: u8, ids: RangeInclusive<u32>, existing: Vec<(u32, u8)>) -> Objects {
        let previous_run = existing
            .iter()
            .filter(|(id, p)| *p == protocol && owns(&ids, *id))
            .map(|(id, _)| *id)
            .collect();
        Objects {
            protocol,
            next_id: *ids.start(),
            ids,
            by_id: FastMap::default(),
            fresh: FastMap::default(),
            taken: existing.into_iter().map(|(id, _)| id).collect(),
            previous_run,
            creates: Vec::new(),
            deletes: Vec::new(),
        }
    }

    fn allocate(&mut self) -> u32 {
        loop {
            let id = self.next_id;
            self.next_id = match id.checked_add(1) {
                Some(next) if self.ids.contains(&next) => next,
                _ => *self.ids.start(),
            };
            // Not one queued for deletion either: a route planned after
            // another let go of an object in the same step must not get its
            // number, deleted (with the routes on it) once the step is written.
            if id != 0
                && !self.taken.contains(&id)
                && !self.by_id.contains_key(&id)
                && !self.deletes.contains(&id)
            {
                return id;
            }
        }
    }

    /// The object for `hops`, counting one more user; queues its creation
    /// (and its members') if it is new.
    pub(crate) fn acquire(&mut self, hops: &Arc<[KernelHop]>) -> u32 {
        if let Some(&id) = self.fresh.get(&hops[..]) {
            self.by_id.get_mut(&id).expect("fresh ids are live").refs += 1;
            return id;
        }
        let id = self.allocate();
        let members = if let [hop] = &hops[..] {
            self.creates.push(ObjOp::Single { id, hop: *hop });
            Vec::new()
        } else {
            let members: Vec<u32> = hops
                .iter()
                .map(|h| self.acquire(&Arc::from([*h])))
                .collect();
            self.creates.push(ObjOp::Group {
                id,
                members: members.clone(),
            });
            members
        };
        self.by_id.insert(
            id,
            Obj {
                hops: hops.clone(),
                forwards: hops.clone(),
                members,
                refs: 1,
                sent: true,
            },
        );
        self.fresh.insert(hops.clone(), id);
        id
    }

    /// One user fewer of object `id`; an object nobody uses is queued for
    /// deletion, and lets go of its members.
    pub(crate) fn release(&mut self, id: u32) {
        let Some(o) = self.by_id.get_mut(&id) else {
            return;
        };
        o.refs -= 1;
        if o.refs > 0 {
            return;
        }
        let o = self.by_id.remove(&id).expect("present");
        if self.fresh.get(&o.hops[..]) == Some(&id) {
            self.fresh.remove(&o.hops[..]);
        }
        if o.sent {
            self.deletes.push(id);
        }
        for m in o.members {
            self.release(m);
        }
    }

    /// What object `id` forwards on now.
    pub(crate) fn forwards(&self, id: u32) -> Option<&Arc<[KernelHop]>> {
        self.by_id.get(&id).map(|o| &o.forwards)
    }

    /// Prefix-independent failover: every group that forwards on a hop
    /// `alive` says is gone, and on at least one that is not, is
    /// re-pointed at its survivors with one replace each (queued with the
    /// creations) — the routes using it follow without a write of their
    /// own. When the kernel flushed the failed member itself (carrier
    /// loss: it removes the member from its groups), the replace only
    /// confirms what it did. Groups left with no survivor, and single
    /// objects, are not touched: their routes are written again (the
    /// kernel removes a group with its last member, and its routes with
    /// it). Returns how many groups were re-pointed.
    pub(crate) fn shrink(&mut self, alive: impl Fn(&KernelHop) -> bool) -> usize {
        let mut shrunk = Vec::new();
        for (&id, o) in &self.by_id {
            if o.members.is_empty() || !o.sent || o.forwards.iter().all(&alive) {
                continue;
            }
            let keep: Vec<usize> = (0..o.forwards.len())
                .filter(|&i| alive(&o.forwards[i]))
                .collect();
            if !keep.is_empty() {
                shrunk.push((id, keep));
            }
        }
        let n = shrunk.len();
        for (id, keep) in shrunk {
            let o = self.by_id.get_mut(&id).expect("listed above");
            let forwards: Arc<[KernelHop]> = keep.iter().map(|&i| o.forwards[i]).collect();
            let members: Vec<u32> = keep.iter().map(|&i| o.members[i]).collect();
            let dropped: Vec<u32> = o
                .members
                .iter()
                .copied()
                .filter(|m| !members.contains(m))
                .collect();
            o.forwards = forwards;
            o.members = members.clone();
            let hops = o.hops.clone();
            if self.fresh.get(&hops[..]) == Some(&id) {
                // New routes with these hops get an object of their own.
                self.fresh.remove(&hops[..]);
            }
            self.creates.push(ObjOp::Regroup { id, members });
            for m in dropped {
                self.release(m);
            }
        }
        n
    }

    /// The hops of every object (of ours, in the kernel) that forwards on
    /// nothing `alive` says is alive: single objects of a dead hop, and
    /// groups none of whose members survive.
    pub(crate) fn dead(&self, alive: impl Fn(&KernelHop) -> bool) -> Vec<Arc<[KernelHop]>> {
        self.by_id
            .values()
            .filter(|o| o.sent && !o.forwards.iter().any(&alive))
            .map(|o| o.forwards.clone())
            .collect()
    }

    /// Creations (and re-pointings) to send, members before their groups.
    /// Whoever takes them sends them before any route that uses them.
    pub(crate) fn take_creates(&mut self) -> Vec<ObjOp> {
        std::mem::take(&mut self.creates)
    }

    /// The kernel refused to create `id`: new users get a fresh try. Its
    /// users are refused too and release it; `sent` is cleared so no
    /// deletion is sent for it.
    pub(crate) fn refused(&mut self, id: u32) {
        if let Some(o) = self.by_id.get_mut(&id) {
            o.sent = false;
            if self.fresh.get(&o.hops[..]) == Some(&id) {
                self.fresh.remove(&o.hops[..]);
            }
        }
    }

    /// Deletions to send, groups before their members.
    pub(crate) fn take_deletes(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.deletes)
    }

    /// What object `id` forwards on, if it is one of ours.
    pub(crate) fn hops_of(&self, id: u32) -> Option<Arc<[KernelHop]>> {
        self.by_id.get(&id).map(|o| o.forwards.clone())
    }

    /// Forgets every object whose current hops match `gone` (the kernel
    /// flushed or changed them), so the next use creates a fresh one; the
    /// old ids are queued for deletion in case the kernel still has them.
    /// Call after the routes using them have released them.
    pub(crate) fn forget(&mut self, gone: impl Fn(&[KernelHop]) -> bool) {
        let ids: Vec<(u32, bool)> = self
            .by_id
            .iter()
            .filter(|(_, o)| gone(&o.forwards))
            .map(|(id, o)| (*id, !o.members.is_empty()))
            .collect();
        // Groups first: their deletion must precede their members'.
        let (groups, singles): (Vec<_>, Vec<_>) = ids.into_iter().partition(|(_, g)| *g);
        for (id, _) in groups.into_iter().chain(singles) {
            if let Some(o) = self.by_id.remove(&id) {
                if self.fresh.get(&o.hops[..]) == Some(&id) {
                    self.fresh.remove(&o.hops[..]);
                }
                if o.sent {
                    self.deletes.push(id);
                }
            }
        }
    }

    /// Whether `id` is one of ours and in the kernel (as far as we know).
    pub(crate) fn is_sent(&self, id: u32) -> bool {
        self.by_id.get(&id).is_some_and(|o| o.sent)
    }

    /// Against the kernel's objects (`kernel`: every (id, protocol)): the
    /// hop sets of ours it lacks, and the objects of our protocol that are
    /// neither this run's nor a previous run's (strays).
    pub(crate) fn compare(&self, kernel: &[(u32, u8)]) -> (Vec<Arc<[KernelHop]>>, Vec<u32>) {
        let present: FastSet<u32> = kernel.iter().map(|(id, _)| *id).collect();
        let missing = self
            .by_id
            .iter()
            .filter(|(id, o)| o.sent && !present.contains(id))
            .map(|(_, o)| o.forwards.clone())
            .collect();
        let strays = kernel
            .iter()
            .filter(|(id, p)| {
                *p == self.protocol
                    && owns(&self.ids, *id)
                    && !self.by_id.contains_key(id)
                    && !self.previous_run.contains(id)
            })
            .map(|(id, _)| *id)
            .collect();
        (missing, strays)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::msg::hop;

    #[test]
    fn a_route_written_with_an_object_reads_back_with_its_id() {
        let key = RouteKey {
            table: 1000,
            protocol: 186,
            metric: 20,
        };
        let p: ipnet::IpNet = "10.1.2.0/24".parse().unwrap();
        let mut buf = Vec::new();
        push_route(&mut buf, &p, &key, 77);
        let r = crate::msg::raw_route(&buf).unwrap();
        assert_eq!((r.prefix, r.nhid, r.table, r.hops.len()), (p, 77, 1000, 0));
    }

    #[test]
    fn objects_are_shared_counted_and_deleted_when_unused() {
        let existing = vec![(FIRST_ID, 11), (7, 186)];
        let mut o = Objects::new(186, crate::config::DEFAULT_NEXTHOP_IDS, existing);
        assert_eq!(o.previous_run, vec![7]);
        let a: Arc<[KernelHop]> = Arc::from([hop("10.0.0.1", 2)]);
        let ab: Arc<[KernelHop]> = Arc::from([hop("10.0.0.1", 2), hop("10.0.1.1", 3)]);
        let id_a = o.acquire(&a);
        assert_ne!(id_a, FIRST_ID, "an id in use is skipped");
        assert_eq!(o.acquire(&a), id_a);
        let id_ab = o.acquire(&ab);
        let creates = o.take_creates();
        // a, then b (member), then the group; a is not created twice.
        assert_eq!(creates.len(), 3);
        assert!(
            matches!(&creates[2], ObjOp::Group { id, members } if *id == id_ab && members[0] == id_a)
        );
        o.release(id_a);
        o.release(id_a);
        assert!(o.take_deletes().is_empty(), "the group still uses a");
        o.release(id_ab);
        let d = o.take_deletes();
        assert_eq!(d.len(), 3);
        assert_eq!(d[0], id_ab, "group first");
        assert_eq!(o.len(), 0);
    }

    #[test]
    fn ids_stay_in_the_range_and_other_fibs_objects_are_not_ours() {
        let table100 = crate::config::nexthop_ids_of_table(100);
        let table200 = *crate::config::nexthop_ids_of_table(200).start();
        let (first, last) = (*table100.start(), *table100.end());
        let existing = vec![
            (first + 1, 11),
            (last, 186),
            (table200, 186),
            (FIRST_ID, 186),
        ];
        let mut o = Objects::new(186, table100.clone(), existing.clone());
        assert_eq!(o.previous_run, vec![last], "only its own range");
        let ids: Vec<u32> = ["10.0.0.1", "10.0.0.2"]
            .iter()
            .map(|a| o.acquire(&Arc::from([hop(a, 2)])))
            .collect();
        assert_eq!(ids, vec![first, first + 2], "an id in use is skipped");
        let (_, strays) = o.compare(&[(table200, 186), (FIRST_ID, 186)]);
        assert!(
            strays.is_empty(),
            "other FIBs' objects are no strays of this one"
        );
        // The main FIB leaves every table FIB's objects alone.
        let main = Objects::new(186, crate::config::DEFAULT_NEXTHOP_IDS, existing);
        assert_eq!(main.previous_run, vec![FIRST_ID]);
        // Wraps within its range.
        let mut tiny = Objects::new(186, 0x4000_0000..=0x4000_0001, vec![]);
        let a = tiny.acquire(&Arc::from([hop("10.0.0.1", 2)]));
        let b = tiny.acquire(&Arc::from([hop("10.0.0.2", 2)]));
        tiny.release(a);
        let _ = tiny.take_deletes();
        let c = tiny.acquire(&Arc::from([hop("10.0.0.3", 2)]));
        assert_eq!((a, b, c), (0x4000_0000, 0x4000_0001, 0x4000_0000));
        // An id queued for deletion is not handed out again before the
        // deletion is taken (written).
        let mut tiny = Objects::new(186, 0x4000_0000..=0x4000_0003, vec![]);
        let ids: Vec<u32> = (1..=4)
            .map(|i| tiny.acquire(&Arc::from([hop(&format!("10.0.0.{i}"), 2)])))
            .collect();
        tiny.release(ids[3]);
        assert_eq!(tiny.take_deletes(), vec![ids[3]], "written: free again");
        tiny.release(ids[0]);
        let next = tiny.acquire(&Arc::from([hop("10.0.0.5", 2)]));
        assert_eq!(next, ids[3], "not ids[0], whose deletion is still queued");
        assert_eq!(tiny.take_deletes(), vec![ids[0]]);
    }

    #[test]
    fn refused_objects_are_not_deleted_and_forgotten_ones_are() {
        let mut o = Objects::new(186, crate::config::DEFAULT_NEXTHOP_IDS, vec![]);
        let a: Arc<[KernelHop]> = Arc::from([hop("10.0.0.1", 2)]);
        let id = o.acquire(&a);
        o.take_creates();
        o.refused(id);
        o.release(id);
        assert!(o.take_deletes().is_empty());
        let id = o.acquire(&a);
        o.take_creates();
        o.forget(|h| h.iter().any(|k| k.ifindex == 2));
        assert_eq!(o.take_deletes(), vec![id]);
        let id2 = o.acquire(&a);
        assert_ne!(id, id2, "a forgotten object is created anew");
    }

    #[test]
    fn a_group_shrinks_to_its_survivors_and_new_users_get_a_fresh_one() {
        let mut o = Objects::new(186, crate::config::DEFAULT_NEXTHOP_IDS, vec![]);
        let (a, b, c) = (hop("10.0.0.1", 2), hop("10.0.1.1", 3), hop("10.0.2.1", 4));
        let abc: Arc<[KernelHop]> = Arc::from([a, b, c]);
        let ab: Arc<[KernelHop]> = Arc::from([a, b]);
        let single_a: Arc<[KernelHop]> = Arc::from([a]);
        let g = o.acquire(&abc);
        let g2 = o.acquire(&ab);
        let s = o.acquire(&single_a);
        o.take_creates();
        // a fails: both groups keep forwarding on what is left, one
        // replace each; the single object is left for its routes to move.
        assert_eq!(o.shrink(|h| *h != a), 2);
        let ops = o.take_creates();
        assert_eq!(ops.len(), 2);
        let mut sizes: Vec<usize> = ops
            .iter()
            .map(|op| match op {
                ObjOp::Regroup { members, .. } => members.len(),
                other => panic!("not a regroup: {other:?}"),
            })
            .collect();
        sizes.sort();
        assert_eq!(sizes, [1, 2]);
        assert_eq!(o.forwards(g).unwrap()[..], [b, c]);
        assert_eq!(o.forwards(g2).unwrap()[..], [b]);
        assert_eq!(o.forwards(s).unwrap()[..], [a]);
        assert!(
            o.take_deletes().is_empty(),
            "a's single object still has a user"
        );
        // Nothing more to do on a second look.
        assert_eq!(o.shrink(|h| *h != a), 0);
        // Routes wanting a, b, c again get a new object forwarding on all.
        let fresh = o.acquire(&abc);
        assert_ne!(fresh, g);
        assert_eq!(o.forwards(fresh).unwrap()[..], [a, b, c]);
        // The shrunk group goes with its last route, and lets go of its
        // remaining members only.
        o.release(g);
        assert_eq!(o.take_deletes(), vec![g]);
        // A group with no survivor is not shrunk (the kernel removes it):
        // with only c alive the fresh group shrinks to c, g2 (b) stays.
        assert_eq!(o.shrink(|h| *h == c), 1);
        assert_eq!(o.forwards(fresh).unwrap()[..], [c]);
        assert_eq!(o.forwards(g2).unwrap()[..], [b]);
    }

    #[test]
    fn messages_parse_back() {
        let mut b = Vec::new();
        push_new_single(&mut b, 42, &hop("fd00::1", 3), 186);
        assert_eq!(
            u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize,
            b.len()
        );
        assert_eq!(parse(&b), Some((42, 186)));
        let mut b = Vec::new();
        push_del(&mut b, 9);
        assert_eq!(parse(&b), Some((9, 0)));
    }
}
