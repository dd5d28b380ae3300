//! Builders for the rtnetlink requests we send, and readers for the route
//! messages we get back.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REPLACE,
    NLM_F_REQUEST,
};
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteNextHop, RouteProtocol,
    RouteScope, RouteType, RouteVia,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

/// One kernel next hop: the gateway to write and the interface to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct KernelHop {
    pub gateway: IpAddr,
    pub ifindex: u32,
}

/// The route identity we write: table, protocol, metric.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RouteKey {
    pub table: u32,
    pub protocol: u8,
    pub metric: u32,
}

impl RouteKey {
    /// Where a prefix's standby route goes (`kernel.backupRoutes`): the
    /// next metric, so that the kernel prefers the primary while it exists.
    pub(crate) fn standby(&self) -> RouteKey {
        RouteKey {
            metric: self.metric.saturating_add(1),
            ..*self
        }
    }
}

pub(crate) fn family_of(addr: &IpAddr) -> AddressFamily {
    match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn base_route(prefix: &IpNet, key: &RouteKey) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = family_of(&prefix.addr());
    m.header.destination_prefix_length = prefix.prefix_len();
    m.header.table = if key.table < 256 { key.table as u8 } else { 0 };
    m.header.protocol = RouteProtocol::from(key.protocol);
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    m.attributes
        .push(RouteAttribute::Destination(prefix.network().into()));
    m.attributes.push(RouteAttribute::Table(key.table));
    m.attributes.push(RouteAttribute::Priority(key.metric));
    m
}

fn gateway_attr(prefix: &IpNet, gw: IpAddr) -> RouteAttribute {
    match (prefix, gw) {
        (IpNet::V4(_), IpAddr::V4(_)) | (IpNet::V6(_), IpAddr::V6(_)) => {
            RouteAttribute::Gateway(gw.into())
        }
        // RFC 8950 (IPv4 over an IPv6 next hop) and the reverse, which the
        // kernel refuses with its own words.
        (_, IpAddr::V6(a)) => RouteAttribute::Via(RouteVia::Inet6(a)),
        (_, IpAddr::V4(a)) => RouteAttribute::Via(RouteVia::Inet(a)),
    }
}

fn wrap(inner: RouteNetlinkMessage, flags: u16, seq: u32) -> NetlinkMessage<RouteNetlinkMessage> {
    let mut h = NetlinkHeader::default();
    h.flags = flags;
    h.sequence_number = seq;
    let mut m = NetlinkMessage::new(h, NetlinkPayload::InnerMessage(inner));
    m.finalize();
    m
}

/// RTM_NEWROUTE with CREATE|REPLACE (no ACK: the batch writer adds it to
/// the last message of a batch only).
pub(crate) fn new_route(
    prefix: &IpNet,
    hops: &[KernelHop],
    key: &RouteKey,
    seq: u32,
) -> NetlinkMessage<RouteNetlinkMessage> {
    let mut m = base_route(prefix, key);
    match hops {
        [one] => {
            m.attributes.push(gateway_attr(prefix, one.gateway));
            m.attributes.push(RouteAttribute::Oif(one.ifindex));
        }
        many => {
            let nhs = many
                .iter()
                .map(|h| {
                    let mut nh = RouteNextHop::default();
                    nh.interface_index = h.ifindex;
                    nh.attributes.push(gateway_attr(prefix, h.gateway));
                    nh
                })
                .collect();
            m.attributes.push(RouteAttribute::MultiPath(nhs));
        }
    }
    wrap(
        RouteNetlinkMessage::NewRoute(m),
        NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE,
        seq,
    )
}

/// RTM_DELROUTE for the prefix with our table, protocol and `metric`.
pub(crate) fn del_route(
    prefix: &IpNet,
    key: &RouteKey,
    seq: u32,
) -> NetlinkMessage<RouteNetlinkMessage> {
    let m = base_route(prefix, key);
    wrap(RouteNetlinkMessage::DelRoute(m), NLM_F_REQUEST, seq)
}

/// `ip route get fibmatch ADDR`: the FIB entry the kernel would use.
pub(crate) fn get_route(addr: IpAddr) -> NetlinkMessage<RouteNetlinkMessage> {
    let mut m = RouteMessage::default();
    m.header.address_family = family_of(&addr);
    m.header.destination_prefix_length = if addr.is_ipv4() { 32 } else { 128 };
    m.header.flags = RouteFlags::FibMatch;
    m.attributes.push(RouteAttribute::Destination(addr.into()));
    wrap(RouteNetlinkMessage::GetRoute(m), NLM_F_REQUEST, 0)
}

pub(crate) fn dump_routes() -> NetlinkMessage<RouteNetlinkMessage> {
    let mut m = RouteMessage::default();
    m.header.address_family = AddressFamily::Unspec;
    wrap(
        RouteNetlinkMessage::GetRoute(m),
        NLM_F_REQUEST | NLM_F_DUMP,
        0,
    )
}

