//! The monitor thread: reads link/address/route/nexthop notifications and tells the
//! worker what changed. The echoes of our own writes are dropped in the
//! kernel by a socket filter (see `netlink::drop_own_writes`); anyone
//! else's change to a route in our table at our metric is passed on by
//! prefix, so that the worker can repair ours.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;

use crate::cmd::Cmd;
use crate::msg::{raw_route, RawRoute};
use crate::netlink::{header_of, split_messages, NlSocket, RawHeader, RTM_DELROUTE, RTM_NEWROUTE};
use crate::nexthop;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;

pub(crate) fn link_cmd(l: &LinkMessage) -> Cmd {
    let name = l.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    });
    Cmd::Link {
        index: l.header.index,
        name,
        // Up and with carrier: the kernel flushes the nexthop objects of a
        // link that loses either (nh_netdev_event in net/ipv4/nexthop.c).
        up: l.header.flags.contains(LinkFlags::Up)
            && l.header
                .flags
                .intersects(LinkFlags::Running | LinkFlags::LowerUp),
    }
}

/// A route of ours the kernel deleted by itself because the nexthop
/// object it used went (carrier loss or link down flush it, or someone
/// deleted the object). Only IPv6 reports these (`__remove_nexthop_fib`
/// deletes IPv6 routes one by one with notifications, while IPv4's go
/// in a silent flush); the FIB learns of the object's loss from its
/// RTM_DELNEXTHOP and acts on that, so these must not read as someone
/// else deleting our routes (which would write every one back).
fn object_consequence(h: RawHeader, r: &RawRoute, protocol: u8) -> bool {
    h.kind == RTM_DELROUTE && h.portid == 0 && r.nhid != 0 && r.protocol == protocol
}

/// The identity of the routes we write.
#[derive(Clone, Copy)]
pub(crate) struct Ours {
    pub table: u32,
    pub protocol: u8,
    pub metric: u32,
    /// Standby routes at `metric + 1` are ours too (`kernel.backupRoutes`).
    pub standbys: bool,
}

pub(crate) fn run(mut sock: NlSocket, tx: mpsc::Sender<Cmd>, stop: Arc<AtomicBool>, ours: Ours) {
    let protocol = ours.protocol;
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let data = match sock.recv() {
            Ok(d) => d,
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                tracing::debug!("monitor socket overflowed");
                out.push(Cmd::Overrun);
                &[][..]
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => {
                tracing::warn!("netlink monitor: {e}");
                std::thread::sleep(std::time::Duration::from_millis(100));
                continue;
            }
        };
        let mut changed = false;
        let mut touched = Vec::new();
        for raw in split_messages(data) {
            let header = header_of(raw);
            match header.kind {
                RTM_NEWLINK | RTM_DELLINK => {
                    let Ok(m) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(raw) else {
                        changed = true;
                        continue;
                    };
                    match m.payload {
                        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => {
                            out.push(link_cmd(&l))
                        }
                        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(l)) => {
                            out.push(Cmd::LinkGone(l.header.index))
                        }
                        _ => {}
                    }
                }
                RTM_NEWADDR | RTM_DELADDR => changed = true,
                nexthop::RTM_DELNEXTHOP => {
                    if let Some((id, p)) = nexthop::parse(raw) {
                        if p == protocol {
                            out.push(Cmd::ObjectGone(id));
                        }
                    }
                }
                RTM_NEWROUTE | RTM_DELROUTE => match raw_route(raw) {
                    Some(r) if object_consequence(header, &r, protocol) => {}
                    Some(r) => {
                        // Routes of our protocol do not resolve next hops.
                        changed |= r.protocol != protocol;
                        let standby = ours.standbys && r.metric == ours.metric.wrapping_add(1);
                        if r.table == ours.table && (r.metric == ours.metric || standby) {
                            touched.push(r.prefix);
                        }
                    }
                    None => changed = true,
                },
                _ => {}
            }
        }
        if changed {
            out.push(Cmd::Changed);
        }
        if !touched.is_empty() {
            out.push(Cmd::Touched(touched));
        }
        for c in out.drain(..) {
            if tx.send(c).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(protocol: u8, nhid: u32) -> RawRoute {
        RawRoute {
            prefix: "2001:db8:100::/64".parse().unwrap(),
            table: 254,
            protocol,
            metric: 20,
            nhid,
            hops: Vec::new(),
        }
    }

    fn header(kind: u16, portid: u32) -> RawHeader {
        RawHeader {
            kind,
            flags: 0,
            seq: 0,
            portid,
        }
    }

    #[test]
    fn only_the_kernels_own_deletes_of_our_object_routes_are_its_consequence() {
        assert!(object_consequence(
            header(RTM_DELROUTE, 0),
            &route(186, 7),
            186
        ));
        // Someone's `ip route del`: their socket's port id.
        assert!(!object_consequence(
            header(RTM_DELROUTE, 4242),
            &route(186, 7),
            186
        ));
        // Not on an object: a flush the FIB must hear about.
        assert!(!object_consequence(
            header(RTM_DELROUTE, 0),
            &route(186, 0),
            186
        ));
        // Another protocol's route that had replaced ours went.
        assert!(!object_consequence(
            header(RTM_DELROUTE, 0),
            &route(3, 7),
            186
        ));
        assert!(!object_consequence(
            header(RTM_NEWROUTE, 0),
            &route(186, 7),
            186
        ));
    }
}
