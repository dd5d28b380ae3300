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
