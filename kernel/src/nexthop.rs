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

/// Ids we hand out start here, away from the low ids `ip nexthop` users
/// and zebra pick; ids in use at start are skipped, and creation is
/// exclusive, so a clash is refused rather than overwriting someone's object.
const FIRST_ID: u32 = 0x6b72_0000;

fn family(a: &IpAddr) -> u8 {
    match a {
        IpAddr::V4(_) => AF_INET,
        IpAddr::V6(_) => AF_INET6,
    }
}

fn push_addr(buf: &mut Vec<u8>, kind: u16, a: &IpAddr) {
    match a {
        IpAddr::V4(v) => push_attr(buf, kind, &v.octets()),
        IpAddr::V6(v) => push_attr(buf, kind, &v.octets()),
    }
}

fn push_attr(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
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

/// RTM_NEWNEXTHOP for a multipath group of existing objects, equal weights.
pub(crate) fn push_new_group(buf: &mut Vec<u8>, id: u32, members: &[u32], protocol: u8) {
    let start = begin(
        buf,
        RTM_NEWNEXTHOP,
        NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL,
        0,
    );
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
    Single { id: u32, hop: KernelHop },
    Group { id: u32, members: Vec<u32> },
    Delete { id: u32 },
}

struct Obj {
    id: u32,
    /// Installed routes using it, plus (for a single hop) groups containing it.
    refs: u32,
    /// Its creation is sent (or queued to be); false once refused.
    sent: bool,
}

/// The objects of this run, keyed by their kernel next-hop set (one hop:
/// a single object; more: a group of single objects).
pub(crate) struct Objects {
    /// Ours are of this protocol.
    protocol: u8,
    by_hops: FastMap<Arc<[KernelHop]>, Obj>,
    next_id: u32,
    /// Ids that existed when we started (anyone's), never handed out.
    taken: FastSet<u32>,
    /// Our objects from a previous run: deleted at initial sync, once no
    /// kept route of that run needs them.
    pub(crate) previous_run: Vec<u32>,
    creates: Vec<ObjOp>,
    deletes: Vec<u32>,
}

impl Objects {
    /// `existing`: every (id, protocol) the kernel holds now.
    pub(crate) fn new(protocol: u8, existing: Vec<(u32, u8)>) -> Objects {
        let previous_run = existing
            .iter()
            .filter(|(_, p)| *p == protocol)
            .map(|(id, _)| *id)
            .collect();
        Objects {
            protocol,
            by_hops: FastMap::default(),
            next_id: FIRST_ID,
            taken: existing.into_iter().map(|(id, _)| id).collect(),
            previous_run,
            creates: Vec::new(),
            deletes: Vec::new(),
        }
    }

    fn allocate(&mut self) -> u32 {
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.checked_add(1).unwrap_or(FIRST_ID);
            if id != 0 && !self.taken.contains(&id) {
                return id;
            }
        }
    }

    /// The object for `hops`, counting one more user; queues its creation
    /// (and its members') if it is new.
    pub(crate) fn acquire(&mut self, hops: &Arc<[KernelHop]>) -> u32 {
        if let Some(o) = self.by_hops.get_mut(&hops[..]) {
            o.refs += 1;
            return o.id;
        }
        let id = self.allocate();
        if let [hop] = &hops[..] {
            self.creates.push(ObjOp::Single { id, hop: *hop });
        } else {
            let members = hops
                .iter()
                .map(|h| self.acquire(&Arc::from([*h])))
                .collect();
            self.creates.push(ObjOp::Group { id, members });
        }
        self.by_hops.insert(
            hops.clone(),
            Obj {
                id,
                refs: 1,
                sent: true,
            },
        );
        id
    }

    /// One user fewer; an object nobody uses is queued for deletion.
    pub(crate) fn release(&mut self, hops: &[KernelHop]) {
        let Some(o) = self.by_hops.get_mut(hops) else {
            return;
        };
        o.refs -= 1;
        if o.refs > 0 {
            return;
        }
        let o = self.by_hops.remove(hops).expect("present");
        if o.sent {
            self.deletes.push(o.id);
        }
        if hops.len() > 1 {
            for h in hops {
                self.release(&[*h]);
            }
        }
    }

    /// Creations to send, members before their groups. Whoever takes them
    /// sends them before any route that uses them.
    pub(crate) fn take_creates(&mut self) -> Vec<ObjOp> {
        std::mem::take(&mut self.creates)
    }

    /// The kernel refused to create `id`: forget it so the next use tries
    /// again. Its users are refused too and release it; `sent` is cleared
    /// so no deletion is sent for it.
    pub(crate) fn refused(&mut self, id: u32) {
        if let Some(o) = self.by_hops.values_mut().find(|o| o.id == id) {
            o.sent = false;
        }
    }

    /// Deletions to send, groups before their members.
    pub(crate) fn take_deletes(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.deletes)
    }

    /// The hop set of object `id`, if it is one of ours.
    pub(crate) fn hops_of(&self, id: u32) -> Option<Arc<[KernelHop]>> {
        self.by_hops
            .iter()
            .find(|(_, o)| o.id == id)
            .map(|(h, _)| h.clone())
    }

    /// Forgets every object whose hops match `gone` (the kernel flushed or
    /// changed them), so the next use creates a fresh one; the old ids are
    /// queued for deletion in case the kernel still has them. Call after
    /// the routes using them have released them.
    pub(crate) fn forget(&mut self, gone: impl Fn(&[KernelHop]) -> bool) {
        let keys: Vec<Arc<[KernelHop]>> =
            self.by_hops.keys().filter(|k| gone(k)).cloned().collect();
        // Groups first: their deletion must precede their members'.
        let (groups, singles): (Vec<_>, Vec<_>) = keys.into_iter().partition(|k| k.len() > 1);
        for k in groups.into_iter().chain(singles) {
            if let Some(o) = self.by_hops.remove(&k[..]) {
                if o.sent {
                    self.deletes.push(o.id);
                }
            }
        }
    }

    /// The object of `hops`, if one of ours exists in the kernel.
    pub(crate) fn id_of(&self, hops: &[KernelHop]) -> Option<u32> {
        self.by_hops.get(hops).filter(|o| o.sent).map(|o| o.id)
    }

    /// Against the kernel's objects (`kernel`: every (id, protocol)): the
    /// hop sets of ours it lacks, and the objects of our protocol that are
    /// neither this run's nor a previous run's (strays).
    pub(crate) fn compare(&self, kernel: &[(u32, u8)]) -> (Vec<Arc<[KernelHop]>>, Vec<u32>) {
        let present: FastSet<u32> = kernel.iter().map(|(id, _)| *id).collect();
        let missing = self
            .by_hops
            .iter()
            .filter(|(_, o)| o.sent && !present.contains(&o.id))
            .map(|(h, _)| h.clone())
            .collect();
        let ours: FastSet<u32> = self.by_hops.values().map(|o| o.id).collect();
        let strays = kernel
            .iter()
            .filter(|(id, p)| {
                *p == self.protocol && !ours.contains(id) && !self.previous_run.contains(id)
            })
            .map(|(id, _)| *id)
            .collect();
        (missing, strays)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_hops.len()
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
        let mut o = Objects::new(186, vec![(FIRST_ID, 11), (7, 186)]);
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
        o.release(&a);
        o.release(&a);
        assert!(o.take_deletes().is_empty(), "the group still uses a");
        o.release(&ab);
        let d = o.take_deletes();
        assert_eq!(d.len(), 3);
        assert_eq!(d[0], id_ab, "group first");
        assert_eq!(o.len(), 0);
    }

    #[test]
    fn refused_objects_are_not_deleted_and_forgotten_ones_are() {
        let mut o = Objects::new(186, vec![]);
        let a: Arc<[KernelHop]> = Arc::from([hop("10.0.0.1", 2)]);
        let id = o.acquire(&a);
        o.take_creates();
        o.refused(id);
        o.release(&a);
        assert!(o.take_deletes().is_empty());
        let id = o.acquire(&a);
        o.take_creates();
        o.forget(|h| h.iter().any(|k| k.ifindex == 2));
        assert_eq!(o.take_deletes(), vec![id]);
        let id2 = o.acquire(&a);
        assert_ne!(id, id2, "a forgotten object is created anew");
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