pub(crate) fn dump_links() -> NetlinkMessage<RouteNetlinkMessage> {
    wrap(
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
        NLM_F_REQUEST | NLM_F_DUMP,
        0,
    )
}

pub(crate) fn route_addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v) => Some(IpAddr::V4(*v)),
        RouteAddress::Inet6(v) => Some(IpAddr::V6(*v)),
        _ => None,
    }
}

fn via_addr(v: &RouteVia) -> Option<IpAddr> {
    match v {
        RouteVia::Inet(a) => Some(IpAddr::V4(*a)),
        RouteVia::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

/// Fields of a route message we care about.
#[derive(Debug, Clone, Default)]
pub(crate) struct RouteInfo {
    pub prefix: Option<IpNet>,
    pub table: u32,
    pub protocol: u8,
    pub kind: Option<RouteType>,
    pub metric: u32,
    /// (gateway, ifindex, usable) for every path; usable is false for paths
    /// flagged dead or linkdown.
    pub paths: Vec<(Option<IpAddr>, u32, bool)>,
}

pub(crate) fn route_info(m: &RouteMessage) -> RouteInfo {
    let h = &m.header;
    let mut info = RouteInfo {
        table: h.table as u32,
        protocol: u8::from(h.protocol),
        kind: Some(h.kind),
        ..Default::default()
    };
    let bad = RouteFlags::Dead | RouteFlags::Linkdown;
    let mut dst = None;
    let mut gw = None;
    let mut oif = 0;
    let mut multipath = None;
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(d) => dst = route_addr(d),
            RouteAttribute::Table(t) => info.table = *t,
            RouteAttribute::Priority(p) => info.metric = *p,
            RouteAttribute::Gateway(g) => gw = route_addr(g),
            RouteAttribute::Via(v) => gw = via_addr(v),
            RouteAttribute::Oif(i) => oif = *i,
            RouteAttribute::MultiPath(nhs) => multipath = Some(nhs),
            _ => {}
        }
    }
    let dst = dst.unwrap_or(match h.address_family {
        AddressFamily::Inet6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        _ => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    });
    info.prefix = IpNet::new(dst, h.destination_prefix_length).ok();
    match multipath {
        Some(nhs) => {
            for nh in nhs {
                let mut g = None;
                for a in &nh.attributes {
                    match a {
                        RouteAttribute::Gateway(x) => g = route_addr(x),
                        RouteAttribute::Via(v) => g = via_addr(v),
                        _ => {}
                    }
                }
                let flags = RouteFlags::from_bits_retain(nh.flags.bits() as u32);
                info.paths
                    .push((g, nh.interface_index, !flags.intersects(bad)));
            }
        }
        None => {
            if oif != 0 || gw.is_some() {
                info.paths.push((gw, oif, !h.flags.intersects(bad)));
            }
        }
    }
    info
}

/// A route message read in place, without the full decode: what the
/// monitor and the resync need to tell our routes apart and compare them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawRoute {
    pub prefix: IpNet,
    pub table: u32,
    pub protocol: u8,
    pub metric: u32,
    /// The nexthop object it points at (0: none).
    pub nhid: u32,
    /// Its inline next hops (gateway, or the prefix's own address when
    /// on-link), sorted; empty with a nexthop object.
    pub hops: Vec<KernelHop>,
}

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_MULTIPATH: u16 = 9;
const RTA_TABLE: u16 = 15;
const RTA_VIA: u16 = 18;
const RTA_NH_ID: u16 = 30;

/// Walks netlink attributes (struct rtattr / nlattr: u16 length, u16 type).
fn attrs(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & 0x3fff;
        if len < 4 || len > buf.len() {
            return None;
        }
        let value = &buf[4..len];
        buf = &buf[((len + 3) & !3).min(buf.len())..];
        Some((kind, value))
    })
}

fn addr_of(family: u8, v: &[u8]) -> Option<IpAddr> {
    match (family as i32, v.len()) {
        (libc::AF_INET, 4) => Some(IpAddr::from(<[u8; 4]>::try_from(v).ok()?)),
        (libc::AF_INET6, 16) => Some(IpAddr::from(<[u8; 16]>::try_from(v).ok()?)),
        _ => None,
    }
}

/// RTA_VIA: a u16 family, then the address.
fn via_of(v: &[u8]) -> Option<IpAddr> {
    let family = u16::from_ne_bytes([*v.first()?, *v.get(1)?]);
    addr_of(family as u8, &v[2..])
}

fn u32_of(v: &[u8]) -> u32 {
    v.get(..4)
        .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads an RTM_NEWROUTE / RTM_DELROUTE message (header included); None
/// for anything else or a message too short.
pub(crate) fn raw_route(raw: &[u8]) -> Option<RawRoute> {
    use crate::netlink::NLMSG_HDRLEN;
    // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope,
    // type, flags (u32): 12 bytes, then the attributes.
    let rtm = raw.get(NLMSG_HDRLEN..NLMSG_HDRLEN + 12)?;
    let (family, dst_len) = (rtm[0], rtm[1]);
    let mut r = RawRoute {
        prefix: IpNet::new(
            match family as i32 {
                libc::AF_INET => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                libc::AF_INET6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                _ => return None,
            },
            0,
        )
        .ok()?,
        table: rtm[4] as u32,
        protocol: rtm[5],
        metric: 0,
        nhid: 0,
        hops: Vec::new(),
    };
    let mut dst = r.prefix.addr();
    let (mut gw, mut oif) = (None, 0);
    for (kind, v) in attrs(&raw[NLMSG_HDRLEN + 12..]) {
        match kind {
            RTA_DST => dst = addr_of(family, v)?,
            RTA_TABLE => r.table = u32_of(v),
            RTA_PRIORITY => r.metric = u32_of(v),
            RTA_NH_ID => r.nhid = u32_of(v),
            RTA_GATEWAY => gw = addr_of(family, v),
            RTA_VIA => gw = via_of(v),
            RTA_OIF => oif = u32_of(v),
            RTA_MULTIPATH => {
                // struct rtnexthop: len u16, flags u8, hops u8, ifindex i32,
                // then its own attributes.
                let mut m = v;
                while m.len() >= 8 {
                    let len = (u16::from_ne_bytes([m[0], m[1]]) as usize).min(m.len());
                    if len < 8 {
                        break;
                    }
                    let ifindex = u32_of(&m[4..8]);
                    let mut g = None;
                    for (k, a) in attrs(&m[8..len]) {
                        match k {
                            RTA_GATEWAY => g = addr_of(family, a),
                            RTA_VIA => g = via_of(a),
                            _ => {}
                        }
                    }
                    r.hops.push(KernelHop {
                        gateway: g.unwrap_or(dst),
                        ifindex,
                    });
                    m = &m[((len + 3) & !3).min(m.len())..];
                }
            }
            _ => {}
        }
    }
    r.prefix = IpNet::new(dst, dst_len).ok()?;
    if r.hops.is_empty() && r.nhid == 0 && (oif != 0 || gw.is_some()) {
        r.hops.push(KernelHop {
            gateway: gw.unwrap_or(dst),
            ifindex: oif,
        });
    }
    r.hops.sort();
    r.hops.dedup();
    Some(r)
}

/// A kernel next hop from text, for tests.
#[cfg(test)]
pub(crate) fn hop(gw: &str, ifindex: u32) -> KernelHop {
    KernelHop {
        gateway: gw.parse().unwrap(),
        ifindex,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(m: NetlinkMessage<RouteNetlinkMessage>) -> Vec<u8> {
        let mut out = vec![0u8; m.buffer_len()];
        m.serialize(&mut out);
        out
    }

    #[test]
    fn a_route_reads_the_same_in_place_as_written() {
        let key = RouteKey {
            table: 1000,
            protocol: 186,
            metric: 20,
        };
        let p: IpNet = "10.1.2.0/24".parse().unwrap();
        let one = raw_route(&bytes(new_route(&p, &[hop("10.0.0.2", 3)], &key, 1))).unwrap();
        assert_eq!(
            one,
            RawRoute {
                prefix: p,
                table: 1000,
                protocol: 186,
                metric: 20,
                nhid: 0,
                hops: vec![hop("10.0.0.2", 3)],
            }
        );
        let v6: IpNet = "2001:db8:5::/48".parse().unwrap();
        let many = [hop("2001:db8::3", 2), hop("2001:db8::2", 4)];
        let two = raw_route(&bytes(new_route(&v6, &many, &key, 1))).unwrap();
        assert_eq!(two.prefix, v6);
        assert_eq!(two.hops, vec![hop("2001:db8::2", 4), hop("2001:db8::3", 2)]);
        // IPv4 via an IPv6 next hop (RTA_VIA), and a deletion.
        let via = raw_route(&bytes(new_route(&p, &[hop("fd00::1", 2)], &key, 1))).unwrap();
        assert_eq!(via.hops, vec![hop("fd00::1", 2)]);
        let del = raw_route(&bytes(del_route(&p, &key, 1))).unwrap();
        assert_eq!((del.prefix, del.metric, del.hops.len()), (p, 20, 0));
        assert_eq!(raw_route(&obj_header_only()), None);
    }

    fn obj_header_only() -> Vec<u8> {
        vec![0u8; 16]
    }
}
